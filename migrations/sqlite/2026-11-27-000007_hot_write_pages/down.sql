CREATE TABLE seen_jtis_prev (
    scope TEXT NOT NULL,
    jti TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (scope, jti)
);
INSERT INTO seen_jtis_prev (scope, jti, expires_at) SELECT scope, jti, expires_at FROM seen_jtis;
DROP TABLE seen_jtis;
ALTER TABLE seen_jtis_prev RENAME TO seen_jtis;
CREATE INDEX seen_jtis_by_expiry ON seen_jtis (expires_at);

CREATE TABLE refresh_tokens_prev (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
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
INSERT INTO refresh_tokens_prev SELECT id, token_hash, family_id, client_id, subject, tenant_id,
    scope, jkt, status, created_at, idle_expires_at, family_expires_at FROM refresh_tokens;
DROP TABLE refresh_tokens;
ALTER TABLE refresh_tokens_prev RENAME TO refresh_tokens;
CREATE INDEX refresh_tokens_by_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_by_client ON refresh_tokens (client_id, status);
