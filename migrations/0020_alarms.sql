-- Alarms (a warbler extension): a rule on an account's delivery errors, evaluated from
-- per-minute counters of message outcomes. The counters are written in the transaction that
-- records each final status, so evaluating an alarm reads a window's minutes, never the
-- messages themselves: its cost does not grow with traffic.
CREATE TABLE outcome_counts (
    account_sid TEXT NOT NULL,
    -- '' for messages sent outside a Messaging Service
    service_sid TEXT NOT NULL,
    -- start of the minute, microseconds
    minute      BIGINT NOT NULL,
    -- 0: the message ended without an error
    error_code  BIGINT NOT NULL,
    count       BIGINT NOT NULL,
    PRIMARY KEY (account_sid, minute, service_sid, error_code)
);
CREATE INDEX outcome_counts_by_service ON outcome_counts (service_sid, minute);
CREATE INDEX outcome_counts_by_minute ON outcome_counts (minute);

CREATE TABLE alarms (
    sid                TEXT PRIMARY KEY,
    account_sid        TEXT NOT NULL REFERENCES accounts (sid),
    friendly_name      TEXT,
    -- NULL: any error
    error_code         BIGINT,
    -- the account itself (with its subaccounts, for a main account), one of its
    -- subaccounts, or a Messaging Service of either
    scope_sid          TEXT NOT NULL,
    -- count | percentage
    threshold_type     TEXT NOT NULL,
    threshold          TEXT NOT NULL,
    window_minutes     BIGINT NOT NULL,
    webhook_url        TEXT,
    webhook_method     TEXT NOT NULL,
    -- comma-separated addresses, '' for none
    emails             TEXT NOT NULL,
    -- ok | firing: changed by a conditional update, so several nodes fire it once
    state              TEXT NOT NULL,
    date_state_changed BIGINT,
    date_created       BIGINT NOT NULL,
    date_updated       BIGINT NOT NULL
);
CREATE INDEX alarms_by_account ON alarms (account_sid, date_created, sid);

CREATE TABLE alarm_firings (
    sid            TEXT PRIMARY KEY,
    alarm_sid      TEXT NOT NULL,
    account_sid    TEXT NOT NULL,
    -- firing | cleared
    state          TEXT NOT NULL,
    errors         BIGINT NOT NULL,
    messages       BIGINT NOT NULL,
    -- the measured value: a count, or a percentage of the window's messages
    value          TEXT NOT NULL,
    -- none | pending | sent | failed: the e-mail, sent by whichever node claims it
    email_status   TEXT NOT NULL,
    email_attempts BIGINT NOT NULL,
    -- pending: when the e-mail may be tried (again); a claim moves it past its lease
    email_due_at   BIGINT,
    email_error    TEXT,
    date_created   BIGINT NOT NULL
);
CREATE INDEX alarm_firings_by_alarm ON alarm_firings (alarm_sid, date_created, sid);
CREATE INDEX alarm_firings_email_due ON alarm_firings (email_status, email_due_at);
