/* The token compare and the Origin policy (see access.h). */
#include "access.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

/*
 * Every byte of the candidate is compared, with no branch or early exit on
 * the bytes themselves: the differences are OR-ed together and looked at
 * once, after the loop. The loop runs over the candidate's length, which the
 * client chose, and reads token[i] only while i is within the token (the
 * token's length is public anyway: 64 hex digits). The volatile accumulator
 * keeps the compiler from turning the loop back into memcmp's early exit.
 */
bool access_token_equal(const char *candidate, const char *token)
{
    size_t lc = strlen(candidate), lt = strlen(token);
    volatile unsigned char diff = (unsigned char)(lc != lt);

    for (size_t i = 0; i < lc; i++)
        diff |= (unsigned char)(candidate[i] ^ (i < lt ? token[i] : 0));
    return lt > 0 && diff == 0;
}

/* origin is scheme://host, where host is the Host header less the scheme's default port. */
static bool is_own(const char *origin, const char *scheme, const char *host)
{
    size_t ls = strlen(scheme), lh = strlen(host);
    const char *dflt = strcmp(scheme, "https://") == 0 ? ":443" : ":80";

    if (strncasecmp(origin, scheme, ls) != 0)
        return false;
    origin += ls;
    if (lh > strlen(dflt) && strcmp(host + lh - strlen(dflt), dflt) == 0)
        lh -= strlen(dflt); /* "Host: h:443" is the origin https://h */
    return strlen(origin) == lh && strncasecmp(origin, host, lh) == 0;
}

bool access_origin_allowed(const char *origin, const char *host, enum access_listener listener,
                           const struct vmmd_opt_list *allowed)
{
    if (!origin)
        return true;
    for (unsigned i = 0; allowed && i < allowed->count; i++)
        if (strcasecmp(origin, allowed->items[i]) == 0)
            return true;
    if (!host || !*host || strcmp(origin, "null") == 0)
        return false;
    if (listener != ACCESS_TCP_PLAIN && is_own(origin, "https://", host))
        return true;
    return listener != ACCESS_TCP_TLS && is_own(origin, "http://", host);
}
