//! The multilayer perceptron: construction, batched forward pass, and backpropagation
//! to the parameters and to the inputs.

use serde::{Deserialize, Serialize};

use super::activation::Activation;
use super::gemm::{matmul, Dims, Operand};
use super::init::Init;
use super::layout::Layout;
use super::scalar::Scalar;
use super::workspace::Workspace;
use crate::error::{Error, Result};
use crate::rng::Rng;

/// The architecture of a network: widths, activations and initialization. Algorithms
/// keep one per approximator in their hyperparameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MlpConfig {
    /// Widths from input to output, e.g. `[obs + act, 256, 256, 1]` for a critic.
    pub sizes: Vec<usize>,
    /// Activation after every layer but the last.
    pub hidden: Activation,
    /// Activation after the last layer.
    pub output: Activation,
    #[serde(default)]
    pub init: Init,
}

impl MlpConfig {
    /// ReLU hidden layers, identity output, PyTorch initialization.
    pub fn new(sizes: &[usize]) -> Self {
        MlpConfig {
            sizes: sizes.to_vec(),
            hidden: Activation::Relu,
            output: Activation::Identity,
            init: Init::pytorch(),
        }
    }

    pub fn hidden(mut self, activation: Activation) -> Self {
        self.hidden = activation;
        self
    }

    pub fn output(mut self, activation: Activation) -> Self {
        self.output = activation;
        self
    }

    pub fn init(mut self, init: Init) -> Self {
        self.init = init;
        self
    }
}

/// A fully connected network whose parameters are one flat vector (see the module
/// documentation of [`crate::nn`] for the layout and why).
#[derive(Clone, Debug, PartialEq)]
pub struct Mlp<T: Scalar = f32> {
    layout: Layout,
    hidden: Activation,
    output: Activation,
    params: Vec<T>,
}

impl<T: Scalar> Mlp<T> {
    /// A freshly initialized network, every parameter drawn from `rng`.
    pub fn new(config: &MlpConfig, rng: &mut Rng) -> Result<Self> {
        config.init.validate()?;
        let mut mlp = Mlp::zeros(&config.sizes, config.hidden, config.output)?;
        config.init.fill(&mlp.layout, &mut mlp.params, rng);
        Ok(mlp)
    }

    /// A network with every parameter zero (to be filled through [`Mlp::params_mut`]).
    pub fn zeros(sizes: &[usize], hidden: Activation, output: Activation) -> Result<Self> {
        let layout = Layout::new(sizes)?;
        let params = vec![T::ZERO; layout.num_params()];
        Ok(Mlp {
            layout,
            hidden,
            output,
            params,
        })
    }

    /// A network with the given flat parameters, checked against the sizes and for
    /// finiteness (checkpoints are read through this).
    pub fn from_params(
        sizes: &[usize],
        hidden: Activation,
        output: Activation,
        params: Vec<T>,
    ) -> Result<Self> {
        let layout = Layout::new(sizes)?;
        if params.len() != layout.num_params() {
            return Err(Error::invalid(
                "params",
                format!(
                    "{} values, a network with sizes {sizes:?} has {}",
                    params.len(),
                    layout.num_params()
                ),
            ));
        }
        if let Some(index) = params.iter().position(|p| !p.is_finite()) {
            return Err(Error::invalid(
                "params",
                format!("parameter {index} is {}, not finite", params[index]),
            ));
        }
        Ok(Mlp {
            layout,
            hidden,
            output,
            params,
        })
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    pub fn sizes(&self) -> &[usize] {
        self.layout.sizes()
    }

    pub fn input_dim(&self) -> usize {
        self.layout.input_dim()
    }

    pub fn output_dim(&self) -> usize {
        self.layout.output_dim()
    }

    pub fn hidden_activation(&self) -> Activation {
        self.hidden
    }

    pub fn output_activation(&self) -> Activation {
        self.output
    }

    pub fn num_params(&self) -> usize {
        self.params.len()
    }

    /// All parameters, in the order of [`Layout`].
    pub fn params(&self) -> &[T] {
        &self.params
    }

    /// All parameters, for optimizers and target updates.
    pub fn params_mut(&mut self) -> &mut [T] {
        &mut self.params
    }

    /// A zero vector shaped like the parameters, to accumulate gradients into.
    pub fn zero_grads(&self) -> Vec<T> {
        vec![T::ZERO; self.params.len()]
    }

    /// Layer `layer`'s weights, `inputs × outputs` row-major.
    pub fn weights(&self, layer: usize) -> &[T] {
        &self.params[self.layout.weights(layer)]
    }

    /// Layer `layer`'s biases.
    pub fn bias(&self, layer: usize) -> &[T] {
        &self.params[self.layout.bias(layer)]
    }

    /// Whether `other` has the same sizes and activations (so parameters can be copied
    /// or averaged between the two).
    pub fn same_architecture(&self, other: &Mlp<T>) -> bool {
        self.layout == other.layout && self.hidden == other.hidden && self.output == other.output
    }

    /// One network whose output is the mean of the outputs of `networks` (all of one
    /// architecture, with an identity output): their hidden layers side by side, the first
    /// layer's weights stacked, the hidden layers' block-diagonal, the output layer's
    /// scaled by 1/K. It is a ReLU network like its parts, so a policy greedy with respect
    /// to an average of q-functions can go to any maximizer (Averaged-DQN, Anschel et al.
    /// 2017, averages q over its last iterates).
    pub fn mean_of(networks: &[Mlp<T>]) -> Result<Mlp<T>> {
        let first = networks
            .first()
            .ok_or_else(|| Error::invalid("networks", "an average of no networks"))?;
        if let Some(k) = networks.iter().position(|n| !first.same_architecture(n)) {
            return Err(Error::invalid(
                "networks",
                format!("network {k} has another architecture than network 0"),
            ));
        }
        if first.output != Activation::Identity {
            return Err(Error::invalid(
                "networks",
                "the mean of outputs is one network only with an identity output activation",
            ));
        }
        let count = networks.len();
        let layers = first.layout.num_layers();
        let sizes = first.sizes();
        let wide: Vec<usize> = sizes
            .iter()
            .enumerate()
            .map(|(i, &w)| if i == 0 || i == layers { w } else { w * count })
            .collect();
        let mut mean = Mlp::zeros(&wide, first.hidden, first.output)?;
        let share = T::from_f64(1.0 / count as f64);
        for layer in 0..layers {
            let (inputs, outputs) = first.layout.layer_dims(layer);
            let (_, wide_outputs) = mean.layout.layer_dims(layer);
            let (wide_weights, wide_bias) = (mean.layout.weights(layer), mean.layout.bias(layer));
            let last = layer + 1 == layers;
            for (k, network) in networks.iter().enumerate() {
                // Block k takes its inputs from block k of the layer below (all of the
                // shared input in layer 0) and writes its outputs into block k (into the
                // shared output in the last layer, scaled by 1/K).
                let row_offset = if layer == 0 { 0 } else { k * inputs };
                let column_offset = if last { 0 } else { k * outputs };
                let weights = network.weights(layer);
                for i in 0..inputs {
                    let row = wide_weights.start + (row_offset + i) * wide_outputs + column_offset;
                    let source = &weights[i * outputs..(i + 1) * outputs];
                    for (target, &w) in mean.params[row..row + outputs].iter_mut().zip(source) {
                        *target = if last { *target + w * share } else { w };
                    }
                }
                let bias = &mut mean.params[wide_bias.clone()];
                for (j, &b) in network.bias(layer).iter().enumerate() {
                    if last {
                        bias[j] += b * share;
                    } else {
                        bias[column_offset + j] = b;
                    }
                }
            }
        }
        Ok(mean)
    }

    /// A workspace for batches of up to `max_batch` rows.
    pub fn workspace(&self, max_batch: usize) -> Workspace<T> {
        Workspace::new(&self.layout, max_batch)
    }

    /// Evaluates the network on `input` (`batch × input_dim`, row-major) and returns the
    /// output (`batch × output_dim`), keeping every activation in `workspace` for a
    /// following [`Mlp::backward`] or [`Mlp::input_gradient`]. Allocates only if `batch`
    /// exceeds the workspace's capacity.
    pub fn forward<'w>(&self, input: &[T], workspace: &'w mut Workspace<T>) -> Result<&'w [T]> {
        self.check_workspace(workspace)?;
        let batch = self.rows("input", input, self.input_dim())?;
        workspace.reserve(batch);
        workspace.batch = None;
        let Workspace {
            activations,
            backend,
            ..
        } = workspace;
        activations[0][..input.len()].copy_from_slice(input);
        let last = self.layout.num_layers() - 1;
        for layer in 0..=last {
            let (inputs, outputs) = self.layout.layer_dims(layer);
            let (below, above) = activations.split_at_mut(layer + 1);
            let x = &below[layer][..batch * inputs];
            let y = &mut above[0][..batch * outputs];
            matmul(
                *backend,
                Dims {
                    m: batch,
                    n: outputs,
                    k: inputs,
                },
                T::ONE,
                Operand::plain(x),
                Operand::plain(self.weights(layer)),
                T::ZERO,
                y,
            );
            let activation = if layer == last {
                self.output
            } else {
                self.hidden
            };
            let bias = self.bias(layer);
            for row in y.chunks_exact_mut(outputs) {
                activation.add_bias_and_apply(row, bias);
            }
        }
        workspace.batch = Some(batch);
        Ok(workspace.output())
    }

    /// Backpropagates `grad_output` = ∂L/∂(output) (`batch × output_dim`) through the
    /// last forward pass held in `workspace`: **adds** ∂L/∂θ into `grads` (laid out like
    /// the parameters, so several losses can accumulate), and if `grad_input` is given,
    /// **overwrites** it with ∂L/∂(input) (`batch × input_dim`).
    ///
    /// The parameters must be those of the forward pass.
    pub fn backward(
        &self,
        workspace: &mut Workspace<T>,
        grad_output: &[T],
        grads: &mut [T],
        grad_input: Option<&mut [T]>,
    ) -> Result<()> {
        if grads.len() != self.params.len() {
            return Err(Error::invalid(
                "grads",
                format!(
                    "{} values, the network has {} parameters",
                    grads.len(),
                    self.params.len()
                ),
            ));
        }
        self.backpropagate(workspace, grad_output, Some(grads), grad_input)
    }

    /// Overwrites `grad_input` with ∂L/∂(input) (`batch × input_dim`) for the last
    /// forward pass, without computing parameter gradients: ∇ₐq(s,a;θ) for the actor
    /// updates of NFQCA, DDPG and SAC (the caller reads the action columns).
    pub fn input_gradient(
        &self,
        workspace: &mut Workspace<T>,
        grad_output: &[T],
        grad_input: &mut [T],
    ) -> Result<()> {
        self.backpropagate(workspace, grad_output, None, Some(grad_input))
    }

    fn backpropagate(
        &self,
        workspace: &mut Workspace<T>,
        grad_output: &[T],
        mut grads: Option<&mut [T]>,
        mut grad_input: Option<&mut [T]>,
    ) -> Result<()> {
        self.check_workspace(workspace)?;
        let batch = workspace.batch.ok_or_else(|| {
            Error::invalid(
                "workspace",
                "backward pass requested before any forward pass",
            )
        })?;
        if self.rows("grad_output", grad_output, self.output_dim())? != batch {
            return Err(Error::invalid(
                "grad_output",
                format!(
                    "{} rows, the last forward pass had {batch}",
                    grad_output.len() / self.output_dim()
                ),
            ));
        }
        if let Some(grad_input) = grad_input.as_deref() {
            if grad_input.len() != batch * self.input_dim() {
                return Err(Error::invalid(
                    "grad_input",
                    format!(
                        "{} values, expected {batch} rows × {} inputs",
                        grad_input.len(),
                        self.input_dim()
                    ),
                ));
            }
        }

        let Workspace {
            activations,
            delta,
            delta_next,
            backend,
            ..
        } = workspace;
        let last = self.layout.num_layers() - 1;
        // δ = ∂L/∂(pre-activation of the output layer).
        delta[..grad_output.len()].copy_from_slice(grad_output);
        self.output.scale_by_derivative(
            &mut delta[..grad_output.len()],
            &activations[last + 1][..grad_output.len()],
        );

        for layer in (0..=last).rev() {
            let (inputs, outputs) = self.layout.layer_dims(layer);
            let x = &activations[layer][..batch * inputs];
            let d = &delta[..batch * outputs];
            if let Some(grads) = grads.as_deref_mut() {
                // ∂L/∂W += xᵀ·δ, ∂L/∂b += Σ_rows δ.
                matmul(
                    *backend,
                    Dims {
                        m: inputs,
                        n: outputs,
                        k: batch,
                    },
                    T::ONE,
                    Operand::transposed(x),
                    Operand::plain(d),
                    T::ONE,
                    &mut grads[self.layout.weights(layer)],
                );
                // Sum the rows apart (in `delta_next`, free until written below) and add
                // once, so that accumulating is exactly `grads + ∂L/∂b`.
                let column_sums = &mut delta_next[..outputs];
                column_sums.fill(T::ZERO);
                for row in d.chunks_exact(outputs) {
                    for (sum, &r) in column_sums.iter_mut().zip(row) {
                        *sum += r;
                    }
                }
                for (g, &sum) in grads[self.layout.bias(layer)].iter_mut().zip(&*column_sums) {
                    *g += sum;
                }
            }
            // ∂L/∂x = δ·Wᵀ: the next δ down, or the input gradient at the bottom.
            let target = if layer > 0 {
                &mut delta_next[..batch * inputs]
            } else if let Some(grad_input) = grad_input.as_deref_mut() {
                grad_input
            } else {
                break;
            };
            matmul(
                *backend,
                Dims {
                    m: batch,
                    n: inputs,
                    k: outputs,
                },
                T::ONE,
                Operand::plain(d),
                Operand::transposed(self.weights(layer)),
                T::ZERO,
                target,
            );
            if layer > 0 {
                self.hidden
                    .scale_by_derivative(&mut delta_next[..batch * inputs], x);
                std::mem::swap(delta, delta_next);
            }
        }
        Ok(())
    }

    fn check_workspace(&self, workspace: &Workspace<T>) -> Result<()> {
        if workspace.sizes != self.sizes() {
            return Err(Error::invalid(
                "workspace",
                format!(
                    "built for sizes {:?}, the network has sizes {:?}",
                    workspace.sizes,
                    self.sizes()
                ),
            ));
        }
        Ok(())
    }

    /// Number of rows of `width` values in `data`, which must be a positive whole number.
    fn rows(&self, name: &str, data: &[T], width: usize) -> Result<usize> {
        if data.is_empty() || !data.len().is_multiple_of(width) {
            return Err(Error::invalid(
                name,
                format!(
                    "{} values is not a positive whole number of rows of width {width}",
                    data.len()
                ),
            ));
        }
        Ok(data.len() / width)
    }
}
