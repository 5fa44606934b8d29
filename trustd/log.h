/*
 * trustd logging: a small log_warn/log_info/fatal family in the manner of
 * the OpenBSD daemons.  Messages go to syslog or to stderr as
 *
 *     2026-11-24T22:40:01Z trustd[1234]: warn: message
 *
 * The logger is process-global and not thread-safe to reconfigure;
 * log_init() and log_set_level() are called from the main thread only.
 */

#ifndef ZT_LOG_H
#define ZT_LOG_H

#define LOG_LEVEL_DEBUG     0
#define LOG_LEVEL_INFO      1
#define LOG_LEVEL_WARN      2
#define LOG_LEVEL_ERROR     3

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

void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * Log at error level and exit(1).  Only for start-up failures and broken
 * invariants; a request-path failure never calls it.
 */
void fatal(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));

#endif /* ZT_LOG_H */
