-- Refused OAuth requests whose client never authenticated (invalid_client, unknown client ids,
-- bad or replayed assertions, malformed requests before authentication). Anyone can send those,
-- as fast as they like, so they are counted per address, claimed client and hour instead of each
-- appending a row to the audit log; refusals of authenticated clients stay in the audit log.
-- Housekeeping deletes old windows. Times are Unix milliseconds.
CREATE TABLE oauth_refusals (
    -- Start of the hour counted.
    window_start BIGINT NOT NULL,
    -- The client address ('' when unknown).
    ip TEXT NOT NULL,
    -- 'client:' + the client id the request named (truncated), 'anonymous' when it named none,
    -- 'others' for the claims past the limit of distinct ones per address and window.
    actor TEXT NOT NULL,
    refusals BIGINT NOT NULL,
    first_at BIGINT NOT NULL,
    -- '<endpoint> <error>: <description>', fixed texts.
    first_reason TEXT NOT NULL,
    last_at BIGINT NOT NULL,
    last_reason TEXT NOT NULL,
    PRIMARY KEY (window_start, ip, actor)
);
