/*
 * store: the relay's durable state in SQLite (DATA/ptyrelay.db, WAL): sessions, their output log,
 * the audit trail and token hashes. The only file that includes sqlite3; all SQL lives here.
 *
 * Two connections. Writes go through a queue to a writer thread with its own connection, which
 * commits a batch whenever items are waiting (the loop hands output over at least every 200 ms),
 * so neither a PTY nor a client ever waits on a commit or an fsync. Reads (replay from the log,
 * loading sessions and tokens) use a second connection on the loop's thread; WAL lets them run
 * beside the writer, and each read is bounded in size so the loop is never held for long.
 * If the queue grows past its cap (the disk cannot keep up) or a write fails (disk full), output
 * is dropped from the log, never from the live sessions: the log then has a gap, which the
 * offsets show, and the error is logged once per kind until it clears.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <pthread.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sqlite3.h>

#include "relay.h"

#define SCHEMA_VERSION 1
#define QUEUE_MAX_BYTES (64u << 20)
#define READ_CHUNKS 16

enum item_kind { IT_SESSION, IT_DELETE, IT_OUTPUT, IT_EVENT, IT_TOKEN_USED, IT_BARRIER };

struct item {
    struct item *next;
    int kind;
    ptc_uuid sid;
    uint64_t off;
    size_t len;
    uint8_t *data;           /* output bytes (owned) */
    struct store_session rec; /* IT_SESSION: a snapshot (strings owned) */
    char *s1, *s2, *s3, *s4; /* event kind, token, peer, detail / token name */
    uint64_t ts;
};

struct store {
    int64_t log_bytes; /* writer thread only: bytes in the output table */
    sqlite3 *rd;   /* the loop's connection */
    sqlite3 *wr;   /* the writer's connection */
    struct store_opts opts;
    pthread_t thread;
    bool have_thread;
    pthread_mutex_t mu;
    pthread_cond_t cv, done_cv;
    struct item *head, *tail;
    struct item *inflight; /* the batch being committed: readable (under mu) until it is */
    size_t queued_bytes;
    bool stop;
    uint64_t barrier_seen, barrier_sent;
    /* counters read by the loop (under mu) */
    uint64_t dropped_bytes;
    uint64_t write_errors;
    uint64_t committed_batches;
    char last_error[256];
    long long data_version;
    char path[4200];
};

static void set_err(char *err, size_t errlen, const char *what, sqlite3 *db)
{
    if (err)
        snprintf(err, errlen, "%s: %s", what, db ? sqlite3_errmsg(db) : "out of memory");
}

static int exec_sql(sqlite3 *db, const char *sql, char *err, size_t errlen)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        if (err)
            snprintf(err, errlen, "%s", msg ? msg : sqlite3_errmsg(db));
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

static const char schema_v1[] =
    "CREATE TABLE IF NOT EXISTS sessions("
    " id BLOB PRIMARY KEY, name TEXT NOT NULL, argv TEXT NOT NULL, cwd TEXT NOT NULL,"
    " env TEXT NOT NULL, cols INTEGER NOT NULL, rows INTEGER NOT NULL, pid INTEGER NOT NULL,"
    " state TEXT NOT NULL, exit_code INTEGER, signal INTEGER, created_ms INTEGER NOT NULL,"
    " updated_ms INTEGER NOT NULL, start_off INTEGER NOT NULL, end_off INTEGER NOT NULL,"
    " attention TEXT NOT NULL, idle_ttl_s INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE IF NOT EXISTS output("
    " session BLOB NOT NULL, off INTEGER NOT NULL, data BLOB NOT NULL);"
    "CREATE UNIQUE INDEX IF NOT EXISTS output_by_session ON output(session, off);"
    "CREATE TABLE IF NOT EXISTS events("
    " id INTEGER PRIMARY KEY, ts_ms INTEGER NOT NULL, session BLOB, kind TEXT NOT NULL,"
    " token TEXT, peer TEXT, detail TEXT);"
    "CREATE INDEX IF NOT EXISTS events_by_session ON events(session, id);"
    "CREATE TABLE IF NOT EXISTS tokens("
    " name TEXT PRIMARY KEY, hash BLOB NOT NULL UNIQUE, scope TEXT NOT NULL,"
    " created_ms INTEGER NOT NULL, last_used_ms INTEGER);";

static int open_conn(const char *path, sqlite3 **out, char *err, size_t errlen)
{
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                             NULL);
    if (rc != SQLITE_OK) {
        set_err(err, errlen, path, db);
        sqlite3_close(db);
        return -1;
    }
    /* Per-connection settings (LIBRARIES.md §4): WAL survives a crash of the relay at NORMAL. */
    sqlite3_busy_timeout(db, 200);
    if (exec_sql(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=OFF;",
                 err, errlen)) {
        sqlite3_close(db);
        return -1;
    }
    *out = db;
    return 0;
}

static int migrate(sqlite3 *db, char *err, size_t errlen)
{
    sqlite3_stmt *st;
    int ver = 0;
    if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK) {
        set_err(err, errlen, "reading the schema version", db);
        return -1;
    }
    if (sqlite3_step(st) == SQLITE_ROW)
        ver = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    if (ver > SCHEMA_VERSION) {
        snprintf(err, errlen,
                 "the database has schema version %d, newer than this relay understands (%d): "
                 "use a newer ptyrelay",
                 ver, SCHEMA_VERSION);
        return -1;
    }
    if (ver == SCHEMA_VERSION)
        return 0;
    if (exec_sql(db, "BEGIN IMMEDIATE", err, errlen))
        return -1;
    /* Version 0 (new file) -> 1. Later versions add steps here, each in this transaction. */
    if (ver < 1 && exec_sql(db, schema_v1, err, errlen)) {
        exec_sql(db, "ROLLBACK", NULL, 0);
        return -1;
    }
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA user_version=%d", SCHEMA_VERSION);
    if (exec_sql(db, sql, err, errlen) || exec_sql(db, "COMMIT", err, errlen)) {
        exec_sql(db, "ROLLBACK", NULL, 0);
        return -1;
    }
    return 0;
}

/* ---- the writer thread ------------------------------------------------------------------------ */

static void item_free(struct item *it)
{
    free(it->data);
    free(it->rec.name);
    free(it->rec.argv);
    free(it->rec.cwd);
    free(it->rec.env);
    free(it->s1);
    free(it->s2);
    free(it->s3);
    free(it->s4);
    free(it);
}

static void note_error(struct store *st, const char *what)
{
    pthread_mutex_lock(&st->mu);
    st->write_errors++;
    snprintf(st->last_error, sizeof st->last_error, "%s: %s", what, sqlite3_errmsg(st->wr));
    pthread_mutex_unlock(&st->mu);
}

/* Counts output bytes the log lost. */
static void drop_output(struct store *st, uint64_t n)
{
    if (!n)
        return;
    pthread_mutex_lock(&st->mu);
    st->dropped_bytes += n;
    pthread_mutex_unlock(&st->mu);
}

/* Opens a batch's write transaction. false (and the error noted) when it could not. */
static bool begin_batch(struct store *st)
{
    if (sqlite3_exec(st->wr, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK)
        return true;
    note_error(st, "starting a log transaction");
    return false;
}

static int step_done(sqlite3_stmt *s)
{
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : rc;
}

/*
 * Runs a DELETE ... RETURNING length(data) to completion and returns the bytes it removed (the
 * changes happen on the first step; the rows only report them), or -1 on an error.
 */
static int64_t step_sum(sqlite3_stmt *s)
{
    int64_t sum = 0;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW)
        sum += sqlite3_column_int64(s, 0);
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return rc == SQLITE_DONE ? sum : -1;
}

struct wstmts {
    sqlite3_stmt *session, *del_sess, *del_out, *out, *end, *event, *used, *trim, *first, *total,
        *oldest, *trim_total;
};

static void prep(struct store *st, sqlite3_stmt **s, const char *sql)
{
    if (sqlite3_prepare_v3(st->wr, sql, -1, SQLITE_PREPARE_PERSISTENT, s, NULL) != SQLITE_OK)
        fatal("store: preparing '%s': %s", sql, sqlite3_errmsg(st->wr));
}

/* Writes one queued item in the open transaction. 0, or -1 when its statement failed. */
static int write_item(struct store *st, struct wstmts *w, struct item *it)
{
    sqlite3_stmt *s;
    int bad = 0;
    switch (it->kind) {
    case IT_SESSION: {
        const struct store_session *r = &it->rec;
        s = w->session;
        sqlite3_bind_blob(s, 1, r->id.b, 16, SQLITE_STATIC);
        sqlite3_bind_text(s, 2, r->name, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 3, r->argv, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 4, r->cwd, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 5, r->env ? r->env : "[]", -1, SQLITE_STATIC);
        sqlite3_bind_int(s, 6, r->cols);
        sqlite3_bind_int(s, 7, r->rows);
        sqlite3_bind_int64(s, 8, r->pid);
        sqlite3_bind_text(s, 9, ptc_state_name(r->state), -1, SQLITE_STATIC);
        if (r->state == PTC_ST_EXITED)
            sqlite3_bind_int(s, 10, r->exit_code);
        if (r->state == PTC_ST_KILLED)
            sqlite3_bind_int(s, 11, r->signo);
        sqlite3_bind_int64(s, 12, (sqlite3_int64)r->created_ms);
        sqlite3_bind_int64(s, 13, (sqlite3_int64)r->updated_ms);
        sqlite3_bind_text(s, 14, ptc_attention_name(r->attention), -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 15, (sqlite3_int64)r->idle_ttl_s);
        sqlite3_bind_int64(s, 16, (sqlite3_int64)r->end);
        if ((bad = step_done(s)))
            note_error(st, "saving a session");
        break;
    }
    case IT_DELETE:
        sqlite3_bind_blob(w->del_out, 1, it->sid.b, 16, SQLITE_STATIC);
        sqlite3_bind_blob(w->del_sess, 1, it->sid.b, 16, SQLITE_STATIC);
        int64_t gone = step_sum(w->del_out);
        if ((bad = gone < 0 || step_done(w->del_sess)))
            note_error(st, "removing a session");
        else
            st->log_bytes -= gone;
        break;
    case IT_OUTPUT: {
        s = w->out;
        sqlite3_bind_blob(s, 1, it->sid.b, 16, SQLITE_STATIC);
        sqlite3_bind_int64(s, 2, (sqlite3_int64)it->off);
        sqlite3_bind_blob(s, 3, it->data, (int)it->len, SQLITE_STATIC);
        if (step_done(s)) {
            note_error(st, "appending output to the log");
            drop_output(st, it->len);
            return -1;
        }
        st->log_bytes += (int64_t)it->len;
        sqlite3_bind_int64(w->end, 1, (sqlite3_int64)(it->off + it->len));
        sqlite3_bind_blob(w->end, 2, it->sid.b, 16, SQLITE_STATIC);
        step_done(w->end);
        /* Retention per session: drop whole chunks that end before end - log_max. */
        if (st->opts.log_max && it->off + it->len > st->opts.log_max) {
            uint64_t cut = it->off + it->len - st->opts.log_max;
            sqlite3_bind_blob(w->trim, 1, it->sid.b, 16, SQLITE_STATIC);
            sqlite3_bind_int64(w->trim, 2, (sqlite3_int64)cut);
            int64_t trimmed = step_sum(w->trim);
            if (trimmed > 0) {
                st->log_bytes -= trimmed;
                sqlite3_bind_blob(w->first, 1, it->sid.b, 16, SQLITE_STATIC);
                sqlite3_bind_blob(w->first, 2, it->sid.b, 16, SQLITE_STATIC);
                step_done(w->first);
            }
        }
        break;
    }
    case IT_EVENT:
        s = w->event;
        sqlite3_bind_int64(s, 1, (sqlite3_int64)it->ts);
        if (!ptc_uuid_is_zero(&it->sid))
            sqlite3_bind_blob(s, 2, it->sid.b, 16, SQLITE_STATIC);
        sqlite3_bind_text(s, 3, it->s1, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 4, it->s2, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 5, it->s3, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 6, it->s4, -1, SQLITE_STATIC);
        if ((bad = step_done(s)))
            note_error(st, "recording an audit event");
        break;
    case IT_TOKEN_USED:
        sqlite3_bind_int64(w->used, 1, (sqlite3_int64)it->ts);
        sqlite3_bind_text(w->used, 2, it->s1, -1, SQLITE_STATIC);
        bad = step_done(w->used);
        break;
    default:
        break;
    }
    return bad ? -1 : 0;
}

/*
 * Drops the oldest chunks of all sessions, one at a time, until the log is back under its total
 * cap: only as many as needed, so the log keeps everything the cap allows.
 */
static void trim_total(struct store *st, struct wstmts *w)
{
    if (!st->opts.total_max)
        return;
    /* A running total (summed once when the writer starts), not a scan of the table per batch. */
    int64_t total = st->log_bytes;
    bool trimmed = false;
    for (int round = 0; round < 100000 && (uint64_t)total > st->opts.total_max; round++) {
        if (sqlite3_step(w->oldest) != SQLITE_ROW) {
            sqlite3_reset(w->oldest);
            break;
        }
        sqlite3_int64 rowid = sqlite3_column_int64(w->oldest, 0);
        sqlite3_int64 len = sqlite3_column_int64(w->oldest, 1);
        sqlite3_reset(w->oldest);
        sqlite3_bind_int64(w->trim_total, 1, rowid);
        if (step_done(w->trim_total))
            break;
        total -= len;
        trimmed = true;
    }
    st->log_bytes = total;
    /* Each session's first retained offset follows what is left. */
    if (trimmed)
        exec_sql(st->wr,
                 "UPDATE sessions SET start_off = COALESCE((SELECT min(off) FROM output WHERE "
                 "output.session = sessions.id), end_off)",
                 NULL, 0);
}

static void *writer_main(void *arg)
{
    struct store *st = arg;
    /*
     * The log is background work: under a flood this thread can use more CPU than the loop
     * itself, and on a small machine it then competes with the loop, the programs and local
     * clients. A lower priority (Linux: nice is per thread) keeps echo first; if the disk or
     * the CPU cannot keep up, the queue cap drops output from the log, never from a client.
     */
    if (setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 10) < 0)
        log_debug("%s: setpriority: %s", __func__, strerror(errno));
    struct wstmts w;
    prep(st, &w.session,
         "INSERT INTO sessions(id,name,argv,cwd,env,cols,rows,pid,state,exit_code,signal,"
         "created_ms,updated_ms,attention,idle_ttl_s,start_off,end_off) "
         "VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?16) "
         "ON CONFLICT(id) DO UPDATE SET name=?2,cols=?6,rows=?7,pid=?8,state=?9,exit_code=?10,"
         "signal=?11,updated_ms=?13,attention=?14,end_off=max(end_off,?16)");
    prep(st, &w.del_sess, "DELETE FROM sessions WHERE id=?1");
    prep(st, &w.del_out, "DELETE FROM output WHERE session=?1 RETURNING length(data)");
    prep(st, &w.out, "INSERT OR REPLACE INTO output(session,off,data) VALUES(?1,?2,?3)");
    prep(st, &w.end, "UPDATE sessions SET end_off=max(end_off,?1) WHERE id=?2");
    prep(st, &w.event,
         "INSERT INTO events(ts_ms,session,kind,token,peer,detail) VALUES(?1,?2,?3,?4,?5,?6)");
    prep(st, &w.used, "UPDATE tokens SET last_used_ms=?1 WHERE name=?2");
    prep(st, &w.trim,
         "DELETE FROM output WHERE session=?1 AND off + length(data) <= ?2 RETURNING length(data)");
    prep(st, &w.first,
         "UPDATE sessions SET start_off=COALESCE((SELECT min(off) FROM output WHERE session=?1),"
         " end_off) WHERE id=?2");
    prep(st, &w.total, "SELECT COALESCE(sum(length(data)),0) FROM output");
    prep(st, &w.oldest, "SELECT rowid, length(data) FROM output ORDER BY rowid LIMIT 1");
    prep(st, &w.trim_total, "DELETE FROM output WHERE rowid=?1");
    st->log_bytes = 0;
    if (sqlite3_step(w.total) == SQLITE_ROW)
        st->log_bytes = sqlite3_column_int64(w.total, 0);
    sqlite3_reset(w.total);

    pthread_mutex_lock(&st->mu);
    for (;;) {
        while (!st->head && !st->stop)
            pthread_cond_wait(&st->cv, &st->mu);
        if (!st->head && st->stop)
            break;
        struct item *batch = st->head;
        st->head = st->tail = NULL;
        st->inflight = batch;
        st->queued_bytes = 0;
        pthread_mutex_unlock(&st->mu);

        bool output = false;
        uint64_t barrier = 0;
        uint64_t txn_out = 0; /* output bytes inserted in the open transaction */
        bool in_txn = begin_batch(st);
        for (struct item *it = batch; it; it = it->next) {
            if (it->kind == IT_BARRIER)
                barrier = it->off;
            output |= it->kind == IT_OUTPUT;
            if (write_item(st, &w, it) == 0 && it->kind == IT_OUTPUT)
                txn_out += it->len;
            if (in_txn && sqlite3_get_autocommit(st->wr)) {
                /*
                 * SQLite rolled the whole transaction back (it does on SQLITE_FULL and I/O
                 * errors): the output it held is lost too. The rest of the batch goes on in a
                 * new transaction rather than in autocommit mode.
                 */
                drop_output(st, txn_out);
                txn_out = 0;
                in_txn = begin_batch(st);
            }
        }
        if (output)
            trim_total(st, &w);
        if (in_txn && sqlite3_exec(st->wr, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
            note_error(st, "committing the log");
            if (!sqlite3_get_autocommit(st->wr))
                sqlite3_exec(st->wr, "ROLLBACK", NULL, NULL, NULL);
            drop_output(st, txn_out);
        }
        /* Committed (or given up): readers find these bytes in the database from now on. */
        pthread_mutex_lock(&st->mu);
        st->inflight = NULL;
        pthread_mutex_unlock(&st->mu);
        while (batch) {
            struct item *it = batch;
            batch = it->next;
            item_free(it);
        }
        pthread_mutex_lock(&st->mu);
        st->committed_batches++;
        if (barrier) {
            st->barrier_seen = barrier;
            pthread_cond_broadcast(&st->done_cv);
        }
    }
    pthread_mutex_unlock(&st->mu);
    sqlite3_stmt *all[] = {w.session, w.del_sess, w.del_out, w.out,    w.end,       w.event,
                           w.used,    w.trim,     w.first,   w.total, w.oldest, w.trim_total};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        sqlite3_finalize(all[i]);
    return NULL;
}

static void enqueue(struct store *st, struct item *it, size_t bytes)
{
    pthread_mutex_lock(&st->mu);
    if (it->kind == IT_OUTPUT && st->queued_bytes + bytes > QUEUE_MAX_BYTES) {
        /* The disk is not keeping up: the log gets a gap, the live session loses nothing. */
        st->dropped_bytes += bytes;
        pthread_mutex_unlock(&st->mu);
        item_free(it);
        return;
    }
    st->queued_bytes += bytes;
    if (st->tail)
        st->tail->next = it;
    else
        st->head = it;
    st->tail = it;
    pthread_cond_signal(&st->cv);
    pthread_mutex_unlock(&st->mu);
}

/* ---- opening and closing ---------------------------------------------------------------------- */

/* Opens (creating and migrating) DIR/ptyrelay.db; with a writer thread when `writer`. */
int store_open(const char *dir, const struct store_opts *o, bool writer, struct store **out,
               char *err, size_t errlen)
{
    struct store *st = xcalloc(1, sizeof *st);
    if (o)
        st->opts = *o;
    snprintf(st->path, sizeof st->path, "%s/ptyrelay.db", dir);
    pthread_mutex_init(&st->mu, NULL);
    pthread_cond_init(&st->cv, NULL);
    pthread_cond_init(&st->done_cv, NULL);
    /*
     * The log holds everything programs printed: create the file 0600 ourselves. SQLite gives the
     * -wal and -shm files the database file's permissions, so they are private too.
     */
    int dbfd = open(st->path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (dbfd >= 0) {
        fchmod(dbfd, 0600);
        close(dbfd);
    }
    if (open_conn(st->path, &st->rd, err, errlen) || migrate(st->rd, err, errlen))
        goto fail;
    if (st->opts.db_max_bytes) {
        char sql[96];
        snprintf(sql, sizeof sql, "PRAGMA max_page_count=%llu",
                 (unsigned long long)(st->opts.db_max_bytes / 4096 + 1));
        exec_sql(st->rd, sql, NULL, 0);
    }
    if (writer) {
        if (open_conn(st->path, &st->wr, err, errlen))
            goto fail;
        if (st->opts.db_max_bytes) {
            char sql[96];
            snprintf(sql, sizeof sql, "PRAGMA max_page_count=%llu",
                     (unsigned long long)(st->opts.db_max_bytes / 4096 + 1));
            exec_sql(st->wr, sql, NULL, 0);
        }
        /*
         * The writer must block every signal: a process-directed signal (SIGCHLD, SIGTERM) goes to
         * any thread that does not block it, and the loop learns of them only through signalfds.
         */
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        int prc = pthread_create(&st->thread, NULL, writer_main, st);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (prc) {
            snprintf(err, errlen, "cannot start the store's writer thread");
            goto fail;
        }
        st->have_thread = true;
    }
    *out = st;
    return 0;
fail:
    sqlite3_close(st->wr);
    sqlite3_close(st->rd);
    free(st);
    return -1;
}

/* Waits until everything queued so far is committed (bounded by timeout_ms). 0 or -ETIMEDOUT. */
int store_sync(struct store *st, int timeout_ms)
{
    if (!st->have_thread)
        return 0;
    struct item *it = xcalloc(1, sizeof *it);
    it->kind = IT_BARRIER;
    pthread_mutex_lock(&st->mu);
    it->off = ++st->barrier_sent;
    uint64_t want = it->off;
    pthread_mutex_unlock(&st->mu);
    enqueue(st, it, 0);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += timeout_ms / 1000;
    ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    int rc = 0;
    pthread_mutex_lock(&st->mu);
    while (st->barrier_seen < want && rc == 0)
        rc = pthread_cond_timedwait(&st->done_cv, &st->mu, &ts);
    pthread_mutex_unlock(&st->mu);
    return rc ? -ETIMEDOUT : 0;
}

/* Commits what is queued, stops the writer and closes both connections. */
void store_close(struct store *st)
{
    if (!st)
        return;
    if (st->have_thread) {
        pthread_mutex_lock(&st->mu);
        st->stop = true;
        pthread_cond_signal(&st->cv);
        pthread_mutex_unlock(&st->mu);
        pthread_join(st->thread, NULL);
    }
    while (st->head) {
        struct item *it = st->head;
        st->head = it->next;
        item_free(it);
    }
    sqlite3_close(st->wr);
    sqlite3_close(st->rd);
    pthread_mutex_destroy(&st->mu);
    pthread_cond_destroy(&st->cv);
    pthread_cond_destroy(&st->done_cv);
    free(st);
}

/* Output bytes the log lost (queue over its cap or failed writes), write errors, last error. */
void store_health(struct store *st, uint64_t *dropped, uint64_t *errors, char *last, size_t lastlen)
{
    pthread_mutex_lock(&st->mu);
    *dropped = st->dropped_bytes;
    *errors = st->write_errors;
    if (last)
        snprintf(last, lastlen, "%s", st->last_error);
    pthread_mutex_unlock(&st->mu);
}

/* ---- loop side: queued writes ---------------------------------------------------------------- */

/* Queues a snapshot of a session's record. */
void store_session_put(struct store *st, const struct store_session *rec)
{
    struct item *it = xcalloc(1, sizeof *it);
    it->kind = IT_SESSION;
    it->rec = *rec;
    it->rec.name = xstrdup(rec->name ? rec->name : "");
    it->rec.argv = xstrdup(rec->argv ? rec->argv : "[]");
    it->rec.cwd = xstrdup(rec->cwd ? rec->cwd : "");
    it->rec.env = xstrdup(rec->env ? rec->env : "{}");
    enqueue(st, it, 256);
}

/* Queues the removal of a session's record and log. */
void store_session_delete(struct store *st, const ptc_uuid *id)
{
    struct item *it = xcalloc(1, sizeof *it);
    it->kind = IT_DELETE;
    it->sid = *id;
    enqueue(st, it, 64);
}

/* Queues output (takes ownership of data, a malloc'd block). */
void store_output(struct store *st, const ptc_uuid *id, uint64_t off, uint8_t *data, size_t n)
{
    struct item *it = xcalloc(1, sizeof *it);
    it->kind = IT_OUTPUT;
    it->sid = *id;
    it->off = off;
    it->data = data;
    it->len = n;
    enqueue(st, it, n);
}

/* Queues an audit event. */
void store_event(struct store *st, const char *kind, const ptc_uuid *sid, const char *token,
                 const char *peer, const char *detail)
{
    struct item *it = xcalloc(1, sizeof *it);
    it->kind = IT_EVENT;
    if (sid)
        it->sid = *sid;
    it->ts = now_wall_ms();
    it->s1 = xstrdup(kind);
    it->s2 = token ? xstrdup(token) : NULL;
    it->s3 = peer ? xstrdup(peer) : NULL;
    it->s4 = detail ? xstrdup(detail) : NULL;
    enqueue(st, it, 128);
}

/* Queues a token's last-used time. */
void store_token_used(struct store *st, const char *name)
{
    struct item *it = xcalloc(1, sizeof *it);
    it->kind = IT_TOKEN_USED;
    it->ts = now_wall_ms();
    it->s1 = xstrdup(name);
    enqueue(st, it, 64);
}

/* ---- loop side: reads ------------------------------------------------------------------------ */

/* Calls cb for every stored session. 0 or -1 (error in err). */
int store_load_sessions(struct store *st, int (*cb)(void *arg, const struct store_session *r),
                        void *arg, char *err, size_t errlen)
{
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(st->rd,
                           "SELECT id,name,argv,cwd,env,cols,rows,pid,state,exit_code,signal,"
                           "created_ms,updated_ms,start_off,end_off,attention,idle_ttl_s "
                           "FROM sessions ORDER BY created_ms",
                           -1, &s, NULL) != SQLITE_OK) {
        set_err(err, errlen, "loading sessions", st->rd);
        return -1;
    }
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct store_session r;
        memset(&r, 0, sizeof r);
        if (sqlite3_column_bytes(s, 0) != 16)
            continue;
        memcpy(r.id.b, sqlite3_column_blob(s, 0), 16);
        r.name = (char *)sqlite3_column_text(s, 1);
        r.argv = (char *)sqlite3_column_text(s, 2);
        r.cwd = (char *)sqlite3_column_text(s, 3);
        r.env = (char *)sqlite3_column_text(s, 4);
        r.cols = (uint16_t)sqlite3_column_int(s, 5);
        r.rows = (uint16_t)sqlite3_column_int(s, 6);
        r.pid = sqlite3_column_int64(s, 7);
        const char *stn = (const char *)sqlite3_column_text(s, 8);
        r.state = ptc_state_from_name(stn, strlen(stn));
        if (r.state < 0)
            r.state = PTC_ST_LOST;
        r.exit_code = sqlite3_column_int(s, 9);
        r.signo = sqlite3_column_int(s, 10);
        r.created_ms = (uint64_t)sqlite3_column_int64(s, 11);
        r.updated_ms = (uint64_t)sqlite3_column_int64(s, 12);
        r.start = (uint64_t)sqlite3_column_int64(s, 13);
        r.end = (uint64_t)sqlite3_column_int64(s, 14);
        const char *att = (const char *)sqlite3_column_text(s, 15);
        r.attention = ptc_attention_from_name(att, strlen(att));
        if (r.attention < 0)
            r.attention = PTC_ATT_ACTIVE;
        r.idle_ttl_s = (uint64_t)sqlite3_column_int64(s, 16);
        if (cb(arg, &r) < 0)
            break;
    }
    sqlite3_finalize(s);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
        set_err(err, errlen, "loading sessions", st->rd);
        return -1;
    }
    return 0;
}

/*
 * From the database: up to max bytes of session id's output from the chunk holding off (or the
 * first chunk after it: *at > off), stopping at a gap. The byte count, 0 if none, -1 on error.
 */
static long sql_read(struct store *st, const ptc_uuid *id, uint64_t off, uint8_t *buf, size_t max,
                     uint64_t *at)
{
    static const char sql[] =
        "SELECT off, data FROM output WHERE session=?1 AND off >= "
        "COALESCE((SELECT max(off) FROM output WHERE session=?1 AND off <= ?2), 0) "
        "ORDER BY off LIMIT ?3";
    sqlite3_stmt *s;
    if (sqlite3_prepare_v3(st->rd, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_blob(s, 1, id->b, 16, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, (sqlite3_int64)off);
    sqlite3_bind_int(s, 3, READ_CHUNKS);
    size_t got = 0;
    uint64_t next = 0;
    bool first = true;
    int rc;
    while (got < max && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        uint64_t coff = (uint64_t)sqlite3_column_int64(s, 0);
        const uint8_t *d = sqlite3_column_blob(s, 1);
        size_t n = (size_t)sqlite3_column_bytes(s, 1);
        if (coff + n <= off)
            continue; /* a chunk wholly before off */
        if (first) {
            uint64_t start = coff > off ? coff : off;
            *at = start;
            next = start;
            first = false;
        } else if (coff != next) {
            break; /* a gap in the log: stop here, the caller continues from next */
        }
        size_t skip = (size_t)(next - coff);
        size_t take = n - skip;
        if (take > max - got)
            take = max - got;
        memcpy(buf + got, d + skip, take);
        got += take;
        next += take;
    }
    sqlite3_finalize(s);
    return (long)got;
}

/*
 * Output handed to the store but not committed yet (the batch being written, then the queue;
 * both in offset order per session). Under mu. pending_first: the lowest offset >= off held for
 * the session; pending_copy: the bytes from exactly off on while they are contiguous.
 */
static bool pending_first(struct store *st, const ptc_uuid *id, uint64_t off, uint64_t *lo)
{
    bool found = false;
    struct item *lists[2] = {st->inflight, st->head};
    for (int l = 0; l < 2; l++)
        for (struct item *it = lists[l]; it; it = it->next) {
            if (it->kind != IT_OUTPUT || !ptc_uuid_eq(&it->sid, id) || it->off + it->len <= off)
                continue;
            uint64_t from = it->off > off ? it->off : off;
            if (!found || from < *lo)
                *lo = from;
            found = true;
        }
    return found;
}

static size_t pending_copy(struct store *st, const ptc_uuid *id, uint64_t off, uint8_t *buf,
                           size_t max)
{
    size_t got = 0;
    struct item *lists[2] = {st->inflight, st->head};
    for (int l = 0; l < 2; l++)
        for (struct item *it = lists[l]; it && got < max; it = it->next) {
            uint64_t next = off + got;
            if (it->kind != IT_OUTPUT || !ptc_uuid_eq(&it->sid, id) || it->off > next ||
                it->off + it->len <= next)
                continue;
            size_t take = (size_t)(it->off + it->len - next);
            if (take > max - got)
                take = max - got;
            memcpy(buf + got, it->data + (next - it->off), take);
            got += take;
        }
    return got;
}

/*
 * Reads logged output of session id from offset off: up to max bytes into buf, from the chunk
 * holding off (or the first one after it: then *at > off shows the gap). Output not committed yet
 * is read from the writer's queue, so what the loop handed over is readable at once, never a gap.
 * The mutex is held across both: the writer lets go of a batch only under it, after the commit, so
 * a batch is always in one place or the other. Returns the byte count (0: nothing logged at or
 * after off), or -1 on a database error.
 */
long store_read(struct store *st, const ptc_uuid *id, uint64_t off, void *buf, size_t max,
                uint64_t *at)
{
    uint8_t *out = buf;
    size_t got = 0;
    uint64_t next = off;
    long rc = 0;
    pthread_mutex_lock(&st->mu);
    for (int guard = 0; guard < 64 && got < max; guard++) {
        uint64_t sat = 0, pat = 0;
        long n = sql_read(st, id, next, out + got, max - got, &sat);
        if (n < 0) {
            rc = -1;
            break;
        }
        bool have_p = pending_first(st, id, next, &pat);
        if (n > 0 && sat == next) {
            /* the database has it */
        } else if (have_p && pat == next) {
            n = (long)pending_copy(st, id, next, out + got, max - got);
        } else {
            /* Nothing at next: after the first byte that is a gap, where a read stops. */
            if (got || (n <= 0 && !have_p))
                break;
            next = n > 0 && (!have_p || sat < pat) ? sat : pat;
            continue;
        }
        if (n <= 0)
            break;
        if (!got)
            *at = next;
        got += (size_t)n;
        next += (uint64_t)n;
    }
    pthread_mutex_unlock(&st->mu);
    return got ? (long)got : rc;
}

/* The first offset the log holds for a session (committed or queued), or UINT64_MAX if none. */
uint64_t store_first_offset(struct store *st, const ptc_uuid *id)
{
    sqlite3_stmt *s;
    uint64_t first = UINT64_MAX;
    pthread_mutex_lock(&st->mu);
    if (sqlite3_prepare_v2(st->rd, "SELECT min(off) FROM output WHERE session=?1", -1, &s, NULL) ==
        SQLITE_OK) {
        sqlite3_bind_blob(s, 1, id->b, 16, SQLITE_STATIC);
        if (sqlite3_step(s) == SQLITE_ROW && sqlite3_column_type(s, 0) != SQLITE_NULL)
            first = (uint64_t)sqlite3_column_int64(s, 0);
        sqlite3_finalize(s);
    }
    uint64_t lo;
    if (pending_first(st, id, 0, &lo) && lo < first)
        first = lo;
    pthread_mutex_unlock(&st->mu);
    return first;
}

/* True when another connection (a `ptyrelay token` command, the writer) committed since last asked. */
bool store_changed(struct store *st)
{
    sqlite3_stmt *s;
    bool changed = false;
    if (sqlite3_prepare_v2(st->rd, "PRAGMA data_version", -1, &s, NULL) != SQLITE_OK)
        return false;
    if (sqlite3_step(s) == SQLITE_ROW) {
        long long v = sqlite3_column_int64(s, 0);
        changed = v != st->data_version;
        st->data_version = v;
    }
    sqlite3_finalize(s);
    return changed;
}

/* ---- tokens ----------------------------------------------------------------------------------- */

/* Calls cb for every token (hash, name, scope, created, last used or 0). 0 or -1. */
int store_tokens(struct store *st, int (*cb)(void *arg, const char *name, const uint8_t *hash, int scope,
                                             uint64_t created, uint64_t last_used),
                 void *arg)
{
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(st->rd,
                           "SELECT name, hash, scope, created_ms, COALESCE(last_used_ms,0) FROM "
                           "tokens ORDER BY created_ms, name",
                           -1, &s, NULL) != SQLITE_OK)
        return -1;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (sqlite3_column_bytes(s, 1) != 32)
            continue;
        const char *scope = (const char *)sqlite3_column_text(s, 2);
        if (cb(arg, (const char *)sqlite3_column_text(s, 0), sqlite3_column_blob(s, 1),
               !strcmp(scope, "view") ? SCOPE_VIEW : SCOPE_CONTROL,
               (uint64_t)sqlite3_column_int64(s, 3), (uint64_t)sqlite3_column_int64(s, 4)) < 0)
            break;
    }
    sqlite3_finalize(s);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : -1;
}

/* Adds a token's hash. 0, -EEXIST when the name is taken, or -EIO (message in err). */
int store_token_add(struct store *st, const char *name, const uint8_t hash[32], int scope,
                    char *err, size_t errlen)
{
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(st->rd,
                           "INSERT INTO tokens(name,hash,scope,created_ms) VALUES(?1,?2,?3,?4)", -1,
                           &s, NULL) != SQLITE_OK) {
        set_err(err, errlen, "adding a token", st->rd);
        return -EIO;
    }
    sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_blob(s, 2, hash, 32, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, scope == SCOPE_VIEW ? "view" : "control", -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 4, (sqlite3_int64)now_wall_ms());
    int rc = sqlite3_step(s);
    int ext = sqlite3_extended_errcode(st->rd);
    sqlite3_finalize(s);
    if (rc == SQLITE_DONE)
        return 0;
    if (ext == SQLITE_CONSTRAINT_PRIMARYKEY || ext == SQLITE_CONSTRAINT_UNIQUE) {
        snprintf(err, errlen, "a token named '%s' already exists", name);
        return -EEXIST;
    }
    set_err(err, errlen, "adding a token", st->rd);
    return -EIO;
}

/* Deletes a token. 0, -ENOENT, or -EIO. */
int store_token_revoke(struct store *st, const char *name, char *err, size_t errlen)
{
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(st->rd, "DELETE FROM tokens WHERE name=?1", -1, &s, NULL) != SQLITE_OK) {
        set_err(err, errlen, "revoking a token", st->rd);
        return -EIO;
    }
    sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    sqlite3_finalize(s);
    if (rc != SQLITE_DONE) {
        set_err(err, errlen, "revoking a token", st->rd);
        return -EIO;
    }
    if (sqlite3_changes(st->rd) == 0) {
        snprintf(err, errlen, "no token named '%s'", name);
        return -ENOENT;
    }
    return 0;
}

/* ---- the audit trail -------------------------------------------------------------------------- */

/* Calls cb for each event (oldest first), all or those of one session. 0 or -1. */
int store_events(struct store *st, const ptc_uuid *sid,
                 int (*cb)(void *arg, uint64_t ts, const ptc_uuid *sid, const char *kind,
                           const char *token, const char *peer, const char *detail),
                 void *arg)
{
    sqlite3_stmt *s;
    const char *sql = sid ? "SELECT ts_ms,session,kind,token,peer,detail FROM events WHERE "
                            "session=?1 ORDER BY id"
                          : "SELECT ts_ms,session,kind,token,peer,detail FROM events ORDER BY id";
    if (sqlite3_prepare_v2(st->rd, sql, -1, &s, NULL) != SQLITE_OK)
        return -1;
    if (sid)
        sqlite3_bind_blob(s, 1, sid->b, 16, SQLITE_STATIC);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        ptc_uuid id = {{0}};
        bool has = sqlite3_column_bytes(s, 1) == 16;
        if (has)
            memcpy(id.b, sqlite3_column_blob(s, 1), 16);
        if (cb(arg, (uint64_t)sqlite3_column_int64(s, 0), has ? &id : NULL,
               (const char *)sqlite3_column_text(s, 2), (const char *)sqlite3_column_text(s, 3),
               (const char *)sqlite3_column_text(s, 4), (const char *)sqlite3_column_text(s, 5)) < 0)
            break;
    }
    sqlite3_finalize(s);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : -1;
}

/* Encodes a string array as a JSON array (for argv in the sessions table). malloc'd. */
char *store_json_strv(char *const *v, int n)
{
    json_t *a = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(a, json_string(v[i]));
    char *s = json_dumps(a, JSON_COMPACT);
    json_decref(a);
    if (!s)
        fatal("out of memory");
    return s;
}

/* Decodes a JSON array of strings; *n entries, each and the array malloc'd. NULL if not one. */
char **store_json_parse_strv(const char *text, int *n)
{
    json_error_t e;
    json_t *a = json_loads(text ? text : "[]", 0, &e);
    *n = 0;
    if (!a || !json_is_array(a)) {
        json_decref(a);
        return NULL;
    }
    size_t len = json_array_size(a);
    char **v = xcalloc(len + 1, sizeof *v);
    for (size_t i = 0; i < len; i++) {
        const char *s = json_string_value(json_array_get(a, i));
        v[(*n)++] = xstrdup(s ? s : "");
    }
    json_decref(a);
    return v;
}
