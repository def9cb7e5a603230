//! Checkpoints: a network as JSON (sizes, activations, flat parameters).
//!
//! Reading goes through [`Mlp::from_params`], so a checkpoint whose parameter count does
//! not match its sizes, or that holds a non-finite value, is rejected with an error
//! naming the problem. serde_json writes the shortest decimal that reads back to the same
//! float, so a JSON round trip is bit-exact.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::activation::Activation;
use super::mlp::Mlp;
use super::scalar::Scalar;
use crate::error::{Error, Result};

/// The stored form of a network.
#[derive(Serialize)]
struct RecordRef<'a, T> {
    sizes: &'a [usize],
    hidden: Activation,
    output: Activation,
    params: &'a [T],
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Record<T> {
    sizes: Vec<usize>,
    hidden: Activation,
    output: Activation,
    params: Vec<T>,
}

impl<T: Scalar> Serialize for Mlp<T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        RecordRef {
            sizes: self.sizes(),
            hidden: self.hidden_activation(),
            output: self.output_activation(),
            params: self.params(),
        }
        .serialize(serializer)
    }
}

impl<'de, T: Scalar> Deserialize<'de> for Mlp<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let record = Record::<T>::deserialize(deserializer)?;
        Mlp::from_params(&record.sizes, record.hidden, record.output, record.params)
            .map_err(serde::de::Error::custom)
    }
}

impl<T: Scalar> Mlp<T> {
    pub fn to_json(&self) -> Result<String> {
        serde_json::to_string(self).map_err(|source| Error::Json {
            context: "writing a network checkpoint".into(),
            source,
        })
    }

    pub fn from_json(json: &str) -> Result<Self> {
        serde_json::from_str(json).map_err(|source| Error::Json {
            context: "reading a network checkpoint".into(),
            source,
        })
    }

    pub fn save_json(&self, path: &Path) -> Result<()> {
        std::fs::write(path, self.to_json()?).map_err(|source| Error::Io {
            context: format!("writing network checkpoint {}", path.display()),
            source,
        })
    }

    pub fn load_json(path: &Path) -> Result<Self> {
        let json = std::fs::read_to_string(path).map_err(|source| Error::Io {
            context: format!("reading network checkpoint {}", path.display()),
            source,
        })?;
        Mlp::from_json(&json)
    }
}
