//! SAC's hyperparameters as grids and `policy-param train sac` name them: presets
//! `zoo_pendulum` (the default: the variant used in practice with rl-baselines3-zoo's
//! Pendulum-v1 settings) and `chapter` (the chapter's version with the same shared
//! settings), each key's range and meaning in [`SacParams::KEYS`].
//! [`SacParams::agent_config`] makes the [`SacConfig`] that [`super::sac`] runs.
//!
//! `variant = "chapter"` is the chapter's section "Soft Actor Critic": one critic q_θ, a
//! value network v_ψ, the target `y = r + γ v(s')`, a plain Gaussian, a fixed β. One
//! stabilizer the chapter does not write: the target reads a slow copy ψ̄ (`target_tau`
//! 0.005), because reading the current ψ diverged on the soft LQR for every seed tried;
//! `target_tau = 1` is the chapter as written.

use serde::{Deserialize, Serialize};

use super::online::OnlineAlgorithm;
use super::sac::{Exploration, SacAgent, SacConfig, SoftTarget, Temperature};
use crate::error::{Error, Result};
use crate::hyperparams::{check_buffer_holds_batch, Hyperparameters, Key, Preset, Range};
use crate::nn::AdamConfig;

/// Δt of the `ou` exploration, Stable-Baselines3's (and [`crate::noise`]'s) for DDPG.
const OU_DT: f64 = 0.01;

/// Which SAC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Variant {
    /// Twin critics, Polyak targets, automatic temperature, tanh squashing.
    Practice,
    /// q_θ, v_ψ (target read from ψ̄), unsquashed Gaussian, fixed β.
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

/// Where step 1's ε comes from ([`Exploration`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExplorationKind {
    /// Independent N(0, I) at every step: the chapter's.
    White,
    /// An Ornstein–Uhlenbeck process with unit stationary variance, rate `ou_theta`.
    Ou,
}

/// Every SAC key; `Default` is rl-baselines3-zoo's Pendulum-v1 setting.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SacParams {
    pub variant: Variant,
    pub temperature: Option<TemperatureKind>,
    pub beta: f64,
    pub target_tau: f64,
    pub gamma: f64,
    pub buffer_size: usize,
    pub batch_size: usize,
    pub lr: f64,
    pub hidden: Vec<usize>,
    pub learning_starts: usize,
    pub exploration: ExplorationKind,
    pub ou_theta: f64,
}

impl Default for SacParams {
    fn default() -> Self {
        SacParams::zoo_pendulum()
    }
}

impl SacParams {
    /// The practice variant with rl-baselines3-zoo's Pendulum-v1 settings: γ 0.99, buffer
    /// 10⁶, 100 random steps, lr 1e-3 everywhere, [256, 256], batch 256, τ 0.005, auto β.
    pub fn zoo_pendulum() -> Self {
        SacParams {
            variant: Variant::Practice,
            temperature: None,
            beta: 0.2,
            target_tau: 0.005,
            gamma: 0.99,
            buffer_size: 1_000_000,
            batch_size: 256,
            lr: 1e-3,
            hidden: vec![256, 256],
            learning_starts: 100,
            exploration: ExplorationKind::White,
            ou_theta: 0.15,
        }
    }

    /// The chapter's version (fixed β 0.2) with the zoo's shared settings.
    pub fn chapter() -> Self {
        SacParams {
            variant: Variant::Chapter,
            ..SacParams::zoo_pendulum()
        }
    }

    /// The temperature this run uses: unset, `auto` for `practice`, `fixed` for `chapter`.
    pub fn temperature_kind(&self) -> TemperatureKind {
        self.temperature.unwrap_or(match self.variant {
            Variant::Practice => TemperatureKind::Auto,
            Variant::Chapter => TemperatureKind::Fixed,
        })
    }
}

impl Hyperparameters for SacParams {
    const ALGORITHM: &'static str = "sac";
    const KEYS: &'static [Key] = &[
        Key { name: "variant", range: Range::OneOf(&["practice", "chapter"]), meaning: "practice: twin critics, Polyak targets, auto β, tanh squashing; chapter: q, v (slow copy ψ̄), plain Gaussian, fixed β" },
        Key { name: "temperature", range: Range::OptionalOneOf(&["auto", "fixed"]), meaning: "how β is set; unset: auto for practice, fixed for chapter" },
        Key { name: "beta", range: Range::Positive, meaning: "the fixed temperature β (temperature = fixed)" },
        Key { name: "target_tau", range: Range::UnitOpenLow, meaning: "Polyak rate of the target networks (critics for practice, ψ̄ for chapter; 1: the chapter as written)" },
        Key { name: "gamma", range: Range::Unit, meaning: "discount γ" },
        Key { name: "buffer_size", range: Range::AtLeast(1), meaning: "replay capacity (≥ batch_size)" },
        Key { name: "batch_size", range: Range::AtLeast(1), meaning: "minibatch b" },
        Key { name: "lr", range: Range::Positive, meaning: "Adam learning rate of every network and of log β" },
        Key { name: "hidden", range: Range::Widths, meaning: "hidden widths of every network" },
        Key { name: "learning_starts", range: Range::AtLeast(0), meaning: "steps of uniform random actions before the first update" },
        Key { name: "exploration", range: Range::OneOf(&["white", "ou"]), meaning: "ε of the actions taken: white (independent N(0, I), the chapter's) or ou (Ornstein–Uhlenbeck with unit stationary variance, running across episodes)" },
        Key { name: "ou_theta", range: Range::Positive, meaning: "mean-reversion rate θ of the ou exploration (Δt 0.01: ε stays correlated for about 1/(0.01 θ) steps; below 100)" },
    ];

    fn presets() -> &'static [Preset<Self>] {
        &[
            Preset {
                name: "zoo_pendulum",
                meaning: "practice variant, rl-baselines3-zoo's Pendulum-v1 settings (the default)",
                values: SacParams::zoo_pendulum,
            },
            Preset {
                name: "chapter",
                meaning:
                    "the chapter's version (q, v, Gaussian, fixed β 0.2), zoo settings otherwise",
                values: SacParams::chapter,
            },
        ]
    }

    fn check_together(&self) -> Result<()> {
        check_buffer_holds_batch(self.buffer_size, self.batch_size)?;
        if self.ou_theta * OU_DT >= 1.0 {
            return Err(Error::invalid(
                "ou_theta",
                format!("{} is not below {}", self.ou_theta, 1.0 / OU_DT),
            ));
        }
        Ok(())
    }
}

impl OnlineAlgorithm for SacParams {
    type Agent = SacAgent;
    const ADDED_KEYS: &'static [&'static str] = &["exploration", "ou_theta"];

    fn agent_config(&self) -> SacConfig {
        let adam = AdamConfig::with_lr(self.lr);
        let temperature = match self.temperature_kind() {
            TemperatureKind::Auto => Temperature::Auto {
                initial: 1.0,
                target_entropy: None,
            },
            TemperatureKind::Fixed => Temperature::Fixed { beta: self.beta },
        };
        let practice = SacConfig {
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
            exploration: match self.exploration {
                ExplorationKind::White => Exploration::White,
                ExplorationKind::Ou => Exploration::OrnsteinUhlenbeck {
                    theta: self.ou_theta,
                    dt: OU_DT,
                },
            },
            ..SacConfig::zoo_pendulum()
        };
        match self.variant {
            Variant::Practice => practice,
            Variant::Chapter => SacConfig {
                target: SoftTarget::ValueNetwork,
                twin_critics: false,
                squash: false,
                ..practice
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hyperparams::{check_key_table, resolve};

    #[test]
    fn the_key_table_matches_the_fields_and_the_default_is_the_librarys_zoo_setting() {
        check_key_table::<SacParams>();
        assert_eq!(
            SacParams::zoo_pendulum().agent_config(),
            SacConfig::zoo_pendulum()
        );
    }

    #[test]
    fn ou_exploration_resolves_to_the_process_and_a_theta_too_fast_for_its_step_is_refused() {
        let keys = |theta: f64| {
            serde_json::json!({ "exploration": "ou", "ou_theta": theta })
                .as_object()
                .unwrap()
                .clone()
        };
        let params: SacParams = resolve(None, &keys(1.5)).unwrap();
        assert_eq!(
            params.agent_config().exploration,
            Exploration::OrnsteinUhlenbeck {
                theta: 1.5,
                dt: OU_DT
            }
        );
        assert!(matches!(
            resolve::<SacParams>(None, &keys(150.0)),
            Err(Error::InvalidParameter { field, .. }) if field == "ou_theta"
        ));
    }
}
