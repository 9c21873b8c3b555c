/*
 * guard: the relay's defences that are not about tokens themselves. Failed logins are counted
 * per peer address over the last minute; each refused hello is answered only after a delay that
 * grows with that count (from the relay tick, so the loop never sleeps), and past the limit the
 * answer is close 4429. WebSocket upgrades are checked for their Host (DNS rebinding) and Origin
 * (cross-site WebSocket hijacking from a browser tab) against the relay's own names and the
 * operator's --allow-host / --allow-origin lists. Every configured limit that is reached is
 * counted and logged here, and `open` asks here which environment variables are loader controls.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "relay.h"

/* ---- limits ---------------------------------------------------------------------------------- */

static const char *const limit_names[LIM__COUNT] = {
    [LIM_CONNS] = "connections",
    [LIM_CONNS_PEER] = "connections per peer",
    [LIM_SESSIONS] = "sessions",
    [LIM_ATTACH] = "attachments per connection",
    [LIM_FRAME] = "frame size",
    [LIM_INPUT_QUEUE] = "input queue",
    [LIM_OPEN_ARGS] = "request arguments",
    [LIM_LOGIN_FAILS] = "failed logins",
    [LIM_INFLATE] = "inflated message size",
};

/* Counts and logs (rate-limited per kind) one hit of a configured limit. */
void limit_hit(struct relay *r, int kind, const char *fmt, ...)
{
    if (kind < 0 || kind >= LIM__COUNT)
        return;
    uint64_t n = ++r->limit_hits[kind];
    uint64_t now = now_ms();
    if (n > 1 && now - r->limit_logged_ms[kind] < 1000)
        return;
    r->limit_logged_ms[kind] = now;
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    log_warn("limit: %s reached (%llu so far): %s", limit_names[kind], (unsigned long long)n, msg);
}

/* ---- failed logins ----------------------------------------------------------------------------- */

#define FAIL_WINDOW_MS 60000
#define FAIL_DELAY_BASE_MS 100
#define FAIL_DELAY_MAX_MS 2000
#define FAIL_PEERS_MAX 4096

/* One peer address and the times of its recent failures (a ring of limit + 1 entries). */
struct fail_peer {
    struct fail_peer *next;
    char peer[64];
    uint64_t *times;
    uint32_t cap, head, n;
    uint64_t last;
};

/* A refused hello whose answer waits for its delay. */
struct fail_pending {
    struct fail_pending *next;
    unsigned conn_id;
    uint64_t req_id;
    uint64_t due;
    bool too_many;
};

struct login_fails {
    struct fail_peer *peers;
    uint32_t npeers;
    struct fail_pending *pending;
};

static struct login_fails *fails_of(struct relay *r)
{
    if (!r->fails)
        r->fails = xcalloc(1, sizeof *r->fails);
    return r->fails;
}

static uint32_t recent_failures(const struct fail_peer *p, uint64_t now)
{
    uint32_t k = 0;
    for (uint32_t i = 0; i < p->n; i++)
        if (now - p->times[(p->head + p->cap - 1 - i) % p->cap] < FAIL_WINDOW_MS)
            k++;
    return k;
}

static struct fail_peer *peer_find(struct relay *r, const char *peer, bool create)
{
    struct login_fails *lf = fails_of(r);
    struct fail_peer **oldest = NULL;
    for (struct fail_peer **pp = &lf->peers; *pp; pp = &(*pp)->next) {
        if (!strcmp((*pp)->peer, peer))
            return *pp;
        if (!oldest || (*pp)->last < (*oldest)->last)
            oldest = pp;
    }
    if (!create)
        return NULL;
    if (lf->npeers >= FAIL_PEERS_MAX && oldest) {
        /* Bounded memory: forget the peer whose last failure is the oldest. */
        struct fail_peer *o = *oldest;
        *oldest = o->next;
        free(o->times);
        free(o);
        lf->npeers--;
    }
    struct fail_peer *p = xcalloc(1, sizeof *p);
    snprintf(p->peer, sizeof p->peer, "%s", peer);
    p->cap = r->cfg.login_fail_limit + 1;
    p->times = xcalloc(p->cap, sizeof *p->times);
    p->next = lf->peers;
    lf->peers = p;
    lf->npeers++;
    return p;
}

/* Whether the peer had more failures than the limit in the last minute. */
bool guard_peer_blocked(struct relay *r, const char *peer)
{
    struct fail_peer *p = peer_find(r, peer, false);
    return p && recent_failures(p, now_ms()) > r->cfg.login_fail_limit;
}

/* Records a refused hello and schedules its answer (see relay.h). */
void guard_login_failed(struct relay *r, struct conn *c, uint64_t id, const char *why, bool counted)
{
    uint64_t now = now_ms();
    struct fail_peer *p = peer_find(r, c->peer, true);
    if (counted) {
        p->times[p->head] = now;
        p->head = (p->head + 1) % p->cap;
        if (p->n < p->cap)
            p->n++;
        p->last = now;
    }
    uint32_t k = recent_failures(p, now);
    bool too_many = k > r->cfg.login_fail_limit;
    uint64_t delay = FAIL_DELAY_MAX_MS;
    if (k >= 1 && k <= 5)
        delay = (uint64_t)FAIL_DELAY_BASE_MS << (k - 1);
    if (delay > FAIL_DELAY_MAX_MS)
        delay = FAIL_DELAY_MAX_MS;
    c->login_failed = true;
    log_warn("conn=%u peer=%s hello refused: %s (%u failed in the last minute; answer in %llu ms)",
             c->id, c->peer, why, k, (unsigned long long)delay);
    if (too_many)
        limit_hit(r, LIM_LOGIN_FAILS, "peer=%s: %u failed logins in the last minute (limit %u): "
                  "closing 4429", c->peer, k, r->cfg.login_fail_limit);
    struct login_fails *lf = fails_of(r);
    struct fail_pending *w = xcalloc(1, sizeof *w);
    w->conn_id = c->id;
    w->req_id = id;
    w->due = now + delay;
    w->too_many = too_many;
    w->next = lf->pending;
    lf->pending = w;
}

static struct conn *conn_by_id(struct relay *r, unsigned id)
{
    for (struct conn *c = r->conns; c; c = c->next)
        if (c->id == id)
            return c;
    return NULL;
}

/* Answers the refused hellos whose delay is over. */
void guard_tick(struct relay *r, uint64_t now)
{
    if (!r->fails)
        return;
    for (struct fail_pending **pp = &r->fails->pending; *pp;) {
        struct fail_pending *w = *pp;
        if (now < w->due) {
            pp = &w->next;
            continue;
        }
        *pp = w->next;
        struct conn *c = conn_by_id(r, w->conn_id);
        if (c && !c->dead && !c->close_code) {
            if (w->too_many) {
                conn_reply_error(c, w->req_id, PTC_C_UNAUTHORIZED,
                                 "too many failed logins from this address; try again later");
                conn_close(c, PTC_CLOSE_TOO_MANY, "too many failed logins");
            } else {
                conn_reply_error(c, w->req_id, PTC_C_UNAUTHORIZED, "invalid or missing token");
                conn_close(c, PTC_CLOSE_UNAUTHORIZED, "unauthorized");
            }
        }
        free(w);
    }
}

/* Frees the failed-login table, the pending answers and the host names. */
void guard_free(struct relay *r)
{
    for (char **h = r->own_hosts; h && *h; h++)
        free(*h);
    free(r->own_hosts);
    r->own_hosts = NULL;
    if (!r->fails)
        return;
    while (r->fails->peers) {
        struct fail_peer *p = r->fails->peers;
        r->fails->peers = p->next;
        free(p->times);
        free(p);
    }
    while (r->fails->pending) {
        struct fail_pending *w = r->fails->pending;
        r->fails->pending = w->next;
        free(w);
    }
    free(r->fails);
    r->fails = NULL;
}

/* ---- Origin and Host --------------------------------------------------------------------------- */

static void lower(char *s)
{
    for (; *s; s++)
        if (*s >= 'A' && *s <= 'Z')
            *s = (char)(*s - 'A' + 'a');
}

/* Adds one of the relay's own "host:port" names. */
void guard_hosts_add(struct relay *r, const char *name)
{
    size_t n = 0;
    while (r->own_hosts && r->own_hosts[n]) {
        if (!strcasecmp(r->own_hosts[n], name))
            return;
        n++;
    }
    r->own_hosts = xrealloc(r->own_hosts, (n + 2) * sizeof *r->own_hosts);
    r->own_hosts[n] = xstrdup(name);
    lower(r->own_hosts[n]);
    r->own_hosts[n + 1] = NULL;
}

/* Records the relay's own names (see relay.h). */
void guard_hosts_init(struct relay *r, const char *listen_host, int port, bool loopback, bool wildcard)
{
    char buf[300];
    if (!wildcard) {
        bool v6 = strchr(listen_host, ':') != NULL;
        snprintf(buf, sizeof buf, "%s%s%s:%d", v6 ? "[" : "", listen_host, v6 ? "]" : "", port);
        guard_hosts_add(r, buf);
    }
    if (loopback || wildcard) {
        snprintf(buf, sizeof buf, "localhost:%d", port);
        guard_hosts_add(r, buf);
        snprintf(buf, sizeof buf, "127.0.0.1:%d", port);
        guard_hosts_add(r, buf);
        snprintf(buf, sizeof buf, "[::1]:%d", port);
        guard_hosts_add(r, buf);
    }
}

/* Splits "host[:port]" (host may be "[v6]") at its port; the port text or NULL. */
static const char *port_of(const char *hp, size_t *hostlen)
{
    const char *colon;
    if (hp[0] == '[') {
        const char *rb = strchr(hp, ']');
        colon = rb && rb[1] == ':' ? rb + 1 : NULL;
    } else {
        colon = strchr(hp, ':');
        if (colon && strchr(colon + 1, ':'))
            colon = NULL; /* a bare IPv6 address: no port */
    }
    *hostlen = colon ? (size_t)(colon - hp) : strlen(hp);
    return colon ? colon + 1 : NULL;
}

/*
 * Whether "host[:port]" matches an entry: an entry with a port must match exactly; one without
 * matches that host on any port.
 */
static bool host_matches(const char *entry, const char *hp)
{
    size_t el, hl;
    const char *ep = port_of(entry, &el);
    const char *hpp = port_of(hp, &hl);
    if (el != hl || strncasecmp(entry, hp, el))
        return false;
    if (!ep)
        return true;
    return hpp && !strcmp(ep, hpp);
}

static bool host_allowed(struct relay *r, const char *hp, bool *own)
{
    *own = false;
    for (char **h = r->own_hosts; h && *h; h++)
        if (host_matches(*h, hp)) {
            *own = true;
            return true;
        }
    for (char **h = r->cfg.allow_host; h && *h; h++)
        if (host_matches(*h, hp))
            return true;
    return false;
}

static bool sane_header(const char *v, size_t max)
{
    size_t n = strlen(v);
    if (!n || n > max)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)v[i] <= 0x20 || (unsigned char)v[i] >= 0x7f)
            return false;
    return true;
}

/* Checks the Host and Origin of an upgrade (see relay.h). */
bool guard_upgrade_allowed(struct relay *r, const char *host, const char *origin, char *why,
                          size_t whylen)
{
    bool own;
    if (!r->unix_listen) {
        if (!host || !sane_header(host, 255)) {
            snprintf(why, whylen, "no usable Host header");
            return false;
        }
        if (!host_allowed(r, host, &own)) {
            snprintf(why, whylen, "Host '%.80s' is not a name of this relay (see --allow-host)",
                     host);
            return false;
        }
    }
    if (!origin)
        return true;
    if (!sane_header(origin, 300)) {
        snprintf(why, whylen, "malformed Origin header");
        return false;
    }
    for (char **o = r->cfg.allow_origin; o && *o; o++)
        if (!strcasecmp(*o, origin))
            return true;
    /* scheme://host[:port], nothing after */
    const char *sep = strstr(origin, "://");
    bool https = sep && (size_t)(sep - origin) == 5 && !strncasecmp(origin, "https", 5);
    bool http = sep && (size_t)(sep - origin) == 4 && !strncasecmp(origin, "http", 4);
    if ((https || http) && !strchr(sep + 3, '/')) {
        char hp[320];
        size_t hl;
        const char *p = port_of(sep + 3, &hl);
        if (p)
            snprintf(hp, sizeof hp, "%s", sep + 3);
        else
            snprintf(hp, sizeof hp, "%s:%d", sep + 3, https ? 443 : 80);
        if (hl && host_allowed(r, hp, &own) && (!own || https == r->tls))
            return true;
    }
    snprintf(why, whylen, "Origin '%.80s' is not this relay's own nor listed in --allow-origin",
             origin);
    return false;
}

/* ---- environment of `open` --------------------------------------------------------------------- */

/* Variables that steer the dynamic loader or libc of the program started (glibc's unsecure list). */
static const char *const loader_vars[] = {
    "GCONV_PATH",   "GETCONF_DIR",      "GLIBC_TUNABLES", "HOSTALIASES", "LOCALDOMAIN",
    "LOCPATH",      "MALLOC_TRACE",     "NIS_PATH",       "NLSPATH",     "RESOLV_HOST_CONF",
    "RES_OPTIONS",  NULL,
};

/* Whether the name (n bytes) is a loader variable. */
bool guard_env_is_loader(const char *name, size_t n)
{
    if (n >= 3 && !memcmp(name, "LD_", 3))
        return true;
    for (const char *const *v = loader_vars; *v; v++)
        if (strlen(*v) == n && !memcmp(*v, name, n))
            return true;
    return false;
}

/* The own names, comma-separated. */
void guard_hosts_text(struct relay *r, char *buf, size_t cap)
{
    size_t o = 0;
    buf[0] = 0;
    for (char **h = r->own_hosts; h && *h && o < cap; h++) {
        int n = snprintf(buf + o, cap - o, "%s%s", o ? ", " : "", *h);
        if (n < 0)
            break;
        o += (size_t)n;
    }
    for (char **h = r->cfg.allow_host; h && *h && o < cap; h++) {
        int n = snprintf(buf + o, cap - o, "%s%s", o ? ", " : "", *h);
        if (n < 0)
            break;
        o += (size_t)n;
    }
}
