//! Two result sets compared cell by cell: `policy-param compare DIR_A DIR_B`.
//!
//! Each directory may hold shards (a run) or only tables (a fresh clone's committed
//! `<grid>.parquet`): see [`crate::results`]. Cells are matched by grid, experiment,
//! config hash and seed (what was run, not where it sits in the file); for each matched
//! cell the status and every metric value at every step are compared: `a` and `b` agree
//! when `|a − b| ≤ atol + rtol · max(|a|, |b|)`, or both are NaN. With the defaults
//! (`rtol = atol = 0`) agreement is equality: same seed, same machine, the results must
//! be bit-identical. Timing metrics ([`is_timing_metric`]) are skipped unless asked for.
//! A cell, a metric or a grid present on one side only is a difference.
//!
//! Per grid the verdict is *identical* (every value equal), *within tolerance* (some
//! differ, none beyond tolerance) or *different*. A grid that differs is also checked
//! statistically ([`Consistency`]): on another CPU the bits may differ while the
//! conclusions hold.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use crate::error::{Error, Result};
use crate::experiment::is_timing_metric;
use crate::methods::render_table;
use crate::results::{self, CellResult, GridResults};
use crate::stats::{Bootstrap, Estimate, Statistic};

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

    /// Equal, both NaN, or finite and within tolerance. An infinity agrees only with the
    /// same infinity: `inf − inf` is NaN, and `inf ≤ inf` would let any tolerance pass.
    pub fn agree(&self, a: f64, b: f64) -> bool {
        a == b
            || (a.is_nan() && b.is_nan())
            || (a.is_finite()
                && b.is_finite()
                && (a - b).abs() <= self.atol + self.rtol * a.abs().max(b.abs()))
    }
}

/// One difference beyond tolerance.
#[derive(Clone, Debug, PartialEq)]
pub struct Difference {
    pub grid: String,
    /// The cell's label (`experiment[setting] seed=S`) and index.
    pub cell: String,
    pub config_hash: String,
    /// The metric, or `(cell)` / `(status)` / `(grid)` for the cell or grid as a whole.
    pub metric: String,
    pub step: Option<u64>,
    pub a: String,
    pub b: String,
}

/// A grid's verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Identical,
    WithinTolerance,
    Different,
}

impl Verdict {
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Identical => "identical",
            Verdict::WithinTolerance => "within tolerance",
            Verdict::Different => "different",
        }
    }
}

/// Whether two result sets whose values differ support the same conclusions: for every
/// setting × metric (timing aside) at its last step, the 95% bootstrap intervals of the
/// mean over seeds, one per side, overlap.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Consistency {
    /// Setting × metric pairs with two or more seeds on both sides.
    pub tested: usize,
    /// Those whose intervals do not overlap: (setting, metric, step, A, B).
    pub disjoint: Vec<(String, String, u64, Estimate, Estimate)>,
    /// Pairs with fewer than two seeds on a side (compared value by value only).
    pub untestable: usize,
}

impl Consistency {
    pub fn consistent(&self) -> bool {
        self.disjoint.is_empty()
    }
}

/// One grid's comparison.
#[derive(Clone, Debug, PartialEq)]
pub struct GridComparison {
    pub grid: String,
    pub source_a: Option<String>,
    pub source_b: Option<String>,
    pub cells_compared: usize,
    pub values_compared: usize,
    /// Values not equal but within tolerance.
    pub values_within_tolerance: usize,
    pub timing_values_skipped: usize,
    pub differences: Vec<Difference>,
    /// Files that could not be read as shards, on either side.
    pub unreadable: Vec<String>,
    /// Set when the grid differs and both sides have it.
    pub consistency: Option<Consistency>,
}

impl GridComparison {
    pub fn verdict(&self) -> Verdict {
        if !self.differences.is_empty() {
            Verdict::Different
        } else if self.values_within_tolerance > 0 {
            Verdict::WithinTolerance
        } else {
            Verdict::Identical
        }
    }
}

/// Every grid's comparison; the totals are sums over the grids.
#[derive(Clone, Debug, Default)]
pub struct Comparison {
    pub grids: Vec<GridComparison>,
}

impl Comparison {
    /// No difference beyond tolerance.
    pub fn identical(&self) -> bool {
        self.grids.iter().all(|g| g.differences.is_empty())
    }

    /// Every difference, grid by grid.
    pub fn differences(&self) -> Vec<&Difference> {
        self.grids.iter().flat_map(|g| &g.differences).collect()
    }

    pub fn cells_compared(&self) -> usize {
        self.grids.iter().map(|g| g.cells_compared).sum()
    }

    pub fn values_compared(&self) -> usize {
        self.grids.iter().map(|g| g.values_compared).sum()
    }

    pub fn timing_values_skipped(&self) -> usize {
        self.grids.iter().map(|g| g.timing_values_skipped).sum()
    }

    /// The report: the differences (if any, the first 50), a line per grid with its
    /// verdict, and a closing summary line.
    pub fn render(&self) -> String {
        let mut s = String::new();
        const SHOWN: usize = 50;
        let differences = self.differences();
        if !differences.is_empty() {
            let rows: Vec<[String; 6]> = differences
                .iter()
                .take(SHOWN)
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
            s.push_str(&render_table(
                &["grid", "cell", "metric", "step", "A", "B"],
                &rows,
            ));
            if differences.len() > SHOWN {
                let _ = writeln!(s, "... and {} more differences", differences.len() - SHOWN);
            }
        }
        for g in &self.grids {
            for u in &g.unreadable {
                let _ = writeln!(s, "{}: unreadable: {u}", g.grid);
            }
            let _ = write!(
                s,
                "{}: {} ({} cells, {} values",
                g.grid,
                g.verdict().name(),
                g.cells_compared,
                g.values_compared
            );
            if g.values_within_tolerance > 0 {
                let _ = write!(s, ", {} within tolerance", g.values_within_tolerance);
            }
            match g.differences.len() {
                0 => {}
                1 => s.push_str(", 1 difference"),
                n => {
                    let _ = write!(s, ", {n} differences");
                }
            }
            let _ = writeln!(s, ")");
            if let Some(c) = &g.consistency {
                let untestable = if c.untestable > 0 {
                    format!(
                        "; {} with one seed on a side compared value by value only",
                        c.untestable
                    )
                } else {
                    String::new()
                };
                if c.consistent() {
                    let _ = writeln!(
                        s,
                        "  statistically consistent: the 95% bootstrap intervals of the mean overlap for all {} setting × metric pairs at their last step{untestable}",
                        c.tested
                    );
                } else {
                    let _ = writeln!(
                        s,
                        "  not statistically consistent: {} of {} setting × metric pairs have disjoint 95% bootstrap intervals of the mean at their last step{untestable}",
                        c.disjoint.len(),
                        c.tested
                    );
                    for (setting, metric, step, a, b) in c.disjoint.iter().take(10) {
                        let _ = writeln!(s, "    {setting} {metric} step {step}: A {a}, B {b}");
                    }
                }
            }
        }
        let _ = writeln!(
            s,
            "cells={} values={} timing_skipped={} differences={}",
            self.cells_compared(),
            self.values_compared(),
            self.timing_values_skipped(),
            differences.len()
        );
        s
    }
}

/// Every grid's results in `dir`; a directory without any is an error (exit 2: nothing
/// could be compared), not a difference.
fn load(dir: &Path) -> Result<BTreeMap<String, GridResults>> {
    if !dir.is_dir() {
        return Err(Error::Usage(format!(
            "{}: not a directory of results",
            dir.display()
        )));
    }
    let grids = results::read_dir(dir)?;
    if grids.values().all(|g| g.cells.is_empty()) {
        return Err(Error::Usage(format!(
            "{} holds no results (no <grid>/cells/*.json shards, <grid>.parquet or <grid>.csv tables): nothing to compare",
            dir.display()
        )));
    }
    Ok(grids)
}

fn show(v: f64) -> String {
    format!("{v:?}")
}

/// Compare the results in `a` and `b`.
pub fn compare_dirs(a: &Path, b: &Path, tolerance: &Tolerance) -> Result<Comparison> {
    tolerance.check()?;
    let (left, right) = (load(a)?, load(b)?);
    let mut names: Vec<&String> = left.keys().chain(right.keys()).collect();
    names.sort();
    names.dedup();
    let grids = names
        .into_iter()
        .map(|name| compare_grid(name, left.get(name), right.get(name), tolerance))
        .collect();
    Ok(Comparison { grids })
}

/// The cells of one grid, keyed by what identifies a run.
fn by_identity(g: Option<&GridResults>) -> BTreeMap<(String, String, u64), &CellResult> {
    g.map(|g| {
        g.cells
            .iter()
            .map(|c| ((c.experiment.clone(), c.config_hash.clone(), c.seed), c))
            .collect()
    })
    .unwrap_or_default()
}

fn compare_grid(
    name: &str,
    a: Option<&GridResults>,
    b: Option<&GridResults>,
    tolerance: &Tolerance,
) -> GridComparison {
    let describe = |g: Option<&GridResults>| g.map(|g| g.source.to_string());
    let mut out = GridComparison {
        grid: name.to_string(),
        source_a: describe(a),
        source_b: describe(b),
        cells_compared: 0,
        values_compared: 0,
        values_within_tolerance: 0,
        timing_values_skipped: 0,
        differences: Vec::new(),
        unreadable: [a, b]
            .iter()
            .flatten()
            .flat_map(|g| {
                g.unreadable
                    .iter()
                    .map(|(p, why)| format!("{}: {why}", crate::error::shown(p)))
            })
            .collect(),
        consistency: None,
    };
    if a.is_none() || b.is_none() {
        let (x, y) = if a.is_none() {
            ("missing", "present")
        } else {
            ("present", "missing")
        };
        out.differences.push(Difference {
            grid: name.to_string(),
            cell: "(grid)".into(),
            config_hash: String::new(),
            metric: "(grid)".into(),
            step: None,
            a: x.into(),
            b: y.into(),
        });
        return out;
    }
    let (left, right) = (by_identity(a), by_identity(b));
    let mut keys: Vec<&(String, String, u64)> = left.keys().chain(right.keys()).collect();
    keys.sort_by_key(|k| {
        let cell = left.get(*k).or_else(|| right.get(*k));
        (cell.map(|c| c.index).unwrap_or(0), (*k).clone())
    });
    keys.dedup();
    for key in keys {
        let (ca, cb) = (left.get(key).copied(), right.get(key).copied());
        let any = ca.or(cb).expect("the key comes from one side");
        let diff = |metric: &str, step: Option<u64>, x: String, y: String| Difference {
            grid: name.to_string(),
            cell: format!("#{} {}", any.index, any.label()),
            config_hash: key.1.clone(),
            metric: metric.to_string(),
            step,
            a: x,
            b: y,
        };
        let (ca, cb) = match (ca, cb) {
            (Some(x), Some(y)) => (x, y),
            (Some(_), None) => {
                out.differences
                    .push(diff("(cell)", None, "present".into(), "missing".into()));
                continue;
            }
            (None, _) => {
                out.differences
                    .push(diff("(cell)", None, "missing".into(), "present".into()));
                continue;
            }
        };
        out.cells_compared += 1;
        if ca.status != cb.status {
            out.differences
                .push(diff("(status)", None, status_text(ca), status_text(cb)));
        }
        let index = |c: &CellResult| -> BTreeMap<(String, u64), f64> {
            c.metrics
                .iter()
                .map(|m| ((m.metric.clone(), m.step), m.value))
                .collect()
        };
        let (ma, mb) = (index(ca), index(cb));
        let mut metric_keys: Vec<&(String, u64)> = ma.keys().chain(mb.keys()).collect();
        metric_keys.sort();
        metric_keys.dedup();
        for mk in metric_keys {
            if !tolerance.include_timing && is_timing_metric(&mk.0) {
                out.timing_values_skipped += 1;
                continue;
            }
            out.values_compared += 1;
            match (ma.get(mk), mb.get(mk)) {
                (Some(&x), Some(&y)) => {
                    if !tolerance.agree(x, y) {
                        out.differences
                            .push(diff(&mk.0, Some(mk.1), show(x), show(y)));
                    } else if x.to_bits() != y.to_bits() && !(x.is_nan() && y.is_nan()) {
                        out.values_within_tolerance += 1;
                    }
                }
                (Some(&x), None) => {
                    out.differences
                        .push(diff(&mk.0, Some(mk.1), show(x), "missing".into()))
                }
                (None, Some(&y)) => {
                    out.differences
                        .push(diff(&mk.0, Some(mk.1), "missing".into(), show(y)))
                }
                (None, None) => {}
            }
        }
    }
    if !out.differences.is_empty() {
        out.consistency = Some(consistency(
            &a.expect("both sides").cells,
            &b.expect("both sides").cells,
        ));
    }
    out
}

fn status_text(c: &CellResult) -> String {
    if c.reason.is_empty() {
        c.status.clone()
    } else {
        format!("{}: {}", c.status, c.reason)
    }
}

/// Per setting × metric (timing aside), at the last step both sides record, the 95%
/// bootstrap intervals of the mean over the seeds that finished ok: do they overlap?
pub fn consistency(a: &[CellResult], b: &[CellResult]) -> Consistency {
    type Values = BTreeMap<(String, String), BTreeMap<u64, Vec<f64>>>;
    let collect = |cells: &[CellResult]| -> Values {
        let mut v: Values = BTreeMap::new();
        for c in cells.iter().filter(|c| c.is_ok()) {
            for m in c.metrics.iter().filter(|m| !is_timing_metric(&m.metric)) {
                v.entry((c.setting_label(), m.metric.clone()))
                    .or_default()
                    .entry(m.step)
                    .or_default()
                    .push(m.value);
            }
        }
        v
    };
    let (va, vb) = (collect(a), collect(b));
    let bootstrap = Bootstrap {
        reps: 2000,
        ..Bootstrap::default()
    };
    let mut result = Consistency::default();
    for (key, steps_a) in &va {
        let Some(steps_b) = vb.get(key) else { continue };
        let Some(step) = steps_a.keys().rev().find(|s| steps_b.contains_key(s)) else {
            continue;
        };
        let (xa, xb) = (&steps_a[step], &steps_b[step]);
        if xa.len() < 2 || xb.len() < 2 {
            result.untestable += 1;
            continue;
        }
        result.tested += 1;
        let ea = bootstrap.estimate(std::slice::from_ref(xa), Statistic::Mean);
        let eb = bootstrap.estimate(std::slice::from_ref(xb), Statistic::Mean);
        if !ea.overlaps(&eb) {
            result
                .disjoint
                .push((key.0.clone(), key.1.clone(), *step, ea, eb));
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn infinities_agree_only_with_themselves() {
        let loose = Tolerance {
            rtol: 1e-9,
            atol: 1.0,
            include_timing: false,
        };
        assert!(loose.agree(f64::INFINITY, f64::INFINITY));
        assert!(!loose.agree(f64::INFINITY, 1.0));
        assert!(!loose.agree(1.0, f64::NEG_INFINITY));
        assert!(!loose.agree(f64::INFINITY, f64::NEG_INFINITY));
        assert!(loose.agree(f64::NAN, f64::NAN));
        assert!(!loose.agree(f64::NAN, 1.0));
        assert!(loose.agree(1.0, 1.5));
    }
}
