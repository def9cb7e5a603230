//! Adam against its formulas, and on a least-squares fit.

use super::{field_of, rng};
use crate::nn::{mse_with_gradient, Adam, AdamConfig, Mlp, MlpConfig};

#[test]
fn two_steps_match_the_formulas_computed_by_hand() {
    // θ₀ = (1, −2, 0.5), g₁ = (0.5, −1, 0), g₂ = (0.1, 0.3, −2), lr 0.1, β = (0.9, 0.999),
    // ε = 1e-8. Step 1: m̂ = g, v̂ = g², so θ₁ = θ₀ − 0.1·g/(|g| + ε) (and 0 where g = 0).
    // Step 2 by the same formulas, evaluated in Python floats.
    let mut adam = Adam::<f64>::new(AdamConfig::with_lr(0.1), 3).expect("valid config");
    let mut theta = [1.0, -2.0, 0.5];
    adam.step(&mut theta, &[0.5, -1.0, 0.0])
        .expect("shapes match");
    let step1 = [0.900000002, -1.900000001, 0.5];
    adam.step(&mut theta, &[0.1, 0.3, -2.0])
        .expect("shapes match");
    let step2 = [0.8196959063846518, -1.8572151424292265, 0.5744136818306456];
    for (got, want) in theta.iter().zip(step2) {
        assert!((got - want).abs() < 1e-12, "{got} vs {want}");
    }
    assert_eq!(adam.steps(), 2);

    let mut again = Adam::<f64>::new(AdamConfig::with_lr(0.1), 3).expect("valid config");
    let mut theta = [1.0, -2.0, 0.5];
    again
        .step(&mut theta, &[0.5, -1.0, 0.0])
        .expect("shapes match");
    for (got, want) in theta.iter().zip(step1) {
        assert!((got - want).abs() < 1e-12, "{got} vs {want}");
    }
}

#[test]
fn adam_fits_sine_by_least_squares() {
    let config = MlpConfig::new(&[1, 32, 32, 1]);
    let mut mlp = Mlp::<f32>::new(&config, &mut rng(7)).expect("valid config");
    let n = 128;
    let x: Vec<f32> = (0..n)
        .map(|i| -std::f32::consts::PI + 2.0 * std::f32::consts::PI * i as f32 / (n - 1) as f32)
        .collect();
    let y: Vec<f32> = x.iter().map(|x| x.sin()).collect();
    let mut adam = Adam::new(AdamConfig::with_lr(3e-3), mlp.num_params()).expect("valid config");
    let mut ws = mlp.workspace(n);
    let (mut grads, mut grad_output) = (mlp.zero_grads(), vec![0.0; n]);
    let mut first_loss = None;
    let mut loss = f64::INFINITY;
    for _ in 0..2000 {
        let prediction = mlp.forward(&x, &mut ws).expect("valid input");
        loss = mse_with_gradient(prediction, &y, &mut grad_output).expect("same lengths");
        first_loss.get_or_insert(loss);
        grads.fill(0.0);
        mlp.backward(&mut ws, &grad_output, &mut grads, None)
            .expect("shapes match");
        adam.step(mlp.params_mut(), &grads).expect("shapes match");
    }
    let first_loss = first_loss.expect("at least one step");
    assert!(
        first_loss > 0.1,
        "the untrained network already fits: {first_loss}"
    );
    assert!(
        loss < 1e-3,
        "MSE after 2000 steps: {loss} (from {first_loss})"
    );
}

#[test]
fn invalid_hyperparameters_are_rejected_naming_the_field() {
    let make = |config| field_of(Adam::<f32>::new(config, 4));
    let base = AdamConfig::default();
    for lr in [0.0, -1e-3, f64::NAN, f64::INFINITY] {
        assert_eq!(make(AdamConfig { lr, ..base }), "adam.lr");
    }
    for beta1 in [1.0, -0.1, f64::NAN] {
        assert_eq!(make(AdamConfig { beta1, ..base }), "adam.beta1");
    }
    assert_eq!(make(AdamConfig { beta2: 1.0, ..base }), "adam.beta2");
    for eps in [0.0, -1e-8, f64::INFINITY] {
        assert_eq!(make(AdamConfig { eps, ..base }), "adam.eps");
    }
    let mut adam = Adam::<f32>::new(base, 4).expect("valid config");
    assert_eq!(field_of(adam.set_lr(-1.0)), "adam.lr");
    assert_eq!(field_of(adam.step(&mut [0.0; 3], &[0.0; 4])), "adam.step");
    assert_eq!(adam.steps(), 0, "a rejected step is not counted");
}
