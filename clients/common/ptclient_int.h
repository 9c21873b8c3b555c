/*
 * ptclient_int.h: what the synchronous layer (sync.c) needs from ptclient.c beyond ptclient.h.
 * Not for use outside clients/common. ptclient.c keeps the state (pending requests, the queue of
 * kept frames) because its lws callback fills it; sync.c only runs the loop until that state says
 * a wait is over. No libwebsockets here either.
 */
#ifndef PTCLIENT_INT_H
#define PTCLIENT_INT_H

#include "ptclient.h"

/* The context c belongs to. */
struct ptc_client_ctx *ptc_client_conn_ctx(const struct ptc_client_conn *c);

/*
 * Where a synchronous call's REPLY goes, on the caller's stack. ptclient.c sets done when the
 * REPLY arrives (status: 0 or the parse error, rep->raw and rep->r filled and then owned by the
 * caller) or when the connection ends or is freed first (status PTC_CLIENT_ECLOSED).
 */
struct ptc_client_sync_slot {
    bool done;
    int status;
    struct ptc_client_reply *rep;
};

/*
 * As ptc_client_request, with the REPLY delivered into *slot instead of a callback. Returns
 * PTC_CLIENT_ECLOSED, not ESTATE, when the connection has ended or is closing. slot must stay
 * valid until it is done or ptc_client_request_cancel(c, *id) is called.
 */
int ptc_client_request_sync(struct ptc_client_conn *c, const ptc_uuid *session,
                            struct ptc_request *req, struct ptc_client_sync_slot *slot,
                            uint64_t *id);
/* Forgets the pending request id (a timed-out call): its REPLY, if one comes, is then a frame. */
void ptc_client_request_cancel(struct ptc_client_conn *c, uint64_t id);

/* A frame kept for ptc_client_wait_frame (on_frame NULL); opaque outside ptclient.c. */
struct ptc_client_kept;
/*
 * Takes the oldest kept frame that matches flt (NULL: any) into *out (the caller frees it with
 * ptc_client_frame_free) and resumes reading if it was paused for the kept bytes. Only frames
 * after *scanned are looked at (NULL: all); when none matches, *scanned is advanced to the last
 * one, so a wait that calls this once per loop turn looks at each frame once. *scanned stays valid
 * until a frame is taken. Returns 1 if a frame was taken, 0 if not, PTC_CLIENT_ESTATE if the
 * connection has on_frame (nothing is kept).
 */
int ptc_client_kept_take(struct ptc_client_conn *c, const struct ptc_client_filter *flt,
                         struct ptc_client_kept **scanned, struct ptc_client_frame *out);

#endif
