//! What the MLP-q FQI adapters (`fqi_mlp`, `amortized_fqi_mlp`) read from the environment
//! a grid names, rather than assume: the box of states base points are drawn from, the
//! action box, the observation and action sizes, and the evaluation length (the
//! environment's own time limit).

use policy_param::algo::UniformBox;
use policy_param::env::{self, ActionSpace, Env};
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
}

impl<'a> BoxTask<'a> {
    /// The task of environment `id`, and an instance of it to draw base points with.
    pub fn new(id: &'a str) -> Result<(Self, Box<dyn Env>), CellError> {
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
        };
        Ok((task, env))
    }

    /// A fresh instance per evaluation episode.
    pub fn make_env(&self) -> impl Fn() -> policy_param::Result<Box<dyn Env>> + Sync + Copy + '_ {
        move || env::make(self.id)
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
