/*
 * Tests of proto/frame.c: header layout against hand-written bytes, whole-frame decoding of every
 * valid and invalid case, typed payloads, encoders, ptc_buf, and the stream decoder fed whole, byte
 * by byte and split at every point, all of which must give the same frames and the same verdict.
 * Inputs are also decoded flush against a PROT_NONE guard page, at every prefix length, so any read
 * past the end of the input crashes the test.
 */
#include <criterion/criterion.h>

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ptc.h"

static const ptc_uuid SID = {{0x1b, 0x4e, 0x28, 0xba, 0x2f, 0xa1, 0x4e, 0x2b, 0x88, 0x3f, 0x00,
                              0x10, 0x20, 0x30, 0x40, 0x50}};

/* An OUTPUT frame for SID, offset 0x0102030405060708, data "hi\n", written out by hand. */
static const uint8_t OUTPUT_BYTES[] = {
    0x01,                                                                   /* type */
    0x1b, 0x4e, 0x28, 0xba, 0x2f, 0xa1, 0x4e, 0x2b, 0x88, 0x3f, 0x00, 0x10, /* session */
    0x20, 0x30, 0x40, 0x50,                                                 /* ... */
    0x0b, 0x00, 0x00, 0x00,                                                 /* length 11 LE */
    0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01,                         /* offset LE */
    'h',  'i',  '\n',
};

/* A RESIZE 336x24 for the connection (all-zero session). */
static const uint8_t RESIZE_BYTES[] = {
    0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x04, 0, 0, 0, 0x50, 0x01, 0x18, 0x00,
};

/* ---- helpers --------------------------------------------------------------------------------- */

/* Writes a header by hand (not with ptc_header_encode) so tests do not trust the encoder. */
static size_t raw_frame(uint8_t *out, uint8_t type, uint32_t len, const void *payload, size_t n)
{
    out[0] = type;
    memset(out + 1, 0xab, 16);
    out[17] = (uint8_t)len;
    out[18] = (uint8_t)(len >> 8);
    out[19] = (uint8_t)(len >> 16);
    out[20] = (uint8_t)(len >> 24);
    if (n)
        memcpy(out + 21, payload, n);
    return 21 + n;
}

struct rec {
    uint8_t type;
    ptc_uuid session;
    uint32_t len;
    uint8_t payload[256];
};

struct result {
    struct rec recs[64];
    size_t nrec;
    int verdict;    /* 0 (stream clean or waiting) or the negative error */
    size_t pending; /* bytes after the last whole frame when verdict is 0 */
};

static void add_rec(struct result *r, const struct ptc_frame *f)
{
    cr_assert_lt(r->nrec, 64);
    cr_assert_leq(f->len, 256);
    struct rec *x = &r->recs[r->nrec++];
    x->type = f->type;
    x->session = f->session;
    x->len = f->len;
    memcpy(x->payload, f->payload, f->len);
}

/* Decodes buf with a ptc_frame_decode loop. */
static void decode_all(const uint8_t *buf, size_t n, uint32_t max, struct result *r)
{
    memset(r, 0, sizeof *r);
    size_t off = 0;
    for (;;) {
        struct ptc_frame f;
        long rc = ptc_frame_decode(buf + off, n - off, max, &f);
        if (rc > 0) {
            cr_assert_eq((size_t)rc, 21 + (size_t)f.len);
            cr_assert_eq(f.payload, buf + off + 21);
            add_rec(r, &f);
            off += (size_t)rc;
            continue;
        }
        if (rc == PTC_EAGAIN) {
            r->verdict = 0;
            r->pending = n - off;
        } else {
            r->verdict = (int)rc;
        }
        return;
    }
}

static void drain(struct ptc_stream *s, struct result *r)
{
    struct ptc_frame f;
    int rc;
    while ((rc = ptc_stream_next(s, &f)) == 1)
        add_rec(r, &f);
    if (rc < 0)
        r->verdict = rc;
}

/* Feeds buf to a stream decoder in pieces ending at the given cut points (ascending). */
static void stream_cuts(const uint8_t *buf, size_t n, uint32_t max, const size_t *cuts,
                        size_t ncuts, struct result *r)
{
    memset(r, 0, sizeof *r);
    struct ptc_stream s;
    ptc_stream_init(&s, max);
    size_t from = 0;
    for (size_t i = 0; i <= ncuts && r->verdict == 0; i++) {
        size_t to = i < ncuts ? cuts[i] : n;
        int rc = ptc_stream_feed(&s, buf + from, to - from);
        drain(&s, r);
        if (rc < 0)
            cr_assert_eq(r->verdict, rc, "feed said %d, next said %d", rc, r->verdict);
        from = to;
    }
    if (r->verdict == 0)
        r->pending = ptc_stream_pending(&s);
    ptc_stream_free(&s);
}

static void same_result(const struct result *a, const struct result *b, const char *what)
{
    cr_assert_eq(a->verdict, b->verdict, "%s: verdict %d vs %d", what, a->verdict, b->verdict);
    cr_assert_eq(a->nrec, b->nrec, "%s: %zu vs %zu frames", what, a->nrec, b->nrec);
    if (a->verdict == 0)
        cr_assert_eq(a->pending, b->pending, "%s: pending %zu vs %zu", what, a->pending,
                     b->pending);
    for (size_t i = 0; i < a->nrec; i++) {
        cr_assert_eq(a->recs[i].type, b->recs[i].type, "%s: frame %zu", what, i);
        cr_assert(ptc_uuid_eq(&a->recs[i].session, &b->recs[i].session));
        cr_assert_eq(a->recs[i].len, b->recs[i].len);
        cr_assert_arr_eq(a->recs[i].payload, b->recs[i].payload, a->recs[i].len);
    }
}

/* Whole, byte by byte, and every single split point agree with the decode loop. */
static void check_all_ways(const uint8_t *buf, size_t n, uint32_t max, const struct result *want)
{
    struct result got;
    decode_all(buf, n, max, &got);
    same_result(want, &got, "decode loop");

    stream_cuts(buf, n, max, NULL, 0, &got);
    same_result(want, &got, "stream whole");

    size_t *cuts = malloc((n + 1) * sizeof *cuts);
    for (size_t i = 0; i < n; i++)
        cuts[i] = i + 1;
    stream_cuts(buf, n, max, cuts, n ? n - 1 : 0, &got);
    same_result(want, &got, "stream byte by byte");
    free(cuts);

    for (size_t k = 0; k <= n; k++) {
        stream_cuts(buf, n, max, &k, 1, &got);
        same_result(want, &got, "stream split");
    }
}

/* Two pages, the second PROT_NONE: input copied flush against it cannot be over-read. */
struct guard {
    uint8_t *base;
    size_t page;
};

static struct guard guard_new(void)
{
    struct guard g;
    g.page = (size_t)sysconf(_SC_PAGESIZE);
    void *p = mmap(NULL, 2 * g.page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    cr_assert_neq(p, MAP_FAILED);
    g.base = p;
    cr_assert_eq(mprotect(g.base + g.page, g.page, PROT_NONE), 0);
    return g;
}

static const uint8_t *guard_put(struct guard *g, const uint8_t *src, size_t n)
{
    cr_assert_leq(n, g->page);
    uint8_t *dst = g->base + g->page - n;
    if (n)
        memcpy(dst, src, n);
    return dst;
}

static void guard_free(struct guard *g)
{
    munmap(g->base, 2 * g->page);
}

/* Every prefix of buf, flush against the guard, decodes like the same prefix on the heap. */
static void check_prefixes_at_guard(const uint8_t *buf, size_t n, uint32_t max)
{
    struct guard g = guard_new();
    for (size_t k = 0; k <= n; k++) {
        struct result want, got;
        decode_all(buf, k, max, &want);
        const uint8_t *p = guard_put(&g, buf, k);
        decode_all(p, k, max, &got);
        same_result(&want, &got, "guard decode");
        stream_cuts(p, k, max, NULL, 0, &got);
        same_result(&want, &got, "guard stream");
    }
    guard_free(&g);
}

/* ---- header and decode ----------------------------------------------------------------------- */

Test(frame, header_encode_layout)
{
    uint8_t h[PTC_HDR_LEN];
    ptc_header_encode(h, PTC_OUTPUT, &SID, 11);
    cr_assert_arr_eq(h, OUTPUT_BYTES, PTC_HDR_LEN);
    ptc_header_encode(h, 0x41, NULL, 0xa1b2c3d4);
    uint8_t want[PTC_HDR_LEN] = {0x41, [17] = 0xd4, 0xc3, 0xb2, 0xa1};
    cr_assert_arr_eq(h, want, PTC_HDR_LEN);
}

Test(frame, decode_output_golden)
{
    struct ptc_frame f;
    long rc = ptc_frame_decode(OUTPUT_BYTES, sizeof OUTPUT_BYTES, PTC_MAX_FRAME_DEFAULT, &f);
    cr_assert_eq(rc, 32);
    cr_assert_eq(f.type, PTC_OUTPUT);
    cr_assert(ptc_uuid_eq(&f.session, &SID));
    cr_assert_eq(f.len, 11);
    cr_assert_eq(f.payload, OUTPUT_BYTES + 21);
    cr_assert_eq(ptc_frame_check(&f), 0);

    uint64_t off;
    const uint8_t *data;
    size_t n;
    cr_assert_eq(ptc_output_parse(&f, &off, &data, &n), 0);
    cr_assert_eq(off, 0x0102030405060708ull);
    cr_assert_eq(n, 3);
    cr_assert_arr_eq(data, "hi\n", 3);
}

Test(frame, decode_resize_golden)
{
    struct ptc_frame f;
    cr_assert_eq(ptc_frame_decode(RESIZE_BYTES, sizeof RESIZE_BYTES, 4, &f), 25);
    cr_assert(ptc_uuid_is_zero(&f.session));
    uint16_t c = 0, r = 0;
    cr_assert_eq(ptc_resize_parse(&f, &c, &r), 0);
    cr_assert_eq(c, 336);
    cr_assert_eq(r, 24);
}

Test(frame, truncated_is_eagain_at_every_length)
{
    struct ptc_frame f;
    for (size_t k = 0; k < sizeof OUTPUT_BYTES; k++)
        cr_assert_eq(ptc_frame_decode(OUTPUT_BYTES, k, 1024, &f), PTC_EAGAIN, "prefix %zu", k);
    cr_assert_eq(ptc_frame_decode(NULL, 0, 1024, &f), PTC_EAGAIN);
    check_prefixes_at_guard(OUTPUT_BYTES, sizeof OUTPUT_BYTES, 1024);
}

Test(frame, length_over_max_frame_from_header_alone)
{
    uint8_t b[64];
    struct ptc_frame f;
    /* Exactly max_frame is fine; the bytes are not all there yet, so EAGAIN. */
    raw_frame(b, PTC_INPUT, 100, NULL, 0);
    cr_assert_eq(ptc_frame_decode(b, 21, 100, &f), PTC_EAGAIN);
    raw_frame(b, PTC_INPUT, 101, NULL, 0);
    cr_assert_eq(ptc_frame_decode(b, 21, 100, &f), PTC_ETOOBIG);
    /* Before the length is complete it is not judged. */
    cr_assert_eq(ptc_frame_decode(b, 20, 100, &f), PTC_EAGAIN);
    raw_frame(b, PTC_INPUT, UINT32_MAX, NULL, 0);
    cr_assert_eq(ptc_frame_decode(b, 21, PTC_MAX_FRAME_DEFAULT, &f), PTC_ETOOBIG);
    cr_assert_eq(ptc_frame_decode(b, 21, UINT32_MAX, &f), PTC_EAGAIN);
    /* Extensions are bounded by max_frame too. */
    raw_frame(b, 0xff, PTC_MAX_FRAME_DEFAULT + 1, NULL, 0);
    cr_assert_eq(ptc_frame_decode(b, 21, PTC_MAX_FRAME_DEFAULT, &f), PTC_ETOOBIG);
    /* max_frame 0 admits only empty payloads. */
    raw_frame(b, PTC_INPUT, 0, NULL, 0);
    cr_assert_eq(ptc_frame_decode(b, 21, 0, &f), 21);
    raw_frame(b, PTC_INPUT, 1, "x", 1);
    cr_assert_eq(ptc_frame_decode(b, 22, 0, &f), PTC_ETOOBIG);
}

Test(frame, unknown_core_types)
{
    const uint8_t bad[] = {0x00, 0x09, 0x10, 0x3f};
    for (size_t i = 0; i < sizeof bad; i++) {
        uint8_t b[64];
        size_t n = raw_frame(b, bad[i], 4, "abcd", 4);
        struct ptc_frame f;
        cr_assert_eq(ptc_frame_decode(b, n, 1024, &f), PTC_ECORE, "type %#x", bad[i]);
        /* Known to be invalid from the type byte alone. */
        cr_assert_eq(ptc_frame_decode(b, 1, 1024, &f), PTC_ECORE);
        /* The type is judged before the length. */
        raw_frame(b, bad[i], UINT32_MAX, NULL, 0);
        cr_assert_eq(ptc_frame_decode(b, 21, 1024, &f), PTC_ECORE);
        struct ptc_frame hand = {.type = bad[i], .len = 0, .payload = b};
        cr_assert_eq(ptc_frame_check(&hand), PTC_ECORE);
    }
}

Test(frame, extension_types_decode_and_pass_check)
{
    const uint8_t ext[] = {0x40, 0x41, 0x80, 0xff};
    for (size_t i = 0; i < sizeof ext; i++) {
        uint8_t b[64];
        size_t n = raw_frame(b, ext[i], 3, "xyz", 3);
        struct ptc_frame f;
        cr_assert_eq(ptc_frame_decode(b, n, 1024, &f), 24);
        cr_assert_eq(f.type, ext[i]);
        cr_assert_eq(f.len, 3);
        cr_assert_eq(ptc_frame_check(&f), 0);
        cr_assert(ptc_type_is_extension(ext[i]));
        cr_assert_not(ptc_type_is_known(ext[i]));
    }
}

Test(frame, payload_shapes)
{
    uint8_t b[64], z[16] = {0};
    struct {
        uint8_t type;
        uint32_t len;
        int want;
    } cases[] = {
        {PTC_OUTPUT, 0, PTC_EPAYLOAD},
        {PTC_OUTPUT, 7, PTC_EPAYLOAD},
        {PTC_OUTPUT, 8, 0},
        {PTC_OUTPUT, 9, 0},
        {PTC_RESIZE, 0, PTC_EPAYLOAD},
        {PTC_RESIZE, 3, PTC_EPAYLOAD},
        {PTC_RESIZE, 4, 0},
        {PTC_RESIZE, 5, PTC_EPAYLOAD},
        {PTC_ACK, 7, PTC_EPAYLOAD},
        {PTC_ACK, 8, 0},
        {PTC_ACK, 9, PTC_EPAYLOAD},
        {PTC_ACK, 0, PTC_EPAYLOAD},
        {PTC_INPUT, 0, 0},
        {PTC_STATE, 0, 0},
        {PTC_REQUEST, 1, 0},
        {PTC_REPLY, 16, 0},
        {PTC_EVENT, 0, 0},
        {0x77, 0, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t n = raw_frame(b, cases[i].type, cases[i].len, z, cases[i].len);
        struct ptc_frame f;
        cr_assert_eq(ptc_frame_decode(b, n, 1024, &f), (long)n);
        cr_assert_eq(ptc_frame_check(&f), cases[i].want, "case %zu", i);
        uint64_t u;
        uint16_t c, r;
        const uint8_t *d;
        size_t dn;
        if (cases[i].type == PTC_OUTPUT)
            cr_assert_eq(ptc_output_parse(&f, &u, &d, &dn), cases[i].want);
        if (cases[i].type == PTC_RESIZE)
            cr_assert_eq(ptc_resize_parse(&f, &c, &r), cases[i].want);
        if (cases[i].type == PTC_ACK)
            cr_assert_eq(ptc_ack_parse(&f, &u), cases[i].want);
    }
}

Test(frame, typed_parse_rejects_other_types)
{
    struct ptc_frame f;
    cr_assert_eq(ptc_frame_decode(RESIZE_BYTES, sizeof RESIZE_BYTES, 64, &f), 25);
    uint64_t u;
    const uint8_t *d;
    size_t n;
    cr_assert_eq(ptc_output_parse(&f, &u, &d, &n), PTC_EINVAL);
    cr_assert_eq(ptc_ack_parse(&f, &u), PTC_EINVAL);
}

Test(frame, empty_output_data_and_empty_payload)
{
    uint8_t b[64];
    uint8_t off[8] = {0xff, 0, 0, 0, 0, 0, 0, 0};
    size_t n = raw_frame(b, PTC_OUTPUT, 8, off, 8);
    struct ptc_frame f;
    cr_assert_eq(ptc_frame_decode(b, n, 8, &f), 29);
    uint64_t o;
    const uint8_t *d;
    size_t dn = 99;
    cr_assert_eq(ptc_output_parse(&f, &o, &d, &dn), 0);
    cr_assert_eq(o, 255);
    cr_assert_eq(dn, 0);

    n = raw_frame(b, PTC_INPUT, 0, NULL, 0);
    cr_assert_eq(ptc_frame_decode(b, n, 0, &f), 21);
    cr_assert_eq(f.len, 0);
    cr_assert_eq(f.payload, b + 21);
}

/* ---- several frames, and the stream decoder -------------------------------------------------- */

/* OUTPUT, an extension frame, an empty INPUT, a RESIZE, an ACK, a REQUEST {id:1, op:"list"}. */
static size_t build_sequence(uint8_t *b)
{
    static const uint8_t req[] = {0x82, 0xa2, 'i', 'd', 0x01, 0xa2, 'o',
                                  'p',  0xa4, 'l', 'i', 's',  't'};
    static const uint8_t ack[] = {0x10, 0x27, 0, 0, 0, 0, 0, 0};
    size_t n = 0;
    memcpy(b, OUTPUT_BYTES, sizeof OUTPUT_BYTES);
    n += sizeof OUTPUT_BYTES;
    n += raw_frame(b + n, 0x5a, 5, "\x01\x02\x03\x04\x05", 5);
    n += raw_frame(b + n, PTC_INPUT, 0, NULL, 0);
    memcpy(b + n, RESIZE_BYTES, sizeof RESIZE_BYTES);
    n += sizeof RESIZE_BYTES;
    n += raw_frame(b + n, PTC_ACK, 8, ack, 8);
    n += raw_frame(b + n, PTC_REQUEST, sizeof req, req, sizeof req);
    return n;
}

Test(frame, several_frames_in_one_buffer)
{
    uint8_t b[512];
    size_t n = build_sequence(b);
    cr_assert_eq(n, 32 + 26 + 21 + 25 + 29 + 34);
    struct result r;
    decode_all(b, n, 1024, &r);
    cr_assert_eq(r.verdict, 0);
    cr_assert_eq(r.pending, 0);
    cr_assert_eq(r.nrec, 6);
    const uint8_t types[] = {PTC_OUTPUT, 0x5a, PTC_INPUT, PTC_RESIZE, PTC_ACK, PTC_REQUEST};
    const uint32_t lens[] = {11, 5, 0, 4, 8, 13};
    for (size_t i = 0; i < 6; i++) {
        cr_assert_eq(r.recs[i].type, types[i], "frame %zu", i);
        cr_assert_eq(r.recs[i].len, lens[i], "frame %zu", i);
    }
    /* A receiver skipping the extension still sees every core frame in order. */
    size_t core = 0;
    for (size_t i = 0; i < r.nrec; i++)
        if (!ptc_type_is_extension(r.recs[i].type))
            core++;
    cr_assert_eq(core, 5);
    uint64_t count;
    struct ptc_frame f = {.type = PTC_ACK, .len = 8, .payload = r.recs[4].payload};
    cr_assert_eq(ptc_ack_parse(&f, &count), 0);
    cr_assert_eq(count, 10000);
}

Test(frame, stream_agrees_on_valid_sequence)
{
    uint8_t b[512];
    size_t n = build_sequence(b);
    struct result want;
    decode_all(b, n, 1024, &want);
    cr_assert_eq(want.nrec, 6);
    check_all_ways(b, n, 1024, &want);
    check_prefixes_at_guard(b, n, 1024);
    /* Cut short in the middle of the last frame: 6 - 1 frames and the rest pending. */
    decode_all(b, n - 3, 1024, &want);
    cr_assert_eq(want.nrec, 5);
    cr_assert_eq(want.verdict, 0);
    cr_assert_eq(want.pending, 31);
    check_all_ways(b, n - 3, 1024, &want);
}

Test(frame, stream_agrees_on_invalid_sequences)
{
    uint8_t b[512];
    size_t n = build_sequence(b);
    struct result want;
    const size_t second = sizeof OUTPUT_BYTES;
    /* Frame 2 turned into an unknown core type: one frame, then ECORE. */
    uint8_t c[512];
    memcpy(c, b, n);
    c[second] = 0x09;
    decode_all(c, n, 1024, &want);
    cr_assert_eq(want.nrec, 1);
    cr_assert_eq(want.verdict, PTC_ECORE);
    check_all_ways(c, n, 1024, &want);
    check_prefixes_at_guard(c, n, 1024);
    /* max_frame 11: the first five frames fit, the REQUEST's 13 bytes do not. */
    decode_all(b, n, 11, &want);
    cr_assert_eq(want.verdict, PTC_ETOOBIG);
    cr_assert_eq(want.nrec, 5);
    check_all_ways(b, n, 11, &want);
    decode_all(b, n, 4, &want);
    cr_assert_eq(want.nrec, 0); /* max_frame 4: already the OUTPUT's 11 is over */
    cr_assert_eq(want.verdict, PTC_ETOOBIG);
    check_all_ways(b, n, 4, &want);
    check_prefixes_at_guard(b, n, 4);
}

Test(frame, stream_checks_length_before_buffering_payload)
{
    struct ptc_stream s;
    ptc_stream_init(&s, 1000);
    uint8_t h[21];
    raw_frame(h, PTC_INPUT, 1001, NULL, 0);
    for (size_t i = 0; i < 20; i++)
        cr_assert_eq(ptc_stream_feed(&s, h + i, 1), 0, "byte %zu", i);
    cr_assert_eq(ptc_stream_pending(&s), 20);
    cr_assert_eq(ptc_stream_feed(&s, h + 20, 1), PTC_ETOOBIG);
    /* Sticky: more bytes and next both keep reporting it. */
    cr_assert_eq(ptc_stream_feed(&s, "x", 1), PTC_ETOOBIG);
    struct ptc_frame f;
    cr_assert_eq(ptc_stream_next(&s, &f), PTC_ETOOBIG);
    ptc_stream_free(&s);

    /* Header and a big payload in one call: none of the payload is copied in. */
    size_t big = 1u << 20;
    uint8_t *m = calloc(1, 21 + big);
    raw_frame(m, PTC_OUTPUT, (uint32_t)big, NULL, 0);
    ptc_stream_init(&s, (uint32_t)big - 1);
    cr_assert_eq(ptc_stream_feed(&s, m, 21 + big), PTC_ETOOBIG);
    cr_assert_lt(s.cap, 64 * 1024, "cap %zu", s.cap);
    cr_assert_eq(s.len, 0);
    ptc_stream_free(&s);
    free(m);
}

Test(frame, stream_rejects_core_type_at_first_byte)
{
    struct ptc_stream s;
    ptc_stream_init(&s, 1000);
    cr_assert_eq(ptc_stream_feed(&s, "\x00", 1), PTC_ECORE);
    struct ptc_frame f;
    cr_assert_eq(ptc_stream_next(&s, &f), PTC_ECORE);
    ptc_stream_free(&s);

    ptc_stream_init(&s, 1000);
    cr_assert_eq(ptc_stream_feed(&s, "\x3f", 1), PTC_ECORE);
    ptc_stream_free(&s);
}

Test(frame, stream_large_frame_in_chunks)
{
    size_t big = PTC_MAX_FRAME_DEFAULT;
    uint8_t *m = malloc(21 + big + 25);
    raw_frame(m, PTC_INPUT, (uint32_t)big, NULL, 0);
    for (size_t i = 0; i < big; i++)
        m[21 + i] = (uint8_t)(i * 7);
    memcpy(m + 21 + big, RESIZE_BYTES, 25);
    struct ptc_stream s;
    ptc_stream_init(&s, PTC_MAX_FRAME_DEFAULT);
    struct ptc_frame f;
    size_t total = 21 + big + 25, got = 0;
    for (size_t off = 0; off < total; off += 4093) {
        size_t k = total - off < 4093 ? total - off : 4093;
        cr_assert_eq(ptc_stream_feed(&s, m + off, k), 0);
        int rc;
        while ((rc = ptc_stream_next(&s, &f)) == 1) {
            if (got == 0) {
                cr_assert_eq(f.type, PTC_INPUT);
                cr_assert_eq(f.len, big);
                cr_assert_arr_eq(f.payload, m + 21, big);
            } else {
                cr_assert_eq(f.type, PTC_RESIZE);
            }
            got++;
        }
        cr_assert_eq(rc, 0);
    }
    cr_assert_eq(got, 2);
    cr_assert_eq(ptc_stream_pending(&s), 0);
    /* One frame's payload plus a header plus slack: the decoder holds no second copy. */
    cr_assert_leq(s.cap, 2 * (21 + big + 25));
    ptc_stream_free(&s);
    free(m);
}

Test(frame, stream_pending_and_reuse)
{
    struct ptc_stream s;
    ptc_stream_init(&s, 64);
    struct ptc_frame f;
    cr_assert_eq(ptc_stream_pending(&s), 0);
    cr_assert_eq(ptc_stream_next(&s, &f), 0);
    cr_assert_eq(ptc_stream_feed(&s, OUTPUT_BYTES, 30), 0);
    cr_assert_eq(ptc_stream_pending(&s), 30);
    cr_assert_eq(ptc_stream_next(&s, &f), 0);
    cr_assert_eq(ptc_stream_feed(&s, OUTPUT_BYTES + 30, 2), 0);
    cr_assert_eq(ptc_stream_pending(&s), 0);
    /* Whole frames not yet taken out are not pending. */
    cr_assert_eq(ptc_stream_feed(&s, RESIZE_BYTES, 25), 0);
    cr_assert_eq(ptc_stream_pending(&s), 0);
    cr_assert_eq(ptc_stream_next(&s, &f), 1);
    cr_assert_eq(f.type, PTC_OUTPUT);
    cr_assert_arr_eq(f.payload, OUTPUT_BYTES + 21, 11);
    cr_assert_eq(ptc_stream_next(&s, &f), 1);
    cr_assert_eq(f.type, PTC_RESIZE);
    cr_assert_eq(ptc_stream_next(&s, &f), 0);
    cr_assert_eq(ptc_stream_feed(&s, NULL, 0), 0);
    ptc_stream_free(&s);
}

static uint32_t xorshift(uint32_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 17;
    *x ^= *x << 5;
    return *x;
}

/* Random inputs: mostly valid frames, with some corruption, cut at random points. */
Test(frame, stream_agrees_with_decode_on_random_input)
{
    uint32_t x = 12345;
    int verdicts[3] = {0}; /* clean, ECORE, ETOOBIG: the mix must really cover all three */
#define RND() xorshift(&x)
    for (int iter = 0; iter < 3000; iter++) {
        uint8_t b[600];
        size_t n = 0;
        while (n < 400) {
            uint32_t len = RND() % 40;
            uint8_t type = (uint8_t)(RND() % 3 ? 1 + RND() % 8 : RND());
            uint8_t p[40];
            for (uint32_t i = 0; i < len; i++)
                p[i] = (uint8_t)RND();
            n += raw_frame(b + n, type, len, p, len);
        }
        if (RND() % 2) {
            size_t at = RND() % n;
            b[at] = (uint8_t)RND();
        }
        n -= RND() % 30;
        uint32_t max = RND() % 4 ? 64 : RND() % 40;
        struct result want, got;
        decode_all(b, n, max, &want);
        size_t cuts[8], nc = RND() % 8;
        for (size_t i = 0; i < nc; i++)
            cuts[i] = RND() % (n + 1);
        for (size_t i = 1; i < nc; i++) /* insertion sort */
            for (size_t j = i; j > 0 && cuts[j - 1] > cuts[j]; j--) {
                size_t t = cuts[j];
                cuts[j] = cuts[j - 1];
                cuts[j - 1] = t;
            }
        stream_cuts(b, n, max, cuts, nc, &got);
        same_result(&want, &got, "random");
        verdicts[want.verdict == 0 ? 0 : want.verdict == PTC_ECORE ? 1 : 2]++;
        cr_assert(want.verdict == 0 || want.verdict == PTC_ECORE || want.verdict == PTC_ETOOBIG);
    }
    cr_assert_gt(verdicts[0], 300, "%d clean", verdicts[0]);
    cr_assert_gt(verdicts[1], 300, "%d ECORE", verdicts[1]);
    cr_assert_gt(verdicts[2], 300, "%d ETOOBIG", verdicts[2]);
#undef RND
}

/* ---- encoders and ptc_buf -------------------------------------------------------------------- */

Test(frame, encoders_produce_golden_bytes)
{
    struct ptc_buf b;
    ptc_buf_init(&b, 16);
    cr_assert_eq(ptc_output_append(&b, &SID, 0x0102030405060708ull, "hi\n", 3), 0);
    cr_assert_eq(b.len, sizeof OUTPUT_BYTES);
    cr_assert_arr_eq(b.data, OUTPUT_BYTES, sizeof OUTPUT_BYTES);
    cr_assert_eq(b.data, b.mem + 16);

    ptc_uuid zero = {{0}};
    cr_assert_eq(ptc_resize_append(&b, &zero, 336, 24), 0);
    cr_assert_arr_eq(b.data + 32, RESIZE_BYTES, sizeof RESIZE_BYTES);

    cr_assert_eq(ptc_ack_append(&b, &SID, 10000), 0);
    const uint8_t ack_payload[] = {0x10, 0x27, 0, 0, 0, 0, 0, 0};
    cr_assert_eq(b.len, 32 + 25 + 29);
    cr_assert_eq(b.data[57], PTC_ACK);
    cr_assert_arr_eq(b.data + 57 + 1, SID.b, 16);
    cr_assert_arr_eq(b.data + 57 + 17, "\x08\x00\x00\x00", 4);
    cr_assert_arr_eq(b.data + 57 + 21, ack_payload, 8);

    cr_assert_eq(ptc_frame_append(&b, PTC_INPUT, &SID, NULL, 0), 0);
    cr_assert_eq(b.len, 86 + 21);
    ptc_buf_reset(&b);
    cr_assert_eq(b.len, 0);
    cr_assert_eq(ptc_frame_append(&b, PTC_INPUT, &SID, "abc", 3), 0);
    struct ptc_frame f;
    cr_assert_eq(ptc_frame_decode(b.data, b.len, 3, &f), 24);
    cr_assert_arr_eq(f.payload, "abc", 3);
    ptc_buf_free(&b);
    cr_assert_null(b.mem);
    cr_assert_eq(b.len, 0);
}

Test(frame, append_too_big)
{
    struct ptc_buf b;
    ptc_buf_init(&b, 0);
    cr_assert_eq(ptc_frame_append(&b, PTC_INPUT, &SID, NULL, (size_t)UINT32_MAX + 1), PTC_ETOOBIG);
    cr_assert_eq(ptc_output_append(&b, &SID, 0, NULL, (size_t)UINT32_MAX - 7), PTC_ETOOBIG);
    cr_assert_eq(b.len, 0);
    ptc_buf_free(&b);
}

Test(frame, open_close_in_place)
{
    struct ptc_buf b;
    ptc_buf_init(&b, 4);
    cr_assert_eq(ptc_buf_append(&b, "junk", 4), 0);
    long mark = ptc_frame_open(&b, PTC_REQUEST, &SID);
    cr_assert_eq(mark, 4);
    for (int i = 0; i < 1000; i++) /* forces growth after the header was written */
        cr_assert_eq(ptc_buf_append(&b, "0123456789", 10), 0);
    cr_assert_eq(ptc_frame_close(&b, mark), 0);
    struct ptc_frame f;
    cr_assert_eq(ptc_frame_decode(b.data + 4, b.len - 4, 10000, &f), 10021);
    cr_assert_eq(f.type, PTC_REQUEST);
    cr_assert(ptc_uuid_eq(&f.session, &SID));
    cr_assert_eq(f.len, 10000);
    cr_assert_arr_eq(f.payload + 9990, "0123456789", 10);
    cr_assert_eq(b.data, b.mem + 4);

    long m2 = ptc_frame_open(&b, PTC_EVENT, NULL);
    cr_assert_eq(ptc_frame_close(&b, m2), 0);
    cr_assert_eq(ptc_frame_decode(b.data + m2, b.len - (size_t)m2, 0, &f), 21);
    cr_assert(ptc_uuid_is_zero(&f.session));
    cr_assert_eq(ptc_frame_close(&b, -1), PTC_EINVAL);
    cr_assert_eq(ptc_frame_close(&b, (long)b.len - 20), PTC_EINVAL);
    cr_assert_eq(ptc_frame_close(&b, (long)b.len + 1), PTC_EINVAL);
    ptc_buf_free(&b);
}

Test(frame, buf_reserve_and_headroom)
{
    struct ptc_buf b;
    ptc_buf_init(&b, 16);
    cr_assert_null(b.mem);
    uint8_t *p = ptc_buf_reserve(&b, 0);
    cr_assert_not_null(p);
    cr_assert_eq(p, b.mem + 16);
    p = ptc_buf_reserve(&b, 100000);
    cr_assert_not_null(p);
    cr_assert_geq(b.cap, 100000);
    memset(p, 'z', 100000);
    b.len = 100000;
    cr_assert_eq(ptc_buf_append(&b, "!", 1), 0);
    cr_assert_eq(b.data[100000], '!');
    cr_assert_eq(b.data[99999], 'z');
    cr_assert_null(ptc_buf_reserve(&b, SIZE_MAX));
    cr_assert_eq(ptc_buf_append(&b, "x", 0), 0);
    cr_assert_eq(b.len, 100001);
    ptc_buf_free(&b);
    cr_assert_eq(b.head, 16);
}

/* ---- names ----------------------------------------------------------------------------------- */

Test(frame, type_names)
{
    const char *names[] = {"OUTPUT", "RESIZE",  "ACK",   "STATE",
                           "INPUT",  "REQUEST", "REPLY", "EVENT"};
    for (int t = 1; t <= 8; t++) {
        cr_assert(ptc_type_is_known((uint8_t)t));
        cr_assert_str_eq(ptc_type_name((uint8_t)t), names[t - 1]);
        cr_assert_eq(ptc_type_from_name(names[t - 1]), t);
    }
    cr_assert_eq(ptc_type_from_name("request"), PTC_REQUEST);
    cr_assert_str_eq(ptc_type_name(0x00), "UNKNOWN");
    cr_assert_str_eq(ptc_type_name(0x09), "UNKNOWN");
    cr_assert_str_eq(ptc_type_name(0x3f), "UNKNOWN");
    cr_assert_str_eq(ptc_type_name(0x40), "EXT");
    cr_assert_str_eq(ptc_type_name(0xff), "EXT");
    cr_assert_not(ptc_type_is_known(0));
    cr_assert_not(ptc_type_is_known(9));
    cr_assert_not(ptc_type_is_extension(0x3f));
    cr_assert(ptc_type_is_extension(0x40));
    cr_assert_eq(ptc_type_from_name("EXT"), PTC_EINVAL);
    cr_assert_eq(ptc_type_from_name("UNKNOWN"), PTC_EINVAL);
    cr_assert_eq(ptc_type_from_name(""), PTC_EINVAL);
    cr_assert_eq(ptc_type_from_name(NULL), PTC_EINVAL);
}

Test(frame, strerror_names_every_code)
{
    cr_assert_str_eq(ptc_strerror(PTC_EAGAIN), "need more bytes");
    cr_assert_str_eq(ptc_strerror(PTC_ETOOBIG), "frame too large");
    cr_assert_str_eq(ptc_strerror(PTC_ECORE), "unknown core frame type");
    cr_assert_str_eq(ptc_strerror(12345), "unknown error");
    for (int e = PTC_OK; e >= PTC_EPROTO; e--) {
        cr_assert_not_null(ptc_strerror(e));
        cr_assert_str_neq(ptc_strerror(e), "unknown error", "code %d", e);
        for (int o = e - 1; o >= PTC_EPROTO; o--)
            cr_assert_str_neq(ptc_strerror(e), ptc_strerror(o));
    }
}
