/*
 * libFuzzer target for proto/frame.c and proto/dump.c. Each input is a byte stream of frames. It is
 * decoded twice: by a ptc_frame_decode loop over the whole buffer, and by the stream decoder fed in
 * chunks of pseudo-random sizes (seeded from the input, so a crash reproduces). Both must yield the
 * same frames and end with the same verdict; every frame must survive the typed parsers and
 * ptc_frame_dump, and re-encode to the exact bytes it came from. Any disagreement traps.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ptc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if (!(x))                                                                                  \
            __builtin_trap();                                                                      \
    } while (0)

static uint32_t rnd(uint32_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 17;
    *x ^= *x << 5;
    return *x;
}

/* Exercises everything a receiver does with one frame. */
static void use_frame(const struct ptc_frame *f, const uint8_t *raw)
{
    int rc = ptc_frame_check(f);
    CHECK(rc == 0 || rc == PTC_EPAYLOAD);
    uint64_t u;
    uint16_t c, r;
    const uint8_t *d;
    size_t n;
    if (f->type == PTC_OUTPUT)
        CHECK(ptc_output_parse(f, &u, &d, &n) == rc);
    if (f->type == PTC_RESIZE)
        CHECK(ptc_resize_parse(f, &c, &r) == rc);
    if (f->type == PTC_ACK)
        CHECK(ptc_ack_parse(f, &u) == rc);

    char small[40], line[1024];
    size_t full = ptc_frame_dump(f, NULL, 0);
    CHECK(ptc_frame_dump(f, small, sizeof small) == full);
    CHECK(strlen(small) == (full < sizeof small ? full : sizeof small - 1));
    CHECK(ptc_frame_dump(f, line, sizeof line) == full);
    CHECK(strncmp(small, line, sizeof small - 1) == 0);

    /* Re-encoding gives back the very bytes. */
    struct ptc_buf b;
    ptc_buf_init(&b, 16);
    CHECK(ptc_frame_append(&b, f->type, &f->session, f->payload, f->len) == 0);
    CHECK(b.len == PTC_HDR_LEN + (size_t)f->len);
    CHECK(memcmp(b.data, raw, b.len) == 0);
    ptc_buf_free(&b);
}

static void check(const uint8_t *data, size_t size, uint32_t max_frame, uint32_t seed)
{
    struct ptc_stream s;
    ptc_stream_init(&s, max_frame);
    size_t fed = 0, dpos = 0;
    int verdict = 0;
    while (fed < size && verdict == 0) {
        uint32_t k = rnd(&seed);
        size_t chunk = (k & 3) == 0 ? 1 : (k & 3) == 1 ? size : 1 + (k >> 8) % 64;
        if (chunk > size - fed)
            chunk = size - fed;
        int frc = ptc_stream_feed(&s, data + fed, chunk);
        CHECK(frc == 0 || frc == PTC_ETOOBIG || frc == PTC_ECORE);
        fed += chunk;
        struct ptc_frame sf, df;
        int rc;
        while ((rc = ptc_stream_next(&s, &sf)) == 1) {
            long drc = ptc_frame_decode(data + dpos, size - dpos, max_frame, &df);
            CHECK(drc == (long)(PTC_HDR_LEN + (size_t)sf.len));
            CHECK(df.type == sf.type && df.len == sf.len);
            CHECK(ptc_uuid_eq(&df.session, &sf.session));
            CHECK(memcmp(df.payload, sf.payload, sf.len) == 0);
            CHECK(df.payload == data + dpos + PTC_HDR_LEN);
            use_frame(&sf, data + dpos);
            dpos += (size_t)drc;
        }
        CHECK(rc == frc); /* an error comes only from feed, and next repeats it */
        verdict = rc;
    }
    struct ptc_frame df;
    long drc = ptc_frame_decode(data + dpos, size - dpos, max_frame, &df);
    if (verdict < 0) {
        CHECK(drc == verdict);
    } else {
        CHECK(drc == PTC_EAGAIN);
        CHECK(ptc_stream_pending(&s) == size - dpos);
    }
    ptc_stream_free(&s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint32_t h = 2166136261u; /* FNV-1a: chunking follows the input */
    for (size_t i = 0; i < size; i++)
        h = (h ^ data[i]) * 16777619u;
    h |= 1;
    check(data, size, 4096, h);
    check(data, size, (uint32_t)(size % 61), h * 3 | 1);
    check(data, size, UINT32_MAX, h * 5 | 1);
    return 0;
}
