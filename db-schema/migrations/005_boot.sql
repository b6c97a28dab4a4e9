-- 005: how a VM boots: 'kernel' (the VMM loads kernel, initrd and cmdline, as
-- before) or 'disk' (the VM starts in firmware, which boots its first disk).
--
-- kernel stays NOT NULL: relaxing that means rebuilding the table. A
-- disk-booted VM stores '' there, which the store reads back as no kernel.
-- 004 is reserved (storage pools and volumes, developed in parallel; see
-- migrations/reserved): this one does not depend on it.
ALTER TABLE vms ADD COLUMN boot TEXT NOT NULL DEFAULT 'kernel'
    CHECK (boot IN ('kernel', 'disk'));
