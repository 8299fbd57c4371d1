//! SQLite's heap, wiped on free: the store's answer to "no secret lingers
//! in freed memory" for everything SQLite and SQLCipher allocate (decrypted
//! pages, rows, bound values), as the zeroing global allocator is for Rust.
//!
//! Invariant: once [`install`] has returned `true`, every block SQLite
//! frees — directly or by moving it in a reallocation — is zeroed before it
//! goes back to the C allocator. It has to run before SQLite initializes in
//! this process (SQLite takes allocators only then); if something opened
//! SQLite first, [`install`] returns `false` and the store falls back to
//! SQLCipher's `cipher_memory_security`, which wipes too but also locks and
//! unlocks every block in RAM with a system call each — the cost measured
//! in docs/performance.md, and why this module exists.
//!
//! SQLite's memory statistics (a process-wide lock around every
//! allocation, reallocation and free) are turned off with it, and with
//! them what reads them: the soft and hard heap limits (functions and
//! pragmas), `sqlite3_memory_used`/`_highwater` and the memory counters of
//! `sqlite3_status64` — occcd uses none; a heap limit added later would do
//! nothing. Without that lock SQLite calls the allocator's methods
//! concurrently: ours keep no shared mutable state. Lookaside
//! (per-connection pools of small blocks SQLite reuses without freeing
//! them) is turned off too, so small blocks — a `PRAGMA key`'s text among
//! them — are freed, and wiped, like the rest. Not covered: what
//! lives while a connection does (its page cache holds decrypted pages, up
//! to `cache_size`, and recycles them unwiped; its first 20 come from one
//! block, and a page dropped from it waits there until the cache empties or
//! the connection closes, when the block is freed and wiped), and
//! SQLCipher's own key heap, which it locks and wipes itself.

use std::{
    ffi::{c_int, c_void},
    sync::OnceLock,
};

#[cfg(test)]
use std::sync::atomic::{AtomicU64, Ordering};

use libsqlite3_sys as ffi;

/// The C allocator's entry points SQLite had before ours wrapped them.
struct Underlying {
    malloc: unsafe extern "C" fn(c_int) -> *mut c_void,
    free: unsafe extern "C" fn(*mut c_void),
    size: unsafe extern "C" fn(*mut c_void) -> c_int,
}

static UNDERLYING: OnceLock<Underlying> = OnceLock::new();
/// Whether SQLite took the wiping methods (set once, by the first caller).
static INSTALLED: OnceLock<bool> = OnceLock::new();
/// Bytes wiped so far (tests check the methods are in SQLite's path; not
/// counted outside tests, to keep a shared counter off every free).
#[cfg(test)]
static WIPED_BYTES: AtomicU64 = AtomicU64::new(0);

/// Makes SQLite wipe every block it frees; `true` if SQLite took it (the
/// first call decides, later ones return the same answer).
pub fn install() -> bool {
    *INSTALLED.get_or_init(install_once)
}

/// The value for SQLCipher's `cipher_memory_security` pragma: off when
/// SQLite's frees are wiped here, on (slower, same wiping) when they are not.
pub fn cipher_memory_security() -> &'static str {
    if install() { "OFF" } else { "ON" }
}

/// Bytes SQLite has freed through the wiping methods in this process.
#[cfg(test)]
fn wiped_bytes() -> u64 {
    WIPED_BYTES.load(Ordering::Relaxed)
}

/// Zeroes `bytes` bytes at `block` in a way the compiler may not drop.
///
/// # Safety
/// `block` must be valid for writes of `bytes` bytes.
#[allow(unsafe_code)]
unsafe fn zero(block: *mut u8, bytes: usize) {
    // SAFETY: the caller's promise; explicit_bzero is glibc's memset that
    // is never optimized away.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    unsafe {
        nix::libc::explicit_bzero(block.cast(), bytes);
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    for offset in 0..bytes {
        // SAFETY: the caller's promise; volatile writes are never elided.
        unsafe { std::ptr::write_volatile(block.add(offset), 0) };
    }
    #[cfg(test)]
    WIPED_BYTES.fetch_add(bytes as u64, Ordering::Relaxed);
}

#[allow(unsafe_code)]
fn install_once() -> bool {
    let mut current = ffi::sqlite3_mem_methods {
        xMalloc: None,
        xFree: None,
        xRealloc: None,
        xSize: None,
        xRoundup: None,
        xInit: None,
        xShutdown: None,
        pAppData: std::ptr::null_mut(),
    };
    // SAFETY: SQLITE_CONFIG_GETMALLOC takes one `sqlite3_mem_methods*`,
    // which SQLite fills in (copying, keeping no pointer to it); `current`
    // is a live, writable struct of exactly that type.
    let got = unsafe { ffi::sqlite3_config(ffi::SQLITE_CONFIG_GETMALLOC, &raw mut current) };
    let (Some(malloc), Some(free), Some(size)) = (current.xMalloc, current.xFree, current.xSize)
    else {
        return false;
    };
    if got != ffi::SQLITE_OK || UNDERLYING.set(Underlying { malloc, free, size }).is_err() {
        return false;
    }
    // SAFETY: SQLITE_CONFIG_LOOKASIDE takes two ints (slot size, slots per
    // connection); 0 and 0 turn lookaside off. Refused after initialization,
    // like the allocator below (then neither is changed).
    let no_lookaside =
        unsafe { ffi::sqlite3_config(ffi::SQLITE_CONFIG_LOOKASIDE, 0 as c_int, 0 as c_int) };
    if no_lookaside != ffi::SQLITE_OK {
        return false;
    }
    // SAFETY: SQLITE_CONFIG_MEMSTATUS takes one int; 0 turns SQLite's
    // memory statistics off. They took one process-wide mutex around every
    // allocation, reallocation and free, which the pool's connections
    // contended for (futex waits in a profile of sixteen clients paging);
    // nothing here reads them (no heap limit). Without that mutex SQLite
    // calls the methods below concurrently: `wiping_free` and
    // `wiping_realloc` must keep no shared mutable state (they read
    // UNDERLYING, set once before, and touch only their own block; the
    // underlying methods are libc's, thread-safe). Refused after
    // initialization too.
    let no_statistics = unsafe { ffi::sqlite3_config(ffi::SQLITE_CONFIG_MEMSTATUS, 0 as c_int) };
    if no_statistics != ffi::SQLITE_OK {
        return false;
    }
    let wiping = ffi::sqlite3_mem_methods {
        xFree: Some(wiping_free),
        xRealloc: Some(wiping_realloc),
        ..current
    };
    // SAFETY: SQLITE_CONFIG_MALLOC takes one `const sqlite3_mem_methods*`
    // and copies the struct; its functions are the underlying allocator's
    // and ours, which only call those (set in UNDERLYING above, before
    // SQLite can call ours). SQLite refuses (SQLITE_MISUSE) once it has
    // initialized, and then keeps its own methods: nothing half-installed.
    let took = unsafe { ffi::sqlite3_config(ffi::SQLITE_CONFIG_MALLOC, &raw const wiping) };
    took == ffi::SQLITE_OK
}

/// Zeroes `block` (as SQLite sized it), then frees it.
#[allow(unsafe_code)]
unsafe extern "C" fn wiping_free(block: *mut c_void) {
    let Some(underlying) = UNDERLYING.get() else {
        return;
    };
    if !block.is_null() {
        // SAFETY: `block` came from the underlying malloc (SQLite frees only
        // what its allocator returned) and is still live, so its size is
        // readable and that many bytes are writable.
        unsafe {
            let size = usize::try_from((underlying.size)(block)).unwrap_or(0);
            zero(block.cast::<u8>(), size);
        }
    }
    // SAFETY: as above; SQLite never uses `block` after freeing it.
    unsafe { (underlying.free)(block) }
}

/// Resizes by moving to a new block and wiping the old one (a C `realloc`
/// may leave the old bytes behind in freed memory); a block shrinks in
/// place.
#[allow(unsafe_code)]
unsafe extern "C" fn wiping_realloc(block: *mut c_void, bytes: c_int) -> *mut c_void {
    let Some(underlying) = UNDERLYING.get() else {
        return std::ptr::null_mut();
    };
    // SAFETY: SQLite calls this with a live block from this allocator and
    // a positive size (`sqlite3Realloc` handles null and zero itself); on
    // failure the old block stays as it was, as `realloc` promises.
    unsafe {
        if block.is_null() {
            return (underlying.malloc)(bytes);
        }
        let held = (underlying.size)(block);
        if bytes <= held {
            return block;
        }
        let moved = (underlying.malloc)(bytes);
        if !moved.is_null() {
            let keep = usize::try_from(held).unwrap_or(0);
            std::ptr::copy_nonoverlapping(block.cast::<u8>(), moved.cast::<u8>(), keep);
            wiping_free(block);
        }
        moved
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(unsafe_code)]
    fn sqlite_frees_and_moves_blocks_through_the_wiping_methods() {
        assert!(
            install(),
            "SQLite initialized before the store installed its methods"
        );
        assert_eq!(cipher_memory_security(), "OFF");
        let before = wiped_bytes();
        // SAFETY: SQLite's public allocator: a block of 100 bytes, filled,
        // grown (moved: the old one is wiped), and freed (wiped).
        unsafe {
            let block = ffi::sqlite3_malloc(100).cast::<u8>();
            assert!(!block.is_null());
            std::ptr::write_bytes(block, 0xA5, 100);
            let grown = ffi::sqlite3_realloc(block.cast(), 10_000).cast::<u8>();
            assert!(!grown.is_null());
            assert_eq!(std::slice::from_raw_parts(grown, 100), [0xA5; 100]);
            assert!(
                wiped_bytes() >= before + 100,
                "the moved block was not wiped"
            );
            ffi::sqlite3_free(grown.cast());
        }
        assert!(
            wiped_bytes() >= before + 10_100,
            "the freed block was not wiped"
        );
    }

    #[test]
    #[allow(unsafe_code)]
    fn sqlite_keeps_no_memory_statistics_so_no_lock_per_allocation() {
        assert!(install());
        // SAFETY: SQLite's public allocator and its statistics counter: a
        // block of 1 MiB allocated and freed.
        unsafe {
            // Never counted in this process, not merely unchanged here.
            assert_eq!(ffi::sqlite3_memory_used(), 0, "statistics were kept");
            let block = ffi::sqlite3_malloc(1 << 20);
            assert!(!block.is_null());
            assert_eq!(ffi::sqlite3_memory_used(), 0, "statistics are kept");
            ffi::sqlite3_free(block);
        }
    }
}
