//! Issue #16: the master key's file disappears, or is replaced by another
//! key, while the daemon serves. A restart could not open what it wrote
//! now, so writes are refused (UNAVAILABLE, saying why) while reads and
//! sessions go on; the refusal and the resumption are audited; when the
//! file holds the right key again, writes work, and nothing is corrupt.

use std::{
    os::unix::fs::PermissionsExt,
    time::{Duration, Instant},
};

use occc_client::{OcccClient, proto as pb};
use occc_tests::{DevDir, RunningDaemon, people::signed_in_super_admin};
use tonic::Code;

use crate::support::{audit_rows_of_kind, create_viewer, reads_go_on, wrong_login};

/// Creates `name-1`, `name-2`, … until the daemon answers other than
/// `while_code` (it looks at the key file every second); the last answer.
async fn create_until_not(
    session: &OcccClient,
    name: &str,
    while_code: Option<Code>,
) -> Result<(), tonic::Status> {
    let deadline = Instant::now() + Duration::from_secs(10);
    for attempt in 1.. {
        let outcome = create_viewer(session, &format!("{name}-{attempt}")).await;
        let code = outcome.as_ref().err().map(tonic::Status::code);
        if code != while_code || Instant::now() > deadline {
            return outcome;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    unreachable!()
}

/// Waits until the daemon's log says `words` (it looks every second).
async fn wait_for_log(dir: &DevDir, words: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !dir.log().contains(words) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(dir.log().contains(words), "the log never said {words:?}");
}

#[tokio::test]
async fn writes_are_refused_while_the_key_file_is_gone_or_wrong_and_resume_when_it_is_back() {
    let dir = DevDir::new();
    let daemon = RunningDaemon::start(&dir).await;
    let root = signed_in_super_admin(&dir, &daemon).await;
    create_viewer(&root.session, "before").await.unwrap();
    let key = std::fs::read(dir.key_file()).unwrap();
    let aside = dir.path().join("master.key.aside");
    std::fs::rename(dir.key_file(), &aside).unwrap();

    // Refused once the daemon has looked (a user created meanwhile counts
    // as acknowledged), with what is wrong and what goes on.
    let refused = create_until_not(&root.session, "while-gone", None)
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");
    for words in [
        "taking no changes",
        "nothing was changed",
        "reads go on",
        "key file",
    ] {
        assert!(refused.message().contains(words), "{}", refused.message());
    }
    // Reads and the session go on.
    reads_go_on(&root.session, "root", &["before".to_owned()]).await;

    // Many writes at once (the pool opens new connections for them): each
    // refused. A login is refused before it is counted, so retries during
    // the refusal lock nobody out.
    let burst: Vec<_> = (0..12)
        .map(|n| {
            let session = root.session.clone();
            tokio::spawn(async move { create_viewer(&session, &format!("burst-{n}")).await })
        })
        .collect();
    for write in burst {
        assert_eq!(write.await.unwrap().unwrap_err().code(), Code::Unavailable);
    }
    for _ in 0..12 {
        let login = wrong_login(&root.anonymous, "root").await;
        assert_eq!(login.code(), Code::Unavailable, "{login:?}");
    }

    // A FIFO in its place blocks nothing; another key does not lift it.
    nix::unistd::mkfifo(
        &dir.key_file(),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .unwrap();
    wait_for_log(&dir, "cannot be used").await;
    root.session
        .auth()
        .who_am_i(pb::WhoAmIRequest {})
        .await
        .unwrap();
    std::fs::remove_file(dir.key_file()).unwrap();
    std::fs::write(dir.key_file(), "5a".repeat(32)).unwrap();
    std::fs::set_permissions(dir.key_file(), std::fs::Permissions::from_mode(0o600)).unwrap();
    wait_for_log(&dir, "now holds another key").await;
    let still = create_viewer(&root.session, "other-key").await.unwrap_err();
    assert_eq!(still.code(), Code::Unavailable);

    // The right key back: writes work again.
    std::fs::remove_file(dir.key_file()).unwrap();
    std::fs::rename(&aside, dir.key_file()).unwrap();
    assert_eq!(std::fs::read(dir.key_file()).unwrap(), key);
    create_until_not(&root.session, "after", Some(Code::Unavailable))
        .await
        .unwrap();
    // The refused logins counted for nothing: a wrong password now is a
    // first failure, not a delay or a lock.
    let first = wrong_login(&root.anonymous, "root").await;
    assert_eq!(first.code(), Code::Unauthenticated, "{first:?}");
    daemon.terminate().await;

    // Audited: refused (gone) and resumed — while refused the audit log
    // takes nothing either, so the other key is in the daemon's log; the
    // chain verifies and no log names key material.
    let (store, hasher) = dir.open_store().await;
    let refusals = audit_rows_of_kind(&store, "store_writes_refused").await;
    assert_eq!(refusals.len(), 1, "{refusals:?}");
    assert!(refusals[0].2.contains("is gone"), "{}", refusals[0].2);
    assert_eq!(
        audit_rows_of_kind(&store, "store_writes_resumed")
            .await
            .len(),
        1
    );
    let users: Vec<String> = sqlx::query_scalar("SELECT username FROM users ORDER BY username")
        .fetch_all(store.raw_pool())
        .await
        .unwrap();
    assert!(
        users.iter().any(|user| user.starts_with("after-")) && users.contains(&"before".to_owned())
    );
    assert!(
        !users
            .iter()
            .any(|user| user.starts_with("other-key") || user.starts_with("burst-"))
    );
    assert!(
        occcd::audit::verify_chain(&store, &hasher)
            .await
            .unwrap()
            .first_broken
            .is_none()
    );
    store.close().await;
    assert!(!dir.log().contains(&hex::encode(&key)));
}

/// While the key file is gone, an elevation and a config edit are refused
/// before anything is written — OpenClaw's file keeps its bytes — and the
/// same edit goes through once the key is back.
#[tokio::test]
async fn elevations_and_config_edits_are_refused_while_the_key_file_is_gone() {
    use crate::config::{SAMPLE, editing, read, write};
    let (dir, path, _daemon, mut root) = editing(SAMPLE).await;
    occc_tests::people::elevate(&root.session, &mut root.person).await;
    let version = read(&root.session).await.version.clone();
    let edited = SAMPLE.replace("18789", "18790");
    let aside = dir.path().join("master.key.aside");
    std::fs::rename(dir.key_file(), &aside).unwrap();
    let refused = create_until_not(&root.session, "while-gone", None)
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");

    let edit = write(&root.session, &version, &edited, "port")
        .await
        .unwrap_err();
    assert_eq!(edit.code(), Code::Unavailable, "{edit:?}");
    assert!(edit.message().contains("nothing was changed"), "{edit:?}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), SAMPLE);
    let elevation = root
        .session
        .auth()
        .elevate(pb::ElevateRequest {
            totp_code: root.person.device.next_code(),
            password: root.person.password.clone(),
            recovery_code: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(elevation.code(), Code::Unavailable, "{elevation:?}");

    std::fs::rename(&aside, dir.key_file()).unwrap();
    create_until_not(&root.session, "after", Some(Code::Unavailable))
        .await
        .unwrap();
    write(&root.session, &version, &edited, "port")
        .await
        .unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), edited);
}
