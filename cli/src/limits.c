/*
 * `vmctl limits VM DEVICE [KEY=N]...`: reads the VM, changes one device's
 * I/O limits and PATCHes its disks or nics back; on a running VM the worker
 * applies them at once. Without KEY=N it prints the device's limits.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "limitspec.h"

/* "disk0" / "net1" into the definition's array name and the index. */
static int parse_device(const char *s, const char **array, size_t *index)
{
    const char *digits;
    char *end;

    if (strncmp(s, "disk", 4) == 0) {
        *array = "disks";
        digits = s + 4;
    } else if (strncmp(s, "net", 3) == 0) {
        *array = "nics";
        digits = s + 3;
    } else {
        return -1;
    }
    if (*digits < '0' || *digits > '9')
        return -1;
    *index = strtoul(digits, &end, 10);
    return *end ? -1 : 0;
}

int cli_cmd_limits(struct cli_ctx *ctx, int argc, char **argv)
{
    const struct cli_command *cmd = cli_find_command("limits");
    struct cli_response r;
    json_t *vm = NULL, *devices, *device;
    const char *array, *why = NULL;
    char line[256], *body;
    size_t index;
    int first, rc;

    if ((rc = cli_parse_options(ctx, cmd, argc, argv, NULL, NULL, NULL, 2, -1, &first)))
        return rc == CLI_HELP_SHOWN ? 0 : rc;
    if (parse_device(argv[first + 1], &array, &index))
        return cli_usage_error(cmd, "'%s' is not a device: disk0, disk1, ... or net0, net1, ...",
                               argv[first + 1]);
    if ((rc = cli_call_object(ctx, "GET", "vms", argv[first], NULL, NULL, &r, &vm)))
        return rc;
    cli_response_free(&r);
    devices = json_object_get(vm, array);
    device = json_array_get(devices, index);
    if (!device) {
        fprintf(stderr, "vmctl: %s has no %s\n", argv[first], argv[first + 1]);
        json_decref(vm);
        return CLI_EXIT_REFUSED;
    }
    for (int i = first + 2; i < argc; i++) {
        char *eq = strchr(argv[i], '=');
        int got;

        if (!eq) {
            json_decref(vm);
            return cli_usage_error(cmd, "'%s' is not KEY=N", argv[i]);
        }
        *eq = '\0';
        got = cli_limit_option(device, argv[i], eq + 1, &why);
        *eq = '=';
        if (got != 1) {
            json_decref(vm);
            return cli_usage_error(cmd, "'%s': %s", argv[i],
                                   got ? why
                                       : "keys are bytes_per_s, ops_per_s, burst_bytes and "
                                         "burst_ops");
        }
    }
    if (first + 2 < argc) {
        json_t *patch = json_pack("{s:O}", array, devices);

        body = patch ? json_dumps(patch, JSON_COMPACT) : NULL;
        json_decref(patch);
        json_decref(vm);
        vm = NULL;
        rc = body ? cli_call_object(ctx, "PATCH", "vms", argv[first], NULL, body, &r, &vm)
                  : CLI_EXIT_REFUSED;
        free(body);
        if (rc)
            return rc;
        cli_response_free(&r);
        device = json_array_get(json_object_get(vm, array), index);
    }
    if (ctx->output == CLI_OUTPUT_JSON) {
        json_t *limits = json_object_get(device, "limits");
        char *text = limits ? json_dumps(limits, JSON_COMPACT) : NULL;

        puts(text ? text : "{}"); /* the API's Limits object; {} for none */
        free(text);
    } else {
        cli_limits_describe(device, line, sizeof(line));
        printf("%s %s: %s\n", argv[first], argv[first + 1], line);
    }
    json_decref(vm);
    return 0;
}
