/*
 * libptc: the PTC1 wire protocol as pure functions over buffers.
 *
 * Frames: a 21-byte header (type, 16-byte session UUID, u32 LE length) and a payload. Decoding is
 * zero-copy: a decoded frame's payload points into the caller's buffer. msgpack payloads (REQUEST,
 * REPLY, STATE, EVENT) are built and parsed strictly, with limits on untrusted input; parsed strings
 * are views into the input and are not NUL-terminated. Nothing here does I/O, exits or aborts on
 * input. Functions return 0 (or a byte count) on success and a negative PTC_E* code on failure.
 */
#ifndef PTC_H
#define PTC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PTC_VERSION 1
#define PTC_HDR_LEN 21
#define PTC_MAX_FRAME_DEFAULT (1u << 20) /* 1 MiB: the server's default max payload */
#define PTC_CORE_MAX 0x3f                /* types 0x00-0x3f are core, 0x40-0xff extensions */

/* Frame types. */
enum ptc_type {
    PTC_OUTPUT = 0x01,  /* server->client: u64 offset, then PTY bytes */
    PTC_RESIZE = 0x02,  /* both: u16 cols, u16 rows */
    PTC_ACK = 0x03,     /* both: u64 count */
    PTC_STATE = 0x04,   /* server->client: msgpack map */
    PTC_INPUT = 0x05,   /* client->server: bytes for the PTY */
    PTC_REQUEST = 0x06, /* client->server: msgpack {id, op, ...args} */
    PTC_REPLY = 0x07,   /* server->client: msgpack {id, ok, ...} */
    PTC_EVENT = 0x08,   /* server->client: msgpack {event, ...} */
};

/* Error codes returned by libptc (all negative). */
enum ptc_err {
    PTC_OK = 0,
    PTC_EAGAIN = -1,    /* need more bytes: not an error in the input, only incomplete */
    PTC_ETOOBIG = -2,   /* declared length over max_frame (close 4413) */
    PTC_ECORE = -3,     /* unknown core type 0x00-0x3f (close 4400) */
    PTC_EPAYLOAD = -4,  /* payload has the wrong size/shape for its type */
    PTC_EMSGPACK = -5,  /* not valid msgpack, trailing bytes, or over the structural limits */
    PTC_ETYPE = -6,     /* a key has the wrong msgpack type or out-of-range value */
    PTC_EMISSING = -7,  /* a required key is missing */
    PTC_ELIMIT = -8,    /* a field is over its size limit */
    PTC_ENOMEM = -9,    /* allocation failed */
    PTC_ESPACE = -10,   /* output buffer too small */
    PTC_EINVAL = -11,   /* invalid argument (caller error, or unknown name) */
    PTC_EPROTO = -12,   /* REQUEST not a map with unsigned id: protocol error (close 4400) */
};

/* A human-readable name for a PTC_E* code. Never NULL. */
const char *ptc_strerror(int err);

/* ---- uuid.c ---------------------------------------------------------------------------------- */

typedef struct ptc_uuid {
    uint8_t b[16];
} ptc_uuid;

#define PTC_UUID_STRLEN 36 /* text form without the NUL */

/* Fills *u with a random RFC 4122 version 4 UUID (OpenSSL RAND_bytes). 0 or PTC_EINVAL on RNG failure. */
int ptc_uuid_random(ptc_uuid *u);
/* Writes the lowercase text form "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" and a NUL into out. */
void ptc_uuid_format(const ptc_uuid *u, char out[PTC_UUID_STRLEN + 1]);
/* Parses the 36-char text form (either case) from s[0..n). 0 or PTC_EINVAL. */
int ptc_uuid_parse(const char *s, size_t n, ptc_uuid *u);
/* True if all 16 bytes are zero (the connection itself). */
bool ptc_uuid_is_zero(const ptc_uuid *u);
bool ptc_uuid_eq(const ptc_uuid *a, const ptc_uuid *b);
/*
 * Decodes the n hex digits (either case) at s into out[0..n/2); s needs no NUL. 0, PTC_EINVAL when
 * n is odd or a character is not a hex digit, PTC_ESPACE when n/2 > cap (then out is untouched).
 * After PTC_EINVAL for a bad digit, the bytes before it may have been written.
 */
int ptc_hex_decode(const char *s, size_t n, uint8_t *out, size_t cap);

/* ---- buf (frame.c): a growable output buffer with headroom ----------------------------------- */

/* An output buffer. `head` bytes of headroom are kept in front of data (e.g. LWS_PRE). */
struct ptc_buf {
    uint8_t *mem;  /* allocation: mem[0..head) is headroom */
    uint8_t *data; /* == mem + head */
    size_t len;    /* bytes written at data */
    size_t cap;    /* usable capacity at data */
    size_t head;
};

void ptc_buf_init(struct ptc_buf *b, size_t headroom);
void ptc_buf_free(struct ptc_buf *b);
/* Empties the buffer, keeping its memory. */
void ptc_buf_reset(struct ptc_buf *b);
/* Ensures room for n more bytes and returns a pointer to them (len is not changed), NULL on ENOMEM. */
uint8_t *ptc_buf_reserve(struct ptc_buf *b, size_t n);
/* Appends n bytes. 0 or PTC_ENOMEM. */
int ptc_buf_append(struct ptc_buf *b, const void *p, size_t n);

/* ---- frame.c --------------------------------------------------------------------------------- */

/* A decoded frame: a view into the input. */
struct ptc_frame {
    uint8_t type;
    ptc_uuid session;
    uint32_t len;
    const uint8_t *payload; /* points into the decoded buffer; len bytes */
};

/* True for extension types (0x40-0xff), which a receiver that does not know them skips. */
static inline bool ptc_type_is_extension(uint8_t t) { return t > PTC_CORE_MAX; }
/* True for core types this version knows (0x01-0x08). */
bool ptc_type_is_known(uint8_t t);
/* "OUTPUT", "RESIZE", ...; "EXT" for extension types; "UNKNOWN" for unknown core types. */
const char *ptc_type_name(uint8_t t);
/* Looks a type up by its name. Returns the code or PTC_EINVAL. */
int ptc_type_from_name(const char *name);

/* Writes a 21-byte header into out. */
void ptc_header_encode(uint8_t out[PTC_HDR_LEN], uint8_t type, const ptc_uuid *session, uint32_t len);

/*
 * Decodes one frame from buf[0..n). Returns the number of bytes consumed (21 + length) and fills *f,
 * or: PTC_EAGAIN when the buffer holds less than one whole frame (including < 21 bytes),
 * PTC_ETOOBIG when the declared length exceeds max_frame (decided from the header alone),
 * PTC_ECORE for an unknown core type. Extension types decode normally; the caller skips them.
 * Does not validate the payload's shape (see ptc_*_parse below).
 */
long ptc_frame_decode(const uint8_t *buf, size_t n, uint32_t max_frame, struct ptc_frame *f);

/*
 * Checks the payload shape for the frame's type (OUTPUT >= 8 bytes, RESIZE == 4, ACK == 8, others
 * any length). 0 or PTC_EPAYLOAD. Extension types always pass.
 */
int ptc_frame_check(const struct ptc_frame *f);

/* Typed views of binary payloads. 0 or PTC_EPAYLOAD. */
int ptc_output_parse(const struct ptc_frame *f, uint64_t *offset, const uint8_t **data, size_t *n);
int ptc_resize_parse(const struct ptc_frame *f, uint16_t *cols, uint16_t *rows);
int ptc_ack_parse(const struct ptc_frame *f, uint64_t *count);

/* Appends a whole frame (header + payload) to b. 0 or PTC_ENOMEM / PTC_ETOOBIG (payload > UINT32_MAX). */
int ptc_frame_append(struct ptc_buf *b, uint8_t type, const ptc_uuid *session, const void *payload,
                     size_t n);
int ptc_output_append(struct ptc_buf *b, const ptc_uuid *session, uint64_t offset, const void *data,
                      size_t n);
int ptc_resize_append(struct ptc_buf *b, const ptc_uuid *session, uint16_t cols, uint16_t rows);
int ptc_ack_append(struct ptc_buf *b, const ptc_uuid *session, uint64_t count);

/*
 * Building a frame in place: ptc_frame_open appends a header with length 0 and returns its position
 * in b (or PTC_ENOMEM); append the payload (e.g. with a ptc_*_build function below); then
 * ptc_frame_close patches the length. 0 or PTC_ETOOBIG.
 */
long ptc_frame_open(struct ptc_buf *b, uint8_t type, const ptc_uuid *session);
int ptc_frame_close(struct ptc_buf *b, long mark);

/*
 * Incremental decoder for a byte stream (or WebSocket message chunks). Feed bytes as they arrive;
 * take frames out with ptc_stream_next. The length is checked against max_frame as soon as the
 * 21 header bytes are in, before any payload byte is buffered.
 */
struct ptc_stream {
    uint8_t *buf;
    size_t len, cap, pos;
    uint32_t max_frame;
    int err; /* sticky error once invalid */
};

void ptc_stream_init(struct ptc_stream *s, uint32_t max_frame);
void ptc_stream_free(struct ptc_stream *s);
/*
 * Adds n bytes. Consumes them all and returns 0, or returns a negative code (PTC_ETOOBIG,
 * PTC_ECORE, PTC_ENOMEM) as soon as the buffered header is invalid; the error is sticky.
 * Buffers at most one header plus max_frame bytes beyond frames not yet taken out.
 */
int ptc_stream_feed(struct ptc_stream *s, const void *p, size_t n);
/*
 * Takes the next whole frame out: returns 1 and fills *f (valid until the next feed/next call),
 * 0 when more bytes are needed, or the sticky negative error.
 */
int ptc_stream_next(struct ptc_stream *s, struct ptc_frame *f);
/* Bytes buffered that do not yet form a whole frame (0 at a message boundary means clean). */
size_t ptc_stream_pending(const struct ptc_stream *s);

/* ---- dump.c ---------------------------------------------------------------------------------- */

/*
 * Renders a frame as one readable line without a newline, e.g.
 * `OUTPUT session=1b4e28ba-... len=13 offset=0 data="hello\r\n"` or
 * `REQUEST session=0 len=20 {id: 1, op: "list"}`. Truncates long payloads with "...".
 * Writes at most cap bytes including the NUL; returns the length it would have written (snprintf).
 */
size_t ptc_frame_dump(const struct ptc_frame *f, char *out, size_t cap);

/* ---- keys.c ---------------------------------------------------------------------------------- */

/* A key name and the bytes an xterm sends for it (normal cursor mode). */
struct ptc_key {
    const char *name;
    const char *bytes;
    uint8_t len;
};

/*
 * Looks up a key name: `C-c`, `C-d` (any C-<letter>, C-@, C-[, C-\, C-], C-^, C-_, C-Space), `Enter`,
 * `Tab`, `Esc`, `Up`, `Down`, `Left`, `Right`, `Home`, `End`, `PgUp`, `PgDn`, `F1`-`F12`,
 * `Backspace`, `Delete`, `Space`, `Insert`. Names are matched case-insensitively. Returns 0 and the
 * bytes (static storage), or PTC_EINVAL.
 */
int ptc_key_lookup(const char *name, const char **bytes, size_t *n);
/* The static table of named keys (excluding the C-<x> family), NULL-name terminated. */
extern const struct ptc_key ptc_keys[];

/* ---- msg.c: msgpack messages ------------------------------------------------------------------ */

/* A view of a string or byte string inside a parsed message (not NUL-terminated). */
struct ptc_str {
    const char *p;
    size_t n;
};

/* Limits applied when parsing untrusted msgpack. */
struct ptc_limits {
    uint32_t max_depth;   /* nesting depth, default 8 */
    uint32_t max_items;   /* total elements of all arrays and maps, default 4096 */
    uint32_t max_str;     /* bytes of any one str/bin, default 65536 (read data: max_frame) */
    uint32_t max_argv;    /* entries in open.argv, default 256 */
    uint32_t max_env;     /* entries in open.env, default 256 */
    uint32_t max_arg_len; /* bytes of one argv/env entry, cwd, name, pattern, default 4096 */
};
/* Default limits. */
extern const struct ptc_limits ptc_limits_default;

/* ---- scan.c: structural pre-scan of untrusted msgpack ---------------------------------------- */

/*
 * Structural pre-scan of untrusted msgpack in buf[0..n): exactly one object, no trailing bytes,
 * depth, element counts (each container count must fit in the bytes remaining) and string sizes
 * within lim. Run before handing bytes to msgpack-c, whose unpacker would otherwise allocate from a
 * forged count. 0 or PTC_EMSGPACK / PTC_ELIMIT.
 */
int ptc_msg_scan(const uint8_t *buf, size_t n, const struct ptc_limits *lim);
/* As ptc_msg_scan, and on failure writes what is wrong ("token: string of ... bytes over the limit
 * of ...") into msg[0..cap) when msg is not NULL. */
int ptc_msg_scan_why(const uint8_t *buf, size_t n, const struct ptc_limits *lim, char *msg,
                     size_t cap);
/* Finds the unsigned `id` of a top-level map from the bytes alone, without limits (for a payload
 * the scan refused as over a limit). 0, PTC_EMSGPACK (not a map, or malformed before the id),
 * PTC_EMISSING or PTC_ETYPE. */
int ptc_msg_peek_id(const uint8_t *buf, size_t n, uint64_t *id);

/* ---- names.c: wire names of states, modes, codes and signals --------------------------------- */

/* The op names are the first column of msg.c's op table, so ptc_op_name and ptc_op_from_name live
 * in msg.c. */
enum ptc_op {
    PTC_OP_UNKNOWN = -1,
    PTC_OP_HELLO = 0,
    PTC_OP_OPEN,
    PTC_OP_LIST,
    PTC_OP_INFO,
    PTC_OP_ATTACH,
    PTC_OP_DETACH,
    PTC_OP_SIGNAL,
    PTC_OP_KILL,
    PTC_OP_REMOVE,
    PTC_OP_READ,
    PTC_OP_WAIT,
    PTC_OP_SUBSCRIBE,
    PTC_OP__COUNT
};
const char *ptc_op_name(int op); /* "hello", ...; "unknown" */
int ptc_op_from_name(const char *s, size_t n); /* PTC_OP_* or PTC_OP_UNKNOWN */

enum ptc_state {
    PTC_ST_STARTING = 0,
    PTC_ST_RUNNING,
    PTC_ST_SUSPENDED,
    PTC_ST_EXITED,
    PTC_ST_KILLED,
    PTC_ST_FAILED,
    PTC_ST_LOST,
    PTC_ST__COUNT
};
const char *ptc_state_name(int st);
int ptc_state_from_name(const char *s, size_t n); /* or PTC_EINVAL */
/* True for the states in which the program no longer runs. */
bool ptc_state_is_ended(int st);

enum ptc_attention { PTC_ATT_ACTIVE = 0, PTC_ATT_IDLE, PTC_ATT_ATTENTION, PTC_ATT__COUNT };
const char *ptc_attention_name(int a);
int ptc_attention_from_name(const char *s, size_t n);

enum ptc_mode { PTC_MODE_NONE = 0, PTC_MODE_INTERACTIVE, PTC_MODE_VIEW };
const char *ptc_mode_name(int m); /* "interactive", "view", "" */
int ptc_mode_from_name(const char *s, size_t n);
/* The `scope` of a hello reply: "control" (PTC_MODE_INTERACTIVE), "view", or "" for others. */
const char *ptc_scope_name(int m);
/* Looks a scope up by name: PTC_MODE_INTERACTIVE, PTC_MODE_VIEW or PTC_EINVAL. */
int ptc_scope_from_name(const char *s, size_t n);

enum ptc_until { PTC_UNTIL_EXIT = 0, PTC_UNTIL_IDLE, PTC_UNTIL_MATCH };
const char *ptc_until_name(int u);
int ptc_until_from_name(const char *s, size_t n);

/* Error codes carried in REPLY.error and EVENT error. */
enum ptc_code {
    PTC_C_BAD_REQUEST = 0,
    PTC_C_UNAUTHORIZED,
    PTC_C_FORBIDDEN,
    PTC_C_NO_SUCH_SESSION,
    PTC_C_NOT_ATTACHED,
    PTC_C_GONE,
    PTC_C_LIMIT,
    PTC_C_UNSUPPORTED_VERSION,
    PTC_C_INTERNAL,
    PTC_C__COUNT
};
const char *ptc_code_name(int c); /* "bad_request", ... */
int ptc_code_from_name(const char *s, size_t n);

/* Close codes. */
enum ptc_close {
    PTC_CLOSE_PROTOCOL = 4400,
    PTC_CLOSE_UNAUTHORIZED = 4401,
    PTC_CLOSE_SLOW = 4408,
    PTC_CLOSE_TOO_BIG = 4413,
    PTC_CLOSE_TOO_MANY = 4429,
    PTC_CLOSE_GOING_AWAY = 1001,
};

/* Signal names for the `signal` op and the `signal` field (without "SIG"). */
/* Returns the signal number for a name of the `signal` op's set (INT TERM HUP KILL STOP CONT WINCH
 * QUIT USR1 USR2), or PTC_EINVAL. */
int ptc_signal_from_name(const char *s, size_t n);
/* The name of any signal number ("TERM", "SEGV", ...); a decimal string for ones without a name. */
const char *ptc_signal_name(int signo, char tmp[16]);
/* The inverse of ptc_signal_name: any name it gives, or a decimal number, into *signo. 0 or
 * PTC_EINVAL. */
int ptc_signal_from_any_name(const char *s, size_t n, int *signo);

/* ---- msg.c: REQUEST, REPLY, STATE and EVENT -------------------------------------------------- */

/* Presence bits for optional fields of requests and infos (`has`). */
enum ptc_has {
    PTC_HAS_VERSION = 1u << 0,
    PTC_HAS_TOKEN = 1u << 1,
    PTC_HAS_CLIENT = 1u << 2,
    PTC_HAS_ARGV = 1u << 3,
    PTC_HAS_CWD = 1u << 4,
    PTC_HAS_ENV = 1u << 5,
    PTC_HAS_COLS = 1u << 6,
    PTC_HAS_ROWS = 1u << 7,
    PTC_HAS_NAME = 1u << 8,
    PTC_HAS_IDLE_TTL = 1u << 9,
    PTC_HAS_ATTACH = 1u << 10,
    PTC_HAS_OFFSET = 1u << 11,
    PTC_HAS_MODE = 1u << 12,
    PTC_HAS_WINDOW = 1u << 13,
    PTC_HAS_SIGNAL = 1u << 14,
    PTC_HAS_GRACE = 1u << 15,
    PTC_HAS_MAX = 1u << 16,
    PTC_HAS_UNTIL = 1u << 17,
    PTC_HAS_IDLE_MS = 1u << 18,
    PTC_HAS_PATTERN = 1u << 19,
    PTC_HAS_TIMEOUT = 1u << 20,
    PTC_HAS_EXIT_CODE = 1u << 21, /* info/state: exit_code not nil */
    PTC_HAS_SIGNO = 1u << 22,     /* info/state: signal not nil */
    PTC_HAS_PID = 1u << 23,
};

/*
 * A REQUEST. Parsed: strings are views into the input; argv/env arrays are allocated and released
 * by ptc_request_free. Built: fill the fields and set `has` for the optional ones present.
 * Defaults when absent (applied by the parser into the fields, `has` still says what was sent):
 * version 0, cols 80, rows 24, idle_ttl_s 0, grace_ms 5000, max 65536, idle_ms 2000, timeout_ms 0.
 */
struct ptc_request {
    uint64_t id;
    int op; /* enum ptc_op */
    uint32_t has;
    /* hello */
    uint64_t version;
    struct ptc_str token, client;
    /* open */
    struct ptc_str *argv;
    uint32_t argc;
    struct ptc_str cwd;
    struct ptc_str *env_keys, *env_vals;
    uint32_t envc;
    uint16_t cols, rows;
    struct ptc_str name;
    uint64_t idle_ttl_s;
    int attach; /* enum ptc_mode; open's attach */
    /* attach */
    uint64_t offset;
    int mode; /* enum ptc_mode */
    uint64_t window;
    /* signal */
    struct ptc_str signal;
    /* kill */
    uint64_t grace_ms;
    /* read */
    uint64_t max;
    /* wait */
    int until; /* enum ptc_until */
    uint64_t idle_ms;
    struct ptc_str pattern;
    uint64_t timeout_ms;
};

/* Parse error detail: which key and what is wrong, for a failed REPLY's message. */
struct ptc_perr {
    bool have_id; /* the id could be read: a bad_request reply can be sent */
    uint64_t id;
    char message[160];
};

/*
 * Parses a REQUEST payload. Returns 0; or PTC_EPROTO when the payload is not a msgpack map with an
 * unsigned `id` (close 4400); or another negative code (bad args, unknown op: op == PTC_OP_UNKNOWN)
 * with err->have_id set and err->message saying what is wrong (reply bad_request). Unknown keys
 * are ignored. On any return, call ptc_request_free.
 */
int ptc_request_parse(const uint8_t *buf, size_t n, const struct ptc_limits *lim,
                      struct ptc_request *r, struct ptc_perr *err);
void ptc_request_free(struct ptc_request *r);
/* Appends the msgpack map of r (id, op, and the args of its op flagged in `has`). */
int ptc_request_build(struct ptc_buf *b, const struct ptc_request *r);

/*
 * Session info. For building, strings are views the caller keeps alive (NUL not needed).
 * For parsing, views into the input and argv allocated (see ptc_info_free).
 */
struct ptc_info {
    ptc_uuid id;
    struct ptc_str name;
    struct ptc_str *argv;
    uint32_t argc;
    struct ptc_str cwd;
    uint32_t has; /* PTC_HAS_EXIT_CODE, PTC_HAS_SIGNO, PTC_HAS_PID */
    uint64_t pid;
    int state;     /* enum ptc_state */
    int exit_code; /* valid with PTC_HAS_EXIT_CODE */
    int signo;     /* valid with PTC_HAS_SIGNO */
    uint16_t cols, rows;
    uint64_t created_ms, updated_ms;
    uint64_t start, end;
    uint32_t clients;
    int attention; /* enum ptc_attention */
};
void ptc_info_free(struct ptc_info *i);

/* A REPLY. `op` selects which result fields are built/parsed; it is not on the wire. */
struct ptc_reply {
    uint64_t id;
    int op; /* enum ptc_op the reply answers; PTC_OP_UNKNOWN for generic */
    bool ok;
    int error;               /* enum ptc_code when !ok */
    struct ptc_str message;  /* when !ok */
    /* hello */
    struct ptc_str server;
    uint64_t version;
    uint64_t max_frame;
    int scope; /* PTC_MODE_INTERACTIVE = "control", PTC_MODE_VIEW = "view" */
    /* open */
    ptc_uuid session;
    uint64_t pid;
    int state;
    /* list */
    struct ptc_info *sessions;
    uint32_t nsessions;
    /* info */
    struct ptc_info info;
    /* attach */
    uint64_t start, end;
    uint16_t cols, rows;
    /* read */
    struct ptc_str data;
    uint64_t offset, next;
    bool truncated;
    /* wait */
    bool matched;
};
/* Appends the msgpack map of a reply: {id, ok:true, ...results of op} or {id, ok:false, error, message}. */
int ptc_reply_build(struct ptc_buf *b, const struct ptc_reply *r);
/*
 * Parses a REPLY payload; rp->op must be set by the caller (from its own id->op map) to parse the
 * results of that op. Returns 0 or a negative code with err->message set. Call ptc_reply_free.
 */
int ptc_reply_parse(const uint8_t *buf, size_t n, const struct ptc_limits *lim, struct ptc_reply *rp,
                    struct ptc_perr *err);
/* Reads only the `id` of a REPLY payload, so a client can look up the op first. 0 or negative. */
int ptc_reply_peek_id(const uint8_t *buf, size_t n, uint64_t *id);
void ptc_reply_free(struct ptc_reply *r);

/* STATE: {state, exit_code, signal, attention, end}. */
struct ptc_statemsg {
    int state;
    uint32_t has; /* PTC_HAS_EXIT_CODE, PTC_HAS_SIGNO */
    int exit_code;
    int signo;
    int attention;
    uint64_t end;
};
int ptc_state_build(struct ptc_buf *b, const struct ptc_statemsg *s);
int ptc_state_parse(const uint8_t *buf, size_t n, struct ptc_statemsg *s, struct ptc_perr *err);

/* EVENT: `session` {event, info, removed?} or `error` {event, error, message, type}. */
enum ptc_event_kind { PTC_EV_UNKNOWN = 0, PTC_EV_SESSION, PTC_EV_ERROR };
struct ptc_event {
    int kind;
    struct ptc_str name; /* the event string as sent (for unknown kinds) */
    /* session */
    struct ptc_info info;
    bool removed;
    /* error */
    int error; /* enum ptc_code */
    struct ptc_str message;
    uint8_t type; /* the frame type refused */
};
int ptc_event_build(struct ptc_buf *b, const struct ptc_event *e);
int ptc_event_parse(const uint8_t *buf, size_t n, const struct ptc_limits *lim, struct ptc_event *e,
                    struct ptc_perr *err);
void ptc_event_free(struct ptc_event *e);

/* ---- names.c: string views ------------------------------------------------------------------- */

/* A ptc_str from a C string (NULL gives an empty view). */
static inline struct ptc_str ptc_str_c(const char *s)
{
    struct ptc_str v = {s, 0};
    if (s)
        while (s[v.n])
            v.n++;
    return v;
}
/* True if the view equals the C string. */
bool ptc_str_eq(struct ptc_str v, const char *s);
/* Copies a view into a new NUL-terminated string (malloc), NULL on ENOMEM. */
char *ptc_str_dup(struct ptc_str v);
/* Copies at most 40 bytes of s[0..n) into out as printable ASCII ('?' for any other byte), then
 * "..." when cut, and a NUL: for quoting peer input in a message. */
void ptc_str_printable(char out[44], const char *s, size_t n);

/* ---- ansi.c: terminal output as plain text --------------------------------------------------- */

/* A streaming ANSI escape stripper: state kept across chunks. Zero-initialise it. */
struct ptc_ansi {
    int st;
};
/*
 * Writes the printable text of in[0..n) to out and returns its length (at most n): escape
 * sequences (CSI, OSC/DCS/APC/PM/SOS, charset selections, two-byte ESC) are dropped, as are CR
 * and C0 controls other than newline and tab. out may be in itself (in-place).
 */
size_t ptc_ansi_strip(struct ptc_ansi *a, const uint8_t *in, size_t n, uint8_t *out);

#endif
