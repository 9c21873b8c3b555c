/*
 * ansi: turns terminal output into plain text for `wait` patterns. A small state machine that
 * survives chunk boundaries: CSI (ESC [ ... final 0x40-0x7e), OSC/DCS/APC/PM/SOS strings (ended by
 * BEL or ESC \), two-byte ESC sequences and charset selections are dropped, as are CR and other C0
 * controls but newline and tab. UTF-8 bytes pass through unchanged.
 */
#include <string.h>

#include "relay.h"

enum { A_TEXT = 0, A_ESC, A_CSI, A_STR, A_STR_ESC, A_CHARSET };

static void put(char *out, size_t cap, size_t *len, char ch)
{
    if (*len + 1 >= cap) {
        /* Slide: keep the newer half so patterns still see recent output. */
        size_t keep = cap / 2;
        memmove(out, out + (*len - keep), keep);
        *len = keep;
    }
    out[(*len)++] = ch;
}

/* Appends the text of in[0..n) to out (see relay.h). */
void ansi_strip(struct ansi *a, const uint8_t *in, size_t n, char *out, size_t cap, size_t *len)
{
    for (size_t i = 0; i < n; i++) {
        uint8_t ch = in[i];
        switch (a->st) {
        case A_TEXT:
            if (ch == 0x1b)
                a->st = A_ESC;
            else if (ch == '\n' || ch == '\t' || (ch >= 0x20 && ch != 0x7f))
                put(out, cap, len, (char)ch);
            break;
        case A_ESC:
            if (ch == '[')
                a->st = A_CSI;
            else if (ch == ']' || ch == 'P' || ch == '_' || ch == '^' || ch == 'X')
                a->st = A_STR;
            else if (ch == '(' || ch == ')' || ch == '*' || ch == '+' || ch == '#' || ch == '%')
                a->st = A_CHARSET;
            else
                a->st = A_TEXT;
            break;
        case A_CSI:
            if (ch >= 0x40 && ch <= 0x7e)
                a->st = A_TEXT;
            else if (ch == 0x1b)
                a->st = A_ESC;
            break;
        case A_STR:
            if (ch == 0x07)
                a->st = A_TEXT;
            else if (ch == 0x1b)
                a->st = A_STR_ESC;
            break;
        case A_STR_ESC:
            a->st = ch == '\\' ? A_TEXT : A_STR;
            break;
        case A_CHARSET:
            a->st = A_TEXT;
            break;
        }
    }
    if (cap)
        out[*len] = 0;
}
