#include "vm_nics.h"

#include <stdio.h>

uint32_t vmmd_id_hash(const char *s)
{
    uint32_t h = 2166136261u;

    for (const char *p = s; *p; p++)
        h = (h ^ (uint8_t)*p) * 16777619u;
    return h;
}

/* A VM's NICs keep their addresses across restarts, and the DHCP server knows them in advance. */
void vmmd_nic_mac(const char *vm_id, size_t nic, const char *mac_or_null, char out[18])
{
    uint32_t h = (vmmd_id_hash(vm_id) ^ (uint32_t)nic) * 16777619u;

    if (mac_or_null)
        snprintf(out, 18, "%s", mac_or_null);
    else
        snprintf(out, 18, "52:54:00:%02x:%02x:%02x", (h >> 16) & 0xff, (h >> 8) & 0xff, h & 0xff);
}
