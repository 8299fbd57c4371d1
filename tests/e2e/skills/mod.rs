//! Skill governance over the real socket: submission of the fixture skills
//! as archives, the approval rules, installation into a skills folder,
//! revocation, and that a restart keeps every decision.

mod enforcement;
mod lifecycle;
mod occcctl;
mod submission;

use std::{io::Write, path::Path};

use occc_client::{OcccClient, proto as pb};
use pb::skills_client::SkillsClient;

/// The fixture skill folder `name`.
pub fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/skills")
        .join(name)
}

/// `folder` as a tar archive, entries below `prefix/` (the way people pack
/// a skill's folder), modes as on disk.
pub fn tar_of_folder(folder: &Path, prefix: &str) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    builder.follow_symlinks(false);
    builder.append_dir_all(prefix, folder).unwrap();
    builder.into_inner().unwrap()
}

/// A zip of `entries` (deflated).
pub fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, data) in entries {
        zip.start_file(*name, options).unwrap();
        zip.write_all(data).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

/// A `[skills]` section installing into `install` as this process's user.
pub fn skills_section(install: &Path) -> String {
    let (uid, gid) = (nix::unistd::getuid(), nix::unistd::getgid());
    format!(
        "[skills]\ninstall_dir = \"{}\"\ninstall_owner = \"{uid}:{gid}\"\n",
        install.display()
    )
}

/// The Skills client of `session`.
pub fn skills(session: &OcccClient) -> SkillsClient<occc_client::SessionChannel> {
    SkillsClient::new(session.session_channel())
}

/// Submits `archive` in 64 KiB chunks.
pub async fn submit(
    session: &OcccClient,
    format: pb::ArchiveFormat,
    archive: &[u8],
) -> Result<pb::SkillVersion, tonic::Status> {
    let mut chunks: Vec<pb::SkillArchiveChunk> = archive
        .chunks(64 * 1024)
        .map(|data| pb::SkillArchiveChunk {
            format: 0,
            data: data.to_vec(),
        })
        .collect();
    if let Some(first) = chunks.first_mut() {
        first.format = format as i32;
    }
    skills(session)
        .submit_skill(tokio_stream::iter(chunks))
        .await
        .map(tonic::Response::into_inner)
}

/// Decides `version` with `note`.
pub fn decision(version: &pb::SkillVersion, note: &str) -> pb::SkillDecision {
    pb::SkillDecision {
        tree_hash: version.tree_hash.clone(),
        note: note.to_owned(),
    }
}
