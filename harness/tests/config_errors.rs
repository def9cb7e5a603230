//! Grid files with mistakes: each error names the file, the key and the reason, and
//! nothing runs.

mod common;

use std::path::Path;

use common::TempDir;
use policy_param_harness::{ConfigError, Grid};

fn error_of(text: &str) -> ConfigError {
    match Grid::parse(Path::new("experiments/bad.toml"), text) {
        Err(e) => e,
        Ok(g) => panic!("accepted a bad grid ({} cells)", g.cells.len()),
    }
}

const HEAD: &str = r#"
[[experiment]]
name = "p"
algorithm = "fqi_explicit"
environment = "Pendulum-v1"
seeds = [0]
"#;

fn assert_names(e: &ConfigError, key: &str, reason_part: &str) {
    assert_eq!(e.file, Path::new("experiments/bad.toml"), "{e}");
    assert_eq!(e.key, key, "{e}");
    assert!(e.reason.contains(reason_part), "{e}");
    let message = e.to_string();
    assert!(
        message.starts_with("experiments/bad.toml: ") && message.contains(key),
        "{message}"
    );
}

#[test]
fn an_unknown_hyperparameter_is_named() {
    let e = error_of(&format!("{HEAD}[experiment.params]\nlrr = 0.1\n"));
    assert_names(&e, "experiment.p.params.lrr", "unknown field `lrr`");
    // The message lists the keys that exist.
    assert!(e.reason.contains("`lr`"), "{e}");
}

#[test]
fn a_wrong_type_is_named() {
    let e = error_of(&format!("{HEAD}[experiment.params]\nlr = \"fast\"\n"));
    assert_names(&e, "experiment.p.params.lr", "invalid type");
    let e = error_of(&format!("{HEAD}[experiment.params]\npoints = 1.5\n"));
    assert_names(&e, "experiment.p.params.points", "invalid type");
}

#[test]
fn an_out_of_range_value_is_named_with_its_place_in_the_sweep() {
    let e = error_of(&format!("{HEAD}[experiment.params]\nlr = -0.001\n"));
    assert_names(&e, "experiment.p.params.lr", "-0.001 is not a positive");
    let e = error_of(&format!("{HEAD}[experiment.sweep]\nlr = [1e-3, -1.0]\n"));
    assert_names(&e, "experiment.p.sweep.lr[1]", "-1 is not a positive");
    let e = error_of(&format!("{HEAD}[experiment.sweep]\ngamma = [0.9, 1.5]\n"));
    assert_names(&e, "experiment.p.sweep.gamma[1]", "not in (0, 1]");
}

#[test]
fn unknown_algorithms_and_environments_list_the_known_ones() {
    let e = error_of(
        "[[experiment]]\nname = \"x\"\nalgorithm = \"sarsa\"\nenvironment = \"Lqr\"\nseeds = [0]\n",
    );
    assert_names(&e, "experiment.x.algorithm", "unknown algorithm \"sarsa\"");
    assert!(e.reason.contains("fqi_explicit"), "{e}");
    let e = error_of(
        "[[experiment]]\nname = \"x\"\nalgorithm = \"fqi_explicit\"\nenvironment = \"CartPole-v1\"\nseeds = [0]\n",
    );
    assert_names(&e, "experiment.x.environment", "\"CartPole-v1\"");
    assert!(
        e.reason.contains("Pendulum-v1") && e.reason.contains("Lqr"),
        "{e}"
    );
}

#[test]
fn structural_mistakes_are_named() {
    // An unknown key in the experiment table (seed for seeds).
    let e = error_of(
        "[[experiment]]\nname = \"x\"\nalgorithm = \"fqi_explicit\"\nenvironment = \"Lqr\"\nseed = 0\n",
    );
    assert_names(&e, "experiment.x.seed", "unknown field `seed`");
    // A wrong type in the experiment table.
    let e = error_of(
        "[[experiment]]\nname = \"x\"\nalgorithm = \"fqi_explicit\"\nenvironment = \"Lqr\"\nseeds = [0, -1]\n",
    );
    assert_names(&e, "experiment.x.seeds[1]", "invalid value");
    // An unknown top-level key.
    let e = error_of(&format!("descripton = \"typo\"\n{HEAD}"));
    assert_names(&e, "descripton", "unknown field `descripton`");
    // A sweep that is not a list, an empty one, a key set twice, duplicate seeds.
    let e = error_of(&format!("{HEAD}[experiment.sweep]\nlr = 0.1\n"));
    assert_names(&e, "experiment.p.sweep.lr", "a sweep is a list");
    let e = error_of(&format!("{HEAD}[experiment.sweep]\nlr = []\n"));
    assert_names(&e, "experiment.p.sweep.lr", "empty list");
    let e = error_of(&format!(
        "{HEAD}[experiment.params]\nlr = 0.1\n[experiment.sweep]\nlr = [0.1]\n"
    ));
    assert_names(&e, "experiment.p.sweep.lr", "also set in params");
    let e = error_of(&HEAD.replace("seeds = [0]", "seeds = [3, 3]"));
    assert_names(&e, "experiment.p.seeds", "seed 3 appears twice");
    let e = error_of(&format!("{HEAD}[experiment.sweep]\nlr = [0.1, 0.1]\n"));
    assert_names(&e, "experiment.p.sweep", "listed twice");
    // A syntax error names its line.
    let e = error_of("[[experiment]]\nname = \"x\nalgorithm = 1\n");
    assert_eq!(e.key, "line 2", "{e}");
}

#[test]
fn cells_expand_in_order_with_stable_hashes() {
    let dir = TempDir::new("config");
    let file = dir.grid("tiny.toml", common::TINY);
    let grid = Grid::load(&file).unwrap();
    assert_eq!(grid.name, "tiny");
    // 2 maximizers × 2 bounds × 2 seeds, 2 seeds, 2 sizes.
    assert_eq!(grid.cells.len(), 8 + 2 + 2);
    let labels: Vec<String> = grid.cells.iter().take(3).map(|c| c.label()).collect();
    assert_eq!(
        labels,
        [
            "lqr[maximizer=quadratic,state_bound=1.0] seed=0",
            "lqr[maximizer=quadratic,state_bound=1.0] seed=1",
            "lqr[maximizer=quadratic,state_bound=2.0] seed=0",
        ]
    );
    for (i, c) in grid.cells.iter().enumerate() {
        assert_eq!(c.index, i);
    }
    // Defaults are filled in, so the canonical config names every key.
    assert_eq!(grid.cells[0].config["iterations"], 8);
    assert_eq!(grid.cells[0].config["ridge"], 0.0);
    // Same setting, other seed: same setting hash, other config hash.
    assert_eq!(grid.cells[0].setting_hash, grid.cells[1].setting_hash);
    assert_ne!(grid.cells[0].config_hash, grid.cells[1].config_hash);
    // Parsing again gives the same hashes; writing a default explicitly changes nothing;
    // changing a value changes the hash.
    let again = Grid::parse(&file, common::TINY).unwrap();
    let explicit = common::TINY.replace("points = 40\n", "points = 40\nridge = 0.0\n");
    let explicit = Grid::parse(&file, &explicit).unwrap();
    let changed = Grid::parse(&file, &common::TINY.replace("points = 40", "points = 41")).unwrap();
    for i in 0..grid.cells.len() {
        assert_eq!(grid.cells[i].config_hash, again.cells[i].config_hash);
        assert_eq!(grid.cells[i].config_hash, explicit.cells[i].config_hash);
    }
    assert_ne!(grid.cells[0].config_hash, changed.cells[0].config_hash);
    assert_eq!(grid.cells[8].config_hash, changed.cells[8].config_hash);
}

#[test]
fn a_declared_figure_names_what_exists() {
    let sweep = format!("{HEAD}[experiment.sweep]\nlr = [1e-3, 2e-3]\n");
    let figure = |body: &str| {
        format!("{sweep}\n[[figure]]\ntitle = \"t\"\nmetric = \"eval_return\"\n{body}")
    };
    let grid = Grid::parse(
        Path::new("experiments/good.toml"),
        &figure("experiments = [\"p[lr=0.002]\", \"p\"]\nbaseline = \"p[lr=0.001]\"\nreferences = [{ label = \"peer\", value = -150.0 }]\n"),
    )
    .unwrap();
    assert_eq!(grid.figures.len(), 1);
    assert_eq!(grid.figures[0].references[0].value, -150.0);
    let e = error_of(&figure("experiments = [\"q\"]\n"));
    assert_names(
        &e,
        "figure[0].experiments[0]",
        "no experiment or setting \"q\"",
    );
    let e = error_of(&figure("baseline = \"p[lr=5]\"\n"));
    assert_names(&e, "figure[0].baseline", "p[lr=0.001]");
    let e = error_of(&figure("better = \"up\"\n"));
    assert_names(&e, "figure[0].better", "neither");
    let e = error_of(&figure("colour = \"red\"\n"));
    assert_names(&e, "figure[0].colour", "unknown field `colour`");
}
