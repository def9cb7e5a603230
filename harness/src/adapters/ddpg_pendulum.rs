//! `ddpg` on `Pendulum-v1` with the rl-baselines3-zoo hyperparameters (γ 0.98, buffer
//! 200 000, learning starts 10 000 with uniform random actions before, Gaussian noise
//! σ 0.1, Adam lr 1e-3 for both networks, layers [400, 300], batch 256, Polyak τ 0.005,
//! one update per step), with the chapter's alternatives selectable: Ornstein–Uhlenbeck
//! noise (θ, σ, Δt) and hard target copies every K updates.
//!
//! Metrics: `eval_return` every `eval_every` steps and at the end (mean undiscounted
//! return of the deterministic policy d(s; w) over `eval_episodes` episodes of 200 steps;
//! a uniformly random policy scores about −1200); `critic_loss` at the same steps (mean of
//! the updates since the previous point). Once (step 0): `final_eval_return`,
//! `update_steps_per_second` (timing: environment steps with one update each, per
//! second, on the cell's thread) and `run_seconds`.
//!
//! A non-finite or exploding critic loss (above `max_loss`) is divergence.

use std::time::Instant;

use serde::{Deserialize, Serialize};

use policy_param::algo::ddpg::{Ddpg, DdpgConfig, TargetUpdate};
use policy_param::env::pendulum::Pendulum;
use policy_param::env::Env;
use policy_param::nn::AdamConfig;
use policy_param::noise::{NoiseConfig, OrnsteinUhlenbeckParams};
use policy_param::rng::RunSeed;

use super::online::{check_critic_loss, pendulum_evaluation, UpdateClock};
use super::{at_least, discount, non_negative, positive};
use crate::error::{CellError, Invalid};
use crate::experiment::{CellContext, Experiment};

/// Exploration noise added to d(s; w).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Noise {
    /// Independent N(0, `sigma`²) per step (the zoo's choice).
    #[default]
    Gaussian,
    /// The chapter's Ornstein–Uhlenbeck process (`ou_theta`, `sigma`, `ou_dt`, μ = 0).
    Ou,
}

/// How the target networks follow the online ones.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Targets {
    /// θ⁻ ← τθ + (1 − τ)θ⁻ after every update (the zoo's choice).
    #[default]
    Polyak,
    /// θ⁻ ← θ every `hard_every` updates (the chapter's pseudocode).
    Hard,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Environment steps (≥ 1). Default 20 000.
    pub steps: u64,
    /// γ ∈ (0, 1]. Default 0.98.
    pub gamma: f64,
    /// Replay capacity B (≥ `batch_size`). Default 200 000.
    pub buffer_size: usize,
    /// Minibatch b (≥ 1). Default 256.
    pub batch_size: usize,
    /// Adam learning rate of both networks (> 0). Default 1e-3.
    pub lr: f64,
    /// Hidden widths of both networks. Default [400, 300].
    pub hidden: Vec<usize>,
    /// Steps of uniform random actions before the first update. Default 10 000.
    pub learning_starts: usize,
    /// `gaussian` or `ou`. Default `gaussian`.
    pub noise: Noise,
    /// σ of the noise (Gaussian standard deviation, or the OU diffusion scale) (≥ 0). Default 0.1.
    pub sigma: f64,
    /// OU mean reversion θ (> 0). Default 0.15.
    pub ou_theta: f64,
    /// OU time step Δt (> 0, θΔt < 1). Default 0.01.
    pub ou_dt: f64,
    /// `polyak` or `hard`. Default `polyak`.
    pub targets: Targets,
    /// Polyak τ ∈ (0, 1]. Default 0.005.
    pub tau: f64,
    /// Updates between hard copies K (≥ 1). Default 1000.
    pub hard_every: usize,
    /// Evaluate every this many steps (≥ 1). Default 2000.
    pub eval_every: u64,
    /// Evaluation episodes (≥ 1). Default 10.
    pub eval_episodes: usize,
    /// A critic loss above this is divergence (> 0). Default 1e8.
    pub max_loss: f64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            steps: 20_000,
            gamma: 0.98,
            buffer_size: 200_000,
            batch_size: 256,
            lr: 1e-3,
            hidden: vec![400, 300],
            learning_starts: 10_000,
            noise: Noise::Gaussian,
            sigma: 0.1,
            ou_theta: 0.15,
            ou_dt: 0.01,
            targets: Targets::Polyak,
            tau: 0.005,
            hard_every: 1000,
            eval_every: 2000,
            eval_episodes: 10,
            max_loss: 1e8,
        }
    }
}

impl Config {
    /// The library's configuration for this cell.
    fn ddpg(&self) -> DdpgConfig {
        DdpgConfig {
            gamma: self.gamma,
            buffer_size: self.buffer_size,
            batch_size: self.batch_size,
            actor_optimizer: AdamConfig::with_lr(self.lr),
            critic_optimizer: AdamConfig::with_lr(self.lr),
            actor_hidden: self.hidden.clone(),
            critic_hidden: self.hidden.clone(),
            learning_starts: self.learning_starts,
            noise: match self.noise {
                Noise::Gaussian => NoiseConfig::Gaussian { sigma: self.sigma },
                Noise::Ou => NoiseConfig::OrnsteinUhlenbeck(OrnsteinUhlenbeckParams {
                    theta: self.ou_theta,
                    mu: 0.0,
                    sigma: self.sigma,
                    dt: self.ou_dt,
                }),
            },
            target_update: match self.targets {
                Targets::Polyak => TargetUpdate::Polyak { tau: self.tau },
                Targets::Hard => TargetUpdate::HardCopy {
                    every: self.hard_every,
                },
            },
            ..DdpgConfig::zoo_pendulum()
        }
    }
}

pub struct DdpgPendulum;

impl Experiment for DdpgPendulum {
    const NAME: &'static str = "ddpg_pendulum";
    const ALGORITHM: &'static str = "ddpg";
    const ENVIRONMENT: &'static str = "Pendulum-v1";
    const DESCRIPTION: &'static str =
        "DDPG, zoo settings; Gaussian or OU noise, Polyak or hard targets: evaluation return";
    type Config = Config;

    fn check(c: &Config) -> Result<(), Invalid> {
        at_least("steps", c.steps as usize, 1)?;
        discount("gamma", c.gamma)?;
        at_least("batch_size", c.batch_size, 1)?;
        at_least("buffer_size", c.buffer_size, c.batch_size)?;
        positive("lr", c.lr)?;
        if c.hidden.is_empty() || c.hidden.contains(&0) {
            return Err(Invalid::new(
                "hidden",
                format!("{:?}: need at least one layer, each of width ≥ 1", c.hidden),
            ));
        }
        non_negative("sigma", c.sigma)?;
        positive("ou_theta", c.ou_theta)?;
        positive("ou_dt", c.ou_dt)?;
        if c.ou_theta * c.ou_dt >= 1.0 {
            return Err(Invalid::new(
                "ou_dt",
                format!("θΔt = {} must be below 1", c.ou_theta * c.ou_dt),
            ));
        }
        if !(c.tau > 0.0 && c.tau <= 1.0) {
            return Err(Invalid::new("tau", format!("{} is not in (0, 1]", c.tau)));
        }
        at_least("hard_every", c.hard_every, 1)?;
        at_least("eval_every", c.eval_every as usize, 1)?;
        at_least("eval_episodes", c.eval_episodes, 1)?;
        positive("max_loss", c.max_loss)?;
        // Whatever this adapter does not check, the library does, naming the field.
        c.ddpg()
            .check()
            .map(|_| ())
            .map_err(|e| Invalid::new("", e.to_string()))
    }

    fn run(c: &Config, seed: u64, ctx: &mut CellContext) -> Result<(), CellError> {
        let seed = RunSeed(seed);
        let config = c.ddpg().check()?;
        let make_env = || Ok(Box::new(Pendulum::new()) as Box<dyn Env>);
        let mut ddpg = Ddpg::new(&config, make_env()?, seed)?;
        let evaluation = pendulum_evaluation(c.eval_episodes, seed);
        ctx.set_total(c.steps);
        let start = Instant::now();
        let mut updates_clock = UpdateClock::default();
        let (mut loss_sum, mut losses) = (0.0, 0u64);
        for _ in 0..c.steps {
            let before = Instant::now();
            let report = ddpg.step()?;
            if let Some(update) = report.update {
                updates_clock.add(before);
                check_critic_loss(update.critic_loss, report.step, c.max_loss)?;
                loss_sum += update.critic_loss;
                losses += 1;
            }
            let step = report.step;
            if step % c.eval_every == 0 || step == c.steps {
                let result = ddpg.policy().evaluate(make_env, &evaluation)?;
                ctx.record(step, "eval_return", result.mean_return());
                if losses > 0 {
                    ctx.record(step, "critic_loss", loss_sum / losses as f64);
                    (loss_sum, losses) = (0.0, 0);
                }
                if step == c.steps {
                    ctx.record(0, "final_eval_return", result.mean_return());
                }
            }
            ctx.advance();
        }
        updates_clock.record(ctx);
        ctx.record(0, "run_seconds", start.elapsed().as_secs_f64());
        Ok(())
    }
}
