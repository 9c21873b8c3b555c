/*
 * cmd_ls: `ptcat ls [--json]`. A table for people (id prefix, name, state, exit, size, clients,
 * attention, age, command) or, with --json, the info maps as a JSON array for scripts.
 */
#include <getopt.h> /* optind */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "ptcat.h"

static const char ls_help[] =
    "usage: ptcat ls [--json]\n"
    "Lists the relay's sessions. --json prints an array of info objects.\n";

static void fmt_age(uint64_t created_ms, char *out, size_t cap)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t now = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
    uint64_t s = now > created_ms ? (now - created_ms) / 1000 : 0;
    if (s < 60)
        snprintf(out, cap, "%llus", (unsigned long long)s);
    else if (s < 3600)
        snprintf(out, cap, "%llum", (unsigned long long)(s / 60));
    else if (s < 86400)
        snprintf(out, cap, "%lluh", (unsigned long long)(s / 3600));
    else
        snprintf(out, cap, "%llud", (unsigned long long)(s / 86400));
}

static void fmt_exit(const struct ptc_info *i, char *out, size_t cap)
{
    char sig[16];
    if (i->has & PTC_HAS_EXIT_CODE)
        snprintf(out, cap, "%d", i->exit_code);
    else if (i->has & PTC_HAS_SIGNO)
        snprintf(out, cap, "SIG%s", ptc_signal_name(i->signo, sig));
    else
        snprintf(out, cap, "-");
}

static void fmt_cmd(const struct ptc_info *i, char *out, size_t cap)
{
    size_t o = 0;
    out[0] = 0;
    for (uint32_t k = 0; k < i->argc && o + 1 < cap; k++) {
        int n = snprintf(out + o, cap - o, "%s%.*s", k ? " " : "", (int)i->argv[k].n, i->argv[k].p);
        if (n < 0)
            break;
        o += (size_t)n;
        if (o >= cap)
            o = cap - 1;
    }
    for (char *c = out; *c; c++)
        if ((unsigned char)*c < 0x20)
            *c = '?';
}

/* `ptcat ls`. */
int cmd_ls(struct ptcat *p, int argc, char **argv)
{
    bool json;
    int done = jsonout_opts("ls", ls_help, argc, argv, &json);
    if (done >= 0)
        return done;
    if (optind < argc)
        return ptcat_usage("ls", "unexpected argument '%s'", argv[optind]);

    struct ptc_client_reply rep;
    int rc = resolve_list(p, &rep);
    if (rc)
        return rc;
    const struct ptc_reply *r = &rep.r;
    if (json) {
        json_t *a = json_array();
        for (uint32_t i = 0; i < r->nsessions; i++)
            json_array_append_new(a, jsonout_info(&r->sessions[i]));
        ptc_client_reply_free(&rep);
        return jsonout_print(a);
    }
    /* Column widths from the content; the command takes what is left. */
    int wname = 4, wstate = 5;
    for (uint32_t i = 0; i < r->nsessions; i++) {
        const struct ptc_info *in = &r->sessions[i];
        int n = (int)(in->name.n > 24 ? 24 : in->name.n);
        if (n > wname)
            wname = n;
        n = (int)strlen(ptc_state_name(in->state));
        if (n > wstate)
            wstate = n;
    }
    printf("%-8s  %-*s  %-*s  %-6s  %-9s  %-7s  %-9s  %-4s  %s\n", "ID", wname, "NAME", wstate,
           "STATE", "EXIT", "SIZE", "CLIENTS", "ATTENTION", "AGE", "COMMAND");
    for (uint32_t i = 0; i < r->nsessions; i++) {
        const struct ptc_info *in = &r->sessions[i];
        char id[PTC_UUID_STRLEN + 1], ex[24], size[24], age[16], cmd[256], name[32];
        ptc_uuid_format(&in->id, id);
        fmt_exit(in, ex, sizeof ex);
        snprintf(size, sizeof size, "%ux%u", in->cols, in->rows);
        fmt_age(in->created_ms, age, sizeof age);
        fmt_cmd(in, cmd, sizeof cmd);
        if (in->name.n)
            snprintf(name, sizeof name, "%.*s", (int)(in->name.n > 24 ? 24 : in->name.n), in->name.p);
        else
            snprintf(name, sizeof name, "-");
        printf("%.8s  %-*s  %-*s  %-6s  %-9s  %-7u  %-9s  %-4s  %s\n", id, wname, name, wstate,
               ptc_state_name(in->state), ex, size, in->clients, ptc_attention_name(in->attention),
               age, cmd);
    }
    ptc_client_reply_free(&rep);
    return fflush(stdout) == 0 ? PTCAT_OK : PTCAT_UNMET;
}
