//! The allocation task as a finite MDP that value iteration solves exactly: the ground
//! truth for FQI with integer actions ([`SequentialAllocation`]).
//!
//! The same resources, sites, stock, budget, prices and action set as [`AllocationModel`],
//! with two changes that make the problem sequential and its state space finite:
//!
//! - **Lead time.** Units shipped this period arrive at their site at the start of the
//!   next one: the action `x` sets next period's service capacity `k'_j = Σ_i w_i x_ij`
//!   (service rates must be whole numbers). Capacity that finds no demand perishes.
//! - **Integer demand.** Demand is a whole number up to a cap `D`: each unit of unmet
//!   demand stays with probability ρ (binomial thinning, `carry_over`), Poisson(λ_j)
//!   units arrive, and whatever exceeds `D` is lost.
//!
//! State `s = [d_0, …, d_{J−1}, k_0, …, k_{J−1}]` (demand, then capacity on hand), reward
//!
//! ```text
//! r(s, x) = Σ_j p_j min(d_j, k_j) − Σ_ij c_i x_ij
//! d'_j = min(D, Binomial(d_j − min(d_j, k_j), ρ) + Poisson(λ_j)),   k'_j = Σ_i w_i x_ij
//! ```
//!
//! The reward of serving comes a period after the cost of shipping, so a myopic policy
//! ships nothing; the optimal one ships to where demand will be, a newsvendor with
//! backlog per site coupled by the shared stock and budget.
//!
//! Given the state, the next state depends on the unmet demand `u = d − min(d, k)` and on
//! the action only through `k'`; so `q*(s, x) = Σ_j p_j min(d_j, k_j) − cᵀx + γ E[v*(s') | u, k']`,
//! and value iteration needs one expectation per `(u, k')` pair and one maximization per
//! `u` (see [`SequentialAllocation::value_iteration`]).

use rand::Rng as _;

use super::enumerate::for_each_feasible;
use super::model::{AllocationModel, AllocationParams};
use crate::algo::Transitions;
use crate::env::IntegerSpace;
use crate::error::{Error, Result};
use crate::maximize::{Maximizer, QFunction};
use crate::rng::{Rng, RunSeed};

/// Most states [`SequentialAllocation::state_count`] enumerates (value tables of f64).
const MAX_STATES: usize = 10_000_000;
/// Most actions [`SequentialAllocation::enumerate_actions`] lists.
const MAX_LISTED_ACTIONS: usize = 1_000_000;

/// The sequential allocation MDP (see the module documentation).
#[derive(Clone, Debug)]
pub struct SequentialAllocation {
    model: AllocationModel,
    demand_cap: usize,
    /// `K_j = Σ_i w_i · upper_i`: the most capacity one period's shipment gives site `j`.
    capacity_cap: Vec<usize>,
    /// `next_demand[j][u][d']`: P(d'_j = d' | unmet u_j = u), for u, d' in 0..=D.
    next_demand: Vec<Vec<Vec<f64>>>,
}

/// The feasible actions of a small instance, listed once: what value iteration and policy
/// evaluation loop over.
#[derive(Clone, Debug, PartialEq)]
pub struct ActionList {
    dim: usize,
    /// Row-major, `len × dim`.
    actions: Vec<f64>,
}

impl ActionList {
    pub fn len(&self) -> usize {
        self.actions.len() / self.dim
    }
    pub fn is_empty(&self) -> bool {
        self.actions.is_empty()
    }
    pub fn dim(&self) -> usize {
        self.dim
    }
    pub fn get(&self, i: usize) -> &[f64] {
        &self.actions[i * self.dim..(i + 1) * self.dim]
    }
}

/// The value of a policy (or of the optimal one) on every enumerated state.
#[derive(Clone, Debug, PartialEq)]
pub struct PolicyValue {
    /// v(s) for every state index.
    pub values: Vec<f64>,
    /// `E[v(s₀)]` over the first state's distribution (Poisson demand, no capacity).
    pub initial_value: f64,
    /// Sweeps until the largest change fell below the tolerance.
    pub sweeps: usize,
}

/// How a q-function's greedy policy does against the optimum
/// ([`SequentialAllocation::evaluate_greedy`]).
#[derive(Clone, Debug, PartialEq)]
pub struct GreedyEvaluation {
    /// The greedy policy's exact value.
    pub value: PolicyValue,
    /// Share of states where the greedy action is optimal: `q*(s, x)` within
    /// `1e-6 · max(1, |v*(s)|)` of `v*(s)`.
    pub optimal_share: f64,
}

/// What [`SequentialAllocation::value_iteration`] returns.
#[derive(Clone, Debug, PartialEq)]
pub struct OptimalSolution {
    pub value: PolicyValue,
    /// An optimal action's index in the [`ActionList`], per state (the first best wins ties).
    pub policy: Vec<usize>,
    /// `E[v*(s') | u, k']` per unmet-demand and next-capacity index, from which
    /// [`OptimalSolution::q`] gives `q*(s, x)` (a table over states × actions would not fit).
    expected: Vec<f64>,
    gamma: f64,
}

impl SequentialAllocation {
    /// Check `params` (service rates must be whole numbers) and a demand cap `D ≥ 1`.
    /// `params.horizon` is not used: the MDP is discounted and infinite-horizon.
    pub fn new(params: AllocationParams, demand_cap: usize) -> Result<Self> {
        let model = params.check()?;
        if demand_cap == 0 {
            return Err(Error::invalid("demand_cap", "must be at least 1"));
        }
        let p = model.params();
        if let Some(i) = p.service_rate.iter().position(|w| w.fract() != 0.0) {
            return Err(Error::invalid(
                format!("service_rate[{i}]"),
                format!(
                    "{} is not a whole number: with a lead time, capacity is counted in units",
                    p.service_rate[i]
                ),
            ));
        }
        let space = model.integer_space();
        let sites = model.sites();
        let capacity_cap = (0..sites)
            .map(|j| {
                (0..model.resources())
                    .map(|i| p.service_rate[i] as usize * space.upper[i * sites + j] as usize)
                    .sum()
            })
            .collect();
        let next_demand = p
            .arrival_rate
            .iter()
            .map(|&rate| next_demand_table(rate, p.carry_over, demand_cap))
            .collect();
        Ok(SequentialAllocation {
            model,
            demand_cap,
            capacity_cap,
            next_demand,
        })
    }

    /// 2 resources × 2 sites, 102 feasible actions, 9 801 states (demand cap 8): stock
    /// (4, 3), unit cost (1, 3), budget 10, service rate (1, 2), prices (4, 6), arrival
    /// rates (2, 3), carry-over 0.5.
    pub fn small() -> Result<Self> {
        let params = AllocationParams {
            stock: vec![4, 3],
            unit_cost: vec![1.0, 3.0],
            budget: 10.0,
            service_rate: vec![1.0, 2.0],
            price: vec![4.0, 6.0],
            arrival_rate: vec![2.0, 3.0],
            carry_over: 0.5,
            horizon: 50,
        };
        Self::new(params, 8)
    }

    /// 2 resources × 9 sites, 1 211 287 feasible actions (too many states to enumerate):
    /// stock (6, 5), unit cost (1, 3), budget 15, service rate (1, 2), prices 3, 4, …, 11,
    /// arrival rates 2, 3, …, 10, carry-over 0.5, demand cap 8.
    pub fn large() -> Result<Self> {
        let params = AllocationParams {
            stock: vec![6, 5],
            unit_cost: vec![1.0, 3.0],
            budget: 15.0,
            service_rate: vec![1.0, 2.0],
            price: (0..9).map(|j| 3.0 + j as f64).collect(),
            arrival_rate: (0..9).map(|j| 2.0 + j as f64).collect(),
            carry_over: 0.5,
            horizon: 50,
        };
        Self::new(params, 8)
    }

    pub fn model(&self) -> &AllocationModel {
        &self.model
    }
    pub fn demand_cap(&self) -> usize {
        self.demand_cap
    }
    /// `K_j` per site: capacity values run over `0..=K_j`.
    pub fn capacity_cap(&self) -> &[usize] {
        &self.capacity_cap
    }
    /// `2·J`: demand and capacity per site.
    pub fn state_dim(&self) -> usize {
        2 * self.model.sites()
    }
    pub fn integer_space(&self) -> &IntegerSpace {
        self.model.integer_space()
    }

    /// Number of capacity vectors `Π_j (K_j + 1)`.
    fn capacity_count(&self) -> usize {
        self.capacity_cap.iter().map(|k| k + 1).product()
    }
    /// Number of demand vectors `(D + 1)^J`.
    fn demand_count(&self) -> usize {
        (self.demand_cap + 1).pow(self.model.sites() as u32)
    }

    /// Number of states `(D + 1)^J · Π_j (K_j + 1)`; an error above 10⁷ (the tables of
    /// value iteration would not fit).
    pub fn state_count(&self) -> Result<usize> {
        let base = self.demand_cap as u128 + 1;
        let mut count: u128 = 1;
        for k in &self.capacity_cap {
            count = count.saturating_mul(base).saturating_mul(*k as u128 + 1);
        }
        if count > MAX_STATES as u128 {
            return Err(Error::invalid(
                "sequential allocation",
                format!("{count} states are too many to enumerate (at most {MAX_STATES})"),
            ));
        }
        Ok(count as usize)
    }

    /// The state of index `index` (demand digits, then capacity digits, the first site
    /// least significant) into `state`.
    pub fn state_of(&self, index: usize, state: &mut [f64]) {
        let sites = self.model.sites();
        let (mut d, mut k) = (index / self.capacity_count(), index % self.capacity_count());
        for j in 0..sites {
            state[j] = (d % (self.demand_cap + 1)) as f64;
            d /= self.demand_cap + 1;
            state[sites + j] = (k % (self.capacity_cap[j] + 1)) as f64;
            k /= self.capacity_cap[j] + 1;
        }
    }

    /// The index of a state; an error naming the component that is not a whole number in
    /// its range.
    pub fn index_of(&self, state: &[f64]) -> Result<usize> {
        let sites = self.model.sites();
        if state.len() != 2 * sites {
            return Err(Error::invalid(
                "state",
                format!("has {} components, expected {}", state.len(), 2 * sites),
            ));
        }
        let whole = |i: usize, cap: usize| -> Result<usize> {
            let x = state[i];
            if x.fract() == 0.0 && (0.0..=cap as f64).contains(&x) {
                Ok(x as usize)
            } else {
                Err(Error::invalid(
                    format!("state[{i}]"),
                    format!("{x:?} is not a whole number in [0, {cap}]"),
                ))
            }
        };
        let (mut d, mut k) = (0, 0);
        for j in (0..sites).rev() {
            d = d * (self.demand_cap + 1) + whole(j, self.demand_cap)?;
            k = k * (self.capacity_cap[j] + 1) + whole(sites + j, self.capacity_cap[j])?;
        }
        Ok(d * self.capacity_count() + k)
    }

    /// `Σ_j p_j min(d_j, k_j) − Σ_ij c_i x_ij` (lengths checked by the caller).
    pub fn reward(&self, state: &[f64], action: &[f64]) -> f64 {
        self.revenue(state) - self.cost(action)
    }

    fn revenue(&self, state: &[f64]) -> f64 {
        let sites = self.model.sites();
        let p = &self.model.params().price;
        (0..sites)
            .map(|j| p[j] * state[j].min(state[sites + j]))
            .sum()
    }

    fn cost(&self, action: &[f64]) -> f64 {
        let sites = self.model.sites();
        let c = &self.model.params().unit_cost;
        action
            .iter()
            .enumerate()
            .map(|(k, x)| c[k / sites] * x)
            .sum()
    }

    /// `u_j = d_j − min(d_j, k_j)`: the demand at site `j` that the capacity on hand leaves unmet.
    fn unmet(&self, state: &[f64], j: usize) -> f64 {
        let demand = state[j];
        demand - demand.min(state[self.model.sites() + j])
    }

    /// The index of the unmet-demand vector `u` of a state.
    fn unmet_index(&self, state: &[f64]) -> usize {
        (0..self.model.sites()).rev().fold(0, |acc, j| {
            acc * (self.demand_cap + 1) + self.unmet(state, j) as usize
        })
    }

    /// The index of next period's capacity `k'_j = Σ_i w_i x_ij` under `action`.
    fn next_capacity_index(&self, action: &[f64]) -> usize {
        let sites = self.model.sites();
        (0..sites).rev().fold(0, |acc, j| {
            acc * (self.capacity_cap[j] + 1) + self.model.capacity_at(action, j) as usize
        })
    }

    /// One step from `state` under a feasible `action`: writes the next state and returns
    /// the reward. One uniform draw per site, by inversion of the next demand's law.
    pub fn step(
        &self,
        state: &[f64],
        action: &[f64],
        rng: &mut Rng,
        next: &mut [f64],
    ) -> Result<f64> {
        self.index_of(state)?;
        if let Some(reason) = self.integer_space().violation(action) {
            return Err(Error::invalid("action", reason));
        }
        let sites = self.model.sites();
        for j in 0..sites {
            next[j] = draw(&self.next_demand[j][self.unmet(state, j) as usize], rng) as f64;
            next[sites + j] = self.model.capacity_at(action, j);
        }
        Ok(self.reward(state, action))
    }

    /// Every feasible action, in the lexicographic order of
    /// [`for_each_feasible`]; an error above 10⁶ actions.
    pub fn enumerate_actions(&self) -> Result<ActionList> {
        let space = self.integer_space();
        let dim = space.lower.len();
        let mut actions = Vec::new();
        let too_many = for_each_feasible(space, |x| {
            if actions.len() / dim >= MAX_LISTED_ACTIONS {
                return std::ops::ControlFlow::Break(());
            }
            actions.extend(x.iter().map(|&v| v as f64));
            std::ops::ControlFlow::Continue(())
        })?;
        if too_many.is_some() {
            return Err(Error::invalid(
                "sequential allocation",
                format!("more than {MAX_LISTED_ACTIONS} feasible actions to list"),
            ));
        }
        Ok(ActionList { dim, actions })
    }

    /// A feasible action drawn at random: the components in a random order, each uniform
    /// over what the bounds and the constraints still allow given those already drawn
    /// (not uniform over the feasible set, but it reaches every feasible action).
    pub fn random_action(&self, rng: &mut Rng, action: &mut [f64]) {
        let space = self.integer_space();
        action.fill(0.0);
        let mut order: Vec<usize> = (0..action.len()).collect();
        for i in (1..order.len()).rev() {
            order.swap(i, rng.gen_range(0..=i));
        }
        for &k in &order {
            // Every coefficient and lower bound is ≥ 0, so the rest at 0 is always feasible.
            let mut most = space.upper[k];
            for c in &space.constraints {
                let a = c.coefficients[k];
                if a > 0.0 {
                    let used: f64 = c
                        .coefficients
                        .iter()
                        .zip(&*action)
                        .map(|(a, x)| a * x)
                        .sum();
                    most = most.min(((c.bound + 1e-9 - used) / a).floor() as i64);
                }
            }
            action[k] = rng.gen_range(0..=most.max(0)) as f64;
        }
    }

    /// `count` one-step transitions from states uniform over the state space (each
    /// component uniform over its range, independently) with
    /// [`random_action`](Self::random_action)s: FQI's base points. Streams:
    /// `seed.stream("sequential-allocation-transitions")`.
    pub fn sample_transitions(&self, count: usize, seed: RunSeed) -> Result<Transitions> {
        let (n, m) = (self.state_dim(), self.integer_space().lower.len());
        let mut rng = seed.stream("sequential-allocation-transitions");
        let mut data = Transitions::new(n, m);
        let (mut s, mut next, mut a) = (vec![0.0; n], vec![0.0; n], vec![0.0; m]);
        let sites = self.model.sites();
        for _ in 0..count {
            for j in 0..sites {
                s[j] = rng.gen_range(0..=self.demand_cap) as f64;
                s[sites + j] = rng.gen_range(0..=self.capacity_cap[j]) as f64;
            }
            self.random_action(&mut rng, &mut a);
            let r = self.step(&s, &a, &mut rng, &mut next)?;
            data.push(&s, &a, r, &next, false)?;
        }
        Ok(data)
    }

    /// `E[v(s') | u, k']` for every unmet-demand index `u` and next capacity index `k'`,
    /// into `expected` (`n_u × n_k`): `Σ_{d'} Π_j P_j(d'_j | u_j) · v(d', k')`.
    fn expectations(&self, values: &[f64], expected: &mut [f64]) {
        let (n_d, n_k) = (self.demand_count(), self.capacity_count());
        let sites = self.model.sites();
        let base = self.demand_cap + 1;
        // P(d' | u) for every pair, as a product over sites of the tables.
        let mut law = vec![0.0; n_d];
        for u in 0..n_d {
            for (d_next, p) in law.iter_mut().enumerate() {
                let (mut uu, mut dd, mut prob) = (u, d_next, 1.0);
                for j in 0..sites {
                    prob *= self.next_demand[j][uu % base][dd % base];
                    uu /= base;
                    dd /= base;
                }
                *p = prob;
            }
            let row = &mut expected[u * n_k..(u + 1) * n_k];
            row.fill(0.0);
            for (d_next, &p) in law.iter().enumerate() {
                if p == 0.0 {
                    continue;
                }
                let v = &values[d_next * n_k..(d_next + 1) * n_k];
                for (e, &vk) in row.iter_mut().zip(v) {
                    *e += p * vk;
                }
            }
        }
    }

    /// `E[v(s₀)]` over the first state's law: the demand of a period with nothing unmet
    /// before it (u = 0), no capacity on hand (k = 0, capacity index 0).
    fn initial_value(&self, values: &[f64]) -> f64 {
        let (base, n_k) = (self.demand_cap + 1, self.capacity_count());
        (0..self.demand_count())
            .map(|d| {
                let (mut digits, mut prob) = (d, 1.0);
                for law in &self.next_demand {
                    prob *= law[0][digits % base];
                    digits /= base;
                }
                prob * values[d * n_k]
            })
            .sum()
    }

    /// Value iteration, `v ← max_x [r(s, x) + γ E v(s')]`, from `v = 0` until the largest
    /// change is below `tolerance · (1 − γ) / (2γ)` (so the greedy policy's value is
    /// within `tolerance` of optimal), or an error after `max_sweeps`.
    pub fn value_iteration(
        &self,
        actions: &ActionList,
        gamma: f64,
        tolerance: f64,
        max_sweeps: usize,
    ) -> Result<OptimalSolution> {
        check_discount(gamma, tolerance)?;
        let n = self.state_count()?;
        let (n_d, n_k) = (self.demand_count(), self.capacity_count());
        let cost: Vec<f64> = (0..actions.len())
            .map(|a| self.cost(actions.get(a)))
            .collect();
        let next_k: Vec<usize> = (0..actions.len())
            .map(|a| self.next_capacity_index(actions.get(a)))
            .collect();
        let (revenue, unmet) = self.state_tables(n);
        let mut values = vec![0.0; n];
        let mut expected = vec![0.0; n_d * n_k];
        let (mut best, mut best_action) = (vec![0.0; n_d], vec![0usize; n_d]);
        let threshold = tolerance * (1.0 - gamma) / (2.0 * gamma);
        for sweep in 1..=max_sweeps {
            self.expectations(&values, &mut expected);
            for u in 0..n_d {
                let row = &expected[u * n_k..(u + 1) * n_k];
                let (mut b, mut arg) = (f64::NEG_INFINITY, 0);
                for a in 0..actions.len() {
                    let v = -cost[a] + gamma * row[next_k[a]];
                    if v > b {
                        (b, arg) = (v, a);
                    }
                }
                best[u] = b;
                best_action[u] = arg;
            }
            let mut change = 0.0f64;
            for s in 0..n {
                let v = revenue[s] + best[unmet[s]];
                change = change.max((v - values[s]).abs());
                values[s] = v;
            }
            if change < threshold {
                self.expectations(&values, &mut expected);
                // u = 0 and k' = 0: the first state's law (nothing unmet, nothing on hand).
                let initial_value = expected[0];
                return Ok(OptimalSolution {
                    policy: unmet.iter().map(|&u| best_action[u]).collect(),
                    value: PolicyValue {
                        values,
                        initial_value,
                        sweeps: sweep,
                    },
                    expected,
                    gamma,
                });
            }
        }
        Err(Error::Numerical {
            context: "value_iteration".into(),
            reason: format!("no convergence in {max_sweeps} sweeps"),
        })
    }

    /// Revenue and unmet-demand index of every state.
    fn state_tables(&self, n: usize) -> (Vec<f64>, Vec<usize>) {
        let mut state = vec![0.0; self.state_dim()];
        (0..n)
            .map(|s| {
                self.state_of(s, &mut state);
                (self.revenue(&state), self.unmet_index(&state))
            })
            .unzip()
    }

    /// The value of the deterministic policy that takes `policy(s)` (an action of
    /// `state_count × dim`, row-major by state index), by iterating its Bellman
    /// equation until the change is below `tolerance · (1 − γ)` (so within `tolerance`).
    /// Errors: a wrong length or an infeasible action (named by its state).
    pub fn evaluate_policy(
        &self,
        policy: &[f64],
        gamma: f64,
        tolerance: f64,
        max_sweeps: usize,
    ) -> Result<PolicyValue> {
        check_discount(gamma, tolerance)?;
        let n = self.state_count()?;
        let m = self.integer_space().lower.len();
        if policy.len() != n * m {
            return Err(Error::invalid(
                "policy",
                format!("has {} entries, expected {n} states × {m}", policy.len()),
            ));
        }
        let (revenue, unmet) = self.state_tables(n);
        let mut reward = Vec::with_capacity(n);
        let mut next_k = Vec::with_capacity(n);
        for (s, action) in policy.chunks(m).enumerate() {
            if let Some(reason) = self.integer_space().violation(action) {
                return Err(Error::invalid(format!("policy at state {s}"), reason));
            }
            reward.push(revenue[s] - self.cost(action));
            next_k.push(self.next_capacity_index(action));
        }
        let (n_d, n_k) = (self.demand_count(), self.capacity_count());
        let mut values = vec![0.0; n];
        let mut expected = vec![0.0; n_d * n_k];
        for sweep in 1..=max_sweeps {
            self.expectations(&values, &mut expected);
            let mut change = 0.0f64;
            for s in 0..n {
                let v = reward[s] + gamma * expected[unmet[s] * n_k + next_k[s]];
                change = change.max((v - values[s]).abs());
                values[s] = v;
            }
            if change < tolerance * (1.0 - gamma) {
                let initial_value = self.initial_value(&values);
                return Ok(PolicyValue {
                    values,
                    initial_value,
                    sweeps: sweep,
                });
            }
        }
        Err(Error::Numerical {
            context: "evaluate_policy".into(),
            reason: format!("no convergence in {max_sweeps} sweeps"),
        })
    }
}

impl SequentialAllocation {
    /// The greedy policy of `q`: its action at every state by `maximizer` (`rng` for
    /// solvers with random starts), evaluated exactly with `optimum`'s discount and
    /// compared with `optimum` state by state.
    pub fn evaluate_greedy<Q: QFunction, M: Maximizer>(
        &self,
        q: &Q,
        maximizer: &M,
        optimum: &OptimalSolution,
        tolerance: f64,
        max_sweeps: usize,
        rng: &mut Rng,
    ) -> Result<GreedyEvaluation> {
        let states = self.state_count()?;
        let m = self.integer_space().lower.len();
        let mut policy = vec![0.0; states * m];
        let mut state = vec![0.0; self.state_dim()];
        let (mut q_ws, mut ws) = (q.workspace(), maximizer.workspace());
        let mut optimal = 0usize;
        for (s, action) in policy.chunks_mut(m).enumerate() {
            self.state_of(s, &mut state);
            maximizer.maximize(q, &mut q_ws, &mut ws, &state, action, rng)?;
            let best = optimum.value.values[s];
            if optimum.q(self, &state, action) >= best - 1e-6 * best.abs().max(1.0) {
                optimal += 1;
            }
        }
        Ok(GreedyEvaluation {
            value: self.evaluate_policy(&policy, optimum.gamma, tolerance, max_sweeps)?,
            optimal_share: optimal as f64 / states as f64,
        })
    }
}

impl OptimalSolution {
    /// `q*(s, x)` (a state and a feasible action of `mdp`, the MDP that was solved).
    pub fn q(&self, mdp: &SequentialAllocation, state: &[f64], action: &[f64]) -> f64 {
        let n_k = mdp.capacity_count();
        let index = mdp.unmet_index(state) * n_k + mdp.next_capacity_index(action);
        mdp.reward(state, action) + self.gamma * self.expected[index]
    }
}

fn check_discount(gamma: f64, tolerance: f64) -> Result<()> {
    if !(gamma > 0.0 && gamma < 1.0) {
        return Err(Error::invalid("gamma", format!("{gamma} is not in (0, 1)")));
    }
    if !(tolerance.is_finite() && tolerance > 0.0) {
        return Err(Error::invalid(
            "tolerance",
            format!("{tolerance} is not a positive finite number"),
        ));
    }
    Ok(())
}

/// P(min(D, Binomial(u, ρ) + Poisson(λ)) = d') for u, d' in 0..=D.
fn next_demand_table(rate: f64, keep: f64, cap: usize) -> Vec<Vec<f64>> {
    // Poisson pmf on 0..cap−1, the tail folded into cap.
    let mut poisson = vec![0.0; cap + 1];
    let mut p = (-rate).exp();
    let mut below = 0.0;
    for (n, slot) in poisson.iter_mut().enumerate().take(cap) {
        *slot = p;
        below += p;
        p *= rate / (n + 1) as f64;
    }
    poisson[cap] = (1.0 - below).max(0.0);
    (0..=cap)
        .map(|u| {
            let mut binomial = vec![0.0; u + 1];
            for (kept, b) in binomial.iter_mut().enumerate() {
                *b =
                    choose(u, kept) * keep.powi(kept as i32) * (1.0 - keep).powi((u - kept) as i32);
            }
            let mut law = vec![0.0; cap + 1];
            for (kept, &pb) in binomial.iter().enumerate() {
                for (arrived, &pa) in poisson.iter().enumerate() {
                    law[(kept + arrived).min(cap)] += pb * pa;
                }
            }
            law
        })
        .collect()
}

fn choose(n: usize, k: usize) -> f64 {
    (0..k).fold(1.0, |c, i| c * (n - i) as f64 / (i + 1) as f64)
}

/// A draw from a law on 0..len by inversion of one uniform.
fn draw(law: &[f64], rng: &mut Rng) -> usize {
    let mut u: f64 = rng.gen();
    for (i, &p) in law.iter().enumerate() {
        if u < p {
            return i;
        }
        u -= p;
    }
    law.len() - 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> SequentialAllocation {
        let params = AllocationParams {
            stock: vec![2, 1],
            unit_cost: vec![1.0, 2.0],
            budget: 3.0,
            service_rate: vec![1.0, 2.0],
            price: vec![3.0, 5.0],
            arrival_rate: vec![1.0, 1.5],
            carry_over: 0.5,
            horizon: 10,
        };
        SequentialAllocation::new(params, 3).unwrap()
    }

    #[test]
    fn next_demand_laws_sum_to_one_and_match_their_means() {
        let mdp = tiny();
        for (j, tables) in mdp.next_demand.iter().enumerate() {
            for (u, law) in tables.iter().enumerate() {
                let total: f64 = law.iter().sum();
                assert!((total - 1.0).abs() < 1e-12, "site {j}, u {u}: {total}");
            }
        }
        // With a cap far above the mass, the mean is ρu + λ.
        let table = next_demand_table(2.0, 0.5, 60);
        let mean: f64 = table[10]
            .iter()
            .enumerate()
            .map(|(d, p)| d as f64 * p)
            .sum();
        assert!((mean - 7.0).abs() < 1e-9, "{mean}");
    }

    #[test]
    fn state_indices_round_trip() {
        let mdp = tiny();
        let n = mdp.state_count().unwrap();
        assert_eq!(n, 4 * 4 * (2 + 2 + 1) * (2 + 2 + 1));
        let mut s = vec![0.0; 4];
        for i in 0..n {
            mdp.state_of(i, &mut s);
            assert_eq!(mdp.index_of(&s).unwrap(), i);
        }
        assert!(mdp.index_of(&[0.5, 0.0, 0.0, 0.0]).is_err());
        assert!(mdp.index_of(&[4.0, 0.0, 0.0, 0.0]).is_err());
    }

    /// Value iteration's values satisfy the Bellman optimality equation, computed
    /// directly over next states (not through the (u, k') expectations), and evaluating
    /// its policy gives them back.
    #[test]
    fn value_iteration_solves_the_bellman_equation() {
        let mdp = tiny();
        let actions = mdp.enumerate_actions().unwrap();
        let gamma = 0.9;
        let opt = mdp.value_iteration(&actions, gamma, 1e-9, 10_000).unwrap();
        let n = mdp.state_count().unwrap();
        let (mut s, mut next) = (vec![0.0; 4], vec![0.0; 4]);
        let sites = 2;
        for i in 0..n {
            mdp.state_of(i, &mut s);
            let mut best = f64::NEG_INFINITY;
            for a in 0..actions.len() {
                let x = actions.get(a);
                let mut ev = 0.0;
                for d0 in 0..=3 {
                    for d1 in 0..=3 {
                        let u = |j: usize| (s[j] - s[j].min(s[sites + j])) as usize;
                        let p = mdp.next_demand[0][u(0)][d0] * mdp.next_demand[1][u(1)][d1];
                        next[0] = d0 as f64;
                        next[1] = d1 as f64;
                        next[2] = mdp.model.capacity_at(x, 0);
                        next[3] = mdp.model.capacity_at(x, 1);
                        ev += p * opt.value.values[mdp.index_of(&next).unwrap()];
                    }
                }
                let q = mdp.reward(&s, x) + gamma * ev;
                assert!((q - opt.q(&mdp, &s, x)).abs() < 1e-9);
                best = best.max(q);
            }
            assert!((best - opt.value.values[i]).abs() < 1e-7, "state {i}");
        }
        let m = actions.dim();
        let policy: Vec<f64> = opt
            .policy
            .iter()
            .flat_map(|&a| actions.get(a).to_vec())
            .collect();
        let evaluated = mdp.evaluate_policy(&policy, gamma, 1e-9, 10_000).unwrap();
        assert!((evaluated.initial_value - opt.value.initial_value).abs() < 1e-7);
        // Shipping nothing earns nothing after the first period, and is worse.
        let idle = vec![0.0; n * m];
        let idle_value = mdp.evaluate_policy(&idle, gamma, 1e-9, 10_000).unwrap();
        assert!(idle_value.initial_value.abs() < 1e-12);
        assert!(opt.value.initial_value > 1.0);
    }

    #[test]
    fn random_actions_are_feasible_and_reach_the_whole_set() {
        let mdp = tiny();
        let actions = mdp.enumerate_actions().unwrap();
        let mut seen = std::collections::HashSet::new();
        let mut rng = RunSeed(3).stream("test");
        let mut a = vec![0.0; actions.dim()];
        for _ in 0..5000 {
            mdp.random_action(&mut rng, &mut a);
            assert_eq!(mdp.integer_space().violation(&a), None);
            seen.insert(a.iter().map(|&x| x as i64).collect::<Vec<_>>());
        }
        assert_eq!(seen.len(), actions.len());
    }

    #[test]
    fn bad_input_is_named() {
        let mut params = AllocationParams::small();
        params.service_rate[1] = 1.5;
        let e = SequentialAllocation::new(params, 3)
            .unwrap_err()
            .to_string();
        assert!(e.contains("service_rate[1]"), "{e}");
        let e = SequentialAllocation::new(AllocationParams::small(), 0)
            .unwrap_err()
            .to_string();
        assert!(e.contains("demand_cap"), "{e}");
        let mdp = tiny();
        let e = mdp
            .evaluate_policy(&[0.0; 3], 0.9, 1e-6, 10)
            .unwrap_err()
            .to_string();
        assert!(e.contains("policy"), "{e}");
        assert!(SequentialAllocation::large()
            .unwrap()
            .state_count()
            .is_err());
    }
}
