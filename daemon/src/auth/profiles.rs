//! A read model of account profiles: what WhoAmI and ListUsers answer (the
//! last page asked for),
//! kept in memory between writes so a frontend's polling does not reach
//! the encrypted store on every call.
//!
//! Invariant: a profile is answered from memory only while the store's
//! accounts version is the one it was read under (any write to accounts,
//! recovery codes or OS links changes it); the lock state is never cached
//! (the caller fills it in live); profiles hold no secret; at most
//! [`MAX_PROFILES`] are kept.

use std::{
    collections::HashMap,
    sync::{Mutex, MutexGuard, PoisonError},
};

use super::account::UserProfile;
use crate::store::ReadCopy;

/// Profiles kept at most (beyond, the oldest set is dropped whole).
pub const MAX_PROFILES: usize = 10_000;

/// One page of accounts, by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsersPage {
    /// Profiles (lock state filled in live).
    pub users: Vec<UserProfile>,
    /// Where the next page starts; empty on the last page.
    pub next_page_token: String,
}

/// Profiles read under a given accounts version.
#[derive(Debug, Default)]
pub struct ProfileCache {
    /// By username: the accounts version it was read under, and the profile.
    by_name: Mutex<HashMap<String, (u64, UserProfile)>>,
    /// The last page listed: where it started, its size, and the page.
    page: ReadCopy<(Option<String>, u32, UsersPage)>,
}

impl ProfileCache {
    fn by_name(&self) -> MutexGuard<'_, HashMap<String, (u64, UserProfile)>> {
        self.by_name.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// `username`'s profile if it was read under `version`.
    pub fn get(&self, username: &str, version: u64) -> Option<UserProfile> {
        self.by_name()
            .get(username)
            .filter(|(read_under, _)| *read_under == version)
            .map(|(_, profile)| profile.clone())
    }

    /// Keeps `profile`, read under `version`.
    pub fn put(&self, version: u64, profile: &UserProfile) {
        let mut by_name = self.by_name();
        if by_name.len() >= MAX_PROFILES {
            by_name.clear();
        }
        by_name.insert(profile.username.clone(), (version, profile.clone()));
    }

    /// The page of `limit` accounts after `after`, if read under `version`.
    pub fn page(&self, version: u64, after: Option<&str>, limit: u32) -> Option<UsersPage> {
        self.page
            .get(version)
            .filter(|(start, size, _)| start.as_deref() == after && *size == limit)
            .map(|(_, _, page)| page)
    }

    /// Keeps the page of `limit` accounts after `after`, read under `version`.
    pub fn put_page(&self, version: u64, after: Option<&str>, limit: u32, page: &UsersPage) {
        self.page
            .put(version, (after.map(str::to_owned), limit, page.clone()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        auth::{account::UserState, role::Role},
        clock::UnixMillis,
    };

    fn profile(name: &str) -> UserProfile {
        UserProfile {
            id: 1,
            username: name.to_owned(),
            role: Role::Admin,
            state: UserState::Active,
            created_at: UnixMillis(0),
            recovery_codes_left: 10,
            locked_until: None,
            os_account: None,
        }
    }

    #[test]
    fn a_profile_is_answered_only_under_the_version_it_was_read_under() {
        let cache = ProfileCache::default();
        cache.put(7, &profile("ada"));
        assert_eq!(cache.get("ada", 7), Some(profile("ada")));
        assert_eq!(cache.get("ada", 8), None, "a write happened since");
        assert_eq!(cache.get("bob", 7), None);
        let page = UsersPage {
            users: vec![profile("ada")],
            next_page_token: String::new(),
        };
        cache.put_page(8, None, 10, &page);
        assert_eq!(cache.page(8, None, 10), Some(page));
        assert!(cache.page(9, None, 10).is_none(), "a write happened since");
        assert!(cache.page(8, Some("ada"), 10).is_none(), "another page");
        assert!(cache.page(8, None, 11).is_none(), "another size");
    }
}
