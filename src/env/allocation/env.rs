//! The allocation task as an [`Env`]: the state is the demand per site, each step ships
//! an integer allocation, earns the reward of [`AllocationModel::reward`], and moves the
//! demand by decay of what was left unmet plus Poisson arrivals. Episodes end only by
//! truncation after `horizon` periods.

use rand_distr::{Distribution, Poisson};

use super::model::{AllocationModel, AllocationParams};
use super::ID;
use crate::env::{validate_action, ActionSpace, Env, StepOutcome};
use crate::error::{Error, Result};
use crate::rng::{Rng, RunSeed};

/// A resource-allocation environment with integer action vectors.
#[derive(Clone, Debug)]
pub struct Allocation {
    model: AllocationModel,
    /// `Poisson(λ_j)` per site, `None` where `λ_j = 0` (rand_distr rejects a zero rate).
    arrivals: Vec<Option<Poisson<f64>>>,
    rng: Rng,
    demand: Vec<f64>,
    elapsed_steps: usize,
    started: bool,
}

fn stream(seed: u64) -> Rng {
    RunSeed(seed).stream("env")
}

impl Allocation {
    /// Check `params` and build the environment. Until the first seeded reset its random
    /// stream is the one of seed 0.
    pub fn new(params: AllocationParams) -> Result<Self> {
        let model = params.check()?;
        let arrivals = model
            .params()
            .arrival_rate
            .iter()
            .map(|&rate| {
                if rate == 0.0 {
                    return Ok(None);
                }
                Poisson::new(rate).map(Some).map_err(|e| {
                    Error::invalid("arrival_rate", format!("{rate} is not a Poisson rate: {e}"))
                })
            })
            .collect::<Result<_>>()?;
        let sites = model.sites();
        Ok(Allocation {
            model,
            arrivals,
            rng: stream(0),
            demand: vec![0.0; sites],
            elapsed_steps: 0,
            started: false,
        })
    }

    /// [`AllocationParams::small`]: 2 resources × 3 sites, 390 feasible actions.
    pub fn small() -> Result<Self> {
        Self::new(AllocationParams::small())
    }

    /// [`AllocationParams::large`]: 3 resources × 10 sites, about 10¹⁰ feasible actions.
    pub fn large() -> Result<Self> {
        Self::new(AllocationParams::large())
    }

    /// The checked parameters, action set and reward.
    pub fn model(&self) -> &AllocationModel {
        &self.model
    }

    /// Add one period's Poisson arrivals to `self.demand`.
    fn add_arrivals(&mut self) {
        for (d, arrival) in self.demand.iter_mut().zip(&self.arrivals) {
            if let Some(poisson) = arrival {
                *d += poisson.sample(&mut self.rng);
            }
        }
    }
}

impl Env for Allocation {
    fn id(&self) -> &str {
        ID
    }

    fn observation_dim(&self) -> usize {
        self.model.sites()
    }

    fn action_space(&self) -> &ActionSpace {
        self.model.action_space()
    }

    fn max_episode_steps(&self) -> Option<usize> {
        Some(self.model.params().horizon)
    }

    fn reset_into(&mut self, seed: Option<u64>, observation: &mut [f32]) {
        if let Some(seed) = seed {
            self.rng = stream(seed);
        }
        self.demand.fill(0.0);
        self.add_arrivals();
        self.elapsed_steps = 0;
        self.started = true;
        self.observe(observation);
    }

    fn step_into(&mut self, action: &[f64], next_observation: &mut [f32]) -> Result<StepOutcome> {
        if !self.started {
            return Err(Error::NotReset { env: ID.into() });
        }
        validate_action(ID, self.model.action_space(), action)?;
        let reward = self.model.reward_unchecked(&self.demand, action);
        self.model.carry_over_in_place(&mut self.demand, action);
        self.add_arrivals();
        // Saturating: a count given to `set_state` (a trace's `t`) may be usize::MAX, and
        // past the limit the flag is the same either way.
        self.elapsed_steps = self.elapsed_steps.saturating_add(1);
        self.observe(next_observation);
        Ok(StepOutcome {
            reward,
            terminated: false,
            truncated: self.elapsed_steps >= self.model.params().horizon,
        })
    }

    fn state(&self) -> &[f64] {
        &self.demand
    }

    fn set_state(&mut self, state: &[f64], elapsed_steps: usize) -> Result<()> {
        self.model.check_demand(state)?;
        self.demand.copy_from_slice(state);
        self.elapsed_steps = elapsed_steps;
        self.started = true;
        Ok(())
    }

    fn observe(&self, observation: &mut [f32]) {
        for (o, d) in observation.iter_mut().zip(&self.demand) {
            *o = *d as f32;
        }
    }
}
