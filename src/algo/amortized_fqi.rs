//! Fitted Q-iteration with amortized optimization: the chapter's
//! `fitted-q-iteration-amortized` (section "Amortized Optimization Approach").
//!
//! ```text
//! 1. θ₀, w₀;  2. n ← 0
//! 3. repeat
//!    3.1 𝒟_q ← ∅
//!    3.2 𝒟_d ← ∅                      (here: entries older than K iterations dropped, below)
//!    3.3 for each (s, a, r, s') ∈ 𝓑:
//!        3.3.2 if s' ∈ 𝓑_opt:
//!              3.3.2.1 a* ← maximize(q(s', ·; θₙ))
//!              3.3.2.2 𝒟_d ← 𝒟_d ∪ {(s', a*)}
//!        3.3.3 else:
//!              3.3.3.1 a* ← d(s'; wₙ)
//!        3.3.5 y ← r + γ q(s', a*; θₙ)
//!        3.3.6 𝒟_q ← 𝒟_q ∪ {((s, a), y)}
//!    3.5 θₙ₊₁ ← fit(𝒟_q)
//!    3.6 wₙ₊₁ ← fit(𝒟_d)
//!    3.8 δ_q ← (1/|𝒟_q|) Σ_{(s,a) ∈ 𝒟_q} (q(s,a;θₙ₊₁) − q(s,a;θₙ))²
//!    3.9 δ_d ← (1/|𝒟_d|) Σ_{(s,a*) ∈ 𝒟_d} ‖a* − d(s; wₙ₊₁)‖²
//!    3.10 n ← n + 1
//! 4. until max(δ_q, δ_d) < ε or n ≥ N
//! ```
//!
//! [`AmortizedFqi`] holds θ (inside its q-function), w (inside its [`DecisionRule`]), the
//! base points, 𝒟_d and every buffer; [`AmortizedFqi::step`] is one pass of the repeat
//! loop and returns an [`AmortizedIterationReport`]; [`AmortizedFqi::run`] loops until
//! step 4's rule stops it.
//!
//! Choices the pseudocode leaves open, made here:
//! - **𝓑_opt, by a budget.** Each iteration draws 𝓑_opt afresh: a uniformly random
//!   subset of the base points whose s' is not terminal (a terminal s' needs no action),
//!   of size `round(f·|eligible|)` for [`SolveBudget::Fraction`]`(f)` or `min(c,
//!   |eligible|)` for [`SolveBudget::Count`]`(c)`. The draw is a partial Fisher–Yates
//!   shuffle of the eligible indices (reset to increasing order every iteration) with the
//!   stream `seed.indexed("amortized-fqi-subset", n)`, done on one thread, so 𝓑_opt
//!   depends on the seed and n only. A budget covering every eligible point draws nothing.
//!   With `fixed_subset` the draw of n = 0 is kept for every iteration: the pseudocode's
//!   fixed input 𝓑_opt.
//! - **The sliding window K** (the chapter's timestamped 𝒟_d^t). Every entry of 𝒟_d
//!   carries the iteration t that computed it. With `window = Some(K)`, the fit of step
//!   3.6 at iteration n uses the entries with `n − K ≤ t ≤ n` (older ones are dropped);
//!   `K = 0` is the pseudocode as written (𝒟_d emptied every iteration, step 3.2), and
//!   `window = None` (K = ∞) keeps every entry ever computed.
//! - **Same streams as FQI-explicit.** Solver call i at iteration n gets the stream
//!   `seed.indexed("fqi-maximize", n·|𝓑| + i)`, the q fit `seed.indexed("fqi-fit", n)`,
//!   and δ_q's extra actions `seed.stream("fqi-delta-actions")`, exactly as in
//!   [`super::fqi`]; and a solved target is `r + γ·value` with the value the maximizer
//!   reports (q(s', a*; θₙ) by its contract). So with a budget covering every point the
//!   targets, θ and δ_q are bit for bit those of [`super::fqi::FittedQIteration`] for
//!   the same seed (tests/amortized_fqi.rs checks it). The decision rule's fit draws
//!   from `seed.indexed("amortized-fqi-policy-fit", n)`.
//! - **Warm starts.** On entry to `maximize`, the action buffer of base point i holds the
//!   action used for its s' at the previous iteration (the solver's or the rule's; zero
//!   at n = 0), as in FQI-explicit: a maximizer with
//!   [`FirstStart::GivenAction`](crate::maximize::FirstStart::GivenAction) starts there.
//! - **Parallel targets.** Step 3.3 runs over fixed chunks of [`TARGET_CHUNK`] base
//!   points with rayon; a chunk with any point outside 𝓑_opt evaluates d(s'; wₙ) for
//!   all its states in one batched call, then each point is solved (𝓑_opt) or takes the
//!   rule's action. The fits (steps 3.5–3.6) run on one thread. Nothing depends on
//!   how chunks are spread over threads, so results are bit-identical whatever the
//!   thread count.
//! - **Terminal states.** `y = r + γ(1 − terminated)·q(s', a*)`: a terminal s' needs no
//!   action, so neither a solve nor the rule, and never enters 𝒟_d.
//! - **δ_q** is step 3.8's average over 𝒟_q's own pairs by default
//!   (`delta_actions_per_state = 0`); a positive value adds, for each state, that many
//!   actions drawn once uniformly in the action box, as FQI-explicit's step 3.4 does.
//! - **δ_d of an empty 𝒟_d** (no solves yet, or a zero budget) is 0: the empty sum. The
//!   rule is then not fitted (wₙ₊₁ = wₙ), so with a zero budget the rule stays d(·; w₀)
//!   and the iteration evaluates that fixed policy: nothing in the pseudocode improves
//!   d without the solver's answers.
//! - **Failures.** A non-finite target, fit loss, δ_q or δ_d is an [`Error::Numerical`]
//!   naming the iteration (and, for targets, the base point).

use std::time::{Duration, Instant};

use rand::seq::SliceRandom;
use rayon::prelude::*;

use super::decision_rule::DecisionRule;
use super::fit::Fit;
use super::fqi::GreedyPolicy;
use super::transitions::{Transitions, UniformBox};
use crate::error::{Error, Result};
use crate::maximize::{Maximizer, QFunction};
use crate::rng::RunSeed;

/// Base points per parallel task of the target step (one batched d(s'; wₙ) per task).
pub const TARGET_CHUNK: usize = 128;

/// How many base points are solved exactly each iteration: the size of 𝓑_opt.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SolveBudget {
    /// A fraction f ∈ [0, 1] of the base points with a non-terminal s' (rounded to the
    /// nearest count). 1 solves all of them (FQI-explicit), 0 none (solver-free).
    Fraction(f64),
    /// A number of base points (at most |𝓑|; capped at those with a non-terminal s').
    Count(usize),
}

/// Hyperparameters of `fitted-q-iteration-amortized`, as a user writes them. Check them
/// with [`AmortizedFqiParams::check`] (which [`AmortizedFqi::new`] calls). The fits' own
/// settings live with the fitters: the q fit's with its [`Fit`]
/// ([`super::fit::LeastSquares`], [`super::fit::AdamFitSettings`]), the decision rule's
/// with the rule ([`super::decision_rule::LinearPolicySettings`],
/// [`super::decision_rule::MlpPolicySettings`]).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct AmortizedFqiParams {
    /// Discount γ ∈ (0, 1]. Default 0.99.
    pub gamma: f64,
    /// N, the maximum number of iterations (≥ 1). Default 100.
    pub max_iterations: usize,
    /// ε > 0: stop once max(δ_q, δ_d) < ε. Default 1e-6.
    pub tolerance: f64,
    /// The size of 𝓑_opt each iteration. Default `Fraction(0.1)`.
    pub budget: SolveBudget,
    /// K: the rule is fitted on the 𝒟_d entries computed at iterations n − K … n;
    /// `None` is K = ∞ (keep everything), `Some(0)` the pseudocode as written. Default `None`.
    pub window: Option<usize>,
    /// Draw 𝓑_opt once, at n = 0, and keep it: the pseudocode's 𝓑_opt is an input fixed
    /// before the loop. Default false: redrawn every iteration (see the module
    /// documentation), so that over the iterations the solver sees every base point.
    pub fixed_subset: bool,
    /// Actions drawn per base-point state for δ_q besides 𝒟_q's own (see the module
    /// documentation). Default 0: step 3.8 as written.
    pub delta_actions_per_state: usize,
    /// The run's seed: 𝓑_opt, maximizer multi-starts, δ_q's actions, minibatch orders.
    pub seed: RunSeed,
}

impl Default for AmortizedFqiParams {
    fn default() -> Self {
        AmortizedFqiParams {
            gamma: 0.99,
            max_iterations: 100,
            tolerance: 1e-6,
            budget: SolveBudget::Fraction(0.1),
            window: None,
            fixed_subset: false,
            delta_actions_per_state: 0,
            seed: RunSeed(0),
        }
    }
}

impl AmortizedFqiParams {
    /// Check every field that does not depend on the data, naming the first bad one.
    /// (A [`SolveBudget::Count`] above |𝓑| is reported by [`AmortizedFqi::new`].)
    pub fn check(&self) -> Result<AmortizedFqiConfig> {
        if !(self.gamma > 0.0 && self.gamma <= 1.0) {
            return Err(Error::invalid(
                "gamma",
                format!("{} is not in (0, 1]", self.gamma),
            ));
        }
        if self.max_iterations == 0 {
            return Err(Error::invalid("max_iterations", "must be at least 1"));
        }
        if !(self.tolerance.is_finite() && self.tolerance > 0.0) {
            return Err(Error::invalid(
                "tolerance",
                format!("{} is not a positive finite number", self.tolerance),
            ));
        }
        if let SolveBudget::Fraction(f) = self.budget {
            if !(0.0..=1.0).contains(&f) {
                return Err(Error::invalid(
                    "budget",
                    format!("fraction {f} is not in [0, 1]"),
                ));
            }
        }
        Ok(AmortizedFqiConfig { params: *self })
    }
}

/// Checked [`AmortizedFqiParams`]: nothing downstream re-checks them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AmortizedFqiConfig {
    params: AmortizedFqiParams,
}

impl AmortizedFqiConfig {
    pub fn params(&self) -> &AmortizedFqiParams {
        &self.params
    }
}

/// 𝒟_d with timestamps: the pairs (s', a*) the solver produced, each with the iteration
/// t that computed it (the chapter's 𝒟_d^t), stored row-major.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PolicyDataset {
    state_dim: usize,
    action_dim: usize,
    states: Vec<f64>,
    actions: Vec<f64>,
    stamps: Vec<usize>,
}

impl PolicyDataset {
    pub fn new(state_dim: usize, action_dim: usize) -> Self {
        PolicyDataset {
            state_dim,
            action_dim,
            ..PolicyDataset::default()
        }
    }

    /// Add (s', a*) computed at iteration `stamp`.
    pub fn push(&mut self, state: &[f64], action: &[f64], stamp: usize) -> Result<()> {
        if state.len() != self.state_dim || action.len() != self.action_dim {
            return Err(Error::invalid(
                "policy dataset entry",
                format!(
                    "state of {} and action of {} components; expected {} and {}",
                    state.len(),
                    action.len(),
                    self.state_dim,
                    self.action_dim
                ),
            ));
        }
        self.states.extend_from_slice(state);
        self.actions.extend_from_slice(action);
        self.stamps.push(stamp);
        Ok(())
    }

    /// Keep the entries at most `window` iterations old at iteration `n` (`n − K ≤ t`),
    /// all of them for `None`; returns how many were dropped. Order is kept.
    pub fn retain_window(&mut self, n: usize, window: Option<usize>) -> usize {
        let Some(k) = window else { return 0 };
        let oldest = n.saturating_sub(k);
        let (sd, ad) = (self.state_dim, self.action_dim);
        let mut kept = 0;
        for i in 0..self.stamps.len() {
            if self.stamps[i] >= oldest {
                if kept != i {
                    self.stamps[kept] = self.stamps[i];
                    self.states.copy_within(i * sd..(i + 1) * sd, kept * sd);
                    self.actions.copy_within(i * ad..(i + 1) * ad, kept * ad);
                }
                kept += 1;
            }
        }
        let dropped = self.stamps.len() - kept;
        self.stamps.truncate(kept);
        self.states.truncate(kept * sd);
        self.actions.truncate(kept * ad);
        dropped
    }

    pub fn len(&self) -> usize {
        self.stamps.len()
    }

    pub fn is_empty(&self) -> bool {
        self.stamps.is_empty()
    }

    pub fn state_dim(&self) -> usize {
        self.state_dim
    }

    pub fn action_dim(&self) -> usize {
        self.action_dim
    }

    /// All states s', `len × state_dim` row-major.
    pub fn states(&self) -> &[f64] {
        &self.states
    }

    /// All actions a*, `len × action_dim` row-major.
    pub fn actions(&self) -> &[f64] {
        &self.actions
    }

    /// The iteration each entry was computed at.
    pub fn stamps(&self) -> &[usize] {
        &self.stamps
    }

    pub fn clear(&mut self) {
        self.states.clear();
        self.actions.clear();
        self.stamps.clear();
    }
}

/// What one iteration did.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AmortizedIterationReport {
    /// n: θₙ₊₁ and wₙ₊₁ were fitted to data computed with θₙ and wₙ (0-based).
    pub iteration: usize,
    /// δ_q of step 3.8.
    pub delta_q: f64,
    /// δ_d of step 3.9 (0 while 𝒟_d is empty).
    pub delta_d: f64,
    /// Calls of `maximize`: |𝓑_opt| (step 3.3.2.1).
    pub solver_calls: usize,
    /// Targets whose a* came from the decision rule (step 3.3.3.1).
    pub rule_actions: usize,
    /// Evaluations of q: those the maximizer reports, one per rule target, and δ_q's.
    pub q_evaluations: usize,
    /// |𝒟_d| after the window, what step 3.6 fitted.
    pub policy_dataset_len: usize,
    /// Mean squared error of θₙ₊₁ on 𝒟_q (step 3.5).
    pub q_fit_loss: f64,
    /// The rule's fit measure (step 3.6; see the rule), `None` when 𝒟_d was empty.
    pub policy_fit_loss: Option<f64>,
    /// Time inside `maximize`, summed over all calls and threads (CPU time of the solves).
    pub solve_time: Duration,
    /// Wall time of step 3.3 (targets: solves and rule actions, in parallel).
    pub target_time: Duration,
    /// Wall time of steps 3.5, 3.6 and of 3.8–3.9, and of the whole iteration.
    pub q_fit_time: Duration,
    pub policy_fit_time: Duration,
    pub delta_time: Duration,
    pub wall_time: Duration,
}

/// How [`AmortizedFqi::run`] ended.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AmortizedRunSummary {
    /// Iterations done in total (n at the end).
    pub iterations: usize,
    /// max(δ_q, δ_d) < ε was reached (otherwise n reached N).
    pub converged: bool,
    pub final_delta_q: f64,
    pub final_delta_d: f64,
    /// Over the run: solver calls, rule actions, time inside `maximize` (summed over
    /// threads) and wall time.
    pub solver_calls: usize,
    pub rule_actions: usize,
    pub solve_time: Duration,
    pub wall_time: Duration,
}

/// Counts of one target step.
#[derive(Clone, Copy, Default)]
struct TargetCounts {
    solver_calls: usize,
    rule_actions: usize,
    q_evaluations: usize,
    solve_time: Duration,
}

impl TargetCounts {
    fn add(self, other: TargetCounts) -> TargetCounts {
        TargetCounts {
            solver_calls: self.solver_calls + other.solver_calls,
            rule_actions: self.rule_actions + other.rule_actions,
            q_evaluations: self.q_evaluations + other.q_evaluations,
            solve_time: self.solve_time + other.solve_time,
        }
    }
}

/// `fitted-q-iteration-amortized` on fixed base points.
pub struct AmortizedFqi<Q: QFunction, M: Maximizer, F: Fit<Q>, D: DecisionRule> {
    config: AmortizedFqiConfig,
    q: Q,
    maximizer: M,
    fitter: F,
    rule: D,
    data: Transitions,
    /// Base points whose s' is not terminal: those 𝓑_opt is drawn from.
    eligible: Vec<usize>,
    /// Scratch for the draw of 𝓑_opt.
    order: Vec<usize>,
    /// |𝓑_opt| each iteration.
    opt_count: usize,
    /// Membership in 𝓑_opt, per base point, for the current iteration.
    in_opt: Vec<bool>,
    /// 𝒟_d with timestamps.
    policy_data: PolicyDataset,
    /// d(s; wₙ₊₁) on 𝒟_d's states, for δ_d.
    policy_predictions: Vec<f64>,
    /// δ_q's extra actions: `|𝓑| × k × m`, row-major by base point.
    delta_actions: Vec<f64>,
    /// Step 3.3.5's targets y, one per base point.
    targets: Vec<f64>,
    /// The a* used at each s' (NaN for terminal s').
    next_actions: Vec<f64>,
    q_before: Vec<f64>,
    q_after: Vec<f64>,
    /// n.
    iteration: usize,
}

impl<Q: QFunction, M: Maximizer, F: Fit<Q>, D: DecisionRule> AmortizedFqi<Q, M, F, D> {
    /// Set up the iteration from θ₀ (what `q` holds) and w₀ (what `rule` holds) on the
    /// base points `data`.
    ///
    /// Errors: invalid `params` (named field); a [`SolveBudget::Count`] above |𝓑|
    /// ("budget"); `data` empty or of other dimensions than `q` ("transitions"); a
    /// maximizer or rule over other dimensions ("maximizer", "decision_rule");
    /// `delta_actions_per_state > 0` with an action space that is not a finite box.
    pub fn new(
        params: &AmortizedFqiParams,
        q: Q,
        maximizer: M,
        fitter: F,
        rule: D,
        data: Transitions,
    ) -> Result<Self> {
        let config = params.check()?;
        if data.is_empty() {
            return Err(Error::invalid("transitions", "no base points"));
        }
        let (n, m) = (q.state_dim(), q.action_dim());
        if data.state_dim() != n || data.action_dim() != m {
            return Err(Error::invalid(
                "transitions",
                format!(
                    "states of {} and actions of {} components; q takes {n} and {m}",
                    data.state_dim(),
                    data.action_dim(),
                ),
            ));
        }
        if maximizer.action_space().dim() != m {
            return Err(Error::invalid(
                "maximizer",
                format!(
                    "searches {} action components, q has {m}",
                    maximizer.action_space().dim()
                ),
            ));
        }
        if rule.state_dim() != n || rule.action_dim() != m {
            return Err(Error::invalid(
                "decision_rule",
                format!(
                    "maps states of {} to actions of {} components; q takes {n} and {m}",
                    rule.state_dim(),
                    rule.action_dim()
                ),
            ));
        }
        let eligible: Vec<usize> = (0..data.len()).filter(|&i| !data.terminated(i)).collect();
        let opt_count = match params.budget {
            SolveBudget::Fraction(f) => {
                ((f * eligible.len() as f64).round() as usize).min(eligible.len())
            }
            SolveBudget::Count(c) => {
                if c > data.len() {
                    return Err(Error::invalid(
                        "budget",
                        format!("count {c} exceeds the {} base points", data.len()),
                    ));
                }
                c.min(eligible.len())
            }
        };
        let k = params.delta_actions_per_state;
        let mut delta_actions = vec![0.0; data.len() * k * m];
        if k > 0 {
            let action_box =
                UniformBox::of_action_space(maximizer.action_space()).map_err(|e| {
                    Error::invalid(
                        "delta_actions_per_state",
                        format!("{k} sampled actions need a finite action box: {e}"),
                    )
                })?;
            let mut rng = params.seed.stream("fqi-delta-actions");
            for action in delta_actions.chunks_mut(m) {
                action_box.sample_into(&mut rng, action);
            }
        }
        let points = data.len() * (k + 1);
        let mut fqi = AmortizedFqi {
            config,
            q,
            maximizer,
            fitter,
            rule,
            order: Vec::with_capacity(eligible.len()),
            eligible,
            opt_count,
            in_opt: vec![false; data.len()],
            policy_data: PolicyDataset::new(n, m),
            policy_predictions: Vec::new(),
            delta_actions,
            targets: vec![0.0; data.len()],
            next_actions: vec![0.0; data.len() * m],
            data,
            q_before: vec![0.0; points],
            q_after: vec![0.0; points],
            iteration: 0,
        };
        fqi.evaluate_delta_points()?;
        std::mem::swap(&mut fqi.q_before, &mut fqi.q_after);
        Ok(fqi)
    }

    /// One pass of the repeat loop (steps 3.1–3.10).
    pub fn step(&mut self) -> Result<AmortizedIterationReport> {
        let n = self.iteration;
        let params = self.config.params;
        let start = Instant::now();

        // 𝓑_opt for this iteration.
        self.choose_subset(n);

        // Steps 3.1, 3.3: 𝒟_q = {((s, a), y)}; the pairs are 𝓑's, only y is computed.
        let counts = self.compute_targets(n)?;
        if let Some(i) = self.targets.iter().position(|y| !y.is_finite()) {
            return Err(self.numerical(
                n,
                format!("target of base point {i} is {}", self.targets[i]),
            ));
        }
        // Steps 3.2, 3.3.2.2: 𝒟_d gains (s', a*) of every solve, stamped n (in base-point
        // order), and loses the entries older than K iterations.
        let m = self.q.action_dim();
        for i in 0..self.data.len() {
            if self.in_opt[i] {
                self.policy_data.push(
                    self.data.next_state(i),
                    &self.next_actions[i * m..(i + 1) * m],
                    n,
                )?;
            }
        }
        self.policy_data.retain_window(n, params.window);
        let target_time = start.elapsed();

        // Step 3.5: θₙ₊₁ ← fit(𝒟_q), in place, warm-started from θₙ.
        let fit_start = Instant::now();
        let mut fit_rng = params.seed.indexed("fqi-fit", n as u64);
        let q_fit_loss = self
            .fitter
            .fit(&mut self.q, &self.data, &self.targets, &mut fit_rng)?;
        if !q_fit_loss.is_finite() {
            return Err(self.numerical(n, format!("q fit loss is {q_fit_loss}")));
        }
        let q_fit_time = fit_start.elapsed();

        // Step 3.6: wₙ₊₁ ← fit(𝒟_d) (wₙ₊₁ = wₙ while 𝒟_d is empty).
        let policy_start = Instant::now();
        let policy_fit_loss = if self.policy_data.is_empty() {
            None
        } else {
            let mut rng = params.seed.indexed("amortized-fqi-policy-fit", n as u64);
            let loss = self.rule.fit(
                self.policy_data.states(),
                self.policy_data.actions(),
                &mut rng,
            )?;
            if !loss.is_finite() {
                return Err(self.numerical(n, format!("decision-rule fit loss is {loss}")));
            }
            Some(loss)
        };
        let policy_fit_time = policy_start.elapsed();

        // Step 3.8: δ_q, comparing θₙ₊₁ with θₙ on the same points.
        let delta_start = Instant::now();
        self.evaluate_delta_points()?;
        let delta_q = self
            .q_after
            .iter()
            .zip(&self.q_before)
            .map(|(after, before)| (after - before) * (after - before))
            .sum::<f64>()
            / self.q_after.len() as f64;
        if !delta_q.is_finite() {
            return Err(self.numerical(n, format!("δ_q is {delta_q}")));
        }
        std::mem::swap(&mut self.q_before, &mut self.q_after);
        // Step 3.9: δ_d over the 𝒟_d step 3.6 fitted.
        let delta_d = self.policy_delta()?;
        if !delta_d.is_finite() {
            return Err(self.numerical(n, format!("δ_d is {delta_d}")));
        }
        let delta_time = delta_start.elapsed();

        // Step 3.10.
        self.iteration += 1;
        Ok(AmortizedIterationReport {
            iteration: n,
            delta_q,
            delta_d,
            solver_calls: counts.solver_calls,
            rule_actions: counts.rule_actions,
            q_evaluations: counts.q_evaluations + self.q_after.len(),
            policy_dataset_len: self.policy_data.len(),
            q_fit_loss,
            policy_fit_loss,
            solve_time: counts.solve_time,
            target_time,
            q_fit_time,
            policy_fit_time,
            delta_time,
            wall_time: start.elapsed(),
        })
    }

    /// Iterate until max(δ_q, δ_d) < ε or n ≥ N (step 4), handing each report to `observer`.
    pub fn run(
        &mut self,
        mut observer: impl FnMut(&AmortizedIterationReport),
    ) -> Result<AmortizedRunSummary> {
        let params = self.config.params;
        let mut summary = AmortizedRunSummary {
            iterations: self.iteration,
            converged: false,
            final_delta_q: f64::NAN,
            final_delta_d: f64::NAN,
            solver_calls: 0,
            rule_actions: 0,
            solve_time: Duration::ZERO,
            wall_time: Duration::ZERO,
        };
        let start = Instant::now();
        loop {
            let report = self.step()?;
            observer(&report);
            summary.solver_calls += report.solver_calls;
            summary.rule_actions += report.rule_actions;
            summary.solve_time += report.solve_time;
            summary.final_delta_q = report.delta_q;
            summary.final_delta_d = report.delta_d;
            summary.iterations = self.iteration;
            summary.converged = report.delta_q.max(report.delta_d) < params.tolerance;
            if summary.converged || self.iteration >= params.max_iterations {
                summary.wall_time = start.elapsed();
                return Ok(summary);
            }
        }
    }

    /// Draw 𝓑_opt for iteration `n` into `in_opt` (with `fixed_subset`, at n = 0 only).
    fn choose_subset(&mut self, n: usize) {
        if self.config.params.fixed_subset && n > 0 {
            return;
        }
        self.in_opt.fill(false);
        if self.opt_count == self.eligible.len() {
            for &i in &self.eligible {
                self.in_opt[i] = true;
            }
            return;
        }
        if self.opt_count == 0 {
            return;
        }
        self.order.clear();
        self.order.extend_from_slice(&self.eligible);
        let mut rng = self
            .config
            .params
            .seed
            .indexed("amortized-fqi-subset", n as u64);
        let (chosen, _) = self.order.partial_shuffle(&mut rng, self.opt_count);
        for &i in chosen.iter() {
            self.in_opt[i] = true;
        }
    }

    /// Step 3.3 for every base point, in parallel chunks.
    fn compute_targets(&mut self, n: usize) -> Result<TargetCounts> {
        let AmortizedFqi {
            config,
            q,
            maximizer,
            rule,
            data,
            in_opt,
            targets,
            next_actions,
            ..
        } = self;
        let (gamma, seed) = (config.params.gamma, config.params.seed);
        let (len, sd, m) = (data.len(), q.state_dim(), q.action_dim());
        let (q, maximizer, rule, data, in_opt) = (&*q, &*maximizer, &*rule, &*data, &*in_opt);
        targets
            .par_chunks_mut(TARGET_CHUNK)
            .zip(next_actions.par_chunks_mut(TARGET_CHUNK * m))
            .enumerate()
            .map_init(
                || {
                    (
                        q.workspace(),
                        maximizer.workspace(),
                        rule.workspace(TARGET_CHUNK),
                        vec![0.0; TARGET_CHUNK * m],
                    )
                },
                |(q_ws, max_ws, rule_ws, predicted), (c, (ys, a_stars))| -> Result<TargetCounts> {
                    let first = c * TARGET_CHUNK;
                    let rows = ys.len();
                    let mut counts = TargetCounts::default();
                    // Step 3.3.3.1, batched: d(s'; wₙ) for the chunk, if any point needs it.
                    let needs_rule =
                        (first..first + rows).any(|i| !in_opt[i] && !data.terminated(i));
                    if needs_rule {
                        rule.predict(
                            rule_ws,
                            &data.next_states()[first * sd..(first + rows) * sd],
                            &mut predicted[..rows * m],
                        )?;
                    }
                    for (r, (y, a_star)) in ys.iter_mut().zip(a_stars.chunks_mut(m)).enumerate() {
                        let i = first + r;
                        if data.terminated(i) {
                            *y = data.reward(i);
                            a_star.fill(f64::NAN);
                            continue;
                        }
                        let next_value = if in_opt[i] {
                            // Step 3.3.2.1: a* ← maximize(q(s', ·; θₙ)).
                            let mut rng = seed.indexed("fqi-maximize", (n * len + i) as u64);
                            let solve_start = Instant::now();
                            let max = maximizer.maximize(
                                q,
                                q_ws,
                                max_ws,
                                data.next_state(i),
                                a_star,
                                &mut rng,
                            )?;
                            counts.solve_time += solve_start.elapsed();
                            counts.solver_calls += 1;
                            counts.q_evaluations += max.evaluations;
                            max.value
                        } else {
                            // Step 3.3.3.1: a* ← d(s'; wₙ).
                            a_star.copy_from_slice(&predicted[r * m..(r + 1) * m]);
                            counts.rule_actions += 1;
                            counts.q_evaluations += 1;
                            q.value(q_ws, data.next_state(i), a_star)?
                        };
                        // Step 3.3.5: y ← r + γ q(s', a*; θₙ).
                        *y = data.reward(i) + gamma * next_value;
                    }
                    Ok(counts)
                },
            )
            .try_reduce(TargetCounts::default, |a, b| Ok(a.add(b)))
    }

    /// q(·; θ) at every δ_q point, into `q_after`.
    fn evaluate_delta_points(&mut self) -> Result<()> {
        let k = self.config.params.delta_actions_per_state;
        let m = self.q.action_dim();
        let (q, data, extra) = (&self.q, &self.data, &self.delta_actions);
        self.q_after.par_iter_mut().enumerate().try_for_each_init(
            || q.workspace(),
            |ws, (p, value)| -> Result<()> {
                let (i, j) = (p / (k + 1), p % (k + 1));
                let action = if j == 0 {
                    data.action(i)
                } else {
                    let row = i * k + (j - 1);
                    &extra[row * m..(row + 1) * m]
                };
                *value = q.value(ws, data.state(i), action)?;
                Ok(())
            },
        )
    }

    /// Step 3.9: `(1/|𝒟_d|) Σ ‖a* − d(s; wₙ₊₁)‖²`, 0 for an empty 𝒟_d.
    fn policy_delta(&mut self) -> Result<f64> {
        let len = self.policy_data.len();
        if len == 0 {
            return Ok(0.0);
        }
        let (sd, m) = (self.policy_data.state_dim(), self.policy_data.action_dim());
        self.policy_predictions.resize(len * m, 0.0);
        let (rule, states) = (&self.rule, self.policy_data.states());
        self.policy_predictions
            .par_chunks_mut(TARGET_CHUNK * m)
            .enumerate()
            .try_for_each_init(
                || rule.workspace(TARGET_CHUNK),
                |ws, (c, out)| -> Result<()> {
                    let first = c * TARGET_CHUNK;
                    let rows = out.len() / m;
                    rule.predict(ws, &states[first * sd..(first + rows) * sd], out)
                },
            )?;
        let sum: f64 = self
            .policy_predictions
            .iter()
            .zip(self.policy_data.actions())
            .map(|(d, a)| (a - d) * (a - d))
            .sum();
        Ok(sum / len as f64)
    }

    fn numerical(&self, n: usize, reason: String) -> Error {
        Error::Numerical {
            context: format!("fitted-q-iteration-amortized, iteration {n}"),
            reason,
        }
    }

    /// n, the number of iterations done.
    pub fn iteration(&self) -> usize {
        self.iteration
    }

    pub fn config(&self) -> &AmortizedFqiConfig {
        &self.config
    }

    /// q(·, ·; θₙ).
    pub fn q(&self) -> &Q {
        &self.q
    }

    /// d(·; wₙ).
    pub fn rule(&self) -> &D {
        &self.rule
    }

    pub fn maximizer(&self) -> &M {
        &self.maximizer
    }

    pub fn transitions(&self) -> &Transitions {
        &self.data
    }

    /// Step 5: θₙ and wₙ, ending the iteration.
    pub fn into_parts(self) -> (Q, D) {
        (self.q, self.rule)
    }

    /// The targets y of the last iteration (zeros before the first).
    pub fn targets(&self) -> &[f64] {
        &self.targets
    }

    /// The a* used at each s' in the last iteration (`|𝓑| × m`; NaN for terminal s').
    pub fn next_actions(&self) -> &[f64] {
        &self.next_actions
    }

    /// Which base points were in 𝓑_opt at the last iteration.
    pub fn solved(&self) -> &[bool] {
        &self.in_opt
    }

    /// |𝓑_opt| per iteration, as the budget resolved on these base points.
    pub fn solves_per_iteration(&self) -> usize {
        self.opt_count
    }

    /// 𝒟_d as the last iteration's fit saw it (after the window).
    pub fn policy_data(&self) -> &PolicyDataset {
        &self.policy_data
    }

    /// The greedy policy `s ↦ argmax_a q(s, a; θₙ)` under this run's maximizer.
    pub fn greedy_policy(&self) -> GreedyPolicy<'_, Q, M> {
        // The dimensions were checked in `new`.
        GreedyPolicy::new(&self.q, &self.maximizer)
            .unwrap_or_else(|_| unreachable!("dimensions checked at construction"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dataset_with_stamps(stamps: &[usize]) -> PolicyDataset {
        let mut d = PolicyDataset::new(2, 1);
        for (j, &t) in stamps.iter().enumerate() {
            let x = j as f64;
            d.push(&[x, -x], &[10.0 * x], t).unwrap();
        }
        d
    }

    #[test]
    fn the_window_keeps_entries_at_most_k_iterations_old() {
        // Entries of iterations 0..=5, two per iteration.
        let stamps: Vec<usize> = (0..6).flat_map(|t| [t, t]).collect();
        for (window, oldest) in [(Some(0), 5), (Some(1), 4), (Some(3), 2), (Some(10), 0)] {
            let mut d = dataset_with_stamps(&stamps);
            let dropped = d.retain_window(5, window);
            assert_eq!(dropped, 2 * oldest, "K = {window:?}");
            assert!(d.stamps().iter().all(|&t| t >= oldest && t <= 5));
            assert_eq!(d.len(), 2 * (6 - oldest));
            // The pairs kept are the ones pushed, in order, still aligned with their stamps.
            for (row, &t) in d.stamps().iter().enumerate() {
                let j = 2 * oldest + row;
                assert_eq!(t, j / 2);
                assert_eq!(d.states()[2 * row..2 * row + 2], [j as f64, -(j as f64)]);
                assert_eq!(d.actions()[row], 10.0 * j as f64);
            }
        }
        let mut all = dataset_with_stamps(&stamps);
        assert_eq!(all.retain_window(5, None), 0);
        assert_eq!(all.len(), 12);
        assert!(all.push(&[1.0], &[1.0], 6).is_err());
    }

    #[test]
    fn budgets_out_of_range_are_errors_naming_the_budget() {
        let field = |budget| match (AmortizedFqiParams {
            budget,
            ..AmortizedFqiParams::default()
        })
        .check()
        {
            Err(Error::InvalidParameter { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(field(SolveBudget::Fraction(1.5)), "budget");
        assert_eq!(field(SolveBudget::Fraction(-0.1)), "budget");
        assert_eq!(field(SolveBudget::Fraction(f64::NAN)), "budget");
        for ok in [0.0, 0.5, 1.0] {
            assert!(AmortizedFqiParams {
                budget: SolveBudget::Fraction(ok),
                ..AmortizedFqiParams::default()
            }
            .check()
            .is_ok());
        }
    }
}
