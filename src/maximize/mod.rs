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

mod continuous;
mod enumerate;
mod grid;
mod milp;
pub mod quadratic;
mod relu_milp;

pub use continuous::{FirstStart, LbfgsSettings, LbfgsWorkspace, LineSearchKind, ProjectedLbfgs};
pub use enumerate::{EnumerationMaximizer, EnumerationWorkspace};
pub use grid::{GridMaximizer, GridWorkspace};
pub use milp::{MilpMaximizer, MilpWorkspace};
pub use quadratic::QuadraticArgmax;
pub use relu_milp::{MilpBackend, ReluMilpMaximizer, ReluMilpWorkspace, ReluNetwork};

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
