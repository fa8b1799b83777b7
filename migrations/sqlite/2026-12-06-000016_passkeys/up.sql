-- Passkeys (WebAuthn credentials) as a second factor, or alone for sign-in. Times are Unix
-- milliseconds.
CREATE TABLE passkeys (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- Chosen by the user (trimmed, 1-64 characters), unique per user.
    name TEXT NOT NULL,
    -- The credential id, base64url without padding; one account per credential.
    credential_id TEXT NOT NULL UNIQUE,
    -- webauthn-rs's Passkey as JSON: public key, algorithm and signature counter.
    passkey TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT,
    UNIQUE (user_id, name)
);

-- A registration or authentication begun and not yet finished: webauthn-rs's state (the
-- challenge) between the two requests. Its own table rather than a column of sessions, because a
-- passkey-only sign-in starts before there is a session or a user. Read and deleted in one
-- statement when the ceremony finishes, so a state serves once.
CREATE TABLE passkey_ceremonies (
    -- SHA-256 of the handle the browser holds.
    id_hash TEXT PRIMARY KEY,
    -- NULL for a passkey-only sign-in: the credential names the user.
    user_id BIGINT REFERENCES users (id) ON DELETE CASCADE,
    kind TEXT NOT NULL CHECK (kind IN ('registration', 'authentication', 'discoverable')),
    state TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX passkey_ceremonies_by_expiry ON passkey_ceremonies (expires_at);

-- An owner's choice: approving a pairing needs a passkey, a TOTP code is refused (a code can be
-- relayed by a phisher, a passkey cannot).
ALTER TABLE tenants ADD COLUMN require_passkey_approval BOOLEAN NOT NULL DEFAULT FALSE;

-- The person lets their passkeys sign them in alone, without the password (off until they
-- choose it on the account page).
ALTER TABLE users ADD COLUMN passkey_sign_in BOOLEAN NOT NULL DEFAULT FALSE;
