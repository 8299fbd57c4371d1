//! What `ListSkills` and `GetSkill` answer, kept between writes so a
//! frontend's polling does not decode rows from the encrypted store on
//! every call.
//!
//! Invariant: an answer is given back only for the same request and only
//! while the store's skills version is the one it was read under (every
//! write to skill versions or approvals raises it once it ends); nothing
//! here is a secret (the same values the store returns to any viewer).

use super::{
    approval::SkillState,
    view::{SkillDetail, SkillSummary},
};
use crate::store::ReadCopy;

/// The last list and the last detail answered.
#[derive(Debug, Default)]
pub struct SkillReadModel {
    list: ReadCopy<(Option<String>, Option<SkillState>, Vec<SkillSummary>)>,
    detail: ReadCopy<SkillDetail>,
}

impl SkillReadModel {
    /// The list for `name` and `state`, if read under `version`.
    pub fn list(
        &self,
        version: u64,
        name: Option<&str>,
        state: Option<SkillState>,
    ) -> Option<Vec<SkillSummary>> {
        self.list
            .get(version)
            .filter(|(n, s, _)| n.as_deref() == name && *s == state)
            .map(|(_, _, list)| list)
    }

    /// Keeps the list for `name` and `state`, read under `version`.
    pub fn put_list(
        &self,
        version: u64,
        name: Option<&str>,
        state: Option<SkillState>,
        list: &[SkillSummary],
    ) {
        self.list
            .put(version, (name.map(str::to_owned), state, list.to_vec()));
    }

    /// The detail of `tree_hash`, if read under `version`.
    pub fn detail(&self, version: u64, tree_hash: &str) -> Option<SkillDetail> {
        self.detail
            .get(version)
            .filter(|detail| detail.summary.row.tree_hash == tree_hash)
    }

    /// Keeps a detail read under `version`.
    pub fn put_detail(&self, version: u64, detail: &SkillDetail) {
        self.detail.put(version, detail.clone());
    }
}
