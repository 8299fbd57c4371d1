-- The OS account PAM biometric login checks for an occcd user. Only a
-- super-admin sets it; removing the user removes the link.
CREATE TABLE os_account_links (
    user_id    INTEGER PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    os_account TEXT    NOT NULL,
    linked_at  INTEGER NOT NULL
) STRICT;
