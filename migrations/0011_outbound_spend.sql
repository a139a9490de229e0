-- What each account's accepted outbound messages will cost (estimated when accepted), so the
-- monthly spend cap and the credit limit also count messages accepted but not sent yet.
ALTER TABLE account_month_counters ADD COLUMN outbound_spend BIGINT NOT NULL DEFAULT 0;
