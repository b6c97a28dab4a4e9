-- 007: what a cluster does with a VM whose member goes offline: '' nothing
-- (it waits for its member), 'restart' start it on another member once the
-- member's lease has expired (its member stops it first if it lost etcd).
ALTER TABLE vms ADD COLUMN ha TEXT NOT NULL DEFAULT ''
    CHECK (ha IN ('', 'restart'));
