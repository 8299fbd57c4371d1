-- Sessions never outlive the account state they were granted under; elevations
-- say how they were obtained; brute-force counters survive restarts; device
-- keys remember the OS user that registered them.

-- Raised by every change to what an account may do or how it proves itself
-- (role, state, credentials, deletion, revocations). A session carries the
-- generation of the row its login read; an older one is refused.
ALTER TABLE users ADD COLUMN generation INTEGER NOT NULL DEFAULT 0;

ALTER TABLE sessions ADD COLUMN generation INTEGER NOT NULL DEFAULT 0;
-- How the current elevation was obtained (totp, password+totp,
-- password+recovery_code, device_key:<id>, pam); NULL when not elevated.
ALTER TABLE sessions ADD COLUMN elevation_method TEXT;

-- uid of the socket peer that registered the key: GetLoginMethods names the
-- device-key method only to that OS user (or root).
ALTER TABLE device_keys ADD COLUMN registered_uid INTEGER;

-- Consecutive failures per account, OS user and biometric path; an attempt is
-- counted here before it is checked and forgotten only after it succeeds.
CREATE TABLE auth_failures (
    kind          TEXT    NOT NULL CHECK (kind IN ('account', 'peer', 'biometric')),
    subject       TEXT    NOT NULL,   -- username, or the uid in decimal
    consecutive   INTEGER NOT NULL,
    last_failure  INTEGER NOT NULL,
    locked_until  INTEGER,
    PRIMARY KEY (kind, subject)
) STRICT;
