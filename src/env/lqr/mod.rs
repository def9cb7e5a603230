//! Linear–quadratic regulator: an environment whose optimal q*, v* and policy are known
//! in closed form, so that every algorithm of the chapter can be checked against them.
//!
//! - [`LqrParams`] → [`LqrSystem`]: the task, checked once (shapes, `Q` PSD, `R` PD,
//!   `γ ∈ (0, 1]`, noise covariance PSD, initial-state distribution, horizon).
//! - [`Lqr`]: the [`Env`](crate::env::Env) (`s' = As + Ba + w`, reward `−(sᵀQs + aᵀRa)`).
//! - [`RiccatiSolution`]: the discounted Riccati solution `P`, the gain `K`, and q*, v*
//!   (FQI with quadratic features compares its fit to `q_matrix()`, its greedy gain to `K`).
//! - [`SoftLqrSolution`]: the entropy-regularized solution of the chapter's smooth Bellman
//!   equation, with the Gaussian optimal policy `N(−Ks, Σ_a)` (the target of SAC).
//!
//! Named tasks: [`LqrParams::scalar`], [`LqrParams::double_integrator`] (the default of
//! `make("Lqr")`) and [`LqrParams::random_stable`].

mod env;
mod linalg;
mod params;
mod riccati;
mod soft;

pub use env::Lqr;
pub use params::{InitialState, LqrParams, LqrSystem};
pub use riccati::RiccatiSolution;
pub use soft::SoftLqrSolution;
