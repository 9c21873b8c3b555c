/*
 * churn: clients that come and go. At a fixed rate, a cycle connects, says hello, opens a `cat`,
 * attaches to it and closes the connection; a long-lived control connection then kills and
 * removes that session. After --seconds the relay's fds and RSS are compared with what they were
 * before: a cycle that leaves anything behind shows up there. At most CYCLES_MAX cycles are in
 * flight; a tick that finds that many skips its cycle and says so.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ptload.h"

#define CYCLES_MAX 32 /* each holds a `wait` on the control connection; the relay allows 64 */

struct churn;

struct cycle {
    struct churn *ch;
    struct lconn *lc;
    struct lsess s;
    uint64_t t0_us;
    bool closed_ok;
};

struct churn {
    struct load *L;
    struct lconn *ctl;
    struct ptc_client_timer *tick;
    uint64_t period_us, next_us, stop_us;
    uint32_t started, done, ok, skipped, in_flight;
    struct stats lat;
    bool stopping;
};

static const char *const cat_argv[] = {"cat", NULL};

static void cycle_finish(struct cycle *cy, bool ok)
{
    struct churn *ch = cy->ch;
    ch->done++;
    ch->ok += ok;
    ch->in_flight--;
    free(cy);
    load_poke(ch->L);
}

static void cycle_removed(struct lsess *s, bool ok, void *arg) { cycle_finish(arg, ok && ((struct cycle *)arg)->closed_ok); }

static void cycle_conn_end(struct lconn *lc, void *arg)
{
    struct cycle *cy = arg;
    struct churn *ch = cy->ch;
    cy->closed_ok = lc->close_code == 1000 && cy->s.attached;
    if (cy->closed_ok)
        stats_add(&ch->lat, ptc_client_now_us() - cy->t0_us);
    else if (!lc->err) /* on_error already counted its own */
        load_error(ch->L, "churn: connection closed early (%d %s)", lc->close_code, lc->reason);
    cy->lc = NULL;
    lconn_free(lc);
    if (cy->s.have_id) {
        if (lsess_dispose(ch->ctl, &cy->s, cycle_removed, cy) < 0)
            cycle_finish(cy, false);
    } else {
        cycle_finish(cy, false);
    }
}

static void cycle_attached(struct lsess *s)
{
    struct cycle *cy = s->user;
    ptc_client_conn_close(cy->lc->c, 1000, "churn");
}

static void cycle_opened(struct lsess *s) { lsess_attach(s, PTC_MODE_INTERACTIVE); }

static void cycle_failed(struct lsess *s)
{
    struct cycle *cy = s->user;
    if (cy->lc && cy->lc->c && !s->ended)
        ptc_client_conn_close(cy->lc->c, 1000, "churn: request failed");
}

static void cycle_ready(struct lconn *lc)
{
    struct cycle *cy = lc->user;
    lsess_open(&cy->s, cat_argv, PTC_MODE_NONE);
}

static void cycle_start(struct churn *ch)
{
    struct cycle *cy = calloc(1, sizeof *cy);
    if (!cy)
        abort();
    cy->ch = ch;
    cy->t0_us = ptc_client_now_us();
    cy->lc = lconn_new(ch->L, ch->started);
    ch->started++;
    ch->in_flight++;
    if (!cy->lc) {
        cycle_finish(cy, false);
        return;
    }
    cy->lc->user = cy;
    cy->lc->on_ready = cycle_ready;
    cy->lc->on_end = cycle_conn_end;
    lsess_init(&cy->s, cy->lc, ch->started - 1);
    cy->s.user = cy;
    cy->s.hooks.on_opened = cycle_opened;
    cy->s.hooks.on_attached = cycle_attached;
    cy->s.hooks.on_end = cycle_failed;
}

static void tick(struct ptc_client_timer *t, void *arg)
{
    struct churn *ch = arg;
    uint64_t now = ptc_client_now_us();
    /* Start every cycle that is due by now, so the rate holds even when a tick comes late. */
    while (!ch->stopping && ch->next_us <= now && now < ch->stop_us) {
        if (ch->in_flight >= CYCLES_MAX)
            ch->skipped++;
        else
            cycle_start(ch);
        ch->next_us += ch->period_us;
    }
    if (now >= ch->stop_us) {
        ch->stopping = true;
        load_poke(ch->L);
        return;
    }
    uint64_t wait_us = ch->next_us > now ? ch->next_us - now : 0;
    ptc_client_timer_set(t, wait_us / 1000);
}

static bool finished(void *arg)
{
    struct churn *ch = arg;
    return ch->stopping && ch->in_flight == 0;
}

static void progress(void *arg, char *buf, size_t cap)
{
    struct churn *ch = arg;
    snprintf(buf, cap, "%u cycles started, %u done, %u in flight", ch->started, ch->done,
             ch->in_flight);
}

/* Runs the churn scenario. */
int churn_run(struct load *L, json_t *out)
{
    uint32_t rate = L->o.rate ? L->o.rate : 20;
    double secs = L->o.seconds > 0 ? L->o.seconds : 10;
    struct churn ch = {.L = L, .period_us = 1000000 / rate};
    stats_init(&ch.lat, (size_t)(secs * rate) + 16);
    int rc = 0;
    if (lconn_open_many(L, &ch.ctl, 1, 10000) != 1) {
        lconn_free(ch.ctl);
        stats_free(&ch.lat);
        return 1;
    }
    struct procstat before = procstat_read(L->o.relay_pid);
    uint64_t t0 = ptc_client_now_us();
    ch.next_us = t0;
    ch.stop_us = t0 + (uint64_t)(secs * 1e6);
    ch.tick = ptc_client_timer_new(L->ctx, tick, &ch);
    ptc_client_timer_set(ch.tick, 0);
    if (!load_run(L, finished, &ch, (uint64_t)(secs * 1000) + 20000, progress))
        load_error(L, "churn: %u cycles still in flight 20 s after the end", ch.in_flight);
    load_progress_end(L);
    double took = (double)(ptc_client_now_us() - t0) / 1e6;
    ptc_client_timer_free(ch.tick);
    struct procstat after = procstat_read(L->o.relay_pid);

    json_object_set_new(out, "rate", json_integer(rate));
    json_object_set_new(out, "seconds", json_real(took));
    json_object_set_new(out, "cycles_started", json_integer(ch.started));
    json_object_set_new(out, "cycles_ok", json_integer(ch.ok));
    json_object_set_new(out, "cycles_skipped", json_integer(ch.skipped));
    json_object_set_new(out, "cycles_per_sec", json_real(took > 0 ? ch.ok / took : 0));
    json_t *lat = json_object();
    stats_latency_json(&ch.lat, lat);
    json_object_set_new(out, "cycle", lat);
    json_object_set_new(out, "relay_before", procstat_json(&before));
    json_object_set_new(out, "relay_after", procstat_json(&after));
    if (before.ok && after.ok) {
        json_object_set_new(out, "fds_leaked", json_integer((json_int_t)after.fds - (json_int_t)before.fds));
        json_object_set_new(out, "rss_growth_kb",
                            json_integer((json_int_t)after.rss_kb - (json_int_t)before.rss_kb));
    }
    fprintf(stderr, "churn: %u of %u cycles ok in %.1f s (%u skipped); relay fds %+lld, rss %+lld kB\n",
            ch.ok, ch.started, took, ch.skipped,
            before.ok && after.ok ? (long long)after.fds - (long long)before.fds : 0LL,
            before.ok && after.ok ? (long long)after.rss_kb - (long long)before.rss_kb : 0LL);
    if (ch.ok < ch.started || (before.ok && after.ok && after.fds != before.fds))
        rc = 1;
    lconn_free(ch.ctl);
    stats_free(&ch.lat);
    return rc;
}
