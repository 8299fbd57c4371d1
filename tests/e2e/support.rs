//! Small helpers shared by the end-to-end tests.

use std::{
    str::FromStr,
    time::{Duration, Instant},
};

use nix::sys::signal::{Signal, kill};
use occc_client::OcccClient;
use occc_tests::{DevDir, RunningDaemon};
use occcd::store::Store;
use tonic::{Code, Request, codegen::http::uri::PathAndQuery};

/// Calls `path` with an empty message and returns the status code.
pub async fn call_raw(client: &OcccClient, path: &str) -> Code {
    let mut grpc = tonic::client::Grpc::new(client.channel());
    grpc.ready().await.expect("channel ready");
    let path = PathAndQuery::from_str(path).expect("valid path");
    let codec = tonic_prost::ProstCodec::<(), ()>::default();
    match grpc.unary(Request::new(()), path, codec).await {
        Ok(_) => Code::Ok,
        Err(status) => status.code(),
    }
}

/// Audit rows of `kind` as (uid, pid, detail).
pub async fn audit_rows_of_kind(
    store: &Store,
    kind: &str,
) -> Vec<(Option<i64>, Option<i64>, String)> {
    sqlx::query_as(
        "SELECT actor_uid, actor_pid, detail FROM audit_log WHERE kind = ? ORDER BY sequence",
    )
    .bind(kind)
    .fetch_all(store.raw_pool())
    .await
    .expect("query audit_log")
}

/// Whether `needle` occurs anywhere in `haystack`.
pub fn contains_bytes(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

/// Creates viewer `name` (enrolling) as `admin`.
pub async fn create_viewer(
    admin: &occc_client::OcccClient,
    name: &str,
) -> Result<(), tonic::Status> {
    admin
        .users()
        .create_user(occc_client::proto::CreateUserRequest {
            username: name.into(),
            role: occc_client::proto::UserRole::Viewer.into(),
        })
        .await
        .map(drop)
}

/// Reads still answer for `session` (signed in as `username`): WhoAmI, and
/// ListUsers naming every one of `users`.
pub async fn reads_go_on(session: &occc_client::OcccClient, username: &str, users: &[String]) {
    use occc_client::proto as pb;
    let me = session.auth().who_am_i(pb::WhoAmIRequest {}).await.unwrap();
    assert_eq!(me.into_inner().user.unwrap().username, username);
    let listed = session
        .users()
        .list_users(pb::ListUsersRequest::default())
        .await
        .unwrap()
        .into_inner();
    for user in users {
        assert!(
            listed.users.iter().any(|listed| &listed.username == user),
            "{user} not listed"
        );
    }
}

/// A login with a wrong password and code, as `anonymous`; its refusal.
pub async fn wrong_login(anonymous: &occc_client::OcccClient, username: &str) -> tonic::Status {
    use occc_client::proto as pb;
    anonymous
        .auth()
        .login(pb::LoginRequest {
            username: username.into(),
            password: "not-the-password".into(),
            second_factor: Some(pb::login_request::SecondFactor::TotpCode("000000".into())),
        })
        .await
        .unwrap_err()
}

/// Sends `signal` to the daemon (SIGHUP: reload).
pub fn signal(daemon: &RunningDaemon, signal: Signal) {
    let pid = nix::unistd::Pid::from_raw(i32::try_from(daemon.pid()).expect("pid fits"));
    kill(pid, signal).expect("signal the daemon");
}

/// Waits (on the daemon's own progress, not a fixed sleep) until `done`,
/// at most 20 s; the daemon's log is shown if it never is.
pub async fn eventually(what: &str, dir: &DevDir, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(
            Instant::now() < deadline,
            "{what} did not happen; log:\n{}",
            dir.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
