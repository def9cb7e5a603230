//! One DDPG step — an environment step and one update (critic, actor, Polyak targets) —
//! at the rl-baselines3-zoo Pendulum-v1 sizes: layers [400, 300], batch 256, in rayon
//! pools of 1 and 2 threads (the large products split their rows over the pool). The buffer is first filled past `learning_starts` so every measured step
//! updates. Criterion reports the time per step; its inverse is the update-phase
//! throughput to compare with Stable-Baselines3 (≈ 111 env steps/s on one thread here)
//! and sbx (≈ 254).
//!
//! Run: `cargo bench --bench ddpg -- --warm-up-time 2 --measurement-time 10`.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use policy_param::algo::ddpg::{Ddpg, DdpgConfig};
use policy_param::env::pendulum::Pendulum;
use policy_param::rng::RunSeed;

fn ddpg_step(c: &mut Criterion) {
    let config = DdpgConfig {
        learning_starts: 1000,
        ..DdpgConfig::zoo_pendulum()
    }
    .check()
    .expect("valid configuration");
    let mut ddpg = Ddpg::new(&config, Box::new(Pendulum::new()), RunSeed(0)).expect("ddpg");
    for _ in 0..1100 {
        ddpg.step().expect("warm-up step");
    }
    let mut group = c.benchmark_group("ddpg_pendulum_zoo");
    group.throughput(Throughput::Elements(1));
    group.sample_size(30);
    for threads in [1, 2] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("thread pool");
        group.bench_function(format!("step_with_update/threads={threads}"), |b| {
            b.iter(|| pool.install(|| ddpg.step().expect("step")))
        });
    }
    group.finish();
}

criterion_group!(benches, ddpg_step);
criterion_main!(benches);
