/*
 * throughput: S sessions write a known byte stream as fast as a PTY lets them (the built-in
 * generator, or `cat FILE`), spread over C connections, each attached from offset 0 by its `open`.
 * A session's rate is its bytes over the time from the `open` request to the STATE that reports
 * its end, the same span a bare PTY reader (bench/ptyread.c) measures from spawn to EOF.
 */
#include <stdio.h>
#include <stdlib.h>

#include "ptload.h"

struct tp {
    struct lsess **ss;
    uint32_t n;
};

static bool all_done(void *arg)
{
    struct tp *t = arg;
    for (uint32_t i = 0; i < t->n; i++)
        if (!lsess_done(t->ss[i]))
            return false;
    return true;
}

static void progress(void *arg, char *buf, size_t cap)
{
    struct tp *t = arg;
    uint64_t bytes = 0, done = 0;
    for (uint32_t i = 0; i < t->n; i++) {
        bytes += t->ss[i]->bytes;
        done += lsess_done(t->ss[i]);
    }
    snprintf(buf, cap, "%llu/%u sessions done, %.1f MB received", (unsigned long long)done, t->n,
             (double)bytes / 1e6);
}

/* Runs the throughput scenario. */
int throughput_run(struct load *L, json_t *out)
{
    uint32_t S = L->o.sessions ? L->o.sessions : 1;
    uint32_t C = L->o.connections ? L->o.connections : 1;
    uint64_t bytes = L->o.file ? L->file_len : (L->o.bytes ? L->o.bytes : 256ull << 20);
    uint64_t timeout_ms = (uint64_t)((L->o.seconds > 0 ? L->o.seconds : 300) * 1000);
    if (C > S)
        C = S;

    struct lconn **cs = calloc(C, sizeof *cs);
    struct lsess **ss = calloc(S, sizeof *ss);
    if (!cs || !ss) {
        fprintf(stderr, "ptload: out of memory\n");
        abort();
    }
    lconn_open_many(L, cs, C, 10000);
    struct procstat before = procstat_read(L->o.relay_pid);

    char *cmd = L->o.file ? load_file_cmd(L->o.file) : load_gen_cmd(bytes);
    const char *argv[] = {"/bin/sh", "-c", cmd, NULL};
    for (uint32_t i = 0; i < S; i++) {
        ss[i] = calloc(1, sizeof **ss);
        if (!ss[i])
            abort();
        struct lconn *lc = cs[i % C];
        lsess_init(ss[i], lc, i);
        ss[i]->verify = L->o.file ? VERIFY_FILE : VERIFY_PATTERN;
        ss[i]->expect = bytes;
        if (!lc || !lc->ready) {
            ss[i]->failed = true;
            continue;
        }
        lsess_open(ss[i], argv, PTC_MODE_VIEW);
    }
    struct tp t = {ss, S};
    if (!load_run(L, all_done, &t, timeout_ms, progress))
        load_error(L, "throughput: not every session ended within %.0f s", (double)timeout_ms / 1e3);
    load_progress_end(L);
    struct procstat after = procstat_read(L->o.relay_pid);

    double *rates = calloc(S, sizeof *rates);
    size_t nr = 0;
    uint64_t t_first = UINT64_MAX, t_last = 0, total = 0;
    for (uint32_t i = 0; i < S; i++) {
        struct lsess *s = ss[i];
        total += s->bytes;
        if (!s->ended || !s->t_open_us)
            continue;
        if (s->t_open_us < t_first)
            t_first = s->t_open_us;
        if (s->t_end_us > t_last)
            t_last = s->t_end_us;
        double secs = (double)(s->t_end_us - s->t_open_us) / 1e6;
        rates[nr++] = secs > 0 ? (double)s->bytes / secs : 0;
        if (s->exit_code != 0)
            load_error(L, "session %u: the generator exited with %d", i, s->exit_code);
    }
    double secs = t_last > t_first ? (double)(t_last - t_first) / 1e6 : 0;

    json_object_set_new(out, "sessions", json_integer(S));
    json_object_set_new(out, "connections", json_integer(C));
    json_object_set_new(out, "bytes_per_session", json_integer((json_int_t)bytes));
    json_object_set_new(out, "source", json_string(L->o.file ? "file" : "generator"));
    json_object_set_new(out, "seconds", json_real(secs));
    json_object_set_new(out, "bytes_per_sec", json_real(secs > 0 ? (double)total / secs : 0));
    json_object_set_new(out, "per_session", json_pack("{s:o}", "bytes_per_sec",
                                                      stats_spread_json(rates, nr)));
    track_totals(out, ss, S);
    json_object_set_new(out, "relay_before", procstat_json(&before));
    json_object_set_new(out, "relay_after", procstat_json(&after));
    if (before.ok && after.ok)
        json_object_set_new(out, "relay_cpu_s", json_real(after.cpu_s - before.cpu_s));

    double mean = 0;
    for (size_t i = 0; i < nr; i++)
        mean += rates[i] / (double)nr;
    fprintf(stderr, "throughput: %u sessions over %u connections: %.1f MB/s in all, %.1f MB/s per "
                    "session (mean), %llu bytes lost\n",
            S, C, secs > 0 ? (double)total / secs / 1e6 : 0.0, mean / 1e6,
            (unsigned long long)track_damage(ss, S));

    load_cleanup(L, cs[0], ss, S, 20000);
    int rc = track_damage(ss, S) ? 1 : 0;
    for (uint32_t i = 0; i < C; i++)
        lconn_free(cs[i]);
    for (uint32_t i = 0; i < S; i++)
        free(ss[i]);
    free(rates);
    free(ss);
    free(cs);
    free(cmd);
    return rc;
}
