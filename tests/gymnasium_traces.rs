//! Our Pendulum-v1 and MountainCarContinuous-v0 against Gymnasium 1.4's own steps.
//!
//! The traces in `tests/data/traces/` were written by `scripts/gym_traces.py` with
//! Gymnasium; every row is replayed here. Since the agreement is only as strong as the
//! situations the traces visit, the edge cases they claim to cover are checked too.

use std::path::PathBuf;

use policy_param::env::mountain_car::{self, MountainCar};
use policy_param::env::pendulum;
use policy_param::env::trace::{check_rows, read_trace, TraceRow};
use policy_param::env::{ActionSpace, Env};

const TOLERANCE: f64 = 1e-5;

fn traces() -> Vec<(PathBuf, Vec<TraceRow>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/traces");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/data/traces exists")
        .map(|entry| entry.expect("readable directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "csv"))
        .collect();
    paths.sort();
    assert!(!paths.is_empty(), "no traces in {}", dir.display());
    paths
        .into_iter()
        .map(|path| {
            let rows = read_trace(&path).unwrap_or_else(|e| panic!("{e}"));
            (path, rows)
        })
        .collect()
}

fn rows_of(env: &str) -> Vec<TraceRow> {
    let rows: Vec<TraceRow> = traces()
        .into_iter()
        .flat_map(|(_, rows)| rows)
        .filter(|row| row.env == env)
        .collect();
    assert!(!rows.is_empty(), "no {env} rows in the traces");
    rows
}

fn bound(env: &dyn Env) -> f64 {
    match env.action_space() {
        ActionSpace::Box { high, .. } => high[0],
        other => panic!("{other:?} is not a box"),
    }
}

#[test]
fn every_committed_trace_agrees_with_gymnasium() {
    for (path, rows) in traces() {
        let source = path.display().to_string();
        let report = check_rows(&rows, &source).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(report.rows, rows.len());
        assert!(
            report.agrees(TOLERANCE),
            "{source}: max_abs_err {:e} at {:?}, {} flag mismatches, first {:?}",
            report.max_abs_err,
            report.worst,
            report.flag_mismatches,
            report.first_flag_mismatch
        );
        eprintln!(
            "{source}: {} rows, max_abs_err {:e}, per env {:?}",
            report.rows, report.max_abs_err, report.per_env
        );
    }
}

#[test]
fn traces_cover_both_environments_and_full_episodes() {
    for (env, limit) in [(pendulum::ID, 200), (mountain_car::ID, 999)] {
        let rows = rows_of(env);
        // A whole episode: t runs from 0 to the limit with the same seed.
        let full = rows
            .iter()
            .filter(|r| r.t == limit - 1 && r.truncated)
            .any(|last| rows.iter().any(|r| r.seed == last.seed && r.t == 0));
        assert!(full, "{env}: no episode truncated at {limit} steps");
        // Stepping past the limit stays truncated.
        assert!(
            rows.iter().any(|r| r.t >= limit && r.truncated),
            "{env}: nothing past the limit"
        );
        // Truncation is exactly at the limit.
        assert!(
            rows.iter().all(|r| r.truncated == (r.t + 1 >= limit)),
            "{env}"
        );
        assert!(
            rows.iter()
                .map(|r| r.seed)
                .collect::<std::collections::BTreeSet<_>>()
                .len()
                >= 3
        );
    }
}

#[test]
fn traces_cover_actions_beyond_the_bounds() {
    for env in [pendulum::ID, mountain_car::ID] {
        let bound = bound(&*policy_param::env::make(env).unwrap());
        let rows = rows_of(env);
        for sign in [1.0, -1.0] {
            assert!(
                rows.iter().any(|r| sign * r.action[0] > bound * 1.5),
                "{env}: no action beyond {}",
                sign * bound
            );
        }
        // And exactly at the bound.
        assert!(rows.iter().any(|r| r.action[0].abs() == bound), "{env}");
    }
}

#[test]
fn pendulum_traces_cover_speed_clips_and_large_angles() {
    let rows = rows_of(pendulum::ID);
    for sign in [1.0, -1.0] {
        assert!(
            rows.iter().any(|r| r.next_observation[2] == 8.0 * sign),
            "no step clipped at θ̇ = {}",
            8.0 * sign
        );
    }
    assert!(rows
        .iter()
        .any(|r| r.state[0].abs() > 3.0 * std::f64::consts::PI));
    assert!(rows.iter().any(|r| r.state[0] == std::f64::consts::PI));
}

#[test]
fn mountain_car_traces_cover_walls_speed_clips_and_the_goal() {
    let rows = rows_of(mountain_car::ID);
    let wall = f64::from(mountain_car::MIN_POSITION as f32);
    let max_speed = f64::from(mountain_car::MAX_SPEED as f32);
    let left_wall_hits = rows
        .iter()
        .filter(|r| r.state[0] < -1.1 && r.state[1] < 0.0 && r.next_observation == [wall, 0.0]);
    assert!(left_wall_hits.count() >= 3, "too few left-wall hits");
    for sign in [1.0, -1.0] {
        assert!(
            rows.iter()
                .any(|r| r.next_observation[1] == sign * max_speed),
            "no speed clip at {}",
            sign * max_speed
        );
    }
    let right_edge = f64::from(mountain_car::MAX_POSITION as f32);
    assert!(rows
        .iter()
        .any(|r| r.next_observation[0] == right_edge && r.terminated));
    let goals: Vec<&TraceRow> = rows.iter().filter(|r| r.terminated).collect();
    assert!(goals.len() >= 4, "too few terminations");
    assert!(
        goals.iter().all(|r| r.reward > 90.0),
        "termination pays 100 − 0.1·a²"
    );
    // At the goal position but rolling back: not terminated.
    assert!(rows
        .iter()
        .any(|r| r.next_observation[0] >= mountain_car::GOAL_POSITION
            && r.next_observation[1] < 0.0
            && !r.terminated));
    // Both precisions Gymnasium holds the state in: float64 (reset) and float32 (stepped).
    let is_f32 = |x: f64| f64::from(x as f32) == x;
    assert!(rows.iter().any(|r| !is_f32(r.state[0])));
    assert!(rows.iter().any(|r| r.t > 0 && is_f32(r.state[0])));
}

#[test]
fn goal_reaching_episodes_replayed_as_one_run_match_bit_for_bit() {
    // Beyond single steps: roll our environment forward from the first state of each
    // goal-reaching bang-bang episode, with the trace's actions, and compare the whole
    // trajectory (errors could accumulate here, unlike in the row-by-row replay).
    let rows = rows_of(mountain_car::ID);
    let goal_seeds: Vec<u64> = rows
        .iter()
        .filter(|r| r.terminated && r.t > 50)
        .map(|r| r.seed)
        .collect();
    assert!(!goal_seeds.is_empty());
    for seed in goal_seeds {
        let episode: Vec<&TraceRow> = rows.iter().filter(|r| r.seed == seed).collect();
        let mut env = MountainCar::new();
        env.set_state(&episode[0].state, 0).unwrap();
        for row in &episode {
            let step = env.step(&row.action).unwrap();
            let got: Vec<f64> = step.observation.iter().map(|&x| f64::from(x)).collect();
            assert_eq!(got, row.next_observation, "seed {seed}, t {}", row.t);
            assert_eq!(
                (step.terminated, step.truncated),
                (row.terminated, row.truncated)
            );
        }
    }
}
