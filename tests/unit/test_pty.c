/*
 * test_pty.c: unit tests for pty/: spawning real programs in real PTYs and checking what they
 * see (bytes, exit status, environment, size, session, signals, fds) and what the parent is left
 * with (no child, no fd). Criterion runs every test in its own process, so each test may block
 * SIGCHLD, become a subreaper or ignore signals without disturbing the others. Every wait is a
 * poll() on the master and the reaper's signalfd against a deadline; nothing sleeps. That deadline
 * is the bound, not criterion's .timeout: in criterion 2.4.1 a test with .timeout now and then
 * leaves its 48-byte watchdog entry behind in the runner, which LeakSanitizer reports.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "pty.h"

#define DEADLINE_MS 10000

struct out {
    char *buf;
    size_t len, cap;
};

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int left_ms(int64_t deadline)
{
    int64_t l = deadline - now_ms();

    return l < 0 ? 0 : (int)l;
}

static int reaper(void)
{
    static int sfd = -1;

    if (sfd < 0) {
        sfd = pty_reaper_open();
        cr_assert(sfd >= 0, "pty_reaper_open: %d", sfd);
    }
    return sfd;
}

static void out_init(struct out *o)
{
    o->cap = 4096;
    o->len = 0;
    o->buf = malloc(o->cap + 1);
    cr_assert(o->buf);
    o->buf[0] = '\0';
}

/* Reads what the master has now; returns 1 on EIO/EOF (the slave side is gone). */
static int drain_master(int master, struct out *o)
{
    for (;;) {
        if (o->cap - o->len < 65536) {
            o->cap = o->cap * 2 + 65536;
            o->buf = realloc(o->buf, o->cap + 1);
            cr_assert(o->buf);
        }
        ssize_t n = read(master, o->buf + o->len, o->cap - o->len);
        if (n > 0) {
            o->len += (size_t)n;
            o->buf[o->len] = '\0';
            continue;
        }
        if (n == 0 || errno == EIO)
            return 1;
        if (errno == EAGAIN || errno == EINTR)
            return 0;
        cr_assert_fail("read master: %s", strerror(errno));
    }
}

/* Pulls one state change of pid from the reaper, waiting up to the deadline; 1 if got. */
static int wait_change(pid_t pid, int *status, int64_t deadline)
{
    int sfd = reaper();

    for (;;) {
        pid_t got;
        int st, r;

        while ((r = pty_reap(&got, &st)) == 1) {
            if (got == pid) {
                *status = st;
                return 1;
            }
        }
        cr_assert(r == 0, "pty_reap: %d", r);
        struct pollfd pfd = {.fd = sfd, .events = POLLIN};
        if (left_ms(deadline) == 0)
            return 0;
        if (poll(&pfd, 1, left_ms(deadline)) > 0)
            pty_reaper_drain(sfd);
    }
}

/* Once the exit is known: releases the slave, then reads the rest until EIO. */
static void drain_to_eio(struct pty_proc *p, struct out *o, int64_t deadline)
{
    int eof = 0;

    pty_proc_release_slave(p);
    cr_assert_eq(p->slave, -1);
    pty_proc_release_slave(p); /* idempotent */
    while (!eof) {
        struct pollfd pfd = {.fd = p->master, .events = POLLIN};
        cr_assert(left_ms(deadline) > 0, "master never reached EIO");
        poll(&pfd, 1, left_ms(deadline));
        eof = drain_master(p->master, o);
    }
}

/*
 * Runs the child to its end: reads the master while it runs, learns of the exit from the reaper,
 * then releases the slave and reads the rest until EIO.
 */
static void finish(struct pty_proc *p, struct out *o, int *status)
{
    int64_t deadline = now_ms() + DEADLINE_MS;
    int sfd = reaper();
    int exited = 0;

    while (!exited) {
        struct pollfd pfd[2] = {{.fd = sfd, .events = POLLIN}, {.fd = p->master, .events = POLLIN}};
        pid_t got;
        int st, r;

        while ((r = pty_reap(&got, &st)) == 1)
            if (got == p->pid && (WIFEXITED(st) || WIFSIGNALED(st))) {
                *status = st;
                exited = 1;
            }
        cr_assert(r == 0, "pty_reap: %d", r);
        if (exited)
            break;
        cr_assert(left_ms(deadline) > 0, "child %d did not exit; output so far: %.200s", p->pid,
                  o->buf);
        if (poll(pfd, 2, left_ms(deadline)) < 0)
            continue;
        if (pfd[0].revents)
            pty_reaper_drain(sfd);
        if (pfd[1].revents) {
            /* The parent holds the slave, so the master never reports the end early. */
            cr_assert(!drain_master(p->master, o), "master hit EIO while the slave was held");
        }
    }
    drain_to_eio(p, o, deadline);
}

static void spawn_ok(const struct pty_spawn_opts *so, struct pty_proc *p)
{
    char err[256];
    int r = pty_spawn(so, p, err, sizeof err);

    cr_assert_eq(r, 0, "pty_spawn: %d (%s)", r, err);
    cr_assert(p->pid > 0 && p->master >= 0 && p->slave >= 0);
}

/* Spawns, runs to the end, closes the master; returns the output (caller frees) and status. */
static char *run(const struct pty_spawn_opts *so, int *status, size_t *len)
{
    struct pty_proc p;
    struct out o;

    out_init(&o);
    spawn_ok(so, &p);
    finish(&p, &o, status);
    close(p.master);
    if (len)
        *len = o.len;
    return o.buf;
}

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    int n = 0;

    cr_assert(d);
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1; /* the directory's own fd */
}

static void assert_no_child(void)
{
    errno = 0;
    cr_assert_eq(waitpid(-1, NULL, WNOHANG), -1, "a child was left behind");
    cr_assert_eq(errno, ECHILD);
}

static void assert_exit(int st, int code)
{
    cr_assert(WIFEXITED(st), "status 0x%x is not an exit", st);
    cr_assert_eq(WEXITSTATUS(st), code);
}

static void make_tmpdir(char *dir, size_t len)
{
    snprintf(dir, len, "/tmp/test_pty.XXXXXX");
    cr_assert(mkdtemp(dir));
}

static void write_file(const char *path, const char *text, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);

    cr_assert(fd >= 0, "%s: %s", path, strerror(errno));
    cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
}

static void spawn_fails(const struct pty_spawn_opts *so, int want, const char *want_err)
{
    struct pty_proc p;
    char err[256];
    int before = count_fds();
    int r = pty_spawn(so, &p, err, sizeof err);

    cr_assert_eq(r, want, "pty_spawn: %d, want %d (%s)", r, want, err);
    if (want_err)
        cr_assert_str_eq(err, want_err);
    else
        cr_assert(err[0] != '\0');
    cr_assert_eq(p.pid, -1);
    cr_assert_eq(p.master, -1);
    cr_assert_eq(p.slave, -1);
    assert_no_child();
    cr_assert_eq(count_fds(), before, "spawn leaked an fd on failure");
}

Test(spawn, echo_hello)
{
    const char *argv[] = {"echo", "hello", NULL};
    struct pty_spawn_opts so = {.argv = argv};
    struct pty_proc p;
    struct out o;
    int st = -1;

    out_init(&o);
    spawn_ok(&so, &p);
    cr_assert(fcntl(p.master, F_GETFL) & O_NONBLOCK);
    cr_assert(fcntl(p.master, F_GETFD) & FD_CLOEXEC);
    cr_assert(fcntl(p.slave, F_GETFD) & FD_CLOEXEC);
    cr_assert(!(fcntl(p.slave, F_GETFL) & O_NONBLOCK));
    finish(&p, &o, &st);
    close(p.master);
    /* onlcr turns the newline into CR LF. */
    cr_assert_str_eq(o.buf, "hello\r\n");
    cr_assert_eq(o.len, 7);
    assert_exit(st, 0);
    assert_no_child();
    free(o.buf);
}

Test(spawn, exit_codes)
{
    const char *a3[] = {"sh", "-c", "exit 3", NULL};
    const char *a0[] = {"/bin/sh", "-c", "exit 0", NULL};
    const char *aterm[] = {"sh", "-c", "kill -TERM $$", NULL};
    struct pty_spawn_opts so = {0};
    int st;

    so.argv = a3;
    free(run(&so, &st, NULL));
    assert_exit(st, 3);
    so.argv = a0;
    free(run(&so, &st, NULL));
    assert_exit(st, 0);
    so.argv = aterm;
    free(run(&so, &st, NULL));
    cr_assert(WIFSIGNALED(st));
    cr_assert_eq(WTERMSIG(st), SIGTERM);
}

Test(spawn, bad_argv_no_child)
{
    const char *nope[] = {"/nope", NULL};
    const char *bare[] = {"no-such-program-ptyrelay", "x", NULL};
    const char *notexec[] = {"/etc/passwd", NULL};
    const char *dir[] = {"/tmp", NULL};
    const char *empty[] = {NULL};
    const char *blank[] = {"", NULL};
    struct pty_spawn_opts so = {0};

    so.argv = nope;
    spawn_fails(&so, -ENOENT, "cannot execute /nope: No such file or directory");
    so.argv = bare;
    spawn_fails(&so, -ENOENT, "cannot execute no-such-program-ptyrelay: No such file or directory");
    so.argv = notexec;
    spawn_fails(&so, -EACCES, "cannot execute /etc/passwd: Permission denied");
    so.argv = dir;
    spawn_fails(&so, -EACCES, "cannot execute /tmp: Permission denied");
    so.argv = empty;
    spawn_fails(&so, -EINVAL, NULL);
    so.argv = blank;
    spawn_fails(&so, -ENOENT, NULL);
}

/* Failures only execve can see travel back over the report pipe. */
Test(spawn, exec_failure_in_child)
{
    char dir[64], junk[128], badinterp[128], want[256];
    const char *a1[] = {junk, NULL};
    const char *a2[] = {badinterp, NULL};
    struct pty_spawn_opts so = {0};

    make_tmpdir(dir, sizeof dir);
    snprintf(junk, sizeof junk, "%s/junk", dir);
    snprintf(badinterp, sizeof badinterp, "%s/badinterp", dir);
    write_file(junk, "\x01\x02\x03 not a program\n", 0755);
    write_file(badinterp, "#!/nonexistent/interpreter\n", 0755);

    so.argv = a1;
    snprintf(want, sizeof want, "cannot execute %s: Exec format error", junk);
    spawn_fails(&so, -ENOEXEC, want);
    so.argv = a2;
    snprintf(want, sizeof want, "cannot execute %s: No such file or directory", badinterp);
    spawn_fails(&so, -ENOENT, want);

    unlink(junk);
    unlink(badinterp);
    rmdir(dir);
}

Test(spawn, bad_cwd)
{
    const char *argv[] = {"echo", "x", NULL};
    struct pty_spawn_opts so = {.argv = argv};

    so.cwd = "/nonexistent-ptyrelay-dir";
    spawn_fails(&so, -ENOENT, "cwd /nonexistent-ptyrelay-dir: No such file or directory");
    so.cwd = "/etc/passwd";
    spawn_fails(&so, -ENOTDIR, "cwd /etc/passwd: Not a directory");
}

Test(spawn, cwd_and_relative_program)
{
    char dir[64], real[4096], prog[128], want[4200];
    const char *pwd[] = {"pwd", "-P", NULL};
    const char *rel[] = {"./prog", NULL};
    struct pty_spawn_opts so = {.cwd = dir};
    char *out;
    int st;

    make_tmpdir(dir, sizeof dir);
    cr_assert(realpath(dir, real));
    so.argv = pwd;
    out = run(&so, &st, NULL);
    snprintf(want, sizeof want, "%s\r\n", real);
    cr_assert_str_eq(out, want);
    assert_exit(st, 0);
    free(out);

    /* "./prog" means the program in the child's cwd, not in the relay's. */
    snprintf(prog, sizeof prog, "%s/prog", dir);
    write_file(prog, "#!/bin/sh\necho ran in \"$(pwd -P)\"\n", 0755);
    so.argv = rel;
    out = run(&so, &st, NULL);
    snprintf(want, sizeof want, "ran in %s\r\n", real);
    cr_assert_str_eq(out, want);
    assert_exit(st, 0);
    free(out);
    unlink(prog);
    rmdir(dir);
}

Test(spawn, env_exact)
{
    const char *env[] = {"PATH=/usr/bin:/bin", "TERM=xterm-256color", "PTYRELAY_TEST=a b=c", NULL};
    const char *aenv[] = {"env", NULL};
    const char *ash[] = {"sh", "-c", "printf '%s|%s\\n' \"$PTYRELAY_TEST\" \"$TERM\"", NULL};
    const char *nopath[] = {"PATH=/nonexistent-ptyrelay", NULL};
    struct pty_spawn_opts so = {.env = env};
    char *out;
    int st;

    so.argv = aenv;
    out = run(&so, &st, NULL);
    cr_assert_str_eq(out, "PATH=/usr/bin:/bin\r\nTERM=xterm-256color\r\nPTYRELAY_TEST=a b=c\r\n");
    assert_exit(st, 0);
    free(out);

    so.argv = ash;
    out = run(&so, &st, NULL);
    cr_assert_str_eq(out, "a b=c|xterm-256color\r\n");
    free(out);

    /* argv[0] is looked up in the child's PATH, not the relay's. */
    so.env = nopath;
    so.argv = aenv;
    spawn_fails(&so, -ENOENT, "cannot execute env: No such file or directory");
}

Test(spawn, env_inherited_when_null)
{
    const char *argv[] = {"sh", "-c", "echo \"$PTYRELAY_INHERIT\"", NULL};
    struct pty_spawn_opts so = {.argv = argv};
    char *out;
    int st;

    cr_assert_eq(setenv("PTYRELAY_INHERIT", "yes it is", 1), 0);
    out = run(&so, &st, NULL);
    cr_assert_str_eq(out, "yes it is\r\n");
    free(out);
}

Test(spawn, size_initial_and_resized)
{
    const char *argv[] = {"sh", "-c", "stty size; read x; stty size", NULL};
    const char *sz[] = {"stty", "size", NULL};
    struct pty_spawn_opts so = {.argv = argv, .cols = 100, .rows = 30};
    struct pty_proc p;
    struct out o;
    int64_t deadline = now_ms() + DEADLINE_MS;
    uint16_t cols = 0, rows = 0;
    char *def;
    int st;

    out_init(&o);
    spawn_ok(&so, &p);
    cr_assert_eq(pty_get_size(p.master, &cols, &rows), 0);
    cr_assert_eq(cols, 100);
    cr_assert_eq(rows, 30);
    while (!strstr(o.buf, "30 100\r\n")) {
        struct pollfd pfd = {.fd = p.master, .events = POLLIN};
        cr_assert(left_ms(deadline) > 0, "no size line; got: %s", o.buf);
        poll(&pfd, 1, left_ms(deadline));
        cr_assert(!drain_master(p.master, &o));
    }
    cr_assert_eq(pty_resize(p.master, 132, 43), 0);
    cr_assert_eq(pty_get_size(p.slave, &cols, &rows), 0);
    cr_assert_eq(cols, 132);
    cr_assert_eq(rows, 43);
    cr_assert_eq(pty_resize(p.master, 0, 43), -EINVAL);
    cr_assert_eq(write(p.master, "\n", 1), 1);
    finish(&p, &o, &st);
    close(p.master);
    /* The line we typed is echoed (as CR LF) between the two answers. */
    cr_assert_str_eq(o.buf, "30 100\r\n\r\n43 132\r\n");
    assert_exit(st, 0);
    free(o.buf);

    so.argv = sz;
    so.cols = 0;
    so.rows = 0;
    def = run(&so, &st, NULL);
    cr_assert_str_eq(def, "24 80\r\n");
    free(def);
}

/* The child is a session leader whose controlling terminal is this PTY, in the foreground. */
Test(spawn, session_leader_with_ctty)
{
    const char *argv[] = {"cat", "/proc/self/stat", NULL};
    struct pty_spawn_opts so = {.argv = argv};
    struct pty_proc p;
    struct out o;
    struct stat sst;
    int pid, ppid, pgrp, sid, tty_nr, tpgid, st;
    char state;
    const char *rp;
    unsigned int want_tty;

    out_init(&o);
    spawn_ok(&so, &p);
    cr_assert_eq(fstat(p.slave, &sst), 0);
    finish(&p, &o, &st);
    close(p.master);
    assert_exit(st, 0);

    cr_assert_eq(sscanf(o.buf, "%d", &pid), 1);
    rp = strrchr(o.buf, ')');
    cr_assert(rp, "bad stat: %s", o.buf);
    cr_assert_eq(sscanf(rp + 1, " %c %d %d %d %d %d", &state, &ppid, &pgrp, &sid, &tty_nr, &tpgid),
                 6);
    /* tty_nr uses the kernel's new_encode_dev layout. */
    want_tty = (minor(sst.st_rdev) & 0xff) | (major(sst.st_rdev) << 8) |
               ((minor(sst.st_rdev) & ~0xffu) << 12);
    cr_assert_eq(pid, p.pid);
    cr_assert_eq(ppid, getpid());
    cr_assert_eq(sid, p.pid, "not a session leader");
    cr_assert_eq(pgrp, p.pid, "not a process group leader");
    cr_assert_eq((unsigned int)tty_nr, want_tty, "controlling tty is not the PTY");
    cr_assert_eq(tpgid, p.pid, "not the foreground group");
    free(o.buf);
}

/* The relay ignores or blocks signals of its own; the program must start with a clean slate. */
Test(spawn, signal_state_reset)
{
    const char *argv[] = {"grep", "-E", "^Sig(Blk|Ign)", "/proc/self/status", NULL};
    struct pty_spawn_opts so = {.argv = argv};
    sigset_t set;
    char *out;
    int st;

    signal(SIGINT, SIG_IGN);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGTERM);
    cr_assert_eq(sigprocmask(SIG_BLOCK, &set, NULL), 0);
    out = run(&so, &st, NULL);
    cr_assert_str_eq(out, "SigBlk:\t0000000000000000\r\nSigIgn:\t0000000000000000\r\n");
    assert_exit(st, 0);
    free(out);
}

Test(spawn, login_shell_by_default)
{
    struct pty_spawn_opts so = {0};
    struct pty_proc p;
    struct out o;
    const char *cmd = "echo \"[$0]\"; exit 7\n";
    int st;

    cr_assert_eq(setenv("SHELL", "/bin/sh", 1), 0);
    out_init(&o);
    spawn_ok(&so, &p);
    cr_assert_eq(write(p.master, cmd, strlen(cmd)), (ssize_t)strlen(cmd));
    finish(&p, &o, &st);
    close(p.master);
    /* A leading '-' in argv[0] is how a shell knows it is a login shell. */
    cr_assert(strstr(o.buf, "[-sh]"), "no login argv[0] in: %s", o.buf);
    assert_exit(st, 7);
    free(o.buf);
}

Test(signal, int_reaches_program)
{
    const char *argv[] = {"sleep", "100", NULL};
    struct pty_spawn_opts so = {.argv = argv};
    struct pty_proc p;
    int st;

    /* Ignored here, so it is pty_spawn's reset that lets SIGINT kill the child. */
    signal(SIGINT, SIG_IGN);
    reaper();
    spawn_ok(&so, &p);
    cr_assert_eq(pty_signal(p.pid, SIGINT), 0);
    cr_assert(wait_change(p.pid, &st, now_ms() + DEADLINE_MS));
    cr_assert(WIFSIGNALED(st), "status 0x%x", st);
    cr_assert_eq(WTERMSIG(st), SIGINT);
    cr_assert_eq(pty_signal(p.pid, SIGINT), -ESRCH);
    cr_assert_eq(pty_signal(0, SIGINT), -EINVAL);
    cr_assert_eq(pty_signal(1, SIGINT), -EINVAL);
    pty_proc_release_slave(&p);
    close(p.master);
    assert_no_child();
}

/*
 * The whole process group is signalled, not just the program: a background job of the shell that
 * is no longer its child (the subshell that started it has exited, so it is reparented to us, a
 * subreaper) dies too, which a kill() of the pid alone would not do.
 */
Test(signal, reaches_process_group)
{
    const char *argv[] = {"sh", "-c", "(sleep 100 & echo \"bg=$!\"); exec sleep 100", NULL};
    struct pty_spawn_opts so = {.argv = argv};
    struct pty_proc p;
    struct out o;
    int64_t deadline = now_ms() + DEADLINE_MS;
    int bg = 0, st, got_main = 0, got_bg = 0;
    char *s;

    cr_assert_eq(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
    reaper();
    out_init(&o);
    spawn_ok(&so, &p);
    while (!(s = strstr(o.buf, "bg=")) || !strchr(s, '\n')) {
        struct pollfd pfd = {.fd = p.master, .events = POLLIN};
        cr_assert(left_ms(deadline) > 0, "no bg pid; got: %s", o.buf);
        poll(&pfd, 1, left_ms(deadline));
        cr_assert(!drain_master(p.master, &o));
    }
    cr_assert_eq(sscanf(s, "bg=%d", &bg), 1);
    cr_assert(bg > 0 && bg != p.pid);
    cr_assert_eq(pty_signal(p.pid, SIGTERM), 0);
    for (;;) {
        int sfd = reaper();
        struct pollfd pfd = {.fd = sfd, .events = POLLIN};
        pid_t pid;
        int r;

        while ((r = pty_reap(&pid, &st)) == 1) {
            if (pid == p.pid) {
                cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM, "main status 0x%x", st);
                got_main = 1;
            } else if (pid == bg) {
                cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM, "bg status 0x%x", st);
                got_bg = 1;
            }
        }
        if (got_main && got_bg)
            break;
        cr_assert(left_ms(deadline) > 0, "main reaped %d, bg reaped %d", got_main, got_bg);
        if (poll(&pfd, 1, left_ms(deadline)) > 0)
            pty_reaper_drain(sfd);
    }
    pty_proc_release_slave(&p);
    close(p.master);
    cr_assert_eq(prctl(PR_SET_CHILD_SUBREAPER, 0), 0);
    free(o.buf);
}

Test(reap, stop_and_continue_reported)
{
    const char *argv[] = {"sleep", "100", NULL};
    struct pty_spawn_opts so = {.argv = argv};
    struct pty_proc p;
    pid_t pid;
    int st;

    reaper();
    spawn_ok(&so, &p);
    cr_assert_eq(pty_signal(p.pid, SIGSTOP), 0);
    cr_assert(wait_change(p.pid, &st, now_ms() + DEADLINE_MS));
    cr_assert(WIFSTOPPED(st), "status 0x%x", st);
    cr_assert_eq(WSTOPSIG(st), SIGSTOP);
    cr_assert_eq(pty_signal(p.pid, SIGCONT), 0);
    cr_assert(wait_change(p.pid, &st, now_ms() + DEADLINE_MS));
    cr_assert(WIFCONTINUED(st), "status 0x%x", st);
    cr_assert_eq(pty_signal(p.pid, SIGKILL), 0);
    cr_assert(wait_change(p.pid, &st, now_ms() + DEADLINE_MS));
    cr_assert(WIFSIGNALED(st));
    cr_assert_eq(WTERMSIG(st), SIGKILL);
    /* No children left: ECHILD is "nothing pending", not an error. */
    cr_assert_eq(pty_reap(&pid, &st), 0);
    pty_proc_release_slave(&p);
    close(p.master);
}

/* A big write followed by exit: every byte arrives, the last ones included. */
Test(output, one_mib_then_exit_nothing_lost)
{
    const char *argv[] = {"sh", "-c", "head -c 1048576 /dev/zero | tr '\\000' x", NULL};
    struct pty_spawn_opts so = {.argv = argv};
    size_t len, i;
    char *out;
    int st;

    out = run(&so, &st, &len);
    assert_exit(st, 0);
    cr_assert_eq(len, 1048576);
    for (i = 0; i < len && out[i] == 'x'; i++)
        ;
    cr_assert_eq(i, len, "byte %zu is 0x%02x", i, (unsigned char)out[i]);
    free(out);
}

/*
 * The case the kept slave exists for: nobody reads while the program writes and exits. The master
 * must not report a hangup before the slave is released, and the whole tail must then be read.
 */
Test(output, unread_tail_survives_exit)
{
    const char *argv[] = {"sh", "-c", "head -c 3000 /dev/zero | tr '\\000' y", NULL};
    struct pty_spawn_opts so = {.argv = argv};
    struct pty_proc p;
    struct out o;
    struct pollfd pfd;
    size_t i;
    int st;

    out_init(&o);
    reaper();
    spawn_ok(&so, &p);
    cr_assert(wait_change(p.pid, &st, now_ms() + DEADLINE_MS));
    assert_exit(st, 0);
    pfd = (struct pollfd){.fd = p.master, .events = POLLIN};
    cr_assert_eq(poll(&pfd, 1, 5000), 1);
    cr_assert(pfd.revents & POLLIN);
    cr_assert(!(pfd.revents & POLLHUP), "master hung up while the slave was held");
    drain_to_eio(&p, &o, now_ms() + DEADLINE_MS);
    close(p.master);
    cr_assert_eq(o.len, 3000);
    for (i = 0; i < o.len && o.buf[i] == 'y'; i++)
        ;
    cr_assert_eq(i, o.len);
    free(o.buf);
}

Test(fds, spawn_leaks_none)
{
    const char *argv[] = {"echo", "hi", NULL};
    struct pty_spawn_opts so = {.argv = argv};
    int before, st;

    reaper();
    before = count_fds();
    free(run(&so, &st, NULL));
    cr_assert_eq(count_fds(), before);
    for (int i = 0; i < 20; i++)
        free(run(&so, &st, NULL));
    cr_assert_eq(count_fds(), before);
}

/* fds the relay has open (even without CLOEXEC) never reach the program. */
Test(fds, not_inherited)
{
    const char *argv[] = {"ls", "-1", "/proc/self/fd", NULL};
    struct pty_spawn_opts so = {.argv = argv};
    int pfd[2], nul, st;
    char *out;

    cr_assert_eq(pipe(pfd), 0);
    nul = open("/dev/null", O_RDONLY);
    cr_assert(nul >= 0);
    cr_assert(dup2(nul, 50) == 50);
    out = run(&so, &st, NULL);
    /* 0-2 are the PTY; 3 is the directory ls itself opened to list. */
    cr_assert_str_eq(out, "0\r\n1\r\n2\r\n3\r\n");
    assert_exit(st, 0);
    free(out);
    close(pfd[0]);
    close(pfd[1]);
    close(nul);
    close(50);
}

Test(resolve, path_search)
{
    char out[4096], small[4];
    char dir[64], prog[128], noexec[128], path[256];

    cr_assert_eq(pty_resolve("sh", "/nonexistent-a::/bin:/usr/bin", out, sizeof out), 0);
    cr_assert_str_eq(out, "/bin/sh");
    cr_assert_eq(pty_resolve("/bin/sh", NULL, out, sizeof out), 0);
    cr_assert_str_eq(out, "/bin/sh");
    cr_assert_eq(pty_resolve("sh", NULL, out, sizeof out), 0); /* execvp's default PATH */
    cr_assert_str_eq(out, "/bin/sh");
    cr_assert_eq(pty_resolve("no-such-program-ptyrelay", "/bin:/usr/bin", out, sizeof out),
                 -ENOENT);
    cr_assert_eq(pty_resolve("", "/bin", out, sizeof out), -ENOENT);
    cr_assert_eq(pty_resolve("/nope", "/bin", out, sizeof out), -ENOENT);
    cr_assert_eq(pty_resolve("/etc/passwd", "/bin", out, sizeof out), -EACCES);
    cr_assert_eq(pty_resolve("sh", "/bin", small, sizeof small), -ENAMETOOLONG);

    /* A non-executable match is skipped in favour of a later one; EACCES only if none is found. */
    make_tmpdir(dir, sizeof dir);
    snprintf(noexec, sizeof noexec, "%s/ptyrelay-prog", dir);
    write_file(noexec, "#!/bin/sh\n", 0644);
    snprintf(path, sizeof path, "%s:/bin", dir);
    cr_assert_eq(pty_resolve("ptyrelay-prog", path, out, sizeof out), -EACCES);
    cr_assert_eq(pty_resolve("sh", path, out, sizeof out), 0);
    cr_assert_str_eq(out, "/bin/sh");
    snprintf(prog, sizeof prog, "%s/sh", dir);
    write_file(prog, "#!/bin/sh\n", 0755);
    cr_assert_eq(pty_resolve("sh", path, out, sizeof out), 0);
    cr_assert_str_eq(out, prog);
    unlink(prog);
    unlink(noexec);
    rmdir(dir);
}

Test(resolve, default_shell)
{
    cr_assert_eq(setenv("SHELL", "/bin/bash-ptyrelay-test", 1), 0);
    cr_assert_str_eq(pty_default_shell(), "/bin/bash-ptyrelay-test");
    cr_assert_eq(unsetenv("SHELL"), 0);
    cr_assert(pty_default_shell()[0] == '/');
}

Test(reap, nothing_pending)
{
    pid_t pid;
    int st, sfd = reaper();

    cr_assert_eq(pty_reap(&pid, &st), 0);
    pty_reaper_drain(sfd); /* empty, non-blocking: returns at once */
    close(sfd);
}
