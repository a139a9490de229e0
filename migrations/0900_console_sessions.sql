-- Web console sessions (src/console). Rows, not signed cookies, so that every node sharing the
-- database sees a login and a logout at once. The cookie carries a random token; only its
-- SHA-256 is stored, so the table's contents cannot be replayed as cookies.
CREATE TABLE console_sessions (
    id_hash      TEXT PRIMARY KEY,
    account_sid  TEXT NOT NULL,
    -- the API key the user logged in with; NULL: the account's auth token
    key_sid      TEXT,
    -- SHA-256 of the auth token used to log in ('' for an API key): a changed token ends it
    token_hash   TEXT NOT NULL,
    csrf_token   TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL
);
CREATE INDEX console_sessions_by_expiry ON console_sessions (expires_at);
