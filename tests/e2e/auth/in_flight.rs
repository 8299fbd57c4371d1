//! A login being checked when the account changes (issue #9, item 1): the
//! session it would open is refused, so no session ever carries a role or
//! state older than the account's. The check is held open by a PAM sensor
//! script waiting on a flag file (real libpam; root).

use occc_client::{OcccClient, proto as pb};
use occc_tests::{
    DevDir, RunningDaemon,
    os_user::ensure_login_user,
    pam_stack::{PamService, ScriptedPerson, held_sensor},
    people::log_in,
};
use tonic::Code;

use super::pam::{FINGER_USER, UNIX_PASSWORD, linked_user, skip_unless_root, status};
use crate::support::audit_rows_of_kind;

/// Starts alice's PAM login and waits until the sensor holds it.
async fn held_login(
    anonymous: &OcccClient,
    sensor: &PamService,
) -> tokio::task::JoinHandle<Result<OcccClient, occc_client::ClientError>> {
    let client = anonymous.clone();
    let login = tokio::spawn(async move {
        let person = ScriptedPerson::answering(&[]);
        client.login_with_pam("alice", &person).await
    });
    sensor.wait_until_held().await;
    login
}

#[tokio::test]
async fn a_login_in_flight_when_the_account_changes_opens_no_session() {
    if skip_unless_root("a_login_in_flight_when_the_account_changes_opens_no_session") {
        return;
    }
    ensure_login_user(FINGER_USER, UNIX_PASSWORD);
    let sensor = held_sensor("inflight");
    sensor.set_verdict("match");
    let dir = DevDir::new();
    dir.set_config(&sensor.config(20_000));
    let daemon = RunningDaemon::start(&dir).await;
    let (anonymous, mut alice, admin) = linked_user(&dir, &daemon, "alice", FINGER_USER).await;
    let users = |client: &OcccClient| client.users();

    // Disabled while her fingerprint is being checked: no session.
    let login = held_login(&anonymous, &sensor).await;
    users(&admin)
        .disable_user(pb::UserRef {
            username: "alice".into(),
        })
        .await
        .unwrap();
    sensor.release();
    let refused = status(login.await.unwrap().unwrap_err());
    assert_eq!(refused.code(), Code::Aborted, "{refused:?}");
    assert!(refused.message().contains("account changed"), "{refused:?}");
    users(&admin)
        .enable_user(pb::UserRef {
            username: "alice".into(),
        })
        .await
        .unwrap();

    // Demoted while being checked: the session that would carry the old role
    // is refused; a new login carries the new one.
    users(&admin)
        .set_user_role(pb::SetUserRoleRequest {
            username: "alice".into(),
            role: pb::UserRole::Admin.into(),
        })
        .await
        .unwrap();
    let login = held_login(&anonymous, &sensor).await;
    users(&admin)
        .set_user_role(pb::SetUserRoleRequest {
            username: "alice".into(),
            role: pb::UserRole::Viewer.into(),
        })
        .await
        .unwrap();
    sensor.release();
    let refused = status(login.await.unwrap().unwrap_err());
    assert_eq!(refused.code(), Code::Aborted, "{refused:?}");
    let session = log_in(&anonymous, &mut alice).await;
    let me = session
        .auth()
        .who_am_i(pb::WhoAmIRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(me.user.unwrap().role(), pb::UserRole::Viewer);
    assert_eq!(me.session.unwrap().role(), pb::UserRole::Viewer);

    // Nothing changed meanwhile: the held login succeeds.
    let login = held_login(&anonymous, &sensor).await;
    sensor.release();
    login.await.unwrap().expect("an unchanged account logs in");

    daemon.terminate().await;
    let (store, _) = dir.open_store().await;
    let failed = audit_rows_of_kind(&store, "login_failed").await;
    assert_eq!(
        failed
            .iter()
            .filter(|(_, _, detail)| detail.contains("account changed"))
            .count(),
        2,
        "{failed:?}"
    );
    store.close().await;
}
