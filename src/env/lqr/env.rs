//! The LQR task as an [`Env`]: `s' = A s + B a + w`, reward `−(sᵀQs + aᵀRa)` of the
//! state and action before the step, observation = state as f32. Actions are never
//! clipped (see [`LqrParams::action_limit`](super::LqrParams::action_limit)); episodes end
//! only by truncation at the horizon.

use rand_distr::{Distribution, StandardNormal};

use super::linalg::mat_vec_into;
use super::params::{LqrParams, LqrSystem};
use super::riccati::RiccatiSolution;
use super::soft::SoftLqrSolution;
use crate::env::{validate_action, validate_state, ActionSpace, Env, StepOutcome};
use crate::error::{Error, Result};
use crate::rng::{Rng, RunSeed};

const ID: &str = "Lqr";

/// A linear–quadratic regulator environment.
#[derive(Clone, Debug)]
pub struct Lqr {
    system: LqrSystem,
    action_space: ActionSpace,
    rng: Rng,
    state: Vec<f64>,
    /// Workspace for `A s + B a` and the noise, so stepping allocates nothing.
    next_state: Vec<f64>,
    standard_normal: Vec<f64>,
    noise: Vec<f64>,
    elapsed_steps: usize,
    started: bool,
}

impl Lqr {
    /// Check `params` and build the environment. Until the first seeded reset its random
    /// stream is the one of seed 0.
    pub fn new(params: LqrParams) -> Result<Self> {
        let system = params.check()?;
        let (n, m) = (system.state_dim(), system.action_dim());
        let limit = system.action_limit();
        Ok(Lqr {
            action_space: ActionSpace::Box {
                low: vec![-limit; m],
                high: vec![limit; m],
            },
            system,
            rng: stream(0),
            state: vec![0.0; n],
            next_state: vec![0.0; n],
            standard_normal: vec![0.0; n],
            noise: vec![0.0; n],
            elapsed_steps: 0,
            started: false,
        })
    }

    /// The checked parameters.
    pub fn system(&self) -> &LqrSystem {
        &self.system
    }

    /// The exact hard solution (Riccati `P`, gain, q*, v*).
    pub fn solve(&self) -> Result<RiccatiSolution> {
        RiccatiSolution::solve(&self.system)
    }

    /// The exact entropy-regularized solution at temperature `beta`.
    pub fn solve_soft(&self, beta: f64) -> Result<SoftLqrSolution> {
        SoftLqrSolution::solve(&self.system, beta)
    }
}

fn stream(seed: u64) -> Rng {
    RunSeed(seed).stream("env")
}

impl Env for Lqr {
    fn id(&self) -> &str {
        ID
    }

    fn observation_dim(&self) -> usize {
        self.system.state_dim()
    }

    fn action_space(&self) -> &ActionSpace {
        &self.action_space
    }

    fn max_episode_steps(&self) -> Option<usize> {
        self.system.horizon()
    }

    fn reset_into(&mut self, seed: Option<u64>, observation: &mut [f32]) {
        if let Some(seed) = seed {
            self.rng = stream(seed);
        }
        self.system
            .sample_initial_into(&mut self.rng, &mut self.standard_normal, &mut self.state);
        self.elapsed_steps = 0;
        self.started = true;
        self.observe(observation);
    }

    fn step_into(&mut self, action: &[f64], next_observation: &mut [f32]) -> Result<StepOutcome> {
        if !self.started {
            return Err(Error::NotReset { env: ID.into() });
        }
        validate_action(ID, &self.action_space, action)?;
        let reward = -self.system.cost(&self.state, action);

        mat_vec_into(self.system.a(), &self.state, &mut self.next_state);
        mat_vec_into(self.system.b(), action, &mut self.noise);
        for (s, bu) in self.next_state.iter_mut().zip(&self.noise) {
            *s += bu;
        }
        if let Some(factor) = self.system.noise_factor() {
            for z in self.standard_normal.iter_mut() {
                *z = StandardNormal.sample(&mut self.rng);
            }
            mat_vec_into(factor, &self.standard_normal, &mut self.noise);
            for (s, w) in self.next_state.iter_mut().zip(&self.noise) {
                *s += w;
            }
        }
        std::mem::swap(&mut self.state, &mut self.next_state);
        // Saturating: a count given to `set_state` (a trace's `t`) may be usize::MAX, and
        // past the limit the flag is the same either way.
        self.elapsed_steps = self.elapsed_steps.saturating_add(1);
        self.observe(next_observation);
        Ok(StepOutcome {
            reward,
            terminated: false,
            truncated: self
                .system
                .horizon()
                .is_some_and(|h| self.elapsed_steps >= h),
        })
    }

    fn state(&self) -> &[f64] {
        &self.state
    }

    fn set_state(&mut self, state: &[f64], elapsed_steps: usize) -> Result<()> {
        validate_state(ID, self.system.state_dim(), state)?;
        if let Some(x) = state.iter().find(|x| !x.is_finite()) {
            return Err(Error::invalid(
                "state",
                format!("has a non-finite entry {x}"),
            ));
        }
        self.state.copy_from_slice(state);
        self.elapsed_steps = elapsed_steps;
        self.started = true;
        Ok(())
    }

    fn observe(&self, observation: &mut [f32]) {
        for (o, s) in observation.iter_mut().zip(&self.state) {
            *o = *s as f32;
        }
    }
}
