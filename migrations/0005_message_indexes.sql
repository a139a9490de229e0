-- List filters on large message tables: To, From and DateSent each get an index that also
-- serves the newest-first order, so a page never scans the account's whole history.
CREATE INDEX messages_by_account_to ON messages (account_sid, to_address, date_created, sid);
CREATE INDEX messages_by_account_from ON messages (account_sid, from_address, date_created, sid);
CREATE INDEX messages_by_account_sent ON messages (account_sid, date_sent);
