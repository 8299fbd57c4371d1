//! Authentication and authorization: who a caller is and what they may do.
//!
//! Invariant: plain Rust, no gRPC types; every secret passes through types
//! that redact `Debug` and zeroize on drop; time comes from the injected clock.

pub mod account;
pub mod admin;
mod attempts;
pub mod bootstrap;
pub mod bootstrap_gate;
pub mod challenges;
pub mod device_keys;
pub mod elevation;
pub mod engine;
mod enrolment_steps;
pub mod error;
#[cfg(test)]
mod flows_tests;
pub mod input;
pub mod lockout;
pub mod lockout_policy;
pub mod login;
pub mod os_accounts;
pub mod own_credentials;
pub mod pam;
pub mod pam_flows;
pub mod pam_slots;
pub mod password;
pub mod profiles;
pub mod recovery;
#[cfg(test)]
mod restart_tests;
pub mod role;
mod session_keeping;
#[cfg(test)]
mod session_rows_tests;
pub mod sessions;
mod shared;
#[cfg(test)]
mod test_harness;
pub mod token;
pub mod totp;

pub use admin::{AccountAdmin, ActingUser};
pub use bootstrap::Enrolment;
pub use device_keys::DeviceKeys;
pub use engine::{AuthEngine, UserProfile, UserState};
pub use error::AuthError;
pub use login::{ElevationProof, Logins, SecondFactor};
pub use own_credentials::OwnCredentials;
pub use pam_flows::PamLogins;
pub use profiles::UsersPage;
pub use session_keeping::LoginOutcome;
