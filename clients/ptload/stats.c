/*
 * stats: latency samples and their percentiles, and the spread of a set of per-client figures.
 * Percentiles are nearest-rank over the sorted samples, the same definition bench/ptyread.c uses,
 * so the relay's figures and the bare PTY's can be compared directly.
 */
#include <stdio.h>
#include <stdlib.h>

#include "ptload.h"

/* Prepares room for cap samples (it grows if more come). */
void stats_init(struct stats *st, size_t cap)
{
    st->n = 0;
    st->cap = cap ? cap : 16;
    st->v = malloc(st->cap * sizeof *st->v);
    if (!st->v) {
        fprintf(stderr, "ptload: out of memory\n");
        abort();
    }
}

/* Frees the samples. */
void stats_free(struct stats *st)
{
    free(st->v);
    st->v = NULL;
    st->n = st->cap = 0;
}

/* Adds one sample. */
void stats_add(struct stats *st, uint64_t v)
{
    if (st->n == st->cap) {
        st->cap *= 2;
        uint64_t *nv = realloc(st->v, st->cap * sizeof *nv);
        if (!nv) {
            fprintf(stderr, "ptload: out of memory\n");
            abort();
        }
        st->v = nv;
    }
    st->v[st->n++] = v;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile p of the samples (sorted here). */
uint64_t stats_pct(struct stats *st, double p)
{
    if (!st->n)
        return 0;
    qsort(st->v, st->n, sizeof *st->v, cmp_u64);
    size_t rank = (size_t)((p / 100.0) * (double)st->n + 0.999999);
    if (rank == 0)
        rank = 1;
    if (rank > st->n)
        rank = st->n;
    return st->v[rank - 1];
}

/* Adds samples, p50_us, p90_us, p99_us and max_us to o. */
void stats_latency_json(struct stats *st, json_t *o)
{
    json_object_set_new(o, "samples", json_integer((json_int_t)st->n));
    if (!st->n) {
        json_object_set_new(o, "p50_us", json_null());
        json_object_set_new(o, "p90_us", json_null());
        json_object_set_new(o, "p99_us", json_null());
        json_object_set_new(o, "max_us", json_null());
        return;
    }
    json_object_set_new(o, "p50_us", json_real((double)stats_pct(st, 50)));
    json_object_set_new(o, "p90_us", json_real((double)stats_pct(st, 90)));
    json_object_set_new(o, "p99_us", json_real((double)stats_pct(st, 99)));
    json_object_set_new(o, "max_us", json_real((double)st->v[st->n - 1]));
}

/* {min, mean, max, spread} of v[0..n). */
json_t *stats_spread_json(const double *v, size_t n)
{
    if (!n)
        return json_null();
    double lo = v[0], hi = v[0], sum = 0;
    for (size_t i = 0; i < n; i++) {
        lo = v[i] < lo ? v[i] : lo;
        hi = v[i] > hi ? v[i] : hi;
        sum += v[i];
    }
    double mean = sum / (double)n;
    return json_pack("{s:f, s:f, s:f, s:f}", "min", lo, "mean", mean, "max", hi, "spread",
                     mean > 0 ? (hi - lo) / mean : 0.0);
}
