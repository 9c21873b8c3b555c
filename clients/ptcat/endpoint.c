/*
 * endpoint: where the relay is and how to talk to it. The URL comes from --url, then
 * $PTYRELAY_URL, then the local default; the token from --token, --token-file, $PTYRELAY_TOKEN,
 * then the admin.token file in the relay's default data dir. Each way connecting can fail gets its
 * own sentence and exit code 3. The token is kept only in memory and never printed.
 * Simple commands use one synchronous connection (p->conn) and endpoint_call.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ptcat.h"

#define CONNECT_TIMEOUT_MS 10000

static char *xstrdup_or_die(const char *s)
{
    char *d = strdup(s);
    if (!d) {
        fputs("ptcat: out of memory\n", stderr);
        exit(PTCAT_UNMET);
    }
    return d;
}

/* Reads the first line of a token file into a new string. 0 or -errno. */
static int read_token_file(const char *path, char **out)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -errno;
    char buf[1024];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    int e = ferror(f) ? -EIO : 0;
    fclose(f);
    if (e)
        return e;
    buf[n] = 0;
    buf[strcspn(buf, "\r\n")] = 0;
    if (!buf[0])
        return -ENODATA;
    *out = xstrdup_or_die(buf);
    memset(buf, 0, sizeof buf);
    return 0;
}

static void default_token_path(char *out, size_t cap)
{
    const char *x = getenv("XDG_STATE_HOME");
    const char *h = getenv("HOME");
    if (x && *x)
        snprintf(out, cap, "%s/ptyrelay/admin.token", x);
    else if (h && *h)
        snprintf(out, cap, "%s/.local/state/ptyrelay/admin.token", h);
    else
        snprintf(out, cap, "./var/admin.token");
}

/* Resolves URL and token. */
int endpoint_resolve(struct ptcat *p)
{
    if (p->url && p->token)
        return 0;
    const char *url = p->url_opt;
    if (!url || !*url)
        url = getenv("PTYRELAY_URL");
    if (!url || !*url)
        url = PTCAT_DEFAULT_URL;
    struct ptc_client_url u;
    if (ptc_client_url_parse(url, &u) < 0) {
        ptcat_err("'%s' is not a relay URL (expected ws://HOST:PORT/ptc1, wss://... or unix:PATH)",
                  url);
        return PTCAT_CONN;
    }
    free(p->url);
    p->url = xstrdup_or_die(url);

    if (p->token_opt && *p->token_opt) {
        p->token = xstrdup_or_die(p->token_opt);
        return 0;
    }
    if (p->token_file_opt) {
        int rc = read_token_file(p->token_file_opt, &p->token);
        if (rc < 0) {
            ptcat_err("cannot read the token file %s: %s", p->token_file_opt,
                      rc == -ENODATA ? "it is empty" : strerror(-rc));
            return PTCAT_CONN;
        }
        return 0;
    }
    const char *env = getenv("PTYRELAY_TOKEN");
    if (env && *env) {
        p->token = xstrdup_or_die(env);
        return 0;
    }
    char path[4096];
    default_token_path(path, sizeof path);
    int rc = read_token_file(path, &p->token);
    if (rc < 0) {
        ptcat_err("no token: pass --token or --token-file, set PTYRELAY_TOKEN, or run the relay "
                  "with its default data dir (cannot read %s: %s)",
                  path, rc == -ENODATA ? "it is empty" : strerror(-rc));
        return PTCAT_CONN;
    }
    return 0;
}

/* Creates the context if needed. */
int endpoint_ctx(struct ptcat *p)
{
    if (p->ctx)
        return 0;
    struct ptc_client_ctx_opts o = {.ca_file = p->ca_file, .insecure = p->insecure};
    p->ctx = ptc_client_ctx_new(&o);
    if (!p->ctx) {
        ptcat_err("cannot create the WebSocket client (libwebsockets)%s",
                  p->ca_file ? "; is the --ca file readable PEM?" : "");
        return PTCAT_CONN;
    }
    return 0;
}

/* Starts an asynchronous connection. */
struct ptc_client_conn *endpoint_open(struct ptcat *p, const struct ptc_client_cbs *cbs, void *arg)
{
    if (endpoint_resolve(p) || endpoint_ctx(p))
        return NULL;
    struct ptc_client_conn_opts o = {.token = p->token, .client_name = PTCAT_NAME};
    int err = 0;
    struct ptc_client_conn *c = ptc_client_connect(p->ctx, p->url, &o, cbs, arg, &err);
    if (!c)
        endpoint_report(p, err, "");
    return c;
}

/* Prints a sentence for a connection failure. */
int endpoint_report(const struct ptcat *p, int err, const char *message)
{
    const char *url = p->url ? p->url : "?";
    const char *m = message && *message ? message : ptc_client_strerror(err);
    switch (err) {
    case PTC_CLIENT_EREFUSED:
        ptcat_err("no relay at %s (%s); is `ptyrelay serve` running? (--url, PTYRELAY_URL)", url, m);
        break;
    case PTC_CLIENT_ETLS:
        ptcat_err("TLS problem with %s: %s (--ca FILE trusts a certificate, --insecure skips checks)",
                  url, m);
        break;
    case PTC_CLIENT_EUNAUTHORIZED:
        ptcat_err("the relay at %s rejected the token (--token, --token-file, PTYRELAY_TOKEN)", url);
        break;
    case PTC_CLIENT_EHANDSHAKE:
        ptcat_err("%s does not speak PTC1: %s", url, m);
        break;
    case PTC_CLIENT_EVERSION:
        ptcat_err("the relay at %s speaks another PTC1 version: %s", url, m);
        break;
    case PTC_CLIENT_ETIMEOUT:
        ptcat_err("no answer from %s within %d s", url, CONNECT_TIMEOUT_MS / 1000);
        break;
    case PTC_CLIENT_EURL:
        ptcat_err("'%s' is not a relay URL (expected ws://HOST:PORT/ptc1, wss://... or unix:PATH)", url);
        break;
    default:
        ptcat_err("cannot talk to the relay at %s: %s", url, m);
        break;
    }
    return PTCAT_CONN;
}

/* Connects p->conn synchronously. */
int endpoint_connect(struct ptcat *p)
{
    if (p->conn)
        return 0;
    p->conn = endpoint_open(p, NULL, NULL);
    if (!p->conn)
        return PTCAT_CONN;
    int rc = ptc_client_wait_ready(p->conn, CONNECT_TIMEOUT_MS);
    if (rc < 0) {
        int err = rc == PTC_CLIENT_ETIMEOUT ? rc : ptc_client_error(p->conn);
        endpoint_report(p, err ? err : rc, ptc_client_error_message(p->conn));
        ptc_client_conn_free(p->conn);
        p->conn = NULL;
        return PTCAT_CONN;
    }
    return 0;
}

/* Calls an op on p->conn. */
int endpoint_call(struct ptcat *p, const ptc_uuid *sid, struct ptc_request *rq,
                  struct ptc_client_reply *rep, int timeout_ms)
{
    memset(rep, 0, sizeof *rep);
    int rc = endpoint_connect(p);
    if (rc)
        return rc;
    const char *op = ptc_op_name(rq->op);
    rc = ptc_client_call(p->conn, sid, rq, rep, timeout_ms);
    if (rc == PTC_CLIENT_ETIMEOUT) {
        ptcat_err("%s: no reply from the relay within %d ms", op, timeout_ms);
        return PTCAT_CONN;
    }
    if (rc < 0) {
        const char *m = ptc_client_error_message(p->conn);
        int cc = ptc_client_close_code(p->conn);
        if (cc)
            ptcat_err("%s: the relay closed the connection (%d%s%s)", op, cc,
                      *ptc_client_close_reason(p->conn) ? " " : "", ptc_client_close_reason(p->conn));
        else
            ptcat_err("%s: %s", op, *m ? m : ptc_client_strerror(rc));
        return PTCAT_CONN;
    }
    if (!rep->r.ok) {
        ptcat_err("%s: %s: %.*s", op, ptc_code_name(rep->r.error), (int)rep->r.message.n,
                  rep->r.message.p ? rep->r.message.p : "");
        return PTCAT_REFUSED;
    }
    return 0;
}

/* Closes and frees the connection and the context. */
void endpoint_close(struct ptcat *p)
{
    if (p->conn) {
        ptc_client_conn_free(p->conn);
        p->conn = NULL;
    }
    if (p->ctx) {
        ptc_client_ctx_free(p->ctx);
        p->ctx = NULL;
    }
}
