//! The shards of a grid, gathered into tables with polars:
//!
//! - `results/<grid>.csv` and `results/<grid>.parquet`: tidy, one row per cell × metric ×
//!   step (columns: experiment, algorithm, environment, setting, one column per swept key,
//!   seed, cell, config_hash, status, metric, step, value). Each cell's wall time is there
//!   too, as metric `cell_wall_seconds`.
//! - `results/<grid>_summary.csv`: one row per setting × metric × step over the seeds
//!   whose cell finished ok: n, mean, std (n − 1 denominator), the half-width of the 95%
//!   confidence interval of the mean, `t(0.975, n − 1) · std / √n`, its bounds, min and
//!   max; `diverged` counts the setting's diverged seeds (whose values are left out; only
//!   their `cell_wall_seconds` count).
//!
//! Only shards of the grid's current cells (matched by config hash) are gathered; shards
//! left by an older version of the grid file are ignored and counted as stale.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::path::{Path, PathBuf};

use polars::prelude::*;

use crate::config::{display_value, Grid};
use crate::error::{Error, Result};
use crate::shard::{self, Shard, Status};

/// A grid's shards, in cell order.
pub struct Gathered {
    pub grid: String,
    pub shards: Vec<Shard>,
    /// Indices of cells without a shard.
    pub missing: Vec<usize>,
    /// Shards in the cells directory that belong to no current cell.
    pub stale: usize,
}

/// Read the shards of `grid`'s cells from `out/<grid>/cells/`.
pub fn collect(grid: &Grid, out: &Path) -> Result<Gathered> {
    let all = shard::read_all(&shard::cells_dir(out, &grid.name))?;
    let total = all.len();
    let mut by_hash: HashMap<String, Shard> = all
        .into_iter()
        .map(|s| (s.config_hash.clone(), s))
        .collect();
    let mut shards = Vec::new();
    let mut missing = Vec::new();
    for cell in &grid.cells {
        match by_hash.remove(&cell.config_hash) {
            Some(mut s) => {
                // The index in the current grid file.
                s.index = cell.index;
                shards.push(s);
            }
            None => missing.push(cell.index),
        }
    }
    Ok(Gathered {
        grid: grid.name.clone(),
        stale: total - shards.len(),
        shards,
        missing,
    })
}

/// One row of the summary table.
#[derive(Clone, Debug, PartialEq)]
pub struct SummaryRow {
    pub experiment: String,
    pub algorithm: String,
    pub environment: String,
    pub setting: String,
    pub setting_hash: String,
    pub sweep: serde_json::Map<String, serde_json::Value>,
    pub metric: String,
    pub step: u64,
    /// Seeds with a value (cells that finished ok).
    pub n: usize,
    /// Seeds of this setting that diverged.
    pub diverged: usize,
    pub mean: f64,
    /// Sample standard deviation; NaN for n < 2.
    pub std: f64,
    /// Half-width of the 95% confidence interval of the mean; NaN for n < 2.
    pub ci95: f64,
    pub min: f64,
    pub max: f64,
}

/// Summaries over seeds, in order of first appearance of setting and metric, steps
/// ascending.
pub fn summarize(shards: &[Shard]) -> Vec<SummaryRow> {
    /// Per metric (in order of first appearance): step → values over seeds.
    type Metrics = Vec<(String, BTreeMap<u64, Vec<f64>>)>;
    // setting hash → (first shard, diverged count, metrics)
    let mut order: Vec<String> = Vec::new();
    let mut settings: HashMap<String, (&Shard, usize, Metrics)> = HashMap::new();
    for s in shards {
        let entry = settings.entry(s.setting_hash.clone()).or_insert_with(|| {
            order.push(s.setting_hash.clone());
            (s, 0, Vec::new())
        });
        let ok = s.status == Status::Ok;
        if !ok {
            entry.1 += 1;
        }
        // A diverged cell's metrics stay out of the summary; its wall time counts.
        for m in s.metrics.iter().filter(|_| ok) {
            let pos = match entry.2.iter().position(|(name, _)| *name == m.metric) {
                Some(p) => p,
                None => {
                    entry.2.push((m.metric.clone(), BTreeMap::new()));
                    entry.2.len() - 1
                }
            };
            entry.2[pos].1.entry(m.step).or_default().push(m.value);
        }
        let pos = match entry.2.iter().position(|(n, _)| n == "cell_wall_seconds") {
            Some(p) => p,
            None => {
                entry.2.push(("cell_wall_seconds".into(), BTreeMap::new()));
                entry.2.len() - 1
            }
        };
        entry.2[pos].1.entry(0).or_default().push(s.wall_seconds);
    }
    let mut rows = Vec::new();
    for hash in order {
        let (first, diverged, metrics) = &settings[&hash];
        for (metric, steps) in metrics {
            for (step, values) in steps {
                let (n, mean, std, ci95) = mean_std_ci(values);
                rows.push(SummaryRow {
                    experiment: first.experiment.clone(),
                    algorithm: first.algorithm.clone(),
                    environment: first.environment.clone(),
                    setting: first.setting.clone(),
                    setting_hash: hash.clone(),
                    sweep: first.sweep.clone(),
                    metric: metric.clone(),
                    step: *step,
                    n,
                    diverged: *diverged,
                    mean,
                    std,
                    ci95,
                    min: values.iter().copied().fold(f64::INFINITY, f64::min),
                    max: values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                });
            }
        }
    }
    rows
}

/// (n, mean, sample std, 95% CI half-width); std and CI are NaN below two values.
pub fn mean_std_ci(values: &[f64]) -> (usize, f64, f64, f64) {
    let n = values.len();
    if n == 0 {
        return (0, f64::NAN, f64::NAN, f64::NAN);
    }
    let mean = values.iter().sum::<f64>() / n as f64;
    if n < 2 {
        return (n, mean, f64::NAN, f64::NAN);
    }
    let var = values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / (n - 1) as f64;
    let std = var.sqrt();
    (n, mean, std, t_975(n - 1) * std / (n as f64).sqrt())
}

/// The 0.975 quantile of Student's t with `df` degrees of freedom: exact table values to
/// 30, then the Cornish–Fisher expansion around the normal quantile (error below 1e-4).
pub fn t_975(df: usize) -> f64 {
    const TABLE: [f64; 30] = [
        12.706_204, 4.302_653, 3.182_446, 2.776_445, 2.570_582, 2.446_912, 2.364_624, 2.306_004,
        2.262_157, 2.228_139, 2.200_985, 2.178_813, 2.160_369, 2.144_787, 2.131_450, 2.119_905,
        2.109_816, 2.100_922, 2.093_024, 2.085_963, 2.079_614, 2.073_873, 2.068_658, 2.063_899,
        2.059_539, 2.055_529, 2.051_831, 2.048_407, 2.045_230, 2.042_272,
    ];
    match df {
        0 => f64::NAN,
        1..=30 => TABLE[df - 1],
        _ => {
            let z: f64 = 1.959_963_984_540_054;
            let v = df as f64;
            let z3 = z.powi(3);
            let z5 = z.powi(5);
            let z7 = z.powi(7);
            z + (z3 + z) / (4.0 * v)
                + (5.0 * z5 + 16.0 * z3 + 3.0 * z) / (96.0 * v * v)
                + (3.0 * z7 + 19.0 * z5 + 17.0 * z3 - 15.0 * z) / (384.0 * v * v * v)
        }
    }
}

/// The swept keys of a grid, in order of first appearance, each with the name of its
/// column (`param_<key>` when the key collides with a fixed column).
fn sweep_columns(grid: &Grid) -> Vec<(String, String)> {
    const FIXED: &[&str] = &[
        "experiment",
        "algorithm",
        "environment",
        "setting",
        "seed",
        "cell",
        "config_hash",
        "setting_hash",
        "status",
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
    let mut keys: Vec<(String, String)> = Vec::new();
    for e in &grid.experiments {
        for k in &e.sweep_keys {
            if !keys.iter().any(|(key, _)| key == k) {
                let column = if FIXED.contains(&k.as_str()) {
                    format!("param_{k}")
                } else {
                    k.clone()
                };
                keys.push((k.clone(), column));
            }
        }
    }
    keys
}

/// One column per swept key: numbers as f64 when every value given is a number, text
/// otherwise; null where the row's experiment does not sweep the key.
fn sweep_series<'a>(
    columns: &[(String, String)],
    sweeps: impl Iterator<Item = &'a serde_json::Map<String, serde_json::Value>> + Clone,
) -> Vec<Column> {
    columns
        .iter()
        .map(|(key, name)| {
            let values: Vec<Option<&serde_json::Value>> =
                sweeps.clone().map(|s| s.get(key)).collect();
            let numeric = values.iter().flatten().all(|v| v.is_number());
            if numeric {
                let v: Vec<Option<f64>> =
                    values.iter().map(|v| v.and_then(|v| v.as_f64())).collect();
                Column::new(name.as_str().into(), v)
            } else {
                let v: Vec<Option<String>> = values.iter().map(|v| v.map(display_value)).collect();
                Column::new(name.as_str().into(), v)
            }
        })
        .collect()
}

/// NaN as null: the CSV shows an empty field rather than "NaN".
fn nullable(values: impl Iterator<Item = f64>) -> Vec<Option<f64>> {
    values
        .map(|v| if v.is_nan() { None } else { Some(v) })
        .collect()
}

/// The tidy table of `gathered`.
pub fn tidy_frame(grid: &Grid, gathered: &Gathered) -> Result<DataFrame> {
    struct Row<'a> {
        shard: &'a Shard,
        metric: &'a str,
        step: u64,
        value: f64,
    }
    let mut rows = Vec::new();
    for s in &gathered.shards {
        for m in &s.metrics {
            rows.push(Row {
                shard: s,
                metric: &m.metric,
                step: m.step,
                value: m.value,
            });
        }
        rows.push(Row {
            shard: s,
            metric: "cell_wall_seconds",
            step: 0,
            value: s.wall_seconds,
        });
    }
    let text = |name: &str, f: &dyn Fn(&Row) -> String| {
        Column::new(name.into(), rows.iter().map(f).collect::<Vec<String>>())
    };
    let mut columns = vec![
        text("experiment", &|r| r.shard.experiment.clone()),
        text("algorithm", &|r| r.shard.algorithm.clone()),
        text("environment", &|r| r.shard.environment.clone()),
        text("setting", &|r| r.shard.setting.clone()),
    ];
    columns.extend(sweep_series(
        &sweep_columns(grid),
        rows.iter().map(|r| &r.shard.sweep),
    ));
    columns.extend([
        Column::new(
            "seed".into(),
            rows.iter().map(|r| r.shard.seed).collect::<Vec<u64>>(),
        ),
        Column::new(
            "cell".into(),
            rows.iter()
                .map(|r| r.shard.index as u64)
                .collect::<Vec<u64>>(),
        ),
        text("config_hash", &|r| r.shard.config_hash[..16].to_string()),
        text("status", &|r| r.shard.status.name().to_string()),
        text("metric", &|r| r.metric.to_string()),
        Column::new(
            "step".into(),
            rows.iter().map(|r| r.step).collect::<Vec<u64>>(),
        ),
        Column::new("value".into(), nullable(rows.iter().map(|r| r.value))),
    ]);
    Ok(DataFrame::new_infer_height(columns)?)
}

/// The summary table of `rows`.
pub fn summary_frame(grid: &Grid, rows: &[SummaryRow]) -> Result<DataFrame> {
    let text = |name: &str, f: &dyn Fn(&SummaryRow) -> String| {
        Column::new(name.into(), rows.iter().map(f).collect::<Vec<String>>())
    };
    let number = |name: &str, f: &dyn Fn(&SummaryRow) -> f64| {
        Column::new(name.into(), nullable(rows.iter().map(f)))
    };
    let mut columns = vec![
        text("experiment", &|r| r.experiment.clone()),
        text("algorithm", &|r| r.algorithm.clone()),
        text("environment", &|r| r.environment.clone()),
        text("setting", &|r| r.setting.clone()),
    ];
    columns.extend(sweep_series(
        &sweep_columns(grid),
        rows.iter().map(|r| &r.sweep),
    ));
    columns.extend([
        text("metric", &|r| r.metric.clone()),
        Column::new(
            "step".into(),
            rows.iter().map(|r| r.step).collect::<Vec<u64>>(),
        ),
        Column::new(
            "n".into(),
            rows.iter().map(|r| r.n as u64).collect::<Vec<u64>>(),
        ),
        Column::new(
            "diverged".into(),
            rows.iter().map(|r| r.diverged as u64).collect::<Vec<u64>>(),
        ),
        number("mean", &|r| r.mean),
        number("std", &|r| r.std),
        number("ci95", &|r| r.ci95),
        number("ci95_low", &|r| r.mean - r.ci95),
        number("ci95_high", &|r| r.mean + r.ci95),
        number("min", &|r| r.min),
        number("max", &|r| r.max),
    ]);
    Ok(DataFrame::new_infer_height(columns)?)
}

/// The files [`write_tables`] wrote.
pub struct TablePaths {
    pub csv: PathBuf,
    pub parquet: PathBuf,
    pub summary: PathBuf,
}

/// Write the tidy table (CSV and Parquet) and the summary (CSV) of `grid` into `out`.
pub fn write_tables(
    grid: &Grid,
    gathered: &Gathered,
    summary: &[SummaryRow],
    out: &Path,
) -> Result<TablePaths> {
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    let paths = TablePaths {
        csv: out.join(format!("{}.csv", grid.name)),
        parquet: out.join(format!("{}.parquet", grid.name)),
        summary: out.join(format!("{}_summary.csv", grid.name)),
    };
    let mut tidy = tidy_frame(grid, gathered)?;
    write_csv(&paths.csv, &mut tidy)?;
    let tmp = temporary(&paths.parquet);
    let file = File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
    ParquetWriter::new(file).finish(&mut tidy)?;
    std::fs::rename(&tmp, &paths.parquet).map_err(|e| Error::io(&paths.parquet, e))?;
    let mut summary = summary_frame(grid, summary)?;
    write_csv(&paths.summary, &mut summary)?;
    Ok(paths)
}

fn temporary(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.{}.tmp", std::process::id()))
}

fn write_csv(path: &Path, frame: &mut DataFrame) -> Result<()> {
    let tmp = temporary(path);
    let mut file = File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
    CsvWriter::new(&mut file).finish(frame)?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn t_quantiles_match_the_table_and_approach_the_normal() {
        assert!((t_975(1) - 12.706_204).abs() < 1e-6);
        assert!((t_975(4) - 2.776_445).abs() < 1e-6);
        // The expansion beyond the table continues it smoothly and decreases to 1.96.
        assert!((t_975(31) - 2.039_513).abs() < 1e-4, "{}", t_975(31));
        assert!((t_975(60) - 2.000_298).abs() < 1e-4, "{}", t_975(60));
        assert!((t_975(120) - 1.979_930).abs() < 1e-4, "{}", t_975(120));
        for df in 1..200 {
            assert!(t_975(df + 1) < t_975(df), "df {df}");
        }
        assert!((t_975(1_000_000) - 1.959_964).abs() < 1e-5);
        assert!(t_975(0).is_nan());
    }

    #[test]
    fn mean_std_and_interval_of_a_small_sample() {
        let (n, mean, std, ci) = mean_std_ci(&[1.0, 2.0, 3.0, 4.0]);
        assert_eq!((n, mean), (4, 2.5));
        assert!((std - (5.0f64 / 3.0).sqrt()).abs() < 1e-15);
        assert!((ci - 3.182_446 * std / 2.0).abs() < 1e-6);
        let (n, mean, std, ci) = mean_std_ci(&[7.0]);
        assert_eq!((n, mean), (1, 7.0));
        assert!(std.is_nan() && ci.is_nan());
    }
}
