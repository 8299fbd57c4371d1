-- The session book's clock anchor (auth/sessions_clock.rs): a wall-clock
-- time and the OS monotonic time then, which counts from `origin` (the
-- boot). A daemon restarted within the same boot compares the two clocks
-- again and so sees a wall clock set back while it was down. Written with
-- the sessions (every minute and at shutdown); one row.
CREATE TABLE session_clock_anchor (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    origin     TEXT    NOT NULL,
    wall_ms    INTEGER NOT NULL,
    running_ms INTEGER NOT NULL
) STRICT;
