/*
 * cmd_info: `ptcat info ID|NAME [--json]`: one session's info map, as `key: value` lines for
 * people or as one JSON object.
 */
#include <getopt.h> /* optind */
#include <stdio.h>

#include "ptcat.h"

static const char info_help[] =
    "usage: ptcat info ID|NAME [--json]\n"
    "Shows one session (ID may be a name or a unique id prefix). --json prints one object.\n";

/* `ptcat info`. */
int cmd_info(struct ptcat *p, int argc, char **argv)
{
    bool json;
    int done = jsonout_opts("info", info_help, argc, argv, &json);
    if (done >= 0)
        return done;
    if (argc - optind != 1)
        return ptcat_usage("info", "expected one session ID or NAME");
    ptc_uuid id;
    int rc = resolve_session(p, argv[optind], &id);
    if (rc)
        return rc;
    struct ptc_request rq = {.op = PTC_OP_INFO};
    struct ptc_client_reply rep;
    rc = endpoint_call(p, &id, &rq, &rep, PTCAT_CALL_TIMEOUT_MS);
    if (rc) {
        ptc_client_reply_free(&rep);
        return rc;
    }
    json_t *v = jsonout_info(&rep.r.info);
    ptc_client_reply_free(&rep);
    if (json)
        return jsonout_print(v);
    /* The same fields, as lines: one source of truth for both forms. */
    const char *key;
    json_t *val;
    json_object_foreach(v, key, val)
    {
        printf("%-11s ", key);
        if (json_is_string(val))
            printf("%s\n", json_string_value(val));
        else if (json_is_integer(val))
            printf("%lld\n", (long long)json_integer_value(val));
        else if (json_is_null(val))
            printf("-\n");
        else if (json_is_array(val)) {
            size_t k;
            json_t *e;
            json_array_foreach(val, k, e) printf("%s%s", k ? " " : "", json_string_value(e));
            printf("\n");
        }
    }
    json_decref(v);
    return fflush(stdout) == 0 ? PTCAT_OK : PTCAT_UNMET;
}
