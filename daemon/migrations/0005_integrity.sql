-- Container integrity: pinned baselines, findings history, quarantines,
-- forensic snapshots (artifacts sealed with the master key), and the engine
-- event cursor so no event is lost across reconnects and restarts.
CREATE TABLE integrity_baselines (
    container     TEXT    PRIMARY KEY,
    image_id      TEXT    NOT NULL,
    repo_digests  TEXT    NOT NULL,   -- JSON array
    settings      TEXT    NOT NULL,   -- JSON object
    image_files   TEXT    NOT NULL,   -- JSON array of {path, sha256, size}
    host_files    TEXT    NOT NULL,   -- JSON array of {path, sha256, size}
    pinned_at     INTEGER NOT NULL,
    pinned_by     TEXT    NOT NULL
) STRICT;

CREATE TABLE integrity_findings (
    id          INTEGER PRIMARY KEY,
    container   TEXT    NOT NULL,
    check_id    TEXT    NOT NULL,
    severity    TEXT    NOT NULL,
    summary     TEXT    NOT NULL,
    evidence    TEXT    NOT NULL,     -- JSON
    observed_at INTEGER NOT NULL
) STRICT;
CREATE INDEX integrity_findings_by_time ON integrity_findings (observed_at);

CREATE TABLE integrity_quarantines (
    id           INTEGER PRIMARY KEY,
    container    TEXT    NOT NULL,
    since        INTEGER NOT NULL,
    reason       TEXT    NOT NULL,
    snapshot_id  TEXT    NOT NULL,
    released_at  INTEGER,
    released_by  TEXT,
    release_note TEXT
) STRICT;

CREATE TABLE snapshots (
    id            TEXT    PRIMARY KEY,
    container     TEXT    NOT NULL,
    reason        TEXT    NOT NULL,
    created_at    INTEGER NOT NULL,
    manifest      TEXT    NOT NULL,   -- JSON, authenticated by manifest_hmac
    manifest_hmac BLOB    NOT NULL
) STRICT;

CREATE TABLE snapshot_artifacts (
    snapshot_id TEXT NOT NULL REFERENCES snapshots (id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    sealed      BLOB NOT NULL,        -- AES-256-GCM, bound to (snapshot_artifacts, name, snapshot id)
    PRIMARY KEY (snapshot_id, name)
) STRICT;

CREATE TABLE integrity_cursor (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    event_nanos INTEGER NOT NULL
) STRICT;
