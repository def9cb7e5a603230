//! The allocation task's parameters ([`AllocationParams`]), checked once into an
//! [`AllocationModel`] that states the action set, the reward and the transition.
//!
//! Action layout: `x[i·J + j]` is the number of units of resource `i` sent to site `j`
//! (R resources, J sites). The action set, an [`IntegerSpace`], is
//!
//! ```text
//! x_ij ∈ ℤ,  0 ≤ x_ij ≤ u_i = min(stock_i, ⌊budget / c_i⌋)
//! Σ_j x_ij ≤ stock_i            for every resource i      ("stock of resource i")
//! Σ_ij c_i x_ij ≤ budget                                  ("budget")
//! ```
//!
//! Reward, with `d_j` the demand at site `j` and `w_i` the demand one unit of resource
//! `i` serves (so `Σ_i w_i x_ij` is what the units sent to `j` can serve):
//!
//! ```text
//! r(d, x) = Σ_j p_j · min(d_j, Σ_i w_i x_ij) − Σ_ij c_i x_ij
//! ```
//!
//! concave and piecewise linear in `x`. A MILP states it exactly with one continuous
//! variable `y_j` per site: maximize `Σ_j p_j y_j − Σ_ij c_i x_ij` subject to
//! `y_j ≤ d_j`, `y_j ≤ Σ_i w_i x_ij` and the constraints above; since every `p_j ≥ 0`,
//! the optimum has `y_j = min(d_j, Σ_i w_i x_ij)`.
//!
//! Transition: unmet demand decays by `carry_over` and new demand arrives,
//! `d'_j = ρ · (d_j − min(d_j, Σ_i w_i x_ij)) + N_j` with `N_j ~ Poisson(λ_j)`
//! independent; the first demand of an episode is `N_j` alone.

use crate::env::{validate_action, validate_state, ActionSpace, IntegerSpace, LinearConstraint};
use crate::error::{Error, Result};

/// The allocation task as written by hand.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AllocationParams {
    /// Units of each resource available every period, `stock_i ≥ 0` (R entries).
    pub stock: Vec<i64>,
    /// Cost of one unit of each resource, `c_i ≥ 0` (R entries).
    pub unit_cost: Vec<f64>,
    /// The period's budget shared by all resources, `≥ 0`.
    pub budget: f64,
    /// Demand one unit of each resource serves, `w_i > 0` (R entries).
    pub service_rate: Vec<f64>,
    /// Price earned per unit of demand served at each site, `p_j ≥ 0` (J entries).
    pub price: Vec<f64>,
    /// Mean new demand per period at each site, `λ_j ≥ 0` (J entries).
    pub arrival_rate: Vec<f64>,
    /// Fraction `ρ ∈ [0, 1]` of unmet demand that carries over to the next period.
    pub carry_over: f64,
    /// Episode length (truncation), at least 1.
    pub horizon: usize,
}

/// Checked allocation parameters and the action set they define.
#[derive(Clone, Debug, PartialEq)]
pub struct AllocationModel {
    params: AllocationParams,
    space: IntegerSpace,
    /// The same set as an [`ActionSpace::Integer`], for [`validate_action`].
    action_space: ActionSpace,
}

/// Most combinations of per-resource totals [`AllocationModel::feasible_count`] sums over.
const MAX_COUNTED_TOTALS: u128 = 100_000_000;
/// Largest stock accepted: keeps every constraint sum exact in f64.
const MAX_STOCK: i64 = 1 << 40;

impl AllocationParams {
    /// 2 resources × 3 sites, 390 feasible actions (small enough to enumerate in tests):
    /// stock (4, 3), unit cost (1, 3), budget 10, service rate (1, 2), prices (3, 4, 5),
    /// arrival rates (2, 3, 4), carry-over 0.5, 20 periods.
    pub fn small() -> Self {
        AllocationParams {
            stock: vec![4, 3],
            unit_cost: vec![1.0, 3.0],
            budget: 10.0,
            service_rate: vec![1.0, 2.0],
            price: vec![3.0, 4.0, 5.0],
            arrival_rate: vec![2.0, 3.0, 4.0],
            carry_over: 0.5,
            horizon: 20,
        }
    }

    /// 3 resources × 10 sites (30 integer variables), 10 459 888 439 feasible actions:
    /// stock (6, 5, 4), unit cost (1, 2, 3), budget 25, service rate (1, 2, 3),
    /// prices 2.0, 2.5, …, 6.5, arrival rates 1, 2, 3, 4, 5, 1, 2, 3, 4, 5,
    /// carry-over 0.5, 20 periods.
    pub fn large() -> Self {
        AllocationParams {
            stock: vec![6, 5, 4],
            unit_cost: vec![1.0, 2.0, 3.0],
            budget: 25.0,
            service_rate: vec![1.0, 2.0, 3.0],
            price: (0..10).map(|j| 2.0 + 0.5 * j as f64).collect(),
            arrival_rate: (0..10).map(|j| (1 + j % 5) as f64).collect(),
            carry_over: 0.5,
            horizon: 20,
        }
    }

    /// Check every field, naming the first bad one.
    pub fn check(self) -> Result<AllocationModel> {
        let resources = self.stock.len();
        let sites = self.price.len();
        if resources == 0 {
            return Err(Error::invalid("stock", "needs at least one resource"));
        }
        if sites == 0 {
            return Err(Error::invalid("price", "needs at least one site"));
        }
        check_len("unit_cost", self.unit_cost.len(), resources, "resources")?;
        check_len(
            "service_rate",
            self.service_rate.len(),
            resources,
            "resources",
        )?;
        check_len("arrival_rate", self.arrival_rate.len(), sites, "sites")?;
        if let Some(s) = self.stock.iter().find(|&&s| !(0..=MAX_STOCK).contains(&s)) {
            return Err(Error::invalid("stock", format!("{s} is not in [0, 2^40]")));
        }
        check_all("unit_cost", &self.unit_cost, "finite and ≥ 0", |c| {
            c >= 0.0
        })?;
        check_all("service_rate", &self.service_rate, "finite and > 0", |w| {
            w > 0.0
        })?;
        // A negative price would make the MILP's y_j ≤ … relaxation inexact.
        check_all("price", &self.price, "finite and ≥ 0", |p| p >= 0.0)?;
        check_all(
            "arrival_rate",
            &self.arrival_rate,
            "finite and ≥ 0",
            |l| l >= 0.0,
        )?;
        if !(self.budget.is_finite() && self.budget >= 0.0) {
            return Err(Error::invalid(
                "budget",
                format!("{} is not finite and ≥ 0", self.budget),
            ));
        }
        if !(0.0..=1.0).contains(&self.carry_over) {
            return Err(Error::invalid(
                "carry_over",
                format!("{} is not in [0, 1]", self.carry_over),
            ));
        }
        if self.horizon == 0 {
            return Err(Error::invalid("horizon", "must be at least 1 period"));
        }
        let space = integer_space(&self);
        Ok(AllocationModel {
            params: self,
            action_space: ActionSpace::Integer(space.clone()),
            space,
        })
    }
}

fn check_len(field: &str, got: usize, expected: usize, what: &str) -> Result<()> {
    if got != expected {
        return Err(Error::invalid(
            field,
            format!("has {got} entries for {expected} {what}"),
        ));
    }
    Ok(())
}

fn check_all(
    field: &str,
    values: &[f64],
    requirement: &str,
    ok: impl Fn(f64) -> bool,
) -> Result<()> {
    match values.iter().position(|&v| !(v.is_finite() && ok(v))) {
        Some(i) => Err(Error::invalid(
            format!("{field}[{i}]"),
            format!("{} is not {requirement}", values[i]),
        )),
        None => Ok(()),
    }
}

/// The action set of checked parameters (see the module documentation).
fn integer_space(p: &AllocationParams) -> IntegerSpace {
    let (resources, sites) = (p.stock.len(), p.price.len());
    let dim = resources * sites;
    let mut upper = Vec::with_capacity(dim);
    let mut constraints = Vec::with_capacity(resources + 1);
    for i in 0..resources {
        // The bound implied by the budget alone keeps the box (and brute force) small.
        let affordable = if p.unit_cost[i] > 0.0 {
            (p.budget / p.unit_cost[i]).floor().min(p.stock[i] as f64) as i64
        } else {
            p.stock[i]
        };
        upper.resize(upper.len() + sites, affordable);
        let mut coefficients = vec![0.0; dim];
        coefficients[i * sites..(i + 1) * sites].fill(1.0);
        constraints.push(LinearConstraint {
            name: format!("stock of resource {i}"),
            coefficients,
            bound: p.stock[i] as f64,
        });
    }
    constraints.push(LinearConstraint {
        name: "budget".into(),
        coefficients: (0..dim).map(|k| p.unit_cost[k / sites]).collect(),
        bound: p.budget,
    });
    IntegerSpace {
        lower: vec![0; dim],
        upper,
        constraints,
    }
}

impl AllocationModel {
    pub fn params(&self) -> &AllocationParams {
        &self.params
    }
    /// Number of resources R.
    pub fn resources(&self) -> usize {
        self.params.stock.len()
    }
    /// Number of sites J.
    pub fn sites(&self) -> usize {
        self.params.price.len()
    }
    /// The action set: bounds, the R stock constraints, then the budget constraint.
    pub fn integer_space(&self) -> &IntegerSpace {
        &self.space
    }
    /// The same action set as an [`ActionSpace`].
    pub fn action_space(&self) -> &ActionSpace {
        &self.action_space
    }
    /// Index of `x_ij` in the action vector: `i·J + j`.
    pub fn action_index(&self, resource: usize, site: usize) -> usize {
        resource * self.sites() + site
    }

    /// `Σ_i w_i x_ij`: the demand the units sent to `site` can serve (lengths checked by
    /// the caller).
    pub(crate) fn capacity_at(&self, action: &[f64], site: usize) -> f64 {
        let sites = self.sites();
        self.params
            .service_rate
            .iter()
            .enumerate()
            .map(|(i, w)| w * action[i * sites + site])
            .sum()
    }

    /// The reward `Σ_j p_j min(d_j, Σ_i w_i x_ij) − Σ_ij c_i x_ij` (lengths checked by the caller).
    pub(crate) fn reward_unchecked(&self, demand: &[f64], action: &[f64]) -> f64 {
        let sites = self.sites();
        let revenue: f64 = (0..sites)
            .map(|j| self.params.price[j] * demand[j].min(self.capacity_at(action, j)))
            .sum();
        let spending: f64 = action
            .iter()
            .enumerate()
            .map(|(k, x)| self.params.unit_cost[k / sites] * x)
            .sum();
        revenue - spending
    }

    /// The reward of `action` in demand state `demand` (see the module documentation).
    /// Errors: wrong lengths, a negative or non-finite demand, an infeasible action.
    pub fn reward(&self, demand: &[f64], action: &[f64]) -> Result<f64> {
        self.check_demand(demand)?;
        validate_action(super::ID, &self.action_space, action)?;
        Ok(self.reward_unchecked(demand, action))
    }

    /// The deterministic part of the transition, in place:
    /// `d_j ← ρ · (d_j − min(d_j, Σ_i w_i x_ij))` (lengths checked by the caller).
    pub(crate) fn carry_over_in_place(&self, demand: &mut [f64], action: &[f64]) {
        for (j, d) in demand.iter_mut().enumerate() {
            let served = d.min(self.capacity_at(action, j));
            *d = self.params.carry_over * (*d - served);
        }
    }

    /// Check a demand vector: J entries, finite, non-negative.
    pub fn check_demand(&self, demand: &[f64]) -> Result<()> {
        validate_state(super::ID, self.sites(), demand)?;
        if let Some(j) = demand.iter().position(|d| !(d.is_finite() && *d >= 0.0)) {
            return Err(Error::invalid(
                format!("demand[{j}]"),
                // `{:?}`: shortest round trip, so 1e-300 is not written out in 300 digits.
                format!("{:?} is not finite and ≥ 0", demand[j]),
            ));
        }
        Ok(())
    }

    /// The exact number of feasible actions, without enumerating them.
    ///
    /// Resource `i` shipping `s_i` units in total can split them over the J sites in
    /// `C(s_i + J − 1, J − 1)` ways, and every per-component bound is implied by
    /// `s_i ≤ stock_i` and `c_i s_i ≤ budget`. So the count is the sum, over totals
    /// `0 ≤ s_i ≤ stock_i` with `Σ_i c_i s_i ≤ budget`, of `Π_i C(s_i + J − 1, J − 1)`
    /// (with the same 1e-9 budget slack as [`IntegerSpace::violation`]).
    /// Errors with [`Error::Numerical`] if the count exceeds `u128` or there are more
    /// than 10⁸ combinations of totals to sum over.
    pub fn feasible_count(&self) -> Result<u128> {
        let overflow = || Error::Numerical {
            context: "feasible_count".into(),
            reason: "the number of feasible actions exceeds 2^128".into(),
        };
        // The sum visits up to Π_i (stock_i + 1) totals; refuse rather than run for hours.
        let totals = self
            .params
            .stock
            .iter()
            .fold(1u128, |acc, &s| acc.saturating_mul(s as u128 + 1));
        if totals > MAX_COUNTED_TOTALS {
            return Err(Error::Numerical {
                context: "feasible_count".into(),
                reason: format!("{totals} combinations of resource totals are too many to sum"),
            });
        }
        let sites = self.sites() as u128;
        let ways: Vec<Vec<u128>> = self
            .params
            .stock
            .iter()
            .map(|&stock| {
                (0..=stock as u128)
                    .map(|s| binomial(s + sites - 1, sites - 1).ok_or_else(overflow))
                    .collect::<Result<_>>()
            })
            .collect::<Result<_>>()?;
        count_totals(&self.params, &ways, 0, 0.0).ok_or_else(overflow)
    }
}

/// Σ over totals of resources `i..` that fit in what `spent` leaves of the budget.
fn count_totals(p: &AllocationParams, ways: &[Vec<u128>], i: usize, spent: f64) -> Option<u128> {
    if i == ways.len() {
        return Some(1);
    }
    let mut total: u128 = 0;
    for (s, w) in ways[i].iter().enumerate() {
        let cost = spent + p.unit_cost[i] * s as f64;
        if cost > p.budget + 1e-9 {
            break;
        }
        let rest = count_totals(p, ways, i + 1, cost)?;
        total = total.checked_add(w.checked_mul(rest)?)?;
    }
    Some(total)
}

/// `C(n, k)`, exactly, or `None` on overflow.
fn binomial(n: u128, k: u128) -> Option<u128> {
    let k = k.min(n - k);
    let mut c: u128 = 1;
    for i in 0..k {
        // c·(n − i) is divisible by i + 1 since c·(n − i)/(i + 1) = C(n, i + 1).
        c = c.checked_mul(n - i)? / (i + 1);
    }
    Some(c)
}
