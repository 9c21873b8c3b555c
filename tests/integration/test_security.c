/*
 * Integration tests of the relay's security policy, against the real ptyrelay on 127.0.0.1: the
 * upgrade gate (Origin and Host, a real 403 before any frame is read), TLS from a certificate made
 * at test time with `openssl req` (TLS 1.2 or newer, no h2), the refusal of a non-loopback listen
 * without TLS, token scopes (view and control tokens made with `ptyrelay token add`), revoked
 * tokens, failed-login delays and the 4429 lockout, connection and request limits, the checks of
 * `open` (programs, cwd, loader variables, no shell) and the permessage-deflate default. Every wait
 * is bounded; nothing sleeps.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "rawws.h"

/* The argv of the tests' plain sessions. */
#define CAT ((const char *const[]){"/bin/cat", NULL})

/* The TLS relay of the running test, killed by the teardown if the test ends early. */
static pid_t tls_pid;

static void teardown(void)
{
    h_relay_stop();
    if (tls_pid > 0) {
        kill(tls_pid, SIGKILL);
        waitpid(tls_pid, NULL, 0);
        tls_pid = 0;
    }
}

TestSuite(security, .fini = teardown);

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/*
 * A WebSocket upgrade for /ptc1 with this Host (NULL: none) and Origin (NULL: none) over a raw
 * socket; returns the status (reading only the response header, as a 101 has no end).
 */
static int upgrade(const char *host, const char *origin, const char *extra, char *resp, size_t cap)
{
    char req[2048], local[4096];
    if (!resp) {
        resp = local;
        cap = sizeof local;
    }
    int n = snprintf(req, sizeof req,
                     "GET /ptc1 HTTP/1.1\r\n%s%s%s%s%s%s"
                     "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: c2VjdXJpdHktdGVzdC1rZXk=\r\nSec-WebSocket-Version: 13\r\n"
                     "Sec-WebSocket-Protocol: ptc1\r\n%s\r\n",
                     host ? "Host: " : "", host ? host : "", host ? "\r\n" : "",
                     origin ? "Origin: " : "", origin ? origin : "", origin ? "\r\n" : "",
                     extra ? extra : "");
    int fd = raw_connect(h_relay_port());
    cr_assert_geq(fd, 0, "connect: %s", strerror(-fd));
    int st = raw_send(fd, req, (size_t)n, h_timeout_ms());
    if (!st)
        st = raw_read_status(fd, resp, cap, h_timeout_ms());
    if (st > 0 && st != 101) {
        /* a refusal: its body too, until the relay hangs up */
        size_t len = strlen(resp);
        uint64_t end = mono_ms() + (uint64_t)h_timeout_ms();
        ssize_t got;
        while (len < cap - 1 && (got = raw_recv(fd, resp + len, cap - 1 - len, end)) > 0)
            len += (size_t)got;
        resp[len] = 0;
    }
    close(fd);
    return st;
}

static const char *own_host(void)
{
    static char buf[64];
    snprintf(buf, sizeof buf, "127.0.0.1:%d", h_relay_port());
    return buf;
}

static int healthz(void) { return h_http_get("/healthz", NULL, 0); }

/* ---- Origin and Host ----------------------------------------------------------------------- */

Test(security, evil_origin_gets_403_before_upgrade)
{
    h_relay_start();
    char resp[4096];
    int st = upgrade(own_host(), "http://evil.example", NULL, resp, sizeof resp);
    cr_assert_eq(st, 403, "status %d: %s", st, resp);
    cr_assert(!strncmp(resp, "HTTP/1.1 403", 12), "%s", resp);
    cr_assert(strstr(resp, "Origin") != NULL, "the body says why: %s", resp);
    cr_assert(h_relay_log_wait("upgrade refused (403)", h_timeout_ms()));
    /* Lookalikes of the own origin are refused too. */
    char o[128];
    snprintf(o, sizeof o, "http://127.0.0.1:%d.evil.example", h_relay_port());
    cr_assert_eq(upgrade(own_host(), o, NULL, NULL, 0), 403);
    snprintf(o, sizeof o, "http://127.0.0.1:%d/", h_relay_port());
    cr_assert_eq(upgrade(own_host(), o, NULL, NULL, 0), 403);
    cr_assert_eq(upgrade(own_host(), "null", NULL, NULL, 0), 403);
    /* The relay's own origin is plain http here: https with the same host and port is not it. */
    snprintf(o, sizeof o, "https://127.0.0.1:%d", h_relay_port());
    cr_assert_eq(upgrade(own_host(), o, NULL, NULL, 0), 403);
    cr_assert_eq(healthz(), 200);
    h_relay_stop_checked();
}

Test(security, own_origin_and_loopback_names_upgrade)
{
    h_relay_start();
    char o[128], h[128];
    const char *names[] = {"127.0.0.1", "localhost", "LOCALHOST", "[::1]"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        snprintf(h, sizeof h, "%s:%d", names[i], h_relay_port());
        snprintf(o, sizeof o, "http://%s:%d", names[i], h_relay_port());
        char resp[2048];
        int st = upgrade(h, o, NULL, resp, sizeof resp);
        cr_assert_eq(st, 101, "%s: %d %s", names[i], st, resp);
        /* No Origin (ptcat, phone apps) is fine too. */
        cr_assert_eq(upgrade(h, NULL, NULL, NULL, 0), 101, "%s without Origin", names[i]);
    }
    h_relay_stop_checked();
}

Test(security, allow_origin_and_allow_host)
{
    h_relay_start("--allow-origin", "https://app.example", "--allow-host", "relay.example");
    cr_assert_eq(upgrade(own_host(), "https://app.example", NULL, NULL, 0), 101);
    cr_assert_eq(upgrade(own_host(), "https://APP.example", NULL, NULL, 0), 101);
    cr_assert_eq(upgrade(own_host(), "https://app.example.evil", NULL, NULL, 0), 403);
    cr_assert_eq(upgrade(own_host(), "http://app.example:8080", NULL, NULL, 0), 403);
    /* A proxy's name: Host with or without a port, and its origin in either scheme. */
    cr_assert_eq(upgrade("relay.example", NULL, NULL, NULL, 0), 101);
    cr_assert_eq(upgrade("relay.example:443", "https://relay.example", NULL, NULL, 0), 101);
    cr_assert_eq(upgrade("relay.example", "https://relay.example", NULL, NULL, 0), 101);
    cr_assert_eq(upgrade("relay.example.evil", NULL, NULL, NULL, 0), 403);
    h_relay_stop_checked();
}

Test(security, rebinding_host_gets_403)
{
    h_relay_start();
    char h[128];
    snprintf(h, sizeof h, "attacker.example:%d", h_relay_port());
    char resp[2048];
    cr_assert_eq(upgrade(h, NULL, NULL, resp, sizeof resp), 403, "%s", resp);
    cr_assert(strstr(resp, "Host") != NULL, "%s", resp);
    /* The rebinding page's own origin does not help it. */
    char o[160];
    snprintf(o, sizeof o, "http://%s", h);
    cr_assert_eq(upgrade(h, o, NULL, NULL, 0), 403);
    /* Right name, wrong port; and no Host at all. */
    snprintf(h, sizeof h, "127.0.0.1:%d", h_relay_port() == 1 ? 2 : 1);
    cr_assert_eq(upgrade(h, NULL, NULL, NULL, 0), 403);
    cr_assert_eq(upgrade(NULL, NULL, NULL, NULL, 0), 403);
    cr_assert_eq(healthz(), 200);
    h_relay_stop_checked();
}

Test(security, refused_upgrade_reads_no_frame)
{
    h_relay_start();
    /* The upgrade and a valid hello frame in one write: the frame must never be read. */
    struct ptc_buf b;
    ptc_buf_init(&b, 0);
    struct ptc_request rq = {.id = 1, .op = PTC_OP_HELLO, .version = PTC_VERSION};
    rq.token = ptc_str_c(h_relay_token());
    rq.has = PTC_HAS_TOKEN;
    static const ptc_uuid zero;
    long mark = ptc_frame_open(&b, PTC_REQUEST, &zero);
    cr_assert_geq(mark, 0);
    cr_assert_eq(ptc_request_build(&b, &rq), 0);
    cr_assert_eq(ptc_frame_close(&b, mark), 0);
    uint8_t wire[4096];
    int fd = raw_connect(h_relay_port());
    cr_assert_geq(fd, 0);
    char req[1024];
    int n = snprintf(req, sizeof req,
                     "GET /ptc1 HTTP/1.1\r\nHost: %s\r\nOrigin: http://evil.example\r\n"
                     "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: c2VjdXJpdHktdGVzdC1rZXk=\r\nSec-WebSocket-Version: 13\r\n"
                     "Sec-WebSocket-Protocol: ptc1\r\n\r\n",
                     own_host());
    memcpy(wire, req, (size_t)n);
    size_t fl = ws_frame(wire + n, sizeof wire - (size_t)n, 2, false, b.data, b.len);
    cr_assert_gt(fl, 0);
    ptc_buf_free(&b);
    cr_assert_eq(raw_send(fd, wire, (size_t)n + fl, h_timeout_ms()), 0);
    char resp[2048];
    cr_assert_eq(raw_read_status(fd, resp, sizeof resp, h_timeout_ms()), 403, "%s", resp);
    /* the relay hangs up after the 403 */
    char rest[4096];
    uint64_t end = mono_ms() + (uint64_t)h_timeout_ms();
    ssize_t got;
    while ((got = raw_recv(fd, rest, sizeof rest, end)) > 0)
        ;
    cr_assert(got == 0 || got == -ECONNRESET, "the connection stayed open after 403 (%zd)", got);
    close(fd);
    cr_assert(h_relay_log_wait("upgrade refused (403)", h_timeout_ms()));
    /* a hello that went through would log its token name */
    cr_assert(!h_relay_log_contains("hello token="), "a frame was read after a refused upgrade");
    cr_assert_eq(healthz(), 200);
    h_relay_stop_checked();
}

/* ---- listen policy and TLS ------------------------------------------------------------------ */

Test(security, non_loopback_listen_without_tls_is_refused)
{
    int rc = h_relay_try_startv((const char *const[]){"--listen", "0.0.0.0:0", NULL});
    cr_assert_neq(rc, 0, "the relay listened on every address without TLS");
    char *log = h_relay_log();
    cr_assert(strstr(log, "refusing to listen on 0.0.0.0:0 without TLS") != NULL, "%s", log);
    cr_assert(strstr(log, "--insecure-no-tls") != NULL, "the message says how: %s", log);
    free(log);
    h_relay_stop();
    rc = h_relay_try_startv((const char *const[]){"--listen", "[::]:0", NULL});
    cr_assert_neq(rc, 0);
    cr_assert(h_relay_log_contains("without TLS"));
    h_relay_stop_checked();
}

/* A relay of its own for TLS (the harness waits for a ws:// line). */
struct tls_relay {
    pid_t pid;
    int out;
    int port;
    char dir[64];
    char log[65536];
    size_t loglen;
};

static void tls_read_log(struct tls_relay *t, int timeout_ms, const char *until)
{
    uint64_t end = mono_ms() + (uint64_t)timeout_ms;
    while (!(until && strstr(t->log, until))) {
        uint64_t now = mono_ms();
        if (now >= end)
            break;
        struct pollfd p = {.fd = t->out, .events = POLLIN};
        if (poll(&p, 1, (int)(end - now)) <= 0)
            break;
        ssize_t n = read(t->out, t->log + t->loglen, sizeof t->log - 1 - t->loglen);
        if (n <= 0)
            break;
        t->loglen += (size_t)n;
        t->log[t->loglen] = 0;
    }
}

static void run_ok(const char *cmd)
{
    int st = system(cmd);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "command failed (%#x): %s", st, cmd);
}

/* Makes DIR/cert.pem and DIR/key.pem (P-256, SAN 127.0.0.1 and localhost) with openssl req. */
static void make_cert(const char *dir)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
             "-keyout %s/key.pem -out %s/cert.pem -days 1 -subj /CN=localhost "
             "-addext subjectAltName=IP:127.0.0.1,DNS:localhost >/dev/null 2>&1 && chmod 600 %s/key.pem",
             dir, dir, dir);
    run_ok(cmd);
}

static void tls_start(struct tls_relay *t)
{
    memset(t, 0, sizeof *t);
    strcpy(t->dir, "/tmp/ptyrelay-tls-XXXXXX");
    cr_assert_not_null(mkdtemp(t->dir));
    make_cert(t->dir);
    char cert[128], key[128], data[128];
    snprintf(cert, sizeof cert, "%s/cert.pem", t->dir);
    snprintf(key, sizeof key, "%s/key.pem", t->dir);
    snprintf(data, sizeof data, "%s/data", t->dir);
    int pfd[2];
    cr_assert_eq(pipe2(pfd, O_CLOEXEC), 0);
    t->pid = fork();
    cr_assert_geq(t->pid, 0);
    if (t->pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlives the test worker */
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        dup2(pfd[1], 1);
        dup2(pfd[1], 2);
        execl(PTYRELAY_BIN, PTYRELAY_BIN, "serve", "--listen", "127.0.0.1:0", "--data", data,
              "--tls-cert", cert, "--tls-key", key, (char *)NULL);
        _exit(127);
    }
    close(pfd[1]);
    tls_pid = t->pid;
    t->out = pfd[0];
    tls_read_log(t, h_timeout_ms(), "/ptc1");
    const char *p = strstr(t->log, "listening on wss://127.0.0.1:");
    cr_assert_not_null(p, "no wss listening line: %s", t->log);
    t->port = atoi(p + strlen("listening on wss://127.0.0.1:"));
    cr_assert_gt(t->port, 0);
}

/* Waits (bounded) for the TLS relay to exit after SIGTERM; SIGKILL if it does not. */
static bool tls_reap(pid_t pid, int timeout_ms)
{
    uint64_t end = mono_ms() + (uint64_t)timeout_ms;
    int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    bool exited = false;
    while (!exited && mono_ms() < end) {
        struct pollfd p = {.fd = pidfd, .events = POLLIN};
        if (pidfd < 0 || poll(&p, 1, (int)(end - mono_ms())) <= 0)
            break;
        exited = waitpid(pid, NULL, WNOHANG) == pid;
    }
    if (pidfd >= 0)
        close(pidfd);
    if (!exited) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
    return exited;
}

static void tls_stop(struct tls_relay *t)
{
    bool exited = true;
    if (t->pid > 0) {
        kill(t->pid, SIGTERM);
        tls_read_log(t, h_timeout_ms(), "stopped");
        exited = tls_reap(t->pid, h_timeout_ms());
        t->pid = 0;
        tls_pid = 0;
    }
    close(t->out);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", t->dir);
    run_ok(cmd);
    cr_assert(exited, "the TLS relay ignored SIGTERM:\n%s", t->log);
}

/* Runs openssl s_client against the relay with extra flags; its exit status, output in out. */
static int s_client(int port, const char *flags, char *out, size_t cap)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd,
             "timeout 10 openssl s_client -connect 127.0.0.1:%d %s </dev/null 2>&1", port, flags);
    FILE *f = popen(cmd, "r");
    cr_assert_not_null(f);
    size_t n = fread(out, 1, cap - 1, f);
    out[n] = 0;
    int st = pclose(f);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 255;
}

Test(security, tls_serves_wss_with_tls12_minimum_and_no_h2)
{
    struct tls_relay t;
    tls_start(&t);
    char buf[16384];
    /* A PTC1 client that trusts the test certificate gets through. */
    char ca[128], url[128], tokpath[160], token[256] = "";
    snprintf(ca, sizeof ca, "%s/cert.pem", t.dir);
    snprintf(url, sizeof url, "wss://127.0.0.1:%d/ptc1", t.port);
    snprintf(tokpath, sizeof tokpath, "%s/data/admin.token", t.dir);
    FILE *tf = fopen(tokpath, "r");
    cr_assert_not_null(tf);
    cr_assert_not_null(fgets(token, sizeof token, tf));
    fclose(tf);
    token[strcspn(token, "\r\n")] = 0;
    struct ptc_client_ctx_opts co = {.ca_file = ca};
    struct ptc_client_ctx *ctx = ptc_client_ctx_new(&co);
    cr_assert_not_null(ctx);
    struct ptc_client_conn_opts o = {.token = token, .client_name = "tls-test"};
    int err = 0;
    struct ptc_client_conn *c = ptc_client_connect(ctx, url, &o, NULL, NULL, &err);
    cr_assert_not_null(c);
    int rc = ptc_client_wait_ready(c, h_timeout_ms());
    tls_read_log(&t, 200, NULL);
    cr_assert_eq(rc, 0, "wss hello: %s (%s)\n%s", ptc_client_strerror(rc),
                 ptc_client_error_message(c), t.log);
    ptc_client_conn_free(c);
    /* Plain ws:// to the TLS port gets nowhere. */
    snprintf(url, sizeof url, "ws://127.0.0.1:%d/ptc1", t.port);
    c = ptc_client_connect(ctx, url, &o, NULL, NULL, &err);
    cr_assert_not_null(c);
    cr_assert_neq(ptc_client_wait_ready(c, h_timeout_ms()), 0, "plain WebSocket on the TLS port");
    ptc_client_conn_free(c);
    ptc_client_ctx_free(ctx);
    /* TLS 1.1 is refused, TLS 1.2 and 1.3 work; ALPN never picks h2. */
    cr_assert_neq(s_client(t.port, "-tls1_1 -cipher DEFAULT@SECLEVEL=0", buf, sizeof buf), 0,
                  "TLS 1.1 was accepted: %s", buf);
    cr_assert_neq(s_client(t.port, "-tls1 -cipher DEFAULT@SECLEVEL=0", buf, sizeof buf), 0,
                  "TLS 1.0 was accepted: %s", buf);
    cr_assert_eq(s_client(t.port, "-tls1_2", buf, sizeof buf), 0, "TLS 1.2: %s", buf);
    cr_assert_eq(s_client(t.port, "-tls1_3 -alpn h2,http/1.1", buf, sizeof buf), 0, "%s", buf);
    cr_assert(strstr(buf, "ALPN protocol: h2") == NULL, "h2 was negotiated: %s", buf);
    /* The own origin over TLS is https; the certificate's names count as own names. */
    tls_stop(&t);
    cr_assert(!strstr(t.log, "Sanitizer") && !strstr(t.log, "runtime error"), "%s", t.log);
    cr_assert(strstr(t.log, "TLS on") != NULL, "%s", t.log);
    cr_assert(strstr(t.log, "localhost:") != NULL, "%s", t.log);
    cr_assert(strstr(t.log, token) == NULL, "the token reached the log");
    h_relay_stop_checked();
}

/* ---- tokens and scopes ---------------------------------------------------------------------- */

/* `ptyrelay token add NAME --scope SCOPE` on the relay's (stopped) data dir: the new token. */
static void token_add(const char *name, const char *scope, char *out, size_t cap)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "%s token add %s --scope %s --data %s 2>&1", PTYRELAY_BIN, name,
             scope, h_relay_dir());
    FILE *f = popen(cmd, "r");
    cr_assert_not_null(f);
    char buf[1024];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    int st = pclose(f);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "token add failed (the store?): %s", buf);
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
        buf[--n] = 0;
    const char *sp = strrchr(buf, ' ');
    const char *word = sp ? sp + 1 : buf;
    size_t wl = strlen(word);
    cr_assert_lt(wl, cap, "token longer than the buffer: %s", buf);
    memcpy(out, word, wl + 1);
    cr_assert(!strncmp(out, "ptr_", 4), "no token in: %s", buf);
}

static void token_revoke(const char *name)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "%s token revoke %s --data %s >/dev/null 2>&1", PTYRELAY_BIN, name,
             h_relay_dir());
    run_ok(cmd);
}

/* Calls rq on session sid and returns its error code (-1 when ok). */
static int call_code(struct ptc_client_conn *c, const ptc_uuid *sid, struct ptc_request *rq)
{
    struct ptc_client_reply rep;
    int rc = h_call(c, sid, rq, &rep);
    cr_assert_eq(rc, 0, "%s: %s", ptc_op_name(rq->op), ptc_client_strerror(rc));
    int code = rep.r.ok ? -1 : rep.r.error;
    ptc_client_reply_free(&rep);
    return code;
}

static int op_code(struct ptc_client_conn *c, const ptc_uuid *sid, int op)
{
    struct ptc_request rq = {.op = op};
    return call_code(c, sid, &rq);
}

Test(security, view_token_scope)
{
    h_relay_start();
    h_relay_stop_keep();
    char viewer[128];
    token_add("viewer", "view", viewer, sizeof viewer);
    h_relay_restart();
    struct ptc_client_conn *admin = h_connect();
    ptc_uuid sid = h_open_argv(admin, CAT, PTC_MODE_INTERACTIVE, NULL);
    struct ptc_client_conn *v = h_connect_token(viewer);
    cr_assert_eq(ptc_client_scope(v), PTC_MODE_VIEW);
    /* allowed: list, info, read, wait, subscribe, attach view */
    cr_assert_eq(op_code(v, NULL, PTC_OP_LIST), -1);
    cr_assert_eq(op_code(v, &sid, PTC_OP_INFO), -1);
    cr_assert_eq(op_code(v, &sid, PTC_OP_READ), -1);
    cr_assert_eq(op_code(v, NULL, PTC_OP_SUBSCRIBE), -1);
    struct ptc_request w = {.op = PTC_OP_WAIT, .until = PTC_UNTIL_IDLE, .idle_ms = 1,
                            .has = PTC_HAS_UNTIL | PTC_HAS_IDLE_MS};
    cr_assert_eq(call_code(v, &sid, &w), -1);
    struct ptc_request at = {.op = PTC_OP_ATTACH, .mode = PTC_MODE_INTERACTIVE, .has = PTC_HAS_MODE};
    cr_assert_eq(call_code(v, &sid, &at), PTC_C_FORBIDDEN);
    at.mode = PTC_MODE_VIEW;
    cr_assert_eq(call_code(v, &sid, &at), -1);
    /* forbidden: everything that changes something */
    struct ptc_str av[] = {ptc_str_c("/bin/true")};
    struct ptc_request op = {.op = PTC_OP_OPEN, .argv = av, .argc = 1, .has = PTC_HAS_ARGV};
    cr_assert_eq(call_code(v, NULL, &op), PTC_C_FORBIDDEN);
    struct ptc_request sg = {.op = PTC_OP_SIGNAL, .signal = ptc_str_c("INT"), .has = PTC_HAS_SIGNAL};
    cr_assert_eq(call_code(v, &sid, &sg), PTC_C_FORBIDDEN);
    cr_assert_eq(op_code(v, &sid, PTC_OP_KILL), PTC_C_FORBIDDEN);
    cr_assert_eq(op_code(v, &sid, PTC_OP_REMOVE), PTC_C_FORBIDDEN);
    /* INPUT and RESIZE from the view-only attachment: EVENT error forbidden, nothing reaches cat */
    cr_assert_eq(ptc_client_send_input(v, &sid, "viewer-was-here\n", 16), 0);
    cr_assert_eq(ptc_client_send_resize(v, &sid, 100, 30), 0);
    for (int i = 0; i < 2; i++) {
        struct ptc_client_frame fr;
        cr_assert_eq(h_wait_frame(v, PTC_EVENT, &sid, &fr, h_timeout_ms()), 0);
        struct ptc_event e;
        struct ptc_perr pe;
        cr_assert_eq(ptc_event_parse(fr.f.payload, fr.f.len, NULL, &e, &pe), 0);
        cr_assert_eq(e.kind, PTC_EV_ERROR);
        cr_assert_eq(e.error, PTC_C_FORBIDDEN);
        cr_assert(e.type == PTC_INPUT || e.type == PTC_RESIZE);
        ptc_event_free(&e);
        ptc_client_frame_free(&fr);
    }
    struct ptc_request rd = {.op = PTC_OP_READ};
    struct ptc_client_reply rep;
    cr_assert_eq(h_call(admin, &sid, &rd, &rep), 0);
    cr_assert(rep.r.ok);
    cr_assert(!memmem(rep.r.data.p, rep.r.data.n, "viewer-was-here", 15), "view input reached cat");
    ptc_client_reply_free(&rep);
    struct ptc_request inf = {.op = PTC_OP_INFO};
    cr_assert_eq(h_call(admin, &sid, &inf, &rep), 0);
    cr_assert(rep.r.info.cols != 100, "a view-only RESIZE took effect");
    ptc_client_reply_free(&rep);
    h_close(v);
    h_close(admin);
    cr_assert(!h_relay_log_contains(viewer), "a token reached the log");
    h_relay_stop_checked();
}

Test(security, control_token_and_revoked_token)
{
    h_relay_start();
    h_relay_stop_keep();
    char ctl[128], gone[128];
    token_add("operator", "control", ctl, sizeof ctl);
    token_add("leaver", "control", gone, sizeof gone);
    token_revoke("leaver");
    h_relay_restart();
    struct ptc_client_conn *c = h_connect_token(ctl);
    cr_assert_eq(ptc_client_scope(c), PTC_MODE_INTERACTIVE);
    ptc_uuid sid = h_open_argv(c, CAT, 0, NULL);
    cr_assert_eq(op_code(c, &sid, PTC_OP_KILL), -1);
    h_close(c);
    struct ptc_client_conn *r = NULL;
    int rc = h_connect_try(NULL, gone, NULL, &r);
    cr_assert_eq(rc, PTC_CLIENT_EUNAUTHORIZED, "revoked token: %s", ptc_client_strerror(rc));
    cr_assert_eq(h_wait_close(r, h_timeout_ms()), PTC_CLOSE_UNAUTHORIZED);
    h_close(r);
    cr_assert(!h_relay_log_contains(ctl) && !h_relay_log_contains(gone), "a token reached the log");
    /* Not in the database either: only hashes are stored. */
    h_relay_stop_keep();
    char cmd[512];
    snprintf(cmd, sizeof cmd, "! grep -rqa -e '%s' -e '%s' %s", ctl, gone, h_relay_dir());
    run_ok(cmd);
    h_relay_stop_checked();
}

Test(security, token_in_url_is_not_accepted)
{
    h_relay_start();
    char url[1024];
    snprintf(url, sizeof url, "%s?token=%s", h_relay_url(), h_relay_token());
    struct ptc_client_conn_opts o = {.client_name = "url-token"};
    int err = 0;
    struct ptc_client_conn *c = ptc_client_connect(h_ctx(), url, &o, NULL, NULL, &err);
    cr_assert_not_null(c);
    int rc = ptc_client_wait_ready(c, h_timeout_ms());
    cr_assert_neq(rc, 0, "a token in the URL was accepted");
    h_close(c);
    cr_assert(!h_relay_log_contains(h_relay_token()), "the token reached the log");
    h_relay_stop_checked();
}

/* ---- failed logins -------------------------------------------------------------------------- */

Test(security, failed_login_delay_grows)
{
    h_relay_start();
    uint64_t expect[] = {100, 200, 400};
    for (int i = 0; i < 3; i++) {
        char bad[64];
        snprintf(bad, sizeof bad, "ptr_wrong-token-number-%d", i);
        uint64_t t0 = mono_ms();
        struct ptc_client_conn *c = NULL;
        int rc = h_connect_try(NULL, bad, NULL, &c);
        uint64_t took = mono_ms() - t0;
        cr_assert_eq(rc, PTC_CLIENT_EUNAUTHORIZED, "%s", ptc_client_strerror(rc));
        cr_assert_eq(h_wait_close(c, h_timeout_ms()), PTC_CLOSE_UNAUTHORIZED);
        h_close(c);
        cr_assert_geq(took, expect[i], "failure %d answered after %llu ms, before its delay", i + 1,
                      (unsigned long long)took);
        char line[64];
        snprintf(line, sizeof line, "answer in %llu ms", (unsigned long long)expect[i]);
        cr_assert(h_relay_log_wait(line, h_timeout_ms()), "no '%s' in the log", line);
        cr_assert(!h_relay_log_contains(bad), "a token reached the log");
    }
    /* The loop was never blocked: a good client gets through at once. */
    struct ptc_client_conn *ok = h_connect();
    h_close(ok);
    h_relay_stop_checked();
}

/* An unauthorized attempt in progress. */
struct attempt {
    struct ptc_client_conn *c;
};

static bool all_closed(void *arg)
{
    struct attempt *a = arg;
    for (int i = 0; i < 11; i++)
        if (!ptc_client_is_gone(a[i].c))
            return false;
    return true;
}

Test(security, failed_logins_past_limit_close_4429)
{
    h_relay_start();
    /* 11 failures at once from 127.0.0.1: more than 10 in a minute. */
    struct attempt a[11];
    for (int i = 0; i < 11; i++) {
        char bad[64];
        snprintf(bad, sizeof bad, "ptr_guess-%02d", i);
        struct ptc_client_conn_opts o = {.token = bad, .client_name = "guesser"};
        int err = 0;
        a[i].c = ptc_client_connect(h_ctx(), h_relay_url(), &o, NULL, NULL, &err);
        cr_assert_not_null(a[i].c);
    }
    cr_assert_eq(ptc_client_run_until(h_ctx(), all_closed, a, h_timeout_ms()), 1);
    int n4429 = 0, n4401 = 0;
    for (int i = 0; i < 11; i++) {
        int code = ptc_client_close_code(a[i].c);
        n4429 += code == PTC_CLOSE_TOO_MANY;
        n4401 += code == PTC_CLOSE_UNAUTHORIZED;
        h_close(a[i].c);
    }
    cr_assert_eq(n4429, 1, "4429: %d, 4401: %d", n4429, n4401);
    cr_assert_eq(n4401, 10);
    cr_assert(h_relay_log_wait("limit: failed logins reached", h_timeout_ms()));
    /* While over the limit, even the right token is refused with 4429 (no validity oracle). */
    struct ptc_client_conn *c = NULL;
    int rc = h_connect_try(NULL, NULL, NULL, &c);
    cr_assert_eq(rc, PTC_CLIENT_EUNAUTHORIZED, "%s", ptc_client_strerror(rc));
    cr_assert_eq(h_wait_close(c, h_timeout_ms()), PTC_CLOSE_TOO_MANY);
    h_close(c);
    cr_assert(!h_relay_log_contains("ptr_guess-"), "a token reached the log");
    cr_assert(!h_relay_log_contains(h_relay_token()), "the admin token reached the log");
    cr_assert_eq(healthz(), 200);
    h_relay_stop_checked();
}

/* ---- limits ------------------------------------------------------------------------------- */

Test(security, connections_per_peer_limit_closes_4429)
{
    h_relay_start("--max-connections-per-peer", "3");
    struct ptc_client_conn *c[3];
    for (int i = 0; i < 3; i++)
        c[i] = h_connect();
    struct ptc_client_conn *x = NULL;
    h_connect_try(NULL, NULL, NULL, &x);
    cr_assert_eq(h_wait_close(x, h_timeout_ms()), PTC_CLOSE_TOO_MANY);
    h_close(x);
    cr_assert(h_relay_log_wait("limit: connections per peer reached", h_timeout_ms()));
    h_close(c[0]);
    /* one slot free again (once the relay has seen the close) */
    cr_assert(h_relay_log_wait("closing 4429", h_timeout_ms()));
    for (int tries = 0; tries < 50; tries++) {
        x = NULL;
        if (h_connect_try(NULL, NULL, NULL, &x) == 0)
            break;
        h_close(x);
        x = NULL;
    }
    cr_assert_not_null(x, "no slot came free after a close");
    h_close(x);
    h_close(c[1]);
    h_close(c[2]);
    h_relay_stop_checked();
}

Test(security, total_connections_limit_closes_4429)
{
    h_relay_start("--max-connections", "2");
    struct ptc_client_conn *a = h_connect(), *b = h_connect(), *x = NULL;
    h_connect_try(NULL, NULL, NULL, &x);
    cr_assert_eq(h_wait_close(x, h_timeout_ms()), PTC_CLOSE_TOO_MANY);
    h_close(x);
    cr_assert(h_relay_log_wait("limit: connections reached", h_timeout_ms()));
    h_close(a);
    h_close(b);
    h_relay_stop_checked();
}

Test(security, session_attach_and_argument_limits)
{
    h_relay_start("--max-sessions", "1", "--max-attach", "1", "--max-argv", "3", "--max-env", "1",
                  "--max-arg-len", "64");
    struct ptc_client_conn *c = h_connect();
    ptc_uuid s1 = h_open_argv(c, CAT, PTC_MODE_INTERACTIVE, NULL);
    struct ptc_str av[] = {ptc_str_c("/bin/cat")};
    struct ptc_request rq = {.op = PTC_OP_OPEN, .argv = av, .argc = 1, .has = PTC_HAS_ARGV};
    cr_assert_eq(call_code(c, NULL, &rq), PTC_C_LIMIT, "sessions");
    cr_assert(h_relay_log_wait("limit: sessions reached", h_timeout_ms()));
    /* attach limit: a second connection attaches once, then a detach/attach works */
    struct ptc_request at = {.op = PTC_OP_ATTACH, .mode = PTC_MODE_VIEW, .has = PTC_HAS_MODE};
    cr_assert_eq(call_code(c, &s1, &at), PTC_C_BAD_REQUEST, "already attached");
    /* argv, env and argument sizes */
    struct ptc_str many[] = {ptc_str_c("/bin/echo"), ptc_str_c("a"), ptc_str_c("b"), ptc_str_c("c")};
    struct ptc_request big = {.op = PTC_OP_OPEN, .argv = many, .argc = 4, .has = PTC_HAS_ARGV};
    cr_assert_eq(call_code(c, NULL, &big), PTC_C_LIMIT, "argv entries");
    char longarg[200];
    memset(longarg, 'x', sizeof longarg - 1);
    longarg[sizeof longarg - 1] = 0;
    struct ptc_str la[] = {ptc_str_c("/bin/echo"), ptc_str_c(longarg)};
    struct ptc_request lr = {.op = PTC_OP_OPEN, .argv = la, .argc = 2, .has = PTC_HAS_ARGV};
    cr_assert_eq(call_code(c, NULL, &lr), PTC_C_LIMIT, "argv entry size");
    struct ptc_request cw = {.op = PTC_OP_OPEN, .cwd = ptc_str_c(longarg), .has = PTC_HAS_CWD};
    cr_assert_eq(call_code(c, NULL, &cw), PTC_C_LIMIT, "cwd size");
    struct ptc_str ek[] = {ptc_str_c("A"), ptc_str_c("B")}, ev[] = {ptc_str_c("1"), ptc_str_c("2")};
    struct ptc_request er = {.op = PTC_OP_OPEN, .env_keys = ek, .env_vals = ev, .envc = 2,
                             .has = PTC_HAS_ENV};
    cr_assert_eq(call_code(c, NULL, &er), PTC_C_LIMIT, "env entries");
    cr_assert(h_relay_log_wait("limit: request arguments reached", h_timeout_ms()));
    /* the connection is still usable */
    cr_assert_eq(op_code(c, NULL, PTC_OP_LIST), -1);
    h_close(c);
    /* attachments per connection: one attachment, a second session cannot be attached */
    c = h_connect();
    cr_assert_eq(call_code(c, &s1, &at), -1);
    cr_assert_eq(op_code(c, &s1, PTC_OP_DETACH), -1);
    cr_assert_eq(call_code(c, &s1, &at), -1);
    h_close(c);
    h_relay_stop_checked();
}

Test(security, attach_limit_per_connection)
{
    h_relay_start("--max-attach", "1");
    struct ptc_client_conn *c = h_connect();
    h_open_argv(c, CAT, PTC_MODE_INTERACTIVE, NULL);
    struct ptc_str av[] = {ptc_str_c("/bin/cat")};
    struct ptc_request rq = {.op = PTC_OP_OPEN, .argv = av, .argc = 1,
                             .has = PTC_HAS_ARGV | PTC_HAS_ATTACH, .attach = PTC_MODE_VIEW};
    cr_assert_eq(call_code(c, NULL, &rq), PTC_C_LIMIT);
    ptc_uuid s2 = h_open_argv(c, CAT, 0, NULL);
    struct ptc_request at = {.op = PTC_OP_ATTACH};
    cr_assert_eq(call_code(c, &s2, &at), PTC_C_LIMIT);
    cr_assert(h_relay_log_wait("limit: attachments per connection reached", h_timeout_ms()));
    h_close(c);
    h_relay_stop_checked();
}

/* ---- open ------------------------------------------------------------------------------------ */

/* open with argv/cwd/env; returns the error code (-1 when ok) and the message in msg. */
static int open_with(struct ptc_client_conn *c, const char *const *argv, const char *cwd,
                     const char *const *env, char *msg, size_t cap, ptc_uuid *sid)
{
    struct ptc_str av[8], ek[8], ev[8];
    struct ptc_request rq = {.op = PTC_OP_OPEN};
    uint32_t n = 0;
    for (; argv && argv[n]; n++)
        av[n] = ptc_str_c(argv[n]);
    if (n) {
        rq.argv = av;
        rq.argc = n;
        rq.has |= PTC_HAS_ARGV;
    }
    if (cwd) {
        rq.cwd = ptc_str_c(cwd);
        rq.has |= PTC_HAS_CWD;
    }
    uint32_t k = 0;
    for (; env && env[2 * k]; k++) {
        ek[k] = ptc_str_c(env[2 * k]);
        ev[k] = ptc_str_c(env[2 * k + 1]);
    }
    if (k) {
        rq.env_keys = ek;
        rq.env_vals = ev;
        rq.envc = k;
        rq.has |= PTC_HAS_ENV;
    }
    if (sid) {
        rq.has |= PTC_HAS_ATTACH;
        rq.attach = PTC_MODE_VIEW;
    }
    struct ptc_client_reply rep;
    cr_assert_eq(h_call(c, NULL, &rq, &rep), 0);
    int code = rep.r.ok ? -1 : rep.r.error;
    snprintf(msg, cap, "%.*s", (int)rep.r.message.n, rep.r.message.p ? rep.r.message.p : "");
    if (sid && rep.r.ok)
        *sid = rep.r.session;
    ptc_client_reply_free(&rep);
    return code;
}

/* Collects a session's output until it ends; returns it (malloc'ed). */
static char *output_until_end(struct ptc_client_conn *c, const ptc_uuid *sid)
{
    struct h_out o;
    h_out_init(&o);
    h_out_until_end(c, sid, &o);
    return o.data ? (char *)o.data : calloc(1, 1);
}

Test(security, open_checks_program_cwd_and_env)
{
    h_relay_start("--allow-env", "LD_BIND_NOW");
    struct ptc_client_conn *c = h_connect();
    char msg[256];
    cr_assert_eq(open_with(c, (const char *[]){"/no/such/program", NULL}, NULL, NULL, msg,
                           sizeof msg, NULL),
                 PTC_C_BAD_REQUEST);
    cr_assert(strstr(msg, "/no/such/program") != NULL, "%s", msg);
    cr_assert_eq(open_with(c, (const char *[]){"no-such-program-anywhere", NULL}, NULL, NULL, msg,
                           sizeof msg, NULL),
                 PTC_C_BAD_REQUEST, "%s", msg);
    cr_assert_eq(open_with(c, (const char *[]){"/etc/passwd", NULL}, NULL, NULL, msg, sizeof msg,
                           NULL),
                 PTC_C_BAD_REQUEST, "a file that is not executable: %s", msg);
    cr_assert_eq(open_with(c, NULL, "/no/such/dir", NULL, msg, sizeof msg, NULL),
                 PTC_C_BAD_REQUEST);
    cr_assert_eq(open_with(c, NULL, "/etc/passwd", NULL, msg, sizeof msg, NULL),
                 PTC_C_BAD_REQUEST, "cwd that is a file: %s", msg);
    const char *loaders[] = {"LD_PRELOAD", "LD_LIBRARY_PATH", "LD_AUDIT", "GLIBC_TUNABLES",
                             "GCONV_PATH", "LOCPATH", "HOSTALIASES", "NLSPATH", "RES_OPTIONS"};
    for (size_t i = 0; i < sizeof loaders / sizeof *loaders; i++) {
        const char *env[] = {loaders[i], "/tmp/x.so", NULL};
        cr_assert_eq(open_with(c, (const char *[]){"/bin/true", NULL}, NULL, env, msg, sizeof msg,
                               NULL),
                     PTC_C_FORBIDDEN, "%s was accepted", loaders[i]);
        cr_assert(strstr(msg, loaders[i]) != NULL, "the message names %s: %s", loaders[i], msg);
    }
    const char *bad[] = {"1ABC", "", NULL};
    cr_assert_eq(open_with(c, (const char *[]){"/bin/true", NULL}, NULL, bad, msg, sizeof msg, NULL),
                 PTC_C_BAD_REQUEST);
    /* Allowed: ordinary variables, TMPDIR and TZDIR, and a loader variable the operator listed. */
    ptc_uuid sid;
    const char *okenv[] = {"TMPDIR", "/tmp", "TZDIR", "/usr/share/zoneinfo", "LD_BIND_NOW", "1",
                           "GREETING", "$(id)", NULL};
    cr_assert_eq(open_with(c,
                           (const char *[]){"/usr/bin/env", NULL}, "/", okenv, msg, sizeof msg,
                           &sid),
                 -1, "%s", msg);
    char *out = output_until_end(c, &sid);
    cr_assert(strstr(out, "LD_BIND_NOW=1") && strstr(out, "GREETING=$(id)") &&
                  strstr(out, "TMPDIR=/tmp"),
              "%s", out);
    free(out);
    /* argv is passed as it is, never through a shell */
    cr_assert_eq(open_with(c, (const char *[]){"/bin/echo", "$(id)", "`id`", ";id", NULL}, NULL,
                           NULL, msg, sizeof msg, &sid),
                 -1, "%s", msg);
    out = output_until_end(c, &sid);
    cr_assert(strstr(out, "$(id) `id` ;id") != NULL && !strstr(out, "uid="), "%s", out);
    free(out);
    cr_assert(h_relay_log_contains("loader variable"));
    h_close(c);
    h_relay_stop_checked();
}

/* ---- compression, root -------------------------------------------------------------------- */

Test(security, permessage_deflate_off_unless_compress)
{
    const char *ext = "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n";
    h_relay_start();
    char resp[4096];
    cr_assert_eq(upgrade(own_host(), NULL, ext, resp, sizeof resp), 101, "%s", resp);
    cr_assert(strcasestr(resp, "permessage-deflate") == NULL, "negotiated by default: %s", resp);
    cr_assert(h_relay_log_contains("permessage-deflate off"));
    h_relay_stop();
    h_relay_start("--compress");
    cr_assert_eq(upgrade(own_host(), NULL, ext, resp, sizeof resp), 101, "%s", resp);
    cr_assert(strcasestr(resp, "permessage-deflate") != NULL, "not negotiated with --compress: %s",
              resp);
    h_relay_stop_checked();
}

Test(security, root_warning_is_one_clear_line)
{
    h_relay_start();
    bool said = h_relay_log_contains("running as root: every session will be a root shell");
    if (geteuid() == 0)
        cr_assert(said, "no root warning as root");
    else
        cr_assert(!said, "a root warning without root");
    h_relay_stop_checked();
}
