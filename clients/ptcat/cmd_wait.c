/*
 * cmd_wait: `ptcat wait ID|NAME --exit | --idle MS | --match RE [--timeout MS]`. One `wait` op:
 * exit 0 when the condition is met, 1 on timeout (or when the program ended first and the
 * condition was not its exit). With --exit it prints how the program ended: its exit status as
 * a number, or `signal NAME`, `failed`, `lost`.
 */
#include <getopt.h>
#include <stdio.h>

#include "ptcat.h"

static const char wait_help[] =
    "usage: ptcat wait ID|NAME --exit | --idle MS | --match RE [--timeout MS]\n"
    "Waits until the program exits (and prints its exit status), until the session has been\n"
    "quiet for MS milliseconds, or until its recent output (escapes removed) matches the POSIX\n"
    "extended regex RE. Exit 0 when met, 1 on timeout or when the program ended first.\n";

/* Prints how the session's program ended. */
static int print_exit(struct ptcat *p, const ptc_uuid *id)
{
    struct ptc_request rq = {.op = PTC_OP_INFO};
    struct ptc_client_reply rep;
    int rc = endpoint_call(p, id, &rq, &rep, PTCAT_CALL_TIMEOUT_MS);
    if (!rc) {
        const struct ptc_info *i = &rep.r.info;
        char sig[16];
        if (i->has & PTC_HAS_EXIT_CODE)
            printf("%d\n", i->exit_code);
        else if (i->has & PTC_HAS_SIGNO)
            printf("signal %s\n", ptc_signal_name(i->signo, sig));
        else
            printf("%s\n", ptc_state_name(i->state));
    }
    ptc_client_reply_free(&rep);
    return rc ? rc : (fflush(stdout) == 0 ? PTCAT_OK : PTCAT_UNMET);
}

/* `ptcat wait`. */
int cmd_wait(struct ptcat *p, int argc, char **argv)
{
    static const struct option opts[] = {
        {"exit", no_argument, NULL, 'e'},
        {"idle", required_argument, NULL, 'i'},
        {"match", required_argument, NULL, 'm'},
        {"timeout", required_argument, NULL, 'T'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct ptc_request rq = {.op = PTC_OP_WAIT, .has = PTC_HAS_UNTIL};
    int conds = 0, o;
    uint64_t v;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (o) {
        case 'e':
            rq.until = PTC_UNTIL_EXIT;
            conds++;
            break;
        case 'i':
            if (ptcat_parse_u64(optarg, &v) || !v)
                return ptcat_usage("wait", "--idle wants milliseconds, not '%s'", optarg);
            rq.until = PTC_UNTIL_IDLE;
            rq.idle_ms = v;
            rq.has |= PTC_HAS_IDLE_MS;
            conds++;
            break;
        case 'm':
            rq.until = PTC_UNTIL_MATCH;
            rq.pattern = ptc_str_c(optarg);
            rq.has |= PTC_HAS_PATTERN;
            conds++;
            break;
        case 'T':
            if (ptcat_parse_u64(optarg, &v) || v > 0x7fffffff - PTCAT_CALL_TIMEOUT_MS)
                return ptcat_usage("wait", "--timeout wants milliseconds, not '%s'", optarg);
            rq.timeout_ms = v;
            rq.has |= PTC_HAS_TIMEOUT;
            break;
        case 'h':
            fputs(wait_help, stdout);
            return PTCAT_OK;
        default:
            return ptcat_usage("wait", "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (conds != 1)
        return ptcat_usage("wait", "give exactly one of --exit, --idle MS, --match RE");
    if (argc - optind != 1)
        return ptcat_usage("wait", "expected one session ID or NAME");
    ptc_uuid id;
    int rc = resolve_session(p, argv[optind], &id);
    if (rc)
        return rc;
    struct ptc_client_reply rep;
    /* The relay enforces the timeout; ours only guards against a relay that never answers. */
    int local = rq.timeout_ms ? (int)rq.timeout_ms + PTCAT_CALL_TIMEOUT_MS : -1;
    rc = endpoint_call(p, &id, &rq, &rep, local);
    bool matched = !rc && rep.r.matched;
    int state = rc ? 0 : rep.r.state;
    ptc_client_reply_free(&rep);
    if (rc)
        return rc;
    if (!matched) {
        if (ptc_state_is_ended(state))
            ptcat_err("wait: the program ended (%s) first", ptc_state_name(state));
        else
            ptcat_err("wait: timed out after %llu ms", (unsigned long long)rq.timeout_ms);
        return PTCAT_UNMET;
    }
    if (rq.until == PTC_UNTIL_EXIT)
        return print_exit(p, &id);
    return PTCAT_OK;
}
