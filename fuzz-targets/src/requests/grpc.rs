//! Just enough gRPC for calls made in-process: a request framing a message
//! (or any bytes), and the status a response carries — in its headers when
//! it ended at once, else in the trailers after its message.

use std::{
    fmt,
    pin::Pin,
    task::{Context, Poll, Waker},
};

use bytes::{Buf as _, Bytes};
use http_body::Body as _;
use http_body_util::BodyExt as _;
use tonic::body::Body;

/// How tonic's status for an undecodable message begins (prost's
/// `DecodeError`, percent-encoded as `grpc-message` carries it).
const UNDECODABLE: &str = "failed%20to%20decode%20Protobuf%20message";

/// What a call was answered, as far as it got without waiting.
#[derive(Debug, Clone, Default)]
pub struct Answer {
    /// The gRPC status code; `None` while a stream is still open.
    code: Option<u32>,
    /// Its message, as sent (percent-encoded).
    message: String,
    /// Why the gate refused it, when it did (`occc-denial`).
    denial: String,
}

impl Answer {
    /// INTERNAL or UNKNOWN: the daemon failed, the caller cannot act on it
    /// — except INTERNAL for bytes that are not the request message at
    /// all, which is what gRPC specifies for them
    /// (grpc/doc/statuscodes.md: "Error parsing request proto"), and what
    /// tonic answers before any occcd code runs.
    pub fn is_internal(&self) -> bool {
        match self.code {
            Some(2) => true,
            Some(13) => !self.message.starts_with(UNDECODABLE),
            _ => false,
        }
    }

    /// Why the gate refused the call (`occc-denial`: `login-required`,
    /// `forbidden`, `elevation-required`, …), empty if it did not.
    pub fn denial(&self) -> &str {
        &self.denial
    }

    fn from_headers(headers: &http::HeaderMap) -> Option<Self> {
        let text = |name: &str| {
            headers
                .get(name)
                .and_then(|value| value.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        let code = text("grpc-status").parse().ok()?;
        Some(Self {
            code: Some(code),
            message: text("grpc-message"),
            denial: text("occc-denial"),
        })
    }
}

impl fmt::Display for Answer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.code {
            Some(code) => write!(f, "code {code} \"{}\"", self.message),
            None => f.write_str("an open stream"),
        }
    }
}

/// A POST of `message`, framed, to `path`.
pub fn request(path: &str, authorization: Option<String>, message: &[u8]) -> http::Request<Body> {
    let mut framed = Vec::with_capacity(message.len() + 5);
    framed.push(0); // not compressed
    framed.extend_from_slice(
        &u32::try_from(message.len())
            .unwrap_or(u32::MAX)
            .to_be_bytes(),
    );
    framed.extend_from_slice(message);
    let mut request = http::Request::new(Body::new(http_body_util::Full::new(Bytes::from(framed))));
    *request.method_mut() = http::Method::POST;
    if let Ok(uri) = http::Uri::try_from(path) {
        *request.uri_mut() = uri;
    }
    let headers = request.headers_mut();
    headers.insert(
        "content-type",
        http::HeaderValue::from_static("application/grpc"),
    );
    headers.insert("te", http::HeaderValue::from_static("trailers"));
    if let Some(value) = authorization.and_then(|value| http::HeaderValue::try_from(value).ok()) {
        headers.insert("authorization", value);
    }
    request
}

/// The status of `response`, reading whatever of its body is ready now (a
/// unary reply is; a stream's later items are not waited for, and dropping
/// the body ends the stream).
pub fn answer(response: http::Response<Body>) -> Answer {
    if let Some(answer) = Answer::from_headers(response.headers()) {
        return answer;
    }
    let mut body = response.into_body();
    let mut context = Context::from_waker(Waker::noop());
    // A stream may have many items ready: enough to reach a unary trailer.
    for _ in 0..64 {
        match Pin::new(&mut body).poll_frame(&mut context) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(trailers) = frame.trailers_ref() {
                    return Answer::from_headers(trailers).unwrap_or_default();
                }
            }
            Poll::Ready(Some(Err(status))) => {
                return Answer {
                    code: Some(status.code() as u32),
                    message: status.message().to_owned(),
                    denial: String::new(),
                };
            }
            Poll::Ready(None) | Poll::Pending => break,
        }
    }
    Answer::default()
}

/// The decoded reply of a unary call, or its status.
pub async fn reply<R: prost::Message + Default>(
    response: http::Response<Body>,
) -> Result<R, Answer> {
    if let Some(answer) = Answer::from_headers(response.headers()) {
        return Err(answer);
    }
    let collected = response
        .into_body()
        .collect()
        .await
        .map_err(|status| Answer {
            code: Some(status.code() as u32),
            message: status.message().to_owned(),
            denial: String::new(),
        })?;
    if let Some(answer) = collected.trailers().and_then(Answer::from_headers)
        && answer.code != Some(0)
    {
        return Err(answer);
    }
    let mut data = collected.to_bytes();
    if data.remaining() < 5 {
        return Err(Answer::default());
    }
    data.advance(5);
    R::decode(data).map_err(|err| Answer {
        code: None,
        message: format!("undecodable reply: {err}"),
        denial: String::new(),
    })
}
