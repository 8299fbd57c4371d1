//! What a skill author uploads: archives and SKILL.md frontmatter.

use occcd::skills::{
    intake::IntakeLimits,
    unpack::{ArchiveFormat, unpack},
};

/// A tar (first byte even) or zip (odd) archive, unpacked under small limits.
pub fn skill_archive(data: &[u8]) {
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
}

/// SKILL.md frontmatter: any bytes give a frontmatter or an error.
pub fn skill_frontmatter(data: &[u8]) {
    let _ = occcd::skills::frontmatter::parse(data);
}
