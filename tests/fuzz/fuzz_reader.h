/*
 * How the harnesses that run a program of operations read their input:
 * little-endian fields taken from the front; past the end every field reads
 * as zero bits, so a short input is still a valid (shorter) program.
 */
#ifndef VMMD_FUZZ_READER_H
#define VMMD_FUZZ_READER_H

#include <stddef.h>
#include <stdint.h>

struct reader {
    const uint8_t *p;
    size_t left;
};

static inline uint64_t take(struct reader *r, unsigned bytes)
{
    uint64_t v = 0;

    for (unsigned i = 0; i < bytes && r->left; i++, r->p++, r->left--)
        v |= (uint64_t)*r->p << (8 * i);
    return v;
}

#endif
