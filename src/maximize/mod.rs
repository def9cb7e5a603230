//! The `maximize` routine of the chapter's `fitted-q-iteration-explicit`: given a
//! q-function and a fixed next state s', find an action a* maximizing q(s', ·; θ) and its
//! value. The target of FQI is then y = r + γ·q(s', a*; θ).
//!
//! One abstraction, several solvers, chosen by the action space and the form of q:
//! gradient-based continuous maximization on argmin (box actions), a dense grid (1-D
//! reference), a MILP through good_lp (integer actions, q affine in the action), an exact
//! MILP for ReLU networks (box or integer actions, q nonconcave), and exhaustive
//! enumeration (small integer action sets, to check the others).
//!
//! Everything here is `Sync` so FQI can compute the targets of all base points with rayon;
//! per-thread mutable scratch lives in the `Workspace` types, and randomness (multi-start
//! points) comes from a caller-provided stream, so results do not depend on thread count.

mod batched;
mod continuous;
mod enumerate;
mod grid;
mod milp;
pub mod quadratic;
mod relu_milp;

pub use batched::{BatchStats, BatchedLbfgs, BatchedLbfgsSettings, BatchedWorkspace};
pub use continuous::{FirstStart, LbfgsSettings, LbfgsWorkspace, LineSearchKind, ProjectedLbfgs};
pub use enumerate::{EnumerationMaximizer, EnumerationWorkspace};
pub use grid::{GridMaximizer, GridWorkspace};
pub use milp::{MilpMaximizer, MilpWorkspace};
pub use quadratic::QuadraticArgmax;
pub use relu_milp::{MilpBackend, ReluMilpMaximizer, ReluMilpWorkspace, ReluNetwork};

use rayon::prelude::*;

use crate::env::ActionSpace;
use crate::error::{Error, Result};
use crate::rng::Rng;

/// A q-function q(s, a; θ) for fixed parameters θ, as a maximizer sees it.
///
/// States and actions are f64 whatever the approximator computes in: the maximizers and
/// the ground truth work in f64, networks convert at the boundary.
pub trait QFunction: Sync {
    /// Per-thread scratch (network activations, feature buffers).
    type Workspace: Send;

    fn state_dim(&self) -> usize;
    fn action_dim(&self) -> usize;
    fn workspace(&self) -> Self::Workspace;

    /// q(s, a).
    fn value(&self, ws: &mut Self::Workspace, state: &[f64], action: &[f64]) -> Result<f64>;

    /// q(s, a), writing ∇ₐq(s, a) into `gradient` (length `action_dim`).
    fn value_and_action_gradient(
        &self,
        ws: &mut Self::Workspace,
        state: &[f64],
        action: &[f64],
        gradient: &mut [f64],
    ) -> Result<f64>;

    /// q(s, aᵢ) for every row aᵢ of `actions` (`rows × action_dim`, row-major) at one
    /// state, into `values` (`rows` entries): how a maximizer screens many candidate
    /// actions. The default evaluates one action at a time; approximators that evaluate
    /// rows together (networks: one forward pass) override it.
    fn values_at_actions(
        &self,
        ws: &mut Self::Workspace,
        state: &[f64],
        actions: &[f64],
        values: &mut [f64],
    ) -> Result<()> {
        let dim = self.action_dim();
        if actions.len() != values.len() * dim {
            return Err(Error::invalid(
                "actions",
                format!(
                    "{} values, expected {} rows × {dim}",
                    actions.len(),
                    values.len()
                ),
            ));
        }
        for (i, value) in values.iter_mut().enumerate() {
            *value = self.value(ws, state, &actions[i * dim..(i + 1) * dim])?;
        }
        Ok(())
    }

    /// q(sᵢ, aᵢ) and ∇ₐq(sᵢ, aᵢ) for every row i: `states` is `rows × state_dim`,
    /// `actions` and `gradients` are `rows × action_dim` (row-major), `values` has `rows`
    /// entries. How [`BatchedLbfgs`] advances many searches at once. The default evaluates
    /// one row at a time; networks override it with one forward and one backward pass.
    fn values_and_action_gradients(
        &self,
        ws: &mut Self::Workspace,
        states: &[f64],
        actions: &[f64],
        values: &mut [f64],
        gradients: &mut [f64],
    ) -> Result<()> {
        let (n, m, rows) = (self.state_dim(), self.action_dim(), values.len());
        if states.len() != rows * n || actions.len() != rows * m || gradients.len() != rows * m {
            return Err(Error::invalid(
                "values_and_action_gradients",
                format!(
                    "{} state, {} action and {} gradient values for {rows} rows of {n} + {m}",
                    states.len(),
                    actions.len(),
                    gradients.len()
                ),
            ));
        }
        for (i, value) in values.iter_mut().enumerate() {
            *value = self.value_and_action_gradient(
                ws,
                &states[i * n..(i + 1) * n],
                &actions[i * m..(i + 1) * m],
                &mut gradients[i * m..(i + 1) * m],
            )?;
        }
        Ok(())
    }

    /// If q(s, ·) is affine in the action, q(s, a) = c₀ + cᵀa: write c into `coefficients`
    /// and return `Some(c₀)`. `None` when q is not affine in the action (a MILP cannot state it).
    fn affine_in_action(
        &self,
        _ws: &mut Self::Workspace,
        _state: &[f64],
        _coefficients: &mut [f64],
    ) -> Result<Option<f64>> {
        Ok(None)
    }

    /// If q is a network of ReLU hidden layers with a linear output on [s, a], that
    /// network: its maximization over actions is then a MILP ([`ReluMilpMaximizer`]).
    fn relu_network(&self) -> Option<ReluNetwork<'_>> {
        None
    }
}

/// What a maximization found, besides the action written into the caller's buffer.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Maximum {
    /// q(s', a*).
    pub value: f64,
    /// Number of q (or q and gradient) evaluations, or solver calls for a MILP.
    pub evaluations: usize,
}

/// A `maximize(q(s', ·; θ))` routine over a fixed action space.
pub trait Maximizer: Sync {
    /// Per-thread scratch of the solver.
    type Workspace: Send;

    /// A short name for tables and logs ("lbfgs", "grid", "milp", "enumerate").
    fn name(&self) -> &str;
    fn action_space(&self) -> &ActionSpace;
    fn workspace(&self) -> Self::Workspace;

    /// Write a maximizing action of q(state, ·) into `action` and return its value.
    /// `rng` is the stream for this call (multi-start points); deterministic solvers ignore it.
    fn maximize<Q: QFunction>(
        &self,
        q: &Q,
        q_ws: &mut Q::Workspace,
        ws: &mut Self::Workspace,
        state: &[f64],
        action: &mut [f64],
        rng: &mut Rng,
    ) -> Result<Maximum>;

    /// `maximize` at every row of `states` (`rows × state_dim`): each maximizer into its
    /// row of `actions` (`rows × dim`, read first as the rows' given actions, as
    /// `maximize` reads its buffer) and q there into `values`; row i draws from
    /// `streams(i)`. Returns the q evaluations. The default calls [`Maximizer::maximize`]
    /// row by row over the rayon pool; a solver that gains from evaluating many states
    /// together ([`BatchedLbfgs`]) overrides it.
    fn maximize_many<Q: QFunction, S: Fn(usize) -> Rng + Sync>(
        &self,
        q: &Q,
        states: &[f64],
        actions: &mut [f64],
        values: &mut [f64],
        streams: S,
    ) -> Result<usize> {
        check_rows(self.name(), self.action_space(), q, states, actions, values)?;
        let (n, m) = (q.state_dim(), self.action_space().dim());
        values
            .par_iter_mut()
            .zip(actions.par_chunks_mut(m))
            .enumerate()
            .map_init(
                || (q.workspace(), self.workspace()),
                |(q_ws, ws), (i, (value, action))| -> Result<usize> {
                    let state = &states[i * n..(i + 1) * n];
                    let max = self.maximize(q, q_ws, ws, state, action, &mut streams(i))?;
                    *value = max.value;
                    Ok(max.evaluations)
                },
            )
            .try_reduce(|| 0, |a, b| Ok(a + b))
    }
}

/// Check the buffers of a [`Maximizer::maximize_many`] call: `values.len()` rows of
/// states and actions, dimensions matching q and the action space.
pub(crate) fn check_rows<Q: QFunction>(
    solver: &str,
    space: &ActionSpace,
    q: &Q,
    states: &[f64],
    actions: &[f64],
    values: &[f64],
) -> Result<()> {
    check_q_actions(solver, space, q)?;
    let (n, m, rows) = (q.state_dim(), space.dim(), values.len());
    for (field, got, width) in [("states", states.len(), n), ("actions", actions.len(), m)] {
        if got != rows * width {
            return Err(Error::invalid(
                format!("{solver}: {field}"),
                format!("{got} values, expected {rows} rows × {width}"),
            ));
        }
    }
    Ok(())
}

/// Check the lengths of one `maximize` call against the q-function and the action space,
/// so that a mismatch is a typed error naming the buffer rather than a panic inside a solver.
pub(crate) fn check_call<Q: QFunction>(
    solver: &str,
    space: &ActionSpace,
    q: &Q,
    state: &[f64],
    action: &[f64],
) -> Result<()> {
    check_q_actions(solver, space, q)?;
    let dim = space.dim();
    if action.len() != dim {
        return Err(Error::invalid(
            format!("{solver}: action"),
            format!(
                "buffer has {} components, the action space has {dim}",
                action.len()
            ),
        ));
    }
    if state.len() != q.state_dim() {
        return Err(Error::invalid(
            format!("{solver}: state"),
            format!("has {} components, q takes {}", state.len(), q.state_dim()),
        ));
    }
    Ok(())
}

/// q takes actions of the action space's dimension.
fn check_q_actions<Q: QFunction>(solver: &str, space: &ActionSpace, q: &Q) -> Result<()> {
    let dim = space.dim();
    if q.action_dim() != dim {
        return Err(Error::invalid(
            format!("{solver}: q"),
            format!(
                "takes actions of {} components, the action space has {dim}",
                q.action_dim()
            ),
        ));
    }
    Ok(())
}
