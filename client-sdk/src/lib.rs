//! `occc-client`: a typed Rust client for occcd.
//!
//! ```no_run
//! # async fn demo() -> Result<(), occc_client::ClientError> {
//! let client = occc_client::OcccClient::connect(&occc_client::ConnectOptions::system()).await?;
//! let info = client.daemon_info().await?;
//! println!("occcd {} up {} s", info.version, info.uptime_seconds);
//! # Ok(()) }
//! ```
//!
//! Invariant: the client talks only to a daemon whose socket and process are
//! owned by the expected uid (see [`ConnectOptions`]).

pub mod authenticator;
mod connect;
mod login;
mod pam;
mod session;

use std::path::PathBuf;

pub use authenticator::{PlatformAuthenticator, SoftwareAuthenticator};
pub use connect::{ConnectOptions, SYSTEM_SOCKET};
pub use login::{Biometrics, DeviceCredential};
pub use occc_proto::v1 as proto;
use occc_proto::v1::{
    DaemonInfo, GetInfoRequest, VerifyChainRequest, VerifyChainResponse, audit_client::AuditClient,
    auth_client::AuthClient, backups_client::BackupsClient, biometric_client::BiometricClient,
    config_client::ConfigClient, device_keys_client::DeviceKeysClient,
    environment_client::EnvironmentClient, integrity_client::IntegrityClient,
    skills_client::SkillsClient, system_client::SystemClient, users_client::UsersClient,
};
pub use pam::PamPrompter;
pub use session::{BearerInterceptor, SessionToken};
use tonic::{service::interceptor::InterceptedService, transport::Channel};
pub use tonic_health::pb as proto_health;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

/// What went wrong talking to occcd.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nothing at the socket path.
    #[error("no occcd socket at {0}; is the daemon running? (systemctl status occcd)")]
    NoDaemon(PathBuf),
    /// The path is not a socket.
    #[error("{0} is not a socket")]
    NotASocket(PathBuf),
    /// The socket belongs to someone other than the expected uid.
    #[error(
        "socket {socket} is owned by uid {owner}, expected uid {expected}; refusing to connect to a possibly spoofed daemon"
    )]
    UntrustedSocket {
        /// The socket.
        socket: PathBuf,
        /// Its owner.
        owner: u32,
        /// Who should own it.
        expected: u32,
    },
    /// A folder on the way to the socket could let someone else swap it.
    #[error("refusing to connect through {folder}: {reason}")]
    UntrustedFolder {
        /// The folder.
        folder: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// Connecting failed.
    #[error("cannot connect to {socket}: {message}")]
    Connect {
        /// The socket.
        socket: PathBuf,
        /// Why.
        message: String,
    },
    /// Local input could not be used (a file to send, an argument).
    #[error("{0}")]
    Input(String),
    /// The daemon answered with an error status.
    #[error("occcd refused: {} ({:?})", .0.message(), .0.code())]
    Rpc(#[from] tonic::Status),
}

/// A channel that carries the client's session token, if any.
pub type SessionChannel = InterceptedService<Channel, BearerInterceptor>;

/// A connection to occcd, with or without a session. Cheap to clone; calls
/// may run concurrently.
#[derive(Debug, Clone)]
pub struct OcccClient {
    channel: Channel,
    session: Option<SessionToken>,
}

impl OcccClient {
    /// Connects, checking the socket's and the daemon's owner first.
    pub async fn connect(options: &ConnectOptions) -> Result<Self, ClientError> {
        Ok(Self {
            channel: connect::open_channel(options).await?,
            session: None,
        })
    }

    /// The same connection, sending `token` with every call.
    #[must_use]
    pub fn with_session(&self, token: SessionToken) -> Self {
        Self {
            channel: self.channel.clone(),
            session: Some(token),
        }
    }

    /// The session token this client sends, if any.
    #[must_use]
    pub fn session(&self) -> Option<&SessionToken> {
        self.session.as_ref()
    }

    /// The channel with this client's session attached, for generated stubs
    /// and raw calls this type does not wrap.
    #[must_use]
    pub fn session_channel(&self) -> SessionChannel {
        InterceptedService::new(self.channel(), BearerInterceptor::new(self.session.clone()))
    }

    /// `occc.v1.Auth`: login, enrolment, sessions, elevation.
    #[must_use]
    pub fn auth(&self) -> AuthClient<SessionChannel> {
        AuthClient::new(self.session_channel())
    }

    /// `occc.v1.Users`: administration.
    #[must_use]
    pub fn users(&self) -> UsersClient<SessionChannel> {
        UsersClient::new(self.session_channel())
    }

    /// `occc.v1.DeviceKeys`: device-bound keys and the login-method chain.
    #[must_use]
    pub fn device_keys(&self) -> DeviceKeysClient<SessionChannel> {
        DeviceKeysClient::new(self.session_channel())
    }

    /// `occc.v1.Biometric`: PAM login and elevation.
    #[must_use]
    pub fn biometric(&self) -> BiometricClient<SessionChannel> {
        BiometricClient::new(self.session_channel())
    }

    /// `occc.v1.Integrity`: container integrity, quarantine, snapshots.
    #[must_use]
    pub fn integrity(&self) -> IntegrityClient<SessionChannel> {
        IntegrityClient::new(self.session_channel())
    }

    /// `occc.v1.Config`: OpenClaw's config, its versions and restores.
    #[must_use]
    pub fn config(&self) -> ConfigClient<SessionChannel> {
        ConfigClient::new(self.session_channel())
    }

    /// `occc.v1.Backups`: a backup of occcd's store (elevated super-admin).
    #[must_use]
    pub fn backups(&self) -> BackupsClient<SessionChannel> {
        BackupsClient::new(self.session_channel())
    }

    /// `occc.v1.Skills`: submission, review and decisions on skills.
    #[must_use]
    pub fn skills(&self) -> SkillsClient<SessionChannel> {
        SkillsClient::new(self.session_channel())
    }

    /// `occc.v1.Environment`: start, stop, restart, status and logs.
    #[must_use]
    pub fn environment(&self) -> EnvironmentClient<SessionChannel> {
        EnvironmentClient::new(self.session_channel())
    }

    /// `occc.v1.Audit`.
    #[must_use]
    pub fn audit(&self) -> AuditClient<SessionChannel> {
        AuditClient::new(self.session_channel())
    }

    /// The underlying channel, for generated stubs this type does not wrap.
    #[must_use]
    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }

    /// Overall health (`grpc.health.v1`, service "").
    pub async fn health(&self) -> Result<ServingStatus, ClientError> {
        let response = HealthClient::new(self.channel())
            .check(HealthCheckRequest {
                service: String::new(),
            })
            .await?;
        Ok(response.into_inner().status())
    }

    /// Version and uptime.
    pub async fn daemon_info(&self) -> Result<DaemonInfo, ClientError> {
        Ok(SystemClient::new(self.channel())
            .get_info(GetInfoRequest {})
            .await?
            .into_inner())
    }

    /// Walks the audit chain (needs a session).
    pub async fn verify_audit_chain(&self) -> Result<VerifyChainResponse, ClientError> {
        Ok(self
            .audit()
            .verify_chain(VerifyChainRequest {})
            .await?
            .into_inner())
    }
}
