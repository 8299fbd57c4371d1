//! No copy of a secret outlives its request (issue #9, item 10): after a
//! person is invited, enrols, logs in, uses and ends a session, and the
//! connections that carried it close, the daemon's memory holds none of the
//! password, session token, enrolment token, TOTP secret or recovery codes —
//! read straight from `/proc/<pid>/mem`.

use std::{
    fs::File,
    os::unix::fs::FileExt,
    time::{Duration, Instant},
};

use occc_tests::{
    DevDir, RunningDaemon,
    os_user::peer,
    people::{bootstrap_super_admin, elevate, log_in},
};

/// Every readable private mapping of process `pid`, as (start, bytes).
fn readable_memory(pid: u32) -> Option<Vec<(u64, Vec<u8>)>> {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).ok()?;
    let mem = File::open(format!("/proc/{pid}/mem")).ok()?;
    let mut regions = Vec::new();
    for line in maps.lines() {
        let mut fields = line.split_whitespace();
        let (Some(range), Some(perms)) = (fields.next(), fields.next()) else {
            continue;
        };
        let name = line.split_whitespace().nth(5).unwrap_or("");
        if !perms.starts_with("rw") || name.starts_with("[v") {
            continue;
        }
        let Some((start, end)) = range.split_once('-') else {
            continue;
        };
        let (Ok(start), Ok(end)) = (u64::from_str_radix(start, 16), u64::from_str_radix(end, 16))
        else {
            continue;
        };
        let mut bytes = vec![0; usize::try_from(end - start).ok()?];
        if mem.read_exact_at(&mut bytes, start).is_ok() {
            regions.push((start, bytes));
        }
    }
    // Nothing read is not "nothing lingers": it is memory we cannot see.
    (!regions.is_empty()).then_some(regions)
}

/// The planted secrets still found in `pid`'s memory, by name.
/// Each with where it was found (address, and the bytes around it with
/// the secret itself masked), so a failure says which buffer kept it.
fn lingering(pid: u32, planted: &[(&str, String)]) -> Option<Vec<String>> {
    let memory = readable_memory(pid)?;
    Some(
        planted
            .iter()
            .filter_map(|(name, secret)| {
                let finder = memchr::memmem::Finder::new(secret.as_bytes());
                memory.iter().find_map(|(start, bytes)| {
                    let at = finder.find(bytes)?;
                    let around =
                        &bytes[at.saturating_sub(48)..(at + secret.len() + 48).min(bytes.len())];
                    let shown =
                        String::from_utf8_lossy(around).replace(secret.as_str(), "<SECRET>");
                    Some(format!("{name} at {:#x}: {shown:?}", start + at as u64))
                })
            })
            .collect(),
    )
}

#[tokio::test]
async fn no_secret_lingers_in_the_daemons_memory_after_its_request() {
    let dir = DevDir::new();
    let daemon = RunningDaemon::start(&dir).await;
    let pid = daemon.pid();
    if readable_memory(pid).is_none() {
        occc_tests::skip::unavailable(
            "no_secret_lingers_in_the_daemons_memory_after_its_request",
            &format!("a readable /proc/{pid}/mem (root, or a looser ptrace policy)"),
        );
        return;
    }
    let unique = format!("{:016x}", rand_u64());
    let password = format!("Quartz-lemon-{unique}");
    let socket = dir.socket();
    let anonymous = daemon.client().await;
    let mut root = bootstrap_super_admin(&dir, &anonymous, "root").await;
    let admin = log_in(&anonymous, &mut root).await;
    elevate(&admin, &mut root).await;
    let token_file = dir.path().join("root.token");
    std::fs::write(&token_file, admin.session().unwrap().expose()).unwrap();

    // Every secret of carol's passes through connections of other
    // processes, which are gone when they exit.
    let created = peer(
        &socket,
        &["create-user", "carol", token_file.to_str().unwrap()],
    )
    .await;
    let enrollment_token = created
        .trim()
        .strip_prefix("ok ")
        .expect(&created)
        .to_owned();
    let used = peer(
        &socket,
        &["enrol-and-use", "carol", &enrollment_token, &password],
    )
    .await;
    let mut planted: Vec<(&str, String)> = vec![
        ("password", password.clone()),
        ("enrolment token", enrollment_token),
    ];
    for field in used.trim().strip_prefix("ok ").expect(&used).split(' ') {
        match field.split_once('=') {
            Some(("secret", secret)) => planted.push(("TOTP secret", secret.to_owned())),
            Some(("token", token)) => planted.push(("session token", token.to_owned())),
            Some(("codes", codes)) => {
                planted.extend(
                    codes
                        .split(',')
                        .map(|code| ("recovery code", code.to_owned())),
                );
            }
            _ => panic!("unexpected output {used}"),
        }
    }
    assert_eq!(planted.len(), 14, "{planted:?}");

    // The daemon sees the connections close and frees their buffers; give
    // it until a deadline — and at least a few looks, since on a loaded
    // machine one read of its memory can take seconds — then name what is
    // still there.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut found = lingering(pid, &planted).unwrap();
    let mut looks = 1;
    while !found.is_empty() && (Instant::now() < deadline || looks < 5) {
        tokio::time::sleep(Duration::from_millis(200)).await;
        found = lingering(pid, &planted).unwrap();
        looks += 1;
    }
    assert!(found.is_empty(), "still in occcd's memory: {found:?}");
    daemon.terminate().await;
}

fn rand_u64() -> u64 {
    use ring::rand::{SecureRandom, SystemRandom};
    let mut bytes = [0u8; 8];
    SystemRandom::new().fill(&mut bytes).unwrap();
    u64::from_le_bytes(bytes)
}
