/*
 * api/: HTTP request bodies in, typed requests out; typed results in, JSON
 * out. Parsing and validation never touch VM state: the daemon's handlers
 * get a struct api_vm_def that is already checked (names, ranges, paths under
 * the image directories, MACs) or an api_error to send back as
 * application/problem+json.
 */
#ifndef API_API_H
#define API_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "db/store.h"

/* Error kinds, their HTTP status and problem title: one table. */
#define API_ERRORS(X)                                                                              \
    X(BAD_REQUEST, 400, "bad-request", "Bad Request")                                              \
    X(UNAUTHORIZED, 401, "unauthorized", "Unauthorized")                                           \
    X(FORBIDDEN, 403, "forbidden", "Forbidden")                                                    \
    X(NOT_FOUND, 404, "not-found", "Not Found")                                                    \
    X(METHOD_NOT_ALLOWED, 405, "method-not-allowed", "Method Not Allowed")                         \
    X(CONFLICT, 409, "conflict", "Conflict")                                                       \
    X(PAYLOAD_TOO_LARGE, 413, "payload-too-large", "Payload Too Large")                            \
    X(UNSUPPORTED_MEDIA, 415, "unsupported-media-type", "Unsupported Media Type")                  \
    X(UNPROCESSABLE, 422, "unprocessable", "Unprocessable Entity")                                 \
    X(INTERNAL, 500, "internal", "Internal Server Error")                                          \
    X(BAD_GATEWAY, 502, "bad-gateway", "Bad Gateway")                                              \
    X(UNAVAILABLE, 503, "unavailable", "Service Unavailable")                                      \
    X(INSUFFICIENT_STORAGE, 507, "insufficient-storage", "Insufficient Storage")

enum api_error_kind {
#define API_X_ENUM(name, status, slug, title) API_ERR_##name,
    API_ERRORS(API_X_ENUM)
#undef API_X_ENUM
};

struct api_error {
    enum api_error_kind kind;
    char detail[512];
};

int api_error_status(enum api_error_kind kind);
const char *api_error_title(enum api_error_kind kind);
/* Fills err; returns -1 so callers can `return api_fail(...)`. */
int api_fail(struct api_error *err, enum api_error_kind kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* {"type":"https://vmmd.dev/problems/<slug>","title","status","detail"}; caller frees. */
char *api_problem_json(const struct api_error *err);

#define API_BODY_MAX   (1024 * 1024)
#define API_MAX_DISKS  16
#define API_MAX_NICS   8
#define API_MAX_IDE_DISKS 4 /* mode full: two IDE channels, master and slave */
#define API_MAX_VCPUS  64
#define API_MIN_MEMORY 16
#define API_MAX_MEMORY (1024 * 1024)
#define API_CMDLINE_MAX 4095

struct api_limits {
    const char *const *image_dirs; /* absolute, canonical */
    size_t n_image_dirs;
};

enum api_field {
    API_F_NAME = 1u << 0,
    API_F_MODE = 1u << 1,
    API_F_VCPUS = 1u << 2,
    API_F_MEMORY = 1u << 3,
    API_F_KERNEL = 1u << 4,
    API_F_INITRD = 1u << 5,
    API_F_CMDLINE = 1u << 6,
    API_F_DISKS = 1u << 7,
    API_F_NICS = 1u << 8,
    API_F_AUTOSTART = 1u << 9,
    API_F_CPU_QUOTA = 1u << 10,
    API_F_CPU_WEIGHT = 1u << 11,
    API_F_BOOT = 1u << 12,
    API_F_HA = 1u << 13,
};

/* Fields a running VM's definition may change: applied to its cgroup at once. */
#define API_F_LIVE (API_F_NAME | API_F_AUTOSTART | API_F_CPU_QUOTA | API_F_CPU_WEIGHT | API_F_HA)

#define API_MAX_CPU_QUOTA_PCT  6400 /* 64 vCPUs at 100 % each; 0 is no quota */
#define API_MAX_CPU_WEIGHT     10000
#define API_DEFAULT_CPU_WEIGHT 100

/* Per-device I/O limits ("limits" of a disk or NIC): libhvcore's HV_IO_LIMIT_MAX_*. */
#define API_MAX_BYTES_PER_S (1ll << 40)
#define API_MAX_OPS_PER_S   10000000ll
#define API_MAX_BURST_BYTES (1ll << 46)
#define API_MAX_BURST_OPS   1000000000ll

/* PATCH of a running VM: whether a new disks/nics array is the stored one but for the
 * devices' "limits" (those apply live; anything else needs the VM stopped). */
bool api_devices_differ_only_in_limits(const char *stored_json, const char *new_json);
/* [limits, ...]: each device's stored limits ({} for none), for the worker's set_io_limits. */
json_t *api_io_limits_array(const char *devices_json);

/* A validated VM definition (create) or set of changes (patch: see present). */
struct api_vm_def {
    unsigned present; /* API_F_* given in the request */
    char name[DB_NAME_MAX + 1];
    char mode[8];
    char boot[8]; /* "kernel" (default) | "disk" */
    char ha[8];   /* "" (null) | "restart" */
    uint32_t vcpus;
    uint64_t memory_mib;
    char *kernel, *initrd, *cmdline; /* canonical paths; NULL when absent (or null in a patch) */
    char *disks_json, *nics_json;    /* normalised JSON arrays */
    bool autostart;
    uint32_t cpu_quota_pct, cpu_weight; /* cgroup CPU limits */
};

/*
 * POST /v1/vms: required name and kernel; defaults mode pv, vcpus 1, memory_mib 256,
 * autostart false, boot "kernel". With boot "disk": no kernel, initrd or cmdline (422
 * naming it) and at least one disk (422). Malformed JSON → 400; an unknown field → 400 naming it; a wrong type
 * or a value out of range → 422 naming the field; a path outside the image
 * directories (also through a symlink) → 403; a path that does not exist → 422.
 */
int api_parse_vm_create(const char *body, size_t len, const struct api_limits *limits,
                        struct api_vm_def *out, struct api_error *err);
/* PATCH /v1/vms/{id}: any subset of the same fields; initrd/cmdline may be null to clear. */
int api_parse_vm_patch(const char *body, size_t len, const struct api_limits *limits,
                       struct api_vm_def *out, struct api_error *err);
/* Applies a validated patch onto a stored VM (only fields in present). */
void api_vm_def_apply(const struct api_vm_def *def, struct db_vm *vm);
/* Copies a validated create into a fresh db_vm (no id, state stopped). */
void api_vm_def_to_db(const struct api_vm_def *def, struct db_vm *vm);
void api_vm_def_free(struct api_vm_def *def);
/* Rules across fields, on the whole (merged) definition: in mode full the disks are IDE
 * (at most API_MAX_IDE_DISKS); NICs are e1000s there; boot "disk" needs a disk and no
 * kernel, initrd or cmdline, boot "kernel" a kernel. 422 naming the field. */
int api_check_vm_devices(const struct db_vm *vm, struct api_error *err);

/* POST /v1/vms/{id}/shutdown body (optional): {"timeout_s": 1..3600}, default 30. */
int api_parse_shutdown(const char *body, size_t len, uint32_t *timeout_s, struct api_error *err);
/*
 * GET /v1/vms paging: limit 1..API_LIST_LIMIT_MAX (NULL: *limit_out 0, the
 * whole list); after, the last name of the previous page, only with limit.
 * 400 naming the parameter.
 */
#define API_LIST_LIMIT_MAX 1000
int api_parse_list_page(const char *limit, const char *after, size_t *limit_out,
                        struct api_error *err);

/* What a VM definition gets for a field it leaves out. */
#define API_DEFAULT_MODE       "pv"
#define API_DEFAULT_VCPUS      1
#define API_DEFAULT_MEMORY_MIB 256

/* A name is [a-z0-9][a-z0-9-]{0,62}. */
bool api_name_valid(const char *name);
/* Whether name has the form of a VM id (a lowercase UUID): such names are refused. */
bool api_name_is_uuid(const char *name);
/* Resolves path (realpath) and checks it lies under one of the image dirs. */
int api_check_path(const char *field, const char *path, const struct api_limits *limits,
                   char **canonical, struct api_error *err);

/*
 * Opens a stored (canonical) path at VM start, beneath the image directory
 * it lies under, with no symlink anywhere in the path (openat2 with
 * RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS), so a file swapped for a symlink
 * after create cannot lead anywhere else. Only a regular file (or, with
 * allow_blockdev, a block device) is accepted; a FIFO or device never blocks
 * the open. *fd is O_CLOEXEC; 403 (symlink, outside) or 422 naming field.
 */
int api_open_beneath(const char *field, const char *path, const struct api_limits *limits,
                     bool writable, bool allow_blockdev, int *fd, struct api_error *err);

/*
 * IPv4 in plain dotted decimal (host byte order): 0, or -1 for anything else
 * ("010.0.0.1", "1.2.3", trailing characters). A CIDR is "a.b.c.d/n", n 0..32.
 */
int api_ipv4_parse(const char *s, uint32_t *out);
int api_ipv4_parse_cidr(const char *s, uint32_t *net, unsigned *prefix);
uint32_t api_ipv4_mask(unsigned prefix);
void api_ipv4_format(uint32_t addr, char out[16]);

/* Managed networks (/v1/networks). */
#define API_NET_MIN_PREFIX 16
#define API_NET_MAX_PREFIX 29 /* 8 addresses: network, gateway, 5 guests, broadcast */
#define API_NET_MIN_MTU    576
#define API_NET_MAX_MTU    9000
#define API_NET_DEFAULT_MTU 1500
#define API_NET_DEFAULT_DOMAIN "vmmd"

enum api_network_field {
    API_NF_CIDR = 1u << 0,
    API_NF_NAT = 1u << 1,
    API_NF_DHCP = 1u << 2,
    API_NF_DNS_DOMAIN = 1u << 3,
    API_NF_MTU = 1u << 4,
};

struct api_network_def {
    unsigned present; /* API_NF_* given in the request */
    char name[DB_NAME_MAX + 1];
    char cidr[DB_CIDR_MAX + 1]; /* normalised; "" when absent (the daemon picks one) */
    bool nat, dhcp;
    char dns_domain[DB_NAME_MAX + 1];
    uint32_t mtu;
};

/*
 * POST /v1/networks: name required; cidr a.b.c.d/16..29 with no host bits;
 * defaults nat and dhcp true, dns_domain "vmmd", mtu 1500. 400 for unknown
 * fields, 422 naming the field for the rest.
 */
int api_parse_network_create(const char *body, size_t len, struct api_network_def *out,
                             struct api_error *err);
/* PATCH /v1/networks/{name}: nat, dhcp, dns_domain, mtu (name and cidr → 422). */
int api_parse_network_patch(const char *body, size_t len, struct api_network_def *out,
                            struct api_error *err);
/* The fields of def that are present, onto a stored network. */
void api_network_def_apply(const struct api_network_def *def, struct db_network *net);

/* POST /v1/networks/{name}/forwards. */
struct api_forward_def {
    char protocol[4];          /* "tcp" (default) | "udp" */
    char host_address[16];     /* "" for every host address */
    uint32_t host_port, vm_port; /* vm_port defaults to host_port */
    char vm[128];              /* id or name, looked up by the daemon */
};
int api_parse_forward_create(const char *body, size_t len, struct api_forward_def *out,
                             struct api_error *err);

/* The stored network with its gateway and DHCP range; the daemon adds what runs. */
json_t *api_network_to_json(const struct db_network *net);
/* A forward; vm_name and vm_ip may be NULL (the VM lost its static address). */
json_t *api_forward_to_json(const struct db_forward *fwd, const char *vm_name, const char *vm_ip);
/* ms since the epoch as RFC 3339 UTC with milliseconds; 0 → null. */
json_t *api_timestamp_json(int64_t ms);

/* The JSON a client sees for a VM: the definition, state, reason, timestamps (RFC 3339). */
json_t *api_vm_to_json(const struct db_vm *vm);

/* The OpenAPI 3 document (api/openapi.json, embedded at build time). */
extern const char api_openapi_json[];

/* Storage (/v1/images, /v1/volumes). */
#define API_VOLUME_MAX_MIB (16u * 1024 * 1024) /* 16 TiB */

enum api_image_format { API_IMAGE_AUTO, API_IMAGE_RAW, API_IMAGE_QCOW2 };

/* POST /v1/images: a JSON body importing a file, or an upload's query. */
struct api_image_def {
    char name[DB_NAME_MAX + 1];
    char pool[DB_NAME_MAX + 1]; /* "" for the default */
    enum api_image_format format;
    char *path; /* canonical, under an import directory; NULL for an upload */
};

/*
 * {"name", "path", "format"?, "pool"?}: path must resolve (no matter through
 * which symlinks) to a regular file under one of limits' directories (the
 * import directories) → 403 otherwise; format auto|raw|qcow2.
 */
int api_parse_image_import(const char *body, size_t len, const struct api_limits *limits,
                           struct api_image_def *out, struct api_error *err);
/* The query of an upload: name required, format and pool optional (NULL when absent). */
int api_parse_image_upload(const char *name, const char *format, const char *pool,
                           struct api_image_def *out, struct api_error *err);
void api_image_def_free(struct api_image_def *def);
const char *api_image_format_name(enum api_image_format f);

/* POST /v1/volumes: name, and image or size_mib (or both), pool, readonly. */
struct api_volume_def {
    char name[DB_NAME_MAX + 1];
    char image[DB_NAME_MAX + 1]; /* "" for an empty volume */
    char pool[DB_NAME_MAX + 1];  /* "" for the default */
    uint64_t size_mib;           /* 0: the image's size */
    bool readonly;
};
int api_parse_volume_create(const char *body, size_t len, struct api_volume_def *out,
                            struct api_error *err);
/* PATCH /v1/volumes/{name}: {"size_mib": N}. */
int api_parse_volume_patch(const char *body, size_t len, uint64_t *size_mib,
                           struct api_error *err);

/* Snapshots. POST /v1/vms/{id}/snapshot: {"name", "resume"}, both optional (a blank body too). */
struct api_snapshot_req {
    char name[DB_NAME_MAX + 1]; /* "" when not given */
    bool resume;                /* default true */
};
int api_parse_snapshot_create(const char *body, size_t len, struct api_snapshot_req *out,
                              struct api_error *err);
/* POST /v1/vms/{id}/restore: {"snapshot": name}. */
int api_parse_restore(const char *body, size_t len, char snapshot[DB_NAME_MAX + 1],
                      struct api_error *err);
/* Whether a POST /v1/vms body asks for a clone (has "from_snapshot"). */
bool api_body_is_clone(const char *body, size_t len);
/* POST /v1/vms {"name", "from_snapshot": "vm/snapshot", "autostart", "disks"}: the rest of the
 * definition comes from the snapshot; disks (kept as given) replace the snapshot's. */
struct api_clone_req {
    char name[DB_NAME_MAX + 1];
    char vm[DB_NAME_MAX + 1]; /* a name or an id (36 characters fit) */
    char snapshot[DB_NAME_MAX + 1];
    bool autostart_set, autostart;
    json_t *disks; /* NULL when not given */
};
int api_parse_clone(const char *body, size_t len, struct api_clone_req *out, struct api_error *err);
void api_clone_req_free(struct api_clone_req *req);

/* Live migration. POST /v1/vms/{id}/migrate. */
#define API_MIGRATE_DEFAULT_DOWNTIME_MS 300
#define API_MIGRATE_DEFAULT_TIMEOUT_S   120
struct api_migrate_req {
    char target[512]; /* unix:/path, http://host:port or https://host:port */
    char token[128];  /* the target's API token, "" when none */
    uint64_t max_downtime_ms, timeout_s;
    bool insecure; /* https: do not verify the target's certificate */
    char pin[128]; /* not from the body: a cluster member's public-key pin ("sha256//...") */
};
int api_parse_migrate(const char *body, size_t len, struct api_migrate_req *out,
                      struct api_error *err);
/* POST /v1/migrations {"vm": <VM object>, "timeout_s": N}: *vm referenced (decref). */
int api_parse_incoming(const char *body, size_t len, json_t **vm, uint64_t *timeout_s,
                       struct api_error *err);

#endif
