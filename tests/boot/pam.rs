//! PAM under the packaged unit: the daemon's sandbox (system-call filter,
//! `ProtectProc=invisible`, no new privileges) must still let libpam load
//! a stack and run its module — docs/pam-biometric.md says biometric
//! elevation works under the shipped unit. A `pam_exec` module stands in
//! for the fingerprint reader (it answers "match"), as in tests/e2e.

use std::time::Duration;

use occc_tests::people::{GOOD_PASSWORD, TotpDevice};

use crate::{OCCC_USER, machine::Machine, occcctl};

/// Links `OCCC_USER` to its own OS account, turns PAM on with a reload,
/// and elevates with `occcctl elevate --pam` as that OS user.
pub fn elevation_through_pam_under_the_unit(machine: &Machine, device: &mut TotpDevice) {
    machine.ok(&[
        "sh",
        "-c",
        "mkdir -p /usr/local/lib/occc-boot \
         && printf '#!/bin/sh\\nexit 0\\n' > /usr/local/lib/occc-boot/sensor.sh \
         && chmod 0755 /usr/local/lib/occc-boot/sensor.sh \
         && printf 'auth required pam_exec.so quiet /usr/local/lib/occc-boot/sensor.sh\\naccount required pam_permit.so\\n' > /etc/pam.d/occc-boot",
    ]);
    let (ok, out) = occcctl(
        machine,
        &format!("{GOOD_PASSWORD}\n{}\n", device.next_code()),
        &["elevate", "--with-password", "--password-stdin"],
    );
    assert!(ok, "{out}");
    let (ok, out) = occcctl(machine, "", &["users", "link-os", OCCC_USER, OCCC_USER]);
    assert!(ok, "{out}");
    machine.ok(&[
        "sed",
        "-i",
        "s/^service = \"\"/service = \"occc-boot\"/",
        "/etc/occcd/occcd.toml",
    ]);
    machine.ok(&["systemctl", "reload", "occcd.service"]);
    machine.wait_until(
        "PAM turned on by the reload",
        Duration::from_secs(20),
        || {
            machine
                .journal("occcd.service")
                .contains("auth.pam.service")
        },
    );
    let (ok, out) = occcctl(machine, "", &["elevate", "--pam"]);
    assert!(ok, "PAM elevation under the unit: {out}");
    eprintln!("boot: PAM (pam_exec) elevation works under the packaged unit");
}
