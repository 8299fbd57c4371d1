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
    use tokio::{
        io::{AsyncReadExt, AsyncWriteExt},
        net::TcpStream,
        time::Instant,
    };

    use super::*;

    /// An answer far larger than a loopback socket's buffers, so a client
    /// that does not read it holds its connection.
    const LARGE_ANSWER: usize = 16 * 1024 * 1024;

    async fn listening() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let render: Render = Arc::new(|| "x".repeat(LARGE_ANSWER));
        let access = Access {
            address,
            token: None,
        };
        tokio::spawn(serve(listener, render, access));
        address
    }

    async fn scrape_started(address: SocketAddr) -> TcpStream {
        let mut stream = TcpStream::connect(address).await.unwrap();
        let request = format!("GET /metrics HTTP/1.1\r\nHost: {address}\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        stream
    }

    /// What the server sent until it closed (a reset ends it too).
    async fn read_all(stream: &mut TcpStream) -> Vec<u8> {
        let mut read = Vec::new();
        let mut buffer = vec![0; 64 * 1024];
        while let Ok(count @ 1..) = stream.read(&mut buffer).await {
            read.extend_from_slice(&buffer[..count]);
        }
        read
    }

    #[tokio::test(start_paused = true)]
    async fn scrapers_are_bounded_in_number_and_in_time() {
        let address = listening().await;
        let opened = Instant::now();
        // Eight scrapes that never read their answer hold every place.
        let mut holding = Vec::new();
        for _ in 0..MAX_SCRAPERS {
            holding.push(scrape_started(address).await);
        }
        let mut ninth = scrape_started(address).await;
        assert!(read_all(&mut ninth).await.is_empty(), "closed unanswered");
        assert!(opened.elapsed() < CONNECTION_PATIENCE);
        // Each is cut after its time, before its answer was all sent.
        tokio::time::advance(CONNECTION_PATIENCE).await;
        for stream in &mut holding {
            let read = read_all(stream).await;
            assert!(read.len() < LARGE_ANSWER, "cut: {} bytes", read.len());
        }
        assert!(opened.elapsed() >= CONNECTION_PATIENCE);
        // Their places are back: a scrape that reads gets the whole answer.
        let mut reader = scrape_started(address).await;
        let answer = read_all(&mut reader).await;
        assert!(answer.starts_with(b"HTTP/1.1 200 OK"));
        assert!(answer.len() > LARGE_ANSWER, "{} bytes", answer.len());
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_that_sends_no_request_is_closed_after_its_header_patience() {
        let address = listening().await;
        let opened = Instant::now();
        let mut silent = TcpStream::connect(address).await.unwrap();
        let read = read_all(&mut silent).await;
        let waited = opened.elapsed();
        assert!(
            waited >= HEADER_PATIENCE && waited < CONNECTION_PATIENCE,
            "closed after {waited:?}, {} bytes",
            read.len()
        );
        // Half a request is no better.
        let opened = Instant::now();
        let mut slow = TcpStream::connect(address).await.unwrap();
        slow.write_all(b"GET /metrics HTTP/1.1\r\nHost: 127")
            .await
            .unwrap();
        read_all(&mut slow).await;
        let waited = opened.elapsed();
        assert!(
            waited >= HEADER_PATIENCE && waited < CONNECTION_PATIENCE,
            "closed after {waited:?}"
        );
    }

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
