/*
 * ptyread: the baseline the relay is measured against, a program that does nothing but read a PTY.
 *
 * It owns the two reference figures of docs/benchmarks.md, measured on the same machine in the same
 * run as the relay: how fast a bare reader drains a raw-mode PTY (throughput), and how long one
 * byte takes to go through a PTY to `cat` and back (echo). It is deliberately the bare minimum:
 * openpty + fork + login_tty + /bin/sh -c, one 64 KiB read buffer, poll(), no pty module, no
 * event library. The command run is ours, not a client's, so going through sh is fine here.
 *
 *   ptyread throughput [--bytes N | --file F] [--cmd 'shell command'] [--timeout S]
 *   ptyread echo [--samples N] [--warmup N] [--timeout S]
 *
 * Each prints one JSON object on stdout. Like the relay, the parent keeps the slave open until the
 * child is reaped, so the tail of the output is never lost to an early hangup of the master.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>
#include <utmp.h>

#define DEFAULT_BYTES (256ull << 20)
#define READ_BUF (64 * 1024)

struct child {
    pid_t pid;
    int master, slave, sfd;
};

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int ms_left(uint64_t deadline)
{
    uint64_t t = now_ns();

    if (t >= deadline)
        return 0;
    return (int)((deadline - t) / 1000000 + 1);
}

static void die(const char *what)
{
    fprintf(stderr, "ptyread: %s: %s\n", what, strerror(errno));
    exit(1);
}

static void usage(void)
{
    fprintf(stderr, "usage: ptyread throughput [--bytes N | --file F] [--cmd 'shell command'] "
                    "[--timeout S]\n"
                    "       ptyread echo [--samples N] [--warmup N] [--timeout S]\n");
    exit(2);
}

/*
 * Starts `sh -c cmd` on a raw-mode PTY. Raw is set on the slave before fork (cfmakeraw: no echo,
 * no CR/LF translation, no line buffering), so even the first bytes are neither echoed nor
 * rewritten, whatever the command does. SIGCHLD is blocked and read from a signalfd.
 */
static void spawn_raw(const char *cmd, struct child *c)
{
    struct winsize ws = {.ws_row = 24, .ws_col = 80};
    struct termios t;
    sigset_t set;

    if (openpty(&c->master, &c->slave, NULL, NULL, &ws) < 0)
        die("openpty");
    if (tcgetattr(c->slave, &t) < 0)
        die("tcgetattr");
    cfmakeraw(&t);
    if (tcsetattr(c->slave, TCSANOW, &t) < 0)
        die("tcsetattr");
    if (fcntl(c->master, F_SETFD, FD_CLOEXEC) < 0 || fcntl(c->slave, F_SETFD, FD_CLOEXEC) < 0 ||
        fcntl(c->master, F_SETFL, fcntl(c->master, F_GETFL) | O_NONBLOCK) < 0)
        die("fcntl");

    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
        die("sigprocmask");
    c->sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (c->sfd < 0)
        die("signalfd");

    c->pid = fork();
    if (c->pid < 0)
        die("fork");
    if (c->pid == 0) {
        sigprocmask(SIG_UNBLOCK, &set, NULL);
        if (login_tty(c->slave) < 0)
            _exit(126);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
}

/* Reaps the child if it has exited; 1 then, with *status filled. */
static int child_exited(struct child *c, int *status)
{
    struct signalfd_siginfo si;
    pid_t r;

    while (read(c->sfd, &si, sizeof si) == (ssize_t)sizeof si)
        ;
    r = waitpid(c->pid, status, WNOHANG);
    return r == c->pid;
}

/* Single-quotes s for sh: ' becomes '\''. */
static char *shell_quote(const char *s)
{
    size_t n = 3;
    char *q, *o;

    for (const char *p = s; *p; p++)
        n += *p == '\'' ? 4 : 1;
    q = o = malloc(n);
    if (!q)
        die("malloc");
    *o++ = '\'';
    for (const char *p = s; *p; p++) {
        if (*p == '\'') {
            memcpy(o, "'\\''", 4);
            o += 4;
        } else {
            *o++ = *p;
        }
    }
    *o++ = '\'';
    *o = '\0';
    return q;
}

static uint64_t parse_u64(const char *s, const char *opt)
{
    char *end;
    unsigned long long v;

    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-') {
        fprintf(stderr, "ptyread: %s wants a number, got '%s'\n", opt, s);
        exit(2);
    }
    return v;
}

static int throughput(int argc, char **argv)
{
    static char buf[READ_BUF];
    uint64_t bytes = DEFAULT_BYTES, expected = 0, received = 0, timeout_s = 120;
    uint64_t t0, t1, deadline;
    const char *file = NULL, *cmd_arg = NULL;
    int have_bytes = 0, have_expected = 0, exited = 0, status = 0;
    char *cmd;
    struct child c;

    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--bytes") && i + 1 < argc) {
            bytes = parse_u64(argv[++i], "--bytes");
            have_bytes = 1;
        } else if (!strcmp(argv[i], "--file") && i + 1 < argc) {
            file = argv[++i];
        } else if (!strcmp(argv[i], "--cmd") && i + 1 < argc) {
            cmd_arg = argv[++i];
        } else if (!strcmp(argv[i], "--timeout") && i + 1 < argc) {
            timeout_s = parse_u64(argv[++i], "--timeout");
        } else {
            usage();
        }
    }
    if (file && have_bytes)
        usage();

    /* The expected count is known for our own commands, or when --bytes says what --cmd writes. */
    if (cmd_arg) {
        cmd = strdup(cmd_arg);
        have_expected = have_bytes;
        expected = bytes;
    } else if (file) {
        struct stat st;
        char *q = shell_quote(file);

        if (stat(file, &st) < 0)
            die(file);
        if (asprintf(&cmd, "stty raw -echo; cat %s", q) < 0)
            die("asprintf");
        free(q);
        have_expected = 1;
        expected = (uint64_t)st.st_size;
    } else {
        if (asprintf(&cmd, "stty raw -echo; head -c %" PRIu64 " /dev/zero", bytes) < 0)
            die("asprintf");
        have_expected = 1;
        expected = bytes;
    }
    if (!cmd)
        die("strdup");

    t0 = now_ns();
    deadline = t0 + timeout_s * 1000000000ull;
    spawn_raw(cmd, &c);
    for (;;) {
        ssize_t n = read(c.master, buf, sizeof buf);

        if (n > 0) {
            received += (uint64_t)n;
            continue;
        }
        if (n == 0 || errno == EIO)
            break; /* only once the slave is released: everything has been read */
        if (errno != EAGAIN && errno != EINTR)
            die("read");
        if (ms_left(deadline) == 0) {
            fprintf(stderr, "ptyread: timed out after %" PRIu64 " s with %" PRIu64 " bytes\n",
                    timeout_s, received);
            kill(c.pid, SIGKILL);
            waitpid(c.pid, NULL, 0);
            return 1;
        }
        struct pollfd pfd[2] = {{.fd = c.master, .events = POLLIN},
                                {.fd = c.sfd, .events = POLLIN}};
        if (poll(pfd, exited ? 1 : 2, ms_left(deadline)) < 0 && errno != EINTR)
            die("poll");
        if (!exited && pfd[1].revents && child_exited(&c, &status)) {
            /* The child is gone; dropping our slave lets the master drain and then read EIO. */
            exited = 1;
            close(c.slave);
            c.slave = -1;
        }
    }
    t1 = now_ns();
    /* EIO can only come after our slave is closed, which is after the reap. */
    close(c.master);
    close(c.sfd);
    free(cmd);

    double secs = (double)(t1 - t0) / 1e9;
    printf("{\"scenario\":\"ptyread_throughput\",\"bytes\":%" PRIu64 ",\"seconds\":%.6f,"
           "\"bytes_per_sec\":%.0f,\"bytes_lost\":",
           received, secs, secs > 0 ? (double)received / secs : 0.0);
    if (have_expected)
        printf("%" PRId64 "}\n", (int64_t)(expected - received));
    else
        printf("null}\n");
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fprintf(stderr, "ptyread: command ended with status 0x%x\n", status);
    return 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of a sorted array, in microseconds. */
static double pct_us(const uint64_t *s, size_t n, double p)
{
    size_t rank = (size_t)((p / 100.0) * (double)n + 0.999999);

    if (rank == 0)
        rank = 1;
    if (rank > n)
        rank = n;
    return (double)s[rank - 1] / 1000.0;
}

static int echo(int argc, char **argv)
{
    uint64_t samples = 10000, warmup = 200, timeout_s = 60, deadline, taken = 0;
    uint64_t *lat;
    struct child c;
    int status;

    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--samples") && i + 1 < argc)
            samples = parse_u64(argv[++i], "--samples");
        else if (!strcmp(argv[i], "--warmup") && i + 1 < argc)
            warmup = parse_u64(argv[++i], "--warmup");
        else if (!strcmp(argv[i], "--timeout") && i + 1 < argc)
            timeout_s = parse_u64(argv[++i], "--timeout");
        else
            usage();
    }
    if (samples == 0 || samples > 100000000)
        usage();
    lat = malloc(samples * sizeof *lat);
    if (!lat)
        die("malloc");

    deadline = now_ns() + timeout_s * 1000000000ull;
    spawn_raw("stty raw -echo; exec cat", &c);
    /* The first warmup round also waits for sh and cat to start: the byte waits in the PTY. */
    for (uint64_t i = 0; i < warmup + samples; i++) {
        char out = (char)('a' + i % 26), in;
        uint64_t t0 = now_ns(), t1;
        ssize_t n;

        if (write(c.master, &out, 1) != 1)
            die("write");
        for (;;) {
            struct pollfd pfd = {.fd = c.master, .events = POLLIN};

            n = read(c.master, &in, 1);
            if (n == 1)
                break;
            if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
                fprintf(stderr, "ptyread: cat went away\n");
                return 1;
            }
            if (ms_left(deadline) == 0)
                break;
            poll(&pfd, 1, ms_left(deadline));
        }
        t1 = now_ns();
        if (n != 1)
            break; /* out of time: report what was measured */
        if (in != out) {
            fprintf(stderr, "ptyread: sent '%c', got 0x%02x back\n", out, (unsigned char)in);
            return 1;
        }
        if (i >= warmup)
            lat[taken++] = t1 - t0;
    }
    kill(c.pid, SIGKILL);
    waitpid(c.pid, &status, 0);
    close(c.master);
    close(c.slave);
    close(c.sfd);
    if (taken == 0) {
        fprintf(stderr, "ptyread: no sample within %" PRIu64 " s\n", timeout_s);
        return 1;
    }
    if (taken < samples)
        fprintf(stderr, "ptyread: time limit hit after %" PRIu64 " samples\n", taken);
    qsort(lat, taken, sizeof *lat, cmp_u64);
    printf("{\"scenario\":\"ptyread_echo\",\"samples\":%" PRIu64 ",\"p50_us\":%.1f,"
           "\"p90_us\":%.1f,\"p99_us\":%.1f,\"max_us\":%.1f}\n",
           taken, pct_us(lat, taken, 50), pct_us(lat, taken, 90), pct_us(lat, taken, 99),
           (double)lat[taken - 1] / 1000.0);
    free(lat);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        usage();
    if (!strcmp(argv[1], "throughput"))
        return throughput(argc - 2, argv + 2);
    if (!strcmp(argv[1], "echo"))
        return echo(argc - 2, argv + 2);
    usage();
    return 2;
}
