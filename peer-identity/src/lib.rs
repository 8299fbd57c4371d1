//! Who is at the other end of occcd's named pipe on Windows, and whether a
//! Windows object is as private as it must be — shared by the daemon (which
//! client connected) and the client (who serves the pipe).
//!
//! Invariant: a client's identity is the user of the token it presents on
//! the pipe, read by the daemon impersonating it at identification level
//! after its first byte ([`windows`]), never from what it sent; a client
//! trusts the pipe only when the pipe's owner is the expected user and no
//! one else may create instances of it or change its security; LocalSystem
//! is uid 0 and every other SID maps to a uid with the top bit set, so no
//! user is ever taken for LocalSystem or for another user by a small number.
//!
//! The mapping, the security descriptor's text and the rules that judge a
//! descriptor are plain functions, tested on every platform; the calls
//! into Windows are in [`windows`], compiled on Windows only.

#[cfg(windows)]
pub mod windows;

use std::path::{Path, PathBuf};

/// LocalSystem, the account Windows services run as by default.
pub const LOCAL_SYSTEM_SID: &str = "S-1-5-18";
/// The local Administrators group.
pub const ADMINISTRATORS_SID: &str = "S-1-5-32-544";

/// Where the packaged daemon listens on Windows.
pub const SYSTEM_PIPE: &str = r"\\.\pipe\occcd";

/// The pipe a dev-mode daemon in `dir` listens on (a pipe has no folder):
/// `\\.\pipe\occcd-dev-` and 16 hex digits of the SHA-256 of the folder's
/// absolute path, lower-cased (Windows paths ignore case), so the daemon
/// and occcctl name the same pipe however the folder was written.
#[must_use]
pub fn dev_pipe_name(dir: &Path) -> PathBuf {
    let absolute = std::path::absolute(dir).unwrap_or_else(|_| dir.to_owned());
    let digest = ring::digest::digest(
        &ring::digest::SHA256,
        absolute.to_string_lossy().to_lowercase().as_bytes(),
    );
    let short: String = digest.as_ref()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    PathBuf::from(format!(r"\\.\pipe\occcd-dev-{short}"))
}

/// Whether `path` names a local named pipe (`\\.\pipe\…`).
#[must_use]
pub fn is_pipe_name(path: &Path) -> bool {
    path.to_str().is_some_and(|text| {
        text.len() > 9
            && text
                .get(..9)
                .is_some_and(|prefix| prefix.eq_ignore_ascii_case(r"\\.\pipe\"))
    })
}

/// The uid-like number occcd binds sessions and limits to: 0 for
/// LocalSystem (as root is on Unix), else the first four bytes of the
/// SHA-256 of the SID's text with the top bit set — never 0, never a
/// number below 2^31, and the same on every start.
#[must_use]
pub fn uid_of_sid(sid: &str) -> u32 {
    if sid.eq_ignore_ascii_case(LOCAL_SYSTEM_SID) {
        return 0;
    }
    let digest = ring::digest::digest(&ring::digest::SHA256, sid.to_ascii_uppercase().as_bytes());
    let bytes = digest.as_ref();
    let first = [bytes[0], bytes[1], bytes[2], bytes[3]];
    u32::from_be_bytes(first) | 0x8000_0000
}

/// What a member of the configured group may do with the pipe: read and
/// write data, read and write its attributes, read its security, wait on
/// it — [`CLIENT_ACCESS`] and no more. Never `FILE_CREATE_PIPE_INSTANCE`
/// (0x4, the same bit as `FILE_APPEND_DATA`, which `GENERIC_WRITE`
/// includes): with it a member could create instances of occcd's pipe and
/// answer other clients.
pub const GROUP_ACCESS: u32 = 0x0012_018b;

/// What the client asks for when it opens the pipe: `FILE_READ_DATA`,
/// `FILE_WRITE_DATA`, `FILE_READ_ATTRIBUTES`, `READ_CONTROL` (to check
/// the pipe's owner), `SYNCHRONIZE` — inside [`GROUP_ACCESS`].
pub const CLIENT_ACCESS: u32 = 0x0012_0083;

/// `FILE_CREATE_PIPE_INSTANCE`.
pub const CREATE_PIPE_INSTANCE: u32 = 0x0000_0004;
/// `WRITE_DAC` and `WRITE_OWNER`: whoever has them can grant the rest.
pub const CHANGE_SECURITY: u32 = 0x000c_0000;
/// `GENERIC_*` and `MAXIMUM_ALLOWED`, as an entry may still hold them unmapped.
pub const GENERIC_OR_MAXIMUM: u32 = 0xf200_0000;
/// What only the pipe's server may hold: making instances, changing its
/// security, or any generic right that could include either.
pub const SERVING_RIGHTS: u32 = CREATE_PIPE_INSTANCE | CHANGE_SECURITY | GENERIC_OR_MAXIMUM;
/// Every right.
pub const ANY_ACCESS: u32 = u32::MAX;

/// The pipe's security descriptor in SDDL: owned by the daemon's user (a
/// client checks the owner: nobody else can make an object theirs), network
/// logons denied first, then full access for LocalSystem and the daemon's
/// own user (who create the instances), and [`GROUP_ACCESS`] for
/// `group_sid` when one is configured — nobody else, and nothing inherited
/// from a parent (`P`).
#[must_use]
pub fn pipe_sddl(owner_sid: &str, group_sid: Option<&str>) -> String {
    let mut sddl = format!("O:{owner_sid}D:P(D;;GA;;;NU)(A;;GA;;;{LOCAL_SYSTEM_SID})");
    if !owner_sid.eq_ignore_ascii_case(LOCAL_SYSTEM_SID) {
        sddl.push_str(&format!("(A;;GA;;;{owner_sid})"));
    }
    if let Some(group) = group_sid {
        sddl.push_str(&format!("(A;;{GROUP_ACCESS:#x};;;{group})"));
    }
    sddl
}

/// Whether `sid` is well-formed text (`S-1-` then decimal numbers), so it
/// can go into SDDL without changing its meaning.
#[must_use]
pub fn is_sid_text(sid: &str) -> bool {
    let Some(rest) = sid.strip_prefix("S-1-") else {
        return false;
    };
    !rest.is_empty()
        && rest.split('-').all(|part| {
            !part.is_empty() && part.len() <= 10 && part.bytes().all(|b| b.is_ascii_digit())
        })
}

/// Why group `sid` cannot be `socket.group`, if it cannot: a built-in
/// group of the local machine other than Administrators (`S-1-5-32-5xx`:
/// Users, Guests, …), a well-known group (Everyone, Local, Console Logon,
/// Authenticated Users, Interactive, Network, a service's SID, …:
/// `S-1-1-*`, `S-1-2-*`, `S-1-5-<n>…` outside a domain), an app-container
/// group (`S-1-15-*`), or a domain's Users, Guests or Computers (RIDs 513,
/// 514, 515). A group made for occcd (`S-1-5-21-…` with its own RID) passes.
#[must_use]
pub fn group_refusal(sid: &str) -> Option<String> {
    let parts: Vec<&str> = sid.split('-').collect();
    let broad = match parts.as_slice() {
        ["S", "1", "5", "32", rid] => *rid != "544",
        ["S", "1", "5", "21", .., rid] => matches!(*rid, "513" | "514" | "515"),
        _ => true,
    };
    broad.then(|| format!("{sid} takes in users occcd does not name; make a group of its own"))
}

/// One entry of a DACL, as read from an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ace {
    /// An allow entry (deny entries only take away).
    pub allows: bool,
    /// Whom it names.
    pub sid: String,
    /// The rights it names (generic rights already mapped by the object).
    pub mask: u32,
}

/// An object's owner and DACL, as read from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Descriptor {
    /// The owner's SID.
    pub owner: String,
    /// The DACL's entries, in order; `None`: no DACL at all (everyone has
    /// every right).
    pub aces: Option<Vec<Ace>>,
}

impl Descriptor {
    /// Why the object is not kept to `trusted` (SIDs): its owner is
    /// someone else, it has no DACL, or an allow entry gives any of `rights`
    /// to someone else. `None` when it is.
    #[must_use]
    pub fn untrusted(&self, trusted: &[&str], rights: u32) -> Option<String> {
        let is_trusted = |sid: &str| trusted.iter().any(|t| t.eq_ignore_ascii_case(sid));
        if !is_trusted(&self.owner) {
            return Some(format!("it belongs to {}", self.owner));
        }
        let Some(aces) = &self.aces else {
            return Some("it has no access list: everyone may do anything".to_owned());
        };
        aces.iter()
            .find(|ace| ace.allows && ace.mask & rights != 0 && !is_trusted(&ace.sid))
            .map(|ace| format!("{} is granted {:#x}", ace.sid, ace.mask & rights))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_system_is_uid_zero_and_every_other_sid_has_the_top_bit() {
        assert_eq!(uid_of_sid("S-1-5-18"), 0);
        assert_eq!(uid_of_sid("s-1-5-18"), 0);
        let users = [
            "S-1-5-21-1004336348-1177238915-682003330-1001",
            "S-1-5-21-1004336348-1177238915-682003330-1002",
            "S-1-5-21-3623811015-3361044348-30300820-1001",
            "S-1-5-19",
        ];
        let uids: Vec<u32> = users.iter().map(|sid| uid_of_sid(sid)).collect();
        for uid in &uids {
            assert!(*uid >= 0x8000_0000, "{uid:#x}");
        }
        // The same RID in two domains is two users.
        let mut distinct = uids.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), uids.len());
        // Stable, and the same however the SID's letters are cased.
        assert_eq!(uid_of_sid(users[0]), uid_of_sid(&users[0].to_lowercase()));
    }

    #[test]
    fn the_pipe_admits_system_the_daemon_and_the_group_and_denies_network_logons() {
        let sddl = pipe_sddl("S-1-5-21-1-2-3-500", Some("S-1-5-21-1-2-3-1010"));
        assert_eq!(
            sddl,
            "O:S-1-5-21-1-2-3-500D:P(D;;GA;;;NU)(A;;GA;;;S-1-5-18)(A;;GA;;;S-1-5-21-1-2-3-500)(A;;0x12018b;;;S-1-5-21-1-2-3-1010)"
        );
        // The group can open what the client asks for, and cannot create
        // an instance of the pipe (answer other clients in occcd's place).
        assert_eq!(GROUP_ACCESS & CLIENT_ACCESS, CLIENT_ACCESS);
        assert_eq!(GROUP_ACCESS & CREATE_PIPE_INSTANCE, 0);
        // A daemon running as LocalSystem is not listed twice; no group, no entry.
        assert_eq!(
            pipe_sddl("S-1-5-18", None),
            "O:S-1-5-18D:P(D;;GA;;;NU)(A;;GA;;;S-1-5-18)"
        );
        assert!(!sddl.contains("WD"), "never Everyone");
    }

    #[test]
    fn only_sid_text_goes_into_the_descriptor() {
        assert!(is_sid_text("S-1-5-18"));
        assert!(is_sid_text("S-1-5-21-1004336348-1177238915-682003330-1001"));
        for bad in [
            "",
            "S-1-",
            "S-1-5-",
            "S-1-5)(A;;GA;;;WD",
            "WD",
            "S-1-5--18",
            "S-1-99999999999",
        ] {
            assert!(!is_sid_text(bad), "{bad:?}");
        }
    }

    #[test]
    fn a_pipe_is_trusted_only_when_its_owner_is_and_nobody_else_can_serve_it() {
        let system = [LOCAL_SYSTEM_SID];
        let ace = |sid: &str, mask: u32| Ace {
            allows: true,
            sid: sid.to_owned(),
            mask,
        };
        let ours = Descriptor {
            owner: LOCAL_SYSTEM_SID.to_owned(),
            aces: Some(vec![
                Ace {
                    allows: false,
                    sid: "S-1-5-2".to_owned(),
                    mask: ANY_ACCESS,
                },
                ace(LOCAL_SYSTEM_SID, 0x001f_01ff),
                ace("S-1-5-21-1-2-3-1010", GROUP_ACCESS),
            ]),
        };
        let serving = SERVING_RIGHTS;
        assert_eq!(ours.untrusted(&system, serving), None);
        // A squatter owns what it creates; it cannot make it LocalSystem's.
        let squatted = Descriptor {
            owner: "S-1-5-21-1-2-3-1001".to_owned(),
            ..ours.clone()
        };
        assert!(
            squatted
                .untrusted(&system, serving)
                .unwrap()
                .contains("belongs to")
        );
        // Someone else may create instances, or rewrite the DACL: not trusted.
        // (and a generic right could include either)
        for mask in [
            CREATE_PIPE_INSTANCE,
            0x0004_0000,
            0x0008_0000,
            0x1000_0000,
            0x4000_0000,
            0x0200_0000,
        ] {
            let mut open = ours.clone();
            open.aces
                .as_mut()
                .unwrap()
                .push(ace("S-1-5-21-1-2-3-1001", mask));
            assert!(open.untrusted(&system, serving).is_some(), "{mask:#x}");
        }
        // No DACL at all: everyone may do anything.
        let bare = Descriptor {
            aces: None,
            ..ours.clone()
        };
        assert!(bare.untrusted(&system, serving).is_some());
        // A private file: nobody but the trusted may hold any right.
        let trusted = [LOCAL_SYSTEM_SID, ADMINISTRATORS_SID];
        assert!(
            ours.untrusted(&trusted, ANY_ACCESS)
                .unwrap()
                .contains("1010")
        );
    }

    #[test]
    fn dev_pipes_are_named_after_their_folder_and_pipe_names_are_recognised() {
        let a = dev_pipe_name(Path::new(r"C:\Users\alice\occc-dev"));
        let b = dev_pipe_name(Path::new(r"C:\Users\bob\occc-dev"));
        assert_ne!(a, b);
        assert_eq!(a, dev_pipe_name(Path::new(r"C:\Users\alice\occc-dev")));
        assert!(is_pipe_name(&a), "{}", a.display());
        assert!(is_pipe_name(Path::new(SYSTEM_PIPE)));
        assert!(is_pipe_name(Path::new(r"\\.\PIPE\occcd")));
        for other in [
            "\\\\.\\pipeé\\x",
            r"C:\occcd.sock",
            "/run/occcd/occcd.sock",
            r"\\.\pipe\",
            r"\\host\pipe\occcd",
        ] {
            assert!(!is_pipe_name(Path::new(other)), "{other}");
        }
    }

    #[test]
    fn only_a_group_of_its_own_can_reach_the_pipe() {
        for broad in [
            "S-1-1-0",            // Everyone
            "S-1-2-0",            // Local
            "S-1-2-1",            // Console Logon
            "S-1-5-11",           // Authenticated Users
            "S-1-5-4",            // Interactive
            "S-1-5-113",          // Local account
            "S-1-5-32-545",       // Users
            "S-1-5-32-546",       // Guests
            "S-1-15-2-1",         // All application packages
            "S-1-5-21-1-2-3-513", // Domain Users
            "S-1-5-21-1-2-3-515", // Domain Computers
            "S-1-5-80-1-2-3-4-5", // a service's SID
        ] {
            assert!(group_refusal(broad).is_some(), "{broad}");
        }
        for own in [
            "S-1-5-21-1004336348-1177238915-682003330-1010",
            ADMINISTRATORS_SID,
        ] {
            assert_eq!(group_refusal(own), None, "{own}");
        }
    }
}
