/*
 * load: one ptload run. It owns the ptclient context, the loop with its deadline and progress
 * line, the error list that ends up in the JSON, the connections (struct lconn) and the requests
 * ptload sends (open, attach, input, kill), and the cleanup that ends and removes every session a
 * scenario opened. Frames are routed here from a connection to the tracker of their session
 * (track.c counts them). Every wait is bounded: load_run takes a timeout, and so does cleanup.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ptload.h"

#define ERRORS_KEPT 20
#define PROGRESS_TTY_US 250000
#define PROGRESS_LOG_US 2000000

static void *xcalloc(size_t n, size_t sz)
{
    void *p = calloc(n, sz);
    if (!p) {
        fprintf(stderr, "ptload: out of memory\n");
        abort();
    }
    return p;
}

/* Sets up the run. */
int load_init(struct load *L, const struct load_opts *o, const char *scenario)
{
    memset(L, 0, sizeof *L);
    L->o = *o;
    L->scenario = scenario;
    L->error_list = json_array();
    if (o->file) {
        int fd = open(o->file, O_RDONLY | O_CLOEXEC);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) < 0) {
            fprintf(stderr, "ptload: %s: %s\n", o->file, strerror(errno));
            if (fd >= 0)
                close(fd);
            return -1;
        }
        L->file_len = (size_t)st.st_size;
        if (L->file_len) {
            void *p = mmap(NULL, L->file_len, PROT_READ, MAP_PRIVATE, fd, 0);
            if (p == MAP_FAILED) {
                fprintf(stderr, "ptload: mmap %s: %s\n", o->file, strerror(errno));
                close(fd);
                return -1;
            }
            L->file_data = p;
        }
        close(fd);
    }
    struct ptc_client_ctx_opts co = {.raise_nofile = true, .rx_buffer_size = 64 * 1024};
    L->ctx = ptc_client_ctx_new(&co);
    if (!L->ctx) {
        fprintf(stderr, "ptload: could not create the client context\n");
        return -1;
    }
    L->t0_us = ptc_client_now_us();
    return 0;
}

/* Frees the context (closing every connection still open) and the file mapping. */
void load_free(struct load *L)
{
    if (L->ctx)
        ptc_client_ctx_free(L->ctx);
    L->ctx = NULL;
    if (L->file_data)
        munmap((void *)L->file_data, L->file_len);
    L->file_data = NULL;
    json_decref(L->error_list);
    L->error_list = NULL;
}

/* Counts an error and keeps its message. */
void load_error(struct load *L, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    L->errors++;
    if (json_array_size(L->error_list) < ERRORS_KEPT)
        json_array_append_new(L->error_list, json_string(msg));
}

/* Microseconds since load_init. */
uint64_t load_elapsed_us(const struct load *L) { return ptc_client_now_us() - L->t0_us; }

/* Makes the running load_run look at its condition again. */
void load_poke(struct load *L) { ptc_client_stop(L->ctx); }

static void progress_show(struct load *L, void (*progress)(void *, char *, size_t), void *arg)
{
    if (L->o.quiet || !progress)
        return;
    bool tty = isatty(2);
    uint64_t now = ptc_client_now_us();
    if (L->progress_at_us && now - L->progress_at_us < (tty ? PROGRESS_TTY_US : PROGRESS_LOG_US))
        return;
    L->progress_at_us = now;
    char buf[200];
    buf[0] = '\0';
    progress(arg, buf, sizeof buf);
    fprintf(stderr, tty ? "\r\033[Kptload %s %.1fs: %s" : "ptload %s %.1fs: %s\n", L->scenario,
            (double)load_elapsed_us(L) / 1e6, buf);
    L->progress_shown = tty;
}

/* Clears the progress line on a terminal. */
void load_progress_end(struct load *L)
{
    if (L->progress_shown)
        fprintf(stderr, "\r\033[K");
    L->progress_shown = false;
}

/* Services the loop until done or the timeout. */
bool load_run(struct load *L, bool (*done)(void *arg), void *arg, uint64_t timeout_ms,
              void (*progress)(void *arg, char *buf, size_t cap))
{
    uint64_t end = ptc_client_now_us() + timeout_ms * 1000;
    for (;;) {
        if (done && done(arg))
            return true;
        uint64_t now = ptc_client_now_us();
        if (now >= end)
            return false;
        progress_show(L, progress, arg);
        uint64_t slice = (end - now) / 1000 + 1;
        if (slice > 250)
            slice = 250;
        ptc_client_run(L->ctx, (int)slice);
    }
}

/* ---- connections ------------------------------------------------------------------------------ */

static struct lsess *lconn_find(struct lconn *lc, const ptc_uuid *id)
{
    /* Most recent first: scenarios talk most to the sessions they opened last. */
    for (uint32_t i = lc->nsess; i-- > 0;)
        if (ptc_uuid_eq(&lc->sess[i]->id, id))
            return lc->sess[i];
    return NULL;
}

static void on_ready(struct ptc_client_conn *c, int scope, uint32_t max_frame, void *arg)
{
    struct lconn *lc = arg;
    lc->ready = true;
    lc->t_ready_us = ptc_client_now_us();
    if (scope != PTC_MODE_INTERACTIVE)
        load_error(lc->L, "conn %u: the token's scope is view; ptload needs a control token",
                   lc->index);
    if (lc->on_ready)
        lc->on_ready(lc);
    load_poke(lc->L);
}

static void on_frame(struct ptc_client_conn *c, const struct ptc_frame *f, void *arg)
{
    struct lconn *lc = arg;
    if (f->type == PTC_EVENT) {
        struct ptc_event e;
        struct ptc_perr pe;
        memset(&e, 0, sizeof e);
        if (ptc_event_parse(f->payload, f->len, &ptc_limits_default, &e, &pe) == 0 &&
            e.kind == PTC_EV_ERROR)
            load_error(lc->L, "conn %u: EVENT error %s: %.*s", lc->index, ptc_code_name(e.error),
                       (int)e.message.n, e.message.p ? e.message.p : "");
        ptc_event_free(&e);
        return;
    }
    if (f->type != PTC_OUTPUT && f->type != PTC_STATE)
        return; /* RESIZE, input ACKs, extensions: nothing to count */
    struct lsess *s = lconn_find(lc, &f->session);
    if (s)
        track_frame(s, f);
}

static void conn_ended(struct lconn *lc)
{
    struct load *L = lc->L;
    lc->ended = true;
    lc->ready = false;
    lc->t_end_us = ptc_client_now_us();
    load_poke(L);
    if (lc->on_end)
        lc->on_end(lc, lc->user); /* may free lc: nothing after this */
}

static void on_error(struct ptc_client_conn *c, int err, const char *message, void *arg)
{
    struct lconn *lc = arg;
    lc->err = err;
    lc->close_code = ptc_client_close_code(c);
    snprintf(lc->reason, sizeof lc->reason, "%s", message);
    load_error(lc->L, "conn %u: %s", lc->index, message);
    conn_ended(lc);
}

static void on_close(struct ptc_client_conn *c, int code, const char *reason, void *arg)
{
    struct lconn *lc = arg;
    lc->close_code = code;
    snprintf(lc->reason, sizeof lc->reason, "%s", reason);
    conn_ended(lc);
}

/* Starts one connection. */
struct lconn *lconn_new(struct load *L, uint32_t index)
{
    static const struct ptc_client_cbs cbs = {on_ready, on_frame, on_error, on_close};
    struct lconn *lc = xcalloc(1, sizeof *lc);
    lc->L = L;
    lc->index = index;
    lc->t_connect_us = ptc_client_now_us();
    struct ptc_client_conn_opts co = {.token = L->o.token, .client_name = "ptload/" PTYRELAY_VERSION};
    int err = 0;
    lc->c = ptc_client_connect(L->ctx, L->o.url, &co, &cbs, lc, &err);
    if (!lc->c) {
        load_error(L, "bad relay URL '%s'", L->o.url);
        free(lc);
        return NULL;
    }
    return lc;
}

struct many {
    struct lconn **v;
    uint32_t n;
};

static bool many_settled(void *arg)
{
    struct many *m = arg;
    for (uint32_t i = 0; i < m->n; i++)
        if (m->v[i] && !m->v[i]->ready && !m->v[i]->ended)
            return false;
    return true;
}

static void many_progress(void *arg, char *buf, size_t cap)
{
    struct many *m = arg;
    uint32_t r = 0;
    for (uint32_t i = 0; i < m->n; i++)
        r += m->v[i] && m->v[i]->ready;
    snprintf(buf, cap, "connecting: %u/%u ready", r, m->n);
}

/* Connects n connections and waits until each is ready or has failed. */
uint32_t lconn_open_many(struct load *L, struct lconn **out, uint32_t n, uint64_t timeout_ms)
{
    for (uint32_t i = 0; i < n; i++)
        out[i] = lconn_new(L, i);
    struct many m = {out, n};
    load_run(L, many_settled, &m, timeout_ms, many_progress);
    uint32_t ready = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (out[i] && out[i]->ready)
            ready++;
        else if (out[i] && !out[i]->ended)
            load_error(L, "conn %u: not ready within %" PRIu64 " ms", i, timeout_ms);
    }
    return ready;
}

/* Frees the connection; its trackers stay with the caller. */
void lconn_free(struct lconn *lc)
{
    if (!lc)
        return;
    for (uint32_t i = 0; i < lc->nsess; i++)
        lc->sess[i]->lc = NULL;
    ptc_client_conn_free(lc->c);
    free(lc->sess);
    free(lc);
}

/* Routes the session's frames on this connection to s. */
void lconn_track(struct lconn *lc, struct lsess *s)
{
    if (lc->nsess == lc->capsess) {
        lc->capsess = lc->capsess ? lc->capsess * 2 : 8;
        struct lsess **nv = realloc(lc->sess, lc->capsess * sizeof *nv);
        if (!nv) {
            fprintf(stderr, "ptload: out of memory\n");
            abort();
        }
        lc->sess = nv;
    }
    lc->sess[lc->nsess++] = s;
}

/* Stops routing frames to s. */
void lconn_untrack(struct lconn *lc, struct lsess *s)
{
    for (uint32_t i = 0; i < lc->nsess; i++)
        if (lc->sess[i] == s) {
            lc->sess[i] = lc->sess[--lc->nsess];
            return;
        }
}

/* ---- requests --------------------------------------------------------------------------------- */

/* Initialises a tracker on a connection. */
void lsess_init(struct lsess *s, struct lconn *lc, uint32_t index)
{
    memset(s, 0, sizeof *s);
    s->lc = lc;
    s->index = index;
    s->state = -1;
}

static void fail(struct lsess *s, const char *what, int status, const struct ptc_reply *rp)
{
    struct load *L = s->lc ? s->lc->L : NULL;
    s->failed = true;
    if (L)
        load_poke(L);
    if (L) {
        if (status < 0 || !rp)
            load_error(L, "session %u: %s: %s", s->index, what, ptc_client_strerror(status));
        else
            load_error(L, "session %u: %s: %s: %.*s", s->index, what, ptc_code_name(rp->error),
                       (int)rp->message.n, rp->message.p ? rp->message.p : "");
    }
    if (s->hooks.on_end)
        s->hooks.on_end(s);
}

static void open_reply(struct ptc_client_conn *c, int status, const struct ptc_reply *rp, void *arg)
{
    struct lsess *s = arg;
    if (status < 0 || !rp->ok) {
        fail(s, "open", status, rp);
        return;
    }
    s->id = rp->session;
    s->have_id = true;
    if (s->lc)
        lconn_track(s->lc, s);
    struct load *L = s->lc ? s->lc->L : NULL;
    if (L)
        load_poke(L);
    if (s->hooks.on_opened)
        s->hooks.on_opened(s);
    if (s->attached) { /* attach was asked with the open: output follows this reply */
        s->t_attached_us = ptc_client_now_us();
        if (s->hooks.on_attached)
            s->hooks.on_attached(s);
    }
}

/* Sends `open`. */
int lsess_open(struct lsess *s, const char *const *argv, int attach)
{
    struct ptc_request rq;
    struct ptc_str av[16];
    memset(&rq, 0, sizeof rq);
    rq.op = PTC_OP_OPEN;
    uint32_t n = 0;
    while (argv[n] && n < 16) {
        av[n] = ptc_str_c(argv[n]);
        n++;
    }
    rq.argv = av;
    rq.argc = n;
    rq.has = PTC_HAS_ARGV;
    if (attach != PTC_MODE_NONE) {
        rq.attach = attach;
        rq.has |= PTC_HAS_ATTACH;
        s->attached = true;
    }
    s->t_open_us = ptc_client_now_us();
    int r = ptc_client_request(s->lc->c, NULL, &rq, open_reply, s, NULL);
    if (r < 0)
        fail(s, "open", r, NULL);
    return r;
}

static void attach_reply(struct ptc_client_conn *c, int status, const struct ptc_reply *rp,
                         void *arg)
{
    struct lsess *s = arg;
    if (status < 0 || !rp->ok) {
        fail(s, "attach", status, rp);
        return;
    }
    s->attached = true;
    s->t_attached_us = ptc_client_now_us();
    s->next = rp->start;
    if (s->lc)
        load_poke(s->lc->L);
    if (s->hooks.on_attached)
        s->hooks.on_attached(s);
}

/* Sends `attach` from offset s->next; frames are routed to s from now on. */
int lsess_attach(struct lsess *s, int mode)
{
    struct ptc_request rq;
    memset(&rq, 0, sizeof rq);
    rq.op = PTC_OP_ATTACH;
    rq.offset = s->next;
    rq.mode = mode;
    rq.has = PTC_HAS_OFFSET | PTC_HAS_MODE;
    if (s->window) {
        rq.window = s->window;
        rq.has |= PTC_HAS_WINDOW;
    }
    lconn_track(s->lc, s);
    int r = ptc_client_request(s->lc->c, &s->id, &rq, attach_reply, s, NULL);
    if (r < 0)
        fail(s, "attach", r, NULL);
    return r;
}

/* Sends INPUT. */
int lsess_input(struct lsess *s, const void *p, size_t n)
{
    int r = ptc_client_send_input(s->lc->c, &s->id, p, n);
    if (r < 0)
        load_error(s->lc->L, "session %u: INPUT: %s", s->index, ptc_client_strerror(r));
    return r;
}

static void kill_reply(struct ptc_client_conn *c, int status, const struct ptc_reply *rp, void *arg)
{
    struct lsess *s = arg;
    if (status < 0 || (!rp->ok && rp->error != PTC_C_GONE))
        fail(s, "kill", status, rp);
}

/* Sends `kill` with grace 0. */
int lsess_kill(struct lsess *s)
{
    if (s->ended || !s->have_id)
        return 0;
    struct ptc_request rq;
    memset(&rq, 0, sizeof rq);
    rq.op = PTC_OP_KILL;
    rq.grace_ms = 0;
    rq.has = PTC_HAS_GRACE;
    return ptc_client_request(s->lc->c, &s->id, &rq, kill_reply, s, NULL);
}

/* ---- ending and removing sessions ---------------------------------------------------------- */

struct dispose {
    struct load *L;
    struct lsess *s;
    lsess_disposed_cb cb;
    void *arg;
};

static void dispose_done(struct dispose *d, bool ok, const char *what, int status,
                         const struct ptc_reply *rp)
{
    if (ok) {
        d->s->cleaned = true;
    } else if (!what) {
        /* already reported */
    } else if (status < 0 || !rp) {
        load_error(d->L, "removing session %u: %s: %s", d->s->index, what,
                   ptc_client_strerror(status));
    } else {
        load_error(d->L, "removing session %u: %s: %s: %.*s", d->s->index, what,
                   ptc_code_name(rp->error), (int)rp->message.n, rp->message.p ? rp->message.p : "");
    }
    if (d->cb)
        d->cb(d->s, ok, d->arg);
    free(d);
}

static void dispose_removed(struct ptc_client_conn *c, int status, const struct ptc_reply *rp,
                            void *arg)
{
    dispose_done(arg, status == 0 && rp->ok, "remove", status, rp);
}

static void dispose_waited(struct ptc_client_conn *c, int status, const struct ptc_reply *rp,
                           void *arg)
{
    struct dispose *d = arg;
    if (status == 0 && rp->ok && !rp->matched) {
        load_error(d->L, "removing session %u: still running 5 s after SIGKILL", d->s->index);
        dispose_done(d, false, NULL, 0, NULL);
        return;
    }
    if (status < 0 || !rp->ok) {
        dispose_done(d, false, "wait", status, rp);
        return;
    }
    struct ptc_request rq;
    memset(&rq, 0, sizeof rq);
    rq.op = PTC_OP_REMOVE;
    int r = ptc_client_request(c, &d->s->id, &rq, dispose_removed, d, NULL);
    if (r < 0)
        dispose_done(d, false, "remove", r, NULL);
}

static void dispose_killed(struct ptc_client_conn *c, int status, const struct ptc_reply *rp,
                           void *arg)
{
    struct dispose *d = arg;
    if (status < 0 || (!rp->ok && rp->error != PTC_C_GONE)) {
        dispose_done(d, false, "kill", status, rp);
        return;
    }
    struct ptc_request rq;
    memset(&rq, 0, sizeof rq);
    rq.op = PTC_OP_WAIT;
    rq.until = PTC_UNTIL_EXIT;
    rq.timeout_ms = 5000;
    rq.has = PTC_HAS_UNTIL | PTC_HAS_TIMEOUT;
    int r = ptc_client_request(c, &d->s->id, &rq, dispose_waited, d, NULL);
    if (r < 0)
        dispose_done(d, false, "wait", r, NULL);
}

/* Kill (grace 0), wait for the exit, remove; then cb. */
int lsess_dispose(struct lconn *ctl, struct lsess *s, lsess_disposed_cb cb, void *arg)
{
    struct dispose *d = xcalloc(1, sizeof *d);
    d->L = ctl->L;
    d->s = s;
    d->cb = cb;
    d->arg = arg;
    struct ptc_request rq;
    memset(&rq, 0, sizeof rq);
    rq.op = PTC_OP_KILL;
    rq.grace_ms = 0;
    rq.has = PTC_HAS_GRACE;
    int r = ctl->c ? ptc_client_request(ctl->c, &s->id, &rq, dispose_killed, d, NULL)
                   : PTC_CLIENT_ESTATE;
    if (r < 0) {
        d->cb = NULL; /* a function that fails never calls its callback */
        dispose_done(d, false, "kill", r, NULL);
    }
    return r;
}

/* At most this many removals in flight: the relay allows 64 pending `wait`s per connection. */
#define CLEANUP_WINDOW 32

struct cleanup {
    struct load *L;
    struct lconn *ctl;
    struct lsess **ss;
    uint32_t n, next, pending, removed;
};

static void cleanup_one(struct lsess *s, bool ok, void *arg);

static void cleanup_more(struct cleanup *cu)
{
    while (cu->next < cu->n && cu->pending < CLEANUP_WINDOW) {
        struct lsess *s = cu->ss[cu->next++];
        if (!s || !s->have_id || s->cleaned)
            continue;
        cu->pending++;
        if (lsess_dispose(cu->ctl, s, cleanup_one, cu) < 0)
            cu->pending--;
    }
}

static void cleanup_one(struct lsess *s, bool ok, void *arg)
{
    struct cleanup *cu = arg;
    cu->removed += ok;
    cu->pending--;
    cleanup_more(cu);
    if (!cu->pending)
        load_poke(cu->L);
}

static bool cleanup_settled(void *arg)
{
    struct cleanup *cu = arg;
    return cu->pending == 0 && cu->next >= cu->n;
}

static void cleanup_progress(void *arg, char *buf, size_t cap)
{
    struct cleanup *cu = arg;
    snprintf(buf, cap, "cleanup: %u removed, %u pending", cu->removed, cu->pending);
}

/* Kills (if needed) and removes every session with an id. */
uint32_t load_cleanup(struct load *L, struct lconn *ctl, struct lsess **ss, uint32_t n,
                      uint64_t timeout_ms)
{
    struct cleanup cu = {.L = L, .ctl = ctl, .ss = ss, .n = n};
    uint32_t want = 0;
    for (uint32_t i = 0; i < n; i++)
        want += ss[i] && ss[i]->have_id && !ss[i]->cleaned;
    if (!want)
        return 0;
    if (!ctl || !ctl->ready) {
        load_error(L, "cleanup: no ready connection; %u sessions left on the relay", want);
        return 0;
    }
    cleanup_more(&cu);
    if (!cleanup_settled(&cu) && !load_run(L, cleanup_settled, &cu, timeout_ms, cleanup_progress)) {
        load_error(L, "cleanup: %u sessions not removed within %" PRIu64 " ms",
                   want - cu.removed, timeout_ms);
        /* The callbacks still point at cu: end the connection so they are dropped unanswered. */
        ptc_client_conn_free(ctl->c);
        ctl->c = NULL;
        ctl->ready = false;
        ctl->ended = true;
    }
    load_progress_end(L);
    return cu.removed;
}

/* ---- commands --------------------------------------------------------------------------------- */

static char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *xasprintf(const char *fmt, ...)
{
    char *s;
    va_list ap;
    va_start(ap, fmt);
    int r = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (r < 0) {
        fprintf(stderr, "ptload: out of memory\n");
        abort();
    }
    return s;
}

/* The generator: a known byte stream of `bytes` bytes (0: endless). */
char *load_gen_cmd(uint64_t bytes)
{
    if (!bytes)
        return xasprintf("stty raw -echo; exec yes %s", LOAD_PATTERN);
    return xasprintf("stty raw -echo; yes %s | head -c %" PRIu64, LOAD_PATTERN, bytes);
}

/* The generator, started by one input byte. */
char *load_gen_cmd_go(uint64_t bytes)
{
    /* The mark says the tty is raw: a go byte sent after it is neither echoed nor line-buffered. */
    return xasprintf("stty raw -echo; printf R; head -c 1 >/dev/null; yes %s | head -c %" PRIu64,
                     LOAD_PATTERN, bytes);
}

/* cat of a file in raw mode (the path single-quoted for sh). */
char *load_file_cmd(const char *path)
{
    size_t n = 0;
    for (const char *p = path; *p; p++)
        n += *p == '\'' ? 4 : 1;
    char *q = xcalloc(n + 3, 1), *o = q;
    *o++ = '\'';
    for (const char *p = path; *p; p++) {
        if (*p == '\'') {
            memcpy(o, "'\\''", 4);
            o += 4;
        } else {
            *o++ = *p;
        }
    }
    *o = '\'';
    char *cmd = xasprintf("stty raw -echo; exec cat %s", q);
    free(q);
    return cmd;
}
