//! Changing a credential ends every other session of its owner and any
//! elevation the changed factor granted (issue #9, item 5), audited.

use occc_client::{DeviceCredential, OcccClient, SoftwareAuthenticator, proto as pb};
use occc_tests::{
    DevDir, RunningDaemon,
    people::{
        bootstrap_super_admin, elevate, elevate_with_recovery_code, log_in,
        log_in_with_recovery_code,
    },
};
use tonic::Code;

use crate::support::audit_rows_of_kind;

async fn ended(session: &OcccClient) -> bool {
    match session.auth().who_am_i(pb::WhoAmIRequest {}).await {
        Ok(_) => false,
        Err(status) => {
            assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
            true
        }
    }
}

async fn elevated(session: &OcccClient) -> bool {
    let me = session
        .auth()
        .who_am_i(pb::WhoAmIRequest {})
        .await
        .unwrap()
        .into_inner();
    me.session.unwrap().elevated_until_unix_ms.is_some()
}

#[tokio::test]
async fn credential_changes_end_every_other_session_and_the_elevations_they_granted() {
    let dir = DevDir::new();
    let daemon = RunningDaemon::start(&dir).await;
    let anonymous = daemon.client().await;
    let mut root = bootstrap_super_admin(&dir, &anonymous, "root").await;
    let first = log_in(&anonymous, &mut root).await;
    let second = log_in_with_recovery_code(&anonymous, &mut root).await;
    elevate(&first, &mut root).await;
    let laptop = SoftwareAuthenticator::generate().unwrap();
    let key_id = first
        .register_device_key("laptop", &laptop)
        .await
        .unwrap()
        .key_id;
    let device = DeviceCredential {
        key_id: &key_id,
        authenticator: &laptop,
    };
    let by_key = anonymous
        .login_with_device_key("root", &device)
        .await
        .unwrap();
    let elevation = by_key.elevate_with_device_key(&device).await.unwrap();
    assert_eq!(elevation.elevation_method, format!("device_key:{key_id}"));

    // A stolen key cannot log its owner out and stay: revoking a key needs
    // the password re-proved.
    let err = by_key
        .device_keys()
        .revoke_device_key(pb::RevokeDeviceKeyRequest {
            key_id: key_id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    assert_eq!(
        err.metadata().get("occc-denial").unwrap(),
        "password-elevation-required"
    );
    // The owner revokes it: every other session ends — the key's too — and
    // this one keeps its password elevation.
    first
        .device_keys()
        .revoke_device_key(pb::RevokeDeviceKeyRequest {
            key_id: key_id.clone(),
        })
        .await
        .unwrap();
    assert!(ended(&second).await && ended(&by_key).await);
    assert!(!ended(&first).await);
    assert!(elevated(&first).await);

    // A new password: every other session ends, this one goes on without
    // the password elevation that allowed the change.
    let changer = log_in_with_recovery_code(&anonymous, &mut root).await;
    let other = log_in_with_recovery_code(&anonymous, &mut root).await;
    elevate_with_recovery_code(&changer, &mut root).await;
    changer
        .auth()
        .change_password(pb::ChangePasswordRequest {
            current_password: root.password.clone(),
            new_password: "copper-lantern-meadow-41".into(),
        })
        .await
        .unwrap();
    root.password = "copper-lantern-meadow-41".into();
    assert!(ended(&other).await && ended(&first).await);
    assert!(!ended(&changer).await);
    assert!(!elevated(&changer).await);
    log_in_with_recovery_code(&anonymous, &mut root).await;

    daemon.terminate().await;
    let (store, _) = dir.open_store().await;
    let revoked = audit_rows_of_kind(&store, "sessions_revoked").await;
    let details: Vec<&str> = revoked.iter().map(|(_, _, d)| d.as_str()).collect();
    assert!(
        details
            .iter()
            .any(|d| d.contains(&format!("2 sessions ended: device key {key_id} revoked"))),
        "{details:?}"
    );
    assert!(
        details
            .iter()
            .any(|d| d.contains("2 other sessions ended: password changed")),
        "{details:?}"
    );
    store.close().await;
}
