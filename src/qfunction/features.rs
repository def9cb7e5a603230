//! Feature maps φ(s, a) for q-functions linear in their parameters, q(s,a;θ) = θᵀφ(s,a).
//!
//! Two maps cover what the chapter needs from a linear q:
//! - [`QuadraticFeatures`]: every monomial of degree ≤ 2 in `z = [s, a]`. The LQR's
//!   `q*(s,a) = −zᵀHz − c` is exactly representable, so fitted Q-iteration with these
//!   features can be checked against the Riccati solution to machine precision.
//! - [`ActionAffineFeatures`]: `φ(s) ⊗ [1, a]` with `φ(s) = [1, s]`, so q is affine in the
//!   action, `q = θ₀ᵀφ(s) + aᵀWφ(s)`: the form a MILP maximizer can state over integer
//!   actions.
//!
//! A map writes into caller buffers and never allocates; lengths are checked once by the
//! q-function that owns it ([`super::linear::LinearQ`]).

/// A feature map φ(s, a), with what a maximizer needs from θᵀφ besides its value.
pub trait Features: Sync {
    fn state_dim(&self) -> usize;
    fn action_dim(&self) -> usize;
    /// Number of features (the length of θ).
    fn len(&self) -> usize;

    /// Always false: a map has at least the constant feature.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Write φ(s, a) into `phi` (length [`Features::len`]).
    fn features_into(&self, state: &[f64], action: &[f64], phi: &mut [f64]);

    /// Write ∇ₐ θᵀφ(s, a) into `gradient` (length `action_dim`).
    fn action_gradient_into(
        &self,
        theta: &[f64],
        state: &[f64],
        action: &[f64],
        gradient: &mut [f64],
    );

    /// If θᵀφ(s, ·) is affine in the action for every θ, write its slope into
    /// `coefficients` and return the intercept; `None` otherwise.
    fn affine_in_action(
        &self,
        _theta: &[f64],
        _state: &[f64],
        _coefficients: &mut [f64],
    ) -> Option<f64> {
        None
    }
}

/// All monomials of degree ≤ 2 in `z = [s, a]` (`d = n + m` components):
/// `[1, z₀, …, z_{d−1}, z₀z₀, z₀z₁, …, z₀z_{d−1}, z₁z₁, …, z_{d−1}z_{d−1}]`,
/// i.e. the constant, the linear terms, then the products `zᵢzⱼ` for `i ≤ j` row by row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuadraticFeatures {
    state_dim: usize,
    action_dim: usize,
}

impl QuadraticFeatures {
    /// Features for `state_dim` state and `action_dim` action components (both ≥ 1).
    pub fn new(state_dim: usize, action_dim: usize) -> crate::Result<Self> {
        if state_dim == 0 {
            return Err(crate::Error::invalid("state_dim", "must be at least 1"));
        }
        if action_dim == 0 {
            return Err(crate::Error::invalid("action_dim", "must be at least 1"));
        }
        Ok(QuadraticFeatures {
            state_dim,
            action_dim,
        })
    }

    /// `d = n + m`, the length of `z`.
    pub fn joint_dim(&self) -> usize {
        self.state_dim + self.action_dim
    }

    /// Index in θ of the coefficient of `zᵢzⱼ` (either order); `None` if `i` or `j` is
    /// not below [`QuadraticFeatures::joint_dim`].
    pub fn product_index(&self, i: usize, j: usize) -> Option<usize> {
        let d = self.joint_dim();
        let (i, j) = (i.min(j), i.max(j));
        // Row r of the upper triangle holds d − r products, so rows 0..i hold i·d − i(i−1)/2.
        (j < d).then(|| 1 + d + i * d - i * i.saturating_sub(1) / 2 + (j - i))
    }

    /// `zₖ` for the joint vector `[state, action]`.
    #[inline]
    fn z(&self, state: &[f64], action: &[f64], k: usize) -> f64 {
        if k < self.state_dim {
            state[k]
        } else {
            action[k - self.state_dim]
        }
    }
}

impl Features for QuadraticFeatures {
    fn state_dim(&self) -> usize {
        self.state_dim
    }

    fn action_dim(&self) -> usize {
        self.action_dim
    }

    fn len(&self) -> usize {
        let d = self.joint_dim();
        1 + d + d * (d + 1) / 2
    }

    fn features_into(&self, state: &[f64], action: &[f64], phi: &mut [f64]) {
        let d = self.joint_dim();
        phi[0] = 1.0;
        for k in 0..d {
            phi[1 + k] = self.z(state, action, k);
        }
        let mut index = 1 + d;
        for i in 0..d {
            let zi = self.z(state, action, i);
            for j in i..d {
                phi[index] = zi * self.z(state, action, j);
                index += 1;
            }
        }
    }

    fn action_gradient_into(
        &self,
        theta: &[f64],
        state: &[f64],
        action: &[f64],
        gradient: &mut [f64],
    ) {
        let (n, d) = (self.state_dim, self.joint_dim());
        gradient.copy_from_slice(&theta[1 + n..1 + d]);
        // ∂(zᵢzⱼ)/∂zₖ = δᵢₖzⱼ + δⱼₖzᵢ; only the action components k ≥ n are wanted
        // (for i = j both terms fire, giving 2zᵢ).
        let mut index = 1 + d;
        for i in 0..d {
            let zi = self.z(state, action, i);
            for j in i..d {
                let coefficient = theta[index];
                if j >= n {
                    gradient[j - n] += coefficient * zi;
                }
                if i >= n {
                    gradient[i - n] += coefficient * self.z(state, action, j);
                }
                index += 1;
            }
        }
    }
}

/// `φ(s) ⊗ [1, a]` with `φ(s) = [1, s]`: feature `k·(m+1) + j` is `φₖ(s)·ψⱼ(a)` with
/// `ψ = [1, a₀, …, a_{m−1}]`. So `q = θ₀ᵀφ(s) + aᵀWφ(s)`, affine in the action for every
/// state, with `θ₀ = (θ_{k(m+1)})ₖ` and `W[j][k] = θ_{k(m+1)+1+j}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ActionAffineFeatures {
    state_dim: usize,
    action_dim: usize,
}

impl ActionAffineFeatures {
    /// Features for `state_dim` state and `action_dim` action components (both ≥ 1).
    pub fn new(state_dim: usize, action_dim: usize) -> crate::Result<Self> {
        if state_dim == 0 {
            return Err(crate::Error::invalid("state_dim", "must be at least 1"));
        }
        if action_dim == 0 {
            return Err(crate::Error::invalid("action_dim", "must be at least 1"));
        }
        Ok(ActionAffineFeatures {
            state_dim,
            action_dim,
        })
    }

    /// `φₖ(s)`: 1 for `k = 0`, `s_{k−1}` after.
    #[inline]
    fn state_feature(state: &[f64], k: usize) -> f64 {
        if k == 0 {
            1.0
        } else {
            state[k - 1]
        }
    }
}

impl Features for ActionAffineFeatures {
    fn state_dim(&self) -> usize {
        self.state_dim
    }

    fn action_dim(&self) -> usize {
        self.action_dim
    }

    fn len(&self) -> usize {
        (self.state_dim + 1) * (self.action_dim + 1)
    }

    fn features_into(&self, state: &[f64], action: &[f64], phi: &mut [f64]) {
        let stride = self.action_dim + 1;
        for k in 0..=self.state_dim {
            let phi_k = Self::state_feature(state, k);
            let row = &mut phi[k * stride..(k + 1) * stride];
            row[0] = phi_k;
            for (out, &a) in row[1..].iter_mut().zip(action) {
                *out = phi_k * a;
            }
        }
    }

    fn action_gradient_into(
        &self,
        theta: &[f64],
        state: &[f64],
        _action: &[f64],
        gradient: &mut [f64],
    ) {
        // Affine in a: the gradient is the slope, whatever the action.
        let _ = self.affine_in_action(theta, state, gradient);
    }

    fn affine_in_action(
        &self,
        theta: &[f64],
        state: &[f64],
        coefficients: &mut [f64],
    ) -> Option<f64> {
        let stride = self.action_dim + 1;
        coefficients.fill(0.0);
        let mut intercept = 0.0;
        for k in 0..=self.state_dim {
            let phi_k = Self::state_feature(state, k);
            let row = &theta[k * stride..(k + 1) * stride];
            intercept += row[0] * phi_k;
            for (c, &w) in coefficients.iter_mut().zip(&row[1..]) {
                *c += w * phi_k;
            }
        }
        Some(intercept)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// θᵀφ with θ = the given vector.
    fn value<F: Features>(f: &F, theta: &[f64], s: &[f64], a: &[f64]) -> f64 {
        let mut phi = vec![0.0; f.len()];
        f.features_into(s, a, &mut phi);
        phi.iter().zip(theta).map(|(p, t)| p * t).sum()
    }

    fn theta(len: usize) -> Vec<f64> {
        (0..len)
            .map(|i| ((i * 7 + 3) % 11) as f64 / 5.0 - 1.0)
            .collect()
    }

    /// Central differences of θᵀφ in the action agree with the analytic gradient.
    fn check_gradient<F: Features>(f: &F, s: &[f64], a: &[f64]) {
        let theta = theta(f.len());
        let mut gradient = vec![0.0; f.action_dim()];
        f.action_gradient_into(&theta, s, a, &mut gradient);
        let h = 1e-5;
        for j in 0..f.action_dim() {
            let mut plus = a.to_vec();
            let mut minus = a.to_vec();
            plus[j] += h;
            minus[j] -= h;
            let numeric = (value(f, &theta, s, &plus) - value(f, &theta, s, &minus)) / (2.0 * h);
            assert!(
                (numeric - gradient[j]).abs() < 1e-7 * (1.0 + numeric.abs()),
                "component {j}: numeric {numeric}, analytic {}",
                gradient[j]
            );
        }
    }

    #[test]
    fn quadratic_features_are_the_monomials_in_order() {
        let f = QuadraticFeatures::new(2, 1).unwrap();
        assert_eq!(f.len(), 1 + 3 + 6);
        let mut phi = vec![0.0; f.len()];
        f.features_into(&[2.0, 3.0], &[5.0], &mut phi);
        assert_eq!(
            phi,
            vec![1.0, 2.0, 3.0, 5.0, 4.0, 6.0, 10.0, 9.0, 15.0, 25.0]
        );
        assert_eq!(f.product_index(0, 3), None);
        let products = [(0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2)];
        for (offset, (i, j)) in products.into_iter().enumerate() {
            assert_eq!(f.product_index(i, j), Some(4 + offset), "({i}, {j})");
            assert_eq!(f.product_index(j, i), Some(4 + offset));
        }
    }

    #[test]
    fn quadratic_action_gradient_matches_finite_differences() {
        check_gradient(
            &QuadraticFeatures::new(3, 2).unwrap(),
            &[0.3, -1.2, 0.7],
            &[0.4, -0.9],
        );
        check_gradient(&QuadraticFeatures::new(1, 1).unwrap(), &[2.0], &[-1.5]);
    }

    #[test]
    fn action_affine_features_are_affine_and_report_their_slope() {
        let f = ActionAffineFeatures::new(2, 3).unwrap();
        assert_eq!(f.len(), 3 * 4);
        let theta = theta(f.len());
        let s = [0.5, -2.0];
        let mut slope = vec![0.0; 3];
        let intercept = f.affine_in_action(&theta, &s, &mut slope).unwrap();
        for a in [[0.0, 0.0, 0.0], [1.0, -2.0, 0.5], [3.0, 1.0, -4.0]] {
            let affine = intercept + slope.iter().zip(&a).map(|(c, x)| c * x).sum::<f64>();
            let direct = value(&f, &theta, &s, &a);
            assert!((affine - direct).abs() < 1e-12, "{affine} vs {direct}");
        }
        check_gradient(&f, &s, &[1.0, -2.0, 0.5]);
    }

    #[test]
    fn zero_dimensions_are_rejected() {
        assert!(QuadraticFeatures::new(0, 1).is_err());
        assert!(QuadraticFeatures::new(1, 0).is_err());
        assert!(ActionAffineFeatures::new(0, 1).is_err());
        assert!(ActionAffineFeatures::new(1, 0).is_err());
    }
}
