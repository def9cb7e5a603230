//! `policy-param env check-trace`: the committed Gymnasium traces pass, altered ones
//! fail with the right counts, and malformed ones are reported, not panicked on.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn traces_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/traces")
}

fn committed_traces() -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(traces_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "csv"))
        .collect();
    paths.sort();
    assert!(
        paths.len() >= 2,
        "expected the Pendulum and MountainCar traces"
    );
    paths
}

fn check_trace(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_policy-param"))
        .args(["env", "check-trace"])
        .args(args)
        .output()
        .expect("the binary runs")
}

/// `(rows, max_abs_err, flag_mismatches)` from the last line of standard output.
fn summary(out: &Output) -> (usize, f64, usize) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().unwrap_or_default();
    let fields: Vec<&str> = last.split(' ').collect();
    let value = |i: usize, key: &str| {
        fields
            .get(i)
            .and_then(|f| f.strip_prefix(key))
            .unwrap_or_else(|| panic!("last line {last:?} lacks {key}"))
    };
    assert_eq!(fields.len(), 3, "last line: {last:?}");
    (
        value(0, "rows=").parse().unwrap(),
        value(1, "max_abs_err=").parse().unwrap(),
        value(2, "flag_mismatches=").parse().unwrap(),
    )
}

/// A copy of `text` under the test's temporary directory.
fn temp_trace(name: &str, text: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn data_lines(path: &Path) -> usize {
    std::fs::read_to_string(path).unwrap().lines().count() - 1
}

#[test]
fn committed_traces_pass() {
    let paths = committed_traces();
    let args: Vec<&std::ffi::OsStr> = paths.iter().map(|p| p.as_os_str()).collect();
    let out = check_trace(&args);
    assert!(out.status.success(), "{out:?}");
    let (rows, max_abs_err, flags) = summary(&out);
    assert_eq!(rows, paths.iter().map(|p| data_lines(p)).sum::<usize>());
    assert!(max_abs_err <= 1e-5, "{max_abs_err}");
    assert_eq!(flags, 0);
    let stdout = String::from_utf8_lossy(&out.stdout);
    for env in ["Pendulum-v1", "MountainCarContinuous-v0"] {
        assert!(stdout.contains(env), "no summary line for {env}: {stdout}");
    }
}

/// The Pendulum trace with the reward of one row raised by `delta` and, if asked, the
/// `truncated` flag of the first truncated row flipped.
fn tampered_pendulum(name: &str, delta: f64, flip_flag: bool) -> PathBuf {
    let text = std::fs::read_to_string(traces_dir().join("pendulum.csv")).unwrap();
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    let header: Vec<&str> = lines[0].split(',').collect();
    let column = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let (reward, truncated) = (column("reward"), column("truncated"));

    let mut fields: Vec<String> = lines[10].split(',').map(String::from).collect();
    fields[reward] = format!("{:?}", fields[reward].parse::<f64>().unwrap() + delta);
    lines[10] = fields.join(",");
    if flip_flag {
        let row = (1..lines.len())
            .find(|&i| lines[i].split(',').nth(truncated) == Some("1"))
            .expect("the trace has a truncated row");
        let mut fields: Vec<String> = lines[row].split(',').map(String::from).collect();
        fields[truncated] = "0".into();
        lines[row] = fields.join(",");
    }
    temp_trace(name, &(lines.join("\n") + "\n"))
}

#[test]
fn a_changed_reward_and_a_flipped_flag_fail_with_their_counts() {
    let path = tampered_pendulum("tampered.csv", 0.25, true);
    let out = check_trace(&[path.as_os_str()]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let (rows, max_abs_err, flags) = summary(&out);
    assert_eq!(rows, data_lines(&path));
    assert!((max_abs_err - 0.25).abs() < 1e-9, "{max_abs_err}");
    assert_eq!(flags, 1);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("line 11"),
        "the changed reward is on line 11: {stdout}"
    );
    assert!(stdout.contains("truncated"), "{stdout}");
}

#[test]
fn the_tolerance_decides_for_values_but_never_for_flags() {
    let small = tampered_pendulum("small_change.csv", 1e-3, false);
    let fails = check_trace(&[small.as_os_str()]);
    assert_eq!(fails.status.code(), Some(1));
    let passes = check_trace(&[small.as_os_str(), "--tolerance".as_ref(), "0.01".as_ref()]);
    assert!(passes.status.success(), "{passes:?}");

    let flipped = tampered_pendulum("flipped.csv", 0.0, true);
    let out = check_trace(&[flipped.as_os_str(), "--tolerance".as_ref(), "1e9".as_ref()]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(summary(&out).2, 1);
}

fn expect_error(out: &Output, needles: &[&str]) {
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    for needle in needles {
        assert!(stderr.contains(needle), "{stderr:?} lacks {needle:?}");
    }
}

#[test]
fn malformed_traces_are_reported_with_file_and_line() {
    let text = std::fs::read_to_string(traces_dir().join("mountain_car_continuous.csv")).unwrap();
    let lines: Vec<&str> = text.lines().take(4).collect();

    let no_reward = temp_trace(
        "no_reward.csv",
        &lines.join("\n").replace(",reward,", ",prize,"),
    );
    expect_error(
        &check_trace(&[no_reward.as_os_str()]),
        &["no_reward.csv", "line 1", "\"reward\""],
    );

    let mut bad = lines.clone();
    let word = bad[3].replacen(",0,", ",zero,", 1);
    bad[3] = &word;
    let not_number = temp_trace("not_number.csv", &bad.join("\n"));
    expect_error(
        &check_trace(&[not_number.as_os_str()]),
        &["not_number.csv", "line 4", "zero"],
    );

    let unknown = temp_trace(
        "unknown.csv",
        &lines
            .join("\n")
            .replace("MountainCarContinuous-v0", "Hopper-v5"),
    );
    expect_error(
        &check_trace(&[unknown.as_os_str()]),
        &["unknown.csv", "Hopper-v5"],
    );

    // Pendulum observations have three components; this header has two.
    let wrong_env = temp_trace(
        "wrong_env.csv",
        &lines
            .join("\n")
            .replace("MountainCarContinuous-v0", "Pendulum-v1"),
    );
    expect_error(
        &check_trace(&[wrong_env.as_os_str()]),
        &["wrong_env.csv", "line 2", "3 components"],
    );

    expect_error(
        &check_trace(&["/nonexistent/trace.csv".as_ref()]),
        &["/nonexistent/trace.csv"],
    );
    let negative = check_trace(&[no_reward.as_os_str(), "--tolerance=-1".as_ref()]);
    expect_error(&negative, &["tolerance"]);
}

/// The first data row of the MountainCar trace with `edit` applied to its fields, by
/// column name, under the trace's header.
fn edited_mountain_car(name: &str, edit: &[(&str, &str)]) -> PathBuf {
    let text = std::fs::read_to_string(traces_dir().join("mountain_car_continuous.csv")).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    let columns: Vec<&str> = header.split(',').collect();
    let mut fields: Vec<String> = lines.next().unwrap().split(',').map(String::from).collect();
    for (column, value) in edit {
        let i = columns.iter().position(|c| c == column).unwrap();
        fields[i] = value.to_string();
    }
    temp_trace(name, &format!("{header}\n{}\n", fields.join(",")))
}

#[test]
fn the_largest_step_count_is_replayed_not_panicked_on() {
    // Reported: t = u64::MAX overflowed the step counter (exit 101). Past the time limit
    // Gymnasium's TimeLimit reports truncation, and so do we.
    let path = edited_mountain_car(
        "t_max.csv",
        &[("t", "18446744073709551615"), ("truncated", "1")],
    );
    let out = check_trace(&[path.as_os_str()]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(summary(&out), (1, 0.0, 0));
}

#[test]
fn integers_beyond_u64_are_errors_naming_file_line_and_column() {
    for column in ["t", "seed"] {
        let path = edited_mountain_car(
            &format!("{column}_too_big.csv"),
            &[(column, "18446744073709551616")],
        );
        expect_error(
            &check_trace(&[path.as_os_str()]),
            &[
                &format!("{column}_too_big.csv"),
                "line 2",
                &format!("column {column}:"),
                "out of range",
            ],
        );
    }
}

#[test]
fn a_header_without_rows_is_an_error_not_a_pass() {
    // Reported: exit 0 with rows=0, a pass that checked nothing.
    let text = std::fs::read_to_string(traces_dir().join("pendulum.csv")).unwrap();
    let header = text.lines().next().unwrap();
    let path = temp_trace("header_only.csv", &format!("{header}\n"));
    let out = check_trace(&[path.as_os_str()]);
    expect_error(&out, &["header_only.csv: no rows: nothing to check"]);
    assert!(out.stdout.is_empty(), "{out:?}");
    // Also next to a good file: every file must have rows.
    let good = traces_dir().join("pendulum.csv");
    expect_error(
        &check_trace(&[good.as_os_str(), path.as_os_str()]),
        &["header_only.csv: no rows"],
    );
}

#[test]
fn a_megabyte_field_is_quoted_by_a_short_prefix() {
    let huge = "7".repeat(1 << 20) + "x";
    let reward = edited_mountain_car("huge_field.csv", &[("reward", &huge)]);
    let env = edited_mountain_car("huge_env.csv", &[("env", &huge)]);
    for (path, needle) in [(reward, "column reward:"), (env, "unknown environment")] {
        let out = check_trace(&[path.as_os_str()]);
        expect_error(&out, &[needle, "(1048577 bytes)"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.len() < 300, "{} bytes of stderr", stderr.len());
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
    }
}
