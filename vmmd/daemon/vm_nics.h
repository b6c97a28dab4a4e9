/* What the daemon derives from a VM's id for its NICs and its worker. */
#ifndef VMMD_VM_NICS_H
#define VMMD_VM_NICS_H

#include <stddef.h>
#include <stdint.h>

/* FNV-1a of the id: spreads MACs and sandbox uids. */
uint32_t vmmd_id_hash(const char *s);
/* The NIC's address: its own "mac" when it has one, else a stable locally administered one. */
void vmmd_nic_mac(const char *vm_id, size_t nic, const char *mac_or_null, char out[18]);

#endif
