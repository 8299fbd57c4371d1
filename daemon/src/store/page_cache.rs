//! Each connection of the store's pool keeps its own page cache.
//!
//! Invariant: the SQLCipher occcd links gives every connection a page cache
//! of its own, bounded by the pool's `cache_size` — SQLite's "mode 1",
//! which it uses when built without `SQLITE_ENABLE_MEMORY_MANAGEMENT`
//! (libsqlite3-sys defines it; the workspace's `.cargo/config.toml` undefines
//! it through `LIBSQLITE3_FLAGS`, for cargo run from the repository). With
//! the option, all connections share one budget, and a connection holding
//! less than its share that reads a page while the others hold the whole
//! budget (one big write leaves its connection with all of it) gets that
//! page dropped as soon as it lets it go: it reads and decrypts a table page
//! again for every row it looks up through an index. A page of 100 failed
//! logins read about 140 pages instead of 18, 2.5–3 ms instead of 0.7
//! (docs/performance.md). Nothing in occcd uses what the option adds
//! (`sqlite3_release_memory`, a soft heap limit). A build that kept it
//! still works: start-up logs a warning.

use sqlx::SqlitePool;

/// The compile option that makes every connection share one page cache.
const SHARED_PAGE_CACHE: &str = "ENABLE_MEMORY_MANAGEMENT";

/// Whether SQLite's compile options (as `PRAGMA compile_options` lists
/// them) make its connections share one page cache.
fn shares_one_page_cache(options: &[String]) -> bool {
    options.iter().any(|option| option == SHARED_PAGE_CACHE)
}

/// Logs a warning when the linked SQLite shares one page cache between
/// connections (the build did not use the workspace's `.cargo/config.toml`).
pub(super) async fn warn_if_shared(pool: &SqlitePool) {
    match sqlx::query_scalar::<_, String>("PRAGMA compile_options")
        .fetch_all(pool)
        .await
    {
        Ok(options) if shares_one_page_cache(&options) => {
            tracing::warn!(
                "SQLite was built with SQLITE_ENABLE_MEMORY_MANAGEMENT (one page cache shared by \
                 every connection): reads through an index can read each page again per row; \
                 build occcd with cargo run from its repository, whose .cargo/config.toml turns \
                 it off"
            );
        }
        Ok(_) => {}
        Err(err) => tracing::warn!(error = %err, "SQLite's compile options could not be read"),
    }
}

#[cfg(test)]
mod tests {
    use std::ffi::c_int;

    use libsqlite3_sys as ffi;
    use sqlx::sqlite::SqliteConnection;

    use super::shares_one_page_cache;

    /// Pages `connection` has read from the file since it opened.
    #[allow(unsafe_code)]
    async fn pages_read(connection: &mut SqliteConnection) -> c_int {
        let mut handle = connection.lock_handle().await.unwrap();
        let database = handle.as_raw_handle().as_ptr();
        let (mut now, mut highest): (c_int, c_int) = (0, 0);
        // SAFETY: `database` is open and held by the locked handle for the
        // whole call; both pointers are to this frame's integers, written
        // once.
        let code = unsafe {
            ffi::sqlite3_db_status(
                database,
                ffi::SQLITE_DBSTATUS_CACHE_MISS,
                &raw mut now,
                &raw mut highest,
                0,
            )
        };
        assert_eq!(code, ffi::SQLITE_OK);
        now
    }

    /// Walks 20 pages of 100 `login_failed` entries (every fourth entry)
    /// down from `below` through the kind index, reading each entry's row
    /// as a filtered `ListAuditEntries` does; returns pages read per page.
    async fn pages_read_per_kind_page(reader: &mut SqliteConnection, below: i64) -> c_int {
        let before = pages_read(reader).await;
        let mut below = below;
        for _ in 0..20 {
            let (lowest, _detail_bytes): (i64, i64) = sqlx::query_as(
                "SELECT min(sequence), sum(length(detail)) FROM (SELECT sequence, detail \
                 FROM audit_log WHERE kind = 'login_failed' AND sequence < ?1 \
                 ORDER BY sequence DESC LIMIT 100)",
            )
            .bind(below)
            .fetch_one(&mut *reader)
            .await
            .unwrap();
            below = lowest;
        }
        (pages_read(reader).await - before) / 20
    }

    #[test]
    fn only_memory_management_means_one_shared_page_cache() {
        let options = |names: &[&str]| {
            names
                .iter()
                .map(|&name| name.to_owned())
                .collect::<Vec<_>>()
        };
        assert!(shares_one_page_cache(&options(&[
            "THREADSAFE=1",
            "ENABLE_MEMORY_MANAGEMENT"
        ])));
        assert!(!shares_one_page_cache(&options(&[
            "THREADSAFE=1",
            "ENABLE_STAT4"
        ])));
        assert!(!shares_one_page_cache(&options(&[
            "ENABLE_MEMORY_MANAGEMENT_X"
        ])));
    }

    #[tokio::test]
    async fn the_linked_sqlite_gives_each_connection_its_own_page_cache() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::open_for_test(dir.path()).await;
        let options: Vec<String> = sqlx::query_scalar("PRAGMA compile_options")
            .fetch_all(&store.pool)
            .await
            .unwrap();
        assert!(!shares_one_page_cache(&options));
    }

    #[tokio::test]
    async fn a_reader_keeps_the_pages_it_reads_after_another_connection_wrote_much() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::open_for_test(dir.path()).await;
        let fill = |from: i64, to: i64| {
            sqlx::query(
                "WITH RECURSIVE n(x) AS (SELECT ?1 UNION ALL SELECT x + 1 FROM n WHERE x < ?2) \
                 INSERT INTO audit_log (sequence, at_unix_ms, kind, actor_uid, actor_gid, \
                 actor_pid, actor_user, detail, prev_hash, entry_hash) \
                 SELECT x, x, CASE x % 4 WHEN 1 THEN 'login_failed' ELSE 'login_succeeded' END, \
                 1000, 1000, 4242, NULL, '{\"method\":\"password\"}', zeroblob(32), zeroblob(32) \
                 FROM n",
            )
            .bind(from)
            .bind(to)
            .execute(&store.pool)
        };
        // The reader is an established connection (the pool's first, which
        // wrote a first batch) that has read pages of its own...
        let mut reader = store.pool.acquire().await.unwrap();
        fill(1, 20_000).await.unwrap();
        let _ = pages_read_per_kind_page(&mut reader, 20_001).await;
        // ...when another connection (opened now: the reader is held)
        // writes 200,000 more entries in one go, as the audit writer or a
        // session persist writes, only more: with one shared budget it is
        // left holding all of it.
        fill(20_001, 220_000).await.unwrap();
        // 100 entries span 400 rows, about 15 table pages: read once each.
        // A reader whose pages are dropped as it lets them go reads one per
        // row (over 100 a page).
        let per_page = pages_read_per_kind_page(&mut reader, 220_001).await;
        assert!(per_page < 40, "{per_page} pages read per page of entries");
    }
}
