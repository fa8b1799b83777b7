-- Back to one row per refresh token. Only tokens from before the counter form can go back: a
-- family still at its token from before (counter 0) gets that token's row again. A token in
-- counter form cannot be stored as the hash the old scheme looks up (rebuilding the token needs
-- the master key), so devices holding one must pair again after this migration is reverted.
CREATE TABLE refresh_tokens (
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
INSERT INTO refresh_tokens (token_hash, family_id, client_id, subject, tenant_id, scope, jkt,
        status, created_at, idle_expires_at, family_expires_at)
    SELECT legacy_hash, family_id, client_id, subject, tenant_id, scope, jkt, status, issued_at,
        idle_expires_at, family_expires_at
    FROM refresh_families WHERE legacy_hash IS NOT NULL AND counter = 0;
DROP TABLE refresh_families;
CREATE INDEX refresh_tokens_by_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_by_client ON refresh_tokens (client_id);
