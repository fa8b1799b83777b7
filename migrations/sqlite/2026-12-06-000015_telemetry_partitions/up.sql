-- Nothing on SQLite: the PostgreSQL migration of the same name partitions telemetry_readings by
-- day. One SQLite server keeps one table, its primary key (serial, reading_id) deciding
-- duplicates, and retention deletes old readings in chunks.
SELECT 1;
