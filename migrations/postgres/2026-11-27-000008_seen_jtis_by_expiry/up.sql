-- Instances share a PostgreSQL database, so its (scope, jti) primary key keeps deciding whether a
-- jti is new; only the SQLite migration of the same name reshapes the table. This one records
-- that in the catalogue.
COMMENT ON TABLE seen_jtis IS 'jti values of client assertions and DPoP proofs, refused again until expires_at; the primary key decides';
