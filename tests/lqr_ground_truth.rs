//! The LQR ground truth checked against independent computations: the Riccati equation
//! itself, value iteration, brute-force search over linear policies, the hard and soft
//! Bellman equations (expectations exact or by quadrature), rollouts of the environment,
//! and the typed errors of bad parameters.

use nalgebra::DMatrix;
use policy_param::env::lqr::{
    InitialState, Lqr, LqrParams, LqrSystem, RiccatiSolution, SoftLqrSolution,
};
use policy_param::env::{make, Env};
use policy_param::rng::RunSeed;
use policy_param::Error;
use rand::Rng as _;
use rand_distr::StandardNormal;

fn matrix(rows: usize, cols: usize, row_major: &[f64]) -> DMatrix<f64> {
    DMatrix::from_row_slice(rows, cols, row_major)
}

/// An unstable 3-state, 1-input system (controllable through a chain).
fn unstable_chain() -> LqrParams {
    LqrParams {
        a: matrix(3, 3, &[1.2, 0.5, 0.0, 0.0, 0.9, 1.0, 0.3, 0.0, 1.1]),
        b: matrix(3, 1, &[0.0, 0.0, 1.0]),
        q: DMatrix::identity(3, 3),
        r: matrix(1, 1, &[0.5]),
        gamma: 0.97,
        noise_covariance: None,
        initial_state: InitialState::Fixed(vec![1.0, -1.0, 0.5]),
        horizon: None,
        action_limit: f64::INFINITY,
    }
}

/// Double integrator observed only through its position (Q singular but detectable).
fn position_only_double_integrator() -> LqrParams {
    let mut p = LqrParams::double_integrator();
    p.q = matrix(2, 2, &[1.0, 0.0, 0.0, 0.0]);
    p
}

/// Undiscounted double integrator (γ = 1, deterministic).
fn undiscounted_double_integrator() -> LqrParams {
    let mut p = LqrParams::double_integrator();
    p.gamma = 1.0;
    p
}

fn deterministic(mut p: LqrParams) -> LqrParams {
    p.noise_covariance = None;
    p
}

fn noisy_scalar() -> LqrParams {
    let mut p = LqrParams::scalar();
    p.noise_covariance = Some(matrix(1, 1, &[0.04]));
    p
}

/// Every system the ground-truth tests run on, with a name for failure messages.
fn systems() -> Vec<(&'static str, LqrSystem)> {
    vec![
        ("scalar (unstable)", LqrParams::scalar()),
        ("noisy scalar", noisy_scalar()),
        ("double integrator", LqrParams::double_integrator()),
        (
            "position-only double integrator",
            position_only_double_integrator(),
        ),
        (
            "undiscounted double integrator",
            undiscounted_double_integrator(),
        ),
        ("random stable 4x2 (noisy)", LqrParams::random_stable(1)),
        (
            "random stable 4x2 #2",
            deterministic(LqrParams::random_stable(2)),
        ),
        ("unstable chain 3x1", unstable_chain()),
    ]
    .into_iter()
    .map(|(name, p)| (name, p.check().expect("test systems are valid")))
    .collect()
}

/// One application of the discounted Riccati map, written out directly.
fn riccati_map(sys: &LqrSystem, p: &DMatrix<f64>) -> DMatrix<f64> {
    let (a, b, g) = (sys.a(), sys.b(), sys.gamma());
    let inner = (sys.r() + b.transpose() * p * b * g).try_inverse().unwrap();
    sys.q() + a.transpose() * p * a * g
        - a.transpose() * p * b * inner * b.transpose() * p * a * (g * g)
}

fn gain_of(sys: &LqrSystem, p: &DMatrix<f64>) -> DMatrix<f64> {
    let (a, b, g) = (sys.a(), sys.b(), sys.gamma());
    (sys.r() + b.transpose() * p * b * g).try_inverse().unwrap() * b.transpose() * p * a * g
}

fn random_vector(rng: &mut policy_param::rng::Rng, n: usize, scale: f64) -> Vec<f64> {
    (0..n)
        .map(|_| scale * rng.sample::<f64, _>(StandardNormal))
        .collect()
}

fn rel_err(x: f64, y: f64) -> f64 {
    (x - y).abs() / x.abs().max(y.abs()).max(1.0)
}

#[test]
fn riccati_residual_is_tiny_on_every_system() {
    for (name, sys) in systems() {
        let sol = RiccatiSolution::solve(&sys).unwrap();
        let p = sol.p();
        let residual = (riccati_map(&sys, p) - p).norm() / p.norm();
        assert!(residual <= 1e-9, "{name}: relative residual {residual:e}");
        // P is symmetric positive definite for these (detectable, Q ≠ 0) systems.
        assert!(
            (p - p.transpose()).norm() <= 1e-12 * p.norm(),
            "{name}: P not symmetric"
        );
        assert!(
            p.clone().cholesky().is_some(),
            "{name}: P not positive definite"
        );
    }
}

#[test]
fn gain_matches_value_iteration_from_zero() {
    for (name, sys) in systems() {
        let sol = RiccatiSolution::solve(&sys).unwrap();
        let n = sys.state_dim();
        let mut p = DMatrix::zeros(n, n);
        let mut converged = false;
        for _ in 0..1_000_000 {
            let next = riccati_map(&sys, &p);
            let change = (&next - &p).norm();
            p = next;
            if change <= 1e-14 * p.norm() {
                converged = true;
                break;
            }
        }
        assert!(converged, "{name}: value iteration did not converge");
        let k_vi = gain_of(&sys, &p);
        let diff = (&k_vi - sol.gain()).amax();
        assert!(
            diff <= 1e-8 * sol.gain().amax().max(1.0),
            "{name}: |K_vi − K| = {diff:e}"
        );
        let p_diff = (&p - sol.p()).amax();
        assert!(
            p_diff <= 1e-8 * sol.p().amax(),
            "{name}: |P_vi − P| = {p_diff:e}"
        );
    }
}

/// Scalar system: the value of the linear policy `a = −k s` is `−p_k s²` with
/// `p_k = (q + r k²) / (1 − γ (a − b k)²)` when `γ (a − b k)² < 1`. Minimizing `p_k` over
/// `k` by a fine grid then golden-section search must find the Riccati gain and `P`.
#[test]
fn scalar_gain_matches_brute_force_search_over_linear_policies() {
    for params in [LqrParams::scalar(), {
        let mut p = LqrParams::scalar();
        p.a = matrix(1, 1, &[0.7]);
        p.b = matrix(1, 1, &[-2.0]);
        p.r = matrix(1, 1, &[0.3]);
        p.gamma = 0.9;
        p
    }] {
        let sys = params.check().unwrap();
        let (a, b, q, r, g) = (
            sys.a()[(0, 0)],
            sys.b()[(0, 0)],
            sys.q()[(0, 0)],
            sys.r()[(0, 0)],
            sys.gamma(),
        );
        let policy_cost = |k: f64| {
            let closed = a - b * k;
            if g * closed * closed >= 1.0 {
                f64::INFINITY
            } else {
                (q + r * k * k) / (1.0 - g * closed * closed)
            }
        };
        let (lo, hi, steps) = (-5.0, 5.0, 100_000);
        let h = (hi - lo) / steps as f64;
        let best = (0..=steps)
            .map(|i| lo + h * i as f64)
            .min_by(|x, y| policy_cost(*x).total_cmp(&policy_cost(*y)))
            .unwrap();
        let (mut left, mut right) = (best - h, best + h);
        let ratio = (5f64.sqrt() - 1.0) / 2.0;
        while right - left > 1e-12 {
            let (m1, m2) = (
                right - ratio * (right - left),
                left + ratio * (right - left),
            );
            if policy_cost(m1) < policy_cost(m2) {
                right = m2;
            } else {
                left = m1;
            }
        }
        let k_search = 0.5 * (left + right);
        let sol = RiccatiSolution::solve(&sys).unwrap();
        let k = sol.gain()[(0, 0)];
        assert!(
            (k - k_search).abs() <= 1e-6,
            "K = {k}, search found {k_search}"
        );
        let p = sol.p()[(0, 0)];
        assert!(
            rel_err(p, policy_cost(k_search)) <= 1e-10,
            "P = {p}, search {}",
            policy_cost(k_search)
        );
    }
}

/// `q*(s,a) = r(s,a) + γ E[max_a' q*(s',a')]`, with the max and the expectation taken
/// exactly from the quadratic form: `max_a' q*(s',a') = −s'ᵀ M s' − c` with `M` the Schur
/// complement of `H_aa` in `H`, and `E[s'ᵀMs'] = μᵀMμ + tr(MΣ)` for `s' ~ N(μ, Σ)`.
#[test]
fn q_star_satisfies_the_hard_bellman_equation() {
    let mut rng = RunSeed(11).stream("bellman");
    for (name, sys) in systems() {
        let sol = RiccatiSolution::solve(&sys).unwrap();
        let (n, m) = (sys.state_dim(), sys.action_dim());
        let h = sol.q_matrix();
        let h_ss = h.view((0, 0), (n, n)).into_owned();
        let h_sa = h.view((0, n), (n, m)).into_owned();
        let h_aa = h.view((n, n), (m, m)).into_owned();
        let schur = &h_ss - &h_sa * h_aa.try_inverse().unwrap() * h_sa.transpose();
        let noise_term = sys.noise_covariance().map_or(0.0, |s| (&schur * s).trace());
        for _ in 0..20 {
            let s = random_vector(&mut rng, n, 1.0);
            let a = random_vector(&mut rng, m, 1.0);
            let mean = sys.a() * DMatrix::from_column_slice(n, 1, &s)
                + sys.b() * DMatrix::from_column_slice(m, 1, &a);
            let expected_max =
                -(mean.transpose() * &schur * &mean)[(0, 0)] - noise_term - sol.constant();
            let reward = -(sys.q().clone() * DMatrix::from_column_slice(n, 1, &s))
                .dot(&DMatrix::from_column_slice(n, 1, &s))
                - (sys.r().clone() * DMatrix::from_column_slice(m, 1, &a))
                    .dot(&DMatrix::from_column_slice(m, 1, &a));
            let target = reward + sys.gamma() * expected_max;
            let q = sol.q_star(&s, &a).unwrap();
            assert!(
                rel_err(q, target) <= 1e-9,
                "{name}: q* = {q}, Bellman target {target}"
            );
        }
    }
}

/// The same Bellman equation with the expectation estimated by stepping the environment:
/// this checks the environment's reward, dynamics and noise covariance against the model.
#[test]
fn q_star_matches_monte_carlo_backups_through_the_env() {
    for params in [LqrParams::random_stable(3), noisy_scalar()] {
        let mut env = Lqr::new(params).unwrap();
        let sol = env.solve().unwrap();
        let (n, m) = (env.system().state_dim(), env.system().action_dim());
        let gamma = env.system().gamma();
        let mut rng = RunSeed(5).stream("states");
        env.reset(Some(99));
        for _ in 0..3 {
            let s = random_vector(&mut rng, n, 1.0);
            let a = random_vector(&mut rng, m, 1.0);
            let samples = 20_000;
            let (mut sum, mut sum_sq) = (0.0, 0.0);
            for _ in 0..samples {
                env.set_state(&s, 0).unwrap();
                let step = env.step(&a).unwrap();
                let backup = step.reward + gamma * sol.v_star(env.state()).unwrap();
                sum += backup;
                sum_sq += backup * backup;
            }
            let mean = sum / samples as f64;
            let std_err = ((sum_sq / samples as f64 - mean * mean) / samples as f64).sqrt();
            let q = sol.q_star(&s, &a).unwrap();
            assert!(
                (mean - q).abs() <= 5.0 * std_err,
                "q* = {q}, Monte Carlo {mean} ± {std_err}"
            );
        }
    }
}

#[test]
fn env_step_is_the_linear_model_and_reward_is_minus_the_quadratic_cost() {
    let mut env = Lqr::new(deterministic(LqrParams::random_stable(4))).unwrap();
    let sys = env.system().clone();
    let s = [0.3, -1.2, 0.7, 2.0];
    let a = [0.5, -0.25];
    env.set_state(&s, 0).unwrap();
    let step = env.step(&a).unwrap();
    let sv = DMatrix::from_column_slice(4, 1, &s);
    let av = DMatrix::from_column_slice(2, 1, &a);
    let next = sys.a() * &sv + sys.b() * &av;
    for i in 0..4 {
        assert!((env.state()[i] - next[i]).abs() <= 1e-14);
        assert_eq!(step.observation[i], env.state()[i] as f32);
    }
    let cost = (sv.transpose() * sys.q() * &sv)[(0, 0)] + (av.transpose() * sys.r() * &av)[(0, 0)];
    assert!((step.reward + cost).abs() <= 1e-12);
}

#[test]
fn env_noise_has_the_requested_singular_covariance() {
    let mut params = deterministic(LqrParams::double_integrator());
    params.noise_covariance = Some(matrix(2, 2, &[0.0, 0.0, 0.0, 0.04]));
    let mut env = Lqr::new(params).unwrap();
    env.reset(Some(1));
    let samples = 20_000;
    let (mut sum_sq_pos, mut sum_vel, mut sum_sq_vel) = (0.0, 0.0, 0.0);
    for _ in 0..samples {
        env.set_state(&[0.0, 0.0], 0).unwrap();
        env.step(&[0.0]).unwrap();
        let w = env.state();
        sum_sq_pos += w[0] * w[0];
        sum_vel += w[1];
        sum_sq_vel += w[1] * w[1];
    }
    assert!(
        sum_sq_pos < 1e-20,
        "noise leaked into the noiseless component"
    );
    let var = sum_sq_vel / samples as f64;
    // The sample variance of N(0, 0.04) has standard error 0.04·√(2/N).
    assert!(
        (var - 0.04).abs() <= 5.0 * 0.04 * (2.0 / samples as f64).sqrt(),
        "variance {var}"
    );
    assert!((sum_vel / samples as f64).abs() <= 5.0 * 0.2 / (samples as f64).sqrt());
}

#[test]
fn v_star_is_the_max_of_q_star_attained_at_minus_k_s() {
    let mut rng = RunSeed(12).stream("max");
    for (name, sys) in systems() {
        let sol = RiccatiSolution::solve(&sys).unwrap();
        let (n, m) = (sys.state_dim(), sys.action_dim());
        for _ in 0..10 {
            let s = random_vector(&mut rng, n, 1.0);
            let mut best = vec![0.0; m];
            sol.optimal_action_into(&s, &mut best).unwrap();
            let kx = -(sol.gain() * DMatrix::from_column_slice(n, 1, &s));
            for i in 0..m {
                assert!((best[i] - kx[i]).abs() <= 1e-12);
            }
            let v = sol.v_star(&s).unwrap();
            let q_best = sol.q_star(&s, &best).unwrap();
            assert!(
                rel_err(v, q_best) <= 1e-10,
                "{name}: v* = {v}, q*(s, −Ks) = {q_best}"
            );
            for _ in 0..10 {
                let delta = random_vector(&mut rng, m, 0.1);
                let other: Vec<f64> = best.iter().zip(&delta).map(|(x, d)| x + d).collect();
                assert!(
                    sol.q_star(&s, &other).unwrap() < q_best,
                    "{name}: −Ks is not the argmax"
                );
            }
        }
    }
}

#[test]
fn rolling_out_minus_k_s_earns_v_star() {
    for params in [
        LqrParams::scalar(),
        LqrParams::double_integrator(),
        position_only_double_integrator(),
        deterministic(LqrParams::random_stable(2)),
        unstable_chain(),
    ] {
        let mut params = params;
        params.horizon = None;
        let mut env = Lqr::new(params).unwrap();
        let sol = env.solve().unwrap();
        let gamma = env.system().gamma();
        let steps = ((1e-18f64).ln() / gamma.ln()).ceil() as usize;
        let mut rng = RunSeed(13).stream("rollout");
        let s0 = random_vector(&mut rng, env.system().state_dim(), 1.0);
        env.set_state(&s0, 0).unwrap();
        let mut action = vec![0.0; env.system().action_dim()];
        let (mut ret, mut discount) = (0.0, 1.0);
        for _ in 0..steps {
            sol.optimal_action_into(env.state(), &mut action).unwrap();
            ret += discount * env.step(&action).unwrap().reward;
            discount *= gamma;
        }
        let v = sol.v_star(&s0).unwrap();
        assert!(rel_err(ret, v) <= 1e-8, "return {ret}, v* {v}");
    }
}

/// `β log ∫ exp(f(a)/β) da` for a concave quadratic `f` in one variable, by the
/// trapezoid rule on ±`width` around `center` (log-sum-exp for stability).
fn log_integral(f: impl Fn(f64) -> f64, beta: f64, center: f64, width: f64, points: usize) -> f64 {
    let h = 2.0 * width / (points - 1) as f64;
    let values: Vec<f64> = (0..points)
        .map(|i| f(center - width + h * i as f64) / beta)
        .collect();
    let top = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let sum: f64 = values
        .iter()
        .enumerate()
        .map(|(i, v)| if i == 0 || i == points - 1 { 0.5 } else { 1.0 } * (v - top).exp())
        .sum();
    beta * (top + (h * sum).ln())
}

/// Scalar soft LQR: q(s,a) = r + γ E_w[β log ∫ exp(q(s',a')/β) da'], the inner integral
/// and the Gaussian expectation over the noise both by quadrature.
#[test]
fn soft_q_star_satisfies_the_smooth_bellman_equation_by_quadrature() {
    for (params, beta) in [
        (LqrParams::scalar(), 0.5),
        (noisy_scalar(), 0.5),
        (noisy_scalar(), 3.0),
    ] {
        let sys = params.check().unwrap();
        let soft = SoftLqrSolution::solve(&sys, beta).unwrap();
        let (a, b, q, r, g) = (
            sys.a()[(0, 0)],
            sys.b()[(0, 0)],
            sys.q()[(0, 0)],
            sys.r()[(0, 0)],
            sys.gamma(),
        );
        let h = soft.hard().q_matrix();
        // The integrand exp(q(s',·)/β) is a Gaussian with this standard deviation.
        let action_std = (beta / (2.0 * h[(1, 1)])).sqrt();
        let soft_value = |s_next: f64| {
            let center = -h[(1, 0)] / h[(1, 1)] * s_next;
            log_integral(
                |u| soft.q_star(&[s_next], &[u]).unwrap(),
                beta,
                center,
                20.0 * action_std,
                4001,
            )
        };
        let noise_var = sys.noise_covariance().map_or(0.0, |c| c[(0, 0)]);
        for &(s, u) in &[(0.0, 0.0), (1.0, -0.5), (-2.0, 1.5), (0.4, 3.0)] {
            let mean = a * s + b * u;
            let expected_next = if noise_var == 0.0 {
                soft_value(mean)
            } else {
                let sd = noise_var.sqrt();
                let (points, width) = (801, 12.0 * sd);
                let dw = 2.0 * width / (points - 1) as f64;
                (0..points)
                    .map(|i| {
                        let w = -width + dw * i as f64;
                        let weight = if i == 0 || i == points - 1 { 0.5 } else { 1.0 };
                        let density = (-0.5 * w * w / noise_var).exp()
                            / (2.0 * std::f64::consts::PI * noise_var).sqrt();
                        weight * dw * density * soft_value(mean + w)
                    })
                    .sum()
            };
            let target = -(q * s * s + r * u * u) + g * expected_next;
            let q_soft = soft.q_star(&[s], &[u]).unwrap();
            assert!(
                (q_soft - target).abs() <= 1e-6,
                "β={beta}: soft q* = {q_soft}, target {target}"
            );
            // And v* is the log-integral of q* at the same state.
            let v = soft.v_star(&[s]).unwrap();
            assert!(
                (v - soft_value(s)).abs() <= 1e-6,
                "β={beta}: soft v* = {v}, quadrature {}",
                soft_value(s)
            );
        }
    }
}

#[test]
fn soft_policy_is_the_normalized_boltzmann_density_with_the_stated_moments() {
    let sys = noisy_scalar().check().unwrap();
    let soft = SoftLqrSolution::solve(&sys, 0.8).unwrap();
    let var = soft.policy_covariance()[(0, 0)];
    let hard = soft.hard();
    // Σ_a = (β/2)(R + γBᵀPB)⁻¹, computed here from P.
    let expected_var =
        0.4 / (sys.r()[(0, 0)] + sys.gamma() * sys.b()[(0, 0)].powi(2) * hard.p()[(0, 0)]);
    assert!(rel_err(var, expected_var) <= 1e-12);
    for s in [-1.5, 0.0, 0.7] {
        let mean_expected = -hard.gain()[(0, 0)] * s;
        let (points, width) = (4001, 20.0 * var.sqrt());
        let h = 2.0 * width / (points - 1) as f64;
        let (mut mass, mut first, mut second) = (0.0, 0.0, 0.0);
        for i in 0..points {
            let a = mean_expected - width + h * i as f64;
            let weight = if i == 0 || i == points - 1 { 0.5 } else { 1.0 } * h;
            let density = soft.policy_log_density(&[s], &[a]).unwrap().exp();
            mass += weight * density;
            first += weight * density * a;
            second += weight * density * (a - mean_expected).powi(2);
        }
        assert!((mass - 1.0).abs() <= 1e-9, "density integrates to {mass}");
        assert!(
            (first - mean_expected).abs() <= 1e-9,
            "mean {first}, expected {mean_expected}"
        );
        assert!(
            rel_err(second, var) <= 1e-9,
            "variance {second}, expected {var}"
        );
    }
}

#[test]
fn soft_policy_density_is_gaussian_in_two_dimensions_and_integrates_to_one() {
    let sys = LqrParams::random_stable(6).check().unwrap();
    let beta = 0.3;
    let soft = SoftLqrSolution::solve(&sys, beta).unwrap();
    let cov = soft.policy_covariance().clone();
    let cov_inv = cov.clone().try_inverse().unwrap();
    let log_norm = -0.5 * (2.0 * std::f64::consts::PI).ln() * 2.0 - 0.5 * cov.determinant().ln();
    let s = [0.5, -0.3, 1.0, 0.2];
    let mut mean = [0.0; 2];
    soft.policy_mean_into(&s, &mut mean).unwrap();
    let mut rng = RunSeed(14).stream("density");
    for _ in 0..20 {
        let a: Vec<f64> = random_vector(&mut rng, 2, 0.3)
            .iter()
            .zip(&mean)
            .map(|(d, m)| d + m)
            .collect();
        let d = DMatrix::from_fn(2, 1, |i, _| a[i] - mean[i]);
        let expected = log_norm - 0.5 * (d.transpose() * &cov_inv * &d)[(0, 0)];
        let got = soft.policy_log_density(&s, &a).unwrap();
        assert!(
            (got - expected).abs() <= 1e-9,
            "log density {got}, Gaussian {expected}"
        );
    }
    // Trapezoid over a ±12σ square (σ the largest standard deviation).
    let sd = cov.symmetric_eigenvalues().max().sqrt();
    let (points, width) = (601, 12.0 * sd);
    let h = 2.0 * width / (points - 1) as f64;
    let mut mass = 0.0;
    for i in 0..points {
        for j in 0..points {
            let a = [
                mean[0] - width + h * i as f64,
                mean[1] - width + h * j as f64,
            ];
            let wi = if i == 0 || i == points - 1 { 0.5 } else { 1.0 };
            let wj = if j == 0 || j == points - 1 { 0.5 } else { 1.0 };
            mass += wi * wj * h * h * soft.policy_log_density(&s, &a).unwrap().exp();
        }
    }
    assert!(
        (mass - 1.0).abs() <= 1e-8,
        "2-D density integrates to {mass}"
    );
}

#[test]
fn soft_policy_samples_have_the_policy_moments() {
    let sys = LqrParams::random_stable(7).check().unwrap();
    let soft = SoftLqrSolution::solve(&sys, 1.0).unwrap();
    let s = [1.0, 0.0, -0.5, 0.25];
    let mut mean = [0.0; 2];
    soft.policy_mean_into(&s, &mut mean).unwrap();
    let mut rng = RunSeed(15).stream("samples");
    let (mut scratch, mut a) = ([0.0; 2], [0.0; 2]);
    let n = 40_000;
    let mut sums = [0.0; 2];
    for _ in 0..n {
        soft.sample_action_into(&s, &mut rng, &mut scratch, &mut a)
            .unwrap();
        sums[0] += a[0];
        sums[1] += a[1];
    }
    for i in 0..2 {
        let sd = soft.policy_covariance()[(i, i)].sqrt();
        let got = sums[i] / n as f64;
        assert!(
            (got - mean[i]).abs() <= 5.0 * sd / (n as f64).sqrt(),
            "sample mean {got}, policy mean {}",
            mean[i]
        );
    }
}

#[test]
fn make_builds_the_default_lqr_and_seeded_resets_repeat() {
    let mut env = make("Lqr").unwrap();
    assert_eq!(env.id(), "Lqr");
    assert_eq!(env.observation_dim(), 2);
    assert_eq!(env.action_space().dim(), 1);
    let first = env.reset(Some(3));
    assert!(first.iter().all(|x| (-1.0..=1.0).contains(x)));
    let other = env.reset(Some(4));
    assert_ne!(first, other);
    assert_eq!(env.reset(Some(3)), first);
    let mut steps = 0;
    loop {
        steps += 1;
        if env.step(&[0.0]).unwrap().truncated {
            break;
        }
    }
    assert_eq!(Some(steps), env.max_episode_steps());
}

#[test]
fn fixed_and_gaussian_initial_states() {
    let mut params = LqrParams::double_integrator();
    params.initial_state = InitialState::Fixed(vec![0.25, -4.0]);
    let mut env = Lqr::new(params.clone()).unwrap();
    assert_eq!(env.reset(Some(0)), vec![0.25f32, -4.0]);
    params.initial_state = InitialState::Gaussian {
        mean: vec![1.0, -2.0],
        covariance: matrix(2, 2, &[0.25, 0.0, 0.0, 0.0]),
    };
    let mut env = Lqr::new(params).unwrap();
    env.reset(Some(0));
    let n = 20_000;
    let mut sum = 0.0;
    for _ in 0..n {
        env.reset(None);
        assert_eq!(env.state()[1], -2.0, "a zero-variance component moved");
        sum += env.state()[0];
    }
    assert!((sum / n as f64 - 1.0).abs() <= 5.0 * 0.5 / (n as f64).sqrt());
}

fn expect_invalid(result: Result<LqrSystem, Error>, field: &str) {
    match result {
        Err(Error::InvalidParameter { field: f, .. }) => {
            assert!(f.starts_with(field), "error names {f}, expected {field}")
        }
        other => panic!("expected InvalidParameter for {field}, got {other:?}"),
    }
}

#[test]
fn invalid_parameters_are_typed_errors_naming_the_field() {
    let base = LqrParams::double_integrator;
    let with = |f: &dyn Fn(&mut LqrParams)| {
        let mut p = base();
        f(&mut p);
        p.check()
    };
    expect_invalid(with(&|p| p.b = matrix(3, 1, &[0.0, 0.1, 0.2])), "b");
    expect_invalid(with(&|p| p.a = matrix(2, 3, &[1.0; 6])), "a");
    expect_invalid(with(&|p| p.q = matrix(2, 2, &[1.0, 0.5, 0.0, 1.0])), "q");
    expect_invalid(with(&|p| p.q = matrix(2, 2, &[1.0, 0.0, 0.0, -0.1])), "q");
    expect_invalid(with(&|p| p.r = matrix(1, 1, &[0.0])), "r");
    expect_invalid(with(&|p| p.r = matrix(1, 1, &[-1.0])), "r");
    expect_invalid(with(&|p| p.r = matrix(2, 2, &[1.0, 0.0, 0.0, 1.0])), "r");
    expect_invalid(with(&|p| p.a[(0, 1)] = f64::NAN), "a");
    expect_invalid(with(&|p| p.gamma = 0.0), "gamma");
    expect_invalid(with(&|p| p.gamma = 1.5), "gamma");
    expect_invalid(with(&|p| p.gamma = f64::NAN), "gamma");
    expect_invalid(
        with(&|p| p.noise_covariance = Some(matrix(2, 2, &[1.0, 2.0, 2.0, 1.0]))),
        "noise_covariance",
    );
    expect_invalid(
        with(&|p| p.noise_covariance = Some(DMatrix::identity(3, 3))),
        "noise_covariance",
    );
    expect_invalid(
        with(&|p| {
            p.initial_state = InitialState::Uniform {
                low: vec![1.0, 0.0],
                high: vec![0.0, 1.0],
            }
        }),
        "initial_state",
    );
    expect_invalid(
        with(&|p| p.initial_state = InitialState::Fixed(vec![0.0])),
        "initial_state",
    );
    expect_invalid(with(&|p| p.horizon = Some(0)), "horizon");
    expect_invalid(with(&|p| p.action_limit = 0.0), "action_limit");
    expect_invalid(with(&|p| p.action_limit = f64::NAN), "action_limit");
}

#[test]
fn unsolvable_tasks_are_typed_errors() {
    // γ = 1 with noise: infinite cost for every policy.
    let mut p = LqrParams::double_integrator();
    p.gamma = 1.0;
    p.noise_covariance = Some(DMatrix::identity(2, 2) * 0.01);
    let sys = p.check().unwrap();
    assert!(matches!(
        RiccatiSolution::solve(&sys),
        Err(Error::InvalidParameter { .. })
    ));
    // An unstable mode the input cannot reach.
    let mut p = LqrParams::double_integrator();
    p.a = matrix(2, 2, &[2.0, 0.0, 0.0, 0.5]);
    p.b = matrix(2, 1, &[0.0, 1.0]);
    let sys = p.check().unwrap();
    assert!(matches!(
        RiccatiSolution::solve(&sys),
        Err(Error::Numerical { .. })
    ));
    // An unstable mode the cost cannot see: the stabilizing solution is not optimal.
    let mut p = LqrParams::scalar();
    p.a = matrix(1, 1, &[2.0]);
    p.q = matrix(1, 1, &[0.0]);
    let sys = p.check().unwrap();
    assert!(matches!(
        RiccatiSolution::solve(&sys),
        Err(Error::Numerical { .. })
    ));
    // Soft LQR needs γ < 1 and a positive temperature.
    let sys = undiscounted_double_integrator().check().unwrap();
    assert!(RiccatiSolution::solve(&sys).is_ok());
    assert!(matches!(
        SoftLqrSolution::solve(&sys, 1.0),
        Err(Error::InvalidParameter { .. })
    ));
    let sys = LqrParams::scalar().check().unwrap();
    for beta in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        assert!(matches!(
            SoftLqrSolution::solve(&sys, beta),
            Err(Error::InvalidParameter { .. })
        ));
    }
}

#[test]
fn bad_queries_and_actions_are_typed_errors() {
    let sys = LqrParams::double_integrator().check().unwrap();
    let sol = RiccatiSolution::solve(&sys).unwrap();
    assert!(matches!(
        sol.q_star(&[1.0], &[0.0]),
        Err(Error::InvalidParameter { .. })
    ));
    assert!(matches!(
        sol.q_star(&[1.0, 0.0], &[0.0, 1.0]),
        Err(Error::InvalidParameter { .. })
    ));
    assert!(matches!(
        sol.v_star(&[1.0, 0.0, 0.0]),
        Err(Error::InvalidParameter { .. })
    ));
    let mut env = Lqr::new(LqrParams::double_integrator()).unwrap();
    assert!(matches!(env.step(&[0.0]), Err(Error::NotReset { .. })));
    env.reset(Some(0));
    assert!(matches!(
        env.step(&[0.0, 1.0]),
        Err(Error::ActionDim { .. })
    ));
    assert!(matches!(
        env.step(&[f64::NAN]),
        Err(Error::NonFiniteAction { .. })
    ));
    assert!(matches!(
        env.set_state(&[0.0], 0),
        Err(Error::StateDim { .. })
    ));
    assert!(matches!(
        env.set_state(&[0.0, f64::INFINITY], 0),
        Err(Error::InvalidParameter { .. })
    ));
}
