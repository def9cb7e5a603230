//! Adam (Kingma & Ba 2015) on flat parameter vectors, with PyTorch's update formulas.
//!
//! Per step t, for every parameter θ with gradient g:
//! `m ← m + (1−β₁)(g − m)` (PyTorch's `lerp`), `v ← β₂v + (1−β₂)g²`, then
//! `θ ← θ − (lr / (1−β₁ᵗ)) · m / (√v / √(1−β₂ᵗ) + ε)`.
//! The moments live in vectors allocated once, so a step never allocates.

use serde::{Deserialize, Serialize};

use super::scalar::Scalar;
use crate::error::{Error, Result};

/// Adam's hyperparameters; the defaults are PyTorch's.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AdamConfig {
    /// Learning rate, > 0.
    pub lr: f64,
    /// Decay of the first moment, in [0, 1).
    pub beta1: f64,
    /// Decay of the second moment, in [0, 1).
    pub beta2: f64,
    /// Added to the denominator for stability, > 0.
    pub eps: f64,
}

impl Default for AdamConfig {
    fn default() -> Self {
        AdamConfig {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        }
    }
}

impl AdamConfig {
    /// PyTorch's defaults with learning rate `lr`.
    pub fn with_lr(lr: f64) -> Self {
        AdamConfig {
            lr,
            ..AdamConfig::default()
        }
    }

    /// Checks every field; errors name it (`adam.lr`, `adam.beta1`, ...).
    pub fn validate(&self) -> Result<()> {
        check_lr(self.lr)?;
        for (field, beta) in [("adam.beta1", self.beta1), ("adam.beta2", self.beta2)] {
            if !(0.0..1.0).contains(&beta) {
                return Err(Error::invalid(field, format!("{beta} is not in [0, 1)")));
            }
        }
        if !(self.eps.is_finite() && self.eps > 0.0) {
            return Err(Error::invalid(
                "adam.eps",
                format!("{} is not a positive finite number", self.eps),
            ));
        }
        Ok(())
    }
}

fn check_lr(lr: f64) -> Result<()> {
    if lr.is_finite() && lr > 0.0 {
        Ok(())
    } else {
        Err(Error::invalid(
            "adam.lr",
            format!("{lr} is not a positive finite number"),
        ))
    }
}

/// An Adam optimizer for one parameter vector: validated hyperparameters and the
/// moment estimates. Serializable, so that a training checkpoint restores the moments
/// and the step count (a resumed run then continues bit for bit); reading one checks it.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(try_from = "AdamRecord<T>", bound = "T: Scalar")]
pub struct Adam<T: Scalar = f32> {
    config: AdamConfig,
    first_moment: Vec<T>,
    second_moment: Vec<T>,
    steps: u64,
}

/// The stored form of an [`Adam`], checked when read.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, bound = "T: Scalar")]
struct AdamRecord<T> {
    config: AdamConfig,
    first_moment: Vec<T>,
    second_moment: Vec<T>,
    steps: u64,
}

impl<T: Scalar> TryFrom<AdamRecord<T>> for Adam<T> {
    type Error = Error;

    fn try_from(record: AdamRecord<T>) -> Result<Self> {
        record.config.validate()?;
        let n = record.first_moment.len();
        if record.second_moment.len() != n {
            return Err(Error::invalid(
                "adam.second_moment",
                format!(
                    "{} values, the first moment has {n}",
                    record.second_moment.len()
                ),
            ));
        }
        let moments = record.first_moment.iter().chain(&record.second_moment);
        if let Some(x) = moments.copied().find(|x| !x.is_finite()) {
            return Err(Error::invalid("adam.moments", format!("{x} is not finite")));
        }
        Ok(Adam {
            config: record.config,
            first_moment: record.first_moment,
            second_moment: record.second_moment,
            steps: record.steps,
        })
    }
}

impl<T: Scalar> Adam<T> {
    /// An optimizer for `num_params` parameters, after checking `config`.
    pub fn new(config: AdamConfig, num_params: usize) -> Result<Self> {
        config.validate()?;
        Ok(Adam {
            config,
            first_moment: vec![T::ZERO; num_params],
            second_moment: vec![T::ZERO; num_params],
            steps: 0,
        })
    }

    pub fn config(&self) -> &AdamConfig {
        &self.config
    }

    /// Number of parameters this optimizer updates.
    pub fn num_params(&self) -> usize {
        self.first_moment.len()
    }

    /// Steps taken so far (t in the bias corrections).
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// Changes the learning rate (for schedules), keeping the moments.
    pub fn set_lr(&mut self, lr: f64) -> Result<()> {
        check_lr(lr)?;
        self.config.lr = lr;
        Ok(())
    }

    /// One descent step: moves `params` against `grads` (use negated gradients to ascend).
    pub fn step(&mut self, params: &mut [T], grads: &[T]) -> Result<()> {
        let n = self.first_moment.len();
        if params.len() != n || grads.len() != n {
            return Err(Error::invalid(
                "adam.step",
                format!(
                    "{} parameters and {} gradients for an optimizer of {n} parameters",
                    params.len(),
                    grads.len()
                ),
            ));
        }
        self.steps += 1;
        let AdamConfig {
            lr,
            beta1,
            beta2,
            eps,
        } = self.config;
        // Scalars in f64, as PyTorch computes them in Python floats.
        let t = self.steps as f64;
        let coefficients = Coefficients {
            lerp_weight: 1.0 - beta1,
            step_size: T::from_f64(lr / (1.0 - beta1.powf(t))),
            sqrt_bias_correction2: T::from_f64((1.0 - beta2.powf(t)).sqrt()),
            beta2: T::from_f64(beta2),
            one_minus_beta2: T::from_f64(1.0 - beta2),
            eps: T::from_f64(eps),
        };
        let moments = (&mut self.first_moment[..], &mut self.second_moment[..]);
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports the feature the function is compiled with.
            unsafe { update_avx512(params, grads, moments, coefficients) };
            return Ok(());
        }
        #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
        if std::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports the feature the function is compiled with.
            unsafe { update_avx2(params, grads, moments, coefficients) };
            return Ok(());
        }
        update(params, grads, moments, coefficients);
        Ok(())
    }
}

/// The per-step constants of the update.
#[derive(Clone, Copy)]
struct Coefficients<T> {
    lerp_weight: f64,
    step_size: T,
    sqrt_bias_correction2: T,
    beta2: T,
    one_minus_beta2: T,
    eps: T,
}

/// The same loop compiled for AVX2 (twice the vector width of the x86-64 baseline); no
/// FMA, so the results are bit-identical to the baseline build's.
#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
#[target_feature(enable = "avx2")]
unsafe fn update_avx2<T: Scalar>(
    params: &mut [T],
    grads: &[T],
    moments: (&mut [T], &mut [T]),
    coefficients: Coefficients<T>,
) {
    update(params, grads, moments, coefficients)
}

/// The same loop compiled for AVX-512 (twice AVX2's width; again no FMA).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn update_avx512<T: Scalar>(
    params: &mut [T],
    grads: &[T],
    moments: (&mut [T], &mut [T]),
    coefficients: Coefficients<T>,
) {
    update(params, grads, moments, coefficients)
}

#[inline(always)]
fn update<T: Scalar>(
    params: &mut [T],
    grads: &[T],
    (first_moment, second_moment): (&mut [T], &mut [T]),
    c: Coefficients<T>,
) {
    let (w, one_minus_w) = (T::from_f64(c.lerp_weight), T::from_f64(1.0 - c.lerp_weight));
    let moments = first_moment.iter_mut().zip(second_moment.iter_mut());
    for ((theta, &g), (m, v)) in params.iter_mut().zip(grads).zip(moments) {
        // torch.lerp: exact at both ends whichever side the weight is on.
        *m = if c.lerp_weight < 0.5 {
            *m + w * (g - *m)
        } else {
            g - (g - *m) * one_minus_w
        };
        *v = *v * c.beta2 + c.one_minus_beta2 * g * g;
        let denominator = v.sqrt() / c.sqrt_bias_correction2 + c.eps;
        *theta -= c.step_size * (*m / denominator);
    }
}
