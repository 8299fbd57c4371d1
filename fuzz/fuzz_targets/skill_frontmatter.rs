//! cargo-fuzz's entry for `skill_frontmatter`; the body is `occcd_fuzz_targets::skill_frontmatter`
//! (fuzz-targets/), which the test suite's smoke run drives too.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| occcd_fuzz_targets::skill_frontmatter(data));
