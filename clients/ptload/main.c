/*
 * ptload: the load harness. `ptload --url URL --token T SCENARIO [options]` runs one scenario
 * against a relay and prints one JSON object of results on stdout, with a progress line and a
 * short summary on stderr. Options have the same name in every scenario that uses them; results
 * use the same key names everywhere (bytes_per_sec, bytes_lost, p50_us ... max_us, rss_kb, fds,
 * errors). The exit status is 0 when the scenario's own checks passed (no bytes lost, no errors),
 * 1 when they did not, 2 on a usage error.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "ptload.h"

struct scenario {
    const char *name;
    int (*run)(struct load *L, json_t *out);
    const char *what;
};

static const struct scenario scenarios[] = {
    {"throughput", throughput_run, "S sessions write N bytes each over C connections"},
    {"echo", echo_run, "keystroke round trips, optionally beside K flooding sessions"},
    {"fanout", fanout_run, "one writing session read by V view-only clients"},
    {"idle", idle_run, "S idle sessions: relay memory and fds per session, echo while open"},
    {"slow", slow_run, "V readers with and without one stalled client"},
    {"churn", churn_run, "connect, hello, open, attach, close at a fixed rate"},
    {NULL, NULL, NULL},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: ptload --url ws://HOST:PORT/ptc1 (--token T | --token-file F) SCENARIO [options]\n"
               "scenarios:\n");
    for (const struct scenario *s = scenarios; s->name; s++)
        fprintf(f, "  %-11s %s\n", s->name, s->what);
    fprintf(f, "options (where they apply):\n"
               "  --sessions N     sessions (throughput 1, idle 100)\n"
               "  --connections N  connections the sessions are spread over (1)\n"
               "  --bytes N        bytes each generator writes (throughput 256 MiB, fanout/slow 64 MiB)\n"
               "  --file F         throughput: cat F instead of the generator\n"
               "  --samples N      echo round trips (echo 10000, idle 2000)\n"
               "  --flood K        echo: K sessions flood on the same connection meanwhile\n"
               "  --viewers V      fanout: view-only clients (4); slow: readers (2)\n"
               "  --seconds S      time bound; slow: how long the client stays stalled (40);\n"
               "                   churn: how long cycles start (10)\n"
               "  --rate R         churn: cycles per second (20)\n"
               "  --relay-pid P    read the relay's RSS, CPU time and fds from /proc/P\n"
               "  --window W       attach readers with a PTC1 flow-control window of W bytes and\n"
               "                   ACK as they consume (echo's flood, fanout, slow); 0 = none\n"
               "  --quiet          no progress line\n"
               "The JSON result goes to stdout; the exit status is 1 when bytes were lost or errors "
               "occurred.\n");
}

static int parse_u64(const char *s, const char *opt, uint64_t max, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *s == '-' || v > max) {
        fprintf(stderr, "ptload: %s wants a number up to %llu, got '%s'\n", opt,
                (unsigned long long)max, s);
        return -1;
    }
    /* k, M, G suffixes (powers of 1024) for byte counts */
    if (*end == 'k' || *end == 'K')
        v <<= 10, end++;
    else if (*end == 'M')
        v <<= 20, end++;
    else if (*end == 'G')
        v <<= 30, end++;
    if (*end) {
        fprintf(stderr, "ptload: %s: '%s' is not a number\n", opt, s);
        return -1;
    }
    *out = v;
    return 0;
}

static char *read_token_file(const char *path)
{
    FILE *f = fopen(path, "re");
    if (!f) {
        fprintf(stderr, "ptload: %s: %s\n", path, strerror(errno));
        return NULL;
    }
    char buf[512];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    buf[strcspn(buf, "\r\n")] = '\0';
    return strdup(buf);
}

enum {
    O_URL = 1, O_TOKEN, O_TOKEN_FILE, O_SESSIONS, O_CONNECTIONS, O_BYTES, O_FILE, O_SAMPLES,
    O_FLOOD, O_VIEWERS, O_SECONDS, O_RATE, O_RELAY_PID, O_WINDOW, O_QUIET, O_HELP,
};

/* Parses the command line into o and *scenario. 0, or 2 for a usage error. */
static int parse_args(int argc, char **argv, struct load_opts *o, const struct scenario **sc,
                      char **token_alloc)
{
    static const struct option opts[] = {
        {"url", required_argument, NULL, O_URL},
        {"token", required_argument, NULL, O_TOKEN},
        {"token-file", required_argument, NULL, O_TOKEN_FILE},
        {"sessions", required_argument, NULL, O_SESSIONS},
        {"connections", required_argument, NULL, O_CONNECTIONS},
        {"bytes", required_argument, NULL, O_BYTES},
        {"file", required_argument, NULL, O_FILE},
        {"samples", required_argument, NULL, O_SAMPLES},
        {"flood", required_argument, NULL, O_FLOOD},
        {"viewers", required_argument, NULL, O_VIEWERS},
        {"seconds", required_argument, NULL, O_SECONDS},
        {"rate", required_argument, NULL, O_RATE},
        {"relay-pid", required_argument, NULL, O_RELAY_PID},
        {"window", required_argument, NULL, O_WINDOW},
        {"quiet", no_argument, NULL, O_QUIET},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    int c;
    uint64_t v;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        const char *name = argv[optind - 1];
        switch (c) {
        case O_URL: o->url = optarg; break;
        case O_TOKEN: o->token = optarg; break;
        case O_TOKEN_FILE:
            free(*token_alloc);
            *token_alloc = read_token_file(optarg);
            if (!*token_alloc)
                return 2;
            o->token = *token_alloc;
            break;
        case O_SESSIONS:
            if (parse_u64(optarg, name, 100000, &v) || !v)
                return 2;
            o->sessions = (uint32_t)v;
            break;
        case O_CONNECTIONS:
            if (parse_u64(optarg, name, 10000, &v) || !v)
                return 2;
            o->connections = (uint32_t)v;
            break;
        case O_BYTES:
            if (parse_u64(optarg, name, 1ull << 40, &v) || !v)
                return 2;
            o->bytes = v;
            break;
        case O_FILE: o->file = optarg; break;
        case O_SAMPLES:
            if (parse_u64(optarg, name, 10000000, &v) || !v)
                return 2;
            o->samples = (uint32_t)v;
            break;
        case O_FLOOD:
            if (parse_u64(optarg, name, 1000, &v))
                return 2;
            o->flood = (uint32_t)v;
            break;
        case O_VIEWERS:
            if (parse_u64(optarg, name, 10000, &v) || !v)
                return 2;
            o->viewers = (uint32_t)v;
            break;
        case O_SECONDS: {
            char *end;
            double d = strtod(optarg, &end);
            if (*end || !(d > 0) || d > 86400) {
                fprintf(stderr, "ptload: --seconds wants a number of seconds, got '%s'\n", optarg);
                return 2;
            }
            o->seconds = d;
            break;
        }
        case O_RATE:
            if (parse_u64(optarg, name, 10000, &v) || !v)
                return 2;
            o->rate = (uint32_t)v;
            break;
        case O_RELAY_PID:
            if (parse_u64(optarg, name, 1u << 30, &v) || !v)
                return 2;
            o->relay_pid = (pid_t)v;
            break;
        case O_WINDOW:
            if (parse_u64(optarg, name, 1ull << 32, &v))
                return 2;
            o->window = v;
            break;
        case O_QUIET: o->quiet = true; break;
        case O_HELP: usage(stdout); exit(0);
        default:
            fprintf(stderr, "ptload: unknown or incomplete option '%s'\n", name);
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, "ptload: %s\n", optind >= argc ? "which scenario?" : "one scenario only");
        usage(stderr);
        return 2;
    }
    for (*sc = scenarios; (*sc)->name; (*sc)++)
        if (!strcmp((*sc)->name, argv[optind]))
            break;
    if (!(*sc)->name) {
        fprintf(stderr, "ptload: unknown scenario '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    if (!o->url || !o->token) {
        fprintf(stderr, "ptload: --url and --token (or --token-file) are required\n");
        return 2;
    }
    if (o->file && o->bytes) {
        fprintf(stderr, "ptload: --file and --bytes exclude each other\n");
        return 2;
    }
    return 0;
}

static json_t *opts_json(const struct load_opts *o)
{
    json_t *j = json_object();
    json_object_set_new(j, "sessions", o->sessions ? json_integer(o->sessions) : json_null());
    json_object_set_new(j, "connections", o->connections ? json_integer(o->connections) : json_null());
    json_object_set_new(j, "bytes", o->bytes ? json_integer((json_int_t)o->bytes) : json_null());
    json_object_set_new(j, "file", o->file ? json_string(o->file) : json_null());
    json_object_set_new(j, "samples", o->samples ? json_integer(o->samples) : json_null());
    json_object_set_new(j, "flood", json_integer(o->flood));
    json_object_set_new(j, "viewers", o->viewers ? json_integer(o->viewers) : json_null());
    json_object_set_new(j, "seconds", o->seconds > 0 ? json_real(o->seconds) : json_null());
    json_object_set_new(j, "rate", o->rate ? json_integer(o->rate) : json_null());
    json_object_set_new(j, "window", json_integer((json_int_t)o->window));
    json_object_set_new(j, "relay_pid", o->relay_pid ? json_integer(o->relay_pid) : json_null());
    return j;
}

int main(int argc, char **argv)
{
    struct load_opts o;
    const struct scenario *sc = NULL;
    char *token_alloc = NULL;
    memset(&o, 0, sizeof o);
    int rc = parse_args(argc, argv, &o, &sc, &token_alloc);
    if (rc) {
        free(token_alloc);
        return rc;
    }
    signal(SIGPIPE, SIG_IGN);

    struct load L;
    if (load_init(&L, &o, sc->name) < 0) {
        load_free(&L);
        free(token_alloc);
        return 1;
    }
    json_t *out = json_object();
    json_object_set_new(out, "scenario", json_string(sc->name));
    json_object_set_new(out, "ptload", json_string(PTYRELAY_VERSION));
    json_object_set_new(out, "url", json_string(o.url));
    json_object_set_new(out, "options", opts_json(&o));
    rc = sc->run(&L, out);
    load_progress_end(&L);
    if (L.errors)
        rc = 1;
    json_object_set_new(out, "errors", json_integer((json_int_t)L.errors));
    json_object_set(out, "error_messages", L.error_list);
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0)
        json_object_set_new(out, "ptload_cpu_s",
                            json_real((double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                                      (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6));
    json_object_set_new(out, "elapsed_s", json_real((double)load_elapsed_us(&L) / 1e6));
    json_object_set_new(out, "ok", json_boolean(rc == 0));
    if (json_dumpf(out, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10)) < 0 ||
        fputc('\n', stdout) == EOF || fflush(stdout) == EOF) {
        fprintf(stderr, "ptload: cannot write the result: %s\n", strerror(errno));
        rc = 1;
    }
    for (size_t i = 0; i < json_array_size(L.error_list); i++)
        fprintf(stderr, "ptload: error: %s\n", json_string_value(json_array_get(L.error_list, i)));
    if (L.errors > json_array_size(L.error_list))
        fprintf(stderr, "ptload: ... %llu errors in all\n", (unsigned long long)L.errors);
    json_decref(out);
    load_free(&L);
    free(token_alloc);
    return rc;
}
