-- Telemetry on PostgreSQL: `telemetry_readings` becomes a table partitioned by measurement time
-- (RANGE on `ts`, Unix ms), one partition per UTC day, so that retention drops whole days
-- (`DROP TABLE`, no dead rows, no vacuum debt) instead of deleting rows one by one, and a read
-- of one device over a time range only looks at the days it covers. The partitions live in the
-- schema `telemetry_partitions`, so `public` still holds one `telemetry_readings` table and
-- `src/store/schema.rs` still describes it. pairgate creates the days ahead (housekeeping, and at
-- start) and, should an insert still find no partition for its day, creates it and retries
-- (`src/store/partitions.rs`). There is no DEFAULT partition: rows in it would have to be moved
-- out before their day could be created, and retention could not drop it.
--
-- Duplicates. A partitioned table's unique keys must contain the partition key, so the primary
-- key is (serial, reading_id, ts): within each partition, the unique index catches an exact
-- retry (the same reading sent again, same time), also when two instances insert it at once (the
-- later insert waits for the earlier transaction and counts a duplicate). A reading is still
-- identified by (serial, reading_id): the insert looks for the same pair among the readings whose
-- time is in the acceptance window (telemetry.max_reading_age_secs back,
-- telemetry.max_reading_future_secs ahead), in the partitions that window covers, through the
-- same index, and stores nothing when it finds one, whatever its time. See
-- docs/decisions/telemetry-partitions.md for the alternatives and the one race this leaves.
--
-- The (ts) index goes: retention no longer scans by time. (serial, ts) stays, per partition, for
-- per-device range reads.
CREATE SCHEMA telemetry_partitions;

ALTER TABLE telemetry_readings SET SCHEMA telemetry_partitions;
ALTER TABLE telemetry_partitions.telemetry_readings RENAME TO unpartitioned;

CREATE TABLE telemetry_readings (
    serial TEXT NOT NULL,
    reading_id TEXT NOT NULL,
    tenant_id BIGINT NOT NULL,
    ts BIGINT NOT NULL,
    received_at BIGINT NOT NULL,
    metrics TEXT NOT NULL,
    PRIMARY KEY (serial, reading_id, ts)
) PARTITION BY RANGE (ts);
CREATE INDEX telemetry_readings_by_device_time ON telemetry_readings (serial, ts);
COMMENT ON TABLE telemetry_readings IS
    'readings by measurement time, one partition per UTC day in schema telemetry_partitions';

-- Creates the partition of the UTC day starting at `day_start` (Unix ms) unless it exists; true
-- when it created it. Partitions are named readings_YYYYMMDD. Instances creating the same day at
-- once take turns on an advisory lock (held to the end of the transaction), so the second finds
-- the first's. The table is created apart and then attached: ATTACH locks the parent only
-- against other schema changes (SHARE UPDATE EXCLUSIVE), not against reads and writes, and
-- creates the parent's indexes on the new, empty table.
CREATE FUNCTION telemetry_partitions.create_day(day_start BIGINT) RETURNS BOOLEAN
LANGUAGE plpgsql AS $$
DECLARE
    name TEXT;
BEGIN
    IF day_start % 86400000 <> 0 THEN
        RAISE EXCEPTION 'not the start of a UTC day: %', day_start;
    END IF;
    name := 'readings_'
        || to_char(to_timestamp(day_start / 1000) AT TIME ZONE 'UTC', 'YYYYMMDD');
    IF to_regclass(format('telemetry_partitions.%I', name)) IS NOT NULL THEN
        RETURN FALSE;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('pairgate telemetry partitions'));
    IF to_regclass(format('telemetry_partitions.%I', name)) IS NOT NULL THEN
        RETURN FALSE;
    END IF;
    EXECUTE format(
        'CREATE TABLE telemetry_partitions.%I (LIKE public.telemetry_readings)', name);
    EXECUTE format(
        'ALTER TABLE public.telemetry_readings ATTACH PARTITION telemetry_partitions.%I '
        'FOR VALUES FROM (%s) TO (%s)', name, day_start, day_start + 86400000);
    RETURN TRUE;
END
$$;

-- Existing readings move over, each day into its partition.
SELECT telemetry_partitions.create_day(day)
FROM (
    SELECT DISTINCT ts - ((ts % 86400000) + 86400000) % 86400000 AS day
    FROM telemetry_partitions.unpartitioned
) AS days
ORDER BY day;
INSERT INTO telemetry_readings (serial, reading_id, tenant_id, ts, received_at, metrics)
SELECT serial, reading_id, tenant_id, ts, received_at, metrics
FROM telemetry_partitions.unpartitioned;
DROP TABLE telemetry_partitions.unpartitioned;
