//! Reading the log a page at a time, newest first, for people.
//!
//! Invariant: one call examines at most [`EXAMINED_PER_PAGE`] entries and
//! returns at most [`MAX_PAGE`], whatever the filter, so no caller can make a
//! read scan the whole log; a page token is the sequence to continue below,
//! so pages never repeat or skip an entry (the log only grows at the top).

use super::AuditError;
use crate::store::{AuditRow, AuditRowFilter, Store};

/// Entries per page when the caller names no size.
pub const DEFAULT_PAGE: u32 = 100;
/// The most entries in one page.
pub const MAX_PAGE: u32 = 500;
/// The most entries one call looks at.
pub const EXAMINED_PER_PAGE: u32 = 50_000;
/// The longest kind or actor name a filter may hold.
const MAX_FILTER_CHARS: usize = 128;

/// What to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    /// Entries per page (0: [`DEFAULT_PAGE`]; capped at [`MAX_PAGE`]).
    pub page_size: u32,
    /// A previous page's token; empty for the newest entries.
    pub page_token: String,
    /// Only entries recorded at or after this time.
    pub since_unix_ms: Option<i64>,
    /// Only entries recorded before this time.
    pub until_unix_ms: Option<i64>,
    /// Only entries of this user; empty for all.
    pub actor: String,
    /// Only entries of this kind; empty for all.
    pub kind: String,
}

/// One page of entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditPage {
    /// Newest first.
    pub entries: Vec<AuditRow>,
    /// Where the next page starts; empty when nothing older is left.
    pub next_page_token: String,
}

impl AuditQuery {
    fn filter(&self) -> Result<AuditRowFilter, AuditError> {
        let before = if self.page_token.is_empty() {
            None
        } else {
            match self.page_token.parse::<i64>() {
                Ok(sequence) if sequence > 1 => Some(sequence),
                _ => {
                    return Err(AuditError::BadQuery(
                        "page_token is not one this daemon gave out; start again with an empty one"
                            .into(),
                    ));
                }
            }
        };
        if let (Some(since), Some(until)) = (self.since_unix_ms, self.until_unix_ms)
            && since >= until
        {
            return Err(AuditError::BadQuery(
                "since_unix_ms must be earlier than until_unix_ms".into(),
            ));
        }
        Ok(AuditRowFilter {
            before,
            since_unix_ms: self.since_unix_ms,
            until_unix_ms: self.until_unix_ms,
            actor_user: name_filter("actor", &self.actor)?,
            kind: name_filter("kind", &self.kind)?,
        })
    }
}

fn name_filter(what: &str, value: &str) -> Result<Option<String>, AuditError> {
    if value.is_empty() {
        return Ok(None);
    }
    if value.chars().count() > MAX_FILTER_CHARS || value.chars().any(char::is_control) {
        return Err(AuditError::BadQuery(format!(
            "{what} must be at most {MAX_FILTER_CHARS} characters without control characters"
        )));
    }
    Ok(Some(value.to_owned()))
}

/// The page `query` asks for.
pub async fn list_entries(store: &Store, query: &AuditQuery) -> Result<AuditPage, AuditError> {
    let filter = query.filter()?;
    let limit = match query.page_size {
        0 => DEFAULT_PAGE,
        size => size.min(MAX_PAGE),
    };
    let page = store
        .audit_rows_page(&filter, limit, EXAMINED_PER_PAGE)
        .await?;
    let next_page_token = if page.examined_down_to > 1 {
        page.examined_down_to.to_string()
    } else {
        String::new()
    };
    Ok(AuditPage {
        entries: page.rows,
        next_page_token,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(token: &str) -> AuditQuery {
        AuditQuery {
            page_token: token.into(),
            ..AuditQuery::default()
        }
    }

    #[test]
    fn tokens_are_sequences_above_one() {
        assert_eq!(query("").filter().unwrap().before, None);
        assert_eq!(query("42").filter().unwrap().before, Some(42));
        for bad in ["1", "0", "-5", "x", "4 2", "99999999999999999999"] {
            assert!(
                matches!(query(bad).filter(), Err(AuditError::BadQuery(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn filters_are_bounded_and_ordered() {
        let mut q = query("");
        q.kind = "k".repeat(129);
        assert!(q.filter().is_err());
        q.kind = "login\nfailed".into();
        assert!(q.filter().is_err());
        q.kind = "login_failed".into();
        assert_eq!(q.filter().unwrap().kind.as_deref(), Some("login_failed"));
        q.since_unix_ms = Some(10);
        q.until_unix_ms = Some(10);
        assert!(q.filter().is_err());
        q.until_unix_ms = Some(11);
        assert!(q.filter().is_ok());
    }
}
