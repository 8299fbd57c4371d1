//! The software device key `occcctl device-key register` creates, kept
//! encrypted at rest under a passphrase.
//!
//! Invariant: the private key is written only sealed — AES-256-GCM under a
//! key derived from the passphrase with Argon2id (random salt, associated
//! data naming the format and the key id) — in a persistent per-user folder
//! (`$XDG_STATE_HOME/occcctl`, else `~/.local/state/occcctl`; 0700 folder,
//! 0600 file); a wrong passphrase or an altered file opens nothing.

use std::{fs, path::PathBuf};

use argon2::{Algorithm, Argon2, Params, Version};
use occc_client::SoftwareAuthenticator;
use ring::{
    aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey},
    rand::{SecureRandom, SystemRandom},
};
use zeroize::Zeroizing;

use crate::token_file;

const FILE_NAME: &str = "device-key";
const FORMAT: &str = "occcctl-device-key-v1";
const SALT_BYTES: usize = 16;
/// Shortest passphrase accepted.
pub const MIN_PASSPHRASE_CHARS: usize = 8;
/// Environment variable naming a file that holds the passphrase (scripts).
pub const PASSPHRASE_FILE_ENV: &str = "OCCC_KEY_PASSPHRASE_FILE";

/// Why the key could not be saved or opened.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// Reading or writing the file failed.
    #[error("device key file: {0}")]
    Io(#[from] std::io::Error),
    /// The passphrase is too short.
    #[error("the passphrase must have at least {MIN_PASSPHRASE_CHARS} characters")]
    WeakPassphrase,
    /// Wrong passphrase, or the file was altered.
    #[error("the device key does not open: wrong passphrase, or the file was altered")]
    DoesNotOpen,
    /// Not a file this version wrote.
    #[error("the device key file is not in the {FORMAT} format")]
    Format,
    /// The system random generator or key derivation failed.
    #[error("device key sealing failed: {0}")]
    Crypto(String),
}

/// Where the sealed key lives.
fn path() -> Option<PathBuf> {
    token_file::persistent_dir().map(|dir| dir.join(FILE_NAME))
}

fn sealing_key(passphrase: &str, salt: &[u8]) -> Result<LessSafeKey, KeyFileError> {
    // OWASP's Argon2id minimum for interactive use: 19 MiB, 2 passes.
    let params = Params::new(19 * 1024, 2, 1, Some(32))
        .map_err(|err| KeyFileError::Crypto(err.to_string()))?;
    let mut key = Zeroizing::new([0u8; 32]);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(passphrase.as_bytes(), salt, key.as_mut())
        .map_err(|err| KeyFileError::Crypto(err.to_string()))?;
    let unbound = UnboundKey::new(&AES_256_GCM, key.as_ref())
        .map_err(|_| KeyFileError::Crypto("AES-256-GCM key rejected".to_owned()))?;
    Ok(LessSafeKey::new(unbound))
}

fn associated_data(key_id: &str) -> Vec<u8> {
    format!("{FORMAT}\n{key_id}").into_bytes()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    (0..text.len())
        .step_by(2)
        .map(|i| {
            text.get(i..i + 2)
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
        })
        .collect()
}

/// Seals `key` (registered as `key_id`) under `passphrase` and saves it.
pub fn save(
    key_id: &str,
    key: &SoftwareAuthenticator,
    passphrase: &str,
) -> Result<PathBuf, KeyFileError> {
    if passphrase.chars().count() < MIN_PASSPHRASE_CHARS {
        return Err(KeyFileError::WeakPassphrase);
    }
    let random = SystemRandom::new();
    let mut salt = [0u8; SALT_BYTES];
    let mut nonce = [0u8; NONCE_LEN];
    random
        .fill(&mut salt)
        .and_then(|()| random.fill(&mut nonce))
        .map_err(|_| KeyFileError::Crypto("the system random generator failed".to_owned()))?;
    let mut sealed = key.pkcs8().to_vec();
    sealing_key(passphrase, &salt)?
        .seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(associated_data(key_id)),
            &mut sealed,
        )
        .map_err(|_| KeyFileError::Crypto("sealing failed".to_owned()))?;
    let contents = format!(
        "{FORMAT}\n{key_id}\n{}\n{}\n{}\n",
        hex(&salt),
        hex(&nonce),
        hex(&sealed)
    );
    Ok(token_file::save_private_persistent(
        FILE_NAME,
        contents.as_bytes(),
    )?)
}

/// Whether a sealed key is saved.
#[must_use]
pub fn exists() -> bool {
    path().is_some_and(|path| path.exists())
}

/// Opens the saved key with `passphrase`: (key id, authenticator).
pub fn open(passphrase: &str) -> Result<(String, SoftwareAuthenticator), KeyFileError> {
    let path = path().ok_or_else(|| {
        KeyFileError::Io(std::io::Error::other(
            "neither XDG_STATE_HOME nor HOME is set",
        ))
    })?;
    let text = fs::read_to_string(path)?;
    let mut lines = text.lines();
    let (Some(FORMAT), Some(key_id), Some(salt), Some(nonce), Some(sealed)) = (
        lines.next(),
        lines.next(),
        lines.next().and_then(unhex),
        lines.next().and_then(unhex),
        lines.next().and_then(unhex),
    ) else {
        return Err(KeyFileError::Format);
    };
    let nonce = <[u8; NONCE_LEN]>::try_from(nonce.as_slice()).map_err(|_| KeyFileError::Format)?;
    let mut buffer = Zeroizing::new(sealed);
    let pkcs8 = sealing_key(passphrase, &salt)?
        .open_in_place(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(associated_data(key_id)),
            buffer.as_mut_slice(),
        )
        .map_err(|_| KeyFileError::DoesNotOpen)?;
    let key = SoftwareAuthenticator::from_pkcs8(pkcs8).map_err(|_| KeyFileError::DoesNotOpen)?;
    Ok((key_id.to_owned(), key))
}

/// The passphrase from the file `$OCCC_KEY_PASSPHRASE_FILE` names, if set.
pub fn passphrase_from_env() -> Option<Result<Zeroizing<String>, KeyFileError>> {
    let file = std::env::var_os(PASSPHRASE_FILE_ENV)?;
    Some(
        fs::read_to_string(file)
            .map(|text| Zeroizing::new(text.trim_end_matches(['\r', '\n']).to_owned()))
            .map_err(KeyFileError::Io),
    )
}
