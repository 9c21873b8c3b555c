/*
 * stream: one session's live output on stdout, and (for an interactive attach) this terminal's
 * keys and size sent back. It is the engine of `attach`, `new --attach` and `logs --follow`.
 *
 * The one number that matters is `next`: the offset after the last byte written to stdout. Every
 * OUTPUT is cut against it (bytes below it were shown already; bytes above it mean a gap, which
 * is reported), and when the connection drops, a new one attaches at exactly `next`, so nothing is
 * shown twice and nothing that the relay still retains is lost. Reconnects back off exponentially
 * (100 ms doubling to 5 s) and are announced on the status line (stderr).
 *
 * Input: bytes from stdin go out as INPUT. The detach key (1 or 2 bytes, default Ctrl-\ then d)
 * is taken out of the stream; the prefix typed twice sends it once. SIGWINCH comes through a
 * signalfd in the loop and becomes a RESIZE. The stream ends when the program ends (after its last
 * byte is printed), on the detach key, on EOF... never on a dropped connection.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "ptcat.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000

struct stream {
    struct ptcat *p;
    const struct stream_opts *o;
    struct ptc_client_conn *c;
    struct ptc_client_timer *retry;
    struct ptc_client_fd *in, *sig;
    int sigfd;
    char idt[PTC_UUID_STRLEN + 1];

    uint64_t next;     /* offset after the last byte printed */
    bool have_next;
    bool attached;     /* the attach REPLY came on the current connection */
    bool ever_attached;
    bool lost;         /* the connection dropped; a reconnect is under way */
    unsigned attempts; /* reconnect attempts since the drop */
    uint64_t backoff_ms;

    bool ending;       /* the program ended: print up to end_at, then finish */
    bool need_info;    /* ...once the info with its exit status is in */
    uint64_t end_at;
    struct ptc_statemsg st;

    int dk;            /* detach key: 1 after the prefix */
    bool input_note;   /* "input dropped" was said */
    bool detaching;    /* the detach key was typed: waiting for the REPLY */
    bool done;
    int rc;
    struct ptc_ansi strip;
};

static void on_stdin(struct ptc_client_fd *f, int fd, void *arg);
static void on_stdin_close(struct ptc_client_fd *f, void *arg);

static void finish(struct stream *s, int rc)
{
    if (s->done)
        return;
    s->done = true;
    s->rc = rc;
    ptc_client_stop(s->p->ctx);
}

static void say_end(struct stream *s)
{
    char sig[16];
    switch (s->st.state) {
    case PTC_ST_EXITED:
        if (s->st.has & PTC_HAS_EXIT_CODE)
            out_status("session %s: the program exited with status %d", s->o->label, s->st.exit_code);
        else
            out_status("session %s: the program exited", s->o->label);
        break;
    case PTC_ST_KILLED:
        out_status("session %s: the program was killed by signal %s", s->o->label,
                   s->st.has & PTC_HAS_SIGNO ? ptc_signal_name(s->st.signo, sig) : "?");
        break;
    default:
        out_status("session %s: %s", s->o->label, ptc_state_name(s->st.state));
        break;
    }
}

/* Ends once everything up to the program's last byte is printed. */
static void check_end(struct stream *s)
{
    if (s->ending && !s->need_info && s->have_next && s->next >= s->end_at) {
        say_end(s);
        finish(s, PTCAT_OK);
    }
}

static int print_bytes(struct stream *s, const uint8_t *d, size_t n)
{
    if (!s->o->strip)
        return out_write(1, d, n);
    uint8_t buf[4096];
    while (n) {
        size_t k = n < sizeof buf ? n : sizeof buf;
        size_t m = ptc_ansi_strip(&s->strip, d, k, buf);
        int rc = out_write(1, buf, m);
        if (rc < 0)
            return rc;
        d += k;
        n -= k;
    }
    return 0;
}

static void on_output(struct stream *s, const struct ptc_frame *f)
{
    uint64_t off;
    const uint8_t *d;
    size_t n;
    if (ptc_output_parse(f, &off, &d, &n) < 0)
        return;
    if (!s->have_next) {
        s->next = off;
        s->have_next = true;
    }
    if (off + n <= s->next)
        return; /* shown already */
    if (off < s->next) {
        size_t skip = (size_t)(s->next - off);
        d += skip;
        n -= skip;
        off = s->next;
    }
    if (off > s->next)
        out_status("%llu bytes of output are no longer kept by the relay (offsets %llu-%llu)",
                   (unsigned long long)(off - s->next), (unsigned long long)s->next,
                   (unsigned long long)off);
    if (print_bytes(s, d, n) < 0) {
        finish(s, PTCAT_UNMET);
        return;
    }
    s->next = off + n;
    check_end(s);
}

static void on_state(struct stream *s, const struct ptc_frame *f)
{
    struct ptc_statemsg m;
    struct ptc_perr perr;
    if (ptc_state_parse(f->payload, f->len, &m, &perr) < 0)
        return;
    if (ptc_state_is_ended(m.state) && !s->ending) {
        s->ending = true;
        s->end_at = m.end;
        s->st = m;
        check_end(s);
    }
}

static void on_frame(struct ptc_client_conn *c, const struct ptc_frame *f, void *arg)
{
    struct stream *s = arg;
    if (s->done || !ptc_uuid_eq(&f->session, &s->o->id))
        return;
    switch (f->type) {
    case PTC_OUTPUT:
        on_output(s, f);
        break;
    case PTC_STATE:
        on_state(s, f);
        break;
    case PTC_EVENT: {
        struct ptc_event e;
        struct ptc_perr perr;
        struct ptc_limits lim = ptc_limits_default;
        if (ptc_event_parse(f->payload, f->len, &lim, &e, &perr) == 0 && e.kind == PTC_EV_ERROR)
            out_status("the relay refused %s: %s: %.*s", ptc_type_name(e.type),
                       ptc_code_name(e.error), (int)e.message.n, e.message.p ? e.message.p : "");
        ptc_event_free(&e);
        break;
    }
    default:
        break;
    }
}

static void send_size(struct stream *s)
{
    uint16_t cols, rows;
    if (!s->attached || s->o->mode != PTC_MODE_INTERACTIVE || !s->o->tty)
        return;
    if (term_size(0, &cols, &rows) == 0 || term_size(1, &cols, &rows) == 0)
        ptc_client_send_resize(s->c, &s->o->id, cols, rows);
}

/* Final info (exit code) for a session that had ended before we attached. */
static void on_info_reply(struct ptc_client_conn *c, int status, const struct ptc_reply *rp,
                          void *arg)
{
    struct stream *s = arg;
    s->need_info = false;
    if (status == 0 && rp->ok) {
        s->st.state = rp->info.state;
        s->st.has = rp->info.has & (PTC_HAS_EXIT_CODE | PTC_HAS_SIGNO);
        s->st.exit_code = rp->info.exit_code;
        s->st.signo = rp->info.signo;
    }
    check_end(s);
}

static void on_attach_reply(struct ptc_client_conn *c, int status, const struct ptc_reply *rp,
                            void *arg)
{
    struct stream *s = arg;
    if (s->done || c != s->c)
        return;
    if (status < 0)
        return; /* the connection ended: on_close / on_error handles it */
    if (!rp->ok) {
        ptcat_err("attach %s: %s: %.*s", s->o->label, ptc_code_name(rp->error),
                  (int)rp->message.n, rp->message.p ? rp->message.p : "");
        finish(s, PTCAT_REFUSED);
        return;
    }
    s->attached = true;
    if (s->have_next && rp->start > s->next)
        out_status("%llu bytes of output are no longer kept by the relay (offsets %llu-%llu)",
                   (unsigned long long)(rp->start - s->next), (unsigned long long)s->next,
                   (unsigned long long)rp->start);
    if (!s->have_next || rp->start > s->next) {
        s->next = rp->start;
        s->have_next = true;
    }
    if (s->ever_attached)
        out_status("reconnected to session %s; resuming at offset %llu", s->o->label,
                   (unsigned long long)s->next);
    else if (!s->o->quiet && s->o->tty && s->o->detach_len) {
        char k[32] = "";
        for (size_t i = 0; i < s->o->detach_len; i++) {
            uint8_t b = s->o->detach[i];
            size_t l = strlen(k);
            if (b < 0x20)
                snprintf(k + l, sizeof k - l, "%sCtrl-%c", i ? " " : "", b == 0 ? '@' : b + 0x40);
            else
                snprintf(k + l, sizeof k - l, "%s%c", i ? " then " : "", b);
        }
        out_status("attached to session %s%s; detach with %s", s->o->label,
                   s->o->mode == PTC_MODE_VIEW ? " (view only)" : "", k);
    }
    if (!s->ever_attached && (s->o->input || (s->o->tty && s->o->detach_len))) {
        /* stdin is read from the first attach on: what was typed before waits in the tty or
         * pipe instead of being dropped */
        static const struct ptc_client_fd_cbs in_cbs = {.on_readable = on_stdin,
                                                        .on_close = on_stdin_close};
        s->in = ptc_client_fd_adopt(s->p->ctx, 0, &in_cbs, s);
    }
    s->ever_attached = true;
    s->lost = false;
    s->attempts = 0;
    s->backoff_ms = BACKOFF_MIN_MS;
    send_size(s);
    if (ptc_state_is_ended(rp->state) && !s->ending) {
        /* The program is gone already: print what remains, then say how it ended. */
        s->ending = true;
        s->end_at = rp->end;
        s->st.state = rp->state;
        s->need_info = true;
        struct ptc_request rq = {.op = PTC_OP_INFO};
        if (ptc_client_request(c, &s->o->id, &rq, on_info_reply, s, NULL) < 0) {
            s->need_info = false;
            check_end(s);
        }
    }
}

static void on_ready(struct ptc_client_conn *c, int scope, uint32_t max_frame, void *arg)
{
    struct stream *s = arg;
    struct ptc_request rq = {.op = PTC_OP_ATTACH, .has = PTC_HAS_MODE, .mode = s->o->mode};
    if (s->have_next) {
        rq.has |= PTC_HAS_OFFSET;
        rq.offset = s->next;
    }
    if (ptc_client_request(c, &s->o->id, &rq, on_attach_reply, s, NULL) < 0)
        ptc_client_conn_close(c, 1000, "cannot queue attach");
}

static void reconnect_later(struct stream *s);

static void connection_lost(struct stream *s, int err, const char *why)
{
    if (s->done)
        return;
    if (s->detaching) {
        finish(s, PTCAT_OK);
        return;
    }
    if (err == PTC_CLIENT_EUNAUTHORIZED || err == PTC_CLIENT_EVERSION || err == PTC_CLIENT_EURL ||
        (!s->ever_attached && !s->lost)) {
        /* Before the first attach, or a failure retrying cannot fix: say so and stop. */
        endpoint_report(s->p, err, why);
        finish(s, PTCAT_CONN);
        return;
    }
    s->attached = false;
    if (!s->lost) {
        s->lost = true;
        s->attempts = 0;
        s->backoff_ms = BACKOFF_MIN_MS;
        out_status("connection to the relay lost (%s); reconnecting", why);
    }
    reconnect_later(s);
}

static void on_error(struct ptc_client_conn *c, int err, const char *message, void *arg)
{
    struct stream *s = arg;
    if (c == s->c) {
        ptc_client_conn_free(c);
        s->c = NULL;
    }
    connection_lost(s, err, message);
}

static void on_close(struct ptc_client_conn *c, int code, const char *reason, void *arg)
{
    struct stream *s = arg;
    char why[200];
    snprintf(why, sizeof why, "close %d%s%s", code, reason && *reason ? ": " : "",
             reason ? reason : "");
    if (c == s->c) {
        ptc_client_conn_free(c);
        s->c = NULL;
    }
    connection_lost(s, PTC_CLIENT_ECLOSED, why);
}

static const struct ptc_client_cbs conn_cbs = {
    .on_ready = on_ready,
    .on_frame = on_frame,
    .on_error = on_error,
    .on_close = on_close,
};

static void connect_now(struct stream *s)
{
    s->attached = false;
    s->c = endpoint_open(s->p, &conn_cbs, s);
    if (!s->c)
        finish(s, PTCAT_CONN);
}

static void on_retry(struct ptc_client_timer *t, void *arg)
{
    struct stream *s = arg;
    if (s->done)
        return;
    if (s->detaching) {
        finish(s, PTCAT_OK);
        return;
    }
    s->attempts++;
    connect_now(s);
}

static void reconnect_later(struct stream *s)
{
    uint64_t ms = s->backoff_ms;
    s->backoff_ms = s->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : s->backoff_ms * 2;
    if (s->attempts)
        out_status("reconnect attempt %u failed; next in %llu ms", s->attempts,
                   (unsigned long long)ms);
    ptc_client_timer_set(s->retry, ms);
}

static void on_detach_reply(struct ptc_client_conn *c, int status, const struct ptc_reply *rp,
                            void *arg)
{
    finish(arg, PTCAT_OK);
}

/* Detaches politely: the relay's REPLY (or the connection's end, or 1 s) finishes the stream. */
static void detach_now(struct stream *s)
{
    out_status("detached from session %s; it keeps running", s->o->label);
    s->detaching = true;
    struct ptc_request rq = {.op = PTC_OP_DETACH};
    if (!s->c || !s->attached || ptc_client_request(s->c, &s->o->id, &rq, on_detach_reply, s, NULL) < 0) {
        finish(s, PTCAT_OK);
        return;
    }
    ptc_client_timer_set(s->retry, 1000);
}

static void send_input(struct stream *s, const uint8_t *d, size_t n)
{
    if (!n || !s->o->input)
        return;
    if (s->o->mode != PTC_MODE_INTERACTIVE || !s->c || !s->attached) {
        if (!s->input_note)
            out_status(s->o->mode == PTC_MODE_INTERACTIVE
                           ? "not connected: input is dropped until the relay is back"
                           : "view only: input is dropped");
        s->input_note = true;
        return;
    }
    s->input_note = false;
    ptc_client_send_input(s->c, &s->o->id, d, n);
}

static void on_stdin(struct ptc_client_fd *f, int fd, void *arg)
{
    struct stream *s = arg;
    uint8_t buf[4096], outb[4096 + 2];
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        /* EOF: no more input; the output keeps coming. */
        ptc_client_fd_close(s->in);
        s->in = NULL;
        return;
    }
    size_t o = 0;
    for (ssize_t i = 0; i < n && !s->done; i++) {
        uint8_t ch = buf[i];
        if (s->o->detach_len == 1 && ch == s->o->detach[0]) {
            send_input(s, outb, o);
            detach_now(s);
            return;
        }
        if (s->o->detach_len == 2) {
            if (s->dk) {
                s->dk = 0;
                if (ch == s->o->detach[1]) {
                    send_input(s, outb, o);
                    detach_now(s);
                    return;
                }
                outb[o++] = s->o->detach[0];
                if (ch == s->o->detach[0])
                    continue; /* the prefix twice sends it once */
            } else if (ch == s->o->detach[0]) {
                s->dk = 1;
                continue;
            }
        }
        outb[o++] = ch;
    }
    send_input(s, outb, o);
}

static void on_stdin_close(struct ptc_client_fd *f, void *arg)
{
    struct stream *s = arg;
    s->in = NULL;
    ptc_client_fd_close(f);
}

static void on_signal(struct ptc_client_fd *f, int fd, void *arg)
{
    struct stream *s = arg;
    struct signalfd_siginfo si;
    while (read(fd, &si, sizeof si) == (ssize_t)sizeof si)
        if (si.ssi_signo == SIGWINCH)
            send_size(s);
}

/* Attaches and copies output until the session ends, the detach key, or a fatal error. */
int stream_run(struct ptcat *p, const struct stream_opts *o)
{
    struct stream s;
    memset(&s, 0, sizeof s);
    s.p = p;
    s.o = o;
    s.sigfd = -1;
    s.backoff_ms = BACKOFF_MIN_MS;
    ptc_uuid_format(&o->id, s.idt);
    if (o->have_offset) {
        s.next = o->offset;
        s.have_next = true;
    }
    if (endpoint_resolve(p) || endpoint_ctx(p))
        return PTCAT_CONN;
    s.retry = ptc_client_timer_new(p->ctx, on_retry, &s);

    sigset_t mask, oldmask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGWINCH);
    sigprocmask(SIG_BLOCK, &mask, &oldmask);
    if (o->tty) {
        s.sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
        static const struct ptc_client_fd_cbs sig_cbs = {.on_readable = on_signal};
        if (s.sigfd >= 0)
            s.sig = ptc_client_fd_adopt(p->ctx, s.sigfd, &sig_cbs, &s);
        if (term_raw() < 0) {
            ptcat_err("cannot put the terminal in raw mode: %s", strerror(errno));
            s.rc = PTCAT_UNMET;
            goto out;
        }
    }
    connect_now(&s);
    while (!s.done)
        ptc_client_run(p->ctx, -1);
out:
    if (s.c) {
        ptc_client_conn_free(s.c);
        s.c = NULL;
    }
    if (s.in)
        ptc_client_fd_close(s.in);
    if (s.sig)
        ptc_client_fd_close(s.sig);
    if (s.sigfd >= 0)
        close(s.sigfd);
    ptc_client_timer_free(s.retry);
    term_restore();
    sigprocmask(SIG_SETMASK, &oldmask, NULL);
    return s.rc;
}
