/*
 * The integration-test harness: starts the real ptyrelay (PTYRELAY_BIN) on 127.0.0.1 port 0 with
 * a temporary data dir, keeps everything it writes to stderr/stdout in a buffer (filled by a
 * drain thread) so tests can search its log, and gives tests thin wrappers over ptclient to
 * connect, send raw WebSocket messages, call ops and wait for frames. Every wait waits on an event
 * (the pipe, the loop, a pidfd) and has a timeout; nothing sleeps.
 *
 * One relay and one client context per test process (criterion runs each test in its own worker
 * process). At exit, a relay still running is stopped and its temp dir removed. Functions whose
 * name ends in _try return an error code; the others fail the current test with a clear message.
 */
#ifndef HARNESS_H
#define HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "ptc.h"
#include "ptclient.h"

/* Default timeout of every wait, in milliseconds (override with env H_TIMEOUT_MS). */
#define H_TIMEOUT_MS 10000

/* The timeout in effect: H_TIMEOUT_MS, or the environment's H_TIMEOUT_MS. */
int h_timeout_ms(void);

/* ---- the relay process ----------------------------------------------------------------------- */

/*
 * Starts `PTYRELAY_BIN serve --listen 127.0.0.1:0 --data DIR extra...` (extra NULL-terminated)
 * with a fresh DIR from mkdtemp under /tmp, waits for the "listening on ws://..." line (on the
 * pipe, with the timeout), parses the port and reads DIR/admin.token. 0 or a negative errno; the
 * reason is then in h_relay_error().
 */
int h_relay_try_startv(const char *const *extra);
/* Same, reusing the data dir of the relay last stopped with h_relay_stop_keep (restarts). */
int h_relay_try_restartv(const char *const *extra);
/* As h_relay_try_startv, failing the test (with the log) on error. */
void h_relay_startv(const char *const *extra);
void h_relay_restartv(const char *const *extra);
/* h_relay_start("--flag", "value", ...) and h_relay_start() with no extra args. */
#define h_relay_start(...) h_relay_startv((const char *const[]){NULL, ##__VA_ARGS__, NULL} + 1)
#define h_relay_restart(...) h_relay_restartv((const char *const[]){NULL, ##__VA_ARGS__, NULL} + 1)

/*
 * Sends SIGTERM, waits (bounded by the timeout) for the relay to exit and removes the data dir.
 * Returns the wait status (test with WIFEXITED/WEXITSTATUS), or -1 if it had to be SIGKILLed or
 * no relay was running.
 */
int h_relay_stop(void);
/* As h_relay_stop, but keeps the data dir for h_relay_restart. */
int h_relay_stop_keep(void);
/*
 * h_relay_stop, then fails the test if the relay's log holds a sanitizer report (ASan, UBSan).
 * Tests call it last: an assertion in a criterion .fini does not fail the test. Returns the status
 * h_relay_stop returned.
 */
int h_relay_stop_checked(void);
/* As h_relay_stop_checked, and fails the test unless the relay exited 0 (a clean SIGTERM stop). */
void h_relay_stop_clean(void);
/* Sends sig to the relay (e.g. SIGKILL to simulate a crash); h_relay_stop then reaps it. */
void h_relay_signal(int sig);
/* Runs until the relay exits by itself (bounded). The wait status, or -1 on timeout. */
int h_relay_wait_exit(int timeout_ms);

/* The running relay's pid (0 if none), port, ws:// (or wss://) URL, admin token and data dir. */
pid_t h_relay_pid(void);
int h_relay_port(void);
const char *h_relay_url(void);
const char *h_relay_token(void);
const char *h_relay_dir(void);
/* Why the last start failed (with the relay's log so far). */
const char *h_relay_error(void);

/* True if the relay's output so far contains s. */
bool h_relay_log_contains(const char *s);
/* Waits until the relay's output contains s (bounded). true if it appeared. */
bool h_relay_log_wait(const char *s, int timeout_ms);
/* A malloc'ed copy of the relay's output so far (the caller frees it). */
char *h_relay_log(void);

/* ---- clients --------------------------------------------------------------------------------- */

/* The process' client context (created on first use, freed at exit). */
struct ptc_client_ctx *h_ctx(void);

/*
 * Connects to url (NULL: the relay's) with token (NULL: the admin token) and waits for ready or
 * the end. Returns 0 with *out set, or the ptclient error with *out still set (so the test can read
 * ptc_client_error_message / close codes; free it with h_close). Frames are kept for h_wait_frame.
 */
int h_connect_try(const char *url, const char *token, const struct ptc_client_conn_opts *o,
                  struct ptc_client_conn **out);
/* Connects to the relay with the admin token, failing the test unless it becomes ready. */
struct ptc_client_conn *h_connect(void);
/* Same with another token. */
struct ptc_client_conn *h_connect_token(const char *token);
/* Frees a connection (closing it if open). NULL is ignored. */
void h_close(struct ptc_client_conn *c);

/* Queues bytes as one binary WebSocket message of their own and runs until they are written. */
int h_send_raw(struct ptc_client_conn *c, const void *data, size_t n);
/* Runs the loop until everything queued on c is written (bounded). 0 or PTC_CLIENT_ETIMEOUT. */
int h_flush(struct ptc_client_conn *c);

/* ptc_client_call with the harness timeout. */
int h_call(struct ptc_client_conn *c, const ptc_uuid *session, struct ptc_request *req,
           struct ptc_client_reply *rep);
/* A request with no arguments (list, info, detach, subscribe, remove...), failing the test if no
 * REPLY arrives; returns with *rep filled (check rep->r.ok). */
void h_request_op(struct ptc_client_conn *c, int op, const ptc_uuid *session,
                  struct ptc_client_reply *rep);

/* Waits for a frame of type (0: any) and session (NULL: any). 0 or a ptclient error. */
int h_wait_frame(struct ptc_client_conn *c, uint8_t type, const ptc_uuid *session,
                 struct ptc_client_frame *out, int timeout_ms);
/* Waits until the socket is closed; returns the close code (1006 if none came), -1 on timeout. */
int h_wait_close(struct ptc_client_conn *c, int timeout_ms);

/* ---- sessions and their output -------------------------------------------------------------- */

/* Fails the test with what, the ptclient error rc and the relay's log (for diagnosis). */
void h_fail_with_log(const char *what, int rc) __attribute__((noreturn));

/*
 * Opens a session running argv (NULL-terminated, at most 31 words), attached with mode attach
 * when nonzero. Fails the test unless the REPLY is ok with state running and a pid; returns the
 * session's id (and its pid in *pid if pid is not NULL).
 */
ptc_uuid h_open_argv(struct ptc_client_conn *c, const char *const *argv, int attach, pid_t *pid);

/*
 * What one attachment received: OUTPUT (whose offsets must be contiguous, or with allow_gap may
 * only skip forward), the last STATE, ACK and RESIZE. Set it up with h_out_init, then set
 * allow_gap or pat if wanted. data holds every OUTPUT byte with a NUL after them (NULL until the
 * first OUTPUT); the caller frees it.
 */
struct h_out {
    uint8_t *data;
    size_t len, cap;
    uint64_t first, next; /* offsets: the first one seen and the next one expected */
    uint64_t bytes;       /* OUTPUT bytes received */
    uint64_t gaps;        /* bytes skipped between OUTPUT frames (only with allow_gap) */
    bool any, allow_gap;
    uint8_t (*pat)(uint64_t off);    /* if set, the byte expected at each offset */
    int state;                       /* last STATE's state, -1 if none */
    int attention, exit_code, signo; /* from the last STATE: -1, -1, 0 if absent */
    int nstate;
    uint64_t state_end;
    uint64_t acked; /* last input ACK */
    int nresize;
    uint16_t cols, rows; /* last RESIZE */
};

void h_out_init(struct h_out *o);
/* Takes one frame into o, asserting that it parses and that OUTPUT offsets and bytes are right. */
void h_out_feed(struct h_out *o, const struct ptc_frame *f);
/* Waits for one frame of type (0: any) of session sid and feeds it to o; fails on timeout. */
void h_out_step(struct ptc_client_conn *c, const ptc_uuid *sid, struct h_out *o, uint8_t type);
/* Feeds frames of sid until a STATE says the session ended (exited or killed). */
void h_out_until_end(struct ptc_client_conn *c, const ptc_uuid *sid, struct h_out *o);
/* Feeds frames of sid until the output collected so far contains needle. */
void h_out_until_text(struct ptc_client_conn *c, const ptc_uuid *sid, struct h_out *o,
                      const char *needle);
/* Feeds frames of sid until the next expected offset is at least end. */
void h_out_until_offset(struct ptc_client_conn *c, const ptc_uuid *sid, struct h_out *o,
                        uint64_t end);

/* Waits for a RESIZE of session sid and fails the test unless it says cols x rows. */
void h_expect_resize(struct ptc_client_conn *c, const ptc_uuid *sid, uint16_t cols, uint16_t rows);

/* ---- plain HTTP ------------------------------------------------------------------------------ */

/*
 * Sends a raw request (the whole text, e.g. "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n") to the
 * relay's port over a plain TCP socket and reads the response until the peer closes, cap is full
 * or the header and Content-Length body are in. Returns the HTTP status code, or a negative errno
 * (-ETIMEDOUT, -ECONNREFUSED, -EPROTO when it does not look like HTTP). resp may be NULL.
 */
int h_http_raw(const char *request, char *resp, size_t cap);
/* GET path with Connection: close. Returns the status code (or negative as above). */
int h_http_get(const char *path, char *body, size_t cap);

/* ---- misc ------------------------------------------------------------------------------------ */

/*
 * A self-signed certificate (P-256, SAN IP:127.0.0.1 and DNS:localhost) and its key, as PEM file
 * paths, for `--tls-cert`/`--tls-key` and as the client's ca_file. Created once per process in a
 * temp dir that is removed at exit. With them, h_relay_start sees "listening on wss://..." and
 * h_relay_url() is a wss:// URL. h_ctx() trusts this certificate when it is created after this
 * call, so call it before the first connection of the test.
 */
void h_tls_files(const char **cert, const char **key);

/* A TCP port on 127.0.0.1 that nothing listens on now (bound to port 0, then closed). */
int h_free_port(void);

/* Removes dir and everything below it, not following symlinks; errors are ignored. */
void h_rmtree(const char *dir);

#endif
