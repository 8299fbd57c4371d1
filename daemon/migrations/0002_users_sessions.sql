-- People, their second factors, and their sessions.
CREATE TABLE users (
    id                   INTEGER PRIMARY KEY,
    username             TEXT    NOT NULL UNIQUE,
    role                 TEXT    NOT NULL CHECK (role IN ('viewer', 'operator', 'admin', 'super-admin')),
    state                TEXT    NOT NULL CHECK (state IN ('enrolling', 'active', 'disabled')),
    password_phc         TEXT,              -- Argon2id PHC string; NULL until enrolment
    totp_secret          BLOB,              -- sealed to (users, totp_secret, id)
    totp_pending_secret  BLOB,              -- sealed to (users, totp_pending_secret, id)
    totp_last_step       INTEGER,           -- last accepted time step (replay guard)
    enrollment_token_hash BLOB UNIQUE,      -- HMAC of the one-time enrolment token
    enrollment_expires_at INTEGER,
    created_at           INTEGER NOT NULL,
    updated_at           INTEGER NOT NULL
) STRICT;

CREATE TABLE recovery_codes (
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    slot       INTEGER NOT NULL,
    code_hash  BLOB    NOT NULL,            -- HMAC of the code; the code itself is never stored
    used_at    INTEGER,
    PRIMARY KEY (user_id, slot)
) STRICT;

CREATE TABLE sessions (
    id             TEXT    PRIMARY KEY,     -- public id, not the token
    token_hash     BLOB    NOT NULL UNIQUE, -- HMAC of the token; the token itself is never stored
    user_id        INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    peer_uid       INTEGER NOT NULL,
    created_at     INTEGER NOT NULL,
    last_seen_at   INTEGER NOT NULL,
    elevated_until INTEGER
) STRICT;
