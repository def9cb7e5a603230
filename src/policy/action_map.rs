//! How a policy's output becomes an action: [`PolicyOutput`] and [`ActionMap`].
//!
//! The chapter's d(s; w) is any function of s ([`PolicyOutput::Linear`]: identity output,
//! the action is the output). In practice the output is often squashed by tanh into
//! [−1, 1]ᵐ and mapped affinely onto the action box ([`PolicyOutput::TanhScaled`]); the
//! critic, the replay buffer and the exploration noise then work in those normalized
//! coordinates ("agent coordinates"), as Stable-Baselines3 does, and only the
//! environment sees box units.

use serde::{Deserialize, Serialize};

use crate::env::ActionSpace;
use crate::error::{Error, Result};
use crate::nn::Activation;

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
