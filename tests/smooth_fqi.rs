//! Smooth FQI: the quadrature log-partition `β log ∫ exp(q/β)` is exact on Gaussian bumps
//! in one and two dimensions and stable for any scale of q/β; FQI with it recovers the
//! closed-form soft q* of entropy-regularized LQR (1-D and 2-D actions); targets do not
//! depend on the number of threads; bad settings are errors naming the field.

use nalgebra::DVector;
use rand::{Rng as _, SeedableRng};

use policy_param::algo::fit::LeastSquares;
use policy_param::algo::smooth_fqi::{
    BoxQuadrature, LogPartition, LogPartitionSettings, MonteCarloLogPartition, SmoothFqi,
};
use policy_param::algo::{FqiParams, Transitions};
use policy_param::env::lqr::{LqrParams, LqrSystem, SoftLqrSolution};
use policy_param::env::{self, ActionSpace};
use policy_param::maximize::{Maximizer, QFunction};
use policy_param::qfunction::linear::{LinearQ, QuadraticFeatures};
use policy_param::rng::{Rng, RunSeed};
use policy_param::{Error, Result};

mod thread_pool;
use thread_pool::with_threads;

/// `q(s, a) = offset − k‖a − c(s)‖²` with `c(s) = s` (state and action of equal size):
/// `β log ∫_ℝᵐ exp(q/β) = offset + (mβ/2) log(πβ/k)`, Boltzmann mean `c(s)`.
struct Bump {
    dim: usize,
    k: f64,
    offset: f64,
}

impl QFunction for Bump {
    type Workspace = ();
    fn state_dim(&self) -> usize {
        self.dim
    }
    fn action_dim(&self) -> usize {
        self.dim
    }
    fn workspace(&self) {}
    fn value(&self, _: &mut (), state: &[f64], action: &[f64]) -> Result<f64> {
        let d2: f64 = state
            .iter()
            .zip(action)
            .map(|(s, a)| (a - s) * (a - s))
            .sum();
        Ok(self.offset - self.k * d2)
    }
    fn value_and_action_gradient(
        &self,
        ws: &mut (),
        state: &[f64],
        action: &[f64],
        gradient: &mut [f64],
    ) -> Result<f64> {
        for ((g, s), a) in gradient.iter_mut().zip(state).zip(action) {
            *g = -2.0 * self.k * (a - s);
        }
        self.value(ws, state, action)
    }
}

fn unit_box(dim: usize, half_width: f64) -> ActionSpace {
    ActionSpace::Box {
        low: vec![-half_width; dim],
        high: vec![half_width; dim],
    }
}

#[test]
fn the_log_partition_of_a_gaussian_bump_is_exact_in_one_and_two_dimensions() {
    // (β, k, offset): ordinary; q/β of order −10⁷ (exp underflows without log-sum-exp);
    // a narrow bump; q/β of order +10⁶ (exp overflows without it).
    let cases = [
        (1.0, 2.0, 0.0),
        (0.05, 1.0, -5e5),
        (0.02, 3.0, 1e3),
        (1e-3, 0.5, 1e3),
    ];
    for dim in [1, 2] {
        for &(beta, k, offset) in &cases {
            let space = unit_box(dim, 4.0);
            let settings = LogPartitionSettings {
                beta,
                panels: if dim == 1 { 256 } else { 128 },
                order: 8,
            };
            let partition = LogPartition::new(&space, settings).unwrap();
            let q = Bump { dim, k, offset };
            let state = [0.3, -0.4];
            let state = &state[..dim];
            let mut action = vec![0.0; dim];
            let max = partition
                .maximize(
                    &q,
                    &mut (),
                    &mut partition.workspace(),
                    state,
                    &mut action,
                    &mut RunSeed(0).stream("x"),
                )
                .unwrap();
            let exact = offset + 0.5 * dim as f64 * beta * (std::f64::consts::PI * beta / k).ln();
            assert!(
                (max.value - exact).abs() <= 1e-9 * exact.abs().max(1.0),
                "dim {dim}, β {beta}, k {k}, offset {offset}: {} vs {exact}",
                max.value
            );
            for (a, s) in action.iter().zip(state) {
                assert!(
                    (a - s).abs() < 1e-9,
                    "Boltzmann mean {action:?} vs {state:?}"
                );
            }
            assert_eq!(max.evaluations, partition.quadrature().len());
        }
    }
}

#[test]
fn as_beta_goes_to_zero_the_smooth_maximum_tends_to_the_maximum() {
    // β log ∫ exp(q/β) − max q = (β/2) log(πβ/k) for a bump inside the box: its size
    // shrinks monotonically once πβ/k < 1/e.
    let space = unit_box(1, 1.0);
    let q = Bump {
        dim: 1,
        k: 1.0,
        offset: 7.0,
    };
    let mut previous = f64::INFINITY;
    for beta in [0.1, 0.01, 1e-3, 1e-5] {
        let partition = LogPartition::new(
            &space,
            LogPartitionSettings {
                beta,
                panels: 400,
                order: 8,
            },
        )
        .unwrap();
        let mut action = [0.0];
        let value = partition
            .maximize(
                &q,
                &mut (),
                &mut partition.workspace(),
                &[0.25],
                &mut action,
                &mut RunSeed(0).stream("x"),
            )
            .unwrap()
            .value;
        let gap = (value - 7.0).abs();
        assert!(gap < previous, "β {beta}: gap {gap} after {previous}");
        previous = gap;
    }
    assert!(previous < 1e-4, "{previous}");
}

/// The deterministic noise-free variant of `params`, its checked system and soft solution.
fn soft_lqr(params: LqrParams, beta: f64) -> (LqrSystem, SoftLqrSolution) {
    let params = LqrParams {
        noise_covariance: None,
        ..params
    };
    let system = params.check().unwrap();
    let soft = SoftLqrSolution::solve(&system, beta).unwrap();
    (system, soft)
}

/// Base points with states uniform in ±`state_range` and actions uniform in
/// ±`action_range`: reward −(sᵀQs + aᵀRa), s' = As + Ba, computed in f64.
fn base_points(
    system: &LqrSystem,
    count: usize,
    state_range: f64,
    action_range: f64,
) -> Transitions {
    let (n, m) = (system.state_dim(), system.action_dim());
    let mut rng = Rng::seed_from_u64(11);
    let mut data = Transitions::new(n, m);
    for _ in 0..count {
        let s = DVector::from_fn(n, |_, _| rng.gen_range(-state_range..state_range));
        let a = DVector::from_fn(m, |_, _| rng.gen_range(-action_range..action_range));
        let reward = -((s.transpose() * system.q() * &s)[(0, 0)]
            + (a.transpose() * system.r() * &a)[(0, 0)]);
        let next = system.a() * &s + system.b() * &a;
        data.push(s.as_slice(), a.as_slice(), reward, next.as_slice(), false)
            .unwrap();
    }
    data
}

/// Runs smooth FQI with quadratic features and exact least squares from θ₀ = 0 and
/// checks the fitted q against the soft q*: `q = −zᵀHz − c_q`, and the Boltzmann mean
/// actions against `−K s'`.
fn recovers_soft_q_star(
    params: LqrParams,
    beta: f64,
    settings: LogPartitionSettings,
    base: (usize, f64, f64),
    iterations: usize,
) {
    let (system, soft) = soft_lqr(params, beta);
    let (n, m) = (system.state_dim(), system.action_dim());
    let data = base_points(&system, base.0, base.1, base.2);
    let limit = system.action_limit();
    let partition = LogPartition::new(
        &unit_box(m, limit),
        LogPartitionSettings { beta, ..settings },
    )
    .unwrap();
    let fqi_params = FqiParams {
        gamma: system.gamma(),
        max_iterations: iterations,
        tolerance: 1e-300,
        delta_actions_per_state: 0,
        seed: RunSeed(0),
    };
    let q = LinearQ::zeros(QuadraticFeatures::new(n, m).unwrap());
    let mut fqi: SmoothFqi<_, _> = SmoothFqi::new(
        &fqi_params,
        q,
        partition,
        LeastSquares::default(),
        data.clone(),
    )
    .unwrap();
    fqi.run(|_| {}).unwrap();

    let form = fqi.q().quadratic_form();
    let h = soft.hard().q_matrix();
    let scale = h.abs().max();
    let error = (&form.matrix + h).abs().max();
    assert!(error <= 1e-7 * scale, "M = {} vs −H = {}", form.matrix, -h);
    assert!(
        form.linear.abs().max() <= 1e-7 * scale,
        "linear terms {}",
        form.linear
    );
    let c_q = soft.q_constant();
    assert!(
        (form.constant + c_q).abs() <= 1e-6 * c_q.abs().max(1.0),
        "constant {} vs −c_q = {}",
        form.constant,
        -c_q
    );
    // The constant differs from the hard one: the entropy is in it.
    let hard_constant = soft.hard().constant();
    assert!(
        (c_q - hard_constant).abs() > 1e-3,
        "{c_q} vs {hard_constant}"
    );

    // Step 3.2.1 wrote the soft-optimal policy's mean −K s' at every base point.
    let mut mean = vec![0.0; m];
    for i in 0..data.len() {
        soft.policy_mean_into(data.next_state(i), &mut mean)
            .unwrap();
        let got = &fqi.next_actions()[i * m..(i + 1) * m];
        for (g, e) in got.iter().zip(&mean) {
            assert!((g - e).abs() < 1e-6, "base point {i}: {got:?} vs {mean:?}");
        }
    }
}

#[test]
fn smooth_fqi_recovers_the_soft_q_star_of_scalar_lqr() {
    // s' = 1.1 s + a, r = −(s² + a²), γ 0.95; β 0.5 gives the soft policy σ ≈ 0.28.
    // 0.95⁶⁰⁰ ≈ 4e-14: the iteration has converged to rounding.
    recovers_soft_q_star(
        LqrParams::scalar(),
        0.5,
        LogPartitionSettings {
            beta: 0.5,
            panels: 40,
            order: 8,
        },
        (50, 2.0, 3.0),
        600,
    );
}

#[test]
fn smooth_fqi_recovers_the_soft_q_star_with_two_dimensional_actions() {
    // A random stable system with 4 states and 2 actions, γ lowered to 0.7 so that 80
    // iterations converge (0.7⁸⁰ ≈ 4e-13); the action box [−6, 6]² holds the soft policy.
    let params = LqrParams {
        gamma: 0.7,
        action_limit: 6.0,
        ..LqrParams::random_stable(3)
    };
    recovers_soft_q_star(
        params,
        0.5,
        LogPartitionSettings {
            beta: 0.5,
            panels: 16,
            order: 8,
        },
        (60, 1.5, 2.0),
        80,
    );
}

#[test]
fn targets_are_bit_identical_with_one_and_two_threads() {
    let (system, _) = soft_lqr(LqrParams::scalar(), 0.5);
    let data = base_points(&system, 40, 2.0, 3.0);
    let run = |threads: usize| {
        with_threads(threads, || {
            let partition =
                LogPartition::new(&unit_box(1, 10.0), LogPartitionSettings::default()).unwrap();
            let params = FqiParams {
                gamma: 0.95,
                max_iterations: 5,
                delta_actions_per_state: 2,
                ..FqiParams::default()
            };
            let q = LinearQ::zeros(QuadraticFeatures::new(1, 1).unwrap());
            let mut fqi =
                SmoothFqi::new(&params, q, partition, LeastSquares::default(), data.clone())
                    .unwrap();
            let mut deltas = Vec::new();
            for _ in 0..5 {
                deltas.push(fqi.step().unwrap().delta.to_bits());
            }
            let bits = |x: &[f64]| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            (deltas, bits(fqi.targets()), bits(fqi.q().params()))
        })
    };
    assert_eq!(run(1), run(2));
}

#[test]
fn bad_settings_are_errors_naming_the_field() {
    let space = unit_box(1, 1.0);
    let with = |change: fn(&mut LogPartitionSettings)| {
        let mut settings = LogPartitionSettings::default();
        change(&mut settings);
        settings
    };
    let cases: [(ActionSpace, LogPartitionSettings, &str); 8] = [
        (space.clone(), with(|s| s.beta = 0.0), "log_partition.beta"),
        (space.clone(), with(|s| s.beta = -1.0), "log_partition.beta"),
        (
            space.clone(),
            with(|s| s.beta = f64::NAN),
            "log_partition.beta",
        ),
        (
            space.clone(),
            with(|s| s.panels = 0),
            "log_partition.quadrature.panels",
        ),
        (
            space.clone(),
            with(|s| s.order = 0),
            "log_partition.quadrature.order",
        ),
        (
            unit_box(1, f64::INFINITY),
            with(|_| {}),
            "log_partition.quadrature.box",
        ),
        (
            unit_box(3, 1.0),
            with(|s| s.panels = 100),
            "log_partition.quadrature",
        ),
        (
            env::make("Allocation").unwrap().action_space().clone(),
            with(|_| {}),
            "log_partition.action_space",
        ),
    ];
    for (space, settings, expected) in cases {
        match LogPartition::new(&space, settings) {
            Err(Error::InvalidParameter { field, .. }) => assert_eq!(field, expected),
            other => panic!("{expected}: expected an invalid-parameter error, got {other:?}"),
        }
    }
    assert!(BoxQuadrature::gauss_legendre(&[0.0], &[0.0], 1, 1).is_err());
}

/// q that is NaN somewhere in the box.
struct Holey;

impl QFunction for Holey {
    type Workspace = ();
    fn state_dim(&self) -> usize {
        1
    }
    fn action_dim(&self) -> usize {
        1
    }
    fn workspace(&self) {}
    fn value(&self, _: &mut (), _: &[f64], action: &[f64]) -> Result<f64> {
        Ok(if action[0] > 0.5 { f64::NAN } else { 0.0 })
    }
    fn value_and_action_gradient(
        &self,
        ws: &mut (),
        s: &[f64],
        a: &[f64],
        g: &mut [f64],
    ) -> Result<f64> {
        g[0] = 0.0;
        self.value(ws, s, a)
    }
}

#[test]
fn a_nan_q_is_a_numerical_error() {
    let partition = LogPartition::new(&unit_box(1, 1.0), LogPartitionSettings::default()).unwrap();
    let result = partition.maximize(
        &Holey,
        &mut (),
        &mut partition.workspace(),
        &[0.0],
        &mut [0.0],
        &mut RunSeed(0).stream("x"),
    );
    assert!(matches!(result, Err(Error::Numerical { .. })), "{result:?}");
}

/// Mean and standard deviation of `x`.
fn mean_std(x: &[f64]) -> (f64, f64) {
    let n = x.len() as f64;
    let mean = x.iter().sum::<f64>() / n;
    let var = x.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / (n - 1.0);
    (mean, var.sqrt())
}

/// `repeats` Monte Carlo estimates of the log-partition of `q` at `state`, each from its
/// own stream.
fn monte_carlo_estimates(
    estimator: &MonteCarloLogPartition,
    q: &Bump,
    state: &[f64],
    repeats: u64,
) -> Vec<f64> {
    let mut ws = estimator.workspace();
    let mut action = vec![0.0; state.len()];
    (0..repeats)
        .map(|i| {
            estimator
                .maximize(
                    q,
                    &mut (),
                    &mut ws,
                    state,
                    &mut action,
                    &mut RunSeed(9).indexed("mc", i),
                )
                .unwrap()
                .value
        })
        .collect()
}

#[test]
fn monte_carlo_is_exact_on_a_flat_q_and_biased_low_with_shrinking_spread_on_a_bump() {
    // Flat q: every draw gives the same exp(q/β), so the estimate is exact for any N.
    let flat = Bump {
        dim: 1,
        k: 0.0,
        offset: 3.0,
    };
    let beta = 0.5;
    let estimator = MonteCarloLogPartition::new(&unit_box(1, 2.0), beta, 3).unwrap();
    for v in monte_carlo_estimates(&estimator, &flat, &[0.1], 20) {
        assert!((v - (3.0 + beta * 4f64.ln())).abs() < 1e-12, "{v}");
    }
    // A bump well inside the box: exact value offset + (β/2) log(πβ/k).
    let bump = Bump {
        dim: 1,
        k: 2.0,
        offset: 0.0,
    };
    let exact = 0.5 * beta * (std::f64::consts::PI * beta / 2.0).ln();
    let mut previous = (f64::NEG_INFINITY, f64::INFINITY);
    for samples in [4, 16, 64, 256] {
        let estimator = MonteCarloLogPartition::new(&unit_box(1, 4.0), beta, samples).unwrap();
        let (mean, std) = mean_std(&monte_carlo_estimates(&estimator, &bump, &[0.3], 4000));
        let bias = mean - exact;
        // Jensen: biased low, by more than the standard error of the 4000-run mean.
        assert!(
            bias < -3.0 * std / 4000f64.sqrt(),
            "N {samples}: bias {bias}, std {std}"
        );
        // More samples: less bias and less spread.
        assert!(
            bias > previous.0 && std < previous.1,
            "N {samples}: {bias}, {std} after {previous:?}"
        );
        previous = (bias, std);
    }
    assert!(previous.0 > -0.01, "N 256: bias {}", previous.0);
}

#[test]
fn boltzmann_draws_have_the_boltzmann_mean_and_variance() {
    // exp(q/β) with q = −k(a − s)²: a Gaussian of mean s and variance β/(2k).
    let (beta, k, state) = (0.5, 2.0, [0.3]);
    let partition = LogPartition::new(
        &unit_box(1, 4.0),
        LogPartitionSettings {
            beta,
            panels: 64,
            order: 8,
        },
    )
    .unwrap();
    let q = Bump {
        dim: 1,
        k,
        offset: -7.0,
    };
    let mut ws = partition.workspace();
    let mut rng = RunSeed(4).stream("draws");
    let draws: Vec<f64> = (0..20_000)
        .map(|_| {
            let mut a = [0.0];
            partition
                .sample_action(&q, &mut (), &mut ws, &state, &mut a, &mut rng)
                .unwrap();
            a[0]
        })
        .collect();
    let (mean, std) = mean_std(&draws);
    let sigma = (beta / (2.0 * k)).sqrt();
    // 5 standard errors of the mean; the variance to 5%.
    assert!(
        (mean - 0.3).abs() < 5.0 * sigma / 20_000f64.sqrt(),
        "mean {mean}"
    );
    assert!((std / sigma - 1.0).abs() < 0.05, "std {std} vs {sigma}");
}

#[test]
fn monte_carlo_settings_are_errors_naming_the_field() {
    let space = unit_box(1, 1.0);
    let cases = [
        (
            MonteCarloLogPartition::new(&space, 0.0, 8),
            "monte_carlo.beta",
        ),
        (
            MonteCarloLogPartition::new(&space, 1.0, 0),
            "monte_carlo.samples",
        ),
        (
            MonteCarloLogPartition::new(&unit_box(1, f64::INFINITY), 1.0, 8),
            "monte_carlo.action_space",
        ),
    ];
    for (result, expected) in cases {
        match result {
            Err(Error::InvalidParameter { field, .. }) => assert_eq!(field, expected),
            other => panic!("{expected}: expected an invalid-parameter error, got {other:?}"),
        }
    }
}
