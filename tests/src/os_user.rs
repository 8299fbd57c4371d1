//! OS users for tests (root only): a second uid on the socket, and accounts
//! PAM checks.
//!
//! Invariant: test users have no home and no login shell; the socket peer's
//! primary group is the group the test daemon gives its socket.

use std::process::Command;

/// The second user's name.
pub const OTHER_USER: &str = "occc-e2e-peer";
/// The socket group the second user belongs to.
pub const SOCKET_GROUP: &str = "occc-e2e";

/// Whether this process may create users and switch uid.
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// The socket group's gid (created if needed).
pub fn socket_gid() -> u32 {
    let status = Command::new("groupadd")
        .arg("--force")
        .arg(SOCKET_GROUP)
        .status()
        .expect("groupadd runs");
    assert!(status.success(), "groupadd {SOCKET_GROUP}");
    nix::unistd::Group::from_name(SOCKET_GROUP)
        .expect("group lookup")
        .expect("group exists")
        .gid
        .as_raw()
}

/// The daemon config section that lets the socket group connect; the dev
/// folder must also be made traversable (0711) by the test.
#[must_use]
pub fn socket_group_config() -> String {
    format!("[socket]\ngroup = \"{SOCKET_GROUP}\"\n")
}

/// Runs `occc-peer <socket> <args>` as OS user `uid` in the socket group;
/// returns what it printed (one `ok …` / `error <code> …` line per result).
pub async fn peer_as(uid: u32, socket: &std::path::Path, args: &[&str]) -> String {
    run_peer(peer_command_as(uid), socket, args).await
}

/// `occc-peer`, to run as OS user `uid` in the socket group.
fn peer_command_as(uid: u32) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(crate::workspace_binary("occc-peer"));
    command.uid(uid).gid(socket_gid());
    command
}

/// Starts `occc-peer <socket> <args>` as OS user `uid` in the socket group,
/// its output piped, killed when the handle is dropped (for commands that
/// hold what they opened until killed).
pub fn spawn_peer_as(uid: u32, socket: &std::path::Path, args: &[&str]) -> tokio::process::Child {
    peer_command_as(uid)
        .arg(socket)
        .args(args)
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("occc-peer runs")
}

/// Runs `occc-peer <socket> <args>` as this process's own user, in a
/// process of its own (whose connections close when it exits).
pub async fn peer(socket: &std::path::Path, args: &[&str]) -> String {
    let command = tokio::process::Command::new(crate::workspace_binary("occc-peer"));
    run_peer(command, socket, args).await
}

async fn run_peer(
    mut command: tokio::process::Command,
    socket: &std::path::Path,
    args: &[&str],
) -> String {
    let output = command
        .arg(socket)
        .args(args)
        .output()
        .await
        .expect("occc-peer runs");
    assert!(
        output.status.success(),
        "occc-peer {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Creates the group and user if needed; returns (uid, gid).
pub fn ensure_other_user() -> (u32, u32) {
    ensure_member_user(OTHER_USER)
}

/// Creates OS user `name` (a system user: no home, no shell) in the socket
/// group if needed; returns (uid, gid).
pub fn ensure_member_user(name: &str) -> (u32, u32) {
    socket_gid();
    if nix::unistd::User::from_name(name)
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
                name,
            ])
            .status()
            .expect("useradd runs");
        assert!(status.success(), "useradd {name}");
    }
    let user = nix::unistd::User::from_name(name)
        .expect("user lookup")
        .expect("user exists");
    (user.uid.as_raw(), user.gid.as_raw())
}

/// Creates OS user `name` (no home, no shell) if needed and sets its
/// password with `chpasswd`; returns its uid.
pub fn ensure_login_user(name: &str, password: &str) -> u32 {
    if nix::unistd::User::from_name(name)
        .expect("user lookup")
        .is_none()
    {
        let status = Command::new("useradd")
            .args(["--no-create-home", "--shell", "/usr/sbin/nologin", name])
            .status()
            .expect("useradd runs");
        assert!(status.success(), "useradd {name}");
    }
    let mut chpasswd = Command::new("chpasswd")
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("chpasswd runs");
    std::io::Write::write_all(
        chpasswd.stdin.as_mut().expect("chpasswd stdin"),
        format!("{name}:{password}\n").as_bytes(),
    )
    .expect("write to chpasswd");
    assert!(
        chpasswd.wait().expect("chpasswd ends").success(),
        "chpasswd {name}"
    );
    set_account_expired(name, false);
    nix::unistd::User::from_name(name)
        .expect("user lookup")
        .expect("user exists")
        .uid
        .as_raw()
}

/// Expires the account (`chage -E 0`, which PAM's account check refuses) or
/// lifts the expiry.
pub fn set_account_expired(name: &str, expired: bool) {
    let date = if expired { "0" } else { "-1" };
    let status = Command::new("chage")
        .args(["-E", date, name])
        .status()
        .expect("chage runs");
    assert!(status.success(), "chage -E {date} {name}");
}
