CREATE TABLE seen_jtis_prev (
    scope TEXT NOT NULL,
    jti TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (scope, jti)
) WITHOUT ROWID;
-- A value is in the table once; should it be there twice, the later expiry wins.
INSERT INTO seen_jtis_prev (scope, jti, expires_at)
    SELECT scope, jti, MAX(expires_at) FROM seen_jtis GROUP BY scope, jti;
DROP TABLE seen_jtis;
ALTER TABLE seen_jtis_prev RENAME TO seen_jtis;
CREATE INDEX seen_jtis_by_expiry ON seen_jtis (expires_at);
