/* Opens a VM's files for its worker (see vm_files.h). */
#include "vm_files.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int add(struct vm_files *f, const char *field, const char *path,
               const struct api_limits *limits, bool writable, bool blockdev,
               struct api_error *err)
{
    int fd, rc = api_open_beneath(field, path, limits, writable, blockdev, &fd, err);

    if (rc)
        return rc;
    f->fds[f->count] = fd;
    return (int)f->count++;
}

int vm_files_open(const struct api_limits *limits, const struct api_limits *pool_limits,
                  const struct db_vm *vm, const char *firmware, struct vm_files *out,
                  struct api_error *err)
{
    json_t *disks = json_loads(vm->disks_json ? vm->disks_json : "[]", 0, NULL), *item;
    size_t i;
    int idx;

    *out = (struct vm_files){.kernel = -1, .initrd = -1, .firmware = -1};
    if (strcmp(vm->boot, "disk") == 0) {
        int fd = open(firmware, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            api_fail(err, API_ERR_INTERNAL,
                     "firmware %s (the daemon's --firmware, for \"boot\": \"disk\"): %s", firmware,
                     strerror(errno));
            goto fail;
        }
        out->firmware = (int)out->count;
        out->fds[out->count++] = fd;
    } else {
        if ((idx = add(out, "kernel", vm->kernel, limits, false, false, err)) < 0)
            goto fail;
        out->kernel = idx;
    }
    if (vm->initrd) {
        if ((idx = add(out, "initrd", vm->initrd, limits, false, false, err)) < 0)
            goto fail;
        out->initrd = idx;
    }
    json_array_foreach(disks, i, item) {
        char field[40];

        if (out->nr_disks == API_MAX_DISKS)
            break;
        bool volume = json_is_true(json_object_get(item, "pool"));

        snprintf(field, sizeof(field), "disks[%zu].%s", i, volume ? "volume" : "path");
        idx = add(out, field, json_string_value(json_object_get(item, "path")),
                  volume ? pool_limits : limits, !json_is_true(json_object_get(item, "readonly")),
                  !volume, err);
        if (idx < 0)
            goto fail;
        out->disks[out->nr_disks++] = idx;
    }
    json_decref(disks);
    return 0;
fail:
    json_decref(disks);
    vm_files_close(out);
    return -1;
}

void vm_files_close(struct vm_files *f)
{
    for (unsigned i = 0; i < f->count; i++)
        close(f->fds[i]);
    f->count = 0;
}
