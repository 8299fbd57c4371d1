//! Skill governance: no OpenClaw skill runs unless the right people
//! approved exactly its bytes.
//!
//! Invariant: plain Rust, no gRPC types; a skill is known by its tree hash
//! (content, paths and executable bits); submissions are checked, hashed
//! and assessed before anything is stored; nothing is installed that is
//! not approved under the approval rules, and what occcd installed is what
//! the integrity monitor holds the skills folders to.

pub mod approval;
pub mod assess;
pub mod config;
pub mod content;
pub mod error;
pub mod frontmatter;
pub mod governance;
pub mod host_folder;
pub mod input;
pub mod install;
pub mod intake;
pub mod placement;
pub mod read_model;
pub mod rules;
pub mod tree;
pub mod unpack;
pub mod view;

pub use error::SkillError;
pub use governance::SkillGovernance;
pub use input::SkillActor;
