/*
 * strip: terminal output as plain text for `logs --strip-ansi`. A small state machine that
 * survives chunk boundaries: CSI sequences (ESC [ ... final byte 0x40-0x7e), string sequences
 * (OSC, DCS, APC, PM, SOS, ended by BEL or ESC \), charset selections and other two-byte escapes
 * are dropped, as are CR and the C0 controls other than newline and tab. UTF-8 passes unchanged.
 */
#include "ptcat.h"

enum { S_TEXT = 0, S_ESC, S_CSI, S_STR, S_STR_ESC, S_CHARSET };

/* Writes the text of in[0..n) to out and returns its length. */
size_t strip_feed(struct strip *s, const uint8_t *in, size_t n, uint8_t *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t ch = in[i];
        switch (s->st) {
        case S_TEXT:
            if (ch == 0x1b)
                s->st = S_ESC;
            else if (ch == '\n' || ch == '\t' || (ch >= 0x20 && ch != 0x7f))
                out[o++] = ch;
            break;
        case S_ESC:
            if (ch == '[')
                s->st = S_CSI;
            else if (ch == ']' || ch == 'P' || ch == '_' || ch == '^' || ch == 'X')
                s->st = S_STR;
            else if (ch == '(' || ch == ')' || ch == '*' || ch == '+' || ch == '#' || ch == '%')
                s->st = S_CHARSET;
            else
                s->st = S_TEXT;
            break;
        case S_CSI:
            if (ch >= 0x40 && ch <= 0x7e)
                s->st = S_TEXT;
            else if (ch == 0x1b)
                s->st = S_ESC;
            break;
        case S_STR:
            if (ch == 0x07)
                s->st = S_TEXT;
            else if (ch == 0x1b)
                s->st = S_STR_ESC;
            break;
        case S_STR_ESC:
            s->st = ch == '\\' ? S_TEXT : S_STR;
            break;
        default:
            s->st = S_TEXT;
            break;
        }
    }
    return o;
}
