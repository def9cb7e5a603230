//! The base points 𝓑 of fitted Q-iteration: transitions (s, a, r, s', terminated), stored
//! as a struct of arrays so the parallel target computation reads contiguous slices.
//!
//! States are the environment's *observations* (in f64): they are what a greedy policy
//! sees, so q(s, a; θ) is fitted on them (for the LQR the observation is the state; for
//! Pendulum-v1 it is `[cos θ, sin θ, θ̇]`). `terminated` is kept apart from truncation:
//! only a terminal s' has no bootstrap term in the target.
//!
//! Two seeded ways to collect them from an [`Env`]:
//! - [`collect_random_rollouts`]: episodes under uniformly random actions, as a behavior
//!   policy would give;
//! - [`sample_transitions`]: one step from each of a set of states drawn uniformly in a
//!   box through [`Env::set_state`] — the base points the chapter's `𝓑` suggests, covering
//!   the region of interest evenly whatever the dynamics.

use rand::{Rng as _, RngCore};

use crate::env::{ActionSpace, Env};
use crate::error::{Error, Result};
use crate::rng::{Rng, RunSeed};

/// Transitions (s, a, r, s', terminated), each field in its own array, row-major.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Transitions {
    state_dim: usize,
    action_dim: usize,
    states: Vec<f64>,
    actions: Vec<f64>,
    rewards: Vec<f64>,
    next_states: Vec<f64>,
    terminated: Vec<bool>,
}

impl Transitions {
    /// No transitions yet, for states of `state_dim` and actions of `action_dim` components.
    pub fn new(state_dim: usize, action_dim: usize) -> Self {
        Transitions {
            state_dim,
            action_dim,
            ..Transitions::default()
        }
    }

    /// Append one transition (lengths and finiteness checked).
    pub fn push(
        &mut self,
        state: &[f64],
        action: &[f64],
        reward: f64,
        next_state: &[f64],
        terminated: bool,
    ) -> Result<()> {
        check("state", state, self.state_dim)?;
        check("action", action, self.action_dim)?;
        check("next_state", next_state, self.state_dim)?;
        if !reward.is_finite() {
            return Err(Error::invalid("reward", format!("{reward} is not finite")));
        }
        self.states.extend_from_slice(state);
        self.actions.extend_from_slice(action);
        self.rewards.push(reward);
        self.next_states.extend_from_slice(next_state);
        self.terminated.push(terminated);
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.rewards.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rewards.is_empty()
    }

    pub fn state_dim(&self) -> usize {
        self.state_dim
    }

    pub fn action_dim(&self) -> usize {
        self.action_dim
    }

    pub fn state(&self, i: usize) -> &[f64] {
        &self.states[i * self.state_dim..(i + 1) * self.state_dim]
    }

    pub fn action(&self, i: usize) -> &[f64] {
        &self.actions[i * self.action_dim..(i + 1) * self.action_dim]
    }

    pub fn reward(&self, i: usize) -> f64 {
        self.rewards[i]
    }

    pub fn next_state(&self, i: usize) -> &[f64] {
        &self.next_states[i * self.state_dim..(i + 1) * self.state_dim]
    }

    pub fn terminated(&self, i: usize) -> bool {
        self.terminated[i]
    }

    /// All states, `len × state_dim` row-major.
    pub fn states(&self) -> &[f64] {
        &self.states
    }

    /// All actions, `len × action_dim` row-major.
    pub fn actions(&self) -> &[f64] {
        &self.actions
    }

    pub fn rewards(&self) -> &[f64] {
        &self.rewards
    }

    /// All next states, `len × state_dim` row-major.
    pub fn next_states(&self) -> &[f64] {
        &self.next_states
    }

    pub fn terminated_flags(&self) -> &[bool] {
        &self.terminated
    }
}

fn check(field: &str, v: &[f64], expected: usize) -> Result<()> {
    if v.len() != expected {
        return Err(Error::invalid(
            field,
            format!("has {} components, expected {expected}", v.len()),
        ));
    }
    if let Some(x) = v.iter().find(|x| !x.is_finite()) {
        return Err(Error::invalid(field, format!("has a non-finite entry {x}")));
    }
    Ok(())
}

/// A box `[low, high]` (finite, `low ≤ high` componentwise) to draw uniform samples from.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct UniformBox {
    pub low: Vec<f64>,
    pub high: Vec<f64>,
}

impl UniformBox {
    /// The box of a [`ActionSpace::Box`] (which must be finite).
    pub fn of_action_space(space: &ActionSpace) -> Result<Self> {
        match space {
            ActionSpace::Box { low, high } => {
                let b = UniformBox {
                    low: low.clone(),
                    high: high.clone(),
                };
                b.check("action_space", low.len())?;
                Ok(b)
            }
            ActionSpace::Integer(_) => Err(Error::invalid(
                "action_space",
                "uniform sampling needs a box action space, not an integer one",
            )),
        }
    }

    /// Check the box has `dim` finite, ordered components (`field` names it in errors).
    pub fn check(&self, field: &str, dim: usize) -> Result<()> {
        if self.low.len() != dim || self.high.len() != dim {
            return Err(Error::invalid(
                field,
                format!(
                    "low and high have {} and {} components, expected {dim}",
                    self.low.len(),
                    self.high.len()
                ),
            ));
        }
        for i in 0..dim {
            let (l, h) = (self.low[i], self.high[i]);
            if !(l.is_finite() && h.is_finite() && l <= h) {
                return Err(Error::invalid(
                    field,
                    format!("component {i} is [{l}, {h}], not a finite interval"),
                ));
            }
        }
        Ok(())
    }

    /// Draw one point into `out`.
    pub fn sample_into(&self, rng: &mut Rng, out: &mut [f64]) {
        for ((x, &l), &h) in out.iter_mut().zip(&self.low).zip(&self.high) {
            *x = if l < h { rng.gen_range(l..h) } else { l };
        }
    }
}

/// `steps` transitions from consecutive episodes of `env` under actions drawn uniformly
/// from its (finite) action box. Episodes are reset with seeds drawn from
/// `seed.stream("collect-reset")`, actions from `seed.stream("collect-actions")`.
pub fn collect_random_rollouts(
    env: &mut dyn Env,
    steps: usize,
    seed: RunSeed,
) -> Result<Transitions> {
    let actions = UniformBox::of_action_space(env.action_space())?;
    let (n, m) = (env.observation_dim(), actions.low.len());
    let mut reset_rng = seed.stream("collect-reset");
    let mut action_rng = seed.stream("collect-actions");
    let mut data = Transitions::new(n, m);
    let (mut obs, mut next_obs) = (vec![0.0f32; n], vec![0.0f32; n]);
    let (mut s, mut s_next, mut a) = (vec![0.0; n], vec![0.0; n], vec![0.0; m]);
    env.reset_into(Some(reset_rng.next_u64()), &mut obs);
    for _ in 0..steps {
        actions.sample_into(&mut action_rng, &mut a);
        let out = env.step_into(&a, &mut next_obs)?;
        widen(&obs, &mut s);
        widen(&next_obs, &mut s_next);
        data.push(&s, &a, out.reward, &s_next, out.terminated)?;
        if out.terminated || out.truncated {
            env.reset_into(Some(reset_rng.next_u64()), &mut obs);
        } else {
            std::mem::swap(&mut obs, &mut next_obs);
        }
    }
    Ok(data)
}

/// `count` one-step transitions: the environment is put in a state drawn uniformly from
/// `states` (a box over [`Env::state`], with no steps elapsed), then stepped with an
/// action drawn uniformly from `actions`, or from the environment's action box if `None`.
/// States come from `seed.stream("sample-states")`, actions from
/// `seed.stream("sample-actions")`.
pub fn sample_transitions(
    env: &mut dyn Env,
    states: &UniformBox,
    actions: Option<&UniformBox>,
    count: usize,
    seed: RunSeed,
) -> Result<Transitions> {
    let own_actions;
    let actions = match actions {
        Some(b) => b,
        None => {
            own_actions = UniformBox::of_action_space(env.action_space())?;
            &own_actions
        }
    };
    let state_dim = env.state().len();
    states.check("states", state_dim)?;
    actions.check("actions", env.action_space().dim())?;
    let (n, m) = (env.observation_dim(), actions.low.len());
    let mut state_rng = seed.stream("sample-states");
    let mut action_rng = seed.stream("sample-actions");
    let mut data = Transitions::new(n, m);
    let (mut obs, mut next_obs) = (vec![0.0f32; n], vec![0.0f32; n]);
    let (mut s, mut s_next, mut a) = (vec![0.0; n], vec![0.0; n], vec![0.0; m]);
    let mut internal = vec![0.0; state_dim];
    for _ in 0..count {
        states.sample_into(&mut state_rng, &mut internal);
        actions.sample_into(&mut action_rng, &mut a);
        env.set_state(&internal, 0)?;
        env.observe(&mut obs);
        let out = env.step_into(&a, &mut next_obs)?;
        widen(&obs, &mut s);
        widen(&next_obs, &mut s_next);
        data.push(&s, &a, out.reward, &s_next, out.terminated)?;
    }
    Ok(data)
}

fn widen(observation: &[f32], out: &mut [f64]) {
    for (o, &x) in out.iter_mut().zip(observation) {
        *o = f64::from(x);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::pendulum::Pendulum;

    #[test]
    fn rollouts_are_seeded_and_chain_observations() {
        let a = collect_random_rollouts(&mut Pendulum::new(), 450, RunSeed(1)).unwrap();
        let b = collect_random_rollouts(&mut Pendulum::new(), 450, RunSeed(1)).unwrap();
        let c = collect_random_rollouts(&mut Pendulum::new(), 450, RunSeed(2)).unwrap();
        assert_eq!(a, b);
        assert_ne!(a.rewards(), c.rewards());
        assert_eq!(a.len(), 450);
        // Within an episode s_{t+1} = s'_t; at the 200-step boundary a reset breaks the chain.
        for t in 0..449 {
            let chained = a.next_state(t) == a.state(t + 1);
            assert_eq!(chained, t != 199 && t != 399, "step {t}");
        }
        assert!(a.actions().iter().all(|x| (-2.0..=2.0).contains(x)));
        assert!(a.terminated_flags().iter().all(|t| !t));
    }

    #[test]
    fn sampled_states_cover_the_box() {
        let states = UniformBox {
            low: vec![-1.0, -8.0],
            high: vec![1.0, 8.0],
        };
        let data =
            sample_transitions(&mut Pendulum::new(), &states, None, 500, RunSeed(3)).unwrap();
        // s = [cos θ, sin θ, θ̇] with θ ∈ [−1, 1]: cos θ ≥ cos 1.
        assert!(data.states().chunks(3).all(|s| s[0] >= 1f64.cos() - 1e-6));
        let speeds: Vec<f64> = data.states().chunks(3).map(|s| s[2]).collect();
        assert!(speeds.iter().any(|&v| v > 6.0) && speeds.iter().any(|&v| v < -6.0));
        let bad = UniformBox {
            low: vec![0.0],
            high: vec![1.0],
        };
        assert!(matches!(
            sample_transitions(&mut Pendulum::new(), &bad, None, 5, RunSeed(3)),
            Err(Error::InvalidParameter { .. })
        ));
    }
}
