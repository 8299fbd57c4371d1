use std::io::Write;

use super::*;

const LIMITS: IntakeLimits = IntakeLimits {
    max_files: 50,
    max_file_bytes: 64 * 1024,
    max_total_bytes: 256 * 1024,
};
const SKILL_MD: &[u8] = b"---\nname: t\ndescription: d\n---\n";

/// A tar entry with a raw name (the builder refuses unsafe names itself).
fn tar_entry(
    builder: &mut tar::Builder<Vec<u8>>,
    name: &[u8],
    kind: tar::EntryType,
    data: &[u8],
    link: Option<&str>,
) {
    let mut header = tar::Header::new_gnu();
    let slot = &mut header.as_gnu_mut().unwrap().name;
    slot[..name.len()].copy_from_slice(name);
    header.set_entry_type(kind);
    header.set_mode(0o755);
    header.set_size(data.len() as u64);
    if let Some(link) = link {
        header.set_link_name(link).unwrap();
    }
    header.set_cksum();
    builder.append(&header, data).unwrap();
}

/// Name, kind, contents and link target of one tar entry.
type TarEntry<'a> = (&'a [u8], tar::EntryType, &'a [u8], Option<&'a str>);

fn tar_of(entries: &[TarEntry<'_>]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (name, kind, data, link) in entries {
        tar_entry(&mut builder, name, *kind, data, *link);
    }
    builder.into_inner().unwrap()
}

fn zip_of(entries: &[(&str, &[u8])], deflate: bool) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let method = if deflate {
        zip::CompressionMethod::Deflated
    } else {
        zip::CompressionMethod::Stored
    };
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(method)
        .unix_permissions(0o644);
    for (name, data) in entries {
        zip.start_file(*name, options).unwrap();
        zip.write_all(data).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

fn refusal(format: ArchiveFormat, archive: &[u8]) -> String {
    unpack(format, archive, LIMITS).unwrap_err().to_string()
}

#[test]
fn a_well_formed_tar_and_zip_unpack_to_the_same_skill() {
    use tar::EntryType::{Directory, Regular};
    let tar = tar_of(&[
        (b"weather/", Directory, b"", None),
        (b"weather/SKILL.md", Regular, SKILL_MD, None),
    ]);
    let from_tar = unpack(ArchiveFormat::Tar, &tar, LIMITS).unwrap();
    let zip = zip_of(&[("weather/SKILL.md", SKILL_MD)], true);
    let from_zip = unpack(ArchiveFormat::Zip, &zip, LIMITS).unwrap();
    assert_eq!(from_tar.files()[0].path, "SKILL.md");
    assert!(from_tar.files()[0].executable, "tar mode 755");
    assert!(!from_zip.files()[0].executable);
    assert_eq!(from_tar.files()[0].contents, from_zip.files()[0].contents);
}

#[test]
fn links_devices_fifos_and_traversal_are_refused_by_entry_name() {
    use tar::EntryType::{Block, Char, Fifo, Link, Regular, Symlink};
    let cases: &[(&[u8], tar::EntryType, Option<&str>, &str)] = &[
        (
            b"escape",
            Symlink,
            Some("../../../../etc/passwd"),
            "escape: symbolic link",
        ),
        (b"hard", Link, Some("SKILL.md"), "hard: hard link"),
        (b"tty", Char, None, "tty: device"),
        (b"disk", Block, None, "disk: device"),
        (b"pipe", Fifo, None, "pipe: FIFO"),
        (b"../evil.sh", Regular, None, "../evil.sh: `.` or `..`"),
        (
            b"/etc/cron.d/x",
            Regular,
            None,
            "/etc/cron.d/x: absolute path",
        ),
        (b"bad\xffname", Regular, None, "not UTF-8"),
    ];
    for (name, kind, link, expected) in cases {
        let tar = tar_of(&[
            (b"SKILL.md", tar::EntryType::Regular, SKILL_MD, None),
            (name, *kind, b"", *link),
        ]);
        let err = refusal(ArchiveFormat::Tar, &tar);
        assert!(err.contains(expected), "{expected}: {err}");
    }
    let zip = zip_of(&[("SKILL.md", SKILL_MD), ("a/../../evil", b"x")], false);
    assert!(refusal(ArchiveFormat::Zip, &zip).contains("path traversal"));
    let mut with_link = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    with_link
        .add_symlink(
            "link",
            "/etc/shadow",
            zip::write::SimpleFileOptions::default(),
        )
        .unwrap();
    let with_link = with_link.finish().unwrap().into_inner();
    assert!(refusal(ArchiveFormat::Zip, &with_link).contains("link: symbolic link"));
}

#[test]
fn duplicates_and_bombs_are_refused_before_the_limit_is_passed() {
    let dup = tar_of(&[
        (b"SKILL.md", tar::EntryType::Regular, SKILL_MD, None),
        (b"./SKILL.md", tar::EntryType::Regular, b"other", None),
    ]);
    assert!(refusal(ArchiveFormat::Tar, &dup).contains("duplicate entry"));
    let zeros = vec![0u8; 8 * 1024 * 1024];
    let bomb = zip_of(&[("SKILL.md", SKILL_MD), ("zeros", &zeros)], true);
    assert!(bomb.len() < 64 * 1024, "the bomb is small: {}", bomb.len());
    assert!(matches!(
        unpack(ArchiveFormat::Zip, &bomb, LIMITS),
        Err(SkillError::TooLarge(_))
    ));
    let many: Vec<(String, &[u8])> = (0..60).map(|i| (format!("f{i}"), &b"x"[..])).collect();
    let many: Vec<(&str, &[u8])> = many.iter().map(|(n, d)| (n.as_str(), *d)).collect();
    assert!(refusal(ArchiveFormat::Zip, &zip_of(&many, false)).contains("more than 50 files"));
    assert!(refusal(ArchiveFormat::Zip, b"PK not really").contains("not a zip archive"));
}
