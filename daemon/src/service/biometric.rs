//! `occc.v1.Biometric`: PAM login and elevation over a bidirectional stream.
//!
//! Invariant: the PAM stack's messages reach the client in order and before
//! the final answer; each client answer goes to the question asked; when the
//! client stops sending, pending and later questions fail at once instead of
//! waiting for the deadline; answers are moved into zeroizing buffers and
//! never logged.

use std::{pin::Pin, sync::Arc};

use occc_proto::v1::{
    self as pb, biometric_server::Biometric, pam_client_message::Kind as ClientKind,
    pam_server_message::Kind as ServerKind,
};
use tokio::sync::mpsc;
use tokio_stream::{Stream, wrappers::ReceiverStream};
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
            let outcome = auth.login_with_pam(peer, &start.username, bridge).await?;
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
                .elevate_with_pam(&caller.session, caller.peer, bridge)
                .await?;
            let session = session_to_proto(&elevated, auth.sessions(), Some(&elevated.id));
            Ok(ServerKind::Elevated(session))
        }))
    }
}

/// The `start` message every call opens with.
async fn first_message(
    inbound: &mut Streaming<pb::PamClientMessage>,
) -> Result<pb::PamStart, Status> {
    match inbound.message().await? {
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
    let check = check(bridge);
    tokio::spawn(async move {
        let last = relay(check, client, inbound, &outbound).await;
        // A client that went away no longer needs the result.
        let _ = outbound
            .send(last.map(|kind| pb::PamServerMessage { kind: Some(kind) }))
            .await;
    });
    Response::new(Box::pin(ReceiverStream::new(responses)))
}

async fn relay(
    check: impl Future<Output = Result<ServerKind, AuthError>>,
    client: ClientEnd,
    mut inbound: Streaming<pb::PamClientMessage>,
    outbound: &mpsc::Sender<Result<pb::PamServerMessage, Status>>,
) -> Result<ServerKind, Status> {
    let ClientEnd {
        mut messages,
        answers,
    } = client;
    let mut answers = Some(answers);
    let mut messages_open = true;
    tokio::pin!(check);
    loop {
        tokio::select! {
            result = &mut check => {
                while let Ok(message) = messages.try_recv() {
                    let _ = outbound.send(Ok(prompt(message))).await;
                }
                return result.map_err(Status::from);
            }
            message = messages.recv(), if messages_open => match message {
                Some(message) => {
                    let _ = outbound.send(Ok(prompt(message))).await;
                }
                None => messages_open = false,
            },
            next = inbound.message(), if answers.is_some() => match next {
                Ok(Some(pb::PamClientMessage { kind: Some(ClientKind::Answer(answer)) })) => {
                    let text = Zeroizing::new(answer.text);
                    check_answer(&text)?;
                    if let Some(sender) = &answers {
                        // The transaction may be over; then the answer is moot.
                        let _ = sender.send(text);
                    }
                }
                Ok(Some(_)) => {
                    return Err(Status::invalid_argument(
                        "after `start`, send only `answer` messages",
                    ));
                }
                // The client stopped sending: questions now fail at once.
                Ok(None) | Err(_) => answers = None,
            },
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
