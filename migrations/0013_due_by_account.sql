-- The dispatcher claims due messages account by account (the first few of each), so the due
-- index leads with the account: each account's next messages are one index seek away, and
-- the accounts with due work are found by skipping from one account to the next.
DROP INDEX messages_due;
CREATE INDEX messages_due_by_account ON messages (account_sid, due_at) WHERE due_at IS NOT NULL;
