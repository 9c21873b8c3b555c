/*
 * Tests of proto/keys.c: every named key's exact xterm bytes, the whole control family, case
 * insensitivity, and names that must not resolve.
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "ptc.h"

static void expect(const char *name, const char *bytes, size_t n)
{
    const char *b = NULL;
    size_t len = 999;
    cr_assert_eq(ptc_key_lookup(name, &b, &len), 0, "%s", name);
    cr_assert_eq(len, n, "%s: length %zu", name, len);
    cr_assert_arr_eq(b, bytes, n, "%s: bytes", name);
}

Test(keys, named_keys_exact_bytes)
{
    expect("Enter", "\r", 1);
    expect("Tab", "\t", 1);
    expect("Esc", "\x1b", 1);
    expect("Space", " ", 1);
    expect("Backspace", "\x7f", 1);
    expect("Up", "\x1b[A", 3);
    expect("Down", "\x1b[B", 3);
    expect("Right", "\x1b[C", 3);
    expect("Left", "\x1b[D", 3);
    expect("Home", "\x1b[H", 3);
    expect("End", "\x1b[F", 3);
    expect("Insert", "\x1b[2~", 4);
    expect("Delete", "\x1b[3~", 4);
    expect("PgUp", "\x1b[5~", 4);
    expect("PgDn", "\x1b[6~", 4);
    expect("F1", "\x1bOP", 3);
    expect("F2", "\x1bOQ", 3);
    expect("F3", "\x1bOR", 3);
    expect("F4", "\x1bOS", 3);
    expect("F5", "\x1b[15~", 5);
    expect("F6", "\x1b[17~", 5);
    expect("F7", "\x1b[18~", 5);
    expect("F8", "\x1b[19~", 5);
    expect("F9", "\x1b[20~", 5);
    expect("F10", "\x1b[21~", 5);
    expect("F11", "\x1b[23~", 5);
    expect("F12", "\x1b[24~", 5);
}

Test(keys, control_family)
{
    char name[8];
    for (char c = 'a'; c <= 'z'; c++) {
        char want = (char)(c - 'a' + 1);
        snprintf(name, sizeof name, "C-%c", c);
        expect(name, &want, 1);
        snprintf(name, sizeof name, "C-%c", c - 'a' + 'A');
        expect(name, &want, 1);
        snprintf(name, sizeof name, "c-%c", c);
        expect(name, &want, 1);
    }
    expect("C-c", "\x03", 1);
    expect("C-d", "\x04", 1);
    expect("C-@", "\0", 1);
    expect("C-[", "\x1b", 1);
    expect("C-\\", "\x1c", 1);
    expect("C-]", "\x1d", 1);
    expect("C-^", "\x1e", 1);
    expect("C-_", "\x1f", 1);
    expect("C-Space", "\0", 1);
    expect("c-space", "\0", 1);
}

Test(keys, case_insensitive)
{
    expect("enter", "\r", 1);
    expect("ENTER", "\r", 1);
    expect("pgdn", "\x1b[6~", 4);
    expect("f12", "\x1b[24~", 5);
    expect("bAcKsPaCe", "\x7f", 1);
}

Test(keys, unknown_names)
{
    const char *bad[] = {"",    "C-", "C-ab",   "C-1", "C-?", "C-Spacex", "Enterx",
                         "F13", "F0", "Ctrl-c", "C c", "Up ", "PageUp",   "-"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *b = (const char *)1;
        size_t n = 77;
        cr_assert_eq(ptc_key_lookup(bad[i], &b, &n), PTC_EINVAL, "'%s'", bad[i]);
        cr_assert_eq(n, 77);
    }
    const char *b;
    size_t n;
    cr_assert_eq(ptc_key_lookup(NULL, &b, &n), PTC_EINVAL);
}

Test(keys, table_is_consistent)
{
    size_t count = 0;
    for (const struct ptc_key *k = ptc_keys; k->name; k++, count++) {
        cr_assert_eq(k->len, strlen(k->bytes), "%s", k->name);
        cr_assert_gt(k->len, 0);
        cr_assert_neq(strncmp(k->name, "C-", 2), 0, "the control family is not in the table");
        const char *b;
        size_t n;
        cr_assert_eq(ptc_key_lookup(k->name, &b, &n), 0);
        cr_assert_eq(b, k->bytes);
        for (const struct ptc_key *o = ptc_keys; o != k; o++)
            cr_assert_neq(strcasecmp(o->name, k->name), 0, "duplicate %s", k->name);
    }
    cr_assert_eq(count, 27); /* Enter Tab Esc Space Backspace, 4 arrows, Home End Insert Delete
                                PgUp PgDn, F1-F12 */
}
