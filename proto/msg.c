/*
 * msg.c: the msgpack half of libptc (REQUEST, REPLY, STATE and EVENT payloads).
 *
 * It owns the op table (each op's name, arguments and results) and the strict builders and parsers
 * of every message of PTC1. Every parser runs the structural pre-scan of scan.c before msgpack-c
 * sees the bytes, so that a forged container count cannot make the unpacker allocate; the wire
 * names of states, modes, codes and signals come from names.c. Parsed strings are views into the
 * caller's buffer (msgpack-c's STR/BIN objects point into it); only argv/env/info arrays are
 * allocated, and the matching *_free functions release them. Builders write through a
 * msgpack_packer whose write callback appends to a struct ptc_buf, always emit the same keys in the
 * same order (the order of PTC1's tables) and use msgpack-c's smallest encodings, so their output
 * is deterministic. This is the only file of the project that includes msgpack.h.
 */
#include "ptc.h"

#include <limits.h>
#include <msgpack.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const struct ptc_limits ptc_limits_default = {
    .max_depth = 8,
    .max_items = 4096,
    .max_str = 65536,
    .max_argv = 256,
    .max_env = 256,
    .max_arg_len = 4096,
};

/* ---- reading msgpack objects ----------------------------------------------------------------- */

/* What a parser needs: the root map, limits and where the error message goes. */
struct pctx {
    const msgpack_object *map;
    const struct ptc_limits *lim;
    struct ptc_perr *err;
};

static int fail(struct pctx *c, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(struct pctx *c, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err->message, sizeof(c->err->message), fmt, ap);
    va_end(ap);
    return code;
}

/* The value of a str key in a map (the first one if repeated); NULL when absent or nil. */
static const msgpack_object *map_get(const msgpack_object *map, const char *key)
{
    size_t kn = strlen(key);
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object *k = &map->via.map.ptr[i].key;
        if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == kn &&
            memcmp(k->via.str.ptr, key, kn) == 0) {
            const msgpack_object *v = &map->via.map.ptr[i].val;
            return v->type == MSGPACK_OBJECT_NIL ? NULL : v;
        }
    }
    return NULL;
}

/* Looks key up; absent: PTC_EMISSING if required, else 0 with *o NULL. 1 when present. */
static int want(struct pctx *c, const char *key, bool req, const msgpack_object **o)
{
    *o = map_get(c->map, key);
    if (*o)
        return 1;
    return req ? fail(c, PTC_EMISSING, "%s: missing", key) : 0;
}

static int get_uint(struct pctx *c, const char *key, bool req, uint64_t lo, uint64_t hi,
                    uint64_t *out)
{
    const msgpack_object *o;
    int rc = want(c, key, req, &o);
    if (rc <= 0)
        return rc;
    if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER || o->via.u64 < lo || o->via.u64 > hi) {
        if (lo == 0 && hi == UINT64_MAX)
            return fail(c, PTC_ETYPE, "%s: expected unsigned integer", key);
        return fail(c, PTC_ETYPE, "%s: expected unsigned integer %llu..%llu", key,
                    (unsigned long long)lo, (unsigned long long)hi);
    }
    *out = o->via.u64;
    return 1;
}

static int get_u16(struct pctx *c, const char *key, bool req, uint16_t lo, uint16_t *out)
{
    uint64_t v;
    int rc = get_uint(c, key, req, lo, UINT16_MAX, &v);
    if (rc > 0)
        *out = (uint16_t)v;
    return rc;
}

static int get_int(struct pctx *c, const char *key, bool req, int *out)
{
    const msgpack_object *o;
    int rc = want(c, key, req, &o);
    if (rc <= 0)
        return rc;
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 <= INT_MAX)
        *out = (int)o->via.u64;
    else if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER && o->via.i64 >= INT_MIN)
        *out = (int)o->via.i64;
    else
        return fail(c, PTC_ETYPE, "%s: expected integer", key);
    return 1;
}

static int get_bool(struct pctx *c, const char *key, bool req, bool *out)
{
    const msgpack_object *o;
    int rc = want(c, key, req, &o);
    if (rc <= 0)
        return rc;
    if (o->type != MSGPACK_OBJECT_BOOLEAN)
        return fail(c, PTC_ETYPE, "%s: expected boolean", key);
    *out = o->via.boolean;
    return 1;
}

static int get_str(struct pctx *c, const char *key, bool req, uint32_t maxlen, struct ptc_str *out)
{
    const msgpack_object *o;
    int rc = want(c, key, req, &o);
    if (rc <= 0)
        return rc;
    if (o->type != MSGPACK_OBJECT_STR)
        return fail(c, PTC_ETYPE, "%s: expected string", key);
    if (o->via.str.size > maxlen)
        return fail(c, PTC_ELIMIT, "%s: longer than %u bytes", key, (unsigned)maxlen);
    out->p = o->via.str.ptr;
    out->n = o->via.str.size;
    return 1;
}

static int get_bin(struct pctx *c, const char *key, bool req, struct ptc_str *out)
{
    const msgpack_object *o;
    int rc = want(c, key, req, &o);
    if (rc <= 0)
        return rc;
    if (o->type != MSGPACK_OBJECT_BIN)
        return fail(c, PTC_ETYPE, "%s: expected bin", key);
    out->p = o->via.bin.ptr;
    out->n = o->via.bin.size;
    return 1;
}

static int get_uuid(struct pctx *c, const char *key, bool req, ptc_uuid *out)
{
    const msgpack_object *o;
    int rc = want(c, key, req, &o);
    if (rc <= 0)
        return rc;
    if (o->type != MSGPACK_OBJECT_BIN || o->via.bin.size != 16)
        return fail(c, PTC_ETYPE, "%s: expected 16-byte bin", key);
    memcpy(out->b, o->via.bin.ptr, 16);
    return 1;
}

/* A str key whose value must be one of a name table; `expect` lists the names for the message. */
static int get_name(struct pctx *c, const char *key, bool req, int (*lookup)(const char *, size_t),
                    const char *expect, int *out)
{
    const msgpack_object *o;
    int rc = want(c, key, req, &o);
    if (rc <= 0)
        return rc;
    int v = o->type == MSGPACK_OBJECT_STR ? lookup(o->via.str.ptr, o->via.str.size) : PTC_EINVAL;
    if (v < 0)
        return fail(c, PTC_ETYPE, "%s: expected %s", key, expect);
    *out = v;
    return 1;
}

static int signal_op_from_name(const char *s, size_t n)
{
    return ptc_signal_from_name(s, n);
}

/* The `signal` of an info or STATE: a name from ptc_signal_name, or nil. */
static int get_signo(struct pctx *c, const char *key, int *out)
{
    const msgpack_object *o;
    int rc = want(c, key, false, &o);
    if (rc <= 0)
        return rc;
    if (o->type != MSGPACK_OBJECT_STR ||
        ptc_signal_from_any_name(o->via.str.ptr, o->via.str.size, out))
        return fail(c, PTC_ETYPE, "%s: expected a signal name such as \"TERM\"", key);
    return 1;
}

static bool has_byte(const char *p, size_t n, char ch)
{
    return n && memchr(p, ch, n) != NULL;
}

/* Array of str into an allocated array of views (NUL bytes refused: they cannot reach execve). */
static int get_strv(struct pctx *c, const char *key, const msgpack_object *o, bool nonempty,
                    uint32_t maxn, uint32_t maxlen, struct ptc_str **out, uint32_t *count)
{
    if (o->type != MSGPACK_OBJECT_ARRAY || (nonempty && o->via.array.size == 0))
        return fail(c, PTC_ETYPE, "%s: expected %sarray of strings", key,
                    nonempty ? "non-empty " : "");
    uint32_t n = o->via.array.size;
    if (n > maxn)
        return fail(c, PTC_ELIMIT, "%s: more than %u entries", key, (unsigned)maxn);
    if (n == 0)
        return 1;
    *out = calloc(n, sizeof(**out));
    if (!*out)
        return fail(c, PTC_ENOMEM, "%s: out of memory", key);
    for (uint32_t i = 0; i < n; i++) {
        const msgpack_object *e = &o->via.array.ptr[i];
        if (e->type != MSGPACK_OBJECT_STR)
            return fail(c, PTC_ETYPE, "%s[%u]: expected string", key, (unsigned)i);
        if (e->via.str.size > maxlen)
            return fail(c, PTC_ELIMIT, "%s[%u]: longer than %u bytes", key, (unsigned)i,
                        (unsigned)maxlen);
        if (has_byte(e->via.str.ptr, e->via.str.size, '\0'))
            return fail(c, PTC_ETYPE, "%s[%u]: contains a NUL byte", key, (unsigned)i);
        (*out)[i].p = e->via.str.ptr;
        (*out)[i].n = e->via.str.size;
        *count = i + 1;
    }
    return 1;
}

/*
 * Unpacks a payload that passed the scan. The scan has bounded every count by the bytes present,
 * the depth by msgpack-c's own stack and the total by max_items, so the zone stays small.
 */
static int unpack(const uint8_t *buf, size_t n, msgpack_unpacked *up, struct pctx *c)
{
    size_t off = 0;
    msgpack_unpack_return ur = msgpack_unpack_next(up, (const char *)buf, n, &off);
    if (ur == MSGPACK_UNPACK_NOMEM_ERROR)
        return fail(c, PTC_ENOMEM, "payload: out of memory");
    if (ur != MSGPACK_UNPACK_SUCCESS || off != n)
        return fail(c, PTC_EMSGPACK, "payload: invalid msgpack");
    if (up->data.type != MSGPACK_OBJECT_MAP)
        return fail(c, PTC_ETYPE, "payload: expected a map");
    c->map = &up->data;
    return 0;
}

/*
 * Unpacks a payload that passed the scan, runs fields(c, out) over its map and releases what
 * msgpack-c allocated, so no parser handles the unpacked objects' lifetime. 0 or the first
 * negative code.
 */
static int with_map(const uint8_t *buf, size_t n, struct pctx *c,
                    int (*fields)(struct pctx *, void *), void *out)
{
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    int rc = unpack(buf, n, &up, c);
    if (rc == 0)
        rc = fields(c, out);
    msgpack_unpacked_destroy(&up);
    c->map = NULL;
    return rc;
}

/* Scans the payload, then with_map. */
static int parse_map(const uint8_t *buf, size_t n, struct pctx *c,
                     int (*fields)(struct pctx *, void *), void *out)
{
    int rc = ptc_msg_scan_why(buf, n, c->lim, c->err->message, sizeof(c->err->message));
    if (rc < 0)
        return rc;
    return with_map(buf, n, c, fields, out);
}

/* ---- building -------------------------------------------------------------------------------- */

static int buf_write(void *data, const char *p, size_t n)
{
    return ptc_buf_append(data, p, n) == 0 ? 0 : -1;
}

/* The pack functions return -1 when the write callback failed, i.e. ptc_buf_append ran out of
 * memory. */
#define PK(x)                                                                                      \
    do {                                                                                           \
        if ((x) != 0)                                                                              \
            return PTC_ENOMEM;                                                                     \
    } while (0)
#define TRY(x)                                                                                     \
    do {                                                                                           \
        int rc_ = (x);                                                                             \
        if (rc_ < 0)                                                                               \
            return rc_;                                                                            \
    } while (0)

static int pk_strn(msgpack_packer *pk, const char *p, size_t n)
{
    if (n > UINT32_MAX || (!p && n))
        return PTC_EINVAL;
    PK(msgpack_pack_str(pk, n));
    if (n)
        PK(msgpack_pack_str_body(pk, p, n));
    return 0;
}

static int pk_cstr(msgpack_packer *pk, const char *s)
{
    return pk_strn(pk, s, strlen(s));
}

static int pk_str(msgpack_packer *pk, struct ptc_str v)
{
    return pk_strn(pk, v.p, v.n);
}

static int pk_bin(msgpack_packer *pk, const void *p, size_t n)
{
    if (n > UINT32_MAX || (!p && n))
        return PTC_EINVAL;
    PK(msgpack_pack_bin(pk, n));
    if (n)
        PK(msgpack_pack_bin_body(pk, p, n));
    return 0;
}

static int pk_u64(msgpack_packer *pk, uint64_t v)
{
    PK(msgpack_pack_uint64(pk, v));
    return 0;
}

static int pk_bool(msgpack_packer *pk, bool v)
{
    PK(v ? msgpack_pack_true(pk) : msgpack_pack_false(pk));
    return 0;
}

static int pk_nil(msgpack_packer *pk)
{
    PK(msgpack_pack_nil(pk));
    return 0;
}

static int pk_map(msgpack_packer *pk, size_t n)
{
    PK(msgpack_pack_map(pk, n));
    return 0;
}

/* The name of an enum value in [0, count) that has one (name(v) not ""), else PTC_EINVAL. */
static int pk_name(msgpack_packer *pk, const char *(*name)(int), int count, int v)
{
    const char *s = v >= 0 && v < count ? name(v) : "";
    if (!*s)
        return PTC_EINVAL;
    return pk_cstr(pk, s);
}

/* Runs a builder into b; on any failure b is left as it was. */
static int build(struct ptc_buf *b, int (*fn)(msgpack_packer *, const void *), const void *arg)
{
    if (!b || !arg)
        return PTC_EINVAL;
    size_t mark = b->len;
    msgpack_packer pk;
    msgpack_packer_init(&pk, b, buf_write);
    int rc = fn(&pk, arg);
    if (rc < 0)
        b->len = mark;
    return rc;
}

/* ---- session info ---------------------------------------------------------------------------- */

/*
 * Info map, always 16 keys in PTC1's order: id, name, argv, cwd, pid, state, exit_code, signal,
 * cols, rows, created_ms, updated_ms, start, end, clients, attention. pid, exit_code and signal are
 * nil unless flagged in `has`.
 */
static int info_pack(msgpack_packer *pk, const struct ptc_info *in)
{
    char tmp[16];
    TRY(pk_map(pk, 16));
    TRY(pk_cstr(pk, "id"));
    TRY(pk_bin(pk, in->id.b, 16));
    TRY(pk_cstr(pk, "name"));
    TRY(pk_str(pk, in->name));
    TRY(pk_cstr(pk, "argv"));
    if (in->argc && !in->argv)
        return PTC_EINVAL;
    PK(msgpack_pack_array(pk, in->argc));
    for (uint32_t i = 0; i < in->argc; i++)
        TRY(pk_str(pk, in->argv[i]));
    TRY(pk_cstr(pk, "cwd"));
    TRY(pk_str(pk, in->cwd));
    TRY(pk_cstr(pk, "pid"));
    TRY(in->has & PTC_HAS_PID ? pk_u64(pk, in->pid) : pk_nil(pk));
    TRY(pk_cstr(pk, "state"));
    TRY(pk_name(pk, ptc_state_name, PTC_ST__COUNT, in->state));
    TRY(pk_cstr(pk, "exit_code"));
    if (in->has & PTC_HAS_EXIT_CODE)
        PK(msgpack_pack_int(pk, in->exit_code));
    else
        TRY(pk_nil(pk));
    TRY(pk_cstr(pk, "signal"));
    TRY(in->has & PTC_HAS_SIGNO ? pk_cstr(pk, ptc_signal_name(in->signo, tmp)) : pk_nil(pk));
    TRY(pk_cstr(pk, "cols"));
    PK(msgpack_pack_uint16(pk, in->cols));
    TRY(pk_cstr(pk, "rows"));
    PK(msgpack_pack_uint16(pk, in->rows));
    TRY(pk_cstr(pk, "created_ms"));
    TRY(pk_u64(pk, in->created_ms));
    TRY(pk_cstr(pk, "updated_ms"));
    TRY(pk_u64(pk, in->updated_ms));
    TRY(pk_cstr(pk, "start"));
    TRY(pk_u64(pk, in->start));
    TRY(pk_cstr(pk, "end"));
    TRY(pk_u64(pk, in->end));
    TRY(pk_cstr(pk, "clients"));
    PK(msgpack_pack_uint32(pk, in->clients));
    TRY(pk_cstr(pk, "attention"));
    TRY(pk_name(pk, ptc_attention_name, PTC_ATT__COUNT, in->attention));
    return 0;
}

/* Releases the argv array of a parsed info. Safe on a zeroed struct and twice. */
void ptc_info_free(struct ptc_info *i)
{
    if (!i)
        return;
    free(i->argv);
    i->argv = NULL;
    i->argc = 0;
}

/*
 * Parses an info map. Every key the builder always writes is required; pid, exit_code and signal
 * may be nil or absent. The key name in messages is prefixed with `what` ("info", "sessions[3]").
 */
static int info_parse(struct pctx *outer, const msgpack_object *o, const char *what,
                      struct ptc_info *in)
{
    memset(in, 0, sizeof(*in));
    if (o->type != MSGPACK_OBJECT_MAP)
        return fail(outer, PTC_ETYPE, "%s: expected a map", what);
    struct pctx c = {o, outer->lim, outer->err};
    uint64_t v;
    int rc;
    /* key names are prefixed after the fact so that the getters stay simple */
    if ((rc = get_uuid(&c, "id", true, &in->id)) < 0)
        goto bad;
    if ((rc = get_str(&c, "name", true, c.lim->max_str, &in->name)) < 0)
        goto bad;
    const msgpack_object *av;
    if ((rc = want(&c, "argv", true, &av)) < 0)
        goto bad;
    if ((rc = get_strv(&c, "argv", av, false, c.lim->max_argv, c.lim->max_str, &in->argv,
                       &in->argc)) < 0)
        goto bad;
    if ((rc = get_str(&c, "cwd", true, c.lim->max_str, &in->cwd)) < 0)
        goto bad;
    if ((rc = get_uint(&c, "pid", false, 0, UINT64_MAX, &in->pid)) < 0)
        goto bad;
    if (rc > 0)
        in->has |= PTC_HAS_PID;
    if ((rc = get_name(&c, "state", true, ptc_state_from_name, "a state name", &in->state)) < 0)
        goto bad;
    if ((rc = get_int(&c, "exit_code", false, &in->exit_code)) < 0)
        goto bad;
    if (rc > 0)
        in->has |= PTC_HAS_EXIT_CODE;
    if ((rc = get_signo(&c, "signal", &in->signo)) < 0)
        goto bad;
    if (rc > 0)
        in->has |= PTC_HAS_SIGNO;
    if ((rc = get_u16(&c, "cols", true, 0, &in->cols)) < 0 ||
        (rc = get_u16(&c, "rows", true, 0, &in->rows)) < 0 ||
        (rc = get_uint(&c, "created_ms", true, 0, UINT64_MAX, &in->created_ms)) < 0 ||
        (rc = get_uint(&c, "updated_ms", true, 0, UINT64_MAX, &in->updated_ms)) < 0 ||
        (rc = get_uint(&c, "start", true, 0, UINT64_MAX, &in->start)) < 0 ||
        (rc = get_uint(&c, "end", true, 0, UINT64_MAX, &in->end)) < 0 ||
        (rc = get_uint(&c, "clients", true, 0, UINT32_MAX, &v)) < 0)
        goto bad;
    in->clients = (uint32_t)v;
    if ((rc = get_name(&c, "attention", true, ptc_attention_from_name, "an attention level",
                       &in->attention)) < 0)
        goto bad;
    return 0;
bad:;
    /* prefix the message with "what." (what is short: a key and an index) */
    char *m = outer->err->message;
    size_t cap = sizeof(outer->err->message), pl = strlen(what) + 1, ml = strlen(m);
    if (pl < cap / 2) {
        if (pl + ml >= cap)
            ml = cap - 1 - pl;
        memmove(m + pl, m, ml);
        memcpy(m, what, pl - 1);
        m[pl - 1] = '.';
        m[pl + ml] = '\0';
    }
    return rc;
}

/* ---- the op table ---------------------------------------------------------------------------- */

/* Kinds of request arguments. */
enum argkind {
    ARG_UINT,   /* uint64_t */
    ARG_DIM,    /* uint16_t, 1..65535 */
    ARG_STR,    /* ptc_str, up to max_str (the scan's limit) */
    ARG_TEXT,   /* ptc_str, up to max_arg_len, no NUL */
    ARG_ARGV,   /* argv/argc */
    ARG_ENV,    /* env_keys/env_vals/envc */
    ARG_MODE,   /* int, enum ptc_mode */
    ARG_UNTIL,  /* int, enum ptc_until */
    ARG_SIGNAL, /* ptc_str, one of the signal op's names */
};

struct argdef {
    const char *key;
    uint8_t kind;
    uint32_t has;
    size_t off; /* offset of the field in struct ptc_request */
};

/* Kinds of reply results. */
enum reskind {
    RES_STR,   /* ptc_str */
    RES_UINT,  /* uint64_t */
    RES_DIM,   /* uint16_t */
    RES_BOOL,  /* bool */
    RES_BIN,   /* ptc_str of bytes */
    RES_UUID,  /* ptc_uuid */
    RES_STATE, /* int, enum ptc_state */
    RES_SCOPE, /* int, enum ptc_mode as "control"/"view" */
    RES_INFO,  /* struct ptc_info */
    RES_INFOS, /* sessions/nsessions */
};

struct resdef {
    const char *key;
    uint8_t kind;
    size_t off; /* offset of the field in struct ptc_reply */
};

/* One row per op: its name, the arguments of its REQUEST and the results of its REPLY, in wire
 * order. */
struct opdef {
    const char *name;
    uint32_t required;     /* PTC_HAS_* bits of arguments that must be present */
    struct argdef args[9]; /* NULL-key terminated */
    struct resdef res[6];  /* NULL-key terminated */
};

#define RQ(f) offsetof(struct ptc_request, f)
#define RP(f) offsetof(struct ptc_reply, f)

static const struct opdef ops[PTC_OP__COUNT] = {
    [PTC_OP_HELLO] = {"hello",
                      PTC_HAS_VERSION,
                      {{"version", ARG_UINT, PTC_HAS_VERSION, RQ(version)},
                       {"token", ARG_STR, PTC_HAS_TOKEN, RQ(token)},
                       {"client", ARG_STR, PTC_HAS_CLIENT, RQ(client)}},
                      {{"server", RES_STR, RP(server)},
                       {"version", RES_UINT, RP(version)},
                       {"max_frame", RES_UINT, RP(max_frame)},
                       {"scope", RES_SCOPE, RP(scope)}}},
    [PTC_OP_OPEN] = {"open",
                     0,
                     {{"argv", ARG_ARGV, PTC_HAS_ARGV, 0},
                      {"cwd", ARG_TEXT, PTC_HAS_CWD, RQ(cwd)},
                      {"env", ARG_ENV, PTC_HAS_ENV, 0},
                      {"cols", ARG_DIM, PTC_HAS_COLS, RQ(cols)},
                      {"rows", ARG_DIM, PTC_HAS_ROWS, RQ(rows)},
                      {"name", ARG_TEXT, PTC_HAS_NAME, RQ(name)},
                      {"idle_ttl_s", ARG_UINT, PTC_HAS_IDLE_TTL, RQ(idle_ttl_s)},
                      {"attach", ARG_MODE, PTC_HAS_ATTACH, RQ(attach)}},
                     {{"session", RES_UUID, RP(session)},
                      {"pid", RES_UINT, RP(pid)},
                      {"state", RES_STATE, RP(state)}}},
    [PTC_OP_LIST] = {"list", 0, {{0}}, {{"sessions", RES_INFOS, 0}}},
    [PTC_OP_INFO] = {"info", 0, {{0}}, {{"info", RES_INFO, RP(info)}}},
    [PTC_OP_ATTACH] = {"attach",
                       0,
                       {{"offset", ARG_UINT, PTC_HAS_OFFSET, RQ(offset)},
                        {"mode", ARG_MODE, PTC_HAS_MODE, RQ(mode)},
                        {"window", ARG_UINT, PTC_HAS_WINDOW, RQ(window)}},
                       {{"start", RES_UINT, RP(start)},
                        {"end", RES_UINT, RP(end)},
                        {"state", RES_STATE, RP(state)},
                        {"cols", RES_DIM, RP(cols)},
                        {"rows", RES_DIM, RP(rows)}}},
    [PTC_OP_DETACH] = {"detach", 0, {{0}}, {{0}}},
    [PTC_OP_SIGNAL] = {"signal",
                       PTC_HAS_SIGNAL,
                       {{"signal", ARG_SIGNAL, PTC_HAS_SIGNAL, RQ(signal)}},
                       {{0}}},
    [PTC_OP_KILL] = {"kill", 0, {{"grace_ms", ARG_UINT, PTC_HAS_GRACE, RQ(grace_ms)}}, {{0}}},
    [PTC_OP_REMOVE] = {"remove", 0, {{0}}, {{0}}},
    [PTC_OP_READ] = {"read",
                     0,
                     {{"offset", ARG_UINT, PTC_HAS_OFFSET, RQ(offset)},
                      {"max", ARG_UINT, PTC_HAS_MAX, RQ(max)}},
                     {{"data", RES_BIN, RP(data)},
                      {"offset", RES_UINT, RP(offset)},
                      {"next", RES_UINT, RP(next)},
                      {"truncated", RES_BOOL, RP(truncated)}}},
    [PTC_OP_WAIT] = {"wait",
                     PTC_HAS_UNTIL,
                     {{"until", ARG_UNTIL, PTC_HAS_UNTIL, RQ(until)},
                      {"idle_ms", ARG_UINT, PTC_HAS_IDLE_MS, RQ(idle_ms)},
                      {"pattern", ARG_TEXT, PTC_HAS_PATTERN, RQ(pattern)},
                      {"timeout_ms", ARG_UINT, PTC_HAS_TIMEOUT, RQ(timeout_ms)}},
                     {{"matched", RES_BOOL, RP(matched)},
                      {"state", RES_STATE, RP(state)},
                      {"end", RES_UINT, RP(end)}}},
    [PTC_OP_SUBSCRIBE] = {"subscribe", 0, {{0}}, {{0}}},
};

/* "hello", "open", ...; "unknown" for anything else. */
const char *ptc_op_name(int op)
{
    return op >= 0 && op < PTC_OP__COUNT ? ops[op].name : "unknown";
}

/* Looks an op up by name: PTC_OP_* or PTC_OP_UNKNOWN. */
int ptc_op_from_name(const char *s, size_t n)
{
    for (int i = 0; i < PTC_OP__COUNT; i++)
        if (strlen(ops[i].name) == n && (n == 0 || memcmp(ops[i].name, s, n) == 0))
            return i;
    return PTC_OP_UNKNOWN;
}

/* ---- REQUEST --------------------------------------------------------------------------------- */

static int parse_env(struct pctx *c, const msgpack_object *o, struct ptc_request *r)
{
    const struct ptc_limits *lim = c->lim;
    if (o->type != MSGPACK_OBJECT_MAP)
        return fail(c, PTC_ETYPE, "env: expected map of string to string");
    uint32_t n = o->via.map.size;
    if (n > lim->max_env)
        return fail(c, PTC_ELIMIT, "env: more than %u entries", (unsigned)lim->max_env);
    if (n == 0)
        return 0;
    r->env_keys = calloc(n, sizeof(*r->env_keys));
    r->env_vals = calloc(n, sizeof(*r->env_vals));
    if (!r->env_keys || !r->env_vals)
        return fail(c, PTC_ENOMEM, "env: out of memory");
    for (uint32_t i = 0; i < n; i++) {
        const msgpack_object *k = &o->via.map.ptr[i].key, *v = &o->via.map.ptr[i].val;
        if (k->type != MSGPACK_OBJECT_STR || v->type != MSGPACK_OBJECT_STR)
            return fail(c, PTC_ETYPE, "env: expected map of string to string");
        if (k->via.str.size == 0)
            return fail(c, PTC_ETYPE, "env: empty key");
        if (k->via.str.size > lim->max_arg_len || v->via.str.size > lim->max_arg_len)
            return fail(c, PTC_ELIMIT, "env: entry longer than %u bytes",
                        (unsigned)lim->max_arg_len);
        if (has_byte(k->via.str.ptr, k->via.str.size, '=') ||
            has_byte(k->via.str.ptr, k->via.str.size, '\0') ||
            has_byte(v->via.str.ptr, v->via.str.size, '\0'))
            return fail(c, PTC_ETYPE, "env: key with '=' or NUL, or value with NUL");
        r->env_keys[i] = (struct ptc_str){k->via.str.ptr, k->via.str.size};
        r->env_vals[i] = (struct ptc_str){v->via.str.ptr, v->via.str.size};
        r->envc = i + 1;
    }
    return 0;
}

/* Parses one argument of the op's table into r. 0 (absent or set) or a negative code. */
static int parse_arg(struct pctx *c, const struct argdef *a, struct ptc_request *r)
{
    bool req = (ops[r->op].required & a->has) != 0;
    char *f = (char *)r + a->off;
    const msgpack_object *o;
    int rc;

    switch (a->kind) {
    case ARG_UINT:
        rc = get_uint(c, a->key, req, 0, UINT64_MAX, (uint64_t *)(void *)f);
        break;
    case ARG_DIM:
        rc = get_u16(c, a->key, req, 1, (uint16_t *)(void *)f);
        break;
    case ARG_STR:
        rc = get_str(c, a->key, req, c->lim->max_str, (struct ptc_str *)(void *)f);
        break;
    case ARG_TEXT:
        rc = get_str(c, a->key, req, c->lim->max_arg_len, (struct ptc_str *)(void *)f);
        if (rc > 0 &&
            has_byte(((struct ptc_str *)(void *)f)->p, ((struct ptc_str *)(void *)f)->n, '\0'))
            rc = fail(c, PTC_ETYPE, "%s: contains a NUL byte", a->key);
        break;
    case ARG_ARGV:
        rc = want(c, a->key, req, &o);
        if (rc > 0)
            rc = get_strv(c, a->key, o, true, c->lim->max_argv, c->lim->max_arg_len, &r->argv,
                          &r->argc);
        break;
    case ARG_ENV:
        rc = want(c, a->key, req, &o);
        if (rc > 0) {
            rc = parse_env(c, o, r);
            if (rc == 0)
                rc = 1;
        }
        break;
    case ARG_MODE:
        rc = get_name(c, a->key, req, ptc_mode_from_name, "\"interactive\" or \"view\"",
                      (int *)(void *)f);
        break;
    case ARG_UNTIL:
        rc = get_name(c, a->key, req, ptc_until_from_name, "\"exit\", \"idle\" or \"match\"",
                      (int *)(void *)f);
        break;
    case ARG_SIGNAL: {
        int signo;
        rc = get_name(c, a->key, req, signal_op_from_name,
                      "one of INT TERM HUP KILL STOP CONT WINCH QUIT USR1 USR2", &signo);
        if (rc > 0)
            get_str(c, a->key, req, c->lim->max_str, (struct ptc_str *)(void *)f);
        break;
    }
    default:
        return fail(c, PTC_EINVAL, "%s: internal error", a->key);
    }
    if (rc > 0)
        r->has |= a->has;
    return rc < 0 ? rc : 0;
}

/* The keys of a REQUEST map: id, op, then the op's arguments. */
static int request_fields(struct pctx *c, void *arg)
{
    struct ptc_request *r = arg;
    TRY(get_uint(c, "id", true, 0, UINT64_MAX, &r->id));
    c->err->have_id = true;
    c->err->id = r->id;

    const msgpack_object *o = map_get(c->map, "op");
    if (!o)
        return fail(c, PTC_EMISSING, "op: missing");
    if (o->type != MSGPACK_OBJECT_STR)
        return fail(c, PTC_ETYPE, "op: expected string");
    r->op = ptc_op_from_name(o->via.str.ptr, o->via.str.size);
    if (r->op == PTC_OP_UNKNOWN) {
        char shown[44];
        ptc_str_printable(shown, o->via.str.ptr, o->via.str.size);
        return fail(c, PTC_EINVAL, "unknown op '%s'", shown);
    }
    for (const struct argdef *a = ops[r->op].args; a->key; a++)
        TRY(parse_arg(c, a, r));
    if (r->op == PTC_OP_WAIT && r->until == PTC_UNTIL_MATCH && !(r->has & PTC_HAS_PATTERN))
        return fail(c, PTC_EMISSING, "pattern: missing (required when until is \"match\")");
    return 0;
}

/* Parses a REQUEST payload; see ptc.h for the return codes. */
int ptc_request_parse(const uint8_t *buf, size_t n, const struct ptc_limits *lim,
                      struct ptc_request *r, struct ptc_perr *err)
{
    struct ptc_perr dummy;
    if (!err)
        err = &dummy;
    memset(err, 0, sizeof(*err));
    memset(r, 0, sizeof(*r));
    r->op = PTC_OP_UNKNOWN;
    r->cols = 80;
    r->rows = 24;
    r->grace_ms = 5000;
    r->max = 65536;
    r->idle_ms = 2000;
    if (!lim)
        lim = &ptc_limits_default;

    struct pctx c = {NULL, lim, err};
    int rc = ptc_msg_scan_why(buf, n, lim, err->message, sizeof(err->message));
    if (rc < 0) {
        /*
         * Malformed msgpack is a protocol error. A well-formed map that is only over a limit
         * gets a bad_request reply when its id can be read from the bytes.
         */
        if (rc == PTC_ELIMIT && ptc_msg_peek_id(buf, n, &err->id) == 0) {
            err->have_id = true;
            return rc;
        }
        return PTC_EPROTO;
    }

    rc = with_map(buf, n, &c, request_fields, r);
    /* until the id is read, any failure but ENOMEM is a protocol error */
    if (rc < 0 && !err->have_id && rc != PTC_ENOMEM)
        rc = PTC_EPROTO;
    return rc;
}

/* Releases what a parse allocated. Safe after a failed parse, on a zeroed struct and twice. */
void ptc_request_free(struct ptc_request *r)
{
    if (!r)
        return;
    free(r->argv);
    free(r->env_keys);
    free(r->env_vals);
    r->argv = NULL;
    r->env_keys = r->env_vals = NULL;
    r->argc = r->envc = 0;
}

static int arg_pack(msgpack_packer *pk, const struct argdef *a, const struct ptc_request *r)
{
    const char *f = (const char *)r + a->off;
    TRY(pk_cstr(pk, a->key));
    switch (a->kind) {
    case ARG_UINT:
        return pk_u64(pk, *(const uint64_t *)(const void *)f);
    case ARG_DIM:
        PK(msgpack_pack_uint16(pk, *(const uint16_t *)(const void *)f));
        return 0;
    case ARG_STR:
    case ARG_TEXT:
    case ARG_SIGNAL:
        return pk_str(pk, *(const struct ptc_str *)(const void *)f);
    case ARG_ARGV:
        if (r->argc && !r->argv)
            return PTC_EINVAL;
        PK(msgpack_pack_array(pk, r->argc));
        for (uint32_t i = 0; i < r->argc; i++)
            TRY(pk_str(pk, r->argv[i]));
        return 0;
    case ARG_ENV:
        if (r->envc && (!r->env_keys || !r->env_vals))
            return PTC_EINVAL;
        TRY(pk_map(pk, r->envc));
        for (uint32_t i = 0; i < r->envc; i++) {
            TRY(pk_str(pk, r->env_keys[i]));
            TRY(pk_str(pk, r->env_vals[i]));
        }
        return 0;
    case ARG_MODE:
        return pk_name(pk, ptc_mode_name, 3, *(const int *)(const void *)f);
    case ARG_UNTIL:
        return pk_name(pk, ptc_until_name, 3, *(const int *)(const void *)f);
    }
    return PTC_EINVAL;
}

static int request_pack(msgpack_packer *pk, const void *arg)
{
    const struct ptc_request *r = arg;
    if (r->op < 0 || r->op >= PTC_OP__COUNT)
        return PTC_EINVAL;
    const struct opdef *od = &ops[r->op];
    size_t nkeys = 2;
    for (const struct argdef *a = od->args; a->key; a++)
        nkeys += (r->has & a->has) != 0;
    TRY(pk_map(pk, nkeys));
    TRY(pk_cstr(pk, "id"));
    TRY(pk_u64(pk, r->id));
    TRY(pk_cstr(pk, "op"));
    TRY(pk_cstr(pk, od->name));
    for (const struct argdef *a = od->args; a->key; a++)
        if (r->has & a->has)
            TRY(arg_pack(pk, a, r));
    return 0;
}

/* Appends {id, op, ...args flagged in has, in the op table's order}. */
int ptc_request_build(struct ptc_buf *b, const struct ptc_request *r)
{
    return build(b, request_pack, r);
}

/* ---- REPLY ----------------------------------------------------------------------------------- */

static int res_pack(msgpack_packer *pk, const struct resdef *d, const struct ptc_reply *r)
{
    const char *f = (const char *)r + d->off;
    TRY(pk_cstr(pk, d->key));
    switch (d->kind) {
    case RES_STR:
        return pk_str(pk, *(const struct ptc_str *)(const void *)f);
    case RES_UINT:
        return pk_u64(pk, *(const uint64_t *)(const void *)f);
    case RES_DIM:
        PK(msgpack_pack_uint16(pk, *(const uint16_t *)(const void *)f));
        return 0;
    case RES_BOOL:
        return pk_bool(pk, *(const bool *)(const void *)f);
    case RES_BIN: {
        const struct ptc_str *v = (const void *)f;
        return pk_bin(pk, v->p, v->n);
    }
    case RES_UUID:
        return pk_bin(pk, ((const ptc_uuid *)(const void *)f)->b, 16);
    case RES_STATE:
        return pk_name(pk, ptc_state_name, PTC_ST__COUNT, *(const int *)(const void *)f);
    case RES_SCOPE:
        return pk_name(pk, ptc_scope_name, 3, *(const int *)(const void *)f);
    case RES_INFO:
        return info_pack(pk, (const struct ptc_info *)(const void *)f);
    case RES_INFOS:
        if (r->nsessions && !r->sessions)
            return PTC_EINVAL;
        PK(msgpack_pack_array(pk, r->nsessions));
        for (uint32_t i = 0; i < r->nsessions; i++)
            TRY(info_pack(pk, &r->sessions[i]));
        return 0;
    }
    return PTC_EINVAL;
}

static int reply_pack(msgpack_packer *pk, const void *arg)
{
    const struct ptc_reply *r = arg;
    if (!r->ok) {
        if (r->error < 0 || r->error >= PTC_C__COUNT)
            return PTC_EINVAL;
        TRY(pk_map(pk, 4));
        TRY(pk_cstr(pk, "id"));
        TRY(pk_u64(pk, r->id));
        TRY(pk_cstr(pk, "ok"));
        TRY(pk_bool(pk, false));
        TRY(pk_cstr(pk, "error"));
        TRY(pk_cstr(pk, ptc_code_name(r->error)));
        TRY(pk_cstr(pk, "message"));
        return pk_str(pk, r->message);
    }
    if (r->op < PTC_OP_UNKNOWN || r->op >= PTC_OP__COUNT)
        return PTC_EINVAL;
    const struct resdef *res = r->op >= 0 ? ops[r->op].res : NULL;
    size_t nkeys = 2;
    for (const struct resdef *d = res; d && d->key; d++)
        nkeys++;
    TRY(pk_map(pk, nkeys));
    TRY(pk_cstr(pk, "id"));
    TRY(pk_u64(pk, r->id));
    TRY(pk_cstr(pk, "ok"));
    TRY(pk_bool(pk, true));
    for (const struct resdef *d = res; d && d->key; d++)
        TRY(res_pack(pk, d, r));
    return 0;
}

/* Appends {id, ok:true, results of op} or {id, ok:false, error, message}. */
int ptc_reply_build(struct ptc_buf *b, const struct ptc_reply *r)
{
    return build(b, reply_pack, r);
}

static int res_parse(struct pctx *c, const struct resdef *d, struct ptc_reply *r)
{
    char *f = (char *)r + d->off;
    const msgpack_object *o;
    int rc;

    switch (d->kind) {
    case RES_STR:
        return get_str(c, d->key, true, c->lim->max_str, (struct ptc_str *)(void *)f);
    case RES_UINT:
        return get_uint(c, d->key, true, 0, UINT64_MAX, (uint64_t *)(void *)f);
    case RES_DIM:
        return get_u16(c, d->key, true, 0, (uint16_t *)(void *)f);
    case RES_BOOL:
        return get_bool(c, d->key, true, (bool *)(void *)f);
    case RES_BIN:
        return get_bin(c, d->key, true, (struct ptc_str *)(void *)f);
    case RES_UUID:
        return get_uuid(c, d->key, true, (ptc_uuid *)(void *)f);
    case RES_STATE:
        return get_name(c, d->key, true, ptc_state_from_name, "a state name", (int *)(void *)f);
    case RES_SCOPE:
        return get_name(c, d->key, true, ptc_scope_from_name, "\"control\" or \"view\"",
                        (int *)(void *)f);
    case RES_INFO:
        if ((rc = want(c, d->key, true, &o)) < 0)
            return rc;
        return info_parse(c, o, d->key, (struct ptc_info *)(void *)f);
    case RES_INFOS: {
        if ((rc = want(c, d->key, true, &o)) < 0)
            return rc;
        if (o->type != MSGPACK_OBJECT_ARRAY)
            return fail(c, PTC_ETYPE, "%s: expected array of info maps", d->key);
        uint32_t n = o->via.array.size;
        if (n > c->lim->max_items)
            return fail(c, PTC_ELIMIT, "%s: more than %u entries", d->key,
                        (unsigned)c->lim->max_items);
        if (n == 0)
            return 0;
        r->sessions = calloc(n, sizeof(*r->sessions));
        if (!r->sessions)
            return fail(c, PTC_ENOMEM, "%s: out of memory", d->key);
        for (uint32_t i = 0; i < n; i++) {
            char what[32];
            snprintf(what, sizeof(what), "%s[%u]", d->key, (unsigned)i);
            r->nsessions = i + 1;
            if ((rc = info_parse(c, &o->via.array.ptr[i], what, &r->sessions[i])) < 0)
                return rc;
        }
        return 0;
    }
    }
    return fail(c, PTC_EINVAL, "%s: internal error", d->key);
}

/* The keys of a REPLY map: id, ok, then error and message or the results of rp->op. */
static int reply_fields(struct pctx *c, void *arg)
{
    struct ptc_reply *rp = arg;
    TRY(get_uint(c, "id", true, 0, UINT64_MAX, &rp->id));
    c->err->have_id = true;
    c->err->id = rp->id;
    TRY(get_bool(c, "ok", true, &rp->ok));
    if (!rp->ok) {
        TRY(get_name(c, "error", true, ptc_code_from_name, "an error code", &rp->error));
        TRY(get_str(c, "message", true, c->lim->max_str, &rp->message));
    } else if (rp->op >= 0) {
        for (const struct resdef *d = ops[rp->op].res; d->key; d++)
            TRY(res_parse(c, d, rp));
    }
    return 0;
}

/* Parses a REPLY payload for rp->op (set by the caller). 0 or a negative code. */
int ptc_reply_parse(const uint8_t *buf, size_t n, const struct ptc_limits *lim,
                    struct ptc_reply *rp, struct ptc_perr *err)
{
    struct ptc_perr dummy;
    if (!err)
        err = &dummy;
    memset(err, 0, sizeof(*err));
    int op = rp->op;
    memset(rp, 0, sizeof(*rp));
    rp->op = op;
    if (op < PTC_OP_UNKNOWN || op >= PTC_OP__COUNT) {
        snprintf(err->message, sizeof(err->message), "reply parse: invalid op %d", op);
        return PTC_EINVAL;
    }

    struct pctx c = {NULL, lim ? lim : &ptc_limits_default, err};
    return parse_map(buf, n, &c, reply_fields, rp);
}

/* Reads only the `id` of a REPLY payload. 0, PTC_EMSGPACK, PTC_EMISSING or PTC_ETYPE. */
int ptc_reply_peek_id(const uint8_t *buf, size_t n, uint64_t *id)
{
    uint64_t v;
    int rc = ptc_msg_peek_id(buf, n, &v);
    if (rc == 0 && id)
        *id = v;
    return rc;
}

/* Releases the infos of a parsed reply. Safe on a zeroed struct, after a failure and twice. */
void ptc_reply_free(struct ptc_reply *r)
{
    if (!r)
        return;
    for (uint32_t i = 0; i < r->nsessions; i++)
        ptc_info_free(&r->sessions[i]);
    free(r->sessions);
    r->sessions = NULL;
    r->nsessions = 0;
    ptc_info_free(&r->info);
}

/* ---- STATE ----------------------------------------------------------------------------------- */

static int state_pack(msgpack_packer *pk, const void *arg)
{
    const struct ptc_statemsg *s = arg;
    char tmp[16];
    TRY(pk_map(pk, 5));
    TRY(pk_cstr(pk, "state"));
    TRY(pk_name(pk, ptc_state_name, PTC_ST__COUNT, s->state));
    TRY(pk_cstr(pk, "exit_code"));
    if (s->has & PTC_HAS_EXIT_CODE)
        PK(msgpack_pack_int(pk, s->exit_code));
    else
        TRY(pk_nil(pk));
    TRY(pk_cstr(pk, "signal"));
    TRY(s->has & PTC_HAS_SIGNO ? pk_cstr(pk, ptc_signal_name(s->signo, tmp)) : pk_nil(pk));
    TRY(pk_cstr(pk, "attention"));
    TRY(pk_name(pk, ptc_attention_name, PTC_ATT__COUNT, s->attention));
    TRY(pk_cstr(pk, "end"));
    return pk_u64(pk, s->end);
}

/* Appends {state, exit_code, signal, attention, end}; exit_code/signal nil unless flagged. */
int ptc_state_build(struct ptc_buf *b, const struct ptc_statemsg *s)
{
    return build(b, state_pack, s);
}

/* The keys of a STATE map: state, exit_code, signal, attention, end. */
static int state_fields(struct pctx *c, void *arg)
{
    struct ptc_statemsg *s = arg;
    int rc;
    TRY(get_name(c, "state", true, ptc_state_from_name, "a state name", &s->state));
    if ((rc = get_int(c, "exit_code", false, &s->exit_code)) < 0)
        return rc;
    if (rc > 0)
        s->has |= PTC_HAS_EXIT_CODE;
    if ((rc = get_signo(c, "signal", &s->signo)) < 0)
        return rc;
    if (rc > 0)
        s->has |= PTC_HAS_SIGNO;
    TRY(get_name(c, "attention", true, ptc_attention_from_name, "an attention level",
                 &s->attention));
    TRY(get_uint(c, "end", true, 0, UINT64_MAX, &s->end));
    return 0;
}

/* Parses a STATE payload with the default limits. 0 or a negative code with err->message. */
int ptc_state_parse(const uint8_t *buf, size_t n, struct ptc_statemsg *s, struct ptc_perr *err)
{
    struct ptc_perr dummy;
    if (!err)
        err = &dummy;
    memset(err, 0, sizeof(*err));
    memset(s, 0, sizeof(*s));
    struct pctx c = {NULL, &ptc_limits_default, err};
    return parse_map(buf, n, &c, state_fields, s);
}

/* ---- EVENT ----------------------------------------------------------------------------------- */

static int event_pack(msgpack_packer *pk, const void *arg)
{
    const struct ptc_event *e = arg;
    switch (e->kind) {
    case PTC_EV_SESSION:
        TRY(pk_map(pk, e->removed ? 3 : 2));
        TRY(pk_cstr(pk, "event"));
        TRY(pk_cstr(pk, "session"));
        TRY(pk_cstr(pk, "info"));
        TRY(info_pack(pk, &e->info));
        if (e->removed) {
            TRY(pk_cstr(pk, "removed"));
            TRY(pk_bool(pk, true));
        }
        return 0;
    case PTC_EV_ERROR:
        if (e->error < 0 || e->error >= PTC_C__COUNT)
            return PTC_EINVAL;
        TRY(pk_map(pk, 4));
        TRY(pk_cstr(pk, "event"));
        TRY(pk_cstr(pk, "error"));
        TRY(pk_cstr(pk, "error"));
        TRY(pk_cstr(pk, ptc_code_name(e->error)));
        TRY(pk_cstr(pk, "message"));
        TRY(pk_str(pk, e->message));
        TRY(pk_cstr(pk, "type"));
        PK(msgpack_pack_uint8(pk, e->type));
        return 0;
    }
    return PTC_EINVAL;
}

/* Appends an EVENT `session` or `error` map (unknown kinds: PTC_EINVAL). */
int ptc_event_build(struct ptc_buf *b, const struct ptc_event *e)
{
    return build(b, event_pack, e);
}

/* The keys of an EVENT map: event, then those of a `session` or `error` event. */
static int event_fields(struct pctx *c, void *arg)
{
    struct ptc_event *e = arg;
    TRY(get_str(c, "event", true, c->lim->max_str, &e->name));
    if (ptc_str_eq(e->name, "session")) {
        const msgpack_object *o;
        e->kind = PTC_EV_SESSION;
        TRY(want(c, "info", true, &o));
        TRY(info_parse(c, o, "info", &e->info));
        TRY(get_bool(c, "removed", false, &e->removed));
    } else if (ptc_str_eq(e->name, "error")) {
        uint64_t t;
        e->kind = PTC_EV_ERROR;
        TRY(get_name(c, "error", true, ptc_code_from_name, "an error code", &e->error));
        TRY(get_str(c, "message", true, c->lim->max_str, &e->message));
        TRY(get_uint(c, "type", true, 0, 255, &t));
        e->type = (uint8_t)t;
    } else {
        e->kind = PTC_EV_UNKNOWN;
    }
    return 0;
}

/* Parses an EVENT payload; an unknown event name gives PTC_EV_UNKNOWN with name set and 0. */
int ptc_event_parse(const uint8_t *buf, size_t n, const struct ptc_limits *lim, struct ptc_event *e,
                    struct ptc_perr *err)
{
    struct ptc_perr dummy;
    if (!err)
        err = &dummy;
    memset(err, 0, sizeof(*err));
    memset(e, 0, sizeof(*e));
    struct pctx c = {NULL, lim ? lim : &ptc_limits_default, err};
    return parse_map(buf, n, &c, event_fields, e);
}

/* Releases the info of a parsed event. Safe on a zeroed struct, after a failure and twice. */
void ptc_event_free(struct ptc_event *e)
{
    if (e)
        ptc_info_free(&e->info);
}
