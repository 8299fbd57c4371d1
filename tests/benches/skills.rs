//! Skill governance, against a release daemon over its socket:
//! 1. submit + assess a 20 MiB, 2,000-file skill (tar over the socket:
//!    unpack, hash, scan with every rule, keep a copy) — time and
//!    throughput against plain SHA-256 of the same bytes in the same run
//!    (goal: ratio ≥ 0.5);
//! 2. the monitor's skills check over a skills folder of 500 installed,
//!    approved skills — time and CPU per check against reading and
//!    hashing the same files plainly in the same run, and the daemon CPU
//!    that makes at the default 10 s poll interval.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use occc_client::proto as pb;
use occc_tests::{
    DevDir, RunningDaemon,
    people::{elevate, invite, log_in, signed_in_super_admin},
};
use occcd::{clock::UnixMillis, integrity::skill_check::SkillsWatch, skills::intake::IntakeLimits};
use ring::digest::{SHA256, digest};

fn quick() -> bool {
    std::env::var_os("OCCC_BENCH_QUICK").is_some()
}

/// A skill of `files` files and about `bytes` bytes, as a tar; `salt`
/// makes each one a new version.
fn big_skill(files: usize, bytes: usize, salt: usize) -> (Vec<u8>, Vec<u8>) {
    let mut builder = tar::Builder::new(Vec::new());
    let mut plain = Vec::with_capacity(bytes);
    let skill_md = format!(
        "---\nname: big-{salt}\ndescription: a large skill for the benchmark\n---\n# Big\n"
    );
    let per_file = bytes / files;
    let line = "fn step(n: u32) -> u32 { let total = n * 3 + 1; total } // notes for the reader\n";
    for index in 0..files {
        let (path, data) = if index == 0 {
            ("SKILL.md".to_owned(), skill_md.clone().into_bytes())
        } else {
            let mut data = format!("// file {index} of round {salt}\n").into_bytes();
            while data.len() < per_file {
                data.extend_from_slice(line.as_bytes());
            }
            (format!("src/m{:02}/f{index:04}.rs", index % 40), data)
        };
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder
            .append_data(&mut header, &path, data.as_slice())
            .expect("tar entry");
        plain.extend_from_slice(&data);
    }
    (builder.into_inner().expect("tar"), plain)
}

fn cpu_seconds() -> f64 {
    let usage =
        nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_SELF).expect("rusage");
    let time = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6;
    time(usage.user_time()) + time(usage.system_time())
}

async fn submit(session: &occc_client::OcccClient, archive: &[u8]) -> pb::SkillVersion {
    let mut chunks: Vec<pb::SkillArchiveChunk> = archive
        .chunks(1024 * 1024)
        .map(|data| pb::SkillArchiveChunk {
            format: 0,
            data: data.to_vec(),
        })
        .collect();
    chunks[0].format = pb::ArchiveFormat::Tar as i32;
    session
        .skills()
        .submit_skill(tokio_stream::iter(chunks))
        .await
        .expect("submit")
        .into_inner()
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

#[tokio::main]
async fn main() {
    let dir = DevDir::new();
    let install = dir.path().join("openclaw-skills");
    std::fs::create_dir(&install).expect("install dir");
    let (uid, gid) = (nix::unistd::getuid(), nix::unistd::getgid());
    dir.set_config(&format!(
        "[skills]\ninstall_dir = \"{}\"\ninstall_owner = \"{uid}:{gid}\"\n",
        install.display()
    ));
    let daemon = RunningDaemon::start(&dir).await;
    let root = signed_in_super_admin(&dir, &daemon).await;

    // 1. Submit + assess.
    let rounds = if quick() { 2 } else { 5 };
    let (mut submit_ms, mut hash_ms) = (Vec::new(), Vec::new());
    let mut mib = 0.0;
    for round in 0..rounds {
        let (archive, plain) = big_skill(2_000, 20 * 1024 * 1024, round);
        mib = plain.len() as f64 / 1_048_576.0;
        let started = Instant::now();
        let _ = std::hint::black_box(digest(&SHA256, &plain));
        hash_ms.push(started.elapsed().as_secs_f64() * 1e3);
        let started = Instant::now();
        let version = submit(&root.session, &archive).await;
        submit_ms.push(started.elapsed().as_secs_f64() * 1e3);
        assert_eq!(version.file_count, 2_000);
    }
    let (submitted, hash) = (median(submit_ms), median(hash_ms));
    let mut small_ms = Vec::new();
    for round in 0..rounds {
        let (archive, _) = big_skill(2, 1024, 500 + round);
        let started = Instant::now();
        submit(&root.session, &archive).await;
        small_ms.push(started.elapsed().as_secs_f64() * 1e3);
    }
    let small = median(small_ms);
    // The same bytes refused as soon as they were received (not a zip):
    // what crossing the socket costs, without any assessment.
    let (archive, _) = big_skill(2_000, 20 * 1024 * 1024, 900);
    let mut received_ms = Vec::new();
    for _ in 0..rounds {
        let mut chunks: Vec<pb::SkillArchiveChunk> = archive
            .chunks(1024 * 1024)
            .map(|data| pb::SkillArchiveChunk {
                format: 0,
                data: data.to_vec(),
            })
            .collect();
        chunks[0].format = pb::ArchiveFormat::Zip as i32;
        let started = Instant::now();
        let refused = root
            .session
            .skills()
            .submit_skill(tokio_stream::iter(chunks))
            .await;
        received_ms.push(started.elapsed().as_secs_f64() * 1e3);
        assert!(refused.is_err());
    }
    let received = median(received_ms);
    println!(
        "submit + assess a {mib:.1} MiB, 2000-file skill (tar over the socket), median of {rounds}"
    );
    println!(
        "  plain SHA-256 (baseline)   {hash:8.1} ms   {:7.0} MiB/s",
        mib / hash * 1e3
    );
    println!(
        "  SubmitSkill                {submitted:8.1} ms   {:7.0} MiB/s",
        mib / submitted * 1e3
    );
    println!(
        "  ratio submit/SHA-256 (throughput): {:.2}   (goal >= 0.5)",
        hash / submitted
    );
    println!("  a 2-file skill, for the fixed cost (store, audit, answer): {small:.1} ms");
    println!(
        "  the same bytes received and refused unread (transfer only): {received:.1} ms — ratio SHA-256/transfer {:.2}",
        hash / received
    );
    stages();

    // 2. The skills check over many installed skills.
    let count = if quick() { 50 } else { 500 };
    let mut ada = invite(&root.session, &root.anonymous, "ada", pb::UserRole::Admin).await;
    let ada_session = log_in(&root.anonymous, &mut ada).await;
    elevate(&ada_session, &mut ada).await;
    for index in 0..count {
        let (archive, _) = big_skill(8, 24 * 1024, 1_000 + index);
        let version = submit(&root.session, &archive).await;
        ada_session
            .skills()
            .approve_skill(pb::SkillDecision {
                tree_hash: version.tree_hash,
                note: "bench".to_owned(),
            })
            .await
            .expect("approve");
    }
    daemon.terminate().await;
    let (store, _) = dir.open_store().await;
    let watch = SkillsWatch {
        dirs: vec![install.clone()],
        container_dirs: Vec::new(),
        container: "gateway".to_owned(),
        install_lock: Arc::new(tokio::sync::Mutex::new(())),
        limits: IntakeLimits {
            max_files: 5_000,
            max_file_bytes: 32 << 20,
            max_total_bytes: 128 << 20,
        },
    };
    let checks = if quick() { 3 } else { 10 };
    let (mut check_ms, mut check_cpu, mut plain_ms) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..checks {
        let (cpu, started) = (cpu_seconds(), Instant::now());
        let findings = watch.check(&store, UnixMillis(0)).await;
        check_ms.push(started.elapsed().as_secs_f64() * 1e3);
        check_cpu.push((cpu_seconds() - cpu) * 1e3);
        assert!(findings.is_empty(), "{findings:?}");
        let started = Instant::now();
        for entry in walk(&install) {
            let _ = std::hint::black_box(digest(&SHA256, &std::fs::read(entry).expect("read")));
        }
        plain_ms.push(started.elapsed().as_secs_f64() * 1e3);
    }
    let (check, cpu, plain) = (median(check_ms), median(check_cpu), median(plain_ms));
    println!("skills check over {count} installed skills (8 files each), median of {checks}");
    println!("  read + SHA-256 every file (baseline)  {plain:7.1} ms");
    println!(
        "  skills check                          {check:7.1} ms   CPU {cpu:.1} ms   ratio {:.2}",
        check / plain
    );
    println!(
        "  daemon CPU at the default 10 s poll: {:.2} %",
        cpu / Duration::from_secs(10).as_secs_f64() / 10.0
    );
}

/// Where a submission's time goes, in this process (same code as the daemon).
fn stages() {
    use occcd::skills::{assess::Assessor, frontmatter, unpack};
    let (archive, _) = big_skill(2_000, 20 * 1024 * 1024, 999);
    let limits = IntakeLimits {
        max_files: 5_000,
        max_file_bytes: 32 << 20,
        max_total_bytes: 128 << 20,
    };
    let started = Instant::now();
    let tree = unpack::unpack(unpack::ArchiveFormat::Tar, &archive, limits).expect("unpack");
    let unpacked = started.elapsed();
    let started = Instant::now();
    let manifest = tree.manifest();
    let hashed = started.elapsed();
    let parsed = frontmatter::parse(&tree.file("SKILL.md").expect("SKILL.md").contents)
        .expect("frontmatter");
    let assessor = Assessor::new().expect("rules");
    let started = Instant::now();
    let _ = std::hint::black_box(assessor.assess(&tree, &parsed));
    let assessed = started.elapsed();
    let kept_in = tempfile::tempdir().expect("temp dir");
    let content = occcd::skills::content::ContentStore::open(kept_in.path().join("skills"))
        .expect("content store");
    let started = Instant::now();
    content
        .keep(
            &tree,
            &occcd::skills::tree::tree_hash_of(&manifest),
            Some((unpack::ArchiveFormat::Tar, &archive)),
        )
        .expect("keep");
    let kept = started.elapsed();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "  in-process stages: unpack {:.1} ms, hash {:.1} ms ({} files), assess {:.1} ms, keep a copy {:.1} ms",
        ms(unpacked),
        ms(hashed),
        manifest.len(),
        ms(assessed),
        ms(kept)
    );
}

fn walk(root: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).expect("read dir") {
            let entry = entry.expect("entry");
            if entry.file_type().expect("type").is_dir() {
                stack.push(entry.path());
            } else {
                files.push(entry.path());
            }
        }
    }
    files
}
