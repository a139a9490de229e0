-- Message Feedback: whether the recipient performed the tracked action (one row per message).
CREATE TABLE message_feedback (
    message_sid  TEXT PRIMARY KEY REFERENCES messages (sid),
    account_sid  TEXT NOT NULL,
    outcome      TEXT NOT NULL,
    date_created BIGINT NOT NULL,
    date_updated BIGINT NOT NULL
);
