//! Container integrity: watching the OpenClaw container through the Docker
//! Engine API, reacting to compromise, keeping the evidence, and
//! controlling the environment.
//!
//! Invariant: occcd never reports a container healthy while it cannot see
//! it; it reads through the engine API only (never executing anything in
//! the container), and its only changes to a container are start, stop,
//! restart and the quarantine's pause, network disconnect and restart
//! policy — nothing is pulled, created or deleted.

mod acknowledge;
pub mod archive;
pub mod baseline;
pub mod config;
pub mod config_check;
pub mod control;
pub mod drift_check;
pub mod engine;
pub mod error;
pub mod events;
pub mod evidence;
pub mod finding;
pub mod frozen;
pub mod host_fs;
pub mod identity;
pub mod link_cut;
pub mod monitor;
pub mod mounts;
pub mod pin;
pub mod process_check;
pub mod quarantine;
pub mod realtime;
mod rechecks;
pub mod recording;
pub mod response;
pub mod runtime_checks;
mod shared;
pub mod skill_check;
pub mod snapshot;
pub mod snapshot_export;
pub mod snapshot_writer;
pub mod sweep;
pub mod sweep_slot;
mod sweeper;
pub mod tree_walk;
pub mod trees;
pub mod tunables;
mod watched;
mod watcher;
pub mod writable;

pub use config::IntegrityConfig;
pub use error::IntegrityError;
pub use monitor::{IntegrityMonitor, MonitorParts, MonitorUpdate};
pub use quarantine::QuarantineLock;
