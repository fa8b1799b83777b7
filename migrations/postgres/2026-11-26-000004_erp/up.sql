-- ERP integration: the ERP customer number of a tenant, sale records, the ERP event feed and the
-- webhook outbox. Times are Unix milliseconds.

-- A tenant stands for at most one ERP customer, and a customer for at most one tenant.
ALTER TABLE tenants ADD COLUMN erp_customer_number TEXT;
CREATE UNIQUE INDEX tenants_by_erp_customer_number ON tenants (erp_customer_number);

-- One row per ERP sale id. No foreign key to devices: a sale may arrive before its device.
-- A cancellation that arrives before its sale leaves a row with status 'cancelled' and no data;
-- the sale's data fills it in later without reviving it (an ended sale stays ended).
CREATE TABLE erp_sales (
    sale_id TEXT PRIMARY KEY,
    serial TEXT,
    sold_at BIGINT,
    sold_to_customer_number TEXT,
    sold_to_name TEXT,
    sold_to_kind TEXT CHECK (sold_to_kind IN ('end_customer', 'distributor')),
    end_customer_number TEXT,
    -- The ERP's own revision of the sale data held here (a change counter or a timestamp):
    -- an update with a lower revision is stale and ignored.
    revision BIGINT,
    status TEXT NOT NULL CHECK (status IN ('active', 'cancelled', 'returned')),
    -- The revision of the update that ended the sale; NULL while active or when a DELETE ended it
    -- (an ending with a revision says why, and so outranks a bare DELETE).
    ended_revision BIGINT,
    ended_at BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
-- At most one active sale per device; the constraint is the signal of a second one.
CREATE UNIQUE INDEX erp_sales_one_active_per_device ON erp_sales (serial) WHERE status = 'active';
CREATE INDEX erp_sales_by_serial ON erp_sales (serial);

-- What the portal tells the ERP, in commit order: ids are handed out under the lock of the
-- single erp_event_head row, so a reader never sees a later id before an earlier one.
CREATE TABLE erp_events (
    id BIGINT PRIMARY KEY,
    occurred_at BIGINT NOT NULL,
    event_type TEXT NOT NULL,
    serial TEXT,
    sale_id TEXT,
    customer_number TEXT,
    tenant_id BIGINT,
    data TEXT NOT NULL
);

CREATE TABLE erp_event_head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    last_id BIGINT NOT NULL,
    -- Set at start-up from erp.webhook_url: whether new events also go to the webhook outbox.
    webhooks BOOLEAN NOT NULL
);
INSERT INTO erp_event_head (id, last_id, webhooks) VALUES (1, 0, FALSE);

-- Webhook deliveries still to make (a row is deleted once its event was delivered). Per ordering
-- key (a device serial, or customer:NUMBER) only the oldest row is 'ready', so each device's
-- events arrive in order; the next one becomes ready when the one before is delivered.
CREATE TABLE erp_outbox (
    event_id BIGINT PRIMARY KEY REFERENCES erp_events (id),
    ordering_key TEXT NOT NULL,
    ready BOOLEAN NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    last_error TEXT
);
CREATE INDEX erp_outbox_due ON erp_outbox (ready, next_attempt_at);
CREATE INDEX erp_outbox_by_key ON erp_outbox (ordering_key, event_id);
