//! Where `occcctl` keeps the session token and a software device key
//! between commands.
//!
//! Invariant: files are created 0600 in a folder only the user can read
//! (`$XDG_RUNTIME_DIR/occcctl`, else `~/.local/state/occcctl`);
//! `OCCC_SESSION_TOKEN` in the environment wins over the saved token.

use std::{
    fs::{self, DirBuilder, OpenOptions},
    io::Write,
    os::unix::fs::{DirBuilderExt, OpenOptionsExt},
    path::PathBuf,
};

use occc_client::SessionToken;

/// Environment variable holding a session token for scripts.
pub const TOKEN_ENV: &str = "OCCC_SESSION_TOKEN";
const SESSION_FILE: &str = "session";

fn state_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".local").join("state"))
        })?;
    Some(base.join("occcctl"))
}

/// Writes `contents` to `name` in the private state folder (0600).
pub fn save_private(name: &str, contents: &[u8]) -> std::io::Result<PathBuf> {
    let folder = state_dir()
        .ok_or_else(|| std::io::Error::other("neither XDG_RUNTIME_DIR nor HOME is set"))?;
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&folder)?;
    let path = folder.join(name);
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)?;
    file.write_all(contents)?;
    Ok(path)
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
