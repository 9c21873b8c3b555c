/*
 * slow: what one stalled client costs the others. The fanout phase runs twice on fresh sessions:
 * once with V readers only (the baseline), then with one more client that attaches and stops
 * reading its socket. The readers' rates are compared, the relay's RSS is sampled all along, and
 * the stalled client is held for --seconds (longer than the relay's --stall-timeout) before it
 * reads again and finds out how the relay closed it (4408 expected). The moment the relay
 * dropped it is seen from its side: its fd count falls by one.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ptload.h"

struct hold {
    struct load *L;
    struct ptc_client_timer *t;
    uint64_t fds0, t_drop_us, t0_us;
};

static void hold_sample(struct ptc_client_timer *t, void *arg)
{
    struct hold *h = arg;
    struct procstat p = procstat_read(h->L->o.relay_pid);
    if (p.ok && !h->t_drop_us && p.fds < h->fds0)
        h->t_drop_us = ptc_client_now_us();
    ptc_client_timer_set(t, 100);
}

static bool stalled_settled(void *arg)
{
    struct fan *f = arg;
    return f->stalled->ended || lsess_done(&f->st);
}

static double mean(const double *v, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += v[i];
    return n ? s / (double)n : 0;
}

/* Runs the slow-consumer scenario. */
int slow_run(struct load *L, json_t *out)
{
    uint32_t V = L->o.viewers ? L->o.viewers : 2;
    uint64_t bytes = L->o.bytes ? L->o.bytes : 64ull << 20;
    double hold_s = L->o.seconds > 0 ? L->o.seconds : 40;
    int rc = 0;
    struct lconn **cs = calloc(V + 2, sizeof *cs);
    double *ra = calloc(V, sizeof *ra), *rb = calloc(V, sizeof *rb);
    struct fan fa = {.nr = V, .bytes = bytes}, fb = {.nr = V, .bytes = bytes};
    fa.rs = calloc(V, sizeof *fa.rs);
    fb.rs = calloc(V, sizeof *fb.rs);
    struct lsess **rp = calloc(2 * V, sizeof *rp);
    if (!cs || !ra || !rb || !fa.rs || !fb.rs || !rp)
        abort();
    if (lconn_open_many(L, cs, V + 2, 10000) != V + 2) {
        rc = 1;
        goto done;
    }
    fa.opener = fb.opener = cs[0];
    fa.readers = fb.readers = cs + 1;
    fb.stalled = cs[V + 1];

    struct procsampler *ps = procsampler_new(L, 100);
    rc |= fanout_phase(L, &fa, 300000);
    struct lsess *g = &fa.gen;
    load_cleanup(L, cs[0], &g, 1, 10000);

    struct procstat b0 = procstat_read(L->o.relay_pid);
    rc |= fanout_phase(L, &fb, 300000);
    struct procstat b1 = procstat_read(L->o.relay_pid);

    /* Keep the stalled client stalled for the hold time, counted from its attach. */
    struct hold h = {.L = L, .fds0 = b1.fds, .t0_us = fb.t_go_us};
    if (L->o.relay_pid > 0) {
        h.t = ptc_client_timer_new(L->ctx, hold_sample, &h);
        ptc_client_timer_set(h.t, 100);
    }
    uint64_t held_us = ptc_client_now_us() - fb.t_go_us;
    if ((double)held_us / 1e6 < hold_s)
        load_run(L, NULL, NULL, (uint64_t)(hold_s * 1000 - (double)held_us / 1000), NULL);
    struct procstat b2 = procstat_read(L->o.relay_pid);
    if (fb.stalled->c)
        ptc_client_pause(fb.stalled->c, false);
    if (!load_run(L, stalled_settled, &fb, 15000, NULL))
        load_error(L, "slow: the stalled client neither closed nor caught up within 15 s");
    if (h.t)
        ptc_client_timer_free(h.t);
    procsampler_finish(ps, out, "relay_over_time");

    size_t na = fanout_rates(&fa, ra), nb = fanout_rates(&fb, rb);
    double ma = mean(ra, na), mb = mean(rb, nb);
    for (uint32_t i = 0; i < V; i++) {
        rp[i] = &fa.rs[i];
        rp[V + i] = &fb.rs[i];
    }
    json_object_set_new(out, "viewers", json_integer(V));
    json_object_set_new(out, "bytes_per_session", json_integer((json_int_t)bytes));
    json_object_set_new(out, "baseline", json_pack("{s:f, s:o}", "bytes_per_sec", ma, "per_reader",
                                                   stats_spread_json(ra, na)));
    json_object_set_new(out, "with_stalled", json_pack("{s:f, s:o}", "bytes_per_sec", mb,
                                                       "per_reader", stats_spread_json(rb, nb)));
    json_object_set_new(out, "bytes_per_sec", json_real(mb));
    json_object_set_new(out, "throughput_ratio", json_real(ma > 0 ? mb / ma : 0));
    track_totals(out, rp, 2 * V);

    json_t *st = json_object();
    bool dropped = fb.stalled->ended;
    json_object_set_new(st, "dropped", json_boolean(dropped));
    json_object_set_new(st, "close_code", dropped ? json_integer(fb.stalled->close_code) : json_null());
    json_object_set_new(st, "close_reason", json_string(dropped ? fb.stalled->reason : ""));
    json_object_set_new(st, "dropped_after_s", h.t_drop_us ? json_real((double)(h.t_drop_us - h.t0_us) / 1e6)
                                                           : json_null());
    json_object_set_new(st, "held_s", json_real(hold_s));
    json_object_set_new(st, "bytes", json_integer((json_int_t)fb.st.bytes));
    json_object_set_new(out, "stalled", st);
    json_object_set_new(out, "relay_phase_start", procstat_json(&b0));
    json_object_set_new(out, "relay_phase_end", procstat_json(&b1));
    json_object_set_new(out, "relay_hold_end", procstat_json(&b2));
    if (b1.ok && b2.ok) /* from the readers' end (ring full) to the end of the hold */
        json_object_set_new(out, "rss_growth_during_stall_kb",
                            json_integer((json_int_t)b2.rss_kb - (json_int_t)b1.rss_kb));
    if (b0.ok && b2.ok)
        json_object_set_new(out, "rss_growth_kb",
                            json_integer((json_int_t)b2.rss_kb - (json_int_t)b0.rss_kb));
    fprintf(stderr, "slow: readers %.1f MB/s alone, %.1f MB/s beside a stalled client (%.1f%%); "
                    "stalled client %s %d\n",
            ma / 1e6, mb / 1e6, ma > 0 ? 100.0 * mb / ma : 0.0,
            dropped ? "closed with" : "not closed, code", dropped ? fb.stalled->close_code : 0);
    /* Readers that fall behind may see skips (PTC1's rule); a fault is loss at exit or bad bytes. */
    if (track_faults(rp, 2 * V))
        rc = 1;
    g = &fb.gen;
    load_cleanup(L, cs[0], &g, 1, 10000);
done:
    for (uint32_t i = 0; i < V + 2; i++)
        lconn_free(cs[i]);
    free(rp);
    free(fa.rs);
    free(fb.rs);
    free(ra);
    free(rb);
    free(cs);
    return rc;
}
