//! One SAC step — an environment step and one update (temperature, twin critics, policy,
//! Polyak targets) — at the rl-baselines3-zoo Pendulum-v1 settings: layers [256, 256],
//! batch 256, in rayon pools of 1 and 2 threads (the twin critics run concurrently and
//! the large products split their rows over the pool; the bits are the same). The
//! buffer is first filled past `learning_starts` so every measured step updates, and
//! every step runs inside the pool. Criterion reports the time per step; its inverse is
//! the update-phase throughput to compare with Stable-Baselines3 (≈ 108 env steps/s on
//! one thread here, 135 on two) and sbx (≈ 280, 366).
//!
//! Run: `cargo bench --bench sac -- --warm-up-time 2 --measurement-time 10`.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use policy_param::algo::sac::{Sac, SacConfig};
use policy_param::env::pendulum::Pendulum;
use policy_param::rng::RunSeed;

fn sac_step(c: &mut Criterion) {
    let config = SacConfig::zoo_pendulum()
        .check()
        .expect("valid configuration");
    let mut group = c.benchmark_group("sac_pendulum_zoo");
    group.throughput(Throughput::Elements(1));
    group.sample_size(30);
    for threads in [1, 2] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("thread pool");
        let mut sac = pool.install(|| {
            let mut sac = Sac::new(&config, Box::new(Pendulum::new()), RunSeed(0)).expect("sac");
            for _ in 0..300 {
                sac.step().expect("warm-up step");
            }
            sac
        });
        group.bench_function(format!("step_with_update/threads={threads}"), |b| {
            b.iter_custom(|iterations| {
                pool.install(|| {
                    let start = std::time::Instant::now();
                    for _ in 0..iterations {
                        sac.step().expect("step");
                    }
                    start.elapsed()
                })
            })
        });
    }
    group.finish();
}

criterion_group!(benches, sac_step);
criterion_main!(benches);
