/*
 * out: bytes to stdout and status lines to stderr. On a tty, lws' O_NONBLOCK on fd 0 also applies
 * to fds 1 and 2 (one open file description), so a write may stop short with EAGAIN: out_write
 * then waits in poll() for room. That makes a slow terminal slow ptcat's reading of the socket,
 * which is the backpressure we want; the relay keeps the output in its ring meanwhile. out_buf is
 * the growable buffer for bytes gathered before they go out.
 */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ptcat.h"

/* Writes all of p to fd. */
int out_write(int fd, const void *p, size_t n)
{
    const char *b = p;
    while (n) {
        ssize_t w = write(fd, b, n);
        if (w > 0) {
            b += w;
            n -= (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            struct pollfd pf = {.fd = fd, .events = POLLOUT};
            if (poll(&pf, 1, -1) < 0 && errno != EINTR)
                return -errno;
            continue;
        }
        return w < 0 ? -errno : -EIO;
    }
    return 0;
}

/* A status line on stderr. */
void out_status(const char *fmt, ...)
{
    char msg[1024], line[1100];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    int n;
    if (term_is_raw())
        n = snprintf(line, sizeof line, "\r\n[ptcat: %s]\r\n", msg);
    else
        n = snprintf(line, sizeof line, "ptcat: %s\n", msg);
    if (n > (int)sizeof line - 1)
        n = (int)sizeof line - 1;
    out_write(2, line, (size_t)n);
}

/* Appends d[0..n) to b, growing it. */
int out_buf_add(struct out_buf *b, const void *d, size_t n)
{
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->n + n)
            cap *= 2;
        uint8_t *np = realloc(b->p, cap);
        if (!np)
            return -1;
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
    return 0;
}
