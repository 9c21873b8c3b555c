/*
 * Unit tests of relay/ansi.c: escape sequences removed (CSI, OSC with BEL or ST, charset
 * selections, two-byte ESC), CR and other controls dropped, text kept; the same result whole and
 * fed one byte at a time; the sliding window keeps the newest text.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "relay.h"

static void strip_whole(const char *in, char *out, size_t cap)
{
    struct ansi a = {0};
    size_t len = 0;
    ansi_strip(&a, (const uint8_t *)in, strlen(in), out, cap, &len);
}

static void strip_bytewise(const char *in, char *out, size_t cap)
{
    struct ansi a = {0};
    size_t len = 0;
    for (size_t i = 0; in[i]; i++)
        ansi_strip(&a, (const uint8_t *)in + i, 1, out, cap, &len);
}

struct kase {
    const char *in, *want;
};

static const struct kase cases[] = {
    {"plain text\n", "plain text\n"},
    {"\x1b[1;31mred\x1b[0m and \x1b[Knormal", "red and normal"},
    {"\x1b]0;window title\x07prompt$ ", "prompt$ "},
    {"\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\", "link"},
    {"line1\r\nline2\r\n", "line1\nline2\n"},
    {"\x1b(Bascii\x1b" "7saved\x1b" "8", "asciisaved"},
    {"a\tb\x07\x08" "c", "a\tbc"},
    {"\x1b[?2004hbracketed\x1b[?2004l", "bracketed"},
    {"caf\xc3\xa9", "caf\xc3\xa9"},
    {"Continue? [y/N] ", "Continue? [y/N] "},
};

Test(ansi, strips_escapes_whole_and_byte_by_byte)
{
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char a[256], b[256];
        strip_whole(cases[i].in, a, sizeof a);
        strip_bytewise(cases[i].in, b, sizeof b);
        cr_assert_str_eq(a, cases[i].want, "case %zu whole", i);
        cr_assert_str_eq(b, cases[i].want, "case %zu bytewise", i);
    }
}

Test(ansi, window_slides_and_keeps_the_newest_text)
{
    char out[64];
    struct ansi a = {0};
    size_t len = 0;
    for (int i = 0; i < 100; i++) {
        char line[16];
        int n = snprintf(line, sizeof line, "%03d ", i);
        ansi_strip(&a, (const uint8_t *)line, (size_t)n, out, sizeof out, &len);
    }
    cr_assert_lt(len, sizeof out);
    cr_assert_eq(strlen(out), len);
    cr_assert(strstr(out, "099 ") != NULL, "newest text kept: %s", out);
    cr_assert(strstr(out, "000 ") == NULL, "oldest text dropped: %s", out);
}

Test(ansi, libptc_stripper_works_in_place)
{
    char buf[] = "\x1b[32mok\x1b[0m\r\n";
    struct ptc_ansi a = {0};
    size_t m = ptc_ansi_strip(&a, (uint8_t *)buf, strlen(buf), (uint8_t *)buf);
    cr_assert_eq(m, 3);
    cr_assert_eq(memcmp(buf, "ok\n", 3), 0);
}

Test(ansi, a_chunk_larger_than_the_window_keeps_its_tail)
{
    char out[16];
    size_t len = 0;
    struct ansi a = {0};
    const char *in = "0123456789abcdefghijklmnopqrstuvwxyz";
    ansi_strip(&a, (const uint8_t *)in, strlen(in), out, sizeof out, &len);
    cr_assert_eq(len, sizeof out - 1);
    cr_assert_str_eq(out, "lmnopqrstuvwxyz");
}
