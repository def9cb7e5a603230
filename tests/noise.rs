//! Exploration noise against its defining laws.
//!
//! The Ornstein–Uhlenbeck process `d𝒩 = θ(μ − 𝒩)dt + σ dW` has stationary mean μ,
//! variance σ²/(2θ) and lag-one autocorrelation e^{−θΔt} at sampling interval Δt. The
//! Euler–Maruyama chain matches these up to O(θΔt) (its exact stationary variance is
//! σ²/(θ(2 − θΔt)), its autocorrelation 1 − θΔt), which at θΔt = 0.015 is below the
//! tolerances used here. Tolerances are a few standard errors of a chain of 4·10⁶ steps
//! whose effective sample size is about N(1 − ρ)/(1 + ρ) ≈ 30 000.

use policy_param::noise::{ExplorationNoise, NoiseConfig, OrnsteinUhlenbeckParams};
use policy_param::rng::RunSeed;
use policy_param::Error;

const OU: OrnsteinUhlenbeckParams = OrnsteinUhlenbeckParams {
    theta: 1.5,
    mu: 0.5,
    sigma: 0.3,
    dt: 0.01,
};

/// Mean, variance and lag-one autocorrelation of `steps` values of component `component`.
fn moments(
    noise: &mut ExplorationNoise,
    seed: u64,
    steps: usize,
    component: usize,
) -> (f64, f64, f64) {
    let mut rng = RunSeed(seed).stream("noise-test");
    let mut out = vec![0.0; noise.dim()];
    let mut xs = Vec::with_capacity(steps);
    for _ in 0..steps {
        noise.sample_into(&mut rng, &mut out);
        xs.push(out[component]);
    }
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
    let cov1 = xs
        .windows(2)
        .map(|w| (w[0] - mean) * (w[1] - mean))
        .sum::<f64>()
        / (n - 1.0);
    (mean, var, cov1 / var)
}

#[test]
fn ornstein_uhlenbeck_has_its_stationary_mean_variance_and_autocorrelation() {
    let mut noise = ExplorationNoise::new(NoiseConfig::OrnsteinUhlenbeck(OU), 2).unwrap();
    let steps = 4_000_000;
    let (mean, var, rho) = moments(&mut noise, 1, steps, 1);

    let stationary_var = OU.stationary_variance();
    let target_rho = OU.lag_one_autocorrelation();
    let effective = steps as f64 * (1.0 - target_rho) / (1.0 + target_rho);
    let mean_se = (stationary_var / effective).sqrt();
    assert!(
        (mean - OU.mu).abs() < 5.0 * mean_se,
        "mean {mean}, μ = {}, standard error {mean_se}",
        OU.mu
    );
    assert!(
        (var / stationary_var - 1.0).abs() < 0.04,
        "variance {var}, σ²/(2θ) = {stationary_var}"
    );
    // Compare 1 − ρ, the quantity θΔt sets, relative to itself.
    let relative = ((1.0 - rho) / (1.0 - target_rho) - 1.0).abs();
    assert!(
        relative < 0.03,
        "lag-one autocorrelation {rho}, e^(−θΔt) = {target_rho}"
    );
}

#[test]
fn ornstein_uhlenbeck_components_are_independent_processes() {
    let mut noise = ExplorationNoise::new(NoiseConfig::OrnsteinUhlenbeck(OU), 2).unwrap();
    let mut rng = RunSeed(2).stream("noise-test");
    let mut out = [0.0; 2];
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for _ in 0..1_000_000 {
        noise.sample_into(&mut rng, &mut out);
        let (x, y) = (out[0] - OU.mu, out[1] - OU.mu);
        sxy += x * y;
        sxx += x * x;
        syy += y * y;
    }
    let correlation = sxy / (sxx * syy).sqrt();
    // Effective sample ≈ 7500: standard error ≈ 0.012.
    assert!(correlation.abs() < 0.06, "cross-correlation {correlation}");
}

#[test]
fn without_diffusion_the_euler_maruyama_step_decays_geometrically_to_the_mean() {
    let params = OrnsteinUhlenbeckParams { sigma: 0.0, ..OU };
    let mut rng = RunSeed(3).stream("noise-test");
    let mut out = [0.0];
    // Started at μ, a noiseless process stays there.
    let mut noise = ExplorationNoise::new(NoiseConfig::OrnsteinUhlenbeck(params), 1).unwrap();
    for _ in 0..10 {
        noise.sample_into(&mut rng, &mut out);
        assert_eq!(out[0], OU.mu);
    }
    // Displaced to μ + 2 (through a checkpoint), it relaxes by (1 − θΔt) per step.
    let json = serde_json::to_string(&noise)
        .unwrap()
        .replace(&format!("[{:?}]", OU.mu), "[2.5]");
    let mut displaced: ExplorationNoise = serde_json::from_str(&json).unwrap();
    assert_eq!(displaced.state(), [2.5]);
    for k in 1..=50 {
        displaced.sample_into(&mut rng, &mut out);
        let expected = OU.mu + 2.0 * (1.0 - OU.theta * OU.dt).powi(k);
        assert!(
            (out[0] - expected).abs() < 1e-12,
            "step {k}: {} vs {expected}",
            out[0]
        );
    }
}

#[test]
fn reset_returns_the_process_to_its_mean() {
    let mut noise = ExplorationNoise::new(NoiseConfig::OrnsteinUhlenbeck(OU), 3).unwrap();
    let mut rng = RunSeed(4).stream("noise-test");
    let mut out = [0.0; 3];
    for _ in 0..100 {
        noise.sample_into(&mut rng, &mut out);
    }
    assert!(noise.state().iter().all(|&x| x != OU.mu));
    noise.reset();
    assert!(noise.state().iter().all(|&x| x == OU.mu));
}

#[test]
fn gaussian_noise_is_white_with_the_given_scale() {
    let sigma = 0.3;
    let mut noise = ExplorationNoise::new(NoiseConfig::Gaussian { sigma }, 1).unwrap();
    let steps = 400_000;
    let (mean, var, rho) = moments(&mut noise, 5, steps, 0);
    let se = sigma / (steps as f64).sqrt();
    assert!(mean.abs() < 5.0 * se, "mean {mean}");
    assert!(
        (var.sqrt() / sigma - 1.0).abs() < 0.01,
        "std {}",
        var.sqrt()
    );
    assert!(
        rho.abs() < 5.0 / (steps as f64).sqrt(),
        "autocorrelation {rho}"
    );
}

#[test]
fn no_noise_is_zero() {
    let mut noise = ExplorationNoise::new(NoiseConfig::None, 2).unwrap();
    let mut out = [1.0; 2];
    noise.sample_into(&mut RunSeed(6).stream("noise-test"), &mut out);
    assert_eq!(out, [0.0, 0.0]);
}

#[test]
fn bad_parameters_are_errors_naming_the_field() {
    let cases = [
        (NoiseConfig::Gaussian { sigma: -0.1 }, "noise.sigma"),
        (NoiseConfig::Gaussian { sigma: f64::NAN }, "noise.sigma"),
        (
            NoiseConfig::OrnsteinUhlenbeck(OrnsteinUhlenbeckParams { theta: 0.0, ..OU }),
            "noise.theta",
        ),
        (
            NoiseConfig::OrnsteinUhlenbeck(OrnsteinUhlenbeckParams { dt: -1.0, ..OU }),
            "noise.dt",
        ),
        (
            // θΔt = 1.5: each step overshoots μ.
            NoiseConfig::OrnsteinUhlenbeck(OrnsteinUhlenbeckParams { dt: 1.0, ..OU }),
            "noise.dt",
        ),
        (
            NoiseConfig::OrnsteinUhlenbeck(OrnsteinUhlenbeckParams {
                mu: f64::INFINITY,
                ..OU
            }),
            "noise.mu",
        ),
    ];
    for (config, expected) in cases {
        match ExplorationNoise::new(config, 1) {
            Err(Error::InvalidParameter { field, .. }) => assert_eq!(field, expected, "{config:?}"),
            other => panic!("{config:?}: expected an invalid-parameter error, got {other:?}"),
        }
    }
    assert!(matches!(
        ExplorationNoise::new(NoiseConfig::None, 0),
        Err(Error::InvalidParameter { .. })
    ));
}
