-- The data root (crypto::KeyRing), sealed under the master key's sealing
-- key, bound to (data_root_key, sealed, 1). Written by `occcd rekey`; while
-- absent, the data root is the master key itself (never rotated).
CREATE TABLE data_root_key (
    id     INTEGER PRIMARY KEY CHECK (id = 1),
    sealed BLOB    NOT NULL
) STRICT;
