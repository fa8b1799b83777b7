-- Refresh tokens: one row per token family instead of one per token. A refresh token now names
-- its family and its counter under a MAC keyed from the master key (src/oauth/rotation.rs), and
-- the family row keeps the counter of its current token. A token with an older counter is a
-- reuse (RFC 9700 §4.14.2), so used tokens need no rows: a device refreshing every 10 minutes
-- used to leave ~4,300 of them behind for the 30-day idle lifetime. A refresh updates one row in
-- place instead of updating one and inserting another.
--
-- Each family's live token from before carries no counter: its hash moves into the family row
-- (legacy_hash) at counter 0. Its first use rotates it into the counter form; using it again is
-- then a reuse. Used and revoked tokens from before are not carried: they are refused as unknown
-- rather than as reused, so a reuse of one of them no longer revokes its family.
CREATE TABLE refresh_families (
    family_id TEXT PRIMARY KEY NOT NULL,
    client_id TEXT NOT NULL REFERENCES clients (client_id),
    subject TEXT NOT NULL,
    tenant_id BIGINT,
    scope TEXT NOT NULL,
    jkt TEXT,
    counter BIGINT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('active', 'revoked')),
    created_at BIGINT NOT NULL,
    issued_at BIGINT NOT NULL,
    idle_expires_at BIGINT NOT NULL,
    family_expires_at BIGINT NOT NULL,
    legacy_hash TEXT UNIQUE
) WITHOUT ROWID;
INSERT INTO refresh_families (family_id, client_id, subject, tenant_id, scope, jkt, counter,
        status, created_at, issued_at, idle_expires_at, family_expires_at, legacy_hash)
    SELECT t.family_id, t.client_id, t.subject, t.tenant_id, t.scope, t.jkt, 0, 'active',
        (SELECT MIN(f.created_at) FROM refresh_tokens f WHERE f.family_id = t.family_id),
        t.created_at, t.idle_expires_at, t.family_expires_at, t.token_hash
    FROM refresh_tokens t
    WHERE t.status = 'active' AND t.id = (SELECT MAX(l.id) FROM refresh_tokens l
        WHERE l.family_id = t.family_id AND l.status = 'active');
DROP TABLE refresh_tokens;
CREATE INDEX refresh_families_by_client ON refresh_families (client_id);
