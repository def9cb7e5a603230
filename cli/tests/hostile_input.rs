//! Issue 16's table, row by row, through the command line: each input that once panicked,
//! exhausted memory, lost a manifest entry, computed a cell twice, overwrote a table or
//! blocked the valid cells is now refused before work with one short message, or handled.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_policy-param"))
}

fn temp(tag: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("policy-param-hostile-{tag}-"))
        .tempdir()
        .unwrap()
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
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

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Six LQR cells of a few milliseconds each.
fn quick(name: &str) -> String {
    format!(
        r#"
[[experiment]]
name = "{name}"
algorithm = "riccati_gain_scale"
environment = "Lqr"
seeds = [0, 1, 2]
[experiment.params]
episodes = 8
horizon = 100
[experiment.sweep]
gain_scale = [0.5, 1.0]
"#
    )
}

/// Eight FQI-on-Pendulum cells of some tens of milliseconds each.
const SLOW: &str = r#"
[[experiment]]
name = "pendulum"
algorithm = "fqi_explicit"
environment = "Pendulum-v1"
seeds = [0, 1, 2, 3]
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

/// A grid sweeping `keys` keys over `values` values each.
fn swept(keys: usize, values: usize) -> String {
    let list: Vec<String> = (0..values).map(|v| v.to_string()).collect();
    let mut text = quick("big").replace("gain_scale = [0.5, 1.0]\n", "");
    for k in 0..keys {
        text.push_str(&format!("k{k} = [{}]\n", list.join(", ")));
    }
    text
}

/// A refusal: exit 2, one line on stderr, nothing else written.
fn assert_refused(o: &Output, says: &[&str]) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    for s in says {
        assert!(err.contains(s), "{s:?} not in {err}");
    }
}

#[test]
fn cell_counts_are_checked_before_any_cell_is_made() {
    let dir = temp("count");
    // 1000^7 overflows u64: once a panic in the multiplication.
    let file = write(dir.path(), "overflow.toml", &swept(7, 1000));
    let o = run(bin().args(["grid", "list"]).arg(&file));
    assert_refused(&o, &["more than 2^64 cells", "at most 100000"]);
    // 10^9 cells: once listed until memory ran out; now refused with the count.
    let file = write(dir.path(), "billion.toml", &swept(3, 1000));
    let o = run(bin().args(["grid", "list"]).arg(&file));
    assert_refused(&o, &["3000000000 cells", "at most 100000"]);
    // The limit itself: 100 000 cells are accepted, 100 001 are not.
    let horizons = |n: usize| {
        let list: Vec<String> = (1..=n).map(|h| h.to_string()).collect();
        quick("big")
            .replace("[0, 1, 2]", "[0]")
            .replace("horizon = 100\n", "")
            .replace(
                "gain_scale = [0.5, 1.0]",
                &format!("horizon = [{}]", list.join(", ")),
            )
    };
    let file = write(dir.path(), "limit.toml", &horizons(100_000));
    let o = run(bin().args(["grid", "list"]).arg(&file));
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o).lines().count(), 100_001);
    let file = write(dir.path(), "over.toml", &horizons(100_001));
    assert_refused(
        &run(bin().args(["grid", "list"]).arg(&file)),
        &["100001 cells"],
    );
}

#[test]
fn names_the_file_system_would_refuse_are_refused_at_load() {
    let dir = temp("names");
    let out = dir.path().join("results");
    // A 300-character experiment name: once accepted, then every cell failed writing.
    let long = "x".repeat(300);
    let file = write(dir.path(), "long.toml", &quick(&long));
    let o = run(bin().args(["grid", "run", "--out"]).arg(&out).arg(&file));
    assert_refused(&o, &["64"]);
    assert!(stderr(&o).len() < 400, "{}", stderr(&o));
    for name in ["a/b", "..", "tab\tname", "é"] {
        let file = write(dir.path(), "odd.toml", &quick(name));
        assert_refused(&run(bin().args(["grid", "list"]).arg(&file)), &["name"]);
    }
    // `foo` and `foo_summary` would both write foo_summary.csv.
    let foo = write(dir.path(), "foo.toml", &quick("gain"));
    let summary = write(dir.path(), "foo_summary.toml", &quick("gain"));
    let o = run(bin()
        .args(["grid", "run", "--out"])
        .arg(&out)
        .arg(&foo)
        .arg(&summary));
    assert_refused(&o, &["_summary"]);
    // Two grids whose tables differ only in case collide on a case-insensitive disk.
    let upper = write(dir.path(), "Foo.toml", &quick("gain"));
    let o = run(bin()
        .args(["grid", "run", "--out"])
        .arg(&out)
        .arg(&foo)
        .arg(&upper));
    assert_refused(&o, &["foo", "Foo"]);
    assert!(!out.exists(), "refused runs wrote {}", out.display());
}

#[test]
fn thread_counts_out_of_range_are_refused_before_cells_exists() {
    let dir = temp("threads");
    let out = dir.path().join("results");
    let file = write(dir.path(), "g.toml", &quick("gain"));
    for flag in ["--threads", "--cell-threads"] {
        for n in ["0", "5000"] {
            if flag == "--cell-threads" && n == "0" {
                continue; // 0 cell threads means "share the grid's pool"
            }
            let o = run(bin()
                .args(["grid", "run", flag, n, "--out"])
                .arg(&out)
                .arg(&file));
            assert_refused(&o, &["between 1 and 1024"]);
            assert!(!out.exists(), "{flag} {n} left {}", out.display());
        }
    }
    let o = run(bin()
        .args(["grid", "cell", "--index", "0", "--threads", "0", "--out"])
        .arg(&out)
        .arg(&file));
    assert_refused(&o, &["between 1 and 1024"]);
    assert!(!out.exists());
}

#[test]
fn a_megabyte_key_or_value_is_quoted_by_a_short_prefix() {
    let dir = temp("huge");
    let key = "k".repeat(1 << 20);
    let value = "v".repeat(1 << 20);
    for text in [
        quick("gain").replace("episodes = 8", &format!("{key} = 8")),
        quick("gain").replace("episodes = 8", &format!("episodes = \"{value}\"")),
        quick("gain").replace("\"Lqr\"", &format!("\"{value}\"")),
    ] {
        let file = write(dir.path(), "huge.toml", &text);
        let o = run(bin().args(["grid", "list"]).arg(&file));
        assert_refused(&o, &["characters"]);
        assert!(stderr(&o).len() < 1000, "{} bytes", stderr(&o).len());
    }
}

fn spawn(cmd: &mut Command) -> Child {
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn ten_overlapping_runs_of_different_grids_keep_every_manifest_entry() {
    let dir = temp("manifest");
    let out = dir.path().join("results");
    let children: Vec<Child> = (0..10)
        .map(|i| {
            let file = write(dir.path(), &format!("g{i}.toml"), &quick("gain"));
            spawn(
                bin()
                    .args(["grid", "run", "--threads", "1", "--no-progress", "--out"])
                    .arg(&out)
                    .arg(file),
            )
        })
        .collect();
    for child in children {
        let o = child.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
    let grids = manifest["grids"].as_object().unwrap();
    let mut names: Vec<&String> = grids.keys().collect();
    names.sort();
    let expected: Vec<String> = (0..10).map(|i| format!("g{i}")).collect();
    assert_eq!(names, expected.iter().collect::<Vec<_>>());
    for i in 0..10 {
        assert!(out.join(format!("g{i}.csv")).is_file());
    }
    // No temporary file is left behind.
    let stray: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(stray.is_empty(), "{stray:?}");
}

/// "ran N" from a `grid run` summary line.
fn ran(o: &Output) -> usize {
    let text = stdout(o);
    let line = text.lines().find(|l| l.contains(" cells: ran ")).unwrap();
    let after = line.split(" cells: ran ").nth(1).unwrap();
    after.split(',').next().unwrap().trim().parse().unwrap()
}

#[test]
fn two_overlapping_runs_of_one_grid_compute_each_cell_once() {
    let dir = temp("claims");
    let out = dir.path().join("results");
    let file = write(dir.path(), "slow.toml", SLOW);
    let start = || {
        spawn(
            bin()
                .args(["grid", "run", "--threads", "1", "--no-progress", "--out"])
                .arg(&out)
                .arg(&file),
        )
    };
    // B starts once A holds its first claim, so that the two surely overlap.
    let a = start();
    let cells = out.join("slow").join("cells");
    let claimed = || {
        std::fs::read_dir(&cells).is_ok_and(|d| {
            d.into_iter()
                .any(|e| e.unwrap().file_name().to_string_lossy().ends_with(".claim"))
        })
    };
    let waited = std::time::Instant::now();
    while !claimed() {
        assert!(waited.elapsed().as_secs() < 120, "A never claimed a cell");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let b = start();
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    eprintln!("A: {}B: {}", stdout(&a), stdout(&b));
    for o in [&a, &b] {
        assert!(o.status.success(), "{}", stderr(o));
        assert!(ran(o) > 0, "one run did all the work: no overlap");
    }
    assert_eq!(ran(&a) + ran(&b), 8, "{}{}", stdout(&a), stdout(&b));
    // No claim is left; every cell is finished; a third run has nothing to do.
    let names: Vec<String> = std::fs::read_dir(&cells)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.ends_with(".claim")), "{names:?}");
    assert_eq!(names.iter().filter(|n| n.ends_with(".json")).count(), 8);
    let o = run(bin()
        .args(["grid", "run", "--no-progress", "--out"])
        .arg(&out)
        .arg(&file));
    assert_eq!(ran(&o), 0);
}

#[test]
fn corrupt_and_foreign_files_are_named_and_do_not_block_the_valid_cells() {
    let dir = temp("corrupt");
    let out = dir.path().join("results");
    let file = write(dir.path(), "g.toml", &quick("gain"));
    let o = run(bin()
        .args(["grid", "run", "--no-progress", "--out"])
        .arg(&out)
        .arg(&file));
    assert!(o.status.success());
    let cells = out.join("g").join("cells");
    let mut shards: Vec<PathBuf> = std::fs::read_dir(&cells)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    shards.sort();
    let truncated = shards[0].clone();
    let whole = std::fs::read(&truncated).unwrap();
    std::fs::write(&truncated, &whole[..whole.len() / 2]).unwrap();
    write(&cells, "notes.json", "{\"mine\": true}");
    write(&cells, "README", "not a shard");
    let reference = temp("reference");
    let reference_out = reference.path().join("results");
    assert!(run(bin()
        .args(["grid", "run", "--no-progress", "--out"])
        .arg(&reference_out)
        .arg(&file))
    .status
    .success());

    // list: the truncated cell is "corrupt", and each unusable file is named.
    let o = run(bin().args(["grid", "list", "--out"]).arg(&out).arg(&file));
    let text = stdout(&o);
    let corrupt: Vec<&str> = text.lines().filter(|l| l.contains(" corrupt ")).collect();
    assert_eq!(corrupt.len(), 1, "{text}");
    for name in ["notes.json", "README"] {
        assert!(text.contains(name), "{name} not named in {text}");
    }
    // status: corrupt, with why.
    let o = run(bin().args(["grid", "status", "--out"]).arg(&out).arg(&file));
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("5 finished"), "{}", stdout(&o));
    assert!(stdout(&o).contains("1 corrupt"), "{}", stdout(&o));
    // compare: the five valid cells are compared, the lost one and the strays named.
    let o = run(bin().arg("compare").arg(&reference_out).arg(&out));
    assert_eq!(o.status.code(), Some(1));
    let report = stdout(&o);
    assert!(
        report.contains("notes.json") && report.contains("README"),
        "{report}"
    );
    // gather: refuses to shrink the tables, naming what it could not read.
    let o = run(bin().args(["grid", "gather", "--out"]).arg(&out).arg(&file));
    assert_ne!(o.status.code(), Some(0));
    assert!(stderr(&o).contains("notes.json"), "{}", stderr(&o));
    // run: moves the truncated file aside, recomputes it (bit-identical results), and
    // leaves the user's files where they are.
    let o = run(bin()
        .args(["grid", "run", "--no-progress", "--out"])
        .arg(&out)
        .arg(&file));
    assert!(o.status.success());
    assert_eq!(ran(&o), 1);
    let aside: Vec<PathBuf> = std::fs::read_dir(out.join("g").join("corrupt"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(aside.len(), 1);
    assert_eq!(std::fs::read(&aside[0]).unwrap(), &whole[..whole.len() / 2]);
    assert!(cells.join("notes.json").is_file() && cells.join("README").is_file());
    let o = run(bin().arg("compare").arg(&reference_out).arg(&out));
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
}

#[test]
fn compare_exits_2_when_a_side_holds_nothing() {
    let dir = temp("nothing");
    let out = dir.path().join("results");
    let file = write(dir.path(), "g.toml", &quick("gain"));
    assert!(run(bin()
        .args(["grid", "run", "--no-progress", "--out"])
        .arg(&out)
        .arg(&file))
    .status
    .success());
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    for (a, b) in [(&out, &empty), (&empty, &out)] {
        let o = run(bin().arg("compare").arg(a).arg(b));
        assert_eq!(o.status.code(), Some(2));
        assert!(stderr(&o).contains("nothing to compare"), "{}", stderr(&o));
    }
}
