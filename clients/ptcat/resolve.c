/*
 * resolve: what a person types for a session, turned into its id. Wherever an id is expected,
 * ptcat accepts the full id, the session's name, or a prefix of the id's text form that only one
 * session has. An exact name wins over a prefix, so a session named "ab" stays reachable even when
 * ids start with "ab". One `list` answers it; nothing is cached between commands.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "ptcat.h"

/* A short text for a session: its name, or the first 8 characters of its id. */
void resolve_label(const struct ptc_info *i, char *out, size_t cap)
{
    if (i->name.n) {
        snprintf(out, cap, "%.*s", (int)i->name.n, i->name.p);
        return;
    }
    char t[PTC_UUID_STRLEN + 1];
    ptc_uuid_format(&i->id, t);
    snprintf(out, cap, "%.8s", t);
}

/* The relay's sessions: a `list` call on p->conn. */
int resolve_list(struct ptcat *p, struct ptc_client_reply *rep)
{
    struct ptc_request rq = {.op = PTC_OP_LIST};
    int rc = endpoint_call(p, NULL, &rq, rep, PTCAT_CALL_TIMEOUT_MS);
    if (rc)
        ptc_client_reply_free(rep);
    return rc;
}

static bool looks_like_prefix(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (!isxdigit((unsigned char)*s) && *s != '-')
            return false;
    return true;
}

/* Finds the session meant by arg. */
int resolve_session(struct ptcat *p, const char *arg, ptc_uuid *out)
{
    if (!arg || !*arg) {
        ptcat_err("a session id or name is needed");
        return PTCAT_USAGE;
    }
    struct ptc_client_reply rep;
    int rc = resolve_list(p, &rep);
    if (rc)
        return rc;
    const struct ptc_reply *r = &rep.r;
    ptc_uuid full;
    bool is_full = strlen(arg) == PTC_UUID_STRLEN && ptc_uuid_parse(arg, PTC_UUID_STRLEN, &full) == 0;
    int found = -1, nprefix = 0;
    /* 1: the full id; 2: an exact name */
    for (uint32_t i = 0; i < r->nsessions && found < 0; i++)
        if (is_full && ptc_uuid_eq(&r->sessions[i].id, &full))
            found = (int)i;
    for (uint32_t i = 0; i < r->nsessions && found < 0; i++)
        if (r->sessions[i].name.n && ptc_str_eq(r->sessions[i].name, arg))
            found = (int)i;
    /* 3: a unique prefix of the id text (either case) */
    char cands[4][PTC_UUID_STRLEN + 1];
    if (found < 0 && looks_like_prefix(arg)) {
        size_t n = strlen(arg);
        for (uint32_t i = 0; i < r->nsessions; i++) {
            char t[PTC_UUID_STRLEN + 1];
            ptc_uuid_format(&r->sessions[i].id, t);
            if (n <= PTC_UUID_STRLEN && strncasecmp(t, arg, n) == 0) {
                if (nprefix < 4)
                    memcpy(cands[nprefix], t, sizeof t);
                nprefix++;
                found = (int)i;
            }
        }
    }
    if (nprefix > 1) {
        ptcat_err("'%s' is ambiguous: %d sessions have ids that start with it (%s, %s%s)", arg,
                  nprefix, cands[0], cands[1], nprefix > 2 ? ", ..." : "");
        ptc_client_reply_free(&rep);
        return PTCAT_REFUSED;
    }
    if (found < 0) {
        ptcat_err("no session '%s' (ptcat ls lists them)", arg);
        ptc_client_reply_free(&rep);
        return PTCAT_REFUSED;
    }
    *out = r->sessions[found].id;
    ptc_client_reply_free(&rep);
    return 0;
}
