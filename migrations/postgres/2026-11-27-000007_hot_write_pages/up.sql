-- The client index leaves out the status, so consuming a refresh token changes no indexed
-- column and PostgreSQL can update the row in place (a HOT update). The SQLite migration of the
-- same name also reshapes seen_jtis and refresh_tokens' row ids; PostgreSQL needs neither.
DROP INDEX refresh_tokens_by_client;
CREATE INDEX refresh_tokens_by_client ON refresh_tokens (client_id);
