/*
 * libFuzzer target for proto/msg.c. Each input is one msgpack payload, handed to everything that
 * parses untrusted msgpack: ptc_msg_scan, ptc_request_parse, ptc_reply_parse (for every op, with
 * the default limits and with a client's larger ones), ptc_reply_peek_id, ptc_state_parse and
 * ptc_event_parse. Return codes must be from the documented set and agree with each other (a
 * payload the scan calls malformed is a protocol error for a request). Whatever parses is built
 * again and parsed back: a request must give equal fields, and for every message building the
 * re-parsed value must give the same bytes again. Any disagreement traps.
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

static bool sv_eq(struct ptc_str a, struct ptc_str b)
{
    return a.n == b.n && (a.n == 0 || memcmp(a.p, b.p, a.n) == 0);
}

static bool buf_eq(const struct ptc_buf *a, const struct ptc_buf *b)
{
    return a->len == b->len && (a->len == 0 || memcmp(a->data, b->data, a->len) == 0);
}

/* Codes a parser may return for bad input. */
static bool parse_code(int rc)
{
    return rc == PTC_EMSGPACK || rc == PTC_ETYPE || rc == PTC_EMISSING || rc == PTC_ELIMIT;
}

static void check_request_equal(const struct ptc_request *a, const struct ptc_request *b)
{
    CHECK(a->id == b->id && a->op == b->op && a->has == b->has);
    CHECK(a->version == b->version && sv_eq(a->token, b->token) && sv_eq(a->client, b->client));
    CHECK(a->argc == b->argc);
    for (uint32_t i = 0; i < a->argc; i++)
        CHECK(sv_eq(a->argv[i], b->argv[i]));
    CHECK(sv_eq(a->cwd, b->cwd) && a->envc == b->envc);
    for (uint32_t i = 0; i < a->envc; i++)
        CHECK(sv_eq(a->env_keys[i], b->env_keys[i]) && sv_eq(a->env_vals[i], b->env_vals[i]));
    CHECK(a->cols == b->cols && a->rows == b->rows && sv_eq(a->name, b->name));
    CHECK(a->idle_ttl_s == b->idle_ttl_s && a->attach == b->attach);
    CHECK(a->offset == b->offset && a->mode == b->mode && a->window == b->window);
    CHECK(sv_eq(a->signal, b->signal) && a->grace_ms == b->grace_ms && a->max == b->max);
    CHECK(a->until == b->until && a->idle_ms == b->idle_ms && sv_eq(a->pattern, b->pattern));
    CHECK(a->timeout_ms == b->timeout_ms);
}

static void fuzz_request(const uint8_t *data, size_t size, int scan_rc)
{
    struct ptc_request r, r2;
    struct ptc_perr err;
    int rc = ptc_request_parse(data, size, &ptc_limits_default, &r, &err);
    CHECK(rc == 0 || rc == PTC_EPROTO || rc == PTC_EINVAL || parse_code(rc) || rc == PTC_ENOMEM);
    if (scan_rc == PTC_EMSGPACK)
        CHECK(rc == PTC_EPROTO);
    if (rc == PTC_EPROTO)
        CHECK(!err.have_id);
    if (rc < 0 && rc != PTC_EPROTO && rc != PTC_ENOMEM)
        CHECK(err.have_id && err.message[0] != '\0');
    if (rc == PTC_EINVAL)
        CHECK(r.op == PTC_OP_UNKNOWN);
    if (rc == 0) {
        CHECK(scan_rc == 0 && r.op >= 0 && r.op < PTC_OP__COUNT && err.have_id && err.id == r.id);
        struct ptc_buf b, b2;
        ptc_buf_init(&b, 0);
        ptc_buf_init(&b2, 0);
        CHECK(ptc_request_build(&b, &r) == 0);
        CHECK(ptc_request_parse(b.data, b.len, &ptc_limits_default, &r2, &err) == 0);
        check_request_equal(&r, &r2);
        CHECK(ptc_request_build(&b2, &r2) == 0);
        CHECK(buf_eq(&b, &b2));
        ptc_request_free(&r2);
        ptc_buf_free(&b);
        ptc_buf_free(&b2);
    }
    ptc_request_free(&r);
    ptc_request_free(&r);
}

static void fuzz_reply(const uint8_t *data, size_t size, int op, const struct ptc_limits *lim)
{
    struct ptc_reply rp = {.op = op}, rp2;
    struct ptc_perr err;
    int rc = ptc_reply_parse(data, size, lim, &rp, &err);
    CHECK(rc == 0 || parse_code(rc) || rc == PTC_ENOMEM);
    if (rc == 0) {
        uint64_t id;
        CHECK(ptc_reply_peek_id(data, size, &id) == 0 && id == rp.id);
        struct ptc_buf b, b2;
        ptc_buf_init(&b, 0);
        ptc_buf_init(&b2, 0);
        CHECK(ptc_reply_build(&b, &rp) == 0);
        rp2 = (struct ptc_reply){.op = op};
        CHECK(ptc_reply_parse(b.data, b.len, lim, &rp2, &err) == 0);
        CHECK(rp2.id == rp.id && rp2.ok == rp.ok && rp2.nsessions == rp.nsessions);
        CHECK(ptc_reply_build(&b2, &rp2) == 0);
        CHECK(buf_eq(&b, &b2));
        ptc_reply_free(&rp2);
        ptc_buf_free(&b);
        ptc_buf_free(&b2);
    }
    ptc_reply_free(&rp);
}

static void fuzz_state(const uint8_t *data, size_t size)
{
    struct ptc_statemsg s, s2;
    struct ptc_perr err;
    int rc = ptc_state_parse(data, size, &s, &err);
    CHECK(rc == 0 || parse_code(rc) || rc == PTC_ENOMEM);
    if (rc == 0) {
        struct ptc_buf b;
        ptc_buf_init(&b, 0);
        CHECK(ptc_state_build(&b, &s) == 0);
        CHECK(ptc_state_parse(b.data, b.len, &s2, &err) == 0);
        CHECK(s.state == s2.state && s.has == s2.has && s.attention == s2.attention &&
              s.end == s2.end);
        if (s.has & PTC_HAS_EXIT_CODE)
            CHECK(s.exit_code == s2.exit_code);
        if (s.has & PTC_HAS_SIGNO)
            CHECK(s.signo == s2.signo);
        ptc_buf_free(&b);
    }
}

static void fuzz_event(const uint8_t *data, size_t size)
{
    struct ptc_event e, e2;
    struct ptc_perr err;
    int rc = ptc_event_parse(data, size, NULL, &e, &err);
    CHECK(rc == 0 || parse_code(rc) || rc == PTC_ENOMEM);
    if (rc == 0 && e.kind != PTC_EV_UNKNOWN) {
        struct ptc_buf b, b2;
        ptc_buf_init(&b, 0);
        ptc_buf_init(&b2, 0);
        CHECK(ptc_event_build(&b, &e) == 0);
        CHECK(ptc_event_parse(b.data, b.len, NULL, &e2, &err) == 0);
        CHECK(e2.kind == e.kind && e2.removed == e.removed && e2.error == e.error &&
              e2.type == e.type && sv_eq(e2.message, e.message));
        CHECK(ptc_event_build(&b2, &e2) == 0);
        CHECK(buf_eq(&b, &b2));
        ptc_event_free(&e2);
        ptc_buf_free(&b);
        ptc_buf_free(&b2);
    }
    ptc_event_free(&e);
}

/* One payload through every msgpack parser of libptc. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int scan_rc = ptc_msg_scan(data, size, &ptc_limits_default);
    CHECK(scan_rc == 0 || scan_rc == PTC_EMSGPACK || scan_rc == PTC_ELIMIT);

    /* a client's limits: read data up to max_frame, long lists, msgpack-c's full depth */
    struct ptc_limits big = ptc_limits_default;
    big.max_depth = 1000;
    big.max_items = 1u << 20;
    big.max_str = PTC_MAX_FRAME_DEFAULT;
    int big_rc = ptc_msg_scan(data, size, &big);
    CHECK(big_rc == 0 || big_rc == PTC_EMSGPACK || big_rc == PTC_ELIMIT);
    if (scan_rc == PTC_EMSGPACK)
        CHECK(big_rc != 0);
    if (big_rc == PTC_ELIMIT)
        CHECK(scan_rc == PTC_ELIMIT);

    fuzz_request(data, size, scan_rc);
    for (int op = PTC_OP_UNKNOWN; op < PTC_OP__COUNT; op++) {
        fuzz_reply(data, size, op, &ptc_limits_default);
        fuzz_reply(data, size, op, &big);
    }
    uint64_t id;
    int prc = ptc_reply_peek_id(data, size, &id);
    CHECK(prc == 0 || prc == PTC_EMSGPACK || prc == PTC_EMISSING || prc == PTC_ETYPE);
    fuzz_state(data, size);
    fuzz_event(data, size);
    return 0;
}
