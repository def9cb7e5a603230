//! Twin Delayed DDPG (TD3; Fujimoto, van Hoof & Meger 2018): the chapter's `ddpg`
//! pseudocode with three changes. The chapter has no TD3 (and no label for it); this
//! module states what TD3 adds to `ddpg`, numbering the steps as [`super::ddpg`] does, with
//! the semantics of Stable-Baselines3's `TD3` (2.x). [`Td3`] is the online core
//! ([`super::online`]) driving a [`Td3Agent`]; actions live in the normalized box
//! [−1, 1]ᵐ of a tanh-scaled actor ([`PolicyOutput::TanhScaled`]), and 𝓡 stores them so.
//!
//! * 6.1–6.2: `a = clip(d(s; wₙ) + 𝒩, −1, 1)`, 𝒩 ~ N(0, σ²) (during the `learning_starts`
//!   warm-up a uniform draw takes the place of d(s; wₙ), as in DDPG and SB3): `act`;
//! * 6.3–6.5 and 6.10 (execute, store, sample a minibatch; `n ← n + 1`): the core;
//! * 6.6, target policy smoothing and clipped double Q: `εᵢ = clip(N(0, σ̃²), −c, c)`
//!   ([`target_smoothing_noise`]), `ã'ᵢ = clip(d(s'ᵢ; w_target) + εᵢ, −1, 1)`
//!   ([`smooth`]), `yᵢ = rᵢ + γ(1 − terminalᵢ) minⱼ₌₁,₂ q(s'ᵢ, ã'ᵢ; θⱼ_target)`;
//! * 6.7, twin critics: one Adam step on `Σⱼ (1/b) Σᵢ (yᵢ − q(sᵢ, aᵢ; θⱼ))²` (each critic's
//!   gradient is that of its own term, and Adam acts per parameter with one step count,
//!   so one optimizer per critic is SB3's single optimizer over both);
//! * 6.8, delayed policy updates: only when `(n + 1) mod d = 0` (SB3 counts updates from
//!   1, so with d = 2 the 2nd, 4th, ...), one Adam step of w ascending
//!   `(1/b) Σᵢ q(sᵢ, d(sᵢ; w); θ₁)`, the first critic as just updated;
//! * 6.9: in those updates only, `θⱼ_target ← τθⱼ + (1−τ)θⱼ_target` for both critics, then
//!   `w_target ← τw + (1−τ)w_target`: `update`.
//!
//! Streams: `td3-actor-init`, `td3-critic-init` (indexed 0, 1), `td3-noise` (𝒩),
//! `td3-target-noise` (ε), and the core's. The critics step concurrently (`rayon::join`),
//! each on its own buffers: a seed fixes every bit whatever the thread count. Inside a
//! rayon pool a step allocates nothing once the first update has sized the GEMM scratch.

use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

use super::deterministic_policy::{
    validate_shared, ActionMap, ActorCriticStep, DeterministicPolicy, Explorer, Networks,
    NextStates, PolicyOutput,
};
use super::online::{agent_field, Checked, Online, OnlineSettings, UpdateMetrics};
use super::online::{check_adam, check_network, restore_rng, Agent, AgentConfig, Checkpoint};
use crate::env::Env;
use crate::error::{Error, Result};
use crate::eval::{EvalSettings, Evaluation};
use crate::nn::{Activation, Adam, AdamConfig, Mlp, MlpConfig};
use crate::noise::{ExplorationNoise, NoiseConfig};
use crate::replay::Minibatch;
use crate::rng::{Rng, RngState, RunSeed};

/// Every hyperparameter of TD3; [`Td3Config::default`] is Stable-Baselines3's `TD3` (2.x).
/// Check it once into a [`ValidTd3Config`] with [`Td3Config::check`]. Fixed, as in SB3:
/// ReLU hidden layers, PyTorch's initialization, a tanh output scaled to the box, and
/// uniform random actions during the `learning_starts` warm-up (0 for none).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Td3Config {
    /// Discount γ in [0, 1]. Default 0.99.
    pub gamma: f64,
    /// Replay buffer capacity B ≥ 1. Default 1 000 000.
    pub buffer_size: usize,
    /// Minibatch size b ≥ 1. Default 256.
    pub batch_size: usize,
    /// Adam learning rate of the actor and both critics, > 0. Default 1e-3.
    pub lr: f64,
    /// Hidden widths of the actor and of each critic, each ≥ 1. Default [400, 300].
    pub hidden: Vec<usize>,
    /// No update until more than this many steps (of uniform random actions). Default 100.
    pub learning_starts: usize,
    /// Standard deviation σ ≥ 0 of the exploration noise 𝒩 on the normalized action.
    /// Default 0 (SB3's `action_noise=None`; the zoo and the paper use 0.1).
    pub sigma: f64,
    /// The actor and the targets are updated every d-th update, d ≥ 1. Default 2.
    pub policy_delay: usize,
    /// Standard deviation σ̃ ≥ 0 of the target smoothing noise ε. Default 0.2.
    pub target_noise: f64,
    /// ε is clipped to [−c, c], c ≥ 0. Default 0.5.
    pub target_noise_clip: f64,
    /// Polyak τ in (0, 1] of the target networks. Default 0.005.
    pub tau: f64,
    /// Updates per step ≥ 1 (SB3's `gradient_steps`, with `train_freq` 1). Default 1.
    pub updates_per_step: usize,
}

impl Default for Td3Config {
    fn default() -> Self {
        Td3Config {
            gamma: 0.99,
            buffer_size: 1_000_000,
            batch_size: 256,
            lr: 1e-3,
            hidden: vec![400, 300],
            learning_starts: 100,
            sigma: 0.0,
            policy_delay: 2,
            target_noise: 0.2,
            target_noise_clip: 0.5,
            tau: 0.005,
            updates_per_step: 1,
        }
    }
}

impl Td3Config {
    /// Checks every field once; an invalid one is [`Error::InvalidParameter`] naming it
    /// (`td3.gamma`, `td3.lr`, `td3.policy_delay`, ...).
    pub fn check(&self) -> Result<ValidTd3Config> {
        let adam = [("", &AdamConfig::with_lr(self.lr))];
        validate_shared("td3", self.gamma, &[("hidden", &self.hidden)], None, &adam)?;
        AgentConfig::online(self).check("td3")?;
        NoiseConfig::Gaussian { sigma: self.sigma }.validate("td3")?;
        let invalid = |field: &str, reason| Err(Error::invalid(format!("td3.{field}"), reason));
        let (noise, clip) = (self.target_noise, self.target_noise_clip);
        for (field, x) in [("target_noise", noise), ("target_noise_clip", clip)] {
            if !(x.is_finite() && x >= 0.0) {
                return invalid(field, format!("{x} is not a finite number ≥ 0"));
            }
        }
        if self.policy_delay == 0 {
            return invalid("policy_delay", "must be at least 1".into());
        }
        if !(self.tau > 0.0 && self.tau <= 1.0) {
            return invalid("tau", format!("{} is not in (0, 1]", self.tau));
        }
        Ok(Checked::new(self.clone()))
    }
}

/// A [`Td3Config`] whose fields have all been checked; the only way to build a [`Td3`].
pub type ValidTd3Config = Checked<Td3Config>;

impl AgentConfig for Td3Config {
    type Valid = ValidTd3Config;

    fn check(&self) -> Result<ValidTd3Config> {
        Td3Config::check(self)
    }

    fn online(&self) -> OnlineSettings {
        OnlineSettings {
            buffer_size: self.buffer_size,
            batch_size: self.batch_size,
            learning_starts: self.learning_starts,
            random_actions_before_learning: true,
            updates_per_step: self.updates_per_step,
        }
    }
}

/// What one update measured.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Td3UpdateStats {
    /// `Σⱼ (1/b) Σᵢ (q(sᵢ, aᵢ; θⱼ) − yᵢ)²` before the critics' step.
    pub critic_loss: f64,
    /// `(1/b) Σᵢ q(sᵢ, d(sᵢ; w); θ₁)` before the actor's step, in updates that make one.
    pub actor_objective: Option<f64>,
}

/// Reports the critic's loss alone, as DDPG does.
impl UpdateMetrics for Td3UpdateStats {
    fn critic_loss(&self) -> f64 {
        self.critic_loss
    }
}

/// What one iteration did.
pub type StepReport = super::online::StepReport<Td3UpdateStats>;

/// TD3 driving one environment: [`Online`] with a [`Td3Agent`].
pub type Td3 = Online<Td3Agent>;

/// A TD3 run frozen between two steps ([`Online::to_json`], [`Online::restore`]).
pub type Td3Checkpoint = Checkpoint<Td3Config, Td3State>;

/// The networks of TD3 and their optimizers.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Td3Networks {
    pub actor: Mlp,
    pub actor_target: Mlp,
    /// q(s, a; θ₁), q(s, a; θ₂).
    pub critics: [Mlp; 2],
    pub critic_targets: [Mlp; 2],
    pub actor_adam: Adam,
    pub critic_adams: [Adam; 2],
}

/// TD3's part of a [`Td3Checkpoint`] (the Gaussian 𝒩 has no state but its stream).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Td3State {
    pub networks: Td3Networks,
    pub noise_rng: RngState,
    pub smoothing_rng: RngState,
}

/// TD3's own part: the networks, the exploration noise 𝒩 and the smoothing noise's stream.
pub struct Td3Agent {
    config: ValidTd3Config,
    map: ActionMap,
    nets: Td3Networks,
    explorer: Explorer,
    smoothing_rng: Rng,
    // Allocated once: ε (b × m), yᵢ, and a learner per critic (to step both at once).
    smoothing: Vec<f32>,
    targets: Vec<f32>,
    learners: [ActorCriticStep; 2],
}

/// Step 6.6's `εᵢ = clip(σ̃ ξᵢ, −c, c)`, ξᵢ ~ N(0, 1) independent, into `out`.
pub fn target_smoothing_noise(rng: &mut Rng, std: f64, clip: f64, out: &mut [f32]) {
    for e in out {
        let xi: f64 = StandardNormal.sample(rng);
        *e = (std * xi).clamp(-clip, clip) as f32;
    }
}

/// Step 6.6's `ã' = clip(a' + ε, −1, 1)`, componentwise, in place.
pub fn smooth(action: &mut [f32], noise: &[f32]) {
    for (a, &e) in action.iter_mut().zip(noise) {
        *a = (*a + e).clamp(-1.0, 1.0);
    }
}

/// The action map and the architectures of the actor and of each critic.
fn parts(config: &Td3Config, env: &dyn Env) -> Result<(ActionMap, MlpConfig, MlpConfig)> {
    let output = PolicyOutput::TanhScaled;
    let map = ActionMap::new(output, env.action_space(), "td3.action_space")?;
    let networks = Networks {
        obs_dim: env.observation_dim(),
        action_dim: map.dim(),
        actor_hidden: &config.hidden,
        critic_hidden: &config.hidden,
        hidden_activation: Activation::Relu,
        output,
        last_layer_init: None,
    };
    Ok((map, networks.actor_config(), networks.critic_config()))
}

impl Agent for Td3Agent {
    const NAME: &'static str = "td3";
    type Config = Td3Config;
    type Stats = Td3UpdateStats;
    type State = Td3State;

    /// Steps 1–4: initialize w and θ₁, θ₂ from `seed`, copy them into the targets, and
    /// build the agent as from a checkpoint.
    fn new(config: &ValidTd3Config, env: &dyn Env, seed: RunSeed) -> Result<Self> {
        let (_, actor_config, critic_config) = parts(config, env)?;
        let actor = Mlp::new(&actor_config, &mut seed.stream("td3-actor-init"))?;
        let critic = |j| Mlp::new(&critic_config, &mut seed.indexed("td3-critic-init", j));
        let critics = [critic(0)?, critic(1)?];
        let adam = |net: &Mlp| Adam::new(AdamConfig::with_lr(config.lr), net.num_params());
        let networks = Td3Networks {
            actor_adam: adam(&actor)?,
            critic_adams: [adam(&critics[0])?, adam(&critics[1])?],
            actor_target: actor.clone(),
            critic_targets: critics.clone(),
            actor,
            critics,
        };
        let state = Td3State {
            networks,
            noise_rng: RngState::capture(&seed.stream("td3-noise")),
            smoothing_rng: RngState::capture(&seed.stream("td3-target-noise")),
        };
        Td3Agent::restore(config.clone(), state, env)
    }

    fn config(&self) -> &ValidTd3Config {
        &self.config
    }

    fn action_map(&self) -> &ActionMap {
        &self.map
    }

    /// 6.1–6.2: `a = clip(d(s; wₙ) + 𝒩, −1, 1)` (warming up, a uniform draw for d(s; wₙ)).
    fn act(&mut self, observation: &[f32], warming_up: bool, action: &mut [f64]) -> Result<()> {
        let (actor, map, explorer) = (&self.nets.actor, &self.map, &mut self.explorer);
        explorer.act(actor, map, true, observation, warming_up, action)
    }

    /// Steps 6.6–6.9 on the minibatch of step 6.5; this is update n + 1 (counted from 1).
    fn update(&mut self, batch: &Minibatch, n: u64, step: u64) -> Result<Td3UpdateStats> {
        let (c, nets, m) = (&*self.config, &mut self.nets, self.map.dim());
        let [first, second] = &mut self.learners;
        let context = move || format!("td3 step {step}");

        // 6.6: ã'ᵢ = clip(d(s'ᵢ; w_target) + εᵢ, −1, 1),
        //      yᵢ = rᵢ + γ(1 − terminalᵢ)·minⱼ q(s'ᵢ, ã'ᵢ; θⱼ_target).
        let noise = &mut self.smoothing[..batch.len() * m];
        let (std, clip) = (c.target_noise, c.target_noise_clip);
        target_smoothing_noise(&mut self.smoothing_rng, std, clip, noise);
        let perturb = |i: usize, a: &mut [f32]| smooth(a, &noise[i * m..(i + 1) * m]);
        let (next, y) = (NextStates::of(batch), &mut self.targets);
        let (actor_t, critics_t) = (&nets.actor_target, nets.critic_targets.each_ref());
        first
            .forward
            .min_targets(actor_t, perturb, &critics_t, c.gamma, next, y)?;

        // 6.7: for both θⱼ at once, an Adam step on (1/b) Σᵢ (yᵢ − q(sᵢ, aᵢ; θⱼ))².
        let (s, a, y) = (batch.observations(), batch.actions(), &*y);
        let ([critic_1, critic_2], [adam_1, adam_2]) = (&mut nets.critics, &mut nets.critic_adams);
        let (loss_1, loss_2) = rayon::join(
            || first.fit_critic(critic_1, adam_1, s, a, y, context),
            || second.fit_critic(critic_2, adam_2, s, a, y, context),
        );
        let critic_loss = loss_1? + loss_2?;

        let actor_objective = if (n + 1).is_multiple_of(c.policy_delay as u64) {
            // 6.8: w ascends (1/b) Σᵢ q(sᵢ, d(sᵢ; w); θ₁).
            let (actor, adam) = (&mut nets.actor, &mut nets.actor_adam);
            let objective = first.improve_actor(actor, adam, &nets.critics[0], s, context)?;
            // 6.9: the targets follow.
            for (target, critic) in nets.critic_targets.iter_mut().zip(&nets.critics) {
                target.polyak_update(critic, c.tau)?;
            }
            nets.actor_target.polyak_update(&nets.actor, c.tau)?;
            Some(objective)
        } else {
            None
        };
        Ok(Td3UpdateStats {
            critic_loss,
            actor_objective,
        })
    }

    fn evaluate(
        &self,
        make_env: &(dyn Fn() -> Result<Box<dyn Env>> + Sync),
        settings: &EvalSettings,
    ) -> Result<Evaluation> {
        DeterministicPolicy::from_parts(&self.nets.actor, &self.map).evaluate(make_env, settings)
    }

    fn state(&self) -> Td3State {
        Td3State {
            networks: self.nets.clone(),
            noise_rng: RngState::capture(&self.explorer.rng),
            smoothing_rng: RngState::capture(&self.smoothing_rng),
        }
    }

    fn restore(config: ValidTd3Config, s: Td3State, env: &dyn Env) -> Result<Self> {
        let (map, actor, critic) = parts(&config, env)?;
        let (n, adam) = (&s.networks, AdamConfig::with_lr(config.lr));
        check_network("networks.actor", &n.actor, &actor)?;
        check_network("networks.actor_target", &n.actor_target, &actor)?;
        check_adam("networks.actor_adam", &n.actor_adam, &n.actor, adam)?;
        for j in 0..2 {
            let field = |name: &str| format!("networks.{name}.{j}");
            check_network(&field("critics"), &n.critics[j], &critic)?;
            check_network(&field("critic_targets"), &n.critic_targets[j], &critic)?;
            let (q, q_adam) = (&n.critics[j], &n.critic_adams[j]);
            check_adam(&field("critic_adams"), q_adam, q, adam)?;
        }
        // The networks checked, the agent and its buffers (allocated once).
        let (sigma, b, nets) = (config.sigma, config.batch_size, s.networks);
        let noise = ExplorationNoise::new(NoiseConfig::Gaussian { sigma }, map.dim())?;
        let noise_rng = restore_rng(&s.noise_rng, &agent_field("noise_rng"))?;
        let learner = |critic| ActorCriticStep::new(&nets.actor, critic, b);
        Ok(Td3Agent {
            explorer: Explorer::new(noise, noise_rng, &nets.actor),
            smoothing_rng: restore_rng(&s.smoothing_rng, &agent_field("smoothing_rng"))?,
            smoothing: vec![0.0; b * map.dim()],
            targets: vec![0.0; b],
            learners: [learner(&nets.critics[0]), learner(&nets.critics[1])],
            config,
            map,
            nets,
        })
    }
}

/// What only TD3 has; the rest ([`Online::step`], [`Online::run`], [`Online::steps`],
/// [`Online::checkpoint`], ...) is the core's.
impl Td3 {
    /// A snapshot of the current policy d(s; wₙ), without noise, to act and evaluate.
    pub fn policy(&self) -> DeterministicPolicy {
        let agent = self.agent();
        DeterministicPolicy::from_parts(&agent.nets.actor, &agent.map)
    }

    /// The actor, the critics, their targets and optimizers.
    pub fn networks(&self) -> &Td3Networks {
        &self.agent().nets
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::algo::deterministic_policy::testing::{batch, targets_by_hand};
    use crate::env::pendulum::Pendulum;

    #[test]
    fn step_6_6_reads_the_target_networks_not_the_online_ones() {
        // No smoothing noise, so that yᵢ = rᵢ + γ(1 − doneᵢ) minⱼ qⱼ_target(s', d_target(s'))
        // exactly; a large learning rate so the online networks leave the slow targets.
        let config = Td3Config {
            buffer_size: 64,
            batch_size: 16,
            hidden: vec![8],
            lr: 1e-2,
            target_noise: 0.0,
            ..Td3Config::default()
        }
        .check()
        .unwrap();
        let mut agent = Td3Agent::new(&config, &Pendulum::new(), RunSeed(3)).unwrap();
        for k in 0..6 {
            agent.update(&batch(k), k, k).unwrap();
        }
        let (probe, gamma, nets) = (batch(99), config.gamma, &agent.nets);
        let [q1, q2] = &nets.critics;
        let [t1, t2] = &nets.critic_targets;
        let from_targets = targets_by_hand(&nets.actor_target, &[t1, t2], gamma, &probe);
        let from_online = targets_by_hand(&nets.actor, &[q1, q2], gamma, &probe);
        let from_one_target = targets_by_hand(&nets.actor_target, &[t1], gamma, &probe);
        for (other, what) in [
            (&from_online, "online"),
            (&from_one_target, "one target critic"),
        ] {
            let gap = from_targets
                .iter()
                .zip(other)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0f32, f32::max);
            assert!(gap > 1e-4, "targets and {what} still agree ({gap})");
        }
        agent.update(&probe, 6, 6).unwrap();
        for (got, want) in agent.targets.iter().zip(&from_targets) {
            assert!(
                (got - want).abs() <= 1e-6 * want.abs().max(1.0),
                "{got} vs {want}"
            );
        }
    }
}
