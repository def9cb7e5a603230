//! DDPG on Pendulum-v1 with rl-baselines3-zoo's hyperparameters
//! ([`DdpgConfig::zoo_pendulum`]): γ 0.98, buffer 200 000, 10 000 learning-start steps,
//! Gaussian noise σ 0.1 on the normalized action, lr 1e-3, layers [400, 300], batch 256,
//! τ 0.005, one update per step.
//!
//! Every 5000 steps it prints the mean return of 10 deterministic evaluation episodes;
//! at the end, the environment steps per second of the update phase (the steps after
//! `learning_starts`, evaluation time excluded), the figure to compare with
//! Stable-Baselines3 and sbx. Training runs on one thread; evaluation episodes run on
//! rayon's pool.
//!
//! ```text
//! cargo run --release --example ddpg_pendulum -- [STEPS=20000] [SEED=0]
//! ```

use std::time::{Duration, Instant};

use policy_param::algo::ddpg::{Ddpg, DdpgConfig};
use policy_param::env::pendulum::Pendulum;
use policy_param::env::Env;
use policy_param::eval::EvalSettings;
use policy_param::rng::RunSeed;
use policy_param::Result;

const EVAL_EVERY: u64 = 5000;
const EVAL_EPISODES: usize = 10;

fn argument(index: usize, name: &str, default: u64) -> std::result::Result<u64, String> {
    match std::env::args().nth(index) {
        None => Ok(default),
        Some(text) => text
            .parse()
            .map_err(|_| format!("{name} must be a non-negative integer, got {text:?}")),
    }
}

fn pendulum() -> Result<Box<dyn Env>> {
    Ok(Box::new(Pendulum::new()))
}

fn main() {
    let parsed = argument(1, "STEPS", 20_000).and_then(|s| Ok((s, argument(2, "SEED", 0)?)));
    let (steps, seed) = match parsed {
        Ok(values) => values,
        Err(message) => {
            eprintln!("usage: ddpg_pendulum [STEPS] [SEED]: {message}");
            std::process::exit(2);
        }
    };
    if let Err(error) = run(steps, seed) {
        eprintln!("ddpg_pendulum: {error}");
        std::process::exit(1);
    }
}

fn run(steps: u64, seed: u64) -> Result<()> {
    let config = DdpgConfig::zoo_pendulum().check()?;
    let learning_starts = config.learning_starts as u64;
    let seed = RunSeed(seed);
    let mut ddpg = Ddpg::new(&config, pendulum()?, seed)?;
    let evaluation = EvalSettings {
        episodes: EVAL_EPISODES,
        seed: seed.child("evaluation", 0),
        gamma: 1.0,
        max_steps: 1000,
    };
    println!(
        "DDPG on Pendulum-v1, rl-baselines3-zoo settings, {steps} steps, seed {}",
        seed.0
    );
    println!("{:>8}  {:>12}  {:>10}", "step", "eval return", "± std");

    let mut update_time = Duration::ZERO;
    let mut last_return = None;
    for _ in 0..steps {
        let started = Instant::now();
        let report = ddpg.step()?;
        if report.step > learning_starts {
            update_time += started.elapsed();
        }
        if report.step % EVAL_EVERY == 0 || report.step == steps {
            let result = ddpg.policy().evaluate(pendulum, &evaluation)?;
            println!(
                "{:>8}  {:>12.1}  {:>10.1}",
                report.step,
                result.mean_return(),
                result.std_return()
            );
            last_return = Some(result.mean_return());
        }
    }
    let update_steps = steps.saturating_sub(learning_starts);
    if update_steps > 0 {
        println!(
            "update phase: {update_steps} steps in {:.1} s = {:.1} env steps/s (one update per step)",
            update_time.as_secs_f64(),
            update_steps as f64 / update_time.as_secs_f64()
        );
    }
    if let Some(mean) = last_return {
        println!("final evaluation return: {mean:.1}");
    }
    Ok(())
}
