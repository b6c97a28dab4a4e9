/*
 * IPv4 addresses and prefixes as the networks API spells them: dotted quads
 * of plain decimal (no octal "010", no "1.2.3", no spaces), so that what a
 * client wrote and what the daemon hands nftables and dnsmasq are the same.
 */
#include "api_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One decimal number of at most three digits without a leading zero; *s moves past it. */
static int octet(const char **s, unsigned max, unsigned *out)
{
    const char *p = *s;
    unsigned v = 0;
    int digits = 0;

    while (*p >= '0' && *p <= '9' && digits < 4) {
        v = v * 10 + (unsigned)(*p - '0');
        p++;
        digits++;
    }
    if (digits == 0 || digits > 3 || (digits > 1 && **s == '0') || v > max)
        return -1;
    *s = p;
    *out = v;
    return 0;
}

static int parse_addr(const char **s, uint32_t *out)
{
    uint32_t a = 0;
    unsigned o;

    for (int i = 0; i < 4; i++) {
        if (i && *(*s)++ != '.')
            return -1;
        if (octet(s, 255, &o))
            return -1;
        a = a << 8 | o;
    }
    *out = a;
    return 0;
}

int api_ipv4_parse(const char *s, uint32_t *out)
{
    if (!s || parse_addr(&s, out) || *s)
        return -1;
    return 0;
}

int api_ipv4_parse_cidr(const char *s, uint32_t *net, unsigned *prefix)
{
    unsigned p;

    if (!s || parse_addr(&s, net) || *s++ != '/' || octet(&s, 32, &p) || *s)
        return -1;
    *prefix = p;
    return 0;
}

uint32_t api_ipv4_mask(unsigned prefix)
{
    return prefix == 0 ? 0 : ~(uint32_t)0 << (32 - prefix);
}

void api_ipv4_format(uint32_t a, char out[16])
{
    snprintf(out, 16, "%u.%u.%u.%u", a >> 24, (a >> 16) & 255, (a >> 8) & 255, a & 255);
}
