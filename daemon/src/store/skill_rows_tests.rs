use super::*;
use crate::store::open_for_test;

const HASH: &str = "ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12";

fn version(submitted_by: &str, at: i64) -> SkillRow {
    SkillRow {
        tree_hash: HASH.to_owned(),
        name: "weather".to_owned(),
        description: "d".to_owned(),
        level: "critical".to_owned(),
        state: "pending".to_owned(),
        submitted_by: submitted_by.to_owned(),
        submitted_at: at,
        decided_by: None,
        decided_at: None,
        note: None,
        clawhub_fingerprint: String::new(),
        file_count: 1,
        total_bytes: 1,
        manifest: "[]".to_owned(),
        frontmatter: "{}".to_owned(),
        signals: "[]".to_owned(),
        installed_at: None,
    }
}

fn decision<'a>(by: &'a str, from: &'a str, to: &'a str) -> SkillDecisionRow<'a> {
    SkillDecisionRow {
        tree_hash: HASH,
        from,
        to,
        by,
        at: 5,
        note: "n",
    }
}

/// The store's side of "nobody approves their own submission, critical
/// needs two different approvers, decisions are conditional": every
/// submitter of a version is kept across a rejection and a resubmission,
/// and an approval is written only while the version is still pending at
/// the level the approver judged, by someone who neither submitted nor
/// already approved it.
#[tokio::test]
async fn approvals_are_conditional_and_no_submitter_of_a_version_approves_it() {
    let folder = tempfile::tempdir().unwrap();
    let store = open_for_test(folder.path()).await;
    let approve = |by: &'static str, level: &'static str| {
        let store = store.clone();
        async move {
            store
                .approve_skill(decision(by, "pending", "approved"), level, 2)
                .await
                .unwrap()
        }
    };
    assert!(store.submit_skill(&version("ann", 1)).await.unwrap());
    assert!(
        store
            .decide_skill(decision("sam", "pending", "rejected"))
            .await
            .unwrap()
    );
    assert!(
        !store
            .decide_skill(decision("sam", "pending", "rejected"))
            .await
            .unwrap(),
        "a decision from a state the version left changes nothing"
    );
    // Resubmitted by someone else: pending again, both submitters kept.
    assert!(store.submit_skill(&version("bob", 2)).await.unwrap());
    assert_eq!(store.skill_submitters(HASH).await.unwrap(), ["ann", "bob"]);
    assert_eq!(
        approve("ann", "critical").await,
        None,
        "the first submitter"
    );
    assert_eq!(approve("bob", "critical").await, None, "the second one");

    assert_eq!(approve("eve", "critical").await, Some(false), "one of two");
    assert_eq!(approve("eve", "critical").await, None, "eve again");
    assert_eq!(
        approve("sam", "high").await,
        None,
        "judged at a level the version no longer has"
    );
    assert_eq!(approve("sam", "critical").await, Some(true), "the second");
    let row = store.skill(HASH).await.unwrap().unwrap();
    assert_eq!(
        (row.state.as_str(), row.decided_by.as_deref()),
        ("approved", Some("sam"))
    );
    assert_eq!(approve("zed", "critical").await, None, "no longer pending");
    let approvers: Vec<String> = store
        .skill_approvals(HASH)
        .await
        .unwrap()
        .into_iter()
        .map(|approval| approval.approver)
        .collect();
    assert_eq!(approvers, ["eve", "sam"]);
}
