//! Resource allocation with integer action vectors: the chapter's case for embedded
//! optimization by integer programming ("linear integer programming if the Q-function
//! approximator is linear in actions").
//!
//! R resources are shipped to J sites each period, in whole units, under a stock limit
//! per resource and a shared budget; shipped units serve demand, which earns a price per
//! unit served and costs a price per unit shipped. The reward is concave piecewise linear
//! in the action, so a MILP states `max_x r(d, x)` exactly (see [`model`] for the exact
//! formulas, the action layout and the MILP statement).
//!
//! - [`AllocationParams`] → [`AllocationModel`]: checked parameters, the action set as an
//!   [`IntegerSpace`](crate::env::IntegerSpace), the reward, the exact feasible count.
//! - [`Allocation`]: the [`Env`](crate::env::Env); [`Allocation::small`] can be enumerated
//!   (390 actions), [`Allocation::large`] cannot (about 10¹⁰).
//! - [`SequentialAllocation`]: the task as a finite MDP (shipments arrive a period later,
//!   integer demand up to a cap) that value iteration solves exactly, for FQI's ground truth.
//! - [`enumerate_feasible`], [`for_each_feasible`], [`count_feasible`]: brute force over any
//!   `IntegerSpace`, point by point, never stored.

mod enumerate;
mod env;
pub mod model;
mod sequential;

pub use enumerate::{
    check_integer_space, count_feasible, enumerate_feasible, for_each_feasible, FeasibleActions,
};
pub use env::Allocation;
pub use model::{AllocationModel, AllocationParams};
pub use sequential::{
    ActionList, GreedyEvaluation, OptimalSolution, PolicyValue, SequentialAllocation,
};

const ID: &str = "Allocation";
