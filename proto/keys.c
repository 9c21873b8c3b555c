/*
 * Key names to the bytes an xterm sends for them in normal (not application) cursor mode, for
 * `ptcat send --key` and scripts. Named keys live in the ptc_keys table; the control family
 * (C-a .. C-z, C-@, C-[, C-\, C-], C-^, C-_, C-Space) is computed, since each is one byte below
 * 0x20. All names are matched without regard to case.
 */
#include "ptc.h"

#include <string.h>
#include <strings.h>

/* One key per line: clang-format would pack the table into columns. */
/* clang-format off */
#define KEY(n, b) {n, b, (uint8_t)(sizeof b - 1)}

/* The named keys, NULL-name terminated. */
const struct ptc_key ptc_keys[] = {
    KEY("Enter", "\r"),
    KEY("Tab", "\t"),
    KEY("Esc", "\x1b"),
    KEY("Space", " "),
    KEY("Backspace", "\x7f"),
    KEY("Up", "\x1b[A"),
    KEY("Down", "\x1b[B"),
    KEY("Right", "\x1b[C"),
    KEY("Left", "\x1b[D"),
    KEY("Home", "\x1b[H"),
    KEY("End", "\x1b[F"),
    KEY("Insert", "\x1b[2~"),
    KEY("Delete", "\x1b[3~"),
    KEY("PgUp", "\x1b[5~"),
    KEY("PgDn", "\x1b[6~"),
    KEY("F1", "\x1bOP"),
    KEY("F2", "\x1bOQ"),
    KEY("F3", "\x1bOR"),
    KEY("F4", "\x1bOS"),
    KEY("F5", "\x1b[15~"),
    KEY("F6", "\x1b[17~"),
    KEY("F7", "\x1b[18~"),
    KEY("F8", "\x1b[19~"),
    KEY("F9", "\x1b[20~"),
    KEY("F10", "\x1b[21~"),
    KEY("F11", "\x1b[23~"),
    KEY("F12", "\x1b[24~"),
    {NULL, NULL, 0},
};
/* clang-format on */

/* One storage byte per control code, so C-<x> can hand out a pointer to static bytes. */
static const char ctl_bytes[32] = {
    0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15,
    16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31,
};

/* The control code for the part after "C-", or -1. */
static int ctl_code(const char *k)
{
    if (strcasecmp(k, "Space") == 0)
        return 0;
    if (k[0] == '\0' || k[1] != '\0')
        return -1;
    char c = k[0];
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 1;
    if (c >= 'A' && c <= 'Z')
        return c - 'A' + 1;
    switch (c) {
    case '@':
        return 0x00;
    case '[':
        return 0x1b;
    case '\\':
        return 0x1c;
    case ']':
        return 0x1d;
    case '^':
        return 0x1e;
    case '_':
        return 0x1f;
    default:
        return -1;
    }
}

/* Looks up a key name (any case): 0 with static bytes and their count, or PTC_EINVAL. */
int ptc_key_lookup(const char *name, const char **bytes, size_t *n)
{
    if (!name)
        return PTC_EINVAL;
    if ((name[0] == 'C' || name[0] == 'c') && name[1] == '-') {
        int code = ctl_code(name + 2);
        if (code < 0)
            return PTC_EINVAL;
        *bytes = &ctl_bytes[code];
        *n = 1;
        return 0;
    }
    for (const struct ptc_key *k = ptc_keys; k->name; k++) {
        if (strcasecmp(name, k->name) == 0) {
            *bytes = k->bytes;
            *n = k->len;
            return 0;
        }
    }
    return PTC_EINVAL;
}
