//! Time per exact maximize of a ReLU-network q over integer allocations (3 sites, 2 001
//! feasible actions) by each good_lp backend, on the same random networks and states,
//! checked against enumeration.
//!
//! ```text
//! cargo run --release --example relu_milp_backends                    # microlp only
//! cargo run --release --features highs --example relu_milp_backends   # and HiGHS (needs cmake, libclang)
//! ```
//!
//! Optional arguments: draws per network size (default 30), then network sizes as
//! `16`, `8x8`, `12x12x12`... (default `16 8x8 16x16 12x12x12`).

use std::time::Instant;

use policy_param::env::allocation::Allocation;
use policy_param::env::ActionSpace;
use policy_param::maximize::{
    EnumerationMaximizer, Maximizer, MilpBackend, QFunction, ReluMilpMaximizer,
};
use policy_param::nn::{Activation, MlpConfig};
use policy_param::qfunction::MlpQ;
use policy_param::rng::RunSeed;
use rand::Rng as _;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let draws: u64 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(30);
    let mut hidden: Vec<Vec<usize>> = args
        .map(|a| a.split('x').map(str::parse).collect())
        .collect::<Result<_, _>>()?;
    if hidden.is_empty() {
        hidden = vec![vec![16], vec![8, 8], vec![16, 16], vec![12, 12, 12]];
    }
    let space = Allocation::small()?.model().integer_space().clone();
    let (sites, dim) = (3, space.lower.len());
    let exhaustive = EnumerationMaximizer::new(space.clone(), u64::MAX)?;
    #[allow(unused_mut)] // HiGHS joins only with the `highs` feature
    let mut backends = vec![("microlp", MilpBackend::Microlp)];
    #[cfg(feature = "highs")]
    backends.push(("HiGHS", MilpBackend::Highs));
    println!("hidden layers | backend | ms per maximize | mean binaries | equal to enumeration");
    for layers in &hidden {
        let mut sizes = vec![sites + dim];
        sizes.extend(layers);
        sizes.push(1);
        let config = MlpConfig::new(&sizes).hidden(Activation::Relu);
        for &(name, backend) in &backends {
            let milp =
                ReluMilpMaximizer::new(ActionSpace::Integer(space.clone()))?.with_backend(backend);
            let (mut ws, mut brute_ws) = (milp.workspace(), exhaustive.workspace());
            let (mut action, mut best_action) = (vec![0.0; dim], vec![0.0; dim]);
            let (mut seconds, mut binaries, mut equal) = (0.0, 0, 0);
            for draw in 0..draws {
                let q = MlpQ::from_config(&config, sites, &mut RunSeed(draw).stream("network"))?;
                let mut q_ws = q.workspace();
                let mut rng = RunSeed(draw).stream("state");
                let state: Vec<f64> = (0..sites).map(|_| rng.gen_range(0.0..8.0)).collect();
                let start = Instant::now();
                let found = milp.maximize(&q, &mut q_ws, &mut ws, &state, &mut action, &mut rng)?;
                seconds += start.elapsed().as_secs_f64();
                binaries += ws.binaries;
                let best = exhaustive.maximize(
                    &q,
                    &mut q_ws,
                    &mut brute_ws,
                    &state,
                    &mut best_action,
                    &mut rng,
                )?;
                equal += u64::from((found.value - best.value).abs() <= 1e-6);
            }
            println!(
                "{layers:?} | {name} | {:.2} | {:.1} | {equal}/{draws}",
                1e3 * seconds / draws as f64,
                binaries as f64 / draws as f64
            );
        }
    }
    Ok(())
}
