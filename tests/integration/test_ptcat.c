/*
 * test_ptcat: the `ptcat` binary against a real relay (harness.h). Each test starts its relay,
 * runs ptcat as a child process with stdin from a pipe and stdout/stderr to files, and checks exit
 * codes, text and JSON (parsed with jansson). Reconnect-and-resume is driven by the relay's own
 * stall limit: ptcat is stopped (SIGSTOP) while the session floods, the relay drops it with 4408,
 * and once continued it must resume so that its stdout equals the session's whole output. `attach`
 * on a real terminal runs inside a private tmux server (send-keys, capture-pane, resize-window).
 * Every wait has a deadline; loops that poll a screen or a state are bounded in count and time.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

/* ---- running ptcat -------------------------------------------------------------------------- */

struct run {
    int status; /* exit code, or 128+signal; -1 on timeout */
    char *out, *err;
    size_t outlen;
};

static char tmpdir[256];

static void tmp_init(void)
{
    if (tmpdir[0])
        return;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/ptcat-test-XXXXXX");
    cr_assert_not_null(mkdtemp(tmpdir));
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    cr_assert_eq(fread(b, 1, (size_t)n, f), (size_t)n);
    b[n] = 0;
    fclose(f);
    if (len)
        *len = (size_t)n;
    return b;
}

static void run_free(struct run *r)
{
    free(r->out);
    free(r->err);
    memset(r, 0, sizeof *r);
}

/* Waits for pid with a deadline (pidfd + poll). The status, or -1 on timeout (then killed). */
static int wait_child(pid_t pid, int timeout_ms)
{
    int pfd = (int)syscall(SYS_pidfd_open, pid, 0);
    cr_assert(pfd >= 0, "pidfd_open: %s", strerror(errno));
    struct pollfd p = {.fd = pfd, .events = POLLIN};
    int n = poll(&p, 1, timeout_ms);
    close(pfd);
    int st;
    if (n <= 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &st, 0);
        return -1;
    }
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* Starts ptcat with args (NULL-terminated); stdin from in (NULL: /dev/null). Returns the pid. */
static pid_t spawn_ptcat(const char *in, size_t inlen, const char *outp, const char *errp,
                         bool with_env, const char *const *args)
{
    int pipefd[2] = {-1, -1};
    if (in)
        cr_assert_eq(pipe(pipefd), 0);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        if (in) {
            dup2(pipefd[0], 0);
            close(pipefd[0]);
            close(pipefd[1]);
        } else {
            int dn = open("/dev/null", O_RDONLY);
            dup2(dn, 0);
        }
        int o = open(outp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int e = open(errp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        dup2(o, 1);
        dup2(e, 2);
        if (with_env) {
            setenv("PTYRELAY_URL", h_relay_url(), 1);
            setenv("PTYRELAY_TOKEN", h_relay_token(), 1);
        }
        const char *argv[64] = {PTCAT_BIN};
        int n = 1;
        for (; args[n - 1] && n < 63; n++)
            argv[n] = args[n - 1];
        argv[n] = NULL;
        execv(PTCAT_BIN, (char *const *)argv);
        _exit(127);
    }
    if (in) {
        close(pipefd[0]);
        /* small inputs: a pipe holds 64 KiB */
        cr_assert_eq(write(pipefd[1], in, inlen), (ssize_t)inlen);
        close(pipefd[1]);
    }
    return pid;
}

static int runv(struct run *r, const char *in, bool with_env, const char *const *args)
{
    tmp_init();
    char outp[300], errp[300];
    snprintf(outp, sizeof outp, "%s/out", tmpdir);
    snprintf(errp, sizeof errp, "%s/err", tmpdir);
    pid_t pid = spawn_ptcat(in, in ? strlen(in) : 0, outp, errp, with_env, args);
    r->status = wait_child(pid, h_timeout_ms() * 3);
    r->out = slurp(outp, &r->outlen);
    r->err = slurp(errp, NULL);
    cr_assert(!strstr(r->err, "Sanitizer") && !strstr(r->err, "runtime error"),
              "ptcat %s: sanitizer report:\n%s", args[0], r->err);
    return r->status;
}

/* ptcat(&r, "ls", "--json") with the relay's URL and token in the environment. */
#define ptcat(r, ...) runv((r), NULL, true, (const char *const[]){__VA_ARGS__, NULL})
/* The same with text on stdin. */
#define ptcat_in(r, in, ...) runv((r), (in), true, (const char *const[]){__VA_ARGS__, NULL})
/* Without the environment (finding the relay is what is tested). */
#define ptcat_noenv(r, ...) runv((r), NULL, false, (const char *const[]){__VA_ARGS__, NULL})

/* Runs a command that must succeed and returns its stdout (malloc). */
static char *ok_out(const char *const *args)
{
    struct run r;
    runv(&r, NULL, true, args);
    cr_assert_eq(r.status, 0, "ptcat %s %s: exit %d, stderr: %s", args[0], args[1] ? args[1] : "",
                 r.status, r.err);
    char *o = r.out;
    r.out = NULL;
    run_free(&r);
    return o;
}
#define OK(...) ok_out((const char *const[]){__VA_ARGS__, NULL})

/* Starts a session and returns its id (static buffer rotated over 4). */
static const char *new_session(const char *name, const char *script)
{
    static char ids[4][64];
    static int k;
    char *o = name ? OK("new", "--name", name, "--", "sh", "-c", script)
                   : OK("new", "--", "sh", "-c", script);
    char *id = ids[k++ % 4];
    snprintf(id, 64, "%.*s", (int)strcspn(o, "\n"), o);
    free(o);
    cr_assert_eq(strlen(id), 36, "new printed '%s'", id);
    return id;
}

static json_t *info_json(const char *who)
{
    char *o = OK("info", who, "--json");
    json_error_t je;
    json_t *v = json_loads(o, 0, &je);
    cr_assert_not_null(v, "info --json is not JSON: %s: %s", je.text, o);
    free(o);
    return v;
}

static const char *jstr(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    cr_assert(json_is_string(v), "key %s is not a string", k);
    return json_string_value(v);
}

static long long jint(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    cr_assert(json_is_integer(v), "key %s is not an integer", k);
    return json_integer_value(v);
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static bool file_contains(const char *path, const char *needle)
{
    if (access(path, R_OK))
        return false;
    size_t n;
    char *b = slurp(path, &n);
    bool found = memmem(b, n, needle, strlen(needle)) != NULL;
    free(b);
    return found;
}

/* Polls cond (a condition on the world outside this process) every 20 ms until the deadline. */
#define WAIT_UNTIL(cond, what)                                                                     \
    do {                                                                                           \
        int _i;                                                                                    \
        int _n = h_timeout_ms() / 20;                                                              \
        for (_i = 0; _i < _n && !(cond); _i++)                                                     \
            sleep_ms(20);                                                                          \
        cr_assert(cond, "timed out waiting for %s", what);                                         \
    } while (0)

/* ---- commands ------------------------------------------------------------------------------- */

Test(ptcat, help_for_each_command)
{
    h_relay_start();
    static const char *cmds[] = {"ls", "new", "attach", "send", "logs", "wait", "kill",
                                 "signal", "rm", "info", NULL};
    for (int i = 0; cmds[i]; i++) {
        struct run r;
        cr_assert_eq(ptcat(&r, cmds[i], "--help"), 0, "%s --help", cmds[i]);
        char want[64];
        snprintf(want, sizeof want, "usage: ptcat %s", cmds[i]);
        cr_assert(strstr(r.out, want), "%s --help printed: %s", cmds[i], r.out);
        run_free(&r);
    }
    struct run r;
    cr_assert_eq(ptcat(&r, "frobnicate"), 2);
    run_free(&r);
    cr_assert_eq(ptcat(&r, "ls", "--bogus"), 2);
    run_free(&r);
    cr_assert_eq(ptcat(&r, "wait", "x"), 2, "wait without a condition is a usage error");
    run_free(&r);
    cr_assert_eq(ptcat(&r, "send", "x", "--key", "NoSuchKey"), 2);
    run_free(&r);
}

Test(ptcat, ls_table_and_json)
{
    h_relay_start();
    const char *a = new_session("alpha", "echo A; sleep 60");
    char ida[64];
    snprintf(ida, sizeof ida, "%s", a);
    new_session("beta", "exit 5");
    struct run r;
    cr_assert_eq(ptcat(&r, "wait", "beta", "--exit"), 0);
    cr_assert_str_eq(r.out, "5\n");
    run_free(&r);

    char *o = OK("ls", "--json");
    json_error_t je;
    json_t *arr = json_loads(o, 0, &je);
    cr_assert(json_is_array(arr), "ls --json: %s", o);
    cr_assert_eq(json_array_size(arr), 2);
    int seen = 0;
    size_t i;
    json_t *s;
    json_array_foreach(arr, i, s)
    {
        const char *name = jstr(s, "name");
        cr_assert_eq(strlen(jstr(s, "id")), 36);
        cr_assert(json_is_array(json_object_get(s, "argv")));
        cr_assert_str_eq(json_string_value(json_array_get(json_object_get(s, "argv"), 0)), "sh");
        if (!strcmp(name, "alpha")) {
            seen |= 1;
            cr_assert_str_eq(jstr(s, "id"), ida);
            cr_assert_str_eq(jstr(s, "state"), "running");
            cr_assert(json_is_null(json_object_get(s, "exit_code")));
            cr_assert_eq(jint(s, "cols"), 80);
            cr_assert_eq(jint(s, "rows"), 24);
        } else if (!strcmp(name, "beta")) {
            seen |= 2;
            cr_assert_str_eq(jstr(s, "state"), "exited");
            cr_assert_eq(jint(s, "exit_code"), 5);
        }
    }
    cr_assert_eq(seen, 3);
    json_decref(arr);
    free(o);

    o = OK("ls");
    cr_assert(strstr(o, "ID") && strstr(o, "STATE") && strstr(o, "COMMAND"), "%s", o);
    char prefix[9];
    snprintf(prefix, sizeof prefix, "%.8s", ida);
    const char *line = strstr(o, prefix);
    cr_assert_not_null(line, "ls shows the id prefix: %s", o);
    cr_assert(strstr(line, "alpha") && strstr(line, "running") && strstr(line, "80x24"), "%s", o);
    cr_assert(strstr(o, "beta") && strstr(o, "exited"), "%s", o);
    free(o);
}

Test(ptcat, new_with_options_and_info)
{
    h_relay_start();
    tmp_init();
    const char *id = NULL;
    char *o = OK("new", "--name", "opts", "--cwd", tmpdir, "--env", "PTCAT_X=hello-env", "--size",
                 "100x30", "--", "sh", "-c", "echo $PTCAT_X; pwd; stty size");
    o[strcspn(o, "\n")] = 0;
    id = o;
    struct run r;
    cr_assert_eq(ptcat(&r, "wait", id, "--exit", "--timeout", "10000"), 0, "%s", r.err);
    cr_assert_str_eq(r.out, "0\n");
    run_free(&r);
    char *logs = OK("logs", "opts");
    cr_assert(strstr(logs, "hello-env"), "%s", logs);
    cr_assert(strstr(logs, tmpdir), "%s", logs);
    cr_assert(strstr(logs, "30 100"), "%s", logs);
    free(logs);
    json_t *v = info_json("opts");
    cr_assert_str_eq(jstr(v, "id"), id);
    cr_assert_str_eq(jstr(v, "cwd"), tmpdir);
    cr_assert_eq(jint(v, "cols"), 100);
    cr_assert_eq(jint(v, "rows"), 30);
    cr_assert_eq(jint(v, "exit_code"), 0);
    cr_assert_str_eq(jstr(v, "state"), "exited");
    json_decref(v);
    char *txt = OK("info", "opts");
    cr_assert(strstr(txt, "state") && strstr(txt, "exited"), "%s", txt);
    free(txt);
    free(o);

    cr_assert_eq(ptcat(&r, "new", "--size", "0x0"), 2);
    run_free(&r);
    cr_assert_eq(ptcat(&r, "new", "--env", "NOEQUALS"), 2);
    run_free(&r);
    cr_assert_eq(ptcat(&r, "new", "--name", "opts", "--", "true"), 4, "a name is unique");
    cr_assert(strstr(r.err, "already"), "%s", r.err);
    run_free(&r);
}

Test(ptcat, names_and_prefixes)
{
    h_relay_start();
    char id[64];
    snprintf(id, sizeof id, "%s", new_session("named", "sleep 60"));
    char pre[9], upper[9];
    snprintf(pre, sizeof pre, "%.8s", id);
    for (int i = 0; i < 9; i++)
        upper[i] = (char)(pre[i] >= 'a' && pre[i] <= 'f' ? pre[i] - 32 : pre[i]);
    const char *forms[] = {id, "named", pre, upper};
    for (int i = 0; i < 4; i++) {
        json_t *v = info_json(forms[i]);
        cr_assert_str_eq(jstr(v, "id"), id, "form %s", forms[i]);
        json_decref(v);
    }
    struct run r;
    cr_assert_eq(ptcat(&r, "info", "no-such-name"), 4);
    cr_assert(strstr(r.err, "no session"), "%s", r.err);
    run_free(&r);
    /* Pigeonhole: among 17 ids two share their first hex digit; that prefix is ambiguous. */
    char firsts[17];
    int n = 0;
    char amb = 0;
    firsts[n++] = id[0];
    while (!amb && n < 17) {
        const char *x = new_session(NULL, "sleep 60");
        for (int k = 0; k < n; k++)
            if (firsts[k] == x[0])
                amb = x[0];
        firsts[n++] = x[0];
    }
    cr_assert(amb);
    char ambs[2] = {amb, 0};
    cr_assert_eq(ptcat(&r, "info", ambs), 4);
    cr_assert(strstr(r.err, "ambiguous"), "%s", r.err);
    run_free(&r);
    /* names work for the other commands too */
    cr_assert_eq(ptcat(&r, "signal", "named", "TERM"), 0, "%s", r.err);
    run_free(&r);
    cr_assert_eq(ptcat(&r, "wait", "named", "--exit", "--timeout", "10000"), 0);
    cr_assert_str_eq(r.out, "signal TERM\n");
    run_free(&r);
}

Test(ptcat, send_text_keys_hex_enter_in_order)
{
    h_relay_start();
    /* raw mode: bytes arrive untranslated; the program prints the 8 bytes in hex */
    new_session("rx", "stty raw -echo; head -c 8 | od -An -tx1");
    struct run r;
    cr_assert_eq(ptcat(&r, "send", "rx", "--text", "ab", "--key", "Tab", "--hex", "1b5b41",
                       "--key", "C-a", "--enter"),
                 0, "%s", r.err);
    run_free(&r);
    cr_assert_eq(ptcat(&r, "wait", "rx", "--exit", "--timeout", "10000"), 0, "%s", r.err);
    run_free(&r);
    char *o = OK("logs", "rx", "--strip-ansi");
    cr_assert(strstr(o, "61 62 09 1b 5b 41 01 0d"), "program saw: %s", o);
    free(o);

    new_session("rx2", "stty raw -echo; head -c 5 | od -An -tx1");
    cr_assert_eq(ptcat_in(&r, "hello", "send", "rx2", "--stdin"), 0, "%s", r.err);
    run_free(&r);
    cr_assert_eq(ptcat(&r, "wait", "rx2", "--exit", "--timeout", "10000"), 0);
    run_free(&r);
    o = OK("logs", "rx2");
    cr_assert(strstr(o, "68 65 6c 6c 6f"), "%s", o);
    free(o);
    cr_assert_eq(ptcat(&r, "send", "rx2", "--text", "late"), 4, "an ended session refuses input");
    run_free(&r);
}

Test(ptcat, logs_tail_from_strip_follow)
{
    h_relay_start();
    new_session("lines", "printf 'one\\ntwo\\n\\033[31mred\\033[0m\\nfour\\n'");
    struct run r;
    cr_assert_eq(ptcat(&r, "wait", "lines", "--exit", "--timeout", "10000"), 0);
    run_free(&r);
    char *o = OK("logs", "lines");
    cr_assert_str_eq(o, "one\r\ntwo\r\n\033[31mred\033[0m\r\nfour\r\n");
    free(o);
    o = OK("logs", "lines", "--tail", "2", "--strip-ansi");
    cr_assert_str_eq(o, "red\nfour\n");
    free(o);
    o = OK("logs", "lines", "--from", "5");
    cr_assert_str_eq(o, "two\r\n\033[31mred\033[0m\r\nfour\r\n");
    free(o);
    o = OK("logs", "lines", "--tail", "100");
    cr_assert_str_eq(o, "one\r\ntwo\r\n\033[31mred\033[0m\r\nfour\r\n");
    free(o);

    /* --follow: prints what is there, then what comes, each byte once, until the exit */
    new_session("slow", "echo first; read x; echo second; read y; echo third");
    tmp_init();
    char outp[300], errp[300];
    snprintf(outp, sizeof outp, "%s/follow.out", tmpdir);
    snprintf(errp, sizeof errp, "%s/follow.err", tmpdir);
    pid_t pid = spawn_ptcat(NULL, 0, outp, errp, true, (const char *const[]){"logs", "slow", "--follow", NULL});
    WAIT_UNTIL(file_contains(outp, "first"), "follow to print 'first'");
    cr_assert_eq(ptcat(&r, "send", "slow", "--enter"), 0);
    run_free(&r);
    WAIT_UNTIL(file_contains(outp, "second"), "follow to print 'second'");
    cr_assert_eq(ptcat(&r, "send", "slow", "--enter"), 0);
    run_free(&r);
    cr_assert_eq(wait_child(pid, h_timeout_ms()), 0);
    char *all = OK("logs", "slow");
    size_t n;
    char *fo = slurp(outp, &n);
    cr_assert_str_eq(fo, all, "follow printed exactly the session's output");
    free(fo);
    free(all);
    char *fe = slurp(errp, NULL);
    cr_assert(strstr(fe, "exited with status 0"), "%s", fe);
    free(fe);
}

Test(ptcat, logs_wait_for_prompt)
{
    h_relay_start();
    new_session("psh", "PS1='prompt> ' exec sh -i");
    struct run r;
    cr_assert_eq(ptcat(&r, "logs", "psh", "--wait-for-prompt", "prompt> $", "--timeout", "10000"), 0,
                 "%s", r.err);
    run_free(&r);
    for (int i = 0; i < 3; i++) {
        char cmd[64], want[32];
        snprintf(cmd, sizeof cmd, "sleep 0.%d; echo out-$((%d*7))", i, i);
        snprintf(want, sizeof want, "out-%d\n", i * 7);
        cr_assert_eq(ptcat(&r, "send", "psh", "--text", cmd, "--enter", "--print-offset"), 0);
        char off[32];
        snprintf(off, sizeof off, "%.*s", (int)strcspn(r.out, "\n"), r.out);
        run_free(&r);
        cr_assert_eq(ptcat(&r, "logs", "psh", "--from", off, "--wait-for-prompt", "prompt> $",
                           "--strip-ansi", "--timeout", "10000"),
                     0, "%s", r.err);
        cr_assert(strstr(r.out, want), "round %d printed: %s", i, r.out);
        cr_assert(strstr(r.out, "prompt> "), "%s", r.out);
        run_free(&r);
    }
    /* idle form: returns once quiet, printing what came since it started */
    cr_assert_eq(ptcat(&r, "send", "psh", "--text", "sleep 0.3; echo idle-done", "--enter"), 0);
    run_free(&r);
    cr_assert_eq(ptcat(&r, "logs", "psh", "--wait-for-prompt", "--idle", "800", "--timeout", "10000"),
                 0, "%s", r.err);
    run_free(&r);
    char *tail = OK("logs", "psh", "--tail", "2", "--strip-ansi");
    cr_assert(strstr(tail, "idle-done"), "%s", tail);
    free(tail);
    /* a prompt that never comes: exit 1 after the timeout */
    cr_assert_eq(ptcat(&r, "logs", "psh", "--wait-for-prompt", "never-there", "--timeout", "300"), 1);
    run_free(&r);
}

Test(ptcat, wait_conditions)
{
    h_relay_start();
    new_session("w", "read x; echo got-$x; sleep 60");
    struct run r;
    cr_assert_eq(ptcat(&r, "wait", "w", "--match", "got-[a-z]+", "--timeout", "300"), 1, "not yet");
    run_free(&r);
    cr_assert_eq(ptcat(&r, "wait", "w", "--exit", "--timeout", "200"), 1);
    cr_assert_str_eq(r.out, "");
    run_free(&r);
    cr_assert_eq(ptcat(&r, "send", "w", "--text", "abc", "--enter"), 0);
    run_free(&r);
    cr_assert_eq(ptcat(&r, "wait", "w", "--match", "got-[a-z]+", "--timeout", "10000"), 0);
    run_free(&r);
    cr_assert_eq(ptcat(&r, "wait", "w", "--idle", "300", "--timeout", "10000"), 0);
    run_free(&r);
    cr_assert_eq(ptcat(&r, "kill", "w", "--grace", "200"), 0, "%s", r.err);
    run_free(&r);
    cr_assert_eq(ptcat(&r, "wait", "w", "--exit"), 0);
    cr_assert(!strncmp(r.out, "signal ", 7), "%s", r.out);
    run_free(&r);
    cr_assert_eq(ptcat(&r, "wait", "w", "--match", "zzz", "--timeout", "5000"), 1,
                 "an ended program cannot match any more");
    run_free(&r);
    new_session("e7", "exit 7");
    cr_assert_eq(ptcat(&r, "wait", "e7", "--exit", "--timeout", "10000"), 0);
    cr_assert_str_eq(r.out, "7\n");
    run_free(&r);
}

Test(ptcat, kill_signal_rm)
{
    h_relay_start();
    new_session("k", "sleep 60");
    struct run r;
    cr_assert_eq(ptcat(&r, "rm", "k"), 4, "a running session is not removed");
    run_free(&r);
    cr_assert_eq(ptcat(&r, "signal", "k", "sigusr1"), 0, "%s", r.err);
    run_free(&r);
    cr_assert_eq(ptcat(&r, "wait", "k", "--exit", "--timeout", "10000"), 0);
    cr_assert_str_eq(r.out, "signal USR1\n");
    run_free(&r);
    json_t *v = info_json("k");
    cr_assert_str_eq(jstr(v, "state"), "killed");
    cr_assert_str_eq(jstr(v, "signal"), "USR1");
    json_decref(v);
    cr_assert_eq(ptcat(&r, "signal", "k", "NOPE"), 2);
    run_free(&r);
    cr_assert_eq(ptcat(&r, "rm", "k"), 0, "%s", r.err);
    run_free(&r);
    cr_assert_eq(ptcat(&r, "info", "k"), 4);
    run_free(&r);

    new_session("t", "trap '' TERM; sleep 60");
    cr_assert_eq(ptcat(&r, "kill", "t", "--grace", "200"), 0, "%s", r.err);
    run_free(&r);
    v = info_json("t");
    cr_assert_str_eq(jstr(v, "state"), "killed");
    json_decref(v);
    new_session("f", "sleep 60");
    cr_assert_eq(ptcat(&r, "rm", "--force", "f"), 0, "%s", r.err);
    run_free(&r);
    char *o = OK("ls", "--json");
    cr_assert(!strstr(o, "\"f\""), "%s", o);
    free(o);
}

Test(ptcat, finding_the_relay_and_errors)
{
    h_relay_start();
    struct run r;
    /* the token file in $XDG_STATE_HOME/ptyrelay */
    tmp_init();
    char xdg[300], link[400];
    snprintf(xdg, sizeof xdg, "%s/xdg", tmpdir);
    mkdir(xdg, 0700);
    snprintf(link, sizeof link, "%s/ptyrelay", xdg);
    cr_assert_eq(symlink(h_relay_dir(), link), 0);
    setenv("XDG_STATE_HOME", xdg, 1);
    unsetenv("PTYRELAY_TOKEN");
    cr_assert_eq(ptcat_noenv(&r, "--url", h_relay_url(), "ls"), 0, "%s", r.err);
    run_free(&r);
    /* PTYRELAY_URL from the environment */
    setenv("PTYRELAY_URL", h_relay_url(), 1);
    cr_assert_eq(ptcat_noenv(&r, "ls", "--json"), 0, "%s", r.err);
    run_free(&r);
    unsetenv("PTYRELAY_URL");
    /* a bad token: exit 3, a clear sentence, and the token is never printed */
    cr_assert_eq(ptcat_noenv(&r, "--url", h_relay_url(), "--token", "wrong-token-123", "ls"), 3);
    cr_assert(strstr(r.err, "rejected the token"), "%s", r.err);
    cr_assert(!strstr(r.err, "wrong-token-123") && !strstr(r.out, "wrong-token-123"));
    run_free(&r);
    cr_assert_eq(ptcat_noenv(&r, "--url", h_relay_url(), "ls"), 0);
    cr_assert(!strstr(r.err, h_relay_token()) && !strstr(r.out, h_relay_token()));
    run_free(&r);
    /* no relay: refused */
    char url[128];
    snprintf(url, sizeof url, "ws://127.0.0.1:%d/ptc1", h_free_port());
    cr_assert_eq(ptcat_noenv(&r, "--url", url, "--token", "x", "ls"), 3);
    cr_assert(strstr(r.err, "no relay"), "%s", r.err);
    run_free(&r);
    /* TLS against a plain relay */
    snprintf(url, sizeof url, "wss://127.0.0.1:%d/ptc1", h_relay_port());
    cr_assert_eq(ptcat_noenv(&r, "--url", url, "--token", "x", "ls"), 3);
    cr_assert(strstr(r.err, "TLS") || strstr(r.err, "cannot talk"), "%s", r.err);
    run_free(&r);
    /* not a URL; no token anywhere */
    cr_assert_eq(ptcat_noenv(&r, "--url", "http:/nope", "--token", "x", "ls"), 3);
    cr_assert(strstr(r.err, "not a relay URL"), "%s", r.err);
    run_free(&r);
    snprintf(xdg, sizeof xdg, "%s/empty", tmpdir);
    setenv("XDG_STATE_HOME", xdg, 1);
    cr_assert_eq(ptcat_noenv(&r, "--url", h_relay_url(), "ls"), 3);
    cr_assert(strstr(r.err, "no token"), "%s", r.err);
    run_free(&r);
}

/* ---- attach without a terminal: detach key, reconnect and resume --------------------------- */

Test(ptcat, attach_pipe_input_and_detach_key)
{
    h_relay_start();
    new_session("cat", "cat");
    struct run r;
    /* stdin is a pipe: input goes to the program, then Ctrl-\ d detaches */
    cr_assert_eq(ptcat_in(&r, "typed-through\r\x1c" "d", "attach", "cat"), 0, "%s", r.err);
    cr_assert(strstr(r.err, "detached"), "%s", r.err);
    run_free(&r);
    cr_assert_eq(ptcat(&r, "wait", "cat", "--match", "typed-through", "--timeout", "10000"), 0,
                 "the input reached the program");
    run_free(&r);
    json_t *v = info_json("cat");
    cr_assert_str_eq(jstr(v, "state"), "running", "detaching leaves the session running");
    json_decref(v);
    /* another detach key */
    cr_assert_eq(ptcat_in(&r, "more\r\x1d", "attach", "cat", "--detach-key", "C-]"), 0, "%s", r.err);
    cr_assert(strstr(r.err, "detached"), "%s", r.err);
    run_free(&r);
    char *o = OK("logs", "cat");
    cr_assert(strstr(o, "more"), "%s", o);
    free(o);
    cr_assert_eq(ptcat(&r, "attach", "cat", "--detach-key", "C-NOPE x"), 2);
    run_free(&r);
    /* --view: output only; ends with the program, saying how */
    new_session("ends", "echo bye; exit 4");
    cr_assert_eq(ptcat(&r, "wait", "ends", "--exit", "--timeout", "10000"), 0);
    run_free(&r);
    cr_assert_eq(ptcat(&r, "attach", "ends", "--view"), 0, "%s", r.err);
    cr_assert_str_eq(r.out, "bye\r\n");
    cr_assert(strstr(r.err, "exited with status 4"), "%s", r.err);
    run_free(&r);
    cr_assert_eq(ptcat(&r, "attach", "ends", "--view", "--tail", "3"), 0);
    cr_assert_str_eq(r.out, "e\r\n");
    run_free(&r);
}

Test(ptcat, reconnect_resumes_without_loss_or_repeat)
{
    /* 1 s stall limit; a ring big enough to keep the whole flood */
    h_relay_start("--stall-timeout", "1", "--ring-max", "67108864");
    new_session("flood", "read x; seq 1 1500000; echo done-marker; read y");
    tmp_init();
    char outp[300], errp[300];
    snprintf(outp, sizeof outp, "%s/flood.out", tmpdir);
    snprintf(errp, sizeof errp, "%s/flood.err", tmpdir);
    pid_t pid = spawn_ptcat(NULL, 0, outp, errp, true,
                            (const char *const[]){"attach", "flood", "--view", NULL});
    struct run r;
    json_t *v = NULL;
    WAIT_UNTIL((json_decref(v), v = info_json("flood"), jint(v, "clients") == 1), "ptcat to attach");
    json_decref(v);
    /* ptcat stops reading; the flood starts; the relay drops the stalled connection (4408) */
    cr_assert_eq(kill(pid, SIGSTOP), 0);
    cr_assert_eq(ptcat(&r, "send", "flood", "--enter"), 0, "%s", r.err);
    run_free(&r);
    cr_assert(h_relay_log_wait("closing 4408", h_timeout_ms()), "the relay never dropped ptcat");
    cr_assert_eq(kill(pid, SIGCONT), 0);
    WAIT_UNTIL(file_contains(outp, "done-marker"), "ptcat to print the end of the flood");
    cr_assert_eq(ptcat(&r, "send", "flood", "--enter"), 0);
    run_free(&r);
    cr_assert_eq(wait_child(pid, h_timeout_ms()), 0);
    char *err = slurp(errp, NULL);
    cr_assert(strstr(err, "connection to the relay lost"), "%s", err);
    cr_assert(strstr(err, "reconnected to session flood; resuming at offset"), "%s", err);
    cr_assert(!strstr(err, "no longer kept"), "%s", err);
    free(err);
    /* stdout is the session's output, byte for byte: nothing lost, nothing twice */
    size_t got_n, all_n;
    char *got = slurp(outp, &got_n);
    char *all = OK("logs", "flood");
    all_n = strlen(all);
    cr_assert_gt(all_n, 10000000);
    cr_assert_eq(got_n, all_n, "attach printed %zu bytes, the session has %zu", got_n, all_n);
    cr_assert(memcmp(got, all, all_n) == 0);
    free(got);
    free(all);
}

/* ---- attach in a real terminal (tmux) ------------------------------------------------------- */

static char tsock[64];

static void tmux(const char *fmt, ...)
{
    char args[2048], cmd[2200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "tmux -L %s -f /dev/null %s", tsock, args);
    int rc = system(cmd);
    cr_assert_eq(rc, 0, "%s", cmd);
}

static char *capture(void)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "tmux -L %s capture-pane -p -t t", tsock);
    FILE *f = popen(cmd, "r");
    cr_assert_not_null(f);
    static char screen[16384];
    size_t n = fread(screen, 1, sizeof screen - 1, f);
    screen[n] = 0;
    pclose(f);
    return screen;
}

/* Waits (bounded) until the pane shows needle; fails with the screen otherwise. */
static void wait_screen(const char *needle)
{
    int n = h_timeout_ms() / 20;
    for (int i = 0; i < n && !strstr(capture(), needle); i++)
        sleep_ms(20);
    cr_assert(strstr(capture(), needle), "'%s' not on the screen:\n%s", needle, capture());
}

static void tmux_end(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "tmux -L %s kill-server 2>/dev/null", tsock);
    if (system(cmd)) {
        /* already gone */
    }
}

Test(ptcat, attach_in_tmux, .fini = tmux_end)
{
    if (system("command -v tmux >/dev/null 2>&1"))
        cr_skip_test("tmux is not installed");
    h_relay_start();
    snprintf(tsock, sizeof tsock, "ptcat-test-%d", (int)getpid());
    tmp_init();
    new_session("term", "PS1='tsh> ' exec sh -i");
    char script[400];
    snprintf(script, sizeof script, "%s/attach.sh", tmpdir);
    FILE *f = fopen(script, "w");
    cr_assert_not_null(f);
    /* the terminal's settings before and after, to check they are restored */
    fprintf(f,
            "stty -g > %s/before\n"
            "PTYRELAY_URL='%s' PTYRELAY_TOKEN='%s' '%s' attach term\n"
            "echo \"ATTACH-EXIT=$?\"\n"
            "stty -g > %s/after\n"
            "echo AFTER-WRITTEN\n"
            "read go\n"
            "PTYRELAY_URL='%s' PTYRELAY_TOKEN='%s' sh -c 'echo $$ > %s/pid2; exec %s attach term'\n"
            "echo \"ATTACH2-EXIT=$?\"\n"
            "stty -g > %s/after2\n"
            "echo AFTER2-WRITTEN\n"
            "exec sleep 600\n",
            tmpdir, h_relay_url(), h_relay_token(), PTCAT_BIN, tmpdir, h_relay_url(),
            h_relay_token(), tmpdir, PTCAT_BIN, tmpdir);
    fclose(f);
    tmux("new-session -d -s t -x 100 -y 30 'sh %s'", script);
    wait_screen("tsh>");
    cr_assert(strstr(capture(), "attached to session term"), "%s", capture());
    /* typing reaches the program */
    tmux("send-keys -t t 'echo typed-$((6*7))' Enter");
    wait_screen("typed-42");
    tmux("send-keys -t t 'stty size' Enter");
    wait_screen("30 100");
    /* a pane resize reaches the session */
    tmux("resize-window -t t -x 72 -y 18");
    tmux("send-keys -t t 'stty size' Enter");
    wait_screen("18 72");
    json_t *v = info_json("term");
    cr_assert_eq(jint(v, "cols"), 72);
    cr_assert_eq(jint(v, "rows"), 18);
    json_decref(v);
    /* the detach key leaves the session running and the terminal as it was */
    tmux("send-keys -t t C-\\\\ d");
    wait_screen("AFTER-WRITTEN");
    cr_assert(strstr(capture(), "ATTACH-EXIT=0"), "%s", capture());
    cr_assert(strstr(capture(), "detached from session term"), "%s", capture());
    v = info_json("term");
    cr_assert_str_eq(jstr(v, "state"), "running");
    cr_assert_eq(jint(v, "clients"), 0);
    json_decref(v);
    char p1[300], p2[300];
    snprintf(p1, sizeof p1, "%s/before", tmpdir);
    snprintf(p2, sizeof p2, "%s/after", tmpdir);
    char *b = slurp(p1, NULL), *a = slurp(p2, NULL);
    cr_assert_str_eq(a, b, "terminal settings restored");
    free(a);
    free(b);
    /* SIGTERM while attached: the terminal is restored too */
    tmux("send-keys -t t go Enter");
    v = NULL;
    WAIT_UNTIL((json_decref(v), v = info_json("term"), jint(v, "clients") == 1),
               "the second attach");
    json_decref(v);
    snprintf(p1, sizeof p1, "%s/pid2", tmpdir);
    char *pidtext = slurp(p1, NULL);
    pid_t apid = (pid_t)atoi(pidtext);
    free(pidtext);
    cr_assert_gt(apid, 1);
    cr_assert_eq(kill(apid, SIGTERM), 0);
    wait_screen("AFTER2-WRITTEN");
    cr_assert(strstr(capture(), "ATTACH2-EXIT=143"), "%s", capture());
    snprintf(p1, sizeof p1, "%s/before", tmpdir);
    snprintf(p2, sizeof p2, "%s/after2", tmpdir);
    b = slurp(p1, NULL);
    a = slurp(p2, NULL);
    cr_assert_str_eq(a, b, "terminal settings restored after SIGTERM");
    free(a);
    free(b);
    /* the typed text is in the session's output: it went through the relay */
    char *o = OK("logs", "term");
    cr_assert(strstr(o, "typed-42"), "%s", o);
    free(o);
}
