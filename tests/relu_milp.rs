//! The ReLU-network MILP maximizer against ground truth: exhaustive enumeration over every
//! feasible integer allocation, and dense grids over continuous boxes (1-D and 2-D), on
//! random networks of one to three hidden layers; typed errors for what it cannot state.

use std::ops::ControlFlow;

use policy_param::env::allocation::{for_each_feasible, Allocation};
use policy_param::env::{ActionSpace, IntegerSpace};
use policy_param::maximize::{Maximizer, MilpBackend, QFunction, ReluMilpMaximizer};
use policy_param::nn::{Activation, MlpConfig};
use policy_param::qfunction::{InputScaling, MlpQ};
use policy_param::rng::RunSeed;
use policy_param::Error;
use rand::Rng as _;

fn relu_q(sizes: &[usize], state_dim: usize, seed: u64) -> MlpQ {
    let config = MlpConfig::new(sizes).hidden(Activation::Relu);
    MlpQ::from_config(&config, state_dim, &mut RunSeed(seed).stream("critic")).unwrap()
}

/// The best value over every feasible action, the first action reaching it, and the
/// second-best value (how close the nearest competitor is).
fn brute_force(q: &MlpQ, space: &IntegerSpace, state: &[f64]) -> (f64, Vec<f64>, f64) {
    let mut ws = q.workspace();
    let (mut best, mut action, mut second) = (f64::NEG_INFINITY, vec![], f64::NEG_INFINITY);
    for_each_feasible(space, |x| {
        let a: Vec<f64> = x.iter().map(|&v| v as f64).collect();
        let v = q.value(&mut ws, state, &a).unwrap();
        if v > best {
            (second, best, action) = (best, v, a);
        } else if v > second {
            second = v;
        }
        ControlFlow::<()>::Continue(())
    })
    .unwrap();
    (best, action, second)
}

#[test]
fn relu_milp_equals_enumeration_on_1000_integer_states() {
    equals_enumeration(MilpBackend::Microlp, 1000);
}

/// HiGHS (built with `--features highs`) on the same programs.
#[cfg(feature = "highs")]
#[test]
fn relu_milp_by_highs_equals_enumeration_on_300_integer_states() {
    equals_enumeration(MilpBackend::Highs, 300);
}

/// q behind an input scaling (demands in [0, 8], shipments in their bounds, onto
/// [−1, 1]): the program states the map in its first layer.
#[test]
fn relu_milp_with_input_scaling_equals_enumeration_on_300_integer_states() {
    equals_enumeration_of(MilpBackend::Microlp, 300, true);
}

fn equals_enumeration(backend: MilpBackend, states: u64) {
    equals_enumeration_of(backend, states, false);
}

/// The allocation task's inputs onto [−1, 1]: 3 demands from [0, 8], then the shipments
/// from their bounds.
fn allocation_scaling(space: &IntegerSpace) -> InputScaling {
    let lower: Vec<f64> = [0.0; 3]
        .into_iter()
        .chain(space.lower.iter().map(|&l| l as f64))
        .collect();
    let upper: Vec<f64> = [8.0; 3]
        .into_iter()
        .chain(space.upper.iter().map(|&u| u as f64))
        .collect();
    InputScaling::from_bounds(&lower, &upper).unwrap()
}

fn equals_enumeration_of(backend: MilpBackend, states: u64, scaled: bool) {
    let space = Allocation::small().unwrap().model().integer_space().clone();
    let scaling = allocation_scaling(&space);
    let milp = ReluMilpMaximizer::new(ActionSpace::Integer(space.clone()))
        .unwrap()
        .with_backend(backend);
    let mut ws = milp.workspace();
    let seed = RunSeed(19);
    let mut rng = seed.stream("states");
    let mut action = vec![0.0; 6];
    let (mut same_action, mut binaries) = (0, 0);
    for k in 0..states {
        // A fresh network every 100 states (depths 1 to 3), a fresh demand every state.
        // (Sizes that keep microlp's branch and bound at milliseconds: about 10 binaries.)
        let sizes: &[usize] = match k / 100 % 3 {
            0 => &[3 + 6, 16, 1],
            1 => &[3 + 6, 8, 8, 1],
            _ => &[3 + 6, 6, 6, 6, 1],
        };
        let q = relu_q(sizes, 3, k / 100);
        let q = if scaled {
            q.with_input_scaling(scaling.clone()).unwrap()
        } else {
            q
        };
        let mut q_ws = q.workspace();
        let state: Vec<f64> = (0..3).map(|_| rng.gen_range(0.0..8.0)).collect();
        let (best, best_action, second) = brute_force(&q, &space, &state);
        let found = milp
            .maximize(&q, &mut q_ws, &mut ws, &state, &mut action, &mut rng)
            .unwrap();
        binaries += ws.binaries;
        assert!(space.violation(&action).is_none(), "infeasible {action:?}");
        assert_eq!(found.value, q.value(&mut q_ws, &state, &action).unwrap());
        if action == best_action {
            same_action += 1;
        } else {
            // Only a near tie (within f32 rounding of the network) may pick another action.
            assert!(
                best - found.value <= 1e-6 && best - second <= 1e-5,
                "state {k} {state:?}: milp {} at {action:?}, enumeration {best} at \
                 {best_action:?} (second best {second})",
                found.value
            );
        }
    }
    assert!(
        same_action >= states * 99 / 100,
        "{same_action} of {states} states"
    );
    // The encoding must leave units undecided, or the test would not test branching.
    assert!(
        binaries > states as usize,
        "{binaries} binaries over {states} programs"
    );
}

/// The mean of three critics (`MlpQ::mean_of`, one network three times as wide, behind
/// the shared input scaling) is maximized by the ReLU-MILP as enumeration maximizes the
/// mean of the three critics' values.
#[test]
fn relu_milp_maximizes_a_mean_of_critics_as_enumeration_of_their_mean() {
    let space = Allocation::small().unwrap().model().integer_space().clone();
    let scaling = allocation_scaling(&space);
    let parts: Vec<MlpQ> = (0..3)
        .map(|k| {
            relu_q(&[3 + 6, 5, 1], 3, 70 + k)
                .with_input_scaling(scaling.clone())
                .unwrap()
        })
        .collect();
    let mean = MlpQ::mean_of(&parts).unwrap();
    assert_eq!(mean.network().sizes(), &[9, 15, 1]);
    let milp = ReluMilpMaximizer::new(ActionSpace::Integer(space.clone())).unwrap();
    let (mut ws, mut mean_ws) = (milp.workspace(), mean.workspace());
    let mut part_ws: Vec<_> = parts.iter().map(|q| q.workspace()).collect();
    let mut rng = RunSeed(23).stream("states");
    let mut action = vec![0.0; 6];
    for k in 0..100 {
        let state: Vec<f64> = (0..3).map(|_| rng.gen_range(0.0..8.0)).collect();
        let (mut best, mut second) = (f64::NEG_INFINITY, f64::NEG_INFINITY);
        let mut best_action = vec![];
        for_each_feasible(&space, |x| {
            let a: Vec<f64> = x.iter().map(|&v| v as f64).collect();
            let mut sum = 0.0;
            for (q, qws) in parts.iter().zip(&mut part_ws) {
                sum += q.value(qws, &state, &a).unwrap();
            }
            let v = sum / 3.0;
            let wide = mean.value(&mut mean_ws, &state, &a).unwrap();
            assert!((wide - v).abs() <= 1e-5 * (1.0 + v.abs()), "{wide} vs {v}");
            if v > best {
                (second, best, best_action) = (best, v, a);
            } else if v > second {
                second = v;
            }
            ControlFlow::<()>::Continue(())
        })
        .unwrap();
        let found = milp
            .maximize(&mean, &mut mean_ws, &mut ws, &state, &mut action, &mut rng)
            .unwrap();
        assert!(
            action == best_action || (best - found.value <= 1e-5 && best - second <= 1e-5),
            "state {k}: milp {} at {action:?}, enumeration {best} at {best_action:?}",
            found.value
        );
    }
}

/// Every point of a `points`-per-axis grid over `[low, high]` (1-D or 2-D): the best value.
fn grid_max(q: &MlpQ, state: &[f64], low: &[f64], high: &[f64], points: usize) -> f64 {
    let mut ws = q.workspace_for_batch(points);
    let axis = |d: usize, i: usize| low[d] + (high[d] - low[d]) * i as f64 / (points - 1) as f64;
    let mut actions = vec![0.0; points * low.len()];
    let mut values = vec![0.0; points];
    let mut best = f64::NEG_INFINITY;
    let rows = if low.len() == 1 { 1 } else { points };
    for r in 0..rows {
        for i in 0..points {
            actions[i * low.len()] = axis(0, i);
            if low.len() == 2 {
                actions[i * 2 + 1] = axis(1, r);
            }
        }
        q.values_at_actions(&mut ws, state, &actions, &mut values)
            .unwrap();
        best = values.iter().copied().fold(best, f64::max);
    }
    best
}

fn box_case(sizes: &[usize], low: &[f64], high: &[f64], points: usize, states: u64) {
    box_case_of(sizes, low, high, points, states, false);
}

/// With `scaled`, q maps states from [−2, 2] and actions from their box onto [−1, 1].
fn box_case_of(
    sizes: &[usize],
    low: &[f64],
    high: &[f64],
    points: usize,
    states: u64,
    scaled: bool,
) {
    let space = ActionSpace::Box {
        low: low.to_vec(),
        high: high.to_vec(),
    };
    let milp = ReluMilpMaximizer::new(space).unwrap();
    let mut ws = milp.workspace();
    let state_dim = sizes[0] - low.len();
    let mut action = vec![0.0; low.len()];
    let mut rng = RunSeed(7).stream("states");
    for k in 0..states {
        let q = relu_q(sizes, state_dim, 100 + k / 10);
        let q = if scaled {
            let lower: Vec<f64> = std::iter::repeat_n(-2.0, state_dim)
                .chain(low.iter().copied())
                .collect();
            let upper: Vec<f64> = std::iter::repeat_n(2.0, state_dim)
                .chain(high.iter().copied())
                .collect();
            let scaling = InputScaling::from_bounds(&lower, &upper).unwrap();
            q.with_input_scaling(scaling).unwrap()
        } else {
            q
        };
        let mut q_ws = q.workspace();
        let state: Vec<f64> = (0..state_dim).map(|_| rng.gen_range(-2.0..2.0)).collect();
        let found = milp
            .maximize(&q, &mut q_ws, &mut ws, &state, &mut action, &mut rng)
            .unwrap();
        let reference = grid_max(&q, &state, low, high, points);
        assert!(
            action
                .iter()
                .zip(low.iter().zip(high))
                .all(|(a, (l, h))| (*l..=*h).contains(a)),
            "{action:?} outside the box"
        );
        // The grid only samples the box: the exact optimum is at least its best point.
        assert!(
            found.value >= reference - 1e-6,
            "{sizes:?} state {state:?}: milp {} at {action:?} below the grid's {reference}",
            found.value
        );
        // And not far above it: q is Lipschitz, the grid spacing small.
        assert!(
            found.value <= reference + 1e-2,
            "milp {} far above the grid's {reference}",
            found.value
        );
    }
}

#[test]
fn relu_milp_is_at_least_a_dense_grid_on_a_1d_box() {
    box_case(&[2 + 1, 16, 16, 1], &[-2.0], &[2.0], 100_001, 100);
}

#[test]
fn relu_milp_is_at_least_a_dense_grid_on_a_2d_box() {
    box_case(&[2 + 2, 12, 12, 1], &[-1.0, -2.0], &[1.0, 0.5], 801, 30);
}

#[test]
fn relu_milp_with_input_scaling_is_at_least_a_dense_grid_on_a_2d_box() {
    box_case_of(
        &[2 + 2, 12, 12, 1],
        &[-1.0, -2.0],
        &[1.0, 0.5],
        801,
        30,
        true,
    );
}

#[test]
fn relu_milp_refuses_what_it_cannot_state() {
    let space = ActionSpace::Box {
        low: vec![-1.0],
        high: vec![1.0],
    };
    let milp = ReluMilpMaximizer::new(space).unwrap();
    let mut ws = milp.workspace();
    let mut rng = RunSeed(0).stream("x");
    let mut action = [0.0];
    // A tanh network is not piecewise linear.
    let config = MlpConfig::new(&[3, 8, 1]).hidden(Activation::Tanh);
    let tanh = MlpQ::from_config(&config, 2, &mut rng).unwrap();
    let mut q_ws = tanh.workspace();
    let r = milp.maximize(
        &tanh,
        &mut q_ws,
        &mut ws,
        &[0.0, 0.0],
        &mut action,
        &mut rng,
    );
    assert!(matches!(r, Err(Error::Solver { .. })), "{r:?}");
    // A state with a NaN.
    let relu = relu_q(&[3, 8, 1], 2, 0);
    let mut q_ws = relu.workspace();
    let r = milp.maximize(
        &relu,
        &mut q_ws,
        &mut ws,
        &[f64::NAN, 0.0],
        &mut action,
        &mut rng,
    );
    assert!(matches!(r, Err(Error::Numerical { .. })), "{r:?}");
    // Unbounded boxes have no big-M constants.
    for (low, high) in [(f64::NEG_INFINITY, 1.0), (1.0, -1.0)] {
        let r = ReluMilpMaximizer::new(ActionSpace::Box {
            low: vec![low],
            high: vec![high],
        });
        assert!(
            matches!(&r, Err(Error::InvalidParameter { field, .. }) if field.contains("relu_milp")),
            "{r:?}"
        );
    }
}
