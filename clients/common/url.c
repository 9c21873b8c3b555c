/*
 * url.c: relay addresses. It owns ptc_client_url_parse, which turns a ws://, wss:// or unix: URL
 * into the parts lws' connect call wants (address, port, Host header, path). A pure function over a
 * string: no I/O, no allocation, no libwebsockets (ptclient.c is the only client file that includes
 * it).
 */
#include "ptclient.h"

#include <stdio.h>
#include <string.h>

static int copy_part(char *dst, size_t cap, const char *s, size_t n)
{
    if (n >= cap)
        return PTC_CLIENT_EURL;
    memcpy(dst, s, n);
    dst[n] = '\0';
    return 0;
}

/* Parses ws://, wss:// and unix: URLs into *u. */
int ptc_client_url_parse(const char *url, struct ptc_client_url *u)
{
    memset(u, 0, sizeof(*u));
    if (!url)
        return PTC_CLIENT_EURL;
    if (!strncmp(url, "unix:", 5)) {
        const char *p = url + 5;
        if (!strncmp(p, "//", 2)) /* unix://PATH is accepted too */
            p += 2;
        if (!*p)
            return PTC_CLIENT_EURL;
        u->unix_sock = true;
        if (snprintf(u->address, sizeof(u->address), "+%s", p) >= (int)sizeof(u->address))
            return PTC_CLIENT_EURL;
        strcpy(u->host, "localhost");
        strcpy(u->path, "/ptc1");
        return 0;
    }
    const char *p;
    if (!strncmp(url, "ws://", 5)) {
        p = url + 5;
        u->port = 80;
    } else if (!strncmp(url, "wss://", 6)) {
        p = url + 6;
        u->tls = true;
        u->port = 443;
    } else {
        return PTC_CLIENT_EURL;
    }
    size_t auth_len = strcspn(p, "/?#");
    const char *rest = p + auth_len;
    if (auth_len == 0 || memchr(p, '@', auth_len))
        return PTC_CLIENT_EURL; /* empty host, or userinfo (not supported) */
    const char *host = p, *port = NULL;
    size_t host_len;
    if (*p == '[') {
        const char *close = memchr(p, ']', auth_len);
        if (!close || close == p + 1)
            return PTC_CLIENT_EURL;
        host = p + 1;
        host_len = (size_t)(close - host);
        const char *after = close + 1;
        if (after < rest) {
            if (*after != ':')
                return PTC_CLIENT_EURL;
            port = after + 1;
        }
    } else {
        const char *colon = memchr(p, ':', auth_len);
        host_len = colon ? (size_t)(colon - p) : auth_len;
        if (colon)
            port = colon + 1;
        if (host_len == 0)
            return PTC_CLIENT_EURL;
    }
    if (port) {
        size_t port_len = (size_t)(rest - port);
        if (port_len == 0 || port_len > 5)
            return PTC_CLIENT_EURL;
        long v = 0;
        for (size_t i = 0; i < port_len; i++) {
            if (port[i] < '0' || port[i] > '9')
                return PTC_CLIENT_EURL;
            v = v * 10 + (port[i] - '0');
        }
        if (v < 1 || v > 65535)
            return PTC_CLIENT_EURL;
        u->port = (int)v;
    }
    if (copy_part(u->address, sizeof(u->address), host, host_len))
        return PTC_CLIENT_EURL;
    bool v6 = *p == '[';
    if (snprintf(u->host, sizeof(u->host), "%s%s%s:%d", v6 ? "[" : "", u->address, v6 ? "]" : "",
                 u->port) >= (int)sizeof(u->host))
        return PTC_CLIENT_EURL;
    if (*rest == '#' || *rest == '\0') {
        strcpy(u->path, "/ptc1");
    } else {
        size_t path_len = strcspn(rest, "#");
        if (*rest == '?') { /* query without a path: keep the query on the default path */
            if (snprintf(u->path, sizeof(u->path), "/ptc1%.*s", (int)path_len, rest) >=
                (int)sizeof(u->path))
                return PTC_CLIENT_EURL;
        } else if (copy_part(u->path, sizeof(u->path), rest, path_len)) {
            return PTC_CLIENT_EURL;
        }
    }
    return 0;
}
