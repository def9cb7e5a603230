//! q(s, a; θ) as a multilayer perceptron on the concatenated input [s, a] with one output.
//!
//! The maximizers and the ground truth work in f64, the network in f32: states and
//! actions are converted at the boundary into buffers of the workspace, so an
//! evaluation allocates nothing. ∇ₐq is the action columns of the network's input
//! gradient. [`MlpQ::values_into`] evaluates many (s, a) rows in one forward pass, for
//! FQI's regression targets and its convergence measure δ. An optional [`InputScaling`]
//! maps the raw [s, a] into the network's input range first.

use super::super::maximize::{QFunction, ReluNetwork};
use super::input_scaling::InputScaling;
use crate::error::{Error, Result};
use crate::nn::{Mlp, MlpConfig, Workspace};
use crate::rng::Rng;

/// A critic q(s, a; θ): an [`Mlp<f32>`] whose input is `state_dim` state components
/// followed by the action components, and whose output is q.
#[derive(Clone, Debug, PartialEq)]
pub struct MlpQ {
    network: Mlp<f32>,
    state_dim: usize,
    action_dim: usize,
    /// Applied to [s, a] before the network; None: the raw values.
    scaling: Option<InputScaling>,
}

/// Per-thread buffers of an [`MlpQ`]: the network's workspace, the f32 input rows, and
/// the backpropagation buffers of the action gradient.
#[derive(Clone, Debug)]
pub struct MlpQWorkspace {
    network: Workspace<f32>,
    input: Vec<f32>,
    grad_output: Vec<f32>,
    grad_input: Vec<f32>,
}

impl MlpQ {
    /// Wrap `network`, whose first `state_dim` inputs are the state and the rest (at
    /// least one) the action, and which has exactly one output.
    pub fn new(network: Mlp<f32>, state_dim: usize) -> Result<Self> {
        let inputs = network.input_dim();
        if inputs <= state_dim {
            return Err(Error::invalid(
                "mlp_q.network",
                format!("has {inputs} inputs, leaving no action component after {state_dim} state components"),
            ));
        }
        if network.output_dim() != 1 {
            return Err(Error::invalid(
                "mlp_q.network",
                format!("has {} outputs, q needs exactly 1", network.output_dim()),
            ));
        }
        Ok(MlpQ {
            state_dim,
            action_dim: inputs - state_dim,
            network,
            scaling: None,
        })
    }

    /// The same critic with `scaling` applied to [s, a] before the network, so that q
    /// stays a function of the raw state and action. One pair of bounds per input.
    pub fn with_input_scaling(mut self, scaling: InputScaling) -> Result<Self> {
        let inputs = self.state_dim + self.action_dim;
        if scaling.len() != inputs {
            return Err(Error::invalid(
                "mlp_q.input_scaling",
                format!(
                    "has {} components, the network {inputs} inputs",
                    scaling.len()
                ),
            ));
        }
        self.scaling = Some(scaling);
        Ok(self)
    }

    pub fn input_scaling(&self) -> Option<&InputScaling> {
        self.scaling.as_ref()
    }

    /// The network's input row for (s, a): scaled, or converted as is.
    fn encode(&self, state: &[f64], action: &[f64], row: &mut [f32]) {
        let (s, a) = row.split_at_mut(self.state_dim);
        match &self.scaling {
            Some(scaling) => {
                scaling.apply(0, state, s);
                scaling.apply(self.state_dim, action, a);
            }
            None => {
                convert(state, s);
                convert(action, a);
            }
        }
    }

    /// ∂q/∂a from the network's input gradient row: the action columns, times the
    /// scaling's factor (chain rule).
    fn action_gradient(&self, grad_input_row: &[f32], gradient: &mut [f64]) {
        let columns = &grad_input_row[self.state_dim..];
        match &self.scaling {
            Some(scaling) => {
                for ((g, &d), &s) in gradient
                    .iter_mut()
                    .zip(columns)
                    .zip(&scaling.scale()[self.state_dim..])
                {
                    *g = f64::from(d) * s;
                }
            }
            None => {
                for (g, &d) in gradient.iter_mut().zip(columns) {
                    *g = f64::from(d);
                }
            }
        }
    }

    /// A freshly initialized critic with the architecture of `config`
    /// (`config.sizes[0]` = state_dim + action_dim, last size 1).
    pub fn from_config(config: &MlpConfig, state_dim: usize, rng: &mut Rng) -> Result<Self> {
        Self::new(Mlp::new(config, rng)?, state_dim)
    }

    /// The critic q̄ = (1/K) Σₖ qₖ of critics of one architecture and input scaling, as one
    /// wider network ([`Mlp::mean_of`]), so a maximizer of q̄ is any maximizer of an `MlpQ`.
    pub fn mean_of(qs: &[MlpQ]) -> Result<Self> {
        let first = qs
            .first()
            .ok_or_else(|| Error::invalid("qs", "an average of no critics"))?;
        if let Some(k) = qs
            .iter()
            .position(|q| q.state_dim != first.state_dim || q.scaling != first.scaling)
        {
            return Err(Error::invalid(
                "qs",
                format!("critic {k} has another state dimension or input scaling than critic 0"),
            ));
        }
        let networks: Vec<Mlp<f32>> = qs.iter().map(|q| q.network.clone()).collect();
        let mut mean = MlpQ::new(Mlp::mean_of(&networks)?, first.state_dim)?;
        mean.scaling = first.scaling.clone();
        Ok(mean)
    }

    pub fn network(&self) -> &Mlp<f32> {
        &self.network
    }

    /// The network, for fitting θ (an optimizer step on its parameters, a target copy).
    /// Its sizes must stay those given to [`MlpQ::new`]; every evaluation checks them.
    pub fn network_mut(&mut self) -> &mut Mlp<f32> {
        &mut self.network
    }

    pub fn into_network(self) -> Mlp<f32> {
        self.network
    }

    /// A workspace for batches of up to `rows` rows in [`MlpQ::values_into`] (single
    /// evaluations need one row; a larger batch grows the workspace once).
    pub fn workspace_for_batch(&self, rows: usize) -> MlpQWorkspace {
        let rows = rows.max(1);
        let inputs = self.state_dim + self.action_dim;
        MlpQWorkspace {
            network: self.network.workspace(rows),
            input: vec![0.0; rows * inputs],
            grad_output: vec![1.0],
            grad_input: vec![0.0; inputs],
        }
    }

    /// q(sᵢ, aᵢ) for every row i, in one forward pass: `states` is `rows × state_dim` and
    /// `actions` is `rows × action_dim` (row-major), `out` has `rows` entries.
    pub fn values_into(
        &self,
        ws: &mut MlpQWorkspace,
        states: &[f64],
        actions: &[f64],
        out: &mut [f64],
    ) -> Result<()> {
        self.check_network()?;
        let rows = out.len();
        check_len("states", states.len(), rows, self.state_dim)?;
        check_len("actions", actions.len(), rows, self.action_dim)?;
        let inputs = self.state_dim + self.action_dim;
        if ws.input.len() < rows * inputs {
            ws.input.resize(rows * inputs, 0.0);
        }
        let input = &mut ws.input[..rows * inputs];
        for (i, row) in input.chunks_exact_mut(inputs).enumerate() {
            self.encode(
                &states[i * self.state_dim..(i + 1) * self.state_dim],
                &actions[i * self.action_dim..(i + 1) * self.action_dim],
                row,
            );
        }
        let output = self.network.forward(input, &mut ws.network)?;
        for (o, &y) in out.iter_mut().zip(output) {
            *o = f64::from(y);
        }
        Ok(())
    }

    /// Fill the one-row input [s, a] and run the forward pass; q(s, a).
    fn forward_one(&self, ws: &mut MlpQWorkspace, state: &[f64], action: &[f64]) -> Result<f64> {
        self.check_network()?;
        check_len("state", state.len(), 1, self.state_dim)?;
        check_len("action", action.len(), 1, self.action_dim)?;
        let inputs = self.state_dim + self.action_dim;
        if ws.input.len() < inputs {
            ws.input.resize(inputs, 0.0);
        }
        self.encode(state, action, &mut ws.input[..inputs]);
        let output = self.network.forward(&ws.input[..inputs], &mut ws.network)?;
        Ok(f64::from(output[0]))
    }

    /// `network_mut` may have replaced the network: check it still fits.
    fn check_network(&self) -> Result<()> {
        if self.network.input_dim() != self.state_dim + self.action_dim
            || self.network.output_dim() != 1
        {
            return Err(Error::invalid(
                "mlp_q.network",
                format!(
                    "sizes {:?} no longer take {} state and {} action components to one output",
                    self.network.sizes(),
                    self.state_dim,
                    self.action_dim
                ),
            ));
        }
        Ok(())
    }
}

fn convert(from: &[f64], to: &mut [f32]) {
    for (t, &f) in to.iter_mut().zip(from) {
        *t = f as f32;
    }
}

fn check_len(field: &str, got: usize, rows: usize, width: usize) -> Result<()> {
    if got != rows * width {
        return Err(Error::invalid(
            format!("mlp_q: {field}"),
            format!("{got} values, expected {rows} rows × {width}"),
        ));
    }
    Ok(())
}

impl QFunction for MlpQ {
    type Workspace = MlpQWorkspace;

    fn state_dim(&self) -> usize {
        self.state_dim
    }

    fn action_dim(&self) -> usize {
        self.action_dim
    }

    /// Some when the hidden layers are ReLU and the output linear.
    fn relu_network(&self) -> Option<ReluNetwork<'_>> {
        ReluNetwork::new(&self.network, self.state_dim)
            .map(|relu| relu.with_input_scaling(self.scaling.as_ref()))
    }

    fn workspace(&self) -> MlpQWorkspace {
        self.workspace_for_batch(1)
    }

    fn value(&self, ws: &mut MlpQWorkspace, state: &[f64], action: &[f64]) -> Result<f64> {
        self.forward_one(ws, state, action)
    }

    /// All candidate actions at one state in a single forward pass.
    fn values_at_actions(
        &self,
        ws: &mut MlpQWorkspace,
        state: &[f64],
        actions: &[f64],
        values: &mut [f64],
    ) -> Result<()> {
        self.check_network()?;
        let rows = values.len();
        check_len("state", state.len(), 1, self.state_dim)?;
        check_len("actions", actions.len(), rows, self.action_dim)?;
        let inputs = self.state_dim + self.action_dim;
        if ws.input.len() < rows * inputs {
            ws.input.resize(rows * inputs, 0.0);
        }
        let input = &mut ws.input[..rows * inputs];
        for (i, row) in input.chunks_exact_mut(inputs).enumerate() {
            self.encode(
                state,
                &actions[i * self.action_dim..(i + 1) * self.action_dim],
                row,
            );
        }
        let output = self.network.forward(input, &mut ws.network)?;
        for (v, &y) in values.iter_mut().zip(output) {
            *v = f64::from(y);
        }
        Ok(())
    }

    /// Every row in one forward pass and one input-gradient pass (∂q/∂q = 1 per row).
    fn values_and_action_gradients(
        &self,
        ws: &mut MlpQWorkspace,
        states: &[f64],
        actions: &[f64],
        values: &mut [f64],
        gradients: &mut [f64],
    ) -> Result<()> {
        let rows = values.len();
        check_len("gradients", gradients.len(), rows, self.action_dim)?;
        self.values_into(ws, states, actions, values)?;
        let inputs = self.state_dim + self.action_dim;
        // Grown once to the largest batch, then reused.
        if ws.grad_output.len() < rows {
            ws.grad_output.resize(rows, 1.0);
        }
        if ws.grad_input.len() < rows * inputs {
            ws.grad_input.resize(rows * inputs, 0.0);
        }
        ws.grad_output[..rows].fill(1.0);
        self.network.input_gradient(
            &mut ws.network,
            &ws.grad_output[..rows],
            &mut ws.grad_input[..rows * inputs],
        )?;
        for (g, row) in gradients
            .chunks_exact_mut(self.action_dim)
            .zip(ws.grad_input.chunks_exact(inputs))
        {
            self.action_gradient(row, g);
        }
        Ok(())
    }

    fn value_and_action_gradient(
        &self,
        ws: &mut MlpQWorkspace,
        state: &[f64],
        action: &[f64],
        gradient: &mut [f64],
    ) -> Result<f64> {
        if gradient.len() != self.action_dim {
            return Err(Error::invalid(
                "mlp_q: gradient",
                format!(
                    "{} values, the action has {} components",
                    gradient.len(),
                    self.action_dim
                ),
            ));
        }
        let value = self.forward_one(ws, state, action)?;
        ws.grad_output[0] = 1.0;
        let inputs = self.state_dim + self.action_dim;
        if ws.grad_input.len() < inputs {
            ws.grad_input.resize(inputs, 0.0);
        }
        self.network.input_gradient(
            &mut ws.network,
            &ws.grad_output[..1],
            &mut ws.grad_input[..inputs],
        )?;
        self.action_gradient(&ws.grad_input[..inputs], gradient);
        Ok(value)
    }
}

/// FQI's minibatch Adam fit trains the network in place.
impl super::NetworkQ for MlpQ {
    fn network(&self) -> &Mlp<f32> {
        &self.network
    }

    fn network_mut(&mut self) -> &mut Mlp<f32> {
        &mut self.network
    }

    fn encode_input(&self, state: &[f64], action: &[f64], row: &mut [f32]) {
        self.encode(state, action, row);
    }
}
