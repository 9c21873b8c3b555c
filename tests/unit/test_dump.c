/*
 * Tests of proto/dump.c: the exact line for each frame type, escaping and truncation of data,
 * msgpack rendering (and refusal of malformed or forged msgpack), snprintf semantics at every
 * capacity, and payloads that end flush against a PROT_NONE guard page.
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ptc.h"

static const ptc_uuid SID = {{0x1b, 0x4e, 0x28, 0xba, 0x2f, 0xa1, 0x4e, 0x2b, 0x88, 0x3f, 0x00,
                              0x10, 0x20, 0x30, 0x40, 0x50}};
#define SID_TEXT "1b4e28ba-2fa1-4e2b-883f-001020304050"

static struct ptc_frame frame(uint8_t type, const ptc_uuid *s, const void *p, size_t n)
{
    struct ptc_frame f = {.type = type, .len = (uint32_t)n, .payload = p};
    if (s)
        f.session = *s;
    return f;
}

/* Dumps f and checks the whole line and the returned length. */
static void expect(const struct ptc_frame *f, const char *want)
{
    char out[2048];
    size_t n = ptc_frame_dump(f, out, sizeof out);
    cr_assert_str_eq(out, want);
    cr_assert_eq(n, strlen(want));
}

static const uint8_t OUT_PAYLOAD[] = {0x2a, 0,   0,   0,   0,   0,    0,   0,
                                      'h',  'e', 'l', 'l', 'o', '\r', '\n'};

Test(dump, output)
{
    struct ptc_frame f = frame(PTC_OUTPUT, &SID, OUT_PAYLOAD, sizeof OUT_PAYLOAD);
    expect(&f, "OUTPUT session=" SID_TEXT " len=15 offset=42 data=\"hello\\r\\n\"");
}

Test(dump, output_escapes_and_truncates)
{
    uint8_t p[8 + 9] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00,
                        0x1b, 0x7f, 0xff, '"',  '\\', '\t', ' ',  '~'};
    struct ptc_frame f = frame(PTC_OUTPUT, NULL, p, sizeof p);
    expect(&f, "OUTPUT session=0 len=17 offset=18446744073709551615 "
               "data=\"\\x00\\x1b\\x7f\\xff\\\"\\\\\\t ~\"");

    uint8_t big[8 + 100];
    memset(big, 0, 8);
    memset(big + 8, 'a', 100);
    f = frame(PTC_OUTPUT, NULL, big, sizeof big);
    char want[256];
    snprintf(want, sizeof want, "OUTPUT session=0 len=108 offset=0 data=\"%.*s\"...", 64,
             (const char *)big + 8);
    expect(&f, want);
    /* Exactly 64 bytes: no "...". */
    f = frame(PTC_OUTPUT, NULL, big, 8 + 64);
    snprintf(want, sizeof want, "OUTPUT session=0 len=72 offset=0 data=\"%.*s\"", 64,
             (const char *)big + 8);
    expect(&f, want);
}

Test(dump, binary_types)
{
    const uint8_t rs[] = {0x50, 0x01, 0x18, 0x00};
    struct ptc_frame f = frame(PTC_RESIZE, NULL, rs, 4);
    expect(&f, "RESIZE session=0 len=4 size=336x24");
    const uint8_t ack[] = {0x10, 0x27, 0, 0, 0, 0, 0, 0};
    f = frame(PTC_ACK, &SID, ack, 8);
    expect(&f, "ACK session=" SID_TEXT " len=8 count=10000");
    f = frame(PTC_INPUT, &SID, "ls\r", 3);
    expect(&f, "INPUT session=" SID_TEXT " len=3 data=\"ls\\r\"");
    f = frame(PTC_INPUT, NULL, NULL, 0);
    expect(&f, "INPUT session=0 len=0 data=\"\"");
}

Test(dump, bad_binary_payloads)
{
    struct ptc_frame f = frame(PTC_OUTPUT, NULL, "abc", 3);
    expect(&f, "OUTPUT session=0 len=3 <bad payload> hex=616263");
    f = frame(PTC_RESIZE, NULL, "\x01\x02\x03\x04\x05", 5);
    expect(&f, "RESIZE session=0 len=5 <bad payload> hex=0102030405");
    f = frame(PTC_ACK, NULL, NULL, 0);
    expect(&f, "ACK session=0 len=0 <bad payload>");
}

Test(dump, extension_and_unknown)
{
    struct ptc_frame f = frame(0x41, &SID, "\x01\x02\x03", 3);
    expect(&f, "EXT(0x41) session=" SID_TEXT " len=3 hex=010203");
    f = frame(0xff, NULL, NULL, 0);
    expect(&f, "EXT(0xff) session=0 len=0");
    uint8_t big[40];
    for (int i = 0; i < 40; i++)
        big[i] = (uint8_t)i;
    f = frame(0x09, NULL, big, 40);
    expect(&f, "UNKNOWN(0x09) session=0 len=40 "
               "hex=000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f...");
}

Test(dump, msgpack_request)
{
    /* {id: 1, op: "list"} */
    const uint8_t p[] = {0x82, 0xa2, 'i', 'd', 0x01, 0xa2, 'o', 'p', 0xa4, 'l', 'i', 's', 't'};
    struct ptc_frame f = frame(PTC_REQUEST, NULL, p, sizeof p);
    expect(&f, "REQUEST session=0 len=13 {id: 1, op: \"list\"}");
}

Test(dump, msgpack_every_kind)
{
    /* {id: 7, ok: true, session: bin16, argv: ["sh", "-c"], x: nil, n: -5, "a b": false,
     *  3: 2.5, raw: bin3, e: ext(1, 2 bytes)} */
    uint8_t p[128];
    size_t n = 0;
    p[n++] = 0x8a;
#define STR(s)                                                                                     \
    (p[n++] = (uint8_t)(0xa0 | (sizeof s - 1)), memcpy(p + n, s, sizeof s - 1), n += sizeof s - 1)
    STR("id");
    p[n++] = 0x07;
    STR("ok");
    p[n++] = 0xc3;
    STR("session");
    p[n++] = 0xc4;
    p[n++] = 16;
    memcpy(p + n, SID.b, 16);
    n += 16;
    STR("argv");
    p[n++] = 0x92;
    STR("sh");
    STR("-c");
    STR("x");
    p[n++] = 0xc0;
    STR("n");
    p[n++] = 0xfb; /* -5 */
    STR("a b");
    p[n++] = 0xc2;
    p[n++] = 0x03;
    p[n++] = 0xcb; /* float64 2.5 */
    memcpy(p + n, "\x40\x04\x00\x00\x00\x00\x00\x00", 8);
    n += 8;
    STR("raw");
    p[n++] = 0xc4;
    p[n++] = 3;
    memcpy(p + n, "\x00\x01\xfe", 3);
    n += 3;
    STR("e");
    p[n++] = 0xd5; /* fixext 2 */
    p[n++] = 0x01;
    p[n++] = 0xab;
    p[n++] = 0xcd;
#undef STR
    struct ptc_frame f = frame(PTC_REPLY, &SID, p, n);
    char want[512];
    snprintf(want, sizeof want,
             "REPLY session=" SID_TEXT " len=%zu {id: 7, ok: true, session: " SID_TEXT
             ", argv: [\"sh\", \"-c\"], x: nil, n: -5, \"a b\": false, 3: 2.5, raw: <bin 3: "
             "0001fe>, e: <ext 1: abcd>}",
             n);
    expect(&f, want);
}

Test(dump, msgpack_string_escaped_and_cut)
{
    uint8_t p[3 + 100];
    p[0] = 0x91; /* [str8 of 100 bytes] */
    p[1] = 0xd9;
    p[2] = 100;
    memset(p + 3, 'q', 100);
    p[3] = '\n';
    struct ptc_frame f = frame(PTC_EVENT, NULL, p, sizeof p);
    char want[256];
    snprintf(want, sizeof want, "EVENT session=0 len=103 [\"\\n%.*s\"...]", 63,
             "qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq");
    expect(&f, want);
}

Test(dump, bad_msgpack)
{
    struct {
        const char *bytes;
        size_t n;
        const char *want;
    } cases[] = {
        {"", 0, "STATE session=0 len=0 <bad msgpack: 0 bytes>"},
        {"\xc1", 1, "STATE session=0 len=1 <bad msgpack: 1 bytes>"},
        {"\x82\xa2id\x01", 5, "STATE session=0 len=5 <bad msgpack: 5 bytes>"},       /* truncated */
        {"\x80\x80", 2, "STATE session=0 len=2 <bad msgpack: 2 bytes>"},             /* trailing */
        {"\xdd\xff\xff\xff\xff", 5, "STATE session=0 len=5 <bad msgpack: 5 bytes>"}, /* forged */
        {"\xdf\x7f\xff\xff\xff\x01\x02", 7, "STATE session=0 len=7 <bad msgpack: 7 bytes>"},
        {"\xc6\xff\xff\xff\xff", 5, "STATE session=0 len=5 <bad msgpack: 5 bytes>"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct ptc_frame f = frame(PTC_STATE, NULL, cases[i].bytes, cases[i].n);
        expect(&f, cases[i].want);
    }
}

Test(dump, long_msgpack_is_cut)
{
    /* An array of 1000 small ints renders as a bounded line ending in "...]". */
    uint8_t p[3 + 1000];
    p[0] = 0xdc;
    p[1] = 0x03;
    p[2] = 0xe8;
    for (int i = 0; i < 1000; i++)
        p[3 + i] = (uint8_t)(i % 100);
    struct ptc_frame f = frame(PTC_EVENT, NULL, p, sizeof p);
    char out[4096];
    size_t n = ptc_frame_dump(&f, out, sizeof out);
    cr_assert_eq(n, strlen(out));
    cr_assert_lt(n, 700);
    cr_assert_gt(n, 512);
    cr_assert_str_eq(out + n - 4, "...]");
    cr_assert_eq(strncmp(out, "EVENT session=0 len=1003 [0, 1, 2, 3, ", 38), 0);
}

Test(dump, snprintf_semantics_at_every_capacity)
{
    struct ptc_frame f = frame(PTC_OUTPUT, &SID, OUT_PAYLOAD, sizeof OUT_PAYLOAD);
    char full[256];
    size_t len = ptc_frame_dump(&f, full, sizeof full);
    cr_assert_eq(len, strlen(full));
    cr_assert_eq(ptc_frame_dump(&f, NULL, 0), len);
    for (size_t cap = 1; cap <= len + 2; cap++) {
        char *out = malloc(cap + 1);
        out[cap] = '#'; /* sentinel one past cap */
        cr_assert_eq(ptc_frame_dump(&f, out, cap), len);
        size_t got = cap - 1 < len ? cap - 1 : len;
        cr_assert_eq(strlen(out), got, "cap %zu", cap);
        cr_assert_eq(strncmp(out, full, got), 0);
        cr_assert_eq(out[cap], '#', "wrote past cap %zu", cap);
        free(out);
    }
}

/* Every frame type, payload flush against a PROT_NONE page: the dump must stay inside. */
Test(dump, payload_at_guard_page)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    uint8_t *m = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    cr_assert_neq(m, MAP_FAILED);
    cr_assert_eq(mprotect(m + page, page, PROT_NONE), 0);
    const uint8_t req[] = {0x82, 0xa2, 'i', 'd', 0x01, 0xa2, 'o', 'p', 0xa4, 'l', 'i', 's', 't'};
    const uint8_t *srcs[] = {OUT_PAYLOAD, req};
    const size_t lens[] = {sizeof OUT_PAYLOAD, sizeof req};
    for (int t = 0; t < 256; t++) {
        for (int s = 0; s < 2; s++) {
            for (size_t k = 0; k <= lens[s]; k++) { /* every prefix: also the malformed ones */
                uint8_t *p = m + page - k;
                memcpy(p, srcs[s], k);
                struct ptc_frame f = frame((uint8_t)t, &SID, p, k);
                char out[1024];
                size_t n = ptc_frame_dump(&f, out, sizeof out);
                cr_assert_eq(n, strlen(out));
                cr_assert_eq(
                    strncmp(out, ptc_type_name((uint8_t)t), strlen(ptc_type_name((uint8_t)t))), 0);
            }
        }
    }
    munmap(m, 2 * page);
}
