/*
 * main: the `ptyrelay` command. `serve` runs the daemon; `--version` and `--help` answer at once.
 * Everything else is in the modules; this file only wires them together in order and tears them
 * down in reverse.
 */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "relay.h"

extern char **environ;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: ptyrelay serve [options]\n"
            "       ptyrelay token add NAME [--scope view|control] [--data DIR]\n"
            "       ptyrelay token list [--json] [--data DIR]\n"
            "       ptyrelay token revoke NAME [--data DIR]\n"
            "       ptyrelay events [--session ID] [--json] [--data DIR]\n"
            "       ptyrelay --version | --help\n"
            "\n"
            "Keeps interactive programs alive in pseudo-terminals and serves them over WebSocket\n"
            "(PTC1 at ws://HOST:PORT/ptc1, subprotocol ptc1).\n"
            "\n"
            "serve options:\n"
            "  --listen ADDR           127.0.0.1:7373 (default), [::1]:7373, or unix:PATH\n"
            "  --data DIR              data dir (default $XDG_STATE_HOME/ptyrelay or\n"
            "                          ~/.local/state/ptyrelay); holds admin.token\n"
            "  --stall-timeout SECONDS close a client whose socket takes nothing this long (30)\n"
            "  --ring-max BYTES        output kept in memory per session (4194304)\n"
            "  --max-sessions N        sessions at once (4096)\n"
            "  --max-connections N     WebSocket connections at once (1024)\n"
            "  --max-attach N          attachments per connection (4096)\n"
            "  --max-frame BYTES       largest frame payload accepted (1048576)\n"
            "  --input-queue BYTES     input queued per session before its senders pause (1048576)\n"
            "  --idle-after MS         attention 'idle' after this long without output (30000)\n"
            "  --attention-after MS    attention 'attention' after this long (120000)\n"
            "  --log-max BYTES         output kept in the log per session (67108864; 0: no cap)\n"
            "  --log-total-max BYTES   output kept in the log in all (1073741824; 0: no cap)\n"
            "  --db-max-bytes BYTES    hard cap on the database file (default: none)\n"
            "  --no-log                keep sessions and the audit trail, but not their output\n"
            "  --log-level L           error, warn, info (default) or debug\n"
            "\n"
            "security options (see docs/security.md):\n"
            "  --tls-cert FILE --tls-key FILE  serve wss:// (TLS 1.2 or newer)\n"
            "  --insecure-no-tls       allow a non-loopback --listen without TLS (trusted networks)\n"
            "  --allow-host NAME[:PORT]  another Host name for upgrades, e.g. a proxy's (repeatable)\n"
            "  --allow-origin ORIGIN   a web origin allowed to connect, e.g. https://app.example\n"
            "                          (repeatable; default: only the relay's own origin)\n"
            "  --max-connections-per-peer N  WebSocket connections from one address (64)\n"
            "  --login-fail-limit N    failed logins per address per minute before 4429 (10)\n"
            "  --max-argv N, --max-env N, --max-arg-len BYTES  `open` limits (256, 256, 4096)\n"
            "  --allow-env NAME        let `open` set this loader variable (LD_*, ...) (repeatable)\n"
            "  --compress              offer permessage-deflate (off by default)\n"
            "\n"
            "Every command takes --data DIR (same default as serve). `token add` prints the new\n"
            "token once, as the last word of its output; only its SHA-256 is stored.\n");
}

static void copy_base_env(struct relay *r)
{
    int n = 0;
    while (environ[n])
        n++;
    r->base_env = xcalloc((size_t)n + 1, sizeof *r->base_env);
    for (int i = 0; i < n; i++)
        if (strncmp(environ[i], "TERM=", 5))
            r->base_env[r->nbase_env++] = xstrdup(environ[i]);
}

static int restore_session(void *arg, const struct store_session *rec)
{
    session_restore(arg, rec);
    return 0;
}

static int serve(int argc, char **argv)
{
    struct relay r;
    memset(&r, 0, sizeof r);
    config_defaults(&r.cfg);
    char err[256];
    if (config_parse_serve(&r.cfg, argc, argv, err, sizeof err) < 0) {
        fprintf(stderr, "ptyrelay: %s\n", err);
        config_free(&r.cfg);
        return 2;
    }
    log_set_level(r.cfg.log_level);
    if (geteuid() == 0)
        log_warn("running as root: every session will be a root shell (run ptyrelay as an "
                 "unprivileged user unless that is what you want)");
    int rc = auth_data_dir_init(r.cfg.data_dir);
    if (rc < 0) {
        log_error("data dir %s: %s", r.cfg.data_dir, strerror(-rc));
        config_free(&r.cfg);
        return 1;
    }
    struct store_opts so = {
        .log_max = r.cfg.log_max,
        .total_max = r.cfg.log_total_max,
        .db_max_bytes = r.cfg.db_max_bytes,
    };
    if (store_open(r.cfg.data_dir, &so, true, &r.store, err, sizeof err) < 0) {
        log_error("store: %s", err);
        config_free(&r.cfg);
        return 1;
    }
    r.log_output = !r.cfg.no_log;
    r.scratch = xmalloc(RELAY_SCRATCH);
    if (store_load_sessions(r.store, restore_session, &r, err, sizeof err) < 0) {
        log_error("store: %s", err);
        store_close(r.store);
        free(r.scratch);
        config_free(&r.cfg);
        return 1;
    }
    if (r.nsessions)
        log_info("restored %u session(s) from the store", r.nsessions);
    bool created;
    rc = auth_init(&r, &created);
    if (rc < 0) {
        log_error("data dir %s: cannot set up the admin token: %s", r.cfg.data_dir, strerror(-rc));
        store_close(r.store);
        free(r.scratch);
        config_free(&r.cfg);
        return 1;
    }
    if (created)
        log_info("created an admin token in %s/admin.token (mode 0600)", r.cfg.data_dir);
    else
        log_info("admin token: %s/admin.token", r.cfg.data_dir);
    copy_base_env(&r); /* here, so the failures above have nothing of it to free */
    int status = 0;
    if (server_init(&r) == 0)
        server_run(&r);
    else
        status = 1;
    /* Destroying the context closes every connection and PTY; then free what is left. */
    server_free(&r);
    for (struct session *s = r.sessions; s; s = s->next) {
        session_flush_log(s);
        session_save(s);
    }
    store_close(r.store); /* commits everything queued */
    r.store = NULL;
    while (r.sessions) {
        struct session *s = r.sessions;
        r.sessions = s->next;
        session_free(s);
    }
    free(r.scratch);
    while (r.conns) {
        struct conn *c = r.conns;
        r.conns = c->next;
        conn_free(c);
    }
    relay_reap(&r);
    auth_free(&r);
    guard_free(&r);
    for (int i = 0; i < r.nbase_env; i++)
        free(r.base_env[i]);
    free(r.base_env);
    if (!status)
        log_info("stopped");
    config_free(&r.cfg);
    return status;
}

/* Options shared by the maintenance commands: --data DIR, --json, --scope S, --session ID. */
struct cli {
    char *data;
    bool json;
    const char *scope;
    const char *session;
    const char *arg; /* the one positional argument */
};

static int cli_parse(struct cli *o, int argc, char **argv, bool want_arg)
{
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--data") && i + 1 < argc) {
            free(o->data);
            o->data = xstrdup(argv[++i]);
        } else if (!strncmp(a, "--data=", 7)) {
            free(o->data);
            o->data = xstrdup(a + 7);
        } else if (!strcmp(a, "--json")) {
            o->json = true;
        } else if (!strcmp(a, "--scope") && i + 1 < argc) {
            o->scope = argv[++i];
        } else if (!strcmp(a, "--session") && i + 1 < argc) {
            o->session = argv[++i];
        } else if (a[0] != '-' && want_arg && !o->arg) {
            o->arg = a;
        } else {
            fprintf(stderr, "ptyrelay: unexpected argument '%s' (see ptyrelay --help)\n", a);
            return -1;
        }
    }
    if (want_arg && !o->arg) {
        fprintf(stderr, "ptyrelay: a NAME is required (see ptyrelay --help)\n");
        return -1;
    }
    if (!o->data)
        o->data = config_default_data_dir();
    return 0;
}

static struct store *cli_store(struct cli *o)
{
    char err[512];
    struct store *st = NULL;
    int rc = auth_data_dir_init(o->data);
    if (rc < 0) {
        fprintf(stderr, "ptyrelay: data dir %s: %s\n", o->data, strerror(-rc));
        return NULL;
    }
    if (store_open(o->data, NULL, false, &st, err, sizeof err) < 0) {
        fprintf(stderr, "ptyrelay: %s\n", err);
        return NULL;
    }
    return st;
}

static void fmt_time(uint64_t ms, char *out, size_t len)
{
    if (!ms) {
        snprintf(out, len, "never");
        return;
    }
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

struct token_list {
    bool json;
    json_t *arr;
};

static int print_token(void *arg, const char *name, const uint8_t *hash, int scope, uint64_t created,
                       uint64_t last_used)
{
    struct token_list *tl = arg;
    const char *sc = scope == SCOPE_VIEW ? "view" : "control";
    if (tl->json) {
        json_t *o = json_object();
        json_object_set_new(o, "name", json_string(name));
        json_object_set_new(o, "scope", json_string(sc));
        json_object_set_new(o, "created_ms", json_integer((json_int_t)created));
        json_object_set_new(o, "last_used_ms", last_used ? json_integer((json_int_t)last_used) : json_null());
        json_array_append_new(tl->arr, o);
        return 0;
    }
    char c[32], u[32];
    fmt_time(created, c, sizeof c);
    fmt_time(last_used, u, sizeof u);
    printf("%-20s %-8s %-21s %s\n", name, sc, c, u);
    return 0;
}

static bool valid_token_name(const char *n)
{
    size_t len = strlen(n);
    if (!len || len > 64)
        return false;
    for (const char *p = n; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '_' || *p == '.' || *p == '@'))
            return false;
    return true;
}

static int cmd_token(int argc, char **argv)
{
    if (argc < 1) {
        fprintf(stderr, "usage: ptyrelay token add|list|revoke ... (see ptyrelay --help)\n");
        return 2;
    }
    const char *verb = argv[0];
    struct cli o = {0};
    bool add = !strcmp(verb, "add"), list = !strcmp(verb, "list"), revoke = !strcmp(verb, "revoke");
    if (!add && !list && !revoke) {
        fprintf(stderr, "ptyrelay: unknown token command '%s' (add, list, revoke)\n", verb);
        return 2;
    }
    if (cli_parse(&o, argc - 1, argv + 1, !list) < 0) {
        free(o.data);
        return 2;
    }
    int status = 0;
    char err[256];
    struct store *st = cli_store(&o);
    if (!st) {
        free(o.data);
        return 1;
    }
    if (add) {
        int scope = SCOPE_CONTROL;
        if (o.scope && !strcmp(o.scope, "view"))
            scope = SCOPE_VIEW;
        else if (o.scope && strcmp(o.scope, "control")) {
            fprintf(stderr, "ptyrelay: --scope must be view or control\n");
            status = 2;
        }
        if (!status && !valid_token_name(o.arg)) {
            fprintf(stderr, "ptyrelay: a token name is 1-64 of [A-Za-z0-9._@-]\n");
            status = 2;
        }
        char tok[128];
        uint8_t hash[32];
        if (!status && auth_token_new(tok, sizeof tok) == 0) {
            auth_hash(tok, strlen(tok), hash);
            if (store_token_add(st, o.arg, hash, scope, err, sizeof err) < 0) {
                fprintf(stderr, "ptyrelay: %s\n", err);
                status = 1;
            } else {
                printf("new %s token '%s' (shown once, only its hash is kept): %s\n",
                       scope == SCOPE_VIEW ? "view" : "control", o.arg, tok);
            }
            memset(tok, 0, sizeof tok);
        }
    } else if (list) {
        struct token_list tl = {.json = o.json, .arr = json_array()};
        if (!o.json)
            printf("%-20s %-8s %-21s %s\n", "NAME", "SCOPE", "CREATED", "LAST USED");
        if (store_tokens(st, print_token, &tl) < 0) {
            fprintf(stderr, "ptyrelay: cannot read tokens\n");
            status = 1;
        } else if (o.json) {
            char *txt = json_dumps(tl.arr, JSON_COMPACT);
            printf("%s\n", txt ? txt : "[]");
            free(txt);
        }
        json_decref(tl.arr);
    } else {
        if (store_token_revoke(st, o.arg, err, sizeof err) < 0) {
            fprintf(stderr, "ptyrelay: %s\n", err);
            status = 1;
        } else {
            printf("revoked token '%s'; its connections are closed\n", o.arg);
        }
    }
    store_close(st);
    free(o.data);
    return status;
}

struct events_out {
    bool json;
    const char *prefix;
};

static int print_event(void *arg, uint64_t ts, const ptc_uuid *sid, const char *kind,
                       const char *token, const char *peer, const char *detail)
{
    struct events_out *eo = arg;
    char idt[PTC_UUID_STRLEN + 1] = "";
    if (sid)
        ptc_uuid_format(sid, idt);
    if (eo->prefix && strncmp(idt, eo->prefix, strlen(eo->prefix)))
        return 0;
    if (eo->json) {
        json_t *o = json_object();
        json_object_set_new(o, "ts_ms", json_integer((json_int_t)ts));
        json_object_set_new(o, "session", sid ? json_string(idt) : json_null());
        json_object_set_new(o, "event", json_string(kind ? kind : ""));
        json_object_set_new(o, "token", token ? json_string(token) : json_null());
        json_object_set_new(o, "peer", peer ? json_string(peer) : json_null());
        json_object_set_new(o, "detail", detail ? json_string(detail) : json_null());
        char *txt = json_dumps(o, JSON_COMPACT);
        printf("%s\n", txt ? txt : "{}");
        free(txt);
        json_decref(o);
        return 0;
    }
    char t[32];
    fmt_time(ts, t, sizeof t);
    printf("%s %-8.8s %-10s token=%s peer=%s %s\n", t, sid ? idt : "-", kind ? kind : "",
           token ? token : "-", peer ? peer : "-", detail ? detail : "");
    return 0;
}

static int cmd_events(int argc, char **argv)
{
    struct cli o = {0};
    if (cli_parse(&o, argc, argv, false) < 0) {
        free(o.data);
        return 2;
    }
    struct store *st = cli_store(&o);
    if (!st) {
        free(o.data);
        return 1;
    }
    struct events_out eo = {.json = o.json, .prefix = o.session};
    int rc = store_events(st, NULL, print_event, &eo);
    if (rc < 0)
        fprintf(stderr, "ptyrelay: cannot read the audit trail\n");
    store_close(st);
    free(o.data);
    return rc < 0 ? 1 : 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
        printf("ptyrelay %s (PTC1 version %d)\n", PTYRELAY_VERSION, PTC_VERSION);
        return 0;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "serve"))
        return serve(argc - 1, argv + 1);
    if (!strcmp(argv[1], "token"))
        return cmd_token(argc - 2, argv + 2);
    if (!strcmp(argv[1], "events"))
        return cmd_events(argc - 2, argv + 2);
    fprintf(stderr, "ptyrelay: unknown command '%s' (see ptyrelay --help)\n", argv[1]);
    return 2;
}
