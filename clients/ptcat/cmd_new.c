/*
 * cmd_new: `ptcat new [--name N] [--cwd D] [--env K=V]... [--size COLSxROWS] [--idle-ttl S]
 * [--attach] [-- CMD ARGS...]`: opens a session, prints its id on stdout and, with --attach,
 * becomes its terminal at once (from offset 0, so not a byte of its start is missed).
 */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ptcat.h"

#define ENV_MAX 256

static const char new_help[] =
    "usage: ptcat new [--name N] [--cwd DIR] [--env K=V]... [--size COLSxROWS]\n"
    "                 [--idle-ttl SECONDS] [--attach] [-- CMD ARGS...]\n"
    "Starts CMD (default: the relay's login shell) in a new session and prints its id.\n"
    "  --name N        a name usable wherever an id is\n"
    "  --cwd DIR       working directory (relative to this shell's directory)\n"
    "  --env K=V       add to the relay's environment (repeatable)\n"
    "  --size CxR      terminal size (default: this terminal's with --attach, else 80x24)\n"
    "  --idle-ttl S    let the relay reap the session after S idle seconds (0: never)\n"
    "  --attach        attach right away (see ptcat attach --help)\n";

static int parse_size(const char *s, uint16_t *cols, uint16_t *rows)
{
    unsigned c, r;
    char tail;
    if (sscanf(s, "%ux%u%c", &c, &r, &tail) != 2 || !c || !r || c > 4096 || r > 4096)
        return -1;
    *cols = (uint16_t)c;
    *rows = (uint16_t)r;
    return 0;
}

/* `ptcat new`. */
int cmd_new(struct ptcat *p, int argc, char **argv)
{
    static const struct option opts[] = {
        {"name", required_argument, NULL, 'n'},
        {"cwd", required_argument, NULL, 'C'},
        {"env", required_argument, NULL, 'e'},
        {"size", required_argument, NULL, 's'},
        {"idle-ttl", required_argument, NULL, 'i'},
        {"attach", no_argument, NULL, 'a'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct ptc_request rq = {.op = PTC_OP_OPEN};
    static struct ptc_str env_k[ENV_MAX], env_v[ENV_MAX];
    char cwdbuf[PATH_MAX * 2];
    bool attach = false;
    int o;
    uint64_t v;
    /* '+': stop at the command, whose own flags are not ours */
    while ((o = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
        switch (o) {
        case 'n':
            if (!*optarg)
                return ptcat_usage("new", "--name must not be empty");
            rq.name = ptc_str_c(optarg);
            rq.has |= PTC_HAS_NAME;
            break;
        case 'C':
            if (optarg[0] == '/') {
                snprintf(cwdbuf, sizeof cwdbuf, "%s", optarg);
            } else {
                char here[PATH_MAX];
                if (!getcwd(here, sizeof here))
                    return ptcat_usage("new", "cannot resolve --cwd %s: no current directory", optarg);
                snprintf(cwdbuf, sizeof cwdbuf, "%s/%s", here, optarg);
            }
            rq.cwd = ptc_str_c(cwdbuf);
            rq.has |= PTC_HAS_CWD;
            break;
        case 'e': {
            const char *eq = strchr(optarg, '=');
            if (!eq || eq == optarg)
                return ptcat_usage("new", "--env wants K=V, not '%s'", optarg);
            if (rq.envc >= ENV_MAX)
                return ptcat_usage("new", "at most %d --env", ENV_MAX);
            env_k[rq.envc] = (struct ptc_str){optarg, (size_t)(eq - optarg)};
            env_v[rq.envc] = ptc_str_c(eq + 1);
            rq.envc++;
            rq.has |= PTC_HAS_ENV;
            break;
        }
        case 's':
            if (parse_size(optarg, &rq.cols, &rq.rows))
                return ptcat_usage("new", "--size wants COLSxROWS (1-4096 each), not '%s'", optarg);
            rq.has |= PTC_HAS_COLS | PTC_HAS_ROWS;
            break;
        case 'i':
            if (ptcat_parse_u64(optarg, &v))
                return ptcat_usage("new", "--idle-ttl wants seconds, not '%s'", optarg);
            rq.idle_ttl_s = v;
            rq.has |= PTC_HAS_IDLE_TTL;
            break;
        case 'a':
            attach = true;
            break;
        case 'h':
            fputs(new_help, stdout);
            return PTCAT_OK;
        default:
            return ptcat_usage("new", "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    rq.env_keys = env_k;
    rq.env_vals = env_v;
    struct ptc_str *args = NULL;
    if (optind < argc) {
        rq.argc = (uint32_t)(argc - optind);
        args = calloc(rq.argc, sizeof *args);
        if (!args)
            return PTCAT_UNMET;
        for (uint32_t i = 0; i < rq.argc; i++)
            args[i] = ptc_str_c(argv[optind + (int)i]);
        rq.argv = args;
        rq.has |= PTC_HAS_ARGV;
    }
    if (attach && !(rq.has & PTC_HAS_COLS) && isatty(0) &&
        term_size(0, &rq.cols, &rq.rows) == 0)
        rq.has |= PTC_HAS_COLS | PTC_HAS_ROWS;

    struct ptc_client_reply rep;
    int rc = endpoint_call(p, NULL, &rq, &rep, PTCAT_CALL_TIMEOUT_MS);
    free(args);
    if (rc) {
        ptc_client_reply_free(&rep);
        return rc;
    }
    ptc_uuid id = rep.r.session;
    ptc_client_reply_free(&rep);
    char idt[PTC_UUID_STRLEN + 1];
    ptc_uuid_format(&id, idt);
    printf("%s\n", idt);
    if (fflush(stdout) != 0)
        return PTCAT_UNMET;
    if (!attach)
        return PTCAT_OK;
    char label[64];
    if (rq.has & PTC_HAS_NAME)
        snprintf(label, sizeof label, "%.*s", (int)rq.name.n, rq.name.p);
    else
        snprintf(label, sizeof label, "%.8s", idt);
    return cmd_attach_id(p, &id, label, true);
}
