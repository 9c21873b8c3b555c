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

/* Parses exactly 36 characters of text form, hex digits in either case. 0 or PTC_EINVAL. */
int ptc_uuid_parse(const char *s, size_t n, ptc_uuid *u)
{
    if (!s || !u || n != PTC_UUID_STRLEN)
        return PTC_EINVAL;
    ptc_uuid tmp;
    size_t k = 0;
    for (int i = 0; i < 16; i++) {
        int hi = hexval(s[k]), lo = hexval(s[k + 1]);
        if (hi < 0 || lo < 0)
            return PTC_EINVAL;
        tmp.b[i] = (uint8_t)(hi << 4 | lo);
        k += 2;
        if (dash_after(i) && s[k++] != '-')
            return PTC_EINVAL;
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
