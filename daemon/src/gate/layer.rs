//! The tower layer that puts the [`Gate`] in front of every service, and opens
//! a log span carrying the RPC and the peer's credentials.
//!
//! Invariant: the wrapped service is called only after `Gate::admit` said yes;
//! an admitted request carries its [`PeerCredentials`] in its extensions.

use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use tonic::body::Body;
use tower::{Layer, Service};
use tracing::Instrument;

use super::{AUTHORIZATION, Gate};
use crate::{service::refusal_status, transport::PeerCredentials};

/// Wraps services with the gate.
#[derive(Debug, Clone)]
pub struct GateLayer {
    gate: Arc<Gate>,
}

impl GateLayer {
    /// A layer that admits requests through `gate`.
    #[must_use]
    pub fn new(gate: Gate) -> Self {
        Self {
            gate: Arc::new(gate),
        }
    }
}

impl<S> Layer<S> for GateLayer {
    type Service = GatedService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GatedService {
            gate: Arc::clone(&self.gate),
            inner,
        }
    }
}

/// A service behind the gate.
#[derive(Debug, Clone)]
pub struct GatedService<S> {
    gate: Arc<Gate>,
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
                match gate
                    .admit(
                        request.uri().path(),
                        peer,
                        token.as_ref().map(|t| t.as_str()),
                    )
                    .await
                {
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
                }
            }
            .instrument(span),
        )
    }
}

/// The token of an `authorization: Bearer <token>` header, if present.
fn bearer_token(headers: &http::HeaderMap) -> Option<zeroize::Zeroizing<String>> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let token = value.strip_prefix("Bearer ")?;
    Some(zeroize::Zeroizing::new(token.trim().to_owned()))
}
