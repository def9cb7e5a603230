//! The packed GEMM splits large products by rows over the rayon pool; every element must
//! come out bit-identical whatever the number of threads, and correct.

use policy_param::nn::gemm::{matmul, Backend, Dims, Operand, PARALLEL_MIN_WORK};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

mod thread_pool;
use thread_pool::with_threads;

fn random(len: usize, rng: &mut ChaCha8Rng) -> Vec<f32> {
    (0..len).map(|_| rng.gen_range(-1.0..1.0)).collect()
}

/// `C ← α·op(A)·op(B) + β·C` in a rayon pool of `threads`.
#[allow(clippy::too_many_arguments)]
fn product(
    threads: usize,
    dims: Dims,
    a: &[f32],
    a_t: bool,
    b: &[f32],
    b_t: bool,
    c0: &[f32],
    beta: f32,
) -> Vec<f32> {
    let mut c = c0.to_vec();
    let op = |data, t| {
        if t {
            Operand::transposed(data)
        } else {
            Operand::plain(data)
        }
    };
    with_threads(threads, || {
        matmul(
            Backend::Packed,
            dims,
            0.5,
            op(a, a_t),
            op(b, b_t),
            beta,
            &mut c,
        )
    });
    c
}

#[test]
fn large_products_are_bit_identical_for_1_2_and_3_threads_and_correct() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    // Batch × width shapes of the DDPG/SAC networks, odd sizes that leave partial tiles,
    // and each transpose the network code uses (X·W, δ·Wᵀ, Xᵀ·δ).
    let shapes = [
        (256, 400, 300),
        (256, 300, 400),
        (400, 300, 256),
        (301, 257, 129),
        (130, 517, 64),
    ];
    for (m, n, k) in shapes {
        assert!(
            m * n * k >= PARALLEL_MIN_WORK,
            "{m}×{n}×{k} would not be split"
        );
        let dims = Dims { m, n, k };
        for (a_t, b_t) in [(false, false), (false, true), (true, false)] {
            let a = random(m * k, &mut rng);
            let b = random(k * n, &mut rng);
            let c0 = random(m * n, &mut rng);
            let one = product(1, dims, &a, a_t, &b, b_t, &c0, 0.25);
            for threads in [2, 3] {
                let many = product(threads, dims, &a, a_t, &b, b_t, &c0, 0.25);
                let differing = one
                    .iter()
                    .zip(&many)
                    .filter(|(x, y)| x.to_bits() != y.to_bits())
                    .count();
                assert_eq!(
                    differing, 0,
                    "{m}×{n}×{k} (Aᵀ {a_t}, Bᵀ {b_t}): {differing} elements differ with {threads} threads"
                );
            }
            // Against a plain f64 triple loop: catches a wrong row offset in the split.
            let at = |i: usize, p: usize| if a_t { a[p * m + i] } else { a[i * k + p] } as f64;
            let bt = |p: usize, j: usize| if b_t { b[j * k + p] } else { b[p * n + j] } as f64;
            for i in (0..m).step_by(7) {
                for j in (0..n).step_by(5) {
                    let dot: f64 = (0..k).map(|p| at(i, p) * bt(p, j)).sum();
                    let expected = 0.5 * dot + 0.25 * c0[i * n + j] as f64;
                    let got = one[i * n + j] as f64;
                    assert!(
                        (got - expected).abs() < 1e-4 * (1.0 + expected.abs()),
                        "{m}×{n}×{k} C[{i},{j}] = {got}, expected {expected}"
                    );
                }
            }
        }
    }
}
