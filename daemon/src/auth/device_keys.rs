//! Device-bound keys: registration, challenge–response login and elevation,
//! listing and revocation, and the login-method fallback chain.
//!
//! Invariant: a signature counts only over a challenge this daemon issued,
//! for that user and purpose, unexpired and unused, made by a registered,
//! unrevoked key of that user (ECDSA P-256 / SHA-256, verified with ring);
//! every failure is counted, and after five in a row the device-key path is
//! locked until the password + TOTP fallback succeeds.

use ring::signature::{ECDSA_P256_SHA256_ASN1, UnparsedPublicKey};

use std::sync::Arc;

use super::{
    account::Account,
    admin::ActingUser,
    challenges::{Challenge, ChallengeBook, ChallengePurpose},
    elevation::ElevationMethod,
    error::AuthError,
    input,
    lockout::AttemptKey,
    role::Role,
    session_keeping::LoginOutcome,
    sessions::{LoginEpoch, Session},
    shared::AuthCore,
};
use crate::{
    audit::{AccountAction, Actor},
    clock::UnixMillis,
    store::{DeviceKeyRow, UserChange},
    transport::PeerCredentials,
};

/// Longest DER ECDSA P-256 signature (72 bytes) with room to spare.
const MAX_SIGNATURE_BYTES: usize = 80;
/// SEC1 uncompressed P-256 point.
const PUBLIC_KEY_BYTES: usize = 65;

/// A way to log in, in the order the chain tries them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginMethod {
    /// A device-bound key (Touch ID, Windows Hello, software key).
    DeviceKey,
    /// A PAM biometric stack (fingerprint reader).
    PamBiometric,
    /// Password and TOTP (always available).
    PasswordTotp,
}

/// A signed answer to a challenge.
#[derive(Debug, Clone, Copy)]
pub struct Assertion<'a> {
    /// The key that signed.
    pub key_id: &'a str,
    /// The challenge answered.
    pub challenge_id: &'a str,
    /// DER signature over the challenge payload.
    pub signature: &'a [u8],
}

fn check_assertion(assertion: &Assertion<'_>) -> Result<(), AuthError> {
    input::bounded("key_id", assertion.key_id, 64)?;
    input::bounded("challenge_id", assertion.challenge_id, 64)?;
    if assertion.signature.is_empty() || assertion.signature.len() > MAX_SIGNATURE_BYTES {
        return Err(AuthError::InvalidInput {
            field: "signature",
            reason: format!("must be a DER ECDSA signature of at most {MAX_SIGNATURE_BYTES} bytes"),
        });
    }
    Ok(())
}

fn signature_holds(public_key: &[u8], payload: &[u8], signature: &[u8]) -> bool {
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, public_key)
        .verify(payload, signature)
        .is_ok()
}

/// Device-bound keys (Touch ID, Windows Hello): challenges, registration,
/// login, elevation, listing and revocation.
#[derive(Debug)]
pub struct DeviceKeys {
    core: Arc<AuthCore>,
    challenges: ChallengeBook,
}

impl DeviceKeys {
    pub(super) fn new(core: Arc<AuthCore>, challenges: ChallengeBook) -> Self {
        Self { core, challenges }
    }

    /// Whether `peer` may log in as user `user_id` with a device key: a key
    /// registered from the peer's uid exists (any key, for root).
    pub(super) async fn usable_by(
        &self,
        user_id: i64,
        peer: PeerCredentials,
    ) -> Result<bool, AuthError> {
        let keys = self.core.store.active_device_keys(user_id).await?;
        Ok(keys
            .iter()
            .any(|key| peer.uid == 0 || key.registered_uid == Some(peer.uid)))
    }

    /// A login challenge for `username` (issued for unknown users too),
    /// answerable only from `peer`'s uid.
    pub fn login_challenge(
        &self,
        username: &str,
        peer: PeerCredentials,
    ) -> Result<Challenge, AuthError> {
        let username = input::username(username)?;
        self.challenges
            .issue(username, ChallengePurpose::Login, peer.uid, self.core.now())
            .map_err(|err| AuthError::WrongState(err.to_string()))
    }

    /// A challenge for the caller's session (elevation or registration).
    pub fn session_challenge(
        &self,
        session: &Session,
        purpose: ChallengePurpose,
    ) -> Result<Challenge, AuthError> {
        self.challenges
            .issue(
                &session.username,
                purpose,
                session.peer_uid,
                self.core.now(),
            )
            .map_err(|err| AuthError::WrongState(err.to_string()))
    }

    /// Registers a public key for the caller, proven by a signature over a
    /// registration challenge.
    pub async fn register_device_key(
        &self,
        by: ActingUser<'_>,
        name: &str,
        platform: &str,
        public_key: &[u8],
        challenge_id: &str,
        signature: &[u8],
    ) -> Result<DeviceKeyRow, AuthError> {
        input::bounded("name", name, 64)?;
        input::bounded("platform", platform, 32)?;
        if public_key.len() != PUBLIC_KEY_BYTES || public_key.first() != Some(&0x04) {
            return Err(AuthError::InvalidInput {
                field: "public_key",
                reason: "must be a SEC1 uncompressed P-256 point (65 bytes starting 0x04)"
                    .to_owned(),
            });
        }
        check_assertion(&Assertion {
            key_id: "new",
            challenge_id,
            signature,
        })?;
        let username = by.session.username.as_str();
        let challenge = self.challenges.take(
            challenge_id,
            username,
            ChallengePurpose::Register,
            by.peer.uid,
            self.core.now(),
        );
        if !challenge.is_some_and(|c| signature_holds(public_key, &c.payload, signature)) {
            self.core
                .record(
                    by_actor(&by),
                    AccountAction::ElevationFailed,
                    Some(username),
                    Some("device key registration".into()),
                )
                .await;
            return Err(AuthError::BadCredentials);
        }
        let key = DeviceKeyRow {
            id: random_id()?,
            user_id: by.session.user_id,
            name: name.to_owned(),
            platform: platform.to_owned(),
            public_key: public_key.to_vec(),
            created_at: self.core.now().0,
            last_used_at: None,
            registered_uid: Some(by.peer.uid),
        };
        self.core.store.insert_device_key(&key).await?;
        let detail = format!("key {} ({platform})", key.id);
        self.core
            .record(
                by_actor(&by),
                AccountAction::DeviceKeyRegistered,
                Some(username),
                Some(detail),
            )
            .await;
        Ok(key)
    }

    /// Checks an assertion by `username` for `purpose`; counts failures.
    /// `user_id` is `None` for an unknown or inactive account, which then
    /// takes the same path and fails like a wrong signature.
    async fn verify_assertion(
        &self,
        username: &str,
        user_id: Option<i64>,
        peer: PeerCredentials,
        purpose: ChallengePurpose,
        assertion: &Assertion<'_>,
    ) -> Result<(), AuthError> {
        check_assertion(assertion)?;
        let biometric = AttemptKey::Biometric(username.to_owned(), peer.uid);
        let attempt = self.core.throttle(&biometric, Some(peer)).await?;
        let challenge = self.challenges.take(
            assertion.challenge_id,
            username,
            purpose,
            peer.uid,
            self.core.now(),
        );
        let key = self
            .core
            .store
            .active_device_key(assertion.key_id)
            .await?
            .filter(|k| Some(k.user_id) == user_id);
        let verified = match (&challenge, &key) {
            (Some(challenge), Some(key)) => {
                signature_holds(&key.public_key, &challenge.payload, assertion.signature)
            }
            _ => false,
        };
        if !verified {
            let action = match purpose {
                ChallengePurpose::Login => AccountAction::LoginFailed,
                ChallengePurpose::Elevate | ChallengePurpose::Register => {
                    AccountAction::ElevationFailed
                }
            };
            self.core
                .fail(attempt, Some(peer), action, &biometric, "device key")
                .await;
            return Err(AuthError::BadCredentials);
        }
        self.core.succeed(attempt).await;
        self.core
            .store
            .touch_device_key(assertion.key_id, self.core.now().0)
            .await?;
        Ok(())
    }

    /// Logs in with a device-key assertion.
    pub async fn login_with_device_key(
        &self,
        peer: PeerCredentials,
        username: &str,
        assertion: Assertion<'_>,
    ) -> Result<LoginOutcome, AuthError> {
        let began: LoginEpoch = self.core.sessions.login_epoch();
        let username = input::username(username)?;
        let account = self.core.active_account(username).await?;
        let user_id = account.as_ref().map(|a| a.row.id);
        self.verify_assertion(username, user_id, peer, ChallengePurpose::Login, &assertion)
            .await?;
        let Some(account) = account else {
            // Unreachable: no key verifies for a missing account.
            return Err(AuthError::BadCredentials);
        };
        let outcome = self
            .core
            .finish_login(&account, peer, "device_key", began)
            .await?;
        Ok(outcome)
    }

    /// Elevates the caller's session with a device-key assertion.
    pub async fn elevate_with_device_key(
        &self,
        session: &Session,
        peer: PeerCredentials,
        assertion: Assertion<'_>,
    ) -> Result<Session, AuthError> {
        // A live session implies an active account (disabling ends sessions).
        let user_id = Some(session.user_id);
        self.verify_assertion(
            &session.username,
            user_id,
            peer,
            ChallengePurpose::Elevate,
            &assertion,
        )
        .await?;
        let method = ElevationMethod::DeviceKey(assertion.key_id.to_owned());
        self.core.grant_elevation(session, peer, method).await
    }

    /// Keys of `username` (or the caller's own when `None`).
    pub async fn list_device_keys(
        &self,
        by: ActingUser<'_>,
        username: Option<&str>,
    ) -> Result<Vec<DeviceKeyRow>, AuthError> {
        let account = match username {
            Some(name) if name != by.session.username => {
                require_super_admin(&by, false, self.core.now())?;
                self.core.account(input::username(name)?).await?
            }
            _ => self.core.account(&by.session.username).await?,
        };
        Ok(self.core.store.active_device_keys(account.row.id).await?)
    }

    /// Revokes a key: the caller's own, or anyone's for an elevated super-admin.
    pub async fn revoke_device_key(
        &self,
        by: ActingUser<'_>,
        key_id: &str,
    ) -> Result<(), AuthError> {
        input::bounded("key_id", key_id, 64)?;
        let key = self
            .core
            .store
            .active_device_key(key_id)
            .await?
            .ok_or_else(|| AuthError::WrongState(format!("no active device key {key_id:?}")))?;
        if key.user_id != by.session.user_id {
            require_super_admin(&by, true, self.core.now())?;
        }
        self.core
            .store
            .revoke_device_key(key_id, self.core.now().0)
            .await?;
        let owner = self
            .core
            .store
            .user_by_id(key.user_id)
            .await?
            .map(Account::from_row)
            .transpose()?;
        let owner_name = owner.as_ref().map(|owner| owner.row.username.clone());
        let detail = format!("key {key_id}");
        self.core
            .record(
                by_actor(&by),
                AccountAction::DeviceKeyRevoked,
                owner_name.as_deref(),
                Some(detail),
            )
            .await;
        let Some(owner) = owner else {
            return Ok(());
        };
        // A credential change: the owner's other sessions end, and so does
        // any elevation the revoked key granted.
        let replaces = UserChange {
            bump_generation: true,
            ..UserChange::default()
        };
        let generation = self.core.update_account(key.user_id, &replaces).await?;
        let keep = (key.user_id == by.session.user_id).then_some(by.session);
        let granted_by_key =
            |method: &ElevationMethod| *method == ElevationMethod::DeviceKey(key_id.to_owned());
        let ended = self
            .core
            .supersede(&owner, Some(generation), keep, granted_by_key)
            .await?;
        self.core
            .record(
                by_actor(&by),
                AccountAction::SessionsRevoked,
                owner_name.as_deref(),
                Some(format!(
                    "{ended} sessions ended: device key {key_id} revoked"
                )),
            )
            .await;
        Ok(())
    }
}

fn require_super_admin(
    by: &ActingUser<'_>,
    elevated: bool,
    now: UnixMillis,
) -> Result<(), AuthError> {
    if by.session.role != Role::SuperAdmin {
        return Err(AuthError::NotAllowed(
            "only a super-admin may act on another user's device keys".to_owned(),
        ));
    }
    if elevated && !by.session.is_elevated(now) {
        return Err(AuthError::NotAllowed(
            "re-authentication required: call occc.v1.Auth/Elevate with a TOTP code, then retry"
                .to_owned(),
        ));
    }
    Ok(())
}

fn by_actor(by: &ActingUser<'_>) -> Actor {
    Actor::user(Some(by.peer), &by.session.username)
}

fn random_id() -> Result<String, AuthError> {
    use ring::rand::{SecureRandom, SystemRandom};
    let mut bytes = [0u8; 12];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|err| AuthError::internal("random generator failed", &err))?;
    Ok(format!("dk_{}", data_encoding::HEXLOWER.encode(&bytes)))
}
