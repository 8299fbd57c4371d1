//! Compiles `occc/v1/*.proto` with protox (pure Rust, no system `protoc`) and
//! writes both the tonic code and the descriptor set that gRPC reflection serves.

use std::{env, error::Error, fs, path::PathBuf};

const PROTO_FILES: &[&str] = &[
    "occc/v1/system.proto",
    "occc/v1/audit.proto",
    "occc/v1/auth.proto",
    "occc/v1/users.proto",
    "occc/v1/device_keys.proto",
    "occc/v1/biometric.proto",
    "occc/v1/integrity.proto",
    "occc/v1/skills.proto",
    "occc/v1/config.proto",
    "occc/v1/backups.proto",
];

/// Messages that carry a password, code, token or secret: their generated
/// `Debug` is replaced by a redacting one and they are wiped when dropped
/// (`src/secrets.rs`).
const SECRET_BEARING: &[&str] = &[
    ".occc.v1.BootstrapRequest",
    ".occc.v1.StartEnrollmentRequest",
    ".occc.v1.EnrollmentStarted",
    ".occc.v1.TotpEnrollment",
    ".occc.v1.ConfirmEnrollmentRequest",
    ".occc.v1.RecoveryCodes",
    ".occc.v1.LoginRequest",
    ".occc.v1.LoginResponse",
    ".occc.v1.ElevateRequest",
    ".occc.v1.ChangePasswordRequest",
    ".occc.v1.ConfirmTotpReenrollmentRequest",
    ".occc.v1.CreateUserResponse",
    ".occc.v1.PamAnswer",
    ".occc.v1.ConfigFile",
    ".occc.v1.UpdateConfigRequest",
    ".occc.v1.ConfigVersionText",
    ".occc.v1.ConfigPreview",
    ".occc.v1.ConfigDiff",
];

/// Messages that hold a secret-bearing one: no serde either.
const HOLDS_SECRET_BEARING: &[&str] = &[".occc.v1.PamClientMessage", ".occc.v1.PamServerMessage"];

fn main() -> Result<(), Box<dyn Error>> {
    for file in PROTO_FILES {
        println!("cargo:rerun-if-changed={file}");
    }
    let descriptors = protox::compile(PROTO_FILES, ["."])?;
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    fs::write(
        out_dir.join("occc_descriptor.bin"),
        prost::Message::encode_to_vec(&descriptors),
    )?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .codec_path("crate::codec::OcccCodec")
        .skip_debug(SECRET_BEARING)
        .compile_fds(descriptors.clone())?;
    if env::var_os("CARGO_FEATURE_JSON").is_some() {
        // Secret-bearing messages get no serde: nothing can print them by accident.
        pbjson_build::Builder::new()
            .register_descriptors(&prost::Message::encode_to_vec(&descriptors))?
            .out_dir(&out_dir)
            // snake_case field names, as in the .proto files and the rest of
            // occcctl's output.
            .preserve_proto_field_names()
            .exclude(SECRET_BEARING.iter().chain(HOLDS_SECRET_BEARING).copied())
            .build(&[".occc.v1"])?;
    }
    Ok(())
}
