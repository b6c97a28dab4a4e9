/*
 * vmctl console: the interactive serial console over the API's WebSocket
 * (GET /v1/vms/{id}/console with an Upgrade). Raw terminal; Ctrl-] detaches.
 */
#ifndef VMCTL_CONSOLE_H
#define VMCTL_CONSOLE_H

#include "cli.h"

#define CLI_CONSOLE_ESCAPE 0x1d /* Ctrl-], as in telnet and virsh */

/* Attaches to path (the console of the VM called name). Returns an exit code. */
int cli_console_attach(const struct cli_ctx *ctx, const char *name, const char *path);

#endif
