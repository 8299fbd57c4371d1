//! `occc.v1.Skills`: submission, review and decisions on skills.

use std::sync::Arc;

use occc_proto::v1::{self as pb, skills_server::Skills};
use tonic::{Request, Response, Status, Streaming};

use super::{
    convert::{caller, to_completion},
    session_bound::{next_within, stream_place, while_allowed},
    skills_convert::{detail_to_proto, diff_to_proto, state_from_proto, version_to_proto},
    status::share_refused,
};
use crate::{
    auth::AuthEngine,
    gate::Caller,
    skills::{SkillActor, SkillGovernance, unpack::ArchiveFormat},
    transport::uid_shares::UidShares,
};

/// Longest name filter and folder path accepted.
const MAX_TEXT: usize = 4096;
/// Archives being received at once (each buffers up to
/// `skills.max_archive_bytes`), per peer uid and in all.
pub const UPLOADS_PER_UID: usize = 1;
const MAX_UPLOADS: usize = 4;

/// Handler of `occc.v1.Skills`.
#[derive(Debug)]
pub struct SkillsService {
    skills: Arc<SkillGovernance>,
    auth: Arc<AuthEngine>,
    streams: Arc<UidShares>,
    uploads: Arc<UidShares>,
}

impl SkillsService {
    /// A handler over `skills`; an upload holds a place of `streams` and
    /// is submitted only if its caller's session in `auth` still allows it.
    #[must_use]
    pub fn new(
        skills: Arc<SkillGovernance>,
        auth: Arc<AuthEngine>,
        streams: Arc<UidShares>,
    ) -> Self {
        Self {
            skills,
            auth,
            streams,
            uploads: UidShares::new(UPLOADS_PER_UID, MAX_UPLOADS),
        }
    }
}

/// Which decision a call asks for.
#[derive(Debug, Clone, Copy)]
enum Decision {
    Approve,
    Reject,
    Revoke,
}

impl SkillsService {
    /// Runs `decision` on the request's version to completion (a client
    /// that leaves does not cut a decision or an install short).
    async fn decide(
        &self,
        request: Request<pb::SkillDecision>,
        decision: Decision,
    ) -> Result<Response<pb::SkillVersion>, Status> {
        let caller = caller(&request)?;
        let body = request.into_inner();
        let skills = Arc::clone(&self.skills);
        let summary = to_completion(async move {
            let (by, hash, note) = (actor(&caller), body.tree_hash.as_str(), body.note.as_str());
            match decision {
                Decision::Approve => skills.approve(by, hash, note).await,
                Decision::Reject => skills.reject(by, hash, note).await,
                Decision::Revoke => skills.revoke(by, hash, note).await,
            }
        })
        .await?;
        Ok(Response::new(version_to_proto(&summary)))
    }
}

fn actor(caller: &Caller) -> SkillActor<'_> {
    SkillActor {
        username: &caller.session.username,
        role: caller.session.role,
        peer: caller.peer,
    }
}

fn bounded<'a>(field: &str, value: &'a str) -> Result<&'a str, Status> {
    if value.len() > MAX_TEXT {
        return Err(Status::invalid_argument(format!(
            "{field}: at most {MAX_TEXT} bytes"
        )));
    }
    Ok(value)
}

#[tonic::async_trait]
impl Skills for SkillsService {
    async fn submit_skill(
        &self,
        request: Request<Streaming<pb::SkillArchiveChunk>>,
    ) -> Result<Response<pb::SkillVersion>, Status> {
        let caller = caller(&request)?;
        // Places first: what one uid may buffer is bounded before a byte is.
        let _place = stream_place(&self.streams, &caller)?;
        let _upload = self
            .uploads
            .take(caller.peer.uid)
            .map_err(|refused| share_refused("skill archives being sent", refused))?;
        let limit = self.skills.max_archive_bytes();
        let mut stream = request.into_inner();
        // Received only while the caller stays allowed and the parts keep
        // coming: an upload whose session ends meanwhile, or that sends
        // nothing for a minute, is cut off then, its place given back.
        let (format, archive) = while_allowed(&self.auth, &caller, async {
            let mut format = None;
            let mut archive = Vec::new();
            while let Some(chunk) = next_within(&mut stream, "part of the archive").await? {
                if format.is_none() {
                    format = match pb::ArchiveFormat::try_from(chunk.format) {
                        Ok(pb::ArchiveFormat::Tar) => Some(ArchiveFormat::Tar),
                        Ok(pb::ArchiveFormat::Zip) => Some(ArchiveFormat::Zip),
                        _ => {
                            return Err(Status::invalid_argument(
                                "format: name the archive format (tar or zip) in the first chunk",
                            ));
                        }
                    };
                }
                if archive.len() as u64 + chunk.data.len() as u64 > limit {
                    return Err(Status::invalid_argument(format!(
                        "the archive is larger than skills.max_archive_bytes ({limit} bytes)"
                    )));
                }
                archive.extend_from_slice(&chunk.data);
            }
            Ok((format, archive))
        })
        .await?;
        let format = format.ok_or_else(|| Status::invalid_argument("no archive was sent"))?;
        let skills = Arc::clone(&self.skills);
        let summary =
            to_completion(
                async move { skills.submit_archive(actor(&caller), format, archive).await },
            )
            .await?;
        Ok(Response::new(version_to_proto(&summary)))
    }

    async fn submit_skill_folder(
        &self,
        request: Request<pb::SubmitSkillFolderRequest>,
    ) -> Result<Response<pb::SkillVersion>, Status> {
        let caller = caller(&request)?;
        let path = bounded("path", &request.get_ref().path)?.to_owned();
        let skills = Arc::clone(&self.skills);
        let summary =
            to_completion(async move { skills.submit_folder(actor(&caller), &path).await }).await?;
        Ok(Response::new(version_to_proto(&summary)))
    }

    async fn list_skills(
        &self,
        request: Request<pb::ListSkillsRequest>,
    ) -> Result<Response<pb::SkillList>, Status> {
        let body = request.get_ref();
        let name = Some(bounded("name", &body.name)?).filter(|n| !n.is_empty());
        let state = state_from_proto(body.state)?;
        let skills = self.skills.list(name, state).await?;
        Ok(Response::new(pb::SkillList {
            skills: skills.iter().map(version_to_proto).collect(),
        }))
    }

    async fn get_skill(
        &self,
        request: Request<pb::SkillRef>,
    ) -> Result<Response<pb::SkillDetail>, Status> {
        let detail = self
            .skills
            .detail(bounded("tree_hash", &request.get_ref().tree_hash)?)
            .await?;
        Ok(Response::new(detail_to_proto(&detail)))
    }

    async fn approve_skill(
        &self,
        request: Request<pb::SkillDecision>,
    ) -> Result<Response<pb::SkillVersion>, Status> {
        self.decide(request, Decision::Approve).await
    }

    async fn reject_skill(
        &self,
        request: Request<pb::SkillDecision>,
    ) -> Result<Response<pb::SkillVersion>, Status> {
        self.decide(request, Decision::Reject).await
    }

    async fn revoke_skill(
        &self,
        request: Request<pb::SkillDecision>,
    ) -> Result<Response<pb::SkillVersion>, Status> {
        self.decide(request, Decision::Revoke).await
    }

    async fn diff_skill(
        &self,
        request: Request<pb::DiffSkillRequest>,
    ) -> Result<Response<pb::SkillDiff>, Status> {
        let body = request.get_ref();
        let diff = self
            .skills
            .diff(&body.from_tree_hash, &body.to_tree_hash)
            .await?;
        Ok(Response::new(diff_to_proto(&diff)))
    }
}
