/*
 * pty: spawning programs in pseudo-terminals, resizing, signalling and reaping them.
 *
 * The only code that calls openpty/login_tty/ioctl(TIOCSWINSZ)/fork/exec. The caller (the relay's
 * event loop) owns the master fd after pty_spawn and reads it itself; this module never blocks
 * except for the short wait in pty_spawn until the child has exec'd (or failed to).
 *
 * Why the parent keeps the slave open: when a child exits while the master's reader is paused, the
 * kernel reports only POLLHUP once the slave side has no opener, and an event loop that closes on
 * HUP loses the unread tail. Keeping a slave fd in the parent until the exit is known and the
 * output is drained means the master never HUPs early; pty_proc_release_slave() then lets it
 * drain and reach EOF/EIO. This interface is what a per-session holder process will later serve
 * over a unix socket (master fd via SCM_RIGHTS, exit status as a message).
 */
#ifndef PTY_H
#define PTY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct pty_spawn_opts {
    const char *const *argv; /* argv[0] is resolved against PATH of env; NULL: the login shell */
    const char *cwd;         /* NULL: inherit */
    const char *const *env;  /* complete environment, "K=V", NULL-terminated; NULL: inherit */
    uint16_t cols, rows;     /* initial size; 0 means 80x24 */
};

struct pty_proc {
    pid_t pid;  /* the child; a session and process-group leader with the PTY as ctty */
    int master; /* O_NONBLOCK|O_CLOEXEC; owned by the caller after spawn */
    int slave;  /* kept open by the parent until pty_proc_release_slave; -1 after */
};

/*
 * Starts argv in a new PTY: openpty, fork, setsid + controlling terminal (login_tty), chdir(cwd),
 * default signal dispositions and an empty signal mask, fds >= 3 closed, execve with an explicit
 * argv and env (never through a shell). Returns 0 and fills *p; or a negative errno when the PTY
 * could not be made, the program could not be found or executed (ENOENT, EACCES, ENOEXEC...), or
 * cwd is not usable (then errstr, if given, says which in words, e.g. "cwd /x: No such file or
 * directory"). On failure no child is left behind and no fd is leaked.
 */
int pty_spawn(const struct pty_spawn_opts *o, struct pty_proc *p, char *errstr, size_t errlen);

/* Closes the parent's slave fd (idempotent). Call once the exit is known and the master is read. */
void pty_proc_release_slave(struct pty_proc *p);

/* Sets the window size of the PTY (TIOCSWINSZ on the master); the kernel sends SIGWINCH. 0 or -errno. */
int pty_resize(int master, uint16_t cols, uint16_t rows);
/* Reads the window size. 0 or -errno. */
int pty_get_size(int fd, uint16_t *cols, uint16_t *rows);

/* Sends signo to the child's process group (the foreground job and the program). 0 or -errno. */
int pty_signal(pid_t pid, int signo);

/*
 * Child reaping without threads: pty_reaper_open blocks SIGCHLD in the calling thread and returns
 * a non-blocking signalfd that becomes readable when a child changed state (or -errno). Call
 * pty_reaper_drain on readability, then pty_reap until it returns 0.
 */
int pty_reaper_open(void);
void pty_reaper_drain(int sfd);
/*
 * Reaps one child that exited or was killed, or reports a stop/continue: returns 1 and fills *pid
 * and *status (a waitpid status: use WIFEXITED etc.), 0 when nothing is pending, -errno on error
 * (-ECHILD when there are no children is returned as 0).
 */
int pty_reap(pid_t *pid, int *status);

/* The user's login shell from $SHELL or the passwd entry, else /bin/sh. Static storage. */
const char *pty_default_shell(void);

/*
 * Resolves a program name against PATH (as execvp would, but without executing): a name with a
 * slash is checked as is. Writes the path into out. 0 or -errno (ENOENT, EACCES, ENAMETOOLONG).
 */
int pty_resolve(const char *name, const char *path_env, char *out, size_t outlen);

#endif
