//! The decision rule d(s; w) of `fitted-q-iteration-amortized`: the function approximator
//! that learns to predict `maximize(q(s, ·; θ))` from the solver's answers, so that the
//! targets of base points outside 𝓑_opt can use `a* = d(s'; wₙ)` instead of a solve.
//!
//! One trait, [`DecisionRule`], with the two operations the pseudocode asks of d: predict
//! a batch of actions (step 3.3.3.1), and `w ← fit(𝒟_d)` (step 3.6). Two rules:
//!
//! - [`LinearPolicy`]: `d(s; W, b) = clip(W s + b)`, fitted by ridge least squares (exact,
//!   f64, independent of wₙ). The LQR's optimal policy `a = −K s` is in this class, so on
//!   an LQR task the rule can represent the solver's answers exactly.
//! - [`MlpPolicy`]: an `Mlp<f32>` on s, with the output map of the deterministic policies
//!   of NFQCA and DDPG ([`ActionMap`]: identity, or tanh scaled onto the action box),
//!   fitted by minibatch Adam regression on 𝒟_d, warm-started from wₙ with Adam's
//!   moments kept across iterations. [`MlpPolicy::policy`] gives the
//!   [`DeterministicPolicy`] snapshot to evaluate.
//!
//! Both clip their actions into the action box: the targets are computed at feasible
//! actions only, as the solver's are.

use nalgebra::{DMatrix, DVector};
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use super::deterministic_policy::{ActionMap, DeterministicPolicy, PolicyOutput};
use crate::env::ActionSpace;
use crate::error::{Error, Result};
use crate::nn::{mse_with_gradient, Adam, AdamConfig, Mlp, Workspace};
use crate::rng::Rng;

/// A deterministic decision rule d(s; w) that can be fitted to (s, a*) pairs.
pub trait DecisionRule: Sync {
    /// Per-thread scratch for [`DecisionRule::predict`].
    type Workspace: Send;

    fn state_dim(&self) -> usize;
    fn action_dim(&self) -> usize;

    /// Scratch for batches of up to `rows` states (larger batches may grow it).
    fn workspace(&self, rows: usize) -> Self::Workspace;

    /// `d(sᵢ; w)` for every row sᵢ of `states` (`rows × state_dim`, row-major), into
    /// `actions` (`rows × action_dim`).
    fn predict(&self, ws: &mut Self::Workspace, states: &[f64], actions: &mut [f64]) -> Result<()>;

    /// `w ← fit(𝒟_d)`: regress the rule on the pairs (`states` row i, `actions` row i),
    /// of which there is at least one; randomness (minibatch order) comes from `rng`.
    /// Returns the rule's own measure of the fit (documented by each implementation).
    fn fit(&mut self, states: &[f64], actions: &[f64], rng: &mut Rng) -> Result<f64>;
}

/// The bounds of a box action space (errors name `field`).
fn box_bounds(space: &ActionSpace, field: &str) -> Result<(Vec<f64>, Vec<f64>)> {
    match space {
        ActionSpace::Box { low, high } => {
            if let Some(i) =
                (0..low.len()).find(|&i| low[i].is_nan() || high[i].is_nan() || low[i] > high[i])
            {
                return Err(Error::invalid(
                    field,
                    format!(
                        "bounds [{}, {}] of component {i} are not an interval",
                        low[i], high[i]
                    ),
                ));
            }
            Ok((low.clone(), high.clone()))
        }
        ActionSpace::Integer(_) => Err(Error::invalid(
            field,
            "a decision rule needs a continuous (box) action space, not an integer one",
        )),
    }
}

/// Lengths of a batch of `rows` states and actions.
fn check_batch(
    rule: &str,
    states: &[f64],
    actions: &[f64],
    state_dim: usize,
    action_dim: usize,
) -> Result<usize> {
    let rows = actions.len() / action_dim.max(1);
    if states.len() != rows * state_dim || actions.len() != rows * action_dim {
        return Err(Error::invalid(
            format!("{rule}: batch"),
            format!(
                "{} state values and {} action values are not rows of {state_dim} and {action_dim}",
                states.len(),
                actions.len()
            ),
        ));
    }
    Ok(rows)
}

/// The settings of [`LinearPolicy`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LinearPolicySettings {
    /// Fit a constant term b (otherwise d(s) = clip(W s)). Default true.
    pub bias: bool,
    /// Ridge λ ≥ 0 of the least-squares fit, on the mean squared error's scale (as in
    /// [`super::fit::LeastSquares`]). Default 1e-10.
    pub ridge: f64,
}

impl Default for LinearPolicySettings {
    fn default() -> Self {
        LinearPolicySettings {
            bias: true,
            ridge: 1e-10,
        }
    }
}

/// `d(s; W, b) = clip(W s + b)` onto the action box, fitted by ridge least squares:
/// `[W b] = argmin (1/|𝒟_d|) Σ ‖W s + b − a*‖² + λ‖[W b]‖²` (the fit ignores the clip).
#[derive(Clone, Debug, PartialEq)]
pub struct LinearPolicy {
    state_dim: usize,
    action_dim: usize,
    settings: LinearPolicySettings,
    /// `[W b]`, `m × (n + 1)` row-major (the last column is b, zero without a bias).
    params: Vec<f64>,
    low: Vec<f64>,
    high: Vec<f64>,
}

impl LinearPolicy {
    /// The rule `d(s) = clip(0)` (W = 0, b = 0) for states of `state_dim` components on
    /// the box `space`.
    pub fn zeros(
        state_dim: usize,
        space: &ActionSpace,
        settings: LinearPolicySettings,
    ) -> Result<Self> {
        if state_dim == 0 {
            return Err(Error::invalid(
                "linear_policy.state_dim",
                "must be at least 1",
            ));
        }
        if !(settings.ridge.is_finite() && settings.ridge >= 0.0) {
            return Err(Error::invalid(
                "linear_policy.ridge",
                format!("{} is not a finite number ≥ 0", settings.ridge),
            ));
        }
        let (low, high) = box_bounds(space, "linear_policy.action_space")?;
        let action_dim = low.len();
        if action_dim == 0 {
            return Err(Error::invalid(
                "linear_policy.action_space",
                "has no components",
            ));
        }
        Ok(LinearPolicy {
            state_dim,
            action_dim,
            settings,
            params: vec![0.0; action_dim * (state_dim + 1)],
            low,
            high,
        })
    }

    pub fn settings(&self) -> &LinearPolicySettings {
        &self.settings
    }

    /// W, `m × n`.
    pub fn weights(&self) -> DMatrix<f64> {
        let n = self.state_dim;
        DMatrix::from_fn(self.action_dim, n, |r, c| self.params[r * (n + 1) + c])
    }

    /// b, length m.
    pub fn bias(&self) -> DVector<f64> {
        let n = self.state_dim;
        DVector::from_fn(self.action_dim, |r, _| self.params[r * (n + 1) + n])
    }

    /// Set W (`m × n`) and b (length m; must be zero without a bias).
    pub fn set_params(&mut self, weights: &DMatrix<f64>, bias: &DVector<f64>) -> Result<()> {
        let (m, n) = (self.action_dim, self.state_dim);
        if weights.shape() != (m, n) || bias.len() != m {
            return Err(Error::invalid(
                "linear_policy.params",
                format!(
                    "W is {:?} and b has {} entries; expected ({m}, {n}) and {m}",
                    weights.shape(),
                    bias.len()
                ),
            ));
        }
        if !self.settings.bias && bias.iter().any(|&b| b != 0.0) {
            return Err(Error::invalid(
                "linear_policy.params",
                "a rule without bias needs b = 0",
            ));
        }
        if weights.iter().chain(bias.iter()).any(|x| !x.is_finite()) {
            return Err(Error::invalid("linear_policy.params", "not all finite"));
        }
        for r in 0..m {
            for c in 0..n {
                self.params[r * (n + 1) + c] = weights[(r, c)];
            }
            self.params[r * (n + 1) + n] = bias[r];
        }
        Ok(())
    }
}

impl DecisionRule for LinearPolicy {
    type Workspace = ();

    fn state_dim(&self) -> usize {
        self.state_dim
    }

    fn action_dim(&self) -> usize {
        self.action_dim
    }

    fn workspace(&self, _rows: usize) {}

    fn predict(&self, _ws: &mut (), states: &[f64], actions: &mut [f64]) -> Result<()> {
        let (n, m) = (self.state_dim, self.action_dim);
        check_batch("linear_policy", states, actions, n, m)?;
        for (s, a) in states.chunks_exact(n).zip(actions.chunks_exact_mut(m)) {
            for (r, a_r) in a.iter_mut().enumerate() {
                let row = &self.params[r * (n + 1)..(r + 1) * (n + 1)];
                let linear: f64 = row[..n].iter().zip(s).map(|(w, x)| w * x).sum();
                *a_r = (linear + row[n]).clamp(self.low[r], self.high[r]);
            }
        }
        Ok(())
    }

    /// Exact ridge least squares; returns `(1/|𝒟_d|) Σ ‖W s + b − a*‖²` of the fitted rule
    /// (before clipping).
    fn fit(&mut self, states: &[f64], actions: &[f64], _rng: &mut Rng) -> Result<f64> {
        let (n, m) = (self.state_dim, self.action_dim);
        let rows = check_batch("linear_policy", states, actions, n, m)?;
        if rows == 0 {
            return Err(Error::invalid("linear_policy: batch", "no pairs to fit"));
        }
        // Features x = [s, 1] (or [s]); normal equations (XᵀX/N + λI) P = XᵀA/N.
        let p = if self.settings.bias { n + 1 } else { n };
        let count = rows as f64;
        let mut gram = DMatrix::<f64>::zeros(p, p);
        let mut rhs = DMatrix::<f64>::zeros(p, m);
        let feature = |s: &[f64], j: usize| if j < n { s[j] } else { 1.0 };
        for (s, a) in states.chunks_exact(n).zip(actions.chunks_exact(m)) {
            for r in 0..p {
                let xr = feature(s, r);
                for c in r..p {
                    gram[(r, c)] += xr * feature(s, c);
                }
                for (k, &ak) in a.iter().enumerate() {
                    rhs[(r, k)] += xr * ak;
                }
            }
        }
        for r in 0..p {
            for c in r..p {
                let value = gram[(r, c)] / count;
                gram[(r, c)] = value;
                gram[(c, r)] = value;
            }
            gram[(r, r)] += self.settings.ridge;
        }
        rhs /= count;
        let solution = gram
            .cholesky()
            .ok_or_else(|| Error::Numerical {
                context: "linear decision-rule fit".into(),
                reason: format!(
                    "the normal equations are singular (states collinear on 𝒟_d); use a ridge > {}",
                    self.settings.ridge
                ),
            })?
            .solve(&rhs);
        if solution.iter().any(|x| !x.is_finite()) {
            return Err(Error::Numerical {
                context: "linear decision-rule fit".into(),
                reason: "the solution is not finite".into(),
            });
        }
        for k in 0..m {
            for j in 0..n {
                self.params[k * (n + 1) + j] = solution[(j, k)];
            }
            self.params[k * (n + 1) + n] = if self.settings.bias {
                solution[(n, k)]
            } else {
                0.0
            };
        }
        let mut squared_error = 0.0;
        for (s, a) in states.chunks_exact(n).zip(actions.chunks_exact(m)) {
            for (k, &ak) in a.iter().enumerate() {
                let row = &self.params[k * (n + 1)..(k + 1) * (n + 1)];
                let prediction: f64 =
                    row[..n].iter().zip(s).map(|(w, x)| w * x).sum::<f64>() + row[n];
                squared_error += (prediction - ak) * (prediction - ak);
            }
        }
        Ok(squared_error / count)
    }
}

/// How long one `w ← fit(𝒟_d)` of [`MlpPolicy`] runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FitLength {
    /// Full passes over 𝒟_d: the work grows with |𝒟_d| (with the budget and the window K).
    Epochs(usize),
    /// Exactly this many minibatch steps, through successive shuffled passes (the last
    /// one cut short): the same work per iteration whatever |𝒟_d|, so budgets and
    /// windows can be compared at equal fitting effort.
    Steps(usize),
}

/// The settings of [`MlpPolicy`]'s fit.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MlpPolicySettings {
    /// Epochs or minibatch steps per iteration (≥ 1). Default `Epochs(10)`.
    pub length: FitLength,
    /// Minibatch size (≥ 1; a smaller 𝒟_d is one batch). Default 128.
    pub batch_size: usize,
    /// Adam's hyperparameters. Default learning rate 1e-3.
    pub adam: AdamConfig,
}

impl Default for MlpPolicySettings {
    fn default() -> Self {
        MlpPolicySettings {
            length: FitLength::Epochs(10),
            batch_size: 128,
            adam: AdamConfig::with_lr(1e-3),
        }
    }
}

/// `d(s; w)`: an `Mlp<f32>` on s whose output becomes an action through an [`ActionMap`]
/// (then clipped into the box), fitted by minibatch Adam on the mean squared error
/// between its output and the solver's actions in the map's agent coordinates.
///
/// Fits are warm-started from wₙ; the Adam moments persist across iterations; every
/// buffer grows to the largest 𝒟_d seen and is reused.
#[derive(Clone, Debug)]
pub struct MlpPolicy {
    actor: Mlp<f32>,
    map: ActionMap,
    settings: MlpPolicySettings,
    adam: Adam<f32>,
    workspace: Workspace<f32>,
    grads: Vec<f32>,
    /// 𝒟_d as f32: state rows and agent-coordinate action rows.
    inputs: Vec<f32>,
    outputs: Vec<f32>,
    batch_inputs: Vec<f32>,
    batch_outputs: Vec<f32>,
    batch_grad: Vec<f32>,
    agent: Vec<f64>,
    order: Vec<usize>,
}

/// Scratch of [`MlpPolicy::predict`]: the network's activations and f32 input rows.
#[derive(Clone, Debug)]
pub struct MlpPolicyWorkspace {
    network: Workspace<f32>,
    input: Vec<f32>,
    agent: Vec<f64>,
}

impl MlpPolicy {
    /// Wrap `actor` (inputs: the state; outputs: one per action component; output
    /// activation that of `map`'s [`PolicyOutput`]) with checked `settings`.
    pub fn new(actor: Mlp<f32>, map: ActionMap, settings: MlpPolicySettings) -> Result<Self> {
        if actor.output_dim() != map.dim() {
            return Err(Error::invalid(
                "mlp_policy.actor",
                format!(
                    "outputs {} values, the action space has {}",
                    actor.output_dim(),
                    map.dim()
                ),
            ));
        }
        if actor.output_activation() != map.output().activation() {
            return Err(Error::invalid(
                "mlp_policy.actor",
                format!(
                    "output activation {:?}, the map {:?} needs {:?}",
                    actor.output_activation(),
                    map.output(),
                    map.output().activation()
                ),
            ));
        }
        match settings.length {
            FitLength::Epochs(0) => {
                return Err(Error::invalid(
                    "mlp_policy.length",
                    "0 epochs: must be at least 1",
                ))
            }
            FitLength::Steps(0) => {
                return Err(Error::invalid(
                    "mlp_policy.length",
                    "0 steps: must be at least 1",
                ))
            }
            _ => {}
        }
        if settings.batch_size == 0 {
            return Err(Error::invalid(
                "mlp_policy.batch_size",
                "must be at least 1",
            ));
        }
        let adam = Adam::new(settings.adam, actor.num_params()).map_err(|e| {
            super::deterministic_policy::rename_field(e, "mlp_policy.adam", "adam.")
        })?;
        Ok(MlpPolicy {
            workspace: actor.workspace(settings.batch_size),
            grads: actor.zero_grads(),
            agent: vec![0.0; map.dim()],
            actor,
            map,
            settings,
            adam,
            inputs: Vec::new(),
            outputs: Vec::new(),
            batch_inputs: Vec::new(),
            batch_outputs: Vec::new(),
            batch_grad: Vec::new(),
            order: Vec::new(),
        })
    }

    pub fn network(&self) -> &Mlp<f32> {
        &self.actor
    }

    pub fn action_map(&self) -> &ActionMap {
        &self.map
    }

    pub fn settings(&self) -> &MlpPolicySettings {
        &self.settings
    }

    /// A snapshot of d(·; w) to act with and evaluate. Its actions are those of
    /// [`DecisionRule::predict`] up to the clip (a [`PolicyOutput::Linear`] output is
    /// not clipped by the snapshot; environments clip their inputs).
    pub fn policy(&self) -> DeterministicPolicy {
        DeterministicPolicy::from_parts(&self.actor, &self.map)
    }
}

impl DecisionRule for MlpPolicy {
    type Workspace = MlpPolicyWorkspace;

    fn state_dim(&self) -> usize {
        self.actor.input_dim()
    }

    fn action_dim(&self) -> usize {
        self.map.dim()
    }

    fn workspace(&self, rows: usize) -> MlpPolicyWorkspace {
        let rows = rows.max(1);
        MlpPolicyWorkspace {
            network: self.actor.workspace(rows),
            input: vec![0.0; rows * self.actor.input_dim()],
            agent: vec![0.0; self.map.dim()],
        }
    }

    fn predict(
        &self,
        ws: &mut MlpPolicyWorkspace,
        states: &[f64],
        actions: &mut [f64],
    ) -> Result<()> {
        let (n, m) = (self.actor.input_dim(), self.map.dim());
        let rows = check_batch("mlp_policy", states, actions, n, m)?;
        if ws.input.len() < rows * n {
            ws.input.resize(rows * n, 0.0);
        }
        let input = &mut ws.input[..rows * n];
        for (x, &s) in input.iter_mut().zip(states) {
            *x = s as f32;
        }
        let output = self.actor.forward(input, &mut ws.network)?;
        for (y, a) in output.chunks_exact(m).zip(actions.chunks_exact_mut(m)) {
            for (u, &v) in ws.agent.iter_mut().zip(y) {
                *u = f64::from(v);
            }
            self.map.clip(&mut ws.agent);
            self.map.to_env(&ws.agent, a);
        }
        Ok(())
    }

    /// Minibatch Adam for the settings' [`FitLength`], each pass in an order drawn from
    /// `rng`; returns the mean of the last pass's minibatch losses (mean squared error
    /// per action component, in agent coordinates). A non-finite loss is an
    /// [`Error::Numerical`].
    fn fit(&mut self, states: &[f64], actions: &[f64], rng: &mut Rng) -> Result<f64> {
        let (n, m) = (self.actor.input_dim(), self.map.dim());
        let rows = check_batch("mlp_policy", states, actions, n, m)?;
        if rows == 0 {
            return Err(Error::invalid("mlp_policy: batch", "no pairs to fit"));
        }
        self.inputs.clear();
        self.inputs.extend(states.iter().map(|&s| s as f32));
        self.outputs.clear();
        for a in actions.chunks_exact(m) {
            self.map.to_agent(a, &mut self.agent);
            self.outputs.extend(self.agent.iter().map(|&u| u as f32));
        }
        let batch = self.settings.batch_size.min(rows);
        self.batch_inputs.resize(batch * n, 0.0);
        self.batch_outputs.resize(batch * m, 0.0);
        self.batch_grad.resize(batch * m, 0.0);
        self.order.clear();
        self.order.extend(0..rows);
        let mut steps_left = match self.settings.length {
            FitLength::Epochs(epochs) => epochs * rows.div_ceil(batch),
            FitLength::Steps(steps) => steps,
        };
        let mut last_pass = 0.0;
        while steps_left > 0 {
            self.order.shuffle(rng);
            let (mut sum, mut batches) = (0.0, 0usize);
            for chunk in self.order.chunks(batch).take(steps_left) {
                let b = chunk.len();
                for (r, &i) in chunk.iter().enumerate() {
                    self.batch_inputs[r * n..(r + 1) * n]
                        .copy_from_slice(&self.inputs[i * n..(i + 1) * n]);
                    self.batch_outputs[r * m..(r + 1) * m]
                        .copy_from_slice(&self.outputs[i * m..(i + 1) * m]);
                }
                let prediction = self
                    .actor
                    .forward(&self.batch_inputs[..b * n], &mut self.workspace)?;
                let loss = mse_with_gradient(
                    prediction,
                    &self.batch_outputs[..b * m],
                    &mut self.batch_grad[..b * m],
                )?;
                if !loss.is_finite() {
                    return Err(Error::Numerical {
                        context: "decision-rule fit (mlp_policy)".into(),
                        reason: format!("minibatch loss is {loss}"),
                    });
                }
                self.grads.fill(0.0);
                self.actor.backward(
                    &mut self.workspace,
                    &self.batch_grad[..b * m],
                    &mut self.grads,
                    None,
                )?;
                self.adam.step(self.actor.params_mut(), &self.grads)?;
                sum += loss;
                batches += 1;
            }
            steps_left -= batches;
            last_pass = sum / batches as f64;
        }
        Ok(last_pass)
    }
}

/// Convenience: the [`ActionMap`] of `output` on `space`, named for decision rules.
pub fn mlp_policy_map(output: PolicyOutput, space: &ActionSpace) -> Result<ActionMap> {
    ActionMap::new(output, space, "mlp_policy.action_space")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::MlpConfig;
    use crate::rng::RunSeed;

    fn unit_box(m: usize) -> ActionSpace {
        ActionSpace::Box {
            low: vec![-1.0; m],
            high: vec![1.0; m],
        }
    }

    #[test]
    fn linear_policy_recovers_an_affine_rule_and_clips_its_predictions() {
        let mut rule =
            LinearPolicy::zeros(2, &unit_box(1), LinearPolicySettings::default()).unwrap();
        let (mut states, mut actions) = (Vec::new(), Vec::new());
        for i in 0..50 {
            let x = i as f64;
            let s = [(0.3 * x).sin(), (0.7 * x).cos()];
            states.extend_from_slice(&s);
            actions.push(0.4 * s[0] - 0.2 * s[1] + 0.1);
        }
        let mut rng = RunSeed(0).stream("unused");
        let loss = rule.fit(&states, &actions, &mut rng).unwrap();
        assert!(loss < 1e-18, "{loss}");
        assert!((rule.weights()[(0, 0)] - 0.4).abs() < 1e-8);
        assert!((rule.weights()[(0, 1)] + 0.2).abs() < 1e-8);
        assert!((rule.bias()[0] - 0.1).abs() < 1e-8);
        let mut out = [0.0; 2];
        rule.predict(&mut (), &[10.0, 0.0, 0.5, 0.5], &mut out)
            .unwrap();
        assert_eq!(out[0], 1.0, "clipped to the box");
        assert!((out[1] - 0.2).abs() < 1e-8);
        assert!(matches!(
            rule.predict(&mut (), &[1.0], &mut out),
            Err(Error::InvalidParameter { .. })
        ));
    }

    #[test]
    fn mlp_policy_learns_a_smooth_rule() {
        let space = unit_box(1);
        let map = mlp_policy_map(PolicyOutput::TanhScaled, &space).unwrap();
        let config = MlpConfig::new(&[1, 32, 1]).output(PolicyOutput::TanhScaled.activation());
        let actor = Mlp::new(&config, &mut RunSeed(1).stream("init")).unwrap();
        let mut rule = MlpPolicy::new(
            actor,
            map,
            MlpPolicySettings {
                length: FitLength::Epochs(200),
                batch_size: 32,
                adam: AdamConfig::with_lr(1e-2),
            },
        )
        .unwrap();
        let states: Vec<f64> = (0..64).map(|i| -1.0 + 2.0 * i as f64 / 63.0).collect();
        let actions: Vec<f64> = states.iter().map(|s| 0.8 * (2.0 * s).sin()).collect();
        let mut rng = RunSeed(2).stream("fit");
        let loss = rule.fit(&states, &actions, &mut rng).unwrap();
        assert!(loss < 1e-3, "{loss}");
        let mut predicted = vec![0.0; 64];
        let mut ws = rule.workspace(64);
        rule.predict(&mut ws, &states, &mut predicted).unwrap();
        let worst = predicted
            .iter()
            .zip(&actions)
            .map(|(p, a)| (p - a).abs())
            .fold(0.0, f64::max);
        assert!(worst < 0.1, "{worst}");

        let bad = |settings: MlpPolicySettings| {
            let actor = Mlp::new(&config, &mut RunSeed(1).stream("init")).unwrap();
            match MlpPolicy::new(actor, rule.action_map().clone(), settings) {
                Err(Error::InvalidParameter { field, .. }) => field,
                other => panic!("{other:?}"),
            }
        };
        let ok = MlpPolicySettings::default();
        for length in [FitLength::Epochs(0), FitLength::Steps(0)] {
            assert_eq!(bad(MlpPolicySettings { length, ..ok }), "mlp_policy.length");
        }
        assert_eq!(
            bad(MlpPolicySettings {
                adam: AdamConfig::with_lr(0.0),
                ..ok
            }),
            "mlp_policy.adam.lr"
        );
        // An identity-output actor does not fit a tanh map.
        let linear = Mlp::new(&MlpConfig::new(&[1, 8, 1]), &mut RunSeed(1).stream("i")).unwrap();
        assert!(MlpPolicy::new(linear, rule.action_map().clone(), ok).is_err());
    }

    #[test]
    fn fit_lengths_count_minibatch_steps() {
        let space = unit_box(1);
        let config = MlpConfig::new(&[1, 8, 1]).output(PolicyOutput::TanhScaled.activation());
        let states: Vec<f64> = (0..50).map(|i| i as f64 / 50.0).collect();
        let actions: Vec<f64> = states.iter().map(|s| 0.5 * s).collect();
        // 50 pairs in batches of 16: 4 minibatches per pass.
        for (length, steps) in [
            (FitLength::Epochs(2), 8),
            (FitLength::Steps(7), 7),
            (FitLength::Steps(1), 1),
        ] {
            let actor = Mlp::new(&config, &mut RunSeed(1).stream("init")).unwrap();
            let mut rule = MlpPolicy::new(
                actor,
                mlp_policy_map(PolicyOutput::TanhScaled, &space).unwrap(),
                MlpPolicySettings {
                    length,
                    batch_size: 16,
                    adam: AdamConfig::with_lr(1e-3),
                },
            )
            .unwrap();
            let mut rng = RunSeed(0).stream("fit");
            rule.fit(&states, &actions, &mut rng).unwrap();
            rule.fit(&states, &actions, &mut rng).unwrap();
            assert_eq!(rule.adam.steps(), 2 * steps, "{length:?}");
        }
    }
}
