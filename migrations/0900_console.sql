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

-- The console's overview and charts: final outcomes counted per account, hour, status, error
-- code and (for delivered messages) delivery-latency bucket, written in the transaction that
-- records each final status (as `outcome_counts` is), so that a page reads a few hundred rows
-- whatever the number of messages.
CREATE TABLE console_outcomes (
    account_sid    TEXT NOT NULL,
    -- start of the hour the status was reached, microseconds
    hour           BIGINT NOT NULL,
    status         TEXT NOT NULL,
    -- 0: none
    error_code     BIGINT NOT NULL,
    -- delivered: the accepted → delivered bucket (store::console::LATENCY_BUCKETS); else -1
    latency_bucket BIGINT NOT NULL,
    count          BIGINT NOT NULL,
    PRIMARY KEY (account_sid, hour, status, error_code, latency_bucket)
);

-- Messages already final when the console arrived (their latency is not known).
INSERT INTO console_outcomes (account_sid, hour, status, error_code, latency_bucket, count)
SELECT account_sid, (date_updated / 3600000000) * 3600000000, status, COALESCE(error_code, 0), -1, COUNT(*)
FROM messages
WHERE status IN ('delivered', 'undelivered', 'failed', 'canceled', 'received')
GROUP BY account_sid, (date_updated / 3600000000) * 3600000000, status, COALESCE(error_code, 0);

-- Every status callback attempt of the last week, for a message's page in the console: where it
-- went, what answered and how fast. Written in the transaction that settles the attempt.
CREATE TABLE console_callback_attempts (
    message_sid     TEXT NOT NULL,
    account_sid     TEXT NOT NULL,
    -- 1 for the first try
    attempt         BIGINT NOT NULL,
    -- the message status the callback reported
    reported_status TEXT,
    url             TEXT NOT NULL,
    method          TEXT NOT NULL,
    -- the HTTP status answered; NULL when none came (connection failed, timed out, refused)
    response_code   BIGINT,
    error           TEXT,
    latency         BIGINT NOT NULL,
    -- delivered | retrying | given up
    outcome         TEXT NOT NULL,
    at              BIGINT NOT NULL
);
CREATE INDEX console_callback_attempts_by_message ON console_callback_attempts (message_sid, at);
-- Attempts are kept a week (store::console::CALLBACK_ATTEMPTS_KEPT); older ones are deleted.
CREATE INDEX console_callback_attempts_by_time ON console_callback_attempts (at);
