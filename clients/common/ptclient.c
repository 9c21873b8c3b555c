/*
 * ptclient.c: the client side of PTC1 over libwebsockets (the only client file that includes it).
 *
 * It owns the lws client context and everything attached to it: WebSocket connections to a relay
 * (handshake, hello, the outgoing message queue, the incoming frame stream, request ids and their
 * reply callbacks, frames kept for synchronous waits), one-shot timers on lws_sul, and adopted raw
 * fds (stdin/stdout/signalfd) with the file status flags saved and restored around lws' O_NONBLOCK.
 *
 * Lifetimes: a connection belongs to its caller until ptc_client_conn_free, and to the context at
 * the latest. Its wsi finds it through the wsi's opaque pointer; when the connection is freed the
 * pointer is cleared first, so a late lws callback finds nothing. A free requested from inside the
 * connection's own callback is only marked, and carried out when that lws callback unwinds.
 *
 * Elsewhere: url.c parses relay URLs; sync.c holds the blocking waits (ptc_client_call,
 * wait_ready, wait_frame, ...) and reaches the pending requests and kept frames of this file
 * through the few functions of ptclient_int.h, at the end of this file.
 */
#include "ptclient.h"
#include "ptclient_int.h"

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <libwebsockets.h>
#include <openssl/x509.h>

#define DEF_RX_MAX_FRAME (16u << 20)
#define DEF_RX_BUFFER (64u << 10)
#define DEF_BATCH_MAX (64u << 10)
#define DEF_FRAME_QUEUE_MAX ((size_t)64 << 20)
#define CHUNK_MAX ((size_t)64 << 10) /* bytes per lws_write: at most the protocol's tx_packet_size */
#define PROTO_WS "ptc1"
#define PROTO_RAW "ptc-raw"

/* A doubly linked list node; the context keeps its connections, timers and fds on lists. */
struct link {
    struct link *prev, *next;
};

static void link_init(struct link *h) { h->prev = h->next = h; }

static void link_add(struct link *h, struct link *n)
{
    n->prev = h->prev;
    n->next = h;
    h->prev->next = n;
    h->prev = n;
}

static void link_del(struct link *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->prev = n->next = n;
}

#define container(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

struct ptc_client_ctx {
    struct lws_context *lws;
    struct lws_vhost *vh;
    struct lws_protocols protocols[3];
    char *ca_file;
    bool insecure;
    uint32_t rx_max_frame;
    bool stop;
    bool destroying;
    int in_service; /* run_until depth: lws_service may be on the stack */
    struct ptc_client_conn *cur; /* the connection whose lws callback is running */
    struct link conns, timers, fds;
    /* Flags of fds 0-2 before the first adoption of a tty: restored when the last fd goes. */
    int std_flags[3];
    bool std_saved;
};

struct ptc_client_timer {
    lws_sorted_usec_list_t sul; /* first: lws_container_of-free recovery */
    struct link link;
    struct ptc_client_ctx *ctx;
    ptc_client_timer_cb cb;
    void *arg;
};

struct ptc_client_fd {
    struct link link;
    struct ptc_client_ctx *ctx;
    struct lws *wsi;
    int fd, flags;
    bool tty;
    struct ptc_client_fd_cbs cbs;
    void *arg;
};

/* One outgoing WebSocket message: frames batched, or raw bytes. */
struct omsg {
    struct omsg *next;
    struct ptc_buf b; /* headroom LWS_PRE */
    size_t off;       /* bytes already written */
    bool sealed;      /* nothing more may be appended (raw, hello, or writing started) */
    bool text;
    bool hello;
};

/* A request waiting for its REPLY. */
struct pending {
    struct pending *next;
    uint64_t id;
    int op;
    ptc_client_reply_cb cb;
    void *arg;
    struct ptc_client_sync_slot *slot; /* synchronous call instead of cb */
};

struct ptc_client_kept {
    struct ptc_client_kept *next;
    struct ptc_client_frame fr;
};

enum cstate { CS_CONNECTING, CS_HELLO, CS_READY, CS_ENDED };

struct ptc_client_conn {
    struct link link;
    struct ptc_client_ctx *ctx;
    struct lws *wsi;
    struct ptc_client_cbs cbs;
    void *arg;
    enum cstate state;
    bool freed;      /* free requested from inside its own callback */
    bool user_pause; /* ptc_client_pause */
    bool rx_off;     /* lws_rx_flow_control(0) in effect */
    bool closing;    /* ptc_client_conn_close: close after the queue */
    bool kill;       /* close at the next callback without a close frame of ours */
    bool was_ready;  /* it was ready when it ended */
    bool in_connect; /* inside lws_client_connect_via_info: hold reports back */
    bool report_due; /* the end happened inside connect: report from report_sul */
    lws_sorted_usec_list_t report_sul;
    char *token, *client_name;
    bool no_hello;
    size_t batch_max, frame_queue_max;
    struct ptc_client_url url;
    /* hello result */
    int scope;
    uint32_t max_frame;
    char server[64];
    uint64_t hello_id;
    /* end */
    int err;
    char errmsg[256];
    int close_code;
    char close_reason[124];
    char tls_why[128]; /* why certificate verification failed, from OpenSSL */
    bool got_close;
    /* out */
    struct omsg *oq_head, *oq_tail;
    size_t queued;
    /* in */
    struct ptc_stream in;
    uint64_t next_id;
    struct pending *pend_head, *pend_tail;
    struct ptc_client_kept *kept_head, *kept_tail;
    size_t kept_n, kept_bytes;
    struct ptc_client_stats st;
};

static void *xcalloc(size_t n, size_t sz)
{
    void *p = calloc(n, sz);
    if (!p) {
        fprintf(stderr, "ptclient: out of memory\n");
        abort();
    }
    return p;
}

static char *xstrdup(const char *s)
{
    char *p = strdup(s);
    if (!p) {
        fprintf(stderr, "ptclient: out of memory\n");
        abort();
    }
    return p;
}

/* A readable name for a PTC_CLIENT_E* code, or ptc_strerror for libptc codes. */
const char *ptc_client_strerror(int err)
{
    switch (err) {
    case 0: return "ok";
    case PTC_CLIENT_EREFUSED: return "connection refused (no relay listening)";
    case PTC_CLIENT_ECONNECT: return "could not connect";
    case PTC_CLIENT_ETLS: return "TLS error";
    case PTC_CLIENT_EHANDSHAKE: return "WebSocket handshake refused";
    case PTC_CLIENT_EUNAUTHORIZED: return "unauthorized (bad token)";
    case PTC_CLIENT_EVERSION: return "unsupported protocol version";
    case PTC_CLIENT_EPROTO: return "protocol error from the relay";
    case PTC_CLIENT_ECLOSED: return "connection closed";
    case PTC_CLIENT_ETIMEOUT: return "timed out";
    case PTC_CLIENT_EURL: return "bad relay URL";
    case PTC_CLIENT_ESTATE: return "not valid in this connection state";
    default: return ptc_strerror(err);
    }
}

/* ---- context and loop ---------------------------------------------------------------------- */

static int cb_ws(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len);
static int cb_raw(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                  size_t len);

/* Monotonic microseconds. */
uint64_t ptc_client_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* Creates the lws client context. */
struct ptc_client_ctx *ptc_client_ctx_new(const struct ptc_client_ctx_opts *o)
{
    static const struct ptc_client_ctx_opts none;
    if (!o)
        o = &none;
    struct ptc_client_ctx *ctx = xcalloc(1, sizeof(*ctx));
    link_init(&ctx->conns);
    link_init(&ctx->timers);
    link_init(&ctx->fds);
    ctx->insecure = o->insecure;
    ctx->rx_max_frame = o->rx_max_frame ? o->rx_max_frame : DEF_RX_MAX_FRAME;
    if (o->ca_file)
        ctx->ca_file = xstrdup(o->ca_file);
    if (o->raise_nofile) { /* before the context: lws sizes its fd table from the limit */
        struct rlimit rl;
        if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < rl.rlim_max) {
            rl.rlim_cur = rl.rlim_max;
            setrlimit(RLIMIT_NOFILE, &rl);
        }
    }
    lws_set_log_level(o->log_level, NULL);

    size_t rxbuf = o->rx_buffer_size ? o->rx_buffer_size : DEF_RX_BUFFER;
    ctx->protocols[0] = (struct lws_protocols){.name = PROTO_WS,
                                               .callback = cb_ws,
                                               .rx_buffer_size = rxbuf,
                                               .tx_packet_size = CHUNK_MAX};
    ctx->protocols[1] = (struct lws_protocols){.name = PROTO_RAW, .callback = cb_raw};

    struct lws_context_creation_info info;
    memset(&info, 0, sizeof(info));
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = ctx->protocols;
    info.gid = (gid_t)-1;
    info.uid = (uid_t)-1;
    /*
     * Every context needs the option: without it lws 4.1.6 creates no client SSL_CTX for the
     * vhost and wss fails with "bio_create failed". See the header for the cost of overlapping
     * contexts.
     */
    info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
    info.client_ssl_ca_filepath = ctx->ca_file;
    info.pt_serv_buf_size = (unsigned int)(CHUNK_MAX + LWS_PRE + 64);
    info.user = ctx;
    ctx->lws = lws_create_context(&info);
    if (!ctx->lws) {
        free(ctx->ca_file);
        free(ctx);
        return NULL;
    }
    ctx->vh = lws_get_vhost_by_name(ctx->lws, "default");
    return ctx;
}

static void conn_release(struct ptc_client_conn *c);
static void fd_restore(struct ptc_client_fd *f);

/* Destroys the context and everything attached to it. */
void ptc_client_ctx_free(struct ptc_client_ctx *ctx)
{
    if (!ctx)
        return;
    ctx->destroying = true;
    while (ctx->timers.next != &ctx->timers) {
        struct ptc_client_timer *t = container(ctx->timers.next, struct ptc_client_timer, link);
        ptc_client_timer_free(t);
    }
    /* Detach everything from its wsi first: lws_context_destroy calls back for each one. */
    for (struct link *l = ctx->conns.next; l != &ctx->conns; l = l->next) {
        struct ptc_client_conn *c = container(l, struct ptc_client_conn, link);
        if (c->wsi)
            lws_set_opaque_user_data(c->wsi, NULL);
        c->wsi = NULL;
    }
    for (struct link *l = ctx->fds.next; l != &ctx->fds; l = l->next) {
        struct ptc_client_fd *f = container(l, struct ptc_client_fd, link);
        if (f->wsi)
            lws_set_opaque_user_data(f->wsi, NULL);
        f->wsi = NULL;
    }
    lws_context_destroy(ctx->lws);
    while (ctx->conns.next != &ctx->conns)
        conn_release(container(ctx->conns.next, struct ptc_client_conn, link));
    while (ctx->fds.next != &ctx->fds) {
        struct ptc_client_fd *f = container(ctx->fds.next, struct ptc_client_fd, link);
        link_del(&f->link);
        fd_restore(f);
        free(f);
    }
    if (ctx->std_saved)
        for (int i = 0; i < 3; i++)
            if (ctx->std_flags[i] >= 0)
                fcntl(i, F_SETFL, ctx->std_flags[i]);
    free(ctx->ca_file);
    free(ctx);
}

/*
 * Why sul callbacks end with lws_cancel_service: lws 4.1.6 runs due timers at the top of
 * lws_service and then polls with the timeout of the next timer, or without limit when there is
 * none. A timer that ends a run (deadline, stop, a reply a sync wait wants) would leave the loop
 * asleep in poll; the cancel wakes it so lws_service returns and the run checks its condition.
 */
struct deadline {
    lws_sorted_usec_list_t sul;
    struct lws_context *lws;
    bool hit;
};

static void deadline_cb(lws_sorted_usec_list_t *sul)
{
    struct deadline *dl = (struct deadline *)(void *)sul;
    dl->hit = true;
    lws_cancel_service(dl->lws);
}

/*
 * Services the loop until done(arg) is true, the deadline passes (timeout_ms < 0: none) or the
 * context is stopped (only if honour_stop). Returns 1 if done, 0 on timeout, 2 if stopped.
 */
static int run_until(struct ptc_client_ctx *ctx, bool (*done)(void *), void *arg, int timeout_ms,
                     bool honour_stop)
{
    struct deadline dl;
    memset(&dl, 0, sizeof(dl));
    dl.lws = ctx->lws;
    if (timeout_ms >= 0)
        lws_sul_schedule(ctx->lws, 0, &dl.sul, deadline_cb,
                         (lws_usec_t)timeout_ms * LWS_US_PER_MS);
    int r = 0;
    for (;;) {
        if (done && done(arg)) {
            r = 1;
            break;
        }
        if (honour_stop && ctx->stop) {
            ctx->stop = false;
            r = 2;
            break;
        }
        if (dl.hit)
            break;
        ctx->in_service++;
        int sr = lws_service(ctx->lws, 0);
        ctx->in_service--;
        if (sr < 0)
            break;
    }
    lws_sul_cancel(&dl.sul);
    return r;
}

/* Runs the loop until done(arg) or timeout_ms elapses. */
int ptc_client_run_until(struct ptc_client_ctx *ctx, bool (*done)(void *arg), void *arg,
                         int timeout_ms)
{
    return run_until(ctx, done, arg, timeout_ms, false) == 1;
}

/* Runs the loop until stopped or timeout_ms elapses. */
int ptc_client_run(struct ptc_client_ctx *ctx, int timeout_ms)
{
    return run_until(ctx, NULL, NULL, timeout_ms, true) == 2;
}

/* Asks ptc_client_run to return. */
void ptc_client_stop(struct ptc_client_ctx *ctx)
{
    ctx->stop = true;
    lws_cancel_service(ctx->lws); /* in case it was called from a timer (see struct deadline) */
}

/* ---- timers -------------------------------------------------------------------------------- */

static void timer_fire(lws_sorted_usec_list_t *sul)
{
    struct ptc_client_timer *t = (struct ptc_client_timer *)(void *)sul;
    struct lws_context *lws = t->ctx->lws;
    t->cb(t, t->arg); /* may free t: only lws after this */
    lws_cancel_service(lws); /* see struct deadline */
}

/* Creates an unarmed timer. */
struct ptc_client_timer *ptc_client_timer_new(struct ptc_client_ctx *ctx, ptc_client_timer_cb cb,
                                              void *arg)
{
    struct ptc_client_timer *t = xcalloc(1, sizeof(*t));
    t->ctx = ctx;
    t->cb = cb;
    t->arg = arg;
    link_add(&ctx->timers, &t->link);
    return t;
}

/* Arms the timer for ms milliseconds from now. */
void ptc_client_timer_set(struct ptc_client_timer *t, uint64_t ms)
{
    lws_sul_schedule(t->ctx->lws, 0, &t->sul, timer_fire, (lws_usec_t)ms * LWS_US_PER_MS);
}

/* Disarms the timer. */
void ptc_client_timer_cancel(struct ptc_client_timer *t) { lws_sul_cancel(&t->sul); }

/* Disarms and frees the timer. */
void ptc_client_timer_free(struct ptc_client_timer *t)
{
    if (!t)
        return;
    lws_sul_cancel(&t->sul);
    link_del(&t->link);
    free(t);
}

/* ---- adopted fds --------------------------------------------------------------------------- */

static void fd_restore(struct ptc_client_fd *f)
{
    if (f->flags >= 0)
        fcntl(f->fd, F_SETFL, f->flags);
}

static bool any_tty_fd_left(struct ptc_client_ctx *ctx)
{
    for (struct link *l = ctx->fds.next; l != &ctx->fds; l = l->next)
        if (container(l, struct ptc_client_fd, link)->tty)
            return true;
    return false;
}

/* Watches a dup of fd in the loop. */
struct ptc_client_fd *ptc_client_fd_adopt(struct ptc_client_ctx *ctx, int fd,
                                          const struct ptc_client_fd_cbs *cbs, void *arg)
{
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0)
        return NULL;
    bool tty = isatty(fd);
    if (tty && !ctx->std_saved) {
        /* fds 0-2 of a terminal usually share one open file description with fd */
        for (int i = 0; i < 3; i++)
            ctx->std_flags[i] = isatty(i) ? fcntl(i, F_GETFL) : -1;
        ctx->std_saved = true;
    }
    int dupfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    if (dupfd < 0)
        return NULL;
    struct ptc_client_fd *f = xcalloc(1, sizeof(*f));
    f->ctx = ctx;
    f->fd = fd;
    f->flags = flags;
    f->tty = tty;
    if (cbs)
        f->cbs = *cbs;
    f->arg = arg;
    lws_sock_file_fd_type d;
    memset(&d, 0, sizeof(d));
    d.filefd = dupfd;
    /* lws closes dupfd itself if adoption fails */
    f->wsi = lws_adopt_descriptor_vhost(ctx->vh, LWS_ADOPT_RAW_FILE_DESC, d, PROTO_RAW, NULL);
    if (!f->wsi) {
        fcntl(fd, F_SETFL, flags);
        free(f);
        return NULL;
    }
    lws_set_opaque_user_data(f->wsi, f);
    link_add(&ctx->fds, &f->link);
    if (!f->cbs.on_readable)
        lws_rx_flow_control(f->wsi, 0);
    return f;
}

/* Pauses or resumes read callbacks of an adopted fd. */
void ptc_client_fd_read_enable(struct ptc_client_fd *f, bool on)
{
    if (f->wsi)
        lws_rx_flow_control(f->wsi, on && f->cbs.on_readable ? 1 : 0);
}

/* Asks for an on_writable callback. */
void ptc_client_fd_want_write(struct ptc_client_fd *f)
{
    if (f->wsi)
        lws_callback_on_writable(f->wsi);
}

/* Stops watching and frees f. */
void ptc_client_fd_close(struct ptc_client_fd *f)
{
    if (!f)
        return;
    struct ptc_client_ctx *ctx = f->ctx;
    if (f->wsi) {
        lws_set_opaque_user_data(f->wsi, NULL);
        lws_set_timeout(f->wsi, PENDING_TIMEOUT_USER_OK,
                        ctx->in_service ? LWS_TO_KILL_ASYNC : LWS_TO_KILL_SYNC);
        f->wsi = NULL;
    }
    link_del(&f->link);
    fd_restore(f);
    free(f);
    if (ctx->std_saved && !any_tty_fd_left(ctx)) {
        for (int i = 0; i < 3; i++)
            if (ctx->std_flags[i] >= 0)
                fcntl(i, F_SETFL, ctx->std_flags[i]);
        ctx->std_saved = false;
    }
}

static int cb_raw(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                  size_t len)
{
    struct ptc_client_fd *f = lws_get_opaque_user_data(wsi);
    switch (reason) {
    case LWS_CALLBACK_RAW_RX_FILE:
        if (!f)
            return -1; /* closed by ptc_client_fd_close: let it go */
        if (f->cbs.on_readable)
            f->cbs.on_readable(f, f->fd, f->arg);
        break;
    case LWS_CALLBACK_RAW_WRITEABLE_FILE:
        if (f && f->cbs.on_writable)
            f->cbs.on_writable(f, f->fd, f->arg);
        break;
    case LWS_CALLBACK_RAW_CLOSE_FILE:
        if (f) {
            lws_set_opaque_user_data(wsi, NULL);
            f->wsi = NULL;
            if (f->cbs.on_close)
                f->cbs.on_close(f, f->arg); /* may free f */
        }
        break;
    default:
        break;
    }
    return 0;
}

/* ---- connections: bookkeeping -------------------------------------------------------------- */

static void omsg_free(struct omsg *m)
{
    ptc_buf_free(&m->b);
    free(m);
}

static void kept_free_all(struct ptc_client_conn *c)
{
    struct ptc_client_kept *k = c->kept_head;
    while (k) {
        struct ptc_client_kept *n = k->next;
        free(k->fr.raw);
        free(k);
        k = n;
    }
    c->kept_head = c->kept_tail = NULL;
    c->kept_n = c->kept_bytes = 0;
}

/* Frees a connection's memory; its wsi must already be detached. */
static void conn_release(struct ptc_client_conn *c)
{
    lws_sul_cancel(&c->report_sul);
    link_del(&c->link);
    for (struct omsg *m = c->oq_head, *n; m; m = n) {
        n = m->next;
        omsg_free(m);
    }
    for (struct pending *p = c->pend_head, *n; p; p = n) {
        n = p->next;
        if (p->slot) { /* a synchronous call on the stack is still waiting: tell it */
            p->slot->done = true;
            p->slot->status = PTC_CLIENT_ECLOSED;
        }
        free(p);
    }
    kept_free_all(c);
    ptc_stream_free(&c->in);
    free(c->token);
    free(c->client_name);
    free(c);
}

static void update_rx(struct ptc_client_conn *c)
{
    bool off = c->user_pause || (!c->cbs.on_frame && c->kept_bytes > c->frame_queue_max);
    if (c->wsi && off != c->rx_off && c->state != CS_ENDED) {
        lws_rx_flow_control(c->wsi, off ? 0 : 1);
        c->rx_off = off;
    }
}

static struct omsg *omsg_new(struct ptc_client_conn *c)
{
    struct omsg *m = xcalloc(1, sizeof(*m));
    ptc_buf_init(&m->b, LWS_PRE);
    if (c->oq_tail)
        c->oq_tail->next = m;
    else
        c->oq_head = m;
    c->oq_tail = m;
    return m;
}

/* The message that the next frame should go into (n more bytes expected). */
static struct omsg *omsg_for_frame(struct ptc_client_conn *c, size_t n)
{
    struct omsg *t = c->oq_tail;
    if (t && !t->sealed && t->off == 0 && t->b.len + n <= c->batch_max)
        return t;
    return omsg_new(c);
}

static bool can_write_user(const struct ptc_client_conn *c)
{
    return c->state == CS_READY || (c->no_hello && c->state == CS_HELLO);
}

static void want_write(struct ptc_client_conn *c)
{
    if (c->wsi && c->state != CS_CONNECTING && c->state != CS_ENDED)
        lws_callback_on_writable(c->wsi);
}

/*
 * Ends the connection once: records the error, tells pending requests, then calls on_error (or
 * on_close for a ready connection when err == 0). Further callbacks are suppressed.
 */
static void conn_end(struct ptc_client_conn *c, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void conn_report(struct ptc_client_conn *c);

static void conn_end(struct ptc_client_conn *c, int err, const char *fmt, ...)
{
    if (c->state == CS_ENDED)
        return;
    bool was_ready = c->state == CS_READY;
    c->state = CS_ENDED;
    c->err = err;
    c->was_ready = was_ready;
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->errmsg, sizeof(c->errmsg), fmt, ap);
        va_end(ap);
    }
    if (c->ctx->destroying)
        return;
    if (c->in_connect) { /* never call back from inside ptc_client_connect */
        c->report_due = true;
        return;
    }
    conn_report(c);
}

/* Tells pending requests and the user that the connection ended (see conn_end). */
static void conn_report(struct ptc_client_conn *c)
{
    int err = c->err;
    bool was_ready = c->was_ready;
    while (c->pend_head && !c->freed) {
        struct pending *p = c->pend_head;
        c->pend_head = p->next;
        if (!c->pend_head)
            c->pend_tail = NULL;
        if (p->slot) {
            p->slot->done = true;
            p->slot->status = PTC_CLIENT_ECLOSED;
        } else if (p->cb) {
            p->cb(c, PTC_CLIENT_ECLOSED, NULL, p->arg);
        }
        free(p);
    }
    if (c->freed)
        return;
    if (err == 0 && was_ready) {
        if (c->cbs.on_close)
            c->cbs.on_close(c, c->close_code ? c->close_code : 1006, c->close_reason, c->arg);
    } else if (c->cbs.on_error) {
        c->cbs.on_error(c, err, c->errmsg, c->arg);
    }
}

/* ---- connections: API ---------------------------------------------------------------------- */

/*
 * lws 4.1.6 returns NULL from lws_client_connect_via_info, without CONNECTION_ERROR, when a unix
 * socket's connect() fails at once. To say why, try the same connect() here: it is non-blocking
 * for AF_UNIX and gives the errno lws did not report.
 */
static void unix_probe_error(struct ptc_client_conn *c, const char *url)
{
    int e = 0;
    if (c->url.unix_sock) {
        const char *path = c->url.address + 1;
        struct sockaddr_un sa;
        memset(&sa, 0, sizeof(sa));
        sa.sun_family = AF_UNIX;
        size_t n = strlen(path);
        if (n < sizeof(sa.sun_path)) {
            memcpy(sa.sun_path, path, n);
            if (path[0] == '@')
                sa.sun_path[0] = '\0'; /* abstract namespace, as lws does */
            int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
            if (fd >= 0) {
                if (connect(fd, (struct sockaddr *)&sa,
                            (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n)) < 0)
                    e = errno;
                close(fd);
            }
        } else {
            e = ENAMETOOLONG;
        }
    }
    if (e == ECONNREFUSED || e == ENOENT)
        conn_end(c, PTC_CLIENT_EREFUSED, "connection refused: no relay listening at %s (%s)", url,
                 strerror(e));
    else if (e)
        conn_end(c, PTC_CLIENT_ECONNECT, "cannot connect to %s: %s", url, strerror(e));
    else
        conn_end(c, PTC_CLIENT_ECONNECT, "cannot connect to %s: lws could not start the connection",
                 url);
}

static void report_later(lws_sorted_usec_list_t *sul)
{
    struct ptc_client_conn *c = container(sul, struct ptc_client_conn, report_sul);
    struct ptc_client_ctx *ctx = c->ctx;
    if (!c->report_due)
        return;
    c->report_due = false;
    struct ptc_client_conn *prev = ctx->cur;
    ctx->cur = c;
    conn_report(c);
    ctx->cur = prev;
    if (c->freed)
        conn_release(c);
    lws_cancel_service(ctx->lws); /* see struct deadline */
}

/* Starts a connection to url. */
struct ptc_client_conn *ptc_client_connect(struct ptc_client_ctx *ctx, const char *url,
                                           const struct ptc_client_conn_opts *o,
                                           const struct ptc_client_cbs *cbs, void *arg, int *err)
{
    static const struct ptc_client_conn_opts none;
    int dummy;
    if (!err)
        err = &dummy;
    *err = 0;
    if (!o)
        o = &none;
    struct ptc_client_url u;
    if (ptc_client_url_parse(url, &u)) {
        *err = PTC_CLIENT_EURL;
        return NULL;
    }
    struct ptc_client_conn *c = xcalloc(1, sizeof(*c));
    c->ctx = ctx;
    c->url = u;
    if (cbs)
        c->cbs = *cbs;
    c->arg = arg;
    c->token = o->token ? xstrdup(o->token) : NULL;
    c->client_name = xstrdup(o->client_name ? o->client_name : "ptclient");
    c->no_hello = o->no_hello;
    c->batch_max = o->batch_max ? o->batch_max : DEF_BATCH_MAX;
    c->frame_queue_max = o->frame_queue_max ? o->frame_queue_max : DEF_FRAME_QUEUE_MAX;
    c->next_id = 1;
    ptc_stream_init(&c->in, ctx->rx_max_frame);
    link_add(&ctx->conns, &c->link);

    struct lws_client_connect_info ci;
    memset(&ci, 0, sizeof(ci));
    ci.context = ctx->lws;
    ci.vhost = ctx->vh;
    ci.address = c->url.address;
    ci.port = c->url.port;
    ci.path = c->url.path;
    ci.host = c->url.host;
    /* No Origin: this is not a browser, and the relay checks Origin only when one is sent. */
    ci.origin = NULL;
    ci.protocol = PROTO_WS;
    ci.local_protocol_name = PROTO_WS;
    ci.opaque_user_data = c; /* no pwsi: lws would write into c after it is freed */
    ci.alpn = "http/1.1";
    if (u.tls) {
        ci.ssl_connection = LCCSCF_USE_SSL;
        if (ctx->insecure)
            ci.ssl_connection |= LCCSCF_ALLOW_SELFSIGNED | LCCSCF_SKIP_SERVER_CERT_HOSTNAME_CHECK |
                                 LCCSCF_ALLOW_EXPIRED | LCCSCF_ALLOW_INSECURE;
    }
    c->in_connect = true;
    struct lws *w = lws_client_connect_via_info(&ci);
    if (c->state == CS_ENDED || !w) {
        /*
         * lws reported CONNECTION_ERROR inside the call, or gave up without a word (it does so
         * for a unix socket whose connect() fails at once). Either way the report comes from the
         * loop, never from inside this function.
         */
        c->wsi = NULL;
        if (c->state != CS_ENDED)
            unix_probe_error(c, url);
        c->in_connect = false;
        c->report_due = true;
        lws_sul_schedule(ctx->lws, 0, &c->report_sul, report_later, 1);
    } else {
        c->in_connect = false;
        if (!c->wsi)
            c->wsi = w;
    }
    return c;
}

/* Closes (if open) and frees the connection. */
void ptc_client_conn_free(struct ptc_client_conn *c)
{
    if (!c)
        return;
    if (c->ctx->cur == c) { /* inside its own callback: cb_ws finishes the job */
        c->freed = true;
        return;
    }
    if (c->wsi) {
        /*
         * Outside the loop, close the socket now: nobody may service this context again soon,
         * and the relay would wait for a close that never comes. Inside it, let lws do it on its
         * next turn.
         */
        lws_set_opaque_user_data(c->wsi, NULL);
        lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK,
                        c->ctx->in_service ? LWS_TO_KILL_ASYNC : LWS_TO_KILL_SYNC);
        c->wsi = NULL;
    }
    /* no callbacks any more: pending synchronous slots are told by conn_release */
    conn_release(c);
}

/* Closes with a code after the queued messages. */
void ptc_client_conn_close(struct ptc_client_conn *c, int code, const char *reason)
{
    if (c->state == CS_ENDED || c->closing)
        return;
    c->closing = true;
    c->close_code = code;
    snprintf(c->close_reason, sizeof(c->close_reason), "%s", reason ? reason : "");
    if (c->state == CS_CONNECTING || !c->wsi) {
        c->kill = true;
        if (c->wsi)
            lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
        return;
    }
    lws_callback_on_writable(c->wsi);
}

/* State accessors. */
bool ptc_client_is_ready(const struct ptc_client_conn *c) { return c->state == CS_READY; }
bool ptc_client_is_closed(const struct ptc_client_conn *c) { return c->state == CS_ENDED; }
bool ptc_client_is_gone(const struct ptc_client_conn *c)
{
    return c->state == CS_ENDED && !c->wsi;
}
int ptc_client_scope(const struct ptc_client_conn *c) { return c->scope; }
uint32_t ptc_client_max_frame(const struct ptc_client_conn *c) { return c->max_frame; }
const char *ptc_client_server_name(const struct ptc_client_conn *c) { return c->server; }
int ptc_client_error(const struct ptc_client_conn *c) { return c->err; }
const char *ptc_client_error_message(const struct ptc_client_conn *c) { return c->errmsg; }
int ptc_client_close_code(const struct ptc_client_conn *c) { return c->close_code; }
const char *ptc_client_close_reason(const struct ptc_client_conn *c) { return c->close_reason; }
void ptc_client_set_arg(struct ptc_client_conn *c, void *arg) { c->arg = arg; }
void ptc_client_get_stats(const struct ptc_client_conn *c, struct ptc_client_stats *out)
{
    *out = c->st;
}

/* ---- sending ------------------------------------------------------------------------------- */

/* Queues one frame. */
int ptc_client_send_frame(struct ptc_client_conn *c, uint8_t type, const ptc_uuid *session,
                          const void *payload, size_t n)
{
    static const ptc_uuid zero;
    if (c->state == CS_ENDED || c->closing)
        return PTC_CLIENT_ESTATE;
    if (c->max_frame && n > c->max_frame)
        return PTC_ETOOBIG;
    struct omsg *m = omsg_for_frame(c, PTC_HDR_LEN + n);
    size_t before = m->b.len;
    int r = ptc_frame_append(&m->b, type, session ? session : &zero, payload, n);
    if (r) {
        m->b.len = before;
        return r;
    }
    c->queued += m->b.len - before;
    c->st.frames_out++;
    if (can_write_user(c))
        want_write(c);
    return 0;
}

/* Queues INPUT. */
int ptc_client_send_input(struct ptc_client_conn *c, const ptc_uuid *session, const void *data,
                          size_t n)
{
    return ptc_client_send_frame(c, PTC_INPUT, session, data, n);
}

/* Queues RESIZE. */
int ptc_client_send_resize(struct ptc_client_conn *c, const ptc_uuid *session, uint16_t cols,
                           uint16_t rows)
{
    uint8_t p[4] = {(uint8_t)cols, (uint8_t)(cols >> 8), (uint8_t)rows, (uint8_t)(rows >> 8)};
    return ptc_client_send_frame(c, PTC_RESIZE, session, p, sizeof(p));
}

/* Queues ACK. */
int ptc_client_send_ack(struct ptc_client_conn *c, const ptc_uuid *session, uint64_t count)
{
    uint8_t p[8];
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(count >> (8 * i));
    return ptc_client_send_frame(c, PTC_ACK, session, p, sizeof(p));
}

/* Queues raw bytes as one message of their own. */
int ptc_client_send_raw(struct ptc_client_conn *c, const void *data, size_t n, bool text)
{
    if (c->state == CS_ENDED || c->closing)
        return PTC_CLIENT_ESTATE;
    struct omsg *m = omsg_new(c);
    m->sealed = true;
    m->text = text;
    if (ptc_buf_append(&m->b, data, n))
        return PTC_ENOMEM; /* an empty message is then sent; harmless */
    c->queued += n;
    if (can_write_user(c))
        want_write(c);
    return 0;
}

/* Bytes queued, not yet written. */
size_t ptc_client_queued(const struct ptc_client_conn *c) { return c->queued; }

static struct pending *pending_add(struct ptc_client_conn *c, uint64_t id, int op)
{
    struct pending *p = xcalloc(1, sizeof(*p));
    p->id = id;
    p->op = op;
    if (c->pend_tail)
        c->pend_tail->next = p;
    else
        c->pend_head = p;
    c->pend_tail = p;
    return p;
}

static struct pending *pending_take(struct ptc_client_conn *c, uint64_t id)
{
    struct pending *prev = NULL;
    for (struct pending *p = c->pend_head; p; prev = p, p = p->next) {
        if (p->id != id)
            continue;
        if (prev)
            prev->next = p->next;
        else
            c->pend_head = p->next;
        if (c->pend_tail == p)
            c->pend_tail = prev;
        p->next = NULL;
        return p;
    }
    return NULL;
}

/* Builds a REQUEST frame into the queue: into the batch, or a message of its own (hello). */
static int queue_request(struct ptc_client_conn *c, const ptc_uuid *session,
                         const struct ptc_request *req, bool own_msg)
{
    static const ptc_uuid zero;
    struct omsg *m;
    if (own_msg) {
        /* hello goes first, ahead of any frame queued before the connection was established */
        m = xcalloc(1, sizeof(*m));
        ptc_buf_init(&m->b, LWS_PRE);
        m->sealed = true;
        m->hello = true;
        m->next = c->oq_head;
        c->oq_head = m;
        if (!c->oq_tail)
            c->oq_tail = m;
    } else {
        m = omsg_for_frame(c, 256);
    }
    size_t before = m->b.len;
    long mark = ptc_frame_open(&m->b, PTC_REQUEST, session ? session : &zero);
    int r = mark < 0 ? (int)mark : ptc_request_build(&m->b, req);
    if (!r)
        r = ptc_frame_close(&m->b, mark);
    if (r) {
        m->b.len = before;
        return r;
    }
    c->queued += m->b.len - before;
    c->st.frames_out++;
    return 0;
}

/* Sends a REQUEST and records its op for the reply. */
int ptc_client_request(struct ptc_client_conn *c, const ptc_uuid *session, struct ptc_request *req,
                       ptc_client_reply_cb cb, void *arg, uint64_t *id)
{
    if (c->state == CS_ENDED || c->closing)
        return PTC_CLIENT_ESTATE;
    req->id = c->next_id++;
    int r = queue_request(c, session, req, false);
    if (r)
        return r;
    struct pending *p = pending_add(c, req->id, req->op);
    p->cb = cb;
    p->arg = arg;
    if (id)
        *id = req->id;
    if (can_write_user(c))
        want_write(c);
    return 0;
}

/* Pauses or resumes reading. */
void ptc_client_pause(struct ptc_client_conn *c, bool paused)
{
    c->user_pause = paused;
    update_rx(c);
}

/* True while paused by the caller. */
bool ptc_client_is_paused(const struct ptc_client_conn *c) { return c->user_pause; }

/* ---- the WebSocket callback ---------------------------------------------------------------- */

static void send_hello(struct ptc_client_conn *c)
{
    struct ptc_request h;
    memset(&h, 0, sizeof(h));
    h.op = PTC_OP_HELLO;
    h.id = c->next_id++;
    h.version = PTC_VERSION;
    h.has = PTC_HAS_VERSION | PTC_HAS_CLIENT;
    h.client = ptc_str_c(c->client_name);
    if (c->token) {
        h.token = ptc_str_c(c->token);
        h.has |= PTC_HAS_TOKEN;
    }
    if (queue_request(c, NULL, &h, true)) {
        conn_end(c, PTC_CLIENT_EPROTO, "could not build the hello request");
        return;
    }
    c->hello_id = h.id;
    pending_add(c, h.id, PTC_OP_HELLO);
}

static void on_hello_reply(struct ptc_client_conn *c, const struct ptc_reply *rp)
{
    if (!rp->ok) {
        int e = rp->error == PTC_C_UNAUTHORIZED          ? PTC_CLIENT_EUNAUTHORIZED
                : rp->error == PTC_C_UNSUPPORTED_VERSION ? PTC_CLIENT_EVERSION
                                                         : PTC_CLIENT_EHANDSHAKE;
        const char *what = e == PTC_CLIENT_EUNAUTHORIZED ? "relay rejected the token"
                           : e == PTC_CLIENT_EVERSION    ? "relay does not support PTC1 version 1"
                                                         : "relay refused hello";
        /* no kill: the relay closes (4401 for a bad token), and the close code is kept */
        conn_end(c, e, "%s (%s: %.*s)", what, ptc_code_name(rp->error), (int)rp->message.n,
                 rp->message.p ? rp->message.p : "");
        return;
    }
    if (rp->version != PTC_VERSION) {
        conn_end(c, PTC_CLIENT_EVERSION, "relay speaks PTC1 version %llu, this client version %d",
                 (unsigned long long)rp->version, PTC_VERSION);
        c->kill = true;
        return;
    }
    c->scope = rp->scope;
    c->max_frame = rp->max_frame > UINT32_MAX ? UINT32_MAX : (uint32_t)rp->max_frame;
    snprintf(c->server, sizeof(c->server), "%.*s", (int)rp->server.n,
             rp->server.p ? rp->server.p : "");
    c->state = CS_READY;
    if (c->oq_head)
        want_write(c);
    if (c->cbs.on_ready)
        c->cbs.on_ready(c, c->scope, c->max_frame, c->arg);
}

static void keep_frame(struct ptc_client_conn *c, const struct ptc_frame *f)
{
    struct ptc_client_kept *k = xcalloc(1, sizeof(*k));
    k->fr.f = *f;
    if (f->len) {
        k->fr.raw = malloc(f->len);
        if (!k->fr.raw) {
            fprintf(stderr, "ptclient: out of memory\n");
            abort();
        }
        memcpy(k->fr.raw, f->payload, f->len);
    }
    k->fr.f.payload = k->fr.raw;
    if (c->kept_tail)
        c->kept_tail->next = k;
    else
        c->kept_head = k;
    c->kept_tail = k;
    c->kept_n++;
    c->kept_bytes += f->len + sizeof(*k);
    update_rx(c);
}

/* A REPLY: to hello, to a pending request, or (unknown id) passed on as a frame. */
/*
 * Limits for parsing the relay's replies: a `read` may carry up to a whole frame of data and a
 * `list` thousands of sessions, so the request-sized defaults would refuse real answers.
 */
static struct ptc_limits reply_limits(const struct ptc_client_conn *c)
{
    struct ptc_limits lim = ptc_limits_default;
    (void)c;
    lim.max_str = 64u << 20;
    lim.max_items = 1u << 22;
    return lim;
}

static void handle_reply(struct ptc_client_conn *c, const struct ptc_frame *f)
{
    uint64_t id = 0;
    struct pending *p = NULL;
    if (ptc_reply_peek_id(f->payload, f->len, &id) == 0)
        p = pending_take(c, id);
    if (!p) {
        if (c->state == CS_HELLO) {
            conn_end(c, PTC_CLIENT_EPROTO, "relay sent a REPLY that answers no request of ours");
            c->kill = true;
        } else if (c->cbs.on_frame) {
            c->cbs.on_frame(c, f, c->arg);
        } else {
            keep_frame(c, f);
        }
        return;
    }
    struct ptc_perr perr;
    memset(&perr, 0, sizeof(perr));
    if (p->slot) {
        struct ptc_client_reply *rep = p->slot->rep;
        rep->raw = malloc(f->len ? f->len : 1);
        if (!rep->raw) {
            fprintf(stderr, "ptclient: out of memory\n");
            abort();
        }
        memcpy(rep->raw, f->payload, f->len);
        rep->rawlen = f->len;
        rep->r.op = p->op;
        struct ptc_limits lim = reply_limits(c);
        p->slot->status = ptc_reply_parse(rep->raw, rep->rawlen, &lim, &rep->r, &perr);
        p->slot->done = true;
        free(p);
        return;
    }
    struct ptc_reply rp;
    memset(&rp, 0, sizeof(rp));
    rp.op = p->op;
    struct ptc_limits lim = reply_limits(c);
    int r = ptc_reply_parse(f->payload, f->len, &lim, &rp, &perr);
    if (p->op == PTC_OP_HELLO && id == c->hello_id && c->state == CS_HELLO) {
        if (r) {
            conn_end(c, PTC_CLIENT_EPROTO, "relay sent a malformed hello reply: %s", perr.message);
            c->kill = true;
        } else {
            on_hello_reply(c, &rp);
        }
    } else if (p->cb) {
        p->cb(c, r, r ? NULL : &rp, p->arg);
    }
    ptc_reply_free(&rp);
    free(p);
}

static void protocol_error(struct ptc_client_conn *c, const char *what, int code)
{
    conn_end(c, PTC_CLIENT_EPROTO, "protocol error from the relay: %s", what);
    if (c->wsi) {
        static const char msg[] = "bad frame from server";
        lws_close_reason(c->wsi, (enum lws_close_status)code, (unsigned char *)msg,
                         sizeof(msg) - 1);
    }
    c->kill = true;
}

/* Feeds a received chunk and dispatches every whole frame. */
static void rx_chunk(struct ptc_client_conn *c, const void *in, size_t len, bool msg_end)
{
    c->st.bytes_in += len;
    if (msg_end)
        c->st.msgs_in++;
    int r = ptc_stream_feed(&c->in, in, len);
    if (r) {
        protocol_error(c, ptc_strerror(r), r == PTC_ETOOBIG ? PTC_CLOSE_TOO_BIG : PTC_CLOSE_PROTOCOL);
        return;
    }
    struct ptc_frame f;
    while (c->state != CS_ENDED && !c->freed && !c->kill) {
        r = ptc_stream_next(&c->in, &f);
        if (r == 0)
            break;
        if (r < 0) {
            protocol_error(c, ptc_strerror(r), r == PTC_ETOOBIG ? PTC_CLOSE_TOO_BIG : PTC_CLOSE_PROTOCOL);
            return;
        }
        c->st.frames_in++;
        if (ptc_frame_check(&f)) {
            char what[96];
            snprintf(what, sizeof(what), "%s frame with a malformed payload (%u bytes)",
                     ptc_type_name(f.type), (unsigned)f.len);
            protocol_error(c, what, PTC_CLOSE_PROTOCOL);
            return;
        }
        if (f.type == PTC_REPLY) {
            handle_reply(c, &f);
        } else if (c->state == CS_HELLO && !c->no_hello) {
            char what[96];
            snprintf(what, sizeof(what), "%s frame before the hello reply", ptc_type_name(f.type));
            protocol_error(c, what, PTC_CLOSE_PROTOCOL);
            return;
        } else if (c->cbs.on_frame) {
            c->cbs.on_frame(c, &f, c->arg);
        } else {
            keep_frame(c, &f);
        }
    }
    if (msg_end && c->state != CS_ENDED && ptc_stream_pending(&c->in))
        protocol_error(c, "a frame spans two WebSocket messages", PTC_CLOSE_PROTOCOL);
}

/* Writes one chunk of the head message. Returns -1 to close the connection. */
static int tx_chunk(struct ptc_client_conn *c)
{
    struct omsg *m = c->oq_head;
    if (m && !m->hello && !can_write_user(c))
        m = NULL; /* only hello may go before the hello reply */
    if (!m) {
        if (c->closing) {
            lws_close_reason(c->wsi, (enum lws_close_status)c->close_code,
                             (unsigned char *)c->close_reason, strlen(c->close_reason));
            return -1;
        }
        return 0;
    }
    m->sealed = true;
    size_t left = m->b.len - m->off;
    size_t n = left < CHUNK_MAX ? left : CHUNK_MAX;
    int flags = lws_write_ws_flags(m->text ? LWS_WRITE_TEXT : LWS_WRITE_BINARY, m->off == 0,
                                   m->off + n == m->b.len);
    /* For later chunks the LWS_PRE bytes in front are already-sent payload: lws may overwrite them */
    uint8_t *p = m->b.len ? m->b.data + m->off : ptc_buf_reserve(&m->b, 1);
    if (!p)
        return -1;
    int w = lws_write(c->wsi, p, n, (enum lws_write_protocol)flags);
    if (w < (int)n) {
        conn_end(c, PTC_CLIENT_ECLOSED, "write to the relay failed");
        return -1;
    }
    m->off += n;
    c->queued -= n;
    c->st.bytes_out += n;
    if (m->off == m->b.len) {
        c->st.msgs_out++;
        c->oq_head = m->next;
        if (!c->oq_head)
            c->oq_tail = NULL;
        omsg_free(m);
    }
    if (c->oq_head || c->closing)
        lws_callback_on_writable(c->wsi);
    return 0;
}

static bool contains(const char *s, const char *needle)
{
    return s && strcasestr(s, needle) != NULL;
}

/* Classifies lws' CONNECTION_ERROR reason text. */
static void connection_error(struct ptc_client_conn *c, const char *why)
{
    const char *url = c->url.unix_sock ? c->url.address + 1 : c->url.host;
    if (contains(why, "ssl") || contains(why, "tls") || contains(why, "certificate") ||
        contains(why, "x509"))
        conn_end(c, PTC_CLIENT_ETLS, "TLS failed with %s: %s", url,
                 c->tls_why[0] ? c->tls_why : why);
    else if (contains(why, "HS:") || contains(why, "upgrade") || contains(why, "protocol") ||
             contains(why, "accept") || contains(why, "http"))
        conn_end(c, PTC_CLIENT_EHANDSHAKE, "WebSocket handshake with %s%s refused: %s", url,
                 c->url.path, why);
    else if (contains(why, "read failed") || contains(why, "closed before"))
        conn_end(c, PTC_CLIENT_EHANDSHAKE,
                 "%s%s closed the connection during the WebSocket handshake (%s): not a PTC1 relay "
                 "there, a%s, or the upgrade was refused",
                 url, c->url.path, why, c->url.tls ? " plain (non-TLS) port" : " TLS port (use wss://)");
    else if (contains(why, "connect") && c->state == CS_CONNECTING && !contains(why, "timed"))
        conn_end(c, PTC_CLIENT_EREFUSED, "connection refused: no relay listening at %s%s (%s)",
                 c->url.unix_sock ? "unix:" : "", url, why);
    else
        conn_end(c, PTC_CLIENT_ECONNECT, "cannot connect to %s: %s", url, why ? why : "unknown error");
}

/* The connection's socket closed: ends it with the right report. */
static void closed(struct ptc_client_conn *c)
{
    if (c->state == CS_READY && c->err == 0) {
        if (c->close_code == PTC_CLOSE_UNAUTHORIZED || c->close_code == PTC_CLOSE_PROTOCOL ||
            c->close_code == PTC_CLOSE_TOO_BIG || c->close_code == PTC_CLOSE_SLOW ||
            c->close_code == PTC_CLOSE_TOO_MANY)
            snprintf(c->errmsg, sizeof(c->errmsg), "relay closed the connection: %d %s",
                     c->close_code, c->close_reason);
        conn_end(c, 0, NULL);
    } else if (c->state == CS_HELLO) {
        if (c->close_code == PTC_CLOSE_UNAUTHORIZED)
            conn_end(c, PTC_CLIENT_EUNAUTHORIZED, "relay rejected the token (close %d%s%s)",
                     c->close_code, *c->close_reason ? ": " : "", c->close_reason);
        else if (c->got_close)
            conn_end(c, PTC_CLIENT_ECLOSED, "relay closed the connection during hello: %d %s",
                     c->close_code, c->close_reason);
        else
            conn_end(c, PTC_CLIENT_ECLOSED, "connection dropped during hello (no close frame)");
    } else if (c->state == CS_CONNECTING) {
        conn_end(c, PTC_CLIENT_ECONNECT, "connection closed before the WebSocket handshake");
    }
}

static int cb_ws(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
    struct ptc_client_conn *c = wsi ? lws_get_opaque_user_data(wsi) : NULL;
    if (!c)
        return reason == LWS_CALLBACK_CLIENT_RECEIVE || reason == LWS_CALLBACK_CLIENT_WRITEABLE
                   ? -1
                   : 0; /* a connection freed while its wsi was closing */
    struct ptc_client_ctx *ctx = c->ctx;
    struct ptc_client_conn *prev = ctx->cur;
    ctx->cur = c;
    int ret = 0;
    bool gone = false; /* the wsi is finished after this callback */

    switch (reason) {
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR: {
        char why[200];
        snprintf(why, sizeof(why), "%.*s", in ? (int)(len ? len : strlen(in)) : 0,
                 in ? (const char *)in : "");
        if (!in || !*why)
            snprintf(why, sizeof(why), "unknown error");
        if (c->kill && c->state != CS_ENDED)
            conn_end(c, PTC_CLIENT_ECLOSED, "closed by the client before connecting");
        else
            connection_error(c, why);
        gone = true;
        break;
    }
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
        c->wsi = wsi;
        if (c->kill) {
            ret = -1;
            break;
        }
        c->state = CS_HELLO;
        if (!c->no_hello)
            send_hello(c);
        if (c->oq_head)
            lws_callback_on_writable(wsi);
        update_rx(c);
        break;
    case LWS_CALLBACK_CLIENT_RECEIVE:
        if (c->kill) {
            ret = -1;
            break;
        }
        if (c->state == CS_ENDED)
            break; /* ended (e.g. unauthorized): wait for the relay's close, ignore the rest */
        if (!lws_frame_is_binary(wsi)) {
            protocol_error(c, "text WebSocket message", PTC_CLOSE_PROTOCOL);
        } else {
            bool end = lws_is_final_fragment(wsi) && !lws_remaining_packet_payload(wsi);
            rx_chunk(c, in, len, end);
        }
        if (c->kill)
            ret = -1; /* sends the close reason set by protocol_error */
        break;
    case LWS_CALLBACK_CLIENT_WRITEABLE:
        if (c->kill) {
            ret = -1;
            break;
        }
        if (c->state == CS_ENDED && !c->closing)
            break;
        ret = tx_chunk(c);
        break;
    case LWS_CALLBACK_OPENSSL_PERFORM_SERVER_CERT_VERIFICATION:
        /* user is the X509_STORE_CTX, len the preverify result: keep OpenSSL's reason */
        if (!len && user) {
            X509_STORE_CTX *xs = user;
            int e = X509_STORE_CTX_get_error(xs);
            snprintf(c->tls_why, sizeof(c->tls_why), "certificate verification failed: %s",
                     X509_verify_cert_error_string(e));
        }
        break;
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
        c->got_close = true;
        if (len >= 2) {
            const uint8_t *b = in;
            c->close_code = (b[0] << 8) | b[1];
            snprintf(c->close_reason, sizeof(c->close_reason), "%.*s", (int)(len - 2),
                     (const char *)b + 2);
        } else {
            c->close_code = 1005; /* no status received */
        }
        break;
    case LWS_CALLBACK_CLIENT_CLOSED:
        closed(c);
        gone = true;
        break;
    default:
        break;
    }

    if (gone) {
        lws_set_opaque_user_data(wsi, NULL);
        c->wsi = NULL;
    }
    ctx->cur = prev;
    if (c->freed) {
        if (c->wsi) {
            lws_set_opaque_user_data(c->wsi, NULL);
            c->wsi = NULL;
            ret = -1;
        }
        conn_release(c);
        return ret;
    }
    if (!gone && c->kill && ret == 0) {
        /* close at once: we have ended this connection (unauthorized, protocol error, killed) */
        lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
    }
    return ret;
}

/* ---- for the synchronous layer (sync.c, through ptclient_int.h) ------------------------------ */

/* The context c belongs to. */
struct ptc_client_ctx *ptc_client_conn_ctx(const struct ptc_client_conn *c) { return c->ctx; }

/* Sends req with its reply going to slot. */
int ptc_client_request_sync(struct ptc_client_conn *c, const ptc_uuid *session,
                            struct ptc_request *req, struct ptc_client_sync_slot *slot,
                            uint64_t *id)
{
    if (c->state == CS_ENDED || c->closing)
        return PTC_CLIENT_ECLOSED;
    int r = ptc_client_request(c, session, req, NULL, NULL, id);
    if (r)
        return r;
    c->pend_tail->slot = slot; /* the entry just added */
    return 0;
}

/* Forgets the pending request id. */
void ptc_client_request_cancel(struct ptc_client_conn *c, uint64_t id)
{
    free(pending_take(c, id));
}

static bool frame_matches(const struct ptc_frame *f, const struct ptc_client_filter *flt)
{
    if (!flt)
        return true;
    if (flt->type && f->type != flt->type)
        return false;
    if (flt->session && !ptc_uuid_eq(&f->session, flt->session))
        return false;
    return true;
}

/* Takes the oldest kept frame after *scanned that matches flt. */
int ptc_client_kept_take(struct ptc_client_conn *c, const struct ptc_client_filter *flt,
                         struct ptc_client_kept **scanned, struct ptc_client_frame *out)
{
    if (c->cbs.on_frame)
        return PTC_CLIENT_ESTATE;
    struct ptc_client_kept *prev = *scanned, *k = prev ? prev->next : c->kept_head;
    for (; k; prev = k, k = k->next) {
        if (frame_matches(&k->fr.f, flt))
            break;
    }
    if (!k) {
        *scanned = prev;
        return 0;
    }
    if (prev)
        prev->next = k->next;
    else
        c->kept_head = k->next;
    if (c->kept_tail == k)
        c->kept_tail = prev;
    c->kept_n--;
    c->kept_bytes -= k->fr.f.len + sizeof(*k);
    *out = k->fr;
    free(k);
    update_rx(c);
    return 1;
}

/* Number of frames kept for wait_frame. */
size_t ptc_client_frames_kept(const struct ptc_client_conn *c) { return c->kept_n; }
