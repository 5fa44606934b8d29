/*
 * trustd logging: a small log_warn/log_info/fatal family in the manner of
 * the OpenBSD daemons.  Messages go to syslog (as "level: message") or to
 * stderr in one of three formats:
 *
 *     text  2026-11-24T22:40:01Z trustd[1234]: warn: message
 *     kv    ts=2026-11-24T22:40:01.456Z level=warn pid=1234 msg="message"
 *     json  {"ts":"2026-11-24T22:40:01.456Z","level":"warn","pid":1234,
 *            "msg":"message"}                      (one line)
 *
 * log_fields() adds key=value fields after the message (kv, text and
 * syslog: key=value, the value quoted when it needs it; json: members).
 * Whatever the format, a byte below 0x20 or 0x7f in a message becomes
 * '?' first, so that request data cannot forge a line; in kv and json a
 * '"' or '\' inside a quoted value is escaped with a backslash, and json
 * replaces bytes that are not UTF-8 with '?'.
 *
 * The logger is process-global and not thread-safe to reconfigure;
 * log_init(), log_set_level() and log_set_format() are called from the
 * main thread only.  Writing is safe from any thread: one write() per
 * line.
 */

#ifndef ZT_LOG_H
#define ZT_LOG_H

#include <stddef.h>
#include <time.h>

#define LOG_LEVEL_DEBUG     0
#define LOG_LEVEL_INFO      1
#define LOG_LEVEL_WARN      2
#define LOG_LEVEL_ERROR     3

#define LOG_FORMAT_TEXT     0       /* the default until log_set_format() */
#define LOG_FORMAT_KV       1
#define LOG_FORMAT_JSON     2

#define LOG_MSG_MAX         2048    /* longer messages are truncated */
#define LOG_LINE_MAX        6144    /* a formatted line, with its fields */

/* An extra field of a log line; key is [a-z0-9_], value any text. */
typedef struct {
    const char  *key;
    const char  *value;
} log_field_t;

/*
 * Set up logging.  ident is kept by pointer (pass a string that lives for
 * the whole process).  to_syslog selects syslog (facility daemon) instead
 * of stderr; level is the lowest LOG_LEVEL_* that is written.
 */
void log_init(const char *ident, int to_syslog, int level);

/* Change the lowest level written. */
void log_set_level(int level);

/* The current lowest level written. */
int log_get_level(void);

/*
 * While start-up messages still have a terminal (a daemon that has not
 * yet closed its stdio), also copy warnings and errors to stderr when
 * logging to syslog.  log_init() turns this off.
 */
void log_set_startup_stderr(int on);

/* Parse "debug", "info", "warn" or "error"; returns the level or -1. */
int log_level_parse(const char *name);

/* The name of a level. */
const char *log_level_name(int level);

/*
 * Set the format of lines written to stderr (LOG_FORMAT_*); syslog always
 * gets the plain message.
 */
void log_set_format(int format);

/* Parse "text", "kv" or "json"; returns the LOG_FORMAT_* or -1. */
int log_format_parse(const char *name);

/* The name of a format. */
const char *log_format_name(int format);

/*
 * Format one stderr line into buf (size bytes, at least 128): when (wall
 * clock), pid, ident (text only), the level, msg (already free of control
 * characters, see above) and nfields fields.  The line always ends in
 * "\n" and is NUL-terminated.  What does not fit is left out, never the
 * line's frame, so a kv or json line stays parseable: the fields (whole)
 * when they cannot follow the line's start, else the end of the message
 * (at a character boundary).  Returns the length without the NUL.
 * Exposed for the unit tests.
 */
size_t log_format_line(char *buf, size_t size, int format, int level,
    const struct timespec *when, long pid, const char *ident,
    const char *msg, const log_field_t *fields, size_t nfields);

void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Log at level with nfields extra fields (see above). */
void log_fields(int level, const log_field_t *fields, size_t nfields,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/*
 * Log at error level and exit(1).  Only for start-up failures and broken
 * invariants; a request-path failure never calls it.
 */
void fatal(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));

#endif /* ZT_LOG_H */
