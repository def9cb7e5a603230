//! `fitted-q-iteration-explicit` with a q-network on any environment of
//! [`box_task::ENVIRONMENTS`](super::box_task::ENVIRONMENTS) (`Pendulum-v1`,
//! `MountainCarContinuous-v0`; the defaults are the settings of `examples/fqi_pendulum.rs`,
//! smaller): base points are one-step transitions from states uniform over the
//! environment's state box (Pendulum: θ ∈ [−π, π], θ̇ ∈ [−8, 8]) with uniform random
//! actions; q is an MLP on `[observation, a]` fitted by minibatch Adam; `maximize` is a
//! grid over the action box (`grid`) or multi-start L-BFGS on argmin (`lbfgs`) — or,
//! for smooth FQI (the chapter's "Fitted Q-Iteration for the Smooth Bellman Equations"),
//! the smooth maximum `β log ∫ exp(q(s', a)/β) da` by Gauss–Legendre quadrature
//! (`log_partition`, 16 panels × 4 points over the action box, with `beta` set) — or the
//! exact maximum of the ReLU q by MILP (`relu_milp`), audited at every evaluation on the
//! next states of the first 100 base points: `lbfgs_gap_mean`, `lbfgs_suboptimal_share`,
//! `grid_gap_mean` (exact maximum − L-BFGS's / the grid's), and the seconds per call of
//! each (`relu_milp_maximize_seconds`, `lbfgs_maximize_seconds`, `grid_maximize_seconds`).
//!
//! Metrics per iteration (step n = number of fits done, from 1): `delta`, `fit_loss`,
//! `iteration_seconds` (timing); every `eval_every` iterations and after the last one,
//! `eval_return`: the greedy policy's mean undiscounted return over `eval_episodes`
//! episodes as long as the environment's time limit (Pendulum: 200 steps, where a
//! uniformly random policy scores about −1200). With `log_partition` that policy acts
//! with the Boltzmann policy's mean, and `eval_return_sampled` is recorded beside it: the
//! same q acting with draws from `d(a|s) ∝ exp(q(s, a)/β)` (over the quadrature nodes).
//! Once (step 0): `final_eval_return` (and `final_eval_return_sampled`) after the last
//! iteration, `iterations` done, `run_seconds`.
//!
//! A fit loss above `max_loss`, or a non-finite one, is divergence.

use serde::{Deserialize, Serialize};

use policy_param::algo::smooth_fqi::{BoltzmannSampler, LogPartition, LogPartitionSettings};
use policy_param::algo::{
    AdamFit, AdamFitSettings, FittedQIteration, FqiParams, GreedyPolicy, Transitions,
};
use policy_param::env::ActionSpace;
use policy_param::eval::{evaluate_with, EvalSettings};
use policy_param::maximize::{
    GridMaximizer, LbfgsSettings, Maximizer, ProjectedLbfgs, QFunction, ReluMilpMaximizer,
};
use policy_param::nn::AdamConfig;
use policy_param::qfunction::MlpQ;
use policy_param::rng::RunSeed;

use super::box_task::{self, BoxTask};
use super::{at_least, discount, positive};
use crate::error::{CellError, Invalid};
use crate::experiment::{CellContext, Experiment};

/// How `maximize` is done.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MlpMaximizer {
    /// `grid_points` evenly spaced values of each action component over its box.
    #[default]
    Grid,
    /// Multi-start projected L-BFGS (argmin), default settings.
    Lbfgs,
    /// Smooth FQI: `β log ∫ exp(q/β)` by quadrature (needs `beta`).
    LogPartition,
    /// The exact maximum of the ReLU q by MILP (`ReluMilpMaximizer`, microlp), audited at
    /// every evaluation against L-BFGS and the grid.
    ReluMilp,
}

/// Next states of the first base points on which `relu_milp` runs audit L-BFGS and the grid.
const AUDIT_STATES: usize = 100;

/// The quadrature of `log_partition`: 16 panels × 4 Gauss–Legendre points per action
/// component (64 nodes on Pendulum's [−2, 2]).
const PANELS: usize = 16;
const ORDER: usize = 4;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Base points |𝓑| (≥ 1). Default 3000.
    pub points: usize,
    /// Width of the two hidden layers (≥ 1). Default 64.
    pub width: usize,
    /// N, the most iterations (≥ 1). Default 30.
    pub iterations: usize,
    /// ε: stop once δ < ε (> 0). Default 1e-6.
    pub tolerance: f64,
    /// Passes of Adam over 𝒟 per iteration (≥ 1). Default 5.
    pub epochs: usize,
    /// Minibatch size (≥ 1). Default 128.
    pub batch_size: usize,
    /// Adam's learning rate (> 0). Default 1e-3.
    pub lr: f64,
    /// γ ∈ (0, 1]. Default 0.97.
    pub gamma: f64,
    /// `grid`, `lbfgs`, `log_partition` or `relu_milp`. Default `grid`.
    pub maximizer: MlpMaximizer,
    /// Temperature β > 0 of `log_partition` (required with it, refused without).
    /// Left out of the canonical config when unset, so that the cells of grids written
    /// before it existed keep their hashes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub beta: Option<f64>,
    /// Points per action component of the grid maximizer (≥ 2). Default 21.
    pub grid_points: usize,
    /// Actions per base-point state for δ. Default 2.
    pub delta_actions: usize,
    /// Evaluation episodes of the greedy policy (≥ 1). Default 10.
    pub eval_episodes: usize,
    /// Evaluate every this many iterations (0: only after the last). Default 10.
    pub eval_every: usize,
    /// A fit loss above this is divergence (> 0). Default 1e6.
    pub max_loss: f64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            points: 3000,
            width: 64,
            iterations: 30,
            tolerance: 1e-6,
            epochs: 5,
            batch_size: 128,
            lr: 1e-3,
            gamma: 0.97,
            maximizer: MlpMaximizer::Grid,
            beta: None,
            grid_points: 21,
            delta_actions: 2,
            eval_episodes: 10,
            eval_every: 10,
            max_loss: 1e6,
        }
    }
}

pub struct FqiMlp;

impl Experiment for FqiMlp {
    const NAME: &'static str = "fqi_mlp";
    const ALGORITHM: &'static str = "fqi_explicit";
    const ENVIRONMENTS: &'static [&'static str] = box_task::ENVIRONMENTS;
    const DESCRIPTION: &'static str =
        "FQI-explicit, MLP q, Adam fit, grid, L-BFGS or ReLU-MILP maximize: δ, fit loss, greedy return";
    type Config = Config;

    fn check(c: &Config) -> Result<(), Invalid> {
        at_least("points", c.points, 1)?;
        at_least("width", c.width, 1)?;
        at_least("iterations", c.iterations, 1)?;
        positive("tolerance", c.tolerance)?;
        at_least("epochs", c.epochs, 1)?;
        at_least("batch_size", c.batch_size, 1)?;
        positive("lr", c.lr)?;
        discount("gamma", c.gamma)?;
        at_least("grid_points", c.grid_points, 2)?;
        match (c.maximizer, c.beta) {
            (MlpMaximizer::LogPartition, Some(beta)) => positive("beta", beta)?,
            (MlpMaximizer::LogPartition, None) => {
                return Err(Invalid::new(
                    "beta",
                    "maximizer = \"log_partition\" needs beta",
                ))
            }
            (_, Some(_)) => {
                return Err(Invalid::new(
                    "beta",
                    "only maximizer = \"log_partition\" reads beta",
                ))
            }
            (_, None) => {}
        }
        at_least("eval_episodes", c.eval_episodes, 1)?;
        positive("max_loss", c.max_loss)
    }

    fn run(
        c: &Config,
        environment: &str,
        seed: u64,
        ctx: &mut CellContext,
    ) -> Result<(), CellError> {
        let seed = RunSeed(seed);
        let mut task = BoxTask::new(environment)?;
        let data = task.base_points(c.points, seed)?;
        let q = task.q_network(c.width, seed)?;
        let params = FqiParams {
            gamma: c.gamma,
            max_iterations: c.iterations,
            tolerance: c.tolerance,
            delta_actions_per_state: c.delta_actions,
            seed,
        };
        let fit = AdamFit::new(AdamFitSettings {
            epochs: c.epochs,
            batch_size: c.batch_size,
            adam: AdamConfig::with_lr(c.lr),
            average_last_epochs: 0,
        })?;
        let space = task.space.clone();
        match c.maximizer {
            MlpMaximizer::Grid => {
                let maximizer = GridMaximizer::new(space, c.grid_points)?;
                iterate(
                    FittedQIteration::new(&params, q, maximizer, fit, data)?,
                    c,
                    &task,
                    seed,
                    ctx,
                )
            }
            MlpMaximizer::Lbfgs => {
                let maximizer = ProjectedLbfgs::new(space, LbfgsSettings::default())?;
                iterate(
                    FittedQIteration::new(&params, q, maximizer, fit, data)?,
                    c,
                    &task,
                    seed,
                    ctx,
                )
            }
            MlpMaximizer::ReluMilp => {
                let audit = Audit::new(&data, &space, c.grid_points)?;
                let maximizer = ReluMilpMaximizer::new(space)?;
                iterate_sampling(
                    FittedQIteration::new(&params, q, maximizer, fit, data)?,
                    c,
                    &task,
                    seed,
                    None::<&BoltzmannSampler>,
                    Some(&audit),
                    ctx,
                )
            }
            MlpMaximizer::LogPartition => {
                let settings = LogPartitionSettings {
                    beta: c.beta.unwrap_or(1.0),
                    panels: PANELS,
                    order: ORDER,
                };
                let maximizer = LogPartition::new(&space, settings)?;
                let sampler = maximizer.sampler();
                iterate_sampling(
                    FittedQIteration::new(&params, q, maximizer, fit, data)?,
                    c,
                    &task,
                    seed,
                    Some(&sampler),
                    None,
                    ctx,
                )
            }
        }
    }
}

fn iterate<M: Maximizer>(
    fqi: FittedQIteration<MlpQ, M, AdamFit>,
    c: &Config,
    task: &BoxTask<'_>,
    seed: RunSeed,
    ctx: &mut CellContext,
) -> Result<(), CellError> {
    iterate_sampling(fqi, c, task, seed, None::<&BoltzmannSampler>, None, ctx)
}

/// The iterations; with `sampler`, each evaluation also acts with its draws; with
/// `audit`, each evaluation also measures L-BFGS and the grid against the exact maximum.
fn iterate_sampling<M: Maximizer, S: Maximizer>(
    mut fqi: FittedQIteration<MlpQ, M, AdamFit>,
    c: &Config,
    task: &BoxTask<'_>,
    seed: RunSeed,
    sampler: Option<&S>,
    audit: Option<&Audit>,
    ctx: &mut CellContext,
) -> Result<(), CellError> {
    ctx.set_total(c.iterations as u64);
    let settings = EvalSettings {
        episodes: c.eval_episodes,
        seed: seed.child("eval", 0),
        gamma: 1.0,
        max_steps: task.eval_steps,
    };
    let make_env = task.make_env();
    let start = std::time::Instant::now();
    loop {
        let report = fqi.step()?;
        let step = fqi.iteration() as u64;
        ctx.record(step, "delta", report.delta);
        ctx.record(step, "fit_loss", report.fit_loss);
        ctx.record(step, "iteration_seconds", report.wall_time.as_secs_f64());
        if report.fit_loss > c.max_loss {
            return Err(CellError::Diverged(format!(
                "fit loss {} exceeds max_loss {} at iteration {step}",
                report.fit_loss, c.max_loss
            )));
        }
        let last = report.delta < c.tolerance || fqi.iteration() >= c.iterations;
        if last || (c.eval_every > 0 && fqi.iteration().is_multiple_of(c.eval_every)) {
            let policy = fqi.greedy_policy();
            let evaluation = evaluate_with(
                make_env,
                || policy.workspace(),
                |ws, obs, rng, action| policy.greedy_action(ws, obs, rng, action),
                &settings,
            )?;
            ctx.record(step, "eval_return", evaluation.mean_return());
            if let Some(audit) = audit {
                audit.record(fqi.q(), step, seed, ctx)?;
            }
            if let Some(sampler) = sampler {
                let sampling = GreedyPolicy::new(fqi.q(), sampler)?;
                let sampled = evaluate_with(
                    make_env,
                    || sampling.workspace(),
                    |ws, obs, rng, action| sampling.greedy_action(ws, obs, rng, action),
                    &settings,
                )?;
                ctx.record(step, "eval_return_sampled", sampled.mean_return());
                if last {
                    ctx.record(0, "final_eval_return_sampled", sampled.mean_return());
                }
            }
            if last {
                ctx.record(0, "final_eval_return", evaluation.mean_return());
                ctx.record(0, "iterations", step as f64);
                ctx.record(0, "run_seconds", start.elapsed().as_secs_f64());
            }
        }
        ctx.advance();
        if last {
            return Ok(());
        }
    }
}

/// Next states on which a `relu_milp` run measures, at each evaluation, how far L-BFGS
/// (default settings) and the grid stop below the exact maximum of the current q.
struct Audit {
    states: Vec<f64>,
    state_dim: usize,
    exact: ReluMilpMaximizer,
    lbfgs: ProjectedLbfgs,
    grid: GridMaximizer,
}

impl Audit {
    fn new(data: &Transitions, space: &ActionSpace, grid_points: usize) -> Result<Self, CellError> {
        let n = data.len().min(AUDIT_STATES);
        let state_dim = data.state_dim();
        Ok(Audit {
            states: data.next_states()[..n * state_dim].to_vec(),
            state_dim,
            exact: ReluMilpMaximizer::new(space.clone())?,
            lbfgs: ProjectedLbfgs::new(space.clone(), LbfgsSettings::default())?,
            grid: GridMaximizer::new(space.clone(), grid_points)?,
        })
    }

    /// Metrics at `step`: `lbfgs_gap_mean`, `lbfgs_suboptimal_share` (gap above
    /// 1e-4 · max(1, |q|)), `grid_gap_mean`, and seconds per call of each maximizer.
    fn record(
        &self,
        q: &MlpQ,
        step: u64,
        seed: RunSeed,
        ctx: &mut CellContext,
    ) -> Result<(), CellError> {
        let mut q_ws = q.workspace();
        let (mut exact_ws, mut lbfgs_ws, mut grid_ws) = (
            self.exact.workspace(),
            self.lbfgs.workspace(),
            self.grid.workspace(),
        );
        let mut action = vec![0.0; self.exact.action_space().dim()];
        let mut rng = seed.child("audit", step).stream("lbfgs");
        let (mut seconds, mut gaps, mut suboptimal) = ([0.0; 3], [0.0; 2], 0usize);
        let n = self.states.len() / self.state_dim;
        for state in self.states.chunks(self.state_dim) {
            let start = std::time::Instant::now();
            let best =
                self.exact
                    .maximize(q, &mut q_ws, &mut exact_ws, state, &mut action, &mut rng)?;
            seconds[0] += start.elapsed().as_secs_f64();
            let start = std::time::Instant::now();
            let local =
                self.lbfgs
                    .maximize(q, &mut q_ws, &mut lbfgs_ws, state, &mut action, &mut rng)?;
            seconds[1] += start.elapsed().as_secs_f64();
            let start = std::time::Instant::now();
            let grid =
                self.grid
                    .maximize(q, &mut q_ws, &mut grid_ws, state, &mut action, &mut rng)?;
            seconds[2] += start.elapsed().as_secs_f64();
            let gap = best.value - local.value;
            gaps[0] += gap;
            gaps[1] += best.value - grid.value;
            if gap > 1e-4 * best.value.abs().max(1.0) {
                suboptimal += 1;
            }
        }
        let n_f = n as f64;
        ctx.record(step, "lbfgs_gap_mean", gaps[0] / n_f);
        ctx.record(step, "lbfgs_suboptimal_share", suboptimal as f64 / n_f);
        ctx.record(step, "grid_gap_mean", gaps[1] / n_f);
        ctx.record(step, "relu_milp_maximize_seconds", seconds[0] / n_f);
        ctx.record(step, "lbfgs_maximize_seconds", seconds[1] / n_f);
        ctx.record(step, "grid_maximize_seconds", seconds[2] / n_f);
        Ok(())
    }
}
