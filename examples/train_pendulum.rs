//! An online agent on Pendulum-v1 through the library's one training loop
//! ([`policy_param::train::train`]), with the algorithm's first preset (rl-baselines3-zoo's
//! Pendulum settings) and any `key=value` overrides — what `policy-param train` does,
//! without the run directory, to show the library calls.
//!
//! Prints the mean return of the deterministic policy at each evaluation point and, at
//! the end, the environment steps per second of the steps that made an update
//! (evaluations excluded): the figure to compare with Stable-Baselines3 and sbx.
//!
//! ```text
//! cargo run --release --example train_pendulum -- ddpg|sac [seed=0] [steps=20000] [KEY=VALUE ...]
//! ```

use serde_json::{Map, Value};

use policy_param::algo::ddpg_params::DdpgParams;
use policy_param::algo::online::{Agent, AgentConfig, Online};
use policy_param::algo::sac_params::SacParams;
use policy_param::env::pendulum::Pendulum;
use policy_param::env::Env;
use policy_param::rng::RunSeed;
use policy_param::train::{train, EvalPoint, OnlineAlgorithm, TrainConfig, TrainObserver};
use policy_param::Result;

/// Prints each evaluation point as a row.
struct PrintEvaluations;

impl<A: Agent> TrainObserver<A> for PrintEvaluations {
    fn evaluation(&mut self, _: &Online<A>, point: &EvalPoint) -> Result<()> {
        println!(
            "{:>8}  {:>12.1}  {:>8.1}",
            point.step,
            point.evaluation.mean_return(),
            point.evaluation.std_return()
        );
        Ok(())
    }
}

fn pendulum() -> Result<Box<dyn Env>> {
    Ok(Box::new(Pendulum::new()))
}

fn run<P: OnlineAlgorithm>(seed: u64, overrides: &Map<String, Value>) -> Result<()> {
    let config = TrainConfig::<P>::resolve(None, overrides)?;
    let seed = RunSeed(seed);
    let agent_config = config.params.agent_config().check()?;
    let mut online = Online::<P::Agent>::new(&agent_config, pendulum()?, seed)?;
    println!(
        "{} on Pendulum-v1, preset {}, {} steps, seed {}",
        P::ALGORITHM,
        P::presets()[0].name,
        config.run.steps,
        seed.0
    );
    println!("{:>8}  {:>12}  {:>8}", "step", "eval return", "± std");
    let timing = train(
        &mut online,
        &config.run,
        &pendulum,
        seed,
        &mut PrintEvaluations,
    )?;
    if let Some(speed) = timing.update_steps_per_second() {
        println!(
            "{} steps with updates in {:.1} s = {speed:.1} env steps/s",
            timing.update_steps, timing.update_seconds
        );
    }
    Ok(())
}

fn main() {
    let mut args = std::env::args().skip(1);
    let algorithm = args.next().unwrap_or_default();
    let mut seed = 0;
    let mut overrides = Map::new();
    for argument in args {
        let Some((key, value)) = argument.split_once('=') else {
            eprintln!("train_pendulum: expected KEY=VALUE, got {argument:?}");
            std::process::exit(2);
        };
        let value: Value = serde_json::from_str(value).unwrap_or(Value::String(value.into()));
        if key == "seed" {
            match value.as_u64() {
                Some(s) => seed = s,
                None => {
                    eprintln!("train_pendulum: seed must be a non-negative integer");
                    std::process::exit(2);
                }
            }
        } else {
            overrides.insert(key.to_string(), value);
        }
    }
    let outcome = match algorithm.as_str() {
        "ddpg" => run::<DdpgParams>(seed, &overrides),
        "sac" => run::<SacParams>(seed, &overrides),
        other => {
            eprintln!("usage: train_pendulum ddpg|sac [seed=N] [KEY=VALUE ...] (got {other:?})");
            std::process::exit(2);
        }
    };
    if let Err(error) = outcome {
        eprintln!("train_pendulum: {error}");
        std::process::exit(1);
    }
}
