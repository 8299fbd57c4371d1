//! Bad input gets a clear status, costs no hashing when oversized, and
//! changes nothing.

use std::str::FromStr;

use occc_client::{OcccClient, SessionToken, proto as pb};
use occc_tests::{
    DevDir, RunningDaemon,
    people::{bootstrap_super_admin, elevate, log_in},
};
use occcd::audit::verify_chain;
use tonic::{Code, Request, codegen::http::uri::PathAndQuery};

fn login(
    username: &str,
    password: &str,
    factor: Option<pb::login_request::SecondFactor>,
) -> pb::LoginRequest {
    pb::LoginRequest {
        username: username.to_owned(),
        password: password.to_owned(),
        second_factor: factor,
    }
}

fn totp(code: &str) -> Option<pb::login_request::SecondFactor> {
    Some(pb::login_request::SecondFactor::TotpCode(code.to_owned()))
}

/// A LoginRequest whose username is not UTF-8 (field 1 as raw bytes).
#[derive(Clone, PartialEq, prost::Message)]
struct RawLogin {
    #[prost(bytes = "vec", tag = "1")]
    username: Vec<u8>,
    #[prost(string, tag = "2")]
    password: String,
    #[prost(string, tag = "3")]
    totp_code: String,
}

async fn expect(client: &OcccClient, request: pb::LoginRequest, code: Code, words: &str) {
    let err = client.auth().login(request).await.unwrap_err();
    assert_eq!(err.code(), code, "{}", err.message());
    assert!(
        err.message().contains(words),
        "message {:?} should mention {words:?}",
        err.message()
    );
}

#[tokio::test]
async fn bad_login_input_is_refused_clearly_and_changes_nothing() {
    let dir = DevDir::new();
    let daemon = RunningDaemon::start(&dir).await;
    let client = daemon.client().await;
    let mut root = bootstrap_super_admin(&dir, &client, "root").await;
    let admin = log_in(&client, &mut root).await;
    let hashes = || dir.log().matches("argon2 computation started").count();
    let hashes_before = hashes();

    expect(
        &client,
        login("", "x", totp("123456")),
        Code::InvalidArgument,
        "username",
    )
    .await;
    expect(
        &client,
        login(&"a".repeat(65), "x", totp("123456")),
        Code::InvalidArgument,
        "username",
    )
    .await;
    expect(
        &client,
        login("Root", "x", totp("123456")),
        Code::InvalidArgument,
        "lowercase",
    )
    .await;
    expect(
        &client,
        login("root", "", totp("123456")),
        Code::InvalidArgument,
        "password",
    )
    .await;
    expect(
        &client,
        login("root", &"p".repeat(100_000), totp("123456")),
        Code::InvalidArgument,
        "1024 bytes",
    )
    .await;
    expect(
        &client,
        login("root", "x", totp("12ab56")),
        Code::InvalidArgument,
        "6 digits",
    )
    .await;
    expect(
        &client,
        login("root", "x", totp("")),
        Code::InvalidArgument,
        "6 digits",
    )
    .await;
    let long_code = Some(pb::login_request::SecondFactor::RecoveryCode(
        "A".repeat(500),
    ));
    expect(
        &client,
        login("root", "x", long_code),
        Code::InvalidArgument,
        "recovery_code",
    )
    .await;
    expect(
        &client,
        login("root", "x", None),
        Code::InvalidArgument,
        "second_factor",
    )
    .await;
    assert_eq!(
        hashes(),
        hashes_before,
        "malformed input is refused before hashing"
    );

    // A username that is not UTF-8 at all.
    let mut grpc = tonic::client::Grpc::new(client.channel());
    grpc.ready().await.unwrap();
    let raw = RawLogin {
        username: vec![0xff, 0xfe, b'a'],
        password: "x".into(),
        totp_code: "123456".into(),
    };
    let codec = tonic_prost::ProstCodec::<RawLogin, ()>::default();
    let path = PathAndQuery::from_str("/occc.v1.Auth/Login").unwrap();
    let err = grpc
        .unary(Request::new(raw), path, codec)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{}", err.message());
    assert!(err.message().contains("UTF-8"), "{}", err.message());

    // Unknown, garbage and ended session tokens.
    for token in [
        "occc_s_unknownunknownunknownunknownunknownunknown0",
        "garbage",
        &"x".repeat(10_000),
    ] {
        let stranger = client.with_session(SessionToken::new(token.to_owned()));
        let err = stranger
            .auth()
            .who_am_i(pb::WhoAmIRequest {})
            .await
            .unwrap_err();
        assert_eq!(
            err.code(),
            Code::Unauthenticated,
            "{token:.20}: {}",
            err.message()
        );
    }

    // Administrative calls with bad fields.
    elevate(&admin, &mut root).await;
    let err = admin
        .users()
        .create_user(pb::CreateUserRequest {
            username: "erin".into(),
            role: pb::UserRole::Unspecified.into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().contains("USER_ROLE_VIEWER"),
        "{}",
        err.message()
    );
    let err = admin
        .users()
        .delete_user(pb::UserRef {
            username: "nobody".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let err = admin
        .users()
        .delete_user(pb::UserRef {
            username: "root".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        Code::FailedPrecondition,
        "the last super-admin stays: {}",
        err.message()
    );
    let err = admin
        .users()
        .set_user_role(pb::SetUserRoleRequest {
            username: "root".into(),
            role: pb::UserRole::Viewer.into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);

    // A weak password at enrolment is refused and the token still works.
    let created = admin
        .users()
        .create_user(pb::CreateUserRequest {
            username: "erin".into(),
            role: pb::UserRole::Viewer.into(),
        })
        .await
        .unwrap()
        .into_inner();
    let weak = pb::StartEnrollmentRequest {
        enrollment_token: created.enrollment_token.clone(),
        password: "passwordpassword".into(),
    };
    let err = client.auth().start_enrollment(weak).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().contains("too easy to guess"),
        "{}",
        err.message()
    );
    let bad_token = pb::StartEnrollmentRequest {
        enrollment_token: "occc_e_nope".into(),
        password: "copper-lantern-meadow-41".into(),
    };
    assert_eq!(
        client
            .auth()
            .start_enrollment(bad_token)
            .await
            .unwrap_err()
            .code(),
        Code::Unauthenticated
    );
    let good = pb::StartEnrollmentRequest {
        enrollment_token: created.enrollment_token.clone(),
        password: "copper-lantern-meadow-41".into(),
    };
    client
        .auth()
        .start_enrollment(good)
        .await
        .expect("the token survived the refused attempt");

    let users = admin
        .users()
        .list_users(pb::ListUsersRequest::default())
        .await
        .unwrap()
        .into_inner()
        .users;
    let names: Vec<_> = users.iter().map(|u| u.username.as_str()).collect();
    assert_eq!(names, ["erin", "root"], "nothing else was created");
    let (store, hasher) = dir.open_store().await;
    assert_eq!(
        verify_chain(&store, &hasher).await.unwrap().first_broken,
        None
    );
}
