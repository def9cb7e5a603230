//! What NFQCA and DDPG share: a deterministic policy d(s; w) and a critic q(s, a; θ),
//! both MLPs, and the two gradient steps the chapter writes for them.
//!
//! * [`PolicyOutput`] and [`ActionMap`]: how the actor's output becomes an action. The
//!   chapter's d(s; w) is any function of s ([`PolicyOutput::Linear`]: identity output,
//!   the action is the output). In practice the output is often squashed by tanh into
//!   [−1, 1]ᵐ and mapped affinely onto the action box ([`PolicyOutput::TanhScaled`]); the
//!   critic, the replay buffer and the exploration noise then work in those normalized
//!   coordinates, as Stable-Baselines3 does, and only the environment sees box units.
//! * [`DeterministicPolicy`]: a snapshot of d(s; w) with its map, to act and to evaluate.
//! * `ActorCriticStep` (crate-private): the target `y = r + γ q(s', d(s'))`, the critic's
//!   `fit` step (one Adam step on the mean squared error) and the actor's step (one Adam
//!   step ascending `(1/b) Σᵢ q(sᵢ, d(sᵢ; w); θ)` through the critic's input gradient
//!   ∇ₐq), on buffers allocated once.

use serde::{Deserialize, Serialize};

use crate::env::{ActionSpace, Env};
use crate::error::{Error, Result};
use crate::eval::{evaluate_with, EvalSettings, Evaluation};
use crate::nn::{mse_with_gradient, Activation, Adam, AdamConfig, Init, Mlp, MlpConfig, Workspace};
use crate::rng::Rng;

/// How the actor's output is turned into an action.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum PolicyOutput {
    /// The chapter's d(s; w): identity output layer, the output is the action.
    #[default]
    Linear,
    /// tanh output layer in (−1, 1)ᵐ, mapped affinely onto the (finite) action box:
    /// `a = low + (u + 1)(high − low)/2`. Actions are bounded by construction.
    TanhScaled,
}

impl PolicyOutput {
    /// The output activation of the actor network.
    pub fn activation(self) -> Activation {
        match self {
            PolicyOutput::Linear => Activation::Identity,
            PolicyOutput::TanhScaled => Activation::Tanh,
        }
    }
}

/// Between the policy's action coordinates ("agent actions", what the actor outputs and
/// the critic takes) and the environment's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ActionMap {
    output: PolicyOutput,
    low: Vec<f64>,
    high: Vec<f64>,
}

impl ActionMap {
    /// The map for `output` on `space`, which must be a box (finite for
    /// [`PolicyOutput::TanhScaled`]); `field` names the setting in errors.
    pub fn new(output: PolicyOutput, space: &ActionSpace, field: &str) -> Result<Self> {
        let ActionSpace::Box { low, high } = space else {
            return Err(Error::invalid(
                field,
                "deterministic policies need a continuous (box) action space, not an integer one",
            ));
        };
        if output == PolicyOutput::TanhScaled {
            let degenerate =
                |i: &usize| !(low[*i].is_finite() && high[*i].is_finite() && low[*i] < high[*i]);
            if let Some(i) = (0..low.len()).find(degenerate) {
                return Err(Error::invalid(
                    field,
                    format!(
                        "tanh scaling needs a finite, non-empty box, component {i} is [{}, {}]",
                        low[i], high[i]
                    ),
                ));
            }
        }
        Ok(ActionMap {
            output,
            low: low.clone(),
            high: high.clone(),
        })
    }

    pub fn output(&self) -> PolicyOutput {
        self.output
    }

    pub fn dim(&self) -> usize {
        self.low.len()
    }

    /// Bounds of component `i` in agent coordinates: the box for
    /// [`PolicyOutput::Linear`], [−1, 1] for [`PolicyOutput::TanhScaled`].
    pub fn agent_bounds(&self, i: usize) -> (f64, f64) {
        match self.output {
            PolicyOutput::Linear => (self.low[i], self.high[i]),
            PolicyOutput::TanhScaled => (-1.0, 1.0),
        }
    }

    /// Environment action for an agent action.
    pub fn to_env(&self, agent: &[f64], env: &mut [f64]) {
        match self.output {
            PolicyOutput::Linear => env.copy_from_slice(agent),
            PolicyOutput::TanhScaled => {
                for (i, (e, &u)) in env.iter_mut().zip(agent).enumerate() {
                    // Stable-Baselines3's `unscale_action`, same operations.
                    *e = self.low[i] + 0.5 * (u + 1.0) * (self.high[i] - self.low[i]);
                }
            }
        }
    }

    /// Agent action for an environment action (the inverse of [`ActionMap::to_env`]).
    pub fn to_agent(&self, env: &[f64], agent: &mut [f64]) {
        match self.output {
            PolicyOutput::Linear => agent.copy_from_slice(env),
            PolicyOutput::TanhScaled => {
                for (i, (u, &e)) in agent.iter_mut().zip(env).enumerate() {
                    *u = 2.0 * (e - self.low[i]) / (self.high[i] - self.low[i]) - 1.0;
                }
            }
        }
    }

    /// Clips an agent action to the action box.
    pub fn clip(&self, agent: &mut [f64]) {
        for (i, u) in agent.iter_mut().enumerate() {
            let (lo, hi) = self.agent_bounds(i);
            *u = u.clamp(lo, hi);
        }
    }
}

/// The architecture shared by both algorithms' configurations.
pub(crate) struct Networks<'a> {
    pub obs_dim: usize,
    pub action_dim: usize,
    pub actor_hidden: &'a [usize],
    pub critic_hidden: &'a [usize],
    pub hidden_activation: Activation,
    pub output: PolicyOutput,
    pub last_layer_init: Option<f64>,
}

impl Networks<'_> {
    /// `[obs, hidden.., action]` with the policy's output activation.
    pub fn actor_config(&self) -> MlpConfig {
        let sizes: Vec<usize> = std::iter::once(self.obs_dim)
            .chain(self.actor_hidden.iter().copied())
            .chain(std::iter::once(self.action_dim))
            .collect();
        self.with_init(MlpConfig::new(&sizes).output(self.output.activation()))
    }

    /// `[obs + action, hidden.., 1]` with identity output.
    pub fn critic_config(&self) -> MlpConfig {
        let sizes: Vec<usize> = std::iter::once(self.obs_dim + self.action_dim)
            .chain(self.critic_hidden.iter().copied())
            .chain(std::iter::once(1))
            .collect();
        self.with_init(MlpConfig::new(&sizes))
    }

    fn with_init(&self, config: MlpConfig) -> MlpConfig {
        let init = match self.last_layer_init {
            Some(bound) => Init::with_last_layer_bound(bound),
            None => Init::pytorch(),
        };
        config.hidden(self.hidden_activation).init(init)
    }
}

/// Checks the settings both algorithms share; errors name `prefix.field`.
pub(crate) fn validate_shared(
    prefix: &str,
    gamma: f64,
    hidden: [(&str, &[usize]); 2],
    last_layer_init: Option<f64>,
    optimizers: [(&str, &AdamConfig); 2],
) -> Result<()> {
    if !(0.0..=1.0).contains(&gamma) {
        return Err(Error::invalid(
            format!("{prefix}.gamma"),
            format!("{gamma} is not in [0, 1]"),
        ));
    }
    for (name, widths) in hidden {
        if let Some(i) = widths.iter().position(|&w| w == 0) {
            return Err(Error::invalid(
                format!("{prefix}.{name}"),
                format!("{widths:?} has width 0 at position {i}"),
            ));
        }
    }
    if let Some(bound) = last_layer_init {
        if !(bound.is_finite() && bound > 0.0) {
            return Err(Error::invalid(
                format!("{prefix}.last_layer_init"),
                format!("{bound} is not a positive finite number"),
            ));
        }
    }
    for (name, optimizer) in optimizers {
        optimizer
            .validate()
            .map_err(|error| rename_field(error, &format!("{prefix}.{name}"), "adam."))?;
    }
    Ok(())
}

/// Moves an [`Error::InvalidParameter`] under another field name: `adam.lr` → `ddpg.critic_optimizer.lr`.
pub(crate) fn rename_field(error: Error, prefix: &str, strip: &str) -> Error {
    match error {
        Error::InvalidParameter { field, reason } => Error::InvalidParameter {
            field: format!("{prefix}.{}", field.strip_prefix(strip).unwrap_or(&field)),
            reason,
        },
        other => other,
    }
}

/// A deterministic policy d(s; w) with the map to environment actions: a snapshot to act
/// with and to evaluate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeterministicPolicy {
    actor: Mlp,
    map: ActionMap,
}

/// Scratch for [`DeterministicPolicy::act`]: one observation row and its action.
#[derive(Clone, Debug)]
pub struct PolicyWorkspace {
    network: Workspace,
    agent_action: Vec<f64>,
}

impl DeterministicPolicy {
    pub fn new(actor: Mlp, map: ActionMap) -> Result<Self> {
        if actor.output_dim() != map.dim() {
            return Err(Error::invalid(
                "actor",
                format!(
                    "outputs {} values, the action space has {}",
                    actor.output_dim(),
                    map.dim()
                ),
            ));
        }
        Ok(DeterministicPolicy { actor, map })
    }

    /// For the algorithms, whose actor is built for their map.
    pub(crate) fn from_parts(actor: &Mlp, map: &ActionMap) -> Self {
        debug_assert_eq!(actor.output_dim(), map.dim());
        DeterministicPolicy {
            actor: actor.clone(),
            map: map.clone(),
        }
    }

    pub fn actor(&self) -> &Mlp {
        &self.actor
    }

    pub fn action_map(&self) -> &ActionMap {
        &self.map
    }

    pub fn workspace(&self) -> PolicyWorkspace {
        PolicyWorkspace {
            network: self.actor.workspace(1),
            agent_action: vec![0.0; self.map.dim()],
        }
    }

    /// Writes the environment action d(s; w) for `observation` into `action`.
    pub fn act(
        &self,
        ws: &mut PolicyWorkspace,
        observation: &[f32],
        action: &mut [f64],
    ) -> Result<()> {
        let output = self.actor.forward(observation, &mut ws.network)?;
        for (u, &y) in ws.agent_action.iter_mut().zip(output) {
            *u = f64::from(y);
        }
        self.map.to_env(&ws.agent_action, action);
        Ok(())
    }

    /// Evaluates the policy (no exploration noise) over seeded episodes, in parallel.
    pub fn evaluate<F>(&self, make_env: F, settings: &EvalSettings) -> Result<Evaluation>
    where
        F: Fn() -> Result<Box<dyn Env>> + Sync,
    {
        evaluate_with(
            make_env,
            || self.workspace(),
            |ws: &mut PolicyWorkspace, obs: &[f32], _: &mut Rng, action: &mut [f64]| {
                self.act(ws, obs, action)
            },
            settings,
        )
    }
}

/// Buffers for the actor–critic gradient steps on minibatches of up to `capacity` rows.
#[derive(Clone, Debug)]
pub(crate) struct ActorCriticStep {
    obs_dim: usize,
    action_dim: usize,
    /// `[s, a]` rows, the critic's input.
    critic_input: Vec<f32>,
    /// ∂L/∂q for the critic's output.
    output_grad: Vec<f32>,
    /// ∂L/∂[s, a], of which the action columns are read.
    critic_input_grad: Vec<f32>,
    action_grad: Vec<f32>,
    critic_grads: Vec<f32>,
    actor_grads: Vec<f32>,
    critic_ws: Workspace,
    actor_ws: Workspace,
}

/// What one critic step or actor step measured.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct UpdateStats {
    /// `(1/b) Σᵢ (q(sᵢ, aᵢ; θ) − yᵢ)²` before the critic's step.
    pub critic_loss: f64,
    /// `(1/b) Σᵢ q(sᵢ, d(sᵢ; w); θ)` before the actor's step (the quantity it ascends).
    pub actor_objective: f64,
}

impl ActorCriticStep {
    pub fn new(actor: &Mlp, critic: &Mlp, capacity: usize) -> Self {
        let obs_dim = actor.input_dim();
        let action_dim = actor.output_dim();
        let width = obs_dim + action_dim;
        ActorCriticStep {
            obs_dim,
            action_dim,
            critic_input: vec![0.0; capacity * width],
            output_grad: vec![0.0; capacity],
            critic_input_grad: vec![0.0; capacity * width],
            action_grad: vec![0.0; capacity * action_dim],
            critic_grads: critic.zero_grads(),
            actor_grads: actor.zero_grads(),
            critic_ws: critic.workspace(capacity),
            actor_ws: actor.workspace(capacity),
        }
    }

    fn rows(&self, observations: &[f32]) -> usize {
        observations.len() / self.obs_dim
    }

    /// Writes `[s, a]` rows into the critic input buffer and returns it.
    fn pair(&mut self, observations: &[f32], actions: &[f32]) -> &[f32] {
        let (o, m) = (self.obs_dim, self.action_dim);
        let rows = self.rows(observations);
        let input = &mut self.critic_input[..rows * (o + m)];
        for ((row, s), a) in input
            .chunks_exact_mut(o + m)
            .zip(observations.chunks_exact(o))
            .zip(actions.chunks_exact(m))
        {
            row[..o].copy_from_slice(s);
            row[o..].copy_from_slice(a);
        }
        input
    }

    /// The regression targets `yᵢ = rᵢ + γ·(1 − terminalᵢ)·q(s'ᵢ, d(s'ᵢ; w); θ)` for the
    /// given actor and critic (the current ones in NFQCA, the targets in DDPG).
    #[allow(clippy::too_many_arguments)]
    pub fn targets(
        &mut self,
        actor: &Mlp,
        critic: &Mlp,
        gamma: f64,
        next_observations: &[f32],
        rewards: &[f32],
        not_terminal: &[f32],
        targets: &mut [f32],
    ) -> Result<()> {
        // a'ᵢ ← d(s'ᵢ; w)
        let next_actions = actor.forward(next_observations, &mut self.actor_ws)?;
        let (o, m) = (self.obs_dim, self.action_dim);
        let input = &mut self.critic_input[..rewards.len() * (o + m)];
        for ((row, s), a) in input
            .chunks_exact_mut(o + m)
            .zip(next_observations.chunks_exact(o))
            .zip(next_actions.chunks_exact(m))
        {
            row[..o].copy_from_slice(s);
            row[o..].copy_from_slice(a);
        }
        // yᵢ ← rᵢ + γ q(s'ᵢ, a'ᵢ; θ)
        let next_values = critic.forward(input, &mut self.critic_ws)?;
        let gamma = gamma as f32;
        for (((y, &r), &alive), &q) in targets
            .iter_mut()
            .zip(rewards)
            .zip(not_terminal)
            .zip(next_values)
        {
            *y = r + gamma * alive * q;
        }
        Ok(())
    }

    /// The critic's `fit` step: one Adam step on `(1/b) Σᵢ (q(sᵢ, aᵢ; θ) − yᵢ)²`.
    /// Returns the loss before the step; a non-finite loss is an error naming `context`
    /// (and the parameters are left untouched).
    pub fn fit_critic(
        &mut self,
        critic: &mut Mlp,
        adam: &mut Adam,
        observations: &[f32],
        actions: &[f32],
        targets: &[f32],
        context: impl FnOnce() -> String,
    ) -> Result<f64> {
        let rows = self.rows(observations);
        self.pair(observations, actions);
        let Self {
            critic_input,
            output_grad,
            critic_grads,
            critic_ws,
            ..
        } = self;
        let input = &critic_input[..rows * (self.obs_dim + self.action_dim)];
        let q = critic.forward(input, critic_ws)?;
        let loss = mse_with_gradient(q, targets, &mut output_grad[..rows])?;
        if !loss.is_finite() {
            return Err(Error::Numerical {
                context: context(),
                reason: format!("critic loss is {loss}"),
            });
        }
        critic_grads.fill(0.0);
        critic.backward(critic_ws, &output_grad[..rows], critic_grads, None)?;
        adam.step(critic.params_mut(), critic_grads)?;
        Ok(loss)
    }

    /// The actor's step: one Adam step ascending `J(w) = (1/b) Σᵢ q(sᵢ, d(sᵢ; w); θ)`,
    /// whose gradient is `(1/b) Σᵢ ∇ₐq(sᵢ, a; θ)|_{a = d(sᵢ; w)} ∇_w d(sᵢ; w)`: the
    /// critic's input gradient at the action columns, backpropagated through the actor.
    /// Returns `J` before the step; a non-finite `J` is an error naming `context`.
    pub fn improve_actor(
        &mut self,
        actor: &mut Mlp,
        adam: &mut Adam,
        critic: &Mlp,
        observations: &[f32],
        context: impl FnOnce() -> String,
    ) -> Result<f64> {
        let rows = self.rows(observations);
        let (o, m) = (self.obs_dim, self.action_dim);
        let Self {
            critic_input,
            output_grad,
            critic_input_grad,
            action_grad,
            actor_grads,
            critic_ws,
            actor_ws,
            ..
        } = self;
        let actions = actor.forward(observations, actor_ws)?;
        let input = &mut critic_input[..rows * (o + m)];
        for ((row, s), a) in input
            .chunks_exact_mut(o + m)
            .zip(observations.chunks_exact(o))
            .zip(actions.chunks_exact(m))
        {
            row[..o].copy_from_slice(s);
            row[o..].copy_from_slice(a);
        }
        let q = critic.forward(input, critic_ws)?;
        let objective = q.iter().map(|&v| f64::from(v)).sum::<f64>() / rows as f64;
        if !objective.is_finite() {
            return Err(Error::Numerical {
                context: context(),
                reason: format!("actor objective (mean q) is {objective}"),
            });
        }
        // Descend −J: ∂(−J)/∂qᵢ = −1/b.
        let output_grad = &mut output_grad[..rows];
        output_grad.fill(-1.0 / rows as f32);
        let input_grad = &mut critic_input_grad[..rows * (o + m)];
        critic.input_gradient(critic_ws, output_grad, input_grad)?;
        let action_grad = &mut action_grad[..rows * m];
        for (g, row) in action_grad
            .chunks_exact_mut(m)
            .zip(input_grad.chunks_exact(o + m))
        {
            g.copy_from_slice(&row[o..]);
        }
        actor_grads.fill(0.0);
        actor.backward(actor_ws, action_grad, actor_grads, None)?;
        adam.step(actor.params_mut(), actor_grads)?;
        Ok(objective)
    }
}
