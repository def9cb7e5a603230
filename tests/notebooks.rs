//! The notebooks under `notebooks/` are committed with their outputs, so that GitHub and
//! nbviewer show what they compute without running them. `just render-notebooks`
//! (scripts/render_notebooks.py) writes them; these tests check what it must guarantee on the
//! committed files: Markdown that is Markdown, every cell executed, a static image for the
//! figures, and nothing in the outputs that belongs to one machine or one run.

use std::path::{Path, PathBuf};

use serde_json::Value;

/// Prefixes of absolute paths of the machine that rendered the notebooks.
const MACHINE_PATHS: [&str; 4] = ["/work/", "/root/", "/tmp/", "/home/"];

fn notebook_paths() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("notebooks");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "ipynb"))
        .collect();
    paths.sort();
    assert!(!paths.is_empty(), "no notebooks in {}", dir.display());
    paths
}

/// (file name, parsed notebook) of every notebook.
fn notebooks() -> Vec<(String, Value)> {
    notebook_paths()
        .into_iter()
        .map(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(&path).unwrap();
            let notebook = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
            (name, notebook)
        })
        .collect()
}

fn cells(notebook: &Value) -> &[Value] {
    notebook["cells"].as_array().expect("a notebook has cells")
}

/// A cell's source, which nbformat stores as one string or as a list of lines.
fn source(cell: &Value) -> String {
    match &cell["source"] {
        Value::String(s) => s.clone(),
        Value::Array(lines) => lines.iter().filter_map(Value::as_str).collect(),
        _ => String::new(),
    }
}

fn outputs(cell: &Value) -> &[Value] {
    cell["outputs"].as_array().map_or(&[], Vec::as_slice)
}

/// Why a Markdown cell looks like jupytext comment lines (`# text`, `#`) rather than Markdown,
/// or None. Such a cell renders every line as a heading. Real Markdown has at most a few
/// headings: a bare `#` is an empty heading, `# #` a heading that starts with a hash, and a
/// cell whose every line is a level-1 heading is a comment block.
fn comment_lines_reason(markdown: &str) -> Option<String> {
    let lines: Vec<&str> = markdown.lines().filter(|l| !l.trim().is_empty()).collect();
    if let Some(line) = lines.iter().find(|l| l.trim_end() == "#") {
        return Some(format!("a line is just {line:?}"));
    }
    if let Some(line) = lines.iter().find(|l| l.starts_with("# #")) {
        return Some(format!("a line starts with \"# #\": {line:?}"));
    }
    if lines.len() >= 2 && lines.iter().all(|l| l.starts_with("# ")) {
        return Some(format!("all {} lines start with \"# \"", lines.len()));
    }
    None
}

#[test]
fn comment_line_rule_rejects_jupytext_comments_and_accepts_markdown() {
    // The first lines of notebook 04's first cell as they were committed, and as fixed.
    let comments = "# # 04 · Stochastic policies: the smooth Bellman equations and soft actor-critic\n\
                    #\n\
                    # Notebooks 01–03 looked for a *deterministic* decision rule: the action that maximizes $q(s,\\cdot)$,\n\
                    # found by an optimizer (FQI) or learned once and for all (NFQCA, DDPG).";
    let markdown = "# 04 · Stochastic policies: the smooth Bellman equations and soft actor-critic\n\
                    \n\
                    Notebooks 01–03 looked for a *deterministic* decision rule: the action that maximizes $q(s,\\cdot)$,\n\
                    found by an optimizer (FQI) or learned once and for all (NFQCA, DDPG).";
    assert!(comment_lines_reason(comments).is_some());
    assert_eq!(comment_lines_reason(markdown), None);
    // Each symptom on its own, without the others.
    let paragraph = "# The KL on a grid of $(\\mu, \\sigma)$, with $\\sigma$ on a log scale;\n\
                     # in each half-plane $\\mu < 0$ and $\\mu > 0$.";
    assert!(comment_lines_reason(paragraph).is_some());
    assert!(comment_lines_reason("# ## 6 · Pendulum-v1").is_some());
    assert!(comment_lines_reason("Some text\n#\nmore text").is_some());
    assert_eq!(
        comment_lines_reason("## Environments\n\n`make` builds an environment."),
        None
    );
    assert_eq!(comment_lines_reason("# A title"), None);
}

#[test]
fn markdown_cells_are_markdown_not_comment_lines() {
    for (name, notebook) in notebooks() {
        for (index, cell) in cells(&notebook).iter().enumerate() {
            if cell["cell_type"] == "markdown" {
                if let Some(reason) = comment_lines_reason(&source(cell)) {
                    panic!("{name}, cell {index}: Markdown written as comment lines ({reason}): strip the leading \"# \"");
                }
            }
        }
    }
}

/// Whether a code cell prints or displays something when it runs. The others print nothing
/// by design: cells of evcxr commands only (`:dep ...`) and cells that only define items.
fn prints(code: &str) -> bool {
    ["println!", "print!", "evcxr_display"]
        .iter()
        .any(|call| code.contains(call))
}

#[test]
fn every_code_cell_that_prints_has_outputs() {
    for (name, notebook) in notebooks() {
        for (index, cell) in cells(&notebook).iter().enumerate() {
            if cell["cell_type"] == "code" && prints(&source(cell)) {
                assert!(
                    !outputs(cell).is_empty(),
                    "{name}, cell {index}: a code cell that prints has no outputs; run `just render-notebooks`"
                );
            }
        }
    }
}

#[test]
fn every_notebook_has_a_static_image() {
    for (name, notebook) in notebooks() {
        let has_image = cells(&notebook).iter().flat_map(outputs).any(|out| {
            out["data"].get("image/svg+xml").is_some() || out["data"].get("image/png").is_some()
        });
        assert!(
            has_image,
            "{name}: no output has an image/svg+xml or image/png entry (GitHub and nbviewer \
             show no figure); run `just render-notebooks`"
        );
    }
}

#[test]
fn every_plotly_figure_has_a_static_image() {
    for (name, notebook) in notebooks() {
        for (index, cell) in cells(&notebook).iter().enumerate() {
            for out in outputs(cell) {
                if out["data"].get("application/vnd.plotly.v1+json").is_some() {
                    assert!(
                        out["data"].get("image/svg+xml").is_some(),
                        "{name}, cell {index}: a plotly figure without its image/svg+xml rendering"
                    );
                }
            }
        }
    }
}

#[test]
fn outputs_have_no_errors_and_no_machine_paths() {
    for (name, notebook) in notebooks() {
        for (index, cell) in cells(&notebook).iter().enumerate() {
            for out in outputs(cell) {
                assert_ne!(
                    out["output_type"], "error",
                    "{name}, cell {index}: an error output: {}: {}",
                    out["ename"], out["evalue"]
                );
                let text = out.to_string();
                for prefix in MACHINE_PATHS {
                    assert!(
                        !text.contains(prefix),
                        "{name}, cell {index}: an output contains the absolute path prefix {prefix:?}"
                    );
                }
            }
        }
    }
}

/// Every code cell was executed, in order (a cell added or cleared since the last render has no
/// count), and no cell keeps the timestamps of its execution.
#[test]
fn no_execution_timestamps_and_sequential_counts() {
    for (name, notebook) in notebooks() {
        let mut count = 0;
        for (index, cell) in cells(&notebook).iter().enumerate() {
            for key in ["execution", "ExecuteTime"] {
                assert!(
                    cell["metadata"].get(key).is_none(),
                    "{name}, cell {index}: metadata.{key} holds execution timestamps"
                );
            }
            if cell["cell_type"] == "code" {
                count += 1;
                assert_eq!(
                    cell["execution_count"], count,
                    "{name}, cell {index}: execution counts must run 1, 2, 3, ... over the code cells"
                );
            }
        }
    }
}
