-- The portal's device list: a tenant's devices found by the tenant, in serial order, so that a
-- page of 10,000 devices starts from an index, not from a scan of every tenant's devices. (The
-- last reading of each comes from telemetry_readings_by_device_time.)
CREATE INDEX devices_by_tenant ON devices (tenant_id, serial);
