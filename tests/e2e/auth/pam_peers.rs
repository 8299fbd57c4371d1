//! PAM checks and the socket peer (issue #9, items 2, 3, 4 and 8, real
//! libpam; root): a check runs only for a client running as the linked OS
//! account (or root when configured); one uid runs one check at a time; a
//! check the client abandons — by breaking the protocol or going away —
//! counts as a failure even if the finger matched; a PAM elevation cannot
//! change credentials; the login-method list names PAM only to its owner.

use std::{fs, os::unix::fs::PermissionsExt, time::Duration};

use occc_client::{OcccClient, proto as pb};
use occc_tests::{
    DevDir, RunningDaemon,
    os_user::{ensure_login_user, ensure_other_user, peer_as, socket_group_config},
    pam_stack::{PamService, ScriptedPerson, held_sensor},
};
use tonic::Code;

use super::pam::{FINGER_USER, UNIX_PASSWORD, linked_user, open_login, skip_unless_root, status};
use crate::support::audit_rows_of_kind;

async fn methods(client: &OcccClient, username: &str) -> Vec<pb::LoginMethod> {
    let request = pb::GetLoginMethodsRequest {
        username: username.to_owned(),
    };
    let methods = client.device_keys().get_login_methods(request).await;
    methods.expect("methods").into_inner().methods().collect()
}

#[tokio::test]
async fn pam_checks_come_only_from_the_linked_os_account() {
    if skip_unless_root("pam_checks_come_only_from_the_linked_os_account") {
        return;
    }
    let finger_uid = ensure_login_user(FINGER_USER, UNIX_PASSWORD);
    let (other_uid, _) = ensure_other_user();
    let sensor = PamService::install(
        "peers",
        occc_tests::pam_stack::SENSOR_STACK,
        &[("sensor.sh", occc_tests::pam_stack::SENSOR_SCRIPT)],
    );
    sensor.set_verdict("match");
    let dir = DevDir::new();
    // No allow_root_peer: only the linked OS account's own uid.
    dir.set_config(&format!(
        "{}{}",
        sensor.strict_config(5_000, 4),
        socket_group_config()
    ));
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o711)).unwrap();
    let daemon = RunningDaemon::start(&dir).await;
    let (anonymous, mut alice, _) = linked_user(&dir, &daemon, "alice", FINGER_USER).await;
    let socket = dir.socket();

    // Root (the test) is not alice's OS account: same answer as no link.
    let person = ScriptedPerson::answering(&[]);
    let refused = status(
        anonymous
            .login_with_pam("alice", &person)
            .await
            .unwrap_err(),
    );
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert!(
        refused.message().contains("not set up for this user"),
        "{refused:?}"
    );
    assert_eq!(
        methods(&anonymous, "alice").await,
        [pb::LoginMethod::PasswordTotp]
    );

    // The linked OS account's own client logs in and is offered PAM.
    let offered = peer_as(finger_uid, &socket, &["login-methods", "alice"]).await;
    assert_eq!(
        offered.trim(),
        "ok LOGIN_METHOD_PAM_BIOMETRIC,LOGIN_METHOD_PASSWORD_TOTP"
    );
    let login = peer_as(finger_uid, &socket, &["pam-login", "alice"]).await;
    assert_eq!(login.trim(), "ok logged in");

    // Another OS user may not ring alice's reader.
    let offered = peer_as(other_uid, &socket, &["login-methods", "alice"]).await;
    assert_eq!(offered.trim(), "ok LOGIN_METHOD_PASSWORD_TOTP");
    let login = peer_as(other_uid, &socket, &["pam-login", "alice"]).await;
    assert!(login.starts_with("error FailedPrecondition"), "{login}");

    // Nor may a session root opened elevate through it.
    let session = occc_tests::people::log_in(&anonymous, &mut alice).await;
    let refused = status(session.elevate_with_pam(&person).await.unwrap_err());
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    daemon.terminate().await;
}

/// Opens alice's PAM login by hand, reads the reader's first words, and
/// abandons it: `break_protocol` sends a second `start`, otherwise the
/// client just goes away. Then the sensor is released with a match.
async fn abandon_once(anonymous: &OcccClient, sensor: &PamService, break_protocol: bool) {
    // The previous check's thread may still be giving its slot back.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let (sender, mut responses) = loop {
        let (sender, mut responses) = open_login(anonymous, "alice").await;
        match responses.message().await {
            Ok(Some(first)) => {
                assert!(
                    matches!(first.kind, Some(pb::pam_server_message::Kind::Prompt(_))),
                    "{first:?}"
                );
                break (sender, responses);
            }
            Err(busy) if is_busy(&busy) && std::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            other => panic!("expected the reader's first words, got {other:?}"),
        }
    };
    sensor.wait_until_held().await;
    if break_protocol {
        let again = pb::PamClientMessage {
            kind: Some(pb::pam_client_message::Kind::Start(pb::PamStart {
                username: "alice".into(),
            })),
        };
        sender.send(again).await.unwrap();
        let err = loop {
            match responses.message().await {
                Ok(Some(_)) => continue,
                Ok(None) => panic!("the stream ended without a status"),
                Err(err) => break err,
            }
        };
        assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    } else {
        drop(responses);
        drop(sender);
    }
    // While the abandoned check still holds the reader, this uid gets no
    // second one.
    let person = ScriptedPerson::answering(&[]);
    let busy = status(
        anonymous
            .login_with_pam("alice", &person)
            .await
            .unwrap_err(),
    );
    assert!(is_busy(&busy), "{busy:?}");
    sensor.release();
    wait_until_released(sensor).await;
}

/// Refused only because a check of this uid is still giving its slot back.
fn is_busy(status: &tonic::Status) -> bool {
    status.code() == Code::ResourceExhausted && status.message().contains("too many biometric")
}

/// Waits until the held sensor has given its verdict.
async fn wait_until_released(sensor: &PamService) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while sensor.script_file("started").exists() || sensor.script_file("go").exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the sensor never ended"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn an_abandoned_pam_check_counts_as_a_failure_even_if_the_finger_matched() {
    if skip_unless_root("an_abandoned_pam_check_counts_as_a_failure_even_if_the_finger_matched") {
        return;
    }
    ensure_login_user(FINGER_USER, UNIX_PASSWORD);
    let sensor = held_sensor("abandon");
    sensor.set_verdict("match");
    let dir = DevDir::new();
    dir.set_config(&format!(
        "{}allow_root_peer = true\n",
        sensor.strict_config(20_000, 4)
    ));
    let daemon = RunningDaemon::start(&dir).await;
    let (anonymous, mut alice, _) = linked_user(&dir, &daemon, "alice", FINGER_USER).await;

    // A PAM elevation is an elevation, but not one that may change credentials.
    let session = occc_tests::people::log_in(&anonymous, &mut alice).await;
    let elevating = {
        let session = session.clone();
        tokio::spawn(async move {
            let person = ScriptedPerson::answering(&[]);
            session.elevate_with_pam(&person).await
        })
    };
    sensor.wait_until_held().await;
    sensor.release();
    let elevated = elevating.await.unwrap().unwrap();
    assert_eq!(elevated.elevation_method, "pam");
    wait_until_released(&sensor).await;
    let err = session
        .auth()
        .change_password(pb::ChangePasswordRequest {
            current_password: alice.password.clone(),
            new_password: "copper-lantern-meadow-41".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    assert_eq!(
        err.metadata().get("occc-denial").unwrap(),
        "password-elevation-required"
    );

    // Five checks abandoned after the reader spoke — two by a protocol
    // violation, three by hanging up — lock the path like five misses,
    // although each finger matched.
    for attempt in 0..5 {
        abandon_once(&anonymous, &sensor, attempt < 2).await;
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let locked = loop {
        let person = ScriptedPerson::answering(&[]);
        let refused = status(
            anonymous
                .login_with_pam("alice", &person)
                .await
                .unwrap_err(),
        );
        if !is_busy(&refused) || std::time::Instant::now() > deadline {
            break refused;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(locked.code(), Code::ResourceExhausted, "{locked:?}");
    assert!(locked.message().contains("locked"), "{locked:?}");

    daemon.terminate().await;
    let (store, _) = dir.open_store().await;
    let failed = audit_rows_of_kind(&store, "login_failed").await;
    let abandoned = failed
        .iter()
        .filter(|(_, _, detail)| detail.contains("went away"))
        .count();
    assert_eq!(abandoned, 5, "{failed:?}");
    store.close().await;
}
