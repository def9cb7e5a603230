//! The harness's errors. Every message names what it is about: a config error the file
//! and the key, a cell error the cell, an I/O error the path.

use std::path::{Path, PathBuf};

use thiserror::Error;

/// A problem in a grid file, found before anything runs.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("{}: {key}: {reason}", file.display())]
pub struct ConfigError {
    /// The grid file.
    pub file: PathBuf,
    /// Where in it, as a dotted path: `experiment.fqi_lqr.params.lr`, `experiment[2].seeds`.
    pub key: String,
    /// What is wrong.
    pub reason: String,
}

impl ConfigError {
    pub fn new(file: &Path, key: impl Into<String>, reason: impl Into<String>) -> Self {
        ConfigError {
            file: file.to_path_buf(),
            key: key.into(),
            reason: reason.into(),
        }
    }
}

/// Everything else that can go wrong in the harness.
#[derive(Debug, Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] ConfigError),

    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{}: {reason}", path.display())]
    Malformed { path: PathBuf, reason: String },

    /// A cell failed for a reason other than divergence (a bug or a bad setup): it is
    /// not recorded, so the next run retries it.
    #[error("{cell}: {source}")]
    Cell {
        cell: String,
        #[source]
        source: policy_param::Error,
    },

    #[error("{0}")]
    Usage(String),

    /// A command would have destroyed results (replaced a table with a smaller one): it
    /// wrote nothing.
    #[error("{0}")]
    Refused(String),

    #[error("tables: {0}")]
    Polars(#[from] polars::error::PolarsError),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        Error::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    pub fn malformed(path: &Path, reason: impl Into<String>) -> Self {
        Error::Malformed {
            path: path.to_path_buf(),
            reason: reason.into(),
        }
    }
}

/// A key in an adapter's config and what is wrong with its value: what an
/// [`Experiment::check`](crate::experiment::Experiment::check) returns. The loader turns it
/// into a [`ConfigError`] naming the file and the full key path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invalid {
    pub key: String,
    pub reason: String,
}

impl Invalid {
    pub fn new(key: impl Into<String>, reason: impl Into<String>) -> Self {
        Invalid {
            key: key.into(),
            reason: reason.into(),
        }
    }
}

/// Why a cell stopped without a result.
#[derive(Debug, Error)]
pub enum CellError {
    /// NaN or infinite values, an exploding loss: recorded in the shard as `diverged`,
    /// and the grid goes on.
    #[error("diverged: {0}")]
    Diverged(String),
    /// Anything else: reported, not recorded.
    #[error(transparent)]
    Failed(policy_param::Error),
}

impl From<policy_param::Error> for CellError {
    /// The library's numerical failures (non-finite targets, losses, δ) are divergence.
    fn from(e: policy_param::Error) -> Self {
        match e {
            policy_param::Error::Numerical { .. } => CellError::Diverged(e.to_string()),
            other => CellError::Failed(other),
        }
    }
}
