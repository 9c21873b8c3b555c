/*
 * Integration tests of bad input against the real relay: frames over max_frame, unknown core
 * types, text messages, malformed REQUESTs, frames only the relay may send, payloads of the wrong
 * size, frames split across messages, ops and frames aimed at unknown or ended sessions, a second
 * attach, and RESIZEs out of range. Each case asserts the exact close code, REPLY error or EVENT
 * error, and then proves the relay unharmed: a witness session on another connection still echoes
 * and /healthz answers 200. Raw frames are built by hand, msgpack byte by byte.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "harness.h"

#define SH(script) ((const char *const[]){"/bin/sh", "-c", script, NULL})
/* A msgpack literal and its length (without the string's NUL). */
#define MP(lit) (const uint8_t *)(lit), sizeof(lit) - 1

/* ---- the witness: another connection and session that must keep working --------------------- */

static struct ptc_client_conn *W;
static ptc_uuid WS;
static int wround;

static void witness_start(void)
{
    W = h_connect();
    WS = h_open_argv(W, SH("stty raw -echo; cat"), PTC_MODE_INTERACTIVE, NULL);
    wround = 0;
}

/* The witness session echoes a fresh token and /healthz answers 200. */
static void witness_check(const char *after)
{
    char tok[32];
    snprintf(tok, sizeof tok, "alive-%d.", ++wround);
    cr_assert(!ptc_client_is_closed(W), "after %s: the witness connection was closed", after);
    cr_assert_eq(ptc_client_send_input(W, &WS, tok, strlen(tok)), 0);
    struct h_out o;
    h_out_init(&o);
    h_out_until_text(W, &WS, &o, tok);
    free(o.data);
    char body[64];
    cr_assert_eq(h_http_get("/healthz", body, sizeof body), 200, "after %s: /healthz", after);
}

/* Stops the relay and checks it exited 0 and its log holds no sanitizer report. */
static void finish(void)
{
    h_close(W);
    W = NULL;
    h_relay_stop_clean();
}

/* ---- raw frames ------------------------------------------------------------------------------ */

/* One message holding a frame: header (declared length len) and n payload bytes. */
static size_t raw_frame(uint8_t *out, uint8_t type, const ptc_uuid *sid, uint32_t len,
                        const void *payload, size_t n)
{
    static const ptc_uuid zero;
    ptc_header_encode(out, type, sid ? sid : &zero, len);
    if (n)
        memcpy(out + PTC_HDR_LEN, payload, n);
    return PTC_HDR_LEN + n;
}

/* Sends one raw message on a fresh connection and asserts the relay closes it with code. */
static void expect_close(const char *what, const void *msg, size_t n, bool text, int code)
{
    struct ptc_client_conn *c = h_connect();
    if (text)
        cr_assert_eq(ptc_client_send_raw(c, msg, n, true), 0);
    else
        cr_assert_eq(ptc_client_send_raw(c, msg, n, false), 0);
    int got = h_wait_close(c, h_timeout_ms());
    cr_assert_eq(got, code, "%s: closed with %d, expected %d (%s)", what, got, code,
                 ptc_client_close_reason(c));
    h_close(c);
    witness_check(what);
}

/* Sends a raw REQUEST payload and asserts a failed REPLY with id and code; the conn stays. */
static void expect_reply_error(struct ptc_client_conn *c, const char *what, const ptc_uuid *sid,
                               const uint8_t *mp, size_t n, uint64_t id, int code)
{
    uint8_t msg[512];
    size_t len = raw_frame(msg, PTC_REQUEST, sid, (uint32_t)n, mp, n);
    cr_assert_eq(h_send_raw(c, msg, len), 0);
    struct ptc_client_frame fr;
    int rc = h_wait_frame(c, PTC_REPLY, NULL, &fr, h_timeout_ms());
    if (rc)
        h_fail_with_log(what, rc);
    struct ptc_reply rp;
    struct ptc_perr pe;
    memset(&rp, 0, sizeof rp);
    rp.op = PTC_OP_UNKNOWN;
    cr_assert_eq(ptc_reply_parse(fr.f.payload, fr.f.len, &ptc_limits_default, &rp, &pe), 0,
                 "%s: REPLY: %s", what, pe.message);
    cr_assert_eq(rp.id, id, "%s: REPLY id %llu", what, (unsigned long long)rp.id);
    cr_assert(!rp.ok, "%s: succeeded", what);
    cr_assert_eq(rp.error, code, "%s: error %s, expected %s", what, ptc_code_name(rp.error),
                 ptc_code_name(code));
    cr_assert_gt(rp.message.n, 0);
    ptc_reply_free(&rp);
    ptc_client_frame_free(&fr);
    cr_assert(!ptc_client_is_closed(c), "%s: the connection was closed", what);
    witness_check(what);
}

/* Waits for EVENT error on c about sid; asserts its code and refused type. */
static void expect_event_error(struct ptc_client_conn *c, const char *what, const ptc_uuid *sid,
                               int code, uint8_t type)
{
    struct ptc_client_frame fr;
    int rc = h_wait_frame(c, PTC_EVENT, sid, &fr, h_timeout_ms());
    if (rc)
        h_fail_with_log(what, rc);
    struct ptc_event ev;
    struct ptc_perr pe;
    cr_assert_eq(ptc_event_parse(fr.f.payload, fr.f.len, &ptc_limits_default, &ev, &pe), 0,
                 "%s: %s", what, pe.message);
    cr_assert_eq(ev.kind, PTC_EV_ERROR, "%s: not an EVENT error", what);
    cr_assert_eq(ev.error, code, "%s: error %s, expected %s", what, ptc_code_name(ev.error),
                 ptc_code_name(code));
    cr_assert_eq(ev.type, type, "%s: type %u, expected %u", what, ev.type, type);
    cr_assert_gt(ev.message.n, 0);
    ptc_event_free(&ev);
    ptc_client_frame_free(&fr);
    cr_assert(!ptc_client_is_closed(c), "%s: the connection was closed", what);
    witness_check(what);
}

/* A request through the client; asserts a failed REPLY with code. */
static void expect_op_error(struct ptc_client_conn *c, const char *what, const ptc_uuid *sid,
                            struct ptc_request *rq, int code)
{
    struct ptc_client_reply rep;
    int rc = h_call(c, sid, rq, &rep);
    if (rc)
        h_fail_with_log(what, rc);
    cr_assert(!rep.r.ok, "%s: succeeded", what);
    cr_assert_eq(rep.r.error, code, "%s: error %s, expected %s (%.*s)", what,
                 ptc_code_name(rep.r.error), ptc_code_name(code), (int)rep.r.message.n,
                 rep.r.message.p);
    ptc_client_reply_free(&rep);
    witness_check(what);
}

static void teardown(void) { h_relay_stop(); }

TestSuite(bad, .fini = teardown);

Test(bad, frame_over_max_frame_is_refused_from_its_header)
{
    h_relay_start("--max-frame", "4096");
    witness_start();
    struct ptc_client_conn *c = h_connect();
    cr_assert_eq(ptc_client_max_frame(c), 4096);
    h_close(c);
    uint8_t msg[PTC_HDR_LEN + 16];
    /* Only the header: the relay must not wait for 4097 payload bytes. */
    size_t n = raw_frame(msg, PTC_INPUT, &WS, 4097, NULL, 0);
    expect_close("INPUT declaring 4097 bytes", msg, n, false, 4413);
    n = raw_frame(msg, PTC_REQUEST, NULL, 0xffffffffu, "\x80", 1);
    expect_close("REQUEST declaring 4 GiB", msg, n, false, 4413);
    /* Exactly max_frame is fine: 4096 bytes of input reach the witness' cat. */
    static uint8_t big[PTC_HDR_LEN + 4096];
    uint8_t pay[4096];
    memset(pay, 'z', sizeof pay);
    n = raw_frame(big, PTC_INPUT, &WS, 4096, pay, sizeof pay);
    cr_assert_eq(h_send_raw(W, big, n), 0);
    witness_check("an INPUT of exactly max_frame");
    finish();
}

Test(bad, unknown_core_types_text_and_relay_only_types_close_4400)
{
    h_relay_start();
    witness_start();
    uint8_t msg[PTC_HDR_LEN + 16];
    const uint8_t bad_types[] = {0x00, 0x09, 0x20, 0x3f};
    for (size_t i = 0; i < sizeof bad_types; i++) {
        char what[64];
        snprintf(what, sizeof what, "core type 0x%02x", bad_types[i]);
        size_t n = raw_frame(msg, bad_types[i], NULL, 0, NULL, 0);
        expect_close(what, msg, n, false, 4400);
    }
    /* Types only the relay sends. */
    const uint8_t relay_only[] = {PTC_OUTPUT, PTC_STATE, PTC_REPLY, PTC_EVENT};
    uint8_t eight[8] = {0};
    for (size_t i = 0; i < sizeof relay_only; i++) {
        char what[64];
        snprintf(what, sizeof what, "%s from a client", ptc_type_name(relay_only[i]));
        size_t n = raw_frame(msg, relay_only[i], &WS, 8, eight, 8);
        expect_close(what, msg, n, false, 4400);
    }
    expect_close("a text message", "{\"op\":\"list\"}", 13, true, 4400);
    /* An extension type is skipped: the connection stays and answers. */
    struct ptc_client_conn *c = h_connect();
    size_t n = raw_frame(msg, 0x40, NULL, 3, "abc", 3);
    cr_assert_eq(h_send_raw(c, msg, n), 0);
    struct ptc_client_reply rep;
    h_request_op(c, PTC_OP_LIST, NULL, &rep);
    cr_assert(rep.r.ok);
    ptc_client_reply_free(&rep);
    h_close(c);
    finish();
}

Test(bad, wrong_payload_sizes_and_split_frames_close_4400)
{
    h_relay_start();
    witness_start();
    uint8_t msg[PTC_HDR_LEN + 16];
    uint8_t pay[16] = {0};
    size_t n = raw_frame(msg, PTC_RESIZE, &WS, 3, pay, 3);
    expect_close("RESIZE of 3 bytes", msg, n, false, 4400);
    n = raw_frame(msg, PTC_RESIZE, &WS, 5, pay, 5);
    expect_close("RESIZE of 5 bytes", msg, n, false, 4400);
    n = raw_frame(msg, PTC_ACK, &WS, 7, pay, 7);
    expect_close("ACK of 7 bytes", msg, n, false, 4400);
    /* A message that ends inside a frame: a frame may not span messages. */
    n = raw_frame(msg, PTC_INPUT, &WS, 10, "abc", 3);
    expect_close("a frame cut by the end of its message", msg, n, false, 4400);
    n = raw_frame(msg, PTC_INPUT, &WS, 0, NULL, 0);
    expect_close("half a header", msg, 10, false, 4400);
    finish();
}

Test(bad, malformed_requests_close_4400_or_get_bad_request)
{
    h_relay_start();
    witness_start();
    uint8_t msg[256];
    struct {
        const char *what;
        const uint8_t *mp;
        size_t n;
    } fatal_cases[] = {
        {"not msgpack (0xc1)", MP("\xc1")},
        {"a truncated map", MP("\x82\xa2id")},
        {"an array", MP("\x92\x01\x02")},
        {"a map without id", MP("\x81\xa2op\xa4list")},
        {"a str id", MP("\x82\xa2id\xa1\x31\xa2op\xa4list")},
        {"a negative id", MP("\x82\xa2id\xff\xa2op\xa4list")},
        {"bytes after the map", MP("\x82\xa2id\x01\xa2op\xa4list\x00")},
        {"an empty payload", MP("")},
    };
    for (size_t i = 0; i < sizeof fatal_cases / sizeof fatal_cases[0]; i++) {
        size_t n = raw_frame(msg, PTC_REQUEST, NULL, (uint32_t)fatal_cases[i].n, fatal_cases[i].mp,
                             fatal_cases[i].n);
        expect_close(fatal_cases[i].what, msg, n, false, 4400);
    }
    /* With a readable id: a failed REPLY to that id, and the connection stays. */
    struct ptc_client_conn *c = h_connect();
    expect_reply_error(c, "op of the wrong type", NULL,
                       MP("\x82\xa2id\xcd\x23\x29\xa2op\x05"), 9001,
                       PTC_C_BAD_REQUEST);
    expect_reply_error(c, "an unknown op", NULL,
                       MP("\x82\xa2id\xcd\x23\x2a\xa2op\xaa" "frobnicate"), 9002,
                       PTC_C_BAD_REQUEST);
    expect_reply_error(c, "a missing op", NULL, MP("\x81\xa2id\xcd\x23\x2b"), 9003,
                       PTC_C_BAD_REQUEST);
    expect_reply_error(c, "attach with a str offset", &WS,
                       MP("\x83\xa2id\xcd\x23\x2c\xa2op\xa6" "attach\xa6" "offset\xa1x"), 9004, PTC_C_BAD_REQUEST);
    expect_reply_error(c, "signal without its name", &WS,
                       MP("\x82\xa2id\xcd\x23\x2d\xa2op\xa6signal"), 9005,
                       PTC_C_BAD_REQUEST);
    expect_reply_error(c, "open with cols 0", NULL,
                       MP("\x83\xa2id\xcd\x23\x2e\xa2op\xa4open\xa4" "cols\x00"), 9006, PTC_C_BAD_REQUEST);
    expect_reply_error(c, "a second hello", NULL,
                       MP("\x83\xa2id\xcd\x23\x2f\xa2op\xa5hello\xa7version\x01"), 9007, PTC_C_BAD_REQUEST);
    /* The connection still works for ordinary requests. */
    struct ptc_client_reply rep;
    h_request_op(c, PTC_OP_LIST, NULL, &rep);
    cr_assert(rep.r.ok);
    cr_assert_eq(rep.r.nsessions, 1);
    ptc_client_reply_free(&rep);
    h_close(c);
    finish();
}

Test(bad, ops_and_frames_on_unknown_sessions)
{
    h_relay_start();
    witness_start();
    struct ptc_client_conn *c = h_connect();
    ptc_uuid ghost;
    cr_assert_eq(ptc_uuid_random(&ghost), 0);
    const int ops[] = {PTC_OP_INFO,   PTC_OP_ATTACH, PTC_OP_DETACH, PTC_OP_KILL,
                       PTC_OP_REMOVE, PTC_OP_READ,   PTC_OP_SIGNAL, PTC_OP_WAIT};
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        struct ptc_request rq = {.op = ops[i]};
        if (ops[i] == PTC_OP_SIGNAL) {
            rq.has = PTC_HAS_SIGNAL;
            rq.signal = ptc_str_c("INT");
        }
        if (ops[i] == PTC_OP_WAIT) {
            rq.has = PTC_HAS_UNTIL;
            rq.until = PTC_UNTIL_EXIT;
        }
        char what[64];
        snprintf(what, sizeof what, "%s of an unknown session", ptc_op_name(ops[i]));
        expect_op_error(c, what, &ghost, &rq, PTC_C_NO_SUCH_SESSION);
    }
    /* A session op with the all-zero session in the header. */
    struct ptc_request rq = {.op = PTC_OP_INFO};
    expect_op_error(c, "info of the zero session", NULL, &rq, PTC_C_NO_SUCH_SESSION);
    /* Frames without replies get EVENT error. */
    cr_assert_eq(ptc_client_send_input(c, &ghost, "x", 1), 0);
    expect_event_error(c, "INPUT to an unknown session", &ghost, PTC_C_NO_SUCH_SESSION, PTC_INPUT);
    cr_assert_eq(ptc_client_send_resize(c, &ghost, 80, 24), 0);
    expect_event_error(c, "RESIZE of an unknown session", &ghost, PTC_C_NOT_ATTACHED, PTC_RESIZE);
    cr_assert_eq(ptc_client_send_ack(c, &ghost, 5), 0);
    expect_event_error(c, "ACK for an unknown session", &ghost, PTC_C_NOT_ATTACHED, PTC_ACK);
    /* A session that exists but is not attached here. */
    cr_assert_eq(ptc_client_send_input(c, &WS, "x", 1), 0);
    expect_event_error(c, "INPUT to a session not attached", &WS, PTC_C_NOT_ATTACHED, PTC_INPUT);
    struct ptc_request dt = {.op = PTC_OP_DETACH};
    expect_op_error(c, "detach of a session not attached", &WS, &dt, PTC_C_NOT_ATTACHED);
    h_close(c);
    finish();
}

Test(bad, ended_session_attach_twice_and_resize_out_of_range)
{
    h_relay_start();
    witness_start();
    struct ptc_client_conn *c = h_connect();
    ptc_uuid id = h_open_argv(c, SH("stty -echo; read x; echo bye"), PTC_MODE_INTERACTIVE, NULL);
    /* A second attach of the same session on the same connection. */
    struct ptc_request at = {.op = PTC_OP_ATTACH};
    expect_op_error(c, "a second attach", &id, &at, PTC_C_BAD_REQUEST);
    /* RESIZE out of range: refused, the size does not change. */
    cr_assert_eq(ptc_client_send_resize(c, &id, 0, 0), 0);
    expect_event_error(c, "RESIZE 0x0", &id, PTC_C_BAD_REQUEST, PTC_RESIZE);
    cr_assert_eq(ptc_client_send_resize(c, &id, 65535, 65535), 0);
    expect_event_error(c, "RESIZE 65535x65535", &id, PTC_C_BAD_REQUEST, PTC_RESIZE);
    cr_assert_eq(ptc_client_send_resize(c, &id, 80, 4097), 0);
    expect_event_error(c, "RESIZE 80x4097", &id, PTC_C_BAD_REQUEST, PTC_RESIZE);
    struct ptc_client_reply rep;
    h_request_op(c, PTC_OP_INFO, &id, &rep);
    cr_assert_eq(rep.r.info.cols, 80);
    cr_assert_eq(rep.r.info.rows, 24);
    ptc_client_reply_free(&rep);
    /* The largest allowed size is taken. */
    cr_assert_eq(ptc_client_send_resize(c, &id, 4096, 4096), 0);
    h_expect_resize(c, &id, 4096, 4096);
    /* End the program, then INPUT and RESIZE are gone. */
    cr_assert_eq(ptc_client_send_input(c, &id, "\n", 1), 0);
    struct ptc_request wt = {.op = PTC_OP_WAIT, .has = PTC_HAS_UNTIL, .until = PTC_UNTIL_EXIT};
    int rc = h_call(c, &id, &wt, &rep);
    if (rc)
        h_fail_with_log("wait exit", rc);
    cr_assert(rep.r.matched);
    cr_assert_eq(rep.r.state, PTC_ST_EXITED);
    ptc_client_reply_free(&rep);
    cr_assert_eq(ptc_client_send_input(c, &id, "late", 4), 0);
    expect_event_error(c, "INPUT to an ended session", &id, PTC_C_GONE, PTC_INPUT);
    cr_assert_eq(ptc_client_send_resize(c, &id, 100, 30), 0);
    expect_event_error(c, "RESIZE of an ended session", &id, PTC_C_GONE, PTC_RESIZE);
    h_close(c);
    finish();
}
