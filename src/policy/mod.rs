//! Policies: how a network's output becomes an action, deterministically or as a
//! distribution over actions.
//!
//! - [`PolicyOutput`] and [`ActionMap`]: between a policy's action coordinates and the
//!   environment's (identity, or tanh-squashed outputs mapped affinely onto the box).
//! - [`DeterministicPolicy`]: the chapter's d(s; w), an MLP, with its map (NFQCA, DDPG).
//! - [`GaussianHead`]: the chapter's Gaussian policy `d(a|s; φ) = N(μ_φ(s), σ_φ(s))`
//!   (section "Approximating Boltzmann Policies by Gaussians"), optionally squashed by
//!   tanh as SAC does in practice; log-probabilities, entropy, the reparameterized sample
//!   `f_φ(s, ε) = μ_φ(s) + σ_φ(s)ε` and its gradient (section "Reparameterizating the
//!   Objective").
//! - [`GaussianPolicy`]: a network, a [`GaussianHead`] and an [`ActionMap`]: SAC's
//!   policy, plain or tanh-squashed, to act with (its mean, or samples) and to evaluate.

mod action_map;
mod deterministic;
mod gaussian;
mod gaussian_policy;

pub use action_map::{ActionMap, PolicyOutput};
pub use deterministic::{DeterministicPolicy, PolicyWorkspace};
pub use gaussian::{GaussianHead, LOG_STD_BOUNDS};
pub use gaussian_policy::{GaussianPolicy, GaussianPolicyWorkspace};
