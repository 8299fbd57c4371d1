//! PAM biometric login and elevation, and the OS-account link they use.
//!
//! Invariant: PAM runs only for an active user linked (by a super-admin) to
//! an OS account, only for a socket peer running as that OS account (or
//! root, when configured), and only after the brute-force defence let the
//! attempt through; every check that does not end in success — refused,
//! timed out, abandoned by the client — counts as a biometric failure (five
//! in a row lock the path until password + TOTP succeeds); success gives the
//! same session or elevation as the other methods.

use super::{
    account::UserProfile,
    admin::ActingUser,
    elevation::ElevationMethod,
    engine::AuthEngine,
    error::AuthError,
    input,
    lockout::AttemptKey,
    login::LoginOutcome,
    pam::{PamBridge, PamError, PamStep},
    role::Role,
    sessions::Session,
};
use crate::{
    audit::AccountAction, clock::UnixMillis, store::UserChange, transport::PeerCredentials,
};

/// What a caller is told when PAM login cannot be used for a user; the same
/// for unknown, inactive and unlinked users and for a client running as
/// another OS user, so it reveals no account and no link.
const NOT_SET_UP: &str = "PAM biometric login is not set up for this user from this OS account; \
     log in with password + TOTP";
const NOT_CONFIGURED: &str =
    "PAM biometric login is not configured on this host (auth.pam.service); use password + TOTP";
/// Longest OS account name (useradd's limit).
const MAX_OS_ACCOUNT_CHARS: usize = 32;

/// Why the check ran: decides the audit action of a failure.
#[derive(Debug, Clone, Copy)]
enum Purpose {
    Login,
    Elevate,
}

impl AuthEngine {
    /// Whether PAM login is configured on this host.
    #[must_use]
    pub fn pam_configured(&self) -> bool {
        self.pam.is_some()
    }

    /// The OS account PAM checks for user `user_id` when `peer` asks: set
    /// only if PAM is configured, the user is linked, and the peer runs as
    /// that OS account (or is root and `allow_root_peer` is on).
    pub(super) async fn pam_usable_by(
        &self,
        user_id: i64,
        peer: PeerCredentials,
    ) -> Result<Option<String>, AuthError> {
        if self.pam.is_none() {
            return Ok(None);
        }
        let Some(os_account) = self.store.os_account(user_id).await? else {
            return Ok(None);
        };
        if peer.uid == 0 && self.config.pam.allow_root_peer {
            return Ok(Some(os_account));
        }
        let uid = self.os_uids.uid_of(&os_account, self.now()).await?;
        Ok((uid == Some(peer.uid)).then_some(os_account))
    }

    /// Logs `username` in through the PAM stack, talking over `bridge`.
    pub async fn login_with_pam(
        &self,
        peer: PeerCredentials,
        username: &str,
        bridge: PamBridge,
    ) -> Result<LoginOutcome, AuthError> {
        let began = self.sessions.login_epoch();
        let username = input::username(username)?;
        if self.pam.is_none() {
            return Err(AuthError::BiometricUnavailable(NOT_CONFIGURED));
        }
        let Some(account) = self.active_account(username).await? else {
            return Err(AuthError::BiometricUnavailable(NOT_SET_UP));
        };
        let Some(os_account) = self.pam_usable_by(account.row.id, peer).await? else {
            return Err(AuthError::BiometricUnavailable(NOT_SET_UP));
        };
        self.check_with_pam(username, &os_account, peer, Purpose::Login, bridge)
            .await?;
        self.finish_login(&account, peer, "pam", began).await
    }

    /// Elevates the caller's session through the PAM stack.
    pub async fn elevate_with_pam(
        &self,
        session: &Session,
        peer: PeerCredentials,
        bridge: PamBridge,
    ) -> Result<Session, AuthError> {
        if self.pam.is_none() {
            return Err(AuthError::BiometricUnavailable(NOT_CONFIGURED));
        }
        let Some(os_account) = self.pam_usable_by(session.user_id, peer).await? else {
            return Err(AuthError::BiometricUnavailable(NOT_SET_UP));
        };
        self.check_with_pam(
            &session.username,
            &os_account,
            peer,
            Purpose::Elevate,
            bridge,
        )
        .await?;
        self.grant_elevation(session, peer, ElevationMethod::Pam)
            .await
    }

    async fn check_with_pam(
        &self,
        username: &str,
        os_account: &str,
        peer: PeerCredentials,
        purpose: Purpose,
        bridge: PamBridge,
    ) -> Result<(), AuthError> {
        let Some(pam) = self.pam.as_ref() else {
            return Err(AuthError::BiometricUnavailable(NOT_CONFIGURED));
        };
        // Nothing runs without a slot, and a refusal for want of one is no
        // failed proof.
        let slot = pam
            .reserve(peer.uid)
            .map_err(|_| AuthError::BiometricBusy)?;
        let biometric = AttemptKey::Biometric(username.to_owned(), peer.uid);
        let attempt = self.throttle(&biometric, Some(peer)).await?;
        let refused = match pam.check(slot, os_account, bridge).await {
            Ok(()) => {
                self.succeed(attempt).await;
                return Ok(());
            }
            Err(refused) => refused,
        };
        let action = match purpose {
            Purpose::Login => AccountAction::LoginFailed,
            Purpose::Elevate => AccountAction::ElevationFailed,
        };
        let reason = format!("pam: {refused}");
        self.fail(attempt, Some(peer), action, &biometric, &reason)
            .await;
        Err(match refused {
            PamError::TimedOut(after) => AuthError::BiometricTimedOut(after),
            PamError::Refused {
                step: PamStep::AccountManagement,
                reason,
            } => AuthError::OsAccountRefused(reason),
            PamError::Refused { reason, .. } => AuthError::BiometricRejected(reason),
            PamError::Abandoned => AuthError::BiometricRejected(refused.to_string()),
            PamError::Unavailable(reason) => {
                AuthError::internal("PAM check could not run", &reason)
            }
            PamError::Busy | PamError::PeerBusy => AuthError::BiometricBusy,
        })
    }

    /// Links `username` to `os_account` for PAM login (`None` removes the
    /// link). Super-admins only; the OS account must exist on this host.
    pub async fn link_os_account(
        &self,
        by: ActingUser<'_>,
        username: &str,
        os_account: Option<&str>,
    ) -> Result<UserProfile, AuthError> {
        if by.session.role != Role::SuperAdmin {
            return Err(AuthError::NotAllowed(
                "only a super-admin may link occcd users to OS accounts".to_owned(),
            ));
        }
        let account = self.account(input::username(username)?).await?;
        let detail = match os_account {
            Some(os_account) => {
                check_os_account_name(os_account)?;
                require_os_account(os_account).await?;
                self.store
                    .link_os_account(account.row.id, os_account, self.now().0)
                    .await?;
                format!("linked to OS account {os_account}")
            }
            None => {
                self.store.unlink_os_account(account.row.id).await?;
                "OS account link removed".to_owned()
            }
        };
        // How the user proves themselves changed: their sessions (and PAM
        // checks under way against the old link) end — the caller's own
        // goes on, without a PAM elevation.
        let bump = UserChange {
            bump_generation: true,
            ..UserChange::default()
        };
        let generation = self.update_account(account.row.id, &bump).await?;
        let keep = (account.row.id == by.session.user_id).then_some(by.session);
        let ended = self
            .supersede(&account, Some(generation), keep, |method| {
                *method == ElevationMethod::Pam
            })
            .await?;
        self.record(
            by.actor(),
            AccountAction::OsAccountLinked,
            Some(&account.row.username),
            Some(format!("{detail}; {ended} sessions ended")),
        )
        .await;
        self.profile(&account).await
    }
}

/// useradd's default rule: lower-case letter or `_` first, then letters,
/// digits, `_` and `-`, at most 32 characters.
fn check_os_account_name(name: &str) -> Result<(), AuthError> {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_');
    let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_-".contains(c));
    if first_ok && rest_ok && name.len() <= MAX_OS_ACCOUNT_CHARS {
        return Ok(());
    }
    Err(AuthError::InvalidInput {
        field: "os_account",
        reason: format!(
            "must be an OS user name: a lower-case letter or _ first, then a-z, 0-9, _ or -, at most {MAX_OS_ACCOUNT_CHARS} characters"
        ),
    })
}

/// OS account uids looked up lately: `getpwnam` may ask NSS (LDAP, sssd),
/// and anonymous callers may ask for them.
#[derive(Debug, Default)]
pub struct OsAccountUids {
    known: std::sync::Mutex<std::collections::HashMap<String, (Option<u32>, UnixMillis)>>,
}

/// How long a looked-up uid is reused.
const UID_TTL: std::time::Duration = std::time::Duration::from_secs(60);
/// Most names remembered.
const UID_CACHE_ENTRIES: usize = 1024;

impl OsAccountUids {
    /// The uid of OS account `name` (`None`: no such account).
    pub async fn uid_of(&self, name: &str, now: UnixMillis) -> Result<Option<u32>, AuthError> {
        let cached = self
            .known
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(name)
            .copied()
            .filter(|(_, at)| now.since(*at) < UID_TTL);
        if let Some((uid, _)) = cached {
            return Ok(uid);
        }
        let uid = os_account_uid(name).await?;
        let mut known = self
            .known
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if known.len() >= UID_CACHE_ENTRIES {
            known.clear();
        }
        known.insert(name.to_owned(), (uid, now));
        Ok(uid)
    }
}

/// The uid of OS account `name`, if it exists.
async fn os_account_uid(name: &str) -> Result<Option<u32>, AuthError> {
    let lookup_name = name.to_owned();
    // getpwnam may ask NSS (LDAP, sssd): keep it off the runtime.
    let found = tokio::task::spawn_blocking(move || nix::unistd::User::from_name(&lookup_name))
        .await
        .map_err(|err| AuthError::internal("OS account lookup failed", &err))?
        .map_err(|err| AuthError::internal("OS account lookup failed", &err))?;
    Ok(found.map(|user| user.uid.as_raw()))
}

async fn require_os_account(name: &str) -> Result<(), AuthError> {
    if os_account_uid(name).await?.is_none() {
        return Err(AuthError::InvalidInput {
            field: "os_account",
            reason: format!("no OS account named {name:?} on this host; create it first"),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_account_names_follow_useradd() {
        for good in ["alice", "_svc", "bob-2", "a_b"] {
            assert!(check_os_account_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "Alice",
            "1bob",
            "bob smith",
            "../etc",
            "bob\0",
            &"a".repeat(33),
        ] {
            assert!(check_os_account_name(bad).is_err(), "{bad:?}");
        }
    }
}
