/*
 * attach: a connection's view of one session. An attachment is only a cursor into the session's
 * ring plus a few flags (a STATE, RESIZE or input ACK is due); there is no per-client output queue,
 * so memory is bounded by the rings whatever the number of clients. When the connection can write,
 * attach_fill copies from the ring at the cursor into the outgoing message. A cursor that fell
 * below the ring's start jumps forward: the OUTPUT offset then shows the gap.
 */
#include <stdlib.h>
#include <string.h>

#include "relay.h"

/* Creates an attachment at offset (clamped to what the ring holds). */
struct attach *attach_new(struct conn *c, struct session *s, int mode, uint64_t offset,
                          uint64_t window)
{
    struct attach *a = xcalloc(1, sizeof *a);
    a->conn = c;
    a->session = s;
    a->mode = mode;
    if (offset > ring_end(&s->ring))
        offset = ring_end(&s->ring);
    a->cursor = offset;
    a->acked = offset;
    a->window = window;
    a->in_written = a->in_acked = conn_recall_input(c, &s->id);
    /* An ended session changes no more: say how it ended, after its retained output. */
    a->state_pending = ptc_state_is_ended(s->state);
    a->next_in_conn = c->attach_head;
    c->attach_head = a;
    c->nattach++;
    a->next_in_session = s->attach_head;
    s->attach_head = a;
    s->nclients++;
    s->last_activity = now_ms();
    conn_want_write(c);
    return a;
}

/* The attachment of connection c to session sid, or NULL. */
struct attach *attach_find(struct conn *c, const ptc_uuid *sid)
{
    for (struct attach *a = c->attach_head; a; a = a->next_in_conn)
        if (ptc_uuid_eq(&a->session->id, sid))
            return a;
    return NULL;
}

/* Unlinks from the connection and the session and frees. */
void attach_free(struct attach *a)
{
    struct conn *c = a->conn;
    struct session *s = a->session;
    attach_audit_input(a);
    if (!c->dead)
        conn_memo_input(c, &s->id, a->in_written);
    for (struct attach **pp = &c->attach_head; *pp; pp = &(*pp)->next_in_conn)
        if (*pp == a) {
            *pp = a->next_in_conn;
            break;
        }
    for (struct attach **pp = &s->attach_head; *pp; pp = &(*pp)->next_in_session)
        if (*pp == a) {
            *pp = a->next_in_session;
            break;
        }
    if (c->rr_next == a)
        c->rr_next = a->next_in_conn;
    for (struct input_chunk *ic = s->in_head; ic; ic = ic->next)
        if (ic->from == a)
            ic->from = NULL;
    c->nattach--;
    s->nclients--;
    s->last_activity = now_ms();
    free(a);
}

static uint64_t attach_allowed(const struct attach *a)
{
    uint64_t end = ring_end(&a->session->ring);
    if (a->cursor >= end)
        return 0;
    uint64_t avail = end - a->cursor;
    if (a->window) {
        uint64_t limit = a->acked + a->window;
        if (a->cursor >= limit)
            return 0;
        if (avail > limit - a->cursor)
            avail = limit - a->cursor;
    }
    return avail;
}

/* A STATE is due; one that reports the end waits until the last byte has been sent. */
static bool state_due(const struct attach *a)
{
    const struct session *s = a->session;
    return a->state_pending && (!ptc_state_is_ended(s->state) || a->cursor >= ring_end(&s->ring));
}

/* Records input received since the last record, as a byte count (never the bytes). */
void attach_audit_input(struct attach *a)
{
    if (a->in_total == a->in_audited)
        return;
    relay_audit(a->conn->relay, "input", a->session, a->conn, "bytes=%llu",
                (unsigned long long)(a->in_total - a->in_audited));
    a->in_audited = a->in_total;
}

/* Whether anything is due for this attachment. */
bool attach_pending(const struct attach *a)
{
    return a->resize_pending || state_due(a) || a->in_written != a->in_acked ||
           attach_allowed(a) > 0;
}

/* Whether output waits that no window holds back (what a stall is measured on). */
bool attach_output_waiting(const struct attach *a)
{
    return !a->window && a->cursor < ring_end(&a->session->ring);
}

/*
 * Moves the cursor forward over bytes that are retained nowhere. They count as acknowledged: they
 * can never be sent, and a window must still allow `window` bytes in flight past them (left at
 * the old ACK, it would stay shut for a client that has acknowledged everything it was sent).
 */
static void attach_skip(struct attach *a, uint64_t to)
{
    a->acked += to - a->cursor;
    a->cursor = to;
}

/* Appends what is due, with at most budget bytes of output. */
size_t attach_fill(struct attach *a, struct ptc_buf *b, size_t budget)
{
    struct session *s = a->session;
    size_t sent = 0;
    if (a->resize_pending) {
        ptc_resize_append(b, &s->id, s->cols, s->rows);
        a->resize_pending = false;
    }
    if (a->in_written != a->in_acked) {
        ptc_ack_append(b, &s->id, a->in_written);
        a->in_acked = a->in_written;
    }
    while (sent < budget) {
        uint64_t allowed = attach_allowed(a);
        if (!allowed)
            break;
        size_t room = budget - sent < allowed ? budget - sent : (size_t)allowed;
        if (a->cursor < ring_start(&s->ring)) {
            /*
             * Behind the ring: session_read replays the log (committed, queued, or not yet
             * handed over) and, where the log has nothing, starts at the ring: then `at` is past
             * the cursor and the OUTPUT offset shows the gap. One bounded read per fill keeps
             * the loop responsive; once caught up with the ring, go on from it directly.
             */
            uint64_t at;
            size_t want = room < RELAY_SCRATCH ? room : RELAY_SCRATCH;
            size_t n = session_read(s, a->cursor, s->relay->scratch, want, &at);
            if (!n)
                break;
            if (at > a->cursor) {
                log_debug("%s: session=%.8s conn=%u gap of %llu bytes", __func__, s->idtext,
                          a->conn->id, (unsigned long long)(at - a->cursor));
                attach_skip(a, at);
            }
            ptc_output_append(b, &s->id, at, s->relay->scratch, n);
            a->cursor = at + n;
            sent += n;
            if (a->cursor < ring_start(&s->ring))
                break;
            continue;
        }
        size_t n;
        uint64_t at;
        const uint8_t *p = ring_peek(&s->ring, a->cursor, &n, &at);
        if (!p || !n)
            break;
        if (n > room)
            n = room;
        ptc_output_append(b, &s->id, at, p, n);
        a->cursor = at + n;
        sent += n;
    }
    /* The STATE that reports the end comes after the OUTPUT with the last byte. */
    if (state_due(a)) {
        struct ptc_statemsg m;
        session_fill_state(s, &m);
        long mark = ptc_frame_open(b, PTC_STATE, &s->id);
        if (mark >= 0 && ptc_state_build(b, &m) == 0)
            ptc_frame_close(b, mark);
        a->state_pending = false;
    }
    return sent;
}

/* Marks STATE (and RESIZE) due on every attachment of s. */
void attach_notify_state(struct session *s, bool resize)
{
    for (struct attach *a = s->attach_head; a; a = a->next_in_session) {
        a->state_pending = true;
        if (resize)
            a->resize_pending = true;
        conn_want_write(a->conn);
    }
}

/* Asks every attached connection to write: there is new output. */
void attach_notify_output(struct session *s)
{
    for (struct attach *a = s->attach_head; a; a = a->next_in_session)
        conn_want_write(a->conn);
}
