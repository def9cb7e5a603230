//! Entropy-regularized ("soft") LQR: the exact solution of the chapter's smooth Bellman
//! equation on an LQR task, the ground truth for smooth FQI and SAC.
//!
//! Convention (the chapter's "Soft Actor Critic" section): with temperature `β > 0`,
//!
//! ```text
//! q(s,a) = r(s,a) + γ E_{s'}[ v(s') ],    v(s) = β log ∫ exp(q(s,a)/β) da,
//! ```
//!
//! the integral over all of ℝᵐ with Lebesgue measure. Equivalently `v(s)` is
//! `max_d E_{a~d}[q(s,a)] + β H(d)` with `H` the differential entropy, and the optimal
//! policy is the Boltzmann density `d*(a|s) = exp((q(s,a) − v(s))/β)`.
//!
//! Derivation. Try `q(s,a) = −zᵀHz − c_q` with `z = [s; a]`. Completing the square in `a`,
//! `zᵀHz = (a + Ks)ᵀH_aa(a + Ks) + sᵀ(H_ss − H_sa H_aa⁻¹ H_as)s` with `K = H_aa⁻¹H_as`,
//! and `∫ exp(−uᵀH_aa u/β) du = det(πβ H_aa⁻¹)^{1/2}`, so
//!
//! ```text
//! v(s) = −sᵀ(H_ss − H_sa H_aa⁻¹ H_as)s − c_q + ℓ,    ℓ = (β/2) log det(πβ H_aa⁻¹).
//! ```
//!
//! The entropy only adds the constant `ℓ`, so the quadratic part obeys the same recursion
//! as the hard problem: `P` is the hard Riccati solution, `H` the hard q-matrix, `K` the
//! hard gain. Writing `v(s) = −sᵀPs − c_v` and `q = r + γE[v(s')]` gives
//! `c_q = γ tr(PΣ) + γ c_v` and `c_v = c_q − ℓ`, hence
//!
//! ```text
//! c_v = (γ tr(PΣ) − ℓ) / (1 − γ),    c_q = c_v + ℓ,
//! d*(a|s) = N(a; −Ks, Σ_a),          Σ_a = (β/2) H_aa⁻¹ = (β/2)(R + γBᵀPB)⁻¹.
//! ```
//!
//! `γ = 1` is excluded: the entropy bonus then sums to infinity.

use nalgebra::DMatrix;
use rand_distr::{Distribution, StandardNormal};

use super::linalg::{joint_quadratic_form, quadratic_form};
use super::params::LqrSystem;
use super::riccati::{check_len, RiccatiSolution};
use crate::error::{Error, Result};
use crate::rng::Rng;

/// The exact solution of an entropy-regularized LQR task at temperature `β`.
#[derive(Clone, Debug, PartialEq)]
pub struct SoftLqrSolution {
    hard: RiccatiSolution,
    beta: f64,
    n: usize,
    m: usize,
    /// Σ_a = (β/2) H_aa⁻¹, the covariance of the optimal policy.
    policy_covariance: DMatrix<f64>,
    /// Lower Cholesky factor of Σ_a, for sampling.
    policy_factor: DMatrix<f64>,
    /// log det Σ_a, for the policy's log density.
    policy_log_det: f64,
    q_constant: f64,
    v_constant: f64,
}

impl SoftLqrSolution {
    /// Solve the soft LQR task of `system` at temperature `beta`.
    ///
    /// Errors: [`Error::InvalidParameter`] for `β` not positive and finite or `γ = 1`;
    /// the errors of [`RiccatiSolution::solve`].
    pub fn solve(system: &LqrSystem, beta: f64) -> Result<Self> {
        if !(beta > 0.0 && beta.is_finite()) {
            return Err(Error::invalid(
                "beta",
                format!("temperature {beta} is not positive and finite"),
            ));
        }
        let gamma = system.gamma();
        if gamma >= 1.0 {
            return Err(Error::invalid(
                "gamma",
                "must be below 1 for soft LQR: with γ = 1 the entropy bonus sums to infinity",
            ));
        }
        let hard = RiccatiSolution::solve(system)?;
        let (n, m) = (system.state_dim(), system.action_dim());
        let h_aa = hard.q_matrix().view((n, n), (m, m)).into_owned();
        let numerical = |reason: &str| Error::Numerical {
            context: "soft LQR".into(),
            reason: reason.into(),
        };
        let h_aa_inv = h_aa
            .clone()
            .cholesky()
            .ok_or_else(|| numerical("R + γBᵀPB is not positive definite"))?
            .inverse();
        let mut policy_covariance = h_aa_inv * (0.5 * beta);
        super::linalg::symmetrize(&mut policy_covariance);
        let factor = policy_covariance
            .clone()
            .cholesky()
            .ok_or_else(|| numerical("the policy covariance is not positive definite"))?;
        // log det Σ_a from the Cholesky diagonal (exact for tiny or huge β, unlike det()).
        let policy_log_det: f64 = 2.0 * factor.l_dirty().diagonal().map(f64::ln).sum();
        let policy_factor = factor.l();
        // ℓ = (β/2) log det(πβ H_aa⁻¹) = (β/2) log det(2π Σ_a).
        let entropy_constant =
            0.5 * beta * (m as f64 * (2.0 * std::f64::consts::PI).ln() + policy_log_det);
        let v_constant = (gamma * system.noise_trace(hard.p()) - entropy_constant) / (1.0 - gamma);
        let q_constant = v_constant + entropy_constant;
        Ok(SoftLqrSolution {
            hard,
            beta,
            n,
            m,
            policy_covariance,
            policy_factor,
            policy_log_det,
            q_constant,
            v_constant,
        })
    }

    /// The hard solution whose `P`, `H` and `K` the soft one shares.
    pub fn hard(&self) -> &RiccatiSolution {
        &self.hard
    }

    pub fn beta(&self) -> f64 {
        self.beta
    }

    /// `c_q`, with soft `q*(s,a) = −zᵀHz − c_q`.
    pub fn q_constant(&self) -> f64 {
        self.q_constant
    }

    /// `c_v`, with soft `v*(s) = −sᵀPs − c_v`.
    pub fn v_constant(&self) -> f64 {
        self.v_constant
    }

    /// Soft `q*(s, a) = −[s; a]ᵀ H [s; a] − c_q`.
    pub fn q_star(&self, state: &[f64], action: &[f64]) -> Result<f64> {
        check_len("state", state, self.n)?;
        check_len("action", action, self.m)?;
        Ok(-joint_quadratic_form(self.hard.q_matrix(), state, action) - self.q_constant)
    }

    /// Soft `v*(s) = β log ∫ exp(q*(s,a)/β) da = −sᵀPs − c_v`.
    pub fn v_star(&self, state: &[f64]) -> Result<f64> {
        check_len("state", state, self.n)?;
        Ok(-quadratic_form(self.hard.p(), state) - self.v_constant)
    }

    /// The optimal policy's mean `−K s` (the hard optimal action), into `mean`.
    pub fn policy_mean_into(&self, state: &[f64], mean: &mut [f64]) -> Result<()> {
        self.hard.optimal_action_into(state, mean)
    }

    /// The optimal policy's covariance `Σ_a = (β/2)(R + γBᵀPB)⁻¹` (the same in every state).
    pub fn policy_covariance(&self) -> &DMatrix<f64> {
        &self.policy_covariance
    }

    /// `log d*(a|s) = (q*(s,a) − v*(s))/β`, the log density of `N(−Ks, Σ_a)` at `a`.
    pub fn policy_log_density(&self, state: &[f64], action: &[f64]) -> Result<f64> {
        Ok((self.q_star(state, action)? - self.v_star(state)?) / self.beta)
    }

    /// Draw `a ~ N(−Ks, Σ_a)` into `action`, using `scratch` (m entries) for the
    /// standard normal draws.
    pub fn sample_action_into(
        &self,
        state: &[f64],
        rng: &mut Rng,
        scratch: &mut [f64],
        action: &mut [f64],
    ) -> Result<()> {
        check_len("scratch", scratch, self.m)?;
        self.policy_mean_into(state, action)?;
        for z in scratch.iter_mut() {
            *z = StandardNormal.sample(rng);
        }
        for (i, a) in action.iter_mut().enumerate() {
            *a += (0..=i)
                .map(|j| self.policy_factor[(i, j)] * scratch[j])
                .sum::<f64>();
        }
        Ok(())
    }

    /// `log det Σ_a`.
    pub fn policy_log_det(&self) -> f64 {
        self.policy_log_det
    }
}
