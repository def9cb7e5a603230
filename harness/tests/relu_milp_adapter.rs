//! The `relu_milp_maximize` adapter: bad values are named, and tiny runs on both action
//! sets record what the adapter documents, with the MILP equal to enumeration and never
//! below the dense grid. And FQI with `maximizer = "relu_milp"`, whose audits find the
//! exact maximum never below L-BFGS's or the grid's.

mod common;

use std::path::Path;

use common::TempDir;
use policy_param_harness::shard::{self, Status};
use policy_param_harness::{run_grid, Grid, RunOptions};

fn error_of(environment: &str, params: &str) -> policy_param_harness::ConfigError {
    let text = format!(
        "[[experiment]]\nname = \"r\"\nalgorithm = \"relu_milp_maximize\"\nenvironment = \
         \"{environment}\"\nseeds = [0]\n[experiment.params]\n{params}\n"
    );
    match Grid::parse(Path::new("experiments/bad.toml"), &text) {
        Err(e) => e,
        Ok(_) => panic!("accepted {params:?}"),
    }
}

#[test]
fn bad_relu_milp_values_are_named() {
    let e = error_of("ActionBox", "action_dim = 3");
    assert_eq!(e.key, "experiment.r.params.action_dim", "{e}");
    let e = error_of("ActionBox", "bound = -1.0");
    assert_eq!(e.key, "experiment.r.params.bound", "{e}");
    let e = error_of("Allocation", "depth = 0");
    assert_eq!(e.key, "experiment.r.params.depth", "{e}");
    let e = error_of("Allocation", "widht = 8");
    assert!(e.key.contains("widht") || e.reason.contains("widht"), "{e}");
    let e = error_of("Pendulum-v1", "");
    assert!(e.reason.contains("Allocation"), "{e}");
}

const TINY: &str = r#"
[[experiment]]
name = "integer"
algorithm = "relu_milp_maximize"
environment = "Allocation"
seeds = [0]
[experiment.params]
states = 4
width = 6
sites = 2

[[experiment]]
name = "box"
algorithm = "relu_milp_maximize"
environment = "ActionBox"
seeds = [0]
[experiment.params]
states = 4
width = 8
depth = 2
action_dim = 2
grid_points = 101
lbfgs_starts = 1
"#;

#[test]
fn both_action_sets_record_their_metrics() {
    let dir = TempDir::new("relu-milp-adapter");
    let grid = Grid::load(&dir.grid("tiny_relu_milp.toml", TINY)).unwrap();
    let out = dir.path().join("results");
    let options = RunOptions {
        threads: Some(2),
        progress: false,
        ..RunOptions::new(&out)
    };
    let report = run_grid(&grid, &options).unwrap();
    assert_eq!(report.ran(), vec![0, 1], "{:?}", report.outcomes);
    let value = |cell: usize, metric: &str| -> f64 {
        let s = shard::finished(&out, &grid, &grid.cells[cell]).unwrap();
        assert_eq!(s.status, Status::Ok);
        let found: Vec<f64> = s
            .metrics
            .iter()
            .filter(|m| m.metric == metric && m.step == 0)
            .map(|m| m.value)
            .collect();
        assert_eq!(found.len(), 1, "{metric}");
        found[0]
    };
    // Integer: every draw agrees with enumeration.
    assert_eq!(value(0, "states"), 4.0);
    assert_eq!(value(0, "agreement"), 4.0);
    assert!(value(0, "max_value_gap") <= 1e-6);
    assert!(value(0, "actions") > 1.0);
    assert_eq!(value(0, "hidden_units"), 6.0);
    // Box: the exact optimum is never below a grid point; L-BFGS never above it.
    assert!(value(1, "max_grid_excess") <= 1e-6);
    assert!(value(1, "lbfgs_gap_max") >= -1e-6);
    assert_eq!(value(1, "grid_points"), 101.0 * 101.0);
    assert_eq!(value(1, "hidden_units"), 16.0);
    for metric in [
        "relu_milp_maximize_seconds",
        "lbfgs_maximize_seconds",
        "binaries",
    ] {
        assert!(value(1, metric) >= 0.0, "{metric}");
    }
}

const PENDULUM: &str = r#"
[[experiment]]
name = "pendulum"
algorithm = "fqi_explicit"
environment = "Pendulum-v1"
seeds = [0]
[experiment.params]
maximizer = "relu_milp"
points = 200
width = 8
iterations = 2
epochs = 1
batch_size = 32
eval_episodes = 1
eval_every = 1
"#;

#[test]
fn fqi_with_the_relu_milp_maximizer_audits_lbfgs_and_the_grid() {
    let dir = TempDir::new("relu-milp-fqi");
    let grid = Grid::load(&dir.grid("pendulum_relu_milp.toml", PENDULUM)).unwrap();
    let out = dir.path().join("results");
    let options = RunOptions {
        threads: Some(1),
        progress: false,
        ..RunOptions::new(&out)
    };
    let report = run_grid(&grid, &options).unwrap();
    assert_eq!(report.ran(), vec![0], "{:?}", report.outcomes);
    let s = shard::finished(&out, &grid, &grid.cells[0]).unwrap();
    assert_eq!(s.status, Status::Ok);
    let at = |metric: &str| -> Vec<(u64, f64)> {
        s.metrics
            .iter()
            .filter(|m| m.metric == metric)
            .map(|m| (m.step, m.value))
            .collect()
    };
    // One audit per evaluation; the exact maximum is never below L-BFGS's or the grid's.
    for metric in ["lbfgs_gap_mean", "grid_gap_mean"] {
        let values = at(metric);
        assert_eq!(values.iter().map(|v| v.0).collect::<Vec<_>>(), [1, 2]);
        assert!(values.iter().all(|v| v.1 >= -1e-6), "{metric}: {values:?}");
    }
    let share = at("lbfgs_suboptimal_share");
    assert!(
        share.iter().all(|v| (0.0..=1.0).contains(&v.1)),
        "{share:?}"
    );
    assert_eq!(at("eval_return").len(), 2);
}
