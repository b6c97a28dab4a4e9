/*
 * GET /v1/vms?limit=N&after=NAME: keyset paging over the name-ordered list.
 * A page starts after the last name of the previous one, so VMs created or
 * deleted between two pages neither repeat nor shift the rest, as an offset
 * would make them. after without limit is refused rather than read as "the
 * whole rest": the unpaged list is its own request.
 */
#include "api_internal.h"

#include <string.h>

int api_parse_list_page(const char *limit, const char *after, size_t *limit_out,
                        struct api_error *err)
{
    size_t n = 0;

    *limit_out = 0;
    if (limit) {
        /* Digits only: no sign, space or hex that strtoul would let through. */
        size_t len = strspn(limit, "0123456789");
        if (len == 0 || len > 4 || limit[len] != '\0')
            return api_fail(err, API_ERR_BAD_REQUEST, "limit: must be an integer from 1 to %d",
                            API_LIST_LIMIT_MAX);
        for (size_t i = 0; i < len; i++)
            n = n * 10 + (size_t)(limit[i] - '0');
        if (n < 1 || n > API_LIST_LIMIT_MAX)
            return api_fail(err, API_ERR_BAD_REQUEST, "limit: must be an integer from 1 to %d",
                            API_LIST_LIMIT_MAX);
    }
    if (after && !limit)
        return api_fail(err, API_ERR_BAD_REQUEST, "after: needs limit (a page size)");
    if (after && !api_name_valid(after))
        return api_fail(err, API_ERR_BAD_REQUEST,
                        "after: '%.64s' is not a VM name (the last name of the previous page)",
                        after);
    *limit_out = n;
    return 0;
}
