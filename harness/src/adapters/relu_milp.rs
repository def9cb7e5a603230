//! `relu_milp_maximize`: `maximize(q(s, ·))` of a ReLU network solved exactly as a MILP
//! (`ReluMilpMaximizer`, big-M with interval and symbolic bounds, good_lp/microlp) against
//! ground truth, on random networks of `depth` hidden layers of `width` units and random
//! states (a fresh network and state per draw):
//!
//! - environment `Allocation`: integer actions of the allocation instance of `allocation_milp`
//!   (two resources, stock (6, 5), unit costs (1, 3), budget 15, `sites` sites); ground
//!   truth by enumeration of every feasible action.
//! - environment `ActionBox`: continuous actions in [−bound, bound]^`action_dim` (1 or 2) with
//!   `state_dim` state inputs; ground truth from below by a dense grid of `grid_points` per
//!   axis; beside it the library's multi-start L-BFGS (`lbfgs_starts` starts, otherwise
//!   its defaults), whose global-optimality gap the exact optimum measures.
//!
//! Metrics (step 0): `states`, `hidden_units`, `binaries` (mean undecided units per program),
//! `relu_milp_maximize_seconds` (mean per call). Allocation: `actions`, `agreement` (draws
//! where the MILP's value equals enumeration's to 1e-6; must equal `states`),
//! `max_value_gap`, `enumeration_maximize_seconds`. Box: `max_grid_excess` (how far the best
//! grid point exceeds the MILP's value; ≤ 1e-6 when exact), `lbfgs_gap_mean`,
//! `lbfgs_gap_max` (MILP value − L-BFGS value), `lbfgs_suboptimal` (draws where that gap
//! exceeds 1e-4 · max(1, |q|)), `grid_maximize_seconds`, `lbfgs_maximize_seconds`.

use std::time::Instant;

use rand::Rng as _;
use serde::{Deserialize, Serialize};

use policy_param::env::allocation::count_feasible;
use policy_param::env::ActionSpace;
use policy_param::maximize::{
    EnumerationMaximizer, LbfgsSettings, Maximizer, ProjectedLbfgs, QFunction, ReluMilpMaximizer,
};
use policy_param::nn::{Activation, MlpConfig};
use policy_param::qfunction::MlpQ;
use policy_param::rng::RunSeed;

use super::{at_least, positive};
use crate::error::{CellError, Invalid};
use crate::experiment::{CellContext, Experiment};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Units per hidden layer (≥ 1). Default 16.
    pub width: usize,
    /// Hidden ReLU layers (≥ 1). Default 1.
    pub depth: usize,
    /// Random (network, state) draws (≥ 1). Default 20.
    pub states: usize,
    /// Allocation: sites J (≥ 1); the action has 2·J integer components. Default 3.
    pub sites: usize,
    /// ActionBox: action components, 1 or 2. Default 1.
    pub action_dim: usize,
    /// ActionBox: state components (≥ 1), drawn uniform in [−2, 2]. Default 2.
    pub state_dim: usize,
    /// ActionBox: the action box is [−bound, bound] per component (> 0). Default 2.
    pub bound: f64,
    /// ActionBox: grid points per axis (≥ 2). Default 100 001 (1-D), use about 801 in 2-D.
    pub grid_points: usize,
    /// ActionBox: L-BFGS starts (≥ 1). Default 4 (the library's default).
    pub lbfgs_starts: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            width: 16,
            depth: 1,
            states: 20,
            sites: 3,
            action_dim: 1,
            state_dim: 2,
            bound: 2.0,
            grid_points: 100_001,
            lbfgs_starts: 4,
        }
    }
}

pub struct ReluMilp;

impl Experiment for ReluMilp {
    const NAME: &'static str = "relu_milp";
    const ALGORITHM: &'static str = "relu_milp_maximize";
    const ENVIRONMENTS: &'static [&'static str] = &["Allocation", "ActionBox"];
    const DESCRIPTION: &'static str =
        "exact maximize of a ReLU network q by MILP vs enumeration, a dense grid and L-BFGS";
    type Config = Config;

    fn check(c: &Config) -> Result<(), Invalid> {
        at_least("width", c.width, 1)?;
        at_least("depth", c.depth, 1)?;
        at_least("states", c.states, 1)?;
        at_least("sites", c.sites, 1)?;
        if !(1..=2).contains(&c.action_dim) {
            return Err(Invalid::new(
                "action_dim",
                format!(
                    "{}: the dense grid covers 1 or 2 action components",
                    c.action_dim
                ),
            ));
        }
        at_least("state_dim", c.state_dim, 1)?;
        positive("bound", c.bound)?;
        at_least("grid_points", c.grid_points, 2)?;
        at_least("lbfgs_starts", c.lbfgs_starts, 1)?;
        Ok(())
    }

    fn run(
        c: &Config,
        environment: &str,
        seed: u64,
        ctx: &mut CellContext,
    ) -> Result<(), CellError> {
        ctx.set_total(c.states as u64);
        if environment == "Allocation" {
            allocation(c, seed, ctx)
        } else {
            continuous_box(c, seed, ctx)
        }
    }
}

/// A random ReLU q on [s, a] with `inputs` inputs, one per draw.
fn network(
    c: &Config,
    inputs: usize,
    state_dim: usize,
    seed: u64,
    draw: usize,
) -> Result<MlpQ, CellError> {
    let mut sizes = vec![inputs];
    sizes.extend(std::iter::repeat_n(c.width, c.depth));
    sizes.push(1);
    let config = MlpConfig::new(&sizes).hidden(Activation::Relu);
    let mut rng = RunSeed(seed).indexed("relu-milp-network", draw as u64);
    Ok(MlpQ::from_config(&config, state_dim, &mut rng)?)
}

fn allocation(c: &Config, seed: u64, ctx: &mut CellContext) -> Result<(), CellError> {
    // The allocation_milp experiment's instance with its default resources.
    let params = super::allocation_milp::instance(c.sites, vec![6, 5], vec![1.0, 3.0], 15.0);
    let space = params.check()?.integer_space().clone();
    let dim = space.lower.len();
    let actions = count_feasible(&space)?;
    let milp = ReluMilpMaximizer::new(ActionSpace::Integer(space.clone()))?;
    let brute = EnumerationMaximizer::new(space, u64::MAX)?;
    let (mut milp_ws, mut brute_ws) = (milp.workspace(), brute.workspace());
    let (mut a_milp, mut a_brute) = (vec![0.0; dim], vec![0.0; dim]);
    let mut timing = Timing::default();
    let (mut agreement, mut gap, mut binaries) = (0u64, 0.0f64, 0usize);
    for draw in 0..c.states {
        let q = network(c, c.sites + dim, c.sites, seed, draw)?;
        let mut q_ws = q.workspace();
        let mut rng = RunSeed(seed).indexed("relu-milp-state", draw as u64);
        let state: Vec<f64> = (0..c.sites).map(|_| rng.gen_range(0.0..8.0)).collect();
        let start = Instant::now();
        let exact = milp.maximize(&q, &mut q_ws, &mut milp_ws, &state, &mut a_milp, &mut rng)?;
        timing.milp += start.elapsed().as_secs_f64();
        binaries += milp_ws.binaries;
        let start = Instant::now();
        let best = brute.maximize(&q, &mut q_ws, &mut brute_ws, &state, &mut a_brute, &mut rng)?;
        timing.reference += start.elapsed().as_secs_f64();
        let difference = (exact.value - best.value).abs();
        gap = gap.max(difference);
        if difference <= 1e-6 {
            agreement += 1;
        }
        ctx.advance();
    }
    let n = c.states as f64;
    record_common(c, ctx, milp_ws.hidden_units, binaries, timing.milp);
    ctx.record(0, "actions", actions as f64);
    ctx.record(0, "agreement", agreement as f64);
    ctx.record(0, "max_value_gap", gap);
    ctx.record(0, "enumeration_maximize_seconds", timing.reference / n);
    Ok(())
}

fn continuous_box(c: &Config, seed: u64, ctx: &mut CellContext) -> Result<(), CellError> {
    let (low, high) = (vec![-c.bound; c.action_dim], vec![c.bound; c.action_dim]);
    let space = ActionSpace::Box {
        low: low.clone(),
        high: high.clone(),
    };
    let milp = ReluMilpMaximizer::new(space.clone())?;
    let settings = LbfgsSettings {
        starts: c.lbfgs_starts,
        ..LbfgsSettings::default()
    };
    let lbfgs = ProjectedLbfgs::new(space, settings)?;
    let (mut milp_ws, mut lbfgs_ws) = (milp.workspace(), lbfgs.workspace());
    let (mut a_milp, mut a_lbfgs) = (vec![0.0; c.action_dim], vec![0.0; c.action_dim]);
    let mut timing = Timing::default();
    let (mut excess, mut binaries) = (f64::NEG_INFINITY, 0usize);
    let (mut gap_sum, mut gap_max, mut suboptimal) = (0.0, 0.0f64, 0u64);
    for draw in 0..c.states {
        let q = network(c, c.state_dim + c.action_dim, c.state_dim, seed, draw)?;
        let mut q_ws = q.workspace();
        let mut rng = RunSeed(seed).indexed("relu-milp-state", draw as u64);
        let state: Vec<f64> = (0..c.state_dim).map(|_| rng.gen_range(-2.0..2.0)).collect();
        let start = Instant::now();
        let exact = milp.maximize(&q, &mut q_ws, &mut milp_ws, &state, &mut a_milp, &mut rng)?;
        timing.milp += start.elapsed().as_secs_f64();
        binaries += milp_ws.binaries;
        let start = Instant::now();
        let grid = grid_max(&q, &state, &low, &high, c.grid_points)?;
        timing.reference += start.elapsed().as_secs_f64();
        excess = excess.max(grid - exact.value);
        let start = Instant::now();
        let local = lbfgs.maximize(&q, &mut q_ws, &mut lbfgs_ws, &state, &mut a_lbfgs, &mut rng)?;
        timing.lbfgs += start.elapsed().as_secs_f64();
        let gap = exact.value - local.value;
        gap_sum += gap;
        gap_max = gap_max.max(gap);
        if gap > 1e-4 * exact.value.abs().max(1.0) {
            suboptimal += 1;
        }
        ctx.advance();
    }
    let n = c.states as f64;
    record_common(c, ctx, milp_ws.hidden_units, binaries, timing.milp);
    ctx.record(
        0,
        "grid_points",
        c.grid_points.pow(c.action_dim as u32) as f64,
    );
    ctx.record(0, "max_grid_excess", excess);
    ctx.record(0, "lbfgs_gap_mean", gap_sum / n);
    ctx.record(0, "lbfgs_gap_max", gap_max);
    ctx.record(0, "lbfgs_suboptimal", suboptimal as f64);
    ctx.record(0, "grid_maximize_seconds", timing.reference / n);
    ctx.record(0, "lbfgs_maximize_seconds", timing.lbfgs / n);
    Ok(())
}

/// Seconds summed over the draws: the MILP, the ground truth, L-BFGS.
#[derive(Default)]
struct Timing {
    milp: f64,
    reference: f64,
    lbfgs: f64,
}

fn record_common(c: &Config, ctx: &mut CellContext, hidden: usize, binaries: usize, seconds: f64) {
    let n = c.states as f64;
    ctx.record(0, "states", n);
    ctx.record(0, "hidden_units", hidden as f64);
    ctx.record(0, "binaries", binaries as f64 / n);
    ctx.record(0, "relu_milp_maximize_seconds", seconds / n);
}

/// The best value of q(state, ·) over a `points`-per-axis grid of the box (1-D or 2-D),
/// evaluated one grid row at a time in a batch.
fn grid_max(
    q: &MlpQ,
    state: &[f64],
    low: &[f64],
    high: &[f64],
    points: usize,
) -> Result<f64, CellError> {
    let dim = low.len();
    let mut ws = q.workspace_for_batch(points);
    let axis = |d: usize, i: usize| low[d] + (high[d] - low[d]) * i as f64 / (points - 1) as f64;
    let mut actions = vec![0.0; points * dim];
    let mut values = vec![0.0; points];
    let mut best = f64::NEG_INFINITY;
    let rows = if dim == 1 { 1 } else { points };
    for r in 0..rows {
        for i in 0..points {
            actions[i * dim] = axis(0, i);
            if dim == 2 {
                actions[i * 2 + 1] = axis(1, r);
            }
        }
        q.values_at_actions(&mut ws, state, &actions, &mut values)?;
        best = values.iter().copied().fold(best, f64::max);
    }
    Ok(best)
}
