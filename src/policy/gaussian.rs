//! The Gaussian policy head `d(a|s; φ) = N(μ_φ(s), σ_φ(s))` of the chapter's sections
//! "Approximating Boltzmann Policies by Gaussians" and "Reparameterizating the
//! Objective", and its tanh-squashed variant used by SAC in practice.
//!
//! # What the network outputs
//! A policy network `[obs, hidden.., 2m]` with an identity output layer writes, per row,
//! `m` means `μ` followed by `m` raw log standard deviations. The log-std is clamped to
//! `[log_std_min, log_std_max]` (Stable-Baselines3: `[−20, 2]`), with zero gradient
//! where the clamp is active, as `torch.clamp` has. Components are independent
//! (diagonal covariance), so every density below is a product over components.
//!
//! # Reparameterization (the chapter's `f_φ(s, ε) = μ_φ(s) + σ_φ(s)ε`)
//! [`GaussianHead::sample`] takes `ε ~ N(0, I)` drawn by the caller and returns
//! `u = μ + σ ⊙ ε` (unsquashed: the action) and its log-density,
//!
//! ```text
//! log d(u|s) = Σᵢ [ −½ log 2π − log σᵢ − ½ εᵢ² ]                       (chapter's formula)
//! ```
//!
//! **Squashed** (Haarnoja et al. 2018, appendix C): the action is `a = tanh(u)` in
//! (−1, 1)ᵐ, and the change of variables subtracts `Σᵢ log(1 − tanh²uᵢ)`, computed here
//! as `2(log 2 − u − softplus(−2u))`, exact for every u (Stable-Baselines3 writes
//! `log(1 − a² + 10⁻⁶)`, which is biased near the box edges).
//!
//! # The gradient of a reparameterized loss
//! For a loss `L(a, log d)` of the sampled actions and their log-densities (SAC's
//! policy loss `β log d(f_φ(s,ε)|s) − q(s, f_φ(s,ε))`), [`GaussianHead::backward`] maps
//! `∂L/∂a` and `∂L/∂log d` to `∂L/∂(network output)` with `ε` held fixed:
//!
//! ```text
//! ∂L/∂uᵢ     = ∂L/∂aᵢ · (squashed: 1 − tanh²uᵢ; else 1) + (squashed: ∂L/∂log d · 2 tanh uᵢ)
//! ∂L/∂μᵢ     = ∂L/∂uᵢ
//! ∂L/∂log σᵢ = ∂L/∂uᵢ · σᵢεᵢ − ∂L/∂log d          (0 where the clamp is active)
//! ```
//!
//! (`log d` depends on μ only through u − μ = σε, which ε fixes; and on log σ through
//! `−log σ`.) `tests/gaussian_policy.rs` checks the densities against numerical
//! integration and this gradient, composed with a critic, against finite differences.
//!
//! The arithmetic of a row is done in f64 whatever the network's scalar (a row has `m`
//! components, a few operations each); results are rounded once to the network's type.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::nn::Scalar;

/// Stable-Baselines3's clamp of the log standard deviation, `[−20, 2]`.
pub const LOG_STD_BOUNDS: (f64, f64) = (-20.0, 2.0);

const HALF_LOG_TWO_PI: f64 = 0.918_938_533_204_672_7;

/// A diagonal Gaussian policy head over `m` action components, optionally tanh-squashed.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct GaussianHead {
    action_dim: usize,
    squashed: bool,
    log_std_min: f64,
    log_std_max: f64,
}

/// `log(1 − tanh²u)`, exactly and without overflow: `2(log 2 − u − softplus(−2u))`.
fn log_one_minus_tanh_squared(u: f64) -> f64 {
    let x = -2.0 * u;
    let softplus = x.max(0.0) + (-x.abs()).exp().ln_1p();
    2.0 * (std::f64::consts::LN_2 - u - softplus)
}

impl GaussianHead {
    /// A head for `action_dim ≥ 1` components with the log-std clamped to
    /// `log_std_bounds = (min, max)`, finite with `min < max`.
    pub fn new(action_dim: usize, squashed: bool, log_std_bounds: (f64, f64)) -> Result<Self> {
        if action_dim == 0 {
            return Err(Error::invalid(
                "gaussian_head.action_dim",
                "must be at least 1",
            ));
        }
        let (min, max) = log_std_bounds;
        if !(min.is_finite() && max.is_finite() && min < max) {
            return Err(Error::invalid(
                "gaussian_head.log_std_bounds",
                format!("({min}, {max}) is not a finite interval with min < max"),
            ));
        }
        Ok(GaussianHead {
            action_dim,
            squashed,
            log_std_min: min,
            log_std_max: max,
        })
    }

    pub fn action_dim(&self) -> usize {
        self.action_dim
    }

    /// Whether actions are `tanh(u)` (in (−1, 1)ᵐ) rather than `u`.
    pub fn squashed(&self) -> bool {
        self.squashed
    }

    /// Width of the network output this head reads: `m` means, then `m` log-stds.
    pub fn output_dim(&self) -> usize {
        2 * self.action_dim
    }

    pub fn log_std_bounds(&self) -> (f64, f64) {
        (self.log_std_min, self.log_std_max)
    }

    /// The clamped log-std for a raw output, and whether gradients pass the clamp.
    #[inline]
    fn log_std(&self, raw: f64) -> (f64, bool) {
        if raw < self.log_std_min {
            (self.log_std_min, false)
        } else if raw > self.log_std_max {
            (self.log_std_max, false)
        } else {
            (raw, true)
        }
    }

    /// Number of rows in `outputs`, checked against the other buffers' lengths.
    fn rows<T>(&self, outputs: &[T], others: &[(&str, usize, usize)]) -> Result<usize> {
        let width = self.output_dim();
        if outputs.is_empty() || !outputs.len().is_multiple_of(width) {
            return Err(Error::invalid(
                "gaussian_head.outputs",
                format!(
                    "{} values is not a positive whole number of rows of width {width}",
                    outputs.len()
                ),
            ));
        }
        let rows = outputs.len() / width;
        for &(name, len, per_row) in others {
            if len != rows * per_row {
                return Err(Error::invalid(
                    format!("gaussian_head.{name}"),
                    format!("{len} values, expected {rows} rows × {per_row}"),
                ));
            }
        }
        Ok(rows)
    }

    /// The reparameterized sample `f_φ(s, ε)` and its log-density, for every row:
    /// `actions[r] = μ + σ ⊙ ε` (or its tanh) and `log_probs[r] = log d(actions[r] | s)`.
    /// `noise` holds the standard normal draws ε (`rows × m`).
    pub fn sample<T: Scalar>(
        &self,
        outputs: &[T],
        noise: &[T],
        actions: &mut [T],
        log_probs: &mut [T],
    ) -> Result<()> {
        let m = self.action_dim;
        self.rows(
            outputs,
            &[
                ("noise", noise.len(), m),
                ("actions", actions.len(), m),
                ("log_probs", log_probs.len(), 1),
            ],
        )?;
        let rows = outputs
            .chunks_exact(2 * m)
            .zip(noise.chunks_exact(m))
            .zip(actions.chunks_exact_mut(m));
        for (((output, eps), action), log_prob) in rows.zip(log_probs.iter_mut()) {
            let mut sum = 0.0;
            for i in 0..m {
                let (log_std, _) = self.log_std(output[m + i].to_f64());
                let epsilon = eps[i].to_f64();
                let u = output[i].to_f64() + log_std.exp() * epsilon;
                sum -= HALF_LOG_TWO_PI + log_std + 0.5 * epsilon * epsilon;
                action[i] = if self.squashed {
                    sum -= log_one_minus_tanh_squared(u);
                    T::from_f64(u.tanh())
                } else {
                    T::from_f64(u)
                };
            }
            *log_prob = T::from_f64(sum);
        }
        Ok(())
    }

    /// The deterministic action of every row: the mean μ, or `tanh(μ)` when squashed
    /// (what Stable-Baselines3 evaluates with).
    pub fn mean_action<T: Scalar>(&self, outputs: &[T], actions: &mut [T]) -> Result<()> {
        let m = self.action_dim;
        self.rows(outputs, &[("actions", actions.len(), m)])?;
        for (output, action) in outputs.chunks_exact(2 * m).zip(actions.chunks_exact_mut(m)) {
            for i in 0..m {
                action[i] = if self.squashed {
                    T::from_f64(output[i].to_f64().tanh())
                } else {
                    output[i]
                };
            }
        }
        Ok(())
    }

    /// `log d(action | s)` for one row of network output (`2m` values) and any action:
    /// for the squashed head, `−∞` outside the open box (−1, 1)ᵐ.
    pub fn log_prob(&self, output: &[f64], action: &[f64]) -> Result<f64> {
        let m = self.action_dim;
        self.rows(output, &[("action", action.len(), m)])?;
        let mut sum = 0.0;
        for i in 0..m {
            let (log_std, _) = self.log_std(output[m + i]);
            let u = if self.squashed {
                if !(action[i] > -1.0 && action[i] < 1.0) {
                    return Ok(f64::NEG_INFINITY);
                }
                action[i].atanh()
            } else {
                action[i]
            };
            let epsilon = (u - output[i]) / log_std.exp();
            sum -= HALF_LOG_TWO_PI + log_std + 0.5 * epsilon * epsilon;
            if self.squashed {
                sum -= log_one_minus_tanh_squared(u);
            }
        }
        Ok(sum)
    }

    /// The differential entropy `Σᵢ (½ log 2πe + log σᵢ)` of one row's Gaussian; `None`
    /// for the squashed head, whose entropy has no closed form (SAC estimates it by
    /// `−log d` of samples).
    pub fn entropy(&self, output: &[f64]) -> Result<Option<f64>> {
        let m = self.action_dim;
        self.rows(output, &[])?;
        if self.squashed {
            return Ok(None);
        }
        let entropy = (0..m)
            .map(|i| HALF_LOG_TWO_PI + 0.5 + self.log_std(output[m + i]).0)
            .sum();
        Ok(Some(entropy))
    }

    /// Backpropagates through [`GaussianHead::sample`] with the same `outputs` and
    /// `noise`: given `∂L/∂a` (`rows × m`) and `∂L/∂log d` (`rows`), **overwrites**
    /// `grad_outputs` (`rows × 2m`) with `∂L/∂(network output)` (formulas in the module
    /// documentation).
    pub fn backward<T: Scalar>(
        &self,
        outputs: &[T],
        noise: &[T],
        grad_actions: &[T],
        grad_log_probs: &[T],
        grad_outputs: &mut [T],
    ) -> Result<()> {
        let m = self.action_dim;
        self.rows(
            outputs,
            &[
                ("noise", noise.len(), m),
                ("grad_actions", grad_actions.len(), m),
                ("grad_log_probs", grad_log_probs.len(), 1),
                ("grad_outputs", grad_outputs.len(), 2 * m),
            ],
        )?;
        let rows = outputs
            .chunks_exact(2 * m)
            .zip(noise.chunks_exact(m))
            .zip(grad_actions.chunks_exact(m))
            .zip(grad_log_probs)
            .zip(grad_outputs.chunks_exact_mut(2 * m));
        for ((((output, eps), grad_a), &grad_log_prob), grad) in rows {
            let grad_log_prob = grad_log_prob.to_f64();
            for i in 0..m {
                let (log_std, passes) = self.log_std(output[m + i].to_f64());
                let sigma = log_std.exp();
                let epsilon = eps[i].to_f64();
                let mut grad_u = grad_a[i].to_f64();
                if self.squashed {
                    let u = output[i].to_f64() + sigma * epsilon;
                    let sech = 1.0 / u.cosh();
                    grad_u = grad_u * sech * sech + grad_log_prob * 2.0 * u.tanh();
                }
                grad[i] = T::from_f64(grad_u);
                grad[m + i] = if passes {
                    T::from_f64(grad_u * sigma * epsilon - grad_log_prob)
                } else {
                    T::ZERO
                };
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_one_minus_tanh_squared_is_exact_and_finite_everywhere() {
        for u in [-3.0f64, -0.5, 0.0, 1e-8, 0.7, 4.0] {
            let direct = (1.0 - u.tanh().powi(2)).ln();
            assert!(
                (log_one_minus_tanh_squared(u) - direct).abs() < 1e-12,
                "{u}"
            );
        }
        // Where 1 − tanh² underflows, the formula keeps its asymptote −2|u| + 2 log 2.
        for u in [40.0f64, -40.0, 1e3, -1e3] {
            let asymptote = -2.0 * u.abs() + 2.0 * std::f64::consts::LN_2;
            assert!(
                (log_one_minus_tanh_squared(u) - asymptote).abs() < 1e-9,
                "{u}"
            );
        }
    }

    #[test]
    fn bad_settings_and_buffers_are_errors_naming_them() {
        assert!(matches!(
            GaussianHead::new(0, false, LOG_STD_BOUNDS),
            Err(Error::InvalidParameter { field, .. }) if field == "gaussian_head.action_dim"
        ));
        assert!(matches!(
            GaussianHead::new(1, false, (2.0, -20.0)),
            Err(Error::InvalidParameter { field, .. }) if field == "gaussian_head.log_std_bounds"
        ));
        let head = GaussianHead::new(2, true, LOG_STD_BOUNDS).unwrap();
        let outputs = [0.0f32; 8];
        let (mut actions, mut log_probs) = ([0.0f32; 4], [0.0f32; 2]);
        assert!(matches!(
            head.sample(&outputs, &[0.0; 3], &mut actions, &mut log_probs),
            Err(Error::InvalidParameter { field, .. }) if field == "gaussian_head.noise"
        ));
        assert!(matches!(
            head.sample(&outputs[..7], &[0.0; 4], &mut actions, &mut log_probs),
            Err(Error::InvalidParameter { field, .. }) if field == "gaussian_head.outputs"
        ));
    }
}
