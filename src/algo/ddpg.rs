//! Deep Deterministic Policy Gradient, the chapter's pseudocode `ddpg` (Lillicrap et al.
//! 2015): NFQCA made online, with a replay buffer, exploration noise and target networks.
//!
//! # The pseudocode, step by step
//! One call of [`Ddpg::step`](Online::step) is one pass of the `while training` loop.
//! [`Ddpg`] is the online core ([`super::online`]: environment, replay buffer, warm-up,
//! episodes, checkpoints) driving a [`DdpgAgent`], which holds what is DDPG's own:
//!
//! * 6.1–6.2: observe `s`, act `a = d(s; wₙ) + 𝒩` ([`crate::noise`]):
//!   [`DdpgAgent`]'s `act`;
//! * 6.3–6.4: execute `a`, store `(s, a, r, s')` in the ring buffer 𝓡 of capacity B
//!   ([`crate::replay`]), replacing the oldest when full: the core;
//! * 6.5: sample a minibatch of b transitions (uniformly, with replacement): the core;
//! * 6.6: `yᵢ = rᵢ + γ q(s'ᵢ, d(s'ᵢ; w_target); θ_target)`,
//! * 6.7: one Adam step of θ on `(1/b) Σᵢ (yᵢ − q(sᵢ, aᵢ; θ))²`,
//! * 6.8: one Adam step of w ascending `(1/b) Σᵢ q(sᵢ, d(sᵢ; w); θₙ₊₁)` through ∇ₐq,
//! * 6.9: every K updates, `θ_target ← θ`, `w_target ← w`: [`DdpgAgent`]'s `update`;
//! * 6.10: `n ← n + 1`: the core.
//!
//! At step 6.9 the pseudocode writes θₙ; the copy here takes the freshly updated θₙ₊₁,
//! as DQN and the DDPG paper do (the two differ by one update, K steps apart).
//!
//! # What practice adds (each a setting of [`DdpgConfig`])
//! Polyak averaging of the targets (`θ_target ← τθ + (1−τ)θ_target` every update, the
//! DDPG paper's choice) instead of hard copies; Gaussian instead of Ornstein–Uhlenbeck
//! noise; `learning_starts` steps of uniformly random actions before the first update;
//! clipping exploratory actions to the action box; a tanh output scaled to the box
//! ([`PolicyOutput::TanhScaled`]); several updates per step; and no bootstrapping from
//! terminal states (the chapter's tasks have none; time-limit truncation is not one).
//! [`DdpgConfig::chapter`] is the pseudocode as written, [`DdpgConfig::default`] the
//! common practice, [`DdpgConfig::zoo_pendulum`] rl-baselines3-zoo's Pendulum-v1 settings.
//!
//! # Problem, iteration, runner
//! As in argmin, the problem (an [`Env`] and a [`ValidDdpgConfig`]) is separate from the
//! iteration ([`Ddpg::step`](Online::step), returning a [`StepReport`]) and from whoever
//! loops over iterations ([`Ddpg::run`](Online::run) or your own loop), which can
//! evaluate, log and checkpoint between steps. A checkpoint ([`DdpgCheckpoint`], JSON) holds everything that
//! determines the future of the run — networks, targets, Adam moments, replay buffer,
//! noise process, random streams, the environment's state, counters — so a run restored
//! from it continues bit for bit (for environments whose randomness is only in reset,
//! which here are reseeded from the run's own stream at every episode start).
//!
//! The pseudocode's loop has no episodes; here, when the environment terminates or
//! truncates, it is reset (seeded from the run's own stream) and the noise process
//! restarts at its mean, as in the DDPG paper.
//!
//! # Speed
//! Once the first update has run (it sizes the per-thread GEMM scratch), a step allocates
//! nothing (`tests/ddpg.rs` counts): the replay storage, the minibatch, the sample
//! indices, the network workspaces and the gradient buffers are allocated at
//! construction, and all batch arithmetic goes through the GEMM of [`crate::nn`]. On
//! several threads, large products split their rows over the pool, and step 6.6 (the
//! target networks) runs beside the forward passes of 6.7 and 6.8; results are the same
//! bits on any number of threads (`tests/ddpg.rs`).

use serde::{Deserialize, Serialize};

use super::deterministic_policy::{
    validate_shared, ActionMap, ActorCriticStep, DeterministicPolicy, Explorer, ForwardPasses,
    Networks, PolicyOutput, UpdateStats,
};
use super::online::{
    agent_field, check_adam, check_network, restore_rng, Agent, AgentConfig, Checkpoint, Online,
    OnlineSettings,
};
use crate::env::Env;
use crate::error::{Error, Result};
use crate::eval::{EvalSettings, Evaluation};
use crate::nn::{Activation, Adam, AdamConfig, Mlp};
use crate::noise::{ExplorationNoise, NoiseConfig, OrnsteinUhlenbeckParams};
use crate::replay::Minibatch;
use crate::rng::{RngState, RunSeed};

/// How the target networks follow the online ones (step 6.9).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum TargetUpdate {
    /// The chapter's: `θ_target ← θ`, `w_target ← w` when the update count n satisfies
    /// `n mod every = 0` (K = `every`).
    HardCopy { every: usize },
    /// `θ_target ← τθ + (1−τ)θ_target` after every update, τ in (0, 1].
    Polyak { tau: f64 },
}

/// Every hyperparameter of DDPG, with documented defaults: the common practice of
/// CleanRL's `ddpg_continuous_action.py` (one actor update per critic update, as DDPG
/// has it). Check it once into a [`ValidDdpgConfig`] with [`DdpgConfig::check`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DdpgConfig {
    /// Discount γ in [0, 1]. Default 0.99.
    pub gamma: f64,
    /// Replay buffer capacity B. Default 1 000 000.
    pub buffer_size: usize,
    /// Minibatch size b. Default 256.
    pub batch_size: usize,
    /// Adam for the policy, learning rate α_d. Default lr 3e-4.
    pub actor_optimizer: AdamConfig,
    /// Adam for the critic, learning rate α_q. Default lr 3e-4.
    pub critic_optimizer: AdamConfig,
    /// Hidden widths of d(s; w). Default [256, 256].
    pub actor_hidden: Vec<usize>,
    /// Hidden widths of q(s, a; θ). Default [256, 256].
    pub critic_hidden: Vec<usize>,
    /// Hidden activation of both networks. Default ReLU.
    pub hidden_activation: Activation,
    /// How the actor's output becomes an action. Default tanh scaled to the box.
    pub policy_output: PolicyOutput,
    /// If set, both networks' last layers start in `U(±bound)` (the DDPG paper: 3e-3);
    /// otherwise PyTorch's initialization. Default `None`.
    pub last_layer_init: Option<f64>,
    /// Exploration noise 𝒩, in agent coordinates (normalized to [−1, 1] with a tanh
    /// output). Default Gaussian σ = 0.1.
    pub noise: NoiseConfig,
    /// Clip the exploratory action `d(s) + 𝒩` to the action box. Default true.
    pub clip_actions: bool,
    /// Target network updates. Default Polyak τ = 0.005.
    pub target_update: TargetUpdate,
    /// No update until more than this many environment steps have been taken.
    /// Default 25 000.
    pub learning_starts: usize,
    /// Before `learning_starts` steps, act uniformly at random in the box instead of
    /// following d(s; w) (noise is still added, as Stable-Baselines3 does). Default true.
    pub random_actions_before_learning: bool,
    /// Updates (steps 6.5–6.9) per environment step. Default 1.
    pub updates_per_step: usize,
    /// Restart the noise process at its mean with every episode (the DDPG paper's
    /// choice). With `false` the process runs on across episodes: an Ornstein–Uhlenbeck
    /// process whose correlation time 1/(θΔt) (about 667 steps at the chapter's values)
    /// exceeds the episode then reaches its stationary spread. Default true.
    pub reset_noise_each_episode: bool,
}

impl Default for DdpgConfig {
    fn default() -> Self {
        DdpgConfig {
            gamma: 0.99,
            buffer_size: 1_000_000,
            batch_size: 256,
            actor_optimizer: AdamConfig::with_lr(3e-4),
            critic_optimizer: AdamConfig::with_lr(3e-4),
            actor_hidden: vec![256, 256],
            critic_hidden: vec![256, 256],
            hidden_activation: Activation::Relu,
            policy_output: PolicyOutput::TanhScaled,
            last_layer_init: None,
            noise: NoiseConfig::Gaussian { sigma: 0.1 },
            clip_actions: true,
            target_update: TargetUpdate::Polyak { tau: 0.005 },
            learning_starts: 25_000,
            random_actions_before_learning: true,
            updates_per_step: 1,
            reset_noise_each_episode: true,
        }
    }
}

impl DdpgConfig {
    /// The pseudocode as the chapter states it: Ornstein–Uhlenbeck noise (θ 0.15, σ 0.2,
    /// Δt 0.01), hard target copies every K = 1000 updates, d(s; w) with an unbounded
    /// output, no clipping, an update from the very first step. Where the chapter gives
    /// no number, the DDPG paper's: layers [400, 300], b = 64, α_d = 1e-4, α_q = 1e-3,
    /// last layers in U(±3e-3), γ = 0.99, B = 10⁶.
    pub fn chapter() -> Self {
        DdpgConfig {
            gamma: 0.99,
            buffer_size: 1_000_000,
            batch_size: 64,
            actor_optimizer: AdamConfig::with_lr(1e-4),
            critic_optimizer: AdamConfig::with_lr(1e-3),
            actor_hidden: vec![400, 300],
            critic_hidden: vec![400, 300],
            hidden_activation: Activation::Relu,
            policy_output: PolicyOutput::Linear,
            last_layer_init: Some(3e-3),
            noise: NoiseConfig::OrnsteinUhlenbeck(OrnsteinUhlenbeckParams::default()),
            clip_actions: false,
            target_update: TargetUpdate::HardCopy { every: 1000 },
            learning_starts: 0,
            random_actions_before_learning: false,
            updates_per_step: 1,
            reset_noise_each_episode: true,
        }
    }

    /// rl-baselines3-zoo's DDPG hyperparameters for Pendulum-v1 (with Stable-Baselines3's
    /// defaults for the rest): γ 0.98, B 200 000, 10 000 learning-start steps of random
    /// actions, Gaussian noise σ 0.1 on the normalized action, lr 1e-3, layers [400, 300],
    /// b 256, τ 0.005, one update per step, tanh output scaled to the box.
    pub fn zoo_pendulum() -> Self {
        DdpgConfig {
            gamma: 0.98,
            buffer_size: 200_000,
            batch_size: 256,
            actor_optimizer: AdamConfig::with_lr(1e-3),
            critic_optimizer: AdamConfig::with_lr(1e-3),
            actor_hidden: vec![400, 300],
            critic_hidden: vec![400, 300],
            hidden_activation: Activation::Relu,
            policy_output: PolicyOutput::TanhScaled,
            last_layer_init: None,
            noise: NoiseConfig::Gaussian { sigma: 0.1 },
            clip_actions: true,
            target_update: TargetUpdate::Polyak { tau: 0.005 },
            learning_starts: 10_000,
            random_actions_before_learning: true,
            updates_per_step: 1,
            reset_noise_each_episode: true,
        }
    }

    /// Checks every field once; an invalid one is [`Error::InvalidParameter`] naming it
    /// (`ddpg.gamma`, `ddpg.noise.sigma`, `ddpg.critic_optimizer.lr`, ...).
    pub fn check(&self) -> Result<ValidDdpgConfig> {
        validate_shared(
            "ddpg",
            self.gamma,
            &[
                ("actor_hidden", &self.actor_hidden),
                ("critic_hidden", &self.critic_hidden),
            ],
            self.last_layer_init,
            &[
                ("actor_optimizer", &self.actor_optimizer),
                ("critic_optimizer", &self.critic_optimizer),
            ],
        )?;
        AgentConfig::online(self).check("ddpg")?;
        self.noise.validate("ddpg.noise")?;
        match self.target_update {
            TargetUpdate::HardCopy { every: 0 } => {
                return Err(Error::invalid(
                    "ddpg.target_update.every",
                    "must be at least 1",
                ))
            }
            TargetUpdate::Polyak { tau } if !(tau > 0.0 && tau <= 1.0) => {
                return Err(Error::invalid(
                    "ddpg.target_update.tau",
                    format!("{tau} is not in (0, 1]"),
                ))
            }
            _ => {}
        }
        Ok(ValidDdpgConfig(self.clone()))
    }
}

/// A [`DdpgConfig`] whose fields have all been checked; the only way to build a [`Ddpg`].
#[derive(Clone, Debug, PartialEq)]
pub struct ValidDdpgConfig(DdpgConfig);

impl std::ops::Deref for ValidDdpgConfig {
    type Target = DdpgConfig;

    fn deref(&self) -> &DdpgConfig {
        &self.0
    }
}

impl AgentConfig for DdpgConfig {
    type Valid = ValidDdpgConfig;

    fn check(&self) -> Result<ValidDdpgConfig> {
        DdpgConfig::check(self)
    }

    fn online(&self) -> OnlineSettings {
        OnlineSettings {
            buffer_size: self.buffer_size,
            batch_size: self.batch_size,
            learning_starts: self.learning_starts,
            random_actions_before_learning: self.random_actions_before_learning,
            updates_per_step: self.updates_per_step,
        }
    }
}

pub use super::online::EpisodeEnd;

/// What one iteration did.
pub type StepReport = super::online::StepReport<UpdateStats>;

/// DDPG driving one environment: [`Online`] (environment, replay buffer 𝓡, warm-up,
/// episodes, checkpoints) with a [`DdpgAgent`].
pub type Ddpg = Online<DdpgAgent>;

/// A DDPG run frozen between two steps. Serialize it with serde (JSON through
/// [`Online::to_json`]); [`Online::restore`] checks it and continues the run.
pub type DdpgCheckpoint = Checkpoint<DdpgConfig, DdpgState>;

/// DDPG's own part: d(s; w), q(s, a; θ), their targets and optimizers, the exploration
/// noise 𝒩 and its stream.
pub struct DdpgAgent {
    config: ValidDdpgConfig,
    map: ActionMap,
    actor: Mlp,
    actor_target: Mlp,
    critic: Mlp,
    critic_target: Mlp,
    actor_adam: Adam,
    critic_adam: Adam,
    /// The noise 𝒩, its stream, and the acting buffers.
    explorer: Explorer,
    scratch: Scratch,
}

/// Buffers allocated once; nothing here is state that a checkpoint must keep.
struct Scratch {
    targets: Vec<f32>,
    learner: ActorCriticStep,
    /// The target networks' buffers: step 6.6 runs beside the forward passes of 6.7–6.8.
    target_passes: ForwardPasses,
}

impl Scratch {
    fn new(batch: usize, actor: &Mlp, critic: &Mlp) -> Self {
        Scratch {
            targets: vec![0.0; batch],
            learner: ActorCriticStep::new(actor, critic, batch),
            target_passes: ForwardPasses::new(actor, critic, batch),
        }
    }
}

/// DDPG's part of a [`DdpgCheckpoint`].
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DdpgState {
    pub actor: Mlp,
    pub actor_target: Mlp,
    pub critic: Mlp,
    pub critic_target: Mlp,
    pub actor_adam: Adam,
    pub critic_adam: Adam,
    pub noise: ExplorationNoise,
    pub noise_rng: RngState,
}

fn action_map(config: &DdpgConfig, env: &dyn Env) -> Result<ActionMap> {
    ActionMap::new(
        config.policy_output,
        env.action_space(),
        "ddpg.policy_output",
    )
}

fn networks<'a>(config: &'a DdpgConfig, env: &dyn Env, map: &ActionMap) -> Networks<'a> {
    Networks {
        obs_dim: env.observation_dim(),
        action_dim: map.dim(),
        actor_hidden: &config.actor_hidden,
        critic_hidden: &config.critic_hidden,
        hidden_activation: config.hidden_activation,
        output: config.policy_output,
        last_layer_init: config.last_layer_init,
    }
}

impl Agent for DdpgAgent {
    const NAME: &'static str = "ddpg";
    type Config = DdpgConfig;
    type Stats = UpdateStats;
    type State = DdpgState;

    /// Steps 1–4 of the pseudocode: initialize θ₀ and w₀ from `seed`, copy them into the
    /// targets, start the noise process (𝓡 is the core's, step 3).
    fn new(config: &ValidDdpgConfig, env: &dyn Env, seed: RunSeed) -> Result<Self> {
        let map = action_map(config, env)?;
        let networks = networks(config, env, &map);
        let actor = Mlp::new(
            &networks.actor_config(),
            &mut seed.stream("ddpg-actor-init"),
        )?;
        let critic = Mlp::new(
            &networks.critic_config(),
            &mut seed.stream("ddpg-critic-init"),
        )?;
        let action_dim = map.dim();
        Ok(DdpgAgent {
            actor_target: actor.clone(),
            critic_target: critic.clone(),
            actor_adam: Adam::new(config.actor_optimizer, actor.num_params())?,
            critic_adam: Adam::new(config.critic_optimizer, critic.num_params())?,
            explorer: Explorer::new(
                ExplorationNoise::new(config.noise, action_dim)?,
                seed.stream("ddpg-noise"),
                &actor,
            ),
            scratch: Scratch::new(config.batch_size, &actor, &critic),
            config: config.clone(),
            map,
            actor,
            critic,
        })
    }

    fn config(&self) -> &ValidDdpgConfig {
        &self.config
    }

    fn action_map(&self) -> &ActionMap {
        &self.map
    }

    /// 6.1–6.2: observe s, select a = d(s; wₙ) + 𝒩 (in agent coordinates; during warm-up
    /// the uniform draw in `action` takes the place of d(s; wₙ)), clipped to the box if
    /// configured.
    fn act(&mut self, observation: &[f32], warming_up: bool, action: &mut [f64]) -> Result<()> {
        let clip = self.config.clip_actions;
        self.explorer.act(
            &self.actor,
            &self.map,
            clip,
            observation,
            warming_up,
            action,
        )
    }

    /// The noise process restarts at its mean with every episode, as in the DDPG paper,
    /// unless `reset_noise_each_episode` is off.
    fn episode_started(&mut self) {
        if self.config.reset_noise_each_episode {
            self.explorer.noise.reset();
        }
    }

    /// Steps 6.6–6.9 on the minibatch of step 6.5: one update of the critic, the actor
    /// and the targets.
    ///
    /// Step 6.6 reads only the target networks, and the forward passes q(sᵢ, aᵢ; θₙ) of
    /// 6.7 and d(sᵢ; wₙ) of 6.8 read neither the targets nor θₙ₊₁, so the two run side by
    /// side (`rayon::join`, each on its own buffers): on two threads the second core takes
    /// half of the forward work, small products and element-wise passes included, where
    /// splitting rows helps only the large products. Every number is computed as in the
    /// sequential order, so results are the same bits on any number of threads.
    fn update(&mut self, batch: &Minibatch, updates_so_far: u64, step: u64) -> Result<UpdateStats> {
        let config = &self.config.0;
        let Scratch {
            targets,
            learner,
            target_passes,
        } = &mut self.scratch;
        let context = move || format!("ddpg step {step}");
        let (actor, critic) = (&self.actor, &self.critic);
        let (actor_target, critic_target) = (&self.actor_target, &self.critic_target);

        let (computed_targets, forward_passes) = rayon::join(
            // 6.6: yᵢ = rᵢ + γ q(s'ᵢ, d(s'ᵢ; w_target); θ_target).
            || {
                target_passes.targets(
                    actor_target,
                    critic_target,
                    config.gamma,
                    batch.next_observations(),
                    batch.rewards(),
                    batch.not_terminal(),
                    targets,
                )
            },
            // The forward passes of 6.7 (q(sᵢ, aᵢ; θₙ)) and 6.8 (d(sᵢ; wₙ)).
            || {
                learner.critic_forward(critic, batch.observations(), batch.actions())?;
                learner.actor_forward(actor, batch.observations())
            },
        );
        computed_targets?;
        forward_passes?;
        // 6.7: θₙ₊₁ ← θₙ − α_q ∇_θ (1/b) Σᵢ (yᵢ − q(sᵢ, aᵢ; θₙ))² (an Adam step).
        let critic_loss =
            learner.critic_step(&mut self.critic, &mut self.critic_adam, targets, context)?;
        // 6.8: wₙ₊₁ ← wₙ + α_d (1/b) Σᵢ ∇ₐq(sᵢ, a; θₙ₊₁)|_{a=d(sᵢ; wₙ)} ∇_w d(sᵢ; wₙ).
        let actor_objective = learner.actor_step(
            &mut self.actor,
            &mut self.actor_adam,
            &self.critic,
            batch.observations(),
            context,
        )?;
        // 6.9: target networks.
        match config.target_update {
            TargetUpdate::HardCopy { every } => {
                if updates_so_far.is_multiple_of(every as u64) {
                    self.critic_target.hard_copy_from(&self.critic)?;
                    self.actor_target.hard_copy_from(&self.actor)?;
                }
            }
            TargetUpdate::Polyak { tau } => {
                self.critic_target.polyak_update(&self.critic, tau)?;
                self.actor_target.polyak_update(&self.actor, tau)?;
            }
        }
        Ok(UpdateStats {
            critic_loss,
            actor_objective,
        })
    }

    fn evaluate(
        &self,
        make_env: &(dyn Fn() -> Result<Box<dyn Env>> + Sync),
        settings: &EvalSettings,
    ) -> Result<Evaluation> {
        DeterministicPolicy::from_parts(&self.actor, &self.map).evaluate(make_env, settings)
    }

    fn state(&self) -> DdpgState {
        DdpgState {
            actor: self.actor.clone(),
            actor_target: self.actor_target.clone(),
            critic: self.critic.clone(),
            critic_target: self.critic_target.clone(),
            actor_adam: self.actor_adam.clone(),
            critic_adam: self.critic_adam.clone(),
            noise: self.explorer.noise.clone(),
            noise_rng: RngState::capture(&self.explorer.rng),
        }
    }

    fn restore(config: ValidDdpgConfig, state: DdpgState, env: &dyn Env) -> Result<Self> {
        let s = state;
        let map = action_map(&config, env)?;
        let networks = networks(&config, env, &map);
        let (actor_config, critic_config) = (networks.actor_config(), networks.critic_config());
        check_network("actor", &s.actor, &actor_config)?;
        check_network("actor_target", &s.actor_target, &actor_config)?;
        check_network("critic", &s.critic, &critic_config)?;
        check_network("critic_target", &s.critic_target, &critic_config)?;
        check_adam(
            "actor_adam",
            &s.actor_adam,
            &s.actor,
            config.actor_optimizer,
        )?;
        check_adam(
            "critic_adam",
            &s.critic_adam,
            &s.critic,
            config.critic_optimizer,
        )?;
        let action_dim = map.dim();
        s.noise
            .check_restored(&agent_field("noise"), &config.noise, action_dim)?;
        let noise_rng = restore_rng(&s.noise_rng, &agent_field("noise_rng"))?;
        Ok(DdpgAgent {
            scratch: Scratch::new(config.batch_size, &s.actor, &s.critic),
            explorer: Explorer::new(s.noise, noise_rng, &s.actor),
            config,
            map,
            actor: s.actor,
            actor_target: s.actor_target,
            critic: s.critic,
            critic_target: s.critic_target,
            actor_adam: s.actor_adam,
            critic_adam: s.critic_adam,
        })
    }
}

/// What only DDPG has; the rest ([`Online::step`], [`Online::run`], [`Online::steps`],
/// [`Online::checkpoint`], ...) is the core's.
impl Ddpg {
    /// A snapshot of the current policy d(s; wₙ), without noise, to act and evaluate.
    pub fn policy(&self) -> DeterministicPolicy {
        let agent = self.agent();
        DeterministicPolicy::from_parts(&agent.actor, &agent.map)
    }

    pub fn actor(&self) -> &Mlp {
        &self.agent().actor
    }

    pub fn critic(&self) -> &Mlp {
        &self.agent().critic
    }

    pub fn actor_target(&self) -> &Mlp {
        &self.agent().actor_target
    }

    pub fn critic_target(&self) -> &Mlp {
        &self.agent().critic_target
    }

    pub fn noise(&self) -> &ExplorationNoise {
        &self.agent().explorer.noise
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::algo::deterministic_policy::testing::{batch, targets_by_hand};
    use crate::env::pendulum::Pendulum;

    fn small() -> DdpgConfig {
        DdpgConfig {
            buffer_size: 64,
            batch_size: 16,
            actor_hidden: vec![8],
            critic_hidden: vec![8],
            learning_starts: 0,
            random_actions_before_learning: false,
            ..DdpgConfig::chapter()
        }
    }

    fn agent(config: DdpgConfig) -> DdpgAgent {
        DdpgAgent::new(&config.check().unwrap(), &Pendulum::new(), RunSeed(3)).unwrap()
    }

    #[test]
    fn step_6_6_reads_the_target_networks_not_the_online_ones() {
        // Targets copied at update 0 only: afterwards the online networks move away.
        let mut agent = agent(DdpgConfig {
            target_update: TargetUpdate::HardCopy { every: 1_000_000 },
            ..small()
        });
        for k in 0..5 {
            agent.update(&batch(k), k, k).unwrap();
        }
        let probe = batch(99);
        let gamma = agent.config.gamma;
        let from_targets =
            targets_by_hand(&agent.actor_target, &[&agent.critic_target], gamma, &probe);
        let from_online = targets_by_hand(&agent.actor, &[&agent.critic], gamma, &probe);
        let gap = from_targets
            .iter()
            .zip(&from_online)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(gap > 1e-4, "online and target networks still agree ({gap})");
        agent.update(&probe, 5, 5).unwrap();
        for (got, want) in agent.scratch.targets.iter().zip(&from_targets) {
            assert!(
                (got - want).abs() <= 1e-6 * want.abs().max(1.0),
                "{got} vs {want}"
            );
        }
    }

    #[test]
    fn the_noise_restarts_each_episode_unless_told_to_run_on() {
        for reset in [true, false] {
            let mut agent = agent(DdpgConfig {
                reset_noise_each_episode: reset,
                ..small()
            });
            let mut action = [0.0];
            for _ in 0..50 {
                agent.act(&[1.0, 0.0, 0.0], false, &mut action).unwrap();
            }
            let before = agent.explorer.noise.state()[0];
            assert!(before != 0.0);
            agent.episode_started();
            let after = agent.explorer.noise.state()[0];
            assert_eq!(after, if reset { 0.0 } else { before }, "reset = {reset}");
        }
    }
}
