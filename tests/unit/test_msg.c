/*
 * test_msg.c: unit tests of proto/msg.c, the msgpack messages of PTC1.
 *
 * Round trips of every op's REQUEST and REPLY, STATE, both EVENTs and the session info; exact error
 * codes and messages for every class of bad input (types, ranges, missing keys, sizes); the
 * structural pre-scan against depth bombs, forged container counts, 0xc1 and trailing bytes; and
 * every prefix of valid payloads, also placed so that the input ends at a guard page. Malformed
 * inputs are written with msgpack-c's packer or as raw bytes.
 */
#include <criterion/criterion.h>
#include <msgpack.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include "ptc.h"

/* ---- helpers --------------------------------------------------------------------------------- */

/* A test-side msgpack writer for hand-made payloads. */
struct mp {
    msgpack_sbuffer sb;
    msgpack_packer pk;
};

static void mp_init(struct mp *m)
{
    msgpack_sbuffer_init(&m->sb);
    msgpack_packer_init(&m->pk, &m->sb, msgpack_sbuffer_write);
}

static void mp_done(struct mp *m)
{
    msgpack_sbuffer_destroy(&m->sb);
}

static void mp_s(struct mp *m, const char *s)
{
    msgpack_pack_str_with_body(&m->pk, s, strlen(s));
}

static void mp_u(struct mp *m, uint64_t v)
{
    msgpack_pack_uint64(&m->pk, v);
}

static const uint8_t *mp_buf(struct mp *m)
{
    return (const uint8_t *)m->sb.data;
}

static bool sv_eq(struct ptc_str a, struct ptc_str b)
{
    return a.n == b.n && (a.n == 0 || memcmp(a.p, b.p, a.n) == 0);
}

static struct ptc_str S(const char *s) {
    return ptc_str_c(s);
}

/* Parses a request from raw bytes; returns the code and leaves r/err filled. */
static int
req_parse(const void *p, size_t n, struct ptc_request *r, struct ptc_perr *err)
{
    return ptc_request_parse(p, n, &ptc_limits_default, r, err);
}

/* Builds r, parses it back into out; asserts success. The buffer must outlive out. */
static void req_roundtrip(const struct ptc_request *r, struct ptc_buf *b, struct ptc_request *out)
{
    struct ptc_perr err;
    ptc_buf_init(b, 0);
    cr_assert_eq(ptc_request_build(b, r), 0);
    int rc = req_parse(b->data, b->len, out, &err);
    cr_assert_eq(rc, 0, "parse of built request failed: %d %s", rc, err.message);
}

static void req_expect_equal(const struct ptc_request *a, const struct ptc_request *b)
{
    cr_assert_eq(a->id, b->id);
    cr_assert_eq(a->op, b->op);
    cr_assert_eq(a->has, b->has, "has %#x != %#x", a->has, b->has);
    cr_assert_eq(a->version, b->version);
    cr_assert(sv_eq(a->token, b->token));
    cr_assert(sv_eq(a->client, b->client));
    cr_assert_eq(a->argc, b->argc);
    for (uint32_t i = 0; i < a->argc; i++)
        cr_assert(sv_eq(a->argv[i], b->argv[i]));
    cr_assert(sv_eq(a->cwd, b->cwd));
    cr_assert_eq(a->envc, b->envc);
    for (uint32_t i = 0; i < a->envc; i++) {
        cr_assert(sv_eq(a->env_keys[i], b->env_keys[i]));
        cr_assert(sv_eq(a->env_vals[i], b->env_vals[i]));
    }
    cr_assert_eq(a->cols, b->cols);
    cr_assert_eq(a->rows, b->rows);
    cr_assert(sv_eq(a->name, b->name));
    cr_assert_eq(a->idle_ttl_s, b->idle_ttl_s);
    cr_assert_eq(a->attach, b->attach);
    cr_assert_eq(a->offset, b->offset);
    cr_assert_eq(a->mode, b->mode);
    cr_assert_eq(a->window, b->window);
    cr_assert(sv_eq(a->signal, b->signal));
    cr_assert_eq(a->grace_ms, b->grace_ms);
    cr_assert_eq(a->max, b->max);
    cr_assert_eq(a->until, b->until);
    cr_assert_eq(a->idle_ms, b->idle_ms);
    cr_assert(sv_eq(a->pattern, b->pattern));
    cr_assert_eq(a->timeout_ms, b->timeout_ms);
}

/* A request with the parser's defaults, as a built request must carry them to compare. */
static struct ptc_request req_defaults(uint64_t id, int op)
{
    struct ptc_request r;
    memset(&r, 0, sizeof(r));
    r.id = id;
    r.op = op;
    r.cols = 80;
    r.rows = 24;
    r.grace_ms = 5000;
    r.max = 65536;
    r.idle_ms = 2000;
    return r;
}

/* Copies p into the end of a page followed by an inaccessible page, so a read past it faults. */
struct guarded {
    uint8_t *map;
    size_t page;
};

static uint8_t *guard_place(struct guarded *g, const void *p, size_t n)
{
    g->page = (size_t)sysconf(_SC_PAGESIZE);
    size_t pages = (n + g->page - 1) / g->page + 1;
    g->map = mmap(NULL, (pages + 1) * g->page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                  -1, 0);
    cr_assert_neq(g->map, MAP_FAILED);
    cr_assert_eq(mprotect(g->map + pages * g->page, g->page, PROT_NONE), 0);
    uint8_t *dst = g->map + pages * g->page - n;
    if (n)
        memcpy(dst, p, n);
    return dst;
}

static void guard_free(struct guarded *g, size_t n)
{
    size_t pages = (n + g->page - 1) / g->page + 1;
    munmap(g->map, (pages + 1) * g->page);
}

/* ---- name tables ----------------------------------------------------------------------------- */

Test(names, ops_round_trip)
{
    static const char *const want[] = {"hello",  "open", "list",   "info", "attach", "detach",
                                       "signal", "kill", "remove", "read", "wait",   "subscribe"};
    cr_assert_eq(sizeof(want) / sizeof(want[0]), PTC_OP__COUNT);
    for (int i = 0; i < PTC_OP__COUNT; i++) {
        cr_assert_str_eq(ptc_op_name(i), want[i]);
        cr_assert_eq(ptc_op_from_name(want[i], strlen(want[i])), i);
    }
    cr_assert_str_eq(ptc_op_name(PTC_OP_UNKNOWN), "unknown");
    cr_assert_str_eq(ptc_op_name(PTC_OP__COUNT), "unknown");
    cr_assert_eq(ptc_op_from_name("hell", 4), PTC_OP_UNKNOWN);
    cr_assert_eq(ptc_op_from_name("helloo", 6), PTC_OP_UNKNOWN);
    cr_assert_eq(ptc_op_from_name("HELLO", 5), PTC_OP_UNKNOWN);
    cr_assert_eq(ptc_op_from_name("", 0), PTC_OP_UNKNOWN);
}

Test(names, states_attention_modes_until_codes)
{
    static const char *const st[] = {"starting", "running", "suspended", "exited",
                                     "killed",   "failed",  "lost"};
    for (int i = 0; i < PTC_ST__COUNT; i++) {
        cr_assert_str_eq(ptc_state_name(i), st[i]);
        cr_assert_eq(ptc_state_from_name(st[i], strlen(st[i])), i);
    }
    cr_assert_eq(ptc_state_from_name("run", 3), PTC_EINVAL);
    cr_assert(!ptc_state_is_ended(PTC_ST_STARTING));
    cr_assert(!ptc_state_is_ended(PTC_ST_RUNNING));
    cr_assert(!ptc_state_is_ended(PTC_ST_SUSPENDED));
    cr_assert(ptc_state_is_ended(PTC_ST_EXITED));
    cr_assert(ptc_state_is_ended(PTC_ST_KILLED));
    cr_assert(ptc_state_is_ended(PTC_ST_FAILED));
    cr_assert(ptc_state_is_ended(PTC_ST_LOST));

    static const char *const att[] = {"active", "idle", "attention"};
    for (int i = 0; i < PTC_ATT__COUNT; i++) {
        cr_assert_str_eq(ptc_attention_name(i), att[i]);
        cr_assert_eq(ptc_attention_from_name(att[i], strlen(att[i])), i);
    }
    cr_assert_eq(ptc_attention_from_name("busy", 4), PTC_EINVAL);

    cr_assert_str_eq(ptc_mode_name(PTC_MODE_INTERACTIVE), "interactive");
    cr_assert_str_eq(ptc_mode_name(PTC_MODE_VIEW), "view");
    cr_assert_str_eq(ptc_mode_name(PTC_MODE_NONE), "");
    cr_assert_eq(ptc_mode_from_name("interactive", 11), PTC_MODE_INTERACTIVE);
    cr_assert_eq(ptc_mode_from_name("view", 4), PTC_MODE_VIEW);
    cr_assert_eq(ptc_mode_from_name("", 0), PTC_EINVAL);
    cr_assert_eq(ptc_mode_from_name("control", 7), PTC_EINVAL);

    cr_assert_str_eq(ptc_until_name(PTC_UNTIL_EXIT), "exit");
    cr_assert_str_eq(ptc_until_name(PTC_UNTIL_IDLE), "idle");
    cr_assert_str_eq(ptc_until_name(PTC_UNTIL_MATCH), "match");
    cr_assert_eq(ptc_until_from_name("match", 5), PTC_UNTIL_MATCH);
    cr_assert_eq(ptc_until_from_name("matc", 4), PTC_EINVAL);

    static const char *const codes[] = {"bad_request",     "unauthorized",        "forbidden",
                                        "no_such_session", "not_attached",        "gone",
                                        "limit",           "unsupported_version", "internal"};
    cr_assert_eq(sizeof(codes) / sizeof(codes[0]), PTC_C__COUNT);
    for (int i = 0; i < PTC_C__COUNT; i++) {
        cr_assert_str_eq(ptc_code_name(i), codes[i]);
        cr_assert_eq(ptc_code_from_name(codes[i], strlen(codes[i])), i);
    }
    cr_assert_eq(ptc_code_from_name("bad", 3), PTC_EINVAL);
}

Test(names, signals)
{
    static const struct {
        const char *name;
        int signo;
    } set[] = {{"INT", SIGINT},   {"TERM", SIGTERM}, {"HUP", SIGHUP},     {"KILL", SIGKILL},
               {"STOP", SIGSTOP}, {"CONT", SIGCONT}, {"WINCH", SIGWINCH}, {"QUIT", SIGQUIT},
               {"USR1", SIGUSR1}, {"USR2", SIGUSR2}};
    char tmp[16];
    for (size_t i = 0; i < sizeof(set) / sizeof(set[0]); i++) {
        cr_assert_eq(ptc_signal_from_name(set[i].name, strlen(set[i].name)), set[i].signo);
        cr_assert_str_eq(ptc_signal_name(set[i].signo, tmp), set[i].name);
    }
    /* outside the op's set: named by ptc_signal_name, refused by ptc_signal_from_name */
    cr_assert_eq(ptc_signal_from_name("SEGV", 4), PTC_EINVAL);
    cr_assert_eq(ptc_signal_from_name("ABRT", 4), PTC_EINVAL);
    cr_assert_eq(ptc_signal_from_name("SIGTERM", 7), PTC_EINVAL);
    cr_assert_eq(ptc_signal_from_name("term", 4), PTC_EINVAL);
    cr_assert_eq(ptc_signal_from_name("15", 2), PTC_EINVAL);
    cr_assert_eq(ptc_signal_from_name("TERMX", 4), SIGTERM); /* length-bounded view */
    cr_assert_str_eq(ptc_signal_name(SIGSEGV, tmp), "SEGV");
    cr_assert_str_eq(ptc_signal_name(SIGABRT, tmp), "ABRT");
    cr_assert_str_eq(ptc_signal_name(SIGPIPE, tmp), "PIPE");
    cr_assert_str_eq(ptc_signal_name(SIGCHLD, tmp), "CHLD");
    cr_assert_str_eq(ptc_signal_name(SIGRTMIN + 1, tmp), tmp);
    char want[16];
    snprintf(want, sizeof(want), "%d", SIGRTMIN + 1);
    cr_assert_str_eq(tmp, want);
    cr_assert_str_eq(ptc_signal_name(200, tmp), "200");
}

Test(names, str_helpers)
{
    cr_assert(ptc_str_eq(S("abc"), "abc"));
    cr_assert(!ptc_str_eq(S("abc"), "ab"));
    cr_assert(!ptc_str_eq(S("ab"), "abc"));
    cr_assert(ptc_str_eq((struct ptc_str){NULL, 0}, ""));
    cr_assert(ptc_str_eq((struct ptc_str){"abcdef", 3}, "abc"));
    char *d = ptc_str_dup((struct ptc_str){"hello world", 5});
    cr_assert_str_eq(d, "hello");
    free(d);
    d = ptc_str_dup((struct ptc_str){NULL, 0});
    cr_assert_str_eq(d, "");
    free(d);
}

Test(names, limits_default)
{
    cr_assert_eq(ptc_limits_default.max_depth, 8);
    cr_assert_eq(ptc_limits_default.max_items, 4096);
    cr_assert_eq(ptc_limits_default.max_str, 65536);
    cr_assert_eq(ptc_limits_default.max_argv, 256);
    cr_assert_eq(ptc_limits_default.max_env, 256);
    cr_assert_eq(ptc_limits_default.max_arg_len, 4096);
}

/* ---- scan ------------------------------------------------------------------------------------ */

Test(scan, accepts_valid_and_scalars)
{
    static const uint8_t list[] = {0x82, 0xa2, 'i', 'd', 0x01, 0xa2, 'o',
                                   'p',  0xa4, 'l', 'i', 's',  't'};
    cr_assert_eq(ptc_msg_scan(list, sizeof(list), NULL), 0);
    static const uint8_t scalars[][9] = {{0xc0},
                                         {0xc2},
                                         {0xc3},
                                         {0x7f},
                                         {0xe0},
                                         {0xcc, 1},
                                         {0xd3, 0, 0, 0, 0, 0, 0, 0, 1},
                                         {0xca, 0, 0, 0, 0}};
    static const size_t lens[] = {1, 1, 1, 1, 1, 2, 9, 5};
    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++)
        cr_assert_eq(ptc_msg_scan(scalars[i], lens[i], NULL), 0, "scalar %zu", i);
    static const uint8_t ext[] = {0x91, 0xd4, 0x01, 0x02};
    cr_assert_eq(ptc_msg_scan(ext, sizeof(ext), NULL), 0);
    static const uint8_t ext8[] = {0xc7, 0x02, 0x05, 'a', 'b'};
    cr_assert_eq(ptc_msg_scan(ext8, sizeof(ext8), NULL), 0);
}

Test(scan, empty_trailing_and_c1)
{
    cr_assert_eq(ptc_msg_scan((const uint8_t *)"", 0, NULL), PTC_EMSGPACK);
    static const uint8_t two[] = {0x80, 0x80};
    cr_assert_eq(ptc_msg_scan(two, 2, NULL), PTC_EMSGPACK);
    static const uint8_t trail[] = {0x81, 0xa1, 'a', 0x01, 0x00};
    cr_assert_eq(ptc_msg_scan(trail, sizeof(trail), NULL), PTC_EMSGPACK);
    cr_assert_eq(ptc_msg_scan(trail, sizeof(trail) - 1, NULL), 0);
    static const uint8_t c1[] = {0xc1};
    cr_assert_eq(ptc_msg_scan(c1, 1, NULL), PTC_EMSGPACK);
    static const uint8_t c1in[] = {0x81, 0xa1, 'a', 0xc1};
    cr_assert_eq(ptc_msg_scan(c1in, sizeof(c1in), NULL), PTC_EMSGPACK);
}

static size_t nested_arrays(uint8_t *out, size_t depth, bool leaf)
{
    size_t n = 0;
    for (size_t i = 0; i < depth; i++)
        out[n++] = i + 1 < depth || leaf ? 0x91 : 0x90;
    if (leaf)
        out[n++] = 0x00;
    return n;
}

Test(scan, depth_limit)
{
    uint8_t buf[256];
    size_t n = nested_arrays(buf, 8, true);
    cr_assert_eq(ptc_msg_scan(buf, n, NULL), 0);
    n = nested_arrays(buf, 9, true);
    cr_assert_eq(ptc_msg_scan(buf, n, NULL), PTC_ELIMIT);
    /* an empty array still counts as a level */
    n = nested_arrays(buf, 9, false);
    cr_assert_eq(ptc_msg_scan(buf, n, NULL), PTC_ELIMIT);
    n = nested_arrays(buf, 8, false);
    cr_assert_eq(ptc_msg_scan(buf, n, NULL), 0);

    /* a generous limit is still capped at msgpack-c's own stack of 32 */
    struct ptc_limits lim = ptc_limits_default;
    lim.max_depth = 1000;
    n = nested_arrays(buf, 32, true);
    cr_assert_eq(ptc_msg_scan(buf, n, &lim), 0);
    n = nested_arrays(buf, 33, true);
    cr_assert_eq(ptc_msg_scan(buf, n, &lim), PTC_ELIMIT);
    n = nested_arrays(buf, 200, true);
    cr_assert_eq(ptc_msg_scan(buf, n, &lim), PTC_ELIMIT);
}

Test(scan, forged_counts)
{
    static const uint8_t arr32[] = {0xdd, 0xff, 0xff, 0xff, 0xff};
    static const uint8_t map32[] = {0xdf, 0x10, 0x00, 0x00, 0x00, 0x01};
    static const uint8_t arr16[] = {0xdc, 0x00, 0x03, 0x01, 0x02};
    static const uint8_t map16[] = {0xde, 0x00, 0x02, 0xa1, 'a', 0x01};
    static const uint8_t fixmap[] = {0x81, 0x01}; /* one pair needs two bytes */
    cr_assert_eq(ptc_msg_scan(arr32, sizeof(arr32), NULL), PTC_EMSGPACK);
    cr_assert_eq(ptc_msg_scan(map32, sizeof(map32), NULL), PTC_EMSGPACK);
    cr_assert_eq(ptc_msg_scan(arr16, sizeof(arr16), NULL), PTC_EMSGPACK);
    cr_assert_eq(ptc_msg_scan(map16, sizeof(map16), NULL), PTC_EMSGPACK);
    cr_assert_eq(ptc_msg_scan(fixmap, sizeof(fixmap), NULL), PTC_EMSGPACK);
    /* a declared string longer than the bytes present */
    static const uint8_t str32[] = {0xdb, 0x7f, 0xff, 0xff, 0xff, 'a'};
    cr_assert_eq(ptc_msg_scan(str32, sizeof(str32), NULL), PTC_EMSGPACK);
    static const uint8_t bin8[] = {0xc4, 0x05, 'a', 'b'};
    cr_assert_eq(ptc_msg_scan(bin8, sizeof(bin8), NULL), PTC_EMSGPACK);
}

Test(scan, items_and_string_limits)
{
    struct ptc_limits lim = ptc_limits_default;
    lim.max_items = 10;
    lim.max_str = 4;
    uint8_t buf[64];
    size_t n = 0;
    buf[n++] = 0x9a; /* 10 elements */
    for (int i = 0; i < 10; i++)
        buf[n++] = (uint8_t)i;
    cr_assert_eq(ptc_msg_scan(buf, n, &lim), 0);
    lim.max_items = 9;
    cr_assert_eq(ptc_msg_scan(buf, n, &lim), PTC_ELIMIT);
    /* items are counted over all containers */
    static const uint8_t nested[] = {0x92, 0x92, 0x01, 0x02, 0x92, 0x03, 0x04};
    lim.max_items = 6;
    cr_assert_eq(ptc_msg_scan(nested, sizeof(nested), &lim), 0);
    lim.max_items = 5;
    cr_assert_eq(ptc_msg_scan(nested, sizeof(nested), &lim), PTC_ELIMIT);

    static const uint8_t s4[] = {0xa4, 'a', 'b', 'c', 'd'};
    static const uint8_t s5[] = {0xa5, 'a', 'b', 'c', 'd', 'e'};
    static const uint8_t b5[] = {0xc4, 5, 'a', 'b', 'c', 'd', 'e'};
    static const uint8_t x5[] = {0xc7, 5, 1, 'a', 'b', 'c', 'd', 'e'};
    cr_assert_eq(ptc_msg_scan(s4, sizeof(s4), &lim), 0);
    cr_assert_eq(ptc_msg_scan(s5, sizeof(s5), &lim), PTC_ELIMIT);
    cr_assert_eq(ptc_msg_scan(b5, sizeof(b5), &lim), PTC_ELIMIT);
    cr_assert_eq(ptc_msg_scan(x5, sizeof(x5), &lim), PTC_ELIMIT);
}

/* ---- request round trips -------------------------------------------------------------------- */

Test(request, build_is_deterministic)
{
    struct ptc_request r = req_defaults(1, PTC_OP_LIST);
    struct ptc_buf b;
    ptc_buf_init(&b, 0);
    cr_assert_eq(ptc_request_build(&b, &r), 0);
    static const uint8_t want[] = {0x82, 0xa2, 'i', 'd', 0x01, 0xa2, 'o',
                                   'p',  0xa4, 'l', 'i', 's',  't'};
    cr_assert_eq(b.len, sizeof(want));
    cr_assert_arr_eq(b.data, want, sizeof(want));

    /* smallest encodings and the table's key order: {id, op, cols, rows} */
    ptc_buf_reset(&b);
    r = req_defaults(300, PTC_OP_OPEN);
    r.has = PTC_HAS_ROWS | PTC_HAS_COLS;
    r.cols = 200;
    r.rows = 50;
    cr_assert_eq(ptc_request_build(&b, &r), 0);
    static const uint8_t want2[] = {0x84, 0xa2, 'i',  'd', 0xcd, 0x01, 0x2c, 0xa2, 'o', 'p',
                                    0xa4, 'o',  'p',  'e', 'n',  0xa4, 'c',  'o',  'l', 's',
                                    0xcc, 200,  0xa4, 'r', 'o',  'w',  's',  0x32};
    cr_assert_eq(b.len, sizeof(want2));
    cr_assert_arr_eq(b.data, want2, sizeof(want2));
    ptc_buf_free(&b);
}

Test(request, hello)
{
    struct ptc_request r = req_defaults(0, PTC_OP_HELLO), p;
    r.has = PTC_HAS_VERSION | PTC_HAS_TOKEN | PTC_HAS_CLIENT;
    r.version = 1;
    r.token = S("s3cret-token");
    r.client = S("ptcat/0.1");
    struct ptc_buf b;
    req_roundtrip(&r, &b, &p);
    req_expect_equal(&r, &p);
    cr_assert(ptc_str_eq(p.token, "s3cret-token"));
    ptc_request_free(&p);

    /* token and client are optional */
    r.has = PTC_HAS_VERSION;
    r.token = r.client = (struct ptc_str){0};
    ptc_buf_free(&b);
    req_roundtrip(&r, &b, &p);
    req_expect_equal(&r, &p);
    ptc_request_free(&p);
    ptc_buf_free(&b);
}

Test(request, open_full_and_empty)
{
    struct ptc_str argv[] = {S("bash"), S("-lc"), S("echo hi; sleep 1")};
    struct ptc_str ek[] = {S("TERM"), S("LANG"), S("EMPTY")};
    struct ptc_str ev[] = {S("xterm-256color"), S("C.UTF-8"), S("")};
    struct ptc_request r = req_defaults(42, PTC_OP_OPEN), p;
    r.has = PTC_HAS_ARGV | PTC_HAS_CWD | PTC_HAS_ENV | PTC_HAS_COLS | PTC_HAS_ROWS | PTC_HAS_NAME |
            PTC_HAS_IDLE_TTL | PTC_HAS_ATTACH;
    r.argv = argv;
    r.argc = 3;
    r.cwd = S("/tmp");
    r.env_keys = ek;
    r.env_vals = ev;
    r.envc = 3;
    r.cols = 65535;
    r.rows = 1;
    r.name = S("build");
    r.idle_ttl_s = 3600;
    r.attach = PTC_MODE_VIEW;
    struct ptc_buf b;
    req_roundtrip(&r, &b, &p);
    req_expect_equal(&r, &p);
    /* parsed strings are views into the input buffer */
    cr_assert(p.argv[0].p >= (const char *)b.data && p.argv[0].p < (const char *)b.data + b.len);
    ptc_request_free(&p);
    ptc_buf_free(&b);

    /* nothing but id and op: the defaults */
    r = req_defaults(43, PTC_OP_OPEN);
    req_roundtrip(&r, &b, &p);
    req_expect_equal(&r, &p);
    cr_assert_eq(p.cols, 80);
    cr_assert_eq(p.rows, 24);
    cr_assert_eq(p.attach, PTC_MODE_NONE);
    cr_assert_null(p.argv);
    ptc_request_free(&p);
    ptc_buf_free(&b);

    /* an empty env map is present but has no entries */
    r.has = PTC_HAS_ENV | PTC_HAS_ATTACH;
    r.attach = PTC_MODE_INTERACTIVE;
    req_roundtrip(&r, &b, &p);
    req_expect_equal(&r, &p);
    ptc_request_free(&p);
    ptc_buf_free(&b);
}

Test(request, ops_without_args)
{
    static const int noargs[] = {PTC_OP_LIST, PTC_OP_INFO, PTC_OP_DETACH, PTC_OP_REMOVE,
                                 PTC_OP_SUBSCRIBE};
    for (size_t i = 0; i < sizeof(noargs) / sizeof(noargs[0]); i++) {
        struct ptc_request r = req_defaults(UINT64_MAX - i, noargs[i]), p;
        struct ptc_buf b;
        req_roundtrip(&r, &b, &p);
        req_expect_equal(&r, &p);
        ptc_request_free(&p);
        ptc_buf_free(&b);
    }
}

Test(request, attach_signal_kill_read_wait)
{
    struct ptc_request rs[8];
    int n = 0;
    rs[n] = req_defaults(1, PTC_OP_ATTACH);
    rs[n].has = PTC_HAS_OFFSET | PTC_HAS_MODE | PTC_HAS_WINDOW;
    rs[n].offset = 1ull << 40;
    rs[n].mode = PTC_MODE_VIEW;
    rs[n++].window = 65536;
    rs[n] = req_defaults(2, PTC_OP_ATTACH);
    rs[n].has = PTC_HAS_MODE;
    rs[n++].mode = PTC_MODE_INTERACTIVE;
    rs[n] = req_defaults(3, PTC_OP_SIGNAL);
    rs[n].has = PTC_HAS_SIGNAL;
    rs[n++].signal = S("WINCH");
    rs[n] = req_defaults(4, PTC_OP_KILL);
    rs[n].has = PTC_HAS_GRACE;
    rs[n++].grace_ms = 0;
    rs[n] = req_defaults(5, PTC_OP_READ);
    rs[n].has = PTC_HAS_OFFSET | PTC_HAS_MAX;
    rs[n].offset = 12345;
    rs[n++].max = 10;
    rs[n] = req_defaults(6, PTC_OP_WAIT);
    rs[n].has = PTC_HAS_UNTIL | PTC_HAS_IDLE_MS | PTC_HAS_TIMEOUT;
    rs[n].until = PTC_UNTIL_IDLE;
    rs[n].idle_ms = 500;
    rs[n++].timeout_ms = 9000;
    rs[n] = req_defaults(7, PTC_OP_WAIT);
    rs[n].has = PTC_HAS_UNTIL | PTC_HAS_PATTERN;
    rs[n].until = PTC_UNTIL_MATCH;
    rs[n++].pattern = S("\\$ $");
    rs[n] = req_defaults(8, PTC_OP_WAIT);
    rs[n].has = PTC_HAS_UNTIL;
    rs[n++].until = PTC_UNTIL_EXIT;
    for (int i = 0; i < n; i++) {
        struct ptc_request p;
        struct ptc_buf b;
        req_roundtrip(&rs[i], &b, &p);
        req_expect_equal(&rs[i], &p);
        ptc_request_free(&p);
        ptc_buf_free(&b);
    }
}

Test(request, build_refuses_invalid)
{
    struct ptc_buf b;
    ptc_buf_init(&b, 0);
    cr_assert_eq(ptc_buf_append(&b, "xy", 2), 0);
    struct ptc_request r = req_defaults(1, PTC_OP_UNKNOWN);
    cr_assert_eq(ptc_request_build(&b, &r), PTC_EINVAL);
    r.op = PTC_OP__COUNT;
    cr_assert_eq(ptc_request_build(&b, &r), PTC_EINVAL);
    /* a mode flagged but left NONE: refused, and the buffer is as it was */
    r = req_defaults(1, PTC_OP_ATTACH);
    r.has = PTC_HAS_OFFSET | PTC_HAS_MODE;
    cr_assert_eq(ptc_request_build(&b, &r), PTC_EINVAL);
    cr_assert_eq(b.len, 2);
    r = req_defaults(1, PTC_OP_WAIT);
    r.has = PTC_HAS_UNTIL;
    r.until = 7;
    cr_assert_eq(ptc_request_build(&b, &r), PTC_EINVAL);
    cr_assert_eq(b.len, 2);
    ptc_buf_free(&b);
}

/* ---- request failures -------------------------------------------------------------------------
 */

Test(request_fail, not_a_map)
{
    struct ptc_request r;
    struct ptc_perr err;
    static const uint8_t arr[] = {0x92, 0x01, 0xa4, 'l', 'i', 's', 't'};
    static const uint8_t str[] = {0xa2, 'h', 'i'};
    static const uint8_t num[] = {0x01};
    static const uint8_t nil[] = {0xc0};
    const struct {
        const uint8_t *p;
        size_t n;
    } cases[] = {{arr, sizeof(arr)}, {str, sizeof(str)}, {num, 1}, {nil, 1}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cr_assert_eq(req_parse(cases[i].p, cases[i].n, &r, &err), PTC_EPROTO, "case %zu", i);
        cr_assert(!err.have_id);
        ptc_request_free(&r);
    }
    cr_assert_eq(req_parse("", 0, &r, &err), PTC_EPROTO);
    ptc_request_free(&r);
}

Test(request_fail, bad_id)
{
    struct ptc_request r;
    struct ptc_perr err;
    struct mp m;
    for (int k = 0; k < 6; k++) {
        mp_init(&m);
        msgpack_pack_map(&m.pk, k == 0 ? 1 : 2);
        mp_s(&m, "op");
        mp_s(&m, "list");
        if (k > 0) {
            mp_s(&m, "id");
            switch (k) {
            case 1:
                msgpack_pack_int(&m.pk, -1);
                break;
            case 2:
                mp_s(&m, "1");
                break;
            case 3:
                msgpack_pack_double(&m.pk, 1.0);
                break;
            case 4:
                msgpack_pack_true(&m.pk);
                break;
            case 5:
                msgpack_pack_nil(&m.pk);
                break;
            }
        }
        cr_assert_eq(req_parse(mp_buf(&m), m.sb.size, &r, &err), PTC_EPROTO, "case %d", k);
        cr_assert(!err.have_id);
        cr_assert(strstr(err.message, "id"), "message: %s", err.message);
        ptc_request_free(&r);
        mp_done(&m);
    }
    /* a signed encoding of a non-negative id is an unsigned integer to msgpack */
    mp_init(&m);
    msgpack_pack_map(&m.pk, 2);
    mp_s(&m, "id");
    msgpack_pack_int(&m.pk, 5);
    mp_s(&m, "op");
    mp_s(&m, "list");
    cr_assert_eq(req_parse(mp_buf(&m), m.sb.size, &r, &err), 0);
    cr_assert_eq(r.id, 5);
    mp_done(&m);
}

Test(request_fail, bad_op)
{
    struct ptc_request r;
    struct ptc_perr err;
    struct mp m;
    /* missing */
    mp_init(&m);
    msgpack_pack_map(&m.pk, 1);
    mp_s(&m, "id");
    mp_u(&m, 9);
    cr_assert_eq(req_parse(mp_buf(&m), m.sb.size, &r, &err), PTC_EMISSING);
    cr_assert(err.have_id);
    cr_assert_eq(err.id, 9);
    cr_assert_eq(r.op, PTC_OP_UNKNOWN);
    cr_assert_str_eq(err.message, "op: missing");
    ptc_request_free(&r);
    mp_done(&m);
    /* not a str */
    mp_init(&m);
    msgpack_pack_map(&m.pk, 2);
    mp_s(&m, "id");
    mp_u(&m, 10);
    mp_s(&m, "op");
    mp_u(&m, 1);
    cr_assert_eq(req_parse(mp_buf(&m), m.sb.size, &r, &err), PTC_ETYPE);
    cr_assert(err.have_id);
    cr_assert_eq(r.op, PTC_OP_UNKNOWN);
    cr_assert_str_eq(err.message, "op: expected string");
    ptc_request_free(&r);
    mp_done(&m);
    /* unknown */
    mp_init(&m);
    msgpack_pack_map(&m.pk, 2);
    mp_s(&m, "id");
    mp_u(&m, 11);
    mp_s(&m, "op");
    mp_s(&m, "frob");
    cr_assert_eq(req_parse(mp_buf(&m), m.sb.size, &r, &err), PTC_EINVAL);
    cr_assert(err.have_id);
    cr_assert_eq(err.id, 11);
    cr_assert_eq(r.op, PTC_OP_UNKNOWN);
    cr_assert_str_eq(err.message, "unknown op 'frob'");
    ptc_request_free(&r);
    mp_done(&m);
    /* unknown with bytes that must not reach a log line raw */
    mp_init(&m);
    msgpack_pack_map(&m.pk, 2);
    mp_s(&m, "id");
    mp_u(&m, 12);
    mp_s(&m, "op");
    mp_s(&m, "a\nb\x1b");
    cr_assert_eq(req_parse(mp_buf(&m), m.sb.size, &r, &err), PTC_EINVAL);
    cr_assert_str_eq(err.message, "unknown op 'a?b?'");
    ptc_request_free(&r);
    mp_done(&m);
}

/* Kinds of values the bad-argument table can write. */
enum val {
    V_NEG,
    V_FLOAT,
    V_STR,
    V_UINT,
    V_TRUE,
    V_BIN,
    V_EMPTY_ARRAY,
    V_EMPTY_MAP,
    V_ARRAY_INT,
    V_MAP_INT,
    V_MAP_EMPTY_KEY,
    V_MAP_EQ_KEY,
    V_STR_NUL
};

struct badarg {
    const char *op;
    const char *key;
    enum val val;
    uint64_t u;
    const char *s;
    int code;
    const char *msg; /* the exact message */
};

static const struct badarg badargs[] = {
    {"hello", "version", V_NEG, 0, NULL, PTC_ETYPE, "version: expected unsigned integer"},
    {"hello", "version", V_STR, 0, "1", PTC_ETYPE, "version: expected unsigned integer"},
    {"hello", "version", V_FLOAT, 0, NULL, PTC_ETYPE, "version: expected unsigned integer"},
    {"hello", "token", V_UINT, 5, NULL, PTC_ETYPE, "token: expected string"},
    {"hello", "token", V_BIN, 0, NULL, PTC_ETYPE, "token: expected string"},
    {"hello", "client", V_TRUE, 0, NULL, PTC_ETYPE, "client: expected string"},
    {"open", "cols", V_UINT, 0, NULL, PTC_ETYPE, "cols: expected unsigned integer 1..65535"},
    {"open", "cols", V_UINT, 65536, NULL, PTC_ETYPE, "cols: expected unsigned integer 1..65535"},
    {"open", "rows", V_UINT, 0, NULL, PTC_ETYPE, "rows: expected unsigned integer 1..65535"},
    {"open", "rows", V_UINT, 1ull << 40, NULL, PTC_ETYPE,
     "rows: expected unsigned integer 1..65535"},
    {"open", "cols", V_NEG, 0, NULL, PTC_ETYPE, "cols: expected unsigned integer 1..65535"},
    {"open", "rows", V_FLOAT, 0, NULL, PTC_ETYPE, "rows: expected unsigned integer 1..65535"},
    {"open", "cols", V_STR, 0, "80", PTC_ETYPE, "cols: expected unsigned integer 1..65535"},
    {"open", "argv", V_EMPTY_ARRAY, 0, NULL, PTC_ETYPE,
     "argv: expected non-empty array of strings"},
    {"open", "argv", V_STR, 0, "bash", PTC_ETYPE, "argv: expected non-empty array of strings"},
    {"open", "argv", V_ARRAY_INT, 0, NULL, PTC_ETYPE, "argv[1]: expected string"},
    {"open", "cwd", V_UINT, 1, NULL, PTC_ETYPE, "cwd: expected string"},
    {"open", "cwd", V_STR_NUL, 0, NULL, PTC_ETYPE, "cwd: contains a NUL byte"},
    {"open", "env", V_EMPTY_ARRAY, 0, NULL, PTC_ETYPE, "env: expected map of string to string"},
    {"open", "env", V_MAP_INT, 0, NULL, PTC_ETYPE, "env: expected map of string to string"},
    {"open", "env", V_MAP_EMPTY_KEY, 0, NULL, PTC_ETYPE, "env: empty key"},
    {"open", "env", V_MAP_EQ_KEY, 0, NULL, PTC_ETYPE,
     "env: key with '=' or NUL, or value with NUL"},
    {"open", "name", V_EMPTY_MAP, 0, NULL, PTC_ETYPE, "name: expected string"},
    {"open", "idle_ttl_s", V_NEG, 0, NULL, PTC_ETYPE, "idle_ttl_s: expected unsigned integer"},
    {"open", "attach", V_STR, 0, "control", PTC_ETYPE,
     "attach: expected \"interactive\" or \"view\""},
    {"open", "attach", V_TRUE, 0, NULL, PTC_ETYPE, "attach: expected \"interactive\" or \"view\""},
    {"attach", "offset", V_NEG, 0, NULL, PTC_ETYPE, "offset: expected unsigned integer"},
    {"attach", "mode", V_STR, 0, "View", PTC_ETYPE, "mode: expected \"interactive\" or \"view\""},
    {"attach", "window", V_FLOAT, 0, NULL, PTC_ETYPE, "window: expected unsigned integer"},
    {"signal", "signal", V_STR, 0, "SEGV", PTC_ETYPE,
     "signal: expected one of INT TERM HUP KILL STOP CONT WINCH QUIT USR1 USR2"},
    {"signal", "signal", V_UINT, 15, NULL, PTC_ETYPE,
     "signal: expected one of INT TERM HUP KILL STOP CONT WINCH QUIT USR1 USR2"},
    {"kill", "grace_ms", V_STR, 0, "5s", PTC_ETYPE, "grace_ms: expected unsigned integer"},
    {"read", "offset", V_FLOAT, 0, NULL, PTC_ETYPE, "offset: expected unsigned integer"},
    {"read", "max", V_NEG, 0, NULL, PTC_ETYPE, "max: expected unsigned integer"},
    {"wait", "until", V_STR, 0, "forever", PTC_ETYPE,
     "until: expected \"exit\", \"idle\" or \"match\""},
    {"wait", "until", V_UINT, 0, NULL, PTC_ETYPE,
     "until: expected \"exit\", \"idle\" or \"match\""},
    {"wait", "idle_ms", V_NEG, 0, NULL, PTC_ETYPE, "idle_ms: expected unsigned integer"},
    {"wait", "pattern", V_BIN, 0, NULL, PTC_ETYPE, "pattern: expected string"},
    {"wait", "timeout_ms", V_TRUE, 0, NULL, PTC_ETYPE, "timeout_ms: expected unsigned integer"},
};

static void write_val(struct mp *m, const struct badarg *a)
{
    switch (a->val) {
    case V_NEG:
        msgpack_pack_int(&m->pk, -1);
        break;
    case V_FLOAT:
        msgpack_pack_double(&m->pk, 2.0);
        break;
    case V_STR:
        mp_s(m, a->s);
        break;
    case V_UINT:
        mp_u(m, a->u);
        break;
    case V_TRUE:
        msgpack_pack_true(&m->pk);
        break;
    case V_BIN:
        msgpack_pack_bin_with_body(&m->pk, "ab", 2);
        break;
    case V_EMPTY_ARRAY:
        msgpack_pack_array(&m->pk, 0);
        break;
    case V_EMPTY_MAP:
        msgpack_pack_map(&m->pk, 0);
        break;
    case V_ARRAY_INT:
        msgpack_pack_array(&m->pk, 2);
        mp_s(m, "sh");
        mp_u(m, 1);
        break;
    case V_MAP_INT:
        msgpack_pack_map(&m->pk, 1);
        mp_s(m, "A");
        mp_u(m, 1);
        break;
    case V_MAP_EMPTY_KEY:
        msgpack_pack_map(&m->pk, 1);
        mp_s(m, "");
        mp_s(m, "x");
        break;
    case V_MAP_EQ_KEY:
        msgpack_pack_map(&m->pk, 1);
        mp_s(m, "A=B");
        mp_s(m, "x");
        break;
    case V_STR_NUL:
        msgpack_pack_str_with_body(&m->pk, "/t\0p", 4);
        break;
    }
}

/* The valid required args of an op, written after the tested key (the first of a repeated key
 * wins). */
static int required_pairs(struct mp *m, const char *op, bool write)
{
    if (!strcmp(op, "hello")) {
        if (write) {
            mp_s(m, "version");
            mp_u(m, 1);
        }
        return 1;
    }
    if (!strcmp(op, "signal")) {
        if (write) {
            mp_s(m, "signal");
            mp_s(m, "TERM");
        }
        return 1;
    }
    if (!strcmp(op, "wait")) {
        if (write) {
            mp_s(m, "until");
            mp_s(m, "exit");
        }
        return 1;
    }
    return 0;
}

Test(request_fail, wrong_types_and_ranges)
{
    for (size_t i = 0; i < sizeof(badargs) / sizeof(badargs[0]); i++) {
        const struct badarg *a = &badargs[i];
        struct mp m;
        mp_init(&m);
        msgpack_pack_map(&m.pk, 3 + required_pairs(&m, a->op, false));
        mp_s(&m, "id");
        mp_u(&m, 100 + i);
        mp_s(&m, "op");
        mp_s(&m, a->op);
        mp_s(&m, a->key);
        write_val(&m, a);
        required_pairs(&m, a->op, true);
        struct ptc_request r;
        struct ptc_perr err;
        int rc = req_parse(mp_buf(&m), m.sb.size, &r, &err);
        cr_expect_eq(rc, a->code, "row %zu (%s.%s): rc %d, message %s", i, a->op, a->key, rc,
                     err.message);
        cr_expect(err.have_id, "row %zu", i);
        cr_expect_eq(err.id, 100 + i);
        cr_expect_str_eq(err.message, a->msg, "row %zu", i);
        ptc_request_free(&r);
        mp_done(&m);
    }
}

Test(request_fail, missing_required)
{
    static const struct {
        const char *op;
        const char *msg;
        const char *k;
        const char *v; /* an extra str pair, or NULL */
    } rows[] = {
        {"hello", "version: missing", "token", "t"},
        {"signal", "signal: missing", NULL, NULL},
        {"wait", "until: missing", "pattern", "x"},
        {"wait", "pattern: missing (required when until is \"match\")", "until", "match"},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct mp m;
        mp_init(&m);
        msgpack_pack_map(&m.pk, rows[i].k ? 3 : 2);
        mp_s(&m, "id");
        mp_u(&m, 1);
        mp_s(&m, "op");
        mp_s(&m, rows[i].op);
        if (rows[i].k) {
            mp_s(&m, rows[i].k);
            mp_s(&m, rows[i].v);
        }
        struct ptc_request r;
        struct ptc_perr err;
        cr_expect_eq(req_parse(mp_buf(&m), m.sb.size, &r, &err), PTC_EMISSING, "row %zu", i);
        cr_expect(err.have_id);
        cr_expect_str_eq(err.message, rows[i].msg);
        ptc_request_free(&r);
        mp_done(&m);
    }
    /* a nil required value is missing too */
    struct mp m;
    mp_init(&m);
    msgpack_pack_map(&m.pk, 3);
    mp_s(&m, "id");
    mp_u(&m, 1);
    mp_s(&m, "op");
    mp_s(&m, "hello");
    mp_s(&m, "version");
    msgpack_pack_nil(&m.pk);
    struct ptc_request r;
    struct ptc_perr err;
    cr_assert_eq(req_parse(mp_buf(&m), m.sb.size, &r, &err), PTC_EMISSING);
    cr_assert_str_eq(err.message, "version: missing");
    ptc_request_free(&r);
    mp_done(&m);
}

Test(request, nil_means_absent_and_unknown_keys_ignored)
{
    struct mp m;
    mp_init(&m);
    msgpack_pack_map(&m.pk, 8);
    mp_s(&m, "id");
    mp_u(&m, 77);
    mp_s(&m, "op");
    mp_s(&m, "open");
    mp_s(&m, "cols");
    msgpack_pack_nil(&m.pk);
    mp_s(&m, "argv");
    msgpack_pack_nil(&m.pk);
    mp_s(&m, "future_key");
    msgpack_pack_array(&m.pk, 2);
    msgpack_pack_map(&m.pk, 0);
    msgpack_pack_double(&m.pk, 1.5);
    msgpack_pack_uint8(&m.pk, 3); /* a non-str key */
    mp_s(&m, "x");
    mp_s(&m, "rows");
    mp_u(&m, 40);
    mp_s(&m, "attach");
    msgpack_pack_nil(&m.pk);
    struct ptc_request r;
    struct ptc_perr err;
    cr_assert_eq(req_parse(mp_buf(&m), m.sb.size, &r, &err), 0, "%s", err.message);
    cr_assert_eq(r.id, 77);
    cr_assert_eq(r.op, PTC_OP_OPEN);
    cr_assert_eq(r.has, PTC_HAS_ROWS);
    cr_assert_eq(r.cols, 80);
    cr_assert_eq(r.rows, 40);
    cr_assert_null(r.argv);
    cr_assert_eq(r.attach, PTC_MODE_NONE);
    /* defaults of the other ops' fields are set whatever the op */
    cr_assert_eq(r.grace_ms, 5000);
    cr_assert_eq(r.max, 65536);
    cr_assert_eq(r.idle_ms, 2000);
    cr_assert_eq(r.timeout_ms, 0);
    cr_assert_eq(r.version, 0);
    ptc_request_free(&r);
    mp_done(&m);
}

/* An open request with argv of n entries of len bytes each, or env of n entries. */
static void open_with(struct mp *m, bool env, uint32_t n, size_t len)
{
    char *s = malloc(len + 1);
    memset(s, 'a', len);
    s[len] = '\0';
    mp_init(m);
    msgpack_pack_map(&m->pk, 3);
    mp_s(m, "id");
    mp_u(m, 5);
    mp_s(m, "op");
    mp_s(m, "open");
    mp_s(m, env ? "env" : "argv");
    if (env)
        msgpack_pack_map(&m->pk, n);
    else
        msgpack_pack_array(&m->pk, n);
    for (uint32_t i = 0; i < n; i++) {
        if (env) {
            char k[16];
            snprintf(k, sizeof(k), "K%u", i);
            mp_s(m, k);
        }
        mp_s(m, s);
    }
    free(s);
}

Test(request_fail, oversized_fields)
{
    struct mp m;
    struct ptc_request r;
    struct ptc_perr err;

    open_with(&m, false, 256, 4096);
    cr_assert_eq(req_parse(mp_buf(&m), m.sb.size, &r, &err), 0, "%s", err.message);
    cr_assert_eq(r.argc, 256);
    ptc_request_free(&r);
    mp_done(&m);
    open_with(&m, false, 257, 1);
    cr_assert_eq(req_parse(mp_buf(&m), m.sb.size, &r, &err), PTC_ELIMIT);
    cr_assert_str_eq(err.message, "argv: more than 256 entries");
    cr_assert(err.have_id);
    ptc_request_free(&r);
    mp_done(&m);
    open_with(&m, false, 2, 4097);
    cr_assert_eq(req_parse(mp_buf(&m), m.sb.size, &r, &err), PTC_ELIMIT);
    cr_assert_str_eq(err.message, "argv[0]: longer than 4096 bytes");
    ptc_request_free(&r);
    mp_done(&m);

    open_with(&m, true, 256, 4096);
    cr_assert_eq(req_parse(mp_buf(&m), m.sb.size, &r, &err), 0, "%s", err.message);
    cr_assert_eq(r.envc, 256);
    cr_assert(ptc_str_eq(r.env_keys[255], "K255"));
    ptc_request_free(&r);
    mp_done(&m);
    open_with(&m, true, 257, 1);
    cr_assert_eq(req_parse(mp_buf(&m), m.sb.size, &r, &err), PTC_ELIMIT);
    cr_assert_str_eq(err.message, "env: more than 256 entries");
    ptc_request_free(&r);
    mp_done(&m);
    open_with(&m, true, 1, 4097);
    cr_assert_eq(req_parse(mp_buf(&m), m.sb.size, &r, &err), PTC_ELIMIT);
    cr_assert_str_eq(err.message, "env: entry longer than 4096 bytes");
    ptc_request_free(&r);
    mp_done(&m);

    /* cwd, name, pattern: max_arg_len */
    static const struct {
        const char *op, *key;
    } texts[] = {{"open", "cwd"}, {"open", "name"}, {"wait", "pattern"}};
    char big[4098];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    for (size_t i = 0; i < 3; i++) {
        mp_init(&m);
        bool wait = !strcmp(texts[i].op, "wait");
        msgpack_pack_map(&m.pk, wait ? 4 : 3);
        mp_s(&m, "id");
        mp_u(&m, 5);
        mp_s(&m, "op");
        mp_s(&m, texts[i].op);
        mp_s(&m, texts[i].key);
        mp_s(&m, big);
        if (wait) {
            mp_s(&m, "until");
            mp_s(&m, "match");
        }
        cr_assert_eq(req_parse(mp_buf(&m), m.sb.size, &r, &err), PTC_ELIMIT);
        char want[64];
        snprintf(want, sizeof(want), "%s: longer than 4096 bytes", texts[i].key);
        cr_assert_str_eq(err.message, want);
        ptc_request_free(&r);
        mp_done(&m);
    }

    /* a string over max_str is caught by the scan, which still names the key and the id */
    size_t hn = 70000;
    char *huge = malloc(hn + 1);
    memset(huge, 't', hn);
    huge[hn] = '\0';
    mp_init(&m);
    msgpack_pack_map(&m.pk, 4);
    mp_s(&m, "id");
    mp_u(&m, 31);
    mp_s(&m, "op");
    mp_s(&m, "hello");
    mp_s(&m, "version");
    mp_u(&m, 1);
    mp_s(&m, "token");
    mp_s(&m, huge);
    cr_assert_eq(req_parse(mp_buf(&m), m.sb.size, &r, &err), PTC_ELIMIT);
    cr_assert(err.have_id);
    cr_assert_eq(err.id, 31);
    cr_assert_str_eq(err.message, "token: string of 70000 bytes over the limit of 65536");
    ptc_request_free(&r);
    mp_done(&m);
    free(huge);
}

Test(request_fail, depth_bomb_and_item_bomb)
{
    /* {id: 3, op: "open", argv: [[[[...]]]]}: over the depth limit, id still readable */
    uint8_t buf[128];
    size_t n = 0;
    static const uint8_t head[] = {0x83, 0xa2, 'i', 'd', 0x03, 0xa2, 'o', 'p', 0xa4,
                                   'o',  'p',  'e', 'n', 0xa4, 'a',  'r', 'g', 'v'};
    memcpy(buf, head, sizeof(head));
    n = sizeof(head);
    n += nested_arrays(buf + n, 40, true);
    struct ptc_request r;
    struct ptc_perr err;
    cr_assert_eq(req_parse(buf, n, &r, &err), PTC_ELIMIT);
    cr_assert(err.have_id);
    cr_assert_eq(err.id, 3);
    cr_assert_str_eq(err.message, "argv: nesting deeper than 8");
    ptc_request_free(&r);

    /* a top-level depth bomb: not a map with an id */
    n = nested_arrays(buf, 100, true);
    cr_assert_eq(req_parse(buf, n, &r, &err), PTC_EPROTO);
    cr_assert(!err.have_id);
    ptc_request_free(&r);

    /* more items than max_items */
    struct mp m;
    mp_init(&m);
    msgpack_pack_map(&m.pk, 3);
    mp_s(&m, "id");
    mp_u(&m, 4);
    mp_s(&m, "op");
    mp_s(&m, "list");
    mp_s(&m, "junk");
    msgpack_pack_array(&m.pk, 5000);
    for (int i = 0; i < 5000; i++)
        msgpack_pack_nil(&m.pk);
    cr_assert_eq(req_parse(mp_buf(&m), m.sb.size, &r, &err), PTC_ELIMIT);
    cr_assert(err.have_id);
    cr_assert_str_eq(err.message, "junk: more than 4096 items in the message");
    ptc_request_free(&r);
    mp_done(&m);
}

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif

Test(request_fail, forged_counts_fail_in_the_scan)
{
#ifndef UNDER_ASAN
    /* 64 Mi elements x 24 bytes would be 1.5 GiB for msgpack-c's zone: make that impossible */
    struct rlimit rl = {1ul << 30, 1ul << 30};
    cr_assert_eq(setrlimit(RLIMIT_AS, &rl), 0);
#endif
    static const uint8_t head[] = {0x83, 0xa2, 'i', 'd', 0x03, 0xa2, 'o', 'p', 0xa4,
                                   'o',  'p',  'e', 'n', 0xa4, 'a',  'r', 'g', 'v'};
    static const uint8_t forged[][5] = {{0xdd, 0x04, 0x00, 0x00, 0x00},
                                        {0xdf, 0x04, 0x00, 0x00, 0x00},
                                        {0xdd, 0xff, 0xff, 0xff, 0xff},
                                        {0xdf, 0xff, 0xff, 0xff, 0xff}};
    for (size_t i = 0; i < 4; i++) {
        uint8_t buf[64];
        memcpy(buf, head, sizeof(head));
        memcpy(buf + sizeof(head), forged[i], 5);
        size_t n = sizeof(head) + 5;
        buf[n++] = 0x01;
        cr_assert_eq(ptc_msg_scan(buf, n, NULL), PTC_EMSGPACK);
        struct ptc_request r;
        struct ptc_perr err;
        cr_assert_eq(req_parse(buf, n, &r, &err), PTC_EPROTO, "case %zu", i);
        ptc_request_free(&r);
        /* and as the whole payload */
        cr_assert_eq(req_parse(forged[i], 5, &r, &err), PTC_EPROTO);
        ptc_request_free(&r);
        struct ptc_reply rp = {.op = PTC_OP_LIST};
        cr_assert_eq(ptc_reply_parse(forged[i], 5, NULL, &rp, &err), PTC_EMSGPACK);
        ptc_reply_free(&rp);
    }
}

Test(request_fail, trailing_bytes_and_c1)
{
    static const uint8_t ok[] = {0x82, 0xa2, 'i', 'd', 0x01, 0xa2, 'o',
                                 'p',  0xa4, 'l', 'i', 's',  't'};
    uint8_t buf[sizeof(ok) + 1];
    memcpy(buf, ok, sizeof(ok));
    struct ptc_request r;
    struct ptc_perr err;
    cr_assert_eq(req_parse(ok, sizeof(ok), &r, &err), 0);
    ptc_request_free(&r);
    buf[sizeof(ok)] = 0xc0;
    cr_assert_eq(req_parse(buf, sizeof(buf), &r, &err), PTC_EPROTO);
    ptc_request_free(&r);
    memcpy(buf, ok, sizeof(ok));
    buf[4] = 0xc1; /* the id */
    cr_assert_eq(req_parse(buf, sizeof(ok), &r, &err), PTC_EPROTO);
    ptc_request_free(&r);
    memcpy(buf, ok, sizeof(ok));
    buf[0] = 0xc1;
    cr_assert_eq(req_parse(buf, sizeof(ok), &r, &err), PTC_EPROTO);
    ptc_request_free(&r);
}

/* A valid open request with every kind of field, for prefix tests. */
static void full_open(struct ptc_buf *b)
{
    static struct ptc_str argv[2], ek[1], ev[1];
    argv[0] = S("sh");
    argv[1] = S("-c");
    ek[0] = S("A");
    ev[0] = S("b");
    struct ptc_request r = req_defaults(123456, PTC_OP_OPEN);
    r.has = PTC_HAS_ARGV | PTC_HAS_CWD | PTC_HAS_ENV | PTC_HAS_COLS | PTC_HAS_ROWS | PTC_HAS_NAME |
            PTC_HAS_IDLE_TTL | PTC_HAS_ATTACH;
    r.argv = argv;
    r.argc = 2;
    r.cwd = S("/");
    r.env_keys = ek;
    r.env_vals = ev;
    r.envc = 1;
    r.cols = 300;
    r.rows = 70;
    r.name = S("n");
    r.idle_ttl_s = 1ull << 33;
    r.attach = PTC_MODE_INTERACTIVE;
    ptc_buf_init(b, 0);
    cr_assert_eq(ptc_request_build(b, &r), 0);
}

Test(request_fail, every_prefix_fails_cleanly)
{
    struct ptc_buf b;
    full_open(&b);
    struct guarded g;
    uint8_t *whole = guard_place(&g, b.data, b.len);
    struct ptc_request r;
    struct ptc_perr err;
    cr_assert_eq(req_parse(whole, b.len, &r, &err), 0, "%s", err.message);
    ptc_request_free(&r);
    guard_free(&g, b.len);
    for (size_t n = 0; n < b.len; n++) {
        uint8_t *p = guard_place(&g, b.data, n);
        cr_assert_eq(ptc_msg_scan(p, n, NULL), PTC_EMSGPACK, "prefix %zu", n);
        cr_assert_eq(req_parse(p, n, &r, &err), PTC_EPROTO, "prefix %zu", n);
        ptc_request_free(&r);
        uint64_t id;
        int rc = ptc_reply_peek_id(p, n, &id);
        cr_assert(rc == 0 ? id == 123456 : rc < 0);
        guard_free(&g, n);
    }
    ptc_buf_free(&b);
}

Test(request, free_is_safe)
{
    struct ptc_request r;
    memset(&r, 0, sizeof(r));
    ptc_request_free(&r);
    ptc_request_free(&r);
    ptc_request_free(NULL);
    /* after a parse that failed half-way through argv */
    struct mp m;
    open_with(&m, false, 3, 5000);
    struct ptc_perr err;
    cr_assert_eq(req_parse(mp_buf(&m), m.sb.size, &r, &err), PTC_ELIMIT);
    ptc_request_free(&r);
    cr_assert_null(r.argv);
    ptc_request_free(&r);
    mp_done(&m);
    /* a NULL perr is allowed */
    static const uint8_t ok[] = {0x82, 0xa2, 'i', 'd', 0x01, 0xa2, 'o',
                                 'p',  0xa4, 'l', 'i', 's',  't'};
    cr_assert_eq(ptc_request_parse(ok, sizeof(ok), NULL, &r, NULL), 0);
    ptc_request_free(&r);
}

/* ---- info, replies --------------------------------------------------------------------------- */

static struct ptc_str info_argv[] = {{"claude", 6}, {"--resume", 8}};

static struct ptc_info sample_info(int variant)
{
    struct ptc_info in;
    memset(&in, 0, sizeof(in));
    for (int i = 0; i < 16; i++)
        in.id.b[i] = (uint8_t)(0xa0 + i + variant);
    in.name = S(variant ? "agent" : "");
    in.argv = info_argv;
    in.argc = variant == 2 ? 0 : 2;
    in.cwd = S("/home/u/src");
    in.has = PTC_HAS_PID;
    in.pid = 4242 + variant;
    in.state = PTC_ST_RUNNING;
    in.cols = 120;
    in.rows = 40;
    in.created_ms = 1700000000000ull;
    in.updated_ms = 1700000001234ull;
    in.start = 100;
    in.end = 1ull << 35;
    in.clients = 3;
    in.attention = PTC_ATT_IDLE;
    if (variant == 1) {
        in.state = PTC_ST_EXITED;
        in.has |= PTC_HAS_EXIT_CODE;
        in.exit_code = 2;
    } else if (variant == 2) {
        in.state = PTC_ST_KILLED;
        in.has |= PTC_HAS_SIGNO;
        in.signo = SIGSEGV;
    } else if (variant == 3) {
        in.state = PTC_ST_FAILED;
        in.has = PTC_HAS_EXIT_CODE; /* no pid */
        in.exit_code = -1;
    } else if (variant == 4) {
        in.state = PTC_ST_KILLED;
        in.has |= PTC_HAS_SIGNO;
        in.signo = SIGRTMIN + 3; /* no name: decimal */
    }
    return in;
}

static void info_expect_equal(const struct ptc_info *a, const struct ptc_info *b)
{
    cr_assert(ptc_uuid_eq(&a->id, &b->id));
    cr_assert(sv_eq(a->name, b->name));
    cr_assert_eq(a->argc, b->argc);
    for (uint32_t i = 0; i < a->argc; i++)
        cr_assert(sv_eq(a->argv[i], b->argv[i]));
    cr_assert(sv_eq(a->cwd, b->cwd));
    cr_assert_eq(a->has, b->has, "has %#x != %#x", a->has, b->has);
    if (a->has & PTC_HAS_PID)
        cr_assert_eq(a->pid, b->pid);
    cr_assert_eq(a->state, b->state);
    if (a->has & PTC_HAS_EXIT_CODE)
        cr_assert_eq(a->exit_code, b->exit_code);
    if (a->has & PTC_HAS_SIGNO)
        cr_assert_eq(a->signo, b->signo);
    cr_assert_eq(a->cols, b->cols);
    cr_assert_eq(a->rows, b->rows);
    cr_assert_eq(a->created_ms, b->created_ms);
    cr_assert_eq(a->updated_ms, b->updated_ms);
    cr_assert_eq(a->start, b->start);
    cr_assert_eq(a->end, b->end);
    cr_assert_eq(a->clients, b->clients);
    cr_assert_eq(a->attention, b->attention);
}

static void reply_roundtrip(const struct ptc_reply *r, struct ptc_buf *b, struct ptc_reply *out)
{
    struct ptc_perr err;
    ptc_buf_init(b, 0);
    cr_assert_eq(ptc_reply_build(b, r), 0);
    memset(out, 0, sizeof(*out));
    out->op = r->op;
    int rc = ptc_reply_parse(b->data, b->len, NULL, out, &err);
    cr_assert_eq(rc, 0, "reply %s: %d %s", ptc_op_name(r->op), rc, err.message);
    cr_assert_eq(out->id, r->id);
    cr_assert_eq(out->ok, r->ok);
    uint64_t id = 0;
    cr_assert_eq(ptc_reply_peek_id(b->data, b->len, &id), 0);
    cr_assert_eq(id, r->id);
}

Test(reply, info_with_and_without_exit_and_signal)
{
    for (int v = 0; v <= 4; v++) {
        struct ptc_reply r = {.id = 9, .op = PTC_OP_INFO, .ok = true}, p;
        r.info = sample_info(v);
        struct ptc_buf b;
        reply_roundtrip(&r, &b, &p);
        info_expect_equal(&r.info, &p.info);
        ptc_reply_free(&p);
        ptc_reply_free(&p);
        ptc_buf_free(&b);
    }
}

Test(reply, info_key_order_and_nils)
{
    struct ptc_reply r = {.id = 1, .op = PTC_OP_INFO, .ok = true};
    r.info = sample_info(0);
    struct ptc_buf b;
    ptc_buf_init(&b, 0);
    cr_assert_eq(ptc_reply_build(&b, &r), 0);
    /* find the info map: {id, ok, info: {...}} and walk its keys with msgpack-c */
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    size_t off = 0;
    cr_assert_eq(msgpack_unpack_next(&up, (const char *)b.data, b.len, &off),
                 MSGPACK_UNPACK_SUCCESS);
    cr_assert_eq(up.data.via.map.size, 3);
    static const char *const top[] = {"id", "ok", "info"};
    for (int i = 0; i < 3; i++) {
        const msgpack_object *k = &up.data.via.map.ptr[i].key;
        cr_assert(k->via.str.size == strlen(top[i]) &&
                  !memcmp(k->via.str.ptr, top[i], k->via.str.size));
    }
    const msgpack_object *info = &up.data.via.map.ptr[2].val;
    static const char *const keys[] = {
        "id",   "name", "argv",       "cwd",        "pid",   "state", "exit_code", "signal",
        "cols", "rows", "created_ms", "updated_ms", "start", "end",   "clients",   "attention"};
    cr_assert_eq(info->via.map.size, 16);
    for (int i = 0; i < 16; i++) {
        const msgpack_object *k = &info->via.map.ptr[i].key;
        cr_assert(k->via.str.size == strlen(keys[i]) &&
                      !memcmp(k->via.str.ptr, keys[i], k->via.str.size),
                  "key %d", i);
    }
    cr_assert_eq(info->via.map.ptr[0].val.type, MSGPACK_OBJECT_BIN);
    cr_assert_eq(info->via.map.ptr[0].val.via.bin.size, 16);
    cr_assert_eq(info->via.map.ptr[6].val.type, MSGPACK_OBJECT_NIL);
    cr_assert_eq(info->via.map.ptr[7].val.type, MSGPACK_OBJECT_NIL);
    msgpack_unpacked_destroy(&up);

    /* a killed session's signal is a name */
    ptc_buf_reset(&b);
    r.info = sample_info(2);
    cr_assert_eq(ptc_reply_build(&b, &r), 0);
    msgpack_unpacked_init(&up);
    off = 0;
    cr_assert_eq(msgpack_unpack_next(&up, (const char *)b.data, b.len, &off),
                 MSGPACK_UNPACK_SUCCESS);
    const msgpack_object *sig = &up.data.via.map.ptr[2].val.via.map.ptr[7].val;
    cr_assert_eq(sig->type, MSGPACK_OBJECT_STR);
    cr_assert(sig->via.str.size == 4 && !memcmp(sig->via.str.ptr, "SEGV", 4));
    msgpack_unpacked_destroy(&up);
    ptc_buf_free(&b);
}

Test(reply, every_op)
{
    struct ptc_info infos[3] = {sample_info(0), sample_info(1), sample_info(2)};
    static const uint8_t data[] = {'h', 'i', 0, 0xff, '\r', '\n'};
    for (int op = PTC_OP_UNKNOWN; op < PTC_OP__COUNT; op++) {
        struct ptc_reply r, p;
        memset(&r, 0, sizeof(r));
        r.id = 1000 + (uint64_t)(op + 1);
        r.op = op;
        r.ok = true;
        r.server = S("ptyrelay/0.1.0");
        r.version = 1;
        r.max_frame = PTC_MAX_FRAME_DEFAULT;
        r.scope = PTC_MODE_VIEW;
        for (int i = 0; i < 16; i++)
            r.session.b[i] = (uint8_t)i;
        r.pid = 777;
        r.state = PTC_ST_SUSPENDED;
        r.sessions = infos;
        r.nsessions = 3;
        r.info = infos[1];
        r.start = 5;
        r.end = 99;
        r.cols = 132;
        r.rows = 43;
        r.data = (struct ptc_str){(const char *)data, sizeof(data)};
        r.offset = 7;
        r.next = 13;
        r.truncated = true;
        r.matched = true;
        struct ptc_buf b;
        reply_roundtrip(&r, &b, &p);
        switch (op) {
        case PTC_OP_HELLO:
            cr_assert(ptc_str_eq(p.server, "ptyrelay/0.1.0"));
            cr_assert_eq(p.version, 1);
            cr_assert_eq(p.max_frame, PTC_MAX_FRAME_DEFAULT);
            cr_assert_eq(p.scope, PTC_MODE_VIEW);
            break;
        case PTC_OP_OPEN:
            cr_assert(ptc_uuid_eq(&p.session, &r.session));
            cr_assert_eq(p.pid, 777);
            cr_assert_eq(p.state, PTC_ST_SUSPENDED);
            break;
        case PTC_OP_LIST:
            cr_assert_eq(p.nsessions, 3);
            for (int i = 0; i < 3; i++)
                info_expect_equal(&infos[i], &p.sessions[i]);
            break;
        case PTC_OP_INFO:
            info_expect_equal(&infos[1], &p.info);
            break;
        case PTC_OP_ATTACH:
            cr_assert_eq(p.start, 5);
            cr_assert_eq(p.end, 99);
            cr_assert_eq(p.state, PTC_ST_SUSPENDED);
            cr_assert_eq(p.cols, 132);
            cr_assert_eq(p.rows, 43);
            break;
        case PTC_OP_READ:
            cr_assert(sv_eq(p.data, r.data));
            cr_assert_eq(p.offset, 7);
            cr_assert_eq(p.next, 13);
            cr_assert(p.truncated);
            break;
        case PTC_OP_WAIT:
            cr_assert(p.matched);
            cr_assert_eq(p.state, PTC_ST_SUSPENDED);
            cr_assert_eq(p.end, 99);
            break;
        default:
            /* detach, signal, kill, remove, subscribe, generic: {id, ok} only */
            /* 0x82, "id", uint16 id, "ok", true */
            cr_assert_eq(b.len, 1 + 3 + 3 + 3 + 1, "op %d len %zu", op, b.len);
            break;
        }
        ptc_reply_free(&p);
        ptc_buf_free(&b);
    }
}

Test(reply, error_reply)
{
    for (int code = 0; code < PTC_C__COUNT; code++) {
        struct ptc_reply r = {.id = 5, .op = PTC_OP_OPEN, .ok = false, .error = code}, p;
        r.message = S("cols: expected unsigned integer 1..65535");
        struct ptc_buf b;
        reply_roundtrip(&r, &b, &p);
        cr_assert(!p.ok);
        cr_assert_eq(p.error, code);
        cr_assert(ptc_str_eq(p.message, "cols: expected unsigned integer 1..65535"));
        ptc_reply_free(&p);
        ptc_buf_free(&b);
    }
    /* exact bytes: {id:5, ok:false, error:"gone", message:""} */
    struct ptc_reply r = {.id = 5, .ok = false, .error = PTC_C_GONE};
    struct ptc_buf b;
    ptc_buf_init(&b, 0);
    cr_assert_eq(ptc_reply_build(&b, &r), 0);
    static const uint8_t want[] = {0x84, 0xa2, 'i', 'd', 0x05, 0xa2, 'o', 'k', 0xc2, 0xa5,
                                   'e',  'r',  'r', 'o', 'r',  0xa4, 'g', 'o', 'n',  'e',
                                   0xa7, 'm',  'e', 's', 's',  'a',  'g', 'e', 0xa0};
    cr_assert_eq(b.len, sizeof(want));
    cr_assert_arr_eq(b.data, want, sizeof(want));
    r.error = PTC_C__COUNT;
    cr_assert_eq(ptc_reply_build(&b, &r), PTC_EINVAL);
    cr_assert_eq(b.len, sizeof(want));
    ptc_buf_free(&b);
}

Test(reply, parse_failures)
{
    struct ptc_reply p;
    struct ptc_perr err;
    struct mp m;
    /* ok missing */
    mp_init(&m);
    msgpack_pack_map(&m.pk, 1);
    mp_s(&m, "id");
    mp_u(&m, 1);
    p = (struct ptc_reply){.op = PTC_OP_LIST};
    cr_assert_eq(ptc_reply_parse(mp_buf(&m), m.sb.size, NULL, &p, &err), PTC_EMISSING);
    cr_assert_str_eq(err.message, "ok: missing");
    cr_assert(err.have_id);
    ptc_reply_free(&p);
    mp_done(&m);
    /* ok not bool, unknown error code, missing result key, info of the wrong shape */
    mp_init(&m);
    msgpack_pack_map(&m.pk, 2);
    mp_s(&m, "id");
    mp_u(&m, 1);
    mp_s(&m, "ok");
    mp_u(&m, 1);
    p = (struct ptc_reply){.op = PTC_OP_LIST};
    cr_assert_eq(ptc_reply_parse(mp_buf(&m), m.sb.size, NULL, &p, &err), PTC_ETYPE);
    cr_assert_str_eq(err.message, "ok: expected boolean");
    ptc_reply_free(&p);
    mp_done(&m);

    mp_init(&m);
    msgpack_pack_map(&m.pk, 4);
    mp_s(&m, "id");
    mp_u(&m, 1);
    mp_s(&m, "ok");
    msgpack_pack_false(&m.pk);
    mp_s(&m, "error");
    mp_s(&m, "teapot");
    mp_s(&m, "message");
    mp_s(&m, "x");
    p = (struct ptc_reply){.op = PTC_OP_LIST};
    cr_assert_eq(ptc_reply_parse(mp_buf(&m), m.sb.size, NULL, &p, &err), PTC_ETYPE);
    cr_assert_str_eq(err.message, "error: expected an error code");
    ptc_reply_free(&p);
    mp_done(&m);

    mp_init(&m);
    msgpack_pack_map(&m.pk, 3);
    mp_s(&m, "id");
    mp_u(&m, 1);
    mp_s(&m, "ok");
    msgpack_pack_true(&m.pk);
    mp_s(&m, "start");
    mp_u(&m, 1);
    p = (struct ptc_reply){.op = PTC_OP_ATTACH};
    cr_assert_eq(ptc_reply_parse(mp_buf(&m), m.sb.size, NULL, &p, &err), PTC_EMISSING);
    cr_assert_str_eq(err.message, "end: missing");
    ptc_reply_free(&p);
    mp_done(&m);

    /* a list whose second info has a bad state: error names the entry; earlier ones are freed */
    struct ptc_info infos[2] = {sample_info(0), sample_info(1)};
    struct ptc_reply r = {
        .id = 2, .op = PTC_OP_LIST, .ok = true, .sessions = infos, .nsessions = 2};
    struct ptc_buf b;
    ptc_buf_init(&b, 0);
    cr_assert_eq(ptc_reply_build(&b, &r), 0);
    uint8_t *st = memmem(b.data, b.len,
                         "\xa6"
                         "exited",
                         7);
    cr_assert_not_null(st);
    memcpy(st + 1, "exitex", 6);
    p = (struct ptc_reply){.op = PTC_OP_LIST};
    cr_assert_eq(ptc_reply_parse(b.data, b.len, NULL, &p, &err), PTC_ETYPE);
    cr_assert_str_eq(err.message, "sessions[1].state: expected a state name");
    ptc_reply_free(&p);
    cr_assert_null(p.sessions);
    ptc_buf_free(&b);

    /* an invalid op selector */
    p = (struct ptc_reply){.op = 99};
    static const uint8_t ok[] = {0x82, 0xa2, 'i', 'd', 0x01, 0xa2, 'o', 'k', 0xc3};
    cr_assert_eq(ptc_reply_parse(ok, sizeof(ok), NULL, &p, &err), PTC_EINVAL);
    p = (struct ptc_reply){.op = PTC_OP_UNKNOWN};
    cr_assert_eq(ptc_reply_parse(ok, sizeof(ok), NULL, &p, &err), 0);
    cr_assert(p.ok);
    cr_assert_eq(p.id, 1);
}

Test(reply, read_data_limits_and_list_limits)
{
    size_t n = 200000;
    uint8_t *data = malloc(n);
    for (size_t i = 0; i < n; i++)
        data[i] = (uint8_t)(i * 7);
    struct ptc_reply r = {.id = 3, .op = PTC_OP_READ, .ok = true}, p = {.op = PTC_OP_READ};
    r.data = (struct ptc_str){(const char *)data, n};
    r.next = n;
    struct ptc_buf b;
    ptc_buf_init(&b, 0);
    cr_assert_eq(ptc_reply_build(&b, &r), 0);
    struct ptc_perr err;
    cr_assert_eq(ptc_reply_parse(b.data, b.len, NULL, &p, &err), PTC_ELIMIT);
    cr_assert_str_eq(err.message, "data: binary of 200000 bytes over the limit of 65536");
    struct ptc_limits lim = ptc_limits_default;
    lim.max_str = PTC_MAX_FRAME_DEFAULT;
    p = (struct ptc_reply){.op = PTC_OP_READ};
    cr_assert_eq(ptc_reply_parse(b.data, b.len, &lim, &p, &err), 0, "%s", err.message);
    cr_assert_eq(p.data.n, n);
    cr_assert_arr_eq(p.data.p, data, n);
    ptc_reply_free(&p);
    ptc_buf_free(&b);
    free(data);

    /* list: as many infos as max_items allows */
    struct ptc_info *infos = calloc(300, sizeof(*infos));
    for (int i = 0; i < 300; i++) {
        infos[i] = sample_info(i % 3);
        infos[i].start = (uint64_t)i;
    }
    r = (struct ptc_reply){
        .id = 4, .op = PTC_OP_LIST, .ok = true, .sessions = infos, .nsessions = 300};
    ptc_buf_init(&b, 0);
    cr_assert_eq(ptc_reply_build(&b, &r), 0);
    p = (struct ptc_reply){.op = PTC_OP_LIST};
    cr_assert_eq(ptc_reply_parse(b.data, b.len, NULL, &p, &err), PTC_ELIMIT);
    lim = ptc_limits_default;
    lim.max_items = 300 * 20;
    p = (struct ptc_reply){.op = PTC_OP_LIST};
    cr_assert_eq(ptc_reply_parse(b.data, b.len, &lim, &p, &err), 0, "%s", err.message);
    cr_assert_eq(p.nsessions, 300);
    cr_assert_eq(p.sessions[299].start, 299);
    ptc_reply_free(&p);
    ptc_buf_free(&b);
    free(infos);
}

Test(reply, peek_id)
{
    uint64_t id = 0;
    static const uint8_t later[] = {0x83, 0xa2, 'o',  'k', 0xc3, 0xa1, 'x',  0x92,
                                    0x01, 0x02, 0xa2, 'i', 'd',  0xcd, 0x01, 0x00};
    cr_assert_eq(ptc_reply_peek_id(later, sizeof(later), &id), 0);
    cr_assert_eq(id, 256);
    static const uint8_t none[] = {0x81, 0xa2, 'o', 'k', 0xc3};
    cr_assert_eq(ptc_reply_peek_id(none, sizeof(none), &id), PTC_EMISSING);
    static const uint8_t neg[] = {0x81, 0xa2, 'i', 'd', 0xff};
    cr_assert_eq(ptc_reply_peek_id(neg, sizeof(neg), &id), PTC_ETYPE);
    static const uint8_t arr[] = {0x91, 0x01};
    cr_assert_eq(ptc_reply_peek_id(arr, sizeof(arr), &id), PTC_EMSGPACK);
    static const uint8_t forged[] = {0x81, 0xa1, 'x', 0xdd, 0xff, 0xff, 0xff, 0xff};
    cr_assert_eq(ptc_reply_peek_id(forged, sizeof(forged), &id), PTC_EMSGPACK);
    cr_assert_eq(ptc_reply_peek_id(NULL, 0, &id), PTC_EMSGPACK);
}

/* ---- STATE ----------------------------------------------------------------------------------- */

Test(state, round_trips)
{
    struct ptc_statemsg cases[4] = {
        {.state = PTC_ST_RUNNING, .attention = PTC_ATT_ACTIVE, .end = 0},
        {.state = PTC_ST_EXITED,
         .has = PTC_HAS_EXIT_CODE,
         .exit_code = 127,
         .attention = PTC_ATT_IDLE,
         .end = 1ull << 50},
        {.state = PTC_ST_KILLED,
         .has = PTC_HAS_SIGNO,
         .signo = SIGKILL,
         .attention = PTC_ATT_ATTENTION,
         .end = 77},
        {.state = PTC_ST_KILLED, .has = PTC_HAS_SIGNO, .signo = SIGRTMIN, .end = 1},
    };
    for (int i = 0; i < 4; i++) {
        struct ptc_buf b;
        ptc_buf_init(&b, 0);
        cr_assert_eq(ptc_state_build(&b, &cases[i]), 0);
        struct ptc_statemsg s;
        struct ptc_perr err;
        cr_assert_eq(ptc_state_parse(b.data, b.len, &s, &err), 0, "%s", err.message);
        cr_assert_eq(s.state, cases[i].state);
        cr_assert_eq(s.has, cases[i].has);
        cr_assert_eq(s.exit_code, cases[i].exit_code);
        cr_assert_eq(s.signo, cases[i].signo);
        cr_assert_eq(s.attention, cases[i].attention);
        cr_assert_eq(s.end, cases[i].end);
        ptc_buf_free(&b);
    }
    /* exact bytes of the first: {state:"running", exit_code:nil, signal:nil, attention:"active",
     * end:0} */
    struct ptc_buf b;
    ptc_buf_init(&b, 0);
    cr_assert_eq(ptc_state_build(&b, &cases[0]), 0);
    static const uint8_t want[] = "\x85\xa5"
                                  "state\xa7"
                                  "running\xa9"
                                  "exit_code\xc0\xa6"
                                  "signal\xc0"
                                  "\xa9"
                                  "attention\xa6"
                                  "active\xa3"
                                  "end\x00";
    cr_assert_eq(b.len, sizeof(want) - 1);
    cr_assert_arr_eq(b.data, want, b.len);
    ptc_buf_free(&b);
}

Test(state, parse_failures)
{
    struct ptc_statemsg s;
    struct ptc_perr err;
    struct mp m;
    mp_init(&m);
    msgpack_pack_map(&m.pk, 2);
    mp_s(&m, "attention");
    mp_s(&m, "idle");
    mp_s(&m, "end");
    mp_u(&m, 1);
    cr_assert_eq(ptc_state_parse(mp_buf(&m), m.sb.size, &s, &err), PTC_EMISSING);
    cr_assert_str_eq(err.message, "state: missing");
    mp_done(&m);

    mp_init(&m);
    msgpack_pack_map(&m.pk, 4);
    mp_s(&m, "state");
    mp_s(&m, "killed");
    mp_s(&m, "signal");
    mp_s(&m, "NOPE");
    mp_s(&m, "attention");
    mp_s(&m, "idle");
    mp_s(&m, "end");
    mp_u(&m, 1);
    cr_assert_eq(ptc_state_parse(mp_buf(&m), m.sb.size, &s, &err), PTC_ETYPE);
    cr_assert(strstr(err.message, "signal:"), "%s", err.message);
    mp_done(&m);

    mp_init(&m);
    msgpack_pack_map(&m.pk, 4);
    mp_s(&m, "state");
    mp_s(&m, "exited");
    mp_s(&m, "exit_code");
    mp_s(&m, "0");
    mp_s(&m, "attention");
    mp_s(&m, "idle");
    mp_s(&m, "end");
    mp_u(&m, 1);
    cr_assert_eq(ptc_state_parse(mp_buf(&m), m.sb.size, &s, &err), PTC_ETYPE);
    cr_assert_str_eq(err.message, "exit_code: expected integer");
    mp_done(&m);

    /* every prefix fails */
    struct ptc_statemsg st = {.state = PTC_ST_EXITED, .has = PTC_HAS_EXIT_CODE, .exit_code = 1};
    struct ptc_buf b;
    ptc_buf_init(&b, 0);
    cr_assert_eq(ptc_state_build(&b, &st), 0);
    for (size_t n = 0; n < b.len; n++) {
        struct guarded g;
        uint8_t *p = guard_place(&g, b.data, n);
        cr_assert_lt(ptc_state_parse(p, n, &s, &err), 0, "prefix %zu", n);
        guard_free(&g, n);
    }
    ptc_buf_free(&b);
}

/* ---- EVENT ----------------------------------------------------------------------------------- */

Test(event, session_and_removed)
{
    for (int removed = 0; removed < 2; removed++) {
        struct ptc_event e = {.kind = PTC_EV_SESSION, .removed = removed}, p;
        e.info = sample_info(removed ? 1 : 0);
        struct ptc_buf b;
        ptc_buf_init(&b, 0);
        cr_assert_eq(ptc_event_build(&b, &e), 0);
        cr_assert_eq(b.data[0], removed ? 0x83 : 0x82); /* removed only when true */
        struct ptc_perr err;
        cr_assert_eq(ptc_event_parse(b.data, b.len, NULL, &p, &err), 0, "%s", err.message);
        cr_assert_eq(p.kind, PTC_EV_SESSION);
        cr_assert(ptc_str_eq(p.name, "session"));
        cr_assert_eq(p.removed, (bool)removed);
        info_expect_equal(&e.info, &p.info);
        ptc_event_free(&p);
        ptc_event_free(&p);
        ptc_buf_free(&b);
    }
}

Test(event, error)
{
    struct ptc_event e = {.kind = PTC_EV_ERROR, .error = PTC_C_NOT_ATTACHED, .type = PTC_INPUT}, p;
    e.message = S("session not attached");
    struct ptc_buf b;
    ptc_buf_init(&b, 0);
    cr_assert_eq(ptc_event_build(&b, &e), 0);
    static const uint8_t want[] = "\x84\xa5"
                                  "event\xa5"
                                  "error\xa5"
                                  "error\xac"
                                  "not_attached"
                                  "\xa7"
                                  "message\xb4"
                                  "session not attached\xa4"
                                  "type\x05";
    cr_assert_eq(b.len, sizeof(want) - 1);
    cr_assert_arr_eq(b.data, want, b.len);
    struct ptc_perr err;
    cr_assert_eq(ptc_event_parse(b.data, b.len, NULL, &p, &err), 0, "%s", err.message);
    cr_assert_eq(p.kind, PTC_EV_ERROR);
    cr_assert_eq(p.error, PTC_C_NOT_ATTACHED);
    cr_assert(ptc_str_eq(p.message, "session not attached"));
    cr_assert_eq(p.type, PTC_INPUT);
    ptc_event_free(&p);
    e.kind = PTC_EV_UNKNOWN;
    cr_assert_eq(ptc_event_build(&b, &e), PTC_EINVAL);
    cr_assert_eq(b.len, sizeof(want) - 1);
    ptc_buf_free(&b);
}

Test(event, unknown_and_failures)
{
    struct ptc_event p;
    struct ptc_perr err;
    struct mp m;
    mp_init(&m);
    msgpack_pack_map(&m.pk, 2);
    mp_s(&m, "event");
    mp_s(&m, "sparkle");
    mp_s(&m, "whatever");
    msgpack_pack_array(&m.pk, 0);
    cr_assert_eq(ptc_event_parse(mp_buf(&m), m.sb.size, NULL, &p, &err), 0);
    cr_assert_eq(p.kind, PTC_EV_UNKNOWN);
    cr_assert(ptc_str_eq(p.name, "sparkle"));
    ptc_event_free(&p);
    mp_done(&m);

    mp_init(&m);
    msgpack_pack_map(&m.pk, 1);
    mp_s(&m, "event");
    mp_u(&m, 1);
    cr_assert_eq(ptc_event_parse(mp_buf(&m), m.sb.size, NULL, &p, &err), PTC_ETYPE);
    cr_assert_str_eq(err.message, "event: expected string");
    mp_done(&m);

    mp_init(&m);
    msgpack_pack_map(&m.pk, 1);
    mp_s(&m, "event");
    mp_s(&m, "session");
    cr_assert_eq(ptc_event_parse(mp_buf(&m), m.sb.size, NULL, &p, &err), PTC_EMISSING);
    cr_assert_str_eq(err.message, "info: missing");
    ptc_event_free(&p);
    mp_done(&m);

    mp_init(&m);
    msgpack_pack_map(&m.pk, 4);
    mp_s(&m, "event");
    mp_s(&m, "error");
    mp_s(&m, "error");
    mp_s(&m, "gone");
    mp_s(&m, "message");
    mp_s(&m, "");
    mp_s(&m, "type");
    mp_u(&m, 256);
    cr_assert_eq(ptc_event_parse(mp_buf(&m), m.sb.size, NULL, &p, &err), PTC_ETYPE);
    cr_assert_str_eq(err.message, "type: expected unsigned integer 0..255");
    mp_done(&m);

    /* a session event whose info lacks its id */
    mp_init(&m);
    msgpack_pack_map(&m.pk, 2);
    mp_s(&m, "event");
    mp_s(&m, "session");
    mp_s(&m, "info");
    msgpack_pack_map(&m.pk, 1);
    mp_s(&m, "name");
    mp_s(&m, "x");
    cr_assert_eq(ptc_event_parse(mp_buf(&m), m.sb.size, NULL, &p, &err), PTC_EMISSING);
    cr_assert_str_eq(err.message, "info.id: missing");
    ptc_event_free(&p);
    mp_done(&m);

    /* every prefix of a session event fails */
    struct ptc_event e = {.kind = PTC_EV_SESSION, .removed = true};
    e.info = sample_info(2);
    struct ptc_buf b;
    ptc_buf_init(&b, 0);
    cr_assert_eq(ptc_event_build(&b, &e), 0);
    for (size_t n = 0; n < b.len; n++) {
        struct guarded g;
        uint8_t *q = guard_place(&g, b.data, n);
        cr_assert_lt(ptc_event_parse(q, n, NULL, &p, &err), 0, "prefix %zu", n);
        ptc_event_free(&p);
        struct ptc_reply rp = {.op = PTC_OP_INFO};
        cr_assert_lt(ptc_reply_parse(q, n, NULL, &rp, &err), 0);
        ptc_reply_free(&rp);
        guard_free(&g, n);
    }
    ptc_buf_free(&b);
}
