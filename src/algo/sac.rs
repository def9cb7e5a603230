//! Soft actor-critic, the chapter's section "Soft Actor Critic" (Haarnoja et al. 2018)
//! with its subsections "Fitted Q-Iteration for the Smooth Bellman Equations",
//! "Approximating Boltzmann Policies by Gaussians" and "Reparameterizating the
//! Objective".
//!
//! The chapter states SAC in equations, not in a pseudocode block, so it has no
//! pseudocode label; the loop below is written from those equations, in the shape of
//! the chapter's `ddpg` (which SAC adapts to the smooth Bellman equations), and the code
//! names its steps.
//!
//! # The chapter's version
//! Approximators `q_θ(s, a)` and `v_ψ(s)` and a Gaussian policy
//! `d(a|s; φ) = N(μ_φ(s), σ_φ(s))` ([`crate::policy::GaussianHead`]), with temperature β:
//!
//! ```text
//! Initialize φ, θ, ψ; replay buffer 𝓡
//! while training:
//!   1. observe s; act a = f_φ(s, ε) = μ_φ(s) + σ_φ(s)ε, ε ~ N(0, I)
//!   2. execute a, observe r and s'; store (s, a, r, s') in 𝓡
//!   3. sample a minibatch (sᵢ, aᵢ, rᵢ, s'ᵢ) of b transitions from 𝓡
//!      3.1 ãᵢ = f_φ(sᵢ, εᵢ) and log d(ãᵢ|sᵢ; φ)
//!      3.2 yᵢ = rᵢ + γ v_ψ(s'ᵢ)
//!      3.3 θ: one Adam step on ½(1/b) Σᵢ (q_θ(sᵢ, aᵢ) − yᵢ)²
//!      3.4 ψ: one Adam step on ½(1/b) Σᵢ (v_ψ(sᵢ) − [q_θ(sᵢ, ãᵢ) − β log d(ãᵢ|sᵢ; φ)])²
//!      3.5 φ: one Adam step on (1/b) Σᵢ [log d(f_φ(sᵢ,εᵢ)|sᵢ; φ) − q_θ(sᵢ, f_φ(sᵢ,εᵢ))/β]
//! ```
//!
//! Step 3.4 fits v_ψ to `E_{a~d}[q_θ(s,a) − β log d(a|s)]` with one sampled action per
//! state; step 3.5 is the reparameterized KL objective, its gradient flowing through
//! `ãᵢ = f_φ(sᵢ, εᵢ)` into the critic's input gradient ∇ₐq_θ (as in DDPG) and through the
//! log-density. The chapter's alternative target without v_ψ,
//! `yᵢ = rᵢ + γ(q_θ(s'ᵢ, a'ᵢ) − β log d(a'ᵢ|s'ᵢ; φ))` with `a'ᵢ = f_φ(s'ᵢ, ε'ᵢ)`, is
//! [`SoftTarget::Sampled`]. [`SacConfig::chapter`] is this version (no target networks:
//! the chapter's targets read the current ψ).
//!
//! Step 3.4 uses the critic just updated in 3.3, so one forward pass of q at
//! `(sᵢ, ãᵢ)` serves 3.4 and 3.5 (Haarnoja et al.'s algorithm updates ψ first; the chapter
//! fixes no order).
//!
//! # Where each step is
//! [`Sac`] is the online core ([`super::online`]) driving a [`SacAgent`]. The core takes
//! step 2 and the sampling of step 3 (environment, replay buffer 𝓡, warm-up, episodes,
//! checkpoints); the agent's `act` is step 1, and its `update` is step 3, one function
//! per step: `draw_noise` (every ε and ε', in sequence), `sample_actions_and_targets`
//! (3.1 and 3.2, concurrently), `TemperatureState::step` (automatic temperature),
//! `fit_critics` (3.3), `min_q_at_sampled_actions` (minⱼ q at `(sᵢ, ãᵢ)`, shared by 3.4
//! and 3.5), `fit_value` (3.4), `improve_policy` (3.5), `update_targets`.
//!
//! # The variant used in practice (each a setting of [`SacConfig`])
//! * twin critics `q_θ₁, q_θ₂`, every `q_θ` above read as `minⱼ q_θⱼ` (`twin_critics`);
//! * target networks `θ̄ⱼ ← τθⱼ + (1−τ)θ̄ⱼ` (or `ψ̄` for the value network) after every
//!   update, read by step 3.2 (`target_tau`);
//! * automatic temperature ([`Temperature::Auto`], Haarnoja et al. 2018b): after 3.1,
//!   one Adam step on `log β` for the loss `−log β · ((1/b)Σᵢ log d(ãᵢ|sᵢ) + H̄)` with
//!   target entropy `H̄` (default `−dim A`); the whole update uses β from before that
//!   step, as Stable-Baselines3 does.
//!   The policy loss is then written `(1/b)Σᵢ [β log d − minⱼ q_θⱼ]` (Stable-Baselines3's
//!   form; β times the chapter's, the same minimizer);
//! * the tanh-squashed Gaussian with the log-probability correction (`squash`), actions
//!   in (−1, 1)ᵐ mapped affinely onto the box; the replay buffer holds those normalized
//!   actions, as in Stable-Baselines3;
//! * `learning_starts` uniformly random steps before the first update.
//!
//! One option beyond both: the ε of step 1 drawn from an Ornstein–Uhlenbeck process
//! instead of independently ([`Exploration`]), the chapter's DDPG noise carried over to
//! SAC so that exploration persists in time (`experiments/full/mountain_car.toml`).
//!
//! [`SacConfig::default`] is Stable-Baselines3's SAC, [`SacConfig::zoo_pendulum`]
//! rl-baselines3-zoo's Pendulum-v1 settings.
//!
//! Terminal states do not bootstrap (`γ(1 − terminalᵢ)`); time-limit truncation is not
//! termination. When an episode ends the environment is reset, seeded from the run's
//! own stream.
//!
//! # Determinism and speed
//! Every random number comes from a stream of the run's [`RunSeed`]: acting noise,
//! update noise (drawn sequentially before any parallel work), replay sampling, resets,
//! warm-up actions. The twin critics' forward and backward passes run concurrently with
//! `rayon::join` (each on its own buffers, reduced in a fixed order afterwards), and
//! large matrix products split their rows over the pool bit-identically
//! ([`crate::nn::gemm`]): a seed determines every bit whatever the number of threads
//! (`tests/sac.rs`). Every buffer is allocated at construction; a step run on a rayon
//! worker thread (inside `ThreadPool::install`) allocates nothing once the first update
//! has sized the per-thread GEMM scratch. (Called from outside any pool, rayon's global
//! job queue allocates a block every 63 parallel jobs.)

use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

use super::online::{
    agent_field, check_adam, check_network, restore_rng, Agent, AgentConfig, Checkpoint, Online,
    OnlineSettings, UpdateMetrics,
};
use crate::env::Env;
use crate::error::{rename_field, Error, Result};
use crate::eval::{EvalSettings, Evaluation};
use crate::nn::{mse_with_gradient, Activation, Adam, AdamConfig, Init, Mlp, MlpConfig, Workspace};
use crate::noise::{ExplorationNoise, NoiseConfig, OrnsteinUhlenbeckParams};
use crate::policy::{ActionMap, GaussianHead, PolicyOutput, LOG_STD_BOUNDS};
use crate::replay::Minibatch;
use crate::rng::{Rng, RngState, RunSeed};

/// Where the regression target of step 3.2 gets the value of s'.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SoftTarget {
    /// `y = r + γ v_ψ(s')` with a value network v_ψ fitted in step 3.4 (the chapter's
    /// main version, and Haarnoja et al. 2018a).
    ValueNetwork,
    /// `y = r + γ(minⱼ q_θⱼ(s', a') − β log d(a'|s'))`, `a' ~ d(·|s')`: no value network
    /// (the chapter's sampled form, and SAC as implemented today).
    Sampled,
}

/// The temperature β of the entropy regularization.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum Temperature {
    /// A fixed β > 0.
    Fixed { beta: f64 },
    /// β learned so that the policy's entropy tracks `target_entropy` (`None`: −dim A),
    /// starting from `initial` > 0 (Stable-Baselines3's `ent_coef="auto"`: 1).
    Auto {
        initial: f64,
        target_entropy: Option<f64>,
    },
}

/// Where the ε of step 1 (the actions taken in the environment) comes from; the updates'
/// ε are always independent draws.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub enum Exploration {
    /// ε ~ N(0, I) independently at every step: the chapter's `f_φ(s, ε)`.
    #[default]
    White,
    /// ε from an Ornstein–Uhlenbeck process per action component with unit stationary
    /// variance (σ = √(2θ), Euler–Maruyama step `dt`), started at 0 and running on across
    /// episodes: the chapter's DDPG noise put into SAC's ε, so that consecutive actions
    /// push the same way for about 1/(θ·dt) steps. Not in the chapter; temporally
    /// correlated ε is what solves tasks such as MountainCarContinuous, whose reward
    /// independent noise does not find (Eberhard et al. 2023, "Pink noise is all you
    /// need"; Raffin et al. 2021's gSDE holds ε for several steps to the same end).
    OrnsteinUhlenbeck { theta: f64, dt: f64 },
}

impl Exploration {
    /// The noise process of ε, if ε is not white.
    pub fn process(&self) -> Option<NoiseConfig> {
        match *self {
            Exploration::White => None,
            Exploration::OrnsteinUhlenbeck { theta, dt } => {
                Some(NoiseConfig::OrnsteinUhlenbeck(OrnsteinUhlenbeckParams {
                    theta,
                    mu: 0.0,
                    sigma: (2.0 * theta).sqrt(),
                    dt,
                }))
            }
        }
    }
}

/// Every hyperparameter of SAC, with documented defaults: Stable-Baselines3's SAC.
/// Check it once into a [`ValidSacConfig`] with [`SacConfig::check`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SacConfig {
    /// Discount γ in [0, 1]. Default 0.99.
    pub gamma: f64,
    /// Replay buffer capacity. Default 1 000 000.
    pub buffer_size: usize,
    /// Minibatch size b. Default 256.
    pub batch_size: usize,
    /// No update until more than this many environment steps. Default 100.
    pub learning_starts: usize,
    /// Before `learning_starts` steps, act uniformly at random in the box instead of
    /// sampling the policy. Default true.
    pub random_actions_before_learning: bool,
    /// Updates (step 3) per environment step. Default 1.
    pub updates_per_step: usize,
    /// Hidden widths of the policy network `s ↦ (μ_φ(s), log σ_φ(s))`. Default [256, 256].
    pub policy_hidden: Vec<usize>,
    /// Hidden widths of each critic q_θ(s, a). Default [256, 256].
    pub critic_hidden: Vec<usize>,
    /// Hidden widths of the value network v_ψ(s) ([`SoftTarget::ValueNetwork`] only).
    /// Default [256, 256].
    pub value_hidden: Vec<usize>,
    /// Hidden activation of every network. Default ReLU.
    pub hidden_activation: Activation,
    /// If set, the last layer of every network starts in `U(±bound)` (the DDPG paper's
    /// 3e-3: the first policy is `N(≈0, ≈1)` rather than a random linear feedback with
    /// σ up to e² that can make an unstable system explode before anything is learned);
    /// otherwise PyTorch's initialization, as Stable-Baselines3 has. Default `None`.
    pub last_layer_init: Option<f64>,
    /// Adam for φ. Default lr 3e-4.
    pub policy_optimizer: AdamConfig,
    /// Adam for each θⱼ. Default lr 3e-4.
    pub critic_optimizer: AdamConfig,
    /// Adam for ψ. Default lr 3e-4.
    pub value_optimizer: AdamConfig,
    /// Adam for log β ([`Temperature::Auto`] only). Default lr 3e-4.
    pub temperature_optimizer: AdamConfig,
    /// The target of step 3.2. Default [`SoftTarget::Sampled`].
    pub target: SoftTarget,
    /// Two critics and their minimum instead of one critic. Default true.
    pub twin_critics: bool,
    /// Polyak rate τ in (0, 1] of the target networks read by step 3.2 (critics for
    /// [`SoftTarget::Sampled`], the value network otherwise); `None`: no target networks,
    /// step 3.2 reads the current parameters. Default `Some(0.005)`.
    pub target_tau: Option<f64>,
    /// The temperature β. Default automatic, starting at 1, target entropy −dim A.
    pub temperature: Temperature,
    /// tanh-squashed Gaussian, actions mapped onto the box. Default true.
    pub squash: bool,
    /// Clamp of the policy's log standard deviation. Default (−20, 2).
    pub log_std_bounds: (f64, f64),
    /// The ε of step 1. Default [`Exploration::White`], the chapter's.
    pub exploration: Exploration,
}

impl Default for SacConfig {
    fn default() -> Self {
        SacConfig {
            gamma: 0.99,
            buffer_size: 1_000_000,
            batch_size: 256,
            learning_starts: 100,
            random_actions_before_learning: true,
            updates_per_step: 1,
            policy_hidden: vec![256, 256],
            critic_hidden: vec![256, 256],
            value_hidden: vec![256, 256],
            hidden_activation: Activation::Relu,
            last_layer_init: None,
            policy_optimizer: AdamConfig::with_lr(3e-4),
            critic_optimizer: AdamConfig::with_lr(3e-4),
            value_optimizer: AdamConfig::with_lr(3e-4),
            temperature_optimizer: AdamConfig::with_lr(3e-4),
            target: SoftTarget::Sampled,
            twin_critics: true,
            target_tau: Some(0.005),
            temperature: Temperature::Auto {
                initial: 1.0,
                target_entropy: None,
            },
            squash: true,
            log_std_bounds: LOG_STD_BOUNDS,
            exploration: Exploration::White,
        }
    }
}

impl SacConfig {
    /// The chapter's version: q_θ and v_ψ, target `y = r + γ v_ψ(s')` reading the current
    /// ψ, one critic, a plain Gaussian N(μ_φ(s), σ_φ(s)) (actions not squashed nor
    /// clipped), a fixed temperature, updates from the first step with the policy's own
    /// actions. Where the chapter gives no number, Haarnoja et al. (2018a): β = 0.2
    /// (reward scale 5), layers [256, 256], lr 3e-4, b = 256, γ = 0.99, buffer 10⁶.
    ///
    /// Measured (`tests/sac.rs`, entropy-regularized scalar LQR, an unstable system):
    /// with the target reading the current ψ as written, every seed tried diverged (the
    /// policy's σ grows to the clamp); with Haarnoja et al.'s slowly moving copy ψ̄
    /// (`target_tau: Some(0.01)`) the learned policy matches the closed form within a few
    /// percent.
    pub fn chapter() -> Self {
        SacConfig {
            learning_starts: 0,
            random_actions_before_learning: false,
            target: SoftTarget::ValueNetwork,
            twin_critics: false,
            target_tau: None,
            temperature: Temperature::Fixed { beta: 0.2 },
            squash: false,
            ..SacConfig::default()
        }
    }

    /// rl-baselines3-zoo's SAC for Pendulum-v1: Stable-Baselines3's defaults with
    /// learning rate 1e-3 (layers [256, 256], b 256, buffer 10⁶, learning starts 100,
    /// τ 0.005, γ 0.99, automatic temperature, one update per step).
    pub fn zoo_pendulum() -> Self {
        let adam = AdamConfig::with_lr(1e-3);
        SacConfig {
            policy_optimizer: adam,
            critic_optimizer: adam,
            value_optimizer: adam,
            temperature_optimizer: adam,
            ..SacConfig::default()
        }
    }

    /// Checks every field once; an invalid one is [`Error::InvalidParameter`] naming it
    /// (`sac.gamma`, `sac.batch_size`, `sac.critic_optimizer.lr`, `sac.temperature.beta`, ...).
    pub fn check(&self) -> Result<ValidSacConfig> {
        if !(0.0..=1.0).contains(&self.gamma) {
            return Err(Error::invalid(
                "sac.gamma",
                format!("{} is not in [0, 1]", self.gamma),
            ));
        }
        AgentConfig::online(self).check("sac")?;
        let hidden = [
            ("policy_hidden", &self.policy_hidden),
            ("critic_hidden", &self.critic_hidden),
            ("value_hidden", &self.value_hidden),
        ];
        for (field, widths) in hidden {
            if let Some(i) = widths.iter().position(|&w| w == 0) {
                return Err(Error::invalid(
                    format!("sac.{field}"),
                    format!("{widths:?} has width 0 at position {i}"),
                ));
            }
        }
        if let Some(bound) = self
            .last_layer_init
            .filter(|b| !(b.is_finite() && *b > 0.0))
        {
            return Err(Error::invalid(
                "sac.last_layer_init",
                format!("{bound} is not a positive finite number"),
            ));
        }
        let optimizers = [
            ("policy_optimizer", &self.policy_optimizer),
            ("critic_optimizer", &self.critic_optimizer),
            ("value_optimizer", &self.value_optimizer),
            ("temperature_optimizer", &self.temperature_optimizer),
        ];
        for (field, optimizer) in optimizers {
            optimizer
                .validate()
                .map_err(|error| rename_field(error, &format!("sac.{field}"), "adam."))?;
        }
        if let Some(tau) = self.target_tau {
            if !(tau > 0.0 && tau <= 1.0) {
                return Err(Error::invalid(
                    "sac.target_tau",
                    format!("{tau} is not in (0, 1]"),
                ));
            }
        }
        let positive = |field: &str, x: f64| {
            if x.is_finite() && x > 0.0 {
                Ok(())
            } else {
                Err(Error::invalid(
                    format!("sac.temperature.{field}"),
                    format!("{x} is not a positive finite number"),
                ))
            }
        };
        match self.temperature {
            Temperature::Fixed { beta } => positive("beta", beta)?,
            Temperature::Auto {
                initial,
                target_entropy,
            } => {
                positive("initial", initial)?;
                if let Some(h) = target_entropy.filter(|h| !h.is_finite()) {
                    return Err(Error::invalid(
                        "sac.temperature.target_entropy",
                        format!("{h} is not finite"),
                    ));
                }
            }
        }
        let (low, high) = self.log_std_bounds;
        if !(low.is_finite() && high.is_finite() && low < high) {
            return Err(Error::invalid(
                "sac.log_std_bounds",
                format!("({low}, {high}) is not a finite interval with min < max"),
            ));
        }
        if let Some(process) = self.exploration.process() {
            process.validate("sac.exploration")?;
        }
        Ok(ValidSacConfig(self.clone()))
    }
}

/// A [`SacConfig`] whose fields have all been checked; the only way to build a [`Sac`].
#[derive(Clone, Debug, PartialEq)]
pub struct ValidSacConfig(SacConfig);

impl std::ops::Deref for ValidSacConfig {
    type Target = SacConfig;

    fn deref(&self) -> &SacConfig {
        &self.0
    }
}

impl AgentConfig for SacConfig {
    type Valid = ValidSacConfig;

    fn check(&self) -> Result<ValidSacConfig> {
        SacConfig::check(self)
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
pub use crate::policy::{GaussianPolicy, GaussianPolicyWorkspace};

/// What one update (step 3) measured, before its parameter steps.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SacUpdateStats {
    /// Step 3.3: `½ Σⱼ (1/b) Σᵢ (q_θⱼ(sᵢ, aᵢ) − yᵢ)²` (Stable-Baselines3's critic loss).
    pub critic_loss: f64,
    /// Step 3.4: `½ (1/b) Σᵢ (v_ψ(sᵢ) − targetᵢ)²`, with a value network.
    pub value_loss: Option<f64>,
    /// Step 3.5: `(1/b) Σᵢ [β log d(ãᵢ|sᵢ) − minⱼ q_θⱼ(sᵢ, ãᵢ)]`.
    pub policy_loss: f64,
    /// `−(1/b) Σᵢ log d(ãᵢ|sᵢ)`: the policy's entropy, estimated.
    pub entropy: f64,
    /// The temperature β this update used.
    pub beta: f64,
}

impl UpdateMetrics for SacUpdateStats {
    fn critic_loss(&self) -> f64 {
        self.critic_loss
    }

    /// `critic_loss`, `value_loss` (with a value network), `entropy`, `beta`.
    fn each(&self, record: &mut dyn FnMut(&'static str, f64)) {
        record("critic_loss", self.critic_loss);
        if let Some(value_loss) = self.value_loss {
            record("value_loss", value_loss);
        }
        record("entropy", self.entropy);
        record("beta", self.beta);
    }
}

/// What one iteration did.
pub type StepReport = super::online::StepReport<SacUpdateStats>;

/// SAC driving one environment: [`Online`] (environment, replay buffer, warm-up,
/// episodes, checkpoints) with a [`SacAgent`].
pub type Sac = Online<SacAgent>;

/// A SAC run frozen between two steps. Serialize it with serde (JSON through
/// [`Online::to_json`]); [`Online::restore`] checks it and continues the run.
pub type SacCheckpoint = Checkpoint<SacConfig, SacState>;

/// SAC's own part: the policy d(·|s; φ), the critics q_θⱼ, the value network v_ψ, their
/// targets and optimizers, the temperature, and the streams of ε.
pub struct SacAgent {
    config: ValidSacConfig,
    /// d(·|s; φ): the network, its head and the map to environment actions.
    policy: GaussianPolicy,
    policy_adam: Adam,
    /// q_θ₁ (and q_θ₂), with their targets if any.
    critics: Vec<Approximator>,
    /// v_ψ (and its target), for [`SoftTarget::ValueNetwork`].
    value: Option<Approximator>,
    temperature: TemperatureState,
    /// ε of the actions taken in the environment (step 1).
    act_rng: Rng,
    /// The process ε follows in step 1, unless it is white.
    act_noise: Option<ExplorationNoise>,
    /// ε and ε' of the updates (steps 3.1 and 3.2).
    update_rng: Rng,
    scratch: Scratch,
}

/// SAC's part of a [`SacCheckpoint`].
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SacState {
    pub policy: Mlp,
    pub policy_adam: Adam,
    pub critics: Vec<Mlp>,
    pub critic_targets: Vec<Mlp>,
    pub critic_adams: Vec<Adam>,
    pub value: Option<Mlp>,
    pub value_target: Option<Mlp>,
    pub value_adam: Option<Adam>,
    /// log β (the fixed temperature's, or the learned one's).
    pub log_beta: f32,
    pub temperature_adam: Option<Adam>,
    pub act_rng: RngState,
    pub update_rng: RngState,
    /// The process of step 1's ε ([`Exploration::OrnsteinUhlenbeck`] only).
    #[serde(default)]
    pub act_noise: Option<ExplorationNoise>,
}

/// One approximator being fitted — a critic q_θⱼ or the value network v_ψ — with its
/// target copy, its optimizer, and its own scratch (so twin critics can work
/// concurrently).
struct Approximator {
    net: Mlp,
    target: Option<Mlp>,
    adam: Adam,
    ws: Workspace,
    grads: Vec<f32>,
    output_grad: Vec<f32>,
    input_grad: Vec<f32>,
}

impl Approximator {
    fn new(net: Mlp, target: Option<Mlp>, adam: Adam, batch: usize) -> Self {
        Approximator {
            ws: net.workspace(batch),
            grads: net.zero_grads(),
            output_grad: vec![0.0; batch],
            input_grad: vec![0.0; batch * net.input_dim()],
            net,
            target,
            adam,
        }
    }

    /// The network step 3.2 reads: the target copy if there is one.
    fn forward_target(&mut self, input: &[f32]) -> Result<&[f32]> {
        let net = self.target.as_ref().unwrap_or(&self.net);
        net.forward(input, &mut self.ws)
    }

    /// One Adam step on `½ (1/b) Σᵢ (net(inputᵢ) − targetᵢ)²`; returns the mean squared
    /// error before the step. A non-finite error leaves the parameters untouched.
    fn fit(&mut self, input: &[f32], targets: &[f32], what: &str, step: u64) -> Result<f64> {
        let rows = targets.len();
        let prediction = self.net.forward(input, &mut self.ws)?;
        let output_grad = &mut self.output_grad[..rows];
        let loss = mse_with_gradient(prediction, targets, output_grad)?;
        if !loss.is_finite() {
            return Err(Error::Numerical {
                context: format!("sac step {step}"),
                reason: format!("{what} loss is {loss}"),
            });
        }
        for g in output_grad.iter_mut() {
            *g *= 0.5;
        }
        self.grads.fill(0.0);
        self.net
            .backward(&mut self.ws, output_grad, &mut self.grads, None)?;
        self.adam.step(self.net.params_mut(), &self.grads)?;
        Ok(loss)
    }

    fn update_target(&mut self, tau: f64) -> Result<()> {
        if let Some(target) = &mut self.target {
            target.polyak_update(&self.net, tau)?;
        }
        Ok(())
    }
}

/// Runs `f` on each critic, the twin ones concurrently; results in critic order.
fn each_critic<R: Send>(
    critics: &mut [Approximator],
    f: impl Fn(&mut Approximator) -> R + Sync,
) -> [Option<R>; 2] {
    match critics {
        [one] => [Some(f(one)), None],
        [first, second] => {
            let (a, b) = rayon::join(|| f(first), || f(second));
            [Some(a), Some(b)]
        }
        _ => unreachable!("SAC has one or two critics"),
    }
}

/// Propagates the first error of [`each_critic`]'s results, in critic order.
fn collect<R>(results: [Option<Result<R>>; 2]) -> Result<[Option<R>; 2]> {
    let [a, b] = results;
    Ok([a.transpose()?, b.transpose()?])
}

/// The temperature: fixed, or log β with its optimizer.
#[derive(Clone, Debug)]
struct TemperatureState {
    /// log β, as a one-element parameter vector for Adam (f32, as in Stable-Baselines3).
    log_beta: [f32; 1],
    /// Present for [`Temperature::Auto`].
    adam: Option<Adam>,
    target_entropy: f32,
}

impl TemperatureState {
    fn beta(&self) -> f32 {
        self.log_beta[0].exp()
    }

    /// Automatic temperature: one Adam step on `−log β·(mean log d + H̄)`, the mean over
    /// step 3.1's actions. A fixed temperature does not move.
    fn step(&mut self, mean_log_prob: f64) -> Result<()> {
        if let Some(adam) = &mut self.adam {
            let grad = -(mean_log_prob + f64::from(self.target_entropy)) as f32;
            adam.step(&mut self.log_beta, &[grad])?;
        }
        Ok(())
    }
}

/// Actions sampled from the policy at a minibatch of states, `f_φ(s, ε)` with their
/// log-densities, and the forward pass that produced them.
struct SampledActions {
    ws: Workspace,
    /// ε (b × m).
    noise: Vec<f32>,
    actions: Vec<f32>,
    log_probs: Vec<f32>,
}

impl SampledActions {
    fn new(policy: &GaussianPolicy, batch: usize) -> Self {
        let m = policy.head().action_dim();
        SampledActions {
            ws: policy.network().workspace(batch),
            noise: vec![0.0; batch * m],
            actions: vec![0.0; batch * m],
            log_probs: vec![0.0; batch],
        }
    }

    /// ε ~ N(0, I) for every row, from `rng`.
    fn draw_noise(&mut self, rng: &mut Rng) {
        for e in self.noise.iter_mut() {
            *e = StandardNormal.sample(rng);
        }
    }

    /// `aᵢ = f_φ(sᵢ, εᵢ)` and `log d(aᵢ|sᵢ; φ)` for the rows of `states`.
    fn sample(&mut self, policy: &GaussianPolicy, states: &[f32]) -> Result<()> {
        let output = policy.network().forward(states, &mut self.ws)?;
        policy
            .head()
            .sample(output, &self.noise, &mut self.actions, &mut self.log_probs)
    }
}

/// Buffers allocated once; nothing here is state that a checkpoint must keep.
struct Scratch {
    /// Step 1's action, and its ε when drawn from a process.
    act: GaussianPolicyWorkspace,
    act_epsilon: Vec<f64>,
    /// Step 3.1's ãᵢ at sᵢ, the forward pass kept for 3.5.
    current: SampledActions,
    /// Step 3.2's a'ᵢ at s'ᵢ ([`SoftTarget::Sampled`]).
    next: SampledActions,
    /// `[s, a]` rows for the critics.
    pairs: Vec<f32>,
    /// yᵢ of step 3.2, minⱼ q at (sᵢ, ãᵢ), the value targets of step 3.4.
    targets: Vec<f32>,
    min_q: Vec<f32>,
    value_targets: Vec<f32>,
    /// ∂L/∂ãᵢ, ∂L/∂log d(ãᵢ|sᵢ), ∂L/∂(policy output), ∂L/∂φ.
    grad_actions: Vec<f32>,
    grad_log_probs: Vec<f32>,
    grad_policy_output: Vec<f32>,
    policy_grads: Vec<f32>,
}

impl Scratch {
    fn new(policy: &GaussianPolicy, obs_dim: usize, batch: usize) -> Self {
        let m = policy.head().action_dim();
        Scratch {
            act: policy.workspace(),
            act_epsilon: vec![0.0; m],
            current: SampledActions::new(policy, batch),
            next: SampledActions::new(policy, batch),
            pairs: vec![0.0; batch * (obs_dim + m)],
            targets: vec![0.0; batch],
            min_q: vec![0.0; batch],
            value_targets: vec![0.0; batch],
            grad_actions: vec![0.0; batch * m],
            grad_log_probs: vec![0.0; batch],
            grad_policy_output: vec![0.0; batch * 2 * m],
            policy_grads: policy.network().zero_grads(),
        }
    }
}

/// Writes `[s, a]` rows into `pairs` and returns them.
fn pair<'p>(pairs: &'p mut [f32], states: &[f32], actions: &[f32], m: usize) -> &'p [f32] {
    let rows = actions.len() / m;
    let o = states.len() / rows;
    let pairs = &mut pairs[..rows * (o + m)];
    for ((row, s), a) in pairs
        .chunks_exact_mut(o + m)
        .zip(states.chunks_exact(o))
        .zip(actions.chunks_exact(m))
    {
        row[..o].copy_from_slice(s);
        row[o..].copy_from_slice(a);
    }
    pairs
}

/// The architectures of a configuration on an environment.
struct Architectures {
    policy: MlpConfig,
    critic: MlpConfig,
    value: Option<MlpConfig>,
}

impl Architectures {
    fn new(config: &SacConfig, obs_dim: usize, action_dim: usize) -> Self {
        let sizes = |input: usize, hidden: &[usize], output: usize| -> Vec<usize> {
            std::iter::once(input)
                .chain(hidden.iter().copied())
                .chain(std::iter::once(output))
                .collect()
        };
        let init = match config.last_layer_init {
            Some(bound) => Init::with_last_layer_bound(bound),
            None => Init::pytorch(),
        };
        let mlp = |sizes: Vec<usize>| {
            MlpConfig::new(&sizes)
                .hidden(config.hidden_activation)
                .init(init)
        };
        Architectures {
            policy: mlp(sizes(obs_dim, &config.policy_hidden, 2 * action_dim)),
            critic: mlp(sizes(obs_dim + action_dim, &config.critic_hidden, 1)),
            value: (config.target == SoftTarget::ValueNetwork)
                .then(|| mlp(sizes(obs_dim, &config.value_hidden, 1))),
        }
    }
}

fn action_map(config: &SacConfig, env: &dyn Env) -> Result<ActionMap> {
    let output = if config.squash {
        PolicyOutput::TanhScaled
    } else {
        PolicyOutput::Linear
    };
    ActionMap::new(output, env.action_space(), "sac.squash")
}

fn numerical(step: u64, reason: String) -> Error {
    Error::Numerical {
        context: format!("sac step {step}"),
        reason,
    }
}

impl Agent for SacAgent {
    const NAME: &'static str = "sac";
    type Config = SacConfig;
    type Stats = SacUpdateStats;
    type State = SacState;

    /// Initializes φ, θⱼ and ψ from `seed` (targets as copies) and every buffer. Errors:
    /// an action space that is not a box, or not a finite one where squashing needs it.
    fn new(config: &ValidSacConfig, env: &dyn Env, seed: RunSeed) -> Result<Self> {
        let map = action_map(config, env)?;
        let (obs_dim, m) = (env.observation_dim(), map.dim());
        let architectures = Architectures::new(config, obs_dim, m);
        let head = GaussianHead::new(m, config.squash, config.log_std_bounds)?;
        let network = Mlp::new(&architectures.policy, &mut seed.stream("sac-policy-init"))?;
        let policy = GaussianPolicy::new(network, head, map)?;
        let targets_for = |kind: SoftTarget| config.target == kind && config.target_tau.is_some();
        let batch = config.batch_size;
        let critic_count = if config.twin_critics { 2 } else { 1 };
        let critics = (0..critic_count)
            .map(|j| {
                let net = Mlp::new(
                    &architectures.critic,
                    &mut seed.indexed("sac-critic-init", j as u64),
                )?;
                let target = targets_for(SoftTarget::Sampled).then(|| net.clone());
                let adam = Adam::new(config.critic_optimizer, net.num_params())?;
                Ok(Approximator::new(net, target, adam, batch))
            })
            .collect::<Result<Vec<_>>>()?;
        let value = match &architectures.value {
            Some(architecture) => {
                let net = Mlp::new(architecture, &mut seed.stream("sac-value-init"))?;
                let target = targets_for(SoftTarget::ValueNetwork).then(|| net.clone());
                let adam = Adam::new(config.value_optimizer, net.num_params())?;
                Some(Approximator::new(net, target, adam, batch))
            }
            None => None,
        };
        let temperature = match config.temperature {
            Temperature::Fixed { beta } => TemperatureState {
                log_beta: [beta.ln() as f32],
                adam: None,
                target_entropy: 0.0,
            },
            Temperature::Auto {
                initial,
                target_entropy,
            } => TemperatureState {
                log_beta: [initial.ln() as f32],
                adam: Some(Adam::new(config.temperature_optimizer, 1)?),
                target_entropy: target_entropy.unwrap_or(-(m as f64)) as f32,
            },
        };
        Ok(SacAgent {
            policy_adam: Adam::new(config.policy_optimizer, policy.network().num_params())?,
            act_rng: seed.stream("sac-act"),
            act_noise: config
                .exploration
                .process()
                .map(|process| ExplorationNoise::new(process, m))
                .transpose()?,
            update_rng: seed.stream("sac-update"),
            scratch: Scratch::new(&policy, obs_dim, batch),
            config: config.clone(),
            policy,
            critics,
            value,
            temperature,
        })
    }

    fn config(&self) -> &ValidSacConfig {
        &self.config
    }

    fn action_map(&self) -> &ActionMap {
        self.policy.action_map()
    }

    /// Step 1: act `a = f_φ(s, ε)`, ε from the `sac-act` stream, white or through the
    /// configured process (during warm-up, the uniform draw already in `action`).
    fn act(&mut self, observation: &[f32], warming_up: bool, action: &mut [f64]) -> Result<()> {
        if warming_up {
            return Ok(());
        }
        let s = &mut self.scratch;
        match &mut self.act_noise {
            None => {
                self.policy
                    .sample_agent_action(&mut s.act, observation, &mut self.act_rng, action)
            }
            Some(process) => {
                process.sample_into(&mut self.act_rng, &mut s.act_epsilon);
                self.policy.sample_agent_action_from(
                    &mut s.act,
                    observation,
                    &s.act_epsilon,
                    action,
                )
            }
        }
    }

    /// Step 3 on the minibatch the core sampled: the temperature, the critics, the value
    /// network, the policy and the targets.
    fn update(&mut self, batch: &Minibatch, _: u64, step: u64) -> Result<SacUpdateStats> {
        // The whole update uses β from before its temperature step.
        let beta = self.temperature.beta();
        // 3: every ε this update needs, drawn in sequence before any parallel work.
        self.draw_noise();
        // 3.1: ãᵢ = f_φ(sᵢ, εᵢ), log d(ãᵢ|sᵢ; φ); 3.2: yᵢ.
        self.sample_actions_and_targets(batch, beta, step)?;
        let mean_log_prob = self.mean_log_prob(step)?;
        // Automatic temperature.
        self.temperature.step(mean_log_prob)?;
        // 3.3: each θⱼ.
        let critic_loss = self.fit_critics(batch, step)?;
        // minⱼ q_θⱼ(sᵢ, ãᵢ) with the critics just fitted, for 3.4 and 3.5.
        self.min_q_at_sampled_actions(batch)?;
        // 3.4: ψ.
        let value_loss = self.fit_value(batch, beta, step)?;
        // 3.5: φ.
        let policy_loss = self.improve_policy(batch, beta, step)?;
        // Targets.
        self.update_targets()?;
        Ok(SacUpdateStats {
            critic_loss,
            value_loss,
            policy_loss,
            entropy: -mean_log_prob,
            beta: f64::from(beta),
        })
    }

    fn evaluate(
        &self,
        make_env: &(dyn Fn() -> Result<Box<dyn Env>> + Sync),
        settings: &EvalSettings,
    ) -> Result<Evaluation> {
        self.policy.evaluate(make_env, settings)
    }

    fn state(&self) -> SacState {
        SacState {
            policy: self.policy.network().clone(),
            policy_adam: self.policy_adam.clone(),
            critics: self.critics.iter().map(|c| c.net.clone()).collect(),
            critic_targets: self
                .critics
                .iter()
                .filter_map(|c| c.target.clone())
                .collect(),
            critic_adams: self.critics.iter().map(|c| c.adam.clone()).collect(),
            value: self.value.as_ref().map(|v| v.net.clone()),
            value_target: self.value.as_ref().and_then(|v| v.target.clone()),
            value_adam: self.value.as_ref().map(|v| v.adam.clone()),
            log_beta: self.temperature.log_beta[0],
            temperature_adam: self.temperature.adam.clone(),
            act_rng: RngState::capture(&self.act_rng),
            update_rng: RngState::capture(&self.update_rng),
            act_noise: self.act_noise.clone(),
        }
    }

    fn restore(config: ValidSacConfig, state: SacState, env: &dyn Env) -> Result<Self> {
        let c = state;
        let map = action_map(&config, env)?;
        let (obs_dim, m) = (env.observation_dim(), map.dim());
        let architectures = Architectures::new(&config, obs_dim, m);
        let invalid = |field: &str, reason: &str| Error::invalid(agent_field(field), reason);

        check_network("policy", &c.policy, &architectures.policy)?;
        check_adam(
            "policy_adam",
            &c.policy_adam,
            &c.policy,
            config.policy_optimizer,
        )?;
        let critic_count = if config.twin_critics { 2 } else { 1 };
        let critic_targets = config.target == SoftTarget::Sampled && config.target_tau.is_some();
        if c.critics.len() != critic_count || c.critic_adams.len() != critic_count {
            return Err(invalid(
                "critics",
                "the number of critics does not match the configuration",
            ));
        }
        if c.critic_targets.len() != if critic_targets { critic_count } else { 0 } {
            return Err(invalid(
                "critic_targets",
                "target critics do not match the configuration",
            ));
        }
        let mut critic_targets = c.critic_targets.into_iter();
        let mut critics = Vec::with_capacity(critic_count);
        for (j, (net, adam)) in c.critics.into_iter().zip(c.critic_adams).enumerate() {
            check_network(&format!("critics[{j}]"), &net, &architectures.critic)?;
            check_adam(
                &format!("critic_adams[{j}]"),
                &adam,
                &net,
                config.critic_optimizer,
            )?;
            let target = critic_targets.next();
            if let Some(target) = &target {
                check_network(
                    &format!("critic_targets[{j}]"),
                    target,
                    &architectures.critic,
                )?;
            }
            critics.push(Approximator::new(net, target, adam, config.batch_size));
        }
        let value = match (&architectures.value, c.value, c.value_adam) {
            (Some(architecture), Some(net), Some(adam)) => {
                check_network("value", &net, architecture)?;
                check_adam("value_adam", &adam, &net, config.value_optimizer)?;
                let wants_target = config.target_tau.is_some();
                if c.value_target.is_some() != wants_target {
                    return Err(invalid("value_target", "does not match the configuration"));
                }
                if let Some(target) = &c.value_target {
                    check_network("value_target", target, architecture)?;
                }
                Some(Approximator::new(
                    net,
                    c.value_target,
                    adam,
                    config.batch_size,
                ))
            }
            (None, None, None) if c.value_target.is_none() => None,
            _ => return Err(invalid("value", "does not match the configuration")),
        };
        let temperature = match (config.temperature, c.temperature_adam) {
            (Temperature::Fixed { beta }, None) => TemperatureState {
                log_beta: [beta.ln() as f32],
                adam: None,
                target_entropy: 0.0,
            },
            (Temperature::Auto { target_entropy, .. }, Some(adam)) => {
                if adam.num_params() != 1 || *adam.config() != config.temperature_optimizer {
                    return Err(invalid(
                        "temperature_adam",
                        "does not match the configuration",
                    ));
                }
                if !c.log_beta.is_finite() {
                    return Err(invalid("log_beta", "is not finite"));
                }
                TemperatureState {
                    log_beta: [c.log_beta],
                    adam: Some(adam),
                    target_entropy: target_entropy.unwrap_or(-(m as f64)) as f32,
                }
            }
            _ => {
                return Err(invalid(
                    "temperature_adam",
                    "does not match the configuration",
                ))
            }
        };
        let act_rng = restore_rng(&c.act_rng, &agent_field("act_rng"))?;
        let update_rng = restore_rng(&c.update_rng, &agent_field("update_rng"))?;
        let act_noise = match (config.exploration.process(), c.act_noise) {
            (None, None) => None,
            (Some(process), Some(noise)) => {
                noise.check_restored(&agent_field("act_noise"), &process, m)?;
                Some(noise)
            }
            _ => {
                return Err(invalid(
                    "act_noise",
                    "does not match the configured exploration",
                ))
            }
        };
        let head = GaussianHead::new(m, config.squash, config.log_std_bounds)?;
        let policy = GaussianPolicy::new(c.policy, head, map)?;
        Ok(SacAgent {
            scratch: Scratch::new(&policy, obs_dim, config.batch_size),
            config,
            policy,
            policy_adam: c.policy_adam,
            critics,
            value,
            temperature,
            act_rng,
            act_noise,
            update_rng,
        })
    }
}

/// The steps of one update, in the order [`SacAgent`]'s `update` runs them.
impl SacAgent {
    /// Step 3's noise: ε for 3.1, then ε' for 3.2 when it samples a', from `sac-update`.
    fn draw_noise(&mut self) {
        let SacAgent {
            config,
            update_rng,
            scratch: s,
            ..
        } = self;
        s.current.draw_noise(update_rng);
        if config.target == SoftTarget::Sampled {
            s.next.draw_noise(update_rng);
        }
    }

    /// Steps 3.1 and 3.2, which read the same φ and write disjoint buffers, so run
    /// concurrently: 3.1 samples `ãᵢ = f_φ(sᵢ, εᵢ)` and `log d(ãᵢ|sᵢ; φ)` (keeping the
    /// forward pass for 3.5); 3.2 writes `yᵢ = rᵢ + γ(1 − terminalᵢ)·V(s'ᵢ)` with the β
    /// given. A non-finite target is an error.
    fn sample_actions_and_targets(
        &mut self,
        batch: &Minibatch,
        beta: f32,
        step: u64,
    ) -> Result<()> {
        let SacAgent {
            config,
            policy,
            critics,
            value,
            scratch: s,
            ..
        } = self;
        let gamma = config.gamma as f32;
        let policy = &*policy;
        let (current, next) = rayon::join(
            || s.current.sample(policy, batch.observations()),
            || {
                let next = NextState {
                    batch,
                    sampled: &mut s.next,
                    pairs: &mut s.pairs,
                };
                soft_targets(
                    policy,
                    critics,
                    value.as_mut(),
                    next,
                    gamma,
                    beta,
                    &mut s.targets,
                )
            },
        );
        current?;
        next?;
        if let Some(i) = s.targets.iter().position(|y| !y.is_finite()) {
            return Err(numerical(
                step,
                format!("target y of row {i} is {}", s.targets[i]),
            ));
        }
        Ok(())
    }

    /// `(1/b) Σᵢ log d(ãᵢ|sᵢ)` of step 3.1's actions; non-finite is an error.
    fn mean_log_prob(&self, step: u64) -> Result<f64> {
        let b = self.config.batch_size;
        let log_probs = &self.scratch.current.log_probs;
        let mean_log_prob = log_probs.iter().map(|&l| f64::from(l)).sum::<f64>() / b as f64;
        if !mean_log_prob.is_finite() {
            return Err(numerical(
                step,
                format!("mean log-density is {mean_log_prob}"),
            ));
        }
        Ok(mean_log_prob)
    }

    /// Step 3.3: for each θⱼ, one Adam step on `½(1/b) Σᵢ (q_θⱼ(sᵢ, aᵢ) − yᵢ)²`, the
    /// twin critics concurrently. Returns the sum of the two halves.
    fn fit_critics(&mut self, batch: &Minibatch, step: u64) -> Result<f64> {
        let SacAgent {
            policy,
            critics,
            scratch: s,
            ..
        } = self;
        let m = policy.head().action_dim();
        let pairs = pair(&mut s.pairs, batch.observations(), batch.actions(), m);
        let targets = &s.targets;
        let losses = collect(each_critic(critics, |c| {
            c.fit(pairs, targets, "critic", step)
        }))?;
        Ok(0.5 * losses.iter().flatten().sum::<f64>())
    }

    /// `minⱼ q_θⱼ(sᵢ, ãᵢ)` into the scratch, each critic's forward pass kept for 3.5.
    fn min_q_at_sampled_actions(&mut self, batch: &Minibatch) -> Result<()> {
        let SacAgent {
            policy,
            critics,
            scratch: s,
            ..
        } = self;
        let m = policy.head().action_dim();
        let pairs = pair(&mut s.pairs, batch.observations(), &s.current.actions, m);
        collect(each_critic(critics, |c| {
            c.net.forward(pairs, &mut c.ws).map(|_| ())
        }))?;
        min_output(critics, &mut s.min_q);
        Ok(())
    }

    /// Step 3.4: ψ: one Adam step on `½(1/b) Σᵢ (v_ψ(sᵢ) − [minⱼ q(sᵢ, ãᵢ) − β log
    /// d(ãᵢ|sᵢ)])²`, with a value network.
    fn fit_value(&mut self, batch: &Minibatch, beta: f32, step: u64) -> Result<Option<f64>> {
        let SacAgent {
            value, scratch: s, ..
        } = self;
        let Some(value) = value.as_mut() else {
            return Ok(None);
        };
        for ((t, &q), &log_prob) in s
            .value_targets
            .iter_mut()
            .zip(&s.min_q)
            .zip(&s.current.log_probs)
        {
            *t = q - beta * log_prob;
        }
        Ok(Some(value.fit(
            batch.observations(),
            &s.value_targets,
            "value",
            step,
        )?))
    }

    /// Step 3.5: φ: one Adam step on `L = c_d·(1/b) Σᵢ log d(ãᵢ|sᵢ) − c_q·(1/b) Σᵢ minⱼ
    /// q(sᵢ, ãᵢ)`, `(c_d, c_q) = (1, 1/β)` for a fixed β (the chapter's objective),
    /// `(β, 1)` for an automatic one (Stable-Baselines3's). The gradient flows through
    /// `ãᵢ = f_φ(sᵢ, εᵢ)` into the critics' input gradients and through the
    /// log-density. Returns `(1/b) Σᵢ [β log d(ãᵢ|sᵢ) − minⱼ q(sᵢ, ãᵢ)]`.
    fn improve_policy(&mut self, batch: &Minibatch, beta: f32, step: u64) -> Result<f64> {
        let SacAgent {
            config,
            policy,
            policy_adam,
            critics,
            temperature,
            scratch: s,
            ..
        } = self;
        let (b, m) = (config.batch_size, policy.head().action_dim());
        let (c_log_prob, c_q) = match temperature.adam {
            None => (1.0, 1.0 / beta),
            Some(_) => (beta, 1.0),
        };
        let policy_loss = s
            .current
            .log_probs
            .iter()
            .zip(&s.min_q)
            .map(|(&l, &q)| f64::from(beta) * f64::from(l) - f64::from(q))
            .sum::<f64>()
            / b as f64;
        if !policy_loss.is_finite() {
            return Err(numerical(step, format!("policy loss is {policy_loss}")));
        }
        // ∂L/∂qⱼ(sᵢ, ãᵢ) = −c_q/b for the critic attaining the minimum (the first on ties).
        let critic_count = critics.len();
        let grad_q = -c_q / b as f32;
        for i in 0..b {
            let q0 = critics[0].ws.output()[i];
            let first = critic_count == 1 || q0 <= critics[1].ws.output()[i];
            critics[0].output_grad[i] = if first { grad_q } else { 0.0 };
            if critic_count == 2 {
                critics[1].output_grad[i] = if first { 0.0 } else { grad_q };
            }
        }
        collect(each_critic(critics, |c| {
            let rows = c.output_grad.len();
            c.net
                .input_gradient(&mut c.ws, &c.output_grad[..rows], &mut c.input_grad)
        }))?;
        // ∂L/∂ãᵢ: the action columns of the critics' input gradients.
        let o = batch.observations().len() / b;
        for (i, g) in s.grad_actions.chunks_exact_mut(m).enumerate() {
            let row = i * (o + m) + o;
            g.copy_from_slice(&critics[0].input_grad[row..row + m]);
            if critic_count == 2 {
                for (g, &h) in g.iter_mut().zip(&critics[1].input_grad[row..row + m]) {
                    *g += h;
                }
            }
        }
        s.grad_log_probs.fill(c_log_prob / b as f32);
        policy.head().backward(
            s.current.ws.output(),
            &s.current.noise,
            &s.grad_actions,
            &s.grad_log_probs,
            &mut s.grad_policy_output,
        )?;
        s.policy_grads.fill(0.0);
        policy.network().backward(
            &mut s.current.ws,
            &s.grad_policy_output,
            &mut s.policy_grads,
            None,
        )?;
        policy_adam.step(policy.network_mut().params_mut(), &s.policy_grads)?;
        Ok(policy_loss)
    }

    /// Targets: `θ̄ⱼ ← τθⱼ + (1 − τ)θ̄ⱼ`, or `ψ̄ ← τψ + (1 − τ)ψ̄`.
    fn update_targets(&mut self) -> Result<()> {
        if let Some(tau) = self.config.target_tau {
            for critic in self.critics.iter_mut() {
                critic.update_target(tau)?;
            }
            if let Some(value) = self.value.as_mut() {
                value.update_target(tau)?;
            }
        }
        Ok(())
    }
}

/// What only SAC has; the rest ([`Online::step`], [`Online::run`], [`Online::steps`],
/// [`Online::checkpoint`], ...) is the core's.
impl Sac {
    /// The current policy d(·|s; φ), to act with, inspect and evaluate (clone it to keep
    /// a snapshot).
    pub fn policy(&self) -> &GaussianPolicy {
        &self.agent().policy
    }

    /// Critic `j` (0, or 0 and 1 with twin critics).
    pub fn critic(&self, j: usize) -> Option<&Mlp> {
        self.agent().critics.get(j).map(|c| &c.net)
    }

    /// The target copy of critic `j`, if step 3.2 reads target critics.
    pub fn critic_target(&self, j: usize) -> Option<&Mlp> {
        self.agent().critics.get(j).and_then(|c| c.target.as_ref())
    }

    /// v_ψ, with [`SoftTarget::ValueNetwork`].
    pub fn value(&self) -> Option<&Mlp> {
        self.agent().value.as_ref().map(|v| &v.net)
    }

    /// v_ψ̄, with [`SoftTarget::ValueNetwork`] and target networks.
    pub fn value_target(&self) -> Option<&Mlp> {
        self.agent().value.as_ref().and_then(|v| v.target.as_ref())
    }

    /// The temperature β the next update will use.
    pub fn beta(&self) -> f64 {
        f64::from(self.agent().temperature.beta())
    }
}

/// The next states of a minibatch and the buffers step 3.2 writes.
struct NextState<'a> {
    batch: &'a Minibatch,
    /// ε' (b × m) in, a'ᵢ and log d(a'ᵢ|s'ᵢ) out.
    sampled: &'a mut SampledActions,
    pairs: &'a mut [f32],
}

/// Step 3.2: `yᵢ = rᵢ + γ(1 − terminalᵢ)·V(s'ᵢ)` into `targets`, with `V(s') = v_ψ(s')`
/// (or v_ψ̄) when there is a value network, else `minⱼ q_θⱼ(s', a') − β log d(a'|s')`,
/// `a' = f_φ(s', ε')`, from the target critics if any.
fn soft_targets(
    policy: &GaussianPolicy,
    critics: &mut [Approximator],
    value: Option<&mut Approximator>,
    next: NextState<'_>,
    gamma: f32,
    beta: f32,
    targets: &mut [f32],
) -> Result<()> {
    let batch = next.batch;
    if let Some(value) = value {
        let v = value.forward_target(batch.next_observations())?;
        for (((y, &r), &alive), &v) in targets
            .iter_mut()
            .zip(batch.rewards())
            .zip(batch.not_terminal())
            .zip(v)
        {
            *y = r + gamma * alive * v;
        }
        return Ok(());
    }
    next.sampled.sample(policy, batch.next_observations())?;
    let m = policy.head().action_dim();
    let pairs = pair(
        next.pairs,
        batch.next_observations(),
        &next.sampled.actions,
        m,
    );
    collect(each_critic(critics, |c| {
        c.forward_target(pairs).map(|_| ())
    }))?;
    min_output(critics, targets);
    for (((y, &r), &alive), &log_prob) in targets
        .iter_mut()
        .zip(batch.rewards())
        .zip(batch.not_terminal())
        .zip(next.sampled.log_probs.iter())
    {
        *y = r + gamma * alive * (*y - beta * log_prob);
    }
    Ok(())
}

/// `out[i] = minⱼ` of the critics' last forward outputs (the first critic's alone if
/// there is one).
fn min_output(critics: &[Approximator], out: &mut [f32]) {
    let rows = out.len();
    out.copy_from_slice(&critics[0].ws.output()[..rows]);
    if let Some(second) = critics.get(1) {
        for (o, &q) in out.iter_mut().zip(second.ws.output()) {
            if q < *o {
                *o = q;
            }
        }
    }
}
