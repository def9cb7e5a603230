//! Deep Deterministic Policy Gradient, the chapter's pseudocode `ddpg` (Lillicrap et al.
//! 2015): NFQCA made online, with a replay buffer, exploration noise and target networks.
//!
//! # The pseudocode, step by step
//! One call of [`Ddpg::step`] is one pass of the `while training` loop:
//!
//! * 6.1–6.2: observe `s`, act `a = d(s; wₙ) + 𝒩` ([`crate::noise`]);
//! * 6.3–6.4: execute `a`, store `(s, a, r, s')` in the ring buffer 𝓡 of capacity B
//!   ([`crate::replay`]), replacing the oldest when full;
//! * 6.5: sample a minibatch of b transitions (uniformly, with replacement);
//! * 6.6: `yᵢ = rᵢ + γ q(s'ᵢ, d(s'ᵢ; w_target); θ_target)`;
//! * 6.7: one Adam step of θ on `(1/b) Σᵢ (yᵢ − q(sᵢ, aᵢ; θ))²`;
//! * 6.8: one Adam step of w ascending `(1/b) Σᵢ q(sᵢ, d(sᵢ; w); θₙ₊₁)` through ∇ₐq;
//! * 6.9: every K updates, `θ_target ← θ`, `w_target ← w`.
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
//! iteration ([`Ddpg::step`], returning a [`StepReport`]) and from whoever loops over
//! iterations ([`Ddpg::run`] or your own loop), which can evaluate, log and checkpoint
//! between steps. A checkpoint ([`DdpgCheckpoint`], JSON) holds everything that
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
//! construction, and all batch arithmetic goes through the GEMM of [`crate::nn`].

use std::path::Path;

use rand::{Rng as _, RngCore};
use serde::{Deserialize, Serialize};

use super::deterministic_policy::{
    rename_field, validate_shared, ActionMap, ActorCriticStep, DeterministicPolicy, Networks,
    PolicyOutput, UpdateStats,
};
use crate::env::Env;
use crate::error::{Error, Result};
use crate::json;
use crate::nn::{Activation, Adam, AdamConfig, Mlp};
use crate::noise::{ExplorationNoise, NoiseConfig, OrnsteinUhlenbeckParams};
use crate::replay::{Minibatch, ReplayBuffer, Transition};
use crate::rng::{Rng, RngState, RunSeed};

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
        }
    }

    /// Checks every field once; an invalid one is [`Error::InvalidParameter`] naming it
    /// (`ddpg.gamma`, `ddpg.noise.sigma`, `ddpg.critic_optimizer.lr`, ...).
    pub fn check(&self) -> Result<ValidDdpgConfig> {
        validate_shared(
            "ddpg",
            self.gamma,
            [
                ("actor_hidden", &self.actor_hidden),
                ("critic_hidden", &self.critic_hidden),
            ],
            self.last_layer_init,
            [
                ("actor_optimizer", &self.actor_optimizer),
                ("critic_optimizer", &self.critic_optimizer),
            ],
        )?;
        let at_least_one = [
            ("buffer_size", self.buffer_size),
            ("batch_size", self.batch_size),
            ("updates_per_step", self.updates_per_step),
        ];
        for (field, value) in at_least_one {
            if value == 0 {
                return Err(Error::invalid(
                    format!("ddpg.{field}"),
                    "must be at least 1",
                ));
            }
        }
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

/// One finished episode of the training environment.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpisodeEnd {
    /// Undiscounted return (exploration noise included).
    pub episode_return: f64,
    pub length: usize,
    /// Ended in a terminal state rather than by truncation.
    pub terminated: bool,
}

/// What one iteration did.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepReport {
    /// Environment steps taken so far, this one included.
    pub step: u64,
    pub reward: f64,
    /// Set when this step ended an episode (the environment has been reset since).
    pub episode_end: Option<EpisodeEnd>,
    /// The last update of this step, if it made any.
    pub update: Option<UpdateStats>,
}

/// DDPG's networks, buffers and streams, driving one environment.
pub struct Ddpg {
    config: ValidDdpgConfig,
    env: Box<dyn Env>,
    map: ActionMap,
    actor: Mlp,
    actor_target: Mlp,
    critic: Mlp,
    critic_target: Mlp,
    actor_adam: Adam,
    critic_adam: Adam,
    replay: ReplayBuffer,
    noise: ExplorationNoise,
    streams: Streams,
    /// The current state `s` as observed, and its episode so far.
    observation: Vec<f32>,
    episode_return: f64,
    episode_length: usize,
    steps: u64,
    updates: u64,
    episodes: u64,
    scratch: Scratch,
}

/// One random stream per consumer, so that none shifts another's numbers.
#[derive(Clone, Debug)]
struct Streams {
    noise: Rng,
    replay: Rng,
    /// Seeds of the environment's resets.
    reset: Rng,
    /// Uniform actions before learning starts.
    warmup: Rng,
}

impl Streams {
    fn new(seed: RunSeed) -> Self {
        Streams {
            noise: seed.stream("ddpg-noise"),
            replay: seed.stream("ddpg-replay"),
            reset: seed.stream("ddpg-reset"),
            warmup: seed.stream("ddpg-warmup"),
        }
    }
}

/// Buffers allocated once; nothing here is state that a checkpoint must keep.
struct Scratch {
    next_observation: Vec<f32>,
    agent_action: Vec<f64>,
    agent_action_f32: Vec<f32>,
    noise: Vec<f64>,
    env_action: Vec<f64>,
    acting_ws: crate::nn::Workspace,
    batch: Minibatch,
    targets: Vec<f32>,
    learner: ActorCriticStep,
}

impl Scratch {
    fn new(obs_dim: usize, action_dim: usize, batch: usize, actor: &Mlp, critic: &Mlp) -> Self {
        Scratch {
            next_observation: vec![0.0; obs_dim],
            agent_action: vec![0.0; action_dim],
            agent_action_f32: vec![0.0; action_dim],
            noise: vec![0.0; action_dim],
            env_action: vec![0.0; action_dim],
            acting_ws: actor.workspace(1),
            batch: Minibatch::new(obs_dim, action_dim, batch),
            targets: vec![0.0; batch],
            learner: ActorCriticStep::new(actor, critic, batch),
        }
    }
}

impl Ddpg {
    /// Step 1–5 of the pseudocode: initialize θ₀ and w₀ from `seed`, copy them into the
    /// targets, allocate 𝓡 and every buffer, start the noise process, and reset `env`.
    pub fn new(config: &ValidDdpgConfig, env: Box<dyn Env>, seed: RunSeed) -> Result<Self> {
        let map = ActionMap::new(
            config.policy_output,
            env.action_space(),
            "ddpg.policy_output",
        )?;
        let networks = networks(config, env.as_ref(), &map);
        let actor = Mlp::new(
            &networks.actor_config(),
            &mut seed.stream("ddpg-actor-init"),
        )?;
        let critic = Mlp::new(
            &networks.critic_config(),
            &mut seed.stream("ddpg-critic-init"),
        )?;
        let (obs_dim, action_dim) = (env.observation_dim(), map.dim());
        let mut ddpg = Ddpg {
            actor_target: actor.clone(),
            critic_target: critic.clone(),
            actor_adam: Adam::new(config.actor_optimizer, actor.num_params())?,
            critic_adam: Adam::new(config.critic_optimizer, critic.num_params())?,
            replay: ReplayBuffer::new(obs_dim, action_dim, config.buffer_size)?,
            noise: ExplorationNoise::new(config.noise, action_dim)?,
            streams: Streams::new(seed),
            observation: vec![0.0; obs_dim],
            episode_return: 0.0,
            episode_length: 0,
            steps: 0,
            updates: 0,
            episodes: 0,
            scratch: Scratch::new(obs_dim, action_dim, config.batch_size, &actor, &critic),
            config: config.clone(),
            env,
            map,
            actor,
            critic,
        };
        ddpg.check_uniform_warmup()?;
        ddpg.replay.reserve_sample(config.batch_size);
        ddpg.start_episode();
        Ok(ddpg)
    }

    fn check_uniform_warmup(&self) -> Result<()> {
        if self.config.random_actions_before_learning && self.config.learning_starts > 0 {
            for i in 0..self.map.dim() {
                let (lo, hi) = self.map.agent_bounds(i);
                if !(lo.is_finite() && hi.is_finite() && lo < hi) {
                    return Err(Error::invalid(
                        "ddpg.random_actions_before_learning",
                        format!("uniform actions need a finite box, component {i} is [{lo}, {hi}]"),
                    ));
                }
            }
        }
        Ok(())
    }

    fn start_episode(&mut self) {
        let seed = self.streams.reset.next_u64();
        self.env.reset_into(Some(seed), &mut self.observation);
        self.noise.reset();
        self.episode_return = 0.0;
        self.episode_length = 0;
    }

    /// One pass of the `while training` loop: one environment step, then
    /// `updates_per_step` updates once more than `learning_starts` steps have been taken.
    pub fn step(&mut self) -> Result<StepReport> {
        let DdpgConfig {
            learning_starts,
            random_actions_before_learning,
            clip_actions,
            updates_per_step,
            ..
        } = *self.config;
        let learning_starts = learning_starts as u64;
        let scratch = &mut self.scratch;

        // 6.1–6.2: observe s, select a = d(s; wₙ) + 𝒩 (in agent coordinates).
        if random_actions_before_learning && self.steps < learning_starts {
            for (i, u) in scratch.agent_action.iter_mut().enumerate() {
                let (lo, hi) = self.map.agent_bounds(i);
                *u = self.streams.warmup.gen_range(lo..=hi);
            }
        } else {
            let output = self
                .actor
                .forward(&self.observation, &mut scratch.acting_ws)?;
            for (u, &y) in scratch.agent_action.iter_mut().zip(output) {
                *u = f64::from(y);
            }
        }
        self.noise
            .sample_into(&mut self.streams.noise, &mut scratch.noise);
        for (u, n) in scratch.agent_action.iter_mut().zip(&scratch.noise) {
            *u += n;
        }
        if clip_actions {
            self.map.clip(&mut scratch.agent_action);
        }
        self.map
            .to_env(&scratch.agent_action, &mut scratch.env_action);

        // 6.3: execute a, observe r and s'.
        let outcome = self
            .env
            .step_into(&scratch.env_action, &mut scratch.next_observation)?;
        self.steps += 1;
        if !outcome.reward.is_finite() {
            return Err(Error::Numerical {
                context: format!("ddpg step {}", self.steps),
                reason: format!("{} returned reward {}", self.env.id(), outcome.reward),
            });
        }

        // 6.4: store (s, a, r, s') in 𝓡, replacing the oldest if full.
        for (a, &u) in scratch
            .agent_action_f32
            .iter_mut()
            .zip(&scratch.agent_action)
        {
            *a = u as f32;
        }
        self.replay.push(Transition {
            observation: &self.observation,
            action: &scratch.agent_action_f32,
            reward: outcome.reward as f32,
            next_observation: &scratch.next_observation,
            terminal: outcome.terminated,
        })?;
        self.episode_return += outcome.reward;
        self.episode_length += 1;
        let episode_end = if outcome.terminated || outcome.truncated {
            let end = EpisodeEnd {
                episode_return: self.episode_return,
                length: self.episode_length,
                terminated: outcome.terminated,
            };
            self.episodes += 1;
            self.start_episode();
            Some(end)
        } else {
            std::mem::swap(&mut self.observation, &mut scratch.next_observation);
            None
        };

        let mut update = None;
        if self.steps > learning_starts {
            for _ in 0..updates_per_step {
                update = Some(self.update()?);
            }
        }
        Ok(StepReport {
            step: self.steps,
            reward: outcome.reward,
            episode_end,
            update,
        })
    }

    /// Steps 6.5–6.10: one update of the critic, the actor and the targets.
    fn update(&mut self) -> Result<UpdateStats> {
        let config = &self.config.0;
        let Scratch {
            batch,
            targets,
            learner,
            ..
        } = &mut self.scratch;
        let step = self.steps;
        let context = move || format!("ddpg step {step}");

        // 6.5: sample b transitions from 𝓡.
        self.replay
            .sample_into(&mut self.streams.replay, config.batch_size, batch)?;
        // 6.6: yᵢ = rᵢ + γ q(s'ᵢ, d(s'ᵢ; w_target); θ_target).
        learner.targets(
            &self.actor_target,
            &self.critic_target,
            config.gamma,
            batch.next_observations(),
            batch.rewards(),
            batch.not_terminal(),
            targets,
        )?;
        // 6.7: θₙ₊₁ ← θₙ − α_q ∇_θ (1/b) Σᵢ (yᵢ − q(sᵢ, aᵢ; θₙ))² (an Adam step).
        let critic_loss = learner.fit_critic(
            &mut self.critic,
            &mut self.critic_adam,
            batch.observations(),
            batch.actions(),
            targets,
            context,
        )?;
        // 6.8: wₙ₊₁ ← wₙ + α_d (1/b) Σᵢ ∇ₐq(sᵢ, a; θₙ₊₁)|_{a=d(sᵢ; wₙ)} ∇_w d(sᵢ; wₙ).
        let actor_objective = learner.improve_actor(
            &mut self.actor,
            &mut self.actor_adam,
            &self.critic,
            batch.observations(),
            context,
        )?;
        // 6.9: target networks.
        match config.target_update {
            TargetUpdate::HardCopy { every } => {
                if self.updates.is_multiple_of(every as u64) {
                    self.critic_target.hard_copy_from(&self.critic)?;
                    self.actor_target.hard_copy_from(&self.actor)?;
                }
            }
            TargetUpdate::Polyak { tau } => {
                self.critic_target.polyak_update(&self.critic, tau)?;
                self.actor_target.polyak_update(&self.actor, tau)?;
            }
        }
        // 6.10: n ← n + 1.
        self.updates += 1;
        Ok(UpdateStats {
            critic_loss,
            actor_objective,
        })
    }

    /// Takes `steps` steps, handing every report to `observe` (which may evaluate, log or
    /// checkpoint through the `&Ddpg` it receives, and stops the run by returning an error).
    pub fn run<F>(&mut self, steps: u64, mut observe: F) -> Result<()>
    where
        F: FnMut(&Ddpg, &StepReport) -> Result<()>,
    {
        for _ in 0..steps {
            let report = self.step()?;
            observe(self, &report)?;
        }
        Ok(())
    }

    pub fn config(&self) -> &ValidDdpgConfig {
        &self.config
    }

    /// A snapshot of the current policy d(s; wₙ), without noise, to act and evaluate.
    pub fn policy(&self) -> DeterministicPolicy {
        DeterministicPolicy::from_parts(&self.actor, &self.map)
    }

    pub fn actor(&self) -> &Mlp {
        &self.actor
    }

    pub fn critic(&self) -> &Mlp {
        &self.critic
    }

    pub fn actor_target(&self) -> &Mlp {
        &self.actor_target
    }

    pub fn critic_target(&self) -> &Mlp {
        &self.critic_target
    }

    pub fn replay(&self) -> &ReplayBuffer {
        &self.replay
    }

    pub fn noise(&self) -> &ExplorationNoise {
        &self.noise
    }

    pub fn env(&self) -> &dyn Env {
        self.env.as_ref()
    }

    /// Environment steps taken.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// Updates made (n of the pseudocode).
    pub fn updates(&self) -> u64 {
        self.updates
    }

    /// Episodes finished.
    pub fn episodes(&self) -> u64 {
        self.episodes
    }

    /// Everything that determines the rest of the run.
    pub fn checkpoint(&self) -> DdpgCheckpoint {
        DdpgCheckpoint {
            config: self.config.0.clone(),
            env_id: self.env.id().to_string(),
            env_state: self.env.state().to_vec(),
            observation: self.observation.clone(),
            episode_return: self.episode_return,
            episode_length: self.episode_length,
            actor: self.actor.clone(),
            actor_target: self.actor_target.clone(),
            critic: self.critic.clone(),
            critic_target: self.critic_target.clone(),
            actor_adam: self.actor_adam.clone(),
            critic_adam: self.critic_adam.clone(),
            replay: self.replay.clone(),
            noise: self.noise.clone(),
            noise_rng: RngState::capture(&self.streams.noise),
            replay_rng: RngState::capture(&self.streams.replay),
            reset_rng: RngState::capture(&self.streams.reset),
            warmup_rng: RngState::capture(&self.streams.warmup),
            steps: self.steps,
            updates: self.updates,
            episodes: self.episodes,
        }
    }

    /// Continues a checkpointed run on `env` (an environment of the same id, which is put
    /// in the saved state). The configuration is checked again, and every saved piece
    /// against it.
    pub fn restore(checkpoint: DdpgCheckpoint, mut env: Box<dyn Env>) -> Result<Self> {
        let c = checkpoint;
        let config = c.config.check()?;
        if env.id() != c.env_id {
            return Err(Error::invalid(
                "checkpoint.env_id",
                format!("saved on {:?}, restored on {:?}", c.env_id, env.id()),
            ));
        }
        let map = ActionMap::new(
            config.policy_output,
            env.action_space(),
            "ddpg.policy_output",
        )?;
        let networks = networks(&config, env.as_ref(), &map);
        let (actor_config, critic_config) = (networks.actor_config(), networks.critic_config());
        let saved = [
            ("actor", &c.actor, &actor_config),
            ("actor_target", &c.actor_target, &actor_config),
            ("critic", &c.critic, &critic_config),
            ("critic_target", &c.critic_target, &critic_config),
        ];
        for (field, network, expected) in saved {
            if network.sizes() != expected.sizes.as_slice()
                || network.hidden_activation() != expected.hidden
                || network.output_activation() != expected.output
            {
                return Err(Error::invalid(
                    format!("checkpoint.{field}"),
                    format!(
                        "network with sizes {:?} does not match the configured {:?}",
                        network.sizes(),
                        expected.sizes
                    ),
                ));
            }
        }
        let optimizers = [
            (
                "actor_adam",
                &c.actor_adam,
                &c.actor,
                config.actor_optimizer,
            ),
            (
                "critic_adam",
                &c.critic_adam,
                &c.critic,
                config.critic_optimizer,
            ),
        ];
        for (field, adam, network, expected) in optimizers {
            if adam.num_params() != network.num_params() || *adam.config() != expected {
                return Err(Error::invalid(
                    format!("checkpoint.{field}"),
                    "optimizer does not match its network or the configuration",
                ));
            }
        }
        let (obs_dim, action_dim) = (env.observation_dim(), map.dim());
        if c.replay.capacity() != config.buffer_size
            || c.replay.obs_dim() != obs_dim
            || c.replay.action_dim() != action_dim
        {
            return Err(Error::invalid(
                "checkpoint.replay",
                "buffer does not match the configuration or the environment",
            ));
        }
        c.noise.check_restored(&config.noise, action_dim)?;
        if c.observation.len() != obs_dim {
            return Err(Error::invalid(
                "checkpoint.observation",
                format!(
                    "{} values, the environment observes {obs_dim}",
                    c.observation.len()
                ),
            ));
        }
        env.set_state(&c.env_state, c.episode_length)
            .map_err(|e| rename_field(e, "checkpoint", ""))?;
        let restore = |state: &RngState, field: &str| {
            state
                .restore()
                .map_err(|e| rename_field(e, &format!("checkpoint.{field}"), "rng."))
        };
        let streams = Streams {
            noise: restore(&c.noise_rng, "noise_rng")?,
            replay: restore(&c.replay_rng, "replay_rng")?,
            reset: restore(&c.reset_rng, "reset_rng")?,
            warmup: restore(&c.warmup_rng, "warmup_rng")?,
        };
        let scratch = Scratch::new(obs_dim, action_dim, config.batch_size, &c.actor, &c.critic);
        let mut ddpg = Ddpg {
            config,
            env,
            map,
            actor: c.actor,
            actor_target: c.actor_target,
            critic: c.critic,
            critic_target: c.critic_target,
            actor_adam: c.actor_adam,
            critic_adam: c.critic_adam,
            replay: c.replay,
            noise: c.noise,
            streams,
            observation: c.observation,
            episode_return: c.episode_return,
            episode_length: c.episode_length,
            steps: c.steps,
            updates: c.updates,
            episodes: c.episodes,
            scratch,
        };
        ddpg.check_uniform_warmup()?;
        ddpg.replay.reserve_sample(ddpg.config.batch_size);
        Ok(ddpg)
    }

    /// The checkpoint as JSON (bit-exact: floats are written in their shortest
    /// round-tripping form).
    pub fn to_json(&self) -> Result<String> {
        json::to_string(&self.checkpoint(), CHECKPOINT)
    }

    /// Restores a run from [`Ddpg::to_json`]'s output, on `env`.
    pub fn from_json(json: &str, env: Box<dyn Env>) -> Result<Self> {
        Ddpg::restore(json::from_str::<DdpgCheckpoint>(json, CHECKPOINT)?, env)
    }

    pub fn save_json(&self, path: &Path) -> Result<()> {
        json::write_file(path, &self.to_json()?, CHECKPOINT)
    }

    pub fn load_json(path: &Path, env: Box<dyn Env>) -> Result<Self> {
        Ddpg::from_json(&json::read_file(path, CHECKPOINT)?, env)
    }
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

/// A DDPG run frozen between two steps. Serialize it with serde (JSON through
/// [`Ddpg::to_json`]); [`Ddpg::restore`] checks it and continues the run.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DdpgCheckpoint {
    pub config: DdpgConfig,
    pub env_id: String,
    /// The environment's internal state and the steps taken in the current episode.
    pub env_state: Vec<f64>,
    pub observation: Vec<f32>,
    pub episode_return: f64,
    pub episode_length: usize,
    pub actor: Mlp,
    pub actor_target: Mlp,
    pub critic: Mlp,
    pub critic_target: Mlp,
    pub actor_adam: Adam,
    pub critic_adam: Adam,
    pub replay: ReplayBuffer,
    pub noise: ExplorationNoise,
    pub noise_rng: RngState,
    pub replay_rng: RngState,
    pub reset_rng: RngState,
    pub warmup_rng: RngState,
    pub steps: u64,
    pub updates: u64,
    pub episodes: u64,
}

/// Names a DDPG checkpoint in errors.
const CHECKPOINT: &str = "DDPG checkpoint";
