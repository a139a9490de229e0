-- Messages and the durable dispatch queue. A message row *is* its queue entry: `due_at` says
-- when the dispatcher should next look at it (NULL: nothing to do), `lease_until` marks a claim
-- so a crashed node's claims expire and are taken again.

CREATE TABLE messages (
    sid                   TEXT PRIMARY KEY,
    account_sid           TEXT NOT NULL REFERENCES accounts (sid),
    messaging_service_sid TEXT,
    direction             TEXT NOT NULL,
    from_address          TEXT,
    to_address            TEXT NOT NULL,
    body                  TEXT NOT NULL,
    encoding              TEXT NOT NULL,
    num_segments          BIGINT NOT NULL,
    num_media             BIGINT NOT NULL,
    status                TEXT NOT NULL,
    error_code            BIGINT,
    error_message         TEXT,
    price                 TEXT,
    price_unit            TEXT NOT NULL,
    status_callback       TEXT,
    validity_period       BIGINT NOT NULL,
    send_at               BIGINT,
    route                 TEXT,
    carrier_message_id    TEXT,
    attempts              BIGINT NOT NULL,
    due_at                BIGINT,
    lease_until           BIGINT,
    pace_slot             BIGINT,
    date_created          BIGINT NOT NULL,
    date_updated          BIGINT NOT NULL,
    date_sent             BIGINT
);

CREATE INDEX messages_by_account ON messages (account_sid, date_created, sid);
CREATE INDEX messages_due ON messages (due_at) WHERE due_at IS NOT NULL;
CREATE INDEX messages_by_carrier_id ON messages (carrier_message_id) WHERE carrier_message_id IS NOT NULL;

-- Every status a message passed through, with its time.
CREATE TABLE message_events (
    message_sid TEXT NOT NULL REFERENCES messages (sid),
    status      TEXT NOT NULL,
    error_code  BIGINT,
    at          BIGINT NOT NULL
);

CREATE INDEX message_events_by_message ON message_events (message_sid, at);

CREATE TABLE message_media (
    sid          TEXT PRIMARY KEY,
    message_sid  TEXT NOT NULL REFERENCES messages (sid),
    account_sid  TEXT NOT NULL,
    url          TEXT NOT NULL,
    content_type TEXT NOT NULL,
    date_created BIGINT NOT NULL,
    date_updated BIGINT NOT NULL
);

CREATE INDEX message_media_by_message ON message_media (message_sid, date_created, sid);

-- The sender a service last used for a recipient (sticky sender).
CREATE TABLE sticky_senders (
    service_sid  TEXT NOT NULL,
    to_address   TEXT NOT NULL,
    from_address TEXT NOT NULL,
    updated_at   BIGINT NOT NULL,
    PRIMARY KEY (service_sid, to_address)
);

-- When each sender may next send (pacing in segments per second).
CREATE TABLE sender_pacing (
    address     TEXT PRIMARY KEY,
    next_free_at BIGINT NOT NULL
);

-- Delivery receipts as carriers report them. A receipt may arrive before the submit that it
-- answers is recorded: it waits here until a message carries its carrier id.
CREATE TABLE carrier_receipts (
    id                 TEXT PRIMARY KEY,
    carrier_message_id TEXT NOT NULL,
    status             TEXT NOT NULL,
    error_code         BIGINT,
    done_date          TEXT,
    due_at             BIGINT NOT NULL
);

CREATE INDEX carrier_receipts_due ON carrier_receipts (due_at);

-- What the built-in simulated carrier accepted (to count duplicate submits after a crash).
CREATE TABLE simulated_submissions (
    carrier_message_id TEXT PRIMARY KEY,
    message_sid        TEXT NOT NULL,
    from_address       TEXT NOT NULL,
    to_address         TEXT NOT NULL,
    segments           BIGINT NOT NULL,
    at                 BIGINT NOT NULL
);

CREATE INDEX simulated_submissions_by_message ON simulated_submissions (message_sid);
