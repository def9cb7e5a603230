//! Losses with their gradients with respect to the network output, ready for
//! [`super::Mlp::backward`].

use super::scalar::Scalar;
use crate::error::{Error, Result};

/// Mean squared error `L = (1/N) Σᵢ (predictionᵢ − targetᵢ)²` over all `N` entries;
/// writes `∂L/∂prediction = 2(prediction − target)/N` into `grad` and returns `L`
/// (accumulated in f64). The `fit` step of every fitted-Q method.
pub fn mse_with_gradient<T: Scalar>(prediction: &[T], target: &[T], grad: &mut [T]) -> Result<f64> {
    if prediction.len() != target.len() || prediction.len() != grad.len() || prediction.is_empty() {
        return Err(Error::invalid(
            "mse",
            format!(
                "prediction, target and gradient have {}, {} and {} values (need equal, nonzero)",
                prediction.len(),
                target.len(),
                grad.len()
            ),
        ));
    }
    let n = prediction.len() as f64;
    let scale = T::from_f64(2.0 / n);
    let mut sum = 0.0;
    for ((g, &p), &y) in grad.iter_mut().zip(prediction).zip(target) {
        let residual = p - y;
        sum += residual.to_f64() * residual.to_f64();
        *g = scale * residual;
    }
    Ok(sum / n)
}
