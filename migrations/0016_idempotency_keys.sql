-- A client that did not hear the answer to a create can send it again with the same
-- `Idempotency-Key` (or `I-Twilio-Idempotency-Token`) header: the key, written in the
-- transaction that inserts the message, answers the retry with that message instead of a
-- second send. `fingerprint` tells a retry from a different request reusing the key.
CREATE TABLE idempotency_keys (
    account_sid     TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    fingerprint     TEXT NOT NULL,
    message_sid     TEXT NOT NULL,
    date_created    BIGINT NOT NULL,
    PRIMARY KEY (account_sid, idempotency_key)
);
CREATE INDEX idempotency_keys_by_age ON idempotency_keys (date_created);
