//! A result set, however it is stored: the shards a run writes
//! (`DIR/<grid>/cells/*.json`) or the per-seed tidy table committed beside the summary
//! (`DIR/<grid>.parquet`, or `DIR/<grid>.csv`). `compare` and `compare --stats` read
//! either, so a fresh clone (tables only) can be compared with a run (shards and tables).
//!
//! Per grid, the shards are read when there are any (they are what a run produced);
//! otherwise the Parquet table, otherwise the CSV one. A file in `cells/` that is not a
//! readable shard is listed as unreadable, never fatal: one stray file does not hide the
//! others.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::path::{Path, PathBuf};

use polars::prelude::*;
use polars_io::prelude::{CsvReadOptions, ParquetReader};
use polars_io::SerReader;

use crate::error::{Error, Result};
use crate::experiment::MetricRow;
use crate::shard::{self, Shard, Status};

/// The metric under which a cell's wall time is tabulated.
pub const CELL_WALL_SECONDS: &str = "cell_wall_seconds";

/// One cell's results.
#[derive(Clone, Debug, PartialEq)]
pub struct CellResult {
    pub grid: String,
    pub experiment: String,
    pub algorithm: String,
    pub environment: String,
    /// `k=v,...` over the swept keys (empty when nothing is swept).
    pub setting: String,
    /// The swept keys' values.
    pub sweep: serde_json::Map<String, serde_json::Value>,
    pub seed: u64,
    /// The cell's index in its grid file when it ran.
    pub index: usize,
    /// The first 16 hex digits of the config hash: what the tables keep, and plenty to
    /// tell a grid's cells apart.
    pub config_hash: String,
    /// `ok` or `diverged`.
    pub status: String,
    /// Why it diverged; empty when ok.
    pub reason: String,
    /// Every metric row in the order recorded, the wall time last
    /// ([`CELL_WALL_SECONDS`], step 0).
    pub metrics: Vec<MetricRow>,
}

impl CellResult {
    pub fn from_shard(s: &Shard) -> CellResult {
        let (status, reason) = match &s.status {
            Status::Ok => ("ok", String::new()),
            Status::Diverged { reason } => ("diverged", reason.clone()),
        };
        let mut metrics = s.metrics.clone();
        metrics.push(MetricRow {
            step: 0,
            metric: CELL_WALL_SECONDS.into(),
            value: s.wall_seconds,
        });
        CellResult {
            grid: s.grid.clone(),
            experiment: s.experiment.clone(),
            algorithm: s.algorithm.clone(),
            environment: s.environment.clone(),
            setting: s.setting.clone(),
            sweep: s.sweep.clone(),
            seed: s.seed,
            index: s.index,
            config_hash: short_hash(&s.config_hash).to_string(),
            status: status.into(),
            reason,
            metrics,
        }
    }

    pub fn is_ok(&self) -> bool {
        self.status == "ok"
    }

    /// `experiment[setting]`, or the experiment alone: the cell's setting, seeds aside.
    pub fn setting_label(&self) -> String {
        crate::config::setting_name(&self.experiment, &self.setting)
    }

    /// `experiment[setting] seed=S`, as [`crate::config::Cell::label`] writes it.
    pub fn label(&self) -> String {
        format!("{} seed={}", self.setting_label(), self.seed)
    }

    /// The value of `metric` at `step`, if recorded.
    pub fn value(&self, metric: &str, step: u64) -> Option<f64> {
        self.metrics
            .iter()
            .find(|m| m.step == step && m.metric == metric)
            .map(|m| m.value)
    }

    /// The last step at which `metric` was recorded.
    pub fn last_step(&self, metric: &str) -> Option<u64> {
        self.metrics
            .iter()
            .filter(|m| m.metric == metric)
            .map(|m| m.step)
            .max()
    }
}

/// Cells grouped by `label` (a setting, a swept value), groups in order of their first
/// cell.
pub fn group_by<'a>(
    cells: impl IntoIterator<Item = &'a CellResult>,
    label: impl Fn(&CellResult) -> String,
) -> Vec<(String, Vec<&'a CellResult>)> {
    let mut groups: Vec<(String, Vec<&CellResult>)> = Vec::new();
    for c in cells {
        let l = label(c);
        match groups.iter_mut().find(|(k, _)| *k == l) {
            Some((_, g)) => g.push(c),
            None => groups.push((l, vec![c])),
        }
    }
    groups
}

/// The first 16 hex digits of a config hash.
pub fn short_hash(hash: &str) -> &str {
    &hash[..hash.len().min(16)]
}

/// Where a grid's results were read from.
#[derive(Clone, Debug, PartialEq)]
pub enum Source {
    Shards(PathBuf),
    Table(PathBuf),
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Shards(dir) => write!(f, "shards in {}", dir.display()),
            Source::Table(path) => write!(f, "{}", path.display()),
        }
    }
}

/// One grid's results in a directory.
#[derive(Clone, Debug)]
pub struct GridResults {
    pub grid: String,
    pub source: Source,
    /// In cell-index order.
    pub cells: Vec<CellResult>,
    /// Files in `cells/` that are not readable shards, with the reason.
    pub unreadable: Unreadable,
}

/// Files that could not be read as shards, each with the reason.
pub type Unreadable = Vec<(PathBuf, String)>;

/// The shards in `cells_dir`, sorted by file name, and every other file there (a
/// truncated or foreign `.json`, a file of another kind, a directory) with the reason it
/// is not a shard. Hidden files are the runners' own (temporaries, claims) and are not
/// listed. A missing directory holds nothing.
pub fn read_shards(cells_dir: &Path) -> Result<(Vec<Shard>, Unreadable)> {
    let mut paths: Vec<PathBuf> = match std::fs::read_dir(cells_dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                !p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with('.'))
            })
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(Error::io(cells_dir, e)),
    };
    paths.sort();
    let mut shards = Vec::new();
    let mut unreadable = Vec::new();
    for path in paths {
        if path.extension().is_none_or(|x| x != "json") || path.is_dir() {
            let what = if path.is_dir() {
                "a directory"
            } else {
                "a file"
            };
            unreadable.push((
                path,
                format!("{what} that is not a shard (shards are <experiment>-<hash>.json)"),
            ));
            continue;
        }
        match shard::read(&path) {
            Ok(s) => shards.push(s),
            // The reason alone: the path is listed beside it.
            Err(Error::Malformed { reason, .. }) => unreadable.push((path, reason)),
            Err(Error::Io { source, .. }) => unreadable.push((path, source.to_string())),
            Err(e) => unreadable.push((path, e.to_string())),
        }
    }
    Ok((shards, unreadable))
}

/// Every grid's results in `dir`, by grid name.
pub fn read_dir(dir: &Path) -> Result<BTreeMap<String, GridResults>> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    let mut names: BTreeSet<String> = BTreeSet::new();
    for path in entries.filter_map(|e| e.ok().map(|e| e.path())) {
        let Some(file) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if path.join("cells").is_dir() {
            names.insert(file.to_string());
        } else if let Some(stem) = file.strip_suffix(".parquet") {
            names.insert(stem.to_string());
        } else if let Some(stem) = file.strip_suffix(".csv") {
            if !stem.ends_with("_summary") {
                names.insert(stem.to_string());
            }
        }
    }
    let mut grids = BTreeMap::new();
    for name in names {
        if let Some(results) = read_grid(dir, &name)? {
            grids.insert(name, results);
        }
    }
    Ok(grids)
}

/// Grid `name`'s results in `dir`: its shards if it has any, else its tidy table.
pub fn read_grid(dir: &Path, name: &str) -> Result<Option<GridResults>> {
    let cells_dir = shard::cells_dir(dir, name);
    let (shards, unreadable) = read_shards(&cells_dir)?;
    if !shards.is_empty() {
        let mut cells: Vec<CellResult> = shards.iter().map(CellResult::from_shard).collect();
        cells.sort_by_key(|c| c.index);
        return Ok(Some(GridResults {
            grid: name.to_string(),
            source: Source::Shards(cells_dir),
            cells,
            unreadable,
        }));
    }
    for extension in ["parquet", "csv"] {
        let path = dir.join(format!("{name}.{extension}"));
        if path.is_file() {
            // A table that cannot be read (a foreign notes.csv, a truncated file) is
            // named as unreadable; the other grids of the directory are still read.
            let read = read_tidy(&path).and_then(|tidy| {
                cells_from_tidy(name, &tidy).map_err(|r| Error::malformed(&path, r))
            });
            let mut unreadable = unreadable;
            let cells = match read {
                Ok(cells) => cells,
                Err(Error::Malformed { reason, .. }) => {
                    unreadable.push((path.clone(), reason));
                    Vec::new()
                }
                Err(e) => {
                    unreadable.push((path.clone(), crate::error::one_line(&e.to_string())));
                    Vec::new()
                }
            };
            return Ok(Some(GridResults {
                grid: name.to_string(),
                source: Source::Table(path),
                cells,
                unreadable,
            }));
        }
    }
    if unreadable.is_empty() {
        Ok(None)
    } else {
        Ok(Some(GridResults {
            grid: name.to_string(),
            source: Source::Shards(cells_dir),
            cells: Vec::new(),
            unreadable,
        }))
    }
}

/// Columns every tidy or summary table has; a swept key of the same name gets the
/// column `param_<key>`.
pub const FIXED: &[&str] = &[
    "experiment",
    "algorithm",
    "environment",
    "setting",
    "seed",
    "cell",
    "config_hash",
    "status",
    "reason",
    "metric",
    "step",
    "value",
    "n",
    "diverged",
    "mean",
    "std",
    "ci95",
    "ci95_low",
    "ci95_high",
    "min",
    "max",
];

/// Per row, the swept keys' values (a key absent where the row's experiment does not
/// sweep it).
fn sweep_values(
    frame: &DataFrame,
    sweep_columns: &[(String, String)],
) -> Result<Vec<serde_json::Map<String, serde_json::Value>>> {
    let mut rows = vec![serde_json::Map::new(); frame.height()];
    for (key, column) in sweep_columns {
        let series = frame
            .column(column.as_str())?
            .as_materialized_series()
            .clone();
        if series.dtype().is_primitive_numeric() {
            let values = series.cast(&DataType::Float64)?;
            for (row, v) in rows.iter_mut().zip(values.f64()?.iter()) {
                if let Some(v) = v {
                    row.insert(key.clone(), serde_json::json!(v));
                }
            }
        } else {
            let values = series.cast(&DataType::String)?;
            for (row, v) in rows.iter_mut().zip(values.str()?.iter()) {
                if let Some(v) = v {
                    row.insert(key.clone(), serde_json::Value::String(v.to_string()));
                }
            }
        }
    }
    Ok(rows)
}

pub(crate) fn read_csv(path: &Path) -> Result<DataFrame> {
    CsvReadOptions::default()
        .with_has_header(true)
        .with_infer_schema_length(None)
        .try_into_reader_with_file_path(Some(path.to_path_buf()))
        .and_then(|r| r.finish())
        .map_err(|e| Error::malformed(path, format!("not a table: {e}")))
}

/// A tidy table, from Parquet or CSV (by extension).
pub fn read_tidy(path: &Path) -> Result<DataFrame> {
    if path.extension().is_some_and(|x| x == "parquet") {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        ParquetReader::new(file)
            .finish()
            .map_err(|e| Error::malformed(path, format!("not a Parquet table: {e}")))
    } else {
        read_csv(path)
    }
}

pub(crate) fn text_column(
    frame: &DataFrame,
    name: &str,
) -> std::result::Result<Vec<String>, String> {
    let column = frame
        .column(name)
        .map_err(|_| format!("no column {name:?}"))?;
    let cast = column
        .cast(&DataType::String)
        .map_err(|e| format!("column {name:?}: {e}"))?;
    let values = cast.str().map_err(|e| format!("column {name:?}: {e}"))?;
    Ok(values
        .iter()
        .map(|v| v.unwrap_or_default().to_string())
        .collect())
}

pub(crate) fn float_column(frame: &DataFrame, name: &str) -> PolarsResult<Vec<f64>> {
    let values = frame.column(name)?.cast(&DataType::Float64)?;
    Ok(values
        .f64()?
        .iter()
        .map(|v| v.unwrap_or(f64::NAN))
        .collect())
}

pub(crate) fn u64_column(frame: &DataFrame, name: &str) -> PolarsResult<Vec<u64>> {
    let values = frame.column(name)?.cast(&DataType::UInt64)?;
    let values = values.u64()?;
    if values.null_count() > 0 {
        return Err(PolarsError::ComputeError(
            format!("column {name:?} has empty or negative values").into(),
        ));
    }
    Ok(values.iter().map(|v| v.unwrap_or(0)).collect())
}

/// The cells of grid `grid` in a tidy table, in cell-index order.
pub fn cells_from_tidy(
    grid: &str,
    tidy: &DataFrame,
) -> std::result::Result<Vec<CellResult>, String> {
    let text = |name: &str| text_column(tidy, name);
    let numbers = |name: &str| u64_column(tidy, name).map_err(|e| e.to_string());
    let (experiment, algorithm, environment, setting) = (
        text("experiment")?,
        text("algorithm")?,
        text("environment")?,
        text("setting")?,
    );
    let (config_hash, status, metric) = (text("config_hash")?, text("status")?, text("metric")?);
    // Tables written before the reason column: no reason.
    let reason = text("reason").unwrap_or_else(|_| vec![String::new(); tidy.height()]);
    let (seed, index, step) = (numbers("seed")?, numbers("cell")?, numbers("step")?);
    let value = float_column(tidy, "value").map_err(|e| e.to_string())?;
    let sweep_columns: Vec<(String, String)> = tidy
        .get_column_names()
        .iter()
        .map(|c| c.to_string())
        .filter(|c| !FIXED.contains(&c.as_str()))
        .map(|c| (c.strip_prefix("param_").unwrap_or(&c).to_string(), c))
        .collect();
    let sweeps = sweep_values(tidy, &sweep_columns).map_err(|e| e.to_string())?;
    let mut cells: Vec<CellResult> = Vec::new();
    let mut position: HashMap<&str, usize> = HashMap::new();
    for i in 0..tidy.height() {
        let at = *position.entry(config_hash[i].as_str()).or_insert_with(|| {
            cells.push(CellResult {
                grid: grid.to_string(),
                experiment: experiment[i].clone(),
                algorithm: algorithm[i].clone(),
                environment: environment[i].clone(),
                setting: setting[i].clone(),
                sweep: sweeps[i].clone(),
                seed: seed[i],
                index: index[i] as usize,
                config_hash: config_hash[i].clone(),
                status: status[i].clone(),
                reason: reason[i].clone(),
                metrics: Vec::new(),
            });
            cells.len() - 1
        });
        cells[at].metrics.push(MetricRow {
            step: step[i],
            metric: metric[i].clone(),
            value: value[i],
        });
    }
    cells.sort_by_key(|c| c.index);
    Ok(cells)
}
