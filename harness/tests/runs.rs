//! Runs of tiny grids: thread-count independence checked by `compare`, a changed
//! metric caught and named, resumption that recomputes only unfinished cells, diverged
//! cells recorded while the others finish, and the tables and figures.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::TempDir;
use policy_param_harness::compare::{compare_dirs, Tolerance};
use policy_param_harness::shard::{self, Status};
use policy_param_harness::{gather, run_cell, run_grid, Grid, Outcome, RunOptions};
use policy_param_harness::{results, tables};

fn options(out: &Path, threads: usize) -> RunOptions {
    RunOptions {
        threads: Some(threads),
        progress: false,
        ..RunOptions::new(out)
    }
}

/// Every shard file's bytes, by file name.
fn shard_bytes(out: &Path, grid: &Grid) -> BTreeMap<String, Vec<u8>> {
    let dir = shard::cells_dir(out, &grid.name);
    std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().to_string(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect()
}

#[test]
fn one_and_two_threads_give_identical_results_and_a_changed_metric_is_named() {
    let dir = TempDir::new("threads");
    let grid = Grid::load(&dir.grid("tiny.toml", common::TINY)).unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let report_a = run_grid(&grid, &options(&a, 1)).unwrap();
    // Cells share a pool of two threads: the library's parallel loops inside each cell
    // run on both, interleaved with other cells.
    let shared = RunOptions {
        cell_threads: None,
        ..options(&b, 2)
    };
    let report_b = run_grid(&grid, &shared).unwrap();
    assert_eq!(report_a.threads, 1);
    assert_eq!(report_b.threads, 2);
    let threads_of = |dir: &Path| shard::finished(dir, &grid, &grid.cells[9]).unwrap().threads;
    assert_eq!((threads_of(&a), threads_of(&b)), (1, 2));
    for report in [&report_a, &report_b] {
        assert_eq!(
            report.ran().len(),
            grid.cells.len(),
            "{:?}",
            report.outcomes
        );
        assert!(report.diverged().is_empty() && report.failed().is_empty());
    }

    let exact = Tolerance::default();
    let comparison = compare_dirs(&a, &b, &exact).unwrap();
    assert!(comparison.identical(), "{}", comparison.render());
    assert_eq!(comparison.cells_compared(), grid.cells.len());
    assert!(
        comparison.values_compared() > 100,
        "{}",
        comparison.render()
    );
    // MILP and enumeration times (and FQI iteration times) are not reproducible.
    assert!(comparison.timing_values_skipped() > 0);
    let with_timing = Tolerance {
        include_timing: true,
        ..exact
    };
    assert!(!compare_dirs(&a, &b, &with_timing).unwrap().identical());

    // Change one value of one pendulum cell by one part in 10¹²: caught, and named.
    let cell = &grid.cells[9];
    let path = shard::shard_path(&b, &grid, cell);
    let mut s = shard::read(&path).unwrap();
    let row = s
        .metrics
        .iter_mut()
        .find(|m| m.metric == "fit_loss" && m.step == 2)
        .unwrap();
    let original = row.value;
    row.value *= 1.0 + 1e-12;
    shard::write(&path, &s).unwrap();
    let comparison = compare_dirs(&a, &b, &exact).unwrap();
    assert_eq!(comparison.differences().len(), 1, "{}", comparison.render());
    let d = comparison.differences()[0];
    assert_eq!(d.grid, "tiny");
    assert_eq!(d.cell, format!("#9 {}", cell.label()));
    assert_eq!((d.metric.as_str(), d.step), ("fit_loss", Some(2)));
    assert_eq!(d.a, format!("{original:?}"));
    let rendered = comparison.render();
    assert!(
        rendered.contains(&cell.label()) && rendered.contains("fit_loss"),
        "{rendered}"
    );
    // Within a tolerance it passes.
    let loose = Tolerance {
        rtol: 1e-9,
        ..exact
    };
    assert!(compare_dirs(&a, &b, &loose).unwrap().identical());

    // A cell missing on one side is a difference too.
    std::fs::remove_file(shard::shard_path(&a, &grid, &grid.cells[0])).unwrap();
    let comparison = compare_dirs(&a, &b, &loose).unwrap();
    assert_eq!(comparison.differences().len(), 1, "{}", comparison.render());
    assert_eq!(comparison.differences()[0].metric, "(cell)");
    assert_eq!(comparison.differences()[0].a, "missing");
}

#[test]
fn a_restarted_run_recomputes_only_unfinished_cells() {
    let dir = TempDir::new("resume");
    let grid = Grid::load(&dir.grid("tiny.toml", common::TINY)).unwrap();
    let out = dir.path().join("results");
    let opts = options(&out, 2);
    // A first run that got through cells 0, 3 and 9 only (as a cluster would run them).
    for i in [0, 3, 9] {
        assert_eq!(run_cell(&grid, i, &opts).unwrap(), Outcome::Ran(Status::Ok));
    }
    assert_eq!(run_cell(&grid, 3, &opts).unwrap(), Outcome::Skipped);
    let before = shard_bytes(&out, &grid);
    assert_eq!(before.len(), 3);

    let report = run_grid(&grid, &opts).unwrap();
    assert_eq!(report.skipped(), vec![0, 3, 9]);
    let expected_ran: Vec<usize> = (0..grid.cells.len())
        .filter(|i| ![0, 3, 9].contains(i))
        .collect();
    assert_eq!(report.ran(), expected_ran);
    let after = shard_bytes(&out, &grid);
    assert_eq!(after.len(), grid.cells.len());
    for (name, bytes) in &before {
        assert_eq!(&after[name], bytes, "{name} was rewritten");
    }
    // Nothing left to do; --fresh recomputes everything.
    let report = run_grid(&grid, &opts).unwrap();
    assert!(report.ran().is_empty());
    assert_eq!(report.skipped().len(), grid.cells.len());
    let fresh = RunOptions {
        fresh: true,
        ..opts.clone()
    };
    assert_eq!(
        run_grid(&grid, &fresh).unwrap().ran().len(),
        grid.cells.len()
    );

    // Editing a value makes only that experiment's cells unfinished.
    let edited = common::TINY.replace("eval_episodes = 2", "eval_episodes = 3");
    let edited = Grid::parse(&grid.file, &edited).unwrap();
    let report = run_grid(&edited, &opts).unwrap();
    assert_eq!(report.ran(), vec![8, 9]);
    // The old pendulum shards are stale: not gathered.
    let gathered = gather(&edited, &out, false).unwrap();
    assert_eq!(gathered.shards, edited.cells.len());
    assert_eq!(gathered.stale, 2);
}

#[test]
fn a_diverged_cell_is_recorded_and_the_others_finish() {
    let dir = TempDir::new("diverged");
    let grid = Grid::load(&dir.grid("diverging.toml", common::DIVERGING)).unwrap();
    let out = dir.path().join("results");
    let report = run_grid(&grid, &options(&out, 2)).unwrap();
    assert_eq!(report.diverged(), vec![1], "{:?}", report.outcomes);
    assert_eq!(report.ran(), vec![0, 1, 2]);
    assert!(report.failed().is_empty());
    let s = shard::finished(&out, &grid, &grid.cells[1]).unwrap();
    match &s.status {
        Status::Diverged { reason } => assert!(reason.contains("fit loss"), "{reason}"),
        other => panic!("{other:?}"),
    }
    for i in [0, 2] {
        let s = shard::finished(&out, &grid, &grid.cells[i]).unwrap();
        assert_eq!(s.status, Status::Ok);
        assert!(s.metrics.iter().any(|m| m.metric == "eval_return"));
    }
    // A diverged cell is finished: a rerun skips it.
    assert_eq!(
        run_grid(&grid, &options(&out, 2)).unwrap().skipped().len(),
        3
    );
    // The summary counts it, and takes no values from it.
    let gathered = gather(&grid, &out, false).unwrap();
    assert_eq!(gathered.diverged, 1);
    let mut summary = csv::Reader::from_path(&gathered.summary).unwrap();
    let header = summary.headers().unwrap().clone();
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let rows: Vec<csv::StringRecord> = summary.records().map(|r| r.unwrap()).collect();
    let diverged: Vec<&csv::StringRecord> = rows
        .iter()
        .filter(|r| r[col("setting")] == *"lr=1e+30")
        .collect();
    assert_eq!(diverged.len(), 1, "{diverged:?}");
    assert_eq!(&diverged[0][col("metric")], "cell_wall_seconds");
    assert_eq!(&diverged[0][col("diverged")], "1");
    assert!(rows
        .iter()
        .filter(|r| r[col("setting")] != *"lr=1e+30")
        .all(|r| r[col("diverged")] == *"0" && r[col("n")] == *"1"));
}

#[test]
fn tables_and_figures_summarize_the_seeds() {
    let dir = TempDir::new("tables");
    let grid = Grid::load(&dir.grid("tiny.toml", common::TINY)).unwrap();
    let out = dir.path().join("results");
    run_grid(&grid, &options(&out, 2)).unwrap();
    let report = gather(&grid, &out, false).unwrap();
    assert_eq!(report.shards, grid.cells.len());
    assert!(report.missing.is_empty());
    assert!(report.parquet.exists());

    // Tidy table: one row per cell × metric × step.
    let mut tidy = csv::Reader::from_path(&report.csv).unwrap();
    let header = tidy.headers().unwrap().clone();
    for column in [
        "experiment",
        "setting",
        "maximizer",
        "state_bound",
        "sites",
        "seed",
        "metric",
        "step",
        "value",
    ] {
        assert!(
            header.iter().any(|h| h == column),
            "no column {column} in {header:?}"
        );
    }
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let rows: Vec<csv::StringRecord> = tidy.records().map(|r| r.unwrap()).collect();
    let gain_errors_at_8: Vec<(String, f64)> = rows
        .iter()
        .filter(|r| {
            r[col("experiment")] == *"lqr"
                && r[col("metric")] == *"gain_error"
                && r[col("step")] == *"8"
        })
        .map(|r| {
            (
                r[col("setting")].to_string(),
                r[col("value")].parse().unwrap(),
            )
        })
        .collect();
    assert_eq!(gain_errors_at_8.len(), 8);

    // Summary: mean, std, CI over the two seeds of each setting.
    let mut summary = csv::Reader::from_path(&report.summary).unwrap();
    let sh = summary.headers().unwrap().clone();
    let scol = |name: &str| sh.iter().position(|h| h == name).unwrap();
    let srows: Vec<csv::StringRecord> = summary.records().map(|r| r.unwrap()).collect();
    let setting = "maximizer=quadratic,state_bound=2.0";
    let row = srows
        .iter()
        .find(|r| {
            r[scol("setting")] == *setting
                && r[scol("metric")] == *"gain_error"
                && r[scol("step")] == *"8"
        })
        .unwrap();
    let values: Vec<f64> = gain_errors_at_8
        .iter()
        .filter(|(s, _)| s == setting)
        .map(|(_, v)| *v)
        .collect();
    assert_eq!(values.len(), 2);
    let mean = (values[0] + values[1]) / 2.0;
    let std = (values[0] - values[1]).abs() / 2f64.sqrt();
    let parse = |name: &str| row[scol(name)].parse::<f64>().unwrap();
    assert_eq!(row[scol("n")].parse::<usize>().unwrap(), 2);
    assert!(
        (parse("mean") - mean).abs() <= 1e-12 * mean.abs().max(1e-300),
        "{row:?}"
    );
    assert!(
        (parse("std") - std).abs() <= 1e-9 * std.max(1e-300),
        "{row:?}"
    );
    assert!(
        (parse("ci95") - 12.706204 * std / 2f64.sqrt()).abs() <= 1e-6 * std.max(1e-300) + 1e-300
    );
    // FQI on the LQR is value iteration: after 8 iterations the gain is much closer to
    // Riccati's than after 1, in every setting.
    for s in [
        "maximizer=quadratic,state_bound=1.0",
        "maximizer=lbfgs,state_bound=2.0",
    ] {
        let at = |step: &str| {
            srows
                .iter()
                .find(|r| {
                    r[scol("setting")] == *s
                        && r[scol("metric")] == *"gain_error"
                        && r[scol("step")] == *step
                })
                .map(|r| r[scol("mean")].parse::<f64>().unwrap())
                .unwrap()
        };
        assert!(at("8") < 0.1 * at("2"), "{s}: {} vs {}", at("8"), at("2"));
    }
    // MILP and enumeration agree on every draw.
    for r in srows.iter().filter(|r| r[scol("metric")] == *"agreement") {
        assert_eq!(r[scol("mean")].parse::<f64>().unwrap(), 2.0, "{r:?}");
    }

    // Figures: learning curves (two seeds a setting: each seed drawn, dotted), a heatmap
    // for the two-key sweep; plotly.js from the file beside the page, nothing remote.
    let html = std::fs::read_to_string(&report.figures).unwrap();
    assert!(report.figure_count >= 8, "{}", report.figure_count);
    assert_eq!(
        html.matches("class=\"plotly-graph-div\"").count(),
        report.figure_count
    );
    assert!(html.contains("<script src=\"plotly.min.js\"></script>"));
    assert!(!html.contains("src=\"http"), "a remote script");
    assert!(out.join("plotly.min.js").is_file());
    assert!(html.contains("\"dash\":\"dot\""));
    assert!(html.contains("\"type\":\"heatmap\""));
    assert!(html.contains("FQI iteration"), "no axis title with units");
    assert!(html.contains("n=2"), "no n on the points");
}

/// The reader's loop on a fresh clone: the committed tables alone (no shards) compare
/// equal to a run; `gather` there refuses to replace them with nothing; and a run that
/// lost a shard cannot shrink its tables either, unless asked to.
#[test]
fn tables_are_compared_without_shards_and_never_shrink() {
    let dir = TempDir::new("no-shrink");
    let grid = Grid::load(&dir.grid("tiny.toml", common::TINY)).unwrap();
    let out = dir.path().join("results");
    run_grid(&grid, &options(&out, 2)).unwrap();
    gather(&grid, &out, false).unwrap();

    // A fresh clone: the committed files only.
    let clone = dir.path().join("clone");
    std::fs::create_dir_all(&clone).unwrap();
    for f in [
        "tiny.parquet",
        "tiny_summary.csv",
        "tiny.html",
        "plotly.min.js",
    ] {
        std::fs::copy(out.join(f), clone.join(f)).unwrap();
    }
    let comparison = compare_dirs(&clone, &out, &Tolerance::default()).unwrap();
    assert!(comparison.identical(), "{}", comparison.render());
    assert_eq!(comparison.cells_compared(), grid.cells.len());
    assert!(comparison.render().contains("tiny: identical"));

    // One committed value altered in the Parquet table: named by grid, cell, metric, step.
    let altered = dir.path().join("altered");
    std::fs::create_dir_all(&altered).unwrap();
    let tidy = results::read_tidy(&clone.join("tiny.parquet")).unwrap();
    let mut cells = results::cells_from_tidy("tiny", &tidy).unwrap();
    let row = cells[9]
        .metrics
        .iter_mut()
        .find(|m| m.metric == "fit_loss" && m.step == 2)
        .unwrap();
    row.value = row.value.next_up();
    let columns = tables::sweep_columns(&grid);
    let mut frame = tables::tidy_frame(&columns, &cells).unwrap();
    tables::write_parquet(&altered.join("tiny.parquet"), &mut frame).unwrap();
    let comparison = compare_dirs(&altered, &out, &Tolerance::default()).unwrap();
    assert_eq!(comparison.differences().len(), 1, "{}", comparison.render());
    let d = comparison.differences()[0];
    assert_eq!(
        (d.grid.as_str(), d.cell.as_str(), d.metric.as_str(), d.step),
        (
            "tiny",
            format!("#9 {}", grid.cells[9].label()).as_str(),
            "fit_loss",
            Some(2)
        )
    );
    assert!(comparison.render().contains("tiny: different"));
    let committed = |dir: &Path| -> Vec<Vec<u8>> {
        ["tiny.parquet", "tiny_summary.csv", "tiny.html"]
            .iter()
            .map(|f| std::fs::read(dir.join(f)).unwrap())
            .collect()
    };
    let before = committed(&clone);
    let err = gather(&grid, &clone, false).err().expect("refused");
    let message = err.to_string();
    assert!(
        message.contains(&format!("holds {} cells", grid.cells.len()))
            && message.contains("missing: #0"),
        "{message}"
    );
    assert_eq!(committed(&clone), before, "a committed table changed");

    // A shard lost (or unreadable, or a stray file beside it): the tables stay.
    let lost = shard::shard_path(&out, &grid, &grid.cells[3]);
    std::fs::remove_file(&lost).unwrap();
    std::fs::write(shard::cells_dir(&out, &grid.name).join("notes.json"), "{}").unwrap();
    let before = committed(&out);
    let err = gather(&grid, &out, false)
        .err()
        .expect("refused")
        .to_string();
    assert!(err.contains("#3") && err.contains("unreadable"), "{err}");
    assert_eq!(committed(&out), before);
    // compare reads the remaining shards, reports the stray file, and names the lost cell.
    let comparison = compare_dirs(&clone, &out, &Tolerance::default()).unwrap();
    assert_eq!(comparison.differences().len(), 1, "{}", comparison.render());
    assert_eq!(comparison.differences()[0].metric, "(cell)");
    assert!(comparison.render().contains("notes.json"));
    // Asked to, it writes the smaller tables.
    let report = gather(&grid, &out, true).unwrap();
    assert_eq!(report.shards, grid.cells.len() - 1);
    assert_eq!(report.unreadable.len(), 1);
}
