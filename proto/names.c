/*
 * names.c: the wire names of libptc's enums and the helpers for string views.
 *
 * It owns the tables that map states, attention levels, modes, hello scopes, wait conditions,
 * error codes and signals to the names PTC1 puts on the wire, and back (op names live with the op
 * table in msg.c); and the small helpers over struct ptc_str (compare, copy, quote for a message).
 * Lookups take a (pointer, length) view, since parsed strings are not NUL-terminated. Nothing here
 * allocates except ptc_str_dup.
 */
#include "ptc.h"

#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- name tables ----------------------------------------------------------------------------- */

static int name_find(const char *const *tab, int count, const char *s, size_t n)
{
    if (!s && n)
        return PTC_EINVAL;
    for (int i = 0; i < count; i++)
        if (tab[i] && strlen(tab[i]) == n && memcmp(tab[i], s, n) == 0)
            return i;
    return PTC_EINVAL;
}

static const char *const state_names[PTC_ST__COUNT] = {
    "starting", "running", "suspended", "exited", "killed", "failed", "lost",
};
static const char *const attention_names[PTC_ATT__COUNT] = {"active", "idle", "attention"};
static const char *const mode_names[] = {NULL, "interactive", "view"};
static const char *const until_names[] = {"exit", "idle", "match"};
static const char *const code_names[PTC_C__COUNT] = {
    "bad_request", "unauthorized", "forbidden",           "no_such_session", "not_attached",
    "gone",        "limit",        "unsupported_version", "internal",
};
/* The `scope` of a hello reply, indexed by enum ptc_mode. */
static const char *const scope_names[] = {NULL, "control", "view"};

/* The name of a state, or "unknown". */
const char *ptc_state_name(int st)
{
    return st >= 0 && st < PTC_ST__COUNT ? state_names[st] : "unknown";
}

/* Looks a state up by name: PTC_ST_* or PTC_EINVAL. */
int ptc_state_from_name(const char *s, size_t n)
{
    return name_find(state_names, PTC_ST__COUNT, s, n);
}

/* True for exited, killed, failed and lost. */
bool ptc_state_is_ended(int st)
{
    return st == PTC_ST_EXITED || st == PTC_ST_KILLED || st == PTC_ST_FAILED || st == PTC_ST_LOST;
}

/* The name of an attention level, or "unknown". */
const char *ptc_attention_name(int a)
{
    return a >= 0 && a < PTC_ATT__COUNT ? attention_names[a] : "unknown";
}

/* Looks an attention level up by name: PTC_ATT_* or PTC_EINVAL. */
int ptc_attention_from_name(const char *s, size_t n)
{
    return name_find(attention_names, PTC_ATT__COUNT, s, n);
}

/* "interactive", "view", or "" for PTC_MODE_NONE and anything else. */
const char *ptc_mode_name(int m)
{
    return m == PTC_MODE_INTERACTIVE || m == PTC_MODE_VIEW ? mode_names[m] : "";
}

/* Looks a mode up by name: PTC_MODE_INTERACTIVE, PTC_MODE_VIEW or PTC_EINVAL. */
int ptc_mode_from_name(const char *s, size_t n)
{
    return name_find(mode_names, 3, s, n);
}

/* The name of a wait condition, or "unknown". */
const char *ptc_until_name(int u)
{
    return u >= 0 && u < 3 ? until_names[u] : "unknown";
}

/* Looks a wait condition up by name: PTC_UNTIL_* or PTC_EINVAL. */
int ptc_until_from_name(const char *s, size_t n)
{
    return name_find(until_names, 3, s, n);
}

/* The wire name of an error code, or "internal" for a value out of range. */
const char *ptc_code_name(int c)
{
    return c >= 0 && c < PTC_C__COUNT ? code_names[c] : "internal";
}

/* Looks an error code up by name: PTC_C_* or PTC_EINVAL. */
int ptc_code_from_name(const char *s, size_t n)
{
    return name_find(code_names, PTC_C__COUNT, s, n);
}

/* "control", "view", or "" for PTC_MODE_NONE and anything else. */
const char *ptc_scope_name(int m)
{
    return m == PTC_MODE_INTERACTIVE || m == PTC_MODE_VIEW ? scope_names[m] : "";
}

/* Looks a hello scope up by name: PTC_MODE_INTERACTIVE, PTC_MODE_VIEW or PTC_EINVAL. */
int ptc_scope_from_name(const char *s, size_t n)
{
    return name_find(scope_names, 3, s, n);
}

/* ---- signals --------------------------------------------------------------------------------- */

struct signame {
    int signo;
    const char *name;
    bool op; /* accepted by the `signal` op */
};

static const struct signame signames[] = {
    {SIGHUP, "HUP", true},        {SIGINT, "INT", true},    {SIGQUIT, "QUIT", true},
    {SIGILL, "ILL", false},       {SIGTRAP, "TRAP", false}, {SIGABRT, "ABRT", false},
    {SIGBUS, "BUS", false},       {SIGFPE, "FPE", false},   {SIGKILL, "KILL", true},
    {SIGUSR1, "USR1", true},      {SIGSEGV, "SEGV", false}, {SIGUSR2, "USR2", true},
    {SIGPIPE, "PIPE", false},     {SIGALRM, "ALRM", false}, {SIGTERM, "TERM", true},
#ifdef SIGSTKFLT
    {SIGSTKFLT, "STKFLT", false},
#endif
    {SIGCHLD, "CHLD", false},     {SIGCONT, "CONT", true},  {SIGSTOP, "STOP", true},
    {SIGTSTP, "TSTP", false},     {SIGTTIN, "TTIN", false}, {SIGTTOU, "TTOU", false},
    {SIGURG, "URG", false},       {SIGXCPU, "XCPU", false}, {SIGXFSZ, "XFSZ", false},
    {SIGVTALRM, "VTALRM", false}, {SIGPROF, "PROF", false}, {SIGWINCH, "WINCH", true},
#ifdef SIGIO
    {SIGIO, "IO", false},
#endif
#ifdef SIGPWR
    {SIGPWR, "PWR", false},
#endif
    {SIGSYS, "SYS", false},
};
#define NSIGNAMES (sizeof(signames) / sizeof(signames[0]))

static const struct signame *signame_find(const char *s, size_t n)
{
    if (!s)
        return NULL;
    for (size_t i = 0; i < NSIGNAMES; i++)
        if (strlen(signames[i].name) == n && memcmp(signames[i].name, s, n) == 0)
            return &signames[i];
    return NULL;
}

/* Signal number for a name of the `signal` op's set, or PTC_EINVAL. */
int ptc_signal_from_name(const char *s, size_t n)
{
    const struct signame *sn = signame_find(s, n);
    return sn && sn->op ? sn->signo : PTC_EINVAL;
}

/* The name of any signal number, or its decimal form in tmp when it has none. */
const char *ptc_signal_name(int signo, char tmp[16])
{
    for (size_t i = 0; i < NSIGNAMES; i++)
        if (signames[i].signo == signo)
            return signames[i].name;
    if (!tmp)
        return "?";
    snprintf(tmp, 16, "%d", signo);
    return tmp;
}

/* The inverse of ptc_signal_name: any name of the table or a decimal number. 0 or PTC_EINVAL. */
int ptc_signal_from_any_name(const char *s, size_t n, int *signo)
{
    const struct signame *sn = signame_find(s, n);
    if (sn) {
        *signo = sn->signo;
        return 0;
    }
    size_t i = 0;
    bool neg = false;
    if (n > 0 && s[0] == '-') {
        neg = true;
        i = 1;
    }
    if (i == n || n - i > 10)
        return PTC_EINVAL;
    long long v = 0;
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return PTC_EINVAL;
        v = v * 10 + (s[i] - '0');
    }
    if (neg)
        v = -v;
    if (v < INT_MIN || v > INT_MAX)
        return PTC_EINVAL;
    *signo = (int)v;
    return 0;
}

/* ---- string views ---------------------------------------------------------------------------- */

/* True if the view equals the C string (a NULL string equals the empty view). */
bool ptc_str_eq(struct ptc_str v, const char *s)
{
    size_t n = s ? strlen(s) : 0;
    return v.n == n && (n == 0 || memcmp(v.p, s, n) == 0);
}

/* A malloc'd NUL-terminated copy of the view. */
char *ptc_str_dup(struct ptc_str v)
{
    char *s = malloc(v.n + 1);
    if (!s)
        return NULL;
    if (v.n)
        memcpy(s, v.p, v.n);
    s[v.n] = '\0';
    return s;
}

/* Copies at most 40 bytes of s into out as printable ASCII ('?' for anything else). */
void ptc_str_printable(char out[44], const char *s, size_t n)
{
    size_t k = n > 40 ? 40 : n;
    for (size_t i = 0; i < k; i++)
        out[i] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
    if (n > k) {
        memcpy(out + k, "...", 3);
        k += 3;
    }
    out[k] = '\0';
}
