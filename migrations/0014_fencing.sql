-- Claims carry a fencing token: every claim writes a new one, and a dispatcher or webhook
-- worker records its outcome only where the token is still its own. A node that paused past
-- its lease, and lost its rows to another claim, then writes nothing.
ALTER TABLE messages ADD COLUMN claim_token BIGINT;
ALTER TABLE webhook_outbox ADD COLUMN claim_token BIGINT;

-- A webhook waits for the ones before it on its key (a message's callbacks go out in order):
-- with `id` in the index, "is there one before me" is a single index probe.
DROP INDEX webhook_outbox_by_key;
CREATE INDEX webhook_outbox_by_key ON webhook_outbox (ordering_key, seq, id);

-- The nodes serving from this database, each beating its heart here: a per-node budget (the
-- rate limit) is the cluster's divided by the live nodes.
CREATE TABLE nodes (
    id           TEXT PRIMARY KEY,
    started_at   BIGINT NOT NULL,
    heartbeat_at BIGINT NOT NULL
);

-- A route's `binds` are the cluster's: each bind slot is leased to one node at a time (taken
-- over when its holder's lease runs out), so N nodes open `binds` sessions in all.
CREATE TABLE smpp_bind_leases (
    route       TEXT NOT NULL,
    slot        BIGINT NOT NULL,
    node        TEXT NOT NULL,
    lease_until BIGINT NOT NULL,
    PRIMARY KEY (route, slot)
);
