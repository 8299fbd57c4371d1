-- Deeper integrity: the executables a container may run, findings that stay
-- open until someone acknowledges them, and snapshots written as they are
-- read (sealed chunks), visible only once complete.

-- JSON: {by_hash: {sha256: [names]}, scripts: [names], writable: {path: sha256}, notes: [..]}
ALTER TABLE integrity_baselines ADD COLUMN trusted_executables TEXT NOT NULL DEFAULT '{}';

ALTER TABLE integrity_findings ADD COLUMN acknowledged_at INTEGER;
ALTER TABLE integrity_findings ADD COLUMN acknowledged_by TEXT;
ALTER TABLE integrity_findings ADD COLUMN acknowledgement TEXT;

-- 'writing' until the manifest is stored; only 'complete' snapshots are listed.
ALTER TABLE snapshots ADD COLUMN state TEXT NOT NULL DEFAULT 'complete'
    CHECK (state IN ('writing', 'complete'));

CREATE TABLE snapshot_chunks (
    snapshot_id TEXT    NOT NULL REFERENCES snapshots (id) ON DELETE CASCADE,
    name        TEXT    NOT NULL,
    seq         INTEGER NOT NULL,
    sealed      BLOB    NOT NULL,   -- AES-256-GCM, bound to (snapshot, name, seq, last?)
    PRIMARY KEY (snapshot_id, name, seq)
) STRICT;

-- Findings of events (an exec, a copy-in, a crash) stay open until someone
-- acknowledges them: one row per container and check, counting repeats, so
-- the set stays small however often an event recurs.
CREATE TABLE integrity_open_findings (
    container   TEXT    NOT NULL,
    check_id    TEXT    NOT NULL,
    severity    TEXT    NOT NULL,
    summary     TEXT    NOT NULL,
    evidence    TEXT    NOT NULL,
    first_seen  INTEGER NOT NULL,
    last_seen   INTEGER NOT NULL,
    occurrences INTEGER NOT NULL,
    PRIMARY KEY (container, check_id)
) STRICT;
