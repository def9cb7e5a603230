//! Two result directories compared cell by cell: `policy-param compare DIR_A DIR_B`.
//!
//! Cells are matched by grid and config hash (what was run, not where it sits in the
//! file), from the shards under `DIR/<grid>/cells/`. For each matched cell the status and
//! every metric value at every step are compared: `a` and `b` agree when
//! `|a − b| ≤ atol + rtol · max(|a|, |b|)`, or both are NaN. With the defaults
//! (`rtol = atol = 0`) agreement is equality: same seed, same machine, the results must
//! be bit-identical. Timing metrics ([`is_timing_metric`]) are skipped unless asked for.
//! A cell or a metric present on one side only is a difference.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use crate::error::{Error, Result};
use crate::experiment::is_timing_metric;
use crate::shard::{self, Shard};

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tolerance {
    pub rtol: f64,
    pub atol: f64,
    /// Compare timing metrics too.
    pub include_timing: bool,
}

impl Default for Tolerance {
    fn default() -> Self {
        Tolerance {
            rtol: 0.0,
            atol: 0.0,
            include_timing: false,
        }
    }
}

impl Tolerance {
    pub fn check(&self) -> Result<()> {
        for (name, v) in [("--rtol", self.rtol), ("--atol", self.atol)] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(Error::Usage(format!(
                    "{name} must be a finite number ≥ 0, got {v}"
                )));
            }
        }
        Ok(())
    }

    pub fn agree(&self, a: f64, b: f64) -> bool {
        a == b
            || (a.is_nan() && b.is_nan())
            || (a - b).abs() <= self.atol + self.rtol * a.abs().max(b.abs())
    }
}

/// One difference beyond tolerance.
#[derive(Clone, Debug, PartialEq)]
pub struct Difference {
    pub grid: String,
    /// The cell's label (`experiment[setting] seed=S`) and index.
    pub cell: String,
    pub config_hash: String,
    /// The metric, or `(cell)` / `(status)` for the cell as a whole.
    pub metric: String,
    pub step: Option<u64>,
    pub a: String,
    pub b: String,
}

#[derive(Clone, Debug, Default)]
pub struct Comparison {
    pub cells_compared: usize,
    pub values_compared: usize,
    pub timing_values_skipped: usize,
    pub differences: Vec<Difference>,
}

impl Comparison {
    pub fn identical(&self) -> bool {
        self.differences.is_empty()
    }

    /// The report: a table of differences (if any) and a closing summary line.
    pub fn render(&self) -> String {
        let mut s = String::new();
        if !self.differences.is_empty() {
            let rows: Vec<[String; 6]> = self
                .differences
                .iter()
                .map(|d| {
                    [
                        d.grid.clone(),
                        d.cell.clone(),
                        d.metric.clone(),
                        d.step.map(|s| s.to_string()).unwrap_or_default(),
                        d.a.clone(),
                        d.b.clone(),
                    ]
                })
                .collect();
            let header = ["grid", "cell", "metric", "step", "A", "B"];
            let mut widths = header.map(str::len);
            for r in &rows {
                for (w, c) in widths.iter_mut().zip(r) {
                    *w = (*w).max(c.chars().count());
                }
            }
            let line = |cells: &[String]| {
                let mut l = String::new();
                for (i, (c, w)) in cells.iter().zip(widths).enumerate() {
                    if i > 0 {
                        l.push_str("  ");
                    }
                    let _ = write!(l, "{c:<w$}");
                }
                l.trim_end().to_string()
            };
            let _ = writeln!(s, "{}", line(&header.map(String::from)));
            for r in &rows {
                let _ = writeln!(s, "{}", line(r));
            }
        }
        let _ = writeln!(
            s,
            "cells={} values={} timing_skipped={} differences={}",
            self.cells_compared,
            self.values_compared,
            self.timing_values_skipped,
            self.differences.len()
        );
        s
    }
}

/// Every shard under `dir/<grid>/cells/`, keyed by (grid, config hash).
fn load(dir: &Path) -> Result<BTreeMap<(String, String), Shard>> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    let mut shards = BTreeMap::new();
    let mut grids: Vec<_> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("cells").is_dir())
        .collect();
    grids.sort();
    for grid_dir in grids {
        for s in shard::read_all(&grid_dir.join("cells"))? {
            shards.insert((s.grid.clone(), s.config_hash.clone()), s);
        }
    }
    Ok(shards)
}

fn show(v: f64) -> String {
    format!("{v:?}")
}

/// Compare the results in `a` and `b`.
pub fn compare_dirs(a: &Path, b: &Path, tolerance: &Tolerance) -> Result<Comparison> {
    tolerance.check()?;
    let (left, right) = (load(a)?, load(b)?);
    if left.is_empty() && right.is_empty() {
        return Err(Error::Usage(format!(
            "no shards under {}/*/cells/ or {}/*/cells/: nothing to compare",
            a.display(),
            b.display()
        )));
    }
    let mut keys: Vec<&(String, String)> = left.keys().chain(right.keys()).collect();
    keys.sort_by_key(|k| {
        let s = left.get(*k).or_else(|| right.get(*k));
        (k.0.clone(), s.map(|s| s.index).unwrap_or(0), k.1.clone())
    });
    keys.dedup();
    let mut c = Comparison::default();
    for key in keys {
        let (sa, sb) = (left.get(key), right.get(key));
        let any = sa.or(sb).expect("the key comes from one side");
        let diff = |metric: &str, step: Option<u64>, x: String, y: String| Difference {
            grid: key.0.clone(),
            cell: format!("#{} {}", any.index, any.label()),
            config_hash: key.1.clone(),
            metric: metric.to_string(),
            step,
            a: x,
            b: y,
        };
        let (sa, sb) = match (sa, sb) {
            (Some(x), Some(y)) => (x, y),
            (Some(_), None) => {
                c.differences
                    .push(diff("(cell)", None, "present".into(), "missing".into()));
                continue;
            }
            (None, _) => {
                c.differences
                    .push(diff("(cell)", None, "missing".into(), "present".into()));
                continue;
            }
        };
        c.cells_compared += 1;
        if sa.status != sb.status {
            c.differences
                .push(diff("(status)", None, status_text(sa), status_text(sb)));
        }
        let index = |s: &Shard| -> BTreeMap<(String, u64), f64> {
            s.metrics
                .iter()
                .map(|m| ((m.metric.clone(), m.step), m.value))
                .collect()
        };
        let (ma, mb) = (index(sa), index(sb));
        let mut metric_keys: Vec<&(String, u64)> = ma.keys().chain(mb.keys()).collect();
        metric_keys.sort();
        metric_keys.dedup();
        for mk in metric_keys {
            if !tolerance.include_timing && is_timing_metric(&mk.0) {
                c.timing_values_skipped += 1;
                continue;
            }
            c.values_compared += 1;
            match (ma.get(mk), mb.get(mk)) {
                (Some(&x), Some(&y)) => {
                    if !tolerance.agree(x, y) {
                        c.differences
                            .push(diff(&mk.0, Some(mk.1), show(x), show(y)));
                    }
                }
                (Some(&x), None) => {
                    c.differences
                        .push(diff(&mk.0, Some(mk.1), show(x), "missing".into()))
                }
                (None, Some(&y)) => {
                    c.differences
                        .push(diff(&mk.0, Some(mk.1), "missing".into(), show(y)))
                }
                (None, None) => {}
            }
        }
    }
    Ok(c)
}

fn status_text(s: &Shard) -> String {
    match &s.status {
        shard::Status::Ok => "ok".into(),
        shard::Status::Diverged { reason } => format!("diverged: {reason}"),
    }
}
