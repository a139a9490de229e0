-- Accounts and API keys. Portable SQL: the same file runs on SQLite and PostgreSQL.
-- Dates are microseconds since the Unix epoch (BIGINT) so both databases order them alike.

CREATE TABLE accounts (
    sid               TEXT PRIMARY KEY,
    owner_account_sid TEXT REFERENCES accounts (sid),
    friendly_name     TEXT NOT NULL,
    status            TEXT NOT NULL,
    auth_token        TEXT NOT NULL,
    account_type      TEXT NOT NULL,
    date_created      BIGINT NOT NULL,
    date_updated      BIGINT NOT NULL
);

CREATE INDEX accounts_by_owner ON accounts (owner_account_sid, date_created, sid);

CREATE TABLE api_keys (
    sid           TEXT PRIMARY KEY,
    account_sid   TEXT NOT NULL REFERENCES accounts (sid),
    friendly_name TEXT,
    secret_hash   TEXT NOT NULL,
    date_created  BIGINT NOT NULL,
    date_updated  BIGINT NOT NULL
);

CREATE INDEX api_keys_by_account ON api_keys (account_sid, date_created, sid);
