DROP INDEX devices_by_tenant;
