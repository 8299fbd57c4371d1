//! OS accounts that occcd users are linked to (for PAM): names checked as
//! `useradd` would, uids looked up off the runtime and remembered briefly.
//!
//! Invariant: a name is looked up only once it passes the name check; a
//! lookup never runs on the async runtime (NSS may block), and at most
//! `UID_CACHE_ENTRIES` answers are kept, each for `UID_TTL`.

use super::error::AuthError;
use crate::clock::UnixMillis;

/// Longest OS account name.
const MAX_OS_ACCOUNT_CHARS: usize = 32;

/// useradd's default rule: lower-case letter or `_` first, then letters,
/// digits, `_` and `-`, at most 32 characters.
pub(super) fn check_os_account_name(name: &str) -> Result<(), AuthError> {
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
    // A name useradd would refuse names no account: not looked up.
    if check_os_account_name(name).is_err() {
        return Ok(None);
    }
    let lookup_name = name.to_owned();
    // getpwnam may ask NSS (LDAP, sssd), Windows a domain controller: keep
    // it off the runtime.
    tokio::task::spawn_blocking(move || lookup_uid(&lookup_name))
        .await
        .map_err(|err| AuthError::internal("OS account lookup failed", &err))?
}

#[cfg(unix)]
fn lookup_uid(name: &str) -> Result<Option<u32>, AuthError> {
    let found = nix::unistd::User::from_name(name)
        .map_err(|err| AuthError::internal("OS account lookup failed", &err))?;
    Ok(found.map(|user| user.uid.as_raw()))
}

/// Windows: the account's SID, as the uid-like number a pipe peer gets
/// (`occc_peer_identity::uid_of_sid`); an unknown name is no account.
#[cfg(windows)]
#[allow(clippy::unnecessary_wraps)] // the same signature as on Unix
fn lookup_uid(name: &str) -> Result<Option<u32>, AuthError> {
    Ok(occc_peer_identity::windows::account_sid(name)
        .ok()
        .map(|sid| occc_peer_identity::uid_of_sid(&sid)))
}

pub(super) async fn require_os_account(name: &str) -> Result<(), AuthError> {
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
