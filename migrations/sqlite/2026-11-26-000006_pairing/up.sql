-- The pairing ceremony: which tenant a device belongs to and on what grounds (pairings, with
-- history), disputes for manufacturer staff, and staff grants that let a tenant pair a device the
-- sale record alone would not allow. Times are Unix milliseconds.

CREATE TABLE pairings (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    serial TEXT NOT NULL REFERENCES devices (serial),
    tenant_id BIGINT NOT NULL REFERENCES tenants (id),
    -- 'active': confirmed by the sale record (or staff); 'provisional': sold through a distributor,
    -- working but awaiting the ERP's verdict; 'ended': unpaired, released, rejected or moved.
    status TEXT NOT NULL CHECK (status IN ('active', 'provisional', 'ended')),
    basis TEXT NOT NULL CHECK (basis IN ('direct_sale', 'named_end_customer', 'distributor_sale', 'staff_grant', 'operator')),
    sale_id TEXT,
    flow_id BIGINT,
    approved_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    confirmed_at BIGINT,
    ended_at BIGINT,
    end_reason TEXT
);
-- A device has at most one current pairing; the constraint decides between racing approvals.
CREATE UNIQUE INDEX pairings_one_current ON pairings (serial) WHERE status IN ('active', 'provisional');
CREATE INDEX pairings_by_serial ON pairings (serial, id);
CREATE INDEX pairings_by_tenant ON pairings (tenant_id, status);

CREATE TABLE disputes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    serial TEXT NOT NULL REFERENCES devices (serial),
    -- The tenant whose user tried to pair the device.
    claimant_tenant_id BIGINT NOT NULL REFERENCES tenants (id),
    -- The tenant the device was paired to at the time, if any.
    holder_tenant_id BIGINT REFERENCES tenants (id),
    reason TEXT NOT NULL CHECK (reason IN ('paired_elsewhere', 'sold_to_other', 'not_sold', 'distributor_review')),
    status TEXT NOT NULL CHECK (status IN ('open', 'resolved')),
    resolution TEXT CHECK (resolution IN ('kept', 'moved', 'released', 'granted', 'dismissed')),
    opened_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    resolved_by TEXT,
    resolved_at BIGINT,
    note TEXT
);
CREATE UNIQUE INDEX disputes_one_open ON disputes (serial, claimant_tenant_id) WHERE status = 'open';
CREATE INDEX disputes_by_status ON disputes (status, id);

-- Staff decisions that a tenant may pair a device (dispute resolved in its favour).
CREATE TABLE pairing_grants (
    serial TEXT NOT NULL REFERENCES devices (serial),
    tenant_id BIGINT NOT NULL REFERENCES tenants (id),
    granted_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (serial, tenant_id)
);
