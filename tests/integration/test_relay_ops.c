/*
 * Integration tests of the relay's ops and policies beyond the basics of test_relay.c: `read`, the
 * ring's gaps, idle TTL, the session limit, attention, `wait`, RESIZE and STATE fan-out,
 * `subscribe`, slow consumers (4408) and windows, the bounded input queue, `open`/`remove`/`kill`
 * refusals, the clean shutdown on SIGTERM and `--listen unix:`. Each test starts the real relay
 * with the flags it needs, drives it as a client, waits on frames, replies and process events
 * (never on sleeps), and ends by stopping the relay and checking it exited 0 with a clean log.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

#define SH(script) ((const char *const[]){"/bin/sh", "-c", script, NULL})

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* An open request for argv (has/attach set), with optional extra fields set by the caller. */
static struct ptc_request open_req(const char *const *argv, struct ptc_str *av, int attach)
{
    struct ptc_request rq = {.op = PTC_OP_OPEN};
    uint32_t n = 0;
    while (argv && argv[n]) {
        av[n] = ptc_str_c(argv[n]);
        n++;
    }
    rq.argv = av;
    rq.argc = n;
    rq.has = argv ? PTC_HAS_ARGV : 0;
    if (attach) {
        rq.has |= PTC_HAS_ATTACH;
        rq.attach = attach;
    }
    return rq;
}

/* Sends rq and asserts an ok REPLY; the reply is left in *rep (free it). */
#define call_ok(c, sid, rq, rep) call_ok_at(__LINE__, c, sid, rq, rep)
static void call_ok_at(int line, struct ptc_client_conn *c, const ptc_uuid *sid,
                       struct ptc_request *rq, struct ptc_client_reply *rep)
{
    int rc = h_call(c, sid, rq, rep);
    if (rc) {
        char what[64];
        snprintf(what, sizeof what, "%s (line %d)", ptc_op_name(rq->op), line);
        h_fail_with_log(what, rc);
    }
    cr_assert(rep->r.ok, "%s failed: %s: %.*s", ptc_op_name(rq->op), ptc_code_name(rep->r.error),
              (int)rep->r.message.n, rep->r.message.p);
}

/* Sends rq and asserts a failed REPLY with code; returns nothing, frees the reply. */
static void call_err(struct ptc_client_conn *c, const ptc_uuid *sid, struct ptc_request *rq,
                     int code, char *msg, size_t msgcap)
{
    struct ptc_client_reply rep;
    int rc = h_call(c, sid, rq, &rep);
    if (rc)
        h_fail_with_log(ptc_op_name(rq->op), rc);
    cr_assert(!rep.r.ok, "%s succeeded, expected %s", ptc_op_name(rq->op), ptc_code_name(code));
    cr_assert_eq(rep.r.error, code, "%s: error %s, expected %s (%.*s)", ptc_op_name(rq->op),
                 ptc_code_name(rep.r.error), ptc_code_name(code), (int)rep.r.message.n,
                 rep.r.message.p);
    cr_assert_gt(rep.r.message.n, 0, "a failed REPLY must say why");
    if (msg)
        snprintf(msg, msgcap, "%.*s", (int)rep.r.message.n, rep.r.message.p);
    ptc_client_reply_free(&rep);
}

/* Attaches c to sid (mode, offset/window when has says so); returns the reply's start. */
static uint64_t attach_to(struct ptc_client_conn *c, const ptc_uuid *sid, int mode, uint32_t has,
                          uint64_t offset, uint64_t window)
{
    struct ptc_request rq = {.op = PTC_OP_ATTACH, .has = has | PTC_HAS_MODE, .mode = mode};
    rq.offset = offset;
    rq.window = window;
    struct ptc_client_reply rep;
    call_ok(c, sid, &rq, &rep);
    uint64_t start = rep.r.start;
    ptc_client_reply_free(&rep);
    return start;
}

static struct ptc_info get_info(struct ptc_client_conn *c, const ptc_uuid *sid,
                                struct ptc_client_reply *rep)
{
    struct ptc_request rq = {.op = PTC_OP_INFO};
    call_ok(c, sid, &rq, rep);
    return rep->r.info;
}

/* Parses an EVENT frame into ev (free with ptc_event_free). */
static void parse_event(const struct ptc_frame *f, struct ptc_event *ev)
{
    struct ptc_perr pe;
    cr_assert_eq(f->type, PTC_EVENT);
    cr_assert_eq(ptc_event_parse(f->payload, f->len, &ptc_limits_default, ev, &pe), 0, "EVENT: %s",
                 pe.message);
}

/* Waits for EVENT session of sid until its info satisfies pred; returns that info's state etc. */
static void wait_session_event(struct ptc_client_conn *c, const ptc_uuid *sid,
                               bool (*pred)(const struct ptc_event *ev, void *arg), void *arg,
                               struct ptc_event *keep)
{
    for (int i = 0; i < 1000; i++) {
        struct ptc_client_frame fr;
        int rc = h_wait_frame(c, PTC_EVENT, sid, &fr, h_timeout_ms());
        if (rc)
            h_fail_with_log("waiting for EVENT session", rc);
        struct ptc_event ev;
        parse_event(&fr.f, &ev);
        cr_assert_eq(ev.kind, PTC_EV_SESSION);
        cr_assert(ptc_uuid_eq(&ev.info.id, sid));
        bool done = pred(&ev, arg);
        if (done) {
            /* Keep only the scalar fields: views into fr die with it. */
            *keep = ev;
            keep->info.argv = NULL;
            keep->info.argc = 0;
            keep->info.name = (struct ptc_str){0};
            keep->info.cwd = (struct ptc_str){0};
        }
        ptc_event_free(&ev);
        ptc_client_frame_free(&fr);
        if (done)
            return;
    }
    cr_assert_fail("no matching EVENT session in 1000 events");
}

/* The byte at output offset k of `seq -f %09g 0 N` in raw mode (10 bytes per line). */
static char seq_byte(uint64_t k)
{
    char line[32];
    snprintf(line, sizeof line, "%09llu\n", (unsigned long long)(k / 10));
    return line[k % 10];
}

static void check_seq(const uint8_t *p, size_t n, uint64_t at)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != (uint8_t)seq_byte(at + i))
            cr_assert_fail("byte at offset %llu is 0x%02x, expected '%c'",
                           (unsigned long long)(at + i), p[i], seq_byte(at + i));
}

/* A REPLY delivered to a callback (for requests left pending while the test does other things). */
struct pending {
    bool done;
    int status;
    bool ok, matched;
    int error, state;
    uint64_t end;
};

static void pending_cb(struct ptc_client_conn *c, int status, const struct ptc_reply *rp, void *arg)
{
    (void)c;
    struct pending *p = arg;
    p->done = true;
    p->status = status;
    if (rp) {
        p->ok = rp->ok;
        p->matched = rp->matched;
        p->error = rp->error;
        p->state = rp->state;
        p->end = rp->end;
    }
}

static bool pending_done(void *arg) { return ((struct pending *)arg)->done; }

static void pending_wait(struct pending *p)
{
    if (!ptc_client_run_until(h_ctx(), pending_done, p, h_timeout_ms()))
        h_fail_with_log("waiting for a pending REPLY", PTC_CLIENT_ETIMEOUT);
    cr_assert_eq(p->status, 0);
}

static void teardown(void) { h_relay_stop(); }

TestSuite(ops, .fini = teardown);

/* ---- read and the ring --------------------------------------------------------------------- */

Test(ops, read_returns_output_poll_style)
{
    h_relay_start();
    struct ptc_client_conn *c = h_connect();
    ptc_uuid id = h_open_argv(c, SH("stty raw -echo; seq -f %09g 0 99; read x"), 0, NULL);
    /* Poll with read until all 1000 bytes are there: each call continues at `next`. */
    uint8_t got[1000];
    uint64_t next = 0;
    for (int i = 0; i < 10000 && next < 1000; i++) {
        struct ptc_request rq = {.op = PTC_OP_READ, .has = PTC_HAS_OFFSET | PTC_HAS_MAX};
        rq.offset = next;
        rq.max = 300;
        struct ptc_client_reply rep;
        call_ok(c, &id, &rq, &rep);
        cr_assert_eq(rep.r.offset, next);
        cr_assert_eq(rep.r.truncated, false);
        cr_assert_leq(rep.r.data.n, 300);
        cr_assert_eq(rep.r.next, next + rep.r.data.n);
        cr_assert_leq(rep.r.next, 1000);
        memcpy(got + next, rep.r.data.p, rep.r.data.n);
        next = rep.r.next;
        ptc_client_reply_free(&rep);
        if (next < 1000) {
            /* Nothing new yet: wait for more output instead of spinning. */
            struct ptc_request w = {.op = PTC_OP_WAIT, .has = PTC_HAS_UNTIL | PTC_HAS_PATTERN};
            w.until = PTC_UNTIL_MATCH;
            w.pattern = ptc_str_c("000000099");
            call_ok(c, &id, &w, &rep);
            ptc_client_reply_free(&rep);
        }
    }
    cr_assert_eq(next, 1000);
    check_seq(got, 1000, 0);
    /* Default offset is the first retained one; beyond the end gives nothing at end. */
    struct ptc_request rq = {.op = PTC_OP_READ};
    struct ptc_client_reply rep;
    call_ok(c, &id, &rq, &rep);
    cr_assert_eq(rep.r.offset, 0);
    cr_assert_eq(rep.r.data.n, 1000);
    cr_assert_eq(rep.r.next, 1000);
    ptc_client_reply_free(&rep);
    rq.has = PTC_HAS_OFFSET;
    rq.offset = 5000;
    call_ok(c, &id, &rq, &rep);
    cr_assert_eq(rep.r.data.n, 0);
    cr_assert_eq(rep.r.offset, 1000);
    cr_assert_eq(rep.r.next, 1000);
    cr_assert_eq(rep.r.truncated, false);
    ptc_client_reply_free(&rep);
    h_close(c);
    h_relay_stop_clean();
}

Test(ops, small_ring_attach_and_read_show_the_gap)
{
    h_relay_start("--ring-max", "4096", "--no-log");
    struct ptc_client_conn *c = h_connect();
    ptc_uuid id = h_open_argv(c, SH("stty raw -echo; seq -f %09g 0 1999"), 0, NULL);
    struct ptc_request w = {.op = PTC_OP_WAIT, .has = PTC_HAS_UNTIL, .until = PTC_UNTIL_EXIT};
    struct ptc_client_reply rep;
    call_ok(c, &id, &w, &rep);
    cr_assert(rep.r.matched);
    cr_assert_eq(rep.r.state, PTC_ST_EXITED);
    cr_assert_eq(rep.r.end, 20000);
    ptc_client_reply_free(&rep);
    struct ptc_info in = get_info(c, &id, &rep);
    cr_assert_eq(in.end, 20000);
    cr_assert_eq(in.start, 20000 - 4096, "start %llu", (unsigned long long)in.start);
    ptc_client_reply_free(&rep);
    const uint64_t start = 20000 - 4096;

    /* read from 0: starts at the oldest held byte, flagged truncated. */
    struct ptc_request rq = {.op = PTC_OP_READ, .has = PTC_HAS_OFFSET | PTC_HAS_MAX, .max = 100};
    rq.offset = 0;
    call_ok(c, &id, &rq, &rep);
    cr_assert_eq(rep.r.truncated, true);
    cr_assert_eq(rep.r.offset, start);
    cr_assert_eq(rep.r.data.n, 100);
    cr_assert_eq(rep.r.next, start + 100);
    check_seq((const uint8_t *)rep.r.data.p, 100, start);
    ptc_client_reply_free(&rep);
    /* read from a held offset: exactly there. */
    rq.offset = start + 1234;
    rq.max = 65536;
    call_ok(c, &id, &rq, &rep);
    cr_assert_eq(rep.r.truncated, false);
    cr_assert_eq(rep.r.offset, start + 1234);
    cr_assert_eq(rep.r.data.n, 4096 - 1234);
    check_seq((const uint8_t *)rep.r.data.p, rep.r.data.n, start + 1234);
    ptc_client_reply_free(&rep);

    /* attach from 0: start is the oldest held byte; the first OUTPUT says so. */
    uint64_t s0 = attach_to(c, &id, PTC_MODE_VIEW, PTC_HAS_OFFSET, 0, 0);
    cr_assert_eq(s0, start);
    struct h_out o;
    h_out_init(&o);
    h_out_until_end(c, &id, &o);
    cr_assert_eq(o.first, start);
    cr_assert_eq(o.len, 4096);
    check_seq(o.data, o.len, start);
    cr_assert_eq(o.state, PTC_ST_EXITED);
    cr_assert_eq(o.state_end, 20000);
    free(o.data);

    /* attach from a held offset on another connection: from exactly there. */
    struct ptc_client_conn *c2 = h_connect();
    uint64_t s1 = attach_to(c2, &id, PTC_MODE_VIEW, PTC_HAS_OFFSET, start + 3000, 0);
    cr_assert_eq(s1, start + 3000);
    h_out_init(&o);
    h_out_until_end(c2, &id, &o);
    cr_assert_eq(o.first, start + 3000);
    cr_assert_eq(o.len, 1096);
    check_seq(o.data, o.len, start + 3000);
    free(o.data);
    h_close(c2);
    h_close(c);
    h_relay_stop_clean();
}

Test(ops, live_reader_behind_a_small_ring_jumps_forward)
{
    /* A client with a window that does not ACK falls behind while the program writes more than
     * the ring holds; its ACK then lets output flow again, from the oldest held byte. Output (the
     * tty is raw): "R" at 0, seq lines 0-99 at 1..1000, "M" at 1001, seq lines 100-1999 at
     * 1002..20001, "E" at 20002. */
    h_relay_start("--ring-max", "4096", "--no-log");
    struct ptc_client_conn *c = h_connect();
    ptc_uuid id =
        h_open_argv(c,
                    SH("stty raw -echo; printf R; read x; seq -f %09g 0 99; printf M; read y;"
                       " seq -f %09g 100 1999; printf E; read z"),
                    0, NULL);
    struct ptc_request w = {.op = PTC_OP_WAIT, .has = PTC_HAS_UNTIL | PTC_HAS_PATTERN};
    w.until = PTC_UNTIL_MATCH;
    w.pattern = ptc_str_c("^R");
    struct ptc_client_reply rep;
    call_ok(c, &id, &w, &rep);
    cr_assert(rep.r.matched);
    ptc_client_reply_free(&rep);
    uint64_t s = attach_to(c, &id, PTC_MODE_INTERACTIVE, PTC_HAS_OFFSET | PTC_HAS_WINDOW, 1, 1000);
    cr_assert_eq(s, 1);
    cr_assert_eq(ptc_client_send_input(c, &id, "\n", 1), 0);
    struct h_out o;
    h_out_init(&o);
    o.allow_gap = true;
    for (int i = 0; i < 1000 && o.next < 1001; i++)
        h_out_step(c, &id, &o, PTC_OUTPUT);
    cr_assert_eq(o.first, 1);
    cr_assert_eq(o.next, 1001);
    check_seq(o.data, o.len, 0);
    w.pattern = ptc_str_c("M");
    call_ok(c, &id, &w, &rep);
    ptc_client_reply_free(&rep);
    /* Now far more than the ring holds while the window is shut. */
    cr_assert_eq(ptc_client_send_input(c, &id, "\n", 1), 0);
    w.pattern = ptc_str_c("^E");
    call_ok(c, &id, &w, &rep);
    cr_assert(rep.r.matched);
    ptc_client_reply_free(&rep);
    struct ptc_info in = get_info(c, &id, &rep);
    const uint64_t end = 20003, start = end - 4096;
    cr_assert_eq(in.end, end, "end %llu", (unsigned long long)in.end);
    cr_assert_eq(in.start, start, "start %llu", (unsigned long long)in.start);
    ptc_client_reply_free(&rep);
    /* Nothing past the window came meanwhile (checked after another round trip). */
    in = get_info(c, &id, &rep);
    ptc_client_reply_free(&rep);
    struct ptc_client_frame fr;
    while (h_wait_frame(c, PTC_OUTPUT, &id, &fr, 0) == 0) {
        h_out_feed(&o, &fr.f);
        ptc_client_frame_free(&fr);
    }
    cr_assert_eq(o.len, 1000, "sent %zu bytes with a window of 1000 and no ACK", o.len);
    /* ACK what we have: the next OUTPUT starts at the oldest held byte (the gap shows), and
     * a window's worth of it comes before the next ACK, no more. */
    cr_assert_eq(ptc_client_send_ack(c, &id, 1001), 0);
    h_out_step(c, &id, &o, PTC_OUTPUT);
    cr_assert_eq(o.gaps, start - 1001, "gap of %llu bytes", (unsigned long long)o.gaps);
    for (int i = 0; i < 1000 && o.next < start + 1000; i++)
        h_out_step(c, &id, &o, PTC_OUTPUT);
    in = get_info(c, &id, &rep);
    ptc_client_reply_free(&rep);
    while (h_wait_frame(c, PTC_OUTPUT, &id, &fr, 0) == 0) {
        h_out_feed(&o, &fr.f);
        ptc_client_frame_free(&fr);
    }
    cr_assert_eq(o.next, start + 1000, "at %llu after the ACK, expected %llu",
                 (unsigned long long)o.next, (unsigned long long)(start + 1000));
    check_seq(o.data + 1000, o.len - 1000, start - 2);
    free(o.data);
    h_close(c);
    h_relay_stop_clean();
}

/* ---- idle TTL and the session limit --------------------------------------------------------- */

static bool ev_ended(const struct ptc_event *ev, void *arg)
{
    (void)arg;
    return ptc_state_is_ended(ev->info.state);
}

Test(ops, idle_ttl_kills_only_an_unattended_quiet_session)
{
    h_relay_start();
    struct ptc_client_conn *sub = h_connect();
    struct ptc_client_reply rep;
    h_request_op(sub, PTC_OP_SUBSCRIBE, NULL, &rep);
    cr_assert(rep.r.ok);
    ptc_client_reply_free(&rep);
    struct ptc_client_conn *c = h_connect();
    /* Same TTL: one has no client, one is attached. */
    struct ptc_str av[4];
    struct ptc_request rq = open_req((const char *const[]){"sleep", "100", NULL}, av, 0);
    rq.has |= PTC_HAS_IDLE_TTL;
    rq.idle_ttl_s = 1;
    call_ok(c, NULL, &rq, &rep);
    ptc_uuid lone = rep.r.session;
    ptc_client_reply_free(&rep);
    rq = open_req((const char *const[]){"sleep", "100", NULL}, av, PTC_MODE_VIEW);
    rq.has |= PTC_HAS_IDLE_TTL;
    rq.idle_ttl_s = 1;
    call_ok(c, NULL, &rq, &rep);
    ptc_uuid watched = rep.r.session;
    ptc_client_reply_free(&rep);
    uint64_t t0 = mono_ms();

    struct ptc_event ev;
    wait_session_event(sub, &lone, ev_ended, NULL, &ev);
    uint64_t dt = mono_ms() - t0;
    cr_assert_eq(ev.info.state, PTC_ST_KILLED);
    cr_assert_eq(ev.info.signo, SIGTERM);
    cr_assert_geq(dt, 900, "reaped after %llu ms, TTL is 1 s", (unsigned long long)dt);
    struct ptc_info in = get_info(c, &watched, &rep);
    cr_assert_eq(in.state, PTC_ST_RUNNING, "an attached session was reaped");
    cr_assert_eq(in.clients, 1);
    ptc_client_reply_free(&rep);
    h_close(c);
    h_close(sub);
    h_relay_stop_clean();
}

Test(ops, max_sessions_refuses_with_limit)
{
    h_relay_start("--max-sessions", "2");
    struct ptc_client_conn *c = h_connect();
    ptc_uuid a = h_open_argv(c, SH("read x"), PTC_MODE_INTERACTIVE, NULL);
    (void)h_open_argv(c, (const char *const[]){"sleep", "100", NULL}, 0, NULL);
    struct ptc_str av[4];
    struct ptc_request rq = open_req((const char *const[]){"true", NULL}, av, 0);
    char msg[256];
    call_err(c, NULL, &rq, PTC_C_LIMIT, msg, sizeof msg);
    /* Ending a session does not free its slot; removing it does. */
    cr_assert_eq(ptc_client_send_input(c, &a, "\r", 1), 0);
    struct h_out o;
    h_out_init(&o);
    h_out_until_end(c, &a, &o);
    free(o.data);
    struct ptc_client_reply rep;
    h_request_op(c, PTC_OP_REMOVE, &a, &rep);
    cr_assert(rep.r.ok);
    ptc_client_reply_free(&rep);
    (void)h_open_argv(c, (const char *const[]){"sleep", "100", NULL}, 0, NULL);
    call_err(c, NULL, &rq, PTC_C_LIMIT, NULL, 0);
    h_request_op(c, PTC_OP_LIST, NULL, &rep);
    cr_assert_eq(rep.r.nsessions, 2);
    ptc_client_reply_free(&rep);
    h_close(c);
    h_relay_stop_clean();
}

/* ---- attention and wait --------------------------------------------------------------------- */

static bool ev_attention(const struct ptc_event *ev, void *arg)
{
    return ev->info.attention == *(int *)arg;
}

Test(ops, attention_goes_idle_then_attention_and_output_clears_it)
{
    h_relay_start("--idle-after", "300", "--attention-after", "600");
    struct ptc_client_conn *sub = h_connect();
    struct ptc_client_reply rep;
    h_request_op(sub, PTC_OP_SUBSCRIBE, NULL, &rep);
    ptc_client_reply_free(&rep);
    struct ptc_client_conn *c = h_connect();
    ptc_uuid id = h_open_argv(c, SH("stty -echo; echo first; read x; echo second; read y"),
                              PTC_MODE_INTERACTIVE, NULL);
    struct h_out o;
    h_out_init(&o);
    h_out_until_text(c, &id, &o, "first");
    uint64_t t_out = mono_ms();
    /* STATEs: idle after >= 300 ms of quiet, then attention after >= 600 ms. */
    int want[] = {PTC_ATT_IDLE, PTC_ATT_ATTENTION};
    uint64_t min_ms[] = {250, 550};
    for (int k = 0; k < 2; k++) {
        int nstate = o.nstate;
        for (int i = 0; i < 100 && o.nstate == nstate; i++)
            h_out_step(c, &id, &o, 0);
        uint64_t dt = mono_ms() - t_out;
        cr_assert_eq(o.attention, want[k], "STATE attention %s, expected %s",
                     ptc_attention_name(o.attention), ptc_attention_name(want[k]));
        cr_assert_eq(o.state, PTC_ST_RUNNING);
        cr_assert_geq(dt, min_ms[k], "attention %s after only %llu ms", ptc_attention_name(want[k]),
                      (unsigned long long)dt);
    }
    /* The subscriber saw both in EVENT session. */
    struct ptc_event ev;
    int a = PTC_ATT_IDLE;
    wait_session_event(sub, &id, ev_attention, &a, &ev);
    a = PTC_ATT_ATTENTION;
    wait_session_event(sub, &id, ev_attention, &a, &ev);
    /* New output clears it, in STATE and EVENT. */
    cr_assert_eq(ptc_client_send_input(c, &id, "\r", 1), 0);
    for (int i = 0; i < 100 && o.attention != PTC_ATT_ACTIVE; i++)
        h_out_step(c, &id, &o, 0);
    cr_assert_eq(o.attention, PTC_ATT_ACTIVE);
    cr_assert(strstr((char *)o.data, "second"));
    a = PTC_ATT_ACTIVE;
    wait_session_event(sub, &id, ev_attention, &a, &ev);
    free(o.data);
    h_close(c);
    h_close(sub);
    h_relay_stop_clean();
}

Test(ops, wait_exit_idle_match_and_timeout)
{
    h_relay_start();
    struct ptc_client_conn *c = h_connect();
    ptc_uuid id =
        h_open_argv(c,
                    SH("stty -echo; read x; printf '\\033[1mRE\\033[0mADY\\033[32m 42\\033[0m\\n';"
                       " read y; exit 3"),
                    PTC_MODE_INTERACTIVE, NULL);
    struct ptc_client_reply rep;
    /* match: pending until the program prints; matched on text without escapes. */
    struct ptc_request wm = {.op = PTC_OP_WAIT, .has = PTC_HAS_UNTIL | PTC_HAS_PATTERN};
    wm.until = PTC_UNTIL_MATCH;
    wm.pattern = ptc_str_c("^READY [0-9]+$");
    struct pending pm = {0};
    cr_assert_eq(ptc_client_request(c, &id, &wm, pending_cb, &pm, NULL), 0);
    struct ptc_request we = {.op = PTC_OP_WAIT, .has = PTC_HAS_UNTIL, .until = PTC_UNTIL_EXIT};
    struct pending pe = {0};
    cr_assert_eq(ptc_client_request(c, &id, &we, pending_cb, &pe, NULL), 0);
    /* A later request is answered while both waits are pending. */
    struct ptc_info in = get_info(c, &id, &rep);
    cr_assert_eq(in.state, PTC_ST_RUNNING);
    ptc_client_reply_free(&rep);
    cr_assert(!pm.done && !pe.done, "a wait was answered before its condition");
    cr_assert_eq(ptc_client_send_input(c, &id, "\n", 1), 0);
    pending_wait(&pm);
    cr_assert(pm.ok && pm.matched);
    cr_assert_eq(pm.state, PTC_ST_RUNNING);
    cr_assert(!pe.done);
    /* A pattern that needs the escape bytes never matches; timeout gives matched=false. */
    struct ptc_request wn = wm;
    wn.has |= PTC_HAS_TIMEOUT;
    wn.pattern = ptc_str_c("\\[1mRE|RE\\[0m");
    wn.timeout_ms = 300;
    uint64_t t0 = mono_ms();
    call_ok(c, &id, &wn, &rep);
    uint64_t dt = mono_ms() - t0;
    cr_assert_eq(rep.r.matched, false, "matched raw escape bytes");
    cr_assert_geq(dt, 290);
    cr_assert_lt(dt, 5000);
    ptc_client_reply_free(&rep);
    /* Text already in recent output matches at once. */
    call_ok(c, &id, &wm, &rep);
    cr_assert(rep.r.matched);
    ptc_client_reply_free(&rep);
    /* idle: no output for idle_ms. */
    struct ptc_request wi = {.op = PTC_OP_WAIT, .has = PTC_HAS_UNTIL | PTC_HAS_IDLE_MS};
    wi.until = PTC_UNTIL_IDLE;
    wi.idle_ms = 300;
    call_ok(c, &id, &wi, &rep);
    cr_assert(rep.r.matched);
    cr_assert_eq(rep.r.state, PTC_ST_RUNNING);
    ptc_client_reply_free(&rep);
    /* A bad regex is bad_request. */
    struct ptc_request wb = wm;
    wb.pattern = ptc_str_c("(unclosed");
    call_err(c, &id, &wb, PTC_C_BAD_REQUEST, NULL, 0);
    /* exit: answered when the program ends, with the final end offset. */
    cr_assert_eq(ptc_client_send_input(c, &id, "\n", 1), 0);
    pending_wait(&pe);
    cr_assert(pe.ok && pe.matched);
    cr_assert_eq(pe.state, PTC_ST_EXITED);
    in = get_info(c, &id, &rep);
    cr_assert_eq(pe.end, in.end);
    cr_assert_eq(in.exit_code, 3);
    ptc_client_reply_free(&rep);
    /* Waiting for idle or a match on an ended session does not hang. */
    call_ok(c, &id, &we, &rep);
    cr_assert(rep.r.matched);
    cr_assert_eq(rep.r.state, PTC_ST_EXITED);
    ptc_client_reply_free(&rep);
    call_ok(c, &id, &wi, &rep);
    cr_assert_eq(rep.r.state, PTC_ST_EXITED);
    ptc_client_reply_free(&rep);
    h_close(c);
    h_relay_stop_clean();
}

/* ---- RESIZE, STATE fan-out, subscribe ------------------------------------------------------- */

static void expect_state(struct ptc_client_conn *c, const ptc_uuid *sid, int state)
{
    struct h_out o;
    h_out_init(&o);
    for (int i = 0; i < 50 && o.state != state; i++)
        h_out_step(c, sid, &o, PTC_STATE);
    cr_assert_eq(o.state, state, "STATE %s, expected %s", ptc_state_name(o.state),
                 ptc_state_name(state));
}

Test(ops, resize_latest_interactive_wins_and_every_client_is_told)
{
    h_relay_start();
    struct ptc_client_conn *a = h_connect();
    struct ptc_client_conn *b = h_connect();
    struct ptc_client_conn *v = h_connect();
    ptc_uuid id = h_open_argv(a, SH("stty -echo; while read x; do stty size; done"),
                              PTC_MODE_INTERACTIVE, NULL);
    attach_to(b, &id, PTC_MODE_INTERACTIVE, 0, 0, 0);
    attach_to(v, &id, PTC_MODE_VIEW, 0, 0, 0);
    struct ptc_client_conn *all[] = {a, b, v};

    cr_assert_eq(ptc_client_send_resize(a, &id, 100, 30), 0);
    for (int i = 0; i < 3; i++)
        h_expect_resize(all[i], &id, 100, 30);
    cr_assert_eq(ptc_client_send_resize(b, &id, 120, 40), 0);
    for (int i = 0; i < 3; i++)
        h_expect_resize(all[i], &id, 120, 40);
    /* The PTY has the latest size. */
    cr_assert_eq(ptc_client_send_input(a, &id, "\n", 1), 0);
    struct h_out o;
    h_out_init(&o);
    h_out_until_text(v, &id, &o, "40 120");
    free(o.data);
    struct ptc_client_reply rep;
    struct ptc_info in = get_info(v, &id, &rep);
    cr_assert_eq(in.cols, 120);
    cr_assert_eq(in.rows, 40);
    ptc_client_reply_free(&rep);
    /* The viewer may not resize. */
    cr_assert_eq(ptc_client_send_resize(v, &id, 50, 10), 0);
    struct ptc_client_frame fr;
    cr_assert_eq(h_wait_frame(v, PTC_EVENT, &id, &fr, h_timeout_ms()), 0);
    struct ptc_event ev;
    parse_event(&fr.f, &ev);
    cr_assert_eq(ev.kind, PTC_EV_ERROR);
    cr_assert_eq(ev.error, PTC_C_FORBIDDEN);
    cr_assert_eq(ev.type, PTC_RESIZE);
    ptc_event_free(&ev);
    ptc_client_frame_free(&fr);
    /* STATE goes to every attached client on a state change. */
    struct ptc_request rq = {.op = PTC_OP_SIGNAL, .has = PTC_HAS_SIGNAL};
    rq.signal = ptc_str_c("STOP");
    call_ok(a, &id, &rq, &rep);
    ptc_client_reply_free(&rep);
    for (int i = 0; i < 3; i++)
        expect_state(all[i], &id, PTC_ST_SUSPENDED);
    rq.signal = ptc_str_c("CONT");
    call_ok(b, &id, &rq, &rep);
    ptc_client_reply_free(&rep);
    for (int i = 0; i < 3; i++)
        expect_state(all[i], &id, PTC_ST_RUNNING);
    h_close(a);
    h_close(b);
    h_close(v);
    h_relay_stop_clean();
}

static bool ev_any(const struct ptc_event *ev, void *arg)
{
    (void)ev;
    (void)arg;
    return true;
}

Test(ops, subscribe_reports_create_state_change_and_removal)
{
    h_relay_start();
    struct ptc_client_conn *sub = h_connect();
    struct ptc_client_reply rep;
    h_request_op(sub, PTC_OP_SUBSCRIBE, NULL, &rep);
    cr_assert(rep.r.ok);
    ptc_client_reply_free(&rep);
    struct ptc_client_conn *c = h_connect();
    struct ptc_str av[4];
    struct ptc_request rq = open_req(SH("read x; exit 4"), av, PTC_MODE_INTERACTIVE);
    rq.has |= PTC_HAS_NAME;
    rq.name = ptc_str_c("sub-test");
    call_ok(c, NULL, &rq, &rep);
    ptc_uuid id = rep.r.session;
    uint64_t pid = rep.r.pid;
    ptc_client_reply_free(&rep);
    struct ptc_event ev;
    wait_session_event(sub, &id, ev_any, NULL, &ev);
    cr_assert_eq(ev.info.state, PTC_ST_RUNNING);
    cr_assert_eq(ev.info.pid, pid);
    cr_assert_eq(ev.removed, false);
    cr_assert_eq(ptc_client_send_input(c, &id, "\n", 1), 0);
    wait_session_event(sub, &id, ev_ended, NULL, &ev);
    cr_assert_eq(ev.info.state, PTC_ST_EXITED);
    cr_assert_eq(ev.info.exit_code, 4);
    cr_assert_eq(ev.removed, false);
    h_request_op(c, PTC_OP_REMOVE, &id, &rep);
    cr_assert(rep.r.ok);
    ptc_client_reply_free(&rep);
    wait_session_event(sub, &id, ev_any, NULL, &ev);
    cr_assert_eq(ev.removed, true);
    h_request_op(c, PTC_OP_INFO, &id, &rep);
    cr_assert(!rep.r.ok);
    cr_assert_eq(rep.r.error, PTC_C_NO_SUCH_SESSION);
    ptc_client_reply_free(&rep);
    /* The removed session's attachment is gone too: the list is empty. */
    h_request_op(c, PTC_OP_LIST, NULL, &rep);
    cr_assert_eq(rep.r.nsessions, 0);
    ptc_client_reply_free(&rep);
    h_close(c);
    h_close(sub);
    h_relay_stop_clean();
}

/* ---- slow consumers and windows ------------------------------------------------------------- */

Test(ops, stalled_socket_gets_4408_while_others_keep_going)
{
    h_relay_start("--stall-timeout", "1");
    struct ptc_client_conn *fast = h_connect();
    struct ptc_client_conn *stall = h_connect();
    struct ptc_client_conn *win = h_connect();
    ptc_uuid id = h_open_argv(fast, (const char *const[]){"yes", NULL}, PTC_MODE_VIEW, NULL);
    attach_to(stall, &id, PTC_MODE_VIEW, 0, 0, 0);
    ptc_client_pause(stall, true);
    uint64_t wstart = attach_to(win, &id, PTC_MODE_VIEW, PTC_HAS_WINDOW, 0, 4096);
    struct h_out of, ow;
    h_out_init(&of);
    h_out_init(&ow);
    of.allow_gap = true;
    ow.allow_gap = true;
    uint64_t t0 = mono_ms();
    size_t fast_bytes = 0;
    /* Keep the fast client reading until the stalled one is dropped. */
    for (int i = 0; i < 200000 && !h_relay_log_contains("closing 4408"); i++) {
        struct ptc_client_frame fr;
        int rc = h_wait_frame(fast, PTC_OUTPUT, &id, &fr, 200);
        if (rc == PTC_CLIENT_ETIMEOUT)
            continue;
        if (rc)
            h_fail_with_log("fast client", rc);
        size_t before = of.len;
        h_out_feed(&of, &fr.f);
        fast_bytes += of.len - before;
        of.len = 0; /* count, do not keep */
        ptc_client_frame_free(&fr);
        if (mono_ms() - t0 > (uint64_t)h_timeout_ms())
            break;
    }
    uint64_t dt = mono_ms() - t0;
    cr_assert(h_relay_log_contains("conn=2 peer=127.0.0.1 stalled"),
              "the stalled client was not dropped in %llu ms", (unsigned long long)dt);
    cr_assert_geq(dt, 900, "dropped after %llu ms, stall timeout is 1 s", (unsigned long long)dt);
    /* Reading again, the stalled client gets what the socket held, then the close. */
    ptc_client_pause(stall, false);
    int code = h_wait_close(stall, h_timeout_ms());
    cr_assert_eq(code, 4408, "stalled client closed with %d", code);
    cr_assert_gt(fast_bytes, 1u << 20, "the fast client got only %zu bytes", fast_bytes);
    cr_assert(!ptc_client_is_closed(fast));
    cr_assert(!ptc_client_is_closed(win), "a client with a window was dropped");
    /* The window client got exactly window bytes past its start, then nothing without an ACK. */
    struct ptc_client_frame fr;
    while (h_wait_frame(win, PTC_OUTPUT, &id, &fr, 0) == 0) {
        h_out_feed(&ow, &fr.f);
        ptc_client_frame_free(&fr);
    }
    cr_assert_eq(ow.first, wstart);
    cr_assert_eq(ow.next, wstart + 4096, "window client at %llu, start %llu",
                 (unsigned long long)ow.next, (unsigned long long)wstart);
    /* Each ACK opens the window again. */
    cr_assert_eq(ptc_client_send_ack(win, &id, ow.next), 0);
    uint64_t acked = ow.next;
    for (int i = 0; i < 1000 && ow.next < acked + 1; i++)
        h_out_step(win, &id, &ow, PTC_OUTPUT);
    cr_assert_leq(ow.next, ow.gaps + acked + 4096);
    free(of.data);
    free(ow.data);
    h_close(stall);
    h_close(win);
    h_close(fast);
    h_relay_stop_clean();
}

/* ---- input queue ---------------------------------------------------------------------------- */

/* Floods a program that never reads with 8 MiB of input; another session must keep echoing. */
static void input_flood(const char *const *argv)
{
    h_relay_start("--input-queue", "4096");
    struct ptc_client_conn *w = h_connect();
    struct ptc_client_conn *c = h_connect();
    ptc_uuid sleeper = h_open_argv(w, argv, PTC_MODE_INTERACTIVE, NULL);
    ptc_uuid echo = h_open_argv(c, SH("stty raw -echo; cat"), PTC_MODE_INTERACTIVE, NULL);
    /* Make sure stty ran before the flood (raw: the tty buffers input until it is full). */
    struct ptc_request wi = {.op = PTC_OP_WAIT, .has = PTC_HAS_UNTIL | PTC_HAS_IDLE_MS};
    wi.until = PTC_UNTIL_IDLE;
    wi.idle_ms = 200;
    struct ptc_client_reply rep;
    call_ok(w, &sleeper, &wi, &rep);
    ptc_client_reply_free(&rep);
    static uint8_t chunk[16384];
    memset(chunk, 'i', sizeof chunk);
    const size_t total = 8u << 20;
    for (size_t sent = 0; sent < total; sent += sizeof chunk)
        cr_assert_eq(ptc_client_send_input(w, &sleeper, chunk, sizeof chunk), 0);
    /* While that input is stuck, another session echoes and /healthz answers. */
    struct h_out o;
    h_out_init(&o);
    for (int k = 0; k < 3; k++) {
        char ping[16];
        snprintf(ping, sizeof ping, "ping%d.", k);
        cr_assert_eq(ptc_client_send_input(c, &echo, ping, strlen(ping)), 0);
        h_out_until_text(c, &echo, &o, ping);
        char body[16];
        cr_assert_eq(h_http_get("/healthz", body, sizeof body), 200);
    }
    free(o.data);
    cr_assert_gt(ptc_client_queued(w), 0, "all 8 MiB of input went out: nothing is bounded");
    /* The relay acknowledged only what reached the PTY: far from everything. */
    struct h_out ow;
    h_out_init(&ow);
    struct ptc_client_frame fr;
    while (h_wait_frame(w, PTC_ACK, &sleeper, &fr, 0) == 0) {
        h_out_feed(&ow, &fr.f);
        ptc_client_frame_free(&fr);
    }
    cr_assert_lt(ow.acked, 1u << 20, "acked %llu bytes for a program that reads nothing",
                 (unsigned long long)ow.acked);
    /* Once the program is killed, the sender's connection works again. */
    struct ptc_request rk = {.op = PTC_OP_KILL, .has = PTC_HAS_GRACE, .grace_ms = 0};
    call_ok(c, &sleeper, &rk, &rep);
    ptc_client_reply_free(&rep);
    int rc = h_call(w, NULL, &(struct ptc_request){.op = PTC_OP_LIST}, &rep);
    if (rc)
        h_fail_with_log("list on the connection that sent the input", rc);
    cr_assert(rep.r.ok);
    ptc_client_reply_free(&rep);
    h_close(w);
    h_close(c);
    h_relay_stop_clean();
}

Test(ops, program_not_reading_input_never_blocks_the_relay)
{
    input_flood((const char *const[]){"sleep", "100", NULL});
}

Test(ops, raw_program_not_reading_input_never_blocks_the_relay)
{
    input_flood(SH("stty raw -echo; exec sleep 100"));
}

/* ---- open, remove, kill and signal refusals ------------------------------------------------- */

Test(ops, open_failures_are_clear_errors)
{
    h_relay_start();
    struct ptc_client_conn *c = h_connect();
    struct ptc_str av[4];
    char msg[256];
    struct ptc_request rq = open_req((const char *const[]){"/nonexistent/prog", NULL}, av, 0);
    call_err(c, NULL, &rq, PTC_C_BAD_REQUEST, msg, sizeof msg);
    cr_assert(strstr(msg, "/nonexistent/prog"), "message does not name the program: %s", msg);
    rq = open_req((const char *const[]){"no-such-program-ptyrelay", NULL}, av, 0);
    call_err(c, NULL, &rq, PTC_C_BAD_REQUEST, msg, sizeof msg);
    cr_assert(strstr(msg, "no-such-program-ptyrelay"), "message: %s", msg);
    rq = open_req((const char *const[]){"true", NULL}, av, 0);
    rq.has |= PTC_HAS_CWD;
    rq.cwd = ptc_str_c("/nonexistent/dir");
    call_err(c, NULL, &rq, PTC_C_BAD_REQUEST, msg, sizeof msg);
    cr_assert(strstr(msg, "/nonexistent/dir"), "message does not name the cwd: %s", msg);
    rq.cwd = ptc_str_c("/etc/passwd");
    call_err(c, NULL, &rq, PTC_C_BAD_REQUEST, msg, sizeof msg);
    /* An empty argv is not a program either. */
    rq = open_req(NULL, av, 0);
    rq.has = PTC_HAS_ARGV;
    rq.argc = 0;
    struct ptc_client_reply rep;
    int rc = h_call(c, NULL, &rq, &rep);
    cr_assert_eq(rc, 0);
    if (rep.r.ok) {
        /* Treated as "default shell": acceptable, but it must be a running session. */
        cr_assert_eq(rep.r.state, PTC_ST_RUNNING);
    }
    ptc_client_reply_free(&rep);
    /* Nothing was left behind by the failures: no failed sessions listed. */
    h_request_op(c, PTC_OP_LIST, NULL, &rep);
    for (uint32_t i = 0; i < rep.r.nsessions; i++)
        cr_assert_neq(rep.r.sessions[i].state, PTC_ST_FAILED);
    cr_assert_leq(rep.r.nsessions, 1);
    ptc_client_reply_free(&rep);
    /* And a good open still works. */
    (void)h_open_argv(c, (const char *const[]){"sleep", "100", NULL}, 0, NULL);
    h_close(c);
    h_relay_stop_clean();
}

Test(ops, remove_kill_and_signal_follow_the_session_state)
{
    h_relay_start();
    struct ptc_client_conn *sub = h_connect();
    struct ptc_client_reply rep;
    h_request_op(sub, PTC_OP_SUBSCRIBE, NULL, &rep);
    ptc_client_reply_free(&rep);
    struct ptc_client_conn *c = h_connect();
    ptc_uuid id = h_open_argv(c, (const char *const[]){"sleep", "100", NULL}, PTC_MODE_VIEW, NULL);
    /* remove of a running session is refused and changes nothing. */
    struct ptc_request rm = {.op = PTC_OP_REMOVE};
    call_err(c, &id, &rm, PTC_C_BAD_REQUEST, NULL, 0);
    struct ptc_info in = get_info(c, &id, &rep);
    cr_assert_eq(in.state, PTC_ST_RUNNING);
    ptc_client_reply_free(&rep);
    struct ptc_request kl = {.op = PTC_OP_KILL};
    call_ok(c, &id, &kl, &rep);
    ptc_client_reply_free(&rep);
    struct h_out o;
    h_out_init(&o);
    h_out_until_end(c, &id, &o);
    cr_assert_eq(o.state, PTC_ST_KILLED);
    cr_assert_eq(o.signo, SIGTERM);
    free(o.data);
    /* Ended: kill and signal are gone; remove works and is announced. */
    call_err(c, &id, &kl, PTC_C_GONE, NULL, 0);
    struct ptc_request sg = {.op = PTC_OP_SIGNAL, .has = PTC_HAS_SIGNAL};
    sg.signal = ptc_str_c("INT");
    call_err(c, &id, &sg, PTC_C_GONE, NULL, 0);
    call_ok(c, &id, &rm, &rep);
    ptc_client_reply_free(&rep);
    struct ptc_event ev = {0};
    for (int i = 0; i < 10 && !ev.removed; i++)
        wait_session_event(sub, &id, ev_any, NULL, &ev);
    cr_assert_eq(ev.removed, true);
    /* Now it is unknown. */
    call_err(c, &id, &rm, PTC_C_NO_SUCH_SESSION, NULL, 0);
    call_err(c, &id, &kl, PTC_C_NO_SUCH_SESSION, NULL, 0);
    h_close(c);
    h_close(sub);
    h_relay_stop_clean();
}

/* ---- shutdown and unix sockets -------------------------------------------------------------- */

/* True once no process of the group pgid (the session's pid) is left. */
static bool group_gone(pid_t pgid) { return kill(-pgid, 0) < 0 && errno == ESRCH; }

Test(ops, sigterm_closes_1001_hups_programs_and_exits_0)
{
    char dir[] = "/tmp/ptyrelay-hup-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    h_relay_start();
    struct ptc_client_conn *a = h_connect();
    struct ptc_client_conn *b = h_connect();
    char script[512];
    snprintf(script, sizeof script,
             "trap 'echo hup > %s/hup; exit 0' HUP; echo ready; while :; do sleep 1; done", dir);
    pid_t p1, p2;
    ptc_uuid s1 = h_open_argv(a, SH(script), PTC_MODE_INTERACTIVE, &p1);
    (void)h_open_argv(b, (const char *const[]){"sleep", "100", NULL}, PTC_MODE_VIEW, &p2);
    struct h_out o;
    h_out_init(&o);
    h_out_until_text(a, &s1, &o, "ready");
    free(o.data);
    h_relay_signal(SIGTERM);
    cr_assert_eq(h_wait_close(a, h_timeout_ms()), 1001);
    cr_assert_eq(h_wait_close(b, h_timeout_ms()), 1001);
    int st = h_relay_wait_exit(h_timeout_ms());
    char *log = h_relay_log();
    cr_assert(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "relay status 0x%x\n%s", st, log);
    cr_assert(!strstr(log, "Sanitizer") && !strstr(log, "runtime error"), "%s", log);
    free(log);
    cr_assert(group_gone(p1), "processes of session 1 (pgid %d) remain", (int)p1);
    cr_assert(group_gone(p2), "processes of session 2 (pgid %d) remain", (int)p2);
    char path[128];
    snprintf(path, sizeof path, "%s/hup", dir);
    cr_assert_eq(access(path, F_OK), 0, "the program did not get SIGHUP");
    h_rmtree(dir);
    h_close(a);
    h_close(b);
    h_relay_stop();
}

/* Reads the child's output from fd until it contains needle (bounded); true if it did. */
static bool read_until(int fd, char *buf, size_t cap, const char *needle, int timeout_ms)
{
    size_t len = strlen(buf);
    uint64_t until = mono_ms() + (uint64_t)timeout_ms;
    while (!strstr(buf, needle)) {
        uint64_t now = mono_ms();
        if (now >= until || len + 1 >= cap)
            return false;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, (int)(until - now)) <= 0)
            continue;
        ssize_t n = read(fd, buf + len, cap - len - 1);
        if (n <= 0)
            return false;
        len += (size_t)n;
        buf[len] = 0;
    }
    return true;
}

Test(ops, listen_on_a_unix_socket)
{
    char dir[] = "/tmp/ptyrelay-unix-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char sock[128], data[128], listen[160], url[160];
    snprintf(sock, sizeof sock, "%s/relay.sock", dir);
    snprintf(data, sizeof data, "%s/data", dir);
    snprintf(listen, sizeof listen, "unix:%s", sock);
    snprintf(url, sizeof url, "unix:%s", sock);
    int pfd[2];
    cr_assert_eq(pipe2(pfd, O_CLOEXEC), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        dup2(pfd[1], 1);
        dup2(pfd[1], 2);
        execl(PTYRELAY_BIN, PTYRELAY_BIN, "serve", "--listen", listen, "--data", data,
              (char *)NULL);
        _exit(127);
    }
    close(pfd[1]);
    int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    static char log[65536];
    log[0] = 0;
    bool up = read_until(pfd[0], log, sizeof log, "listening on unix:", h_timeout_ms());
    if (!up)
        kill(pid, SIGKILL);
    cr_assert(up, "relay did not listen on %s:\n%s", listen, log);
    char tokpath[192], token[256] = "";
    snprintf(tokpath, sizeof tokpath, "%s/admin.token", data);
    FILE *f = fopen(tokpath, "r");
    cr_assert_not_null(f);
    cr_assert_not_null(fgets(token, sizeof token, f));
    fclose(f);
    token[strcspn(token, "\r\n")] = 0;
    struct ptc_client_conn *c = NULL;
    int rc = h_connect_try(url, token, NULL, &c);
    cr_assert_eq(rc, 0, "connect %s: %s", url, ptc_client_strerror(rc));
    ptc_uuid id = h_open_argv(c, SH("stty raw -echo; cat"), PTC_MODE_INTERACTIVE, NULL);
    cr_assert_eq(ptc_client_send_input(c, &id, "over-unix", 9), 0);
    struct h_out o;
    h_out_init(&o);
    h_out_until_text(c, &id, &o, "over-unix");
    free(o.data);
    kill(pid, SIGTERM);
    cr_assert_eq(h_wait_close(c, h_timeout_ms()), 1001);
    struct pollfd p = {.fd = pidfd, .events = POLLIN};
    cr_assert_eq(poll(&p, 1, h_timeout_ms()), 1, "relay did not exit after SIGTERM");
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    read_until(pfd[0], log, sizeof log, "\x01never", 200);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status 0x%x\n%s", st, log);
    cr_assert(!strstr(log, "Sanitizer") && !strstr(log, "runtime error"), "%s", log);
    close(pidfd);
    close(pfd[0]);
    h_close(c);
    h_rmtree(dir);
}
