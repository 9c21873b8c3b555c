/*
 * Unit tests of relay/auth.c: token text format and randomness, SHA-256 hashing (a known vector),
 * constant-time lookup by token and by hash, and the first start that creates DATA/admin.token
 * (0600) with only its hash in the store.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "relay.h"

Test(auth, token_text_is_prefixed_base64url_and_random)
{
    char a[128], b[128];
    cr_assert_eq(auth_token_new(a, sizeof a), 0);
    cr_assert_eq(auth_token_new(b, sizeof b), 0);
    cr_assert_eq(strncmp(a, "ptr_", 4), 0);
    cr_assert_eq(strlen(a), 4 + 44);
    for (const char *p = a + 4; *p; p++)
        cr_assert(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", *p),
                  "unexpected char %c", *p);
    cr_assert_str_neq(a, b);
    char small[16];
    cr_assert_lt(auth_token_new(small, sizeof small), 0);
}

Test(auth, sha256_of_a_known_string)
{
    uint8_t h[32];
    auth_hash("abc", 3, h);
    static const uint8_t want[32] = {0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40,
                                     0xde, 0x5d, 0xae, 0x22, 0x23, 0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17,
                                     0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad};
    cr_assert_arr_eq(h, want, 32);
}

Test(auth, first_start_creates_admin_token_file_and_stores_only_its_hash_privately)
{
    char dir[] = "/tmp/ptyrelay-auth-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    /* A data dir someone made open to others is made private, and so is the database. */
    cr_assert_eq(chmod(dir, 0755), 0);
    cr_assert_eq(auth_data_dir_init(dir), 0);
    struct stat dst;
    cr_assert_eq(stat(dir, &dst), 0);
    cr_assert_eq(dst.st_mode & 0777, 0700);
    struct relay r;
    memset(&r, 0, sizeof r);
    config_defaults(&r.cfg);
    free(r.cfg.data_dir);
    r.cfg.data_dir = strdup(dir);
    char err[256];
    cr_assert_eq(store_open(dir, NULL, false, &r.store, err, sizeof err), 0, "%s", err);
    char dbpath[512];
    snprintf(dbpath, sizeof dbpath, "%s/ptyrelay.db", dir);
    struct stat dbst;
    cr_assert_eq(stat(dbpath, &dbst), 0);
    cr_assert_eq(dbst.st_mode & 0777, 0600, "database mode %o", dbst.st_mode & 0777);
    bool created = false;
    cr_assert_eq(auth_init(&r, &created), 0);
    cr_assert(created);
    char path[512];
    snprintf(path, sizeof path, "%s/admin.token", dir);
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0600);
    char tok[128] = "";
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f);
    cr_assert_not_null(fgets(tok, sizeof tok, f));
    fclose(f);
    tok[strcspn(tok, "\n")] = 0;
    const struct token *t = auth_check(&r, tok, strlen(tok));
    cr_assert_not_null(t);
    cr_assert_str_eq(t->name, "admin");
    cr_assert_eq(t->scope, SCOPE_CONTROL);
    cr_assert_null(auth_check(&r, "ptr_wrong", 9));
    cr_assert_null(auth_check(&r, "", 0));
    tok[5] ^= 1;
    cr_assert_null(auth_check(&r, tok, strlen(tok)), "a one-bit change must not match");

    /* A second start finds the token in the store and creates nothing. */
    auth_free(&r);
    cr_assert_eq(auth_init(&r, &created), 0);
    cr_assert(!created);
    cr_assert_not_null(r.tokens);

    /* The database holds the hash, never the text. */
    tok[5] ^= 1;
    char db[512];
    snprintf(db, sizeof db, "%s/ptyrelay.db", dir);
    store_close(r.store);
    f = fopen(db, "rb");
    cr_assert_not_null(f);
    static char content[1 << 20];
    size_t n = fread(content, 1, sizeof content, f);
    fclose(f);
    cr_assert(memmem(content, n, tok, strlen(tok)) == NULL, "token text found in the database");
    auth_free(&r);
    config_free(&r.cfg);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}
