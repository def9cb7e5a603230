//! Gradient-based `maximize(q(s', ·; θ))` over a box of actions: multi-start L-BFGS on
//! argmin, the chapter's "standard nonlinear optimization methods like … L-BFGS".
//!
//! L-BFGS is unconstrained, the action box is not. Each bounded component is optimized
//! through a smooth change of variables whose range is exactly its interval:
//!
//! ```text
//! a = mid + half·sin(u)      both bounds finite
//! a = low + u²               only the lower bound finite
//! a = high − u²              only the upper bound finite
//! a = u                      unbounded (plain L-BFGS)
//! ```
//!
//! Sine and square (rather than tanh or a logistic) because they reach the bound at a
//! finite `u` where da/du = 0 and d²a/du² ≠ 0: a maximizer on the bound becomes an
//! ordinary stationary point with curvature, which L-BFGS converges to quickly, instead
//! of a point at infinity. The search ends in the action space: components a rounding
//! short of a bound they push against are clamped onto it, then projected-gradient
//! steps a' = clamp(a + t∇ₐq) continue while they improve q.
//!
//! Nonconcave q (any network) has local maxima, so the search restarts from `starts`
//! points: the box centre (or the caller's warm start), then `starts − 1` of
//! `candidates` uniform random points drawn from the call's `rng` stream, screened by q
//! in one batched evaluation ([`QFunction::values_at_actions`]) and chosen best first
//! but apart from each other, so that the starts cover several basins. Every point
//! evaluated lies in the box, and the best of them is returned, so the reported value
//! is q at the returned action exactly, and it is a function of the stream alone
//! (whatever thread runs it).
//!
//! The line search is Moré–Thuente with the constants of scipy's L-BFGS-B; tolerances
//! are relative to |q|, and the defaults suit f32 networks (see [`LbfgsSettings`]). A
//! ReLU network is piecewise linear in the action, so its maxima sit on kinks where no
//! line search meets the curvature condition; a per-start evaluation budget bounds the
//! work there.
//!
//! argmin allocates its iterates (`Array1<f64>`) and its L-BFGS history on every call;
//! the q evaluations underneath, the expensive part, reuse the caller's workspaces.

use std::cell::RefCell;

use argmin::core::{CostFunction, Executor, Gradient, IterState, Solver};
use argmin::solver::linesearch::{HagerZhangLineSearch, MoreThuenteLineSearch};
use argmin::solver::quasinewton::LBFGS;
use ndarray::Array1;
use rand::Rng as _;
use rand_distr::StandardNormal;

use super::{check_call, Maximizer, Maximum, QFunction};
use crate::env::ActionSpace;
use crate::error::{Error, Result};
use crate::rng::Rng;

const NAME: &str = "lbfgs";

/// The line search inside each L-BFGS iteration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum LineSearchKind {
    /// Moré–Thuente (strong Wolfe conditions), as in MINPACK-2 and scipy's L-BFGS-B.
    MoreThuente,
    /// Hager–Zhang (approximate Wolfe conditions), robust to small rounding in q.
    HagerZhang,
}

/// Where the first start of a multi-start search begins.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum FirstStart {
    /// The centre of the box (for unbounded components: 0, or one unit inside a
    /// one-sided bound).
    BoxCentre,
    /// The action the caller's `action` buffer holds on entry (clamped into the box): a
    /// warm start, e.g. the maximizer found for the same state at the previous iteration.
    GivenAction,
}

/// Settings of [`ProjectedLbfgs`], checked once by [`ProjectedLbfgs::new`].
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LbfgsSettings {
    /// Number of starting points, at least 1: the first start, then `starts − 1`
    /// uniform random points of the box (chosen among `candidates`).
    pub starts: usize,
    /// L-BFGS iterations per start, at least 1.
    pub max_iters: u64,
    /// q evaluations per start, at least 1: ends a start whose line searches stall
    /// (argmin's line searches have no iteration limit of their own).
    pub max_evaluations: usize,
    /// Stop a start when the norm of ∇ᵤq / max(1, |q|) (gradient in the unconstrained
    /// variables, relative to the size of q at the start's first point) falls below
    /// this; finite and ≥ 0.
    pub gradient_tolerance: f64,
    /// Stop a start when an iteration changes q by less than this, relative to
    /// max(1, |q|) at the start's first point; finite and ≥ 0. The default, 1e-7, is
    /// about the resolution of an f32 network's output.
    pub cost_tolerance: f64,
    /// Number of (s, y) pairs L-BFGS keeps, at least 1.
    pub memory: usize,
    pub line_search: LineSearchKind,
    pub first_start: FirstStart,
    /// Uniform random actions screened (by q alone, in one batched evaluation) to choose
    /// the other `starts − 1` starting points: best first, skipping those close to a
    /// start already chosen. With no more candidates than `starts − 1`, the random
    /// starts are taken unscreened. Screened candidates count as evaluations.
    pub candidates: usize,
    /// q evaluations allowed to the finish in the action space, the clamp onto the
    /// bounds and the projected-gradient steps (0: no finish).
    pub projected_steps: usize,
}

impl Default for LbfgsSettings {
    /// 4 starts (the box centre and 3 chosen among 32 random candidates), 50 iterations
    /// and 200 q evaluations each, relative gradient tolerance 1e-6 and cost tolerance
    /// 1e-7, memory 10 (scipy's), Moré–Thuente, at most 10 evaluations to finish.
    fn default() -> Self {
        LbfgsSettings {
            starts: 4,
            max_iters: 50,
            max_evaluations: 200,
            gradient_tolerance: 1e-6,
            cost_tolerance: 1e-7,
            memory: 10,
            line_search: LineSearchKind::MoreThuente,
            first_start: FirstStart::BoxCentre,
            candidates: 32,
            projected_steps: 10,
        }
    }
}

impl LbfgsSettings {
    /// The defaults with tolerances for a q computed exactly in f64 (a quadratic, a
    /// linear-in-features model): gradient tolerance 1e-10 and no cost tolerance, so each
    /// start runs to a stationary point rather than to the resolution of an f32 network.
    pub fn precise() -> Self {
        LbfgsSettings {
            gradient_tolerance: 1e-10,
            cost_tolerance: 0.0,
            ..LbfgsSettings::default()
        }
    }

    /// Check every field, naming the first bad one.
    pub fn check(&self) -> Result<()> {
        if self.starts == 0 {
            return Err(Error::invalid("lbfgs.starts", "must be at least 1"));
        }
        if self.max_iters == 0 {
            return Err(Error::invalid("lbfgs.max_iters", "must be at least 1"));
        }
        if self.max_evaluations == 0 {
            return Err(Error::invalid(
                "lbfgs.max_evaluations",
                "must be at least 1",
            ));
        }
        if self.memory == 0 {
            return Err(Error::invalid("lbfgs.memory", "must be at least 1"));
        }
        for (field, value) in [
            ("lbfgs.gradient_tolerance", self.gradient_tolerance),
            ("lbfgs.cost_tolerance", self.cost_tolerance),
        ] {
            if !(value.is_finite() && value >= 0.0) {
                return Err(Error::invalid(
                    field,
                    format!("{value} is not finite and ≥ 0"),
                ));
            }
        }
        Ok(())
    }
}

/// How one action component maps from its unconstrained variable (module docs).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Coordinate {
    Interval { mid: f64, half: f64 },
    Lower { low: f64 },
    Upper { high: f64 },
    Free,
}

/// Warm starts and random points on a bound are moved this far inside (as a fraction of
/// the half-width, or in action units for one-sided bounds), where da/du ≠ 0, so that
/// L-BFGS is not started on a stationary point of the change of variables.
const INWARD: f64 = 1e-3;
/// How close to a bound (as a fraction of the interval's width, at least 1) the finish
/// puts a component onto it.
const SNAP: f64 = 1e-6;

impl Coordinate {
    pub(super) fn new(low: f64, high: f64) -> Self {
        match (low.is_finite(), high.is_finite()) {
            (true, true) => Coordinate::Interval {
                // Halves first: (low + high)/2 may overflow.
                mid: low / 2.0 + high / 2.0,
                half: high / 2.0 - low / 2.0,
            },
            (true, false) => Coordinate::Lower { low },
            (false, true) => Coordinate::Upper { high },
            (false, false) => Coordinate::Free,
        }
    }

    pub(super) fn action(self, u: f64) -> f64 {
        match self {
            Coordinate::Interval { mid, half } => mid + half * u.sin(),
            Coordinate::Lower { low } => low + u * u,
            Coordinate::Upper { high } => high - u * u,
            Coordinate::Free => u,
        }
    }

    /// da/du.
    pub(super) fn derivative(self, u: f64) -> f64 {
        match self {
            Coordinate::Interval { half, .. } => half * u.cos(),
            Coordinate::Lower { .. } => 2.0 * u,
            Coordinate::Upper { .. } => -2.0 * u,
            Coordinate::Free => 1.0,
        }
    }

    /// A `u` mapping to `a` (or to a point just inside the bound if `a` is on it).
    pub(super) fn unconstrained(self, a: f64) -> f64 {
        match self {
            Coordinate::Interval { half: 0.0, .. } => 0.0,
            Coordinate::Interval { mid, half } => {
                ((a - mid) / half).clamp(INWARD - 1.0, 1.0 - INWARD).asin()
            }
            Coordinate::Lower { low } => (a - low).max(INWARD).sqrt(),
            Coordinate::Upper { high } => (high - a).max(INWARD).sqrt(),
            Coordinate::Free => a,
        }
    }

    pub(super) fn centre(self) -> f64 {
        match self {
            Coordinate::Interval { mid, .. } => mid,
            Coordinate::Lower { low } => low + 1.0,
            Coordinate::Upper { high } => high - 1.0,
            Coordinate::Free => 0.0,
        }
    }

    /// A random action component: uniform on an interval, a standard normal draw
    /// (folded onto the half-line) otherwise.
    pub(super) fn random(self, rng: &mut Rng) -> f64 {
        match self {
            Coordinate::Interval { mid, half } => mid + half * rng.gen_range(-1.0..=1.0),
            Coordinate::Lower { low } => low + rng.sample::<f64, _>(StandardNormal).abs(),
            Coordinate::Upper { high } => high - rng.sample::<f64, _>(StandardNormal).abs(),
            Coordinate::Free => rng.sample(StandardNormal),
        }
    }
}

/// Multi-start L-BFGS (argmin) over a box of actions, through the change of variables of
/// the module documentation, finished by a clamp onto the bounds and projected-gradient
/// steps.
#[derive(Clone, Debug)]
pub struct ProjectedLbfgs {
    space: ActionSpace,
    low: Vec<f64>,
    high: Vec<f64>,
    coordinates: Vec<Coordinate>,
    settings: LbfgsSettings,
}

impl ProjectedLbfgs {
    /// A maximizer over `space`, which must be an [`ActionSpace::Box`] with `low ≤ high`
    /// componentwise (infinite bounds allowed, NaN not).
    pub fn new(space: ActionSpace, settings: LbfgsSettings) -> Result<Self> {
        settings.check()?;
        let (low, high) = match &space {
            ActionSpace::Box { low, high } => (low.clone(), high.clone()),
            ActionSpace::Integer(_) => {
                return Err(Error::invalid(
                    "lbfgs.action_space",
                    "L-BFGS needs a box of real actions, not an integer space",
                ))
            }
        };
        check_box(&low, &high)?;
        let coordinates = low
            .iter()
            .zip(&high)
            .map(|(&l, &h)| Coordinate::new(l, h))
            .collect();
        Ok(ProjectedLbfgs {
            space,
            low,
            high,
            coordinates,
            settings,
        })
    }

    pub fn settings(&self) -> &LbfgsSettings {
        &self.settings
    }

    /// Write the first starting action into `ws.start` (which holds the caller's action).
    fn first_start(&self, ws: &mut LbfgsWorkspace) -> Result<()> {
        match self.settings.first_start {
            FirstStart::BoxCentre => {
                for (a, c) in ws.start.iter_mut().zip(&self.coordinates) {
                    *a = c.centre();
                }
            }
            FirstStart::GivenAction => {
                if let Some(i) = ws.start.iter().position(|a| !a.is_finite()) {
                    return Err(Error::invalid(
                        "lbfgs: warm-start action",
                        format!("component {i} is {}, not a finite number", ws.start[i]),
                    ));
                }
                for ((a, &l), &h) in ws.start.iter_mut().zip(&self.low).zip(&self.high) {
                    *a = a.clamp(l, h);
                }
            }
        }
        Ok(())
    }

    /// Draw the random candidates and choose the other `starts − 1` starting points
    /// among them into `ws.chosen`: by value, best first, but skipping a candidate within
    /// the exclusion distance of the first start or of one already chosen, so that the
    /// starts spread over several basins instead of crowding around the best one (then,
    /// if too few are far enough apart, the best of the rest).
    fn rank_candidates<Q: QFunction>(
        &self,
        q: &Q,
        q_ws: &mut Q::Workspace,
        ws: &mut LbfgsWorkspace,
        state: &[f64],
        rng: &mut Rng,
    ) -> Result<()> {
        let dim = self.coordinates.len();
        let needed = self.settings.starts - 1;
        let count = self.settings.candidates.max(needed);
        ws.candidates.resize(count * dim, 0.0);
        ws.candidate_values.resize(count, 0.0);
        ws.order.clear();
        ws.order.extend(0..count);
        for point in ws.candidates.chunks_exact_mut(dim.max(1)) {
            for (a, c) in point.iter_mut().zip(&self.coordinates) {
                *a = c.random(rng);
            }
        }
        if count > needed {
            q.values_at_actions(q_ws, state, &ws.candidates, &mut ws.candidate_values)?;
            ws.evaluations += count;
            let values = &ws.candidate_values;
            let key = |i: usize| {
                if values[i].is_nan() {
                    f64::NEG_INFINITY
                } else {
                    values[i]
                }
            };
            // Best first; equal values keep their drawing order, so the result is a
            // function of the stream alone.
            ws.order
                .sort_unstable_by(|&i, &j| key(j).total_cmp(&key(i)).then(i.cmp(&j)));
        }
        // Half the side of a cube holding 1/needed of the box, in units of each
        // component's width (1 for unbounded components).
        let radius = 0.5 * (needed as f64).powf(-1.0 / dim.max(1) as f64);
        ws.chosen.clear();
        for k in 0..count {
            if ws.chosen.len() == needed {
                break;
            }
            let i = ws.order[k];
            let point = &ws.candidates[i * dim..(i + 1) * dim];
            let far = self.spread(point, &ws.start) > radius
                && ws
                    .chosen
                    .iter()
                    .all(|&j| self.spread(point, &ws.candidates[j * dim..(j + 1) * dim]) > radius);
            if far {
                ws.chosen.push(i);
            }
        }
        for k in 0..count {
            if ws.chosen.len() == needed {
                break;
            }
            if !ws.chosen.contains(&ws.order[k]) {
                ws.chosen.push(ws.order[k]);
            }
        }
        Ok(())
    }

    /// max over components of |a − b| / width (width 1 for unbounded or empty intervals).
    fn spread(&self, a: &[f64], b: &[f64]) -> f64 {
        let mut largest: f64 = 0.0;
        for i in 0..a.len() {
            let width = self.high[i] - self.low[i];
            let width = if width.is_finite() && width > 0.0 {
                width
            } else {
                1.0
            };
            largest = largest.max((a[i] - b[i]).abs() / width);
        }
        largest
    }

    /// One L-BFGS run from `ws.start`, recording every evaluation in `ws`.
    fn run_start<Q: QFunction>(
        &self,
        q: &Q,
        q_ws: &mut Q::Workspace,
        ws: &mut LbfgsWorkspace,
        state: &[f64],
    ) -> Result<()> {
        let u0: Array1<f64> = ws
            .start
            .iter()
            .zip(&self.coordinates)
            .map(|(&a, c)| c.unconstrained(a))
            .collect();
        let s = &self.settings;
        ws.cache_valid = false;
        ws.start_evaluations = 0;
        let objective = Objective {
            q,
            state,
            coordinates: &self.coordinates,
            low: &self.low,
            high: &self.high,
            max_evaluations: s.max_evaluations,
            scratch: RefCell::new(Scratch { q_ws, ws }),
        };
        let lbfgs_error = |e: argmin::core::Error| Error::Numerical {
            context: "lbfgs settings".into(),
            reason: e.to_string(),
        };
        let outcome = match s.line_search {
            LineSearchKind::MoreThuente => run_executor(
                objective,
                LBFGS::new(
                    // L-BFGS-B's line search constants (scipy, MINPACK-2 dcsrch): argmin's
                    // default width tolerance 1e-10 spends dozens of evaluations bracketing
                    // the kinks of a ReLU network.
                    MoreThuenteLineSearch::new()
                        .with_c(1e-3, 0.9)
                        .and_then(|l| l.with_width_tolerance(0.1))
                        .map_err(lbfgs_error)?,
                    s.memory,
                )
                .with_tolerance_grad(s.gradient_tolerance)
                .and_then(|l| l.with_tolerance_cost(s.cost_tolerance))
                .map_err(lbfgs_error)?,
                u0,
                s.max_iters,
            ),
            LineSearchKind::HagerZhang => run_executor(
                objective,
                LBFGS::new(HagerZhangLineSearch::new(), s.memory)
                    .with_tolerance_grad(s.gradient_tolerance)
                    .and_then(|l| l.with_tolerance_cost(s.cost_tolerance))
                    .map_err(lbfgs_error)?,
                u0,
                s.max_iters,
            ),
        };
        // A failure of q itself is recorded in the workspace; report it as q reported it.
        // Any other error is argmin giving up on this start, whose best point stands.
        if let Some(error) = ws.failure.take() {
            return Err(error);
        }
        drop(outcome);
        Ok(())
    }

    /// The finish in the action space, from the best action found, within
    /// `projected_steps` q evaluations. First the clamp: components within a hair of a
    /// bound whose slope points out of the box go onto the bound (L-BFGS approaches a face
    /// as sin u → ±1 and stops a rounding short of it). Then projected-gradient ascent
    /// a' = clamp(a + t·∇ₐq) from a small step t, doubled after every improvement, ending
    /// at the first trial that does not improve q by Armijo's sufficient increase.
    fn finish_projected<Q: QFunction>(
        &self,
        q: &Q,
        q_ws: &mut Q::Workspace,
        ws: &mut LbfgsWorkspace,
        state: &[f64],
    ) -> Result<()> {
        let mut budget = self.settings.projected_steps;
        let mut snapped = false;
        for i in 0..ws.trial.len() {
            let (a, g, low, high) = (
                ws.best_action[i],
                ws.best_gradient[i],
                self.low[i],
                self.high[i],
            );
            let width = high - low;
            let hair = SNAP
                * if width.is_finite() {
                    width.max(1.0)
                } else {
                    1.0
                };
            ws.trial[i] = if g > 0.0 && high - a <= hair {
                high
            } else if g < 0.0 && a - low <= hair {
                low
            } else {
                a
            };
            snapped |= ws.trial[i] != a;
        }
        if snapped && budget > 0 {
            budget -= 1;
            self.try_trial(q, q_ws, ws, state, 0.0)?;
        }

        let largest_slope = ws.best_gradient.iter().fold(0.0f64, |m, g| m.max(g.abs()));
        if largest_slope == 0.0 || !largest_slope.is_finite() {
            return Ok(());
        }
        let narrowest = self
            .low
            .iter()
            .zip(&self.high)
            .map(|(l, h)| h - l)
            .filter(|w| w.is_finite() && *w > 0.0)
            .fold(1.0, f64::min);
        // A first move of 1/1000 of the narrowest width (or unit): small enough to be an
        // improvement wherever the gradient is informative.
        let mut step = 1e-3 * narrowest / largest_slope;
        while budget > 0 {
            let mut ascent = 0.0;
            for i in 0..ws.trial.len() {
                let a = ws.best_action[i];
                let t = (a + step * ws.best_gradient[i]).clamp(self.low[i], self.high[i]);
                ascent += ws.best_gradient[i] * (t - a);
                ws.trial[i] = t;
            }
            if ascent <= 0.0 {
                // Every ascent direction leaves the box: a KKT point of the box.
                return Ok(());
            }
            budget -= 1;
            if !self.try_trial(q, q_ws, ws, state, 1e-4 * ascent)? {
                return Ok(());
            }
            step *= 2.0;
        }
        Ok(())
    }

    /// Evaluate q at `ws.trial`; make it the best action if it beats the best value by
    /// at least `required`. Whether it did.
    fn try_trial<Q: QFunction>(
        &self,
        q: &Q,
        q_ws: &mut Q::Workspace,
        ws: &mut LbfgsWorkspace,
        state: &[f64],
        required: f64,
    ) -> Result<bool> {
        let value = q.value_and_action_gradient(q_ws, state, &ws.trial, &mut ws.gradient)?;
        ws.evaluations += 1;
        let improves = value.is_finite()
            && value >= ws.best_value + required
            && ws.gradient.iter().all(|g| g.is_finite());
        if improves {
            ws.best_value = value;
            ws.best_action.copy_from_slice(&ws.trial);
            ws.best_gradient.copy_from_slice(&ws.gradient);
        }
        Ok(improves)
    }
}

pub(super) fn check_box(low: &[f64], high: &[f64]) -> Result<()> {
    if low.len() != high.len() {
        return Err(Error::invalid(
            "lbfgs.action_space",
            format!("low has {} components, high {}", low.len(), high.len()),
        ));
    }
    for (i, (&l, &h)) in low.iter().zip(high).enumerate() {
        if l.is_nan() || h.is_nan() || l > h || l == f64::INFINITY || h == f64::NEG_INFINITY {
            return Err(Error::invalid(
                "lbfgs.action_space",
                format!("component {i} has bounds [{l}, {h}], not an interval"),
            ));
        }
    }
    Ok(())
}

type State = IterState<Array1<f64>, Array1<f64>, (), (), (), f64>;

fn run_executor<O, S>(
    objective: O,
    solver: S,
    u0: Array1<f64>,
    max_iters: u64,
) -> Result<(), argmin::core::Error>
where
    S: Solver<O, State>,
{
    Executor::new(objective, solver)
        .configure(|state| state.param(u0).max_iters(max_iters))
        .ctrlc(false)
        .run()
        .map(drop)
}

/// Per-thread buffers of [`ProjectedLbfgs`], and the record of one maximization.
#[derive(Debug)]
pub struct LbfgsWorkspace {
    start: Vec<f64>,
    action: Vec<f64>,
    gradient: Vec<f64>,
    trial: Vec<f64>,
    best_action: Vec<f64>,
    best_gradient: Vec<f64>,
    best_value: f64,
    /// Random candidate starts (`count × dim`), their q values, their ranking, and the
    /// ones chosen as starts.
    candidates: Vec<f64>,
    candidate_values: Vec<f64>,
    order: Vec<usize>,
    chosen: Vec<usize>,
    /// The last point evaluated and −∇ᵤq there: argmin asks for the cost and then the
    /// gradient at the same point, and one q evaluation gives both.
    cached_u: Array1<f64>,
    cached_gradient: Array1<f64>,
    cache_valid: bool,
    /// max(1, |q|) at the current start's first point.
    scale: f64,
    evaluations: usize,
    start_evaluations: usize,
    failure: Option<Error>,
}

impl LbfgsWorkspace {
    fn new(dim: usize) -> Self {
        LbfgsWorkspace {
            start: vec![0.0; dim],
            action: vec![0.0; dim],
            gradient: vec![0.0; dim],
            trial: vec![0.0; dim],
            best_action: vec![0.0; dim],
            best_gradient: vec![0.0; dim],
            best_value: f64::NEG_INFINITY,
            candidates: Vec::new(),
            candidate_values: Vec::new(),
            order: Vec::new(),
            chosen: Vec::new(),
            cached_u: Array1::zeros(dim),
            cached_gradient: Array1::zeros(dim),
            cache_valid: false,
            scale: 1.0,
            evaluations: 0,
            start_evaluations: 0,
            failure: None,
        }
    }
}

/// Mutable state an argmin objective needs behind `&self`.
struct Scratch<'a, Q: QFunction> {
    q_ws: &'a mut Q::Workspace,
    ws: &'a mut LbfgsWorkspace,
}

/// −q(s, a(u)) as a function of the unconstrained variables, for argmin (which minimizes).
struct Objective<'a, Q: QFunction> {
    q: &'a Q,
    state: &'a [f64],
    coordinates: &'a [Coordinate],
    low: &'a [f64],
    high: &'a [f64],
    max_evaluations: usize,
    scratch: RefCell<Scratch<'a, Q>>,
}

impl<Q: QFunction> Objective<'_, Q> {
    /// The cost −q/scale and its gradient ∇ᵤ(−q)/scale at `u`, caching the gradient and
    /// keeping the best action. `scale` = max(1, |q|) at the start's first point, fixed
    /// for the start, makes the tolerances relative to the size of q.
    fn evaluate(&self, u: &Array1<f64>) -> Result<f64, argmin::core::Error> {
        if u.iter().any(|x| !x.is_finite()) {
            // L-BFGS broke down (a zero step makes its scaling 0/0); this start is over,
            // the best point so far stands.
            return Err(argmin::core::Error::msg(
                "L-BFGS produced a non-finite iterate",
            ));
        }
        let mut scratch = self.scratch.borrow_mut();
        let Scratch { q_ws, ws } = &mut *scratch;
        if ws.start_evaluations >= self.max_evaluations {
            return Err(argmin::core::Error::msg(
                "evaluation budget of the start spent",
            ));
        }
        ws.start_evaluations += 1;
        for (i, (c, &ui)) in self.coordinates.iter().zip(u).enumerate() {
            // sin and squares can land one rounding outside the bounds.
            ws.action[i] = c.action(ui).clamp(self.low[i], self.high[i]);
        }
        let value =
            match self
                .q
                .value_and_action_gradient(q_ws, self.state, &ws.action, &mut ws.gradient)
            {
                Ok(v) => v,
                Err(e) => return Err(ws.fail(e)),
            };
        ws.evaluations += 1;
        if !value.is_finite() || ws.gradient.iter().any(|g| !g.is_finite()) {
            let error = Error::Numerical {
                context: "lbfgs".into(),
                reason: format!(
                    "q or its action gradient is not finite at action {:?} (q = {value}); \
                     is q bounded above on the action space?",
                    ws.action
                ),
            };
            return Err(ws.fail(error));
        }
        if value > ws.best_value {
            ws.best_value = value;
            ws.best_action.copy_from_slice(&ws.action);
            ws.best_gradient.copy_from_slice(&ws.gradient);
        }
        if ws.start_evaluations == 1 {
            ws.scale = value.abs().max(1.0);
        }
        let cost = -value / ws.scale;
        ws.cached_u.assign(u);
        for (i, (c, &ui)) in self.coordinates.iter().zip(u).enumerate() {
            ws.cached_gradient[i] = -ws.gradient[i] * c.derivative(ui) / ws.scale;
        }
        ws.cache_valid = true;
        Ok(cost)
    }
}

impl LbfgsWorkspace {
    /// Keep `error` for the caller and give argmin an error that stops the run.
    fn fail(&mut self, error: Error) -> argmin::core::Error {
        let message = error.to_string();
        self.failure.get_or_insert(error);
        argmin::core::Error::msg(message)
    }
}

impl<Q: QFunction> CostFunction for Objective<'_, Q> {
    type Param = Array1<f64>;
    type Output = f64;

    fn cost(&self, u: &Array1<f64>) -> Result<f64, argmin::core::Error> {
        self.evaluate(u)
    }
}

impl<Q: QFunction> Gradient for Objective<'_, Q> {
    type Param = Array1<f64>;
    type Gradient = Array1<f64>;

    fn gradient(&self, u: &Array1<f64>) -> Result<Array1<f64>, argmin::core::Error> {
        {
            let scratch = self.scratch.borrow();
            if scratch.ws.cache_valid && scratch.ws.cached_u == u {
                return Ok(scratch.ws.cached_gradient.clone());
            }
        }
        self.evaluate(u)?;
        Ok(self.scratch.borrow().ws.cached_gradient.clone())
    }
}

impl Maximizer for ProjectedLbfgs {
    type Workspace = LbfgsWorkspace;

    fn name(&self) -> &str {
        NAME
    }

    fn action_space(&self) -> &ActionSpace {
        &self.space
    }

    fn workspace(&self) -> LbfgsWorkspace {
        LbfgsWorkspace::new(self.low.len())
    }

    fn maximize<Q: QFunction>(
        &self,
        q: &Q,
        q_ws: &mut Q::Workspace,
        ws: &mut LbfgsWorkspace,
        state: &[f64],
        action: &mut [f64],
        rng: &mut Rng,
    ) -> Result<Maximum> {
        check_call(NAME, &self.space, q, state, action)?;
        if ws.start.len() != self.low.len() {
            *ws = LbfgsWorkspace::new(self.low.len());
        }
        ws.best_value = f64::NEG_INFINITY;
        ws.evaluations = 0;
        ws.cache_valid = false;
        ws.failure = None;
        ws.start.copy_from_slice(action);
        self.first_start(ws)?;
        self.run_start(q, q_ws, ws, state)?;
        if self.settings.starts > 1 {
            self.rank_candidates(q, q_ws, ws, state, rng)?;
            let dim = self.coordinates.len();
            for k in 0..self.settings.starts - 1 {
                let i = ws.chosen[k];
                ws.start
                    .copy_from_slice(&ws.candidates[i * dim..(i + 1) * dim]);
                self.run_start(q, q_ws, ws, state)?;
            }
        }
        if ws.best_value == f64::NEG_INFINITY {
            return Err(Error::Numerical {
                context: NAME.into(),
                reason: "L-BFGS evaluated no action with a finite q".into(),
            });
        }
        self.finish_projected(q, q_ws, ws, state)?;
        action.copy_from_slice(&ws.best_action);
        Ok(Maximum {
            value: ws.best_value,
            evaluations: ws.evaluations,
        })
    }
}
