-- Each account's test credentials (made when first read): requests signed with them answer as
-- Twilio's magic numbers and never send, charge or store anything.
CREATE TABLE test_credentials (
    test_account_sid TEXT PRIMARY KEY,
    account_sid      TEXT NOT NULL UNIQUE,
    test_auth_token  TEXT NOT NULL,
    date_created     BIGINT NOT NULL,
    date_updated     BIGINT NOT NULL
);
