//! The `sac_pendulum` adapter: the committed grids load, bad values are named, and tiny
//! runs of both variants record the metrics the adapter documents (the chapter's its
//! value loss and its fixed β; the practice variant's an automatic β that moves).

mod common;

use std::path::Path;

use common::TempDir;
use policy_param_harness::shard::{self, Status};
use policy_param_harness::{run_grid, Grid, RunOptions};

fn repository_file(relative: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(relative)
}

#[test]
fn the_committed_sac_grids_load() {
    let grid = Grid::load(&repository_file("experiments/sac.toml")).unwrap();
    assert_eq!(grid.cells.len(), 9);
    let full = Grid::load(&repository_file("experiments/full/sac.toml")).unwrap();
    assert_eq!(full.cells.len(), 40);
    // Seed 0 of the default grid's zoo experiment is the same cell in both.
    assert_eq!(grid.cells[0].config_hash, full.cells[0].config_hash);
    // SAC and DDPG on MountainCarContinuous-v0, OU against independent exploration.
    let mountain_car = Grid::load(&repository_file("experiments/full/mountain_car.toml")).unwrap();
    assert_eq!(mountain_car.cells.len(), 30);
}

const HEAD: &str = r#"
[[experiment]]
name = "s"
algorithm = "sac"
environment = "Pendulum-v1"
seeds = [0]
"#;

fn error_of(params: &str) -> policy_param_harness::ConfigError {
    let text = format!("{HEAD}[experiment.params]\n{params}\n");
    match Grid::parse(Path::new("experiments/bad.toml"), &text) {
        Err(e) => e,
        Ok(_) => panic!("accepted {params:?}"),
    }
}

#[test]
fn bad_sac_values_are_named() {
    let e = error_of("beta = 0.0");
    assert_eq!(e.key, "experiment.s.params.beta", "{e}");
    let e = error_of("target_tau = 1.5");
    assert_eq!(e.key, "experiment.s.params.target_tau", "{e}");
    assert!(e.reason.contains("not in (0, 1]"), "{e}");
    let e = error_of("variant = \"both\"");
    assert_eq!(e.key, "experiment.s.params.variant", "{e}");
    assert!(
        e.reason.contains("practice") && e.reason.contains("chapter"),
        "{e}"
    );
    let e = error_of("exploration = \"ou\"\nou_theta = 150.0");
    assert_eq!(e.key, "experiment.s.params.ou_theta", "{e}");
    let e = error_of("exploration = \"pink\"");
    assert_eq!(e.key, "experiment.s.params.exploration", "{e}");
    let e = error_of("temperature = \"hot\"");
    assert_eq!(e.key, "experiment.s.params.temperature", "{e}");
    let e = error_of("buffer_size = 10\nbatch_size = 32");
    assert_eq!(e.key, "experiment.s.params.buffer_size", "{e}");
}

const TINY: &str = r#"
description = "tiny sac"

[[experiment]]
name = "tiny"
algorithm = "sac"
environment = "Pendulum-v1"
seeds = [3]
[experiment.params]
steps = 60
hidden = [8, 8]
batch_size = 16
buffer_size = 100
learning_starts = 20
eval_every = 30
eval_episodes = 1
beta = 0.3
[experiment.sweep]
variant = ["practice", "chapter"]
"#;

#[test]
fn both_variants_record_their_metrics() {
    let dir = TempDir::new("sac-adapter");
    let grid = Grid::load(&dir.grid("tiny_sac.toml", TINY)).unwrap();
    let out = dir.path().join("results");
    let options = RunOptions {
        threads: Some(2),
        progress: false,
        ..RunOptions::new(&out)
    };
    let report = run_grid(&grid, &options).unwrap();
    assert_eq!(report.ran(), vec![0, 1], "{:?}", report.outcomes);
    for (i, variant) in ["practice", "chapter"].into_iter().enumerate() {
        let s = shard::finished(&out, &grid, &grid.cells[i]).unwrap();
        assert_eq!(s.status, Status::Ok, "{variant}");
        let values = |metric: &str| -> Vec<(u64, f64)> {
            s.metrics
                .iter()
                .filter(|m| m.metric == metric)
                .map(|m| (m.step, m.value))
                .collect()
        };
        let steps: Vec<u64> = values("eval_return").iter().map(|v| v.0).collect();
        assert_eq!(steps, vec![30, 60], "{variant}");
        assert_eq!(values("final_eval_return")[0].1, values("eval_return")[1].1);
        assert_eq!(values("update_steps_per_second").len(), 1, "{variant}");
        assert_eq!(values("critic_loss").len(), 2, "{variant}");
        let betas: Vec<f64> = values("beta").iter().map(|v| v.1).collect();
        if variant == "chapter" {
            assert_eq!(values("value_loss").len(), 2);
            for beta in betas {
                assert!((beta - 0.3).abs() < 1e-6, "fixed β read back as {beta}");
            }
        } else {
            assert!(values("value_loss").is_empty());
            // Automatic: starts at 1 and moves.
            assert!(
                betas.iter().all(|&b| b > 0.0 && (b - 1.0).abs() > 1e-4),
                "{betas:?}"
            );
        }
    }
}
