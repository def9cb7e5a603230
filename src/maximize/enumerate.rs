//! `maximize(q(s', ·; θ))` over a small integer action set by evaluating q at every
//! feasible action: exact for any q, the brute-force ground truth for the MILP.
//!
//! The feasible set is counted once at construction, up to a limit: a space too large to
//! enumerate is an error then, not a maximization that never returns.

use std::ops::ControlFlow;

use super::{check_call, Maximizer, Maximum, QFunction};
use crate::env::allocation::{check_integer_space, for_each_feasible};
use crate::env::{ActionSpace, IntegerSpace};
use crate::error::{Error, Result};
use crate::rng::Rng;

const NAME: &str = "enumerate";

/// Exhaustive search over the feasible points of an [`IntegerSpace`], in the
/// lexicographic order of [`for_each_feasible`]; the first best wins ties.
#[derive(Clone, Debug)]
pub struct EnumerationMaximizer {
    space: ActionSpace,
    integer_space: IntegerSpace,
    feasible: u64,
}

impl EnumerationMaximizer {
    /// An exhaustive maximizer over `space`, which must be well formed, have at least one
    /// feasible action and at most `max_actions`.
    pub fn new(space: IntegerSpace, max_actions: u64) -> Result<Self> {
        check_integer_space(&space)?;
        let mut feasible = 0u64;
        let too_many = for_each_feasible(&space, |_| {
            feasible += 1;
            if feasible > max_actions {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })?;
        if too_many.is_some() {
            return Err(Error::invalid(
                "enumerate.max_actions",
                format!("the integer space has more than {max_actions} feasible actions"),
            ));
        }
        if feasible == 0 {
            return Err(Error::invalid(
                "enumerate.action_space",
                "the integer space has no feasible action",
            ));
        }
        Ok(EnumerationMaximizer {
            space: ActionSpace::Integer(space.clone()),
            integer_space: space,
            feasible,
        })
    }

    /// Number of feasible actions (q evaluations per maximization).
    pub fn feasible_count(&self) -> u64 {
        self.feasible
    }
}

/// The candidate action in f64, reused across calls.
#[derive(Clone, Debug)]
pub struct EnumerationWorkspace {
    candidate: Vec<f64>,
}

impl Maximizer for EnumerationMaximizer {
    type Workspace = EnumerationWorkspace;

    fn name(&self) -> &str {
        NAME
    }

    fn action_space(&self) -> &ActionSpace {
        &self.space
    }

    fn workspace(&self) -> EnumerationWorkspace {
        EnumerationWorkspace {
            candidate: vec![0.0; self.space.dim()],
        }
    }

    fn maximize<Q: QFunction>(
        &self,
        q: &Q,
        q_ws: &mut Q::Workspace,
        ws: &mut EnumerationWorkspace,
        state: &[f64],
        action: &mut [f64],
        _rng: &mut Rng,
    ) -> Result<Maximum> {
        check_call(NAME, &self.space, q, state, action)?;
        ws.candidate.resize(action.len(), 0.0);
        let mut best = f64::NEG_INFINITY;
        let mut evaluations = 0;
        let failure = for_each_feasible(&self.integer_space, |x| {
            for (c, &xi) in ws.candidate.iter_mut().zip(x) {
                *c = xi as f64;
            }
            evaluations += 1;
            match q.value(q_ws, state, &ws.candidate) {
                Ok(value) if value.is_nan() => ControlFlow::Break(Error::Numerical {
                    context: NAME.into(),
                    reason: format!("q is NaN at action {x:?}"),
                }),
                Ok(value) => {
                    // Strictly greater: the first of tied actions is kept. The first
                    // action is always taken, even if q is −∞ everywhere.
                    if value > best || evaluations == 1 {
                        best = value;
                        action.copy_from_slice(&ws.candidate);
                    }
                    ControlFlow::Continue(())
                }
                Err(e) => ControlFlow::Break(e),
            }
        })?;
        if let Some(error) = failure {
            return Err(error);
        }
        Ok(Maximum {
            value: best,
            evaluations,
        })
    }
}
