//! What the MLP-q FQI adapters (`fqi_mlp`, `amortized_fqi_mlp`) read from the environment
//! a grid names, rather than assume: the box of states base points are drawn from, the
//! action box, the observation and action sizes, and the evaluation length (the
//! environment's own time limit).

use policy_param::algo::{sample_transitions, Transitions, UniformBox};
use policy_param::env::{self, ActionSpace, Env};
use policy_param::nn::{Mlp, MlpConfig};
use policy_param::qfunction::MlpQ;
use policy_param::rng::RunSeed;
use policy_param::train::EVAL_STEPS_WITHOUT_TIME_LIMIT;

use crate::error::CellError;

/// The environments with a bounded state box and a box action space: every one of
/// `env::ENVIRONMENTS` that qualifies (a test checks that none is missing).
pub const ENVIRONMENTS: &[&str] = &["Pendulum-v1", "MountainCarContinuous-v0"];

/// One environment as an MLP-q FQI adapter sees it.
pub(crate) struct BoxTask<'a> {
    pub id: &'a str,
    /// Where base-point states are drawn, uniformly.
    pub states: UniformBox,
    pub space: ActionSpace,
    pub observation_dim: usize,
    pub action_dim: usize,
    /// Steps of an evaluation episode: the time limit.
    pub eval_steps: usize,
    /// The instance base points are drawn with.
    env: Box<dyn Env>,
}

impl<'a> BoxTask<'a> {
    /// The task of environment `id`.
    pub fn new(id: &'a str) -> Result<Self, CellError> {
        let env = env::make(id)?;
        let Some((low, high)) = env.state_bounds() else {
            return Err(CellError::Failed(policy_param::Error::invalid(
                "environment",
                format!("{id} has no bounded state box to draw base points from"),
            )));
        };
        let task = BoxTask {
            id,
            states: UniformBox {
                low: low.to_vec(),
                high: high.to_vec(),
            },
            space: env.action_space().clone(),
            observation_dim: env.observation_dim(),
            action_dim: env.action_space().dim(),
            eval_steps: env
                .max_episode_steps()
                .unwrap_or(EVAL_STEPS_WITHOUT_TIME_LIMIT),
            env,
        };
        Ok(task)
    }

    /// `points` one-step base points: states uniform over the box, uniform actions, from
    /// the cell's `"data"` stream.
    pub fn base_points(&mut self, points: usize, seed: RunSeed) -> Result<Transitions, CellError> {
        let data = sample_transitions(
            self.env.as_mut(),
            &self.states,
            None,
            points,
            seed.child("data", 0),
        )?;
        Ok(data)
    }

    /// q(s, a; θ): an MLP on `[observation, a]` with two hidden layers of `width`,
    /// initialized from the cell's `"q-init"` stream.
    pub fn q_network(&self, width: usize, seed: RunSeed) -> Result<MlpQ, CellError> {
        let input = self.observation_dim + self.action_dim;
        let network = Mlp::new(
            &MlpConfig::new(&[input, width, width, 1]),
            &mut seed.stream("q-init"),
        )?;
        Ok(MlpQ::new(network, self.observation_dim)?)
    }

    /// A fresh instance per evaluation episode.
    pub fn make_env(&self) -> impl Fn() -> policy_param::Result<Box<dyn Env>> + Sync + Copy + 'a {
        let id = self.id;
        move || env::make(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bounded_box_environment_is_listed() {
        let qualifying: Vec<&str> = env::ENVIRONMENTS
            .iter()
            .filter(|e| {
                let env = (e.make)().unwrap();
                env.state_bounds().is_some()
                    && matches!(env.action_space(), ActionSpace::Box { .. })
            })
            .map(|e| e.id)
            .collect();
        assert_eq!(qualifying, ENVIRONMENTS);
    }
}
