/*
 * test_store.c: unit tests for relay/store.c against a real SQLite file in a fresh mkdtemp dir.
 * They call the store's API the way the relay does: queued writes (sessions, output, events,
 * token use) committed by the writer thread and made visible with store_sync, then read back with
 * the loop-side reads. The schema version is checked by patching the database header (user_version
 * is the big-endian u32 at byte 60), so this file needs no SQLite of its own. Every wait is
 * store_sync with a deadline; nothing sleeps.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "relay.h"

#define SYNC_MS 10000

static char dir[64];

static void setup(void)
{
    strcpy(dir, "/tmp/ptyrelay-store-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void teardown(void)
{
    if (dir[0])
        nftw(dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

TestSuite(store, .init = setup, .fini = teardown);

static struct store *open_store(const struct store_opts *o, bool writer)
{
    struct store *st = NULL;
    char err[512] = "";
    int rc = store_open(dir, o, writer, &st, err, sizeof err);
    cr_assert_eq(rc, 0, "store_open: %s", err);
    cr_assert_not_null(st);
    return st;
}

static void sync_ok(struct store *st)
{
    cr_assert_eq(store_sync(st, SYNC_MS), 0, "store_sync timed out");
}

static void db_path(char *out, size_t cap)
{
    snprintf(out, cap, "%s/ptyrelay.db", dir);
}

/* Reads n bytes of the database file at off. */
static void read_header(size_t off, uint8_t *buf, size_t n)
{
    char p[128];
    db_path(p, sizeof p);
    int fd = open(p, O_RDONLY);
    cr_assert_geq(fd, 0, "open %s: %s", p, strerror(errno));
    cr_assert_eq(pread(fd, buf, n, (off_t)off), (ssize_t)n);
    close(fd);
}

static uint32_t file_user_version(void)
{
    uint8_t b[4];
    read_header(60, b, 4);
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

static void set_file_user_version(uint32_t v)
{
    char p[128];
    db_path(p, sizeof p);
    int fd = open(p, O_WRONLY);
    cr_assert_geq(fd, 0);
    uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    cr_assert_eq(pwrite(fd, b, 4, 60), 4);
    close(fd);
}

static bool file_exists(const char *suffix)
{
    char p[160];
    snprintf(p, sizeof p, "%s/ptyrelay.db%s", dir, suffix);
    return access(p, F_OK) == 0;
}

/* A session record with distinct values in every field. */
static struct store_session make_rec(ptc_uuid *id, const char *name, int state)
{
    struct store_session r;
    memset(&r, 0, sizeof r);
    ptc_uuid_random(id);
    r.id = *id;
    r.name = (char *)name;
    r.argv = (char *)"[\"/bin/sh\",\"-c\",\"echo hi\"]";
    r.cwd = (char *)"/tmp";
    r.env = (char *)"[\"A=1\"]";
    r.cols = 132;
    r.rows = 43;
    r.pid = 4242;
    r.state = state;
    r.attention = PTC_ATT_IDLE;
    r.created_ms = 1700000000000ull;
    r.updated_ms = 1700000000500ull;
    r.idle_ttl_s = 90;
    return r;
}

/* Queues output [off, off+n) of a deterministic pattern (byte i is 'a' + i % 26). */
static void put_output(struct store *st, const ptc_uuid *id, uint64_t off, size_t n)
{
    uint8_t *d = malloc(n);
    cr_assert_not_null(d);
    for (size_t i = 0; i < n; i++)
        d[i] = (uint8_t)('a' + (off + i) % 26);
    store_output(st, id, off, d, n);
}

static void check_pattern(const uint8_t *buf, uint64_t at, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (buf[i] != (uint8_t)('a' + (at + i) % 26))
            cr_assert_fail("byte at offset %llu is %02x", (unsigned long long)(at + i), buf[i]);
}

/* ---- open and migrate --------------------------------------------------------------------------
 */

Test(store, open_creates_and_migrates_a_wal_database)
{
    struct store *st = open_store(NULL, true);
    cr_assert(file_exists(""));
    cr_assert(file_exists("-wal"), "WAL mode keeps a -wal file while open");
    store_close(st);
    uint8_t b[2];
    read_header(18, b, 2);
    cr_assert_eq(b[0], 2, "file format write version %d: not WAL", b[0]);
    cr_assert_eq(b[1], 2, "file format read version %d: not WAL", b[1]);
    cr_assert_eq(file_user_version(), 1, "schema version %u", file_user_version());
    /* Reopening an existing, current database changes nothing. */
    st = open_store(NULL, false);
    store_close(st);
    cr_assert_eq(file_user_version(), 1);
}

Test(store, newer_schema_is_refused_without_a_rewrite)
{
    struct store *st = open_store(NULL, false);
    store_close(st);
    set_file_user_version(99);
    char err[512] = "";
    st = NULL;
    int rc = store_open(dir, NULL, true, &st, err, sizeof err);
    cr_assert_lt(rc, 0);
    cr_assert_null(st);
    cr_assert(strstr(err, "99") && strstr(err, "newer"), "unclear message: '%s'", err);
    cr_assert_eq(file_user_version(), 99, "the database was rewritten");
    /* Back at the version this relay knows, the same file opens again. */
    set_file_user_version(1);
    st = open_store(NULL, false);
    store_close(st);
}

Test(store, corrupt_file_is_a_clear_error)
{
    char p[128];
    db_path(p, sizeof p);
    FILE *f = fopen(p, "w");
    cr_assert_not_null(f);
    for (int i = 0; i < 512; i++)
        fputs("this is not a database. ", f);
    fclose(f);
    char err[512] = "";
    struct store *st = NULL;
    cr_assert_lt(store_open(dir, NULL, true, &st, err, sizeof err), 0);
    cr_assert(strstr(err, "not a database"), "unclear message: '%s'", err);
}

Test(store, missing_dir_is_a_clear_error)
{
    char sub[128];
    snprintf(sub, sizeof sub, "%s/no/such/dir", dir);
    char err[512] = "";
    struct store *st = NULL;
    cr_assert_lt(store_open(sub, NULL, false, &st, err, sizeof err), 0);
    cr_assert(strstr(err, sub), "the message should name the file: '%s'", err);
}

/* ---- sessions -------------------------------------------------------------------------------- */

struct loaded {
    int n;
    struct store_session r[8];
};

static int collect(void *arg, const struct store_session *r)
{
    struct loaded *l = arg;
    cr_assert_lt(l->n, 8);
    struct store_session *c = &l->r[l->n++];
    *c = *r;
    c->name = strdup(r->name);
    c->argv = strdup(r->argv);
    c->cwd = strdup(r->cwd);
    c->env = strdup(r->env);
    return 0;
}

static void loaded_free(struct loaded *l)
{
    for (int i = 0; i < l->n; i++) {
        free(l->r[i].name);
        free(l->r[i].argv);
        free(l->r[i].cwd);
        free(l->r[i].env);
    }
    l->n = 0;
}

static void load(struct store *st, struct loaded *l)
{
    char err[256] = "";
    loaded_free(l);
    cr_assert_eq(store_load_sessions(st, collect, l, err, sizeof err), 0, "%s", err);
}

static const struct store_session *find(const struct loaded *l, const ptc_uuid *id)
{
    for (int i = 0; i < l->n; i++)
        if (ptc_uuid_eq(&l->r[i].id, id))
            return &l->r[i];
    return NULL;
}

Test(store, session_put_load_round_trip)
{
    struct store *st = open_store(NULL, true);
    ptc_uuid a, b, c;
    struct store_session ra = make_rec(&a, "build", PTC_ST_EXITED);
    ra.exit_code = 7;
    ra.end = 1234;
    struct store_session rb = make_rec(&b, "", PTC_ST_KILLED);
    rb.signo = 9;
    rb.created_ms += 1;
    struct store_session rc = make_rec(&c, "shell", PTC_ST_RUNNING);
    rc.created_ms += 2;
    store_session_put(st, &ra);
    store_session_put(st, &rb);
    store_session_put(st, &rc);
    sync_ok(st);

    struct loaded l = {0};
    load(st, &l);
    cr_assert_eq(l.n, 3);
    const struct store_session *x = find(&l, &a);
    cr_assert_not_null(x);
    cr_assert_str_eq(x->name, "build");
    cr_assert_str_eq(x->argv, ra.argv);
    cr_assert_str_eq(x->cwd, "/tmp");
    cr_assert_str_eq(x->env, "[\"A=1\"]");
    cr_assert_eq(x->cols, 132);
    cr_assert_eq(x->rows, 43);
    cr_assert_eq(x->pid, 4242);
    cr_assert_eq(x->state, PTC_ST_EXITED);
    cr_assert_eq(x->exit_code, 7);
    cr_assert_eq(x->attention, PTC_ATT_IDLE);
    cr_assert_eq(x->created_ms, ra.created_ms);
    cr_assert_eq(x->updated_ms, ra.updated_ms);
    cr_assert_eq(x->idle_ttl_s, 90);
    cr_assert_eq(x->end, 1234);
    cr_assert_eq(x->start, 1234, "nothing logged: start is the end");
    x = find(&l, &b);
    cr_assert_not_null(x);
    cr_assert_eq(x->state, PTC_ST_KILLED);
    cr_assert_eq(x->signo, 9);
    cr_assert_str_eq(x->name, "");
    x = find(&l, &c);
    cr_assert_not_null(x);
    cr_assert_eq(x->state, PTC_ST_RUNNING);

    /* An update replaces the state and keeps the identity; a delete removes record and log. */
    rc.state = PTC_ST_LOST;
    rc.cols = 100;
    store_session_put(st, &rc);
    put_output(st, &a, 1234, 10);
    store_session_delete(st, &b);
    sync_ok(st);
    load(st, &l);
    cr_assert_eq(l.n, 2);
    cr_assert_null(find(&l, &b));
    x = find(&l, &c);
    cr_assert_eq(x->state, PTC_ST_LOST);
    cr_assert_eq(x->cols, 100);
    cr_assert_eq(find(&l, &a)->end, 1244, "output moves the stored end");
    store_session_delete(st, &a);
    sync_ok(st);
    cr_assert_eq(store_first_offset(st, &a), UINT64_MAX, "a removed session's log is gone");
    loaded_free(&l);
    store_close(st);
}

Test(store, close_commits_what_is_queued)
{
    struct store *st = open_store(NULL, true);
    ptc_uuid a;
    struct store_session ra = make_rec(&a, "q", PTC_ST_RUNNING);
    store_session_put(st, &ra);
    for (int i = 0; i < 50; i++)
        put_output(st, &a, (uint64_t)i * 1000, 1000);
    store_close(st); /* no sync */
    st = open_store(NULL, false);
    struct loaded l = {0};
    load(st, &l);
    cr_assert_eq(l.n, 1);
    cr_assert_eq(l.r[0].end, 50000);
    uint8_t buf[4096];
    uint64_t at = 1;
    cr_assert_eq(store_read(st, &a, 49000, buf, sizeof buf, &at), 1000);
    cr_assert_eq(at, 49000);
    check_pattern(buf, at, 1000);
    loaded_free(&l);
    store_close(st);
}

/* ---- output ---------------------------------------------------------------------------------- */

Test(store, read_within_across_and_at_a_gap)
{
    struct store *st = open_store(NULL, true);
    ptc_uuid a, other;
    struct store_session ra = make_rec(&a, "a", PTC_ST_RUNNING);
    store_session_put(st, &ra);
    ptc_uuid_random(&other);
    /* chunks [0,100) [100,250) [250,300), a gap, then [400,500); another session's [0,1000) */
    put_output(st, &a, 0, 100);
    put_output(st, &a, 100, 150);
    put_output(st, &a, 250, 50);
    put_output(st, &a, 400, 100);
    put_output(st, &other, 0, 1000);
    sync_ok(st);
    cr_assert_eq(store_first_offset(st, &a), 0);

    uint8_t buf[2048];
    uint64_t at = 99;
    /* within one chunk */
    cr_assert_eq(store_read(st, &a, 10, buf, 20, &at), 20);
    cr_assert_eq(at, 10);
    check_pattern(buf, at, 20);
    /* across chunk boundaries, up to the gap */
    cr_assert_eq(store_read(st, &a, 90, buf, sizeof buf, &at), 210);
    cr_assert_eq(at, 90);
    check_pattern(buf, at, 210);
    /* across one boundary, limited by max */
    cr_assert_eq(store_read(st, &a, 95, buf, 10, &at), 10);
    cr_assert_eq(at, 95);
    check_pattern(buf, at, 10);
    /* in the gap: the next chunk, and *at shows where it begins */
    cr_assert_eq(store_read(st, &a, 300, buf, sizeof buf, &at), 100);
    cr_assert_eq(at, 400);
    check_pattern(buf, at, 100);
    cr_assert_eq(store_read(st, &a, 350, buf, sizeof buf, &at), 100);
    cr_assert_eq(at, 400);
    /* at and past the end */
    cr_assert_eq(store_read(st, &a, 500, buf, sizeof buf, &at), 0);
    cr_assert_eq(store_read(st, &a, 100000, buf, sizeof buf, &at), 0);
    /* an unknown session */
    ptc_uuid none;
    ptc_uuid_random(&none);
    cr_assert_eq(store_read(st, &none, 0, buf, sizeof buf, &at), 0);
    cr_assert_eq(store_first_offset(st, &none), UINT64_MAX);

    /* Many small chunks: repeated reads walk the whole log contiguously. */
    for (int i = 0; i < 100; i++)
        put_output(st, &a, 500 + (uint64_t)i * 37, 37);
    sync_ok(st);
    uint64_t next = 400, total = 0;
    for (int guard = 0; guard < 1000 && next < 500 + 3700; guard++) {
        long n = store_read(st, &a, next, buf, 256, &at);
        cr_assert_gt(n, 0, "read at %llu", (unsigned long long)next);
        cr_assert_eq(at, next, "no gap expected at %llu", (unsigned long long)next);
        check_pattern(buf, at, (size_t)n);
        next += (uint64_t)n;
        total += (uint64_t)n;
    }
    cr_assert_eq(next, 4200);
    cr_assert_eq(total, 3800);
    store_close(st);
}

Test(store, retention_per_session_drops_the_oldest_chunks)
{
    struct store_opts o = {.log_max = 1000};
    struct store *st = open_store(&o, true);
    ptc_uuid a, b;
    struct store_session ra = make_rec(&a, "a", PTC_ST_RUNNING);
    struct store_session rb = make_rec(&b, "b", PTC_ST_RUNNING);
    store_session_put(st, &ra);
    store_session_put(st, &rb);
    for (int i = 0; i < 10; i++)
        put_output(st, &a, (uint64_t)i * 300, 300); /* end 3000 */
    put_output(st, &b, 0, 900);
    sync_ok(st);
    /* Whole chunks that end at or before 3000 - 1000 are gone: [1800,2100) is the first kept. */
    cr_assert_eq(store_first_offset(st, &a), 1800, "first %llu",
                 (unsigned long long)store_first_offset(st, &a));
    cr_assert_eq(store_first_offset(st, &b), 0, "the other session is under its cap");
    uint8_t buf[4096];
    uint64_t at = 0;
    long n = store_read(st, &a, 0, buf, sizeof buf, &at);
    cr_assert_eq(at, 1800, "a read below the first chunk starts at it");
    cr_assert_eq(n, 1200);
    check_pattern(buf, at, (size_t)n);
    struct loaded l = {0};
    load(st, &l);
    cr_assert_eq(find(&l, &a)->start, 1800, "the record's start follows the log");
    cr_assert_eq(find(&l, &a)->end, 3000);
    cr_assert_eq(find(&l, &b)->start, 0);
    loaded_free(&l);
    store_close(st);
}

Test(store, retention_total_drops_only_the_oldest_chunks)
{
    struct store_opts o = {.total_max = 2000};
    struct store *st = open_store(&o, true);
    ptc_uuid a, b;
    struct store_session ra = make_rec(&a, "a", PTC_ST_RUNNING);
    struct store_session rb = make_rec(&b, "b", PTC_ST_RUNNING);
    store_session_put(st, &ra);
    store_session_put(st, &rb);
    sync_ok(st);
    for (int i = 0; i < 3; i++)
        put_output(st, &a, (uint64_t)i * 500, 500);
    for (int i = 0; i < 3; i++)
        put_output(st, &b, (uint64_t)i * 500, 500);
    sync_ok(st);
    /* 3000 bytes logged, cap 2000: the two oldest chunks (a's first two) go, nothing more. */
    cr_assert_eq(store_first_offset(st, &a), 1000, "a starts at %llu",
                 (unsigned long long)store_first_offset(st, &a));
    cr_assert_eq(store_first_offset(st, &b), 0, "b starts at %llu",
                 (unsigned long long)store_first_offset(st, &b));
    struct loaded l = {0};
    load(st, &l);
    cr_assert_eq(find(&l, &a)->start, 1000);
    cr_assert_eq(find(&l, &b)->start, 0);
    /* More output in later batches keeps the total at or under the cap, oldest first. */
    for (int i = 3; i < 6; i++) {
        put_output(st, &b, (uint64_t)i * 500, 500);
        sync_ok(st);
    }
    cr_assert_eq(store_first_offset(st, &a), UINT64_MAX, "a's oldest chunks went first");
    cr_assert_eq(store_first_offset(st, &b), 1000);
    uint8_t buf[4096];
    uint64_t at;
    cr_assert_eq(store_read(st, &b, 0, buf, sizeof buf, &at), 2000);
    cr_assert_eq(at, 1000);
    check_pattern(buf, at, 2000);
    load(st, &l);
    cr_assert_eq(find(&l, &a)->start, find(&l, &a)->end, "an emptied log starts at its end");
    cr_assert_eq(find(&l, &b)->start, 1000);
    loaded_free(&l);
    store_close(st);
}

/* ---- tokens ---------------------------------------------------------------------------------- */

struct toks {
    int n;
    char name[8][32];
    uint8_t hash[8][32];
    int scope[8];
    uint64_t created[8], used[8];
};

static int collect_tok(void *arg, const char *name, const uint8_t *hash, int scope,
                       uint64_t created, uint64_t last_used)
{
    struct toks *t = arg;
    cr_assert_lt(t->n, 8);
    snprintf(t->name[t->n], 32, "%s", name);
    memcpy(t->hash[t->n], hash, 32);
    t->scope[t->n] = scope;
    t->created[t->n] = created;
    t->used[t->n] = last_used;
    t->n++;
    return 0;
}

static int tok_index(const struct toks *t, const char *name)
{
    for (int i = 0; i < t->n; i++)
        if (!strcmp(t->name[i], name))
            return i;
    return -1;
}

Test(store, tokens_add_list_use_revoke)
{
    struct store *st = open_store(NULL, true);
    uint8_t h1[32], h2[32], h3[32];
    auth_hash("ptr_one", 7, h1);
    auth_hash("ptr_two", 7, h2);
    auth_hash("ptr_three", 9, h3);
    char err[256] = "";
    store_changed(st); /* take the baseline */
    uint64_t before = now_wall_ms();
    cr_assert_eq(store_token_add(st, "alice", h1, SCOPE_CONTROL, err, sizeof err), 0, "%s", err);
    cr_assert_eq(store_token_add(st, "bob", h2, SCOPE_VIEW, err, sizeof err), 0, "%s", err);
    err[0] = 0;
    cr_assert_eq(store_token_add(st, "alice", h3, SCOPE_VIEW, err, sizeof err), -EEXIST);
    cr_assert(strstr(err, "alice") && strstr(err, "exists"), "message: '%s'", err);

    struct toks t = {0};
    cr_assert_eq(store_tokens(st, collect_tok, &t), 0);
    cr_assert_eq(t.n, 2);
    int ia = tok_index(&t, "alice"), ib = tok_index(&t, "bob");
    cr_assert(ia >= 0 && ib >= 0);
    cr_assert_eq(memcmp(t.hash[ia], h1, 32), 0);
    cr_assert_eq(memcmp(t.hash[ib], h2, 32), 0);
    cr_assert_eq(t.scope[ia], SCOPE_CONTROL);
    cr_assert_eq(t.scope[ib], SCOPE_VIEW);
    cr_assert_geq(t.created[ia], before);
    cr_assert_leq(t.created[ia], now_wall_ms());
    cr_assert_eq(t.used[ia], 0, "never used yet");

    /* The writer's commit is another connection's change, seen by store_changed. */
    store_changed(st);
    store_token_used(st, "alice");
    sync_ok(st);
    cr_assert(store_changed(st), "a commit by the writer is a change");
    cr_assert(!store_changed(st), "and only once");
    memset(&t, 0, sizeof t);
    cr_assert_eq(store_tokens(st, collect_tok, &t), 0);
    ia = tok_index(&t, "alice");
    cr_assert_geq(t.used[ia], before, "last used %llu", (unsigned long long)t.used[ia]);

    /* Only the hash is stored: the token text appears nowhere in the file. */
    store_close(st);
    st = open_store(NULL, true);

    err[0] = 0;
    cr_assert_eq(store_token_revoke(st, "bob", err, sizeof err), 0, "%s", err);
    cr_assert_eq(store_token_revoke(st, "bob", err, sizeof err), -ENOENT);
    cr_assert(strstr(err, "bob"), "message: '%s'", err);
    memset(&t, 0, sizeof t);
    cr_assert_eq(store_tokens(st, collect_tok, &t), 0);
    cr_assert_eq(t.n, 1);
    cr_assert_str_eq(t.name[0], "alice");
    /* A revoked name can be added again. */
    cr_assert_eq(store_token_add(st, "bob", h3, SCOPE_VIEW, err, sizeof err), 0, "%s", err);
    store_close(st);

    char p[128];
    db_path(p, sizeof p);
    FILE *f = fopen(p, "rb");
    cr_assert_not_null(f);
    static char file[1 << 20];
    size_t n = fread(file, 1, sizeof file, f);
    fclose(f);
    cr_assert_gt(n, 0);
    cr_assert_null(memmem(file, n, "ptr_one", 7), "a token's text reached the database");
    cr_assert_not_null(memmem(file, n, h1, 32), "the hash is what is stored");
}

/* ---- events ---------------------------------------------------------------------------------- */

struct evs {
    int n;
    char kind[16][16], token[16][16], peer[16][32], detail[16][64];
    bool has_sid[16];
    ptc_uuid sid[16];
    uint64_t ts[16];
};

static int collect_ev(void *arg, uint64_t ts, const ptc_uuid *sid, const char *kind,
                      const char *token, const char *peer, const char *detail)
{
    struct evs *e = arg;
    cr_assert_lt(e->n, 16);
    int i = e->n++;
    e->ts[i] = ts;
    e->has_sid[i] = sid != NULL;
    if (sid)
        e->sid[i] = *sid;
    snprintf(e->kind[i], 16, "%s", kind ? kind : "(null)");
    snprintf(e->token[i], 16, "%s", token ? token : "(null)");
    snprintf(e->peer[i], 32, "%s", peer ? peer : "(null)");
    snprintf(e->detail[i], 64, "%s", detail ? detail : "(null)");
    return 0;
}

Test(store, events_in_order_and_per_session)
{
    struct store *st = open_store(NULL, true);
    ptc_uuid a, b;
    ptc_uuid_random(&a);
    ptc_uuid_random(&b);
    uint64_t before = now_wall_ms();
    store_event(st, "opened", &a, "alice", "127.0.0.1", "argv0=/bin/sh");
    store_event(st, "attached", &b, "bob", "127.0.0.1", "mode=view offset=0");
    store_event(st, "input", &a, "alice", "127.0.0.1", "bytes=12");
    store_event(st, "lost", &b, NULL, NULL, "pid=7");
    store_event(st, "started", NULL, NULL, NULL, NULL);
    sync_ok(st);
    struct evs e = {0};
    cr_assert_eq(store_events(st, NULL, collect_ev, &e), 0);
    cr_assert_eq(e.n, 5);
    const char *kinds[] = {"opened", "attached", "input", "lost", "started"};
    for (int i = 0; i < 5; i++) {
        cr_assert_str_eq(e.kind[i], kinds[i]);
        cr_assert_geq(e.ts[i], before);
    }
    cr_assert_str_eq(e.token[0], "alice");
    cr_assert_str_eq(e.peer[0], "127.0.0.1");
    cr_assert_str_eq(e.detail[2], "bytes=12");
    cr_assert(ptc_uuid_eq(&e.sid[1], &b));
    cr_assert_str_eq(e.token[3], "(null)");
    cr_assert(!e.has_sid[4]);
    cr_assert_str_eq(e.detail[4], "(null)");

    struct evs ea = {0};
    cr_assert_eq(store_events(st, &a, collect_ev, &ea), 0);
    cr_assert_eq(ea.n, 2);
    cr_assert_str_eq(ea.kind[0], "opened");
    cr_assert_str_eq(ea.kind[1], "input");
    store_close(st);
}

/* ---- sync and health ------------------------------------------------------------------------- */

Test(store, sync_without_writer_and_health_when_all_is_well)
{
    struct store *st = open_store(NULL, false);
    cr_assert_eq(store_sync(st, 10), 0, "no writer: nothing to wait for");
    store_close(st);
    st = open_store(NULL, true);
    ptc_uuid a;
    struct store_session ra = make_rec(&a, "a", PTC_ST_RUNNING);
    store_session_put(st, &ra);
    for (int i = 0; i < 200; i++)
        put_output(st, &a, (uint64_t)i * 4096, 4096);
    sync_ok(st);
    cr_assert_eq(store_first_offset(st, &a), 0);
    uint8_t buf[4096];
    uint64_t at;
    cr_assert_eq(store_read(st, &a, 199 * 4096, buf, sizeof buf, &at), 4096,
                 "sync made it all visible");
    uint64_t dropped = 1, errors = 1;
    char last[256] = "x";
    store_health(st, &dropped, &errors, last, sizeof last);
    cr_assert_eq(dropped, 0);
    cr_assert_eq(errors, 0);
    cr_assert_str_eq(last, "");
    store_close(st);
}

Test(store, db_max_bytes_gives_sqlite_full_counted_by_health)
{
    struct store_opts o = {.db_max_bytes = 262144};
    struct store *st = open_store(&o, true);
    ptc_uuid a;
    struct store_session ra = make_rec(&a, "a", PTC_ST_RUNNING);
    store_session_put(st, &ra);
    sync_ok(st);
    /* 1 MiB of output, one chunk per batch: the first ones fit, the rest hit the cap. */
    for (int i = 0; i < 64; i++) {
        put_output(st, &a, (uint64_t)i * 16384, 16384);
        sync_ok(st);
    }
    uint64_t dropped = 0, errors = 0;
    char last[256] = "";
    store_health(st, &dropped, &errors, last, sizeof last);
    cr_assert_gt(errors, 0, "no write error past the cap");
    cr_assert_gt(dropped, 0, "no dropped bytes counted");
    cr_assert_leq(dropped, 64 * 16384, "dropped %llu, errors %llu, last %s",
                  (unsigned long long)dropped, (unsigned long long)errors, last);
    cr_assert(strstr(last, "full"), "last error: '%s'", last);
    /* What fit is readable, as a contiguous prefix from 0; the file stayed under the cap. */
    uint64_t first = store_first_offset(st, &a);
    cr_assert_eq(first, 0);
    uint8_t buf[16384];
    uint64_t at, next = 0;
    for (int guard = 0; guard < 64; guard++) {
        long n = store_read(st, &a, next, buf, sizeof buf, &at);
        if (n <= 0)
            break;
        cr_assert_eq(at, next);
        check_pattern(buf, at, (size_t)n);
        next += (uint64_t)n;
    }
    cr_assert_gt(next, 0, "nothing at all was logged");
    cr_assert_lt(next, 64 * 16384);
    cr_assert_eq(next + dropped, 64 * 16384, "logged %llu + dropped %llu != written",
                 (unsigned long long)next, (unsigned long long)dropped);
    struct stat sb;
    char p[128];
    db_path(p, sizeof p);
    cr_assert_eq(stat(p, &sb), 0);
    cr_assert_leq(sb.st_size, 262144 + 4096, "file is %lld bytes", (long long)sb.st_size);
    /* Reads and the session record still work. */
    struct loaded l = {0};
    load(st, &l);
    cr_assert_eq(l.n, 1);
    loaded_free(&l);
    store_close(st);
}

/* ---- JSON helpers ---------------------------------------------------------------------------- */

Test(store, json_string_arrays_round_trip)
{
    char *v[] = {"/bin/sh", "-c", "echo \"hi\" \\ \xc3\xa9", ""};
    char *txt = store_json_strv(v, 4);
    int n = 0;
    char **back = store_json_parse_strv(txt, &n);
    cr_assert_not_null(back);
    cr_assert_eq(n, 4);
    for (int i = 0; i < 4; i++) {
        cr_assert_str_eq(back[i], v[i]);
        free(back[i]);
    }
    cr_assert_null(back[4]);
    free(back);
    free(txt);
    cr_assert_null(store_json_parse_strv("{\"a\":1}", &n));
    cr_assert_eq(n, 0);
}

/* ---- throughput ------------------------------------------------------------------------------ */

Test(store, writer_commits_a_flood_and_reports_its_rate)
{
    /* 64 MiB in the relay's largest chunks (256 KiB), queued as fast as the loop would. */
    struct store *st = open_store(NULL, true);
    ptc_uuid a;
    struct store_session ra = make_rec(&a, "flood", PTC_ST_RUNNING);
    store_session_put(st, &ra);
    enum { CHUNK = 256 * 1024, COUNT = 256 };
    uint64_t t0 = now_us();
    for (int i = 0; i < COUNT; i++) {
        uint8_t *d = malloc(CHUNK);
        cr_assert_not_null(d);
        memset(d, 'a' + i % 26, CHUNK);
        store_output(st, &a, (uint64_t)i * CHUNK, d, CHUNK);
    }
    cr_assert_eq(store_sync(st, 60000), 0);
    uint64_t us = now_us() - t0;
    uint64_t dropped, errors;
    store_health(st, &dropped, &errors, NULL, 0);
    cr_assert_eq(dropped, 0);
    cr_assert_eq(errors, 0);
    uint8_t buf[16];
    uint64_t at;
    cr_assert_eq(store_read(st, &a, (uint64_t)COUNT * CHUNK - 16, buf, 16, &at), 16);
    cr_assert_eq(buf[0], 'a' + (COUNT - 1) % 26);
    fprintf(stderr, "store: committed %d MiB of output in %.0f ms: %.0f MB/s\n",
            COUNT * CHUNK >> 20, (double)us / 1000.0, (double)COUNT * CHUNK / (double)us);
    store_close(st);
}
