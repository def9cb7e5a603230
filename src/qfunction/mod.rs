//! The function approximator class q(s, a; θ) of `fitted-q-iteration-explicit`, as the
//! [`QFunction`](crate::maximize::QFunction)s its `maximize` step works on.
//!
//! * [`MlpQ`]: a network on the concatenated input [s, a] with one output, whose action
//!   gradient comes from backpropagation to the inputs; it is nonconcave in the action,
//!   so it is maximized by the multi-start gradient search or by enumeration.

mod mlp;

pub use mlp::{MlpQ, MlpQWorkspace};
