//! Our side of `scripts/bench_maximize.py`: the chapter's `maximize` at every state of a
//! batch, on the network, states and starting points the script gives (JSON on stdin), by
//! [`BatchedLbfgs`] with scipy's L-BFGS-B tolerances, on the calling thread.
//!
//! Each case runs twice: all searches in lockstep (`batch` searches per batched call of q)
//! and one state at a time (a chunk of one state's starts: the same algorithm without the
//! batching). Prints one line, `race_json {...}`: per case and mode the median seconds of
//! `repeats` timed runs after one untimed run, q evaluations, batched calls, and the values
//! found (the script compares them with scipy's).

use std::io::Read;
use std::time::Instant;

use policy_param::env::ActionSpace;
use policy_param::maximize::{
    BatchStats, BatchedLbfgs, BatchedLbfgsSettings, BatchedWorkspace, QFunction,
};
use policy_param::nn::{Activation, Mlp};
use policy_param::qfunction::MlpQ;
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Race {
    repeats: usize,
    /// Searches per batched call in the lockstep mode.
    batch: usize,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    state_dim: usize,
    /// Layer widths; ReLU hidden layers, linear output.
    sizes: Vec<usize>,
    /// Our layout: per layer, weights `in × out` row-major, then the biases.
    params: Vec<f32>,
    low: Vec<f64>,
    high: Vec<f64>,
    starts_per_state: usize,
    states: Vec<f64>,
    starts: Vec<f64>,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut input = String::new();
    std::io::stdin().read_to_string(&mut input)?;
    let race: Race = serde_json::from_str(&input)?;
    let mut out = Vec::new();
    for case in &race.cases {
        let network = Mlp::from_params(
            &case.sizes,
            Activation::Relu,
            Activation::Identity,
            case.params.clone(),
        )?;
        let q = MlpQ::new(network, case.state_dim)?;
        let count = case.states.len() / case.state_dim;
        let dim = case.low.len();
        let space = ActionSpace::Box {
            low: case.low.clone(),
            high: case.high.clone(),
        };
        for (mode, batch) in [
            ("lockstep", race.batch),
            ("one_state_at_a_time", case.starts_per_state),
        ] {
            let settings = BatchedLbfgsSettings {
                starts: case.starts_per_state,
                batch,
                ..BatchedLbfgsSettings::default()
            };
            let solver = BatchedLbfgs::new(space.clone(), settings)?;
            let (mut q_ws, mut ws) = (q.workspace(), BatchedWorkspace::default());
            let (mut actions, mut values) = (vec![0.0; count * dim], vec![0.0; count]);
            let mut seconds = Vec::new();
            let mut stats = BatchStats::default();
            for run in 0..=race.repeats {
                let start = Instant::now();
                stats = solver.maximize_batch(
                    &q,
                    &mut q_ws,
                    &mut ws,
                    &case.states,
                    &case.starts,
                    &mut actions,
                    &mut values,
                )?;
                if run > 0 {
                    seconds.push(start.elapsed().as_secs_f64());
                }
            }
            seconds.sort_by(f64::total_cmp);
            out.push(serde_json::json!({
                "case": case.name,
                "mode": mode,
                "states": count,
                "seconds": seconds[seconds.len() / 2],
                "maximizations_per_second": count as f64 / seconds[seconds.len() / 2],
                "evaluations_per_maximization": stats.evaluations as f64 / count as f64,
                "batched_calls": stats.rounds,
                "values": values,
            }));
        }
    }
    println!("race_json {}", serde_json::json!({ "results": out }));
    Ok(())
}
