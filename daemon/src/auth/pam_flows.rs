//! PAM biometric login and elevation, and the OS-account link they use.
//!
//! Invariant: PAM runs only for an active user linked (by a super-admin) to
//! an OS account, only for a socket peer running as that OS account (or
//! root, when configured), and only after the brute-force defence let the
//! attempt through; every check that does not end in success — refused,
//! timed out, abandoned by the client — counts as a biometric failure (five
//! in a row lock the path until password + TOTP succeeds); success gives the
//! same session or elevation as the other methods. A reload replaces the
//! PAM settings for checks that start after it; a check already running
//! finishes under the settings (and slots) it started with.

use std::sync::{Arc, PoisonError, RwLock};

use super::{
    account::UserProfile,
    admin::ActingUser,
    elevation::ElevationMethod,
    error::AuthError,
    input,
    lockout::AttemptKey,
    os_accounts::OsAccountUids,
    os_accounts::{check_os_account_name, require_os_account},
    pam::{PamAuthenticator, PamSlots},
    pam::{PamBridge, PamError, PamStep},
    role::Role,
    session_keeping::LoginOutcome,
    sessions::Session,
    shared::AuthCore,
};
use crate::{audit::AccountAction, store::UserChange, transport::PeerCredentials};

/// What a caller is told when PAM login cannot be used for a user; the same
/// for unknown, inactive and unlinked users and for a client running as
/// another OS user, so it reveals no account and no link.
const NOT_SET_UP: &str = "PAM biometric login is not set up for this user from this OS account; \
     log in with password + TOTP";
const NOT_CONFIGURED: &str =
    "PAM biometric login is not configured on this host (auth.pam.service); use password + TOTP";
/// Who a PAM check is for, and why.
#[derive(Debug, Clone, Copy)]
struct Check<'a> {
    username: &'a str,
    os_account: &'a str,
    peer: PeerCredentials,
    purpose: Purpose,
}

/// Why the check ran: decides the audit action of a failure.
#[derive(Debug, Clone, Copy)]
enum Purpose {
    Login,
    Elevate,
}

/// PAM biometric login and elevation, and linking accounts to OS accounts.
#[derive(Debug)]
pub struct PamLogins {
    core: Arc<AuthCore>,
    pam: RwLock<Option<Arc<PamAuthenticator>>>,
    /// Shared by every authenticator a reload builds.
    slots: PamSlots,
    os_uids: OsAccountUids,
}

impl PamLogins {
    pub(super) fn new(core: Arc<AuthCore>, config: &crate::config::PamConfig) -> Self {
        let slots = PamSlots::default();
        Self {
            core,
            pam: RwLock::new(PamAuthenticator::sharing(config, &slots).map(Arc::new)),
            slots,
            os_uids: OsAccountUids::default(),
        }
    }

    /// Whether PAM login is configured on this host.
    #[must_use]
    pub fn pam_configured(&self) -> bool {
        self.current().is_some()
    }

    /// Replaces the PAM settings (a reload) for checks that start from now.
    pub fn reconfigure(&self, config: &crate::config::PamConfig) {
        let next = PamAuthenticator::sharing(config, &self.slots).map(Arc::new);
        *self.pam.write().unwrap_or_else(PoisonError::into_inner) = next;
    }

    fn current(&self) -> Option<Arc<PamAuthenticator>> {
        self.pam
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The OS account PAM checks for user `user_id` when `peer` asks: set
    /// only if PAM is configured, the user is linked, and the peer runs as
    /// that OS account (or is root and `allow_root_peer` is on).
    pub(super) async fn pam_usable_by(
        &self,
        user_id: i64,
        peer: PeerCredentials,
    ) -> Result<Option<String>, AuthError> {
        match self.current() {
            Some(pam) => self.usable_with(&pam, user_id, peer).await,
            None => Ok(None),
        }
    }

    /// [`Self::pam_usable_by`] under the settings `pam` a request took.
    async fn usable_with(
        &self,
        pam: &PamAuthenticator,
        user_id: i64,
        peer: PeerCredentials,
    ) -> Result<Option<String>, AuthError> {
        let Some(os_account) = self.core.store.os_account(user_id).await? else {
            return Ok(None);
        };
        if peer.uid == 0 && pam.allows_root_peer() {
            return Ok(Some(os_account));
        }
        let uid = self.os_uids.uid_of(&os_account, self.core.now()).await?;
        Ok((uid == Some(peer.uid)).then_some(os_account))
    }

    /// Logs `username` in through the PAM stack, talking over `bridge`.
    pub async fn login_with_pam(
        &self,
        peer: PeerCredentials,
        username: &str,
        bridge: PamBridge,
    ) -> Result<LoginOutcome, AuthError> {
        let began = self.core.sessions.login_epoch();
        let username = input::username(username)?;
        // One snapshot of the settings for the whole request (a reload may
        // replace them meanwhile).
        let Some(pam) = self.current() else {
            return Err(AuthError::BiometricUnavailable(NOT_CONFIGURED));
        };
        let Some(account) = self.core.active_account(username).await? else {
            return Err(AuthError::BiometricUnavailable(NOT_SET_UP));
        };
        let Some(os_account) = self.usable_with(&pam, account.row.id, peer).await? else {
            return Err(AuthError::BiometricUnavailable(NOT_SET_UP));
        };
        let check = Check {
            username,
            os_account: &os_account,
            peer,
            purpose: Purpose::Login,
        };
        self.check_with_pam(&pam, check, bridge).await?;
        self.core.finish_login(&account, peer, "pam", began).await
    }

    /// Elevates the caller's session through the PAM stack.
    pub async fn elevate_with_pam(
        &self,
        session: &Session,
        peer: PeerCredentials,
        bridge: PamBridge,
    ) -> Result<Session, AuthError> {
        let Some(pam) = self.current() else {
            return Err(AuthError::BiometricUnavailable(NOT_CONFIGURED));
        };
        let Some(os_account) = self.usable_with(&pam, session.user_id, peer).await? else {
            return Err(AuthError::BiometricUnavailable(NOT_SET_UP));
        };
        let check = Check {
            username: &session.username,
            os_account: &os_account,
            peer,
            purpose: Purpose::Elevate,
        };
        self.check_with_pam(&pam, check, bridge).await?;
        self.core
            .grant_elevation(session, peer, ElevationMethod::Pam)
            .await
    }

    async fn check_with_pam(
        &self,
        pam: &PamAuthenticator,
        check: Check<'_>,
        bridge: PamBridge,
    ) -> Result<(), AuthError> {
        let Check {
            username,
            os_account,
            peer,
            purpose,
        } = check;
        // Nothing runs without a slot, and a refusal for want of one is no
        // failed proof.
        let slot = pam
            .reserve(peer.uid)
            .map_err(|_| AuthError::BiometricBusy)?;
        let biometric = AttemptKey::Biometric(username.to_owned(), peer.uid);
        let attempt = self.core.throttle(&biometric, Some(peer)).await?;
        let refused = match pam.check(slot, os_account, bridge).await {
            Ok(()) => {
                self.core.succeed(attempt).await;
                return Ok(());
            }
            Err(refused) => refused,
        };
        let action = match purpose {
            Purpose::Login => AccountAction::LoginFailed,
            Purpose::Elevate => AccountAction::ElevationFailed,
        };
        let reason = format!("pam: {refused}");
        self.core
            .fail(attempt, Some(peer), action, &biometric, &reason)
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
        let account = self.core.account(input::username(username)?).await?;
        let detail = match os_account {
            Some(os_account) => {
                check_os_account_name(os_account)?;
                require_os_account(os_account).await?;
                self.core
                    .store
                    .link_os_account(account.row.id, os_account, self.core.now().0)
                    .await?;
                format!("linked to OS account {os_account}")
            }
            None => {
                self.core.store.unlink_os_account(account.row.id).await?;
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
        let generation = self.core.update_account(account.row.id, &bump).await?;
        let keep = (account.row.id == by.session.user_id).then_some(by.session);
        let ended = self
            .core
            .supersede(&account, Some(generation), keep, |method| {
                *method == ElevationMethod::Pam
            })
            .await?;
        self.core
            .record(
                by.actor(),
                AccountAction::OsAccountLinked,
                Some(&account.row.username),
                Some(format!("{detail}; {ended} sessions ended")),
            )
            .await;
        self.core.profile(&account).await
    }
}
