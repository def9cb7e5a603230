//! `results/manifest.json`: what produced the results — crate versions, compiler, git
//! commit, machine, thread count, and per grid its wall time and cell counts. Each grid's
//! entry is replaced when that grid runs; the others are kept.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The workspace's lock file, compiled in: the versions that were built.
const CARGO_LOCK: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.lock"));

/// The crates whose versions the manifest records.
const RECORDED_CRATES: &[&str] = &[
    "policy-param",
    "policy-param-harness",
    "argmin",
    "good_lp",
    "microlp",
    "gemm",
    "nalgebra",
    "ndarray",
    "rand",
    "rand_chacha",
    "rayon",
    "polars",
    "plotly",
    "indicatif",
    "toml",
    "serde_json",
];

/// One grid's entry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GridEntry {
    pub file: String,
    pub git_commit: String,
    pub rustc: String,
    pub crate_versions: BTreeMap<String, String>,
    pub hostname: String,
    pub cpu_model: String,
    pub cpus: usize,
    /// Threads of the grid's rayon pool.
    pub threads: usize,
    pub cells: usize,
    pub ran: usize,
    pub skipped: usize,
    pub diverged: usize,
    pub failed: usize,
    /// Wall time of this run of the grid (skipped cells cost nothing).
    pub wall_seconds: f64,
    /// Sum of the wall times recorded in the grid's shards (all cells, whenever they ran).
    pub cell_seconds_total: f64,
    /// Seconds since the Unix epoch when the run finished.
    pub finished_at: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub grids: BTreeMap<String, GridEntry>,
}

/// Versions of the crates the results depend on (ndarray, rayon, polars, ...), read from
/// the compiled-in Cargo.lock.
pub fn crate_versions() -> BTreeMap<String, String> {
    let mut versions = BTreeMap::new();
    let mut name: Option<&str> = None;
    for line in CARGO_LOCK.lines() {
        if let Some(n) = line.strip_prefix("name = ") {
            name = Some(n.trim_matches('"'));
        } else if let (Some(v), Some(n)) = (line.strip_prefix("version = "), name.take()) {
            if RECORDED_CRATES.contains(&n) {
                versions
                    .entry(n.to_string())
                    .or_insert_with(|| v.trim_matches('"').to_string());
            }
        }
    }
    versions
}

pub fn rustc_version() -> &'static str {
    env!("HARNESS_RUSTC_VERSION")
}

/// `git rev-parse HEAD`, with `-dirty` when tracked files outside `results/` changed;
/// "unknown" outside a git checkout.
pub fn git_commit() -> String {
    let run = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let Some(head) = run(&["rev-parse", "HEAD"]) else {
        return "unknown".to_string();
    };
    let dirty = run(&[
        "status",
        "--porcelain",
        "--untracked-files=no",
        "--",
        ".",
        ":(exclude)results",
    ])
    .is_some_and(|s| !s.is_empty());
    if dirty {
        format!("{head}-dirty")
    } else {
        head
    }
}

/// Read `out/manifest.json` (empty if absent).
pub fn read(out: &Path) -> Result<Manifest> {
    let path = out.join("manifest.json");
    match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text)
            .map_err(|e| Error::malformed(&path, format!("not a manifest: {e}"))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Manifest::default()),
        Err(e) => Err(Error::io(&path, e)),
    }
}

/// Replace grid `name`'s entry in `out/manifest.json`, keeping the others: read, changed
/// and written under `out`'s [`DirLock`](crate::files::DirLock), so that overlapping runs
/// of different grids keep every entry.
pub fn record(out: &Path, name: &str, entry: GridEntry) -> Result<()> {
    let _lock = crate::files::DirLock::acquire(out)?;
    let mut manifest = read(out)?;
    manifest.grids.insert(name.to_string(), entry);
    let path = out.join("manifest.json");
    let text = serde_json::to_string_pretty(&manifest)
        .map_err(|e| Error::malformed(&path, e.to_string()))?;
    crate::files::write_text(&path, &(text + "\n"))
}
