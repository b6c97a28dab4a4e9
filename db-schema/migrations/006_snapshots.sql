-- 006: snapshots of running VMs. The files (state and memory) live in the
-- daemon's state directory under snapshots/<vm id>/<name>/; the row says
-- what the snapshot holds: the VM's definition and disks as they were, the
-- sizes, how long the VM was paused for it (info, a JSON object the daemon
-- writes whole). A VM's snapshots go with it.
CREATE TABLE snapshots (
    vm_id      TEXT NOT NULL REFERENCES vms (id) ON DELETE CASCADE,
    name       TEXT NOT NULL CHECK (length(CAST(name AS BLOB)) BETWEEN 1 AND 63),
    info       TEXT NOT NULL CHECK (json_valid(info) AND json_type(info) = 'object'),
    created_at INTEGER NOT NULL, -- unix time in ms
    PRIMARY KEY (vm_id, name)
) STRICT;
