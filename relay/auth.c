/*
 * auth: tokens. A token is random text shown once; only its SHA-256 is kept in memory (and, with
 * the store, in the database). The admin token is created on first start and written to
 * DATA/admin.token with mode 0600 so the local user (and `make run`) can read it; that file is the
 * only place a token exists in clear. Checks compare hashes in constant time.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "relay.h"

/* SHA-256 of a token's text. */
void auth_hash(const char *tok, size_t n, uint8_t out[32])
{
    unsigned int len = 32;
    if (!EVP_Digest(tok, n, out, &len, EVP_sha256(), NULL))
        fatal("SHA-256 failed");
}

/* A new token: "ptr_" and 43 base64url characters of 32 random bytes. */
int auth_token_new(char *out, size_t cap)
{
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    uint8_t raw[33];
    if (cap < 4 + 44 + 1)
        return -EINVAL;
    if (RAND_bytes(raw, sizeof raw) != 1)
        return -EIO;
    memcpy(out, "ptr_", 4);
    size_t o = 4;
    for (size_t i = 0; i < 33; i += 3) {
        uint32_t v = (uint32_t)raw[i] << 16 | (uint32_t)raw[i + 1] << 8 | raw[i + 2];
        out[o++] = b64[(v >> 18) & 63];
        out[o++] = b64[(v >> 12) & 63];
        out[o++] = b64[(v >> 6) & 63];
        out[o++] = b64[v & 63];
    }
    out[o] = 0;
    OPENSSL_cleanse(raw, sizeof raw);
    return 0;
}

static int mkdir_p(const char *path, mode_t mode)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s", path) >= (int)sizeof tmp)
        return -ENAMETOOLONG;
    for (char *p = tmp + 1; *p; p++) {
        if (*p == '/') {
            *p = 0;
            if (mkdir(tmp, mode) && errno != EEXIST)
                return -errno;
            *p = '/';
        }
    }
    if (mkdir(tmp, mode) && errno != EEXIST)
        return -errno;
    return 0;
}

static void add_token(struct relay *r, const char *name, const char *tok, size_t n, int scope)
{
    struct token *t = xcalloc(1, sizeof *t);
    t->name = xstrdup(name);
    auth_hash(tok, n, t->hash);
    t->scope = scope;
    t->next = r->tokens;
    r->tokens = t;
}

/* Ensures the data dir and the admin token; loads its hash. */
int auth_init(struct relay *r, bool *created)
{
    char path[4200];
    char tok[128];
    *created = false;
    int rc = mkdir_p(r->cfg.data_dir, 0700);
    if (rc)
        return rc;
    snprintf(path, sizeof path, "%s/admin.token", r->cfg.data_dir);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 && errno != ENOENT)
        return -errno;
    if (fd < 0) {
        if ((rc = auth_token_new(tok, sizeof tok)))
            return rc;
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0)
            return -errno;
        size_t n = strlen(tok);
        tok[n] = '\n';
        if (write(fd, tok, n + 1) != (ssize_t)(n + 1)) {
            rc = -errno;
            close(fd);
            unlink(path);
            return rc ? rc : -EIO;
        }
        fsync(fd);
        close(fd);
        tok[n] = 0;
        *created = true;
    } else {
        ssize_t n = read(fd, tok, sizeof tok - 1);
        close(fd);
        if (n <= 0)
            return n < 0 ? -errno : -EINVAL;
        tok[n] = 0;
        tok[strcspn(tok, "\r\n")] = 0;
        if (!*tok)
            return -EINVAL;
    }
    add_token(r, "admin", tok, strlen(tok), SCOPE_CONTROL);
    OPENSSL_cleanse(tok, sizeof tok);
    return 0;
}

/* Frees the token list. */
void auth_free(struct relay *r)
{
    while (r->tokens) {
        struct token *t = r->tokens;
        r->tokens = t->next;
        free(t->name);
        free(t);
    }
}

/* Finds the token whose hash matches, comparing every entry in constant time. */
const struct token *auth_check(struct relay *r, const char *tok, size_t n)
{
    uint8_t h[32];
    if (!n || n > 512)
        return NULL;
    auth_hash(tok, n, h);
    return auth_check_hash(r, h);
}

/* Finds the token with this hash; every entry is compared, in constant time. */
const struct token *auth_check_hash(struct relay *r, const uint8_t h[32])
{
    const struct token *found = NULL;
    for (const struct token *t = r->tokens; t; t = t->next)
        if (CRYPTO_memcmp(h, t->hash, 32) == 0)
            found = t;
    return found;
}
