//! PAM stacks at their limits (issue #4): the stacks shipped in
//! `packaging/pam/` load in the real libpam and fail closed without a
//! reader; a hung module keeps its transaction slot and further checks are
//! refused rather than queued, while password + TOTP keeps working.

use std::time::{Duration, Instant};

use occc_tests::{
    DevDir, RunningDaemon,
    os_user::ensure_login_user,
    pam_stack::{PamService, SENSOR_SCRIPT, SENSOR_STACK, ScriptedPerson},
};
use tonic::Code;

use super::pam::{FINGER_USER, UNIX_PASSWORD, linked_user, set_verdict, skip_unless_root, status};

#[tokio::test]
async fn the_shipped_stacks_load_and_fail_closed_without_a_reader() {
    if skip_unless_root("the_shipped_stacks_load_and_fail_closed_without_a_reader") {
        return;
    }
    ensure_login_user(FINGER_USER, UNIX_PASSWORD);
    let shipped = [
        (
            "fprintd",
            include_str!("../../../packaging/pam/occc-biometric"),
            // pam_fprintd loaded and found no fprintd on the system bus.
            "cannot retrieve authentication info",
        ),
        (
            "restricted",
            include_str!("../../../packaging/pam/occc-biometric-restricted"),
            // pam_succeed_if: the OS account is not in group occc-biometric.
            "Authentication failure",
        ),
    ];
    for (kind, stack, expected) in shipped {
        let service = PamService::install(kind, stack, &[]);
        let dir = DevDir::new();
        dir.set_config(&service.config(5_000));
        let daemon = RunningDaemon::start(&dir).await;
        let (anonymous, _dave, _) = linked_user(&dir, &daemon, "dave", FINGER_USER).await;
        let person = ScriptedPerson::answering(&[]);
        let refused = status(anonymous.login_with_pam("dave", &person).await.unwrap_err());
        assert_eq!(refused.code(), Code::Unauthenticated, "{kind}: {refused:?}");
        assert!(refused.message().contains(expected), "{kind}: {refused:?}");
        daemon.terminate().await;
    }
}

#[tokio::test]
async fn a_hung_module_keeps_its_slot_and_further_checks_are_refused_not_queued() {
    if skip_unless_root("a_hung_module_keeps_its_slot_and_further_checks_are_refused_not_queued") {
        return;
    }
    ensure_login_user(FINGER_USER, UNIX_PASSWORD);
    let sensor = PamService::install("slots", SENSOR_STACK, &[("sensor.sh", SENSOR_SCRIPT)]);
    let dir = DevDir::new();
    dir.set_config(&sensor.config_with_slots(1_000, 1));
    let daemon = RunningDaemon::start(&dir).await;
    let (anonymous, mut frank, _) = linked_user(&dir, &daemon, "frank", FINGER_USER).await;
    let person = ScriptedPerson::answering(&[]);

    // The reader hangs (the script sleeps 8 s): the caller is answered at
    // the 1 s deadline, but the transaction keeps the only slot.
    set_verdict(&sensor, "hang");
    let refused = status(
        anonymous
            .login_with_pam("frank", &person)
            .await
            .unwrap_err(),
    );
    assert_eq!(refused.code(), Code::DeadlineExceeded, "{refused:?}");
    set_verdict(&sensor, "match");
    let busy = status(
        anonymous
            .login_with_pam("frank", &person)
            .await
            .unwrap_err(),
    );
    assert_eq!(busy.code(), Code::ResourceExhausted, "{busy:?}");
    assert!(
        busy.message().contains("too many biometric checks"),
        "{busy:?}"
    );
    // Password + TOTP is unaffected, and the daemon stops promptly although
    // a PAM thread is still inside the module.
    occc_tests::people::log_in_with_recovery_code(&anonymous, &mut frank).await;
    let started = Instant::now();
    daemon.terminate().await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

/// `[auth.pam]` is applied by a reload (SIGHUP): the service emptied, PAM
/// logins stop being offered and are refused, naming the setting; put
/// back, they work again — without a restart.
#[tokio::test]
async fn a_reload_turns_pam_off_and_on_again() {
    if skip_unless_root("a_reload_turns_pam_off_and_on_again") {
        return;
    }
    ensure_login_user(FINGER_USER, UNIX_PASSWORD);
    let sensor = PamService::install(
        "reload-sensor",
        SENSOR_STACK,
        &[("sensor.sh", SENSOR_SCRIPT)],
    );
    let dir = DevDir::new();
    dir.set_config(&sensor.config(5_000));
    let daemon = RunningDaemon::start(&dir).await;
    let (anonymous, _alice, _) = linked_user(&dir, &daemon, "alice", FINGER_USER).await;
    set_verdict(&sensor, "match");
    let person = ScriptedPerson::answering(&[]);
    anonymous.login_with_pam("alice", &person).await.unwrap();
    dir.set_config("[auth.pam]\nservice = \"\"\n");
    reload_until(&daemon, &anonymous, false).await;
    let refused = status(
        anonymous
            .login_with_pam("alice", &person)
            .await
            .unwrap_err(),
    );
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert!(
        refused.message().contains("auth.pam.service"),
        "{refused:?}"
    );

    dir.set_config(&sensor.config(5_000));
    reload_until(&daemon, &anonymous, true).await;
    anonymous.login_with_pam("alice", &person).await.unwrap();
}

/// Whether `anonymous` is offered PAM for alice.
async fn offers_pam(anonymous: &occc_client::OcccClient) -> bool {
    use occc_client::proto as pb;
    let methods = anonymous
        .device_keys()
        .get_login_methods(pb::GetLoginMethodsRequest {
            username: "alice".to_owned(),
        })
        .await
        .unwrap()
        .into_inner();
    methods
        .methods()
        .any(|m| m == pb::LoginMethod::PamBiometric)
}

/// Sends SIGHUP and waits (10 s at most) until PAM is `offered` or not.
async fn reload_until(daemon: &RunningDaemon, anonymous: &occc_client::OcccClient, offered: bool) {
    use nix::{sys::signal, unistd::Pid};
    let pid = Pid::from_raw(i32::try_from(daemon.pid()).unwrap());
    signal::kill(pid, signal::Signal::SIGHUP).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while offers_pam(anonymous).await != offered {
        assert!(Instant::now() < deadline, "the reload never applied");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
