-- Hash-chained audit log. Append-only: the daemon never updates or deletes rows.
CREATE TABLE audit_log (
    sequence    INTEGER PRIMARY KEY,      -- 1, 2, 3, … without gaps
    at_unix_ms  INTEGER NOT NULL,
    kind        TEXT    NOT NULL,          -- e.g. "call_refused"
    actor_uid   INTEGER,                   -- peer credentials from the kernel
    actor_gid   INTEGER,
    actor_pid   INTEGER,
    actor_user  TEXT,                      -- occcd user, once authenticated
    detail      TEXT    NOT NULL,          -- JSON object; never a secret
    prev_hash   BLOB    NOT NULL,          -- entry_hash of sequence - 1 (zeros for 1)
    entry_hash  BLOB    NOT NULL           -- HMAC-SHA256 over all of the above
) STRICT;

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
