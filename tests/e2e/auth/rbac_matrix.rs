//! The RBAC matrix: every RPC × every role × not elevated / elevated by a
//! weaker factor (TOTP alone, a device key) / elevated with the password,
//! against expectations written here from the seed's role table —
//! independently of the daemon's policy table, which the test only uses to
//! check coverage.

use std::str::FromStr;

use occc_client::{DeviceCredential, OcccClient, SoftwareAuthenticator, proto as pb};
use occc_tests::{
    DevDir, RunningDaemon,
    people::{
        Person, bootstrap_super_admin, elevate, elevate_with_recovery_code, elevate_with_totp,
        invite, log_in, log_in_with_recovery_code,
    },
};
use occcd::gate::POLICY_TABLE;
use tonic::{Code, Request, codegen::http::uri::PathAndQuery};

/// How a session has re-authenticated, weakest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Level {
    /// Not at all.
    None,
    /// A TOTP code alone, a device key or PAM.
    Weaker,
    /// The password and a second factor.
    Password,
}

/// Who may call an RPC: 0 anyone, 1 viewer, 2 operator, 3 admin, 4
/// super-admin; and the re-authentication it needs.
struct Expectation {
    rpc: &'static str,
    min_rank: u8,
    needs: Level,
    streaming: bool,
}

const fn rpc(rpc: &'static str, min_rank: u8, elevated: bool) -> Expectation {
    Expectation {
        rpc,
        min_rank,
        needs: if elevated { Level::Weaker } else { Level::None },
        streaming: false,
    }
}

/// Changing one's own credentials: the password must be re-proved.
const fn credential(rpc: &'static str) -> Expectation {
    needs_password(rpc, 1)
}

/// Granting access or changing credentials: the password must be re-proved.
const fn needs_password(rpc: &'static str, min_rank: u8) -> Expectation {
    Expectation {
        rpc,
        min_rank,
        needs: Level::Password,
        streaming: false,
    }
}

const EXPECTED: &[Expectation] = &[
    Expectation {
        rpc: "/grpc.health.v1.Health/Check",
        min_rank: 0,
        needs: Level::None,
        streaming: false,
    },
    Expectation {
        rpc: "/grpc.health.v1.Health/Watch",
        min_rank: 0,
        needs: Level::None,
        streaming: true,
    },
    Expectation {
        rpc: "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        min_rank: 0,
        needs: Level::None,
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
    // Revoking ends the owner's other sessions: a stolen key must not be
    // able to log the owner out and stay.
    credential("/occc.v1.DeviceKeys/RevokeDeviceKey"),
    rpc("/occc.v1.Auth/Elevate", 1, false),
    rpc("/occc.v1.Auth/WhoAmI", 1, false),
    rpc("/occc.v1.Auth/ListMySessions", 1, false),
    rpc("/occc.v1.Auth/ConfirmTotpReenrollment", 1, false),
    // A stolen device key or a fingerprint must not become a new password,
    // TOTP secret, recovery codes or device key.
    credential("/occc.v1.DeviceKeys/RegisterDeviceKey"),
    credential("/occc.v1.Auth/ChangePassword"),
    credential("/occc.v1.Auth/StartTotpReenrollment"),
    // viewer: view active sessions; operator: view logs; admin: view all sessions.
    rpc("/occc.v1.Users/ListActiveSessions", 1, false),
    rpc("/occc.v1.Audit/VerifyChain", 2, false),
    rpc("/occc.v1.Audit/ListAuditEntries", 3, false),
    rpc("/occc.v1.Audit/GetAuditPublicKey", 1, false),
    Expectation {
        rpc: "/occc.v1.Audit/WatchAudit",
        min_rank: 3,
        needs: Level::None,
        streaming: true,
    },
    Expectation {
        rpc: "/occc.v1.Audit/ExportAudit",
        min_rank: 3,
        needs: Level::None,
        streaming: true,
    },
    rpc("/occc.v1.Users/ListAllSessions", 3, false),
    // super-admin: manage users (changes need re-authentication; those that
    // grant access or credentials need the password re-proved).
    rpc("/occc.v1.Users/ListUsers", 4, false),
    needs_password("/occc.v1.Users/CreateUser", 4),
    needs_password("/occc.v1.Users/SetUserRole", 4),
    rpc("/occc.v1.Users/DisableUser", 4, true),
    needs_password("/occc.v1.Users/EnableUser", 4),
    rpc("/occc.v1.Users/DeleteUser", 4, true),
    needs_password("/occc.v1.Users/ResetTotp", 4),
    rpc("/occc.v1.Users/UnlockUser", 4, true),
    rpc("/occc.v1.Users/RevokeSession", 4, true),
    rpc("/occc.v1.Users/RevokeUserSessions", 4, true),
    needs_password("/occc.v1.Users/LinkOsAccount", 4),
    // Container integrity: viewers see; operators run checks and the
    // environment; admins pin baselines and acknowledge findings (elevated)
    // and read snapshots;
    // super-admins release quarantines (elevated).
    rpc("/occc.v1.Integrity/GetIntegrityStatus", 1, false),
    Expectation {
        rpc: "/occc.v1.Integrity/WatchIntegrity",
        min_rank: 1,
        needs: Level::None,
        streaming: true,
    },
    rpc("/occc.v1.Integrity/ListFindings", 1, false),
    rpc("/occc.v1.Integrity/RunChecks", 2, false),
    rpc("/occc.v1.Integrity/AcknowledgeFindings", 3, true),
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
        needs: Level::None,
        streaming: true,
    },
    // Skills: admins submit, reject and revoke (the last two elevated);
    // everyone signed in reads; admins and up approve, elevated (the level
    // decides further, in the domain).
    rpc("/occc.v1.Skills/SubmitSkill", 3, false),
    rpc("/occc.v1.Skills/SubmitSkillFolder", 3, false),
    rpc("/occc.v1.Skills/ListSkills", 1, false),
    rpc("/occc.v1.Skills/GetSkill", 1, false),
    rpc("/occc.v1.Skills/DiffSkill", 1, false),
    rpc("/occc.v1.Skills/ApproveSkill", 3, true),
    rpc("/occc.v1.Skills/RejectSkill", 3, true),
    rpc("/occc.v1.Skills/RevokeSkill", 3, true),
    // OpenClaw's config: everyone signed in reads it (redacted); admins
    // check, list, read versions and edit (elevated); only a super-admin
    // restores, elevated.
    rpc("/occc.v1.Config/GetConfig", 1, false),
    rpc("/occc.v1.Config/CheckConfig", 3, false),
    rpc("/occc.v1.Config/UpdateConfig", 3, true),
    rpc("/occc.v1.Config/ListConfigVersions", 3, false),
    rpc("/occc.v1.Config/GetConfigVersion", 3, false),
    rpc("/occc.v1.Config/DiffConfigVersions", 3, false),
    rpc("/occc.v1.Config/RestoreConfigVersion", 4, true),
    Expectation {
        rpc: "/occc.v1.Backups/CreateBackup",
        min_rank: 4,
        needs: Level::Weaker,
        streaming: true,
    },
    // Last but one: it ends the person's other sessions, and the elevation
    // of this one if it was obtained with a recovery code.
    credential("/occc.v1.Auth/RegenerateRecoveryCodes"),
    // Last: it ends the session it is called with.
    rpc("/occc.v1.Auth/Logout", 1, false),
];

/// Calls `path` with an empty message (a stream is opened and dropped at
/// once: the gate answers in the response's headers); returns the code and
/// the gate's denial reason (`occc-denial` metadata), if the gate refused.
async fn call(client: &OcccClient, path: &str, streaming: bool) -> (Code, Option<String>) {
    let mut grpc = tonic::client::Grpc::new(client.session_channel());
    grpc.ready().await.unwrap();
    let codec = tonic_prost::ProstCodec::<(), ()>::default();
    let path = PathAndQuery::from_str(path).unwrap();
    let answered = if streaming {
        grpc.server_streaming(Request::new(()), path, codec)
            .await
            .map(drop)
    } else {
        grpc.unary(Request::new(()), path, codec).await.map(drop)
    };
    match answered {
        Ok(()) => (Code::Ok, None),
        Err(status) => {
            let denial = status
                .metadata()
                .get("occc-denial")
                .map(|v| v.to_str().unwrap().to_owned());
            (status.code(), denial)
        }
    }
}

async fn check_row(client: &OcccClient, rank: u8, level: Level, failures: &mut Vec<String>) {
    for expectation in EXPECTED {
        let allowed = rank >= expectation.min_rank && level >= expectation.needs;
        let (code, denial) = call(client, expectation.rpc, expectation.streaming).await;
        let ok = match (allowed, denial.as_deref()) {
            (true, None) => true,
            (false, Some("login-required")) => rank == 0 && code == Code::Unauthenticated,
            (false, Some("forbidden")) => {
                rank < expectation.min_rank && code == Code::PermissionDenied
            }
            (false, Some("elevation-required")) => {
                rank >= expectation.min_rank
                    && level == Level::None
                    && expectation.needs != Level::Password
                    && code == Code::PermissionDenied
            }
            (false, Some("password-elevation-required")) => {
                rank >= expectation.min_rank
                    && level < Level::Password
                    && expectation.needs == Level::Password
                    && code == Code::PermissionDenied
            }
            _ => false,
        };
        if !ok {
            failures.push(format!(
                "{} as rank {rank} elevated {level:?}: expected allowed={allowed}, got {code:?} {denial:?}",
                expectation.rpc
            ));
        }
    }
}

/// Every row for `person` (of `rank`): not elevated, elevated with TOTP,
/// elevated with a device key, elevated with the password. Returns the
/// client holding the password-elevated session, checked last (its
/// RegenerateRecoveryCodes ends the others, its Logout ends it).
async fn check_person(
    anonymous: &OcccClient,
    person: &mut Person,
    rank: u8,
    failures: &mut Vec<String>,
) {
    let plain = log_in(anonymous, person).await;
    check_row(&plain, rank, Level::None, failures).await;
    let totp = log_in_with_recovery_code(anonymous, person).await;
    elevate_with_totp(&totp, person).await;
    check_row(&totp, rank, Level::Weaker, failures).await;
    let strong = log_in_with_recovery_code(anonymous, person).await;
    elevate_with_recovery_code(&strong, person).await;
    let key = SoftwareAuthenticator::generate().unwrap();
    let key_id = strong
        .register_device_key("matrix", &key)
        .await
        .unwrap()
        .key_id;
    let device = DeviceCredential {
        key_id: &key_id,
        authenticator: &key,
    };
    let by_key = anonymous
        .login_with_device_key(&person.username, &device)
        .await
        .unwrap();
    by_key.elevate_with_device_key(&device).await.unwrap();
    check_row(&by_key, rank, Level::Weaker, failures).await;
    check_row(&strong, rank, Level::Password, failures).await;
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
async fn every_rpc_for_every_role_and_every_kind_of_elevation() {
    let dir = DevDir::new();
    let daemon = RunningDaemon::start(&dir).await;
    let anonymous = daemon.client().await;
    let mut root = bootstrap_super_admin(&dir, &anonymous, "root").await;
    let admin_session = log_in(&anonymous, &mut root).await;
    elevate(&admin_session, &mut root).await;

    let mut failures = Vec::new();
    check_row(&anonymous, 0, Level::None, &mut failures).await;

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
        check_person(&anonymous, person, *rank, &mut failures).await;
    }
    check_person(&anonymous, &mut root, 4, &mut failures).await;
    assert!(
        failures.is_empty(),
        "{} cells wrong:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
