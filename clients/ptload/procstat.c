/*
 * procstat: the relay's own figures read from /proc when it runs on this machine (--relay-pid):
 * resident memory (VmRSS), open file descriptors, and CPU time (user + system). A sampler reads
 * the RSS on a timer while the loop runs, so a scenario can show whether the relay's memory grew.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ptload.h"

/* Reads the relay's figures now. */
struct procstat procstat_read(pid_t pid)
{
    struct procstat p = {0};
    char path[64], line[256];
    if (pid <= 0)
        return p;
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return p;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "VmRSS:", 6))
            p.rss_kb = strtoull(line + 6, NULL, 10);
    fclose(f);

    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    f = fopen(path, "re");
    if (f) {
        char buf[1024];
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        buf[n] = '\0';
        fclose(f);
        /* Fields after the command name (which may hold spaces) start after the last ')'. */
        char *q = strrchr(buf, ')');
        unsigned long long ut = 0, st = 0;
        if (q && sscanf(q + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) == 2)
            p.cpu_s = (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
    }

    snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
    DIR *d = opendir(path);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)))
            p.fds += e->d_name[0] != '.';
        closedir(d);
    }
    p.ok = p.rss_kb > 0;
    return p;
}

/* The figures as JSON (null when the relay is not local). */
json_t *procstat_json(const struct procstat *p)
{
    if (!p->ok)
        return json_null();
    return json_pack("{s:I, s:I, s:f}", "rss_kb", (json_int_t)p->rss_kb, "fds", (json_int_t)p->fds,
                     "cpu_s", p->cpu_s);
}

struct procsampler {
    struct load *L;
    struct ptc_client_timer *t;
    uint64_t period_ms;
    json_t *samples;
    uint64_t first, min, max, last;
    size_t n;
};

static void sample(struct ptc_client_timer *t, void *arg)
{
    struct procsampler *ps = arg;
    struct procstat p = procstat_read(ps->L->o.relay_pid);
    if (p.ok) {
        if (!ps->n)
            ps->first = ps->min = p.rss_kb;
        ps->min = p.rss_kb < ps->min ? p.rss_kb : ps->min;
        ps->max = p.rss_kb > ps->max ? p.rss_kb : ps->max;
        ps->last = p.rss_kb;
        ps->n++;
        json_array_append_new(ps->samples, json_pack("[f, I]", (double)load_elapsed_us(ps->L) / 1e6,
                                                     (json_int_t)p.rss_kb));
    }
    ptc_client_timer_set(t, ps->period_ms);
}

/* Starts sampling the relay's RSS every period_ms (nothing when no --relay-pid). */
struct procsampler *procsampler_new(struct load *L, uint64_t period_ms)
{
    struct procsampler *ps = calloc(1, sizeof *ps);
    if (!ps) {
        fprintf(stderr, "ptload: out of memory\n");
        abort();
    }
    ps->L = L;
    ps->period_ms = period_ms;
    ps->samples = json_array();
    if (L->o.relay_pid > 0) {
        ps->t = ptc_client_timer_new(L->ctx, sample, ps);
        sample(ps->t, ps);
    }
    return ps;
}

/* Stops sampling and adds the series under key. */
void procsampler_finish(struct procsampler *ps, json_t *o, const char *key)
{
    if (ps->t) {
        sample(ps->t, ps); /* the last figure, now */
        ptc_client_timer_free(ps->t);
    }
    if (ps->n)
        json_object_set_new(o, key,
                            json_pack("{s:{s:I, s:I, s:I, s:I}, s:o}", "rss_kb", "first",
                                      (json_int_t)ps->first, "min", (json_int_t)ps->min, "max",
                                      (json_int_t)ps->max, "last", (json_int_t)ps->last, "samples",
                                      ps->samples));
    else {
        json_object_set_new(o, key, json_null());
        json_decref(ps->samples);
    }
    free(ps);
}
