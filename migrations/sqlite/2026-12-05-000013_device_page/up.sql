-- The device page. Per device model, what the ERP says of each metric: the label people read,
-- the unit, and optionally how many decimals to show and the range the value can take (the
-- chart's value axis). A metric with no row here is shown by its key, with no unit.
CREATE TABLE model_metrics (
    model TEXT NOT NULL,
    metric TEXT NOT NULL,
    label TEXT NOT NULL,
    unit TEXT,
    decimals INTEGER,
    min_value REAL,
    max_value REAL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (model, metric)
);
-- The time zone (an IANA name such as Europe/Berlin) pages show times in: the person's own,
-- else the company's, else UTC.
ALTER TABLE users ADD COLUMN time_zone TEXT;
ALTER TABLE tenants ADD COLUMN time_zone TEXT;
