/*
 * echo: keystroke round trips. One byte goes out as INPUT to an interactive `cat` in raw mode
 * without echo, and the clock stops when that byte comes back as OUTPUT; the next byte leaves at
 * once, as bench/ptyread.c does on a bare PTY. With --flood K, K more sessions on the same
 * connection write as fast as they can meanwhile, and the round trips are measured through them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ptload.h"

/* Raw mode, no echo, a ready mark, then cat: every byte sent comes back once. */
const char *const echo_argv[] = {"/bin/sh", "-c", "stty raw -echo; printf R; exec cat", NULL};

struct em {
    struct load *L;
    struct lsess *s;
    struct stats st;
    uint32_t warmup, total, sent;
    uint64_t t0;
    char want;
    bool waiting, done, broken;
};

static void em_send(struct em *m)
{
    m->want = (char)('a' + m->sent % 26);
    m->waiting = true;
    m->t0 = ptc_client_now_us();
    m->sent++;
    if (lsess_input(m->s, &m->want, 1) < 0) {
        m->broken = true;
        load_poke(m->L);
    }
}

static void em_output(struct lsess *s, uint64_t off, const uint8_t *p, size_t n)
{
    struct em *m = s->user;
    for (size_t i = 0; i < n && !m->done; i++) {
        if (!m->waiting || p[i] != (uint8_t)m->want) {
            load_error(m->L, "echo: got 0x%02x at offset %llu, expected '%c'", p[i],
                       (unsigned long long)(off + i), m->waiting ? m->want : '-');
            m->broken = true;
            m->done = true;
            load_poke(m->L);
            return;
        }
        uint64_t t1 = ptc_client_now_us();
        m->waiting = false;
        if (m->sent > m->warmup)
            stats_add(&m->st, t1 - m->t0);
        if (m->sent >= m->total) {
            m->done = true;
            load_poke(m->L);
            return;
        }
        em_send(m);
    }
}

static void em_end(struct lsess *s)
{
    struct em *m = s->user;
    m->broken = m->done = true;
}

static bool em_done(void *arg)
{
    struct em *m = arg;
    return m->done || m->broken || lsess_done(m->s);
}

static void em_progress(void *arg, char *buf, size_t cap)
{
    struct em *m = arg;
    snprintf(buf, cap, "echo: %u/%u round trips", m->sent, m->total);
}

static bool ready_mark(void *arg)
{
    struct lsess *s = arg;
    return s->bytes >= 1 || lsess_done(s);
}

/* Measures round trips on s, an attached session running echo_argv. */
int echo_measure(struct load *L, struct lsess *s, uint32_t samples, uint32_t warmup,
                 uint64_t timeout_ms, json_t *out)
{
    struct em m = {.L = L, .s = s, .warmup = warmup, .total = samples + warmup};
    stats_init(&m.st, samples);
    /* The "R" says the tty is raw and cat runs: nothing sent now can be echoed by the tty. */
    if (!load_run(L, ready_mark, s, 10000, NULL) || s->bytes < 1) {
        load_error(L, "echo: the session did not start within 10 s");
        stats_latency_json(&m.st, out);
        stats_free(&m.st);
        return 1;
    }
    struct lsess_hooks saved = s->hooks;
    void *saved_user = s->user;
    s->hooks.on_output = em_output;
    s->hooks.on_end = em_end;
    s->user = &m;
    uint64_t t0 = ptc_client_now_us();
    em_send(&m);
    if (!load_run(L, em_done, &m, timeout_ms, em_progress))
        load_error(L, "echo: %u of %u round trips within %.0f s", m.sent, m.total,
                   (double)timeout_ms / 1e3);
    load_progress_end(L);
    double secs = (double)(ptc_client_now_us() - t0) / 1e6;
    s->hooks = saved;
    s->user = saved_user;
    if (m.broken)
        load_error(L, "echo: the round trips stopped after %u", m.sent);
    stats_latency_json(&m.st, out);
    json_object_set_new(out, "round_trips_per_sec", json_real(secs > 0 ? m.st.n / secs : 0));
    int rc = m.broken || m.st.n < samples;
    stats_free(&m.st);
    return rc;
}

static void flood_attach(struct lsess *s) { lsess_attach(s, PTC_MODE_VIEW); }

struct flood_wait {
    struct lsess **ss;
    uint32_t n;
};

static bool flood_started(void *arg)
{
    struct flood_wait *w = arg;
    for (uint32_t i = 0; i < w->n; i++)
        if (!w->ss[i]->bytes && !lsess_done(w->ss[i]))
            return false;
    return true;
}

static bool flood_ended(void *arg)
{
    struct flood_wait *w = arg;
    for (uint32_t i = 0; i < w->n; i++)
        if (!lsess_done(w->ss[i]))
            return false;
    return true;
}

/* Runs the echo scenario. */
int echo_run(struct load *L, json_t *out)
{
    uint32_t samples = L->o.samples ? L->o.samples : 10000;
    uint32_t K = L->o.flood;
    uint64_t timeout_ms = (uint64_t)((L->o.seconds > 0 ? L->o.seconds : 120) * 1000);
    int rc = 0;

    struct lconn *lc = NULL;
    if (lconn_open_many(L, &lc, 1, 10000) != 1) {
        lconn_free(lc);
        return 1;
    }
    struct lsess **ss = calloc(K + 1, sizeof *ss);
    for (uint32_t i = 0; i <= K; i++) {
        ss[i] = calloc(1, sizeof **ss);
        if (!ss[i])
            abort();
        lsess_init(ss[i], lc, i);
    }
    char *flood_cmd = load_gen_cmd(0);
    const char *flood_argv[] = {"/bin/sh", "-c", flood_cmd, NULL};
    for (uint32_t i = 1; i <= K; i++) {
        ss[i]->verify = VERIFY_PATTERN;
        ss[i]->window = L->o.window;
        ss[i]->hooks.on_opened = flood_attach;
        lsess_open(ss[i], flood_argv, PTC_MODE_NONE);
    }
    lsess_open(ss[0], echo_argv, PTC_MODE_INTERACTIVE);
    struct flood_wait fw = {ss + 1, K};
    if (K && !load_run(L, flood_started, &fw, 10000, NULL))
        load_error(L, "echo: the flooding sessions did not start within 10 s");

    uint64_t flood_before = 0, t_meas0 = ptc_client_now_us();
    for (uint32_t i = 1; i <= K; i++)
        flood_before += ss[i]->bytes;
    rc |= echo_measure(L, ss[0], samples, samples < 1000 ? samples / 5 : 200, timeout_ms, out);
    uint64_t flood_during = 0, t_meas1 = ptc_client_now_us();
    for (uint32_t i = 1; i <= K; i++)
        flood_during += ss[i]->bytes;
    flood_during -= flood_before;

    for (uint32_t i = 1; i <= K; i++)
        lsess_kill(ss[i]);
    if (K && !load_run(L, flood_ended, &fw, 10000, NULL))
        load_error(L, "echo: the flooding sessions did not end within 10 s of SIGKILL");

    json_object_set_new(out, "flood", json_integer(K));
    json_object_set_new(out, "flood_window", json_integer((json_int_t)L->o.window));
    if (K) {
        /* A reader slower than the PTY may see the relay skip ahead (PTC1's slow-reader rule): that
         * is reported apart from bytes_lost, which here only counts the echo session. */
        uint64_t skipped = 0;
        for (uint32_t i = 1; i <= K; i++)
            skipped += ss[i]->lost + ss[i]->skipped;
        double secs = (double)(t_meas1 - t_meas0) / 1e6;
        json_object_set_new(out, "flood_bytes_per_sec",
                            json_real(secs > 0 ? (double)flood_during / secs : 0));
        json_object_set_new(out, "flood_bytes_skipped", json_integer((json_int_t)skipped));
        uint64_t wrong = 0, dup = 0;
        for (uint32_t i = 1; i <= K; i++) {
            wrong += ss[i]->bad;
            dup += ss[i]->dup;
        }
        json_object_set_new(out, "flood_bytes_wrong", json_integer((json_int_t)(wrong + dup)));
        if (wrong + dup)
            rc = 1;
    }
    json_object_set_new(out, "bytes_lost", json_integer((json_int_t)(ss[0]->lost + ss[0]->skipped + ss[0]->dup)));

    json_t *p50 = json_object_get(out, "p50_us"), *p99 = json_object_get(out, "p99_us");
    fprintf(stderr, "echo: %u samples beside %u flooding sessions: p50 %.1f us, p99 %.1f us\n",
            samples, K, json_number_value(p50), json_number_value(p99));

    load_cleanup(L, lc, ss, K + 1, 20000);
    lconn_free(lc);
    for (uint32_t i = 0; i <= K; i++)
        free(ss[i]);
    free(ss);
    free(flood_cmd);
    return rc;
}
