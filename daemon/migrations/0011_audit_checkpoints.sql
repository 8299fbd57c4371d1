-- Signed checkpoints of the audit chain for outside verifiers: after entry
-- `sequence` the public link (SHA-256 chain over the entries' fields, see
-- the occc-audit-format crate) was `link`, signed with the daemon's Ed25519
-- key. A checkpoint is never changed or removed.
CREATE TABLE audit_checkpoints (
    sequence   INTEGER PRIMARY KEY CHECK (sequence > 0),
    at_unix_ms INTEGER NOT NULL,
    link       BLOB    NOT NULL CHECK (length(link) = 32),
    signature  BLOB    NOT NULL CHECK (length(signature) = 64)
) STRICT;
CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints
BEGIN SELECT RAISE(ABORT, 'audit_checkpoints is append-only'); END;
CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints
BEGIN SELECT RAISE(ABORT, 'audit_checkpoints is append-only'); END;
