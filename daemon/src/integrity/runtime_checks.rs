//! Runtime settings checks on `docker inspect` output, after the CIS Docker
//! Benchmark §5 (and docker-bench-security): user, privileges, capabilities,
//! read-only root, no-new-privileges, seccomp/AppArmor, host namespaces,
//! sensitive mounts, devices, limits, published ports.
//!
//! Invariant: pure functions of the inspect document and the profile; a
//! setting the engine did not report counts as the unsafe default. These are
//! posture findings — at most high (degraded), never critical: critical is
//! kept for evidence of tampering, which quarantines; unsafe settings are
//! refused at start instead.

use bollard::models::{ContainerInspectResponse, HostConfig};
use serde_json::json;

use super::{
    config::ContainerProfile,
    finding::{Finding, Severity},
    mounts::{self, GuardedPaths},
};
use crate::clock::UnixMillis;

/// Whether `user` (Config.User) runs the process as root.
#[must_use]
pub fn runs_as_root(user: &str) -> bool {
    let name = user.split(':').next().unwrap_or_default();
    name.is_empty() || name == "root" || name == "0"
}

/// The configured user (Config.User).
#[must_use]
pub fn configured_user(inspect: &ContainerInspectResponse) -> String {
    inspect
        .config
        .as_ref()
        .and_then(|config| config.user.clone())
        .unwrap_or_default()
}

/// Whether the container is privileged.
#[must_use]
pub fn is_privileged(inspect: &ContainerInspectResponse) -> bool {
    inspect
        .host_config
        .as_ref()
        .and_then(|host| host.privileged)
        .unwrap_or(false)
}

/// Every runtime-settings finding for `inspect`.
#[must_use]
pub fn check(
    profile: &ContainerProfile,
    inspect: &ContainerInspectResponse,
    guarded: &GuardedPaths,
    now: UnixMillis,
) -> Vec<Finding> {
    let name = profile.name.as_str();
    let found = |check_id, severity, summary: String, evidence| {
        Finding::new(name, check_id, severity, summary, evidence, now)
    };
    let mut findings = Vec::new();
    let default_host = HostConfig::default();
    let host = inspect.host_config.as_ref().unwrap_or(&default_host);

    let user = configured_user(inspect);
    if runs_as_root(&user) {
        findings.push(found(
            "runtime.root_user",
            Severity::High,
            "runs as root; set a non-root user (CIS 4.1)".to_owned(),
            json!({ "user": user }),
        ));
    } else if !profile.expected_user.is_empty()
        && user.split(':').next() != Some(&profile.expected_user)
    {
        findings.push(found(
            "runtime.unexpected_user",
            Severity::Medium,
            format!("runs as {user:?}, expected {:?}", profile.expected_user),
            json!({ "user": user, "expected": profile.expected_user }),
        ));
    }
    if host.privileged.unwrap_or(false) {
        findings.push(found(
            "runtime.privileged",
            Severity::High,
            "privileged container: full access to the host (CIS 5.4)".to_owned(),
            json!({ "privileged": true }),
        ));
    }
    let added = host.cap_add.clone().unwrap_or_default();
    if !added.is_empty() {
        findings.push(found(
            "runtime.capabilities_added",
            Severity::High,
            format!("capabilities added: {} (CIS 5.3)", added.join(", ")),
            json!({ "cap_add": added }),
        ));
    }
    if !host.readonly_rootfs.unwrap_or(false) {
        findings.push(found(
            "runtime.writable_rootfs",
            Severity::Medium,
            "root filesystem is writable; run with --read-only (CIS 5.12)".to_owned(),
            json!({ "readonly_rootfs": false }),
        ));
    }
    check_security_options(host, inspect, &mut findings, &found);
    check_namespaces(host, &mut findings, &found);
    check_mounts(inspect, guarded, &mut findings, &found);
    let devices: Vec<String> = host
        .devices
        .iter()
        .flatten()
        .filter_map(|device| device.path_on_host.clone())
        .collect();
    if !devices.is_empty() {
        findings.push(found(
            "runtime.devices",
            Severity::Medium,
            format!("host devices exposed: {} (CIS 5.17)", devices.join(", ")),
            json!({ "devices": devices }),
        ));
    }
    if host.memory.unwrap_or(0) <= 0 {
        findings.push(found(
            "runtime.no_memory_limit",
            Severity::Low,
            "no memory limit (CIS 5.10)".to_owned(),
            json!({ "memory": host.memory }),
        ));
    }
    if host.pids_limit.unwrap_or(0) <= 0 {
        findings.push(found(
            "runtime.no_pids_limit",
            Severity::Low,
            "no PIDs limit (CIS 5.28)".to_owned(),
            json!({ "pids_limit": host.pids_limit }),
        ));
    }
    check_ports(host, &mut findings, &found);
    findings
}

type Found<'a> = dyn Fn(&'static str, Severity, String, serde_json::Value) -> Finding + 'a;

fn check_security_options(
    host: &HostConfig,
    inspect: &ContainerInspectResponse,
    findings: &mut Vec<Finding>,
    found: &Found<'_>,
) {
    let options = host.security_opt.clone().unwrap_or_default();
    let has = |wanted: &[&str]| {
        options
            .iter()
            .any(|option| wanted.contains(&option.as_str()))
    };
    if !has(&[
        "no-new-privileges",
        "no-new-privileges:true",
        "no-new-privileges=true",
    ]) {
        findings.push(found(
            "runtime.no_new_privileges_missing",
            Severity::Medium,
            "no-new-privileges is not set (CIS 5.25)".to_owned(),
            json!({ "security_opt": options }),
        ));
    }
    if has(&["seccomp=unconfined", "seccomp:unconfined"]) {
        findings.push(found(
            "runtime.seccomp_unconfined",
            Severity::High,
            "seccomp is disabled (CIS 5.21)".to_owned(),
            json!({ "security_opt": options }),
        ));
    }
    let apparmor = inspect.app_armor_profile.clone().unwrap_or_default();
    if has(&["apparmor=unconfined", "apparmor:unconfined"]) || apparmor == "unconfined" {
        findings.push(found(
            "runtime.apparmor_unconfined",
            Severity::High,
            "AppArmor is disabled (CIS 5.1)".to_owned(),
            json!({ "security_opt": options, "apparmor_profile": apparmor }),
        ));
    }
}

fn check_namespaces(host: &HostConfig, findings: &mut Vec<Finding>, found: &Found<'_>) {
    let modes = [
        ("network", host.network_mode.as_deref(), "CIS 5.9"),
        ("pid", host.pid_mode.as_deref(), "CIS 5.15"),
        ("ipc", host.ipc_mode.as_deref(), "CIS 5.16"),
        ("uts", host.uts_mode.as_deref(), "CIS 5.20"),
        ("user", host.userns_mode.as_deref(), "CIS 5.30"),
    ];
    let shared: Vec<&str> = modes
        .iter()
        .filter(|(_, mode, _)| *mode == Some("host"))
        .map(|(namespace, _, _)| *namespace)
        .collect();
    if !shared.is_empty() {
        let rules: Vec<&str> = modes
            .iter()
            .filter(|(_, mode, _)| *mode == Some("host"))
            .map(|(_, _, rule)| *rule)
            .collect();
        findings.push(found(
            "runtime.host_namespace",
            Severity::High,
            format!(
                "shares the host's {} namespace(s) ({})",
                shared.join(", "),
                rules.join(", ")
            ),
            json!({ "host_namespaces": shared }),
        ));
    }
}

fn check_mounts(
    inspect: &ContainerInspectResponse,
    guarded: &GuardedPaths,
    findings: &mut Vec<Finding>,
    found: &Found<'_>,
) {
    let control = mounts::control_mounts(inspect, guarded);
    if !control.is_empty() {
        let evidence: Vec<serde_json::Value> = control
            .iter()
            .map(|mount| json!({ "source": mount.source, "reaches": mount.reaches }))
            .collect();
        findings.push(found(
            "runtime.host_control_mounted",
            Severity::High,
            format!(
                "a mount reaches the host's control: {} (CIS 5.31, 5.5)",
                control
                    .iter()
                    .map(|mount| format!("{} is {}", mount.source, mount.reaches))
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
            json!({ "mounts": evidence }),
        ));
    }
    let sensitive = mounts::sensitive_mounts(inspect);
    if !sensitive.is_empty() {
        findings.push(found(
            "runtime.sensitive_host_path",
            Severity::High,
            "sensitive host paths are mounted (CIS 5.5)".to_owned(),
            json!({ "sources": sensitive }),
        ));
    }
}

fn check_ports(host: &HostConfig, findings: &mut Vec<Finding>, found: &Found<'_>) {
    let mut open = Vec::new();
    for (port, bindings) in host.port_bindings.iter().flatten() {
        for binding in bindings.iter().flatten() {
            let ip = binding.host_ip.clone().unwrap_or_default();
            if ip.is_empty() || ip == "0.0.0.0" || ip == "::" {
                open.push(format!(
                    "{port} -> {ip}:{}",
                    binding.host_port.clone().unwrap_or_default()
                ));
            }
        }
    }
    if !open.is_empty() {
        open.sort();
        findings.push(found(
            "runtime.ports_all_interfaces",
            Severity::Medium,
            format!(
                "ports published on every interface: {} (CIS 5.13)",
                open.join(", ")
            ),
            json!({ "ports": open }),
        ));
    }
}

#[cfg(test)]
mod tests {
    use bollard::models::{ContainerConfig, MountPoint, PortBinding};

    use super::*;

    fn hardened() -> ContainerInspectResponse {
        ContainerInspectResponse {
            config: Some(ContainerConfig {
                user: Some("node".to_owned()),
                ..Default::default()
            }),
            host_config: Some(HostConfig {
                readonly_rootfs: Some(true),
                security_opt: Some(vec!["no-new-privileges".to_owned()]),
                memory: Some(256 << 20),
                pids_limit: Some(256),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn ids(inspect: &ContainerInspectResponse) -> Vec<&'static str> {
        let guarded = GuardedPaths {
            engine_socket: "/var/run/docker.sock".into(),
            daemon_state: vec!["/var/lib/occcd".into()],
        };
        check(
            &ContainerProfile::openclaw_gateway(),
            inspect,
            &guarded,
            UnixMillis(0),
        )
        .iter()
        .map(|finding| finding.check_id)
        .collect()
    }

    #[test]
    fn a_hardened_container_has_no_findings() {
        assert!(ids(&hardened()).is_empty(), "{:?}", ids(&hardened()));
    }

    #[test]
    fn each_unsafe_setting_is_named() {
        let mut inspect = hardened();
        inspect.config.as_mut().unwrap().user = Some(String::new());
        let host = inspect.host_config.as_mut().unwrap();
        host.privileged = Some(true);
        host.cap_add = Some(vec!["SYS_ADMIN".to_owned()]);
        host.readonly_rootfs = Some(false);
        host.security_opt = Some(vec![
            "seccomp=unconfined".to_owned(),
            "apparmor=unconfined".to_owned(),
        ]);
        host.network_mode = Some("host".to_owned());
        host.pid_mode = Some("host".to_owned());
        host.memory = Some(0);
        host.pids_limit = None;
        host.port_bindings = Some(
            [(
                "8080/tcp".to_owned(),
                Some(vec![PortBinding {
                    host_ip: Some(String::new()),
                    host_port: Some("8080".to_owned()),
                }]),
            )]
            .into(),
        );
        inspect.mounts = Some(vec![
            MountPoint {
                source: Some("/var/run/docker.sock".to_owned()),
                ..Default::default()
            },
            MountPoint {
                source: Some("/etc".to_owned()),
                ..Default::default()
            },
        ]);
        assert_eq!(
            ids(&inspect),
            [
                "runtime.root_user",
                "runtime.privileged",
                "runtime.capabilities_added",
                "runtime.writable_rootfs",
                "runtime.no_new_privileges_missing",
                "runtime.seccomp_unconfined",
                "runtime.apparmor_unconfined",
                "runtime.host_namespace",
                "runtime.host_control_mounted",
                "runtime.sensitive_host_path",
                "runtime.no_memory_limit",
                "runtime.no_pids_limit",
                "runtime.ports_all_interfaces",
            ]
        );
    }

    #[test]
    fn root_is_recognised_in_every_spelling() {
        for user in ["", "root", "0", "0:0", "root:root"] {
            assert!(runs_as_root(user), "{user:?}");
        }
        for user in ["node", "1000", "1000:1000"] {
            assert!(!runs_as_root(user), "{user:?}");
        }
    }

    #[test]
    fn another_non_root_user_than_expected_is_named() {
        let mut inspect = hardened();
        inspect.config.as_mut().unwrap().user = Some("1001".to_owned());
        assert_eq!(ids(&inspect), ["runtime.unexpected_user"]);
    }
}
