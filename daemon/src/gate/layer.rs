//! The tower layer that puts the [`Gate`] in front of every service, and opens
//! a log span carrying the RPC and the peer's credentials.
//!
//! Invariant: the wrapped service is called only after `Gate::admit` said yes;
//! an admitted request carries its [`PeerCredentials`] in its extensions;
//! every call, admitted or refused, is counted by method (a policy-table
//! path, else `other`) and gRPC code with its time to the response.

use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use tonic::body::Body;
use tower::{Layer, Service};
use tracing::Instrument;

use super::{AUTHORIZATION, Authorization, Gate, policy_for};
use crate::{metrics::Metrics, service::refusal_status, transport::PeerCredentials};

/// Wraps services with the gate.
#[derive(Debug, Clone)]
pub struct GateLayer {
    gate: Arc<Gate>,
    metrics: Arc<Metrics>,
}

impl GateLayer {
    /// A layer that admits requests through `gate` and counts them in
    /// `metrics`.
    #[must_use]
    pub fn new(gate: Gate, metrics: Arc<Metrics>) -> Self {
        Self {
            gate: Arc::new(gate),
            metrics,
        }
    }
}

impl<S> Layer<S> for GateLayer {
    type Service = GatedService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GatedService {
            gate: Arc::clone(&self.gate),
            metrics: Arc::clone(&self.metrics),
            inner,
        }
    }
}

/// A service behind the gate.
#[derive(Debug, Clone)]
pub struct GatedService<S> {
    gate: Arc<Gate>,
    metrics: Arc<Metrics>,
    inner: S,
}

type BoxFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send>>;

impl<S> Service<http::Request<Body>> for GatedService<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<Body>) -> Self::Future {
        // The clone is not ready; keep the ready one for this request.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let gate = Arc::clone(&self.gate);
        let metrics = Arc::clone(&self.metrics);
        let started = std::time::Instant::now();
        let method = policy_for(request.uri().path()).map_or("other", |policy| policy.path);
        let peer = PeerCredentials::from_extensions(request.extensions());
        let span = tracing::info_span!(
            "rpc",
            rpc = %request.uri().path(),
            peer.uid = peer.map(|p| p.uid),
            peer.gid = peer.map(|p| p.gid),
            peer.pid = peer.and_then(|p| p.pid),
        );
        Box::pin(
            async move {
                let token = bearer_token(request.headers());
                let authorization = match &token {
                    BearerHeader::Missing => Authorization::None,
                    BearerHeader::Ambiguous => Authorization::Ambiguous,
                    BearerHeader::Token(token) => Authorization::Bearer(token.as_str()),
                };
                let answered = match gate.admit(request.uri().path(), peer, authorization).await {
                    Ok(caller) => {
                        if let Some(peer) = peer {
                            request.extensions_mut().insert(peer);
                        }
                        if let Some(caller) = caller {
                            request.extensions_mut().insert(caller);
                        }
                        inner.call(request).await
                    }
                    Err(refusal) => Ok(refusal_status(&refusal, request.uri().path()).into_http()),
                };
                if let Ok(response) = &answered {
                    metrics.call(method, grpc_code(response.headers()), started.elapsed());
                }
                answered
            }
            .instrument(span),
        )
    }
}

/// The gRPC code of a response: in its headers when it ended at once
/// (an error), else OK (the trailers that follow a body carry it then).
fn grpc_code(headers: &http::HeaderMap) -> u32 {
    headers
        .get("grpc-status")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse().ok())
        .unwrap_or(0)
}

/// What the `authorization` header of a request holds.
#[derive(Debug)]
pub enum BearerHeader {
    /// None, or not a visible-ASCII `Bearer <token>`.
    Missing,
    /// More than one header.
    Ambiguous,
    /// The token (wiped when dropped).
    Token(zeroize::Zeroizing<String>),
}

/// The token of a single `authorization: Bearer <token>` header (the scheme
/// is case-insensitive, RFC 7235 §2.1).
pub fn bearer_token(headers: &http::HeaderMap) -> BearerHeader {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return if headers.contains_key(AUTHORIZATION) {
            BearerHeader::Ambiguous
        } else {
            BearerHeader::Missing
        };
    };
    let Ok(value) = value.to_str() else {
        return BearerHeader::Missing;
    };
    let Some((scheme, token)) = value.split_once(' ') else {
        return BearerHeader::Missing;
    };
    if !scheme.eq_ignore_ascii_case("bearer") {
        return BearerHeader::Missing;
    }
    BearerHeader::Token(zeroize::Zeroizing::new(token.trim().to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&[u8]]) -> http::HeaderMap {
        let mut map = http::HeaderMap::new();
        for value in values {
            map.append(AUTHORIZATION, http::HeaderValue::from_bytes(value).unwrap());
        }
        map
    }

    fn token(values: &[&[u8]]) -> Option<String> {
        match bearer_token(&headers(values)) {
            BearerHeader::Token(token) => Some(token.to_string()),
            _ => None,
        }
    }

    #[test]
    fn one_bearer_header_with_any_scheme_case() {
        assert_eq!(token(&[b"Bearer abc"]).as_deref(), Some("abc"));
        assert_eq!(token(&[b"bEaReR  abc "]).as_deref(), Some("abc"));
        assert_eq!(token(&[b"Basic abc"]), None);
        assert_eq!(token(&[b"Bearerabc"]), None);
        assert_eq!(token(&[b"Bearer \xffabc"]), None, "not visible ASCII");
        assert_eq!(token(&[]), None);
        assert!(matches!(
            bearer_token(&headers(&[b"Bearer a", b"Bearer b"])),
            BearerHeader::Ambiguous
        ));
    }
}
