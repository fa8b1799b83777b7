-- Customer accounts and the portal: users (tenant members, or manufacturer staff with no tenant),
-- TOTP and recovery codes, server-side sessions, invitations, device groups and per-user device
-- access, login throttling, and the mail outbox. Times are Unix milliseconds.

ALTER TABLE tenants ADD COLUMN require_totp BOOLEAN NOT NULL DEFAULT FALSE;

CREATE TABLE users (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    -- NULL for manufacturer staff, who belong to no tenant.
    tenant_id BIGINT REFERENCES tenants (id),
    -- Lower-cased; one account per address.
    email TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'operator', 'viewer', 'staff')),
    password_hash TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('active', 'disabled')),
    -- 'selected': only the groups and devices granted in user_group_access / user_device_access.
    device_access TEXT NOT NULL DEFAULT 'all' CHECK (device_access IN ('all', 'selected')),
    -- TOTP secret, AES-256-GCM under a key derived from the master key, base64(nonce || sealed).
    totp_secret TEXT,
    totp_enabled BOOLEAN NOT NULL DEFAULT FALSE,
    -- The last TOTP time step accepted: a code is usable once.
    totp_last_step BIGINT,
    created_at BIGINT NOT NULL
);
CREATE INDEX users_by_tenant ON users (tenant_id);

CREATE TABLE recovery_codes (
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash TEXT NOT NULL,
    used_at BIGINT,
    PRIMARY KEY (user_id, code_hash)
);

CREATE TABLE sessions (
    -- SHA-256 of the cookie value: a database leak does not hand out sessions.
    id_hash TEXT PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- 'mfa': password checked, second factor awaited; 'full': signed in.
    stage TEXT NOT NULL CHECK (stage IN ('mfa', 'full')),
    created_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    stepped_up_at BIGINT,
    ip TEXT,
    user_agent TEXT
);
CREATE INDEX sessions_by_user ON sessions (user_id);
CREATE INDEX sessions_by_expiry ON sessions (expires_at);

CREATE TABLE invitations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id BIGINT NOT NULL REFERENCES tenants (id),
    email TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'operator', 'viewer')),
    token_hash TEXT NOT NULL UNIQUE,
    invited_by BIGINT REFERENCES users (id),
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    accepted_at BIGINT
);
CREATE INDEX invitations_by_tenant ON invitations (tenant_id);

CREATE TABLE device_groups (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id BIGINT NOT NULL REFERENCES tenants (id),
    name TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (tenant_id, name)
);

-- A device sits in at most one group (its site).
CREATE TABLE device_group_members (
    serial TEXT PRIMARY KEY REFERENCES devices (serial),
    group_id BIGINT NOT NULL REFERENCES device_groups (id) ON DELETE CASCADE
);
CREATE INDEX device_group_members_by_group ON device_group_members (group_id);

CREATE TABLE user_group_access (
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    group_id BIGINT NOT NULL REFERENCES device_groups (id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, group_id)
);

CREATE TABLE user_device_access (
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    serial TEXT NOT NULL REFERENCES devices (serial),
    PRIMARY KEY (user_id, serial)
);

-- Failed sign-ins per bucket (account+address, address): exponential backoff, capped.
CREATE TABLE login_failures (
    bucket TEXT PRIMARY KEY,
    failures INTEGER NOT NULL,
    last_failure_at BIGINT NOT NULL
);

-- Every message pairgate sends, kept so nothing silently disappears.
CREATE TABLE mail_outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    recipient TEXT NOT NULL,
    subject TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    sent_at BIGINT,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT
);
CREATE INDEX mail_outbox_unsent ON mail_outbox (sent_at, id);
