/*
 * cmd_kill: `ptcat kill ID|NAME [--grace MS] [--no-wait]`: TERM to the program's process group,
 * KILL after the grace (the relay does both). By default it then waits for the program to be
 * gone, so `ptcat kill x && ptcat rm x` works.
 */
#include <getopt.h>
#include <stdio.h>

#include "ptcat.h"

static const char kill_help[] =
    "usage: ptcat kill ID|NAME [--grace MS] [--no-wait]\n"
    "Sends TERM to the program's process group and KILL after the grace (default 5000 ms),\n"
    "then waits until it has ended (unless --no-wait).\n";

/* `ptcat kill`. */
int cmd_kill(struct ptcat *p, int argc, char **argv)
{
    static const struct option opts[] = {
        {"grace", required_argument, NULL, 'g'},
        {"no-wait", no_argument, NULL, 'n'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct ptc_request rq = {.op = PTC_OP_KILL};
    bool wait = true;
    int o;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (o) {
        case 'g':
            if (ptcat_parse_u64(optarg, &rq.grace_ms) || rq.grace_ms > 3600000)
                return ptcat_usage("kill", "--grace wants milliseconds, not '%s'", optarg);
            rq.has |= PTC_HAS_GRACE;
            break;
        case 'n':
            wait = false;
            break;
        case 'h':
            fputs(kill_help, stdout);
            return PTCAT_OK;
        default:
            return ptcat_usage("kill", "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (argc - optind != 1)
        return ptcat_usage("kill", "expected one session ID or NAME");
    uint64_t grace = rq.has & PTC_HAS_GRACE ? rq.grace_ms : 5000;
    ptc_uuid id;
    int rc = resolve_session(p, argv[optind], &id);
    if (rc)
        return rc;
    struct ptc_client_reply rep;
    rc = endpoint_call(p, &id, &rq, &rep, PTCAT_CALL_TIMEOUT_MS);
    ptc_client_reply_free(&rep);
    if (rc || !wait)
        return rc;
    struct ptc_request wq = {.op = PTC_OP_WAIT, .has = PTC_HAS_UNTIL | PTC_HAS_TIMEOUT,
                             .until = PTC_UNTIL_EXIT, .timeout_ms = grace + 10000};
    rc = endpoint_call(p, &id, &wq, &rep, (int)(grace + 10000 + PTCAT_CALL_TIMEOUT_MS));
    bool matched = !rc && rep.r.matched;
    ptc_client_reply_free(&rep);
    if (rc)
        return rc;
    if (!matched) {
        ptcat_err("kill: the program is still running %llu ms after the grace",
                  (unsigned long long)10000);
        return PTCAT_UNMET;
    }
    return PTCAT_OK;
}
