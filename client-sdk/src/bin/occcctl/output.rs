//! `--json` output: one object per line, from serde on the API's generated
//! types (protobuf JSON mapping) or the audit export format.
//!
//! Invariant: only types that carry no secret implement `Serialize` (the
//! generated secret-bearing messages have no JSON form), so nothing printed
//! here can hold a password, code or token.

use occc_client::ClientError;

/// Prints `value` as one JSON line.
pub fn print_json(value: &impl serde::Serialize) -> Result<(), ClientError> {
    let text = serde_json::to_string(value).map_err(|err| ClientError::Input(err.to_string()))?;
    println!("{text}");
    Ok(())
}
