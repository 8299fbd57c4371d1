//! occcctl's exit codes: one per kind of outcome a script can act on.
//!
//! Invariant: every error maps to exactly one code, decided by the daemon's
//! status and its `occc-denial` reason, never by parsing a message.

use std::process::ExitCode;

use occc_client::ClientError;
use tonic::Code;

use crate::elevate::denial;

/// The codes, as documented in `occcctl --help` and docs/operations.md.
pub const EXIT_CODES: &str = "\
Exit codes:
  0  done
  1  a check failed: the daemon is unhealthy, or an audit log or export does not verify
  2  wrong command line
  3  the daemon cannot be reached (not running, socket missing, shutting down)
  4  not logged in, the session ended, or re-authentication is needed
  5  permission denied for your role
  6  refused: bad input, not found, already exists, or changed meanwhile
  7  locked: a quarantine, an account lock, or too many attempts (wait and retry)
  8  the socket or the process behind it is not trusted; nothing was sent
  9  any other error (see the message and the daemon's log)";

/// A check ran and failed.
pub const CHECK_FAILED: u8 = 1;

/// The exit code for `err`.
pub fn code_for(err: &ClientError) -> u8 {
    match err {
        ClientError::NoDaemon(_) | ClientError::Connect { .. } => 3,
        ClientError::NotASocket(_)
        | ClientError::UntrustedSocket { .. }
        | ClientError::UntrustedFolder { .. } => 8,
        ClientError::Input(_) => 6,
        ClientError::Rpc(status) => status_code(status),
    }
}

fn status_code(status: &tonic::Status) -> u8 {
    match (status.code(), denial(status)) {
        (_, Some("elevation-required" | "password-elevation-required" | "login-required")) => 4,
        (_, Some("quarantined" | "account-locked" | "throttled")) => 7,
        (_, Some("forbidden" | "super-admin-required")) => 5,
        (Code::Unavailable | Code::DeadlineExceeded, _) => 3,
        (Code::Unauthenticated, _) => 4,
        (Code::PermissionDenied, _) => 5,
        (Code::ResourceExhausted, _) => 7,
        (
            Code::InvalidArgument
            | Code::NotFound
            | Code::AlreadyExists
            | Code::FailedPrecondition
            | Code::Aborted
            | Code::OutOfRange,
            _,
        ) => 6,
        _ => 9,
    }
}

/// The process's exit code for a finished command.
pub fn exit_code(outcome: &Result<bool, ClientError>) -> ExitCode {
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(CHECK_FAILED),
        Err(err) => ExitCode::from(code_for(err)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(code: Code, denial: Option<&'static str>) -> ClientError {
        let mut status = tonic::Status::new(code, "refused");
        if let Some(reason) = denial {
            status.metadata_mut().insert(
                "occc-denial",
                tonic::metadata::MetadataValue::from_static(reason),
            );
        }
        ClientError::Rpc(status)
    }

    #[test]
    fn each_refusal_maps_to_its_documented_code() {
        let cases = [
            (refused(Code::Unavailable, None), 3),
            (
                refused(Code::PermissionDenied, Some("elevation-required")),
                4,
            ),
            (
                refused(Code::PermissionDenied, Some("password-elevation-required")),
                4,
            ),
            (refused(Code::Unauthenticated, None), 4),
            (refused(Code::PermissionDenied, Some("forbidden")), 5),
            (refused(Code::InvalidArgument, None), 6),
            (refused(Code::Aborted, None), 6),
            (refused(Code::FailedPrecondition, Some("quarantined")), 7),
            (refused(Code::ResourceExhausted, Some("account-locked")), 7),
            (refused(Code::ResourceExhausted, Some("throttled")), 7),
            (refused(Code::Internal, None), 9),
            (ClientError::Input("bad".into()), 6),
        ];
        for (err, code) in cases {
            assert_eq!(code_for(&err), code, "{err}");
        }
        assert_eq!(exit_code(&Ok(false)), ExitCode::from(CHECK_FAILED));
    }
}
