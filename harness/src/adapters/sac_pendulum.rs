//! `sac` on `Pendulum-v1`: the variant used in practice with the rl-baselines3-zoo
//! hyperparameters ([`SacConfig::zoo_pendulum`]: twin critics, Polyak targets, automatic
//! temperature, tanh squashing; γ 0.99, buffer 10⁶, 100 uniformly random steps before the
//! first update, Adam lr 1e-3 everywhere, layers [256, 256], batch 256, τ 0.005, one
//! update per step), against the chapter's version with the same shared hyperparameters.
//!
//! # The two variants (`variant`)
//! * `practice`: [`SacConfig::zoo_pendulum`] as it is.
//! * `chapter`: the chapter's section "Soft Actor Critic" — one critic q_θ, a value
//!   network v_ψ fitted to `q_θ(s, ã) − β log d(ã|s)`, the target `y = r + γ v(s')`, a
//!   plain (unsquashed) Gaussian policy N(μ_φ(s), σ_φ(s)) whose actions the environment
//!   clips to [−2, 2], a fixed temperature β. One stabilizer the chapter does not write:
//!   the target reads a slowly moving copy ψ̄ ← τψ + (1 − τ)ψ̄ (`target_tau`, Haarnoja et
//!   al. 2018a's τ 0.005), because reading the current ψ diverged on the soft LQR in
//!   `tests/sac.rs` for every seed tried (σ grows to its clamp). `target_tau = 1` is the
//!   chapter as written: ψ̄ is ψ after each update, so the target reads the current ψ.
//!
//! Everything the variants share (γ, buffer, warm-up, learning rate, layers, batch, one
//! update per step, PyTorch initialization) is the zoo's, so the comparison isolates the
//! algorithmic choices.
//!
//! # Temperature (`temperature`, `beta`)
//! Unset, `temperature` is `auto` for `practice` (learned, starting at 1, target entropy
//! −1) and `fixed` for `chapter`; `fixed` uses `beta` (default 0.2, Haarnoja et al.
//! 2018a's reward scale 5). Sweeping `beta` with `temperature = "fixed"` is the
//! fixed-β ablation of either variant.
//!
//! # Metrics
//! `eval_return` every `eval_every` steps and at the end: mean undiscounted return of
//! the deterministic policy (the mean action, squashed for `practice`) over
//! `eval_episodes` episodes of 200 steps (a uniformly random policy scores about −1200).
//! At the same steps, means over the updates since the previous point: `critic_loss`,
//! `entropy` (the policy's, estimated from its samples), `beta`, and `value_loss` for
//! `chapter`. Once (step 0): `final_eval_return`, `update_steps_per_second` (timing:
//! environment steps with one update each, per second, on the cell's thread, evaluation
//! excluded) and `run_seconds`.
//!
//! A non-finite or exploding critic loss (above `max_loss`) is divergence, as is a
//! numerical error of the library.

use std::time::Instant;

use serde::{Deserialize, Serialize};

use policy_param::algo::sac::{Sac, SacConfig, SoftTarget, Temperature};
use policy_param::env::pendulum::Pendulum;
use policy_param::env::Env;
use policy_param::nn::AdamConfig;
use policy_param::rng::RunSeed;

use super::online::{check_critic_loss, pendulum_evaluation, UpdateClock};
use super::{at_least, discount, positive};
use crate::error::{CellError, Invalid};
use crate::experiment::{CellContext, Experiment};

/// Which SAC.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Variant {
    /// Twin critics, Polyak targets, automatic temperature, tanh squashing (the zoo's).
    #[default]
    Practice,
    /// q_θ, v_ψ (target read from ψ̄), unsquashed Gaussian, fixed β (the chapter's).
    Chapter,
}

/// How β is set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TemperatureKind {
    /// Learned so that the entropy tracks −dim A, starting at 1.
    Auto,
    /// `beta`.
    Fixed,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// `practice` or `chapter`. Default `practice`.
    pub variant: Variant,
    /// Environment steps (≥ 1). Default 20 000.
    pub steps: u64,
    /// `auto` or `fixed`; unset: `auto` for `practice`, `fixed` for `chapter`.
    pub temperature: Option<TemperatureKind>,
    /// The fixed temperature β (> 0), used when the temperature is fixed. Default 0.2.
    pub beta: f64,
    /// Polyak rate τ ∈ (0, 1] of the target networks: the critics' for `practice`, ψ̄ for
    /// `chapter` (1: the chapter as written). Default 0.005.
    pub target_tau: f64,
    /// γ ∈ (0, 1]. Default 0.99.
    pub gamma: f64,
    /// Replay capacity (≥ `batch_size`). Default 1 000 000.
    pub buffer_size: usize,
    /// Minibatch b (≥ 1). Default 256.
    pub batch_size: usize,
    /// Adam learning rate of every network and of log β (> 0). Default 1e-3.
    pub lr: f64,
    /// Hidden widths of every network. Default [256, 256].
    pub hidden: Vec<usize>,
    /// Steps of uniform random actions before the first update. Default 100.
    pub learning_starts: usize,
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
            variant: Variant::Practice,
            steps: 20_000,
            temperature: None,
            beta: 0.2,
            target_tau: 0.005,
            gamma: 0.99,
            buffer_size: 1_000_000,
            batch_size: 256,
            lr: 1e-3,
            hidden: vec![256, 256],
            learning_starts: 100,
            eval_every: 2000,
            eval_episodes: 10,
            max_loss: 1e8,
        }
    }
}

impl Config {
    /// The temperature this cell uses.
    fn temperature_kind(&self) -> TemperatureKind {
        self.temperature.unwrap_or(match self.variant {
            Variant::Practice => TemperatureKind::Auto,
            Variant::Chapter => TemperatureKind::Fixed,
        })
    }

    /// The library's configuration for this cell.
    fn sac(&self) -> SacConfig {
        let adam = AdamConfig::with_lr(self.lr);
        let temperature = match self.temperature_kind() {
            TemperatureKind::Auto => Temperature::Auto {
                initial: 1.0,
                target_entropy: None,
            },
            TemperatureKind::Fixed => Temperature::Fixed { beta: self.beta },
        };
        let zoo = SacConfig {
            gamma: self.gamma,
            buffer_size: self.buffer_size,
            batch_size: self.batch_size,
            learning_starts: self.learning_starts,
            policy_hidden: self.hidden.clone(),
            critic_hidden: self.hidden.clone(),
            value_hidden: self.hidden.clone(),
            policy_optimizer: adam,
            critic_optimizer: adam,
            value_optimizer: adam,
            temperature_optimizer: adam,
            target_tau: Some(self.target_tau),
            temperature,
            ..SacConfig::zoo_pendulum()
        };
        match self.variant {
            Variant::Practice => zoo,
            Variant::Chapter => SacConfig {
                target: SoftTarget::ValueNetwork,
                twin_critics: false,
                squash: false,
                ..zoo
            },
        }
    }
}

pub struct SacPendulum;

impl Experiment for SacPendulum {
    const NAME: &'static str = "sac_pendulum";
    const ALGORITHM: &'static str = "sac";
    const ENVIRONMENT: &'static str = "Pendulum-v1";
    const DESCRIPTION: &'static str =
        "SAC, zoo settings; practice variant vs the chapter's (q, v, Gaussian, fixed β): evaluation return";
    type Config = Config;

    fn check(c: &Config) -> Result<(), Invalid> {
        at_least("steps", c.steps as usize, 1)?;
        positive("beta", c.beta)?;
        if !(c.target_tau > 0.0 && c.target_tau <= 1.0) {
            return Err(Invalid::new(
                "target_tau",
                format!("{} is not in (0, 1]", c.target_tau),
            ));
        }
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
        at_least("eval_every", c.eval_every as usize, 1)?;
        at_least("eval_episodes", c.eval_episodes, 1)?;
        positive("max_loss", c.max_loss)?;
        // Whatever this adapter does not check, the library does, naming the field.
        c.sac()
            .check()
            .map(|_| ())
            .map_err(|e| Invalid::new("", e.to_string()))
    }

    fn run(c: &Config, seed: u64, ctx: &mut CellContext) -> Result<(), CellError> {
        let seed = RunSeed(seed);
        let config = c.sac().check()?;
        let make_env = || Ok(Box::new(Pendulum::new()) as Box<dyn Env>);
        let mut sac = Sac::new(&config, make_env()?, seed)?;
        let evaluation = pendulum_evaluation(c.eval_episodes, seed);
        ctx.set_total(c.steps);
        let start = Instant::now();
        let mut updates_clock = UpdateClock::default();
        // Sums since the last evaluation point: critic loss, value loss, entropy, β.
        let mut sums = [0.0f64; 4];
        let mut updates = 0u64;
        for _ in 0..c.steps {
            let before = Instant::now();
            let report = sac.step()?;
            if let Some(update) = report.update {
                updates_clock.add(before);
                check_critic_loss(update.critic_loss, report.step, c.max_loss)?;
                sums[0] += update.critic_loss;
                sums[1] += update.value_loss.unwrap_or(0.0);
                sums[2] += update.entropy;
                sums[3] += update.beta;
                updates += 1;
            }
            let step = report.step;
            if step % c.eval_every == 0 || step == c.steps {
                let result = sac.policy().evaluate(make_env, &evaluation)?;
                ctx.record(step, "eval_return", result.mean_return());
                if updates > 0 {
                    let n = updates as f64;
                    ctx.record(step, "critic_loss", sums[0] / n);
                    if config.target == SoftTarget::ValueNetwork {
                        ctx.record(step, "value_loss", sums[1] / n);
                    }
                    ctx.record(step, "entropy", sums[2] / n);
                    ctx.record(step, "beta", sums[3] / n);
                    (sums, updates) = ([0.0; 4], 0);
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
