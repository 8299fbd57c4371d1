//! `occc.v1.Integrity` and `occc.v1.Environment`: container status,
//! findings, baselines, quarantine, snapshots, and environment control.
//!
//! Invariant: handlers only translate; who may call what is the gate's
//! policy table, and what happens is the integrity monitor's.

use std::sync::Arc;

use occc_proto::v1::{
    self as pb, environment_server::Environment, integrity_event::Kind as EventKind,
    integrity_server::Integrity,
};
use tokio_stream::{
    Stream, StreamExt,
    wrappers::{BroadcastStream, errors::BroadcastStreamRecvError},
};
use tonic::{Request, Response, Status};

use super::{
    convert::{caller, to_completion},
    integrity_convert::{
        baseline_to_proto, container_status_to_proto, finding_row_to_proto, finding_to_proto,
        manifest_to_proto,
    },
    session_bound::{BoxStream, session_bound, stream_place, while_allowed},
    status::share_refused,
};
use crate::{
    audit::Actor,
    auth::AuthEngine,
    gate::Caller,
    integrity::{
        IntegrityError, IntegrityMonitor, MonitorUpdate,
        control::{Action, EnvironmentState},
        snapshot_export,
    },
    transport::uid_shares::{Share, UidShares},
};

/// Findings listed by default and at most.
const DEFAULT_FINDINGS: u32 = 100;
const MAX_FINDINGS: u32 = 1_000;
/// Log lines by default and at most.
const DEFAULT_TAIL: u32 = 100;
const MAX_TAIL: u32 = 10_000;
/// Most check ids acknowledged in one call (there are fewer event checks).
const MAX_CHECK_IDS: usize = 32;
/// Longest container name or snapshot id accepted.
const MAX_NAME_BYTES: usize = 256;
/// Snapshot verifications (each reads and decrypts a whole snapshot, up to
/// `snapshot_max_bytes`) running at once per uid and in all.
const VERIFICATIONS_PER_UID: usize = 1;
const MAX_VERIFICATIONS: usize = 2;

/// Handler of `occc.v1.Integrity` and `occc.v1.Environment`.
#[derive(Debug, Clone)]
pub struct IntegrityService {
    monitor: Arc<IntegrityMonitor>,
    auth: Arc<AuthEngine>,
    streams: Arc<UidShares>,
    /// Places of snapshot verifications running.
    verifications: Arc<UidShares>,
}

impl IntegrityService {
    /// A handler over `monitor`; its streams end with their caller's
    /// session in `auth` and each holds a place of `streams`.
    #[must_use]
    pub fn new(
        monitor: Arc<IntegrityMonitor>,
        auth: Arc<AuthEngine>,
        streams: Arc<UidShares>,
    ) -> Self {
        Self {
            monitor,
            auth,
            streams,
            verifications: UidShares::new(VERIFICATIONS_PER_UID, MAX_VERIFICATIONS),
        }
    }

    /// The caller of `request` and a place for its stream, taken before
    /// any work for it.
    fn caller_and_place<R>(&self, request: &Request<R>) -> Result<(Caller, Share), Status> {
        let caller = caller(request)?;
        let place = stream_place(&self.streams, &caller)?;
        Ok((caller, place))
    }

    /// `stream`, ended when the session of its caller ends.
    fn bound<T, S>(&self, (caller, place): (Caller, Share), stream: S) -> BoxStream<T>
    where
        T: Send + 'static,
        S: Stream<Item = Result<T, Status>> + Send + 'static,
    {
        session_bound(stream, Arc::clone(&self.auth), caller, place)
    }

    fn status(&self) -> pb::IntegrityStatus {
        let containers = self.monitor.status();
        pb::IntegrityStatus {
            containers: containers.iter().map(container_status_to_proto).collect(),
            locked: self.monitor.lock().is_locked(),
        }
    }
}

fn actor<T>(request: &Request<T>) -> Result<Actor, Status> {
    let caller = caller(request)?;
    Ok(Actor::user(Some(caller.peer), &caller.session.username))
}

fn bounded<'a>(field: &str, value: &'a str) -> Result<&'a str, Status> {
    if value.len() > MAX_NAME_BYTES {
        return Err(Status::invalid_argument(format!(
            "{field}: at most {MAX_NAME_BYTES} bytes"
        )));
    }
    Ok(value)
}

fn environment_to_proto(state: EnvironmentState) -> pb::EnvironmentStatus {
    pb::EnvironmentStatus {
        container: state.container,
        state: state.state,
        image: state.image,
        started_at: state.started_at.unwrap_or_default(),
    }
}

fn update_to_proto(
    update: Result<MonitorUpdate, BroadcastStreamRecvError>,
) -> Result<pb::IntegrityEvent, Status> {
    match update {
        Ok(MonitorUpdate::Status(status)) => Ok(pb::IntegrityEvent {
            kind: Some(EventKind::Status(container_status_to_proto(&status))),
        }),
        Ok(MonitorUpdate::Finding(finding)) => Ok(pb::IntegrityEvent {
            kind: Some(EventKind::Finding(finding_to_proto(&finding))),
        }),
        Err(BroadcastStreamRecvError::Lagged(missed)) => Err(Status::resource_exhausted(format!(
            "this watcher fell {missed} updates behind; watch again"
        ))),
    }
}

#[tonic::async_trait]
impl Integrity for IntegrityService {
    type WatchIntegrityStream = BoxStream<pb::IntegrityEvent>;
    type ExportSnapshotStream = BoxStream<pb::SnapshotChunk>;

    async fn get_integrity_status(
        &self,
        _request: Request<pb::GetIntegrityStatusRequest>,
    ) -> Result<Response<pb::IntegrityStatus>, Status> {
        Ok(Response::new(self.status()))
    }

    async fn watch_integrity(
        &self,
        request: Request<pb::WatchIntegrityRequest>,
    ) -> Result<Response<Self::WatchIntegrityStream>, Status> {
        let place = self.caller_and_place(&request)?;
        let updates = BroadcastStream::new(self.monitor.subscribe());
        let current: Vec<Result<pb::IntegrityEvent, Status>> = self
            .monitor
            .status()
            .iter()
            .map(|status| {
                Ok(pb::IntegrityEvent {
                    kind: Some(EventKind::Status(container_status_to_proto(status))),
                })
            })
            .collect();
        let stream = tokio_stream::iter(current).chain(updates.map(update_to_proto));
        Ok(Response::new(self.bound(place, stream)))
    }

    async fn list_findings(
        &self,
        request: Request<pb::ListFindingsRequest>,
    ) -> Result<Response<pb::FindingList>, Status> {
        let body = request.get_ref();
        let container = bounded("container", &body.container)?;
        let limit = match body.limit {
            0 => DEFAULT_FINDINGS,
            n => n.min(MAX_FINDINGS),
        };
        let container = Some(container).filter(|name| !name.is_empty());
        let rows = self
            .monitor
            .findings(container, limit)
            .await
            .map_err(|err| Status::from(IntegrityError::from(err)))?;
        Ok(Response::new(pb::FindingList {
            findings: rows.iter().map(finding_row_to_proto).collect(),
        }))
    }

    async fn run_checks(
        &self,
        _request: Request<pb::RunChecksRequest>,
    ) -> Result<Response<pb::IntegrityStatus>, Status> {
        self.monitor.run_checks_now().await?;
        Ok(Response::new(self.status()))
    }

    async fn pin_baseline(
        &self,
        request: Request<pb::PinBaselineRequest>,
    ) -> Result<Response<pb::Baseline>, Status> {
        let actor = actor(&request)?;
        let container = bounded("container", &request.get_ref().container)?.to_owned();
        let monitor = Arc::clone(&self.monitor);
        let pinned =
            to_completion(async move { monitor.response().pin_baseline(actor, &container).await })
                .await?;
        Ok(Response::new(baseline_to_proto(&pinned)))
    }

    async fn release_quarantine(
        &self,
        request: Request<pb::ReleaseQuarantineRequest>,
    ) -> Result<Response<pb::IntegrityStatus>, Status> {
        let actor = actor(&request)?;
        let body = request.into_inner();
        bounded("container", &body.container)?;
        let monitor = Arc::clone(&self.monitor);
        to_completion(async move {
            monitor
                .response()
                .release(actor, &body.container, &body.note)
                .await
        })
        .await?;
        Ok(Response::new(self.status()))
    }

    async fn acknowledge_findings(
        &self,
        request: Request<pb::AcknowledgeFindingsRequest>,
    ) -> Result<Response<pb::IntegrityStatus>, Status> {
        let actor = actor(&request)?;
        let body = request.into_inner();
        bounded("container", &body.container)?;
        if body.check_ids.len() > MAX_CHECK_IDS {
            return Err(Status::invalid_argument(format!(
                "check_ids: at most {MAX_CHECK_IDS} at once"
            )));
        }
        for id in &body.check_ids {
            bounded("check_ids", id)?;
        }
        let monitor = Arc::clone(&self.monitor);
        to_completion(async move {
            monitor
                .acknowledge(actor, &body.container, &body.check_ids, &body.note)
                .await
        })
        .await?;
        Ok(Response::new(self.status()))
    }

    async fn list_snapshots(
        &self,
        _request: Request<pb::ListSnapshotsRequest>,
    ) -> Result<Response<pb::SnapshotList>, Status> {
        let manifests = self
            .monitor
            .vault()
            .list()
            .await
            .map_err(|err| Status::from(IntegrityError::from(err)))?;
        Ok(Response::new(pb::SnapshotList {
            snapshots: manifests.iter().map(manifest_to_proto).collect(),
        }))
    }

    async fn export_snapshot(
        &self,
        request: Request<pb::ExportSnapshotRequest>,
    ) -> Result<Response<Self::ExportSnapshotStream>, Status> {
        let id = bounded("snapshot_id", &request.get_ref().snapshot_id)?;
        let place = self.caller_and_place(&request)?;
        let pieces = snapshot_export::export(Arc::clone(self.monitor.vault()), id)
            .await
            .map_err(|err| Status::from(IntegrityError::from(err)))?;
        let chunks = pieces.map(|piece| {
            piece
                .map(|data| pb::SnapshotChunk { data })
                .map_err(|err| Status::from(IntegrityError::from(err)))
        });
        Ok(Response::new(self.bound(place, chunks)))
    }

    async fn verify_snapshot(
        &self,
        request: Request<pb::VerifySnapshotRequest>,
    ) -> Result<Response<pb::SnapshotVerification>, Status> {
        let id = bounded("snapshot_id", &request.get_ref().snapshot_id)?;
        let caller = caller(&request)?;
        // Held until the verification ends, or its caller goes away or is
        // logged out (the verification is then dropped).
        let _place = self
            .verifications
            .take(caller.peer.uid)
            .map_err(|refused| share_refused("snapshot verifications running", refused))?;
        let vault = self.monitor.vault();
        let verification = while_allowed(&self.auth, &caller, async {
            vault
                .verify(id)
                .await
                .map_err(|err| Status::from(IntegrityError::from(err)))
        })
        .await?;
        Ok(Response::new(pb::SnapshotVerification {
            ok: verification.ok(),
            manifest_authentic: verification.manifest_authentic,
            mismatched: verification.mismatched,
        }))
    }
}

#[tonic::async_trait]
impl Environment for IntegrityService {
    type StreamEnvironmentLogsStream = BoxStream<pb::LogLine>;

    async fn start_environment(
        &self,
        request: Request<pb::EnvironmentRequest>,
    ) -> Result<Response<pb::EnvironmentStatus>, Status> {
        self.act(request, Action::Start).await
    }

    async fn stop_environment(
        &self,
        request: Request<pb::EnvironmentRequest>,
    ) -> Result<Response<pb::EnvironmentStatus>, Status> {
        self.act(request, Action::Stop).await
    }

    async fn restart_environment(
        &self,
        request: Request<pb::EnvironmentRequest>,
    ) -> Result<Response<pb::EnvironmentStatus>, Status> {
        self.act(request, Action::Restart).await
    }

    async fn get_environment_status(
        &self,
        request: Request<pb::EnvironmentRequest>,
    ) -> Result<Response<pb::EnvironmentStatus>, Status> {
        let container = bounded("container", &request.get_ref().container)?;
        let state = self
            .monitor
            .environment()
            .environment_state(container)
            .await
            .map_err(Status::from)?;
        Ok(Response::new(environment_to_proto(state)))
    }

    async fn stream_environment_logs(
        &self,
        request: Request<pb::StreamLogsRequest>,
    ) -> Result<Response<Self::StreamEnvironmentLogsStream>, Status> {
        let body = request.get_ref();
        let container = bounded("container", &body.container)?;
        let tail = match body.tail {
            0 => DEFAULT_TAIL,
            n => n.min(MAX_TAIL),
        };
        let place = self.caller_and_place(&request)?;
        let lines = self
            .monitor
            .environment()
            .logs(container, tail, body.follow)
            .map_err(Status::from)?;
        let stream = lines.map(|line| {
            line.map(|line| pb::LogLine {
                stream: line.stream.to_owned(),
                text: line.text,
            })
            .map_err(|err| Status::from(IntegrityError::from(err)))
        });
        Ok(Response::new(self.bound(place, stream)))
    }
}

impl IntegrityService {
    async fn act(
        &self,
        request: Request<pb::EnvironmentRequest>,
        action: Action,
    ) -> Result<Response<pb::EnvironmentStatus>, Status> {
        let actor = actor(&request)?;
        let container = bounded("container", &request.get_ref().container)?;
        let state = self
            .monitor
            .environment()
            .control(actor, container, action)
            .await
            .map_err(Status::from)?;
        Ok(Response::new(environment_to_proto(state)))
    }
}
