//! Environments behind one [`Env`] abstraction.
//!
//! Two kinds of action space cover the chapter: continuous boxes (Pendulum-v1,
//! MountainCarContinuous-v0, LQR) and integer vectors under linear constraints
//! (Allocation), where maximizing over actions is itself an integer program.
//!
//! The required methods write into caller buffers so that training loops never
//! allocate per step; [`Env::reset`] and [`Env::step`] are owned-value conveniences
//! for notebooks and tests. Reset follows Gymnasium: `Some(seed)` reseeds the
//! environment's own random stream, `None` continues it.

pub mod allocation;
pub mod lqr;
pub mod mountain_car;
mod numpy_scalar;
pub mod pendulum;
pub mod trace;

use crate::error::{Error, Result};

/// One row of [`ENVIRONMENTS`]: an id and how to build it with its default settings.
pub struct Registered {
    pub id: &'static str,
    pub make: fn() -> Result<Box<dyn Env>>,
}

/// Every environment: what [`make`] builds and what its error lists. Adding an
/// environment is its module and one row here.
pub const ENVIRONMENTS: &[Registered] = &[
    Registered {
        id: pendulum::ID,
        make: || Ok(Box::new(pendulum::Pendulum::new())),
    },
    Registered {
        id: mountain_car::ID,
        make: || Ok(Box::new(mountain_car::MountainCar::new())),
    },
    Registered {
        id: "Lqr",
        make: || {
            Ok(Box::new(
                lqr::Lqr::new(lqr::LqrParams::double_integrator())?,
            ))
        },
    },
    Registered {
        id: "Allocation",
        make: || Ok(Box::new(allocation::Allocation::small()?)),
    },
];

/// The ids of [`ENVIRONMENTS`], in order.
pub const KNOWN_ENVS: &[&str] = &{
    let mut ids = [""; ENVIRONMENTS.len()];
    let mut i = 0;
    while i < ids.len() {
        ids[i] = ENVIRONMENTS[i].id;
        i += 1;
    }
    ids
};

/// One linear constraint `Σ coefficients[i]·x[i] ≤ bound` on an integer action.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LinearConstraint {
    pub name: String,
    pub coefficients: Vec<f64>,
    pub bound: f64,
}

/// Integer action vectors `x` with `lower ≤ x ≤ upper` and every constraint satisfied.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct IntegerSpace {
    pub lower: Vec<i64>,
    pub upper: Vec<i64>,
    pub constraints: Vec<LinearConstraint>,
}

/// The actions an environment accepts.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum ActionSpace {
    /// Real vectors in `[low, high]` (Gymnasium's `Box`). Out-of-box actions are accepted
    /// and handled as the environment specifies (Gymnasium clips them).
    Box { low: Vec<f64>, high: Vec<f64> },
    /// Integer vectors under bounds and linear constraints.
    Integer(IntegerSpace),
}

impl ActionSpace {
    /// Number of action components.
    pub fn dim(&self) -> usize {
        match self {
            ActionSpace::Box { low, .. } => low.len(),
            ActionSpace::Integer(space) => space.lower.len(),
        }
    }
}

impl IntegerSpace {
    /// Why `x` is not a feasible action, or `None` if it is. Values are written with
    /// `{:?}` (shortest round trip): `1e300` in five characters, not three hundred.
    pub fn violation(&self, x: &[f64]) -> Option<String> {
        for (i, &xi) in x.iter().enumerate() {
            if xi.fract() != 0.0 {
                return Some(format!("component {i} is {xi:?}, not an integer"));
            }
            if xi < self.lower[i] as f64 || xi > self.upper[i] as f64 {
                return Some(format!(
                    "component {i} is {xi:?}, outside [{}, {}]",
                    self.lower[i], self.upper[i]
                ));
            }
        }
        for c in &self.constraints {
            let lhs: f64 = c.coefficients.iter().zip(x).map(|(a, b)| a * b).sum();
            if lhs > c.bound + 1e-9 {
                return Some(format!("constraint {:?}: {lhs:?} > {}", c.name, c.bound));
            }
        }
        None
    }
}

/// What a step returns besides the next observation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepOutcome {
    pub reward: f64,
    /// The episode reached a terminal state (MountainCar's goal).
    pub terminated: bool,
    /// The episode was cut by the time limit.
    pub truncated: bool,
}

/// An owned step result, for notebooks and tests.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    pub observation: Vec<f32>,
    pub reward: f64,
    pub terminated: bool,
    pub truncated: bool,
}

/// A Markov decision process that can be reset, stepped, and put in any state.
pub trait Env: Send {
    /// The environment id (Gymnasium's id where there is one).
    fn id(&self) -> &str;
    /// Length of the observation vector.
    fn observation_dim(&self) -> usize;
    fn action_space(&self) -> &ActionSpace;
    /// Time limit after which `truncated` is set (`None`: no limit).
    fn max_episode_steps(&self) -> Option<usize>;
    /// `(low, high)`: the box every reachable internal state lies in, where fitted
    /// Q-iteration draws its base points (`None`: unbounded, as LQR's, or not a box).
    fn state_bounds(&self) -> Option<(&'static [f64], &'static [f64])> {
        None
    }

    /// Start an episode. `Some(seed)` reseeds the environment's stream, `None` continues it.
    fn reset_into(&mut self, seed: Option<u64>, observation: &mut [f32]);
    /// Apply `action`; write the next observation.
    fn step_into(&mut self, action: &[f64], next_observation: &mut [f32]) -> Result<StepOutcome>;

    /// The internal state, in f64 as Gymnasium keeps it.
    fn state(&self) -> &[f64];
    /// Put the environment in `state` with `elapsed_steps` already taken in the episode
    /// (used to replay Gymnasium traces and to evaluate Bellman targets at base points).
    fn set_state(&mut self, state: &[f64], elapsed_steps: usize) -> Result<()>;
    /// The observation of the current state.
    fn observe(&self, observation: &mut [f32]);

    /// [`Env::reset_into`] returning an owned observation.
    fn reset(&mut self, seed: Option<u64>) -> Vec<f32> {
        let mut obs = vec![0.0; self.observation_dim()];
        self.reset_into(seed, &mut obs);
        obs
    }

    /// [`Env::step_into`] returning an owned [`Step`].
    fn step(&mut self, action: &[f64]) -> Result<Step> {
        let mut observation = vec![0.0; self.observation_dim()];
        let out = self.step_into(action, &mut observation)?;
        Ok(Step {
            observation,
            reward: out.reward,
            terminated: out.terminated,
            truncated: out.truncated,
        })
    }
}

/// Check an action's length, finiteness and (for integer spaces) feasibility.
pub fn validate_action(env: &str, space: &ActionSpace, action: &[f64]) -> Result<()> {
    if action.len() != space.dim() {
        return Err(Error::ActionDim {
            env: env.to_string(),
            expected: space.dim(),
            got: action.len(),
        });
    }
    if let Some((index, &value)) = action.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(Error::NonFiniteAction {
            env: env.to_string(),
            index,
            value,
        });
    }
    if let ActionSpace::Integer(space) = space {
        if let Some(reason) = space.violation(action) {
            return Err(Error::InfeasibleAction {
                env: env.to_string(),
                reason,
            });
        }
    }
    Ok(())
}

/// Check a state's length (for [`Env::set_state`]).
pub fn validate_state(env: &str, expected: usize, state: &[f64]) -> Result<()> {
    if state.len() != expected {
        return Err(Error::StateDim {
            env: env.to_string(),
            expected,
            got: state.len(),
        });
    }
    Ok(())
}

/// Build an environment by id, with its default settings.
pub fn make(id: &str) -> Result<Box<dyn Env>> {
    match ENVIRONMENTS.iter().find(|e| e.id == id) {
        Some(e) => (e.make)(),
        None => Err(Error::UnknownEnv {
            id: id.to_string(),
            known: KNOWN_ENVS,
        }),
    }
}
