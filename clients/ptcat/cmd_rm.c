/*
 * cmd_rm: `ptcat rm ID|NAME [--force]`: removes an ended session, its record and its output.
 * The relay refuses a running one; --force kills it first (TERM, KILL after 2 s) and waits.
 */
#include <getopt.h>
#include <stdio.h>

#include "ptcat.h"

static const char rm_help[] =
    "usage: ptcat rm ID|NAME [--force]\n"
    "Removes an ended session and its output. --force kills a running one first.\n";

/* `ptcat rm`. */
int cmd_rm(struct ptcat *p, int argc, char **argv)
{
    static const struct option opts[] = {
        {"force", no_argument, NULL, 'f'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    bool force = false;
    int o;
    while ((o = getopt_long(argc, argv, "fh", opts, NULL)) != -1) {
        if (o == 'f')
            force = true;
        else if (o == 'h') {
            fputs(rm_help, stdout);
            return PTCAT_OK;
        } else
            return ptcat_usage("rm", "unknown or incomplete option '%s'", argv[optind - 1]);
    }
    if (argc - optind != 1)
        return ptcat_usage("rm", "expected one session ID or NAME");
    ptc_uuid id;
    int rc = resolve_session(p, argv[optind], &id);
    if (rc)
        return rc;
    struct ptc_client_reply rep;
    if (force) {
        struct ptc_request iq = {.op = PTC_OP_INFO};
        rc = endpoint_call(p, &id, &iq, &rep, PTCAT_CALL_TIMEOUT_MS);
        bool running = !rc && !ptc_state_is_ended(rep.r.info.state);
        ptc_client_reply_free(&rep);
        if (rc)
            return rc;
        if (running) {
            struct ptc_request kq = {.op = PTC_OP_KILL, .has = PTC_HAS_GRACE, .grace_ms = 2000};
            rc = endpoint_call(p, &id, &kq, &rep, PTCAT_CALL_TIMEOUT_MS);
            ptc_client_reply_free(&rep);
            /* "gone": it ended on its own meanwhile, which is what we want */
            struct ptc_request wq = {.op = PTC_OP_WAIT, .has = PTC_HAS_UNTIL | PTC_HAS_TIMEOUT,
                                     .until = PTC_UNTIL_EXIT, .timeout_ms = 12000};
            rc = endpoint_call(p, &id, &wq, &rep, 12000 + PTCAT_CALL_TIMEOUT_MS);
            ptc_client_reply_free(&rep);
            if (rc)
                return rc;
        }
    }
    struct ptc_request rq = {.op = PTC_OP_REMOVE};
    rc = endpoint_call(p, &id, &rq, &rep, PTCAT_CALL_TIMEOUT_MS);
    ptc_client_reply_free(&rep);
    return rc;
}
