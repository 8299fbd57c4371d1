-- Reading the audit log by kind or by user without scanning it: each index
-- orders an entry's kind (or user) by its sequence (the rowid).
CREATE INDEX audit_log_by_kind ON audit_log (kind);
CREATE INDEX audit_log_by_actor ON audit_log (actor_user);
