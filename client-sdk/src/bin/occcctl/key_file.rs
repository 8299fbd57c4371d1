//! The software device key `occcctl device-key register` creates, kept
//! encrypted at rest under a passphrase.
//!
//! Invariant: the private key is written only sealed — AES-256-GCM under a
//! key derived from the passphrase with Argon2id (64 MiB, 3 passes, random
//! salt; the parameters are in the file), associated data naming the format,
//! parameters and key id — atomically, in a persistent per-user folder
//! (`$XDG_STATE_HOME/occcctl`, else `~/.local/state/occcctl`; 0700 folder,
//! 0600 file); a wrong passphrase or an altered file opens nothing, and
//! both say the same.

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
/// Argon2id parameters of new files: memory (KiB), passes, lanes.
const KDF: (u32, u32, u32) = (64 * 1024, 3, 1);
/// Largest parameters a file may ask for (a crafted file must not exhaust
/// memory).
const MAX_KDF_MEMORY_KIB: u32 = 1024 * 1024;
/// Shortest passphrase accepted.
pub const MIN_PASSPHRASE_CHARS: usize = 12;
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
    #[error(
        "the device key file is not a sealed {FORMAT} file (an unsealed key from an older occcctl?): delete it and run `occcctl device-key register` again"
    )]
    Format,
    /// The system random generator or key derivation failed.
    #[error("device key sealing failed: {0}")]
    Crypto(String),
}

/// Where the sealed key lives.
fn path() -> Option<PathBuf> {
    token_file::persistent_dir().map(|dir| dir.join(FILE_NAME))
}

fn kdf_line((memory, passes, lanes): (u32, u32, u32)) -> String {
    format!("argon2id m={memory} t={passes} p={lanes}")
}

fn parse_kdf(line: &str) -> Option<(u32, u32, u32)> {
    let mut fields = line.strip_prefix("argon2id ")?.split(' ');
    let mut value = |prefix: &str| fields.next()?.strip_prefix(prefix)?.parse().ok();
    let kdf = (value("m=")?, value("t=")?, value("p=")?);
    (kdf.0 <= MAX_KDF_MEMORY_KIB && kdf.1 <= 64 && kdf.2 <= 16).then_some(kdf)
}

fn sealing_key(
    passphrase: &str,
    salt: &[u8],
    (memory, passes, lanes): (u32, u32, u32),
) -> Result<LessSafeKey, KeyFileError> {
    let params = Params::new(memory, passes, lanes, Some(32))
        .map_err(|err| KeyFileError::Crypto(err.to_string()))?;
    let mut key = Zeroizing::new([0u8; 32]);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(passphrase.as_bytes(), salt, key.as_mut())
        .map_err(|err| KeyFileError::Crypto(err.to_string()))?;
    let unbound = UnboundKey::new(&AES_256_GCM, key.as_ref())
        .map_err(|_| KeyFileError::Crypto("AES-256-GCM key rejected".to_owned()))?;
    Ok(LessSafeKey::new(unbound))
}

fn associated_data(kdf: (u32, u32, u32), key_id: &str) -> Vec<u8> {
    format!("{FORMAT}\n{}\n{key_id}", kdf_line(kdf)).into_bytes()
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
    // Room for the tag up front: the plaintext is never copied by a regrowth.
    let mut sealed = Zeroizing::new(Vec::with_capacity(
        key.pkcs8().len() + AES_256_GCM.tag_len(),
    ));
    sealed.extend_from_slice(key.pkcs8());
    sealing_key(passphrase, &salt, KDF)?
        .seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(associated_data(KDF, key_id)),
            &mut *sealed,
        )
        .map_err(|_| KeyFileError::Crypto("sealing failed".to_owned()))?;
    let contents = format!(
        "{FORMAT}\n{}\n{key_id}\n{}\n{}\n{}\n",
        kdf_line(KDF),
        hex(&salt),
        hex(&nonce),
        hex(&sealed)
    );
    let saved = token_file::save_private_persistent(FILE_NAME, contents.as_bytes())?;
    token_file::remove_legacy_device_key();
    Ok(saved)
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
    let (Some(FORMAT), Some(kdf), Some(key_id), Some(salt), Some(nonce), Some(sealed)) = (
        lines.next(),
        lines.next().and_then(parse_kdf),
        lines.next(),
        lines.next().and_then(unhex),
        lines.next().and_then(unhex),
        lines.next().and_then(unhex),
    ) else {
        return Err(KeyFileError::Format);
    };
    let nonce = <[u8; NONCE_LEN]>::try_from(nonce.as_slice()).map_err(|_| KeyFileError::Format)?;
    let mut buffer = Zeroizing::new(sealed);
    let pkcs8 = sealing_key(passphrase, &salt, kdf)?
        .open_in_place(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(associated_data(kdf, key_id)),
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

#[cfg(test)]
mod tests {
    use super::*;

    /// What docs/device-keys.md promises of a new file: Argon2id with
    /// 64 MiB, 3 passes and 1 lane, a passphrase of at least 12 characters,
    /// and no file may ask for more than 1 GiB.
    #[test]
    fn new_files_use_the_documented_cost_and_crafted_ones_are_bounded() {
        assert_eq!(kdf_line(KDF), "argon2id m=65536 t=3 p=1");
        assert_eq!(parse_kdf(&kdf_line(KDF)), Some(KDF));
        assert_eq!(
            parse_kdf("argon2id m=1048576 t=3 p=1"),
            Some((1 << 20, 3, 1))
        );
        for crafted in [
            "argon2id m=1048577 t=3 p=1",
            "argon2id m=65536 t=65 p=1",
            "argon2id m=65536 t=3 p=17",
            "argon2i m=65536 t=3 p=1",
            "argon2id m=65536 t=3",
        ] {
            assert_eq!(parse_kdf(crafted), None, "{crafted}");
        }
        let key = SoftwareAuthenticator::generate().unwrap();
        assert!(matches!(
            save("key", &key, "eleven char"),
            Err(KeyFileError::WeakPassphrase)
        ));
    }
}
