/*
 * idle: what an idle session costs the relay. S sessions of `cat` (which write nothing, so their
 * rings stay unallocated) are opened over C connections, each attached interactively as a client
 * that watches it would be; the relay's RSS and fds are read before and after, and the difference
 * over S is the relay's own memory per session. Then echo round trips are measured on one of them
 * while all are open. Opens are kept to a window of outstanding requests so the relay's loop is
 * never handed thousands of forks in one message.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ptload.h"

#define OPEN_WINDOW 32

struct idle {
    struct load *L;
    struct lsess **ss;
    uint32_t n, sent, settled;
    uint64_t t_last_us;
};

static const char *const cat_argv[] = {"cat", NULL};

static void open_next(struct idle *w);

static void opened(struct lsess *s)
{
    struct idle *w = s->user;
    w->settled++;
    w->t_last_us = ptc_client_now_us();
    s->hooks.on_attached = NULL;
    s->hooks.on_end = NULL;
    open_next(w);
}

static void open_next(struct idle *w)
{
    while (w->sent < w->n && w->sent - w->settled < OPEN_WINDOW) {
        struct lsess *s = w->ss[w->sent++];
        s->user = w;
        s->hooks.on_attached = opened;
        s->hooks.on_end = opened; /* a failed open settles too */
        if (!s->lc || !s->lc->ready) {
            s->failed = true;
            w->settled++;
            continue;
        }
        lsess_open(s, s->index == 0 ? echo_argv : cat_argv, PTC_MODE_INTERACTIVE);
    }
}

static bool all_settled(void *arg)
{
    struct idle *w = arg;
    return w->settled >= w->n;
}

static void progress(void *arg, char *buf, size_t cap)
{
    struct idle *w = arg;
    snprintf(buf, cap, "%u/%u sessions open", w->settled, w->n);
}

static long read_long(const char *path)
{
    FILE *f = fopen(path, "re");
    long v = -1;
    if (f) {
        if (fscanf(f, "%ld", &v) != 1)
            v = -1;
        fclose(f);
    }
    return v;
}

/* Runs the idle-sessions scenario. */
int idle_run(struct load *L, json_t *out)
{
    uint32_t S = L->o.sessions ? L->o.sessions : 100;
    uint32_t C = L->o.connections ? L->o.connections : 1;
    uint32_t samples = L->o.samples ? L->o.samples : 2000;
    uint64_t timeout_ms = (uint64_t)((L->o.seconds > 0 ? L->o.seconds : 300) * 1000);
    int rc = 0;
    if (C > S)
        C = S;
    long pty_max = read_long("/proc/sys/kernel/pty/max"), pty_nr = read_long("/proc/sys/kernel/pty/nr");
    json_object_set_new(out, "sessions", json_integer(S));
    json_object_set_new(out, "connections", json_integer(C));
    json_object_set_new(out, "pty_max", json_integer(pty_max));
    json_object_set_new(out, "pty_in_use_before", json_integer(pty_nr));
    if (pty_max > 0 && pty_nr >= 0 && (long)S > pty_max - pty_nr)
        fprintf(stderr, "ptload: warning: %u sessions but only %ld PTYs left (kernel.pty.max)\n", S,
                pty_max - pty_nr);

    struct lconn **cs = calloc(C, sizeof *cs);
    struct lsess **ss = calloc(S, sizeof *ss);
    if (!cs || !ss)
        abort();
    lconn_open_many(L, cs, C, 10000);
    struct procstat before = procstat_read(L->o.relay_pid);

    for (uint32_t i = 0; i < S; i++) {
        ss[i] = calloc(1, sizeof **ss);
        if (!ss[i])
            abort();
        lsess_init(ss[i], cs[i % C], i);
    }
    struct idle w = {.L = L, .ss = ss, .n = S};
    uint64_t t0 = ptc_client_now_us();
    open_next(&w);
    if (!load_run(L, all_settled, &w, timeout_ms, progress))
        load_error(L, "idle: %u of %u sessions open after %.0f s", w.settled, S,
                   (double)timeout_ms / 1e3);
    load_progress_end(L);
    double open_s = w.t_last_us > t0 ? (double)(w.t_last_us - t0) / 1e6 : 0;
    uint32_t opened_ok = 0;
    for (uint32_t i = 0; i < S; i++)
        opened_ok += ss[i]->attached && !ss[i]->failed;
    struct procstat after = procstat_read(L->o.relay_pid);

    json_t *echo = json_object();
    if (ss[0]->attached && !ss[0]->failed)
        rc |= echo_measure(L, ss[0], samples, samples < 1000 ? samples / 5 : 200, 60000, echo);
    else
        rc = 1;
    struct procstat after_echo = procstat_read(L->o.relay_pid);

    json_object_set_new(out, "sessions_open", json_integer(opened_ok));
    json_object_set_new(out, "open_seconds", json_real(open_s));
    json_object_set_new(out, "opens_per_sec", json_real(open_s > 0 ? opened_ok / open_s : 0));
    json_object_set_new(out, "relay_before", procstat_json(&before));
    json_object_set_new(out, "relay_after", procstat_json(&after));
    json_object_set_new(out, "relay_after_echo", procstat_json(&after_echo));
    json_object_set_new(out, "rss_kb", after.ok ? json_integer((json_int_t)after.rss_kb) : json_null());
    json_object_set_new(out, "fds", after.ok ? json_integer((json_int_t)after.fds) : json_null());
    double per = 0;
    if (before.ok && after.ok && opened_ok) {
        per = ((double)after.rss_kb - (double)before.rss_kb) * 1024.0 / opened_ok;
        json_object_set_new(out, "relay_bytes_per_session", json_real(per));
        json_object_set_new(out, "relay_fds_per_session",
                            json_real(((double)after.fds - (double)before.fds) / opened_ok));
    } else {
        json_object_set_new(out, "relay_bytes_per_session", json_null());
        json_object_set_new(out, "relay_fds_per_session", json_null());
    }
    json_object_set_new(out, "echo", echo);
    json_object_set_new(out, "bytes_lost", json_integer((json_int_t)(ss[0]->lost + ss[0]->skipped + ss[0]->dup)));
    fprintf(stderr, "idle: %u sessions open in %.2f s; relay %.0f bytes per session; echo p99 "
                    "%.1f us while all are open\n",
            opened_ok, open_s, per, json_number_value(json_object_get(echo, "p99_us")));

    load_cleanup(L, cs[0], ss, S, 120000);
    struct procstat cleaned = procstat_read(L->o.relay_pid);
    json_object_set_new(out, "relay_after_cleanup", procstat_json(&cleaned));
    if (opened_ok < S)
        rc = 1;
    for (uint32_t i = 0; i < C; i++)
        lconn_free(cs[i]);
    for (uint32_t i = 0; i < S; i++)
        free(ss[i]);
    free(ss);
    free(cs);
    return rc;
}
