//! Property tests of what the harness reads from users and from disk: grid files
//! (`Grid::parse`), shard files (`read_shards`), tidy tables (`read_tidy`,
//! `cells_from_tidy`) and two result directories (`compare_dirs`). Whatever they hold —
//! arbitrary text, valid grid files with keys dropped, renamed or duplicated, values of
//! another type, huge integers, non-finite floats, kilobyte strings, swept lists of any
//! size, unknown tables; shards truncated, with values flipped to "NaN"/"inf" or out of
//! range, fields deleted, stray files beside them; tables with broken rows — they return
//! a value or one error, and never panic. An error is one line of bounded length.
//! `compare` also keeps its promises: a directory agrees with itself, the number of
//! differences does not depend on the order of the sides, every file that is not a shard
//! is named, and a non-finite value agrees only with the same non-finite value, whatever
//! the tolerance.
//!
//! Each property runs its own default number of cases (the whole file takes a few seconds
//! in the test profile); set `PROPTEST_CASES` to run that many instead, e.g.
//! `PROPTEST_CASES=20000 cargo test -p policy-param-harness --test props`. Failing
//! cases proptest finds are shrunk and their seeds appended to
//! `harness/proptest-regressions/props.txt` (committed; replayed first on every run).
//! The cases the properties found and the harness now handles are plain tests at the end
//! of the file.

mod common;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use policy_param_harness::compare::{compare_dirs, Comparison, Tolerance};
use policy_param_harness::config::MAX_CELLS;
use policy_param_harness::error::MESSAGE_LIMIT;
use policy_param_harness::results::{self, read_shards};
use policy_param_harness::{gather, run_grid, shard, Error, Grid, RunOptions};
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence};
use serde_json::Value as Json;
use toml::Value as Toml;

/// The longest error message accepted, in characters: a reason of at most
/// [`MESSAGE_LIMIT`] (and a few characters of its length), a key of at most about 80
/// (`error::shorten`), and the file's path.
const MESSAGE_BOUND: usize = MESSAGE_LIMIT + 400;

/// Proptest's defaults, `PROPTEST_CASES` included (proptest parses it), else `cases`;
/// the regression file in `harness/proptest-regressions/` (the tests run in `harness/`).
fn config(cases: u32) -> Config {
    let defaults = Config::default();
    let cases = match std::env::var_os("PROPTEST_CASES") {
        Some(_) => defaults.cases,
        None => cases,
    };
    Config {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "proptest-regressions/props.txt",
        ))),
        ..defaults
    }
}

/// A message is one line, bounded.
fn one_line(message: &str) -> Result<(), TestCaseError> {
    let shown: String = message.chars().take(600).collect();
    prop_assert!(
        !message.contains(['\n', '\r']),
        "multi-line message: {shown:?}"
    );
    let chars = message.chars().count();
    prop_assert!(chars <= MESSAGE_BOUND, "{chars}-char message: {shown}…");
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Grid files
// ---------------------------------------------------------------------------------------

const GRID_FILE: &str = "experiments/prop.toml";

/// A grid with a figure: the figure's checks run only on a grid that expands.
const FIGURED: &str = r#"
description = "a figure"

[[experiment]]
name = "p"
algorithm = "fqi_explicit"
environment = "Pendulum-v1"
seeds = [0, 1]
[experiment.params]
points = 50
width = 4
iterations = 2
[experiment.sweep]
lr = [1e-3, 2e-3]

[[figure]]
title = "t"
metric = "eval_return"
experiments = ["p[lr=0.002]", "p"]
baseline = "p[lr=0.001]"
step = 2
better = "higher"
caption = "c"
references = [{ label = "peer", value = -150.0 }]
"#;

/// The valid grids the mutations start from.
fn base_grids() -> &'static [(&'static str, toml::Table)] {
    static GRIDS: OnceLock<Vec<(&'static str, toml::Table)>> = OnceLock::new();
    GRIDS.get_or_init(|| {
        [common::TINY, common::DIVERGING, FIGURED, COMPARED]
            .into_iter()
            .map(|text| {
                Grid::parse(Path::new(GRID_FILE), text).expect("a base grid parses");
                (text, text.parse::<toml::Table>().unwrap())
            })
            .collect()
    })
}

/// Names the grid format, the adapters and the metrics use, and some they do not.
const WORDS: &[&str] = &[
    "description",
    "experiment",
    "figure",
    "name",
    "algorithm",
    "environment",
    "seeds",
    "params",
    "sweep",
    "points",
    "iterations",
    "maximizer",
    "state_bound",
    "action_bound",
    "tolerance",
    "ridge",
    "system",
    "width",
    "epochs",
    "batch_size",
    "eval_episodes",
    "eval_every",
    "lr",
    "gamma",
    "sites",
    "states",
    "title",
    "metric",
    "experiments",
    "baseline",
    "step",
    "better",
    "caption",
    "references",
    "label",
    "value",
    "quadratic",
    "lbfgs",
    "scalar",
    "double_integrator",
    "Lqr",
    "Pendulum-v1",
    "Allocation",
    "fqi_explicit",
    "milp_maximize",
    "lqr",
    "pendulum",
    "milp",
    "eval_return",
    "gain_error",
    "higher",
    "lower",
    "p[lr=0.001]",
    "lqr[maximizer=quadratic,state_bound=1.0]",
    "",
    "a b",
    "seed",
    "x_summary",
];

/// Text past the quoting limits: one long word, many short ones, multi-byte characters,
/// line breaks.
fn long_text() -> impl Strategy<Value = String> {
    (
        prop_oneof![3 => 150usize..400, 1 => 2000usize..6000],
        0usize..5,
    )
        .prop_map(|(n, kind)| match kind {
            0 => "x".repeat(n),
            1 => "ab ".repeat(n / 3),
            2 => "é".repeat(n),
            3 => "line\n".repeat(n / 5),
            _ => "k".repeat(n) + " and " + &"v ".repeat(n),
        })
}

/// A string value or key: a word of the format, a random one, or a long one.
fn word() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => prop::sample::select(WORDS).prop_map(String::from),
        2 => "[a-z_0-9-]{0,12}",
        1 => "(?s).{0,12}",
        1 => long_text(),
    ]
}

fn float() -> impl Strategy<Value = f64> {
    prop_oneof![
        6 => -3.0f64..3.0,
        1 => prop::sample::select(vec![
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            -0.0,
            1e300,
            -1e300,
            5e-324,
            f64::MAX,
            1e30,
            0.5,
            1.5,
        ]),
        1 => any::<f64>(),
    ]
}

fn integer() -> impl Strategy<Value = i64> {
    prop_oneof![
        6 => 0i64..100,
        1 => -5i64..0,
        1 => prop::sample::select(vec![i64::MAX, i64::MIN, 1 << 40, 100_000, 1_000_000]),
        1 => any::<i64>(),
    ]
}

/// A TOML value of any type: scalars, lists (a swept list of any size) and tables.
fn toml_value() -> BoxedStrategy<Toml> {
    let leaf = prop_oneof![
        4 => word().prop_map(Toml::String),
        3 => integer().prop_map(Toml::Integer),
        3 => float().prop_map(Toml::Float),
        1 => any::<bool>().prop_map(Toml::Boolean),
        1 => Just(Toml::Datetime("1979-05-27T07:32:00Z".parse().unwrap())),
    ];
    leaf.prop_recursive(2, 32, 12, |inner| {
        prop_oneof![
            3 => prop::collection::vec(inner.clone(), 0..12).prop_map(Toml::Array),
            1 => prop::collection::vec((word(), inner), 0..4)
                .prop_map(|kv| Toml::Table(kv.into_iter().collect())),
        ]
    })
    .boxed()
}

/// A swept list: values of one plausible type, of any size.
fn sweep_list() -> impl Strategy<Value = Toml> {
    prop_oneof![
        prop::collection::vec(integer().prop_map(Toml::Integer), 0..10),
        prop::collection::vec(float().prop_map(Toml::Float), 0..10),
        prop::collection::vec(word().prop_map(Toml::String), 0..10),
        prop::collection::vec(toml_value(), 0..6),
    ]
    .prop_map(Toml::Array)
}

/// One step of a path into a TOML or JSON tree.
#[derive(Clone, Debug)]
enum Step {
    Key(String),
    Index(usize),
}

/// An edit of a parsed document; `usize`s pick a node (modulo their number).
#[derive(Clone, Debug)]
enum Edit<V> {
    Drop(usize),
    Rename(usize, String),
    Replace(usize, V),
    /// Into the n-th table (the document itself included).
    Insert(usize, String, V),
}

/// An edit of a document's text.
#[derive(Clone, Debug)]
enum TextEdit {
    DeleteLine(usize),
    DuplicateLine(usize),
    Truncate(usize),
    Insert(usize, String),
    /// The n-th run of digits becomes this text.
    Number(usize, String),
}

/// A TOML or JSON tree, as the edits see it.
trait Tree: Clone + std::fmt::Debug + Sized {
    fn children(&self) -> Vec<(Step, &Self)>;
    fn is_table(&self) -> bool;
    fn child_mut(&mut self, step: &Step) -> Option<&mut Self>;
    fn remove(&mut self, step: &Step) -> Option<Self>;
    /// Into a table: set `key`.
    fn insert(&mut self, key: String, value: Self);
}

impl Tree for Toml {
    fn children(&self) -> Vec<(Step, &Self)> {
        match self {
            Toml::Table(t) => t.iter().map(|(k, v)| (Step::Key(k.clone()), v)).collect(),
            Toml::Array(a) => a
                .iter()
                .enumerate()
                .map(|(i, v)| (Step::Index(i), v))
                .collect(),
            _ => Vec::new(),
        }
    }
    fn is_table(&self) -> bool {
        matches!(self, Toml::Table(_))
    }
    fn child_mut(&mut self, step: &Step) -> Option<&mut Self> {
        match (self, step) {
            (Toml::Table(t), Step::Key(k)) => t.get_mut(k),
            (Toml::Array(a), Step::Index(i)) => a.get_mut(*i),
            _ => None,
        }
    }
    fn remove(&mut self, step: &Step) -> Option<Self> {
        match (self, step) {
            (Toml::Table(t), Step::Key(k)) => t.remove(k),
            (Toml::Array(a), Step::Index(i)) if *i < a.len() => Some(a.remove(*i)),
            _ => None,
        }
    }
    fn insert(&mut self, key: String, value: Self) {
        if let Toml::Table(t) = self {
            t.insert(key, value);
        }
    }
}

impl Tree for Json {
    fn children(&self) -> Vec<(Step, &Self)> {
        match self {
            Json::Object(t) => t.iter().map(|(k, v)| (Step::Key(k.clone()), v)).collect(),
            Json::Array(a) => a
                .iter()
                .enumerate()
                .map(|(i, v)| (Step::Index(i), v))
                .collect(),
            _ => Vec::new(),
        }
    }
    fn is_table(&self) -> bool {
        matches!(self, Json::Object(_))
    }
    fn child_mut(&mut self, step: &Step) -> Option<&mut Self> {
        match (self, step) {
            (Json::Object(t), Step::Key(k)) => t.get_mut(k),
            (Json::Array(a), Step::Index(i)) => a.get_mut(*i),
            _ => None,
        }
    }
    fn remove(&mut self, step: &Step) -> Option<Self> {
        match (self, step) {
            (Json::Object(t), Step::Key(k)) => t.remove(k),
            (Json::Array(a), Step::Index(i)) if *i < a.len() => Some(a.remove(*i)),
            _ => None,
        }
    }
    fn insert(&mut self, key: String, value: Self) {
        if let Json::Object(t) = self {
            t.insert(key, value);
        }
    }
}

/// The path of every node below `v`, parents before children, and whether it is a table.
fn paths<T: Tree>(v: &T) -> Vec<(Vec<Step>, bool)> {
    fn walk<T: Tree>(v: &T, path: &mut Vec<Step>, out: &mut Vec<(Vec<Step>, bool)>) {
        for (step, child) in v.children() {
            path.push(step);
            out.push((path.clone(), child.is_table()));
            walk(child, path, out);
            path.pop();
        }
    }
    let mut out = Vec::new();
    walk(v, &mut Vec::new(), &mut out);
    out
}

fn node_mut<'a, T: Tree>(v: &'a mut T, path: &[Step]) -> Option<&'a mut T> {
    path.iter().try_fold(v, |node, step| node.child_mut(step))
}

fn apply<T: Tree>(doc: &mut T, edit: &Edit<T>) {
    let all = paths(doc);
    let pick = |n: usize| (!all.is_empty()).then(|| all[n % all.len()].0.clone());
    match edit {
        Edit::Drop(n) => {
            if let Some(path) = pick(*n) {
                let (last, parent) = path.split_last().unwrap();
                if let Some(parent) = node_mut(doc, parent) {
                    parent.remove(last);
                }
            }
        }
        Edit::Rename(n, key) => {
            if let Some(path) = pick(*n) {
                let (last, parent) = path.split_last().unwrap();
                if let Some(parent) = node_mut(doc, parent) {
                    if parent.is_table() {
                        if let Some(v) = parent.remove(last) {
                            parent.insert(key.clone(), v);
                        }
                    }
                }
            }
        }
        Edit::Replace(n, value) => {
            if let Some(path) = pick(*n) {
                if let Some(node) = node_mut(doc, &path) {
                    *node = value.clone();
                }
            }
        }
        Edit::Insert(n, key, value) => {
            let mut tables: Vec<Vec<Step>> = vec![Vec::new()];
            tables.extend(all.into_iter().filter(|(_, t)| *t).map(|(p, _)| p));
            let path = &tables[n % tables.len()];
            if let Some(table) = node_mut(doc, path) {
                table.insert(key.clone(), value.clone());
            }
        }
    }
}

fn edit<T: 'static + Tree>(
    value: impl Strategy<Value = T> + Clone + 'static,
) -> impl Strategy<Value = Edit<T>> {
    prop_oneof![
        2 => any::<usize>().prop_map(Edit::Drop),
        2 => (any::<usize>(), word()).prop_map(|(n, k)| Edit::Rename(n, k)),
        4 => (any::<usize>(), value.clone()).prop_map(|(n, v)| Edit::Replace(n, v)),
        2 => (any::<usize>(), word(), value).prop_map(|(n, k, v)| Edit::Insert(n, k, v)),
    ]
}

/// Snippets a hand-edited file may gain: tables, keys out of place, numbers TOML or the
/// grid refuses, syntax errors.
const SNIPPETS: &[&str] = &[
    "[[experiment]]",
    "[experiment.sweep]\nlr = [1e-3, 1e-3]",
    "[experiment.params]\nlr = 1e400",
    "[unknown]\nk = 1",
    "[[figure]]\ntitle = \"t\"\nmetric = \"m\"",
    "seeds = [18446744073709551615]",
    "seeds = [-1]",
    "x = 99999999999999999999999",
    "points = 18446744073709551616",
    "= =",
    "[",
    "\"unterminated",
    "'''",
    "a.b.c = 1",
    "name = \"\"",
];

fn text_edit() -> impl Strategy<Value = TextEdit> {
    let snippet = prop_oneof![
        3 => prop::sample::select(SNIPPETS).prop_map(String::from),
        1 => "(?s).{0,30}",
        1 => long_text(),
    ];
    let number = prop::sample::select(vec![
        "18446744073709551616",
        "99999999999999999999999999999",
        "-1",
        "1e400",
        "nan",
        "-inf",
        "+inf",
        "0x7fffffffffffffff",
        "1_000",
        "",
        "1.5",
    ])
    .prop_map(String::from);
    prop_oneof![
        2 => any::<usize>().prop_map(TextEdit::DeleteLine),
        2 => any::<usize>().prop_map(TextEdit::DuplicateLine),
        1 => any::<usize>().prop_map(TextEdit::Truncate),
        2 => (any::<usize>(), snippet).prop_map(|(n, s)| TextEdit::Insert(n, s)),
        2 => (any::<usize>(), number).prop_map(|(n, s)| TextEdit::Number(n, s)),
    ]
}

fn apply_text(text: &str, edit: &TextEdit) -> String {
    let mut lines: Vec<&str> = text.split('\n').collect();
    let n_lines = lines.len();
    match edit {
        TextEdit::DeleteLine(n) => {
            lines.remove(n % n_lines);
            lines.join("\n")
        }
        TextEdit::DuplicateLine(n) => {
            let line = lines[n % n_lines];
            lines.insert(n % n_lines, line);
            lines.join("\n")
        }
        TextEdit::Truncate(n) => {
            let mut at = n % (text.len() + 1);
            while !text.is_char_boundary(at) {
                at -= 1;
            }
            text[..at].to_string()
        }
        TextEdit::Insert(n, snippet) => {
            lines.insert(n % (n_lines + 1), snippet);
            lines.join("\n")
        }
        TextEdit::Number(n, with) => {
            let runs: Vec<(usize, usize)> = digit_runs(text);
            if runs.is_empty() {
                return text.to_string();
            }
            let (start, end) = runs[n % runs.len()];
            format!("{}{with}{}", &text[..start], &text[end..])
        }
    }
}

/// The byte ranges of the runs of ASCII digits in `text`.
fn digit_runs(text: &str) -> Vec<(usize, usize)> {
    let mut runs = Vec::new();
    let mut start = None;
    for (i, b) in text.bytes().enumerate().chain([(text.len(), b' ')]) {
        match (b.is_ascii_digit(), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                runs.push((s, i));
                start = None;
            }
            _ => {}
        }
    }
    runs
}

/// A valid grid file, edited as a table (and written out) and then as text.
fn mutated_grid() -> impl Strategy<Value = String> {
    let tree_edits = prop::collection::vec(
        prop_oneof![
            4 => edit(toml_value()),
            1 => (any::<usize>(), prop::sample::select(WORDS), sweep_list())
                .prop_map(|(n, k, v)| Edit::Insert(n, k.to_string(), v)),
        ],
        0..4,
    );
    (
        0..base_grids().len(),
        tree_edits,
        prop::collection::vec(text_edit(), 0..3),
    )
        .prop_map(|(base, tree_edits, text_edits)| {
            let (text, table) = &base_grids()[base];
            let mut text = if tree_edits.is_empty() {
                text.to_string()
            } else {
                let mut doc = Toml::Table(table.clone());
                for e in &tree_edits {
                    apply(&mut doc, e);
                }
                match doc {
                    Toml::Table(t) => toml::to_string(&t).unwrap_or_else(|_| text.to_string()),
                    _ => text.to_string(),
                }
            };
            for e in &text_edits {
                text = apply_text(&text, e);
            }
            text
        })
}

/// Tokens of TOML: arbitrary documents that now and then get past the syntax.
const TOKENS: &[&str] = &[
    "[",
    "]",
    "[[",
    "]]",
    "{",
    "}",
    "=",
    ",",
    ".",
    "\"",
    "'",
    "'''",
    "\n",
    " ",
    "#",
    "1",
    "-1",
    "1.5",
    "nan",
    "inf",
    "1e400",
    "true",
    "experiment",
    "name",
    "seeds",
    "sweep",
    "params",
    "\"x\"",
    "[0]",
    "[]",
    "\"fqi_explicit\"",
    "\"Lqr\"",
];

fn token_soup() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(TOKENS), 0..60).prop_map(|t| t.concat())
}

/// Parse `text`; an error is one line of bounded length (its parts bounded too), a grid
/// is what [`Grid::parse`] promises.
fn check_parse(file: &Path, text: &str) -> Result<(), TestCaseError> {
    match Grid::parse(file, text) {
        Err(e) => {
            let limit = MESSAGE_LIMIT + 64;
            prop_assert!(
                e.key.chars().count() <= limit,
                "key of {} chars",
                e.key.len()
            );
            prop_assert!(
                e.reason.chars().count() <= limit,
                "reason of {} chars",
                e.reason.len()
            );
            one_line(&e.to_string())
        }
        Ok(grid) => {
            // Parsing is deterministic: the same cells, the same hashes.
            let again = Grid::parse(file, text).unwrap();
            let hashes = |g: &Grid| {
                g.cells
                    .iter()
                    .map(|c| c.config_hash.clone())
                    .collect::<Vec<_>>()
            };
            prop_assert_eq!(hashes(&grid), hashes(&again));
            prop_assert!(!grid.cells.is_empty());
            prop_assert!(grid.cells.len() as u64 <= MAX_CELLS);
            let mut hashes = std::collections::BTreeSet::new();
            for (i, c) in grid.cells.iter().enumerate() {
                prop_assert_eq!(c.index, i);
                prop_assert!(hashes.insert(&c.config_hash), "{} twice", c.label());
                prop_assert!(c.experiment < grid.experiments.len());
            }
            Ok(())
        }
    }
}

/// A file name's stem is a grid name when it is 1 to 64 letters, digits, '_' or '-',
/// starts with a letter or digit, and does not end with `_summary`.
fn valid_grid_name(stem: &str) -> bool {
    (1..=64).contains(&stem.len())
        && stem
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        && stem.starts_with(|c: char| c.is_ascii_alphanumeric())
        && !stem.ends_with("_summary")
}

/// The cells of experiments of these sweep sizes and seed counts; `None` past `u64`.
fn cell_count(experiments: &[(Vec<usize>, usize)]) -> Option<u64> {
    experiments.iter().try_fold(0u64, |total, (sizes, seeds)| {
        let cells = sizes
            .iter()
            .try_fold(*seeds as u64, |acc, &n| acc.checked_mul(n as u64))?;
        total.checked_add(cells)
    })
}

/// Experiments of swept keys of the given sizes and seed counts, on an adapter that
/// exists.
fn big_grid(experiments: &[(Vec<usize>, usize)]) -> String {
    let mut text = String::new();
    for (e, (sizes, seeds)) in experiments.iter().enumerate() {
        let seeds: Vec<String> = (0..*seeds).map(|s| s.to_string()).collect();
        text += &format!(
            "[[experiment]]\nname = \"e{e}\"\nalgorithm = \"fqi_explicit\"\nenvironment = \"Lqr\"\nseeds = [{}]\n[experiment.sweep]\n",
            seeds.join(", ")
        );
        for (k, &n) in sizes.iter().enumerate() {
            let values: Vec<String> = (0..n).map(|v| v.to_string()).collect();
            text += &format!("k{k} = [{}]\n", values.join(","));
        }
    }
    text
}

proptest! {
    #![proptest_config(config(8192))]

    #[test]
    fn arbitrary_text_parses_or_fails_cleanly(text in "(?s).{0,400}") {
        check_parse(Path::new(GRID_FILE), &text)?;
    }

    #[test]
    fn token_soup_parses_or_fails_cleanly(text in token_soup()) {
        check_parse(Path::new(GRID_FILE), &text)?;
    }

    #[test]
    fn mutated_grids_parse_or_fail_cleanly(text in mutated_grid()) {
        check_parse(Path::new(GRID_FILE), &text)?;
    }
}

proptest! {
    #![proptest_config(config(2048))]

    /// Any file name: a valid grid parses exactly when its stem is a grid name.
    #[test]
    fn file_names_are_checked(stem in prop_oneof![
        3 => "[a-z0-9_-]{0,70}",
        2 => "[ -.0-~]{0,80}",
        1 => "[^/]{0,80}",
        1 => "[a-z0-9_-]{65,250}",
    ]) {
        let file = PathBuf::from(format!("experiments/{stem}.toml"));
        let parsed = Grid::parse(&file, common::TINY);
        let valid = valid_grid_name(&stem);
        prop_assert_eq!(parsed.is_ok(), valid, "{:?}", stem);
        if let Err(e) = parsed {
            prop_assert_eq!(e.key.as_str(), "(file name)");
            one_line(&e.to_string())?;
        }
    }
}

proptest! {
    #![proptest_config(config(512))]

    /// A grid of more than `MAX_CELLS` cells, or one whose count overflows, is refused
    /// before any cell is expanded, with the count in the message.
    #[test]
    fn too_many_cells_are_refused_with_the_count(
        experiments in prop::collection::vec(
            (
                prop::collection::vec(
                    prop_oneof![4 => 1usize..40, 1 => 100usize..400, 1 => Just(1000)],
                    1..8,
                ),
                1usize..5,
            ),
            1..3,
        )
    ) {
        let count = cell_count(&experiments);
        // Too few: one more swept key of the first experiment takes it past the limit.
        let mut experiments = experiments;
        if let Some(n) = count.filter(|&n| n <= MAX_CELLS) {
            let first = {
                let (sizes, seeds) = &experiments[0];
                sizes.iter().map(|&s| s as u64).product::<u64>() * *seeds as u64
            };
            let rest = n - first;
            let size = (MAX_CELLS - rest) / first + 1;
            experiments[0].0.push(size as usize);
        }
        let count = cell_count(&experiments);
        prop_assert!(count.is_none_or(|n| n > MAX_CELLS));
        let e = match Grid::parse(Path::new(GRID_FILE), &big_grid(&experiments)) {
            Err(e) => e,
            Ok(g) => return Err(TestCaseError::fail(format!("{} cells accepted", g.cells.len()))),
        };
        let shown = match count {
            Some(n) => format!("the grid has {n} cells"),
            None => "the grid has more than 2^64 cells".to_string(),
        };
        prop_assert!(e.reason.contains(&shown), "{}", e);
        prop_assert!(e.reason.contains(&format!("at most {MAX_CELLS}")), "{}", e);
        one_line(&e.to_string())?;
    }
}

/// Seven swept keys of 1000 values: 10^21 cells overflow u64 (issue 16's first row).
#[test]
fn a_cell_count_beyond_u64_is_refused() {
    let text = big_grid(&[(vec![1000; 7], 1)]);
    let e = Grid::parse(Path::new(GRID_FILE), &text).err().unwrap();
    assert!(e.reason.contains("more than 2^64 cells"), "{e}");
}

// ---------------------------------------------------------------------------------------
// Shards, tables and compare
// ---------------------------------------------------------------------------------------

/// A grid that runs in a fraction of a second: LQR cells with two seeds (so that
/// `compare` also runs its bootstrap) and one MILP cell (timing metrics).
const COMPARED: &str = r#"
[[experiment]]
name = "lqr"
algorithm = "fqi_explicit"
environment = "Lqr"
seeds = [0, 1]
[experiment.params]
points = 40
iterations = 3
[experiment.sweep]
state_bound = [1.0, 2.0]

[[experiment]]
name = "milp"
algorithm = "milp_maximize"
environment = "Allocation"
seeds = [0]
[experiment.params]
states = 2
sites = 2
"#;

const GRID: &str = "small";

/// What one run of [`COMPARED`] wrote: its shards (file name, bytes, parsed) and its tidy
/// CSV table.
struct Run {
    shards: Vec<(String, Vec<u8>, Json)>,
    csv: String,
}

fn run() -> &'static Run {
    static RUN: OnceLock<Run> = OnceLock::new();
    RUN.get_or_init(|| {
        let dir = common::TempDir::new("props");
        let grid = Grid::load(&dir.grid(&format!("{GRID}.toml"), COMPARED)).unwrap();
        let out = dir.path().join("out");
        let options = RunOptions {
            threads: Some(1),
            progress: false,
            ..RunOptions::new(&out)
        };
        let report = run_grid(&grid, &options).unwrap();
        assert_eq!(report.ran().len(), grid.cells.len());
        let gathered = gather(&grid, &out, false).unwrap();
        let mut paths: Vec<PathBuf> = std::fs::read_dir(shard::cells_dir(&out, GRID))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        paths.sort();
        let shards: Vec<(String, Vec<u8>, Json)> = paths
            .iter()
            .map(|p| {
                let bytes = std::fs::read(p).unwrap();
                let json = serde_json::from_slice(&bytes).unwrap();
                let name = p.file_name().unwrap().to_string_lossy().into_owned();
                (name, bytes, json)
            })
            .collect();
        assert_eq!(shards.len(), grid.cells.len());
        // Each (metric, step) once per shard: an edited row is the one compared.
        for (name, _, json) in &shards {
            let rows = json["metrics"].as_array().unwrap();
            let mut keys = std::collections::BTreeSet::new();
            for r in rows {
                assert!(
                    keys.insert((r["metric"].to_string(), r["step"].as_u64())),
                    "{name}: {r}"
                );
            }
        }
        Run {
            shards,
            csv: std::fs::read_to_string(&gathered.csv).unwrap(),
        }
    })
}

/// A value a shard field may be flipped to.
fn json_value() -> BoxedStrategy<Json> {
    let leaf = prop_oneof![
        3 => prop::sample::select(vec!["NaN", "inf", "-inf", "Infinity", "nan", "", "ok", "diverged", "1.5"])
            .prop_map(|s| Json::String(s.into())),
        2 => word().prop_map(Json::String),
        2 => float().prop_map(|f| serde_json::Number::from_f64(f).map_or(Json::Null, Json::Number)),
        2 => prop_oneof![any::<i64>().prop_map(Json::from), any::<u64>().prop_map(Json::from)],
        1 => Just(Json::Null),
        1 => any::<bool>().prop_map(Json::Bool),
    ];
    leaf.prop_recursive(2, 16, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Json::Array),
            prop::collection::vec((word(), inner), 0..3)
                .prop_map(|kv| Json::Object(kv.into_iter().collect())),
        ]
    })
    .boxed()
}

/// What happens to one shard file.
#[derive(Clone, Debug)]
enum ShardEdit {
    /// Edited as JSON, written out, then edited as text.
    Edit(Vec<Edit<Json>>, Vec<TextEdit>),
    /// Replaced by these bytes.
    Bytes(Vec<u8>),
    Delete,
}

fn shard_edit() -> impl Strategy<Value = ShardEdit> {
    prop_oneof![
        6 => (
            prop::collection::vec(edit(json_value()), 0..3),
            prop::collection::vec(text_edit(), 0..2),
        )
            .prop_map(|(e, t)| ShardEdit::Edit(e, t)),
        1 => prop::collection::vec(any::<u8>(), 0..256).prop_map(ShardEdit::Bytes),
        1 => Just(ShardEdit::Delete),
    ]
}

/// Files that are not shards: beside the shards, as another grid's shards, or as tables.
#[derive(Clone, Debug)]
enum Stray {
    /// In `<grid>/cells/`, this name and these bytes (a directory when `None`).
    InCells(String, Option<Vec<u8>>),
    /// A tidy table `<name>.csv` in the directory (another grid, read from its table).
    Table(String, String),
    /// A grid directory with a `cells/` holding this file.
    OtherGrid(String, Vec<u8>),
}

fn stray() -> impl Strategy<Value = Stray> {
    let name = prop_oneof![
        3 => "[a-z0-9-]{1,12}\\.json",
        1 => "[a-z0-9]{1,8}\\.(txt|tmp|json~)",
        1 => "\\.[a-z0-9.-]{1,20}",
        1 => "[^/\0]{1,30}",
    ];
    let bytes = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..128),
        Just(b"{}".to_vec()),
        Just(b"{\"format\": 2}".to_vec()),
        Just(b"[]".to_vec()),
    ];
    prop_oneof![
        4 => (name, prop::option::weighted(0.8, bytes.clone())).prop_map(|(n, b)| Stray::InCells(n, b)),
        2 => ("[a-z]{1,8}", csv_text()).prop_map(|(n, t)| Stray::Table(n, t)),
        1 => ("[a-z]{1,8}", bytes).prop_map(|(n, b)| Stray::OtherGrid(n, b)),
    ]
}

/// One side of a comparison: an edit for each shard (by position), strays.
#[derive(Clone, Debug)]
struct Side {
    edits: Vec<(usize, ShardEdit)>,
    strays: Vec<Stray>,
}

fn side() -> impl Strategy<Value = Side> {
    (
        prop::collection::vec((any::<usize>(), shard_edit()), 0..3),
        prop::collection::vec(stray(), 0..2),
    )
        .prop_map(|(edits, strays)| Side { edits, strays })
}

/// The bytes of a shard after `edit`, or `None` when deleted.
fn edited_shard(bytes: &[u8], json: &Json, edit: &ShardEdit) -> Option<Vec<u8>> {
    match edit {
        ShardEdit::Delete => None,
        ShardEdit::Bytes(b) => Some(b.clone()),
        ShardEdit::Edit(edits, text_edits) => {
            let mut text = if edits.is_empty() {
                String::from_utf8_lossy(bytes).into_owned()
            } else {
                let mut doc = json.clone();
                for e in edits {
                    apply(&mut doc, e);
                }
                serde_json::to_string_pretty(&doc).unwrap()
            };
            for e in text_edits {
                text = apply_text(&text, e);
            }
            Some(text.into_bytes())
        }
    }
}

/// Write the run's shards, edited, and the strays into `dir`.
fn write_side(dir: &Path, side: &Side) {
    let cells = shard::cells_dir(dir, GRID);
    std::fs::create_dir_all(&cells).unwrap();
    let shards = &run().shards;
    let mut files: Vec<Option<Vec<u8>>> = shards.iter().map(|(_, b, _)| Some(b.clone())).collect();
    for (n, e) in &side.edits {
        let i = n % shards.len();
        if let Some(bytes) = &files[i] {
            let parsed: Option<Json> = serde_json::from_slice(bytes).ok();
            files[i] = edited_shard(bytes, parsed.as_ref().unwrap_or(&Json::Null), e);
        }
    }
    for ((name, ..), bytes) in shards.iter().zip(files) {
        if let Some(bytes) = bytes {
            std::fs::write(cells.join(name), bytes).unwrap();
        }
    }
    for s in &side.strays {
        match s {
            Stray::InCells(name, bytes) => {
                let path = cells.join(name);
                if path.exists() {
                    continue;
                }
                match bytes {
                    Some(b) => std::fs::write(path, b).unwrap(),
                    None => std::fs::create_dir(path).unwrap(),
                }
            }
            Stray::Table(name, text) => {
                std::fs::write(dir.join(format!("{name}.csv")), text).unwrap()
            }
            Stray::OtherGrid(name, bytes) => {
                let cells = shard::cells_dir(dir, name);
                std::fs::create_dir_all(&cells).unwrap();
                std::fs::write(cells.join("x-0123456789abcdef.json"), bytes).unwrap();
            }
        }
    }
}

fn tolerance() -> impl Strategy<Value = Tolerance> {
    let t = prop_oneof![
        4 => Just(0.0),
        2 => prop::sample::select(vec![1e-12, 1e-9, 1.0, 1e300, f64::MAX]),
        1 => prop::sample::select(vec![-1.0, f64::NAN, f64::INFINITY]),
        1 => any::<f64>(),
    ];
    (t.clone(), t, any::<bool>()).prop_map(|(rtol, atol, include_timing)| Tolerance {
        rtol,
        atol,
        include_timing,
    })
}

/// Every file under `<grid>/cells/` of `dir` that is not hidden: a shard `read` accepts,
/// or named among the comparison's unreadable files.
fn check_named(dir: &Path, comparison: &Comparison) -> Result<(), TestCaseError> {
    let unreadable: Vec<&String> = comparison
        .grids
        .iter()
        .flat_map(|g| &g.unreadable)
        .collect();
    for grid in std::fs::read_dir(dir).unwrap() {
        let cells = grid.unwrap().path().join("cells");
        let Ok(entries) = std::fs::read_dir(&cells) else {
            continue;
        };
        for path in entries.map(|e| e.unwrap().path()) {
            let name = path.file_name().unwrap().to_string_lossy();
            if name.starts_with('.') || (path.is_file() && shard::read(&path).is_ok()) {
                continue;
            }
            let shown = format!("{}: ", policy_param_harness::error::shown(&path));
            prop_assert!(
                unreadable.iter().any(|u| u.starts_with(&shown)),
                "{} is not named: {:?}",
                path.display(),
                unreadable
            );
        }
    }
    Ok(())
}

/// `compare_dirs(a, b)` returns a comparison or one clean error; its report renders.
fn compare_cleanly(
    a: &Path,
    b: &Path,
    tolerance: &Tolerance,
) -> Result<Option<Comparison>, TestCaseError> {
    match compare_dirs(a, b, tolerance) {
        Err(e) => {
            one_line(&e.to_string())?;
            Ok(None)
        }
        Ok(c) => {
            prop_assert!(tolerance.check().is_ok(), "compared with {tolerance:?}");
            let _ = c.render();
            for g in &c.grids {
                for u in &g.unreadable {
                    one_line(u)?;
                }
            }
            Ok(Some(c))
        }
    }
}

proptest! {
    #![proptest_config(config(512))]

    /// Two result directories edited and strewn with strays: a comparison or one clean
    /// error; the comparison names every file that is not a shard, a directory agrees
    /// with itself, and the differences do not depend on the order of the sides.
    #[test]
    fn compare_of_damaged_directories_is_clean(
        a in side(),
        b in side(),
        tolerance in tolerance(),
    ) {
        let dir = common::TempDir::new("props-compare");
        let (da, db) = (dir.path().join("a"), dir.path().join("b"));
        write_side(&da, &a);
        write_side(&db, &b);
        if let Some(c) = compare_cleanly(&da, &db, &tolerance)? {
            check_named(&da, &c)?;
            check_named(&db, &c)?;
            let reverse = compare_cleanly(&db, &da, &tolerance)?
                .ok_or_else(|| TestCaseError::fail("the reverse comparison failed"))?;
            prop_assert_eq!(c.differences().len(), reverse.differences().len());
            prop_assert_eq!(c.cells_compared(), reverse.cells_compared());
            let same = compare_cleanly(&da, &da, &tolerance)?
                .ok_or_else(|| TestCaseError::fail("a directory could not be compared with itself"))?;
            prop_assert!(same.identical(), "{}", same.render());
        } else if tolerance.check().is_ok() {
            // An error comes from one side: compared with itself, it fails too.
            prop_assert!(
                compare_dirs(&da, &da, &tolerance).is_err() || compare_dirs(&db, &db, &tolerance).is_err()
            );
        }
    }

    /// One metric value of one cell set to a value on each side: they agree exactly as
    /// `Tolerance::agree` says, and a non-finite value agrees only with the same one,
    /// whatever the tolerance.
    #[test]
    fn non_finite_values_agree_only_with_themselves(
        file in any::<usize>(),
        row in any::<usize>(),
        x in prop_oneof![Just(None), float().prop_map(Some)],
        y in prop_oneof![Just(None), float().prop_map(Some)],
        rtol in prop::sample::select(vec![0.0, 1e-9, 1.0, 1e300, f64::MAX]),
        atol in prop::sample::select(vec![0.0, 1e-9, 1.0, 1e300, f64::MAX]),
        include_timing in any::<bool>(),
    ) {
        let shards = &run().shards;
        let file = file % shards.len();
        let rows = shards[file].2["metrics"].as_array().unwrap();
        let row = row % rows.len();
        let (metric, step) = (rows[row]["metric"].as_str().unwrap(), rows[row]["step"].as_u64().unwrap());
        let original = match &rows[row]["value"] {
            Json::String(s) if s == "NaN" => f64::NAN,
            Json::String(s) if s == "inf" => f64::INFINITY,
            Json::String(s) if s == "-inf" => f64::NEG_INFINITY,
            v => v.as_f64().unwrap(),
        };
        let (x, y) = (x.unwrap_or(original), y.unwrap_or(original));
        let dir = common::TempDir::new("props-finite");
        let set = |side: &str, v: f64| {
            let mut doc = shards[file].2.clone();
            doc["metrics"][row]["value"] = match serde_json::Number::from_f64(v) {
                Some(n) => Json::Number(n),
                None if v.is_nan() => Json::from("NaN"),
                None if v > 0.0 => Json::from("inf"),
                None => Json::from("-inf"),
            };
            let d = dir.path().join(side);
            write_side(&d, &Side { edits: vec![], strays: vec![] });
            let path = shard::cells_dir(&d, GRID).join(&shards[file].0);
            std::fs::write(path, serde_json::to_string_pretty(&doc).unwrap()).unwrap();
            d
        };
        let (da, db) = (set("a", x), set("b", y));
        let tolerance = Tolerance { rtol, atol, include_timing };
        let c = compare_dirs(&da, &db, &tolerance).unwrap();
        let found = c.differences().into_iter().any(|d| d.metric == metric && d.step == Some(step));
        let timing = metric.ends_with("_seconds") || metric.ends_with("_per_second");
        let same = x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()) || x == y;
        if timing && !include_timing {
            prop_assert!(!found, "{}", c.render());
        } else if !x.is_finite() || !y.is_finite() {
            prop_assert_eq!(found, !same, "{} at {}: {:?} vs {:?} under {:?}\n{}", metric, step, x, y, tolerance, c.render());
        } else {
            prop_assert_eq!(found, !tolerance.agree(x, y), "{:?} vs {:?}", x, y);
        }
        if !found {
            prop_assert!(c.identical(), "{}", c.render());
        }
    }
}

proptest! {
    #![proptest_config(config(2048))]

    /// Arbitrary bytes (or a shard, edited) in a `.json` file under `cells/`: read as a
    /// shard, or listed as unreadable with a one-line reason; the valid shards beside it
    /// are still read.
    #[test]
    fn read_shards_names_every_unreadable_file(
        name in prop_oneof!["[a-z0-9-]{1,20}\\.json", "[^/\0.\n\r]{1,20}\\.json"],
        bytes in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..2048),
            (any::<usize>(), shard_edit()).prop_map(|(n, e)| {
                let (_, bytes, json) = &run().shards[n % run().shards.len()];
                edited_shard(bytes, json, &e).unwrap_or_default()
            }),
        ],
    ) {
        let dir = common::TempDir::new("props-read");
        let cells = dir.path().join("cells");
        std::fs::create_dir(&cells).unwrap();
        let (good_name, good, _) = &run().shards[0];
        std::fs::write(cells.join(good_name), good).unwrap();
        let path = cells.join(&name);
        std::fs::write(&path, &bytes).unwrap();
        let (shards, unreadable) = read_shards(&cells).unwrap();
        let files = if name == *good_name { 1 } else { 2 };
        prop_assert_eq!(shards.len() + unreadable.len(), files);
        // The valid shard beside it is read.
        let hash16 = good_name.trim_end_matches(".json").rsplit('-').next().unwrap();
        prop_assert!(
            name == *good_name || shards.iter().any(|s| s.config_hash.starts_with(hash16)),
            "{:?}", unreadable
        );
        match shard::read(&path) {
            Ok(_) => prop_assert!(unreadable.is_empty(), "{:?}", unreadable),
            Err(e) => {
                one_line(&e.to_string())?;
                prop_assert_eq!(unreadable.len(), 1);
                prop_assert_eq!(&unreadable[0].0, &path);
                one_line(&unreadable[0].1)?;
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Tidy tables
// ---------------------------------------------------------------------------------------

/// A field that breaks a column: out of range, non-finite, empty, long, quoted.
fn nasty_field() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "",
            "NaN",
            "nan",
            "inf",
            "-inf",
            "-1",
            "1.5",
            "18446744073709551616",
            "99999999999999999999999999",
            "1e400",
            "true",
            "ok",
            "diverged",
            "\"",
            "\"\"",
            "\"a,b\"",
            "\"line\nbreak\"",
            "null",
        ])
        .prop_map(String::from),
        any::<i64>().prop_map(|x| x.to_string()),
        any::<f64>().prop_map(|x| format!("{x:?}")),
        "[^\"\n,]{0,10}",
        long_text().prop_map(|s| s.replace(['\n', ',', '"'], " ")),
    ]
}

/// An edit of a CSV table.
#[derive(Clone, Debug)]
enum CsvEdit {
    /// Row (0: the header), column, new text.
    Field(usize, usize, String),
    DropColumn(usize),
    Text(TextEdit),
}

fn csv_edit() -> impl Strategy<Value = CsvEdit> {
    prop_oneof![
        4 => (any::<usize>(), any::<usize>(), nasty_field()).prop_map(|(r, c, f)| CsvEdit::Field(r, c, f)),
        1 => any::<usize>().prop_map(CsvEdit::DropColumn),
        2 => text_edit().prop_map(CsvEdit::Text),
    ]
}

fn apply_csv(text: &str, edit: &CsvEdit) -> String {
    match edit {
        CsvEdit::Text(e) => apply_text(text, e),
        CsvEdit::Field(r, c, field) => {
            let mut lines: Vec<String> = text.lines().map(String::from).collect();
            if lines.is_empty() {
                return field.clone();
            }
            let r = r % lines.len();
            let mut fields: Vec<&str> = lines[r].split(',').collect();
            let c = c % fields.len();
            fields[c] = field;
            lines[r] = fields.join(",");
            lines.join("\n") + "\n"
        }
        CsvEdit::DropColumn(c) => {
            let lines: Vec<String> = text
                .lines()
                .map(|l| {
                    let mut fields: Vec<&str> = l.split(',').collect();
                    let at = c % fields.len();
                    fields.remove(at);
                    fields.join(",")
                })
                .collect();
            lines.join("\n") + "\n"
        }
    }
}

/// A table: the run's tidy CSV edited, or arbitrary text.
fn csv_text() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => prop::collection::vec(csv_edit(), 0..4).prop_map(|edits| {
            edits.iter().fold(run().csv.clone(), |t, e| apply_csv(&t, e))
        }),
        1 => "(?s).{0,200}",
        1 => prop::collection::vec(
            prop::collection::vec(nasty_field(), 1..6).prop_map(|f| f.join(",")),
            0..5,
        )
        .prop_map(|rows| rows.join("\n")),
    ]
}

proptest! {
    #![proptest_config(config(1024))]

    /// A tidy table of any content: cells, or one clean error.
    #[test]
    fn tables_read_or_fail_cleanly(text in csv_text()) {
        let dir = common::TempDir::new("props-csv");
        let path = dir.path().join("t.csv");
        std::fs::write(&path, &text).unwrap();
        match results::read_tidy(&path) {
            Err(e) => one_line(&e.to_string())?,
            Ok(frame) => {
                if let Err(reason) = results::cells_from_tidy("t", &frame) {
                    // As `compare` reports it.
                    one_line(&Error::malformed(&path, reason).to_string())?;
                }
            }
        }
    }
}

/// The run's table reads back as the run's cells.
#[test]
fn the_base_table_reads_back() {
    let dir = common::TempDir::new("props-csv");
    let path = dir.path().join("t.csv");
    std::fs::write(&path, &run().csv).unwrap();
    let frame = results::read_tidy(&path).unwrap();
    let cells = results::cells_from_tidy("t", &frame).unwrap();
    assert_eq!(cells.len(), run().shards.len());
}

// ---------------------------------------------------------------------------------------
// Cases the properties found and shrank (seeds in harness/proptest-regressions/props.txt),
// fixed since: a key quoted by a short prefix, polars' messages on one line, control
// characters in paths escaped.
// ---------------------------------------------------------------------------------------

/// A TOML key of many short words is quoted whole up to `MESSAGE_LIMIT` characters in the
/// key and again in the reason ("unknown field `ab ab …`"): about 8 000 characters, where
/// `MESSAGE_LIMIT` (4 000) is documented as the longest message.
#[test]

fn a_key_of_many_short_words_is_quoted_by_a_short_prefix() {
    let key = "ab ".repeat(1400);
    let e = Grid::parse(Path::new(GRID_FILE), &format!("[[\"{key}\"]]\n"))
        .err()
        .unwrap();
    let chars = e.to_string().chars().count();
    assert!(chars <= MESSAGE_LIMIT + 200, "{chars} characters: {e}");
}

/// Polars' CSV errors span lines ("...'Schema'\n\nConsider setting
/// 'truncate_ragged_lines=true'."); `Error::malformed` abbreviates them but keeps the line
/// breaks (`ConfigError::new` applies `error::one_line`, `Error::malformed` does not).
#[test]

fn a_ragged_table_gives_a_one_line_error() {
    let dir = common::TempDir::new("props-csv");
    let path = dir.path().join("t.csv");
    std::fs::write(&path, "NaN\n,NaN").unwrap();
    let e = results::read_tidy(&path).unwrap_err().to_string();
    assert!(!e.contains('\n'), "{e:?}");
}

/// A file whose name holds a line break, under `cells/`: named with the raw path
/// (`Path::display`), so the entry, and the line of `compare`'s report, is broken in two.
#[test]

fn a_file_name_with_a_line_break_is_named_on_one_line() {
    let dir = common::TempDir::new("props-newline");
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    write_side(
        &a,
        &Side {
            edits: vec![],
            strays: vec![],
        },
    );
    let strays = vec![Stray::InCells("x\ny.json".into(), Some(b"{}".to_vec()))];
    write_side(
        &b,
        &Side {
            edits: vec![],
            strays,
        },
    );
    let c = compare_dirs(&a, &b, &Tolerance::default()).unwrap();
    let unreadable: Vec<&String> = c.grids.iter().flat_map(|g| &g.unreadable).collect();
    assert_eq!(unreadable.len(), 1);
    assert!(!unreadable[0].contains('\n'), "{:?}", unreadable[0]);
}

/// The same for a grid file whose name holds a line break: the message starts with the
/// raw path.
#[test]

fn a_grid_file_name_with_a_line_break_gives_a_one_line_error() {
    let e = Grid::parse(Path::new("experiments/a\nb.toml"), common::TINY)
        .err()
        .unwrap();
    assert!(!e.to_string().contains('\n'), "{e:?}");
}
