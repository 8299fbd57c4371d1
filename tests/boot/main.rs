//! Issue #14: the Debian package installed in a Debian root booted with
//! systemd as its PID 1, and used the way an admin and a member of group
//! `occc` would: socket activation on first connect, bootstrap and login
//! with occcctl, `systemctl reload`, a SIGSTOP'd daemon restarted by the
//! watchdog, `systemctl restart` keeping sessions, the master key as an
//! encrypted credential, a reboot (occcd started at boot, the session
//! kept), backup, restore and key rotation with that credential, the
//! daemon binding its own socket with the unit's filters, an upgrade
//! keeping the store and the admin's edits of the conffile, remove keeping
//! them, purge deleting them. After the OpenClaw config step every step
//! runs under the packaged unit without that step's drop-in.
//!
//! Needs root, debootstrap, systemd-nspawn and the two packages
//! `scripts/test` builds (`OCCC_TEST_DEB`, `OCCC_TEST_DEB_UPGRADE`); without
//! them it says exactly what is missing (a failure under CI).

mod credential_tools;
mod machine;
mod openclaw_files;
mod pam;

use std::{
    io::{BufRead, BufReader, Write},
    path::PathBuf,
    process::{Output, Stdio},
    time::Duration,
};

use machine::Machine;
use occc_tests::{
    people::{GOOD_PASSWORD, TotpDevice},
    skip,
};

const OCCC_USER: &str = "alice";

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// `occcctl ARGS` as alice, answering `stdin`; (success, stdout+stderr).
fn occcctl(machine: &Machine, stdin: &str, args: &[&str]) -> (bool, String) {
    let mut argv = vec!["occcctl"];
    argv.extend_from_slice(args);
    let mut child = machine
        .as_user(OCCC_USER, &argv)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn occcctl");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("answer occcctl");
    let output = child.wait_with_output().expect("occcctl output");
    (output.status.success(), text(&output))
}

/// alice bootstraps the first super-admin with the token root handed her;
/// returns her authenticator.
fn bootstrap(machine: &Machine) -> TotpDevice {
    let handed = format!("/home/{OCCC_USER}/bootstrap.token");
    machine.ok(&[
        "install",
        "-o",
        OCCC_USER,
        "-m",
        "0600",
        "/var/lib/occcd/bootstrap.token",
        &handed,
    ]);
    let mut child = machine
        .as_user(
            OCCC_USER,
            &[
                "occcctl",
                "bootstrap",
                "--token-file",
                &handed,
                "--username",
                OCCC_USER,
            ],
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn occcctl bootstrap");
    let mut stdin = child.stdin.take().expect("stdin");
    writeln!(stdin, "{GOOD_PASSWORD}\n{GOOD_PASSWORD}").expect("passwords");
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let mut screen = String::new();
    let mut device = None;
    while let Some(Ok(line)) = stderr.next() {
        screen.push_str(&line);
        screen.push('\n');
        if line.contains("enter the key by hand") {
            let key = stderr.next().and_then(Result::ok).unwrap_or_default();
            device = Some(TotpDevice::new(key.trim()));
            break;
        }
    }
    let mut device = device.unwrap_or_else(|| panic!("no enrolment shown:\n{screen}"));
    writeln!(stdin, "{}", device.next_code()).expect("code");
    drop(stdin);
    let output = child.wait_with_output().expect("bootstrap output");
    assert!(output.status.success(), "{screen}{}", text(&output));
    assert!(
        text(&output).contains("Recovery codes"),
        "{}",
        text(&output)
    );
    device
}

fn whoami(machine: &Machine) -> String {
    let (ok, out) = occcctl(machine, "", &["whoami"]);
    assert!(ok, "whoami failed: {out}");
    out
}

/// The socket 0660 and its folder 0750, both root's and group `occc`'s.
fn assert_members_reach_the_socket(machine: &Machine) {
    let modes = machine.ok(&[
        "stat",
        "-c",
        "%a %U:%G",
        "/run/occcd/occcd.sock",
        "/run/occcd",
    ]);
    assert_eq!(modes, "660 root:occc\n750 root:occc\n");
}

fn deb(variable: &str) -> Option<PathBuf> {
    std::env::var_os(variable)
        .map(PathBuf::from)
        .filter(|path| path.exists())
}

#[test]
fn the_package_runs_under_a_real_systemd() {
    let (Some(package), Some(upgrade)) = (deb("OCCC_TEST_DEB"), deb("OCCC_TEST_DEB_UPGRADE"))
    else {
        skip::unavailable(
            "boot test",
            "OCCC_TEST_DEB and OCCC_TEST_DEB_UPGRADE (scripts/test builds both with scripts/package)",
        );
        return;
    };
    if let Err(needs) = machine::preconditions() {
        skip::unavailable("boot test", &needs);
        return;
    }
    let mut machine = match Machine::boot(&[&package, &upgrade]) {
        Ok(machine) => machine,
        Err(why) => {
            skip::unavailable("boot test", &format!("a bootable Debian root: {why}"));
            return;
        }
    };
    let package_inside = format!("/root/{}", package.file_name().unwrap().to_string_lossy());
    let upgrade_inside = format!("/root/{}", upgrade.file_name().unwrap().to_string_lossy());

    // Install: the group, the folders, the socket listening, no daemon yet.
    machine.ok(&["useradd", "--create-home", OCCC_USER]);
    // As an admin installs it (apt resolves the dependencies: present here).
    machine.ok(&["apt-get", "install", "-y", "-q", &package_inside]);
    machine.ok(&["usermod", "-aG", "occc", OCCC_USER]);
    assert_eq!(machine.state("occcd.socket"), "active");
    assert_eq!(
        machine.state("occcd.service"),
        "inactive",
        "started only on demand"
    );
    assert_members_reach_the_socket(&machine);
    eprintln!("boot: installed; socket 0660 root:occc, daemon not started");

    // A member of occc connects: systemd starts occcd on the socket.
    let (ok, status) = occcctl(&machine, "", &["status"]);
    assert!(ok, "{status}");
    machine.wait_until("occcd.service active", Duration::from_secs(20), || {
        machine.state("occcd.service") == "active"
    });
    machine.wait_until(
        "occcd serving on the passed socket",
        Duration::from_secs(20),
        || {
            machine
                .journal("occcd.service")
                .contains("passed by the service manager")
        },
    );
    let journal = machine.journal("occcd.service");
    assert!(
        !journal.contains("mlock"),
        "SQLCipher locks its pages: {journal}"
    );
    let outsider = machine.run(&["runuser", "-u", "nobody", "--", "occcctl", "status"]);
    assert!(!outsider.status.success(), "a non-member is kept out");
    eprintln!("boot: socket activation on first connect");

    // Bootstrap and login, as alice.
    let mut device = bootstrap(&machine);
    let (ok, out) = occcctl(
        &machine,
        &format!("{GOOD_PASSWORD}\n{}\n", device.next_code()),
        &["login", "--password-stdin"],
    );
    assert!(ok, "{out}");
    assert!(whoami(&machine).contains(OCCC_USER));
    // Anyone may read it (systemctl status): it names no session or health.
    let status_line = machine.ok(&["systemctl", "show", "-P", "StatusText", "occcd.service"]);
    assert_eq!(status_line.trim(), "serving");
    eprintln!(
        "boot: bootstrap and login with occcctl; STATUS={}",
        status_line.trim()
    );

    openclaw_files::config_edit_needs_its_drop_in(&machine, &mut device);

    // Reload: same process, the reload audited and logged.
    let pid = machine.main_pid("occcd.service");
    machine.ok(&[
        "sed",
        "-i",
        "s/^poll_interval_ms = 10000/poll_interval_ms = 5000/",
        "/etc/occcd/occcd.toml",
    ]);
    machine.ok(&["systemctl", "reload", "occcd.service"]);
    machine.wait_until("the reload", Duration::from_secs(20), || {
        machine
            .journal("occcd.service")
            .contains("integrity intervals and policies reloaded")
    });
    assert_eq!(machine.main_pid("occcd.service"), pid);
    assert_eq!(machine.state("occcd.service"), "active");
    eprintln!("boot: systemctl reload applied the new poll interval in the same process");
    pam::elevation_through_pam_under_the_unit(&machine, &mut device);

    // restart keeps sessions.
    machine.ok(&["systemctl", "restart", "occcd.service"]);
    assert_ne!(machine.main_pid("occcd.service"), pid);
    assert!(
        whoami(&machine).contains(OCCC_USER),
        "the session outlives a restart"
    );
    eprintln!("boot: systemctl restart keeps sessions");
    // The boot id reached the sandboxed daemon (as a credential): a clock
    // set back while it was down can be seen.
    let journal = machine.journal("occcd.service");
    assert!(
        journal.contains("sessions follow the wall clock across restarts within this boot")
            && !journal.contains("the boot id is unreadable"),
        "{journal}"
    );
    eprintln!("boot: the daemon reads the boot id through its credential");

    // The watchdog restarts a wedged (SIGSTOP'd) daemon; 3 s for the test.
    machine.ok(&["mkdir", "-p", "/run/systemd/system/occcd.service.d"]);
    machine.write(
        "/run/systemd/system/occcd.service.d/watchdog.conf",
        "[Service]\nWatchdogSec=3s\n",
    );
    machine.ok(&["systemctl", "daemon-reload"]);
    machine.ok(&["systemctl", "restart", "occcd.service"]);
    let stopped = machine.main_pid("occcd.service");
    machine.ok(&["kill", "-STOP", &stopped.to_string()]);
    machine.wait_until("a watchdog restart", Duration::from_secs(30), || {
        let now = machine.main_pid("occcd.service");
        now != 0 && now != stopped && machine.state("occcd.service") == "active"
    });
    let journal = machine.ok(&["journalctl", "--no-pager", "-u", "occcd.service"]);
    assert!(journal.contains("Watchdog timeout"), "{journal}");
    machine.ok(&["rm", "/run/systemd/system/occcd.service.d/watchdog.conf"]);
    machine.ok(&["systemctl", "daemon-reload"]);
    assert!(whoami(&machine).contains(OCCC_USER));
    eprintln!("boot: a SIGSTOP'd daemon was killed by the watchdog and restarted");

    // The master key as an encrypted credential instead of the key file.
    machine.ok(&["mkdir", "-p", "/etc/credstore.encrypted"]);
    machine.ok(&[
        "systemd-creds",
        "encrypt",
        "--name=occcd-master-key",
        "/var/lib/occcd/master.key",
        "/etc/credstore.encrypted/occcd-master-key",
    ]);
    machine.ok(&["mkdir", "-p", "/etc/systemd/system/occcd.service.d"]);
    machine.write(
        "/etc/systemd/system/occcd.service.d/credential.conf",
        "[Service]\nLoadCredentialEncrypted=occcd-master-key\n",
    );
    machine.ok(&["mv", "/var/lib/occcd/master.key", "/root/master.key.backup"]);
    machine.ok(&["systemctl", "daemon-reload"]);
    machine.ok(&["systemctl", "restart", "occcd.service"]);
    machine.wait_until(
        "the key from the credential",
        Duration::from_secs(20),
        || {
            machine
                .journal("occcd.service")
                .contains("key_source=systemd credential")
        },
    );
    assert!(whoami(&machine).contains(OCCC_USER));
    eprintln!("boot: the store opens with the key from LoadCredentialEncrypted=");

    // A reboot: occcd starts at boot (no connection needed), /run/occcd is
    // made again by tmpfiles.d, the credential still opens the store, and
    // the session outlives it.
    machine
        .reboot()
        .unwrap_or_else(|why| panic!("the machine did not boot again: {why}"));
    machine.wait_until("occcd started at boot", Duration::from_secs(30), || {
        machine.state("occcd.service") == "active"
    });
    assert_members_reach_the_socket(&machine);
    let this_boot = machine.ok(&["journalctl", "-b", "--no-pager", "-u", "occcd.service"]);
    assert!(
        this_boot.contains("key_source=systemd credential"),
        "{this_boot}"
    );
    assert!(
        whoami(&machine).contains(OCCC_USER),
        "the session outlives a reboot"
    );
    eprintln!("boot: after a reboot occcd started at boot, socket 0660 root:occc, session kept");
    credential_tools::backup_restore_and_rekey_with_the_credential(&machine);

    // Without occcd.socket the daemon binds socket.group's socket itself,
    // under the unit's system call filter (no chown needed: Group=occc).
    machine.ok(&["systemctl", "stop", "occcd.service", "occcd.socket"]);
    machine.ok(&["systemctl", "mask", "--runtime", "occcd.socket"]);
    machine.ok(&[
        "sed",
        "-i",
        "s/^# group = \"occc\"/group = \"occc\"/",
        "/etc/occcd/occcd.toml",
    ]);
    machine.ok(&["systemctl", "start", "occcd.service"]);
    machine.wait_until(
        "occcd binding its own socket",
        Duration::from_secs(20),
        || {
            machine
                .journal("occcd.service")
                .contains("socket_origin=bound by occcd")
        },
    );
    let bound = machine.ok(&["stat", "-c", "%a %U:%G", "/run/occcd/occcd.sock"]);
    assert_eq!(bound, "660 root:occc\n");
    assert!(whoami(&machine).contains(OCCC_USER));
    machine.ok(&["systemctl", "stop", "occcd.service"]);
    machine.ok(&["systemctl", "unmask", "--runtime", "occcd.socket"]);
    machine.ok(&["systemctl", "start", "occcd.socket"]);
    eprintln!("boot: without the socket unit occcd binds 0660 root:occc itself");

    // Upgrade to the rebuilt package while the daemon runs: it is
    // restarted on the new binary; the store and the session survive.
    assert!(whoami(&machine).contains(OCCC_USER), "activated again");
    let main_pid = || {
        machine.ok(&[
            "systemctl",
            "show",
            "-p",
            "MainPID",
            "--value",
            "occcd.service",
        ])
    };
    let before = main_pid();
    assert_ne!(before.trim(), "0", "running before the upgrade");
    machine.ok(&["apt-get", "install", "-y", "-q", &upgrade_inside]);
    let version = machine.ok(&["dpkg-query", "-W", "-f", "${Version}", "occcd"]);
    assert!(version.ends_with("-2"), "{version}");
    assert_eq!(machine.state("occcd.socket"), "active");
    let after = main_pid();
    assert!(
        after.trim() != "0" && after != before,
        "restarted on the new binary: MainPID {before:?} then {after:?}"
    );
    assert!(
        whoami(&machine).contains(OCCC_USER),
        "the store survives an upgrade"
    );
    // The conffile keeps the admin's edits.
    let config = machine.ok(&["cat", "/etc/occcd/occcd.toml"]);
    for edit in [
        "poll_interval_ms = 5000",
        "group = \"occc\"",
        "openclaw_config = \"/home/alice/.openclaw/openclaw.json\"",
    ] {
        assert!(
            config.contains(edit),
            "{edit} lost in the upgrade:\n{config}"
        );
    }
    eprintln!("boot: upgraded to {version} while running (restarted), store kept");

    // remove stops both units and keeps the store, the key and the config;
    // purge deletes them and leaves the group.
    machine.ok(&["dpkg", "-r", "occcd"]);
    assert_eq!(machine.state("occcd.socket"), "inactive");
    assert_eq!(machine.state("occcd.service"), "inactive");
    machine.ok(&["test", "-f", "/var/lib/occcd/occcd.db"]);
    machine.ok(&["test", "-f", "/etc/credstore.encrypted/occcd-master-key"]);
    machine.ok(&["test", "-f", "/etc/occcd/occcd.toml"]);
    machine.ok(&["dpkg", "-P", "occcd"]);
    for path in [
        "/var/lib/occcd",
        "/etc/occcd",
        "/etc/credstore.encrypted/occcd-master-key",
    ] {
        let gone = machine.run(&["test", "-e", path]);
        assert!(!gone.status.success(), "purge deletes {path}");
    }
    machine.ok(&["getent", "group", "occc"]);
    eprintln!("boot: remove kept the store and the config, purge deleted them, the group stays");
}
