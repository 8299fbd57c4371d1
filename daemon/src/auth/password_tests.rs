//! Unit tests of password policy, hashing and the strength estimate's
//! place off the async workers.

use super::*;
use zxcvbn::matching::patterns::MatchPattern;

const CHEAP: HashCost = HashCost {
    iterations: 1,
    memory_kib: 1024,
    parallelism: 1,
};

#[test]
fn a_stored_hash_naming_more_than_the_ceiling_is_refused_before_hashing() {
    let params = Params::new(CHEAP.memory_kib, CHEAP.iterations, CHEAP.parallelism, None).unwrap();
    let salt = "c2FsdHNhbHRzYWx0c2FsdA";
    let digest = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    let with = |m: u32, t: u32, p: u32| format!("$argon2id$v=19$m={m},t={t},p={p}${salt}${digest}");
    assert!(stored_hash(&params, &with(65536, 3, 4)).is_ok());
    assert!(stored_hash(&params, &with(1024 * 1024, 4, 16)).is_ok());
    assert!(stored_hash(&params, &with(256 * 1024, 16, 16)).is_ok());
    for too_much in [
        with(4 * 1024 * 1024, 3, 4),
        with(65536, 1000, 4),
        with(65536, 3, 64),
        with(1024 * 1024, 16, 16),
    ] {
        assert_eq!(
            stored_hash(&params, &too_much).map(drop),
            Err(HashingError::MalformedHash),
            "{too_much}"
        );
    }
    assert_eq!(
        stored_hash(&params, "$argon2id$v=19$m=x").map(drop),
        Err(HashingError::MalformedHash)
    );
}

/// Found by the `phc_string` smoke run (fuzz/regressions/phc_string/):
/// argon2 multiplied the lanes by 8 before checking them, which overflowed.
#[test]
fn a_stored_hash_naming_lanes_past_argon2s_bound_is_malformed_not_a_panic() {
    let params = Params::new(CHEAP.memory_kib, CHEAP.iterations, CHEAP.parallelism, None).unwrap();
    for stored in [
        "$argon2id$v=16$m=4194304,t=1000,p=644194304,t=1000",
        "$argon2id$v=19$m=65536,t=3,p=4294967295$c2FsdHNhbHRzYWx0c2FsdA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "$argon2id$v=19$m=65536,t=3,p=16777216$c2FsdHNhbHRzYWx0c2FsdA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    ] {
        assert_eq!(
            stored_hash(&params, stored).map(drop),
            Err(HashingError::MalformedHash),
            "{stored}"
        );
    }
}

#[test]
fn policy_refuses_short_long_weak_and_username() {
    assert_eq!(
        check_new_password("alice", &"x".repeat(MAX_PASSWORD_BYTES + 1)),
        Err(PasswordRejected::TooLong)
    );
    assert!(matches!(
        check_new_password("alice", "Tr0ub4dor&3"),
        Err(PasswordRejected::TooShort(11))
    ));
    assert_eq!(
        check_new_password("alice", "alice-correct-horse-staple"),
        Err(PasswordRejected::ContainsUsername)
    );
    assert!(matches!(
        check_new_password("bob", "passwordpassword"),
        Err(PasswordRejected::Weak(_))
    ));
    assert!(check_new_password("alice", "violet-anchor-tundra-93").is_ok());
}

/// zxcvbn 3.1.1 raises a keyboard walk's average degree to the power of
/// its turns unchecked (`SpatialPattern::estimate`): a keypad walk of 28
/// turns or more overflows. Every build compiles zxcvbn without overflow
/// checks (Cargo.toml says why), so such a walk gets the same answer in a
/// test as in the shipped daemon, not a panic. The input is what the
/// `auth_input` soak found (fuzz/regressions/auth_input); the answer is the
/// release build's (accepted: its guesses are past what a u64 holds).
#[test]
fn a_keypad_walk_of_thirty_turns_gets_an_answer_not_a_panic() {
    let walk = "1212123521235421212023535235424";
    let answer = std::panic::catch_unwind(|| check_new_password("alice", walk));
    assert!(matches!(answer, Ok(Ok(_))), "{answer:?}");
    // The wrap changes nothing: the walk's guesses were already saturated
    // before a term could overflow.
    let estimate = zxcvbn::zxcvbn(walk, &[]);
    let walks: Vec<Option<u64>> = estimate
        .sequence()
        .iter()
        .filter(|found| matches!(found.pattern, MatchPattern::Spatial(_)))
        .map(|found| found.guesses)
        .collect();
    assert_eq!(walks, [Some(u64::MAX)]);
    assert_eq!(estimate.guesses(), u64::MAX);
}

#[test]
fn length_counts_visible_characters_after_nfkc() {
    // 12 family emoji are 12 visible characters but far more code points.
    let family = "👨‍👩‍👧".repeat(11);
    assert!(matches!(
        check_new_password("alice", &family),
        Err(PasswordRejected::TooShort(11))
    ));
    // The ligature "ﬃ" (1 char) becomes "ffi" (3 chars) under NFKC.
    assert_eq!(normalize("ﬃ").as_str(), "ffi");
}

#[tokio::test]
async fn hash_verifies_and_flags_rehash_on_cost_change() {
    let hashing = PasswordHashing::new(CHEAP, 2).unwrap();
    let phc = hashing
        .hash(normalize("violet-anchor-tundra-93"))
        .await
        .unwrap();
    assert!(phc.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"), "{phc}");
    assert_eq!(
        hashing
            .verify(Some(phc.clone()), normalize("violet-anchor-tundra-93"))
            .await,
        Ok(Verification::Match {
            needs_rehash: false
        })
    );
    assert_eq!(
        hashing.verify(Some(phc.clone()), normalize("wrong")).await,
        Ok(Verification::Mismatch)
    );
    let stronger = PasswordHashing::new(
        HashCost {
            iterations: 2,
            ..CHEAP
        },
        2,
    )
    .unwrap();
    assert_eq!(
        stronger
            .verify(Some(phc), normalize("violet-anchor-tundra-93"))
            .await,
        Ok(Verification::Match { needs_rehash: true })
    );
}

#[tokio::test]
async fn unknown_user_costs_a_real_verification_and_never_matches() {
    let hashing = PasswordHashing::new(CHEAP, 1).unwrap();
    hashing.prepare_decoy().await.unwrap();
    let before = hashing.computed();
    assert_eq!(
        hashing.verify(None, normalize("anything")).await,
        Ok(Verification::Mismatch)
    );
    assert_eq!(hashing.computed(), before + 1);
}

/// The input fuzzing found (fuzz/regressions/auth_input/zxcvbn-leet-0.2s):
/// 99 bytes the strength estimate spends about 0.2 s on.
const SLOW_TO_ESTIMATE: &str = "@@@A@@@@@@\0\0~5<cb-8-65740123-3-0123-$74cco|\0\0\0\0-8at@\0\0\0(d3y@@T@.31@133456147246-99f33456147246-99f!";

#[tokio::test(flavor = "current_thread")]
async fn the_strength_estimate_runs_off_the_async_worker_and_counts_as_no_hash() {
    let hashing = PasswordHashing::new(CHEAP, 1).unwrap();
    let ticks = Arc::new(AtomicU64::new(0));
    let ticker = tokio::spawn({
        let ticks = Arc::clone(&ticks);
        async move {
            loop {
                ticks.fetch_add(1, Ordering::Relaxed);
                tokio::task::yield_now().await;
            }
        }
    });
    tokio::task::yield_now().await;
    // Every Argon2 permit taken: the check does not wait for one.
    let _argon2 = Arc::clone(&hashing.permits).acquire_owned().await.unwrap();
    let before = ticks.load(Ordering::Relaxed);
    let held = Arc::new(());
    let checked = hashing
        .check_new(Arc::clone(&held), "alice", SLOW_TO_ESTIMATE)
        .await
        .unwrap();
    let during = ticks.load(Ordering::Relaxed) - before;
    ticker.abort();
    assert!(checked.is_ok(), "{checked:?}");
    // On this one-thread runtime the ticker runs only while the check
    // waits elsewhere: inline, it would not have moved.
    assert!(during > 10, "the runtime was held: {during} ticks");
    assert_eq!(hashing.computed(), 0);
    assert_eq!(
        Arc::strong_count(&held),
        1,
        "the place went back after the check"
    );
    let too_long = "a".repeat(MAX_PASSWORD_BYTES + 1);
    assert_eq!(
        hashing.check_new((), "alice", &too_long).await.unwrap(),
        Err(PasswordRejected::TooLong)
    );
}

/// Says when it is dropped.
struct Place(Option<tokio::sync::oneshot::Sender<()>>);

impl Drop for Place {
    fn drop(&mut self) {
        if let Some(sender) = self.0.take() {
            let _ = sender.send(());
        }
    }
}

#[tokio::test]
async fn a_caller_that_leaves_keeps_its_place_until_the_estimate_ends() {
    let hashing = PasswordHashing::new(CHEAP, 1).unwrap();
    let (dropped, place_back) = tokio::sync::oneshot::channel();
    let mut check = Box::pin(hashing.check_new(Place(Some(dropped)), "alice", SLOW_TO_ESTIMATE));
    // Polled once, the estimate is running on the blocking pool; then
    // the caller goes away.
    let mut context = std::task::Context::from_waker(std::task::Waker::noop());
    assert!(check.as_mut().poll(&mut context).is_pending());
    drop(check);
    let mut place_back = Box::pin(place_back);
    assert!(
        place_back.as_mut().poll(&mut context).is_pending(),
        "the place is still held by the running estimate"
    );
    // And it comes back when the estimate ends.
    assert_eq!(place_back.await, Ok(()));
}
