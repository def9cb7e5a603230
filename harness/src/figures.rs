//! Figures of a grid, with plotly, in one HTML page `results/<grid>.html` that works
//! offline: plotly.js is loaded by relative path from `plotly.min.js` beside the page
//! (written there from the copy the plotly crate embeds), nothing is fetched from the
//! network, and all text is plain Unicode (no MathJax).
//!
//! The page opens with a contents list, then the comparisons the grid file declares
//! (`[[figure]]`): every setting of the named experiments overlaid on one metric,
//! reference lines for a peer's published figure, and a caption with each setting's mean
//! and interquartile mean and its probability of improvement over the baseline, with
//! bootstrap intervals ([`crate::methods`]). Then one section per experiment, a figure per
//! metric: learning curves when the metric is recorded at several steps (and a heatmap
//! of the last step for a two-key sweep); when recorded once, the metric against the swept
//! key, a heatmap with lines for two keys, or a bar per setting; timings side by side.
//!
//! What every curve or bar shows: the mean over the seeds that finished ok with its 95%
//! confidence interval (Student t); for a positive metric spanning decades (errors) the
//! geometric mean with the interval taken in log space, so that it stays positive on the
//! log axis; each seed's own values when a setting has three seeds or fewer; the number
//! of seeds at each point on hover; diverged seeds dashed, with their reasons under the
//! figure. Axes name what they measure ("environment steps", "FQI iteration").
//!
//! Plots have fixed ids, so the same cells give the same file.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotly::common::{DashType, ErrorData, ErrorType, Fill, Line, Marker, Mode, Title};
use plotly::layout::{Axis, AxisType, Legend};
use plotly::{Bar, HeatMap, Layout, Plot, Scatter};

use crate::config::{display_value, FigureSpec, Grid};
use crate::error::{Error, Result};
use crate::experiment::is_timing_metric;
use crate::methods::{self, Better, GridStats, Request, Step};
use crate::results::{group_by, CellResult, CELL_WALL_SECONDS};
use crate::stats::significant;
use crate::tables::mean_std_ci;

/// The file name of plotly.js beside every page.
pub const PLOTLY_JS: &str = "plotly.min.js";

/// plotly.js as the plotly crate embeds it (feature `plotly_embed_js`): the first of the
/// inline scripts of `Plot::offline_js_sources` (the second is MathJax, which we do not
/// need).
pub fn plotly_js() -> &'static str {
    static JS: OnceLock<String> = OnceLock::new();
    JS.get_or_init(|| {
        let sources = Plot::offline_js_sources();
        let open = "<script type=\"text/javascript\">";
        let start = sources.find(open).map_or(0, |i| i + open.len());
        let end = sources[start..]
            .find("</script>")
            .map_or(sources.len(), |i| start + i);
        sources[start..end].to_string()
    })
}

/// plotly's default colours.
const PALETTE: [(u8, u8, u8); 10] = [
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
    (188, 189, 34),
    (23, 190, 207),
];

fn colour(i: usize, alpha: f64) -> String {
    let (r, g, b) = PALETTE[i % PALETTE.len()];
    format!("rgba({r},{g},{b},{alpha})")
}

/// Write `out/<grid>.html` (and `out/plotly.min.js` if it is not there already); returns
/// the page's path and its number of figures.
pub fn write_figures(grid: &Grid, cells: &[CellResult], out: &Path) -> Result<(PathBuf, usize)> {
    let mut page = Page::default();
    if !grid.figures.is_empty() {
        let mut section = Section::new(
            "comparisons",
            "Comparisons",
            "<p>The comparisons the grid file declares: every setting overlaid.</p>",
        );
        for spec in &grid.figures {
            declared_figure(&mut page, &mut section, grid, spec, cells)?;
        }
        page.sections.push(section);
    }
    for exp in &grid.experiments {
        let exp_cells: Vec<&CellResult> =
            cells.iter().filter(|c| c.experiment == exp.name).collect();
        if exp_cells.is_empty() {
            continue;
        }
        let mut section = Section::new(
            &format!("experiment-{}", exp.name),
            &format!("{} ({} on {})", exp.name, exp.algorithm, exp.environment),
            &format!("<p>{}</p>", escape(&exp.description)),
        );
        experiment_figures(&mut page, &mut section, exp, &exp_cells);
        if section.figures.is_empty() {
            // Every seed diverged before recording anything: say so where a reader looks.
            let groups = group_by(exp_cells.iter().copied(), CellResult::setting_label);
            let _ = write!(
                section.intro,
                "<p>No figure: no seed recorded a metric.</p><ul>{}</ul>",
                diverged_notes(&groups).join("")
            );
        }
        page.sections.push(section);
    }
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    write_if_changed(&out.join(PLOTLY_JS), plotly_js().as_bytes())?;
    let path = out.join(format!("{}.html", grid.name));
    crate::files::write_text(&path, &page.render(grid))?;
    Ok((path, page.figures))
}

fn write_if_changed(path: &Path, bytes: &[u8]) -> Result<()> {
    if std::fs::read(path).is_ok_and(|old| old == bytes) {
        return Ok(());
    }
    crate::files::write_atomically(path, |file| {
        std::io::Write::write_all(file, bytes).map_err(|e| Error::io(path, e))
    })
}

#[derive(Default)]
struct Page {
    sections: Vec<Section>,
    figures: usize,
}

struct Section {
    id: String,
    title: String,
    /// HTML.
    intro: String,
    /// (figure id, title, html)
    figures: Vec<(String, String, String)>,
}

impl Section {
    fn new(id: &str, title: &str, intro: &str) -> Section {
        Section {
            id: id.to_string(),
            title: title.to_string(),
            intro: intro.to_string(),
            figures: Vec::new(),
        }
    }
}

impl Page {
    /// Render `plot` now (a plot holds its own copy of plotly.js) with `caption` (HTML).
    fn add(&mut self, section: &mut Section, title: &str, plot: Plot, caption: &str) {
        let id = format!("figure-{}", self.figures);
        let html = format!(
            "<figure id=\"{id}\">\n{}\n<figcaption>{caption}</figcaption>\n</figure>\n",
            plot.to_inline_html(Some(&format!("plot-{}", self.figures)))
        );
        section.figures.push((id, title.to_string(), html));
        self.figures += 1;
    }

    fn render(&self, grid: &Grid) -> String {
        let mut contents = String::new();
        let mut body = String::new();
        for s in &self.sections {
            let _ = write!(
                contents,
                "<li><a href=\"#{}\">{}</a> ({} figure{})<ol>",
                s.id,
                escape(&s.title),
                s.figures.len(),
                if s.figures.len() == 1 { "" } else { "s" }
            );
            let _ = write!(
                body,
                "<section id=\"{}\">\n<h2>{}</h2>\n{}\n",
                s.id,
                escape(&s.title),
                s.intro
            );
            for (id, title, html) in &s.figures {
                let _ = write!(contents, "<li><a href=\"#{id}\">{}</a></li>", escape(title));
                body.push_str(html);
            }
            contents.push_str("</ol></li>\n");
            body.push_str("</section>\n");
        }
        format!(
            "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\" />\n<title>{name}</title>\n<script src=\"{PLOTLY_JS}\"></script>\n<style>\nbody {{ font-family: sans-serif; max-width: 1100px; margin: auto; padding: 0 1em; }}\nfigure {{ margin: 2em 0; }} figcaption {{ font-size: 0.9em; color: #333; }}\ntable {{ border-collapse: collapse; }} td, th {{ padding: 0.15em 0.6em; text-align: left; border-bottom: 1px solid #ddd; }}\n.plotly-graph-div {{ height: 480px !important; }}\n</style>\n</head>\n<body>\n<h1>{name}</h1>\n<p>{description}</p>\n<p>Every curve and bar is the mean over the seeds that finished, with its 95% confidence interval (Student t); a positive metric spanning decades is drawn on a log axis as the geometric mean with the interval taken in log space. Settings with three seeds or fewer show each seed's values. Hover shows the number of seeds n at each point. Tables: <code>{name}.parquet</code> (every seed), <code>{name}_summary.csv</code>. Made offline: plotly.js is <code>{PLOTLY_JS}</code> beside this page.</p>\n<nav>\n<h2>Contents</h2>\n<ol>\n{contents}</ol>\n</nav>\n{body}</body>\n</html>\n",
            name = escape(&grid.name),
            description = escape(&grid.description),
        )
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// What a step counts, by algorithm.
fn step_axis(algorithm: &str) -> &'static str {
    match algorithm {
        "ddpg" | "sac" | "td3" => "environment steps",
        "fqi_explicit" | "fqi_amortized" | "nfqca" | "smooth_fqi" => "FQI iteration",
        _ => "step",
    }
}

/// What a metric measures, with its unit, for an axis title. A `final_` metric is the
/// same measure taken once, at the end of the run.
fn metric_axis(metric: &str) -> String {
    if let Some(measure) = metric.strip_prefix("final_") {
        return format!("final {}", metric_axis(measure));
    }
    let known = match metric {
        "eval_return" => "evaluation return (sum of rewards per episode)",
        "greedy_return" => "return of the greedy policy (sum of rewards per episode)",
        "rule_return" => "return of the rule d(s; w) (sum of rewards per episode)",
        "gain_error" => "gain error ‖K − K*‖ / ‖K*‖ (K* from Riccati)",
        "rule_gain_error" => "gain error of d(s; w), ‖W − (−K*)‖ / ‖K*‖",
        "p_error" => "value error ‖P − P*‖ / ‖P*‖ (P* from Riccati)",
        "delta" | "delta_q" => "δ_q: mean squared change of q in one iteration",
        "delta_d" => "δ_d: mean squared error of d on its solved actions",
        "fit_loss" | "q_fit_loss" => "fit loss: mean squared error of q on its targets",
        "critic_loss" => "critic loss: mean squared TD error",
        "value_loss" => "value loss: mean squared error of v",
        "entropy" => "policy entropy (nats)",
        "beta" => "temperature β",
        "solver_calls" => "exact maximize calls in the iteration",
        "solver_calls_total" => "exact maximize calls in the run",
        "iterations" => "iterations run",
        "exact_value" | "monte_carlo_value" => "expected discounted return",
        "monte_carlo_std_error" => "standard error of the Monte Carlo value",
        "actions" => "feasible actions per state",
        "states" => "states maximized",
        "agreement" => "states where MILP = enumeration",
        "max_value_gap" => "largest |q(MILP) − q(enumeration)|",
        _ => "",
    };
    if !known.is_empty() {
        known.to_string()
    } else if let Some(name) = metric.strip_suffix("_seconds") {
        format!("{} (seconds)", name.replace('_', " "))
    } else if let Some(name) = metric.strip_suffix("_per_second") {
        format!("{} per second", name.replace('_', " "))
    } else {
        metric.replace('_', " ")
    }
}

/// Positive values spanning more than two decades: a log axis, and intervals in log space.
fn spans_decades(values: impl Iterator<Item = f64>) -> bool {
    let (mut lo, mut hi) = (f64::INFINITY, 0.0f64);
    for v in values.filter(|v| v.is_finite()) {
        if v <= 0.0 {
            return false;
        }
        lo = lo.min(v);
        hi = hi.max(v);
    }
    lo.is_finite() && hi / lo > 100.0
}

/// Every ok value of `metric` among `cells`.
fn ok_values<'a>(cells: &'a [&CellResult], metric: &'a str) -> impl Iterator<Item = f64> + 'a {
    cells
        .iter()
        .filter(|c| c.is_ok())
        .flat_map(move |c| c.metrics.iter().filter(move |m| m.metric == metric))
        .map(|m| m.value)
}

/// The centre of a set of seeds' values and its 95% interval.
#[derive(Clone, Copy, Debug)]
struct Point {
    x: f64,
    centre: f64,
    low: f64,
    high: f64,
    n: usize,
}

/// Mean and Student-t interval, or in log space (geometric mean) when `log`.
fn point(x: f64, values: &[f64], log: bool) -> Point {
    let (n, centre, low, high) = if log {
        let logs: Vec<f64> = values.iter().map(|v| v.ln()).collect();
        let (n, m, _, ci) = mean_std_ci(&logs);
        let ci = if ci.is_finite() { ci } else { 0.0 };
        (n, m.exp(), (m - ci).exp(), (m + ci).exp())
    } else {
        let (n, m, _, ci) = mean_std_ci(values);
        let ci = if ci.is_finite() { ci } else { 0.0 };
        (n, m, m - ci, m + ci)
    };
    Point {
        x,
        centre,
        low,
        high,
        n,
    }
}

/// The steps at which any of `cells` recorded `metric`, ascending.
fn steps_of<'a>(cells: impl Iterator<Item = &'a &'a CellResult>, metric: &str) -> Vec<u64> {
    let mut steps: Vec<u64> = cells
        .flat_map(|c| c.metrics.iter().filter(|m| m.metric == metric))
        .map(|m| m.step)
        .collect();
    steps.sort_unstable();
    steps.dedup();
    steps
}

/// Per step, the point over the ok seeds of `cells` that recorded `metric` there.
fn curve(cells: &[&CellResult], metric: &str, log: bool) -> Vec<Point> {
    steps_of(cells.iter().filter(|c| c.is_ok()), metric)
        .into_iter()
        .map(|step| {
            let values: Vec<f64> = cells
                .iter()
                .filter(|c| c.is_ok())
                .filter_map(|c| c.value(metric, step))
                .collect();
            point(step as f64, &values, log)
        })
        .collect()
}

/// `(step, value)` of one cell's `metric`, by step.
fn series(cell: &CellResult, metric: &str) -> (Vec<f64>, Vec<f64>) {
    let mut points: Vec<(u64, f64)> = cell
        .metrics
        .iter()
        .filter(|m| m.metric == metric)
        .map(|m| (m.step, m.value))
        .collect();
    points.sort_by_key(|p| p.0);
    (
        points.iter().map(|p| p.0 as f64).collect(),
        points.iter().map(|p| p.1).collect(),
    )
}

fn n_text(points: &[Point]) -> Vec<String> {
    points.iter().map(|p| format!("n={}", p.n)).collect()
}

fn n_range(points: &[Point]) -> String {
    let lo = points.iter().map(|p| p.n).min().unwrap_or(0);
    let hi = points.iter().map(|p| p.n).max().unwrap_or(0);
    if lo == hi {
        format!("n={hi}")
    } else {
        format!("n={lo}–{hi}")
    }
}

/// Diverged seeds among `groups`, one HTML list item each.
fn diverged_notes(groups: &[(String, Vec<&CellResult>)]) -> Vec<String> {
    groups
        .iter()
        .flat_map(|(label, g)| {
            g.iter().filter(|c| !c.is_ok()).map(move |c| {
                format!(
                    "<li>{} seed {} diverged: {}</li>",
                    escape(label),
                    c.seed,
                    escape(&c.reason)
                )
            })
        })
        .collect()
}

fn layout(title: &str, x: &str, y: &str, log_y: bool) -> Layout {
    Layout::new()
        .title(Title::with_text(title))
        .x_axis(Axis::new().title(Title::with_text(x)))
        .y_axis(Axis::new().title(Title::with_text(y)).type_(if log_y {
            AxisType::Log
        } else {
            AxisType::Linear
        }))
        .legend(Legend::new())
}

/// Learning curves of `metric`, one per setting: mean (or geometric mean) with its band,
/// each seed when there are three or fewer, diverged seeds dashed, reference lines.
fn curves_plot(
    title: &str,
    x_label: &str,
    metric: &str,
    groups: &[(String, Vec<&CellResult>)],
    references: &[crate::config::Reference],
) -> Plot {
    let all: Vec<&CellResult> = groups.iter().flat_map(|(_, g)| g.iter().copied()).collect();
    let log = spans_decades(ok_values(&all, metric));
    let mut plot = Plot::new();
    let (mut x_min, mut x_max) = (f64::INFINITY, f64::NEG_INFINITY);
    for (i, (label, group)) in groups.iter().enumerate() {
        let points = curve(group, metric, log);
        let per_seed = points.iter().map(|p| p.n).max().unwrap_or(0) <= 3;
        for p in &points {
            x_min = x_min.min(p.x);
            x_max = x_max.max(p.x);
        }
        let x: Vec<f64> = points.iter().map(|p| p.x).collect();
        if !per_seed {
            plot.add_trace(
                Scatter::new(x.clone(), points.iter().map(|p| p.low).collect())
                    .mode(Mode::Lines)
                    .line(Line::new().width(0.0))
                    .show_legend(false)
                    .legend_group(label)
                    .hover_info(plotly::common::HoverInfo::Skip)
                    .name(format!("{label} (95% CI)")),
            );
            plot.add_trace(
                Scatter::new(x.clone(), points.iter().map(|p| p.high).collect())
                    .mode(Mode::Lines)
                    .line(Line::new().width(0.0))
                    .fill(Fill::ToNextY)
                    .fill_color(colour(i, 0.2))
                    .show_legend(false)
                    .legend_group(label)
                    .hover_info(plotly::common::HoverInfo::Skip)
                    .name(format!("{label} (95% CI)")),
            );
        } else {
            for c in group.iter().filter(|c| c.is_ok()) {
                let (sx, sy) = series(c, metric);
                plot.add_trace(
                    Scatter::new(sx, sy)
                        .mode(Mode::Lines)
                        .line(
                            Line::new()
                                .color(colour(i, 0.45))
                                .width(1.0)
                                .dash(DashType::Dot),
                        )
                        .show_legend(false)
                        .legend_group(label)
                        .name(format!("{label} seed {}", c.seed)),
                );
            }
        }
        let centre = if log { "geometric mean" } else { "mean" };
        plot.add_trace(
            Scatter::new(x, points.iter().map(|p| p.centre).collect())
                .mode(Mode::LinesMarkers)
                .line(Line::new().color(colour(i, 1.0)))
                .marker(Marker::new().size(4))
                .legend_group(label)
                .text_array(n_text(&points))
                .hover_template(format!(
                    "{label}<br>%{{x}}: {centre} %{{y}}<br>%{{text}}<extra></extra>"
                ))
                .name(format!(
                    "{label} ({}{})",
                    n_range(&points),
                    if per_seed { ", per seed dotted" } else { "" }
                )),
        );
        for c in group.iter().filter(|c| !c.is_ok()) {
            let (sx, sy) = series(c, metric);
            if sx.is_empty() {
                continue;
            }
            let finite: Vec<f64> = sy
                .iter()
                .map(|v| if v.is_finite() { *v } else { f64::NAN })
                .collect();
            plot.add_trace(
                Scatter::new(sx, finite)
                    .mode(Mode::LinesMarkers)
                    .line(Line::new().color(colour(i, 0.8)).dash(DashType::Dash))
                    .legend_group(label)
                    .name(format!("{label} seed {} diverged", c.seed)),
            );
        }
    }
    for r in references {
        if !x_min.is_finite() {
            break;
        }
        plot.add_trace(
            Scatter::new(vec![x_min, x_max], vec![r.value, r.value])
                .mode(Mode::Lines)
                .line(Line::new().color("black").dash(DashType::Dash).width(1.5))
                .name(format!("{} ({})", r.label, significant(r.value))),
        );
    }
    let y_label = format!(
        "{}{}",
        metric_axis(metric),
        if log { ", geometric mean" } else { "" }
    );
    plot.set_layout(layout(title, x_label, &y_label, log));
    plot
}

/// One value per cell (`step`): a bar per setting with its interval, each seed's value
/// as a dot when there are three or fewer, reference lines.
fn bars_plot(
    title: &str,
    metric: &str,
    step: u64,
    groups: &[(String, Vec<&CellResult>)],
    references: &[crate::config::Reference],
) -> Plot {
    let all: Vec<&CellResult> = groups.iter().flat_map(|(_, g)| g.iter().copied()).collect();
    let log = spans_decades(ok_values(&all, metric));
    let mut labels = Vec::new();
    let mut points = Vec::new();
    let mut plot = Plot::new();
    for (label, group) in groups {
        let values: Vec<f64> = group
            .iter()
            .filter(|c| c.is_ok())
            .filter_map(|c| c.value(metric, step))
            .collect();
        if values.is_empty() {
            continue;
        }
        labels.push(label.clone());
        points.push(point(0.0, &values, log));
        if values.len() <= 3 {
            plot.add_trace(
                Scatter::new(vec![label.clone(); values.len()], values)
                    .mode(Mode::Markers)
                    .marker(Marker::new().color("black").size(6))
                    .show_legend(false)
                    .name(format!("{label}: seeds")),
            );
        }
    }
    plot.add_trace(
        Bar::new(labels.clone(), points.iter().map(|p| p.centre).collect())
            .error_y(interval_bars(&points))
            .text_array(n_text(&points))
            .opacity(0.7)
            .name(metric),
    );
    for r in references {
        plot.add_trace(
            Scatter::new(
                vec![
                    labels.first().cloned().unwrap_or_default(),
                    labels.last().cloned().unwrap_or_default(),
                ],
                vec![r.value, r.value],
            )
            .mode(Mode::Lines)
            .line(Line::new().color("black").dash(DashType::Dash))
            .name(format!("{} ({})", r.label, significant(r.value))),
        );
    }
    plot.set_layout(layout(title, "setting", &metric_axis(metric), log));
    plot
}

/// Asymmetric error bars from the points' intervals.
fn interval_bars(points: &[Point]) -> ErrorData {
    ErrorData::new(ErrorType::Data)
        .symmetric(false)
        .array(points.iter().map(|p| p.high - p.centre).collect())
        .array_minus(points.iter().map(|p| p.centre - p.low).collect())
}

/// A `[[figure]]` of the grid file: overlaid settings, references, statistics caption.
fn declared_figure(
    page: &mut Page,
    section: &mut Section,
    grid: &Grid,
    spec: &FigureSpec,
    cells: &[CellResult],
) -> Result<()> {
    let chosen: Vec<&CellResult> = cells
        .iter()
        .filter(|c| {
            spec.experiments.is_empty()
                || spec.experiments.contains(&c.experiment)
                || spec.experiments.contains(&c.setting_label())
        })
        .filter(|c| c.metrics.iter().any(|m| m.metric == spec.metric) || !c.is_ok())
        .collect();
    if chosen.is_empty() {
        return Ok(());
    }
    let groups = group_by(chosen.iter().copied(), CellResult::setting_label);
    let several_steps = steps_of(chosen.iter(), &spec.metric).len() > 1;
    let algorithm = chosen[0].algorithm.as_str();
    let plot = if several_steps {
        curves_plot(
            &spec.title,
            step_axis(algorithm),
            &spec.metric,
            &groups,
            &spec.references,
        )
    } else {
        let step = spec.step.unwrap_or(0);
        bars_plot(&spec.title, &spec.metric, step, &groups, &spec.references)
    };
    let mut request = Request::new(&spec.metric, spec.step.map_or(Step::Last, Step::At));
    request.baseline.clone_from(&spec.baseline);
    if let Some(b) = &spec.better {
        request.better = if b == "lower" {
            Better::Lower
        } else {
            Better::Higher
        };
    }
    let stats = methods::compare_settings(&grid.name, chosen.iter().copied(), &request)?;
    let mut caption = escape(&spec.caption);
    if let Some(stats) = &stats {
        caption.push_str(&stats_table(stats, &request));
    }
    let notes = diverged_notes(&groups);
    if !notes.is_empty() {
        let _ = write!(caption, "<ul>{}</ul>", notes.join(""));
    }
    page.add(section, &spec.title, plot, &caption);
    Ok(())
}

/// The statistics of a declared figure as an HTML table.
fn stats_table(stats: &GridStats, request: &Request) -> String {
    let mut s = format!(
        "<p>{} at {} ({} is better): mean and interquartile mean (IQM) over seeds with 95% stratified bootstrap intervals ({} resamples); P(X &gt; {}) is the probability that a run of the setting beats a run of the baseline (Agarwal et al. 2021).</p><table><tr>",
        escape(&request.metric),
        request.step,
        match request.better {
            Better::Higher => "higher",
            Better::Lower => "lower",
        },
        request.bootstrap.reps,
        escape(&stats.baseline)
    );
    for h in methods::HEADER {
        let _ = write!(s, "<th>{}</th>", escape(h));
    }
    s.push_str("</tr>");
    for row in stats.rows() {
        s.push_str("<tr>");
        for cell in row {
            let _ = write!(s, "<td>{}</td>", escape(&cell));
        }
        s.push_str("</tr>");
    }
    s.push_str("</table>");
    s
}

/// The figures of one experiment's section.
fn experiment_figures(
    page: &mut Page,
    section: &mut Section,
    exp: &crate::config::ExperimentSpec,
    cells: &[&CellResult],
) {
    let groups = group_by(cells.iter().copied(), |c| {
        if c.setting.is_empty() {
            c.experiment.clone()
        } else {
            c.setting.clone()
        }
    });
    let notes = diverged_notes(&groups);
    let caption = |extra: &str| {
        let mut c = extra.to_string();
        if !notes.is_empty() {
            let _ = write!(c, "<ul>{}</ul>", notes.join(""));
        }
        c
    };
    let mut metrics: Vec<&str> = Vec::new();
    for c in cells {
        for m in &c.metrics {
            if m.metric != CELL_WALL_SECONDS && !metrics.contains(&m.metric.as_str()) {
                metrics.push(&m.metric);
            }
        }
    }
    for metric in &metrics {
        let steps = steps_of(cells.iter(), metric);
        if steps.len() > 1 {
            let title = format!("{}: {}", exp.name, metric_axis(metric));
            let plot = curves_plot(&title, step_axis(&exp.algorithm), metric, &groups, &[]);
            page.add(section, &title, plot, &caption(""));
            if exp.sweep_keys.len() == 2 {
                let title = format!("{}: {metric} at each setting's last step", exp.name);
                let plot = heatmap(&title, metric, &exp.sweep_keys, &groups, None);
                page.add(section, &title, plot, &caption("Colour: the mean over seeds (geometric mean for errors spanning decades, on a log₁₀ scale)."));
            }
            continue;
        }
        let step = steps[0];
        let title = format!("{}: {}", exp.name, metric_axis(metric));
        match exp.sweep_keys.as_slice() {
            [key] if numeric_key(cells, key) => {
                let plot = against_key(
                    &title,
                    metric,
                    step,
                    key,
                    std::slice::from_ref(metric),
                    &groups,
                );
                page.add(section, &title, plot, &caption(""));
            }
            [k0, k1] => {
                let plot = heatmap(&title, metric, &exp.sweep_keys, &groups, Some(step));
                page.add(section, &title, plot, &caption("Colour: the mean over seeds (geometric mean for errors spanning decades, on a log₁₀ scale)."));
                let lines = if numeric_key(cells, k1) {
                    Some((k0, k1))
                } else if numeric_key(cells, k0) {
                    Some((k1, k0))
                } else {
                    None
                };
                if let Some((group_key, x_key)) = lines {
                    let by_group = group_by(cells.iter().copied(), |c| {
                        format!(
                            "{group_key}={}",
                            c.sweep
                                .get(group_key.as_str())
                                .map(display_value)
                                .unwrap_or_default()
                        )
                    });
                    let title = format!("{}: {metric} against {x_key}", exp.name);
                    let plot = against_key_grouped(&title, metric, step, x_key, &by_group);
                    page.add(section, &title, plot, &caption(""));
                }
            }
            _ => {
                let plot = bars_plot(&title, metric, step, &groups, &[]);
                page.add(section, &title, plot, &caption(""));
            }
        }
    }
    // Timings measured once per cell, side by side against the one swept key (MILP vs
    // enumeration time per instance size).
    if let [key] = exp.sweep_keys.as_slice() {
        let timings: Vec<String> = metrics
            .iter()
            .filter(|m| is_timing_metric(m) && m.ends_with("_seconds"))
            .filter(|m| cells.iter().all(|c| c.last_step(m).is_none_or(|s| s == 0)))
            .map(|m| m.to_string())
            .collect();
        if timings.len() >= 2 && numeric_key(cells, key) {
            let title = format!("{}: timings against {key}", exp.name);
            let plot = against_key(&title, "seconds", 0, key, &timings, &groups);
            page.add(section, &title, plot, &caption(""));
        }
    }
}

fn numeric_key(cells: &[&CellResult], key: &str) -> bool {
    cells
        .iter()
        .all(|c| c.sweep.get(key).is_some_and(|v| v.is_number()))
}

fn key_value(c: &CellResult, key: &str) -> f64 {
    c.sweep
        .get(key)
        .and_then(|v| v.as_f64())
        .unwrap_or(f64::NAN)
}

/// One point per setting at `step`, x the setting's value of the numeric `key`, by x.
fn points_against_key(
    settings: &[(String, Vec<&CellResult>)],
    metric: &str,
    step: u64,
    key: &str,
    log: bool,
) -> Vec<Point> {
    let mut points: Vec<Point> = settings
        .iter()
        .filter_map(|(_, g)| {
            let values: Vec<f64> = g
                .iter()
                .filter(|c| c.is_ok())
                .filter_map(|c| c.value(metric, step))
                .collect();
            (!values.is_empty()).then(|| point(key_value(g[0], key), &values, log))
        })
        .collect();
    points.sort_by(|a, b| a.x.total_cmp(&b.x));
    points
}

/// A line through `points` with their intervals as error bars and n on hover.
fn points_trace(points: &[Point], i: usize, name: &str) -> Box<Scatter<f64, f64>> {
    Scatter::new(
        points.iter().map(|p| p.x).collect(),
        points.iter().map(|p| p.centre).collect(),
    )
    .mode(Mode::LinesMarkers)
    .line(Line::new().color(colour(i, 1.0)))
    .error_y(interval_bars(points))
    .text_array(n_text(points))
    .name(format!("{name} ({})", n_range(points)))
}

/// The layout of a plot against the numeric swept `key` (log axis when it spans decades).
fn key_layout(title: &str, key: &str, y: &str, log: bool, cells: &[&CellResult]) -> Layout {
    let x_log = spans_decades(cells.iter().map(|c| key_value(c, key)));
    layout(title, key, y, log).x_axis(Axis::new().title(Title::with_text(key)).type_(if x_log {
        AxisType::Log
    } else {
        AxisType::Linear
    }))
}

/// `metrics` (one line each) at `step` against the numeric swept `key`; one point per
/// setting with its interval.
fn against_key(
    title: &str,
    y_label: &str,
    step: u64,
    key: &str,
    metrics: &[impl AsRef<str>],
    groups: &[(String, Vec<&CellResult>)],
) -> Plot {
    let mut plot = Plot::new();
    let all: Vec<&CellResult> = groups.iter().flat_map(|(_, g)| g.iter().copied()).collect();
    let log = metrics
        .iter()
        .all(|m| spans_decades(ok_values(&all, m.as_ref())));
    for (i, metric) in metrics.iter().enumerate() {
        let metric = metric.as_ref();
        let points = points_against_key(groups, metric, step, key, log);
        plot.add_trace(points_trace(&points, i, metric));
    }
    let y = if metrics.len() == 1 {
        metric_axis(metrics[0].as_ref())
    } else {
        y_label.to_string()
    };
    plot.set_layout(key_layout(title, key, &y, log, &all));
    plot
}

/// `metric` at `step` against the numeric key `x_key`, one line per group.
fn against_key_grouped(
    title: &str,
    metric: &str,
    step: u64,
    x_key: &str,
    groups: &[(String, Vec<&CellResult>)],
) -> Plot {
    let all: Vec<&CellResult> = groups.iter().flat_map(|(_, g)| g.iter().copied()).collect();
    let log = spans_decades(ok_values(&all, metric));
    let mut plot = Plot::new();
    for (i, (label, group)) in groups.iter().enumerate() {
        let settings = group_by(group.iter().copied(), |c| c.setting.clone());
        let points = points_against_key(&settings, metric, step, x_key, log);
        plot.add_trace(points_trace(&points, i, label));
    }
    plot.set_layout(key_layout(title, x_key, &metric_axis(metric), log, &all));
    plot
}

/// The centre over seeds on the grid of the two swept keys' values, at `step` (or each
/// setting's last step); log₁₀ colours for positive values spanning decades.
fn heatmap(
    title: &str,
    metric: &str,
    keys: &[String],
    groups: &[(String, Vec<&CellResult>)],
    step: Option<u64>,
) -> Plot {
    let all: Vec<&CellResult> = groups.iter().flat_map(|(_, g)| g.iter().copied()).collect();
    let log = spans_decades(ok_values(&all, metric));
    let label = |c: &CellResult, k: &str| c.sweep.get(k).map(display_value).unwrap_or_default();
    let mut xs: Vec<String> = Vec::new();
    let mut ys: Vec<String> = Vec::new();
    for c in &all {
        let (x, y) = (label(c, &keys[0]), label(c, &keys[1]));
        if !xs.contains(&x) {
            xs.push(x);
        }
        if !ys.contains(&y) {
            ys.push(y);
        }
    }
    let mut z: Vec<Vec<Option<f64>>> = vec![vec![None; xs.len()]; ys.len()];
    let mut text: Vec<Vec<String>> = vec![vec![String::new(); xs.len()]; ys.len()];
    for (_, group) in groups {
        let points = curve(group, metric, log);
        let p = match step {
            Some(s) => points.iter().find(|p| p.x == s as f64),
            None => points.last(),
        };
        let Some(p) = p else { continue };
        let xi = xs.iter().position(|x| *x == label(group[0], &keys[0]));
        let yi = ys.iter().position(|y| *y == label(group[0], &keys[1]));
        if let (Some(xi), Some(yi)) = (xi, yi) {
            let value = if log { p.centre.log10() } else { p.centre };
            z[yi][xi] = value.is_finite().then_some(value);
            text[yi][xi] = format!("{} (n={})", significant(p.centre), p.n);
        }
    }
    let mut plot = Plot::new();
    plot.add_trace(
        HeatMap::new(xs, ys, z)
            .text_matrix(text)
            .hover_template(format!(
                "{}=%{{x}}, {}=%{{y}}<br>{metric} %{{text}}<extra></extra>",
                keys[0], keys[1]
            )),
    );
    let title = if log {
        format!("{title} (colour: log₁₀)")
    } else {
        title.to_string()
    };
    plot.set_layout(
        Layout::new()
            .title(Title::with_text(&title))
            .x_axis(
                Axis::new()
                    .title(Title::with_text(&keys[0]))
                    .type_(AxisType::Category),
            )
            .y_axis(
                Axis::new()
                    .title(Title::with_text(&keys[1]))
                    .type_(AxisType::Category),
            ),
    );
    plot
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plotly_js_is_the_library_alone() {
        let js = plotly_js();
        assert!(
            js.trim_start().starts_with("/**\n* plotly.js v"),
            "{}",
            &js[..80]
        );
        assert!(!js.contains("</script>"));
        assert!(!js.contains("MathJax = "));
        assert!(js.len() > 1_000_000);
    }

    #[test]
    fn intervals_in_log_space_stay_positive() {
        let p = point(0.0, &[1e-9, 1e-7, 1e-5], true);
        assert!((p.centre - 1e-7).abs() < 1e-18);
        assert!(p.low > 0.0 && p.low < p.centre && p.high > p.centre);
        // The linear interval of the same values goes below zero.
        let q = point(0.0, &[1e-9, 1e-7, 1e-5], false);
        assert!(q.low < 0.0);
        assert!(spans_decades([1e-9, 1e-5].into_iter()));
        assert!(!spans_decades([-1.0, 1e-5].into_iter()));
        assert!(!spans_decades([2.0, 20.0].into_iter()));
    }
}
