//! Smooth FQI (the chapter's "Fitted Q-Iteration for the Smooth Bellman Equations":
//! `fitted-q-iteration-explicit` with step 3.2.1's `max` replaced by
//! `β log ∫_A exp(q(s', a)/β) da`) on entropy-regularized LQR, against its closed form
//! ([`SoftLqrSolution`]): q is quadratic, fitted by exact least squares from θ₀ = 0, so
//! with an exact integral the iteration must reach the soft q*. The integral is computed
//! by Gauss–Legendre quadrature (`quadrature`) or estimated by Monte Carlo with `samples`
//! uniform actions (`monte_carlo`, the chapter's sampling route), over the action box
//! `[−integration_bound, integration_bound]ᵐ`. Base points as `fqi_explicit` on `Lqr`.
//!
//! Metrics every `record_every` iterations and after the last (step n = fits done), with
//! the fitted `q = −zᵀHₙz + lᵀz − cₙ`, z = [s, a]:
//! - `h_error`: ‖Hₙ − H*‖_F / ‖H*‖_F (H* is the hard Riccati q-matrix: soft and hard
//!   share it);
//! - `gain_error`: of the Boltzmann policy's mean gain Kₙ = Hₙ,aa⁻¹ Hₙ,as against K*;
//! - `covariance_error`: of its covariance Σₙ = (β/2) Hₙ,aa⁻¹ against Σ*;
//! - `constant_error`: |cₙ − c*| / |c*| (the entropy terms live in the constant);
//! - `delta` (δ of step 3.4).
//!
//! Once (step 0): the `final_` values of the four errors, and the estimator itself on the
//! closed-form soft q* at every base point's next state s'ᵢ (one draw each):
//! `estimator_bias` = mean of (estimate − v*(s'ᵢ)), `estimator_std` = their standard
//! deviation, `estimator_rmse`; `run_seconds` (timing).

use nalgebra::DMatrix;
use serde::{Deserialize, Serialize};

use policy_param::algo::smooth_fqi::{LogPartition, LogPartitionSettings, MonteCarloLogPartition};
use policy_param::algo::{FittedQIteration, FqiParams, LeastSquares, Transitions};
use policy_param::env::lqr::SoftLqrSolution;
use policy_param::env::ActionSpace;
use policy_param::maximize::{Maximizer, QFunction};
use policy_param::qfunction::linear::{LinearQ, QuadraticFeatures};
use policy_param::rng::RunSeed;

use super::lqr_setup::{greedy_gain_and_p, lqr_base_points, relative};
use super::{at_least, positive, LqrSystemName};
use crate::error::{CellError, Invalid};
use crate::experiment::{CellContext, Experiment};

/// How step 3.2.1's integral over actions is computed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Integral {
    /// Composite Gauss–Legendre quadrature (`panels` × `order` nodes per dimension).
    #[default]
    Quadrature,
    /// Monte Carlo with `samples` actions uniform over the box, drawn afresh per base
    /// point and iteration.
    MonteCarlo,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Which LQR system (noise-free). Default `scalar`.
    pub system: LqrSystemName,
    /// Temperature β > 0. Default 0.5.
    pub beta: f64,
    /// `quadrature` or `monte_carlo`. Default `quadrature`.
    pub integral: Integral,
    /// Quadrature panels per side of the box (≥ 1). Default 128.
    pub panels: usize,
    /// Gauss–Legendre points per panel (1..=200). Default 8.
    pub order: usize,
    /// Monte Carlo actions per base point (≥ 1). Default 64.
    pub samples: usize,
    /// Half-width of the action box the integral runs over (> 0). Default 10 (the
    /// systems' action search box).
    pub integration_bound: f64,
    /// Base points |𝓑|. Default 200.
    pub points: usize,
    /// Half-width of the base points' state box (> 0). Default 2.
    pub state_bound: f64,
    /// Half-width of their action box (> 0). Default 3.
    pub action_bound: f64,
    /// N, the iterations (≥ 1). Default 600.
    pub iterations: usize,
    /// Record every this many iterations (≥ 1). Default 10.
    pub record_every: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            system: LqrSystemName::Scalar,
            beta: 0.5,
            integral: Integral::Quadrature,
            panels: 128,
            order: 8,
            samples: 64,
            integration_bound: 10.0,
            points: 200,
            state_bound: 2.0,
            action_bound: 3.0,
            iterations: 600,
            record_every: 10,
        }
    }
}

pub struct SmoothFqiLqr;

impl Experiment for SmoothFqiLqr {
    const NAME: &'static str = "smooth_fqi_lqr";
    const ALGORITHM: &'static str = "smooth_fqi";
    const ENVIRONMENTS: &'static [&'static str] = &["Lqr"];
    const DESCRIPTION: &'static str =
        "Smooth FQI on soft LQR, quadrature or Monte Carlo integral: H, gain, covariance errors vs the closed form";
    type Config = Config;

    fn check(c: &Config) -> Result<(), Invalid> {
        positive("beta", c.beta)?;
        at_least("panels", c.panels, 1)?;
        if !(1..=200).contains(&c.order) {
            return Err(Invalid::new(
                "order",
                format!("{} is not in 1..=200", c.order),
            ));
        }
        at_least("samples", c.samples, 1)?;
        positive("integration_bound", c.integration_bound)?;
        let system = c.system.params();
        let (n, m) = (system.a.nrows(), system.b.ncols());
        at_least("points", c.points, (n + m + 1) * (n + m + 2) / 2)?;
        positive("state_bound", c.state_bound)?;
        positive("action_bound", c.action_bound)?;
        at_least("iterations", c.iterations, 1)?;
        at_least("record_every", c.record_every, 1)
    }

    fn run(c: &Config, _: &str, seed: u64, ctx: &mut CellContext) -> Result<(), CellError> {
        let (env, _, data) =
            lqr_base_points(c.system, c.state_bound, c.action_bound, c.points, seed)?;
        let system = env.system();
        let truth = SoftLqrSolution::solve(system, c.beta)?;
        let (n, m) = (system.state_dim(), system.action_dim());
        let space = ActionSpace::Box {
            low: vec![-c.integration_bound; m],
            high: vec![c.integration_bound; m],
        };
        let params = FqiParams {
            gamma: system.gamma(),
            max_iterations: c.iterations,
            tolerance: f64::MIN_POSITIVE,
            delta_actions_per_state: 2,
            seed: RunSeed(seed),
        };
        let q = LinearQ::zeros(QuadraticFeatures::new(n, m)?);
        let fit = LeastSquares::new(0.0)?;
        match c.integral {
            Integral::Quadrature => {
                let integral = LogPartition::new(
                    &space,
                    LogPartitionSettings {
                        beta: c.beta,
                        panels: c.panels,
                        order: c.order,
                    },
                )?;
                let fqi = FittedQIteration::new(&params, q, integral, fit, data)?;
                iterate(fqi, c, &truth, seed, ctx)
            }
            Integral::MonteCarlo => {
                let integral = MonteCarloLogPartition::new(&space, c.beta, c.samples)?;
                let fqi = FittedQIteration::new(&params, q, integral, fit, data)?;
                iterate(fqi, c, &truth, seed, ctx)
            }
        }
    }
}

/// The four errors of a fitted quadratic q against the closed form.
struct Errors {
    h: f64,
    gain: f64,
    covariance: f64,
    constant: f64,
}

fn errors(
    q: &LinearQ<QuadraticFeatures>,
    truth: &SoftLqrSolution,
    n: usize,
) -> Result<Errors, CellError> {
    let form = q.quadratic_form();
    let h = -&form.matrix;
    let (gain, _) = greedy_gain_and_p(q, n)?;
    let m = h.nrows() - n;
    let h_aa = h.view((n, n), (m, m)).into_owned();
    let covariance: DMatrix<f64> = h_aa
        .try_inverse()
        .ok_or_else(|| CellError::Diverged("the fitted H_aa is singular".into()))?
        * (0.5 * truth.beta());
    let c = -form.constant;
    Ok(Errors {
        h: relative(&h, truth.hard().q_matrix()),
        gain: relative(&gain, truth.hard().gain()),
        covariance: relative(&covariance, truth.policy_covariance()),
        constant: (c - truth.q_constant()).abs() / truth.q_constant().abs(),
    })
}

fn iterate<M: Maximizer>(
    mut fqi: FittedQIteration<LinearQ<QuadraticFeatures>, M, LeastSquares>,
    c: &Config,
    truth: &SoftLqrSolution,
    seed: u64,
    ctx: &mut CellContext,
) -> Result<(), CellError> {
    let n = truth.hard().p().nrows();
    ctx.set_total(c.iterations as u64);
    let start = std::time::Instant::now();
    let mut last = None;
    while fqi.iteration() < c.iterations {
        let report = fqi.step()?;
        let step = fqi.iteration();
        if step.is_multiple_of(c.record_every) || step == c.iterations {
            let e = errors(fqi.q(), truth, n)?;
            let step = step as u64;
            ctx.record(step, "h_error", e.h);
            ctx.record(step, "gain_error", e.gain);
            ctx.record(step, "covariance_error", e.covariance);
            ctx.record(step, "constant_error", e.constant);
            ctx.record(step, "delta", report.delta);
            last = Some(e);
        }
        ctx.advance();
    }
    let run_seconds = start.elapsed().as_secs_f64();
    if let Some(e) = last {
        ctx.record(0, "final_h_error", e.h);
        ctx.record(0, "final_gain_error", e.gain);
        ctx.record(0, "final_covariance_error", e.covariance);
        ctx.record(0, "final_constant_error", e.constant);
    }
    let (bias, std) = estimator_error(fqi.maximizer(), truth, fqi.transitions(), seed)?;
    ctx.record(0, "estimator_bias", bias);
    ctx.record(0, "estimator_std", std);
    ctx.record(0, "estimator_rmse", (bias * bias + std * std).sqrt());
    ctx.record(0, "run_seconds", run_seconds);
    Ok(())
}

/// Mean and standard deviation over the base points' next states of the estimator's
/// error on the closed-form soft q*: estimate − v*(s').
fn estimator_error<M: Maximizer>(
    estimator: &M,
    truth: &SoftLqrSolution,
    data: &Transitions,
    seed: u64,
) -> Result<(f64, f64), CellError> {
    let q = SoftQStar(truth);
    let mut ws = estimator.workspace();
    let mut action = vec![0.0; data.action_dim()];
    let mut errors = Vec::with_capacity(data.len());
    for i in 0..data.len() {
        let s = data.next_state(i);
        let mut rng = RunSeed(seed).indexed("estimator-check", i as u64);
        let estimate = estimator.maximize(&q, &mut (), &mut ws, s, &mut action, &mut rng)?;
        errors.push(estimate.value - truth.v_star(s)?);
    }
    let count = errors.len() as f64;
    let mean = errors.iter().sum::<f64>() / count;
    let variance = errors.iter().map(|e| (e - mean).powi(2)).sum::<f64>() / (count - 1.0).max(1.0);
    Ok((mean, variance.sqrt()))
}

/// The closed-form soft q*(s, a) = −zᵀHz − c_q as a [`QFunction`].
struct SoftQStar<'a>(&'a SoftLqrSolution);

impl QFunction for SoftQStar<'_> {
    type Workspace = ();

    fn state_dim(&self) -> usize {
        self.0.hard().p().nrows()
    }

    fn action_dim(&self) -> usize {
        self.0.hard().gain().nrows()
    }

    fn workspace(&self) {}

    fn value(&self, _: &mut (), state: &[f64], action: &[f64]) -> policy_param::Result<f64> {
        self.0.q_star(state, action)
    }

    /// ∇ₐq = −2(H_as s + H_aa a).
    fn value_and_action_gradient(
        &self,
        ws: &mut (),
        state: &[f64],
        action: &[f64],
        gradient: &mut [f64],
    ) -> policy_param::Result<f64> {
        let h = self.0.hard().q_matrix();
        let n = state.len();
        for (i, g) in gradient.iter_mut().enumerate() {
            let row = n + i;
            let s_part: f64 = state.iter().enumerate().map(|(j, s)| h[(row, j)] * s).sum();
            let a_part: f64 = action
                .iter()
                .enumerate()
                .map(|(j, a)| h[(row, n + j)] * a)
                .sum();
            *g = -2.0 * (s_part + a_part);
        }
        self.value(ws, state, action)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use policy_param::env::lqr::LqrParams;

    #[test]
    fn quadrature_on_the_closed_form_is_unbiased_and_monte_carlo_is_biased_low() {
        let system = LqrParams::scalar().check().unwrap();
        let truth = SoftLqrSolution::solve(&system, 0.5).unwrap();
        let (_, _, data) = lqr_base_points(LqrSystemName::Scalar, 2.0, 3.0, 100, 1).unwrap();
        let space = ActionSpace::Box {
            low: vec![-10.0],
            high: vec![10.0],
        };
        let quadrature = LogPartition::new(
            &space,
            LogPartitionSettings {
                beta: 0.5,
                panels: 128,
                order: 8,
            },
        )
        .unwrap();
        let (bias, std) = estimator_error(&quadrature, &truth, &data, 0).unwrap();
        assert!(bias.abs() < 1e-9 && std < 1e-9, "{bias} {std}");
        let monte_carlo = MonteCarloLogPartition::new(&space, 0.5, 16).unwrap();
        let (bias, std) = estimator_error(&monte_carlo, &truth, &data, 0).unwrap();
        assert!(bias < -0.05 && std > 0.05, "{bias} {std}");
    }
}
