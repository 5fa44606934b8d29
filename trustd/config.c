/*
 * trustd configuration file parser.  See config.h.
 */

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "log.h"


#define CONFIG_LINE_MAX             8192
#define CONFIG_MAX_TTL_MS           3600000u    /* 1 h */
#define CONFIG_MAX_SHUTDOWN_MS      300000u     /* 5 min */
#define CONFIG_MIN_MAP_SIZE         ((size_t) 1024 * 1024)
#define CONFIG_MAX_CLIENTS          65536u

typedef struct config_parse_s  config_parse_t;

typedef int (*config_handler_pt)(config_parse_t *cp, const char *value);

typedef struct {
    const char          *name;
    config_handler_pt    handler;
    int                  repeatable;
    int                  required;
} config_keyword_t;

struct config_parse_s {
    const char      *file;
    unsigned         line;
    const char      *keyword;
    config_t        *cfg;
    config_err_t    *err;
};


static void config_error(config_parse_t *cp, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int config_parse_line(config_parse_t *cp, char *line, char **kw,
    char **value);
static int config_abs_path(config_parse_t *cp, const char *value, char *dst,
    size_t size);
static int config_set_listen(config_parse_t *cp, const char *value);
static int config_set_listen_mode(config_parse_t *cp, const char *value);
static int config_set_peer_user(config_parse_t *cp, const char *value);
static int config_set_store(config_parse_t *cp, const char *value);
static int config_set_store_map_size(config_parse_t *cp, const char *value);
static int config_set_log_level(config_parse_t *cp, const char *value);
static int config_set_log_target(config_parse_t *cp, const char *value);
static int config_set_pid_file(config_parse_t *cp, const char *value);
static int config_set_max_clients(config_parse_t *cp, const char *value);
static int config_set_allow_ttl(config_parse_t *cp, const char *value);
static int config_set_shutdown_timeout(config_parse_t *cp,
    const char *value);


static const config_keyword_t  config_keywords[] = {
    { "listen",           config_set_listen,           0, 1 },
    { "listen_mode",      config_set_listen_mode,      0, 0 },
    { "peer_user",        config_set_peer_user,        1, 1 },
    { "store",            config_set_store,            0, 1 },
    { "store_map_size",   config_set_store_map_size,   0, 0 },
    { "log_level",        config_set_log_level,        0, 0 },
    { "log_target",       config_set_log_target,       0, 0 },
    { "pid_file",         config_set_pid_file,         0, 0 },
    { "max_clients",      config_set_max_clients,      0, 0 },
    { "allow_ttl",        config_set_allow_ttl,        0, 0 },
    { "shutdown_timeout", config_set_shutdown_timeout, 0, 0 },
    { NULL, NULL, 0, 0 }
};


static void
config_error(config_parse_t *cp, const char *fmt, ...)
{
    va_list  ap;
    int      n;

    n = snprintf(cp->err->msg, sizeof(cp->err->msg), "%s:%u: ", cp->file,
                 cp->line);
    if (n < 0 || (size_t) n >= sizeof(cp->err->msg)) {
        return;
    }

    va_start(ap, fmt);
    vsnprintf(cp->err->msg + n, sizeof(cp->err->msg) - (size_t) n, fmt, ap);
    va_end(ap);
}


int
config_load(const char *path, config_t *cfg, config_err_t *err)
{
    config_parse_t   cp;
    FILE            *f;
    char             buf[CONFIG_LINE_MAX], *kw, *value;
    unsigned         seen[sizeof(config_keywords)
                          / sizeof(config_keywords[0])];
    size_t           i, len;
    int              rc, ret;

    memset(cfg, 0, sizeof(*cfg));
    memset(seen, 0, sizeof(seen));
    cfg->listen_mode = 0660;
    cfg->store_map_size = (size_t) 256 * 1024 * 1024;
    cfg->log_level = LOG_LEVEL_INFO;
    cfg->log_target = CONFIG_LOG_TARGET_DEFAULT;
    cfg->max_clients = 1024;
    cfg->allow_ttl_ms = 1000;
    cfg->shutdown_timeout_ms = 2000;

    cp.file = path;
    cp.line = 0;
    cp.keyword = NULL;
    cp.cfg = cfg;
    cp.err = err;

    f = fopen(path, "r");
    if (f == NULL) {
        snprintf(err->msg, sizeof(err->msg), "%s: %s", path,
                 strerror(errno));
        return -1;
    }

    ret = -1;

    while (fgets(buf, sizeof(buf), f) != NULL) {
        cp.line++;

        len = strlen(buf);
        if (len > 0 && buf[len - 1] == '\n') {
            buf[--len] = '\0';

        } else if (!feof(f)) {
            config_error(&cp, "line too long (more than %d bytes)",
                         CONFIG_LINE_MAX - 2);
            goto done;
        }

        rc = config_parse_line(&cp, buf, &kw, &value);
        if (rc < 0) {
            goto done;
        }

        if (rc == 0) {
            continue;
        }

        for (i = 0; config_keywords[i].name != NULL; i++) {
            if (strcmp(config_keywords[i].name, kw) == 0) {
                break;
            }
        }

        if (config_keywords[i].name == NULL) {
            config_error(&cp, "unknown keyword \"%s\"", kw);
            goto done;
        }

        if (seen[i] && !config_keywords[i].repeatable) {
            config_error(&cp, "keyword \"%s\" given twice (first on "
                         "line %u)", kw, seen[i]);
            goto done;
        }

        if (!seen[i]) {
            seen[i] = cp.line;
        }

        cp.keyword = kw;

        if (config_keywords[i].handler(&cp, value) != 0) {
            goto done;
        }
    }

    if (ferror(f)) {
        snprintf(err->msg, sizeof(err->msg), "%s: read error", path);
        goto done;
    }

    for (i = 0; config_keywords[i].name != NULL; i++) {
        if (config_keywords[i].required && !seen[i]) {
            snprintf(err->msg, sizeof(err->msg),
                     "%s: missing required keyword \"%s\"", path,
                     config_keywords[i].name);
            goto done;
        }
    }

    ret = 0;

done:

    fclose(f);

    return ret;
}


/*
 * Split a line into keyword and value.  Returns 1 with both set, 0 for a
 * blank or comment line, -1 on error (reported).
 */
static int
config_parse_line(config_parse_t *cp, char *line, char **kw, char **value)
{
    char  *p, *q;

    p = line;

    while (*p == ' ' || *p == '\t' || *p == '\r') {
        p++;
    }

    if (*p == '\0' || *p == '#') {
        return 0;
    }

    *kw = p;

    while (*p != '\0' && !isspace((unsigned char) *p) && *p != '#') {
        p++;
    }

    if (*p == '#' || *p == '\0') {
        *p = '\0';
        config_error(cp, "keyword \"%s\" needs a value", *kw);
        return -1;
    }

    *p++ = '\0';

    while (*p == ' ' || *p == '\t') {
        p++;
    }

    if (*p == '\0' || *p == '#' || *p == '\r') {
        config_error(cp, "keyword \"%s\" needs a value", *kw);
        return -1;
    }

    if (*p == '"') {
        *value = ++p;
        q = strchr(p, '"');
        if (q == NULL) {
            config_error(cp, "unterminated quoted value for \"%s\"", *kw);
            return -1;
        }

        *q = '\0';
        p = q + 1;

    } else {
        *value = p;

        while (*p != '\0' && !isspace((unsigned char) *p) && *p != '#') {
            p++;
        }

        if (*p == '#') {
            *p = '\0';
            return 1;
        }

        if (*p != '\0') {
            *p++ = '\0';
        }
    }

    while (*p == ' ' || *p == '\t' || *p == '\r') {
        p++;
    }

    if (*p != '\0' && *p != '#') {
        config_error(cp, "unexpected \"%s\" after the value of \"%s\"", p,
                     *kw);
        return -1;
    }

    return 1;
}


static int
config_abs_path(config_parse_t *cp, const char *value, char *dst,
    size_t size)
{
    if (value[0] != '/') {
        config_error(cp, "%s \"%s\": must be an absolute path", cp->keyword,
                     value);
        return -1;
    }

    if (strlen(value) >= size) {
        config_error(cp, "%s \"%s\": path too long (at most %zu bytes)",
                     cp->keyword, value, size - 1);
        return -1;
    }

    memcpy(dst, value, strlen(value) + 1);

    return 0;
}


static int
config_set_listen(config_parse_t *cp, const char *value)
{
    return config_abs_path(cp, value, cp->cfg->listen,
                           sizeof(cp->cfg->listen));
}


static int
config_set_listen_mode(config_parse_t *cp, const char *value)
{
    unsigned long   mode;
    char           *end;

    if (value[strspn(value, "01234567")] != '\0') {
        goto invalid;
    }

    errno = 0;
    mode = strtoul(value, &end, 8);
    if (errno != 0 || *end != '\0' || mode > 0777) {
        goto invalid;
    }

    cp->cfg->listen_mode = (mode_t) mode;

    return 0;

invalid:

    config_error(cp, "listen_mode \"%s\": expected an octal mode such as "
                 "0660", value);

    return -1;
}


static int
config_set_peer_user(config_parse_t *cp, const char *value)
{
    struct passwd   *pw;
    unsigned long    uid;
    char            *end;
    config_t        *cfg = cp->cfg;

    if (cfg->npeers == CONFIG_MAX_PEERS) {
        config_error(cp, "too many peer_user lines (at most %d)",
                     CONFIG_MAX_PEERS);
        return -1;
    }

    if (value[0] >= '0' && value[0] <= '9') {
        errno = 0;
        uid = strtoul(value, &end, 10);
        if (errno != 0 || *end != '\0' || uid >= (uid_t) -1) {
            config_error(cp, "peer_user \"%s\": invalid uid", value);
            return -1;
        }

        cfg->peer_uids[cfg->npeers++] = (uid_t) uid;

        return 0;
    }

    errno = 0;
    pw = getpwnam(value);
    if (pw == NULL) {
        config_error(cp, "peer_user \"%s\": unknown user", value);
        return -1;
    }

    cfg->peer_uids[cfg->npeers++] = pw->pw_uid;

    return 0;
}


static int
config_set_store(config_parse_t *cp, const char *value)
{
    return config_abs_path(cp, value, cp->cfg->store,
                           sizeof(cp->cfg->store));
}


static int
config_set_store_map_size(config_parse_t *cp, const char *value)
{
    size_t  size;

    if (config_parse_size(value, &size) != 0) {
        config_error(cp, "store_map_size \"%s\": expected a size such as "
                     "256M", value);
        return -1;
    }

    if (size < CONFIG_MIN_MAP_SIZE) {
        config_error(cp, "store_map_size \"%s\": at least 1M", value);
        return -1;
    }

    cp->cfg->store_map_size = size;

    return 0;
}


static int
config_set_log_level(config_parse_t *cp, const char *value)
{
    int  level;

    level = log_level_parse(value);
    if (level < 0) {
        config_error(cp, "log_level \"%s\": expected debug, info, warn "
                     "or error", value);
        return -1;
    }

    cp->cfg->log_level = level;

    return 0;
}


static int
config_set_log_target(config_parse_t *cp, const char *value)
{
    if (strcmp(value, "stderr") == 0) {
        cp->cfg->log_target = CONFIG_LOG_TARGET_STDERR;

    } else if (strcmp(value, "syslog") == 0) {
        cp->cfg->log_target = CONFIG_LOG_TARGET_SYSLOG;

    } else {
        config_error(cp, "log_target \"%s\": expected stderr or syslog",
                     value);
        return -1;
    }

    return 0;
}


static int
config_set_pid_file(config_parse_t *cp, const char *value)
{
    return config_abs_path(cp, value, cp->cfg->pid_file,
                           sizeof(cp->cfg->pid_file));
}


static int
config_set_max_clients(config_parse_t *cp, const char *value)
{
    unsigned long   n;
    char           *end;

    errno = 0;
    n = strtoul(value, &end, 10);
    if (value[0] < '0' || value[0] > '9' || errno != 0 || *end != '\0'
        || n < 1 || n > CONFIG_MAX_CLIENTS)
    {
        config_error(cp, "max_clients \"%s\": expected a number from 1 "
                     "to %u", value, CONFIG_MAX_CLIENTS);
        return -1;
    }

    cp->cfg->max_clients = (unsigned) n;

    return 0;
}


static int
config_set_allow_ttl(config_parse_t *cp, const char *value)
{
    if (config_parse_duration(value, CONFIG_MAX_TTL_MS,
                              &cp->cfg->allow_ttl_ms)
        != 0)
    {
        config_error(cp, "allow_ttl \"%s\": expected a duration such as "
                     "500ms or 1s, at most 3600s", value);
        return -1;
    }

    return 0;
}


static int
config_set_shutdown_timeout(config_parse_t *cp, const char *value)
{
    if (config_parse_duration(value, CONFIG_MAX_SHUTDOWN_MS,
                              &cp->cfg->shutdown_timeout_ms)
        != 0)
    {
        config_error(cp, "shutdown_timeout \"%s\": expected a duration "
                     "such as 500ms or 2s, at most 300s", value);
        return -1;
    }

    return 0;
}


int
config_parse_size(const char *s, size_t *out)
{
    unsigned long long   n;
    char                *end;
    size_t               mult;

    if (s[0] < '0' || s[0] > '9') {
        return -1;
    }

    errno = 0;
    n = strtoull(s, &end, 10);
    if (errno != 0) {
        return -1;
    }

    mult = 1;

    switch (*end) {
    case '\0':
        break;
    case 'k': case 'K':
        mult = 1024;
        end++;
        break;
    case 'm': case 'M':
        mult = (size_t) 1024 * 1024;
        end++;
        break;
    case 'g': case 'G':
        mult = (size_t) 1024 * 1024 * 1024;
        end++;
        break;
    default:
        return -1;
    }

    if (*end != '\0' || n > SIZE_MAX / mult) {
        return -1;
    }

    *out = (size_t) n * mult;

    return 0;
}


int
config_parse_duration(const char *s, uint32_t max_ms, uint32_t *ms)
{
    unsigned long long   n;
    char                *end;

    if (s[0] < '0' || s[0] > '9') {
        return -1;
    }

    errno = 0;
    n = strtoull(s, &end, 10);
    if (errno != 0 || n > UINT32_MAX) {
        return -1;
    }

    if (strcmp(end, "ms") == 0) {
        /* milliseconds already */

    } else if (strcmp(end, "s") == 0 || *end == '\0') {
        n *= 1000;

    } else {
        return -1;
    }

    if (n > max_ms) {
        return -1;
    }

    *ms = (uint32_t) n;

    return 0;
}


int
config_peer_allowed(const config_t *cfg, uid_t uid)
{
    size_t  i;

    for (i = 0; i < cfg->npeers; i++) {
        if (cfg->peer_uids[i] == uid) {
            return 1;
        }
    }

    return 0;
}
