//! SKILL.md frontmatter: any bytes give a frontmatter or an error.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = occcd::skills::frontmatter::parse(data);
});
