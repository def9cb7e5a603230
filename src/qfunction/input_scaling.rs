//! A fixed affine map of a network's input row, `x̃ₖ = (xₖ − cₖ) · sₖ`, chosen from known
//! bounds so that every input spans [−1, 1].
//!
//! Why: a network initialized for inputs of unit scale, fed raw inputs in [0, 10], starts
//! with every hidden unit's hyperplane near the origin, a corner of the data, and Adam
//! needs many steps to move them into it. The map is part of q (evaluation, gradients, the
//! fit's rows and the ReLU-MILP's first layer all apply it), so q stays a function of
//! the raw state and action.

use crate::error::{Error, Result};

/// Per input component: shift `cₖ` and scale `sₖ` (see the module documentation).
#[derive(Clone, Debug, PartialEq)]
pub struct InputScaling {
    shift: Vec<f64>,
    scale: Vec<f64>,
}

impl InputScaling {
    /// The map that takes `[lower[k], upper[k]]` onto [−1, 1] for every component k.
    /// Each bound pair must be finite with `lower < upper`.
    pub fn from_bounds(lower: &[f64], upper: &[f64]) -> Result<Self> {
        if lower.len() != upper.len() || lower.is_empty() {
            return Err(Error::invalid(
                "input_scaling",
                format!(
                    "{} lower and {} upper bounds: need one pair per input",
                    lower.len(),
                    upper.len()
                ),
            ));
        }
        let mut scaling = InputScaling {
            shift: Vec::with_capacity(lower.len()),
            scale: Vec::with_capacity(lower.len()),
        };
        for (k, (&lo, &hi)) in lower.iter().zip(upper).enumerate() {
            if !(lo.is_finite() && hi.is_finite() && lo < hi) {
                return Err(Error::invalid(
                    "input_scaling",
                    format!("input {k}: bounds [{lo}, {hi}] are not finite with lower < upper"),
                ));
            }
            scaling.shift.push(0.5 * (lo + hi));
            scaling.scale.push(2.0 / (hi - lo));
        }
        Ok(scaling)
    }

    /// How many input components the map takes.
    pub fn len(&self) -> usize {
        self.scale.len()
    }

    pub fn is_empty(&self) -> bool {
        self.scale.is_empty()
    }

    /// `sₖ`, per component: also `∂x̃ₖ/∂xₖ`, the chain rule's factor for gradients.
    pub fn scale(&self) -> &[f64] {
        &self.scale
    }

    /// `(cₖ, sₖ)`, the shift and scale of component `k`.
    pub fn component(&self, k: usize) -> (f64, f64) {
        (self.shift[k], self.scale[k])
    }

    /// `x̃ₖ = (xₖ − cₖ) · sₖ`: component `k` of the map.
    pub fn map(&self, k: usize, x: f64) -> f64 {
        let (c, s) = self.component(k);
        (x - c) * s
    }

    /// `raw` (components `offset..offset + raw.len()`) mapped into `out`, as f32.
    pub fn apply(&self, offset: usize, raw: &[f64], out: &mut [f32]) {
        for (k, (o, &x)) in (offset..).zip(out.iter_mut().zip(raw)) {
            *o = self.map(k, x) as f32;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_map_onto_minus_one_one() {
        let scaling = InputScaling::from_bounds(&[0.0, -4.0, 2.0], &[10.0, 4.0, 3.0]).unwrap();
        let mut out = [0.0f32; 3];
        scaling.apply(0, &[0.0, -4.0, 2.0], &mut out);
        assert_eq!(out, [-1.0, -1.0, -1.0]);
        scaling.apply(0, &[10.0, 4.0, 3.0], &mut out);
        assert_eq!(out, [1.0, 1.0, 1.0]);
        scaling.apply(1, &[0.0, 2.5], &mut out[..2]);
        assert_eq!(out[..2], [0.0, 0.0]);
    }

    #[test]
    fn empty_or_inverted_bounds_are_refused() {
        for (lo, hi) in [
            (vec![], vec![]),
            (vec![0.0], vec![0.0]),
            (vec![1.0], vec![0.0]),
            (vec![0.0], vec![f64::INFINITY]),
            (vec![0.0, 1.0], vec![1.0]),
        ] {
            let err = InputScaling::from_bounds(&lo, &hi).unwrap_err().to_string();
            assert!(err.contains("input_scaling"), "{err}");
        }
    }
}
