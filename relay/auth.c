/*
 * auth: tokens. A token is random text shown once; only its SHA-256 is kept, in memory and in the
 * store's tokens table. The admin token is created on first start and written to
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

static const struct token *lookup(struct relay *r, const uint8_t h[32]);

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

static void add_token(struct token **list, const char *name, const uint8_t hash[32], int scope)
{
    struct token *t = xcalloc(1, sizeof *t);
    t->name = xstrdup(name);
    memcpy(t->hash, hash, 32);
    t->scope = scope;
    t->next = *list;
    *list = t;
}

static int collect_token(void *arg, const char *name, const uint8_t *hash, int scope, uint64_t created,
                         uint64_t last_used)
{
    add_token(arg, name, hash, scope);
    return 0;
}

static void free_tokens(struct token *t)
{
    while (t) {
        struct token *next = t->next;
        free(t->name);
        free(t);
        t = next;
    }
}

static int count_token(void *arg, const char *name, const uint8_t *hash, int scope, uint64_t created,
                       uint64_t last_used)
{
    (*(unsigned *)arg)++;
    return 0;
}

/* Writes a new admin token to DIR/admin.token (0600) and returns its hash. */
static int make_admin_token(const char *path, uint8_t hash[32])
{
    char tok[128];
    int rc = auth_token_new(tok, sizeof tok);
    if (rc)
        return rc;
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return -errno;
    fchmod(fd, 0600);
    size_t n = strlen(tok);
    auth_hash(tok, n, hash);
    tok[n] = '\n';
    ssize_t w = write(fd, tok, n + 1);
    rc = w == (ssize_t)(n + 1) ? 0 : -EIO;
    if (!rc && fsync(fd))
        rc = -errno;
    close(fd);
    OPENSSL_cleanse(tok, sizeof tok);
    if (rc)
        unlink(path);
    return rc;
}

/* Creates the data dir (and parents) with mode 0700 if missing. 0 or -errno. */
int auth_data_dir_init(const char *dir)
{
    int rc = mkdir_p(dir, 0700);
    if (rc)
        return rc;
    /* It holds the admin token and every session's output: nobody else may list or read it. */
    struct stat st;
    if (stat(dir, &st) == 0 && (st.st_mode & 077) && st.st_uid == geteuid()) {
        if (chmod(dir, st.st_mode & 0700) == 0)
            log_info("data dir %s was accessible to others: now mode 0700", dir);
        else
            log_warn("data dir %s is accessible to others and could not be made private: %s", dir,
                     strerror(errno));
    }
    return 0;
}

/*
 * Ensures the data dir and at least one token. On first start (no token in the store) the admin
 * token is created and written to DIR/admin.token; an admin.token left by an older relay without
 * a store is adopted instead. Then loads every token's hash.
 */
int auth_init(struct relay *r, bool *created)
{
    char path[4200];
    *created = false;
    int rc = mkdir_p(r->cfg.data_dir, 0700);
    if (rc)
        return rc;
    snprintf(path, sizeof path, "%s/admin.token", r->cfg.data_dir);
    unsigned n = 0;
    if (store_tokens(r->store, count_token, &n) < 0)
        return -EIO;
    if (!n) {
        uint8_t hash[32];
        char tok[128];
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        ssize_t len = fd >= 0 ? read(fd, tok, sizeof tok - 1) : -1;
        if (fd >= 0)
            close(fd);
        if (len > 0) {
            tok[len] = 0;
            tok[strcspn(tok, "\r\n")] = 0;
            auth_hash(tok, strlen(tok), hash);
            OPENSSL_cleanse(tok, sizeof tok);
        } else {
            if ((rc = make_admin_token(path, hash)))
                return rc;
            *created = true;
        }
        char err[256];
        if (store_token_add(r->store, "admin", hash, SCOPE_CONTROL, err, sizeof err) < 0) {
            log_error("%s", err);
            return -EIO;
        }
    }
    free_tokens(r->tokens);
    r->tokens = NULL;
    return store_tokens(r->store, collect_token, &r->tokens) < 0 ? -EIO : 0;
}

/* Reloads the token list; connections whose token is gone are closed 4401. */
void auth_reload(struct relay *r)
{
    struct token *list = NULL;
    if (store_tokens(r->store, collect_token, &list) < 0) {
        free_tokens(list);
        return;
    }
    free_tokens(r->tokens);
    r->tokens = list;
    for (struct conn *c = r->conns; c; c = c->next) {
        if (!c->authed || c->close_code)
            continue;
        if (!lookup(r, c->token_hash)) {
            log_info("conn=%u peer=%s token=%s was revoked: closing", c->id, c->peer, c->token_name);
            conn_close(c, PTC_CLOSE_UNAUTHORIZED, "token revoked");
        }
    }
}

/* Frees the token list. */
void auth_free(struct relay *r)
{
    free_tokens(r->tokens);
    r->tokens = NULL;
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

/* The loaded token with this hash; every entry is compared, in constant time. */
static const struct token *lookup(struct relay *r, const uint8_t h[32])
{
    const struct token *found = NULL;
    for (const struct token *t = r->tokens; t; t = t->next)
        if (CRYPTO_memcmp(h, t->hash, 32) == 0)
            found = t;
    return found;
}

/*
 * Finds the token with this hash. An unknown hash reloads the list first if the store changed
 * since it was read: a token just made by `ptyrelay token add` works at once, not only after the
 * next periodic reload.
 */
const struct token *auth_check_hash(struct relay *r, const uint8_t h[32])
{
    const struct token *found = lookup(r, h);
    if (!found && r->store && store_changed(r->store)) {
        auth_reload(r);
        found = lookup(r, h);
    }
    return found;
}
