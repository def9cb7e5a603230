//! Keeping a rayon pool's other workers awake through a training loop.
//!
//! An online update on two threads is a chain of a dozen products, each split by rows
//! over the pool (`nn::gemm`), with serial work in between (activations, small products,
//! Adam). A rayon worker that finds no work spins only a few dozen `yield`s before it
//! sleeps, and the gaps between products are longer than that, so the second core is
//! woken, through the kernel, for nearly every product: tens of microseconds each on a
//! virtual machine. [`BusyWorkers`] instead keeps the pool's other workers looking for
//! work (stealing it the moment a split is pushed) for as long as the guard lives, as an
//! OpenMP runtime does with an active wait policy.
//!
//! The spinning workers run the same jobs rayon would have given them, so results are
//! unchanged (the library's results do not depend on the schedule); the cost is that the
//! pool's other cores stay busy while the guard lives, which is what a training run that
//! owns its pool wants.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

/// While alive, the other workers of the current rayon pool busy-wait for work instead
/// of sleeping between jobs. Does nothing outside a pool worker or in a pool of one.
///
/// ```
/// let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
/// let sum: u64 = pool.install(|| {
///     let _busy = policy_param::busy_workers::BusyWorkers::start();
///     (0..100u64).map(|i| rayon::join(|| i, || 1).0 + 1).sum()
/// });
/// assert_eq!(sum, 5050);
/// ```
#[must_use = "the workers stop spinning when the guard is dropped"]
pub struct BusyWorkers {
    state: Arc<State>,
}

/// What the guard shares with its spinning jobs.
#[derive(Default)]
struct State {
    stop: AtomicBool,
    /// Jobs spinning now (for tests: they must all end after the guard).
    spinning: AtomicUsize,
}

impl BusyWorkers {
    /// Starts one spinning job for each other worker of the current pool.
    pub fn start() -> Self {
        let state = Arc::new(State::default());
        if let Some(owner) = rayon::current_thread_index() {
            for _ in 1..rayon::current_num_threads() {
                let state = Arc::clone(&state);
                rayon::spawn(move || spin(owner, &state));
            }
        }
        BusyWorkers { state }
    }
}

impl Drop for BusyWorkers {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::Release);
    }
}

/// Runs whatever work the pool has until the guard is dropped, spinning (not yielding to
/// the OS) when there is none.
fn spin(owner: usize, state: &State) {
    // The thread that holds the guard can pop its own spawned job while it waits inside a
    // `join`; spinning there would wait for a flag that only this thread can set.
    if rayon::current_thread_index() == Some(owner) {
        return;
    }
    state.spinning.fetch_add(1, Ordering::AcqRel);
    while !state.stop.load(Ordering::Acquire) {
        if rayon::yield_now() != Some(rayon::Yield::Executed) {
            std::hint::spin_loop();
        }
    }
    state.spinning.fetch_sub(1, Ordering::AcqRel);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    /// Waits up to 20 s for `done`.
    fn eventually(done: impl Fn() -> bool) -> bool {
        let start = Instant::now();
        while !done() {
            if start.elapsed() > Duration::from_secs(20) {
                return false;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        true
    }

    /// In a pool of n threads, n − 1 jobs spin while the guard lives, the pool's work is
    /// done meanwhile, and every spinner ends once the guard is dropped.
    #[test]
    fn the_other_workers_spin_while_the_guard_lives() {
        for threads in [1, 2, 4] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .expect("pool");
            let (sum, state, spun) = pool.install(|| {
                let busy = BusyWorkers::start();
                let state = Arc::clone(&busy.state);
                let spun = eventually(|| state.spinning.load(Ordering::Acquire) == threads - 1);
                let sum: u64 = (0..200u64)
                    .map(|i| {
                        let (a, b) = rayon::join(|| i, || 2 * i);
                        a + b
                    })
                    .sum();
                (sum, state, spun)
            });
            assert!(spun, "{threads} threads: {} spinning", threads - 1);
            assert_eq!(sum, 3 * 199 * 200 / 2);
            assert!(
                eventually(|| state.spinning.load(Ordering::Acquire) == 0),
                "{threads} threads: spinners left after the guard"
            );
        }
    }

    /// Outside any pool worker, the guard starts nothing.
    #[test]
    fn outside_a_pool_it_does_nothing() {
        let busy = BusyWorkers::start();
        assert_eq!(Arc::strong_count(&busy.state), 1);
    }
}
