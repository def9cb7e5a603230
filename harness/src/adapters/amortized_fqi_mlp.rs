//! `fitted-q-iteration-amortized` (algorithm `fqi_amortized`) on any environment of
//! [`box_task::ENVIRONMENTS`](super::box_task::ENVIRONMENTS) (`Pendulum-v1`,
//! `MountainCarContinuous-v0`), with the q side of `fqi_mlp`: base points are one-step
//! transitions from states uniform over the environment's state box (Pendulum: θ ∈
//! [−π, π], θ̇ ∈ [−8, 8]) with uniform random actions; q is an MLP on
//! `[observation, a]` fitted by minibatch Adam; `maximize` is a grid of `grid_points` per
//! action component. The decision rule d(s; w) is an MLP on the observation (Pendulum:
//! `[cos θ, sin θ, θ̇]`) with a tanh output scaled onto the action box, fitted by Adam regression
//! on 𝒟_d for exactly `rule_steps` minibatch steps per iteration (the same fitting effort
//! whatever the budget and the window).
//!
//! `budget` is the fraction of base points solved each iteration; `window` is K (a number
//! of iterations, or `"inf"`: see [`Window`]). With `method = "explicit"` the cell runs
//! `fitted-q-iteration-explicit` on the same base points, q initialization and streams
//! instead: the reference for solver calls and time. Every run does `iterations`
//! iterations unless `tolerance > 0` (see `amortized_fqi_lqr`).
//!
//! Metrics every `record_every` iterations and at the last (step n = fits done, from 1):
//! `delta_q`, `delta_d` (amortized), `q_fit_loss`, `solver_calls` (so far). Every `eval_every` iterations and
//! at the last, mean undiscounted return over `eval_episodes` episodes as long as the
//! environment's time limit (Pendulum: 200 steps; a uniformly random policy scores about
//! −1200) of
//! - `rule_return` (amortized): the decision rule d(s; wₙ) acting alone, solver-free;
//! - `greedy_return`: the greedy policy of q(·; θₙ), which calls the grid maximizer at
//!   every step.
//!
//! Once (step 0): `final_rule_return`, `final_greedy_return`, `iterations`,
//! `solver_calls_total`, and timings of the iterations (evaluations excluded):
//! `run_seconds`, `run_cpu_seconds`, `target_seconds`, `solve_seconds`, `q_fit_seconds`,
//! `rule_fit_seconds` (as in `amortized_fqi_lqr`).
//!
//! A fit loss above `max_loss`, or a non-finite one, is divergence.

use serde::{Deserialize, Serialize};

use policy_param::algo::decision_rule::mlp_policy_map;
use policy_param::algo::deterministic_policy::PolicyOutput;
use policy_param::algo::{
    AdamFit, AdamFitSettings, AmortizedFqi, AmortizedFqiParams, FitLength, FittedQIteration,
    FqiParams, GreedyPolicy, MlpPolicy, MlpPolicySettings, SolveBudget,
};
use policy_param::eval::{evaluate_with, EvalSettings};
use policy_param::maximize::{GridMaximizer, Maximizer};
use policy_param::nn::{AdamConfig, Mlp, MlpConfig};
use policy_param::qfunction::MlpQ;
use policy_param::rng::RunSeed;

use super::box_task::{self, BoxTask};
use super::timings::{library_tolerance, Timings};
use super::{at_least, discount, fraction, non_negative, positive, FqiMethod, Window};
use crate::error::{CellError, Invalid};
use crate::experiment::{CellContext, Experiment};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// `amortized` or `explicit` (the reference). Default `amortized`.
    pub method: FqiMethod,
    /// Fraction of the base points solved exactly each iteration, in [0, 1]. Default 0.1.
    pub budget: f64,
    /// K: iterations of solver answers the rule is fitted on, or `"inf"`. Default 3.
    pub window: Window,
    /// Draw 𝓑_opt once and keep it (the pseudocode's fixed input) instead of redrawing
    /// it every iteration. Default false (left out of the canonical config when false,
    /// so that cells of grids written before it keep their hashes).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub fixed_subset: bool,
    /// Base points |𝓑| (≥ 1). Default 5000.
    pub points: usize,
    /// Width of q's two hidden layers (≥ 1). Default 64.
    pub width: usize,
    /// N, the iterations (≥ 1). Default 40.
    pub iterations: usize,
    /// ε ≥ 0: stop once max(δ_q, δ_d) < ε; 0 never stops early. Default 0.
    pub tolerance: f64,
    /// Passes of Adam over 𝒟_q per iteration (≥ 1). Default 5.
    pub epochs: usize,
    /// Minibatch size of the q fit (≥ 1). Default 128.
    pub batch_size: usize,
    /// Adam's learning rate for q (> 0). Default 1e-3.
    pub lr: f64,
    /// γ ∈ (0, 1]. Default 0.97.
    pub gamma: f64,
    /// Points per action component of the grid maximizer (≥ 2). Default 21.
    pub grid_points: usize,
    /// Width of the rule's two hidden layers (≥ 1). Default 64.
    pub rule_width: usize,
    /// Adam minibatch steps of the rule's fit per iteration (≥ 1). Default 200.
    pub rule_steps: usize,
    /// Minibatch size of the rule's fit (≥ 1; a smaller 𝒟_d is one batch). Default 256.
    pub rule_batch_size: usize,
    /// Adam's learning rate for the rule (> 0). Default 1e-3.
    pub rule_lr: f64,
    /// Evaluation episodes of each policy (≥ 1). Default 10.
    pub eval_episodes: usize,
    /// Evaluate every this many iterations (0: only after the last). Default 10.
    pub eval_every: usize,
    /// A q fit loss above this is divergence (> 0). Default 1e6.
    pub max_loss: f64,
    /// Record the per-iteration metrics every this many iterations (and at the last;
    /// ≥ 1). Default 1.
    pub record_every: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            method: FqiMethod::Amortized,
            budget: 0.1,
            window: Window::Iterations(3),
            fixed_subset: false,
            points: 5000,
            width: 64,
            iterations: 40,
            tolerance: 0.0,
            epochs: 5,
            batch_size: 128,
            lr: 1e-3,
            gamma: 0.97,
            grid_points: 21,
            rule_width: 64,
            rule_steps: 200,
            rule_batch_size: 256,
            rule_lr: 1e-3,
            eval_episodes: 10,
            eval_every: 10,
            max_loss: 1e6,
            record_every: 1,
        }
    }
}

pub struct AmortizedFqiMlp;

impl Experiment for AmortizedFqiMlp {
    const NAME: &'static str = "amortized_fqi_mlp";
    const ALGORITHM: &'static str = "fqi_amortized";
    const ENVIRONMENTS: &'static [&'static str] = box_task::ENVIRONMENTS;
    const DESCRIPTION: &'static str = "FQI-amortized (or -explicit), MLP q and MLP rule, grid maximize: rule and greedy return, δ_q, δ_d, solver calls, time";
    type Config = Config;

    fn check(c: &Config) -> Result<(), Invalid> {
        fraction("budget", c.budget)?;
        at_least("points", c.points, 1)?;
        at_least("width", c.width, 1)?;
        at_least("iterations", c.iterations, 1)?;
        non_negative("tolerance", c.tolerance)?;
        at_least("epochs", c.epochs, 1)?;
        at_least("batch_size", c.batch_size, 1)?;
        positive("lr", c.lr)?;
        discount("gamma", c.gamma)?;
        at_least("grid_points", c.grid_points, 2)?;
        at_least("rule_width", c.rule_width, 1)?;
        at_least("rule_steps", c.rule_steps, 1)?;
        at_least("rule_batch_size", c.rule_batch_size, 1)?;
        positive("rule_lr", c.rule_lr)?;
        at_least("eval_episodes", c.eval_episodes, 1)?;
        positive("max_loss", c.max_loss)?;
        at_least("record_every", c.record_every, 1)
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
        let fit = AdamFit::new(AdamFitSettings {
            epochs: c.epochs,
            batch_size: c.batch_size,
            adam: AdamConfig::with_lr(c.lr),
            average_last_epochs: 0,
        })?;
        let space = task.space.clone();
        let maximizer = GridMaximizer::new(space.clone(), c.grid_points)?;
        let evaluation = EvalSettings {
            episodes: c.eval_episodes,
            seed: seed.child("eval", 0),
            gamma: 1.0,
            max_steps: task.eval_steps,
        };
        let tolerance = library_tolerance(c.tolerance);
        let mut timings = Timings::new();
        let mut calls = 0usize;
        ctx.set_total(c.iterations as u64);
        let diverged = |loss: f64, step: usize| -> Result<(), CellError> {
            if loss > c.max_loss {
                return Err(CellError::Diverged(format!(
                    "q fit loss {loss} exceeds max_loss {} at iteration {step}",
                    c.max_loss
                )));
            }
            Ok(())
        };
        let evaluate_now = |step: usize, last: bool| {
            last || (c.eval_every > 0 && step.is_multiple_of(c.eval_every))
        };
        match c.method {
            FqiMethod::Explicit => {
                let params = FqiParams {
                    gamma: c.gamma,
                    max_iterations: c.iterations,
                    tolerance,
                    delta_actions_per_state: 0,
                    seed,
                };
                let mut fqi = FittedQIteration::new(&params, q, maximizer, fit, data)?;
                loop {
                    let report = timings.cpu_of(|| fqi.step())?;
                    let step = fqi.iteration();
                    calls += report.maximize_calls;
                    timings.run += report.wall_time.as_secs_f64();
                    timings.target += report.target_time.as_secs_f64();
                    timings.solve += report.target_time.as_secs_f64();
                    timings.q_fit += report.fit_time.as_secs_f64();
                    let s = step as u64;
                    diverged(report.fit_loss, step)?;
                    let last =
                        (c.tolerance > 0.0 && report.delta < c.tolerance) || step >= c.iterations;
                    if last || step % c.record_every == 0 {
                        ctx.record(s, "delta_q", report.delta);
                        ctx.record(s, "q_fit_loss", report.fit_loss);
                        ctx.record(s, "solver_calls", calls as f64);
                    }
                    if evaluate_now(step, last) {
                        let greedy = greedy_return(&fqi.greedy_policy(), &task, &evaluation)?;
                        ctx.record(s, "greedy_return", greedy);
                        if last {
                            ctx.record(0, "final_greedy_return", greedy);
                        }
                    }
                    ctx.advance();
                    if last {
                        ctx.record(0, "iterations", step as f64);
                        ctx.record(0, "solver_calls_total", calls as f64);
                        timings.record(ctx, false);
                        return Ok(());
                    }
                }
            }
            FqiMethod::Amortized => {
                let params = AmortizedFqiParams {
                    gamma: c.gamma,
                    max_iterations: c.iterations,
                    tolerance,
                    budget: SolveBudget::Fraction(c.budget),
                    window: c.window.as_option(),
                    fixed_subset: c.fixed_subset,
                    delta_actions_per_state: 0,
                    seed,
                };
                let actor = Mlp::new(
                    &MlpConfig::new(&[
                        task.observation_dim,
                        c.rule_width,
                        c.rule_width,
                        task.action_dim,
                    ])
                    .output(PolicyOutput::TanhScaled.activation()),
                    &mut seed.stream("d-init"),
                )?;
                let rule = MlpPolicy::new(
                    actor,
                    mlp_policy_map(PolicyOutput::TanhScaled, &space)?,
                    MlpPolicySettings {
                        length: FitLength::Steps(c.rule_steps),
                        batch_size: c.rule_batch_size,
                        adam: AdamConfig::with_lr(c.rule_lr),
                    },
                )?;
                let mut fqi = AmortizedFqi::new(&params, q, maximizer, fit, rule, data)?;
                let make_env = task.make_env();
                loop {
                    let report = timings.cpu_of(|| fqi.step())?;
                    let step = fqi.iteration();
                    calls += report.solver_calls;
                    timings.run += report.wall_time.as_secs_f64();
                    timings.target += report.target_time.as_secs_f64();
                    timings.solve += report.solve_time.as_secs_f64();
                    timings.q_fit += report.q_fit_time.as_secs_f64();
                    timings.rule_fit += report.policy_fit_time.as_secs_f64();
                    let s = step as u64;
                    diverged(report.q_fit_loss, step)?;
                    let last = (c.tolerance > 0.0
                        && report.delta_q.max(report.delta_d) < c.tolerance)
                        || step >= c.iterations;
                    if last || step % c.record_every == 0 {
                        ctx.record(s, "delta_q", report.delta_q);
                        ctx.record(s, "delta_d", report.delta_d);
                        ctx.record(s, "q_fit_loss", report.q_fit_loss);
                        ctx.record(s, "solver_calls", calls as f64);
                    }
                    if evaluate_now(step, last) {
                        let rule = fqi
                            .rule()
                            .policy()
                            .evaluate(make_env, &evaluation)?
                            .mean_return();
                        let greedy = greedy_return(&fqi.greedy_policy(), &task, &evaluation)?;
                        ctx.record(s, "rule_return", rule);
                        ctx.record(s, "greedy_return", greedy);
                        if last {
                            ctx.record(0, "final_rule_return", rule);
                            ctx.record(0, "final_greedy_return", greedy);
                        }
                    }
                    ctx.advance();
                    if last {
                        ctx.record(0, "iterations", step as f64);
                        ctx.record(0, "solver_calls_total", calls as f64);
                        timings.record(ctx, true);
                        return Ok(());
                    }
                }
            }
        }
    }
}

/// Mean return of the greedy policy of q (a `maximize` per step).
fn greedy_return<M: Maximizer>(
    policy: &GreedyPolicy<'_, MlpQ, M>,
    task: &BoxTask<'_>,
    settings: &EvalSettings,
) -> Result<f64, CellError> {
    let evaluation = evaluate_with(
        task.make_env(),
        || policy.workspace(),
        |ws, obs, rng, action| policy.greedy_action(ws, obs, rng, action),
        settings,
    )?;
    Ok(evaluation.mean_return())
}
