//! Figures of a grid's summary, with plotly, in one HTML page `results/<grid>.html`:
//! one figure per experiment and metric.
//!
//! - A metric recorded at several steps: learning curves, the mean across seeds of each
//!   setting with its 95% confidence band; and, when the experiment sweeps exactly two
//!   keys, a heatmap of the mean at each setting's last step (colours by log₁₀ when the
//!   means are positive and span more than two decades).
//! - A metric recorded once per cell: against the swept key with 95% error bars when one
//!   key is swept; when two are, a heatmap, and lines against the numeric key (one per
//!   value of the other); a bar per setting otherwise. Timing metrics measured once per
//!   cell (`…_seconds`) also share one figure against a single numeric swept key.
//!
//! The page loads plotly.js from its CDN, as `Plot::to_html` does; the plots have fixed
//! ids, so the same summary gives the same file.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use plotly::common::{ErrorData, ErrorType, Fill, Line, Mode, Title};
use plotly::layout::{Axis, AxisType};
use plotly::{Bar, HeatMap, Layout, Plot, Scatter};

use crate::config::{display_value, Grid};
use crate::error::{Error, Result};
use crate::tables::SummaryRow;

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

/// Write `out/<grid>.html`; returns its path and the number of figures.
pub fn write_figures(grid: &Grid, summary: &[SummaryRow], out: &Path) -> Result<(PathBuf, usize)> {
    let mut sections = String::new();
    let mut figures = 0;
    for exp in &grid.experiments {
        let rows: Vec<&SummaryRow> = summary
            .iter()
            .filter(|r| r.experiment == exp.name)
            .collect();
        if rows.is_empty() {
            continue;
        }
        let _ = write!(
            sections,
            "<h2>{} <small>({} on {})</small></h2>\n<p>{}</p>\n",
            escape(&exp.name),
            escape(&exp.algorithm),
            escape(&exp.environment),
            escape(&exp.description)
        );
        let mut metrics: Vec<&str> = Vec::new();
        for r in &rows {
            if r.metric != "cell_wall_seconds" && !metrics.contains(&r.metric.as_str()) {
                metrics.push(&r.metric);
            }
        }
        for metric in metrics {
            let rows: Vec<&SummaryRow> = rows
                .iter()
                .copied()
                .filter(|r| r.metric == metric)
                .collect();
            let mut steps: Vec<u64> = rows.iter().map(|r| r.step).collect();
            steps.sort_unstable();
            steps.dedup();
            let mut plots = Vec::new();
            if steps.len() > 1 {
                plots.push(learning_curves(&exp.name, metric, &rows));
                if exp.sweep_keys.len() == 2 {
                    // Each setting's last step (runs that stop early end sooner).
                    let last: Vec<&SummaryRow> = by_setting(&rows)
                        .into_iter()
                        .filter_map(|(_, g)| g.last().copied())
                        .collect();
                    plots.push(heatmap(
                        &format!("{}: {metric} at the last step (mean over seeds)", exp.name),
                        &exp.sweep_keys,
                        &last,
                    ));
                }
            } else {
                match exp.sweep_keys.len() {
                    1 => plots.push(against_key(&exp.name, metric, &exp.sweep_keys[0], &rows)),
                    2 => {
                        plots.push(heatmap(
                            &format!("{}: {metric} (mean over seeds)", exp.name),
                            &exp.sweep_keys,
                            &rows,
                        ));
                        // And as lines against a numeric key, one per value of the other.
                        let numeric = |k: &str| {
                            rows.iter()
                                .all(|r| r.sweep.get(k).is_some_and(|v| v.is_number()))
                        };
                        let (k0, k1) = (&exp.sweep_keys[0], &exp.sweep_keys[1]);
                        if numeric(k1) {
                            plots.push(grouped_lines(&exp.name, metric, k0, k1, &rows));
                        } else if numeric(k0) {
                            plots.push(grouped_lines(&exp.name, metric, k1, k0, &rows));
                        }
                    }
                    _ => plots.push(per_setting(&exp.name, metric, &rows)),
                }
            }
            for plot in plots {
                let id = format!("figure-{figures}");
                sections.push_str(&plot.to_inline_html(Some(&id)));
                sections.push('\n');
                figures += 1;
            }
        }
        // Timings measured once per cell, side by side against the one swept key (e.g.
        // MILP vs enumeration time per instance size).
        if exp.sweep_keys.len() == 1 {
            let key = &exp.sweep_keys[0];
            let timings: Vec<&str> = rows
                .iter()
                .filter(|r| r.step == 0 && r.metric.ends_with("_seconds"))
                .filter(|r| r.metric != "cell_wall_seconds")
                .filter(|r| r.sweep.get(key).is_some_and(|v| v.is_number()))
                .fold(Vec::new(), |mut names, r| {
                    if !names.contains(&r.metric.as_str()) {
                        names.push(&r.metric);
                    }
                    names
                });
            if timings.len() >= 2 {
                let plot = timings_together(&exp.name, key, &timings, &rows);
                let id = format!("figure-{figures}");
                sections.push_str(&plot.to_inline_html(Some(&id)));
                sections.push('\n');
                figures += 1;
            }
        }
    }
    let page = format!(
        "<!doctype html>\n<html>\n<head>\n<meta charset=\"utf-8\" />\n<title>{name}</title>\n{scripts}</head>\n<body>\n<h1>{name}</h1>\n<p>{description}</p>\n<p>Mean over seeds with 95% confidence intervals (Student t). Tables: {name}.csv, {name}_summary.csv.</p>\n{sections}</body>\n</html>\n",
        name = escape(&grid.name),
        description = escape(&grid.description),
        scripts = Plot::online_cdn_js(),
    );
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    let path = out.join(format!("{}.html", grid.name));
    std::fs::write(&path, page).map_err(|e| Error::io(&path, e))?;
    Ok((path, figures))
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Settings in order of first appearance, each with its rows.
fn by_setting<'a>(rows: &[&'a SummaryRow]) -> Vec<(String, Vec<&'a SummaryRow>)> {
    let mut groups: Vec<(String, Vec<&SummaryRow>)> = Vec::new();
    for r in rows {
        match groups.iter_mut().find(|(h, _)| *h == r.setting_hash) {
            Some((_, g)) => g.push(r),
            None => groups.push((r.setting_hash.clone(), vec![r])),
        }
    }
    groups
}

/// Logarithmic when every value is positive and they span more than two decades.
fn axis_type(values: impl Iterator<Item = f64>) -> AxisType {
    let (mut lo, mut hi) = (f64::INFINITY, 0.0f64);
    for v in values.filter(|v| v.is_finite()) {
        if v <= 0.0 {
            return AxisType::Linear;
        }
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if lo.is_finite() && hi / lo > 100.0 {
        AxisType::Log
    } else {
        AxisType::Linear
    }
}

fn ci(r: &SummaryRow) -> f64 {
    if r.ci95.is_finite() {
        r.ci95
    } else {
        0.0
    }
}

fn learning_curves(experiment: &str, metric: &str, rows: &[&SummaryRow]) -> Plot {
    let mut plot = Plot::new();
    for (i, (_, group)) in by_setting(rows).into_iter().enumerate() {
        let (r, g, b) = PALETTE[i % PALETTE.len()];
        let name = if group[0].setting.is_empty() {
            experiment.to_string()
        } else {
            group[0].setting.clone()
        };
        let x: Vec<u64> = group.iter().map(|r| r.step).collect();
        let low: Vec<f64> = group.iter().map(|r| r.mean - ci(r)).collect();
        let high: Vec<f64> = group.iter().map(|r| r.mean + ci(r)).collect();
        let mean: Vec<f64> = group.iter().map(|r| r.mean).collect();
        plot.add_trace(
            Scatter::new(x.clone(), low)
                .mode(Mode::Lines)
                .line(Line::new().width(0.0))
                .show_legend(false)
                .legend_group(&name)
                .name(format!("{name} (95% CI)")),
        );
        plot.add_trace(
            Scatter::new(x.clone(), high)
                .mode(Mode::Lines)
                .line(Line::new().width(0.0))
                .fill(Fill::ToNextY)
                .fill_color(format!("rgba({r},{g},{b},0.2)"))
                .show_legend(false)
                .legend_group(&name)
                .name(format!("{name} (95% CI)")),
        );
        plot.add_trace(
            Scatter::new(x, mean)
                .mode(Mode::Lines)
                .line(Line::new().color(format!("rgb({r},{g},{b})")))
                .legend_group(&name)
                .name(format!("{name} (n={})", group[0].n)),
        );
    }
    plot.set_layout(
        Layout::new()
            .title(Title::with_text(format!(
                "{experiment}: {metric} (mean over seeds, 95% CI band)"
            )))
            .x_axis(Axis::new().title(Title::with_text("step")))
            .y_axis(
                Axis::new()
                    .title(Title::with_text(metric))
                    .type_(axis_type(rows.iter().map(|r| r.mean))),
            ),
    );
    plot
}

fn against_key(experiment: &str, metric: &str, key: &str, rows: &[&SummaryRow]) -> Plot {
    let mut plot = Plot::new();
    let values: Vec<Option<&serde_json::Value>> = rows.iter().map(|r| r.sweep.get(key)).collect();
    let numeric = values.iter().all(|v| v.is_some_and(|v| v.is_number()));
    let means: Vec<f64> = rows.iter().map(|r| r.mean).collect();
    let errors = ErrorData::new(ErrorType::Data).array(rows.iter().map(|r| ci(r)).collect());
    if numeric {
        let x: Vec<f64> = values
            .iter()
            .map(|v| v.and_then(|v| v.as_f64()).unwrap_or(f64::NAN))
            .collect();
        plot.add_trace(
            Scatter::new(x.clone(), means)
                .mode(Mode::LinesMarkers)
                .error_y(errors)
                .name(metric),
        );
        plot.set_layout(numeric_layout(experiment, metric, key, x.into_iter(), rows));
    } else {
        let x: Vec<String> = values
            .iter()
            .map(|v| v.map(display_value).unwrap_or_default())
            .collect();
        plot.add_trace(Bar::new(x, means).error_y(errors).name(metric));
        plot.set_layout(
            Layout::new()
                .title(Title::with_text(format!(
                    "{experiment}: {metric} (mean over seeds, 95% CI)"
                )))
                .x_axis(Axis::new().title(Title::with_text(key)))
                .y_axis(Axis::new().title(Title::with_text(metric))),
        );
    }
    plot
}

/// `metric` against numeric key `x_key`, one line with 95% error bars per value of
/// `group_key`.
fn grouped_lines(
    experiment: &str,
    metric: &str,
    group_key: &str,
    x_key: &str,
    rows: &[&SummaryRow],
) -> Plot {
    let mut groups: Vec<(String, Vec<&SummaryRow>)> = Vec::new();
    for r in rows {
        let g = r
            .sweep
            .get(group_key)
            .map(display_value)
            .unwrap_or_default();
        match groups.iter_mut().find(|(k, _)| *k == g) {
            Some((_, v)) => v.push(r),
            None => groups.push((g, vec![r])),
        }
    }
    let mut plot = Plot::new();
    let mut xs_all = Vec::new();
    for (g, mut group) in groups {
        let x_of = |r: &SummaryRow| {
            r.sweep
                .get(x_key)
                .and_then(|v| v.as_f64())
                .unwrap_or(f64::NAN)
        };
        group.sort_by(|a, b| x_of(a).total_cmp(&x_of(b)));
        let x: Vec<f64> = group.iter().map(|r| x_of(r)).collect();
        xs_all.extend(x.iter().copied());
        plot.add_trace(
            Scatter::new(x, group.iter().map(|r| r.mean).collect())
                .mode(Mode::LinesMarkers)
                .error_y(
                    ErrorData::new(ErrorType::Data).array(group.iter().map(|r| ci(r)).collect()),
                )
                .name(format!("{group_key}={g}")),
        );
    }
    plot.set_layout(numeric_layout(
        experiment,
        metric,
        x_key,
        xs_all.into_iter(),
        rows,
    ));
    plot
}

/// The layout of `metric`'s means (with 95% CI) against the numeric key `x_key` taking
/// the values `xs`: each axis logarithmic when its values span decades.
fn numeric_layout(
    experiment: &str,
    metric: &str,
    x_key: &str,
    xs: impl Iterator<Item = f64>,
    rows: &[&SummaryRow],
) -> Layout {
    Layout::new()
        .title(Title::with_text(format!(
            "{experiment}: {metric} (mean over seeds, 95% CI)"
        )))
        .x_axis(
            Axis::new()
                .title(Title::with_text(x_key))
                .type_(axis_type(xs)),
        )
        .y_axis(
            Axis::new()
                .title(Title::with_text(metric))
                .type_(axis_type(rows.iter().map(|r| r.mean))),
        )
}

/// Several timing metrics against numeric key `key`, one line each (log axes when the
/// values span decades).
fn timings_together(experiment: &str, key: &str, metrics: &[&str], rows: &[&SummaryRow]) -> Plot {
    let mut plot = Plot::new();
    let x_of = |r: &SummaryRow| {
        r.sweep
            .get(key)
            .and_then(|v| v.as_f64())
            .unwrap_or(f64::NAN)
    };
    let mut all = Vec::new();
    for metric in metrics {
        let mut points: Vec<&SummaryRow> = rows
            .iter()
            .copied()
            .filter(|r| r.metric == *metric && r.step == 0)
            .collect();
        points.sort_by(|a, b| x_of(a).total_cmp(&x_of(b)));
        all.extend(points.iter().map(|r| r.mean));
        plot.add_trace(
            Scatter::new(
                points.iter().map(|r| x_of(r)).collect(),
                points.iter().map(|r| r.mean).collect(),
            )
            .mode(Mode::LinesMarkers)
            .error_y(ErrorData::new(ErrorType::Data).array(points.iter().map(|r| ci(r)).collect()))
            .name(*metric),
        );
    }
    plot.set_layout(
        Layout::new()
            .title(Title::with_text(format!(
                "{experiment}: timings (mean over seeds, 95% CI)"
            )))
            .x_axis(Axis::new().title(Title::with_text(key)))
            .y_axis(
                Axis::new()
                    .title(Title::with_text("seconds"))
                    .type_(axis_type(all.into_iter())),
            ),
    );
    plot
}

fn per_setting(experiment: &str, metric: &str, rows: &[&SummaryRow]) -> Plot {
    let mut plot = Plot::new();
    let x: Vec<String> = rows
        .iter()
        .map(|r| {
            if r.setting.is_empty() {
                experiment.to_string()
            } else {
                r.setting.clone()
            }
        })
        .collect();
    plot.add_trace(
        Bar::new(x, rows.iter().map(|r| r.mean).collect())
            .error_y(ErrorData::new(ErrorType::Data).array(rows.iter().map(|r| ci(r)).collect()))
            .name(metric),
    );
    plot.set_layout(
        Layout::new()
            .title(Title::with_text(format!(
                "{experiment}: {metric} (mean over seeds, 95% CI)"
            )))
            .y_axis(Axis::new().title(Title::with_text(metric))),
    );
    plot
}

/// Mean over seeds on the grid of the two swept keys' values. Colours follow log₁₀ of
/// the mean when every mean is positive and they span more than two decades (errors
/// from 1e-9 to 1 would otherwise all look alike but the largest); the title says so.
fn heatmap(title: &str, keys: &[String], rows: &[&SummaryRow]) -> Plot {
    let log = matches!(axis_type(rows.iter().map(|r| r.mean)), AxisType::Log);
    let title = if log {
        format!("{title}, colour: log10")
    } else {
        title.to_string()
    };
    let label = |r: &SummaryRow, k: &str| r.sweep.get(k).map(display_value).unwrap_or_default();
    let mut xs: Vec<String> = Vec::new();
    let mut ys: Vec<String> = Vec::new();
    for r in rows {
        let (x, y) = (label(r, &keys[0]), label(r, &keys[1]));
        if !xs.contains(&x) {
            xs.push(x);
        }
        if !ys.contains(&y) {
            ys.push(y);
        }
    }
    let mut z: Vec<Vec<Option<f64>>> = vec![vec![None; xs.len()]; ys.len()];
    for r in rows {
        let xi = xs.iter().position(|x| *x == label(r, &keys[0]));
        let yi = ys.iter().position(|y| *y == label(r, &keys[1]));
        if let (Some(xi), Some(yi)) = (xi, yi) {
            let value = if log { r.mean.log10() } else { r.mean };
            z[yi][xi] = value.is_finite().then_some(value);
        }
    }
    let mut plot = Plot::new();
    plot.add_trace(HeatMap::new(xs, ys, z));
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
