-- 002: CPU limits of a VM, applied to its cgroup and changeable while it runs:
-- a quota in percent of one host CPU (0: none) and a relative weight
-- (cgroup v2's cpu.weight scale, 100 by default).
ALTER TABLE vms ADD COLUMN cpu_quota_pct INTEGER NOT NULL DEFAULT 0
    CHECK (cpu_quota_pct BETWEEN 0 AND 6400);
ALTER TABLE vms ADD COLUMN cpu_weight INTEGER NOT NULL DEFAULT 100
    CHECK (cpu_weight BETWEEN 1 AND 10000);
