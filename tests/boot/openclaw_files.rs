//! OpenClaw's config under a person's home, edited through occcd under the
//! packaged unit: refused by the unit alone (home is read-only to it, and
//! the refusal says so and that nothing changed), written once the
//! `openclaw-files.conf` drop-in is installed (the file keeps its owner and
//! mode), the edit reaching the journal as an event with fields of its own;
//! then the drop-in is removed again so that the rest of the boot test runs
//! under the unit alone (no chown, no override of file permissions, its
//! memory and task limits).

use std::{io::Write, process::Stdio, time::Duration};

use occc_tests::people::TotpDevice;

use crate::{OCCC_USER, machine::Machine, text};

/// Runs the steps above as `OCCC_USER`, elevating with `device`'s codes.
pub fn config_edit_needs_its_drop_in(machine: &Machine, device: &mut TotpDevice) {
    // OpenClaw's config under alice's home, edited through occcd: refused
    // under the unit alone (home is read-only to it), written with the
    // openclaw-files drop-in, keeping alice as the file's owner.
    let config_file = format!("/home/{OCCC_USER}/.openclaw/openclaw.json");
    machine.ok(&[
        "install",
        "-d",
        "-o",
        OCCC_USER,
        "-g",
        OCCC_USER,
        "-m",
        "0700",
        &format!("/home/{OCCC_USER}/.openclaw"),
    ]);
    machine.write(&config_file, "{ gateway: { port: 18789 } }\n");
    machine.ok(&["chown", &format!("{OCCC_USER}:{OCCC_USER}"), &config_file]);
    machine.ok(&["chmod", "0600", &config_file]);
    machine.ok(&[
        "sed",
        "-i",
        "s|^# openclaw_config = .*|openclaw_config = \"/home/alice/.openclaw/openclaw.json\"|",
        "/etc/occcd/occcd.toml",
    ]);
    machine.ok(&["systemctl", "restart", "occcd.service"]);
    let edit = |code: String| {
        let mut child = machine
            .as_user(
                OCCC_USER,
                &[
                    "EDITOR=sed -i s/18789/18790/",
                    "occcctl",
                    "config",
                    "edit",
                    "--note",
                    "port",
                    "--yes",
                ],
            )
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn occcctl config edit");
        writeln!(child.stdin.take().expect("stdin"), "{code}").expect("code");
        let output = child.wait_with_output().expect("config edit");
        (output.status.success(), text(&output))
    };
    let (ok, refused) = edit(device.next_code());
    assert!(!ok, "{refused}");
    assert!(
        refused.contains("the old file is unchanged") && refused.contains("Read-only file system"),
        "the refusal says why and that nothing changed: {refused}"
    );
    assert!(
        machine.ok(&["cat", &config_file]).contains("18789"),
        "unchanged"
    );
    machine.ok(&[
        "install",
        "-D",
        "-m",
        "0644",
        "/usr/share/doc/occcd/examples/openclaw-files.conf",
        "/etc/systemd/system/occcd.service.d/openclaw-files.conf",
    ]);
    // Security events to the journal, with fields of their own.
    machine.ok(&[
        "sh",
        "-c",
        "printf '\\n[events.journald]\\nenabled = true\\n' >> /etc/occcd/occcd.toml",
    ]);
    machine.ok(&["systemctl", "daemon-reload"]);
    machine.ok(&["systemctl", "restart", "occcd.service"]);
    let (ok, out) = edit(device.next_code());
    assert!(ok, "{out}");
    machine.wait_until("the edit in the journal", Duration::from_secs(20), || {
        machine
            .ok(&[
                "journalctl",
                "--no-pager",
                "-o",
                "verbose",
                "OCCC_EVENT=config_edited",
            ])
            .contains("OCCC_ACTOR=alice")
    });
    let event = machine.ok(&[
        "journalctl",
        "--no-pager",
        "-o",
        "verbose",
        "OCCC_EVENT=config_edited",
    ]);
    for field in [
        "PRIORITY=5",
        "OCCC_CATEGORY=config",
        "OCCC_SEVERITY=notice",
        "SYSLOG_IDENTIFIER=occcd",
        "OCCC_ID=",
    ] {
        assert!(event.contains(field), "{field}: {event}");
    }
    eprintln!("boot: journalctl OCCC_EVENT=config_edited finds the edit with its own fields");
    assert!(machine.ok(&["cat", &config_file]).contains("18790"));
    assert_eq!(
        machine.ok(&["stat", "-c", "%U %a", &config_file]),
        format!("{OCCC_USER} 600\n")
    );
    eprintln!(
        "boot: config edit refused under the unit alone ({}), written with openclaw-files.conf",
        refused.lines().last().unwrap_or_default()
    );
    // Everything below runs under the packaged unit alone: no chown, no
    // override of file permissions, its memory and task limits.
    machine.ok(&[
        "rm",
        "/etc/systemd/system/occcd.service.d/openclaw-files.conf",
    ]);
    machine.ok(&["systemctl", "daemon-reload"]);
    machine.ok(&["systemctl", "restart", "occcd.service"]);
    let unit = machine.ok(&[
        "systemctl",
        "show",
        "-p",
        "CapabilityBoundingSet",
        "-p",
        "MemoryMax",
        "-p",
        "TasksMax",
        "occcd.service",
    ]);
    assert!(
        unit.contains("MemoryMax=1073741824") && unit.contains("TasksMax=1024"),
        "{unit}"
    );
    assert!(
        unit.lines()
            .any(|line| line == "CapabilityBoundingSet=cap_dac_read_search cap_sys_ptrace"),
        "{unit}"
    );
    eprintln!("boot: the drop-in removed; MemoryMax=1G, TasksMax=1024, no chown from here on");
}
