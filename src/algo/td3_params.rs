//! TD3's hyperparameters as grids and `policy-param train td3` name them. [`Td3Config`] is
//! already flat, so its fields are the keys: presets `zoo_pendulum` (the default,
//! rl-baselines3-zoo's Pendulum-v1 settings, as DDPG's and SAC's defaults are) and `sb3`
//! (Stable-Baselines3's `TD3` defaults, [`Td3Config::default`]).

use super::online::OnlineAlgorithm;
use super::td3::{Td3Agent, Td3Config};
use crate::error::Result;
use crate::hyperparams::{check_buffer_holds_batch, Hyperparameters, Key, Preset, Range};

impl Td3Config {
    /// rl-baselines3-zoo's `td3.yml` for Pendulum-v1: γ 0.98, B 200 000, 10 000
    /// learning-start steps, Gaussian noise σ 0.1, and SB3's defaults for the rest (lr
    /// 1e-3, [400, 300], b 256, τ 0.005, d 2, σ̃ 0.2, c 0.5, one update per step).
    pub fn zoo_pendulum() -> Self {
        Td3Config {
            gamma: 0.98,
            buffer_size: 200_000,
            learning_starts: 10_000,
            sigma: 0.1,
            ..Td3Config::default()
        }
    }
}

impl Hyperparameters for Td3Config {
    const ALGORITHM: &'static str = "td3";
    #[rustfmt::skip]
    const KEYS: &'static [Key] = &[
        Key { name: "gamma", range: Range::Unit, meaning: "discount γ" },
        Key { name: "buffer_size", range: Range::AtLeast(1), meaning: "replay capacity B (≥ batch_size)" },
        Key { name: "batch_size", range: Range::AtLeast(1), meaning: "minibatch b" },
        Key { name: "lr", range: Range::Positive, meaning: "Adam learning rate of the actor and both critics" },
        Key { name: "hidden", range: Range::Widths, meaning: "hidden widths of the actor and of each critic" },
        Key { name: "learning_starts", range: Range::AtLeast(0), meaning: "steps of uniform random actions before the first update" },
        Key { name: "sigma", range: Range::NonNegative, meaning: "σ of the Gaussian exploration noise on the normalized action (0: none)" },
        Key { name: "policy_delay", range: Range::AtLeast(1), meaning: "the actor and the targets move every d-th update" },
        Key { name: "target_noise", range: Range::NonNegative, meaning: "σ̃ of the target policy smoothing noise ε" },
        Key { name: "target_noise_clip", range: Range::NonNegative, meaning: "ε is clipped to [−c, c]" },
        Key { name: "tau", range: Range::UnitOpenLow, meaning: "Polyak rate τ of the target networks" },
        Key { name: "updates_per_step", range: Range::AtLeast(1), meaning: "gradient updates per environment step" },
    ];

    fn presets() -> &'static [Preset<Self>] {
        &[
            Preset {
                name: "zoo_pendulum",
                meaning: "rl-baselines3-zoo's Pendulum-v1 settings (the default)",
                values: Td3Config::zoo_pendulum,
            },
            Preset {
                name: "sb3",
                meaning:
                    "Stable-Baselines3's TD3 defaults (no exploration noise, 100 warm-up steps)",
                values: Td3Config::default,
            },
        ]
    }

    fn check_together(&self) -> Result<()> {
        check_buffer_holds_batch(self.buffer_size, self.batch_size)
    }
}

impl OnlineAlgorithm for Td3Config {
    type Agent = Td3Agent;

    fn agent_config(&self) -> Td3Config {
        self.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hyperparams::check_key_table;

    #[test]
    fn the_key_table_matches_the_fields() {
        check_key_table::<Td3Config>();
        assert_eq!(Td3Config::defaults(), Td3Config::zoo_pendulum());
    }
}
