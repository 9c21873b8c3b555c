/*
 * main: the `ptyrelay` command. `serve` runs the daemon; `--version` and `--help` answer at once.
 * Everything else is in the modules; this file only wires them together in order and tears them
 * down in reverse.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "relay.h"

extern char **environ;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: ptyrelay serve [options]\n"
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
            "  --log-level L           error, warn, info (default) or debug\n");
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
        log_warn("running as root: every session will be a root shell");
    copy_base_env(&r);
    bool created;
    int rc = auth_init(&r, &created);
    if (rc < 0) {
        log_error("data dir %s: cannot set up the admin token: %s", r.cfg.data_dir, strerror(-rc));
        config_free(&r.cfg);
        return 1;
    }
    if (created)
        log_info("created an admin token in %s/admin.token (mode 0600)", r.cfg.data_dir);
    else
        log_info("admin token: %s/admin.token", r.cfg.data_dir);
    int status = 0;
    if (server_init(&r) == 0)
        server_run(&r);
    else
        status = 1;
    /* Destroying the context closes every connection and PTY; then free what is left. */
    server_free(&r);
    while (r.sessions) {
        struct session *s = r.sessions;
        r.sessions = s->next;
        session_free(s);
    }
    while (r.conns) {
        struct conn *c = r.conns;
        r.conns = c->next;
        conn_free(c);
    }
    relay_reap(&r);
    auth_free(&r);
    for (int i = 0; i < r.nbase_env; i++)
        free(r.base_env[i]);
    free(r.base_env);
    if (!status)
        log_info("stopped");
    config_free(&r.cfg);
    return status;
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
    fprintf(stderr, "ptyrelay: unknown command '%s' (see ptyrelay --help)\n", argv[1]);
    return 2;
}
