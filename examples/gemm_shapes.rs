//! Where an update's time goes: our GEMM at the exact shapes of one SAC and one DDPG
//! update on Pendulum-v1 (zoo sizes, batch 256), and the share of a training step spent
//! outside matrix products. The peer libraries' side (OpenBLAS through numpy, oneDNN/MKL
//! through torch) and the README table come from `scripts/bench_gemm.py`, which runs this.
//!
//! For a layer `in → out` at batch `B` the network code makes three products
//! (`src/nn/mlp.rs`): forward `X·W` (`B×in·in×out`), the weight gradient `Xᵀ·δ`
//! (`in×B·B×out`, `X` read transposed) and the input gradient `δ·Wᵀ` (`B×out·out×in`,
//! `W` read transposed). Each is timed alone on one thread: the median over repeats of
//! the mean time of a burst of calls long enough to read a clock (≥ 20 ms).
//!
//! With the `gemm-timing` feature, it also runs `steps` training steps of SAC and of
//! DDPG (zoo settings, after `learning_starts` random steps and a warm-up) on one thread
//! and reports the wall-clock seconds inside `matmul` against the whole. Prints one JSON
//! object (`shapes=no` skips the products and only profiles the updates).
//!
//! ```text
//! cargo run --release --example gemm_shapes --features gemm-timing -- [steps=2000] [repeats=7] [shapes=yes|no]
//! ```

use std::hint::black_box;
use std::time::{Duration, Instant};

use policy_param::nn::gemm::{matmul, Backend, Dims, Operand};
use policy_param::rng::RunSeed;
use rand::Rng as _;

const BATCH: usize = 256;

/// The networks of one update: (name, widths).
const NETWORKS: [(&str, [usize; 4]); 4] = [
    ("sac_critic", [4, 256, 256, 1]),
    ("sac_actor", [3, 256, 256, 2]),
    ("ddpg_critic", [4, 400, 300, 1]),
    ("ddpg_actor", [3, 400, 300, 1]),
];

/// One of a layer's three products, as `mlp.rs` calls `matmul`.
#[derive(Clone, Copy)]
enum Product {
    Forward,
    WeightGradient,
    InputGradient,
}

impl Product {
    const ALL: [Product; 3] = [
        Product::Forward,
        Product::WeightGradient,
        Product::InputGradient,
    ];

    fn name(self) -> &'static str {
        match self {
            Product::Forward => "forward X·W",
            Product::WeightGradient => "weight grad Xᵀ·δ",
            Product::InputGradient => "input grad δ·Wᵀ",
        }
    }

    /// Dims and whether A and B are read transposed, for a layer `inputs → outputs`.
    fn shape(self, inputs: usize, outputs: usize) -> (Dims, bool, bool) {
        match self {
            Product::Forward => (dims(BATCH, outputs, inputs), false, false),
            Product::WeightGradient => (dims(inputs, outputs, BATCH), true, false),
            Product::InputGradient => (dims(BATCH, inputs, outputs), false, true),
        }
    }
}

fn dims(m: usize, n: usize, k: usize) -> Dims {
    Dims { m, n, k }
}

fn random(len: usize, seed: u64) -> Vec<f32> {
    let mut rng = RunSeed(seed).stream("gemm_shapes");
    (0..len).map(|_| rng.gen_range(-1.0..1.0)).collect()
}

/// Median seconds of one call, over `repeats` bursts of at least 20 ms.
fn seconds_per_call(repeats: usize, mut call: impl FnMut()) -> f64 {
    let start = Instant::now();
    let mut calls = 0u32;
    while start.elapsed() < Duration::from_millis(20) {
        call();
        calls += 1;
    }
    let burst = calls.max(1);
    let mut times: Vec<f64> = (0..repeats)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..burst {
                call();
            }
            start.elapsed().as_secs_f64() / f64::from(burst)
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

fn shape_rows(repeats: usize) -> Vec<String> {
    let mut rows = Vec::new();
    for (network, widths) in NETWORKS {
        for (layer, pair) in widths.windows(2).enumerate() {
            for product in Product::ALL {
                let (d, ta, tb) = product.shape(pair[0], pair[1]);
                let (a, b) = (random(d.m * d.k, 1), random(d.k * d.n, 2));
                let mut c = vec![0.0f32; d.m * d.n];
                let flops = 2.0 * (d.m * d.n * d.k) as f64;
                let mut gflops = Vec::new();
                for backend in [Backend::Packed, Backend::GemmCrate] {
                    let seconds = seconds_per_call(repeats, || {
                        let a = if ta {
                            Operand::transposed(&a)
                        } else {
                            Operand::plain(&a)
                        };
                        let b = if tb {
                            Operand::transposed(&b)
                        } else {
                            Operand::plain(&b)
                        };
                        matmul(backend, d, 1.0, a, b, 0.0, black_box(&mut c));
                    });
                    gflops.push(flops / seconds / 1e9);
                }
                rows.push(format!(
                    r#"{{"network":"{network}","layer":{layer},"product":"{}","m":{},"n":{},"k":{},"a_transposed":{ta},"b_transposed":{tb},"gflops":{{"ours":{:.2},"gemm_crate":{:.2}}}}}"#,
                    product.name(),
                    d.m,
                    d.n,
                    d.k,
                    gflops[0],
                    gflops[1]
                ));
            }
        }
    }
    rows
}

#[cfg(feature = "gemm-timing")]
fn update_shares(steps: u64) -> policy_param::Result<Vec<String>> {
    use policy_param::algo::ddpg::{Ddpg, DdpgConfig};
    use policy_param::algo::sac::{Sac, SacConfig};
    use policy_param::env::pendulum::Pendulum;
    use policy_param::nn::gemm::timing;

    fn profile(
        algo: &str,
        learning_starts: usize,
        steps: u64,
        mut step: impl FnMut() -> policy_param::Result<()>,
    ) -> policy_param::Result<String> {
        for _ in 0..learning_starts + 200 {
            step()?;
        }
        timing::take();
        let start = Instant::now();
        for _ in 0..steps {
            step()?;
        }
        let total = start.elapsed().as_secs_f64();
        let in_gemm = timing::take().as_secs_f64();
        Ok(format!(
            r#"{{"algo":"{algo}","steps":{steps},"seconds":{total:.4},"gemm_seconds":{in_gemm:.4},"steps_per_second":{:.2},"share_outside_gemm":{:.4}}}"#,
            steps as f64 / total,
            1.0 - in_gemm / total
        ))
    }

    let sac_config = SacConfig::zoo_pendulum().check()?;
    let mut sac = Sac::new(&sac_config, Box::new(Pendulum::new()), RunSeed(0))?;
    let sac_row = profile("sac", sac_config.learning_starts, steps, || {
        sac.step().map(|_| ())
    })?;
    // DDPG's zoo warm-up is 10 000 random steps; 1 000 fill the batch just as well here.
    let ddpg_config = DdpgConfig {
        learning_starts: 1000,
        ..DdpgConfig::zoo_pendulum()
    }
    .check()?;
    let mut ddpg = Ddpg::new(&ddpg_config, Box::new(Pendulum::new()), RunSeed(0))?;
    let ddpg_row = profile("ddpg", ddpg_config.learning_starts, steps, || {
        ddpg.step().map(|_| ())
    })?;
    Ok(vec![sac_row, ddpg_row])
}

#[cfg(not(feature = "gemm-timing"))]
fn update_shares(_steps: u64) -> policy_param::Result<Vec<String>> {
    eprintln!("gemm_shapes: built without the gemm-timing feature, no update profile");
    Ok(Vec::new())
}

fn main() {
    let (mut steps, mut repeats, mut shapes) = (2000u64, 7usize, true);
    for argument in std::env::args().skip(1) {
        let parsed = match argument.split_once('=') {
            Some(("steps", v)) => v.parse().map(|v| steps = v).is_ok(),
            Some(("repeats", v)) => v.parse().map(|v: usize| repeats = v.max(1)).is_ok(),
            Some(("shapes", v)) => {
                ["yes", "no"].contains(&v) && {
                    shapes = v == "yes";
                    true
                }
            }
            _ => false,
        };
        if !parsed {
            eprintln!(
                "usage: gemm_shapes [steps=2000] [repeats=7] [shapes=yes|no]; got {argument:?}"
            );
            std::process::exit(2);
        }
    }
    let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build();
    let result = pool.map_err(|e| e.to_string()).and_then(|pool| {
        pool.install(|| {
            let shapes = if shapes {
                shape_rows(repeats)
            } else {
                Vec::new()
            };
            let updates = update_shares(steps).map_err(|e| e.to_string())?;
            Ok::<_, String>((shapes, updates))
        })
    });
    match result {
        Ok((shapes, updates)) => println!(
            "{{\"shapes\":[\n{}\n],\"updates\":[\n{}\n]}}",
            shapes.join(",\n"),
            updates.join(",\n")
        ),
        Err(error) => {
            eprintln!("gemm_shapes: {error}");
            std::process::exit(1);
        }
    }
}
