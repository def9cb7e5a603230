//! The `grid` and `compare` commands end to end: a run killed halfway and restarted
//! recomputes only the unfinished cells, `compare` exits 0 on identical results and 1,
//! naming the cell, on an altered one, config errors exit 2 naming file and key, and the
//! LQR ground-truth grid reproduces what `demo lqr` showed.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_policy-param"))
}

/// A fresh directory under the system's temp dir, removed when dropped.
struct TempDir(tempfile::TempDir);

impl TempDir {
    fn new(tag: &str) -> Self {
        let prefix = format!("policy-param-cli-{tag}-");
        TempDir(tempfile::Builder::new().prefix(&prefix).tempdir().unwrap())
    }
    fn path(&self) -> &Path {
        self.0.path()
    }
    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }
}

fn run(cmd: &mut Command) -> Output {
    let output = cmd.output().expect("the binary runs");
    eprintln!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn shards(cells: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(cells)
        .map(|d| {
            d.map(|e| e.unwrap().path())
                .filter(|p| p.extension().is_some_and(|x| x == "json"))
                .map(|p| {
                    (
                        p.file_name().unwrap().to_string_lossy().to_string(),
                        std::fs::read(&p).unwrap(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Twelve FQI-on-Pendulum cells of a few hundred milliseconds each.
const SLOW: &str = r#"
[[experiment]]
name = "pendulum"
algorithm = "fqi_explicit"
environment = "Pendulum-v1"
seeds = [0, 1, 2, 3, 4, 5]
[experiment.params]
points = 400
width = 16
iterations = 4
epochs = 2
batch_size = 32
eval_episodes = 2
eval_every = 0
[experiment.sweep]
lr = [1e-3, 2e-3]
"#;

#[test]
fn a_run_killed_halfway_resumes_with_the_unfinished_cells_only() {
    let dir = TempDir::new("kill");
    let file = dir.write("slow.toml", SLOW);
    let out = dir.path().join("results");
    let cells = out.join("slow").join("cells");
    let mut child = bin()
        .args(["grid", "run", "--threads", "1", "--out"])
        .arg(&out)
        .arg(&file)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kill it once a few cells are done.
    let start = Instant::now();
    while shards(&cells).len() < 3 && start.elapsed() < Duration::from_secs(300) {
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let before = shards(&cells);
    let done = before.len();
    assert!(done >= 3, "{done} shards");
    assert!(
        done < 12,
        "the run finished before it was killed; make the cells slower"
    );
    // Killed in the middle of a write or not, no shard is partial.
    for (name, bytes) in &before {
        serde_json::from_slice::<serde_json::Value>(bytes)
            .unwrap_or_else(|e| panic!("{name} is not whole: {e}"));
    }

    let output = run(bin()
        .args(["grid", "run", "--threads", "2", "--out"])
        .arg(&out)
        .arg(&file));
    assert!(output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    let expected = format!("ran {}, skipped {done} (finished before)", 12 - done);
    assert!(stdout.contains(&expected), "{stdout}\nexpected {expected}");
    let after = shards(&cells);
    assert_eq!(after.len(), 12);
    for (name, bytes) in &before {
        let again = &after.iter().find(|(n, _)| n == name).unwrap().1;
        assert_eq!(again, bytes, "{name} was recomputed");
    }
    // Tables, figures and the manifest were written.
    for f in [
        "slow.csv",
        "slow.parquet",
        "slow_summary.csv",
        "slow.html",
        "manifest.json",
    ] {
        assert!(out.join(f).exists(), "{f}");
    }
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
    let entry = &manifest["grids"]["slow"];
    assert_eq!(entry["ran"], 12 - done);
    assert_eq!(entry["threads"], 2);
    assert!(entry["crate_versions"]["polars"].is_string(), "{entry}");

    // `grid list` shows every cell finished.
    let output = run(bin().args(["grid", "list", "--out"]).arg(&out).arg(&file));
    assert!(output.status.success());
    let listing = String::from_utf8_lossy(&output.stdout);
    assert_eq!(listing.matches(" ok ").count(), 12, "{listing}");
}

const SMALL: &str = r#"
[[experiment]]
name = "lqr"
algorithm = "fqi_explicit"
environment = "Lqr"
seeds = [0, 1]
[experiment.params]
points = 30
iterations = 5
maximizer = "lbfgs"
"#;

#[test]
fn compare_passes_on_two_runs_and_fails_naming_an_altered_cell() {
    let dir = TempDir::new("compare");
    let file = dir.write("small.toml", SMALL);
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    for (out, threads) in [(&a, "1"), (&b, "2")] {
        let output = run(bin()
            .args(["grid", "run", "--threads", threads, "--out"])
            .arg(out)
            .arg(&file));
        assert!(output.status.success());
    }
    let output = run(bin().arg("compare").arg(&a).arg(&b));
    assert_eq!(output.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&output.stdout).contains("differences=0"));

    // Alter one gain error in B's seed-1 cell.
    let cells = b.join("small").join("cells");
    let (name, bytes) = shards(&cells)
        .into_iter()
        .find(|(_, bytes)| String::from_utf8_lossy(bytes).contains("\"seed\": 1"))
        .unwrap();
    let mut shard: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    let metrics = shard["metrics"].as_array_mut().unwrap();
    let row = metrics
        .iter_mut()
        .find(|m| m["metric"] == "gain_error" && m["step"] == 3)
        .unwrap();
    row["value"] = serde_json::json!(row["value"].as_f64().unwrap() * 1.001);
    std::fs::write(cells.join(&name), serde_json::to_string(&shard).unwrap()).unwrap();

    let output = run(bin().arg("compare").arg(&a).arg(&b));
    assert_eq!(output.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("lqr seed=1") && stdout.contains("gain_error"),
        "{stdout}"
    );
    assert!(stdout.contains("differences=1"), "{stdout}");
    assert!(!stdout.contains("lqr seed=0"), "{stdout}");
    let output = run(bin().args(["compare", "--rtol", "0.01"]).arg(&a).arg(&b));
    assert_eq!(output.status.code(), Some(0));
    // Nothing to compare: could not run.
    let output = run(bin().arg("compare").arg(&a).arg(dir.path().join("nowhere")));
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn a_config_error_exits_2_naming_file_and_key_before_anything_runs() {
    let dir = TempDir::new("config");
    let good = dir.write("good.toml", SMALL);
    let bad = dir.write(
        "bad.toml",
        &SMALL.replace("iterations = 5", "iterations = 5\nlearning_rate = 0.1"),
    );
    let out = dir.path().join("results");
    let output = run(bin()
        .args(["grid", "run", "--out"])
        .arg(&out)
        .arg(&good)
        .arg(&bad));
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(
            "bad.toml: experiment.lqr.params.learning_rate: unknown field `learning_rate`"
        ),
        "{stderr}"
    );
    // The good grid did not run either.
    assert!(!out.join("good").exists());
    let output = run(bin()
        .args(["grid", "cell", "--index", "7", "--out"])
        .arg(&out)
        .arg(&good));
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("no cell 7"));
}

/// The old `demo lqr`, as a grid: κ = 1 (the Riccati gain) has the best exact value, and
/// the Monte Carlo estimates agree with the exact values within their sampling error.
#[test]
fn the_lqr_ground_truth_grid_finds_the_riccati_gain_best() {
    let dir = TempDir::new("lqr");
    let file = dir.write(
        "lqr_ground_truth.toml",
        r#"
[[experiment]]
name = "gain_scale"
algorithm = "riccati_gain_scale"
environment = "Lqr"
seeds = [3]
[experiment.params]
episodes = 64
[experiment.sweep]
system = ["scalar", "double_integrator"]
gain_scale = [0.5, 0.75, 0.9, 1.0, 1.1, 1.25, 2.0]
"#,
    );
    let out = dir.path().join("results");
    let output = run(bin().args(["grid", "run", "--out"]).arg(&out).arg(&file));
    assert!(output.status.success());
    let mut reader = csv::Reader::from_path(out.join("lqr_ground_truth_summary.csv")).unwrap();
    let header = reader.headers().unwrap().clone();
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    for system in ["scalar", "double_integrator"] {
        let value = |metric: &str, kappa: f64| {
            rows.iter()
                .find(|r| {
                    r[col("system")] == *system
                        && r[col("metric")] == *metric
                        && r[col("gain_scale")].parse::<f64>().unwrap() == kappa
                })
                .map(|r| r[col("mean")].parse::<f64>().unwrap())
                .unwrap()
        };
        let kappas = [0.5, 0.75, 0.9, 1.0, 1.1, 1.25, 2.0];
        let best = kappas
            .iter()
            .copied()
            .max_by(|a, b| value("exact_value", *a).total_cmp(&value("exact_value", *b)))
            .unwrap();
        assert_eq!(best, 1.0, "{system}");
        for kappa in kappas {
            let (exact, mc, se) = (
                value("exact_value", kappa),
                value("monte_carlo_value", kappa),
                value("monte_carlo_std_error", kappa),
            );
            assert!(
                (exact - mc).abs() <= 4.0 * se,
                "{system} κ={kappa}: {exact} vs {mc} ± {se}"
            );
        }
    }
}

/// What a reader of a fresh clone does: compare a run with the committed tables alone
/// (exit 0, per grid "identical"); see one altered committed value named by grid, cell,
/// metric and step (exit 1), or accepted "within tolerance"; get exit 2 from a directory
/// with no results; compare settings statistically; and find that `grid gather` there
/// leaves the committed tables as they are and fails naming what is missing.
#[test]
fn committed_tables_alone_compare_and_survive_a_gather() {
    let dir = TempDir::new("tables");
    let file = dir.write("small.toml", SMALL);
    let run_dir = dir.path().join("run");
    let output = run(bin()
        .args(["grid", "run", "--out"])
        .arg(&run_dir)
        .arg(&file));
    assert!(output.status.success());

    // The committed files: Parquet table, summary, figures.
    let clone = dir.path().join("clone");
    std::fs::create_dir_all(&clone).unwrap();
    for f in [
        "small.parquet",
        "small_summary.csv",
        "small.html",
        "plotly.min.js",
    ] {
        std::fs::copy(run_dir.join(f), clone.join(f)).unwrap();
    }
    let output = run(bin().arg("compare").arg(&clone).arg(&run_dir));
    assert_eq!(output.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("small: identical (2 cells"), "{stdout}");

    // `grid gather` on the clone: nothing written, exit 2, the missing cells named.
    let before: Vec<Vec<u8>> = ["small.parquet", "small_summary.csv", "small.html"]
        .iter()
        .map(|f| std::fs::read(clone.join(f)).unwrap())
        .collect();
    let output = run(bin()
        .args(["grid", "gather", "--out"])
        .arg(&clone)
        .arg(&file));
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("holds 2 cells") && stderr.contains("missing: #0 lqr seed=0"),
        "{stderr}"
    );
    let after: Vec<Vec<u8>> = ["small.parquet", "small_summary.csv", "small.html"]
        .iter()
        .map(|f| std::fs::read(clone.join(f)).unwrap())
        .collect();
    assert!(before == after, "gather changed a committed table");
    assert!(!clone.join("small.csv").exists());

    // The same table as CSV with one value altered: named by grid, cell, metric, step.
    let altered = dir.path().join("altered");
    std::fs::create_dir_all(&altered).unwrap();
    let tidy = std::fs::read_to_string(run_dir.join("small.csv")).unwrap();
    let mut reader = csv::Reader::from_reader(tidy.as_bytes());
    let header = reader.headers().unwrap().clone();
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let mut writer = csv::Writer::from_path(altered.join("small.csv")).unwrap();
    writer.write_record(&header).unwrap();
    for record in reader.records() {
        let mut fields: Vec<String> = record.unwrap().iter().map(String::from).collect();
        if fields[col("seed")] == "1"
            && fields[col("metric")] == "gain_error"
            && fields[col("step")] == "3"
        {
            let v: f64 = fields[col("value")].parse().unwrap();
            fields[col("value")] = format!("{:?}", v * 1.001);
        }
        writer.write_record(&fields).unwrap();
    }
    writer.flush().unwrap();
    let output = run(bin().arg("compare").arg(&altered).arg(&run_dir));
    assert_eq!(output.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .find(|l| l.contains("gain_error"))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(
        line.starts_with("small ") && line.contains("lqr seed=1") && line.contains(" 3 "),
        "{line}"
    );
    assert!(stdout.contains("small: different"), "{stdout}");
    let output = run(bin()
        .args(["compare", "--rtol", "0.01"])
        .arg(&altered)
        .arg(&run_dir));
    assert_eq!(output.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&output.stdout).contains("small: within tolerance"));

    // A directory with no results: could not compare.
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let output = run(bin().arg("compare").arg(&empty).arg(&run_dir));
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("holds no results"));

    // Statistics of the settings, from the committed table alone.
    let output = run(bin()
        .args([
            "compare",
            "--stats",
            "--metric",
            "final_gain_error",
            "--reps",
            "1000",
        ])
        .arg(&clone));
    assert_eq!(output.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("lower is better")
            && stdout.contains("IQM [95% CI]")
            && stdout.contains("lqr  "),
        "{stdout}"
    );
    let output = run(bin()
        .args(["compare", "--stats", "--metric", "no_such_metric"])
        .arg(&clone));
    assert_eq!(output.status.code(), Some(2));
}
