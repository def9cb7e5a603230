//! Typed errors for the library. Every fallible public function returns [`Result`];
//! the command line turns an [`Error`](enum@Error) into one sentence and a non-zero exit code.

use thiserror::Error;

/// Everything that can go wrong in the library, each variant naming the problem.
#[derive(Debug, Error)]
pub enum Error {
    #[error("unknown environment {} (known: {})", quote(.id), .known.join(", "))]
    UnknownEnv {
        id: String,
        /// The ids that exist (`env::KNOWN_ENVS`, passed in by who refuses `id`).
        known: &'static [&'static str],
    },

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

    /// A trace (or other table of checks) with a header and no rows: passing it would
    /// claim agreement on nothing.
    #[error("{path}: no rows: nothing to check")]
    NoRows { path: String },

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

/// Characters of an input value that an error message quotes at most.
const QUOTE_MAX_CHARS: usize = 60;

/// `text` quoted and escaped as `{:?}` does, cut after `QUOTE_MAX_CHARS` (60) escaped characters
/// (then `…` and the full length): a megabyte field must not become a megabyte message,
/// and a quoted newline must not break the message's single line.
pub fn quote(text: &str) -> String {
    let mut shown = String::new();
    let mut width = 0;
    for c in text.chars() {
        if width >= QUOTE_MAX_CHARS {
            return format!("\"{shown}\"… ({} bytes)", text.len());
        }
        // `{:?}` of a str leaves single quotes alone; char::escape_debug would not.
        let start = shown.len();
        if c == '\'' {
            shown.push(c);
        } else {
            shown.extend(c.escape_debug());
        }
        width += shown[start..].chars().count();
    }
    format!("\"{shown}\"")
}

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

/// Moves an [`Error::InvalidParameter`] under another field name: `adam.lr` → `ddpg.critic_optimizer.lr`.
pub(crate) fn rename_field(error: Error, prefix: &str, strip: &str) -> Error {
    match error {
        Error::InvalidParameter { field, reason } => Error::InvalidParameter {
            field: format!("{prefix}.{}", field.strip_prefix(strip).unwrap_or(&field)),
            reason,
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_escapes_and_cuts_long_values() {
        assert_eq!(quote("it's"), "\"it's\"");
        assert_eq!(quote("a\nb\"c"), "\"a\\nb\\\"c\"");
        let exactly = "x".repeat(QUOTE_MAX_CHARS);
        assert_eq!(quote(&exactly), format!("\"{exactly}\""));
        let long = "9".repeat(1 << 20);
        let quoted = quote(&long);
        assert_eq!(quoted, format!("\"{}\"… (1048576 bytes)", &long[..60]));
        // Escapes count at their escaped width, so control characters cannot inflate it.
        let controls = quote(&"\u{1}".repeat(1000));
        assert!(controls.len() < 100, "{controls}");
        assert!(!controls.contains('\n'));
        let unknown = Error::UnknownEnv {
            id: "E".repeat(10_000),
            known: &["Pendulum-v1"],
        }
        .to_string();
        assert!(unknown.len() < 200, "{unknown}");
    }
}
