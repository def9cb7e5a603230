//! The harness's errors. Every message names what it is about: a config error the file
//! and the key, a cell error the cell, an I/O error the path.

use std::path::{Path, PathBuf};

use thiserror::Error;

/// A problem in a grid file, found before anything runs.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("{}: {key}: {reason}", shown(file))]
pub struct ConfigError {
    /// The grid file.
    pub file: PathBuf,
    /// Where in it, as a dotted path: `experiment.fqi_lqr.params.lr`, `experiment[2].seeds`.
    pub key: String,
    /// What is wrong.
    pub reason: String,
}

impl ConfigError {
    /// Key and reason are [`abbreviate`]d: they may quote the file's own text.
    pub fn new(file: &Path, key: impl Into<String>, reason: impl Into<String>) -> Self {
        ConfigError {
            file: file.to_path_buf(),
            key: shorten(&one_line(&key.into()), WORD_LIMIT),
            reason: abbreviate(&one_line(&reason.into())),
        }
    }
}

/// The longest word (run of non-blank characters) a message quotes whole: a path, a key,
/// a value. Longer ones keep a prefix and their length.
pub const WORD_LIMIT: usize = 200;
/// The longest message, in characters.
pub const MESSAGE_LIMIT: usize = 4000;

/// `path` as a message shows it: control characters (a line break in a file name) escaped,
/// so that one error stays one line.
pub fn shown(path: &Path) -> String {
    let text = path.display().to_string();
    if text.chars().any(char::is_control) {
        text.chars()
            .map(|c| {
                if c.is_control() {
                    c.escape_default().to_string()
                } else {
                    c.to_string()
                }
            })
            .collect()
    } else {
        text
    }
}

/// `text` whole if it has at most `limit` characters, else its first 60 and its length:
/// a key is quoted once more in its reason, and is short in every grid file written by hand.
pub fn shorten(text: &str, limit: usize) -> String {
    let chars = text.chars().count();
    if chars <= limit {
        return text.to_string();
    }
    let prefix: String = text.chars().take(60).collect();
    format!("{prefix}…({chars} characters)")
}

/// `text` on one line: the parsers' messages end in "\nin `key`", and an error is one
/// line on stderr.
pub fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `text` with each word longer than [`WORD_LIMIT`] cut to its first 60 characters and
/// its length, and the whole cut at [`MESSAGE_LIMIT`]: a 1 MB key or value in an input
/// file never reaches stderr.
pub fn abbreviate(text: &str) -> String {
    fn cut(s: &str, keep: usize) -> &str {
        match s.char_indices().nth(keep) {
            Some((i, _)) => &s[..i],
            None => s,
        }
    }
    if text.len() <= WORD_LIMIT {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len().min(MESSAGE_LIMIT + 64));
    let mut rest = text;
    while !rest.is_empty() {
        let blank = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let (word, tail) = rest.split_at(blank);
        let chars = word.chars().count();
        if chars > WORD_LIMIT {
            // Closing quotes and punctuation stay: `"vvv…(N characters)",`.
            let body = word.trim_end_matches(|c: char| c.is_ascii_punctuation());
            out.push_str(cut(body, 60));
            out.push_str(&format!("…({chars} characters)"));
            out.push_str(&word[body.len()..]);
        } else {
            out.push_str(word);
        }
        let space = tail.len() - tail.trim_start().len();
        out.push_str(&tail[..space]);
        rest = &tail[space..];
        if out.chars().count() > MESSAGE_LIMIT {
            let total = text.chars().count();
            let mut short = cut(&out, MESSAGE_LIMIT).to_string();
            short.push_str(&format!("… ({total} characters in all)"));
            return short;
        }
    }
    out
}

/// Everything else that can go wrong in the harness.
#[derive(Debug, Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] ConfigError),

    #[error("{}: {source}", shown(path))]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{}: {reason}", shown(path))]
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

    #[error(transparent)]
    Library(#[from] policy_param::Error),

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
            reason: abbreviate(&one_line(&reason.into())),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_words_keep_a_prefix_and_their_length() {
        let key = "k".repeat(1 << 20);
        let message = abbreviate(&format!("unknown field `{key}`, expected one of `lr`"));
        assert!(message.len() < 200, "{} bytes", message.len());
        assert!(message.contains("(1048579 characters)"), "{message}");
        assert!(message.ends_with("`, expected one of `lr`"), "{message}");
        assert_eq!(one_line("invalid type\nin `lr`\n"), "invalid type in `lr`");
        // Short messages are untouched; multi-byte characters are cut on a boundary.
        assert_eq!(abbreviate("a short one"), "a short one");
        assert!(abbreviate(&"é".repeat(300)).starts_with(&"é".repeat(60)));
        // Many short words: the whole is bounded.
        let many = "word ".repeat(10_000);
        assert!(abbreviate(&many).chars().count() < MESSAGE_LIMIT + 64);
    }
}
