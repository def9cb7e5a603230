//! Comparing methods over a handful of seeds, the way Agarwal et al. (2021), "Deep
//! Reinforcement Learning at the Edge of the Statistical Precipice", recommend and their
//! `rliable` library computes it:
//!
//! - the **interquartile mean** (IQM): the mean of the middle 50% of runs, `scipy.stats.
//!   trim_mean(x, 0.25)` (⌊n/4⌋ runs cut from each end), robust to one outlier seed where
//!   the mean is not, and less noisy than the median;
//! - the **probability of improvement** P(X > Y): the chance that a run of method X beats
//!   a run of method Y (ties count one half), the Mann–Whitney U statistic over `n_x·n_y`,
//!   averaged over tasks;
//! - 95% **stratified bootstrap** percentile intervals for both: each resample draws, task
//!   by task, as many runs with replacement as the task has (X and Y independently for
//!   P(X > Y)); the interval is the 2.5 and 97.5 percentiles of the statistic over the
//!   resamples (linear interpolation, as numpy). rliable's defaults: 50 000 resamples.
//!
//! Scores are given per task: `&[Vec<f64>]`, one vector of runs (seeds) per task. A grid
//! setting runs on one environment, so it is one task; the stratification matters when a
//! method is scored on several.
//!
//! Resamples come from a ChaCha8 stream of a fixed seed: the same scores always give the
//! same intervals.

use rand::Rng as _;

use policy_param::rng::{Rng, RunSeed};

/// A point estimate and its bootstrap interval.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Estimate {
    pub point: f64,
    pub low: f64,
    pub high: f64,
}

impl Estimate {
    /// Do the intervals of `self` and `other` overlap?
    pub fn overlaps(&self, other: &Estimate) -> bool {
        self.low <= other.high && other.low <= self.high
    }
}

impl std::fmt::Display for Estimate {
    /// `point [low, high]` with four significant digits.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} [{}, {}]",
            significant(self.point),
            significant(self.low),
            significant(self.high)
        )
    }
}

/// `v` with four significant digits, without exponent for ordinary magnitudes.
pub fn significant(v: f64) -> String {
    if !v.is_finite() {
        return format!("{v}");
    }
    if v == 0.0 {
        return "0".into();
    }
    let magnitude = v.abs().log10().floor() as i32;
    if (-3..6).contains(&magnitude) {
        let decimals = (3 - magnitude).max(0) as usize;
        format!("{v:.decimals$}")
    } else {
        format!("{v:.3e}")
    }
}

/// The mean of every run of every task.
pub fn mean(scores: &[Vec<f64>]) -> f64 {
    let n: usize = scores.iter().map(Vec::len).sum();
    scores.iter().flatten().sum::<f64>() / n as f64
}

/// The interquartile mean of every run of every task: sorted, ⌊n/4⌋ cut from each end,
/// the rest averaged (`scipy.stats.trim_mean(x, 0.25)`).
pub fn iqm(scores: &[Vec<f64>]) -> f64 {
    let mut all: Vec<f64> = scores.iter().flatten().copied().collect();
    iqm_in_place(&mut all)
}

fn iqm_in_place(values: &mut [f64]) -> f64 {
    values.sort_unstable_by(f64::total_cmp);
    let cut = values.len() / 4;
    let kept = &values[cut..values.len() - cut];
    kept.iter().sum::<f64>() / kept.len() as f64
}

/// P(X > Y): per task, the fraction of pairs (x, y) with x > y, ties counting ½; the
/// mean over tasks. `x` and `y` list the same tasks in the same order.
pub fn probability_of_improvement(x: &[Vec<f64>], y: &[Vec<f64>]) -> f64 {
    assert_eq!(x.len(), y.len(), "X and Y must be scored on the same tasks");
    let per_task = x.iter().zip(y).map(|(xs, ys)| {
        let wins: f64 = xs
            .iter()
            .flat_map(|a| ys.iter().map(move |b| pair_score(*a, *b)))
            .sum();
        wins / (xs.len() * ys.len()) as f64
    });
    per_task.sum::<f64>() / x.len() as f64
}

fn pair_score(a: f64, b: f64) -> f64 {
    if a > b {
        1.0
    } else if a == b {
        0.5
    } else {
        0.0
    }
}

/// The `q`-th quantile (0 ≤ q ≤ 1) of sorted values, interpolating linearly between
/// order statistics (numpy's default).
pub fn quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    let position = q * (sorted.len() - 1) as f64;
    let below = position.floor() as usize;
    let above = (below + 1).min(sorted.len() - 1);
    let fraction = position - below as f64;
    sorted[below] + fraction * (sorted[above] - sorted[below])
}

/// Stratified bootstrap settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bootstrap {
    /// Number of resamples (rliable: 50 000).
    pub reps: usize,
    /// Coverage of the interval (0.95).
    pub confidence: f64,
    /// Seed of the resampling stream.
    pub seed: u64,
}

impl Default for Bootstrap {
    fn default() -> Self {
        Bootstrap {
            reps: 50_000,
            confidence: 0.95,
            seed: 0,
        }
    }
}

impl Bootstrap {
    /// `statistic` of `scores` with its percentile interval.
    pub fn estimate(&self, scores: &[Vec<f64>], statistic: Statistic) -> Estimate {
        let point = statistic.of(scores);
        let mut rng = self.rng("one-sample");
        let mut resample = scores.to_vec();
        let mut scratch = Vec::new();
        let draws: Vec<f64> = (0..self.reps)
            .map(|_| {
                stratified_resample(scores, &mut resample, &mut rng);
                statistic.of_with(&resample, &mut scratch)
            })
            .collect();
        self.interval(point, draws)
    }

    /// P(X > Y) with its percentile interval, X and Y resampled independently.
    pub fn probability_of_improvement(&self, x: &[Vec<f64>], y: &[Vec<f64>]) -> Estimate {
        let point = probability_of_improvement(x, y);
        let mut rng = self.rng("two-sample");
        let (mut rx, mut ry) = (x.to_vec(), y.to_vec());
        let draws: Vec<f64> = (0..self.reps)
            .map(|_| {
                stratified_resample(x, &mut rx, &mut rng);
                stratified_resample(y, &mut ry, &mut rng);
                probability_of_improvement(&rx, &ry)
            })
            .collect();
        self.interval(point, draws)
    }

    fn rng(&self, name: &str) -> Rng {
        RunSeed(self.seed).stream(name)
    }

    fn interval(&self, point: f64, mut draws: Vec<f64>) -> Estimate {
        draws.sort_unstable_by(f64::total_cmp);
        let tail = (1.0 - self.confidence) / 2.0;
        Estimate {
            point,
            low: quantile_sorted(&draws, tail),
            high: quantile_sorted(&draws, 1.0 - tail),
        }
    }
}

/// The one-sample statistics the bootstrap knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Statistic {
    Mean,
    Iqm,
}

impl Statistic {
    pub fn of(self, scores: &[Vec<f64>]) -> f64 {
        self.of_with(scores, &mut Vec::new())
    }

    /// `scratch` holds the flattened runs for the IQM, reused across resamples.
    fn of_with(self, scores: &[Vec<f64>], scratch: &mut Vec<f64>) -> f64 {
        match self {
            Statistic::Mean => mean(scores),
            Statistic::Iqm => {
                scratch.clear();
                scratch.extend(scores.iter().flatten());
                iqm_in_place(scratch)
            }
        }
    }
}

/// Task by task, as many runs as the task has, drawn with replacement into `out` (which
/// has the shape of `scores`).
fn stratified_resample(scores: &[Vec<f64>], out: &mut [Vec<f64>], rng: &mut Rng) {
    for (task, drawn) in scores.iter().zip(out.iter_mut()) {
        for slot in drawn.iter_mut() {
            *slot = task[rng.gen_range(0..task.len())];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one_task(values: &[f64]) -> Vec<Vec<f64>> {
        vec![values.to_vec()]
    }

    #[test]
    fn iqm_cuts_a_quarter_from_each_end_as_scipy_trim_mean() {
        // n = 8: two cut from each end; scipy.stats.trim_mean(range(1, 9), 0.25) = 4.5.
        assert_eq!(
            iqm(&one_task(&[8.0, 1.0, 7.0, 2.0, 6.0, 3.0, 5.0, 4.0])),
            4.5
        );
        // n = 5: ⌊5/4⌋ = 1 cut from each end: mean(2, 3, 100) with the outlier 1000 cut.
        assert_eq!(iqm(&one_task(&[3.0, 1000.0, 2.0, -50.0, 100.0])), 35.0);
        // n = 3: nothing cut.
        assert_eq!(iqm(&one_task(&[1.0, 2.0, 6.0])), 3.0);
        // Across tasks the runs are pooled before trimming.
        assert_eq!(iqm(&[vec![1.0, 2.0], vec![3.0, 4.0]]), 2.5);
    }

    #[test]
    fn probability_of_improvement_counts_wins_and_half_ties() {
        // Pairs: (3,1) win, (3,3) tie, (2,1) win, (2,3) loss: (1 + ½ + 1 + 0) / 4.
        let p = probability_of_improvement(&one_task(&[3.0, 2.0]), &one_task(&[1.0, 3.0]));
        assert_eq!(p, 0.625);
        // Symmetry: P(X > Y) + P(Y > X) = 1.
        let q = probability_of_improvement(&one_task(&[1.0, 3.0]), &one_task(&[3.0, 2.0]));
        assert_eq!(p + q, 1.0);
        // The mean over tasks: task 1 all wins, task 2 all losses.
        let x = [vec![5.0], vec![0.0]];
        let y = [vec![1.0], vec![1.0]];
        assert_eq!(probability_of_improvement(&x, &y), 0.5);
    }

    #[test]
    fn quantiles_interpolate_as_numpy() {
        let v = [1.0, 2.0, 3.0, 4.0];
        // numpy.percentile([1, 2, 3, 4], [0, 2.5, 50, 97.5, 100]) = 1, 1.075, 2.5, 3.925, 4.
        for (q, want) in [
            (0.0, 1.0),
            (0.025, 1.075),
            (0.5, 2.5),
            (0.975, 3.925),
            (1.0, 4.0),
        ] {
            assert!((quantile_sorted(&v, q) - want).abs() < 1e-12, "q {q}");
        }
    }

    /// The bootstrap distribution of the mean of n runs can be enumerated: every multiset
    /// of n draws, weighted by its multinomial probability. Its mean is the sample mean
    /// and its variance σ̂²/n with σ̂² = Σ(x − x̄)²/n (Efron & Tibshirani 1993, §5.2); its
    /// quantiles are exact. The Monte Carlo bootstrap must agree with all three.
    #[test]
    fn bootstrap_of_the_mean_agrees_with_the_enumerated_distribution() {
        let x = [-812.5, -140.25, -131.0, -99.5, -154.75, -160.0];
        let n = x.len();
        // Exact distribution by enumeration of counts (c_1..c_n), Σc = n.
        let mut atoms: Vec<(f64, f64)> = Vec::new();
        let factorial = |k: usize| (1..=k).map(|i| i as f64).product::<f64>();
        let mut counts = vec![0usize; n];
        fn visit(i: usize, left: usize, counts: &mut Vec<usize>, f: &mut dyn FnMut(&[usize])) {
            if i == counts.len() - 1 {
                counts[i] = left;
                f(counts);
                return;
            }
            for c in 0..=left {
                counts[i] = c;
                visit(i + 1, left - c, counts, f);
            }
        }
        visit(0, n, &mut counts, &mut |c: &[usize]| {
            let ways = factorial(n) / c.iter().map(|&k| factorial(k)).product::<f64>();
            let p = ways / (n as f64).powi(n as i32);
            let m = c.iter().zip(&x).map(|(&k, v)| k as f64 * v).sum::<f64>() / n as f64;
            atoms.push((m, p));
        });
        let total: f64 = atoms.iter().map(|a| a.1).sum();
        assert!((total - 1.0).abs() < 1e-12);
        let sample_mean = x.iter().sum::<f64>() / n as f64;
        let plug_in_var = x.iter().map(|v| (v - sample_mean).powi(2)).sum::<f64>() / n as f64;
        let exact_mean: f64 = atoms.iter().map(|(m, p)| m * p).sum();
        let exact_var: f64 = atoms
            .iter()
            .map(|(m, p)| p * (m - exact_mean).powi(2))
            .sum();
        assert!((exact_mean - sample_mean).abs() < 1e-9);
        assert!((exact_var - plug_in_var / n as f64).abs() < 1e-6 * exact_var);
        atoms.sort_by(|a, b| a.0.total_cmp(&b.0));
        let exact_quantile = |q: f64| {
            let mut cumulative = 0.0;
            for (m, p) in &atoms {
                cumulative += p;
                if cumulative >= q {
                    return *m;
                }
            }
            atoms.last().unwrap().0
        };

        let bootstrap = Bootstrap {
            reps: 200_000,
            ..Bootstrap::default()
        };
        let estimate = bootstrap.estimate(&one_task(&x), Statistic::Mean);
        assert_eq!(estimate.point, sample_mean);
        // The Monte Carlo percentiles land within a few atoms of the exact ones: the
        // atoms near the tails are about 1 apart here, the interval about 300 wide.
        let (lo, hi) = (exact_quantile(0.025), exact_quantile(0.975));
        assert!((estimate.low - lo).abs() < 3.0, "{} vs {lo}", estimate.low);
        assert!(
            (estimate.high - hi).abs() < 3.0,
            "{} vs {hi}",
            estimate.high
        );
        // And the draws' spread: re-draw to compare the variance.
        let mut rng = bootstrap.rng("variance-check");
        let mut resample = one_task(&x);
        let draws: Vec<f64> = (0..200_000)
            .map(|_| {
                stratified_resample(&one_task(&x), &mut resample, &mut rng);
                mean(&resample)
            })
            .collect();
        let m = draws.iter().sum::<f64>() / draws.len() as f64;
        let v = draws.iter().map(|d| (d - m).powi(2)).sum::<f64>() / draws.len() as f64;
        assert!((v / exact_var - 1.0).abs() < 0.02, "{v} vs {exact_var}");
    }

    #[test]
    fn bootstrap_is_reproducible_and_degenerate_on_constant_scores() {
        let b = Bootstrap {
            reps: 2000,
            ..Bootstrap::default()
        };
        let scores = one_task(&[-120.0, -185.0, -150.0, -99.0, -140.0]);
        assert_eq!(
            b.estimate(&scores, Statistic::Iqm),
            b.estimate(&scores, Statistic::Iqm)
        );
        let flat = b.estimate(&one_task(&[2.0; 5]), Statistic::Iqm);
        assert_eq!((flat.point, flat.low, flat.high), (2.0, 2.0, 2.0));
        // X always beats Y: P = 1 in every resample.
        let p = b.probability_of_improvement(&one_task(&[5.0, 6.0]), &one_task(&[1.0, 2.0]));
        assert_eq!((p.point, p.low, p.high), (1.0, 1.0, 1.0));
        // Overlapping samples: the interval contains the point and lies within [0, 1].
        let p = b.probability_of_improvement(&scores, &one_task(&[-130.0, -160.0, -145.0]));
        assert!(0.0 <= p.low && p.low <= p.point && p.point <= p.high && p.high <= 1.0);
    }

    #[test]
    fn estimates_print_with_four_significant_digits() {
        let e = Estimate {
            point: -137.8123,
            low: -160.04,
            high: -120.5,
        };
        assert_eq!(e.to_string(), "-137.8 [-160.0, -120.5]");
        assert_eq!(significant(0.6251), "0.6251");
        assert_eq!(significant(3.2e-9), "3.200e-9");
    }
}
