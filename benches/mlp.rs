//! Throughput of the network code on one core, for each GEMM backend, in f32.
//!
//! Cases:
//! * `gemm_256`: one 256×256×256 product, to compare with the single-core ceiling in
//!   NOTES.md (the `gemm` crate measured 122 GFLOP/s there);
//! * `train_wide`: a training step (forward, backward, Adam) of a [256, 256, 256, 1]
//!   network at batch 256, whose products are all 256³-like;
//! * `train_pendulum_critic`: the same for Pendulum's critic [4, 256, 256, 1] at batch 256
//!   (thin first and last layers);
//! * `action_gradient_pendulum_critic`: forward plus ∇ₐq alone at batch 64, as a
//!   maximizer evaluating 64 candidate actions uses it.
//!
//! FLOPs count 2·batch·in·out per product: one product per layer forward; backward
//! two per layer (weights, inputs) except the input product of the first layer unless
//! the input gradient is requested. Criterion reports them as elements/s; after the
//! run, a table gives GFLOP/s from each case's mean time.
//!
//! Run: `cargo bench --bench mlp -- --warm-up-time 1 --measurement-time 3`.

use std::hint::black_box;
use std::path::{Path, PathBuf};

use criterion::{Criterion, Throughput};
use policy_param::nn::gemm::{matmul, Backend, Dims, Operand};
use policy_param::nn::{Adam, AdamConfig, Mlp, MlpConfig};
use policy_param::rng::RunSeed;
use rand::Rng as _;

const BATCH: usize = 256;

fn backend_name(backend: Backend) -> &'static str {
    match backend {
        Backend::Packed => "packed",
        Backend::GemmCrate => "gemm_crate",
        Backend::Ndarray => "ndarray",
    }
}

fn random(len: usize, seed: u64) -> Vec<f32> {
    let mut rng = RunSeed(seed).stream("bench");
    (0..len).map(|_| rng.gen_range(-1.0..1.0)).collect()
}

/// Floating-point operations of one forward and backward pass.
fn flops(sizes: &[usize], batch: usize, input_gradient: bool, weight_gradients: bool) -> u64 {
    sizes
        .windows(2)
        .enumerate()
        .map(|(layer, pair)| {
            let product = 2 * batch * pair[0] * pair[1];
            let backward_products =
                usize::from(weight_gradients) + usize::from(layer > 0 || input_gradient);
            (product * (1 + backward_products)) as u64
        })
        .sum()
}

fn bench_gemm(c: &mut Criterion) -> Vec<(String, u64)> {
    let n = 256;
    let (a, b) = (random(n * n, 1), random(n * n, 2));
    let mut out = vec![0.0f32; n * n];
    let flops = (2 * n * n * n) as u64;
    let mut group = c.benchmark_group("gemm_256");
    group.throughput(Throughput::Elements(flops));
    let mut cases = Vec::new();
    for backend in Backend::ALL {
        group.bench_function(backend_name(backend), |bench| {
            bench.iter(|| {
                let dims = Dims { m: n, n, k: n };
                let (a, b) = (Operand::plain(&a), Operand::plain(&b));
                matmul(backend, dims, 1.0, a, b, 0.0, black_box(&mut out));
            })
        });
        cases.push((format!("gemm_256/{}", backend_name(backend)), flops));
    }
    group.finish();
    cases
}

fn bench_train_step(c: &mut Criterion, group_name: &str, sizes: &[usize]) -> Vec<(String, u64)> {
    let mlp = Mlp::<f32>::new(&MlpConfig::new(sizes), &mut RunSeed(0).stream("net"))
        .expect("valid sizes");
    let input = random(BATCH * sizes[0], 3);
    let grad_output = random(BATCH * sizes[sizes.len() - 1], 4);
    let flops = flops(sizes, BATCH, false, true);
    let mut group = c.benchmark_group(group_name);
    group.throughput(Throughput::Elements(flops));
    let mut cases = Vec::new();
    for backend in Backend::ALL {
        let mut net = mlp.clone();
        let mut ws = net.workspace(BATCH);
        ws.set_backend(backend);
        let mut grads = net.zero_grads();
        let mut adam = Adam::new(AdamConfig::with_lr(1e-6), net.num_params()).expect("valid");
        group.bench_function(backend_name(backend), |bench| {
            bench.iter(|| {
                net.forward(black_box(&input), &mut ws).expect("shapes");
                grads.fill(0.0);
                net.backward(&mut ws, &grad_output, &mut grads, None)
                    .expect("shapes");
                adam.step(net.params_mut(), &grads).expect("shapes");
            })
        });
        cases.push((format!("{group_name}/{}", backend_name(backend)), flops));
    }
    group.finish();
    cases
}

fn bench_action_gradient(c: &mut Criterion) -> Vec<(String, u64)> {
    let sizes = [4, 256, 256, 1];
    let batch = 64;
    let mlp = Mlp::<f32>::new(&MlpConfig::new(&sizes), &mut RunSeed(0).stream("net"))
        .expect("valid sizes");
    let input = random(batch * sizes[0], 5);
    let ones = vec![1.0f32; batch];
    let mut grad_input = vec![0.0f32; input.len()];
    let flops = flops(&sizes, batch, true, false);
    let group_name = "action_gradient_pendulum_critic";
    let mut group = c.benchmark_group(group_name);
    group.throughput(Throughput::Elements(flops));
    let mut cases = Vec::new();
    for backend in Backend::ALL {
        let mut ws = mlp.workspace(batch);
        ws.set_backend(backend);
        group.bench_function(backend_name(backend), |bench| {
            bench.iter(|| {
                mlp.forward(black_box(&input), &mut ws).expect("shapes");
                mlp.input_gradient(&mut ws, &ones, &mut grad_input)
                    .expect("shapes");
            })
        });
        cases.push((format!("{group_name}/{}", backend_name(backend)), flops));
    }
    group.finish();
    cases
}

/// Where criterion writes its estimates (its own rule, minus asking `cargo metadata`).
fn criterion_home() -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        PathBuf::from(home)
    } else if let Some(target) = std::env::var_os("CARGO_TARGET_DIR") {
        PathBuf::from(target).join("criterion")
    } else {
        PathBuf::from("target/criterion")
    }
}

/// Mean time per iteration in nanoseconds, from criterion's estimates of a case.
fn mean_ns(home: &Path, case: &str) -> Option<f64> {
    let path = home.join(case).join("new").join("estimates.json");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
    json["mean"]["point_estimate"].as_f64()
}

fn main() {
    let home = criterion_home();
    let mut criterion = Criterion::default()
        .configure_from_args()
        .output_directory(&home);
    let mut cases = bench_gemm(&mut criterion);
    cases.extend(bench_train_step(
        &mut criterion,
        "train_wide",
        &[256, 256, 256, 1],
    ));
    cases.extend(bench_train_step(
        &mut criterion,
        "train_pendulum_critic",
        &[4, 256, 256, 1],
    ));
    cases.extend(bench_action_gradient(&mut criterion));
    criterion.final_summary();

    println!(
        "\n{:<45} {:>12} {:>10} {:>9}",
        "case (f32, one thread)", "MFLOP", "mean µs", "GFLOP/s"
    );
    for (case, flops) in cases {
        match mean_ns(&home, &case) {
            Some(ns) => println!(
                "{case:<45} {:>12.2} {:>10.1} {:>9.1}",
                flops as f64 / 1e6,
                ns / 1e3,
                flops as f64 / ns
            ),
            None => println!("{case:<45} (no estimate: filtered out or not run)"),
        }
    }
}
