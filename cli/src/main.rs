//! The `policy-param` command line.
//!
//! Exit codes: 0 success, 1 a check ran and failed (a trace disagrees, `compare` found
//! differences, a grid had failed cells), 2 the command could not run (bad arguments,
//! unreadable or malformed input, an invalid grid file).

mod grid;
mod train;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{anyhow, bail};
use clap::{Parser, Subcommand};
use policy_param::env::trace::{check_trace, TraceReport};
use policy_param::Error;
use policy_param_harness::methods::{self, Better, Request, Step};

#[derive(Parser)]
#[command(
    name = "policy-param",
    version,
    about = "Policy Parametrization Methods: environments, experiments, comparisons"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Environment checks.
    Env {
        #[command(subcommand)]
        command: EnvCommand,
    },
    /// Experiment grids (experiments/*.toml): run, list, gather into tables and figures.
    Grid {
        #[command(subcommand)]
        command: grid::GridCommand,
    },
    /// Train one online agent on one environment into a directory, through the same code
    /// as a grid cell: config.json, monitor.csv (one row per training episode),
    /// evaluations.csv and checkpoint.json (at each evaluation point). Run it again on the
    /// same directory to resume an interrupted run.
    Train(train::TrainArgs),
    /// Evaluate the policy saved by `train` in DIR: mean and standard deviation of the
    /// deterministic policy's undiscounted return.
    Eval(train::EvalArgs),
    /// List an algorithm's keys with their defaults, ranges and meanings (no argument:
    /// list the algorithms).
    Keys {
        /// The algorithm (e.g. sac).
        algorithm: Option<String>,
    },
    /// Compare two result directories cell by cell (shards, or the committed tables when
    /// a directory has no shards): per grid identical, within tolerance or different;
    /// exit 0 when nothing differs beyond tolerance, 1 when something does, 2 when they
    /// could not be compared. Timing metrics are skipped unless --include-timing.
    ///
    /// With --stats and one directory: compare the settings of each grid on one metric
    /// (mean and IQM with bootstrap intervals, probability of improvement over a baseline).
    Compare {
        /// First result directory (e.g. results).
        dir_a: PathBuf,
        /// Second result directory (not with --stats).
        #[arg(required_unless_present = "stats")]
        dir_b: Option<PathBuf>,
        /// Relative tolerance: values agree when |a − b| ≤ atol + rtol·max(|a|, |b|).
        #[arg(long, default_value_t = 0.0)]
        rtol: f64,
        /// Absolute tolerance.
        #[arg(long, default_value_t = 0.0)]
        atol: f64,
        /// Compare timing metrics (…_seconds, …_per_second) too.
        #[arg(long)]
        include_timing: bool,
        /// Statistics of the settings of DIR_A's grids on --metric (no second directory).
        #[arg(long, conflicts_with_all = ["dir_b", "rtol", "atol", "include_timing"], requires = "metric")]
        stats: bool,
        /// The metric compared by --stats (e.g. eval_return).
        #[arg(long)]
        metric: Option<String>,
        /// The step compared by --stats: a number, or `last` (each cell's last step).
        #[arg(long, default_value = "last")]
        step: Step,
        /// The setting the others are compared with (`experiment` or `experiment[k=v]`);
        /// default: each grid's first setting.
        #[arg(long)]
        baseline: Option<String>,
        /// Whether higher or lower values are better (default: guessed from the metric's
        /// name: errors, losses and times are better low).
        #[arg(long, value_enum)]
        better: Option<BetterArg>,
        /// Bootstrap resamples (rliable's default, 50 000).
        #[arg(long, default_value_t = 50_000)]
        reps: usize,
        /// Only this grid (default: every grid in DIR_A that records the metric).
        #[arg(long)]
        grid: Option<String>,
    },
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum BetterArg {
    Higher,
    Lower,
}

#[derive(Subcommand)]
enum EnvCommand {
    /// Replay Gymnasium trace CSVs (written by scripts/gym_traces.py) on our environments.
    ///
    /// Prints a summary per environment, then as last line
    /// `rows=N max_abs_err=X flag_mismatches=M`; exits 1 when an observation or reward
    /// differs by more than the tolerance or a flag differs.
    CheckTrace {
        /// Trace files.
        #[arg(required = true, value_name = "FILE.csv")]
        files: Vec<PathBuf>,
        /// Largest absolute difference accepted in observations and rewards.
        #[arg(long, default_value_t = 1e-5)]
        tolerance: f64,
    },
}

/// A command's verdict when it ran to the end.
pub(crate) enum Verdict {
    Pass,
    Fail,
}

fn main() -> ExitCode {
    // Output piped into `head` and the like: end quietly when the reader goes away, as a
    // Unix tool does, instead of panicking on the failed write.
    #[cfg(unix)]
    // SAFETY: called before any thread starts; SIG_DFL is a valid action for SIGPIPE.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // clap prints help and version to stdout with success, usage errors with code 2.
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2));
        }
    };
    match run(cli) {
        Ok(Verdict::Pass) => ExitCode::SUCCESS,
        Ok(Verdict::Fail) => ExitCode::from(1),
        Err(e) => {
            // Errors may quote input (a key, a value, a path): never a megabyte of it.
            eprintln!(
                "error: {}",
                policy_param_harness::error::abbreviate(&e.to_string())
            );
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<Verdict> {
    match cli.command {
        Command::Env {
            command: EnvCommand::CheckTrace { files, tolerance },
        } => check_traces(&files, tolerance),
        Command::Grid { command } => grid::run(command),
        Command::Train(args) => train::train(args),
        Command::Eval(args) => train::eval(args),
        Command::Keys { algorithm } => train::keys(algorithm),
        Command::Compare {
            dir_a,
            dir_b,
            rtol,
            atol,
            include_timing,
            stats,
            metric,
            step,
            baseline,
            better,
            reps,
            grid,
        } => {
            if stats {
                let metric = metric.expect("clap requires --metric with --stats");
                let mut request = Request::new(&metric, step);
                request.baseline = baseline;
                request.bootstrap.reps = reps;
                if let Some(b) = better {
                    request.better = match b {
                        BetterArg::Higher => Better::Higher,
                        BetterArg::Lower => Better::Lower,
                    };
                }
                return compare_stats(&dir_a, grid.as_deref(), &request);
            }
            let dir_b = dir_b.expect("clap requires DIR_B without --stats");
            let tolerance = policy_param_harness::compare::Tolerance {
                rtol,
                atol,
                include_timing,
            };
            let comparison =
                policy_param_harness::compare::compare_dirs(&dir_a, &dir_b, &tolerance)?;
            print!("{}", comparison.render());
            Ok(if comparison.identical() {
                Verdict::Pass
            } else {
                Verdict::Fail
            })
        }
    }
}

/// The most bootstrap resamples `compare --stats` draws: 100 times rliable's default.
const MAX_REPS: usize = 5_000_000;

/// `compare --stats`: each grid of `dir` that records the metric, its settings compared.
fn compare_stats(dir: &Path, only: Option<&str>, request: &Request) -> anyhow::Result<Verdict> {
    if !(100..=MAX_REPS).contains(&request.bootstrap.reps) {
        bail!(
            "--reps must be between 100 and {MAX_REPS}, got {}",
            request.bootstrap.reps
        );
    }
    let grids = policy_param_harness::results::read_dir(dir)?;
    if let Some(name) = only {
        if !grids.contains_key(name) {
            bail!(
                "{}: no results of grid {name:?} (grids: {})",
                dir.display(),
                grids.keys().cloned().collect::<Vec<_>>().join(", ")
            );
        }
    }
    let mut printed = 0;
    for (name, results) in &grids {
        if only.is_some_and(|o| o != name) {
            continue;
        }
        if let Some(stats) = methods::compare_settings(name, &results.cells, request)? {
            if printed > 0 {
                println!();
            }
            print!("{}", stats.render(request));
            printed += 1;
        }
    }
    if printed == 0 {
        bail!(
            "{}: no grid records the metric {:?}",
            dir.display(),
            request.metric
        );
    }
    Ok(Verdict::Pass)
}

fn check_traces(files: &[PathBuf], tolerance: f64) -> anyhow::Result<Verdict> {
    if !(tolerance.is_finite() && tolerance >= 0.0) {
        bail!("--tolerance must be a finite number ≥ 0, got {tolerance}");
    }
    let mut total = TraceReport::default();
    for file in files {
        let report = check_trace(file).map_err(|e| match e {
            // The other errors name the file already.
            Error::UnknownEnv { .. } => anyhow!("{}: {e}", file.display()),
            e => e.into(),
        })?;
        total.merge(report);
    }
    for (env, s) in &total.per_env {
        println!(
            "{env}: rows={} max_abs_err={:e} flag_mismatches={}",
            s.rows, s.max_abs_err, s.flag_mismatches
        );
    }
    if let Some(w) = total.worst.as_ref().filter(|w| w.abs_err() > 0.0) {
        println!(
            "largest difference: {} line {} ({} seed {} t {}) {}: gymnasium {:?}, ours {:?}",
            w.source, w.line, w.env, w.seed, w.t, w.quantity, w.expected, w.got
        );
    }
    if let Some(f) = &total.first_flag_mismatch {
        println!(
            "first flag mismatch: {} line {} ({} seed {} t {}) {}: gymnasium {}, ours {}",
            f.source, f.line, f.env, f.seed, f.t, f.flag, f.expected, !f.expected
        );
    }
    println!(
        "rows={} max_abs_err={:e} flag_mismatches={}",
        total.rows, total.max_abs_err, total.flag_mismatches
    );
    Ok(if total.agrees(tolerance) {
        Verdict::Pass
    } else {
        Verdict::Fail
    })
}
