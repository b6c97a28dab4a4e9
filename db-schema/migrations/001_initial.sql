-- 001: the first schema. VM definitions with their lifecycle state, and the
-- event log behind GET /v1/events.
--
-- db_open() applies each migration once, in its own transaction together with
-- PRAGMA user_version = <number>; a migration must not contain BEGIN/COMMIT.
-- Never edit a migration that has shipped: add the next number instead.
--
-- Tables are STRICT (SQLite 3.37+) so a binding mistake in C cannot store text
-- in an integer column. Byte lengths are checked with length(CAST(x AS BLOB))
-- because the C side reads id, name and type into fixed-size buffers
-- (struct db_vm, struct db_event in include/db/store.h).

CREATE TABLE vms (
    id           TEXT PRIMARY KEY NOT NULL
                 CHECK (length(CAST(id AS BLOB)) BETWEEN 1 AND 36),
    name         TEXT NOT NULL UNIQUE
                 CHECK (length(CAST(name AS BLOB)) BETWEEN 1 AND 63),
    mode         TEXT NOT NULL CHECK (mode IN ('full', 'pv')),
    vcpus        INTEGER NOT NULL CHECK (vcpus BETWEEN 1 AND 64),
    memory_mib   INTEGER NOT NULL CHECK (memory_mib BETWEEN 16 AND 1048576),
    kernel       TEXT NOT NULL,
    initrd       TEXT,
    cmdline      TEXT,
    -- [{"path": .., "readonly": ..}] and [{"tap"|"network": .., "mac": ..}];
    -- the API validates the members, the store only that they are arrays.
    disks        TEXT NOT NULL DEFAULT '[]'
                 CHECK (json_valid(disks) AND json_type(disks) = 'array'),
    nics         TEXT NOT NULL DEFAULT '[]'
                 CHECK (json_valid(nics) AND json_type(nics) = 'array'),
    autostart    INTEGER NOT NULL DEFAULT 0 CHECK (autostart IN (0, 1)),
    state        TEXT NOT NULL DEFAULT 'stopped'
                 CHECK (state IN ('stopped', 'starting', 'running', 'paused',
                                  'stopping', 'crashed')),
    state_reason TEXT,
    created_at   INTEGER NOT NULL, -- unix time in ms
    updated_at   INTEGER NOT NULL,
    started_at   INTEGER NOT NULL DEFAULT 0, -- last start, 0 if never
    worker_pid   INTEGER NOT NULL DEFAULT 0 CHECK (worker_pid >= 0)
) STRICT;

-- GET /v1/vms?state= runs on the daemon's loop thread for every request:
-- (state, name) finds the rows and returns them in list order without a sort.
-- The unfiltered list walks the UNIQUE index on name the same way.
CREATE INDEX vms_state_name ON vms (state, name);

-- AUTOINCREMENT so an id is never reused, even after old events are pruned:
-- SSE clients resume with ?since=<last id they saw>. db_events_since is a
-- range scan on this rowid and needs no other index.
CREATE TABLE events (
    id    INTEGER PRIMARY KEY AUTOINCREMENT,
    ts    INTEGER NOT NULL, -- unix time in ms
    type  TEXT NOT NULL CHECK (length(CAST(type AS BLOB)) BETWEEN 1 AND 31),
    -- NULL for daemon events; no foreign key: a VM's events outlive it.
    vm_id TEXT CHECK (vm_id IS NULL OR length(CAST(vm_id AS BLOB)) BETWEEN 1 AND 36),
    data  TEXT NOT NULL DEFAULT '{}'
          CHECK (json_valid(data) AND json_type(data) = 'object')
) STRICT;
