/*
 * ptcat's internal API, grouped by source file. ptcat is the reference terminal client of the
 * relay: one short-lived process per command, one ptclient context, usually one connection. The
 * command files (cmd_*.c) parse their own flags and return an exit code (enum ptcat_exit); the
 * modules below find the relay, call ops, resolve names, own the terminal and stream a session.
 */
#ifndef PTCAT_H
#define PTCAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "ptc.h"
#include "ptclient.h"

#define PTCAT_NAME "ptcat/" PTYRELAY_VERSION
#define PTCAT_DEFAULT_URL "ws://127.0.0.1:7373/ptc1"
#define PTCAT_CALL_TIMEOUT_MS 15000

/* Exit codes (documented in docs/ptcat.1). */
enum ptcat_exit {
    PTCAT_OK = 0,
    PTCAT_UNMET = 1,   /* a wait ran out of time or cannot be met; a local I/O failure */
    PTCAT_USAGE = 2,   /* bad command line */
    PTCAT_CONN = 3,    /* cannot reach the relay, TLS, bad token, connection lost */
    PTCAT_REFUSED = 4, /* the relay refused the request: no such session, ambiguous, forbidden... */
};

/* Global options and the process' one client context. */
struct ptcat {
    const char *url_opt, *token_opt, *token_file_opt, *ca_file;
    bool insecure;
    char *url;   /* resolved URL (malloc) */
    char *token; /* resolved token (malloc); never printed */
    struct ptc_client_ctx *ctx;
    struct ptc_client_conn *conn; /* the synchronous connection of simple commands */
};

/* ---- main.c ---------------------------------------------------------------------------------- */

/* Prints "ptcat: <message>" to stderr. */
void ptcat_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prints a usage error and the command's hint; returns PTCAT_USAGE. */
int ptcat_usage(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- endpoint.c: finding the relay, connecting, calling ops ---------------------------------- */

/* Resolves URL and token from flags, environment and the default data dir. 0 or PTCAT_CONN. */
int endpoint_resolve(struct ptcat *p);
/* Creates the context if needed. 0 or PTCAT_CONN. */
int endpoint_ctx(struct ptcat *p);
/* Starts an asynchronous connection (resolve first). NULL with a message printed on a bad URL. */
struct ptc_client_conn *endpoint_open(struct ptcat *p, const struct ptc_client_cbs *cbs, void *arg);
/* Prints a clear sentence for a connection failure (err: PTC_CLIENT_E*). Returns PTCAT_CONN. */
int endpoint_report(const struct ptcat *p, int err, const char *message);
/* Resolves, connects p->conn synchronously and waits for hello. 0 or PTCAT_CONN (reported). */
int endpoint_connect(struct ptcat *p);
/*
 * Calls an op on p->conn and waits for its REPLY (timeout_ms < 0: none). 0 when the reply is ok;
 * otherwise the failure is printed and PTCAT_CONN (transport) or PTCAT_REFUSED (relay said no)
 * returned. rep must be freed with ptc_client_reply_free in every case.
 */
int endpoint_call(struct ptcat *p, const ptc_uuid *sid, struct ptc_request *rq,
                  struct ptc_client_reply *rep, int timeout_ms);
/* Closes and frees the connection and the context. */
void endpoint_close(struct ptcat *p);

/* ---- resolve.c: ID | NAME | unique id prefix ------------------------------------------------ */

/*
 * Finds the session meant by arg (a full id, a name, or a unique prefix of an id) with a `list` on
 * p->conn (connecting if needed). 0 with *out set, or an exit code with the reason printed.
 */
int resolve_session(struct ptcat *p, const char *arg, ptc_uuid *out);
/* A short text for a session: its name, or the first 8 characters of its id. */
void resolve_label(const struct ptc_info *i, char *out, size_t cap);
/* Calls `list` on p->conn (connecting if needed). 0 with *rep filled (free it with
 * ptc_client_reply_free), or an exit code with the reason printed and *rep already freed. */
int resolve_list(struct ptcat *p, struct ptc_client_reply *rep);

/* ---- term.c: the local terminal ------------------------------------------------------------- */

/* Saves the file status flags of fds 0-2 and installs handlers that restore them (and termios)
 * before a fatal signal takes the process; also registers the restore with atexit. */
void term_init(void);
/* Puts fd 0 (a tty) in raw mode. 0 or -errno. */
int term_raw(void);
/* Restores termios (if raw) and the saved flags of fds 0-2. Async-signal-safe, idempotent. */
void term_restore(void);
/* True while fd 0 is in raw mode. */
bool term_is_raw(void);
/* The size of the terminal on fd (0/1/2). 0 or -1. */
int term_size(int fd, uint16_t *cols, uint16_t *rows);

/* ---- out.c: writing to stdout/stderr --------------------------------------------------------- */

/* Writes all of p to fd, waiting in poll() when it is non-blocking and full. 0 or -errno. */
int out_write(int fd, const void *p, size_t n);
/* A status line on stderr: "[ptcat: ...]", with CR LF while the terminal is raw. */
void out_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Bytes gathered before they go out: output kept to print later, input to send. Zero-initialize;
 * the owner frees p. */
struct out_buf {
    uint8_t *p;
    size_t n, cap;
};
/* Appends d[0..n) to b, growing it. 0, or -1 when out of memory (b is unchanged then). */
int out_buf_add(struct out_buf *b, const void *d, size_t n);


/* ---- jsonout.c: JSON for scripts ------------------------------------------------------------ */

/* The session info as a JSON object (id as a text UUID). New reference. */
json_t *jsonout_info(const struct ptc_info *i);
/* Prints v to stdout (indented, one trailing newline) and releases it. 0 or PTCAT_UNMET. */
int jsonout_print(json_t *v);
/*
 * Parses the flags of a command whose only option is --json (and --help), leaving optind at the
 * first operand. Returns -1 to go on with *json set, or the command's exit code: PTCAT_OK after
 * printing help to stdout, PTCAT_USAGE (reported as cmd's error) for any other option.
 */
int jsonout_opts(const char *cmd, const char *help, int argc, char **argv, bool *json);

/* ---- stream.c: a session's output on stdout, live, with reconnects ------------------------- */

struct stream_opts {
    ptc_uuid id;
    const char *label;   /* name or id prefix for status lines */
    int mode;            /* PTC_MODE_INTERACTIVE or PTC_MODE_VIEW */
    bool tty;            /* raw local terminal: stdin is input, SIGWINCH resizes, detach key */
    bool input;          /* forward stdin (a tty or not) as INPUT */
    bool strip;          /* strip ANSI escapes from what is printed */
    bool have_offset;    /* start at offset (else the relay's first retained byte) */
    uint64_t offset;
    const uint8_t *detach; /* detach sequence: 1 or 2 bytes; NULL/0: none */
    size_t detach_len;
    bool quiet;          /* no "attached" status line */
};

/* Attaches and copies output to stdout until the session ends, the detach key, or a fatal error.
 * Reconnects with backoff when the connection drops and resumes after the last byte printed. */
int stream_run(struct ptcat *p, const struct stream_opts *o);

/* ---- cmd_*.c: the commands ------------------------------------------------------------------ */

int cmd_ls(struct ptcat *p, int argc, char **argv);
int cmd_new(struct ptcat *p, int argc, char **argv);
int cmd_attach(struct ptcat *p, int argc, char **argv);
int cmd_send(struct ptcat *p, int argc, char **argv);
int cmd_logs(struct ptcat *p, int argc, char **argv);
int cmd_wait(struct ptcat *p, int argc, char **argv);
int cmd_kill(struct ptcat *p, int argc, char **argv);
int cmd_signal(struct ptcat *p, int argc, char **argv);
int cmd_rm(struct ptcat *p, int argc, char **argv);
int cmd_info(struct ptcat *p, int argc, char **argv);

/* Parses a detach key spec ("C-\ d", "C-]", "none") into 1-2 bytes. 0 or -1. */
int cmd_attach_parse_detach(const char *spec, uint8_t out[2], size_t *len);
/* Attaches interactively to id with the default options (used by `new --attach`). */
int cmd_attach_id(struct ptcat *p, const ptc_uuid *id, const char *label, bool from_zero);

/* Parses an unsigned decimal (with an optional k/M suffix when allow_suffix). 0 or -1. */
int ptcat_parse_u64(const char *s, uint64_t *out);

#endif
