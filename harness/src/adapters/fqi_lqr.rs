//! `fitted-q-iteration-explicit` on `Lqr` with quadratic features and least squares:
//! q* is in the approximator class, so FQI is value iteration on the q-matrix and must
//! approach Riccati's solution. Base points: states uniform in `[−state_bound,
//! state_bound]ⁿ`, actions uniform in `[−action_bound, action_bound]ᵐ`, one noise-free
//! step each. `maximize` is the exact concave-quadratic argmax (`quadratic`) or
//! multi-start L-BFGS on argmin (`lbfgs`), which knows nothing of the quadratic form.
//!
//! Metrics per iteration (step n = number of fits done, from 1):
//! - `gain_error`: ‖K_n − K*‖_F / ‖K*‖_F, K_n = H_aa⁻¹ H_as the gain of the fitted q's
//!   greedy policy (q = −zᵀHz + …, z = [s, a]), K* Riccati's;
//! - `p_error`: ‖P_n − P*‖_F / ‖P*‖_F, P_n = H_ss − H_sa H_aa⁻¹ H_as (max_a q = −sᵀP_n s + …);
//! - `delta` (δ of step 3.4) and `fit_loss`.
//!
//! And once (step 0): `iterations` done, `final_gain_error`, `final_p_error` (after the
//! last iteration), `run_seconds` (timing). The run stops after `iterations` fits or
//! once δ < `tolerance`.

use nalgebra::DMatrix;
use serde::{Deserialize, Serialize};

use policy_param::algo::{FittedQIteration, FqiParams, LeastSquares};
use policy_param::env::Env;
use policy_param::maximize::{LbfgsSettings, Maximizer, ProjectedLbfgs, QuadraticArgmax};
use policy_param::qfunction::linear::{LinearQ, QuadraticFeatures};
use policy_param::rng::RunSeed;

use super::lqr_setup::{greedy_gain_and_p, lqr_base_points, relative, LqrMaximizer};
use super::{at_least, non_negative, positive, LqrSystemName};
use crate::error::{CellError, Invalid};
use crate::experiment::{CellContext, Experiment};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Which LQR system. Default `scalar`.
    pub system: LqrSystemName,
    /// `quadratic` or `lbfgs`. Default `quadratic`.
    pub maximizer: LqrMaximizer,
    /// Base points |𝓑| (≥ the number of quadratic features). Default 200.
    pub points: usize,
    /// Half-width of the state box of the base points (> 0). Default 1.
    pub state_bound: f64,
    /// Half-width of their action box (> 0). Default 1.
    pub action_bound: f64,
    /// N, the most iterations (≥ 1). Default 60.
    pub iterations: usize,
    /// ε: stop once δ < ε (> 0). Default 1e-20.
    pub tolerance: f64,
    /// Ridge of the least-squares fit (finite, ≥ 0). Default 0.
    pub ridge: f64,
    /// Actions per base-point state for δ. Default 2.
    pub delta_actions: usize,
    /// L-BFGS starts (with `maximizer = "lbfgs"`, ≥ 1). Default 2.
    pub lbfgs_starts: usize,
    /// Random candidates screened for the L-BFGS starts. Default 4.
    pub lbfgs_candidates: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            system: LqrSystemName::Scalar,
            maximizer: LqrMaximizer::Quadratic,
            points: 200,
            state_bound: 1.0,
            action_bound: 1.0,
            iterations: 60,
            tolerance: 1e-20,
            ridge: 0.0,
            delta_actions: 2,
            lbfgs_starts: 2,
            lbfgs_candidates: 4,
        }
    }
}

pub struct FqiLqr;

impl Experiment for FqiLqr {
    const NAME: &'static str = "fqi_lqr";
    const ALGORITHM: &'static str = "fqi_explicit";
    const ENVIRONMENTS: &'static [&'static str] = &["Lqr"];
    const DESCRIPTION: &'static str =
        "FQI-explicit, quadratic q, least squares: gain and P error vs Riccati per iteration";
    type Config = Config;

    fn check(c: &Config) -> Result<(), Invalid> {
        let system = c.system.params();
        let (n, m) = (system.a.nrows(), system.b.ncols());
        let features = (n + m + 1) * (n + m + 2) / 2;
        at_least("points", c.points, features)?;
        positive("state_bound", c.state_bound)?;
        positive("action_bound", c.action_bound)?;
        at_least("iterations", c.iterations, 1)?;
        positive("tolerance", c.tolerance)?;
        non_negative("ridge", c.ridge)?;
        at_least("lbfgs_starts", c.lbfgs_starts, 1)
    }

    fn run(c: &Config, _: &str, seed: u64, ctx: &mut CellContext) -> Result<(), CellError> {
        let (env, solution, data) =
            lqr_base_points(c.system, c.state_bound, c.action_bound, c.points, seed)?;
        let (n, m) = (env.system().state_dim(), env.system().action_dim());
        let params = FqiParams {
            gamma: env.system().gamma(),
            max_iterations: c.iterations,
            tolerance: c.tolerance,
            delta_actions_per_state: c.delta_actions,
            seed: RunSeed(seed),
        };
        let q = LinearQ::zeros(QuadraticFeatures::new(n, m)?);
        let fit = LeastSquares::new(c.ridge)?;
        let truth = Truth {
            gain: solution.gain().clone(),
            p: solution.p().clone(),
            state_dim: n,
        };
        match c.maximizer {
            LqrMaximizer::Quadratic => {
                let maximizer = QuadraticArgmax::new(env.action_space())?;
                iterate(
                    FittedQIteration::new(&params, q, maximizer, fit, data)?,
                    c,
                    &truth,
                    ctx,
                )
            }
            LqrMaximizer::Lbfgs => {
                let maximizer = ProjectedLbfgs::new(
                    env.action_space().clone(),
                    LbfgsSettings {
                        starts: c.lbfgs_starts,
                        candidates: c.lbfgs_candidates,
                        ..LbfgsSettings::precise()
                    },
                )?;
                iterate(
                    FittedQIteration::new(&params, q, maximizer, fit, data)?,
                    c,
                    &truth,
                    ctx,
                )
            }
        }
    }
}

struct Truth {
    gain: DMatrix<f64>,
    p: DMatrix<f64>,
    state_dim: usize,
}

fn iterate<M: Maximizer>(
    mut fqi: FittedQIteration<LinearQ<QuadraticFeatures>, M, LeastSquares>,
    c: &Config,
    truth: &Truth,
    ctx: &mut CellContext,
) -> Result<(), CellError> {
    ctx.set_total(c.iterations as u64);
    let start = std::time::Instant::now();
    loop {
        let report = fqi.step()?;
        let step = fqi.iteration() as u64;
        let (gain, p) = greedy_gain_and_p(fqi.q(), truth.state_dim)?;
        let (gain_error, p_error) = (relative(&gain, &truth.gain), relative(&p, &truth.p));
        ctx.record(step, "gain_error", gain_error);
        ctx.record(step, "p_error", p_error);
        ctx.record(step, "delta", report.delta);
        ctx.record(step, "fit_loss", report.fit_loss);
        ctx.advance();
        if report.delta < c.tolerance || fqi.iteration() >= c.iterations {
            ctx.record(0, "iterations", step as f64);
            ctx.record(0, "final_gain_error", gain_error);
            ctx.record(0, "final_p_error", p_error);
            ctx.record(0, "run_seconds", start.elapsed().as_secs_f64());
            return Ok(());
        }
    }
}
