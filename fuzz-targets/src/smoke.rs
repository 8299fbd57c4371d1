//! A seed-mutating driver for the fuzz targets on the stable toolchain: it
//! feeds a target every seed and regression input, then mutations of them
//! until a time budget is spent. No coverage guidance — it finds what breaks
//! near the seeds, in seconds, from the test suite's own build; the search
//! that learns from coverage is cargo-fuzz's (`scripts/fuzz`).
//!
//! Invariant: an input that panics, or runs longer than the hang limit,
//! ends the run with an error naming a file that holds that input, ready to
//! replay with `cargo fuzz run TARGET FILE` or to keep as a regression.

use std::{
    fmt, fs,
    panic::{AssertUnwindSafe, catch_unwind},
    path::{Path, PathBuf},
    sync::mpsc,
    thread,
    time::{Duration, Instant},
};

use crate::Target;

/// How long a run lasts, and how long one input may run before the run
/// counts it as a hang.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Mutants are fed until this much time has passed.
    pub total: Duration,
    /// One input running longer is a hang.
    pub per_input: Duration,
}

impl Budget {
    /// `total` for the run, and libFuzzer's `-timeout` of `scripts/fuzz`
    /// (10 s) per input.
    #[must_use]
    pub fn seconds(total: u64) -> Self {
        Self {
            total: Duration::from_secs(total),
            per_input: Duration::from_secs(10),
        }
    }
}

/// The largest mutant fed to a target: four times the largest starting
/// input, and never less than this.
const MIN_MUTANT_CEILING: usize = 4096;

/// What a finished run did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SmokeReport {
    /// Inputs fed to the target, starting inputs included.
    pub runs: u64,
    /// Seeds and regression inputs it started from.
    pub starting_inputs: usize,
    /// The random generator's seed, to repeat the same mutants.
    pub seed: u64,
}

/// Why a run failed.
#[derive(Debug)]
pub enum SmokeFailure {
    /// The target panicked on the input saved at `input`.
    Panicked {
        /// Where the input is saved.
        input: PathBuf,
        /// The panic's message.
        message: String,
    },
    /// The input saved at `input` ran longer than the per-input budget.
    Hung {
        /// Where the input is saved.
        input: PathBuf,
        /// That budget.
        limit: Duration,
    },
    /// The starting inputs could not be read, or an input not saved.
    Io(String),
}

impl fmt::Display for SmokeFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Panicked { input, message } => {
                write!(
                    f,
                    "panicked ({message}); input saved at {}",
                    input.display()
                )
            }
            Self::Hung { input, limit } => write!(
                f,
                "ran longer than {} ms; input saved at {}",
                limit.as_millis(),
                input.display()
            ),
            Self::Io(why) => f.write_str(why),
        }
    }
}

/// Feeds `target` every file in `starting_folders` (missing folders are
/// empty), then mutants of them until `budget` is spent; a failing input is
/// written under `artifacts`. `seed` picks the mutants (the same seed and
/// inputs give the same sequence).
pub fn run(
    target: Target,
    starting_folders: &[PathBuf],
    artifacts: &Path,
    budget: Budget,
    seed: u64,
) -> Result<SmokeReport, SmokeFailure> {
    let starting = starting_inputs(starting_folders)?;
    let ceiling = starting
        .iter()
        .map(Vec::len)
        .max()
        .unwrap_or(0)
        .saturating_mul(4)
        .max(MIN_MUTANT_CEILING);
    let worker = Worker::start(target, budget.per_input);
    let mut random = Xorshift::new(seed);
    let mut runs = 0u64;
    for input in &starting {
        worker.feed(input, target, artifacts)?;
        runs += 1;
    }
    let pool = if starting.is_empty() {
        vec![Vec::new()]
    } else {
        starting.clone()
    };
    let started = Instant::now();
    let mut previous = pool[0].clone();
    while started.elapsed() < budget.total {
        // Mostly from a starting input; sometimes onward from the last
        // mutant, to wander further than one step from the seeds.
        let base = if random.below(4) == 0 {
            previous
        } else {
            pool[random.below(pool.len())].clone()
        };
        let other = &pool[random.below(pool.len())];
        let mutant = mutate(base, other, &mut random, ceiling);
        worker.feed(&mutant, target, artifacts)?;
        runs += 1;
        previous = mutant;
    }
    Ok(SmokeReport {
        runs,
        starting_inputs: starting.len(),
        seed,
    })
}

fn starting_inputs(folders: &[PathBuf]) -> Result<Vec<Vec<u8>>, SmokeFailure> {
    let mut inputs = Vec::new();
    for folder in folders {
        let entries = match fs::read_dir(folder) {
            Ok(entries) => entries,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => continue,
            Err(err) => return Err(SmokeFailure::Io(format!("{}: {err}", folder.display()))),
        };
        let mut paths: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|path| path.is_file())
            .collect();
        paths.sort();
        for path in paths {
            let bytes = fs::read(&path)
                .map_err(|err| SmokeFailure::Io(format!("{}: {err}", path.display())))?;
            inputs.push(bytes);
        }
    }
    Ok(inputs)
}

/// The thread that runs the target, so a hang can be noticed from outside.
struct Worker {
    inputs: mpsc::Sender<Vec<u8>>,
    outcomes: mpsc::Receiver<Result<(), String>>,
    hang_limit: Duration,
}

impl Worker {
    fn start(target: Target, hang_limit: Duration) -> Self {
        let (inputs, inbox) = mpsc::channel::<Vec<u8>>();
        let (outbox, outcomes) = mpsc::channel();
        thread::spawn(move || {
            while let Ok(input) = inbox.recv() {
                let outcome = catch_unwind(AssertUnwindSafe(|| (target.body)(&input)))
                    .map_err(|payload| panic_message(payload.as_ref()));
                if outbox.send(outcome).is_err() {
                    break;
                }
            }
        });
        Self {
            inputs,
            outcomes,
            hang_limit,
        }
    }

    fn feed(&self, input: &[u8], target: Target, artifacts: &Path) -> Result<(), SmokeFailure> {
        let dead = || SmokeFailure::Io("the target's thread ended".to_owned());
        self.inputs.send(input.to_vec()).map_err(|_| dead())?;
        match self.outcomes.recv_timeout(self.hang_limit) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(message)) => Err(SmokeFailure::Panicked {
                input: save(artifacts, target, "crash", input)?,
                message,
            }),
            Err(mpsc::RecvTimeoutError::Timeout) => Err(SmokeFailure::Hung {
                input: save(artifacts, target, "timeout", input)?,
                limit: self.hang_limit,
            }),
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(dead()),
        }
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|text| (*text).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}

/// Writes a failing input as `<artifacts>/<target>/<kind>-<fnv64 of it>`
/// (libFuzzer names its artifacts the same way: kind, then a digest).
fn save(
    artifacts: &Path,
    target: Target,
    kind: &str,
    input: &[u8],
) -> Result<PathBuf, SmokeFailure> {
    let digest = input.iter().fold(0xcbf2_9ce4_8422_2325_u64, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    });
    let folder = artifacts.join(target.name);
    let path = folder.join(format!("{kind}-{digest:016x}"));
    fs::create_dir_all(&folder)
        .and_then(|()| fs::write(&path, input))
        .map_err(|err| {
            SmokeFailure::Io(format!("saving the input at {}: {err}", path.display()))
        })?;
    Ok(path)
}

/// Bytes that change how parsers read what follows: delimiters, quotes,
/// escapes, length-like extremes.
const INTERESTING: &[u8] = b"\x00\x01\x7f\x80\xff\"'\\{}[]<>:=,\n\r\t #-/.$";

/// One to four stacked edits of `base`: bit flips, interesting bytes,
/// random insertions, deletions, duplicated ranges, a run of one delimiter
/// (deep nesting), a splice with `other`, truncation.
fn mutate(mut base: Vec<u8>, other: &[u8], random: &mut Xorshift, ceiling: usize) -> Vec<u8> {
    for _ in 0..=random.below(4) {
        let len = base.len();
        match random.below(8) {
            0 if len > 0 => {
                let at = random.below(len);
                base[at] ^= 1 << random.below(8);
            }
            1 if len > 0 => {
                let at = random.below(len);
                base[at] = INTERESTING[random.below(INTERESTING.len())];
            }
            2 => {
                let at = random.below(len + 1);
                let count = 1 + random.below(8);
                let bytes: Vec<u8> = (0..count).map(|_| random.byte()).collect();
                base.splice(at..at, bytes);
            }
            3 if len > 0 => {
                let from = random.below(len);
                let to = (from + 1 + random.below(16)).min(len);
                base.drain(from..to);
            }
            4 if len > 0 => {
                let from = random.below(len);
                let to = (from + 1 + random.below(64)).min(len);
                let chunk = base[from..to].to_vec();
                let at = random.below(len + 1);
                base.splice(at..at, chunk);
            }
            5 => {
                let at = random.below(len + 1);
                let delimiter = INTERESTING[random.below(INTERESTING.len())];
                let run = vec![delimiter; 1 + random.below(2048)];
                base.splice(at..at, run);
            }
            6 if !other.is_empty() => {
                let keep = random.below(len + 1);
                let from = random.below(other.len());
                base.truncate(keep);
                base.extend_from_slice(&other[from..]);
            }
            _ => {
                base.truncate(random.below(len + 1));
            }
        }
    }
    base.truncate(ceiling);
    base
}

/// xorshift64*: fast, and repeatable from its seed (mutants, not secrets).
#[derive(Debug)]
struct Xorshift(u64);

impl Xorshift {
    fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        let n = u64::try_from(n.max(1)).unwrap_or(u64::MAX);
        usize::try_from(self.next() % n).unwrap_or(0)
    }

    fn byte(&mut self) -> u8 {
        self.next().to_le_bytes()[0]
    }
}

/// A seed from the operating system's generator (printed with the report,
/// so a run can be repeated).
pub fn os_seed() -> u64 {
    use ring::rand::{SecureRandom, SystemRandom};
    let mut bytes = [0u8; 8];
    match SystemRandom::new().fill(&mut bytes) {
        Ok(()) => u64::from_le_bytes(bytes),
        Err(_) => 0x9e37_79b9_7f4a_7c15,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn panics_on_0xab(data: &[u8]) {
        assert!(!data.contains(&0xab), "found 0xab");
    }

    fn hangs_on_0xcd(data: &[u8]) {
        if data.contains(&0xcd) {
            thread::sleep(Duration::from_secs(3600));
        }
    }

    #[test]
    fn a_panic_near_the_seeds_is_found_and_its_input_saved() {
        let folder = tempfile::tempdir().unwrap();
        fs::write(folder.path().join("seed"), b"hello").unwrap();
        let artifacts = tempfile::tempdir().unwrap();
        let target = Target {
            name: "panics",
            body: panics_on_0xab,
        };
        let failure = run(
            target,
            &[folder.path().to_path_buf()],
            artifacts.path(),
            Budget::seconds(30),
            7,
        )
        .unwrap_err();
        let SmokeFailure::Panicked { input, message } = failure else {
            panic!("expected a panic, got {failure}");
        };
        assert!(message.contains("found 0xab"), "{message}");
        assert!(fs::read(&input).unwrap().contains(&0xab));
        assert!(input.starts_with(artifacts.path().join("panics")));
    }

    #[test]
    fn a_starting_input_that_hangs_is_reported_as_a_hang() {
        // A regression input that hangs: found before any mutant, once the
        // per-input budget (here 200 ms) has passed.
        let folder = tempfile::tempdir().unwrap();
        fs::write(folder.path().join("hangs"), [0xcd]).unwrap();
        let artifacts = tempfile::tempdir().unwrap();
        let target = Target {
            name: "hangs",
            body: hangs_on_0xcd,
        };
        let failure = run(
            target,
            &[folder.path().to_path_buf()],
            artifacts.path(),
            Budget {
                total: Duration::ZERO,
                per_input: Duration::from_millis(200),
            },
            7,
        )
        .unwrap_err();
        assert!(matches!(failure, SmokeFailure::Hung { .. }), "{failure}");
    }

    #[test]
    fn mutants_stay_under_the_ceiling_and_repeat_from_the_seed() {
        let sequence = |seed| {
            let mut random = Xorshift::new(seed);
            (0..200)
                .map(|_| mutate(b"{\"a\": [1, 2]}".to_vec(), b"x = 1", &mut random, 512))
                .collect::<Vec<_>>()
        };
        let first = sequence(42);
        assert!(first.iter().all(|mutant| mutant.len() <= 512));
        assert_eq!(first, sequence(42));
        assert_ne!(first, sequence(43));
    }
}
