//! Passwords: the policy a new password must meet, and Argon2id hashing.
//!
//! Invariant: oversized input is refused before normalisation or hashing;
//! hashing runs off the async runtime, at most `max_concurrent` at a time, so
//! memory stays bounded; an unknown user costs the same work as a known one.

use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

use argon2::{
    Algorithm, Argon2, Params, PasswordHash, PasswordHasher as _, PasswordVerifier as _, Version,
    password_hash::SaltString,
};
use tokio::sync::Semaphore;
use unicode_normalization::UnicodeNormalization;
use unicode_segmentation::UnicodeSegmentation;
use zeroize::Zeroizing;

/// Longest password accepted, in bytes as received (checked before any work).
pub const MAX_PASSWORD_BYTES: usize = 1024;
/// Shortest password, in user-visible characters after NFKC.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// zxcvbn scores below this are weak (0–4 scale).
const MIN_STRENGTH_SCORE: u8 = 3;

/// Why a new password is not accepted. Never contains the password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordRejected {
    /// Longer than [`MAX_PASSWORD_BYTES`].
    #[error("password is longer than {MAX_PASSWORD_BYTES} bytes")]
    TooLong,
    /// Shorter than [`MIN_PASSWORD_CHARS`].
    #[error("password has {0} characters; at least {MIN_PASSWORD_CHARS} are required")]
    TooShort(usize),
    /// Contains the username.
    #[error("password must not contain the username")]
    ContainsUsername,
    /// The strength estimator rates it weak.
    #[error("password is too easy to guess{0}")]
    Weak(String),
}

/// Checks a proposed password; returns it NFKC-normalised.
pub fn check_new_password(
    username: &str,
    password: &str,
) -> Result<Zeroizing<String>, PasswordRejected> {
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(PasswordRejected::TooLong);
    }
    let normalized = normalize(password);
    let chars = normalized.graphemes(true).count();
    if chars < MIN_PASSWORD_CHARS {
        return Err(PasswordRejected::TooShort(chars));
    }
    let lowered = Zeroizing::new(normalized.to_lowercase());
    if username.chars().count() >= 3 && lowered.contains(&username.to_lowercase()) {
        return Err(PasswordRejected::ContainsUsername);
    }
    let estimate = zxcvbn::zxcvbn(&normalized, &[username]);
    if u8::from(estimate.score()) < MIN_STRENGTH_SCORE {
        let hint = estimate
            .feedback()
            .and_then(|feedback| feedback.warning())
            .map(|warning| format!(": {warning}"))
            .unwrap_or_default();
        return Err(PasswordRejected::Weak(hint));
    }
    Ok(normalized)
}

/// NFKC form, so the same password typed on different keyboards matches.
#[must_use]
pub fn normalize(password: &str) -> Zeroizing<String> {
    Zeroizing::new(password.nfkc().collect())
}

/// Argon2id cost parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashCost {
    /// Passes (t).
    pub iterations: u32,
    /// Memory in KiB (m).
    pub memory_kib: u32,
    /// Lanes (p).
    pub parallelism: u32,
}

impl HashCost {
    /// RFC 9106's second recommended option: t=3, m=64 MiB, p=4.
    pub const RFC_9106_SECOND: HashCost = HashCost {
        iterations: 3,
        memory_kib: 64 * 1024,
        parallelism: 4,
    };
}

/// Why hashing failed (never because of the password itself).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HashingError {
    /// The parameters are out of Argon2's range.
    #[error("invalid Argon2 parameters: {0}")]
    Parameters(String),
    /// A stored hash is not a valid PHC string.
    #[error("stored password hash is malformed")]
    MalformedHash,
    /// The blocking task failed.
    #[error("password hashing task failed")]
    Task,
    /// The operating system's random generator failed.
    #[error("the system random number generator failed")]
    Random,
}

/// Result of checking a password against a stored hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verification {
    /// Wrong password.
    Mismatch,
    /// Right password; `needs_rehash` when the hash uses other parameters.
    Match {
        /// The stored hash should be replaced with one at current cost.
        needs_rehash: bool,
    },
}

/// Hashes and verifies passwords with bounded concurrency.
#[derive(Debug, Clone)]
pub struct PasswordHashing {
    params: Params,
    permits: Arc<Semaphore>,
    computed: Arc<AtomicU64>,
    /// A real hash of a random password, verified against for unknown users;
    /// computed once, off the start-up path.
    decoy_hash: Arc<tokio::sync::OnceCell<String>>,
}

impl PasswordHashing {
    /// A hasher at `cost`, running at most `max_concurrent` hashes at once.
    pub fn new(cost: HashCost, max_concurrent: usize) -> Result<Self, HashingError> {
        let params = Params::new(cost.memory_kib, cost.iterations, cost.parallelism, None)
            .map_err(|err| HashingError::Parameters(err.to_string()))?;
        Ok(Self {
            params,
            permits: Arc::new(Semaphore::new(max_concurrent.max(1))),
            computed: Arc::new(AtomicU64::new(0)),
            decoy_hash: Arc::new(tokio::sync::OnceCell::new()),
        })
    }

    /// Computes the decoy hash now (call in the background at start-up) so
    /// the first unknown-user login costs no more than any other.
    pub async fn prepare_decoy(&self) -> Result<(), HashingError> {
        self.decoy().await.map(drop)
    }

    async fn decoy(&self) -> Result<String, HashingError> {
        let params = self.params.clone();
        self.decoy_hash
            .get_or_try_init(|| async move {
                let decoy = Zeroizing::new(data_encoding::HEXLOWER.encode(&random_bytes::<16>()?));
                self.run(move || hash_blocking(&params, &decoy)).await
            })
            .await
            .cloned()
    }

    /// How many hashes this daemon computed (for tests and metrics).
    #[must_use]
    pub fn computed(&self) -> u64 {
        self.computed.load(Ordering::Relaxed)
    }

    /// A PHC string for `password` (already normalised).
    pub async fn hash(&self, password: Zeroizing<String>) -> Result<String, HashingError> {
        let params = self.params.clone();
        self.run(move || hash_blocking(&params, &password)).await
    }

    /// Checks `password` against `stored_phc`; with `None`, does the same work
    /// against a decoy and reports a mismatch (unknown user).
    pub async fn verify(
        &self,
        stored_phc: Option<String>,
        password: Zeroizing<String>,
    ) -> Result<Verification, HashingError> {
        let is_decoy = stored_phc.is_none();
        let stored = match stored_phc {
            Some(stored) => stored,
            None => self.decoy().await?,
        };
        let params = self.params.clone();
        let verification = self
            .run(move || verify_blocking(&params, &stored, &password))
            .await?;
        Ok(if is_decoy {
            Verification::Mismatch
        } else {
            verification
        })
    }

    /// Checks a proposed password ([`check_new_password`]) on the blocking
    /// pool, never on an async worker: the strength estimate costs up to a
    /// few hundred milliseconds of CPU for crafted input (fuzzing found one
    /// of 99 bytes taking 0.2 s). `held` (the caller's place, see
    /// `AuthCore::check_new_password`) is kept until the estimate ends,
    /// even if the caller goes away first. No Argon2 permit is taken, so
    /// these checks never delay a login.
    pub async fn check_new(
        &self,
        held: impl Send + 'static,
        username: &str,
        password: &str,
    ) -> Result<Result<Zeroizing<String>, PasswordRejected>, HashingError> {
        if password.len() > MAX_PASSWORD_BYTES {
            return Ok(Err(PasswordRejected::TooLong));
        }
        let (username, password) = (username.to_owned(), Zeroizing::new(password.to_owned()));
        tokio::task::spawn_blocking(move || {
            let _held = held;
            check_new_password(&username, &password)
        })
        .await
        .map_err(|_| HashingError::Task)
    }

    /// Runs an Argon2 computation on the blocking pool once a permit is
    /// free, counting it. The permit goes with the computation: a caller
    /// that leaves does not free it before the computation ends.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T, HashingError> + Send + 'static,
    ) -> Result<T, HashingError> {
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|_| HashingError::Task)?;
        self.computed.fetch_add(1, Ordering::Relaxed);
        tracing::debug!("argon2 computation started");
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            work()
        })
        .await
        .map_err(|_| HashingError::Task)?
    }
}

fn argon2(params: &Params) -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
}

fn hash_blocking(params: &Params, password: &str) -> Result<String, HashingError> {
    let salt = SaltString::encode_b64(&random_bytes::<16>()?)
        .map_err(|err| HashingError::Parameters(err.to_string()))?;
    argon2(params)
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|err| HashingError::Parameters(err.to_string()))
}

fn verify_blocking(
    params: &Params,
    stored: &str,
    password: &str,
) -> Result<Verification, HashingError> {
    let (parsed, current) = stored_hash(params, stored)?;
    // Verify with the parameters stored in the hash itself (argon2 reads them).
    match Argon2::default().verify_password(password.as_bytes(), &parsed) {
        Ok(()) => {
            let same_algorithm = parsed.algorithm.as_str() == "argon2id";
            let needs_rehash = !same_algorithm
                || current.m_cost() != params.m_cost()
                || current.t_cost() != params.t_cost()
                || current.p_cost() != params.p_cost();
            Ok(Verification::Match { needs_rehash })
        }
        Err(argon2::password_hash::Error::Password) => Ok(Verification::Mismatch),
        Err(_) => Err(HashingError::MalformedHash),
    }
}

/// The most a stored hash may ask of one verification when the configured
/// cost is lower: a hash naming more (a tampered or foreign store) is
/// refused as malformed before Argon2 runs, so it cannot make one login
/// allocate gigabytes or run for minutes.
const STORED_COST_CEILING: HashCost = HashCost {
    iterations: 16,
    memory_kib: 1024 * 1024,
    parallelism: 16,
};

/// A stored PHC string parsed, with the Argon2 parameters it names, when
/// none of them exceeds both the configured cost (`params`) and
/// [`STORED_COST_CEILING`], nor their work (memory × passes) both the
/// configured work and 1 GiB × 4 passes; no hashing is done here.
pub fn stored_hash<'a>(
    params: &Params,
    stored: &'a str,
) -> Result<(PasswordHash<'a>, Params), HashingError> {
    let parsed = PasswordHash::new(stored).map_err(|_| HashingError::MalformedHash)?;
    // argon2 0.5 multiplies the lanes by 8 before it checks their bound: a
    // count past 2^29 overflows there (a panic where overflow is checked).
    let lanes_in_range = parsed
        .params
        .iter()
        .filter(|(ident, _)| ident.as_str() == "p")
        .all(|(_, value)| {
            value
                .decimal()
                .is_ok_and(|lanes| lanes <= Params::MAX_P_COST)
        });
    if !lanes_in_range {
        return Err(HashingError::MalformedHash);
    }
    let named = Params::try_from(&parsed).map_err(|_| HashingError::MalformedHash)?;
    // Each dimension, and the work (memory × passes) they make together.
    let work = |memory: u32, passes: u32| u64::from(memory) * u64::from(passes);
    let most_work = work(params.m_cost(), params.t_cost()).max(work(
        STORED_COST_CEILING.memory_kib,
        STORED_COST_CEILING.iterations / 4,
    ));
    let within = named.m_cost() <= params.m_cost().max(STORED_COST_CEILING.memory_kib)
        && named.t_cost() <= params.t_cost().max(STORED_COST_CEILING.iterations)
        && named.p_cost() <= params.p_cost().max(STORED_COST_CEILING.parallelism)
        && work(named.m_cost(), named.t_cost()) <= most_work;
    if within {
        Ok((parsed, named))
    } else {
        Err(HashingError::MalformedHash)
    }
}

fn random_bytes<const N: usize>() -> Result<[u8; N], HashingError> {
    use ring::rand::{SecureRandom, SystemRandom};
    let mut bytes = [0u8; N];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| HashingError::Random)?;
    Ok(bytes)
}

#[cfg(test)]
#[path = "password_tests.rs"]
mod tests;
