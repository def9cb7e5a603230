//! Exploration noise for deterministic policies: `a = d(s; w) + 𝒩` in the chapter's DDPG.
//!
//! * [`NoiseConfig::OrnsteinUhlenbeck`]: the chapter's choice, the process
//!   `d𝒩ₜ = θ(μ − 𝒩ₜ)dt + σ dWₜ` discretized by Euler–Maruyama,
//!   `𝒩ₜ₊₁ = 𝒩ₜ + θ(μ − 𝒩ₜ)Δt + σ√Δt εₜ` with `εₜ ~ N(0, 1)`, one independent process per
//!   action component. Consecutive values are correlated (lag-one autocorrelation
//!   `1 − θΔt ≈ e^{−θΔt}`), so exploration drifts smoothly; its stationary law is
//!   `N(μ, σ²/(2θ))` up to `O(θΔt)`.
//! * [`NoiseConfig::Gaussian`]: independent `N(0, σ²)` per step, what most DDPG
//!   implementations use today (TD3 showed it explores as well on MuJoCo-like tasks).
//! * [`NoiseConfig::None`]: act greedily.
//!
//! Noise values are computed in `f64` and written into the caller's buffer, so sampling
//! never allocates. The process state is part of a training checkpoint.

use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::rng::Rng;

/// Parameters of the Ornstein–Uhlenbeck process and its Euler–Maruyama step.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct OrnsteinUhlenbeckParams {
    /// Mean-reversion rate θ, > 0.
    pub theta: f64,
    /// Long-term mean μ.
    pub mu: f64,
    /// Scale σ of the Wiener increments, ≥ 0.
    pub sigma: f64,
    /// Time step Δt of the discretization, > 0 with θΔt < 1 (so that each step pulls
    /// towards μ without overshooting it).
    pub dt: f64,
}

impl Default for OrnsteinUhlenbeckParams {
    /// The DDPG paper's θ = 0.15, σ = 0.2 (μ = 0), with Δt = 0.01 as in Stable-Baselines3.
    fn default() -> Self {
        OrnsteinUhlenbeckParams {
            theta: 0.15,
            mu: 0.0,
            sigma: 0.2,
            dt: 0.01,
        }
    }
}

impl OrnsteinUhlenbeckParams {
    /// Variance of the stationary law of the continuous process, σ²/(2θ).
    pub fn stationary_variance(&self) -> f64 {
        self.sigma * self.sigma / (2.0 * self.theta)
    }

    /// Lag-one autocorrelation of the continuous process sampled every Δt, e^{−θΔt}.
    pub fn lag_one_autocorrelation(&self) -> f64 {
        (-self.theta * self.dt).exp()
    }
}

/// Which exploration noise to add to the policy's action.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum NoiseConfig {
    /// No noise: the action is `d(s; w)`.
    None,
    /// Independent `N(0, σ²)` per component and step.
    Gaussian { sigma: f64 },
    /// The chapter's temporally correlated noise.
    OrnsteinUhlenbeck(OrnsteinUhlenbeckParams),
}

impl NoiseConfig {
    /// Checks the parameters; errors name the field under `field` (e.g. `"ddpg.noise"`).
    pub fn validate(&self, field: &str) -> Result<()> {
        let finite_at_least = |name: &str, value: f64, positive: bool| {
            let ok = value.is_finite() && if positive { value > 0.0 } else { value >= 0.0 };
            if ok {
                Ok(())
            } else {
                let what = if positive { "> 0" } else { "≥ 0" };
                Err(Error::invalid(
                    format!("{field}.{name}"),
                    format!("{value} is not a finite number {what}"),
                ))
            }
        };
        match *self {
            NoiseConfig::None => Ok(()),
            NoiseConfig::Gaussian { sigma } => finite_at_least("sigma", sigma, false),
            NoiseConfig::OrnsteinUhlenbeck(p) => {
                finite_at_least("theta", p.theta, true)?;
                finite_at_least("sigma", p.sigma, false)?;
                finite_at_least("dt", p.dt, true)?;
                if !p.mu.is_finite() {
                    return Err(Error::invalid(
                        format!("{field}.mu"),
                        format!("{} is not finite", p.mu),
                    ));
                }
                if p.theta * p.dt >= 1.0 {
                    return Err(Error::invalid(
                        format!("{field}.dt"),
                        format!(
                            "θΔt = {} must be below 1 for the Euler–Maruyama step to revert towards μ",
                            p.theta * p.dt
                        ),
                    ));
                }
                Ok(())
            }
        }
    }
}

/// The running noise process for an action of fixed dimension. Serializable for
/// checkpoints; reading one checks it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "NoiseRecord")]
pub struct ExplorationNoise {
    config: NoiseConfig,
    /// 𝒩ₜ per action component (used by the Ornstein–Uhlenbeck process only).
    state: Vec<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoiseRecord {
    config: NoiseConfig,
    state: Vec<f64>,
}

impl TryFrom<NoiseRecord> for ExplorationNoise {
    type Error = Error;

    fn try_from(record: NoiseRecord) -> Result<Self> {
        let mut noise = ExplorationNoise::new(record.config, record.state.len())?;
        if let Some(x) = record.state.iter().find(|x| !x.is_finite()) {
            return Err(Error::invalid("noise.state", format!("{x} is not finite")));
        }
        noise.state = record.state;
        Ok(noise)
    }
}

impl ExplorationNoise {
    /// A process for `dim` action components, started at its mean.
    pub fn new(config: NoiseConfig, dim: usize) -> Result<Self> {
        config.validate("noise")?;
        if dim == 0 {
            return Err(Error::invalid("noise.dim", "must be at least 1"));
        }
        let mut noise = ExplorationNoise {
            config,
            state: vec![0.0; dim],
        };
        noise.reset();
        Ok(noise)
    }

    pub fn config(&self) -> &NoiseConfig {
        &self.config
    }

    pub fn dim(&self) -> usize {
        self.state.len()
    }

    /// The current value 𝒩ₜ of the Ornstein–Uhlenbeck process (zeros otherwise).
    pub fn state(&self) -> &[f64] {
        &self.state
    }

    /// Restarts the process at its mean μ (at the start of every episode, as in the
    /// DDPG paper, so that one episode's drift does not leak into the next).
    pub fn reset(&mut self) {
        let start = match self.config {
            NoiseConfig::OrnsteinUhlenbeck(p) => p.mu,
            _ => 0.0,
        };
        self.state.fill(start);
    }

    /// Advances the process one step and writes the noise into `out` (length `dim`).
    pub fn sample_into(&mut self, rng: &mut Rng, out: &mut [f64]) {
        debug_assert_eq!(out.len(), self.state.len());
        match self.config {
            NoiseConfig::None => out.fill(0.0),
            NoiseConfig::Gaussian { sigma } => {
                for x in out.iter_mut() {
                    let epsilon: f64 = StandardNormal.sample(rng);
                    *x = sigma * epsilon;
                }
            }
            NoiseConfig::OrnsteinUhlenbeck(p) => {
                let diffusion = p.sigma * p.dt.sqrt();
                for (n, x) in self.state.iter_mut().zip(out.iter_mut()) {
                    let epsilon: f64 = StandardNormal.sample(rng);
                    // Euler–Maruyama: drift θ(μ − 𝒩)Δt plus diffusion σ√Δt·ε.
                    *n += p.theta * (p.mu - *n) * p.dt + diffusion * epsilon;
                    *x = *n;
                }
            }
        }
    }

    /// Checks a process read from a checkpoint against the configured one.
    pub(crate) fn check_restored(
        &self,
        field: &str,
        config: &NoiseConfig,
        dim: usize,
    ) -> Result<()> {
        if &self.config != config || self.state.len() != dim {
            return Err(Error::invalid(
                field,
                format!(
                    "process {:?} of dimension {} does not match the configured {config:?} of dimension {dim}",
                    self.config,
                    self.state.len()
                ),
            ));
        }
        Ok(())
    }
}
