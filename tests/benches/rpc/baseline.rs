//! The baseline: a bare tonic server on its own Unix socket, answering
//! `System/GetInfo` with an answer the bench sets — occcd's own size (the
//! echo every row is compared with), or as many bytes as a row's answer
//! (the same work on the wire and in encoding, nothing else).
//!
//! Invariant: the answer is built before a round and only cloned per call,
//! as occcd's read models clone theirs.

use std::{
    sync::{Arc, RwLock},
    time::Duration,
};

use occc_client::{ConnectOptions, OcccClient};
use occc_proto::v1::{
    DaemonInfo, GetInfoRequest, ServiceHealth, system_client::SystemClient, system_server,
};
use occc_tests::{
    DevDir,
    load::{LoadReport, run_load},
};
use tokio::net::UnixListener;
use tokio_stream::wrappers::UnixListenerStream;
use tonic::{Request, Response, Status};

use super::CONCURRENCY;

/// What the bare server answers; set between rounds.
#[derive(Clone)]
pub struct BareAnswer(Arc<RwLock<DaemonInfo>>);

impl BareAnswer {
    /// occcd's own GetInfo size: the daemon and its ten services.
    pub fn echo(&self) {
        self.set(answer(11, ""));
    }

    /// An answer of about `bytes` encoded bytes, in entries of about 64.
    pub fn sized(&self, bytes: usize) {
        let entries = (bytes / 64).max(1);
        let filler = "x".repeat(40);
        let mut sized = answer(entries, &filler);
        // The last entry takes up what is left (or gives up its filler).
        let short = bytes.saturating_sub(prost::Message::encoded_len(&sized));
        if let Some(last) = sized.services.last_mut() {
            last.reason.push_str(&"x".repeat(short));
        }
        self.set(sized);
    }

    /// The encoded size of the current answer.
    pub fn bytes(&self) -> usize {
        prost::Message::encoded_len(&*self.read())
    }

    fn set(&self, info: DaemonInfo) {
        *self
            .0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = info;
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, DaemonInfo> {
        self.0
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn answer(entries: usize, filler: &str) -> DaemonInfo {
    DaemonInfo {
        version: "bare".into(),
        uptime_seconds: 0,
        started_at_unix_ms: 0,
        api_version: "occc.v1".into(),
        services: (0..entries)
            .map(|n| ServiceHealth {
                service: format!("occc.v1.Service{n}"),
                serving: true,
                reason: filler.to_owned(),
            })
            .collect(),
    }
}

/// Tonic with nothing in front of the handler.
struct BareSystem(BareAnswer);

#[tonic::async_trait]
impl system_server::System for BareSystem {
    async fn get_info(
        &self,
        _request: Request<GetInfoRequest>,
    ) -> Result<Response<DaemonInfo>, Status> {
        Ok(Response::new(self.0.read().clone()))
    }
}

/// Serves the baseline on its own 2-worker runtime, like the daemon's.
pub fn start_bare_server(dir: &DevDir) -> (ConnectOptions, BareAnswer) {
    let socket = dir.path().join("bare.sock");
    let path = socket.clone();
    let answer = BareAnswer(Arc::default());
    answer.echo();
    let served = answer.clone();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("baseline runtime");
        runtime.block_on(async move {
            let listener = UnixListener::bind(&path).expect("bind baseline socket");
            tonic::transport::Server::builder()
                .add_service(system_server::SystemServer::new(BareSystem(served)))
                .serve_with_incoming(UnixListenerStream::new(listener))
                .await
                .expect("baseline server");
        });
    });
    while !socket.exists() {
        std::thread::sleep(Duration::from_millis(5));
    }
    let options = ConnectOptions {
        socket_path: socket,
        expected_owner_uid: nix::unistd::geteuid().as_raw(),
    };
    (options, answer)
}

/// `System/GetInfo` from [`CONCURRENCY`] clients.
pub async fn measure_get_info(
    options: &ConnectOptions,
    warm_up: Duration,
    window: Duration,
) -> LoadReport {
    let mut clients = Vec::with_capacity(CONCURRENCY);
    for _ in 0..CONCURRENCY {
        clients.push(Arc::new(
            OcccClient::connect(options).await.expect("connect"),
        ));
    }
    run_load(CONCURRENCY, warm_up, window, |index| {
        let client = SystemClient::new(clients[index].channel());
        move || {
            let mut client = client.clone();
            async move { client.get_info(GetInfoRequest {}).await.is_ok() }
        }
    })
    .await
}
