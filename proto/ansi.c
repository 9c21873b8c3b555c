/*
 * ansi: terminal output as plain text, for `wait` patterns in the relay and `logs --strip-ansi`
 * in ptcat. A small state machine that survives chunk boundaries: CSI (ESC [ ... final byte
 * 0x40-0x7e), string sequences (OSC, DCS, APC, PM, SOS, ended by BEL or ESC \), charset selections
 * and other two-byte escapes are dropped, as are CR and the C0 controls other than newline and
 * tab. UTF-8 passes through unchanged.
 */
#include "ptc.h"

enum { A_TEXT = 0, A_ESC, A_CSI, A_STR, A_STR_ESC, A_CHARSET };

/* Writes the text of in[0..n) to out (which may be in itself) and returns its length. */
size_t ptc_ansi_strip(struct ptc_ansi *a, const uint8_t *in, size_t n, uint8_t *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t ch = in[i];
        switch (a->st) {
        case A_TEXT:
            if (ch == 0x1b)
                a->st = A_ESC;
            else if (ch == '\n' || ch == '\t' || (ch >= 0x20 && ch != 0x7f))
                out[o++] = ch;
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
        default: /* A_CHARSET: its one byte is dropped */
            a->st = A_TEXT;
            break;
        }
    }
    return o;
}
