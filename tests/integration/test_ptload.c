/*
 * test_ptload: a short run of each ptload scenario against a real relay. Each test starts the
 * relay through the harness (127.0.0.1 port 0, a temporary data dir), runs PTLOAD_BIN with small counts and --relay-pid, and checks that the JSON result is
 * complete, that ptload's own checks passed, and that not one byte was lost, duplicated or wrong.
 * Speed is never checked here: that is docs/benchmarks.md's business. Every wait is bounded.
 */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "harness.h"

#define RUN_MS 120000

static char token_file[128], pid_text[16];

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Starts the relay through the harness (extra flags NULL-terminated). */
static void relay_start(const char *const *extra)
{
    h_relay_startv(extra ? extra : (const char *const[]){NULL});
    snprintf(token_file, sizeof token_file, "%s/admin.token", h_relay_dir());
    snprintf(pid_text, sizeof pid_text, "%d", (int)h_relay_pid());
}

static void relay_stop(void) { h_relay_stop(); }

/*
 * Runs ptload with the scenario and args (NULL-terminated), bounded by RUN_MS, and returns its
 * parsed JSON; *status gets the exit status.
 */
static json_t *ptload(int *status, const char *const *args)
{
    int p[2];
    cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
    const char *argv[32] = {PTLOAD_BIN, "--quiet", "--url", h_relay_url(), "--token-file",
                            token_file, "--relay-pid", pid_text};
    int n = 8;
    for (int i = 0; args[i] && n < 31; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        dup2(p[1], 1);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(p[1]);
    size_t cap = 1 << 20, len = 0;
    char *out = malloc(cap);
    cr_assert_not_null(out);
    long long deadline = now_ms() + RUN_MS;
    for (;;) {
        long long left = deadline - now_ms();
        if (left <= 0) {
            kill(pid, SIGKILL);
            break;
        }
        struct pollfd pfd = {.fd = p[0], .events = POLLIN};
        if (poll(&pfd, 1, (int)left) <= 0)
            continue;
        ssize_t r = read(p[0], out + len, cap - 1 - len);
        if (r <= 0)
            break;
        len += (size_t)r;
        cr_assert_lt(len, cap - 1, "ptload wrote more than %zu bytes", cap);
    }
    close(p[0]);
    waitpid(pid, status, 0);
    out[len] = '\0';
    json_error_t err;
    json_t *j = json_loads(out, 0, &err);
    cr_assert_not_null(j, "ptload's output is not JSON (%s): %s", err.text, out);
    cr_assert(json_is_object(j));
    free(out);
    return j;
}

/* The keys every result has, and ptload's verdict. */
static void check_common(json_t *j, const char *scenario, int status)
{
    cr_assert_str_eq(json_string_value(json_object_get(j, "scenario")), scenario);
    json_t *errors = json_object_get(j, "errors");
    cr_assert(json_is_integer(errors), "no errors count");
    char *dump = json_dumps(json_object_get(j, "error_messages"), 0);
    cr_expect_eq(json_integer_value(errors), 0, "errors: %s", dump);
    free(dump);
    cr_assert(json_is_true(json_object_get(j, "ok")), "ptload's checks failed");
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "ptload exit status 0x%x", status);
    cr_assert(json_is_number(json_object_get(j, "elapsed_s")));
}

static void check_number(json_t *o, const char *key)
{
    cr_assert(json_is_number(json_object_get(o, key)), "no number '%s'", key);
}

static void check_zero(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    cr_assert(json_is_integer(v), "no integer '%s'", key);
    cr_assert_eq(json_integer_value(v), 0, "%s = %lld", key, (long long)json_integer_value(v));
}

static void check_latency(json_t *o, int samples)
{
    check_number(o, "p50_us");
    check_number(o, "p90_us");
    check_number(o, "p99_us");
    check_number(o, "max_us");
    cr_assert_eq(json_integer_value(json_object_get(o, "samples")), samples);
    cr_assert_leq(json_number_value(json_object_get(o, "p50_us")),
                  json_number_value(json_object_get(o, "p99_us")));
    cr_assert_leq(json_number_value(json_object_get(o, "p99_us")),
                  json_number_value(json_object_get(o, "max_us")));
}

static void check_relay(json_t *o, const char *key)
{
    json_t *r = json_object_get(o, key);
    cr_assert(json_is_object(r), "no relay figures '%s' (is /proc readable?)", key);
    check_number(r, "rss_kb");
    check_number(r, "fds");
    cr_assert_gt(json_integer_value(json_object_get(r, "rss_kb")), 0);
}

static void check_lossless(json_t *o, long long bytes)
{
    check_zero(o, "bytes_lost");
    check_zero(o, "bytes_lost_at_exit");
    check_zero(o, "bytes_duplicated");
    check_zero(o, "bytes_wrong");
    cr_assert_eq(json_integer_value(json_object_get(o, "bytes")), bytes);
}

TestSuite(ptload, .fini = relay_stop, .timeout = 240);

Test(ptload, throughput)
{
    relay_start(NULL);
    int st;
    /* 2 MiB a session fits the relay's default 4 MiB ring: no reader can be skipped ahead. */
    json_t *j = ptload(&st, (const char *const[]){"throughput", "--sessions", "3", "--connections",
                                                  "2", "--bytes", "2M", NULL});
    check_common(j, "throughput", st);
    check_number(j, "bytes_per_sec");
    cr_assert_gt(json_number_value(json_object_get(j, "bytes_per_sec")), 0);
    check_number(json_object_get(json_object_get(j, "per_session"), "bytes_per_sec"), "min");
    check_lossless(j, 3ll << 21);
    cr_assert_eq(json_integer_value(json_object_get(j, "sessions_ended")), 3);
    check_relay(j, "relay_before");
    check_relay(j, "relay_after");
    json_decref(j);
}

Test(ptload, throughput_file)
{
    relay_start(NULL);
    char path[128];
    snprintf(path, sizeof path, "%s/data.bin", h_relay_dir());
    FILE *f = fopen(path, "we");
    cr_assert_not_null(f);
    unsigned x = 12345;
    for (int i = 0; i < 300000; i++) {
        x = x * 1103515245u + 12345u;
        fputc((int)(x >> 16) & 0xff, f); /* every byte value: raw mode must pass them all */
    }
    cr_assert_eq(fclose(f), 0);
    int st;
    json_t *j = ptload(&st, (const char *const[]){"throughput", "--file", path, NULL});
    check_common(j, "throughput", st);
    cr_assert_str_eq(json_string_value(json_object_get(j, "source")), "file");
    check_lossless(j, 300000);
    json_decref(j);
}

Test(ptload, echo)
{
    relay_start(NULL);
    int st;
    json_t *j = ptload(&st, (const char *const[]){"echo", "--samples", "200", "--flood", "1",
                                                  "--window", "65536", NULL});
    check_common(j, "echo", st);
    check_latency(j, 200);
    check_zero(j, "bytes_lost");
    check_zero(j, "flood_bytes_wrong");
    cr_assert_eq(json_integer_value(json_object_get(j, "flood")), 1);
    check_number(j, "flood_bytes_per_sec");
    json_decref(j);
}

Test(ptload, fanout)
{
    relay_start(NULL);
    int st;
    json_t *j = ptload(&st, (const char *const[]){"fanout", "--viewers", "3", "--bytes", "1M", NULL});
    check_common(j, "fanout", st);
    json_t *pv = json_object_get(json_object_get(j, "per_viewer"), "bytes_per_sec");
    check_number(pv, "min");
    check_number(pv, "spread");
    check_lossless(j, 3ll << 20);
    json_decref(j);
}

Test(ptload, idle)
{
    relay_start(NULL);
    int st;
    json_t *j = ptload(&st, (const char *const[]){"idle", "--sessions", "20", "--connections", "2",
                                                  "--samples", "100", NULL});
    check_common(j, "idle", st);
    cr_assert_eq(json_integer_value(json_object_get(j, "sessions_open")), 20);
    check_number(j, "rss_kb");
    check_number(j, "fds");
    check_number(j, "relay_bytes_per_session");
    check_number(j, "open_seconds");
    check_latency(json_object_get(j, "echo"), 100);
    check_zero(j, "bytes_lost");
    check_relay(j, "relay_before");
    /* Every session was removed: the relay is back to the fds it had before. */
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(j, "relay_after_cleanup"), "fds")),
                 json_integer_value(json_object_get(json_object_get(j, "relay_before"), "fds")));
    json_decref(j);
}

Test(ptload, slow)
{
    relay_start((const char *const[]){"--stall-timeout", "1", NULL});
    int st;
    /* More than loopback's socket buffers hold, so the stalled client's socket does fill up. */
    json_t *j = ptload(&st, (const char *const[]){"slow", "--viewers", "2", "--bytes", "24M",
                                                  "--seconds", "4", NULL});
    check_common(j, "slow", st);
    check_number(json_object_get(j, "baseline"), "bytes_per_sec");
    check_number(json_object_get(j, "with_stalled"), "bytes_per_sec");
    check_number(j, "throughput_ratio");
    /* Readers may fall behind the ring and be skipped ahead (PTC1's rule), but never lose the end. */
    check_number(j, "bytes_skipped");
    check_zero(j, "bytes_lost_at_exit");
    check_zero(j, "bytes_duplicated");
    check_zero(j, "bytes_wrong");
    json_t *s = json_object_get(j, "stalled");
    cr_assert(json_is_true(json_object_get(s, "dropped")), "the relay kept the stalled client");
    cr_assert(json_is_integer(json_object_get(s, "close_code")));
    json_t *rot = json_object_get(json_object_get(j, "relay_over_time"), "rss_kb");
    check_number(rot, "max");
    json_decref(j);
}

Test(ptload, churn)
{
    relay_start(NULL);
    int st;
    json_t *j = ptload(&st, (const char *const[]){"churn", "--seconds", "2", "--rate", "10", NULL});
    check_common(j, "churn", st);
    long long started = json_integer_value(json_object_get(j, "cycles_started"));
    cr_assert_geq(started, 10);
    cr_assert_eq(json_integer_value(json_object_get(j, "cycles_ok")), started);
    check_zero(j, "fds_leaked");
    check_latency(json_object_get(j, "cycle"), (int)started);
    json_decref(j);
}
