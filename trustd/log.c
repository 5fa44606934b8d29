/*
 * trustd logging.  See log.h.
 */

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "log.h"


typedef struct {
    const char  *ident;
    int          to_syslog;
    int          level;
    int          startup_stderr;
    int          syslog_open;
} log_state_t;


static void log_vwrite(int level, const char *fmt, va_list ap);


static log_state_t  log_state = {
    "trustd", 0, LOG_LEVEL_INFO, 0, 0
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


static void
log_vwrite(int level, const char *fmt, va_list ap)
{
    static const int  prio[] = { LOG_DEBUG, LOG_INFO, LOG_WARNING, LOG_ERR };
    char              msg[2048], stamp[32], line[2200];
    struct tm         tm;
    time_t            now;
    int               to_stderr, n;
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
        syslog(prio[level], "%s: %s", log_level_name(level), msg);
    }

    if (to_stderr) {
        now = time(NULL);
        gmtime_r(&now, &tm);
        strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm);

        n = snprintf(line, sizeof(line), "%s %s[%ld]: %s: %s\n", stamp,
                     log_state.ident, (long) getpid(), log_level_name(level),
                     msg);
        if (n < 0) {
            return;
        }

        if ((size_t) n >= sizeof(line)) {
            n = sizeof(line) - 1;
            line[n - 1] = '\n';
        }

        /* one write per line, so concurrent writers do not interleave */
        if (write(STDERR_FILENO, line, (size_t) n) < 0) {
            return;
        }
    }
}


void
log_debug(const char *fmt, ...)
{
    va_list  ap;

    va_start(ap, fmt);
    log_vwrite(LOG_LEVEL_DEBUG, fmt, ap);
    va_end(ap);
}


void
log_info(const char *fmt, ...)
{
    va_list  ap;

    va_start(ap, fmt);
    log_vwrite(LOG_LEVEL_INFO, fmt, ap);
    va_end(ap);
}


void
log_warn(const char *fmt, ...)
{
    va_list  ap;

    va_start(ap, fmt);
    log_vwrite(LOG_LEVEL_WARN, fmt, ap);
    va_end(ap);
}


void
log_error(const char *fmt, ...)
{
    va_list  ap;

    va_start(ap, fmt);
    log_vwrite(LOG_LEVEL_ERROR, fmt, ap);
    va_end(ap);
}


void
fatal(const char *fmt, ...)
{
    va_list  ap;

    va_start(ap, fmt);
    log_vwrite(LOG_LEVEL_ERROR, fmt, ap);
    va_end(ap);

    exit(1);
}
