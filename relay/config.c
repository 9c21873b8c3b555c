/*
 * config: the daemon's settings, their defaults and the `serve` flags. Numbers are checked for
 * range here so the rest of the relay can trust them.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "relay.h"

/* The default data dir: $XDG_STATE_HOME/ptyrelay, else ~/.local/state/ptyrelay, else ./var. */
char *config_default_data_dir(void)
{
    char buf[4096];
    const char *x = getenv("XDG_STATE_HOME");
    const char *h = getenv("HOME");
    if (x && *x)
        snprintf(buf, sizeof buf, "%s/ptyrelay", x);
    else if (h && *h)
        snprintf(buf, sizeof buf, "%s/.local/state/ptyrelay", h);
    else
        snprintf(buf, sizeof buf, "./var");
    return xstrdup(buf);
}

/* Fills the defaults. */
void config_defaults(struct config *c)
{
    memset(c, 0, sizeof *c);
    c->listen = xstrdup("127.0.0.1:7373");
    c->data_dir = config_default_data_dir();
    c->stall_timeout_s = 30;
    c->ring_max = 4u << 20;
    c->max_sessions = 4096;
    c->max_connections = 1024;
    c->max_attach_per_conn = 4096;
    c->idle_after_ms = 30000;
    c->attention_after_ms = 120000;
    c->max_frame = PTC_MAX_FRAME_DEFAULT;
    c->input_queue_max = 1u << 20;
    c->log_level = LOG_INFO;
    c->max_conns_per_peer = 64;
    c->login_fail_limit = 10;
    c->max_argv = ptc_limits_default.max_argv;
    c->max_env = ptc_limits_default.max_env;
    c->max_arg_len = ptc_limits_default.max_arg_len;
    c->log_max = 64u << 20;
    c->log_total_max = 1ull << 30;
    c->db_max_bytes = 0;
}

static void list_free(char ***list)
{
    for (char **p = *list; p && *p; p++)
        free(*p);
    free(*list);
    *list = NULL;
}

static void list_add(char ***list, const char *v)
{
    size_t n = 0;
    while (*list && (*list)[n])
        n++;
    *list = xrealloc(*list, (n + 2) * sizeof **list);
    (*list)[n] = xstrdup(v);
    (*list)[n + 1] = NULL;
}

/* Whether name is in the NULL-terminated list. */
bool config_list_has(char *const *list, const char *name)
{
    for (; list && *list; list++)
        if (!strcmp(*list, name))
            return true;
    return false;
}

/* Frees the strings. */
void config_free(struct config *c)
{
    free(c->listen);
    free(c->data_dir);
    free(c->tls_cert);
    free(c->tls_key);
    c->listen = c->data_dir = c->tls_cert = c->tls_key = NULL;
    list_free(&c->allow_origin);
    list_free(&c->allow_host);
    list_free(&c->allow_env);
}

static int parse_u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
    char *end;
    errno = 0;
    if (!*s || *s == '-')
        return -1;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

enum {
    O_LISTEN = 1,
    O_DATA,
    O_STALL,
    O_RING,
    O_MAXSESS,
    O_MAXCONN,
    O_IDLE,
    O_ATT,
    O_LOGLEVEL,
    O_MAXFRAME,
    O_MAXATTACH,
    O_INQ,
    O_TLSCERT,
    O_TLSKEY,
    O_INSECURE,
    O_COMPRESS,
    O_ALLOW_ORIGIN,
    O_ALLOW_HOST,
    O_ALLOW_ENV,
    O_MAXCONNPEER,
    O_LOGINFAIL,
    O_MAXARGV,
    O_MAXENV,
    O_MAXARGLEN,
    O_LOGMAX,
    O_LOGTOTAL,
    O_DBMAX,
    O_NOLOG,
};

static bool valid_env_name_c(const char *s)
{
    if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || *s == '_'))
        return false;
    for (s++; *s; s++)
        if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
              *s == '_'))
            return false;
    return true;
}

/* Parses the `serve` flags. */
int config_parse_serve(struct config *c, int argc, char **argv, char *err, size_t errlen)
{
    static const struct option opts[] = {
        {"listen", required_argument, NULL, O_LISTEN},
        {"data", required_argument, NULL, O_DATA},
        {"stall-timeout", required_argument, NULL, O_STALL},
        {"ring-max", required_argument, NULL, O_RING},
        {"max-sessions", required_argument, NULL, O_MAXSESS},
        {"max-connections", required_argument, NULL, O_MAXCONN},
        {"idle-after", required_argument, NULL, O_IDLE},
        {"attention-after", required_argument, NULL, O_ATT},
        {"log-level", required_argument, NULL, O_LOGLEVEL},
        {"max-frame", required_argument, NULL, O_MAXFRAME},
        {"max-attach", required_argument, NULL, O_MAXATTACH},
        {"input-queue", required_argument, NULL, O_INQ},
        {"log-max", required_argument, NULL, O_LOGMAX},
        {"log-total-max", required_argument, NULL, O_LOGTOTAL},
        {"db-max-bytes", required_argument, NULL, O_DBMAX},
        {"no-log", no_argument, NULL, O_NOLOG},
        {"tls-cert", required_argument, NULL, O_TLSCERT},
        {"tls-key", required_argument, NULL, O_TLSKEY},
        {"insecure-no-tls", no_argument, NULL, O_INSECURE},
        {"compress", no_argument, NULL, O_COMPRESS},
        {"allow-origin", required_argument, NULL, O_ALLOW_ORIGIN},
        {"allow-host", required_argument, NULL, O_ALLOW_HOST},
        {"allow-env", required_argument, NULL, O_ALLOW_ENV},
        {"max-connections-per-peer", required_argument, NULL, O_MAXCONNPEER},
        {"login-fail-limit", required_argument, NULL, O_LOGINFAIL},
        {"max-argv", required_argument, NULL, O_MAXARGV},
        {"max-env", required_argument, NULL, O_MAXENV},
        {"max-arg-len", required_argument, NULL, O_MAXARGLEN},
        {NULL, 0, NULL, 0},
    };
    optind = 1;
    opterr = 0;
    int o;
    uint64_t v;
    int idx = -1;
    while ((o = getopt_long(argc, argv, "", opts, &idx)) != -1) {
        /* Name the flag itself in messages (argv[optind - 1] may be its value). */
        char name[48];
        if (o != '?' && idx >= 0)
            snprintf(name, sizeof name, "--%s", opts[idx].name);
        else
            snprintf(name, sizeof name, "%s", optind > 0 && optind <= argc ? argv[optind - 1] : "?");
        idx = -1;
        switch (o) {
        case O_LISTEN:
            free(c->listen);
            c->listen = xstrdup(optarg);
            break;
        case O_DATA:
            free(c->data_dir);
            c->data_dir = xstrdup(optarg);
            break;
        case O_STALL:
            if (parse_u64(optarg, 1, 86400, &v))
                goto bad;
            c->stall_timeout_s = (uint32_t)v;
            break;
        case O_RING:
            if (parse_u64(optarg, 4096, 1ull << 32, &v))
                goto bad;
            c->ring_max = v;
            break;
        case O_MAXSESS:
            if (parse_u64(optarg, 1, 1000000, &v))
                goto bad;
            c->max_sessions = (uint32_t)v;
            break;
        case O_MAXCONN:
            if (parse_u64(optarg, 1, 1000000, &v))
                goto bad;
            c->max_connections = (uint32_t)v;
            break;
        case O_IDLE:
            if (parse_u64(optarg, 1, UINT32_MAX, &v))
                goto bad;
            c->idle_after_ms = v;
            break;
        case O_ATT:
            if (parse_u64(optarg, 1, UINT32_MAX, &v))
                goto bad;
            c->attention_after_ms = v;
            break;
        case O_LOGLEVEL: {
            int l = log_level_from_name(optarg);
            if (l < 0)
                goto bad;
            c->log_level = l;
            break;
        }
        case O_MAXFRAME:
            if (parse_u64(optarg, 1024, 64u << 20, &v))
                goto bad;
            c->max_frame = (uint32_t)v;
            break;
        case O_MAXATTACH:
            if (parse_u64(optarg, 1, 1000000, &v))
                goto bad;
            c->max_attach_per_conn = (uint32_t)v;
            break;
        case O_INQ:
            if (parse_u64(optarg, 4096, 1u << 30, &v))
                goto bad;
            c->input_queue_max = (uint32_t)v;
            break;
        case O_TLSCERT:
            free(c->tls_cert);
            c->tls_cert = xstrdup(optarg);
            break;
        case O_TLSKEY:
            free(c->tls_key);
            c->tls_key = xstrdup(optarg);
            break;
        case O_INSECURE:
            c->insecure_no_tls = true;
            break;
        case O_COMPRESS:
            c->compress = true;
            break;
        case O_ALLOW_ORIGIN:
            if (!*optarg || strchr(optarg, ' ') || (strcmp(optarg, "null") && !strstr(optarg, "://")))
                goto bad;
            list_add(&c->allow_origin, optarg);
            break;
        case O_ALLOW_HOST:
            if (!*optarg || strchr(optarg, '/') || strchr(optarg, ' '))
                goto bad;
            list_add(&c->allow_host, optarg);
            break;
        case O_ALLOW_ENV:
            if (!valid_env_name_c(optarg))
                goto bad;
            list_add(&c->allow_env, optarg);
            break;
        case O_MAXCONNPEER:
            if (parse_u64(optarg, 1, 1000000, &v))
                goto bad;
            c->max_conns_per_peer = (uint32_t)v;
            break;
        case O_LOGINFAIL:
            if (parse_u64(optarg, 1, 100000, &v))
                goto bad;
            c->login_fail_limit = (uint32_t)v;
            break;
        case O_MAXARGV:
            if (parse_u64(optarg, 1, 4096, &v))
                goto bad;
            c->max_argv = (uint32_t)v;
            break;
        case O_MAXENV:
            if (parse_u64(optarg, 0, 4096, &v))
                goto bad;
            c->max_env = (uint32_t)v;
            break;
        case O_MAXARGLEN:
            if (parse_u64(optarg, 16, 65536, &v))
                goto bad;
            c->max_arg_len = (uint32_t)v;
            break;
        case O_LOGMAX:
            if (parse_u64(optarg, 0, 1ull << 40, &v))
                goto bad;
            c->log_max = v;
            break;
        case O_LOGTOTAL:
            if (parse_u64(optarg, 0, 1ull << 50, &v))
                goto bad;
            c->log_total_max = v;
            break;
        case O_DBMAX:
            if (parse_u64(optarg, 65536, 1ull << 50, &v))
                goto bad;
            c->db_max_bytes = v;
            break;
        case O_NOLOG:
            c->no_log = true;
            break;
        case '?':
        default:
            snprintf(err, errlen, "unknown or incomplete option '%s' (see ptyrelay --help)", name);
            return -1;
        bad:
            snprintf(err, errlen, "invalid value '%s' for %s", optarg, name);
            return -1;
        }
    }
    if (optind < argc) {
        snprintf(err, errlen, "unexpected argument '%s'", argv[optind]);
        return -1;
    }
    if (!c->tls_cert != !c->tls_key) {
        snprintf(err, errlen, "--tls-cert and --tls-key go together");
        return -1;
    }
    if (c->attention_after_ms < c->idle_after_ms) {
        snprintf(err, errlen, "--attention-after must not be shorter than --idle-after");
        return -1;
    }
    return 0;
}
