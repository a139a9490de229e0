-- Usage Triggers: a callback when an account's usage of a category crosses a value, at most
-- once per period (`fired_period` is the period it last fired in).
CREATE TABLE usage_triggers (
    sid             TEXT PRIMARY KEY,
    account_sid     TEXT NOT NULL REFERENCES accounts (sid),
    friendly_name   TEXT,
    callback_url    TEXT NOT NULL,
    callback_method TEXT NOT NULL,
    usage_category  TEXT NOT NULL,
    trigger_by      TEXT NOT NULL,
    trigger_value   TEXT NOT NULL,
    recurring       TEXT,
    fired_period    TEXT,
    date_fired      BIGINT,
    date_created    BIGINT NOT NULL,
    date_updated    BIGINT NOT NULL
);

CREATE INDEX usage_triggers_by_account ON usage_triggers (account_sid, date_created, sid);
