/*
 * log: one line per event on stderr (journald adds its own time under systemd; we add ours for
 * plain runs), the allocation wrappers that abort on failure, fatal(), and the clocks. Callers name
 * the object a line is about (session=, conn=); nothing here ever sees a token.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "relay.h"

static int log_threshold = LOG_INFO;
static const char *const level_names[] = {"error", "warn", "info", "debug"};

/* Sets the level threshold. */
void log_set_level(int level) { log_threshold = level; }

/* Parses a level name. */
int log_level_from_name(const char *s)
{
    for (int i = 0; i < 4; i++)
        if (!strcmp(s, level_names[i]))
            return i;
    return -1;
}

static void log_vline(int level, const char *fmt, va_list ap)
{
    char line[1024];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s ", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000,
                     level_names[level]);
    vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    size_t len = strlen(line);
    line[len++] = '\n';
    /* One write per line so lines from a crash-restart never interleave. */
    fwrite(line, 1, len, stderr);
}

/* Writes a log line if level passes the threshold. */
void log_msg(int level, const char *fmt, ...)
{
    if (level > log_threshold)
        return;
    va_list ap;
    va_start(ap, fmt);
    log_vline(level, fmt, ap);
    va_end(ap);
}

/* Logs and ends the process: for broken invariants only, never for bad input. */
void fatal(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vline(LOG_ERROR, fmt, ap);
    va_end(ap);
    abort();
}

/* malloc that aborts on failure. */
void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        fatal("out of memory (%zu bytes)", n);
    return p;
}

/* calloc that aborts on failure. */
void *xcalloc(size_t n, size_t m)
{
    void *p = calloc(n ? n : 1, m ? m : 1);
    if (!p)
        fatal("out of memory (%zu x %zu bytes)", n, m);
    return p;
}

/* realloc that aborts on failure. */
void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        fatal("out of memory (%zu bytes)", n);
    return q;
}

/* strdup that aborts on failure. */
char *xstrdup(const char *s) { return xstrndup(s, strlen(s)); }

/* strndup that aborts on failure. */
char *xstrndup(const char *s, size_t n)
{
    char *p = xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = 0;
    return p;
}

/* Wall-clock milliseconds since the epoch (for created_ms etc.). */
uint64_t now_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Monotonic milliseconds (for timeouts). */
uint64_t now_ms(void) { return now_us() / 1000; }

/* Monotonic microseconds. */
uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}
