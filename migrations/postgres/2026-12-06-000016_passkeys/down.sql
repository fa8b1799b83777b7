ALTER TABLE users DROP COLUMN passkey_sign_in;
ALTER TABLE tenants DROP COLUMN require_passkey_approval;
DROP TABLE passkey_ceremonies;
DROP TABLE passkeys;
