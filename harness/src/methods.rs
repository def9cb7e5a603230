//! Methods compared on one metric, as the field now reports RL results (Agarwal et al.
//! 2021, [`crate::stats`]): per setting of a grid the mean and the interquartile mean
//! over seeds, each with a 95% stratified bootstrap interval, and the probability that a
//! run of the setting beats a run of a baseline setting, with its interval.
//!
//! `policy-param compare --stats DIR --metric eval_return --step 20000 --baseline zoo`
//! prints it; the figures' captions carry the same numbers for the comparisons a grid
//! file declares.

use std::fmt::Write as _;

use crate::error::{Error, Result};
use crate::results::{group_by, CellResult};
use crate::stats::{Bootstrap, Estimate, Statistic};

/// Which step of the metric to compare at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    At(u64),
    /// Each cell's last step of the metric (its final value).
    Last,
}

impl std::str::FromStr for Step {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        if s == "last" {
            return Ok(Step::Last);
        }
        s.parse()
            .map(Step::At)
            .map_err(|_| format!("{s:?} is neither a step number nor `last`"))
    }
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Step::At(s) => write!(f, "step {s}"),
            Step::Last => write!(f, "the last step"),
        }
    }
}

/// Whether larger values of the metric are better.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Better {
    Higher,
    Lower,
}

impl Better {
    /// Errors, losses and times are better low; returns and the rest high.
    pub fn guess(metric: &str) -> Better {
        let lower = ["error", "loss", "delta", "seconds", "gap", "calls"];
        if lower.iter().any(|w| metric.contains(w)) {
            Better::Lower
        } else {
            Better::Higher
        }
    }
}

/// What to compare.
#[derive(Clone, Debug, PartialEq)]
pub struct Request {
    pub metric: String,
    pub step: Step,
    /// A setting label (`experiment[k=v]`) or an experiment with a single setting; `None`:
    /// the grid's first setting.
    pub baseline: Option<String>,
    pub better: Better,
    pub bootstrap: Bootstrap,
}

impl Request {
    pub fn new(metric: &str, step: Step) -> Request {
        Request {
            metric: metric.to_string(),
            step,
            baseline: None,
            better: Better::guess(metric),
            bootstrap: Bootstrap::default(),
        }
    }
}

/// One setting's scores and statistics.
#[derive(Clone, Debug, PartialEq)]
pub struct SettingStats {
    /// `experiment[setting]`.
    pub label: String,
    pub experiment: String,
    pub environment: String,
    /// The metric's value of each seed that finished ok and recorded it, by seed.
    pub scores: Vec<(u64, f64)>,
    /// Seeds that diverged (left out of the statistics), with their reasons.
    pub diverged: Vec<(u64, String)>,
    pub mean: Estimate,
    pub iqm: Estimate,
    /// P(a run of this setting beats a run of the baseline); `None` for the baseline.
    pub improvement: Option<Estimate>,
}

impl SettingStats {
    pub fn n(&self) -> usize {
        self.scores.len()
    }
}

/// A grid's settings compared on `request.metric`.
#[derive(Clone, Debug, PartialEq)]
pub struct GridStats {
    pub grid: String,
    pub baseline: String,
    pub settings: Vec<SettingStats>,
}

/// The settings of `cells` (one grid) that record `request.metric` at the requested step,
/// in cell order, compared with the baseline. `Ok(None)` when no cell records it.
pub fn compare_settings<'a>(
    grid: &str,
    cells: impl IntoIterator<Item = &'a CellResult>,
    request: &Request,
) -> Result<Option<GridStats>> {
    let groups = group_by(cells, CellResult::setting_label);
    let value_of = |c: &CellResult| -> Option<f64> {
        let step = match request.step {
            Step::At(s) => s,
            Step::Last => c.last_step(&request.metric)?,
        };
        c.value(&request.metric, step)
    };
    /// A setting's label, its first cell, its scores and its diverged seeds.
    struct Scored<'a> {
        label: String,
        first: &'a CellResult,
        scores: Vec<(u64, f64)>,
        diverged: Vec<(u64, String)>,
    }
    let mut scored: Vec<Scored> = Vec::new();
    for (label, group) in &groups {
        let scores: Vec<(u64, f64)> = group
            .iter()
            .filter(|c| c.is_ok())
            .filter_map(|c| value_of(c).map(|v| (c.seed, v)))
            .collect();
        let diverged: Vec<(u64, String)> = group
            .iter()
            .filter(|c| !c.is_ok())
            .map(|c| (c.seed, c.reason.clone()))
            .collect();
        scored.push(Scored {
            label: label.clone(),
            first: group[0],
            scores,
            diverged,
        });
    }
    // Settings of another algorithm or environment than those that record the metric are
    // not part of this comparison; a setting whose every seed diverged before recording it
    // is, with n = 0.
    let recording: Vec<(&str, &str)> = scored
        .iter()
        .filter(|s| !s.scores.is_empty())
        .map(|s| (s.first.algorithm.as_str(), s.first.environment.as_str()))
        .collect();
    scored.retain(|s| {
        !s.scores.is_empty()
            || (!s.diverged.is_empty()
                && recording.contains(&(s.first.algorithm.as_str(), s.first.environment.as_str())))
    });
    if scored.is_empty() {
        return Ok(None);
    }
    let baseline = match &request.baseline {
        None => scored
            .iter()
            .find(|s| !s.scores.is_empty())
            .map(|s| s.label.clone())
            .unwrap_or_else(|| scored[0].label.clone()),
        Some(name) => {
            let matches: Vec<&String> = scored
                .iter()
                .map(|s| &s.label)
                .filter(|l| *l == name || l.split('[').next() == Some(name.as_str()))
                .collect();
            match matches.as_slice() {
                [one] => (*one).clone(),
                [] => {
                    return Err(Error::Usage(format!(
                        "{grid}: no setting {name:?} records {} (settings: {})",
                        request.metric,
                        scored
                            .iter()
                            .map(|s| s.label.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )))
                }
                many => {
                    return Err(Error::Usage(format!(
                        "{grid}: --baseline {name:?} names {} settings; give one of {}",
                        many.len(),
                        many.iter()
                            .map(|s| s.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )))
                }
            }
        }
    };
    // Scores oriented so that larger is better, for P(X > Y).
    let oriented = |scores: &[(u64, f64)]| -> Vec<Vec<f64>> {
        let sign = match request.better {
            Better::Higher => 1.0,
            Better::Lower => -1.0,
        };
        vec![scores.iter().map(|(_, v)| sign * v).collect()]
    };
    let baseline_scores = scored
        .iter()
        .find(|s| s.label == baseline)
        .map(|s| oriented(&s.scores))
        .unwrap_or_default();
    let b = &request.bootstrap;
    let nan = Estimate {
        point: f64::NAN,
        low: f64::NAN,
        high: f64::NAN,
    };
    let settings = scored
        .into_iter()
        .map(
            |Scored {
                 label,
                 first,
                 scores,
                 diverged,
             }| {
                let task = vec![scores.iter().map(|(_, v)| *v).collect::<Vec<f64>>()];
                let (mean, iqm) = if scores.is_empty() {
                    (nan, nan)
                } else {
                    (
                        b.estimate(&task, Statistic::Mean),
                        b.estimate(&task, Statistic::Iqm),
                    )
                };
                let improvement = (label != baseline
                    && !scores.is_empty()
                    && baseline_scores.first().is_some_and(|t| !t.is_empty()))
                .then(|| b.probability_of_improvement(&oriented(&scores), &baseline_scores));
                SettingStats {
                    label,
                    experiment: first.experiment.clone(),
                    environment: first.environment.clone(),
                    scores,
                    diverged,
                    mean,
                    iqm,
                    improvement,
                }
            },
        )
        .collect();
    Ok(Some(GridStats {
        grid: grid.to_string(),
        baseline,
        settings,
    }))
}

/// The columns of [`GridStats::rows`].
pub const HEADER: [&str; 5] = [
    "setting",
    "n",
    "mean [95% CI]",
    "IQM [95% CI]",
    "P(X > baseline) [95% CI]",
];

impl GridStats {
    /// One row per setting, the columns of [`HEADER`], for the text table and the
    /// figures' captions alike.
    pub fn rows(&self) -> Vec<[String; 5]> {
        let estimate = |e: &Estimate| {
            if e.point.is_nan() {
                "—".to_string()
            } else {
                e.to_string()
            }
        };
        self.settings
            .iter()
            .map(|st| {
                let n = if st.diverged.is_empty() {
                    st.n().to_string()
                } else {
                    format!("{} (+{} diverged)", st.n(), st.diverged.len())
                };
                let improvement = match &st.improvement {
                    Some(p) => p.to_string(),
                    None if st.label == self.baseline => "baseline".into(),
                    None => "—".into(),
                };
                [
                    st.label.clone(),
                    n,
                    estimate(&st.mean),
                    estimate(&st.iqm),
                    improvement,
                ]
            })
            .collect()
    }

    /// A text table: one line per setting.
    pub fn render(&self, request: &Request) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{}: {} at {} ({} is better); mean and IQM over seeds with 95% stratified bootstrap intervals ({} resamples); P(X > {}) = probability that a run of the setting beats a run of the baseline",
            self.grid,
            request.metric,
            request.step,
            match request.better {
                Better::Higher => "higher",
                Better::Lower => "lower",
            },
            request.bootstrap.reps,
            self.baseline
        );
        s.push_str(&render_table(&HEADER, &self.rows()));
        for st in &self.settings {
            for (seed, reason) in &st.diverged {
                let _ = writeln!(s, "  {} seed={seed} diverged: {reason}", st.label);
            }
        }
        s
    }
}

/// Columns padded to their widest cell, two spaces apart.
pub fn render_table<const N: usize>(header: &[&str; N], rows: &[[String; N]]) -> String {
    let mut widths = header.map(|h| h.chars().count());
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let mut l = String::new();
        for (i, (c, w)) in cells.iter().zip(widths).enumerate() {
            if i > 0 {
                l.push_str("  ");
            }
            let _ = write!(l, "{c:<w$}");
        }
        l.trim_end().to_string() + "\n"
    };
    let mut s = line(&header.map(String::from));
    for r in rows {
        s.push_str(&line(r));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experiment::MetricRow;
    use crate::results::CELL_WALL_SECONDS;

    fn cell(experiment: &str, seed: u64, ret: Option<f64>) -> CellResult {
        let mut metrics = vec![MetricRow {
            step: 0,
            metric: CELL_WALL_SECONDS.into(),
            value: 1.0,
        }];
        if let Some(r) = ret {
            metrics.insert(
                0,
                MetricRow {
                    step: 100,
                    metric: "eval_return".into(),
                    value: r,
                },
            );
        }
        CellResult {
            grid: "g".into(),
            experiment: experiment.into(),
            algorithm: "sac".into(),
            environment: "Pendulum-v1".into(),
            setting: String::new(),
            sweep: Default::default(),
            seed,
            index: seed as usize,
            config_hash: format!("{seed:016x}"),
            status: if ret.is_some() { "ok" } else { "diverged" }.into(),
            reason: if ret.is_some() {
                ""
            } else {
                "critic loss > 1e8"
            }
            .into(),
            metrics,
        }
    }

    #[test]
    fn settings_against_a_baseline() {
        let cells = vec![
            cell("zoo", 0, Some(-150.0)),
            cell("zoo", 1, Some(-130.0)),
            cell("chapter", 2, Some(-120.0)),
            cell("chapter", 3, Some(-140.0)),
            cell("literal", 4, None),
        ];
        let request = Request {
            baseline: Some("zoo".into()),
            bootstrap: Bootstrap {
                reps: 1000,
                ..Bootstrap::default()
            },
            ..Request::new("eval_return", Step::Last)
        };
        let stats = compare_settings("g", &cells, &request).unwrap().unwrap();
        assert_eq!(stats.baseline, "zoo");
        let labels: Vec<&str> = stats.settings.iter().map(|s| s.label.as_str()).collect();
        assert_eq!(labels, ["zoo", "chapter", "literal"]);
        assert_eq!(stats.settings[0].mean.point, -140.0);
        assert!(stats.settings[0].improvement.is_none());
        // chapter vs zoo: (-120 > -150, -120 > -130, -140 > -150, -140 < -130) = 3/4.
        assert_eq!(stats.settings[1].improvement.unwrap().point, 0.75);
        // Every seed of `literal` diverged: n = 0, the reason kept.
        assert_eq!(stats.settings[2].n(), 0);
        assert_eq!(stats.settings[2].diverged[0].1, "critic loss > 1e8");
        let text = stats.render(&request);
        assert!(
            text.contains("literal seed=4 diverged: critic loss > 1e8"),
            "{text}"
        );
        // Lower is better: the orientation flips.
        let lower = Request {
            better: Better::Lower,
            ..request.clone()
        };
        let stats = compare_settings("g", &cells, &lower).unwrap().unwrap();
        assert_eq!(stats.settings[1].improvement.unwrap().point, 0.25);
        // An unknown baseline is named with the choices.
        let wrong = Request {
            baseline: Some("nope".into()),
            ..request
        };
        let err = compare_settings("g", &cells, &wrong)
            .unwrap_err()
            .to_string();
        assert!(err.contains("zoo, chapter, literal"), "{err}");
        // A metric nobody records: nothing to compare.
        let none = Request::new("entropy", Step::Last);
        assert!(compare_settings("g", &cells, &none).unwrap().is_none());
    }

    #[test]
    fn metric_direction_is_guessed_from_the_name() {
        assert_eq!(Better::guess("eval_return"), Better::Higher);
        assert_eq!(Better::guess("final_gain_error"), Better::Lower);
        assert_eq!(Better::guess("critic_loss"), Better::Lower);
        assert_eq!("20000".parse::<Step>().unwrap(), Step::At(20000));
        assert_eq!("last".parse::<Step>().unwrap(), Step::Last);
        assert!("soon".parse::<Step>().is_err());
    }
}
