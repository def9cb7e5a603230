//! Gymnasium's `MountainCarContinuous-v0`, reproduced operation by operation.
//!
//! An under-powered car in a valley must rock back and forth to reach the flag on the
//! right hill. Everything follows Gymnasium 1.4
//! (`gymnasium/envs/classic_control/continuous_mountain_car.py` wrapped in
//! `TimeLimit(999)`), checked against the committed traces in `tests/data/traces/`:
//!
//! - force = `min(max(a, -1), 1)`; `v ← v + force·0.0015 − 0.0025·cos(3x)`, clipped to
//!   `±0.07`; `x ← x + v`, clipped to `[-1.2, 0.6]`; at the left wall a negative speed
//!   becomes 0;
//! - terminated when `x ≥ 0.45` and `v ≥ goal_velocity` (0 by default);
//! - reward = `−0.1·a²` of the **unclipped** action, plus 100 on termination.
//! - like Gymnasium's `TimeLimit`, stepping on after the episode ended (termination or
//!   truncation) is allowed: the dynamics continue and `truncated` stays set until a reset;
//!   a step before any reset or [`Env::set_state`] is [`Error::NotReset`].
//!
//! Gymnasium stores the state after a step as a `float32` array but draws the reset
//! state in `float64`, and NumPy 2 then computes parts of the next step in `float32`
//! (see `src/env/numpy_scalar.rs`). This module keeps the state in `f64` and tracks which
//! of the two precisions Gymnasium would hold it in, so that replaying a Gymnasium
//! trace reproduces every bit of the observation and every flag. The agreement is with
//! Gymnasium stepped with `float64` actions, as the traces do.
//!
//! Reset draws the position from `U(-0.6, -0.4)` with zero speed, like Gymnasium, but
//! from this crate's ChaCha stream (NumPy's PCG64 draws are not reproduced): the
//! initial-state *distribution* matches, the individual draws do not.

use rand::Rng as _;

use super::numpy_scalar::{pow2, Scalar};
use super::{validate_action, validate_state, ActionSpace, Env, StepOutcome};
use crate::error::{Error, Result};
use crate::rng::{Rng, RunSeed};

/// Gymnasium's id.
pub const ID: &str = "MountainCarContinuous-v0";

const MIN_ACTION: f64 = -1.0;
const MAX_ACTION: f64 = 1.0;
/// The left wall.
pub const MIN_POSITION: f64 = -1.2;
pub const MAX_POSITION: f64 = 0.6;
pub const MAX_SPEED: f64 = 0.07;
pub const GOAL_POSITION: f64 = 0.45;
const POWER: f64 = 0.0015;
const RESET_POSITION: (f64, f64) = (-0.6, -0.4);

/// The settings `gymnasium.make("MountainCarContinuous-v0", ...)` accepts, with
/// Gymnasium's defaults.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MountainCarParams {
    /// The speed the car must have, at least, on reaching the goal position.
    pub goal_velocity: f64,
    /// `TimeLimit`: `truncated` is set once this many steps have been taken.
    pub max_episode_steps: usize,
}

impl Default for MountainCarParams {
    fn default() -> Self {
        MountainCarParams {
            goal_velocity: 0.0,
            max_episode_steps: 999,
        }
    }
}

/// The precision Gymnasium holds the state in: `float64` right after a reset,
/// `float32` after every step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum StateDtype {
    F32,
    F64,
}

/// The continuous mountain car task.
#[derive(Clone, Debug)]
pub struct MountainCar {
    params: MountainCarParams,
    action_space: ActionSpace,
    /// `[position, velocity]`.
    state: [f64; 2],
    dtype: StateDtype,
    /// Steps taken since the last reset (`TimeLimit._elapsed_steps`).
    elapsed_steps: usize,
    /// Gymnasium's `OrderEnforcing`: no step before the first reset.
    has_state: bool,
    rng: Rng,
}

impl MountainCar {
    /// Gymnasium's defaults (goal velocity 0, 999 steps). Until the first seeded reset,
    /// the reset stream is the one of seed 0, so unseeded runs are reproducible too.
    pub fn new() -> Self {
        Self::build(MountainCarParams::default())
    }

    /// Custom settings, checked: `goal_velocity` finite, `max_episode_steps` at least 1.
    pub fn with_params(params: MountainCarParams) -> Result<Self> {
        if !params.goal_velocity.is_finite() {
            return Err(Error::invalid(
                "goal_velocity",
                format!("{} is not finite", params.goal_velocity),
            ));
        }
        if params.max_episode_steps == 0 {
            return Err(Error::invalid("max_episode_steps", "must be at least 1"));
        }
        Ok(Self::build(params))
    }

    fn build(params: MountainCarParams) -> Self {
        MountainCar {
            params,
            action_space: ActionSpace::Box {
                low: vec![MIN_ACTION],
                high: vec![MAX_ACTION],
            },
            state: [0.0; 2],
            dtype: StateDtype::F64,
            elapsed_steps: 0,
            has_state: false,
            rng: RunSeed(0).stream(ID),
        }
    }

    pub fn params(&self) -> &MountainCarParams {
        &self.params
    }

    /// Steps taken since the last reset (or the count given to [`Env::set_state`]).
    pub fn elapsed_steps(&self) -> usize {
        self.elapsed_steps
    }

    /// The state as a NumPy scalar of Gymnasium's precision.
    fn scalar(&self, x: f64) -> Scalar {
        match self.dtype {
            StateDtype::F32 => Scalar::F32(x as f32),
            StateDtype::F64 => Scalar::F64(x),
        }
    }
}

impl Default for MountainCar {
    fn default() -> Self {
        Self::new()
    }
}

/// `min(max(a, lo), hi)` with Python's builtins: the action itself (a `float64` NumPy
/// scalar) when within bounds, else the bound (a Python float).
fn python_clip(a: f64, lo: f64, hi: f64) -> Scalar {
    if lo > a {
        Scalar::Python(lo)
    } else if hi < a {
        Scalar::Python(hi)
    } else {
        Scalar::F64(a)
    }
}

impl Env for MountainCar {
    fn id(&self) -> &str {
        ID
    }

    fn observation_dim(&self) -> usize {
        2
    }

    fn action_space(&self) -> &ActionSpace {
        &self.action_space
    }

    /// Position in [−1.2, 0.6] and velocity in [−0.07, 0.07], both clipped.
    fn state_bounds(&self) -> Option<(&'static [f64], &'static [f64])> {
        Some((&[MIN_POSITION, -MAX_SPEED], &[MAX_POSITION, MAX_SPEED]))
    }

    fn max_episode_steps(&self) -> Option<usize> {
        Some(self.params.max_episode_steps)
    }

    fn reset_into(&mut self, seed: Option<u64>, observation: &mut [f32]) {
        if let Some(seed) = seed {
            self.rng = RunSeed(seed).stream(ID);
        }
        let (low, high) = RESET_POSITION;
        // NumPy's uniform(low, high) = low + (high - low)·U[0, 1).
        let position = low + (high - low) * self.rng.gen::<f64>();
        self.state = [position, 0.0];
        self.dtype = StateDtype::F64;
        self.elapsed_steps = 0;
        self.has_state = true;
        self.observe(observation);
    }

    fn step_into(&mut self, action: &[f64], next_observation: &mut [f32]) -> Result<StepOutcome> {
        use Scalar::Python;

        validate_action(ID, &self.action_space, action)?;
        if !self.has_state {
            return Err(Error::NotReset { env: ID.into() });
        }
        if next_observation.len() != 2 {
            return Err(Error::invalid(
                "next_observation",
                format!(
                    "buffer has {} slots, {ID} observations have 2",
                    next_observation.len()
                ),
            ));
        }
        let a = action[0];
        let mut position = self.scalar(self.state[0]);
        let mut velocity = self.scalar(self.state[1]);

        // Gymnasium's lines, with NumPy's precision rules (see numpy_scalar).
        let force = python_clip(a, MIN_ACTION, MAX_ACTION);
        let gravity = 0.0025 * position.scale(3.0).value().cos();
        let acceleration = match force {
            Scalar::F64(f) => Scalar::F64(f * POWER - gravity),
            _ => Python(force.value() * POWER - gravity),
        };
        velocity = velocity.add(acceleration);
        if velocity.np_gt(Python(MAX_SPEED)) {
            velocity = Python(MAX_SPEED);
        }
        if velocity.np_lt(Python(-MAX_SPEED)) {
            velocity = Python(-MAX_SPEED);
        }
        position = position.add(velocity);
        if position.np_gt(Python(MAX_POSITION)) {
            position = Python(MAX_POSITION);
        }
        if position.np_lt(Python(MIN_POSITION)) {
            position = Python(MIN_POSITION);
        }
        if position.np_eq(Python(MIN_POSITION)) && velocity.np_lt(Python(0.0)) {
            velocity = Python(0.0);
        }
        let terminated = position.np_ge(Python(GOAL_POSITION))
            && velocity.np_ge(Python(self.params.goal_velocity));

        let mut reward = if terminated { 100.0 } else { 0.0 };
        reward -= pow2(a) * 0.1;

        self.state = [f64::from(position.to_f32()), f64::from(velocity.to_f32())];
        self.dtype = StateDtype::F32;
        // TimeLimit: stepping on past the limit (or the goal) is allowed.
        // Saturating: a count given to `set_state` (a trace's `t`) may be usize::MAX, and
        // past the limit the flag is the same either way.
        self.elapsed_steps = self.elapsed_steps.saturating_add(1);
        self.observe(next_observation);
        Ok(StepOutcome {
            reward,
            terminated,
            truncated: self.elapsed_steps >= self.params.max_episode_steps,
        })
    }

    fn state(&self) -> &[f64] {
        &self.state
    }

    /// A state whose components are both `f32` numbers is held as Gymnasium holds the
    /// state after a step (`float32`); any other as after a reset (`float64`).
    fn set_state(&mut self, state: &[f64], elapsed_steps: usize) -> Result<()> {
        validate_state(ID, 2, state)?;
        if let Some(x) = state.iter().find(|x| !x.is_finite()) {
            return Err(Error::invalid("state", format!("{x} is not finite")));
        }
        let is_f32 = |x: f64| f64::from(x as f32) == x;
        self.state = [state[0], state[1]];
        self.dtype = if state.iter().all(|&x| is_f32(x)) {
            StateDtype::F32
        } else {
            StateDtype::F64
        };
        self.elapsed_steps = elapsed_steps;
        self.has_state = true;
        Ok(())
    }

    /// `[position, velocity]` in `f32`. Panics if `observation` does not have 2 slots.
    fn observe(&self, observation: &mut [f32]) {
        observation.copy_from_slice(&[self.state[0] as f32, self.state[1] as f32]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(position: f64, velocity: f64) -> MountainCar {
        let mut env = MountainCar::new();
        env.set_state(&[position, velocity], 0).unwrap();
        env
    }

    #[test]
    fn force_is_clipped_but_the_reward_charges_the_raw_action() {
        let (mut big, mut one) = (at(-0.5, 0.01), at(-0.5, 0.01));
        let sb = big.step(&[3.0]).unwrap();
        let so = one.step(&[1.0]).unwrap();
        assert_eq!(sb.observation, so.observation, "force is clipped to 1");
        assert!((sb.reward - -0.9).abs() < 1e-15, "{}", sb.reward);
        assert!((so.reward - -0.1).abs() < 1e-15, "{}", so.reward);
        let s = at(-0.5, 0.0).step(&[-2.5]).unwrap();
        assert!((s.reward - -0.625).abs() < 1e-15);
    }

    #[test]
    fn velocity_update_follows_the_documented_formula() {
        for &(x, v, a) in &[(-0.5, 0.0, 0.3), (-1.0, -0.02, -1.0), (0.2, 0.03, 0.7)] {
            let mut env = at(x, v);
            env.step(&[a]).unwrap();
            let v_new = v + a * 0.0015 - 0.0025 * (3.0 * x).cos();
            assert!((env.state()[1] - v_new).abs() < 1e-8, "{:?}", env.state());
            assert!(
                (env.state()[0] - (x + v_new)).abs() < 1e-7,
                "{:?}",
                env.state()
            );
        }
    }

    #[test]
    fn speed_is_clipped_to_the_max_speed() {
        let mut env = at(-0.5, 0.0695);
        env.step(&[3.0]).unwrap();
        assert_eq!(env.state()[1], f64::from(MAX_SPEED as f32));
        let mut env = at(-0.5, -0.0699);
        env.step(&[-1.0]).unwrap();
        assert_eq!(env.state()[1], -f64::from(MAX_SPEED as f32));
    }

    #[test]
    fn the_left_wall_stops_the_car() {
        let mut env = at(-1.19, -0.05);
        let s = env.step(&[-1.0]).unwrap();
        assert_eq!(env.state(), &[f64::from(MIN_POSITION as f32), 0.0]);
        assert_eq!(s.observation, vec![MIN_POSITION as f32, 0.0]);
        // Moving right off the wall keeps its speed.
        let mut env = at(-1.2, 0.0);
        env.step(&[1.0]).unwrap();
        assert!(env.state()[1] > 0.0 && env.state()[0] > -1.2);
    }

    #[test]
    fn reaching_the_goal_with_nonnegative_speed_terminates_with_the_bonus() {
        let s = at(0.44, 0.02).step(&[0.5]).unwrap();
        assert!(s.terminated);
        assert!((s.reward - (100.0 - 0.025)).abs() < 1e-12);
        // Past the right edge the position is clipped to 0.6, still the goal.
        let mut env = at(0.59, 0.05);
        assert!(env.step(&[0.0]).unwrap().terminated);
        assert_eq!(env.state()[0], f64::from(MAX_POSITION as f32));
        // At the goal but rolling back: not terminated.
        let s = at(0.5, -0.01).step(&[0.0]).unwrap();
        assert!(!s.terminated && s.reward == 0.0);
        // A positive goal velocity demands more speed.
        let params = MountainCarParams {
            goal_velocity: 0.05,
            ..Default::default()
        };
        let mut strict = MountainCar::with_params(params).unwrap();
        strict.set_state(&[0.44, 0.02], 0).unwrap();
        assert!(!strict.step(&[0.5]).unwrap().terminated);
    }

    #[test]
    fn bang_bang_policy_reaches_the_goal_and_constant_push_does_not() {
        let run = |policy: &dyn Fn(f64) -> f64| {
            let mut env = MountainCar::new();
            env.reset(Some(1));
            for t in 1..=999 {
                let s = env.step(&[policy(env.state()[1])]).unwrap();
                if s.terminated {
                    return Some(t);
                }
            }
            None
        };
        let steps = run(&|v| if v >= 0.0 { 1.0 } else { -1.0 });
        assert!(steps.is_some_and(|t| t < 300), "{steps:?}");
        assert_eq!(
            run(&|_| 1.0),
            None,
            "the engine alone cannot climb the hill"
        );
    }

    #[test]
    fn state_after_a_step_is_float32_like_gymnasium() {
        let mut env = MountainCar::new();
        env.reset(Some(5));
        assert_ne!(
            f64::from(env.state()[0] as f32),
            env.state()[0],
            "reset state is f64"
        );
        for _ in 0..10 {
            env.step(&[0.3]).unwrap();
            for &x in env.state() {
                assert_eq!(f64::from(x as f32), x);
            }
        }
    }

    #[test]
    fn truncates_at_999_steps_and_can_step_past_the_limit() {
        let mut env = MountainCar::new();
        env.reset(Some(2));
        for t in 1..=999 {
            let s = env.step(&[0.0]).unwrap();
            assert!(!s.terminated);
            assert_eq!(s.truncated, t == 999, "step {t}");
        }
        assert!(env.step(&[0.0]).unwrap().truncated);
        env.set_state(&[-0.5, 0.0], 998).unwrap();
        assert!(env.step(&[0.0]).unwrap().truncated);
    }

    #[test]
    fn reset_draws_the_position_from_the_documented_interval_at_rest() {
        let mut env = MountainCar::new();
        let (mut lo, mut hi) = (f64::MAX, f64::MIN);
        for seed in 0..2000 {
            let obs = env.reset(Some(seed));
            let [x, v] = [env.state()[0], env.state()[1]];
            assert!((-0.6..-0.4).contains(&x) && v == 0.0);
            assert_eq!(obs, vec![x as f32, 0.0]);
            lo = lo.min(x);
            hi = hi.max(x);
        }
        assert!(lo < -0.598 && hi > -0.402, "{lo} {hi}");
        let a = env.reset(Some(9));
        assert_ne!(env.reset(None), a);
        assert_eq!(env.reset(Some(9)), a);
    }

    #[test]
    fn bad_actions_and_states_are_typed_errors() {
        let mut env = MountainCar::new();
        assert!(matches!(env.step(&[0.0]), Err(Error::NotReset { .. })));
        env.reset(Some(0));
        assert!(matches!(
            env.step(&[1.0, 2.0]),
            Err(Error::ActionDim { .. })
        ));
        assert!(matches!(
            env.step(&[f64::INFINITY]),
            Err(Error::NonFiniteAction { .. })
        ));
        assert!(matches!(
            env.set_state(&[0.0, 0.0, 0.0], 0),
            Err(Error::StateDim { .. })
        ));
        assert!(env.set_state(&[f64::NAN, 0.0], 0).is_err());
        let params = MountainCarParams {
            goal_velocity: f64::NAN,
            ..Default::default()
        };
        assert!(MountainCar::with_params(params).is_err());
    }

    #[test]
    fn the_step_counter_saturates_instead_of_overflowing() {
        // A trace's `t` can be u64::MAX; the step after it stays truncated.
        let mut env = at(-0.5, 0.0);
        env.set_state(&[-0.5, 0.0], usize::MAX).unwrap();
        assert!(env.step(&[0.0]).unwrap().truncated);
        assert_eq!(env.elapsed_steps(), usize::MAX);
    }
}
