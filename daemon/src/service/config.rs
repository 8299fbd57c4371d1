//! `occc.v1.Config`: OpenClaw's config read, checked, written, versioned.

use std::sync::Arc;

use occc_proto::v1::{self as pb, config_server::Config};
use tonic::{Request, Response, Status};

use super::{
    config_convert::{change_to_proto, preview_to_proto, version_to_proto, view_to_proto},
    convert::{caller, to_completion},
};
use crate::{
    auth::{AuthEngine, sessions::Session},
    gate::Caller,
    openclaw::{
        ConfigEditor,
        document::MAX_CONFIG_BYTES,
        history::MAX_VERSIONS_LISTED,
        view::{ConfigActor, Reader, SessionNow},
        write_plan::Accepted,
    },
};

/// Longest container name and version string accepted.
const MAX_NAME: usize = 256;
/// Versions listed per page unless asked otherwise.
const DEFAULT_PAGE: u32 = 100;

/// Handler of `occc.v1.Config`.
#[derive(Debug)]
pub struct ConfigService {
    editor: Arc<ConfigEditor>,
    auth: Arc<AuthEngine>,
}

/// A caller's session, asked again when their write has its turn.
struct LiveSession {
    auth: Arc<AuthEngine>,
    caller: Caller,
}

impl SessionNow for LiveSession {
    fn session_now(&self) -> Option<Session> {
        self.auth
            .recheck(&self.caller.session, self.caller.peer.uid)
            .ok()
    }
}

impl ConfigService {
    /// A handler over `editor`, re-asking `auth` about writers' sessions.
    #[must_use]
    pub fn new(editor: Arc<ConfigEditor>, auth: Arc<AuthEngine>) -> Self {
        Self { editor, auth }
    }

    fn live(&self, caller: &Caller) -> LiveSession {
        LiveSession {
            auth: Arc::clone(&self.auth),
            caller: caller.clone(),
        }
    }

    fn reader(&self, caller: &Caller) -> Reader {
        self.editor.reader(&caller.session)
    }
}

fn actor<'a>(caller: &'a Caller, session: &'a LiveSession) -> ConfigActor<'a> {
    ConfigActor {
        username: &caller.session.username,
        role: caller.session.role,
        peer: caller.peer,
        session,
    }
}

fn bounded<'a>(field: &str, value: &'a str) -> Result<&'a str, Status> {
    if value.len() > MAX_NAME {
        return Err(Status::invalid_argument(format!(
            "{field}: at most {MAX_NAME} bytes"
        )));
    }
    Ok(value)
}

/// The request's text, refused unread beyond the size limit.
fn text_of(body: &mut pb::UpdateConfigRequest) -> Result<String, Status> {
    if body.text.len() > MAX_CONFIG_BYTES {
        return Err(Status::invalid_argument(format!(
            "text: the config is {} bytes; at most {MAX_CONFIG_BYTES} are accepted",
            body.text.len()
        )));
    }
    Ok(std::mem::take(&mut body.text))
}

fn written(accepted: Accepted) -> pb::ConfigWritten {
    pb::ConfigWritten {
        stored: accepted.stored.as_ref().map(version_to_proto),
        changes: accepted.changes.iter().map(change_to_proto).collect(),
        version: accepted.version,
    }
}

#[tonic::async_trait]
impl Config for ConfigService {
    async fn get_config(
        &self,
        request: Request<pb::GetConfigRequest>,
    ) -> Result<Response<pb::ConfigFile>, Status> {
        let caller = caller(&request)?;
        let container = bounded("container", &request.get_ref().container)?;
        let view = self.editor.get(container, self.reader(&caller)).await?;
        Ok(Response::new(view_to_proto(view)))
    }

    async fn check_config(
        &self,
        request: Request<pb::UpdateConfigRequest>,
    ) -> Result<Response<pb::ConfigPreview>, Status> {
        let caller = caller(&request)?;
        let mut body = request.into_inner();
        let text = text_of(&mut body)?;
        let container = bounded("container", &body.container)?;
        let preview = self
            .editor
            .preview(container, text, self.reader(&caller))
            .await?;
        Ok(Response::new(preview_to_proto(preview)))
    }

    async fn update_config(
        &self,
        request: Request<pb::UpdateConfigRequest>,
    ) -> Result<Response<pb::ConfigWritten>, Status> {
        let caller = caller(&request)?;
        let mut body = request.into_inner();
        let text = text_of(&mut body)?;
        bounded("container", &body.container)?;
        bounded("expected_version", &body.expected_version)?;
        let (editor, container, expected, note) = (
            Arc::clone(&self.editor),
            body.container.clone(),
            body.expected_version.clone(),
            body.note.clone(),
        );
        let live = self.live(&caller);
        // A client that leaves does not cut a write short.
        let accepted = to_completion(async move {
            editor
                .update(actor(&caller, &live), &container, &expected, text, &note)
                .await
        })
        .await?;
        Ok(Response::new(written(accepted)))
    }

    async fn list_config_versions(
        &self,
        request: Request<pb::ListConfigVersionsRequest>,
    ) -> Result<Response<pb::ConfigVersionList>, Status> {
        let body = request.get_ref();
        let container = bounded("container", &body.container)?;
        let size = match body.page_size {
            0 => DEFAULT_PAGE,
            n => n.min(MAX_VERSIONS_LISTED),
        };
        let below = match body.page_token.as_str() {
            "" => 0,
            token => token
                .parse::<i64>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| {
                    Status::invalid_argument(
                        "page_token: pass the next_page_token of the previous page",
                    )
                })?,
        };
        let versions = self
            .editor
            .history()
            .versions(container, below, size)
            .await?;
        let next_page_token = match versions.last() {
            Some(last) if versions.len() == size as usize && last.number > 1 => {
                last.number.to_string()
            }
            _ => String::new(),
        };
        Ok(Response::new(pb::ConfigVersionList {
            versions: versions.iter().map(version_to_proto).collect(),
            next_page_token,
        }))
    }

    async fn get_config_version(
        &self,
        request: Request<pb::ConfigVersionRef>,
    ) -> Result<Response<pb::ConfigVersionText>, Status> {
        let caller = caller(&request)?;
        let body = request.get_ref();
        let container = bounded("container", &body.container)?;
        let reader = self.reader(&caller);
        let (summary, text) = self
            .editor
            .history()
            .version(container, body.number, reader)
            .await?;
        Ok(Response::new(pb::ConfigVersionText {
            version: Some(version_to_proto(&summary)),
            text,
            redacted: !reader.may_see_secrets,
        }))
    }

    async fn diff_config_versions(
        &self,
        request: Request<pb::DiffConfigVersionsRequest>,
    ) -> Result<Response<pb::ConfigDiff>, Status> {
        let caller = caller(&request)?;
        let body = request.get_ref();
        let container = bounded("container", &body.container)?;
        let reader = self.reader(&caller);
        let diff = self
            .editor
            .history()
            .diff(container, body.from_number, body.to_number, reader)
            .await?;
        Ok(Response::new(pb::ConfigDiff {
            diff,
            redacted: !reader.may_see_secrets,
        }))
    }

    async fn restore_config_version(
        &self,
        request: Request<pb::RestoreConfigVersionRequest>,
    ) -> Result<Response<pb::ConfigWritten>, Status> {
        let caller = caller(&request)?;
        let body = request.into_inner();
        bounded("container", &body.container)?;
        bounded("expected_version", &body.expected_version)?;
        let editor = Arc::clone(&self.editor);
        let live = self.live(&caller);
        let accepted = to_completion(async move {
            editor
                .restore(
                    actor(&caller, &live),
                    &body.container,
                    body.number,
                    &body.expected_version,
                    &body.note,
                )
                .await
        })
        .await?;
        Ok(Response::new(written(accepted)))
    }
}
