//! Gathering evidence for a forensic snapshot: volatile state first
//! (processes, inspect — read once isolation froze them), then the rest
//! (image, filesystem changes and the changed files, logs, recent events,
//! watched host-file hashes).
//!
//! Invariant: only reads; every artifact names the engine call it came
//! from; each read has a deadline and is streamed into the snapshot as it
//! arrives (never held whole), and a read that fails becomes an
//! `errors/<name>.txt` artifact rather than a missing one.

use bollard::{
    container::LogOutput,
    models::ChangeType,
    query_parameters::{DownloadFromContainerOptions, LogsOptions, TopOptions},
};
use serde_json::json;
use tokio::time::timeout;
use tokio_stream::StreamExt;

use super::{
    archive, baseline,
    config::ContainerProfile,
    engine::{CALL_DEADLINE, Engine, EngineError, within},
    snapshot::{Artifact, SnapshotError},
    snapshot_writer::SnapshotWriter,
};
use crate::clock::{Clock, UnixMillis};

/// Log lines kept.
const LOG_TAIL: &str = "10000";
/// Changed paths archived (the byte bound usually stops first).
const MAX_CHANGED_FILES: usize = 256;

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

/// Processes and inspect of the isolated (frozen) container.
pub async fn volatile(engine: &Engine, container: &str, clock: &dyn Clock) -> Vec<Artifact> {
    let docker = engine.docker();
    let mut artifacts = Vec::new();
    let options = TopOptions {
        ps_args: "-eo pid,ppid,user,etime,args".to_owned(),
    };
    let source = format!("GET /containers/{container}/top?ps_args=-eo pid,ppid,user,etime,args");
    // Both reads at once: the rest of the response waits for them.
    let (top, inspect) = tokio::join!(
        within("top", docker.top_processes(container, Some(options))),
        within("inspect", docker.inspect_container(container, None))
    );
    match top {
        Ok(top) => artifacts.push(artifact(
            "processes.json",
            &source,
            clock.now(),
            json_bytes(&top),
        )),
        Err(err) => artifacts.push(failure("processes", &source, clock.now(), &err)),
    }
    let source = format!("GET /containers/{container}/json");
    match inspect {
        Ok(inspect) => artifacts.push(artifact(
            "inspect.json",
            &source,
            clock.now(),
            json_bytes(&inspect),
        )),
        Err(err) => artifacts.push(failure("inspect", &source, clock.now(), &err)),
    }
    artifacts
}

/// Everything else, after the container is isolated, written into
/// `snapshot` as it is read (changed files and logs streamed).
pub async fn rest(
    engine: &Engine,
    profile: &ContainerProfile,
    recent_events: &[serde_json::Value],
    snapshot: &mut SnapshotWriter<'_>,
    clock: &dyn Clock,
) -> Result<(), SnapshotError> {
    let docker = engine.docker();
    let container = profile.name.as_str();
    let source = format!("GET /containers/{container}/json → GET /images/{{id}}/json");
    let image = match within("inspect", docker.inspect_container(container, None)).await {
        Ok(inspect) => {
            let image = inspect.image.unwrap_or_default();
            within("image inspect", docker.inspect_image(&image))
                .await
                .map(|found| json_bytes(&found))
        }
        Err(err) => Err(err),
    };
    snapshot
        .add(match image {
            Ok(bytes) => artifact("image_inspect.json", &source, clock.now(), bytes),
            Err(err) => failure("image_inspect", &source, clock.now(), &err),
        })
        .await?;
    let source = format!("GET /containers/{container}/changes");
    match within("changes", docker.container_changes(container)).await {
        Ok(changes) => {
            let changes = changes.unwrap_or_default();
            let listed: Vec<_> = changes
                .iter()
                .map(|change| json!({ "path": change.path, "kind": change.kind.to_string() }))
                .collect();
            snapshot
                .add(artifact(
                    "changes.json",
                    &source,
                    clock.now(),
                    json_bytes(&listed),
                ))
                .await?;
            let changed = changes
                .iter()
                .filter(|change| change.kind != ChangeType::_2)
                .take(MAX_CHANGED_FILES);
            for change in changed {
                changed_file(engine, container, &change.path, snapshot, clock).await?;
            }
        }
        Err(err) => {
            snapshot
                .add(failure("changes", &source, clock.now(), &err))
                .await?;
        }
    }
    logs(engine, container, snapshot, clock).await?;
    snapshot
        .add(artifact(
            "events.json",
            "GET /events (as the monitor received them)",
            clock.now(),
            json_bytes(&recent_events),
        ))
        .await?;
    let hashes: Vec<_> = baseline::hash_host_files(profile, snapshot.max_file_bytes())
        .await
        .into_iter()
        .map(|(path, result)| match result {
            Ok(Some(file)) => json!({ "path": path, "sha256": file.sha256, "size": file.size }),
            Ok(None) => json!({ "path": path, "missing": true }),
            Err(err) => json!({ "path": path, "error": err.to_string() }),
        })
        .collect();
    snapshot
        .add(artifact(
            "host_files.json",
            "host filesystem (SHA-256)",
            clock.now(),
            json_bytes(&hashes),
        ))
        .await
}

/// The raw archive of changed `path`, streamed into `snapshot` (cut at its
/// bound; a read that fails or stalls adds an error artifact beside).
async fn changed_file(
    engine: &Engine,
    container: &str,
    path: &str,
    snapshot: &mut SnapshotWriter<'_>,
    clock: &dyn Clock,
) -> Result<(), SnapshotError> {
    let source = format!("GET /containers/{container}/archive?path={path}");
    let name = format!("files{path}.tar");
    if snapshot.is_full() {
        snapshot.skip(&name);
        return Ok(());
    }
    let options = DownloadFromContainerOptions {
        path: path.to_owned(),
    };
    let mut stream = engine
        .docker()
        .download_from_container(container, Some(options));
    let mut sink = snapshot.artifact(&name, &source, clock.now());
    let mut failed = None;
    loop {
        match timeout(CALL_DEADLINE, stream.next()).await {
            Err(_) => {
                failed = Some(archive::stalled(path));
                break;
            }
            Ok(None) => break,
            Ok(Some(Err(err))) => {
                failed = Some(archive::read_error(path, &archive::io_error(err)));
                break;
            }
            Ok(Some(Ok(bytes))) => {
                if !sink.write(&bytes).await? {
                    break;
                }
            }
        }
    }
    sink.finish().await?;
    if let Some(err) = failed {
        snapshot
            .add(failure(&name, &source, clock.now(), &err))
            .await?;
    }
    Ok(())
}

async fn logs(
    engine: &Engine,
    container: &str,
    snapshot: &mut SnapshotWriter<'_>,
    clock: &dyn Clock,
) -> Result<(), SnapshotError> {
    let source =
        format!("GET /containers/{container}/logs?stdout=1&stderr=1&timestamps=1&tail={LOG_TAIL}");
    if snapshot.is_full() {
        snapshot.skip("logs.txt");
        return Ok(());
    }
    let options = LogsOptions {
        stdout: true,
        stderr: true,
        timestamps: true,
        tail: LOG_TAIL.to_owned(),
        ..Default::default()
    };
    let mut stream = engine.docker().logs(container, Some(options));
    let mut sink = snapshot.artifact("logs.txt", &source, clock.now());
    let mut failed = None;
    loop {
        let (label, message): (&[u8], _) = match timeout(CALL_DEADLINE, stream.next()).await {
            Err(_) => {
                failed = Some(EngineError::Unreachable(format!(
                    "logs: the engine sent nothing for {} s",
                    CALL_DEADLINE.as_secs()
                )));
                break;
            }
            Ok(None) => break,
            Ok(Some(Err(err))) => {
                failed = Some(err.into());
                break;
            }
            Ok(Some(Ok(LogOutput::StdOut { message } | LogOutput::Console { message }))) => {
                (b"stdout ", message)
            }
            Ok(Some(Ok(LogOutput::StdErr { message }))) => (b"stderr ", message),
            Ok(Some(Ok(LogOutput::StdIn { .. }))) => continue,
        };
        if !sink.write(label).await? || !sink.write(&message).await? {
            break;
        }
    }
    sink.finish().await?;
    if let Some(err) = failed {
        snapshot
            .add(failure("logs", &source, clock.now(), &err))
            .await?;
    }
    Ok(())
}
