//! Device-bound keys over the socket (issue #4, the device-key half): enrol,
//! log in, elevate, and every way a signature must be refused; the fallback
//! chain; five biometric failures require the fallback.

use occc_client::{
    Biometrics, ClientError, DeviceCredential, OcccClient, PlatformAuthenticator,
    SoftwareAuthenticator, proto as pb,
};
use occc_tests::{
    DevDir, RunningDaemon,
    people::{
        GOOD_PASSWORD, Person, bootstrap_super_admin, elevate, elevate_with_recovery_code,
        elevate_with_totp, invite, log_in, log_in_with_recovery_code,
    },
};
use tonic::Code;

fn code(err: ClientError) -> Code {
    match err {
        ClientError::Rpc(status) => status.code(),
        other => panic!("expected a status, got {other}"),
    }
}

async fn methods(client: &OcccClient, username: &str) -> Vec<pb::LoginMethod> {
    let request = pb::GetLoginMethodsRequest {
        username: username.to_owned(),
    };
    client
        .device_keys()
        .get_login_methods(request)
        .await
        .unwrap()
        .into_inner()
        .methods()
        .collect()
}

/// root (super-admin, elevated) and alice (viewer) with a registered key.
async fn setup(
    dir: &DevDir,
    anonymous: &OcccClient,
) -> (Person, SoftwareAuthenticator, String, OcccClient) {
    let mut root = bootstrap_super_admin(dir, anonymous, "root").await;
    let admin = log_in(anonymous, &mut root).await;
    elevate(&admin, &mut root).await;
    let mut alice = invite(&admin, anonymous, "alice", pb::UserRole::Viewer).await;
    // A recovery code keeps alice's TOTP steps for the tests themselves.
    let session = log_in_with_recovery_code(anonymous, &mut alice).await;
    let laptop = SoftwareAuthenticator::generate().unwrap();
    let err = session
        .register_device_key("laptop", &laptop)
        .await
        .unwrap_err();
    assert_eq!(
        code(err),
        Code::PermissionDenied,
        "registration needs elevation"
    );
    elevate_with_totp(&session, &mut alice).await;
    let err = session
        .register_device_key("laptop", &laptop)
        .await
        .unwrap_err();
    assert_eq!(
        code(err),
        Code::PermissionDenied,
        "registration needs an elevation that re-proved the password"
    );
    elevate_with_recovery_code(&session, &mut alice).await;
    let key = session
        .register_device_key("laptop", &laptop)
        .await
        .unwrap();
    assert_eq!(key.platform, "software");
    (alice, laptop, key.key_id, admin)
}

#[tokio::test]
async fn enrol_then_log_in_and_elevate_with_the_device_key() {
    let dir = DevDir::new();
    let daemon = RunningDaemon::start(&dir).await;
    let anonymous = daemon.client().await;
    let (_alice, laptop, key_id, _) = setup(&dir, &anonymous).await;
    let device = DeviceCredential {
        key_id: &key_id,
        authenticator: &laptop,
    };
    let session = anonymous
        .login_with_device_key("alice", &device)
        .await
        .unwrap();
    let me = session
        .auth()
        .who_am_i(pb::WhoAmIRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(me.user.unwrap().username, "alice");
    let elevated = session.elevate_with_device_key(&device).await.unwrap();
    assert!(elevated.elevated_until_unix_ms.is_some());
    let keys = session
        .device_keys()
        .list_device_keys(pb::ListDeviceKeysRequest::default())
        .await
        .unwrap();
    assert_eq!(keys.into_inner().keys.len(), 1);
}

#[tokio::test]
async fn wrong_replayed_misdirected_and_revoked_signatures_are_refused() {
    let dir = DevDir::new();
    let daemon = RunningDaemon::start(&dir).await;
    let anonymous = daemon.client().await;
    let (mut alice, laptop, key_id, admin) = setup(&dir, &anonymous).await;
    let dk = || anonymous.device_keys();
    let challenge = |username: &str| pb::CreateLoginChallengeRequest {
        username: username.to_owned(),
    };
    let assertion = |challenge: &pb::Challenge,
                     signer: &dyn PlatformAuthenticator,
                     username: &str| pb::DeviceKeyAssertion {
        username: username.to_owned(),
        key_id: key_id.clone(),
        challenge_id: challenge.challenge_id.clone(),
        signature: signer.sign(&challenge.payload).unwrap(),
    };

    // A key that was never registered.
    let stranger = SoftwareAuthenticator::generate().unwrap();
    let c = dk()
        .create_login_challenge(challenge("alice"))
        .await
        .unwrap()
        .into_inner();
    let err = dk()
        .login_with_device_key(assertion(&c, &stranger, "alice"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);

    // A replayed challenge: it worked once, never again.
    let c = dk()
        .create_login_challenge(challenge("alice"))
        .await
        .unwrap()
        .into_inner();
    let signed = assertion(&c, &laptop, "alice");
    dk().login_with_device_key(signed.clone())
        .await
        .expect("first use");
    assert_eq!(
        dk().login_with_device_key(signed).await.unwrap_err().code(),
        Code::Unauthenticated
    );

    // A challenge issued for another user.
    let c = dk()
        .create_login_challenge(challenge("root"))
        .await
        .unwrap()
        .into_inner();
    let err = dk()
        .login_with_device_key(assertion(&c, &laptop, "alice"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);

    // A signature made for another purpose (elevation) used to log in.
    let session = log_in(&anonymous, &mut alice).await;
    let request = pb::CreateSessionChallengeRequest {
        purpose: pb::ChallengePurpose::Elevate.into(),
    };
    let c = session
        .device_keys()
        .create_session_challenge(request)
        .await
        .unwrap()
        .into_inner();
    let err = dk()
        .login_with_device_key(assertion(&c, &laptop, "alice"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);

    // A revoked key (by the elevated super-admin).
    admin
        .device_keys()
        .revoke_device_key(pb::RevokeDeviceKeyRequest {
            key_id: key_id.clone(),
        })
        .await
        .unwrap();
    let c = dk()
        .create_login_challenge(challenge("alice"))
        .await
        .unwrap()
        .into_inner();
    let err = dk()
        .login_with_device_key(assertion(&c, &laptop, "alice"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    assert_eq!(
        methods(&anonymous, "alice").await,
        [pb::LoginMethod::PasswordTotp]
    );
}

#[tokio::test]
async fn the_chain_offers_device_keys_first_and_falls_back_to_password_and_totp() {
    let dir = DevDir::new();
    let daemon = RunningDaemon::start(&dir).await;
    let anonymous = daemon.client().await;
    let (mut alice, laptop, key_id, _) = setup(&dir, &anonymous).await;
    assert_eq!(
        methods(&anonymous, "alice").await,
        [pb::LoginMethod::DeviceKey, pb::LoginMethod::PasswordTotp]
    );
    assert_eq!(
        methods(&anonymous, "root").await,
        [pb::LoginMethod::PasswordTotp]
    );
    assert_eq!(
        methods(&anonymous, "nobody").await,
        [pb::LoginMethod::PasswordTotp],
        "same as a user without keys"
    );

    let device = DeviceCredential {
        key_id: &key_id,
        authenticator: &laptop,
    };
    let (_, method) = anonymous
        .login_chain(
            "alice",
            Biometrics {
                device: Some(&device),
                pam: None,
            },
            || panic!("not needed"),
        )
        .await
        .unwrap();
    assert_eq!(method, pb::LoginMethod::DeviceKey);

    // No device at hand: the chain asks for password and code.
    let code = alice.device.next_code();
    let (session, method) = anonymous
        .login_chain("alice", Biometrics::default(), || {
            Ok((GOOD_PASSWORD.to_owned(), code))
        })
        .await
        .unwrap();
    assert_eq!(method, pb::LoginMethod::PasswordTotp);
    session.auth().who_am_i(pb::WhoAmIRequest {}).await.unwrap();
}

#[tokio::test]
async fn five_biometric_failures_require_the_fallback() {
    let dir = DevDir::new();
    let daemon = RunningDaemon::start(&dir).await;
    let anonymous = daemon.client().await;
    let (mut alice, laptop, key_id, _) = setup(&dir, &anonymous).await;
    let stranger = SoftwareAuthenticator::generate().unwrap();
    let wrong = DeviceCredential {
        key_id: &key_id,
        authenticator: &stranger,
    };
    for _ in 0..5 {
        let err = anonymous
            .login_with_device_key("alice", &wrong)
            .await
            .unwrap_err();
        assert_eq!(code(err), Code::Unauthenticated);
    }
    let right = DeviceCredential {
        key_id: &key_id,
        authenticator: &laptop,
    };
    let err = anonymous
        .login_with_device_key("alice", &right)
        .await
        .unwrap_err();
    assert_eq!(
        code(err),
        Code::ResourceExhausted,
        "the device-key path is locked"
    );
    log_in(&anonymous, &mut alice).await;
    anonymous
        .login_with_device_key("alice", &right)
        .await
        .expect("the fallback lifted the lock");
}
