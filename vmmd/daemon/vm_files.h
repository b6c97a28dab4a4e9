/*
 * The files a VM uses (kernel, initrd or firmware, disks), opened by the daemon itself
 * at each start, beneath the image directories with no symlink in the path
 * (api_open_beneath), and handed to the worker as inherited descriptors: a
 * path checked at create time is never trusted again by name.
 */
#ifndef VMMD_VM_FILES_H
#define VMMD_VM_FILES_H

#include "api/api.h"
#include "db/store.h"

#define VM_FILES_MAX (2 + API_MAX_DISKS)

struct vm_files {
    int fds[VM_FILES_MAX]; /* in order: kernel and initrd (if any) or firmware, each disk */
    unsigned count;
    int kernel, initrd, firmware;     /* indexes into fds; -1 when none */
    int disks[API_MAX_DISKS];         /* index into fds of disk i */
    unsigned nr_disks;
};

/*
 * Opens them all or none; err names the field (403 symlink or outside, 422
 * otherwise). A disk marked "pool" (a volume storage_resolve_disks() turned
 * into its file) is opened beneath the pools' directories instead. A
 * disk-booted VM gets firmware instead of a kernel: the operator's file, not
 * under the image directories (a 500 naming it when it cannot be opened).
 */
int vm_files_open(const struct api_limits *limits, const struct api_limits *pool_limits,
                  const struct db_vm *vm, const char *firmware, struct vm_files *out,
                  struct api_error *err);
void vm_files_close(struct vm_files *f);

#endif
