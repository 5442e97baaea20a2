//! Giving freed memory back to the system once a data snapshot is built.
//!
//! Building a snapshot reads every sales line (about 4 GiB at 10 M lines)
//! and keeps only what the answers need: the customers' feature rows and the
//! dashboard's aggregates (about 1 GiB). mimalloc, the binaries' allocator,
//! returns freed pages to the system lazily, when some thread next allocates
//! or frees and the purge delay has passed. A server that has just started is
//! idle, so nothing triggers that: measured at 10 M lines, `serve` stayed at
//! 4.0 GiB resident until requests came, and went to 1.0 GiB right away with
//! one forced collection.

// mimalloc's C API, from the `mimalloc` crate (the global allocator of
// `serve` and `serve-lambda`); named here so that it is linked into every
// binary of this library, the test binaries too.
extern crate mimalloc as _;

#[allow(unsafe_code)]
unsafe extern "C" {
    fn mi_collect(force: bool);
}

/// Free the calling thread's empty pages and purge every arena's free memory
/// now instead of after the purge delay (mimalloc's `mi_collect(true)`:
/// arena purging is process-wide). Where mimalloc is not the global
/// allocator (the test binaries) this only tidies mimalloc's own, empty
/// heap.
#[allow(unsafe_code)]
pub fn give_back_freed_memory() {
    // SAFETY: `mi_collect` takes a plain flag and is safe to call from any
    // thread at any time.
    unsafe { mi_collect(true) };
}

/// Fresh memory in 4 KiB pages rather than transparent huge pages, for
/// `serve` and `serve-lambda` (see
/// [`analytics_lib::process::disable_transparent_huge_pages`]).
pub use analytics_lib::process::disable_transparent_huge_pages;

/// Resident memory of this process in bytes (Linux `VmRSS`), for the log.
pub fn resident_bytes() -> Option<u64> {
    analytics_lib::process::proc_status_bytes("VmRSS:")
}
