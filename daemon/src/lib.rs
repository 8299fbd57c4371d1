//! occcd — the OpenClaw Command Center security daemon.
//!
//! A request walks one way through these modules: [`transport`] (Unix socket,
//! peer credentials) → [`gate`] (policy table, deny by default) → [`service`]
//! (gRPC handlers, mapping typed errors to status in one place) → a domain
//! — [`auth`] (accounts, sessions, elevation, device keys, PAM), [`audit`]
//! (the hash-chained log), [`integrity`] (the container monitor and its
//! quarantine) — → [`store`] (SQLCipher). Domains hold no tonic types.
//! [`lifecycle`] starts and stops them in phases; [`clock`] and [`crypto`]
//! serve all of them. Module imports never form a cycle
//! (`scripts/check-imports`).

pub mod audit;
pub mod auth;
pub mod backup;
pub mod cli;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod events;
pub mod gate;
pub mod integrity;
pub mod lifecycle;
pub mod logging;
pub mod metrics;
pub mod openclaw;
pub mod rekey;
pub mod service;
pub mod skills;
pub mod store;
pub mod transport;
