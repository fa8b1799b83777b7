-- On SQLite the writer thread keeps the seen jti values in memory and decides there whether one
-- is new (src/store/replay.rs); the table only has to bring them back after a restart and let
-- the sweep delete expired ones. Keyed by expiry first, a new value lands on the table's last
-- pages instead of a random page of a (scope, jti) key, and the sweep deletes a range from the
-- front. The separate expiry index goes with the old table.
CREATE TABLE seen_jtis_next (
    scope TEXT NOT NULL,
    jti TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (expires_at, scope, jti)
) WITHOUT ROWID;
INSERT INTO seen_jtis_next (scope, jti, expires_at) SELECT scope, jti, expires_at FROM seen_jtis;
DROP TABLE seen_jtis;
ALTER TABLE seen_jtis_next RENAME TO seen_jtis;
