//! A second OS user for tests that need another uid on the socket (root only).
//!
//! Invariant: the user has no home and no login shell, and its primary group
//! is the group the test daemon gives its socket.

use std::process::Command;

/// The second user's name.
pub const OTHER_USER: &str = "occc-e2e-peer";
/// The socket group the second user belongs to.
pub const SOCKET_GROUP: &str = "occc-e2e";

/// Whether this process may create users and switch uid.
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Creates the group and user if needed; returns (uid, gid).
pub fn ensure_other_user() -> (u32, u32) {
    let status = Command::new("groupadd")
        .arg("--force")
        .arg(SOCKET_GROUP)
        .status()
        .expect("groupadd runs");
    assert!(status.success(), "groupadd {SOCKET_GROUP}");
    if nix::unistd::User::from_name(OTHER_USER)
        .expect("user lookup")
        .is_none()
    {
        let status = Command::new("useradd")
            .args([
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                "--gid",
                SOCKET_GROUP,
                OTHER_USER,
            ])
            .status()
            .expect("useradd runs");
        assert!(status.success(), "useradd {OTHER_USER}");
    }
    let user = nix::unistd::User::from_name(OTHER_USER)
        .expect("user lookup")
        .expect("user exists");
    (user.uid.as_raw(), user.gid.as_raw())
}
