-- 003: managed networks (a bridge, NAT or isolation in vmmd's nftables table,
-- one dnsmasq each), their port forwards, and the daemon's own settings
-- (what it did once and must not do again, such as creating the default
-- network a user may since have deleted).
CREATE TABLE networks (
    name       TEXT PRIMARY KEY NOT NULL
               CHECK (length(CAST(name AS BLOB)) BETWEEN 1 AND 63),
    -- Linux interface names hold at most 15 bytes.
    bridge     TEXT NOT NULL UNIQUE
               CHECK (length(CAST(bridge AS BLOB)) BETWEEN 1 AND 15),
    cidr       TEXT NOT NULL UNIQUE CHECK (length(CAST(cidr AS BLOB)) BETWEEN 9 AND 18),
    nat        INTEGER NOT NULL CHECK (nat IN (0, 1)),
    dhcp       INTEGER NOT NULL CHECK (dhcp IN (0, 1)),
    dns_domain TEXT NOT NULL CHECK (length(CAST(dns_domain AS BLOB)) BETWEEN 1 AND 63),
    mtu        INTEGER NOT NULL CHECK (mtu BETWEEN 576 AND 9000),
    created_at INTEGER NOT NULL, -- unix time in ms
    updated_at INTEGER NOT NULL
) STRICT;

-- A forward goes to a VM, not an address: its target is the static ip of the
-- VM's NIC on the network, looked up whenever the rules are rebuilt, so a
-- changed definition moves the forward with it. Deleting the VM or the
-- network deletes its forwards.
CREATE TABLE port_forwards (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    network      TEXT NOT NULL REFERENCES networks (name) ON DELETE CASCADE,
    protocol     TEXT NOT NULL CHECK (protocol IN ('tcp', 'udp')),
    host_address TEXT NOT NULL DEFAULT '' -- '' for every address of the host
                 CHECK (length(CAST(host_address AS BLOB)) <= 15),
    host_port    INTEGER NOT NULL CHECK (host_port BETWEEN 1 AND 65535),
    vm_id        TEXT NOT NULL REFERENCES vms (id) ON DELETE CASCADE,
    vm_port      INTEGER NOT NULL CHECK (vm_port BETWEEN 1 AND 65535),
    created_at   INTEGER NOT NULL,
    UNIQUE (protocol, host_port, host_address)
) STRICT;
CREATE INDEX port_forwards_vm ON port_forwards (vm_id);

CREATE TABLE settings (
    key   TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
) STRICT;
