-- The operator's number inventory and, for numbers an account holds, their configuration.
-- A number is available while account_sid IS NULL; buying it sets sid + account_sid in one
-- conditional UPDATE, so two buyers cannot both win. Releasing clears them again.

CREATE TABLE phone_numbers (
    phone_number           TEXT PRIMARY KEY,
    iso_country            TEXT NOT NULL,
    number_type            TEXT NOT NULL,
    cap_sms                BIGINT NOT NULL,
    cap_mms                BIGINT NOT NULL,
    cap_voice              BIGINT NOT NULL,
    locality               TEXT,
    region                 TEXT,
    postal_code            TEXT,
    route                  TEXT,
    imported_at            BIGINT NOT NULL,
    sid                    TEXT UNIQUE,
    account_sid            TEXT REFERENCES accounts (sid),
    friendly_name          TEXT,
    api_version            TEXT,
    sms_url                TEXT,
    sms_method             TEXT,
    sms_fallback_url       TEXT,
    sms_fallback_method    TEXT,
    sms_application_sid    TEXT,
    status_callback        TEXT,
    status_callback_method TEXT,
    voice_url              TEXT,
    voice_method           TEXT,
    voice_fallback_url     TEXT,
    voice_fallback_method  TEXT,
    voice_caller_id_lookup TEXT,
    voice_application_sid  TEXT,
    voice_receive_mode     TEXT,
    trunk_sid              TEXT,
    emergency_status       TEXT,
    emergency_address_sid  TEXT,
    identity_sid           TEXT,
    address_sid            TEXT,
    bundle_sid             TEXT,
    date_created           BIGINT,
    date_updated           BIGINT
);

CREATE INDEX phone_numbers_by_account ON phone_numbers (account_sid, date_created, sid);
CREATE INDEX phone_numbers_by_kind ON phone_numbers (iso_country, number_type, account_sid);
