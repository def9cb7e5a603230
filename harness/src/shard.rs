//! One JSON shard per finished cell, under `results/<grid>/cells/`, written to a temporary
//! file in the same directory and renamed into place, so that a shard is either absent or
//! complete, whenever the run is interrupted. A file there that is not a readable shard
//! of its cell is reported by name and, by `grid run`, moved aside and recomputed.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::{Cell, Grid};
use crate::error::{Error, Result};
use crate::experiment::MetricRow;
use crate::files;

/// The shard format's version; a shard of another version is recomputed.
pub const FORMAT: u32 = 1;

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

/// Write `shard` to `path` atomically ([`files::write_atomically`]).
pub fn write(path: &Path, shard: &Shard) -> Result<()> {
    let text = serde_json::to_string_pretty(shard)
        .map_err(|e| Error::malformed(path, format!("cannot serialize the shard: {e}")))?;
    files::write_text(path, &text)
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

/// What is at a cell's shard path.
#[derive(Debug)]
pub enum Found {
    /// A shard of this cell's config hash.
    Finished(Box<Shard>),
    Absent,
    /// A file that is not this cell's shard (truncated, foreign, of another format or
    /// another config): why. `grid run` moves it aside ([`move_aside`]) and recomputes.
    Unusable(String),
}

/// What is at `cell`'s shard path in `out`.
pub fn look(out: &Path, grid: &Grid, cell: &Cell) -> Found {
    let path = shard_path(out, grid, cell);
    match read(&path) {
        Ok(s) if s.config_hash == cell.config_hash => Found::Finished(Box::new(s)),
        Ok(s) => Found::Unusable(format!(
            "{}: holds the shard of another config ({})",
            path.display(),
            &s.config_hash[..s.config_hash.len().min(16)]
        )),
        Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            Found::Absent
        }
        Err(e) => Found::Unusable(e.to_string()),
    }
}

/// The finished shard of `cell`, if there is one with its config hash.
pub fn finished(out: &Path, grid: &Grid, cell: &Cell) -> Option<Shard> {
    match look(out, grid, cell) {
        Found::Finished(s) => Some(*s),
        _ => None,
    }
}

/// Move an unusable file at `cell`'s shard path to `<grid>/corrupt/<name>.<unix time>`,
/// out of `cells/`, so that it is kept for a look and no longer read. Returns where.
pub fn move_aside(out: &Path, grid: &Grid, cell: &Cell) -> Result<PathBuf> {
    let from = shard_path(out, grid, cell);
    let dir = out.join(&grid.name).join("corrupt");
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    let to = dir.join(format!("{}.{}", cell.shard_file_name(), crate::host::now()));
    std::fs::rename(&from, &to).map_err(|e| Error::io(&from, e))?;
    Ok(to)
}
