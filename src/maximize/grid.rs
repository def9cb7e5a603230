//! `maximize(q(s', ·; θ))` for a one-dimensional action by evaluating q on a dense grid:
//! slow but free of local maxima, the reference the gradient maximizer is tested against
//! (its error is at most the slope of q times half the spacing).

use super::{check_call, Maximizer, Maximum, QFunction};
use crate::env::ActionSpace;
use crate::error::{Error, Result};
use crate::rng::Rng;

const NAME: &str = "grid";

/// `points` evenly spaced actions from `low` to `high` inclusive; the first best wins ties.
#[derive(Clone, Debug)]
pub struct GridMaximizer {
    space: ActionSpace,
    low: f64,
    high: f64,
    points: usize,
}

impl GridMaximizer {
    /// A grid of `points ≥ 2` actions over `space`, a one-dimensional box with finite
    /// bounds `low ≤ high`.
    pub fn new(space: ActionSpace, points: usize) -> Result<Self> {
        let (low, high) = match &space {
            ActionSpace::Box { low, high } if low.len() == 1 && high.len() == 1 => {
                (low[0], high[0])
            }
            _ => {
                return Err(Error::invalid(
                    "grid.action_space",
                    "a grid maximizer needs a one-dimensional box of actions",
                ))
            }
        };
        if !(low.is_finite() && high.is_finite() && low <= high) {
            return Err(Error::invalid(
                "grid.action_space",
                format!("bounds [{low}, {high}] are not a finite interval"),
            ));
        }
        if points < 2 {
            return Err(Error::invalid(
                "grid.points",
                format!("{points}: a grid needs both ends, at least 2 points"),
            ));
        }
        Ok(GridMaximizer {
            space,
            low,
            high,
            points,
        })
    }

    /// The `index`-th grid point; the last one is `high` exactly.
    fn point(&self, index: usize) -> f64 {
        if index + 1 == self.points {
            return self.high;
        }
        let fraction = index as f64 / (self.points - 1) as f64;
        self.low + fraction * (self.high - self.low)
    }
}

/// The grid maximizer keeps no per-thread state.
#[derive(Clone, Copy, Debug, Default)]
pub struct GridWorkspace;

impl Maximizer for GridMaximizer {
    type Workspace = GridWorkspace;

    fn name(&self) -> &str {
        NAME
    }

    fn action_space(&self) -> &ActionSpace {
        &self.space
    }

    fn workspace(&self) -> GridWorkspace {
        GridWorkspace
    }

    fn maximize<Q: QFunction>(
        &self,
        q: &Q,
        q_ws: &mut Q::Workspace,
        _ws: &mut GridWorkspace,
        state: &[f64],
        action: &mut [f64],
        _rng: &mut Rng,
    ) -> Result<Maximum> {
        check_call(NAME, &self.space, q, state, action)?;
        let mut best = (f64::NEG_INFINITY, self.low);
        for index in 0..self.points {
            let a = self.point(index);
            let value = q.value(q_ws, state, &[a])?;
            if value.is_nan() {
                return Err(Error::Numerical {
                    context: NAME.into(),
                    reason: format!("q is NaN at action {a}"),
                });
            }
            if value > best.0 {
                best = (value, a);
            }
        }
        action[0] = best.1;
        Ok(Maximum {
            value: best.0,
            evaluations: self.points,
        })
    }
}
