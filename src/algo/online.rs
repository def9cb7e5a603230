//! What the online agents share: one environment, a replay buffer, and the loop that
//! acts, stores and learns. [`Online`] is that loop; an [`Agent`] (DDPG's
//! [`DdpgAgent`](super::ddpg::DdpgAgent), TD3's [`Td3Agent`](super::td3::Td3Agent), SAC's
//! [`SacAgent`](super::sac::SacAgent)) brings only its own mathematics: how it acts and
//! how it learns from a minibatch.
//!
//! # Where each step of the `while training` loop happens
//! One call of [`Online::step`] is one pass of the loop of the chapter's `ddpg`
//! pseudocode (steps 6.1–6.10; SAC's steps 1–3 in [`super::sac`] have the same shape):
//!
//! * observe `s`, select `a` (6.1–6.2, SAC's 1): [`Agent::act`]. During warm-up (the first
//!   `learning_starts` steps, with `random_actions_before_learning`) the core first
//!   draws `a` uniformly in the action box from its `"{name}-warmup"` stream, and the
//!   agent may perturb it (DDPG adds its noise);
//! * execute `a`, observe `r` and `s'` (6.3, SAC's 2): here, after mapping `a` from the
//!   agent's coordinates to the environment's ([`ActionMap::to_env`]); a non-finite
//!   reward is an error;
//! * store `(s, a, r, s')` in 𝓡 (6.4, SAC's 2): here, `a` in agent coordinates; when the
//!   episode terminates or is truncated, the environment is reset with a seed from the
//!   `"{name}-reset"` stream and [`Agent::episode_started`] is called;
//! * sample a minibatch of b transitions (6.5, SAC's 3): here, uniformly with
//!   replacement from the `"{name}-replay"` stream, once more than `learning_starts`
//!   steps have been taken, `updates_per_step` times per step;
//! * the learning step on that minibatch (6.6–6.9, SAC's 3.1–3.5): [`Agent::update`];
//! * `n ← n + 1` (6.10): here, after each successful update.
//!
//! # Checkpoints
//! A [`Checkpoint`] holds the configuration, what the core owns (the environment's
//! state, the current observation and episode, the replay buffer, the three streams,
//! the counters) and, under `agent`, the agent's own part ([`Agent::State`]: networks,
//! optimizers, its streams). [`Online::restore`] checks every piece against the
//! configuration (errors name the field, `checkpoint.replay`,
//! `checkpoint.agent.critic`, ...) and the run continues bit for bit.
//!
//! # Speed
//! The core's buffers (the action in both coordinates, the next observation, the
//! minibatch, the sample indices) are allocated at construction; with an agent whose
//! `act` and `update` allocate nothing, neither does a step.

use std::fmt::Debug;
use std::ops::Deref;
use std::path::Path;

use rand::{Rng as _, RngCore};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::busy_workers::BusyWorkers;
use crate::env::Env;
use crate::error::{rename_field, Error, Result};
use crate::eval::{EvalSettings, Evaluation};
use crate::hyperparams::Hyperparameters;
use crate::json;
use crate::nn::{Adam, AdamConfig, Mlp, MlpConfig};
use crate::policy::ActionMap;
use crate::replay::{Minibatch, ReplayBuffer, Transition};
use crate::rng::{Rng, RngState, RunSeed};

/// The settings of the loop itself, which every online agent's configuration has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OnlineSettings {
    /// Replay buffer capacity B.
    pub buffer_size: usize,
    /// Minibatch size b.
    pub batch_size: usize,
    /// No update until more than this many environment steps have been taken.
    pub learning_starts: usize,
    /// Before `learning_starts` steps, start from a uniformly random action in the box.
    pub random_actions_before_learning: bool,
    /// Updates per environment step.
    pub updates_per_step: usize,
}

impl OnlineSettings {
    /// The sizes must be at least 1; an error names `{prefix}.{field}`.
    pub(crate) fn check(&self, prefix: &str) -> Result<()> {
        let at_least_one = [
            ("buffer_size", self.buffer_size),
            ("batch_size", self.batch_size),
            ("updates_per_step", self.updates_per_step),
        ];
        for (field, value) in at_least_one {
            if value == 0 {
                return Err(Error::invalid(
                    format!("{prefix}.{field}"),
                    "must be at least 1",
                ));
            }
        }
        Ok(())
    }
}

/// An agent's configuration: serializable (it is saved in checkpoints), checked once
/// into its `Valid` form, the only way to build the agent.
pub trait AgentConfig: Clone + Debug + Serialize + DeserializeOwned {
    type Valid: Clone + Debug + Deref<Target = Self>;

    /// Checks every field; an invalid one is [`Error::InvalidParameter`] naming it.
    fn check(&self) -> Result<Self::Valid>;

    /// The settings of the loop.
    fn online(&self) -> OnlineSettings;
}

/// A configuration whose every field has been checked (by its [`AgentConfig::check`]):
/// what an agent is built from. New agents name theirs `Checked<TheirConfig>`.
#[derive(Clone, Debug, PartialEq)]
pub struct Checked<C>(C);

impl<C> Checked<C> {
    /// For an [`AgentConfig::check`] that has checked `config`.
    pub(crate) fn new(config: C) -> Self {
        Checked(config)
    }
}

impl<C> Deref for Checked<C> {
    type Target = C;

    fn deref(&self) -> &C {
        &self.0
    }
}

/// The checked configuration of agent `A`.
pub type ValidConfig<A> = <<A as Agent>::Config as AgentConfig>::Valid;

/// An online algorithm as grids and `policy-param train` run it.
pub trait OnlineAlgorithm: Hyperparameters {
    type Agent: Agent;

    /// The agent's configuration for these values (checked by the caller).
    fn agent_config(&self) -> <Self::Agent as Agent>::Config;

    /// Keys added after results were first committed: left out of a cell's identity
    /// ([`TrainConfig::identity`](crate::train::TrainConfig::identity)) while they hold
    /// their default, so that cells computed before the key existed keep their hash.
    const ADDED_KEYS: &'static [&'static str] = &[];
}

/// What differs between online agents: how they act and how they learn.
pub trait Agent: Sized {
    /// Names the agent in random-stream names (`"{NAME}-replay"`, ...) and in errors
    /// (`"{NAME} step 12"`, `"{NAME}.random_actions_before_learning"`).
    const NAME: &'static str;
    type Config: AgentConfig;
    /// What one update measured.
    type Stats: Clone + Copy + Debug + UpdateMetrics;
    /// The agent's part of a checkpoint.
    type State: Clone + Debug + Serialize + DeserializeOwned;

    /// Initializes the agent for `env` (whose action space fixes the action map) from
    /// `seed`, whose streams the agent names itself.
    fn new(config: &ValidConfig<Self>, env: &dyn Env, seed: RunSeed) -> Result<Self>;

    fn config(&self) -> &ValidConfig<Self>;

    /// Between the agent's action coordinates and the environment's.
    fn action_map(&self) -> &ActionMap;

    /// Writes the action to take at `observation` into `action`, in agent coordinates.
    /// When `warming_up`, `action` already holds a uniform draw from the box, which the
    /// agent may perturb; otherwise the agent writes its exploring action.
    fn act(&mut self, observation: &[f32], warming_up: bool, action: &mut [f64]) -> Result<()>;

    /// Called after every environment reset, the first included.
    fn episode_started(&mut self) {}

    /// One learning step on `batch` (already sampled from the replay buffer), the
    /// `updates_so_far`-th (0-based) of the run, during environment step `step`.
    fn update(&mut self, batch: &Minibatch, updates_so_far: u64, step: u64) -> Result<Self::Stats>;

    /// The agent's part of a checkpoint.
    fn state(&self) -> Self::State;

    /// Evaluates the agent's deterministic policy (no exploration) on environments from
    /// `make_env`.
    fn evaluate(
        &self,
        make_env: &(dyn Fn() -> Result<Box<dyn Env>> + Sync),
        settings: &EvalSettings,
    ) -> Result<Evaluation>;

    /// The agent from its part of a checkpoint, checked against `config` and `env`;
    /// errors name the field under `checkpoint.agent`.
    fn restore(config: ValidConfig<Self>, state: Self::State, env: &dyn Env) -> Result<Self>;
}

/// What an update measured, as training runs report it.
pub trait UpdateMetrics {
    /// The critic's loss, watched for divergence.
    fn critic_loss(&self) -> f64;

    /// Each metric a run reports (as `name`, `value`), always in the same order; by
    /// default the critic's loss alone.
    fn each(&self, record: &mut dyn FnMut(&'static str, f64)) {
        record("critic_loss", self.critic_loss());
    }
}

/// One finished episode of the training environment.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpisodeEnd {
    /// Undiscounted return of the behaviour (exploration included).
    pub episode_return: f64,
    pub length: usize,
    /// Ended in a terminal state rather than by truncation.
    pub terminated: bool,
}

/// What one iteration did; `U` is what an update measured.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepReport<U> {
    /// Environment steps taken so far, this one included.
    pub step: u64,
    pub reward: f64,
    /// Set when this step ended an episode (the environment has been reset since).
    pub episode_end: Option<EpisodeEnd>,
    /// The last update of this step, if it made any.
    pub update: Option<U>,
}

/// An online run frozen between two steps: the configuration `C`, what the loop owns,
/// and the agent's state `S`. Serialize it with serde (JSON through
/// [`Online::to_json`]); [`Online::restore`] checks it and continues the run.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint<C, S> {
    pub config: C,
    pub env_id: String,
    /// The environment's internal state and the steps taken in the current episode.
    pub env_state: Vec<f64>,
    pub observation: Vec<f32>,
    pub episode_return: f64,
    pub episode_length: usize,
    /// Networks, optimizers, the agent's own streams.
    pub agent: S,
    pub replay: ReplayBuffer,
    pub replay_rng: RngState,
    pub reset_rng: RngState,
    pub warmup_rng: RngState,
    pub steps: u64,
    pub updates: u64,
    pub episodes: u64,
}

/// The checkpoint type of agent `A`.
pub type CheckpointOf<A> = Checkpoint<<A as Agent>::Config, <A as Agent>::State>;

/// An agent driving one environment, with its replay buffer and streams.
pub struct Online<A: Agent> {
    agent: A,
    settings: OnlineSettings,
    env: Box<dyn Env>,
    replay: ReplayBuffer,
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

/// The loop's random streams, one per consumer, so that none shifts another's numbers.
#[derive(Clone, Debug)]
struct Streams {
    replay: Rng,
    /// Seeds of the environment's resets.
    reset: Rng,
    /// Uniform actions before learning starts.
    warmup: Rng,
}

impl Streams {
    fn new(seed: RunSeed, name: &str) -> Self {
        Streams {
            replay: seed.stream(&format!("{name}-replay")),
            reset: seed.stream(&format!("{name}-reset")),
            warmup: seed.stream(&format!("{name}-warmup")),
        }
    }
}

/// Buffers allocated once; nothing here is state that a checkpoint must keep.
struct Scratch {
    /// The action in agent coordinates, as chosen (f64) and as stored (f32).
    action: Vec<f64>,
    action_f32: Vec<f32>,
    /// The action in environment coordinates.
    env_action: Vec<f64>,
    next_observation: Vec<f32>,
    batch: Minibatch,
}

impl Scratch {
    fn new(obs_dim: usize, action_dim: usize, batch: usize) -> Self {
        Scratch {
            action: vec![0.0; action_dim],
            action_f32: vec![0.0; action_dim],
            env_action: vec![0.0; action_dim],
            next_observation: vec![0.0; obs_dim],
            batch: Minibatch::new(obs_dim, action_dim, batch),
        }
    }
}

impl<A: Agent> Online<A> {
    /// Initializes the agent from `seed`, allocates the replay buffer and every buffer,
    /// and resets `env`. Errors: an action space the agent cannot act in, or not a
    /// finite box where uniform warm-up actions need one.
    pub fn new(config: &ValidConfig<A>, env: Box<dyn Env>, seed: RunSeed) -> Result<Self> {
        let agent = A::new(config, env.as_ref(), seed)?;
        let settings = config.online();
        let (obs_dim, action_dim) = (env.observation_dim(), agent.action_map().dim());
        let mut online = Online {
            replay: ReplayBuffer::new(obs_dim, action_dim, settings.buffer_size)?,
            streams: Streams::new(seed, A::NAME),
            observation: vec![0.0; obs_dim],
            episode_return: 0.0,
            episode_length: 0,
            steps: 0,
            updates: 0,
            episodes: 0,
            scratch: Scratch::new(obs_dim, action_dim, settings.batch_size),
            agent,
            settings,
            env,
        };
        online.check_uniform_warmup()?;
        online.replay.reserve_sample(settings.batch_size);
        online.start_episode();
        Ok(online)
    }

    /// Whether an agent with `config` can act in `env`: its action map, and a finite box
    /// where uniform warm-up actions need one. Builds the agent's networks, not the
    /// replay buffer.
    pub fn check_env(config: &ValidConfig<A>, env: &dyn Env) -> Result<()> {
        let agent = A::new(config, env, RunSeed(0))?;
        check_uniform_warmup::<A>(agent.action_map(), config.online())
    }

    fn check_uniform_warmup(&self) -> Result<()> {
        check_uniform_warmup::<A>(self.agent.action_map(), self.settings)
    }

    fn start_episode(&mut self) {
        let seed = self.streams.reset.next_u64();
        self.env.reset_into(Some(seed), &mut self.observation);
        self.agent.episode_started();
        self.episode_return = 0.0;
        self.episode_length = 0;
    }

    /// One pass of the `while training` loop: one environment step, then
    /// `updates_per_step` updates once more than `learning_starts` steps have been taken.
    pub fn step(&mut self) -> Result<StepReport<A::Stats>> {
        let settings = self.settings;
        let learning_starts = settings.learning_starts as u64;
        let scratch = &mut self.scratch;

        // Observe s, select a (in agent coordinates).
        let warming_up = settings.random_actions_before_learning && self.steps < learning_starts;
        if warming_up {
            let map = self.agent.action_map();
            for (i, u) in scratch.action.iter_mut().enumerate() {
                let (lo, hi) = map.agent_bounds(i);
                *u = self.streams.warmup.gen_range(lo..=hi);
            }
        }
        self.agent
            .act(&self.observation, warming_up, &mut scratch.action)?;
        self.agent
            .action_map()
            .to_env(&scratch.action, &mut scratch.env_action);

        // Execute a, observe r and s'.
        let outcome = self
            .env
            .step_into(&scratch.env_action, &mut scratch.next_observation)?;
        self.steps += 1;
        if !outcome.reward.is_finite() {
            return Err(Error::Numerical {
                context: format!("{} step {}", A::NAME, self.steps),
                reason: format!("{} returned reward {}", self.env.id(), outcome.reward),
            });
        }

        // Store (s, a, r, s') in 𝓡, replacing the oldest if full.
        for (a, &u) in scratch.action_f32.iter_mut().zip(&scratch.action) {
            *a = u as f32;
        }
        self.replay.push(Transition {
            observation: &self.observation,
            action: &scratch.action_f32,
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
            std::mem::swap(&mut self.observation, &mut self.scratch.next_observation);
            None
        };

        let mut update = None;
        if self.steps > learning_starts {
            for _ in 0..settings.updates_per_step {
                // Sample b transitions from 𝓡, then the agent's learning step; n ← n + 1.
                self.replay.sample_into(
                    &mut self.streams.replay,
                    settings.batch_size,
                    &mut self.scratch.batch,
                )?;
                update = Some(
                    self.agent
                        .update(&self.scratch.batch, self.updates, self.steps)?,
                );
                self.updates += 1;
            }
        }
        Ok(StepReport {
            step: self.steps,
            reward: outcome.reward,
            episode_end,
            update,
        })
    }

    /// Takes `steps` steps, handing every report to `observe` (which may evaluate, log or
    /// checkpoint through the run it receives, and stops the run by returning an error).
    /// The current pool's other workers busy-wait for work meanwhile ([`BusyWorkers`]).
    pub fn run<F>(&mut self, steps: u64, mut observe: F) -> Result<()>
    where
        F: FnMut(&Self, &StepReport<A::Stats>) -> Result<()>,
    {
        let _busy = BusyWorkers::start();
        for _ in 0..steps {
            let report = self.step()?;
            observe(self, &report)?;
        }
        Ok(())
    }

    pub fn config(&self) -> &ValidConfig<A> {
        self.agent.config()
    }

    /// The agent: its networks and optimizers.
    pub fn agent(&self) -> &A {
        &self.agent
    }

    pub fn replay(&self) -> &ReplayBuffer {
        &self.replay
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
    pub fn checkpoint(&self) -> CheckpointOf<A> {
        Checkpoint {
            config: A::Config::clone(self.agent.config()),
            env_id: self.env.id().to_string(),
            env_state: self.env.state().to_vec(),
            observation: self.observation.clone(),
            episode_return: self.episode_return,
            episode_length: self.episode_length,
            agent: self.agent.state(),
            replay: self.replay.clone(),
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
    pub fn restore(checkpoint: CheckpointOf<A>, mut env: Box<dyn Env>) -> Result<Self> {
        let c = checkpoint;
        let config = c.config.check()?;
        if env.id() != c.env_id {
            return Err(Error::invalid(
                "checkpoint.env_id",
                format!("saved on {:?}, restored on {:?}", c.env_id, env.id()),
            ));
        }
        let settings = config.online();
        let agent = A::restore(config, c.agent, env.as_ref())?;
        let (obs_dim, action_dim) = (env.observation_dim(), agent.action_map().dim());
        if c.replay.capacity() != settings.buffer_size
            || c.replay.obs_dim() != obs_dim
            || c.replay.action_dim() != action_dim
        {
            return Err(Error::invalid(
                "checkpoint.replay",
                "buffer does not match the configuration or the environment",
            ));
        }
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
        let streams = Streams {
            replay: restore_rng(&c.replay_rng, "checkpoint.replay_rng")?,
            reset: restore_rng(&c.reset_rng, "checkpoint.reset_rng")?,
            warmup: restore_rng(&c.warmup_rng, "checkpoint.warmup_rng")?,
        };
        let mut online = Online {
            agent,
            settings,
            env,
            replay: c.replay,
            streams,
            observation: c.observation,
            episode_return: c.episode_return,
            episode_length: c.episode_length,
            steps: c.steps,
            updates: c.updates,
            episodes: c.episodes,
            scratch: Scratch::new(obs_dim, action_dim, settings.batch_size),
        };
        online.check_uniform_warmup()?;
        online.replay.reserve_sample(settings.batch_size);
        Ok(online)
    }

    /// The checkpoint as JSON (bit-exact: floats are written in their shortest
    /// round-tripping form).
    pub fn to_json(&self) -> Result<String> {
        json::to_string(&self.checkpoint(), &checkpoint_name::<A>())
    }

    /// Restores a run from [`Online::to_json`]'s output, on `env`.
    pub fn from_json(json: &str, env: Box<dyn Env>) -> Result<Self> {
        let what = checkpoint_name::<A>();
        Self::restore(json::from_str::<CheckpointOf<A>>(json, &what)?, env)
    }

    pub fn save_json(&self, path: &Path) -> Result<()> {
        json::write_file(path, &self.to_json()?, &checkpoint_name::<A>())
    }

    pub fn load_json(path: &Path, env: Box<dyn Env>) -> Result<Self> {
        Self::from_json(&json::read_file(path, &checkpoint_name::<A>())?, env)
    }
}

/// Uniform warm-up actions need a finite box.
fn check_uniform_warmup<A: Agent>(map: &ActionMap, settings: OnlineSettings) -> Result<()> {
    if settings.random_actions_before_learning && settings.learning_starts > 0 {
        for i in 0..map.dim() {
            let (lo, hi) = map.agent_bounds(i);
            if !(lo.is_finite() && hi.is_finite() && lo < hi) {
                return Err(Error::invalid(
                    format!("{}.random_actions_before_learning", A::NAME),
                    format!("uniform actions need a finite box, component {i} is [{lo}, {hi}]"),
                ));
            }
        }
    }
    Ok(())
}

/// Names a checkpoint of `A` in errors ("DDPG checkpoint").
fn checkpoint_name<A: Agent>() -> String {
    format!("{} checkpoint", A::NAME.to_uppercase())
}

/// `checkpoint.agent.{field}`: a field of the agent's part of a checkpoint, in errors.
pub(crate) fn agent_field(field: &str) -> String {
    format!("checkpoint.agent.{field}")
}

/// A random stream from a checkpoint; errors name `field`.
pub(crate) fn restore_rng(state: &RngState, field: &str) -> Result<Rng> {
    state.restore().map_err(|e| rename_field(e, field, "rng."))
}

/// Checks a network of the agent's checkpoint against its configured architecture.
pub(crate) fn check_network(field: &str, network: &Mlp, expected: &MlpConfig) -> Result<()> {
    if network.sizes() != expected.sizes.as_slice()
        || network.hidden_activation() != expected.hidden
        || network.output_activation() != expected.output
    {
        return Err(Error::invalid(
            agent_field(field),
            format!(
                "network with sizes {:?} does not match the configured {:?}",
                network.sizes(),
                expected.sizes
            ),
        ));
    }
    Ok(())
}

/// Checks an optimizer of the agent's checkpoint against its network and configuration.
pub(crate) fn check_adam(
    field: &str,
    adam: &Adam,
    network: &Mlp,
    expected: AdamConfig,
) -> Result<()> {
    if adam.num_params() != network.num_params() || *adam.config() != expected {
        return Err(Error::invalid(
            agent_field(field),
            "optimizer does not match its network or the configuration",
        ));
    }
    Ok(())
}
