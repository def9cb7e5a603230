//! Typed errors for the library. Every fallible public function returns [`Result`];
//! the command line turns an [`Error`](enum@Error) into one sentence and a non-zero exit code.

use thiserror::Error;

/// Everything that can go wrong in the library, each variant naming the problem.
#[derive(Debug, Error)]
pub enum Error {
    #[error("unknown environment {0:?} (known: {known})", known = crate::env::KNOWN_ENVS.join(", "))]
    UnknownEnv(String),

    #[error("{env}: action has {got} components, the action space has {expected}")]
    ActionDim {
        env: String,
        expected: usize,
        got: usize,
    },

    #[error("{env}: action component {index} is {value}, not a finite number")]
    NonFiniteAction {
        env: String,
        index: usize,
        value: f64,
    },

    #[error("{env}: action is not feasible: {reason}")]
    InfeasibleAction { env: String, reason: String },

    #[error("{env}: step called before reset")]
    NotReset { env: String },

    #[error("{env}: state has {got} components, expected {expected}")]
    StateDim {
        env: String,
        expected: usize,
        got: usize,
    },

    #[error("invalid value for {field}: {reason}")]
    InvalidParameter { field: String, reason: String },

    #[error("{path}: line {line}: {reason}")]
    MalformedCsv {
        path: String,
        line: u64,
        reason: String,
    },

    /// An optimization solver could not produce an answer (infeasible or unbounded problem,
    /// a problem it cannot state, a solution that fails verification).
    #[error("{solver}: {reason}")]
    Solver { solver: String, reason: String },

    #[error("numerical failure in {context}: {reason}")]
    Numerical { context: String, reason: String },

    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },

    #[error("{context}: {source}")]
    Json {
        context: String,
        #[source]
        source: serde_json::Error,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Shorthand for [`Error::InvalidParameter`].
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::InvalidParameter {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// Shorthand for [`Error::Solver`].
    pub fn solver(solver: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Solver {
            solver: solver.into(),
            reason: reason.into(),
        }
    }
}
