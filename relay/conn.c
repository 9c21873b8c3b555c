/*
 * conn: one WebSocket client. Incoming message chunks go through libptc's stream decoder (the
 * declared length is checked before any payload is buffered, and a frame may not span messages);
 * each frame is dispatched by type. Outgoing, each WRITEABLE builds one message: queued control
 * frames (REPLY, EVENT) first, then output from the attachments round-robin with a fair share per
 * session, so a flooding session cannot hold back another session's echo. A socket that takes
 * nothing for the stall timeout while output waits is closed 4408. Waits (`wait` op) live here.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "relay.h"

#define MSG_BUDGET (128 * 1024) /* output bytes per outgoing message */
#define SHARE_MIN (8 * 1024)    /* smallest per-session share of one message */
#define CTL_MAX (8u << 20)      /* control bytes queued before the client's requests are paused */
#define HELLO_TIMEOUT_MS 10000
#define WAITS_MAX 64

/* Creates a connection for a new WebSocket. */
struct conn *conn_new(struct relay *r, void *wsi, const char *peer)
{
    struct conn *c = xcalloc(1, sizeof *c);
    c->relay = r;
    c->wsi = wsi;
    c->id = ++r->next_conn_id;
    snprintf(c->peer, sizeof c->peer, "%s", peer && *peer ? peer : "local");
    c->created = now_ms();
    ptc_stream_init(&c->in, r->cfg.max_frame);
    ptc_buf_init(&c->ctl, 0);
    c->next = r->conns;
    if (r->conns)
        r->conns->prev = c;
    r->conns = c;
    r->nconns++;
    log_debug("%s: conn=%u peer=%s", __func__, c->id, c->peer);
    return c;
}

/* Asks for a WRITEABLE once. */
void conn_want_write(struct conn *c)
{
    if (c->dead || !c->wsi)
        return;
    if (!c->blocked_since)
        c->blocked_since = now_ms();
    if (c->write_asked)
        return;
    c->write_asked = true;
    server_conn_want_write(c);
}

/* Closes after the queued control frames are out. */
void conn_close(struct conn *c, int code, const char *reason)
{
    if (c->close_code)
        return;
    c->close_code = code;
    snprintf(c->close_reason, sizeof c->close_reason, "%s", reason);
    log_info("conn=%u peer=%s closing %d: %s", c->id, c->peer, code, reason);
    c->write_asked = false;
    conn_want_write(c);
}

static void queue_frame_begin_end(struct conn *c, uint8_t type, const ptc_uuid *sid,
                                  int (*build)(struct ptc_buf *, const void *), const void *arg)
{
    long mark = ptc_frame_open(&c->ctl, type, sid);
    if (mark < 0)
        fatal("out of memory queueing a frame");
    if (build(&c->ctl, arg) < 0 || ptc_frame_close(&c->ctl, mark) < 0) {
        /* Builders fail only on allocation or a payload over 4 GiB: drop the frame. */
        c->ctl.len = (size_t)mark;
        log_error("conn=%u could not build a %s frame", c->id, ptc_type_name(type));
        return;
    }
    if (c->ctl.len > CTL_MAX && !c->rx_paused) {
        /* A client that asks faster than it reads: stop reading its requests for now. */
        c->rx_paused = true;
        server_conn_rx_flow(c, false);
    }
    conn_want_write(c);
}

static int build_reply(struct ptc_buf *b, const void *arg) { return ptc_reply_build(b, arg); }
static int build_event(struct ptc_buf *b, const void *arg) { return ptc_event_build(b, arg); }

/* Queues a REPLY. */
void conn_queue_reply(struct conn *c, const struct ptc_reply *rp)
{
    static const ptc_uuid zero;
    queue_frame_begin_end(c, PTC_REPLY, &zero, build_reply, rp);
}

/* Queues a failed REPLY with a message. */
void conn_reply_error(struct conn *c, uint64_t id, int code, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    struct ptc_reply rp = {.id = id, .op = PTC_OP_UNKNOWN, .ok = false, .error = code};
    rp.message = ptc_str_c(msg);
    if (code == PTC_C_LIMIT)
        log_warn("conn=%u limit: %s", c->id, msg);
    conn_queue_reply(c, &rp);
}

/* Queues EVENT error about a frame that has no reply. */
void conn_event_error(struct conn *c, const ptc_uuid *sid, int code, uint8_t type, const char *msg)
{
    static const ptc_uuid zero;
    struct ptc_event e = {.kind = PTC_EV_ERROR, .error = code, .type = type};
    e.message = ptc_str_c(msg);
    queue_frame_begin_end(c, PTC_EVENT, sid ? sid : &zero, build_event, &e);
}

/* Queues EVENT session. */
void conn_event_session(struct conn *c, const struct session *s, bool removed)
{
    struct ptc_event e = {.kind = PTC_EV_SESSION, .removed = removed};
    session_info(s, &e.info);
    queue_frame_begin_end(c, PTC_EVENT, &s->id, build_event, &e);
}

static void protocol_error(struct conn *c, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void protocol_error(struct conn *c, int code, const char *fmt, ...)
{
    char msg[96];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    conn_close(c, code, msg);
}

static void handle_input(struct conn *c, const struct ptc_frame *f)
{
    struct attach *a = attach_find(c, &f->session);
    if (!a) {
        conn_event_error(c, &f->session,
                         session_find(c->relay, &f->session) ? PTC_C_NOT_ATTACHED
                                                             : PTC_C_NO_SUCH_SESSION,
                         f->type, "INPUT to a session this connection is not attached to");
        return;
    }
    if (a->mode != PTC_MODE_INTERACTIVE) {
        conn_event_error(c, &f->session, PTC_C_FORBIDDEN, f->type,
                         "INPUT from a view-only attachment");
        return;
    }
    if (ptc_state_is_ended(a->session->state) || a->session->reaped) {
        conn_event_error(c, &f->session, PTC_C_GONE, f->type, "the session has ended");
        return;
    }
    a->in_total += f->len;
    if (session_input(a->session, a, f->payload, f->len) == -ENOSPC && !c->rx_paused) {
        limit_hit(c->relay, LIM_INPUT_QUEUE, "session=%.8s conn=%u: input queue full (%u bytes): "
                  "pausing the connection", a->session->idtext, c->id,
                  c->relay->cfg.input_queue_max);
        c->rx_paused = true;
        server_conn_rx_flow(c, false);
    }
}

static void handle_resize(struct conn *c, const struct ptc_frame *f)
{
    uint16_t cols, rows;
    ptc_resize_parse(f, &cols, &rows);
    struct attach *a = attach_find(c, &f->session);
    if (!a) {
        conn_event_error(c, &f->session, PTC_C_NOT_ATTACHED, f->type,
                         "RESIZE of a session this connection is not attached to");
        return;
    }
    if (a->mode != PTC_MODE_INTERACTIVE) {
        conn_event_error(c, &f->session, PTC_C_FORBIDDEN, f->type,
                         "RESIZE from a view-only attachment");
        return;
    }
    if (cols < 1 || rows < 1 || cols > 4096 || rows > 4096) {
        char msg[96];
        snprintf(msg, sizeof msg, "size %ux%u out of range (1..4096 each)", cols, rows);
        conn_event_error(c, &f->session, PTC_C_BAD_REQUEST, f->type, msg);
        return;
    }
    if (session_resize(a->session, cols, rows) < 0)
        conn_event_error(c, &f->session, PTC_C_GONE, f->type, "the session has ended");
    else
        relay_audit(c->relay, "resized", a->session, c, "%ux%u", cols, rows);
}

static void handle_ack(struct conn *c, const struct ptc_frame *f)
{
    uint64_t count;
    ptc_ack_parse(f, &count);
    struct attach *a = attach_find(c, &f->session);
    if (!a) {
        conn_event_error(c, &f->session, PTC_C_NOT_ATTACHED, f->type,
                         "ACK for a session this connection is not attached to");
        return;
    }
    if (count > a->cursor)
        count = a->cursor;
    if (count > a->acked) {
        a->acked = count;
        conn_want_write(c);
    }
}

static int handle_frame(struct conn *c, const struct ptc_frame *f)
{
    if (ptc_type_is_extension(f->type))
        return 0; /* forward compatibility: unknown extensions are skipped */
    if (!c->authed && f->type != PTC_REQUEST) {
        protocol_error(c, PTC_CLOSE_UNAUTHORIZED, "the first frame must be REQUEST hello");
        return -1;
    }
    if (ptc_frame_check(f) < 0) {
        protocol_error(c, PTC_CLOSE_PROTOCOL, "%s payload of %u bytes has the wrong size",
                       ptc_type_name(f->type), f->len);
        return -1;
    }
    switch (f->type) {
    case PTC_REQUEST:
        return ops_dispatch(c, f);
    case PTC_INPUT:
        handle_input(c, f);
        return 0;
    case PTC_RESIZE:
        handle_resize(c, f);
        return 0;
    case PTC_ACK:
        handle_ack(c, f);
        return 0;
    default:
        protocol_error(c, PTC_CLOSE_PROTOCOL, "%s frames go from server to client only",
                       ptc_type_name(f->type));
        return -1;
    }
}

/* One received chunk of a WebSocket message. */
int conn_on_receive(struct conn *c, const void *p, size_t n, bool binary, bool final)
{
    if (c->dead || c->close_code)
        return 0;
    if (!binary) {
        protocol_error(c, PTC_CLOSE_PROTOCOL, "text messages are not part of PTC1");
        return -1;
    }
    int rc = ptc_stream_feed(&c->in, p, n);
    if (rc == PTC_ETOOBIG) {
        limit_hit(c->relay, LIM_FRAME, "conn=%u peer=%s: frame over %u bytes: closing 4413", c->id,
                  c->peer, c->relay->cfg.max_frame);
        protocol_error(c, PTC_CLOSE_TOO_BIG, "frame longer than max_frame (%u)",
                       c->relay->cfg.max_frame);
        return -1;
    }
    if (rc < 0) {
        protocol_error(c, PTC_CLOSE_PROTOCOL, "invalid frame: %s", ptc_strerror(rc));
        return -1;
    }
    struct ptc_frame f;
    while ((rc = ptc_stream_next(&c->in, &f)) == 1) {
        if (handle_frame(c, &f) < 0 || c->close_code)
            return c->close_code ? 0 : -1;
    }
    if (rc < 0) {
        if (rc == PTC_ETOOBIG)
            limit_hit(c->relay, LIM_FRAME, "conn=%u peer=%s: frame over %u bytes: closing 4413",
                      c->id, c->peer, c->relay->cfg.max_frame);
        protocol_error(c, rc == PTC_ETOOBIG ? PTC_CLOSE_TOO_BIG : PTC_CLOSE_PROTOCOL,
                       "invalid frame: %s", ptc_strerror(rc));
        return 0;
    }
    if (final && ptc_stream_pending(&c->in)) {
        protocol_error(c, PTC_CLOSE_PROTOCOL, "a frame must not span WebSocket messages");
        return 0;
    }
    return 0;
}

/* Moves whole queued control frames into b, at least one, up to budget bytes. */
static void take_ctl(struct conn *c, struct ptc_buf *b, size_t budget)
{
    size_t off = 0;
    struct ptc_frame f;
    long flen;
    while ((flen = ptc_frame_decode(c->ctl.data + off, c->ctl.len - off, UINT32_MAX, &f)) > 0) {
        if (off && off + (size_t)flen > budget)
            break;
        off += (size_t)flen;
    }
    ptc_buf_append(b, c->ctl.data, off);
    memmove(c->ctl.data, c->ctl.data + off, c->ctl.len - off);
    c->ctl.len -= off;
    if (c->rx_paused && c->ctl.len < CTL_MAX / 2) {
        bool inputs_full = false;
        for (struct attach *a = c->attach_head; a; a = a->next_in_conn)
            inputs_full |= !session_input_has_room(a->session);
        if (!inputs_full) {
            c->rx_paused = false;
            server_conn_rx_flow(c, true);
        }
    }
}

/* Builds the next outgoing message (see relay.h). */
long conn_on_writable(struct conn *c, struct ptc_buf *b)
{
    c->write_asked = false;
    c->blocked_since = 0;
    ptc_buf_reset(b);
    if (c->dead)
        return 0;
    if (c->ctl.len)
        take_ctl(c, b, MSG_BUDGET);
    if (c->ctl.len) {
        conn_want_write(c);
        return (long)b->len;
    }
    if (c->close_code) {
        if (b->len) {
            conn_want_write(c);
            return (long)b->len;
        }
        return -1;
    }
    /*
     * Round-robin over attachments with something due, a fair share each. Whether an
     * attachment is still due is learnt as it is filled, so each pass looks at each one once.
     */
    size_t left = MSG_BUDGET;
    unsigned npending = 0;
    for (struct attach *a = c->attach_head; a; a = a->next_in_conn)
        npending += attach_pending(a);
    for (int pass = 0; pass < 4 && npending && left; pass++) {
        size_t share = left / npending;
        if (share < SHARE_MIN)
            share = SHARE_MIN;
        struct attach *a = c->rr_next ? c->rr_next : c->attach_head;
        struct attach *resume = NULL; /* the first one the budget did not reach */
        unsigned still = 0;
        for (unsigned i = 0; i < c->nattach; i++) {
            if (attach_pending(a)) {
                if (left) {
                    size_t got = attach_fill(a, b, share < left ? share : left);
                    left -= got < left ? got : left;
                    still += attach_pending(a);
                } else {
                    if (!resume)
                        resume = a;
                    still++;
                }
            }
            a = a->next_in_conn ? a->next_in_conn : c->attach_head;
        }
        c->rr_next = resume ? resume : a;
        npending = still;
    }
    if (npending)
        conn_want_write(c);
    c->bytes_out += b->len;
    return (long)b->len;
}

static void wait_free(struct wait_req *w)
{
    if (w->have_re)
        regfree(&w->re);
    w->session->nwaits--;
    free(w);
}

static void wait_reply(struct wait_req *w, bool matched)
{
    struct ptc_reply rp = {.id = w->id, .op = PTC_OP_WAIT, .ok = true, .matched = matched};
    rp.state = w->session->state;
    rp.end = ring_end(&w->session->ring);
    conn_queue_reply(w->conn, &rp);
}

/* Unlinks and frees the wait at *pp after replying. */
static void wait_finish(struct wait_req **pp, bool matched)
{
    struct wait_req *w = *pp;
    *pp = w->next;
    wait_reply(w, matched);
    wait_free(w);
}

/* The socket closed: drop everything. */
void conn_on_closed(struct conn *c)
{
    struct relay *r = c->relay;
    if (c->dead)
        return;
    log_debug("%s: conn=%u peer=%s out=%llu", __func__, c->id, c->peer,
              (unsigned long long)c->bytes_out);
    while (c->attach_head)
        attach_free(c->attach_head);
    while (c->waits) {
        struct wait_req *w = c->waits;
        c->waits = w->next;
        wait_free(w);
    }
    if (c->prev)
        c->prev->next = c->next;
    else
        r->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    r->nconns--;
    c->dead = true;
    c->wsi = NULL;
    c->prev = NULL;
    c->next = r->dead_conns;
    r->dead_conns = c;
}

/* Hello timeout, stall detection, idle waits and wait timeouts. */
void conn_tick(struct conn *c, uint64_t now)
{
    if (c->dead)
        return;
    if (!c->authed && !c->close_code && now - c->created >= HELLO_TIMEOUT_MS) {
        conn_close(c, PTC_CLOSE_UNAUTHORIZED, "no hello within 10 s");
        return;
    }
    /* blocked_since may be later than `now`: this tick's session work (a STATE, an EVENT) can
     * ask for a write after `now` was read, so compare without subtracting. */
    if (c->blocked_since &&
        now >= c->blocked_since + (uint64_t)c->relay->cfg.stall_timeout_s * 1000) {
        bool waiting = c->ctl.len > 0;
        for (struct attach *a = c->attach_head; a && !waiting; a = a->next_in_conn)
            waiting = attach_output_waiting(a);
        if (waiting && c->close_code) {
            /* Its close frame could not go out within another stall period either: cut it. */
            server_conn_close_now(c, c->close_code, c->close_reason);
            return;
        }
        if (waiting) {
            log_warn("conn=%u peer=%s stalled for %us with output waiting: closing 4408", c->id,
                     c->peer, c->relay->cfg.stall_timeout_s);
            /* The socket is full, so a close frame cut off now would never reach the peer:
             * send no more output, and let the 4408 follow what the socket holds as soon as the
             * peer reads again (the check above cuts a peer that never does). */
            conn_close(c, PTC_CLOSE_SLOW, "slow consumer: stalled past the limit");
            c->blocked_since = now;
            return;
        }
    }
    for (struct wait_req **pp = &c->waits; *pp;) {
        struct wait_req *w = *pp;
        if (w->until == PTC_UNTIL_IDLE && now - w->session->last_output >= w->idle_ms)
            wait_finish(pp, true);
        else if (w->deadline && now >= w->deadline)
            wait_finish(pp, false);
        else
            pp = &w->next;
    }
}

/* Registers a wait or answers it at once. 0, or -1 with *code and msg set. */
int conn_wait_add(struct conn *c, struct session *s, const struct ptc_request *rq, int *code,
                  char *msg, size_t msglen)
{
    unsigned n = 0;
    for (struct wait_req *w = c->waits; w; w = w->next)
        n++;
    if (n >= WAITS_MAX) {
        snprintf(msg, msglen, "too many pending waits on this connection (%d)", WAITS_MAX);
        *code = PTC_C_LIMIT;
        return -1;
    }
    struct wait_req *w = xcalloc(1, sizeof *w);
    w->conn = c;
    w->session = s;
    w->id = rq->id;
    w->until = rq->until;
    w->idle_ms = rq->idle_ms;
    if (rq->timeout_ms)
        w->deadline = now_ms() + rq->timeout_ms;
    if (rq->until == PTC_UNTIL_MATCH) {
        char *pat = ptc_str_dup(rq->pattern);
        if (!pat)
            fatal("out of memory");
        int rc = regcomp(&w->re, pat, REG_EXTENDED | REG_NEWLINE | REG_NOSUB);
        free(pat);
        if (rc) {
            char e[128];
            regerror(rc, &w->re, e, sizeof e);
            snprintf(msg, msglen, "pattern: %s", e);
            free(w);
            *code = PTC_C_BAD_REQUEST;
            return -1;
        }
        w->have_re = true;
        /* Recent output counts: the prompt may already be on the screen. */
        uint8_t recent[4096];
        uint64_t end = ring_end(&s->ring), at;
        uint64_t from = end > sizeof recent ? end - sizeof recent : 0;
        size_t got = ring_copy(&s->ring, from, recent, sizeof recent, &at);
        ansi_strip(&w->ansi, recent, got, w->text, sizeof w->text, &w->textlen);
    }
    s->nwaits++;
    bool now_met = (w->until == PTC_UNTIL_EXIT && ptc_state_is_ended(s->state)) ||
                   (w->until == PTC_UNTIL_IDLE && now_ms() - s->last_output >= w->idle_ms) ||
                   (w->have_re && regexec(&w->re, w->text, 0, NULL, 0) == 0);
    if (now_met) {
        wait_reply(w, true);
        wait_free(w);
        return 0;
    }
    w->next = c->waits;
    c->waits = w;
    return 0;
}

/* New output of s: feed match waits. */
void conn_waits_on_output(struct session *s, const uint8_t *p, size_t n)
{
    for (struct conn *c = s->relay->conns; c; c = c->next)
        for (struct wait_req **pp = &c->waits; *pp;) {
            struct wait_req *w = *pp;
            if (w->session == s && w->have_re) {
                ansi_strip(&w->ansi, p, n, w->text, sizeof w->text, &w->textlen);
                if (regexec(&w->re, w->text, 0, NULL, 0) == 0) {
                    wait_finish(pp, true);
                    continue;
                }
            }
            pp = &w->next;
        }
}

/* State of s changed: answer exit waits (and any wait once the program ended). */
void conn_waits_on_state(struct session *s)
{
    if (!ptc_state_is_ended(s->state))
        return;
    for (struct conn *c = s->relay->conns; c; c = c->next)
        for (struct wait_req **pp = &c->waits; *pp;) {
            struct wait_req *w = *pp;
            if (w->session == s)
                wait_finish(pp, w->until == PTC_UNTIL_EXIT);
            else
                pp = &w->next;
        }
}

/* s is being removed: answer its waits unmatched. */
void conn_waits_drop_session(struct session *s)
{
    for (struct conn *c = s->relay->conns; c; c = c->next)
        for (struct wait_req **pp = &c->waits; *pp;) {
            if ((*pp)->session == s)
                wait_finish(pp, false);
            else
                pp = &(*pp)->next;
        }
}

/* Remembers an attachment's input total; forgets totals of sessions that are gone. */
void conn_memo_input(struct conn *c, const ptc_uuid *sid, uint64_t written)
{
    for (struct input_memo **pp = &c->input_memos; *pp;) {
        struct input_memo *m = *pp;
        if (ptc_uuid_eq(&m->sid, sid) || !session_find(c->relay, &m->sid)) {
            *pp = m->next;
            free(m);
        } else {
            pp = &m->next;
        }
    }
    if (!written)
        return;
    struct input_memo *m = xcalloc(1, sizeof *m);
    m->sid = *sid;
    m->written = written;
    m->next = c->input_memos;
    c->input_memos = m;
}

/* Takes back the input total remembered for sid. */
uint64_t conn_recall_input(struct conn *c, const ptc_uuid *sid)
{
    for (struct input_memo **pp = &c->input_memos; *pp; pp = &(*pp)->next) {
        struct input_memo *m = *pp;
        if (ptc_uuid_eq(&m->sid, sid)) {
            uint64_t w = m->written;
            *pp = m->next;
            free(m);
            return w;
        }
    }
    return 0;
}

/* Frees an unlinked connection. */
void conn_free(struct conn *c)
{
    while (c->input_memos) {
        struct input_memo *m = c->input_memos;
        c->input_memos = m->next;
        free(m);
    }
    ptc_stream_free(&c->in);
    ptc_buf_free(&c->ctl);
    free(c->token_name);
    free(c);
}
