//! Fitted Q-iteration for the smooth Bellman equations (the chapter's section "Fitted
//! Q-Iteration for the Smooth Bellman Equations", under "Soft Actor Critic").
//!
//! The chapter gives this method no pseudocode block of its own: it is
//! `fitted-q-iteration-explicit` with step 3.2.1's `maximize` replaced by the smooth
//! maximum that the smooth Bellman operator `L_β` takes over actions,
//!
//! ```text
//! 3.2.1   yᵢ ← rᵢ + γ · β log ∫_A exp(q(s'ᵢ, a'; θₙ)/β) da'
//! ```
//!
//! and the rest — the regression dataset, `fit`, δ, the stopping rule — unchanged. So
//! this module supplies only that one step, [`LogPartition`], as a [`Maximizer`], and
//! smooth FQI is [`FittedQIteration`] run with it ([`SmoothFqi`]); the `fit` step
//! ([`crate::algo::fit`]), the parallel, thread-count-independent targets and δ are
//! reused as they are.
//!
//! # The integral, by quadrature
//! The integral over the action box is computed by composite Gauss–Legendre quadrature
//! ([`BoxQuadrature`]): the box is cut into `panels` equal pieces per dimension with an
//! `order`-point Gauss–Legendre rule on each, tensorized over dimensions (intended for
//! one- and two-dimensional actions; the node count grows as `(panels·order)ᵐ`). With
//! nodes `aⱼ` and weights `wⱼ`,
//!
//! ```text
//! β log Σⱼ wⱼ exp(q(s', aⱼ)/β) = β (M + log Σⱼ exp(q(s', aⱼ)/β + log wⱼ − M)),
//! M = maxⱼ (q(s', aⱼ)/β + log wⱼ)
//! ```
//!
//! (log-sum-exp): no exponential overflows or underflows to an all-zero sum, whatever β
//! and the scale of q. As β → 0 the value tends to `max_j q(s', aⱼ)` — hard FQI on the
//! quadrature nodes — and for a q whose Boltzmann density is concentrated well inside
//! the box it equals the integral over all of ℝᵐ, which is what the soft LQR solution
//! ([`crate::env::lqr::SoftLqrSolution`]) integrates over.
//!
//! The action [`LogPartition::maximize`] writes is the mean of the Boltzmann policy
//! `d(a|s') ∝ exp(q(s', a)/β)` under the same quadrature; [`FittedQIteration::next_actions`]
//! then holds those means, and [`FittedQIteration::greedy_policy`] acts with them (on
//! soft LQR: `−Ks`, the mean of the soft-optimal Gaussian).
//!
//! # The integral, by sampling
//! The chapter's other route replaces the integral by samples. [`MonteCarloLogPartition`]
//! draws `N` actions uniformly over the box (a fresh draw per base point, from the stream
//! FQI hands the maximizer) and returns `β log(|A| · (1/N) Σⱼ exp(q(s', aⱼ)/β))`: a
//! consistent estimator, biased low for every finite `N` (Jensen: `E log X̂ ≤ log E X̂`),
//! with a variance that falls as `1/N` — and a variance that explodes when the Boltzmann
//! density is narrow against the box (small β), because few draws land where the mass is.
//! `experiments/smooth_fqi.toml` measures both against the soft-LQR closed form.
//!
//! # Acting with the Boltzmann policy
//! [`LogPartition::sample_action`] draws from the quadrature's discrete version of
//! `d(a|s) ∝ exp(q(s, a)/β)`: node `aⱼ` with probability `wⱼ exp(q(s, aⱼ)/β) / Z`.
//!
//! Error messages of the shared iteration name `fitted-q-iteration-explicit`, the
//! pseudocode this one reuses.

use serde::{Deserialize, Serialize};

use super::fqi::FittedQIteration;
use crate::env::ActionSpace;
use crate::error::{Error, Result};
use crate::maximize::{Maximizer, Maximum, QFunction};
use crate::rng::Rng;
use rand::Rng as _;

/// Smooth FQI: [`FittedQIteration`] whose step 3.2.1 is [`LogPartition`]'s
/// `β log ∫ exp(q/β)`.
pub type SmoothFqi<Q, F> = FittedQIteration<Q, LogPartition, F>;

/// Smooth FQI whose step 3.2.1 estimates `β log ∫ exp(q/β)` by Monte Carlo over actions
/// ([`MonteCarloLogPartition`]).
pub type SampledSmoothFqi<Q, F> = FittedQIteration<Q, MonteCarloLogPartition, F>;

/// Most quadrature nodes a [`BoxQuadrature`] may have (2²⁰: a 1024 × 1024 grid).
pub const MAX_NODES: usize = 1 << 20;

/// The `n`-point Gauss–Legendre rule on [−1, 1]: nodes in increasing order and weights,
/// by Newton's method on the Legendre polynomial (accurate to rounding for n ≤ 200).
fn gauss_legendre(n: usize) -> (Vec<f64>, Vec<f64>) {
    let mut nodes = vec![0.0; n];
    let mut weights = vec![0.0; n];
    for i in 0..n.div_ceil(2) {
        // Tricomi's initial guess for the i-th largest root.
        let mut x = (std::f64::consts::PI * (i as f64 + 0.75) / (n as f64 + 0.5)).cos();
        let mut derivative = 1.0;
        for _ in 0..100 {
            // P_n(x) and P_n'(x) by the three-term recurrence.
            let (mut p0, mut p1) = (1.0, x);
            for k in 2..=n {
                let k = k as f64;
                let p2 = ((2.0 * k - 1.0) * x * p1 - (k - 1.0) * p0) / k;
                p0 = p1;
                p1 = p2;
            }
            // p1 = P_n(x), p0 = P_{n−1}(x) (P₀ = 1 when n = 1).
            derivative = n as f64 * (x * p1 - p0) / (x * x - 1.0);
            let step = p1 / derivative;
            x -= step;
            if step.abs() < 1e-16 {
                break;
            }
        }
        let weight = 2.0 / ((1.0 - x * x) * derivative * derivative);
        nodes[n - 1 - i] = x;
        nodes[i] = -x;
        weights[n - 1 - i] = weight;
        weights[i] = weight;
    }
    (nodes, weights)
}

/// A tensor-product composite Gauss–Legendre rule on a box `[low, high] ⊂ ℝᵐ`: nodes
/// `aⱼ` (row-major, `len × m`) and the logarithms of their (positive) weights.
#[derive(Clone, Debug, PartialEq)]
pub struct BoxQuadrature {
    dim: usize,
    nodes: Vec<f64>,
    log_weights: Vec<f64>,
}

impl BoxQuadrature {
    /// `order` Gauss–Legendre points on each of `panels` equal pieces of every side of the
    /// box, `(panels·order)ᵐ` nodes in all. The box must be finite and non-degenerate.
    pub fn gauss_legendre(low: &[f64], high: &[f64], panels: usize, order: usize) -> Result<Self> {
        let dim = low.len();
        if dim == 0 || high.len() != dim {
            return Err(Error::invalid(
                "quadrature.box",
                format!("bounds of {} and {} components", dim, high.len()),
            ));
        }
        if let Some(i) =
            (0..dim).find(|&i| !(low[i].is_finite() && high[i].is_finite() && low[i] < high[i]))
        {
            return Err(Error::invalid(
                "quadrature.box",
                format!(
                    "component {i} is [{}, {}], not a finite non-empty interval",
                    low[i], high[i]
                ),
            ));
        }
        if panels == 0 {
            return Err(Error::invalid("quadrature.panels", "must be at least 1"));
        }
        if !(1..=200).contains(&order) {
            return Err(Error::invalid(
                "quadrature.order",
                format!("{order} is not in 1..=200"),
            ));
        }
        let per_dim = panels * order;
        let len = (0..dim).try_fold(1usize, |n, _| {
            n.checked_mul(per_dim).filter(|&n| n <= MAX_NODES)
        });
        let Some(len) = len else {
            return Err(Error::invalid(
                "quadrature",
                format!(
                    "{per_dim} nodes per dimension in {dim} dimensions exceed {MAX_NODES} nodes"
                ),
            ));
        };
        let (reference_nodes, reference_weights) = gauss_legendre(order);
        // One dimension: nodes and log-weights along each side.
        let sides: Vec<(Vec<f64>, Vec<f64>)> = (0..dim)
            .map(|d| {
                let width = (high[d] - low[d]) / panels as f64;
                let mut points = Vec::with_capacity(per_dim);
                let mut log_weights = Vec::with_capacity(per_dim);
                for p in 0..panels {
                    let center = low[d] + (p as f64 + 0.5) * width;
                    for (x, w) in reference_nodes.iter().zip(&reference_weights) {
                        points.push(center + 0.5 * width * x);
                        log_weights.push((0.5 * width * w).ln());
                    }
                }
                (points, log_weights)
            })
            .collect();
        let mut nodes = Vec::with_capacity(len * dim);
        let mut log_weights = Vec::with_capacity(len);
        for j in 0..len {
            // Node j's index along dimension d: the last dimension varies fastest.
            let mut rest = j;
            let mut log_weight = 0.0;
            let start = nodes.len();
            nodes.resize(start + dim, 0.0);
            for d in (0..dim).rev() {
                let k = rest % per_dim;
                rest /= per_dim;
                nodes[start + d] = sides[d].0[k];
                log_weight += sides[d].1[k];
            }
            log_weights.push(log_weight);
        }
        Ok(BoxQuadrature {
            dim,
            nodes,
            log_weights,
        })
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.log_weights.len()
    }

    pub fn is_empty(&self) -> bool {
        self.log_weights.is_empty()
    }

    /// The nodes, `len × dim` row-major.
    pub fn nodes(&self) -> &[f64] {
        &self.nodes
    }

    pub fn log_weights(&self) -> &[f64] {
        &self.log_weights
    }

    /// `log ∫ exp(f) ≈ log Σⱼ wⱼ exp(f(aⱼ))` from `log_values[j] = f(aⱼ)`, by
    /// log-sum-exp. `−∞` when every value is `−∞`; NaN in, NaN out.
    pub fn log_integral_exp(&self, log_values: &[f64]) -> f64 {
        let shift = log_values
            .iter()
            .zip(&self.log_weights)
            .map(|(v, w)| v + w)
            .fold(f64::NEG_INFINITY, f64::max);
        if !shift.is_finite() {
            return if log_values.iter().any(|v| v.is_nan()) {
                f64::NAN
            } else {
                shift
            };
        }
        let sum: f64 = log_values
            .iter()
            .zip(&self.log_weights)
            .map(|(v, w)| (v + w - shift).exp())
            .sum();
        shift + sum.ln()
    }
}

/// Settings of the smooth maximum, as a user writes them.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogPartitionSettings {
    /// Temperature β > 0 of the smooth Bellman operator. Default 1.
    pub beta: f64,
    /// Equal pieces per side of the action box. Default 32.
    pub panels: usize,
    /// Gauss–Legendre points per piece (1..=200). Default 8.
    pub order: usize,
}

impl Default for LogPartitionSettings {
    fn default() -> Self {
        LogPartitionSettings {
            beta: 1.0,
            panels: 32,
            order: 8,
        }
    }
}

/// The smooth maximum `β log ∫_A exp(q(s', a)/β) da` over a finite action box, by
/// quadrature: step 3.2.1 of smooth FQI (see the module documentation).
#[derive(Clone, Debug)]
pub struct LogPartition {
    beta: f64,
    space: ActionSpace,
    quadrature: BoxQuadrature,
}

/// Per-thread scratch: q at every node.
#[derive(Clone, Debug)]
pub struct LogPartitionWorkspace {
    values: Vec<f64>,
}

impl LogPartition {
    /// The smooth maximum over `space`, which must be a finite box.
    pub fn new(space: &ActionSpace, settings: LogPartitionSettings) -> Result<Self> {
        let beta = settings.beta;
        if !(beta.is_finite() && beta > 0.0) {
            return Err(Error::invalid(
                "log_partition.beta",
                format!("{beta} is not a positive finite number"),
            ));
        }
        let ActionSpace::Box { low, high } = space else {
            return Err(Error::invalid(
                "log_partition.action_space",
                "the integral over actions needs a continuous (box) action space",
            ));
        };
        let quadrature = BoxQuadrature::gauss_legendre(low, high, settings.panels, settings.order)
            .map_err(|error| match error {
                Error::InvalidParameter { field, reason } => {
                    Error::invalid(format!("log_partition.{field}"), reason)
                }
                other => other,
            })?;
        Ok(LogPartition {
            beta,
            space: space.clone(),
            quadrature,
        })
    }

    pub fn beta(&self) -> f64 {
        self.beta
    }

    pub fn quadrature(&self) -> &BoxQuadrature {
        &self.quadrature
    }
}

impl Maximizer for LogPartition {
    type Workspace = LogPartitionWorkspace;

    fn name(&self) -> &str {
        "log-partition"
    }

    fn action_space(&self) -> &ActionSpace {
        &self.space
    }

    fn workspace(&self) -> LogPartitionWorkspace {
        LogPartitionWorkspace {
            values: vec![0.0; self.quadrature.len()],
        }
    }

    /// Returns `β log ∫ exp(q(state, a)/β) da` as the value and writes the Boltzmann
    /// policy's mean action into `action`; one batched evaluation of q at every node.
    fn maximize<Q: QFunction>(
        &self,
        q: &Q,
        q_ws: &mut Q::Workspace,
        ws: &mut LogPartitionWorkspace,
        state: &[f64],
        action: &mut [f64],
        _rng: &mut Rng,
    ) -> Result<Maximum> {
        crate::maximize::check_call(self.name(), &self.space, q, state, action)?;
        let log_z = self.log_partition_at_nodes(q, q_ws, ws, state)?;
        let (nodes, values) = (self.quadrature.nodes(), &ws.values);
        // The Boltzmann mean Σⱼ pⱼ aⱼ with pⱼ = wⱼ exp(q/β) / Z.
        action.fill(0.0);
        let m = self.quadrature.dim();
        for ((v, w), node) in values
            .iter()
            .zip(self.quadrature.log_weights())
            .zip(nodes.chunks_exact(m))
        {
            let p = (v + w - log_z).exp();
            for (a, x) in action.iter_mut().zip(node) {
                *a += p * x;
            }
        }
        Ok(Maximum {
            value: self.beta * log_z,
            evaluations: self.quadrature.len(),
        })
    }
}

impl LogPartition {
    /// `log Z = log Σⱼ wⱼ exp(q(state, aⱼ)/β)` by log-sum-exp, leaving `q(state, aⱼ)/β` in
    /// `ws.values`: what the smooth maximum and the Boltzmann draws share. A NaN value of
    /// q is an error naming the node.
    fn log_partition_at_nodes<Q: QFunction>(
        &self,
        q: &Q,
        q_ws: &mut Q::Workspace,
        ws: &mut LogPartitionWorkspace,
        state: &[f64],
    ) -> Result<f64> {
        let nodes = self.quadrature.nodes();
        let values = &mut ws.values;
        q.values_at_actions(q_ws, state, nodes, values)?;
        if let Some(j) = values.iter().position(|v| v.is_nan()) {
            let m = self.quadrature.dim();
            return Err(Error::Numerical {
                context: "log-partition".into(),
                reason: format!("q is NaN at action {:?}", &nodes[j * m..(j + 1) * m]),
            });
        }
        // Exponents q/β + log w, shifted by their maximum M (log-sum-exp).
        let inverse_beta = 1.0 / self.beta;
        for v in values.iter_mut() {
            *v *= inverse_beta;
        }
        Ok(self.quadrature.log_integral_exp(values))
    }

    /// Draws an action from the Boltzmann policy `d(a|state) ∝ exp(q(state, a)/β)` as the
    /// quadrature sees it: node `aⱼ` with probability `wⱼ exp(q(state, aⱼ)/β) / Z`.
    /// Returns the smooth maximum `β log Z`, as [`Maximizer::maximize`] does.
    pub fn sample_action<Q: QFunction>(
        &self,
        q: &Q,
        q_ws: &mut Q::Workspace,
        ws: &mut LogPartitionWorkspace,
        state: &[f64],
        action: &mut [f64],
        rng: &mut Rng,
    ) -> Result<Maximum> {
        crate::maximize::check_call("log-partition sample", &self.space, q, state, action)?;
        let log_z = self.log_partition_at_nodes(q, q_ws, ws, state)?;
        let nodes = self.quadrature.nodes();
        if !log_z.is_finite() {
            return Err(Error::Numerical {
                context: "log-partition sample".into(),
                reason: format!("log Z = {log_z}"),
            });
        }
        // Inverse CDF over the nodes; the last node takes what rounding leaves.
        let u: f64 = rng.gen();
        let m = self.quadrature.dim();
        let last = self.quadrature.len() - 1;
        let mut cumulative = 0.0;
        let mut chosen = last;
        for (j, (v, w)) in ws
            .values
            .iter()
            .zip(self.quadrature.log_weights())
            .enumerate()
        {
            cumulative += (v + w - log_z).exp();
            if u < cumulative {
                chosen = j;
                break;
            }
        }
        action.copy_from_slice(&nodes[chosen * m..(chosen + 1) * m]);
        Ok(Maximum {
            value: self.beta * log_z,
            evaluations: self.quadrature.len(),
        })
    }

    /// The same smooth maximum, writing a draw from the Boltzmann policy instead of its
    /// mean: act with it through [`crate::algo::GreedyPolicy`] to sample `d(a|s)`.
    pub fn sampler(&self) -> BoltzmannSampler {
        BoltzmannSampler(self.clone())
    }
}

/// [`LogPartition`] whose action is a draw from the Boltzmann policy
/// ([`LogPartition::sample_action`], from the stream the caller hands it).
#[derive(Clone, Debug)]
pub struct BoltzmannSampler(LogPartition);

impl Maximizer for BoltzmannSampler {
    type Workspace = LogPartitionWorkspace;

    fn name(&self) -> &str {
        "boltzmann-sampler"
    }

    fn action_space(&self) -> &ActionSpace {
        &self.0.space
    }

    fn workspace(&self) -> LogPartitionWorkspace {
        self.0.workspace()
    }

    fn maximize<Q: QFunction>(
        &self,
        q: &Q,
        q_ws: &mut Q::Workspace,
        ws: &mut LogPartitionWorkspace,
        state: &[f64],
        action: &mut [f64],
        rng: &mut Rng,
    ) -> Result<Maximum> {
        self.0.sample_action(q, q_ws, ws, state, action, rng)
    }
}

/// `β log ∫_A exp(q(s', a)/β) da` estimated by Monte Carlo: `N` actions uniform over the
/// box, `β (log|A| + log((1/N) Σⱼ exp(q(s', aⱼ)/β)))` (see the module documentation).
#[derive(Clone, Debug)]
pub struct MonteCarloLogPartition {
    beta: f64,
    samples: usize,
    space: ActionSpace,
    low: Vec<f64>,
    width: Vec<f64>,
    /// log |A|.
    log_volume: f64,
}

/// Per-thread scratch: the sampled actions and q at each.
#[derive(Clone, Debug)]
pub struct MonteCarloWorkspace {
    actions: Vec<f64>,
    values: Vec<f64>,
}

impl MonteCarloLogPartition {
    /// The estimator with `samples` uniform actions over `space`, a finite box.
    pub fn new(space: &ActionSpace, beta: f64, samples: usize) -> Result<Self> {
        if !(beta.is_finite() && beta > 0.0) {
            return Err(Error::invalid(
                "monte_carlo.beta",
                format!("{beta} is not a positive finite number"),
            ));
        }
        if samples == 0 {
            return Err(Error::invalid("monte_carlo.samples", "must be at least 1"));
        }
        let ActionSpace::Box { low, high } = space else {
            return Err(Error::invalid(
                "monte_carlo.action_space",
                "the integral over actions needs a continuous (box) action space",
            ));
        };
        if let Some(i) = (0..low.len())
            .find(|&i| !(low[i].is_finite() && high[i].is_finite() && low[i] < high[i]))
        {
            return Err(Error::invalid(
                "monte_carlo.action_space",
                format!(
                    "component {i} is [{}, {}], not a finite non-empty interval",
                    low[i], high[i]
                ),
            ));
        }
        let width: Vec<f64> = low.iter().zip(high).map(|(l, h)| h - l).collect();
        Ok(MonteCarloLogPartition {
            beta,
            samples,
            space: space.clone(),
            log_volume: width.iter().map(|w| w.ln()).sum(),
            low: low.clone(),
            width,
        })
    }

    pub fn beta(&self) -> f64 {
        self.beta
    }

    pub fn samples(&self) -> usize {
        self.samples
    }
}

impl Maximizer for MonteCarloLogPartition {
    type Workspace = MonteCarloWorkspace;

    fn name(&self) -> &str {
        "monte-carlo log-partition"
    }

    fn action_space(&self) -> &ActionSpace {
        &self.space
    }

    fn workspace(&self) -> MonteCarloWorkspace {
        MonteCarloWorkspace {
            actions: vec![0.0; self.samples * self.low.len()],
            values: vec![0.0; self.samples],
        }
    }

    /// Returns the estimate as the value and writes the self-normalized weighted mean of
    /// the draws, `Σⱼ exp(q(s', aⱼ)/β) aⱼ / Σⱼ exp(q(s', aⱼ)/β)`, into `action`.
    fn maximize<Q: QFunction>(
        &self,
        q: &Q,
        q_ws: &mut Q::Workspace,
        ws: &mut MonteCarloWorkspace,
        state: &[f64],
        action: &mut [f64],
        rng: &mut Rng,
    ) -> Result<Maximum> {
        crate::maximize::check_call(self.name(), &self.space, q, state, action)?;
        let m = self.low.len();
        for a in ws.actions.chunks_exact_mut(m) {
            for ((x, low), width) in a.iter_mut().zip(&self.low).zip(&self.width) {
                *x = low + width * rng.gen::<f64>();
            }
        }
        q.values_at_actions(q_ws, state, &ws.actions, &mut ws.values)?;
        let inverse_beta = 1.0 / self.beta;
        let mut shift = f64::NEG_INFINITY;
        for v in ws.values.iter_mut() {
            if v.is_nan() {
                return Err(Error::Numerical {
                    context: self.name().into(),
                    reason: "q is NaN at a sampled action".into(),
                });
            }
            *v *= inverse_beta;
            shift = shift.max(*v);
        }
        if !shift.is_finite() {
            return Err(Error::Numerical {
                context: self.name().into(),
                reason: format!("the largest q/β is {shift}"),
            });
        }
        action.fill(0.0);
        let mut sum = 0.0;
        for (v, a) in ws.values.iter().zip(ws.actions.chunks_exact(m)) {
            let weight = (v - shift).exp();
            sum += weight;
            for (x, y) in action.iter_mut().zip(a) {
                *x += weight * y;
            }
        }
        for x in action.iter_mut() {
            *x /= sum;
        }
        let log_mean = shift + (sum / self.samples as f64).ln();
        Ok(Maximum {
            value: self.beta * (self.log_volume + log_mean),
            evaluations: self.samples,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gauss_legendre_integrates_polynomials_of_degree_2n_minus_1_exactly() {
        for n in [1, 2, 3, 5, 8, 20] {
            let (x, w) = gauss_legendre(n);
            assert!((w.iter().sum::<f64>() - 2.0).abs() < 1e-13, "n = {n}");
            assert!(x.windows(2).all(|p| p[0] < p[1]), "n = {n}: nodes sorted");
            for degree in 0..2 * n {
                let exact = if degree % 2 == 1 {
                    0.0
                } else {
                    2.0 / (degree as f64 + 1.0)
                };
                let rule: f64 = x
                    .iter()
                    .zip(&w)
                    .map(|(x, w)| w * x.powi(degree as i32))
                    .sum();
                assert!((rule - exact).abs() < 1e-13, "n = {n}, degree {degree}");
            }
        }
    }

    #[test]
    fn box_rules_integrate_products_and_order_nodes_last_dimension_fastest() {
        let rule = BoxQuadrature::gauss_legendre(&[0.0, -1.0], &[2.0, 3.0], 3, 2).unwrap();
        assert_eq!(rule.len(), 36);
        assert_eq!(rule.nodes()[0], rule.nodes()[2], "first coordinate repeats");
        // ∫₀² ∫₋₁³ x y² dy dx = 2 · (27 + 1)/3.
        let log_f: Vec<f64> = rule
            .nodes()
            .chunks(2)
            .map(|a| (a[0] * a[1] * a[1]).ln())
            .collect();
        let value = rule.log_integral_exp(&log_f).exp();
        assert!((value - 2.0 * 28.0 / 3.0).abs() < 1e-10, "{value}");
    }
}
