//! Backpropagation against central finite differences, in f64.

use super::{rng, uniform_vec};
use crate::nn::{Activation, Mlp, MlpConfig, Workspace};

/// `L(θ, x) = Σ r ⊙ f(x; θ)` for fixed weights `r`, so that `∂L/∂output = r`.
fn loss(mlp: &Mlp<f64>, input: &[f64], r: &[f64], ws: &mut Workspace<f64>) -> f64 {
    let output = mlp.forward(input, ws).expect("valid input");
    output.iter().zip(r).map(|(y, r)| y * r).sum()
}

/// Step and tolerance of the central differences: truncation error ~h², rounding ~ε/h.
const H: f64 = 1e-6;
const TOLERANCE: f64 = 1e-7;

fn assert_close(what: &str, analytic: f64, numeric: f64) {
    assert!(
        (analytic - numeric).abs() <= TOLERANCE * (1.0 + numeric.abs()),
        "{what}: backprop {analytic}, finite difference {numeric}"
    );
}

fn check(sizes: &[usize], hidden: Activation, output: Activation, batch: usize, seed: u64) {
    let label = format!("{sizes:?} {hidden:?}/{output:?} batch {batch}");
    let config = MlpConfig::new(sizes).hidden(hidden).output(output);
    let mut mlp = Mlp::<f64>::new(&config, &mut rng(seed)).expect("valid config");
    let mut data = rng(seed + 1000);
    // Inputs of order 1 put tanh outputs away from saturation and ReLUs on both sides.
    let input: Vec<f64> = uniform_vec::<f64>(batch * sizes[0], &mut data)
        .iter()
        .map(|x| 2.0 * x)
        .collect();
    let r = uniform_vec::<f64>(batch * sizes[sizes.len() - 1], &mut data);
    let mut ws = mlp.workspace(batch);

    loss(&mlp, &input, &r, &mut ws);
    let mut grads = mlp.zero_grads();
    let mut grad_input = vec![0.0; input.len()];
    mlp.backward(&mut ws, &r, &mut grads, Some(&mut grad_input))
        .expect("shapes match");

    for (i, &analytic) in grads.iter().enumerate() {
        let original = mlp.params()[i];
        mlp.params_mut()[i] = original + H;
        let plus = loss(&mlp, &input, &r, &mut ws);
        mlp.params_mut()[i] = original - H;
        let minus = loss(&mlp, &input, &r, &mut ws);
        mlp.params_mut()[i] = original;
        assert_close(
            &format!("{label} ∂L/∂θ[{i}]"),
            analytic,
            (plus - minus) / (2.0 * H),
        );
    }
    let mut shifted = input.clone();
    for i in 0..input.len() {
        shifted[i] = input[i] + H;
        let plus = loss(&mlp, &shifted, &r, &mut ws);
        shifted[i] = input[i] - H;
        let minus = loss(&mlp, &shifted, &r, &mut ws);
        shifted[i] = input[i];
        assert_close(
            &format!("{label} ∂L/∂x[{i}]"),
            grad_input[i],
            (plus - minus) / (2.0 * H),
        );
    }

    // input_gradient alone gives the same ∂L/∂x and touches no parameter gradient.
    loss(&mlp, &input, &r, &mut ws);
    let mut alone = vec![f64::NAN; input.len()];
    mlp.input_gradient(&mut ws, &r, &mut alone)
        .expect("shapes match");
    assert_eq!(
        alone, grad_input,
        "{label}: input_gradient differs from backward"
    );
}

#[test]
fn backward_matches_finite_differences_for_every_activation_pair() {
    let shapes: &[(&[usize], usize)] = &[
        (&[3, 5, 4, 2], 4),
        (&[1, 6, 1], 1),
        (&[1, 7, 3], 5),
        (&[4, 8, 8, 1], 1),
        (&[2, 3], 3),
        (&[5, 9, 2], 8),
    ];
    let mut seed = 0;
    for &(sizes, batch) in shapes {
        for hidden in [Activation::Relu, Activation::Tanh] {
            for output in [Activation::Identity, Activation::Tanh] {
                seed += 1;
                check(sizes, hidden, output, batch, seed);
            }
        }
    }
}

#[test]
fn backward_accumulates_into_the_gradient_vector() {
    let config = MlpConfig::new(&[3, 6, 2]);
    let mlp = Mlp::<f64>::new(&config, &mut rng(3)).expect("valid config");
    let mut data = rng(4);
    let input = uniform_vec::<f64>(4 * 3, &mut data);
    let r = uniform_vec::<f64>(4 * 2, &mut data);
    let mut ws = mlp.workspace(4);
    mlp.forward(&input, &mut ws).expect("valid input");
    let mut once = mlp.zero_grads();
    mlp.backward(&mut ws, &r, &mut once, None)
        .expect("shapes match");
    let mut twice = mlp.zero_grads();
    mlp.backward(&mut ws, &r, &mut twice, None)
        .expect("shapes match");
    mlp.backward(&mut ws, &r, &mut twice, None)
        .expect("shapes match");
    assert!(once.iter().any(|&g| g != 0.0));
    for (a, b) in once.iter().zip(&twice) {
        assert_eq!(2.0 * a, *b);
    }
}
