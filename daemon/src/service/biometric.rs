//! `occc.v1.Biometric`: PAM login and elevation over a bidirectional stream.
//!
//! Invariant: the PAM stack's messages reach the client in order and before
//! the final answer; each client answer goes to the question asked; when the
//! client stops sending, pending and later questions fail at once instead of
//! waiting for the deadline; the check runs to its end in its own task
//! whatever the client does, and a client that goes away or breaks the
//! protocol before the result abandons it (counted as a failure, never a
//! session); answers are moved into zeroizing buffers and never logged.

use std::{pin::Pin, sync::Arc};

use occc_proto::v1::{
    self as pb, biometric_server::Biometric, pam_client_message::Kind as ClientKind,
    pam_server_message::Kind as ServerKind,
};
use tokio::{sync::mpsc, task::JoinHandle};
use tokio_stream::{Stream, StreamExt, wrappers::ReceiverStream};
use tonic::{Request, Response, Status, Streaming};
use zeroize::Zeroizing;

use super::convert::{caller, login_response, peer, session_to_proto};
use crate::auth::{
    AuthEngine, AuthError,
    pam::{self, ClientEnd, MAX_ANSWER_BYTES, PamMessage},
};

/// Messages buffered towards a slow client.
const OUTBOUND_BUFFER: usize = 8;

type ServerStream = Pin<Box<dyn Stream<Item = Result<pb::PamServerMessage, Status>> + Send>>;

/// Handler of `occc.v1.Biometric`.
#[derive(Debug)]
pub struct BiometricService {
    auth: Arc<AuthEngine>,
}

impl BiometricService {
    /// A handler over `auth`.
    #[must_use]
    pub fn new(auth: Arc<AuthEngine>) -> Self {
        Self { auth }
    }
}

#[tonic::async_trait]
impl Biometric for BiometricService {
    type PamLoginStream = ServerStream;
    type PamElevateStream = ServerStream;

    async fn pam_login(
        &self,
        request: Request<Streaming<pb::PamClientMessage>>,
    ) -> Result<Response<ServerStream>, Status> {
        let peer = peer(&request)?;
        let mut inbound = request.into_inner();
        let start = first_message(&mut inbound).await?;
        let auth = Arc::clone(&self.auth);
        Ok(serve(inbound, move |bridge| async move {
            let outcome = auth
                .pam()
                .login_with_pam(peer, &start.username, bridge)
                .await?;
            Ok(ServerKind::Login(login_response(&outcome, auth.sessions())))
        }))
    }

    async fn pam_elevate(
        &self,
        request: Request<Streaming<pb::PamClientMessage>>,
    ) -> Result<Response<ServerStream>, Status> {
        let caller = caller(&request)?;
        let mut inbound = request.into_inner();
        first_message(&mut inbound).await?;
        let auth = Arc::clone(&self.auth);
        Ok(serve(inbound, move |bridge| async move {
            let elevated = auth
                .pam()
                .elevate_with_pam(&caller.session, caller.peer, bridge)
                .await?;
            let session = session_to_proto(&elevated, auth.sessions(), Some(&elevated.id));
            Ok(ServerKind::Elevated(session))
        }))
    }
}

/// How long a client may take to send `start`.
const START_WITHIN: std::time::Duration = std::time::Duration::from_secs(10);

/// The `start` message every call opens with, within [`START_WITHIN`].
async fn first_message<S>(inbound: &mut S) -> Result<pb::PamStart, Status>
where
    S: Stream<Item = Result<pb::PamClientMessage, Status>> + Unpin,
{
    let first = tokio::time::timeout(START_WITHIN, inbound.next())
        .await
        .map_err(|_| {
            Status::deadline_exceeded(format!(
                "send `start` within {} s of opening the stream",
                START_WITHIN.as_secs()
            ))
        })?;
    match first.transpose()? {
        Some(pb::PamClientMessage {
            kind: Some(ClientKind::Start(start)),
        }) => Ok(start),
        _ => Err(Status::invalid_argument(
            "the first message must be `start` (with the username for PamLogin)",
        )),
    }
}

/// Runs `check` with a fresh conversation and relays it over the response
/// stream, which ends with the check's result.
fn serve<Check, Fut>(
    inbound: Streaming<pb::PamClientMessage>,
    check: Check,
) -> Response<ServerStream>
where
    Check: FnOnce(pam::PamBridge) -> Fut,
    Fut: Future<Output = Result<ServerKind, AuthError>> + Send + 'static,
{
    let (bridge, client) = pam::conversation();
    let (outbound, responses) = mpsc::channel(OUTBOUND_BUFFER);
    // Its own task: however the stream ends, the check finishes and its
    // outcome is counted and audited.
    let check = tokio::spawn(check(bridge));
    tokio::spawn(async move {
        if let Some(last) = relay(check, client, inbound, &outbound).await {
            // A client that went away no longer needs the result.
            let _ = outbound
                .send(last.map(|kind| pb::PamServerMessage { kind: Some(kind) }))
                .await;
        }
    });
    Response::new(Box::pin(ReceiverStream::new(responses)))
}

/// Relays prompts and answers until the check ends; `None` when the client
/// went away first.
async fn relay(
    mut check: JoinHandle<Result<ServerKind, AuthError>>,
    mut client: ClientEnd,
    mut inbound: Streaming<pb::PamClientMessage>,
    outbound: &mpsc::Sender<Result<pb::PamServerMessage, Status>>,
) -> Option<Result<ServerKind, Status>> {
    let mut messages_open = true;
    loop {
        tokio::select! {
            result = &mut check => {
                while let Ok(message) = client.messages.try_recv() {
                    let _ = outbound.send(Ok(prompt(message))).await;
                }
                return Some(match result {
                    Ok(outcome) => outcome.map_err(Status::from),
                    Err(join) => {
                        tracing::error!(error = %join, "PAM check task failed");
                        Err(Status::internal("the PAM check failed; see the daemon's log"))
                    }
                });
            }
            message = client.messages.recv(), if messages_open => match message {
                Some(message) => {
                    if outbound.send(Ok(prompt(message))).await.is_err() {
                        client.abandon();
                        return None;
                    }
                }
                None => messages_open = false,
            },
            next = inbound.message(), if client.answering() => match next {
                Ok(Some(pb::PamClientMessage { kind: Some(ClientKind::Answer(mut answer)) })) => {
                    let text = Zeroizing::new(std::mem::take(&mut answer.text));
                    if let Err(refused) = check_answer(&text) {
                        client.abandon();
                        return Some(Err(refused));
                    }
                    client.answer(text);
                }
                Ok(Some(_)) => {
                    client.abandon();
                    return Some(Err(Status::invalid_argument(
                        "after `start`, send only `answer` messages; this check is abandoned and counted as failed",
                    )));
                }
                // The client stopped sending: questions now fail at once.
                Ok(None) => client.stop_answering(),
                // The call was cancelled or the connection broke.
                Err(_) => {
                    client.abandon();
                    return None;
                }
            },
            () = outbound.closed() => {
                client.abandon();
                return None;
            }
        }
    }
}

fn check_answer(text: &str) -> Result<(), Status> {
    if text.len() > MAX_ANSWER_BYTES || text.contains('\0') {
        return Err(Status::invalid_argument(format!(
            "answer: at most {MAX_ANSWER_BYTES} bytes and no NUL character"
        )));
    }
    Ok(())
}

fn prompt(message: PamMessage) -> pb::PamServerMessage {
    let (kind, text) = match message {
        PamMessage::Info(text) => (pb::PamPromptKind::Info, text),
        PamMessage::Error(text) => (pb::PamPromptKind::Error, text),
        PamMessage::Question { text, echo: true } => (pb::PamPromptKind::QuestionVisible, text),
        PamMessage::Question { text, echo: false } => (pb::PamPromptKind::QuestionHidden, text),
    };
    pb::PamServerMessage {
        kind: Some(ServerKind::Prompt(pb::PamPrompt {
            kind: kind.into(),
            text,
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn start(username: &str) -> Result<pb::PamClientMessage, Status> {
        Ok(pb::PamClientMessage {
            kind: Some(ClientKind::Start(pb::PamStart {
                username: username.to_owned(),
            })),
        })
    }

    #[tokio::test(start_paused = true)]
    async fn a_stream_that_sends_no_start_within_ten_seconds_is_ended() {
        let opened = tokio::time::Instant::now();
        let mut silent = tokio_stream::pending::<Result<pb::PamClientMessage, Status>>();
        let refused = first_message(&mut silent).await.unwrap_err();
        assert_eq!(refused.code(), tonic::Code::DeadlineExceeded);
        assert!(refused.message().contains("within 10 s"), "{refused:?}");
        assert_eq!(opened.elapsed(), START_WITHIN);

        // Just in time is in time.
        let (sender, receiver) = mpsc::channel(1);
        let waiting =
            tokio::spawn(async move { first_message(&mut ReceiverStream::new(receiver)).await });
        // The call is waiting (its deadline set) before time moves on.
        tokio::task::yield_now().await;
        tokio::time::advance(START_WITHIN - std::time::Duration::from_millis(1)).await;
        tokio::task::yield_now().await;
        let _ = sender.send(start("ada")).await;
        assert_eq!(waiting.await.unwrap().unwrap().username, "ada");
    }

    #[tokio::test]
    async fn the_first_message_must_be_start() {
        let answer = Ok(pb::PamClientMessage {
            kind: Some(ClientKind::Answer(pb::PamAnswer::default())),
        });
        let refused = first_message(&mut tokio_stream::iter([answer]))
            .await
            .unwrap_err();
        assert_eq!(refused.code(), tonic::Code::InvalidArgument);
        let ended = first_message(&mut tokio_stream::empty()).await.unwrap_err();
        assert_eq!(ended.code(), tonic::Code::InvalidArgument);
    }
}
