-- A refresh-token family remembers the device's token generation it was issued in. The refresh
-- grant and introspection compare it with the device's current generation, as the telemetry
-- writer does for access tokens: a family the device has moved past (unpaired, re-keyed, paired
-- again) is refused even if nothing revoked it. NULL for service clients, which have no
-- generation. Live families of devices start at their device's current generation.
ALTER TABLE refresh_families ADD COLUMN generation BIGINT;
UPDATE refresh_families SET generation = (
    SELECT d.token_generation FROM devices d WHERE d.serial = refresh_families.client_id
);
