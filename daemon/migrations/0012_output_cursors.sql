-- How far each event output (journald, syslog, webhook) has delivered the
-- audit log: every entry up to `delivered_through` was acknowledged by the
-- receiver at `destination` (another destination starts at the log's head).
-- The audit log itself is the outputs' queue.
CREATE TABLE output_cursors (
    output             TEXT    PRIMARY KEY CHECK (output IN ('journald', 'syslog', 'webhook')),
    destination        TEXT    NOT NULL,
    delivered_through  INTEGER NOT NULL CHECK (delivered_through >= 0),
    updated_at_unix_ms INTEGER NOT NULL
) STRICT;
