//! # policy-param-harness
//!
//! The reproducibility harness of policy-param: `just reproduce` runs every grid of
//! `experiments/*.toml` through it.
//!
//! | step | module |
//! |---|---|
//! | grid files → validated, typed cells with stable indices and config hashes; the figures a grid declares | [`config`] |
//! | what a cell runs: the `Experiment` trait, its metric rows; the adapters; the registry that maps `algorithm` × `environment` to one | [`experiment`], [`adapters`], [`online`], [`registry`] |
//! | one atomic JSON shard per finished cell | [`shard`] |
//! | atomic writes, the output directory's lock, a process's claim on a cell | [`files`] |
//! | parallel, resumable runs that overlapping runs share; diverged cells recorded, the grid goes on | [`runner`], [`progress`] |
//! | a result set read from shards or from committed tables (the tidy tables' columns and their reader) | [`results`] |
//! | shards → tidy Parquet / CSV and a summary with 95% CIs (polars); never a smaller table | [`tables`] |
//! | IQM, probability of improvement, stratified bootstrap intervals | [`stats`], [`methods`] |
//! | learning curves and comparisons as offline plotly HTML | [`figures`] |
//! | two result sets compared cell by cell, per grid, and statistically | [`compare`] |
//! | crate versions, commit, machine, threads, time per grid; the machine's name and the clock | [`manifest`], [`host`] |
//! | a grid as a Slurm job array; where its cells stand (`grid submit`, `grid status`) | [`slurm`] |
//!
//! The command line (`policy-param grid ...`, `policy-param compare ...`) is in `cli/`.

pub mod adapters;
pub mod compare;
pub mod config;
pub mod error;
pub mod experiment;
pub mod figures;
pub mod files;
pub mod host;
pub mod manifest;
pub mod methods;
pub mod online;
pub mod progress;
pub mod registry;
pub mod results;
pub mod runner;
pub mod shard;
pub mod slurm;
pub mod stats;
pub mod tables;

use std::path::{Path, PathBuf};

pub use config::Grid;
pub use error::{ConfigError, Error, Result};
pub use runner::{run_cell, run_grid, Outcome, RunOptions, RunReport};

/// What [`gather`] wrote.
pub struct GatherReport {
    pub grid: String,
    pub shards: usize,
    pub missing: Vec<usize>,
    pub stale: usize,
    /// Files in `cells/` that are not readable shards, each with the reason.
    pub unreadable: results::Unreadable,
    pub diverged: usize,
    /// The wall times of the gathered cells, summed (whenever they ran).
    pub cell_seconds_total: f64,
    pub csv: PathBuf,
    pub parquet: PathBuf,
    pub summary: PathBuf,
    pub figures: PathBuf,
    pub figure_count: usize,
}

/// Tables and figures of `grid` from the shards in `out/<grid>/cells/`. Tables that hold
/// cells these shards lack are not replaced ([`tables::check_no_loss`]) unless `replace`.
/// Under `out`'s [`files::DirLock`]: a concurrent gather of the same grid waits, rather
/// than writing half of the tables.
pub fn gather(grid: &Grid, out: &Path, replace: bool) -> Result<GatherReport> {
    let _lock = files::DirLock::acquire(out)?;
    let gathered = tables::collect(grid, out)?;
    if !replace {
        tables::check_no_loss(grid, &gathered, out)?;
    }
    let sweep_columns = tables::sweep_columns(grid);
    let mut tidy = tables::tidy_frame(&sweep_columns, &gathered.cells)?;
    let mut summary = tables::summary_frame(&tidy, &sweep_columns)?;
    let paths = tables::write_tables(grid, &mut tidy, &mut summary, out)?;
    let (figures, figure_count) = figures::write_figures(grid, &gathered.cells, out)?;
    Ok(GatherReport {
        grid: grid.name.clone(),
        shards: gathered.cells.len(),
        diverged: gathered.cells.iter().filter(|c| !c.is_ok()).count(),
        missing: gathered.missing,
        stale: gathered.stale,
        unreadable: gathered.unreadable,
        cell_seconds_total: gathered
            .cells
            .iter()
            .filter_map(|c| c.value(results::CELL_WALL_SECONDS, 0))
            .sum(),
        csv: paths.csv,
        parquet: paths.parquet,
        summary: paths.summary,
        figures,
        figure_count,
    })
}

/// The names `gather` writes for grid `name` in the output directory.
pub fn output_names(name: &str) -> [String; 5] {
    [
        name.to_string(),
        format!("{name}.csv"),
        format!("{name}.parquet"),
        format!("{name}{}.csv", config::SUMMARY_SUFFIX),
        format!("{name}.html"),
    ]
}

/// Refuse grids that would write the same file in one output directory: the same name,
/// or names that differ only in case (one file on macOS and Windows file systems).
pub fn check_output_names(grids: &[Grid]) -> Result<()> {
    let mut seen: std::collections::BTreeMap<String, &Grid> = Default::default();
    for grid in grids {
        for output in output_names(&grid.name) {
            if let Some(other) = seen.insert(output.to_lowercase(), grid) {
                if !std::ptr::eq(other, grid) {
                    return Err(Error::Usage(format!(
                        "{} and {} would both write {output:?} in the output directory: rename one",
                        other.file.display(),
                        grid.file.display()
                    )));
                }
            }
        }
    }
    Ok(())
}

/// Record a run of `grid`, gathered as `gathered`, in `out/manifest.json`.
pub fn record_run(
    grid: &Grid,
    report: &RunReport,
    gathered: &GatherReport,
    out: &Path,
) -> Result<()> {
    let entry = manifest::GridEntry {
        file: grid.file.display().to_string(),
        git_commit: manifest::git_commit(),
        rustc: manifest::rustc_version().to_string(),
        crate_versions: manifest::crate_versions(),
        hostname: host::hostname(),
        cpu_model: host::cpu_model(),
        cpus: host::cpus(),
        threads: report.threads,
        cells: grid.cells.len(),
        ran: report.ran().len(),
        skipped: report.skipped().len(),
        diverged: report.diverged().len(),
        failed: report.failed().len(),
        wall_seconds: report.wall_seconds,
        cell_seconds_total: gathered.cell_seconds_total,
        finished_at: host::now(),
    };
    manifest::record(out, &grid.name, entry)
}
