//! `maximize(q(s', ·; θ))` at many states at once: L-BFGS searches advanced in lockstep,
//! so that each round evaluates q and ∇ₐq at every active search's trial point in one
//! batched call ([`QFunction::values_and_action_gradients`]: for a network, one forward
//! and one backward pass of large matrix products instead of one matrix-vector product
//! per search).
//!
//! This is the chapter's `maximize` for a whole target computation of
//! `fitted-q-iteration-explicit` (step 3.2 at every base point), as a Python user would
//! write it with scipy's L-BFGS-B called once per state, but with the states batched;
//! `scripts/bench_maximize.py` races the two on the same network, states and starts.
//!
//! Each search is plain L-BFGS (two-loop recursion, memory `memory`) with a backtracking
//! Armijo line search, over the unconstrained variables u of the change of variables of
//! [`ProjectedLbfgs`](super::ProjectedLbfgs) (a = mid + half·sin u on a finite interval), so that every trial
//! point lies in the box. A search ends when its gradient's largest component (in u)
//! falls to `gradient_tolerance`, when an iteration lowers −q by at most
//! `cost_tolerance` relative to max(|q|, 1) (scipy's `pgtol` and `factr`·ε), when the
//! line search's step falls below `min_step`, or at `max_iters` iterations or
//! `max_evaluations` evaluations. Per state, the best point of its starts is returned,
//! with q there exactly.
//!
//! The searches are cut into fixed chunks of `batch` searches, each run in lockstep on one
//! thread, so results do not depend on the thread count. (They may depend on `batch`: a
//! network's batched product can round a row differently from a smaller one.)

use rayon::prelude::*;

use super::continuous::{check_box, Coordinate};
use super::{check_call, check_rows, Maximizer, Maximum, QFunction};
use crate::env::ActionSpace;
use crate::error::{Error, Result};
use crate::rng::Rng;

const NAME: &str = "batched_lbfgs";
/// Armijo's sufficient-decrease constant (scipy's ftol of the line search).
const ARMIJO: f64 = 1e-4;

/// Settings of [`BatchedLbfgs`], checked once by [`BatchedLbfgs::new`]. The defaults are
/// scipy's L-BFGS-B defaults where they have a counterpart.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BatchedLbfgsSettings {
    /// Searches per state, at least 1: the box centre, then uniform random points.
    pub starts: usize,
    /// Iterations per search, at least 1 (scipy: 15 000).
    pub max_iters: usize,
    /// q evaluations per search, at least 1 (scipy: 15 000).
    pub max_evaluations: usize,
    /// Stop when max |∂(−q)/∂uᵢ| ≤ this; finite, ≥ 0 (scipy's pgtol, 1e-5).
    pub gradient_tolerance: f64,
    /// Stop when an iteration lowers −q by at most this × max(|q|, |q'|, 1); finite, ≥ 0
    /// (scipy's factr·ε = 1e7 · 2.2e-16).
    pub cost_tolerance: f64,
    /// Stop when backtracking shrinks the step below this; > 0. An f32 network's q is
    /// flat below its rounding, where no step satisfies Armijo's condition.
    pub min_step: f64,
    /// (s, y) pairs kept, at least 1 (scipy's maxcor, 10).
    pub memory: usize,
    /// Searches evaluated together, at least 1: the row count of each batched call.
    pub batch: usize,
}

impl Default for BatchedLbfgsSettings {
    fn default() -> Self {
        BatchedLbfgsSettings {
            starts: 1,
            max_iters: 15_000,
            max_evaluations: 15_000,
            gradient_tolerance: 1e-5,
            cost_tolerance: 1e7 * f64::EPSILON,
            min_step: 1e-10,
            memory: 10,
            batch: 1024,
        }
    }
}

impl BatchedLbfgsSettings {
    pub fn check(&self) -> Result<()> {
        let at_least_one = [
            ("starts", self.starts),
            ("max_iters", self.max_iters),
            ("max_evaluations", self.max_evaluations),
            ("memory", self.memory),
            ("batch", self.batch),
        ];
        for (key, value) in at_least_one {
            if value == 0 {
                return Err(Error::invalid(
                    format!("{NAME}.{key}"),
                    "must be at least 1",
                ));
            }
        }
        for (key, value) in [
            ("gradient_tolerance", self.gradient_tolerance),
            ("cost_tolerance", self.cost_tolerance),
        ] {
            if !(value.is_finite() && value >= 0.0) {
                return Err(Error::invalid(
                    format!("{NAME}.{key}"),
                    format!("{value} is not a finite number ≥ 0"),
                ));
            }
        }
        if !(self.min_step.is_finite() && self.min_step > 0.0) {
            return Err(Error::invalid(
                format!("{NAME}.min_step"),
                format!("{} is not a finite number > 0", self.min_step),
            ));
        }
        Ok(())
    }
}

/// Lockstep multi-start L-BFGS over a box of actions (see the module documentation).
#[derive(Clone, Debug)]
pub struct BatchedLbfgs {
    space: ActionSpace,
    coordinates: Vec<Coordinate>,
    settings: BatchedLbfgsSettings,
}

/// What a batch of maximizations cost.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BatchStats {
    /// q (with gradient) evaluations over all searches.
    pub evaluations: usize,
    /// Batched calls of q.
    pub rounds: usize,
}

/// Scratch of [`BatchedLbfgs::maximize_batch`] for one thread: the searches, their
/// memories and the gathered rows of a batched call, grown once to the largest batch.
/// Empty by default: the first batch sizes it.
#[derive(Clone, Debug, Default)]
pub struct BatchedWorkspace {
    searches: Vec<Search>,
    /// Per search: `memory` pairs (s, y) of `dim` values each, and ρ = 1/(sᵀy).
    s: Vec<f64>,
    y: Vec<f64>,
    rho: Vec<f64>,
    /// Per search: u, ∇u(−q), the direction, the trial point and the best u.
    u: Vec<f64>,
    g: Vec<f64>,
    d: Vec<f64>,
    trial: Vec<f64>,
    best: Vec<f64>,
    /// The rows of one batched call.
    rows: Vec<usize>,
    states: Vec<f64>,
    actions: Vec<f64>,
    values: Vec<f64>,
    gradients: Vec<f64>,
    alpha: Vec<f64>,
    /// Starting points drawn by [`Maximizer::maximize_many`].
    starts: Vec<f64>,
}

#[derive(Clone, Copy, Debug, Default)]
struct Search {
    state: usize,
    /// −q at u.
    f: f64,
    /// −q at the best point so far.
    best_f: f64,
    /// Step length of the current trial, and ∇fᵀd at u.
    step: f64,
    slope: f64,
    iterations: usize,
    evaluations: usize,
    /// Stored (s, y) pairs and where the next one goes.
    pairs: usize,
    next: usize,
    phase: Phase,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Phase {
    /// The trial point is the start.
    #[default]
    Start,
    /// The trial point is u + step·d.
    LineSearch,
    Done,
}

impl BatchedLbfgs {
    /// A maximizer over `space`, an [`ActionSpace::Box`] with `low ≤ high` componentwise
    /// (infinite bounds allowed, as in [`ProjectedLbfgs`](super::ProjectedLbfgs)).
    pub fn new(space: ActionSpace, settings: BatchedLbfgsSettings) -> Result<Self> {
        settings.check()?;
        let coordinates = match &space {
            ActionSpace::Box { low, high } => {
                check_box(low, high)?;
                low.iter()
                    .zip(high)
                    .map(|(&l, &h)| Coordinate::new(l, h))
                    .collect()
            }
            ActionSpace::Integer(_) => {
                return Err(Error::invalid(
                    format!("{NAME}.action_space"),
                    "L-BFGS needs a box of real actions, not an integer space",
                ))
            }
        };
        Ok(BatchedLbfgs {
            space,
            coordinates,
            settings,
        })
    }

    pub fn settings(&self) -> &BatchedLbfgsSettings {
        &self.settings
    }

    pub fn action_space(&self) -> &ActionSpace {
        &self.space
    }

    /// The starting actions of `states` states' searches: per state, the box centre, then
    /// `starts − 1` random points of the box drawn from `rng` (`states × starts × dim`).
    pub fn starting_points(&self, states: usize, rng: &mut Rng) -> Vec<f64> {
        let mut points = vec![0.0; states * self.settings.starts * self.dim()];
        for row in points.chunks_exact_mut(self.settings.starts * self.dim()) {
            self.draw_starts(rng, row);
        }
        points
    }

    /// One state's starts into `out` (`starts × dim`): the centre, then random points.
    fn draw_starts(&self, rng: &mut Rng, out: &mut [f64]) {
        for (k, start) in out.chunks_exact_mut(self.dim()).enumerate() {
            for (a, c) in start.iter_mut().zip(&self.coordinates) {
                *a = if k == 0 { c.centre() } else { c.random(rng) };
            }
        }
    }

    fn dim(&self) -> usize {
        self.coordinates.len()
    }

    /// Maximize q at every row of `states` (`count × state_dim`) from `starts`
    /// (`count × settings.starts × dim`, from [`BatchedLbfgs::starting_points`] or the
    /// caller's own), writing each state's best action into `actions` (`count × dim`)
    /// and q there into `values`; on the calling thread.
    #[allow(clippy::too_many_arguments)]
    pub fn maximize_batch<Q: QFunction>(
        &self,
        q: &Q,
        q_ws: &mut Q::Workspace,
        ws: &mut BatchedWorkspace,
        states: &[f64],
        starts: &[f64],
        actions: &mut [f64],
        values: &mut [f64],
    ) -> Result<BatchStats> {
        let (n, m, k) = (q.state_dim(), self.dim(), self.settings.starts);
        let count = values.len();
        self.check_batch(q, states, starts, actions, values)?;
        let mut stats = BatchStats::default();
        for first in (0..count).step_by(self.chunk_states()) {
            let last = (first + self.chunk_states()).min(count);
            let chunk_stats = self.run_chunk(
                q,
                q_ws,
                ws,
                &states[first * n..last * n],
                &starts[first * k * m..last * k * m],
                &mut actions[first * m..last * m],
                &mut values[first..last],
            )?;
            stats.evaluations += chunk_stats.evaluations;
            stats.rounds += chunk_stats.rounds;
        }
        Ok(stats)
    }

    /// States per lockstep chunk: `batch` searches' worth, at least one state.
    fn chunk_states(&self) -> usize {
        (self.settings.batch / self.settings.starts).max(1)
    }

    fn check_batch<Q: QFunction>(
        &self,
        q: &Q,
        states: &[f64],
        starts: &[f64],
        actions: &[f64],
        values: &[f64],
    ) -> Result<()> {
        check_rows(NAME, &self.space, q, states, actions, values)?;
        let (rows, width) = (values.len(), self.settings.starts * self.dim());
        if starts.len() != rows * width {
            return Err(Error::invalid(
                format!("{NAME}: starts"),
                format!("{} values, expected {rows} rows × {width}", starts.len()),
            ));
        }
        Ok(())
    }

    /// All searches of `count` states in lockstep until every one has ended.
    #[allow(clippy::too_many_arguments)]
    fn run_chunk<Q: QFunction>(
        &self,
        q: &Q,
        q_ws: &mut Q::Workspace,
        ws: &mut BatchedWorkspace,
        states: &[f64],
        starts: &[f64],
        actions: &mut [f64],
        values: &mut [f64],
    ) -> Result<BatchStats> {
        let (m, k) = (self.dim(), self.settings.starts);
        let count = values.len();
        let total = count * k;
        ws.prepare(total, m, self.settings.memory);
        for (p, search) in ws.searches.iter_mut().enumerate() {
            *search = Search {
                state: p / k,
                best_f: f64::INFINITY,
                ..Search::default()
            };
        }
        for (row, u) in starts.chunks_exact(m).zip(ws.trial.chunks_exact_mut(m)) {
            for ((c, &a), u) in self.coordinates.iter().zip(row).zip(u) {
                *u = c.unconstrained(a);
            }
        }
        ws.best.copy_from_slice(&ws.trial);
        let mut stats = BatchStats::default();
        loop {
            let rows = self.evaluate_trials(q, q_ws, ws, states)?;
            if rows == 0 {
                break;
            }
            stats.rounds += 1;
            stats.evaluations += rows;
            for r in 0..rows {
                let p = ws.rows[r];
                self.advance(ws, p, r);
            }
        }
        for (state, (action, value)) in actions
            .chunks_exact_mut(m)
            .zip(values.iter_mut())
            .enumerate()
        {
            let best = (state * k..(state + 1) * k)
                .min_by(|&a, &b| ws.searches[a].best_f.total_cmp(&ws.searches[b].best_f))
                .expect("at least one start");
            if !ws.searches[best].best_f.is_finite() {
                return Err(Error::Numerical {
                    context: NAME.into(),
                    reason: format!("no start of state {state} reached a finite q"),
                });
            }
            *value = -ws.searches[best].best_f;
            for ((a, c), &u) in action
                .iter_mut()
                .zip(&self.coordinates)
                .zip(&ws.best[best * m..(best + 1) * m])
            {
                *a = c.action(u);
            }
        }
        Ok(stats)
    }

    /// Gather the trial point of every search not done, evaluate them in one call, and
    /// leave −q and ∇u(−q) in the workspace's `values` and `gradients`. The row count.
    fn evaluate_trials<Q: QFunction>(
        &self,
        q: &Q,
        q_ws: &mut Q::Workspace,
        ws: &mut BatchedWorkspace,
        states: &[f64],
    ) -> Result<usize> {
        let (n, m) = (q.state_dim(), self.dim());
        ws.rows.clear();
        ws.states.clear();
        ws.actions.clear();
        for (p, search) in ws.searches.iter().enumerate() {
            if search.phase == Phase::Done {
                continue;
            }
            ws.rows.push(p);
            ws.states
                .extend_from_slice(&states[search.state * n..(search.state + 1) * n]);
            let u = &ws.trial[p * m..(p + 1) * m];
            ws.actions
                .extend(self.coordinates.iter().zip(u).map(|(c, &u)| c.action(u)));
        }
        let rows = ws.rows.len();
        if rows == 0 {
            return Ok(0);
        }
        ws.values.resize(rows, 0.0);
        ws.gradients.resize(rows * m, 0.0);
        q.values_and_action_gradients(
            q_ws,
            &ws.states,
            &ws.actions,
            &mut ws.values,
            &mut ws.gradients,
        )?;
        // To the minimization of −q over u: ∂(−q)/∂u = −∂q/∂a · da/du.
        for (r, &p) in ws.rows.iter().enumerate() {
            ws.values[r] = -ws.values[r];
            let u = &ws.trial[p * m..(p + 1) * m];
            for ((g, c), &u) in ws.gradients[r * m..(r + 1) * m]
                .iter_mut()
                .zip(&self.coordinates)
                .zip(u)
            {
                *g = -*g * c.derivative(u);
            }
        }
        Ok(rows)
    }

    /// One search's step on the evaluation of its trial point (row `r` of the batch).
    fn advance(&self, ws: &mut BatchedWorkspace, p: usize, r: usize) {
        let m = self.dim();
        let settings = &self.settings;
        let f_trial = ws.values[r];
        let mut search = ws.searches[p];
        search.evaluations += 1;
        let span = p * m..(p + 1) * m;
        if f_trial < search.best_f {
            search.best_f = f_trial;
            ws.best[span.clone()].copy_from_slice(&ws.trial[span.clone()]);
        }
        let accepted = match search.phase {
            Phase::Start => {
                ws.u[span.clone()].copy_from_slice(&ws.trial[span.clone()]);
                ws.g[span.clone()].copy_from_slice(&ws.gradients[r * m..(r + 1) * m]);
                search.f = f_trial;
                if !f_trial.is_finite() {
                    search.phase = Phase::Done;
                }
                true
            }
            Phase::LineSearch => {
                let armijo = search.f + ARMIJO * search.step * search.slope;
                if f_trial.is_finite() && f_trial <= armijo {
                    let f_old = search.f;
                    self.accept(ws, &mut search, p, r);
                    search.iterations += 1;
                    let scale = f_old.abs().max(f_trial.abs()).max(1.0);
                    if f_old - f_trial <= settings.cost_tolerance * scale {
                        search.phase = Phase::Done;
                    }
                    true
                } else {
                    // Backtrack: the minimizer of the quadratic through f(u), its slope
                    // and f(trial), kept within [0.1, 0.5] of the step.
                    let t = search.step;
                    let curvature = f_trial - search.f - search.slope * t;
                    let quadratic = if f_trial.is_finite() && curvature > 0.0 {
                        -search.slope * t * t / (2.0 * curvature)
                    } else {
                        0.1 * t
                    };
                    search.step = quadratic.clamp(0.1 * t, 0.5 * t);
                    if search.step < settings.min_step {
                        search.phase = Phase::Done;
                    }
                    false
                }
            }
            Phase::Done => return,
        };
        if search.evaluations >= settings.max_evaluations || search.iterations >= settings.max_iters
        {
            search.phase = Phase::Done;
        }
        if search.phase != Phase::Done && accepted {
            if largest_magnitude(&ws.g[span.clone()]) <= settings.gradient_tolerance {
                search.phase = Phase::Done;
            } else {
                self.direction(ws, &mut search, p);
            }
        }
        if search.phase == Phase::LineSearch {
            for i in span {
                ws.trial[i] = ws.u[i] + search.step * ws.d[i];
            }
        }
        ws.searches[p] = search;
    }

    /// Move the search to its accepted trial point and store the (s, y) pair when its
    /// curvature sᵀy is positive (otherwise the inverse Hessian would not stay positive).
    fn accept(&self, ws: &mut BatchedWorkspace, search: &mut Search, p: usize, r: usize) {
        let m = self.dim();
        let memory = self.settings.memory;
        let slot = (p * memory + search.next) * m;
        let (mut sy, mut yy) = (0.0, 0.0);
        for i in 0..m {
            let s = ws.trial[p * m + i] - ws.u[p * m + i];
            let y = ws.gradients[r * m + i] - ws.g[p * m + i];
            ws.s[slot + i] = s;
            ws.y[slot + i] = y;
            sy += s * y;
            yy += y * y;
        }
        if sy > f64::EPSILON * yy {
            ws.rho[p * memory + search.next] = 1.0 / sy;
            search.next = (search.next + 1) % memory;
            search.pairs = (search.pairs + 1).min(memory);
        }
        search.f = ws.values[r];
        ws.u[p * m..(p + 1) * m].copy_from_slice(&ws.trial[p * m..(p + 1) * m]);
        ws.g[p * m..(p + 1) * m].copy_from_slice(&ws.gradients[r * m..(r + 1) * m]);
    }

    /// d = −H∇f by the two-loop recursion, H₀ = (sᵀy / yᵀy)·I from the newest pair; the
    /// first step of a search with no pair has length min(1, 1/‖∇f‖∞) per component.
    fn direction(&self, ws: &mut BatchedWorkspace, search: &mut Search, p: usize) {
        let m = self.dim();
        let memory = self.settings.memory;
        let BatchedWorkspace {
            s,
            y,
            rho,
            g,
            d,
            alpha,
            ..
        } = ws;
        let d = &mut d[p * m..(p + 1) * m];
        let g = &g[p * m..(p + 1) * m];
        for (d, &g) in d.iter_mut().zip(g) {
            *d = -g;
        }
        let pair = |j: usize| (p * memory + j) * m..(p * memory + j + 1) * m;
        let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(a, b)| a * b).sum::<f64>();
        alpha.resize(memory, 0.0);
        let newest = (search.next + memory - 1) % memory;
        for back in 0..search.pairs {
            let j = (newest + memory - back) % memory;
            let a = rho[p * memory + j] * dot(&s[pair(j)], d);
            alpha[j] = a;
            for (d, &y) in d.iter_mut().zip(&y[pair(j)]) {
                *d -= a * y;
            }
        }
        if search.pairs > 0 {
            let yy = dot(&y[pair(newest)], &y[pair(newest)]);
            let gamma = 1.0 / (rho[p * memory + newest] * yy);
            for d in d.iter_mut() {
                *d *= gamma;
            }
        }
        for forward in (0..search.pairs).rev() {
            let j = (newest + memory - forward) % memory;
            let b = rho[p * memory + j] * dot(&y[pair(j)], d);
            for (d, &s) in d.iter_mut().zip(&s[pair(j)]) {
                *d += (alpha[j] - b) * s;
            }
        }
        let mut slope = dot(g, d);
        if slope.is_nan() || slope >= 0.0 {
            // Not a descent direction (rounding): forget the memory, go down the gradient.
            search.pairs = 0;
            for (d, &g) in d.iter_mut().zip(g) {
                *d = -g;
            }
            slope = -dot(g, g);
        }
        search.slope = slope;
        search.step = if search.pairs == 0 {
            (1.0 / largest_magnitude(g)).min(1.0)
        } else {
            1.0
        };
        search.phase = Phase::LineSearch;
    }
}

/// max |vᵢ| (0 for an empty slice; NaN components are skipped).
fn largest_magnitude(v: &[f64]) -> f64 {
    v.iter().fold(0.0f64, |a, &b| a.max(b.abs()))
}

impl BatchedWorkspace {
    /// Size every per-search buffer for `searches` searches of `dim` components.
    fn prepare(&mut self, searches: usize, dim: usize, memory: usize) {
        self.searches.resize(searches, Search::default());
        for buffer in [
            &mut self.u,
            &mut self.g,
            &mut self.d,
            &mut self.trial,
            &mut self.best,
        ] {
            buffer.resize(searches * dim, 0.0);
        }
        self.s.resize(searches * memory * dim, 0.0);
        self.y.resize(searches * memory * dim, 0.0);
        self.rho.resize(searches * memory, 0.0);
    }
}

/// One state at a time (its starts from the call's stream), or, through
/// [`Maximizer::maximize_many`], every state of a target computation in lockstep chunks
/// over the rayon pool.
impl Maximizer for BatchedLbfgs {
    type Workspace = BatchedWorkspace;

    fn name(&self) -> &str {
        NAME
    }

    fn action_space(&self) -> &ActionSpace {
        &self.space
    }

    fn workspace(&self) -> BatchedWorkspace {
        BatchedWorkspace::default()
    }

    fn maximize<Q: QFunction>(
        &self,
        q: &Q,
        q_ws: &mut Q::Workspace,
        ws: &mut BatchedWorkspace,
        state: &[f64],
        action: &mut [f64],
        rng: &mut Rng,
    ) -> Result<Maximum> {
        check_call(NAME, &self.space, q, state, action)?;
        let mut starts = std::mem::take(&mut ws.starts);
        starts.resize(self.settings.starts * self.dim(), 0.0);
        self.draw_starts(rng, &mut starts);
        let mut value = [0.0];
        let result = self.run_chunk(q, q_ws, ws, state, &starts, action, &mut value);
        ws.starts = starts;
        Ok(Maximum {
            value: value[0],
            evaluations: result?.evaluations,
        })
    }

    fn maximize_many<Q: QFunction, S: Fn(usize) -> Rng + Sync>(
        &self,
        q: &Q,
        states: &[f64],
        actions: &mut [f64],
        values: &mut [f64],
        streams: S,
    ) -> Result<usize> {
        let (n, m, k) = (q.state_dim(), self.dim(), self.settings.starts);
        check_rows(NAME, &self.space, q, states, actions, values)?;
        let per = self.chunk_states();
        states
            .par_chunks(per * n)
            .zip(actions.par_chunks_mut(per * m))
            .zip(values.par_chunks_mut(per))
            .enumerate()
            .map_init(
                || (q.workspace(), BatchedWorkspace::default()),
                |(q_ws, ws), (chunk, ((s, a), v))| -> Result<usize> {
                    let mut starts = std::mem::take(&mut ws.starts);
                    starts.resize(v.len() * k * m, 0.0);
                    for (i, row) in starts.chunks_exact_mut(k * m).enumerate() {
                        self.draw_starts(&mut streams(chunk * per + i), row);
                    }
                    let result = self.run_chunk(q, q_ws, ws, s, &starts, a, v);
                    ws.starts = starts;
                    Ok(result?.evaluations)
                },
            )
            .try_reduce(|| 0, |a, b| Ok(a + b))
    }
}
