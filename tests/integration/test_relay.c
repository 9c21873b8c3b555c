/*
 * Integration tests of the relay's sessions: the real ptyrelay on 127.0.0.1 with a temporary data
 * dir, driven by the libptc client as a phone app would. Each test waits on frames and replies,
 * never on sleeps; every wait is bounded by the harness timeout.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "harness.h"

#define SH(script) ((const char *const[]){"/bin/sh", "-c", script, NULL})

/*
 * Opens `cat` in raw mode without echo and waits until it runs: input sent before `stty` has
 * taken effect would be echoed by the tty as well as by cat.
 */
static ptc_uuid open_raw_cat(struct ptc_client_conn *c, struct h_out *o)
{
    ptc_uuid id = h_open_argv(c, SH("stty raw -echo; printf '[ready]'; exec cat"),
                              PTC_MODE_INTERACTIVE, NULL);
    h_out_until_text(c, &id, o, "[ready]");
    return id;
}

static void teardown(void) { h_relay_stop(); }

TestSuite(relay, .fini = teardown);

Test(relay, hello_reports_scope_and_max_frame)
{
    h_relay_start();
    struct ptc_client_conn *c = h_connect();
    cr_assert_eq(ptc_client_scope(c), PTC_MODE_INTERACTIVE);
    cr_assert_eq(ptc_client_max_frame(c), PTC_MAX_FRAME_DEFAULT);
    cr_assert(strstr(ptc_client_server_name(c), "ptyrelay/") != NULL);
    h_close(c);
}

Test(relay, bad_token_gets_unauthorized_and_4401)
{
    h_relay_start();
    struct ptc_client_conn *c = NULL;
    int rc = h_connect_try(NULL, "ptr_not-a-real-token", NULL, &c);
    cr_assert_eq(rc, PTC_CLIENT_EUNAUTHORIZED, "got %s", ptc_client_strerror(rc));
    cr_assert_eq(h_wait_close(c, h_timeout_ms()), 4401);
    h_close(c);
    cr_assert(!h_relay_log_contains("ptr_not-a-real-token"), "a token reached the log");
    char body[64];
    cr_assert_eq(h_http_get("/healthz", body, sizeof body), 200);
}

Test(relay, output_then_exit_state_with_code)
{
    h_relay_start();
    struct ptc_client_conn *c = h_connect();
    ptc_uuid id = h_open_argv(c, SH("printf 'hello\\n'; exit 7"), PTC_MODE_INTERACTIVE, NULL);
    struct h_out o;
    h_out_init(&o);
    h_out_until_end(c, &id, &o);
    cr_assert_eq(o.state, PTC_ST_EXITED);
    cr_assert_eq(o.exit_code, 7);
    cr_assert_str_eq((char *)o.data, "hello\r\n");
    cr_assert_eq(o.first, 0);
    cr_assert_eq(o.state_end, o.next, "STATE end %llu must equal the offset after the last byte %llu",
                 (unsigned long long)o.state_end, (unsigned long long)o.next);
    free(o.data);
    h_close(c);
}

Test(relay, no_byte_lost_at_exit_of_a_flood)
{
    h_relay_start();
    struct ptc_client_conn *c = h_connect();
    /* 3 MiB then exit at once: the tail must arrive before the exit STATE. */
    ptc_uuid id = h_open_argv(c, SH("stty raw -echo; head -c 3145728 /dev/zero | tr '\\0' x"),
                              PTC_MODE_VIEW, NULL);
    struct h_out o;
    h_out_init(&o);
    h_out_until_end(c, &id, &o);
    cr_assert_eq(o.state, PTC_ST_EXITED);
    cr_assert_eq(o.len, 3145728u, "received %zu bytes", o.len);
    cr_assert_eq(o.state_end, 3145728u);
    for (size_t i = 0; i < o.len; i++)
        if (o.data[i] != 'x')
            cr_assert_fail("byte %zu is %02x", i, o.data[i]);
    free(o.data);
    h_close(c);
}

Test(relay, input_is_echoed_and_acked)
{
    h_relay_start();
    struct ptc_client_conn *c = h_connect();
    struct h_out o;
    h_out_init(&o);
    ptc_uuid id = open_raw_cat(c, &o);
    cr_assert_eq(ptc_client_send_input(c, &id, "abc", 3), 0);
    h_out_until_text(c, &id, &o, "[ready]abc");
    for (int i = 0; i < 100 && o.acked < 3; i++)
        h_out_step(c, &id, &o, 0);
    cr_assert_eq(o.acked, 3);
    /* The count is per connection and session (PTC1): it goes on after a detach and re-attach. */
    struct ptc_client_reply rep;
    h_request_op(c, PTC_OP_DETACH, &id, &rep);
    cr_assert(rep.r.ok);
    ptc_client_reply_free(&rep);
    struct ptc_request ra = {.op = PTC_OP_ATTACH, .has = PTC_HAS_OFFSET, .offset = o.next};
    cr_assert_eq(h_call(c, &id, &ra, &rep), 0);
    cr_assert(rep.r.ok);
    ptc_client_reply_free(&rep);
    cr_assert_eq(ptc_client_send_input(c, &id, "de", 2), 0);
    h_out_until_text(c, &id, &o, "[ready]abcde");
    for (int i = 0; i < 100 && o.acked < 5; i++)
        h_out_step(c, &id, &o, 0);
    cr_assert_eq(o.acked, 5, "ACK after re-attach: %llu", (unsigned long long)o.acked);
    free(o.data);
    h_close(c);
}

Test(relay, three_sessions_on_one_connection)
{
    h_relay_start();
    struct ptc_client_conn *c = h_connect();
    ptc_uuid ids[3];
    char script[3][64];
    for (int i = 0; i < 3; i++) {
        snprintf(script[i], sizeof script[i], "echo session-%d; exit %d", i, i + 1);
        ids[i] = h_open_argv(c, SH(script[i]), PTC_MODE_INTERACTIVE, NULL);
    }
    for (int i = 0; i < 3; i++) {
        struct h_out o;
        h_out_init(&o);
        h_out_until_end(c, &ids[i], &o);
        char want[32];
        snprintf(want, sizeof want, "session-%d\r\n", i);
        cr_assert_str_eq((char *)o.data, want);
        cr_assert_eq(o.exit_code, i + 1);
        free(o.data);
    }
    struct ptc_client_reply rep;
    h_request_op(c, PTC_OP_LIST, NULL, &rep);
    cr_assert(rep.r.ok);
    cr_assert_eq(rep.r.nsessions, 3);
    ptc_client_reply_free(&rep);
    h_close(c);
}

Test(relay, two_clients_one_view_only)
{
    h_relay_start();
    struct ptc_client_conn *a = h_connect();
    struct ptc_client_conn *b = h_connect();
    struct h_out oa, ob;
    h_out_init(&oa);
    h_out_init(&ob);
    ptc_uuid id = open_raw_cat(a, &oa);
    struct ptc_request rq = {.op = PTC_OP_ATTACH, .has = PTC_HAS_MODE, .mode = PTC_MODE_VIEW};
    struct ptc_client_reply rep;
    cr_assert_eq(h_call(b, &id, &rq, &rep), 0);
    cr_assert(rep.r.ok);
    ptc_client_reply_free(&rep);
    /* The viewer's input is refused with EVENT error forbidden. */
    cr_assert_eq(ptc_client_send_input(b, &id, "no", 2), 0);
    struct ptc_client_frame fr;
    cr_assert_eq(h_wait_frame(b, PTC_EVENT, &id, &fr, h_timeout_ms()), 0);
    struct ptc_event ev;
    struct ptc_perr pe;
    cr_assert_eq(ptc_event_parse(fr.f.payload, fr.f.len, &ptc_limits_default, &ev, &pe), 0);
    cr_assert_eq(ev.kind, PTC_EV_ERROR);
    cr_assert_eq(ev.error, PTC_C_FORBIDDEN);
    cr_assert_eq(ev.type, PTC_INPUT);
    ptc_event_free(&ev);
    ptc_client_frame_free(&fr);
    /* The interactive client's input reaches both. */
    cr_assert_eq(ptc_client_send_input(a, &id, "shared", 6), 0);
    h_out_until_text(a, &id, &oa, "shared");
    h_out_until_text(b, &id, &ob, "shared");
    cr_assert(strstr((char *)ob.data, "no") == NULL, "view-only input reached the program");
    free(oa.data);
    free(ob.data);
    h_close(a);
    h_close(b);
}

Test(relay, detach_and_reattach_from_offset)
{
    h_relay_start();
    struct ptc_client_conn *c = h_connect();
    struct h_out o;
    h_out_init(&o);
    ptc_uuid id = open_raw_cat(c, &o);
    cr_assert_eq(ptc_client_send_input(c, &id, "one.", 4), 0);
    h_out_until_text(c, &id, &o, "one.");
    struct ptc_client_reply rep;
    h_request_op(c, PTC_OP_DETACH, &id, &rep);
    cr_assert(rep.r.ok);
    ptc_client_reply_free(&rep);
    /* Written while detached, by a second connection. */
    struct ptc_client_conn *w = h_connect();
    struct ptc_request rq = {.op = PTC_OP_ATTACH};
    cr_assert_eq(h_call(w, &id, &rq, &rep), 0);
    cr_assert(rep.r.ok);
    ptc_client_reply_free(&rep);
    cr_assert_eq(ptc_client_send_input(w, &id, "two.", 4), 0);
    struct h_out ow;
    h_out_init(&ow);
    h_out_until_text(w, &id, &ow, "two.");
    /* Re-attach from the offset we had: exactly the missed bytes, no repeats. */
    struct ptc_request ra = {.op = PTC_OP_ATTACH, .has = PTC_HAS_OFFSET, .offset = o.next};
    cr_assert_eq(h_call(c, &id, &ra, &rep), 0);
    cr_assert(rep.r.ok);
    cr_assert_eq(rep.r.start, o.next);
    ptc_client_reply_free(&rep);
    h_out_until_text(c, &id, &o, "two.");
    cr_assert_str_eq((char *)o.data, "[ready]one.two.");
    free(o.data);
    free(ow.data);
    h_close(w);
    h_close(c);
}

Test(relay, resize_reaches_stty_size)
{
    h_relay_start();
    struct ptc_client_conn *c = h_connect();
    ptc_uuid id =
        h_open_argv(c, SH("read x; stty size; read y; stty size"), PTC_MODE_INTERACTIVE, NULL);
    cr_assert_eq(ptc_client_send_input(c, &id, "\r", 1), 0);
    struct h_out o;
    h_out_init(&o);
    h_out_until_text(c, &id, &o, "24 80");
    cr_assert_eq(ptc_client_send_resize(c, &id, 132, 50), 0);
    h_expect_resize(c, &id, 132, 50);
    cr_assert_eq(ptc_client_send_input(c, &id, "\r", 1), 0);
    h_out_until_text(c, &id, &o, "50 132");
    free(o.data);
    h_close(c);
}

Test(relay, ctrl_c_reaches_the_foreground_program)
{
    h_relay_start();
    struct ptc_client_conn *c = h_connect();
    /*
     * One process that says it is ready and then waits with SIGINT at its default action. (A
     * shell script would race: dash catches SIGINT while non-interactive, and a ^C that lands
     * before it has started its foreground child is swallowed.) perl-base is essential on Debian.
     */
    ptc_uuid id =
        h_open_argv(c, SH("exec perl -e '$|=1; print qq(ready\\n); sleep 100; print qq(after\\n)'"),
                    PTC_MODE_INTERACTIVE, NULL);
    struct h_out o;
    h_out_init(&o);
    h_out_until_text(c, &id, &o, "ready");
    const char *bytes;
    size_t n;
    cr_assert_eq(ptc_key_lookup("C-c", &bytes, &n), 0);
    cr_assert_eq(ptc_client_send_input(c, &id, bytes, n), 0);
    h_out_until_end(c, &id, &o);
    cr_assert_eq(o.state, PTC_ST_KILLED);
    cr_assert_eq(o.signo, SIGINT);
    cr_assert(strstr((char *)o.data, "after") == NULL);
    free(o.data);
    h_close(c);
}

Test(relay, kill_with_grace_against_a_program_ignoring_sigterm)
{
    h_relay_start();
    struct ptc_client_conn *c = h_connect();
    ptc_uuid id = h_open_argv(c, SH("trap '' TERM; echo armed; while :; do sleep 1; done"),
                              PTC_MODE_INTERACTIVE, NULL);
    struct h_out o;
    h_out_init(&o);
    h_out_until_text(c, &id, &o, "armed");
    struct ptc_request rq = {.op = PTC_OP_KILL, .has = PTC_HAS_GRACE, .grace_ms = 300};
    struct ptc_client_reply rep;
    cr_assert_eq(h_call(c, &id, &rq, &rep), 0);
    cr_assert(rep.r.ok);
    ptc_client_reply_free(&rep);
    h_out_until_end(c, &id, &o);
    cr_assert_eq(o.state, PTC_ST_KILLED);
    cr_assert_eq(o.signo, SIGKILL, "ended by signal %d", o.signo);
    free(o.data);
    h_close(c);
}

Test(relay, signal_stop_and_cont_change_state)
{
    h_relay_start();
    struct ptc_client_conn *c = h_connect();
    /*
     * exec: with `sh -c 'echo go; sleep 100'` dash vforks sleep, and a SIGSTOP that lands before
     * the vforked child execs stops that child while the shell waits uninterruptibly for the
     * vfork: the shell then never reports a stop. With exec, the session's pid is the sleeper.
     */
    ptc_uuid id = h_open_argv(c, SH("echo go; exec sleep 100"), PTC_MODE_INTERACTIVE, NULL);
    struct h_out o;
    h_out_init(&o);
    h_out_until_text(c, &id, &o, "go");
    const char *sigs[] = {"STOP", "CONT"};
    const int want[] = {PTC_ST_SUSPENDED, PTC_ST_RUNNING};
    for (int i = 0; i < 2; i++) {
        struct ptc_request rq = {.op = PTC_OP_SIGNAL, .has = PTC_HAS_SIGNAL};
        rq.signal = ptc_str_c(sigs[i]);
        struct ptc_client_reply rep;
        cr_assert_eq(h_call(c, &id, &rq, &rep), 0);
        cr_assert(rep.r.ok);
        ptc_client_reply_free(&rep);
        for (int k = 0; k < 50 && o.state != want[i]; k++)
            h_out_step(c, &id, &o, PTC_STATE);
        cr_assert_eq(o.state, want[i]);
    }
    free(o.data);
    h_close(c);
}
