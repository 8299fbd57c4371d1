//! The tools beside the daemon under the booted systemd, with the master
//! key only in an encrypted credential (no key file), run the way
//! docs/operations.md says (`systemd-run -p LoadCredentialEncrypted=…`):
//! a backup while occcd serves; a restore with the daemon stopped, refused
//! without `--accept-loss` while the store has newer entries, the audit
//! chain verifying after it; a rotation of the master key into a new
//! credential, after which a backup made under the old key is refused. The
//! session outlives each.

use std::process::Output;

use crate::{OCCC_USER, machine::Machine, text, whoami};

const CREDENTIAL: &str =
    "LoadCredentialEncrypted=occcd-master-key:/etc/credstore.encrypted/occcd-master-key";
const BACKUP: &str = "/root/occcd-backup.tar";
const NEW_KEY: &str = "/root/occcd-new.key";

/// `occcd ARGS` in a transient unit that is handed the credential.
fn occcd_with_credential(machine: &Machine, args: &[&str]) -> Output {
    let mut argv = vec![
        "systemd-run",
        "--pipe",
        "--wait",
        "--quiet",
        "-p",
        CREDENTIAL,
        "occcd",
    ];
    argv.extend_from_slice(args);
    machine.run(&argv)
}

fn stop_daemon_and_socket(machine: &Machine) {
    machine.ok(&["systemctl", "stop", "occcd.socket", "occcd.service"]);
}

/// Runs the steps above; the credential step must have run.
pub fn backup_restore_and_rekey_with_the_credential(machine: &Machine) {
    let key_file = machine.run(&["test", "-e", "/var/lib/occcd/master.key"]);
    assert!(
        !key_file.status.success(),
        "only the credential holds the key"
    );

    let backup = occcd_with_credential(machine, &["backup", BACKUP]);
    assert!(backup.status.success(), "{}", text(&backup));
    assert_eq!(machine.ok(&["stat", "-c", "%a", BACKUP]), "600\n");

    // Stopping is audited after the backup: the store has newer entries.
    stop_daemon_and_socket(machine);
    let refused = occcd_with_credential(machine, &["restore", BACKUP]);
    assert!(!refused.status.success(), "{}", text(&refused));
    assert!(
        text(&refused).contains("--accept-loss"),
        "{}",
        text(&refused)
    );
    let restored = occcd_with_credential(machine, &["restore", "--accept-loss", BACKUP]);
    assert!(restored.status.success(), "{}", text(&restored));
    let verified = occcd_with_credential(machine, &["audit", "verify"]);
    assert!(verified.status.success(), "{}", text(&verified));
    machine.ok(&["systemctl", "start", "occcd.socket"]);
    assert!(
        whoami(machine).contains(OCCC_USER),
        "the session was in the backup"
    );
    eprintln!("boot: backup and restore with the key from the credential (systemd-run)");

    // A rotation: the new key in a file, encrypted into the credential.
    stop_daemon_and_socket(machine);
    let rekeyed = occcd_with_credential(machine, &["rekey", "--new-key-file", NEW_KEY]);
    assert!(rekeyed.status.success(), "{}", text(&rekeyed));
    assert!(
        text(&rekeyed).contains("systemd-creds encrypt"),
        "it says how to encrypt the new key: {}",
        text(&rekeyed)
    );
    machine.ok(&[
        "systemd-creds",
        "encrypt",
        "--name=occcd-master-key",
        NEW_KEY,
        "/etc/credstore.encrypted/occcd-master-key",
    ]);
    machine.ok(&["rm", NEW_KEY]);
    machine.ok(&["systemctl", "start", "occcd.socket"]);
    assert!(
        whoami(machine).contains(OCCC_USER),
        "the session outlives a rotation"
    );
    // The backup was made under the old key.
    stop_daemon_and_socket(machine);
    let old = occcd_with_credential(machine, &["restore", "--accept-loss", BACKUP]);
    assert!(!old.status.success(), "{}", text(&old));
    assert!(text(&old).contains("another master key"), "{}", text(&old));
    machine.ok(&["systemctl", "start", "occcd.socket"]);
    assert!(
        whoami(machine).contains(OCCC_USER),
        "the refusal changed nothing"
    );
    eprintln!("boot: the master key rotated into a new credential; the old backup is refused");
}
