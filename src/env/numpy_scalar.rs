//! NumPy's scalar arithmetic, as Gymnasium's classic-control code meets it.
//!
//! Reproducing Gymnasium to the last bit means reproducing three NumPy habits that
//! plain `f64` arithmetic does not share:
//!
//! - `x ** 2` on a float (NumPy scalar or Python float) calls C `pow`, which is not
//!   always the correctly rounded `x * x` (they differ in the last bit for about one
//!   input in a thousand with glibc): [`pow2`].
//! - `a % b` on floats takes the sign of the divisor: [`remainder`].
//! - Since NumPy 2 (NEP 50) a Python float meeting a `float32` scalar is cast to
//!   `float32` and the operation, comparisons included, is done in `float32`; a
//!   `float64` scalar promotes the `float32` one instead: [`Scalar`].

/// `x ** 2` as Python and NumPy compute it: through the C library's `pow`.
///
/// The exponent goes through [`std::hint::black_box`] because LLVM otherwise rewrites
/// `pow(x, 2.0)` into `x * x`, which is what we must not compute here.
pub(crate) fn pow2(x: f64) -> f64 {
    x.powf(std::hint::black_box(2.0))
}

/// NumPy's float `a % b`: C `fmod`, shifted by `b` when the signs of the result and of
/// `b` differ (so the result has the sign of `b`, as in Python).
pub(crate) fn remainder(a: f64, b: f64) -> f64 {
    let m = a % b;
    if m == 0.0 {
        0.0f64.copysign(b)
    } else if (b < 0.0) != (m < 0.0) {
        m + b
    } else {
        m
    }
}

/// A number as a line of Gymnasium's Python sees it: a `float32` or a `float64` NumPy
/// scalar, or a Python float (which adopts the precision of the NumPy scalar it meets).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Scalar {
    F32(f32),
    F64(f64),
    Python(f64),
}

use Scalar::{Python, F32, F64};

impl Scalar {
    /// The value, exactly, as an `f64`.
    pub(crate) fn value(self) -> f64 {
        match self {
            F32(x) => f64::from(x),
            F64(x) | Python(x) => x,
        }
    }

    /// `self + other` with NumPy 2's promotion.
    pub(crate) fn add(self, other: Scalar) -> Scalar {
        match (self, other) {
            (F32(a), F32(b)) => F32(a + b),
            (F32(a), Python(b)) | (Python(b), F32(a)) => F32(a + b as f32),
            (Python(a), Python(b)) => Python(a + b),
            (a, b) => F64(a.value() + b.value()),
        }
    }

    /// Both operands in the precision NumPy compares them in (the `np_*` comparisons):
    /// a Python float meeting a `float32` is first cast to `float32`.
    fn promoted_pair(self, other: Scalar) -> (f64, f64) {
        match (self, other) {
            (F32(a), Python(b)) => (f64::from(a), f64::from(b as f32)),
            (Python(a), F32(b)) => (f64::from(a as f32), f64::from(b)),
            (a, b) => (a.value(), b.value()),
        }
    }

    pub(crate) fn np_gt(self, other: Scalar) -> bool {
        let (a, b) = self.promoted_pair(other);
        a > b
    }

    pub(crate) fn np_lt(self, other: Scalar) -> bool {
        let (a, b) = self.promoted_pair(other);
        a < b
    }

    pub(crate) fn np_ge(self, other: Scalar) -> bool {
        let (a, b) = self.promoted_pair(other);
        a >= b
    }

    pub(crate) fn np_eq(self, other: Scalar) -> bool {
        let (a, b) = self.promoted_pair(other);
        a == b
    }

    /// `int * self` (a Python int is weak, like a Python float).
    pub(crate) fn scale(self, k: f64) -> Scalar {
        match self {
            F32(x) => F32(k as f32 * x),
            F64(x) => F64(k * x),
            Python(x) => Python(k * x),
        }
    }

    /// The element stored by `np.array([...], dtype=np.float32)`.
    pub(crate) fn to_f32(self) -> f32 {
        match self {
            F32(x) => x,
            F64(x) | Python(x) => x as f32,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remainder_has_the_sign_of_the_divisor_and_stays_within_it() {
        let two_pi = 2.0 * std::f64::consts::PI;
        for &a in &[-20.0, -7.5, -1e-300, 0.0, 3.0, 6.3, 1e6] {
            let r = remainder(a, two_pi);
            // r = b itself is possible: -1e-300 + 2π rounds to 2π.
            assert!((0.0..=two_pi).contains(&r), "{a} % 2π = {r}");
            // a = q·b + r for an integer q (up to rounding of a large a).
            let q = ((a - r) / two_pi).round();
            assert!((q * two_pi + r - a).abs() <= 1e-9 * a.abs().max(1.0));
        }
        assert!(remainder(-3.0, -2.0) < 0.0);
        assert!(remainder(3.0, -2.0) < 0.0);
    }

    #[test]
    fn remainder_matches_values_printed_by_numpy() {
        // `float(np.float64(a) % (2 * np.pi))` with NumPy 2.4.6.
        let two_pi = 2.0 * std::f64::consts::PI;
        for &(a, numpy) in &[
            // 2π exactly: -1e-300 + 2π rounds up to the divisor.
            (-1e-300, std::f64::consts::TAU),
            (-7.5, 5.0663706143591725),
            (20.0, 1.1504440784612413),
            (-20.0, 5.132741228718345),
        ] {
            assert_eq!(remainder(a, two_pi), numpy, "{a}");
        }
        assert_eq!(remainder(-3.0, -2.0), -1.0);
        assert_eq!(remainder(3.0, -2.0), -1.0);
        assert!(remainder(-0.0, two_pi).is_sign_positive());
    }

    #[test]
    fn pow2_is_within_one_ulp_of_the_exact_square() {
        for i in 0..10_000 {
            let x = -20.0 + 40.0 * f64::from(i) / 10_000.0 + 1e-7;
            let (p, m) = (pow2(x), x * x);
            assert!((p - m).abs() <= m * f64::EPSILON, "{x}: {p} vs {m}");
        }
    }

    #[test]
    fn python_floats_adopt_float32_but_float64_promotes_float32() {
        // 0.1 is not a float32 number: cast first, then a float32 sum.
        let sum = F32(1.0).add(Python(0.1));
        assert_eq!(sum, F32(1.0 + 0.1f32));
        assert_eq!(F32(1.0).add(F64(0.1)), F64(1.1));
        assert_eq!(Python(1.0).add(Python(0.1)), Python(1.1));
        // float32(0.45) is just below 0.45, yet equals 0.45 against a Python float.
        assert!(F32(0.45).np_ge(Python(0.45)));
        assert!(!F64(f64::from(0.45f32)).np_ge(Python(0.45)));
        assert!(F32(-1.2).np_eq(Python(-1.2)));
        assert!(!F32(0.07).np_gt(Python(0.07)));
        assert!(F64(f64::from(0.07f32)).np_gt(Python(0.07)));
    }
}
