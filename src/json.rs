//! JSON checkpoints (networks, DDPG and SAC runs) to strings and files, with errors that
//! say what was being read or written. Floats are written in their shortest round-tripping
//! form, so a checkpoint restores bit for bit.

use std::path::Path;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{Error, Result};

/// `value` as JSON; `what` names it in errors ("SAC checkpoint").
pub(crate) fn to_string<T: Serialize>(value: &T, what: &str) -> Result<String> {
    serde_json::to_string(value).map_err(|source| Error::Json {
        context: format!("writing a {what}"),
        source,
    })
}

/// A `T` from JSON.
pub(crate) fn from_str<T: DeserializeOwned>(json: &str, what: &str) -> Result<T> {
    serde_json::from_str(json).map_err(|source| Error::Json {
        context: format!("reading a {what}"),
        source,
    })
}

pub(crate) fn write_file(path: &Path, json: &str, what: &str) -> Result<()> {
    std::fs::write(path, json).map_err(|source| Error::Io {
        context: format!("writing {what} {}", path.display()),
        source,
    })
}

pub(crate) fn read_file(path: &Path, what: &str) -> Result<String> {
    std::fs::read_to_string(path).map_err(|source| Error::Io {
        context: format!("reading {what} {}", path.display()),
        source,
    })
}
