/*
 * term: the local terminal and the file status flags of fds 0-2. ptcat changes two things a
 * person would notice if they were left behind: the termios of the tty (raw mode while attached)
 * and O_NONBLOCK, which lws sets on adopted fds and which a tty shares between fds 0, 1 and 2.
 * Both are saved here first and restored on every way out: a normal return, exit(), and the
 * signals that end a process (TERM, HUP, INT, QUIT, PIPE), whose handlers restore and re-raise.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include "ptcat.h"

static int saved_flags[3] = {-1, -1, -1};
static struct termios saved_tio;
static volatile sig_atomic_t raw_on;

/* Restores termios (if raw) and the saved flags of fds 0-2. */
void term_restore(void)
{
    int e = errno;
    if (raw_on) {
        tcsetattr(0, TCSADRAIN, &saved_tio);
        raw_on = 0;
    }
    for (int i = 0; i < 3; i++)
        if (saved_flags[i] >= 0)
            fcntl(i, F_SETFL, saved_flags[i]);
    errno = e;
}

static void on_fatal_signal(int sig)
{
    term_restore();
    signal(sig, SIG_DFL);
    raise(sig);
}

static void at_exit(void) { term_restore(); }

/* Saves the flags of fds 0-2 and installs the restoring handlers. */
void term_init(void)
{
    for (int i = 0; i < 3; i++)
        saved_flags[i] = fcntl(i, F_GETFL);
    atexit(at_exit);
    static const int sigs[] = {SIGTERM, SIGHUP, SIGINT, SIGQUIT};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_fatal_signal;
        sigemptyset(&sa.sa_mask);
        sa.sa_flags = SA_RESETHAND;
        struct sigaction old;
        /* keep an inherited "ignore" (nohup) as it is */
        if (sigaction(sigs[i], NULL, &old) == 0 && old.sa_handler == SIG_IGN)
            continue;
        sigaction(sigs[i], &sa, NULL);
    }
}

/* Puts fd 0 in raw mode. */
int term_raw(void)
{
    if (raw_on)
        return 0;
    if (tcgetattr(0, &saved_tio) < 0)
        return -errno;
    struct termios t = saved_tio;
    cfmakeraw(&t);
    t.c_cc[VMIN] = 1;
    t.c_cc[VTIME] = 0;
    raw_on = 1; /* before the change: a signal in between restores */
    if (tcsetattr(0, TCSADRAIN, &t) < 0) {
        int e = errno;
        raw_on = 0;
        return -e;
    }
    return 0;
}

/* True while fd 0 is in raw mode. */
bool term_is_raw(void) { return raw_on != 0; }

/* The size of the terminal on fd. */
int term_size(int fd, uint16_t *cols, uint16_t *rows)
{
    struct winsize ws;
    if (ioctl(fd, TIOCGWINSZ, &ws) < 0 || !ws.ws_col || !ws.ws_row)
        return -1;
    *cols = ws.ws_col;
    *rows = ws.ws_row;
    return 0;
}
