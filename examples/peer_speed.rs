//! Our side of `just bench-peers` (`scripts/bench_peers.py`): the update-phase speed of
//! SAC, DDPG or TD3 on Pendulum-v1 at the rl-baselines3-zoo settings
//! ([`SacConfig::zoo_pendulum`], [`DdpgConfig::zoo_pendulum`], [`Td3Config::zoo_pendulum`]),
//! measured as the peers'
//! side is: `learning_starts` steps of random actions, then `warmup` steps with one
//! update each (untimed, as the peers' JIT compile and first updates are), then `steps`
//! timed steps, each an environment step with one update.
//!
//! Everything after construction runs inside a rayon pool of `threads` threads, whose
//! other workers busy-wait for work as in `train` ([`policy_param::busy_workers`]). Prints
//! one machine-readable line:
//!
//! ```text
//! peer_speed impl=ours algo=sac threads=1 learning_starts=100 warmup=200 steps=5000 seconds=24.6 steps_per_second=203.2
//! ```
//!
//! ```text
//! cargo run --release --example peer_speed -- algo=sac|ddpg|td3 [threads=1] [warmup=200] [steps=5000] [learning_starts=zoo] [seed=0]
//! ```

use std::time::Instant;

use policy_param::algo::ddpg::{Ddpg, DdpgConfig};
use policy_param::algo::sac::{Sac, SacConfig};
use policy_param::algo::td3::{Td3, Td3Config};
use policy_param::env::pendulum::Pendulum;
use policy_param::rng::RunSeed;
use policy_param::Result;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Algo {
    Sac,
    Ddpg,
    Td3,
}

struct Args {
    algo: Algo,
    threads: usize,
    warmup: u64,
    steps: u64,
    learning_starts: Option<usize>,
    seed: u64,
}

const USAGE: &str = "usage: peer_speed algo=sac|ddpg|td3 [threads=1] [warmup=200] [steps=5000] [learning_starts=N] [seed=0]";

fn parse() -> std::result::Result<Args, String> {
    let mut args = Args {
        algo: Algo::Sac,
        threads: 1,
        warmup: 200,
        steps: 5000,
        learning_starts: None,
        seed: 0,
    };
    let mut algo = None;
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
            "algo" => {
                algo = Some(match value {
                    "sac" => Algo::Sac,
                    "ddpg" => Algo::Ddpg,
                    "td3" => Algo::Td3,
                    _ => return Err(format!("algo must be sac, ddpg or td3, got {value:?}")),
                })
            }
            "threads" => args.threads = number(key, value)?.max(1) as usize,
            "warmup" => args.warmup = number(key, value)?,
            "steps" => args.steps = number(key, value)?.max(1),
            "learning_starts" => args.learning_starts = Some(number(key, value)? as usize),
            "seed" => args.seed = number(key, value)?,
            _ => return Err(format!("unknown argument {key:?}")),
        }
    }
    args.algo = algo.ok_or("algo=sac|ddpg|td3 is required")?;
    Ok(args)
}

/// The agent under test: one environment step with its update per call.
enum Agent {
    Sac(Box<Sac>),
    Ddpg(Box<Ddpg>),
    Td3(Box<Td3>),
}

impl Agent {
    fn new(args: &Args) -> Result<(Self, usize)> {
        let seed = RunSeed(args.seed);
        let env = Box::new(Pendulum::new());
        Ok(match args.algo {
            Algo::Sac => {
                let zoo = SacConfig::zoo_pendulum();
                let config = SacConfig {
                    learning_starts: args.learning_starts.unwrap_or(zoo.learning_starts),
                    ..zoo
                }
                .check()?;
                let starts = config.learning_starts;
                (Agent::Sac(Box::new(Sac::new(&config, env, seed)?)), starts)
            }
            Algo::Ddpg => {
                let zoo = DdpgConfig::zoo_pendulum();
                let config = DdpgConfig {
                    learning_starts: args.learning_starts.unwrap_or(zoo.learning_starts),
                    ..zoo
                }
                .check()?;
                let starts = config.learning_starts;
                (
                    Agent::Ddpg(Box::new(Ddpg::new(&config, env, seed)?)),
                    starts,
                )
            }
            Algo::Td3 => {
                let zoo = Td3Config::zoo_pendulum();
                let config = Td3Config {
                    learning_starts: args.learning_starts.unwrap_or(zoo.learning_starts),
                    ..zoo
                }
                .check()?;
                let starts = config.learning_starts;
                (Agent::Td3(Box::new(Td3::new(&config, env, seed)?)), starts)
            }
        })
    }

    fn step(&mut self) -> Result<()> {
        match self {
            Agent::Sac(sac) => sac.step().map(|_| ()),
            Agent::Ddpg(ddpg) => ddpg.step().map(|_| ()),
            Agent::Td3(td3) => td3.step().map(|_| ()),
        }
    }
}

fn run(args: &Args) -> Result<()> {
    let (mut agent, learning_starts) = Agent::new(args)?;
    // As `train` and `Online::run` do: the pool's other workers busy-wait for work.
    let _busy = policy_param::busy_workers::BusyWorkers::start();
    for _ in 0..learning_starts as u64 + args.warmup {
        agent.step()?;
    }
    let start = Instant::now();
    for _ in 0..args.steps {
        agent.step()?;
    }
    let seconds = start.elapsed().as_secs_f64();
    println!(
        "peer_speed impl=ours algo={} threads={} learning_starts={learning_starts} warmup={} steps={} seconds={seconds:.4} steps_per_second={:.2}",
        match args.algo {
            Algo::Sac => "sac",
            Algo::Ddpg => "ddpg",
            Algo::Td3 => "td3",
        },
        args.threads,
        args.warmup,
        args.steps,
        args.steps as f64 / seconds
    );
    Ok(())
}

fn main() {
    let args = match parse() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{USAGE}: {message}");
            std::process::exit(2);
        }
    };
    let pool = match rayon::ThreadPoolBuilder::new()
        .num_threads(args.threads)
        .build()
    {
        Ok(pool) => pool,
        Err(error) => {
            eprintln!("peer_speed: cannot start {} threads: {error}", args.threads);
            std::process::exit(1);
        }
    };
    if let Err(error) = pool.install(|| run(&args)) {
        eprintln!("peer_speed: {error}");
        std::process::exit(1);
    }
}
