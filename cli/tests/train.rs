//! `policy-param train`, `eval` and `keys` from the command line: every online agent on
//! every environment (Pendulum-v1, MountainCarContinuous-v0, Lqr) writes its run directory;
//! an interrupted run resumes to the same tables an uninterrupted one writes; bad keys, values, environments and directories are
//! refused with a message naming them, before any work.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_policy-param"))
}

fn temp() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("policy-param-train-")
        .tempdir()
        .unwrap()
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

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Small networks and few steps: the point is the wiring, not the learning.
const TINY: [&str; 5] = [
    "steps=300",
    "eval_every=150",
    "eval_episodes=1",
    "learning_starts=100",
    "batch_size=32",
];

fn train(algorithm: &str, env: &str, out: &Path, extra: &[&str]) -> Command {
    let mut cmd = bin();
    cmd.args(["train", algorithm, "--env", env, "--quiet", "--out"])
        .arg(out);
    // A key in `extra` replaces the one in TINY (`--set` refuses a key given twice).
    let key = |set: &&str| set.split_once('=').unwrap().0.to_string();
    let replaced: Vec<String> = extra.iter().map(key).collect();
    for set in TINY
        .iter()
        .filter(|s| !replaced.contains(&key(s)))
        .chain(extra)
    {
        cmd.args(["--set", set]);
    }
    cmd.args(["--set", "hidden=[16,16]"]);
    cmd
}

fn rows(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .skip(1)
        .map(str::to_string)
        .collect()
}

/// Monitor rows without the wall-clock column.
fn monitor_rows(dir: &Path) -> Vec<String> {
    rows(&dir.join("monitor.csv"))
        .into_iter()
        .map(|r| r.rsplit_once(',').unwrap().0.to_string())
        .collect()
}

#[test]
fn every_online_agent_trains_and_evaluates_on_every_listed_environment() {
    for algorithm in ["ddpg", "td3", "sac"] {
        for env in ["Pendulum-v1", "MountainCarContinuous-v0", "Lqr"] {
            let dir = temp();
            let out = dir.path().join("run");
            // The double integrator's quadratic costs under random actions give critic
            // losses above the default max_loss (1e8, set for Pendulum's scale) early on.
            let extra: &[&str] = if env == "Lqr" {
                &["max_loss=1e15"]
            } else {
                &[]
            };
            let o = run(&mut train(algorithm, env, &out, extra));
            assert!(o.status.success(), "{algorithm} on {env}");
            assert!(
                text(&o.stdout).contains("300 steps"),
                "{algorithm} on {env}"
            );
            let evaluations = rows(&out.join("evaluations.csv"));
            let steps: Vec<&str> = evaluations
                .iter()
                .map(|r| r.split(',').next().unwrap())
                .collect();
            assert_eq!(steps, ["150", "300"], "{algorithm} on {env}");
            for row in &evaluations {
                let mean: f64 = row.split(',').nth(1).unwrap().parse().unwrap();
                assert!(mean.is_finite(), "{algorithm} on {env}: {row}");
            }
            // Pendulum's episodes end at 200 steps; MountainCar's last 999 unless the car
            // reaches the flag, which a random start does not in 300 steps.
            let episodes = monitor_rows(&out).len();
            match env {
                "Pendulum-v1" => assert_eq!(episodes, 1),
                "MountainCarContinuous-v0" => assert_eq!(episodes, 0),
                _ => {}
            }
            let config: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap())
                    .unwrap();
            assert_eq!(config["algorithm"], algorithm);
            assert_eq!(config["environment"], env);
            assert_eq!(config["config"]["hidden"], serde_json::json!([16, 16]));

            let o = run(bin().args(["eval", "--episodes", "2"]).arg(&out));
            assert!(o.status.success());
            let line = text(&o.stdout);
            let mean: f64 = line
                .split_whitespace()
                .find_map(|w| w.strip_prefix("mean_return="))
                .expect("eval prints mean_return=")
                .parse()
                .unwrap();
            assert!(mean.is_finite(), "{line}");
            // The same episodes evaluated twice give the same number.
            let again = run(bin().args(["eval", "--episodes", "2"]).arg(&out));
            assert_eq!(text(&again.stdout), line);
        }
    }
}

#[test]
fn an_interrupted_run_resumes_to_the_tables_of_an_uninterrupted_one() {
    let extra = ["steps=1200", "eval_every=100"];
    let dir = temp();
    let whole = dir.path().join("whole");
    assert!(run(&mut train("ddpg", "Pendulum-v1", &whole, &extra))
        .status
        .success());

    let cut = dir.path().join("cut");
    let mut child = train("ddpg", "Pendulum-v1", &cut, &extra)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let killed_at = loop {
        let done = std::fs::read_to_string(cut.join("evaluations.csv"))
            .map(|t| t.lines().count() - 1)
            .unwrap_or(0);
        if done >= 4 {
            child.kill().unwrap();
            child.wait().unwrap();
            break done;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the run ended ({status}) before it could be interrupted");
        }
        assert!(started.elapsed() < Duration::from_secs(300));
        std::thread::sleep(Duration::from_millis(5));
    };
    assert!(killed_at < 12, "killed after {killed_at} of 12 evaluations");

    let o = run(&mut train("ddpg", "Pendulum-v1", &cut, &extra));
    assert!(o.status.success());
    assert!(text(&o.stdout).contains("resumed from step"));
    assert_eq!(
        rows(&cut.join("evaluations.csv")),
        rows(&whole.join("evaluations.csv"))
    );
    assert_eq!(monitor_rows(&cut), monitor_rows(&whole));
    assert_eq!(
        std::fs::read(cut.join("checkpoint.json")).unwrap(),
        std::fs::read(whole.join("checkpoint.json")).unwrap()
    );

    // A finished run asked again does no work and changes nothing.
    let o = run(&mut train("ddpg", "Pendulum-v1", &cut, &extra));
    assert!(o.status.success());
    assert!(text(&o.stdout).contains("resumed from step 1200"));
    assert_eq!(
        rows(&cut.join("evaluations.csv")),
        rows(&whole.join("evaluations.csv"))
    );
}

#[test]
fn bad_keys_values_environments_and_directories_are_refused_by_name() {
    let dir = temp();
    let out = dir.path().join("run");
    let refused = |cmd: &mut Command, needles: &[&str]| {
        let o = run(cmd);
        assert_eq!(o.status.code(), Some(2), "refused as a usage error");
        let message = text(&o.stderr);
        for needle in needles {
            assert!(message.contains(needle), "{needle:?} not in {message:?}");
        }
        assert!(!message.contains("panicked"));
    };
    refused(
        &mut train("sac", "Pendulum-v1", &out, &["gamma=1.5"]),
        &["gamma", "[0, 1]"],
    );
    refused(
        &mut train("ddpg", "Pendulum-v1", &out, &["lr=-1e-3"]),
        &["lr", "> 0"],
    );
    refused(
        &mut train("ddpg", "Pendulum-v1", &out, &["learning_rate=1e-3"]),
        &["learning_rate", "no such key", "eval_every", "tau"],
    );
    refused(
        &mut train("ddpg", "Pendulum-v1", &out, &["noise=pink"]),
        &["noise", "pink", "`gaussian` or `ou`"],
    );
    refused(
        &mut train("sac", "CartPole-v1", &out, &[]),
        &["CartPole-v1", "Pendulum-v1"],
    );
    refused(
        &mut train("ppo", "Pendulum-v1", &out, &[]),
        &["ppo", "ddpg", "sac"],
    );
    refused(
        bin()
            .args(["train", "sac", "--env", "Pendulum-v1", "--preset", "zoo"])
            .arg("--out")
            .arg(&out),
        &["zoo", "zoo_pendulum", "chapter"],
    );
    assert!(
        !out.exists(),
        "nothing is written before the input is valid"
    );

    // A directory holding one run refuses another, naming the first setting that differs.
    assert!(run(&mut train("sac", "Pendulum-v1", &out, &[]))
        .status
        .success());
    let before = std::fs::read(out.join("evaluations.csv")).unwrap();
    let o = run(&mut train("sac", "Pendulum-v1", &out, &["gamma=0.9"]));
    assert!(!o.status.success());
    assert!(text(&o.stderr).contains("gamma"), "{}", text(&o.stderr));
    assert_eq!(std::fs::read(out.join("evaluations.csv")).unwrap(), before);

    let o = run(bin().args(["eval", "--episodes", "0"]).arg(&out));
    assert!(!o.status.success());
    assert!(text(&o.stderr).contains("--episodes"));
    let o = run(bin().args(["eval"]).arg(dir.path().join("nowhere")));
    assert!(!o.status.success());
    assert!(text(&o.stderr).contains("nowhere"));
}

#[test]
fn keys_lists_every_setting_a_run_records() {
    for algorithm in ["ddpg", "td3", "sac"] {
        let dir = temp();
        let out = dir.path().join("run");
        assert!(run(&mut train(algorithm, "Pendulum-v1", &out, &[]))
            .status
            .success());
        let config: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap())
                .unwrap();
        let o = run(bin().args(["keys", algorithm]));
        assert!(o.status.success());
        let listed: Vec<String> = text(&o.stdout)
            .lines()
            .filter_map(|l| l.strip_prefix("  "))
            .filter_map(|l| l.split_whitespace().next())
            .map(str::to_string)
            .collect();
        for key in config["config"].as_object().unwrap().keys() {
            assert!(
                listed.contains(key),
                "{algorithm}: {key} is recorded but not listed"
            );
        }
    }
}
