//! Parameter initialization, drawn from the caller's seeded stream.
//!
//! The default is PyTorch's for `nn.Linear`: weights and biases uniform in
//! `±1/√fan_in`. DDPG's paper (Lillicrap et al. 2015, §7) instead draws the final layer
//! from `U(±3·10⁻³)` so that initial outputs and their gradients are near zero; that is
//! [`Init::last_layer_bound`].
//!
//! Values are drawn layer by layer, weights row-major then biases, straight into the flat
//! parameter vector, so a seed fixes every parameter bit for bit.

use rand_distr::{Distribution, Uniform};
use serde::{Deserialize, Serialize};

use super::layout::Layout;
use super::scalar::Scalar;
use crate::error::{Error, Result};
use crate::rng::Rng;

/// How to draw initial parameters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Init {
    /// If set, the last layer's weights and biases are drawn from `U(±bound)` instead of
    /// `U(±1/√fan_in)` (DDPG uses `3e-3`).
    pub last_layer_bound: Option<f64>,
}

impl Init {
    /// PyTorch's default initialization for every layer.
    pub fn pytorch() -> Self {
        Init::default()
    }

    /// PyTorch's default, except the last layer drawn from `U(±bound)`.
    pub fn with_last_layer_bound(bound: f64) -> Self {
        Init {
            last_layer_bound: Some(bound),
        }
    }

    pub(crate) fn validate(&self) -> Result<()> {
        match self.last_layer_bound {
            Some(bound) if !(bound.is_finite() && bound > 0.0) => Err(Error::invalid(
                "init.last_layer_bound",
                format!("{bound} is not a positive finite number"),
            )),
            _ => Ok(()),
        }
    }

    /// Fills `params` (laid out as `layout`) with fresh draws from `rng`.
    pub(crate) fn fill<T: Scalar>(&self, layout: &Layout, params: &mut [T], rng: &mut Rng) {
        let last = layout.num_layers() - 1;
        for layer in 0..layout.num_layers() {
            let (fan_in, _) = layout.layer_dims(layer);
            let bound = match self.last_layer_bound {
                Some(bound) if layer == last => bound,
                _ => 1.0 / (fan_in as f64).sqrt(),
            };
            let bound = T::from_f64(bound);
            let uniform = Uniform::new(-bound, bound);
            // Weights and biases of a layer are contiguous, weights first.
            let layer_params = layout.weights(layer).start..layout.bias(layer).end;
            for p in &mut params[layer_params] {
                *p = uniform.sample(rng);
            }
        }
    }
}
