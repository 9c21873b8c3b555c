/*
 * sync.c: the synchronous layer for scripts and tests. It owns the blocking waits (ready, gone, a
 * call's REPLY, a kept frame) and the memory of what they hand back (ptc_client_reply,
 * ptc_client_frame). Each wait runs the context's loop with ptc_client_run_until until a condition
 * holds; the state it looks at (pending requests, kept frames) is kept by ptclient.c, reached
 * through ptclient_int.h. No libwebsockets here.
 */
#include "ptclient.h"
#include "ptclient_int.h"

#include <stdlib.h>
#include <string.h>

static bool ready_or_ended(void *arg)
{
    return ptc_client_is_ready(arg) || ptc_client_is_closed(arg);
}

/* Runs the loop until ready or ended. */
int ptc_client_wait_ready(struct ptc_client_conn *c, int timeout_ms)
{
    if (ptc_client_run_until(ptc_client_conn_ctx(c), ready_or_ended, c, timeout_ms) != 1)
        return PTC_CLIENT_ETIMEOUT;
    if (ptc_client_is_ready(c))
        return 0;
    return ptc_client_error(c) ? ptc_client_error(c) : PTC_CLIENT_ECLOSED;
}

static bool conn_gone(void *arg) { return ptc_client_is_gone(arg); }

/* Runs the loop until the socket is closed. */
int ptc_client_wait_gone(struct ptc_client_conn *c, int timeout_ms)
{
    return ptc_client_run_until(ptc_client_conn_ctx(c), conn_gone, c, timeout_ms) == 1
               ? 0
               : PTC_CLIENT_ETIMEOUT;
}

/* Frees a kept reply. */
void ptc_client_reply_free(struct ptc_client_reply *rep)
{
    if (!rep)
        return;
    ptc_reply_free(&rep->r);
    free(rep->raw);
    memset(rep, 0, sizeof(*rep));
}

static bool slot_done(void *arg) { return ((struct ptc_client_sync_slot *)arg)->done; }

/* Sends req and runs the loop until its reply. */
int ptc_client_call(struct ptc_client_conn *c, const ptc_uuid *session, struct ptc_request *req,
                    struct ptc_client_reply *rep, int timeout_ms)
{
    memset(rep, 0, sizeof(*rep));
    struct ptc_client_sync_slot slot = {.rep = rep};
    uint64_t id;
    int r = ptc_client_request_sync(c, session, req, &slot, &id);
    if (r)
        return r;
    /* c may be freed only by ctx_free, which cannot run inside this loop */
    if (ptc_client_run_until(ptc_client_conn_ctx(c), slot_done, &slot, timeout_ms) != 1) {
        ptc_client_request_cancel(c, id);
        ptc_client_reply_free(rep);
        return PTC_CLIENT_ETIMEOUT;
    }
    if (slot.status) {
        int st = slot.status;
        ptc_client_reply_free(rep);
        return st;
    }
    return 0;
}

/* Frees a kept frame. */
void ptc_client_frame_free(struct ptc_client_frame *fr)
{
    if (!fr)
        return;
    free(fr->raw);
    memset(fr, 0, sizeof(*fr));
}

struct wait_frame {
    struct ptc_client_conn *c;
    const struct ptc_client_filter *flt;
    struct ptc_client_frame *out;
    struct ptc_client_kept *scanned; /* last kept frame already looked at */
    int taken;                       /* ptc_client_kept_take's result */
};

static bool frame_taken(void *arg)
{
    struct wait_frame *w = arg;
    w->taken = ptc_client_kept_take(w->c, w->flt, &w->scanned, w->out);
    return w->taken != 0 || ptc_client_is_closed(w->c);
}

/* Takes the oldest kept frame matching filter, running the loop until one arrives. */
int ptc_client_wait_frame(struct ptc_client_conn *c, const struct ptc_client_filter *filter,
                          struct ptc_client_frame *out, int timeout_ms)
{
    memset(out, 0, sizeof(*out));
    struct wait_frame w = {.c = c, .flt = filter, .out = out};
    /* one look first: with on_frame set (ESTATE) or a match already kept, the loop is not run */
    if (!frame_taken(&w) &&
        ptc_client_run_until(ptc_client_conn_ctx(c), frame_taken, &w, timeout_ms) != 1)
        return PTC_CLIENT_ETIMEOUT;
    if (w.taken < 0)
        return w.taken;
    return w.taken ? 0 : PTC_CLIENT_ECLOSED;
}
