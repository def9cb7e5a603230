//! Stochastic policy heads: how a network's output becomes a distribution over actions.
//!
//! - [`GaussianHead`]: the chapter's Gaussian policy `d(a|s; φ) = N(μ_φ(s), σ_φ(s))`
//!   (section "Approximating Boltzmann Policies by Gaussians"), optionally squashed by
//!   tanh as SAC does in practice; log-probabilities, entropy, the reparameterized sample
//!   `f_φ(s, ε) = μ_φ(s) + σ_φ(s)ε` and its gradient (section "Reparameterizating the
//!   Objective").

mod gaussian;

pub use gaussian::{GaussianHead, LOG_STD_BOUNDS};
