/*
 * vmctl's HTTP client: one libcurl easy handle per request, over the
 * daemon's Unix socket or TCP with a bearer token. Errors come back as exit
 * codes (cli.h) so commands can return them directly.
 */
#ifndef VMCTL_HTTP_H
#define VMCTL_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "cli.h"

struct cli_response {
    long status;
    char *body; /* NUL-terminated; may hold binary console bytes before the NUL */
    size_t len;
};

/*
 * Sends method path with an optional JSON body. Returns 0 when the daemon
 * answered (any status), CLI_EXIT_UNREACHABLE (after printing why and a hint)
 * when it could not be reached.
 */
int cli_http_request(const struct cli_ctx *ctx, const char *method, const char *path,
                     const char *json_body, struct cli_response *resp);

/*
 * POSTs size bytes read from body (from its current position) to path as
 * application/octet-stream with that Content-Length: read and sent a chunk
 * at a time, never held whole. on_sent (may be NULL) hears the bytes read so
 * far after each chunk. A daemon that refuses early (a status before the
 * whole body went) still counts as an answer. Returns 0 when the daemon
 * answered, CLI_EXIT_UNREACHABLE (after printing why) otherwise.
 */
int cli_http_upload(const struct cli_ctx *ctx, const char *path, FILE *body, int64_t size,
                    void (*on_sent)(void *opaque, int64_t sent), void *opaque,
                    struct cli_response *resp);

/*
 * Streams GET path, handing each received chunk to on_data until it returns
 * nonzero, the server closes, timeout_ms (0 = none) passes, or no data came
 * for idle_ms (0 = wait forever; the replay of an endless stream is over).
 * Returns 0, CLI_EXIT_UNREACHABLE, or CLI_EXIT_REFUSED after printing the
 * problem.
 */
int cli_http_stream(const struct cli_ctx *ctx, const char *path,
                    int (*on_data)(void *opaque, const char *data, size_t len), void *opaque,
                    long timeout_ms, long idle_ms);

/*
 * For a status >= 400: prints the problem+json detail on stderr and returns
 * CLI_EXIT_REFUSED. Returns 0 for a success status.
 */
int cli_http_check(const struct cli_response *resp);

void cli_response_free(struct cli_response *resp);

/* Prints the "cannot reach the daemon" message with a hint. */
void cli_http_unreachable(const struct cli_ctx *ctx, const char *why);

/* Applies --cacert / --tls-pin to a libcurl handle (CURL *) for an https URL. */
void cli_http_set_tls(const struct cli_ctx *ctx, void *curl);

/* Percent-encodes s for a path segment or query value; caller frees. */
char *cli_http_escape(const char *s);

#endif
