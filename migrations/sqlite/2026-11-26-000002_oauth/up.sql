-- OAuth core: tenants (the minimum pairing needs; accounts grow them), clients and devices,
-- device authorization flows (RFC 8628), refresh tokens, revoked access tokens, the replay store
-- for client assertion and DPoP jti values, rate-limit counters and the signing key ring.
-- Times are Unix milliseconds.

CREATE TABLE tenants (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE clients (
    client_id TEXT PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('device', 'service')),
    name TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('active', 'disabled')),
    -- JWK Set (public keys) for private_key_jwt; for a device, its factory key.
    jwks TEXT,
    -- SHA-256 (hex) of a high-entropy client secret, for client_secret_basic/post.
    secret_hash TEXT,
    -- Space-separated scopes the client may be granted.
    scope TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE devices (
    serial TEXT PRIMARY KEY REFERENCES clients (client_id),
    model TEXT NOT NULL,
    tenant_id BIGINT REFERENCES tenants (id),
    paired_at BIGINT,
    -- Access tokens carry the generation they were issued in; bumping it (unpair, re-key,
    -- revocation) makes every earlier token inactive at once.
    token_generation BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL
);

CREATE TABLE device_flows (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    device_code_hash TEXT NOT NULL UNIQUE,
    user_code TEXT NOT NULL,
    client_id TEXT NOT NULL REFERENCES clients (client_id),
    scope TEXT NOT NULL,
    dpop_jkt TEXT,
    status TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'denied', 'consumed', 'superseded')),
    interval_secs INTEGER NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    last_polled_at BIGINT,
    requested_ip TEXT,
    tenant_id BIGINT REFERENCES tenants (id),
    decided_by TEXT,
    decided_at BIGINT
);
-- A user code identifies one undecided flow at a time; old codes may come round again.
CREATE UNIQUE INDEX device_flows_pending_user_code ON device_flows (user_code) WHERE status = 'pending';
CREATE INDEX device_flows_by_client ON device_flows (client_id, status);
CREATE INDEX device_flows_by_expiry ON device_flows (expires_at);

CREATE TABLE refresh_tokens (
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
CREATE INDEX refresh_tokens_by_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_by_client ON refresh_tokens (client_id, status);

CREATE TABLE revoked_access_tokens (
    jti TEXT PRIMARY KEY,
    expires_at BIGINT NOT NULL
);

-- Seen jti values; the primary key turns a replay into a constraint violation.
CREATE TABLE seen_jtis (
    scope TEXT NOT NULL,
    jti TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (scope, jti)
);
CREATE INDEX seen_jtis_by_expiry ON seen_jtis (expires_at);

-- Fixed-window counters, shared by every instance.
CREATE TABLE rate_limits (
    bucket TEXT PRIMARY KEY,
    window_start BIGINT NOT NULL,
    hits INTEGER NOT NULL
);

CREATE TABLE signing_keys (
    kid TEXT PRIMARY KEY,
    alg TEXT NOT NULL CHECK (alg IN ('EdDSA', 'ES256')),
    public_jwk TEXT NOT NULL,
    -- PKCS#8, AES-256-GCM under a key derived from the master key, base64(nonce || ciphertext).
    private_key TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    activates_at BIGINT NOT NULL
);
