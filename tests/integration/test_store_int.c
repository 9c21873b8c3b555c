/*
 * Integration tests of the relay's store (issue 4): the real ptyrelay on 127.0.0.1 with a temporary
 * data dir, driven by the libptc client and by the `ptyrelay token` / `ptyrelay events` commands.
 * They cover replay below the ring from the log, restart with `lost` sessions, durability after
 * kill -9 during a flood, retention caps, tokens and revocation, the audit trail, a newer schema
 * refused at start, and a database that hits its size cap while a session floods.
 * Output is a deterministic pattern (seq -w, or a 64-byte `yes` line, in raw mode so no CR is
 * added) so every byte can be checked at its offset. Waits are on frames, replies, the relay's log
 * or a child's pipe, each bounded; the few "within about a second" checks poll a condition with
 * the client loop as the clock.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

extern char **environ;

static void teardown(void)
{
    h_relay_stop();
}

TestSuite(store, .fini = teardown, .timeout = 60);

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- deterministic output -------------------------------------------------------------------- */

/* `seq -w 1 N` for N = 60000: "00001\n" ... "60000\n", 6 bytes a line. */
#define SEQ_N 60000
#define SEQ_LEN ((uint64_t)SEQ_N * 6)

static uint8_t seq_byte(uint64_t off)
{
    uint64_t line = off / 6 + 1;
    int col = (int)(off % 6);
    if (col == 5)
        return '\n';
    static const uint64_t div[5] = {10000, 1000, 100, 10, 1};
    return (uint8_t)('0' + (line / div[col]) % 10);
}

/* The `yes` line of the flood tests: 63 characters and a newline. */
static const char YES_LINE[] = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ!";

static uint8_t yes_byte(uint64_t off)
{
    size_t i = (size_t)(off % 64);
    return i == 63 ? '\n' : (uint8_t)YES_LINE[i];
}

/* The seq output twice over (a program that runs seq, waits, runs it again). */
static uint8_t seq2_byte(uint64_t off)
{
    return seq_byte(off % SEQ_LEN);
}

/* "go\n", then the yes pattern. */
static uint8_t go_yes_byte(uint64_t off)
{
    return off < 3 ? (uint8_t) "go\n"[off] : yes_byte(off - 3);
}

/* Checks data at offset off against a pattern; returns the first bad offset or UINT64_MAX. */
static uint64_t check_bytes(uint8_t (*pat)(uint64_t), uint64_t off, const uint8_t *d, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (d[i] != pat(off + i))
            return off + i;
    return UINT64_MAX;
}

/* ---- requests -------------------------------------------------------------------------------- */

#define SH(script) ((const char *const[]){"/bin/sh", "-c", script, NULL})

/* Waits (op wait, bounded by the relay) until the session ended. */
static void wait_exit(struct ptc_client_conn *c, const ptc_uuid *id)
{
    struct ptc_request rq = {.op = PTC_OP_WAIT,
                             .has = PTC_HAS_UNTIL | PTC_HAS_TIMEOUT,
                             .until = PTC_UNTIL_EXIT,
                             .timeout_ms = (uint64_t)h_timeout_ms()};
    struct ptc_client_reply rep;
    cr_assert_eq(h_call(c, id, &rq, &rep), 0);
    cr_assert(rep.r.ok, "wait: %.*s", (int)rep.r.message.n, rep.r.message.p);
    cr_assert(rep.r.matched, "the session did not end in time");
    ptc_client_reply_free(&rep);
}

/* Waits until the session's output matches a regex. */
static void wait_match(struct ptc_client_conn *c, const ptc_uuid *id, const char *re)
{
    struct ptc_request rq = {.op = PTC_OP_WAIT,
                             .has = PTC_HAS_UNTIL | PTC_HAS_TIMEOUT | PTC_HAS_PATTERN,
                             .until = PTC_UNTIL_MATCH,
                             .pattern = ptc_str_c(re),
                             .timeout_ms = (uint64_t)h_timeout_ms()};
    struct ptc_client_reply rep;
    cr_assert_eq(h_call(c, id, &rq, &rep), 0);
    cr_assert(rep.r.ok, "wait: %.*s", (int)rep.r.message.n, rep.r.message.p);
    cr_assert(rep.r.matched, "no match for '%s' in time", re);
    ptc_client_reply_free(&rep);
}

static struct ptc_info info_of(struct ptc_client_conn *c, const ptc_uuid *id)
{
    struct ptc_client_reply rep;
    h_request_op(c, PTC_OP_INFO, id, &rep);
    cr_assert(rep.r.ok, "info: %.*s", (int)rep.r.message.n, rep.r.message.p);
    struct ptc_info i = rep.r.info;
    i.argv = NULL;
    i.argc = 0;
    i.name = i.cwd = (struct ptc_str){0};
    ptc_client_reply_free(&rep);
    return i;
}

/* Attaches at offset (mode view unless interactive); returns the reply's start. */
static uint64_t attach_mode_at(struct ptc_client_conn *c, const ptc_uuid *id, int mode,
                               uint64_t off, uint64_t *end, int *state)
{
    struct ptc_request rq = {
        .op = PTC_OP_ATTACH, .has = PTC_HAS_OFFSET | PTC_HAS_MODE, .offset = off, .mode = mode};
    struct ptc_client_reply rep;
    cr_assert_eq(h_call(c, id, &rq, &rep), 0);
    cr_assert(rep.r.ok, "attach: %.*s", (int)rep.r.message.n, rep.r.message.p);
    uint64_t start = rep.r.start;
    if (end)
        *end = rep.r.end;
    if (state)
        *state = rep.r.state;
    ptc_client_reply_free(&rep);
    return start;
}

static uint64_t attach_at(struct ptc_client_conn *c, const ptc_uuid *id, uint64_t off,
                          uint64_t *end, int *state)
{
    return attach_mode_at(c, id, PTC_MODE_VIEW, off, end, state);
}

/* What a series of `read`s from an offset returned. */
struct readout {
    uint64_t first; /* offset of the first byte returned */
    uint64_t next;  /* offset after the last byte */
    bool truncated; /* the first read said bytes before `first` are gone */
    uint64_t calls;
};

/*
 * Reads from offset `from` until `end` with `read` requests of max bytes, checking each byte
 * against pat and that each read continues exactly where the previous one stopped.
 */
static struct readout read_range(struct ptc_client_conn *c, const ptc_uuid *id, uint64_t from,
                                 uint64_t end, uint64_t max, uint8_t (*pat)(uint64_t))
{
    struct readout ro = {.first = UINT64_MAX, .next = from};
    for (int i = 0; i < 100000 && ro.next < end; i++) {
        struct ptc_request rq = {
            .op = PTC_OP_READ, .has = PTC_HAS_OFFSET | PTC_HAS_MAX, .offset = ro.next, .max = max};
        struct ptc_client_reply rep;
        cr_assert_eq(h_call(c, id, &rq, &rep), 0);
        cr_assert(rep.r.ok, "read: %.*s", (int)rep.r.message.n, rep.r.message.p);
        ro.calls++;
        if (ro.first == UINT64_MAX) {
            ro.first = rep.r.offset;
            ro.truncated = rep.r.truncated;
        } else {
            cr_assert_eq(rep.r.offset, ro.next, "read at %llu returned offset %llu (a gap)",
                         (unsigned long long)ro.next, (unsigned long long)rep.r.offset);
            cr_assert(!rep.r.truncated);
        }
        cr_assert_gt(rep.r.data.n, 0, "read at %llu returned nothing before end %llu",
                     (unsigned long long)ro.next, (unsigned long long)end);
        cr_assert_eq(rep.r.next, rep.r.offset + rep.r.data.n);
        uint64_t bad = check_bytes(pat, rep.r.offset, (const uint8_t *)rep.r.data.p, rep.r.data.n);
        cr_assert_eq(bad, UINT64_MAX, "read: wrong byte at offset %llu", (unsigned long long)bad);
        ro.next = rep.r.next;
        ptc_client_reply_free(&rep);
    }
    cr_assert_eq(ro.next, end);
    return ro;
}

/* ---- the ptyrelay command -------------------------------------------------------------------- */

/*
 * Runs `ptyrelay args... --data DIR` (args NULL-terminated) and collects its stdout and stderr,
 * bounded by the harness timeout. Returns the exit status (or -1 if it did not end in time).
 */
static int run_cli(const char *const *args, char *out, size_t outcap, char *err, size_t errcap)
{
    const char *argv[32];
    int n = 0;
    argv[n++] = PTYRELAY_BIN;
    for (; *args && n < 28; args++)
        argv[n++] = *args;
    argv[n++] = "--data";
    argv[n++] = h_relay_dir();
    argv[n] = NULL;
    int po[2], pe[2];
    cr_assert_eq(pipe2(po, O_CLOEXEC), 0);
    cr_assert_eq(pipe2(pe, O_CLOEXEC), 0);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, po[1], 1);
    posix_spawn_file_actions_adddup2(&fa, pe[1], 2);
    pid_t pid;
    int rc = posix_spawn(&pid, PTYRELAY_BIN, &fa, NULL, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(po[1]);
    close(pe[1]);
    cr_assert_eq(rc, 0, "spawn %s: %s", PTYRELAY_BIN, strerror(rc));
    size_t lens[2] = {0, 0};
    char *bufs[2] = {out, err};
    size_t caps[2] = {outcap, errcap};
    struct pollfd pf[2] = {{.fd = po[0], .events = POLLIN}, {.fd = pe[0], .events = POLLIN}};
    uint64_t until = mono_ms() + (uint64_t)h_timeout_ms();
    int open_fds = 2;
    for (int guard = 0; guard < 10000 && open_fds && mono_ms() < until; guard++) {
        if (poll(pf, 2, (int)(until - mono_ms())) <= 0)
            continue;
        for (int k = 0; k < 2; k++) {
            if (pf[k].fd < 0 || !pf[k].revents)
                continue;
            char tmp[4096];
            ssize_t r = read(pf[k].fd, tmp, sizeof tmp);
            if (r <= 0) {
                close(pf[k].fd);
                pf[k].fd = -1;
                open_fds--;
                continue;
            }
            size_t take = (size_t)r < caps[k] - 1 - lens[k] ? (size_t)r : caps[k] - 1 - lens[k];
            memcpy(bufs[k] + lens[k], tmp, take);
            lens[k] += take;
        }
    }
    out[lens[0]] = 0;
    err[lens[1]] = 0;
    for (int k = 0; k < 2; k++)
        if (pf[k].fd >= 0)
            close(pf[k].fd);
    int st = 0;
    for (int guard = 0; guard < 1000; guard++) {
        pid_t w = waitpid(pid, &st, open_fds ? WNOHANG : 0);
        if (w == pid)
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        if (w < 0 && errno != EINTR)
            break;
        if (w == 0) {
            kill(pid, SIGKILL);
            open_fds = 0;
        }
    }
    return -1;
}

#define CLI(out, err, ...)                                                                         \
    run_cli((const char *const[]){__VA_ARGS__, NULL}, out, sizeof out, err, sizeof err)

/* `ptyrelay events --json [--session ID]` parsed: one JSON object per line. */
static json_t *events_json(const char *session)
{
    static char out[1 << 20];
    char err[4096];
    int st = session ? CLI(out, err, "events", "--json", "--session", session)
                     : CLI(out, err, "events", "--json");
    cr_assert_eq(st, 0, "ptyrelay events: %d: %s", st, err);
    json_t *arr = json_array();
    char *save = NULL;
    for (char *line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        json_error_t je;
        json_t *o = json_loads(line, 0, &je);
        cr_assert_not_null(o, "events --json line is not JSON (%s): %s", je.text, line);
        cr_assert(json_is_object(o), "not an object: %s", line);
        json_array_append_new(arr, o);
    }
    return arr;
}

/* The first event of a kind in arr (NULL if none). */
static json_t *event_find(json_t *arr, const char *kind)
{
    size_t i;
    json_t *o;
    json_array_foreach(arr, i, o)
    {
        if (!strcmp(json_string_value(json_object_get(o, "event")) ?: "", kind))
            return o;
    }
    return NULL;
}

/* Polls `ptyrelay events` until an event of this kind appears (bounded; the writer commits in
 * batches). The client loop is the clock between polls. */
static json_t *events_until(const char *session, const char *kind)
{
    uint64_t until = mono_ms() + (uint64_t)h_timeout_ms();
    for (int i = 0; i < 1000; i++) {
        json_t *arr = events_json(session);
        if (event_find(arr, kind) || mono_ms() >= until)
            return arr;
        json_decref(arr);
        ptc_client_run(h_ctx(), 50);
    }
    return events_json(session);
}

/* ---- replay across the ring and the log ------------------------------------------------------ */

Test(store, attach_and_read_from_0_replay_the_log_below_a_small_ring)
{
    h_relay_start("--ring-max", "4096");
    struct ptc_client_conn *c = h_connect();
    /* 360000 bytes, then it waits for a line, then 360000 more. */
    ptc_uuid id =
        h_open_argv(c, SH("stty raw -echo; seq -w 1 60000; read x; seq -w 1 60000"), 0, NULL);
    wait_match(c, &id, "60000");
    /* A client attaching from 0 now gets the log, then the ring, then live output. */
    struct h_out o;
    h_out_init(&o);
    o.pat = seq2_byte;
    uint64_t end = 0;
    uint64_t start = attach_mode_at(c, &id, PTC_MODE_INTERACTIVE, 0, &end, NULL);
    cr_assert_eq(start, 0, "attach from 0 started at %llu", (unsigned long long)start);
    cr_assert_eq(end, SEQ_LEN);
    h_out_until_offset(c, &id, &o, SEQ_LEN);
    cr_assert_eq(o.first, 0);
    cr_assert_eq(o.next, SEQ_LEN, "got %llu bytes", (unsigned long long)o.next);
    cr_assert_eq(ptc_client_send_input(c, &id, "\n", 1), 0);
    h_out_until_end(c, &id, &o);
    cr_assert_eq(o.state, PTC_ST_EXITED);
    cr_assert_eq(o.next, 2 * SEQ_LEN, "got %llu bytes in all", (unsigned long long)o.next);
    cr_assert_eq(o.state_end, 2 * SEQ_LEN);
    cr_assert_eq(o.bytes, 2 * SEQ_LEN, "each byte exactly once");

    /* read from 0 (no offset given: from the first retained) in 64 KiB steps. */
    struct readout ro = read_range(c, &id, 0, 2 * SEQ_LEN, 65536, seq2_byte);
    cr_assert_eq(ro.first, 0);
    cr_assert(!ro.truncated);
    cr_assert_geq(ro.calls, SEQ_LEN / 65536);
    /* And a second client attaching from 0 after the end gets every byte once, then the STATE. */
    struct ptc_client_conn *c2 = h_connect();
    struct h_out o2;
    h_out_init(&o2);
    o2.pat = seq2_byte;
    cr_assert_eq(attach_at(c2, &id, 0, NULL, NULL), 0);
    h_out_until_offset(c2, &id, &o2, 2 * SEQ_LEN);
    cr_assert_eq(o2.first, 0);
    cr_assert_eq(o2.bytes, 2 * SEQ_LEN);
    free(o.data);
    free(o2.data);
    struct ptc_info in = info_of(c, &id);
    cr_assert_eq(in.start, 0);
    cr_assert_eq(in.end, 2 * SEQ_LEN);
    h_close(c2);
    h_close(c);
}

Test(store, attach_from_0_during_a_flood_is_contiguous)
{
    h_relay_start("--ring-max", "4096");
    struct ptc_client_conn *c = h_connect();
    /* ~6 MiB of the yes pattern while the client replays from 0: log, queue and ring meet. */
    char script[256];
    snprintf(script, sizeof script, "stty raw -echo; echo go; read x; yes '%s' | head -c 6291456",
             YES_LINE);
    ptc_uuid id = h_open_argv(c, SH(script), PTC_MODE_INTERACTIVE, NULL);
    struct h_out first;
    h_out_init(&first);
    first.pat = go_yes_byte;
    h_out_until_offset(c, &id, &first, 3);
    cr_assert_eq(ptc_client_send_input(c, &id, "\n", 1), 0);
    struct ptc_client_reply rep;
    h_request_op(c, PTC_OP_DETACH, &id, &rep);
    cr_assert(rep.r.ok);
    ptc_client_reply_free(&rep);
    /* Another client replays from just after "go\n" while the flood runs. */
    struct ptc_client_conn *v = h_connect();
    wait_match(v, &id, "XYZ!");
    struct h_out o;
    h_out_init(&o);
    o.pat = go_yes_byte;
    cr_assert_eq(attach_at(v, &id, 3, NULL, NULL), 3);
    h_out_until_end(v, &id, &o);
    cr_assert_eq(o.first, 3);
    cr_assert_eq(o.state, PTC_ST_EXITED);
    cr_assert_eq(o.next, 3 + 6291456, "ended at %llu", (unsigned long long)o.next);
    cr_assert_eq(o.bytes, 6291456);
    free(first.data);
    free(o.data);
    h_close(v);
    /* read from 0 returns the same bytes. */
    struct readout ro = read_range(c, &id, 0, 3 + 6291456, 1 << 19, go_yes_byte);
    cr_assert_eq(ro.first, 0);
    h_close(c);
}

/* ---- restart: lost sessions, exit codes, the log, remove ------------------------------------- */

static const struct ptc_info *find_info(const struct ptc_client_reply *rep, const ptc_uuid *id)
{
    for (uint32_t i = 0; i < rep->r.nsessions; i++)
        if (ptc_uuid_eq(&rep->r.sessions[i].id, id))
            return &rep->r.sessions[i];
    return NULL;
}

Test(store, restart_marks_running_sessions_lost_and_keeps_the_rest)
{
    h_relay_start();
    struct ptc_client_conn *c = h_connect();
    ptc_uuid done = h_open_argv(c, SH("stty raw -echo; seq -w 1 60000; exit 3"), 0, NULL);
    wait_exit(c, &done);
    ptc_uuid running =
        h_open_argv(c, SH("stty raw -echo; seq -w 1 60000; exec sleep 1000"), 0, NULL);
    wait_match(c, &running, "60000");
    /* Give the writer its batch: info's end is what the relay read, the log follows within 1 s. */
    struct ptc_info in = info_of(c, &running);
    cr_assert_eq(in.end, SEQ_LEN);
    h_close(c);
    /* A crash: the running program dies with the relay (its PTY master closes). */
    h_relay_signal(SIGKILL);
    cr_assert_neq(h_relay_wait_exit(h_timeout_ms()), -1);
    h_relay_restart();
    cr_assert(h_relay_log_contains("marked lost"), "no 'lost' line in the log");
    cr_assert(h_relay_log_contains("restored 2 session(s)"));

    c = h_connect();
    struct ptc_client_reply rep;
    h_request_op(c, PTC_OP_LIST, NULL, &rep);
    cr_assert(rep.r.ok);
    cr_assert_eq(rep.r.nsessions, 2);
    const struct ptc_info *d = find_info(&rep, &done), *l = find_info(&rep, &running);
    cr_assert(d && l);
    cr_assert_eq(d->state, PTC_ST_EXITED);
    cr_assert(d->has & PTC_HAS_EXIT_CODE);
    cr_assert_eq(d->exit_code, 3);
    cr_assert_eq(d->end, SEQ_LEN);
    cr_assert_eq(l->state, PTC_ST_LOST, "state %s", ptc_state_name(l->state));
    ptc_client_reply_free(&rep);

    /* Both logs are readable, by read and by attach (which says `lost`). The lost one holds a
     * prefix: the kill came right after the output, and up to about 1 s of it may be missing. */
    read_range(c, &done, 0, SEQ_LEN, 65536, seq_byte);
    struct ptc_info li = info_of(c, &running);
    cr_assert_eq(li.start, 0);
    cr_assert_gt(li.end, 0, "nothing of the lost session was logged");
    cr_assert_leq(li.end, SEQ_LEN);
    read_range(c, &running, 0, li.end, 65536, seq_byte);
    struct h_out o;
    h_out_init(&o);
    o.pat = seq_byte;
    int st = -1;
    cr_assert_eq(attach_at(c, &running, 0, NULL, &st), 0);
    cr_assert_eq(st, PTC_ST_LOST);
    h_out_until_offset(c, &running, &o, li.end);
    cr_assert_eq(o.bytes, li.end);
    free(o.data);
    /* A subscriber is told about the lost session like about any other. */
    struct ptc_client_conn *sub = h_connect();
    h_request_op(sub, PTC_OP_SUBSCRIBE, NULL, &rep);
    cr_assert(rep.r.ok);
    ptc_client_reply_free(&rep);

    /* `remove` deletes it: gone now and after another restart; the exited one stays. */
    h_request_op(c, PTC_OP_REMOVE, &running, &rep);
    cr_assert(rep.r.ok, "remove: %.*s", (int)rep.r.message.n, rep.r.message.p);
    ptc_client_reply_free(&rep);
    struct ptc_client_frame fr;
    cr_assert_eq(h_wait_frame(sub, PTC_EVENT, &running, &fr, h_timeout_ms()), 0);
    ptc_client_frame_free(&fr);
    json_t *ev = events_until(NULL, "removed");
    json_t *lost = event_find(ev, "lost");
    cr_assert_not_null(lost, "no 'lost' audit event");
    char idt[PTC_UUID_STRLEN + 1];
    ptc_uuid_format(&running, idt);
    cr_assert_str_eq(json_string_value(json_object_get(lost, "session")), idt);
    cr_assert_not_null(event_find(ev, "removed"));
    json_decref(ev);
    h_close(sub);
    h_close(c);
    cr_assert_eq(h_relay_stop_keep(), 0);
    h_relay_restart();
    c = h_connect();
    h_request_op(c, PTC_OP_LIST, NULL, &rep);
    cr_assert_eq(rep.r.nsessions, 1);
    cr_assert_not_null(find_info(&rep, &done));
    cr_assert_eq(find_info(&rep, &done)->exit_code, 3);
    ptc_client_reply_free(&rep);
    read_range(c, &done, 0, SEQ_LEN, 1 << 19, seq_byte);
    h_close(c);
}

/* ---- kill -9 during a flood ------------------------------------------------------------------ */

Test(store, kill_9_during_a_flood_keeps_the_log_up_to_about_a_second_before)
{
    h_relay_start("--log-max", "0", "--log-total-max", "0");
    struct ptc_client_conn *c = h_connect();
    char script[160];
    snprintf(script, sizeof script, "stty raw -echo; exec yes '%s'", YES_LINE);
    ptc_uuid id = h_open_argv(c, SH(script), PTC_MODE_VIEW, NULL);
    struct h_out o;
    h_out_init(&o);
    o.pat = yes_byte;
    /* Watch the flood for 1.5 s (bounded by frames, each with the harness timeout). */
    uint64_t t0 = 0;
    for (int i = 0; i < 2000000; i++) {
        h_out_step(c, &id, &o, 0);
        o.len = 0; /* count, do not keep */
        if (o.any && !t0)
            t0 = mono_ms();
        if (t0 && mono_ms() - t0 >= 1500)
            break;
    }
    uint64_t seen = o.next, elapsed = mono_ms() - t0;
    free(o.data);
    h_relay_signal(SIGKILL);
    cr_assert_neq(h_relay_wait_exit(h_timeout_ms()), -1);
    h_close(c);
    cr_assert_gt(seen, 1 << 20, "the flood was too slow to mean anything (%llu bytes)",
                 (unsigned long long)seen);
    double rate = (double)seen * 1000.0 / (double)(elapsed ? elapsed : 1);

    h_relay_restart();
    c = h_connect();
    struct ptc_info in = info_of(c, &id);
    cr_assert_eq(in.state, PTC_ST_LOST);
    cr_assert_eq(in.start, 0);
    /* The log is a contiguous prefix of the pattern... */
    read_range(c, &id, 0, in.end, 1 << 19, yes_byte);
    /* ...that ends at most about one second of output before what the client had seen. */
    double behind = seen > in.end ? (double)(seen - in.end) / rate : 0.0;
    fprintf(stderr,
            "kill -9 flood: client saw %llu bytes in %llu ms (%.1f MB/s); log holds %llu bytes "
            "(%.2f s behind the client, %.1f MB/s committed)\n",
            (unsigned long long)seen, (unsigned long long)elapsed, rate / 1e6,
            (unsigned long long)in.end, behind, (double)in.end * 1000.0 / (double)elapsed / 1e6);
    cr_assert_leq(behind, 1.2, "the log ends %.2f s of output before what the client saw", behind);
    h_close(c);
}

/* ---- retention ------------------------------------------------------------------------------- */

/*
 * Polls info until its start is above 0 and has stayed put for 200 ms: the writer trims in its
 * own time, so after the program's exit the start moves once more when the last output commits.
 */
static struct ptc_info info_until_start(struct ptc_client_conn *c, const ptc_uuid *id)
{
    struct ptc_info in = info_of(c, id);
    uint64_t until = mono_ms() + 3000, since = mono_ms();
    for (int i = 0; i < 300 && mono_ms() < until; i++) {
        ptc_client_run(h_ctx(), 20);
        struct ptc_info now = info_of(c, id);
        if (now.start != in.start)
            since = mono_ms();
        in = now;
        if (in.start > 0 && mono_ms() - since >= 200)
            break;
    }
    return in;
}

Test(store, log_max_drops_the_oldest_output)
{
    h_relay_start("--ring-max", "4096", "--log-max", "65536");
    struct ptc_client_conn *c = h_connect();
    ptc_uuid id = h_open_argv(c, SH("stty raw -echo; seq -w 1 60000"), 0, NULL);
    wait_exit(c, &id);
    struct ptc_info in = info_until_start(c, &id);
    cr_assert_eq(in.end, SEQ_LEN);
    cr_assert_gt(in.start, 0, "info.start stays 0 with --log-max 65536 and %llu bytes written",
                 (unsigned long long)in.end);
    /* Retention drops whole chunks: at least the cap remains, at most the cap plus a chunk. */
    cr_assert_geq(in.end - in.start, 65536, "only %llu bytes kept",
                  (unsigned long long)(in.end - in.start));
    cr_assert_lt(in.end - in.start, SEQ_LEN);
    /* read from 0 is truncated: it starts at info.start. */
    struct readout ro = read_range(c, &id, 0, SEQ_LEN, 65536, seq_byte);
    cr_assert(ro.truncated);
    cr_assert_eq(ro.first, in.start);
    /* attach from 0 starts there too. */
    struct h_out o;
    h_out_init(&o);
    o.pat = seq_byte;
    cr_assert_eq(attach_at(c, &id, 0, NULL, NULL), in.start);
    h_out_until_offset(c, &id, &o, SEQ_LEN);
    cr_assert_eq(o.first, in.start);
    free(o.data);
    /* After a restart the same holds. */
    h_close(c);
    cr_assert_eq(h_relay_stop_keep(), 0);
    h_relay_restart("--ring-max", "4096", "--log-max", "65536");
    c = h_connect();
    struct ptc_info in2 = info_of(c, &id);
    cr_assert_eq(in2.start, in.start);
    cr_assert_eq(in2.end, SEQ_LEN);
    h_close(c);
}

Test(store, log_total_max_drops_the_oldest_output_of_all_sessions)
{
    /* Two sessions of 360000 bytes under a 512 KiB cap on the whole log. Chunks are up to about
     * 260 KiB (the relay hands output over every 100 ms or 256 KiB), so whole chunks of the older
     * session go, and the newer one keeps all of its output. */
    h_relay_start("--ring-max", "4096", "--log-total-max", "524288");
    struct ptc_client_conn *c = h_connect();
    ptc_uuid a = h_open_argv(c, SH("stty raw -echo; seq -w 1 60000"), 0, NULL);
    wait_exit(c, &a);
    ptc_uuid b = h_open_argv(c, SH("stty raw -echo; seq -w 1 60000"), 0, NULL);
    wait_exit(c, &b);
    struct ptc_info ia = info_until_start(c, &a);
    cr_assert_gt(ia.start, 0, "a keeps all of its output: the total cap did nothing");
    struct ptc_info ib = info_of(c, &b);
    cr_assert_eq(ib.start, 0, "b (the newer) lost its oldest output (start %llu)",
                 (unsigned long long)ib.start);
    cr_assert_leq((SEQ_LEN - ia.start) + SEQ_LEN, 524288 + 4096, "the log holds %llu bytes",
                  (unsigned long long)((SEQ_LEN - ia.start) + SEQ_LEN));
    struct readout ra = read_range(c, &a, 0, SEQ_LEN, 65536, seq_byte);
    cr_assert(ra.truncated);
    cr_assert_eq(ra.first, ia.start);
    struct readout rb = read_range(c, &b, 0, SEQ_LEN, 65536, seq_byte);
    cr_assert(!rb.truncated);
    cr_assert_eq(rb.first, 0);
    h_close(c);
}

/* ---- tokens ---------------------------------------------------------------------------------- */

/* Whether a file holds the bytes of s. */
static bool file_has(const char *path, const char *s)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return false;
    static char buf[8 << 20];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    return memmem(buf, n, s, strlen(s)) != NULL;
}

Test(store, token_add_list_revoke_closes_its_connections)
{
    h_relay_start();
    char out[8192], err[4096];
    int st = CLI(out, err, "token", "add", "phone", "--scope", "view");
    cr_assert_eq(st, 0, "token add: %s", err);
    /* The token is the last word of the output. */
    char *end = out + strlen(out);
    while (end > out && (end[-1] == '\n' || end[-1] == ' '))
        *--end = 0;
    char *tok = strrchr(out, ' ');
    cr_assert_not_null(tok);
    tok++;
    cr_assert(!strncmp(tok, "ptr_", 4) && strlen(tok) > 20, "token '%s'", tok);
    char token[128];
    snprintf(token, sizeof token, "%s", tok);
    cr_assert_eq(CLI(out, err, "token", "add", "phone"), 1, "a duplicate name must fail");
    cr_assert(strstr(err, "phone") && strstr(err, "exists"), "message: %s", err);

    /* It works, with its scope. */
    struct ptc_client_conn *v = h_connect_token(token);
    cr_assert_eq(ptc_client_scope(v), PTC_MODE_VIEW);
    struct ptc_client_conn *admin = h_connect();
    ptc_uuid id = h_open_argv(admin, SH("echo hi; exec sleep 100"), 0, NULL);
    struct ptc_client_reply rep;
    h_request_op(v, PTC_OP_LIST, NULL, &rep);
    cr_assert(rep.r.ok);
    ptc_client_reply_free(&rep);
    h_request_op(v, PTC_OP_REMOVE, &id, &rep);
    cr_assert(!rep.r.ok);
    cr_assert_eq(rep.r.error, PTC_C_FORBIDDEN);
    ptc_client_reply_free(&rep);

    /* list: names, scopes, created and last-used times (once used). */
    cr_assert_eq(CLI(out, err, "token", "list"), 0, "%s", err);
    cr_assert(strstr(out, "phone") && strstr(out, "view") && strstr(out, "admin"), "%s", out);
    json_t *list = NULL;
    uint64_t deadline = mono_ms() + 3000;
    for (int i = 0; i < 100; i++) {
        cr_assert_eq(CLI(out, err, "token", "list", "--json"), 0, "%s", err);
        json_error_t je;
        json_decref(list);
        list = json_loads(out, 0, &je);
        cr_assert(json_is_array(list), "token list --json: %s", out);
        json_t *phone = NULL, *o;
        size_t k;
        json_array_foreach(list, k, o)
        {
            if (!strcmp(json_string_value(json_object_get(o, "name")) ?: "", "phone"))
                phone = o;
        }
        cr_assert_not_null(phone);
        cr_assert_str_eq(json_string_value(json_object_get(phone, "scope")), "view");
        cr_assert_gt(json_integer_value(json_object_get(phone, "created_ms")), 0);
        if (json_is_integer(json_object_get(phone, "last_used_ms")) || mono_ms() > deadline)
            break;
        ptc_client_run(h_ctx(), 50);
    }
    cr_assert(strstr(out, "\"last_used_ms\":1") || strstr(out, "\"last_used_ms\": 1"),
              "phone's last use is not recorded: %s", out);
    json_decref(list);

    /* revoke: the open connection is closed 4401 within about a second. */
    uint64_t t = mono_ms();
    cr_assert_eq(CLI(out, err, "token", "revoke", "phone"), 0, "%s", err);
    int code = h_wait_close(v, 1500);
    cr_assert_eq(code, 4401, "close code %d after %llu ms", code,
                 (unsigned long long)(mono_ms() - t));
    h_close(v);
    struct ptc_client_conn *again = NULL;
    cr_assert_eq(h_connect_try(NULL, token, NULL, &again), PTC_CLIENT_EUNAUTHORIZED);
    h_close(again);
    /* The admin connection is untouched. */
    h_request_op(admin, PTC_OP_LIST, NULL, &rep);
    cr_assert(rep.r.ok);
    ptc_client_reply_free(&rep);
    cr_assert_eq(CLI(out, err, "token", "revoke", "phone"), 1);
    cr_assert(strstr(err, "phone"), "%s", err);
    cr_assert_eq(CLI(out, err, "token", "list"), 0);
    cr_assert_null(strstr(out, "phone"), "%s", out);
    h_close(admin);

    /* No token text in the relay's log or the database (only hashes are stored). */
    cr_assert(!h_relay_log_contains(token), "the new token reached the relay's log");
    cr_assert(!h_relay_log_contains(h_relay_token()), "the admin token reached the relay's log");
    cr_assert(h_relay_log_contains("revoked"));
    char path[512];
    snprintf(path, sizeof path, "%s/ptyrelay.db", h_relay_dir());
    cr_assert(!file_has(path, token) && !file_has(path, h_relay_token()));
    snprintf(path, sizeof path, "%s/ptyrelay.db-wal", h_relay_dir());
    cr_assert(!file_has(path, token) && !file_has(path, h_relay_token()));
}

/* ---- the audit trail ------------------------------------------------------------------------- */

Test(store, audit_trail_lists_each_kind_with_token_and_peer)
{
    h_relay_start();
    struct ptc_client_conn *c = h_connect();
    ptc_uuid id = h_open_argv(c, SH("stty raw -echo; echo ready; cat"), PTC_MODE_INTERACTIVE, NULL);
    ptc_uuid other = h_open_argv(c, SH("exit 0"), 0, NULL);
    wait_match(c, &id, "ready");
    cr_assert_eq(ptc_client_send_input(c, &id, "secret-input", 12), 0);
    wait_match(c, &id, "secret-input");
    cr_assert_eq(ptc_client_send_resize(c, &id, 100, 30), 0);
    h_expect_resize(c, &id, 100, 30);
    struct ptc_request sig = {
        .op = PTC_OP_SIGNAL, .has = PTC_HAS_SIGNAL, .signal = ptc_str_c("WINCH")};
    struct ptc_client_reply rep;
    cr_assert_eq(h_call(c, &id, &sig, &rep), 0);
    cr_assert(rep.r.ok);
    ptc_client_reply_free(&rep);
    h_request_op(c, PTC_OP_DETACH, &id, &rep);
    cr_assert(rep.r.ok);
    ptc_client_reply_free(&rep);
    struct ptc_request kill = {.op = PTC_OP_KILL, .has = PTC_HAS_GRACE, .grace_ms = 1000};
    cr_assert_eq(h_call(c, &id, &kill, &rep), 0);
    cr_assert(rep.r.ok);
    ptc_client_reply_free(&rep);
    wait_exit(c, &id);
    h_request_op(c, PTC_OP_REMOVE, &id, &rep);
    cr_assert(rep.r.ok);
    ptc_client_reply_free(&rep);

    char idt[PTC_UUID_STRLEN + 1];
    ptc_uuid_format(&id, idt);
    json_t *ev = events_until(idt, "removed");
    const char *kinds[] = {"opened",   "attached", "input",  "resized", "signalled",
                           "detached", "killed",   "exited", "removed"};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        json_t *o = event_find(ev, kinds[i]);
        cr_assert_not_null(o, "no '%s' event in %s", kinds[i], json_dumps(ev, JSON_COMPACT));
        cr_assert_str_eq(json_string_value(json_object_get(o, "session")), idt);
        cr_assert(json_is_integer(json_object_get(o, "ts_ms")));
        if (strcmp(kinds[i], "exited")) {
            cr_assert_str_eq(json_string_value(json_object_get(o, "token")) ?: "(null)", "admin",
                             "%s: token", kinds[i]);
            cr_assert_str_eq(json_string_value(json_object_get(o, "peer")) ?: "(null)", "127.0.0.1",
                             "%s: peer", kinds[i]);
        }
    }
    /* Input is a byte count, never the bytes. */
    json_t *in = event_find(ev, "input");
    const char *detail = json_string_value(json_object_get(in, "detail"));
    cr_assert(detail && strstr(detail, "12"), "input detail: %s", detail ? detail : "(null)");
    char *all = json_dumps(ev, JSON_COMPACT);
    cr_assert_null(strstr(all, "secret-input"), "input contents reached the audit trail");
    free(all);
    cr_assert_str_eq(json_string_value(json_object_get(event_find(ev, "resized"), "detail")),
                     "100x30");
    /* --session keeps only that session's events. */
    size_t k;
    json_t *o;
    json_array_foreach(ev, k, o)
    {
        cr_assert_str_eq(json_string_value(json_object_get(o, "session")), idt);
    }
    json_decref(ev);
    json_t *every = events_json(NULL);
    char oid[PTC_UUID_STRLEN + 1];
    ptc_uuid_format(&other, oid);
    bool seen_other = false;
    json_array_foreach(every, k, o)
    {
        const char *s = json_string_value(json_object_get(o, "session"));
        seen_other |= s && !strcmp(s, oid);
    }
    cr_assert(seen_other, "events without --session lists every session");
    json_decref(every);
    /* The text form has one line per event too. */
    char out[1 << 16], err[1024];
    cr_assert_eq(CLI(out, err, "events", "--session", idt), 0, "%s", err);
    cr_assert(strstr(out, "removed") && strstr(out, "token=admin") && strstr(out, "peer=127.0.0.1"),
              "%s", out);
    h_close(c);
}

/* ---- a newer schema ----------------------------------------------------------------------------
 */

Test(store, a_newer_schema_is_refused_at_start)
{
    h_relay_start();
    cr_assert_eq(h_relay_stop_keep(), 0);
    char path[512];
    snprintf(path, sizeof path, "%s/ptyrelay.db", h_relay_dir());
    int fd = open(path, O_RDWR);
    cr_assert_geq(fd, 0);
    uint8_t v[4] = {0, 0, 0, 99}, old[4];
    cr_assert_eq(pread(fd, old, 4, 60), 4);
    cr_assert_eq(old[3], 1, "schema version %d on disk", old[3]);
    cr_assert_eq(pwrite(fd, v, 4, 60), 4);
    cr_assert_eq(h_relay_try_restartv((const char *const[]){NULL}), -ETIMEDOUT);
    cr_assert(h_relay_log_contains("schema version 99"), "%s", h_relay_error());
    cr_assert_eq(pread(fd, v, 4, 60), 4);
    cr_assert_eq(v[3], 99, "the database was rewritten");
    cr_assert_eq(pwrite(fd, old, 4, 60), 4);
    close(fd);
    h_relay_stop_keep();
    h_relay_restart();
}

/* ---- an injected write error: the database cap --------------------------------------------------
 */

Test(store, db_full_keeps_sessions_streaming_and_is_reported)
{
    h_relay_start("--db-max-bytes", "262144");
    struct ptc_client_conn *c = h_connect();
    char script[160];
    snprintf(script, sizeof script, "stty raw -echo; yes '%s' | head -c 4194304", YES_LINE);
    ptc_uuid id = h_open_argv(c, SH(script), PTC_MODE_VIEW, NULL);
    struct h_out o;
    h_out_init(&o);
    o.pat = yes_byte;
    h_out_until_end(c, &id, &o);
    cr_assert_eq(o.state, PTC_ST_EXITED);
    cr_assert_eq(o.first, 0);
    cr_assert_eq(o.bytes, 4194304, "the live client got %llu bytes", (unsigned long long)o.bytes);
    cr_assert(h_relay_log_wait("database or disk is full", 3000), "no store error in the log");
    cr_assert(h_relay_log_wait("not logged", 3000), "no count of unlogged output in the log");
    char body[64];
    cr_assert_eq(h_http_get("/healthz", body, sizeof body), 200);
    /* The relay still takes new sessions and serves them live. */
    ptc_uuid id2 = h_open_argv(c, SH("echo still-here"), PTC_MODE_INTERACTIVE, NULL);
    struct h_out o2;
    h_out_init(&o2);
    h_out_until_end(c, &id2, &o2);
    cr_assert(o2.data && strstr((char *)o2.data, "still-here"));
    free(o.data);
    free(o2.data);
    /* What the log kept is a prefix; read from 0 shows the gap after it (or the ring). */
    struct ptc_info in = info_of(c, &id);
    cr_assert_eq(in.end, 4194304);
    h_close(c);
    cr_assert(!h_relay_log_contains(h_relay_token()));
}
