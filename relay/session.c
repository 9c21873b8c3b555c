/*
 * session: one program in a PTY, its states, its output ring and its input queue.
 *
 * The PTY is read whenever it is readable, whatever the clients do; output goes into the ring and
 * attachments are told there is more. The end of a program is reported only once both halves are
 * known: the child has been reaped (its status) and the master has been drained to EOF, so the STATE
 * that says `exited` always follows the last output byte. The parent keeps the PTY's slave open
 * until the reap (see pty.h) so that drain can never be cut short by an early HUP.
 * Input is a bounded queue of chunks written when the master is writable; a program that never
 * reads its input fills the queue, and the connection sending it is paused, never the loop.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "relay.h"

#define READ_BUDGET (64 * 1024) /* bytes read from one PTY per loop turn: bounds what a flood adds to others' latency */
#define LOG_CHUNK (256 * 1024)   /* output handed to the store in chunks of at most this */
#define DRAIN_GRACE_MS 2000      /* after the reap, how long a background holder of the tty may keep it */

static uint64_t log_first_now(const struct session *s);

static char **build_env(struct relay *r, const char *const *add)
{
    size_t nadd = 0;
    while (add && add[nadd])
        nadd++;
    char **env = xcalloc((size_t)r->nbase_env + nadd + 2, sizeof *env);
    size_t n = 0;
    for (int i = 0; i < r->nbase_env; i++) {
        const char *kv = r->base_env[i];
        size_t klen = strcspn(kv, "=");
        bool overridden = false;
        for (size_t j = 0; j < nadd && !overridden; j++)
            overridden = !strncmp(add[j], kv, klen) && add[j][klen] == '=';
        if (!overridden)
            env[n++] = (char *)kv;
    }
    bool term_added = false;
    for (size_t j = 0; j < nadd; j++) {
        env[n++] = (char *)add[j];
        term_added |= !strncmp(add[j], "TERM=", 5);
    }
    if (!term_added)
        env[n++] = "TERM=xterm-256color";
    env[n] = NULL;
    return env;
}

/* Creates a session and spawns its program. */
int session_open(struct relay *r, const struct session_open_args *a, struct session **out, char *err,
                 size_t errlen)
{
    if (r->nsessions >= r->cfg.max_sessions) {
        snprintf(err, errlen, "session limit reached (%u)", r->cfg.max_sessions);
        log_warn("limit: sessions (%u) reached", r->cfg.max_sessions);
        return -EMFILE;
    }
    char **env = build_env(r, a->env_add);
    struct pty_spawn_opts o = {
        .argv = a->argv,
        .cwd = a->cwd,
        .env = (const char *const *)env,
        .cols = a->cols ? a->cols : 80,
        .rows = a->rows ? a->rows : 24,
    };
    struct pty_proc proc;
    int rc = pty_spawn(&o, &proc, err, errlen);
    free(env);
    if (rc < 0)
        return rc;

    struct session *s = xcalloc(1, sizeof *s);
    s->relay = r;
    ptc_uuid_random(&s->id);
    ptc_uuid_format(&s->id, s->idtext);
    s->proc = proc;
    s->pid = proc.pid;
    s->state = PTC_ST_RUNNING;
    s->attention = PTC_ATT_ACTIVE;
    s->cols = o.cols;
    s->rows = o.rows;
    s->created_ms = s->updated_ms = now_wall_ms();
    s->last_output = s->last_activity = now_ms();
    s->idle_ttl_ms = a->idle_ttl_s * 1000;
    s->name = xstrdup(a->name ? a->name : "");
    if (a->argv) {
        while (a->argv[s->argc])
            s->argc++;
        s->argv = xcalloc((size_t)s->argc + 1, sizeof *s->argv);
        for (int i = 0; i < s->argc; i++)
            s->argv[i] = xstrdup(a->argv[i]);
    } else {
        s->argc = 1;
        s->argv = xcalloc(2, sizeof *s->argv);
        s->argv[0] = xstrdup(pty_default_shell());
    }
    s->argv_v = xcalloc((size_t)s->argc + 1, sizeof *s->argv_v);
    for (int i = 0; i < s->argc; i++)
        s->argv_v[i] = ptc_str_c(s->argv[i]);
    if (a->cwd) {
        s->cwd = xstrdup(a->cwd);
    } else {
        char buf[4096];
        s->cwd = xstrdup(getcwd(buf, sizeof buf) ? buf : "/");
    }
    ring_init(&s->ring, r->cfg.ring_max);
    ptc_buf_init(&s->logbuf, 0);
    s->log_first = UINT64_MAX;
    {
        int n = 0;
        while (a->env_add && a->env_add[n])
            n++;
        s->env_json = store_json_strv((char *const *)a->env_add, n);
    }

    if (server_adopt_pty(r, s, proc.master) < 0) {
        /* lws closed the master; nothing else owns the child, so end it now. */
        snprintf(err, errlen, "internal error: could not watch the PTY");
        pty_signal(s->pid, SIGKILL);
        pty_proc_release_slave(&s->proc);
        s->dead = true;
        s->next = r->dead_sessions;
        r->dead_sessions = s;
        return -EIO;
    }
    s->next = r->sessions;
    if (r->sessions)
        r->sessions->prev = s;
    r->sessions = s;
    r->nsessions++;
    log_info("session=%.8s opened pid=%d argv0=%s", s->idtext, (int)s->pid, s->argv[0]);
    session_save(s);
    relay_broadcast_session(r, s, false);
    *out = s;
    return 0;
}

/* Finds a live session by id. */
struct session *session_find(struct relay *r, const ptc_uuid *id)
{
    for (struct session *s = r->sessions; s; s = s->next)
        if (ptc_uuid_eq(&s->id, id))
            return s;
    return NULL;
}

/* The input queue has room again: resume reading the connections paused on it. */
static void resume_senders(struct session *s)
{
    for (struct attach *a = s->attach_head; a; a = a->next_in_session)
        if (a->conn->rx_paused) {
            a->conn->rx_paused = false;
            server_conn_rx_flow(a->conn, true);
        }
}

/* Frees the input queue: what the program never read is lost with it. */
static void drop_input(struct session *s)
{
    while (s->in_head) {
        struct input_chunk *c = s->in_head;
        s->in_head = c->next;
        free(c);
    }
    s->in_tail = NULL;
    s->in_bytes = 0;
}

static void session_finalize(struct session *s)
{
    if (ptc_state_is_ended(s->state))
        return;
    int st = s->wait_status;
    if (WIFSIGNALED(st)) {
        s->state = PTC_ST_KILLED;
        s->signo = WTERMSIG(st);
    } else {
        s->state = PTC_ST_EXITED;
        s->exit_code = WEXITSTATUS(st);
    }
    s->kill_deadline = 0;
    char tmp[16];
    if (s->state == PTC_ST_KILLED)
        log_info("session=%.8s killed by SIG%s end=%llu", s->idtext, ptc_signal_name(s->signo, tmp),
                 (unsigned long long)s->ring.end);
    else
        log_info("session=%.8s exited code=%d end=%llu", s->idtext, s->exit_code,
                 (unsigned long long)s->ring.end);
    /* Input that never reached the program is dropped; whoever was paused on it reads again. */
    bool had_full = !session_input_has_room(s);
    drop_input(s);
    if (had_full)
        resume_senders(s);
    session_flush_log(s);
    if (s->state == PTC_ST_KILLED)
        relay_audit(s->relay, "exited", s, NULL, "signal=%s end=%llu", ptc_signal_name(s->signo, tmp),
                    (unsigned long long)s->ring.end);
    else
        relay_audit(s->relay, "exited", s, NULL, "code=%d end=%llu", s->exit_code,
                    (unsigned long long)s->ring.end);
    session_changed(s);
}

/* Reads what the PTY has, up to a budget so other sessions get their turn. */
int session_on_readable(struct session *s)
{
    size_t total = 0;
    bool finished = false;
    while (total < READ_BUDGET) {
        size_t want = 65536;
        uint8_t *dst = ring_reserve(&s->ring, &want);
        ssize_t n = read(s->proc.master, dst, want);
        if (n > 0) {
            ring_commit(&s->ring, (size_t)n);
            total += (size_t)n;
            if (s->relay->log_output) {
                /* A copy for the store, handed over in chunks; SQL happens on its thread. */
                ptc_buf_append(&s->logbuf, dst, (size_t)n);
                if (s->logbuf.len >= LOG_CHUNK)
                    session_flush_log(s);
            }
            if (s->nwaits)
                conn_waits_on_output(s, dst, (size_t)n);
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        /* EOF or EIO: every process holding the slave is gone and the master is drained. */
        finished = !(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
        break;
    }
    if (total) {
        s->last_output = s->last_activity = now_ms();
        if (s->attention != PTC_ATT_ACTIVE) {
            s->attention = PTC_ATT_ACTIVE;
            session_changed(s);
        }
        attach_notify_output(s);
    }
    return finished ? -1 : 0;
}

/* The loop closed the master (HUP, or after we returned -1). */
void session_on_pty_closed(struct session *s)
{
    s->pty_wsi = NULL;
    s->pty_closed = true;
    if (s->reaped)
        session_finalize(s);
}

/* A wait status for this session's child. */
void session_on_child(struct session *s, int status)
{
    log_debug("%s: session=%.8s pid=%d status=0x%x", __func__, s->idtext, (int)s->pid, status);
    if (WIFSTOPPED(status)) {
        if (s->state == PTC_ST_RUNNING) {
            s->state = PTC_ST_SUSPENDED;
            log_info("session=%.8s suspended", s->idtext);
            session_changed(s);
        }
        return;
    }
    if (WIFCONTINUED(status)) {
        if (s->state == PTC_ST_SUSPENDED) {
            s->state = PTC_ST_RUNNING;
            log_info("session=%.8s continued", s->idtext);
            session_changed(s);
        }
        return;
    }
    s->reaped = true;
    s->wait_status = status;
    s->reaped_at = now_ms();
    /* Let the master drain to EOF now that the program is gone (pty.h). */
    pty_proc_release_slave(&s->proc);
    if (s->pty_closed)
        session_finalize(s);
}

/* Writes queued input while the master takes it. */
void session_on_writable(struct session *s)
{
    bool had_full = !session_input_has_room(s);
    while (s->in_head) {
        struct input_chunk *c = s->in_head;
        ssize_t n = write(s->proc.master, c->data + c->pos, c->len - c->pos);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                server_pty_want_write(s);
                break;
            }
            /* EIO: the program is gone; what it did not read is lost with it. */
            log_debug("%s: session=%.8s write: %s", __func__, s->idtext, strerror(errno));
            drop_input(s);
            break;
        }
        c->pos += (size_t)n;
        s->in_bytes -= (size_t)n;
        if (c->from) {
            c->from->in_written += (uint64_t)n;
            conn_want_write(c->from->conn);
        }
        if (c->pos == c->len) {
            s->in_head = c->next;
            if (!s->in_head)
                s->in_tail = NULL;
            free(c);
        }
    }
    if (had_full && session_input_has_room(s))
        resume_senders(s);
}

/* Whether the input queue is below its limit. */
bool session_input_has_room(const struct session *s)
{
    return s->in_bytes < s->relay->cfg.input_queue_max;
}

/* Queues input and writes what the PTY takes now. */
int session_input(struct session *s, struct attach *from, const uint8_t *p, size_t n)
{
    log_debug("%s: session=%.8s %zu bytes, %zu queued", __func__, s->idtext, n, s->in_bytes);
    s->last_activity = now_ms();
    if (!n)
        return 0;
    struct input_chunk *c = xmalloc(sizeof *c + n);
    c->next = NULL;
    c->from = from;
    c->len = n;
    c->pos = 0;
    memcpy(c->data, p, n);
    if (s->in_tail)
        s->in_tail->next = c;
    else
        s->in_head = c;
    s->in_tail = c;
    s->in_bytes += n;
    if (s->in_head == c)
        session_on_writable(s);
    return session_input_has_room(s) ? 0 : -ENOSPC;
}

/* Sets the PTY size and tells every attached client. */
int session_resize(struct session *s, uint16_t cols, uint16_t rows)
{
    if (ptc_state_is_ended(s->state))
        return -ESRCH;
    int rc = pty_resize(s->proc.master, cols, rows);
    if (rc < 0)
        return rc;
    if (cols != s->cols || rows != s->rows) {
        s->cols = cols;
        s->rows = rows;
        s->updated_ms = now_wall_ms();
        session_save(s);
    }
    attach_notify_state(s, true);
    return 0;
}

/* Sends a signal to the program's process group. */
int session_signal(struct session *s, int signo)
{
    if (ptc_state_is_ended(s->state) || s->reaped)
        return -ESRCH;
    return pty_signal(s->pid, signo);
}

/* SIGTERM now (SIGCONT too if stopped), SIGKILL after the grace. */
int session_kill(struct session *s, uint64_t grace_ms)
{
    if (ptc_state_is_ended(s->state) || s->reaped)
        return -ESRCH;
    if (grace_ms == 0)
        return pty_signal(s->pid, SIGKILL);
    int rc = pty_signal(s->pid, SIGTERM);
    if (s->state == PTC_ST_SUSPENDED)
        pty_signal(s->pid, SIGCONT);
    s->kill_deadline = now_ms() + grace_ms;
    return rc;
}

/* Unlinks an ended session; freed at the end of the loop turn. */
void session_remove(struct session *s)
{
    struct relay *r = s->relay;
    if (s->dead)
        return;
    relay_broadcast_session(r, s, true);
    conn_waits_drop_session(s);
    while (s->attach_head)
        attach_free(s->attach_head);
    if (s->pty_wsi)
        server_pty_close(s);
    if (s->prev)
        s->prev->next = s->next;
    else
        r->sessions = s->next;
    if (s->next)
        s->next->prev = s->prev;
    r->nsessions--;
    store_session_delete(r->store, &s->id);
    s->dead = true;
    s->next = r->dead_sessions;
    s->prev = NULL;
    r->dead_sessions = s;
    log_info("session=%.8s removed", s->idtext);
}

/* Attention, idle TTL, the SIGKILL after a grace, and programs whose tty stays held. */
void session_tick(struct session *s, uint64_t now)
{
    struct config *cfg = &s->relay->cfg;
    if (ptc_state_is_ended(s->state))
        return;
    uint64_t quiet = now - s->last_output;
    int att = quiet >= cfg->attention_after_ms ? PTC_ATT_ATTENTION
              : quiet >= cfg->idle_after_ms    ? PTC_ATT_IDLE
                                               : PTC_ATT_ACTIVE;
    if (att != s->attention) {
        s->attention = att;
        session_changed(s);
    }
    if (s->kill_deadline && now >= s->kill_deadline && !s->reaped) {
        log_info("session=%.8s did not end within its grace: SIGKILL", s->idtext);
        pty_signal(s->pid, SIGKILL);
        s->kill_deadline = 0;
    }
    if (s->idle_ttl_ms && !s->nclients && !s->kill_deadline && !s->reaped &&
        now - s->last_activity >= s->idle_ttl_ms) {
        log_info("session=%.8s idle for %llus with no client: killing", s->idtext,
                 (unsigned long long)(s->idle_ttl_ms / 1000));
        session_kill(s, 5000);
    }
    if (s->reaped && !s->pty_closed && now - s->reaped_at >= DRAIN_GRACE_MS) {
        /* A background process still holds the tty; the program itself has ended. */
        if (s->pty_wsi)
            server_pty_close(s);
        s->pty_closed = true;
        session_finalize(s);
    }
}

/* The session info map (views valid while the session lives). */
void session_info(const struct session *s, struct ptc_info *i)
{
    memset(i, 0, sizeof *i);
    i->id = s->id;
    i->name = ptc_str_c(s->name);
    i->argv = s->argv_v;
    i->argc = (uint32_t)s->argc;
    i->cwd = ptc_str_c(s->cwd);
    i->has = PTC_HAS_PID;
    i->pid = (uint64_t)s->pid;
    i->state = s->state;
    if (s->state == PTC_ST_EXITED) {
        i->has |= PTC_HAS_EXIT_CODE;
        i->exit_code = s->exit_code;
    }
    if (s->state == PTC_ST_KILLED) {
        i->has |= PTC_HAS_SIGNO;
        i->signo = s->signo;
    }
    i->cols = s->cols;
    i->rows = s->rows;
    i->created_ms = s->created_ms;
    i->updated_ms = s->updated_ms;
    /* What remains: the log's start moves with retention, so ask it while the ring has dropped. */
    uint64_t rs = ring_start(&s->ring), lf = rs > 0 ? log_first_now(s) : s->log_first;
    i->start = lf < rs ? lf : rs;
    i->end = ring_end(&s->ring);
    i->clients = s->nclients;
    i->attention = s->attention;
}

/* The STATE message for this session now. */
void session_fill_state(const struct session *s, struct ptc_statemsg *m)
{
    memset(m, 0, sizeof *m);
    m->state = s->state;
    m->attention = s->attention;
    m->end = ring_end(&s->ring);
    if (s->state == PTC_ST_EXITED) {
        m->has |= PTC_HAS_EXIT_CODE;
        m->exit_code = s->exit_code;
    }
    if (s->state == PTC_ST_KILLED) {
        m->has |= PTC_HAS_SIGNO;
        m->signo = s->signo;
    }
}

/* Tells attachments (STATE), subscribers (EVENT) and waits that the session changed. */
void session_changed(struct session *s)
{
    s->updated_ms = now_wall_ms();
    session_save(s);
    attach_notify_state(s, false);
    relay_broadcast_session(s->relay, s, false);
    if (s->nwaits)
        conn_waits_on_state(s);
}

/* Frees a session that is already unlinked. */
void session_free(struct session *s)
{
    if (s->pid > 0 && !s->reaped)
        pty_signal(s->pid, SIGKILL);
    pty_proc_release_slave(&s->proc);
    drop_input(s);
    for (int i = 0; i < s->argc; i++)
        free(s->argv[i]);
    free(s->argv);
    free(s->argv_v);
    free(s->cwd);
    free(s->name);
    free(s->env_json);
    ptc_buf_free(&s->logbuf);
    ring_free(&s->ring);
    free(s);
}

/* Hands the output read since the last call to the store's writer. */
void session_flush_log(struct session *s)
{
    if (!s->logbuf.len)
        return;
    uint8_t *data = s->logbuf.mem;
    size_t n = s->logbuf.len;
    /* The store takes the buffer as it is; a fresh one starts empty. */
    s->logbuf.mem = s->logbuf.data = NULL;
    s->logbuf.len = s->logbuf.cap = 0;
    if (s->log_first == UINT64_MAX)
        s->log_first = s->log_off;
    store_output(s->relay->store, &s->id, s->log_off, data, n);
    s->log_off += n;
}

/* Saves the session's record. */
void session_save(struct session *s)
{
    if (s->dead)
        return;
    struct store_session rec;
    memset(&rec, 0, sizeof rec);
    rec.id = s->id;
    rec.name = s->name;
    rec.argv = store_json_strv(s->argv, s->argc);
    rec.cwd = s->cwd;
    rec.env = s->env_json;
    rec.cols = s->cols;
    rec.rows = s->rows;
    rec.pid = s->pid;
    rec.state = s->state;
    rec.exit_code = s->exit_code;
    rec.signo = s->signo;
    rec.attention = s->attention;
    rec.created_ms = s->created_ms;
    rec.updated_ms = s->updated_ms;
    rec.end = ring_end(&s->ring);
    rec.idle_ttl_s = s->idle_ttl_ms / 1000;
    store_session_put(s->relay->store, &rec);
    free(rec.argv);
}

/* Re-creates a session from the store; one that was running when the relay died is `lost`. */
struct session *session_restore(struct relay *r, const struct store_session *rec)
{
    struct session *s = xcalloc(1, sizeof *s);
    s->relay = r;
    s->id = rec->id;
    ptc_uuid_format(&s->id, s->idtext);
    s->name = xstrdup(rec->name ? rec->name : "");
    s->argv = store_json_parse_strv(rec->argv, &s->argc);
    if (!s->argv) {
        s->argv = xcalloc(2, sizeof *s->argv);
        s->argv[0] = xstrdup("?");
        s->argc = 1;
    }
    s->argv_v = xcalloc((size_t)s->argc + 1, sizeof *s->argv_v);
    for (int i = 0; i < s->argc; i++)
        s->argv_v[i] = ptc_str_c(s->argv[i]);
    s->cwd = xstrdup(rec->cwd ? rec->cwd : "");
    s->env_json = xstrdup(rec->env ? rec->env : "[]");
    s->pid = (pid_t)rec->pid;
    s->state = rec->state;
    s->exit_code = rec->exit_code;
    s->signo = rec->signo;
    s->attention = rec->attention;
    s->cols = rec->cols ? rec->cols : 80;
    s->rows = rec->rows ? rec->rows : 24;
    s->created_ms = rec->created_ms;
    s->updated_ms = rec->updated_ms;
    s->proc.master = s->proc.slave = -1;
    s->reaped = s->pty_closed = true;
    s->last_output = s->last_activity = now_ms();
    ring_init(&s->ring, r->cfg.ring_max);
    s->ring.start = s->ring.end = rec->end;
    ptc_buf_init(&s->logbuf, 0);
    s->log_off = rec->end;
    s->log_first = store_first_offset(r->store, &s->id);
    bool lost = !ptc_state_is_ended(s->state);
    if (lost) {
        s->state = PTC_ST_LOST;
        s->updated_ms = now_wall_ms();
    }
    s->next = r->sessions;
    if (r->sessions)
        r->sessions->prev = s;
    r->sessions = s;
    r->nsessions++;
    if (lost) {
        log_warn("session=%.8s was running when the relay stopped: marked lost (its output stays "
                 "readable)", s->idtext);
        session_save(s);
        relay_audit(r, "lost", s, NULL, "pid=%d", (int)s->pid);
    }
    return s;
}

/*
 * The first offset the log holds: committed or queued in the store, else the start of what is
 * still waiting in logbuf. UINT64_MAX when none.
 */
static uint64_t log_first_now(const struct session *s)
{
    uint64_t first = s->relay->store ? store_first_offset(s->relay->store, &s->id) : UINT64_MAX;
    if (first == UINT64_MAX && s->logbuf.len)
        first = s->log_off;
    return first;
}

/* The first offset still retained, in the log or the ring. */
uint64_t session_first_offset(struct session *s)
{
    uint64_t rs = ring_start(&s->ring);
    if (rs > 0) {
        /* The ring has dropped bytes: the log may hold older ones (retention moves its start). */
        s->log_first = log_first_now(s);
    }
    return s->log_first < rs ? s->log_first : rs;
}

/*
 * Output at off from the log (below the ring) and the ring; stops at a gap after the first byte.
 * Below the ring, bytes not yet handed to the store are still in logbuf ([log_off, ring end)).
 */
size_t session_read(struct session *s, uint64_t off, void *buf, size_t max, uint64_t *at)
{
    size_t got = 0;
    uint64_t next = off;
    bool first = true;
    *at = off;
    for (int guard = 0; got < max && guard < 64; guard++) {
        uint64_t where = next;
        long n = 0;
        if (next < ring_start(&s->ring) && s->relay->store)
            n = store_read(s->relay->store, &s->id, next, (uint8_t *)buf + got, max - got, &where);
        if (n > 0 && where > next && next >= s->log_off && s->logbuf.len)
            n = 0; /* the store starts later, but logbuf holds next */
        if (n <= 0 && next < ring_start(&s->ring) && next >= s->log_off &&
            next < s->log_off + s->logbuf.len) {
            size_t skip = (size_t)(next - s->log_off);
            n = (long)(s->logbuf.len - skip);
            if ((size_t)n > max - got)
                n = (long)(max - got);
            memcpy((uint8_t *)buf + got, s->logbuf.data + skip, (size_t)n);
            where = next;
        }
        if (n <= 0) {
            /* Not in the log: continue from the ring, which shows the gap. */
            n = (long)ring_copy(&s->ring, next, (uint8_t *)buf + got, max - got, &where);
        }
        if (n <= 0)
            break;
        if (first) {
            *at = where;
            first = false;
        } else if (where != next) {
            break;
        }
        got += (size_t)n;
        next = where + (uint64_t)n;
    }
    return got;
}
