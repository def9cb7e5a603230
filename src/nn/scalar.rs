//! The element types networks compute in: `f32` for training, `f64` for gradient checks.
//!
//! [`Scalar`] gathers the arithmetic the network code needs, so every routine is written
//! once and instantiated for both types. It is sealed: the GEMM backends only exist for
//! `f32` and `f64`.

use std::cell::Cell;
use std::fmt::{Debug, Display};
use std::ops::{AddAssign, MulAssign, Neg, SubAssign};

use rand_distr::uniform::SampleUniform;
use serde::de::DeserializeOwned;
use serde::Serialize;

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
}

/// A floating-point element type of a network (`f32` or `f64`).
pub trait Scalar:
    sealed::Sealed
    + ndarray::LinalgScalar
    + Debug
    + Display
    + Default
    + PartialOrd
    + Neg<Output = Self>
    + AddAssign
    + SubAssign
    + MulAssign
    + Send
    + Sync
    + SampleUniform
    + Serialize
    + DeserializeOwned
{
    const ZERO: Self;
    const ONE: Self;

    fn from_f64(x: f64) -> Self;
    fn to_f64(self) -> f64;
    fn sqrt(self) -> Self;
    fn tanh(self) -> Self;
    fn is_finite(self) -> bool;
    /// `self * a + b`, fused into one rounding.
    fn mul_add(self, a: Self, b: Self) -> Self;

    /// Takes this thread's packing scratch for the packed GEMM backend (empty on first
    /// use; the caller grows it once and hands it back with [`Scalar::restore_scratch`]),
    /// so that products stay allocation-free after the first.
    #[doc(hidden)]
    fn take_scratch() -> Vec<Self>;
    #[doc(hidden)]
    fn restore_scratch(scratch: Vec<Self>);

    /// The packed GEMM backend instantiated with this type's register-tile sizes.
    #[doc(hidden)]
    fn packed_gemm(problem: super::gemm::Problem<'_, Self>);
}

macro_rules! impl_scalar {
    ($t:ty, $avx2:expr, $avx512:expr, $scratch:ident) => {
        impl Scalar for $t {
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;

            #[inline(always)]
            fn from_f64(x: f64) -> Self {
                x as $t
            }
            #[inline(always)]
            fn to_f64(self) -> f64 {
                self as f64
            }
            #[inline(always)]
            fn sqrt(self) -> Self {
                <$t>::sqrt(self)
            }
            #[inline(always)]
            fn tanh(self) -> Self {
                <$t>::tanh(self)
            }
            #[inline(always)]
            fn is_finite(self) -> bool {
                <$t>::is_finite(self)
            }
            #[inline(always)]
            fn mul_add(self, a: Self, b: Self) -> Self {
                <$t>::mul_add(self, a, b)
            }

            fn take_scratch() -> Vec<Self> {
                $scratch.with(|cell| cell.take())
            }

            fn restore_scratch(scratch: Vec<Self>) {
                $scratch.with(|cell| cell.set(scratch));
            }

            fn packed_gemm(problem: super::gemm::Problem<'_, Self>) {
                super::packed::gemm::<$t, { $avx2.0 }, { $avx2.1 }, { $avx512.0 }, { $avx512.1 }>(
                    problem,
                )
            }
        }
    };
}

// Register tiles (rows, columns) of C for AVX2+FMA and for AVX-512. AVX2 has 16 vector
// registers: 6 rows × 2 vectors stay in 12 accumulators, leaving registers for two B
// vectors and one broadcast A element. AVX-512 has 32 registers twice as wide: 12 rows ×
// 2 vectors in 24 accumulators, with the same room to spare.
impl_scalar!(f32, (6, 16), (12, 32), SCRATCH_F32);
impl_scalar!(f64, (6, 8), (12, 16), SCRATCH_F64);

thread_local! {
    static SCRATCH_F32: Cell<Vec<f32>> = const { Cell::new(Vec::new()) };
    static SCRATCH_F64: Cell<Vec<f64>> = const { Cell::new(Vec::new()) };
}
