//! A deterministic policy d(s; w) (an MLP) with its map to environment actions: what
//! NFQCA, DDPG and the amortized FQI decision rules hand out to act and to evaluate.

use serde::{Deserialize, Serialize};

use super::ActionMap;
use crate::env::Env;
use crate::error::{Error, Result};
use crate::eval::{evaluate_with, EvalSettings, Evaluation};
use crate::nn::{Mlp, Workspace};
use crate::rng::Rng;

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
