//! What NFQCA, DDPG and TD3 share: a deterministic policy d(s; w) and a critic q(s, a; θ),
//! both MLPs, and the two gradient steps the chapter writes for them.
//!
//! * [`PolicyOutput`], [`ActionMap`] and [`DeterministicPolicy`] live in
//!   [`crate::policy`] with the other policies, and are re-exported here.
//! * `ForwardPasses` (crate-private): the target `y = r + γ q(s', d(s'))` (or, for TD3,
//!   `r + γ minⱼ qⱼ(s', ã')` with a perturbed `ã'`), by forward passes alone.
//! * `ActorCriticStep` (crate-private): the critic's `fit` step (one Adam step on the mean
//!   squared error) and the actor's step (one Adam step ascending
//!   `(1/b) Σᵢ q(sᵢ, d(sᵢ; w); θ)` through the critic's input gradient ∇ₐq), on buffers
//!   allocated once; its `forward` passes compute the targets too.
//! * `Explorer` (crate-private): the exploring action `d(s; w) + 𝒩` of the online agents
//!   (DDPG's steps 6.1–6.2, TD3's).

use serde::{Deserialize, Serialize};

pub(crate) use crate::error::rename_field;
use crate::error::{Error, Result};
use crate::nn::{mse_with_gradient, Activation, Adam, AdamConfig, Init, Mlp, MlpConfig, Workspace};
use crate::noise::ExplorationNoise;
pub use crate::policy::{ActionMap, DeterministicPolicy, PolicyOutput, PolicyWorkspace};
use crate::replay::Minibatch;
use crate::rng::Rng;

/// The architecture shared by the algorithms' configurations.
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

/// Checks the settings the algorithms share; errors name `prefix.field` (for an
/// optimizer, `prefix.name.lr`, ...; an empty name gives `prefix.lr`).
pub(crate) fn validate_shared(
    prefix: &str,
    gamma: f64,
    hidden: &[(&str, &[usize])],
    last_layer_init: Option<f64>,
    optimizers: &[(&str, &AdamConfig)],
) -> Result<()> {
    if !(0.0..=1.0).contains(&gamma) {
        return Err(Error::invalid(
            format!("{prefix}.gamma"),
            format!("{gamma} is not in [0, 1]"),
        ));
    }
    for &(name, widths) in hidden {
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
    for &(name, optimizer) in optimizers {
        let field = match name {
            "" => prefix.to_string(),
            name => format!("{prefix}.{name}"),
        };
        optimizer
            .validate()
            .map_err(|error| rename_field(error, &field, "adam."))?;
    }
    Ok(())
}

/// The next states of a minibatch, with their rewards and `1 − terminal`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct NextStates<'a> {
    pub observations: &'a [f32],
    pub rewards: &'a [f32],
    pub not_terminal: &'a [f32],
}

impl<'a> NextStates<'a> {
    pub fn of(batch: &'a Minibatch) -> Self {
        NextStates {
            observations: batch.next_observations(),
            rewards: batch.rewards(),
            not_terminal: batch.not_terminal(),
        }
    }
}

/// Buffers for the forward passes of an actor and a critic on minibatches of up to
/// `capacity` rows: all that computing the targets needs, so an algorithm that computes
/// them beside its gradient steps (DDPG) keeps a second one and no unused gradients.
#[derive(Clone, Debug)]
pub(crate) struct ForwardPasses {
    obs_dim: usize,
    action_dim: usize,
    /// `[s, a]` rows, the critic's input.
    critic_input: Vec<f32>,
    critic_ws: Workspace,
    actor_ws: Workspace,
}

/// Buffers for the actor–critic gradient steps on minibatches of up to `capacity` rows.
#[derive(Clone, Debug)]
pub(crate) struct ActorCriticStep {
    /// The forward passes; also computes the targets.
    pub forward: ForwardPasses,
    /// ∂L/∂q for the critic's output.
    output_grad: Vec<f32>,
    /// ∂L/∂[s, a], of which the action columns are read.
    critic_input_grad: Vec<f32>,
    action_grad: Vec<f32>,
    critic_grads: Vec<f32>,
    actor_grads: Vec<f32>,
}

/// What one critic step or actor step measured.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct UpdateStats {
    /// `(1/b) Σᵢ (q(sᵢ, aᵢ; θ) − yᵢ)²` before the critic's step.
    pub critic_loss: f64,
    /// `(1/b) Σᵢ q(sᵢ, d(sᵢ; w); θ)` before the actor's step (the quantity it ascends).
    pub actor_objective: f64,
}

/// Reports the critic's loss alone (the actor's objective is a q value, not a loss to watch).
impl crate::algo::online::UpdateMetrics for UpdateStats {
    fn critic_loss(&self) -> f64 {
        self.critic_loss
    }
}

impl ForwardPasses {
    pub fn new(actor: &Mlp, critic: &Mlp, capacity: usize) -> Self {
        let obs_dim = actor.input_dim();
        let action_dim = actor.output_dim();
        ForwardPasses {
            obs_dim,
            action_dim,
            critic_input: vec![0.0; capacity * (obs_dim + action_dim)],
            critic_ws: critic.workspace(capacity),
            actor_ws: actor.workspace(capacity),
        }
    }

    fn rows(&self, observations: &[f32]) -> usize {
        observations.len() / self.obs_dim
    }

    /// Writes `[s, a]` rows into the critic input buffer, each `a` changed in place by
    /// `perturb(i, a)`, and returns it.
    fn pair<'a>(
        critic_input: &'a mut [f32],
        (o, m): (usize, usize),
        observations: &[f32],
        actions: &[f32],
        mut perturb: impl FnMut(usize, &mut [f32]),
    ) -> &'a [f32] {
        let input = &mut critic_input[..observations.len() / o * (o + m)];
        for (i, ((row, s), a)) in input
            .chunks_exact_mut(o + m)
            .zip(observations.chunks_exact(o))
            .zip(actions.chunks_exact(m))
            .enumerate()
        {
            row[..o].copy_from_slice(s);
            row[o..].copy_from_slice(a);
            perturb(i, &mut row[o..]);
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
        let next = NextStates {
            observations: next_observations,
            rewards,
            not_terminal,
        };
        self.min_targets(actor, |_, _| {}, &[critic], gamma, next, targets)
    }

    /// The regression targets `yᵢ = rᵢ + γ·(1 − terminalᵢ)·minⱼ qⱼ(s'ᵢ, ã'ᵢ)` over the
    /// given critics, where `ã'ᵢ` is `d(s'ᵢ; w)` changed in place by `perturb(i, ã'ᵢ)`
    /// (TD3's target policy smoothing; with one critic and no perturbation, [`Self::targets`]).
    pub fn min_targets(
        &mut self,
        actor: &Mlp,
        perturb: impl FnMut(usize, &mut [f32]),
        critics: &[&Mlp],
        gamma: f64,
        next: NextStates<'_>,
        targets: &mut [f32],
    ) -> Result<()> {
        // a'ᵢ ← d(s'ᵢ; w), perturbed
        let next_actions = actor.forward(next.observations, &mut self.actor_ws)?;
        let dims = (self.obs_dim, self.action_dim);
        let input = Self::pair(
            &mut self.critic_input,
            dims,
            next.observations,
            next_actions,
            perturb,
        );
        // yᵢ ← rᵢ + γ minⱼ qⱼ(s'ᵢ, a'ᵢ)
        let gamma = gamma as f32;
        for (j, critic) in critics.iter().enumerate() {
            let next_values = critic.forward(input, &mut self.critic_ws)?;
            for (y, &q) in targets.iter_mut().zip(next_values) {
                if j == 0 || q < *y {
                    *y = q;
                }
            }
        }
        for ((y, &r), &alive) in targets.iter_mut().zip(next.rewards).zip(next.not_terminal) {
            *y = r + gamma * alive * *y;
        }
        Ok(())
    }
}

impl ActorCriticStep {
    pub fn new(actor: &Mlp, critic: &Mlp, capacity: usize) -> Self {
        let forward = ForwardPasses::new(actor, critic, capacity);
        let width = forward.obs_dim + forward.action_dim;
        ActorCriticStep {
            output_grad: vec![0.0; capacity],
            critic_input_grad: vec![0.0; capacity * width],
            action_grad: vec![0.0; capacity * forward.action_dim],
            critic_grads: critic.zero_grads(),
            actor_grads: actor.zero_grads(),
            forward,
        }
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
        self.critic_forward(critic, observations, actions)?;
        self.critic_step(critic, adam, targets, context)
    }

    /// The first half of [`Self::fit_critic`]: q(sᵢ, aᵢ; θ) on the minibatch, kept in the
    /// critic's workspace for [`Self::critic_step`]. It does not read the targets, so it
    /// may run beside their computation.
    pub fn critic_forward(
        &mut self,
        critic: &Mlp,
        observations: &[f32],
        actions: &[f32],
    ) -> Result<()> {
        let f = &mut self.forward;
        let input = ForwardPasses::pair(
            &mut f.critic_input,
            (f.obs_dim, f.action_dim),
            observations,
            actions,
            |_, _| {},
        );
        critic.forward(input, &mut f.critic_ws)?;
        Ok(())
    }

    /// The second half of [`Self::fit_critic`], after [`Self::critic_forward`] with the
    /// same θ: the loss against `targets`, its gradient, one Adam step.
    pub fn critic_step(
        &mut self,
        critic: &mut Mlp,
        adam: &mut Adam,
        targets: &[f32],
        context: impl FnOnce() -> String,
    ) -> Result<f64> {
        let rows = targets.len();
        let Self {
            forward: ForwardPasses { critic_ws, .. },
            output_grad,
            critic_grads,
            ..
        } = self;
        let q = critic_ws.output();
        if q.len() != rows {
            return Err(Error::invalid(
                "targets",
                format!(
                    "{rows} targets for the {} rows of the critic's forward pass",
                    q.len()
                ),
            ));
        }
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
        self.actor_forward(actor, observations)?;
        self.actor_step(actor, adam, critic, observations, context)
    }

    /// The first half of [`Self::improve_actor`]: d(sᵢ; w) on the minibatch, kept in the
    /// actor's workspace for [`Self::actor_step`]. It reads neither critic, so it may
    /// run before or beside the critic's step.
    pub fn actor_forward(&mut self, actor: &Mlp, observations: &[f32]) -> Result<()> {
        actor.forward(observations, &mut self.forward.actor_ws)?;
        Ok(())
    }

    /// The second half of [`Self::improve_actor`], after [`Self::actor_forward`] on the
    /// same `observations` with the same w: q at the actions it computed, then the step.
    pub fn actor_step(
        &mut self,
        actor: &mut Mlp,
        adam: &mut Adam,
        critic: &Mlp,
        observations: &[f32],
        context: impl FnOnce() -> String,
    ) -> Result<f64> {
        let rows = self.forward.rows(observations);
        let Self {
            forward:
                ForwardPasses {
                    obs_dim: o,
                    action_dim: m,
                    critic_input,
                    critic_ws,
                    actor_ws,
                },
            output_grad,
            critic_input_grad,
            action_grad,
            actor_grads,
            ..
        } = self;
        let (o, m) = (*o, *m);
        let actions = actor_ws.output();
        if actions.len() != rows * m {
            return Err(Error::invalid(
                "observations",
                format!(
                    "{rows} rows, the actor's forward pass gave {} actions",
                    actions.len() / m
                ),
            ));
        }
        let input = ForwardPasses::pair(critic_input, (o, m), observations, actions, |_, _| {});
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

/// The exploring action of DDPG's steps 6.1–6.2 (and TD3's): `a = d(s; w) + 𝒩`, in agent
/// coordinates, clipped to the box if asked. The noise process 𝒩 and its stream are
/// checkpoint state; the buffers are allocated once.
#[derive(Clone, Debug)]
pub(crate) struct Explorer {
    pub noise: ExplorationNoise,
    pub rng: Rng,
    sample: Vec<f64>,
    ws: Workspace,
}

impl Explorer {
    pub fn new(noise: ExplorationNoise, rng: Rng, actor: &Mlp) -> Self {
        Explorer {
            sample: vec![0.0; noise.dim()],
            ws: actor.workspace(1),
            noise,
            rng,
        }
    }

    /// Writes `d(s; w) + 𝒩` at `observation` into `action` (during warm-up, `action`
    /// already holds a uniform draw, which takes the place of `d(s; w)`), clipped to the
    /// box when `clip`.
    pub fn act(
        &mut self,
        actor: &Mlp,
        map: &ActionMap,
        clip: bool,
        observation: &[f32],
        warming_up: bool,
        action: &mut [f64],
    ) -> Result<()> {
        if !warming_up {
            let output = actor.forward(observation, &mut self.ws)?;
            for (u, &y) in action.iter_mut().zip(output) {
                *u = f64::from(y);
            }
        }
        self.noise.sample_into(&mut self.rng, &mut self.sample);
        for (u, n) in action.iter_mut().zip(&self.sample) {
            *u += n;
        }
        if clip {
            map.clip(action);
        }
        Ok(())
    }
}

/// What the DDPG and TD3 unit tests share: a probe minibatch and step 6.6's targets
/// computed by plain forward passes.
#[cfg(test)]
pub(crate) mod testing {
    use rand::Rng as _;

    use crate::nn::Mlp;
    use crate::replay::{Minibatch, Transition, Transitions};
    use crate::rng::RunSeed;

    /// A minibatch of 16 random Pendulum-shaped transitions (every fifth terminal).
    pub(crate) fn batch(seed: u64) -> Minibatch {
        let mut rng = RunSeed(seed).stream("batch");
        let mut table = Transitions::new(3, 1).unwrap();
        let mut draw =
            |n: usize| -> Vec<f32> { (0..n).map(|_| rng.gen_range(-1.0..1.0)).collect() };
        for i in 0..16 {
            let (s, a, s2, r) = (draw(3), draw(1), draw(3), draw(1));
            table
                .push(Transition {
                    observation: &s,
                    action: &a,
                    reward: r[0],
                    next_observation: &s2,
                    terminal: i % 5 == 0,
                })
                .unwrap();
        }
        let mut batch = Minibatch::new(3, 1, 16);
        table
            .gather(&(0..16).collect::<Vec<_>>(), &mut batch)
            .unwrap();
        batch
    }

    /// yᵢ = rᵢ + γ (1 − doneᵢ) minⱼ qⱼ(s'ᵢ, d(s'ᵢ; w)) by plain forward passes of `actor`
    /// and each of `critics` (actions in the actor's coordinates, unperturbed).
    pub(crate) fn targets_by_hand(
        actor: &Mlp,
        critics: &[&Mlp],
        gamma: f64,
        batch: &Minibatch,
    ) -> Vec<f32> {
        let next = batch.next_observations();
        let b = batch.rewards().len();
        let mut actor_ws = actor.workspace(b);
        let actions = actor.forward(next, &mut actor_ws).unwrap().to_vec();
        let mut input = Vec::with_capacity(b * 4);
        for i in 0..b {
            input.extend_from_slice(&next[i * 3..(i + 1) * 3]);
            input.push(actions[i]);
        }
        let mut q = vec![f32::INFINITY; b];
        for critic in critics {
            let mut critic_ws = critic.workspace(b);
            let values = critic.forward(&input, &mut critic_ws).unwrap();
            for (m, &v) in q.iter_mut().zip(values) {
                *m = m.min(v);
            }
        }
        (0..b)
            .map(|i| batch.rewards()[i] + gamma as f32 * batch.not_terminal()[i] * q[i])
            .collect()
    }
}
