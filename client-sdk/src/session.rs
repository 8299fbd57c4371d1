//! Carrying a session token on every call.
//!
//! Invariant: the token lives in one zeroizing buffer shared by clones of a
//! client and is never printed: `Debug` shows `<redacted>`.

use std::{fmt, sync::Arc};

use tonic::{Request, Status, metadata::MetadataValue, service::Interceptor};
use zeroize::Zeroizing;

/// A session token returned by login.
#[derive(Clone)]
pub struct SessionToken(Arc<Zeroizing<String>>);

impl SessionToken {
    /// Wraps a token string.
    #[must_use]
    pub fn new(token: String) -> Self {
        Self(Arc::new(Zeroizing::new(token)))
    }

    /// The token text (to store it somewhere private).
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SessionToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionToken(<redacted>)")
    }
}

/// Adds `authorization: Bearer <token>` when the client has a session,
/// marked sensitive so HTTP/2 never indexes it in either side's HPACK table
/// (a long-lived connection would otherwise keep a copy of the token).
#[derive(Clone, Debug, Default)]
pub struct BearerInterceptor {
    token: Option<SessionToken>,
}

impl BearerInterceptor {
    pub(crate) fn new(token: Option<SessionToken>) -> Self {
        Self { token }
    }
}

impl Interceptor for BearerInterceptor {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(token) = &self.token {
            let mut value = MetadataValue::try_from(format!("Bearer {}", token.expose()))
                .map_err(|_| Status::invalid_argument("session token is not valid header text"))?;
            value.set_sensitive(true);
            request.metadata_mut().insert("authorization", value);
        }
        Ok(request)
    }
}
