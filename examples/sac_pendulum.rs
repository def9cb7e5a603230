//! SAC on Pendulum-v1 with rl-baselines3-zoo's hyperparameters
//! ([`SacConfig::zoo_pendulum`]): learning rate 1e-3, layers [256, 256], batch 256,
//! buffer 10⁶, 100 learning-start steps, τ 0.005, γ 0.99, automatic temperature, one
//! update per step, tanh-squashed Gaussian, twin critics.
//!
//! For every seed it prints the mean return of 10 deterministic evaluation episodes
//! (the policy's mean action) every `eval_every` steps; at the end, per seed and over
//! seeds, the final evaluation return and the environment steps per second of the
//! update phase (the steps after `learning_starts`, evaluation excluded) — the figure to
//! compare with Stable-Baselines3 (108 steps/s on one thread here) and sbx (280).
//!
//! Training runs inside a rayon pool of `threads` threads (default: `RAYON_NUM_THREADS`
//! or the number of cores): the twin critics run concurrently and large matrix products
//! split their rows over the pool; the results are the same bits for any thread count.
//!
//! ```text
//! cargo run --release --example sac_pendulum -- [steps=20000] [seeds=0,1,2,3,4] [threads=N] [eval_every=5000]
//! ```

use std::time::{Duration, Instant};

use policy_param::algo::sac::{Sac, SacConfig};
use policy_param::env::pendulum::Pendulum;
use policy_param::env::Env;
use policy_param::eval::EvalSettings;
use policy_param::rng::RunSeed;
use policy_param::Result;

const EVAL_EPISODES: usize = 10;

struct Args {
    steps: u64,
    seeds: Vec<u64>,
    threads: usize,
    eval_every: u64,
}

fn parse() -> std::result::Result<Args, String> {
    let mut args = Args {
        steps: 20_000,
        seeds: vec![0, 1, 2, 3, 4],
        threads: rayon::current_num_threads(),
        eval_every: 5000,
    };
    let number = |key: &str, value: &str| -> std::result::Result<u64, String> {
        value
            .parse()
            .map_err(|_| format!("{key} must be a non-negative integer, got {value:?}"))
    };
    for argument in std::env::args().skip(1) {
        let (key, value) = argument
            .split_once('=')
            .ok_or_else(|| format!("expected key=value, got {argument:?}"))?;
        match key {
            "steps" => args.steps = number(key, value)?,
            "threads" => args.threads = number(key, value)?.max(1) as usize,
            "eval_every" => args.eval_every = number(key, value)?.max(1),
            "seeds" => {
                args.seeds = value
                    .split(',')
                    .map(|s| number(key, s))
                    .collect::<std::result::Result<_, _>>()?
            }
            _ => return Err(format!("unknown argument {key:?}")),
        }
    }
    Ok(args)
}

fn pendulum() -> Result<Box<dyn Env>> {
    Ok(Box::new(Pendulum::new()))
}

fn main() {
    let args = match parse() {
        Ok(args) => args,
        Err(message) => {
            eprintln!(
                "usage: sac_pendulum [steps=20000] [seeds=0,1,2,3,4] [threads=N] [eval_every=5000]: {message}"
            );
            std::process::exit(2);
        }
    };
    let pool = match rayon::ThreadPoolBuilder::new()
        .num_threads(args.threads)
        .build()
    {
        Ok(pool) => pool,
        Err(error) => {
            eprintln!(
                "sac_pendulum: cannot start {} threads: {error}",
                args.threads
            );
            std::process::exit(1);
        }
    };
    if let Err(error) = pool.install(|| run(&args)) {
        eprintln!("sac_pendulum: {error}");
        std::process::exit(1);
    }
}

fn run(args: &Args) -> Result<()> {
    let config = SacConfig::zoo_pendulum().check()?;
    let learning_starts = config.learning_starts as u64;
    println!(
        "SAC on Pendulum-v1, rl-baselines3-zoo settings, {} steps, {} thread(s)",
        args.steps, args.threads
    );
    println!(
        "{:>6}  {:>8}  {:>12}  {:>8}",
        "seed", "step", "eval return", "± std"
    );
    let mut finals = Vec::new();
    let mut speeds = Vec::new();
    for &seed in &args.seeds {
        let seed = RunSeed(seed);
        let mut sac = Sac::new(&config, pendulum()?, seed)?;
        let evaluation = EvalSettings {
            episodes: EVAL_EPISODES,
            seed: seed.child("evaluation", 0),
            gamma: 1.0,
            max_steps: 1000,
        };
        let mut update_time = Duration::ZERO;
        let mut last = None;
        for _ in 0..args.steps {
            let started = Instant::now();
            let report = sac.step()?;
            if report.step > learning_starts {
                update_time += started.elapsed();
            }
            if report.step % args.eval_every == 0 || report.step == args.steps {
                let result = sac.policy().evaluate(pendulum, &evaluation)?;
                println!(
                    "{:>6}  {:>8}  {:>12.1}  {:>8.1}",
                    seed.0,
                    report.step,
                    result.mean_return(),
                    result.std_return()
                );
                last = Some(result.mean_return());
            }
        }
        let update_steps = args.steps.saturating_sub(learning_starts);
        let speed = update_steps as f64 / update_time.as_secs_f64();
        println!(
            "seed {}: update phase {update_steps} steps in {:.1} s = {speed:.1} env steps/s; final β {:.4}",
            seed.0,
            update_time.as_secs_f64(),
            sac.beta()
        );
        if let Some(last) = last {
            finals.push(last);
        }
        if update_steps > 0 {
            speeds.push(speed);
        }
    }
    if !finals.is_empty() {
        let n = finals.len() as f64;
        let mean = finals.iter().sum::<f64>() / n;
        let std =
            (finals.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0)).sqrt();
        println!(
            "final evaluation return over {} seed(s): {mean:.1} ± {std:.1} (per seed: {})",
            finals.len(),
            finals
                .iter()
                .map(|r| format!("{r:.1}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if !speeds.is_empty() {
        speeds.sort_by(f64::total_cmp);
        println!(
            "update-phase env steps/s, median over seeds: {:.1} ({} thread(s))",
            speeds[speeds.len() / 2],
            args.threads
        );
    }
    Ok(())
}
