-- Per-account caps a parent sets on its subaccounts (a warbler extension): a sending rate in
-- segments per second and monthly message / spend limits. NULL: no cap.
CREATE TABLE account_caps (
    account_sid      TEXT PRIMARY KEY REFERENCES accounts (sid),
    max_sps          DOUBLE PRECISION,
    monthly_messages BIGINT,
    monthly_spend    BIGINT,
    date_updated     BIGINT NOT NULL
);

-- Messages accepted per account and calendar month (UTC), kept by the API's group commit in
-- the transaction that inserts them, for the monthly message cap.
CREATE TABLE account_month_counters (
    account_sid TEXT NOT NULL,
    month       TEXT NOT NULL,
    messages    BIGINT NOT NULL,
    PRIMARY KEY (account_sid, month)
);
