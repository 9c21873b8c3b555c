/*
 * server: the only file that includes libwebsockets on the server side. It owns the context, the
 * listener, the loop, the 100 ms tick, and the adoption of PTY masters and signalfds into the loop,
 * and translates lws callbacks into conn_* and session_* calls.
 *
 * Binding: Debian's lws is built with IPv6, and then silently ignores an IPv4 `iface` and listens on
 * every address (LIBRARIES.md §1.7). An IPv4 listen address is therefore bound with IPv6 disabled,
 * which makes lws honour it; an IPv6 one is bound as given. The listener is checked after start.
 * The WebSocket protocol is protocols[0], so an upgrade without a subprotocol header still goes
 * through our filter and can never reach a default handler unauthenticated.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ev.h>
#include <libwebsockets.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "relay.h"

#define TICK_US (100 * LWS_US_PER_MS)

struct server {
    struct lws_context *ctx;
    struct lws_vhost *vh;
    lws_sorted_usec_list_t tick;
    struct ptc_buf out; /* the outgoing message being built, with LWS_PRE headroom */
    struct lws *child_wsi, *term_wsi;
    int child_fd, term_fd;
    bool done;
    struct ev_loop *ev; /* the loop lws runs on (NULL with PTYRELAY_POLL_LOOP set: lws' poll()) */
    char iface[256];
    char host[128];     /* the listen host as given (no brackets) */
    bool loopback;      /* the listen address is loopback (or a unix socket) */
    bool wildcard;      /* 0.0.0.0 or :: */
};

struct pss {
    struct conn *c;
    bool has_bearer;
    uint8_t bearer[32];
    bool deflate;    /* permessage-deflate was negotiated */
    bool inflate_over; /* a message inflated past the limit: closing */
    uint64_t msg_in; /* bytes of the current message so far (after inflation) */
};

/* permessage-deflate, offered only with --compress (LIBRARIES.md §1.7). */
static const struct lws_extension deflate_exts[] = {
    {"permessage-deflate", lws_extension_callback_pm_deflate,
     "permessage-deflate; client_no_context_takeover; client_max_window_bits"},
    {NULL, NULL, NULL},
};

static struct relay *relay_of(struct lws *wsi) { return lws_context_user(lws_get_context(wsi)); }
static struct server *srv_of(struct relay *r) { return r->srv; }

static int http_reply(struct lws *wsi, unsigned status, const char *body)
{
    uint8_t buf[LWS_PRE + 512], *start = buf + LWS_PRE, *p = start, *end = buf + sizeof buf - 1;
    size_t n = strlen(body);
    if (lws_add_http_common_headers(wsi, status, "text/plain", n, &p, end) ||
        lws_finalize_write_http_header(wsi, start, &p, end))
        return -1;
    memcpy(buf + LWS_PRE, body, n);
    if (lws_write(wsi, buf + LWS_PRE, n, LWS_WRITE_HTTP_FINAL) != (int)n)
        return -1;
    return lws_http_transaction_completed(wsi) ? -1 : 0;
}

static int close_with(struct lws *wsi, struct conn *c)
{
    int code = c && c->close_code ? c->close_code : PTC_CLOSE_PROTOCOL;
    const char *why = c ? c->close_reason : "";
    lws_close_reason(wsi, (enum lws_close_status)code, (unsigned char *)why, strlen(why));
    return -1;
}

/*
 * The upgrade gate (before the 101): a Host that is not one of the relay's names (DNS rebinding)
 * or an Origin that is not the relay's own nor allowed (a web page in some browser tab) gets a
 * real HTTP 403, and no WebSocket frame is ever read from it. Clients without Origin pass.
 */
static int check_upgrade(struct lws *wsi, const char *proto)
{
    struct relay *r = relay_of(wsi);
    char host[300], origin[400], why[200], peer[64] = "";
    if (!proto || strcasecmp(proto, "websocket")) {
        /* h2c or anything else: this relay only upgrades to WebSocket. */
        snprintf(why, sizeof why, "only WebSocket upgrades are served");
        goto refuse;
    }
    bool has_host = lws_hdr_total_length(wsi, WSI_TOKEN_HOST) > 0;
    bool has_origin = lws_hdr_total_length(wsi, WSI_TOKEN_ORIGIN) > 0;
    if ((has_host && lws_hdr_copy(wsi, host, sizeof host, WSI_TOKEN_HOST) < 0) ||
        (has_origin && lws_hdr_copy(wsi, origin, sizeof origin, WSI_TOKEN_ORIGIN) < 0)) {
        snprintf(why, sizeof why, "Host or Origin header too long");
    } else if (guard_upgrade_allowed(r, has_host ? host : NULL, has_origin ? origin : NULL, why,
                                     sizeof why)) {
        return 0;
    }
refuse:
    lws_get_peer_simple(wsi, peer, sizeof peer);
    log_warn("upgrade refused (403): peer=%s: %s", peer[0] ? peer : "local", why);
    /*
     * The status line is written by hand: on this path lws has not recorded the request's HTTP
     * version and its helpers would answer "HTTP/1.0".
     */
    char body[300];
    uint8_t buf[LWS_PRE + 1024];
    char *head = (char *)buf + LWS_PRE;
    int n = snprintf(body, sizeof body, "forbidden: %s\n", why);
    if (n < 0 || (size_t)n >= sizeof body)
        n = (int)strlen(body);
    int hn = snprintf(head, sizeof buf - LWS_PRE,
                      "HTTP/1.1 403 Forbidden\r\ncontent-type: text/plain\r\ncontent-length: %d\r\n"
                      "connection: close\r\n\r\n%s",
                      n, body);
    if (hn < 0 || (size_t)hn >= sizeof buf - LWS_PRE)
        return -1;
    if (lws_write(wsi, (unsigned char *)head, (size_t)hn, LWS_WRITE_HTTP_FINAL) != hn)
        return -1;
    return 1;
}

/* Total and per-peer connection limits: the connection just established is closed 4429 if over. */
static void check_conn_limits(struct relay *r, struct conn *c)
{
    if (r->nconns > r->cfg.max_connections) {
        limit_hit(r, LIM_CONNS, "%u connections open; refusing peer=%s", r->nconns - 1, c->peer);
        conn_close(c, PTC_CLOSE_TOO_MANY, "too many connections");
        return;
    }
    uint32_t same = 0;
    for (struct conn *o = r->conns; o; o = o->next)
        same += !o->dead && !strcmp(o->peer, c->peer);
    if (same > r->cfg.max_conns_per_peer) {
        limit_hit(r, LIM_CONNS_PEER, "peer=%s has %u connections open (limit %u)", c->peer,
                  same - 1, r->cfg.max_conns_per_peer);
        conn_close(c, PTC_CLOSE_TOO_MANY, "too many connections from this address");
    }
}

/*
 * With permessage-deflate, lws hands over each message in inflated chunks as it inflates it. A
 * message may carry one whole frame of max_frame plus its header; once its inflated bytes pass
 * that, the connection is closed 1009, and nothing more of it reaches the connection.
 */
static bool inflate_over_limit(struct lws *wsi, struct pss *pss, size_t len, bool final)
{
    struct relay *r = relay_of(wsi);
    pss->msg_in += len;
    if (pss->msg_in > (uint64_t)r->cfg.max_frame + PTC_HDR_LEN) {
        limit_hit(r, LIM_INFLATE, "conn=%u peer=%s: a compressed message inflates past %u bytes: "
                  "closing 1009", pss->c->id, pss->c->peer, r->cfg.max_frame + PTC_HDR_LEN);
        /*
         * Returning -1 from RECEIVE inside lws' inflate loop does not close the connection
         * (lws 4.1.6 goes on inflating): what is still inflated is dropped, and the WRITEABLE
         * that conn_close asks for closes it with 1009.
         */
        pss->inflate_over = true;
        conn_close(pss->c, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, "message inflates past max_frame");
        return true;
    }
    if (final)
        pss->msg_in = 0;
    return false;
}

/*
 * Keeps little unsent data in the kernel for a client socket. The send buffer autotunes to
 * megabytes, and whatever sits there goes out before anything the relay writes later: one
 * flooding session would put a keystroke echo of another session behind all of it. With a low
 * unsent mark the socket reports writable only when its queue is short, so the backlog stays in
 * the session's ring, where each message is shared fairly between sessions. Not TCP (a unix
 * socket): the call fails and changes nothing.
 */
static void limit_unsent(int fd)
{
    /* PTYRELAY_UNSENT_LOWAT=bytes tunes it; 0 leaves the kernel's default (no limit). */
    const char *e = getenv("PTYRELAY_UNSENT_LOWAT");
    int lowat = e ? atoi(e) : 32 * 1024;
    if (fd >= 0 && lowat > 0)
        setsockopt(fd, IPPROTO_TCP, TCP_NOTSENT_LOWAT, &lowat, sizeof lowat);
}

static int cb_ws(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
    struct pss *pss = user;
    struct relay *r;
    char buf[1024];

    switch (reason) {
    case LWS_CALLBACK_HTTP:
        if (in && !strcmp(in, "/healthz"))
            return http_reply(wsi, HTTP_STATUS_OK, "ok\n");
        return http_reply(wsi, HTTP_STATUS_NOT_FOUND, "not found: the WebSocket is at /ptc1\n");

    case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
        return check_upgrade(wsi, in);

    case LWS_CALLBACK_CONFIRM_EXTENSION_OKAY:
        if (pss)
            pss->deflate = true;
        return 0;

    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
        if (lws_hdr_copy(wsi, buf, sizeof buf, WSI_TOKEN_GET_URI) < 0 || strcmp(buf, "/ptc1"))
            return 1;
        if (lws_hdr_copy(wsi, buf, sizeof buf, WSI_TOKEN_HTTP_AUTHORIZATION) > 7 &&
            !strncasecmp(buf, "Bearer ", 7)) {
            auth_hash(buf + 7, strlen(buf + 7), pss->bearer);
            pss->has_bearer = true;
        }
        memset(buf, 0, sizeof buf);
        return 0;

    case LWS_CALLBACK_ESTABLISHED: {
        r = relay_of(wsi);
        limit_unsent(lws_get_socket_fd(wsi));
        char peer[64] = "";
        lws_get_peer_simple(wsi, peer, sizeof peer);
        pss->c = conn_new(r, wsi, peer);
        pss->c->has_bearer = pss->has_bearer;
        memcpy(pss->c->bearer, pss->bearer, 32);
        if (r->shutting_down)
            conn_close(pss->c, PTC_CLOSE_GOING_AWAY, "relay shutting down");
        else
            check_conn_limits(r, pss->c);
        return 0;
    }

    case LWS_CALLBACK_RECEIVE: {
        if (!pss->c)
            return -1;
        bool final = lws_is_final_fragment(wsi) && !lws_remaining_packet_payload(wsi);
        if (pss->deflate && (pss->inflate_over || inflate_over_limit(wsi, pss, len, final)))
            return -1;
        if (conn_on_receive(pss->c, in, len, lws_frame_is_binary(wsi), final) < 0) {
            /* inside lws' inflate loop -1 is ignored: the WRITEABLE that conn_close asked for
             * closes it then, with the code */
            if (pss->deflate)
                pss->inflate_over = true;
            return close_with(wsi, pss->c);
        }
        return 0;
    }

    case LWS_CALLBACK_SERVER_WRITEABLE: {
        if (!pss->c)
            return 0;
        r = relay_of(wsi);
        struct server *srv = srv_of(r);
        long n = conn_on_writable(pss->c, &srv->out);
        if (n < 0)
            return close_with(wsi, pss->c);
        if (n > 0 && lws_write(wsi, srv->out.data, (size_t)n, LWS_WRITE_BINARY) < n)
            return -1;
        return 0;
    }

    case LWS_CALLBACK_CLOSED:
        if (pss && pss->c) {
            conn_on_closed(pss->c);
            pss->c = NULL;
        }
        return 0;

    default:
        break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}

static int cb_pty(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
    struct session *s = lws_get_opaque_user_data(wsi);
    switch (reason) {
    case LWS_CALLBACK_RAW_RX_FILE:
        if (!s)
            return -1;
        return session_on_readable(s) < 0 ? -1 : 0;
    case LWS_CALLBACK_RAW_WRITEABLE_FILE:
        if (s)
            session_on_writable(s);
        return 0;
    case LWS_CALLBACK_RAW_CLOSE_FILE:
        if (s) {
            lws_set_opaque_user_data(wsi, NULL);
            session_on_pty_closed(s);
        }
        return 0;
    default:
        return 0;
    }
}

static struct session *session_by_pid(struct relay *r, pid_t pid)
{
    for (struct session *s = r->sessions; s; s = s->next)
        if (s->pid == pid && !s->reaped)
            return s;
    return NULL;
}

static int cb_sig(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
    if (reason != LWS_CALLBACK_RAW_RX_FILE)
        return 0;
    struct relay *r = relay_of(wsi);
    struct server *srv = srv_of(r);
    if (wsi == srv->child_wsi) {
        pty_reaper_drain(srv->child_fd);
        pid_t pid;
        int status;
        while (pty_reap(&pid, &status) > 0) {
            struct session *s = session_by_pid(r, pid);
            if (s)
                session_on_child(s, status);
        }
    } else if (wsi == srv->term_wsi) {
        struct signalfd_siginfo si;
        while (read(srv->term_fd, &si, sizeof si) == (ssize_t)sizeof si)
            log_info("received SIG%s", si.ssi_signo == SIGTERM ? "TERM" : "INT");
        relay_shutdown(r);
    }
    return 0;
}

static const struct lws_protocols protocols[] = {
    {"ptc1", cb_ws, sizeof(struct pss), 64 * 1024, 0, NULL, 512 * 1024},
    {"ptyrelay-pty", cb_pty, 0, 0, 0, NULL, 0},
    {"ptyrelay-sig", cb_sig, 0, 0, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

static void tick_cb(lws_sorted_usec_list_t *sul)
{
    struct server *srv = lws_container_of(sul, struct server, tick);
    struct relay *r = lws_context_user(srv->ctx);
    relay_tick(r);
    guard_tick(r, now_ms());
    if (r->shutting_down && relay_shutdown_done(r)) {
        srv->done = true;
        if (srv->ev)
            ev_break(srv->ev, EVBREAK_ALL);
        else
            lws_cancel_service(srv->ctx);
        return;
    }
    lws_sul_schedule(srv->ctx, 0, &srv->tick, tick_cb, TICK_US);
}

static void lws_log_emit(int level, const char *line)
{
    char buf[512];
    snprintf(buf, sizeof buf, "%s", line);
    buf[strcspn(buf, "\r\n")] = 0;
    log_msg(level == LLL_ERR ? LOG_WARN : LOG_DEBUG, "lws: %s", buf);
}

static struct lws *adopt_fd(struct server *srv, int fd, const char *proto, void *opaque)
{
    lws_adopt_desc_t info;
    memset(&info, 0, sizeof info);
    info.vh = srv->vh;
    info.type = LWS_ADOPT_RAW_FILE_DESC;
    info.fd.filefd = fd;
    info.vh_prot_name = proto;
    info.opaque = opaque;
    return lws_adopt_descriptor_vhost_via_info(&info);
}

/* Parses the listen address into lws settings. 0 or -1 with a message in err. */
static int parse_listen(const char *spec, struct lws_context_creation_info *info, struct server *srv,
                        char *err, size_t errlen)
{
    if (!strncmp(spec, "unix:", 5)) {
        if (!spec[5]) {
            snprintf(err, errlen, "--listen unix: needs a path");
            return -1;
        }
        snprintf(srv->iface, sizeof srv->iface, "%s", spec + 5);
        info->options |= LWS_SERVER_OPTION_UNIX_SOCK;
        srv->loopback = true;
        info->iface = srv->iface;
        info->port = 0;
        return 0;
    }
    const char *colon = strrchr(spec, ':');
    if (!colon || !colon[1]) {
        snprintf(err, errlen, "--listen '%s': expected HOST:PORT or unix:PATH", spec);
        return -1;
    }
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end || port < 0 || port > 65535) {
        snprintf(err, errlen, "--listen '%s': bad port", spec);
        return -1;
    }
    size_t hl = (size_t)(colon - spec);
    char host[128];
    if (hl >= sizeof host) {
        snprintf(err, errlen, "--listen: host too long");
        return -1;
    }
    memcpy(host, spec, hl);
    host[hl] = 0;
    if (host[0] == '[' && hl > 2 && host[hl - 1] == ']') {
        host[hl - 1] = 0;
        memmove(host, host + 1, hl - 1);
    }
    if (!strcmp(host, "localhost"))
        snprintf(host, sizeof host, "127.0.0.1");
    snprintf(srv->host, sizeof srv->host, "%s", host);
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, host, &a4) == 1) {
        info->options |= LWS_SERVER_OPTION_DISABLE_IPV6;
        srv->loopback = (ntohl(a4.s_addr) >> 24) == 127;
        srv->wildcard = a4.s_addr == htonl(INADDR_ANY);
        if (a4.s_addr != htonl(INADDR_ANY))
            snprintf(srv->iface, sizeof srv->iface, "%s", host);
    } else if (inet_pton(AF_INET6, host, &a6) == 1) {
        srv->loopback = IN6_IS_ADDR_LOOPBACK(&a6);
        srv->wildcard = IN6_IS_ADDR_UNSPECIFIED(&a6);
        if (!IN6_IS_ADDR_UNSPECIFIED(&a6))
            snprintf(srv->iface, sizeof srv->iface, "%s", host);
    } else {
        snprintf(err, errlen, "--listen '%s': the host must be a numeric address (or localhost)",
                 spec);
        return -1;
    }
    info->iface = srv->iface[0] ? srv->iface : NULL;
    info->port = (int)port;
    return 0;
}

/*
 * The listen policy and TLS. A listener that other machines can reach is refused without TLS
 * unless --insecure-no-tls says the network is trusted. TLS: the cert and key through lws and
 * OpenSSL (global init in the vhost options too, or lws silently serves plain HTTP), TLS 1.2 or
 * newer, ALPN http/1.1 only (one TCP connection per WebSocket). Compression only with --compress.
 */
static int setup_security(struct relay *r, struct server *srv, struct lws_context_creation_info *info)
{
    struct config *cfg = &r->cfg;
    r->unix_listen = !strncmp(cfg->listen, "unix:", 5);
    if (!cfg->tls_cert && !srv->loopback) {
        if (!cfg->insecure_no_tls) {
            log_error("refusing to listen on %s without TLS: tokens and every keystroke would "
                      "cross the network in clear. Give --tls-cert and --tls-key, or listen on "
                      "127.0.0.1 behind a TLS reverse proxy or a tunnel, or pass --insecure-no-tls "
                      "if this network is trusted (see docs/security.md)",
                      cfg->listen);
            return -1;
        }
        log_warn("listening on %s WITHOUT TLS (--insecure-no-tls): tokens and terminal traffic "
                 "cross the network in clear",
                 cfg->listen);
    }
    if (cfg->tls_cert) {
        if (access(cfg->tls_cert, R_OK) || access(cfg->tls_key, R_OK)) {
            log_error("TLS: cannot read %s: %s", access(cfg->tls_cert, R_OK) ? cfg->tls_cert
                                                                              : cfg->tls_key,
                      strerror(errno));
            return -1;
        }
        struct stat st;
        if (!stat(cfg->tls_key, &st) && (st.st_mode & 0077))
            log_warn("TLS: the key %s can be read by other users (mode %03o); chmod 600 it",
                     cfg->tls_key, (unsigned)(st.st_mode & 0777));
        info->options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
        info->ssl_cert_filepath = cfg->tls_cert;
        info->ssl_private_key_filepath = cfg->tls_key;
        info->ssl_options_set = SSL_OP_NO_SSLv3 | SSL_OP_NO_TLSv1 | SSL_OP_NO_TLSv1_1;
        info->alpn = "http/1.1";
        r->tls = true;
    }
    if (cfg->compress)
        info->extensions = deflate_exts;
    log_info("security: TLS %s, permessage-deflate %s, max %u connections (%u per peer), "
             "login failures %u/min per peer",
             r->tls ? "on (1.2+)" : "off", cfg->compress ? "on" : "off", cfg->max_connections,
             cfg->max_conns_per_peer, cfg->login_fail_limit);
    return 0;
}

/* Adds the certificate's DNS and IP names (subjectAltName) as own names on the listen port. */
static void cert_names(struct relay *r, int port)
{
    FILE *f = fopen(r->cfg.tls_cert, "r");
    if (!f)
        return;
    X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    if (!x)
        return;
    GENERAL_NAMES *names = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    for (int i = 0; names && i < sk_GENERAL_NAME_num(names); i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(names, i);
        char name[300] = "";
        if (g->type == GEN_DNS) {
            const unsigned char *d = ASN1_STRING_get0_data(g->d.dNSName);
            int n = ASN1_STRING_length(g->d.dNSName);
            if (n > 0 && n < 256 && !memchr(d, 0, (size_t)n) && !memchr(d, '*', (size_t)n))
                snprintf(name, sizeof name, "%.*s:%d", n, (const char *)d, port);
        } else if (g->type == GEN_IPADD) {
            int n = ASN1_STRING_length(g->d.iPAddress);
            const unsigned char *d = ASN1_STRING_get0_data(g->d.iPAddress);
            char ip[INET6_ADDRSTRLEN];
            if (n == 4 && inet_ntop(AF_INET, d, ip, sizeof ip))
                snprintf(name, sizeof name, "%s:%d", ip, port);
            else if (n == 16 && inet_ntop(AF_INET6, d, ip, sizeof ip))
                snprintf(name, sizeof name, "[%s]:%d", ip, port);
        }
        if (name[0])
            guard_hosts_add(r, name);
    }
    GENERAL_NAMES_free(names);
    X509_free(x);
}

/* Records the names a WebSocket upgrade may use as Host, and says them in the log. */
static void own_names(struct relay *r, struct server *srv)
{
    guard_hosts_init(r, srv->host, r->listen_port, srv->loopback, srv->wildcard);
    if (r->tls)
        cert_names(r, r->listen_port);
    char text[1024];
    guard_hosts_text(r, text, sizeof text);
    log_info("accepting WebSocket upgrades for Host %s (more with --allow-host)", text);
    if (srv->wildcard && !r->cfg.allow_host && !r->tls)
        log_warn("listening on every address: clients must use one of the names above, or add "
                 "the name they use with --allow-host");
}

/* Creates the context, the listener, the signal fds and the tick. */
int server_init(struct relay *r)
{
    struct server *srv = xcalloc(1, sizeof *srv);
    r->srv = srv;
    srv->child_fd = srv->term_fd = -1;
    ptc_buf_init(&srv->out, LWS_PRE);

    /* lws sizes its fd table from RLIMIT_NOFILE at creation: raise it first (two fds a session). */
    struct rlimit rl;
    if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max > 65536 ? 65536 : rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    signal(SIGPIPE, SIG_IGN);

    lws_set_log_level(r->cfg.log_level >= LOG_DEBUG ? LLL_ERR | LLL_WARN : LLL_ERR, lws_log_emit);

    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    char err[256];
    if (parse_listen(r->cfg.listen, &info, srv, err, sizeof err) < 0) {
        log_error("%s", err);
        return -1;
    }
    if (setup_security(r, srv, &info) < 0)
        return -1;
    info.protocols = protocols;
    info.user = r;
    info.vhost_name = "default";
    info.pt_serv_buf_size = 64 * 1024;
    info.timeout_secs = 10;
    /*
     * lws' own loop is poll(): every turn costs time in proportion to all fds, and a PTY master
     * is an expensive one to poll (n_tty_poll takes the line discipline's lock). With a thousand
     * sessions that was ~1 ms a turn, so an echo round trip took milliseconds. libev (epoll)
     * costs in proportion to the fds that are ready. We own the loop (a "foreign" loop for lws)
     * so that we can run it and break out of it at the end of a shutdown: under an event
     * library, lws_service() runs the loop and does not return.
     */
    void *loops[1] = {NULL};
    if (!getenv("PTYRELAY_POLL_LOOP")) {
        srv->ev = ev_loop_new(EVFLAG_AUTO);
        if (!srv->ev) {
            log_error("cannot create the event loop");
            return -1;
        }
        loops[0] = srv->ev;
        info.foreign_loops = loops;
        info.options |= LWS_SERVER_OPTION_LIBEV;
    }
    srv->ctx = lws_create_context(&info);
    if (!srv->ctx) {
        log_error("cannot listen on %s (in use, or not an address of this machine?)", r->cfg.listen);
        return -1;
    }
    r->ctx = srv->ctx;
    srv->vh = lws_get_vhost_by_name(srv->ctx, "default");
    r->vhost = srv->vh;
    if (!srv->vh) {
        log_error("no vhost");
        return -1;
    }

    srv->child_fd = pty_reaper_open();
    if (srv->child_fd < 0) {
        log_error("signalfd: %s", strerror(-srv->child_fd));
        return -1;
    }
    sigset_t ts;
    sigemptyset(&ts);
    sigaddset(&ts, SIGTERM);
    sigaddset(&ts, SIGINT);
    sigprocmask(SIG_BLOCK, &ts, NULL);
    srv->term_fd = signalfd(-1, &ts, SFD_NONBLOCK | SFD_CLOEXEC);
    if (srv->term_fd < 0) {
        log_error("signalfd: %s", strerror(errno));
        return -1;
    }
    srv->child_wsi = adopt_fd(srv, srv->child_fd, "ptyrelay-sig", NULL);
    srv->term_wsi = adopt_fd(srv, srv->term_fd, "ptyrelay-sig", NULL);
    if (!srv->child_wsi || !srv->term_wsi) {
        log_error("cannot watch signals in the loop");
        return -1;
    }

    if (!strncmp(r->cfg.listen, "unix:", 5)) {
        log_info("listening on %s", r->cfg.listen);
    } else {
        r->listen_port = lws_get_vhost_listen_port(srv->vh);
        own_names(r, srv);
        const char *host = srv->iface[0] ? srv->iface : "0.0.0.0";
        bool v6 = strchr(host, ':') != NULL;
        log_info("listening on %s://%s%s%s:%d/ptc1", r->tls ? "wss" : "ws", v6 ? "[" : "", host,
                 v6 ? "]" : "", r->listen_port);
    }
    lws_sul_schedule(srv->ctx, 0, &srv->tick, tick_cb, TICK_US);
    return 0;
}

/* Services the loop until the shutdown is complete. */
int server_run(struct relay *r)
{
    struct server *srv = srv_of(r);
    if (srv->ev) {
        ev_run(srv->ev, 0);
        return 0;
    }
    while (!srv->done)
        if (lws_service(srv->ctx, 0) < 0)
            break;
    return 0;
}

/* Destroys the context (closing every wsi and fd it owns) and the server state. */
void server_free(struct relay *r)
{
    struct server *srv = srv_of(r);
    if (!srv)
        return;
    if (srv->ctx) {
        lws_sul_cancel(&srv->tick);
        lws_context_destroy(srv->ctx);
    }
    if (srv->ev) {
        /* lws has released its watchers; let libev run what is left of them, then free it. */
        ev_run(srv->ev, EVRUN_NOWAIT);
        ev_loop_destroy(srv->ev);
        srv->ev = NULL;
    }
    ptc_buf_free(&srv->out);
    free(srv);
    r->srv = NULL;
    r->ctx = r->vhost = NULL;
}

/* Adopts a PTY master into the loop. */
int server_adopt_pty(struct relay *r, struct session *s, int fd)
{
    struct lws *w = adopt_fd(srv_of(r), fd, "ptyrelay-pty", s);
    if (!w)
        return -1;
    s->pty_wsi = w;
    return 0;
}

/* Asks for RAW_WRITEABLE on the master. */
void server_pty_want_write(struct session *s)
{
    if (s->pty_wsi)
        lws_callback_on_writable(s->pty_wsi);
}

/* Closes the master's wsi at the next service; the session is detached from it first. */
void server_pty_close(struct session *s)
{
    struct lws *w = s->pty_wsi;
    if (!w)
        return;
    lws_set_opaque_user_data(w, NULL);
    s->pty_wsi = NULL;
    lws_set_timeout(w, PENDING_TIMEOUT_KILLED_BY_PARENT, LWS_TO_KILL_ASYNC);
}

/* Asks for SERVER_WRITEABLE. */
void server_conn_want_write(struct conn *c)
{
    if (c->wsi)
        lws_callback_on_writable(c->wsi);
}

/* Pauses or resumes reading a connection. */
void server_conn_rx_flow(struct conn *c, bool enable)
{
    if (c->wsi)
        lws_rx_flow_control(c->wsi, enable ? 1 : 0);
}

/* Drops a connection now, sending the close code if the socket still takes it. */
void server_conn_close_now(struct conn *c, int code, const char *reason)
{
    c->close_code = code;
    snprintf(c->close_reason, sizeof c->close_reason, "%s", reason);
    if (!c->wsi)
        return;
    lws_close_reason(c->wsi, (enum lws_close_status)code, (unsigned char *)c->close_reason,
                     strlen(c->close_reason));
    lws_set_timeout(c->wsi, PENDING_TIMEOUT_KILLED_BY_PARENT, LWS_TO_KILL_ASYNC);
}
