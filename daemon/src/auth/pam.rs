//! PAM transactions for biometric login and elevation: run off the async
//! runtime, with the module's conversation bridged to the gRPC client.
//!
//! Invariant: a transaction runs on its own OS thread; at most
//! `max_concurrent` run at once and at most `max_per_peer` for one socket
//! peer uid (a slot stays taken until its thread ends, even after the caller
//! stopped waiting, so a hung module cannot multiply threads and one uid
//! cannot take every slot); the caller has its answer by the deadline
//! whatever the stack does; success means both `pam_authenticate` and
//! `pam_acct_mgmt` passed while the client was still there; answers to
//! prompts are zeroized in occcd's buffers and never logged.

#[cfg(unix)]
use std::ffi::{CStr, CString};
use std::{
    fmt,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
        mpsc as std_mpsc,
    },
    time::{Duration, Instant},
};

#[cfg(unix)]
use pam_client::{Context, ConversationHandler, ErrorCode, Flag};
use tokio::sync::{OwnedSemaphorePermit, mpsc, oneshot};
use zeroize::Zeroizing;

pub use super::pam_slots::PamSlots;
use super::pam_slots::PeerSlot;
use crate::config::PamConfig;

/// Longest answer a client may send to one question.
pub const MAX_ANSWER_BYTES: usize = 1024;
/// Conversation messages one transaction may send (a looping module stops here).
const MAX_MESSAGES: usize = 32;
/// Longest module message passed on to the client.
#[cfg(unix)]
const MAX_MESSAGE_CHARS: usize = 512;

/// What the PAM stack says to the person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PamMessage {
    /// Show this ("Place your finger on the reader").
    Info(String),
    /// Show this as an error.
    Error(String),
    /// Ask this; `echo` says whether the answer may be shown while typed.
    Question {
        /// The question.
        text: String,
        /// Whether the answer is visible while typed.
        echo: bool,
    },
}

/// The transaction's end of a conversation.
#[derive(Debug)]
#[cfg_attr(not(unix), allow(dead_code))] // read by the Unix PAM conversation
pub struct PamBridge {
    to_client: mpsc::Sender<PamMessage>,
    answers: std_mpsc::Receiver<Zeroizing<String>>,
    abandoned: Arc<AtomicBool>,
}

/// The client's end of a conversation.
#[derive(Debug)]
pub struct ClientEnd {
    /// Messages and questions from the PAM stack, in order.
    pub messages: mpsc::Receiver<PamMessage>,
    answers: Option<std_mpsc::Sender<Zeroizing<String>>>,
    abandoned: Arc<AtomicBool>,
}

impl ClientEnd {
    /// Whether answers can still be sent.
    #[must_use]
    pub fn answering(&self) -> bool {
        self.answers.is_some()
    }

    /// Passes the answer to the latest question on (the transaction may be
    /// over already; then it is dropped).
    pub fn answer(&self, text: Zeroizing<String>) {
        if let Some(answers) = &self.answers {
            let _ = answers.send(text);
        }
    }

    /// The client will send no more answers: questions fail at once instead
    /// of waiting for the deadline.
    pub fn stop_answering(&mut self) {
        self.answers = None;
    }

    /// The client went away (or broke the protocol) before the result: the
    /// check fails whatever the stack says, and questions fail at once.
    pub fn abandon(&mut self) {
        self.abandoned.store(true, Ordering::SeqCst);
        self.stop_answering();
    }
}

/// A connected conversation: one end for the transaction, one for the client.
#[must_use]
pub fn conversation() -> (PamBridge, ClientEnd) {
    // Room for every message a transaction may send, so sending never blocks.
    let (to_client, messages) = mpsc::channel(MAX_MESSAGES + 1);
    let (answer_sender, answers) = std_mpsc::channel();
    let abandoned = Arc::new(AtomicBool::new(false));
    (
        PamBridge {
            to_client,
            answers,
            abandoned: Arc::clone(&abandoned),
        },
        ClientEnd {
            messages,
            answers: Some(answer_sender),
            abandoned,
        },
    )
}

/// The PAM call that refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PamStep {
    /// `pam_authenticate`: the person was not recognised.
    Authenticate,
    /// `pam_acct_mgmt`: the OS account may not be used (expired, disabled).
    AccountManagement,
}

impl fmt::Display for PamStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Authenticate => "authentication",
            Self::AccountManagement => "account check",
        })
    }
}

/// Why a PAM check did not pass.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PamError {
    /// Every transaction slot is taken.
    #[error("too many PAM checks are running")]
    Busy,
    /// The caller's uid already runs as many checks as it may.
    #[error("a PAM check of this OS user is still running")]
    PeerBusy,
    /// The client went away or broke the protocol before the result.
    #[error("the client went away before the result")]
    Abandoned,
    /// No result within the deadline (no finger, unanswered question).
    #[error("no result within {} s", .0.as_secs_f32())]
    TimedOut(Duration),
    /// The stack answered no.
    #[error("PAM {step} refused: {reason}")]
    Refused {
        /// Which call refused.
        step: PamStep,
        /// libpam's description of the result code.
        reason: String,
    },
    /// The transaction could not run (bad service, no thread).
    #[error("PAM transaction failed to run: {0}")]
    Unavailable(String),
}

/// Runs PAM checks for one configured service.
#[derive(Debug)]
pub struct PamAuthenticator {
    service: String,
    timeout: Duration,
    slots: PamSlots,
    max_per_peer: usize,
    allow_root_peer: bool,
}

impl PamAuthenticator {
    /// The authenticator `config` describes, with slots of its own; `None`
    /// when PAM login is off.
    #[must_use]
    pub fn from_config(config: &PamConfig) -> Option<Self> {
        Self::sharing(config, &PamSlots::default())
    }

    /// The authenticator `config` describes over `slots`, the daemon's
    /// (resized to `max_concurrent`); `None` when PAM login is off.
    #[must_use]
    pub fn sharing(config: &PamConfig, slots: &PamSlots) -> Option<Self> {
        if config.service.is_empty() {
            return None;
        }
        slots.resize(config.max_concurrent.max(1));
        Some(Self {
            service: config.service.clone(),
            timeout: config.timeout(),
            slots: slots.clone(),
            max_per_peer: config.max_per_peer.max(1),
            allow_root_peer: config.allow_root_peer,
        })
    }

    /// Whether root (uid 0) may use PAM for any linked user
    /// (`auth.pam.allow_root_peer`).
    #[must_use]
    pub fn allows_root_peer(&self) -> bool {
        self.allow_root_peer
    }

    /// Takes a transaction slot for socket peer `peer_uid`: refused when
    /// every slot, or that peer's share, is taken. Nothing has run yet.
    pub fn reserve(&self, peer_uid: u32) -> Result<PamSlot, PamError> {
        let peer = self
            .slots
            .peer(peer_uid, self.max_per_peer)
            .ok_or(PamError::PeerBusy)?;
        let global = self.slots.global().ok_or(PamError::Busy)?;
        Ok(PamSlot {
            _global: global,
            _peer: peer,
        })
    }

    /// Runs `pam_authenticate` and `pam_acct_mgmt` for `os_account` in the
    /// reserved `slot`, talking to the person through `bridge`.
    pub async fn check(
        &self,
        slot: PamSlot,
        os_account: &str,
        bridge: PamBridge,
    ) -> Result<(), PamError> {
        let deadline = Instant::now() + self.timeout;
        let (result_sender, result) = oneshot::channel();
        let service = self.service.clone();
        let os_account = os_account.to_owned();
        let timeout = self.timeout;
        let abandoned = Arc::clone(&bridge.abandoned);
        std::thread::Builder::new()
            .name("occcd-pam".to_owned())
            .spawn(move || {
                let conversation = BridgedConversation {
                    bridge,
                    deadline,
                    sent: 0,
                    timed_out: false,
                };
                let outcome = run_transaction(&service, &os_account, conversation, timeout);
                // The caller may have stopped waiting; then nobody needs it.
                let _ = result_sender.send(outcome);
                drop(slot);
            })
            .map_err(|err| PamError::Unavailable(format!("no thread for PAM: {err}")))?;
        let outcome = match tokio::time::timeout(self.timeout, result).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(_)) => Err(PamError::Unavailable(
                "the PAM thread ended without a result".to_owned(),
            )),
            Err(_) => Err(PamError::TimedOut(self.timeout)),
        };
        if abandoned.load(Ordering::SeqCst) {
            return Err(PamError::Abandoned);
        }
        outcome
    }
}

/// A reserved transaction slot (global and the peer's share), held by the
/// transaction's thread until libpam returns.
#[derive(Debug)]
pub struct PamSlot {
    _global: OwnedSemaphorePermit,
    _peer: PeerSlot,
}

/// PAM does not exist on Windows: every check fails closed, saying so.
#[cfg(windows)]
fn run_transaction(
    _service: &str,
    _os_account: &str,
    _conversation: BridgedConversation,
    _timeout: Duration,
) -> Result<(), PamError> {
    Err(PamError::Unavailable(
        "PAM does not exist on Windows; use a device-bound key (Windows Hello) instead".to_owned(),
    ))
}

#[cfg(unix)]
fn run_transaction(
    service: &str,
    os_account: &str,
    conversation: BridgedConversation,
    timeout: Duration,
) -> Result<(), PamError> {
    let mut context = Context::new(service, Some(os_account), conversation)
        .map_err(|err| PamError::Unavailable(format!("service {service:?}: {err}")))?;
    let refused = |context: &Context<BridgedConversation>, step, err: pam_client::Error| {
        if context.conversation().timed_out {
            PamError::TimedOut(timeout)
        } else {
            PamError::Refused {
                step,
                reason: err.to_string(),
            }
        }
    };
    if let Err(err) = context.authenticate(Flag::DISALLOW_NULL_AUTHTOK) {
        return Err(refused(&context, PamStep::Authenticate, err));
    }
    if let Err(err) = context.acct_mgmt(Flag::DISALLOW_NULL_AUTHTOK) {
        return Err(refused(&context, PamStep::AccountManagement, err));
    }
    Ok(())
}

/// The conversation handler libpam calls on the transaction's thread.
#[cfg_attr(windows, allow(dead_code))]
struct BridgedConversation {
    bridge: PamBridge,
    deadline: Instant,
    sent: usize,
    timed_out: bool,
}

#[cfg(unix)]
impl BridgedConversation {
    fn send(&mut self, message: PamMessage) -> Result<(), ErrorCode> {
        self.sent += 1;
        if self.sent > MAX_MESSAGES {
            return Err(ErrorCode::CONV_ERR);
        }
        // Never blocks: the channel has room for MAX_MESSAGES.
        self.bridge
            .to_client
            .try_send(message)
            .map_err(|_| ErrorCode::CONV_ERR)
    }

    fn ask(&mut self, question: &CStr, echo: bool) -> Result<CString, ErrorCode> {
        self.send(PamMessage::Question {
            text: readable(question),
            echo,
        })?;
        if self.bridge.abandoned.load(Ordering::SeqCst) {
            return Err(ErrorCode::CONV_ERR);
        }
        let left = self.deadline.saturating_duration_since(Instant::now());
        let answer = match self.bridge.answers.recv_timeout(left) {
            Ok(answer) => answer,
            Err(std_mpsc::RecvTimeoutError::Timeout) => {
                self.timed_out = true;
                return Err(ErrorCode::CONV_ERR);
            }
            Err(std_mpsc::RecvTimeoutError::Disconnected) => return Err(ErrorCode::CONV_ERR),
        };
        // libpam copies the answer; pam-client frees this copy without
        // zeroizing it (see docs/threat-model.md).
        CString::new(answer.as_bytes()).map_err(|_| ErrorCode::CONV_ERR)
    }
}

#[cfg(unix)]
fn readable(text: &CStr) -> String {
    text.to_string_lossy()
        .chars()
        .take(MAX_MESSAGE_CHARS)
        .collect()
}

#[cfg(unix)]
impl ConversationHandler for BridgedConversation {
    fn prompt_echo_on(&mut self, prompt: &CStr) -> Result<CString, ErrorCode> {
        self.ask(prompt, true)
    }

    fn prompt_echo_off(&mut self, prompt: &CStr) -> Result<CString, ErrorCode> {
        self.ask(prompt, false)
    }

    fn text_info(&mut self, message: &CStr) {
        // A module's message is advisory; a full or closed channel drops it.
        let _ = self.send(PamMessage::Info(readable(message)));
    }

    fn error_msg(&mut self, message: &CStr) {
        let _ = self.send(PamMessage::Error(readable(message)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_service_means_pam_is_off() {
        assert!(PamAuthenticator::from_config(&PamConfig::default()).is_none());
        let config = PamConfig {
            service: "occc-biometric".to_owned(),
            ..PamConfig::default()
        };
        assert!(PamAuthenticator::from_config(&config).is_some());
    }

    #[tokio::test]
    async fn a_service_without_a_file_fails_closed() {
        // libpam falls back to /etc/pam.d/other, which Debian denies.
        let config = PamConfig {
            service: "occc-no-such-service-file".to_owned(),
            timeout_ms: 5_000,
            ..PamConfig::default()
        };
        let pam = PamAuthenticator::from_config(&config).unwrap();
        let (bridge, _client) = conversation();
        let slot = pam.reserve(0).unwrap();
        assert!(pam.check(slot, "root", bridge).await.is_err());
    }

    #[test]
    fn one_peer_holds_at_most_its_share_of_the_slots() {
        let config = PamConfig {
            service: "occc-test".to_owned(),
            max_per_peer: 1,
            ..PamConfig::default()
        };
        let pam = PamAuthenticator::from_config(&config).unwrap();
        let first = pam.reserve(1000).unwrap();
        assert!(matches!(pam.reserve(1000), Err(PamError::PeerBusy)));
        let other = pam.reserve(1001);
        assert!(other.is_ok(), "another uid is unaffected");
        drop(first);
        assert!(pam.reserve(1000).is_ok(), "given back when the thread ends");
    }

    #[test]
    fn a_reload_keeps_the_shares_of_checks_still_running() {
        let config = PamConfig {
            service: "occc-test".to_owned(),
            max_per_peer: 1,
            ..PamConfig::default()
        };
        let slots = PamSlots::default();
        let pam = PamAuthenticator::sharing(&config, &slots).unwrap();
        let running = pam.reserve(1000).unwrap();
        let off = PamConfig::default();
        assert!(
            PamAuthenticator::sharing(&off, &slots).is_none(),
            "an empty service turns PAM off"
        );
        let back_on = PamAuthenticator::sharing(&config, &slots).unwrap();
        assert!(matches!(back_on.reserve(1000), Err(PamError::PeerBusy)));
        drop(running);
        assert!(back_on.reserve(1000).is_ok());
    }

    #[test]
    fn long_module_messages_are_cut() {
        let long = CString::new("x".repeat(5_000)).unwrap();
        assert_eq!(readable(&long).len(), MAX_MESSAGE_CHARS);
    }
}
