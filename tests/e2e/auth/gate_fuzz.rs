//! The gate under hostile metadata (issue #9, "must also hold"): thousands
//! of requests with missing, duplicated, oversized, non-ASCII and oddly
//! cased `authorization` headers, generated from a fixed seed and sent raw
//! over the real socket, never get past the gate — and the daemon keeps
//! serving. Only the real token, in one header, is admitted.

use std::str::FromStr;

use http::{HeaderValue, Request, Uri};
use http_body_util::BodyExt;
use occc_tests::{
    DevDir, RunningDaemon,
    people::{bootstrap_super_admin, log_in},
};
use tonic::body::Body;
use tower::{Service, ServiceExt};

/// A small, seeded generator (xorshift64*): the same requests every run.
struct Seeded(u64);

impl Seeded {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> usize {
        usize::try_from(self.next() % n).unwrap()
    }

    fn bytes(&mut self, len: usize, alphabet: &[u8]) -> Vec<u8> {
        (0..len)
            .map(|_| alphabet[self.below(alphabet.len() as u64)])
            .collect()
    }
}

/// One hostile `authorization` header set; never the real token alone.
fn hostile(random: &mut Seeded, token: &str) -> Vec<Vec<u8>> {
    let visible: Vec<u8> = (0x21..0x7f).collect();
    let high: Vec<u8> = (0x80..=0xff).collect();
    let schemes: [&[u8]; 7] = [
        b"Bearer", b"bearer", b"BEARER", b"bEaReR", b"Basic", b"Bearer:", b"",
    ];
    let scheme = schemes[random.below(schemes.len() as u64)];
    let junk_len = [0, 1, 43, 64, 200, 8 * 1024][random.below(6)];
    let junk = random.bytes(junk_len, &visible);
    let with = |scheme: &[u8], rest: &[u8]| [scheme, b" ", rest].concat();
    match random.below(8) {
        0 => Vec::new(),
        1 => vec![with(scheme, &junk)],
        2 => vec![with(scheme, &random.bytes(24, &high))],
        3 => vec![with(b"Bearer", token.as_bytes()), with(scheme, &junk)],
        4 => vec![with(scheme, &junk), with(b"Bearer", token.as_bytes())],
        5 => {
            let tail_len = 1 + random.below(8);
            let tail = random.bytes(tail_len, &visible);
            vec![with(b"Bearer", &[token.as_bytes(), &tail].concat())]
        }
        6 => vec![with(b"Bearer", &token.as_bytes()[..token.len() - 1])],
        _ => vec![junk.clone(), junk],
    }
}

/// Sends an empty unary call to `path` with `authorization` headers; returns
/// the grpc-status (from the headers of a trailers-only answer, else the
/// trailers).
async fn grpc_status(
    channel: &mut tonic::transport::Channel,
    path: &str,
    authorization: &[Vec<u8>],
) -> String {
    let mut request = Request::builder()
        .method("POST")
        .uri(Uri::from_str(&format!("http://localhost{path}")).unwrap())
        .header("content-type", "application/grpc")
        .header("te", "trailers");
    for value in authorization {
        // A few values are not even valid header bytes: the client stops those.
        if let Ok(value) = HeaderValue::from_bytes(value) {
            request = request.header("authorization", value);
        }
    }
    let request = request
        .body(Body::new(http_body_util::Full::new(
            bytes_of_empty_message(),
        )))
        .unwrap();
    let response = channel.ready().await.unwrap().call(request).await.unwrap();
    if let Some(status) = response.headers().get("grpc-status") {
        return status.to_str().unwrap().to_owned();
    }
    let collected = response.into_body().collect().await.unwrap();
    let trailers = collected.trailers().cloned().unwrap_or_default();
    trailers
        .get("grpc-status")
        .map(|status| status.to_str().unwrap().to_owned())
        .unwrap_or_else(|| "none".to_owned())
}

fn bytes_of_empty_message() -> tonic::codegen::Bytes {
    tonic::codegen::Bytes::from_static(&[0, 0, 0, 0, 0])
}

#[tokio::test]
async fn hostile_authorization_metadata_never_passes_the_gate() {
    let dir = DevDir::new();
    let daemon = RunningDaemon::start(&dir).await;
    let anonymous = daemon.client().await;
    let mut root = bootstrap_super_admin(&dir, &anonymous, "root").await;
    let session = log_in(&anonymous, &mut root).await;
    let token = session.session().unwrap().expose().to_owned();
    let mut channel = anonymous.channel();
    let paths = [
        "/occc.v1.Auth/WhoAmI",
        "/occc.v1.Users/ListUsers",
        "/occc.v1.Audit/VerifyChain",
    ];

    // The harness can admit: the real token, with any scheme case, passes.
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let header = format!("{scheme} {token}").into_bytes();
        assert_eq!(grpc_status(&mut channel, paths[1], &[header]).await, "0");
    }
    let mut random = Seeded(0x000c_ccd9);
    let mut admitted = Vec::new();
    let mut refusals = std::collections::BTreeMap::<String, usize>::new();
    for round in 0..2_000 {
        let headers = hostile(&mut random, &token);
        let path = paths[round % paths.len()];
        let status = grpc_status(&mut channel, path, &headers).await;
        if status == "0" {
            let lengths: Vec<usize> = headers.iter().map(Vec::len).collect();
            admitted.push((path, lengths));
        }
        *refusals.entry(status).or_default() += 1;
    }
    // UNAUTHENTICATED from the gate; "none" where HTTP/2 itself refused an
    // oversized header block before any handler could see it.
    assert!(
        refusals
            .keys()
            .all(|status| status == "16" || status == "none"),
        "{refusals:?}"
    );
    assert!(
        refusals.get("16").copied().unwrap_or(0) > 1_000,
        "{refusals:?}"
    );
    assert!(admitted.is_empty(), "admitted: {admitted:?}");
    // Still serving, and the owner's session still works.
    assert_eq!(
        anonymous.health().await.unwrap(),
        occc_client::proto_health::health_check_response::ServingStatus::Serving
    );
    session
        .auth()
        .who_am_i(occc_client::proto::WhoAmIRequest {})
        .await
        .expect("the session survived");
    daemon.terminate().await;
}
