//! The fuzz targets' smoke run in the test suite (issue #16): each target
//! gets its seeds (`fuzz/seeds/<target>`), every input that once failed
//! (`fuzz/regressions/<target>`), and then mutants of them for
//! `OCCC_FUZZ_SMOKE_SECONDS` (20 unless set), on the stable toolchain from the
//! suite's own build. A panic or a hang fails the test and leaves the input
//! in `target/fuzz-artifacts/<target>/` (docs/reliability.md).

use std::path::{Path, PathBuf};

use occcd_fuzz_targets::{
    TARGETS,
    smoke::{self, Budget},
};

/// Runs target `name`'s smoke; the report line, or why it failed.
fn smoke_run(name: &str) -> Result<String, String> {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let target = TARGETS
        .iter()
        .copied()
        .find(|target| target.name == name)
        .ok_or_else(|| format!("no target {name}"))?;
    let seconds = std::env::var("OCCC_FUZZ_SMOKE_SECONDS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(20);
    let seed = smoke::os_seed();
    let folders: Vec<PathBuf> = ["seeds", "regressions"]
        .iter()
        .map(|kind| fuzz.join(kind).join(name))
        .collect();
    if !folders[0].is_dir() {
        return Err(format!("{name} has no seeds in {}", folders[0].display()));
    }
    let artifacts = fuzz.join("../target/fuzz-artifacts");
    smoke::run(target, &folders, &artifacts, Budget::seconds(seconds), seed)
        .map(|report| {
            format!(
                "fuzz smoke {name}: {} runs in {seconds} s from {} inputs (seed {seed:#x}): ok",
                report.runs, report.starting_inputs
            )
        })
        .map_err(|failure| format!("fuzz smoke {name} (seed {seed:#x}): {failure}"))
}

#[test]
fn every_target_has_a_smoke_run_below() {
    let listed = [
        "auth_input",
        "authorization",
        "phc_string",
        "config_toml",
        "openclaw_config",
        "docker_responses",
        "skill_archive",
        "skill_frontmatter",
        #[cfg(unix)]
        "requests",
    ];
    let names: Vec<&str> = TARGETS.iter().map(|target| target.name).collect();
    assert_eq!(names, listed);
}

#[test]
fn auth_input() {
    println!("{}", smoke_run("auth_input").unwrap());
}

#[test]
fn authorization() {
    println!("{}", smoke_run("authorization").unwrap());
}

#[test]
fn phc_string() {
    println!("{}", smoke_run("phc_string").unwrap());
}

#[test]
fn config_toml() {
    println!("{}", smoke_run("config_toml").unwrap());
}

#[test]
fn openclaw_config() {
    println!("{}", smoke_run("openclaw_config").unwrap());
}

#[test]
fn docker_responses() {
    println!("{}", smoke_run("docker_responses").unwrap());
}

#[test]
fn skill_archive() {
    println!("{}", smoke_run("skill_archive").unwrap());
}

#[test]
fn skill_frontmatter() {
    println!("{}", smoke_run("skill_frontmatter").unwrap());
}

#[cfg(unix)]
#[test]
fn requests() {
    println!("{}", smoke_run("requests").unwrap());
}
