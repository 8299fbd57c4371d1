//! Authentication and authorization: who a caller is and what they may do.
//!
//! Invariant: plain Rust, no gRPC types; every secret passes through types
//! that redact `Debug` and zeroize on drop; time comes from the injected clock.

pub mod lockout;
pub mod password;
pub mod recovery;
pub mod role;
pub mod sessions;
pub mod token;
pub mod totp;
