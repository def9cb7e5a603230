//! Neural networks for the chapter's function approximators: critics q(s,a;θ),
//! deterministic policies d(s;w), and SAC's Gaussian policy heads.
//!
//! # What is here
//! * [`Mlp`]: a fully connected network ([`MlpConfig`]: widths, hidden activation ReLU or
//!   tanh, output activation identity or tanh for bounded policies), with a batched
//!   [`Mlp::forward`], [`Mlp::backward`] to the parameters and optionally the inputs, and
//!   [`Mlp::input_gradient`] alone — ∇ₐq(s,a;θ) for the actor updates of NFQCA, DDPG and
//!   reparameterized SAC: feed `[s, a]` rows, read the action columns of the result.
//! * [`Init`]: PyTorch's default initialization, optionally DDPG's small last layer.
//! * [`Adam`] with PyTorch's formulas; [`mse_with_gradient`] for fitting steps.
//! * Target networks: [`Mlp::hard_copy_from`] and [`Mlp::polyak_update`].
//! * Checkpoints: serde and [`Mlp::to_json`] / [`Mlp::from_json`], bit-exact.
//! * [`gemm`]: the matrix products underneath, with three interchangeable backends.
//!
//! # One flat parameter vector
//! All parameters of a network live in one contiguous `Vec` ([`Layout`]: per layer, the
//! `inputs × outputs` weights row-major, then the biases). Gradients use the same layout.
//! So the operations the algorithms repeat every step are single passes over a vector:
//! an Adam step, a Polyak average `θ' ← τθ + (1−τ)θ'`, a target copy, zeroing the
//! gradients, a checkpoint; none needs to know about layers, and none allocates.
//!
//! # No allocation per step
//! A [`Workspace`] holds the activations of a forward pass (which the backward pass
//! differentiates through) and the backpropagation buffers; it is sized once for a
//! maximum batch, and any smaller batch reuses it. With the default
//! [`gemm::Backend::Packed`], a forward, backward and Adam step allocate nothing
//! (`tests/nn_no_alloc.rs` counts).
//!
//! # Numbers
//! Training runs in `f32`; every routine is generic over [`Scalar`] so the gradient
//! checks run the same code in `f64`. Products are computed on one thread in a fixed
//! order, so a seed determines every bit; parallelism belongs to the callers (rayon over
//! episodes or base points, one workspace per thread).

mod activation;
mod adam;
mod checkpoint;
pub mod gemm;
mod init;
mod layout;
mod loss;
mod mlp;
mod packed;
mod scalar;
mod target;
mod workspace;

pub use activation::Activation;
pub use adam::{Adam, AdamConfig};
pub use init::Init;
pub use layout::Layout;
pub use loss::mse_with_gradient;
pub use mlp::{Mlp, MlpConfig};
pub use scalar::Scalar;
pub use workspace::Workspace;

#[cfg(test)]
mod tests;
