/*
 * Session ids: RFC 4122 version 4 UUIDs drawn from OpenSSL's RAND_bytes, their 36-character text
 * form, and comparisons. On the wire a UUID is its 16 bytes in RFC 4122 order, exactly as stored in
 * ptc_uuid, so no conversion happens anywhere else. The all-zero UUID names the connection itself.
 */
#include "ptc.h"

#include <string.h>

#include <openssl/rand.h>

/* Fills *u with a random version 4, variant 1 UUID. 0, or PTC_EINVAL when the RNG fails. */
int ptc_uuid_random(ptc_uuid *u)
{
    if (!u || RAND_bytes(u->b, (int)sizeof u->b) != 1)
        return PTC_EINVAL;
    u->b[6] = (uint8_t)((u->b[6] & 0x0f) | 0x40); /* version 4 */
    u->b[8] = (uint8_t)((u->b[8] & 0x3f) | 0x80); /* variant 10xx */
    return 0;
}

/* Byte indexes after which the text form has a dash: 8-4-4-4-12 hex digits. */
static bool dash_after(int i)
{
    return i == 3 || i == 5 || i == 7 || i == 9;
}

/* Writes the lowercase 8-4-4-4-12 text form and a NUL. */
void ptc_uuid_format(const ptc_uuid *u, char out[PTC_UUID_STRLEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    char *o = out;
    for (int i = 0; i < 16; i++) {
        *o++ = hex[u->b[i] >> 4];
        *o++ = hex[u->b[i] & 0xf];
        if (dash_after(i))
            *o++ = '-';
    }
    *o = '\0';
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes n hex digits (either case) at s into out[0..n/2). 0, PTC_EINVAL or PTC_ESPACE. */
int ptc_hex_decode(const char *s, size_t n, uint8_t *out, size_t cap)
{
    if ((!s && n) || n % 2)
        return PTC_EINVAL;
    if (n / 2 > cap)
        return PTC_ESPACE;
    for (size_t i = 0; i < n; i += 2) {
        int hi = hexval(s[i]), lo = hexval(s[i + 1]);
        if (hi < 0 || lo < 0)
            return PTC_EINVAL;
        out[i / 2] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

/* Parses exactly 36 characters of text form, hex digits in either case. 0 or PTC_EINVAL. */
int ptc_uuid_parse(const char *s, size_t n, ptc_uuid *u)
{
    /* bytes per dash-separated group: 8-4-4-4-12 hex digits */
    static const uint8_t group[5] = {4, 2, 2, 2, 6};
    if (!s || !u || n != PTC_UUID_STRLEN)
        return PTC_EINVAL;
    ptc_uuid tmp;
    size_t k = 0, b = 0;
    for (int g = 0; g < 5; g++) {
        if (g && s[k++] != '-')
            return PTC_EINVAL;
        if (ptc_hex_decode(s + k, 2u * group[g], tmp.b + b, group[g]) < 0)
            return PTC_EINVAL;
        k += 2u * group[g];
        b += group[g];
    }
    *u = tmp; /* *u is untouched on failure */
    return 0;
}

/* True if all 16 bytes are zero. */
bool ptc_uuid_is_zero(const ptc_uuid *u)
{
    for (int i = 0; i < 16; i++)
        if (u->b[i])
            return false;
    return true;
}

/* True if both UUIDs have the same 16 bytes. */
bool ptc_uuid_eq(const ptc_uuid *a, const ptc_uuid *b)
{
    return memcmp(a->b, b->b, 16) == 0;
}
