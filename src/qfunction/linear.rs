//! q-functions linear in their parameters, q(s,a;θ) = θᵀφ(s,a), in f64.
//!
//! They are the approximator class for which fitted Q-iteration can be checked exactly:
//! with [`QuadraticFeatures`] the LQR's q* is a member of the class, the `fit` step is a
//! least-squares solve ([`crate::algo::fit::LeastSquares`]), and the fitted quadratic form
//! ([`LinearQ::quadratic_form`]) can be compared entry by entry with the Riccati q-matrix.
//! With [`ActionAffineFeatures`] q is affine in the action, so
//! [`QFunction::affine_in_action`] hands a MILP maximizer its objective.

use nalgebra::{DMatrix, DVector};

pub use super::features::{ActionAffineFeatures, Features, QuadraticFeatures};
use crate::error::{Error, Result};
use crate::maximize::QFunction;

/// q(s,a;θ) = θᵀφ(s,a) for a feature map `F`.
#[derive(Clone, Debug, PartialEq)]
pub struct LinearQ<F> {
    features: F,
    theta: Vec<f64>,
}

impl<F: Features> LinearQ<F> {
    /// θ = 0: the chapter's "zero initialization" θ₀.
    pub fn zeros(features: F) -> Self {
        let theta = vec![0.0; features.len()];
        LinearQ { features, theta }
    }

    /// q with the given parameters (length and finiteness checked).
    pub fn with_params(features: F, theta: Vec<f64>) -> Result<Self> {
        let mut q = LinearQ::zeros(features);
        q.set_params(&theta)?;
        Ok(q)
    }

    pub fn features(&self) -> &F {
        &self.features
    }

    /// θ.
    pub fn params(&self) -> &[f64] {
        &self.theta
    }

    /// Replace θ (length and finiteness checked).
    pub fn set_params(&mut self, theta: &[f64]) -> Result<()> {
        if theta.len() != self.theta.len() {
            return Err(Error::invalid(
                "theta",
                format!(
                    "{} values, the features have {}",
                    theta.len(),
                    self.theta.len()
                ),
            ));
        }
        if let Some(index) = theta.iter().position(|x| !x.is_finite()) {
            return Err(Error::invalid(
                "theta",
                format!("entry {index} is {}, not finite", theta[index]),
            ));
        }
        self.theta.copy_from_slice(theta);
        Ok(())
    }

    fn check_input(&self, state: &[f64], action: &[f64]) -> Result<()> {
        check_len("state", state, self.features.state_dim())?;
        check_len("action", action, self.features.action_dim())
    }
}

fn check_len(field: &str, v: &[f64], expected: usize) -> Result<()> {
    if v.len() == expected {
        Ok(())
    } else {
        Err(Error::invalid(
            field,
            format!("has {} components, expected {expected}", v.len()),
        ))
    }
}

impl<F: Features> QFunction for LinearQ<F> {
    /// The feature vector φ(s, a).
    type Workspace = Vec<f64>;

    fn state_dim(&self) -> usize {
        self.features.state_dim()
    }

    fn action_dim(&self) -> usize {
        self.features.action_dim()
    }

    fn workspace(&self) -> Vec<f64> {
        vec![0.0; self.features.len()]
    }

    fn value(&self, phi: &mut Vec<f64>, state: &[f64], action: &[f64]) -> Result<f64> {
        self.check_input(state, action)?;
        phi.resize(self.features.len(), 0.0);
        self.features.features_into(state, action, phi);
        Ok(phi.iter().zip(&self.theta).map(|(p, t)| p * t).sum())
    }

    fn value_and_action_gradient(
        &self,
        phi: &mut Vec<f64>,
        state: &[f64],
        action: &[f64],
        gradient: &mut [f64],
    ) -> Result<f64> {
        check_len("gradient", gradient, self.features.action_dim())?;
        let value = self.value(phi, state, action)?;
        self.features
            .action_gradient_into(&self.theta, state, action, gradient);
        Ok(value)
    }

    fn affine_in_action(
        &self,
        _phi: &mut Vec<f64>,
        state: &[f64],
        coefficients: &mut [f64],
    ) -> Result<Option<f64>> {
        check_len("state", state, self.features.state_dim())?;
        check_len("coefficients", coefficients, self.features.action_dim())?;
        Ok(self
            .features
            .affine_in_action(&self.theta, state, coefficients))
    }
}

/// `q(z) = zᵀMz + lᵀz + c` over `z = [s, a]`, with `M` symmetric. For the LQR,
/// `q*(s,a) = −zᵀHz − c*`, so a converged fit has `M ≈ −H` (`H` =
/// [`RiccatiSolution::q_matrix`](crate::env::lqr::RiccatiSolution::q_matrix)), `l ≈ 0`.
#[derive(Clone, Debug, PartialEq)]
pub struct QuadraticForm {
    /// `M`, (n+m)×(n+m) symmetric.
    pub matrix: DMatrix<f64>,
    /// `l`, length n+m.
    pub linear: DVector<f64>,
    /// `c`.
    pub constant: f64,
}

impl LinearQ<QuadraticFeatures> {
    /// θ read as a quadratic form over `z = [s, a]`: the coefficient of `zᵢzⱼ` (i < j) is
    /// split evenly between `M_ij` and `M_ji`.
    pub fn quadratic_form(&self) -> QuadraticForm {
        let f = self.features;
        let d = f.joint_dim();
        let mut matrix = DMatrix::zeros(d, d);
        // The products follow the linear terms row by row of the upper triangle.
        let mut index = 1 + d;
        for i in 0..d {
            for j in i..d {
                let coefficient = self.theta[index];
                index += 1;
                if i == j {
                    matrix[(i, i)] = coefficient;
                } else {
                    matrix[(i, j)] = 0.5 * coefficient;
                    matrix[(j, i)] = 0.5 * coefficient;
                }
            }
        }
        QuadraticForm {
            matrix,
            linear: DVector::from_column_slice(&self.theta[1..1 + d]),
            constant: self.theta[0],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quadratic_form_reproduces_the_values() {
        let f = QuadraticFeatures::new(2, 1).unwrap();
        let theta: Vec<f64> = (0..f.len()).map(|i| (i as f64 * 0.37).sin()).collect();
        let q = LinearQ::with_params(f, theta).unwrap();
        let form = q.quadratic_form();
        assert_eq!(form.matrix, form.matrix.transpose());
        let mut ws = q.workspace();
        for (s, a) in [([0.5, -1.0], [2.0]), ([-3.0, 0.25], [-0.5])] {
            let z = DVector::from_column_slice(&[s[0], s[1], a[0]]);
            let from_form =
                (z.transpose() * &form.matrix * &z)[(0, 0)] + form.linear.dot(&z) + form.constant;
            let direct = q.value(&mut ws, &s, &a).unwrap();
            assert!(
                (from_form - direct).abs() < 1e-12,
                "{from_form} vs {direct}"
            );
        }
    }

    #[test]
    fn bad_inputs_are_typed_errors() {
        let f = ActionAffineFeatures::new(1, 1).unwrap();
        let mut q = LinearQ::zeros(f);
        let mut ws = q.workspace();
        assert!(matches!(
            q.value(&mut ws, &[1.0, 2.0], &[0.0]),
            Err(Error::InvalidParameter { .. })
        ));
        assert!(matches!(
            q.set_params(&[0.0; 3]),
            Err(Error::InvalidParameter { .. })
        ));
        assert!(matches!(
            q.set_params(&[0.0, f64::NAN, 0.0, 0.0]),
            Err(Error::InvalidParameter { .. })
        ));
        let mut c = [0.0];
        assert_eq!(
            q.affine_in_action(&mut ws, &[1.0], &mut c).unwrap(),
            Some(0.0)
        );
    }
}
