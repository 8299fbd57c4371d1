//! Where `occcctl` keeps the session token between commands, and the folder
//! that holds what must persist (the sealed device key).
//!
//! Invariant: files are created 0600 in folders only the user can read —
//! the session token in `$XDG_RUNTIME_DIR/occcctl` (gone at logout of the
//! OS session), else `~/.local/state/occcctl`; persistent files always in
//! `$XDG_STATE_HOME/occcctl`, else `~/.local/state/occcctl`;
//! `OCCC_SESSION_TOKEN` in the environment wins over the saved token.

use std::{fs, io::Write, path::PathBuf};

use occc_client::SessionToken;

use crate::private;

/// Environment variable holding a session token for scripts.
pub const TOKEN_ENV: &str = "OCCC_SESSION_TOKEN";
const SESSION_FILE: &str = "session";

/// `~/.local/state`; on Windows the user's `%LOCALAPPDATA%`.
fn home_state() -> Option<PathBuf> {
    #[cfg(windows)]
    if let Some(local) = std::env::var_os("LOCALAPPDATA") {
        return Some(PathBuf::from(local));
    }
    std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".local").join("state"))
}

/// The folder for what lasts only as long as the OS login (the session token).
fn state_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .or_else(home_state)?;
    Some(base.join("occcctl"))
}

/// The folder for what persists across reboots (the sealed device key).
pub fn persistent_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .or_else(home_state)?;
    Some(base.join("occcctl"))
}

/// Writes `contents` to `name` in the persistent private folder (0600).
pub fn save_private_persistent(name: &str, contents: &[u8]) -> std::io::Result<PathBuf> {
    let folder = persistent_dir()
        .ok_or_else(|| std::io::Error::other("neither XDG_STATE_HOME nor HOME is set"))?;
    write_private(folder, name, contents)
}

/// Writes `contents` to `name` in the private session folder (0600).
pub fn save_private(name: &str, contents: &[u8]) -> std::io::Result<PathBuf> {
    let folder = state_dir()
        .ok_or_else(|| std::io::Error::other("neither XDG_RUNTIME_DIR nor HOME is set"))?;
    write_private(folder, name, contents)
}

/// Writes `name` in `folder` whole or not at all: a new 0600 file beside it,
/// synced, then renamed over it; the folder is made 0700.
fn write_private(folder: PathBuf, name: &str, contents: &[u8]) -> std::io::Result<PathBuf> {
    private::folder_builder().recursive(true).create(&folder)?;
    private::restrict_folder(&folder)?;
    let path = folder.join(name);
    let staging = folder.join(format!(".{name}.new"));
    let _ = fs::remove_file(&staging);
    let mut file = private::file_options()
        .write(true)
        .create_new(true)
        .open(&staging)?;
    file.write_all(contents)?;
    file.sync_all()?;
    fs::rename(&staging, &path)?;
    Ok(path)
}

/// Removes the unsealed device key older occcctl versions kept in the
/// session folder, if there is one (best effort).
pub fn remove_legacy_device_key() {
    if let Some(legacy) = state_dir().map(|dir| dir.join("device-key"))
        && persistent_dir().map(|dir| dir.join("device-key")) != Some(legacy.clone())
    {
        let _ = fs::remove_file(legacy);
    }
}

/// Reads `name` from the private state folder.
pub fn load_private(name: &str) -> Option<Vec<u8>> {
    fs::read(state_dir()?.join(name)).ok()
}

/// The token to send: the environment's, else the saved one.
pub fn load() -> Option<SessionToken> {
    if let Ok(token) = std::env::var(TOKEN_ENV) {
        return Some(SessionToken::new(token));
    }
    let text = String::from_utf8(load_private(SESSION_FILE)?).ok()?;
    Some(SessionToken::new(text.trim().to_owned()))
}

/// Saves `token` for later commands.
pub fn save(token: &SessionToken) -> std::io::Result<PathBuf> {
    save_private(SESSION_FILE, token.expose().as_bytes())
}

/// Forgets the saved token.
pub fn forget() {
    if let Some(path) = state_dir() {
        let _ = fs::remove_file(path.join(SESSION_FILE));
    }
}

const LAST_USERNAME_FILE: &str = "last-username";

/// The username `occcctl login` uses without `--username`: the last one that
/// logged in here, else the OS account's own name.
pub fn default_username() -> Option<String> {
    let saved = persistent_dir()
        .and_then(|folder| fs::read_to_string(folder.join(LAST_USERNAME_FILE)).ok())
        .map(|text| text.trim().to_owned())
        .filter(|name| !name.is_empty() && name.len() <= 64);
    saved.or_else(os_user_name)
}

#[cfg(unix)]
fn os_user_name() -> Option<String> {
    nix::unistd::User::from_uid(nix::unistd::geteuid())
        .ok()
        .flatten()
        .map(|user| user.name)
}

#[cfg(windows)]
fn os_user_name() -> Option<String> {
    std::env::var("USERNAME").ok()
}

/// Remembers `username` for the next `occcctl login` (best effort).
pub fn remember_username(username: &str) {
    if let Err(err) = save_private_persistent(LAST_USERNAME_FILE, username.as_bytes()) {
        eprintln!("occcctl: could not remember the username: {err}");
    }
}
