//! Finding, checking and creating the 256-bit master key.
//!
//! Invariant: a key is read from the first source that exists — systemd
//! credential, then key file — and a new key is generated only when neither
//! exists *and* the database does not exist yet, so an existing database is
//! never paired with a fresh key. A key file that group or others can read is
//! refused.

use std::{
    fmt, fs,
    io::Write,
    path::{Path, PathBuf},
};

use ring::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

use super::{
    private_file::{private_file_options, sync_folder},
    subkeys::MasterKey,
};

/// Length of the master key in bytes.
const KEY_BYTES: usize = 32;

/// Where the master key came from, for logs and error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// `$CREDENTIALS_DIRECTORY/<name>`, provided by systemd.
    SystemdCredential(PathBuf),
    /// A key file named in the config.
    KeyFile(PathBuf),
    /// A key file generated on this, the first, start.
    Generated(PathBuf),
}

impl fmt::Display for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::SystemdCredential(path) => write!(f, "systemd credential {}", path.display()),
            Self::KeyFile(path) => write!(f, "key file {}", path.display()),
            Self::Generated(path) => write!(f, "new key file {}", path.display()),
        }
    }
}

/// Why no usable master key was found.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The database exists but none of the key sources does.
    #[error(
        "database {database} exists but no master key was found; tried: {tried}. \
         Restore the key file or credential that belongs to this database"
    )]
    Missing {
        /// The database that needs the key.
        database: PathBuf,
        /// Each source tried and why it was not used.
        tried: String,
    },
    /// The key file is readable by group or others.
    #[error(
        "key file {path} has mode {mode:04o}; it must not be readable by group or others \
         (run: chmod 600 {path})"
    )]
    TooOpen {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The key file belongs to another user.
    #[error("key file {path} is owned by uid {owner}, not by this daemon's uid {expected}")]
    WrongOwner {
        /// The key file.
        path: PathBuf,
        /// Its owner.
        owner: u32,
        /// The daemon's effective uid.
        expected: u32,
    },
    /// The key file or its folder is open to others (Windows ACLs).
    #[error(
        "{path} is not private: {why}; give it to LocalSystem and Administrators only \
         (icacls {path} /setowner SYSTEM, then icacls {path} /inheritance:r /grant:r \
         SYSTEM:F Administrators:F, with (OI)(CI) after each F on a folder)"
    )]
    NotPrivate {
        /// The file or folder.
        path: PathBuf,
        /// Who else may reach it.
        why: String,
    },
    /// The key source is not a regular file of 64 hex digits.
    #[error("{source_name} does not hold a key: expected 64 hex digits (32 bytes)")]
    Malformed {
        /// The source, as displayed by [`KeySource`].
        source_name: String,
    },
    /// Reading or writing a key source failed.
    #[error("{source_name}: {error}")]
    Io {
        /// The source.
        source_name: String,
        /// The I/O error.
        error: std::io::Error,
    },
    /// The operating system's random generator failed.
    #[error("the system random number generator failed")]
    Random,
}

/// Resolves the master key: systemd credential, key file, or a key generated
/// now when `database_exists` is false.
pub fn resolve_master_key(
    credentials_dir: Option<&Path>,
    credential_name: &str,
    key_file: &Path,
    database: &Path,
    database_exists: bool,
) -> Result<(MasterKey, KeySource), KeyError> {
    let mut tried = Vec::new();
    match credentials_dir {
        Some(dir) => {
            let path = dir.join(credential_name);
            if path.exists() {
                let source = KeySource::SystemdCredential(path.clone());
                return Ok((read_key(&path, &source)?, source));
            }
            tried.push(format!("systemd credential {} (absent)", path.display()));
        }
        None => tried.push("systemd credential (CREDENTIALS_DIRECTORY not set)".to_owned()),
    }
    if key_file.exists() {
        let source = KeySource::KeyFile(key_file.to_owned());
        check_key_file_permissions(key_file)?;
        return Ok((read_key(key_file, &source)?, source));
    }
    tried.push(format!("key file {} (absent)", key_file.display()));
    if database_exists {
        return Err(KeyError::Missing {
            database: database.to_owned(),
            tried: tried.join(", "),
        });
    }
    let source = KeySource::Generated(key_file.to_owned());
    Ok((generate_key_file(key_file, &source)?, source))
}

/// Reads the key file at `path`, which must be private to this user.
pub fn read_key_file(path: &Path) -> Result<MasterKey, KeyError> {
    check_key_file_permissions(path)?;
    read_key(path, &KeySource::KeyFile(path.to_owned()))
}

/// Writes a new random key to a new file at `path` (0600, synced, never
/// over an existing file) and returns it.
pub fn create_key_file(path: &Path) -> Result<MasterKey, KeyError> {
    generate_key_file(path, &KeySource::Generated(path.to_owned()))
}

/// Windows: the key file and its folder must belong to LocalSystem,
/// Administrators or the daemon's user, and give no right to anyone else
/// (a folder any user could make in `C:\ProgramData` is refused).
#[cfg(windows)]
fn check_key_file_permissions(path: &Path) -> Result<(), KeyError> {
    if let Some(folder) = path.parent() {
        check_private(folder)?;
    }
    check_private(path)
}

#[cfg(windows)]
fn check_private(path: &Path) -> Result<(), KeyError> {
    use occc_peer_identity::{ADMINISTRATORS_SID, ANY_ACCESS, LOCAL_SYSTEM_SID, windows};
    let io_error = |error| KeyError::Io {
        source_name: path.display().to_string(),
        error,
    };
    let own = windows::current_user_sid().map_err(io_error)?;
    let descriptor = windows::path_descriptor(path).map_err(io_error)?;
    match descriptor.untrusted(&[LOCAL_SYSTEM_SID, ADMINISTRATORS_SID, &own], ANY_ACCESS) {
        None => Ok(()),
        Some(why) => Err(KeyError::NotPrivate {
            path: path.to_owned(),
            why,
        }),
    }
}

#[cfg(unix)]
fn check_key_file_permissions(path: &Path) -> Result<(), KeyError> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let metadata = fs::metadata(path).map_err(|error| KeyError::Io {
        source_name: KeySource::KeyFile(path.to_owned()).to_string(),
        error,
    })?;
    let mode = metadata.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(KeyError::TooOpen {
            path: path.to_owned(),
            mode,
        });
    }
    let expected = nix::unistd::geteuid().as_raw();
    if metadata.uid() != expected {
        return Err(KeyError::WrongOwner {
            path: path.to_owned(),
            owner: metadata.uid(),
            expected,
        });
    }
    Ok(())
}

fn read_key(path: &Path, source: &KeySource) -> Result<MasterKey, KeyError> {
    let malformed = || KeyError::Malformed {
        source_name: source.to_string(),
    };
    let io_error = |error| KeyError::Io {
        source_name: source.to_string(),
        error,
    };
    // Opened without blocking (a FIFO in its place answers at once) and
    // checked on the opened file, so nothing swapped in after a check is read.
    let mut options = fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(
        &mut options,
        nix::fcntl::OFlag::O_NONBLOCK.bits(),
    );
    let mut file = options.open(path).map_err(io_error)?;
    let metadata = file.metadata().map_err(io_error)?;
    // A key file is 64 hex digits and perhaps a newline; refuse anything big
    // before reading it.
    if !metadata.is_file() || metadata.len() > 2 * KEY_BYTES as u64 + 2 {
        return Err(malformed());
    }
    // Read into a fixed buffer (no reallocation leaves a copy behind).
    let mut buffer = Zeroizing::new([0u8; 2 * KEY_BYTES + 2]);
    let mut filled = 0;
    while filled < buffer.len() {
        match std::io::Read::read(&mut file, &mut buffer[filled..]) {
            Ok(0) => break,
            Ok(read) => filled += read,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
            Err(error) => return Err(io_error(error)),
        }
    }
    let text = &buffer[..filled];
    let digits = text.trim_ascii();
    let mut key = Zeroizing::new([0u8; KEY_BYTES]);
    hex::decode_to_slice(digits, key.as_mut_slice()).map_err(|_| malformed())?;
    Ok(MasterKey::from_bytes(key))
}

fn generate_key_file(path: &Path, source: &KeySource) -> Result<MasterKey, KeyError> {
    let io_error = |error| KeyError::Io {
        source_name: source.to_string(),
        error,
    };
    let mut key = Zeroizing::new([0u8; KEY_BYTES]);
    SystemRandom::new()
        .fill(key.as_mut_slice())
        .map_err(|_| KeyError::Random)?;
    // Room for the newline from the start: no unwiped reallocation.
    let mut digits = Zeroizing::new(String::with_capacity(2 * KEY_BYTES + 1));
    digits.push_str(&Zeroizing::new(hex::encode(key.as_slice())));
    digits.push('\n');
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(io_error)?;
        #[cfg(windows)]
        check_private(parent)?;
    }
    let mut file = private_file_options()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(io_error)?;
    file.write_all(digits.as_bytes()).map_err(io_error)?;
    file.sync_all().map_err(io_error)?;
    if let Some(parent) = path.parent() {
        sync_folder(parent).map_err(io_error)?;
    }
    Ok(MasterKey::from_bytes(key))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn resolve(dir: &Path, database_exists: bool) -> Result<(MasterKey, KeySource), KeyError> {
        resolve_master_key(
            None,
            "occcd-master-key",
            &dir.join("master.key"),
            &dir.join("occcd.db"),
            database_exists,
        )
    }

    #[test]
    fn first_start_generates_a_private_key_file_then_reuses_it() {
        let dir = tempfile::tempdir().unwrap();
        let (first, source) = resolve(dir.path(), false).unwrap();
        assert!(matches!(source, KeySource::Generated(_)));
        let mode = fs::metadata(dir.path().join("master.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let (second, source) = resolve(dir.path(), true).unwrap();
        assert!(matches!(source, KeySource::KeyFile(_)));
        assert!(first.same_key_as(&second));
    }

    #[test]
    fn existing_database_without_key_names_every_source_tried() {
        let dir = tempfile::tempdir().unwrap();
        let err = resolve(dir.path(), true).unwrap_err().to_string();
        assert!(err.contains("CREDENTIALS_DIRECTORY"), "{err}");
        assert!(err.contains("master.key"), "{err}");
        assert!(!dir.path().join("master.key").exists());
    }

    #[test]
    fn group_readable_key_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        resolve(dir.path(), false).unwrap();
        let path = dir.path().join("master.key");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        let err = resolve(dir.path(), true).unwrap_err();
        assert!(
            matches!(err, KeyError::TooOpen { mode: 0o640, .. }),
            "{err}"
        );
    }

    #[test]
    fn credential_wins_over_key_file() {
        let dir = tempfile::tempdir().unwrap();
        let creds = dir.path().join("creds");
        fs::create_dir(&creds).unwrap();
        fs::write(creds.join("occcd-master-key"), "ab".repeat(32)).unwrap();
        let (_, source) = resolve_master_key(
            Some(&creds),
            "occcd-master-key",
            &dir.path().join("master.key"),
            &dir.path().join("occcd.db"),
            true,
        )
        .unwrap();
        assert!(matches!(source, KeySource::SystemdCredential(_)));
    }

    #[test]
    fn malformed_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        fs::write(&path, "not hex at all").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        let err = resolve(dir.path(), true).unwrap_err();
        assert!(matches!(err, KeyError::Malformed { .. }), "{err}");
    }
}
