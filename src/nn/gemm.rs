//! Matrix products on row-major slices: `C ← α·op(A)·op(B) + β·C`.
//!
//! The network code needs exactly three products per layer — `X·W` forward, `δ·Wᵀ` and
//! `Xᵀ·δ` backward — on plain row-major buffers, so this module offers one function,
//! [`matmul`], with the transposes expressed by [`Operand::transposed`] (no copy), and
//! three interchangeable backends, compared by `benches/mlp.rs`:
//!
//! * [`Backend::Packed`] (the default) — this crate's own GEMM (`src/nn/packed.rs`):
//!   cache blocking and an AVX-512 or AVX2+FMA register tile chosen at run time, with its
//!   packing buffers kept per thread, so a call never allocates;
//! * [`Backend::GemmCrate`] — the `gemm` crate;
//! * [`Backend::Ndarray`] — ndarray's `general_mat_mul` (the `matrixmultiply` crate).
//!
//! The `gemm` and `matrixmultiply` crates allocate their packing buffers on every call,
//! which is why the allocation-free backend exists. Measured on one core here (256³):
//! with AVX2 it is within about 4% of the `gemm` crate (whose stable build stops at AVX2,
//! 122 GFLOP/s); with AVX-512 it runs at about 225 GFLOP/s, against 240 for OpenBLAS's
//! AVX-512 kernel.
//!
//! Threads: the `gemm` crate runs with `Parallelism::None` and `matrixmultiply` on one
//! thread. The packed backend splits a large product's rows over the current rayon pool
//! ([`PARALLEL_MIN_WORK`]): every element of `C` is still computed by the same sequence of
//! multiply-adds over the depth, whichever thread owns its rows, so the result is
//! bit-identical for any number of threads (`tests/gemm_threads.rs`). Small products
//! stay on the calling thread, where callers parallelize over episodes or base points.

use ndarray::{ArrayView2, ArrayViewMut2};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::scalar::Scalar;

/// Which implementation computes matrix products. Every backend computes the same
/// product; results differ only by floating-point rounding order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Backend {
    /// This crate's packed GEMM: never allocates (the default; see `benches/mlp.rs`).
    #[default]
    Packed,
    /// The `gemm` crate, one thread.
    GemmCrate,
    /// ndarray's `general_mat_mul` (`matrixmultiply`).
    Ndarray,
}

impl Backend {
    /// Every backend, for benchmarks and agreement tests.
    pub const ALL: [Backend; 3] = [Backend::Packed, Backend::GemmCrate, Backend::Ndarray];
}

/// The shape of a product: `op(A)` is `m×k`, `op(B)` is `k×n`, `C` is `m×n`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dims {
    pub m: usize,
    pub n: usize,
    pub k: usize,
}

/// A row-major matrix operand, used as stored or transposed.
#[derive(Clone, Copy, Debug)]
pub struct Operand<'a, T> {
    data: &'a [T],
    transposed: bool,
}

impl<'a, T> Operand<'a, T> {
    /// `op(M) = M`: for `op(A)` of shape `m×k`, `data` holds `A` as `m×k` row-major.
    pub fn plain(data: &'a [T]) -> Self {
        Operand {
            data,
            transposed: false,
        }
    }

    /// `op(M) = Mᵀ`: for `op(A)` of shape `m×k`, `data` holds `A` as `k×m` row-major.
    pub fn transposed(data: &'a [T]) -> Self {
        Operand {
            data,
            transposed: true,
        }
    }
}

#[cfg(test)]
impl<'a, T> Operand<'a, T> {
    /// [`Operand::transposed`] or [`Operand::plain`], for tests that loop over both.
    pub(crate) fn stored(data: &'a [T], transposed: bool) -> Self {
        Operand { data, transposed }
    }
}

/// A product in strided form, as the backends consume it: element `(i, p)` of `op(A)` is
/// `a[i·a_row + p·a_col]`, element `(p, j)` of `op(B)` is `b[p·b_row + j·b_col]`, and `C`
/// is `m×n` row-major. Lengths are checked by [`matmul`] before one is built.
#[doc(hidden)]
pub struct Problem<'a, T> {
    pub dims: Dims,
    pub alpha: T,
    pub a: &'a [T],
    pub a_row: usize,
    pub a_col: usize,
    pub b: &'a [T],
    pub b_row: usize,
    pub b_col: usize,
    pub beta: T,
    pub c: &'a mut [T],
}

impl<'a, T> Problem<'a, T> {
    /// The strided form of `C ← α·op(A)·op(B) + β·C` (lengths unchecked: see [`matmul`]).
    pub(crate) fn new(
        dims: Dims,
        alpha: T,
        a: Operand<'a, T>,
        b: Operand<'a, T>,
        beta: T,
        c: &'a mut [T],
    ) -> Self {
        let Dims { m, n, k } = dims;
        let (a_row, a_col) = if a.transposed { (1, m) } else { (k, 1) };
        let (b_row, b_col) = if b.transposed { (1, k) } else { (n, 1) };
        Problem {
            dims,
            alpha,
            a: a.data,
            a_row,
            a_col,
            b: b.data,
            b_row,
            b_col,
            beta,
            c,
        }
    }
}

/// `C ← α·op(A)·op(B) + β·C` with `C` row-major `m×n`. With `β = 0`, `C` is overwritten
/// without being read (NaNs in it do not propagate), as in BLAS.
///
/// # Panics
/// If a slice's length does not match `dims` (a programming error in the caller: the
/// network code checks user-facing shapes before it gets here).
pub fn matmul<T: Scalar>(
    backend: Backend,
    dims: Dims,
    alpha: T,
    a: Operand<'_, T>,
    b: Operand<'_, T>,
    beta: T,
    c: &mut [T],
) {
    let Dims { m, n, k } = dims;
    assert_eq!(
        a.data.len(),
        m * k,
        "matmul: A holds {} elements, op(A) is {m}×{k}",
        a.data.len()
    );
    assert_eq!(
        b.data.len(),
        k * n,
        "matmul: B holds {} elements, op(B) is {k}×{n}",
        b.data.len()
    );
    assert_eq!(
        c.len(),
        m * n,
        "matmul: C holds {} elements, C is {m}×{n}",
        c.len()
    );
    #[cfg(feature = "gemm-timing")]
    let _timer = timing::Timer::start();
    let problem = Problem::new(dims, alpha, a, b, beta, c);
    match backend {
        Backend::Packed => packed_split_rows(problem),
        Backend::GemmCrate => gemm_crate(problem),
        Backend::Ndarray => ndarray_gemm(problem, a.transposed, b.transposed),
    }
}

/// Wall-clock time spent in [`matmul`] by this thread, for profiling (cargo feature
/// `gemm-timing`; without it nothing is timed). A product split over the pool counts once,
/// on the thread that called it; products that other threads call (SAC's second critic)
/// count on theirs, so read it from one-thread runs.
#[cfg(feature = "gemm-timing")]
pub mod timing {
    use std::cell::Cell;
    use std::time::{Duration, Instant};

    thread_local! {
        static SPENT: Cell<Duration> = const { Cell::new(Duration::ZERO) };
    }

    /// Time in [`super::matmul`] on this thread since the last call (and resets it).
    pub fn take() -> Duration {
        SPENT.with(|spent| spent.replace(Duration::ZERO))
    }

    /// Adds its lifetime to the thread's total.
    pub(super) struct Timer(Instant);

    impl Timer {
        pub(super) fn start() -> Self {
            Timer(Instant::now())
        }
    }

    impl Drop for Timer {
        fn drop(&mut self) {
            SPENT.with(|spent| spent.set(spent.get() + self.0.elapsed()));
        }
    }
}

/// Products with at least this many multiply-adds (`m·n·k`) are split by rows over the
/// rayon pool: about 0.1 ms of work on one core, far above the cost of a `rayon::join`.
pub const PARALLEL_MIN_WORK: usize = 1 << 21;

/// Fewest rows a part of a split product gets: the packed kernel reads a narrow B in
/// place only when `m` is small, so parts stay well above that threshold and take the
/// same code path (and rounding) as the whole product.
const PARALLEL_MIN_ROWS: usize = 64;

/// The packed GEMM, its rows split over the current rayon pool when the product is large.
fn packed_split_rows<T: Scalar>(p: Problem<'_, T>) {
    let Dims { m, n, k } = p.dims;
    let parts = rayon::current_num_threads().min(m / PARALLEL_MIN_ROWS);
    // n = 1, k = 1 and shallow products take special paths whose rounding could depend
    // on m; they are cheap anyway.
    if parts < 2 || m * n * k < PARALLEL_MIN_WORK || n < 2 || k < 16 {
        return T::packed_gemm(p);
    }
    let rows = m.div_ceil(parts);
    let Problem {
        alpha,
        a,
        a_row,
        a_col,
        b,
        b_row,
        b_col,
        beta,
        c,
        ..
    } = p;
    c.par_chunks_mut(rows * n)
        .enumerate()
        .for_each(|(part, c_rows)| {
            let first = part * rows;
            T::packed_gemm(Problem {
                dims: Dims {
                    m: c_rows.len() / n,
                    n,
                    k,
                },
                alpha,
                // Row i of the part is row first + i of op(A), at offset (first + i)·a_row.
                a: &a[first * a_row..],
                a_row,
                a_col,
                b,
                b_row,
                b_col,
                beta,
                c: c_rows,
            })
        });
}

fn gemm_crate<T: Scalar>(p: Problem<'_, T>) {
    let Dims { m, n, k } = p.dims;
    if m == 0 || n == 0 {
        return;
    }
    // SAFETY: `matmul` checked that `a`, `b` and `c` hold exactly the elements the strides
    // address, `c` is uniquely borrowed, and T is f32 or f64 (the `gemm` crate panics on
    // other types, never reads out of bounds). Note the crate's argument order:
    // dst ← alpha·dst + beta·lhs·rhs, so our (α, β) go in as (β, α).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            p.c.as_mut_ptr(),
            1,
            n as isize,
            p.beta != T::ZERO,
            p.a.as_ptr(),
            p.a_col as isize,
            p.a_row as isize,
            p.b.as_ptr(),
            p.b_col as isize,
            p.b_row as isize,
            p.beta,
            p.alpha,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

fn ndarray_gemm<T: Scalar>(p: Problem<'_, T>, a_transposed: bool, b_transposed: bool) {
    let Dims { m, n, k } = p.dims;
    // The shapes below were checked against the slice lengths by `matmul`.
    let view = |data, rows, cols, transposed| {
        if transposed {
            ArrayView2::from_shape((cols, rows), data)
                .expect("length checked by matmul")
                .reversed_axes()
        } else {
            ArrayView2::from_shape((rows, cols), data).expect("length checked by matmul")
        }
    };
    let a = view(p.a, m, k, a_transposed);
    let b = view(p.b, k, n, b_transposed);
    let mut c = ArrayViewMut2::from_shape((m, n), p.c).expect("length checked by matmul");
    ndarray::linalg::general_mat_mul(p.alpha, &a, &b, p.beta, &mut c);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::packed::{gemm_build, Build};
    use rand::{Rng as _, SeedableRng};

    /// The product by its definition, as ground truth: `at_a(i, p)` and `at_b(p, j)` read
    /// the operands' elements.
    fn reference(
        dims: Dims,
        alpha: f64,
        at_a: impl Fn(usize, usize) -> f64,
        at_b: impl Fn(usize, usize) -> f64,
        beta: f64,
        c0: &[f64],
    ) -> Vec<f64> {
        let Dims { m, n, k } = dims;
        let mut c = c0.to_vec();
        for i in 0..m {
            for j in 0..n {
                let dot: f64 = (0..k).map(|p| at_a(i, p) * at_b(p, j)).sum();
                c[i * n + j] = alpha * dot + beta * c0[i * n + j];
            }
        }
        c
    }

    fn random(len: usize, rng: &mut crate::rng::Rng) -> Vec<f64> {
        (0..len).map(|_| rng.gen_range(-1.0..1.0)).collect()
    }

    /// Shapes that exercise every path of every backend: empty; vectors (n = 1, m = 1,
    /// k = 1); shallow products (k ≤ 8); few rows (B read in place); partial register
    /// tiles; both tile orders; and more than one cache block in each dimension.
    const SHAPES: &[(usize, usize, usize)] = &[
        (0, 3, 4),
        (3, 0, 4),
        (3, 4, 0),
        (1, 1, 1),
        (7, 1, 9),
        (1, 7, 9),
        (7, 9, 1),
        (5, 17, 3),
        (13, 33, 29),
        (30, 20, 12),
        (80, 40, 300),
        (40, 1100, 20),
        (150, 1030, 7),
        (37, 2, 300),
        (20, 4, 13),
        (300, 3, 40),
        (33, 20, 2),
        (40, 70, 5),
    ];

    #[test]
    fn every_backend_matches_the_definition_in_f64_for_every_transpose() {
        let mut rng = crate::rng::Rng::seed_from_u64(1);
        for &(m, n, k) in SHAPES {
            let dims = Dims { m, n, k };
            let a = random(m * k, &mut rng);
            let b = random(k * n, &mut rng);
            let c0 = random(m * n, &mut rng);
            for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
                // Transposed operands are stored with their dimensions swapped.
                let at_a = |i, p| if ta { a[p * m + i] } else { a[i * k + p] };
                let at_b = |p, j| if tb { b[j * k + p] } else { b[p * n + j] };
                for (alpha, beta) in [(1.0, 0.0), (-0.5, 1.0), (2.0, 0.25)] {
                    let expected = reference(dims, alpha, at_a, at_b, beta, &c0);
                    let check = |c: &[f64], name: &str| {
                        for (got, want) in c.iter().zip(&expected) {
                            assert!(
                                (got - want).abs() <= 1e-12 * (1.0 + want.abs()),
                                "{name} {m}×{n}×{k} ta={ta} tb={tb} α={alpha} β={beta}: {got} vs {want}"
                            );
                        }
                    };
                    for backend in Backend::ALL {
                        let mut c = c0.clone();
                        matmul(
                            backend,
                            dims,
                            alpha,
                            Operand::stored(&a, ta),
                            Operand::stored(&b, tb),
                            beta,
                            &mut c,
                        );
                        check(&c, &format!("{backend:?}"));
                    }
                    // Each build of the packed backend, whichever one `matmul` picks here.
                    for build in [Build::Baseline, Build::Avx2, Build::Avx512] {
                        let mut c = c0.clone();
                        let problem = Problem::new(
                            dims,
                            alpha,
                            Operand::stored(&a, ta),
                            Operand::stored(&b, tb),
                            beta,
                            &mut c,
                        );
                        if gemm_build::<f64, 6, 8, 12, 16>(build, problem).is_some() {
                            check(&c, &format!("Packed ({build:?} build)"));
                        }
                    }
                }
            }
        }
    }

    /// The AVX2 and AVX-512 builds use different register tiles but must give the same
    /// bits (so results do not depend on which machine ran them): every element sums
    /// its depth in the same order with fused multiply-adds.
    #[test]
    fn avx2_and_avx512_builds_agree_bit_for_bit() {
        let mut rng = crate::rng::Rng::seed_from_u64(2);
        let shapes = SHAPES
            .iter()
            // The update shapes, and last row blocks of 1 to 4 rows (the AVX-512 build's
            // edge tile), with B packed and read in place (m ≤ 16).
            .chain(&[
                (256, 256, 256),
                (257, 300, 513),
                (4, 256, 256),
                (3, 400, 256),
                (256, 400, 300),
                (14, 50, 9),
                (15, 64, 300),
            ]);
        for &(m, n, k) in shapes {
            let dims = Dims { m, n, k };
            let a: Vec<f32> = random(m * k, &mut rng).iter().map(|&x| x as f32).collect();
            let b: Vec<f32> = random(k * n, &mut rng).iter().map(|&x| x as f32).collect();
            let c0: Vec<f32> = random(m * n, &mut rng).iter().map(|&x| x as f32).collect();
            for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
                for (alpha, beta) in [(1.0, 0.0), (-0.5, 1.0), (2.0, 0.25)] {
                    let mut results = Vec::new();
                    for build in [Build::Avx2, Build::Avx512] {
                        let mut c = c0.clone();
                        let problem = Problem::new(
                            dims,
                            alpha,
                            Operand::stored(&a, ta),
                            Operand::stored(&b, tb),
                            beta,
                            &mut c,
                        );
                        if gemm_build::<f32, 6, 16, 12, 32>(build, problem).is_some() {
                            results.push(c);
                        }
                    }
                    if let [avx2, avx512] = &results[..] {
                        let same = avx2
                            .iter()
                            .zip(avx512)
                            .all(|(x, y)| x.to_bits() == y.to_bits());
                        assert!(same, "{m}×{n}×{k} ta={ta} tb={tb} α={alpha} β={beta}");
                    }
                }
            }
        }
    }

    #[test]
    fn beta_zero_overwrites_nan_in_c() {
        let dims = Dims {
            m: 20,
            n: 20,
            k: 20,
        };
        let a = vec![1.0f32; 400];
        for backend in Backend::ALL {
            let mut c = vec![f32::NAN; 400];
            matmul(
                backend,
                dims,
                1.0,
                Operand::plain(&a),
                Operand::plain(&a),
                0.0,
                &mut c,
            );
            assert!(c.iter().all(|&x| x == 20.0), "{backend:?}");
        }
    }
}
