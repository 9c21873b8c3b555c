/*
 * relay: the context's own chores: the periodic tick that drives timeouts (attention, idle TTL,
 * kill grace, hello timeout, stalls, waits), freeing what died during a loop turn, broadcasting
 * session events to subscribers, and the clean shutdown (clients get 1001, programs SIGHUP, then
 * SIGKILL for what is left after a short grace).
 */
#include <signal.h>
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

/* Runs every 100 ms. */
void relay_tick(struct relay *r)
{
    uint64_t now = now_ms();
    for (struct session *s = r->sessions; s; s = s->next)
        session_tick(s, now);
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
        if (!ptc_state_is_ended(s->state) && !s->reaped)
            pty_signal(s->pid, SIGHUP);
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
