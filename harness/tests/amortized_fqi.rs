//! The `fqi_amortized` adapters (`amortized_fqi_lqr`, `amortized_fqi_mlp`) on tiny
//! grids: the window K swept as numbers and `"inf"`, its mistakes named; a full budget
//! reproducing the FQI-explicit reference cell bit for bit; solver calls as the budget
//! says; the zero budget never fitting the rule; stale answers (K = ∞) biasing the rule on
//! LQR; 1 and 2 threads identical; and the budget × K heatmap.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::TempDir;
use policy_param_harness::compare::{compare_dirs, Tolerance};
use policy_param_harness::shard::{self, Shard};
use policy_param_harness::{gather, run_grid, ConfigError, Grid, RunOptions};

/// Scalar LQR with the exact quadratic maximizer (fast in the dev profile): budgets
/// 1, 0.1 and 0 × K ∈ {0, 2, ∞}, and FQI-explicit on the same base points.
const LQR: &str = r#"
[[experiment]]
name = "lqr"
algorithm = "fqi_amortized"
environment = "Lqr"
seeds = [0, 1]
[experiment.params]
maximizer = "quadratic"
points = 60
iterations = 30
record_every = 4
[experiment.sweep]
budget = [1.0, 0.1, 0.0]
window = [0, 2, "inf"]

[[experiment]]
name = "lqr_explicit"
algorithm = "fqi_amortized"
environment = "Lqr"
seeds = [0, 1]
[experiment.params]
method = "explicit"
maximizer = "quadratic"
points = 60
iterations = 30
record_every = 4
"#;

/// Pendulum-v1 with small networks: a full budget, a tenth, and the explicit reference.
const PENDULUM: &str = r#"
[[experiment]]
name = "pendulum"
algorithm = "fqi_amortized"
environment = "Pendulum-v1"
seeds = [3]
[experiment.params]
points = 200
width = 8
rule_width = 8
iterations = 3
epochs = 1
batch_size = 32
rule_steps = 5
rule_batch_size = 32
grid_points = 5
eval_episodes = 1
eval_every = 2
[experiment.sweep]
budget = [1.0, 0.1]

[[experiment]]
name = "pendulum_explicit"
algorithm = "fqi_amortized"
environment = "Pendulum-v1"
seeds = [3]
[experiment.params]
method = "explicit"
points = 200
width = 8
iterations = 3
epochs = 1
batch_size = 32
grid_points = 5
eval_episodes = 1
eval_every = 2
"#;

fn options(out: &Path, threads: usize) -> RunOptions {
    RunOptions {
        threads: Some(threads),
        progress: false,
        ..RunOptions::new(out)
    }
}

/// Every finished shard of `grid` in `out`, by cell label.
fn shards(out: &Path, grid: &Grid) -> BTreeMap<String, Shard> {
    grid.cells
        .iter()
        .map(|cell| {
            let shard = shard::finished(out, grid, cell)
                .unwrap_or_else(|| panic!("no shard for {}", cell.label()));
            (cell.label(), shard)
        })
        .collect()
}

/// `metric` of `shard` by step.
fn series(shard: &Shard, metric: &str) -> Vec<(u64, f64)> {
    shard
        .metrics
        .iter()
        .filter(|m| m.metric == metric)
        .map(|m| (m.step, m.value))
        .collect()
}

/// The value of a metric recorded once (step 0).
fn once(shard: &Shard, metric: &str) -> f64 {
    match series(shard, metric).as_slice() {
        [(0, v)] => *v,
        other => panic!("{metric} of {}: {other:?}", shard.label()),
    }
}

fn error_of(text: &str) -> ConfigError {
    match Grid::parse(Path::new("experiments/bad.toml"), text) {
        Err(e) => e,
        Ok(g) => panic!("accepted a bad grid ({} cells)", g.cells.len()),
    }
}

const HEAD: &str = r#"
[[experiment]]
name = "a"
algorithm = "fqi_amortized"
environment = "Lqr"
seeds = [0]
"#;

#[test]
fn windows_sweep_as_numbers_and_inf_and_mistakes_are_named() {
    let grid = Grid::parse(Path::new("experiments/ok.toml"), LQR).unwrap();
    assert_eq!(grid.cells.len(), 3 * 3 * 2 + 2);
    let windows: Vec<String> = grid.cells[..18]
        .iter()
        .step_by(2)
        .map(|c| c.config["window"].to_string())
        .collect();
    assert_eq!(
        windows,
        ["0", "2", "\"inf\"", "0", "2", "\"inf\"", "0", "2", "\"inf\""]
    );
    assert_eq!(grid.cells[4].setting_label(), "budget=1.0,window=inf");

    for (value, reason) in [
        ("-1", "negative"),
        ("\"infinity\"", "neither a number of iterations nor \"inf\""),
        ("2.5", "a number of iterations K ≥ 0 or \"inf\""),
    ] {
        let e = error_of(&format!("{HEAD}[experiment.params]\nwindow = {value}\n"));
        assert_eq!(e.key, "experiment.a.params.window", "{e}");
        assert!(e.reason.contains(reason), "{value}: {e}");
    }
    let e = error_of(&format!("{HEAD}[experiment.sweep]\nbudget = [0.5, 1.5]\n"));
    assert_eq!(e.key, "experiment.a.sweep.budget[1]", "{e}");
    assert!(e.reason.contains("not in [0, 1]"), "{e}");
    let e = error_of(&format!("{HEAD}[experiment.params]\nrecord_every = 0\n"));
    assert_eq!(e.key, "experiment.a.params.record_every", "{e}");
}

#[test]
fn lqr_budgets_windows_and_the_explicit_reference() {
    let dir = TempDir::new("amortized-lqr");
    let grid = Grid::load(&dir.grid("amortized_lqr.toml", LQR)).unwrap();
    let out = dir.path().join("results");
    let report = run_grid(&grid, &options(&out, 2)).unwrap();
    assert_eq!(
        report.ran().len(),
        grid.cells.len(),
        "{:?}",
        report.outcomes
    );
    let shards = shards(&out, &grid);
    let cell = |budget: &str, window: &str, seed: u64| {
        &shards[&format!("lqr[budget={budget},window={window}] seed={seed}")]
    };
    for seed in [0, 1] {
        let explicit = &shards[&format!("lqr_explicit seed={seed}")];
        assert!(series(explicit, "rule_gain_error").is_empty());
        assert_eq!(once(explicit, "solver_calls_total"), 30.0 * 60.0);
        // Steps 4, 8, …, 28 and the last, 30.
        let steps: Vec<u64> = series(explicit, "gain_error").iter().map(|s| s.0).collect();
        assert_eq!(steps, [4, 8, 12, 16, 20, 24, 28, 30]);
        for window in ["0", "2", "inf"] {
            // Every point solved: FQI-explicit's q, bit for bit, whatever K.
            let full = cell("1.0", window, seed);
            assert_eq!(series(full, "gain_error"), series(explicit, "gain_error"));
            assert_eq!(series(full, "delta_q"), series(explicit, "delta_q"));
            assert_eq!(once(full, "solver_calls_total"), 30.0 * 60.0);
            // A tenth: 6 solves per iteration.
            assert_eq!(once(cell("0.1", window, seed), "solver_calls_total"), 180.0);
            // No solver: the rule is never fitted (W = 0, relative error exactly 1) and
            // 𝒟_d stays empty (δ_d = 0).
            let none = cell("0.0", window, seed);
            assert_eq!(once(none, "solver_calls_total"), 0.0);
            assert_eq!(once(none, "final_rule_gain_error"), 1.0);
            assert!(series(none, "delta_d").iter().all(|&(_, d)| d == 0.0));
            assert!(once(none, "final_gain_error") > 0.1);
        }
        // With recent answers only, 6 solves per iteration recover Riccati's gain, in q
        // and in the rule; keeping every stale answer (K = ∞) biases the rule.
        for window in ["0", "2"] {
            let tenth = cell("0.1", window, seed);
            assert!(once(tenth, "final_gain_error") < 1e-6, "K = {window}");
            assert!(once(tenth, "final_rule_gain_error") < 1e-6, "K = {window}");
        }
        let stale = once(cell("0.1", "inf", seed), "final_rule_gain_error");
        assert!(stale > 1e-3, "K = ∞: rule gain error {stale}");
    }

    // One heatmap per metric over budget × K, budgets across and windows down.
    let gathered = gather(&grid, &out, false).unwrap();
    let html = std::fs::read_to_string(&gathered.figures).unwrap();
    assert!(
        html.contains(r#""x":["1.0","0.1","0.0"],"y":["0","2","inf"]"#),
        "no budget × window heatmap"
    );
    assert!(
        html.contains("lqr: final gain error ‖K − K*‖ / ‖K*‖ (K* from Riccati) (colour: log₁₀)")
    );
}

#[test]
fn pendulum_cells_match_the_reference_and_do_not_depend_on_threads() {
    let dir = TempDir::new("amortized-pendulum");
    let grid = Grid::load(&dir.grid("amortized_pendulum.toml", PENDULUM)).unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    run_grid(&grid, &options(&a, 1)).unwrap();
    let shared = RunOptions {
        cell_threads: None,
        ..options(&b, 2)
    };
    run_grid(&grid, &shared).unwrap();
    let comparison = compare_dirs(&a, &b, &Tolerance::default()).unwrap();
    assert!(comparison.identical(), "{}", comparison.render());
    assert!(comparison.timing_values_skipped() > 0);

    let shards = shards(&a, &grid);
    let explicit = &shards["pendulum_explicit seed=3"];
    let full = &shards["pendulum[budget=1.0] seed=3"];
    let tenth = &shards["pendulum[budget=0.1] seed=3"];
    // Every point solved: the explicit q, bit for bit (the rule is fitted beside it).
    for metric in ["delta_q", "q_fit_loss", "greedy_return"] {
        assert_eq!(series(full, metric), series(explicit, metric), "{metric}");
    }
    assert_eq!(once(explicit, "solver_calls_total"), 3.0 * 200.0);
    assert_eq!(once(tenth, "solver_calls_total"), 3.0 * 20.0);
    assert!(series(explicit, "rule_return").is_empty());
    for shard in [full, tenth] {
        // Evaluated at iteration 2 and at the last, 3.
        let steps: Vec<u64> = series(shard, "rule_return").iter().map(|s| s.0).collect();
        assert_eq!(steps, [2, 3], "{}", shard.label());
        let rule = once(shard, "final_rule_return");
        assert!(rule.is_finite() && rule < 0.0, "{rule}");
        assert!(once(shard, "rule_fit_seconds") > 0.0);
        if cfg!(unix) {
            assert!(once(shard, "run_cpu_seconds") > 0.0);
        }
    }
}

/// The FQI family takes the environment from the grid: the MLP-q adapters run on
/// MountainCarContinuous-v0 as on Pendulum-v1 (its state box, observation size and
/// 999-step time limit read from the environment), and an environment they cannot run
/// on is refused with the ones they can.
#[test]
fn fqi_runs_on_the_environment_the_grid_names() {
    let text = r#"
[[experiment]]
name = "explicit"
algorithm = "fqi_explicit"
environment = "MountainCarContinuous-v0"
seeds = [0]
[experiment.params]
points = 100
width = 8
iterations = 2
epochs = 1
batch_size = 32
grid_points = 5
eval_episodes = 1
eval_every = 0

[[experiment]]
name = "amortized"
algorithm = "fqi_amortized"
environment = "MountainCarContinuous-v0"
seeds = [0]
[experiment.params]
points = 100
width = 8
rule_width = 8
iterations = 2
epochs = 1
batch_size = 32
rule_steps = 5
rule_batch_size = 32
grid_points = 5
eval_episodes = 1
eval_every = 0
"#;
    let dir = TempDir::new("fqi-mountain-car");
    let grid = Grid::load(&dir.grid("fqi_mountain_car.toml", text)).unwrap();
    let out = dir.path().join("results");
    let report = run_grid(&grid, &options(&out, 2)).unwrap();
    assert_eq!(report.ran().len(), 2, "{:?}", report.outcomes);
    let shards = shards(&out, &grid);
    // MountainCar pays 0.1·a² per step (|a| ≤ 1) and +100 at the goal: a return outside
    // [−99.9, 100] would be another environment's, or an episode past its 999 steps.
    for (label, metric) in [
        ("explicit seed=0", "final_eval_return"),
        ("amortized seed=0", "final_greedy_return"),
        ("amortized seed=0", "final_rule_return"),
    ] {
        let value = once(&shards[label], metric);
        assert!(
            (-99.9..=100.0).contains(&value),
            "{label} {metric} = {value}"
        );
    }

    let e = error_of(&text.replace("MountainCarContinuous-v0", "Allocation"));
    assert_eq!(e.key, "experiment.explicit.environment", "{e}");
    for known in ["Lqr", "Pendulum-v1", "MountainCarContinuous-v0"] {
        assert!(e.reason.contains(known), "{e}");
    }
}
