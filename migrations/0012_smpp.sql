-- The parts of multipart messages sent over SMPP: the id the SMSC gave each part, and its
-- receipt once it came. Written by the carrier as each part is accepted, so a retry after
-- throttling resumes at the first part not yet accepted, and a message is delivered when all
-- of its parts are.
CREATE TABLE carrier_parts (
    carrier_message_id TEXT PRIMARY KEY,
    message_sid        TEXT NOT NULL,
    part               BIGINT NOT NULL,
    total              BIGINT NOT NULL,
    status             TEXT,
    error_code         BIGINT,
    done_date          TEXT,
    created_at         BIGINT NOT NULL
);

CREATE INDEX carrier_parts_by_message ON carrier_parts (message_sid, part);

-- Parts of concatenated mobile-originated messages, held until the last one arrives.
CREATE TABLE smpp_mo_parts (
    route       TEXT NOT NULL,
    source      TEXT NOT NULL,
    destination TEXT NOT NULL,
    reference   BIGINT NOT NULL,
    total       BIGINT NOT NULL,
    part        BIGINT NOT NULL,
    body        TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    PRIMARY KEY (route, source, destination, reference, part)
);
