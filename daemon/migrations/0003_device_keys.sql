-- Device-bound public keys (Touch ID, Windows Hello, software authenticators).
CREATE TABLE device_keys (
    id           TEXT    PRIMARY KEY,      -- public id
    user_id      INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         TEXT    NOT NULL,
    platform     TEXT    NOT NULL,
    public_key   BLOB    NOT NULL,         -- SEC1 uncompressed P-256 point (public; not secret)
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER,
    revoked_at   INTEGER
) STRICT;
CREATE INDEX device_keys_by_user ON device_keys (user_id);
