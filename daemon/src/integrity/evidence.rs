//! Gathering evidence for a forensic snapshot: volatile state first
//! (processes, inspect — before the container is paused), then the rest
//! (image, filesystem changes and the changed files, logs, recent events,
//! watched host-file hashes).
//!
//! Invariant: only reads; every artifact names the engine call it came
//! from; each read is bounded, and a read that fails becomes an
//! `errors/<name>.txt` artifact rather than a missing one.

use bollard::{
    container::LogOutput,
    models::ChangeType,
    query_parameters::{LogsOptions, TopOptions},
};
use serde_json::json;
use tokio_stream::StreamExt;

use super::{
    archive, baseline,
    config::ContainerProfile,
    engine::{Engine, EngineError},
    quarantine::Before,
    snapshot::Artifact,
};
use crate::clock::{Clock, UnixMillis};

/// Log lines kept.
const LOG_TAIL: &str = "10000";
/// Changed files archived.
const MAX_CHANGED_FILES: usize = 64;

fn artifact(name: &str, source: &str, now: UnixMillis, bytes: Vec<u8>) -> Artifact {
    Artifact {
        name: name.to_owned(),
        source: source.to_owned(),
        captured_at: now,
        bytes,
    }
}

fn json_bytes(value: &impl serde::Serialize) -> Vec<u8> {
    serde_json::to_vec_pretty(value).unwrap_or_else(|err| err.to_string().into_bytes())
}

fn failure(name: &str, source: &str, now: UnixMillis, err: &EngineError) -> Artifact {
    artifact(
        &format!("errors/{name}.txt"),
        source,
        now,
        err.to_string().into_bytes(),
    )
}

/// Processes and inspect, captured before anything changes the container;
/// also what isolation needs from that inspect.
pub async fn volatile(
    engine: &Engine,
    container: &str,
    clock: &dyn Clock,
) -> (Vec<Artifact>, Before) {
    let docker = engine.docker();
    let mut artifacts = Vec::new();
    let options = TopOptions {
        ps_args: "-eo pid,ppid,user,etime,args".to_owned(),
    };
    let source = format!("GET /containers/{container}/top?ps_args=-eo pid,ppid,user,etime,args");
    // Both reads at once: the container is not isolated until they are done.
    let (top, inspect) = tokio::join!(
        docker.top_processes(container, Some(options)),
        docker.inspect_container(container, None)
    );
    match top {
        Ok(top) => artifacts.push(artifact(
            "processes.json",
            &source,
            clock.now(),
            json_bytes(&top),
        )),
        Err(err) => artifacts.push(failure("processes", &source, clock.now(), &err.into())),
    }
    let source = format!("GET /containers/{container}/json");
    let before = match inspect {
        Ok(inspect) => {
            artifacts.push(artifact(
                "inspect.json",
                &source,
                clock.now(),
                json_bytes(&inspect),
            ));
            Before::of(&inspect)
        }
        Err(err) => {
            artifacts.push(failure("inspect", &source, clock.now(), &err.into()));
            Before::default()
        }
    };
    (artifacts, before)
}

/// Everything else, after the container is isolated.
pub async fn rest(
    engine: &Engine,
    profile: &ContainerProfile,
    recent_events: &[serde_json::Value],
    max_bytes: u64,
    clock: &dyn Clock,
) -> Vec<Artifact> {
    let docker = engine.docker();
    let container = profile.name.as_str();
    let mut artifacts = Vec::new();
    let source = format!("GET /containers/{container}/json → GET /images/{{id}}/json");
    match docker.inspect_container(container, None).await {
        Ok(inspect) => {
            let image = inspect.image.unwrap_or_default();
            match docker.inspect_image(&image).await {
                Ok(found) => artifacts.push(artifact(
                    "image_inspect.json",
                    &source,
                    clock.now(),
                    json_bytes(&found),
                )),
                Err(err) => {
                    artifacts.push(failure("image_inspect", &source, clock.now(), &err.into()))
                }
            }
        }
        Err(err) => artifacts.push(failure("image_inspect", &source, clock.now(), &err.into())),
    }
    let source = format!("GET /containers/{container}/changes");
    match docker.container_changes(container).await {
        Ok(changes) => {
            let changes = changes.unwrap_or_default();
            let listed: Vec<_> = changes
                .iter()
                .map(|change| json!({ "path": change.path, "kind": change.kind.to_string() }))
                .collect();
            artifacts.push(artifact(
                "changes.json",
                &source,
                clock.now(),
                json_bytes(&listed),
            ));
            let changed = changes
                .iter()
                .filter(|change| change.kind != ChangeType::_2)
                .take(MAX_CHANGED_FILES);
            for change in changed {
                let source = format!("GET /containers/{container}/archive?path={}", change.path);
                let name = format!("files{}.tar", change.path);
                match archive::download(docker, container, &change.path, max_bytes).await {
                    Ok(bytes) => artifacts.push(artifact(&name, &source, clock.now(), bytes)),
                    Err(err) => artifacts.push(failure(&name, &source, clock.now(), &err)),
                }
            }
        }
        Err(err) => artifacts.push(failure("changes", &source, clock.now(), &err.into())),
    }
    artifacts.push(logs(engine, container, max_bytes, clock).await);
    artifacts.push(artifact(
        "events.json",
        "GET /events (as the monitor received them)",
        clock.now(),
        json_bytes(&recent_events),
    ));
    let hashes: Vec<_> = baseline::hash_host_files(profile, max_bytes)
        .await
        .into_iter()
        .map(|(path, result)| match result {
            Ok(Some(file)) => json!({ "path": path, "sha256": file.sha256, "size": file.size }),
            Ok(None) => json!({ "path": path, "missing": true }),
            Err(err) => json!({ "path": path, "error": err.to_string() }),
        })
        .collect();
    artifacts.push(artifact(
        "host_files.json",
        "host filesystem (SHA-256)",
        clock.now(),
        json_bytes(&hashes),
    ));
    artifacts
}

async fn logs(engine: &Engine, container: &str, max_bytes: u64, clock: &dyn Clock) -> Artifact {
    let source =
        format!("GET /containers/{container}/logs?stdout=1&stderr=1&timestamps=1&tail={LOG_TAIL}");
    let options = LogsOptions {
        stdout: true,
        stderr: true,
        timestamps: true,
        tail: LOG_TAIL.to_owned(),
        ..Default::default()
    };
    let mut stream = engine.docker().logs(container, Some(options));
    let mut text = Vec::new();
    while let Some(item) = stream.next().await {
        match item {
            Ok(LogOutput::StdOut { message } | LogOutput::Console { message }) => {
                text.extend_from_slice(b"stdout ");
                text.extend_from_slice(&message);
            }
            Ok(LogOutput::StdErr { message }) => {
                text.extend_from_slice(b"stderr ");
                text.extend_from_slice(&message);
            }
            Ok(LogOutput::StdIn { .. }) => {}
            Err(err) => return failure("logs", &source, clock.now(), &err.into()),
        }
        if text.len() as u64 > max_bytes {
            text.truncate(usize::try_from(max_bytes).unwrap_or(usize::MAX));
            break;
        }
    }
    artifact("logs.txt", &source, clock.now(), text)
}
