/*
 * cmd_signal: `ptcat signal ID|NAME SIG`: one signal to the program. SIG is a name the relay
 * accepts (INT TERM HUP KILL STOP CONT WINCH QUIT USR1 USR2), with or without "SIG", any case.
 */
#include <ctype.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "ptcat.h"

static const char signal_help[] =
    "usage: ptcat signal ID|NAME SIG\n"
    "Sends SIG (INT TERM HUP KILL STOP CONT WINCH QUIT USR1 USR2; SIGINT and int work too)\n"
    "to the session's program.\n";

/* `ptcat signal`. */
int cmd_signal(struct ptcat *p, int argc, char **argv)
{
    static const struct option opts[] = {
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int o;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (o == 'h') {
            fputs(signal_help, stdout);
            return PTCAT_OK;
        }
        return ptcat_usage("signal", "unknown or incomplete option '%s'", argv[optind - 1]);
    }
    if (argc - optind != 2)
        return ptcat_usage("signal", "expected a session ID or NAME and a signal name");
    const char *sig = argv[optind + 1];
    if (!strncasecmp(sig, "SIG", 3))
        sig += 3;
    char name[16];
    size_t n = strlen(sig);
    if (!n || n >= sizeof name)
        return ptcat_usage("signal", "'%s' is not a signal name", argv[optind + 1]);
    for (size_t i = 0; i <= n; i++)
        name[i] = (char)toupper((unsigned char)sig[i]);
    if (ptc_signal_from_name(name, n) < 0)
        return ptcat_usage("signal", "'%s' is not one of INT TERM HUP KILL STOP CONT WINCH QUIT USR1 USR2",
                           argv[optind + 1]);
    ptc_uuid id;
    int rc = resolve_session(p, argv[optind], &id);
    if (rc)
        return rc;
    struct ptc_request rq = {.op = PTC_OP_SIGNAL, .has = PTC_HAS_SIGNAL, .signal = ptc_str_c(name)};
    struct ptc_client_reply rep;
    rc = endpoint_call(p, &id, &rq, &rep, PTCAT_CALL_TIMEOUT_MS);
    ptc_client_reply_free(&rep);
    return rc;
}
