-- OpenClaw's openclaw.json, per watched container: every version occcd
-- accepted (or found on disk before overwriting it), its text sealed with
-- the sealing key (bound to container and number), who wrote it, when, why,
-- and what it changed. Numbers only grow; old versions are pruned.
CREATE TABLE openclaw_config_versions (
    container     TEXT    NOT NULL,
    number        INTEGER NOT NULL CHECK (number > 0),
    version       TEXT    NOT NULL, -- hex HMAC-SHA-256 of the text's bytes (daemon key)
    text_sealed   BLOB    NOT NULL,
    size          INTEGER NOT NULL,
    origin        TEXT    NOT NULL CHECK (origin IN ('imported', 'edited', 'restored', 'found')),
    author        TEXT    NOT NULL,
    created_at    INTEGER NOT NULL,
    note          TEXT    NOT NULL,
    lines_added   INTEGER NOT NULL,
    lines_removed INTEGER NOT NULL,
    policy        TEXT    NOT NULL, -- JSON: [{path, before, after, risk, loosens}]
    restored_from INTEGER,
    PRIMARY KEY (container, number)
) STRICT;
