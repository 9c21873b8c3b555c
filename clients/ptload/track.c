/*
 * track: counts one session's output as one connection receives it. OUTPUT offsets must follow
 * each other: a jump forward is bytes lost, a step back is bytes received twice. Bytes are compared
 * with what the program is known to write (the generator's 64-byte line, or the --file contents),
 * so a byte that arrives at the right offset with the wrong value is caught too. The STATE that
 * reports the end carries `end`; PTC1 sends it after the last byte, so whatever is still missing
 * then (up to `end`, or up to the count the program is known to write) is lost.
 */
#include <stdio.h>
#include <string.h>

#include "ptload.h"

#define PAT_BUF (64 * 1024)

static const uint8_t *pattern_buf(void)
{
    static uint8_t buf[PAT_BUF + LOAD_PATTERN_LEN];
    static bool made;
    if (!made) {
        for (size_t i = 0; i < sizeof buf; i++)
            buf[i] = i % LOAD_PATTERN_LEN == LOAD_PATTERN_LEN - 1
                         ? '\n'
                         : (uint8_t)LOAD_PATTERN[i % LOAD_PATTERN_LEN];
        made = true;
    }
    return buf;
}

static uint64_t count_diff(const uint8_t *a, const uint8_t *b, size_t n)
{
    uint64_t d = 0;
    for (size_t i = 0; i < n; i++)
        d += a[i] != b[i];
    return d;
}

/* Bytes of p[0..n) at offset off that differ from what the program writes. */
static uint64_t verify(const struct lsess *s, uint64_t off, const uint8_t *p, size_t n)
{
    uint64_t bad = 0;
    if (s->verify == VERIFY_PATTERN) {
        const uint8_t *pat = pattern_buf();
        while (n) {
            size_t m = n < PAT_BUF ? n : PAT_BUF;
            const uint8_t *want = pat + ((off - s->base) % LOAD_PATTERN_LEN);
            if (memcmp(want, p, m))
                bad += count_diff(want, p, m);
            p += m;
            off += m;
            n -= m;
        }
    } else if (s->verify == VERIFY_FILE) {
        const struct load *L = s->lc ? s->lc->L : NULL;
        size_t have = L && off < L->file_len ? L->file_len - (size_t)off : 0;
        size_t m = n < have ? n : have;
        if (m && memcmp(L->file_data + off, p, m))
            bad += count_diff(L->file_data + off, p, m);
        bad += n - m; /* beyond the end of the file */
    }
    return bad;
}

static void on_output(struct lsess *s, const struct ptc_frame *f)
{
    uint64_t off;
    const uint8_t *p;
    size_t n;
    if (ptc_output_parse(f, &off, &p, &n) < 0)
        return;
    uint64_t now = ptc_client_now_us();
    if (!s->t_first_us)
        s->t_first_us = now;
    s->t_last_us = now;
    if (off > s->next) {
        s->skipped += off - s->next;
    } else if (off < s->next) {
        uint64_t again = s->next - off < n ? s->next - off : n;
        s->dup += again;
        p += again;
        off += again;
        n -= (size_t)again;
    }
    if (!n)
        return;
    if (s->verify && off < s->base) { /* before the known stream: not what was asked for */
        size_t pre = s->base - off < n ? (size_t)(s->base - off) : n;
        s->bad += pre;
        if (pre < n)
            s->bad += verify(s, s->base, p + pre, n - pre);
    } else if (s->verify) {
        s->bad += verify(s, off, p, n);
    }
    s->bytes += n;
    s->next = off + n;
    if (s->window && s->next - s->acked >= s->window / 4 && s->lc && s->lc->c) {
        /* Consumed: let the relay send more (at most window bytes past this ACK). */
        s->acked = s->next;
        ptc_client_send_ack(s->lc->c, &s->id, s->acked);
    }
    if (s->hooks.on_output)
        s->hooks.on_output(s, off, p, n);
}

static void on_state(struct lsess *s, const struct ptc_frame *f)
{
    struct ptc_statemsg m;
    struct ptc_perr pe;
    if (ptc_state_parse(f->payload, f->len, &m, &pe) < 0) {
        if (s->lc)
            load_error(s->lc->L, "session %u: bad STATE: %s", s->index, pe.message);
        return;
    }
    s->state = m.state;
    if (!ptc_state_is_ended(m.state) || s->ended)
        return;
    s->ended = true;
    s->t_end_us = ptc_client_now_us();
    s->end = m.end;
    s->exit_code = m.has & PTC_HAS_EXIT_CODE ? m.exit_code : -1;
    /* The end comes after the last byte: whatever has not arrived by now never will. */
    if (m.end > s->next) {
        s->lost += m.end - s->next;
        s->next = m.end;
    }
    if (s->expect && s->next < s->expect)
        s->lost += s->expect - s->next; /* the relay's count is short of what the program wrote */
    if (s->expect && m.end > s->expect)
        s->bad += m.end - s->expect;
    if (s->lc)
        load_poke(s->lc->L);
    if (s->hooks.on_end)
        s->hooks.on_end(s); /* may free s */
}

/* Routes an OUTPUT or STATE frame to the tracker. */
void track_frame(struct lsess *s, const struct ptc_frame *f)
{
    if (f->type == PTC_OUTPUT)
        on_output(s, f);
    else if (f->type == PTC_STATE)
        on_state(s, f);
}

/* Adds the totals of ss[0..n) to o. */
void track_totals(json_t *o, struct lsess **ss, uint32_t n)
{
    uint64_t bytes = 0, lost = 0, skipped = 0, dup = 0, bad = 0, ended = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (!ss[i])
            continue;
        bytes += ss[i]->bytes;
        lost += ss[i]->lost;
        skipped += ss[i]->skipped;
        dup += ss[i]->dup;
        bad += ss[i]->bad;
        ended += ss[i]->ended;
    }
    json_object_set_new(o, "bytes", json_integer((json_int_t)bytes));
    json_object_set_new(o, "bytes_lost", json_integer((json_int_t)(lost + skipped)));
    json_object_set_new(o, "bytes_skipped", json_integer((json_int_t)skipped));
    json_object_set_new(o, "bytes_lost_at_exit", json_integer((json_int_t)lost));
    json_object_set_new(o, "bytes_duplicated", json_integer((json_int_t)dup));
    json_object_set_new(o, "bytes_wrong", json_integer((json_int_t)bad));
    json_object_set_new(o, "sessions_ended", json_integer((json_int_t)ended));
}

/* Lost + duplicated + wrong bytes over ss[0..n). */
uint64_t track_damage(struct lsess **ss, uint32_t n)
{
    uint64_t d = 0;
    for (uint32_t i = 0; i < n; i++)
        if (ss[i])
            d += ss[i]->lost + ss[i]->skipped + ss[i]->dup + ss[i]->bad;
    return d;
}

/* Lost at exit + duplicated + wrong over ss[0..n). */
uint64_t track_faults(struct lsess **ss, uint32_t n)
{
    uint64_t d = 0;
    for (uint32_t i = 0; i < n; i++)
        if (ss[i])
            d += ss[i]->lost + ss[i]->dup + ss[i]->bad;
    return d;
}
