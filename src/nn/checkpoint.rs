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
use crate::error::Result;
use crate::json;

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

/// Names a network checkpoint in errors.
const WHAT: &str = "network checkpoint";

impl<T: Scalar> Mlp<T> {
    pub fn to_json(&self) -> Result<String> {
        json::to_string(self, WHAT)
    }

    pub fn from_json(json: &str) -> Result<Self> {
        json::from_str(json, WHAT)
    }

    pub fn save_json(&self, path: &Path) -> Result<()> {
        json::write_file(path, &self.to_json()?, WHAT)
    }

    pub fn load_json(path: &Path) -> Result<Self> {
        Mlp::from_json(&json::read_file(path, WHAT)?)
    }
}
