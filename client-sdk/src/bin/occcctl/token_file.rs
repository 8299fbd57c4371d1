//! Where `occcctl login` keeps the session token between commands.
//!
//! Invariant: the file is created 0600 in a folder only the user can read
//! (`$XDG_RUNTIME_DIR/occcctl`, else `~/.local/state/occcctl`);
//! `OCCC_SESSION_TOKEN` in the environment wins over it.

use std::{
    fs::{self, DirBuilder, OpenOptions},
    io::Write,
    os::unix::fs::{DirBuilderExt, OpenOptionsExt},
    path::PathBuf,
};

use occc_client::SessionToken;

/// Environment variable holding a session token for scripts.
pub const TOKEN_ENV: &str = "OCCC_SESSION_TOKEN";

fn token_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".local").join("state"))
        })?;
    Some(base.join("occcctl").join("session"))
}

/// The token to send: the environment's, else the saved one.
pub fn load() -> Option<SessionToken> {
    if let Ok(token) = std::env::var(TOKEN_ENV) {
        return Some(SessionToken::new(token));
    }
    let text = fs::read_to_string(token_path()?).ok()?;
    Some(SessionToken::new(text.trim().to_owned()))
}

/// Saves `token` for later commands.
pub fn save(token: &SessionToken) -> std::io::Result<PathBuf> {
    let path = token_path()
        .ok_or_else(|| std::io::Error::other("neither XDG_RUNTIME_DIR nor HOME is set"))?;
    if let Some(folder) = path.parent() {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(folder)?;
    }
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)?;
    file.write_all(token.expose().as_bytes())?;
    Ok(path)
}

/// Forgets the saved token.
pub fn forget() {
    if let Some(path) = token_path() {
        let _ = fs::remove_file(path);
    }
}
