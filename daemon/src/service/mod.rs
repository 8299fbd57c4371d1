//! gRPC handlers: decode the request, call the domain, map errors.
//!
//! Invariant: handlers hold no SQL and no policy; they are reached only
//! through the gate, and their errors become statuses only in [`status`].

mod audit;
mod audit_streams;
mod auth;
mod backups;
mod biometric;
mod config;
mod config_convert;
mod convert;
mod device_keys;
mod integrity;
mod integrity_convert;
pub mod metrics_http;
mod session_bound;
mod skills;
mod skills_convert;
mod status;
mod system;
mod users;

pub use audit::{AUDIT_WATCHES_PER_UID, AUDIT_WATCHES_TOTAL, AuditParts, AuditService};
pub use auth::AuthService;
pub use backups::BackupsService;
pub use biometric::BiometricService;
pub use config::ConfigService;
pub use device_keys::DeviceKeysService;
pub use integrity::IntegrityService;
pub use session_bound::{RECHECK_EVERY, STREAMS_PER_UID, STREAMS_TOTAL, stream_places};
pub use skills::SkillsService;
pub use status::{CONFIG_VERSION, DENIAL_REASON, refusal_status};
pub use system::SystemService;
pub use users::UsersService;
