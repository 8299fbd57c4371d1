//! `occcctl backup FILE` keeps FILE only when everything arrived: served
//! here by a Backups server that cuts, breaks or lies about its stream (a
//! real daemon never does; the client must not trust that it never will).

use std::{os::unix::fs::PermissionsExt, process::Stdio};

use occc_client::proto as pb;
use occc_proto::v1::backups_server::{Backups, BackupsServer};
use occc_tests::DevDir;
use pb::backup_part::Part;
use tokio::net::UnixListener;
use tokio_stream::wrappers::UnixListenerStream;
use tonic::{Request, Response, Status};

type Parts = Vec<Result<pb::BackupPart, Status>>;

/// Answers every CreateBackup with the same parts.
struct Scripted(Parts);

#[tonic::async_trait]
impl Backups for Scripted {
    type CreateBackupStream =
        tokio_stream::Iter<std::vec::IntoIter<Result<pb::BackupPart, Status>>>;

    async fn create_backup(
        &self,
        _request: Request<pb::CreateBackupRequest>,
    ) -> Result<Response<Self::CreateBackupStream>, Status> {
        Ok(Response::new(tokio_stream::iter(self.0.clone())))
    }
}

fn data(bytes: &[u8]) -> Result<pb::BackupPart, Status> {
    Ok(pb::BackupPart {
        part: Some(Part::Data(bytes.to_vec())),
    })
}

fn written(of: &[u8]) -> Result<pb::BackupPart, Status> {
    Ok(pb::BackupPart {
        part: Some(Part::Written(pb::BackupWritten {
            file_bytes: of.len() as u64,
            file_sha256: hex::encode(ring::digest::digest(&ring::digest::SHA256, of)),
            audit_head: 7,
            ..pb::BackupWritten::default()
        })),
    })
}

/// `occcctl backup FILE` against a server answering `parts` on the dev
/// folder's socket: success, output, and the names left in FILE's folder.
async fn backup_served(parts: Parts) -> (bool, String, Vec<u8>, Vec<String>) {
    let dir = DevDir::new();
    let listener = UnixListener::bind(dir.socket()).unwrap();
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(BackupsServer::new(Scripted(parts)))
            .serve_with_incoming(UnixListenerStream::new(listener)),
    );
    let folder = dir.path().join("backups");
    std::fs::create_dir(&folder).unwrap();
    let file = folder.join("occcd.tar");
    let ran = crate::auth::occcctl::occcctl(&dir, &["backup", file.to_str().unwrap()])
        .env("OCCC_SESSION_TOKEN", "occs_not-checked-by-this-server")
        .stdin(Stdio::null())
        .output()
        .await
        .unwrap();
    server.abort();
    let kept = std::fs::read(&file).unwrap_or_default();
    if !kept.is_empty() {
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let names = std::fs::read_dir(&folder)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&ran.stdout),
        String::from_utf8_lossy(&ran.stderr)
    );
    (ran.status.success(), text, kept, names)
}

#[tokio::test]
async fn occcctl_keeps_a_backup_only_when_its_size_and_checksum_match() {
    let whole = b"first part|second part";
    let (ok, text, kept, names) = backup_served(vec![
        data(b"first part|"),
        data(b"second part"),
        written(whole),
    ])
    .await;
    assert!(ok, "{text}");
    assert_eq!(kept, whole);
    assert_eq!(names, ["occcd.tar"]);

    // Cut: the stream ends before its last part.
    let (ok, text, kept, names) = backup_served(vec![data(b"first part|")]).await;
    assert!(
        !ok && text.contains("ended before the backup was complete"),
        "{text}"
    );
    assert!(kept.is_empty() && names.is_empty(), "{names:?}");

    // Broken off by an error after some data.
    let (ok, text, kept, names) = backup_served(vec![
        data(b"first part|"),
        Err(Status::unavailable("the store went away")),
    ])
    .await;
    assert!(!ok && text.contains("the store went away"), "{text}");
    assert!(kept.is_empty() && names.is_empty(), "{names:?}");

    // Altered: a byte changed, or a part missing, against what the server
    // says it sent.
    for parts in [
        vec![data(b"first part|"), data(b"second parT"), written(whole)],
        vec![data(b"second part"), written(whole)],
    ] {
        let (ok, text, kept, names) = backup_served(parts).await;
        assert!(
            !ok && text.contains("arrived damaged") && text.contains("nothing was kept"),
            "{text}"
        );
        assert!(kept.is_empty() && names.is_empty(), "{names:?}");
    }
}
