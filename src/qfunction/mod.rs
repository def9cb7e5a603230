//! The function approximator class q(s, a; θ) of `fitted-q-iteration-explicit`, as the
//! [`QFunction`](crate::maximize::QFunction)s its `maximize` step works on and FQI fits.
//!
//! * [`linear`]: linear in the parameters (f64, exact least-squares fits, LQR ground truth):
//!   quadratic features, and features affine in the action (so a MILP can maximize them).
//! * [`MlpQ`]: a network on the concatenated input [s, a] with one output, whose action
//!   gradient comes from backpropagation to the inputs; it is nonconcave in the action,
//!   so it is maximized by the multi-start gradient search or by enumeration.

pub mod features;
pub mod linear;
mod mlp;

pub use mlp::{MlpQ, MlpQWorkspace};

use crate::maximize::QFunction;
use crate::nn::Mlp;

/// A q-function computed by an `Mlp<f32>` whose input row is `[s, a]` and whose single
/// output is q(s, a): what [`AdamFit`](crate::algo::AdamFit) trains.
pub trait NetworkQ: QFunction {
    fn network(&self) -> &Mlp<f32>;
    fn network_mut(&mut self) -> &mut Mlp<f32>;
}
