/*
 * fanout: one session writes a known byte stream and V view-only clients, each on its own
 * connection, read all of it. The program waits for one input byte before it writes, so every
 * viewer is attached from offset 0 before the first byte exists; the opener sends that byte and
 * detaches. Each viewer's rate is its bytes over the time from the go byte to the end STATE.
 * The same phase, with one more viewer that stops reading, is the slow-consumer scenario's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ptload.h"

static bool gen_ready(void *arg)
{
    struct lsess *s = arg;
    return s->bytes >= 1 || lsess_done(s);
}

static bool all_attached(void *arg)
{
    struct fan *f = arg;
    for (uint32_t i = 0; i < f->nr; i++)
        if (!f->rs[i].attached && !f->rs[i].failed)
            return false;
    if (f->stalled && !f->st.attached && !f->st.failed)
        return false;
    return true;
}

static bool all_done(void *arg)
{
    struct fan *f = arg;
    for (uint32_t i = 0; i < f->nr; i++)
        if (!lsess_done(&f->rs[i]))
            return false;
    return true;
}

static void progress(void *arg, char *buf, size_t cap)
{
    struct fan *f = arg;
    uint64_t bytes = 0;
    uint32_t done = 0;
    for (uint32_t i = 0; i < f->nr; i++) {
        bytes += f->rs[i].bytes;
        done += lsess_done(&f->rs[i]);
    }
    snprintf(buf, cap, "%u/%u readers done, %.1f MB received%s", done, f->nr, (double)bytes / 1e6,
             f->stalled ? " (one client stalled)" : "");
}

static void stall_now(struct lsess *s)
{
    /* Stop reading the socket at once: the relay's writes back up into the kernel, then stop. */
    if (s->lc && s->lc->c)
        ptc_client_pause(s->lc->c, true);
}

/* One generator session read by f->nr readers (and f->stalled, which stops reading). */
int fanout_phase(struct load *L, struct fan *f, uint64_t timeout_ms)
{
    char *cmd = load_gen_cmd_go(f->bytes);
    const char *argv[] = {"/bin/sh", "-c", cmd, NULL};
    lsess_init(&f->gen, f->opener, 0);
    lsess_open(&f->gen, argv, PTC_MODE_INTERACTIVE);
    free(cmd);
    if (!load_run(L, gen_ready, &f->gen, 10000, NULL) || f->gen.bytes < 1) {
        load_error(L, "fanout: the session did not start within 10 s");
        return 1;
    }
    for (uint32_t i = 0; i < f->nr; i++) {
        struct lsess *s = &f->rs[i];
        lsess_init(s, f->readers[i], i + 1);
        s->id = f->gen.id;
        s->verify = VERIFY_PATTERN;
        s->base = s->next = 1; /* after the ready mark */
        s->expect = 1 + f->bytes;
        s->window = L->o.window;
        if (f->readers[i] && f->readers[i]->ready)
            lsess_attach(s, PTC_MODE_VIEW);
        else
            s->failed = true;
    }
    if (f->stalled) {
        lsess_init(&f->st, f->stalled, f->nr + 1);
        f->st.id = f->gen.id;
        f->st.next = 1;
        f->st.hooks.on_attached = stall_now;
        lsess_attach(&f->st, PTC_MODE_VIEW);
    }
    if (!load_run(L, all_attached, f, 10000, NULL)) {
        load_error(L, "fanout: the readers were not attached within 10 s");
        return 1;
    }
    f->t_go_us = ptc_client_now_us();
    lsess_input(&f->gen, "g", 1);
    struct ptc_request rq;
    memset(&rq, 0, sizeof rq);
    rq.op = PTC_OP_DETACH;
    ptc_client_request(f->opener->c, &f->gen.id, &rq, NULL, NULL, NULL);
    if (!load_run(L, all_done, f, timeout_ms, progress)) {
        load_error(L, "fanout: the readers did not see the end within %.0f s",
                   (double)timeout_ms / 1e3);
        load_progress_end(L);
        return 1;
    }
    load_progress_end(L);
    return 0;
}

/* Per-reader rates of a finished phase into rates[0..nr); returns how many. */
size_t fanout_rates(const struct fan *f, double *rates)
{
    size_t n = 0;
    for (uint32_t i = 0; i < f->nr; i++) {
        const struct lsess *s = &f->rs[i];
        if (!s->ended || s->t_end_us <= f->t_go_us)
            continue;
        rates[n++] = (double)s->bytes / ((double)(s->t_end_us - f->t_go_us) / 1e6);
    }
    return n;
}

/* Runs the fanout scenario. */
int fanout_run(struct load *L, json_t *out)
{
    uint32_t V = L->o.viewers ? L->o.viewers : 4;
    uint64_t bytes = L->o.bytes ? L->o.bytes : 64ull << 20;
    uint64_t timeout_ms = (uint64_t)((L->o.seconds > 0 ? L->o.seconds : 300) * 1000);
    struct lconn **cs = calloc(V + 1, sizeof *cs);
    struct fan f = {.opener = NULL, .nr = V, .bytes = bytes};
    f.rs = calloc(V, sizeof *f.rs);
    double *rates = calloc(V, sizeof *rates);
    if (!cs || !f.rs || !rates)
        abort();
    lconn_open_many(L, cs, V + 1, 10000);
    f.opener = cs[0];
    f.readers = cs + 1;
    struct procstat before = procstat_read(L->o.relay_pid);
    int rc = 1;
    if (f.opener && f.opener->ready)
        rc = fanout_phase(L, &f, timeout_ms);
    struct procstat after = procstat_read(L->o.relay_pid);

    size_t nr = fanout_rates(&f, rates);
    double sum = 0;
    for (size_t i = 0; i < nr; i++)
        sum += rates[i];
    struct lsess **rp = calloc(V, sizeof *rp);
    for (uint32_t i = 0; i < V; i++)
        rp[i] = &f.rs[i];
    json_object_set_new(out, "viewers", json_integer(V));
    json_object_set_new(out, "bytes_per_session", json_integer((json_int_t)bytes));
    json_object_set_new(out, "bytes_per_sec", json_real(sum));
    json_object_set_new(out, "per_viewer", json_pack("{s:o}", "bytes_per_sec",
                                                     stats_spread_json(rates, nr)));
    track_totals(out, rp, V);
    json_object_set_new(out, "relay_before", procstat_json(&before));
    json_object_set_new(out, "relay_after", procstat_json(&after));
    if (before.ok && after.ok)
        json_object_set_new(out, "relay_cpu_s", json_real(after.cpu_s - before.cpu_s));
    fprintf(stderr, "fanout: %u viewers, %.1f MB/s each (mean), %.1f MB/s in all, %llu bytes lost\n",
            V, nr ? sum / (double)nr / 1e6 : 0.0, sum / 1e6,
            (unsigned long long)track_damage(rp, V));
    if (track_damage(rp, V) || nr < V)
        rc = 1;

    struct lsess *g = &f.gen;
    load_cleanup(L, f.opener, &g, 1, 10000);
    for (uint32_t i = 0; i <= V; i++)
        lconn_free(cs[i]);
    free(rp);
    free(rates);
    free(f.rs);
    free(cs);
    return rc;
}
