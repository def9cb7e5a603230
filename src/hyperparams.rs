//! Hyperparameters as grids, `--set` and `policy-param keys` name them: one flat struct
//! per algorithm whose fields are the keys, one [`Key`] table giving each key's range and
//! meaning, named presets (the first gives the defaults). The table is the only place a range lives ([`Hyperparameters::check`] reads it, and so does the listing
//! of `policy-param keys`), and a unit test per algorithm keeps the table and the fields
//! in step ([`check_key_table`]).
//!
//! Values travel as JSON: a grid's TOML table or a `--set KEY=VALUE` is turned into a JSON
//! object by the caller, [`resolve`] lays it over a preset and reads it into the struct
//! (an unknown key or a wrong type is an error naming the key), then checks every key.

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// The values a key accepts, as checked and as listed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Range {
    /// A finite number > 0.
    Positive,
    /// A finite number ≥ 0.
    NonNegative,
    /// A number in (0, 1].
    UnitOpenLow,
    /// A number in [0, 1].
    Unit,
    /// An integer ≥ the bound.
    AtLeast(u64),
    /// A list of at least one layer width, each ≥ 1.
    Widths,
    /// One of the names.
    OneOf(&'static [&'static str]),
    /// `true` or `false`.
    Bool,
    /// Unset (`null`, the default) or a finite number > 0.
    OptionalPositive,
    /// Unset or one of the names.
    OptionalOneOf(&'static [&'static str]),
}

impl Range {
    /// `Ok` when `value` is in the range; otherwise why not, quoting the value.
    pub fn check(self, value: &Value) -> std::result::Result<(), String> {
        let number = || value.as_f64().filter(|v| v.is_finite());
        let ok = match self {
            Range::Positive => number().is_some_and(|v| v > 0.0),
            Range::NonNegative => number().is_some_and(|v| v >= 0.0),
            Range::UnitOpenLow => number().is_some_and(|v| v > 0.0 && v <= 1.0),
            Range::Unit => number().is_some_and(|v| (0.0..=1.0).contains(&v)),
            Range::AtLeast(min) => value.as_u64().is_some_and(|v| v >= min),
            Range::Widths => value.as_array().is_some_and(|layers| {
                !layers.is_empty() && layers.iter().all(|w| w.as_u64().is_some_and(|w| w >= 1))
            }),
            Range::OneOf(names) => value.as_str().is_some_and(|s| names.contains(&s)),
            Range::Bool => value.is_boolean(),
            Range::OptionalPositive => value.is_null() || number().is_some_and(|v| v > 0.0),
            Range::OptionalOneOf(names) => {
                value.is_null() || value.as_str().is_some_and(|s| names.contains(&s))
            }
        };
        if ok {
            Ok(())
        } else {
            Err(format!(
                "{} is not {}",
                crate::error::quote(&value.to_string()),
                self.describe()
            ))
        }
    }

    /// How `policy-param keys` and errors state the range.
    pub fn describe(self) -> String {
        match self {
            Range::Positive => "a finite number > 0".into(),
            Range::NonNegative => "a finite number ≥ 0".into(),
            Range::UnitOpenLow => "in (0, 1]".into(),
            Range::Unit => "in [0, 1]".into(),
            Range::AtLeast(min) => format!("an integer ≥ {min}"),
            Range::Widths => "a list of layer widths, each ≥ 1".into(),
            Range::OneOf(names) => format!("one of {}", names.join(", ")),
            Range::Bool => "true or false".into(),
            Range::OptionalPositive => "unset or a finite number > 0".into(),
            Range::OptionalOneOf(names) => format!("unset or one of {}", names.join(", ")),
        }
    }
}

/// One key: its name (the struct's field), its range and one line of meaning.
#[derive(Clone, Copy, Debug)]
pub struct Key {
    pub name: &'static str,
    pub range: Range,
    pub meaning: &'static str,
}

/// A named set of values: `preset = "zoo_pendulum"` in a grid, `--preset` on the command line.
#[derive(Clone, Copy, Debug)]
pub struct Preset<T> {
    pub name: &'static str,
    pub meaning: &'static str,
    pub values: fn() -> T,
}

/// A flat, serde-readable hyperparameter struct with its key table and presets.
pub trait Hyperparameters: Clone + Serialize + DeserializeOwned + 'static {
    /// Names the algorithm in errors (`ddpg.gamma`) and listings.
    const ALGORITHM: &'static str;
    /// Every field, in the order listings show them.
    const KEYS: &'static [Key];

    /// The named presets; the first is the default.
    fn presets() -> &'static [Preset<Self>];

    /// The values of the first preset: what a key left unset takes.
    fn defaults() -> Self {
        (Self::presets()[0].values)()
    }

    /// Checks between keys (a buffer at least one batch, …), after every key is in range;
    /// an error names the key to change.
    fn check_together(&self) -> Result<()> {
        Ok(())
    }

    /// Every key in range, then [`Hyperparameters::check_together`]. Errors name the key
    /// as grids write it.
    fn check(&self) -> Result<()> {
        let values = as_object(self)?;
        for key in Self::KEYS {
            let value = values.get(key.name).unwrap_or(&Value::Null);
            key.range
                .check(value)
                .map_err(|reason| Error::invalid(key.name, reason))?;
        }
        self.check_together()
    }

    /// The values of preset `name`, or an error listing the presets.
    fn preset(name: &str) -> Result<Self> {
        Self::presets()
            .iter()
            .find(|p| p.name == name)
            .map(|p| (p.values)())
            .ok_or_else(|| {
                let known: Vec<&str> = Self::presets().iter().map(|p| p.name).collect();
                Error::invalid(
                    "preset",
                    format!(
                        "{} has no preset {} (known: {})",
                        Self::ALGORITHM,
                        crate::error::quote(name),
                        known.join(", ")
                    ),
                )
            })
    }
}

/// `overrides` laid over preset `preset` (default: the first) and read into `T`, checked.
/// An unknown key, a wrong type or an out-of-range value is an error naming the key.
pub fn resolve<T: Hyperparameters>(
    preset: Option<&str>,
    overrides: &Map<String, Value>,
) -> Result<T> {
    let base = match preset {
        Some(name) => T::preset(name)?,
        None => T::defaults(),
    };
    let mut values = as_object(&base)?;
    for (key, value) in overrides {
        if !values.contains_key(key) {
            return Err(unknown_key::<T>(key, T::KEYS.iter()));
        }
        values.insert(key.clone(), value.clone());
    }
    let resolved: T = serde_path_to_error::deserialize(Value::Object(values)).map_err(|e| {
        let key = e.path().to_string();
        Error::invalid(key, e.into_inner().to_string())
    })?;
    resolved.check()?;
    Ok(resolved)
}

/// The error for a key that `T` does not have, listing the `known` keys.
pub fn unknown_key<'k, T: Hyperparameters>(
    key: &str,
    known: impl Iterator<Item = &'k Key>,
) -> Error {
    let known: Vec<&str> = known.map(|k| k.name).collect();
    let shown: String = key.chars().take(60).collect();
    Error::invalid(
        if shown.len() < key.len() {
            format!("{shown}…")
        } else {
            shown
        },
        format!(
            "{} has no such key (see `policy-param keys {}`; known: {})",
            T::ALGORITHM,
            T::ALGORITHM,
            known.join(", ")
        ),
    )
}

/// The check between keys every replay-based agent makes: a buffer holds a minibatch.
pub fn check_buffer_holds_batch(buffer_size: usize, batch_size: usize) -> Result<()> {
    if buffer_size < batch_size {
        return Err(Error::invalid(
            "buffer_size",
            format!("{buffer_size} is less than batch_size {batch_size}"),
        ));
    }
    Ok(())
}

/// `value` as a JSON object (every field, defaults included).
pub fn as_object<T: Serialize>(value: &T) -> Result<Map<String, Value>> {
    match serde_json::to_value(value) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(Error::invalid(
            "hyperparameters",
            format!("not a table: {other}"),
        )),
        Err(e) => Err(Error::invalid("hyperparameters", e.to_string())),
    }
}

/// For each algorithm's unit test: the key table names exactly the struct's fields, every
/// preset passes its own check.
pub fn check_key_table<T: Hyperparameters + PartialEq + std::fmt::Debug>() {
    let fields: Vec<String> = as_object(&T::defaults()).unwrap().keys().cloned().collect();
    let mut keys: Vec<String> = T::KEYS.iter().map(|k| k.name.to_string()).collect();
    keys.sort();
    assert_eq!(
        keys,
        fields,
        "{}: key table and fields differ",
        T::ALGORITHM
    );
    for preset in T::presets() {
        if let Err(e) = (preset.values)().check() {
            panic!(
                "{} preset {} fails its check: {e}",
                T::ALGORITHM,
                preset.name
            );
        }
    }
}
