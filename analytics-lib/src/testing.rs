//! Helpers for the library's unit tests.

/// `f` run on a rayon pool of `threads` threads: results that must not
/// depend on the pool's size are compared across sizes with it.
pub(crate) fn on_pool<R: Send>(threads: usize, f: impl FnOnce() -> R + Send) -> R {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("pool")
        .install(f)
}
