//! Pinning a container's trusted state: what an elevated admin vouches
//! for at PinBaseline — image identity and settings, critical-file and
//! watched host-file hashes, and the executables the container may run.
//!
//! Invariant: image identity, settings, critical files and watched host
//! files are pinned whole or not at all (a path that cannot be read fails
//! the pin with its name); executables that cannot be read are left out of
//! the trusted set and named in its notes; only digests are trusted, never
//! a note in their place.

use bollard::models::ContainerInspectResponse;

use super::{
    baseline::{Baseline, hash_host_files, hash_image_files, settings_of},
    config::ContainerProfile,
    engine::{Engine, EngineError, within},
    identity::{self, ExeCache, TrustedExecutables},
    process_check, trees, writable,
};
use crate::clock::UnixMillis;

/// The executables the container may run, as it is now: its image's, the
/// ones in its writable trees, and those of its running processes.
async fn pin_executables(
    engine: &Engine,
    profile: &ContainerProfile,
    inspect: &ContainerInspectResponse,
    max_bytes: u64,
) -> Result<TrustedExecutables, EngineError> {
    let layers = identity::image_layers(inspect);
    let trees = trees::trees_of(inspect);
    let exempt = profile.drift_exempt_paths.clone();
    let mut trusted = tokio::task::spawn_blocking(move || {
        let mut trusted = TrustedExecutables::default();
        if layers.is_empty() {
            trusted.notes.push(
                "the engine's storage driver is not overlay2: image executables not pinned"
                    .to_owned(),
            );
        }
        identity::pin_image(&layers, &mut trusted);
        let mut cache = writable::ExamCache::default();
        let scan = writable::scan(&trees, &mut cache, max_bytes, &exempt, &[]);
        for found in scan.executables {
            if let Some(sha256) = found.sha256 {
                trusted.writable.insert(found.path, sha256);
            }
        }
        trusted
    })
    .await
    .map_err(|err| EngineError::Refused(format!("pinning executables: {err}")))?;
    if inspect.state.as_ref().and_then(|state| state.running) == Some(true) {
        let processes = process_check::list(engine, &profile.name).await?;
        let running = tokio::task::spawn_blocking(move || {
            let mut cache = ExeCache::default();
            processes
                .into_iter()
                .map(|process| {
                    let exe = identity::running_executable(process.pid, &mut cache);
                    (process.comm, exe)
                })
                .collect::<Vec<_>>()
        })
        .await
        .map_err(|err| EngineError::Refused(format!("pinning processes: {err}")))?;
        for (comm, exe) in running {
            match exe {
                // Only a digest is trusted, never "too large to hash".
                Ok(Some(exe)) if exe.is_hashed() => trusted.add(exe.sha256, &comm),
                Ok(Some(exe)) => trusted
                    .notes
                    .push(format!("process {comm}: {}", exe.sha256)),
                Ok(None) => {}
                Err(err) => trusted.notes.push(format!("process {comm}: {err}")),
            }
        }
    }
    Ok(trusted)
}

/// Pins the current state of `profile`'s container.
pub async fn pin(
    engine: &Engine,
    profile: &ContainerProfile,
    pinned_by: &str,
    max_bytes: u64,
    now: UnixMillis,
) -> Result<Baseline, EngineError> {
    let docker = engine.docker();
    let inspect = within("inspect", docker.inspect_container(&profile.name, None)).await?;
    let image_id = inspect.image.clone().unwrap_or_default();
    let image = within("image inspect", docker.inspect_image(&image_id)).await?;
    let image_files = hash_image_files(engine, profile, max_bytes).await?;
    let mut host_files = Vec::new();
    for (name, result) in hash_host_files(profile, max_bytes).await {
        match result {
            Ok(Some(file)) => host_files.push(file),
            Ok(None) => return Err(EngineError::NotFound(format!("watched host file {name}"))),
            Err(err) => {
                return Err(EngineError::Refused(format!(
                    "watched host file {name}: {err}"
                )));
            }
        }
    }
    let trusted = pin_executables(engine, profile, &inspect, max_bytes).await?;
    Ok(Baseline {
        container: profile.name.clone(),
        image_id,
        repo_digests: image.repo_digests.unwrap_or_default(),
        settings: settings_of(&inspect),
        image_files,
        host_files,
        trusted,
        pinned_at: now,
        pinned_by: pinned_by.to_owned(),
    })
}
