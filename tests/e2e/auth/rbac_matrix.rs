//! The RBAC matrix: every RPC × every role × elevated or not, against
//! expectations written here from the seed's role table — independently of
//! the daemon's policy table, which the test only uses to check coverage.

use std::str::FromStr;

use occc_client::{OcccClient, proto as pb};
use occc_tests::{
    DevDir, RunningDaemon,
    people::{Person, bootstrap_super_admin, elevate, invite, log_in, log_in_with_recovery_code},
};
use occcd::gate::POLICY_TABLE;
use tonic::{Code, Request, codegen::http::uri::PathAndQuery};

/// Who may call an RPC: 0 anyone, 1 viewer, 2 operator, 3 admin, 4 super-admin.
struct Expectation {
    rpc: &'static str,
    min_rank: u8,
    elevated: bool,
    streaming: bool,
}

const fn rpc(rpc: &'static str, min_rank: u8, elevated: bool) -> Expectation {
    Expectation {
        rpc,
        min_rank,
        elevated,
        streaming: false,
    }
}

const EXPECTED: &[Expectation] = &[
    Expectation {
        rpc: "/grpc.health.v1.Health/Check",
        min_rank: 0,
        elevated: false,
        streaming: false,
    },
    Expectation {
        rpc: "/grpc.health.v1.Health/Watch",
        min_rank: 0,
        elevated: false,
        streaming: true,
    },
    Expectation {
        rpc: "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        min_rank: 0,
        elevated: false,
        streaming: true,
    },
    rpc("/occc.v1.System/GetInfo", 0, false),
    rpc("/occc.v1.Auth/Bootstrap", 0, false),
    rpc("/occc.v1.Auth/StartEnrollment", 0, false),
    rpc("/occc.v1.Auth/ConfirmEnrollment", 0, false),
    rpc("/occc.v1.Auth/Login", 0, false),
    rpc("/occc.v1.DeviceKeys/GetLoginMethods", 0, false),
    rpc("/occc.v1.DeviceKeys/CreateLoginChallenge", 0, false),
    rpc("/occc.v1.DeviceKeys/LoginWithDeviceKey", 0, false),
    // Bidirectional streams; one empty message reaches the handler (or the gate).
    rpc("/occc.v1.Biometric/PamLogin", 0, false),
    rpc("/occc.v1.Biometric/PamElevate", 1, false),
    rpc("/occc.v1.DeviceKeys/CreateSessionChallenge", 1, false),
    rpc("/occc.v1.DeviceKeys/ElevateWithDeviceKey", 1, false),
    rpc("/occc.v1.DeviceKeys/ListDeviceKeys", 1, false),
    rpc("/occc.v1.DeviceKeys/RevokeDeviceKey", 1, false),
    rpc("/occc.v1.DeviceKeys/RegisterDeviceKey", 1, true),
    rpc("/occc.v1.Auth/Elevate", 1, false),
    rpc("/occc.v1.Auth/WhoAmI", 1, false),
    rpc("/occc.v1.Auth/ListMySessions", 1, false),
    rpc("/occc.v1.Auth/ConfirmTotpReenrollment", 1, false),
    rpc("/occc.v1.Auth/ChangePassword", 1, true),
    rpc("/occc.v1.Auth/StartTotpReenrollment", 1, true),
    rpc("/occc.v1.Auth/RegenerateRecoveryCodes", 1, true),
    // viewer: view active sessions; operator: view logs; admin: view all sessions.
    rpc("/occc.v1.Users/ListActiveSessions", 1, false),
    rpc("/occc.v1.Audit/VerifyChain", 2, false),
    rpc("/occc.v1.Users/ListAllSessions", 3, false),
    // super-admin: manage users (changes need re-authentication).
    rpc("/occc.v1.Users/ListUsers", 4, false),
    rpc("/occc.v1.Users/CreateUser", 4, true),
    rpc("/occc.v1.Users/SetUserRole", 4, true),
    rpc("/occc.v1.Users/DisableUser", 4, true),
    rpc("/occc.v1.Users/EnableUser", 4, true),
    rpc("/occc.v1.Users/DeleteUser", 4, true),
    rpc("/occc.v1.Users/ResetTotp", 4, true),
    rpc("/occc.v1.Users/UnlockUser", 4, true),
    rpc("/occc.v1.Users/RevokeSession", 4, true),
    rpc("/occc.v1.Users/RevokeUserSessions", 4, true),
    rpc("/occc.v1.Users/LinkOsAccount", 4, true),
    // Container integrity: viewers see; operators run checks and the
    // environment; admins pin baselines (elevated) and read snapshots;
    // super-admins release quarantines (elevated).
    rpc("/occc.v1.Integrity/GetIntegrityStatus", 1, false),
    Expectation {
        rpc: "/occc.v1.Integrity/WatchIntegrity",
        min_rank: 1,
        elevated: false,
        streaming: true,
    },
    rpc("/occc.v1.Integrity/ListFindings", 1, false),
    rpc("/occc.v1.Integrity/RunChecks", 2, false),
    rpc("/occc.v1.Integrity/PinBaseline", 3, true),
    rpc("/occc.v1.Integrity/ListSnapshots", 3, false),
    rpc("/occc.v1.Integrity/ExportSnapshot", 3, false),
    rpc("/occc.v1.Integrity/VerifySnapshot", 3, false),
    rpc("/occc.v1.Integrity/ReleaseQuarantine", 4, true),
    rpc("/occc.v1.Environment/StartEnvironment", 2, false),
    rpc("/occc.v1.Environment/StopEnvironment", 2, false),
    rpc("/occc.v1.Environment/RestartEnvironment", 2, false),
    rpc("/occc.v1.Environment/GetEnvironmentStatus", 2, false),
    Expectation {
        rpc: "/occc.v1.Environment/StreamEnvironmentLogs",
        min_rank: 2,
        elevated: false,
        streaming: true,
    },
    // Last: it ends the session it is called with.
    rpc("/occc.v1.Auth/Logout", 1, false),
];

/// Calls `path` with an empty message; returns the code and the gate's
/// denial reason (`occc-denial` metadata), if the gate refused.
async fn call(client: &OcccClient, path: &str) -> (Code, Option<String>) {
    let mut grpc = tonic::client::Grpc::new(client.session_channel());
    grpc.ready().await.unwrap();
    let codec = tonic_prost::ProstCodec::<(), ()>::default();
    match grpc
        .unary(
            Request::new(()),
            PathAndQuery::from_str(path).unwrap(),
            codec,
        )
        .await
    {
        Ok(_) => (Code::Ok, None),
        Err(status) => {
            let denial = status
                .metadata()
                .get("occc-denial")
                .map(|v| v.to_str().unwrap().to_owned());
            (status.code(), denial)
        }
    }
}

async fn check_row(client: &OcccClient, rank: u8, elevated: bool, failures: &mut Vec<String>) {
    for expectation in EXPECTED.iter().filter(|e| !e.streaming) {
        let allowed = rank >= expectation.min_rank && (!expectation.elevated || elevated);
        let (code, denial) = call(client, expectation.rpc).await;
        let ok = match (allowed, denial.as_deref()) {
            (true, None) => true,
            (false, Some("login-required")) => rank == 0 && code == Code::Unauthenticated,
            (false, Some("forbidden")) => {
                rank < expectation.min_rank && code == Code::PermissionDenied
            }
            (false, Some("elevation-required")) => {
                rank >= expectation.min_rank && !elevated && code == Code::PermissionDenied
            }
            _ => false,
        };
        if !ok {
            failures.push(format!(
                "{} as rank {rank} elevated={elevated}: expected allowed={allowed}, got {code:?} {denial:?}",
                expectation.rpc
            ));
        }
    }
}

#[test]
fn expectations_cover_exactly_the_policy_table() {
    let mut expected: Vec<_> = EXPECTED.iter().map(|e| e.rpc).collect();
    let mut served: Vec<_> = POLICY_TABLE.iter().map(|p| p.path).collect();
    expected.sort_unstable();
    served.sort_unstable();
    assert_eq!(
        expected, served,
        "every served RPC needs a written expectation here"
    );
}

#[tokio::test]
async fn every_rpc_for_every_role_elevated_or_not() {
    let dir = DevDir::new();
    let daemon = RunningDaemon::start(&dir).await;
    let anonymous = daemon.client().await;
    let mut root = bootstrap_super_admin(&dir, &anonymous, "root").await;
    let admin_session = log_in(&anonymous, &mut root).await;
    elevate(&admin_session, &mut root).await;

    let mut failures = Vec::new();
    check_row(&anonymous, 0, false, &mut failures).await;

    let roles = [
        (1, pb::UserRole::Viewer, "viewer"),
        (2, pb::UserRole::Operator, "operator"),
        (3, pb::UserRole::Admin, "admin"),
    ];
    let mut people: Vec<(u8, Person)> = Vec::new();
    for (rank, role, name) in roles {
        people.push((rank, invite(&admin_session, &anonymous, name, role).await));
    }
    for (rank, person) in &mut people {
        let session = log_in(&anonymous, person).await;
        check_row(&session, *rank, false, &mut failures).await;
        let session = log_in_with_recovery_code(&anonymous, person).await;
        elevate(&session, person).await;
        check_row(&session, *rank, true, &mut failures).await;
    }
    // The super-admin: a fresh, unelevated session first, then the elevated one.
    let fresh = log_in_with_recovery_code(&anonymous, &mut root).await;
    check_row(&fresh, 4, false, &mut failures).await;
    check_row(&admin_session, 4, true, &mut failures).await;
    assert!(
        failures.is_empty(),
        "{} cells wrong:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
