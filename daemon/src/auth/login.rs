//! Login, elevation, per-call session checks and logout.
//!
//! Invariant: throttling is checked before any hashing; an unknown,
//! disabled or enrolling account costs a full password verification and
//! fails exactly like a wrong password; a TOTP step or recovery code is
//! consumed by a conditional update, so concurrent replays cannot both win.

use super::{
    engine::{Account, AuthEngine, TotpColumn, UserProfile},
    error::AuthError,
    input,
    lockout::{AttemptGuard, AttemptKey, Throttled},
    password::{Verification, normalize},
    recovery::MAX_CODE_INPUT,
    sessions::Session,
    token::{SecretToken, TokenKind},
};
use crate::{
    audit::{AccountAction, Actor},
    transport::PeerCredentials,
};

/// The second proof of identity at login. Biometric methods join here.
#[derive(Debug, Clone, Copy)]
pub enum SecondFactor<'a> {
    /// A code from the authenticator app.
    Totp(&'a str),
    /// One of the single-use recovery codes.
    RecoveryCode(&'a str),
}

impl SecondFactor<'_> {
    fn method(self) -> &'static str {
        match self {
            Self::Totp(_) => "password+totp",
            Self::RecoveryCode(_) => "password+recovery_code",
        }
    }
}

/// A successful login.
#[derive(Debug)]
pub struct LoginOutcome {
    /// The bearer token; shown once, never stored.
    pub token: SecretToken,
    /// The new session.
    pub session: Session,
    /// Who logged in.
    pub user: UserProfile,
}

impl AuthEngine {
    /// Starts an attempt: refused if the account or the peer is delayed,
    /// locked, or already being checked. Hold the guard until the outcome
    /// is recorded.
    pub(super) async fn throttle(
        &self,
        account: &AttemptKey,
        peer: Option<PeerCredentials>,
    ) -> Result<AttemptGuard<'_>, AuthError> {
        let mut keys = vec![account.clone()];
        keys.extend(peer.map(|p| AttemptKey::Peer(p.uid)));
        let refused = match self.failures.begin(&keys, self.now()) {
            Ok(guard) => return Ok(guard),
            Err(Throttled::Delayed { retry_after }) => AuthError::Throttled { retry_after },
            Err(Throttled::Locked { retry_after }) => AuthError::Locked { retry_after },
            Err(Throttled::InProgress) => AuthError::AttemptInProgress,
        };
        let subject = account.username();
        self.record(
            Actor::peer(peer),
            AccountAction::LoginThrottled,
            subject,
            Some(refused.to_string()),
        )
        .await;
        Err(refused)
    }

    /// Counts a failure against the account and the peer, and audits it.
    pub(super) async fn fail(
        &self,
        account: &AttemptKey,
        peer: Option<PeerCredentials>,
        action: AccountAction,
        reason: &str,
    ) {
        let now = self.now();
        let locked = self.failures.record_failure(account, now);
        if let Some(peer) = peer {
            self.failures
                .record_failure(&AttemptKey::Peer(peer.uid), now);
        }
        let subject = account.username();
        self.record(Actor::peer(peer), action, subject, Some(reason.to_owned()))
            .await;
        if locked {
            self.record(
                Actor::peer(peer),
                AccountAction::AccountLocked,
                subject,
                None,
            )
            .await;
        }
    }

    /// Logs in with password and a second factor.
    pub async fn login(
        &self,
        peer: PeerCredentials,
        username: &str,
        password: &str,
        factor: SecondFactor<'_>,
    ) -> Result<LoginOutcome, AuthError> {
        let username = input::username(username)?;
        input::password("password", password)?;
        match factor {
            SecondFactor::Totp(code) => input::totp_code(code)?,
            SecondFactor::RecoveryCode(code) => {
                input::bounded("recovery_code", code, MAX_CODE_INPUT)?
            }
        }
        let key = AttemptKey::Account(username.to_owned());
        let _attempt = self.throttle(&key, Some(peer)).await?;
        let active = self.active_account(username).await?;
        let stored = active.as_ref().and_then(|a| a.row.password_phc.clone());
        let verification = self
            .hashing
            .verify(stored, normalize(password))
            .await
            .map_err(|err| AuthError::internal("password verification failed", &err))?;
        let (Some(account), Verification::Match { needs_rehash }) = (active, verification) else {
            self.fail(&key, Some(peer), AccountAction::LoginFailed, "password")
                .await;
            return Err(AuthError::BadCredentials);
        };
        if !self.second_factor_holds(&account, factor).await? {
            self.fail(
                &key,
                Some(peer),
                AccountAction::LoginFailed,
                factor.method(),
            )
            .await;
            return Err(AuthError::BadCredentials);
        }
        if needs_rehash {
            self.rehash(&account, password).await;
        }
        // A password login also lifts a biometric lock (the fallback succeeded).
        self.failures
            .record_success(&AttemptKey::Biometric(username.to_owned()));
        self.finish_login(&account, peer, factor.method()).await
    }

    /// Opens the session of a login whose proofs all held, and audits it.
    pub(super) async fn finish_login(
        &self,
        account: &Account,
        peer: PeerCredentials,
        method: &str,
    ) -> Result<LoginOutcome, AuthError> {
        let username = account.row.username.as_str();
        self.failures
            .record_success(&AttemptKey::Account(username.to_owned()));
        self.failures.record_success(&AttemptKey::Peer(peer.uid));
        let (token, session) = self.open_session(account, peer).await?;
        self.record(
            Actor::user(Some(peer), username),
            AccountAction::LoginSucceeded,
            Some(username),
            Some(method.to_owned()),
        )
        .await;
        let user = self.profile(account).await?;
        Ok(LoginOutcome {
            token,
            session,
            user,
        })
    }

    async fn second_factor_holds(
        &self,
        account: &Account,
        factor: SecondFactor<'_>,
    ) -> Result<bool, AuthError> {
        match factor {
            SecondFactor::Totp(code) => self.consume_totp(account, code).await,
            SecondFactor::RecoveryCode(code) => {
                let unused = self.store.unused_recovery_codes(account.row.id).await?;
                let hashes: Vec<Vec<u8>> = unused.iter().map(|(_, hash)| hash.clone()).collect();
                let Some(index) = self.recovery.find(code, &hashes) else {
                    return Ok(false);
                };
                let slot = unused[index].0;
                let used = self
                    .store
                    .use_recovery_code(account.row.id, slot, self.now().0)
                    .await?;
                if used {
                    let name = account.row.username.as_str();
                    let left = format!("{} left", hashes.len() - 1);
                    self.record(
                        Actor::user(None, name),
                        AccountAction::RecoveryCodeUsed,
                        Some(name),
                        Some(left),
                    )
                    .await;
                }
                Ok(used)
            }
        }
    }

    /// Checks a TOTP code against the confirmed secret and consumes its step.
    pub(super) async fn consume_totp(
        &self,
        account: &Account,
        code: &str,
    ) -> Result<bool, AuthError> {
        let Some(sealed) = &account.row.totp_secret else {
            return Ok(false);
        };
        let secret = self.open_totp(account.row.id, TotpColumn::Confirmed, sealed)?;
        let step = secret
            .accept(code, self.now(), account.row.totp_last_step)
            .map_err(|err| AuthError::internal("TOTP check failed", &err))?;
        match step {
            Some(step) => Ok(self.store.advance_totp_step(account.row.id, step).await?),
            None => Ok(false),
        }
    }

    async fn rehash(&self, account: &Account, password: &str) {
        if let Err(err) = self
            .store_password(account.row.id, normalize(password))
            .await
        {
            tracing::error!(error = %err, "password rehash not stored");
        }
    }

    async fn open_session(
        &self,
        account: &Account,
        peer: PeerCredentials,
    ) -> Result<(SecretToken, Session), AuthError> {
        let token = SecretToken::generate(TokenKind::Session)
            .map_err(|err| AuthError::internal("random generator failed", &err))?;
        let token_hash = self
            .tokens
            .hash(TokenKind::Session, token.expose())
            .ok_or_else(|| AuthError::internal("session token not hashable", &"length"))?;
        let id = session_id()?;
        let now = self.now();
        let session = Session {
            id,
            user_id: account.row.id,
            username: account.row.username.clone(),
            role: account.role,
            peer_uid: peer.uid,
            created_at: now,
            last_seen: now,
            elevated_until: None,
        };
        self.save_session(&token_hash, &session).await?;
        let evicted = self.sessions.insert(token_hash, session.clone());
        if !evicted.is_empty() {
            self.end_sessions(&evicted).await?;
            let name = account.row.username.as_str();
            let detail = format!("{} oldest ended: session cap reached", evicted.len());
            self.record(
                Actor::user(Some(peer), name),
                AccountAction::SessionsRevoked,
                Some(name),
                Some(detail),
            )
            .await;
        }
        Ok((token, session))
    }

    /// The session a bearer token presented by `peer_uid` belongs to.
    pub fn authenticate(&self, token: &str, peer_uid: u32) -> Result<Session, AuthError> {
        let hash = self
            .tokens
            .hash(TokenKind::Session, token)
            .ok_or(AuthError::Session(
                super::sessions::SessionRejected::Unknown,
            ))?;
        self.sessions
            .validate(&hash, peer_uid, self.now())
            .map_err(AuthError::Session)
    }

    /// Re-proves identity with a TOTP code; elevates the session.
    pub async fn elevate(
        &self,
        session: &Session,
        peer: PeerCredentials,
        totp_code: &str,
    ) -> Result<Session, AuthError> {
        input::totp_code(totp_code)?;
        let key = AttemptKey::Account(session.username.clone());
        let _attempt = self.throttle(&key, Some(peer)).await?;
        let account = self.account(&session.username).await?;
        if !self.consume_totp(&account, totp_code).await? {
            self.fail(&key, Some(peer), AccountAction::ElevationFailed, "totp")
                .await;
            return Err(AuthError::BadCredentials);
        }
        self.failures.record_success(&key);
        self.grant_elevation(session, peer, "totp").await
    }

    /// Elevates a session whose owner just re-proved their identity.
    pub(super) async fn grant_elevation(
        &self,
        session: &Session,
        peer: PeerCredentials,
        method: &str,
    ) -> Result<Session, AuthError> {
        let (token_hash, elevated) =
            self.sessions
                .elevate(&session.id, self.now())
                .ok_or(AuthError::Session(
                    super::sessions::SessionRejected::Unknown,
                ))?;
        self.save_session(&token_hash, &elevated).await?;
        let name = session.username.as_str();
        self.record(
            Actor::user(Some(peer), name),
            AccountAction::Elevated,
            Some(name),
            Some(method.to_owned()),
        )
        .await;
        Ok(elevated)
    }

    /// Ends the caller's session.
    pub async fn logout(&self, session: &Session, peer: PeerCredentials) -> Result<(), AuthError> {
        if let Some(ended) = self.sessions.remove(&session.id) {
            self.end_sessions(&[ended]).await?;
        }
        let name = session.username.as_str();
        self.record(
            Actor::user(Some(peer), name),
            AccountAction::LoggedOut,
            Some(name),
            None,
        )
        .await;
        Ok(())
    }

    /// The caller's profile.
    pub async fn who_am_i(&self, session: &Session) -> Result<UserProfile, AuthError> {
        let account = self.account(&session.username).await?;
        self.profile(&account).await
    }
}

fn session_id() -> Result<String, AuthError> {
    use ring::rand::{SecureRandom, SystemRandom};
    let mut bytes = [0u8; 16];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|err| AuthError::internal("random generator failed", &err))?;
    Ok(data_encoding::HEXLOWER.encode(&bytes))
}
