-- OpenID Connect for the tenants' people: apps (a third kind of client, for one tenant or for
-- all), their redirect URIs, authorization codes, consents, and how a session authenticated.
--
-- SQLite cannot change a CHECK constraint in place: the clients table is rebuilt (SQLite's
-- documented procedure, with foreign keys off, so outside diesel's transaction: see
-- metadata.toml), and the devices, refresh families and flows that reference it keep their
-- references by name.
PRAGMA foreign_keys = OFF;
BEGIN;
CREATE TABLE clients_next (
    client_id TEXT PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('device', 'service', 'app')),
    name TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('active', 'disabled')),
    jwks TEXT,
    secret_hash TEXT,
    scope TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    -- An app of one company (its owners registered it), or NULL: of the manufacturer, for
    -- people of every company.
    tenant_id BIGINT REFERENCES tenants (id) ON DELETE CASCADE,
    -- A first-party app asks for no consent.
    first_party BOOLEAN NOT NULL DEFAULT FALSE
);
INSERT INTO clients_next (client_id, kind, name, status, jwks, secret_hash, scope, created_at)
    SELECT client_id, kind, name, status, jwks, secret_hash, scope, created_at FROM clients;
DROP TABLE clients;
ALTER TABLE clients_next RENAME TO clients;

-- Where an app may send people back to: after signing in (`sign_in`, the authorization
-- request's redirect_uri, matched exactly) and after signing out (`sign_out`, RP-initiated
-- logout's post_logout_redirect_uri).
CREATE TABLE client_redirect_uris (
    client_id TEXT NOT NULL REFERENCES clients (client_id) ON DELETE CASCADE,
    purpose TEXT NOT NULL CHECK (purpose IN ('sign_in', 'sign_out')),
    uri TEXT NOT NULL,
    PRIMARY KEY (client_id, purpose, uri)
);

-- Authorization codes (RFC 6749 §4.1.2), by the SHA-256 of the code. A redeemed code keeps its
-- row until it expires, with the refresh family it started, so that presenting it again
-- revokes what it issued (§4.1.2, §10.5).
CREATE TABLE authorization_codes (
    code_hash TEXT PRIMARY KEY,
    client_id TEXT NOT NULL REFERENCES clients (client_id) ON DELETE CASCADE,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    redirect_uri TEXT NOT NULL,
    scope TEXT NOT NULL,
    -- The PKCE S256 challenge (RFC 7636 §4.2), base64url.
    code_challenge TEXT NOT NULL,
    nonce TEXT,
    -- The DPoP key the tokens must be bound to (RFC 9449 §10), if the request named one.
    dpop_jkt TEXT,
    auth_time BIGINT NOT NULL,
    amr TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT,
    -- What redeeming it issued: the refresh family, and the first access token (its jti and
    -- expiry), revoked if the code comes back.
    family_id TEXT,
    access_jti TEXT,
    access_expires_at BIGINT
);
CREATE INDEX authorization_codes_by_expiry ON authorization_codes (expires_at);

-- A person's consent to a third-party app: the scopes granted, until revoked on the account
-- page. First-party apps ask for none.
CREATE TABLE consents (
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id TEXT NOT NULL REFERENCES clients (client_id) ON DELETE CASCADE,
    scope TEXT NOT NULL,
    granted_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, client_id)
);

-- How the person behind a session authenticated (OpenID Connect `amr` values: pwd, otp, hwk),
-- for the ID tokens issued while it lasts.
ALTER TABLE sessions ADD COLUMN amr TEXT NOT NULL DEFAULT 'pwd';

-- The person showed they read mail at this address: they joined by an emailed invitation.
-- Said in ID tokens as `email_verified`.
ALTER TABLE users ADD COLUMN email_verified BOOLEAN NOT NULL DEFAULT FALSE;
UPDATE users SET email_verified = TRUE
    WHERE email IN (SELECT email FROM invitations WHERE accepted_at IS NOT NULL);

COMMIT;
PRAGMA foreign_keys = ON;
