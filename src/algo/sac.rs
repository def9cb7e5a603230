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

use std::path::Path;

use rand::{Rng as _, RngCore};
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

use super::deterministic_policy::{rename_field, ActionMap, PolicyOutput};
use crate::env::Env;
use crate::error::{Error, Result};
use crate::eval::{evaluate_with, EvalSettings, Evaluation};
use crate::json;
use crate::nn::{mse_with_gradient, Activation, Adam, AdamConfig, Init, Mlp, MlpConfig, Workspace};
use crate::policy::{GaussianHead, LOG_STD_BOUNDS};
use crate::replay::{Minibatch, ReplayBuffer, Transition};
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
        let at_least_one = [
            ("buffer_size", self.buffer_size),
            ("batch_size", self.batch_size),
            ("updates_per_step", self.updates_per_step),
        ];
        for (field, value) in at_least_one {
            if value == 0 {
                return Err(Error::invalid(format!("sac.{field}"), "must be at least 1"));
            }
        }
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

/// One finished episode of the training environment.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpisodeEnd {
    /// Undiscounted return of the (stochastic) behaviour.
    pub episode_return: f64,
    pub length: usize,
    /// Ended in a terminal state rather than by truncation.
    pub terminated: bool,
}

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

/// What one iteration did.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepReport {
    /// Environment steps taken so far, this one included.
    pub step: u64,
    pub reward: f64,
    /// Set when this step ended an episode (the environment has been reset since).
    pub episode_end: Option<EpisodeEnd>,
    /// The last update of this step, if it made any.
    pub update: Option<SacUpdateStats>,
}

/// A Gaussian policy d(a|s; φ) with its map to environment actions: a snapshot to act
/// with (its mean, or samples) and to evaluate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GaussianPolicy {
    network: Mlp,
    head: GaussianHead,
    map: ActionMap,
}

/// Scratch for [`GaussianPolicy`]: one observation row and its action.
#[derive(Clone, Debug)]
pub struct GaussianPolicyWorkspace {
    network: Workspace,
    noise: Vec<f32>,
    action: Vec<f32>,
    log_prob: [f32; 1],
    agent_action: Vec<f64>,
}

impl GaussianPolicy {
    /// `network` maps observations to `2m` outputs ([`GaussianHead`]), `map` the head's
    /// actions (in (−1, 1)ᵐ when squashed) to the environment's.
    pub fn new(network: Mlp, head: GaussianHead, map: ActionMap) -> Result<Self> {
        if network.output_dim() != head.output_dim() || head.action_dim() != map.dim() {
            return Err(Error::invalid(
                "gaussian_policy",
                format!(
                    "network outputs {}, the head reads {} for {} actions, the action space has {}",
                    network.output_dim(),
                    head.output_dim(),
                    head.action_dim(),
                    map.dim()
                ),
            ));
        }
        Ok(GaussianPolicy { network, head, map })
    }

    pub fn network(&self) -> &Mlp {
        &self.network
    }

    pub fn head(&self) -> &GaussianHead {
        &self.head
    }

    pub fn action_map(&self) -> &ActionMap {
        &self.map
    }

    pub fn workspace(&self) -> GaussianPolicyWorkspace {
        let m = self.head.action_dim();
        GaussianPolicyWorkspace {
            network: self.network.workspace(1),
            noise: vec![0.0; m],
            action: vec![0.0; m],
            log_prob: [0.0],
            agent_action: vec![0.0; m],
        }
    }

    /// The Gaussian's mean μ_φ(s) and standard deviation σ_φ(s) (clamped) before any
    /// squashing, per component.
    pub fn distribution(
        &self,
        ws: &mut GaussianPolicyWorkspace,
        observation: &[f32],
        mean: &mut [f64],
        std: &mut [f64],
    ) -> Result<()> {
        let m = self.head.action_dim();
        let output = self.network.forward(observation, &mut ws.network)?;
        let (low, high) = self.head.log_std_bounds();
        for i in 0..m {
            mean[i] = f64::from(output[i]);
            std[i] = f64::from(output[m + i]).clamp(low, high).exp();
        }
        Ok(())
    }

    /// The deterministic environment action: the mean (or `tanh` of it) mapped to the box.
    pub fn act(
        &self,
        ws: &mut GaussianPolicyWorkspace,
        observation: &[f32],
        action: &mut [f64],
    ) -> Result<()> {
        let output = self.network.forward(observation, &mut ws.network)?;
        self.head.mean_action(output, &mut ws.action)?;
        self.to_env(ws, action);
        Ok(())
    }

    /// An environment action sampled from d(·|s; φ) with noise from `rng`.
    pub fn sample(
        &self,
        ws: &mut GaussianPolicyWorkspace,
        observation: &[f32],
        rng: &mut Rng,
        action: &mut [f64],
    ) -> Result<()> {
        for e in ws.noise.iter_mut() {
            *e = StandardNormal.sample(rng);
        }
        let output = self.network.forward(observation, &mut ws.network)?;
        self.head
            .sample(output, &ws.noise, &mut ws.action, &mut ws.log_prob)?;
        self.to_env(ws, action);
        Ok(())
    }

    fn to_env(&self, ws: &mut GaussianPolicyWorkspace, action: &mut [f64]) {
        for (u, &a) in ws.agent_action.iter_mut().zip(&ws.action) {
            *u = f64::from(a);
        }
        self.map.to_env(&ws.agent_action, action);
    }

    /// Evaluates the deterministic policy (the mean action) over seeded episodes, in
    /// parallel.
    pub fn evaluate<F>(&self, make_env: F, settings: &EvalSettings) -> Result<Evaluation>
    where
        F: Fn() -> Result<Box<dyn Env>> + Sync,
    {
        evaluate_with(
            make_env,
            || self.workspace(),
            |ws: &mut GaussianPolicyWorkspace, obs: &[f32], _: &mut Rng, action: &mut [f64]| {
                self.act(ws, obs, action)
            },
            settings,
        )
    }

    /// Evaluates the stochastic policy, each episode sampling from its own stream.
    pub fn evaluate_stochastic<F>(&self, make_env: F, settings: &EvalSettings) -> Result<Evaluation>
    where
        F: Fn() -> Result<Box<dyn Env>> + Sync,
    {
        evaluate_with(
            make_env,
            || self.workspace(),
            |ws: &mut GaussianPolicyWorkspace, obs: &[f32], rng: &mut Rng, action: &mut [f64]| {
                self.sample(ws, obs, rng, action)
            },
            settings,
        )
    }
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
}

/// One random stream per consumer, so that none shifts another's numbers.
#[derive(Clone, Debug)]
struct Streams {
    /// ε of the actions taken in the environment (step 1).
    act: Rng,
    /// ε and ε' of the updates (steps 3.1 and 3.2).
    update: Rng,
    replay: Rng,
    /// Seeds of the environment's resets.
    reset: Rng,
    /// Uniform actions before learning starts.
    warmup: Rng,
}

impl Streams {
    fn new(seed: RunSeed) -> Self {
        Streams {
            act: seed.stream("sac-act"),
            update: seed.stream("sac-update"),
            replay: seed.stream("sac-replay"),
            reset: seed.stream("sac-reset"),
            warmup: seed.stream("sac-warmup"),
        }
    }
}

/// Buffers allocated once; nothing here is state that a checkpoint must keep.
struct Scratch {
    next_observation: Vec<f32>,
    act: GaussianPolicyWorkspace,
    agent_action_f32: Vec<f32>,
    env_action: Vec<f64>,
    batch: Minibatch,
    /// The policy's forward pass at sᵢ, kept from step 3.1 to 3.5, and at s'ᵢ.
    policy_ws: Workspace,
    policy_next_ws: Workspace,
    /// ε (b × m) and ε' (b × m).
    noise: Vec<f32>,
    next_noise: Vec<f32>,
    /// ãᵢ, log d(ãᵢ|sᵢ), a'ᵢ, log d(a'ᵢ|s'ᵢ).
    actions: Vec<f32>,
    log_probs: Vec<f32>,
    next_actions: Vec<f32>,
    next_log_probs: Vec<f32>,
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
        let m = policy.head.action_dim();
        let net = &policy.network;
        Scratch {
            next_observation: vec![0.0; obs_dim],
            act: policy.workspace(),
            agent_action_f32: vec![0.0; m],
            env_action: vec![0.0; m],
            batch: Minibatch::new(obs_dim, m, batch),
            policy_ws: net.workspace(batch),
            policy_next_ws: net.workspace(batch),
            noise: vec![0.0; batch * m],
            next_noise: vec![0.0; batch * m],
            actions: vec![0.0; batch * m],
            log_probs: vec![0.0; batch],
            next_actions: vec![0.0; batch * m],
            next_log_probs: vec![0.0; batch],
            pairs: vec![0.0; batch * (obs_dim + m)],
            targets: vec![0.0; batch],
            min_q: vec![0.0; batch],
            value_targets: vec![0.0; batch],
            grad_actions: vec![0.0; batch * m],
            grad_log_probs: vec![0.0; batch],
            grad_policy_output: vec![0.0; batch * 2 * m],
            policy_grads: net.zero_grads(),
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

/// SAC's networks, buffers and streams, driving one environment.
pub struct Sac {
    config: ValidSacConfig,
    env: Box<dyn Env>,
    /// d(·|s; φ): the network, its head and the map to environment actions.
    policy: GaussianPolicy,
    policy_adam: Adam,
    /// q_θ₁ (and q_θ₂), with their targets if any.
    critics: Vec<Approximator>,
    /// v_ψ (and its target), for [`SoftTarget::ValueNetwork`].
    value: Option<Approximator>,
    temperature: TemperatureState,
    replay: ReplayBuffer,
    streams: Streams,
    /// The current state s as observed, and its episode so far.
    observation: Vec<f32>,
    episode_return: f64,
    episode_length: usize,
    steps: u64,
    updates: u64,
    episodes: u64,
    scratch: Scratch,
}

impl Sac {
    /// Initializes φ, θⱼ and ψ from `seed` (targets as copies), allocates the replay buffer
    /// and every buffer, and resets `env`. Errors: an action space that is not a box, or
    /// not a finite one where the configuration needs it (squashing, uniform warm-up).
    pub fn new(config: &ValidSacConfig, env: Box<dyn Env>, seed: RunSeed) -> Result<Self> {
        let output = if config.squash {
            PolicyOutput::TanhScaled
        } else {
            PolicyOutput::Linear
        };
        let map = ActionMap::new(output, env.action_space(), "sac.squash")?;
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
        let mut sac = Sac {
            policy_adam: Adam::new(config.policy_optimizer, policy.network.num_params())?,
            replay: ReplayBuffer::new(obs_dim, m, config.buffer_size)?,
            streams: Streams::new(seed),
            observation: vec![0.0; obs_dim],
            episode_return: 0.0,
            episode_length: 0,
            steps: 0,
            updates: 0,
            episodes: 0,
            scratch: Scratch::new(&policy, obs_dim, batch),
            config: config.clone(),
            env,
            policy,
            critics,
            value,
            temperature,
        };
        sac.check_uniform_warmup()?;
        sac.replay.reserve_sample(batch);
        sac.start_episode();
        Ok(sac)
    }

    fn check_uniform_warmup(&self) -> Result<()> {
        if self.config.random_actions_before_learning && self.config.learning_starts > 0 {
            let map = &self.policy.map;
            for i in 0..map.dim() {
                let (lo, hi) = map.agent_bounds(i);
                if !(lo.is_finite() && hi.is_finite() && lo < hi) {
                    return Err(Error::invalid(
                        "sac.random_actions_before_learning",
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
        self.episode_return = 0.0;
        self.episode_length = 0;
    }

    /// One pass of the `while training` loop: an environment step, then
    /// `updates_per_step` updates once more than `learning_starts` steps have been taken.
    pub fn step(&mut self) -> Result<StepReport> {
        let learning_starts = self.config.learning_starts as u64;
        let scratch = &mut self.scratch;
        let map = &self.policy.map;

        // 1: observe s, act a = f_φ(s, ε) (uniform in the box during warm-up).
        if self.config.random_actions_before_learning && self.steps < learning_starts {
            for (i, u) in scratch.act.agent_action.iter_mut().enumerate() {
                let (lo, hi) = map.agent_bounds(i);
                *u = self.streams.warmup.gen_range(lo..=hi);
            }
        } else {
            let ws = &mut scratch.act;
            for e in ws.noise.iter_mut() {
                *e = StandardNormal.sample(&mut self.streams.act);
            }
            let output = self
                .policy
                .network
                .forward(&self.observation, &mut ws.network)?;
            self.policy
                .head
                .sample(output, &ws.noise, &mut ws.action, &mut ws.log_prob)?;
            for (u, &a) in ws.agent_action.iter_mut().zip(&ws.action) {
                *u = f64::from(a);
            }
        }
        map.to_env(&scratch.act.agent_action, &mut scratch.env_action);

        // 2: execute a, observe r and s', store (s, a, r, s') in 𝓡.
        let outcome = self
            .env
            .step_into(&scratch.env_action, &mut scratch.next_observation)?;
        self.steps += 1;
        if !outcome.reward.is_finite() {
            return Err(Error::Numerical {
                context: format!("sac step {}", self.steps),
                reason: format!("{} returned reward {}", self.env.id(), outcome.reward),
            });
        }
        for (a, &u) in scratch
            .agent_action_f32
            .iter_mut()
            .zip(&scratch.act.agent_action)
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
            std::mem::swap(&mut self.observation, &mut self.scratch.next_observation);
            None
        };

        // 3: the updates.
        let mut update = None;
        if self.steps > learning_starts {
            for _ in 0..self.config.updates_per_step {
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

    /// Step 3: one update of the temperature, the critics, the value network, the policy
    /// and the targets.
    fn update(&mut self) -> Result<SacUpdateStats> {
        let Sac {
            config,
            policy,
            policy_adam,
            critics,
            value,
            temperature,
            replay,
            streams,
            scratch: s,
            steps,
            ..
        } = self;
        let step = *steps;
        let numerical = |reason: String| Error::Numerical {
            context: format!("sac step {step}"),
            reason,
        };
        let (b, m) = (config.batch_size, policy.head.action_dim());
        let sampled_target = config.target == SoftTarget::Sampled;

        // 3: a minibatch of b transitions, and every ε this update needs.
        replay.sample_into(&mut streams.replay, b, &mut s.batch)?;
        for e in s.noise.iter_mut() {
            *e = StandardNormal.sample(&mut streams.update);
        }
        if sampled_target {
            for e in s.next_noise.iter_mut() {
                *e = StandardNormal.sample(&mut streams.update);
            }
        }
        let batch = &s.batch;

        // 3.1 and 3.2 read the same φ and write disjoint buffers: they run concurrently.
        // 3.1: ãᵢ = f_φ(sᵢ, εᵢ) and log d(ãᵢ|sᵢ; φ), keeping the forward pass for 3.5.
        // 3.2: yᵢ = rᵢ + γ(1 − terminalᵢ)·V(s'ᵢ), with β from before this update's
        // temperature step.
        let beta = temperature.beta();
        let gamma = config.gamma as f32;
        let policy_ref = &*policy;
        let (current, next) = rayon::join(
            || {
                let output = policy_ref
                    .network
                    .forward(batch.observations(), &mut s.policy_ws)?;
                policy_ref
                    .head
                    .sample(output, &s.noise, &mut s.actions, &mut s.log_probs)
            },
            || {
                let next = NextState {
                    batch,
                    noise: &s.next_noise,
                    ws: &mut s.policy_next_ws,
                    actions: &mut s.next_actions,
                    log_probs: &mut s.next_log_probs,
                    pairs: &mut s.pairs,
                };
                soft_targets(
                    policy_ref,
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
            return Err(numerical(format!(
                "target y of row {i} is {}",
                s.targets[i]
            )));
        }
        let mean_log_prob = s.log_probs.iter().map(|&l| f64::from(l)).sum::<f64>() / b as f64;
        if !mean_log_prob.is_finite() {
            return Err(numerical(format!("mean log-density is {mean_log_prob}")));
        }

        // Automatic temperature: one Adam step on −log β·(mean log d + H̄).
        if let Some(adam) = &mut temperature.adam {
            let grad = -(mean_log_prob + f64::from(temperature.target_entropy)) as f32;
            adam.step(&mut temperature.log_beta, &[grad])?;
        }

        // 3.3: each θⱼ: one Adam step on ½(1/b) Σᵢ (q_θⱼ(sᵢ, aᵢ) − yᵢ)².
        let pairs = pair(&mut s.pairs, batch.observations(), batch.actions(), m);
        let targets = &s.targets;
        let losses = collect(each_critic(critics, |c| {
            c.fit(pairs, targets, "critic", step)
        }))?;
        let critic_loss = 0.5 * losses.iter().flatten().sum::<f64>();

        // minⱼ q_θⱼ(sᵢ, ãᵢ) with the critics just fitted, for 3.4 and 3.5.
        let pairs = pair(&mut s.pairs, batch.observations(), &s.actions, m);
        collect(each_critic(critics, |c| {
            c.net.forward(pairs, &mut c.ws).map(|_| ())
        }))?;
        min_output(critics, &mut s.min_q);

        // 3.4: ψ: one Adam step on ½(1/b) Σᵢ (v_ψ(sᵢ) − [minⱼ q(sᵢ, ãᵢ) − β log d(ãᵢ|sᵢ)])².
        let value_loss = match value.as_mut() {
            Some(value) => {
                for ((t, &q), &log_prob) in
                    s.value_targets.iter_mut().zip(&s.min_q).zip(&s.log_probs)
                {
                    *t = q - beta * log_prob;
                }
                Some(value.fit(batch.observations(), &s.value_targets, "value", step)?)
            }
            None => None,
        };

        // 3.5: φ: one Adam step on L = c_d·(1/b) Σᵢ log d(ãᵢ|sᵢ) − c_q·(1/b) Σᵢ minⱼ q(sᵢ, ãᵢ),
        // (c_d, c_q) = (1, 1/β) for a fixed β (the chapter's objective), (β, 1) for an
        // automatic one (Stable-Baselines3's).
        let (c_log_prob, c_q) = match temperature.adam {
            None => (1.0, 1.0 / beta),
            Some(_) => (beta, 1.0),
        };
        let policy_loss = s
            .log_probs
            .iter()
            .zip(&s.min_q)
            .map(|(&l, &q)| f64::from(beta) * f64::from(l) - f64::from(q))
            .sum::<f64>()
            / b as f64;
        if !policy_loss.is_finite() {
            return Err(numerical(format!("policy loss is {policy_loss}")));
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
        policy.head.backward(
            s.policy_ws.output(),
            &s.noise,
            &s.grad_actions,
            &s.grad_log_probs,
            &mut s.grad_policy_output,
        )?;
        s.policy_grads.fill(0.0);
        policy.network.backward(
            &mut s.policy_ws,
            &s.grad_policy_output,
            &mut s.policy_grads,
            None,
        )?;
        policy_adam.step(policy.network.params_mut(), &s.policy_grads)?;

        // Targets: θ̄ⱼ ← τθⱼ + (1 − τ)θ̄ⱼ, or ψ̄ ← τψ + (1 − τ)ψ̄.
        if let Some(tau) = config.target_tau {
            for critic in critics.iter_mut() {
                critic.update_target(tau)?;
            }
            if let Some(value) = value.as_mut() {
                value.update_target(tau)?;
            }
        }
        self.updates += 1;
        Ok(SacUpdateStats {
            critic_loss,
            value_loss,
            policy_loss,
            entropy: -mean_log_prob,
            beta: f64::from(beta),
        })
    }

    /// Takes `steps` steps, handing every report to `observe` (which may evaluate, log or
    /// checkpoint through the `&Sac` it receives, and stops the run by returning an error).
    pub fn run<F>(&mut self, steps: u64, mut observe: F) -> Result<()>
    where
        F: FnMut(&Sac, &StepReport) -> Result<()>,
    {
        for _ in 0..steps {
            let report = self.step()?;
            observe(self, &report)?;
        }
        Ok(())
    }

    pub fn config(&self) -> &ValidSacConfig {
        &self.config
    }

    /// The current policy d(·|s; φ), to act with, inspect and evaluate (clone it to keep
    /// a snapshot).
    pub fn policy(&self) -> &GaussianPolicy {
        &self.policy
    }

    /// Critic `j` (0, or 0 and 1 with twin critics).
    pub fn critic(&self, j: usize) -> Option<&Mlp> {
        self.critics.get(j).map(|c| &c.net)
    }

    /// The target copy of critic `j`, if step 3.2 reads target critics.
    pub fn critic_target(&self, j: usize) -> Option<&Mlp> {
        self.critics.get(j).and_then(|c| c.target.as_ref())
    }

    /// v_ψ, with [`SoftTarget::ValueNetwork`].
    pub fn value(&self) -> Option<&Mlp> {
        self.value.as_ref().map(|v| &v.net)
    }

    /// v_ψ̄, with [`SoftTarget::ValueNetwork`] and target networks.
    pub fn value_target(&self) -> Option<&Mlp> {
        self.value.as_ref().and_then(|v| v.target.as_ref())
    }

    /// The temperature β the next update will use.
    pub fn beta(&self) -> f64 {
        f64::from(self.temperature.beta())
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

    /// Updates made.
    pub fn updates(&self) -> u64 {
        self.updates
    }

    /// Episodes finished.
    pub fn episodes(&self) -> u64 {
        self.episodes
    }

    /// Everything that determines the rest of the run.
    pub fn checkpoint(&self) -> SacCheckpoint {
        SacCheckpoint {
            config: self.config.0.clone(),
            env_id: self.env.id().to_string(),
            env_state: self.env.state().to_vec(),
            observation: self.observation.clone(),
            episode_return: self.episode_return,
            episode_length: self.episode_length,
            policy: self.policy.network.clone(),
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
            replay: self.replay.clone(),
            act_rng: RngState::capture(&self.streams.act),
            update_rng: RngState::capture(&self.streams.update),
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
    pub fn restore(checkpoint: SacCheckpoint, mut env: Box<dyn Env>) -> Result<Self> {
        let c = checkpoint;
        let config = c.config.check()?;
        if env.id() != c.env_id {
            return Err(Error::invalid(
                "checkpoint.env_id",
                format!("saved on {:?}, restored on {:?}", c.env_id, env.id()),
            ));
        }
        let output = if config.squash {
            PolicyOutput::TanhScaled
        } else {
            PolicyOutput::Linear
        };
        let map = ActionMap::new(output, env.action_space(), "sac.squash")?;
        let (obs_dim, m) = (env.observation_dim(), map.dim());
        let architectures = Architectures::new(&config, obs_dim, m);
        let invalid =
            |field: &str, reason: &str| Error::invalid(format!("checkpoint.{field}"), reason);

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
        if c.replay.capacity() != config.buffer_size
            || c.replay.obs_dim() != obs_dim
            || c.replay.action_dim() != m
        {
            return Err(invalid(
                "replay",
                "buffer does not match the configuration or the environment",
            ));
        }
        if c.observation.len() != obs_dim {
            return Err(invalid("observation", "does not match the environment"));
        }
        env.set_state(&c.env_state, c.episode_length)
            .map_err(|e| rename_field(e, "checkpoint", ""))?;
        let restore = |state: &RngState, field: &str| {
            state
                .restore()
                .map_err(|e| rename_field(e, &format!("checkpoint.{field}"), "rng."))
        };
        let streams = Streams {
            act: restore(&c.act_rng, "act_rng")?,
            update: restore(&c.update_rng, "update_rng")?,
            replay: restore(&c.replay_rng, "replay_rng")?,
            reset: restore(&c.reset_rng, "reset_rng")?,
            warmup: restore(&c.warmup_rng, "warmup_rng")?,
        };
        let head = GaussianHead::new(m, config.squash, config.log_std_bounds)?;
        let policy = GaussianPolicy::new(c.policy, head, map)?;
        let mut sac = Sac {
            scratch: Scratch::new(&policy, obs_dim, config.batch_size),
            config,
            env,
            policy,
            policy_adam: c.policy_adam,
            critics,
            value,
            temperature,
            replay: c.replay,
            streams,
            observation: c.observation,
            episode_return: c.episode_return,
            episode_length: c.episode_length,
            steps: c.steps,
            updates: c.updates,
            episodes: c.episodes,
        };
        sac.check_uniform_warmup()?;
        sac.replay.reserve_sample(sac.config.batch_size);
        Ok(sac)
    }

    /// The checkpoint as JSON (bit-exact: floats are written in their shortest
    /// round-tripping form).
    pub fn to_json(&self) -> Result<String> {
        json::to_string(&self.checkpoint(), CHECKPOINT)
    }

    /// Restores a run from [`Sac::to_json`]'s output, on `env`.
    pub fn from_json(json: &str, env: Box<dyn Env>) -> Result<Self> {
        Sac::restore(json::from_str::<SacCheckpoint>(json, CHECKPOINT)?, env)
    }

    pub fn save_json(&self, path: &Path) -> Result<()> {
        json::write_file(path, &self.to_json()?, CHECKPOINT)
    }

    pub fn load_json(path: &Path, env: Box<dyn Env>) -> Result<Self> {
        Sac::from_json(&json::read_file(path, CHECKPOINT)?, env)
    }
}

fn check_network(field: &str, network: &Mlp, expected: &MlpConfig) -> Result<()> {
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
    Ok(())
}

fn check_adam(field: &str, adam: &Adam, network: &Mlp, expected: AdamConfig) -> Result<()> {
    if adam.num_params() != network.num_params() || *adam.config() != expected {
        return Err(Error::invalid(
            format!("checkpoint.{field}"),
            "optimizer does not match its network or the configuration",
        ));
    }
    Ok(())
}

/// A SAC run frozen between two steps. Serialize it with serde (JSON through
/// [`Sac::to_json`]); [`Sac::restore`] checks it and continues the run.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SacCheckpoint {
    pub config: SacConfig,
    pub env_id: String,
    /// The environment's internal state and the steps taken in the current episode.
    pub env_state: Vec<f64>,
    pub observation: Vec<f32>,
    pub episode_return: f64,
    pub episode_length: usize,
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
    pub replay: ReplayBuffer,
    pub act_rng: RngState,
    pub update_rng: RngState,
    pub replay_rng: RngState,
    pub reset_rng: RngState,
    pub warmup_rng: RngState,
    pub steps: u64,
    pub updates: u64,
    pub episodes: u64,
}

/// The next states of a minibatch and the buffers step 3.2 writes.
struct NextState<'a> {
    batch: &'a Minibatch,
    /// ε' (b × m).
    noise: &'a [f32],
    ws: &'a mut Workspace,
    actions: &'a mut [f32],
    log_probs: &'a mut [f32],
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
    let output = policy.network.forward(batch.next_observations(), next.ws)?;
    policy
        .head
        .sample(output, next.noise, next.actions, next.log_probs)?;
    let m = policy.head.action_dim();
    let pairs = pair(next.pairs, batch.next_observations(), next.actions, m);
    collect(each_critic(critics, |c| {
        c.forward_target(pairs).map(|_| ())
    }))?;
    min_output(critics, targets);
    for (((y, &r), &alive), &log_prob) in targets
        .iter_mut()
        .zip(batch.rewards())
        .zip(batch.not_terminal())
        .zip(next.log_probs.iter())
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

/// Names a SAC checkpoint in errors.
const CHECKPOINT: &str = "SAC checkpoint";
