//! End-to-end tests: the built `occcd` binary, its real socket, real clients.
//! One test binary, so the workspace links it once.

mod auth;
mod config;
mod foundation;
mod integrity;
mod skills;
mod support;
