DROP INDEX refresh_tokens_by_client;
CREATE INDEX refresh_tokens_by_client ON refresh_tokens (client_id, status);
