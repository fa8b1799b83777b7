ALTER TABLE tenants DROP COLUMN time_zone;
ALTER TABLE users DROP COLUMN time_zone;
DROP TABLE model_metrics;
