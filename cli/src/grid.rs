//! `policy-param grid ...`: run experiment grids, one cell, list cells, gather tables.

use std::path::{Path, PathBuf};

use clap::Subcommand;
use policy_param_harness::{gather, record_run, run_cell, run_grid, Grid, Outcome, RunOptions};

use crate::Verdict;

#[derive(Subcommand)]
pub enum GridCommand {
    /// Run every unfinished cell of each grid, then write its tables and figures to OUT
    /// and record the run in OUT/manifest.json. Every file is checked before anything runs.
    Run {
        /// Grid files (experiments/*.toml).
        #[arg(required = true, value_name = "FILE.toml")]
        files: Vec<PathBuf>,
        /// Recompute cells that are already finished.
        #[arg(long)]
        fresh: bool,
        /// Threads running cells (default: one per core).
        #[arg(long)]
        threads: Option<usize>,
        /// Threads of each cell's own pool; 0: cells share the grid's pool. Results do
        /// not depend on it; timings do.
        #[arg(long, default_value_t = 1)]
        cell_threads: usize,
        /// Output directory.
        #[arg(long, default_value = "results")]
        out: PathBuf,
        /// No progress bars (they are off anyway when stderr is not a terminal).
        #[arg(long)]
        no_progress: bool,
    },
    /// Run exactly one cell (a cluster array job's unit); skipped when already finished.
    Cell {
        #[arg(value_name = "FILE.toml")]
        file: PathBuf,
        /// The cell's index (see `grid list`).
        #[arg(long)]
        index: usize,
        /// Recompute even if finished.
        #[arg(long)]
        fresh: bool,
        /// Threads of the cell's pool (default: one per core).
        #[arg(long)]
        threads: Option<usize>,
        #[arg(long, default_value = "results")]
        out: PathBuf,
    },
    /// List the cells of a grid: index, status in OUT, label, config hash.
    List {
        #[arg(value_name = "FILE.toml")]
        file: PathBuf,
        #[arg(long, default_value = "results")]
        out: PathBuf,
    },
    /// Write tables and figures from the shards already in OUT.
    Gather {
        #[arg(required = true, value_name = "FILE.toml")]
        files: Vec<PathBuf>,
        #[arg(long, default_value = "results")]
        out: PathBuf,
    },
}

pub fn run(command: GridCommand) -> anyhow::Result<Verdict> {
    match command {
        GridCommand::Run {
            files,
            fresh,
            threads,
            cell_threads,
            out,
            no_progress,
        } => {
            let grids = load_all(&files)?;
            let options = RunOptions {
                out,
                fresh,
                threads,
                cell_threads: (cell_threads > 0).then_some(cell_threads),
                progress: !no_progress,
            };
            let mut verdict = Verdict::Pass;
            for grid in &grids {
                let report = run_grid(grid, &options)?;
                for (index, outcome) in &report.outcomes {
                    if let Outcome::Failed(e) = outcome {
                        eprintln!("error: cell {index}: {e}");
                    }
                }
                println!(
                    "{}: {} cells: ran {}, skipped {} (finished before), diverged {}, failed {} in {:.1} s on {} threads",
                    grid.name,
                    grid.cells.len(),
                    report.ran().len(),
                    report.skipped().len(),
                    report.diverged().len(),
                    report.failed().len(),
                    report.wall_seconds,
                    report.threads
                );
                if !report.failed().is_empty() {
                    verdict = Verdict::Fail;
                }
                print_gather(grid, &options.out)?;
                record_run(grid, &report, &options.out)?;
            }
            Ok(verdict)
        }
        GridCommand::Cell {
            file,
            index,
            fresh,
            threads,
            out,
        } => {
            let grid = Grid::load(&file)?;
            let options = RunOptions {
                out,
                fresh,
                threads,
                cell_threads: None,
                progress: false,
            };
            let outcome = run_cell(&grid, index, &options)?;
            let label = grid.cells[index].label();
            match outcome {
                Outcome::Skipped => println!(
                    "{} cell {index} {label}: finished before, skipped",
                    grid.name
                ),
                Outcome::Ran(status) => {
                    println!("{} cell {index} {label}: {}", grid.name, status.name())
                }
                Outcome::Failed(e) => anyhow::bail!("{} cell {index} {label}: {e}", grid.name),
            }
            Ok(Verdict::Pass)
        }
        GridCommand::List { file, out } => {
            let grid = Grid::load(&file)?;
            println!("{}: {} cells", grid.name, grid.cells.len());
            for cell in &grid.cells {
                let status = match policy_param_harness::shard::finished(&out, &grid, cell) {
                    Some(s) => s.status.name(),
                    None => "pending",
                };
                let spec = grid.experiment_of(cell);
                println!(
                    "{:>5}  {:<8}  {}  ({} on {}, adapter {})  {}",
                    cell.index,
                    status,
                    cell.label(),
                    spec.algorithm,
                    spec.environment,
                    spec.adapter.name(),
                    &cell.config_hash[..16]
                );
            }
            Ok(Verdict::Pass)
        }
        GridCommand::Gather { files, out } => {
            for grid in load_all(&files)? {
                print_gather(&grid, &out)?;
            }
            Ok(Verdict::Pass)
        }
    }
}

/// Load and check every grid before running any.
fn load_all(files: &[PathBuf]) -> anyhow::Result<Vec<Grid>> {
    let grids = files
        .iter()
        .map(|f| Grid::load(f))
        .collect::<Result<Vec<_>, _>>()?;
    let mut names: Vec<&str> = grids.iter().map(|g| g.name.as_str()).collect();
    names.sort_unstable();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        anyhow::bail!(
            "two grid files are named {:?}: their results would mix",
            w[0]
        );
    }
    Ok(grids)
}

fn print_gather(grid: &Grid, out: &Path) -> anyhow::Result<()> {
    let report = gather(grid, out)?;
    println!(
        "{}: gathered {} shards ({} diverged, {} cells missing, {} stale shards ignored) into {}, {}, {}; {} figures in {}",
        report.grid,
        report.shards,
        report.diverged,
        report.missing.len(),
        report.stale,
        report.csv.display(),
        report.parquet.display(),
        report.summary.display(),
        report.figure_count,
        report.figures.display()
    );
    Ok(())
}
