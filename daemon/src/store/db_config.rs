//! One of SQLite's per-connection on/off settings (`sqlite3_db_config`),
//! read or set on an open sqlx connection: the FFI call in one place.
//!
//! Invariant: the raw connection is used only while sqlx's handle lock is
//! held (its worker thread stays out), and only the on/off settings named
//! here, each taking an int and a pointer to an int, go through it.

use std::ffi::c_int;

use libsqlite3_sys as ffi;
use sqlx::sqlite::SqliteConnection;

/// One of SQLite's on/off settings of a connection.
#[derive(Debug, Clone, Copy)]
pub(super) struct OnOff {
    /// Its `SQLITE_DBCONFIG_*` number.
    option: c_int,
    /// Its name, for an error.
    name: &'static str,
}

/// Prepared statements keep their plan whatever is bound to them
/// (`store::query_plans`).
pub(super) const QUERY_PLANNER_STABILITY: OnOff = OnOff {
    option: ffi::SQLITE_DBCONFIG_ENABLE_QPSG,
    name: "SQLITE_DBCONFIG_ENABLE_QPSG",
};

/// Closing the connection, even last, neither checkpoints nor deletes the
/// WAL (tests make the race `store::closing` handles certain with it).
#[cfg(test)]
pub(super) const NO_CHECKPOINT_ON_CLOSE: OnOff = OnOff {
    option: ffi::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
    name: "SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE",
};

/// Sets `setting` to `set_to` — `1` on, `0` off, `-1` leaves it — and
/// returns it as it is afterwards.
#[allow(unsafe_code)]
pub(super) async fn on_off_setting(
    connection: &mut SqliteConnection,
    setting: OnOff,
    set_to: c_int,
) -> Result<c_int, sqlx::Error> {
    let mut handle = connection.lock_handle().await?;
    let database = handle.as_raw_handle().as_ptr();
    let mut now: c_int = -1;
    // SAFETY: `database` is the open connection the locked handle keeps to
    // itself until it drops, after this call (sqlx opens it without SQLite's
    // own mutex; the handle's lock keeps its worker thread out meanwhile);
    // the on/off options take an int and a pointer to an int, which lives on
    // this stack frame for the whole call and is written at most once.
    // Changing some (query-planner stability) expires cached statements,
    // which SQLite prepares again by itself at their next step.
    let code = unsafe { ffi::sqlite3_db_config(database, setting.option, set_to, &raw mut now) };
    if code != ffi::SQLITE_OK {
        return Err(sqlx::Error::Protocol(format!(
            "SQLite refused {} (code {code})",
            setting.name
        )));
    }
    Ok(now)
}
