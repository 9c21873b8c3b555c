/*
 * ops: the REQUEST table. One row per op: its name, the scope it needs, whether it targets the
 * session named in the frame header, and its handler. Parsing and type checks happen in libptc
 * (ptc_request_parse); what is checked here is what only the relay knows: sessions, scopes, state,
 * limits. Every failure is a REPLY with a code and a sentence; only a REQUEST that is not a map
 * with an unsigned id closes the connection (4400).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "relay.h"

#define MAX_DIM 4096

struct op_ctx {
    struct conn *c;
    const struct ptc_frame *f;
    const struct ptc_request *rq;
    struct session *s; /* for session ops */
};

typedef void op_fn(struct op_ctx *x);

struct op_entry {
    int op;
    int scope;    /* minimum scope */
    bool session; /* targets the session in the header */
    op_fn *fn;
};

static void reply_ok(struct op_ctx *x, struct ptc_reply *rp)
{
    rp->id = x->rq->id;
    rp->op = x->rq->op;
    rp->ok = true;
    conn_queue_reply(x->c, rp);
}

static void op_hello(struct op_ctx *x)
{
    struct conn *c = x->c;
    struct relay *r = c->relay;
    const struct ptc_request *rq = x->rq;
    if (c->authed) {
        conn_reply_error(c, rq->id, PTC_C_BAD_REQUEST, "hello was already accepted on this connection");
        return;
    }
    if (rq->version != PTC_VERSION) {
        conn_reply_error(c, rq->id, PTC_C_UNSUPPORTED_VERSION,
                         "this relay speaks PTC1 version %d, not %llu", PTC_VERSION,
                         (unsigned long long)rq->version);
        conn_close(c, PTC_CLOSE_UNAUTHORIZED, "unsupported version");
        return;
    }
    const struct token *t = NULL;
    if (rq->has & PTC_HAS_TOKEN)
        t = auth_check(r, rq->token.p, rq->token.n);
    else if (c->has_bearer)
        t = auth_check_hash(r, c->bearer);
    if (!t || guard_peer_blocked(r, c->peer)) {
        /* Answered later, from the tick, after a delay that grows with the peer's failures. */
        const char *why = t ? "this address is over its failed-login limit"
                          : (rq->has & PTC_HAS_TOKEN) || c->has_bearer ? "unknown token"
                                                                        : "no token";
        guard_login_failed(r, c, rq->id, why, !t);
        return;
    }
    c->authed = true;
    memcpy(c->token_hash, t->hash, 32);
    c->scope = t->scope;
    c->token_name = xstrdup(t->name);
    store_token_used(r->store, t->name);
    char client[64] = "";
    if (rq->has & PTC_HAS_CLIENT) {
        size_t n = rq->client.n < sizeof client - 1 ? rq->client.n : sizeof client - 1;
        for (size_t i = 0; i < n; i++)
            client[i] = rq->client.p[i] >= 0x20 && rq->client.p[i] < 0x7f ? rq->client.p[i] : '?';
        client[n] = 0;
    }
    log_info("conn=%u peer=%s hello token=%s client=%s", c->id, c->peer, t->name, client);
    struct ptc_reply rp = {0};
    rp.server = ptc_str_c("ptyrelay/" PTYRELAY_VERSION);
    rp.version = PTC_VERSION;
    rp.max_frame = r->cfg.max_frame;
    rp.scope = t->scope == SCOPE_CONTROL ? PTC_MODE_INTERACTIVE : PTC_MODE_VIEW;
    reply_ok(x, &rp);
}

static bool valid_env_name(struct ptc_str k)
{
    if (!k.n || !((k.p[0] >= 'A' && k.p[0] <= 'Z') || (k.p[0] >= 'a' && k.p[0] <= 'z') || k.p[0] == '_'))
        return false;
    for (size_t i = 1; i < k.n; i++) {
        char ch = k.p[i];
        if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
              ch == '_'))
            return false;
    }
    return true;
}

static bool has_nul(struct ptc_str v) { return memchr(v.p, 0, v.n) != NULL; }

/*
 * Refuses env entries that steer the dynamic loader or libc (LD_PRELOAD, GLIBC_TUNABLES, ...)
 * unless the operator allowed that name with --allow-env. -1 after replying forbidden.
 */
static int open_env_check(struct conn *c, const struct ptc_request *rq)
{
    for (uint32_t i = 0; i < rq->envc; i++) {
        struct ptc_str k = rq->env_keys[i];
        if (!guard_env_is_loader(k.p, k.n))
            continue;
        char name[80];
        snprintf(name, sizeof name, "%.*s", (int)(k.n < 64 ? k.n : 64), k.p);
        if (k.n < 64 && config_list_has(c->relay->cfg.allow_env, name))
            continue;
        log_warn("conn=%u peer=%s open refused: env %s is a loader variable", c->id, c->peer, name);
        conn_reply_error(c, rq->id, PTC_C_FORBIDDEN,
                         "env: %s changes how programs are loaded and is refused (the relay's "
                         "operator can allow it with --allow-env %s)",
                         name, name);
        return -1;
    }
    return 0;
}

static void op_open(struct op_ctx *x)
{
    struct conn *c = x->c;
    struct relay *r = c->relay;
    const struct ptc_request *rq = x->rq;
    char err[256] = "";
    if (rq->cols > MAX_DIM || rq->rows > MAX_DIM) {
        conn_reply_error(c, rq->id, PTC_C_BAD_REQUEST, "size %ux%u out of range (1..%d each)",
                         rq->cols, rq->rows, MAX_DIM);
        return;
    }
    for (uint32_t i = 0; i < rq->envc; i++)
        if (!valid_env_name(rq->env_keys[i]) || has_nul(rq->env_vals[i])) {
            conn_reply_error(c, rq->id, PTC_C_BAD_REQUEST,
                             "env: '%.*s' is not a valid variable name or its value holds NUL",
                             (int)(rq->env_keys[i].n > 64 ? 64 : rq->env_keys[i].n), rq->env_keys[i].p);
            return;
        }
    if (open_env_check(c, rq) < 0)
        return;
    for (uint32_t i = 0; i < rq->argc; i++)
        if (has_nul(rq->argv[i])) {
            conn_reply_error(c, rq->id, PTC_C_BAD_REQUEST, "argv[%u] holds a NUL byte", i);
            return;
        }
    if ((rq->has & PTC_HAS_CWD) && (has_nul(rq->cwd) || !rq->cwd.n)) {
        conn_reply_error(c, rq->id, PTC_C_BAD_REQUEST, "cwd must be a non-empty path");
        return;
    }
    if ((rq->has & PTC_HAS_NAME) && rq->name.n) {
        for (struct session *s = r->sessions; s; s = s->next)
            if (ptc_str_eq(rq->name, s->name)) {
                conn_reply_error(c, rq->id, PTC_C_BAD_REQUEST, "name '%s' is already used by session %s",
                                 s->name, s->idtext);
                return;
            }
    }
    if (rq->attach == PTC_MODE_INTERACTIVE && c->scope != SCOPE_CONTROL) {
        conn_reply_error(c, rq->id, PTC_C_FORBIDDEN, "this token may not attach interactively");
        return;
    }
    if ((rq->has & PTC_HAS_ATTACH) && c->nattach >= r->cfg.max_attach_per_conn) {
        limit_hit(r, LIM_ATTACH, "conn=%u peer=%s: %u attachments", c->id, c->peer, c->nattach);
        conn_reply_error(c, rq->id, PTC_C_LIMIT, "attachment limit per connection reached (%u)",
                         r->cfg.max_attach_per_conn);
        return;
    }

    char **argv = NULL, **env = NULL, *cwd = NULL, *name = NULL;
    if (rq->argc) {
        argv = xcalloc(rq->argc + 1, sizeof *argv);
        for (uint32_t i = 0; i < rq->argc; i++)
            argv[i] = xstrndup(rq->argv[i].p, rq->argv[i].n);
    }
    if (rq->envc) {
        env = xcalloc(rq->envc + 1, sizeof *env);
        for (uint32_t i = 0; i < rq->envc; i++) {
            env[i] = xmalloc(rq->env_keys[i].n + rq->env_vals[i].n + 2);
            memcpy(env[i], rq->env_keys[i].p, rq->env_keys[i].n);
            env[i][rq->env_keys[i].n] = '=';
            memcpy(env[i] + rq->env_keys[i].n + 1, rq->env_vals[i].p, rq->env_vals[i].n);
            env[i][rq->env_keys[i].n + 1 + rq->env_vals[i].n] = 0;
        }
    }
    if (rq->has & PTC_HAS_CWD)
        cwd = xstrndup(rq->cwd.p, rq->cwd.n);
    if (rq->has & PTC_HAS_NAME)
        name = xstrndup(rq->name.p, rq->name.n);
    struct session_open_args a = {
        .argv = (const char *const *)argv,
        .cwd = cwd,
        .env_add = (const char *const *)env,
        .cols = rq->cols,
        .rows = rq->rows,
        .name = name,
        .idle_ttl_s = rq->idle_ttl_s,
    };
    struct session *s = NULL;
    int rc = session_open(r, &a, &s, err, sizeof err);
    for (uint32_t i = 0; argv && i < rq->argc; i++)
        free(argv[i]);
    for (uint32_t i = 0; env && i < rq->envc; i++)
        free(env[i]);
    free(argv);
    free(env);
    free(cwd);
    free(name);
    if (rc == -EMFILE)
        limit_hit(r, LIM_SESSIONS, "conn=%u peer=%s: %u sessions", c->id, c->peer, r->nsessions);
    if (rc < 0) {
        conn_reply_error(c, rq->id, rc == -EMFILE ? PTC_C_LIMIT : PTC_C_BAD_REQUEST, "%s",
                         err[0] ? err : strerror(-rc));
        return;
    }
    log_info("session=%.8s opened by conn=%u token=%s", s->idtext, c->id, c->token_name);
    relay_audit(r, "opened", s, c, "argv0=%s", s->argv[0]);
    struct ptc_reply rp = {0};
    rp.session = s->id;
    rp.pid = (uint64_t)s->pid;
    rp.state = s->state;
    reply_ok(x, &rp);
    if (rq->has & PTC_HAS_ATTACH) {
        attach_new(c, s, rq->attach, 0, 0);
        relay_audit(r, "attached", s, c, "mode=%s offset=0", ptc_mode_name(rq->attach));
    }
}

static void op_list(struct op_ctx *x)
{
    struct relay *r = x->c->relay;
    struct ptc_reply rp = {0};
    rp.nsessions = r->nsessions;
    rp.sessions = xcalloc(r->nsessions ? r->nsessions : 1, sizeof *rp.sessions);
    uint32_t i = 0;
    for (struct session *s = r->sessions; s && i < r->nsessions; s = s->next)
        session_info(s, &rp.sessions[i++]);
    reply_ok(x, &rp);
    free(rp.sessions);
}

static void op_info(struct op_ctx *x)
{
    struct ptc_reply rp = {0};
    session_info(x->s, &rp.info);
    reply_ok(x, &rp);
}

static void op_attach(struct op_ctx *x)
{
    struct conn *c = x->c;
    const struct ptc_request *rq = x->rq;
    struct session *s = x->s;
    int mode = rq->has & PTC_HAS_MODE ? rq->mode
               : c->scope == SCOPE_CONTROL ? PTC_MODE_INTERACTIVE
                                           : PTC_MODE_VIEW;
    if (mode == PTC_MODE_INTERACTIVE && c->scope != SCOPE_CONTROL) {
        conn_reply_error(c, rq->id, PTC_C_FORBIDDEN, "this token may only attach with mode view");
        return;
    }
    if (attach_find(c, &s->id)) {
        conn_reply_error(c, rq->id, PTC_C_BAD_REQUEST,
                         "already attached to this session on this connection (detach first)");
        return;
    }
    if (c->nattach >= c->relay->cfg.max_attach_per_conn) {
        limit_hit(c->relay, LIM_ATTACH, "conn=%u peer=%s: %u attachments", c->id, c->peer,
                  c->nattach);
        conn_reply_error(c, rq->id, PTC_C_LIMIT, "attachment limit per connection reached (%u)",
                         c->relay->cfg.max_attach_per_conn);
        return;
    }
    uint64_t first = session_first_offset(s);
    uint64_t off = rq->has & PTC_HAS_OFFSET ? rq->offset : first;
    if (off < first)
        off = first;
    if (off > ring_end(&s->ring))
        off = ring_end(&s->ring);
    struct ptc_reply rp = {0};
    rp.start = off;
    rp.end = ring_end(&s->ring);
    rp.state = s->state;
    rp.cols = s->cols;
    rp.rows = s->rows;
    reply_ok(x, &rp);
    attach_new(c, s, mode, off, rq->has & PTC_HAS_WINDOW ? rq->window : 0);
    relay_audit(c->relay, "attached", s, c, "mode=%s offset=%llu", ptc_mode_name(mode),
                (unsigned long long)off);
    log_debug("%s: session=%.8s conn=%u mode=%s from=%llu", __func__, s->idtext, c->id,
              ptc_mode_name(mode), (unsigned long long)off);
}

static void op_detach(struct op_ctx *x)
{
    struct attach *a = attach_find(x->c, &x->s->id);
    if (!a) {
        conn_reply_error(x->c, x->rq->id, PTC_C_NOT_ATTACHED, "not attached to this session");
        return;
    }
    attach_free(a);
    relay_audit(x->c->relay, "detached", x->s, x->c, NULL);
    struct ptc_reply rp = {0};
    reply_ok(x, &rp);
}

static void op_signal(struct op_ctx *x)
{
    int signo = ptc_signal_from_name(x->rq->signal.p, x->rq->signal.n);
    if (signo < 0) {
        conn_reply_error(x->c, x->rq->id, PTC_C_BAD_REQUEST,
                         "signal: expected one of INT TERM HUP KILL STOP CONT WINCH QUIT USR1 USR2");
        return;
    }
    if (session_signal(x->s, signo) < 0) {
        conn_reply_error(x->c, x->rq->id, PTC_C_GONE, "the session has ended");
        return;
    }
    x->s->last_activity = now_ms();
    relay_audit(x->c->relay, "signalled", x->s, x->c, "signal=%s", ptc_signal_name(signo, (char[16]){0}));
    struct ptc_reply rp = {0};
    reply_ok(x, &rp);
}

static void op_kill(struct op_ctx *x)
{
    if (session_kill(x->s, x->rq->grace_ms) < 0) {
        conn_reply_error(x->c, x->rq->id, PTC_C_GONE, "the session has ended");
        return;
    }
    log_info("session=%.8s kill by conn=%u grace=%llums", x->s->idtext, x->c->id,
             (unsigned long long)x->rq->grace_ms);
    relay_audit(x->c->relay, "killed", x->s, x->c, "grace_ms=%llu",
                (unsigned long long)x->rq->grace_ms);
    struct ptc_reply rp = {0};
    reply_ok(x, &rp);
}

static void op_remove(struct op_ctx *x)
{
    if (!ptc_state_is_ended(x->s->state)) {
        conn_reply_error(x->c, x->rq->id, PTC_C_BAD_REQUEST,
                         "the session is still %s; kill it before removing it",
                         ptc_state_name(x->s->state));
        return;
    }
    struct ptc_reply rp = {0};
    reply_ok(x, &rp);
    relay_audit(x->c->relay, "removed", x->s, x->c, NULL);
    session_remove(x->s);
}

static void op_read(struct op_ctx *x)
{
    struct session *s = x->s;
    const struct ptc_request *rq = x->rq;
    uint64_t off = rq->has & PTC_HAS_OFFSET ? rq->offset : session_first_offset(s);
    size_t max = rq->max;
    size_t cap = x->c->relay->cfg.max_frame - 256;
    if (max > cap)
        max = cap;
    if (off > ring_end(&s->ring))
        off = ring_end(&s->ring);
    uint8_t *buf = xmalloc(max ? max : 1);
    uint64_t at;
    size_t n = session_read(s, off, buf, max, &at);
    struct ptc_reply rp = {0};
    rp.data.p = (const char *)buf;
    rp.data.n = n;
    rp.offset = at;
    rp.next = at + n;
    rp.truncated = at > off;
    reply_ok(x, &rp);
    free(buf);
}

static void op_wait(struct op_ctx *x)
{
    char msg[160];
    int code;
    if (conn_wait_add(x->c, x->s, x->rq, &code, msg, sizeof msg) < 0)
        conn_reply_error(x->c, x->rq->id, code, "%s", msg);
}

static void op_subscribe(struct op_ctx *x)
{
    x->c->subscribed = true;
    struct ptc_reply rp = {0};
    reply_ok(x, &rp);
}

static const struct op_entry op_table[PTC_OP__COUNT] = {
    [PTC_OP_HELLO] = {PTC_OP_HELLO, SCOPE_NONE, false, op_hello},
    [PTC_OP_OPEN] = {PTC_OP_OPEN, SCOPE_CONTROL, false, op_open},
    [PTC_OP_LIST] = {PTC_OP_LIST, SCOPE_VIEW, false, op_list},
    [PTC_OP_INFO] = {PTC_OP_INFO, SCOPE_VIEW, true, op_info},
    [PTC_OP_ATTACH] = {PTC_OP_ATTACH, SCOPE_VIEW, true, op_attach},
    [PTC_OP_DETACH] = {PTC_OP_DETACH, SCOPE_VIEW, true, op_detach},
    [PTC_OP_SIGNAL] = {PTC_OP_SIGNAL, SCOPE_CONTROL, true, op_signal},
    [PTC_OP_KILL] = {PTC_OP_KILL, SCOPE_CONTROL, true, op_kill},
    [PTC_OP_REMOVE] = {PTC_OP_REMOVE, SCOPE_CONTROL, true, op_remove},
    [PTC_OP_READ] = {PTC_OP_READ, SCOPE_VIEW, true, op_read},
    [PTC_OP_WAIT] = {PTC_OP_WAIT, SCOPE_VIEW, true, op_wait},
    [PTC_OP_SUBSCRIBE] = {PTC_OP_SUBSCRIBE, SCOPE_VIEW, false, op_subscribe},
};

/* Parses a REQUEST and runs its op. */
int ops_dispatch(struct conn *c, const struct ptc_frame *f)
{
    struct ptc_request rq;
    struct ptc_perr perr;
    if (c->login_failed)
        return 0; /* a refused hello waits for its answer: nothing else is read */
    struct ptc_limits lim = ptc_limits_default;
    lim.max_argv = c->relay->cfg.max_argv;
    lim.max_env = c->relay->cfg.max_env;
    lim.max_arg_len = c->relay->cfg.max_arg_len;
    int rc = ptc_request_parse(f->payload, f->len, &lim, &rq, &perr);
    if (rc == PTC_EPROTO || (rc < 0 && !perr.have_id)) {
        ptc_request_free(&rq);
        conn_close(c, c->authed ? PTC_CLOSE_PROTOCOL : PTC_CLOSE_UNAUTHORIZED,
                   "REQUEST must be a msgpack map with an unsigned id");
        return -1;
    }
    if (!c->authed && (rc < 0 || rq.op != PTC_OP_HELLO)) {
        if (rc < 0)
            conn_reply_error(c, perr.id, PTC_C_BAD_REQUEST, "%s", perr.message);
        else
            conn_reply_error(c, rq.id, PTC_C_UNAUTHORIZED, "the first request must be hello");
        ptc_request_free(&rq);
        conn_close(c, PTC_CLOSE_UNAUTHORIZED, "the first frame must be REQUEST hello");
        return 0;
    }
    if (rc == PTC_ELIMIT) {
        limit_hit(c->relay, LIM_OPEN_ARGS, "conn=%u peer=%s: %s", c->id, c->peer, perr.message);
        conn_reply_error(c, perr.id, PTC_C_LIMIT, "%s", perr.message);
        ptc_request_free(&rq);
        return 0;
    }
    if (rc < 0) {
        conn_reply_error(c, perr.id, PTC_C_BAD_REQUEST, "%s", perr.message);
        ptc_request_free(&rq);
        return 0;
    }
    const struct op_entry *e = &op_table[rq.op];
    struct op_ctx x = {.c = c, .f = f, .rq = &rq};
    if (e->scope > c->scope && rq.op != PTC_OP_HELLO) {
        conn_reply_error(c, rq.id, PTC_C_FORBIDDEN, "op '%s' needs a control token",
                         ptc_op_name(rq.op));
    } else if (e->session && !(x.s = session_find(c->relay, &f->session))) {
        char idt[PTC_UUID_STRLEN + 1];
        ptc_uuid_format(&f->session, idt);
        conn_reply_error(c, rq.id, PTC_C_NO_SUCH_SESSION, "no session %s", idt);
    } else {
        e->fn(&x);
    }
    ptc_request_free(&rq);
    return 0;
}
