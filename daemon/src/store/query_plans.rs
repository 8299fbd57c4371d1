//! Prepared statements keep their plan: SQLite's query-planner stability
//! guarantee (QPSG) is turned on for every connection of the store's pool
//! (not the short-lived ones that check a key or a restored copy).
//!
//! Invariant: on a pool connection, a statement is never compiled again
//! because a value bound to it changed. Without QPSG, SQLite (3.50)
//! compiles `LIMIT ?` with the bound number as a constant and marks the
//! statement stale at the next bind of that parameter, whatever the value: every paged list — each ends in
//! `LIMIT ?` — was parsed and planned again on every call, about a tenth of
//! the daemon's CPU while paging (docs/performance.md). occcd's statements
//! have one plan whatever their values (equality on an indexed column and
//! rowid ranges, no `LIKE` or `GLOB` on bound patterns, no partial indexes,
//! no statistics tables), so nothing is lost by keeping it; a new statement
//! that needs a plan chosen by its values (any of those) must not rely on
//! it. The setting is for speed only: if SQLite refused it, a warning is
//! logged and the connection is used as it is.

use std::ffi::c_int;

use sqlx::sqlite::SqliteConnection;

use super::db_config::{QUERY_PLANNER_STABILITY, on_off_setting};

/// Turns the guarantee on for `connection` (from the pool's connect hook);
/// a refusal is logged, never fatal.
pub(super) async fn keep_plans(connection: &mut SqliteConnection) {
    match planner_stability(connection, 1).await {
        Ok(1) => {}
        Ok(_) => tracing::warn!(
            "SQLite left its query-planner stability guarantee off: paged lists are planned \
             again at every call (slower, not less safe)"
        ),
        Err(err) => tracing::warn!(
            error = %err,
            "SQLite refused its query-planner stability guarantee: paged lists are planned \
             again at every call (slower, not less safe)"
        ),
    }
}

/// Sets the guarantee (`1` on, `0` off, `-1` leaves it) and returns it as
/// it is afterwards.
async fn planner_stability(
    connection: &mut SqliteConnection,
    set_to: c_int,
) -> Result<c_int, sqlx::Error> {
    on_off_setting(connection, QUERY_PLANNER_STABILITY, set_to).await
}

#[cfg(test)]
mod tests {
    use libsqlite3_sys as ffi;

    use super::*;

    /// A prepared statement, finalized when dropped (a failed assertion
    /// included), before the locked handle it came from.
    struct Statement(*mut ffi::sqlite3_stmt);

    impl Drop for Statement {
        #[allow(unsafe_code)]
        fn drop(&mut self) {
            // SAFETY: the pointer came from `sqlite3_prepare_v2` (or is
            // null, which finalize accepts) and is finalized only here.
            unsafe {
                ffi::sqlite3_finalize(self.0);
            }
        }
    }

    /// How often SQLite compiled `SELECT … LIMIT ?` again while it ran with
    /// three different limits, on `connection` as it is.
    #[allow(unsafe_code)]
    async fn recompiles_of_a_paged_select(connection: &mut SqliteConnection) -> c_int {
        let mut handle = connection.lock_handle().await.unwrap();
        let database = handle.as_raw_handle().as_ptr();
        let sql = c"SELECT name FROM sqlite_master ORDER BY name LIMIT ?1";
        let mut statement = Statement(std::ptr::null_mut());
        // SAFETY: `database` is open and held by the locked handle for this
        // whole function; `sql` is a NUL-terminated literal; the statement
        // SQLite writes is finalized by `Statement`'s drop, declared after
        // the handle and so dropped before it.
        unsafe {
            assert_eq!(
                ffi::sqlite3_prepare_v2(
                    database,
                    sql.as_ptr(),
                    -1,
                    &raw mut statement.0,
                    std::ptr::null_mut()
                ),
                ffi::SQLITE_OK
            );
            for limit in [1, 2, 3] {
                assert_eq!(ffi::sqlite3_bind_int(statement.0, 1, limit), ffi::SQLITE_OK);
                let mut step = ffi::sqlite3_step(statement.0);
                while step == ffi::SQLITE_ROW {
                    step = ffi::sqlite3_step(statement.0);
                }
                assert_eq!(step, ffi::SQLITE_DONE);
                assert_eq!(ffi::sqlite3_reset(statement.0), ffi::SQLITE_OK);
            }
            ffi::sqlite3_stmt_status(statement.0, ffi::SQLITE_STMTSTATUS_REPREPARE, 0)
        }
    }

    #[tokio::test]
    async fn every_connection_of_the_pool_keeps_its_plans_when_the_limit_changes() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::open_for_test(dir.path()).await;
        // All four held at once: every connection the pool opens.
        let mut held = Vec::new();
        for _ in 0..4 {
            let mut connection = store.pool.acquire().await.unwrap();
            assert_eq!(planner_stability(&mut connection, -1).await.unwrap(), 1);
            assert_eq!(recompiles_of_a_paged_select(&mut connection).await, 0);
            held.push(connection);
        }
        // Without the guarantee SQLite compiles it again at every bind.
        let mut plain = held.pop().unwrap().detach();
        planner_stability(&mut plain, 0).await.unwrap();
        assert_eq!(recompiles_of_a_paged_select(&mut plain).await, 3);
    }
}
