-- Content API templates (content.twilio.com/v1/Content). `types` (twilio/text, twilio/media)
-- and `variables` (default placeholder values) are kept as validated JSON; a send with
-- ContentSid renders them into its body and media when it is accepted.
CREATE TABLE content_templates (
    sid           TEXT PRIMARY KEY,
    account_sid   TEXT NOT NULL,
    friendly_name TEXT NOT NULL,
    language      TEXT NOT NULL,
    variables     TEXT NOT NULL,
    types         TEXT NOT NULL,
    date_created  BIGINT NOT NULL,
    date_updated  BIGINT NOT NULL
);
CREATE INDEX content_templates_by_account ON content_templates (account_sid, date_created, sid);
