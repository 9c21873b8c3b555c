/*
 * main: the `ptcat` command line. Global options (--url, --token, --token-file, --ca, --insecure)
 * come before the command; the command table maps each name to its handler, which parses its own
 * flags and returns the exit code. The terminal guard (term.c) is installed before anything else
 * so every exit path leaves the terminal as it was found.
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ptcat.h"

struct cmd_entry {
    const char *name;
    int (*fn)(struct ptcat *p, int argc, char **argv);
    const char *summary;
};

static const struct cmd_entry cmd_table[] = {
    {"ls", cmd_ls, "list sessions"},
    {"new", cmd_new, "start a session and print its id"},
    {"attach", cmd_attach, "make this terminal the session's terminal"},
    {"send", cmd_send, "send input without attaching"},
    {"logs", cmd_logs, "print output (--follow streams it)"},
    {"wait", cmd_wait, "wait for exit, idleness or a pattern"},
    {"kill", cmd_kill, "end the program: TERM, then KILL after a grace"},
    {"signal", cmd_signal, "send a signal to the program"},
    {"rm", cmd_rm, "remove an ended session and its output"},
    {"info", cmd_info, "show one session"},
    {NULL, NULL, NULL},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: ptcat [--url URL] [--token T | --token-file F] [--ca FILE] [--insecure]\n"
               "             COMMAND [ARGS...]\n\n"
               "commands:\n");
    for (const struct cmd_entry *e = cmd_table; e->name; e++)
        fprintf(f, "  %-8s %s\n", e->name, e->summary);
    fprintf(f, "\n"
               "URL is ws://HOST:PORT/ptc1, wss://... or unix:PATH; default $PTYRELAY_URL, else\n"
               "%s. The token defaults to $PTYRELAY_TOKEN, else the admin.token file\n"
               "in $XDG_STATE_HOME/ptyrelay (or ~/.local/state/ptyrelay).\n"
               "Run `ptcat COMMAND --help` for a command's options; see ptcat(1).\n"
               "Exit: 0 ok, 1 not met/timeout, 2 usage, 3 connection or auth, 4 refused by the relay.\n",
            PTCAT_DEFAULT_URL);
}

/* Prints "ptcat: <message>" to stderr. */
void ptcat_err(const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    out_status("%s", buf);
}

/* Prints a usage error for cmd; returns PTCAT_USAGE. */
int ptcat_usage(const char *cmd, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    fprintf(stderr, "ptcat %s: %s (see ptcat %s --help)\n", cmd, buf, cmd);
    return PTCAT_USAGE;
}

/* Parses an unsigned decimal number. 0 or -1. */
int ptcat_parse_u64(const char *s, uint64_t *out)
{
    if (!s || !*s || *s == '-' || *s == '+')
        return -1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end)
        return -1;
    *out = v;
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"url", required_argument, NULL, 'u'},
        {"token", required_argument, NULL, 't'},
        {"token-file", required_argument, NULL, 'T'},
        {"ca", required_argument, NULL, 'c'},
        {"insecure", no_argument, NULL, 'k'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    struct ptcat p;
    memset(&p, 0, sizeof p);
    term_init();
    opterr = 0;
    int o;
    /* '+': stop at the command name; its flags are its own. */
    while ((o = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
        switch (o) {
        case 'u':
            p.url_opt = optarg;
            break;
        case 't':
            p.token_opt = optarg;
            break;
        case 'T':
            p.token_file_opt = optarg;
            break;
        case 'c':
            p.ca_file = optarg;
            break;
        case 'k':
            p.insecure = true;
            break;
        case 'h':
            usage(stdout);
            return PTCAT_OK;
        case 'V':
            printf("%s\n", PTCAT_NAME);
            return PTCAT_OK;
        default:
            fprintf(stderr, "ptcat: unknown or incomplete option '%s'\n", argv[optind - 1]);
            usage(stderr);
            return PTCAT_USAGE;
        }
    }
    if (optind >= argc) {
        usage(stderr);
        return PTCAT_USAGE;
    }
    const char *name = argv[optind];
    const struct cmd_entry *e = cmd_table;
    while (e->name && strcmp(e->name, name))
        e++;
    if (!e->name) {
        fprintf(stderr, "ptcat: unknown command '%s'\n", name);
        usage(stderr);
        return PTCAT_USAGE;
    }
    int cargc = argc - optind;
    char **cargv = argv + optind;
    optind = 0; /* reset getopt for the command (0 also re-reads GNU extensions) */
    int rc = e->fn(&p, cargc, cargv);
    endpoint_close(&p);
    free(p.url);
    if (p.token) {
        memset(p.token, 0, strlen(p.token));
        free(p.token);
    }
    fflush(stdout);
    term_restore();
    return rc;
}
