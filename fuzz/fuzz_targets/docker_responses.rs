//! cargo-fuzz's entry for `docker_responses`; the body is `occcd_fuzz_targets::docker_responses`
//! (fuzz-targets/), which the test suite's smoke run drives too.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| occcd_fuzz_targets::docker_responses(data));
