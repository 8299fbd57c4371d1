//! gRPC handlers: decode the request, call the domain, map errors.
//!
//! Invariant: handlers hold no SQL and no policy; they are reached only
//! through the gate, and their errors become statuses only in [`status`].

mod audit;
mod status;
mod system;

pub use audit::AuditService;
pub use status::refusal_status;
pub use system::SystemService;
