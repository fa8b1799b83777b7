-- Fewer pages per token request. Every page a write touches is a WAL frame at commit, so:
-- * seen_jtis keeps its rows in the primary key's own B-tree (WITHOUT ROWID): a jti is one
--   B-tree insert plus the expiry index, not three.
-- * refresh_tokens gives up AUTOINCREMENT (a row id is never kept outside the transaction that
--   reads it, so reuse after a purge is harmless), and with it the sqlite_sequence write per
--   insert; its client index leaves out the status, so consuming a token touches only its row.

CREATE TABLE seen_jtis_next (
    scope TEXT NOT NULL,
    jti TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (scope, jti)
) WITHOUT ROWID;
INSERT INTO seen_jtis_next (scope, jti, expires_at) SELECT scope, jti, expires_at FROM seen_jtis;
DROP TABLE seen_jtis;
ALTER TABLE seen_jtis_next RENAME TO seen_jtis;
CREATE INDEX seen_jtis_by_expiry ON seen_jtis (expires_at);

CREATE TABLE refresh_tokens_next (
    id INTEGER PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    family_id TEXT NOT NULL,
    client_id TEXT NOT NULL REFERENCES clients (client_id),
    subject TEXT NOT NULL,
    tenant_id BIGINT,
    scope TEXT NOT NULL,
    jkt TEXT,
    status TEXT NOT NULL CHECK (status IN ('active', 'consumed', 'revoked')),
    created_at BIGINT NOT NULL,
    idle_expires_at BIGINT NOT NULL,
    family_expires_at BIGINT NOT NULL
);
INSERT INTO refresh_tokens_next SELECT id, token_hash, family_id, client_id, subject, tenant_id,
    scope, jkt, status, created_at, idle_expires_at, family_expires_at FROM refresh_tokens;
DROP TABLE refresh_tokens;
ALTER TABLE refresh_tokens_next RENAME TO refresh_tokens;
CREATE INDEX refresh_tokens_by_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_by_client ON refresh_tokens (client_id);
