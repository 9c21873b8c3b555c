/*
 * scan.c: the structural pre-scan of untrusted msgpack, and the byte-level peek at a map's `id`.
 *
 * ptc_msg_scan walks a payload's bytes before msgpack-c ever sees them: exactly one object, no
 * trailing bytes, nesting, element counts and string sizes within struct ptc_limits. msgpack-c's
 * unpacker allocates from the counts it reads, so a forged count must be refused here first. The
 * walk is iterative, linear in the input and allocates nothing. ptc_msg_peek_id reads the same
 * headers to find the `id` of a map that the scan refused as over a limit, so that the peer can
 * still get a bad_request reply. This file reads msgpack by itself: it does not include msgpack.h.
 */
#include "ptc.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* msgpack-c's unpacker keeps a fixed stack of this many open containers and fails beyond it. */
#define MP_STACK_MAX 32

/* ---- structural pre-scan --------------------------------------------------------------------- */

enum mp_kind { MP_SCALAR, MP_STR, MP_BIN, MP_EXT, MP_ARRAY, MP_MAP };

/* One msgpack header: for scalars the whole value, for str/bin/ext the part before the body. */
struct mp_head {
    enum mp_kind kind;
    uint64_t n;    /* str/bin/ext: data length; array: elements; map: pairs */
    uint64_t body; /* str/bin/ext: bytes that follow the header (ext: type byte + data) */
    bool is_uint;  /* a scalar integer >= 0 (msgpack-c gives it POSITIVE_INTEGER) */
    uint64_t u;
};

static uint64_t be_read(const uint8_t *p, unsigned w)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < w; i++)
        v = v << 8 | p[i];
    return v;
}

/* Reads the header at *pp and moves *pp past it. 0, or PTC_EMSGPACK (truncated, 0xc1). */
static int mp_head_read(const uint8_t **pp, const uint8_t *end, struct mp_head *h)
{
    const uint8_t *p = *pp;
    if (p >= end)
        return PTC_EMSGPACK;
    uint8_t c = *p++;
    size_t avail = (size_t)(end - p);
    unsigned w = 0; /* width of the length or value field after the type byte */
    memset(h, 0, sizeof(*h));
    h->kind = MP_SCALAR;

    if (c <= 0x7f) {
        h->is_uint = true;
        h->u = c;
    } else if (c <= 0x8f) {
        h->kind = MP_MAP;
        h->n = c & 0x0f;
    } else if (c <= 0x9f) {
        h->kind = MP_ARRAY;
        h->n = c & 0x0f;
    } else if (c <= 0xbf) {
        h->kind = MP_STR;
        h->n = h->body = c & 0x1f;
    } else if (c >= 0xe0) {
        /* negative fixint */
    } else {
        switch (c) {
        case 0xc0:
        case 0xc2:
        case 0xc3:
            break;
        case 0xc4 ... 0xc6:
            h->kind = MP_BIN;
            w = 1u << (c - 0xc4);
            break;
        case 0xc7 ... 0xc9:
            h->kind = MP_EXT;
            w = 1u << (c - 0xc7);
            break;
        case 0xca:
            w = 4;
            break;
        case 0xcb:
            w = 8;
            break;
        case 0xcc ... 0xcf:
            w = 1u << (c - 0xcc);
            if (avail < w)
                return PTC_EMSGPACK;
            h->is_uint = true;
            h->u = be_read(p, w);
            break;
        case 0xd0 ... 0xd3:
            w = 1u << (c - 0xd0);
            if (avail < w)
                return PTC_EMSGPACK;
            if (!(p[0] & 0x80)) { /* a non-negative signed value */
                h->is_uint = true;
                h->u = be_read(p, w);
            }
            break;
        case 0xd4 ... 0xd8:
            h->kind = MP_EXT;
            h->n = 1u << (c - 0xd4);
            h->body = h->n + 1;
            break;
        case 0xd9 ... 0xdb:
            h->kind = MP_STR;
            w = 1u << (c - 0xd9);
            break;
        case 0xdc:
        case 0xdd:
            h->kind = MP_ARRAY;
            w = c == 0xdc ? 2 : 4;
            break;
        case 0xde:
        case 0xdf:
            h->kind = MP_MAP;
            w = c == 0xde ? 2 : 4;
            break;
        default: /* 0xc1, never used */
            return PTC_EMSGPACK;
        }
    }
    if (avail < w)
        return PTC_EMSGPACK;
    if (w && h->kind != MP_SCALAR) {
        h->n = be_read(p, w);
        h->body = h->n + (h->kind == MP_EXT ? 1 : 0);
        if (h->kind == MP_EXT && avail < (size_t)w + 1)
            return PTC_EMSGPACK;
    }
    *pp = p + w;
    return 0;
}

static void msg_set(char *msg, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void msg_set(char *msg, size_t cap, const char *fmt, ...)
{
    if (!msg || !cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, cap, fmt, ap);
    va_end(ap);
}

/*
 * The pre-scan. Walks the object iteratively with one counter of elements left per open container,
 * so the work is linear in the input and nothing is allocated. The key of the top-level map being
 * walked is kept so that a limit error can name it ("token: ...").
 */
static int scan(const uint8_t *buf, size_t n, const struct ptc_limits *lim, char *msg, size_t cap)
{
    const uint8_t *p = buf, *end = buf + n;
    uint64_t left[MP_STACK_MAX + 1];
    bool is_map[MP_STACK_MAX + 1];
    uint32_t maxd = lim->max_depth < MP_STACK_MAX ? lim->max_depth : MP_STACK_MAX;
    uint64_t items = 0;
    unsigned d = 0;
    char where[48] = "payload";
    const uint8_t *key = NULL;
    size_t keylen = 0;

    if (!buf && n)
        return PTC_EINVAL;
    left[0] = 1;
    is_map[0] = false;
    for (;;) {
        while (d > 0 && left[d] == 0)
            d--;
        if (d == 0 && left[0] == 0)
            break;
        /* a key of the top-level map: remember it for messages */
        bool at_key = d == 1 && is_map[1] && left[1] % 2 == 0;
        left[d]--;

        struct mp_head h;
        const uint8_t *start = p;
        if (mp_head_read(&p, end, &h) < 0) {
            msg_set(msg, cap, "payload: invalid or truncated msgpack at byte %zu",
                    (size_t)(start - buf));
            return PTC_EMSGPACK;
        }
        size_t remain = (size_t)(end - p);
        switch (h.kind) {
        case MP_SCALAR:
            break;
        case MP_STR:
        case MP_BIN:
        case MP_EXT:
            if (h.body > remain) {
                msg_set(msg, cap, "payload: truncated msgpack at byte %zu", (size_t)(start - buf));
                return PTC_EMSGPACK;
            }
            if (h.n > lim->max_str) {
                msg_set(msg, cap, "%s: %s of %llu bytes over the limit of %u", where,
                        h.kind == MP_STR ? "string" : "binary", (unsigned long long)h.n,
                        (unsigned)lim->max_str);
                return PTC_ELIMIT;
            }
            if (at_key && h.kind == MP_STR) {
                key = p;
                keylen = (size_t)h.n;
            }
            p += h.body;
            break;
        case MP_ARRAY:
        case MP_MAP: {
            /* every element takes at least one byte: a count beyond that is forged */
            uint64_t elems = h.kind == MP_MAP ? h.n * 2 : h.n;
            if (elems > remain) {
                msg_set(msg, cap, "%s: container count %llu larger than the bytes left", where,
                        (unsigned long long)h.n);
                return PTC_EMSGPACK;
            }
            if (d + 1 > maxd) {
                msg_set(msg, cap, "%s: nesting deeper than %u", where, (unsigned)maxd);
                return PTC_ELIMIT;
            }
            items += h.n;
            if (items > lim->max_items) {
                msg_set(msg, cap, "%s: more than %u items in the message", where,
                        (unsigned)lim->max_items);
                return PTC_ELIMIT;
            }
            if (elems) {
                d++;
                left[d] = elems;
                is_map[d] = h.kind == MP_MAP;
            }
            break;
        }
        }
        if (at_key) {
            if (key && h.kind == MP_STR)
                ptc_str_printable(where, (const char *)key, keylen);
            else
                strcpy(where, "payload");
        }
    }
    if (p != end) {
        msg_set(msg, cap, "payload: %zu trailing bytes after the message", (size_t)(end - p));
        return PTC_EMSGPACK;
    }
    return 0;
}

/* Structural pre-scan of untrusted msgpack; see ptc.h. */
int ptc_msg_scan(const uint8_t *buf, size_t n, const struct ptc_limits *lim)
{
    return scan(buf, n, lim ? lim : &ptc_limits_default, NULL, 0);
}

/* ptc_msg_scan, and on failure what is wrong (naming the top-level key) in msg[0..cap). */
int ptc_msg_scan_why(const uint8_t *buf, size_t n, const struct ptc_limits *lim, char *msg,
                     size_t cap)
{
    return scan(buf, n, lim ? lim : &ptc_limits_default, msg, cap);
}

/* ---- peeking at the id ----------------------------------------------------------------------- */

/* Skips one whole object at *pp without limits (bounded by the input). 0 or PTC_EMSGPACK. */
static int mp_skip(const uint8_t **pp, const uint8_t *end)
{
    uint64_t pending = 1;
    while (pending) {
        struct mp_head h;
        pending--;
        if (mp_head_read(pp, end, &h) < 0)
            return PTC_EMSGPACK;
        uint64_t remain = (uint64_t)(end - *pp);
        if (h.kind == MP_STR || h.kind == MP_BIN || h.kind == MP_EXT) {
            if (h.body > remain)
                return PTC_EMSGPACK;
            *pp += h.body;
        } else if (h.kind == MP_ARRAY || h.kind == MP_MAP) {
            uint64_t elems = h.kind == MP_MAP ? h.n * 2 : h.n;
            if (elems > remain)
                return PTC_EMSGPACK;
            pending += elems;
        }
    }
    return 0;
}

/*
 * Finds the unsigned `id` of a top-level map by walking the bytes only. 0, PTC_EMSGPACK (not a map,
 * malformed before the id), PTC_EMISSING or PTC_ETYPE.
 */
int ptc_msg_peek_id(const uint8_t *buf, size_t n, uint64_t *id)
{
    const uint8_t *p = buf, *end = buf + n;
    struct mp_head h;
    if (!buf || mp_head_read(&p, end, &h) < 0 || h.kind != MP_MAP)
        return PTC_EMSGPACK;
    for (uint64_t i = 0; i < h.n; i++) {
        const uint8_t *k = p;
        struct mp_head kh;
        if (mp_head_read(&p, end, &kh) < 0)
            return PTC_EMSGPACK;
        if (kh.kind == MP_STR && kh.n == 2 && (size_t)(end - p) >= 2 && memcmp(p, "id", 2) == 0) {
            p += 2;
            struct mp_head vh;
            if (mp_head_read(&p, end, &vh) < 0)
                return PTC_EMSGPACK;
            if (!vh.is_uint)
                return PTC_ETYPE;
            *id = vh.u;
            return 0;
        }
        p = k;
        if (mp_skip(&p, end) < 0 || mp_skip(&p, end) < 0)
            return PTC_EMSGPACK;
    }
    return PTC_EMISSING;
}
