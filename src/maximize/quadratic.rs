//! Exact `maximize(q(s', ·; θ))` for a q that is a concave quadratic in the action,
//! over a box: the maximizer of the LQR's q* and of any fit with quadratic features.
//!
//! The quadratic is read from the q-function itself, through its action gradients:
//! with `q(s, a) = c + gᵀa − ½aᵀHa`, the gradient at `a = 0` is `g` and the gradient at
//! the unit vector `eⱼ` is `g − H eⱼ`, so `m + 1` gradient evaluations give `g` and `H`
//! exactly (no second-derivative interface needed). `H` must be positive definite
//! (q strictly concave in the action); then the maximum over the box is the
//! unconstrained one `H⁻¹g` when that lies inside, and otherwise is found by visiting the
//! `3^m` faces of the box (each component free, at its lower or at its upper bound):
//! the maximum lies in the relative interior of one face, where it is that face's
//! stationary point, so the best feasible stationary point is the exact maximum. In one
//! dimension this is clamping `g/H` to the interval.
//!
//! A q that is not quadratic in the action is detected (asymmetric `H`, or a final
//! value that disagrees with the quadratic model) and reported as an error rather than
//! silently mis-maximized. A q that is constant in the action (θ = 0, FQI's usual θ₀)
//! has every action as maximizer; the one nearest 0 is returned. An affine one is
//! maximized at a vertex.

use super::{Maximizer, Maximum, QFunction};
use crate::env::ActionSpace;
use crate::error::{Error, Result};
use crate::rng::Rng;

/// Faces are enumerated up to this action dimension (3⁸ = 6561 faces).
const MAX_ACTION_DIM: usize = 8;
/// Relative asymmetry of the recovered `H` above which q is not quadratic in the action.
const SYMMETRY_TOLERANCE: f64 = 1e-8;
/// Relative disagreement between q and its quadratic model at the maximizer above which
/// q is not quadratic in the action.
const MODEL_TOLERANCE: f64 = 1e-8;

/// The exact maximizer of a concave quadratic in the action over a box.
#[derive(Clone, Debug, PartialEq)]
pub struct QuadraticArgmax {
    space: ActionSpace,
    low: Vec<f64>,
    high: Vec<f64>,
}

impl QuadraticArgmax {
    /// A maximizer over `space`, which must be a box (bounds may be infinite) of at most
    /// 8 components.
    pub fn new(space: &ActionSpace) -> Result<Self> {
        let ActionSpace::Box { low, high } = space else {
            return Err(Error::invalid(
                "action_space",
                "QuadraticArgmax needs a box action space, not an integer one",
            ));
        };
        let m = low.len();
        if m == 0 || m > MAX_ACTION_DIM || high.len() != m {
            return Err(Error::invalid(
                "action_space",
                format!(
                    "QuadraticArgmax handles 1 to {MAX_ACTION_DIM} action components; \
                     the box has low of length {m} and high of length {}",
                    high.len()
                ),
            ));
        }
        if let Some(i) = (0..m).find(|&i| low[i].is_nan() || high[i].is_nan() || low[i] > high[i]) {
            return Err(Error::invalid(
                "action_space",
                format!(
                    "bounds [{}, {}] of component {i} are not an interval",
                    low[i], high[i]
                ),
            ));
        }
        Ok(QuadraticArgmax {
            space: space.clone(),
            low: low.clone(),
            high: high.clone(),
        })
    }

    /// Every action component unconstrained (an infinite box).
    pub fn unbounded(action_dim: usize) -> Result<Self> {
        Self::new(&ActionSpace::Box {
            low: vec![f64::NEG_INFINITY; action_dim],
            high: vec![f64::INFINITY; action_dim],
        })
    }
}

/// Scratch for one maximization: the recovered model and a face's reduced system.
#[derive(Clone, Debug)]
pub struct QuadraticWorkspace {
    /// `g`, the action gradient at `a = 0`.
    g: Vec<f64>,
    /// `H`, m×m row-major.
    h: Vec<f64>,
    probe: Vec<f64>,
    gradient: Vec<f64>,
    /// A face's candidate point and the best one so far.
    candidate: Vec<f64>,
    best: Vec<f64>,
    /// Free components of the current face, its reduced `H_FF` (factored in place) and
    /// right-hand side.
    free: Vec<usize>,
    reduced: Vec<f64>,
    rhs: Vec<f64>,
}

impl Maximizer for QuadraticArgmax {
    type Workspace = QuadraticWorkspace;

    fn name(&self) -> &str {
        "quadratic"
    }

    fn action_space(&self) -> &ActionSpace {
        &self.space
    }

    fn workspace(&self) -> QuadraticWorkspace {
        let m = self.low.len();
        QuadraticWorkspace {
            g: vec![0.0; m],
            h: vec![0.0; m * m],
            probe: vec![0.0; m],
            gradient: vec![0.0; m],
            candidate: vec![0.0; m],
            best: vec![0.0; m],
            free: Vec::with_capacity(m),
            reduced: vec![0.0; m * m],
            rhs: vec![0.0; m],
        }
    }

    fn maximize<Q: QFunction>(
        &self,
        q: &Q,
        q_ws: &mut Q::Workspace,
        ws: &mut QuadraticWorkspace,
        state: &[f64],
        action: &mut [f64],
        _rng: &mut Rng,
    ) -> Result<Maximum> {
        let m = self.low.len();
        if q.action_dim() != m || action.len() != m {
            return Err(Error::invalid(
                "action",
                format!(
                    "q has {} action components, the buffer {}, the box {m}",
                    q.action_dim(),
                    action.len()
                ),
            ));
        }
        // The model q(s, a) = c + gᵀa − ½aᵀHa, from m + 1 gradients.
        ws.probe.fill(0.0);
        let c = q.value_and_action_gradient(q_ws, state, &ws.probe, &mut ws.g)?;
        for j in 0..m {
            ws.probe.fill(0.0);
            ws.probe[j] = 1.0;
            q.value_and_action_gradient(q_ws, state, &ws.probe, &mut ws.gradient)?;
            for i in 0..m {
                ws.h[i * m + j] = ws.g[i] - ws.gradient[i];
            }
        }
        check_model(&mut ws.h, &ws.g, c, m)?;

        if ws.h.iter().all(|&x| x == 0.0) {
            self.maximize_affine(&ws.g, action)?;
        } else {
            self.maximize_concave(ws, m)?;
            action.copy_from_slice(&ws.best);
        }

        let model = c + model_gain(&ws.g, &ws.h, action, m);
        let value = q.value(q_ws, state, action)?;
        let scale = 1.0 + c.abs() + model.abs();
        // Written so that a NaN difference fails the check too.
        let agrees = (value - model).abs() <= MODEL_TOLERANCE * scale;
        if !agrees {
            return Err(not_quadratic(format!(
                "q = {value} at the maximizer, its quadratic model gives {model}"
            )));
        }
        Ok(Maximum {
            value,
            evaluations: m + 2,
        })
    }
}

impl QuadraticArgmax {
    /// `H = 0`: q = c + gᵀa, maximized at the vertex in the direction of `g` (components
    /// with `gⱼ = 0` are free: take the point of `[lowⱼ, highⱼ]` nearest 0).
    fn maximize_affine(&self, g: &[f64], action: &mut [f64]) -> Result<()> {
        for (j, a) in action.iter_mut().enumerate() {
            *a = if g[j] > 0.0 {
                self.high[j]
            } else if g[j] < 0.0 {
                self.low[j]
            } else {
                0.0f64.clamp(self.low[j], self.high[j])
            };
            if !a.is_finite() {
                return Err(Error::Numerical {
                    context: "quadratic maximizer".into(),
                    reason: format!(
                        "q is affine in action component {j} with slope {} and the box is \
                         unbounded that way: no maximum",
                        g[j]
                    ),
                });
            }
        }
        Ok(())
    }

    /// `H` positive definite: the unconstrained maximizer if it is in the box, else the
    /// best stationary point over the faces of the box. Writes the result into `ws.best`.
    fn maximize_concave(&self, ws: &mut QuadraticWorkspace, m: usize) -> Result<()> {
        let faces = 3usize.pow(m as u32);
        let mut best_gain = f64::NEG_INFINITY;
        // Face 0 (all free) first: when its point is inside, it is the answer.
        for face in 0..faces {
            if !self.face_point(ws, m, face)? {
                continue;
            }
            let gain = model_gain(&ws.g, &ws.h, &ws.candidate, m);
            if gain > best_gain {
                best_gain = gain;
                ws.best.copy_from_slice(&ws.candidate);
            }
            if face == 0 {
                break;
            }
        }
        if best_gain == f64::NEG_INFINITY {
            // Unreachable for a nonempty box and positive definite H (a vertex-only face,
            // or the nearest face, is always feasible); kept as a typed error.
            return Err(Error::Numerical {
                context: "quadratic maximizer".into(),
                reason: "no face of the action box has a feasible stationary point".into(),
            });
        }
        Ok(())
    }

    /// The stationary point of the model on `face` (base-3 digit j: 0 free, 1 at low,
    /// 2 at high) into `ws.candidate`; `Ok(false)` when the face does not exist (an
    /// infinite bound) or its point leaves the box.
    fn face_point(&self, ws: &mut QuadraticWorkspace, m: usize, face: usize) -> Result<bool> {
        ws.free.clear();
        let mut code = face;
        for j in 0..m {
            match code % 3 {
                0 => ws.free.push(j),
                1 => ws.candidate[j] = self.low[j],
                _ => ws.candidate[j] = self.high[j],
            }
            if !code.is_multiple_of(3) && !ws.candidate[j].is_finite() {
                return Ok(false);
            }
            code /= 3;
        }
        let k = ws.free.len();
        if k == 0 {
            return Ok(true);
        }
        // H_FF a_F = g_F − H_FC a_C.
        for (r, &i) in ws.free.iter().enumerate() {
            let mut rhs = ws.g[i];
            for j in 0..m {
                if !ws.free.contains(&j) {
                    rhs -= ws.h[i * m + j] * ws.candidate[j];
                }
            }
            ws.rhs[r] = rhs;
            for (c, &j) in ws.free.iter().enumerate() {
                ws.reduced[r * k + c] = ws.h[i * m + j];
            }
        }
        if !cholesky_solve(&mut ws.reduced[..k * k], &mut ws.rhs[..k], k) {
            return Err(not_concave());
        }
        for (r, &j) in ws.free.iter().enumerate() {
            let x = ws.rhs[r];
            let slack = 1e-12 * (1.0 + x.abs());
            if !(x >= self.low[j] - slack && x <= self.high[j] + slack) {
                return Ok(false);
            }
            ws.candidate[j] = x.clamp(self.low[j], self.high[j]);
        }
        Ok(true)
    }
}

/// Check that `H` (row-major m×m) is symmetric up to roundoff, then make it exactly so.
fn check_model(h: &mut [f64], g: &[f64], c: f64, m: usize) -> Result<()> {
    if let Some(x) = h.iter().chain(g).chain([&c]).find(|x| !x.is_finite()) {
        return Err(Error::Numerical {
            context: "quadratic maximizer".into(),
            reason: format!("q or its action gradient is {x}"),
        });
    }
    let scale = h.iter().fold(0.0f64, |acc, x| acc.max(x.abs()));
    for i in 0..m {
        for j in i + 1..m {
            let (a, b) = (h[i * m + j], h[j * m + i]);
            if (a - b).abs() > SYMMETRY_TOLERANCE * scale.max(f64::MIN_POSITIVE) {
                return Err(not_quadratic(format!(
                    "the action Hessian is not symmetric (entries ({i}, {j}) = {a}, ({j}, {i}) = {b})"
                )));
            }
            let mean = 0.5 * (a + b);
            h[i * m + j] = mean;
            h[j * m + i] = mean;
        }
    }
    Ok(())
}

/// `gᵀa − ½aᵀHa`.
fn model_gain(g: &[f64], h: &[f64], a: &[f64], m: usize) -> f64 {
    let mut gain = 0.0;
    for i in 0..m {
        let ha: f64 = (0..m).map(|j| h[i * m + j] * a[j]).sum();
        gain += a[i] * (g[i] - 0.5 * ha);
    }
    gain
}

/// Solve `A x = b` for symmetric positive definite `A` (k×k row-major, overwritten by its
/// Cholesky factor); `b` becomes `x`. False if `A` is not positive definite.
fn cholesky_solve(a: &mut [f64], b: &mut [f64], k: usize) -> bool {
    for j in 0..k {
        let mut d = a[j * k + j];
        for p in 0..j {
            d -= a[j * k + p] * a[j * k + p];
        }
        if d.is_nan() || d <= 0.0 {
            return false;
        }
        let d = d.sqrt();
        a[j * k + j] = d;
        for i in j + 1..k {
            let mut s = a[i * k + j];
            for p in 0..j {
                s -= a[i * k + p] * a[j * k + p];
            }
            a[i * k + j] = s / d;
        }
    }
    // L y = b, then Lᵀ x = y.
    for i in 0..k {
        let s: f64 = (0..i).map(|p| a[i * k + p] * b[p]).sum();
        b[i] = (b[i] - s) / a[i * k + i];
    }
    for i in (0..k).rev() {
        let s: f64 = (i + 1..k).map(|p| a[p * k + i] * b[p]).sum();
        b[i] = (b[i] - s) / a[i * k + i];
    }
    true
}

fn not_concave() -> Error {
    Error::Numerical {
        context: "quadratic maximizer".into(),
        reason: "q is not concave in the action (its action Hessian is not negative definite)"
            .into(),
    }
}

fn not_quadratic(reason: String) -> Error {
    Error::Numerical {
        context: "quadratic maximizer".into(),
        reason: format!("q is not quadratic in the action: {reason}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::qfunction::linear::{Features, LinearQ, QuadraticFeatures};
    use crate::rng::RunSeed;
    use rand::Rng as _;

    /// A q = θᵀφ with quadratic features whose action block is `−H` (H given) and whose
    /// state–action and linear terms are random.
    fn concave_q(n: usize, h: &[f64], seed: u64) -> LinearQ<QuadraticFeatures> {
        let m = (h.len() as f64).sqrt() as usize;
        let f = QuadraticFeatures::new(n, m).unwrap();
        let mut rng = RunSeed(seed).stream("test");
        let mut theta: Vec<f64> = (0..f.len()).map(|_| rng.gen_range(-1.0..1.0)).collect();
        for i in 0..m {
            for j in i..m {
                let (zi, zj) = (n + i, n + j);
                let factor = if i == j { 0.5 } else { 1.0 };
                theta[f.product_index(zi, zj).unwrap()] = -factor * h[i * m + j];
            }
        }
        LinearQ::with_params(f, theta).unwrap()
    }

    fn run(
        maximizer: &QuadraticArgmax,
        q: &LinearQ<QuadraticFeatures>,
        s: &[f64],
    ) -> (Vec<f64>, f64) {
        let mut a = vec![0.0; q.action_dim()];
        let mut q_ws = q.workspace();
        let mut ws = maximizer.workspace();
        let mut rng = RunSeed(0).stream("unused");
        let max = maximizer
            .maximize(q, &mut q_ws, &mut ws, s, &mut a, &mut rng)
            .unwrap();
        (a, max.value)
    }

    fn box_space(low: &[f64], high: &[f64]) -> ActionSpace {
        ActionSpace::Box {
            low: low.to_vec(),
            high: high.to_vec(),
        }
    }

    /// The result beats every point of a fine grid over the box (2-D), and is in it.
    #[test]
    fn two_dimensional_maximum_beats_a_dense_grid() {
        let h = [2.0, 0.9, 0.9, 1.0];
        let maximizer = QuadraticArgmax::new(&box_space(&[-0.5, -0.3], &[0.4, 1.0])).unwrap();
        let mut on_boundary = 0;
        for seed in 0..20 {
            let q = concave_q(2, &h, seed);
            let s = [0.7, -1.3];
            let (a, value) = run(&maximizer, &q, &s);
            assert!((-0.5..=0.4).contains(&a[0]) && (-0.3..=1.0).contains(&a[1]));
            if [-0.5, 0.4].contains(&a[0]) || [-0.3, 1.0].contains(&a[1]) {
                on_boundary += 1;
            }
            let mut ws = q.workspace();
            for i in 0..=90 {
                for j in 0..=130 {
                    let probe = [-0.5 + 0.01 * i as f64, -0.3 + 0.01 * j as f64];
                    let v = q.value(&mut ws, &s, &probe).unwrap();
                    assert!(
                        v <= value + 1e-12,
                        "seed {seed}: grid {probe:?} gives {v} > {value}"
                    );
                }
            }
        }
        // Both the interior and the face search are exercised.
        assert!(
            on_boundary > 0 && on_boundary < 20,
            "{on_boundary} of 20 on the boundary"
        );
    }

    #[test]
    fn one_dimensional_maximum_is_the_clamped_vertex() {
        // q = −(a − a₀)² with a₀ = 3 (inside) and 30 (outside [−10, 10]).
        let f = QuadraticFeatures::new(1, 1).unwrap();
        let maximizer = QuadraticArgmax::new(&box_space(&[-10.0], &[10.0])).unwrap();
        for (peak, expected) in [(3.0, 3.0), (30.0, 10.0), (-12.0, -10.0)] {
            let mut theta = vec![0.0; f.len()];
            theta[0] = -peak * peak;
            theta[2] = 2.0 * peak;
            theta[f.product_index(1, 1).unwrap()] = -1.0;
            let q = LinearQ::with_params(f, theta).unwrap();
            let (a, value) = run(&maximizer, &q, &[0.5]);
            assert!((a[0] - expected).abs() < 1e-12, "peak {peak}: {}", a[0]);
            assert!((value + (expected - peak) * (expected - peak)).abs() < 1e-9);
        }
    }

    #[test]
    fn zero_q_is_maximized_at_the_point_nearest_zero() {
        let q = LinearQ::zeros(QuadraticFeatures::new(1, 2).unwrap());
        let maximizer = QuadraticArgmax::new(&box_space(&[1.0, -1.0], &[2.0, 1.0])).unwrap();
        let (a, value) = run(&maximizer, &q, &[3.0]);
        assert_eq!(a, vec![1.0, 0.0]);
        assert_eq!(value, 0.0);
    }

    #[test]
    fn convex_q_and_integer_spaces_are_errors() {
        let q = concave_q(1, &[-1.0], 3);
        let maximizer = QuadraticArgmax::new(&box_space(&[-1.0], &[1.0])).unwrap();
        let mut a = [0.0];
        let err = maximizer.maximize(
            &q,
            &mut q.workspace(),
            &mut maximizer.workspace(),
            &[0.2],
            &mut a,
            &mut RunSeed(0).stream("unused"),
        );
        assert!(matches!(err, Err(Error::Numerical { .. })), "{err:?}");
        let integer = ActionSpace::Integer(crate::env::IntegerSpace {
            lower: vec![0],
            upper: vec![1],
            constraints: vec![],
        });
        assert!(matches!(
            QuadraticArgmax::new(&integer),
            Err(Error::InvalidParameter { .. })
        ));
    }
}
