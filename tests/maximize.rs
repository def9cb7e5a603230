//! The maximizers of `fitted-q-iteration-explicit` against ground truth: the MILP against
//! brute force over every feasible allocation, L-BFGS against the exact maximizer of a
//! concave quadratic over a box (by enumerating its faces) and against a dense grid on
//! random networks; the MLP critic's action gradient against finite differences; and
//! typed errors for everything a caller can get wrong.

use std::ops::ControlFlow;

use nalgebra::{DMatrix, DVector};
use policy_param::env::allocation::{for_each_feasible, Allocation};
use policy_param::env::{ActionSpace, IntegerSpace, LinearConstraint};
use policy_param::maximize::{
    BatchedLbfgs, BatchedLbfgsSettings, BatchedWorkspace, EnumerationMaximizer, FirstStart,
    GridMaximizer, LbfgsSettings, LineSearchKind, Maximizer, MilpMaximizer, ProjectedLbfgs,
    QFunction,
};
use policy_param::nn::{Activation, Mlp, MlpConfig};
use policy_param::qfunction::{InputScaling, MlpQ};
use policy_param::rng::{Rng, RunSeed};
use policy_param::{Error, Result};
use rand::Rng as _;
use rayon::prelude::*;

mod counting_allocator;
mod thread_pool;
use counting_allocator::allocated_by;
use thread_pool::with_threads;

// ---------------------------------------------------------------------------------------
// Test-local q-functions with known maximizers.

/// q(s, a) = c₀(s) + c(s)ᵀa with c(s) = W s + b and c₀(s) = wᵀs: affine in the action,
/// with coefficients that change with the state.
struct AffineQ {
    state_dim: usize,
    action_dim: usize,
    /// `action_dim × state_dim`, row-major.
    w: Vec<f64>,
    b: Vec<f64>,
    w0: Vec<f64>,
}

impl AffineQ {
    fn random(state_dim: usize, action_dim: usize, rng: &mut Rng) -> Self {
        let mut draw = |n: usize| (0..n).map(|_| rng.gen_range(-1.0..1.0)).collect::<Vec<_>>();
        AffineQ {
            state_dim,
            action_dim,
            w: draw(action_dim * state_dim),
            b: draw(action_dim),
            w0: draw(state_dim),
        }
    }

    fn coefficients(&self, state: &[f64], c: &mut [f64]) -> f64 {
        for (i, ci) in c.iter_mut().enumerate() {
            let row = &self.w[i * self.state_dim..(i + 1) * self.state_dim];
            *ci = self.b[i] + row.iter().zip(state).map(|(w, s)| w * s).sum::<f64>();
        }
        self.w0.iter().zip(state).map(|(w, s)| w * s).sum()
    }
}

impl QFunction for AffineQ {
    type Workspace = Vec<f64>;

    fn state_dim(&self) -> usize {
        self.state_dim
    }
    fn action_dim(&self) -> usize {
        self.action_dim
    }
    fn workspace(&self) -> Vec<f64> {
        vec![0.0; self.action_dim]
    }
    fn value(&self, ws: &mut Vec<f64>, state: &[f64], action: &[f64]) -> Result<f64> {
        let c0 = self.coefficients(state, ws);
        Ok(c0 + ws.iter().zip(action).map(|(c, a)| c * a).sum::<f64>())
    }
    fn value_and_action_gradient(
        &self,
        ws: &mut Vec<f64>,
        state: &[f64],
        action: &[f64],
        gradient: &mut [f64],
    ) -> Result<f64> {
        let value = self.value(ws, state, action)?;
        gradient.copy_from_slice(ws);
        Ok(value)
    }
    fn affine_in_action(
        &self,
        _ws: &mut Vec<f64>,
        state: &[f64],
        coefficients: &mut [f64],
    ) -> Result<Option<f64>> {
        Ok(Some(self.coefficients(state, coefficients)))
    }
}

/// q(s, a) = 1 − ½(a − s)ᵀH(a − s) with H symmetric positive definite: concave, with
/// unconstrained maximizer a = s (the state is the target action).
struct QuadraticQ {
    h: DMatrix<f64>,
}

impl QuadraticQ {
    fn random(dim: usize, rng: &mut Rng) -> Self {
        let l = DMatrix::from_fn(dim, dim, |_, _| rng.gen_range(-1.0..1.0));
        QuadraticQ {
            h: &l * l.transpose() + DMatrix::identity(dim, dim) * 0.5,
        }
    }

    fn value_at(&self, state: &[f64], action: &[f64]) -> f64 {
        let d = DVector::from_iterator(action.len(), action.iter().zip(state).map(|(a, s)| a - s));
        1.0 - 0.5 * d.dot(&(&self.h * &d))
    }

    /// The exact maximizer over the box [low, high]: for every assignment of each
    /// component to "free", "at low" or "at high", the stationary point of q over the free
    /// components with the others fixed; the best candidate inside the box. (The maximum
    /// of a concave function over a box is the stationary point of some face.)
    fn box_maximizer(&self, state: &[f64], low: &[f64], high: &[f64]) -> Vec<f64> {
        let n = state.len();
        let mut best = (f64::NEG_INFINITY, vec![]);
        for pattern in 0..3usize.pow(n as u32) {
            let mut a = state.to_vec();
            let mut free = vec![];
            let mut p = pattern;
            for i in 0..n {
                match p % 3 {
                    0 => free.push(i),
                    1 => a[i] = low[i],
                    _ => a[i] = high[i],
                }
                p /= 3;
            }
            if a.iter().any(|x| !x.is_finite()) {
                continue;
            }
            if !free.is_empty() {
                // ∂q/∂a_f = −[H(a − s)]_f = 0  ⇔  H_ff d_f = −H_fb d_b.
                let d: Vec<f64> = (0..n).map(|i| a[i] - state[i]).collect();
                let hff =
                    DMatrix::from_fn(free.len(), free.len(), |r, c| self.h[(free[r], free[c])]);
                let rhs = DVector::from_fn(free.len(), |r, _| {
                    -(0..n)
                        .filter(|j| !free.contains(j))
                        .map(|j| self.h[(free[r], j)] * d[j])
                        .sum::<f64>()
                });
                let df = hff.lu().solve(&rhs).expect("H_ff is positive definite");
                for (k, &i) in free.iter().enumerate() {
                    a[i] = state[i] + df[k];
                }
            }
            let inside = (0..n).all(|i| a[i] >= low[i] - 1e-12 && a[i] <= high[i] + 1e-12);
            let value = self.value_at(state, &a);
            if inside && value > best.0 {
                best = (value, a);
            }
        }
        best.1
    }
}

impl QFunction for QuadraticQ {
    type Workspace = ();

    fn state_dim(&self) -> usize {
        self.h.nrows()
    }
    fn action_dim(&self) -> usize {
        self.h.nrows()
    }
    fn workspace(&self) {}
    fn value(&self, _ws: &mut (), state: &[f64], action: &[f64]) -> Result<f64> {
        Ok(self.value_at(state, action))
    }
    fn value_and_action_gradient(
        &self,
        _ws: &mut (),
        state: &[f64],
        action: &[f64],
        gradient: &mut [f64],
    ) -> Result<f64> {
        let d = DVector::from_iterator(action.len(), action.iter().zip(state).map(|(a, s)| a - s));
        let g = -(&self.h * &d);
        gradient.copy_from_slice(g.as_slice());
        Ok(1.0 - 0.5 * d.dot(&(&self.h * &d)))
    }
}

// ---------------------------------------------------------------------------------------
// Helpers.

fn small_allocation_space() -> IntegerSpace {
    Allocation::small().unwrap().model().integer_space().clone()
}

/// Brute force: the best value over every feasible action and the first action reaching it.
fn brute_force_max<Q: QFunction>(q: &Q, space: &IntegerSpace, state: &[f64]) -> (f64, Vec<f64>) {
    let mut ws = q.workspace();
    let mut best = (f64::NEG_INFINITY, vec![]);
    for_each_feasible(space, |x| {
        let a: Vec<f64> = x.iter().map(|&v| v as f64).collect();
        let v = q.value(&mut ws, state, &a).unwrap();
        if v > best.0 {
            best = (v, a);
        }
        ControlFlow::<()>::Continue(())
    })
    .unwrap();
    best
}

fn box_space(low: &[f64], high: &[f64]) -> ActionSpace {
    ActionSpace::Box {
        low: low.to_vec(),
        high: high.to_vec(),
    }
}

fn random_mlp_q(state_dim: usize, hidden: Activation, seed: u64) -> MlpQ {
    let config = MlpConfig::new(&[state_dim + 1, 32, 32, 1]).hidden(hidden);
    MlpQ::from_config(&config, state_dim, &mut RunSeed(seed).stream("critic")).unwrap()
}

fn assert_invalid<T: std::fmt::Debug>(result: Result<T>, field_part: &str) {
    match result {
        Err(Error::InvalidParameter { field, .. }) => {
            assert!(
                field.contains(field_part),
                "field {field:?} lacks {field_part:?}"
            )
        }
        other => panic!("expected InvalidParameter naming {field_part}, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------
// MILP and enumeration.

#[test]
fn milp_matches_brute_force_on_small_allocation() {
    let space = small_allocation_space();
    let milp = MilpMaximizer::new(space.clone()).unwrap();
    let enumeration = EnumerationMaximizer::new(space.clone(), 1_000).unwrap();
    assert_eq!(enumeration.feasible_count(), 390);
    let seed = RunSeed(11);
    let mut rng = seed.stream("states");
    let (mut milp_ws, mut enum_ws) = (milp.workspace(), enumeration.workspace());
    let mut action = vec![0.0; 6];
    let mut ties = 0;
    for k in 0..1000 {
        // A fresh random q every 100 states, a fresh random demand every state.
        let q = AffineQ::random(3, 6, &mut seed.indexed("q", k / 100));
        let mut q_ws = q.workspace();
        let state: Vec<f64> = (0..3).map(|_| rng.gen_range(0.0..10.0)).collect();
        let (best, first_best) = brute_force_max(&q, &space, &state);

        let found = milp
            .maximize(&q, &mut q_ws, &mut milp_ws, &state, &mut action, &mut rng)
            .unwrap();
        assert_eq!(found.evaluations, 1);
        assert!(space.violation(&action).is_none(), "infeasible {action:?}");
        assert!(
            (found.value - best).abs() <= 1e-9,
            "milp {} vs {best}",
            found.value
        );
        let at_action = q.value(&mut q_ws, &state, &action).unwrap();
        assert!((found.value - at_action).abs() <= 1e-9);
        ties += usize::from(action != first_best);

        let found = enumeration
            .maximize(&q, &mut q_ws, &mut enum_ws, &state, &mut action, &mut rng)
            .unwrap();
        assert_eq!(found.evaluations, 390);
        assert_eq!(found.value, best);
        assert_eq!(
            action, first_best,
            "enumeration keeps the first best action"
        );
    }
    // Random real coefficients leave no exact ties; a different action with the same
    // value would point at one.
    assert_eq!(ties, 0);
}

#[test]
fn milp_reports_an_infeasible_space() {
    let space = IntegerSpace {
        lower: vec![0, 0],
        upper: vec![5, 5],
        constraints: vec![LinearConstraint {
            name: "sum below -1".into(),
            coefficients: vec![1.0, 1.0],
            bound: -1.0,
        }],
    };
    let milp = MilpMaximizer::new(space.clone()).unwrap();
    let q = AffineQ::random(1, 2, &mut RunSeed(1).stream("q"));
    let mut action = vec![0.0; 2];
    let result = milp.maximize(
        &q,
        &mut q.workspace(),
        &mut milp.workspace(),
        &[0.5],
        &mut action,
        &mut RunSeed(1).stream("x"),
    );
    assert!(
        matches!(&result, Err(Error::Solver { reason, .. }) if reason.contains("infeasible")),
        "{result:?}"
    );
    // Enumeration refuses the empty set when it is built.
    assert_invalid(EnumerationMaximizer::new(space, 100), "enumerate");
}

#[test]
fn milp_refuses_a_q_that_is_not_affine_in_the_action() {
    let space = small_allocation_space();
    let milp = MilpMaximizer::new(space).unwrap();
    let config = MlpConfig::new(&[3 + 6, 16, 1]);
    let q = MlpQ::from_config(&config, 3, &mut RunSeed(2).stream("critic")).unwrap();
    let mut action = vec![0.0; 6];
    let result = milp.maximize(
        &q,
        &mut q.workspace(),
        &mut milp.workspace(),
        &[1.0, 2.0, 3.0],
        &mut action,
        &mut RunSeed(2).stream("x"),
    );
    assert!(
        matches!(&result, Err(Error::Solver { reason, .. }) if reason.contains("not affine")),
        "{result:?}"
    );
}

#[test]
fn milp_solves_the_large_allocation_space() {
    // 10¹⁰ actions: no brute force, but the answer must be feasible and at least as good
    // as every action the test can check cheaply (zero, and each single unit).
    let space = Allocation::large().unwrap().model().integer_space().clone();
    let milp = MilpMaximizer::new(space.clone()).unwrap();
    let q = AffineQ::random(10, 30, &mut RunSeed(3).stream("q"));
    let mut q_ws = q.workspace();
    let state: Vec<f64> = (0..10).map(|j| j as f64 * 0.3).collect();
    let mut action = vec![0.0; 30];
    let found = milp
        .maximize(
            &q,
            &mut q_ws,
            &mut milp.workspace(),
            &state,
            &mut action,
            &mut RunSeed(3).stream("x"),
        )
        .unwrap();
    assert!(space.violation(&action).is_none());
    let mut probe = vec![0.0; 30];
    assert!(found.value >= q.value(&mut q_ws, &state, &probe).unwrap() - 1e-9);
    for k in 0..30 {
        probe.fill(0.0);
        probe[k] = 1.0;
        assert!(found.value >= q.value(&mut q_ws, &state, &probe).unwrap() - 1e-9);
    }
}

#[test]
fn integer_maximizers_reject_bad_spaces() {
    let large = Allocation::large().unwrap().model().integer_space().clone();
    // Counting stops at the limit instead of enumerating 10¹⁰ actions.
    assert_invalid(EnumerationMaximizer::new(large, 100_000), "max_actions");
    let huge = IntegerSpace {
        lower: vec![0],
        upper: vec![1 << 40],
        constraints: vec![],
    };
    assert_invalid(MilpMaximizer::new(huge), "milp");
    let malformed = IntegerSpace {
        lower: vec![3],
        upper: vec![1],
        constraints: vec![],
    };
    assert!(MilpMaximizer::new(malformed.clone()).is_err());
    assert!(EnumerationMaximizer::new(malformed, 10).is_err());
}

// ---------------------------------------------------------------------------------------
// L-BFGS on concave quadratics: interior, boundary, unbounded.

fn quadratic_case(
    settings: LbfgsSettings,
    low: &[f64],
    high: &[f64],
    state_scale: f64,
    seed: u64,
) -> f64 {
    let n = low.len();
    let maximizer = ProjectedLbfgs::new(box_space(low, high), settings).unwrap();
    let mut ws = maximizer.workspace();
    let mut worst: f64 = 0.0;
    for k in 0..20 {
        let mut rng = RunSeed(seed).indexed("case", k);
        let q = QuadraticQ::random(n, &mut rng);
        let state: Vec<f64> = (0..n)
            .map(|_| state_scale * rng.gen_range(-1.0..1.0))
            .collect();
        let expected = q.box_maximizer(&state, low, high);
        let mut action = vec![0.0; n];
        let found = maximizer
            .maximize(&q, &mut (), &mut ws, &state, &mut action, &mut rng)
            .unwrap();
        for i in 0..n {
            assert!(
                action[i] >= low[i] && action[i] <= high[i],
                "outside the box"
            );
            worst = worst.max((action[i] - expected[i]).abs());
        }
        assert_eq!(found.value, q.value_at(&state, &action));
        assert!(found.value >= q.value_at(&state, &expected) - 1e-12);
    }
    worst
}

#[test]
fn lbfgs_finds_an_interior_maximizer() {
    // Targets within ±0.5 of a box of half-width 1: the maximizer is interior.
    let worst = quadratic_case(LbfgsSettings::precise(), &[-1.0; 3], &[1.0; 3], 0.5, 1);
    assert!(worst <= 1e-6, "worst error {worst}");
}

#[test]
fn lbfgs_reaches_a_boundary_maximizer() {
    // Targets up to 3 outside a box of half-width 1: the maximizer is on a face or a
    // corner, and (H not diagonal) not simply the clamped target.
    for line_search in [LineSearchKind::MoreThuente, LineSearchKind::HagerZhang] {
        let settings = LbfgsSettings {
            line_search,
            ..LbfgsSettings::precise()
        };
        let worst = quadratic_case(settings, &[-1.0, -0.5, 0.0], &[1.0, 2.0, 0.5], 4.0, 2);
        assert!(worst <= 1e-6, "{line_search:?}: worst error {worst}");
    }
}

#[test]
fn lbfgs_handles_unbounded_and_half_bounded_boxes() {
    let inf = f64::INFINITY;
    let worst = quadratic_case(LbfgsSettings::precise(), &[-inf; 3], &[inf; 3], 5.0, 3);
    assert!(worst <= 1e-6, "unbounded: worst error {worst}");
    // One component bounded below only, one above only, one free.
    let worst = quadratic_case(
        LbfgsSettings::precise(),
        &[0.0, -inf, -inf],
        &[inf, 0.0, inf],
        2.0,
        4,
    );
    assert!(worst <= 1e-6, "half-bounded: worst error {worst}");
}

// ---------------------------------------------------------------------------------------
// L-BFGS on random networks, against a dense grid.

fn lbfgs_versus_grid(hidden: Activation, seed: u64) {
    let space = box_space(&[-2.0], &[2.0]);
    let lbfgs = ProjectedLbfgs::new(space.clone(), LbfgsSettings::default()).unwrap();
    let grid = GridMaximizer::new(space, 10_001).unwrap();
    let q = random_mlp_q(2, hidden, seed);
    let mut q_ws = q.workspace();
    let (mut lbfgs_ws, mut grid_ws) = (lbfgs.workspace(), grid.workspace());
    let mut states = RunSeed(seed).stream("states");
    let (mut a, mut b) = ([0.0], [0.0]);
    for k in 0..50 {
        let state = [states.gen_range(-2.0..2.0), states.gen_range(-2.0..2.0)];
        let mut rng = RunSeed(seed).indexed("maximize", k);
        let found = lbfgs
            .maximize(&q, &mut q_ws, &mut lbfgs_ws, &state, &mut a, &mut rng)
            .unwrap();
        let reference = grid
            .maximize(&q, &mut q_ws, &mut grid_ws, &state, &mut b, &mut rng)
            .unwrap();
        assert!((-2.0..=2.0).contains(&a[0]));
        assert_eq!(found.value, q.value(&mut q_ws, &state, &a).unwrap());
        assert!(
            found.value >= reference.value - 1e-4,
            "{hidden:?} state {state:?}: lbfgs {} at {a:?}, grid {} at {b:?}",
            found.value,
            reference.value
        );
    }
}

#[test]
fn lbfgs_matches_a_dense_grid_on_random_tanh_networks() {
    lbfgs_versus_grid(Activation::Tanh, 5);
}

#[test]
fn lbfgs_matches_a_dense_grid_on_random_relu_networks() {
    lbfgs_versus_grid(Activation::Relu, 6);
}

#[test]
fn lbfgs_is_deterministic_for_a_seed_whatever_the_thread_count() {
    let config = MlpConfig::new(&[3 + 2, 32, 32, 1]);
    let q = MlpQ::from_config(&config, 3, &mut RunSeed(7).stream("critic")).unwrap();
    let lbfgs = ProjectedLbfgs::new(
        box_space(&[-1.0, -2.0], &[1.0, 0.5]),
        LbfgsSettings::default(),
    )
    .unwrap();
    let run = |threads: usize, seed: u64| -> Vec<(f64, f64, f64, usize)> {
        with_threads(threads, || {
            (0..32u64)
                .into_par_iter()
                .map_init(
                    || (q.workspace(), lbfgs.workspace()),
                    |(q_ws, ws), k| {
                        let state = [k as f64 * 0.1, 1.0 - k as f64 * 0.05, 0.3];
                        let mut action = [0.0; 2];
                        let mut rng = RunSeed(seed).indexed("maximize", k);
                        let m = lbfgs
                            .maximize(&q, q_ws, ws, &state, &mut action, &mut rng)
                            .unwrap();
                        (action[0], action[1], m.value, m.evaluations)
                    },
                )
                .collect()
        })
    };
    let one = run(1, 9);
    assert_eq!(one, run(2, 9));
    assert_eq!(one, run(1, 9));
}

#[test]
fn lbfgs_warm_start_begins_at_the_given_action() {
    // One start, one iteration: from a warm start next to the maximizer of a concave
    // quadratic the result is far better than from the box centre.
    let settings = LbfgsSettings {
        starts: 1,
        max_iters: 1,
        projected_steps: 0,
        first_start: FirstStart::GivenAction,
        ..LbfgsSettings::default()
    };
    let space = box_space(&[-10.0, -10.0], &[10.0, 10.0]);
    let warm = ProjectedLbfgs::new(space.clone(), settings.clone()).unwrap();
    let cold = ProjectedLbfgs::new(
        space,
        LbfgsSettings {
            first_start: FirstStart::BoxCentre,
            ..settings
        },
    )
    .unwrap();
    let q = QuadraticQ::random(2, &mut RunSeed(8).stream("q"));
    let state = [7.0, -6.0];
    let mut rng = RunSeed(8).stream("x");
    let mut action = [7.01, -6.01];
    let from_warm = warm
        .maximize(
            &q,
            &mut (),
            &mut warm.workspace(),
            &state,
            &mut action,
            &mut rng,
        )
        .unwrap();
    let mut action = [7.01, -6.01];
    let from_centre = cold
        .maximize(
            &q,
            &mut (),
            &mut cold.workspace(),
            &state,
            &mut action,
            &mut rng,
        )
        .unwrap();
    assert!(from_warm.value > 1.0 - 1e-3, "{from_warm:?}");
    assert!(
        from_warm.value > from_centre.value,
        "{from_warm:?} {from_centre:?}"
    );
    // A non-finite warm start is an error, not a search from NaN.
    let mut action = [f64::NAN, 0.0];
    assert_invalid(
        warm.maximize(
            &q,
            &mut (),
            &mut warm.workspace(),
            &state,
            &mut action,
            &mut rng,
        ),
        "warm-start",
    );
}

// ---------------------------------------------------------------------------------------
// Typed errors.

#[test]
fn bad_settings_and_spaces_are_typed_errors() {
    let space = box_space(&[-1.0], &[1.0]);
    let d = LbfgsSettings::default;
    for (settings, field) in [
        (LbfgsSettings { starts: 0, ..d() }, "starts"),
        (
            LbfgsSettings {
                max_iters: 0,
                ..d()
            },
            "max_iters",
        ),
        (
            LbfgsSettings {
                max_evaluations: 0,
                ..d()
            },
            "max_evaluations",
        ),
        (LbfgsSettings { memory: 0, ..d() }, "memory"),
        (
            LbfgsSettings {
                gradient_tolerance: f64::NAN,
                ..d()
            },
            "gradient_tolerance",
        ),
        (
            LbfgsSettings {
                gradient_tolerance: -1.0,
                ..d()
            },
            "gradient_tolerance",
        ),
        (
            LbfgsSettings {
                cost_tolerance: f64::INFINITY,
                ..d()
            },
            "cost_tolerance",
        ),
    ] {
        assert_invalid(ProjectedLbfgs::new(space.clone(), settings), field);
    }
    let integer = ActionSpace::Integer(small_allocation_space());
    assert_invalid(ProjectedLbfgs::new(integer.clone(), d()), "action_space");
    assert_invalid(
        ProjectedLbfgs::new(box_space(&[1.0], &[-1.0]), d()),
        "action_space",
    );
    assert_invalid(
        ProjectedLbfgs::new(box_space(&[f64::NAN], &[1.0]), d()),
        "action_space",
    );
    assert_invalid(
        ProjectedLbfgs::new(box_space(&[0.0, 0.0], &[1.0]), d()),
        "action_space",
    );

    assert_invalid(
        GridMaximizer::new(box_space(&[0.0; 2], &[1.0; 2]), 10),
        "action_space",
    );
    assert_invalid(
        GridMaximizer::new(box_space(&[0.0], &[f64::INFINITY]), 10),
        "action_space",
    );
    assert_invalid(GridMaximizer::new(integer, 10), "action_space");
    assert_invalid(GridMaximizer::new(space.clone(), 1), "points");

    // Buffers of the wrong length: a typed error naming the buffer.
    let lbfgs = ProjectedLbfgs::new(space, d()).unwrap();
    let q = random_mlp_q(2, Activation::Relu, 1);
    let mut rng = RunSeed(1).stream("x");
    let (mut q_ws, mut ws) = (q.workspace(), lbfgs.workspace());
    assert_invalid(
        lbfgs.maximize(&q, &mut q_ws, &mut ws, &[0.0], &mut [0.0], &mut rng),
        "state",
    );
    assert_invalid(
        lbfgs.maximize(
            &q,
            &mut q_ws,
            &mut ws,
            &[0.0, 0.0],
            &mut [0.0, 0.0],
            &mut rng,
        ),
        "action",
    );
}

/// q(s, a) = exp(Σᵢ aᵢ): unbounded above, overflowing to +∞ for Σᵢ aᵢ > 709.
struct ExpQ;

impl QFunction for ExpQ {
    type Workspace = ();

    fn state_dim(&self) -> usize {
        1
    }
    fn action_dim(&self) -> usize {
        2
    }
    fn workspace(&self) {}
    fn value(&self, _ws: &mut (), _state: &[f64], action: &[f64]) -> Result<f64> {
        Ok(action.iter().sum::<f64>().exp())
    }
    fn value_and_action_gradient(
        &self,
        _ws: &mut (),
        _state: &[f64],
        action: &[f64],
        gradient: &mut [f64],
    ) -> Result<f64> {
        let value = action.iter().sum::<f64>().exp();
        gradient.fill(value);
        Ok(value)
    }
}

#[test]
fn lbfgs_reports_a_q_unbounded_above() {
    // On an unbounded box, L-BFGS climbs until q overflows: a typed error, not +∞ as a
    // maximum.
    let inf = f64::INFINITY;
    let lbfgs =
        ProjectedLbfgs::new(box_space(&[-inf; 2], &[inf; 2]), LbfgsSettings::default()).unwrap();
    let mut action = [0.0; 2];
    let result = lbfgs.maximize(
        &ExpQ,
        &mut (),
        &mut lbfgs.workspace(),
        &[1.0],
        &mut action,
        &mut RunSeed(4).stream("x"),
    );
    assert!(
        matches!(&result, Err(Error::Numerical { reason, .. }) if reason.contains("not finite")),
        "{result:?}"
    );
    // On a bounded box the same q has its maximum at the upper corner.
    let lbfgs =
        ProjectedLbfgs::new(box_space(&[-1.0; 2], &[1.0, 2.0]), LbfgsSettings::default()).unwrap();
    let found = lbfgs
        .maximize(
            &ExpQ,
            &mut (),
            &mut lbfgs.workspace(),
            &[1.0],
            &mut action,
            &mut RunSeed(4).stream("x"),
        )
        .unwrap();
    assert_eq!(action, [1.0, 2.0]);
    assert_eq!(found.value, 3.0f64.exp());
}

// ---------------------------------------------------------------------------------------
// The MLP critic.

#[test]
fn mlp_q_action_gradient_matches_finite_differences() {
    // Central differences on an f64 twin of the network (same parameters), so the
    // comparison is not drowned in f32 rounding.
    let config = MlpConfig::new(&[3 + 2, 24, 24, 1]).hidden(Activation::Tanh);
    let q = MlpQ::from_config(&config, 3, &mut RunSeed(12).stream("critic")).unwrap();
    let twin = Mlp::<f64>::from_params(
        &[5, 24, 24, 1],
        Activation::Tanh,
        Activation::Identity,
        q.network().params().iter().map(|&p| f64::from(p)).collect(),
    )
    .unwrap();
    let mut twin_ws = twin.workspace(1);
    let mut twin_q = |s: &[f64], a: &[f64]| -> f64 {
        let input: Vec<f64> = s.iter().chain(a).map(|&x| f64::from(x as f32)).collect();
        twin.forward(&input, &mut twin_ws).unwrap()[0]
    };
    let mut ws = q.workspace();
    let mut rng = RunSeed(12).stream("points");
    let mut gradient = [0.0; 2];
    for _ in 0..20 {
        let s: Vec<f64> = (0..3).map(|_| rng.gen_range(-2.0..2.0)).collect();
        let a: Vec<f64> = (0..2).map(|_| rng.gen_range(-2.0f32..2.0) as f64).collect();
        let value = q
            .value_and_action_gradient(&mut ws, &s, &a, &mut gradient)
            .unwrap();
        assert!((value - twin_q(&s, &a)).abs() <= 1e-5 * (1.0 + value.abs()));
        for i in 0..2 {
            let h = 1e-5;
            let (mut plus, mut minus) = (a.clone(), a.clone());
            plus[i] += h;
            minus[i] -= h;
            // The twin's inputs are the f32-rounded actions; difference in f64 exactly.
            let fd = {
                let input_p: Vec<f64> = s
                    .iter()
                    .map(|&x| f64::from(x as f32))
                    .chain(plus.iter().copied())
                    .collect();
                let input_m: Vec<f64> = s
                    .iter()
                    .map(|&x| f64::from(x as f32))
                    .chain(minus.iter().copied())
                    .collect();
                let qp = twin.forward(&input_p, &mut twin.workspace(1)).unwrap()[0];
                let qm = twin.forward(&input_m, &mut twin.workspace(1)).unwrap()[0];
                (qp - qm) / (2.0 * h)
            };
            assert!(
                (gradient[i] - fd).abs() <= 1e-4 * (1.0 + fd.abs()),
                "component {i}: backprop {} vs finite difference {fd}",
                gradient[i]
            );
        }
    }
}

#[test]
fn mlp_q_with_input_scaling_is_the_scaled_network_and_its_gradient_has_the_chain_rule() {
    // q(s, a) = net(((s, a) − c) · k): its value from an f64 twin fed the scaled inputs,
    // its action gradient from central differences of that twin in the raw action.
    let config = MlpConfig::new(&[2 + 2, 16, 16, 1]).hidden(Activation::Tanh);
    let (lower, upper) = ([0.0, -3.0, 0.0, 10.0], [8.0, 5.0, 4.0, 12.0]);
    let scaling = InputScaling::from_bounds(&lower, &upper).unwrap();
    let q = MlpQ::from_config(&config, 2, &mut RunSeed(14).stream("critic"))
        .unwrap()
        .with_input_scaling(scaling.clone())
        .unwrap();
    let twin = Mlp::<f64>::from_params(
        &[4, 16, 16, 1],
        Activation::Tanh,
        Activation::Identity,
        q.network().params().iter().map(|&p| f64::from(p)).collect(),
    )
    .unwrap();
    let twin_q = |s: &[f64], a: &[f64]| -> f64 {
        let input: Vec<f64> = s
            .iter()
            .chain(a)
            .enumerate()
            .map(|(k, &x)| scaling.map(k, x))
            .collect();
        twin.forward(&input, &mut twin.workspace(1)).unwrap()[0]
    };
    let mut ws = q.workspace_for_batch(20);
    let mut rng = RunSeed(14).stream("points");
    let (mut states, mut actions) = (Vec::new(), Vec::new());
    let mut gradient = [0.0; 2];
    for _ in 0..20 {
        let s: Vec<f64> = (0..2).map(|k| rng.gen_range(lower[k]..upper[k])).collect();
        let a: Vec<f64> = (2..4).map(|k| rng.gen_range(lower[k]..upper[k])).collect();
        let value = q
            .value_and_action_gradient(&mut ws, &s, &a, &mut gradient)
            .unwrap();
        assert!((value - twin_q(&s, &a)).abs() <= 1e-5 * (1.0 + value.abs()));
        for i in 0..2 {
            let h = 1e-5;
            let (mut plus, mut minus) = (a.clone(), a.clone());
            plus[i] += h;
            minus[i] -= h;
            let fd = (twin_q(&s, &plus) - twin_q(&s, &minus)) / (2.0 * h);
            assert!(
                (gradient[i] - fd).abs() <= 1e-3 * (1.0 + fd.abs()),
                "component {i}: backprop {} vs finite difference {fd}",
                gradient[i]
            );
        }
        states.extend(s);
        actions.extend(a);
    }
    // The batched path applies the same map (up to the products' f32 rounding).
    let (mut values, mut gradients) = (vec![0.0; 20], vec![0.0; 40]);
    q.values_and_action_gradients(&mut ws, &states, &actions, &mut values, &mut gradients)
        .unwrap();
    let mut one_ws = q.workspace();
    let close = |x: f64, y: f64| (x - y).abs() <= 1e-5 * (1.0 + y.abs());
    for i in 0..20 {
        let (s, a) = (&states[2 * i..2 * i + 2], &actions[2 * i..2 * i + 2]);
        let value = q
            .value_and_action_gradient(&mut one_ws, s, a, &mut gradient)
            .unwrap();
        assert!(close(values[i], value), "row {i}: {} vs {value}", values[i]);
        for k in 0..2 {
            assert!(
                close(gradients[2 * i + k], gradient[k]),
                "row {i} component {k}"
            );
        }
    }
}

#[test]
fn mlp_q_refuses_an_input_scaling_of_another_width() {
    let q = random_mlp_q(2, Activation::Relu, 15);
    let scaling = InputScaling::from_bounds(&[0.0; 2], &[1.0; 2]).unwrap();
    let err = q.with_input_scaling(scaling).unwrap_err().to_string();
    assert!(err.contains("input_scaling"), "{err}");
}

#[test]
fn mlp_q_batched_values_match_single_evaluations() {
    let q = random_mlp_q(2, Activation::Relu, 13);
    let mut rng = RunSeed(13).stream("rows");
    let rows = 37;
    let states: Vec<f64> = (0..rows * 2).map(|_| rng.gen_range(-2.0..2.0)).collect();
    let actions: Vec<f64> = (0..rows).map(|_| rng.gen_range(-2.0..2.0)).collect();
    let mut out = vec![0.0; rows];
    let mut batch_ws = q.workspace_for_batch(8); // grows once to 37 rows
    q.values_into(&mut batch_ws, &states, &actions, &mut out)
        .unwrap();
    let mut ws = q.workspace();
    for i in 0..rows {
        let single = q
            .value(&mut ws, &states[2 * i..2 * i + 2], &actions[i..i + 1])
            .unwrap();
        assert!(
            (out[i] - single).abs() <= 1e-5 * (1.0 + single.abs()),
            "row {i}"
        );
    }
    assert_invalid(
        q.values_into(&mut batch_ws, &states, &actions[1..], &mut out),
        "actions",
    );
}

#[test]
fn mlp_q_rejects_networks_that_are_not_critics() {
    let mut rng = RunSeed(14).stream("critic");
    let two_outputs = Mlp::<f32>::new(&MlpConfig::new(&[3, 8, 2]), &mut rng).unwrap();
    assert_invalid(MlpQ::new(two_outputs, 2), "network");
    let no_action = Mlp::<f32>::new(&MlpConfig::new(&[3, 8, 1]), &mut rng).unwrap();
    assert_invalid(MlpQ::new(no_action, 3), "network");
    // Replacing the network through network_mut with another architecture is caught.
    let mut q = random_mlp_q(2, Activation::Relu, 14);
    *q.network_mut() = Mlp::<f32>::new(&MlpConfig::new(&[4, 8, 1]), &mut rng).unwrap();
    assert_invalid(q.value(&mut q.workspace(), &[0.0, 0.0], &[0.0]), "network");
}

#[test]
fn mlp_q_evaluations_allocate_nothing_once_the_workspace_is_sized() {
    let q = random_mlp_q(2, Activation::Relu, 15);
    let mut ws = q.workspace();
    let (state, action) = ([0.3, -0.7], [0.5]);
    let mut gradient = [0.0];
    let rows = 16;
    let actions: Vec<f64> = (0..rows).map(|i| i as f64 / 8.0 - 1.0).collect();
    let states: Vec<f64> = (0..rows * 2).map(|i| i as f64 / 16.0 - 1.0).collect();
    let mut values = vec![0.0; rows];
    let mut evaluate = |ws: &mut _| {
        q.value(ws, &state, &action).unwrap();
        q.value_and_action_gradient(ws, &state, &action, &mut gradient)
            .unwrap();
        q.values_at_actions(ws, &state, &actions, &mut values)
            .unwrap();
        q.values_into(ws, &states, &actions, &mut values).unwrap();
    };
    evaluate(&mut ws); // sizes the workspace for 16 rows
    assert_eq!(allocated_by(|| evaluate(&mut ws)).1.calls, 0);
}

// ---------------------------------------------------------------------------------------
// Lockstep L-BFGS over many states at once (BatchedLbfgs).

fn precise_batched(starts: usize) -> BatchedLbfgsSettings {
    BatchedLbfgsSettings {
        starts,
        gradient_tolerance: 1e-10,
        cost_tolerance: 0.0,
        ..BatchedLbfgsSettings::default()
    }
}

/// The largest distance to the exact box maximizer of one random concave quadratic,
/// maximized at 20 states in one batch.
fn batched_quadratic_case(low: &[f64], high: &[f64], state_scale: f64, seed: u64) -> f64 {
    let n = low.len();
    let mut rng = RunSeed(seed).stream("case");
    let q = QuadraticQ::random(n, &mut rng);
    let count = 20;
    let states: Vec<f64> = (0..count * n)
        .map(|_| state_scale * rng.gen_range(-1.0..1.0))
        .collect();
    let solver = BatchedLbfgs::new(box_space(low, high), precise_batched(2)).unwrap();
    let starts = solver.starting_points(count, &mut rng);
    let (mut actions, mut values) = (vec![0.0; count * n], vec![0.0; count]);
    let mut ws = BatchedWorkspace::default();
    solver
        .maximize_batch(
            &q,
            &mut (),
            &mut ws,
            &states,
            &starts,
            &mut actions,
            &mut values,
        )
        .unwrap();
    let mut worst: f64 = 0.0;
    for i in 0..count {
        let (state, action) = (&states[i * n..(i + 1) * n], &actions[i * n..(i + 1) * n]);
        let expected = q.box_maximizer(state, low, high);
        for k in 0..n {
            assert!(
                action[k] >= low[k] && action[k] <= high[k],
                "outside the box"
            );
            worst = worst.max((action[k] - expected[k]).abs());
        }
        assert_eq!(values[i], q.value_at(state, action));
    }
    worst
}

#[test]
fn batched_lbfgs_finds_interior_and_boundary_quadratic_maximizers() {
    let worst = batched_quadratic_case(&[-1.0; 3], &[1.0; 3], 0.5, 21);
    assert!(worst <= 1e-6, "interior: worst error {worst}");
    let worst = batched_quadratic_case(&[-1.0, -0.5, 0.0], &[1.0, 2.0, 0.5], 4.0, 22);
    assert!(worst <= 1e-6, "boundary: worst error {worst}");
    let inf = f64::INFINITY;
    let worst = batched_quadratic_case(&[0.0, -inf, -inf], &[inf, 0.0, inf], 2.0, 23);
    assert!(worst <= 1e-6, "half-bounded: worst error {worst}");
}

#[test]
fn batched_lbfgs_matches_a_dense_grid_on_random_relu_networks() {
    let space = box_space(&[-2.0], &[2.0]);
    let solver = BatchedLbfgs::new(
        space.clone(),
        BatchedLbfgsSettings {
            starts: 8,
            ..BatchedLbfgsSettings::default()
        },
    )
    .unwrap();
    let grid = GridMaximizer::new(space, 10_001).unwrap();
    let q = random_mlp_q(2, Activation::Relu, 24);
    let mut rng = RunSeed(24).stream("states");
    let count = 50;
    let states: Vec<f64> = (0..count * 2).map(|_| rng.gen_range(-2.0..2.0)).collect();
    let starts = solver.starting_points(count, &mut rng);
    let (mut actions, mut values) = (vec![0.0; count], vec![0.0; count]);
    let (mut q_ws, mut grid_ws) = (q.workspace(), grid.workspace());
    let mut ws = BatchedWorkspace::default();
    solver
        .maximize_batch(
            &q,
            &mut q_ws,
            &mut ws,
            &states,
            &starts,
            &mut actions,
            &mut values,
        )
        .unwrap();
    for i in 0..count {
        let state = &states[2 * i..2 * i + 2];
        let mut b = [0.0];
        let reference = grid
            .maximize(&q, &mut q_ws, &mut grid_ws, state, &mut b, &mut rng)
            .unwrap();
        assert!((-2.0..=2.0).contains(&actions[i]));
        assert_eq!(
            values[i],
            q.value(&mut q_ws, state, &actions[i..i + 1]).unwrap()
        );
        assert!(
            values[i] >= reference.value - 1e-4,
            "state {state:?}: batched {} at {}, grid {} at {b:?}",
            values[i],
            actions[i],
            reference.value
        );
        // Never worse than its starts.
        for &start in &starts[8 * i..8 * (i + 1)] {
            assert!(values[i] >= q.value(&mut q_ws, state, &[start]).unwrap());
        }
    }
}

#[test]
fn batched_lbfgs_is_the_same_whatever_the_thread_count() {
    let config = MlpConfig::new(&[3 + 2, 32, 32, 1]);
    let q = MlpQ::from_config(&config, 3, &mut RunSeed(25).stream("critic")).unwrap();
    // Chunks of 4 states × 4 starts, so that two threads share the 37 states.
    let settings = BatchedLbfgsSettings {
        starts: 4,
        batch: 16,
        ..BatchedLbfgsSettings::default()
    };
    let solver = BatchedLbfgs::new(box_space(&[-1.0, -2.0], &[1.0, 0.5]), settings).unwrap();
    let count = 37;
    let mut rng = RunSeed(25).stream("states");
    let states: Vec<f64> = (0..count * 3).map(|_| rng.gen_range(-1.0..1.0)).collect();
    let run = |threads: usize| {
        let (mut actions, mut values) = (vec![0.0; count * 2], vec![0.0; count]);
        let evaluations = with_threads(threads, || {
            solver.maximize_many(&q, &states, &mut actions, &mut values, |i| {
                RunSeed(26).indexed("maximize", i as u64)
            })
        })
        .unwrap();
        (actions, values, evaluations)
    };
    let one = run(1);
    assert_eq!(one, run(2));
    // Each value is q at its action, and at least q at the state's first start (the
    // box centre).
    let mut q_ws = q.workspace();
    for i in 0..count {
        let (state, action) = (&states[3 * i..3 * i + 3], &one.0[2 * i..2 * i + 2]);
        assert_eq!(one.1[i], q.value(&mut q_ws, state, action).unwrap());
        assert!(one.1[i] >= q.value(&mut q_ws, state, &[0.0, -0.75]).unwrap());
    }
}

#[test]
fn mlp_q_batched_action_gradients_match_single_evaluations() {
    let config = MlpConfig::new(&[2 + 3, 16, 16, 1]).hidden(Activation::Tanh);
    let q = MlpQ::from_config(&config, 2, &mut RunSeed(26).stream("critic")).unwrap();
    let mut rng = RunSeed(26).stream("rows");
    let rows = 29;
    let states: Vec<f64> = (0..rows * 2).map(|_| rng.gen_range(-2.0..2.0)).collect();
    let actions: Vec<f64> = (0..rows * 3).map(|_| rng.gen_range(-2.0..2.0)).collect();
    let (mut values, mut gradients) = (vec![0.0; rows], vec![0.0; rows * 3]);
    let mut ws = q.workspace();
    q.values_and_action_gradients(&mut ws, &states, &actions, &mut values, &mut gradients)
        .unwrap();
    let mut single = [0.0; 3];
    for i in 0..rows {
        let v = q
            .value_and_action_gradient(
                &mut ws,
                &states[2 * i..2 * i + 2],
                &actions[3 * i..3 * i + 3],
                &mut single,
            )
            .unwrap();
        assert!((values[i] - v).abs() <= 1e-5 * (1.0 + v.abs()), "row {i}");
        for k in 0..3 {
            let g = gradients[3 * i + k];
            assert!(
                (g - single[k]).abs() <= 1e-5 * (1.0 + g.abs()),
                "row {i}, component {k}"
            );
        }
    }
    assert_invalid(
        q.values_and_action_gradients(&mut ws, &states, &actions, &mut values, &mut gradients[1..]),
        "gradients",
    );
}

#[test]
fn batched_lbfgs_bad_settings_and_buffers_are_typed_errors() {
    let space = box_space(&[-1.0], &[1.0]);
    for (settings, field) in [
        (
            BatchedLbfgsSettings {
                starts: 0,
                ..Default::default()
            },
            "starts",
        ),
        (
            BatchedLbfgsSettings {
                batch: 0,
                ..Default::default()
            },
            "batch",
        ),
        (
            BatchedLbfgsSettings {
                gradient_tolerance: -1.0,
                ..Default::default()
            },
            "gradient_tolerance",
        ),
        (
            BatchedLbfgsSettings {
                min_step: 0.0,
                ..Default::default()
            },
            "min_step",
        ),
    ] {
        assert_invalid(BatchedLbfgs::new(space.clone(), settings), field);
    }
    assert_invalid(
        BatchedLbfgs::new(box_space(&[1.0], &[-1.0]), BatchedLbfgsSettings::default()),
        "action_space",
    );
    let solver = BatchedLbfgs::new(space, BatchedLbfgsSettings::default()).unwrap();
    let q = random_mlp_q(2, Activation::Relu, 27);
    let (mut q_ws, mut ws) = (q.workspace(), BatchedWorkspace::default());
    let (mut actions, mut values) = (vec![0.0; 3], vec![0.0; 3]);
    let starts = vec![0.0; 3];
    let states = [0.0; 6];
    assert_invalid(
        solver.maximize_batch(
            &q,
            &mut q_ws,
            &mut ws,
            &states[1..],
            &starts,
            &mut actions,
            &mut values,
        ),
        "states",
    );
    assert_invalid(
        solver.maximize_batch(
            &q,
            &mut q_ws,
            &mut ws,
            &states,
            &starts[1..],
            &mut actions,
            &mut values,
        ),
        "starts",
    );
    assert_invalid(
        solver.maximize_many(&q, &states, &mut actions[1..], &mut values, |i| {
            RunSeed(27).indexed("maximize", i as u64)
        }),
        "actions",
    );
}
