//! Grids on a Slurm cluster: `policy-param grid submit` and `grid status`.
//!
//! A grid's unfinished cells become one Slurm job array whose task ids are the cells'
//! indices (`--array=3,7-9`): task `i` runs `policy-param grid cell FILE --index i` with
//! `--threads $SLURM_CPUS_PER_TASK`, which writes the cell's shard into `OUT/<grid>/cells/`
//! exactly as a local run does. Nothing else sits between the grid file and the scheduler:
//! the submitted script is [`sbatch_script`], a pure function of the grid's name, files,
//! the indices and the options.
//!
//! Under `OUT/<grid>/`, besides `cells/`:
//! - `logs/<job>_<index>.out`: each task's stdout and stderr (`%A_%a`);
//! - `slurm/<job>.sbatch` and `slurm/<job>.json`: each submitted script and its record
//!   (job id, cells, options), written once `sbatch` has accepted the job;
//! - `slurm/tasks/<index>`: the marker a task leaves (`state=running` while it runs,
//!   `state=failed` with its exit code when the cell command failed; removed on success).
//!
//! [`status`] reads the shards (a cell with a shard of its config hash is finished,
//! whatever the scheduler says), then `squeue` (queued and running tasks of the recorded
//! jobs), `sacct` when accounting is enabled (failed, timed out, out of memory, cancelled),
//! and the task markers, which stand in for `sacct` where there is no accounting database
//! and also catch a task killed before it could record its exit (a running marker whose
//! job has left the queue).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};

use crate::config::Grid;
use crate::error::{Error, Result};
use crate::shard::{self, Status};

/// `sbatch` options of a submission.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlurmOptions {
    /// `--partition`; `None`: the cluster's default.
    pub partition: Option<String>,
    /// `--time` (`MM`, `HH:MM:SS`, `D-HH`, ...); `None`: the partition's default.
    pub time: Option<String>,
    /// `--cpus-per-task`: the cell's rayon pool (`grid cell --threads`). At least 1.
    pub cpus_per_task: usize,
    /// `--mem` (`4G`, `500M`); `None`: the partition's default.
    pub mem: Option<String>,
    /// Further `#SBATCH` lines, each one option as sbatch takes it (`--account=abc`).
    pub extra: Vec<String>,
}

impl Default for SlurmOptions {
    fn default() -> Self {
        SlurmOptions {
            partition: None,
            time: None,
            cpus_per_task: 1,
            mem: None,
            extra: Vec::new(),
        }
    }
}

/// Everything [`sbatch_script`] needs: no file system, no scheduler.
#[derive(Clone, Debug)]
pub struct ScriptSpec<'a> {
    /// The grid's name (the file stem).
    pub grid: &'a str,
    /// The grid file, absolute.
    pub grid_file: &'a Path,
    /// The result directory, absolute (shared between the login and compute nodes).
    pub out: &'a Path,
    /// The `policy-param` binary, absolute (built once, on the shared file system).
    pub binary: &'a Path,
    /// The working directory of the tasks (the repository: shards record its commit).
    pub workdir: &'a Path,
    /// The cells to run, by index.
    pub indices: &'a [usize],
    pub options: &'a SlurmOptions,
}

/// `OUT/<grid>/logs`: the tasks' logs.
pub fn logs_dir(out: &Path, grid: &str) -> PathBuf {
    out.join(grid).join("logs")
}

/// `OUT/<grid>/slurm`: submitted scripts and their records.
pub fn slurm_dir(out: &Path, grid: &str) -> PathBuf {
    out.join(grid).join("slurm")
}

/// `OUT/<grid>/slurm/tasks`: the markers the tasks leave.
pub fn tasks_dir(out: &Path, grid: &str) -> PathBuf {
    slurm_dir(out, grid).join("tasks")
}

/// The log of array task `index` of job `job`: `OUT/<grid>/logs/<job>_<index>.out`.
pub fn log_path(out: &Path, grid: &str, job: u64, index: usize) -> PathBuf {
    logs_dir(out, grid).join(format!("{job}_{index}.out"))
}

/// Sorted, distinct indices as a Slurm array list: `0-3,7,9-10`.
pub fn array_spec(indices: &[usize]) -> String {
    let mut sorted = indices.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut spec = String::new();
    let mut i = 0;
    while i < sorted.len() {
        let mut j = i;
        while j + 1 < sorted.len() && sorted[j + 1] == sorted[j] + 1 {
            j += 1;
        }
        if !spec.is_empty() {
            spec.push(',');
        }
        if j == i {
            let _ = write!(spec, "{}", sorted[i]);
        } else {
            let _ = write!(spec, "{}-{}", sorted[i], sorted[j]);
        }
        i = j + 1;
    }
    spec
}

/// The indices of a Slurm array list (`1,3-5`, `[1,3-5]`, with an optional `%N` throttle
/// and `:S` steps); `None` if it is not one.
pub fn parse_array_spec(spec: &str) -> Option<Vec<usize>> {
    let spec = spec.split('%').next()?;
    let spec = spec.trim().trim_start_matches('[').trim_end_matches(']');
    if spec.is_empty() {
        return None;
    }
    let mut indices = Vec::new();
    for part in spec.split(',') {
        let (range, step) = match part.split_once(':') {
            Some((r, s)) => (r, s.parse::<usize>().ok().filter(|s| *s > 0)?),
            None => (part, 1),
        };
        match range.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (a.parse::<usize>().ok()?, b.parse::<usize>().ok()?);
                if a > b {
                    return None;
                }
                indices.extend((a..=b).step_by(step));
            }
            None => indices.push(range.parse().ok()?),
        }
    }
    Some(indices)
}

/// A word quoted for bash: `'...'`, with `'` as `'\''`.
pub fn shell_quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

/// Check a value that goes on an `#SBATCH` line: one word, no quotes, no `%` (sbatch
/// would read it as a file name pattern in paths).
fn directive_value(what: &str, value: &str) -> Result<()> {
    if value.is_empty()
        || value
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '"' | '\'' | '%' | '#'))
    {
        return Err(Error::Usage(format!(
            "{what} {value:?} cannot go on an #SBATCH line: it must be one word without \
             spaces, quotes, '%' or '#'"
        )));
    }
    Ok(())
}

impl SlurmOptions {
    /// Check the options before anything is written or submitted.
    pub fn check(&self) -> Result<()> {
        if !(1..=crate::runner::MAX_THREADS).contains(&self.cpus_per_task) {
            return Err(Error::Usage(format!(
                "--cpus-per-task must be between 1 and {}, got {}",
                crate::runner::MAX_THREADS,
                self.cpus_per_task
            )));
        }
        for (what, value) in [
            ("--partition", &self.partition),
            ("--time", &self.time),
            ("--mem", &self.mem),
        ] {
            if let Some(v) = value {
                directive_value(what, v)?;
            }
        }
        for option in &self.extra {
            directive_value("--sbatch-option", option)?;
            if !option.starts_with('-') {
                return Err(Error::Usage(format!(
                    "--sbatch-option {option:?} is not an sbatch option (like --account=abc)"
                )));
            }
            let name = option.split('=').next().unwrap_or_default();
            if matches!(
                name,
                "--array" | "-a" | "--output" | "-o" | "--error" | "-e" | "--chdir" | "-D"
            ) {
                return Err(Error::Usage(format!(
                    "--sbatch-option {option}: {name} is set by `grid submit` itself"
                )));
            }
        }
        Ok(())
    }
}

/// The sbatch script of a job array running cells `spec.indices` of grid `spec.grid`:
/// one array task per cell, the task id being the cell index.
pub fn sbatch_script(spec: &ScriptSpec) -> Result<String> {
    spec.options.check()?;
    if spec.indices.is_empty() {
        return Err(Error::Usage(format!("{}: no cells to submit", spec.grid)));
    }
    for (what, path) in [
        ("the grid file", spec.grid_file),
        ("the result directory", spec.out),
        ("the policy-param binary", spec.binary),
        ("the working directory", spec.workdir),
    ] {
        if !path.is_absolute() {
            return Err(Error::Usage(format!(
                "{what} {} must be an absolute path in a batch script",
                path.display()
            )));
        }
    }
    let str_of = |what: &str, path: &Path| -> Result<String> {
        path.to_str()
            .map(str::to_string)
            .ok_or_else(|| Error::Usage(format!("{what} {} is not valid UTF-8", path.display())))
    };
    let logs = str_of("the log directory", &logs_dir(spec.out, spec.grid))?;
    let workdir = str_of("the working directory", spec.workdir)?;
    // These two go on #SBATCH lines.
    directive_value("the log directory", &logs)?;
    directive_value("the working directory", &workdir)?;
    let tasks = str_of("the task directory", &tasks_dir(spec.out, spec.grid))?;
    let grid_file = str_of("the grid file", spec.grid_file)?;
    let out = str_of("the result directory", spec.out)?;
    let binary = str_of("the policy-param binary", spec.binary)?;
    let o = spec.options;

    let mut s = String::new();
    let mut line = |l: &str| {
        s.push_str(l);
        s.push('\n');
    };
    line("#!/bin/bash");
    line(&format!(
        "# policy-param grid submit: {} cells of grid {} ({grid_file}).",
        spec.indices.len(),
        spec.grid
    ));
    line("# One array task per cell; the task id is the cell index (`policy-param grid list`).");
    line(&format!("#SBATCH --job-name=pp-{}", spec.grid));
    line(&format!("#SBATCH --array={}", array_spec(spec.indices)));
    line("#SBATCH --ntasks=1");
    line(&format!("#SBATCH --cpus-per-task={}", o.cpus_per_task));
    if let Some(p) = &o.partition {
        line(&format!("#SBATCH --partition={p}"));
    }
    if let Some(t) = &o.time {
        line(&format!("#SBATCH --time={t}"));
    }
    if let Some(m) = &o.mem {
        line(&format!("#SBATCH --mem={m}"));
    }
    for x in &o.extra {
        line(&format!("#SBATCH {x}"));
    }
    line(&format!("#SBATCH --output={logs}/%A_%a.out"));
    line(&format!("#SBATCH --chdir={workdir}"));
    line("");
    line("set -u");
    line("index=\"$SLURM_ARRAY_TASK_ID\"");
    line("threads=\"${SLURM_CPUS_PER_TASK:-1}\"");
    line("export RAYON_NUM_THREADS=\"$threads\"");
    line(&format!("tasks={}", shell_quote(&tasks)));
    line(&format!(
        "log={}/\"${{SLURM_ARRAY_JOB_ID}}_${{index}}.out\"",
        shell_quote(&logs)
    ));
    line("# The task's marker for `grid status`: running now; failed with its exit code;");
    line("# removed when the cell's shard is written.");
    line("mark() {");
    line("    mkdir -p \"$tasks\" &&");
    line("        printf '%s\\n' \"state=$1\" \"job=$SLURM_ARRAY_JOB_ID\" \"index=$index\" \"host=$(hostname)\" \\");
    line("            \"time=$(date +%s)\" \"exit=$2\" \"log=$log\" >\"$tasks/.$index.$$.tmp\" &&");
    line("        mv -f \"$tasks/.$index.$$.tmp\" \"$tasks/$index\"");
    line("}");
    line("mark running ''");
    line(&format!(
        "{} grid cell {} --index \"$index\" --threads \"$threads\" --out {}",
        shell_quote(&binary),
        shell_quote(&grid_file),
        shell_quote(&out)
    ));
    line("status=$?");
    line(
        "if [ \"$status\" -eq 0 ]; then rm -f \"$tasks/$index\"; else mark failed \"$status\"; fi",
    );
    line("exit \"$status\"");
    Ok(s)
}

/// What was submitted: `OUT/<grid>/slurm/<job>.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Submission {
    pub job_id: u64,
    pub grid: String,
    pub grid_file: String,
    pub out: String,
    /// The array list, as submitted.
    pub array: String,
    pub cells: usize,
    pub cpus_per_task: usize,
    pub partition: Option<String>,
    pub time: Option<String>,
    pub mem: Option<String>,
    pub extra: Vec<String>,
    /// Seconds since the Unix epoch.
    pub submitted_at: u64,
}

/// Every recorded submission of `grid` under `out`, by job id.
pub fn submissions(out: &Path, grid: &str) -> Result<Vec<Submission>> {
    let dir = slurm_dir(out, grid);
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(&dir, e)),
    };
    let mut all = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|x| x == "json") {
            let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
            let s: Submission = serde_json::from_str(&text)
                .map_err(|e| Error::malformed(&path, format!("not a submission record: {e}")))?;
            all.push(s);
        }
    }
    all.sort_by_key(|s| s.job_id);
    Ok(all)
}

/// A task of a job array as `squeue` or `sacct` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskState {
    pub job: u64,
    pub index: usize,
    /// The state's first word (`PENDING`, `RUNNING`, `FAILED`, `CANCELLED`, ...).
    pub state: String,
    /// `sacct`'s `ExitCode` (`2:0`), empty from `squeue`.
    pub exit: String,
}

/// Lines `job|task|state` (`squeue -h -r -o '%F|%K|%T'`) or `job_task|state|exit`
/// (`sacct -n -P -X -o JobID,State,ExitCode`); lines of other jobs, of whole jobs and of
/// still unsplit pending ranges (`12_[3-5]`) are left out.
pub fn parse_task_states(text: &str, jobs: &[u64]) -> Vec<TaskState> {
    let mut states = Vec::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.trim().split('|').collect();
        let (job, index, state, exit) = match fields.as_slice() {
            [job_task, state, exit] if job_task.contains('_') => {
                let (job, task) = job_task.split_once('_').unwrap_or_default();
                (job, task, *state, *exit)
            }
            [job, task, state] => (*job, *task, *state, ""),
            _ => continue,
        };
        let (Ok(job), Ok(index)) = (job.parse::<u64>(), index.parse::<usize>()) else {
            continue;
        };
        if !jobs.contains(&job) {
            continue;
        }
        states.push(TaskState {
            job,
            index,
            state: state
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_string(),
            exit: exit.to_string(),
        });
    }
    states
}

/// A task's marker, `OUT/<grid>/slurm/tasks/<index>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Marker {
    pub index: usize,
    pub job: u64,
    /// `running` or `failed`.
    pub state: String,
    pub exit: String,
    pub host: String,
    pub log: String,
}

impl Marker {
    /// `key=value` lines as the batch script writes them; `None` if they are not a marker.
    pub fn parse(text: &str) -> Option<Marker> {
        let map: BTreeMap<&str, &str> = text.lines().filter_map(|l| l.split_once('=')).collect();
        Some(Marker {
            index: map.get("index")?.parse().ok()?,
            job: map.get("job")?.parse().ok()?,
            state: map.get("state")?.to_string(),
            exit: map.get("exit").unwrap_or(&"").to_string(),
            host: map.get("host").unwrap_or(&"").to_string(),
            log: map.get("log").unwrap_or(&"").to_string(),
        })
    }
}

/// The markers under `OUT/<grid>/slurm/tasks/`.
pub fn markers(out: &Path, grid: &str) -> Vec<Marker> {
    let Ok(entries) = std::fs::read_dir(tasks_dir(out, grid)) else {
        return Vec::new();
    };
    let mut all: Vec<Marker> = entries
        .flatten()
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .filter_map(|t| Marker::parse(&t))
        .collect();
    all.sort_by_key(|m| m.index);
    all
}

/// Where a cell stands.
#[derive(Clone, Debug, PartialEq)]
pub enum CellState {
    /// Its shard is there (status ok or diverged).
    Finished(Status),
    /// Waiting in the queue.
    Queued { job: u64 },
    /// Running now (from `squeue`, or from its marker when there is no `squeue`).
    Running { job: u64, host: String },
    /// Its last task ended without a shard: why, and its log.
    Failed {
        job: u64,
        reason: String,
        log: PathBuf,
    },
    /// No shard, nothing queued or running, no failed task on record.
    Missing,
    /// A file at its shard path that is not its shard (truncated, foreign), and no task
    /// on record: why. The task that recomputes it moves the file aside.
    Corrupt { reason: String },
}

impl CellState {
    pub fn name(&self) -> &'static str {
        match self {
            CellState::Finished(_) => "finished",
            CellState::Queued { .. } => "queued",
            CellState::Running { .. } => "running",
            CellState::Failed { .. } => "failed",
            CellState::Missing => "missing",
            CellState::Corrupt { .. } => "corrupt",
        }
    }
}

/// What the scheduler told [`status`] (or could not).
#[derive(Clone, Debug, Default)]
pub struct Evidence {
    /// `squeue`'s tasks of the recorded jobs; `None` when it could not be asked.
    pub queue: Option<Vec<TaskState>>,
    /// `sacct`'s tasks of the recorded jobs; `None` when it could not be asked (no
    /// accounting database).
    pub accounting: Option<Vec<TaskState>>,
    pub markers: Vec<Marker>,
    /// One line per source: what was asked and what came back.
    pub notes: Vec<String>,
}

/// The state of a cell without a shard, from the scheduler's evidence. Pure: the rules
/// of `grid status`.
pub fn classify(index: usize, out: &Path, grid: &str, evidence: &Evidence) -> CellState {
    let latest = |states: &Option<Vec<TaskState>>| {
        states.as_ref().and_then(|s| {
            s.iter()
                .filter(|t| t.index == index)
                .max_by_key(|t| t.job)
                .cloned()
        })
    };
    if let Some(t) = latest(&evidence.queue) {
        return if t.state == "PENDING" {
            CellState::Queued { job: t.job }
        } else {
            CellState::Running {
                job: t.job,
                host: String::new(),
            }
        };
    }
    let accounted = latest(&evidence.accounting);
    let marker = evidence.markers.iter().find(|m| m.index == index);
    // The later job has the last word; for the same job sacct knows more (time limits,
    // memory) than a marker left by a task that was killed.
    let from_accounting = match (&accounted, marker) {
        (Some(a), Some(m)) => a.job >= m.job,
        (Some(_), None) => true,
        (None, _) => false,
    };
    if from_accounting {
        let a = accounted.expect("accounted");
        let failed = matches!(
            a.state.as_str(),
            "FAILED"
                | "TIMEOUT"
                | "OUT_OF_MEMORY"
                | "CANCELLED"
                | "NODE_FAIL"
                | "PREEMPTED"
                | "BOOT_FAIL"
                | "DEADLINE"
        );
        return if failed {
            CellState::Failed {
                job: a.job,
                reason: format!("{} (exit code {}, from sacct)", a.state, a.exit),
                log: log_path(out, grid, a.job, index),
            }
        } else if matches!(a.state.as_str(), "RUNNING" | "PENDING" | "COMPLETING") {
            // Between squeue and sacct.
            CellState::Running {
                job: a.job,
                host: String::new(),
            }
        } else {
            // COMPLETED without a shard: the grid file changed under the job.
            CellState::Missing
        };
    }
    let Some(m) = marker else {
        return CellState::Missing;
    };
    let log = if m.log.is_empty() {
        log_path(out, grid, m.job, index)
    } else {
        PathBuf::from(&m.log)
    };
    match (m.state.as_str(), evidence.queue.is_some()) {
        ("failed", _) => CellState::Failed {
            job: m.job,
            reason: format!("the cell command exited with code {} (task marker)", m.exit),
            log,
        },
        // Marked running, and not in the queue any more: killed before it could record
        // its exit.
        ("running", true) => CellState::Failed {
            job: m.job,
            reason: "the task stopped without recording an exit code (killed: time limit, \
                     memory, node failure or scancel; task marker, not in squeue)"
                .into(),
            log,
        },
        ("running", false) => CellState::Running {
            job: m.job,
            host: m.host.clone(),
        },
        _ => CellState::Missing,
    }
}

/// Every cell of a grid and where it stands.
#[derive(Clone, Debug)]
pub struct GridStatus {
    pub grid: String,
    /// `(index, state)` in index order.
    pub cells: Vec<(usize, CellState)>,
    /// Tasks of the grid's jobs in `squeue` (also those whose cell just wrote its shard
    /// and that are still finishing).
    pub tasks_in_queue: usize,
    pub notes: Vec<String>,
}

impl GridStatus {
    pub fn count(&self, name: &str) -> usize {
        self.cells.iter().filter(|(_, s)| s.name() == name).count()
    }

    pub fn indices(&self, name: &str) -> Vec<usize> {
        self.cells
            .iter()
            .filter(|(_, s)| s.name() == name)
            .map(|(i, _)| *i)
            .collect()
    }

    pub fn all_finished(&self) -> bool {
        self.count("finished") == self.cells.len()
    }

    /// Cells queued or running.
    pub fn in_flight(&self) -> usize {
        self.count("queued") + self.count("running")
    }

    /// Is anything of the grid's jobs left to happen: a cell queued or running, or a task
    /// still in the queue?
    pub fn busy(&self) -> bool {
        self.in_flight() > 0 || self.tasks_in_queue > 0
    }

    /// The summary line.
    pub fn summary(&self) -> String {
        let diverged = self
            .cells
            .iter()
            .filter(|(_, s)| matches!(s, CellState::Finished(Status::Diverged { .. })))
            .count();
        format!(
            "{}: {} cells: {} finished ({diverged} diverged), {} running, {} queued, {} failed, {} missing{}",
            self.grid,
            self.cells.len(),
            self.count("finished"),
            self.count("running"),
            self.count("queued"),
            self.count("failed"),
            self.count("missing"),
            match self.count("corrupt") {
                0 => String::new(),
                n => format!(", {n} corrupt"),
            }
        )
    }

    /// The summary line, a line per failed or running cell, index lists of queued and
    /// missing cells, and the notes on the sources.
    pub fn render(&self, grid: &Grid) -> String {
        let mut s = self.summary();
        s.push('\n');
        for (index, state) in &self.cells {
            let label = grid
                .cells
                .get(*index)
                .map(|c| c.label())
                .unwrap_or_default();
            match state {
                CellState::Failed { job, reason, log } => {
                    let _ = writeln!(
                        s,
                        "  failed   #{index} {label}: job {job}_{index}: {reason}; log {}",
                        log.display()
                    );
                }
                CellState::Running { job, host } => {
                    let on = if host.is_empty() {
                        String::new()
                    } else {
                        format!(" on {host}")
                    };
                    let _ = writeln!(s, "  running  #{index} {label}: job {job}_{index}{on}");
                }
                CellState::Corrupt { reason } => {
                    let _ = writeln!(s, "  corrupt  #{index} {label}: {reason}");
                }
                _ => {}
            }
        }
        for name in ["queued", "missing"] {
            let indices = self.indices(name);
            if !indices.is_empty() {
                let _ = writeln!(s, "  {name:<8} {}", array_spec(&indices));
            }
        }
        for note in &self.notes {
            let _ = writeln!(s, "  ({note})");
        }
        s
    }
}

/// Is `program` an executable file in a directory of `PATH`?
pub fn on_path(program: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|dir| {
            std::fs::metadata(dir.join(program))
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
    })
}

/// Run a scheduler command: its stdout, or the first line of what it said on failure.
fn query(program: &str, args: &[&str]) -> std::result::Result<String, String> {
    let output = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{program}: {e}"))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let first = stderr
            .lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("no message");
        Err(format!("{} ({})", first.trim(), output.status))
    }
}

/// `jobs` as the comma-separated list `tool` takes (`None` for no jobs: nothing to ask);
/// `Err` if `tool` is not on PATH.
fn job_list(tool: &str, jobs: &[u64]) -> std::result::Result<Option<String>, String> {
    if !on_path(tool) {
        return Err(format!("{tool} is not on PATH"));
    }
    if jobs.is_empty() {
        return Ok(None);
    }
    let list = jobs
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(",");
    Ok(Some(list))
}

/// The queued and running tasks of `jobs`, from `squeue`; `Err` with why not.
fn squeue(jobs: &[u64]) -> std::result::Result<Vec<TaskState>, String> {
    let Some(list) = job_list("squeue", jobs)? else {
        return Ok(Vec::new());
    };
    match query(
        "squeue",
        &[
            "--noheader",
            "--array",
            "--jobs",
            &list,
            "--format=%F|%K|%T",
        ],
    ) {
        Ok(text) => Ok(parse_task_states(&text, jobs)),
        // A single job id the controller has forgotten.
        Err(e) if e.contains("Invalid job id") => Ok(Vec::new()),
        Err(e) => Err(format!("squeue failed: {e}")),
    }
}

/// The tasks of `jobs` from `sacct`; `Err` with why not (no accounting database).
fn sacct(jobs: &[u64]) -> std::result::Result<Vec<TaskState>, String> {
    let Some(list) = job_list("sacct", jobs)? else {
        return Ok(Vec::new());
    };
    let text = query(
        "sacct",
        &[
            "--noheader",
            "--parsable2",
            "--allocations",
            "--jobs",
            &list,
            "--format=JobID,State,ExitCode",
        ],
    )?;
    Ok(parse_task_states(&text, jobs))
}

/// Ask `squeue` and `sacct` about the recorded jobs of `grid`, and read the markers.
pub fn evidence(out: &Path, grid: &str) -> Result<Evidence> {
    let jobs: Vec<u64> = submissions(out, grid)?.iter().map(|s| s.job_id).collect();
    let mut e = Evidence {
        markers: markers(out, grid),
        ..Evidence::default()
    };
    let described = |jobs: &[u64]| match jobs {
        [one] => format!("job {one}"),
        many => format!(
            "jobs {}",
            many.iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    if jobs.is_empty() {
        e.notes
            .push("no Slurm jobs recorded for this grid: shards only".into());
        return Ok(e);
    }
    match squeue(&jobs) {
        Ok(q) => {
            e.notes.push(format!(
                "squeue: {} tasks queued or running of {}",
                q.len(),
                described(&jobs)
            ));
            e.queue = Some(q);
        }
        Err(why) => e.notes.push(format!(
            "squeue: unavailable ({why}); running cells from task markers"
        )),
    }
    match sacct(&jobs) {
        Ok(a) => {
            e.notes.push(format!("sacct: {} task records", a.len()));
            e.accounting = Some(a);
        }
        Err(why) => e.notes.push(format!(
            "sacct: unavailable ({why}); failures from task markers"
        )),
    }
    Ok(e)
}

/// Where every cell of `grid` stands in `out`: shards first, then the scheduler.
pub fn status(grid: &Grid, out: &Path) -> Result<GridStatus> {
    let evidence = evidence(out, &grid.name)?;
    Ok(status_with(grid, out, &evidence))
}

/// [`status`] with the scheduler's evidence given.
pub fn status_with(grid: &Grid, out: &Path, evidence: &Evidence) -> GridStatus {
    let cells = grid
        .cells
        .iter()
        .map(|cell| {
            let state = match shard::look(out, grid, cell) {
                shard::Found::Finished(s) => CellState::Finished(s.status),
                // What the scheduler knows (queued, running, failed with a log) says
                // more than the bad file; with nothing on record, the file is the news.
                shard::Found::Unusable(reason) => {
                    match classify(cell.index, out, &grid.name, evidence) {
                        CellState::Missing => CellState::Corrupt { reason },
                        known => known,
                    }
                }
                shard::Found::Absent => classify(cell.index, out, &grid.name, evidence),
            };
            (cell.index, state)
        })
        .collect();
    GridStatus {
        grid: grid.name.clone(),
        cells,
        tasks_in_queue: evidence.queue.as_ref().map_or(0, Vec::len),
        notes: evidence.notes.clone(),
    }
}

/// What [`submit`] did.
#[derive(Clone, Debug)]
pub enum Submitted {
    /// `--dry-run`: the script that would be submitted, and its cells.
    DryRun { script: String, indices: Vec<usize> },
    /// Every cell is finished, or queued or running already.
    Nothing {
        finished: usize,
        in_flight: usize,
        cells: usize,
    },
    /// `sbatch` accepted the job.
    Job {
        job_id: u64,
        indices: Vec<usize>,
        script: PathBuf,
        logs: PathBuf,
    },
}

/// Where to find things for [`submit`].
#[derive(Clone, Debug)]
pub struct SubmitPaths {
    /// The result directory (made absolute).
    pub out: PathBuf,
    /// The `policy-param` binary the tasks run.
    pub binary: PathBuf,
    /// The tasks' working directory.
    pub workdir: PathBuf,
}

/// Submit the unfinished cells of `grid` that are not queued or running already, as one
/// job array, with `sbatch`; or, with `dry_run`, return the script and touch nothing.
///
/// Errors leave nothing behind: no `sbatch` on `PATH` and bad options are found before
/// anything is written; the log directory (which must exist before a task starts) is
/// removed again when `sbatch` rejects the job; the script and its record are written
/// only once the job is accepted.
pub fn submit(
    grid: &Grid,
    paths: &SubmitPaths,
    options: &SlurmOptions,
    dry_run: bool,
) -> Result<Submitted> {
    options.check()?;
    if !dry_run && !on_path("sbatch") {
        return Err(Error::Usage(
            "sbatch is not on PATH: `grid submit --scheduler slurm` runs on a Slurm login \
             node (or add Slurm's client commands to PATH); --dry-run prints the script \
             without submitting"
                .into(),
        ));
    }
    let absolute = |p: &Path| std::path::absolute(p).map_err(|e| Error::io(p, e));
    let out = absolute(&paths.out)?;
    let grid_file = std::fs::canonicalize(&grid.file).map_err(|e| Error::io(&grid.file, e))?;
    let binary = absolute(&paths.binary)?;
    let workdir = absolute(&paths.workdir)?;

    let unfinished: Vec<usize> = grid
        .cells
        .iter()
        .filter(|c| shard::finished(&out, grid, c).is_none())
        .map(|c| c.index)
        .collect();
    // Cells of earlier jobs still queued or running are not submitted again.
    let in_flight: Vec<usize> = if unfinished.is_empty() {
        Vec::new()
    } else {
        let jobs: Vec<u64> = submissions(&out, &grid.name)?
            .iter()
            .map(|s| s.job_id)
            .collect();
        match squeue(&jobs) {
            Ok(q) => q.iter().map(|t| t.index).collect(),
            Err(why) if !jobs.is_empty() => {
                eprintln!(
                    "warning: cannot tell which cells of earlier jobs are still queued or \
                     running ({why}); submitting every unfinished cell"
                );
                Vec::new()
            }
            Err(_) => Vec::new(),
        }
    };
    let indices: Vec<usize> = unfinished
        .iter()
        .copied()
        .filter(|i| !in_flight.contains(i))
        .collect();
    if indices.is_empty() {
        return Ok(Submitted::Nothing {
            finished: grid.cells.len() - unfinished.len(),
            in_flight: unfinished.len(),
            cells: grid.cells.len(),
        });
    }
    // Asked of the controller only for a real submission: a dry run needs no cluster.
    if let Some(max) = (!dry_run).then(max_array_size).flatten() {
        let last = *indices.last().expect("not empty");
        if last >= max {
            return Err(Error::Usage(format!(
                "{}: cell {last} is beyond this cluster's MaxArraySize ({max}): array task \
                 ids (the cell indices) must be below it; ask the administrators to raise it \
                 or split the grid file",
                grid.name
            )));
        }
    }
    let script = sbatch_script(&ScriptSpec {
        grid: &grid.name,
        grid_file: &grid_file,
        out: &out,
        binary: &binary,
        workdir: &workdir,
        indices: &indices,
        options,
    })?;
    if dry_run {
        return Ok(Submitted::DryRun { script, indices });
    }

    // The log directory must exist when a task starts (Slurm does not create it).
    let logs = logs_dir(&out, &grid.name);
    let created = create_dirs(&logs)?;
    let job_id = match sbatch(&script, &workdir) {
        Ok(id) => id,
        Err(e) => {
            remove_created(&created);
            return Err(e);
        }
    };
    let record = Submission {
        job_id,
        grid: grid.name.clone(),
        grid_file: grid_file.display().to_string(),
        out: out.display().to_string(),
        array: array_spec(&indices),
        cells: indices.len(),
        cpus_per_task: options.cpus_per_task,
        partition: options.partition.clone(),
        time: options.time.clone(),
        mem: options.mem.clone(),
        extra: options.extra.clone(),
        submitted_at: crate::host::now(),
    };
    let dir = slurm_dir(&out, &grid.name);
    let script_path = dir.join(format!("{job_id}.sbatch"));
    let written = (|| -> Result<()> {
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        crate::files::write_text(&script_path, &script)?;
        let path = dir.join(format!("{job_id}.json"));
        let text = serde_json::to_string_pretty(&record)
            .map_err(|e| Error::malformed(&path, e.to_string()))?;
        crate::files::write_text(&path, &text)
    })();
    if let Err(e) = written {
        return Err(Error::Usage(format!(
            "job {job_id} was submitted, but its record could not be written ({e}): \
             `grid status` will not ask the scheduler about it"
        )));
    }
    Ok(Submitted::Job {
        job_id,
        indices,
        script: script_path,
        logs,
    })
}

/// `sbatch --parsable` with the script on stdin: the job id, or why it was rejected.
fn sbatch(script: &str, workdir: &Path) -> Result<u64> {
    use std::io::Write as _;
    let mut child = Command::new("sbatch")
        .arg("--parsable")
        .current_dir(workdir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::Usage(format!("cannot run sbatch: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A rejected job may close stdin early; its exit status tells.
        let _ = stdin.write_all(script.as_bytes());
    }
    let output = child
        .wait_with_output()
        .map_err(|e| Error::Usage(format!("sbatch: {e}")))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        let said: Vec<&str> = stderr
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        return Err(Error::Usage(format!(
            "sbatch rejected the job ({}): {}",
            output.status,
            if said.is_empty() {
                "no message".to_string()
            } else {
                said.join(" / ")
            }
        )));
    }
    // `--parsable`: `jobid` or `jobid;cluster`.
    let first = stdout.lines().next().unwrap_or_default().trim();
    first
        .split(';')
        .next()
        .and_then(|id| id.parse::<u64>().ok())
        .ok_or_else(|| {
            Error::Usage(format!(
                "sbatch succeeded but printed no job id ({first:?}): check `squeue` before \
                 submitting again"
            ))
        })
}

/// `scontrol show config`'s MaxArraySize, when `scontrol` answers.
fn max_array_size() -> Option<usize> {
    if !on_path("scontrol") {
        return None;
    }
    let text = query("scontrol", &["show", "config"]).ok()?;
    text.lines().find_map(|l| {
        let (k, v) = l.split_once('=')?;
        (k.trim() == "MaxArraySize")
            .then(|| v.trim().parse().ok())
            .flatten()
    })
}

/// `create_dir_all`, returning the directories it created (outermost first).
fn create_dirs(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut missing = Vec::new();
    let mut d = Some(dir);
    while let Some(p) = d {
        if p.as_os_str().is_empty() || p.exists() {
            break;
        }
        missing.push(p.to_path_buf());
        d = p.parent();
    }
    missing.reverse();
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    Ok(missing)
}

/// Remove directories made by [`create_dirs`], innermost first, if still empty.
fn remove_created(created: &[PathBuf]) {
    for d in created.iter().rev() {
        let _ = std::fs::remove_dir(d);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec_with<'a>(indices: &'a [usize], options: &'a SlurmOptions) -> ScriptSpec<'a> {
        ScriptSpec {
            grid: "small",
            grid_file: Path::new("/repo/experiments/small.toml"),
            out: Path::new("/shared/results"),
            binary: Path::new("/repo/target/release/policy-param"),
            workdir: Path::new("/repo"),
            indices,
            options,
        }
    }

    fn directive<'a>(script: &'a str, name: &str) -> Vec<&'a str> {
        let prefix = format!("#SBATCH --{name}=");
        script
            .lines()
            .filter_map(|l| l.strip_prefix(prefix.as_str()))
            .collect()
    }

    #[test]
    fn array_spec_round_trips_and_compresses_runs() {
        let cases: [&[usize]; 6] = [
            &[0],
            &[3, 7, 9],
            &[0, 1, 2, 3],
            &[9, 1, 2, 3, 7, 8, 2],
            &[0, 2, 4, 5, 6, 100, 101],
            &[1000],
        ];
        for indices in cases {
            let spec = array_spec(indices);
            let mut expected = indices.to_vec();
            expected.sort_unstable();
            expected.dedup();
            assert_eq!(parse_array_spec(&spec).unwrap(), expected, "{spec}");
            // One part per maximal run of consecutive indices.
            let runs = 1 + expected.windows(2).filter(|w| w[1] != w[0] + 1).count();
            assert_eq!(spec.split(',').count(), runs, "{spec}");
        }
        assert_eq!(array_spec(&[0, 1, 2, 5]), "0-2,5");
        assert_eq!(parse_array_spec("[0-6:2]%4"), Some(vec![0, 2, 4, 6]));
        assert_eq!(parse_array_spec("5-3"), None);
        assert_eq!(parse_array_spec("x"), None);
    }

    #[test]
    fn the_script_runs_one_cell_per_task_on_the_unfinished_indices() {
        let options = SlurmOptions {
            cpus_per_task: 4,
            ..SlurmOptions::default()
        };
        let indices = [7, 3, 9, 10, 11];
        let script = sbatch_script(&spec_with(&indices, &options)).unwrap();
        assert!(script.starts_with("#!/bin/bash\n"));
        // Every #SBATCH line comes before the first command.
        let first_command = script
            .lines()
            .position(|l| !l.is_empty() && !l.starts_with('#'))
            .unwrap();
        assert!(script
            .lines()
            .skip(first_command)
            .all(|l| !l.starts_with("#SBATCH")));

        let array = directive(&script, "array");
        assert_eq!(array.len(), 1, "{script}");
        assert_eq!(parse_array_spec(array[0]).unwrap(), vec![3, 7, 9, 10, 11]);
        assert_eq!(directive(&script, "cpus-per-task"), ["4"]);
        assert_eq!(
            directive(&script, "output"),
            ["/shared/results/small/logs/%A_%a.out"]
        );
        assert_eq!(directive(&script, "chdir"), ["/repo"]);
        for absent in ["partition", "time", "mem"] {
            assert!(directive(&script, absent).is_empty(), "{absent}");
        }
        // The cell command: the task id is the index, the threads are the task's CPUs.
        let command: Vec<&str> = script
            .lines()
            .filter(|l| l.contains(" grid cell "))
            .collect();
        assert_eq!(command.len(), 1, "{script}");
        assert!(command[0].starts_with(
            "'/repo/target/release/policy-param' grid cell '/repo/experiments/small.toml'"
        ));
        assert!(command[0].contains("--index \"$index\""));
        assert!(command[0].contains("--threads \"$threads\""));
        assert!(command[0].ends_with("--out '/shared/results'"));
        assert!(script.contains("index=\"$SLURM_ARRAY_TASK_ID\"\n"));
        assert!(script.contains("threads=\"${SLURM_CPUS_PER_TASK:-1}\"\n"));
        // The exit status of the cell command is the task's.
        assert!(script.trim_end().ends_with("exit \"$status\""));
    }

    #[test]
    fn options_become_directives_and_bad_ones_are_refused() {
        let options = SlurmOptions {
            partition: Some("short".into()),
            time: Some("00:30:00".into()),
            cpus_per_task: 2,
            mem: Some("4G".into()),
            extra: vec!["--account=rl".into(), "--qos=high".into()],
        };
        let script = sbatch_script(&spec_with(&[0, 1], &options)).unwrap();
        assert_eq!(directive(&script, "partition"), ["short"]);
        assert_eq!(directive(&script, "time"), ["00:30:00"]);
        assert_eq!(directive(&script, "mem"), ["4G"]);
        assert_eq!(directive(&script, "account"), ["rl"]);
        assert_eq!(directive(&script, "qos"), ["high"]);

        let bad = [
            SlurmOptions {
                cpus_per_task: 0,
                ..SlurmOptions::default()
            },
            SlurmOptions {
                partition: Some("a b".into()),
                ..SlurmOptions::default()
            },
            SlurmOptions {
                time: Some("1:00\n#SBATCH --array=0".into()),
                ..SlurmOptions::default()
            },
            SlurmOptions {
                extra: vec!["--array=1-100".into()],
                ..SlurmOptions::default()
            },
            SlurmOptions {
                extra: vec!["account=x".into()],
                ..SlurmOptions::default()
            },
        ];
        for options in bad {
            let e = sbatch_script(&spec_with(&[0], &options)).unwrap_err();
            assert!(matches!(e, Error::Usage(_)), "{e}");
        }
        let none = sbatch_script(&spec_with(&[], &SlurmOptions::default())).unwrap_err();
        assert!(none.to_string().contains("no cells"), "{none}");
    }

    #[test]
    fn paths_are_quoted_for_bash_and_refused_where_sbatch_cannot_take_them() {
        let options = SlurmOptions::default();
        let quoted = ScriptSpec {
            grid_file: Path::new("/home/o'neil/small.toml"),
            ..spec_with(&[0], &options)
        };
        let script = sbatch_script(&quoted).unwrap();
        assert!(script.contains(r"'/home/o'\''neil/small.toml'"), "{script}");
        let spaced = ScriptSpec {
            out: Path::new("/shared/my results"),
            ..spec_with(&[0], &options)
        };
        assert!(sbatch_script(&spaced).is_err());
        let relative = ScriptSpec {
            out: Path::new("results"),
            ..spec_with(&[0], &options)
        };
        assert!(sbatch_script(&relative)
            .unwrap_err()
            .to_string()
            .contains("absolute"));
    }

    #[test]
    fn squeue_and_sacct_lines_are_read_for_the_recorded_jobs_only() {
        let squeue = "12|3|PENDING\n12|4|RUNNING\n13|0|RUNNING\n99|1|RUNNING\n";
        let states = parse_task_states(squeue, &[12, 13]);
        assert_eq!(states.len(), 3);
        assert_eq!(
            states[1],
            TaskState {
                job: 12,
                index: 4,
                state: "RUNNING".into(),
                exit: String::new()
            }
        );
        let sacct = "12_3|COMPLETED|0:0\n12_4|CANCELLED by 0|0:15\n12_[5-9]|PENDING|0:0\n\
                     12|FAILED|2:0\n13_0|TIMEOUT|0:0\n";
        let states = parse_task_states(sacct, &[12, 13]);
        let brief: Vec<(u64, usize, &str, &str)> = states
            .iter()
            .map(|t| (t.job, t.index, t.state.as_str(), t.exit.as_str()))
            .collect();
        assert_eq!(
            brief,
            [
                (12, 3, "COMPLETED", "0:0"),
                (12, 4, "CANCELLED", "0:15"),
                (13, 0, "TIMEOUT", "0:0")
            ]
        );
    }

    fn marker(index: usize, job: u64, state: &str) -> Marker {
        Marker::parse(&format!(
            "state={state}\njob={job}\nindex={index}\nhost=node7\ntime=1\nexit={}\nlog=/r/g/logs/{job}_{index}.out\n",
            if state == "failed" { "2" } else { "" }
        ))
        .unwrap()
    }

    fn task(job: u64, index: usize, state: &str) -> TaskState {
        TaskState {
            job,
            index,
            state: state.into(),
            exit: "0:0".into(),
        }
    }

    #[test]
    fn a_cell_without_a_shard_is_queued_running_failed_or_missing() {
        let out = Path::new("/r");
        let classify = |index, e: &Evidence| classify(index, out, "g", e);
        // Nothing known: missing.
        assert_eq!(classify(0, &Evidence::default()), CellState::Missing);

        // squeue has the last word while the task is in the queue.
        let e = Evidence {
            queue: Some(vec![task(5, 0, "PENDING"), task(5, 1, "RUNNING")]),
            markers: vec![marker(1, 4, "failed")],
            ..Evidence::default()
        };
        assert_eq!(classify(0, &e), CellState::Queued { job: 5 });
        assert!(matches!(classify(1, &e), CellState::Running { job: 5, .. }));

        // A failure marker, with squeue or without.
        for queue in [None, Some(vec![])] {
            let e = Evidence {
                queue,
                markers: vec![marker(2, 5, "failed")],
                ..Evidence::default()
            };
            match classify(2, &e) {
                CellState::Failed { job, reason, log } => {
                    assert_eq!(job, 5);
                    assert!(reason.contains("code 2"), "{reason}");
                    assert_eq!(log, Path::new("/r/g/logs/5_2.out"));
                }
                other => panic!("{other:?}"),
            }
        }

        // A running marker: running without squeue; killed when squeue no longer lists it.
        let mut e = Evidence {
            markers: vec![marker(3, 5, "running")],
            ..Evidence::default()
        };
        assert!(matches!(classify(3, &e), CellState::Running { job: 5, .. }));
        e.queue = Some(vec![]);
        assert!(matches!(classify(3, &e), CellState::Failed { job: 5, .. }));

        // sacct: a timed-out task, a completed one (without a shard: missing), and a
        // later job's marker over an earlier job's accounting.
        let e = Evidence {
            queue: Some(vec![]),
            accounting: Some(vec![
                task(5, 4, "TIMEOUT"),
                task(5, 6, "COMPLETED"),
                task(5, 7, "FAILED"),
            ]),
            markers: vec![marker(4, 5, "running"), marker(7, 8, "running")],
            ..Evidence::default()
        };
        match classify(4, &e) {
            CellState::Failed { reason, log, .. } => {
                assert!(reason.contains("TIMEOUT"), "{reason}");
                assert_eq!(log, Path::new("/r/g/logs/5_4.out"));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(classify(6, &e), CellState::Missing);
        match classify(7, &e) {
            CellState::Failed { job, reason, .. } => {
                assert_eq!(job, 8);
                assert!(reason.contains("without recording"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
    }
}
