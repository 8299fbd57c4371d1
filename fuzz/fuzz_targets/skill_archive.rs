//! Skill archives (tar and zip): the first byte picks the format, the rest
//! is the archive, unpacked under small limits; its SKILL.md frontmatter is
//! parsed when there is one.
#![no_main]

use libfuzzer_sys::fuzz_target;
use occcd::skills::{
    intake::IntakeLimits,
    unpack::{ArchiveFormat, unpack},
};

fuzz_target!(|data: &[u8]| {
    let Some((&pick, archive)) = data.split_first() else {
        return;
    };
    let format = if pick % 2 == 0 {
        ArchiveFormat::Tar
    } else {
        ArchiveFormat::Zip
    };
    let limits = IntakeLimits {
        max_files: 32,
        max_file_bytes: 64 * 1024,
        max_total_bytes: 256 * 1024,
    };
    let _ = unpack(format, archive, limits);
});
