//! DDPG's hyperparameters as grids and `policy-param train ddpg` name them: one flat key
//! per choice, presets `zoo_pendulum` (the default) and `chapter`, each key's range and
//! meaning in [`DdpgParams::KEYS`]. [`DdpgParams::agent_config`] makes the
//! [`DdpgConfig`] that [`super::ddpg`] runs.

use serde::{Deserialize, Serialize};

use super::ddpg::{DdpgAgent, DdpgConfig, TargetUpdate};
use super::online::OnlineAlgorithm;
use crate::error::{Error, Result};
use crate::hyperparams::{check_buffer_holds_batch, Hyperparameters, Key, Preset, Range};
use crate::nn::AdamConfig;
use crate::noise::{NoiseConfig, OrnsteinUhlenbeckParams};
use crate::policy::PolicyOutput;

/// Exploration noise added to d(s; w).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoiseKind {
    /// Independent N(0, σ²) per step (the zoo's).
    Gaussian,
    /// The chapter's Ornstein–Uhlenbeck process (θ, σ, Δt, μ = 0).
    Ou,
}

/// How the target networks follow the online ones (step 6.9).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetsKind {
    /// θ⁻ ← τθ + (1 − τ)θ⁻ after every update (the zoo's).
    Polyak,
    /// θ⁻ ← θ every `hard_every` updates (the chapter's).
    Hard,
}

/// How the actor's output becomes an action.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputKind {
    /// tanh, scaled onto the action box.
    TanhScaled,
    /// The output is the action (the chapter's d(s; w)).
    Linear,
}

/// Every DDPG key; `Default` is rl-baselines3-zoo's Pendulum-v1 setting.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DdpgParams {
    pub gamma: f64,
    pub buffer_size: usize,
    pub batch_size: usize,
    pub lr: f64,
    pub critic_lr: Option<f64>,
    pub hidden: Vec<usize>,
    pub learning_starts: usize,
    pub random_actions_before_learning: bool,
    pub noise: NoiseKind,
    pub sigma: f64,
    pub ou_theta: f64,
    pub ou_dt: f64,
    pub reset_noise_each_episode: bool,
    pub clip_actions: bool,
    pub policy_output: OutputKind,
    pub last_layer_init: Option<f64>,
    pub targets: TargetsKind,
    pub tau: f64,
    pub hard_every: usize,
}

impl Default for DdpgParams {
    fn default() -> Self {
        DdpgParams::zoo_pendulum()
    }
}

impl DdpgParams {
    /// rl-baselines3-zoo's Pendulum-v1 DDPG: γ 0.98, buffer 200 000, 10 000 steps of
    /// uniform random actions, Gaussian σ 0.1, lr 1e-3, [400, 300], batch 256, Polyak τ 0.005.
    pub fn zoo_pendulum() -> Self {
        DdpgParams {
            gamma: 0.98,
            buffer_size: 200_000,
            batch_size: 256,
            lr: 1e-3,
            critic_lr: None,
            hidden: vec![400, 300],
            learning_starts: 10_000,
            random_actions_before_learning: true,
            noise: NoiseKind::Gaussian,
            sigma: 0.1,
            ou_theta: 0.15,
            ou_dt: 0.01,
            reset_noise_each_episode: true,
            clip_actions: true,
            policy_output: OutputKind::TanhScaled,
            last_layer_init: None,
            targets: TargetsKind::Polyak,
            tau: 0.005,
            hard_every: 1000,
        }
    }

    /// The pseudocode as the chapter states it ([`DdpgConfig::chapter`]): OU noise (θ 0.15,
    /// σ 0.2, Δt 0.01), hard copies every 1000 updates, a linear output, no clipping,
    /// updates from the first step; the DDPG paper's numbers where the chapter has none.
    pub fn chapter() -> Self {
        DdpgParams {
            gamma: 0.99,
            buffer_size: 1_000_000,
            batch_size: 64,
            lr: 1e-4,
            critic_lr: Some(1e-3),
            learning_starts: 0,
            random_actions_before_learning: false,
            noise: NoiseKind::Ou,
            sigma: 0.2,
            clip_actions: false,
            policy_output: OutputKind::Linear,
            last_layer_init: Some(3e-3),
            targets: TargetsKind::Hard,
            ..DdpgParams::zoo_pendulum()
        }
    }
}

impl Hyperparameters for DdpgParams {
    const ALGORITHM: &'static str = "ddpg";
    const KEYS: &'static [Key] = &[
        Key {
            name: "gamma",
            range: Range::Unit,
            meaning: "discount γ",
        },
        Key {
            name: "buffer_size",
            range: Range::AtLeast(1),
            meaning: "replay capacity B (≥ batch_size)",
        },
        Key {
            name: "batch_size",
            range: Range::AtLeast(1),
            meaning: "minibatch b",
        },
        Key {
            name: "lr",
            range: Range::Positive,
            meaning: "Adam learning rate of the actor (and of the critic unless critic_lr)",
        },
        Key {
            name: "critic_lr",
            range: Range::OptionalPositive,
            meaning: "Adam learning rate of the critic; unset: lr",
        },
        Key {
            name: "hidden",
            range: Range::Widths,
            meaning: "hidden widths of the actor and the critic",
        },
        Key {
            name: "learning_starts",
            range: Range::AtLeast(0),
            meaning: "environment steps before the first update",
        },
        Key {
            name: "random_actions_before_learning",
            range: Range::Bool,
            meaning: "before learning_starts, act uniformly in the box (noise still added)",
        },
        Key {
            name: "noise",
            range: Range::OneOf(&["gaussian", "ou"]),
            meaning: "exploration noise: Gaussian or Ornstein–Uhlenbeck",
        },
        Key {
            name: "sigma",
            range: Range::NonNegative,
            meaning: "σ of the noise (Gaussian std, or OU diffusion), in agent coordinates",
        },
        Key {
            name: "ou_theta",
            range: Range::Positive,
            meaning: "OU mean reversion θ",
        },
        Key {
            name: "ou_dt",
            range: Range::Positive,
            meaning: "OU time step Δt (θΔt < 1)",
        },
        Key {
            name: "reset_noise_each_episode",
            range: Range::Bool,
            meaning: "restart the noise process at its mean every episode (false: it runs on, reaching its stationary spread)",
        },
        Key {
            name: "clip_actions",
            range: Range::Bool,
            meaning: "clip d(s) + noise to the action box",
        },
        Key {
            name: "policy_output",
            range: Range::OneOf(&["tanh_scaled", "linear"]),
            meaning: "actor output: tanh scaled onto the box, or the action itself",
        },
        Key {
            name: "last_layer_init",
            range: Range::OptionalPositive,
            meaning: "last layers start in U(±bound) (the DDPG paper: 3e-3); unset: PyTorch's init",
        },
        Key {
            name: "targets",
            range: Range::OneOf(&["polyak", "hard"]),
            meaning: "target networks: Polyak averaging or hard copies",
        },
        Key {
            name: "tau",
            range: Range::UnitOpenLow,
            meaning: "Polyak rate τ (targets = polyak)",
        },
        Key {
            name: "hard_every",
            range: Range::AtLeast(1),
            meaning: "updates between hard copies K (targets = hard)",
        },
    ];

    fn presets() -> &'static [Preset<Self>] {
        &[
            Preset { name: "zoo_pendulum", meaning: "rl-baselines3-zoo's Pendulum-v1 settings (the default)", values: DdpgParams::zoo_pendulum },
            Preset { name: "chapter", meaning: "the chapter's pseudocode: OU noise, hard copies, linear output (DDPG paper's numbers)", values: DdpgParams::chapter },
        ]
    }

    fn check_together(&self) -> Result<()> {
        check_buffer_holds_batch(self.buffer_size, self.batch_size)?;
        if self.ou_theta * self.ou_dt >= 1.0 {
            return Err(Error::invalid(
                "ou_dt",
                format!("θΔt = {} must be below 1", self.ou_theta * self.ou_dt),
            ));
        }
        Ok(())
    }
}

impl OnlineAlgorithm for DdpgParams {
    type Agent = DdpgAgent;
    const ADDED_KEYS: &'static [&'static str] = &[
        "critic_lr",
        "random_actions_before_learning",
        "clip_actions",
        "policy_output",
        "last_layer_init",
        "reset_noise_each_episode",
    ];

    fn agent_config(&self) -> DdpgConfig {
        DdpgConfig {
            gamma: self.gamma,
            buffer_size: self.buffer_size,
            batch_size: self.batch_size,
            actor_optimizer: AdamConfig::with_lr(self.lr),
            critic_optimizer: AdamConfig::with_lr(self.critic_lr.unwrap_or(self.lr)),
            actor_hidden: self.hidden.clone(),
            critic_hidden: self.hidden.clone(),
            policy_output: match self.policy_output {
                OutputKind::TanhScaled => PolicyOutput::TanhScaled,
                OutputKind::Linear => PolicyOutput::Linear,
            },
            last_layer_init: self.last_layer_init,
            noise: match self.noise {
                NoiseKind::Gaussian => NoiseConfig::Gaussian { sigma: self.sigma },
                NoiseKind::Ou => NoiseConfig::OrnsteinUhlenbeck(OrnsteinUhlenbeckParams {
                    theta: self.ou_theta,
                    mu: 0.0,
                    sigma: self.sigma,
                    dt: self.ou_dt,
                }),
            },
            clip_actions: self.clip_actions,
            target_update: match self.targets {
                TargetsKind::Polyak => TargetUpdate::Polyak { tau: self.tau },
                TargetsKind::Hard => TargetUpdate::HardCopy {
                    every: self.hard_every,
                },
            },
            learning_starts: self.learning_starts,
            random_actions_before_learning: self.random_actions_before_learning,
            reset_noise_each_episode: self.reset_noise_each_episode,
            ..DdpgConfig::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hyperparams::check_key_table;

    #[test]
    fn the_key_table_matches_the_fields_and_the_presets_match_the_library() {
        check_key_table::<DdpgParams>();
        assert_eq!(
            DdpgParams::zoo_pendulum().agent_config(),
            DdpgConfig::zoo_pendulum()
        );
        assert_eq!(DdpgParams::chapter().agent_config(), DdpgConfig::chapter());
    }
}
