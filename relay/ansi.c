/*
 * ansi: the sliding window of recent plain text that a `wait` pattern is matched against. The
 * stripping itself is libptc's (ptc_ansi_strip); this keeps the newest text when it overflows.
 */
#include <string.h>

#include "relay.h"

/* Appends the text of in[0..n) to the window out (cap bytes, *len used; see relay.h). */
void ansi_strip(struct ansi *a, const uint8_t *in, size_t n, char *out, size_t cap, size_t *len)
{
    uint8_t text[4096];
    if (!cap)
        return;
    while (n) {
        size_t piece = n < sizeof text ? n : sizeof text;
        size_t m = ptc_ansi_strip(&a->p, in, piece, text);
        in += piece;
        n -= piece;
        if (m + 1 > cap) {
            /* Larger than the window: only its tail fits. */
            memcpy(out, text + m - (cap - 1), cap - 1);
            *len = cap - 1;
            continue;
        }
        if (*len + m + 1 > cap) {
            /* Slide: drop the oldest text, keeping at most half the window, so patterns see
             * recent output and the window does not slide on every chunk. */
            size_t keep = cap - 1 - m < cap / 2 ? cap - 1 - m : cap / 2;
            if (keep > *len)
                keep = *len;
            memmove(out, out + (*len - keep), keep);
            *len = keep;
        }
        memcpy(out + *len, text, m);
        *len += m;
    }
    out[*len] = 0;
}
