/*
 * trustd logging.  See log.h.
 */

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "log.h"


#define LOG_FIELDS_SIZE     1024    /* all fields of one line, formatted */

typedef struct {
    const char  *ident;
    int          to_syslog;
    int          level;
    int          format;
    int          startup_stderr;
    int          syslog_open;
} log_state_t;

/* A bounded output buffer: len never passes cap (which leaves the NUL). */
typedef struct {
    char        *p;
    size_t       len;
    size_t       cap;
} log_buf_t;


static void log_vwrite(int level, const log_field_t *fields,
    size_t nfields, const char *fmt, va_list ap);
static int log_put(log_buf_t *b, const char *s, size_t n);
static int log_puts(log_buf_t *b, const char *s);
static void log_put_escaped(log_buf_t *b, const char *s, int json,
    size_t reserve);
static size_t log_utf8_len(const unsigned char *s);
static void log_put_cut(log_buf_t *b, const char *s, size_t reserve);
static int log_bare(const char *s);
static void log_put_fields(log_buf_t *b, int format,
    const log_field_t *fields, size_t nfields);


static log_state_t  log_state = {
    "trustd", 0, LOG_LEVEL_INFO, LOG_FORMAT_TEXT, 0, 0
};


void
log_init(const char *ident, int to_syslog, int level)
{
    if (log_state.syslog_open) {
        closelog();
        log_state.syslog_open = 0;
    }

    log_state.ident = ident;
    log_state.to_syslog = to_syslog;
    log_state.level = level;
    log_state.startup_stderr = 0;

    if (to_syslog) {
        openlog(ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
        log_state.syslog_open = 1;
    }
}


void
log_set_level(int level)
{
    log_state.level = level;
}


int
log_get_level(void)
{
    return log_state.level;
}


void
log_set_startup_stderr(int on)
{
    log_state.startup_stderr = on;
}


void
log_set_format(int format)
{
    /* other threads read it while they log: no torn or stale-forever read */
    __atomic_store_n(&log_state.format, format, __ATOMIC_RELAXED);
}


int
log_format_parse(const char *name)
{
    if (strcmp(name, "text") == 0) {
        return LOG_FORMAT_TEXT;
    }

    if (strcmp(name, "kv") == 0) {
        return LOG_FORMAT_KV;
    }

    if (strcmp(name, "json") == 0) {
        return LOG_FORMAT_JSON;
    }

    return -1;
}


const char *
log_format_name(int format)
{
    switch (format) {
    case LOG_FORMAT_KV:   return "kv";
    case LOG_FORMAT_JSON: return "json";
    default:              return "text";
    }
}


int
log_level_parse(const char *name)
{
    if (strcmp(name, "debug") == 0) {
        return LOG_LEVEL_DEBUG;
    }

    if (strcmp(name, "info") == 0) {
        return LOG_LEVEL_INFO;
    }

    if (strcmp(name, "warn") == 0) {
        return LOG_LEVEL_WARN;
    }

    if (strcmp(name, "error") == 0) {
        return LOG_LEVEL_ERROR;
    }

    return -1;
}


const char *
log_level_name(int level)
{
    switch (level) {
    case LOG_LEVEL_DEBUG: return "debug";
    case LOG_LEVEL_INFO:  return "info";
    case LOG_LEVEL_WARN:  return "warn";
    default:              return "error";
    }
}


/* Append n bytes whole, or nothing (returns -1). */
static int
log_put(log_buf_t *b, const char *s, size_t n)
{
    if (n > b->cap - b->len) {
        return -1;
    }

    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';

    return 0;
}


static int
log_puts(log_buf_t *b, const char *s)
{
    return log_put(b, s, strlen(s));
}


/*
 * The length of the well-formed UTF-8 sequence at s (RFC 3629: no
 * overlong forms, no surrogates, nothing above U+10FFFF), or 0.
 */
static size_t
log_utf8_len(const unsigned char *s)
{
    size_t  n, i;

    if (s[0] < 0x80) {
        return 1;
    }

    if (s[0] >= 0xc2 && s[0] <= 0xdf) {
        n = 2;
    } else if (s[0] >= 0xe0 && s[0] <= 0xef) {
        n = 3;
    } else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
        n = 4;
    } else {
        return 0;
    }

    for (i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80) {
            return 0;
        }
    }

    if ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] > 0x9f)
        || (s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] > 0x8f))
    {
        return 0;
    }

    return n;
}


/*
 * Append s escaped for a double-quoted value: '"' and '\' get a
 * backslash, control characters become \n, \r, \t or \u00XX, and in json
 * a byte that does not start a well-formed UTF-8 sequence becomes '?'.
 * Stops, at a character boundary, where less than reserve bytes would be
 * left.
 */
static void
log_put_escaped(log_buf_t *b, const char *s, int json, size_t reserve)
{
    const unsigned char  *p;
    const char           *out;
    char                  esc[8];
    size_t                n, olen;

    for (p = (const unsigned char *) s; *p != '\0'; p += n) {
        n = 1;
        out = esc;

        if (*p == '"' || *p == '\\') {
            esc[0] = '\\';
            esc[1] = (char) *p;
            olen = 2;

        } else if (*p == '\n' || *p == '\r' || *p == '\t') {
            esc[0] = '\\';
            esc[1] = *p == '\n' ? 'n' : *p == '\r' ? 'r' : 't';
            olen = 2;

        } else if (*p < 0x20 || *p == 0x7f) {
            olen = (size_t) snprintf(esc, sizeof(esc), "\\u%04x",
                                     (unsigned) *p);

        } else if (*p < 0x80 || !json) {
            out = (const char *) p;
            olen = 1;

        } else {
            n = log_utf8_len(p);
            out = n > 0 ? (const char *) p : "?";
            olen = n > 0 ? n : 1;
            n = olen;
        }

        if (olen + reserve > b->cap - b->len) {
            return;
        }

        (void) log_put(b, out, olen);
    }
}


/* Append as much of s as leaves reserve bytes free. */
static void
log_put_cut(log_buf_t *b, const char *s, size_t reserve)
{
    size_t  room;

    room = b->cap - b->len;
    room = room > reserve ? room - reserve : 0;

    (void) log_put(b, s, strnlen(s, room));
}


/* 1 if s can be a kv value without quotes. */
static int
log_bare(const char *s)
{
    const unsigned char  *p;

    if (*s == '\0') {
        return 0;
    }

    for (p = (const unsigned char *) s; *p != '\0'; p++) {
        if (*p <= ' ' || *p == '=' || *p == '"' || *p == '\\' || *p == 0x7f)
        {
            return 0;
        }
    }

    return 1;
}


/*
 * The fields as they follow the message: " key=value" (quoted when the
 * value needs it) or, in json, ",\"key\":\"value\"".  A field that does
 * not fit whole is cut in its value, and the ones after it are left out.
 */
static void
log_put_fields(log_buf_t *b, int format, const log_field_t *fields,
    size_t nfields)
{
    size_t  i, mark;
    int     json, quote;

    json = format == LOG_FORMAT_JSON;

    for (i = 0; i < nfields; i++) {
        mark = b->len;
        quote = json || !log_bare(fields[i].value);

        if (log_puts(b, json ? ",\"" : " ") != 0
            || log_puts(b, fields[i].key) != 0
            || log_puts(b, json ? "\":" : "=") != 0
            || (quote && log_puts(b, "\"") != 0))
        {
            b->len = mark;
            b->p[mark] = '\0';
            return;
        }

        if (quote) {
            log_put_escaped(b, fields[i].value, json, 1);
            (void) log_puts(b, "\"");

        } else if (log_puts(b, fields[i].value) != 0) {
            b->len = mark;
            b->p[mark] = '\0';
            return;
        }
    }
}


size_t
log_format_line(char *buf, size_t size, int format, int level,
    const struct timespec *when, long pid, const char *ident,
    const char *msg, const log_field_t *fields, size_t nfields)
{
    char        stamp[40], head[160], fbuf[LOG_FIELDS_SIZE];
    log_buf_t   b, fb;
    struct tm   tm;
    time_t      sec;
    const char *quote, *end;
    size_t      frame;

    b.p = buf;
    b.len = 0;
    b.cap = size - 1;
    buf[0] = '\0';

    fb.p = fbuf;
    fb.len = 0;
    fb.cap = sizeof(fbuf) - 1;
    fbuf[0] = '\0';
    log_put_fields(&fb, format, fields, nfields);

    sec = when->tv_sec;
    gmtime_r(&sec, &tm);
    strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);

    switch (format) {
    case LOG_FORMAT_KV:
        snprintf(head, sizeof(head), "ts=%s.%03ldZ level=%s pid=%ld msg=\"",
                 stamp, when->tv_nsec / 1000000, log_level_name(level), pid);
        quote = "\"";
        end = "\n";
        break;

    case LOG_FORMAT_JSON:
        snprintf(head, sizeof(head),
                 "{\"ts\":\"%s.%03ldZ\",\"level\":\"%s\",\"pid\":%ld,"
                 "\"msg\":\"", stamp, when->tv_nsec / 1000000,
                 log_level_name(level), pid);
        quote = "\"";
        end = "}\n";
        break;

    default:
        snprintf(head, sizeof(head), "%sZ %.32s[%ld]: %s: ", stamp, ident,
                 pid, log_level_name(level));
        quote = "";
        end = "\n";
        break;
    }

    /* the frame always fits: the fields give way first, then the message */
    frame = strlen(quote) + strlen(end);

    if (strlen(head) + fb.len + frame > b.cap) {
        fb.len = 0;
        fbuf[0] = '\0';
    }

    (void) log_puts(&b, head);

    if (format == LOG_FORMAT_TEXT) {
        log_put_cut(&b, msg, fb.len + frame);
    } else {
        log_put_escaped(&b, msg, format == LOG_FORMAT_JSON, fb.len + frame);
    }

    (void) log_puts(&b, quote);
    (void) log_put(&b, fbuf, fb.len);
    (void) log_puts(&b, end);

    return b.len;
}


static void
log_vwrite(int level, const log_field_t *fields, size_t nfields,
    const char *fmt, va_list ap)
{
    static const int  prio[] = { LOG_DEBUG, LOG_INFO, LOG_WARNING, LOG_ERR };
    char              msg[LOG_MSG_MAX], line[LOG_LINE_MAX];
    struct timespec   now;
    log_buf_t         fb;
    size_t            n;
    int               to_stderr;
    char             *p;

    if (level < log_state.level) {
        return;
    }

    vsnprintf(msg, sizeof(msg), fmt, ap);

    /*
     * Messages quote request data (a decoded path may hold CR or LF):
     * one log line must never be able to forge another.
     */
    for (p = msg; *p; p++) {
        if ((unsigned char) *p < 0x20 || *p == 0x7f) {
            *p = '?';
        }
    }

    to_stderr = !log_state.to_syslog
                || (log_state.startup_stderr && level >= LOG_LEVEL_WARN);

    if (log_state.to_syslog) {
        /* syslog frames the line itself: the message, then any fields */
        fb.p = line;
        fb.len = 0;
        fb.cap = LOG_FIELDS_SIZE - 1;
        line[0] = '\0';
        log_put_fields(&fb, LOG_FORMAT_KV, fields, nfields);

        syslog(prio[level], "%s: %s%s", log_level_name(level), msg, line);
    }

    if (to_stderr) {
        clock_gettime(CLOCK_REALTIME, &now);

        n = log_format_line(line, sizeof(line),
                            __atomic_load_n(&log_state.format,
                                            __ATOMIC_RELAXED),
                            level, &now, (long) getpid(), log_state.ident,
                            msg, fields, nfields);

        /* one write per line, so concurrent writers do not interleave */
        if (write(STDERR_FILENO, line, n) < 0) {
            return;
        }
    }
}


void
log_fields(int level, const log_field_t *fields, size_t nfields,
    const char *fmt, ...)
{
    va_list  ap;

    va_start(ap, fmt);
    log_vwrite(level, fields, nfields, fmt, ap);
    va_end(ap);
}


void
log_debug(const char *fmt, ...)
{
    va_list  ap;

    va_start(ap, fmt);
    log_vwrite(LOG_LEVEL_DEBUG, NULL, 0, fmt, ap);
    va_end(ap);
}


void
log_info(const char *fmt, ...)
{
    va_list  ap;

    va_start(ap, fmt);
    log_vwrite(LOG_LEVEL_INFO, NULL, 0, fmt, ap);
    va_end(ap);
}


void
log_warn(const char *fmt, ...)
{
    va_list  ap;

    va_start(ap, fmt);
    log_vwrite(LOG_LEVEL_WARN, NULL, 0, fmt, ap);
    va_end(ap);
}


void
log_error(const char *fmt, ...)
{
    va_list  ap;

    va_start(ap, fmt);
    log_vwrite(LOG_LEVEL_ERROR, NULL, 0, fmt, ap);
    va_end(ap);
}


void
fatal(const char *fmt, ...)
{
    va_list  ap;

    va_start(ap, fmt);
    log_vwrite(LOG_LEVEL_ERROR, NULL, 0, fmt, ap);
    va_end(ap);

    exit(1);
}
