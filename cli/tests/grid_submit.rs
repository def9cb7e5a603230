//! `grid submit --scheduler slurm` and `grid status` without a cluster: the script lists
//! exactly the unfinished cells; bad input (no sbatch, a rejected job, nothing to submit)
//! is a clear message that leaves nothing behind; and the submitted script itself, run by
//! bash as a Slurm array task would run it, writes the cell's shard or, when the cell
//! fails, a marker that `grid status` reports with the task's log.
//!
//! `sbatch`, `squeue` and `sacct` are stand-ins here (shell scripts on PATH); the real
//! scheduler is exercised by `just test-cluster` (scripts/test-cluster.sh).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_policy-param"))
}

/// A fresh directory under the system's temp dir, removed when dropped.
struct TempDir(tempfile::TempDir);

impl TempDir {
    fn new(tag: &str) -> Self {
        let prefix = format!("policy-param-submit-{tag}-");
        TempDir(tempfile::Builder::new().prefix(&prefix).tempdir().unwrap())
    }
    fn path(&self) -> &Path {
        self.0.path()
    }
    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        path
    }
    /// An executable shell script `bin/<name>`.
    fn tool(&self, name: &str, body: &str) {
        let path = self.write(&format!("bin/{name}"), &format!("#!/bin/sh\n{body}\n"));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    /// PATH with `bin/` first.
    fn path_var(&self) -> String {
        format!(
            "{}:{}",
            self.path().join("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        )
    }
}

fn run(cmd: &mut Command) -> Output {
    let output = cmd.output().expect("the command runs");
    eprintln!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Every path under `dir`, sorted.
fn listing(dir: &Path) -> Vec<PathBuf> {
    let mut all = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        if let Ok(entries) = std::fs::read_dir(&d) {
            for e in entries.flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p.clone());
                }
                all.push(p);
            }
        }
    }
    all.sort();
    all
}

/// The indices of an array list `1,3-5`.
fn parse_array(spec: &str) -> Vec<usize> {
    spec.split(',')
        .flat_map(|part| match part.split_once('-') {
            Some((a, b)) => (a.parse().unwrap()..=b.parse().unwrap()).collect::<Vec<usize>>(),
            None => vec![part.parse().unwrap()],
        })
        .collect()
}

fn array_of(script: &str) -> Vec<usize> {
    let lines: Vec<&str> = script
        .lines()
        .filter_map(|l| l.strip_prefix("#SBATCH --array="))
        .collect();
    assert_eq!(lines.len(), 1, "{script}");
    parse_array(lines[0])
}

/// The indices `grid list` shows as pending.
fn pending(file: &Path, out: &Path) -> Vec<usize> {
    let o = run(bin().args(["grid", "list", "--out"]).arg(out).arg(file));
    assert!(o.status.success());
    stdout(&o)
        .lines()
        .skip(1)
        .filter(|l| l.split_whitespace().nth(1) == Some("pending"))
        .map(|l| l.split_whitespace().next().unwrap().parse().unwrap())
        .collect()
}

/// Six LQR cells of a few milliseconds.
const GRID: &str = r#"
[[experiment]]
name = "gain"
algorithm = "riccati_gain_scale"
environment = "Lqr"
seeds = [0, 1, 2]
[experiment.params]
episodes = 8
horizon = 100
[experiment.sweep]
gain_scale = [0.5, 1.0]
"#;

fn submit(dir: &TempDir, file: &Path, out: &Path, extra: &[&str]) -> Output {
    run(bin()
        .env("PATH", dir.path_var())
        .env("FAKE", dir.path())
        .args(["grid", "submit", "--scheduler", "slurm", "--out"])
        .arg(out)
        .args(extra)
        .arg(file))
}

#[test]
fn the_script_lists_the_unfinished_cells_and_a_dry_run_writes_nothing() {
    let dir = TempDir::new("dry");
    let file = dir.write("small.toml", GRID);
    let out = dir.path().join("results");
    // No sbatch needed for a dry run.
    let o = run(bin()
        .env("PATH", dir.path().join("nowhere"))
        .args(["grid", "submit", "--scheduler", "slurm", "--dry-run"])
        .args(["--cpus-per-task", "3", "--partition", "short", "--out"])
        .arg(&out)
        .arg(&file));
    assert!(o.status.success());
    let script = stdout(&o);
    assert_eq!(array_of(&script), (0..6).collect::<Vec<_>>());
    assert!(script.contains("#SBATCH --cpus-per-task=3\n"), "{script}");
    assert!(script.contains("#SBATCH --partition=short\n"), "{script}");
    assert!(!out.exists(), "a dry run wrote {}", out.display());

    // Cells 1 and 4 finished: the array is the other four, as `grid list` says.
    for index in ["1", "4"] {
        let o = run(bin()
            .args(["grid", "cell", "--index", index, "--out"])
            .arg(&out)
            .arg(&file));
        assert!(o.status.success());
    }
    let before = listing(&out);
    let o = run(bin()
        .args([
            "grid",
            "submit",
            "--scheduler",
            "slurm",
            "--dry-run",
            "--out",
        ])
        .arg(&out)
        .arg(&file));
    assert!(o.status.success());
    let array = array_of(&stdout(&o));
    assert_eq!(array, vec![0, 2, 3, 5]);
    assert_eq!(array, pending(&file, &out));
    assert_eq!(listing(&out), before);
}

#[test]
fn no_sbatch_a_rejected_job_and_nothing_to_submit_are_clear_and_leave_nothing() {
    let dir = TempDir::new("bad");
    let file = dir.write("small.toml", GRID);
    let out = dir.path().join("results");

    // No sbatch on PATH.
    let o = run(bin()
        .env("PATH", dir.path().join("nowhere"))
        .args(["grid", "submit", "--scheduler", "slurm", "--out"])
        .arg(&out)
        .arg(&file));
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("sbatch is not on PATH"),
        "{}",
        stderr(&o)
    );
    assert!(!out.exists());

    // sbatch rejects the job: its message is passed on, and the log directory made for
    // the tasks is removed again, with the directories above it that did not exist.
    dir.tool(
        "sbatch",
        "cat >/dev/null\necho 'sbatch: error: Batch job submission failed: Invalid partition name specified' >&2\nexit 1",
    );
    dir.tool("squeue", "exit 0");
    dir.tool("scontrol", "echo 'MaxArraySize            = 1001'");
    let o = submit(&dir, &file, &out, &["--partition", "nosuch"]);
    assert_eq!(o.status.code(), Some(2));
    let message = stderr(&o);
    assert!(
        message.contains("sbatch rejected the job")
            && message.contains("Invalid partition name specified"),
        "{message}"
    );
    assert!(!out.exists(), "{:?}", listing(&out));
    // The same with cells finished before: what was there stays, nothing is added.
    let o = run(bin()
        .args(["grid", "cell", "--index", "2", "--out"])
        .arg(&out)
        .arg(&file));
    assert!(o.status.success());
    let before = listing(&out);
    let o = submit(&dir, &file, &out, &[]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(listing(&out), before);

    // Array task ids are cell indices: a cluster whose MaxArraySize is below the last
    // one is told so before anything is submitted.
    dir.tool("scontrol", "echo 'MaxArraySize            = 4'");
    let o = submit(&dir, &file, &out, &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("cell 5 is beyond this cluster's MaxArraySize (4)"),
        "{}",
        stderr(&o)
    );
    assert_eq!(listing(&out), before);

    // A bad option: refused before sbatch runs.
    let o = submit(&dir, &file, &out, &["--time", "1:00 --array=0"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--time"), "{}", stderr(&o));
    let o = submit(&dir, &file, &out, &["--cpus-per-task", "0"]);
    assert_eq!(o.status.code(), Some(2));

    // Every cell finished: nothing to submit, sbatch is not called, nothing is written.
    let o = run(bin()
        .args(["grid", "run", "--no-progress", "--out"])
        .arg(&out)
        .arg(&file));
    assert!(o.status.success());
    dir.tool("sbatch", "touch \"$FAKE/sbatch-was-called\"\necho 1");
    let before = listing(&out);
    let o = submit(&dir, &file, &out, &[]);
    assert_eq!(o.status.code(), Some(0));
    assert!(
        stderr(&o).contains("all 6 cells are finished: nothing to submit"),
        "{}",
        stderr(&o)
    );
    assert!(stdout(&o).is_empty(), "printed a job id: {}", stdout(&o));
    assert!(!dir.path().join("sbatch-was-called").exists());
    assert_eq!(listing(&out), before);
    let o = run(bin().args(["grid", "status", "--out"]).arg(&out).arg(&file));
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).contains("6 cells: 6 finished"), "{}", stdout(&o));
}

#[test]
fn the_submitted_script_run_as_array_tasks_writes_shards_and_failure_markers() {
    let dir = TempDir::new("tasks");
    let file = dir.write("small.toml", GRID);
    let out = dir.path().join("results");
    // sbatch keeps the script and accepts it as job 4242.
    dir.tool(
        "sbatch",
        "cat >\"$FAKE/submitted.sh\"\necho \"$@\" >\"$FAKE/sbatch-args\"\necho '4242;testcluster'",
    );
    // squeue shows what $FAKE/queue holds; there is no accounting database.
    dir.tool(
        "squeue",
        "[ -f \"$FAKE/queue\" ] && cat \"$FAKE/queue\"\nexit 0",
    );
    dir.tool(
        "sacct",
        "echo 'Slurm accounting storage is disabled' >&2\nexit 1",
    );
    dir.tool("scontrol", "echo 'MaxArraySize            = 1001'");
    let o = submit(&dir, &file, &out, &["--cpus-per-task", "2"]);
    assert!(o.status.success());
    assert_eq!(stdout(&o).trim(), "4242");
    let script = std::fs::read_to_string(dir.path().join("submitted.sh")).unwrap();
    let kept = out.join("small").join("slurm").join("4242.sbatch");
    assert_eq!(std::fs::read_to_string(&kept).unwrap(), script);
    let record: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("small").join("slurm").join("4242.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(record["job_id"], 4242);
    assert_eq!(record["array"], "0-5");
    let logs = out.join("small").join("logs");
    assert!(logs.is_dir());

    let status = |queue: &str| {
        std::fs::write(dir.path().join("queue"), queue).unwrap();
        run(bin()
            .env("PATH", dir.path_var())
            .env("FAKE", dir.path())
            .args(["grid", "status", "--out"])
            .arg(&out)
            .arg(&file))
    };
    let o = status("4242|0|PENDING\n4242|1|RUNNING\n4242|2|PENDING\n");
    assert_eq!(o.status.code(), Some(1));
    let text = stdout(&o);
    assert!(
        text.contains("6 cells: 0 finished (0 diverged), 1 running, 2 queued, 0 failed, 3 missing"),
        "{text}"
    );
    assert!(text.contains("sacct: unavailable"), "{text}");

    // Run the script as Slurm would run tasks 0 and 3; block task 3's shard path with a
    // directory so that its cell fails.
    let shard_of_3 = {
        let o = run(bin().args(["grid", "list", "--out"]).arg(&out).arg(&file));
        let line = stdout(&o)
            .lines()
            .find(|l| l.split_whitespace().next() == Some("3"))
            .unwrap()
            .to_string();
        format!("gain-{}.json", line.split_whitespace().last().unwrap())
    };
    let blocked = out.join("small").join("cells").join(&shard_of_3);
    std::fs::create_dir_all(&blocked).unwrap();
    let task = |index: usize| {
        let log = logs.join(format!("4242_{index}.out"));
        let log_file = std::fs::File::create(&log).unwrap();
        Command::new("bash")
            .arg(&kept)
            .env("SLURM_ARRAY_TASK_ID", index.to_string())
            .env("SLURM_ARRAY_JOB_ID", "4242")
            .env("SLURM_CPUS_PER_TASK", "2")
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file)
            .status()
            .unwrap()
    };
    assert!(task(0).success());
    assert_eq!(task(3).code(), Some(2));
    // Cell 0 finished on 2 threads, and left no marker.
    let tasks = out.join("small").join("slurm").join("tasks");
    assert!(!tasks.join("0").exists());
    let o = run(bin().args(["grid", "list", "--out"]).arg(&out).arg(&file));
    assert!(
        stdout(&o).lines().nth(1).unwrap().contains(" ok "),
        "{}",
        stdout(&o)
    );
    let shard0 = listing(&out.join("small").join("cells"))
        .into_iter()
        .find(|p| p.is_file() && p.extension().is_some_and(|x| x == "json"))
        .unwrap();
    let shard0: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(shard0).unwrap()).unwrap();
    assert_eq!(shard0["threads"], 2);
    // Cell 3: failed, with its log, which says why.
    let log3 = logs.join("4242_3.out");
    assert!(std::fs::read_to_string(&log3)
        .unwrap()
        .contains("Is a directory"));
    let o = status("");
    assert_eq!(o.status.code(), Some(1));
    let text = stdout(&o);
    assert!(
        text.contains("6 cells: 1 finished (0 diverged), 0 running, 0 queued, 1 failed, 4 missing"),
        "{text}"
    );
    let failed_line = text.lines().find(|l| l.contains("failed   #3")).unwrap();
    assert!(failed_line.contains("exited with code 2"), "{failed_line}");
    assert!(
        failed_line.ends_with(&format!("log {}", log3.display())),
        "{failed_line}"
    );
    assert!(text.contains("missing  1-2,4-5"), "{text}");

    // A task killed before it could record its exit (its marker still says running,
    // squeue no longer has it): failed. Still in squeue: running.
    std::fs::write(
        tasks.join("5"),
        format!(
            "state=running\njob=4242\nindex=5\nhost=node1\ntime=0\nexit=\nlog={}\n",
            logs.join("4242_5.out").display()
        ),
    )
    .unwrap();
    let text = stdout(&status("4242|5|RUNNING\n"));
    assert!(text.contains("running  #5"), "{text}");
    let text = stdout(&status(""));
    assert!(
        text.lines()
            .any(|l| l.contains("failed   #5") && l.contains("without recording an exit code")),
        "{text}"
    );

    // Re-submitting: the unfinished cells not in the queue.
    std::fs::remove_dir(&blocked).unwrap();
    std::fs::write(dir.path().join("queue"), "4242|4|PENDING\n").unwrap();
    let o = submit(&dir, &file, &out, &["--dry-run"]);
    assert!(o.status.success());
    assert_eq!(array_of(&stdout(&o)), vec![1, 2, 3, 5]);
}
