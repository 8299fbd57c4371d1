//! Serving over the socket: health, reflection, deny by default.

use occc_client::{ConnectOptions, OcccClient, proto_health::health_check_response::ServingStatus};
use occc_tests::{DevDir, RunningDaemon, workspace_binary};
use tokio_stream::StreamExt;
use tonic::Code;
use tonic_reflection::pb::v1::{
    ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
    server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
};

use crate::support::{audit_rows_of_kind, call_raw};

#[tokio::test]
async fn health_is_serving_and_info_answers_without_session() {
    let dir = DevDir::new();
    let daemon = RunningDaemon::start(&dir).await;
    let client = daemon.client().await;
    assert_eq!(client.health().await.unwrap(), ServingStatus::Serving);
    let info = client.daemon_info().await.unwrap();
    assert_eq!(info.version, env!("CARGO_PKG_VERSION"));
    assert_eq!(info.api_version, "occc.v1");
}

#[tokio::test]
async fn reflection_lists_every_service() {
    let dir = DevDir::new();
    let daemon = RunningDaemon::start(&dir).await;
    let mut reflection = ServerReflectionClient::new(daemon.client().await.channel());
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = reflection
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let response = responses.next().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("unexpected reflection answer: {response:?}");
    };
    let mut names: Vec<_> = list.service.into_iter().map(|s| s.name).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection",
            "occc.v1.Audit",
            "occc.v1.Auth",
            "occc.v1.Backups",
            "occc.v1.Biometric",
            "occc.v1.Config",
            "occc.v1.DeviceKeys",
            "occc.v1.Environment",
            "occc.v1.Integrity",
            "occc.v1.Skills",
            "occc.v1.System",
            "occc.v1.Users"
        ]
    );
}

#[tokio::test]
async fn call_without_session_is_unauthenticated_and_audited_with_peer_uid() {
    let dir = DevDir::new();
    let daemon = RunningDaemon::start(&dir).await;
    let client = daemon.client().await;
    let status = client.verify_audit_chain().await.unwrap_err();
    let occc_client::ClientError::Rpc(status) = status else {
        panic!("expected a gRPC status, got {status}");
    };
    assert_eq!(status.code(), Code::Unauthenticated);
    assert!(status.message().contains("log in"), "{}", status.message());
    assert_eq!(
        call_raw(&client, "/occc.v1.Nope/Nothing").await,
        Code::Unimplemented
    );

    let (store, _) = dir.open_store().await;
    let refused = audit_rows_of_kind(&store, "call_refused").await;
    assert_eq!(refused.len(), 2, "{refused:?}");
    let (uid, pid, detail) = &refused[0];
    assert_eq!(*uid, Some(i64::from(nix::unistd::geteuid().as_raw())));
    assert_eq!(*pid, Some(i64::from(std::process::id())));
    assert!(
        detail.contains("/occc.v1.Audit/VerifyChain") && detail.contains("no session"),
        "{detail}"
    );
    assert!(refused[1].2.contains("unknown rpc"), "{}", refused[1].2);
}

#[tokio::test]
async fn occcctl_status_reports_health_version_and_uptime_as_json() {
    let dir = DevDir::new();
    let _daemon = RunningDaemon::start(&dir).await;
    let output = std::process::Command::new(workspace_binary("occcctl"))
        .args(["--dev", dir.path().to_str().unwrap(), "status", "--json"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let status: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(status["health"], "SERVING");
    assert_eq!(status["version"], env!("CARGO_PKG_VERSION"));
    assert!(status["uptime_seconds"].is_u64());
}

#[tokio::test]
async fn occcctl_refuses_a_socket_owned_by_another_uid() {
    let dir = DevDir::new();
    let _daemon = RunningDaemon::start(&dir).await;
    let other_uid = (nix::unistd::geteuid().as_raw() + 1).to_string();
    let output = std::process::Command::new(workspace_binary("occcctl"))
        .args([
            "--dev",
            dir.path().to_str().unwrap(),
            "--expect-owner",
            &other_uid,
            "status",
        ])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("spoofed"), "{stderr}");
}

#[tokio::test]
async fn clients_refuse_a_socket_in_a_folder_others_can_write() {
    use std::os::unix::fs::PermissionsExt;
    let dir = DevDir::new();
    let _daemon = RunningDaemon::start(&dir).await;
    let options = ConnectOptions::dev(dir.path());
    assert!(OcccClient::connect(&options).await.is_ok());
    let permissions = |mode| std::fs::Permissions::from_mode(mode);
    std::fs::set_permissions(dir.path(), permissions(0o770)).unwrap();
    let refused = OcccClient::connect(&options).await.unwrap_err();
    assert!(
        refused.to_string().contains("could be swapped"),
        "{refused}"
    );
    let output = std::process::Command::new(workspace_binary("occcctl"))
        .args(["--dev", dir.path().to_str().unwrap(), "status"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("could be swapped"), "{stderr}");
    // Sticky and group-writable is still refused for the socket's own folder.
    std::fs::set_permissions(dir.path(), permissions(0o1777)).unwrap();
    assert!(OcccClient::connect(&options).await.is_err());
    std::fs::set_permissions(dir.path(), permissions(0o700)).unwrap();
    assert!(OcccClient::connect(&options).await.is_ok());
}

/// A socket file and folder that pass every ownership check (root's) but
/// a server process of another uid behind them — it called `listen` after
/// root's file was made its: occcctl (the Rust SDK) reads the serving
/// process's uid (`SO_PEERCRED`) and refuses before sending anything.
#[tokio::test]
async fn occcctl_refuses_a_socket_whose_serving_process_runs_as_another_uid() {
    use std::{
        io::BufRead,
        os::unix::{fs::PermissionsExt, process::CommandExt},
    };
    if !occc_tests::os_user::is_root() {
        occc_tests::skip::unavailable(
            "occcctl_refuses_a_socket_whose_serving_process_runs_as_another_uid",
            "root (it serves a socket as a second OS user)",
        );
        return;
    }
    let occcctl = workspace_binary("occcctl");
    let (uid, gid) = occc_tests::os_user::ensure_other_user();
    let folder = tempfile::tempdir().unwrap();
    std::fs::set_permissions(folder.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let own = |path: &std::path::Path, uid: u32, gid: u32| {
        nix::unistd::chown(path, Some(uid.into()), Some(gid.into())).unwrap();
    };
    own(folder.path(), uid, gid);
    let socket = folder.path().join("occcd.sock");
    let mut impostor = Impostor(
        std::process::Command::new("python3")
            .args([
                "-c",
                "import socket, sys\n\
                 s = socket.socket(socket.AF_UNIX)\n\
                 s.bind(sys.argv[1])\n\
                 s.listen()\n\
                 print('listening', flush=True)\n\
                 while True:\n    s.accept()\n",
            ])
            .arg(&socket)
            .uid(uid)
            .gid(gid)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("python3 runs as the other user"),
    );
    let mut line = String::new();
    std::io::BufReader::new(impostor.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "listening");
    // Now the file and its folder are root's, as the daemon's would be.
    own(&socket, 0, 0);
    own(folder.path(), 0, 0);

    let output = std::process::Command::new(occcctl)
        .args([
            "--socket",
            socket.to_str().unwrap(),
            "--expect-owner",
            "0",
            "status",
        ])
        .output()
        .unwrap();
    drop(impostor);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("runs as uid {uid}, not 0; refusing to talk to it")),
        "{stderr}"
    );
}

/// A process killed and reaped when dropped (a failed assertion included).
struct Impostor(std::process::Child);

impl Drop for Impostor {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
