/*
 * Tests of the client library (clients/common/ptclient) and of the harness itself: URL parsing,
 * how a missing relay is reported, the loop's timers, stop and adopted fds, and then the real relay:
 * hello with the admin token and with a bad one, the close handshake, the sync call layer, a
 * malformed frame sent as a raw message, /healthz, the token never reaching the log, batching of
 * queued frames, a message written in chunks, a paused reader that loses nothing, and wss (trusted,
 * untrusted, insecure, ws:// on a TLS port).
 * Every callback is counted, and counts are asserted exactly.
 *
 * No criterion `.timeout` here: every wait is bounded by h_timeout_ms() already, and criterion
 * 2.4.1's runner sporadically leaks a 48-byte timeout entry per timed test under --jobs 2, which
 * LeakSanitizer reports and ctest then counts as a failure.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "harness.h"

/* ---- URLs ---------------------------------------------------------------------------------- */

Test(url, ws_full)
{
    struct ptc_client_url u;
    cr_assert_eq(ptc_client_url_parse("ws://127.0.0.1:7373/ptc1", &u), 0);
    cr_assert_not(u.tls);
    cr_assert_not(u.unix_sock);
    cr_assert_str_eq(u.address, "127.0.0.1");
    cr_assert_eq(u.port, 7373);
    cr_assert_str_eq(u.path, "/ptc1");
    cr_assert_str_eq(u.host, "127.0.0.1:7373");
}

Test(url, defaults)
{
    struct ptc_client_url u;
    cr_assert_eq(ptc_client_url_parse("ws://localhost", &u), 0);
    cr_assert_eq(u.port, 80);
    cr_assert_str_eq(u.path, "/ptc1");
    cr_assert_str_eq(u.address, "localhost");
    cr_assert_eq(ptc_client_url_parse("wss://relay.example.org/", &u), 0);
    cr_assert(u.tls);
    cr_assert_eq(u.port, 443);
    cr_assert_str_eq(u.path, "/");
    cr_assert_str_eq(u.host, "relay.example.org:443");
    cr_assert_eq(ptc_client_url_parse("ws://h:1?token=a", &u), 0);
    cr_assert_str_eq(u.path, "/ptc1?token=a");
    cr_assert_eq(ptc_client_url_parse("ws://h:2#frag", &u), 0);
    cr_assert_str_eq(u.path, "/ptc1");
}

Test(url, ipv6_and_query)
{
    struct ptc_client_url u;
    cr_assert_eq(ptc_client_url_parse("wss://[::1]:9000/relay/ptc1?x=1#f", &u), 0);
    cr_assert(u.tls);
    cr_assert_str_eq(u.address, "::1");
    cr_assert_str_eq(u.host, "[::1]:9000");
    cr_assert_eq(u.port, 9000);
    cr_assert_str_eq(u.path, "/relay/ptc1?x=1");
}

Test(url, unix_socket)
{
    struct ptc_client_url u;
    cr_assert_eq(ptc_client_url_parse("unix:/run/ptyrelay/sock", &u), 0);
    cr_assert(u.unix_sock);
    cr_assert_not(u.tls);
    cr_assert_str_eq(u.address, "+/run/ptyrelay/sock");
    cr_assert_eq(u.port, 0);
    cr_assert_str_eq(u.path, "/ptc1");
    cr_assert_eq(ptc_client_url_parse("unix:@abstract", &u), 0);
    cr_assert_str_eq(u.address, "+@abstract");
    cr_assert_eq(ptc_client_url_parse("unix:rel/sock", &u), 0);
    cr_assert_str_eq(u.address, "+rel/sock");
}

Test(url, rejects)
{
    static const char *bad[] = {
        "", "http://127.0.0.1/", "ws://", "ws:///ptc1", "ws://:80/", "ws://h:0/", "ws://h:65536/",
        "ws://h:12a/", "ws://h:/", "ws://[::1/", "ws://[]:1/", "ws://[::1]x/", "unix:", "unix://",
        "ws://user@h/", "WS://h/", "ws://h:123456/",
    };
    struct ptc_client_url u;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_expect_eq(ptc_client_url_parse(bad[i], &u), PTC_CLIENT_EURL, "accepted \"%s\"", bad[i]);
    cr_expect_eq(ptc_client_url_parse(NULL, &u), PTC_CLIENT_EURL);
    char longhost[400] = "ws://";
    memset(longhost + 5, 'a', 300);
    cr_expect_eq(ptc_client_url_parse(longhost, &u), PTC_CLIENT_EURL);
}

Test(url, connect_with_bad_url)
{
    int err = 0;
    struct ptc_client_conn *c = ptc_client_connect(h_ctx(), "tcp://x", NULL, NULL, NULL, &err);
    cr_assert_null(c);
    cr_assert_eq(err, PTC_CLIENT_EURL);
}

/* ---- callback counting --------------------------------------------------------------------- */

struct counts {
    int ready, frame, error, close;
    int last_err, close_code, scope;
    uint32_t max_frame;
    char msg[256];
    bool free_in_cb;
};

static void on_ready(struct ptc_client_conn *c, int scope, uint32_t max_frame, void *arg)
{
    struct counts *n = arg;
    n->ready++;
    n->scope = scope;
    n->max_frame = max_frame;
    ptc_client_stop(h_ctx());
}

static void on_frame(struct ptc_client_conn *c, const struct ptc_frame *f, void *arg)
{
    ((struct counts *)arg)->frame++;
}

static void on_error(struct ptc_client_conn *c, int err, const char *message, void *arg)
{
    struct counts *n = arg;
    n->error++;
    n->last_err = err;
    snprintf(n->msg, sizeof(n->msg), "%s", message);
    if (n->free_in_cb)
        ptc_client_conn_free(c);
    ptc_client_stop(h_ctx());
}

static void on_close(struct ptc_client_conn *c, int code, const char *reason, void *arg)
{
    struct counts *n = arg;
    n->close++;
    n->close_code = code;
    snprintf(n->msg, sizeof(n->msg), "%s", reason);
    ptc_client_stop(h_ctx());
}

static const struct ptc_client_cbs counting = {on_ready, on_frame, on_error, on_close};

/* ---- no relay ------------------------------------------------------------------------------ */

Test(client, refused_tcp)
{
    int port = h_free_port();
    char url[64];
    snprintf(url, sizeof(url), "ws://127.0.0.1:%d/ptc1", port);
    struct counts n = {0};
    int err = 0;
    struct ptc_client_conn *c = ptc_client_connect(h_ctx(), url, NULL, &counting, &n, &err);
    cr_assert_not_null(c, "connect: %s", ptc_client_strerror(err));
    cr_assert_eq(n.error, 0, "on_error called from inside ptc_client_connect");
    cr_assert_eq(ptc_client_run(h_ctx(), h_timeout_ms()), 1, "no report within the timeout");
    cr_assert_eq(n.error, 1);
    cr_assert_eq(n.ready + n.close + n.frame, 0);
    cr_assert_eq(n.last_err, PTC_CLIENT_EREFUSED, "got %s: %s", ptc_client_strerror(n.last_err), n.msg);
    char port_s[16];
    snprintf(port_s, sizeof(port_s), "%d", port);
    cr_assert(strstr(n.msg, "refused") && strstr(n.msg, "no relay") && strstr(n.msg, port_s),
              "message not clear: %s", n.msg);
    cr_assert(ptc_client_is_closed(c));
    cr_assert_eq(ptc_client_error(c), PTC_CLIENT_EREFUSED);
    /* nothing more happens afterwards */
    cr_assert_eq(ptc_client_run(h_ctx(), 100), 0);
    cr_assert_eq(n.error, 1);
    ptc_client_conn_free(c);
}

Test(client, refused_unix)
{
    char path[64];
    snprintf(path, sizeof(path), "/tmp/ptclient-test-%d.sock", (int)getpid());
    unlink(path);
    /* a socket file whose listener has gone: ECONNREFUSED */
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0, "bind: %s", strerror(errno));
    close(fd);
    char url[80];
    snprintf(url, sizeof(url), "unix:%s", path);
    struct counts n = {0};
    struct ptc_client_conn *c = ptc_client_connect(h_ctx(), url, NULL, &counting, &n, NULL);
    cr_assert_not_null(c);
    cr_assert_eq(n.error, 0, "on_error called from inside ptc_client_connect");
    cr_assert_eq(ptc_client_run(h_ctx(), h_timeout_ms()), 1);
    unlink(path);
    cr_assert_eq(n.error, 1);
    cr_assert_eq(n.last_err, PTC_CLIENT_EREFUSED, "got %s: %s", ptc_client_strerror(n.last_err), n.msg);
    cr_assert(strstr(n.msg, path), "message does not name the socket: %s", n.msg);
    ptc_client_conn_free(c);
}

Test(client, free_inside_on_error)
{
    char url[64];
    snprintf(url, sizeof(url), "ws://127.0.0.1:%d/ptc1", h_free_port());
    struct counts n = {.free_in_cb = true};
    struct ptc_client_conn *c = ptc_client_connect(h_ctx(), url, NULL, &counting, &n, NULL);
    cr_assert_not_null(c);
    cr_assert_eq(ptc_client_run(h_ctx(), h_timeout_ms()), 1);
    cr_assert_eq(n.error, 1);
    /* c is freed; the loop must keep working without touching it */
    cr_assert_eq(ptc_client_run(h_ctx(), 50), 0);
}

Test(client, sync_call_without_relay)
{
    char url[64];
    snprintf(url, sizeof(url), "ws://127.0.0.1:%d/ptc1", h_free_port());
    struct ptc_client_conn *c = NULL;
    int r = h_connect_try(url, "t", NULL, &c);
    cr_assert_eq(r, PTC_CLIENT_EREFUSED, "got %s", ptc_client_strerror(r));
    struct ptc_request req = {.op = PTC_OP_LIST};
    struct ptc_client_reply rep;
    cr_assert_eq(ptc_client_call(c, NULL, &req, &rep, 1000), PTC_CLIENT_ECLOSED);
    struct ptc_client_frame fr;
    cr_assert_eq(h_wait_frame(c, 0, NULL, &fr, 1000), PTC_CLIENT_ECLOSED);
    cr_assert_eq(ptc_client_send_input(c, NULL, "x", 1), PTC_CLIENT_ESTATE);
    ptc_client_reply_free(&rep);
    h_close(c);
}

/* ---- loop: timers, stop, fds --------------------------------------------------------------- */

struct tcount {
    int fired;
    bool stop, free_self;
};

static void on_timer(struct ptc_client_timer *t, void *arg)
{
    struct tcount *n = arg;
    n->fired++;
    if (n->stop)
        ptc_client_stop(h_ctx());
    if (n->free_self)
        ptc_client_timer_free(t);
}

Test(loop, timers_and_stop)
{
    struct ptc_client_ctx *ctx = h_ctx();
    struct tcount a = {0}, b = {.stop = true, .free_self = true}, never = {0};
    struct ptc_client_timer *ta = ptc_client_timer_new(ctx, on_timer, &a);
    struct ptc_client_timer *tb = ptc_client_timer_new(ctx, on_timer, &b);
    struct ptc_client_timer *tn = ptc_client_timer_new(ctx, on_timer, &never);
    ptc_client_timer_set(ta, 5);
    ptc_client_timer_set(tb, 30);
    ptc_client_timer_set(tn, 20);
    ptc_client_timer_cancel(tn);
    uint64_t t0 = ptc_client_now_us();
    cr_assert_eq(ptc_client_run(ctx, h_timeout_ms()), 1, "the stopping timer did not stop the loop");
    cr_assert_geq(ptc_client_now_us() - t0, 30000);
    cr_assert_eq(a.fired, 1);
    cr_assert_eq(b.fired, 1);
    cr_assert_eq(never.fired, 0);
    /* one-shot: nothing fires again; a run without stop ends by its timeout */
    cr_assert_eq(ptc_client_run(ctx, 60), 0);
    cr_assert_eq(a.fired, 1);
    /* re-arming works, and a stop requested before run is honoured at once */
    ptc_client_timer_set(ta, 1);
    ptc_client_stop(ctx);
    cr_assert_eq(ptc_client_run(ctx, h_timeout_ms()), 1);
    cr_assert_eq(ptc_client_run(ctx, 200), 0);
    cr_assert_eq(a.fired, 2);
    ptc_client_timer_free(ta);
    ptc_client_timer_free(tn);
}

struct fdcount {
    int readable, closed;
    char got[64];
    size_t n;
};

static void fd_readable(struct ptc_client_fd *f, int fd, void *arg)
{
    struct fdcount *n = arg;
    n->readable++;
    ssize_t r = read(fd, n->got + n->n, sizeof(n->got) - 1 - n->n);
    if (r > 0)
        n->n += (size_t)r;
    ptc_client_stop(h_ctx());
}

static void fd_closed(struct ptc_client_fd *f, void *arg)
{
    ((struct fdcount *)arg)->closed++;
    ptc_client_stop(h_ctx());
}

static bool got_hello(void *arg) { return ((struct fdcount *)arg)->n >= 5; }

Test(loop, adopted_pipe)
{
    int p[2];
    cr_assert_eq(pipe(p), 0);
    int before = fcntl(p[0], F_GETFL);
    cr_assert_eq(before & O_NONBLOCK, 0);
    struct fdcount n = {0};
    struct ptc_client_fd_cbs cbs = {.on_readable = fd_readable, .on_close = fd_closed};
    struct ptc_client_fd *f = ptc_client_fd_adopt(h_ctx(), p[0], &cbs, &n);
    cr_assert_not_null(f);
    cr_assert_eq(write(p[1], "hello", 5), 5);
    cr_assert(ptc_client_run_until(h_ctx(), got_hello, &n, h_timeout_ms()));
    cr_assert_eq(memcmp(n.got, "hello", 5), 0);
    cr_assert_geq(n.readable, 1);
    ptc_client_fd_close(f);
    cr_assert_eq(fcntl(p[0], F_GETFL), before, "file status flags not restored");
    cr_assert_eq(n.closed, 0, "on_close after ptc_client_fd_close");
    /* the original fd stays open and usable */
    cr_assert_eq(write(p[1], "x", 1), 1);
    char c;
    cr_assert_eq(read(p[0], &c, 1), 1);
    close(p[0]);
    close(p[1]);
}

Test(loop, adopted_pipe_eof)
{
    int p[2];
    cr_assert_eq(pipe(p), 0);
    struct fdcount n = {0};
    struct ptc_client_fd_cbs cbs = {.on_readable = fd_readable, .on_close = fd_closed};
    struct ptc_client_fd *f = ptc_client_fd_adopt(h_ctx(), p[0], &cbs, &n);
    cr_assert_not_null(f);
    close(p[1]);
    /* EOF shows up as a readable read()==0 or directly as a close; run until the close */
    for (int i = 0; i < 10 && !n.closed; i++)
        cr_assert_eq(ptc_client_run(h_ctx(), h_timeout_ms()), 1, "no callback for EOF");
    cr_assert_eq(n.closed, 1);
    cr_assert_eq(n.n, 0);
    ptc_client_fd_close(f);
    close(p[0]);
}

/* ---- against the real relay ---------------------------------------------------------------- */

Test(relay, hello_admin_token)
{
    h_relay_start();
    cr_assert_gt(h_relay_port(), 0);
    cr_assert_gt(strlen(h_relay_token()), 10);
    struct counts n = {0};
    struct ptc_client_conn_opts o = {.token = h_relay_token(), .client_name = "test_harness/1"};
    struct ptc_client_conn *c = ptc_client_connect(h_ctx(), h_relay_url(), &o, &counting, &n, NULL);
    cr_assert_not_null(c);
    cr_assert_eq(ptc_client_run(h_ctx(), h_timeout_ms()), 1, "no ready within the timeout");
    cr_assert_eq(n.error, 0, "error: %s", n.msg);
    cr_assert_eq(n.ready, 1);
    cr_assert_eq(n.scope, PTC_MODE_INTERACTIVE, "admin token must give scope control");
    cr_assert_eq(n.max_frame, PTC_MAX_FRAME_DEFAULT);
    cr_assert(ptc_client_is_ready(c));
    cr_assert_eq(ptc_client_scope(c), PTC_MODE_INTERACTIVE);
    cr_assert_neq(ptc_client_server_name(c)[0], '\0');
    /* our close: on_close once, with our code */
    ptc_client_conn_close(c, 1000, "bye");
    cr_assert_eq(ptc_client_run(h_ctx(), h_timeout_ms()), 1, "no close within the timeout");
    cr_assert_eq(n.close, 1);
    cr_assert_eq(n.close_code, 1000);
    cr_assert_eq(n.error + n.frame, 0);
    cr_assert_eq(ptc_client_wait_gone(c, h_timeout_ms()), 0);
    ptc_client_conn_free(c);
    cr_assert_not(h_relay_log_contains(h_relay_token()), "the admin token appears in the log");
    int st = h_relay_stop();
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "relay exit status %#x", st);
}

Test(relay, hello_bad_token)
{
    h_relay_start();
    struct counts n = {0};
    const char *bad = "not-the-token-0123456789abcdef";
    struct ptc_client_conn_opts o = {.token = bad};
    struct ptc_client_conn *c = ptc_client_connect(h_ctx(), h_relay_url(), &o, &counting, &n, NULL);
    cr_assert_not_null(c);
    cr_assert_eq(ptc_client_run(h_ctx(), h_timeout_ms()), 1);
    cr_assert_eq(n.ready, 0);
    cr_assert_eq(n.error, 1);
    cr_assert_eq(n.last_err, PTC_CLIENT_EUNAUTHORIZED, "got %s: %s",
                 ptc_client_strerror(n.last_err), n.msg);
    cr_assert(strstr(n.msg, "token"), "message not clear: %s", n.msg);
    cr_assert_eq(h_wait_close(c, h_timeout_ms()), PTC_CLOSE_UNAUTHORIZED);
    cr_assert_eq(n.error + n.close + n.ready, 1, "more than one terminal callback");
    ptc_client_conn_free(c);
    cr_assert_not(h_relay_log_contains(bad), "a presented token appears in the log");
    cr_assert_not(h_relay_log_contains(h_relay_token()), "the admin token appears in the log");
    h_relay_stop();
}

Test(relay, missing_token)
{
    h_relay_start();
    struct ptc_client_conn *c = NULL;
    struct ptc_client_conn_opts o = {.client_name = "no-token"};
    /* h_connect_try fills a NULL token with the admin one, so go to ptclient directly */
    int err = 0;
    c = ptc_client_connect(h_ctx(), h_relay_url(), &o, NULL, NULL, &err);
    cr_assert_not_null(c);
    cr_assert_eq(ptc_client_wait_ready(c, h_timeout_ms()), PTC_CLIENT_EUNAUTHORIZED, "%s",
                 ptc_client_error_message(c));
    cr_assert_eq(h_wait_close(c, h_timeout_ms()), PTC_CLOSE_UNAUTHORIZED);
    h_close(c);
    h_relay_stop();
}

Test(relay, sync_layer)
{
    h_relay_start();
    struct ptc_client_conn *c = h_connect();
    struct ptc_client_reply rep;
    h_request_op(c, PTC_OP_LIST, NULL, &rep);
    cr_assert(rep.r.ok, "list failed: %.*s", (int)rep.r.message.n, rep.r.message.p);
    cr_assert_eq(rep.r.nsessions, 0);
    ptc_client_reply_free(&rep);
    /* two requests in flight on one connection get their own replies, by id */
    struct ptc_request a = {.op = PTC_OP_LIST}, b = {.op = PTC_OP_INFO};
    uint64_t ida, idb;
    cr_assert_eq(ptc_client_request(c, NULL, &a, NULL, NULL, &ida), 0);
    cr_assert_eq(ptc_client_request(c, NULL, &b, NULL, NULL, &idb), 0);
    cr_assert_neq(ida, idb);
    /* info on the zero session: a failed REPLY, and the connection stays open */
    h_request_op(c, PTC_OP_INFO, NULL, &rep);
    cr_assert_not(rep.r.ok);
    cr_assert_neq(rep.r.message.n, 0);
    ptc_client_reply_free(&rep);
    cr_assert(ptc_client_is_ready(c));
    /* nothing else arrived */
    struct ptc_client_frame fr;
    cr_assert_eq(h_wait_frame(c, 0, NULL, &fr, 200), PTC_CLIENT_ETIMEOUT);
    h_close(c);
    int st = h_relay_stop();
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "relay exit status %#x", st);
}

Test(relay, raw_malformed_frame_closes_4400)
{
    h_relay_start();
    struct ptc_client_conn *c = h_connect();
    /* a frame of core type 0x3f, which no version knows: close 4400 */
    uint8_t raw[PTC_HDR_LEN + 3] = {0x3f};
    raw[17] = 3;
    cr_assert_eq(h_send_raw(c, raw, sizeof(raw)), 0);
    cr_assert_eq(h_wait_close(c, h_timeout_ms()), PTC_CLOSE_PROTOCOL);
    h_close(c);
    /* the relay is still there for the next client */
    c = h_connect();
    h_close(c);
    h_relay_stop();
}

Test(relay, healthz)
{
    h_relay_start();
    char body[256];
    cr_assert_eq(h_http_get("/healthz", body, sizeof(body)), 200);
    cr_assert_neq(h_http_get("/no-such-page", NULL, 0), 200);
    h_relay_stop();
    /* after stop nothing listens on the port any more */
}

Test(relay, token_file_and_restart)
{
    h_relay_start();
    char path[128];
    snprintf(path, sizeof(path), "%s/admin.token", h_relay_dir());
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0600, "admin.token mode %o", st.st_mode & 0777);
    char token[512];
    snprintf(token, sizeof(token), "%s", h_relay_token());
    pid_t first = h_relay_pid();
    cr_assert_gt(first, 0);
    h_relay_stop_keep();
    cr_assert_eq(h_relay_pid(), 0);
    h_relay_restart();
    cr_assert_neq(h_relay_pid(), first);
    /* the same data dir keeps the same admin token */
    cr_assert_str_eq(h_relay_token(), token);
    struct ptc_client_conn *c = h_connect();
    h_close(c);
    char dir[64];
    snprintf(dir, sizeof(dir), "%s", h_relay_dir());
    h_relay_stop();
    cr_assert_neq(access(dir, F_OK), 0, "data dir %s not removed", dir);
}

/* ---- batching, chunking and reading control, against the relay ----------------------------- */

struct replies {
    int n, bad;
    uint64_t next_id;
};

static void on_list_reply(struct ptc_client_conn *c, int status, const struct ptc_reply *rp,
                          void *arg)
{
    struct replies *r = arg;
    /* the relay answers in order, so ids come back in the order they were sent */
    if (status || !rp->ok || rp->id != r->next_id)
        r->bad++;
    r->next_id = rp ? rp->id + 1 : r->next_id;
    r->n++;
}

static bool all_replies(void *arg) { return ((struct replies *)arg)->n == 300; }

Test(flow, requests_batched_into_one_message)
{
    h_relay_start();
    struct ptc_client_conn *c = h_connect();
    struct ptc_client_stats s0, s1;
    ptc_client_get_stats(c, &s0);
    cr_assert_eq(s0.msgs_out, 1, "hello goes alone in the first message");
    struct replies r = {0};
    for (int i = 0; i < 300; i++) {
        struct ptc_request req = {.op = PTC_OP_LIST};
        uint64_t id;
        cr_assert_eq(ptc_client_request(c, NULL, &req, on_list_reply, &r, &id), 0);
        if (i == 0)
            r.next_id = id;
    }
    cr_assert(ptc_client_run_until(h_ctx(), all_replies, &r, h_timeout_ms()), "%d of 300 replies", r.n);
    cr_assert_eq(r.bad, 0);
    ptc_client_get_stats(c, &s1);
    cr_assert_eq(s1.frames_out - s0.frames_out, 300);
    cr_assert_eq(s1.msgs_out - s0.msgs_out, 1, "300 small requests queued together must go as one message");
    cr_assert_eq(s1.frames_in - s0.frames_in, 300);
    h_close(c);
    h_relay_stop();
}

Test(flow, large_message_in_chunks)
{
    h_relay_start();
    struct ptc_client_conn *c = h_connect();
    ptc_uuid nobody;
    cr_assert_eq(ptc_uuid_random(&nobody), 0);
    static uint8_t big[200000];
    memset(big, 'a', sizeof(big));
    struct ptc_client_stats s0, s1;
    ptc_client_get_stats(c, &s0);
    cr_assert_eq(ptc_client_send_input(c, &nobody, big, sizeof(big)), 0);
    /* the relay reassembles the fragments and refuses the INPUT with an EVENT error */
    struct ptc_client_frame fr;
    cr_assert_eq(h_wait_frame(c, PTC_EVENT, &nobody, &fr, h_timeout_ms()), 0, "no EVENT error");
    struct ptc_event ev;
    struct ptc_perr perr;
    memset(&ev, 0, sizeof(ev));
    cr_assert_eq(ptc_event_parse(fr.f.payload, fr.f.len, &ptc_limits_default, &ev, &perr), 0, "%s",
                 perr.message);
    cr_assert_eq(ev.kind, PTC_EV_ERROR);
    cr_assert_eq(ev.type, PTC_INPUT);
    cr_assert_eq(ev.error, PTC_C_NO_SUCH_SESSION, "error %s", ptc_code_name(ev.error));
    ptc_event_free(&ev);
    ptc_client_frame_free(&fr);
    ptc_client_get_stats(c, &s1);
    cr_assert_eq(s1.msgs_out - s0.msgs_out, 1);
    cr_assert_eq(s1.bytes_out - s0.bytes_out, PTC_HDR_LEN + sizeof(big));
    cr_assert(ptc_client_is_ready(c), "the connection stays open");
    /* a payload over the relay's max_frame is refused before it is queued */
    cr_assert_eq(ptc_client_send_frame(c, PTC_INPUT, &nobody, big, (size_t)ptc_client_max_frame(c) + 1),
                 PTC_ETOOBIG);
    h_close(c);
    h_relay_stop();
}

Test(flow, paused_reader_loses_nothing)
{
    enum { TOTAL = 200000 };
    h_relay_start();
    struct ptc_client_conn *a = h_connect(), *b = h_connect();
    struct ptc_str argv[3] = {ptc_str_c("sh"), ptc_str_c("-c"),
                              ptc_str_c("head -c 200000 /dev/zero | tr '\\000' x")};
    struct ptc_request req = {.op = PTC_OP_OPEN, .argv = argv, .argc = 3, .attach = PTC_MODE_VIEW,
                              .has = PTC_HAS_ARGV | PTC_HAS_ATTACH};
    struct ptc_client_reply rep;
    cr_assert_eq(h_call(a, NULL, &req, &rep), 0);
    cr_assert(rep.r.ok, "open: %.*s", (int)rep.r.message.n, rep.r.message.p);
    ptc_uuid sid = rep.r.session;
    ptc_client_reply_free(&rep);

    /* A stops reading; B waits (an event: the wait op's reply) until the program has exited */
    ptc_client_pause(a, true);
    cr_assert(ptc_client_is_paused(a));
    struct ptc_client_stats s0, s1;
    ptc_client_get_stats(a, &s0);
    struct ptc_request w = {.op = PTC_OP_WAIT, .until = PTC_UNTIL_EXIT, .has = PTC_HAS_UNTIL};
    cr_assert_eq(h_call(b, &sid, &w, &rep), 0);
    cr_assert(rep.r.ok, "wait: %.*s", (int)rep.r.message.n, rep.r.message.p);
    cr_assert_eq(rep.r.end, TOTAL);
    ptc_client_reply_free(&rep);
    ptc_client_get_stats(a, &s1);
    cr_assert_eq(s1.bytes_in, s0.bytes_in, "read %llu bytes while paused",
                 (unsigned long long)(s1.bytes_in - s0.bytes_in));

    /* resumed, A gets every byte, offsets contiguous, then the STATE that ends it */
    ptc_client_pause(a, false);
    uint64_t next = 0;
    while (next < TOTAL) {
        struct ptc_client_frame fr;
        cr_assert_eq(h_wait_frame(a, PTC_OUTPUT, &sid, &fr, h_timeout_ms()), 0, "stuck at offset %llu",
                     (unsigned long long)next);
        uint64_t off;
        const uint8_t *data;
        size_t n;
        cr_assert_eq(ptc_output_parse(&fr.f, &off, &data, &n), 0);
        cr_assert_eq(off, next, "gap: offset %llu, expected %llu", (unsigned long long)off,
                     (unsigned long long)next);
        for (size_t i = 0; i < n; i++)
            cr_assert_eq(data[i], 'x', "byte %llu is %#x", (unsigned long long)(off + i), data[i]);
        next += n;
        ptc_client_frame_free(&fr);
    }
    cr_assert_eq(next, TOTAL);
    for (;;) {
        struct ptc_client_frame fr;
        cr_assert_eq(h_wait_frame(a, PTC_STATE, &sid, &fr, h_timeout_ms()), 0, "no final STATE");
        struct ptc_statemsg st;
        struct ptc_perr perr;
        cr_assert_eq(ptc_state_parse(fr.f.payload, fr.f.len, &st, &perr), 0, "%s", perr.message);
        ptc_client_frame_free(&fr);
        if (ptc_state_is_ended(st.state)) {
            cr_assert_eq(st.state, PTC_ST_EXITED, "state %s", ptc_state_name(st.state));
            cr_assert_eq(st.end, TOTAL);
            break;
        }
    }
    struct ptc_client_stats s2;
    ptc_client_get_stats(a, &s2);
    cr_assert_gt(s2.msgs_in, s1.msgs_in);
    h_close(a);
    h_close(b);
    h_relay_stop();
}

/* ---- TLS ----------------------------------------------------------------------------------- */

static int connect_with(const struct ptc_client_ctx_opts *co, const char *url, char *msg, size_t cap)
{
    struct ptc_client_ctx *ctx = ptc_client_ctx_new(co);
    cr_assert_not_null(ctx);
    struct ptc_client_conn_opts o = {.token = h_relay_token()};
    struct ptc_client_conn *c = ptc_client_connect(ctx, url, &o, NULL, NULL, NULL);
    cr_assert_not_null(c);
    int r = ptc_client_wait_ready(c, h_timeout_ms());
    snprintf(msg, cap, "%s", ptc_client_error_message(c));
    ptc_client_ctx_free(ctx); /* frees c too */
    return r;
}

Test(tls, wss_trust_and_errors)
{
    const char *cert, *key;
    h_tls_files(&cert, &key);
    h_relay_start("--tls-cert", cert, "--tls-key", key);
    cr_assert_eq(strncmp(h_relay_url(), "wss://127.0.0.1:", 16), 0, "url %s", h_relay_url());
    /*
     * The contexts of this test are used one after another, and before h_ctx() exists: lws 4.1.6
     * leaks a TLS context's SSL_CTX when another context is destroyed while it lives (ptclient.h).
     */
    char msg[256];
    /* trusting only the system store: a TLS error that says so */
    struct ptc_client_ctx_opts plain = {0};
    int r = connect_with(&plain, h_relay_url(), msg, sizeof(msg));
    cr_assert_eq(r, PTC_CLIENT_ETLS, "got %s: %s", ptc_client_strerror(r), msg);
    cr_assert(strstr(msg, "TLS") && strstr(msg, "certificate"), "message: %s", msg);
    /* the insecure option accepts the self-signed certificate */
    struct ptc_client_ctx_opts insecure = {.insecure = true};
    r = connect_with(&insecure, h_relay_url(), msg, sizeof(msg));
    cr_assert_eq(r, 0, "insecure: %s: %s", ptc_client_strerror(r), msg);
    /* plain ws:// to the TLS port fails, and is not mistaken for a missing relay */
    char url[64];
    snprintf(url, sizeof(url), "ws://127.0.0.1:%d/ptc1", h_relay_port());
    r = connect_with(&plain, url, msg, sizeof(msg));
    cr_assert_eq(r, PTC_CLIENT_EHANDSHAKE, "ws:// on a TLS port: %s: %s", ptc_client_strerror(r), msg);
    cr_assert(strstr(msg, "wss://"), "no hint to use wss://: %s", msg);
    /* the harness context trusts the test certificate */
    struct ptc_client_conn *c = h_connect();
    cr_assert_eq(ptc_client_scope(c), PTC_MODE_INTERACTIVE);
    h_close(c);
    h_relay_stop();
}
