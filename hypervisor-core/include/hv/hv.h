/*
 * libhvcore's public interface: create a KVM virtual machine from a kernel
 * image (or firmware that boots its disk), run its vCPUs on threads of their own, control and observe it.
 * Everything hangs off one struct hv_vm; the library never exits the process.
 * Functions return 0 or a negative errno; the ones that can fail for a reason
 * a user must read also fill an error buffer with one line of text.
 */
#ifndef HV_HV_H
#define HV_HV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum hv_mode {
    HV_MODE_FULL, /* unmodified guest, bare-metal looking CPU, emulated PC devices */
    HV_MODE_PV,   /* KVM paravirt CPUID leaves, kvm-clock */
};

/* Why a VM stopped running. */
enum hv_stop_reason {
    HV_STOP_NONE = 0,  /* still running */
    HV_STOP_POWEROFF,  /* ACPI power off, or the debug-exit port */
    HV_STOP_REBOOT,    /* reset line (i8042, port 0xCF9) */
    HV_STOP_CRASH,     /* triple fault or an internal KVM error */
    HV_STOP_REQUESTED, /* hv_vm_request_stop() */
    HV_STOP_ERROR,     /* the VMM itself failed (KVM_RUN error, ...) */
};

/* Exit counters, by the reason KVM gave or what userspace made of it. */
#define HV_EXIT_KINDS(X)                                                                           \
    X(IO, "io")                                                                                    \
    X(MMIO, "mmio")                                                                                \
    X(IO_UNHANDLED, "io_unhandled")                                                                \
    X(MMIO_UNHANDLED, "mmio_unhandled")                                                            \
    X(HLT, "hlt")                                                                                  \
    X(SHUTDOWN, "shutdown")                                                                        \
    X(INTERNAL_ERROR, "internal_error")                                                            \
    X(SYSTEM_EVENT, "system_event")                                                                \
    X(INTR, "intr")                                                                                \
    X(OTHER, "other")

enum hv_exit_kind {
#define HV_X_ENUM(name, str) HV_EXIT_##name,
    HV_EXIT_KINDS(HV_X_ENUM)
#undef HV_X_ENUM
        HV_EXIT_KIND_COUNT
};

const char *hv_exit_kind_name(enum hv_exit_kind kind);
const char *hv_stop_reason_name(enum hv_stop_reason reason);
const char *hv_mode_name(enum hv_mode mode);
/* "52:54:00:12:34:56" -> 6 bytes; -EINVAL unless six hex pairs with a unicast first byte. */
int hv_mac_parse(const char *s, uint8_t mac[6]);
int hv_mode_parse(const char *s, enum hv_mode *out);

/* Receives everything the guest writes to its serial console. Called from vCPU threads. */
typedef void (*hv_console_write_fn)(void *opaque, const uint8_t *buf, size_t len);

/*
 * I/O limits of a disk, or of each direction of a NIC (tx and rx get a bucket each): token
 * buckets of bytes and of operations (requests, packets). A rate of 0 is unlimited; a burst
 * of 0 is one second's worth of the rate. A guest past its limit is delayed, never refused.
 */
struct hv_io_limits {
    uint64_t bytes_per_s, ops_per_s, burst_bytes, burst_ops;
};

#define HV_IO_LIMIT_MAX_BYTES_PER_S (1ull << 40)
#define HV_IO_LIMIT_MAX_OPS_PER_S   10000000ull
#define HV_IO_LIMIT_MAX_BURST_BYTES (1ull << 46) /* a minute at the highest rate */
#define HV_IO_LIMIT_MAX_BURST_OPS   1000000000ull

/* A raw disk image: virtio-blk in pv mode, an ATA disk on the PIIX IDE controller in full mode. */
struct hv_disk_config {
    const char *path;
    bool readonly;
    /* With has_fd: an open descriptor of path (read-write unless readonly), used instead of
     * opening path, which then only names the disk. libhvcore dups it; the caller keeps fd. */
    bool has_fd;
    int fd;
    struct hv_io_limits limits;
};

/* A network interface over a host tap device: virtio-net in pv mode, an emulated Intel
 * 82540EM (e1000) in full mode. */
struct hv_nic_config {
    const char *tap;    /* name of an existing tap interface, or one to create */
    const char *bridge; /* instead of tap: create a tap ("vmmdN") and add it to this bridge */
    uint8_t mac[6];
    bool mac_set;     /* otherwise a locally administered MAC is derived from the tap name */
    /* With has_fd: a tap hv_tap_open() already set up (libhvcore dups it). A sandboxed
     * worker opens its taps first: it cannot once it is in its own network namespace. */
    bool has_fd;
    int fd;
    struct hv_io_limits limits;
};

/* Opens (creating it if needed) the NIC's tap with a virtio-net header, adds it to the
 * bridge if one is named, and brings it up. Returns the fd, its name in name[16]. */
int hv_tap_open(const struct hv_nic_config *cfg, char name[16], char *err, size_t errlen);

/* The threads libhvcore starts, for hv_vm_config.thread_start. */
enum hv_thread_kind {
    HV_THREAD_VCPU, /* runs KVM_RUN and the device models behind port and MMIO exits */
    HV_THREAD_IO,   /* one per virtio device and e1000: queues, disk and tap I/O, interrupts */
};

#define HV_MAX_DISKS 16 /* full mode: 4 (two IDE channels, master and slave) */
#define HV_MAX_IDE_DISKS 4
#define HV_MAX_NICS 8

struct hv_vm_config {
    enum hv_mode mode;
    unsigned vcpus;      /* 1 .. HV_MAX_VCPUS */
    uint64_t memory_mib; /* >= HV_MIN_MEMORY_MIB */
    const char *kernel;  /* bzImage (boot protocol >= 2.06) or ELF64 */
    const char *initrd;  /* optional */
    /* Open descriptors to read instead of the paths (which then only name them in
     * messages): how the daemon hands over files it opened safely itself. */
    bool kernel_has_fd, initrd_has_fd;
    int kernel_fd, initrd_fd;
    const char *cmdline; /* optional */
    /* Instead of a kernel: a PC firmware image (SeaBIOS's bios-256k.bin) the VM starts in,
     * at the reset vector, to boot from its first disk. With firmware_has_fd, read fd. */
    const char *firmware;
    bool firmware_has_fd;
    int firmware_fd;
    hv_console_write_fn console_write;
    void *console_opaque;
    const struct hv_disk_config *disks;
    unsigned nr_disks;
    const struct hv_nic_config *nics;
    unsigned nr_nics;
    /* With kvm_has_fd: an open /dev/kvm to use (libhvcore dups it). */
    bool kvm_has_fd;
    int kvm_fd;
    /* Called first thing on every thread libhvcore starts, before it touches the guest
     * (a sandbox installs the thread's system call filter here). */
    void (*thread_start)(void *opaque, enum hv_thread_kind kind);
    void *thread_opaque;
    /*
     * Restore: with restore_has_fd the VM is built from this configuration (which must match
     * the snapshot's mode, vCPUs, memory, disks and their sizes, and NIC count) but starts where
     * the snapshot in restore_state_fd left it, its RAM a copy-on-write mapping of
     * restore_mem_fd (pages are read on first touch). The kernel is not loaded again; a
     * firmware image is, since it lives outside RAM. libhvcore dups both fds.
     */
    bool restore_has_fd;
    int restore_state_fd, restore_mem_fd;
    /* The target of a live migration: RAM is left empty and no kernel is loaded; the caller
     * fills RAM (hv_vm_memory) and then loads the state (hv_vm_load_state) before starting. */
    bool incoming;
};

#define HV_MAX_VCPUS       64
#define HV_MIN_MEMORY_MIB  16
#define HV_MAX_MEMORY_MIB  (1024 * 1024)
#define HV_DEFAULT_VCPUS   1
#define HV_DEFAULT_MEMORY  256

struct hv_vm;

/* throttled_ns: time requests waited for their I/O limit; throttled_events: how many waits
 * (for a NIC, both directions together). */
struct hv_disk_stats {
    uint64_t read_bytes, write_bytes, read_ops, write_ops, flush_ops, errors;
    uint64_t throttled_ns, throttled_events;
};

struct hv_nic_stats {
    uint64_t rx_bytes, tx_bytes, rx_packets, tx_packets, drops;
    uint64_t throttled_ns, throttled_events;
};

/* The counters of hv_disk_stats / hv_nic_stats by name, for printing them
 * generically (each a uint64_t at offset); the lists end with a NULL name. */
struct hv_stat_field {
    const char *name;
    size_t offset;
};
extern const struct hv_stat_field hv_disk_stat_fields[];
extern const struct hv_stat_field hv_nic_stat_fields[];

static inline uint64_t hv_stat_value(const void *stats, const struct hv_stat_field *f)
{
    return *(const uint64_t *)((const char *)stats + f->offset);
}

struct hv_vm_stats {
    uint64_t exits[HV_EXIT_KIND_COUNT];
    /* Per device, in configuration order. */
    unsigned nr_disks, nr_nics;
    struct hv_disk_stats disks[HV_MAX_DISKS];
    struct hv_nic_stats nics[HV_MAX_NICS];
    uint64_t io_writes_ignored; /* writes to ports or MMIO nobody claims */
    uint64_t memory_bytes;      /* guest RAM size */
    uint64_t uptime_ns;         /* since hv_vm_start() */
    uint64_t start_ns;          /* CLOCK_MONOTONIC at hv_vm_start() */
    uint64_t first_exit_ns;     /* CLOCK_MONOTONIC at the first exit of any vCPU, 0 if none */
};

/* Builds the VM: KVM objects, guest RAM, devices, the loaded kernel. */
int hv_vm_create(const struct hv_vm_config *cfg, struct hv_vm **out, char *err, size_t errlen);
void hv_vm_destroy(struct hv_vm *vm);

/* Starts one thread per vCPU. */
int hv_vm_start(struct hv_vm *vm);
/* An fd that turns readable once the VM has stopped (for poll loops). */
int hv_vm_stopped_fd(const struct hv_vm *vm);
/* Blocks until every vCPU thread has ended; returns why the VM stopped. */
enum hv_stop_reason hv_vm_wait(struct hv_vm *vm);
/* A one-line description of the stop (crash details, debug-exit code). */
const char *hv_vm_stop_detail(const struct hv_vm *vm);
/* The value written to the debug-exit port, 0 otherwise. */
int hv_vm_exit_code(const struct hv_vm *vm);

void hv_vm_request_stop(struct hv_vm *vm);
/* Stops the VM as if the guest had reset the machine (HV_STOP_REBOOT). */
void hv_vm_request_reboot(struct hv_vm *vm);
int hv_vm_pause(struct hv_vm *vm);
int hv_vm_resume(struct hv_vm *vm);

/* Feeds bytes to the serial console's receiver; returns how many were taken. */
size_t hv_vm_console_input(struct hv_vm *vm, const uint8_t *buf, size_t len);
/* Presses Ctrl-Alt-Del on the emulated keyboard (a polite shutdown request). */
int hv_vm_send_ctrl_alt_del(struct hv_vm *vm);

void hv_vm_get_stats(struct hv_vm *vm, struct hv_vm_stats *out);

/* Changes a running disk's or NIC's I/O limits at once (any thread). index in configuration
 * order; -ENODEV if there is no such device, -EINVAL for limits out of bounds. */
int hv_vm_set_disk_limits(struct hv_vm *vm, unsigned index, const struct hv_io_limits *limits);
int hv_vm_set_nic_limits(struct hv_vm *vm, unsigned index, const struct hv_io_limits *limits);
/*
 * Snapshots. The state file is a header (magic "VMMDSNAP", format version, payload length,
 * CRC-32C) and tagged, versioned sections: the machine's shape, every vCPU, the irqchip, the
 * PIT, the KVM clock and every device. Guest RAM goes to a file of its own, byte for byte
 * (all-zero pages left as holes), so a restore can map it.
 */
#define HV_SNAPSHOT_FORMAT_VERSION 1
#define HV_SNAPSHOT_STATE_MAX (64u << 20) /* a state file is read whole; bigger is refused */

struct hv_snapshot_info {
    uint64_t state_bytes;  /* state file size */
    uint64_t memory_bytes; /* guest RAM size (the memory file's length) */
    uint64_t memory_written; /* bytes of RAM actually written (not holes) */
    uint64_t paused_ns;    /* how long the vCPUs were stopped for it */
};

/* What a state file says about the machine it holds (read without building a VM). */
struct hv_snapshot_meta {
    enum hv_mode mode;
    unsigned vcpus;
    uint64_t memory_mib;
    bool firmware;
    unsigned nr_disks, nr_nics;
    uint64_t disk_bytes[HV_MAX_DISKS];
    bool disk_readonly[HV_MAX_DISKS];
    uint64_t saved_realtime_ns; /* CLOCK_REALTIME when it was taken */
};

/*
 * Saves the running or paused VM: stops the vCPUs (completing any port or MMIO access in
 * flight), parks the device threads (requests in flight complete first), writes the state to
 * state_fd and RAM to mem_fd (both truncated and written from offset 0, then fsynced), and
 * lets the VM go on unless HV_SNAPSHOT_LEAVE_PAUSED. A VM that was paused stays paused.
 */
#define HV_SNAPSHOT_LEAVE_PAUSED 1u
/* The host has no swap: a page of anonymous RAM that is not resident (mincore) was never
 * touched, so it is a hole without being read. Otherwise every page is read. */
#define HV_SNAPSHOT_NO_SWAP 2u
int hv_vm_snapshot(struct hv_vm *vm, int state_fd, int mem_fd, unsigned flags,
                   struct hv_snapshot_info *info, char *err, size_t errlen);
/* Checks a state file (header, version, checksum, every section's framing) and reads its
 * machine description. -EINVAL (corrupt, truncated), -EPROTO (a format this build does not
 * read) with one line in err. */
int hv_snapshot_inspect(int state_fd, struct hv_snapshot_meta *meta, char *err, size_t errlen);

/*
 * Live migration. The source freezes the VM (vCPUs stopped with their port and MMIO accesses
 * completed, device threads parked with nothing in flight), saves its state as a state file's
 * bytes, and thaws it again if the target did not take it. The target loads such bytes into a
 * VM made with hv_vm_config.incoming whose RAM it filled. hv_vm_freeze: -ESRCH when the VM
 * is not running; *was_paused for the thaw.
 */
int hv_vm_freeze(struct hv_vm *vm, bool *was_paused);
void hv_vm_thaw(struct hv_vm *vm, bool paused);
int hv_vm_save_state(struct hv_vm *vm, uint8_t **state, size_t *len, char *err, size_t errlen);
int hv_vm_load_state(struct hv_vm *vm, const uint8_t *state, size_t len, char *err,
                     size_t errlen);
/* Guest RAM as one host range: the part below the PCI hole, then the part above 4 GiB. */
void *hv_vm_memory(struct hv_vm *vm, uint64_t *size);

/*
 * Dirty pages, one bit per 4 KiB page of hv_vm_memory()'s range. Guest writes are KVM's dirty
 * log (cleared by each fetch); writes of the VM's own device threads, which KVM does not see,
 * are kept from the start on and returned by every fetch, so a page a device touched is sent
 * again in the final round, after the devices are parked. dirty_log_stop only with the
 * devices parked or the VM stopping.
 */
#define HV_PAGE_SIZE 4096ull
#define HV_DIRTY_BITMAP_WORDS(mem_bytes) (((mem_bytes) / HV_PAGE_SIZE + 63) / 64)
int hv_vm_dirty_log_start(struct hv_vm *vm);
/* Overwrites bitmap (HV_DIRTY_BITMAP_WORDS words) with the pages dirtied since the last fetch
 * (or the start), plus every page devices have written. */
int hv_vm_dirty_log_fetch(struct hv_vm *vm, uint64_t *bitmap);
void hv_vm_dirty_log_stop(struct hv_vm *vm);
/*
 * The pages of RAM that may hold anything but zeroes, as a bitmap like the dirty one: those
 * resident (mincore), and for a VM restored from a snapshot those in its memory file's data
 * (SEEK_DATA). Only right where the host does not swap (a swapped-out page is not resident):
 * callers say so with no_swap; without it, or when the kernel cannot tell, every bit is set.
 * Saves reading (faulting in) gigabytes of untouched RAM.
 */
void hv_vm_memory_in_use(struct hv_vm *vm, bool no_swap, uint64_t *bitmap);
/* into |= from (from may be NULL), and the number of set bits. */
void hv_dirty_bitmap_merge(uint64_t *into, const uint64_t *from, size_t words);
uint64_t hv_dirty_bitmap_count(const uint64_t *bitmap, size_t words);

/* Whether limits are within HV_IO_LIMIT_MAX_*. */
bool hv_io_limits_valid(const struct hv_io_limits *limits);

#endif
