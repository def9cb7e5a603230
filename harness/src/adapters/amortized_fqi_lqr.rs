//! `fitted-q-iteration-amortized` on `Lqr` (algorithm `fqi_amortized`): quadratic q
//! fitted by least squares (q* is in the class), `maximize` by multi-start L-BFGS on
//! argmin (`lbfgs`, which knows nothing of the quadratic form, so a solve costs what a
//! generic solver costs) or the exact concave-quadratic argmax (`quadratic`), and the
//! decision rule d(s; W, b) = clip(W s + b) fitted by least squares on 𝒟_d — the LQR's
//! optimal policy a = −K* s is in that class. Base points: states uniform in
//! `[−state_bound, state_bound]ⁿ`, actions uniform in `[−action_bound, action_bound]ᵐ`,
//! one noise-free step each (the base points of `fqi_lqr`).
//!
//! Each iteration solves a fraction `budget` of the base points (𝓑_opt, drawn afresh)
//! and takes d(s'; wₙ) at the others; the rule is fitted on the solves of the last
//! `window` iterations: K = `window` ≥ 0, or `"inf"` for K = ∞ (see [`Window`]; K = 0
//! is the pseudocode as written, the current iteration's solves only). With
//! `method = "explicit"` the cell runs `fitted-q-iteration-explicit` instead, on the same
//! base points and random streams: the reference for solver calls and time (with
//! `budget = 1` the amortized q is bit for bit the explicit one).
//!
//! Every run does `iterations` iterations unless `tolerance > 0` (then it stops once
//! max(δ_q, δ_d) < ε): with K = ∞ δ_d stays above any small ε (the rule cannot fit the
//! stale answers exactly) and budgets < 1 converge slowly, so outcomes are compared at a
//! fixed N.
//!
//! Metrics every `record_every` iterations and at the last (step n = fits done, from 1):
//! - `gain_error`: ‖K_n − K*‖_F / ‖K*‖_F, K_n the gain of q(·; θₙ)'s greedy policy (the
//!   solver's answer, `H_aa⁻¹ H_as`), K* Riccati's;
//! - `rule_gain_error` (amortized): ‖(−Wₙ) − K*‖_F / ‖K*‖_F, the gain of the rule
//!   (exactly 1 while W = 0: with `budget = 0` the rule is never fitted);
//! - `delta_q` (step 3.8; FQI-explicit's δ over the base points' own pairs), `delta_d`
//!   (amortized, step 3.9; 0 while 𝒟_d is empty);
//! - `solver_calls`: `maximize` calls so far.
//!
//! Once (step 0): `iterations`, `final_gain_error`, `final_rule_gain_error` (amortized),
//! `solver_calls_total`, and timings of the iterations (evaluation excluded): `run_seconds`
//! (wall time of all iterations), `run_cpu_seconds` (the CPU time they took on the cell's
//! thread, which other jobs on the machine do not inflate; all of the cell's work with the
//! default one thread per cell), `target_seconds` (step 3.3: solves and rule actions),
//! `solve_seconds` (inside `maximize`), `q_fit_seconds`, `rule_fit_seconds` (amortized).

use nalgebra::DMatrix;
use serde::{Deserialize, Serialize};

use policy_param::algo::{
    AmortizedFqi, AmortizedFqiParams, FittedQIteration, FqiParams, LeastSquares, LinearPolicy,
    LinearPolicySettings, SolveBudget, Transitions,
};
use policy_param::env::{ActionSpace, Env};
use policy_param::maximize::{LbfgsSettings, Maximizer, ProjectedLbfgs, QuadraticArgmax};
use policy_param::qfunction::linear::{LinearQ, QuadraticFeatures};
use policy_param::rng::RunSeed;

use super::lqr_setup::{greedy_gain_and_p, lqr_base_points, relative, LqrMaximizer};
use super::timings::{library_tolerance, Timings};
use super::{at_least, fraction, non_negative, positive, FqiMethod, LqrSystemName, Window};
use crate::error::{CellError, Invalid};
use crate::experiment::{CellContext, Experiment};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Which LQR system. Default `scalar`.
    pub system: LqrSystemName,
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
    /// `lbfgs` or `quadratic`. Default `lbfgs`.
    pub maximizer: LqrMaximizer,
    /// Base points |𝓑| (≥ the number of quadratic features). Default 400.
    pub points: usize,
    /// Half-width of the state box of the base points (> 0). Default 1.
    pub state_bound: f64,
    /// Half-width of their action box (> 0). Default 1.
    pub action_bound: f64,
    /// N, the iterations (≥ 1). Default 100.
    pub iterations: usize,
    /// ε ≥ 0: stop once max(δ_q, δ_d) < ε; 0 never stops early. Default 0.
    pub tolerance: f64,
    /// Ridge of the q fit (finite, ≥ 0). Default 0.
    pub ridge: f64,
    /// Ridge of the rule's least-squares fit (finite, ≥ 0). Default 1e-10.
    pub rule_ridge: f64,
    /// L-BFGS starts (≥ 1). Default 2.
    pub lbfgs_starts: usize,
    /// Random candidates screened for the L-BFGS starts. Default 8.
    pub lbfgs_candidates: usize,
    /// Record the per-iteration metrics every this many iterations (and at the last;
    /// ≥ 1). Default 1.
    pub record_every: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            system: LqrSystemName::Scalar,
            method: FqiMethod::Amortized,
            budget: 0.1,
            window: Window::Iterations(3),
            fixed_subset: false,
            maximizer: LqrMaximizer::Lbfgs,
            points: 400,
            state_bound: 1.0,
            action_bound: 1.0,
            iterations: 100,
            tolerance: 0.0,
            ridge: 0.0,
            rule_ridge: 1e-10,
            lbfgs_starts: 2,
            lbfgs_candidates: 8,
            record_every: 1,
        }
    }
}

pub struct AmortizedFqiLqr;

impl Experiment for AmortizedFqiLqr {
    const NAME: &'static str = "amortized_fqi_lqr";
    const ALGORITHM: &'static str = "fqi_amortized";
    const ENVIRONMENTS: &'static [&'static str] = &["Lqr"];
    const DESCRIPTION: &'static str = "FQI-amortized (or -explicit), quadratic q, linear rule: greedy and rule gain error vs Riccati, δ_q, δ_d, solver calls, time";
    type Config = Config;

    fn check(c: &Config) -> Result<(), Invalid> {
        let system = c.system.params();
        let (n, m) = (system.a.nrows(), system.b.ncols());
        let features = (n + m + 1) * (n + m + 2) / 2;
        fraction("budget", c.budget)?;
        at_least("points", c.points, features)?;
        positive("state_bound", c.state_bound)?;
        positive("action_bound", c.action_bound)?;
        at_least("iterations", c.iterations, 1)?;
        non_negative("tolerance", c.tolerance)?;
        non_negative("ridge", c.ridge)?;
        non_negative("rule_ridge", c.rule_ridge)?;
        at_least("lbfgs_starts", c.lbfgs_starts, 1)?;
        at_least("record_every", c.record_every, 1)
    }

    fn run(c: &Config, _: &str, seed: u64, ctx: &mut CellContext) -> Result<(), CellError> {
        let (env, solution, data) =
            lqr_base_points(c.system, c.state_bound, c.action_bound, c.points, seed)?;
        let (n, m) = (env.system().state_dim(), env.system().action_dim());
        let setup = Setup {
            gamma: env.system().gamma(),
            seed: RunSeed(seed),
            gain: solution.gain().clone(),
            state_dim: n,
            action_dim: m,
            space: env.action_space().clone(),
            data,
        };
        match c.maximizer {
            LqrMaximizer::Quadratic => {
                let maximizer = QuadraticArgmax::new(env.action_space())?;
                run_method(maximizer, c, setup, ctx)
            }
            LqrMaximizer::Lbfgs => {
                let maximizer = ProjectedLbfgs::new(
                    env.action_space().clone(),
                    LbfgsSettings {
                        starts: c.lbfgs_starts,
                        candidates: c.lbfgs_candidates,
                        ..LbfgsSettings::default()
                    },
                )?;
                run_method(maximizer, c, setup, ctx)
            }
        }
    }
}

/// What both methods share.
struct Setup {
    gamma: f64,
    seed: RunSeed,
    gain: DMatrix<f64>,
    state_dim: usize,
    action_dim: usize,
    space: ActionSpace,
    data: Transitions,
}

fn run_method<M: Maximizer>(
    maximizer: M,
    c: &Config,
    setup: Setup,
    ctx: &mut CellContext,
) -> Result<(), CellError> {
    let q = LinearQ::zeros(QuadraticFeatures::new(setup.state_dim, setup.action_dim)?);
    let fit = LeastSquares::new(c.ridge)?;
    let gain_error = |q: &LinearQ<QuadraticFeatures>| -> Result<f64, CellError> {
        let (gain, _) = greedy_gain_and_p(q, setup.state_dim)?;
        Ok(relative(&gain, &setup.gain))
    };
    let tolerance = library_tolerance(c.tolerance);
    let mut timings = Timings::new();
    let mut calls = 0usize;
    ctx.set_total(c.iterations as u64);
    match c.method {
        FqiMethod::Explicit => {
            let params = FqiParams {
                gamma: setup.gamma,
                max_iterations: c.iterations,
                tolerance,
                delta_actions_per_state: 0,
                seed: setup.seed,
            };
            let mut fqi = FittedQIteration::new(&params, q, maximizer, fit, setup.data)?;
            loop {
                let report = timings.cpu_of(|| fqi.step())?;
                let step = fqi.iteration();
                calls += report.maximize_calls;
                timings.run += report.wall_time.as_secs_f64();
                timings.target += report.target_time.as_secs_f64();
                timings.solve += report.target_time.as_secs_f64();
                timings.q_fit += report.fit_time.as_secs_f64();
                let last =
                    (c.tolerance > 0.0 && report.delta < c.tolerance) || step >= c.iterations;
                if last || step % c.record_every == 0 {
                    ctx.record(step as u64, "gain_error", gain_error(fqi.q())?);
                    ctx.record(step as u64, "delta_q", report.delta);
                    ctx.record(step as u64, "solver_calls", calls as f64);
                }
                ctx.advance();
                if last {
                    ctx.record(0, "iterations", step as f64);
                    ctx.record(0, "final_gain_error", gain_error(fqi.q())?);
                    ctx.record(0, "solver_calls_total", calls as f64);
                    timings.record(ctx, false);
                    return Ok(());
                }
            }
        }
        FqiMethod::Amortized => {
            let params = AmortizedFqiParams {
                gamma: setup.gamma,
                max_iterations: c.iterations,
                tolerance,
                budget: SolveBudget::Fraction(c.budget),
                window: c.window.as_option(),
                fixed_subset: c.fixed_subset,
                delta_actions_per_state: 0,
                seed: setup.seed,
            };
            let rule = LinearPolicy::zeros(
                setup.state_dim,
                &setup.space,
                LinearPolicySettings {
                    bias: true,
                    ridge: c.rule_ridge,
                },
            )?;
            let mut fqi = AmortizedFqi::new(&params, q, maximizer, fit, rule, setup.data)?;
            let rule_gain_error = |rule: &LinearPolicy| relative(&(-rule.weights()), &setup.gain);
            loop {
                let report = timings.cpu_of(|| fqi.step())?;
                let step = fqi.iteration();
                calls += report.solver_calls;
                timings.run += report.wall_time.as_secs_f64();
                timings.target += report.target_time.as_secs_f64();
                timings.solve += report.solve_time.as_secs_f64();
                timings.q_fit += report.q_fit_time.as_secs_f64();
                timings.rule_fit += report.policy_fit_time.as_secs_f64();
                let last = (c.tolerance > 0.0 && report.delta_q.max(report.delta_d) < c.tolerance)
                    || step >= c.iterations;
                if last || step % c.record_every == 0 {
                    let s = step as u64;
                    ctx.record(s, "gain_error", gain_error(fqi.q())?);
                    ctx.record(s, "rule_gain_error", rule_gain_error(fqi.rule()));
                    ctx.record(s, "delta_q", report.delta_q);
                    ctx.record(s, "delta_d", report.delta_d);
                    ctx.record(s, "solver_calls", calls as f64);
                }
                ctx.advance();
                if last {
                    ctx.record(0, "iterations", step as f64);
                    ctx.record(0, "final_gain_error", gain_error(fqi.q())?);
                    ctx.record(0, "final_rule_gain_error", rule_gain_error(fqi.rule()));
                    ctx.record(0, "solver_calls_total", calls as f64);
                    timings.record(ctx, true);
                    return Ok(());
                }
            }
        }
    }
}
