//! Runs a grid's cells: `threads` at a time, each cell in a rayon pool, skipping cells
//! whose shard is already there with the same config hash (unless `fresh`), one atomic
//! shard per finished cell.
//!
//! A cell that diverges is recorded as diverged and the grid goes on. A cell that fails
//! otherwise (a bug, a bad setup the config check did not catch, a panic) is reported and
//! not recorded, so that the next run retries it; the other cells still run.
//!
//! Results do not depend on the number of threads: the library derives every random
//! stream from the seed, whatever rayon's schedule. By default each cell runs in a rayon
//! pool of its own with one thread (`cell_threads`), so that cells run side by side and
//! a cell's timings measure that cell alone: in a shared pool, a thread waiting inside
//! one cell's parallel loop may steal and run another cell, whose time then counts too.
//! For the same reason the cells are handed out by plain threads, not by a rayon loop (a
//! rayon worker waiting for a job in another pool runs jobs of its own pool meanwhile).

use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crate::config::{Cell, Grid};
use crate::error::{CellError, Error, Result};
use crate::experiment::CellContext;
use crate::files::Claim;
use crate::manifest::git_commit;
use crate::progress::Progress;
use crate::shard::{self, Found, Shard, Status};

/// How to run.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Where results go (`results`).
    pub out: PathBuf,
    /// Recompute cells that already have a shard.
    pub fresh: bool,
    /// Threads of the grid's pool; `None`: one per core.
    pub threads: Option<usize>,
    /// A pool of this many threads per cell (default 1); `None`: cells share the grid's
    /// pool.
    pub cell_threads: Option<usize>,
    /// Draw progress bars (when stderr is a terminal).
    pub progress: bool,
}

/// The most threads `threads` or `cell_threads` may ask for.
pub const MAX_THREADS: usize = 1024;

impl RunOptions {
    pub fn new(out: impl Into<PathBuf>) -> Self {
        RunOptions {
            out: out.into(),
            fresh: false,
            threads: None,
            cell_threads: Some(1),
            progress: true,
        }
    }

    /// Thread counts within 1 to [`MAX_THREADS`]: checked before anything is created.
    pub fn check(&self) -> Result<()> {
        for (name, n) in [
            ("--threads", self.threads),
            ("--cell-threads", self.cell_threads),
        ] {
            if let Some(n) = n.filter(|n| !(1..=MAX_THREADS).contains(n)) {
                return Err(Error::Usage(format!(
                    "{name} must be between 1 and {MAX_THREADS}, got {n}"
                )));
            }
        }
        Ok(())
    }
}

/// How one cell went.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// A finished shard with this config hash was there.
    Skipped,
    /// Ran and wrote its shard.
    Ran(Status),
    /// Failed (not diverged): not recorded.
    Failed(String),
    /// Another process holds the cell's claim (computes it now): not started again.
    Busy(String),
}

/// What a run did, cell by cell.
#[derive(Clone, Debug)]
pub struct RunReport {
    pub grid: String,
    /// `(cell index, outcome)` in index order.
    pub outcomes: Vec<(usize, Outcome)>,
    pub threads: usize,
    pub wall_seconds: f64,
}

impl RunReport {
    pub fn ran(&self) -> Vec<usize> {
        self.indices(|o| matches!(o, Outcome::Ran(_)))
    }
    pub fn skipped(&self) -> Vec<usize> {
        self.indices(|o| matches!(o, Outcome::Skipped))
    }
    pub fn diverged(&self) -> Vec<usize> {
        self.indices(|o| matches!(o, Outcome::Ran(Status::Diverged { .. })))
    }
    pub fn failed(&self) -> Vec<usize> {
        self.indices(|o| matches!(o, Outcome::Failed(_)))
    }
    pub fn busy(&self) -> Vec<usize> {
        self.indices(|o| matches!(o, Outcome::Busy(_)))
    }
    fn indices(&self, keep: impl Fn(&Outcome) -> bool) -> Vec<usize> {
        self.outcomes
            .iter()
            .filter(|(_, o)| keep(o))
            .map(|(i, _)| *i)
            .collect()
    }
}

fn pool(threads: Option<usize>) -> Result<rayon::ThreadPool> {
    let mut builder = rayon::ThreadPoolBuilder::new();
    if let Some(n) = threads {
        builder = builder.num_threads(n);
    }
    builder
        .build()
        .map_err(|e| Error::Usage(format!("cannot start a thread pool: {e}")))
}

/// Run every unfinished cell of `grid` (every cell with `fresh`).
///
/// Runs may overlap (two `grid run`s, the tasks of a Slurm array): each cell is claimed
/// ([`Claim`]) before it starts, a cell another process holds is reported
/// [`Outcome::Busy`] and not started again, and a cell another process finished
/// meanwhile is skipped.
pub fn run_grid(grid: &Grid, options: &RunOptions) -> Result<RunReport> {
    options.check()?;
    let start = Instant::now();
    let started_at = SystemTime::now();
    let dir = shard::cells_dir(&options.out, &grid.name);
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    remove_stale_temporaries(&dir);
    let commit = git_commit();
    let threads = options
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    // Shared mode: every cell runs in one pool of `threads` threads.
    let shared = match options.cell_threads {
        None => Some(pool(Some(threads))?),
        Some(_) => None,
    };

    let mut outcomes: Vec<(usize, Outcome)> = Vec::new();
    let mut todo: Vec<&Cell> = Vec::new();
    for cell in &grid.cells {
        if !options.fresh && shard::finished(&options.out, grid, cell).is_some() {
            outcomes.push((cell.index, Outcome::Skipped));
        } else {
            todo.push(cell);
        }
    }
    let progress = Progress::new(&grid.name, todo.len() as u64, options.progress);
    progress.println(&format!(
        "{}: {} cells, {} to run, {} finished already; {threads} threads",
        grid.name,
        grid.cells.len(),
        todo.len(),
        outcomes.len()
    ));
    // `threads` plain threads take cells from a shared counter; each runs its cell in a
    // rayon pool of its own (or the shared one). Not a rayon loop: a rayon worker that
    // waits for a job in another pool steals work of its own pool meanwhile, so a cell's
    // wall time would include other cells.
    let done = Mutex::new(Vec::new());
    let next = AtomicUsize::new(0);
    let worker = || -> Result<()> {
        let own = match options.cell_threads {
            Some(n) => Some(pool(Some(n))?),
            None => None,
        };
        let cell_pool = own
            .as_ref()
            .or(shared.as_ref())
            .expect("one of the two pools");
        while let Some(cell) = todo.get(next.fetch_add(1, Ordering::Relaxed)) {
            let bar = progress.start_cell(&cell.label());
            let outcome = match claim(grid, cell, options, started_at) {
                Ok(Claimed::Go { claim, moved }) => {
                    if let Some(note) = moved {
                        progress.println(&format!("  corrupt   #{} {note}", cell.index));
                    }
                    let ran = execute(grid, cell, cell_pool, &options.out, &commit, bar.clone());
                    drop(claim);
                    match ran {
                        Ok(shard) => Outcome::Ran(shard.status),
                        Err(e) => Outcome::Failed(e.to_string()),
                    }
                }
                Ok(Claimed::Not(outcome)) => outcome,
                Err(e) => Outcome::Failed(e.to_string()),
            };
            let label = cell.label();
            let line = match &outcome {
                Outcome::Ran(Status::Ok) => format!("  ok        #{} {label}", cell.index),
                Outcome::Ran(Status::Diverged { reason }) => {
                    format!("  diverged  #{} {label}: {reason}", cell.index)
                }
                Outcome::Failed(e) => format!("  FAILED    #{} {e}", cell.index),
                Outcome::Busy(holder) => format!(
                    "  busy      #{} {label}: another process computes it ({holder}); not started again",
                    cell.index
                ),
                Outcome::Skipped => format!(
                    "  skipped   #{} {label}: another process finished it meanwhile",
                    cell.index
                ),
            };
            progress.finish_cell(bar, &line);
            done.lock()
                .unwrap_or_else(|p| p.into_inner())
                .push((cell.index, outcome));
        }
        Ok(())
    };
    let results: Vec<Result<()>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads.min(todo.len().max(1)))
            .map(|_| scope.spawn(worker))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(Error::Usage("a runner thread panicked".into())))
            })
            .collect()
    });
    results.into_iter().collect::<Result<Vec<()>>>()?;
    progress.finish();
    outcomes.extend(done.into_inner().unwrap_or_else(|p| p.into_inner()));
    outcomes.sort_by_key(|(i, _)| *i);
    Ok(RunReport {
        grid: grid.name.clone(),
        outcomes,
        threads,
        wall_seconds: start.elapsed().as_secs_f64(),
    })
}

/// Run cell `index` alone (a cluster array job's unit), unless it is finished and not
/// `fresh`.
pub fn run_cell(grid: &Grid, index: usize, options: &RunOptions) -> Result<Outcome> {
    let cell = grid.cells.get(index).ok_or_else(|| {
        Error::Usage(format!(
            "{}: no cell {index} (the grid has cells 0 to {})",
            grid.file.display(),
            grid.cells.len().saturating_sub(1)
        ))
    })?;
    options.check()?;
    if !options.fresh && shard::finished(&options.out, grid, cell).is_some() {
        return Ok(Outcome::Skipped);
    }
    let (claim, moved) = match claim(grid, cell, options, SystemTime::now())? {
        Claimed::Go { claim, moved } => (claim, moved),
        Claimed::Not(outcome) => return Ok(outcome),
    };
    if let Some(note) = moved {
        eprintln!("corrupt: {note}");
    }
    let pool = pool(options.threads)?;
    let commit = git_commit();
    let shard = execute(grid, cell, &pool, &options.out, &commit, None)?;
    drop(claim);
    Ok(Outcome::Ran(shard.status))
}

/// Whether this process may compute a cell.
enum Claimed {
    /// Yes, holding its claim; an unusable file that was at its shard path was moved
    /// aside (what and where).
    Go { claim: Claim, moved: Option<String> },
    /// No: another process holds it ([`Outcome::Busy`]) or finished it since this run
    /// began ([`Outcome::Skipped`]).
    Not(Outcome),
}

/// Claim `cell`, then look again at its shard: another process may have finished it
/// between this run's first look and the claim (with `fresh`: a shard file written since
/// `started_at`, by its modification time, which has the file system's sub-second
/// resolution where a shard's `finished_at` has whole seconds).
fn claim(
    grid: &Grid,
    cell: &Cell,
    options: &RunOptions,
    started_at: SystemTime,
) -> Result<Claimed> {
    let path = shard::shard_path(&options.out, grid, cell);
    let claim = match Claim::take(&path)? {
        Ok(claim) => claim,
        Err(holder) => return Ok(Claimed::Not(Outcome::Busy(holder))),
    };
    let moved = match shard::look(&options.out, grid, cell) {
        Found::Finished(_) if !options.fresh || written_since(&path, started_at) => {
            return Ok(Claimed::Not(Outcome::Skipped))
        }
        Found::Finished(_) | Found::Absent => None,
        // Only a file is moved: a directory or other non-file at the shard path is the
        // user's, left in place, and the cell fails writing its shard with that path named.
        Found::Unusable(_) if !std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_file()) => None,
        Found::Unusable(why) => {
            let to = shard::move_aside(&options.out, grid, cell)?;
            Some(format!(
                "{}: {why}; moved to {}, recomputing",
                cell.label(),
                to.display()
            ))
        }
    };
    Ok(Claimed::Go { claim, moved })
}

/// Whether the file at `path` was last modified at or after `time`.
fn written_since(path: &Path, time: SystemTime) -> bool {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .is_ok_and(|modified| modified >= time)
}

/// Run one cell in `pool` and write its shard under `out`.
fn execute(
    grid: &Grid,
    cell: &Cell,
    pool: &rayon::ThreadPool,
    out: &Path,
    commit: &str,
    bar: Option<indicatif::ProgressBar>,
) -> Result<Shard> {
    let spec = grid.experiment_of(cell);
    let start = Instant::now();
    let run = || {
        let mut ctx = CellContext::new(bar);
        let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
            spec.adapter
                .run(&spec.environment, &cell.config, cell.seed, &mut ctx)
        }));
        (result, ctx, rayon::current_num_threads())
    };
    let (result, ctx, threads) = pool.install(run);
    let wall_seconds = start.elapsed().as_secs_f64();
    let status = match result {
        Ok(Ok(())) => match first_non_finite(&ctx) {
            Some(reason) => Status::Diverged { reason },
            None => Status::Ok,
        },
        Ok(Err(CellError::Diverged(reason))) => Status::Diverged { reason },
        Ok(Err(CellError::Failed(source))) => {
            return Err(Error::Cell {
                cell: format!("{} cell {} {}", grid.name, cell.index, cell.label()),
                source,
            })
        }
        Err(panic) => {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic".to_string());
            return Err(Error::Usage(format!(
                "{} cell {} {}: panicked: {message}",
                grid.name,
                cell.index,
                cell.label()
            )));
        }
    };
    let shard = Shard {
        format: shard::FORMAT,
        grid: grid.name.clone(),
        experiment: cell.experiment_name.clone(),
        algorithm: spec.algorithm.clone(),
        environment: spec.environment.clone(),
        index: cell.index,
        sweep: cell.sweep.iter().cloned().collect(),
        setting: cell.setting_label(),
        config: cell.config.clone(),
        seed: cell.seed,
        config_hash: cell.config_hash.clone(),
        setting_hash: cell.setting_hash.clone(),
        git_commit: commit.to_string(),
        wall_seconds,
        threads,
        finished_at: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
        status,
        metrics: ctx.into_metrics(),
    };
    shard::write(&shard::shard_path(out, grid, cell), &shard)?;
    Ok(shard)
}

fn first_non_finite(ctx: &CellContext) -> Option<String> {
    ctx.metrics()
        .iter()
        .find(|m| !m.value.is_finite())
        .map(|m| format!("{} at step {} is {}", m.metric, m.step, m.value))
}

/// Temporary files left by a run killed in the middle of a write, an hour old or more
/// (younger ones may belong to a cell running now in another process).
fn remove_stale_temporaries(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age.as_secs() >= 3600);
        if name.starts_with('.') && name.ends_with(".tmp") && old {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}
