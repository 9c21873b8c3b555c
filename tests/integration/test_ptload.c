/*
 * test_ptload: a short run of each ptload scenario against a real relay. Each test starts
 * PTYRELAY_BIN on 127.0.0.1 port 0 with a temporary data dir (its log drained to a file by a
 * thread), runs PTLOAD_BIN with small counts and --relay-pid, and checks that the JSON result is
 * complete, that ptload's own checks passed, and that not one byte was lost, duplicated or wrong.
 * Speed is never checked here: that is docs/benchmarks.md's business. Every wait is bounded.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <jansson.h>

#define WAIT_MS 20000
#define RUN_MS 120000

static struct {
    pid_t pid;
    int port;
    char dir[64];
    char url[64];
    char token_file[128];
    char pid_text[16];
    int log_fd, pipe_fd;
    pthread_t drain;
    bool draining;
} relay;

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void *drain(void *arg)
{
    char buf[4096];
    ssize_t n;
    while ((n = read(relay.pipe_fd, buf, sizeof buf)) > 0)
        if (write(relay.log_fd, buf, (size_t)n) < 0)
            break;
    return NULL;
}

/* Starts the relay with extra flags (NULL-terminated) and reads its port from the log. */
static void relay_start(const char *const *extra)
{
    snprintf(relay.dir, sizeof relay.dir, "/tmp/ptload-test.XXXXXX");
    cr_assert_not_null(mkdtemp(relay.dir));
    int p[2];
    cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
    const char *argv[16] = {PTYRELAY_BIN, "serve", "--listen", "127.0.0.1:0", "--data", relay.dir};
    int n = 6;
    for (int i = 0; extra && extra[i] && n < 15; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    relay.pid = fork();
    cr_assert_geq(relay.pid, 0);
    if (relay.pid == 0) {
        dup2(p[1], 1);
        dup2(p[1], 2);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(p[1]);
    relay.pipe_fd = p[0];

    /* Read until the listening line, bounded; keep what was read for the log. */
    char log[8192];
    size_t len = 0;
    long long deadline = now_ms() + WAIT_MS;
    char *at = NULL;
    while (!at) {
        long long left = deadline - now_ms();
        cr_assert_gt(left, 0, "the relay did not say where it listens within %d ms:\n%.*s", WAIT_MS,
                     (int)len, log);
        struct pollfd pfd = {.fd = relay.pipe_fd, .events = POLLIN};
        if (poll(&pfd, 1, (int)left) <= 0)
            continue;
        ssize_t r = read(relay.pipe_fd, log + len, sizeof log - 1 - len);
        cr_assert_gt(r, 0, "the relay exited before listening:\n%.*s", (int)len, log);
        len += (size_t)r;
        log[len] = '\0';
        at = strstr(log, "listening on ws://127.0.0.1:");
        if (at && !strchr(at, '\n') && len < sizeof log - 1)
            at = NULL; /* the line is not complete yet */
    }
    relay.port = atoi(at + strlen("listening on ws://127.0.0.1:"));
    cr_assert_gt(relay.port, 0);
    snprintf(relay.url, sizeof relay.url, "ws://127.0.0.1:%d/ptc1", relay.port);
    snprintf(relay.token_file, sizeof relay.token_file, "%s/admin.token", relay.dir);
    snprintf(relay.pid_text, sizeof relay.pid_text, "%d", (int)relay.pid);

    char logpath[128];
    snprintf(logpath, sizeof logpath, "%s/relay.log", relay.dir);
    relay.log_fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    cr_assert_geq(relay.log_fd, 0);
    cr_assert_eq(write(relay.log_fd, log, len), (ssize_t)len);
    cr_assert_eq(pthread_create(&relay.drain, NULL, drain, NULL), 0);
    relay.draining = true;
}

/* Stops the relay (SIGTERM, bounded wait, then SIGKILL) and removes its data dir. */
static void relay_stop(void)
{
    if (relay.pid > 0) {
        int pfd = (int)syscall(SYS_pidfd_open, relay.pid, 0);
        kill(relay.pid, SIGTERM);
        struct pollfd w = {.fd = pfd, .events = POLLIN};
        if (pfd < 0 || poll(&w, 1, WAIT_MS) != 1)
            kill(relay.pid, SIGKILL);
        waitpid(relay.pid, NULL, 0);
        if (pfd >= 0)
            close(pfd);
        relay.pid = 0;
    }
    if (relay.draining) {
        pthread_join(relay.drain, NULL); /* the pipe closed with the relay */
        relay.draining = false;
        close(relay.pipe_fd);
        close(relay.log_fd);
    }
    if (relay.dir[0]) {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", relay.dir);
        cr_expect_eq(system(cmd), 0);
        relay.dir[0] = '\0';
    }
}

/*
 * Runs ptload with the scenario and args (NULL-terminated), bounded by RUN_MS, and returns its
 * parsed JSON; *status gets the exit status.
 */
static json_t *ptload(int *status, const char *const *args)
{
    int p[2];
    cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
    const char *argv[32] = {PTLOAD_BIN, "--quiet", "--url", relay.url, "--token-file",
                            relay.token_file, "--relay-pid", relay.pid_text};
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
    snprintf(path, sizeof path, "%s/data.bin", relay.dir);
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
