//! Tiny grids for the harness tests: seconds in the dev profile.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// FQI on the scalar LQR (2 maximizers × 2 seeds, 8 iterations), FQI on Pendulum-v1 with a
/// small network (2 seeds, 3 iterations, randomized Adam minibatches), and MILP vs
/// enumeration on two small allocation instances (timing metrics).
pub const TINY: &str = r#"
description = "tiny test grid"

[[experiment]]
name = "lqr"
algorithm = "fqi_explicit"
environment = "Lqr"
seeds = [0, 1]
[experiment.params]
points = 40
iterations = 8
[experiment.sweep]
maximizer = ["quadratic", "lbfgs"]
state_bound = [1.0, 2.0]

[[experiment]]
name = "pendulum"
algorithm = "fqi_explicit"
environment = "Pendulum-v1"
seeds = [0, 1]
[experiment.params]
points = 200
width = 8
iterations = 3
epochs = 1
batch_size = 32
eval_episodes = 2
eval_every = 2

[[experiment]]
name = "milp"
algorithm = "milp_maximize"
environment = "Allocation"
seeds = [0]
[experiment.params]
states = 2
[experiment.sweep]
sites = [2, 3]
"#;

/// Pendulum cells of which one diverges: a learning rate of 1e30 sends the fit loss to
/// infinity at the first iteration.
pub const DIVERGING: &str = r#"
[[experiment]]
name = "pendulum"
algorithm = "fqi_explicit"
environment = "Pendulum-v1"
seeds = [0]
[experiment.params]
points = 100
width = 8
iterations = 2
epochs = 1
batch_size = 32
eval_episodes = 1
eval_every = 0
[experiment.sweep]
lr = [1e-3, 1e30, 3e-3]
"#;

/// A fresh directory under the system's temp dir, removed when dropped.
pub struct TempDir(tempfile::TempDir);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        let prefix = format!("policy-param-harness-{tag}-");
        TempDir(tempfile::Builder::new().prefix(&prefix).tempdir().unwrap())
    }

    pub fn path(&self) -> &Path {
        self.0.path()
    }

    /// Write `text` as grid file `name` here and return its path.
    pub fn grid(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }
}
