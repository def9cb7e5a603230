//! Fitted Q-iteration with explicit maximization: the chapter's
//! `fitted-q-iteration-explicit` (section "Embedded Optimization").
//!
//! ```text
//! 1. θ₀ (e.g. zero);  2. n ← 0
//! 3. repeat
//!    3.1 𝒟 ← ∅
//!    3.2 for each (s, a, r, s') ∈ 𝓑:
//!        3.2.1 y ← r + γ · maximize(q(s', ·; θₙ))        (s', θₙ fixed)
//!        3.2.2 𝒟 ← 𝒟 ∪ {((s, a), y)}
//!    3.3 θₙ₊₁ ← fit(𝒟)
//!    3.4 δ ← (1 / |𝒟||A|) Σ_{(s,a) ∈ 𝒟×A} (q(s,a;θₙ₊₁) − q(s,a;θₙ))²
//!    3.5 n ← n + 1
//! 4. until δ < ε or n ≥ N
//! ```
//!
//! [`FittedQIteration`] holds θ (inside its q-function), the base points and every
//! buffer; [`FittedQIteration::step`] is one pass of the repeat loop and returns an
//! [`IterationReport`]; [`FittedQIteration::run`] loops until step 4's rule stops it.
//! It is generic over the approximator `Q` (a [`QFunction`]), its [`Fit`] and the
//! [`Maximizer`] that implements `maximize`.
//!
//! Choices the pseudocode leaves open, made here:
//! - **Terminal states.** `y = r + γ(1 − terminated)·max q(s', ·)`: a terminal s' has no
//!   future, so no maximization is done for it. Truncation (a time limit) does not end
//!   the process and keeps the bootstrap term.
//! - **Parallel targets.** Step 3.2 runs over all base points with rayon, one q and one
//!   maximizer workspace per task; the maximizer's random stream for base point `i` at
//!   iteration `n` is `seed.indexed("fqi-maximize", n·|𝓑| + i)`, so targets — and the
//!   whole run — are bit-identical whatever the number of threads.
//! - **δ over 𝒟 × A.** For a continuous A the average over actions cannot be
//!   enumerated; it is taken over the dataset's own (s, a) pairs plus, for each state
//!   s of 𝓑, `delta_actions_per_state` actions drawn once (at construction, from
//!   `seed.stream("fqi-delta-actions")`) uniformly in the action box and kept fixed, so
//!   successive δ compare q on the same points. `delta_actions_per_state = 0` uses the
//!   dataset's pairs alone (required for integer action spaces).
//! - **Failures.** A non-finite target, fit loss or δ is an [`Error::Numerical`]
//!   naming the iteration and, for targets, the base point.

use std::time::{Duration, Instant};

use rayon::prelude::*;

use super::fit::Fit;
use super::transitions::{Transitions, UniformBox};
use crate::error::{Error, Result};
use crate::maximize::{Maximizer, QFunction};
use crate::rng::{Rng, RunSeed};

/// Hyperparameters of `fitted-q-iteration-explicit`, as a user writes them. Check them
/// with [`FqiParams::check`] (which [`FittedQIteration::new`] calls). The `fit` step's
/// own settings live with the fitter ([`super::fit::LeastSquares`],
/// [`super::fit::AdamFitSettings`]).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct FqiParams {
    /// Discount γ ∈ (0, 1]. Default 0.99.
    pub gamma: f64,
    /// N, the maximum number of iterations (≥ 1). Default 100.
    pub max_iterations: usize,
    /// ε > 0: stop once δ < ε. Default 1e-6.
    pub tolerance: f64,
    /// Actions drawn per base-point state for δ, besides the dataset's own action (see
    /// the module documentation). Default 4.
    pub delta_actions_per_state: usize,
    /// The run's seed: maximizer multi-starts, δ's actions, minibatch order.
    pub seed: RunSeed,
}

impl Default for FqiParams {
    fn default() -> Self {
        FqiParams {
            gamma: 0.99,
            max_iterations: 100,
            tolerance: 1e-6,
            delta_actions_per_state: 4,
            seed: RunSeed(0),
        }
    }
}

impl FqiParams {
    /// Check every field, naming the first bad one.
    pub fn check(&self) -> Result<FqiConfig> {
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
        Ok(FqiConfig { params: *self })
    }
}

/// Checked [`FqiParams`]: nothing downstream re-checks them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FqiConfig {
    params: FqiParams,
}

impl FqiConfig {
    pub fn params(&self) -> &FqiParams {
        &self.params
    }
}

/// What one iteration did.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct IterationReport {
    /// n: θₙ₊₁ was fitted to targets computed with θₙ (0-based).
    pub iteration: usize,
    /// δ of step 3.4.
    pub delta: f64,
    /// Mean squared error of θₙ₊₁ on 𝒟 (step 3.3).
    pub fit_loss: f64,
    /// Calls of `maximize` (base points whose s' is not terminal).
    pub maximize_calls: usize,
    /// Evaluations of q: those the maximizer reports plus those of δ.
    pub q_evaluations: usize,
    /// Time in step 3.2 (targets), 3.3 (fit), 3.4 (δ), and the whole iteration.
    pub target_time: Duration,
    pub fit_time: Duration,
    pub delta_time: Duration,
    pub wall_time: Duration,
}

/// How [`FittedQIteration::run`] ended.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RunSummary {
    /// Iterations done in total (n at the end).
    pub iterations: usize,
    /// δ < ε was reached (otherwise n reached N).
    pub converged: bool,
    /// δ of the last iteration.
    pub final_delta: f64,
}

/// `fitted-q-iteration-explicit` on fixed base points.
pub struct FittedQIteration<Q: QFunction, M: Maximizer, F: Fit<Q>> {
    config: FqiConfig,
    q: Q,
    maximizer: M,
    fitter: F,
    data: Transitions,
    /// δ's extra actions: `|𝓑| × K × m`, row-major by base point.
    delta_actions: Vec<f64>,
    /// Step 3.2's targets y, one per base point.
    targets: Vec<f64>,
    /// The maximizer's a* at each s' (NaN for terminal s').
    next_actions: Vec<f64>,
    /// The base points whose s' is not terminal, gathered for one `maximize_many` call.
    live: LiveRows,
    /// q at the δ points under θₙ, and under θₙ₊₁ once fitted.
    q_before: Vec<f64>,
    q_after: Vec<f64>,
    /// n.
    iteration: usize,
}

impl<Q: QFunction, M: Maximizer, F: Fit<Q>> FittedQIteration<Q, M, F> {
    /// Set up the iteration from θ₀ (the parameters `q` holds) on the base points `data`.
    ///
    /// Errors: invalid `params` (named field); `data` empty or of other dimensions than
    /// `q` ("transitions"); a maximizer over another action dimension ("maximizer");
    /// `delta_actions_per_state > 0` with an action space that is not a finite box.
    pub fn new(
        params: &FqiParams,
        q: Q,
        maximizer: M,
        fitter: F,
        data: Transitions,
    ) -> Result<Self> {
        let config = params.check()?;
        if data.is_empty() {
            return Err(Error::invalid("transitions", "no base points"));
        }
        if data.state_dim() != q.state_dim() || data.action_dim() != q.action_dim() {
            return Err(Error::invalid(
                "transitions",
                format!(
                    "states of {} and actions of {} components; q takes {} and {}",
                    data.state_dim(),
                    data.action_dim(),
                    q.state_dim(),
                    q.action_dim()
                ),
            ));
        }
        let m = q.action_dim();
        if maximizer.action_space().dim() != m {
            return Err(Error::invalid(
                "maximizer",
                format!(
                    "searches {} action components, q has {m}",
                    maximizer.action_space().dim()
                ),
            ));
        }
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
        let live = LiveRows::of(&data);
        let mut fqi = FittedQIteration {
            config,
            q,
            maximizer,
            fitter,
            targets: vec![0.0; data.len()],
            next_actions: vec![0.0; data.len() * m],
            live,
            data,
            delta_actions,
            q_before: vec![0.0; points],
            q_after: vec![0.0; points],
            iteration: 0,
        };
        fqi.evaluate_delta_points()?;
        std::mem::swap(&mut fqi.q_before, &mut fqi.q_after);
        Ok(fqi)
    }

    /// One pass of the repeat loop (steps 3.1–3.5): targets with θₙ, fit θₙ₊₁, δ.
    pub fn step(&mut self) -> Result<IterationReport> {
        let n = self.iteration;
        let start = Instant::now();

        // Steps 3.1–3.2: 𝒟 = {((s, a), y)}; the pairs are 𝓑's, only y is computed.
        let (maximize_calls, maximize_evaluations) = self.compute_targets(n)?;
        if let Some(i) = self.targets.iter().position(|y| !y.is_finite()) {
            return Err(self.numerical(
                n,
                format!("target of base point {i} is {}", self.targets[i]),
            ));
        }
        let target_time = start.elapsed();

        // Step 3.3: θₙ₊₁ ← fit(𝒟), in place, warm-started from θₙ.
        let fit_start = Instant::now();
        let mut fit_rng = self.config.params.seed.indexed("fqi-fit", n as u64);
        let fit_loss = self
            .fitter
            .fit(&mut self.q, &self.data, &self.targets, &mut fit_rng)?;
        if !fit_loss.is_finite() {
            return Err(self.numerical(n, format!("fit loss is {fit_loss}")));
        }
        let fit_time = fit_start.elapsed();

        // Step 3.4: δ, comparing θₙ₊₁ with θₙ on the same points.
        let delta_start = Instant::now();
        self.evaluate_delta_points()?;
        let delta = self
            .q_after
            .iter()
            .zip(&self.q_before)
            .map(|(after, before)| (after - before) * (after - before))
            .sum::<f64>()
            / self.q_after.len() as f64;
        if !delta.is_finite() {
            return Err(self.numerical(n, format!("δ is {delta}")));
        }
        std::mem::swap(&mut self.q_before, &mut self.q_after);
        let delta_time = delta_start.elapsed();

        // Step 3.5.
        self.iteration += 1;
        Ok(IterationReport {
            iteration: n,
            delta,
            fit_loss,
            maximize_calls,
            q_evaluations: maximize_evaluations + self.q_after.len(),
            target_time,
            fit_time,
            delta_time,
            wall_time: start.elapsed(),
        })
    }

    /// Iterate until δ < ε or n ≥ N (step 4), handing each report to `observer`.
    pub fn run(&mut self, mut observer: impl FnMut(&IterationReport)) -> Result<RunSummary> {
        let params = self.config.params;
        loop {
            let report = self.step()?;
            observer(&report);
            let converged = report.delta < params.tolerance;
            if converged || self.iteration >= params.max_iterations {
                return Ok(RunSummary {
                    iterations: self.iteration,
                    converged,
                    final_delta: report.delta,
                });
            }
        }
    }

    /// Step 3.2.1 for every base point, in parallel (the maximizer's `maximize_many`, row
    /// j of the live rows drawing from base point i's stream); returns (maximize calls,
    /// q evaluations).
    fn compute_targets(&mut self, n: usize) -> Result<(usize, usize)> {
        let FittedQIteration {
            config,
            q,
            maximizer,
            data,
            targets,
            next_actions,
            live,
            ..
        } = self;
        let (gamma, seed) = (config.params.gamma, config.params.seed);
        let (len, m) = (data.len(), q.action_dim());
        let LiveRows {
            index,
            next_states,
            actions,
            values,
        } = live;
        // The previous a* is each row's given action (a warm start for maximizers that
        // take one).
        for (j, &i) in index.iter().enumerate() {
            actions[j * m..(j + 1) * m].copy_from_slice(&next_actions[i * m..(i + 1) * m]);
        }
        let index = &*index;
        let evaluations = maximizer.maximize_many(&*q, next_states, actions, values, |j| {
            seed.indexed("fqi-maximize", (n * len + index[j]) as u64)
        })?;
        for (i, y) in targets.iter_mut().enumerate() {
            if data.terminated(i) {
                *y = data.reward(i);
                next_actions[i * m..(i + 1) * m].fill(f64::NAN);
            }
        }
        for (j, &i) in index.iter().enumerate() {
            targets[i] = data.reward(i) + gamma * values[j];
            next_actions[i * m..(i + 1) * m].copy_from_slice(&actions[j * m..(j + 1) * m]);
        }
        Ok((index.len(), evaluations))
    }

    /// q(·; θ) at every δ point, into `q_after`.
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

    fn numerical(&self, n: usize, reason: String) -> Error {
        Error::Numerical {
            context: format!("fitted-q-iteration-explicit, iteration {n}"),
            reason,
        }
    }

    /// n, the number of iterations done.
    pub fn iteration(&self) -> usize {
        self.iteration
    }

    pub fn config(&self) -> &FqiConfig {
        &self.config
    }

    /// q(·, ·; θₙ).
    pub fn q(&self) -> &Q {
        &self.q
    }

    /// The q-function, ending the iteration (step 5: return θₙ).
    pub fn into_q(self) -> Q {
        self.q
    }

    pub fn maximizer(&self) -> &M {
        &self.maximizer
    }

    pub fn transitions(&self) -> &Transitions {
        &self.data
    }

    /// The targets y of the last iteration (zeros before the first).
    pub fn targets(&self) -> &[f64] {
        &self.targets
    }

    /// The maximizers a* at each s' of the last iteration (`|𝓑| × m`; NaN for terminal s').
    pub fn next_actions(&self) -> &[f64] {
        &self.next_actions
    }

    /// The greedy policy `s ↦ argmax_a q(s, a; θₙ)` under this run's maximizer.
    pub fn greedy_policy(&self) -> GreedyPolicy<'_, Q, M> {
        GreedyPolicy {
            q: &self.q,
            maximizer: &self.maximizer,
        }
    }
}

/// `s ↦ argmax_a q(s, a)` by a [`Maximizer`]: the policy FQI's result defines.
///
/// Use it with [`crate::eval::evaluate_with`]:
/// `evaluate_with(make_env, || policy.workspace(), |ws, obs, rng, a| policy.greedy_action(ws, obs, rng, a), &settings)`.
pub struct GreedyPolicy<'a, Q, M> {
    q: &'a Q,
    maximizer: &'a M,
}

/// Per-episode scratch of a [`GreedyPolicy`].
pub struct GreedyWorkspace<QW, MW> {
    q: QW,
    maximizer: MW,
    state: Vec<f64>,
}

impl<'a, Q: QFunction, M: Maximizer> GreedyPolicy<'a, Q, M> {
    /// The greedy policy of `q` under `maximizer` (action dimensions must agree).
    pub fn new(q: &'a Q, maximizer: &'a M) -> Result<Self> {
        if maximizer.action_space().dim() != q.action_dim() {
            return Err(Error::invalid(
                "maximizer",
                format!(
                    "searches {} action components, q has {}",
                    maximizer.action_space().dim(),
                    q.action_dim()
                ),
            ));
        }
        Ok(GreedyPolicy { q, maximizer })
    }

    pub fn workspace(&self) -> GreedyWorkspace<Q::Workspace, M::Workspace> {
        GreedyWorkspace {
            q: self.q.workspace(),
            maximizer: self.maximizer.workspace(),
            state: vec![0.0; self.q.state_dim()],
        }
    }

    /// Write `argmax_a q(observation, a)` into `action`; `rng` feeds the maximizer's
    /// multi-starts (deterministic maximizers ignore it).
    pub fn greedy_action(
        &self,
        ws: &mut GreedyWorkspace<Q::Workspace, M::Workspace>,
        observation: &[f32],
        rng: &mut Rng,
        action: &mut [f64],
    ) -> Result<()> {
        if observation.len() != ws.state.len() {
            return Err(Error::invalid(
                "observation",
                format!(
                    "has {} components, q takes states of {}",
                    observation.len(),
                    ws.state.len()
                ),
            ));
        }
        for (s, &o) in ws.state.iter_mut().zip(observation) {
            *s = f64::from(o);
        }
        self.maximizer
            .maximize(self.q, &mut ws.q, &mut ws.maximizer, &ws.state, action, rng)?;
        Ok(())
    }
}

/// The base points whose s' is not terminal: their indices, their s' gathered row by row,
/// and the actions and values of one `maximize_many` call (sized once: the data is fixed).
struct LiveRows {
    index: Vec<usize>,
    next_states: Vec<f64>,
    actions: Vec<f64>,
    values: Vec<f64>,
}

impl LiveRows {
    fn of(data: &Transitions) -> Self {
        let index: Vec<usize> = (0..data.len()).filter(|&i| !data.terminated(i)).collect();
        let next_states = index
            .iter()
            .flat_map(|&i| data.next_state(i).iter().copied())
            .collect();
        LiveRows {
            actions: vec![0.0; index.len() * data.action_dim()],
            values: vec![0.0; index.len()],
            next_states,
            index,
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::Rng as _;

    use super::*;
    use crate::algo::fit::LeastSquares;
    use crate::env::ActionSpace;
    use crate::maximize::{Maximum, QuadraticArgmax};
    use crate::qfunction::linear::{Features, LinearQ, QuadraticFeatures};

    /// A "maximizer" that reports the first draw of its stream (in [0, 1)) as the maximum,
    /// exposing which stream FQI handed it.
    struct StreamProbe(ActionSpace);

    impl Maximizer for StreamProbe {
        type Workspace = ();
        fn name(&self) -> &str {
            "stream-probe"
        }
        fn action_space(&self) -> &ActionSpace {
            &self.0
        }
        fn workspace(&self) {}
        fn maximize<Q: QFunction>(
            &self,
            _q: &Q,
            _q_ws: &mut Q::Workspace,
            _ws: &mut (),
            _state: &[f64],
            action: &mut [f64],
            rng: &mut Rng,
        ) -> Result<Maximum> {
            action.fill(0.0);
            Ok(Maximum {
                value: rng.gen::<f64>(),
                evaluations: 1,
            })
        }
    }

    fn unit_box() -> ActionSpace {
        ActionSpace::Box {
            low: vec![-1.0],
            high: vec![1.0],
        }
    }

    /// Base points with distinct rewards; every third one terminal.
    fn data(len: usize) -> Transitions {
        let mut data = Transitions::new(1, 1);
        for i in 0..len {
            let x = i as f64 / len as f64;
            data.push(&[x], &[0.5 - x], -x, &[1.0 - x], i % 3 == 0)
                .unwrap();
        }
        data
    }

    fn params(k: usize) -> FqiParams {
        FqiParams {
            gamma: 0.9,
            max_iterations: 10,
            tolerance: 1e-9,
            delta_actions_per_state: k,
            seed: RunSeed(42),
        }
    }

    #[test]
    fn targets_use_one_indexed_stream_per_base_point_and_skip_terminal_states() {
        let data = data(12);
        let q = LinearQ::zeros(QuadraticFeatures::new(1, 1).unwrap());
        let mut fqi = FittedQIteration::new(
            &params(0),
            q,
            StreamProbe(unit_box()),
            LeastSquares::default(),
            data.clone(),
        )
        .unwrap();
        for n in 0..2 {
            let report = fqi.step().unwrap();
            assert_eq!(report.maximize_calls, 8, "12 points, 4 terminal");
            for i in 0..data.len() {
                let expected = if data.terminated(i) {
                    data.reward(i)
                } else {
                    let draw: f64 = RunSeed(42)
                        .indexed("fqi-maximize", (n * 12 + i) as u64)
                        .gen();
                    data.reward(i) + 0.9 * draw
                };
                assert_eq!(fqi.targets()[i], expected, "iteration {n}, point {i}");
            }
        }
    }

    /// A maximizer whose maximum is infinite.
    struct Unbounded(ActionSpace);

    impl Maximizer for Unbounded {
        type Workspace = ();
        fn name(&self) -> &str {
            "unbounded"
        }
        fn action_space(&self) -> &ActionSpace {
            &self.0
        }
        fn workspace(&self) {}
        fn maximize<Q: QFunction>(
            &self,
            _q: &Q,
            _q_ws: &mut Q::Workspace,
            _ws: &mut (),
            _state: &[f64],
            action: &mut [f64],
            _rng: &mut Rng,
        ) -> Result<Maximum> {
            action.fill(0.0);
            Ok(Maximum {
                value: f64::INFINITY,
                evaluations: 1,
            })
        }
    }

    #[test]
    fn a_non_finite_target_is_an_error_naming_iteration_and_base_point() {
        let q = LinearQ::zeros(QuadraticFeatures::new(1, 1).unwrap());
        let mut fqi = FittedQIteration::new(
            &params(0),
            q,
            Unbounded(unit_box()),
            LeastSquares::default(),
            data(6),
        )
        .unwrap();
        match fqi.step() {
            Err(Error::Numerical { context, reason }) => {
                assert!(context.contains("iteration 0"), "{context}");
                // Point 0 is terminal (no bootstrap), point 1 the first with an infinite one.
                assert!(reason.contains("base point 1 is inf"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn delta_compares_successive_fits_on_the_data_and_the_fixed_extra_actions() {
        let data = data(30);
        let features = QuadraticFeatures::new(1, 1).unwrap();
        let theta0: Vec<f64> = (0..features.len()).map(|i| -(i as f64) * 0.1).collect();
        let q0 = LinearQ::with_params(features, theta0).unwrap();
        let k = 3;
        let mut fqi = FittedQIteration::new(
            &params(k),
            q0.clone(),
            QuadraticArgmax::new(&unit_box()).unwrap(),
            LeastSquares::default(),
            data.clone(),
        )
        .unwrap();
        let report = fqi.step().unwrap();
        let q1 = fqi.q().clone();

        // The extra actions: k per state, drawn in order from "fqi-delta-actions".
        let mut rng = RunSeed(42).stream("fqi-delta-actions");
        let (mut ws0, mut ws1) = (q0.workspace(), q1.workspace());
        let mut sum = 0.0;
        for i in 0..data.len() {
            let s = data.state(i);
            let mut actions = vec![data.action(i)[0]];
            actions.extend((0..k).map(|_| rng.gen_range(-1.0..1.0)));
            for a in actions {
                let change =
                    q1.value(&mut ws1, s, &[a]).unwrap() - q0.value(&mut ws0, s, &[a]).unwrap();
                sum += change * change;
            }
        }
        let expected = sum / (data.len() * (k + 1)) as f64;
        assert!(
            (report.delta - expected).abs() <= 1e-12 * expected,
            "{} vs {expected}",
            report.delta
        );
        assert!(expected > 0.0);
        assert_ne!(q0.params(), q1.params());
    }

    #[test]
    fn run_stops_at_the_tolerance_or_the_iteration_limit() {
        // q* of a bandit (s' terminal everywhere) is r itself: the second fit equals the
        // first, so δ is 0 at iteration 1 and the run stops converged.
        let mut data = Transitions::new(1, 1);
        for i in 0..20 {
            let x = i as f64 / 10.0 - 1.0;
            data.push(&[x], &[-x], -x * x, &[0.0], true).unwrap();
        }
        let make = |max_iterations| {
            FittedQIteration::new(
                &FqiParams {
                    max_iterations,
                    ..params(1)
                },
                LinearQ::zeros(QuadraticFeatures::new(1, 1).unwrap()),
                QuadraticArgmax::new(&unit_box()).unwrap(),
                LeastSquares::default(),
                data.clone(),
            )
            .unwrap()
        };
        let mut seen = Vec::new();
        let summary = make(10).run(|r| seen.push(r.iteration)).unwrap();
        assert!(summary.converged);
        assert_eq!(summary.iterations, 2);
        assert_eq!(seen, vec![0, 1]);
        let summary = make(1).run(|_| {}).unwrap();
        assert!(!summary.converged);
        assert_eq!(summary.iterations, 1);
    }
}
