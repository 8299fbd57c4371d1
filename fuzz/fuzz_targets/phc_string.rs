//! cargo-fuzz's entry for `phc_string`; the body is `occcd_fuzz_targets::phc_string`
//! (fuzz-targets/), which the test suite's smoke run drives too.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| occcd_fuzz_targets::phc_string(data));
