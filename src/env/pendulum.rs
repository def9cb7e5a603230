//! Gymnasium's `Pendulum-v1`, reproduced operation by operation.
//!
//! Swing a pendulum up and hold it upright with a bounded torque. The dynamics, the
//! cost, the clipping and the 200-step time limit follow Gymnasium 1.4
//! (`gymnasium/envs/classic_control/pendulum.py` wrapped in `TimeLimit`), and the
//! committed traces in `tests/data/traces/` check the agreement, last bits included:
//!
//! - the torque is clipped to `[-2, 2]` before it enters both the cost and the dynamics;
//! - cost = `angle_normalize(θ)² + 0.1·θ̇² + 0.001·u²`, with the angle of the state
//!   *before* the step normalized to `[-π, π)`; the reward is its negative;
//! - `θ̇ ← clip(θ̇ + (3g/(2l)·sin θ + 3/(m l²)·u)·dt, -8, 8)`, then `θ ← θ + θ̇·dt`
//!   (semi-implicit Euler, the angle is never wrapped);
//! - the observation is `[cos θ, sin θ, θ̇]` rounded to `f32`; the state stays `f64`.
//! - like Gymnasium's `TimeLimit`, stepping on after the episode ended (termination or
//!   truncation) is allowed: the dynamics continue and `truncated` stays set until a reset;
//!   a step before any reset or [`Env::set_state`] is [`Error::NotReset`].
//!
//! The agreement is with Gymnasium stepped with `float64` actions (as the traces do):
//! Gymnasium's own `float32` action space would make NumPy compute `u²` and `3u` in
//! `float32`, a relative difference below `1e-7`.
//!
//! Reset draws `θ ~ U(-π, π)` and `θ̇ ~ U(-1, 1)` like Gymnasium, but from this crate's
//! ChaCha stream (NumPy's PCG64 draws are not reproduced): the initial-state
//! *distribution* matches, the individual draws do not.

use rand::Rng as _;

use super::numpy_scalar::{pow2, remainder};
use super::{validate_action, validate_state, ActionSpace, Env, StepOutcome};
use crate::error::{Error, Result};
use crate::rng::{Rng, RunSeed};

/// Gymnasium's id.
pub const ID: &str = "Pendulum-v1";

const MAX_SPEED: f64 = 8.0;
const MAX_TORQUE: f64 = 2.0;
const DT: f64 = 0.05;
const MASS: f64 = 1.0;
const LENGTH: f64 = 1.0;
/// Bounds of the uniform reset draw: `θ ∈ [-π, π]`, `θ̇ ∈ [-1, 1]`.
const RESET_HIGH: [f64; 2] = [std::f64::consts::PI, 1.0];

/// The settings `gymnasium.make("Pendulum-v1", ...)` accepts, with Gymnasium's defaults.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PendulumParams {
    /// Acceleration of gravity (m/s²).
    pub g: f64,
    /// `TimeLimit`: `truncated` is set once this many steps have been taken.
    pub max_episode_steps: usize,
}

impl Default for PendulumParams {
    fn default() -> Self {
        PendulumParams {
            g: 10.0,
            max_episode_steps: 200,
        }
    }
}

/// The pendulum swing-up task.
#[derive(Clone, Debug)]
pub struct Pendulum {
    params: PendulumParams,
    action_space: ActionSpace,
    /// `[θ, θ̇]`.
    state: [f64; 2],
    /// Steps taken since the last reset (`TimeLimit._elapsed_steps`).
    elapsed_steps: usize,
    /// Gymnasium's `OrderEnforcing`: no step before the first reset.
    has_state: bool,
    rng: Rng,
}

impl Pendulum {
    /// Gymnasium's defaults (`g = 10`, 200 steps). Until the first seeded reset, the
    /// reset stream is the one of seed 0, so unseeded runs are reproducible too.
    pub fn new() -> Self {
        Self::build(PendulumParams::default())
    }

    /// Custom settings, checked: `g` finite, `max_episode_steps` at least 1.
    pub fn with_params(params: PendulumParams) -> Result<Self> {
        if !params.g.is_finite() {
            return Err(Error::invalid("g", format!("{} is not finite", params.g)));
        }
        if params.max_episode_steps == 0 {
            return Err(Error::invalid("max_episode_steps", "must be at least 1"));
        }
        Ok(Self::build(params))
    }

    fn build(params: PendulumParams) -> Self {
        Pendulum {
            params,
            action_space: ActionSpace::Box {
                low: vec![-MAX_TORQUE],
                high: vec![MAX_TORQUE],
            },
            state: [0.0; 2],
            elapsed_steps: 0,
            has_state: false,
            rng: RunSeed(0).stream(ID),
        }
    }

    pub fn params(&self) -> &PendulumParams {
        &self.params
    }

    /// Steps taken since the last reset (or the count given to [`Env::set_state`]).
    pub fn elapsed_steps(&self) -> usize {
        self.elapsed_steps
    }
}

impl Default for Pendulum {
    fn default() -> Self {
        Self::new()
    }
}

/// Gymnasium's `angle_normalize`: the angle in `[-π, π)`, computed as NumPy does.
fn angle_normalize(x: f64) -> f64 {
    use std::f64::consts::PI;
    remainder(x + PI, 2.0 * PI) - PI
}

impl Env for Pendulum {
    fn id(&self) -> &str {
        ID
    }

    fn observation_dim(&self) -> usize {
        3
    }

    fn action_space(&self) -> &ActionSpace {
        &self.action_space
    }

    /// θ ∈ [−π, π] (the angle enters only through cos and sin), θ̇ ∈ [−8, 8] (clipped).
    fn state_bounds(&self) -> Option<(&'static [f64], &'static [f64])> {
        Some((
            &[-std::f64::consts::PI, -MAX_SPEED],
            &[std::f64::consts::PI, MAX_SPEED],
        ))
    }

    fn max_episode_steps(&self) -> Option<usize> {
        Some(self.params.max_episode_steps)
    }

    fn reset_into(&mut self, seed: Option<u64>, observation: &mut [f32]) {
        if let Some(seed) = seed {
            self.rng = RunSeed(seed).stream(ID);
        }
        // NumPy's uniform(low, high) = low + (high - low)·U[0, 1).
        for (x, high) in self.state.iter_mut().zip(RESET_HIGH) {
            *x = -high + (high - -high) * self.rng.gen::<f64>();
        }
        self.elapsed_steps = 0;
        self.has_state = true;
        self.observe(observation);
    }

    fn step_into(&mut self, action: &[f64], next_observation: &mut [f32]) -> Result<StepOutcome> {
        validate_action(ID, &self.action_space, action)?;
        if !self.has_state {
            return Err(Error::NotReset { env: ID.into() });
        }
        if next_observation.len() != 3 {
            return Err(Error::invalid(
                "next_observation",
                format!(
                    "buffer has {} slots, {ID} observations have 3",
                    next_observation.len()
                ),
            ));
        }
        let [th, thdot] = self.state;
        let PendulumParams { g, .. } = self.params;
        let u = action[0].clamp(-MAX_TORQUE, MAX_TORQUE);

        // Same operations in the same order as Gymnasium, so the same rounding.
        let costs = pow2(angle_normalize(th)) + 0.1 * pow2(thdot) + 0.001 * pow2(u);
        let newthdot =
            thdot + (3.0 * g / (2.0 * LENGTH) * th.sin() + 3.0 / (MASS * pow2(LENGTH)) * u) * DT;
        let newthdot = newthdot.clamp(-MAX_SPEED, MAX_SPEED);
        let newth = th + newthdot * DT;
        self.state = [newth, newthdot];

        // TimeLimit: stepping on past the limit is allowed and stays truncated.
        // Saturating: a count given to `set_state` (a trace's `t`) may be usize::MAX, and
        // past the limit the flag is the same either way.
        self.elapsed_steps = self.elapsed_steps.saturating_add(1);
        self.observe(next_observation);
        Ok(StepOutcome {
            reward: -costs,
            terminated: false,
            truncated: self.elapsed_steps >= self.params.max_episode_steps,
        })
    }

    fn state(&self) -> &[f64] {
        &self.state
    }

    fn set_state(&mut self, state: &[f64], elapsed_steps: usize) -> Result<()> {
        validate_state(ID, 2, state)?;
        if let Some(x) = state.iter().find(|x| !x.is_finite()) {
            return Err(Error::invalid("state", format!("{x} is not finite")));
        }
        self.state = [state[0], state[1]];
        self.elapsed_steps = elapsed_steps;
        self.has_state = true;
        Ok(())
    }

    /// `[cos θ, sin θ, θ̇]` in `f32`. Panics if `observation` does not have 3 slots.
    fn observe(&self, observation: &mut [f32]) {
        let [th, thdot] = self.state;
        observation.copy_from_slice(&[th.cos() as f32, th.sin() as f32, thdot as f32]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f64::consts::PI;

    fn at(theta: f64, theta_dot: f64) -> Pendulum {
        let mut env = Pendulum::new();
        env.set_state(&[theta, theta_dot], 0).unwrap();
        env
    }

    #[test]
    fn torque_beyond_the_bound_acts_like_the_bound() {
        for &(th, thdot) in &[(0.3, -0.5), (-2.0, 4.0), (3.0, 7.9)] {
            for &(big, bound) in &[(5.0, 2.0), (-3.5, -2.0)] {
                let (mut a, mut b) = (at(th, thdot), at(th, thdot));
                let sa = a.step(&[big]).unwrap();
                let sb = b.step(&[bound]).unwrap();
                assert_eq!(sa, sb, "state ({th}, {thdot}), action {big}");
                assert_eq!(a.state(), b.state());
            }
        }
    }

    #[test]
    fn reward_is_minus_the_quadratic_cost_of_the_normalized_angle() {
        // θ = 2π + 0.5 is the angle 0.5; θ = 3π/2 is the angle -π/2.
        for &(th, wrapped) in &[(2.0 * PI + 0.5, 0.5), (1.5 * PI, -0.5 * PI), (-0.25, -0.25)] {
            let mut env = at(th, 1.5);
            let r = env.step(&[-1.0]).unwrap().reward;
            let expected = -(wrapped * wrapped + 0.1 * 1.5 * 1.5 + 0.001 * 1.0);
            assert!((r - expected).abs() < 1e-12, "θ={th}: {r} vs {expected}");
        }
        // The worst cost Gymnasium documents: -(π² + 0.1·8² + 0.001·2²).
        let worst = at(PI, 8.0).step(&[2.0]).unwrap().reward;
        assert!((worst - -16.2736044).abs() < 1e-6, "{worst}");
    }

    #[test]
    fn angle_normalize_lands_in_minus_pi_to_pi() {
        for i in -400..400 {
            let x = f64::from(i) * 0.173;
            let y = angle_normalize(x);
            assert!((-PI..PI).contains(&y), "{x} -> {y}");
            let turns = (x - y) / (2.0 * PI);
            assert!((turns - turns.round()).abs() < 1e-9, "{x} -> {y}");
        }
    }

    #[test]
    fn angular_speed_is_clipped_at_eight_and_the_angle_moves_by_the_clipped_speed() {
        for &(thdot, torque, sign) in &[(7.9, 2.0, 1.0), (-7.95, -5.0, -1.0)] {
            let mut env = at(0.5 * sign, thdot);
            env.step(&[torque]).unwrap();
            let [th, new_thdot] = [env.state()[0], env.state()[1]];
            assert_eq!(new_thdot, 8.0 * sign);
            assert_eq!(th, 0.5 * sign + 8.0 * sign * DT);
        }
    }

    #[test]
    fn without_torque_or_clipping_energy_is_nearly_conserved() {
        // Semi-implicit Euler on θ̈ = 15 sin θ conserves E = θ̇²/2 + 15 cos θ up to O(dt).
        let energy = |s: &[f64]| 0.5 * s[1] * s[1] + 15.0 * s[0].cos();
        let mut env = at(2.5, 0.0);
        let e0 = energy(env.state());
        for _ in 0..150 {
            env.step(&[0.0]).unwrap();
            let e = energy(env.state());
            assert!(
                (e - e0).abs() < 0.1 * 15.0,
                "energy drifted from {e0} to {e}"
            );
        }
        // Bang-bang torque along the motion pumps energy in.
        let mut env = at(PI - 0.1, 0.0);
        for _ in 0..100 {
            let w = env.state()[1];
            env.step(&[2.0 * w.signum()]).unwrap();
        }
        assert!(energy(env.state()) > energy(&[PI - 0.1, 0.0]) + 5.0);
    }

    #[test]
    fn observation_is_cos_sin_and_speed_in_f32() {
        let mut env = at(0.0, 0.0);
        let s = env.step(&[1.0]).unwrap();
        let [th, thdot] = [env.state()[0], env.state()[1]];
        assert_eq!(
            s.observation,
            vec![th.cos() as f32, th.sin() as f32, thdot as f32]
        );
        assert!(
            thdot > 0.0,
            "positive torque at rest upright turns counter-clockwise"
        );
    }

    #[test]
    fn truncates_at_two_hundred_steps_and_can_step_past_the_limit() {
        let mut env = Pendulum::new();
        env.reset(Some(3));
        for t in 1..=200 {
            let s = env.step(&[0.7]).unwrap();
            assert!(!s.terminated);
            assert_eq!(s.truncated, t == 200, "step {t}");
        }
        // Gymnasium's TimeLimit keeps stepping and keeps reporting truncation.
        assert!(env.step(&[0.7]).unwrap().truncated);
        env.reset(None);
        assert_eq!(env.elapsed_steps(), 0);
        // set_state with elapsed steps reproduces the flag of a late step.
        env.set_state(&[0.1, 0.2], 199).unwrap();
        assert!(env.step(&[0.0]).unwrap().truncated);
    }

    #[test]
    fn the_step_counter_saturates_instead_of_overflowing() {
        // A trace's `t` can be u64::MAX; the step after it stays truncated.
        let mut env = Pendulum::new();
        env.set_state(&[0.1, 0.2], usize::MAX).unwrap();
        assert!(env.step(&[0.0]).unwrap().truncated);
        assert_eq!(env.elapsed_steps(), usize::MAX);
    }

    #[test]
    fn reset_draws_from_the_documented_box_and_is_seeded() {
        let mut env = Pendulum::new();
        let (mut min, mut max) = ([f64::MAX; 2], [f64::MIN; 2]);
        for seed in 0..2000 {
            env.reset(Some(seed));
            for i in 0..2 {
                min[i] = min[i].min(env.state()[i]);
                max[i] = max[i].max(env.state()[i]);
            }
            assert_eq!(env.elapsed_steps(), 0);
        }
        assert!(min[0] >= -PI && max[0] < PI && min[1] >= -1.0 && max[1] < 1.0);
        // 2000 draws fill the box: both ends within 1% of its width.
        assert!(min[0] < -0.98 * PI && max[0] > 0.98 * PI);
        assert!(min[1] < -0.98 && max[1] > 0.98);

        let a = env.reset(Some(42));
        let b = env.reset(None);
        assert_ne!(a, b, "an unseeded reset continues the stream");
        assert_eq!(env.reset(Some(42)), a);
    }

    #[test]
    fn bad_actions_and_states_are_typed_errors() {
        let mut env = Pendulum::new();
        assert!(matches!(env.step(&[0.0]), Err(Error::NotReset { .. })));
        env.reset(Some(0));
        assert!(matches!(
            env.step(&[]),
            Err(Error::ActionDim { got: 0, .. })
        ));
        assert!(matches!(
            env.step(&[0.0, 1.0]),
            Err(Error::ActionDim { got: 2, .. })
        ));
        assert!(matches!(
            env.step(&[f64::NAN]),
            Err(Error::NonFiniteAction { index: 0, .. })
        ));
        assert!(matches!(
            env.set_state(&[0.0], 0),
            Err(Error::StateDim { got: 1, .. })
        ));
        assert!(env.set_state(&[f64::INFINITY, 0.0], 0).is_err());
        let mut short = [0.0f32; 2];
        assert!(env.step_into(&[0.0], &mut short).is_err());
        assert!(Pendulum::with_params(PendulumParams {
            g: f64::NAN,
            ..Default::default()
        })
        .is_err());
        assert!(Pendulum::with_params(PendulumParams {
            max_episode_steps: 0,
            g: 9.81
        })
        .is_err());
    }

    #[test]
    fn gravity_parameter_changes_the_fall() {
        let mut earth = Pendulum::with_params(PendulumParams {
            g: 9.81,
            ..Default::default()
        })
        .unwrap();
        let mut default = Pendulum::new();
        for env in [&mut earth, &mut default] {
            env.set_state(&[1.0, 0.0], 0).unwrap();
            env.step(&[0.0]).unwrap();
        }
        // θ̇ after one step is 3g/2·sin(1)·dt: proportional to g.
        let ratio = earth.state()[1] / default.state()[1];
        assert!((ratio - 0.981).abs() < 1e-12, "{ratio}");
    }
}
