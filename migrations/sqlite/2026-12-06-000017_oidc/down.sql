PRAGMA foreign_keys = OFF;
BEGIN;
ALTER TABLE users DROP COLUMN email_verified;
ALTER TABLE sessions DROP COLUMN amr;
DROP TABLE consents;
DROP TABLE authorization_codes;
DROP TABLE client_redirect_uris;
DELETE FROM refresh_families WHERE client_id IN (SELECT client_id FROM clients WHERE kind = 'app');
CREATE TABLE clients_next (
    client_id TEXT PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('device', 'service')),
    name TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('active', 'disabled')),
    jwks TEXT,
    secret_hash TEXT,
    scope TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
INSERT INTO clients_next (client_id, kind, name, status, jwks, secret_hash, scope, created_at)
    SELECT client_id, kind, name, status, jwks, secret_hash, scope, created_at FROM clients
    WHERE kind <> 'app';
DROP TABLE clients;
ALTER TABLE clients_next RENAME TO clients;
COMMIT;
PRAGMA foreign_keys = ON;
