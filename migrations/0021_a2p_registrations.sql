-- US A2P 10DLC registration records (messaging v1 Compliance): brands and the campaign of a
-- Messaging Service. warbler cannot reach The Campaign Registry: the operator reviews them and
-- that moves their status. With `a2p_enforcement` on, a US long code sends to US numbers only
-- when its service's campaign is VERIFIED.
CREATE TABLE a2p_brands (
    sid                         TEXT PRIMARY KEY,
    account_sid                 TEXT NOT NULL REFERENCES accounts (sid),
    customer_profile_bundle_sid TEXT NOT NULL,
    a2p_profile_bundle_sid      TEXT NOT NULL,
    brand_type                  TEXT NOT NULL,
    status                      TEXT NOT NULL,
    tcr_id                      TEXT,
    failure_reason              TEXT,
    failure_code                BIGINT,
    mock                        BIGINT NOT NULL,
    skip_automatic_sec_vet      BIGINT NOT NULL,
    date_created                BIGINT NOT NULL,
    date_updated                BIGINT NOT NULL
);
CREATE INDEX a2p_brands_by_account ON a2p_brands (account_sid, date_created, sid);
CREATE INDEX a2p_brands_by_status ON a2p_brands (status, date_created, sid);

-- One campaign per service (Twilio's rule); `details` holds the submitted text fields as JSON.
CREATE TABLE a2p_campaigns (
    sid                    TEXT PRIMARY KEY,
    account_sid            TEXT NOT NULL REFERENCES accounts (sid),
    messaging_service_sid  TEXT NOT NULL UNIQUE REFERENCES messaging_services (sid),
    brand_registration_sid TEXT NOT NULL REFERENCES a2p_brands (sid),
    usecase                TEXT NOT NULL,
    campaign_status        TEXT NOT NULL,
    campaign_id            TEXT,
    failure_reason         TEXT,
    failure_code           BIGINT,
    mock                   BIGINT NOT NULL,
    details                TEXT NOT NULL,
    date_created           BIGINT NOT NULL,
    date_updated           BIGINT NOT NULL
);
CREATE INDEX a2p_campaigns_by_status ON a2p_campaigns (campaign_status, date_created, sid);

-- Where an account's A2P registration events go (Twilio delivers them through an Event
-- Streams webhook sink): CloudEvents JSON, signed, through the webhook outbox.
CREATE TABLE a2p_event_sinks (
    account_sid  TEXT PRIMARY KEY REFERENCES accounts (sid),
    url          TEXT NOT NULL,
    date_created BIGINT NOT NULL,
    date_updated BIGINT NOT NULL
);
