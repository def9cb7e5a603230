//! `policy-param train`, `eval` and `keys`: one run of an online agent into a directory,
//! through the same code as one grid cell ([`policy_param_harness::online`]).

use std::path::PathBuf;

use anyhow::{anyhow, bail};
use clap::Args;
use serde_json::{Map, Value};

use policy_param_harness::online::{self, online_algorithm, RunDir, ONLINE};
use policy_param_harness::registry::{self, BATCH};

use crate::Verdict;

#[derive(Args)]
pub struct TrainArgs {
    /// The algorithm (`policy-param keys` lists them).
    pub algorithm: String,
    /// The environment id (Pendulum-v1, MountainCarContinuous-v0, Lqr).
    #[arg(long = "env", value_name = "ENV_ID")]
    pub environment: String,
    /// Start from this preset (default: the algorithm's first; `policy-param keys ALGORITHM`).
    #[arg(long)]
    pub preset: Option<String>,
    /// Set a key: `--set lr=3e-4 --set hidden=[64,64] --set noise=ou` (values as in TOML;
    /// a bare word is a string).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// The run's seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// The run directory: created, or resumed when it holds this same run.
    #[arg(long)]
    pub out: PathBuf,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

#[derive(Args)]
pub struct EvalArgs {
    /// A directory written by `policy-param train`.
    pub dir: PathBuf,
    /// Evaluation episodes.
    #[arg(long, default_value_t = 10)]
    pub episodes: usize,
    /// Seed of the evaluation episodes.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// The most episodes `eval` runs in one call.
const MAX_EPISODES: usize = 100_000;

/// `KEY=VALUE` pairs as a JSON object; a value that is not TOML is a string.
fn overrides(sets: &[String]) -> anyhow::Result<Map<String, Value>> {
    let mut map = Map::new();
    for set in sets {
        let Some((key, value)) = set.split_once('=') else {
            bail!("--set {set:?}: expected KEY=VALUE");
        };
        let key = key.trim();
        let value = value.trim();
        let parsed: Value = match format!("v = {value}").parse::<toml::Table>() {
            Ok(mut table) => serde_json::to_value(table.remove("v"))?,
            Err(_) => Value::String(value.to_string()),
        };
        if map.insert(key.to_string(), parsed).is_some() {
            bail!("--set {key}: given twice");
        }
    }
    Ok(map)
}

pub fn train(args: TrainArgs) -> anyhow::Result<Verdict> {
    let algorithm = online_algorithm(&args.algorithm)?;
    let values = overrides(&args.set)?;
    let resolved = algorithm
        .resolve(&args.environment, args.preset.as_deref(), &values)
        .map_err(|inv| {
            if inv.key == "environment" {
                anyhow!("--env {}: {}", args.environment, inv.reason)
            } else if inv.key == "preset" {
                anyhow!("--preset: {}", inv.reason)
            } else {
                anyhow!("--set {}: {}", inv.key, inv.reason)
            }
        })?;
    let run = RunDir {
        dir: args.out,
        algorithm: args.algorithm,
        environment: args.environment,
        seed: args.seed,
        values: resolved,
    };
    let outcome = online::train_dir(&run, !args.quiet)?;
    let resumed = if outcome.resumed_from > 0 {
        format!(" (resumed from step {})", outcome.resumed_from)
    } else {
        String::new()
    };
    let last = outcome
        .final_mean_return
        .map(|r| format!(", last evaluation: mean return {r:.2}"))
        .unwrap_or_default();
    let speed = outcome
        .timing
        .update_steps_per_second()
        .map(|s| format!(", {s:.1} env steps/s with updates"))
        .unwrap_or_default();
    println!(
        "{} on {}: {} steps{resumed}{last}{speed}; written to {}",
        run.algorithm,
        run.environment,
        outcome.steps,
        run.dir.display()
    );
    Ok(Verdict::Pass)
}

pub fn eval(args: EvalArgs) -> anyhow::Result<Verdict> {
    if !(1..=MAX_EPISODES).contains(&args.episodes) {
        bail!(
            "--episodes must be between 1 and {MAX_EPISODES}, got {}",
            args.episodes
        );
    }
    let (mean, std) = online::eval_dir(&args.dir, args.episodes, args.seed)?;
    println!(
        "mean_return={mean} std_return={std} episodes={}",
        args.episodes
    );
    Ok(Verdict::Pass)
}

/// `policy-param keys [ALGORITHM]`.
pub fn keys(algorithm: Option<String>) -> anyhow::Result<Verdict> {
    let Some(name) = algorithm else {
        println!("online agents (policy-param train, any environment they can act in):");
        for a in ONLINE {
            println!("  {}", a.algorithm());
        }
        println!("grid adapters (experiments/*.toml):");
        for a in BATCH {
            println!("  {} on {}", a.algorithm(), a.environments().join(", "));
        }
        return Ok(Verdict::Pass);
    };
    if let Ok(a) = online_algorithm(&name) {
        println!(
            "{name}: every key, its default (preset {}), range and meaning",
            a.presets()[0].0
        );
        let keys = a.keys();
        let width = keys.iter().map(|(k, _)| k.name.len()).max().unwrap_or(0);
        let shown: Vec<String> = keys.iter().map(|(_, d)| d.to_string()).collect();
        let default_width = shown.iter().map(|d| d.chars().count()).max().unwrap_or(0);
        for ((key, _), default) in keys.iter().zip(&shown) {
            println!(
                "  {:<width$}  {:<default_width$}  {}: {}",
                key.name,
                default,
                key.range.describe(),
                key.meaning
            );
        }
        println!("presets (--preset NAME, or preset = \"NAME\" in a grid):");
        for (preset, meaning) in a.presets() {
            println!("  {preset}: {meaning}");
        }
        return Ok(Verdict::Pass);
    }
    let adapters: Vec<_> = BATCH.iter().filter(|a| a.algorithm() == name).collect();
    if adapters.is_empty() {
        let mut known: Vec<&str> = registry::adapters().map(|a| a.algorithm()).collect();
        known.sort_unstable();
        known.dedup();
        bail!("unknown algorithm {name:?} (known: {})", known.join(", "));
    }
    for a in adapters {
        println!(
            "{name} on {} (grid adapter {}; ranges in its documentation):",
            a.environments().join(", "),
            a.name()
        );
        if let Value::Object(defaults) = a.defaults() {
            let width = defaults.keys().map(String::len).max().unwrap_or(0);
            for (key, default) in defaults {
                println!("  {key:<width$}  {default}");
            }
        }
    }
    Ok(Verdict::Pass)
}
