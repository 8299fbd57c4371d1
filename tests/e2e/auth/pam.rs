//! PAM biometric login and elevation against the real libpam (issue #4, the
//! PAM half): a pam_exec script playing a fingerprint sensor, pam_unix with
//! a real OS user, and a stack that asks a question through the
//! conversation. Stacks live in /etc/pam.d, so these tests need root; CI runs
//! as root, and without root they say loudly that they did not run.

use std::time::{Duration, Instant};

use occc_client::{Biometrics, ClientError, OcccClient, proto as pb};
use occc_tests::{
    DevDir, RunningDaemon,
    os_user::{ensure_login_user, is_root, set_account_expired},
    pam_stack::{
        ANSWER_SCRIPT, PamService, QUESTION_STACK, SENSOR_SCRIPT, SENSOR_STACK, ScriptedPerson,
        UNIX_STACK,
    },
    people::{GOOD_PASSWORD, Person, bootstrap_super_admin, elevate, invite, log_in},
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Code;

use crate::support::audit_rows_of_kind;

pub(crate) const FINGER_USER: &str = "occc-e2e-finger";
const UNIX_USER: &str = "occc-e2e-unix";
const QUESTION_USER: &str = "occc-e2e-question";
pub(crate) const UNIX_PASSWORD: &str = "Sesame-Open-4242";

pub(crate) fn skip_unless_root(test: &str) -> bool {
    if is_root() {
        return false;
    }
    occc_tests::skip::unavailable(
        test,
        "root (it writes a PAM service to /etc/pam.d and creates OS users)",
    );
    true
}

pub(crate) fn status(err: ClientError) -> tonic::Status {
    match err {
        ClientError::Rpc(status) => status,
        other => panic!("expected a status, got {other}"),
    }
}

/// A daemon using `service`, an elevated super-admin, and `username`
/// (viewer) linked to OS account `os_account`: (anonymous client, the
/// person, the super-admin's elevated session).
pub(crate) async fn linked_user(
    dir: &DevDir,
    daemon: &RunningDaemon,
    username: &str,
    os_account: &str,
) -> (OcccClient, Person, OcccClient) {
    let anonymous = daemon.client().await;
    let mut root = bootstrap_super_admin(dir, &anonymous, "root").await;
    let admin = log_in(&anonymous, &mut root).await;
    elevate(&admin, &mut root).await;
    let person = invite(&admin, &anonymous, username, pb::UserRole::Viewer).await;
    let profile = admin
        .users()
        .link_os_account(pb::LinkOsAccountRequest {
            username: username.to_owned(),
            os_account: os_account.to_owned(),
        })
        .await
        .expect("link")
        .into_inner();
    assert_eq!(profile.os_account.as_deref(), Some(os_account));
    (anonymous, person, admin)
}

async fn methods(client: &OcccClient, username: &str) -> Vec<pb::LoginMethod> {
    let request = pb::GetLoginMethodsRequest {
        username: username.to_owned(),
    };
    let methods = client.device_keys().get_login_methods(request).await;
    methods.expect("methods").into_inner().methods().collect()
}

pub(super) fn set_verdict(service: &PamService, verdict: &str) {
    std::fs::write(service.script_file("verdict"), verdict).expect("write verdict");
}

#[tokio::test]
async fn fingerprint_sensor_matches_refuses_and_times_out() {
    if skip_unless_root("fingerprint_sensor_matches_refuses_and_times_out") {
        return;
    }
    ensure_login_user(FINGER_USER, UNIX_PASSWORD);
    let sensor = PamService::install("sensor", SENSOR_STACK, &[("sensor.sh", SENSOR_SCRIPT)]);
    let dir = DevDir::new();
    dir.set_config(&sensor.config(1_500));
    let daemon = RunningDaemon::start(&dir).await;
    let (anonymous, mut alice, _) = linked_user(&dir, &daemon, "alice", FINGER_USER).await;
    assert_eq!(
        methods(&anonymous, "alice").await,
        [pb::LoginMethod::PamBiometric, pb::LoginMethod::PasswordTotp]
    );
    assert_eq!(
        methods(&anonymous, "nobody").await,
        [pb::LoginMethod::PasswordTotp],
        "an unknown user looks like one without biometrics"
    );

    // Match: a session like any other, and the reader's words reach the client.
    set_verdict(&sensor, "match");
    let person = ScriptedPerson::answering(&[]);
    let session = anonymous.login_with_pam("alice", &person).await.unwrap();
    let me = session.auth().who_am_i(pb::WhoAmIRequest {}).await.unwrap();
    assert_eq!(me.into_inner().user.unwrap().username, "alice");
    assert_eq!(
        person.seen(),
        [
            "info: Place your finger on the reader",
            "info: Fingerprint recognised"
        ]
    );

    // Elevation through the same reader.
    let elevated = session.elevate_with_pam(&person).await.unwrap();
    assert!(elevated.elevated_until_unix_ms.is_some());

    // No match: UNAUTHENTICATED, with a way forward.
    set_verdict(&sensor, "nomatch");
    let refused = status(
        anonymous
            .login_with_pam("alice", &person)
            .await
            .unwrap_err(),
    );
    assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");
    assert!(refused.message().contains("password + TOTP"), "{refused:?}");

    // The reader never answers: DEADLINE_EXCEEDED at the configured 1.5 s,
    // although the script sleeps 8 s.
    set_verdict(&sensor, "hang");
    let started = Instant::now();
    let refused = status(
        anonymous
            .login_with_pam("alice", &person)
            .await
            .unwrap_err(),
    );
    assert_eq!(refused.code(), Code::DeadlineExceeded, "{refused:?}");
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );

    // Five biometric failures in a row (2 so far): the reader is no longer
    // asked, even for a match, until password + TOTP succeeds.
    set_verdict(&sensor, "nomatch");
    for _ in 0..3 {
        let err = anonymous
            .login_with_pam("alice", &person)
            .await
            .unwrap_err();
        assert_eq!(status(err).code(), Code::Unauthenticated);
    }
    set_verdict(&sensor, "match");
    let locked = status(
        anonymous
            .login_with_pam("alice", &person)
            .await
            .unwrap_err(),
    );
    assert_eq!(locked.code(), Code::ResourceExhausted, "{locked:?}");

    // The SDK's chain tries the reader, then falls back to password + TOTP.
    let code = alice.device.next_code();
    let biometrics = Biometrics {
        device: None,
        pam: Some(&person),
    };
    let (_, method) = anonymous
        .login_chain("alice", biometrics, || Ok((GOOD_PASSWORD.to_owned(), code)))
        .await
        .unwrap();
    assert_eq!(method, pb::LoginMethod::PasswordTotp);
    let (_, method) = anonymous
        .login_chain("alice", biometrics, || panic!("the reader works again"))
        .await
        .unwrap();
    assert_eq!(method, pb::LoginMethod::PamBiometric);

    daemon.terminate().await;
    let (store, _) = dir.open_store().await;
    let failed = audit_rows_of_kind(&store, "login_failed").await;
    assert_eq!(failed.len(), 5, "{failed:?}");
    assert!(failed.iter().all(|(_, _, detail)| detail.contains("pam")));
    let succeeded = audit_rows_of_kind(&store, "login_succeeded").await;
    assert!(
        succeeded
            .iter()
            .any(|(_, _, detail)| detail.contains("pam"))
    );
    let elevated = audit_rows_of_kind(&store, "elevated").await;
    assert!(elevated.iter().any(|(_, _, detail)| detail.contains("pam")));
    let linked = audit_rows_of_kind(&store, "os_account_linked").await;
    assert!(linked[0].2.contains(FINGER_USER), "{linked:?}");
    store.close().await;
}

/// Opens PamLogin by hand, for tests that must not answer.
pub(super) async fn open_login(
    client: &OcccClient,
    username: &str,
) -> (
    mpsc::Sender<pb::PamClientMessage>,
    tonic::Streaming<pb::PamServerMessage>,
) {
    let (sender, outbound) = mpsc::channel(4);
    let start = pb::PamClientMessage {
        kind: Some(pb::pam_client_message::Kind::Start(pb::PamStart {
            username: username.to_owned(),
        })),
    };
    sender.send(start).await.unwrap();
    let responses = client
        .biometric()
        .pam_login(ReceiverStream::new(outbound))
        .await
        .unwrap()
        .into_inner();
    (sender, responses)
}

#[tokio::test]
async fn pam_unix_with_a_real_os_user() {
    if skip_unless_root("pam_unix_with_a_real_os_user") {
        return;
    }
    ensure_login_user(UNIX_USER, UNIX_PASSWORD);
    let unix = PamService::install("unix", UNIX_STACK, &[]);
    let dir = DevDir::new();
    dir.set_config(&unix.config(1_500));
    let daemon = RunningDaemon::start_with_log_filter(&dir, "trace").await;
    let (anonymous, _bob, _) = linked_user(&dir, &daemon, "bob", UNIX_USER).await;

    // Success: pam_unix asks for the OS password through the conversation.
    let person = ScriptedPerson::answering(&[UNIX_PASSWORD]);
    anonymous.login_with_pam("bob", &person).await.unwrap();
    assert_eq!(person.seen(), ["ask-hidden: Password: "]);

    // Failure: a wrong OS password.
    let person = ScriptedPerson::answering(&["not-the-password"]);
    let refused = status(anonymous.login_with_pam("bob", &person).await.unwrap_err());
    assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");
    assert!(!refused.message().contains("not-the-password"));

    // Timeout: the question is asked and never answered.
    let (_keep_open, mut responses) = open_login(&anonymous, "bob").await;
    let first = responses.message().await.unwrap().unwrap();
    let Some(pb::pam_server_message::Kind::Prompt(prompt)) = first.kind else {
        panic!("expected the password question, got {first:?}");
    };
    assert_eq!(prompt.kind(), pb::PamPromptKind::QuestionHidden);
    let started = Instant::now();
    let refused = responses.message().await.unwrap_err();
    assert_eq!(refused.code(), Code::DeadlineExceeded, "{refused:?}");
    assert!(started.elapsed() < Duration::from_secs(5));

    // Account disabled: the password is right, but pam_acct_mgmt refuses
    // an expired OS account.
    set_account_expired(UNIX_USER, true);
    let person = ScriptedPerson::answering(&[UNIX_PASSWORD]);
    let refused = status(anonymous.login_with_pam("bob", &person).await.unwrap_err());
    set_account_expired(UNIX_USER, false);
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    assert!(refused.message().contains("OS account"), "{refused:?}");
    daemon.terminate().await;
    let log = dir.log();
    assert!(log.contains("occcd ready"), "the log is there");
    for answer in [UNIX_PASSWORD, "not-the-password"] {
        assert!(!log.contains(answer), "an answer to PAM reached the log");
    }
}

#[tokio::test]
async fn a_question_reaches_the_client_and_its_answer_returns() {
    if skip_unless_root("a_question_reaches_the_client_and_its_answer_returns") {
        return;
    }
    ensure_login_user(QUESTION_USER, UNIX_PASSWORD);
    let stack = PamService::install("question", QUESTION_STACK, &[("answer.sh", ANSWER_SCRIPT)]);
    let dir = DevDir::new();
    dir.set_config(&stack.config(5_000));
    let daemon = RunningDaemon::start(&dir).await;
    let (anonymous, _carol, _) = linked_user(&dir, &daemon, "carol", QUESTION_USER).await;

    let person = ScriptedPerson::answering(&["blue"]);
    let session = anonymous.login_with_pam("carol", &person).await.unwrap();
    assert_eq!(
        person.seen(),
        [
            "info: What colour is the sky? Answer below.",
            "ask-hidden: Password: "
        ],
        "the module's words, in order, then its question"
    );
    let person = ScriptedPerson::answering(&["red"]);
    let err = session.elevate_with_pam(&person).await.unwrap_err();
    assert_eq!(status(err).code(), Code::Unauthenticated);
    let person = ScriptedPerson::answering(&["blue"]);
    session.elevate_with_pam(&person).await.unwrap();
    daemon.terminate().await;
}

/// Needs no root: no PAM stack is consulted.
#[tokio::test]
async fn pam_login_says_clearly_when_it_cannot_be_used() {
    let dir = DevDir::new();
    let daemon = RunningDaemon::start(&dir).await;
    let anonymous = daemon.client().await;
    let mut root = bootstrap_super_admin(&dir, &anonymous, "root").await;
    let admin = log_in(&anonymous, &mut root).await;
    let person = ScriptedPerson::answering(&[]);

    let refused = status(anonymous.login_with_pam("root", &person).await.unwrap_err());
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert!(
        refused.message().contains("auth.pam.service"),
        "{refused:?}"
    );

    // Linking: super-admin, elevated, an existing OS account with a valid name.
    let link = |os_account: &str| pb::LinkOsAccountRequest {
        username: "root".to_owned(),
        os_account: os_account.to_owned(),
    };
    let err = admin
        .users()
        .link_os_account(link("root"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "needs elevation");
    elevate(&admin, &mut root).await;
    let err = admin
        .users()
        .link_os_account(link("Not A User"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let err = admin
        .users()
        .link_os_account(link("occc-no-such-os-user"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("no OS account"), "{err:?}");
    let linked = admin.users().link_os_account(link("root")).await.unwrap();
    assert_eq!(linked.into_inner().os_account.as_deref(), Some("root"));
    let unlinked = admin.users().link_os_account(link("")).await.unwrap();
    assert_eq!(unlinked.into_inner().os_account, None);

    // A stream that does not open with `start`.
    let (sender, outbound) = mpsc::channel(1);
    let answer = pb::PamClientMessage {
        kind: Some(pb::pam_client_message::Kind::Answer(pb::PamAnswer {
            text: "x".to_owned(),
        })),
    };
    sender.send(answer).await.unwrap();
    let err = anonymous
        .biometric()
        .pam_login(ReceiverStream::new(outbound))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    daemon.terminate().await;

    // Configured, but the user is not linked: same answer as an unknown user.
    dir.set_config("[auth.pam]\nservice = \"occc-e2e-unused\"\n");
    let daemon = RunningDaemon::start(&dir).await;
    let anonymous = daemon.client().await;
    for username in ["root", "nobody"] {
        let refused = status(
            anonymous
                .login_with_pam(username, &person)
                .await
                .unwrap_err(),
        );
        assert_eq!(refused.code(), Code::FailedPrecondition);
        assert!(refused.message().contains("not set up for this user"));
        assert_eq!(
            methods(&anonymous, username).await,
            [pb::LoginMethod::PasswordTotp]
        );
    }
    daemon.terminate().await;
}

#[tokio::test]
async fn occcctl_logs_in_and_elevates_with_the_reader() {
    if skip_unless_root("occcctl_logs_in_and_elevates_with_the_reader") {
        return;
    }
    ensure_login_user(FINGER_USER, UNIX_PASSWORD);
    let sensor = PamService::install("cli", SENSOR_STACK, &[("sensor.sh", SENSOR_SCRIPT)]);
    set_verdict(&sensor, "match");
    let dir = DevDir::new();
    dir.set_config(&sensor.config(5_000));
    let daemon = RunningDaemon::start(&dir).await;
    let _ = linked_user(&dir, &daemon, "erin", FINGER_USER).await;

    let login = super::occcctl::occcctl(&dir, &["login", "--username", "erin"])
        .output()
        .await
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&login.stdout),
        String::from_utf8_lossy(&login.stderr),
    );
    assert!(login.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("PAM_BIOMETRIC"), "{stdout}");
    assert!(
        stderr.contains("Place your finger on the reader"),
        "{stderr}"
    );

    let elevate = super::occcctl::occcctl(&dir, &["elevate", "--pam"])
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&elevate.stdout);
    assert!(elevate.status.success(), "{stdout}");
    assert!(stdout.contains("elevated until"), "{stdout}");
    daemon.terminate().await;
}

/// Fingerprint misses and wrong device-key signatures count on one
/// biometric counter per account: three of one and two of the other lock
/// both paths, even for a match or the right key, until the fallback
/// (password + TOTP) succeeds.
#[tokio::test]
async fn pam_and_device_key_failures_share_one_biometric_counter() {
    use occc_client::{DeviceCredential, SoftwareAuthenticator};
    if skip_unless_root("pam_and_device_key_failures_share_one_biometric_counter") {
        return;
    }
    ensure_login_user(FINGER_USER, UNIX_PASSWORD);
    let sensor = PamService::install(
        "shared-sensor",
        SENSOR_STACK,
        &[("sensor.sh", SENSOR_SCRIPT)],
    );
    let dir = DevDir::new();
    dir.set_config(&sensor.config(5_000));
    let daemon = RunningDaemon::start(&dir).await;
    let (anonymous, mut alice, _) = linked_user(&dir, &daemon, "alice", FINGER_USER).await;
    let session = log_in(&anonymous, &mut alice).await;
    elevate(&session, &mut alice).await;
    let laptop = SoftwareAuthenticator::generate().unwrap();
    let key_id = session
        .register_device_key("laptop", &laptop)
        .await
        .unwrap()
        .key_id;
    let stranger = SoftwareAuthenticator::generate().unwrap();
    let (wrong, right) = (
        DeviceCredential {
            key_id: &key_id,
            authenticator: &stranger,
        },
        DeviceCredential {
            key_id: &key_id,
            authenticator: &laptop,
        },
    );
    let person = ScriptedPerson::answering(&[]);
    set_verdict(&sensor, "nomatch");
    for _ in 0..3 {
        let refused = anonymous.login_with_device_key("alice", &wrong).await;
        assert_eq!(status(refused.unwrap_err()).code(), Code::Unauthenticated);
    }
    for _ in 0..2 {
        let refused = anonymous.login_with_pam("alice", &person).await;
        assert_eq!(status(refused.unwrap_err()).code(), Code::Unauthenticated);
    }
    set_verdict(&sensor, "match");
    let locked = anonymous.login_with_pam("alice", &person).await;
    assert_eq!(status(locked.unwrap_err()).code(), Code::ResourceExhausted);
    let locked = anonymous.login_with_device_key("alice", &right).await;
    assert_eq!(status(locked.unwrap_err()).code(), Code::ResourceExhausted);
    log_in(&anonymous, &mut alice).await;
    anonymous
        .login_with_pam("alice", &person)
        .await
        .expect("the fallback lifted the lock");
}
