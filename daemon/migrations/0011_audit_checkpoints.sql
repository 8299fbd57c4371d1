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
