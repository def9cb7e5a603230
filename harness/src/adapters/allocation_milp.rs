//! `milp_maximize` on `Allocation`: the `maximize` step of `fitted-q-iteration-explicit`
//! over integer action vectors, by mixed-integer linear programming (good_lp, microlp)
//! against exhaustive enumeration, on allocation instances of `sites` sites (two
//! resources with stock (6, 5) and unit costs (1, 3) under a budget of 15, as in
//! notebook 01). For each of `states` draws of a q affine in the action (random θ over
//! `ActionAffineFeatures`) and a random demand state, both maximizers solve
//! `max_a q(s, a)`; they must find the same value.
//!
//! Metrics (step 0): `actions` (size of the feasible action set), `states`, `agreement`
//! (draws where the two values agree to 1e-9 relative; must equal `states`),
//! `max_value_gap`, and the timings `milp_maximize_seconds`, `enumeration_maximize_seconds`
//! (mean per call).

use std::time::Instant;

use rand::Rng as _;
use serde::{Deserialize, Serialize};

use policy_param::env::allocation::{count_feasible, AllocationParams};
use policy_param::maximize::{EnumerationMaximizer, Maximizer, MilpMaximizer, QFunction};
use policy_param::qfunction::features::{ActionAffineFeatures, Features};
use policy_param::qfunction::linear::LinearQ;
use policy_param::rng::RunSeed;

use super::{at_least, positive};
use crate::error::{CellError, Invalid};
use crate::experiment::{CellContext, Experiment};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Sites J (≥ 1): the action has 2·J integer components. Default 4.
    pub sites: usize,
    /// Stock of each of the two resources (≥ 0). Default [6, 5].
    pub stock: Vec<i64>,
    /// Unit cost of each resource (≥ 0). Default [1, 3].
    pub unit_cost: Vec<f64>,
    /// Budget shared by the resources (> 0). Default 15.
    pub budget: f64,
    /// Random (θ, state) draws (≥ 1). Default 5.
    pub states: usize,
    /// Enumeration refuses action sets larger than this (≥ 1). Default 10 000 000.
    pub max_actions: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            sites: 4,
            stock: vec![6, 5],
            unit_cost: vec![1.0, 3.0],
            budget: 15.0,
            states: 5,
            max_actions: 10_000_000,
        }
    }
}

pub struct AllocationMilp;

impl Experiment for AllocationMilp {
    const NAME: &'static str = "allocation_milp";
    const ALGORITHM: &'static str = "milp_maximize";
    const ENVIRONMENTS: &'static [&'static str] = &["Allocation"];
    const DESCRIPTION: &'static str =
        "MILP maximize (good_lp) vs enumeration over integer allocations: agreement and time";
    type Config = Config;

    fn check(c: &Config) -> Result<(), Invalid> {
        at_least("sites", c.sites, 1)?;
        if c.stock.is_empty() || c.stock.len() != c.unit_cost.len() {
            return Err(Invalid::new(
                "stock",
                format!(
                    "{} resources in stock, {} in unit_cost: give one of each per resource",
                    c.stock.len(),
                    c.unit_cost.len()
                ),
            ));
        }
        if let Some(s) = c.stock.iter().find(|s| **s < 0) {
            return Err(Invalid::new("stock", format!("{s} is negative")));
        }
        if let Some(u) = c.unit_cost.iter().find(|u| !(u.is_finite() && **u >= 0.0)) {
            return Err(Invalid::new(
                "unit_cost",
                format!("{u} is not a finite number ≥ 0"),
            ));
        }
        positive("budget", c.budget)?;
        at_least("states", c.states, 1)?;
        if c.max_actions == 0 {
            return Err(Invalid::new("max_actions", "must be at least 1"));
        }
        Ok(())
    }

    fn run(c: &Config, _: &str, seed: u64, ctx: &mut CellContext) -> Result<(), CellError> {
        let model = instance(c.sites, c.stock.clone(), c.unit_cost.clone(), c.budget).check()?;
        let space = model.integer_space().clone();
        let dim = space.lower.len();
        let actions = count_feasible(&space)?;
        let features = ActionAffineFeatures::new(c.sites, dim)?;
        let milp = MilpMaximizer::new(space.clone())?;
        let brute = EnumerationMaximizer::new(space, c.max_actions)?;
        ctx.set_total(c.states as u64);
        let (mut milp_seconds, mut brute_seconds) = (0.0, 0.0);
        let (mut agreement, mut gap) = (0u64, 0.0f64);
        let (mut a_milp, mut a_brute) = (vec![0.0; dim], vec![0.0; dim]);
        let (mut milp_ws, mut brute_ws) = (milp.workspace(), brute.workspace());
        for draw in 0..c.states {
            let mut rng = RunSeed(seed).indexed("allocation-milp", draw as u64);
            let theta: Vec<f64> = (0..features.len())
                .map(|_| rng.gen_range(-1.0..1.0))
                .collect();
            let q = LinearQ::with_params(features, theta)?;
            let state: Vec<f64> = (0..c.sites).map(|_| rng.gen_range(0.0..5.0)).collect();
            let mut q_ws = q.workspace();
            let start = Instant::now();
            let m1 = milp.maximize(&q, &mut q_ws, &mut milp_ws, &state, &mut a_milp, &mut rng)?;
            milp_seconds += start.elapsed().as_secs_f64();
            let start = Instant::now();
            let m2 =
                brute.maximize(&q, &mut q_ws, &mut brute_ws, &state, &mut a_brute, &mut rng)?;
            brute_seconds += start.elapsed().as_secs_f64();
            let difference = (m1.value - m2.value).abs();
            gap = gap.max(difference);
            if difference <= 1e-9 * m1.value.abs().max(m2.value.abs()).max(1.0) {
                agreement += 1;
            }
            ctx.advance();
        }
        let per_call = c.states as f64;
        ctx.record(0, "actions", actions as f64);
        ctx.record(0, "states", c.states as f64);
        ctx.record(0, "agreement", agreement as f64);
        ctx.record(0, "max_value_gap", gap);
        ctx.record(0, "milp_maximize_seconds", milp_seconds / per_call);
        ctx.record(0, "enumeration_maximize_seconds", brute_seconds / per_call);
        Ok(())
    }
}

/// The allocation instance of these experiments: `sites` sites with prices 3, 4, ... and
/// arrival rates 2, 3, ..., the given resources with service rates 1, 2, ...
pub(crate) fn instance(
    sites: usize,
    stock: Vec<i64>,
    unit_cost: Vec<f64>,
    budget: f64,
) -> AllocationParams {
    AllocationParams {
        service_rate: (1..=stock.len()).map(|i| i as f64).collect(),
        stock,
        unit_cost,
        budget,
        price: (0..sites).map(|j| 3.0 + j as f64).collect(),
        arrival_rate: (0..sites).map(|j| 2.0 + j as f64).collect(),
        carry_over: 0.5,
        horizon: 20,
    }
}
