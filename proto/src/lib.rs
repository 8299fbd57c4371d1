//! occcd's wire API, package `occc.v1`, generated from `proto/occc/v1/*.proto`.
//!
//! Invariant: the daemon and every Rust client use these exact types, so the
//! two can never disagree about a field number.

pub mod codec;
mod secrets;

/// Messages and service stubs of package `occc.v1`.
pub mod v1 {
    #![allow(missing_docs, missing_debug_implementations, clippy::all)]
    tonic::include_proto!("occc.v1");
    #[cfg(feature = "json")]
    include!(concat!(env!("OUT_DIR"), "/occc.v1.serde.rs"));
}

/// Encoded `FileDescriptorSet` of `occc.v1`, served by gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("occc_descriptor");
