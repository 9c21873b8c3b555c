/*
 * relay: the ptyrelay daemon's internal API, grouped by source file.
 *
 * One thread runs libwebsockets' loop. server.c is the only file that includes libwebsockets; the
 * others see connections and PTYs through the server_* calls below. Objects: a struct relay (the one
 * context), sessions (a program in a PTY with an output ring), connections (a WebSocket client), and
 * attachments (a connection's cursor into a session's ring). Sessions and connections that die
 * inside a callback are marked dead, unlinked, and freed at the end of the loop turn (relay_reap).
 */
#ifndef RELAY_H
#define RELAY_H

#include <regex.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "ptc.h"
#include "pty.h"

#define RELAY_SCRATCH (64 * 1024)

struct relay;
struct session;
struct conn;
struct attach;

/* ---- log.c ----------------------------------------------------------------------------------- */

enum log_level { LOG_ERROR = 0, LOG_WARN, LOG_INFO, LOG_DEBUG };

/* Sets the threshold; lines above it are dropped. */
void log_set_level(int level);
/* Parses "error", "warn", "info", "debug". -1 if unknown. */
int log_level_from_name(const char *s);
/* One line to stderr: time, level, message. Never pass a token. */
void log_msg(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
/* Ends the process after a broken invariant. */
_Noreturn void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Allocation that aborts on failure. */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t m);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* Milliseconds since the Unix epoch, and a monotonic clock in ms / us. */
uint64_t now_wall_ms(void);
uint64_t now_ms(void);
uint64_t now_us(void);

/* ---- config.c -------------------------------------------------------------------------------- */

struct config {
    bool no_log;
    uint64_t log_max, log_total_max, db_max_bytes;
    char *listen;      /* "127.0.0.1:7373", "[::1]:7373", "unix:/path" */
    char *data_dir;
    uint32_t stall_timeout_s;
    uint64_t ring_max;
    uint32_t max_sessions;
    uint32_t max_connections;
    uint32_t max_attach_per_conn;
    uint64_t idle_after_ms;
    uint64_t attention_after_ms;
    uint32_t max_frame;
    uint32_t input_queue_max;
    int log_level;
    /* security (see docs/security.md) */
    char *tls_cert, *tls_key;
    bool insecure_no_tls;  /* allow a non-loopback listen without TLS */
    bool compress;         /* offer permessage-deflate */
    char **allow_origin;   /* extra Origins accepted on the upgrade (NULL-terminated) */
    char **allow_host;     /* extra Host names accepted (NULL-terminated) */
    char **allow_env;      /* loader variables `open` may set anyway (NULL-terminated) */
    uint32_t max_conns_per_peer;
    uint32_t login_fail_limit; /* failed hellos per peer per minute before 4429 */
    uint32_t max_argv, max_env, max_arg_len; /* `open` argument limits */
};

/* Fills defaults (data dir from $XDG_STATE_HOME/ptyrelay or ~/.local/state/ptyrelay). */
void config_defaults(struct config *c);
/*
 * Parses `serve` flags from argv[0..argc). 0, or -1 with a message for the user in err.
 * `--help` is not handled here.
 */
int config_parse_serve(struct config *c, int argc, char **argv, char *err, size_t errlen);
void config_free(struct config *c);
/* The default data dir (malloc'd). */
char *config_default_data_dir(void);
/* Whether name is listed in a NULL-terminated list (exact match). */
bool config_list_has(char *const *list, const char *name);

/* ---- guard.c: failed logins, Origin and Host, limit counters, `open` environment ------------ */

/* Kinds of configured limits, counted when reached (limit_hit). */
enum limit_kind {
    LIM_CONNS = 0,
    LIM_CONNS_PEER,
    LIM_SESSIONS,
    LIM_ATTACH,
    LIM_FRAME,
    LIM_INPUT_QUEUE,
    LIM_OPEN_ARGS,
    LIM_LOGIN_FAILS,
    LIM_INFLATE,
    LIM__COUNT
};
/*
 * Counts one hit of a limit and logs it ("limit: WHAT reached (N so far): detail"); at most one
 * line per kind per second, each with the running count.
 */
void limit_hit(struct relay *r, int kind, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/*
 * Failed logins. guard_peer_blocked: whether this peer is over its failure limit now.
 * guard_login_failed: records a refused hello of conn c (request id; counted says whether it
 * counts as a failure) and schedules its unauthorized REPLY and close after a delay that grows
 * with the peer's recent failures (close 4429 once over the limit); never blocks the loop.
 * guard_tick answers the refused hellos that are due.
 */
bool guard_peer_blocked(struct relay *r, const char *peer);
void guard_login_failed(struct relay *r, struct conn *c, uint64_t id, const char *why, bool counted);
void guard_tick(struct relay *r, uint64_t now);
/*
 * Origin and Host of WebSocket upgrades. guard_hosts_init records the relay's own names once the
 * port is known: the listen host:port, and the loopback names for a loopback or wildcard listen;
 * guard_hosts_add adds one more "host:port" (TLS certificate names). guard_upgrade_allowed checks
 * a Host header and an Origin header (NULL: absent); false with the reason in why.
 */
void guard_hosts_init(struct relay *r, const char *listen_host, int port, bool loopback,
                      bool wildcard);
void guard_hosts_add(struct relay *r, const char *name);
bool guard_upgrade_allowed(struct relay *r, const char *host, const char *origin, char *why,
                           size_t whylen);
/* The own names as one line for the log ("a, b, c"), into buf. */
void guard_hosts_text(struct relay *r, char *buf, size_t cap);
/* Whether an env name changes how programs are loaded (LD_*, GCONV_PATH, ...). */
bool guard_env_is_loader(const char *name, size_t n);
/* Frees guard.c's state. */
void guard_free(struct relay *r);

/* ---- ring.c: a session's output with u64 offsets --------------------------------------------- */

/*
 * Holds the most recent bytes of a stream whose offsets count from 0. Memory is allocated on first
 * use and doubled on demand up to `max`; beyond that the oldest bytes are dropped. A small
 * interface (append, read at offset, first/end offset) so the storage can later move into a memfd.
 */
struct ring {
    uint8_t *buf;
    size_t cap; /* power of two, 0 until first write */
    size_t max;
    uint64_t start; /* oldest offset held */
    uint64_t end;   /* offset of the next byte to be written */
};

void ring_init(struct ring *r, size_t max);
void ring_free(struct ring *r);
/*
 * Returns a pointer to contiguous space for up to *n bytes at offset `end` and lowers *n to what
 * is contiguous (at least 1 when *n > 0). Space may hold the oldest bytes, which are dropped by
 * ring_commit. Grows the buffer if below max.
 */
uint8_t *ring_reserve(struct ring *r, size_t *n);
/* Commits n bytes written at the pointer from ring_reserve. */
void ring_commit(struct ring *r, size_t n);
/* Appends bytes (copying). */
void ring_append(struct ring *r, const void *p, size_t n);
/*
 * Contiguous bytes at offset off: returns a pointer and sets *n (0 when off >= end). Offsets below
 * start are clamped to start; *at says where the returned bytes begin.
 */
const uint8_t *ring_peek(const struct ring *r, uint64_t off, size_t *n, uint64_t *at);
/* Copies up to n bytes from offset off (clamped to start, see *at) into dst. Returns bytes copied. */
size_t ring_copy(const struct ring *r, uint64_t off, void *dst, size_t n, uint64_t *at);
static inline uint64_t ring_start(const struct ring *r) { return r->start; }
static inline uint64_t ring_end(const struct ring *r) { return r->end; }

/* ---- ansi.c: text for `wait` patterns ------------------------------------------------------- */

/* The text window of a `wait`: libptc's stripper state plus the sliding buffer kept by callers. */
struct ansi {
    struct ptc_ansi p;
};
/*
 * Appends the printable text of in[0..n) to out (cap bytes, *len used), dropping escape sequences
 * (CSI, OSC, DCS, single ESC x), CR and other C0 controls except \n and \t, and NULs. When out is
 * full, the oldest half is dropped (a sliding window). out stays NUL-terminated.
 */
void ansi_strip(struct ansi *a, const uint8_t *in, size_t n, char *out, size_t cap, size_t *len);

/* ---- auth.c ---------------------------------------------------------------------------------- */

enum scope { SCOPE_NONE = 0, SCOPE_VIEW, SCOPE_CONTROL };

struct token {
    char *name;
    uint8_t hash[32]; /* SHA-256 of the token text */
    int scope;
    struct token *next;
};

/*
 * Ensures the data dir exists (0700) and holds an admin token: creates DIR/admin.token (0600) on
 * first start. Loads its hash. 0 or -errno; *created says whether it was made now.
 */
int auth_init(struct relay *r, bool *created);
void auth_free(struct relay *r);
/* Checks a presented token in constant time. Returns its struct token or NULL. */
const struct token *auth_check(struct relay *r, const char *tok, size_t n);
/* The same, from a hash already computed (Authorization header). */
const struct token *auth_check_hash(struct relay *r, const uint8_t h[32]);
/* Creates the data dir (mode 0700) if missing, and makes an existing one of ours private. 0 or -errno. */
int auth_data_dir_init(const char *dir);
/* Reloads tokens from the store; closes connections whose token was revoked. */
void auth_reload(struct relay *r);
/* Makes a new random token text "ptr_..." (NUL-terminated) into out (>= 64 bytes). */
int auth_token_new(char *out, size_t cap);
/* SHA-256 of a token. */
void auth_hash(const char *tok, size_t n, uint8_t out[32]);

/* ---- store.c: SQLite, the only file that includes sqlite3 ----------------------------------- */

struct store;

struct store_opts {
    uint64_t log_max;      /* per session; 0 = no cap */
    uint64_t total_max;    /* whole log; 0 = no cap */
    uint64_t db_max_bytes; /* a hard cap on the file (SQLITE_FULL past it); 0 = none */
};

/* A session's stored record. Strings: argv and env are JSON text. */
struct store_session {
    ptc_uuid id;
    char *name, *argv, *cwd, *env;
    uint16_t cols, rows;
    int64_t pid;
    int state, exit_code, signo, attention;
    uint64_t created_ms, updated_ms, start, end, idle_ttl_s;
};

/* Opens DIR/ptyrelay.db, creating and migrating it; `writer` starts the writer thread. */
int store_open(const char *dir, const struct store_opts *o, bool writer, struct store **out,
               char *err, size_t errlen);
/* Commits what is queued, stops the writer, closes. NULL is ignored. */
void store_close(struct store *st);
/* Waits until everything queued so far is committed. 0 or -ETIMEDOUT. */
int store_sync(struct store *st, int timeout_ms);
/* Log bytes dropped, write errors, and the last error text. */
void store_health(struct store *st, uint64_t *dropped, uint64_t *errors, char *last, size_t lastlen);
/* Queued writes (loop thread): never block on the disk. */
void store_session_put(struct store *st, const struct store_session *rec);
void store_session_delete(struct store *st, const ptc_uuid *id);
void store_output(struct store *st, const ptc_uuid *id, uint64_t off, uint8_t *data, size_t n);
void store_event(struct store *st, const char *kind, const ptc_uuid *sid, const char *token,
                 const char *peer, const char *detail);
void store_token_used(struct store *st, const char *name);
/* Reads (loop thread, bounded). */
int store_load_sessions(struct store *st, int (*cb)(void *arg, const struct store_session *r),
                        void *arg, char *err, size_t errlen);
long store_read(struct store *st, const ptc_uuid *id, uint64_t off, void *buf, size_t max,
                uint64_t *at);
uint64_t store_first_offset(struct store *st, const ptc_uuid *id);
bool store_changed(struct store *st);
int store_tokens(struct store *st,
                 int (*cb)(void *arg, const char *name, const uint8_t *hash, int scope,
                           uint64_t created, uint64_t last_used),
                 void *arg);
int store_token_add(struct store *st, const char *name, const uint8_t hash[32], int scope,
                    char *err, size_t errlen);
int store_token_revoke(struct store *st, const char *name, char *err, size_t errlen);
int store_events(struct store *st, const ptc_uuid *sid,
                 int (*cb)(void *arg, uint64_t ts, const ptc_uuid *sid, const char *kind,
                           const char *token, const char *peer, const char *detail),
                 void *arg);
char *store_json_strv(char *const *v, int n);
char **store_json_parse_strv(const char *text, int *n);

/* ---- session.c ------------------------------------------------------------------------------- */

struct input_chunk {
    struct input_chunk *next;
    struct attach *from; /* NULL once that attachment is gone */
    size_t len, pos;
    uint8_t data[];
};

struct session {
    struct relay *relay;
    struct session *next, *prev;
    ptc_uuid id;
    char idtext[PTC_UUID_STRLEN + 1];
    char *name;
    char **argv;
    struct ptc_str *argv_v; /* views of argv for info maps */
    int argc;
    char *cwd;
    pid_t pid;
    int state;     /* enum ptc_state */
    int attention; /* enum ptc_attention */
    int exit_code, signo;
    uint16_t cols, rows;
    uint64_t created_ms, updated_ms; /* wall clock */
    uint64_t last_output, last_activity; /* monotonic ms */
    uint64_t idle_ttl_ms;
    uint64_t kill_deadline; /* monotonic ms; 0 = no SIGKILL pending */
    uint64_t reaped_at;     /* monotonic ms when the child was reaped, 0 before */
    int wait_status;
    bool reaped, pty_closed, dead;
    struct pty_proc proc;
    void *pty_wsi; /* the adopted master (server.c) */
    struct ring ring;
    /* the log: bytes read but not yet handed to the store, from offset log_off */
    struct ptc_buf logbuf;
    uint64_t log_off;
    uint64_t log_first; /* first offset the log holds (cached), UINT64_MAX when none */
    char *env_json;     /* env additions as given to open, for the record */
    /* input */
    struct input_chunk *in_head, *in_tail;
    size_t in_bytes;
    /* attachments */
    struct attach *attach_head;
    uint32_t nclients;
    /* waits registered on this session */
    uint32_t nwaits;
};

struct session_open_args {
    const char *const *argv; /* NULL: login shell */
    const char *cwd;
    const char *const *env_add; /* "K=V" pairs added to the relay's env */
    uint16_t cols, rows;
    const char *name;
    uint64_t idle_ttl_s;
};

/*
 * Creates a session and spawns its program. 0 and *out, or a negative code with a message for the
 * client in err (bad argv/cwd: -ENOENT etc.; sessions limit: -EMFILE).
 */
int session_open(struct relay *r, const struct session_open_args *a, struct session **out, char *err,
                 size_t errlen);
struct session *session_find(struct relay *r, const ptc_uuid *id);
/* Reads the PTY (called when the master is readable). Returns -1 when the master is finished. */
int session_on_readable(struct session *s);
/* Writes queued input to the PTY (master writable). */
void session_on_writable(struct session *s);
/* The master fd was closed by the loop (HUP). */
void session_on_pty_closed(struct session *s);
/* A waitpid status for this session's child. */
void session_on_child(struct session *s, int status);
/*
 * Queues input from an attachment. Returns 0, or -ENOSPC when the queue is over its limit (the
 * bytes are still queued: the caller should stop reading the connection until it drains).
 */
int session_input(struct session *s, struct attach *from, const uint8_t *p, size_t n);
/* Whether the input queue has room below its limit again. */
bool session_input_has_room(const struct session *s);
int session_resize(struct session *s, uint16_t cols, uint16_t rows);
int session_signal(struct session *s, int signo);
/* SIGTERM to the group now, SIGKILL after grace_ms if still running. */
int session_kill(struct session *s, uint64_t grace_ms);
/* Removes an ended session (its attachments are dropped). */
void session_remove(struct session *s);
/* Periodic work: attention, idle ttl, kill grace, exit finalisation. */
void session_tick(struct session *s, uint64_t now);
/* Fills an info map for replies/events (views into the session; valid while it lives). */
void session_info(const struct session *s, struct ptc_info *i);
void session_fill_state(const struct session *s, struct ptc_statemsg *m);
/* Tells attachments and subscribers that state/attention changed. */
void session_changed(struct session *s);
void session_free(struct session *s);
/* Hands output read since the last call to the store (the tick calls it). */
void session_flush_log(struct session *s);
/* Saves the session's record (state, size...) to the store. */
void session_save(struct session *s);
/* Re-creates a session from its stored record (at start): ended, or `lost` if it was running. */
struct session *session_restore(struct relay *r, const struct store_session *rec);
/* The first offset still retained (log or ring). */
uint64_t session_first_offset(struct session *s);
/*
 * Copies up to max bytes of output at off into buf, from the ring or, below it, from the log.
 * *at says where they begin (> off: a gap). Returns the count (0 at the end).
 */
size_t session_read(struct session *s, uint64_t off, void *buf, size_t max, uint64_t *at);

/* ---- attach.c -------------------------------------------------------------------------------- */

struct attach {
    struct conn *conn;
    struct session *session;
    struct attach *next_in_conn;
    struct attach *next_in_session;
    int mode;        /* PTC_MODE_INTERACTIVE or PTC_MODE_VIEW */
    uint64_t cursor; /* next output offset to send */
    uint64_t window; /* 0 = none */
    uint64_t acked;  /* client's ACK */
    uint64_t in_written, in_acked; /* input bytes written to the PTY, and last ACK sent */
    bool state_pending, resize_pending;
    uint64_t in_total, in_audited; /* input bytes received, and how many the audit trail has */
};

struct attach *attach_new(struct conn *c, struct session *s, int mode, uint64_t offset,
                          uint64_t window);
struct attach *attach_find(struct conn *c, const ptc_uuid *sid);
/* Unlinks from both lists and frees; queued input from it is kept but unowned. */
void attach_free(struct attach *a);
/* Records input received since the last record in the audit trail (a byte count). */
void attach_audit_input(struct attach *a);
/* Whether there is output, STATE, RESIZE or ACK to send for this attachment. */
bool attach_pending(const struct attach *a);
/* Whether output waits that is not held back by a window (for stall detection). */
bool attach_output_waiting(const struct attach *a);
/*
 * Appends up to `budget` bytes of output frames (and any due RESIZE/STATE/ACK) to b. Returns the
 * number of output bytes appended.
 */
size_t attach_fill(struct attach *a, struct ptc_buf *b, size_t budget);
/* Marks every attachment of s for a STATE (and RESIZE) and asks their connections to write. */
void attach_notify_state(struct session *s, bool resize);
/* Asks the connections of every attachment of s to write (new output). */
void attach_notify_output(struct session *s);

/* ---- conn.c ---------------------------------------------------------------------------------- */

struct wait_req {
    struct wait_req *next;
    struct conn *conn;
    struct session *session;
    uint64_t id;
    int until;
    uint64_t idle_ms;
    uint64_t deadline; /* monotonic ms; 0 = none */
    bool have_re;
    regex_t re;
    struct ansi ansi;
    size_t textlen;
    char text[8192];
};

struct conn {
    struct relay *relay;
    struct conn *next, *prev;
    void *wsi;
    unsigned id;
    char peer[64];
    int scope;
    uint8_t token_hash[32];
    char *token_name;
    bool authed, subscribed, dead, write_asked, rx_paused;
    int close_code; /* when nonzero: close after flushing control */
    char close_reason[96];
    uint64_t created;     /* monotonic ms */
    uint64_t blocked_since; /* monotonic ms since output waits without a WRITEABLE; 0 = not */
    struct ptc_stream in;
    struct ptc_buf ctl;     /* queued control frames (REPLY, EVENT) */
    struct attach *attach_head;
    struct attach *rr_next; /* round-robin position */
    uint32_t nattach;
    struct wait_req *waits;
    uint64_t bytes_out;
    bool has_bearer;
    uint8_t bearer[32]; /* SHA-256 of an Authorization: Bearer token from the upgrade */
    struct input_memo *input_memos; /* input totals of sessions this conn detached from */
    bool login_failed;  /* a refused hello is waiting for its delayed answer */
};

/*
 * PTC1's input ACK counts all of a connection's INPUT to a session, so a detach keeps the total
 * here and a later attach of the same session on the same connection continues from it.
 */
struct input_memo {
    struct input_memo *next;
    ptc_uuid sid;
    uint64_t written;
};
/* Remembers an attachment's input total as it is freed. */
void conn_memo_input(struct conn *c, const ptc_uuid *sid, uint64_t written);
/* Takes back the total remembered for sid (0 if none). */
uint64_t conn_recall_input(struct conn *c, const ptc_uuid *sid);

struct conn *conn_new(struct relay *r, void *wsi, const char *peer);
/* Called for each received chunk of a WebSocket message. Returns -1 to close now. */
int conn_on_receive(struct conn *c, const void *p, size_t n, bool binary, bool final);
/*
 * Fills one outgoing message into b (which has LWS_PRE headroom). Returns its length, 0 when
 * nothing is due, or -1 when the connection should close now (close_code is set).
 */
long conn_on_writable(struct conn *c, struct ptc_buf *b);
/* The socket closed. The conn is unlinked and freed at the end of the loop turn. */
void conn_on_closed(struct conn *c);
/* Asks for a WRITEABLE callback if not already asked. */
void conn_want_write(struct conn *c);
/* Queues a control frame (REPLY/EVENT) built by the caller into c->ctl. */
void conn_queue_reply(struct conn *c, const struct ptc_reply *rp);
void conn_reply_error(struct conn *c, uint64_t id, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void conn_event_error(struct conn *c, const ptc_uuid *sid, int code, uint8_t type, const char *msg);
void conn_event_session(struct conn *c, const struct session *s, bool removed);
/* Closes with a code after what is queued is flushed. */
void conn_close(struct conn *c, int code, const char *reason);
/* Periodic: hello timeout, stall detection, waits. */
void conn_tick(struct conn *c, uint64_t now);
/*
 * Registers a `wait` or answers it at once. 0, or -1 with *code (a PTC_C_* code; bad_request is 0)
 * and msg set for the failed REPLY.
 */
int conn_wait_add(struct conn *c, struct session *s, const struct ptc_request *rq, int *code,
                  char *msg, size_t msglen);
/* A session gained output / changed state: re-evaluate the conn's waits on it. */
void conn_waits_on_output(struct session *s, const uint8_t *p, size_t n);
void conn_waits_on_state(struct session *s);
/* Drops waits on a session being removed (replying matched=false). */
void conn_waits_drop_session(struct session *s);
void conn_free(struct conn *c);

/* ---- ops.c ----------------------------------------------------------------------------------- */

/* Handles a REQUEST frame. Returns -1 when the connection must close (protocol error). */
int ops_dispatch(struct conn *c, const struct ptc_frame *f);

/* ---- server.c: the only file that includes libwebsockets ------------------------------------- */

int server_init(struct relay *r);
/* Runs the loop until shutdown completes. */
int server_run(struct relay *r);
void server_free(struct relay *r);
/* Adopts a PTY master into the loop; session_on_readable etc. get called. 0 or -1. */
int server_adopt_pty(struct relay *r, struct session *s, int fd);
/* Asks for a RAW_WRITEABLE on the PTY (queued input). */
void server_pty_want_write(struct session *s);
/* Closes the PTY wsi (the loop closes the fd). */
void server_pty_close(struct session *s);
void server_conn_want_write(struct conn *c);
void server_conn_rx_flow(struct conn *c, bool enable);
/* Drops a connection at once with a close code (sends the close frame when possible). */
void server_conn_close_now(struct conn *c, int code, const char *reason);

/* ---- main.c: the context --------------------------------------------------------------------- */

struct relay {
    struct config cfg;
    void *ctx;     /* struct lws_context */
    void *vhost;   /* struct lws_vhost */
    void *srv;     /* server.c's state */
    int listen_port;
    struct session *sessions;
    uint32_t nsessions;
    struct conn *conns;
    uint32_t nconns;
    unsigned next_conn_id;
    struct token *tokens;
    struct session *dead_sessions;
    struct conn *dead_conns;
    bool shutting_down;
    uint64_t shutdown_at;
    char **base_env;
    int nbase_env;
    struct login_fails *fails; /* guard.c: failed logins per peer */
    char **own_hosts;          /* guard.c: "host:port" names of this relay */
    bool tls, unix_listen;
    uint64_t limit_hits[LIM__COUNT];
    uint64_t limit_logged_ms[LIM__COUNT];
    struct store *store;
    bool log_output;  /* false with --no-log: sessions and events are kept, output is not */
    uint8_t *scratch; /* RELAY_SCRATCH bytes for reads from the log */
    uint64_t last_token_check, last_audit_flush, last_health;
    uint64_t health_dropped, health_errors;
};

/* Records an audit event (who: the connection, or NULL for the relay itself). */
void relay_audit(struct relay *r, const char *kind, const struct session *s, const struct conn *c,
                 const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Frees sessions and connections marked dead during this loop turn. */
void relay_reap(struct relay *r);
/* The periodic tick (every 100 ms). */
void relay_tick(struct relay *r);
/* Starts a clean shutdown: clients get 1001, programs SIGHUP. */
void relay_shutdown(struct relay *r);
/* True once clients are gone and children reaped (or the grace ran out and SIGKILL was sent). */
bool relay_shutdown_done(struct relay *r);
/* Sends EVENT session to every subscribed connection. */
void relay_broadcast_session(struct relay *r, const struct session *s, bool removed);

#endif
