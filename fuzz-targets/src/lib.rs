//! The fuzz targets' bodies: one function per target, each taking any bytes
//! and feeding them to occcd's parsers and checks. Invariant: every function
//! returns for every input — an error is an answer, a panic, a hang or an
//! unbounded allocation is a bug.
//!
//! Two drivers call the same functions: cargo-fuzz on nightly (`fuzz/`,
//! coverage-guided, `scripts/fuzz` and `scripts/soak`) and [`smoke`], a
//! seed-mutating loop on the stable toolchain that the test suite runs for
//! 20 seconds per target without a second, instrumented build.

mod auth;
mod config;
mod docker;
#[cfg(unix)]
mod requests;
mod skills;
pub mod smoke;

/// A fuzz target: its name (also its folder under `fuzz/seeds/` and
/// `fuzz/regressions/`) and its body.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    /// The cargo-fuzz binary's name.
    pub name: &'static str,
    /// What one input is fed to.
    pub body: fn(&[u8]),
}

/// Every target, in the order `scripts/fuzz` lists them.
pub const TARGETS: &[Target] = &[
    Target {
        name: "auth_input",
        body: auth::auth_input,
    },
    Target {
        name: "authorization",
        body: auth::authorization,
    },
    Target {
        name: "phc_string",
        body: auth::phc_string,
    },
    Target {
        name: "config_toml",
        body: config::config_toml,
    },
    Target {
        name: "openclaw_config",
        body: config::openclaw_config,
    },
    Target {
        name: "docker_responses",
        body: docker::docker_responses,
    },
    Target {
        name: "skill_archive",
        body: skills::skill_archive,
    },
    Target {
        name: "skill_frontmatter",
        body: skills::skill_frontmatter,
    },
    #[cfg(unix)]
    Target {
        name: "requests",
        body: requests::requests,
    },
];

pub use auth::{auth_input, authorization, phc_string};
pub use config::{config_toml, openclaw_config};
pub use docker::docker_responses;
#[cfg(unix)]
pub use requests::requests;
pub use skills::{skill_archive, skill_frontmatter};
