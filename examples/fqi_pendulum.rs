//! Fitted Q-iteration with explicit maximization (`fitted-q-iteration-explicit`) on
//! Pendulum-v1: a q-network on `[cos θ, sin θ, θ̇, a]` fitted on one-step transitions from
//! states drawn uniformly over the whole state space, the `maximize` step done by a
//! grid over the torque. Prints every iteration's report, then the greedy
//! policy's mean return over 20 evaluation episodes next to a uniformly random policy's.
//!
//! ```text
//! cargo run --release --example fqi_pendulum [-- key=value ...]
//! ```
//! Keys (defaults in brackets): points [20000], iterations [60], epochs [4],
//! batch [256], lr [1e-3], gamma [0.97], width [128], grid [21], seed [0].

use std::time::Instant;

use policy_param::algo::{
    sample_transitions, AdamFit, AdamFitSettings, FittedQIteration, FqiParams, UniformBox,
};
use policy_param::env::pendulum::Pendulum;
use policy_param::env::Env;
use policy_param::eval::{evaluate, evaluate_with, EvalSettings};
use policy_param::maximize::GridMaximizer;
use policy_param::nn::{AdamConfig, Mlp, MlpConfig};
use policy_param::qfunction::MlpQ;
use policy_param::rng::RunSeed;
use policy_param::{Error, Result};
use rand::Rng as _;

struct Settings {
    points: usize,
    iterations: usize,
    epochs: usize,
    batch: usize,
    lr: f64,
    gamma: f64,
    width: usize,
    grid: usize,
    seed: u64,
}

fn parse() -> Result<Settings> {
    let mut s = Settings {
        points: 20_000,
        iterations: 60,
        epochs: 4,
        batch: 256,
        lr: 1e-3,
        gamma: 0.97,
        width: 128,
        grid: 21,
        seed: 0,
    };
    for arg in std::env::args().skip(1) {
        let (key, value) = arg
            .split_once('=')
            .ok_or_else(|| Error::invalid("argument", format!("{arg:?} is not key=value")))?;
        let bad = || Error::invalid(key, format!("cannot parse {value:?}"));
        match key {
            "points" => s.points = value.parse().map_err(|_| bad())?,
            "iterations" => s.iterations = value.parse().map_err(|_| bad())?,
            "epochs" => s.epochs = value.parse().map_err(|_| bad())?,
            "batch" => s.batch = value.parse().map_err(|_| bad())?,
            "lr" => s.lr = value.parse().map_err(|_| bad())?,
            "gamma" => s.gamma = value.parse().map_err(|_| bad())?,
            "width" => s.width = value.parse().map_err(|_| bad())?,
            "grid" => s.grid = value.parse().map_err(|_| bad())?,
            "seed" => s.seed = value.parse().map_err(|_| bad())?,
            _ => return Err(Error::invalid(key, "unknown setting")),
        }
    }
    Ok(s)
}

fn main() -> Result<()> {
    let s = parse()?;
    let seed = RunSeed(s.seed);
    let mut env = Pendulum::new();
    let states = UniformBox {
        low: vec![-std::f64::consts::PI, -8.0],
        high: vec![std::f64::consts::PI, 8.0],
    };
    let data = sample_transitions(&mut env, &states, None, s.points, seed.child("data", 0))?;
    let network = Mlp::new(
        &MlpConfig::new(&[4, s.width, s.width, 1]),
        &mut seed.stream("q-init"),
    )?;
    let mut fqi = FittedQIteration::new(
        &FqiParams {
            gamma: s.gamma,
            max_iterations: s.iterations,
            tolerance: 1e-6,
            delta_actions_per_state: 2,
            seed,
        },
        MlpQ::new(network, 3)?,
        GridMaximizer::new(env.action_space().clone(), s.grid)?,
        AdamFit::new(AdamFitSettings {
            epochs: s.epochs,
            batch_size: s.batch,
            adam: AdamConfig::with_lr(s.lr),
            average_last_epochs: 0,
        })?,
        data,
    )?;

    println!(
        "FQI on Pendulum-v1: {} base points, γ = {}, q [4, {w}, {w}, 1], grid of {} torques, \
         {} epochs of batch {} at lr {}, {} rayon threads",
        s.points,
        s.gamma,
        s.grid,
        s.epochs,
        s.batch,
        s.lr,
        rayon::current_num_threads(),
        w = s.width
    );
    println!("iter         δ   fit loss  maximize  q evals  targets(s)  fit(s)  δ(s)  total(s)");
    let start = Instant::now();
    let summary = fqi.run(|r| {
        println!(
            "{:4} {:9.3e} {:10.4} {:9} {:8} {:11.3} {:7.3} {:5.3} {:9.3}",
            r.iteration,
            r.delta,
            r.fit_loss,
            r.maximize_calls,
            r.q_evaluations,
            r.target_time.as_secs_f64(),
            r.fit_time.as_secs_f64(),
            r.delta_time.as_secs_f64(),
            r.wall_time.as_secs_f64()
        )
    })?;
    println!(
        "{} iterations in {:.1} s, converged: {}",
        summary.iterations,
        start.elapsed().as_secs_f64(),
        summary.converged
    );

    let settings = EvalSettings {
        episodes: 20,
        seed: RunSeed(1_000 + s.seed),
        gamma: 1.0,
        max_steps: 200,
    };
    let make_env = || Ok(Box::new(Pendulum::new()) as Box<dyn Env>);
    let policy = fqi.greedy_policy();
    let greedy = evaluate_with(
        make_env,
        || policy.workspace(),
        |ws, obs, rng, action| policy.greedy_action(ws, obs, rng, action),
        &settings,
    )?;
    let random = evaluate(
        make_env,
        |_, rng, action| {
            action[0] = rng.gen_range(-2.0..2.0);
            Ok(())
        },
        &settings,
    )?;
    println!(
        "mean return over 20 episodes: greedy {:.1} ± {:.1}, random {:.1} ± {:.1}",
        greedy.mean_return(),
        greedy.std_return(),
        random.mean_return(),
        random.std_return()
    );
    Ok(())
}
