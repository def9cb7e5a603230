//! What a grid cell runs: the [`Experiment`] trait an adapter implements, its type-erased
//! form [`Adapter`] that the [registry](crate::registry) holds, and the [`MetricRow`]s a
//! cell records.
//!
//! An adapter takes a typed, validated config (its own struct, deserialized from the
//! cell's TOML table with unknown keys refused), a seed and a [`CellContext`], and records
//! metric rows `(step, metric, value)` through the context.
//!
//! # Adding an adapter
//!
//! 1. Write `src/adapters/my_adapter.rs`: a config struct deriving `Serialize`,
//!    `Deserialize` and `Default`, with `#[serde(default, deny_unknown_fields)]` and
//!    documented defaults; a unit struct implementing [`Experiment`] (`NAME`,
//!    `ALGORITHM`, `ENVIRONMENTS`, `check` naming the bad key, `run`). Declare the
//!    module in `src/adapters/mod.rs`.
//! 2. Add one line to [`BATCH`](crate::registry::BATCH): `&Registered::<adapters::my_adapter::MyAdapter>::NEW,`.
//!
//! Conventions for metrics: name timing metrics so that `compare` recognizes them (they
//! end in `_seconds` or `_per_second`, see [`is_timing_metric`]) — they are not
//! reproducible and are skipped by default; everything else must be a deterministic
//! function of the config and the seed, whatever the number of threads. `step` is the
//! iteration or evaluation point; a metric measured once uses step 0.
//! Return [`CellError::Diverged`] (or the library's `Error::Numerical`, which converts to
//! it) when the run blows up; the runner also marks a cell diverged if it recorded a
//! non-finite value.

use std::marker::PhantomData;

use indicatif::ProgressBar;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{CellError, Invalid};

/// One algorithm × environment kind, as grid cells run it.
pub trait Experiment: Send + Sync + 'static {
    /// The registry name of the adapter (shown by `grid list`).
    const NAME: &'static str;
    /// The grid file's `algorithm = "..."`.
    const ALGORITHM: &'static str;
    /// The grid file's `environment = "..."` values it runs on.
    const ENVIRONMENTS: &'static [&'static str];
    /// One line for `grid list` and error messages.
    const DESCRIPTION: &'static str;

    /// The cell's hyperparameters. `#[serde(default, deny_unknown_fields)]`: every key
    /// has a documented default and an unknown key is an error.
    type Config: Serialize + DeserializeOwned + Default + Send + Sync;

    /// Check the values (ranges, consistency), naming the first bad key.
    fn check(config: &Self::Config) -> Result<(), Invalid>;

    /// Run one cell on `environment` (one of [`Self::ENVIRONMENTS`]): record metrics into
    /// `ctx`.
    fn run(
        config: &Self::Config,
        environment: &str,
        seed: u64,
        ctx: &mut CellContext,
    ) -> Result<(), CellError>;
}

/// What a running cell writes to: metric rows, and progress for the progress bars.
pub struct CellContext {
    metrics: Vec<MetricRow>,
    bar: Option<ProgressBar>,
}

impl CellContext {
    pub(crate) fn new(bar: Option<ProgressBar>) -> Self {
        CellContext {
            metrics: Vec::new(),
            bar,
        }
    }

    /// Record `metric = value` at `step`.
    pub fn record(&mut self, step: u64, metric: &str, value: f64) {
        self.metrics.push(MetricRow {
            step,
            metric: metric.to_string(),
            value,
        });
    }

    /// The cell has `total` units of work (iterations, instances); resets the position.
    pub fn set_total(&mut self, total: u64) {
        if let Some(bar) = &self.bar {
            bar.set_length(total);
            bar.set_position(0);
        }
    }

    /// One more unit of work done.
    pub fn advance(&mut self) {
        if let Some(bar) = &self.bar {
            bar.inc(1);
        }
    }

    pub fn metrics(&self) -> &[MetricRow] {
        &self.metrics
    }

    pub(crate) fn into_metrics(self) -> Vec<MetricRow> {
        self.metrics
    }
}

/// Timing metrics are not reproducible: `compare` skips them unless asked.
pub fn is_timing_metric(name: &str) -> bool {
    name.ends_with("_seconds") || name.ends_with("_per_second")
}

/// An [`Experiment`] with its types erased, as the registry holds it. The config travels
/// as canonical JSON: the typed config with every default filled in, serialized.
pub trait Adapter: Send + Sync {
    fn name(&self) -> &'static str;
    fn algorithm(&self) -> &'static str;
    /// The grid file's `environment` values it runs on.
    fn environments(&self) -> &'static [&'static str];
    fn description(&self) -> &'static str;
    /// Every key with its default, as a JSON object (for `policy-param keys`).
    fn defaults(&self) -> serde_json::Value;
    /// Deserialize for `environment` (unknown keys and wrong types are errors with the
    /// key's path), check, and return the canonical JSON of the typed config.
    fn parse(&self, environment: &str, table: toml::Table) -> Result<serde_json::Value, Invalid>;
    /// Run one cell on `environment` from its canonical config.
    fn run(
        &self,
        environment: &str,
        config: &serde_json::Value,
        seed: u64,
        ctx: &mut CellContext,
    ) -> Result<(), CellError>;
}

/// The type-erasing wrapper: `&Registered::<MyAdapter>::NEW`.
pub struct Registered<E>(PhantomData<fn() -> E>);

impl<E> Registered<E> {
    pub const NEW: Self = Registered(PhantomData);
}

impl<E: Experiment> Adapter for Registered<E> {
    fn name(&self) -> &'static str {
        E::NAME
    }
    fn algorithm(&self) -> &'static str {
        E::ALGORITHM
    }
    fn environments(&self) -> &'static [&'static str] {
        E::ENVIRONMENTS
    }
    fn description(&self) -> &'static str {
        E::DESCRIPTION
    }

    fn defaults(&self) -> serde_json::Value {
        serde_json::to_value(E::Config::default()).unwrap_or_default()
    }

    fn parse(&self, _: &str, table: toml::Table) -> Result<serde_json::Value, Invalid> {
        let config: E::Config = serde_path_to_error::deserialize(toml::Value::Table(table))
            .map_err(|e| {
                let key = e.path().to_string();
                Invalid::new(if key == "." { String::new() } else { key }, {
                    e.into_inner().to_string()
                })
            })?;
        E::check(&config)?;
        serde_json::to_value(&config).map_err(|e| Invalid::new("", e.to_string()))
    }

    fn run(
        &self,
        environment: &str,
        config: &serde_json::Value,
        seed: u64,
        ctx: &mut CellContext,
    ) -> Result<(), CellError> {
        let config: E::Config = serde_json::from_value(config.clone()).map_err(|e| {
            CellError::Failed(policy_param::Error::invalid(
                "config",
                format!("canonical config does not read back: {e}"),
            ))
        })?;
        E::run(&config, environment, seed, ctx)
    }
}

/// One metric value: `metric` at `step` (iteration, evaluation point; 0 when measured once).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricRow {
    pub step: u64,
    pub metric: String,
    /// Non-finite values are written as strings ("NaN", "inf", "-inf"): JSON has no
    /// numbers for them.
    #[serde(serialize_with = "write_f64", deserialize_with = "read_f64")]
    pub value: f64,
}

fn write_f64<S: Serializer>(v: &f64, s: S) -> std::result::Result<S::Ok, S::Error> {
    if v.is_finite() {
        s.serialize_f64(*v)
    } else if v.is_nan() {
        s.serialize_str("NaN")
    } else if *v > 0.0 {
        s.serialize_str("inf")
    } else {
        s.serialize_str("-inf")
    }
}

fn read_f64<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<f64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Number {
        F(f64),
        S(String),
    }
    match Number::deserialize(d)? {
        Number::F(v) => Ok(v),
        Number::S(s) => match s.as_str() {
            "NaN" => Ok(f64::NAN),
            "inf" => Ok(f64::INFINITY),
            "-inf" => Ok(f64::NEG_INFINITY),
            other => Err(serde::de::Error::custom(format!(
                "{other:?} is not a number"
            ))),
        },
    }
}
