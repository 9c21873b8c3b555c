/*
 * ptc_frame_dump: one readable line per frame, for logs, `ptcat --debug` and test failures.
 *
 * The line is the type name, the session ("0" for the connection itself), the payload length, and
 * the payload decoded for its type: OUTPUT offset and data, RESIZE size, ACK count, INPUT data,
 * msgpack payloads as a compact {key: value} rendering, anything else as hex. Bytes are escaped so
 * the line stays printable, and long payloads are cut with "...". msgpack payloads come from peers,
 * so they pass ptc_msg_scan before msgpack-c ever sees them (its unpacker trusts forged counts).
 * Output follows snprintf: at most cap bytes including the NUL; returns the full length.
 */
#include "ptc.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <msgpack.h>

#define DUMP_DATA_MAX 64 /* bytes of OUTPUT/INPUT data or of one msgpack string shown */
#define DUMP_HEX_MAX 32  /* bytes shown as hex */
#define DUMP_MSG_MAX 512 /* characters of one msgpack rendering before it is cut */

/* snprintf-style sink: counts everything, stores what fits. */
struct sink {
    char *out;
    size_t cap; /* bytes available at out, including the NUL */
    size_t n;   /* length it would have written */
};

static void put(struct sink *s, const char *p, size_t n)
{
    if (s->n < s->cap) {
        size_t room = s->cap - 1 - s->n, k = n < room ? n : room;
        memcpy(s->out + s->n, p, k);
    }
    s->n += n;
}

static void puts_(struct sink *s, const char *p)
{
    put(s, p, strlen(p));
}

__attribute__((format(printf, 2, 3))) static void putf(struct sink *s, const char *fmt, ...)
{
    char tmp[64];
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (k > 0)
        put(s, tmp, (size_t)k < sizeof tmp ? (size_t)k : sizeof tmp - 1);
}

/* Printable ASCII as is; \r \n \t \\ \" and \xNN for the rest; "..." after max bytes. */
static void put_escaped(struct sink *s, const uint8_t *p, size_t n, size_t max)
{
    put(s, "\"", 1);
    for (size_t i = 0; i < n && i < max; i++) {
        uint8_t c = p[i];
        switch (c) {
        case '\r':
            puts_(s, "\\r");
            break;
        case '\n':
            puts_(s, "\\n");
            break;
        case '\t':
            puts_(s, "\\t");
            break;
        case '\\':
            puts_(s, "\\\\");
            break;
        case '"':
            puts_(s, "\\\"");
            break;
        default:
            if (c >= 0x20 && c < 0x7f)
                put(s, (const char *)&c, 1);
            else
                putf(s, "\\x%02x", c);
        }
    }
    put(s, "\"", 1);
    if (n > max)
        puts_(s, "...");
}

static void put_hex(struct sink *s, const uint8_t *p, size_t n, size_t max)
{
    for (size_t i = 0; i < n && i < max; i++)
        putf(s, "%02x", p[i]);
    if (n > max)
        puts_(s, "...");
}

/* A map key that is a plain identifier is shown bare, like the ptc.h examples: {id: 1}. */
static bool is_ident(const char *p, size_t n)
{
    if (n == 0 || n > DUMP_DATA_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
              (i > 0 && c >= '0' && c <= '9')))
            return false;
    }
    return true;
}

/* Renders one msgpack object; once the line is long, everything further becomes one "...". */
static void put_obj(struct sink *s, const msgpack_object *o, size_t start, bool *cut)
{
    if (*cut)
        return;
    if (s->n - start > DUMP_MSG_MAX) {
        puts_(s, "...");
        *cut = true;
        return;
    }
    switch (o->type) {
    case MSGPACK_OBJECT_NIL:
        puts_(s, "nil");
        break;
    case MSGPACK_OBJECT_BOOLEAN:
        puts_(s, o->via.boolean ? "true" : "false");
        break;
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        putf(s, "%" PRIu64, o->via.u64);
        break;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        putf(s, "%" PRId64, o->via.i64);
        break;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        putf(s, "%g", o->via.f64);
        break;
    case MSGPACK_OBJECT_STR:
        put_escaped(s, (const uint8_t *)o->via.str.ptr, o->via.str.size, DUMP_DATA_MAX);
        break;
    case MSGPACK_OBJECT_BIN:
        if (o->via.bin.size == 16) { /* session ids */
            ptc_uuid u;
            char text[PTC_UUID_STRLEN + 1];
            memcpy(u.b, o->via.bin.ptr, 16);
            ptc_uuid_format(&u, text);
            puts_(s, text);
        } else {
            putf(s, "<bin %" PRIu32 ": ", o->via.bin.size);
            put_hex(s, (const uint8_t *)o->via.bin.ptr, o->via.bin.size, DUMP_HEX_MAX);
            puts_(s, ">");
        }
        break;
    case MSGPACK_OBJECT_EXT:
        putf(s, "<ext %d: ", o->via.ext.type);
        put_hex(s, (const uint8_t *)o->via.ext.ptr, o->via.ext.size, DUMP_HEX_MAX);
        puts_(s, ">");
        break;
    case MSGPACK_OBJECT_ARRAY:
        puts_(s, "[");
        for (uint32_t i = 0; i < o->via.array.size && !*cut; i++) {
            if (i)
                puts_(s, ", ");
            put_obj(s, &o->via.array.ptr[i], start, cut);
        }
        puts_(s, "]");
        break;
    case MSGPACK_OBJECT_MAP:
        puts_(s, "{");
        for (uint32_t i = 0; i < o->via.map.size && !*cut; i++) {
            const msgpack_object_kv *kv = &o->via.map.ptr[i];
            if (i)
                puts_(s, ", ");
            if (kv->key.type == MSGPACK_OBJECT_STR &&
                is_ident(kv->key.via.str.ptr, kv->key.via.str.size))
                put(s, kv->key.via.str.ptr, kv->key.via.str.size);
            else
                put_obj(s, &kv->key, start, cut);
            puts_(s, ": ");
            put_obj(s, &kv->val, start, cut);
        }
        puts_(s, "}");
        break;
    default:
        puts_(s, "?");
    }
}

static void put_msgpack(struct sink *s, const uint8_t *p, size_t n)
{
    /* Wide limits: a log line should show any message msgpack-c can unpack, deep or long. */
    struct ptc_limits lim = ptc_limits_default;
    lim.max_depth = 32;
    lim.max_items = UINT32_MAX;
    lim.max_str = UINT32_MAX;
    if (n == 0 || ptc_msg_scan(p, n, &lim) != 0) {
        putf(s, "<bad msgpack: %zu bytes>", n);
        return;
    }
    msgpack_unpacked up;
    size_t off = 0;
    msgpack_unpacked_init(&up);
    if (msgpack_unpack_next(&up, (const char *)p, n, &off) == MSGPACK_UNPACK_SUCCESS && off == n) {
        bool cut = false;
        put_obj(s, &up.data, s->n, &cut);
    } else {
        putf(s, "<bad msgpack: %zu bytes>", n);
    }
    msgpack_unpacked_destroy(&up);
}

/* Renders f as one line without a newline; snprintf semantics for out/cap and the return value. */
size_t ptc_frame_dump(const struct ptc_frame *f, char *out, size_t cap)
{
    struct sink s = {out, cap, 0};
    const uint8_t *p = f->payload;
    size_t n = f->len;

    if (ptc_type_is_known(f->type))
        puts_(&s, ptc_type_name(f->type));
    else
        putf(&s, "%s(0x%02x)", ptc_type_name(f->type), f->type);
    if (ptc_uuid_is_zero(&f->session)) {
        puts_(&s, " session=0");
    } else {
        char text[PTC_UUID_STRLEN + 1];
        ptc_uuid_format(&f->session, text);
        puts_(&s, " session=");
        puts_(&s, text);
    }
    putf(&s, " len=%" PRIu32, f->len);

    uint64_t u64;
    uint16_t cols, rows;
    const uint8_t *data;
    size_t dn;
    switch (f->type) {
    case PTC_OUTPUT:
        if (ptc_output_parse(f, &u64, &data, &dn) != 0)
            goto bad;
        putf(&s, " offset=%" PRIu64 " data=", u64);
        put_escaped(&s, data, dn, DUMP_DATA_MAX);
        break;
    case PTC_RESIZE:
        if (ptc_resize_parse(f, &cols, &rows) != 0)
            goto bad;
        putf(&s, " size=%ux%u", (unsigned)cols, (unsigned)rows);
        break;
    case PTC_ACK:
        if (ptc_ack_parse(f, &u64) != 0)
            goto bad;
        putf(&s, " count=%" PRIu64, u64);
        break;
    case PTC_INPUT:
        puts_(&s, " data=");
        put_escaped(&s, p, n, DUMP_DATA_MAX);
        break;
    case PTC_STATE:
    case PTC_REQUEST:
    case PTC_REPLY:
    case PTC_EVENT:
        puts_(&s, " ");
        put_msgpack(&s, p, n);
        break;
    default:
        if (n) {
            puts_(&s, " hex=");
            put_hex(&s, p, n, DUMP_HEX_MAX);
        }
        break;
    }
    goto done;
bad:
    puts_(&s, " <bad payload>");
    if (n) {
        puts_(&s, " hex=");
        put_hex(&s, p, n, DUMP_HEX_MAX);
    }
done:
    if (cap)
        out[s.n < cap ? s.n : cap - 1] = '\0';
    return s.n;
}
