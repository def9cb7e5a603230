//! One JSON shard per finished cell, under `results/<grid>/cells/`, written to a temporary
//! file in the same directory and renamed into place, so that a shard is either absent or
//! complete, whenever the run is interrupted.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::config::{Cell, Grid};
use crate::error::{Error, Result};

/// The shard format's version; a shard of another version is recomputed.
pub const FORMAT: u32 = 1;

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

/// How the cell ended.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Status {
    Ok,
    /// NaN, an exploding loss: the metrics recorded before it are kept.
    Diverged {
        reason: String,
    },
}

impl Status {
    pub fn name(&self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Diverged { .. } => "diverged",
        }
    }
}

/// Everything one cell produced, and how to recompute it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Shard {
    pub format: u32,
    pub grid: String,
    pub experiment: String,
    pub algorithm: String,
    pub environment: String,
    /// The cell's index when it ran (indices move when the grid file is edited; the
    /// config hash does not).
    pub index: usize,
    /// The swept keys' values.
    pub sweep: serde_json::Map<String, serde_json::Value>,
    pub setting: String,
    /// The adapter's typed config with every default filled in.
    pub config: serde_json::Value,
    pub seed: u64,
    pub config_hash: String,
    pub setting_hash: String,
    /// `git rev-parse HEAD` of the checkout that ran it, `-dirty` when tracked files
    /// outside `results/` had changes; "unknown" without git.
    pub git_commit: String,
    pub wall_seconds: f64,
    /// Size of the rayon pool the cell ran in.
    pub threads: usize,
    /// Seconds since the Unix epoch when the cell finished.
    pub finished_at: u64,
    #[serde(flatten)]
    pub status: Status,
    pub metrics: Vec<MetricRow>,
}

impl Shard {
    /// The cell's label as [`Cell::label`] writes it.
    pub fn label(&self) -> String {
        format!(
            "{} seed={}",
            crate::config::setting_name(&self.experiment, &self.setting),
            self.seed
        )
    }
}

/// `results/<grid>/cells`.
pub fn cells_dir(out: &Path, grid: &str) -> PathBuf {
    out.join(grid).join("cells")
}

pub fn shard_path(out: &Path, grid: &Grid, cell: &Cell) -> PathBuf {
    cells_dir(out, &grid.name).join(cell.shard_file_name())
}

/// Write `shard` to `path` atomically: a temporary file beside it, then a rename.
pub fn write(path: &Path, shard: &Shard) -> Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| Error::malformed(path, "no parent directory"))?;
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let text = serde_json::to_string_pretty(shard)
        .map_err(|e| Error::malformed(path, format!("cannot serialize the shard: {e}")))?;
    let file_name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("shard.json");
    let tmp = dir.join(format!(".{file_name}.{}.tmp", std::process::id()));
    std::fs::write(&tmp, text).map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))?;
    Ok(())
}

pub fn read(path: &Path) -> Result<Shard> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let shard: Shard = serde_json::from_str(&text)
        .map_err(|e| Error::malformed(path, format!("not a shard: {e}")))?;
    if shard.format != FORMAT {
        return Err(Error::malformed(
            path,
            format!("shard format {} (this build reads {FORMAT})", shard.format),
        ));
    }
    Ok(shard)
}

/// The finished shard of `cell`, if there is one with its config hash.
pub fn finished(out: &Path, grid: &Grid, cell: &Cell) -> Option<Shard> {
    let path = shard_path(out, grid, cell);
    match read(&path) {
        Ok(s) if s.config_hash == cell.config_hash => Some(s),
        _ => None,
    }
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
