//! A grid's cells as tables, with polars:
//!
//! - `results/<grid>.parquet` (committed, zstd) and `results/<grid>.csv`: tidy, one row per
//!   cell × metric × step (columns: experiment, algorithm, environment, setting, one column
//!   per swept key, seed, cell, config_hash, status, reason, metric, step, value). Each
//!   cell's wall time is there too, as metric `cell_wall_seconds`. Every seed's numbers:
//!   what `compare` reads when there are no shards.
//! - `results/<grid>_summary.csv`: one row per setting × metric × step over the seeds
//!   whose cell finished ok (a polars group-by): n, mean, std (n − 1 denominator), the
//!   half-width of the 95% confidence interval of the mean, `t(0.975, n − 1) · std / √n`,
//!   its bounds, min and max; `diverged` counts the setting's diverged seeds (whose
//!   values are left out; only their `cell_wall_seconds` count).
//!
//! Only shards of the grid's current cells (matched by config hash) are gathered; shards
//! left by an older version of the grid file are ignored and counted as stale. Tables are
//! never replaced by tables of fewer cells ([`check_no_loss`]).

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use polars::prelude::*;
use polars_io::prelude::{CsvWriter, ParquetCompression, ParquetWriter};
use polars_io::SerWriter;

use crate::config::{display_value, Grid};
use crate::error::{Error, Result};
use crate::experiment::MetricRow;
use crate::files;
use crate::results::{
    self, read_csv, read_tidy, short_hash, text_column, CellResult, CELL_WALL_SECONDS, FIXED,
};
use crate::shard;

/// A grid's current cells as found in `out/<grid>/cells/`, in cell order.
pub struct Gathered {
    pub grid: String,
    pub cells: Vec<CellResult>,
    /// Indices of cells without a readable shard.
    pub missing: Vec<usize>,
    /// Shards in the cells directory that belong to no current cell.
    pub stale: usize,
    /// Files in the cells directory that are not readable shards, with the reason.
    pub unreadable: results::Unreadable,
}

/// Read the shards of `grid`'s cells from `out/<grid>/cells/`.
pub fn collect(grid: &Grid, out: &Path) -> Result<Gathered> {
    let (all, unreadable) = results::read_shards(&shard::cells_dir(out, &grid.name))?;
    let total = all.len();
    let mut by_hash: HashMap<String, shard::Shard> = all
        .into_iter()
        .map(|s| (s.config_hash.clone(), s))
        .collect();
    let mut cells = Vec::new();
    let mut missing = Vec::new();
    for cell in &grid.cells {
        match by_hash.remove(&cell.config_hash) {
            Some(mut s) => {
                // The index in the current grid file.
                s.index = cell.index;
                cells.push(CellResult::from_shard(&s));
            }
            None => missing.push(cell.index),
        }
    }
    Ok(Gathered {
        grid: grid.name.clone(),
        stale: total - cells.len(),
        cells,
        missing,
        unreadable,
    })
}

/// What existing tables of a grid hold.
#[derive(Clone, Debug, PartialEq)]
pub struct Held {
    /// The table counted.
    pub path: PathBuf,
    pub cells: usize,
    /// Their config hashes (16 digits), when the tidy table is there to tell.
    pub hashes: Option<BTreeSet<String>>,
}

/// What the tables of `grid` in `out` hold now: the tidy table's cells (Parquet, else
/// CSV), else the summary's count (the seeds of each setting's `cell_wall_seconds`).
pub fn held(grid: &str, out: &Path) -> Result<Option<Held>> {
    for extension in ["parquet", "csv"] {
        let path = out.join(format!("{grid}.{extension}"));
        if path.is_file() {
            let tidy = read_tidy(&path)?;
            let hashes: BTreeSet<String> = text_column(&tidy, "config_hash")
                .map_err(|reason| Error::malformed(&path, reason))?
                .into_iter()
                .collect();
            return Ok(Some(Held {
                path,
                cells: hashes.len(),
                hashes: Some(hashes),
            }));
        }
    }
    let path = out.join(format!("{grid}_summary.csv"));
    if !path.is_file() {
        return Ok(None);
    }
    let summary = read_csv(&path)?;
    let cells = summary
        .lazy()
        .filter(col("metric").eq(lit(CELL_WALL_SECONDS)))
        .select([
            (col("n").cast(DataType::UInt64) + col("diverged").cast(DataType::UInt64))
                .sum()
                .alias("cells"),
        ])
        .collect()?;
    let cells = cells.column("cells")?.u64()?.get(0).unwrap_or(0) as usize;
    Ok(Some(Held {
        path,
        cells,
        hashes: None,
    }))
}

/// Refuse to replace `grid`'s tables in `out` with tables that would hold fewer cells
/// than they do, or that would drop a current cell they hold (its shard missing,
/// unreadable or never written): a fresh clone has the tables and no shards, and a failed
/// or interrupted rerun must not shrink them.
pub fn check_no_loss(grid: &Grid, gathered: &Gathered, out: &Path) -> Result<()> {
    let Some(held) = held(&grid.name, out)? else {
        return Ok(());
    };
    let have: BTreeSet<&str> = gathered
        .cells
        .iter()
        .map(|c| c.config_hash.as_str())
        .collect();
    let lost: Vec<&crate::config::Cell> = match &held.hashes {
        Some(hashes) => grid
            .cells
            .iter()
            .filter(|c| {
                let h = short_hash(&c.config_hash);
                hashes.contains(h) && !have.contains(h)
            })
            .collect(),
        None => Vec::new(),
    };
    if gathered.cells.len() >= held.cells && lost.is_empty() {
        return Ok(());
    }
    let missing: Vec<String> = gathered
        .missing
        .iter()
        .take(5)
        .map(|&i| format!("#{i} {}", grid.cells[i].label()))
        .collect();
    let more = gathered.missing.len().saturating_sub(missing.len());
    let mut reason = format!(
        "{} holds {} cells, but {} has shards of only {} of the grid's {} cells",
        held.path.display(),
        held.cells,
        shard::cells_dir(out, &grid.name).display(),
        gathered.cells.len(),
        grid.cells.len(),
    );
    if !missing.is_empty() {
        reason.push_str(&format!(
            " (missing: {}{})",
            missing.join(", "),
            if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            }
        ));
    }
    if !gathered.unreadable.is_empty() {
        let names: Vec<String> = gathered
            .unreadable
            .iter()
            .take(5)
            .map(|(path, _)| {
                crate::error::shown(path.file_name().map_or(path.as_path(), Path::new))
            })
            .collect();
        let more = gathered.unreadable.len() - names.len();
        reason.push_str(&format!(
            "; {} unreadable file(s) there: {}{}",
            gathered.unreadable.len(),
            names.join(", "),
            if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            }
        ));
    }
    reason.push_str(&format!(
        ": the tables are left as they are. Run the missing cells (`policy-param grid run {}`), or pass --replace to write the smaller tables anyway",
        grid.file.display()
    ));
    Err(Error::Refused(reason))
}

/// The swept keys of a grid, in order of first appearance, each with the name of its
/// column.
pub fn sweep_columns(grid: &Grid) -> Vec<(String, String)> {
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

/// The tidy table of `cells`, with a column per swept key of `sweep_columns`.
pub fn tidy_frame(sweep_columns: &[(String, String)], cells: &[CellResult]) -> Result<DataFrame> {
    let rows: Vec<(&CellResult, &MetricRow)> = cells
        .iter()
        .flat_map(|c| c.metrics.iter().map(move |m| (c, m)))
        .collect();
    let text = |name: &str, f: &dyn Fn(&CellResult, &MetricRow) -> String| {
        Column::new(
            name.into(),
            rows.iter().map(|(c, m)| f(c, m)).collect::<Vec<String>>(),
        )
    };
    let number = |name: &str, f: &dyn Fn(&CellResult, &MetricRow) -> u64| {
        Column::new(
            name.into(),
            rows.iter().map(|(c, m)| f(c, m)).collect::<Vec<u64>>(),
        )
    };
    let mut columns = vec![
        text("experiment", &|c, _| c.experiment.clone()),
        text("algorithm", &|c, _| c.algorithm.clone()),
        text("environment", &|c, _| c.environment.clone()),
        text("setting", &|c, _| c.setting.clone()),
    ];
    columns.extend(sweep_series(
        sweep_columns,
        rows.iter().map(|(c, _)| &c.sweep),
    ));
    columns.extend([
        number("seed", &|c, _| c.seed),
        number("cell", &|c, _| c.index as u64),
        text("config_hash", &|c, _| c.config_hash.clone()),
        text("status", &|c, _| c.status.clone()),
        text("reason", &|c, _| c.reason.clone()),
        text("metric", &|_, m| m.metric.clone()),
        number("step", &|_, m| m.step),
        Column::new("value".into(), nullable(rows.iter().map(|(_, m)| m.value))),
    ]);
    Ok(DataFrame::new_infer_height(columns)?)
}

/// The summary of a tidy table, as polars expressions: group by setting, metric and step
/// over the seeds that finished ok (a diverged seed counts only in `diverged` and in its
/// wall time); rows in order of each setting's first cell, then of each metric's first
/// appearance in it, then by step.
pub fn summary_frame(tidy: &DataFrame, sweep_columns: &[(String, String)]) -> Result<DataFrame> {
    let setting = || [col("experiment"), col("setting")];
    let max_n = tidy.height().max(2) as u64;
    let t_table = DataFrame::new_infer_height(vec![
        Column::new("n".into(), (2..=max_n).collect::<Vec<u64>>()),
        Column::new(
            "t".into(),
            (2..=max_n)
                .map(|n| t_975((n - 1) as usize))
                .collect::<Vec<f64>>(),
        ),
    ])?;
    let mut firsts = vec![
        col("algorithm").first(),
        col("environment").first(),
        col("setting_order").first(),
        col("metric_order").first(),
        col("diverged").first(),
        col("value").count().cast(DataType::UInt64).alias("n"),
        col("value").mean().alias("mean"),
        col("value").std(1).alias("std"),
        col("value").min().alias("min"),
        col("value").max().alias("max"),
    ];
    firsts.extend(sweep_columns.iter().map(|(_, c)| col(c.as_str()).first()));
    let mut order: Vec<Expr> = vec![
        col("experiment"),
        col("algorithm"),
        col("environment"),
        col("setting"),
    ];
    order.extend(sweep_columns.iter().map(|(_, c)| col(c.as_str())));
    order.extend([
        col("metric"),
        col("step"),
        col("n"),
        col("diverged"),
        col("mean"),
        col("std"),
        col("ci95"),
        (col("mean") - col("ci95")).alias("ci95_low"),
        (col("mean") + col("ci95")).alias("ci95_high"),
        col("min"),
        col("max"),
    ]);
    let diverged_cell = col("status")
        .neq(lit("ok"))
        .and(col("metric").eq(lit(CELL_WALL_SECONDS)));
    let summary = tidy
        .clone()
        .lazy()
        .with_row_index("row", None)
        .with_columns([
            col("row").min().over(setting())?.alias("setting_order"),
            col("row")
                .min()
                .over([col("experiment"), col("setting"), col("metric")])?
                .alias("metric_order"),
            diverged_cell
                .cast(DataType::UInt64)
                .sum()
                .over(setting())?
                .alias("diverged"),
        ])
        .filter(
            col("status")
                .eq(lit("ok"))
                .or(col("metric").eq(lit(CELL_WALL_SECONDS))),
        )
        .group_by([
            col("experiment"),
            col("setting"),
            col("metric"),
            col("step"),
        ])
        .agg(firsts)
        .left_join(t_table.lazy(), col("n"), col("n"))
        .with_column(
            (col("t") * col("std") / col("n").cast(DataType::Float64).sqrt()).alias("ci95"),
        )
        // Last: neither the group-by nor the join keeps row order.
        .sort(
            ["setting_order", "metric_order", "step"],
            SortMultipleOptions::default(),
        )
        .select(order)
        .collect()?;
    Ok(summary)
}

/// The files [`write_tables`] wrote.
pub struct TablePaths {
    pub csv: PathBuf,
    pub parquet: PathBuf,
    pub summary: PathBuf,
}

/// Write the tidy table (CSV and zstd Parquet) and the summary (CSV) of `grid` into
/// `out`, each atomically.
pub fn write_tables(
    grid: &Grid,
    tidy: &mut DataFrame,
    summary: &mut DataFrame,
    out: &Path,
) -> Result<TablePaths> {
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    let paths = TablePaths {
        csv: out.join(format!("{}.csv", grid.name)),
        parquet: out.join(format!("{}.parquet", grid.name)),
        summary: out.join(format!("{}_summary.csv", grid.name)),
    };
    write_csv(&paths.csv, tidy)?;
    write_parquet(&paths.parquet, tidy)?;
    write_csv(&paths.summary, summary)?;
    Ok(paths)
}

/// A table as zstd-compressed Parquet, atomically.
pub fn write_parquet(path: &Path, frame: &mut DataFrame) -> Result<()> {
    files::write_atomically(path, |file| {
        ParquetWriter::new(file)
            .with_compression(ParquetCompression::Zstd(None))
            .finish(frame)?;
        Ok(())
    })
}

fn write_csv(path: &Path, frame: &mut DataFrame) -> Result<()> {
    files::write_atomically(path, |file| {
        CsvWriter::new(file).finish(frame)?;
        Ok(())
    })
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

/// (n, mean, sample std, 95% CI half-width) of `values`; std and CI are NaN below two
/// values. The figures use it on per-seed values (in log space for positive errors).
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::{float_column, u64_column};

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

    fn cell(setting: &str, seed: u64, status: &str, values: &[(u64, &str, f64)]) -> CellResult {
        let mut sweep = serde_json::Map::new();
        sweep.insert("lr".into(), serde_json::json!(setting.len() as f64));
        let mut metrics: Vec<MetricRow> = values
            .iter()
            .map(|&(step, metric, value)| MetricRow {
                step,
                metric: metric.into(),
                value,
            })
            .collect();
        metrics.push(MetricRow {
            step: 0,
            metric: CELL_WALL_SECONDS.into(),
            value: 1.5,
        });
        CellResult {
            grid: "g".into(),
            experiment: "e".into(),
            algorithm: "a".into(),
            environment: "Env".into(),
            setting: setting.into(),
            sweep,
            seed,
            index: seed as usize,
            config_hash: format!("{seed:016x}"),
            status: status.into(),
            reason: if status == "ok" { "" } else { "loss > 1e8" }.into(),
            metrics,
        }
    }

    /// The polars summary against values computed by hand, diverged seeds left out, rows
    /// in setting, metric and step order; and the tidy table reads back into the same
    /// cells.
    #[test]
    fn summary_groups_by_setting_metric_and_step_and_the_tidy_table_round_trips() {
        let cells = vec![
            cell(
                "lr=1",
                0,
                "ok",
                &[(2, "ret", 1.0), (1, "loss", 9.0), (1, "ret", 0.5)],
            ),
            cell(
                "lr=1",
                1,
                "ok",
                &[(2, "ret", 3.0), (1, "loss", 7.0), (1, "ret", 0.25)],
            ),
            cell("lr=1", 2, "diverged", &[(1, "ret", -1e9)]),
            cell("lr=22", 3, "ok", &[(1, "ret", 4.0)]),
        ];
        let columns = vec![("lr".to_string(), "lr".to_string())];
        let tidy = tidy_frame(&columns, &cells).unwrap();
        let summary = summary_frame(&tidy, &columns).unwrap();
        let text = |name: &str| text_column(&summary, name).unwrap();
        let float = |name: &str| float_column(&summary, name).unwrap();
        let count = |name: &str| u64_column(&summary, name).unwrap();
        let (setting, metric, step) = (text("setting"), text("metric"), count("step"));
        let keys: Vec<(String, &str, u64)> = (0..summary.height())
            .map(|i| (setting[i].clone(), metric[i].as_str(), step[i]))
            .collect();
        assert_eq!(
            keys,
            vec![
                ("lr=1".to_string(), "ret", 1),
                ("lr=1".to_string(), "ret", 2),
                ("lr=1".to_string(), "loss", 1),
                ("lr=1".to_string(), CELL_WALL_SECONDS, 0),
                ("lr=22".to_string(), "ret", 1),
                ("lr=22".to_string(), CELL_WALL_SECONDS, 0),
            ]
        );
        let (n, diverged, mean) = (count("n"), count("diverged"), float("mean"));
        let (std, ci95, min, max) = (float("std"), float("ci95"), float("min"), float("max"));
        assert_eq!((n[1], diverged[1], mean[1]), (2, 1, 2.0));
        assert!((std[1] - 2f64.sqrt()).abs() < 1e-15);
        assert!((ci95[1] - 12.706_204 * 2f64.sqrt() / 2f64.sqrt()).abs() < 1e-9);
        assert_eq!((min[1], max[1]), (1.0, 3.0));
        // The diverged seed's value stays out; its wall time counts.
        assert_eq!((n[0], mean[0]), (2, 0.375));
        assert_eq!((n[3], diverged[3]), (3, 1));
        assert_eq!((n[4], diverged[4]), (1, 0));
        assert!(std[4].is_nan() && ci95[4].is_nan());
        assert_eq!(float("lr")[4], 5.0);

        let back = results::cells_from_tidy("g", &tidy).unwrap();
        assert_eq!(back, cells);
    }
}
