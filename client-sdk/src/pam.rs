//! PAM biometric login and elevation: the daemon runs the host's PAM stack
//! (a fingerprint reader, say) and streams its messages and questions here.
//!
//! Invariant: every question the stack asks is put to the [`PamPrompter`]
//! and its answer sent back before the next message is read; the stream
//! ends with a session (or elevation) or with the daemon's error status.

use occc_proto::v1::{
    self as pb, pam_client_message::Kind as ClientKind, pam_server_message::Kind as ServerKind,
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use zeroize::Zeroizing;

use crate::{ClientError, OcccClient, SessionToken};

/// Shows the PAM stack's messages to the person and asks its questions.
///
/// Calls happen on the task driving the login; a terminal implementation
/// may block while the person types.
pub trait PamPrompter: Send + Sync {
    /// Show `text` ("Place your finger on the reader"); `error` marks an error.
    fn show(&self, text: &str, error: bool);
    /// Ask `question`; `hidden` asks to hide the answer while typed.
    fn ask(&self, question: &str, hidden: bool) -> Result<Zeroizing<String>, ClientError>;
}

fn start(username: &str) -> pb::PamClientMessage {
    pb::PamClientMessage {
        kind: Some(ClientKind::Start(pb::PamStart {
            username: username.to_owned(),
        })),
    }
}

fn unexpected(what: &str) -> ClientError {
    ClientError::Rpc(tonic::Status::internal(format!(
        "occcd's PAM stream {what}; is the daemon the same version as this client?"
    )))
}

impl OcccClient {
    /// Logs in as `username` through the host's PAM stack.
    pub async fn login_with_pam(
        &self,
        username: &str,
        prompter: &dyn PamPrompter,
    ) -> Result<OcccClient, ClientError> {
        let (answers, outbound) = mpsc::channel(4);
        let _ = answers.send(start(username)).await;
        let responses = self
            .biometric()
            .pam_login(ReceiverStream::new(outbound))
            .await?
            .into_inner();
        match converse(responses, &answers, prompter).await? {
            ServerKind::Login(mut login) => {
                Ok(self.with_session(SessionToken::new(std::mem::take(&mut login.session_token))))
            }
            _ => Err(unexpected("ended with an elevation instead of a login")),
        }
    }

    /// Elevates this client's session through the host's PAM stack.
    pub async fn elevate_with_pam(
        &self,
        prompter: &dyn PamPrompter,
    ) -> Result<pb::AuthSession, ClientError> {
        let (answers, outbound) = mpsc::channel(4);
        let _ = answers.send(start("")).await;
        let responses = self
            .biometric()
            .pam_elevate(ReceiverStream::new(outbound))
            .await?
            .into_inner();
        match converse(responses, &answers, prompter).await? {
            ServerKind::Elevated(session) => Ok(session),
            _ => Err(unexpected("ended with a login instead of an elevation")),
        }
    }
}

/// Relays prompts to `prompter` and answers back until the final message.
async fn converse(
    mut responses: tonic::Streaming<pb::PamServerMessage>,
    answers: &mpsc::Sender<pb::PamClientMessage>,
    prompter: &dyn PamPrompter,
) -> Result<ServerKind, ClientError> {
    while let Some(message) = responses.message().await? {
        let Some(kind) = message.kind else {
            return Err(unexpected("sent an empty message"));
        };
        let ServerKind::Prompt(prompt) = kind else {
            return Ok(kind);
        };
        let hidden = match prompt.kind() {
            pb::PamPromptKind::QuestionHidden => true,
            pb::PamPromptKind::QuestionVisible => false,
            pb::PamPromptKind::Error => {
                prompter.show(&prompt.text, true);
                continue;
            }
            pb::PamPromptKind::Info | pb::PamPromptKind::Unspecified => {
                prompter.show(&prompt.text, false);
                continue;
            }
        };
        let mut answer = prompter.ask(&prompt.text, hidden)?;
        let reply = pb::PamClientMessage {
            kind: Some(ClientKind::Answer(pb::PamAnswer {
                text: std::mem::take(&mut *answer),
            })),
        };
        // The daemon may already have ended the check; its status follows.
        let _ = answers.send(reply).await;
    }
    Err(unexpected("ended without a result"))
}
