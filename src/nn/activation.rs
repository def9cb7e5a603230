//! Elementwise activations, applied fused with the bias add, and differentiated from
//! their outputs (so the backward pass needs only the stored activations).

use serde::{Deserialize, Serialize};

use super::scalar::Scalar;

/// An elementwise nonlinearity after a layer's affine map.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Activation {
    /// `y = x`: unbounded outputs (critics q(s,a;θ), Gaussian heads' mean and log-std).
    Identity,
    /// `y = max(x, 0)`: the usual hidden activation.
    Relu,
    /// `y = tanh(x)`: bounded outputs in (−1, 1) for deterministic policies d(s;w), or
    /// a smooth hidden activation.
    Tanh,
}

impl Activation {
    /// `row ← f(row + bias)` for one row of a layer's output.
    #[inline]
    pub(crate) fn add_bias_and_apply<T: Scalar>(self, row: &mut [T], bias: &[T]) {
        match self {
            Activation::Identity => {
                for (y, &b) in row.iter_mut().zip(bias) {
                    *y += b;
                }
            }
            Activation::Relu => {
                for (y, &b) in row.iter_mut().zip(bias) {
                    let x = *y + b;
                    *y = if x > T::ZERO { x } else { T::ZERO };
                }
            }
            Activation::Tanh => {
                for (y, &b) in row.iter_mut().zip(bias) {
                    *y = (*y + b).tanh();
                }
            }
        }
    }

    /// `grad ← grad · f′(x)`, with `f′` written in terms of the output `y = f(x)`.
    /// ReLU's derivative at 0 is taken as 0, as PyTorch does.
    #[inline]
    pub(crate) fn scale_by_derivative<T: Scalar>(self, grad: &mut [T], output: &[T]) {
        match self {
            Activation::Identity => {}
            Activation::Relu => {
                for (g, &y) in grad.iter_mut().zip(output) {
                    // A select rather than a branch, so that the loop vectorizes.
                    *g = if y > T::ZERO { *g } else { T::ZERO };
                }
            }
            Activation::Tanh => {
                for (g, &y) in grad.iter_mut().zip(output) {
                    *g *= T::ONE - y * y;
                }
            }
        }
    }
}
