/*
 * fw_cfg over I/O ports (see fw_cfg.h). The file directory is an item like
 * any other, rebuilt whenever a file is added: a big-endian count, then per
 * file its big-endian size and key, two reserved bytes and a 56-byte name.
 */
#include "fw_cfg.h"

#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define FW_CFG_VERSION 0x01 /* ID bit 0: the traditional interface; no DMA */

struct __attribute__((packed)) fw_cfg_dir_entry {
    uint32_t size;
    uint16_t select;
    uint16_t reserved;
    char name[FW_CFG_NAME_LEN];
};

/* The item a selector picks; NULL for keys this device does not have. */
static struct fw_cfg_item *item(struct fw_cfg *fc, uint16_t key)
{
    if (key < FW_CFG_MAX_ENTRY)
        return &fc->items[key];
    if (key >= FW_CFG_ARCH_LOCAL && key < FW_CFG_ARCH_LOCAL + FW_CFG_MAX_ARCH)
        return &fc->arch_items[key - FW_CFG_ARCH_LOCAL];
    return NULL;
}

static void fw_cfg_read(struct hv_device *dev, uint64_t offset, void *data, unsigned size)
{
    struct fw_cfg *fc = hv_container_of(dev, struct fw_cfg, dev);
    uint8_t *out = data;

    memset(data, 0, size);
    if (offset != FW_CFG_PORT_DATA - FW_CFG_PORT_SEL)
        return; /* the selector reads as 0 */
    /* QEMU's data port is one byte wide; wider reads return the next bytes in order. */
    for (unsigned i = 0; i < size; i++) {
        const struct fw_cfg_item *it = item(fc, fc->selector);
        if (!it || fc->offset >= it->len)
            return; /* past the end, or nothing there: zeros */
        out[i] = it->data[fc->offset++];
    }
}

static void fw_cfg_write(struct hv_device *dev, uint64_t offset, const void *data, unsigned size)
{
    struct fw_cfg *fc = hv_container_of(dev, struct fw_cfg, dev);
    uint16_t sel = 0;

    if (offset != 0 || size < 2)
        return; /* data port writes are ignored; the selector is 16 bits */
    memcpy(&sel, data, 2);
    /* Bit 14 was the "write" flag (a selector with it picks nothing); bit 15 the arch items. */
    fc->selector = sel;
    fc->offset = 0;
}

static void fw_cfg_reset(struct hv_device *dev)
{
    struct fw_cfg *fc = hv_container_of(dev, struct fw_cfg, dev);

    fc->selector = 0;
    fc->offset = 0;
}

int fw_cfg_add_item(struct fw_cfg *fc, uint16_t key, const void *data, uint32_t len)
{
    struct fw_cfg_item *it = item(fc, key);
    uint8_t *copy;

    if (!it)
        return -EINVAL;
    copy = malloc(len ? len : 1);
    if (!copy)
        return -ENOMEM;
    memcpy(copy, data, len);
    free(it->data);
    *it = (struct fw_cfg_item){.data = copy, .len = len};
    return 0;
}

int fw_cfg_add_u16(struct fw_cfg *fc, uint16_t key, uint16_t v)
{
    uint16_t le = htole16(v);

    return fw_cfg_add_item(fc, key, &le, sizeof(le));
}

int fw_cfg_add_u64(struct fw_cfg *fc, uint16_t key, uint64_t v)
{
    uint64_t le = htole64(v);

    return fw_cfg_add_item(fc, key, &le, sizeof(le));
}

static int rebuild_dir(struct fw_cfg *fc)
{
    size_t len = 4 + fc->nr_files * sizeof(struct fw_cfg_dir_entry);
    uint8_t *dir = calloc(1, len);
    uint32_t count = htobe32(fc->nr_files);
    int rc;

    if (!dir)
        return -ENOMEM;
    memcpy(dir, &count, 4);
    for (unsigned i = 0; i < fc->nr_files; i++) {
        struct fw_cfg_dir_entry e = {
            .size = htobe32(fc->items[FW_CFG_FILE_FIRST + i].len),
            .select = htobe16((uint16_t)(FW_CFG_FILE_FIRST + i)),
        };
        memcpy(e.name, fc->names[i], FW_CFG_NAME_LEN);
        memcpy(dir + 4 + i * sizeof(e), &e, sizeof(e));
    }
    rc = fw_cfg_add_item(fc, FW_CFG_FILE_DIR, dir, (uint32_t)len);
    free(dir);
    return rc;
}

int fw_cfg_add_file(struct fw_cfg *fc, const char *name, const void *data, uint32_t len)
{
    int rc;

    if (strlen(name) >= FW_CFG_NAME_LEN)
        return -ENAMETOOLONG;
    for (unsigned i = 0; i < fc->nr_files; i++)
        if (strcmp(fc->names[i], name) == 0)
            return -EEXIST;
    if (fc->nr_files == FW_CFG_MAX_FILES)
        return -ENOSPC;
    if ((rc = fw_cfg_add_item(fc, (uint16_t)(FW_CFG_FILE_FIRST + fc->nr_files), data, len)))
        return rc;
    memset(fc->names[fc->nr_files], 0, FW_CFG_NAME_LEN);
    strcpy(fc->names[fc->nr_files], name);
    fc->nr_files++;
    return rebuild_dir(fc);
}

int fw_cfg_init(struct fw_cfg *fc, const struct hv_platform *platform)
{
    static const struct hv_device_ops ops = {
        .read = fw_cfg_read, .write = fw_cfg_write, .reset = fw_cfg_reset};
    uint32_t id = htole32(FW_CFG_VERSION);
    int rc;

    memset(fc, 0, sizeof(*fc));
    fc->dev = (struct hv_device){.name = "fw-cfg", .ops = &ops, .platform = platform};
    if ((rc = fw_cfg_add_item(fc, FW_CFG_SIGNATURE, "QEMU", 4)) ||
        (rc = fw_cfg_add_item(fc, FW_CFG_ID, &id, sizeof(id))) || (rc = rebuild_dir(fc))) {
        fw_cfg_destroy(fc);
        return rc;
    }
    return 0;
}

void fw_cfg_destroy(struct fw_cfg *fc)
{
    for (unsigned i = 0; i < FW_CFG_MAX_ENTRY; i++) {
        free(fc->items[i].data);
        fc->items[i] = (struct fw_cfg_item){0};
    }
    for (unsigned i = 0; i < FW_CFG_MAX_ARCH; i++) {
        free(fc->arch_items[i].data);
        fc->arch_items[i] = (struct fw_cfg_item){0};
    }
    fc->nr_files = 0;
}

#define FWCF_TAG SNAP_TAG('F', 'W', 'C', 'F')

void fw_cfg_save(const struct fw_cfg *fc, struct snap_w *w)
{
    size_t mark = snap_w_begin(w, FWCF_TAG, 1);

    snap_w_u16(w, fc->selector);
    snap_w_u32(w, fc->offset);
    snap_w_end(w, mark);
}

int fw_cfg_load(struct fw_cfg *fc, struct snap_r *r)
{
    const struct fw_cfg_item *it;
    struct snap_r sub;
    uint16_t selector, ver;
    uint32_t offset;

    if (snap_r_section(r, FWCF_TAG, "fw_cfg", 1, &sub, &ver))
        return r->err;
    selector = snap_r_u16(&sub);
    offset = snap_r_u32(&sub);
    /* Any selector is one a guest may write (a missing item reads as zeros), but reads only
     * ever advance the offset up to the item's end. */
    it = item(fc, selector);
    if (snap_r_ok(&sub) && offset > (it ? it->len : 0))
        snap_r_fail(&sub, -EINVAL, "fw_cfg: offset %u past the end of item 0x%x (%u bytes)", offset,
                    selector, it ? it->len : 0);
    if (snap_r_end(r, &sub))
        return r->err;
    fc->selector = selector;
    fc->offset = offset;
    return 0;
}
