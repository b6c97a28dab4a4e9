/*
 * The daemon's SQLite store: VM definitions, their lifecycle state and the
 * event log that feeds the event stream. Every write runs in one transaction
 * together with the event that announces it, so a crash between two
 * statements never leaves a VM half-created or a change unannounced.
 * Only the daemon's loop thread uses a struct db_store; workers never do.
 * Functions return 0 or a negative errno.
 */
#ifndef DB_STORE_H
#define DB_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DB_ID_LEN   36 /* UUID in text form */
#define DB_NAME_MAX 63

struct db_store;

/* A VM as stored. The char * members are owned by the struct: db_vm_clear() frees them. */
struct db_vm {
    char id[DB_ID_LEN + 1];
    char name[DB_NAME_MAX + 1];
    char mode[8]; /* "full" | "pv" */
    uint32_t vcpus;
    uint64_t memory_mib;
    char boot[8];     /* "kernel" | "disk" ("" is taken as "kernel") */
    char ha[8];       /* "" | "restart": what a cluster does when its member is offline */
    char *kernel;     /* NULL when none (boot "disk") */
    char *initrd;     /* NULL when none */
    char *cmdline;    /* NULL when none */
    char *disks_json; /* JSON array text, "[]" when none: [{"path":..,"readonly":..}] */
    char *nics_json;  /* JSON array text, "[]" when none: [{"tap"|"network":..,"mac":..}] */
    bool autostart;
    uint32_t cpu_quota_pct; /* of one host CPU, 0: no quota */
    uint32_t cpu_weight;    /* 1..10000; 0 stored as 100 */
    char state[16];     /* stopped|starting|running|paused|stopping|crashed */
    char *state_reason; /* why it entered its state; NULL when none */
    int64_t created_at; /* unix time in ms */
    int64_t updated_at;
    int64_t started_at; /* last start, 0 if never */
    int64_t worker_pid; /* 0 when no worker */
};

struct db_event {
    int64_t id; /* strictly increasing */
    int64_t ts; /* unix time in ms */
    char type[32]; /* vm.created | vm.updated | vm.state_changed | vm.deleted | daemon.started */
    char vm_id[DB_ID_LEN + 1]; /* "" for daemon events */
    char origin[DB_NAME_MAX + 1]; /* the cluster member it was copied from; "" for this daemon's */
    const char *data_json;     /* JSON object text; valid during the callback only */
};

/*
 * Opens or creates the database at path: WAL mode, foreign keys on, a busy
 * timeout, then applies the embedded migrations (db-schema/migrations/NNN_*.sql)
 * in order, each in its own transaction, recording the number in
 * PRAGMA user_version. A database whose user_version is newer than the newest
 * embedded migration is refused with -EPROTO and a message in err, and is not
 * modified in any way.
 */
int db_open(const char *path, struct db_store **out, char *err, size_t errlen);
/*
 * A second, read-only connection to a database db_open() has opened (and
 * migrated), for another thread than the writer's: WAL lets it read a
 * consistent snapshot while the writer commits. Like any db_store it is
 * used by one thread at a time. -EPROTO when the schema is not this code's.
 */
int db_open_reader(const char *path, struct db_store **out, char *err, size_t errlen);
void db_close(struct db_store *db);
int db_schema_version(struct db_store *db);
int db_known_schema_version(void);

/* Writes; *event_id receives the announcing event's id when event_id is non-NULL. */
int db_vm_insert(struct db_store *db, const struct db_vm *vm, int64_t *event_id); /* -EEXIST: id or name taken */
int db_vm_update(struct db_store *db, const struct db_vm *vm, int64_t *event_id); /* definition, name, autostart; -ENOENT, -EEXIST */
int db_vm_set_state(struct db_store *db, const char *id, const char *state, const char *reason,
                    int64_t worker_pid, int64_t *event_id); /* -ENOENT; sets started_at on "starting" */
int db_vm_delete(struct db_store *db, const char *id, int64_t *event_id); /* -ENOENT */
int db_event_insert(struct db_store *db, const char *type, const char *vm_id,
                    const char *data_json, int64_t *event_id);

/* Reads. A lookup by id-or-name tries the id first. */
int db_vm_get(struct db_store *db, const char *id_or_name, struct db_vm *out); /* -ENOENT */
int db_vm_list(struct db_store *db, const char *state_or_null, struct db_vm **out, size_t *count);
/* VMs named after `after` (NULL or "": from the first) by name, at most limit (0: all). */
int db_vm_list_page(struct db_store *db, const char *state_or_null, const char *after, size_t limit,
                    struct db_vm **out, size_t *count);
int db_vm_count(struct db_store *db, const char *state_or_null, uint64_t *out);
/* What the VMs in one state add up to (admission control, GET /v1/host). */
struct db_state_total {
    char state[16];
    uint64_t vms, vcpus, memory_mib;
};
/* One entry per state that has VMs, at most max. */
int db_vm_totals(struct db_store *db, struct db_state_total *out, size_t max, size_t *count);
/* What is read between these two is one snapshot (a deferred read transaction). */
int db_read_begin(struct db_store *db);
void db_read_end(struct db_store *db);
void db_vm_clear(struct db_vm *vm);
void db_vm_list_free(struct db_vm *vms, size_t count);
/* Calls fn for each event with id > since, oldest first, at most limit (0: all); stops when fn returns non-zero. */
int db_events_since(struct db_store *db, int64_t since, size_t limit,
                    int (*fn)(void *opaque, const struct db_event *ev), void *opaque);
int64_t db_last_event_id(struct db_store *db);
/*
 * Cluster (migration 008): an event of another member, copied here with origin (its name),
 * in one transaction with the member's relay position (origin_id, the event's id there;
 * member_id is the member's lasting id). -EALREADY when origin_id is not past the position:
 * a relay that reconnected never copies an event twice. ev's type, vm_id, data_json are used.
 */
int db_event_relay(struct db_store *db, const char *member_id, const char *origin,
                   int64_t origin_id, const struct db_event *ev, int64_t *event_id);
/* The member's relay position: the last of its event ids copied here (0: none yet). */
int db_event_relay_position(struct db_store *db, const char *member_id, int64_t *last);
/* Sets the member's position when it has none: a first relay starts at the member's now. */
int db_event_relay_start(struct db_store *db, const char *member_id, int64_t last);
/*
 * Retention. The events kept are always one run of ids, from
 * db_events_oldest_id() (the next id to come when none is kept) to
 * db_last_event_id(): a reader that last saw an id below oldest - 1 has
 * missed events that are gone. Negative errno on failure.
 */
int64_t db_events_oldest_id(struct db_store *db);
/*
 * Deletes, in one transaction, the oldest events that are older than
 * before_ts (unix ms) or beyond the newest keep_count, at most batch of them,
 * oldest first, stopping at the first event that is neither. *deleted (may
 * be NULL) says how many went: batch means there may be more.
 */
int db_events_prune(struct db_store *db, int64_t before_ts, uint64_t keep_count, size_t batch,
                    size_t *deleted);
int64_t db_size_bytes(struct db_store *db);

/*
 * Managed networks (migration 003). Each write commits with its event:
 * network.created / .updated / .deleted ({"name","cidr","bridge"}),
 * network.forward_added / .forward_removed ({"network","id","protocol",
 * "host_port","vm_id","vm","vm_port"}).
 */
#define DB_BRIDGE_MAX 15 /* IFNAMSIZ - 1 */
#define DB_CIDR_MAX   18 /* "255.255.255.255/32" */
#define DB_IPV4_MAX   15

struct db_network {
    char name[DB_NAME_MAX + 1];
    char bridge[DB_BRIDGE_MAX + 1];
    char cidr[DB_CIDR_MAX + 1];
    bool nat, dhcp;
    char dns_domain[DB_NAME_MAX + 1];
    uint32_t mtu;
    int64_t created_at, updated_at; /* unix time in ms; set by the store */
};

struct db_forward {
    int64_t id; /* set by db_forward_insert */
    char network[DB_NAME_MAX + 1];
    char protocol[4]; /* "tcp" | "udp" */
    char host_address[DB_IPV4_MAX + 1]; /* "" for every host address */
    uint32_t host_port;
    char vm_id[DB_ID_LEN + 1];
    uint32_t vm_port;
    int64_t created_at;
};

int db_network_insert(struct db_store *db, const struct db_network *net, int64_t *event_id); /* -EEXIST: name, bridge or cidr taken */
int db_network_update(struct db_store *db, const struct db_network *net, int64_t *event_id); /* nat, dhcp, dns_domain, mtu; -ENOENT */
int db_network_delete(struct db_store *db, const char *name, int64_t *event_id); /* and its forwards; -ENOENT */
int db_network_get(struct db_store *db, const char *name, struct db_network *out); /* -ENOENT */
int db_network_list(struct db_store *db, struct db_network **out, size_t *count); /* by name; free() */
int db_forward_insert(struct db_store *db, struct db_forward *fwd, int64_t *event_id); /* -EEXIST, -ENOENT (network or VM) */
int db_forward_delete(struct db_store *db, const char *network, int64_t id, int64_t *event_id); /* -ENOENT */
/* Forwards of one network (NULL: all), by id; free(). */
int db_forward_list(struct db_store *db, const char *network_or_null, struct db_forward **out,
                    size_t *count);
/* The daemon's own settings: small strings by key. */
int db_setting_get(struct db_store *db, const char *key, char *buf, size_t size); /* -ENOENT */
int db_setting_set(struct db_store *db, const char *key, const char *value);

/*
 * Why the last call on db that failed did so (SQLite's message, or the
 * store's own for a rejected argument), for logs and problem details: a bare
 * -EINVAL or -EIO does not say which CHECK failed or which I/O error occurred.
 * Not reset by successful calls; valid until the next call on db.
 */
const char *db_last_error(struct db_store *db);

/*
 * Storage (migration 004): images imported into a pool and volumes made in
 * one. Each write commits with its event: image.created / .ready / .failed /
 * .deleted ({"name","pool","state","format","size_bytes","sha256"[,"error"]}),
 * volume.created / .resized / .deleted ({"name","pool","size_mib","image"}).
 */
#define DB_SOURCE_MAX 1023
#define DB_ERROR_MAX  255

struct db_image {
    char name[DB_NAME_MAX + 1];
    char pool[DB_NAME_MAX + 1];
    char state[16];  /* importing | ready | failed */
    char format[8];  /* raw | qcow2: what it was imported from; stored raw */
    uint64_t size_bytes, source_bytes;
    char sha256[65]; /* hex, "" until known */
    char source[DB_SOURCE_MAX + 1]; /* "upload" or the path imported */
    char error[DB_ERROR_MAX + 1];   /* why it failed, "" otherwise */
    int64_t created_at, updated_at;
};

struct db_volume {
    char name[DB_NAME_MAX + 1];
    char pool[DB_NAME_MAX + 1];
    uint64_t size_mib;
    char image[DB_NAME_MAX + 1]; /* cloned from, "" for an empty volume */
    char clone[16];              /* empty | reflink | sparse-copy */
    bool readonly;
    int64_t created_at, updated_at;
};

/* A VM that names a volume in its disks. */
struct db_vm_ref {
    char id[DB_ID_LEN + 1];
    char name[DB_NAME_MAX + 1];
    bool readonly; /* the disk is read-only */
};

int db_image_insert(struct db_store *db, const struct db_image *img, int64_t *event_id); /* -EEXIST */
/* State, format, sizes, sha256 and error; event_type ("image.ready", ...) or NULL for none. */
int db_image_update(struct db_store *db, const struct db_image *img, const char *event_type,
                    int64_t *event_id); /* -ENOENT */
int db_image_delete(struct db_store *db, const char *name, int64_t *event_id); /* -ENOENT, -EBUSY: volumes */
int db_image_get(struct db_store *db, const char *name, struct db_image *out); /* -ENOENT */
int db_image_list(struct db_store *db, struct db_image **out, size_t *count); /* by name; free() */
int db_volume_insert(struct db_store *db, const struct db_volume *vol, int64_t *event_id); /* -EEXIST, -ENOENT: image */
int db_volume_resize(struct db_store *db, const char *name, uint64_t size_mib, int64_t *event_id); /* -ENOENT */
int db_volume_delete(struct db_store *db, const char *name, int64_t *event_id); /* -ENOENT */
int db_volume_get(struct db_store *db, const char *name, struct db_volume *out); /* -ENOENT */
int db_volume_list(struct db_store *db, struct db_volume **out, size_t *count); /* by name; free() */
/* The VMs whose disks name the volume ({"volume": name}), by VM name; free(). */
int db_volume_users(struct db_store *db, const char *name, struct db_vm_ref **out, size_t *count);

/*
 * Snapshots (migration 006): one row per snapshot of a VM, deleted with the VM. Each write
 * commits with its event: snapshot.created / .deleted
 * ({"vm","snapshot","paused_ms","memory_allocated_bytes"}).
 */
struct db_snapshot {
    char vm_id[DB_ID_LEN + 1];
    char name[DB_NAME_MAX + 1];
    char *info_json;    /* a JSON object the daemon writes whole; owned */
    int64_t created_at; /* unix time in ms; 0 on insert: now */
};

int db_snapshot_insert(struct db_store *db, const struct db_snapshot *s, int64_t *event_id); /* -EEXIST, -ENOENT: VM */
int db_snapshot_delete(struct db_store *db, const char *vm_id, const char *name,
                       int64_t *event_id); /* -ENOENT */
int db_snapshot_get(struct db_store *db, const char *vm_id, const char *name,
                    struct db_snapshot *out); /* -ENOENT; free(out->info_json) */
/* A VM's (NULL: every VM's) snapshots, oldest first; db_snapshot_list_free(). */
int db_snapshot_list(struct db_store *db, const char *vm_id_or_null, struct db_snapshot **out,
                     size_t *count);
void db_snapshot_list_free(struct db_snapshot *list, size_t count);

#endif
