//! Grid files (`experiments/*.toml`) into validated, typed grids.
//!
//! ```toml
//! description = "what the grid shows"
//!
//! [[experiment]]
//! name = "fqi_lqr"               # unique in the file; [a-z0-9_-]
//! algorithm = "fqi_explicit"     # with `environment`, picks the adapter
//! environment = "Lqr"
//! seeds = [0, 1, 2]
//! description = "optional"
//!
//! [experiment.params]            # fixed values of the adapter's config keys
//! iterations = 40
//!
//! [experiment.sweep]             # lists: the grid is their cartesian product × seeds
//! system = ["scalar", "double_integrator"]
//! maximizer = ["quadratic", "lbfgs"]
//!
//! [[figure]]                     # optional: a comparison the page leads with
//! title = "FQI on LQR: the maximizers compared"
//! metric = "gain_error"          # overlaid for every setting of these experiments
//! experiments = ["fqi_lqr"]      # default: every experiment
//! baseline = "fqi_lqr[system=scalar,maximizer=quadratic]"  # for the caption's statistics
//! step = 100                     # the step the caption compares at (default: the last)
//! better = "lower"               # default: guessed from the metric's name
//! caption = "What to look for."
//! references = [{ label = "a published figure", value = 0.0 }]
//! ```
//!
//! Every cell's config is deserialized into the adapter's typed config (unknown keys and
//! wrong types refused) and checked (ranges) when the file is loaded, before anything
//! runs; an error names the file, the key path and the reason.
//!
//! Cells are ordered: experiments in file order, then the sweep's cartesian product with
//! the first sweep key varying slowest, then the seeds. A cell's index is its position.
//! Its identity is its config hash: SHA-256 of the canonical JSON (sorted keys) of
//! experiment name, algorithm, environment, typed config with defaults filled in, and
//! seed. The setting hash is the same without the seed: seeds of one setting share it.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::error::{ConfigError, Error, Invalid, Result};
use crate::experiment::Adapter;
use crate::registry::lookup;

/// A loaded grid: its experiments and every cell, validated.
pub struct Grid {
    /// The file stem: names `results/<name>/`, `results/<name>.csv`, ...
    pub name: String,
    pub file: PathBuf,
    pub description: String,
    pub experiments: Vec<ExperimentSpec>,
    pub cells: Vec<Cell>,
    /// The comparison figures the file declares, in file order.
    pub figures: Vec<FigureSpec>,
}

/// One `[[figure]]` table: every setting of some experiments overlaid on one metric,
/// with reference lines (a peer's published figure) and a caption with the settings'
/// statistics at one step. It changes no cell: editing it reruns nothing.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FigureSpec {
    pub title: String,
    pub metric: String,
    /// The experiments overlaid, or single settings of them (`experiment[k=v]`); empty:
    /// all of them.
    #[serde(default)]
    pub experiments: Vec<String>,
    /// The setting (`experiment` or `experiment[k=v]`) the others are compared with;
    /// default: the first.
    #[serde(default)]
    pub baseline: Option<String>,
    /// The step of the caption's statistics; default: each cell's last.
    #[serde(default)]
    pub step: Option<u64>,
    /// `higher` or `lower`; default: guessed from the metric's name.
    #[serde(default)]
    pub better: Option<String>,
    /// Prose under the figure: what to look for.
    #[serde(default)]
    pub caption: String,
    /// Horizontal lines for outside figures (a peer's published result).
    #[serde(default)]
    pub references: Vec<Reference>,
}

/// A horizontal reference line of a figure.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reference {
    pub label: String,
    pub value: f64,
}

/// One `[[experiment]]` table.
pub struct ExperimentSpec {
    pub name: String,
    pub algorithm: String,
    pub environment: String,
    pub description: String,
    pub adapter: &'static dyn Adapter,
    /// The swept keys, in file order.
    pub sweep_keys: Vec<String>,
}

/// One job: an experiment, one value per swept key, one seed.
#[derive(Clone, Debug)]
pub struct Cell {
    pub index: usize,
    /// Index into [`Grid::experiments`].
    pub experiment: usize,
    pub experiment_name: String,
    /// The swept keys' values of this cell, in sweep order (as JSON).
    pub sweep: Vec<(String, serde_json::Value)>,
    /// The adapter's typed config with defaults filled in, as canonical JSON.
    pub config: serde_json::Value,
    pub seed: u64,
    pub config_hash: String,
    pub setting_hash: String,
}

impl Cell {
    /// `k=v,k2=v2` over the swept keys (empty when nothing is swept).
    pub fn setting_label(&self) -> String {
        setting_label(&self.sweep)
    }

    /// `experiment[k=v,...]`: the cell's setting, seeds aside.
    pub fn setting_name(&self) -> String {
        setting_name(&self.experiment_name, &self.setting_label())
    }

    /// `experiment[k=v,...] seed=S`: how messages and tables name the cell.
    pub fn label(&self) -> String {
        format!("{} seed={}", self.setting_name(), self.seed)
    }

    /// The shard's file name under `results/<grid>/cells/`.
    pub fn shard_file_name(&self) -> String {
        format!("{}-{}.json", self.experiment_name, &self.config_hash[..16])
    }
}

/// `experiment[setting]`, or the experiment alone when nothing is swept: how tables,
/// figures, `compare` and grid files name a setting.
pub fn setting_name(experiment: &str, setting: &str) -> String {
    if setting.is_empty() {
        experiment.to_string()
    } else {
        format!("{experiment}[{setting}]")
    }
}

/// `k=v,k2=v2`; strings without quotes.
pub fn setting_label(sweep: &[(String, serde_json::Value)]) -> String {
    let mut s = String::new();
    for (i, (k, v)) in sweep.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        let _ = write!(s, "{k}={}", display_value(v));
    }
    s
}

/// A JSON value as a table cell shows it: strings bare, the rest as JSON.
pub fn display_value(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GridFile {
    #[serde(default)]
    description: String,
    experiment: Vec<ExperimentFile>,
    #[serde(default)]
    figure: Vec<FigureSpec>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExperimentFile {
    name: String,
    algorithm: String,
    environment: String,
    seeds: Vec<u64>,
    #[serde(default)]
    description: String,
    #[serde(default)]
    params: toml::Table,
    #[serde(default)]
    sweep: toml::Table,
}

impl Grid {
    /// Read, parse and validate `file`, and expand its cells.
    pub fn load(file: &Path) -> Result<Grid> {
        let text = std::fs::read_to_string(file).map_err(|e| Error::io(file, e))?;
        Ok(Grid::parse(file, &text)?)
    }

    /// Parse and validate the text of grid file `file`.
    pub fn parse(file: &Path, text: &str) -> Result<Grid, ConfigError> {
        let name = file
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        if let Err(why) = check_name(&name) {
            return Err(ConfigError::new(
                file,
                "(file name)",
                format!("grid name {name:?} (the file stem) {why}"),
            ));
        }
        if name.ends_with(SUMMARY_SUFFIX) {
            return Err(ConfigError::new(
                file,
                "(file name)",
                format!(
                    "grid name {name:?} ends with {SUMMARY_SUFFIX:?}: grid {:?} writes its summary table under that name",
                    &name[..name.len() - SUMMARY_SUFFIX.len()]
                ),
            ));
        }
        let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
            let key = match e.span() {
                Some(span) => {
                    let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
                    format!("line {line}")
                }
                None => "(syntax)".to_string(),
            };
            ConfigError::new(file, key, e.message().trim().to_string())
        })?;
        // Experiment names by position, so that errors can name experiments.
        let names: Vec<Option<String>> = match table.get("experiment") {
            Some(toml::Value::Array(items)) => items
                .iter()
                .map(|t| t.get("name").and_then(|n| n.as_str()).map(str::to_string))
                .collect(),
            _ => Vec::new(),
        };
        let parsed: GridFile = serde_path_to_error::deserialize(toml::Value::Table(table))
            .map_err(|e| {
                let path = e.path().to_string();
                ConfigError::new(
                    file,
                    name_experiments(&path, &names),
                    e.into_inner().to_string(),
                )
            })?;
        if parsed.experiment.is_empty() {
            return Err(ConfigError::new(
                file,
                "experiment",
                "no [[experiment]] table",
            ));
        }
        check_cell_count(file, &parsed.experiment)?;

        let mut experiments = Vec::new();
        let mut cells = Vec::new();
        let mut seen_names = BTreeSet::new();
        let mut seen_hashes = BTreeSet::new();
        for (e_index, exp) in parsed.experiment.into_iter().enumerate() {
            let at = |key: &str| format!("experiment.{}.{key}", exp.name);
            if let Err(why) = check_name(&exp.name) {
                return Err(ConfigError::new(
                    file,
                    format!("experiment[{e_index}].name"),
                    format!("{:?} {why}", exp.name),
                ));
            }
            if !seen_names.insert(exp.name.clone()) {
                return Err(ConfigError::new(
                    file,
                    at("name"),
                    "two experiments have this name",
                ));
            }
            let adapter = lookup(&exp.algorithm, &exp.environment)
                .map_err(|inv| ConfigError::new(file, at(&inv.key), inv.reason))?;
            if exp.seeds.is_empty() {
                return Err(ConfigError::new(file, at("seeds"), "no seeds"));
            }
            if let Some(s) = first_duplicate(&exp.seeds) {
                return Err(ConfigError::new(
                    file,
                    at("seeds"),
                    format!("seed {s} appears twice"),
                ));
            }
            let mut sweep: Vec<(String, Vec<toml::Value>)> = Vec::new();
            for (key, value) in &exp.sweep {
                let values = match value {
                    toml::Value::Array(values) if !values.is_empty() => values.clone(),
                    toml::Value::Array(_) => {
                        return Err(ConfigError::new(
                            file,
                            at(&format!("sweep.{key}")),
                            "an empty list sweeps nothing: give at least one value",
                        ))
                    }
                    other => {
                        return Err(ConfigError::new(
                            file,
                            at(&format!("sweep.{key}")),
                            format!(
                                "a sweep is a list of values, found {} (a fixed value goes in [experiment.params])",
                                other.type_str()
                            ),
                        ))
                    }
                };
                if exp.params.contains_key(key) {
                    return Err(ConfigError::new(
                        file,
                        at(&format!("sweep.{key}")),
                        "is also set in params: set it in one place",
                    ));
                }
                sweep.push((key.clone(), values));
            }
            let sweep_keys: Vec<String> = sweep.iter().map(|(k, _)| k.clone()).collect();

            // The cartesian product, first key slowest (its size is checked above).
            let combinations: usize = sweep.iter().map(|(_, v)| v.len()).product();
            for c in 0..combinations {
                let mut choice = vec![0usize; sweep.len()];
                let mut rest = c;
                for (slot, (_, values)) in choice.iter_mut().zip(&sweep).rev() {
                    *slot = rest % values.len();
                    rest /= values.len();
                }
                let mut table = exp.params.clone();
                let mut swept = Vec::new();
                for ((key, values), &i) in sweep.iter().zip(&choice) {
                    table.insert(key.clone(), values[i].clone());
                    swept.push((key.clone(), toml_to_json(&values[i])));
                }
                let config = adapter
                    .parse(&exp.environment, table)
                    .map_err(|inv| locate(file, &exp.name, &inv, &sweep, &choice))?;
                for &seed in &exp.seeds {
                    let identity = |seed: Option<u64>| {
                        serde_json::json!({
                            "experiment": exp.name,
                            "algorithm": exp.algorithm,
                            "environment": exp.environment,
                            "config": config,
                            "seed": seed,
                        })
                    };
                    let config_hash = hash(&identity(Some(seed)));
                    if !seen_hashes.insert(config_hash.clone()) {
                        return Err(ConfigError::new(
                            file,
                            at("sweep"),
                            format!(
                                "two cells have the same config ({} seed={seed}): a value is listed twice",
                                setting_label(&swept)
                            ),
                        ));
                    }
                    cells.push(Cell {
                        index: cells.len(),
                        experiment: e_index,
                        experiment_name: exp.name.clone(),
                        sweep: swept.clone(),
                        config: config.clone(),
                        seed,
                        config_hash,
                        setting_hash: hash(&identity(None)),
                    });
                }
            }
            experiments.push(ExperimentSpec {
                name: exp.name,
                algorithm: exp.algorithm,
                environment: exp.environment,
                description: exp.description,
                adapter,
                sweep_keys,
            });
        }
        for (i, figure) in parsed.figure.iter().enumerate() {
            check_figure(file, i, figure, &experiments, &cells)?;
        }
        Ok(Grid {
            name,
            file: file.to_path_buf(),
            description: parsed.description,
            experiments,
            cells,
            figures: parsed.figure,
        })
    }

    pub fn experiment_of(&self, cell: &Cell) -> &ExperimentSpec {
        &self.experiments[cell.experiment]
    }
}

/// A declared figure names experiments, a baseline setting and a direction that exist.
fn check_figure(
    file: &Path,
    index: usize,
    figure: &FigureSpec,
    experiments: &[ExperimentSpec],
    cells: &[Cell],
) -> Result<(), ConfigError> {
    let at = |key: &str| format!("figure[{index}].{key}");
    if figure.title.trim().is_empty() {
        return Err(ConfigError::new(file, at("title"), "is empty"));
    }
    if figure.metric.trim().is_empty() {
        return Err(ConfigError::new(file, at("metric"), "is empty"));
    }
    // What an entry of `experiments` or `baseline` may name: an experiment, or one of its
    // settings as `experiment[k=v,...]`.
    let label = Cell::setting_name;
    let mut names: BTreeSet<String> = experiments.iter().map(|e| e.name.clone()).collect();
    names.extend(cells.iter().map(label));
    for (i, name) in figure.experiments.iter().enumerate() {
        if !names.contains(name) {
            let known: Vec<&str> = experiments.iter().map(|e| e.name.as_str()).collect();
            return Err(ConfigError::new(
                file,
                at(&format!("experiments[{i}]")),
                format!(
                    "no experiment or setting {name:?} (experiments: {})",
                    known.join(", ")
                ),
            ));
        }
    }
    if let Some(baseline) = &figure.baseline {
        let shown = |c: &Cell| {
            figure.experiments.is_empty()
                || figure
                    .experiments
                    .iter()
                    .any(|x| *x == c.experiment_name || *x == label(c))
        };
        let settings: BTreeSet<String> = cells
            .iter()
            .filter(|c| shown(c))
            .flat_map(|c| [c.experiment_name.clone(), label(c)])
            .collect();
        if !settings.contains(baseline) {
            return Err(ConfigError::new(
                file,
                at("baseline"),
                format!(
                    "{baseline:?} is no experiment or setting of this figure ({})",
                    settings.into_iter().collect::<Vec<_>>().join(", ")
                ),
            ));
        }
    }
    if let Some(better) = &figure.better {
        if better != "higher" && better != "lower" {
            return Err(ConfigError::new(
                file,
                at("better"),
                format!("{better:?} is neither \"higher\" nor \"lower\""),
            ));
        }
    }
    for (i, r) in figure.references.iter().enumerate() {
        if !r.value.is_finite() {
            return Err(ConfigError::new(
                file,
                at(&format!("references[{i}].value")),
                format!("{} is not a finite number", r.value),
            ));
        }
    }
    Ok(())
}

/// Where an adapter's complaint about key `inv.key` points in the file: the sweep list
/// (with the offending value) or the params table.
fn locate(
    file: &Path,
    experiment: &str,
    inv: &Invalid,
    sweep: &[(String, Vec<toml::Value>)],
    choice: &[usize],
) -> ConfigError {
    let top = inv
        .key
        .split(['.', '['])
        .next()
        .unwrap_or_default()
        .to_string();
    if let Some(pos) = sweep.iter().position(|(k, _)| *k == top) {
        let (_, values) = &sweep[pos];
        let rest = &inv.key[top.len()..];
        ConfigError::new(
            file,
            format!("experiment.{experiment}.sweep.{top}[{}]{rest}", choice[pos]),
            format!("{} (value {})", inv.reason, values[choice[pos]]),
        )
    } else if inv.key.is_empty() {
        ConfigError::new(
            file,
            format!("experiment.{experiment}.params"),
            inv.reason.clone(),
        )
    } else {
        ConfigError::new(
            file,
            format!("experiment.{experiment}.params.{}", inv.key),
            inv.reason.clone(),
        )
    }
}

/// `experiment[2].seeds` → `experiment.name.seeds` when experiment 2's name is known.
fn name_experiments(path: &str, names: &[Option<String>]) -> String {
    if let Some(rest) = path.strip_prefix("experiment[") {
        if let Some((index, tail)) = rest.split_once(']') {
            if let Ok(i) = index.parse::<usize>() {
                if let Some(Some(name)) = names.get(i) {
                    return format!("experiment.{name}{tail}");
                }
            }
        }
    }
    if path == "." {
        "(top level)".to_string()
    } else {
        path.to_string()
    }
}

/// The most cells a grid file may have. The cells are expanded, configs checked and
/// hashed when the file loads: `grid list` of 100 000 LQR cells took 1.7 s and 170 MB
/// (debug build, 2-core EPYC), about 17 µs and 1.7 kB a cell. A larger study is several
/// grid files.
pub const MAX_CELLS: u64 = 100_000;

/// The longest grid or experiment name, in characters: names become file names
/// (`results/<grid>_summary.csv`, `cells/.<experiment>-<hash>.json.<random>.tmp`), which
/// file systems limit to 255 bytes.
pub const MAX_NAME_LEN: usize = 64;

/// The suffix of a grid's summary table (`results/<grid>_summary.csv`): no grid name may
/// end with it, or its tables would overwrite another grid's summary.
pub const SUMMARY_SUFFIX: &str = "_summary";

/// A grid or experiment name is a file name on every system: 1 to [`MAX_NAME_LEN`] ASCII
/// letters, digits, '_' or '-', starting with a letter or digit (a leading '-' reads as
/// an option to command-line tools).
fn check_name(s: &str) -> std::result::Result<(), String> {
    let rule = "must be letters, digits, '_' or '-', starting with a letter or digit";
    if s.is_empty() {
        return Err(format!("is empty: it {rule}"));
    }
    let len = s.chars().count();
    if len > MAX_NAME_LEN {
        return Err(format!(
            "has {len} characters: at most {MAX_NAME_LEN} (names become file names)"
        ));
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    if !s.chars().all(allowed) || !s.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err(rule.to_string());
    }
    Ok(())
}

/// Refuse a grid of more than [`MAX_CELLS`] cells before expanding any: each
/// experiment's sweep lists multiplied with checked arithmetic, the count in the message.
fn check_cell_count(file: &Path, experiments: &[ExperimentFile]) -> Result<(), ConfigError> {
    let mut total: Option<u64> = Some(0);
    let mut parts = Vec::new();
    for exp in experiments {
        let mut factors: Vec<u64> = exp
            .sweep
            .values()
            .map(|v| v.as_array().map_or(1, |a| a.len() as u64))
            .collect();
        factors.push(exp.seeds.len() as u64);
        let cells = factors.iter().try_fold(1u64, |acc, &f| acc.checked_mul(f));
        total = total.zip(cells).and_then(|(t, c)| t.checked_add(c));
        let shown: Vec<String> = factors.iter().map(u64::to_string).collect();
        parts.push(format!(
            "{}: {} = {}",
            exp.name,
            shown.join(" × "),
            cells.map_or("more than 2^64".to_string(), |c| c.to_string())
        ));
    }
    match total {
        Some(n) if n <= MAX_CELLS => Ok(()),
        _ => Err(ConfigError::new(
            file,
            "experiment",
            format!(
                "the grid has {} cells (sweep values × seeds per experiment: {}); a grid file may have at most {MAX_CELLS}: split it into several files",
                total.map_or("more than 2^64".to_string(), |n| n.to_string()),
                parts.join("; ")
            ),
        )),
    }
}

fn first_duplicate(seeds: &[u64]) -> Option<u64> {
    let mut seen = BTreeSet::new();
    seeds.iter().copied().find(|s| !seen.insert(*s))
}

/// A TOML value as JSON (dates as their TOML text).
pub fn toml_to_json(v: &toml::Value) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        toml::Value::String(s) => J::String(s.clone()),
        toml::Value::Integer(i) => J::from(*i),
        toml::Value::Float(f) => serde_json::Number::from_f64(*f)
            .map(J::Number)
            .unwrap_or_else(|| J::String(f.to_string())),
        toml::Value::Boolean(b) => J::Bool(*b),
        toml::Value::Datetime(d) => J::String(d.to_string()),
        toml::Value::Array(a) => J::Array(a.iter().map(toml_to_json).collect()),
        toml::Value::Table(t) => J::Object(
            t.iter()
                .map(|(k, v)| (k.clone(), toml_to_json(v)))
                .collect(),
        ),
    }
}

/// JSON with object keys sorted at every level: the same value always gives the same text.
pub fn canonical_json(v: &serde_json::Value) -> String {
    fn write(v: &serde_json::Value, out: &mut String) {
        match v {
            serde_json::Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                out.push('{');
                for (i, k) in keys.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&serde_json::Value::String((*k).clone()).to_string());
                    out.push(':');
                    write(&map[*k], out);
                }
                out.push('}');
            }
            serde_json::Value::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write(item, out);
                }
                out.push(']');
            }
            other => out.push_str(&other.to_string()),
        }
    }
    let mut out = String::new();
    write(v, &mut out);
    out
}

/// SHA-256 of the canonical JSON, in hex.
pub fn hash(v: &serde_json::Value) -> String {
    let digest = Sha256::digest(canonical_json(v).as_bytes());
    let mut s = String::with_capacity(64);
    for b in digest {
        let _ = write!(s, "{b:02x}");
    }
    s
}
