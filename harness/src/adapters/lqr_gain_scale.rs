//! `riccati_gain_scale` on `Lqr`: the LQR ground truth on its own (what `policy-param demo
//! lqr` printed before the harness). The Riccati gain K is scaled by κ and the linear
//! policy a = −κKs is evaluated two ways: exactly (a discounted Lyapunov equation over
//! the initial-state distribution) and by seeded Monte Carlo rollouts. κ = 1 must have the
//! best exact value, and the two columns must agree within the sampling error.
//!
//! Metrics (step 0): `exact_value`, `monte_carlo_value`, `monte_carlo_std_error`.

use nalgebra::DMatrix;
use serde::{Deserialize, Serialize};

use policy_param::env::lqr::{InitialState, Lqr, LqrSystem};
use policy_param::env::Env;
use policy_param::eval::{evaluate, EvalSettings};
use policy_param::rng::RunSeed;

use super::{at_least, non_negative, LqrSystemName};
use crate::error::{CellError, Invalid};
use crate::experiment::{CellContext, Experiment};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Which LQR system. Default `scalar`.
    pub system: LqrSystemName,
    /// κ in a = −κKs, finite and ≥ 0. Default 1.
    pub gain_scale: f64,
    /// Monte Carlo episodes (≥ 2, for a standard error). Default 256.
    pub episodes: usize,
    /// Steps per episode (≥ 1); long enough that γ^H is negligible. Default 2000.
    pub horizon: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            system: LqrSystemName::Scalar,
            gain_scale: 1.0,
            episodes: 256,
            horizon: 2000,
        }
    }
}

pub struct LqrGainScale;

impl Experiment for LqrGainScale {
    const NAME: &'static str = "lqr_gain_scale";
    const ALGORITHM: &'static str = "riccati_gain_scale";
    const ENVIRONMENTS: &'static [&'static str] = &["Lqr"];
    const DESCRIPTION: &'static str =
        "exact vs Monte Carlo value of a = −κKs, K from the Riccati equation";
    type Config = Config;

    fn check(c: &Config) -> Result<(), Invalid> {
        non_negative("gain_scale", c.gain_scale)?;
        at_least("episodes", c.episodes, 2)?;
        at_least("horizon", c.horizon, 1)
    }

    fn run(c: &Config, _: &str, seed: u64, ctx: &mut CellContext) -> Result<(), CellError> {
        ctx.set_total(2);
        let mut params = c.system.params();
        params.horizon = Some(c.horizon);
        let lqr = Lqr::new(params.clone())?;
        let gain = lqr.solve()?.gain() * c.gain_scale;
        let system = lqr.system().clone();
        let exact = expected_value(&system, &gain)?;
        ctx.record(0, "exact_value", exact);
        ctx.advance();

        let settings = EvalSettings {
            episodes: c.episodes,
            seed: RunSeed(seed),
            gamma: system.gamma(),
            max_steps: c.horizon,
        };
        let policy = |obs: &[f32], _: &mut _, action: &mut [f64]| {
            for (i, a) in action.iter_mut().enumerate() {
                *a = -(0..obs.len())
                    .map(|j| gain[(i, j)] * f64::from(obs[j]))
                    .sum::<f64>();
            }
            Ok(())
        };
        let make =
            || -> policy_param::Result<Box<dyn Env>> { Ok(Box::new(Lqr::new(params.clone())?)) };
        let evaluation = evaluate(make, policy, &settings)?;
        let returns: Vec<f64> = evaluation
            .episodes
            .iter()
            .map(|e| e.discounted_return)
            .collect();
        let n = returns.len() as f64;
        let mean = returns.iter().sum::<f64>() / n;
        let var = returns.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / (n - 1.0);
        ctx.record(0, "monte_carlo_value", mean);
        ctx.record(0, "monte_carlo_std_error", (var / n).sqrt());
        ctx.advance();
        Ok(())
    }
}

/// E[Σ γᵗ rₜ] under a = −Ks from the initial-state distribution: −E[s₀ᵀ P_K s₀] with
/// P_K = Q + KᵀRK + γ(A − BK)ᵀ P_K (A − BK), found by fixed-point iteration (noise-free
/// systems only; −∞ when the discounted closed loop is unstable).
pub fn expected_value(system: &LqrSystem, gain: &DMatrix<f64>) -> Result<f64, CellError> {
    if system.noise_covariance().is_some() {
        return Err(CellError::Failed(policy_param::Error::invalid(
            "system",
            "the exact value here assumes noise-free dynamics",
        )));
    }
    let closed = system.a() - system.b() * gain;
    let cost = system.q() + gain.transpose() * system.r() * gain;
    let gamma = system.gamma();
    let mut p = cost.clone();
    for _ in 0..1_000_000 {
        let next = &cost + (closed.transpose() * &p * &closed) * gamma;
        let change = (&next - &p).norm();
        p = next;
        if !p.norm().is_finite() || p.norm() > 1e12 {
            return Ok(f64::NEG_INFINITY);
        }
        if change <= 1e-13 * p.norm() {
            let second_moment = initial_second_moment(system.initial_state());
            return Ok(-(p.component_mul(&second_moment)).sum());
        }
    }
    Err(CellError::Diverged(
        "the policy evaluation equation did not converge in 10⁶ iterations".into(),
    ))
}

/// E[s₀ s₀ᵀ] for the initial-state distribution.
fn initial_second_moment(initial: &InitialState) -> DMatrix<f64> {
    match initial {
        InitialState::Uniform { low, high } => {
            let n = low.len();
            let mean: Vec<f64> = low.iter().zip(high).map(|(l, h)| (l + h) / 2.0).collect();
            DMatrix::from_fn(n, n, |i, j| {
                if i == j {
                    (high[i] - low[i]).powi(2) / 12.0 + mean[i] * mean[i]
                } else {
                    mean[i] * mean[j]
                }
            })
        }
        InitialState::Gaussian { mean, covariance } => {
            let m = nalgebra::DVector::from_column_slice(mean);
            covariance + &m * m.transpose()
        }
        InitialState::Fixed(s) => {
            let s = nalgebra::DVector::from_column_slice(s);
            &s * s.transpose()
        }
    }
}
