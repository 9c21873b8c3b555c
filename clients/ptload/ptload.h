/*
 * ptload: the load harness's internal API, grouped by source file.
 *
 * One ptclient context drives every connection of a run from one thread. `struct load` is the run:
 * options, the client context, the deadline, the error count and the progress line. A `struct lconn`
 * wraps one ptclient connection and routes its frames to the `struct lsess` trackers attached to
 * it; a tracker counts a session's output bytes by offset (a gap is loss), checks them against
 * what the program is known to write, and notes when the STATE that reports the end arrived.
 * Scenarios (one file each) build on these and add their figures to one jansson object.
 */
#ifndef PTLOAD_H
#define PTLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#include "ptc.h"
#include "ptclient.h"

/* The 64-byte line `yes` repeats in the built-in generator: byte at offset i is line[i % 64]. */
#define LOAD_PATTERN "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_"
#define LOAD_PATTERN_LEN 64 /* with its newline */

struct load_opts {
    const char *url, *token;
    uint32_t sessions, connections, samples, flood, viewers, rate;
    uint64_t bytes;
    const char *file;
    double seconds;
    pid_t relay_pid;
    uint64_t window; /* attach windows of reading sessions (echo's flood, fanout, slow); 0 = none */
    bool quiet; /* no progress line */
};

struct load {
    struct load_opts o;
    struct ptc_client_ctx *ctx;
    const char *scenario;
    uint64_t t0_us;
    uint64_t errors;
    json_t *error_list; /* the first few error messages */
    const uint8_t *file_data; /* --file contents (mmap), for verifying */
    size_t file_len;
    uint64_t progress_at_us;
    bool progress_shown;
};

struct lsess;
struct lconn;

/* Hooks a scenario may set on a tracker; all optional. */
struct lsess_hooks {
    /* Output bytes at offset off arrived (after the tracker has counted them). */
    void (*on_output)(struct lsess *s, uint64_t off, const uint8_t *p, size_t n);
    /* The session reported its end (or the open failed: s->failed). */
    void (*on_end)(struct lsess *s);
    /* The open REPLY arrived and succeeded (s->id is set). */
    void (*on_opened)(struct lsess *s);
    /* The session is attached (open with attach, or attach): its output follows. */
    void (*on_attached)(struct lsess *s);
};

enum verify_mode { VERIFY_NONE = 0, VERIFY_PATTERN, VERIFY_FILE };

/* A session as one connection sees it. */
struct lsess {
    struct lconn *lc;
    ptc_uuid id;
    bool have_id, attached, ended, failed, cleaned;
    int state, exit_code;
    int verify;          /* enum verify_mode */
    uint64_t base;       /* offset where the known stream starts (after a ready mark) */
    uint64_t expect;     /* offset the known stream ends at (base + its bytes); 0 = unknown */
    uint64_t next;       /* next offset expected */
    uint64_t bytes;      /* output bytes received */
    uint64_t skipped;    /* bytes jumped over between OUTPUT offsets (the relay no longer held them) */
    uint64_t lost;       /* bytes still missing when the end was reported (lost at exit) */
    uint64_t window;     /* attach with this flow-control window and ACK what is consumed; 0 = none */
    uint64_t acked;      /* last offset ACKed */
    uint64_t dup;        /* bytes received twice (offset went back) */
    uint64_t bad;        /* bytes that differ from what the program writes */
    uint64_t end;        /* `end` of the final STATE */
    uint64_t t_open_us, t_attached_us, t_first_us, t_last_us, t_end_us;
    struct lsess_hooks hooks;
    void *user;
    uint32_t index;
};

/* Called when a connection ends (on_error or on_close). */
typedef void (*lconn_end_cb)(struct lconn *lc, void *user);

/* One WebSocket connection of the run. */
struct lconn {
    struct load *L;
    struct ptc_client_conn *c;
    uint32_t index;
    bool ready, ended;
    int err;        /* ptclient error that ended it before ready */
    int close_code; /* WebSocket close code once closed */
    char reason[128];
    uint64_t t_connect_us, t_ready_us, t_end_us;
    struct lsess **sess;
    uint32_t nsess, capsess;
    lconn_end_cb on_end;
    void (*on_ready)(struct lconn *lc);
    void *user;
};

/* ---- load.c: the run, connections, requests, cleanup ------------------------------------------ */

/* Sets up the run: client context, file data. 0 or -1 with a message on stderr. */
int load_init(struct load *L, const struct load_opts *o, const char *scenario);
void load_free(struct load *L);
/* Counts an error and keeps its message (the first 20) for the JSON. */
void load_error(struct load *L, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Microseconds since the run began. */
uint64_t load_elapsed_us(const struct load *L);
/* Wakes load_run so it re-checks its condition (from a callback). */
void load_poke(struct load *L);
/*
 * Services the loop until done(arg) is true or timeout_ms passes, printing the progress line
 * (what progress(arg, buf) writes) about four times a second. Returns true when done.
 */
bool load_run(struct load *L, bool (*done)(void *arg), void *arg, uint64_t timeout_ms,
              void (*progress)(void *arg, char *buf, size_t cap));
/* Clears the progress line. */
void load_progress_end(struct load *L);

/* Starts a connection (not waited for). NULL only for a bad URL (counted as an error). */
struct lconn *lconn_new(struct load *L, uint32_t index);
/* Connects n connections and runs until all are ready or ended (bounded). Returns how many are ready. */
uint32_t lconn_open_many(struct load *L, struct lconn **out, uint32_t n, uint64_t timeout_ms);
/* Frees the connection (closing it) and forgets its trackers (which stay owned by the caller). */
void lconn_free(struct lconn *lc);
/* Makes the tracker receive this connection's frames for its session id. */
void lconn_track(struct lconn *lc, struct lsess *s);
void lconn_untrack(struct lconn *lc, struct lsess *s);

/* Initialises a tracker. */
void lsess_init(struct lsess *s, struct lconn *lc, uint32_t index);
/* Sends `open` of argv (NULL-terminated) with attach mode (PTC_MODE_*; NONE: no attach). */
int lsess_open(struct lsess *s, const char *const *argv, int attach);
/* Sends `attach` at offset s->next with mode on the tracker's connection (s->id must be set). */
int lsess_attach(struct lsess *s, int mode);
/* Sends INPUT bytes. */
int lsess_input(struct lsess *s, const void *p, size_t n);
/* Sends `kill` with grace 0 (SIGKILL now); a session that already ended is left alone. */
int lsess_kill(struct lsess *s);
/* True once the tracker reports the end, or failed. */
static inline bool lsess_done(const struct lsess *s) { return s->ended || s->failed; }

/* Called once a session was removed (ok), or removing it failed (counted as an error). */
typedef void (*lsess_disposed_cb)(struct lsess *s, bool ok, void *arg);
/*
 * Sends `kill` (grace 0), then `wait` until exit, then `remove` for s over ctl; cb afterwards. 0, or a
 * negative code (cb is then not called).
 */
int lsess_dispose(struct lconn *ctl, struct lsess *s, lsess_disposed_cb cb, void *arg);
/*
 * Ends and removes every session in ss[0..n) that has an id: `kill` (grace 0) unless ended, `wait`
 * until exit, `remove`, over ctl (a ready connection). Bounded by timeout_ms. Returns how many were
 * removed; the others are counted as errors.
 */
uint32_t load_cleanup(struct load *L, struct lconn *ctl, struct lsess **ss, uint32_t n,
                      uint64_t timeout_ms);

/* The generator command: raw mode, then `yes LOAD_PATTERN | head -c bytes` (bytes 0: endless). */
char *load_gen_cmd(uint64_t bytes);
/* Raw mode, a ready mark "R", then one input byte is awaited before the generator runs. */
char *load_gen_cmd_go(uint64_t bytes);
/* The --file command: raw mode, then cat the file. */
char *load_file_cmd(const char *path);

/* ---- track.c: a session's output, counted by offset ------------------------------------------- */

/* Routes one frame (OUTPUT, STATE) to the tracker. */
void track_frame(struct lsess *s, const struct ptc_frame *f);
/*
 * Adds the totals of ss[0..n) to o: bytes, bytes_lost (every byte never received), and its two
 * parts bytes_skipped (gaps mid-stream: the reader fell behind what the relay retains) and
 * bytes_lost_at_exit (missing when the end was reported), bytes_duplicated, bytes_wrong.
 */
void track_totals(json_t *o, struct lsess **ss, uint32_t n);
/* Bytes lost, duplicated or wrong across ss[0..n) (what must be 0). */
uint64_t track_damage(struct lsess **ss, uint32_t n);
/* Bytes lost at exit + duplicated + wrong (what must be 0 even for a reader that falls behind). */
uint64_t track_faults(struct lsess **ss, uint32_t n);

/* ---- stats.c: samples and percentiles --------------------------------------------------------- */

struct stats {
    uint64_t *v;
    size_t n, cap;
};

void stats_init(struct stats *st, size_t cap);
void stats_free(struct stats *st);
void stats_add(struct stats *st, uint64_t v);
/* Sorts and adds p50_us, p90_us, p99_us, max_us (values in µs) and `samples` to o. */
void stats_latency_json(struct stats *st, json_t *o);
/* Sorts and returns the nearest-rank percentile p (0-100); 0 when empty. */
uint64_t stats_pct(struct stats *st, double p);
/* A {min, mean, max, spread} object of doubles (spread = (max - min) / mean). */
json_t *stats_spread_json(const double *v, size_t n);

/* ---- procstat.c: the relay's process figures from /proc --------------------------------------- */

struct procstat {
    bool ok;
    uint64_t rss_kb;
    uint64_t fds;
    double cpu_s; /* user + system */
};

/* Reads /proc/PID (pid 0: nothing, ok false). */
struct procstat procstat_read(pid_t pid);
/* {rss_kb, fds, cpu_s} or JSON null when not ok. */
json_t *procstat_json(const struct procstat *p);

/* A sampler of the relay's RSS over time (every period_ms while the loop runs). */
struct procsampler;
struct procsampler *procsampler_new(struct load *L, uint64_t period_ms);
/* Stops sampling and adds {rss_kb: {first, min, max, last}, samples: [[t_s, rss_kb]...]} to o. */
void procsampler_finish(struct procsampler *ps, json_t *o, const char *key);

/* ---- scenarios: one file each ----------------------------------------------------------------- */

/* Each runs its scenario and fills out; returns 0, or 1 when the run failed its own checks. */
int throughput_run(struct load *L, json_t *out);
int echo_run(struct load *L, json_t *out);
int fanout_run(struct load *L, json_t *out);
int idle_run(struct load *L, json_t *out);
int slow_run(struct load *L, json_t *out);
int churn_run(struct load *L, json_t *out);

/* One generator session read by nr readers at once, and optionally one client that stalls. */
struct fan {
    struct lconn *opener;   /* opens the session and sends the go byte */
    struct lconn **readers; /* nr connections, one reader each */
    uint32_t nr;
    struct lconn *stalled;  /* NULL, or a connection that attaches and then stops reading */
    uint64_t bytes;
    struct lsess gen;       /* the opener's tracker (holds the session id) */
    struct lsess *rs;       /* nr reader trackers */
    struct lsess st;        /* the stalled client's tracker */
    uint64_t t_go_us;
};
/* Opens the session, attaches everyone, sends the go byte, runs until the readers saw the end. */
int fanout_phase(struct load *L, struct fan *f, uint64_t timeout_ms);
/* Each reader's bytes per second (from the go byte to its end STATE); returns how many. */
size_t fanout_rates(const struct fan *f, double *rates);

/* Shared by echo and idle: measures n round trips on s (an interactive `cat` in raw mode). */
int echo_measure(struct load *L, struct lsess *s, uint32_t samples, uint32_t warmup,
                 uint64_t timeout_ms, json_t *out);
/* The command of an echo session: raw mode, no echo, prints "R", then cat. */
extern const char *const echo_argv[];

#endif
