/*
 * ring: a session's output, addressed by u64 offsets that count every byte the PTY produced.
 *
 * The buffer is a power of two so offset -> index is a mask. It is allocated on the first write
 * (an idle session costs nothing here) and doubled on demand up to `max`; once at max, a write
 * drops the oldest bytes and `start` moves forward. Readers (attachments, the store) keep only an
 * offset; one that falls below `start` is clamped forward and sees the gap in the offsets.
 */
#include <stdlib.h>
#include <string.h>

#include "relay.h"

#define RING_MIN 4096

/* Initialises an empty ring that may grow to max bytes (rounded down to a power of two). */
void ring_init(struct ring *r, size_t max)
{
    memset(r, 0, sizeof *r);
    size_t m = RING_MIN;
    while (m * 2 <= max)
        m *= 2;
    r->max = m;
}

/* Frees the buffer. */
void ring_free(struct ring *r)
{
    free(r->buf);
    r->buf = NULL;
    r->cap = 0;
}

static void ring_grow(struct ring *r, size_t need)
{
    size_t held = (size_t)(r->end - r->start);
    size_t ncap = r->cap ? r->cap : RING_MIN;
    while (ncap < held + need && ncap < r->max)
        ncap *= 2;
    if (ncap == r->cap)
        return;
    uint8_t *nb = xmalloc(ncap);
    /* Copy the held bytes to their new positions (offset & (ncap - 1)). */
    uint64_t off = r->start;
    while (off < r->end) {
        size_t i = (size_t)(off & (r->cap - 1));
        size_t n = r->cap - i;
        if (n > r->end - off)
            n = (size_t)(r->end - off);
        size_t j = (size_t)(off & (ncap - 1));
        size_t m = ncap - j < n ? ncap - j : n;
        memcpy(nb + j, r->buf + i, m);
        if (m < n)
            memcpy(nb, r->buf + i + m, n - m);
        off += n;
    }
    free(r->buf);
    r->buf = nb;
    r->cap = ncap;
}

/* Contiguous space for the next write; may overlap the oldest bytes once at max. */
uint8_t *ring_reserve(struct ring *r, size_t *n)
{
    size_t want = *n ? *n : 1;
    size_t held = (size_t)(r->end - r->start);
    if (held + want > r->cap && r->cap < r->max)
        ring_grow(r, want);
    size_t i = (size_t)(r->end & (r->cap - 1));
    size_t contig = r->cap - i;
    if (contig > want)
        contig = want;
    *n = contig;
    return r->buf + i;
}

/* Commits n bytes written at the reserved pointer, dropping what they overwrote. */
void ring_commit(struct ring *r, size_t n)
{
    r->end += n;
    if (r->end - r->start > r->cap)
        r->start = r->end - r->cap;
}

/* Appends a copy of p[0..n). */
void ring_append(struct ring *r, const void *p, size_t n)
{
    const uint8_t *q = p;
    /* Only the last cap bytes can survive; skip the rest, but count them. */
    while (n) {
        size_t m = n;
        uint8_t *dst = ring_reserve(r, &m);
        memcpy(dst, q, m);
        ring_commit(r, m);
        q += m;
        n -= m;
    }
}

/* Contiguous bytes held at off (clamped to start). */
const uint8_t *ring_peek(const struct ring *r, uint64_t off, size_t *n, uint64_t *at)
{
    if (off < r->start)
        off = r->start;
    *at = off;
    if (off >= r->end || !r->cap) {
        *n = 0;
        return NULL;
    }
    size_t i = (size_t)(off & (r->cap - 1));
    size_t contig = r->cap - i;
    if (contig > r->end - off)
        contig = (size_t)(r->end - off);
    *n = contig;
    return r->buf + i;
}

/* Copies up to n bytes from off (clamped to start) into dst. */
size_t ring_copy(const struct ring *r, uint64_t off, void *dst, size_t n, uint64_t *at)
{
    size_t done = 0;
    uint64_t first;
    size_t m;
    const uint8_t *p = ring_peek(r, off, &m, &first);
    *at = first;
    while (p && done < n) {
        if (m > n - done)
            m = n - done;
        memcpy((uint8_t *)dst + done, p, m);
        done += m;
        uint64_t dummy;
        p = ring_peek(r, first + done, &m, &dummy);
    }
    return done;
}
