//! The chapter's algorithms, one module per pseudocode label, and what they share.
//!
//! - [`fqi`]: `fitted-q-iteration-explicit` (section "Embedded Optimization").
//! - [`amortized_fqi`]: `fitted-q-iteration-amortized` (section "Amortized Optimization
//!   Approach"), with its decision rules d(s; w) in [`decision_rule`].
//! - [`fit`]: the `fit(𝒟)` step of the fitted-Q methods (least squares, minibatch Adam).
//! - [`transitions`]: base points 𝓑 (s, a, r, s', terminated) and seeded ways to collect them.
//! - [`nfqca`], [`ddpg`]: `nfqca` and `ddpg` (section "Deterministic Parametrized Policies"),
//!   sharing [`deterministic_policy`].
//! - [`smooth_fqi`]: FQI for the smooth Bellman equations (`fitted-q-iteration-explicit` with
//!   `β log ∫ exp(q/β)` by quadrature in place of `maximize`), and [`sac`]: soft actor-critic
//!   (section "Stochastic Policy Parameterization"; the chapter gives neither a pseudocode label).
//! - [`td3`]: TD3, what it adds to `ddpg` (twin critics, target policy smoothing, delayed
//!   policy updates; the chapter has no TD3).
//! - [`online`]: the loop DDPG, TD3 and SAC share (environment, replay buffer, warm-up,
//!   episodes, checkpoints); each brings an [`online::Agent`] with its own `act` and `update`.
//! - [`ddpg_params`], [`td3_params`], [`sac_params`]: their hyperparameters as flat keys with
//!   presets, as grids and `policy-param train` name them ([`crate::hyperparams`],
//!   [`crate::train`]).

pub mod amortized_fqi;
pub mod ddpg;
pub mod ddpg_params;
pub mod decision_rule;
pub mod deterministic_policy;
pub mod fit;
pub mod fqi;
pub mod nfqca;
pub mod online;
pub mod sac;
pub mod sac_params;
pub mod smooth_fqi;
pub mod td3;
pub mod td3_params;
pub mod transitions;

pub use crate::qfunction::NetworkQ;
pub use amortized_fqi::{
    AmortizedFqi, AmortizedFqiConfig, AmortizedFqiParams, AmortizedIterationReport,
    AmortizedRunSummary, PolicyDataset, SolveBudget,
};
pub use decision_rule::{
    DecisionRule, FitLength, LinearPolicy, LinearPolicySettings, MlpPolicy, MlpPolicySettings,
    MlpPolicyWorkspace,
};
pub use fit::{AdamFit, AdamFitSettings, Fit, LeastSquares};
pub use fqi::{
    FittedQIteration, FqiConfig, FqiParams, GreedyPolicy, GreedyWorkspace, IterationReport,
    RunSummary,
};
pub use transitions::{collect_random_rollouts, sample_transitions, Transitions, UniformBox};
