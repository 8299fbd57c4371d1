//! occcd — the OpenClaw Command Center security daemon.
//!
//! A request walks one way through these modules: [`transport`] (Unix socket,
//! peer credentials) → [`gate`] (policy table, deny by default) → [`service`]
//! (gRPC handlers) → domain ([`audit`]) → [`store`] (SQLCipher). [`lifecycle`]
//! wires them together; [`clock`] and [`crypto`] serve all of them.

pub mod audit;
pub mod auth;
pub mod cli;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod gate;
pub mod integrity;
pub mod lifecycle;
pub mod logging;
pub mod service;
pub mod store;
pub mod transport;
