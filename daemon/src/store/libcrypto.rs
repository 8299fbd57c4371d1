//! OpenSSL's libcrypto — SQLCipher's cipher on Linux — kept whole until
//! the process is gone.
//!
//! Invariant: once [`keep_until_exit`] has returned `Ok` — called before
//! anything else in the process used libcrypto — libcrypto frees none of
//! its global state in an `atexit` handler. By default it does
//! (`OPENSSL_cleanup`), and a thread still inside libcrypto when the
//! process exits — a sqlx worker thread closing its SQLCipher connection
//! or running OpenSSL's per-thread destructors after `main` returned —
//! then works on freed tables. That crashed `occcd backup` after it had
//! written its backup and said so: a segfault in libcrypto.so.3 in a
//! `sqlx-sqlite-worker` thread, exit status failure (a CI run, stop 39).
//! What the cleanup frees is OpenSSL's own tables (algorithms, providers,
//! per-thread state), not the store's keys, which SQLCipher wipes when a
//! connection closes; the kernel takes the rest at exit. It must run
//! before anything initializes libcrypto (the first initialization
//! decides; a later call still returns `Ok` but changes nothing): `main`
//! calls it first, and every store open calls it again, for processes
//! other than occcd (tests, tools) that open a store.
//!
//! Other systems: on macOS SQLCipher uses Apple's CommonCrypto; the
//! OpenSSL built into the Windows build is not changed (untested there).

use std::ffi::{c_int, c_void};

/// `OPENSSL_INIT_NO_ATEXIT` (OpenSSL 3's `crypto.h`).
const OPENSSL_INIT_NO_ATEXIT: u64 = 0x0008_0000;

#[allow(unsafe_code)] // the FFI boundary: declaring libcrypto's function
#[link(name = "crypto")]
unsafe extern "C" {
    fn OPENSSL_init_crypto(opts: u64, settings: *const c_void) -> c_int;
}

/// Initializes libcrypto without its exit-time cleanup; an error if
/// libcrypto refuses to initialize.
pub fn keep_until_exit() -> Result<(), &'static str> {
    #[allow(unsafe_code)]
    // SAFETY: `OPENSSL_init_crypto(3)` takes option flags and an optional
    // settings pointer (null: the defaults); it is thread-safe and may be
    // called any number of times.
    let initialized = unsafe { OPENSSL_init_crypto(OPENSSL_INIT_NO_ATEXIT, std::ptr::null()) };
    match initialized {
        1 => Ok(()),
        _ => Err("libcrypto could not be initialized"),
    }
}

#[cfg(test)]
mod tests {
    use std::{
        ffi::{c_char, c_void},
        process::Command,
        time::Duration,
    };

    const CHILD: &str = "OCCC_LIBCRYPTO_EXIT_CHILD";
    /// What the child prints once its threads are at work.
    const AT_WORK: &str = "occc-libcrypto-threads-at-work";
    const RUNS: usize = 20;

    #[allow(unsafe_code)] // the FFI boundary: what the threads below call
    #[link(name = "crypto")]
    unsafe extern "C" {
        fn EVP_MD_fetch(
            context: *mut c_void,
            algorithm: *const c_char,
            properties: *const c_char,
        ) -> *mut c_void;
        fn EVP_MD_free(digest: *mut c_void);
    }

    /// Looks a digest up in libcrypto's global tables, again and again, as
    /// SQLCipher's threads do at every page.
    fn use_libcrypto_forever() {
        loop {
            #[allow(unsafe_code)]
            // SAFETY: `EVP_MD_fetch(3)`: a null library context means the
            // default one, null properties none; the result (null when not
            // found) is owned here and freed once (`EVP_MD_free` takes null).
            unsafe {
                let digest =
                    EVP_MD_fetch(std::ptr::null_mut(), c"SHA256".as_ptr(), std::ptr::null());
                EVP_MD_free(digest);
            }
        }
    }

    /// Run by the tests below in a process of its own: two threads are in
    /// libcrypto when the process exits under them.
    #[test]
    fn child_exits_while_threads_use_libcrypto() {
        let Some(keep) = std::env::var_os(CHILD) else {
            return;
        };
        if keep == "keep" {
            super::keep_until_exit().unwrap();
        }
        for _ in 0..2 {
            std::thread::spawn(use_libcrypto_forever);
        }
        #[allow(clippy::disallowed_methods)] // the threads must be at work at the exit
        std::thread::sleep(Duration::from_millis(50));
        println!("{AT_WORK}");
    }

    /// The exit status of each of [`RUNS`] such processes that did not
    /// exit cleanly.
    fn unclean_exits(keep: bool) -> Vec<std::process::ExitStatus> {
        let child_test = format!(
            "{}::child_exits_while_threads_use_libcrypto",
            module_path!().trim_start_matches("occcd::")
        );
        (0..RUNS)
            .filter_map(|_| {
                let output = Command::new(std::env::current_exe().unwrap())
                    .args(["--exact", &child_test, "--test-threads=1", "--nocapture"])
                    .env(CHILD, if keep { "keep" } else { "default" })
                    .output()
                    .unwrap();
                assert!(
                    String::from_utf8_lossy(&output.stdout).contains(AT_WORK),
                    "the child test {child_test} did not run: {output:?}"
                );
                (!output.status.success()).then_some(output.status)
            })
            .collect()
    }

    #[test]
    fn a_process_exiting_while_threads_use_libcrypto_exits_cleanly() {
        assert_eq!(unclean_exits(true), []);
    }

    /// What the module prevents: with libcrypto's default exit-time cleanup,
    /// such exits crash — about one in five here, so all twenty clean
    /// happens about once in fifty runs (run by hand: `cargo test -p occcd
    /// --lib -- --ignored libcrypto`).
    #[test]
    #[ignore = "shows the crash the module prevents"]
    fn with_the_default_cleanup_such_exits_crash() {
        let unclean = unclean_exits(false);
        eprintln!(
            "{} of {RUNS} exits crashed with the default cleanup: {unclean:?}",
            unclean.len()
        );
        assert!(!unclean.is_empty());
    }
}
