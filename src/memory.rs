//! Keeping a long-running `serve` at a steady size on glibc (issue 8's soak).
//!
//! glibc gives each thread that allocates its own arena, up to eight per core, and keeps what
//! is freed in them for reuse. With a multi-threaded async runtime, a blocking pool that grows
//! and shrinks and a ledger thread, that retained memory made the resident size of `serve`
//! creep upwards for an hour although the live heap did not grow (BENCHMARKS.md, "Soak").
//! Two arenas are plenty for a service whose heavy work is the ledger's, and a trim once a
//! minute hands freed pages back to the system, so the resident size follows the live heap.
//! `MALLOC_ARENA_MAX` in the environment, when set, wins. Elsewhere than glibc these do nothing.

use std::time::Duration;

/// How often [`trim`] runs in `serve`.
pub const TRIM_EVERY: Duration = Duration::from_secs(60);

#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod glibc {
    use std::ffi::c_int;

    /// `M_ARENA_MAX` from glibc's `<malloc.h>`.
    pub const M_ARENA_MAX: c_int = -8;

    unsafe extern "C" {
        pub fn mallopt(param: c_int, value: c_int) -> c_int;
        pub fn malloc_trim(pad: usize) -> c_int;
    }
}

/// Limits glibc to two malloc arenas unless `MALLOC_ARENA_MAX` says otherwise. Call it before
/// any thread is started: arenas already made stay.
pub fn limit_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only sets an allocator parameter; it is called before other threads run.
        unsafe {
            glibc::mallopt(glibc::M_ARENA_MAX, 2);
        }
    }
}

/// Returns memory that is free in the allocator to the system. Takes a few milliseconds on a
/// fragmented heap, so `serve` runs it off the async workers.
pub fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim is thread-safe and only releases memory that is free.
    unsafe {
        glibc::malloc_trim(0);
    }
}
