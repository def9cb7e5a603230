//! `policy-param grid ...`: run experiment grids, one cell, list cells, gather tables,
//! submit a grid to a Slurm cluster and follow it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Subcommand, ValueEnum};
use policy_param_harness::error::shown;
use policy_param_harness::shard::{self, Found};
use policy_param_harness::slurm::{self, SlurmOptions, SubmitPaths, Submitted};
use policy_param_harness::{
    check_output_names, files, gather, record_run, results, run_cell, run_grid, GatherReport, Grid,
    Outcome, RunOptions,
};

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
        /// Threads running cells, 1 to 1024 (default: one per core).
        #[arg(long)]
        threads: Option<usize>,
        /// Threads of each cell's own pool, 1 to 1024; 0: cells share the grid's pool.
        /// Results do not depend on it; timings do.
        #[arg(long, default_value_t = 1)]
        cell_threads: usize,
        /// Output directory.
        #[arg(long, default_value = "results")]
        out: PathBuf,
        /// No progress bars (they are off anyway when stderr is not a terminal).
        #[arg(long)]
        no_progress: bool,
        /// Write the tables even when they would hold fewer cells than those in OUT
        /// (by default such tables are left as they are, and the command fails).
        #[arg(long)]
        replace: bool,
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
        /// Threads of the cell's pool, 1 to 1024 (default: one per core).
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
    /// Write tables and figures from the shards already in OUT (after a cluster run:
    /// the same tables and figures as a local run).
    #[command(visible_alias = "collect")]
    Gather {
        #[arg(required = true, value_name = "FILE.toml")]
        files: Vec<PathBuf>,
        #[arg(long, default_value = "results")]
        out: PathBuf,
        /// Write the tables even when they would hold fewer cells than those in OUT
        /// (a fresh clone has the committed tables and no shards: by default they are
        /// left as they are, and the command fails naming the missing cells).
        #[arg(long)]
        replace: bool,
    },
    /// Submit the grid's unfinished cells to a cluster scheduler as one job array (one
    /// task per cell, running `grid cell --index <task id>`), and print the job id.
    /// Cells already finished, or queued or running in an earlier job, are not
    /// submitted again. Shards go to OUT as in a local run.
    Submit {
        #[arg(value_name = "FILE.toml")]
        file: PathBuf,
        /// The scheduler.
        #[arg(long, value_enum)]
        scheduler: Scheduler,
        /// Slurm partition (default: the cluster's default).
        #[arg(long)]
        partition: Option<String>,
        /// Time limit per cell, as sbatch takes it (30, 2:00:00, 1-0).
        #[arg(long)]
        time: Option<String>,
        /// CPUs per cell: the cell's thread pool (results do not depend on it).
        #[arg(long, default_value_t = 1)]
        cpus_per_task: usize,
        /// Memory per cell, as sbatch takes it (4G).
        #[arg(long)]
        mem: Option<String>,
        /// A further sbatch option for the script (repeatable): --sbatch-option=--account=abc.
        #[arg(long, value_name = "OPTION", allow_hyphen_values = true)]
        sbatch_option: Vec<String>,
        /// Print the script, submit nothing, write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Output directory: on a file system the compute nodes share.
        #[arg(long, default_value = "results")]
        out: PathBuf,
    },
    /// Where each cell stands: finished (a shard in OUT), queued, running, failed (with
    /// its log) or missing, from the shards and from squeue, sacct and the task markers
    /// when there are jobs. Exit 0 when every cell is finished, 1 otherwise.
    Status {
        #[arg(value_name = "FILE.toml")]
        file: PathBuf,
        #[arg(long, default_value = "results")]
        out: PathBuf,
        /// Wait until no cell is queued or running and the grid's jobs have left the
        /// queue (asks squeue every --poll seconds).
        #[arg(long)]
        wait: bool,
        /// Seconds between two looks with --wait.
        #[arg(long, default_value_t = 10.0)]
        poll: f64,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Scheduler {
    Slurm,
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
            replace,
        } => {
            let grids = load_all(&files)?;
            let options = RunOptions {
                out,
                fresh,
                threads,
                cell_threads: (cell_threads > 0).then_some(cell_threads),
                progress: !no_progress,
            };
            options.check()?;
            let mut verdict = Verdict::Pass;
            let mut refused = Vec::new();
            for grid in &grids {
                let report = run_grid(grid, &options)?;
                for (index, outcome) in &report.outcomes {
                    if let Outcome::Failed(e) = outcome {
                        eprintln!("error: cell {index}: {e}");
                    }
                }
                let busy = match report.busy().len() {
                    0 => String::new(),
                    n => format!(", {n} computed by another run now (not started again)"),
                };
                println!(
                    "{}: {} cells: ran {}, skipped {} (finished before), diverged {}, failed {}{busy} in {:.1} s on {} threads",
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
                // A grid whose tables cannot be written (they would shrink) does not stop
                // the others; the command fails at the end.
                match print_gather(grid, &options.out, replace) {
                    Ok(gathered) => record_run(grid, &report, &gathered, &options.out)?,
                    Err(e) => {
                        eprintln!("error: {e}");
                        refused.push(grid.name.clone());
                    }
                }
            }
            if !refused.is_empty() {
                anyhow::bail!(
                    "tables not written for {} (see above); their shards are kept",
                    refused.join(", ")
                );
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
                Outcome::Busy(holder) => println!(
                    "{} cell {index} {label}: another process computes it ({holder}); not started again",
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
            let mut problems = Vec::new();
            for cell in &grid.cells {
                let status = match shard::look(&out, &grid, cell) {
                    Found::Finished(s) => s.status.name(),
                    Found::Unusable(why) => {
                        problems.push(format!("  #{} {}", cell.index, why));
                        "corrupt"
                    }
                    Found::Absent => {
                        match files::claim_holder(&shard::shard_path(&out, &grid, cell)) {
                            Some(_) => "running",
                            None => "pending",
                        }
                    }
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
            print!("{}", unusable_files(&grid, &out, problems)?);
            Ok(Verdict::Pass)
        }
        GridCommand::Gather {
            files,
            out,
            replace,
        } => {
            let mut refused = Vec::new();
            for grid in load_all(&files)? {
                if let Err(e) = print_gather(&grid, &out, replace) {
                    eprintln!("error: {e}");
                    refused.push(grid.name);
                }
            }
            if !refused.is_empty() {
                anyhow::bail!("tables not written for {}", refused.join(", "));
            }
            Ok(Verdict::Pass)
        }
        GridCommand::Submit {
            file,
            scheduler: Scheduler::Slurm,
            partition,
            time,
            cpus_per_task,
            mem,
            sbatch_option,
            dry_run,
            out,
        } => {
            let grid = Grid::load(&file)?;
            let options = SlurmOptions {
                partition,
                time,
                cpus_per_task,
                mem,
                extra: sbatch_option,
            };
            let paths = SubmitPaths {
                out,
                binary: std::env::current_exe()
                    .map_err(|e| anyhow::anyhow!("cannot find this program's path: {e}"))?,
                workdir: std::env::current_dir()
                    .map_err(|e| anyhow::anyhow!("cannot read the working directory: {e}"))?,
            };
            match slurm::submit(&grid, &paths, &options, dry_run)? {
                Submitted::DryRun { script, indices } => {
                    eprintln!(
                        "{}: would submit {} of {} cells ({}); not submitted (--dry-run)",
                        grid.name,
                        indices.len(),
                        grid.cells.len(),
                        slurm::array_spec(&indices)
                    );
                    print!("{script}");
                }
                Submitted::Nothing {
                    finished,
                    in_flight,
                    cells,
                } => {
                    if in_flight == 0 {
                        eprintln!(
                            "{}: all {cells} cells are finished: nothing to submit",
                            grid.name
                        );
                    } else {
                        eprintln!(
                            "{}: nothing to submit: {finished} of {cells} cells finished, the other {in_flight} queued or running (`grid status`)",
                            grid.name
                        );
                    }
                }
                Submitted::Job {
                    job_id,
                    indices,
                    script,
                    logs,
                } => {
                    eprintln!(
                        "{}: submitted job {job_id}: {} of {} cells ({}), {cpus_per_task} CPUs each; script {}; logs in {}",
                        grid.name,
                        indices.len(),
                        grid.cells.len(),
                        slurm::array_spec(&indices),
                        script.display(),
                        logs.display()
                    );
                    println!("{job_id}");
                }
            }
            Ok(Verdict::Pass)
        }
        GridCommand::Status {
            file,
            out,
            wait,
            poll,
        } => {
            let grid = Grid::load(&file)?;
            if !(poll.is_finite() && poll > 0.0) {
                anyhow::bail!("--poll must be a positive number of seconds, got {poll}");
            }
            let mut status = slurm::status(&grid, &out)?;
            if wait {
                if !slurm::on_path("squeue") {
                    anyhow::bail!("--wait asks squeue, which is not on PATH");
                }
                let mut last = String::new();
                while status.busy() {
                    let line = status.summary();
                    if line != last {
                        eprintln!("{line}");
                        last = line;
                    }
                    std::thread::sleep(Duration::from_secs_f64(poll));
                    status = slurm::status(&grid, &out)?;
                }
            }
            print!("{}", status.render(&grid));
            Ok(if status.all_finished() {
                Verdict::Pass
            } else {
                Verdict::Fail
            })
        }
    }
}

/// Load and check every grid before running any: no two may write the same output.
fn load_all(files: &[PathBuf]) -> anyhow::Result<Vec<Grid>> {
    let grids = files
        .iter()
        .map(|f| Grid::load(f))
        .collect::<Result<Vec<_>, _>>()?;
    check_output_names(&grids)?;
    Ok(grids)
}

/// The files under `OUT/<grid>/cells/` that are not usable shards, by name: the cells'
/// own (`problems`, found by `grid list`) and every other one.
fn unusable_files(grid: &Grid, out: &Path, problems: Vec<String>) -> anyhow::Result<String> {
    let (_, unreadable) = results::read_shards(&shard::cells_dir(out, &grid.name))?;
    let own: Vec<_> = grid
        .cells
        .iter()
        .map(|c| shard::shard_path(out, grid, c))
        .collect();
    let mut lines = problems;
    for (path, why) in unreadable.iter().filter(|(p, _)| !own.contains(p)) {
        lines.push(format!("  {}: {why}", shown(path)));
    }
    Ok(if lines.is_empty() {
        String::new()
    } else {
        format!(
            "{} files under {} are not usable shards (`grid run` moves a cell's aside and recomputes it):\n{}\n",
            lines.len(),
            shard::cells_dir(out, &grid.name).display(),
            lines.join("\n")
        )
    })
}

/// Gather `grid`'s tables and figures and say what was written.
fn print_gather(grid: &Grid, out: &Path, replace: bool) -> anyhow::Result<GatherReport> {
    let report = gather(grid, out, replace)?;
    for (path, why) in &report.unreadable {
        eprintln!("{}: not gathered: {why}", shown(path));
    }
    println!(
        "{}: gathered {} shards ({} diverged, {} cells missing, {} stale shards ignored, {} unreadable files) into {}, {}, {}; {} figures in {}",
        report.grid,
        report.shards,
        report.diverged,
        report.missing.len(),
        report.stale,
        report.unreadable.len(),
        report.csv.display(),
        report.parquet.display(),
        report.summary.display(),
        report.figure_count,
        report.figures.display()
    );
    Ok(report)
}
