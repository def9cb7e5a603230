//! Small dense f64 helpers for the LQR ground truth: parameter checks that name the bad
//! field, a square root of a PSD matrix for sampling, and allocation-free products on
//! slices for the per-step and per-query paths.

use nalgebra::{Complex, DMatrix};

use crate::error::{Error, Result};

/// Relative tolerance for "symmetric" and "positive semidefinite": parameters typed by
/// hand or computed in f64 are symmetric to rounding, not exactly.
const SYMMETRY_TOLERANCE: f64 = 1e-10;
/// Iteration cap for nalgebra's eigen and SVD routines (they return `None` past it).
const MAX_DECOMPOSITION_ITERATIONS: usize = 10_000;

/// The largest absolute entry (0 for an empty matrix).
pub(crate) fn max_abs(m: &DMatrix<f64>) -> f64 {
    m.iter().fold(0.0, |acc, x| acc.max(x.abs()))
}

pub(crate) fn check_shape(field: &str, m: &DMatrix<f64>, rows: usize, cols: usize) -> Result<()> {
    if m.nrows() != rows || m.ncols() != cols {
        return Err(Error::invalid(
            field,
            format!(
                "has shape {}×{}, expected {rows}×{cols}",
                m.nrows(),
                m.ncols()
            ),
        ));
    }
    if let Some(x) = m.iter().find(|x| !x.is_finite()) {
        return Err(Error::invalid(field, format!("has a non-finite entry {x}")));
    }
    Ok(())
}

/// The eigenvalues of a symmetric matrix, after checking it is symmetric.
fn symmetric_eigenvalues(field: &str, m: &DMatrix<f64>) -> Result<Vec<f64>> {
    let scale = max_abs(m).max(1.0);
    let asymmetry = max_abs(&(m - m.transpose()));
    if asymmetry > SYMMETRY_TOLERANCE * scale {
        return Err(Error::invalid(
            field,
            format!("is not symmetric (largest |M - Mᵀ| entry is {asymmetry:e})"),
        ));
    }
    let eigen = m
        .clone()
        .try_symmetric_eigen(f64::EPSILON, MAX_DECOMPOSITION_ITERATIONS)
        .ok_or_else(|| Error::Numerical {
            context: format!("eigenvalues of {field}"),
            reason: "symmetric eigen decomposition did not converge".into(),
        })?;
    Ok(eigen.eigenvalues.iter().copied().collect())
}

/// Check that `m` is symmetric positive semidefinite (to rounding).
pub(crate) fn check_psd(field: &str, m: &DMatrix<f64>) -> Result<()> {
    let eigenvalues = symmetric_eigenvalues(field, m)?;
    let scale = max_abs(m).max(1.0);
    let min = eigenvalues.iter().copied().fold(f64::INFINITY, f64::min);
    if min < -SYMMETRY_TOLERANCE * scale {
        return Err(Error::invalid(
            field,
            format!("is not positive semidefinite (smallest eigenvalue {min:e})"),
        ));
    }
    Ok(())
}

/// Check that `m` is symmetric positive definite.
pub(crate) fn check_pd(field: &str, m: &DMatrix<f64>) -> Result<()> {
    let eigenvalues = symmetric_eigenvalues(field, m)?;
    let min = eigenvalues.iter().copied().fold(f64::INFINITY, f64::min);
    if min <= 0.0 || m.clone().cholesky().is_none() {
        return Err(Error::invalid(
            field,
            format!("is not positive definite (smallest eigenvalue {min:e})"),
        ));
    }
    Ok(())
}

/// A factor `F` with `F Fᵀ = m` for a symmetric PSD `m`, so that `F z` with standard
/// normal `z` has covariance `m`. Cholesky would fail on singular covariances (noise on
/// only some state components), so this uses the eigen decomposition `V √Λ`.
pub(crate) fn psd_factor(field: &str, m: &DMatrix<f64>) -> Result<DMatrix<f64>> {
    check_psd(field, m)?;
    let eigen = m
        .clone()
        .try_symmetric_eigen(f64::EPSILON, MAX_DECOMPOSITION_ITERATIONS)
        .ok_or_else(|| Error::Numerical {
            context: format!("square root of {field}"),
            reason: "symmetric eigen decomposition did not converge".into(),
        })?;
    let mut factor = eigen.eigenvectors;
    for (j, lambda) in eigen.eigenvalues.iter().enumerate() {
        let root = lambda.max(0.0).sqrt();
        factor.column_mut(j).scale_mut(root);
    }
    Ok(factor)
}

/// The eigenvalues of a general real square matrix.
pub(crate) fn eigenvalues(context: &str, m: &DMatrix<f64>) -> Result<Vec<Complex<f64>>> {
    let schur = m
        .clone()
        .try_schur(f64::EPSILON, MAX_DECOMPOSITION_ITERATIONS)
        .ok_or_else(|| Error::Numerical {
            context: context.to_string(),
            reason: "Schur decomposition did not converge".into(),
        })?;
    Ok(schur.complex_eigenvalues().iter().copied().collect())
}

/// The largest eigenvalue modulus of a square matrix.
pub(crate) fn spectral_radius(context: &str, m: &DMatrix<f64>) -> Result<f64> {
    Ok(eigenvalues(context, m)?
        .iter()
        .fold(0.0, |acc, l| acc.max(l.norm())))
}

/// The smallest singular value of a complex matrix.
pub(crate) fn min_singular_value(context: &str, m: DMatrix<Complex<f64>>) -> Result<f64> {
    let svd = m
        .try_svd(false, false, f64::EPSILON, MAX_DECOMPOSITION_ITERATIONS)
        .ok_or_else(|| Error::Numerical {
            context: context.to_string(),
            reason: "singular value decomposition did not converge".into(),
        })?;
    Ok(svd
        .singular_values
        .iter()
        .copied()
        .fold(f64::INFINITY, f64::min))
}

/// `out = m x` without allocating.
pub(crate) fn mat_vec_into(m: &DMatrix<f64>, x: &[f64], out: &mut [f64]) {
    for (i, o) in out.iter_mut().enumerate() {
        *o = x.iter().enumerate().map(|(j, xj)| m[(i, j)] * xj).sum();
    }
}

/// `xᵀ m x` without allocating.
pub(crate) fn quadratic_form(m: &DMatrix<f64>, x: &[f64]) -> f64 {
    let mut total = 0.0;
    for (i, xi) in x.iter().enumerate() {
        for (j, xj) in x.iter().enumerate() {
            total += xi * m[(i, j)] * xj;
        }
    }
    total
}

/// `zᵀ h z` for `z = [s; a]`, without building `z`.
pub(crate) fn joint_quadratic_form(h: &DMatrix<f64>, s: &[f64], a: &[f64]) -> f64 {
    let n = s.len();
    let z = |k: usize| if k < n { s[k] } else { a[k - n] };
    let dim = n + a.len();
    let mut total = 0.0;
    for i in 0..dim {
        let zi = z(i);
        for j in 0..dim {
            total += zi * h[(i, j)] * z(j);
        }
    }
    total
}

/// The symmetric part `(m + mᵀ)/2`, to keep iterates symmetric despite rounding.
pub(crate) fn symmetrize(m: &mut DMatrix<f64>) {
    let n = m.nrows();
    for i in 0..n {
        for j in (i + 1)..n {
            let mean = 0.5 * (m[(i, j)] + m[(j, i)]);
            m[(i, j)] = mean;
            m[(j, i)] = mean;
        }
    }
}
