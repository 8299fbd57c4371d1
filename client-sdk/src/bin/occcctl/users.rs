//! `occcctl users …` and `occcctl sessions …`: accounts and sessions for
//! super-admins and admins.
//!
//! Invariant: every change goes through [`elevating`], so a refusal for want
//! of re-authentication asks for it once and retries; `--json` prints the
//! API's own messages (serde on the generated types).

use clap::Subcommand;
use occc_client::{ClientError, OcccClient, proto as pb};
use serde::Serialize;

use crate::{
    elevate::elevating,
    output::print_json,
    time::{format_unix_ms, human_duration},
};

/// `occcctl users …`
#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Every account (super-admin).
    List,
    /// Invite someone: prints the one-time enrolment token to give them.
    Create {
        username: String,
        /// viewer, operator, admin or super-admin.
        #[arg(long, default_value = "viewer")]
        role: String,
    },
    /// Change someone's role (their sessions end).
    Role { username: String, role: String },
    /// Disable an account (its sessions end).
    Disable { username: String },
    /// Enable a disabled account.
    Enable { username: String },
    /// Delete an account for good.
    Delete { username: String },
    /// Start their TOTP over: prints a new enrolment token.
    ResetTotp { username: String },
    /// Lift a lock after failed logins.
    Unlock { username: String },
    /// Link the OS account PAM biometrics use for them.
    LinkOs {
        username: String,
        os_account: String,
    },
}

/// `occcctl sessions …`
#[derive(Debug, Subcommand)]
pub enum SessionsCommand {
    /// Sessions: everyone's (admin), or who is signed in (--active, viewer and up).
    List {
        #[arg(long)]
        active: bool,
    },
    /// End one session by id, or every session of --user.
    Revoke {
        /// The session id (from `sessions list`).
        #[arg(required_unless_present = "user")]
        session_id: Option<String>,
        #[arg(long, conflicts_with = "session_id")]
        user: Option<String>,
    },
}

/// A role name as the API's enum.
pub fn parse_role(name: &str) -> Result<pb::UserRole, ClientError> {
    match name.to_ascii_lowercase().replace('_', "-").as_str() {
        "viewer" => Ok(pb::UserRole::Viewer),
        "operator" => Ok(pb::UserRole::Operator),
        "admin" => Ok(pb::UserRole::Admin),
        "super-admin" | "superadmin" => Ok(pb::UserRole::SuperAdmin),
        _ => Err(ClientError::Input(format!(
            "role {name:?}: one of viewer, operator, admin, super-admin"
        ))),
    }
}

/// A role as people write it.
pub fn role_name(role: pb::UserRole) -> &'static str {
    match role {
        pb::UserRole::Viewer => "viewer",
        pb::UserRole::Operator => "operator",
        pb::UserRole::Admin => "admin",
        pb::UserRole::SuperAdmin => "super-admin",
        pb::UserRole::Unspecified => "unknown",
    }
}

fn print_user(user: &pb::UserProfile, json: bool) -> Result<(), ClientError> {
    if json {
        return print_json(user);
    }
    let state = match user.state() {
        pb::UserState::Active => "active",
        pb::UserState::Enrolling => "enrolling",
        pb::UserState::Disabled => "disabled",
        pb::UserState::Unspecified => "unknown",
    };
    let mut notes = Vec::new();
    if let Some(until) = user.locked_until_unix_ms {
        notes.push(format!("locked until {}", format_unix_ms(until)));
    }
    if let Some(os) = &user.os_account {
        notes.push(format!("OS account {os}"));
    }
    println!(
        "{:<24} {:<12} {:<10} recovery codes {:>2}  {}",
        user.username,
        role_name(user.role()),
        state,
        user.recovery_codes_left,
        notes.join(", ")
    );
    Ok(())
}

fn user_ref(username: &str) -> pb::UserRef {
    pb::UserRef {
        username: username.to_owned(),
    }
}

/// Runs `occcctl users …`.
pub async fn users(
    client: &OcccClient,
    command: &UsersCommand,
    json: bool,
) -> Result<bool, ClientError> {
    let users = || client.users();
    let profile = match command {
        UsersCommand::List => return list_users(client, json).await,
        UsersCommand::Create { username, role } => {
            let role = parse_role(role)?;
            let request = pb::CreateUserRequest {
                username: username.clone(),
                role: role.into(),
            };
            let created = elevating(client, || async {
                users().create_user(request.clone()).await
            })
            .await?;
            return print_invitation(created.into_inner(), json);
        }
        UsersCommand::ResetTotp { username } => {
            let reset = elevating(client, || async {
                users().reset_totp(user_ref(username)).await
            })
            .await?;
            return print_invitation(reset.into_inner(), json);
        }
        UsersCommand::Delete { username } => {
            elevating(client, || async {
                users().delete_user(user_ref(username)).await
            })
            .await?;
            if !json {
                println!("deleted {username}");
            }
            return Ok(true);
        }
        UsersCommand::Role { username, role } => {
            let request = pb::SetUserRoleRequest {
                username: username.clone(),
                role: parse_role(role)?.into(),
            };
            elevating(client, || async {
                users().set_user_role(request.clone()).await
            })
            .await?
        }
        UsersCommand::Disable { username } => {
            elevating(client, || async {
                users().disable_user(user_ref(username)).await
            })
            .await?
        }
        UsersCommand::Enable { username } => {
            elevating(client, || async {
                users().enable_user(user_ref(username)).await
            })
            .await?
        }
        UsersCommand::Unlock { username } => {
            elevating(client, || async {
                users().unlock_user(user_ref(username)).await
            })
            .await?
        }
        UsersCommand::LinkOs {
            username,
            os_account,
        } => {
            let request = pb::LinkOsAccountRequest {
                username: username.clone(),
                os_account: os_account.clone(),
            };
            elevating(client, || async {
                users().link_os_account(request.clone()).await
            })
            .await?
        }
    };
    print_user(&profile.into_inner(), json)?;
    Ok(true)
}

async fn list_users(client: &OcccClient, json: bool) -> Result<bool, ClientError> {
    let mut page_token = String::new();
    loop {
        let request = pb::ListUsersRequest {
            page_size: 500,
            page_token: page_token.clone(),
        };
        let page = elevating(client, || async {
            client.users().list_users(request.clone()).await
        })
        .await?
        .into_inner();
        for user in &page.users {
            print_user(user, json)?;
        }
        if page.next_page_token.is_empty() {
            return Ok(true);
        }
        page_token = page.next_page_token;
    }
}

/// The enrolment token is shown once: it is what the person needs.
fn print_invitation(created: pb::CreateUserResponse, json: bool) -> Result<bool, ClientError> {
    let user = created.user.clone().unwrap_or_default();
    if json {
        #[derive(Serialize)]
        struct Invitation<'a> {
            user: &'a pb::UserProfile,
            enrollment_token: &'a str,
            enrollment_expires_at_unix_ms: i64,
        }
        print_json(&Invitation {
            user: &user,
            enrollment_token: &created.enrollment_token,
            enrollment_expires_at_unix_ms: created.enrollment_expires_at_unix_ms,
        })?;
    } else {
        print_user(&user, false)?;
        println!(
            "give {} this one-time enrolment token (valid until {}):\n  {}\nthey run: occcctl enroll --token <token>",
            user.username,
            format_unix_ms(created.enrollment_expires_at_unix_ms),
            created.enrollment_token
        );
    }
    Ok(true)
}

/// Runs `occcctl sessions …`.
pub async fn sessions(
    client: &OcccClient,
    command: &SessionsCommand,
    json: bool,
) -> Result<bool, ClientError> {
    match command {
        SessionsCommand::List { active: true } => {
            let list = client
                .users()
                .list_active_sessions(pb::ListActiveSessionsRequest {})
                .await?
                .into_inner();
            for session in &list.sessions {
                if json {
                    print_json(session)?;
                } else {
                    println!(
                        "{:<24} {:<12} since {}",
                        session.username,
                        role_name(session.role()),
                        format_unix_ms(session.since_unix_ms)
                    );
                }
            }
        }
        SessionsCommand::List { active: false } => {
            let list = client
                .users()
                .list_all_sessions(pb::ListAllSessionsRequest {})
                .await?
                .into_inner();
            let now = chrono::Utc::now().timestamp_millis();
            for session in &list.sessions {
                if json {
                    print_json(session)?;
                } else {
                    let idle = u64::try_from((now - session.last_seen_unix_ms) / 1000).unwrap_or(0);
                    println!(
                        "{}  {:<20} {:<12} uid {:<6} idle {:<9} ends {}{}",
                        session.session_id,
                        session.username,
                        role_name(session.role()),
                        session.peer_uid,
                        human_duration(idle),
                        format_unix_ms(
                            session
                                .expires_at_unix_ms
                                .min(session.idle_expires_at_unix_ms)
                        ),
                        if session.current { "  (this one)" } else { "" }
                    );
                }
            }
        }
        SessionsCommand::Revoke { session_id, user } => {
            let revoked = match (session_id, user) {
                (_, Some(username)) => {
                    elevating(client, || async {
                        client
                            .users()
                            .revoke_user_sessions(user_ref(username))
                            .await
                    })
                    .await?
                }
                (Some(id), None) => {
                    let request = pb::RevokeSessionRequest {
                        session_id: id.clone(),
                    };
                    elevating(client, || async {
                        client.users().revoke_session(request.clone()).await
                    })
                    .await?
                }
                (None, None) => {
                    return Err(ClientError::Input("give a session id or --user".into()));
                }
            };
            if json {
                print_json(&revoked.into_inner())?;
            } else {
                println!("revoked {} session(s)", revoked.into_inner().revoked);
            }
        }
    }
    Ok(true)
}
