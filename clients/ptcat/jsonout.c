/*
 * jsonout: session infos as JSON for scripts (`ls --json`, `info --json`), built with jansson.
 * Keys follow the PTC1 info map; the id is the text UUID, exit_code and signal are null unless
 * set, and the signal is its name ("TERM"). Also the option parsing of the commands whose only
 * flag is --json.
 */
#include <getopt.h>
#include <stdio.h>

#include "ptcat.h"

/* The options of a command whose only flag is --json. */
int jsonout_opts(const char *cmd, const char *help, int argc, char **argv, bool *json)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    *json = false;
    int o;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (o == 'j')
            *json = true;
        else if (o == 'h') {
            fputs(help, stdout);
            return PTCAT_OK;
        } else
            return ptcat_usage(cmd, "unknown or incomplete option '%s'", argv[optind - 1]);
    }
    return -1;
}

static json_t *jstr(struct ptc_str s) { return json_stringn(s.p ? s.p : "", s.n); }

/* The session info as a JSON object. */
json_t *jsonout_info(const struct ptc_info *i)
{
    char id[PTC_UUID_STRLEN + 1], sig[16];
    ptc_uuid_format(&i->id, id);
    json_t *argv = json_array();
    for (uint32_t k = 0; k < i->argc; k++)
        json_array_append_new(argv, jstr(i->argv[k]));
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(id));
    json_object_set_new(o, "name", jstr(i->name));
    json_object_set_new(o, "argv", argv);
    json_object_set_new(o, "cwd", jstr(i->cwd));
    json_object_set_new(o, "pid", i->has & PTC_HAS_PID ? json_integer((json_int_t)i->pid) : json_null());
    json_object_set_new(o, "state", json_string(ptc_state_name(i->state)));
    json_object_set_new(o, "exit_code",
                        i->has & PTC_HAS_EXIT_CODE ? json_integer(i->exit_code) : json_null());
    json_object_set_new(o, "signal", i->has & PTC_HAS_SIGNO
                                         ? json_string(ptc_signal_name(i->signo, sig))
                                         : json_null());
    json_object_set_new(o, "cols", json_integer(i->cols));
    json_object_set_new(o, "rows", json_integer(i->rows));
    json_object_set_new(o, "created_ms", json_integer((json_int_t)i->created_ms));
    json_object_set_new(o, "updated_ms", json_integer((json_int_t)i->updated_ms));
    json_object_set_new(o, "start", json_integer((json_int_t)i->start));
    json_object_set_new(o, "end", json_integer((json_int_t)i->end));
    json_object_set_new(o, "clients", json_integer(i->clients));
    json_object_set_new(o, "attention", json_string(ptc_attention_name(i->attention)));
    return o;
}

/* Prints v to stdout and releases it. */
int jsonout_print(json_t *v)
{
    int rc = json_dumpf(v, stdout, JSON_INDENT(2) | JSON_ENSURE_ASCII);
    json_decref(v);
    if (rc < 0 || fputc('\n', stdout) == EOF || fflush(stdout) == EOF) {
        ptcat_err("cannot write to stdout");
        return PTCAT_UNMET;
    }
    return PTCAT_OK;
}
