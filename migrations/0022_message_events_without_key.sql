-- A message's status events lose their foreign key to `messages`. Every event is written in
-- the transaction that moves its message (the insert, a claim, an outcome, a receipt, a
-- cancel), from a row that transaction just read or wrote, and a message is deleted, with its
-- events, only in a final state, which no later event follows: the key guarded nothing that
-- this order does not. It cost a look-up and, on PostgreSQL, a row lock on the message (a
-- write to the message's page and to the WAL) for each of the four events of a message; over
-- a run of the peers-bench load the events' insert took 2.0-2.7 s of the server's statement
-- time with the key and 0.7-1.0 s without (docs/performance.md, E20 and E21).
-- A table is rebuilt rather than altered: SQLite cannot drop a constraint.
CREATE TABLE message_events_unkeyed (
    message_sid TEXT NOT NULL,
    status      TEXT NOT NULL,
    error_code  BIGINT,
    at          BIGINT NOT NULL
);
INSERT INTO message_events_unkeyed (message_sid, status, error_code, at)
    SELECT message_sid, status, error_code, at FROM message_events;
DROP TABLE message_events;
ALTER TABLE message_events_unkeyed RENAME TO message_events;
CREATE INDEX message_events_by_message ON message_events (message_sid, at);
