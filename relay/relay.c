/*
 * relay: the context's own chores: the periodic tick that drives timeouts (attention, idle TTL,
 * kill grace, hello timeout, stalls, waits), freeing what died during a loop turn, broadcasting
 * session events to subscribers, and the clean shutdown (clients get 1001, programs SIGHUP, then
 * SIGKILL for what is left after a short grace).
 */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "relay.h"

#define SHUTDOWN_GRACE_MS 3000

/* Frees sessions and connections that were unlinked during this turn. */
void relay_reap(struct relay *r)
{
    while (r->dead_conns) {
        struct conn *c = r->dead_conns;
        r->dead_conns = c->next;
        conn_free(c);
    }
    while (r->dead_sessions) {
        struct session *s = r->dead_sessions;
        r->dead_sessions = s->next;
        session_free(s);
    }
}

/* Store chores: hand output to the writer, notice revoked tokens, audit input, report errors. */
static void relay_store_tick(struct relay *r, uint64_t now)
{
    if (!r->store)
        return;
    for (struct session *s = r->sessions; s; s = s->next)
        session_flush_log(s);
    if (now - r->last_token_check >= 500) {
        r->last_token_check = now;
        if (store_changed(r->store))
            auth_reload(r);
    }
    if (now - r->last_audit_flush >= 2000) {
        r->last_audit_flush = now;
        for (struct conn *c = r->conns; c; c = c->next)
            for (struct attach *a = c->attach_head; a; a = a->next_in_conn)
                attach_audit_input(a);
    }
    if (now - r->last_health >= 1000) {
        r->last_health = now;
        uint64_t dropped, errors;
        char last[256];
        store_health(r->store, &dropped, &errors, last, sizeof last);
        if (errors > r->health_errors)
            log_error("store: %llu write error(s): %s; sessions keep running, the log has a gap",
                      (unsigned long long)(errors - r->health_errors), last);
        if (dropped > r->health_dropped)
            log_warn("store: %llu bytes of output not logged (disk too slow or full)",
                     (unsigned long long)(dropped - r->health_dropped));
        r->health_errors = errors;
        r->health_dropped = dropped;
    }
}

/* Runs every 100 ms. */
void relay_tick(struct relay *r)
{
    uint64_t now = now_ms();
    for (struct session *s = r->sessions; s; s = s->next)
        session_tick(s, now);
    relay_store_tick(r, now);
    for (struct conn *c = r->conns, *next; c; c = next) {
        next = c->next;
        conn_tick(c, now);
    }
    relay_reap(r);
}

/* Begins a clean shutdown. */
void relay_shutdown(struct relay *r)
{
    if (r->shutting_down)
        return;
    r->shutting_down = true;
    r->shutdown_at = now_ms();
    log_info("shutting down: %u connections, %u sessions", r->nconns, r->nsessions);
    for (struct conn *c = r->conns; c; c = c->next)
        conn_close(c, PTC_CLOSE_GOING_AWAY, "relay shutting down");
    for (struct session *s = r->sessions; s; s = s->next)
        if (!ptc_state_is_ended(s->state) && !s->reaped) {
            pty_signal(s->pid, SIGHUP);
            /* A stopped program would keep SIGHUP pending until continued. */
            pty_signal(s->pid, SIGCONT);
        }
}

/* Whether the shutdown has finished (or its grace ran out, after SIGKILL to what is left). */
bool relay_shutdown_done(struct relay *r)
{
    bool children = false;
    for (struct session *s = r->sessions; s; s = s->next)
        children |= s->pid > 0 && !s->reaped;
    if (!children && !r->nconns)
        return true;
    if (now_ms() - r->shutdown_at < SHUTDOWN_GRACE_MS)
        return false;
    for (struct session *s = r->sessions; s; s = s->next)
        if (s->pid > 0 && !s->reaped)
            pty_signal(s->pid, SIGKILL);
    return true;
}

/* EVENT session to every subscriber. */
void relay_broadcast_session(struct relay *r, const struct session *s, bool removed)
{
    for (struct conn *c = r->conns; c; c = c->next)
        if (c->subscribed && !c->dead && !c->close_code)
            conn_event_session(c, s, removed);
}

/* Records an audit event: kind, session, the connection's token name and peer, and a detail. */
void relay_audit(struct relay *r, const char *kind, const struct session *s, const struct conn *c,
                 const char *fmt, ...)
{
    if (!r->store)
        return;
    char detail[256] = "";
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(detail, sizeof detail, fmt, ap);
        va_end(ap);
    }
    store_event(r->store, kind, s ? &s->id : NULL, c ? c->token_name : NULL, c ? c->peer : NULL,
                fmt ? detail : NULL);
}
