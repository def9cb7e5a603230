//! The `fqi_allocation` adapter (FQI with integer actions on the sequential allocation
//! MDP): bad values are named, and each exact maximizer gives the same run as enumeration,
//! whose greedy policy is never better than value iteration's optimum.

mod common;

use std::path::Path;

use common::TempDir;
use policy_param_harness::shard::{self, Status};
use policy_param_harness::{run_grid, Grid, RunOptions};

fn error_of(params: &str) -> policy_param_harness::ConfigError {
    let text = format!(
        "[[experiment]]\nname = \"f\"\nalgorithm = \"fqi_explicit\"\nenvironment = \
         \"SequentialAllocation\"\nseeds = [0]\n[experiment.params]\n{params}\n"
    );
    match Grid::parse(Path::new("experiments/bad.toml"), &text) {
        Err(e) => e,
        Ok(_) => panic!("accepted {params:?}"),
    }
}

/// Runs the grid `text` on 2 threads in a fresh directory, checks that its `count` cells
/// ran, and returns each cell's metrics but the timings, as (step, name, value).
fn run_cells(name: &str, text: &str, count: usize) -> Vec<Vec<(u64, String, f64)>> {
    let dir = TempDir::new(name);
    let grid = Grid::load(&dir.grid(&format!("{name}.toml"), text)).unwrap();
    let out = dir.path().join("results");
    let options = RunOptions {
        threads: Some(2),
        progress: false,
        ..RunOptions::new(&out)
    };
    let report = run_grid(&grid, &options).unwrap();
    assert_eq!(
        report.ran(),
        (0..count).collect::<Vec<_>>(),
        "{:?}",
        report.outcomes
    );
    (0..count)
        .map(|cell| {
            let s = shard::finished(&out, &grid, &grid.cells[cell]).unwrap();
            assert_eq!(s.status, Status::Ok);
            s.metrics
                .iter()
                .filter(|m| !m.metric.ends_with("seconds"))
                .map(|m| (m.step, m.metric.clone(), m.value))
                .collect()
        })
        .collect()
}

#[test]
fn bad_fqi_allocation_values_are_named() {
    let e = error_of("q = \"affine\"\nmaximizer = \"relu_milp\"");
    assert_eq!(e.key, "experiment.f.params.maximizer", "{e}");
    let e = error_of("q = \"mlp\"\nmaximizer = \"milp\"");
    assert_eq!(e.key, "experiment.f.params.maximizer", "{e}");
    let e = error_of("gamma = 1.0");
    assert_eq!(e.key, "experiment.f.params.gamma", "{e}");
    let e = error_of("lr = -0.1");
    assert_eq!(e.key, "experiment.f.params.lr", "{e}");
    let e = error_of("instance = \"huge\"");
    assert!(e.to_string().contains("huge"), "{e}");
    let e = error_of("pionts = 10");
    assert!(e.to_string().contains("pionts"), "{e}");
    let e = error_of("q = \"mlp\"\nmaximizer = \"relu_milp\"\nmean_q_of_last = [2]");
    assert_eq!(e.key, "experiment.f.params.mean_q_of_last", "{e}");
    for ks in ["[1]", "[2, 31]"] {
        let e = error_of(&format!(
            "q = \"mlp\"\nmaximizer = \"enumerate\"\niterations = 30\nmean_q_of_last = {ks}"
        ));
        assert_eq!(e.key, "experiment.f.params.mean_q_of_last", "{e}");
    }
}

const MEAN_Q: &str = r#"
[[experiment]]
name = "mlp"
algorithm = "fqi_explicit"
environment = "SequentialAllocation"
seeds = [0]
[experiment.params]
q = "mlp"
maximizer = "enumerate"
width = 4
points = 200
iterations = 4
epochs = 2
[experiment.sweep]
mean_q_of_last = [[], [2, 4]]
"#;

/// Evaluating the mean of the last iterates changes nothing of the run: the last q's
/// metrics are the run's without it, bit for bit; the mean's policies are evaluated too.
#[test]
fn mean_q_policies_are_evaluated_beside_an_unchanged_run() {
    let cells = run_cells("tiny_mean_q", MEAN_Q, 2);
    let (plain, averaged) = (cells[0].clone(), cells[1].clone());
    let (mean, last): (Vec<_>, Vec<_>) =
        averaged.into_iter().partition(|m| m.1.contains("_mean_q"));
    assert_eq!(last, plain);
    let value = |name: &str| {
        mean.iter()
            .find(|m| m.1 == name)
            .unwrap_or_else(|| panic!("{name}"))
            .2
    };
    let optimum = plain.iter().find(|m| m.1 == "optimal_value").unwrap().2;
    for k in [2, 4] {
        assert!(value(&format!("greedy_value_mean_q{k}")) <= optimum + 1e-6);
        assert!(value(&format!("value_gap_percent_mean_q{k}")) >= -1e-6);
        assert!((0.0..=1.0).contains(&value(&format!("optimal_action_share_mean_q{k}"))));
    }
    assert_eq!(mean.len(), 6);
}

const TINY: &str = r#"
[[experiment]]
name = "affine"
algorithm = "fqi_explicit"
environment = "SequentialAllocation"
seeds = [0]
[experiment.params]
q = "affine"
points = 300
iterations = 3
[experiment.sweep]
maximizer = ["milp", "enumerate"]

[[experiment]]
name = "mlp"
algorithm = "fqi_explicit"
environment = "SequentialAllocation"
seeds = [0]
[experiment.params]
q = "mlp"
width = 4
points = 100
iterations = 2
epochs = 2
[experiment.sweep]
maximizer = ["relu_milp", "enumerate"]
"#;

#[test]
fn exact_maximizers_give_enumerations_runs_and_no_policy_beats_the_optimum() {
    let cells = run_cells("tiny_fqi_allocation", TINY, 4);
    // The maximum values agree, so the targets and fits do: to the bit for the ReLU-MILP,
    // which returns q at its action through the network as enumeration does; to rounding
    // for the affine q, whose MILP value c₀ + cᵀa rounds differently from θᵀφ. The greedy
    // policies may differ where q ties (the tiny network below has flat directions), so
    // only the fits are compared.
    for (exact, enumeration, rtol) in [(0, 1, 1e-12), (2, 3, 0.0)] {
        let (a, b) = (&cells[exact], &cells[enumeration]);
        let fits = |r: &[(u64, String, f64)]| -> Vec<(u64, f64)> {
            r.iter()
                .filter(|m| m.1 == "fit_loss")
                .map(|m| (m.0, m.2))
                .collect()
        };
        let (fa, fb) = (fits(a), fits(b));
        assert!(!fa.is_empty());
        assert_eq!(fa.len(), fb.len());
        for (x, y) in fa.iter().zip(&fb) {
            assert_eq!(x.0, y.0);
            assert!(
                (x.1 - y.1).abs() <= rtol * x.1.abs(),
                "cell {exact} against cell {enumeration}: {x:?} vs {y:?}"
            );
        }
        let value = |name: &str| a.iter().find(|m| m.1 == name).unwrap().2;
        assert_eq!(value("states"), 9801.0);
        assert_eq!(value("actions"), 102.0);
        assert!(value("greedy_value") <= value("optimal_value") + 1e-6);
        assert!(value("value_gap_percent") >= -1e-6);
        assert!((0.0..=1.0).contains(&value("optimal_action_share")));
        assert!(a.iter().any(|m| m.1 == "fit_loss" && m.0 == 2));
    }
}
