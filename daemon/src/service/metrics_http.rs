//! The metrics listener: Prometheus scrapes `GET /metrics` over HTTP/1.1 on
//! the loopback address `metrics.listen` names.
//!
//! Invariant: only a loopback address is ever bound (the config refuses
//! any other); a request whose `Host` is not a loopback name of this
//! listener is refused (a web page cannot reach it by DNS rebinding), and
//! so is one without the bearer token when `metrics.token_file` is set
//! (compared in constant time); only `GET /metrics` answers (anything else
//! is 404, a body is never read); at most [`MAX_SCRAPERS`] connections are
//! served at once, a further one is closed; a connection gets
//! [`HEADER_PATIENCE`] to send its request and [`CONNECTION_PATIENCE`] in
//! all; the answer holds counts and fixed labels, never a secret or a name
//! a caller chose (see `metrics`).

use std::{convert::Infallible, net::SocketAddr, sync::Arc, time::Duration};

use http_body_util::Full;
use hyper::{Request, Response, StatusCode, body::Bytes, server::conn::http1, service::service_fn};
use hyper_util::rt::{TokioIo, TokioTimer};
use subtle::ConstantTimeEq;
use tokio::{net::TcpListener, sync::Semaphore};
use zeroize::Zeroizing;

/// Scrapes served at once.
pub const MAX_SCRAPERS: usize = 8;
/// How long a client may take to send its request headers.
pub const HEADER_PATIENCE: Duration = Duration::from_secs(5);
/// How long one connection may last in all (a client that stops reading
/// the answer gives its slot back then).
pub const CONNECTION_PATIENCE: Duration = Duration::from_secs(10);
/// How long to wait before binding again when the address is taken.
pub const BIND_RETRY: Duration = Duration::from_secs(2);

/// Renders the exposition for one scrape.
pub type Render = Arc<dyn Fn() -> String + Send + Sync>;

/// Who may scrape: the loopback names of the listener, and the token.
#[derive(Clone)]
pub struct Access {
    /// The listener's address.
    pub address: SocketAddr,
    /// The bearer token a scraper must send, if one is configured.
    pub token: Option<Arc<Zeroizing<String>>>,
}

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Access")
            .field("address", &self.address)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// Binds `access.address` — again every [`BIND_RETRY`] while someone else
/// holds it (occcd starts and serves its socket meanwhile, and says so
/// once) — then serves it until the task is aborted.
pub async fn bind_and_serve(access: Access, render: Render) {
    let mut said = false;
    let listener = loop {
        match TcpListener::bind(access.address).await {
            Ok(listener) => break listener,
            Err(err) => {
                if !said {
                    tracing::error!(address = %access.address, error = %err, "metrics not served yet: cannot listen there; trying again every 2 s");
                    said = true;
                }
                // A real wait for the port to be given back.
                #[allow(clippy::disallowed_methods)]
                tokio::time::sleep(BIND_RETRY).await;
            }
        }
    };
    tracing::info!(address = %access.address, "metrics served at /metrics");
    serve(listener, render, access).await;
}

async fn serve(listener: TcpListener, render: Render, access: Access) {
    let slots = Arc::new(Semaphore::new(MAX_SCRAPERS));
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(err) => {
                tracing::warn!(error = %err, "metrics connection not accepted");
                // Out of descriptors or the like: a pause, not a spin.
                #[allow(clippy::disallowed_methods)]
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            tracing::debug!("too many metrics scrapers at once; one was closed");
            continue;
        };
        let (render, access) = (Arc::clone(&render), access.clone());
        tokio::spawn(async move {
            let service = service_fn(move |request: Request<hyper::body::Incoming>| {
                let (render, access) = (Arc::clone(&render), access.clone());
                async move { Ok::<_, Infallible>(answer(&request, &render, &access)) }
            });
            let connection = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_PATIENCE)
                .keep_alive(false)
                .serve_connection(TokioIo::new(stream), service);
            match tokio::time::timeout(CONNECTION_PATIENCE, connection).await {
                Ok(Err(err)) => tracing::debug!(error = %err, "metrics connection ended"),
                Err(_) => tracing::debug!("metrics connection cut after its time"),
                Ok(Ok(())) => {}
            }
            drop(slot);
        });
    }
}

/// Whether `host` (a `Host` header) names this listener on loopback.
fn loopback_host(host: &str, address: SocketAddr) -> bool {
    let port = address.port();
    [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        format!("[::1]:{port}"),
        address.to_string(),
    ]
    .iter()
    .any(|name| name.eq_ignore_ascii_case(host))
}

fn refusal(status: StatusCode, why: &str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(format!("{why}\n"))));
    *response.status_mut() = status;
    response
}

fn answer(
    request: &Request<hyper::body::Incoming>,
    render: &Render,
    access: &Access,
) -> Response<Full<Bytes>> {
    let host = request
        .headers()
        .get(hyper::header::HOST)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("");
    if !loopback_host(host, access.address) {
        return refusal(
            StatusCode::FORBIDDEN,
            "the Host header must name this loopback listener",
        );
    }
    if let Some(token) = &access.token {
        let sent = request
            .headers()
            .get(hyper::header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .unwrap_or("");
        if !bool::from(sent.as_bytes().ct_eq(token.as_bytes())) {
            return refusal(StatusCode::UNAUTHORIZED, "a bearer token is required");
        }
    }
    let (status, content_type, body) =
        if request.method() == hyper::Method::GET && request.uri().path() == "/metrics" {
            (
                StatusCode::OK,
                "text/plain; version=0.0.4; charset=utf-8",
                render(),
            )
        } else {
            (
                StatusCode::NOT_FOUND,
                "text/plain; charset=utf-8",
                "only GET /metrics is served here\n".to_owned(),
            )
        };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    if let Ok(value) = hyper::header::HeaderValue::from_str(content_type) {
        response
            .headers_mut()
            .insert(hyper::header::CONTENT_TYPE, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_names_of_the_listener_are_hosts() {
        let address: SocketAddr = "127.0.0.1:9464".parse().unwrap();
        for host in [
            "127.0.0.1:9464",
            "localhost:9464",
            "LOCALHOST:9464",
            "[::1]:9464",
        ] {
            assert!(loopback_host(host, address), "{host}");
        }
        for host in [
            "",
            "evil.example:9464",
            "127.0.0.1:80",
            "localhost",
            "evil.example",
        ] {
            assert!(!loopback_host(host, address), "{host}");
        }
    }
}
