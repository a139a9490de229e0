-- Outgoing webhooks (status callbacks, inbound messages) as durable outbox rows. A row is
-- written in the same transaction as the change it reports and deleted once delivered (or
-- given up on). Rows that share an `ordering_key` (a message) go out one at a time, by `seq`.
CREATE TABLE webhook_outbox (
    id              TEXT PRIMARY KEY,
    kind            TEXT NOT NULL,
    account_sid     TEXT NOT NULL,
    ordering_key    TEXT NOT NULL,
    seq             BIGINT NOT NULL,
    url             TEXT NOT NULL,
    method          TEXT NOT NULL,
    fallback_url    TEXT,
    fallback_method TEXT,
    -- Status callbacks: the transition reported (the form is built when sending).
    message_status  TEXT,
    error_code      BIGINT,
    done_date       TEXT,
    -- Inbound webhooks: the form, URL-encoded.
    payload         TEXT,
    attempts        BIGINT NOT NULL,
    created_at      BIGINT NOT NULL,
    due_at          BIGINT NOT NULL,
    lease_until     BIGINT
);

CREATE INDEX webhook_outbox_due ON webhook_outbox (due_at);
CREATE INDEX webhook_outbox_by_key ON webhook_outbox (ordering_key, seq);

-- Monitor alerts (`/v1/Alerts`): failed webhook requests, bad TwiML.
CREATE TABLE alerts (
    sid               TEXT PRIMARY KEY,
    account_sid       TEXT NOT NULL,
    error_code        TEXT NOT NULL,
    log_level         TEXT NOT NULL,
    alert_text        TEXT NOT NULL,
    resource_sid      TEXT,
    service_sid       TEXT,
    request_method    TEXT,
    request_url       TEXT,
    request_variables TEXT,
    request_headers   TEXT,
    response_body     TEXT,
    response_headers  TEXT,
    date_created      BIGINT NOT NULL
);

CREATE INDEX alerts_by_account ON alerts (account_sid, date_created, sid);

-- Recipients who texted a STOP keyword. `scope` is what the opt-out blocks: 'account' (every
-- sender of the account), a Messaging Service SID (its pool) or a sender number.
CREATE TABLE opt_outs (
    sid          TEXT NOT NULL UNIQUE,
    account_sid  TEXT NOT NULL,
    recipient    TEXT NOT NULL,
    scope        TEXT NOT NULL,
    sender       TEXT,
    keyword      TEXT NOT NULL,
    date_created BIGINT NOT NULL,
    PRIMARY KEY (account_sid, recipient, scope)
);

CREATE INDEX opt_outs_by_sender ON opt_outs (sender);
CREATE INDEX opt_outs_by_created ON opt_outs (account_sid, date_created, sid);

-- Advanced Opt-Out per Messaging Service (a warbler extension: Twilio sets it in its console).
CREATE TABLE service_opt_out_settings (
    service_sid    TEXT PRIMARY KEY REFERENCES messaging_services (sid),
    stop_keywords  TEXT NOT NULL,
    start_keywords TEXT NOT NULL,
    help_keywords  TEXT NOT NULL,
    stop_reply     TEXT,
    start_reply    TEXT,
    help_reply     TEXT,
    date_updated   BIGINT NOT NULL
);
