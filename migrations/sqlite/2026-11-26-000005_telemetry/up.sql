-- Telemetry: the readings paired devices upload (POST /api/v1/telemetry). One row per reading, its
-- metrics as a JSON object (name -> number). Times are Unix milliseconds.
--
-- No foreign keys: every row would cost a lookup on the hot write path, and readings outlive
-- nothing they could point at (devices are never deleted; tenants keep their history).
CREATE TABLE telemetry_readings (
    serial TEXT NOT NULL,
    -- Chosen by the device, unique for the device: the primary key turns a retried upload into
    -- duplicates instead of copies.
    reading_id TEXT NOT NULL,
    -- The tenant the device was paired to when it uploaded: after a resale the new owner does
    -- not see the previous owner's data.
    tenant_id BIGINT NOT NULL,
    -- When the device measured.
    ts BIGINT NOT NULL,
    -- When pairgate committed it.
    received_at BIGINT NOT NULL,
    metrics TEXT NOT NULL,
    PRIMARY KEY (serial, reading_id)
);
-- Reads: one device over a time range.
CREATE INDEX telemetry_readings_by_device_time ON telemetry_readings (serial, ts);
-- Retention: the oldest readings first, across devices.
CREATE INDEX telemetry_readings_by_time ON telemetry_readings (ts);
