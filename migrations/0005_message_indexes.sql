-- List filters on large message tables: To and From each get an index that also serves the
-- newest-first order, so a page never scans the account's whole history. DateSent filters use
-- the creation-order index with implied creation-time bounds (see `list_messages`).
CREATE INDEX messages_by_account_to ON messages (account_sid, to_address, date_created, sid);
CREATE INDEX messages_by_account_from ON messages (account_sid, from_address, date_created, sid);
