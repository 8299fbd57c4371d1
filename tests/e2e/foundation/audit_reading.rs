//! Reading the audit log over the socket: newest first, in pages that
//! neither repeat nor skip, filtered by kind, actor and time, each call
//! bounded; the links an outside reader needs come with every entry.

use occc_client::{ClientError, OcccClient, proto as pb};
use occc_tests::{
    DevDir, RunningDaemon,
    generated_audit::{GeneratedAudit, super_admin_over_generated_audit},
    people::signed_in_super_admin,
};
use occcd::store::AuditRowFilter;
use tonic::Code;

async fn all_pages(
    client: &OcccClient,
    request: pb::ListAuditEntriesRequest,
) -> Vec<pb::AuditEntry> {
    let mut request = request;
    let mut entries = Vec::new();
    loop {
        let page = client
            .audit()
            .list_audit_entries(request.clone())
            .await
            .unwrap()
            .into_inner();
        let cap = if request.page_size == 0 {
            100
        } else {
            request.page_size
        };
        assert!(page.entries.len() <= cap as usize);
        entries.extend(page.entries);
        if page.next_page_token.is_empty() {
            return entries;
        }
        request.page_token = page.next_page_token;
    }
}

fn code_of(result: Result<tonic::Response<pb::AuditEntryList>, tonic::Status>) -> (Code, String) {
    let status = result.unwrap_err();
    (status.code(), status.message().to_owned())
}

#[tokio::test]
async fn entries_are_read_newest_first_in_pages_with_filters() {
    let dir = DevDir::new();
    let daemon = RunningDaemon::start(&dir).await;
    let root = signed_in_super_admin(&dir, &daemon).await;
    for _ in 0..30 {
        let refused = root.anonymous.verify_audit_chain().await.unwrap_err();
        assert!(matches!(refused, ClientError::Rpc(ref s) if s.code() == Code::Unauthenticated));
    }

    let every = all_pages(
        &root.session,
        pb::ListAuditEntriesRequest {
            page_size: 7,
            ..Default::default()
        },
    )
    .await;
    let sequences: Vec<u64> = every.iter().map(|e| e.sequence).collect();
    let expected: Vec<u64> = (1..=sequences[0]).rev().collect();
    assert_eq!(sequences, expected, "newest first, no gap, no repeat");
    for pair in every.windows(2) {
        assert_eq!(pair[0].prev_hash_hex, pair[1].entry_hash_hex, "links");
    }
    assert!(every.iter().all(|e| e.entry_hash_hex.len() == 64));

    let refused = all_pages(
        &root.session,
        pb::ListAuditEntriesRequest {
            page_size: 500,
            kind: "call_refused".into(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(refused.len(), 30);
    assert!(
        refused
            .iter()
            .all(|e| e.kind == "call_refused" && e.actor.is_empty())
    );
    assert!(
        refused
            .iter()
            .all(|e| e.actor_uid == Some(nix::unistd::geteuid().as_raw()))
    );

    let by_root = all_pages(
        &root.session,
        pb::ListAuditEntriesRequest {
            actor: "root".into(),
            ..Default::default()
        },
    )
    .await;
    assert!(!by_root.is_empty() && by_root.iter().all(|e| e.actor == "root"));
    assert!(
        by_root.iter().any(|e| e.kind.starts_with("login")),
        "{by_root:?}"
    );

    let root_logins = all_pages(
        &root.session,
        pb::ListAuditEntriesRequest {
            actor: "root".into(),
            kind: "login_succeeded".into(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        root_logins.len(),
        by_root
            .iter()
            .filter(|e| e.kind == "login_succeeded")
            .count()
    );
    assert!(!root_logins.is_empty());

    let middle = &every[every.len() / 2];
    let since = all_pages(
        &root.session,
        pb::ListAuditEntriesRequest {
            since_unix_ms: Some(middle.at_unix_ms),
            ..Default::default()
        },
    )
    .await;
    assert!(since.iter().all(|e| e.at_unix_ms >= middle.at_unix_ms));
    assert!(since.iter().any(|e| e.sequence == middle.sequence));
    let until = all_pages(
        &root.session,
        pb::ListAuditEntriesRequest {
            until_unix_ms: Some(middle.at_unix_ms),
            ..Default::default()
        },
    )
    .await;
    assert!(until.iter().all(|e| e.at_unix_ms < middle.at_unix_ms));
    assert_eq!(since.len() + until.len(), every.len());

    // The newest page, asked twice, then after a new entry: the new entry shows.
    let newest = |client: &OcccClient| {
        let mut audit = client.audit();
        async move {
            audit
                .list_audit_entries(pb::ListAuditEntriesRequest::default())
                .await
                .unwrap()
                .into_inner()
                .entries
        }
    };
    let before = newest(&root.session).await;
    assert_eq!(newest(&root.session).await, before);
    let _ = root.anonymous.verify_audit_chain().await;
    let after = newest(&root.session).await;
    assert_eq!(after[0].sequence, before[0].sequence + 1);
    assert_eq!(after[0].kind, "call_refused");
    // A token above the newest entry (not one given out) starts at the newest.
    let made_up = root
        .session
        .audit()
        .list_audit_entries(pb::ListAuditEntriesRequest {
            page_token: i64::MAX.to_string(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(made_up.entries, after);

    // Bad input: a clear INVALID_ARGUMENT.
    let audit = root.session.audit();
    for token in ["1", "x", "-3"] {
        let (code, message) = code_of(
            audit
                .clone()
                .list_audit_entries(pb::ListAuditEntriesRequest {
                    page_token: token.into(),
                    ..Default::default()
                })
                .await,
        );
        assert_eq!(code, Code::InvalidArgument, "{message}");
        assert!(message.contains("page_token"), "{message}");
    }
    let (code, message) = code_of(
        audit
            .clone()
            .list_audit_entries(pb::ListAuditEntriesRequest {
                since_unix_ms: Some(5),
                until_unix_ms: Some(5),
                ..Default::default()
            })
            .await,
    );
    assert_eq!(code, Code::InvalidArgument);
    assert!(message.contains("earlier"), "{message}");
    let (code, _) = code_of(
        audit
            .clone()
            .list_audit_entries(pb::ListAuditEntriesRequest {
                kind: "k".repeat(4096),
                ..Default::default()
            })
            .await,
    );
    assert_eq!(code, Code::InvalidArgument);
    drop(daemon);
}

#[tokio::test]
async fn one_call_examines_a_bounded_range_and_says_where_to_go_on() {
    let dir = DevDir::new();
    let daemon = RunningDaemon::start(&dir).await;
    let root = signed_in_super_admin(&dir, &daemon).await;
    for _ in 0..20 {
        let _ = root.anonymous.verify_audit_chain().await;
    }
    daemon.terminate().await;
    let (store, _) = dir.open_store().await;
    let newest = store.last_audit_row().await.unwrap().unwrap().sequence;
    // The first entry's kind; with a window of 5 the newest call does not reach it.
    let first = store.audit_rows_after(0, 1).await.unwrap().remove(0);
    let filter = AuditRowFilter {
        kind: Some(first.kind.clone()),
        ..AuditRowFilter::default()
    };
    let page = store.audit_rows_page(&filter, 10, 5).await.unwrap();
    assert!(page.rows.is_empty());
    assert_eq!(page.examined_down_to, newest + 1 - 5);
    let mut before = page.examined_down_to;
    let mut found = Vec::new();
    while before > 1 {
        let filter = AuditRowFilter {
            before: Some(before),
            ..filter.clone()
        };
        let page = store.audit_rows_page(&filter, 10, 5).await.unwrap();
        assert!(page.examined_down_to >= before - 5);
        found.extend(page.rows.into_iter().map(|row| row.sequence));
        before = page.examined_down_to;
    }
    assert!(
        found.contains(&1),
        "walking the windows reaches the first entry: {found:?}"
    );
}

/// Over a log of 60,000 entries: a page holds at most 500 whatever is
/// asked; one call examines at most 50,000 entries (a filter that matches
/// nothing says where to go on); a made-up token above the newest entry
/// starts at the newest.
#[tokio::test]
async fn pages_and_the_entries_one_call_examines_are_bounded() {
    let dir = DevDir::new();
    let over = super_admin_over_generated_audit(
        &dir,
        "root",
        GeneratedAudit {
            count: 60_000,
            users: 10,
            rare_every: 1_000,
        },
    )
    .await;
    let page = |request: pb::ListAuditEntriesRequest| {
        let session = over.session.clone();
        async move {
            session
                .audit()
                .list_audit_entries(request)
                .await
                .unwrap()
                .into_inner()
        }
    };
    let everything = page(pb::ListAuditEntriesRequest {
        page_size: u32::MAX,
        ..Default::default()
    })
    .await;
    assert_eq!(everything.entries.len(), 500);
    let newest = everything.entries[0].sequence;
    assert!(newest > 60_000);
    let above = page(pb::ListAuditEntriesRequest {
        page_size: 3,
        page_token: (newest + 1_000_000).to_string(),
        ..Default::default()
    })
    .await;
    let sequences: Vec<u64> = above.entries.iter().map(|e| e.sequence).collect();
    assert_eq!(sequences, [newest, newest - 1, newest - 2]);
    let nothing = page(pb::ListAuditEntriesRequest {
        kind: "no_such_kind".into(),
        ..Default::default()
    })
    .await;
    assert!(nothing.entries.is_empty());
    assert_eq!(
        nothing.next_page_token,
        (newest + 1 - 50_000).to_string(),
        "examined the newest 50,000 entries, no more"
    );
}
