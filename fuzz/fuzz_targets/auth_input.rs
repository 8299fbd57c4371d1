//! What a person types: usernames, passwords (checked and normalized),
//! TOTP codes and recovery codes, each refused or accepted, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use occcd::auth::{input, password};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = input::username(text);
    let _ = input::password("password", text);
    let _ = input::totp_code(text);
    let _ = input::bounded("field", text, 256);
    let _ = password::normalize(text);
    let _ = password::check_new_password("alice", text);
});
