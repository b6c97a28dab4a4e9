-- 008: a cluster member's event stream covers the cluster (issue 16). The
-- other members' events are copied into this table as they happen, marked
-- with the member they came from ('' for this daemon's own); event_relay
-- keeps, per member id, the last of its event ids copied, so a relay that
-- reconnects (or a daemon that restarts) goes on from there: nothing lost,
-- nothing twice.
ALTER TABLE events ADD COLUMN origin TEXT NOT NULL DEFAULT ''
    CHECK (length(CAST(origin AS BLOB)) <= 63);

CREATE TABLE event_relay (
    member_id TEXT PRIMARY KEY CHECK (length(CAST(member_id AS BLOB)) BETWEEN 1 AND 64),
    last_id   INTEGER NOT NULL CHECK (last_id >= 0)
) STRICT;
