-- Messaging Services and their sender pools. A phone number or short code sits in at most one
-- service (phone_numbers.messaging_service_sid); alphanumeric sender IDs have their own rows.

CREATE TABLE messaging_services (
    sid                           TEXT PRIMARY KEY,
    account_sid                   TEXT NOT NULL REFERENCES accounts (sid),
    friendly_name                 TEXT NOT NULL,
    inbound_request_url           TEXT,
    inbound_method                TEXT NOT NULL,
    fallback_url                  TEXT,
    fallback_method               TEXT NOT NULL,
    status_callback               TEXT,
    sticky_sender                 BIGINT NOT NULL,
    mms_converter                 BIGINT NOT NULL,
    smart_encoding                BIGINT NOT NULL,
    scan_message_content          TEXT NOT NULL,
    fallback_to_long_code         BIGINT NOT NULL,
    area_code_geomatch            BIGINT NOT NULL,
    validity_period               BIGINT NOT NULL,
    synchronous_validation        BIGINT NOT NULL,
    usecase                       TEXT NOT NULL,
    use_inbound_webhook_on_number BIGINT NOT NULL,
    date_created                  BIGINT NOT NULL,
    date_updated                  BIGINT NOT NULL
);

CREATE INDEX messaging_services_by_account ON messaging_services (account_sid, date_created, sid);

ALTER TABLE phone_numbers ADD COLUMN messaging_service_sid TEXT REFERENCES messaging_services (sid);
ALTER TABLE phone_numbers ADD COLUMN service_added_at BIGINT;
CREATE INDEX phone_numbers_by_service ON phone_numbers (messaging_service_sid, service_added_at, sid);

CREATE TABLE alpha_senders (
    sid          TEXT PRIMARY KEY,
    account_sid  TEXT NOT NULL REFERENCES accounts (sid),
    service_sid  TEXT NOT NULL REFERENCES messaging_services (sid),
    alpha_sender TEXT NOT NULL,
    date_created BIGINT NOT NULL,
    date_updated BIGINT NOT NULL,
    UNIQUE (service_sid, alpha_sender)
);

CREATE INDEX alpha_senders_by_service ON alpha_senders (service_sid, date_created, sid);
