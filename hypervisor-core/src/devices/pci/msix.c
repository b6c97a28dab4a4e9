/* MSI-X table, pending bits and irqfd-based delivery. */
#include "devices/pci/msix.h"

#include <errno.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define MSIX_CAP_LEN 12
#define MSIX_CTRL_ENABLE 0x8000
#define MSIX_CTRL_FUNCTION_MASK 0x4000
#define MSIX_VECTOR_MASKED 0x1

static uint16_t msg_ctrl(const struct msix *m)
{
    return pci_cfg_get16(m->pdev, m->cap + 2);
}

bool msix_enabled(const struct msix *m)
{
    return m->pdev && (msg_ctrl(m) & MSIX_CTRL_ENABLE);
}

static bool vector_masked(const struct msix *m, const struct msix_vector *v)
{
    return (v->ctrl & MSIX_VECTOR_MASKED) || (msg_ctrl(m) & MSIX_CTRL_FUNCTION_MASK);
}

int msix_init(struct msix *m, struct pci_device *pdev, unsigned nr_vectors, unsigned bar,
              uint32_t table_offset, uint32_t pba_offset)
{
    const struct hv_platform *p = pdev->platform;
    int cap;

    if (nr_vectors == 0 || nr_vectors > MSIX_MAX_VECTORS || (table_offset & 7) || (pba_offset & 7))
        return -EINVAL;
    memset(m, 0, sizeof(*m));
    cap = pci_device_add_capability(pdev, PCI_CAP_ID_MSIX, MSIX_CAP_LEN);
    if (cap < 0)
        return cap;
    m->pdev = pdev;
    m->nr_vectors = nr_vectors;
    m->cap = (unsigned)cap;
    m->bar = bar;
    m->table_offset = table_offset;
    m->pba_offset = pba_offset;
    pci_cfg_put16(pdev, m->cap + 2, (uint16_t)(nr_vectors - 1));
    pci_cfg_put32(pdev, m->cap + 4, table_offset | bar);
    pci_cfg_put32(pdev, m->cap + 8, pba_offset | bar);
    pdev->wmask[m->cap + 3] = (MSIX_CTRL_ENABLE | MSIX_CTRL_FUNCTION_MASK) >> 8;
    for (unsigned i = 0; i < nr_vectors; i++) {
        struct msix_vector *v = &m->vectors[i];
        v->ctrl = MSIX_VECTOR_MASKED;
        v->gsi = v->fd = -1;
    }
    if (!p || !p->msi_route_alloc || !p->irqfd)
        return 0;
    for (unsigned i = 0; i < nr_vectors; i++) {
        struct msix_vector *v = &m->vectors[i];
        int rc;
        v->gsi = p->msi_route_alloc(p->opaque);
        if (v->gsi < 0)
            return v->gsi;
        v->fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (v->fd < 0)
            return -errno;
        if ((rc = p->irqfd(p->opaque, v->fd, (unsigned)v->gsi, true)) < 0)
            return rc;
    }
    return 0;
}

void msix_destroy(struct msix *m)
{
    const struct hv_platform *p = m->pdev ? m->pdev->platform : NULL;

    for (unsigned i = 0; i < m->nr_vectors; i++) {
        struct msix_vector *v = &m->vectors[i];
        if (v->fd < 0)
            continue;
        if (p && p->irqfd && v->gsi >= 0)
            p->irqfd(p->opaque, v->fd, (unsigned)v->gsi, false);
        close(v->fd);
        v->fd = -1;
    }
}

static void fire(struct msix *m, struct msix_vector *v)
{
    const struct hv_platform *p = m->pdev->platform;
    uint64_t one = 1;

    if (!v->routed && v->gsi >= 0 && p->msi_route_set) {
        if (p->msi_route_set(p->opaque, (unsigned)v->gsi, v->addr, v->data) < 0) {
            v->pending = true; /* not lost: the next notify or unmask tries again */
            return;
        }
        v->routed = true;
    }
    v->pending = false;
    if (v->fd >= 0 && write(v->fd, &one, sizeof(one)) < 0) {
        /* an eventfd write only fails on counter overflow: the interrupt is pending anyway */
    }
}

void msix_notify(struct msix *m, unsigned vector)
{
    struct msix_vector *v;

    if (!msix_enabled(m) || vector >= m->nr_vectors)
        return;
    v = &m->vectors[vector];
    if (vector_masked(m, v)) {
        v->pending = true;
        return;
    }
    fire(m, v);
}

static void deliver_unmasked_pending(struct msix *m)
{
    if (!msix_enabled(m))
        return;
    for (unsigned i = 0; i < m->nr_vectors; i++) {
        struct msix_vector *v = &m->vectors[i];
        if (v->pending && !vector_masked(m, v)) {
            v->pending = false;
            fire(m, v);
        }
    }
}

void msix_config_written(struct msix *m, unsigned reg, unsigned size)
{
    if (reg < m->cap + 4 && reg + size > m->cap + 2)
        deliver_unmasked_pending(m);
}

/* Table accesses are 4 or 8 bytes, naturally aligned (PCI 3.0 6.8.2); others are ignored. */
static bool table_access_ok(uint64_t offset, unsigned size)
{
    return (size == 4 || size == 8) && (offset & (size - 1)) == 0;
}

bool msix_bar_read(struct msix *m, uint64_t offset, void *data, unsigned size)
{
    uint64_t table_len = (uint64_t)m->nr_vectors * MSIX_ENTRY_SIZE;
    uint64_t pba_len = ((m->nr_vectors + 63) / 64) * 8;
    uint64_t val = 0;

    if (offset >= m->table_offset && offset - m->table_offset < table_len) {
        uint64_t off = offset - m->table_offset;
        const struct msix_vector *v = &m->vectors[off / MSIX_ENTRY_SIZE];
        uint8_t entry[MSIX_ENTRY_SIZE];
        if (!table_access_ok(off, size))
            return true;
        memcpy(entry, &v->addr, 8);
        memcpy(entry + 8, &v->data, 4);
        memcpy(entry + 12, &v->ctrl, 4);
        memcpy(data, entry + off % MSIX_ENTRY_SIZE, size);
        return true;
    }
    if (offset >= m->pba_offset && offset - m->pba_offset < pba_len) {
        uint64_t off = offset - m->pba_offset;
        if (!table_access_ok(off, size))
            return true;
        for (unsigned i = 0; i < 64 && off / 8 * 64 + i < m->nr_vectors; i++)
            if (m->vectors[off / 8 * 64 + i].pending)
                val |= 1ull << i;
        if (size == 4 && (off & 4))
            val >>= 32;
        memcpy(data, &val, size);
        return true;
    }
    return false;
}

bool msix_bar_write(struct msix *m, uint64_t offset, const void *data, unsigned size)
{
    uint64_t table_len = (uint64_t)m->nr_vectors * MSIX_ENTRY_SIZE;
    uint8_t entry[MSIX_ENTRY_SIZE];

    if (offset >= m->pba_offset && offset - m->pba_offset < ((m->nr_vectors + 63) / 64) * 8)
        return true; /* the PBA is read-only */
    if (offset < m->table_offset || offset - m->table_offset >= table_len)
        return false;
    offset -= m->table_offset;
    if (!table_access_ok(offset, size))
        return true;

    struct msix_vector *v = &m->vectors[offset / MSIX_ENTRY_SIZE];
    bool was_masked = vector_masked(m, v);
    memcpy(entry, &v->addr, 8);
    memcpy(entry + 8, &v->data, 4);
    memcpy(entry + 12, &v->ctrl, 4);
    memcpy(entry + offset % MSIX_ENTRY_SIZE, data, size);
    memcpy(&v->addr, entry, 8);
    memcpy(&v->data, entry + 8, 4);
    memcpy(&v->ctrl, entry + 12, 4);
    v->ctrl &= MSIX_VECTOR_MASKED;
    if (offset % MSIX_ENTRY_SIZE < 12)
        v->routed = false; /* the message changed: re-route before the next delivery */
    if (was_masked && !vector_masked(m, v) && v->pending) {
        v->pending = false;
        fire(m, v);
    }
    return true;
}

void msix_reset(struct msix *m)
{
    pci_cfg_put16(m->pdev, m->cap + 2, (uint16_t)(m->nr_vectors - 1));
    for (unsigned i = 0; i < m->nr_vectors; i++) {
        struct msix_vector *v = &m->vectors[i];
        v->addr = 0;
        v->data = 0;
        v->ctrl = MSIX_VECTOR_MASKED;
        v->pending = false;
        v->routed = false;
    }
}

#define MSIX_TAG SNAP_TAG('M', 'S', 'I', 'X')

void msix_save(const struct msix *m, struct snap_w *w)
{
    size_t mark = snap_w_begin(w, MSIX_TAG, 1);

    snap_w_u32(w, m->nr_vectors);
    for (unsigned i = 0; i < m->nr_vectors; i++) {
        const struct msix_vector *v = &m->vectors[i];
        snap_w_u64(w, v->addr);
        snap_w_u32(w, v->data);
        snap_w_u32(w, v->ctrl);
        snap_w_bool(w, v->pending);
    }
    snap_w_end(w, mark);
}

int msix_load(struct msix *m, struct snap_r *r)
{
    struct msix_vector saved[MSIX_MAX_VECTORS];
    const struct hv_platform *p = m->pdev ? m->pdev->platform : NULL;
    struct snap_r sub;
    uint16_t version;
    uint32_t n;

    if (snap_r_section(r, MSIX_TAG, "MSI-X", 1, &sub, &version))
        return r->err;
    n = snap_r_u32(&sub);
    if (snap_r_ok(&sub) && n != m->nr_vectors)
        snap_r_fail(&sub, -EINVAL, "MSI-X: %u vectors saved, the device has %u", n, m->nr_vectors);
    for (unsigned i = 0; i < m->nr_vectors && snap_r_ok(&sub); i++) {
        saved[i].addr = snap_r_u64(&sub);
        saved[i].data = snap_r_u32(&sub);
        saved[i].ctrl = snap_r_u32(&sub);
        saved[i].pending = snap_r_bool(&sub);
        if (snap_r_ok(&sub) && (saved[i].ctrl & ~MSIX_VECTOR_MASKED))
            snap_r_fail(&sub, -EINVAL, "MSI-X vector %u: control %#x", i, saved[i].ctrl);
    }
    if (snap_r_end(r, &sub))
        return r->err;
    for (unsigned i = 0; i < m->nr_vectors; i++) {
        struct msix_vector *v = &m->vectors[i];
        v->addr = saved[i].addr;
        v->data = saved[i].data;
        v->ctrl = saved[i].ctrl;
        v->pending = saved[i].pending;
        v->routed = false;
        /* A vector that may fire must have its route in the new VM's routing table before
         * the next notify: fire() would set it lazily, but from the I/O thread. */
        if (msix_enabled(m) && !vector_masked(m, v) && v->gsi >= 0 && p && p->msi_route_set &&
            p->msi_route_set(p->opaque, (unsigned)v->gsi, v->addr, v->data) == 0)
            v->routed = true;
    }
    return 0;
}
