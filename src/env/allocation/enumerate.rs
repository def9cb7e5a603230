//! Enumeration of the feasible points of an [`IntegerSpace`], without storing them: the
//! brute-force ground truth that a MILP maximizer is compared against.
//!
//! Depth-first search over the components in order, each from its lower to its upper
//! bound, pruning a prefix as soon as some constraint cannot be met whatever the
//! remaining components are (each remaining term at its smallest over the bounds).
//! The leaf test is the same sum, in the same order and with the same tolerance, as
//! [`IntegerSpace::violation`], so the enumeration is exactly the bounds box filtered by
//! `violation`, in lexicographic order.

use std::ops::ControlFlow;

use crate::env::IntegerSpace;
use crate::error::{Error, Result};

/// Slack on `lhs ≤ bound`, the same as [`IntegerSpace::violation`]'s.
const FEASIBILITY_TOLERANCE: f64 = 1e-9;
/// Integers beyond ±2^53 are not exact in f64, in which constraints are evaluated.
const MAX_EXACT_INTEGER: i64 = 1 << 53;

/// Check that `space` is well formed: matching lengths, `lower ≤ upper`, finite
/// coefficients, bounds that f64 represents exactly.
pub fn check_integer_space(space: &IntegerSpace) -> Result<()> {
    let dim = space.lower.len();
    if space.upper.len() != dim {
        return Err(Error::invalid(
            "integer_space.upper",
            format!("has {} entries, lower has {dim}", space.upper.len()),
        ));
    }
    for (i, (&lo, &hi)) in space.lower.iter().zip(&space.upper).enumerate() {
        if lo > hi {
            return Err(Error::invalid(
                "integer_space",
                format!("lower[{i}] = {lo} exceeds upper[{i}] = {hi}"),
            ));
        }
        if lo.abs() > MAX_EXACT_INTEGER || hi.abs() > MAX_EXACT_INTEGER {
            return Err(Error::invalid(
                "integer_space",
                format!("bounds of component {i} exceed ±2^53"),
            ));
        }
    }
    for c in &space.constraints {
        let field = format!("integer_space.constraints[{:?}]", c.name);
        if c.coefficients.len() != dim {
            return Err(Error::invalid(
                field,
                format!(
                    "has {} coefficients, the space has {dim} components",
                    c.coefficients.len()
                ),
            ));
        }
        if c.coefficients.iter().any(|x| !x.is_finite()) || c.bound.is_nan() {
            return Err(Error::invalid(
                field,
                "has a non-finite coefficient or a NaN bound",
            ));
        }
    }
    Ok(())
}

/// The feasible points of an [`IntegerSpace`], one at a time, in lexicographic order.
///
/// [`FeasibleActions::next_action`] lends each point without allocating; the
/// [`Iterator`] implementation returns owned copies.
#[derive(Clone, Debug)]
pub struct FeasibleActions<'a> {
    space: &'a IntegerSpace,
    x: Vec<i64>,
    /// `prefix[k·c + j]`: constraint j's sum over components `0..k` (k = 0..=dim).
    prefix: Vec<f64>,
    /// `rest_min[k·c + j]`: the smallest constraint j's terms over components `k..dim`
    /// can be within the bounds.
    rest_min: Vec<f64>,
    state: Progress,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Progress {
    NotStarted,
    /// The last point returned is in `x`.
    Running,
    Done,
}

/// Enumerate the feasible points of `space` (an error if `space` is malformed).
pub fn enumerate_feasible(space: &IntegerSpace) -> Result<FeasibleActions<'_>> {
    check_integer_space(space)?;
    let dim = space.lower.len();
    let nc = space.constraints.len();
    let mut rest_min = vec![0.0; (dim + 1) * nc];
    for k in (0..dim).rev() {
        for (j, c) in space.constraints.iter().enumerate() {
            let a = c.coefficients[k];
            let smallest = (a * space.lower[k] as f64).min(a * space.upper[k] as f64);
            rest_min[k * nc + j] = rest_min[(k + 1) * nc + j] + smallest;
        }
    }
    Ok(FeasibleActions {
        space,
        x: space.lower.clone(),
        prefix: vec![0.0; (dim + 1) * nc],
        rest_min,
        state: Progress::NotStarted,
    })
}

impl FeasibleActions<'_> {
    /// Set component `k` to `value`; whether some completion of `x[..=k]` may still meet
    /// every constraint.
    fn assign(&mut self, k: usize, value: i64) -> bool {
        self.x[k] = value;
        let nc = self.space.constraints.len();
        let mut ok = true;
        for (j, c) in self.space.constraints.iter().enumerate() {
            let lhs = self.prefix[k * nc + j] + c.coefficients[k] * value as f64;
            self.prefix[(k + 1) * nc + j] = lhs;
            ok &= lhs + self.rest_min[(k + 1) * nc + j] <= c.bound + FEASIBILITY_TOLERANCE;
        }
        ok
    }

    /// The next feasible point, or `None` when all have been returned.
    pub fn next_action(&mut self) -> Option<&[i64]> {
        let dim = self.space.lower.len();
        // `level` is the component to advance next; values below `lower` mean "not tried".
        let mut level = match self.state {
            Progress::Done => return None,
            Progress::Running if dim == 0 => {
                self.state = Progress::Done;
                return None;
            }
            Progress::Running => dim - 1,
            Progress::NotStarted if dim == 0 => {
                let feasible = self
                    .space
                    .constraints
                    .iter()
                    .all(|c| 0.0 <= c.bound + FEASIBILITY_TOLERANCE);
                self.state = if feasible {
                    Progress::Running
                } else {
                    Progress::Done
                };
                return feasible.then_some(&self.x[..]);
            }
            Progress::NotStarted => {
                self.x[0] = self.space.lower[0] - 1;
                0
            }
        };
        loop {
            if self.x[level] < self.space.upper[level] {
                let value = self.x[level] + 1;
                if self.assign(level, value) {
                    if level + 1 == dim {
                        self.state = Progress::Running;
                        return Some(&self.x[..]);
                    }
                    level += 1;
                    self.x[level] = self.space.lower[level] - 1;
                }
            } else if level == 0 {
                self.state = Progress::Done;
                return None;
            } else {
                level -= 1;
            }
        }
    }
}

impl Iterator for FeasibleActions<'_> {
    type Item = Vec<i64>;

    fn next(&mut self) -> Option<Vec<i64>> {
        self.next_action().map(<[i64]>::to_vec)
    }
}

/// Call `visit` on every feasible point of `space` until it breaks; returns the break
/// value, or `None` if every point was visited.
pub fn for_each_feasible<B>(
    space: &IntegerSpace,
    mut visit: impl FnMut(&[i64]) -> ControlFlow<B>,
) -> Result<Option<B>> {
    let mut points = enumerate_feasible(space)?;
    while let Some(x) = points.next_action() {
        if let ControlFlow::Break(b) = visit(x) {
            return Ok(Some(b));
        }
    }
    Ok(None)
}

/// The number of feasible points of `space`, by enumerating them (for small spaces).
pub fn count_feasible(space: &IntegerSpace) -> Result<u64> {
    let mut points = enumerate_feasible(space)?;
    let mut count = 0;
    while points.next_action().is_some() {
        count += 1;
    }
    Ok(count)
}
