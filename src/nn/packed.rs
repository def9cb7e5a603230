//! An allocation-free packed GEMM (the [`super::gemm::Backend::Packed`] backend).
//!
//! The classic Goto/BLIS structure: `B` is packed in `KC×NC` blocks of `NR`-wide column
//! panels, `A` in `MC×KC` blocks of `MR`-high row panels, and a register-tile kernel
//! multiplies one `A` panel by one `B` panel, so every element it touches is contiguous
//! and cache-resident. Transposes cost nothing beyond the packing reads.
//!
//! Why not only use a crate: `gemm` and `matrixmultiply` allocate their packing buffers
//! on every call, while training steps here must not allocate. The buffers live in a
//! per-thread scratch ([`Scalar::take_scratch`]), grown once.
//!
//! Speed comes from compiling the whole routine twice, once for the baseline target and
//! once with AVX2+FMA enabled (selected at run time), and writing the register tile as
//! fixed-size arrays that the compiler keeps in vector registers. Products with a
//! dimension of one (the scalar critic's output layer, single-state evaluation) skip
//! packing and use dot/axpy loops instead.

use super::gemm::{Dims, Problem};
use super::scalar::Scalar;

/// Depth of a packed block: a `KC×NR` panel of `B` (16 KiB in f32) stays in L1.
const KC: usize = 256;
/// Rows of a packed `A` block (a multiple of every `MR`): `MC×KC` stays in L2.
const MC: usize = 72;
/// Columns of a packed `B` block (a multiple of every `NR`).
const NC: usize = 1024;
/// Elements of scratch one product needs: a packed `A` block and a packed `B` block.
const SCRATCH_LEN: usize = MC * KC + KC * NC;

/// Whether the baseline build may use fused multiply-add (always on aarch64; on x86 only
/// when the whole crate is compiled for an FMA target).
const BASELINE_FMA: bool = cfg!(target_feature = "fma");

/// `C ← α·op(A)·op(B) + β·C` for tile sizes `MR×NR`, dispatched on the CPU's features.
pub(super) fn gemm<T: Scalar, const MR: usize, const NR: usize>(problem: Problem<'_, T>) {
    #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
    if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU supports the features the function is compiled with.
        unsafe { gemm_avx2_fma::<T, MR, NR>(problem) };
        return;
    }
    gemm_body::<T, MR, NR, BASELINE_FMA>(problem)
}

#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
#[target_feature(enable = "avx2,fma")]
unsafe fn gemm_avx2_fma<T: Scalar, const MR: usize, const NR: usize>(problem: Problem<'_, T>) {
    gemm_body::<T, MR, NR, true>(problem)
}

/// `a·b + c`, fused when the build has FMA (unfused `mul_add` would call a slow libm).
#[inline(always)]
fn madd<T: Scalar, const FMA: bool>(a: T, b: T, c: T) -> T {
    if FMA {
        a.mul_add(b, c)
    } else {
        a * b + c
    }
}

#[inline(always)]
fn gemm_body<T: Scalar, const MR: usize, const NR: usize, const FMA: bool>(p: Problem<'_, T>) {
    let Dims { m, n, k } = p.dims;
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 || p.alpha == T::ZERO {
        scale(p.c, p.beta);
    } else if n == 1 {
        column_times_vector::<T, FMA>(p);
    } else if m == 1 {
        row_times_matrix::<T, FMA>(p);
    } else if k == 1 {
        outer_product(p);
    } else {
        let mut scratch = T::take_scratch();
        if scratch.len() < SCRATCH_LEN {
            scratch.resize(SCRATCH_LEN, T::ZERO);
        }
        let (packed_a, packed_b) = scratch.split_at_mut(MC * KC);
        blocked::<T, MR, NR, FMA>(p, packed_a, packed_b);
        T::restore_scratch(scratch);
    }
}

/// `c ← β·c`, where `β = 0` writes zeros without reading `c`.
#[inline(always)]
fn scale<T: Scalar>(c: &mut [T], beta: T) {
    if beta == T::ZERO {
        c.fill(T::ZERO);
    } else if beta != T::ONE {
        c.iter_mut().for_each(|x| *x *= beta);
    }
}

/// The Goto loop nest over cache blocks and register tiles.
#[inline(always)]
fn blocked<T: Scalar, const MR: usize, const NR: usize, const FMA: bool>(
    p: Problem<'_, T>,
    packed_a: &mut [T],
    packed_b: &mut [T],
) {
    let Dims { m, n, k } = p.dims;
    for jc in (0..n).step_by(NC) {
        let nc = NC.min(n - jc);
        for pc in (0..k).step_by(KC) {
            let kc = KC.min(k - pc);
            pack_b::<T, NR>(&p, pc, kc, jc, nc, packed_b);
            // The first depth block applies β; later ones accumulate onto it.
            let beta = if pc == 0 { Some(p.beta) } else { None };
            for ic in (0..m).step_by(MC) {
                let mc = MC.min(m - ic);
                pack_a::<T, MR>(&p, ic, mc, pc, kc, packed_a);
                for jr in (0..nc).step_by(NR) {
                    let b_panel = &packed_b[jr * kc..][..kc * NR];
                    for ir in (0..mc).step_by(MR) {
                        let a_panel = &packed_a[ir * kc..][..kc * MR];
                        let tile = register_tile::<T, MR, NR, FMA>(a_panel, b_panel);
                        let rows = MR.min(mc - ir);
                        let cols = NR.min(nc - jr);
                        store_tile(
                            p.c,
                            n,
                            (ic + ir, jc + jr),
                            (rows, cols),
                            &tile,
                            p.alpha,
                            beta,
                        );
                    }
                }
            }
        }
    }
}

/// The `MR×NR` product of an `A` panel (`kc` columns of `MR`) and a `B` panel (`kc` rows
/// of `NR`), accumulated in an array the compiler keeps in registers.
#[inline(always)]
fn register_tile<T: Scalar, const MR: usize, const NR: usize, const FMA: bool>(
    a_panel: &[T],
    b_panel: &[T],
) -> [[T; NR]; MR] {
    let mut acc = [[T::ZERO; NR]; MR];
    for (a, b) in a_panel.chunks_exact(MR).zip(b_panel.chunks_exact(NR)) {
        let a: &[T; MR] = a.try_into().expect("chunks_exact yields MR elements");
        let b: &[T; NR] = b.try_into().expect("chunks_exact yields NR elements");
        for i in 0..MR {
            for j in 0..NR {
                acc[i][j] = madd::<T, FMA>(a[i], b[j], acc[i][j]);
            }
        }
    }
    acc
}

/// Writes the valid `rows×cols` corner of a tile into `C` at `origin`: `C ← β·C + α·tile`
/// on the first depth block (`beta` is `Some`), `C ← C + α·tile` on later ones.
#[inline(always)]
fn store_tile<T: Scalar, const MR: usize, const NR: usize>(
    c: &mut [T],
    ldc: usize,
    origin: (usize, usize),
    (rows, cols): (usize, usize),
    tile: &[[T; NR]; MR],
    alpha: T,
    beta: Option<T>,
) {
    for (i, tile_row) in tile.iter().enumerate().take(rows) {
        let c_row = &mut c[(origin.0 + i) * ldc + origin.1..][..cols];
        match beta {
            Some(beta) if beta == T::ZERO => {
                for (c, &t) in c_row.iter_mut().zip(tile_row) {
                    *c = alpha * t;
                }
            }
            Some(beta) => {
                for (c, &t) in c_row.iter_mut().zip(tile_row) {
                    *c = beta * *c + alpha * t;
                }
            }
            None => {
                for (c, &t) in c_row.iter_mut().zip(tile_row) {
                    *c += alpha * t;
                }
            }
        }
    }
}

/// Packs `op(B)[pc..pc+kc, jc..jc+nc]` as consecutive `kc×NR` row-major panels,
/// zero-padding the last panel so the kernel never needs a partial case.
#[inline(always)]
fn pack_b<T: Scalar, const NR: usize>(
    p: &Problem<'_, T>,
    pc: usize,
    kc: usize,
    jc: usize,
    nc: usize,
    packed: &mut [T],
) {
    for (panel_index, j0) in (jc..jc + nc).step_by(NR).enumerate() {
        let cols = NR.min(jc + nc - j0);
        let panel = &mut packed[panel_index * kc * NR..][..kc * NR];
        if p.b_col == 1 {
            for (depth, dst) in panel.chunks_exact_mut(NR).enumerate() {
                let src = &p.b[(pc + depth) * p.b_row + j0..][..cols];
                dst[..cols].copy_from_slice(src);
                dst[cols..].fill(T::ZERO);
            }
        } else {
            // Transposed B: each column of op(B) is contiguous in memory.
            for j in 0..NR {
                if j < cols {
                    let src = &p.b[(j0 + j) * p.b_col + pc * p.b_row..];
                    for depth in 0..kc {
                        panel[depth * NR + j] = src[depth * p.b_row];
                    }
                } else {
                    for depth in 0..kc {
                        panel[depth * NR + j] = T::ZERO;
                    }
                }
            }
        }
    }
}

/// Packs `op(A)[ic..ic+mc, pc..pc+kc]` as consecutive `kc×MR` panels (each depth step
/// holds `MR` rows), zero-padding the last panel.
#[inline(always)]
fn pack_a<T: Scalar, const MR: usize>(
    p: &Problem<'_, T>,
    ic: usize,
    mc: usize,
    pc: usize,
    kc: usize,
    packed: &mut [T],
) {
    for (panel_index, i0) in (ic..ic + mc).step_by(MR).enumerate() {
        let rows = MR.min(ic + mc - i0);
        let panel = &mut packed[panel_index * kc * MR..][..kc * MR];
        if p.a_row == 1 {
            // Transposed A: each depth step's rows are contiguous in memory.
            for (depth, dst) in panel.chunks_exact_mut(MR).enumerate() {
                let src = &p.a[(pc + depth) * p.a_col + i0..][..rows];
                dst[..rows].copy_from_slice(src);
                dst[rows..].fill(T::ZERO);
            }
        } else {
            for i in 0..MR {
                if i < rows {
                    let src = &p.a[(i0 + i) * p.a_row + pc * p.a_col..];
                    for depth in 0..kc {
                        panel[depth * MR + i] = src[depth * p.a_col];
                    }
                } else {
                    for depth in 0..kc {
                        panel[depth * MR + i] = T::ZERO;
                    }
                }
            }
        }
    }
}

/// `n = 1`: `c ← β·c + α·op(A)·b` (a critic's scalar output layer and its weight
/// gradient). `op(B)` is a `k×1` column, contiguous whichever way it is stored.
#[inline(always)]
fn column_times_vector<T: Scalar, const FMA: bool>(p: Problem<'_, T>) {
    let Dims { m, k, .. } = p.dims;
    let b = &p.b[..k];
    if p.a_col == 1 {
        for (i, c) in p.c.iter_mut().enumerate() {
            let dot = dot::<T, FMA>(&p.a[i * p.a_row..][..k], b);
            *c = if p.beta == T::ZERO {
                p.alpha * dot
            } else {
                p.beta * *c + p.alpha * dot
            };
        }
    } else {
        // Transposed A: accumulate one contiguous row of storage per depth step.
        scale(p.c, p.beta);
        for (depth, &b_p) in b.iter().enumerate() {
            axpy::<T, FMA>(p.alpha * b_p, &p.a[depth * p.a_col..][..m], p.c);
        }
    }
}

/// `m = 1`: `c ← β·c + α·a·op(B)` (evaluating a network at a single input).
#[inline(always)]
fn row_times_matrix<T: Scalar, const FMA: bool>(p: Problem<'_, T>) {
    let Dims { n, k, .. } = p.dims;
    let a = &p.a[..k];
    if p.b_col == 1 {
        scale(p.c, p.beta);
        for (depth, &a_p) in a.iter().enumerate() {
            axpy::<T, FMA>(p.alpha * a_p, &p.b[depth * p.b_row..][..n], p.c);
        }
    } else {
        // Transposed B: each output is a dot product with a contiguous row of storage.
        for (j, c) in p.c.iter_mut().enumerate() {
            let dot = dot::<T, FMA>(a, &p.b[j * p.b_col..][..k]);
            *c = if p.beta == T::ZERO {
                p.alpha * dot
            } else {
                p.beta * *c + p.alpha * dot
            };
        }
    }
}

/// `k = 1`: `C ← β·C + α·a·bᵀ`.
#[inline(always)]
fn outer_product<T: Scalar>(p: Problem<'_, T>) {
    let Dims { n, .. } = p.dims;
    for (i, c_row) in p.c.chunks_exact_mut(n).enumerate() {
        let s = p.alpha * p.a[i * p.a_row];
        for (j, c) in c_row.iter_mut().enumerate() {
            let product = s * p.b[j * p.b_col];
            *c = if p.beta == T::ZERO {
                product
            } else {
                p.beta * *c + product
            };
        }
    }
}

/// `y ← y + s·x`.
#[inline(always)]
fn axpy<T: Scalar, const FMA: bool>(s: T, x: &[T], y: &mut [T]) {
    for (y, &x) in y.iter_mut().zip(x) {
        *y = madd::<T, FMA>(s, x, *y);
    }
}

/// `Σ xᵢyᵢ` over independent lanes, so the compiler can vectorize without reassociating.
#[inline(always)]
fn dot<T: Scalar, const FMA: bool>(x: &[T], y: &[T]) -> T {
    const LANES: usize = 16;
    let mut lanes = [T::ZERO; LANES];
    let (x_chunks, y_chunks) = (x.chunks_exact(LANES), y.chunks_exact(LANES));
    let tail = x_chunks
        .remainder()
        .iter()
        .zip(y_chunks.remainder())
        .fold(T::ZERO, |acc, (&x, &y)| madd::<T, FMA>(x, y, acc));
    for (x, y) in x_chunks.zip(y_chunks) {
        for l in 0..LANES {
            lanes[l] = madd::<T, FMA>(x[l], y[l], lanes[l]);
        }
    }
    let mut width = LANES;
    while width > 1 {
        width /= 2;
        for l in 0..width {
            lanes[l] = lanes[l] + lanes[l + width];
        }
    }
    lanes[0] + tail
}
