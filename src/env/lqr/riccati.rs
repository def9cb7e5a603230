//! The discounted discrete algebraic Riccati equation and the exact q*, v* and optimal
//! gain of an LQR task (rewards are negative costs).
//!
//! With `P` the solution of
//!
//! ```text
//! P = Q + γAᵀPA − γ²AᵀPB (R + γBᵀPB)⁻¹ BᵀPA,
//! ```
//!
//! the optimal action is `a = −K s` with `K = γ (R + γBᵀPB)⁻¹ BᵀPA`, and
//!
//! ```text
//! v*(s)   = −sᵀPs − c,                 c = γ tr(PΣ) / (1 − γ)   (c = 0 without noise)
//! q*(s,a) = r(s,a) + γ E[v*(As + Ba + w)] = −zᵀHz − c,  z = [s; a],
//! H = [[Q + γAᵀPA, γAᵀPB], [γBᵀPA, R + γBᵀPB]].
//! ```
//!
//! (q* and v* share the constant: `γ tr(PΣ) + γc = c`.) Maximizing `−zᵀHz` over `a`
//! gives `a = −H_aa⁻¹ H_as s = −K s` and the Schur complement `H_ss − H_sa H_aa⁻¹ H_as = P`,
//! which is the Riccati equation again.
//!
//! Solving: with `Ã = √γA`, `B̃ = √γB` the equation becomes the undiscounted DARE
//! `P = Q + ÃᵀPÃ − ÃᵀPB̃(R + B̃ᵀPB̃)⁻¹B̃ᵀPÃ`, solved by the structure-preserving doubling
//! algorithm (Chu, Fan & Lin 2005), which converges quadratically to the stabilizing
//! solution. That solution is the optimal cost when `(Ã, B̃)` is stabilizable and
//! `(Ã, Q)` detectable; both are checked first (PBH rank test), and the result is
//! verified (equation residual, closed-loop spectral radius of `Ã − B̃K` below 1).

use nalgebra::{Complex, DMatrix};

use super::linalg::{
    eigenvalues, joint_quadratic_form, max_abs, min_singular_value, quadratic_form,
    spectral_radius, symmetrize,
};
use super::params::LqrSystem;
use crate::error::{Error, Result};

const CONTEXT: &str = "discounted Riccati equation";
/// Doublings before giving up; k doublings do the work of 2^k value-iteration steps.
const MAX_DOUBLINGS: usize = 100;
/// Stop when an update changes `P` by less than this, relative. Convergence is
/// quadratic, so the error after that update is about the square of this.
const DOUBLING_TOLERANCE: f64 = 1e-10;
/// Largest relative equation residual accepted from the solver.
const RESIDUAL_TOLERANCE: f64 = 1e-9;
/// A PBH matrix whose smallest singular value is below this (relative) loses rank.
const RANK_TOLERANCE: f64 = 1e-8;

/// The exact solution of a (hard, unregularized) LQR task.
#[derive(Clone, Debug, PartialEq)]
pub struct RiccatiSolution {
    n: usize,
    m: usize,
    p: DMatrix<f64>,
    gain: DMatrix<f64>,
    h: DMatrix<f64>,
    constant: f64,
}

impl RiccatiSolution {
    /// Solve the discounted Riccati equation of `system`.
    ///
    /// Errors: [`Error::InvalidParameter`] for `γ = 1` with noise (every policy has
    /// infinite cost); [`Error::Numerical`] when `(√γA, √γB)` is not stabilizable,
    /// `(√γA, Q)` not detectable, or the solver does not converge.
    pub fn solve(system: &LqrSystem) -> Result<Self> {
        let gamma = system.gamma();
        let (n, m) = (system.state_dim(), system.action_dim());
        let has_noise = system
            .noise_covariance()
            .is_some_and(|sigma| max_abs(sigma) > 0.0);
        if gamma >= 1.0 && has_noise {
            return Err(Error::invalid(
                "gamma",
                "must be below 1 with process noise: with γ = 1 every policy has infinite cost",
            ));
        }
        let root = gamma.sqrt();
        let a = system.a() * root;
        let b = system.b() * root;
        check_stabilizable_detectable(&a, &b, system.q())?;
        let p = doubling(&a, &b, system.q(), system.r())?;

        let (h, gain) = q_matrix_and_gain(system, &p)?;
        let residual = relative_residual(system, &p, &h, &gain);
        if residual.is_nan() || residual > RESIDUAL_TOLERANCE {
            return Err(Error::Numerical {
                context: CONTEXT.into(),
                reason: format!("solution has relative residual {residual:e}"),
            });
        }
        let closed_loop = &a - &b * &gain;
        let radius = spectral_radius(CONTEXT, &closed_loop)?;
        if radius.is_nan() || radius >= 1.0 {
            return Err(Error::Numerical {
                context: CONTEXT.into(),
                reason: format!(
                    "solution is not stabilizing (spectral radius of √γ(A − BK) is {radius})"
                ),
            });
        }
        let constant = if has_noise {
            gamma * system.noise_trace(&p) / (1.0 - gamma)
        } else {
            0.0
        };
        Ok(RiccatiSolution {
            n,
            m,
            p,
            gain,
            h,
            constant,
        })
    }

    /// `P`, with `v*(s) = −sᵀPs − c`.
    pub fn p(&self) -> &DMatrix<f64> {
        &self.p
    }

    /// The optimal gain `K` (m×n): the optimal action is `−K s`.
    pub fn gain(&self) -> &DMatrix<f64> {
        &self.gain
    }

    /// `H` ((n+m)×(n+m)), with `q*(s, a) = −zᵀHz − c` for `z = [s; a]`.
    pub fn q_matrix(&self) -> &DMatrix<f64> {
        &self.h
    }

    /// The constant `c = γ tr(PΣ)/(1 − γ)` shared by q* and v* (0 without noise).
    pub fn constant(&self) -> f64 {
        self.constant
    }

    /// `q*(s, a) = −[s; a]ᵀ H [s; a] − c`.
    pub fn q_star(&self, state: &[f64], action: &[f64]) -> Result<f64> {
        check_len("state", state, self.n)?;
        check_len("action", action, self.m)?;
        Ok(-joint_quadratic_form(&self.h, state, action) - self.constant)
    }

    /// `v*(s) = −sᵀPs − c = max_a q*(s, a)`.
    pub fn v_star(&self, state: &[f64]) -> Result<f64> {
        check_len("state", state, self.n)?;
        Ok(-quadratic_form(&self.p, state) - self.constant)
    }

    /// Write the optimal action `−K s` into `action`.
    pub fn optimal_action_into(&self, state: &[f64], action: &mut [f64]) -> Result<()> {
        check_len("state", state, self.n)?;
        check_len("action", action, self.m)?;
        super::linalg::mat_vec_into(&self.gain, state, action);
        action.iter_mut().for_each(|x| *x = -*x);
        Ok(())
    }
}

pub(crate) fn check_len(field: &str, v: &[f64], expected: usize) -> Result<()> {
    if v.len() != expected {
        return Err(Error::invalid(
            field,
            format!("has {} components, expected {expected}", v.len()),
        ));
    }
    Ok(())
}

/// `H` of q* and the gain `K = H_aa⁻¹ H_as` for a given `P`.
pub(crate) fn q_matrix_and_gain(
    system: &LqrSystem,
    p: &DMatrix<f64>,
) -> Result<(DMatrix<f64>, DMatrix<f64>)> {
    let (n, m) = (system.state_dim(), system.action_dim());
    let gamma = system.gamma();
    let (a, b) = (system.a(), system.b());
    let pa = p * a;
    let pb = p * b;
    let mut h = DMatrix::zeros(n + m, n + m);
    h.view_mut((0, 0), (n, n))
        .copy_from(&(system.q() + a.transpose() * &pa * gamma));
    let h_as = b.transpose() * &pa * gamma;
    h.view_mut((n, 0), (m, n)).copy_from(&h_as);
    h.view_mut((0, n), (n, m)).copy_from(&h_as.transpose());
    h.view_mut((n, n), (m, m))
        .copy_from(&(system.r() + b.transpose() * &pb * gamma));
    symmetrize(&mut h);
    let h_aa = h.view((n, n), (m, m)).into_owned();
    let gain = h_aa
        .cholesky()
        .ok_or_else(|| Error::Numerical {
            context: CONTEXT.into(),
            reason: "R + γBᵀPB is not positive definite".into(),
        })?
        .solve(&h_as);
    Ok((h, gain))
}

/// `‖Q + γAᵀPA − γAᵀPB K − P‖_F / ‖P‖_F`, with `K` the gain of `P` (so the middle term
/// is the `γ²AᵀPB(R + γBᵀPB)⁻¹BᵀPA` of the equation).
fn relative_residual(
    system: &LqrSystem,
    p: &DMatrix<f64>,
    h: &DMatrix<f64>,
    gain: &DMatrix<f64>,
) -> f64 {
    let n = system.state_dim();
    let h_ss = h.view((0, 0), (n, n));
    let h_sa = h.view((0, n), (n, system.action_dim()));
    let residual = h_ss - h_sa * gain - p;
    residual.norm() / p.norm().max(f64::MIN_POSITIVE)
}

/// PBH tests on the discounted pair: every eigenvalue `λ` of `Ã` with `|λ| ≥ 1` must keep
/// `[λI − Ã, B̃]` (stabilizability) and `[λI − Ã; Q]` (detectability) at full rank.
/// (`Q` and `Q^{1/2}` have the same kernel, so `Q` serves for the detectability test.)
fn check_stabilizable_detectable(
    a: &DMatrix<f64>,
    b: &DMatrix<f64>,
    q: &DMatrix<f64>,
) -> Result<()> {
    let n = a.nrows();
    let m = b.ncols();
    let scale = max_abs(a).max(max_abs(b)).max(max_abs(q)).max(1.0);
    let complex = |x: f64| Complex::new(x, 0.0);
    for lambda in eigenvalues(CONTEXT, a)? {
        if lambda.norm() < 1.0 - 1e-12 {
            continue;
        }
        let shifted = DMatrix::from_fn(n, n, |i, j| {
            let diagonal = if i == j { lambda } else { complex(0.0) };
            diagonal - complex(a[(i, j)])
        });
        let mut controllability = DMatrix::zeros(n, n + m);
        controllability.view_mut((0, 0), (n, n)).copy_from(&shifted);
        controllability
            .view_mut((0, n), (n, m))
            .copy_from(&b.map(complex));
        if min_singular_value(CONTEXT, controllability)? <= RANK_TOLERANCE * scale {
            return Err(Error::Numerical {
                context: CONTEXT.into(),
                reason: format!(
                    "(√γA, √γB) is not stabilizable: the mode λ = {lambda} of √γA cannot be controlled"
                ),
            });
        }
        let mut observability = DMatrix::zeros(2 * n, n);
        observability.view_mut((0, 0), (n, n)).copy_from(&shifted);
        observability
            .view_mut((n, 0), (n, n))
            .copy_from(&q.map(complex));
        if min_singular_value(CONTEXT, observability)? <= RANK_TOLERANCE * scale {
            return Err(Error::Numerical {
                context: CONTEXT.into(),
                reason: format!(
                    "(√γA, Q) is not detectable: the mode λ = {lambda} of √γA has no cost, \
                     so the stabilizing Riccati solution is not the optimal value"
                ),
            });
        }
    }
    Ok(())
}

/// Structure-preserving doubling for `X = Q + ÃᵀXÃ − ÃᵀXB̃(R + B̃ᵀXB̃)⁻¹B̃ᵀXÃ`.
///
/// With `G = B̃R⁻¹B̃ᵀ` the equation reads `X = Q + ÃᵀX(I + GX)⁻¹Ã`, and the iteration
/// `A⁺ = A(I + GH)⁻¹A`, `G⁺ = G + A(I + GH)⁻¹GAᵀ`, `H⁺ = H + AᵀH(I + GH)⁻¹A`
/// from `(Ã, G, Q)` has `H` converging to `X` quadratically.
fn doubling(
    a: &DMatrix<f64>,
    b: &DMatrix<f64>,
    q: &DMatrix<f64>,
    r: &DMatrix<f64>,
) -> Result<DMatrix<f64>> {
    let n = a.nrows();
    let not_invertible = |what: &str| Error::Numerical {
        context: CONTEXT.into(),
        reason: format!("{what} is singular"),
    };
    let r_inv_bt = r
        .clone()
        .cholesky()
        .ok_or_else(|| not_invertible("R"))?
        .solve(&b.transpose());
    let mut g = b * r_inv_bt;
    symmetrize(&mut g);
    let mut a_k = a.clone();
    let mut h = q.clone();
    let identity = DMatrix::<f64>::identity(n, n);
    for _ in 0..MAX_DOUBLINGS {
        let lu = (&identity + &g * &h).lu();
        let w_a = lu.solve(&a_k).ok_or_else(|| not_invertible("I + GH"))?;
        let w_g = lu.solve(&g).ok_or_else(|| not_invertible("I + GH"))?;
        let mut h_next = &h + a_k.transpose() * &h * &w_a;
        symmetrize(&mut h_next);
        g += &a_k * w_g * a_k.transpose();
        symmetrize(&mut g);
        a_k = &a_k * w_a;
        if h_next.iter().chain(g.iter()).any(|x| !x.is_finite()) {
            return Err(Error::Numerical {
                context: CONTEXT.into(),
                reason: "doubling iterates overflowed".into(),
            });
        }
        let change = (&h_next - &h).norm();
        h = h_next;
        if change <= DOUBLING_TOLERANCE * h.norm() {
            return Ok(h);
        }
    }
    Err(Error::Numerical {
        context: CONTEXT.into(),
        reason: format!("doubling did not converge in {MAX_DOUBLINGS} steps"),
    })
}
