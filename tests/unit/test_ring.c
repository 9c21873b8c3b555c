/*
 * Unit tests of relay/ring.c: offsets from 0, lazy allocation, growth up to the cap, dropping the
 * oldest bytes at the cap, reads at any offset (clamped below start), and wrap-around, checked
 * against a reference copy of everything ever written.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "relay.h"

static uint8_t pattern(uint64_t off) { return (uint8_t)(off * 7 + (off >> 8)); }

static void write_pattern(struct ring *r, uint64_t *next, size_t n)
{
    uint8_t buf[70000];
    cr_assert_leq(n, sizeof buf);
    for (size_t i = 0; i < n; i++)
        buf[i] = pattern(*next + i);
    ring_append(r, buf, n);
    *next += n;
}

/* Every byte the ring claims to hold equals what was written at that offset. */
static void check_contents(const struct ring *r)
{
    uint8_t *got = malloc(r->end - r->start + 1);
    uint64_t at;
    size_t n = ring_copy(r, r->start, got, (size_t)(r->end - r->start), &at);
    cr_assert_eq(at, r->start);
    cr_assert_eq(n, r->end - r->start);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(got[i], pattern(r->start + i), "offset %llu", (unsigned long long)(r->start + i));
    free(got);
}

Test(ring, empty_ring_allocates_nothing)
{
    struct ring r;
    ring_init(&r, 1 << 20);
    cr_assert_null(r.buf);
    cr_assert_eq(r.cap, 0);
    cr_assert_eq(ring_start(&r), 0);
    cr_assert_eq(ring_end(&r), 0);
    size_t n;
    uint64_t at;
    cr_assert_null(ring_peek(&r, 0, &n, &at));
    cr_assert_eq(n, 0);
    ring_free(&r);
}

Test(ring, grows_by_doubling_up_to_the_cap)
{
    struct ring r;
    ring_init(&r, 64 * 1024);
    uint64_t next = 0;
    write_pattern(&r, &next, 100);
    cr_assert_eq(r.cap, 4096);
    write_pattern(&r, &next, 5000);
    cr_assert_eq(r.cap, 8192);
    write_pattern(&r, &next, 50000);
    cr_assert_eq(r.cap, 65536);
    cr_assert_eq(ring_start(&r), 0);
    cr_assert_eq(ring_end(&r), 55100);
    check_contents(&r);
    ring_free(&r);
}

Test(ring, drops_oldest_at_the_cap_and_keeps_offsets)
{
    struct ring r;
    ring_init(&r, 8192);
    uint64_t next = 0;
    for (int i = 0; i < 50; i++)
        write_pattern(&r, &next, 1000 + (size_t)i * 37);
    cr_assert_eq(r.cap, 8192);
    cr_assert_eq(ring_end(&r), next);
    cr_assert_eq(ring_start(&r), next - 8192);
    check_contents(&r);
    ring_free(&r);
}

Test(ring, a_write_larger_than_the_ring_keeps_its_tail)
{
    struct ring r;
    ring_init(&r, 4096);
    uint64_t next = 0;
    write_pattern(&r, &next, 10000);
    cr_assert_eq(ring_end(&r), 10000);
    cr_assert_eq(ring_start(&r), 10000 - 4096);
    check_contents(&r);
    ring_free(&r);
}

Test(ring, peek_clamps_below_start_and_stops_at_the_wrap)
{
    struct ring r;
    ring_init(&r, 4096);
    uint64_t next = 0;
    write_pattern(&r, &next, 6000); /* start 1904, end 6000: the data wraps in the buffer */
    size_t n;
    uint64_t at;
    const uint8_t *p = ring_peek(&r, 0, &n, &at);
    cr_assert_not_null(p);
    cr_assert_eq(at, 1904, "clamped to start");
    cr_assert_eq(n, 4096 - (1904 & 4095), "contiguous up to the end of the buffer");
    cr_assert_eq(p[0], pattern(1904));
    p = ring_peek(&r, at + n, &n, &at);
    cr_assert_eq(at, 4096);
    cr_assert_eq(n, 6000 - 4096);
    cr_assert_eq(p[0], pattern(4096));
    cr_assert_null(ring_peek(&r, 6000, &n, &at));
    cr_assert_null(ring_peek(&r, 99999, &n, &at));
    ring_free(&r);
}

Test(ring, reserve_and_commit_write_in_place)
{
    struct ring r;
    ring_init(&r, 16384);
    uint64_t next = 0;
    for (int round = 0; round < 40; round++) {
        size_t want = 3000;
        uint8_t *p = ring_reserve(&r, &want);
        cr_assert_gt(want, 0);
        cr_assert_leq(want, 3000);
        for (size_t i = 0; i < want; i++)
            p[i] = pattern(next + i);
        ring_commit(&r, want);
        next += want;
    }
    cr_assert_eq(ring_end(&r), next);
    check_contents(&r);
    ring_free(&r);
}

Test(ring, copy_across_the_wrap)
{
    struct ring r;
    ring_init(&r, 4096);
    uint64_t next = 0;
    write_pattern(&r, &next, 3000);
    write_pattern(&r, &next, 3000);
    uint8_t out[4096];
    uint64_t at;
    size_t n = ring_copy(&r, 3500, out, sizeof out, &at);
    cr_assert_eq(at, 3500);
    cr_assert_eq(n, 2500);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(out[i], pattern(3500 + i));
    n = ring_copy(&r, 100, out, 10, &at);
    cr_assert_eq(at, 6000 - 4096);
    cr_assert_eq(n, 10);
    ring_free(&r);
}
