/*
 * harness.c: the integration tests' relay process and client helpers (see harness.h).
 *
 * It owns the one relay child of a test process: its data dir, the pipe that carries the child's
 * stdout and stderr, the drain thread that copies that pipe into the log buffer, and a pidfd to
 * wait for the child's exit with a timeout. It also owns the process' ptclient context. An atexit
 * handler frees the context, stops the relay and removes the data dir, so a test that fails half
 * way leaves nothing behind; PR_SET_PDEATHSIG covers a test worker that is killed.
 */
#include "harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#ifndef PTYRELAY_BIN
#error "PTYRELAY_BIN must be defined by the build"
#endif

struct relay {
    pid_t pid;
    int pidfd;
    int port;
    char dir[64];
    bool keep_dir; /* dir of a stopped relay, kept for a restart */
    char url[96];
    char token[512];
    char error[4096];
    /* the log */
    int out_fd, stop_fd;
    pthread_t drain;
    bool drain_running;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    char *log;
    size_t log_len, log_cap;
    bool eof;
};

static struct relay R = {.pidfd = -1, .out_fd = -1, .stop_fd = -1,
                         .mu = PTHREAD_MUTEX_INITIALIZER};
static bool cv_ready;
static bool atexit_done;
static struct ptc_client_ctx *CTX;

/* The timeout in effect. */
int h_timeout_ms(void)
{
    const char *e = getenv("H_TIMEOUT_MS");
    int v = e ? atoi(e) : 0;
    return v > 0 ? v : H_TIMEOUT_MS;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void set_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void set_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(R.error, sizeof(R.error), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(R.error) - 16)
        return;
    pthread_mutex_lock(&R.mu);
    size_t tail = R.log_len > 3000 ? R.log_len - 3000 : 0;
    snprintf(R.error + n, sizeof(R.error) - (size_t)n, "; relay log%s:\n%.*s",
             tail ? " (tail)" : "", (int)(R.log_len - tail), R.log ? R.log + tail : "");
    pthread_mutex_unlock(&R.mu);
}

/* ---- the log ------------------------------------------------------------------------------- */

static void log_append(const char *p, size_t n)
{
    pthread_mutex_lock(&R.mu);
    if (R.log_len + n + 1 > R.log_cap) {
        size_t cap = R.log_cap ? R.log_cap : 4096;
        while (cap < R.log_len + n + 1)
            cap *= 2;
        char *m = realloc(R.log, cap);
        if (!m)
            abort();
        R.log = m;
        R.log_cap = cap;
    }
    memcpy(R.log + R.log_len, p, n);
    R.log_len += n;
    R.log[R.log_len] = '\0';
    pthread_cond_broadcast(&R.cv);
    pthread_mutex_unlock(&R.mu);
    if (getenv("H_RELAY_ECHO")) /* for debugging a test by hand */
        fwrite(p, 1, n, stderr);
}

static void *drain_main(void *arg)
{
    char buf[4096];
    struct pollfd pfd[2] = {{.fd = R.out_fd, .events = POLLIN}, {.fd = R.stop_fd, .events = POLLIN}};
    bool stopping = false;
    for (;;) {
        if (!stopping && poll(pfd, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (pfd[1].revents & POLLIN)
            stopping = true; /* read what is left without blocking, then end */
        ssize_t n = read(R.out_fd, buf, sizeof(buf));
        if (n > 0) {
            log_append(buf, (size_t)n);
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN && !stopping)
            continue;
        break; /* EOF, or nothing left when stopping */
    }
    pthread_mutex_lock(&R.mu);
    R.eof = true;
    pthread_cond_broadcast(&R.cv);
    pthread_mutex_unlock(&R.mu);
    return arg;
}

/* True if the relay's output so far contains s. */
bool h_relay_log_contains(const char *s)
{
    pthread_mutex_lock(&R.mu);
    bool r = R.log && strstr(R.log, s);
    pthread_mutex_unlock(&R.mu);
    return r;
}

static void deadline_ts(struct timespec *ts, int timeout_ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += timeout_ms / 1000;
    ts->tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

/* Waits (on the log's condition variable) until s appears or the timeout passes. */
bool h_relay_log_wait(const char *s, int timeout_ms)
{
    struct timespec dl;
    deadline_ts(&dl, timeout_ms);
    pthread_mutex_lock(&R.mu);
    bool found;
    while (!(found = R.log && strstr(R.log, s)) && !R.eof && cv_ready)
        if (pthread_cond_timedwait(&R.cv, &R.mu, &dl) == ETIMEDOUT)
            break;
    if (!found)
        found = R.log && strstr(R.log, s);
    pthread_mutex_unlock(&R.mu);
    return found;
}

/* A copy of the relay's output so far. */
char *h_relay_log(void)
{
    pthread_mutex_lock(&R.mu);
    char *c = strdup(R.log ? R.log : "");
    pthread_mutex_unlock(&R.mu);
    return c;
}

/* ---- the process --------------------------------------------------------------------------- */

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

/* Removes dir and what is below it. */
void h_rmtree(const char *dir)
{
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void remove_dir(void)
{
    if (R.dir[0])
        h_rmtree(R.dir);
    R.dir[0] = '\0';
    R.keep_dir = false;
}

static char cert_dir[64];

static void at_exit(void)
{
    if (cert_dir[0]) {
        h_rmtree(cert_dir);
        cert_dir[0] = '\0';
    }
    if (CTX) {
        ptc_client_ctx_free(CTX);
        CTX = NULL;
    }
    if (R.pid > 0)
        h_relay_stop();
    else if (R.dir[0])
        remove_dir();
}

static void init_once(void)
{
    if (!cv_ready) {
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&R.cv, &ca);
        pthread_condattr_destroy(&ca);
        cv_ready = true;
    }
    if (!atexit_done) {
        /*
         * OpenSSL registers its own cleanup at exit when first initialised. Initialise it now,
         * so that handler is registered before ours and runs after it: the client context
         * (and its SSL_CTX) must be freed while OpenSSL still works.
         */
        OPENSSL_init_crypto(0, NULL);
        atexit(at_exit);
        atexit_done = true;
    }
}

static int read_token(void)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/admin.token", R.dir);
    FILE *f = fopen(path, "r");
    if (!f)
        return -errno;
    size_t n = fread(R.token, 1, sizeof(R.token) - 1, f);
    fclose(f);
    R.token[n] = '\0';
    while (n && (R.token[n - 1] == '\n' || R.token[n - 1] == '\r' || R.token[n - 1] == ' '))
        R.token[--n] = '\0';
    return n ? 0 : -ENODATA;
}

/* Finds "listening on ws[s]://HOST:PORT/" in the log; the port, 0 if not there yet. */
static int find_port(bool *tls)
{
    int port = 0;
    pthread_mutex_lock(&R.mu);
    const char *p = R.log ? strstr(R.log, "listening on ws://") : NULL;
    const char *ps = R.log ? strstr(R.log, "listening on wss://") : NULL;
    *tls = ps && (!p || ps < p);
    if (*tls)
        p = ps;
    if (p) {
        p += strlen(*tls ? "listening on wss://" : "listening on ws://");
        const char *end = p + strcspn(p, "/ \r\n");
        const char *colon = NULL;
        for (const char *q = p; q < end; q++)
            if (*q == ':')
                colon = q;
        if (colon && *end == '/')
            port = atoi(colon + 1);
    }
    pthread_mutex_unlock(&R.mu);
    return port;
}

static int reap(int timeout_ms)
{
    int st = -1;
    if (R.pid <= 0)
        return -1;
    if (R.pidfd >= 0) {
        struct pollfd pfd = {.fd = R.pidfd, .events = POLLIN};
        int r;
        do
            r = poll(&pfd, 1, timeout_ms);
        while (r < 0 && errno == EINTR);
        if (r <= 0)
            return -2; /* still running */
    }
    if (waitpid(R.pid, &st, 0) != R.pid)
        st = -1;
    return st;
}

static void end_process(void)
{
    if (R.pidfd >= 0)
        close(R.pidfd);
    R.pidfd = -1;
    R.pid = 0;
    if (R.drain_running) {
        uint64_t one = 1;
        /* the child is gone: let the drain thread read what is left and finish */
        if (write(R.stop_fd, &one, sizeof(one)) < 0)
            perror("harness: eventfd");
        pthread_join(R.drain, NULL);
        R.drain_running = false;
    }
    if (R.out_fd >= 0)
        close(R.out_fd);
    if (R.stop_fd >= 0)
        close(R.stop_fd);
    R.out_fd = R.stop_fd = -1;
    R.port = 0;
    R.url[0] = '\0';
}

static int spawn(const char *const *extra)
{
    const char *argv[64];
    int n = 0;
    argv[n++] = PTYRELAY_BIN;
    argv[n++] = "serve";
    argv[n++] = "--listen";
    argv[n++] = "127.0.0.1:0";
    argv[n++] = "--data";
    argv[n++] = R.dir;
    for (; extra && *extra && n < 63; extra++)
        argv[n++] = *extra;
    argv[n] = NULL;

    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) < 0)
        return -errno;
    R.stop_fd = eventfd(0, EFD_CLOEXEC);
    if (R.stop_fd < 0) {
        int e = -errno;
        close(pfd[0]);
        close(pfd[1]);
        return e;
    }
    pthread_mutex_lock(&R.mu);
    R.log_len = 0;
    if (R.log)
        R.log[0] = '\0';
    R.eof = false;
    pthread_mutex_unlock(&R.mu);

    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        int e = -errno;
        close(pfd[0]);
        close(pfd[1]);
        return e;
    }
    if (pid == 0) {
        /* the relay dies with the test worker, whatever happens to the worker */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent)
            _exit(126);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0)
            dup2(devnull, 0);
        dup2(pfd[1], 1);
        dup2(pfd[1], 2);
        execv(argv[0], (char *const *)argv);
        dprintf(2, "harness: cannot exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(pfd[1]);
    R.pid = pid;
    R.out_fd = pfd[0];
    fcntl(R.out_fd, F_SETFL, O_NONBLOCK);
    R.pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (pthread_create(&R.drain, NULL, drain_main, NULL) == 0)
        R.drain_running = true;
    return 0;
}

static int start_common(const char *const *extra)
{
    init_once();
    R.error[0] = '\0';
    if (R.pid > 0) {
        set_error("a relay is already running (pid %d)", (int)R.pid);
        return -EBUSY;
    }
    if (access(PTYRELAY_BIN, X_OK) != 0) {
        set_error("%s is not built (%s)", PTYRELAY_BIN, strerror(errno));
        return -ENOENT;
    }
    int r = spawn(extra);
    if (r) {
        set_error("cannot start %s: %s", PTYRELAY_BIN, strerror(-r));
        return r;
    }
    if (!R.drain_running) {
        set_error("cannot start the log drain thread");
        h_relay_stop_keep();
        return -EAGAIN;
    }
    /* wait for the listening line: the condition variable is signalled on every log append */
    int timeout = h_timeout_ms();
    uint64_t until = now_ms() + (uint64_t)timeout;
    struct timespec dl;
    deadline_ts(&dl, timeout);
    pthread_mutex_lock(&R.mu);
    while (!(R.log && strstr(R.log, "listening on ")) && !R.eof)
        if (pthread_cond_timedwait(&R.cv, &R.mu, &dl) == ETIMEDOUT)
            break;
    bool eof = R.eof;
    pthread_mutex_unlock(&R.mu);
    bool tls = false;
    R.port = find_port(&tls);
    if (!R.port) {
        /* the line may be split across reads: wait for its end */
        h_relay_log_wait("/ptc1", (int)(until > now_ms() ? until - now_ms() : 0));
        R.port = find_port(&tls);
    }
    if (!R.port) {
        set_error(eof ? "relay exited (or closed its output) before listening"
                      : "relay printed no 'listening on ws[s]://127.0.0.1:PORT/ptc1' line in %d ms",
                  timeout);
        h_relay_stop_keep();
        return -ETIMEDOUT;
    }
    snprintf(R.url, sizeof(R.url), "%s://127.0.0.1:%d/ptc1", tls ? "wss" : "ws", R.port);
    r = read_token();
    if (r) {
        set_error("cannot read %s/admin.token: %s", R.dir, strerror(-r));
        h_relay_stop_keep();
        return r;
    }
    return 0;
}

/* Starts the relay with a fresh data dir. */
int h_relay_try_startv(const char *const *extra)
{
    init_once();
    if (R.dir[0] && R.pid <= 0)
        remove_dir(); /* a dir kept for a restart that did not come */
    if (R.pid <= 0) {
        strcpy(R.dir, "/tmp/ptyrelay-test-XXXXXX");
        if (!mkdtemp(R.dir)) {
            int e = -errno;
            R.dir[0] = '\0';
            set_error("mkdtemp: %s", strerror(-e));
            return e;
        }
    }
    int r = start_common(extra);
    if (r && R.pid <= 0)
        remove_dir();
    return r;
}

/* Starts the relay again on the kept data dir. */
int h_relay_try_restartv(const char *const *extra)
{
    init_once();
    if (!R.dir[0] || !R.keep_dir) {
        set_error("no data dir kept for a restart (use h_relay_stop_keep)");
        return -ENOENT;
    }
    R.keep_dir = false;
    return start_common(extra);
}

/* Starts the relay or fails the test. */
void h_relay_startv(const char *const *extra)
{
    int r = h_relay_try_startv(extra);
    cr_assert_eq(r, 0, "h_relay_start: %s", R.error);
}

/* Restarts the relay or fails the test. */
void h_relay_restartv(const char *const *extra)
{
    int r = h_relay_try_restartv(extra);
    cr_assert_eq(r, 0, "h_relay_restart: %s", R.error);
}

static int stop(bool keep)
{
    int st = -1;
    if (R.pid > 0) {
        kill(R.pid, SIGTERM);
        st = reap(h_timeout_ms());
        if (st == -2) {
            fprintf(stderr, "harness: relay %d ignored SIGTERM for %d ms: SIGKILL\n", (int)R.pid,
                    h_timeout_ms());
            kill(R.pid, SIGKILL);
            waitpid(R.pid, NULL, 0);
            st = -1;
        }
        end_process();
    }
    if (keep)
        R.keep_dir = R.dir[0] != '\0';
    else
        remove_dir();
    return st;
}

/* Stops the relay and removes its data dir. */
int h_relay_stop(void) { return stop(false); }

/* Stops the relay and keeps its data dir. */
int h_relay_stop_keep(void) { return stop(true); }

/* Stops the relay and fails the test on a sanitizer report in its log. */
int h_relay_stop_checked(void)
{
    int st = h_relay_stop();
    char *log = h_relay_log();
    bool bad = log && (strstr(log, "Sanitizer") || strstr(log, "runtime error"));
    cr_assert(!bad, "the relay reported a sanitizer error:\n%s", log);
    free(log);
    return st;
}

/* As h_relay_stop_checked, and the relay must have exited 0. */
void h_relay_stop_clean(void)
{
    int st = h_relay_stop_checked();
    if (st < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        char *log = h_relay_log();
        cr_assert_fail("relay did not exit 0 after SIGTERM (status 0x%x)\n%s", st, log);
    }
}

/* Sends a signal to the relay. */
void h_relay_signal(int sig)
{
    if (R.pid > 0)
        kill(R.pid, sig);
}

/* Waits for the relay to exit by itself. */
int h_relay_wait_exit(int timeout_ms)
{
    int st = reap(timeout_ms);
    if (st == -2)
        return -1;
    end_process();
    R.keep_dir = R.dir[0] != '\0';
    return st;
}

/* Accessors. */
pid_t h_relay_pid(void) { return R.pid > 0 ? R.pid : 0; }
int h_relay_port(void) { return R.port; }
const char *h_relay_url(void) { return R.url; }
const char *h_relay_token(void) { return R.token; }
const char *h_relay_dir(void) { return R.dir; }
const char *h_relay_error(void) { return R.error; }

/* ---- clients ------------------------------------------------------------------------------- */

/* The process' client context. */
struct ptc_client_ctx *h_ctx(void)
{
    init_once();
    if (!CTX) {
        struct ptc_client_ctx_opts o = {.rx_buffer_size = 16384};
        if (cert_dir[0]) { /* trust the test certificate of h_tls_files */
            static char ca[96];
            snprintf(ca, sizeof(ca), "%s/cert.pem", cert_dir);
            o.ca_file = ca;
        }
        const char *lv = getenv("H_LWS_LOG");
        o.log_level = lv ? atoi(lv) : 0;
        CTX = ptc_client_ctx_new(&o);
        cr_assert_not_null(CTX, "cannot create the client context");
    }
    return CTX;
}

/* Connects and waits for ready or the end. */
int h_connect_try(const char *url, const char *token, const struct ptc_client_conn_opts *o,
                  struct ptc_client_conn **out)
{
    struct ptc_client_conn_opts def = {.client_name = "ptyrelay-tests"};
    if (!o)
        o = &def;
    struct ptc_client_conn_opts use = *o;
    if (!use.token)
        use.token = token ? token : R.token;
    int err = 0;
    *out = ptc_client_connect(h_ctx(), url ? url : R.url, &use, NULL, NULL, &err);
    if (!*out)
        return err;
    return ptc_client_wait_ready(*out, h_timeout_ms());
}

/* Connects with the admin token or fails the test. */
struct ptc_client_conn *h_connect(void) { return h_connect_token(NULL); }

/* Connects with a token or fails the test. */
struct ptc_client_conn *h_connect_token(const char *token)
{
    struct ptc_client_conn *c = NULL;
    int r = h_connect_try(NULL, token, NULL, &c);
    cr_assert_eq(r, 0, "connect to %s: %s (%s)", R.url, ptc_client_strerror(r),
                 c ? ptc_client_error_message(c) : "");
    return c;
}

/* Frees a connection. */
void h_close(struct ptc_client_conn *c) { ptc_client_conn_free(c); }

static bool flushed(void *arg)
{
    struct ptc_client_conn *c = arg;
    return ptc_client_queued(c) == 0 || ptc_client_is_closed(c);
}

/* Runs until everything queued is written. */
int h_flush(struct ptc_client_conn *c)
{
    if (!ptc_client_run_until(h_ctx(), flushed, c, h_timeout_ms()))
        return PTC_CLIENT_ETIMEOUT;
    return ptc_client_queued(c) == 0 ? 0 : PTC_CLIENT_ECLOSED;
}

/* Sends raw bytes as one message and flushes. */
int h_send_raw(struct ptc_client_conn *c, const void *data, size_t n)
{
    int r = ptc_client_send_raw(c, data, n, false);
    return r ? r : h_flush(c);
}

/* ptc_client_call with the harness timeout. */
int h_call(struct ptc_client_conn *c, const ptc_uuid *session, struct ptc_request *req,
           struct ptc_client_reply *rep)
{
    return ptc_client_call(c, session, req, rep, h_timeout_ms());
}

/* A request without arguments; fails the test without a REPLY. */
void h_request_op(struct ptc_client_conn *c, int op, const ptc_uuid *session,
                  struct ptc_client_reply *rep)
{
    struct ptc_request req;
    memset(&req, 0, sizeof(req));
    req.op = op;
    int r = h_call(c, session, &req, rep);
    cr_assert_eq(r, 0, "%s: no reply: %s (%s)", ptc_op_name(op), ptc_client_strerror(r),
                 ptc_client_error_message(c));
}

/* Waits for a matching frame. */
int h_wait_frame(struct ptc_client_conn *c, uint8_t type, const ptc_uuid *session,
                 struct ptc_client_frame *out, int timeout_ms)
{
    struct ptc_client_filter f = {.type = type, .session = session};
    return ptc_client_wait_frame(c, &f, out, timeout_ms);
}

/* Waits for the socket to close; the close code. */
int h_wait_close(struct ptc_client_conn *c, int timeout_ms)
{
    if (ptc_client_wait_gone(c, timeout_ms))
        return -1;
    int code = ptc_client_close_code(c);
    return code ? code : 1006;
}

/* ---- sessions and their output ------------------------------------------------------------ */

/* Fails the test with the relay's log attached. */
void h_fail_with_log(const char *what, int rc)
{
    char *log = h_relay_log();
    cr_assert_fail("%s: %s\n--- relay log ---\n%s", what, ptc_client_strerror(rc), log ? log : "");
    abort(); /* not reached: cr_assert_fail ends the test */
}

/* Opens a running session of argv. */
ptc_uuid h_open_argv(struct ptc_client_conn *c, const char *const *argv, int attach, pid_t *pid)
{
    struct ptc_str av[32];
    uint32_t n = 0;
    for (; argv[n]; n++) {
        cr_assert_lt(n, 31, "h_open_argv: too many words");
        av[n] = ptc_str_c(argv[n]);
    }
    struct ptc_request rq = {.op = PTC_OP_OPEN, .has = PTC_HAS_ARGV, .argv = av, .argc = n};
    if (attach) {
        rq.has |= PTC_HAS_ATTACH;
        rq.attach = attach;
    }
    struct ptc_client_reply rep;
    int rc = h_call(c, NULL, &rq, &rep);
    if (rc)
        h_fail_with_log("open", rc);
    cr_assert(rep.r.ok, "open failed: %s: %.*s", ptc_code_name(rep.r.error), (int)rep.r.message.n,
              rep.r.message.p);
    ptc_uuid id = rep.r.session;
    cr_assert_eq(rep.r.state, PTC_ST_RUNNING);
    cr_assert_gt(rep.r.pid, 0);
    if (pid)
        *pid = (pid_t)rep.r.pid;
    ptc_client_reply_free(&rep);
    return id;
}

void h_out_init(struct h_out *o)
{
    memset(o, 0, sizeof *o);
    o->state = -1;
    o->attention = -1;
}

static void out_append(struct h_out *o, const uint8_t *d, size_t n)
{
    if (!o->data || o->len + n + 1 > o->cap) {
        size_t cap = o->cap ? o->cap : 4096;
        while (cap < o->len + n + 1)
            cap *= 2;
        o->data = realloc(o->data, cap);
        cr_assert_not_null(o->data);
        o->cap = cap;
    }
    memcpy(o->data + o->len, d, n);
    o->len += n;
    o->data[o->len] = 0;
}

/* Feeds one frame. */
void h_out_feed(struct h_out *o, const struct ptc_frame *f)
{
    if (f->type == PTC_OUTPUT) {
        uint64_t off;
        const uint8_t *d;
        size_t n;
        cr_assert_eq(ptc_output_parse(f, &off, &d, &n), 0);
        if (!o->any) {
            o->first = off;
            o->next = off;
            o->any = true;
        }
        if (o->allow_gap)
            cr_assert_geq(off, o->next, "OUTPUT offset %llu went back (expected >= %llu)",
                          (unsigned long long)off, (unsigned long long)o->next);
        else
            cr_assert_eq(off, o->next, "OUTPUT offset %llu, expected %llu (gap or repeat)",
                         (unsigned long long)off, (unsigned long long)o->next);
        if (o->pat) {
            size_t i = 0;
            while (i < n && d[i] == o->pat(off + i))
                i++;
            cr_assert_eq(i, n, "wrong byte at offset %llu", (unsigned long long)(off + i));
        }
        o->gaps += off - o->next;
        out_append(o, d, n);
        o->next = off + n;
        o->bytes += n;
    } else if (f->type == PTC_ACK) {
        cr_assert_eq(ptc_ack_parse(f, &o->acked), 0);
    } else if (f->type == PTC_RESIZE) {
        cr_assert_eq(ptc_resize_parse(f, &o->cols, &o->rows), 0);
        o->nresize++;
    } else if (f->type == PTC_STATE) {
        struct ptc_statemsg m;
        struct ptc_perr e;
        cr_assert_eq(ptc_state_parse(f->payload, f->len, &m, &e), 0, "STATE: %s", e.message);
        o->state = m.state;
        o->attention = m.attention;
        o->exit_code = m.has & PTC_HAS_EXIT_CODE ? m.exit_code : -1;
        o->signo = m.has & PTC_HAS_SIGNO ? m.signo : 0;
        o->state_end = m.end;
        o->nstate++;
    }
}

/* One frame into o, failing (with what, and the relay's log) after the timeout. */
static void out_step(struct ptc_client_conn *c, const ptc_uuid *sid, struct h_out *o, uint8_t type,
                     const char *what)
{
    struct ptc_client_frame fr;
    int rc = h_wait_frame(c, type, sid, &fr, h_timeout_ms());
    if (rc)
        h_fail_with_log(what, rc);
    h_out_feed(o, &fr.f);
    ptc_client_frame_free(&fr);
}

/* Takes one frame of session sid into o. */
void h_out_step(struct ptc_client_conn *c, const ptc_uuid *sid, struct h_out *o, uint8_t type)
{
    out_step(c, sid, o, type, "waiting for a frame");
}

/* Bounds the loops below; each wait is bounded by the timeout as well. */
#define OUT_MAX_FRAMES 200000

/* Feeds frames until the session ended. */
void h_out_until_end(struct ptc_client_conn *c, const ptc_uuid *sid, struct h_out *o)
{
    for (int i = 0; i < OUT_MAX_FRAMES && !ptc_state_is_ended(o->state); i++)
        out_step(c, sid, o, 0, "waiting for output/STATE");
    cr_assert(ptc_state_is_ended(o->state));
}

/* Feeds frames until the output contains needle. */
void h_out_until_text(struct ptc_client_conn *c, const ptc_uuid *sid, struct h_out *o,
                      const char *needle)
{
    for (int i = 0; i < OUT_MAX_FRAMES && !(o->data && strstr((char *)o->data, needle)); i++) {
        char what[1200];
        size_t tail = o->len > 1000 ? o->len - 1000 : 0;
        snprintf(what, sizeof what, "waiting for '%.100s' (have%s '%s')", needle,
                 tail ? " ..." : "", o->data ? (char *)o->data + tail : "");
        out_step(c, sid, o, 0, what);
    }
    cr_assert(o->data && strstr((char *)o->data, needle), "no '%s' in the output", needle);
}

/* Feeds frames until the next offset reaches end. */
void h_out_until_offset(struct ptc_client_conn *c, const ptc_uuid *sid, struct h_out *o,
                        uint64_t end)
{
    for (int i = 0; i < OUT_MAX_FRAMES && o->next < end; i++)
        out_step(c, sid, o, 0, "waiting for output/STATE");
    cr_assert_geq(o->next, end);
}

/* Waits for a RESIZE of sid and checks its size. */
void h_expect_resize(struct ptc_client_conn *c, const ptc_uuid *sid, uint16_t cols, uint16_t rows)
{
    struct ptc_client_frame fr;
    int rc = h_wait_frame(c, PTC_RESIZE, sid, &fr, h_timeout_ms());
    if (rc)
        h_fail_with_log("waiting for RESIZE", rc);
    uint16_t cc, rr;
    cr_assert_eq(ptc_resize_parse(&fr.f, &cc, &rr), 0);
    cr_assert_eq(cc, cols, "RESIZE cols %u, expected %u", cc, cols);
    cr_assert_eq(rr, rows, "RESIZE rows %u, expected %u", rr, rows);
    ptc_client_frame_free(&fr);
}

/* ---- plain HTTP ---------------------------------------------------------------------------- */

static int wait_fd(int fd, short ev, uint64_t until)
{
    for (;;) {
        uint64_t now = now_ms();
        if (now >= until)
            return -ETIMEDOUT;
        struct pollfd p = {.fd = fd, .events = ev};
        int r = poll(&p, 1, (int)(until - now));
        if (r > 0)
            return 0;
        if (r == 0)
            return -ETIMEDOUT;
        if (errno != EINTR)
            return -errno;
    }
}

/* Whether resp[0..n) holds a whole response (header, and Content-Length bytes of body). */
static bool response_complete(const char *resp, size_t n)
{
    const char *hend = memmem(resp, n, "\r\n\r\n", 4);
    if (!hend)
        return false;
    size_t hlen = (size_t)(hend - resp) + 4;
    const char *cl = NULL;
    for (const char *p = resp; p < hend; p++)
        if (!strncasecmp(p, "\r\ncontent-length:", 17)) {
            cl = p + 17;
            break;
        }
    if (!cl)
        return false; /* read until the peer closes */
    return n >= hlen + strtoul(cl, NULL, 10);
}

/* Sends a raw HTTP request to the relay and returns the status. */
int h_http_raw(const char *request, char *resp, size_t cap)
{
    char local[8192];
    if (!resp || cap < 64) {
        resp = local;
        cap = sizeof(local);
    }
    resp[0] = '\0';
    uint64_t until = now_ms() + (uint64_t)h_timeout_ms();
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)R.port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int r = 0;
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        if (errno != EINPROGRESS) {
            r = -errno;
            goto out;
        }
        if ((r = wait_fd(fd, POLLOUT, until)))
            goto out;
        int soerr = 0;
        socklen_t sl = sizeof(soerr);
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
        if (soerr) {
            r = -soerr;
            goto out;
        }
    }
    size_t len = strlen(request), off = 0;
    while (off < len) {
        ssize_t w = send(fd, request + off, len - off, MSG_NOSIGNAL);
        if (w > 0) {
            off += (size_t)w;
        } else if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
            if ((r = wait_fd(fd, POLLOUT, until)))
                goto out;
        } else {
            r = w < 0 ? -errno : -EPIPE;
            goto out;
        }
    }
    size_t n = 0;
    while (n < cap - 1 && !response_complete(resp, n)) {
        ssize_t got = recv(fd, resp + n, cap - 1 - n, 0);
        if (got > 0) {
            n += (size_t)got;
            resp[n] = '\0';
        } else if (got == 0) {
            break;
        } else if (errno == EAGAIN || errno == EINTR) {
            if ((r = wait_fd(fd, POLLIN, until)))
                break;
        } else {
            r = -errno;
            break;
        }
    }
    resp[n] = '\0';
    int major, minor, status;
    if (sscanf(resp, "HTTP/%d.%d %d", &major, &minor, &status) == 3)
        r = status;
    else if (r == 0)
        r = -EPROTO;
out:
    close(fd);
    return r;
}

/* GET path; the status code, and the body in body. */
int h_http_get(const char *path, char *body, size_t cap)
{
    char req[1024], resp[16384];
    snprintf(req, sizeof(req),
             "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n\r\n", path, R.port);
    int st = h_http_raw(req, resp, sizeof(resp));
    if (body && cap) {
        const char *b = strstr(resp, "\r\n\r\n");
        snprintf(body, cap, "%s", b ? b + 4 : "");
    }
    return st;
}

/* ---- misc ---------------------------------------------------------------------------------- */

/* Writes a self-signed P-256 certificate for 127.0.0.1 and localhost, and its key, as PEM files. */
static int write_cert(const char *cert_path, const char *key_path)
{
    int r = -1;
    EVP_PKEY *pk = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    FILE *cf = NULL, *kf = NULL;
    if (!pk || !x)
        goto out;
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), (long)getpid());
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 7 * 86400);
    X509_set_pubkey(x, pk);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"127.0.0.1", -1, -1,
                               0);
    X509_set_issuer_name(x, name);
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
    static const struct {
        int nid;
        const char *value;
    } exts[] = {{NID_subject_alt_name, "IP:127.0.0.1,DNS:localhost"},
                {NID_basic_constraints, "critical,CA:TRUE"}};
    for (size_t i = 0; i < sizeof(exts) / sizeof(exts[0]); i++) {
        X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &v3, exts[i].nid, exts[i].value);
        if (!e)
            goto out;
        X509_add_ext(x, e, -1);
        X509_EXTENSION_free(e);
    }
    if (!X509_sign(x, pk, EVP_sha256()))
        goto out;
    int kfd = open(key_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (kfd < 0 || !(kf = fdopen(kfd, "w")))
        goto out;
    cf = fopen(cert_path, "w");
    if (!cf || !PEM_write_PrivateKey(kf, pk, NULL, NULL, 0, NULL, NULL) || !PEM_write_X509(cf, x))
        goto out;
    r = 0;
out:
    if (kf && fclose(kf))
        r = -1;
    if (cf && fclose(cf))
        r = -1;
    X509_free(x);
    EVP_PKEY_free(pk);
    return r;
}

/* A self-signed test certificate and key (created once per process, removed at exit). */
void h_tls_files(const char **cert, const char **key)
{
    static char cert_path[96], key_path[96];
    init_once();
    if (!cert_dir[0]) {
        strcpy(cert_dir, "/tmp/ptyrelay-cert-XXXXXX");
        cr_assert_not_null(mkdtemp(cert_dir), "mkdtemp: %s", strerror(errno));
        snprintf(cert_path, sizeof(cert_path), "%s/cert.pem", cert_dir);
        snprintf(key_path, sizeof(key_path), "%s/key.pem", cert_dir);
        cr_assert_eq(write_cert(cert_path, key_path), 0, "cannot create a test certificate");
    }
    *cert = cert_path;
    *key = key_path;
}

/* A loopback TCP port nothing listens on. */
int h_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert_geq(fd, 0, "socket: %s", strerror(errno));
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof(sa);
    cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0, "bind: %s", strerror(errno));
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&sa, &sl), 0, "getsockname");
    close(fd);
    return ntohs(sa.sin_port);
}
