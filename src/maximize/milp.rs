//! `maximize(q(s', ·; θ))` over integer actions by mixed-integer linear programming, the
//! chapter's "linear integer programming if the Q-function approximator is linear in
//! actions": when q(s', a) = c₀ + cᵀa, the maximization is the integer program
//!
//! ```text
//! maximize  cᵀa   over a ∈ ℤⁿ,  lower ≤ a ≤ upper,  Σᵢ Aₖᵢ aᵢ ≤ bₖ for every constraint k
//! ```
//!
//! solved with good_lp's pure-Rust microlp backend (branch and bound on the simplex).
//! A q that is not affine in the action cannot be stated this way and is an error, as are
//! an infeasible or unbounded program; the solver's answer is rounded and checked with
//! [`IntegerSpace::violation`] before it is returned.

use good_lp::{
    microlp, variable, Constraint, Expression, ProblemVariables, ResolutionError, Solution,
    SolverModel, Variable,
};

use super::{check_call, Maximizer, Maximum, QFunction};
use crate::env::allocation::check_integer_space;
use crate::env::{ActionSpace, IntegerSpace};
use crate::error::{Error, Result};
use crate::rng::Rng;

const NAME: &str = "milp";
/// The solver as errors name it.
const SOLVER: &str = "MILP (good_lp/microlp)";
/// Slack on a constraint with no variable, the same as [`IntegerSpace::violation`]'s.
const FEASIBILITY_TOLERANCE: f64 = 1e-9;

/// A MILP maximizer over an [`ActionSpace::Integer`], for q affine in the action.
#[derive(Clone, Debug)]
pub struct MilpMaximizer {
    space: ActionSpace,
    integer_space: IntegerSpace,
}

impl MilpMaximizer {
    /// A MILP maximizer over `space`; its bounds must fit microlp's integer variables
    /// (the `i32` range).
    pub fn new(space: IntegerSpace) -> Result<Self> {
        check_integer_space(&space)?;
        check_solver_bounds("milp.action_space", &space)?;
        Ok(MilpMaximizer {
            space: ActionSpace::Integer(space.clone()),
            integer_space: space,
        })
    }

    /// Solve max cᵀa over the integer space, writing the (rounded, checked) solution
    /// into `action`.
    fn solve(&self, coefficients: &[f64], action: &mut [f64]) -> Result<()> {
        let space = &self.integer_space;
        let mut variables = ProblemVariables::new();
        let x: Vec<Variable> = space
            .lower
            .iter()
            .zip(&space.upper)
            .map(|(&lo, &hi)| variables.add(variable().integer().min(lo as f64).max(hi as f64)))
            .collect();
        let objective = linear_expression(&x, coefficients);
        let mut model = variables.maximise(objective).using(microlp);
        for c in integer_constraints(&x, space, SOLVER)? {
            model.add_constraint(c);
        }
        let solution = model.solve().map_err(|e| solver_error(SOLVER, e))?;
        for (a, &xi) in action.iter_mut().zip(&x) {
            // The simplex returns integers up to rounding.
            *a = solution.value(xi).round();
        }
        if let Some(reason) = space.violation(action) {
            return Err(Error::solver(
                SOLVER,
                format!("the rounded solution {action:?} is not feasible: {reason}"),
            ));
        }
        Ok(())
    }
}

/// Check that the bounds of `space` fit microlp's integer variables (the `i32` range).
pub(super) fn check_solver_bounds(field: &str, space: &IntegerSpace) -> Result<()> {
    let fits = |b: i64| i32::try_from(b).is_ok();
    match (0..space.lower.len()).find(|&i| !(fits(space.lower[i]) && fits(space.upper[i]))) {
        Some(i) => Err(Error::invalid(
            field,
            format!(
                "bounds [{}, {}] of component {i} exceed the solver's 32-bit integers",
                space.lower[i], space.upper[i]
            ),
        )),
        None => Ok(()),
    }
}

/// The rows Σᵢ Aₖᵢ xᵢ ≤ bₖ of `space` over the action variables `x` (errors name `solver`).
pub(super) fn integer_constraints(
    x: &[Variable],
    space: &IntegerSpace,
    solver: &str,
) -> Result<Vec<Constraint>> {
    let mut rows = Vec::with_capacity(space.constraints.len());
    for c in &space.constraints {
        if c.coefficients.iter().all(|&a| a == 0.0) {
            // 0 ≤ bound involves no variable; decide it here rather than hand the
            // solver an empty row.
            if 0.0 > c.bound + FEASIBILITY_TOLERANCE {
                return Err(infeasible(solver));
            }
            continue;
        }
        rows.push(linear_expression(x, &c.coefficients).leq(c.bound));
    }
    Ok(rows)
}

/// A failure of `solver` as this crate's error.
pub(super) fn solver_error(solver: &str, e: ResolutionError) -> Error {
    match e {
        ResolutionError::Infeasible => infeasible(solver),
        ResolutionError::Unbounded => Error::solver(
            solver,
            "the program is unbounded: q grows without limit over the actions",
        ),
        other => Error::solver(solver, other.to_string()),
    }
}

fn infeasible(solver: &str) -> Error {
    Error::solver(
        solver,
        "the integer program is infeasible: no action satisfies every bound and constraint",
    )
}

/// Σᵢ cᵢ xᵢ over the nonzero coefficients.
pub(super) fn linear_expression(x: &[Variable], coefficients: &[f64]) -> Expression {
    let mut expression = Expression::with_capacity(x.len());
    for (&xi, &ci) in x.iter().zip(coefficients) {
        if ci != 0.0 {
            expression.add_mul(ci, xi);
        }
    }
    expression
}

/// The coefficients of q's affine form, reused across calls.
#[derive(Clone, Debug)]
pub struct MilpWorkspace {
    coefficients: Vec<f64>,
}

impl Maximizer for MilpMaximizer {
    type Workspace = MilpWorkspace;

    fn name(&self) -> &str {
        NAME
    }

    fn action_space(&self) -> &ActionSpace {
        &self.space
    }

    fn workspace(&self) -> MilpWorkspace {
        MilpWorkspace {
            coefficients: vec![0.0; self.space.dim()],
        }
    }

    /// One solver call per maximization (`evaluations` = 1). The value is c₀ + cᵀa* from
    /// q's affine form at the returned action.
    fn maximize<Q: QFunction>(
        &self,
        q: &Q,
        q_ws: &mut Q::Workspace,
        ws: &mut MilpWorkspace,
        state: &[f64],
        action: &mut [f64],
        _rng: &mut Rng,
    ) -> Result<Maximum> {
        check_call(NAME, &self.space, q, state, action)?;
        ws.coefficients.resize(action.len(), 0.0);
        let Some(constant) = q.affine_in_action(q_ws, state, &mut ws.coefficients)? else {
            return Err(Error::solver(
                SOLVER,
                "q is not affine in the action, so a MILP cannot state its maximization \
                 (use enumeration for small action sets)",
            ));
        };
        if let Some(i) = ws.coefficients.iter().position(|c| !c.is_finite()) {
            return Err(Error::Numerical {
                context: NAME.into(),
                reason: format!(
                    "coefficient {i} of q's affine form is {}, not finite",
                    ws.coefficients[i]
                ),
            });
        }
        self.solve(&ws.coefficients, action)?;
        let value = constant
            + ws.coefficients
                .iter()
                .zip(action.iter())
                .map(|(c, a)| c * a)
                .sum::<f64>();
        Ok(Maximum {
            value,
            evaluations: 1,
        })
    }
}
