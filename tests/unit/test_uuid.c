/*
 * Tests of proto/uuid.c: version and variant bits of random UUIDs, distinctness, the text form
 * against a known UUID, parsing in both cases, and every malformed text rejected without touching
 * the output.
 */
#include <criterion/criterion.h>

#include <string.h>

#include "ptc.h"

static const ptc_uuid KNOWN = {{0x1b, 0x4e, 0x28, 0xba, 0x2f, 0xa1, 0x11, 0xd2, 0x88, 0x3f, 0x00,
                                0xb0, 0xd0, 0x22, 0xa9, 0xee}};
static const char KNOWN_TEXT[] = "1b4e28ba-2fa1-11d2-883f-00b0d022a9ee";

Test(uuid, random_is_v4_and_distinct)
{
    ptc_uuid u[64];
    for (int i = 0; i < 64; i++) {
        cr_assert_eq(ptc_uuid_random(&u[i]), 0);
        cr_assert_eq(u[i].b[6] >> 4, 4, "version nibble");
        cr_assert_eq(u[i].b[8] >> 6, 2, "variant bits");
        cr_assert_not(ptc_uuid_is_zero(&u[i]));
        for (int j = 0; j < i; j++)
            cr_assert_not(ptc_uuid_eq(&u[i], &u[j]));
        char t[PTC_UUID_STRLEN + 1];
        ptc_uuid_format(&u[i], t);
        cr_assert_eq(t[14], '4');
        cr_assert(strchr("89ab", t[19]) != NULL);
    }
    cr_assert_eq(ptc_uuid_random(NULL), PTC_EINVAL);
}

Test(uuid, format_known)
{
    char t[PTC_UUID_STRLEN + 2];
    memset(t, 'X', sizeof t);
    ptc_uuid_format(&KNOWN, t);
    cr_assert_str_eq(t, KNOWN_TEXT);
    cr_assert_eq(t[PTC_UUID_STRLEN + 1], 'X');
    ptc_uuid z = {{0}};
    ptc_uuid_format(&z, t);
    cr_assert_str_eq(t, "00000000-0000-0000-0000-000000000000");
}

Test(uuid, parse_roundtrip_and_case)
{
    ptc_uuid u;
    cr_assert_eq(ptc_uuid_parse(KNOWN_TEXT, 36, &u), 0);
    cr_assert(ptc_uuid_eq(&u, &KNOWN));
    cr_assert_eq(ptc_uuid_parse("1B4E28BA-2FA1-11D2-883F-00B0D022A9EE", 36, &u), 0);
    cr_assert(ptc_uuid_eq(&u, &KNOWN));
    /* n bounds the read: a longer string with a valid 36-char head parses. */
    cr_assert_eq(ptc_uuid_parse("1b4e28ba-2fa1-11d2-883f-00b0d022a9eeTRAILING", 36, &u), 0);
    for (int i = 0; i < 100; i++) {
        ptc_uuid r, back;
        char t[PTC_UUID_STRLEN + 1];
        cr_assert_eq(ptc_uuid_random(&r), 0);
        ptc_uuid_format(&r, t);
        cr_assert_eq(ptc_uuid_parse(t, strlen(t), &back), 0);
        cr_assert(ptc_uuid_eq(&r, &back));
    }
}

Test(uuid, parse_rejects)
{
    const char *bad[] = {
        "",
        "1b4e28ba-2fa1-11d2-883f-00b0d022a9e",   /* 35 */
        "1b4e28ba-2fa1-11d2-883f-00b0d022a9eee", /* 37 */
        "1b4e28ba2fa1-11d2-883f-00b0d022a9ee0",  /* dash missing */
        "1b4e28ba-2fa1-11d2-883f_00b0d022a9ee",  /* wrong separator */
        "1b4e28bg-2fa1-11d2-883f-00b0d022a9ee",  /* not hex */
        "1b4e28ba-2fa1-11d2-883f-00b0d022a9e ",
        "-1b4e28ba2fa1-11d2-883f-00b0d022a9ee",
        "{1b4e28ba-2fa1-11d2-883f-00b0d022a9e}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ptc_uuid u;
        memset(&u, 0x5a, sizeof u);
        cr_assert_eq(ptc_uuid_parse(bad[i], strlen(bad[i]), &u), PTC_EINVAL, "%s", bad[i]);
        for (int k = 0; k < 16; k++)
            cr_assert_eq(u.b[k], 0x5a, "output touched on failure");
    }
    ptc_uuid u;
    cr_assert_eq(ptc_uuid_parse(KNOWN_TEXT, 35, &u), PTC_EINVAL);
    cr_assert_eq(ptc_uuid_parse(NULL, 36, &u), PTC_EINVAL);
}

Test(uuid, zero_and_eq)
{
    ptc_uuid z = {{0}}, a = KNOWN, b = KNOWN;
    cr_assert(ptc_uuid_is_zero(&z));
    cr_assert_not(ptc_uuid_is_zero(&a));
    for (int i = 0; i < 16; i++) {
        ptc_uuid one = {{0}};
        one.b[i] = 1;
        cr_assert_not(ptc_uuid_is_zero(&one), "byte %d", i);
    }
    cr_assert(ptc_uuid_eq(&a, &b));
    b.b[15] ^= 1;
    cr_assert_not(ptc_uuid_eq(&a, &b));
    b = KNOWN;
    b.b[0] ^= 0x80;
    cr_assert_not(ptc_uuid_eq(&a, &b));
}

Test(uuid, hex_decode_valid)
{
    uint8_t out[8];
    memset(out, 0x5a, sizeof out);
    cr_assert_eq(ptc_hex_decode("00fFa51B7c", 10, out, sizeof out), 0);
    const uint8_t want[] = {0x00, 0xff, 0xa5, 0x1b, 0x7c};
    cr_assert_arr_eq(out, want, sizeof want);
    cr_assert_eq(out[5], 0x5a, "wrote past n/2 bytes");
    /* n bounds the read (no NUL needed); exactly cap bytes fit; nothing at all is fine */
    cr_assert_eq(ptc_hex_decode("0102zz", 4, out, 2), 0);
    cr_assert_eq(out[0], 0x01);
    cr_assert_eq(out[1], 0x02);
    cr_assert_eq(ptc_hex_decode("", 0, out, 0), 0);
    cr_assert_eq(ptc_hex_decode(NULL, 0, NULL, 0), 0);
}

Test(uuid, hex_decode_odd_length)
{
    uint8_t out[4];
    memset(out, 0x5a, sizeof out);
    cr_assert_eq(ptc_hex_decode("abc", 3, out, sizeof out), PTC_EINVAL);
    cr_assert_eq(ptc_hex_decode("a", 1, out, sizeof out), PTC_EINVAL);
    for (size_t k = 0; k < sizeof out; k++)
        cr_assert_eq(out[k], 0x5a, "output touched on failure");
    cr_assert_eq(ptc_hex_decode(NULL, 2, out, sizeof out), PTC_EINVAL);
}

Test(uuid, hex_decode_bad_digit)
{
    const char *bad[] = {"0g", "g0", "0 ", " 0", "-1", "0x", "1/", ":1", "@A", "G0", "`a", "f\xff"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint8_t out[1] = {0x5a};
        cr_assert_eq(ptc_hex_decode(bad[i], 2, out, 1), PTC_EINVAL, "'%s'", bad[i]);
        cr_assert_eq(out[0], 0x5a, "'%s': output touched", bad[i]);
    }
    uint8_t out[3];
    cr_assert_eq(ptc_hex_decode("0102x3", 6, out, sizeof out), PTC_EINVAL);
    cr_assert_eq(ptc_hex_decode("010203\0", 8, out, 4), PTC_EINVAL, "a NUL inside n is no digit");
}

Test(uuid, hex_decode_too_long)
{
    uint8_t out[4] = {0x5a, 0x5a, 0x5a, 0x5a};
    cr_assert_eq(ptc_hex_decode("0102", 4, out, 1), PTC_ESPACE);
    cr_assert_eq(ptc_hex_decode("0102030405", 10, out, sizeof out), PTC_ESPACE);
    cr_assert_eq(ptc_hex_decode("01", 2, out, 0), PTC_ESPACE);
    for (size_t k = 0; k < sizeof out; k++)
        cr_assert_eq(out[k], 0x5a, "output touched on PTC_ESPACE");
}
