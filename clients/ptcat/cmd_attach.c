/*
 * cmd_attach: `ptcat attach ID|NAME [--view] [--from OFFSET | --tail BYTES] [--detach-key K]`.
 * On a terminal, this terminal becomes the session's: raw mode, its size follows SIGWINCH, and
 * the detach key (default Ctrl-\ then d) leaves the session running. Without a terminal, stdin is
 * sent as input and the output is copied to stdout. The work is done by stream.c.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "ptcat.h"

static const char attach_help[] =
    "usage: ptcat attach ID|NAME [--view] [--from OFFSET | --tail BYTES] [--detach-key KEY]\n"
    "Makes this terminal the session's terminal until the program ends or you detach.\n"
    "  --view            watch only: nothing typed is sent\n"
    "  --from OFFSET     replay output from this byte offset (default: all that is kept)\n"
    "  --tail BYTES      replay only the last BYTES of output\n"
    "  --detach-key KEY  a key name and an optional second character: 'C-\\ d' (default),\n"
    "                    'C-]' (one key), or 'none'\n"
    "When the connection drops, ptcat reconnects and resumes after the last byte it printed.\n";

/* Parses a detach key spec into 1-2 bytes. */
int cmd_attach_parse_detach(const char *spec, uint8_t out[2], size_t *len)
{
    if (!strcmp(spec, "none")) {
        *len = 0;
        return 0;
    }
    char first[32];
    const char *sp = strchr(spec, ' ');
    size_t n = sp ? (size_t)(sp - spec) : strlen(spec);
    if (!n || n >= sizeof first)
        return -1;
    memcpy(first, spec, n);
    first[n] = 0;
    const char *bytes;
    size_t bn;
    if (ptc_key_lookup(first, &bytes, &bn) == 0 && bn == 1)
        out[0] = (uint8_t)bytes[0];
    else if (n == 1)
        out[0] = (uint8_t)first[0];
    else
        return -1;
    *len = 1;
    if (sp) {
        while (*sp == ' ')
            sp++;
        if (!*sp)
            return 0;
        if (ptc_key_lookup(sp, &bytes, &bn) == 0 && bn == 1)
            out[1] = (uint8_t)bytes[0];
        else if (strlen(sp) == 1)
            out[1] = (uint8_t)sp[0];
        else
            return -1;
        *len = 2;
    }
    return 0;
}

static int attach_run(struct ptcat *p, const ptc_uuid *id, const char *label, int mode,
                      bool have_offset, uint64_t offset, const uint8_t *dk, size_t dklen)
{
    /* The lookup connection is not needed any more: the stream makes its own. */
    if (p->conn) {
        ptc_client_conn_free(p->conn);
        p->conn = NULL;
    }
    struct stream_opts so = {
        .id = *id,
        .label = label,
        .mode = mode,
        .tty = isatty(0) && isatty(1),
        .input = mode == PTC_MODE_INTERACTIVE,
        .have_offset = have_offset,
        .offset = offset,
        .detach = dk,
        .detach_len = dklen,
    };
    return stream_run(p, &so);
}

/* Attaches interactively with the default options (`new --attach`). */
int cmd_attach_id(struct ptcat *p, const ptc_uuid *id, const char *label, bool from_zero)
{
    static const uint8_t dk[2] = {0x1c, 'd'};
    return attach_run(p, id, label, PTC_MODE_INTERACTIVE, from_zero, 0, dk, 2);
}

/* `ptcat attach`. */
int cmd_attach(struct ptcat *p, int argc, char **argv)
{
    static const struct option opts[] = {
        {"view", no_argument, NULL, 'v'},
        {"from", required_argument, NULL, 'f'},
        {"tail", required_argument, NULL, 't'},
        {"detach-key", required_argument, NULL, 'd'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int mode = PTC_MODE_INTERACTIVE;
    bool have_from = false, have_tail = false;
    uint64_t from = 0, tail = 0;
    uint8_t dk[2] = {0x1c, 'd'};
    size_t dklen = 2;
    int o;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (o) {
        case 'v':
            mode = PTC_MODE_VIEW;
            break;
        case 'f':
            if (ptcat_parse_u64(optarg, &from))
                return ptcat_usage("attach", "--from wants a byte offset, not '%s'", optarg);
            have_from = true;
            break;
        case 't':
            if (ptcat_parse_u64(optarg, &tail))
                return ptcat_usage("attach", "--tail wants a byte count, not '%s'", optarg);
            have_tail = true;
            break;
        case 'd':
            if (cmd_attach_parse_detach(optarg, dk, &dklen))
                return ptcat_usage("attach", "--detach-key: '%s' is not a key (e.g. 'C-\\ d', 'C-]', none)",
                                   optarg);
            break;
        case 'h':
            fputs(attach_help, stdout);
            return PTCAT_OK;
        default:
            return ptcat_usage("attach", "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (argc - optind != 1)
        return ptcat_usage("attach", "expected one session ID or NAME");
    if (have_from && have_tail)
        return ptcat_usage("attach", "--from and --tail exclude each other");
    ptc_uuid id;
    int rc = resolve_session(p, argv[optind], &id);
    if (rc)
        return rc;
    if (have_tail) {
        struct ptc_request rq = {.op = PTC_OP_INFO};
        struct ptc_client_reply rep;
        rc = endpoint_call(p, &id, &rq, &rep, PTCAT_CALL_TIMEOUT_MS);
        if (!rc)
            from = rep.r.info.end > tail ? rep.r.info.end - tail : 0;
        ptc_client_reply_free(&rep);
        if (rc)
            return rc;
        have_from = true;
    }
    return attach_run(p, &id, argv[optind], mode, have_from, from, dk, dklen);
}
