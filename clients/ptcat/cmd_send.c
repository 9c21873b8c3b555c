/*
 * cmd_send: `ptcat send ID|NAME [--text T] [--key K]... [--hex HEX] [--enter] [--stdin]`: input
 * for a session without attaching a terminal. The pieces are sent in the order given (then a CR
 * for --enter); key names come from libptc's table (C-c, Enter, Up, F5...). Input needs an
 * interactive attachment, so send attaches with a one-byte flow-control window (the relay then
 * sends it almost no output), writes the bytes in chunks of at most 64 KiB, and waits for the
 * relay's input ACK to cover each chunk before the next and before it exits.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ptcat.h"

#define CHUNK (64u * 1024)

static const char send_help[] =
    "usage: ptcat send ID|NAME [--text T] [--key K]... [--hex HEX] [--enter] [--stdin]\n"
    "                  [--timeout MS] [--print-offset]\n"
    "Sends input to the session, in the order given, and waits until the relay has written it\n"
    "to the program's terminal.\n"
    "  --text T     the bytes of T\n"
    "  --key K      a named key: C-c, C-d, Enter, Tab, Esc, Up, Down, Left, Right, Home, End,\n"
    "               PgUp, PgDn, F1-F12, Backspace, Delete, Insert, Space (repeatable)\n"
    "  --hex HEX    raw bytes in hex, e.g. 1b5b41\n"
    "  --stdin      everything on standard input\n"
    "  --enter      a carriage return at the end\n"
    "  --timeout MS how long to wait for the relay's acknowledgement (10000)\n"
    "  --print-offset  print the session's output offset from just before the input, for\n"
    "               `ptcat logs ID --from OFFSET --wait-for-prompt RE`\n";

/* Appends the bytes of a non-empty, even-length hex string. 0 or -1. */
static int add_hex(struct out_buf *b, const char *h)
{
    size_t n = strlen(h);
    uint8_t v[256];
    if (!n)
        return -1;
    for (size_t i = 0; i < n; i += 2 * sizeof v) {
        size_t k = n - i < 2 * sizeof v ? n - i : 2 * sizeof v;
        if (ptc_hex_decode(h + i, k, v, sizeof v) || out_buf_add(b, v, k / 2))
            return -1;
    }
    return 0;
}

static int add_stdin(struct out_buf *b)
{
    uint8_t buf[65536];
    for (;;) {
        ssize_t n = read(0, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            return 0;
        if (out_buf_add(b, buf, (size_t)n))
            return -ENOMEM;
    }
}

/*
 * Runs until the input ACK reaches want. Other frames of the session: OUTPUT is dropped, a STATE
 * that reports the end or an EVENT error ends the wait with a message.
 */
static int wait_ack(struct ptcat *p, const ptc_uuid *id, uint64_t want, uint64_t deadline_us)
{
    struct ptc_client_filter flt = {.type = 0, .session = id};
    for (unsigned turns = 0; turns < 1000000; turns++) {
        uint64_t now = ptc_client_now_us();
        if (now >= deadline_us)
            break;
        struct ptc_client_frame fr;
        int rc = ptc_client_wait_frame(p->conn, &flt, &fr, (int)((deadline_us - now) / 1000) + 1);
        if (rc == PTC_CLIENT_ETIMEOUT)
            break;
        if (rc < 0) {
            ptcat_err("send: the connection ended before the input was acknowledged (%s)",
                      ptc_client_error_message(p->conn)[0] ? ptc_client_error_message(p->conn)
                                                           : ptc_client_strerror(rc));
            return PTCAT_CONN;
        }
        int out = -1;
        if (fr.f.type == PTC_ACK) {
            uint64_t count;
            if (ptc_ack_parse(&fr.f, &count) == 0 && count >= want)
                out = PTCAT_OK;
        } else if (fr.f.type == PTC_EVENT) {
            struct ptc_event e;
            struct ptc_perr perr;
            struct ptc_limits lim = ptc_limits_default;
            if (ptc_event_parse(fr.f.payload, fr.f.len, &lim, &e, &perr) == 0 &&
                e.kind == PTC_EV_ERROR) {
                ptcat_err("send: the relay refused the input: %s: %.*s", ptc_code_name(e.error),
                          (int)e.message.n, e.message.p ? e.message.p : "");
                out = PTCAT_REFUSED;
            }
            ptc_event_free(&e);
        } else if (fr.f.type == PTC_STATE) {
            struct ptc_statemsg m;
            struct ptc_perr perr;
            if (ptc_state_parse(fr.f.payload, fr.f.len, &m, &perr) == 0 &&
                ptc_state_is_ended(m.state)) {
                ptcat_err("send: the session ended (%s) before the input was written",
                          ptc_state_name(m.state));
                out = PTCAT_REFUSED;
            }
        }
        ptc_client_frame_free(&fr);
        if (out >= 0)
            return out;
    }
    ptcat_err("send: no acknowledgement from the relay in time");
    return PTCAT_UNMET;
}

/* `ptcat send`. */
int cmd_send(struct ptcat *p, int argc, char **argv)
{
    static const struct option opts[] = {
        {"text", required_argument, NULL, 't'},
        {"key", required_argument, NULL, 'k'},
        {"hex", required_argument, NULL, 'x'},
        {"enter", no_argument, NULL, 'e'},
        {"stdin", no_argument, NULL, 's'},
        {"timeout", required_argument, NULL, 'T'},
        {"print-offset", no_argument, NULL, 'P'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct out_buf b = {0};
    bool enter = false, used_stdin = false, print_offset = false;
    uint64_t timeout_ms = 10000;
    int o, rc = PTCAT_OK;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        const char *bytes;
        size_t n;
        switch (o) {
        case 't':
            if (out_buf_add(&b, optarg, strlen(optarg)))
                rc = PTCAT_UNMET;
            break;
        case 'k':
            if (ptc_key_lookup(optarg, &bytes, &n) < 0) {
                rc = ptcat_usage("send", "unknown key '%s'", optarg);
                goto out;
            }
            if (out_buf_add(&b, bytes, n))
                rc = PTCAT_UNMET;
            break;
        case 'x':
            if (add_hex(&b, optarg)) {
                rc = ptcat_usage("send", "--hex wants pairs of hex digits, not '%s'", optarg);
                goto out;
            }
            break;
        case 'e':
            enter = true;
            break;
        case 's':
            if (used_stdin) {
                rc = ptcat_usage("send", "--stdin can be given once");
                goto out;
            }
            used_stdin = true;
            if (add_stdin(&b) < 0) {
                ptcat_err("send: cannot read standard input");
                rc = PTCAT_UNMET;
                goto out;
            }
            break;
        case 'T':
            if (ptcat_parse_u64(optarg, &timeout_ms) || timeout_ms > 86400000) {
                rc = ptcat_usage("send", "--timeout wants milliseconds, not '%s'", optarg);
                goto out;
            }
            break;
        case 'P':
            print_offset = true;
            break;
        case 'h':
            fputs(send_help, stdout);
            goto out;
        default:
            rc = ptcat_usage("send", "unknown or incomplete option '%s'", argv[optind - 1]);
            goto out;
        }
        if (rc)
            goto out;
    }
    if (enter && out_buf_add(&b, "\r", 1)) {
        rc = PTCAT_UNMET;
        goto out;
    }
    if (argc - optind != 1) {
        rc = ptcat_usage("send", "expected one session ID or NAME");
        goto out;
    }
    if (!b.n) {
        rc = ptcat_usage("send", "nothing to send (--text, --key, --hex, --enter or --stdin)");
        goto out;
    }
    ptc_uuid id;
    rc = resolve_session(p, argv[optind], &id);
    if (rc)
        goto out;
    struct ptc_request rq = {.op = PTC_OP_ATTACH,
                             .has = PTC_HAS_MODE | PTC_HAS_OFFSET | PTC_HAS_WINDOW,
                             .mode = PTC_MODE_INTERACTIVE,
                             .offset = UINT64_MAX, /* the relay clamps it to the end */
                             .window = 1};
    struct ptc_client_reply rep;
    rc = endpoint_call(p, &id, &rq, &rep, PTCAT_CALL_TIMEOUT_MS);
    bool ended = !rc && ptc_state_is_ended(rep.r.state);
    const char *stname = rc ? "" : ptc_state_name(rep.r.state);
    uint64_t before = rc ? 0 : rep.r.start; /* the output offset before our input */
    ptc_client_reply_free(&rep);
    if (rc)
        goto out;
    if (ended) {
        ptcat_err("send: the session has ended (%s)", stname);
        rc = PTCAT_REFUSED;
        goto out;
    }
    uint64_t deadline = ptc_client_now_us() + timeout_ms * 1000;
    for (size_t off = 0; off < b.n && !rc;) {
        size_t n = b.n - off < CHUNK ? b.n - off : CHUNK;
        if (ptc_client_send_input(p->conn, &id, b.p + off, n) < 0) {
            ptcat_err("send: the connection ended");
            rc = PTCAT_CONN;
            break;
        }
        off += n;
        rc = wait_ack(p, &id, off, deadline);
    }
    if (!rc) {
        struct ptc_request dq = {.op = PTC_OP_DETACH};
        struct ptc_client_reply drep;
        endpoint_call(p, &id, &dq, &drep, PTCAT_CALL_TIMEOUT_MS);
        ptc_client_reply_free(&drep);
        if (print_offset && (printf("%llu\n", (unsigned long long)before) < 0 || fflush(stdout)))
            rc = PTCAT_UNMET;
    }
out:
    free(b.p);
    return rc;
}
