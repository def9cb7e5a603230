//! `fitted-q-iteration-explicit` against the LQR's exact solution.
//!
//! With quadratic features and the exact quadratic maximizer, q* is in the approximator
//! class and every step is exact, so FQI is value iteration on the q-matrix and must
//! converge to Riccati's: the fitted form to `−H` (`q*(s,a) = −zᵀHz`) and the greedy
//! policy to `a = −Ks`. With a neural q and a grid maximizer only approximately.
//!
//! Base points: states uniform in a box, actions uniform in a smaller box, one noise-free
//! step each, chosen so that the maximizer of q(s', ·) stays inside the ±10 action box at
//! every iteration (clamping would make the targets non-quadratic).

mod common;

use common::{RefinedGrid, StateActionMlp};
use nalgebra::DMatrix;
use policy_param::algo::{
    sample_transitions, AdamFit, AdamFitSettings, Fit, FittedQIteration, FqiParams, LeastSquares,
    Transitions, UniformBox,
};
use policy_param::env::lqr::{Lqr, LqrParams, RiccatiSolution};
use policy_param::env::Env;
use policy_param::maximize::{Maximizer, QFunction, QuadraticArgmax};
use policy_param::nn::{AdamConfig, Mlp, MlpConfig};
use policy_param::qfunction::linear::{LinearQ, QuadraticFeatures};
use policy_param::rng::RunSeed;
use policy_param::Error;

fn uniform(low: f64, high: f64, dim: usize) -> UniformBox {
    UniformBox {
        low: vec![low; dim],
        high: vec![high; dim],
    }
}

/// `count` base points with states in `[−state_bound, state_bound]ⁿ` and actions in
/// `[−action_bound, action_bound]ᵐ`.
fn base_points(
    env: &mut Lqr,
    state_bound: f64,
    action_bound: f64,
    count: usize,
    seed: u64,
) -> Transitions {
    let (n, m) = (env.system().state_dim(), env.system().action_dim());
    sample_transitions(
        env,
        &uniform(-state_bound, state_bound, n),
        Some(&uniform(-action_bound, action_bound, m)),
        count,
        RunSeed(seed),
    )
    .expect("base points")
}

/// The gain K̂ (m×n) of the greedy policy by least squares of its actions on `states`:
/// `a ≈ −K̂ s`.
fn greedy_gain<Q: QFunction, M: Maximizer>(
    q: &Q,
    maximizer: &M,
    states: &[Vec<f64>],
) -> DMatrix<f64> {
    let policy = policy_param::algo::GreedyPolicy::new(q, maximizer).expect("policy");
    let mut ws = policy.workspace();
    let mut rng = RunSeed(0).stream("greedy");
    let (n, m) = (q.state_dim(), q.action_dim());
    let mut s_matrix = DMatrix::zeros(states.len(), n);
    let mut a_matrix = DMatrix::zeros(states.len(), m);
    let mut action = vec![0.0; m];
    for (row, s) in states.iter().enumerate() {
        let observation: Vec<f32> = s.iter().map(|&x| x as f32).collect();
        policy
            .greedy_action(&mut ws, &observation, &mut rng, &mut action)
            .expect("greedy action");
        for j in 0..n {
            s_matrix[(row, j)] = f64::from(observation[j]);
        }
        for j in 0..m {
            a_matrix[(row, j)] = -action[j];
        }
    }
    // K̂ᵀ = (SᵀS)⁻¹ Sᵀ(−A).
    let kt = (s_matrix.transpose() * &s_matrix)
        .cholesky()
        .expect("states span the space")
        .solve(&(s_matrix.transpose() * a_matrix));
    kt.transpose()
}

/// A grid of states in `[−bound, bound]ⁿ` (n = 1 or 2), `points` per axis.
fn state_grid(n: usize, bound: f64, points: usize) -> Vec<Vec<f64>> {
    let axis: Vec<f64> = (0..points)
        .map(|i| -bound + 2.0 * bound * i as f64 / (points - 1) as f64)
        .collect();
    match n {
        1 => axis.iter().map(|&x| vec![x]).collect(),
        2 => axis
            .iter()
            .flat_map(|&x| axis.iter().map(move |&y| vec![x, y]))
            .collect(),
        _ => unreachable!(),
    }
}

fn relative(a: &DMatrix<f64>, b: &DMatrix<f64>) -> f64 {
    (a - b).norm() / b.norm()
}

type QuadraticFqi = FittedQIteration<LinearQ<QuadraticFeatures>, QuadraticArgmax, LeastSquares>;

fn quadratic_fqi(
    params: LqrParams,
    state_bound: f64,
    action_bound: f64,
) -> (QuadraticFqi, RiccatiSolution, Lqr) {
    let mut env = Lqr::new(params).expect("lqr");
    let solution = env.solve().expect("riccati");
    let data = base_points(&mut env, state_bound, action_bound, 400, 1);
    let (n, m) = (env.system().state_dim(), env.system().action_dim());
    let fqi = FittedQIteration::new(
        &FqiParams {
            gamma: env.system().gamma(),
            max_iterations: 3000,
            tolerance: 1e-20,
            delta_actions_per_state: 2,
            seed: RunSeed(5),
        },
        LinearQ::zeros(QuadraticFeatures::new(n, m).unwrap()),
        QuadraticArgmax::new(env.action_space()).unwrap(),
        LeastSquares::default(),
        data,
    )
    .expect("fqi");
    (fqi, solution, env)
}

fn check_quadratic_fqi_recovers_riccati(params: LqrParams, state_bound: f64, action_bound: f64) {
    let (mut fqi, solution, env) = quadratic_fqi(params, state_bound, action_bound);
    let mut deltas = Vec::new();
    let summary = fqi.run(|report| deltas.push(report.delta)).expect("run");
    assert!(summary.converged, "{summary:?}");
    let form = fqi.q().quadratic_form();
    let h = solution.q_matrix();
    let error = relative(&(-&form.matrix), h);
    eprintln!(
        "{} iterations, relative error of M: {error:e}, l = {}, c = {}",
        summary.iterations, form.linear, form.constant
    );
    assert!(error < 1e-3, "‖M + H‖/‖H‖ = {error}");
    assert!(
        form.linear.norm() < 1e-3 * h.norm(),
        "linear part {}",
        form.linear
    );
    assert!(
        form.constant.abs() < 1e-3 * h.norm(),
        "constant {}",
        form.constant
    );

    let n = env.system().state_dim();
    let gain = greedy_gain(fqi.q(), fqi.maximizer(), &state_grid(n, 1.0, 11));
    let gain_error = relative(&gain, solution.gain());
    eprintln!("greedy gain {gain}, Riccati {}", solution.gain());
    assert!(gain_error < 1e-3, "gain {gain} vs {}", solution.gain());
}

#[test]
fn quadratic_fqi_recovers_the_scalar_riccati_solution() {
    check_quadratic_fqi_recovers_riccati(LqrParams::scalar(), 2.0, 2.0);
}

#[test]
fn quadratic_fqi_recovers_the_double_integrator_riccati_solution() {
    check_quadratic_fqi_recovers_riccati(LqrParams::double_integrator(), 1.0, 1.0);
}
