/*
 * PTC1 frames: the 21-byte header, whole-frame decoding from a buffer, the typed binary payloads
 * (OUTPUT, RESIZE, ACK), encoding into a growable ptc_buf, and the incremental stream decoder.
 *
 * Every integer is read and written byte by byte in little-endian order, so nothing depends on the
 * host's struct layout or endianness. ptc_frame_decode never allocates and never reads past n; it
 * tells "need more bytes" (PTC_EAGAIN) apart from "this can never become valid" (ETOOBIG, ECORE).
 * An unknown core type is reported as soon as the type byte is there, a length over max_frame as
 * soon as the 21 header bytes are there: neither waits for bytes that cannot make it valid.
 * The stream decoder and ptc_buf own heap memory; they are the only allocating parts of this file.
 */
#include "ptc.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- errors ---------------------------------------------------------------------------------- */

/* A human-readable name for a PTC_E* code. */
const char *ptc_strerror(int err)
{
    switch (err) {
    case PTC_OK:
        return "ok";
    case PTC_EAGAIN:
        return "need more bytes";
    case PTC_ETOOBIG:
        return "frame too large";
    case PTC_ECORE:
        return "unknown core frame type";
    case PTC_EPAYLOAD:
        return "bad payload size for frame type";
    case PTC_EMSGPACK:
        return "invalid msgpack";
    case PTC_ETYPE:
        return "wrong type or value for key";
    case PTC_EMISSING:
        return "missing required key";
    case PTC_ELIMIT:
        return "field over its size limit";
    case PTC_ENOMEM:
        return "out of memory";
    case PTC_ESPACE:
        return "output buffer too small";
    case PTC_EINVAL:
        return "invalid argument";
    case PTC_EPROTO:
        return "protocol error";
    default:
        return "unknown error";
    }
}

/* ---- little-endian helpers ------------------------------------------------------------------- */

static uint16_t get_le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (unsigned)p[1] << 8);
}

static uint32_t get_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get_le64(const uint8_t *p)
{
    return (uint64_t)get_le32(p) | (uint64_t)get_le32(p + 4) << 32;
}

static void put_le16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put_le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put_le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* ---- ptc_buf --------------------------------------------------------------------------------- */

/* Starts an empty buffer keeping `headroom` bytes in front of its data. Allocates nothing. */
void ptc_buf_init(struct ptc_buf *b, size_t headroom)
{
    b->mem = NULL;
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->head = headroom;
}

/* Releases the memory; the buffer is empty again and can be reused with the same headroom. */
void ptc_buf_free(struct ptc_buf *b)
{
    free(b->mem);
    ptc_buf_init(b, b->head);
}

/* Empties the buffer, keeping its memory. */
void ptc_buf_reset(struct ptc_buf *b)
{
    b->len = 0;
}

/* Ensures room for n more bytes after len and returns where they go, or NULL on ENOMEM/overflow. */
uint8_t *ptc_buf_reserve(struct ptc_buf *b, size_t n)
{
    if (n > SIZE_MAX - b->len)
        return NULL;
    size_t need = b->len + n;
    if (b->mem && need <= b->cap)
        return b->data + b->len;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need) {
        if (cap > SIZE_MAX / 2) {
            cap = need;
            break;
        }
        cap *= 2;
    }
    if (cap > SIZE_MAX - b->head)
        return NULL;
    uint8_t *mem = realloc(b->mem, b->head + cap);
    if (!mem)
        return NULL;
    b->mem = mem;
    b->data = mem + b->head;
    b->cap = cap;
    return b->data + b->len;
}

/* Appends n bytes from p. 0 or PTC_ENOMEM. */
int ptc_buf_append(struct ptc_buf *b, const void *p, size_t n)
{
    uint8_t *dst = ptc_buf_reserve(b, n);
    if (!dst)
        return PTC_ENOMEM;
    if (n)
        memcpy(dst, p, n);
    b->len += n;
    return 0;
}

/* ---- types ----------------------------------------------------------------------------------- */

/* Indexed by type code; slot 0 is unused (0x00 is not a type). */
static const char *const type_names[] = {
    NULL, "OUTPUT", "RESIZE", "ACK", "STATE", "INPUT", "REQUEST", "REPLY", "EVENT",
};
#define TYPE_LAST PTC_EVENT

/* True for the core types PTC1 version 1 defines (0x01-0x08). */
bool ptc_type_is_known(uint8_t t)
{
    return t >= PTC_OUTPUT && t <= TYPE_LAST;
}

/* The name of a type code: its PTC1 name, "EXT" for 0x40-0xff, "UNKNOWN" for other core codes. */
const char *ptc_type_name(uint8_t t)
{
    if (ptc_type_is_known(t))
        return type_names[t];
    return ptc_type_is_extension(t) ? "EXT" : "UNKNOWN";
}

/* The code of a known type name (any case), or PTC_EINVAL. */
int ptc_type_from_name(const char *name)
{
    if (!name)
        return PTC_EINVAL;
    for (int t = PTC_OUTPUT; t <= TYPE_LAST; t++)
        if (strcasecmp(name, type_names[t]) == 0)
            return t;
    return PTC_EINVAL;
}

/* ---- header and whole-frame decoding --------------------------------------------------------- */

/* Writes the 21-byte header: type, session (NULL: all zero), u32 LE length. */
void ptc_header_encode(uint8_t out[PTC_HDR_LEN], uint8_t type, const ptc_uuid *session,
                       uint32_t len)
{
    out[0] = type;
    if (session)
        memcpy(out + 1, session->b, 16);
    else
        memset(out + 1, 0, 16);
    put_le32(out + 17, len);
}

/*
 * Judges the first min(n, 21) bytes of a header: PTC_ECORE as soon as the type byte is an unknown
 * core type, PTC_ETOOBIG once the length is in and over max_frame, PTC_EAGAIN while the header is
 * incomplete, 0 when the header is whole and acceptable.
 */
static int header_check(const uint8_t *p, size_t n, uint32_t max_frame)
{
    if (n == 0)
        return PTC_EAGAIN;
    if (!ptc_type_is_extension(p[0]) && !ptc_type_is_known(p[0]))
        return PTC_ECORE;
    if (n < PTC_HDR_LEN)
        return PTC_EAGAIN;
    if (get_le32(p + 17) > max_frame)
        return PTC_ETOOBIG;
    return 0;
}

/* Decodes one frame from buf[0..n): bytes consumed, or PTC_EAGAIN / PTC_ETOOBIG / PTC_ECORE. */
long ptc_frame_decode(const uint8_t *buf, size_t n, uint32_t max_frame, struct ptc_frame *f)
{
    int rc = header_check(buf, n, max_frame);
    if (rc < 0)
        return rc;
    uint32_t len = get_le32(buf + 17);
#if LONG_MAX <= UINT32_MAX
    /* Where long is 32 bits, a length near 4 GiB does not fit the return value. */
    if (len > (uint32_t)(LONG_MAX - PTC_HDR_LEN))
        return PTC_ETOOBIG;
#endif
    if (n - PTC_HDR_LEN < len)
        return PTC_EAGAIN;
    f->type = buf[0];
    memcpy(f->session.b, buf + 1, 16);
    f->len = len;
    f->payload = buf + PTC_HDR_LEN;
    return (long)(PTC_HDR_LEN + (size_t)len);
}

/*
 * Checks a payload's size against its type: OUTPUT >= 8, RESIZE == 4, ACK == 8, the other known
 * types and extensions any size. 0, PTC_EPAYLOAD, or PTC_ECORE for an unknown core type (which
 * ptc_frame_decode never produces).
 */
int ptc_frame_check(const struct ptc_frame *f)
{
    switch (f->type) {
    case PTC_OUTPUT:
        return f->len >= 8 ? 0 : PTC_EPAYLOAD;
    case PTC_RESIZE:
        return f->len == 4 ? 0 : PTC_EPAYLOAD;
    case PTC_ACK:
        return f->len == 8 ? 0 : PTC_EPAYLOAD;
    default:
        if (ptc_type_is_known(f->type) || ptc_type_is_extension(f->type))
            return 0;
        return PTC_ECORE;
    }
}

/* OUTPUT: the u64 offset and a view of the data after it. PTC_EINVAL if f is not an OUTPUT. */
int ptc_output_parse(const struct ptc_frame *f, uint64_t *offset, const uint8_t **data, size_t *n)
{
    if (f->type != PTC_OUTPUT)
        return PTC_EINVAL;
    if (f->len < 8)
        return PTC_EPAYLOAD;
    *offset = get_le64(f->payload);
    *data = f->payload + 8;
    *n = f->len - 8;
    return 0;
}

/* RESIZE: u16 cols, u16 rows. PTC_EINVAL if f is not a RESIZE. */
int ptc_resize_parse(const struct ptc_frame *f, uint16_t *cols, uint16_t *rows)
{
    if (f->type != PTC_RESIZE)
        return PTC_EINVAL;
    if (f->len != 4)
        return PTC_EPAYLOAD;
    *cols = get_le16(f->payload);
    *rows = get_le16(f->payload + 2);
    return 0;
}

/* ACK: u64 count. PTC_EINVAL if f is not an ACK. */
int ptc_ack_parse(const struct ptc_frame *f, uint64_t *count)
{
    if (f->type != PTC_ACK)
        return PTC_EINVAL;
    if (f->len != 8)
        return PTC_EPAYLOAD;
    *count = get_le64(f->payload);
    return 0;
}

/* ---- encoding -------------------------------------------------------------------------------- */

/* Appends header and payload in one go. 0, PTC_ETOOBIG (n > UINT32_MAX) or PTC_ENOMEM. */
int ptc_frame_append(struct ptc_buf *b, uint8_t type, const ptc_uuid *session, const void *payload,
                     size_t n)
{
    if (n > UINT32_MAX)
        return PTC_ETOOBIG;
    uint8_t *dst = ptc_buf_reserve(b, PTC_HDR_LEN + n);
    if (!dst)
        return PTC_ENOMEM;
    ptc_header_encode(dst, type, session, (uint32_t)n);
    if (n)
        memcpy(dst + PTC_HDR_LEN, payload, n);
    b->len += PTC_HDR_LEN + n;
    return 0;
}

/* Appends an OUTPUT frame: u64 offset then n data bytes. */
int ptc_output_append(struct ptc_buf *b, const ptc_uuid *session, uint64_t offset, const void *data,
                      size_t n)
{
    if (n > UINT32_MAX - 8)
        return PTC_ETOOBIG;
    uint8_t *dst = ptc_buf_reserve(b, PTC_HDR_LEN + 8 + n);
    if (!dst)
        return PTC_ENOMEM;
    ptc_header_encode(dst, PTC_OUTPUT, session, (uint32_t)(8 + n));
    put_le64(dst + PTC_HDR_LEN, offset);
    if (n)
        memcpy(dst + PTC_HDR_LEN + 8, data, n);
    b->len += PTC_HDR_LEN + 8 + n;
    return 0;
}

/* Appends a RESIZE frame. */
int ptc_resize_append(struct ptc_buf *b, const ptc_uuid *session, uint16_t cols, uint16_t rows)
{
    uint8_t p[4];
    put_le16(p, cols);
    put_le16(p + 2, rows);
    return ptc_frame_append(b, PTC_RESIZE, session, p, sizeof p);
}

/* Appends an ACK frame. */
int ptc_ack_append(struct ptc_buf *b, const ptc_uuid *session, uint64_t count)
{
    uint8_t p[8];
    put_le64(p, count);
    return ptc_frame_append(b, PTC_ACK, session, p, sizeof p);
}

/* Appends a header with length 0 and returns its offset in b (the mark), or PTC_ENOMEM. */
long ptc_frame_open(struct ptc_buf *b, uint8_t type, const ptc_uuid *session)
{
    if (b->len > (size_t)LONG_MAX)
        return PTC_ENOMEM;
    long mark = (long)b->len;
    uint8_t *dst = ptc_buf_reserve(b, PTC_HDR_LEN);
    if (!dst)
        return PTC_ENOMEM;
    ptc_header_encode(dst, type, session, 0);
    b->len += PTC_HDR_LEN;
    return mark;
}

/* Patches the length of the frame opened at mark to cover everything appended since. */
int ptc_frame_close(struct ptc_buf *b, long mark)
{
    if (mark < 0 || (size_t)mark > b->len || b->len - (size_t)mark < PTC_HDR_LEN)
        return PTC_EINVAL;
    size_t n = b->len - (size_t)mark - PTC_HDR_LEN;
    if (n > UINT32_MAX)
        return PTC_ETOOBIG;
    put_le32(b->data + mark + 17, (uint32_t)n);
    return 0;
}

/* ---- stream decoder -------------------------------------------------------------------------- */

/*
 * Layout: buf[pos..len) holds bytes not yet taken out by ptc_stream_next: zero or more whole
 * frames, then at most one incomplete frame. Every header in there has already passed header_check,
 * because feed judges each header as its bytes arrive and stops at the first bad one (sticky err).
 * Frames before a bad header are still handed out by next; the error comes after them, which is the
 * same sequence a ptc_frame_decode loop over the whole input gives.
 */

/* Starts an empty decoder that accepts payloads up to max_frame bytes. Allocates nothing. */
void ptc_stream_init(struct ptc_stream *s, uint32_t max_frame)
{
    s->buf = NULL;
    s->len = s->cap = s->pos = 0;
    s->max_frame = max_frame;
    s->err = 0;
}

/* Releases the buffer; the decoder must be initialised again before reuse. */
void ptc_stream_free(struct ptc_stream *s)
{
    free(s->buf);
    s->buf = NULL;
    s->len = s->cap = s->pos = 0;
}

/* Offset in buf of the first byte after the last whole frame buffered. */
static size_t stream_boundary(const struct ptc_stream *s)
{
    size_t off = s->pos;
    while (s->len - off >= PTC_HDR_LEN) {
        size_t total = PTC_HDR_LEN + (size_t)get_le32(s->buf + off + 17);
        if (s->len - off < total)
            break;
        off += total;
    }
    return off;
}

/* Makes room for n more bytes at len. */
static int stream_grow(struct ptc_stream *s, size_t n)
{
    if (s->cap - s->len >= n)
        return 0;
    if (s->pos > 0) { /* frames before pos were handed out and are dead now */
        memmove(s->buf, s->buf + s->pos, s->len - s->pos);
        s->len -= s->pos;
        s->pos = 0;
        if (s->cap - s->len >= n)
            return 0;
    }
    if (n > SIZE_MAX / 2 - s->len)
        return PTC_ENOMEM;
    size_t cap = s->cap ? s->cap * 2 : 4096;
    if (cap < s->len + n)
        cap = s->len + n;
    uint8_t *nb = realloc(s->buf, cap);
    if (!nb)
        return PTC_ENOMEM;
    s->buf = nb;
    s->cap = cap;
    return 0;
}

/* Buffers n bytes, judging each header as it completes. 0 or the (sticky) negative error. */
int ptc_stream_feed(struct ptc_stream *s, const void *p, size_t n)
{
    const uint8_t *in = p;
    if (s->err)
        return s->err;
    if (s->pos == s->len) /* nothing pending: start at the front again */
        s->pos = s->len = 0;
    size_t off = stream_boundary(s); /* start of the incomplete frame, or len */
    while (n > 0) {
        size_t have = s->len - off, take;
        if (have < PTC_HDR_LEN) {
            take = PTC_HDR_LEN - have;
        } else {
            size_t total = PTC_HDR_LEN + (size_t)get_le32(s->buf + off + 17);
            take = total - have;
        }
        if (take > n)
            take = n;
        /* The whole frame will not be complete: never reserve more than what arrived. */
        size_t soff = off - s->pos;
        int rc = stream_grow(s, take);
        if (rc < 0)
            return s->err = rc;
        off = s->pos + soff;
        memcpy(s->buf + s->len, in, take);
        s->len += take;
        in += take;
        n -= take;
        have += take;
        if (have <= PTC_HDR_LEN) {
            rc = header_check(s->buf + off, have, s->max_frame);
            if (rc != 0 && rc != PTC_EAGAIN) {
                s->len = off; /* drop the bad header; whole frames before it stay */
                return s->err = rc;
            }
        }
        if (have >= PTC_HDR_LEN && have == PTC_HDR_LEN + (size_t)get_le32(s->buf + off + 17))
            off = s->len; /* frame complete: the next one starts here */
    }
    return 0;
}

/* Hands out the next whole frame (1), or 0 when more bytes are needed, or the sticky error. */
int ptc_stream_next(struct ptc_stream *s, struct ptc_frame *f)
{
    long rc = s->buf ? ptc_frame_decode(s->buf + s->pos, s->len - s->pos, UINT32_MAX, f) : 0;
    if (rc > 0) {
        s->pos += (size_t)rc;
        return 1;
    }
    if (s->err)
        return s->err;
    return 0;
}

/* Bytes buffered after the last whole frame: 0 means the stream stands at a frame boundary. */
size_t ptc_stream_pending(const struct ptc_stream *s)
{
    return s->len - stream_boundary(s);
}
