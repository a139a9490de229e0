-- Usage, pre-aggregated per account, UTC day and recorded category, maintained in the same
-- transaction as what it counts (a sent or received message, a number rental charge), so a
-- crash cannot lose or double it. Prices in hundred-thousandths of the price unit.
CREATE TABLE usage_daily (
    account_sid TEXT NOT NULL,
    day         TEXT NOT NULL,
    category    TEXT NOT NULL,
    count       BIGINT NOT NULL,
    units       BIGINT NOT NULL,
    price       BIGINT NOT NULL,
    PRIMARY KEY (account_sid, day, category)
);

-- Money the operator credited to a main account (its balance is shared by its subaccounts).
CREATE TABLE balance_credits (
    id           TEXT PRIMARY KEY,
    account_sid  TEXT NOT NULL REFERENCES accounts (sid),
    amount       BIGINT NOT NULL,
    note         TEXT,
    date_created BIGINT NOT NULL
);

CREATE INDEX balance_credits_by_account ON balance_credits (account_sid);

-- Numbers being rented: the next monthly charge. Removed when the number is released.
CREATE TABLE number_rentals (
    phone_number   TEXT PRIMARY KEY,
    account_sid    TEXT NOT NULL,
    category       TEXT NOT NULL,
    monthly_price  BIGINT NOT NULL,
    next_charge_at BIGINT NOT NULL
);

CREATE INDEX number_rentals_due ON number_rentals (next_charge_at);
