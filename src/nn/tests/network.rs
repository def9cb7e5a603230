//! The forward pass, initialization, backends, target updates, checkpoints and errors.

use super::{field_of, rng, uniform_vec};
use crate::nn::gemm::Backend;
use crate::nn::{Activation, Init, Mlp, MlpConfig};

/// The forward pass written from its definition, one neuron at a time, in f64.
fn forward_by_definition(mlp: &Mlp<f64>, input: &[f64]) -> Vec<f64> {
    let layers = mlp.layout().num_layers();
    let mut x = input.to_vec();
    for layer in 0..layers {
        let (inputs, outputs) = mlp.layout().layer_dims(layer);
        let (w, b) = (mlp.weights(layer), mlp.bias(layer));
        let activation = if layer + 1 == layers {
            mlp.output_activation()
        } else {
            mlp.hidden_activation()
        };
        let rows = x.len() / inputs;
        let mut y = Vec::with_capacity(rows * outputs);
        for row in x.chunks(inputs) {
            for j in 0..outputs {
                let z = b[j]
                    + (0..inputs)
                        .map(|i| row[i] * w[i * outputs + j])
                        .sum::<f64>();
                y.push(match activation {
                    Activation::Identity => z,
                    Activation::Relu => z.max(0.0),
                    Activation::Tanh => z.tanh(),
                });
            }
        }
        x = y;
    }
    x
}

#[test]
fn forward_matches_the_definition_and_rows_do_not_interact() {
    for (sizes, hidden, output) in [
        (
            &[3usize, 7, 5, 2][..],
            Activation::Relu,
            Activation::Identity,
        ),
        (&[20, 40, 3], Activation::Tanh, Activation::Tanh),
        (&[1, 300, 1], Activation::Relu, Activation::Tanh),
    ] {
        let config = MlpConfig::new(sizes).hidden(hidden).output(output);
        let mlp = Mlp::<f64>::new(&config, &mut rng(11)).expect("valid config");
        let batch = 19;
        let input = uniform_vec::<f64>(batch * sizes[0], &mut rng(12));
        let expected = forward_by_definition(&mlp, &input);
        // A workspace smaller than the batch grows on demand.
        let mut ws = mlp.workspace(2);
        let batched = mlp.forward(&input, &mut ws).expect("valid input").to_vec();
        assert_eq!(ws.capacity(), batch);
        for (got, want) in batched.iter().zip(&expected) {
            assert!(
                (got - want).abs() <= 1e-12 * (1.0 + want.abs()),
                "{sizes:?}: {got} vs {want}"
            );
        }
        // Each row alone gives its row of the batched result.
        let out = mlp.output_dim();
        for (row, want) in input.chunks(sizes[0]).zip(expected.chunks(out)) {
            let single = mlp.forward(row, &mut ws).expect("valid input");
            for (got, want) in single.iter().zip(want) {
                assert!((got - want).abs() <= 1e-12 * (1.0 + want.abs()));
            }
        }
        if output == Activation::Tanh {
            assert!(batched.iter().all(|y| y.abs() < 1.0));
        }
    }
}

#[test]
fn the_mean_network_computes_the_mean_of_its_parts() {
    for (sizes, hidden) in [
        (&[3usize, 5, 4, 2][..], Activation::Relu),
        (&[8, 32, 1], Activation::Relu),
        (&[2, 6, 1], Activation::Tanh),
        (&[4, 3], Activation::Relu),
    ] {
        let config = MlpConfig::new(sizes).hidden(hidden);
        for count in [1usize, 3, 7] {
            let parts: Vec<Mlp<f64>> = (0..count)
                .map(|k| Mlp::new(&config, &mut rng(40 + k as u64)).expect("valid config"))
                .collect();
            let mean = Mlp::mean_of(&parts).expect("one architecture");
            let hidden_widths = &mean.sizes()[1..sizes.len() - 1];
            assert!(hidden_widths
                .iter()
                .zip(&sizes[1..sizes.len() - 1])
                .all(|(&w, &s)| w == s * count));
            let input = uniform_vec::<f64>(23 * sizes[0], &mut rng(50));
            let got = forward_by_definition(&mean, &input);
            let outputs: Vec<Vec<f64>> = parts
                .iter()
                .map(|p| forward_by_definition(p, &input))
                .collect();
            for (i, &g) in got.iter().enumerate() {
                let want = outputs.iter().map(|o| o[i]).sum::<f64>() / count as f64;
                assert!(
                    (g - want).abs() <= 1e-12 * (1.0 + want.abs()),
                    "{sizes:?} × {count}: {g} vs {want}"
                );
            }
            // The output is not any single part's (unless there is one).
            if count > 1 {
                assert!(got
                    .iter()
                    .zip(&outputs[0])
                    .any(|(g, o)| (g - o).abs() > 1e-3));
            }
        }
    }
    let config = MlpConfig::new(&[3, 5, 1]);
    let a = Mlp::<f64>::new(&config, &mut rng(1)).expect("valid config");
    let b = Mlp::<f64>::new(&MlpConfig::new(&[3, 6, 1]), &mut rng(2)).expect("valid config");
    let squashed = Mlp::<f64>::new(&config.clone().output(Activation::Tanh), &mut rng(3))
        .expect("valid config");
    assert_eq!(field_of(Mlp::mean_of(&[a.clone(), b])), "networks");
    assert_eq!(
        field_of(Mlp::mean_of(&[squashed.clone(), squashed])),
        "networks"
    );
    assert_eq!(field_of(Mlp::<f64>::mean_of(&[])), "networks");
}

#[test]
fn every_backend_computes_the_same_forward_and_backward_in_f32() {
    let config = MlpConfig::new(&[16, 64, 48, 3]).hidden(Activation::Tanh);
    let mlp = Mlp::<f32>::new(&config, &mut rng(5)).expect("valid config");
    let batch = 37;
    let mut data = rng(6);
    let input = uniform_vec::<f32>(batch * 16, &mut data);
    let r = uniform_vec::<f32>(batch * 3, &mut data);
    let run = |backend| {
        let mut ws = mlp.workspace(batch);
        ws.set_backend(backend);
        let output = mlp.forward(&input, &mut ws).expect("valid input").to_vec();
        let mut grads = mlp.zero_grads();
        let mut grad_input = vec![0.0; input.len()];
        mlp.backward(&mut ws, &r, &mut grads, Some(&mut grad_input))
            .expect("shapes match");
        [output, grads, grad_input]
    };
    let reference = run(Backend::Packed);
    for backend in [Backend::GemmCrate, Backend::Ndarray] {
        for (what, (got, want)) in ["output", "grads", "grad_input"]
            .iter()
            .zip(run(backend).iter().zip(&reference))
        {
            let scale = want.iter().fold(0.0f32, |m, x| m.max(x.abs()));
            for (g, w) in got.iter().zip(want) {
                assert!(
                    (g - w).abs() <= 1e-5 * scale,
                    "{backend:?} {what}: {g} vs {w}"
                );
            }
        }
    }
}

#[test]
fn the_same_seed_gives_bit_identical_networks_and_outputs() {
    let config = MlpConfig::new(&[4, 32, 32, 1]);
    let input = uniform_vec::<f32>(10 * 4, &mut rng(0));
    let make = |seed| Mlp::<f32>::new(&config, &mut rng(seed)).expect("valid config");
    let outputs = |mlp: &Mlp<f32>| {
        let mut ws = mlp.workspace(10);
        let y = mlp.forward(&input, &mut ws).expect("valid input");
        y.iter().map(|y| y.to_bits()).collect::<Vec<_>>()
    };
    let (a, b, other) = (make(9), make(9), make(10));
    assert_eq!(a.params(), b.params());
    assert_eq!(outputs(&a), outputs(&b));
    assert_ne!(a.params(), other.params());
}

#[test]
fn initialization_follows_pytorch_and_the_optional_last_layer_bound() {
    let sizes = [10, 400, 300, 2];
    let pytorch = Mlp::<f64>::new(&MlpConfig::new(&sizes), &mut rng(1)).expect("valid config");
    for (layer, &fan_in) in sizes[..3].iter().enumerate() {
        let bound = 1.0 / (fan_in as f64).sqrt();
        for params in [pytorch.weights(layer), pytorch.bias(layer)] {
            let largest = params.iter().fold(0.0f64, |m, p| m.max(p.abs()));
            let mean = params.iter().sum::<f64>() / params.len() as f64;
            assert!(largest < bound, "layer {layer}: {largest} ≥ {bound}");
            // Uniform on (−b, b): the extremes are approached and the mean is near 0.
            if params.len() >= 300 {
                assert!(largest > 0.95 * bound, "layer {layer}: {largest} ≪ {bound}");
                assert!(mean.abs() < 0.2 * bound, "layer {layer}: mean {mean}");
            }
        }
    }
    let config = MlpConfig::new(&sizes).init(Init::with_last_layer_bound(3e-3));
    let ddpg = Mlp::<f64>::new(&config, &mut rng(1)).expect("valid config");
    assert!(ddpg
        .weights(2)
        .iter()
        .chain(ddpg.bias(2))
        .all(|p| p.abs() < 3e-3));
    assert!(ddpg.weights(2).iter().any(|p| p.abs() > 2e-3));
    assert_eq!(
        ddpg.weights(0),
        pytorch.weights(0),
        "earlier layers keep PyTorch's draws"
    );
    for bound in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        let config = MlpConfig::new(&sizes).init(Init::with_last_layer_bound(bound));
        assert_eq!(
            field_of(Mlp::<f32>::new(&config, &mut rng(1))),
            "init.last_layer_bound"
        );
    }
}

#[test]
fn polyak_update_interpolates_and_its_ends_are_copy_and_no_op() {
    let config = MlpConfig::new(&[3, 8, 2]);
    let online = Mlp::<f32>::new(&config, &mut rng(1)).expect("valid config");
    let target = Mlp::<f32>::new(&config, &mut rng(2)).expect("valid config");

    let mut copied = target.clone();
    copied.hard_copy_from(&online).expect("same architecture");
    assert_eq!(copied.params(), online.params());

    let mut full = target.clone();
    full.polyak_update(&online, 1.0).expect("valid tau");
    assert_eq!(full.params(), online.params());

    let mut none = target.clone();
    none.polyak_update(&online, 0.0).expect("valid tau");
    assert_eq!(none.params(), target.params());

    let mut averaged = target.clone();
    averaged.polyak_update(&online, 0.25).expect("valid tau");
    for ((got, &theta), &theta_target) in averaged
        .params()
        .iter()
        .zip(online.params())
        .zip(target.params())
    {
        let want = 0.25 * f64::from(theta) + 0.75 * f64::from(theta_target);
        assert!((f64::from(*got) - want).abs() <= 1e-7, "{got} vs {want}");
    }

    for tau in [-0.1, 1.5, f64::NAN] {
        assert_eq!(field_of(averaged.polyak_update(&online, tau)), "tau");
    }
    let other = Mlp::<f32>::new(&MlpConfig::new(&[3, 9, 2]), &mut rng(1)).expect("valid config");
    assert_eq!(field_of(averaged.polyak_update(&other, 0.5)), "source");
    assert_eq!(field_of(averaged.hard_copy_from(&other)), "source");
}

#[test]
fn json_checkpoints_round_trip_bit_exactly_and_reject_corrupt_files() {
    let config = MlpConfig::new(&[6, 64, 64, 2])
        .hidden(Activation::Tanh)
        .output(Activation::Tanh);
    let mlp = Mlp::<f32>::new(&config, &mut rng(21)).expect("valid config");
    let json = mlp.to_json().expect("serializable");
    let back = Mlp::<f32>::from_json(&json).expect("valid checkpoint");
    assert!(back.same_architecture(&mlp));
    let bits = |m: &Mlp<f32>| m.params().iter().map(|p| p.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&back), bits(&mlp));

    let path = std::env::temp_dir().join(format!("policy-param-nn-{}.json", std::process::id()));
    mlp.save_json(&path).expect("writable temp dir");
    let loaded = Mlp::<f32>::load_json(&path);
    std::fs::remove_file(&path).ok();
    assert_eq!(loaded.expect("valid checkpoint"), mlp);

    let short = r#"{"sizes":[2,1],"hidden":"Relu","output":"Identity","params":[1.0,2.0]}"#;
    let unknown = r#"{"sizes":[2,1],"hidden":"Swish","output":"Identity","params":[1,2,3]}"#;
    for corrupt in [
        short,
        unknown,
        "{",
        r#"{"sizes":[2,0],"hidden":"Relu","output":"Identity","params":[]}"#,
    ] {
        assert!(
            matches!(
                Mlp::<f32>::from_json(corrupt),
                Err(crate::Error::Json { .. })
            ),
            "{corrupt}"
        );
    }
    let missing = std::env::temp_dir().join("policy-param-nn-no-such-file.json");
    assert!(matches!(
        Mlp::<f32>::load_json(&missing),
        Err(crate::Error::Io { .. })
    ));
}

#[test]
fn bad_shapes_and_orders_are_typed_errors() {
    let mlp = Mlp::<f32>::new(&MlpConfig::new(&[3, 4, 2]), &mut rng(0)).expect("valid config");
    let other = Mlp::<f32>::new(&MlpConfig::new(&[3, 5, 2]), &mut rng(0)).expect("valid config");
    let mut ws = mlp.workspace(4);
    let mut grads = mlp.zero_grads();

    assert_eq!(
        field_of(mlp.backward(&mut ws, &[0.0; 2], &mut grads, None)),
        "workspace"
    );
    assert_eq!(field_of(mlp.forward(&[0.0; 4], &mut ws)), "input");
    assert_eq!(field_of(mlp.forward(&[], &mut ws)), "input");
    assert_eq!(field_of(other.forward(&[0.0; 3], &mut ws)), "workspace");

    mlp.forward(&[0.5; 6], &mut ws).expect("two rows");
    assert_eq!(
        field_of(mlp.backward(&mut ws, &[0.0; 2], &mut grads, None)),
        "grad_output"
    );
    assert_eq!(
        field_of(mlp.backward(&mut ws, &[0.0; 4], &mut [0.0; 3], None)),
        "grads"
    );
    let mut short = [0.0; 5];
    assert_eq!(
        field_of(mlp.backward(&mut ws, &[0.0; 4], &mut grads, Some(&mut short))),
        "grad_input"
    );
    assert_eq!(
        field_of(mlp.input_gradient(&mut ws, &[0.0; 4], &mut short)),
        "grad_input"
    );

    assert_eq!(
        field_of(Mlp::<f32>::zeros(
            &[3],
            Activation::Relu,
            Activation::Identity
        )),
        "sizes"
    );
    assert_eq!(
        field_of(Mlp::<f32>::from_params(
            &[2, 1],
            Activation::Relu,
            Activation::Identity,
            vec![0.0; 2]
        )),
        "params"
    );
    assert_eq!(
        field_of(Mlp::<f32>::from_params(
            &[2, 1],
            Activation::Relu,
            Activation::Identity,
            vec![0.0, f32::NAN, 0.0]
        )),
        "params"
    );
}
