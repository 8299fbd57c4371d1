//! cargo-fuzz's entry for `auth_input`; the body is `occcd_fuzz_targets::auth_input`
//! (fuzz-targets/), which the test suite's smoke run drives too.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| occcd_fuzz_targets::auth_input(data));
