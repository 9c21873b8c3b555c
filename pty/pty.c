/*
 * pty.c: the one place that makes pseudo-terminals and the processes that run in them.
 *
 * It owns: resolving a program against PATH, checking cwd, opening the PTY pair, fork + login_tty,
 * the child's clean slate (default signal dispositions, empty mask, only fds 0-2 open),
 * reporting a failed chdir/exec back to the parent over a close-on-exec pipe, window size ioctls,
 * signalling the child's process group and reaping children through a signalfd. The caller owns the
 * master fd and the parent's slave fd once pty_spawn returns; see pty.h for why the slave is kept.
 *
 * Everything that can fail in an ordinary way (no such program, bad cwd) is checked in the parent
 * before forking, so the common errors cost no child. What can only be seen in the child (ENOEXEC,
 * a race on cwd) comes back as a {stage, errno} record on the pipe; EOF on it means execve worked.
 */
#include "pty.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <utmp.h>

extern char **environ;

/* Where the child failed, sent to the parent with errno. */
enum spawn_stage {
    STAGE_TTY = 1,
    STAGE_CHDIR = 2,
    STAGE_EXEC = 3,
};

struct spawn_report {
    int stage;
    int err;
};

/* What execvp uses when PATH is unset (confstr(_CS_PATH) on glibc). */
#define PTY_DEFAULT_PATH "/bin:/usr/bin"

static const char *errtext(int err, char *buf, size_t len)
{
    /* _GNU_SOURCE is set project-wide, so this is the GNU strerror_r returning a pointer. */
    return strerror_r(err, buf, len);
}

static void set_err(char *errstr, size_t errlen, const char *what, const char *subject, int err)
{
    char eb[128];

    if (!errstr || errlen == 0)
        return;
    if (subject)
        snprintf(errstr, errlen, "%s %s: %s", what, subject, errtext(err, eb, sizeof eb));
    else
        snprintf(errstr, errlen, "%s: %s", what, errtext(err, eb, sizeof eb));
}

/*
 * A candidate is runnable when it is a regular file we may execute. execve would say EACCES for a
 * directory too, so we do the same rather than let the child find out.
 */
static int check_exec(int dfd, const char *path)
{
    struct stat st;

    if (fstatat(dfd, path, &st, 0) < 0)
        return -errno;
    if (!S_ISREG(st.st_mode))
        return -EACCES;
    if (faccessat(dfd, path, X_OK, AT_EACCESS) < 0)
        return -errno;
    return 0;
}

static int copy_out(const char *s, char *out, size_t outlen)
{
    size_t n = strlen(s);

    if (n + 1 > outlen)
        return -ENAMETOOLONG;
    memcpy(out, s, n + 1);
    return 0;
}

/*
 * execvp's search, relative to dfd: relative candidates are checked against the directory the
 * child will run in (its cwd), and written out relative, so they are still right after chdir.
 * Like execvp, a directory that does not hold the name is skipped, and EACCES is only reported
 * when no later directory has a usable program.
 */
static int resolve_at(int dfd, const char *name, const char *path_env, char *out, size_t outlen)
{
    char cand[PATH_MAX];
    size_t nlen;
    int saw_eacces = 0;
    const char *p;

    if (!name || !*name)
        return -ENOENT;
    if (strchr(name, '/')) {
        int r = check_exec(dfd, name);
        return r < 0 ? r : copy_out(name, out, outlen);
    }
    nlen = strlen(name);
    if (nlen > NAME_MAX)
        return -ENAMETOOLONG;
    if (!path_env)
        path_env = PTY_DEFAULT_PATH;
    p = path_env;
    for (;;) {
        const char *end = strchrnul(p, ':');
        size_t dlen = (size_t)(end - p);
        int r;

        /* An empty element means the current directory, as in execvp. */
        if (dlen == 0) {
            p = ".";
            dlen = 1;
        }
        if (dlen + 1 + nlen + 1 <= sizeof cand) {
            memcpy(cand, p, dlen);
            cand[dlen] = '/';
            memcpy(cand + dlen + 1, name, nlen + 1);
            r = check_exec(dfd, cand);
            if (r == 0)
                return copy_out(cand, out, outlen);
            if (r == -EACCES)
                saw_eacces = 1;
        }
        if (*end == '\0')
            break;
        p = end + 1;
    }
    return saw_eacces ? -EACCES : -ENOENT;
}

/* Resolves a program name against PATH like execvp, without executing. */
int pty_resolve(const char *name, const char *path_env, char *out, size_t outlen)
{
    return resolve_at(AT_FDCWD, name, path_env, out, outlen);
}

static const char *env_get(const char *const *env, const char *key)
{
    size_t klen = strlen(key);

    for (; *env; env++)
        if (strncmp(*env, key, klen) == 0 && (*env)[klen] == '=')
            return *env + klen + 1;
    return NULL;
}

/* The user's login shell: $SHELL, else the passwd entry, else /bin/sh. */
const char *pty_default_shell(void)
{
    static char shell[PATH_MAX];
    const char *s = getenv("SHELL");

    if (!s || s[0] != '/') {
        struct passwd *pw = getpwuid(getuid());
        s = (pw && pw->pw_shell && pw->pw_shell[0] == '/') ? pw->pw_shell : "/bin/sh";
    }
    if (copy_out(s, shell, sizeof shell) < 0)
        copy_out("/bin/sh", shell, sizeof shell);
    return shell;
}

static void child_report(int fd, int stage, int err)
{
    struct spawn_report rep = {.stage = stage, .err = err};
    ssize_t n;

    /* Below PIPE_BUF, so one write is atomic; nothing to do if the parent is gone. */
    do {
        n = write(fd, &rep, sizeof rep);
    } while (n < 0 && errno == EINTR);
    _exit(127);
}

/*
 * Runs in the forked child, with every signal blocked (the parent blocked them around fork, so no
 * handler of the relay can run here). Only async-signal-safe calls, no allocation.
 */
/*
 * glibc refuses sigaction() on the two real-time signals it reserves for itself (32, 33), yet an
 * ignored disposition of them inherited from whoever started the relay would survive execve into
 * every session. The raw system call resets them; this runs only in the child, just before exec.
 */
static void reset_reserved_signal(int signo)
{
    struct {
        void *handler;
        unsigned long flags;
        void *restorer;
        uint64_t mask;
    } k = {SIG_DFL, 0, NULL, 0};
    syscall(SYS_rt_sigaction, signo, &k, NULL, sizeof k.mask);
}

static void child_exec(int slave, int errfd, const char *cwd, const char *path, char *const *argv,
                       char *const *envp, unsigned long maxfd)
{
    struct sigaction dfl;
    sigset_t empty;
    int fd;

    /*
     * A daemon may run with fds 0-2 closed, so the pipe or the slave could sit there and be
     * clobbered by login_tty's dup2 onto 0-2. Move both above 2 first.
     */
    if (errfd < 3) {
        fd = fcntl(errfd, F_DUPFD_CLOEXEC, 3);
        if (fd < 0)
            child_report(errfd, STAGE_TTY, errno); /* 0-2 are untouched yet: it still works */
        errfd = fd;
    }
    if (slave < 3) {
        fd = fcntl(slave, F_DUPFD_CLOEXEC, 3);
        if (fd < 0)
            child_report(errfd, STAGE_TTY, errno);
        slave = fd;
    }
    /* setsid, TIOCSCTTY (the slave becomes the controlling tty), dup2 onto 0-2, close slave. */
    if (login_tty(slave) < 0)
        child_report(errfd, STAGE_TTY, errno);

    /* The report pipe goes to fd 3 (still close-on-exec), so everything from 4 up can go. */
    if (errfd != 3) {
        if (dup3(errfd, 3, O_CLOEXEC) < 0)
            child_report(errfd, STAGE_TTY, errno);
        errfd = 3;
    }
    if (close_range(4, ~0U, 0) < 0) {
        /* Kernels before 5.9: walk up to the fd limit measured before fork. */
        for (unsigned long i = 4; i < maxfd; i++)
            close((int)i);
    }

    if (cwd && chdir(cwd) < 0)
        child_report(errfd, STAGE_CHDIR, errno);

    /*
     * Handlers are reset by execve anyway, but SIG_IGN survives it: a relay that ignores SIGPIPE
     * would hand that to every shell. Reset all, then unblock all (the mask survives exec too).
     */
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    for (int s = 1; s < NSIG; s++) {
        if (s == SIGKILL || s == SIGSTOP)
            continue;
        if (sigaction(s, &dfl, NULL) < 0 && errno == EINVAL)
            reset_reserved_signal(s);
    }
    sigemptyset(&empty);
    sigprocmask(SIG_SETMASK, &empty, NULL);

    execve(path, argv, envp);
    child_report(errfd, STAGE_EXEC, errno);
}

static void close_if(int *fd)
{
    if (*fd >= 0) {
        close(*fd);
        *fd = -1;
    }
}

/*
 * openpty(3), but with the flags set atomically: the master O_NONBLOCK|O_CLOEXEC from the open
 * itself and the slave O_CLOEXEC, so a fork elsewhere never inherits them. (openpty takes no
 * flags, and <pty.h> cannot be included here anyway: this folder's pty.h shadows it on the
 * include path.) TIOCGPTPEER (Linux 4.13) opens the slave without a path lookup in /dev/pts.
 */
static int open_pty(int *mfd, int *sfd, const struct winsize *ws)
{
    char name[64];
    int m, s, r;

    m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
    if (m < 0)
        return -errno;
    if (grantpt(m) < 0 || unlockpt(m) < 0)
        goto fail;
    s = ioctl(m, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (s < 0) {
        if (errno != EINVAL && errno != ENOTTY)
            goto fail;
        if ((errno = ptsname_r(m, name, sizeof name)) != 0)
            goto fail;
        s = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
        if (s < 0)
            goto fail;
    }
    /* Set before fork, so the program sees its size from its first instruction. */
    if (ioctl(m, TIOCSWINSZ, ws) < 0) {
        r = -errno;
        close(s);
        close(m);
        return r;
    }
    *mfd = m;
    *sfd = s;
    return 0;
fail:
    r = -errno;
    close(m);
    return r;
}

/* Checks cwd in the parent; on success *dfd is an O_PATH fd of it for resolving relative names. */
static int check_cwd(const char *cwd, int *dfd, char *errstr, size_t errlen)
{
    int fd = open(cwd, O_PATH | O_DIRECTORY | O_CLOEXEC);
    int r;

    if (fd < 0) {
        r = -errno;
        set_err(errstr, errlen, "cwd", cwd, -r);
        return r;
    }
    /* O_PATH does not need search permission; chdir does. */
    if (faccessat(AT_FDCWD, cwd, X_OK, AT_EACCESS) < 0) {
        r = -errno;
        close(fd);
        set_err(errstr, errlen, "cwd", cwd, -r);
        return r;
    }
    *dfd = fd;
    return 0;
}

/* Starts a program in a new PTY; see pty.h for the contract. */
int pty_spawn(const struct pty_spawn_opts *o, struct pty_proc *p, char *errstr, size_t errlen)
{
    char path[PATH_MAX];
    char login_arg0[NAME_MAX + 2];
    const char *login_argv[2];
    const char *const *argv = o->argv;
    const char *const *env = o->env ? o->env : (const char *const *)environ;
    const char *name;
    const char *path_env;
    struct winsize ws;
    struct spawn_report rep;
    struct rlimit rl;
    unsigned long maxfd = 1024;
    sigset_t all, old;
    int master = -1, slave = -1, pipefd[2] = {-1, -1}, dfd = AT_FDCWD;
    int r, st;
    pid_t pid;
    ssize_t n;

    if (errstr && errlen)
        errstr[0] = '\0';
    p->pid = -1;
    p->master = -1;
    p->slave = -1;

    if (argv) {
        if (!argv[0]) {
            if (errstr && errlen)
                snprintf(errstr, errlen, "empty argv");
            return -EINVAL;
        }
        name = argv[0];
    } else {
        /* A login shell is told so by a leading '-' in argv[0] ("-bash"), as login(1) does. */
        const char *shell = pty_default_shell();
        const char *base = strrchr(shell, '/');

        base = base ? base + 1 : shell;
        snprintf(login_arg0, sizeof login_arg0, "-%s", base);
        login_argv[0] = login_arg0;
        login_argv[1] = NULL;
        argv = login_argv;
        name = shell;
    }

    if (o->cwd) {
        r = check_cwd(o->cwd, &dfd, errstr, errlen);
        if (r < 0)
            return r;
    }
    path_env = o->env ? env_get(o->env, "PATH") : getenv("PATH");
    r = resolve_at(dfd, name, path_env, path, sizeof path);
    if (dfd >= 0)
        close(dfd);
    if (r < 0) {
        set_err(errstr, errlen, "cannot execute", name, -r);
        return r;
    }

    ws.ws_col = o->cols ? o->cols : 80;
    ws.ws_row = o->rows ? o->rows : 24;
    ws.ws_xpixel = 0;
    ws.ws_ypixel = 0;
    r = open_pty(&master, &slave, &ws);
    if (r < 0) {
        set_err(errstr, errlen, "cannot open a pty", NULL, -r);
        return r;
    }
    if (pipe2(pipefd, O_CLOEXEC) < 0) {
        r = -errno;
        set_err(errstr, errlen, "pipe", NULL, -r);
        goto fail;
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
        maxfd = (unsigned long)rl.rlim_cur;

    /* Block everything across fork so no relay handler runs in the child before it resets them. */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pid = fork();
    if (pid == 0)
        child_exec(slave, pipefd[1], o->cwd, path, (char *const *)argv, (char *const *)env, maxfd);
    r = -errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (pid < 0) {
        set_err(errstr, errlen, "fork", NULL, -r);
        goto fail;
    }
    close_if(&pipefd[1]);

    /* Blocks only until the child has exec'd (EOF: the pipe was close-on-exec) or reported. */
    do {
        n = read(pipefd[0], &rep, sizeof rep);
    } while (n < 0 && errno == EINTR);
    close_if(&pipefd[0]);
    if (n == 0) {
        p->pid = pid;
        p->master = master;
        p->slave = slave;
        return 0;
    }

    if (n == (ssize_t)sizeof rep) {
        r = rep.err > 0 ? -rep.err : -EIO;
        if (rep.stage == STAGE_CHDIR)
            set_err(errstr, errlen, "cwd", o->cwd, -r);
        else if (rep.stage == STAGE_EXEC)
            set_err(errstr, errlen, "cannot execute", path, -r);
        else
            set_err(errstr, errlen, "controlling terminal", NULL, -r);
    } else {
        /* We cannot tell whether it exec'd: make sure it is gone before waiting for it. */
        r = n < 0 ? -errno : -EIO;
        set_err(errstr, errlen, "spawn report", NULL, -r);
        kill(pid, SIGKILL);
    }
    /* The child has _exit'ed or is about to: reap it so nothing is left behind. */
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
fail:
    close_if(&pipefd[0]);
    close_if(&pipefd[1]);
    close_if(&master);
    close_if(&slave);
    return r;
}

/* Closes the parent's slave fd, letting the master drain and then read EIO. */
void pty_proc_release_slave(struct pty_proc *p)
{
    close_if(&p->slave);
}

/* Sets the window size; the kernel sends SIGWINCH to the foreground process group. */
int pty_resize(int master, uint16_t cols, uint16_t rows)
{
    struct winsize ws = {.ws_row = rows, .ws_col = cols};

    if (cols == 0 || rows == 0)
        return -EINVAL;
    if (ioctl(master, TIOCSWINSZ, &ws) < 0)
        return -errno;
    return 0;
}

/* Reads the window size of a PTY master or slave. */
int pty_get_size(int fd, uint16_t *cols, uint16_t *rows)
{
    struct winsize ws;

    if (ioctl(fd, TIOCGWINSZ, &ws) < 0)
        return -errno;
    *cols = ws.ws_col;
    *rows = ws.ws_row;
    return 0;
}

/* Signals the child's process group, or the child alone if the group is gone. */
int pty_signal(pid_t pid, int signo)
{
    /* kill(0) or kill(-1) would hit the relay's own group or every process we may signal. */
    if (pid <= 1)
        return -EINVAL;
    if (kill(-pid, signo) == 0)
        return 0;
    if (errno != ESRCH)
        return -errno;
    if (kill(pid, signo) < 0)
        return -errno;
    return 0;
}

/* Blocks SIGCHLD in this thread and returns a non-blocking signalfd for it. */
int pty_reaper_open(void)
{
    sigset_t set;
    int fd;

    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    /* A signalfd only sees signals that are blocked; otherwise the default action eats them. */
    if ((errno = pthread_sigmask(SIG_BLOCK, &set, NULL)) != 0)
        return -errno;
    fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (fd < 0)
        return -errno;
    return fd;
}

/* Empties the signalfd; SIGCHLDs coalesce, so the count says nothing and pty_reap does the work. */
void pty_reaper_drain(int sfd)
{
    struct signalfd_siginfo si[8];

    for (int i = 0; i < 64; i++) {
        ssize_t n = read(sfd, si, sizeof si);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < (ssize_t)sizeof si)
            break;
    }
}

/* Reaps one exited child or reports one stop/continue; 1, 0 when none is pending, or -errno. */
int pty_reap(pid_t *pid, int *status)
{
    pid_t r;

    do {
        r = waitpid(-1, status, WNOHANG | WUNTRACED | WCONTINUED);
    } while (r < 0 && errno == EINTR);
    if (r > 0) {
        *pid = r;
        return 1;
    }
    if (r == 0 || errno == ECHILD)
        return 0;
    return -errno;
}
