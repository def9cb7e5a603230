//! # policy-param
//!
//! Faithful, fast implementations of the algorithms of the chapter
//! *Policy Parametrization Methods*, with the ground truth they are tested against.
//!
//! | chapter | module |
//! |---|---|
//! | the MDPs of every section: Pendulum-v1, MountainCarContinuous-v0 (Gymnasium-exact), LQR, integer Allocation and its sequential version with an exact value-iteration solution | [`env`](mod@env) |
//! | ground truth: discrete Riccati solution, q*, v*, soft (entropy-regularized) LQR | [`env::lqr`] |
//! | the function approximators q(s,a;θ), d(s;w): MLPs with input gradients, Adam, target copies | [`nn`] |
//! | `maximize(q(s',·;θ))` of `fitted-q-iteration-explicit`: argmin (continuous), lockstep L-BFGS over a whole target computation (batched q evaluations), good_lp MILP (integer, q affine in the action), exact MILP of a ReLU-network q (box or integer), grid, enumeration, exact concave quadratic | [`maximize`] |
//! | Embedded Optimization · `fitted-q-iteration-explicit`: FQI with parallel targets, the `fit` step (least squares, minibatch Adam), base points | [`algo::fqi`], [`algo::fit`], [`algo::transitions`] |
//! | Amortized Optimization · `fitted-q-iteration-amortized`: 𝓑_opt solved exactly by a budget, the rest by d(s'; w); 𝒟_d with timestamps and a window of K iterations; δ_q, δ_d | [`algo::amortized_fqi`], [`algo::decision_rule`] (linear least squares, MLP by Adam regression) |
//! | q(s,a;θ): linear in θ (quadratic features: LQR's q* exactly; action-affine: MILP-ready) or an MLP on [s, a] | [`qfunction`] |
//! | `nfqca`: NFQCA on a fixed batch of transitions | [`algo::nfqca`] |
//! | `ddpg`: DDPG with replay, exploration noise and target networks | [`algo::ddpg`] |
//! | not in the chapter: TD3, what it adds to `ddpg` (twin critics, target policy smoothing, delayed policy updates) | [`algo::td3`] |
//! | d(s;w) and q(s,a;θ) of these, the actor's step through ∇ₐq, exploration d(s;w) + 𝒩 | [`algo::deterministic_policy`] |
//! | the `while training` loop of DDPG, TD3 and SAC: act, execute, store in 𝓡, sample minibatches, episodes, warm-up, checkpoints (the agent brings `act` and `update`) | [`algo::online`] |
//! | Soft Actor Critic · Fitted Q-Iteration for the Smooth Bellman Equations: targets `r + γ β log ∫ exp(q(s',a')/β) da'` by Gauss–Legendre quadrature (log-sum-exp) over 1-D and 2-D action boxes, the rest of FQI reused | [`algo::smooth_fqi`] |
//! | Soft Actor Critic · Approximating Boltzmann Policies by Gaussians, Reparameterizating the Objective: SAC with q_θ, v_ψ and N(μ_φ(s), σ_φ(s)) as the chapter writes it, and the practice variant (twin Q, target networks, automatic temperature, tanh squashing) | [`algo::sac`] |
//! | the policies: deterministic d(s;w), the Gaussian and tanh-squashed Gaussian policy heads and SAC's Gaussian policy: log-densities, entropy, the reparameterized sample f_φ(s,ε) = μ_φ(s) + σ_φ(s)ε and its gradient; the map from policy to environment actions | [`policy`] |
//! | Ornstein–Uhlenbeck (Euler–Maruyama) and Gaussian exploration noise | [`noise`] |
//! | transitions, the replay buffer 𝓡, minibatches | [`replay`] |
//! | seeding: one seed per run, one stream per consumer | [`rng`] |
//! | evaluation of a policy over seeded episodes, in parallel | [`eval`] |
//! | keeping a pool's other workers awake (busy-waiting for work) through a training loop | [`busy_workers`] |
//!
//! Conventions: networks compute in `f32`, ground truth in `f64`; every random number
//! comes from a stream derived from the run's [`rng::RunSeed`], so results are
//! bit-identical for a seed whatever the number of rayon threads.

pub mod algo;
pub mod busy_workers;
pub mod env;
pub mod error;
pub mod eval;
pub mod hyperparams;
mod json;
pub mod maximize;
pub mod nn;
pub mod noise;
pub mod policy;
pub mod qfunction;
pub mod replay;
pub mod rng;
pub mod train;

pub use error::{Error, Result};
