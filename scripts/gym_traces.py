#!/usr/bin/env python3
"""Write Gymnasium reference traces for Pendulum-v1 and MountainCarContinuous-v0.

Regenerate the committed traces (from the repository root; no `just` needed):

    python3 -m venv .venv-gym
    .venv-gym/bin/pip install -r scripts/requirements-gym.txt
    .venv-gym/bin/python scripts/gym_traces.py tests/data/traces

then check them with `cargo run -p policy-param-cli -- env check-trace tests/data/traces/*.csv`.

One CSV per environment, one row per Gymnasium step, columns

    env,seed,t,obs0..obsN,action,reward,next_obs0..next_obsN,terminated,truncated,state0,state1

`seed` is the episode's reset seed, `t` the number of steps taken before this one
(TimeLimit's elapsed steps), `state0,state1` the unwrapped environment's internal state
before the step (theta, theta_dot for Pendulum; position, velocity for MountainCar).
Floats are written with repr(), which round-trips every float64 exactly; flags as 0/1.

Actions are passed as float64 arrays, so Gymnasium computes in float64 where its code
allows (with its float32 action space a policy usually passes float32, and NumPy would
then compute u**2 and 3*u in float32). Besides whole episodes (random actions, some far
outside the action bounds, and bang-bang policies that reach the goal), the traces put
the environments directly into edge states: speeds that must be clipped, the left wall,
the right edge, the goal, large angles, and a late elapsed-step count for truncation.
Episodes go on for a few steps after termination or truncation, as Gymnasium allows.
"""

import csv
import sys
import warnings
from pathlib import Path

import gymnasium as gym
import numpy as np

PENDULUM = "Pendulum-v1"
MOUNTAIN_CAR = "MountainCarContinuous-v0"
OBS_DIM = {PENDULUM: 3, MOUNTAIN_CAR: 2}


def header(env_id):
    n = OBS_DIM[env_id]
    return (
        ["env", "seed", "t"]
        + [f"obs{i}" for i in range(n)]
        + ["action", "reward"]
        + [f"next_obs{i}" for i in range(n)]
        + ["terminated", "truncated", "state0", "state1"]
    )


def floats(xs):
    return [repr(float(x)) for x in xs]


def observe(env_id, env):
    """The observation of the unwrapped state, as the environment's reset/step returns it."""
    if env_id == PENDULUM:
        return env.unwrapped._get_obs()
    return np.array(env.unwrapped.state, dtype=np.float32)


def episode(writer, env_id, seed, policy, steps, state=None, elapsed=0, after_done=0):
    """Reset with `seed`, optionally put the environment in `state` with `elapsed` steps
    taken, then step with `policy(obs, state, t)` for `steps` steps, or until `after_done`
    steps past the first termination or truncation."""
    env = gym.make(env_id)
    assert isinstance(env, gym.wrappers.TimeLimit)
    obs, _ = env.reset(seed=seed)
    if state is not None:
        env.unwrapped.state = state
        env._elapsed_steps = elapsed
        obs = observe(env_id, env)
    left_after_done = None
    for _ in range(steps):
        t = env._elapsed_steps
        before = [float(x) for x in env.unwrapped.state]
        action = float(policy(obs, before, t))
        next_obs, reward, terminated, truncated, _ = env.step(np.array([action], dtype=np.float64))
        writer.writerow(
            [env_id, seed, t]
            + floats(obs)
            + floats([action, reward])
            + floats(next_obs)
            + [int(terminated), int(truncated)]
            + floats(before)
        )
        obs = next_obs
        if left_after_done is None and (terminated or truncated):
            left_after_done = after_done
        elif left_after_done is not None:
            left_after_done -= 1
        if left_after_done == 0:
            break
    env.close()


def uniform_policy(bound, seed):
    rng = np.random.default_rng(seed)
    return lambda obs, state, t: rng.uniform(-bound, bound)


def constant(a):
    return lambda obs, state, t: a


def bang_bang(magnitude):
    """Push along the velocity (state[1]): pumps energy into either system."""
    return lambda obs, state, t: magnitude if state[1] >= 0 else -magnitude


def pendulum_traces(writer):
    # Whole episodes, truncated at 200; actions up to 2.5 times the torque bound.
    for seed in (0, 1, 2):
        episode(writer, PENDULUM, seed, uniform_policy(5.0, 1000 + seed), 210, after_done=2)
    episode(writer, PENDULUM, 3, bang_bang(2.0), 200)  # spins up to the speed clip
    episode(writer, PENDULUM, 4, constant(0.0), 200)  # free swing
    # Edge states, a few steps each: (theta, theta_dot), action.
    edges = [
        ((0.0, 7.9), 2.0),  # speed clip at +8
        ((0.0, -7.95), -5.0),  # speed clip at -8, torque clipped
        ((np.pi, 0.0), 0.5),  # angle_normalize boundary: pi maps to -pi
        ((-np.pi, 3.0), -2.0),
        ((25.0, -1.0), 1.0),  # angles far from [-pi, pi)
        ((-40.0, 8.0), 3.0),
    ]
    for i, (state, action) in enumerate(edges):
        episode(writer, PENDULUM, 10 + i, constant(action), 5, state=np.array(state), after_done=2)
    # Truncation from a late elapsed-step count, and two steps past it.
    episode(
        writer, PENDULUM, 20, constant(-1.0), 4, state=np.array([1.0, 0.5]), elapsed=198, after_done=2
    )


def mountain_car_traces(writer):
    # Whole episodes, truncated at 999: actions within and far beyond [-1, 1].
    episode(writer, MOUNTAIN_CAR, 0, uniform_policy(3.0, 2000), 999)
    episode(writer, MOUNTAIN_CAR, 1, uniform_policy(1.0, 2001), 999)
    # Bang-bang reaches the goal; exactly +-1 is the unclipped force, +-3 the clipped one.
    for seed, magnitude in ((2, 1.0), (3, 1.0), (4, 3.0), (5, 3.0)):
        episode(writer, MOUNTAIN_CAR, seed, bang_bang(magnitude), 999, after_done=2)

    def f32_state(position, velocity):
        # How Gymnasium holds the state after any step.
        return np.array([position, velocity], dtype=np.float32)

    # Edge states, a few steps each: (position, velocity), action.
    edges = [
        ((-1.19, -0.05), -1.0),  # left wall: velocity zeroed
        ((-1.15, -0.07), -3.0),  # left wall after a speed clip
        ((-1.2, 0.0), -1.0),  # resting at the wall, pushing into it
        ((-0.5, 0.0695), 3.0),  # speed clip at +0.07
        ((-0.5, -0.0699), -2.0),  # speed clip at -0.07
        ((0.59, 0.05), 0.0),  # right edge: position clipped to 0.6, goal
        ((0.44, 0.02), 0.5),  # goal
        ((0.5, -0.01), 0.0),  # at the goal but rolling back: not terminated
        ((0.449, 0.001), 0.0),  # just short of the goal
    ]
    for i, (state, action) in enumerate(edges):
        episode(
            writer, MOUNTAIN_CAR, 10 + i, constant(action), 4, state=f32_state(*state), after_done=2
        )
    # A float64 state, as right after a reset, at the wall.
    episode(writer, MOUNTAIN_CAR, 30, constant(-3.0), 3, state=np.array([-1.19, -0.06]), after_done=2)
    # Truncation from a late elapsed-step count, and two steps past it.
    episode(
        writer, MOUNTAIN_CAR, 31, constant(0.2), 4, state=f32_state(-0.5, 0.0), elapsed=997, after_done=2
    )


def main():
    if len(sys.argv) != 2:
        sys.exit(f"usage: {sys.argv[0]} OUTPUT_DIR")
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    # The passive env checker warns about float64 actions and out-of-bound states: wanted here.
    warnings.simplefilter("ignore")
    for name, env_id, write in (
        ("pendulum.csv", PENDULUM, pendulum_traces),
        ("mountain_car_continuous.csv", MOUNTAIN_CAR, mountain_car_traces),
    ):
        with open(out / name, "w", newline="") as f:
            writer = csv.writer(f, lineterminator="\n")
            writer.writerow(header(env_id))
            write(writer)
        print(f"wrote {out / name} (gymnasium {gym.__version__}, numpy {np.__version__})")


if __name__ == "__main__":
    main()
