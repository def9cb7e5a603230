//! The function approximator class q(s, a; θ) of `fitted-q-iteration-explicit`, as the
//! [`QFunction`](crate::maximize::QFunction)s its `maximize` step works on and FQI fits.
//!
//! * [`linear`]: linear in the parameters (f64, exact least-squares fits, LQR ground truth):
//!   quadratic features, and features affine in the action (so a MILP can maximize them).
//! * [`MlpQ`]: a network on the concatenated input [s, a] with one output, whose action
//!   gradient comes from backpropagation to the inputs; it is nonconcave in the action,
//!   so it is maximized by the multi-start gradient search or by enumeration. An optional
//!   [`InputScaling`] maps [s, a] from known bounds onto [−1, 1] before the network.

pub mod features;
mod input_scaling;
pub mod linear;
mod mlp;

pub use input_scaling::InputScaling;
pub use mlp::{MlpQ, MlpQWorkspace};

use crate::maximize::QFunction;
use crate::nn::Mlp;

/// A q-function computed by an `Mlp<f32>` whose input row is `[s, a]` and whose single
/// output is q(s, a): what [`AdamFit`](crate::algo::AdamFit) trains.
pub trait NetworkQ: QFunction {
    fn network(&self) -> &Mlp<f32>;
    fn network_mut(&mut self) -> &mut Mlp<f32>;
    /// The network's input row for (s, a) (`row` has state_dim + action_dim entries):
    /// what the fit trains on, the same map q applies when it is evaluated.
    fn encode_input(&self, state: &[f64], action: &[f64], row: &mut [f32]);
}
