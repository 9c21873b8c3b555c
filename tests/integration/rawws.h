/*
 * rawws.h: a byte-level WebSocket client for the attack tests, over a plain blocking-with-poll
 * TCP socket to 127.0.0.1. It exists because ptclient (rightly) cannot send what an attacker
 * sends: half an upgrade, frames with RSV1 set, a compressed bomb, bytes after a refused upgrade.
 * Every read waits with poll and a deadline. Static functions only: include it in one test file.
 */
#ifndef RAWWS_H
#define RAWWS_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static inline uint64_t raw_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* A connected TCP socket to 127.0.0.1:port, or -errno. */
static inline int raw_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        int e = -errno;
        close(fd);
        return e;
    }
    return fd;
}

/* Sends all n bytes (bounded by timeout_ms). 0 or -errno. */
static inline int raw_send(int fd, const void *p, size_t n, int timeout_ms)
{
    uint64_t end = raw_now_ms() + (uint64_t)timeout_ms;
    const uint8_t *b = p;
    while (n) {
        ssize_t w = send(fd, b, n, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w > 0) {
            b += w;
            n -= (size_t)w;
            continue;
        }
        if (w < 0 && errno != EAGAIN && errno != EINTR)
            return -errno;
        uint64_t now = raw_now_ms();
        if (now >= end)
            return -ETIMEDOUT;
        struct pollfd pf = {.fd = fd, .events = POLLOUT};
        poll(&pf, 1, (int)(end - now));
    }
    return 0;
}

/* Reads up to n bytes, waiting at most until the deadline. Bytes read, 0 at EOF, -errno. */
static inline ssize_t raw_recv(int fd, void *p, size_t n, uint64_t deadline)
{
    for (;;) {
        uint64_t now = raw_now_ms();
        if (now >= deadline)
            return -ETIMEDOUT;
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        int r = poll(&pf, 1, (int)(deadline - now));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -ETIMEDOUT;
        ssize_t got = recv(fd, p, n, MSG_DONTWAIT);
        if (got >= 0)
            return got;
        if (errno != EAGAIN && errno != EINTR)
            return -errno;
    }
}

/* Reads an HTTP response header into resp (NUL-terminated); its status, or -errno / -EPROTO. */
static inline int raw_read_status(int fd, char *resp, size_t cap, int timeout_ms)
{
    uint64_t end = raw_now_ms() + (uint64_t)timeout_ms;
    size_t len = 0;
    resp[0] = 0;
    while (len < cap - 1 && !strstr(resp, "\r\n\r\n")) {
        /* one byte at a time: what follows the header belongs to the WebSocket */
        ssize_t got = raw_recv(fd, resp + len, 1, end);
        if (got <= 0)
            return got == 0 ? -EPIPE : (int)got;
        len++;
        resp[len] = 0;
    }
    int maj, min, st;
    if (sscanf(resp, "HTTP/%d.%d %d", &maj, &min, &st) != 3)
        return -EPROTO;
    return st;
}

/* Sends a WebSocket upgrade for /ptc1 (Host: 127.0.0.1:port, plus extra header lines). */
static inline int raw_upgrade(int fd, int port, const char *extra)
{
    char req[2048];
    int n = snprintf(req, sizeof req,
                     "GET /ptc1 HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: YXR0YWNrLXRlc3Qta2V5IQ==\r\n"
                     "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: ptc1\r\n%s\r\n",
                     port, extra ? extra : "");
    return raw_send(fd, req, (size_t)n, 5000);
}

/*
 * Appends one masked client frame (FIN set) to out (cap bytes) and returns its length, or 0 if it
 * does not fit. opcode 2 = binary, 8 = close; rsv1 marks a compressed message.
 */
static inline size_t ws_frame(uint8_t *out, size_t cap, int opcode, bool rsv1, const void *payload,
                              size_t n)
{
    static const uint8_t mask[4] = {0x37, 0xfa, 0x21, 0x3d};
    size_t h = 2;
    if (cap < 14 + n)
        return 0;
    out[0] = (uint8_t)(0x80 | (rsv1 ? 0x40 : 0) | (opcode & 0x0f));
    if (n < 126) {
        out[1] = (uint8_t)(0x80 | n);
    } else if (n < 65536) {
        out[1] = 0x80 | 126;
        out[2] = (uint8_t)(n >> 8);
        out[3] = (uint8_t)n;
        h = 4;
    } else {
        out[1] = 0x80 | 127;
        for (int i = 0; i < 8; i++)
            out[2 + i] = (uint8_t)((uint64_t)n >> (56 - 8 * i));
        h = 10;
    }
    memcpy(out + h, mask, 4);
    h += 4;
    const uint8_t *p = payload;
    for (size_t i = 0; i < n; i++)
        out[h + i] = p[i] ^ mask[i & 3];
    return h + n;
}

/*
 * Reads server frames until a close frame (its code, 1005 when it has none) or EOF (1006);
 * -1 on timeout. Data frames before it are skipped.
 */
static inline int ws_read_close(int fd, int timeout_ms)
{
    uint64_t end = raw_now_ms() + (uint64_t)timeout_ms;
    uint8_t buf[65536];
    size_t len = 0;
    for (;;) {
        /* parse what is buffered */
        while (len >= 2) {
            size_t h = 2;
            uint64_t pl = buf[1] & 0x7f;
            if (pl == 126) {
                if (len < 4)
                    break;
                pl = (uint64_t)buf[2] << 8 | buf[3];
                h = 4;
            } else if (pl == 127) {
                if (len < 10)
                    break;
                pl = 0;
                for (int i = 0; i < 8; i++)
                    pl = pl << 8 | buf[2 + i];
                h = 10;
            }
            if ((buf[0] & 0x0f) == 8) {
                if (len < h + pl && h + pl <= sizeof buf)
                    break;
                return pl >= 2 ? (int)(buf[h] << 8 | buf[h + 1]) : 1005;
            }
            if (len < h + pl) {
                if (h + pl > sizeof buf) {
                    /* a big data frame: drop what we have and keep skipping */
                    uint64_t skip = h + pl - len;
                    len = 0;
                    while (skip) {
                        ssize_t got = raw_recv(fd, buf, skip < sizeof buf ? skip : sizeof buf, end);
                        if (got <= 0)
                            return got == 0 ? 1006 : -1;
                        skip -= (uint64_t)got;
                    }
                    continue;
                }
                break;
            }
            memmove(buf, buf + h + pl, len - (h + pl));
            len -= h + pl;
        }
        ssize_t got = raw_recv(fd, buf + len, sizeof buf - len, end);
        if (got == 0 || got == -ECONNRESET)
            return 1006;
        if (got < 0)
            return -1;
        len += (size_t)got;
    }
}

#endif
