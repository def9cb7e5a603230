//! The registry: which adapter runs a grid file's `algorithm` on its `environment`.
//!
//! Two tables feed it: [`BATCH`], the FQI family and the ground-truth experiments (one
//! [`Experiment`](crate::experiment::Experiment) each), and [`ONLINE`], the online agents,
//! each of which runs on every environment it can act in. Adding an algorithm is one line
//! in one of them.

use crate::adapters;
use crate::error::Invalid;
use crate::experiment::{Adapter, Registered};
pub use crate::online::ONLINE;

/// The adapters that are not online agents. To add one, see [`crate::experiment`].
pub static BATCH: &[&dyn Adapter] = &[
    &Registered::<adapters::lqr_gain_scale::LqrGainScale>::NEW,
    &Registered::<adapters::fqi_lqr::FqiLqr>::NEW,
    &Registered::<adapters::fqi_mlp::FqiMlp>::NEW,
    &Registered::<adapters::allocation_milp::AllocationMilp>::NEW,
    &Registered::<adapters::amortized_fqi_lqr::AmortizedFqiLqr>::NEW,
    &Registered::<adapters::amortized_fqi_mlp::AmortizedFqiMlp>::NEW,
    &Registered::<adapters::nfqca::NfqcaExperiment>::NEW,
    &Registered::<adapters::smooth_fqi_lqr::SmoothFqiLqr>::NEW,
    &Registered::<adapters::relu_milp::ReluMilp>::NEW,
    &Registered::<adapters::fqi_allocation::FqiAllocation>::NEW,
];

/// Every adapter: [`BATCH`], then [`ONLINE`].
pub fn adapters() -> impl Iterator<Item = &'static dyn Adapter> {
    BATCH
        .iter()
        .copied()
        .chain(ONLINE.iter().map(|entry| *entry as &'static dyn Adapter))
}

/// The adapter for `algorithm` on `environment`, or an error listing what is known.
pub fn lookup(algorithm: &str, environment: &str) -> Result<&'static dyn Adapter, Invalid> {
    if let Some(a) =
        adapters().find(|a| a.algorithm() == algorithm && a.environments().contains(&environment))
    {
        return Ok(a);
    }
    let mut algorithms: Vec<&str> = adapters().map(|a| a.algorithm()).collect();
    algorithms.sort_unstable();
    algorithms.dedup();
    if !algorithms.contains(&algorithm) {
        return Err(Invalid::new(
            "algorithm",
            format!(
                "unknown algorithm {algorithm:?} (known: {})",
                algorithms.join(", ")
            ),
        ));
    }
    let environments: Vec<&str> = adapters()
        .filter(|a| a.algorithm() == algorithm)
        .flat_map(|a| a.environments().iter().copied())
        .collect();
    Err(Invalid::new(
        "environment",
        format!(
            "no adapter runs {algorithm:?} on environment {environment:?} (known for {algorithm}: {})",
            environments.join(", ")
        ),
    ))
}
