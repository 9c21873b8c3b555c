/*
 * ptclient: the PTC1 client side over libwebsockets, shared by ptcat, ptload and the integration
 * tests. It owns one lws client context (struct ptc_client_ctx) that holds any number of
 * connections, timers and adopted file descriptors, all serviced by one loop in the caller's thread.
 * A connection (struct ptc_client_conn) does the WebSocket handshake (subprotocol "ptc1"), sends
 * REQUEST hello itself, batches queued frames into WebSocket messages, decodes incoming messages
 * into frames, matches REPLYs to their requests by id and hands every other frame to on_frame.
 * This header does not include libwebsockets: ptclient.c is the only client file that does.
 *
 * Threads: every function here must be called from the thread that runs ptc_client_run (callbacks
 * run there too). Functions return 0 or a negative code: PTC_E* from ptc.h or PTC_CLIENT_E* below.
 */
#ifndef PTCLIENT_H
#define PTCLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ptc.h"

/* Errors reported by ptclient (negative, distinct from the PTC_E* codes of libptc). */
enum ptc_client_err {
    PTC_CLIENT_EREFUSED = -100,     /* nothing listens at the address: no relay running there */
    PTC_CLIENT_ECONNECT = -101,     /* could not connect for another reason (unreachable, reset, DNS) */
    PTC_CLIENT_ETLS = -102,         /* TLS failed: certificate not trusted, wrong name, not TLS */
    PTC_CLIENT_EHANDSHAKE = -103,   /* HTTP upgrade refused (wrong path, no ptc1 subprotocol, ...) */
    PTC_CLIENT_EUNAUTHORIZED = -104,/* relay rejected the token (REPLY unauthorized / close 4401) */
    PTC_CLIENT_EVERSION = -105,     /* relay does not speak this PTC1 version */
    PTC_CLIENT_EPROTO = -106,       /* relay sent something that is not valid PTC1 */
    PTC_CLIENT_ECLOSED = -107,      /* connection closed (before a reply / before ready) */
    PTC_CLIENT_ETIMEOUT = -108,     /* a synchronous wait ran out of time */
    PTC_CLIENT_EURL = -109,         /* URL could not be parsed */
    PTC_CLIENT_ESTATE = -110,       /* call not valid in the connection's current state */
};

/* A readable name for a PTC_CLIENT_E* code (or, for others, ptc_strerror). Never NULL. */
const char *ptc_client_strerror(int err);

/* ---- URLs (url.c) ---------------------------------------------------------------------------- */

/*
 * A parsed relay address. Accepted forms: `ws://HOST[:PORT][/path]`, `wss://HOST[:PORT][/path]`
 * (HOST may be `[v6]`; default ports 80/443; default path "/ptc1"), and `unix:PATH` (PATH absolute
 * or relative, or `@name` for the abstract namespace; path "/ptc1"). For unix sockets `address`
 * holds the lws form "+PATH" and port is 0.
 */
struct ptc_client_url {
    bool tls;
    bool unix_sock;
    char address[256]; /* host without brackets, or "+PATH" for unix sockets */
    char host[262];    /* Host header value: "host:port" (brackets kept for v6), "localhost" for unix */
    int port;
    char path[512]; /* starts with '/' */
};

/* Parses url into *u. 0 or PTC_CLIENT_EURL (also when a part is too long). */
int ptc_client_url_parse(const char *url, struct ptc_client_url *u);

/* ---- context and loop ------------------------------------------------------------------------ */

struct ptc_client_ctx;

struct ptc_client_ctx_opts {
    const char *ca_file;   /* PEM file of CAs trusted for wss (NULL: the system store) */
    bool insecure;         /* wss: accept self-signed certs and skip the host name check */
    int log_level;         /* lws log bits (LLL_ERR=1, LLL_WARN=2, ...); 0 = silent (default) */
    bool raise_nofile;     /* raise RLIMIT_NOFILE's soft limit to the hard one before creating */
    uint32_t rx_max_frame; /* largest payload accepted from the relay; 0 = 16 MiB */
    size_t rx_buffer_size; /* per-connection lws receive buffer; 0 = 64 KiB (lower it for ptload) */
};

/*
 * Creates a context (o may be NULL for defaults). NULL if lws could not create one.
 * One context per process is the intended use. lws 4.1.6 quirk, measured: when a context is
 * destroyed while another one is alive, the survivor's client SSL_CTX (with its whole CA store)
 * is never freed, which LeakSanitizer reports at exit. Contexts used one after another are clean.
 */
struct ptc_client_ctx *ptc_client_ctx_new(const struct ptc_client_ctx_opts *o);
/*
 * Destroys the context: closes every connection still open (without calling their callbacks),
 * frees every connection, timer and adopted fd of it, and restores the file status flags of the
 * fds it adopted. Pointers to any of them are invalid afterwards.
 */
void ptc_client_ctx_free(struct ptc_client_ctx *ctx);
/*
 * Services the loop until ptc_client_stop is called, or timeout_ms elapses (timeout_ms < 0: no
 * deadline). Returns 1 if stopped (the stop request is consumed), 0 on timeout.
 */
int ptc_client_run(struct ptc_client_ctx *ctx, int timeout_ms);
/*
 * Services the loop until done(arg) returns true (checked before each loop turn), or timeout_ms
 * elapses (< 0: none). Returns 1 when done, 0 on timeout. Not from inside a callback.
 */
int ptc_client_run_until(struct ptc_client_ctx *ctx, bool (*done)(void *arg), void *arg,
                         int timeout_ms);
/* Makes the current (or next) ptc_client_run return once the callback in progress has returned. */
void ptc_client_stop(struct ptc_client_ctx *ctx);
/* Monotonic clock in microseconds (the loop's clock). */
uint64_t ptc_client_now_us(void);

/* ---- timers ---------------------------------------------------------------------------------- */

struct ptc_client_timer;
typedef void (*ptc_client_timer_cb)(struct ptc_client_timer *t, void *arg);

/* A one-shot timer on the loop (not armed). Owned by the caller; freed by ctx_free at the latest. */
struct ptc_client_timer *ptc_client_timer_new(struct ptc_client_ctx *ctx, ptc_client_timer_cb cb,
                                              void *arg);
/* Arms (or re-arms) the timer to fire once after ms milliseconds. */
void ptc_client_timer_set(struct ptc_client_timer *t, uint64_t ms);
/* Disarms the timer; harmless if not armed. */
void ptc_client_timer_cancel(struct ptc_client_timer *t);
/* Disarms and frees the timer (may be called from its own callback). NULL is ignored. */
void ptc_client_timer_free(struct ptc_client_timer *t);

/* ---- adopted file descriptors (stdin, stdout, signalfd) -------------------------------------- */

struct ptc_client_fd;
struct ptc_client_fd_cbs {
    /* fd has data (or EOF): read() it yourself; it is non-blocking now. NULL: never watch reads. */
    void (*on_readable)(struct ptc_client_fd *f, int fd, void *arg);
    /* fd can take more after ptc_client_fd_want_write. */
    void (*on_writable)(struct ptc_client_fd *f, int fd, void *arg);
    /* The loop stopped watching fd (hang-up, EOF on a pipe, or ptc_client_fd_close). Last callback. */
    void (*on_close)(struct ptc_client_fd *f, void *arg);
};

/*
 * Watches fd in the loop. The loop works on a dup() of fd (lws closes what it adopts), so fd
 * itself stays open and is the one passed to callbacks. lws makes the file non-blocking, and on a
 * tty that is shared by fds 0, 1 and 2: the F_GETFL flags of fd (and of fds 0-2 when fd is a tty)
 * are saved here and restored when the fd is closed or the context freed. Returns NULL on failure.
 */
struct ptc_client_fd *ptc_client_fd_adopt(struct ptc_client_ctx *ctx, int fd,
                                          const struct ptc_client_fd_cbs *cbs, void *arg);
/* Pauses (false) or resumes (true) read callbacks. */
void ptc_client_fd_read_enable(struct ptc_client_fd *f, bool on);
/* Asks for one on_writable callback. */
void ptc_client_fd_want_write(struct ptc_client_fd *f);
/* Stops watching, restores the saved flags and frees f (on_close is not called). NULL ignored. */
void ptc_client_fd_close(struct ptc_client_fd *f);

/* ---- connections ----------------------------------------------------------------------------- */

struct ptc_client_conn;

/*
 * Connection callbacks; any may be NULL. Exactly one of on_error / on_close ends a connection:
 * on_error if it fails before it is ready (refused, TLS, handshake, unauthorized, version, closed
 * during hello) or on a protocol error by the relay; on_close when a ready connection is closed.
 * After that, the connection only waits for ptc_client_conn_free.
 */
struct ptc_client_cbs {
    /* hello succeeded: scope is PTC_MODE_INTERACTIVE ("control") or PTC_MODE_VIEW. */
    void (*on_ready)(struct ptc_client_conn *c, int scope, uint32_t max_frame, void *arg);
    /*
     * Every frame that is not a REPLY to one of our requests (OUTPUT, RESIZE, ACK, STATE, EVENT,
     * extension types). f->payload is valid during the call only. When on_frame is NULL, frames
     * are kept for ptc_client_wait_frame instead.
     */
    void (*on_frame)(struct ptc_client_conn *c, const struct ptc_frame *f, void *arg);
    /* The connection failed: err is a PTC_CLIENT_E* code, message says what for a person. */
    void (*on_error)(struct ptc_client_conn *c, int err, const char *message, void *arg);
    /* A ready connection closed: the WebSocket close code (1006 when none came) and reason. */
    void (*on_close)(struct ptc_client_conn *c, int code, const char *reason, void *arg);
};

struct ptc_client_conn_opts {
    const char *token;       /* sent in hello; NULL omits it */
    const char *client_name; /* hello `client`, e.g. "ptcat/0.1"; NULL: "ptclient" */
    bool no_hello;           /* do not send hello (tests that send their own first frame) */
    size_t batch_max;        /* largest batched message of queued frames; 0 = 64 KiB */
    size_t frame_queue_max;  /* with on_frame NULL: bytes kept before reading pauses; 0 = 64 MiB */
};

/*
 * Starts connecting to url. Returns the connection, or NULL with *err = PTC_CLIENT_EURL when the
 * URL does not parse. Every later failure, even one lws detects inside this call, is reported
 * through on_error from the loop, never from inside ptc_client_connect. The connection is owned by
 * the caller (ptc_client_conn_free) and at the latest by the context.
 */
struct ptc_client_conn *ptc_client_connect(struct ptc_client_ctx *ctx, const char *url,
                                           const struct ptc_client_conn_opts *o,
                                           const struct ptc_client_cbs *cbs, void *arg, int *err);
/*
 * Closes the connection if open (no further callbacks, pending request callbacks are dropped) and
 * frees it. Safe from any callback, including the connection's own.
 */
void ptc_client_conn_free(struct ptc_client_conn *c);
/* Sends a WebSocket close with code and reason after the queued messages; on_close follows. */
void ptc_client_conn_close(struct ptc_client_conn *c, int code, const char *reason);

/* True once hello succeeded and until the connection ends. */
bool ptc_client_is_ready(const struct ptc_client_conn *c);
/* True once the connection ended (on_error or on_close was, or would have been, called). */
bool ptc_client_is_closed(const struct ptc_client_conn *c);
/* True once the socket is closed as well (after the relay's close frame, if it sent one). */
bool ptc_client_is_gone(const struct ptc_client_conn *c);
/* The scope from hello (PTC_MODE_*), 0 before ready. */
int ptc_client_scope(const struct ptc_client_conn *c);
/* The relay's max_frame from hello, 0 before ready. */
uint32_t ptc_client_max_frame(const struct ptc_client_conn *c);
/* The relay's `server` string from hello ("" before ready). */
const char *ptc_client_server_name(const struct ptc_client_conn *c);
/* The error that ended the connection (0 if none) and its message (""). */
int ptc_client_error(const struct ptc_client_conn *c);
const char *ptc_client_error_message(const struct ptc_client_conn *c);
/* The close code and reason received (0 / "" if none). */
int ptc_client_close_code(const struct ptc_client_conn *c);
const char *ptc_client_close_reason(const struct ptc_client_conn *c);
/* Counters of one connection (hello included). */
struct ptc_client_stats {
    uint64_t msgs_out, frames_out, bytes_out; /* messages and frames queued/written; bytes written */
    uint64_t msgs_in, frames_in, bytes_in;    /* messages and frames received; bytes received */
};
/* Copies the connection's counters: msgs_out counts whole messages written, frames_out frames queued
 * (raw messages count as none), bytes_* the WebSocket payload bytes. */
void ptc_client_get_stats(const struct ptc_client_conn *c, struct ptc_client_stats *out);
/* Replaces the user pointer passed to callbacks. */
void ptc_client_set_arg(struct ptc_client_conn *c, void *arg);

/* ---- sending --------------------------------------------------------------------------------- */

/*
 * Queues one frame. Frames queued back to back are batched into one WebSocket message of up to
 * batch_max bytes; a message is written in chunks, one per writable callback. Frames queued before
 * ready are sent after hello. 0, PTC_ENOMEM, PTC_ETOOBIG, or PTC_CLIENT_ESTATE once closed.
 */
int ptc_client_send_frame(struct ptc_client_conn *c, uint8_t type, const ptc_uuid *session,
                          const void *payload, size_t n);
/* INPUT, RESIZE and ACK frames for a session. */
int ptc_client_send_input(struct ptc_client_conn *c, const ptc_uuid *session, const void *data,
                          size_t n);
int ptc_client_send_resize(struct ptc_client_conn *c, const ptc_uuid *session, uint16_t cols,
                           uint16_t rows);
int ptc_client_send_ack(struct ptc_client_conn *c, const ptc_uuid *session, uint64_t count);
/*
 * Queues n raw bytes as exactly one WebSocket message of their own (binary, or text when text is
 * true), never batched with frames. For tests that send malformed input. 0 / PTC_ENOMEM / ESTATE.
 */
int ptc_client_send_raw(struct ptc_client_conn *c, const void *data, size_t n, bool text);
/* Bytes queued and not yet handed to the socket (for backpressure in load tests). */
size_t ptc_client_queued(const struct ptc_client_conn *c);

/*
 * A reply callback. status is 0 and rp the parsed REPLY (check rp->ok; views valid during the call
 * only), or status < 0 and rp NULL: PTC_CLIENT_ECLOSED when the connection ended first, or the
 * libptc parse error of a malformed REPLY.
 */
typedef void (*ptc_client_reply_cb)(struct ptc_client_conn *c, int status,
                                    const struct ptc_reply *rp, void *arg);

/*
 * Sends a REQUEST. req->id is assigned here (and returned in *id if id != NULL); req->op selects
 * the op and req->has its optional args. session names the target session (NULL: zero, the
 * connection). The op is recorded with the id so the REPLY is parsed as that op's result.
 */
int ptc_client_request(struct ptc_client_conn *c, const ptc_uuid *session, struct ptc_request *req,
                       ptc_client_reply_cb cb, void *arg, uint64_t *id);

/* ---- reading control ------------------------------------------------------------------------- */

/* Pauses (true) or resumes (false) reading from the socket (lws_rx_flow_control): a stalled client. */
void ptc_client_pause(struct ptc_client_conn *c, bool paused);
/* True while reading is paused by ptc_client_pause. */
bool ptc_client_is_paused(const struct ptc_client_conn *c);

/* ---- synchronous layer (sync.c; scripts, tests) ---------------------------------------------- */

/* Runs the loop until c is ready or has ended. 0, the error that ended it, or ETIMEOUT. */
int ptc_client_wait_ready(struct ptc_client_conn *c, int timeout_ms);
/* Runs the loop until c's socket is closed (ptc_client_is_gone). 0 or PTC_CLIENT_ETIMEOUT. */
int ptc_client_wait_gone(struct ptc_client_conn *c, int timeout_ms);

/* A REPLY kept after the loop returned: r's views point into raw. Free with ptc_client_reply_free. */
struct ptc_client_reply {
    struct ptc_reply r;
    uint8_t *raw;
    size_t rawlen;
};
void ptc_client_reply_free(struct ptc_client_reply *rep);

/*
 * Sends req (as ptc_client_request) and runs the loop until its REPLY arrives, the connection ends
 * or timeout_ms passes. Returns 0 with *rep filled (ok or not: check rep->r.ok), or a negative code
 * (ETIMEOUT, ECLOSED, a parse error, ...), *rep then zeroed. Always call ptc_client_reply_free.
 */
int ptc_client_call(struct ptc_client_conn *c, const ptc_uuid *session, struct ptc_request *req,
                    struct ptc_client_reply *rep, int timeout_ms);

/* Which frames ptc_client_wait_frame takes: type 0 = any type, session NULL = any session. */
struct ptc_client_filter {
    uint8_t type;
    const ptc_uuid *session;
};

/* A frame kept after the loop returned: f.payload points into raw. Free with ptc_client_frame_free. */
struct ptc_client_frame {
    struct ptc_frame f;
    uint8_t *raw;
};
void ptc_client_frame_free(struct ptc_client_frame *fr);

/*
 * Takes the oldest kept frame that matches filter (NULL: any), running the loop until one arrives
 * (only for connections whose on_frame is NULL). Frames that do not match stay kept, in order.
 * 0 with *out filled, or ETIMEOUT / ECLOSED (when the connection ended and nothing matching is
 * left) / ESTATE (on_frame is set).
 */
int ptc_client_wait_frame(struct ptc_client_conn *c, const struct ptc_client_filter *filter,
                          struct ptc_client_frame *out, int timeout_ms);
/* Number of frames kept for wait_frame (counted by ptclient.c, which keeps them). */
size_t ptc_client_frames_kept(const struct ptc_client_conn *c);

#endif
