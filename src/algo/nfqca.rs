//! Neural Fitted Q-iteration with Continuous Actions, the chapter's pseudocode `nfqca`
//! (Hafner & Riedmiller 2011): fitted Q-iteration on a fixed batch of transitions 𝓑
//! whose `max` over actions is replaced by a deterministic policy d(s; w), itself
//! improved by gradient ascent on the critic.
//!
//! # The pseudocode, step by step
//! One call of [`Nfqca::iterate`] is one iteration n of step 2:
//!
//! * 2.1–2.2: for every `(s, a, r, s') ∈ 𝓑`: `a'_{s'} ← d(s'; wₙ)`,
//!   `y_{s,a} ← r + γ q(s', a'_{s'}; θₙ)` (no bootstrap from terminal `s'`);
//! * 2.3: `θₙ₊₁ ← fit(𝒟_q)`: minibatch Adam on the mean squared error
//!   `(1/|𝒟_q|) Σ (q(s, a; θ) − y)²`, `fit_epochs` passes over 𝓑 in shuffled order,
//!   starting from θₙ (a warm start: the targets move little between iterations);
//! * 2.4: `wₙ₊₁ ← minimize_w −(1/|𝓑|) Σ q(s, d(s; w); θₙ₊₁)`: minibatch Adam ascending
//!   the mean of `q(s, d(s; w); θₙ₊₁)`, whose gradient flows through the critic's input
//!   gradient ∇ₐq into the actor, `policy_epochs` passes over 𝓑.
//!
//! The transitions are given once ([`Transitions`], in environment units); the fit and
//! policy steps allocate nothing. A run is seeded by a [`RunSeed`]: initialization and
//! the minibatch shuffles each draw from their own stream.

use rand::Rng as _;
use serde::{Deserialize, Serialize};

use super::deterministic_policy::{
    validate_shared, ActionMap, ActorCriticStep, DeterministicPolicy, Networks, PolicyOutput,
};
use crate::env::ActionSpace;
use crate::error::{Error, Result};
use crate::nn::{Activation, Adam, AdamConfig, Mlp};
use crate::replay::{Minibatch, Transition, Transitions};
use crate::rng::{Rng, RunSeed};

/// Every hyperparameter of NFQCA, with defaults. Check it once into a
/// [`ValidNfqcaConfig`] with [`NfqcaConfig::check`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NfqcaConfig {
    /// Discount γ in [0, 1]. Default 0.99.
    pub gamma: f64,
    /// Minibatch size of both the fit and the policy steps. Default 64.
    pub batch_size: usize,
    /// Passes over 𝓑 of the critic's `fit` per iteration. Default 10.
    pub fit_epochs: usize,
    /// Passes over 𝓑 of the policy's `minimize` per iteration. Default 10.
    pub policy_epochs: usize,
    /// Adam for q(s, a; θ). Default lr 1e-3.
    pub critic_optimizer: AdamConfig,
    /// Adam for d(s; w), learning rate α. Default lr 1e-3.
    pub actor_optimizer: AdamConfig,
    /// Hidden widths of d(s; w). Default [64, 64].
    pub actor_hidden: Vec<usize>,
    /// Hidden widths of q(s, a; θ). Default [64, 64].
    pub critic_hidden: Vec<usize>,
    /// Hidden activation of both networks. Default ReLU.
    pub hidden_activation: Activation,
    /// How the actor's output becomes an action. Default the chapter's unbounded output.
    pub policy_output: PolicyOutput,
    /// If set, both networks' last layers start in `U(±bound)`. Default `None`
    /// (PyTorch's initialization).
    pub last_layer_init: Option<f64>,
}

impl Default for NfqcaConfig {
    fn default() -> Self {
        NfqcaConfig {
            gamma: 0.99,
            batch_size: 64,
            fit_epochs: 10,
            policy_epochs: 10,
            critic_optimizer: AdamConfig::with_lr(1e-3),
            actor_optimizer: AdamConfig::with_lr(1e-3),
            actor_hidden: vec![64, 64],
            critic_hidden: vec![64, 64],
            hidden_activation: Activation::Relu,
            policy_output: PolicyOutput::Linear,
            last_layer_init: None,
        }
    }
}

impl NfqcaConfig {
    /// Checks every field once; an invalid one is [`Error::InvalidParameter`] naming it
    /// (`nfqca.gamma`, `nfqca.batch_size`, `nfqca.actor_optimizer.lr`, ...).
    pub fn check(&self) -> Result<ValidNfqcaConfig> {
        validate_shared(
            "nfqca",
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
        let at_least_one = [
            ("batch_size", self.batch_size),
            ("fit_epochs", self.fit_epochs),
            ("policy_epochs", self.policy_epochs),
        ];
        for (field, value) in at_least_one {
            if value == 0 {
                return Err(Error::invalid(
                    format!("nfqca.{field}"),
                    "must be at least 1",
                ));
            }
        }
        Ok(ValidNfqcaConfig(self.clone()))
    }
}

/// An [`NfqcaConfig`] whose fields have all been checked; the only way to build an [`Nfqca`].
#[derive(Clone, Debug, PartialEq)]
pub struct ValidNfqcaConfig(NfqcaConfig);

impl std::ops::Deref for ValidNfqcaConfig {
    type Target = NfqcaConfig;

    fn deref(&self) -> &NfqcaConfig {
        &self.0
    }
}

/// What one iteration measured.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct NfqcaReport {
    /// Iterations done, this one included (n + 1).
    pub iteration: usize,
    /// Mean squared error of the last `fit` pass (mean over its minibatches).
    pub critic_loss: f64,
    /// Mean over 𝓑 of q(s, d(s; wₙ₊₁); θₙ₊₁) seen by the last policy pass.
    pub actor_objective: f64,
}

/// NFQCA on a fixed batch of transitions.
pub struct Nfqca {
    config: ValidNfqcaConfig,
    map: ActionMap,
    /// 𝓑, with actions in agent coordinates.
    base: Transitions,
    actor: Mlp,
    critic: Mlp,
    actor_adam: Adam,
    critic_adam: Adam,
    shuffle: Rng,
    iterations: usize,
    // Buffers allocated once.
    /// `y_{s,a}` for every row of 𝓑.
    targets: Vec<f32>,
    order: Vec<usize>,
    batch: Minibatch,
    batch_targets: Vec<f32>,
    /// `1 − terminal` for a chunk of 𝓑.
    not_terminal: Vec<f32>,
    learner: ActorCriticStep,
}

impl Nfqca {
    /// Step 1: initialize θ₀ and w₀ from `seed`, for the transitions 𝓑 (`base`, actions
    /// in the units of `action_space`, which must be a box).
    pub fn new(
        config: &ValidNfqcaConfig,
        base: &Transitions,
        action_space: &ActionSpace,
        seed: RunSeed,
    ) -> Result<Self> {
        let map = ActionMap::new(config.policy_output, action_space, "nfqca.policy_output")?;
        if base.is_empty() {
            return Err(Error::invalid("transitions", "the batch 𝓑 is empty"));
        }
        if base.action_dim() != map.dim() {
            return Err(Error::invalid(
                "transitions",
                format!(
                    "actions have {} components, the action space has {}",
                    base.action_dim(),
                    map.dim()
                ),
            ));
        }
        let base = to_agent_actions(base, &map)?;
        let networks = Networks {
            obs_dim: base.obs_dim(),
            action_dim: base.action_dim(),
            actor_hidden: &config.actor_hidden,
            critic_hidden: &config.critic_hidden,
            hidden_activation: config.hidden_activation,
            output: config.policy_output,
            last_layer_init: config.last_layer_init,
        };
        let actor = Mlp::new(
            &networks.actor_config(),
            &mut seed.stream("nfqca-actor-init"),
        )?;
        let critic = Mlp::new(
            &networks.critic_config(),
            &mut seed.stream("nfqca-critic-init"),
        )?;
        let b = config.batch_size.min(base.len());
        Ok(Nfqca {
            actor_adam: Adam::new(config.actor_optimizer, actor.num_params())?,
            critic_adam: Adam::new(config.critic_optimizer, critic.num_params())?,
            shuffle: seed.stream("nfqca-shuffle"),
            iterations: 0,
            targets: vec![0.0; base.len()],
            order: (0..base.len()).collect(),
            batch: Minibatch::new(base.obs_dim(), base.action_dim(), b),
            batch_targets: vec![0.0; b],
            not_terminal: vec![0.0; b],
            learner: ActorCriticStep::new(&actor, &critic, b),
            config: config.clone(),
            map,
            base,
            actor,
            critic,
        })
    }

    /// One iteration n → n + 1 of step 2.
    pub fn iterate(&mut self) -> Result<NfqcaReport> {
        let n = self.iterations;
        let gamma = self.config.gamma;
        let b = self.batch.capacity();

        // 2.1–2.2: y = r + γ q(s', d(s'; wₙ); θₙ) for all of 𝓑, a minibatch at a time.
        for start in (0..self.base.len()).step_by(b) {
            let end = (start + b).min(self.base.len());
            let o = self.base.obs_dim();
            self.learner.forward.targets(
                &self.actor,
                &self.critic,
                gamma,
                &self.base.next_observations()[start * o..end * o],
                &self.base.rewards()[start..end],
                not_terminal(&self.base.terminal()[start..end], &mut self.not_terminal),
                &mut self.targets[start..end],
            )?;
        }

        // 2.3: θₙ₊₁ ← fit(𝒟_q), warm-started from θₙ.
        let mut critic_loss = 0.0;
        for _ in 0..self.config.fit_epochs {
            shuffle(&mut self.order, &mut self.shuffle);
            let (mut sum, mut batches) = (0.0, 0);
            for chunk in self.order.chunks(b) {
                self.base.gather(chunk, &mut self.batch)?;
                for (y, &i) in self.batch_targets.iter_mut().zip(chunk) {
                    *y = self.targets[i];
                }
                sum += self.learner.fit_critic(
                    &mut self.critic,
                    &mut self.critic_adam,
                    self.batch.observations(),
                    self.batch.actions(),
                    &self.batch_targets[..chunk.len()],
                    || format!("nfqca iteration {n} (fit)"),
                )?;
                batches += 1;
            }
            critic_loss = sum / batches as f64;
        }

        // 2.4: wₙ₊₁ ← minimize_w −(1/|𝓑|) Σ q(s, d(s; w); θₙ₊₁), by Adam on minibatches.
        let mut actor_objective = 0.0;
        for _ in 0..self.config.policy_epochs {
            shuffle(&mut self.order, &mut self.shuffle);
            let mut sum = 0.0;
            for chunk in self.order.chunks(b) {
                self.base.gather(chunk, &mut self.batch)?;
                let objective = self.learner.improve_actor(
                    &mut self.actor,
                    &mut self.actor_adam,
                    &self.critic,
                    self.batch.observations(),
                    || format!("nfqca iteration {n} (policy)"),
                )?;
                sum += objective * chunk.len() as f64;
            }
            actor_objective = sum / self.base.len() as f64;
        }

        self.iterations += 1;
        Ok(NfqcaReport {
            iteration: self.iterations,
            critic_loss,
            actor_objective,
        })
    }

    /// Runs `iterations` iterations, handing every report to `observe` (which may
    /// evaluate or log through the `&Nfqca` it receives, and stops by returning an error).
    pub fn run<F>(&mut self, iterations: usize, mut observe: F) -> Result<()>
    where
        F: FnMut(&Nfqca, &NfqcaReport) -> Result<()>,
    {
        for _ in 0..iterations {
            let report = self.iterate()?;
            observe(self, &report)?;
        }
        Ok(())
    }

    pub fn config(&self) -> &ValidNfqcaConfig {
        &self.config
    }

    /// Iterations done (n).
    pub fn iterations(&self) -> usize {
        self.iterations
    }

    /// A snapshot of the current policy d(s; wₙ), to act and evaluate.
    pub fn policy(&self) -> DeterministicPolicy {
        DeterministicPolicy::from_parts(&self.actor, &self.map)
    }

    pub fn actor(&self) -> &Mlp {
        &self.actor
    }

    pub fn critic(&self) -> &Mlp {
        &self.critic
    }

    /// 𝓑 as the networks see it (actions in agent coordinates).
    pub fn transitions(&self) -> &Transitions {
        &self.base
    }
}

/// `1 − terminal` as f32 factors, written into `out` (at least as long as `terminal`).
fn not_terminal<'a>(terminal: &[bool], out: &'a mut [f32]) -> &'a [f32] {
    let out = &mut out[..terminal.len()];
    for (x, &t) in out.iter_mut().zip(terminal) {
        *x = if t { 0.0 } else { 1.0 };
    }
    out
}

/// Fisher–Yates, from the run's shuffle stream.
fn shuffle(order: &mut [usize], rng: &mut Rng) {
    for i in (1..order.len()).rev() {
        let j = rng.gen_range(0..=i);
        order.swap(i, j);
    }
}

/// A copy of `base` with actions in the policy's coordinates (normalized for a tanh output).
fn to_agent_actions(base: &Transitions, map: &ActionMap) -> Result<Transitions> {
    let m = base.action_dim();
    let mut converted = Transitions::with_capacity(base.obs_dim(), m, base.len())?;
    let (mut env_action, mut agent) = (vec![0.0; m], vec![0.0; m]);
    let mut agent_f32 = vec![0.0f32; m];
    for t in base.iter() {
        for (e, &a) in env_action.iter_mut().zip(t.action) {
            *e = f64::from(a);
        }
        map.to_agent(&env_action, &mut agent);
        for (a, &u) in agent_f32.iter_mut().zip(&agent) {
            *a = u as f32;
        }
        converted.push(Transition {
            action: &agent_f32,
            ..t
        })?;
    }
    Ok(converted)
}
