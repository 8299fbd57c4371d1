//! cargo-fuzz's entry for `config_toml`; the body is `occcd_fuzz_targets::config_toml`
//! (fuzz-targets/), which the test suite's smoke run drives too.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| occcd_fuzz_targets::config_toml(data));
