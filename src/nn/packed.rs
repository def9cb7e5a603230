//! An allocation-free GEMM (the [`super::gemm::Backend::Packed`] backend).
//!
//! Why not only use a crate: `gemm` and `matrixmultiply` allocate their packing buffers
//! on every call, and training steps here must not allocate. This backend keeps its
//! packing buffers in a per-thread scratch ([`Scalar::take_scratch`]), grown once.
//!
//! The structure is Goto/BLIS's, fitted to the products of a network layer:
//! * a register-tile kernel accumulates an `MR×NR` block of `C` in fixed-size arrays
//!   that the compiler keeps in vector registers (in f32, 6×16 in 12 AVX2 registers, or
//!   12×32 in 24 AVX-512 registers);
//! * `B` is packed in `KC×NC` blocks of contiguous `NR`-wide panels, so a panel stays in
//!   L1 while the rows of `A` pass by; with few rows of `A` to reuse it, it is read in
//!   place instead;
//! * a plain (row-major) `A` is read in place, its `MR` rows side by side; a transposed
//!   `A` is packed into `MR`-interleaved panels (a contiguous copy per depth step);
//! * products with a dimension of one, a depth of at most [`SHALLOW`] (a first layer on
//!   a low-dimensional state, or backpropagation through an output layer) or a few
//!   columns and a transposed `A` (an output layer's weight gradient) skip tiling for dot,
//!   axpy and row-combination loops; except for dimensions of one, they round exactly as
//!   the tiled kernel does, whatever `α` and `β`.
//!
//! The whole routine is compiled three times, for the baseline target, with AVX2+FMA and
//! with AVX-512, and the build matching the CPU is chosen at run time. The AVX2 and
//! AVX-512 builds give the same bits: tile sizes change which elements are computed
//! together, never the order of any element's multiply-adds.

use super::gemm::{Dims, Problem};
use super::scalar::Scalar;

/// Depth of a packed block: a `KC×NR` panel of `B` (16 KiB in f32) stays in L1.
const KC: usize = 256;
/// Rows of a packed `A` block (a multiple of every `MR`): `MC×KC` stays in L2.
const MC: usize = 72;
/// Columns of a packed `B` block (a multiple of every `NR`).
const NC: usize = 1024;
/// Bytes in a cache line (and more than any vector register).
const CACHE_LINE: usize = 64;
/// Depths up to which a plain `B` is combined row by row instead of tiled.
const SHALLOW: usize = 8;
/// Columns of C up to which a product with a transposed A skips tiling (a weight gradient
/// of a layer with a few outputs): a register tile would be mostly padding.
const FEW_COLUMNS: usize = 4;
/// Rows of A up to which a plain B is read in place rather than packed.
const FEW_ROWS: usize = 16;
/// Bytes of a packed B block small enough to stay in L1 (half of a 32 KiB L1).
const L1_BUDGET: usize = 16 * 1024;
/// Elements of scratch one product needs: a packed `A` block and a packed `B` block.
const SCRATCH_LEN: usize = MC * KC + KC * NC;

/// Whether the baseline build may use fused multiply-add (always on aarch64; on x86 only
/// when the whole crate is compiled for an FMA target).
const BASELINE_FMA: bool = cfg!(target_feature = "fma");

/// `C ← α·op(A)·op(B) + β·C`, dispatched on the CPU's features: tile sizes `MR×NR` for
/// AVX2+FMA and the baseline, `MR512×NR512` for AVX-512. Every tile size gives the same
/// bits: each element of `C` sums its depth in the same order, one fused multiply-add at a
/// time, whatever tile it falls in (checked by `avx2_and_avx512_builds_agree_bit_for_bit`).
pub(super) fn gemm<
    T: Scalar,
    const MR: usize,
    const NR: usize,
    const MR512: usize,
    const NR512: usize,
>(
    problem: Problem<'_, T>,
) {
    #[cfg(target_arch = "x86_64")]
    if use_avx512() {
        // SAFETY: the CPU supports the features the function is compiled with.
        unsafe { gemm_avx512::<T, MR512, NR512>(problem) };
        return;
    }
    #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
    if has_avx2_fma() {
        // SAFETY: the CPU supports the features the function is compiled with.
        unsafe { gemm_avx2_fma::<T, MR, NR>(problem) };
        return;
    }
    gemm_body::<T, MR, NR, BASELINE_FMA, false>(problem)
}

#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
fn has_avx2_fma() -> bool {
    std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
}

#[cfg(target_arch = "x86_64")]
fn has_avx512() -> bool {
    std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("fma")
}

/// Whether the AVX-512 build runs: the CPU has AVX-512F (and FMA), and the environment
/// variable `POLICY_PARAM_NO_AVX512` is unset (to compare the two builds on one machine).
#[cfg(target_arch = "x86_64")]
fn use_avx512() -> bool {
    use std::sync::OnceLock;
    static USE: OnceLock<bool> = OnceLock::new();
    *USE.get_or_init(|| has_avx512() && std::env::var_os("POLICY_PARAM_NO_AVX512").is_none())
}

/// One build chosen explicitly, so that tests can compare them on one machine: `None`
/// when this CPU cannot run it.
#[cfg(test)]
pub(super) fn gemm_build<
    T: Scalar,
    const MR: usize,
    const NR: usize,
    const MR512: usize,
    const NR512: usize,
>(
    build: Build,
    problem: Problem<'_, T>,
) -> Option<()> {
    match build {
        Build::Baseline => gemm_body::<T, MR, NR, BASELINE_FMA, false>(problem),
        #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
        Build::Avx2 => {
            if !has_avx2_fma() {
                return None;
            }
            // SAFETY: checked just above.
            unsafe { gemm_avx2_fma::<T, MR, NR>(problem) }
        }
        #[cfg(target_arch = "x86_64")]
        Build::Avx512 => {
            if !has_avx512() {
                return None;
            }
            // SAFETY: checked just above.
            unsafe { gemm_avx512::<T, MR512, NR512>(problem) }
        }
        #[allow(unreachable_patterns)]
        _ => return None,
    }
    Some(())
}

/// The builds of the packed GEMM.
#[cfg(test)]
#[derive(Clone, Copy, Debug)]
pub(super) enum Build {
    /// Compiled for the crate's target, whatever the CPU.
    Baseline,
    /// AVX2 and FMA.
    Avx2,
    /// AVX-512F and FMA.
    Avx512,
}

#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
#[target_feature(enable = "avx2,fma")]
unsafe fn gemm_avx2_fma<T: Scalar, const MR: usize, const NR: usize>(problem: Problem<'_, T>) {
    gemm_body::<T, MR, NR, true, false>(problem)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn gemm_avx512<T: Scalar, const MR: usize, const NR: usize>(problem: Problem<'_, T>) {
    gemm_body::<T, MR, NR, true, true>(problem)
}

/// `a·b + c`, fused when the build has FMA (without it, `mul_add` is a slow library call).
#[inline(always)]
fn madd<T: Scalar, const FMA: bool>(a: T, b: T, c: T) -> T {
    if FMA {
        a.mul_add(b, c)
    } else {
        a * b + c
    }
}

#[inline(always)]
fn gemm_body<T: Scalar, const MR: usize, const NR: usize, const FMA: bool, const AVX512: bool>(
    p: Problem<'_, T>,
) {
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
    } else if k <= SHALLOW {
        shallow_product::<T, FMA>(p);
    } else if n <= FEW_COLUMNS && p.a_row == 1 {
        few_columns_transposed_a::<T, FMA>(p);
    } else {
        let mut scratch = T::take_scratch();
        // Room to start the packed blocks on a cache line, so that no vector load of a
        // panel straddles two lines.
        let slack = CACHE_LINE / std::mem::size_of::<T>();
        if scratch.len() < SCRATCH_LEN + slack {
            scratch.resize(SCRATCH_LEN + slack, T::ZERO);
        }
        let offset = scratch.as_ptr().align_offset(CACHE_LINE).min(slack);
        let aligned = &mut scratch[offset..offset + SCRATCH_LEN];
        // KC·MC and KC·NC are multiples of a line's worth of elements: B starts aligned too.
        let (packed_a, packed_b) = aligned.split_at_mut(MC * KC);
        blocked::<T, MR, NR, FMA, AVX512>(p, packed_a, packed_b);
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
fn blocked<T: Scalar, const MR: usize, const NR: usize, const FMA: bool, const AVX512: bool>(
    mut p: Problem<'_, T>,
    packed_a: &mut [T],
    packed_b: &mut [T],
) {
    let Dims { m, n, k } = p.dims;
    // Rows of a plain A are contiguous: the kernel reads them where they are, and packing
    // (a transposition into MR-interleaved panels) would only cost time. A transposed A
    // has each depth step's MR values contiguous but steps a whole row apart: packed.
    let read_a_in_place = p.a_col == 1;
    // Packing B pays off when many row panels of A reuse it; with few rows (the first
    // layer's weight gradient, whose m is the input width), a plain B is read in place.
    let read_b_in_place = p.b_col == 1 && m <= FEW_ROWS;
    for jc in (0..n).step_by(NC) {
        let nc = NC.min(n - jc);
        for pc in (0..k).step_by(KC) {
            let kc = KC.min(k - pc);
            pack_b::<T, NR>(&p, pc, kc, jc, nc, read_b_in_place, packed_b);
            // The first depth block applies β; later ones accumulate onto it.
            let beta = if pc == 0 { Some(p.beta) } else { None };
            for ic in (0..m).step_by(MC) {
                let mc = MC.min(m - ic);
                if !read_a_in_place {
                    pack_a::<T, MR>(&p, ic, mc, pc, kc, packed_a);
                }
                let block = Block {
                    origin: (ic, jc),
                    size: (mc, nc),
                    pc,
                    kc,
                    beta,
                    read_a_in_place,
                    read_b_in_place,
                };
                // With a shallow B block (it fits in L1 whole), sweep C row panel by row
                // panel so stores to C run along its rows; otherwise keep each B panel in
                // L1 while every row panel of A passes by it.
                if kc * nc * std::mem::size_of::<T>() <= L1_BUDGET {
                    for ir in (0..mc).step_by(MR) {
                        for jr in (0..nc).step_by(NR) {
                            block_tile::<T, MR, NR, FMA, AVX512>(
                                &mut p,
                                &block,
                                packed_a,
                                packed_b,
                                (ir, jr),
                            );
                        }
                    }
                } else {
                    for jr in (0..nc).step_by(NR) {
                        for ir in (0..mc).step_by(MR) {
                            block_tile::<T, MR, NR, FMA, AVX512>(
                                &mut p,
                                &block,
                                packed_a,
                                packed_b,
                                (ir, jr),
                            );
                        }
                    }
                }
            }
        }
    }
}

/// One cache block of the product: `C[origin .. origin+size]` over depth `pc..pc+kc`.
struct Block<T> {
    origin: (usize, usize),
    size: (usize, usize),
    pc: usize,
    kc: usize,
    beta: Option<T>,
    read_a_in_place: bool,
    /// Full B panels are read in place (only a partial last panel is packed).
    read_b_in_place: bool,
}

/// The register tile at offset `(ir, jr)` of `block`: multiplied and stored into `C`.
#[inline(always)]
fn block_tile<T: Scalar, const MR: usize, const NR: usize, const FMA: bool, const AVX512: bool>(
    p: &mut Problem<'_, T>,
    block: &Block<T>,
    packed_a: &[T],
    packed_b: &[T],
    (ir, jr): (usize, usize),
) {
    let (kc, pc) = (block.kc, block.pc);
    let rows = MR.min(block.size.0 - ir);
    let tile = Tile {
        origin: (block.origin.0 + ir, block.origin.1 + jr),
        rows,
        cols: NR.min(block.size.1 - jr),
        alpha: p.alpha,
        beta: block.beta,
    };
    if block.read_b_in_place && tile.cols == NR {
        let start = pc * p.b_row + tile.origin.1;
        let b = RowsOfB::<T, NR>::new(&p.b[start..], p.b_row, kc);
        tile_with_b::<T, _, MR, NR, FMA, AVX512>(p, block, packed_a, &b, (ir, rows), tile);
    } else {
        let b = PackedB(&packed_b[jr * kc..][..kc * NR]);
        tile_with_b::<T, _, MR, NR, FMA, AVX512>(p, block, packed_a, &b, (ir, rows), tile);
    }
}

/// Rows up to which the AVX-512 build in f32 computes a block's last rows with a `4×32` tile
/// ([`edge_tile_avx512`]) instead of a full `12×32` one whose extra rows repeat the last.
const EDGE_ROWS: usize = 4;

/// The last `rows ≤ EDGE_ROWS` rows of a block in the f32 AVX-512 build: `m = 256` leaves 4
/// rows after 21 tiles of 12, and a first layer's weight gradient has 3 or 4 rows in all,
/// so a 12-row tile would spend 2 or 3 times the multiply-adds it keeps. Each element still
/// sums its depth in the same order (the same bits). Compiled apart (`inline(never)`): inlined
/// beside the 12-row kernel, the extra tile changed how LLVM vectorized that kernel and
/// slowed the weight gradients fourfold.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
#[inline(never)]
unsafe fn edge_tile_avx512<T: Scalar, B: TileB<T, NR>, const MR: usize, const NR: usize>(
    p: &mut Problem<'_, T>,
    block: &Block<T>,
    packed_a: &[T],
    b: &B,
    ir: usize,
    tile: Tile<T>,
) {
    debug_assert!(tile.rows <= EDGE_ROWS && EDGE_ROWS <= MR);
    let (kc, pc, n) = (block.kc, block.pc, p.dims.n);
    if block.read_a_in_place {
        let a = RowsOfA::<T, EDGE_ROWS>(std::array::from_fn(|i| {
            let row = tile.origin.0 + i.min(tile.rows - 1);
            &p.a[row * p.a_row + pc..][..kc]
        }));
        edge_multiply::<T, _, _, NR>(&a, b, p.c, n, tile);
    } else {
        // A packed panel is MR-interleaved; the tile reads the first EDGE_ROWS of each step.
        let a = PackedA::<T, MR>(&packed_a[ir * kc..][..kc * MR]);
        edge_multiply::<T, _, _, NR>(&a, b, p.c, n, tile);
    }
}

/// [`multiply_tile`] for an `EDGE_ROWS`-row tile of which only `tile.rows` are stored: the
/// rows are stored under constant indices, so the accumulators stay in registers (a store
/// loop bounded by `tile.rows` made LLVM spill them and ran 3-row tiles 25 times slower).
#[inline(always)]
fn edge_multiply<T: Scalar, A: TileA<T, EDGE_ROWS>, B: TileB<T, NR>, const NR: usize>(
    a: &A,
    b: &B,
    c: &mut [T],
    ldc: usize,
    tile: Tile<T>,
) {
    let acc = accumulate::<T, A, B, EDGE_ROWS, NR, true>(a, b);
    for (i, acc_row) in acc.iter().enumerate() {
        if i >= tile.rows {
            continue;
        }
        let start = (tile.origin.0 + i) * ldc + tile.origin.1;
        if tile.cols == NR {
            let c_row: &mut [T; NR] = (&mut c[start..start + NR]).try_into().expect("NR elements");
            store_full_row(c_row, acc_row, tile.alpha, tile.beta);
        } else {
            store_row(
                &mut c[start..start + tile.cols],
                acc_row,
                tile.alpha,
                tile.beta,
            );
        }
    }
}

/// [`block_tile`] once `B`'s source is chosen: chooses `A`'s, multiplies and stores.
#[inline(always)]
fn tile_with_b<
    T: Scalar,
    B: TileB<T, NR>,
    const MR: usize,
    const NR: usize,
    const FMA: bool,
    const AVX512: bool,
>(
    p: &mut Problem<'_, T>,
    block: &Block<T>,
    packed_a: &[T],
    b: &B,
    (ir, rows): (usize, usize),
    tile: Tile<T>,
) {
    // f32's 12×32 tile only: the f64 build (12×16) was not measured with an edge tile.
    #[cfg(target_arch = "x86_64")]
    if AVX512 && MR == 12 && NR == 32 && rows <= EDGE_ROWS {
        // SAFETY: the AVX-512 build runs only on a CPU with the features the edge kernel
        // is compiled with.
        unsafe { edge_tile_avx512::<T, B, MR, NR>(p, block, packed_a, b, ir, tile) };
        return;
    }
    let (kc, pc, n) = (block.kc, block.pc, p.dims.n);
    if block.read_a_in_place {
        // Rows past the edge repeat the last one; their results are computed and
        // dropped (each output depends on its own row only).
        let a = RowsOfA(std::array::from_fn(|i| {
            let row = tile.origin.0 + i.min(rows - 1);
            &p.a[row * p.a_row + pc..][..kc]
        }));
        multiply_tile::<T, _, _, MR, NR, FMA>(&a, b, p.c, n, tile);
    } else {
        let a = PackedA::<T, MR>(&packed_a[ir * kc..][..kc * MR]);
        multiply_tile::<T, _, _, MR, NR, FMA>(&a, b, p.c, n, tile);
    }
}

/// The `MR` values of `A` a register tile reads at each depth step.
trait TileA<T, const MR: usize> {
    /// Depth steps available.
    fn depth(&self) -> usize;
    /// Element `(i, depth)` of the tile's rows of `A`.
    ///
    /// # Safety
    /// `depth < self.depth()` and `i < MR`.
    unsafe fn at(&self, depth: usize, i: usize) -> T;
}

/// `MR` rows of a plain `A` read in place, each exactly `depth` long.
struct RowsOfA<'a, T, const MR: usize>([&'a [T]; MR]);

/// A packed panel: `depth` steps of `STRIDE` values, of which a tile reads the first `MR`.
struct PackedA<'a, T, const STRIDE: usize>(&'a [T]);

impl<T: Scalar, const MR: usize> TileA<T, MR> for RowsOfA<'_, T, MR> {
    #[inline(always)]
    fn depth(&self) -> usize {
        self.0[0].len()
    }
    #[inline(always)]
    unsafe fn at(&self, depth: usize, i: usize) -> T {
        debug_assert!(i < MR && depth < self.0[i].len());
        // SAFETY: every row holds `self.depth()` elements (they are built sliced to the
        // same length), and the caller keeps `depth` and `i` in range.
        unsafe { *self.0.get_unchecked(i).get_unchecked(depth) }
    }
}

impl<T: Scalar, const STRIDE: usize, const MR: usize> TileA<T, MR> for PackedA<'_, T, STRIDE> {
    #[inline(always)]
    fn depth(&self) -> usize {
        self.0.len() / STRIDE
    }
    #[inline(always)]
    unsafe fn at(&self, depth: usize, i: usize) -> T {
        debug_assert!(i < MR && MR <= STRIDE && depth * STRIDE + i < self.0.len());
        // SAFETY: `depth < self.depth()` and `i < MR ≤ STRIDE` put the index below
        // `self.0.len()`.
        unsafe { *self.0.get_unchecked(depth * STRIDE + i) }
    }
}

/// The `NR` values of `B` a register tile reads at each depth step.
trait TileB<T, const NR: usize> {
    /// Depth steps available.
    fn depth(&self) -> usize;
    /// Row `depth` of the tile's columns of `B`.
    ///
    /// # Safety
    /// `depth < self.depth()`.
    unsafe fn row(&self, depth: usize) -> &[T; NR];
}

/// A packed panel: `depth` rows of `NR` values.
struct PackedB<'a, T>(&'a [T]);

/// `NR` columns of a plain `B` read in place: row `d` starts at `data[d·stride]`.
struct RowsOfB<'a, T, const NR: usize> {
    data: &'a [T],
    stride: usize,
    depth: usize,
}

impl<'a, T, const NR: usize> RowsOfB<'a, T, NR> {
    fn new(data: &'a [T], stride: usize, depth: usize) -> Self {
        // The last row must hold NR elements: this is what makes `row` sound.
        assert!(depth == 0 || (depth - 1) * stride + NR <= data.len());
        RowsOfB {
            data,
            stride,
            depth,
        }
    }
}

impl<T: Scalar, const NR: usize> TileB<T, NR> for PackedB<'_, T> {
    #[inline(always)]
    fn depth(&self) -> usize {
        self.0.len() / NR
    }
    #[inline(always)]
    unsafe fn row(&self, depth: usize) -> &[T; NR] {
        debug_assert!((depth + 1) * NR <= self.0.len());
        // SAFETY: `depth < self.depth()` keeps the NR elements inside the panel.
        unsafe { &*(self.0.as_ptr().add(depth * NR) as *const [T; NR]) }
    }
}

impl<T: Scalar, const NR: usize> TileB<T, NR> for RowsOfB<'_, T, NR> {
    #[inline(always)]
    fn depth(&self) -> usize {
        self.depth
    }
    #[inline(always)]
    unsafe fn row(&self, depth: usize) -> &[T; NR] {
        debug_assert!(depth * self.stride + NR <= self.data.len());
        // SAFETY: `depth < self.depth`, and `new` checked that the last row holds NR
        // elements.
        unsafe { &*(self.data.as_ptr().add(depth * self.stride) as *const [T; NR]) }
    }
}

/// Where a register tile goes in `C`, and how it combines with what is there.
#[derive(Clone, Copy)]
struct Tile<T> {
    origin: (usize, usize),
    rows: usize,
    cols: usize,
    alpha: T,
    /// `Some(β)` on the first depth block (`C ← β·C + α·AB`), `None` on later ones
    /// (`C ← C + α·AB`).
    beta: Option<T>,
}

/// Multiplies `MR` rows of `A` by a packed `B` panel and writes the tile into `C`.
/// Full tiles take a path with only constant indices, so that the accumulators stay in
/// registers from the last multiply to the store.
#[inline(always)]
fn multiply_tile<
    T: Scalar,
    A: TileA<T, MR>,
    B: TileB<T, NR>,
    const MR: usize,
    const NR: usize,
    const FMA: bool,
>(
    a: &A,
    b: &B,
    c: &mut [T],
    ldc: usize,
    tile: Tile<T>,
) {
    if tile.rows == MR && tile.cols == NR {
        let acc = accumulate::<T, A, B, MR, NR, FMA>(a, b);
        for (i, acc_row) in acc.iter().enumerate() {
            let start = (tile.origin.0 + i) * ldc + tile.origin.1;
            let c_row: &mut [T; NR] = (&mut c[start..start + NR]).try_into().expect("NR elements");
            store_full_row(c_row, acc_row, tile.alpha, tile.beta);
        }
    } else {
        let acc = accumulate::<T, A, B, MR, NR, FMA>(a, b);
        for (i, acc_row) in acc.iter().enumerate().take(tile.rows) {
            let start = (tile.origin.0 + i) * ldc + tile.origin.1;
            store_row(
                &mut c[start..start + tile.cols],
                acc_row,
                tile.alpha,
                tile.beta,
            );
        }
    }
}

/// The `MR×NR` product of `A`'s and `B`'s depth steps, accumulated in an array the
/// compiler keeps in registers.
#[inline(always)]
fn accumulate<
    T: Scalar,
    A: TileA<T, MR>,
    B: TileB<T, NR>,
    const MR: usize,
    const NR: usize,
    const FMA: bool,
>(
    a: &A,
    b: &B,
) -> [[T; NR]; MR] {
    let depth = a.depth();
    assert_eq!(depth, b.depth(), "A and B tiles of different depths");
    let mut acc = [[T::ZERO; NR]; MR];
    for d in 0..depth {
        // SAFETY: `d < depth`, the depth of both operands.
        let b_row = unsafe { b.row(d) };
        // The depth step's MR values of A, read before use: indexed inside the loop below,
        // the AVX-512 build vectorizes across rows with gathers and scatters (40× slower).
        // SAFETY: as above, and `i < MR`.
        let a_col: [T; MR] = std::array::from_fn(|i| unsafe { a.at(d, i) });
        for (acc_row, &a_i) in acc.iter_mut().zip(&a_col) {
            for (acc, &b_j) in acc_row.iter_mut().zip(b_row) {
                *acc = madd::<T, FMA>(a_i, b_j, *acc);
            }
        }
    }
    acc
}

/// [`store_row`] for a whole row: fixed-size arrays and the choice made outside the
/// loop, so the loop is vectorized.
#[inline(always)]
fn store_full_row<T: Scalar, const NR: usize>(
    c_row: &mut [T; NR],
    tile_row: &[T; NR],
    alpha: T,
    beta: Option<T>,
) {
    match beta {
        Some(beta) if beta == T::ZERO => {
            for j in 0..NR {
                c_row[j] = alpha * tile_row[j];
            }
        }
        Some(beta) => {
            for j in 0..NR {
                c_row[j] = beta * c_row[j] + alpha * tile_row[j];
            }
        }
        None => {
            for j in 0..NR {
                c_row[j] += alpha * tile_row[j];
            }
        }
    }
}

/// One row of a tile into `C`, element by element as [`combine`] does.
#[inline(always)]
fn store_row<T: Scalar>(c_row: &mut [T], tile_row: &[T], alpha: T, beta: Option<T>) {
    for (c, &t) in c_row.iter_mut().zip(tile_row) {
        *c = combine(*c, t, alpha, beta);
    }
}

/// One element of `C` from its sum `t`: `β·c + α·t` on the first depth block (`α·t` when
/// `β = 0`, without reading `c`), `c + α·t` on later ones (`beta` is `None`).
#[inline(always)]
fn combine<T: Scalar>(c: T, t: T, alpha: T, beta: Option<T>) -> T {
    match beta {
        Some(beta) if beta == T::ZERO => alpha * t,
        Some(beta) => beta * c + alpha * t,
        None => c + alpha * t,
    }
}

/// Packs `op(B)[pc..pc+kc, jc..jc+nc]` as consecutive `kc×NR` row-major panels (only the
/// partial last one if `only_partial`). Columns past the edge repeat the last one (their
/// results are computed and dropped).
#[inline(always)]
fn pack_b<T: Scalar, const NR: usize>(
    p: &Problem<'_, T>,
    pc: usize,
    kc: usize,
    jc: usize,
    nc: usize,
    only_partial: bool,
    packed: &mut [T],
) {
    for (panel_index, j0) in (jc..jc + nc).step_by(NR).enumerate() {
        let cols = NR.min(jc + nc - j0);
        if only_partial && cols == NR {
            continue;
        }
        let panel = &mut packed[panel_index * kc * NR..][..kc * NR];
        if p.b_col == 1 {
            for (depth, dst) in panel.chunks_exact_mut(NR).enumerate() {
                let src = &p.b[(pc + depth) * p.b_row + j0..];
                copy_padded::<T, NR>(src, cols, dst);
            }
        } else {
            // Transposed B: each column of op(B) is contiguous in memory.
            let columns: [&[T]; NR] = std::array::from_fn(|j| {
                &p.b[(j0 + j.min(cols - 1)) * p.b_col + pc * p.b_row..][..kc]
            });
            interleave(&columns, panel);
        }
    }
}

/// Packs `op(A)[ic..ic+mc, pc..pc+kc]` (for a transposed `A`, whose `MR` values per depth
/// step are contiguous) as consecutive `kc×MR` panels; rows past the edge repeat the last.
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
            for (depth, dst) in panel.chunks_exact_mut(MR).enumerate() {
                let src = &p.a[(pc + depth) * p.a_col + i0..];
                copy_padded::<T, MR>(src, rows, dst);
            }
        } else {
            let a_rows: [&[T]; MR] = std::array::from_fn(|i| {
                &p.a[(i0 + i.min(rows - 1)) * p.a_row + pc * p.a_col..][..kc]
            });
            interleave(&a_rows, panel);
        }
    }
}

/// `dst ← src[..len]`, padded to `W` with the last value; a fixed-size copy (inlined,
/// unlike a `memcpy` of unknown length) whenever `len = W`.
#[inline(always)]
fn copy_padded<T: Scalar, const W: usize>(src: &[T], len: usize, dst: &mut [T]) {
    let dst: &mut [T; W] = dst.try_into().expect("panel rows hold W elements");
    if len == W {
        let src: &[T; W] = src[..W].try_into().expect("sliced to W elements");
        *dst = *src;
    } else {
        for (w, d) in dst.iter_mut().enumerate() {
            *d = src[w.min(len - 1)];
        }
    }
}

/// `dst[depth·W + w] = sources[w][depth]`: `W` contiguous sequences interleaved, a
/// transposition done a block of depth steps at a time so both sides stay in cache lines.
#[inline(always)]
fn interleave<T: Scalar, const W: usize>(sources: &[&[T]; W], dst: &mut [T]) {
    const BLOCK: usize = 8;
    let kc = dst.len() / W;
    let mut depth = 0;
    while depth < kc {
        let len = BLOCK.min(kc - depth);
        for (w, source) in sources.iter().enumerate() {
            let source = &source[depth..depth + len];
            let out = &mut dst[depth * W..(depth + len) * W];
            for (d, &value) in source.iter().enumerate() {
                out[d * W + w] = value;
            }
        }
        depth += len;
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

/// `k = 1`: `C ← β·C + α·a·bᵀ` (backpropagating through a scalar output layer). With a
/// depth of one, `op(A)` and `op(B)` are contiguous vectors however they are stored.
#[inline(always)]
fn outer_product<T: Scalar>(p: Problem<'_, T>) {
    let Dims { m, n, .. } = p.dims;
    let (a, b) = (&p.a[..m], &p.b[..n]);
    for (c_row, &a_i) in p.c.chunks_exact_mut(n).zip(a) {
        let s = p.alpha * a_i;
        if p.beta == T::ZERO {
            for (c, &b_j) in c_row.iter_mut().zip(b) {
                *c = s * b_j;
            }
        } else {
            for (c, &b_j) in c_row.iter_mut().zip(b) {
                *c = p.beta * *c + s * b_j;
            }
        }
    }
}

/// Small `k`: a first layer on a low-dimensional state (`X·W`), or backpropagation
/// through an output layer of a few units (`δ·Wᵀ`, a transposed `B`, first copied to plain
/// rows). Each row of `C` is a combination of `k` rows of `op(B)`, accumulated a vector's
/// width at a time and stored once: a register tile would spend more on storing `C` than on
/// its `k` steps. `α` is applied once to each sum, so the rounding is the tiled kernel's.
#[inline(always)]
fn shallow_product<T: Scalar, const FMA: bool>(p: Problem<'_, T>) {
    if p.b_col == 1 {
        let (b, b_row) = (p.b, p.b_row);
        return shallow_rows::<T, FMA>(p, b, b_row);
    }
    let Dims { n, k, .. } = p.dims;
    let mut scratch = T::take_scratch();
    if scratch.len() < k * n {
        scratch.resize(SCRATCH_LEN.max(k * n), T::ZERO);
    }
    for (depth, row) in scratch[..k * n].chunks_exact_mut(n).enumerate() {
        for (j, b) in row.iter_mut().enumerate() {
            *b = p.b[depth * p.b_row + j * p.b_col];
        }
    }
    shallow_rows::<T, FMA>(p, &scratch[..k * n], n);
    T::restore_scratch(scratch);
}

/// [`shallow_product`] once `op(B)` is in plain rows: row `d` starts at `b[d·b_row]`.
#[inline(always)]
fn shallow_rows<T: Scalar, const FMA: bool>(p: Problem<'_, T>, b: &[T], b_row: usize) {
    const LANES: usize = 16;
    let Dims { n, k, .. } = p.dims;
    let (alpha, beta) = (p.alpha, Some(p.beta));
    for (i, c_row) in p.c.chunks_exact_mut(n).enumerate() {
        let a_row: [T; SHALLOW] = std::array::from_fn(|depth| {
            if depth < k {
                p.a[i * p.a_row + depth * p.a_col]
            } else {
                T::ZERO
            }
        });
        let mut chunks = c_row.chunks_exact_mut(LANES);
        for (chunk, c) in chunks.by_ref().enumerate() {
            let mut acc = [T::ZERO; LANES];
            for (depth, &a) in a_row[..k].iter().enumerate() {
                let b_row: &[T; LANES] = b[depth * b_row + chunk * LANES..][..LANES]
                    .try_into()
                    .expect("sliced to LANES");
                for l in 0..LANES {
                    acc[l] = madd::<T, FMA>(a, b_row[l], acc[l]);
                }
            }
            let c: &mut [T; LANES] = c.try_into().expect("chunks_exact yields LANES");
            store_full_row(c, &acc, alpha, beta);
        }
        let done = n - n % LANES;
        for (j, c) in chunks.into_remainder().iter_mut().enumerate() {
            let sum = a_row[..k]
                .iter()
                .enumerate()
                .fold(T::ZERO, |sum, (depth, &a)| {
                    madd::<T, FMA>(a, b[depth * b_row + done + j], sum)
                });
            *c = combine(*c, sum, alpha, beta);
        }
    }
}

/// `2 ≤ n ≤ FEW_COLUMNS` with a transposed `A` (`Xᵀ·δ` for an output layer of a few
/// units): a vector holds consecutive rows of `C`, whose values of `op(A)` at one depth
/// step are contiguous in memory. Depth blocks and rounding are the tiled kernel's.
#[inline(always)]
fn few_columns_transposed_a<T: Scalar, const FMA: bool>(p: Problem<'_, T>) {
    const LANES: usize = 16;
    let Dims { m, n, k } = p.dims;
    for pc in (0..k).step_by(KC) {
        let kc = KC.min(k - pc);
        let beta = if pc == 0 { Some(p.beta) } else { None };
        for i0 in (0..m).step_by(LANES) {
            let rows = LANES.min(m - i0);
            let mut acc = [[T::ZERO; LANES]; FEW_COLUMNS];
            for depth in pc..pc + kc {
                let mut a = [T::ZERO; LANES];
                copy_padded::<T, LANES>(&p.a[depth * p.a_col + i0..], rows, &mut a);
                for (j, acc) in acc.iter_mut().enumerate().take(n) {
                    let b = p.b[depth * p.b_row + j * p.b_col];
                    for l in 0..LANES {
                        acc[l] = madd::<T, FMA>(a[l], b, acc[l]);
                    }
                }
            }
            for (l, c_row) in p.c[i0 * n..(i0 + rows) * n].chunks_exact_mut(n).enumerate() {
                for (j, c) in c_row.iter_mut().enumerate() {
                    *c = combine(*c, acc[j][l], p.alpha, beta);
                }
            }
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
        let x: &[T; LANES] = x.try_into().expect("chunks_exact yields LANES elements");
        let y: &[T; LANES] = y.try_into().expect("chunks_exact yields LANES elements");
        for l in 0..LANES {
            lanes[l] = madd::<T, FMA>(x[l], y[l], lanes[l]);
        }
    }
    lanes.iter().fold(tail, |sum, &lane| sum + lane)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::gemm::Operand;

    /// The untiled paths for a few columns or a shallow depth must round exactly as the
    /// tiled kernel does, so that a product's bits do not depend on which path its shape
    /// takes (a part of a row-split product may have a different shape than the whole),
    /// whatever α and β.
    #[test]
    fn untiled_paths_round_as_the_tiled_kernel() {
        let shapes = [
            (37, 2, 300),
            (20, 4, 13),
            (300, 3, 40),
            (33, 20, 2),
            (40, 70, 5),
            (5, 17, 3),
        ];
        let mut seed = 1u32;
        let mut random = |len: usize| -> Vec<f32> {
            (0..len)
                .map(|_| {
                    seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                    (seed >> 8) as f32 / (1u32 << 24) as f32 - 0.5
                })
                .collect()
        };
        for (m, n, k) in shapes {
            let (a, b, c0) = (random(m * k), random(k * n), random(m * n));
            for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
                for (alpha, beta) in [
                    (1.0, 0.0),
                    (-0.5, 1.0),
                    (2.0, 0.25),
                    (0.3, 0.0),
                    (0.7, -1.3),
                ] {
                    let dims = Dims { m, n, k };
                    let problem = |c| {
                        Problem::new(
                            dims,
                            alpha,
                            Operand::stored(&a, ta),
                            Operand::stored(&b, tb),
                            beta,
                            c,
                        )
                    };
                    let (mut dispatched, mut tiled) = (c0.clone(), c0.clone());
                    gemm_body::<f32, 6, 16, BASELINE_FMA, false>(problem(&mut dispatched));
                    let mut packed_a = vec![0.0; MC * KC];
                    let mut packed_b = vec![0.0; KC * NC];
                    blocked::<f32, 6, 16, BASELINE_FMA, false>(
                        problem(&mut tiled),
                        &mut packed_a,
                        &mut packed_b,
                    );
                    let same = dispatched
                        .iter()
                        .zip(&tiled)
                        .all(|(x, y)| x.to_bits() == y.to_bits());
                    assert!(same, "{m}×{n}×{k} ta={ta} tb={tb} α={alpha} β={beta}");
                }
            }
        }
    }
}
