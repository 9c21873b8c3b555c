/*
 * cmd_logs: `ptcat logs ID|NAME [--tail N] [--from OFFSET] [--strip-ansi] [--follow]
 * [--wait-for-prompt [RE]]`. Prints the output the relay keeps (with `read`, in pieces), the last
 * N lines of it, or what follows an offset; --follow then streams new output until the program
 * ends (stream.c, with its reconnects). --wait-for-prompt is for scripts that answer programs:
 * it returns once the session is idle (no RE) or its recent output matches RE, and prints the
 * output that came since the command started.
 */
#include <getopt.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ptcat.h"

#define READ_MAX 65536u /* ptclient parses replies with the default limits: bins up to 64 KiB */
#define TAIL_WINDOW_MAX ((uint64_t)256 << 20)

static const char logs_help[] =
    "usage: ptcat logs ID|NAME [--tail N | --from OFFSET] [--strip-ansi] [--follow]\n"
    "                  [--wait-for-prompt [RE]] [--idle MS] [--timeout MS]\n"
    "Prints the session's output that the relay keeps.\n"
    "  --tail N           only the last N lines\n"
    "  --from OFFSET      from this byte offset on\n"
    "  --strip-ansi       drop terminal escape sequences and carriage returns\n"
    "  --follow           keep printing new output until the program ends\n"
    "  --wait-for-prompt [RE]\n"
    "                     wait until the session is idle (--idle MS, default 2000) or, with\n"
    "                     RE (POSIX extended regex, matched without escapes), until its recent\n"
    "                     output matches; then print what came since; exit 1 on --timeout.\n"
    "                     With --from OFFSET, RE must match output after OFFSET (e.g. the\n"
    "                     offset `ptcat send --print-offset` printed): no stale prompt counts\n";

/*
 * Reads [from, to) with `read` calls. to == UINT64_MAX: up to the end at the time. Either appends
 * to *keep (when keep) or prints as it goes. *first gets the offset of the first byte returned.
 */
static int read_range(struct ptcat *p, const ptc_uuid *id, uint64_t from, uint64_t to,
                      struct out_buf *keep, struct ptc_ansi *strip, uint64_t *first, uint64_t *next)
{
    uint64_t off = from;
    bool started = false;
    for (unsigned i = 0; i < 1u << 20 && off < to; i++) {
        struct ptc_request rq = {.op = PTC_OP_READ, .has = PTC_HAS_OFFSET | PTC_HAS_MAX,
                                 .offset = off, .max = READ_MAX};
        if (to != UINT64_MAX && to - off < READ_MAX)
            rq.max = to - off;
        struct ptc_client_reply rep;
        int rc = endpoint_call(p, id, &rq, &rep, PTCAT_CALL_TIMEOUT_MS);
        if (rc) {
            ptc_client_reply_free(&rep);
            return rc;
        }
        const struct ptc_reply *r = &rep.r;
        if (!started) {
            if (first)
                *first = r->offset;
            started = true;
        }
        if (r->truncated && r->offset > off)
            ptcat_err("%llu bytes before offset %llu are no longer kept",
                      (unsigned long long)(r->offset - off), (unsigned long long)r->offset);
        const uint8_t *d = (const uint8_t *)r->data.p;
        size_t n = r->data.n;
        if (keep) {
            if (out_buf_add(keep, d, n)) {
                ptc_client_reply_free(&rep);
                return PTCAT_UNMET;
            }
        } else if (n) {
            int wr = 0;
            if (strip) {
                uint8_t *buf = malloc(n);
                if (!buf) {
                    ptc_client_reply_free(&rep);
                    return PTCAT_UNMET;
                }
                size_t m = ptc_ansi_strip(strip, d, n, buf);
                wr = out_write(1, buf, m);
                free(buf);
            } else {
                wr = out_write(1, d, n);
            }
            if (wr < 0) {
                ptc_client_reply_free(&rep);
                return PTCAT_UNMET;
            }
        }
        off = r->next;
        ptc_client_reply_free(&rep);
        if (!n)
            break;
    }
    if (!started && first)
        *first = from;
    *next = off;
    return 0;
}

/* Prints the last `lines` lines of [start, end), reading back in growing windows. */
static int print_tail(struct ptcat *p, const ptc_uuid *id, uint64_t start, uint64_t end,
                      uint64_t lines, struct ptc_ansi *strip, uint64_t *next)
{
    uint64_t win = 64 * 1024;
    for (;;) {
        uint64_t from = end - start > win ? end - win : start;
        struct out_buf b = {0};
        uint64_t first, nx;
        int rc = read_range(p, id, from, end, &b, NULL, &first, &nx);
        if (rc) {
            free(b.p);
            return rc;
        }
        /* Find where the last `lines` lines begin; a final newline does not open a line. */
        size_t pos = b.n;
        uint64_t seen = 0;
        bool found = lines == 0;
        size_t i = b.n;
        if (i && b.p[i - 1] == '\n')
            i--;
        while (!found && i > 0) {
            if (b.p[i - 1] == '\n' && ++seen == lines) {
                pos = i;
                found = true;
                break;
            }
            i--;
        }
        if (!found && (first <= start || win >= TAIL_WINDOW_MAX)) {
            pos = 0;
            found = true;
        }
        if (found) {
            const uint8_t *d = b.p + pos;
            size_t n = b.n - pos;
            int wr;
            if (strip) {
                size_t m = ptc_ansi_strip(strip, d, n, b.p + pos);
                wr = out_write(1, b.p + pos, m);
            } else {
                wr = out_write(1, d, n);
            }
            free(b.p);
            *next = nx;
            return wr < 0 ? PTCAT_UNMET : 0;
        }
        free(b.p);
        win *= 4;
    }
}

/* `--wait-for-prompt RE` also accepts RE as the next word when the session comes elsewhere. */
static void join_prompt_arg(int argc, char **argv)
{
    for (int i = 1; i < argc - 1; i++) {
        if (strcmp(argv[i], "--wait-for-prompt"))
            continue;
        if (argv[i + 1][0] == '-')
            return;
        /* Another word that is not an option's value must be the session. */
        static const char *valued[] = {"--tail", "--from", "--idle", "--timeout", NULL};
        int words = 0;
        for (int k = 1; k < argc; k++) {
            if (k == i + 1)
                continue;
            bool is_val = false;
            for (int v = 0; valued[v]; v++)
                if (k > 1 && !strcmp(argv[k - 1], valued[v]))
                    is_val = true;
            if (argv[k][0] != '-' && !is_val)
                words++;
        }
        if (words < 1)
            return;
        size_t n = strlen(argv[i + 1]) + sizeof "--wait-for-prompt=";
        char *joined = malloc(n);
        if (!joined)
            return;
        snprintf(joined, n, "--wait-for-prompt=%s", argv[i + 1]);
        argv[i] = joined; /* lives until exit, like argv */
        for (int k = i + 1; k < argc - 1; k++)
            argv[k] = argv[k + 1];
        argv[argc - 1] = (char *)"--";
        return;
    }
}

static int wait_prompt(struct ptcat *p, const ptc_uuid *id, uint64_t since, const char *re,
                       uint64_t idle_ms, uint64_t timeout_ms, struct ptc_ansi *strip)
{
    struct ptc_request rq = {.op = PTC_OP_WAIT, .has = PTC_HAS_UNTIL};
    if (re) {
        rq.until = PTC_UNTIL_MATCH;
        rq.pattern = ptc_str_c(re);
        rq.has |= PTC_HAS_PATTERN;
    } else {
        rq.until = PTC_UNTIL_IDLE;
        rq.idle_ms = idle_ms;
        rq.has |= PTC_HAS_IDLE_MS;
    }
    if (timeout_ms) {
        rq.timeout_ms = timeout_ms;
        rq.has |= PTC_HAS_TIMEOUT;
    }
    struct ptc_client_reply rep;
    int rc = endpoint_call(p, id, &rq, &rep, timeout_ms ? (int)(timeout_ms + PTCAT_CALL_TIMEOUT_MS) : -1);
    bool matched = !rc && rep.r.matched;
    int state = rc ? 0 : rep.r.state;
    uint64_t end = rc ? 0 : rep.r.end;
    ptc_client_reply_free(&rep);
    if (rc)
        return rc;
    uint64_t first, next;
    rc = read_range(p, id, since, end, NULL, strip, &first, &next);
    if (rc)
        return rc;
    if (matched)
        return PTCAT_OK;
    if (ptc_state_is_ended(state))
        ptcat_err("logs: the session ended (%s) before the prompt", ptc_state_name(state));
    else
        ptcat_err("logs: no prompt within %llu ms", (unsigned long long)timeout_ms);
    return PTCAT_UNMET;
}

/*
 * --wait-for-prompt RE with --from OFFSET: the match is made here, against the output from OFFSET
 * on only (escapes removed, like the relay does), so a prompt that was on the screen before OFFSET
 * cannot match. A view attachment at OFFSET brings the output; everything from OFFSET up to the
 * match is printed.
 */
static int wait_prompt_from(struct ptcat *p, const ptc_uuid *id, uint64_t since, const char *re,
                            uint64_t timeout_ms, struct ptc_ansi *strip)
{
    regex_t rx;
    int e = regcomp(&rx, re, REG_EXTENDED | REG_NEWLINE | REG_NOSUB);
    if (e) {
        char m[128];
        regerror(e, &rx, m, sizeof m);
        return ptcat_usage("logs", "--wait-for-prompt: bad pattern: %s", m);
    }
    struct ptc_request rq = {.op = PTC_OP_ATTACH, .has = PTC_HAS_MODE | PTC_HAS_OFFSET,
                             .mode = PTC_MODE_VIEW, .offset = since};
    struct ptc_client_reply rep;
    int rc = endpoint_call(p, id, &rq, &rep, PTCAT_CALL_TIMEOUT_MS);
    uint64_t next = rc ? 0 : rep.r.start;
    bool ended = !rc && ptc_state_is_ended(rep.r.state);
    uint64_t end_at = rc ? 0 : rep.r.end;
    ptc_client_reply_free(&rep);
    if (rc) {
        regfree(&rx);
        return rc;
    }
    if (next > since)
        ptcat_err("%llu bytes after offset %llu are no longer kept",
                  (unsigned long long)(next - since), (unsigned long long)since);
    struct out_buf raw = {0};
    struct ptc_ansi tstrip = {0};
    char text[16384];
    size_t tlen = 0;
    bool matched = false;
    uint64_t deadline = timeout_ms ? ptc_client_now_us() + timeout_ms * 1000 : UINT64_MAX;
    struct ptc_client_filter flt = {.session = id};
    for (unsigned turns = 0; turns < 10000000 && !matched; turns++) {
        if (ended && next >= end_at)
            break;
        uint64_t now = ptc_client_now_us();
        if (now >= deadline)
            break;
        int left = deadline == UINT64_MAX ? -1 : (int)((deadline - now) / 1000) + 1;
        struct ptc_client_frame fr;
        rc = ptc_client_wait_frame(p->conn, &flt, &fr, left);
        if (rc == PTC_CLIENT_ETIMEOUT) {
            rc = 0;
            break;
        }
        if (rc < 0) {
            ptcat_err("logs: connection to the relay lost");
            rc = PTCAT_CONN;
            break;
        }
        rc = 0;
        uint64_t off;
        const uint8_t *d;
        size_t n;
        struct ptc_statemsg st;
        struct ptc_perr perr;
        if (fr.f.type == PTC_OUTPUT && ptc_output_parse(&fr.f, &off, &d, &n) == 0 &&
            off + n > next) {
            if (off < next) {
                d += next - off;
                n -= (size_t)(next - off);
            }
            next = off + n;
            if (out_buf_add(&raw, d, n)) {
                rc = PTCAT_UNMET;
                ptc_client_frame_free(&fr);
                break;
            }
            /* strip into the text window, keeping its newer half when it fills */
            for (size_t k = 0; k < n;) {
                size_t piece = n - k < 4096 ? n - k : 4096;
                if (tlen + piece + 1 > sizeof text) {
                    size_t keep = sizeof text / 2;
                    memmove(text, text + tlen - keep, keep);
                    tlen = keep;
                }
                tlen += ptc_ansi_strip(&tstrip, d + k, piece, (uint8_t *)text + tlen);
                k += piece;
            }
            text[tlen] = 0;
            matched = regexec(&rx, text, 0, NULL, 0) == 0;
        } else if (fr.f.type == PTC_STATE && ptc_state_parse(fr.f.payload, fr.f.len, &st, &perr) == 0 &&
                   ptc_state_is_ended(st.state)) {
            ended = true;
            end_at = st.end;
        }
        ptc_client_frame_free(&fr);
    }
    regfree(&rx);
    int wr = 0;
    if (raw.n) {
        if (strip) {
            size_t m = ptc_ansi_strip(strip, raw.p, raw.n, raw.p);
            wr = out_write(1, raw.p, m);
        } else {
            wr = out_write(1, raw.p, raw.n);
        }
    }
    free(raw.p);
    if (rc)
        return rc;
    if (wr < 0)
        return PTCAT_UNMET;
    if (matched)
        return PTCAT_OK;
    if (ended)
        ptcat_err("logs: the session ended before the prompt");
    else
        ptcat_err("logs: no prompt within %llu ms", (unsigned long long)timeout_ms);
    return PTCAT_UNMET;
}

/* `ptcat logs`. */
int cmd_logs(struct ptcat *p, int argc, char **argv)
{
    static const struct option opts[] = {
        {"tail", required_argument, NULL, 't'},
        {"from", required_argument, NULL, 'f'},
        {"strip-ansi", no_argument, NULL, 's'},
        {"follow", no_argument, NULL, 'F'},
        {"wait-for-prompt", optional_argument, NULL, 'w'},
        {"idle", required_argument, NULL, 'i'},
        {"timeout", required_argument, NULL, 'T'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    join_prompt_arg(argc, argv);
    bool have_tail = false, have_from = false, strip = false, follow = false, prompt = false;
    uint64_t tail = 0, from = 0, idle_ms = 2000, timeout_ms = 0;
    const char *re = NULL;
    int o;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (o) {
        case 't':
            if (ptcat_parse_u64(optarg, &tail))
                return ptcat_usage("logs", "--tail wants a number of lines, not '%s'", optarg);
            have_tail = true;
            break;
        case 'f':
            if (ptcat_parse_u64(optarg, &from))
                return ptcat_usage("logs", "--from wants a byte offset, not '%s'", optarg);
            have_from = true;
            break;
        case 's':
            strip = true;
            break;
        case 'F':
            follow = true;
            break;
        case 'w':
            prompt = true;
            re = optarg && *optarg ? optarg : NULL;
            break;
        case 'i':
            if (ptcat_parse_u64(optarg, &idle_ms) || !idle_ms)
                return ptcat_usage("logs", "--idle wants milliseconds, not '%s'", optarg);
            break;
        case 'T':
            if (ptcat_parse_u64(optarg, &timeout_ms))
                return ptcat_usage("logs", "--timeout wants milliseconds, not '%s'", optarg);
            break;
        case 'h':
            fputs(logs_help, stdout);
            return PTCAT_OK;
        default:
            return ptcat_usage("logs", "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (argc - optind != 1)
        return ptcat_usage("logs", "expected one session ID or NAME");
    if (have_tail && have_from)
        return ptcat_usage("logs", "--tail and --from exclude each other");
    if (prompt && (follow || have_tail))
        return ptcat_usage("logs", "--wait-for-prompt goes with neither --follow nor --tail");
    const char *arg = argv[optind];
    ptc_uuid id;
    int rc = resolve_session(p, arg, &id);
    if (rc)
        return rc;
    struct ptc_request rq = {.op = PTC_OP_INFO};
    struct ptc_client_reply rep;
    rc = endpoint_call(p, &id, &rq, &rep, PTCAT_CALL_TIMEOUT_MS);
    uint64_t start = rep.r.info.start, end = rep.r.info.end;
    ptc_client_reply_free(&rep);
    if (rc)
        return rc;
    struct ptc_ansi st = {0};
    struct ptc_ansi *sp = strip ? &st : NULL;
    if (prompt && re && have_from)
        return wait_prompt_from(p, &id, from, re, timeout_ms, sp);
    if (prompt)
        return wait_prompt(p, &id, have_from ? from : end, re, idle_ms, timeout_ms, sp);

    uint64_t next = 0, first;
    if (have_tail)
        rc = print_tail(p, &id, start, end, tail, sp, &next);
    else
        rc = read_range(p, &id, have_from ? from : start, end, NULL, sp, &first, &next);
    if (rc || !follow)
        return rc;
    if (p->conn) {
        ptc_client_conn_free(p->conn);
        p->conn = NULL;
    }
    struct stream_opts so = {
        .id = id,
        .label = arg,
        .mode = PTC_MODE_VIEW,
        .strip = strip,
        .have_offset = true,
        .offset = next,
        .quiet = true,
    };
    return stream_run(p, &so);
}
