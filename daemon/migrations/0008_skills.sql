-- Skill governance: every submitted skill version, known by its tree hash,
-- its assessment, its state, and who approved it. Files live in occcd's
-- own content store (state dir), named by the same hash.
CREATE TABLE skill_versions (
    tree_hash           TEXT    PRIMARY KEY,
    name                TEXT    NOT NULL,
    description         TEXT    NOT NULL,
    level               TEXT    NOT NULL CHECK (level IN ('low', 'medium', 'high', 'critical')),
    state               TEXT    NOT NULL CHECK (state IN ('pending', 'approved', 'rejected', 'revoked')),
    submitted_by        TEXT    NOT NULL,
    submitted_at        INTEGER NOT NULL,
    decided_by          TEXT,
    decided_at          INTEGER,
    note                TEXT,
    clawhub_fingerprint TEXT    NOT NULL,
    file_count          INTEGER NOT NULL,
    total_bytes         INTEGER NOT NULL,
    manifest            TEXT    NOT NULL, -- JSON: [{path, mode, size, sha256}]
    frontmatter         TEXT    NOT NULL, -- JSON
    signals             TEXT    NOT NULL, -- JSON: [{rule, level, file, line, excerpt, reason}]
    installed_at        INTEGER            -- set while installed
) STRICT;

CREATE INDEX skill_versions_by_name ON skill_versions (name, submitted_at);

-- Approvals given to a pending version (a critical one needs two).
CREATE TABLE skill_approvals (
    tree_hash   TEXT    NOT NULL REFERENCES skill_versions (tree_hash) ON DELETE CASCADE,
    approver    TEXT    NOT NULL,
    approved_at INTEGER NOT NULL,
    note        TEXT    NOT NULL,
    PRIMARY KEY (tree_hash, approver)
) STRICT;

-- Everyone who ever submitted a version (nobody approves what they
-- submitted, also after a rejected version is submitted again).
CREATE TABLE skill_submissions (
    tree_hash    TEXT    NOT NULL REFERENCES skill_versions (tree_hash) ON DELETE CASCADE,
    submitter    TEXT    NOT NULL,
    submitted_at INTEGER NOT NULL,
    PRIMARY KEY (tree_hash, submitter)
) STRICT;
