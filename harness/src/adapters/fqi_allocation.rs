//! `fitted-q-iteration-explicit` with integer actions, end to end, on the sequential
//! allocation MDP ([`SequentialAllocation`]: shipments arrive a period later, integer
//! demand up to a cap), against value iteration's optimum.
//!
//! Base points are one-step transitions from states uniform over the state space with
//! random feasible actions. Two q-functions, each with the `maximize` it admits and with
//! exhaustive enumeration as the reference:
//!
//! - `q = "affine"`: θᵀφ(s) ⊗ [1, x] (`ActionAffineFeatures`, affine in the action), fitted
//!   by ridge least squares; `maximizer = "milp"` (good_lp) or `"enumerate"`.
//! - `q = "mlp"`: a ReLU network on `[s, x]` with one hidden layer of `width` units,
//!   fitted by minibatch Adam; `maximizer = "relu_milp"` (exact big-M MILP) or `"enumerate"`.
//!   `scale_inputs = true` maps each input from its range onto [−1, 1] first;
//!   `average_last_epochs = k` makes each fit's θ the mean of its last k epochs' iterates;
//!   `mean_q_of_last = [K, …]` also evaluates, for each K, the greedy policy of the mean of
//!   the last K iterates' q (`MlpQ::mean_of`, one network K times as wide; enumeration).
//!
//! On `instance = "small"` (9 801 states, 102 actions) the greedy policy of the last q,
//! computed by the run's own maximizer at every state, is evaluated exactly:
//! `optimal_value` (value iteration, E v*(s₀)), `greedy_value`, `value_gap_percent`
//! (100 · (v* − v^π) / v*), `optimal_action_share` (states where the greedy action is
//! optimal: q*(s, x) within 1e-6 of v*(s)); with `mean_q_of_last`, the same three per K
//! with the suffix `_mean_q{K}`. On `instance = "large"` (1 211 287 actions per
//! state, too many states to enumerate) only the time is measured.
//!
//! Metrics per iteration (step n = fits done): `fit_loss`, `target_seconds` (step 3.2:
//! every base point's maximize), `iteration_seconds`. Once (step 0): `actions`,
//! `maximize_seconds` (mean per call over the run), `iterations`, `run_seconds`, and the
//! values above.

use std::time::Instant;

use serde::{Deserialize, Serialize};

use policy_param::algo::{
    AdamFit, AdamFitSettings, Fit, FittedQIteration, FqiParams, LeastSquares, Transitions,
};
use policy_param::env::allocation::{count_feasible, OptimalSolution, SequentialAllocation};
use policy_param::env::ActionSpace;
use policy_param::maximize::{
    EnumerationMaximizer, Maximizer, MilpMaximizer, QFunction, ReluMilpMaximizer,
};
use policy_param::nn::{AdamConfig, Mlp, MlpConfig};
use policy_param::qfunction::features::ActionAffineFeatures;
use policy_param::qfunction::linear::LinearQ;
use policy_param::qfunction::{InputScaling, MlpQ};
use policy_param::rng::RunSeed;

use super::{at_least, discount, non_negative, positive};
use crate::error::{CellError, Invalid};
use crate::experiment::{CellContext, Experiment};

/// Which sequential allocation instance.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Instance {
    /// [`SequentialAllocation::small`]: value iteration gives the optimum.
    #[default]
    Small,
    /// [`SequentialAllocation::large`]: over a million actions per state; timing only.
    Large,
}

/// The form of q.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QForm {
    /// Affine in the action: `ActionAffineFeatures`, least squares.
    #[default]
    Affine,
    /// A ReLU network with one hidden layer, Adam.
    Mlp,
}

/// How `maximize` is done.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IntegerMaximizer {
    /// MILP of an affine q (`q = "affine"` only).
    #[default]
    Milp,
    /// Exact MILP of a ReLU network (`q = "mlp"` only).
    ReluMilp,
    /// Every feasible action (either q).
    Enumerate,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// `small` or `large`. Default `small`.
    pub instance: Instance,
    /// `affine` or `mlp`. Default `affine`.
    pub q: QForm,
    /// `milp` (affine q), `relu_milp` (mlp q) or `enumerate`. Default `milp`.
    pub maximizer: IntegerMaximizer,
    /// Base points |𝓑| (≥ 1). Default 3000.
    pub points: usize,
    /// N, the iterations (≥ 1); all are run. Default 30.
    pub iterations: usize,
    /// γ ∈ (0, 1). Default 0.9.
    pub gamma: f64,
    /// Ridge of the affine q's least squares (≥ 0). Default 1e-6.
    pub ridge: f64,
    /// Hidden units of the mlp q (≥ 1). Default 16.
    pub width: usize,
    /// Adam passes over 𝒟 per iteration (≥ 1). Default 20.
    pub epochs: usize,
    /// Minibatch size (≥ 1). Default 64.
    pub batch_size: usize,
    /// Adam's learning rate (> 0). Default 3e-3.
    pub lr: f64,
    /// Map every input of the mlp q (each demand, capacity and shipment) from its range
    /// onto [−1, 1] before the network (`InputScaling`). Default false: raw inputs.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub scale_inputs: bool,
    /// Each fit's θ is the mean of the iterates after every Adam step of its last
    /// `average_last_epochs` epochs (≤ epochs; tail averaging). Default 0: the last iterate.
    #[serde(skip_serializing_if = "is_zero")]
    pub average_last_epochs: usize,
    /// For each K listed (2 ≤ K ≤ iterations), the greedy policy of q̄ = (1/K) Σ of the
    /// last K iterates' q is evaluated beside the last q's (mlp q, enumeration only).
    /// Default empty: the last q alone, as the chapter.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mean_q_of_last: Vec<usize>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl Default for Config {
    fn default() -> Self {
        Config {
            instance: Instance::Small,
            q: QForm::Affine,
            maximizer: IntegerMaximizer::Milp,
            points: 3000,
            iterations: 30,
            gamma: 0.9,
            ridge: 1e-6,
            width: 16,
            epochs: 20,
            batch_size: 64,
            lr: 3e-3,
            scale_inputs: false,
            average_last_epochs: 0,
            mean_q_of_last: Vec::new(),
        }
    }
}

/// Enumeration's limit: the large instance's 1 211 287 actions fit.
const MAX_ENUMERATED: u64 = 2_000_000;
/// Value iteration and policy evaluation stop within this of the exact values.
const VALUE_TOLERANCE: f64 = 1e-8;
const MAX_SWEEPS: usize = 100_000;

pub struct FqiAllocation;

impl Experiment for FqiAllocation {
    const NAME: &'static str = "fqi_allocation";
    const ALGORITHM: &'static str = "fqi_explicit";
    const ENVIRONMENTS: &'static [&'static str] = &["SequentialAllocation"];
    const DESCRIPTION: &'static str =
        "FQI-explicit with integer actions (MILP, ReLU-MILP or enumeration maximize) against value iteration";
    type Config = Config;

    fn check(c: &Config) -> Result<(), Invalid> {
        match (c.q, c.maximizer) {
            (QForm::Affine, IntegerMaximizer::ReluMilp) => {
                return Err(Invalid::new(
                    "maximizer",
                    "relu_milp needs q = \"mlp\" (an affine q takes milp or enumerate)",
                ))
            }
            (QForm::Mlp, IntegerMaximizer::Milp) => {
                return Err(Invalid::new(
                    "maximizer",
                    "milp needs a q affine in the action (an mlp q takes relu_milp or enumerate)",
                ))
            }
            _ => {}
        }
        at_least("points", c.points, 1)?;
        at_least("iterations", c.iterations, 1)?;
        discount("gamma", c.gamma)?;
        if c.gamma >= 1.0 {
            return Err(Invalid::new("gamma", "must be below 1 (discounted MDP)"));
        }
        non_negative("ridge", c.ridge)?;
        at_least("width", c.width, 1)?;
        at_least("epochs", c.epochs, 1)?;
        at_least("batch_size", c.batch_size, 1)?;
        if c.scale_inputs && c.q != QForm::Mlp {
            return Err(Invalid::new(
                "scale_inputs",
                "scales the inputs of an mlp q (q = \"mlp\"); the affine q has no network",
            ));
        }
        if c.average_last_epochs > 0 && c.q != QForm::Mlp {
            return Err(Invalid::new(
                "average_last_epochs",
                "averages the Adam fits of an mlp q (q = \"mlp\"); the affine q's fit is exact",
            ));
        }
        if c.average_last_epochs > c.epochs {
            return Err(Invalid::new(
                "average_last_epochs",
                format!(
                    "{} is more than the {} epochs",
                    c.average_last_epochs, c.epochs
                ),
            ));
        }
        if !c.mean_q_of_last.is_empty()
            && (c.q, c.maximizer) != (QForm::Mlp, IntegerMaximizer::Enumerate)
        {
            return Err(Invalid::new(
                "mean_q_of_last",
                "averages mlp q's and maximizes by enumeration (q = \"mlp\", maximizer = \"enumerate\"): \
                 a mean of K networks is one K times as wide, too large a ReLU-MILP",
            ));
        }
        if let Some(&k) = c
            .mean_q_of_last
            .iter()
            .find(|&&k| k < 2 || k > c.iterations)
        {
            return Err(Invalid::new(
                "mean_q_of_last",
                format!("{k} is not between 2 and the {} iterations", c.iterations),
            ));
        }
        if !c.mean_q_of_last.is_empty() && c.instance == Instance::Large {
            return Err(Invalid::new(
                "mean_q_of_last",
                "evaluates greedy policies, which only the small instance has",
            ));
        }
        positive("lr", c.lr)
    }

    fn run(c: &Config, _: &str, seed: u64, ctx: &mut CellContext) -> Result<(), CellError> {
        let seed = RunSeed(seed);
        let mdp = match c.instance {
            Instance::Small => SequentialAllocation::small()?,
            Instance::Large => SequentialAllocation::large()?,
        };
        let space = mdp.integer_space().clone();
        let (n, m) = (mdp.state_dim(), space.lower.len());
        ctx.record(0, "actions", count_feasible(&space)? as f64);
        let data = mdp.sample_transitions(c.points, seed)?;
        let params = FqiParams {
            gamma: c.gamma,
            max_iterations: c.iterations,
            // All N iterations run: the comparison is at a fixed N.
            tolerance: f64::MIN_POSITIVE,
            delta_actions_per_state: 0,
            seed,
        };
        let run = Run {
            c,
            mdp: &mdp,
            seed,
            params,
        };
        let affine_q = || ActionAffineFeatures::new(n, m).map(LinearQ::zeros);
        let least_squares = || LeastSquares::new(c.ridge);
        let mlp_q = || {
            let config = MlpConfig::new(&[n + m, c.width, 1]);
            let q = MlpQ::new(Mlp::new(&config, &mut seed.stream("q-init"))?, n)?;
            if c.scale_inputs {
                let (lower, upper) = input_bounds(&mdp);
                q.with_input_scaling(InputScaling::from_bounds(&lower, &upper)?)
            } else {
                Ok(q)
            }
        };
        let adam = || {
            AdamFit::new(AdamFitSettings {
                epochs: c.epochs,
                batch_size: c.batch_size,
                adam: AdamConfig::with_lr(c.lr),
                average_last_epochs: c.average_last_epochs,
            })
        };
        let enumeration = || EnumerationMaximizer::new(space.clone(), MAX_ENUMERATED);
        match (c.q, c.maximizer) {
            (QForm::Affine, IntegerMaximizer::Milp) => {
                let milp = MilpMaximizer::new(space.clone())?;
                run.fqi(affine_q()?, milp, least_squares()?, data, ctx, no_mean)
            }
            (QForm::Affine, _) => run.fqi(
                affine_q()?,
                enumeration()?,
                least_squares()?,
                data,
                ctx,
                no_mean,
            ),
            (QForm::Mlp, IntegerMaximizer::ReluMilp) => {
                let exact = ReluMilpMaximizer::new(ActionSpace::Integer(space.clone()))?;
                run.fqi(mlp_q()?, exact, adam()?, data, ctx, MlpQ::mean_of)
            }
            (QForm::Mlp, _) => run.fqi(mlp_q()?, enumeration()?, adam()?, data, ctx, MlpQ::mean_of),
        }
    }
}

/// The range of each input of q: demand 0..=D, capacity 0..=K_j, shipment within the
/// action bounds.
fn input_bounds(mdp: &SequentialAllocation) -> (Vec<f64>, Vec<f64>) {
    let space = mdp.integer_space();
    let sites = mdp.capacity_cap().len();
    let mut lower = vec![0.0; 2 * sites];
    let mut upper: Vec<f64> = std::iter::repeat_n(mdp.demand_cap() as f64, sites)
        .chain(mdp.capacity_cap().iter().map(|&k| k as f64))
        .collect();
    lower.extend(space.lower.iter().map(|&l| l as f64));
    upper.extend(space.upper.iter().map(|&u| u as f64));
    (lower, upper)
}

struct Run<'a> {
    c: &'a Config,
    mdp: &'a SequentialAllocation,
    seed: RunSeed,
    params: FqiParams,
}

/// `check` allows `mean_q_of_last` with an mlp q only.
fn no_mean(
    _: &[LinearQ<ActionAffineFeatures>],
) -> policy_param::Result<LinearQ<ActionAffineFeatures>> {
    Err(policy_param::Error::invalid(
        "mean_q_of_last",
        "averages mlp q's only",
    ))
}

impl Run<'_> {
    /// FQI from q's initial parameters on `data`, then the greedy policies' evaluation:
    /// the last q's, and the mean (`mean_of`) of the last K iterates' for each K of
    /// `mean_q_of_last`.
    fn fqi<Q: QFunction + Clone, M: Maximizer, F: Fit<Q>>(
        &self,
        q: Q,
        maximizer: M,
        fit: F,
        data: Transitions,
        ctx: &mut CellContext,
        mean_of: fn(&[Q]) -> policy_param::Result<Q>,
    ) -> Result<(), CellError> {
        let mut fqi = FittedQIteration::new(&self.params, q, maximizer, fit, data)?;
        ctx.set_total(self.c.iterations as u64);
        let start = Instant::now();
        let (mut target_seconds, mut calls) = (0.0, 0usize);
        let kept = self.c.mean_q_of_last.iter().copied().max().unwrap_or(0);
        // The q's of the last `kept` iterations (all N run), oldest first.
        let mut last_iterates: Vec<Q> = Vec::with_capacity(kept);
        loop {
            let report = fqi.step()?;
            let step = fqi.iteration() as u64;
            if !report.fit_loss.is_finite() {
                return Err(CellError::Diverged(format!(
                    "fit loss {} at iteration {step}",
                    report.fit_loss
                )));
            }
            ctx.record(step, "fit_loss", report.fit_loss);
            ctx.record(step, "target_seconds", report.target_time.as_secs_f64());
            ctx.record(step, "iteration_seconds", report.wall_time.as_secs_f64());
            target_seconds += report.target_time.as_secs_f64();
            calls += report.maximize_calls;
            if fqi.iteration() + kept > self.c.iterations {
                last_iterates.push(fqi.q().clone());
            }
            ctx.advance();
            if fqi.iteration() >= self.c.iterations {
                break;
            }
        }
        ctx.record(0, "iterations", fqi.iteration() as f64);
        ctx.record(0, "run_seconds", start.elapsed().as_secs_f64());
        ctx.record(0, "maximize_seconds", target_seconds / calls.max(1) as f64);
        if self.c.instance == Instance::Small {
            let actions = self.mdp.enumerate_actions()?;
            let optimum =
                self.mdp
                    .value_iteration(&actions, self.c.gamma, VALUE_TOLERANCE, MAX_SWEEPS)?;
            ctx.record(0, "states", optimum.value.values.len() as f64);
            ctx.record(0, "optimal_value", optimum.value.initial_value);
            self.evaluate(fqi.q(), fqi.maximizer(), &optimum, "", ctx)?;
            for &k in &self.c.mean_q_of_last {
                let mean = mean_of(&last_iterates[kept - k..])?;
                self.evaluate(
                    &mean,
                    fqi.maximizer(),
                    &optimum,
                    &format!("_mean_q{k}"),
                    ctx,
                )?;
            }
        }
        Ok(())
    }

    /// The greedy policy of `q` at every state, evaluated exactly against the optimum;
    /// its metrics' names end in `suffix`.
    fn evaluate<Q: QFunction, M: Maximizer>(
        &self,
        q: &Q,
        maximizer: &M,
        optimum: &OptimalSolution,
        suffix: &str,
        ctx: &mut CellContext,
    ) -> Result<(), CellError> {
        let mut rng = self.seed.stream("greedy-policy");
        let greedy = self.mdp.evaluate_greedy(
            q,
            maximizer,
            optimum,
            VALUE_TOLERANCE,
            MAX_SWEEPS,
            &mut rng,
        )?;
        let (v_star, v_pi) = (optimum.value.initial_value, greedy.value.initial_value);
        ctx.record(0, &format!("greedy_value{suffix}"), v_pi);
        ctx.record(
            0,
            &format!("value_gap_percent{suffix}"),
            100.0 * (v_star - v_pi) / v_star.abs(),
        );
        ctx.record(
            0,
            &format!("optimal_action_share{suffix}"),
            greedy.optimal_share,
        );
        Ok(())
    }
}
