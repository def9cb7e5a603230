//! Runs a closure on a rayon pool of a chosen size, for the tests that check a result
//! does not depend on the thread count. Use it with `mod thread_pool;`.

/// Runs `f` on a new rayon pool of `threads` threads and returns its result.
pub fn with_threads<T: Send>(threads: usize, f: impl FnOnce() -> T + Send) -> T {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("a rayon pool")
        .install(f)
}
