//! How the C allocator (glibc's malloc, under Rust's `System` allocator and
//! SQLCipher) keeps freed memory: set once, at the start of `main`.
//!
//! Invariant: a block of 1 MiB or more — an Argon2 hash's memory, a large
//! message — is mapped on its own and handed back
//! to the kernel when freed, and at most eight malloc arenas exist. glibc's
//! default raises the mapping threshold to the size of the largest block
//! freed (up to 32 MiB), after which Argon2's blocks are carved from
//! per-thread arenas that keep their pages: measured under the load test
//! (`scripts/soak load`), two arenas held 160 MiB with 7 KiB in use, and
//! the daemon's RSS kept growing. Free pages inside the arenas go back too,
//! once a minute ([`return_free_pages`], from the daemon's control loop).
//! Eight arenas, not two: with large blocks mapped alone they hold no more
//! (the load test's RSS stays flat either way), and the tokio workers and
//! SQLite's worker threads then rarely queue on one arena's lock — sixteen
//! clients paging a big store wait a quarter less (docs/performance.md).
//! Only Linux with glibc is tuned; other platforms keep their allocator's
//! defaults.

/// Blocks at least this large are mapped on their own.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MAP_ALONE_FROM_BYTES: i32 = 1024 * 1024;
/// Malloc arenas at most (glibc would allow eight per core).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const ARENAS: i32 = 8;

/// Sets the allocator's thresholds; a refusal is only logged later by the
/// caller's choice (it costs memory, not safety). Returns what was refused.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub fn keep_heap_returnable() -> Vec<&'static str> {
    use nix::libc::{M_ARENA_MAX, M_MMAP_THRESHOLD, mallopt};
    let mut refused = Vec::new();
    // SAFETY: `mallopt` takes two integers and only changes the allocator's
    // parameters under its own lock; no pointer crosses the boundary.
    if unsafe { mallopt(M_MMAP_THRESHOLD, MAP_ALONE_FROM_BYTES) } != 1 {
        refused.push("M_MMAP_THRESHOLD");
    }
    // SAFETY: as above.
    if unsafe { mallopt(M_ARENA_MAX, ARENAS) } != 1 {
        refused.push("M_ARENA_MAX");
    }
    refused
}

/// How often free pages inside the arenas are handed back.
pub const RETURN_FREE_PAGES_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// Hands free pages inside the malloc arenas back to the kernel (they were
/// zeroed when freed: nothing is lost but residency).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub fn return_free_pages() {
    // SAFETY: `malloc_trim` takes an integer (the padding to keep at the
    // heap's top) and works under the allocator's own locks; no pointer
    // crosses the boundary.
    unsafe {
        nix::libc::malloc_trim(0);
    }
}

/// Nothing to hand back on this platform.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn return_free_pages() {}

/// Nothing to tune on this platform.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
#[must_use]
pub fn keep_heap_returnable() -> Vec<&'static str> {
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn glibc_takes_both_settings_and_trims() {
        assert!(keep_heap_returnable().is_empty());
        let garbage: Vec<Vec<u8>> = (0..1_000).map(|i| vec![1; 1_000 + i]).collect();
        drop(garbage);
        return_free_pages();
    }
}
