//! occcd's Argon2id PHC strings against Debian's reference `argon2` tool.

use std::{ffi::OsStr, io::Write, os::unix::ffi::OsStrExt, process::Command};

use occcd::auth::password::{HashCost, PasswordHashing, Verification, normalize};

const PASSWORD: &str = "violet-anchor-tundra-93";

/// `argon2 SALT -id -t T -k M -p P -e` with the password on stdin.
fn reference_hash(salt: &[u8], cost: HashCost) -> String {
    let mut child = Command::new("argon2")
        .arg(OsStr::from_bytes(salt))
        .args(["-id", "-e"])
        .args(["-t", &cost.iterations.to_string()])
        .args(["-k", &cost.memory_kib.to_string()])
        .args(["-p", &cost.parallelism.to_string()])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("argon2 runs (scripts/test installs it)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(PASSWORD.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

const COST: HashCost = HashCost {
    iterations: 3,
    memory_kib: 64 * 1024,
    parallelism: 4,
};

#[tokio::test]
async fn a_hash_made_by_occcd_is_reproduced_by_the_reference_tool() {
    let hashing = PasswordHashing::new(COST, 1).unwrap();
    // A salt with a NUL byte cannot be passed on a command line; draw again.
    let (phc, salt) = loop {
        let phc = hashing.hash(normalize(PASSWORD)).await.unwrap();
        let salt_b64 = phc.split('$').nth(4).unwrap().to_owned();
        let salt = data_encoding::BASE64_NOPAD
            .decode(salt_b64.as_bytes())
            .unwrap();
        if !salt.contains(&0) {
            break (phc, salt);
        }
    };
    assert!(
        phc.starts_with("$argon2id$v=19$m=65536,t=3,p=4$"),
        "RFC 9106 second option: {phc}"
    );
    assert_eq!(reference_hash(&salt, COST), phc);
}

#[tokio::test]
async fn a_hash_made_by_the_reference_tool_verifies_in_occcd() {
    let phc = reference_hash(b"reference-salt-16", COST);
    let hashing = PasswordHashing::new(COST, 1).unwrap();
    assert_eq!(
        hashing.verify(Some(phc.clone()), normalize(PASSWORD)).await,
        Ok(Verification::Match {
            needs_rehash: false
        })
    );
    assert_eq!(
        hashing.verify(Some(phc), normalize("wrong password")).await,
        Ok(Verification::Mismatch)
    );
}
