/*
 * trustd configuration file parser.  See config.h.
 */

#include <ctype.h>
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blocklist.h"
#include "config.h"
#include "journal.h"
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
static int config_set_log_format(config_parse_t *cp, const char *value);
static int config_set_metrics_listen(config_parse_t *cp, const char *value);
static int config_set_metrics_interval(config_parse_t *cp,
    const char *value);
static int config_set_pid_file(config_parse_t *cp, const char *value);
static int config_set_max_clients(config_parse_t *cp, const char *value);
static int config_set_allow_ttl(config_parse_t *cp, const char *value);
static int config_set_shutdown_timeout(config_parse_t *cp,
    const char *value);
static int config_parse_uid(config_parse_t *cp, const char *value,
    uid_t *uids, size_t *n);
static int config_set_policy(config_parse_t *cp, const char *value);
static int config_set_portal_url(config_parse_t *cp, const char *value);
static int config_set_admin_listen(config_parse_t *cp, const char *value);
static int config_set_admin_user(config_parse_t *cp, const char *value);
static int config_duration(config_parse_t *cp, const char *value,
    uint32_t min_ms, uint32_t max_ms, uint32_t *dst);
static int config_number(config_parse_t *cp, const char *value,
    unsigned min, unsigned max, unsigned *dst);
static int config_set_identity_keys(config_parse_t *cp, const char *value);
static int config_set_token_alg(config_parse_t *cp, const char *value);
static int config_set_key_grace(config_parse_t *cp, const char *value);
static int config_set_session_lifetime(config_parse_t *cp,
    const char *value);
static int config_set_session_idle(config_parse_t *cp, const char *value);
static int config_set_totp_window(config_parse_t *cp, const char *value);
static int config_set_lockout_threshold(config_parse_t *cp,
    const char *value);
static int config_set_lockout_time(config_parse_t *cp, const char *value);
static int config_set_source_limit(config_parse_t *cp, const char *value);
static int config_set_portal_listen(config_parse_t *cp, const char *value);
static int config_set_portal_host(config_parse_t *cp, const char *value);
static int config_set_webauthn_rp_id(config_parse_t *cp, const char *value);
static int config_set_webauthn_origin(config_parse_t *cp,
    const char *value);
static int config_set_webauthn_uv(config_parse_t *cp, const char *value);
static int config_set_assertion_ttl(config_parse_t *cp, const char *value);
static int config_set_posture_max_age(config_parse_t *cp,
    const char *value);
static int config_set_trust_base(config_parse_t *cp, const char *value);
static int config_set_trust_weight(config_parse_t *cp, const char *value);
static int config_set_behaviour_window(config_parse_t *cp,
    const char *value);
static int config_set_trusted_network(config_parse_t *cp,
    const char *value);
static int config_set_blocklist(config_parse_t *cp, const char *value);
static int config_multiword(const char *kw);
static int config_set_journal_flush(config_parse_t *cp, const char *value);
static int config_set_device_cache(config_parse_t *cp, const char *value);
static int config_set_cluster(config_parse_t *cp, const char *value);
static int config_set_cluster_database(config_parse_t *cp,
    const char *value);
static int config_set_cluster_node(config_parse_t *cp, const char *value);
static int config_set_cluster_staleness(config_parse_t *cp,
    const char *value);
static int config_set_cluster_poll(config_parse_t *cp, const char *value);
static int config_set_cluster_timeout(config_parse_t *cp,
    const char *value);
static int config_set_cluster_retention(config_parse_t *cp,
    const char *value);
static int config_set_journal_queue(config_parse_t *cp, const char *value);
static int config_set_journal_retention(config_parse_t *cp,
    const char *value);
static int config_set_journal_failure(config_parse_t *cp,
    const char *value);


static const config_keyword_t  config_keywords[] = {
    { "listen",           config_set_listen,           0, 1 },
    { "listen_mode",      config_set_listen_mode,      0, 0 },
    { "peer_user",        config_set_peer_user,        1, 1 },
    { "store",            config_set_store,            0, 1 },
    { "store_map_size",   config_set_store_map_size,   0, 0 },
    { "log_level",        config_set_log_level,        0, 0 },
    { "log_target",       config_set_log_target,       0, 0 },
    { "log_format",       config_set_log_format,       0, 0 },
    { "metrics_listen",   config_set_metrics_listen,   0, 0 },
    { "metrics_interval", config_set_metrics_interval, 0, 0 },
    { "pid_file",         config_set_pid_file,         0, 0 },
    { "max_clients",      config_set_max_clients,      0, 0 },
    { "allow_ttl",        config_set_allow_ttl,        0, 0 },
    { "shutdown_timeout", config_set_shutdown_timeout, 0, 0 },
    { "policy",           config_set_policy,           0, 0 },
    { "portal_url",       config_set_portal_url,       0, 0 },
    { "admin_listen",     config_set_admin_listen,     0, 0 },
    { "admin_user",       config_set_admin_user,       1, 0 },
    { "identity_keys",    config_set_identity_keys,    0, 0 },
    { "token_alg",        config_set_token_alg,        0, 0 },
    { "key_grace",        config_set_key_grace,        0, 0 },
    { "session_lifetime", config_set_session_lifetime, 0, 0 },
    { "session_idle",     config_set_session_idle,     0, 0 },
    { "totp_window",      config_set_totp_window,      0, 0 },
    { "lockout_threshold", config_set_lockout_threshold, 0, 0 },
    { "lockout_time",     config_set_lockout_time,     0, 0 },
    { "source_limit",     config_set_source_limit,     0, 0 },
    { "portal_listen",    config_set_portal_listen,    0, 0 },
    { "portal_host",      config_set_portal_host,      1, 0 },
    { "webauthn_rp_id",   config_set_webauthn_rp_id,   0, 0 },
    { "webauthn_origin",  config_set_webauthn_origin,  1, 0 },
    { "webauthn_user_verification", config_set_webauthn_uv, 0, 0 },
    { "assertion_ttl",    config_set_assertion_ttl,    0, 0 },
    { "posture_max_age",  config_set_posture_max_age,  0, 0 },
    { "trust_base",       config_set_trust_base,       0, 0 },
    { "trust_weight",     config_set_trust_weight,     1, 0 },
    { "behaviour_window", config_set_behaviour_window, 0, 0 },
    { "trusted_network",  config_set_trusted_network,  1, 0 },
    { "blocklist",        config_set_blocklist,        1, 0 },
    { "journal_flush_interval", config_set_journal_flush, 0, 0 },
    { "journal_queue",    config_set_journal_queue,    0, 0 },
    { "journal_retention", config_set_journal_retention, 0, 0 },
    { "journal_failure",  config_set_journal_failure,  0, 0 },
    { "device_cache",     config_set_device_cache,     0, 0 },
    { "cluster",          config_set_cluster,          0, 0 },
    { "cluster_database", config_set_cluster_database, 0, 0 },
    { "cluster_node",     config_set_cluster_node,     0, 0 },
    { "cluster_max_staleness", config_set_cluster_staleness, 0, 0 },
    { "cluster_poll_interval", config_set_cluster_poll, 0, 0 },
    { "cluster_timeout",  config_set_cluster_timeout,  0, 0 },
    { "cluster_changes_retention", config_set_cluster_retention, 0, 0 },
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
    cfg->log_format = LOG_FORMAT_KV;
    cfg->metrics_interval_ms = CONFIG_METRICS_INTERVAL_MS;
    cfg->max_clients = 1024;
    cfg->allow_ttl_ms = 1000;
    cfg->key_grace_ms = 24u * 3600 * 1000;
    cfg->session_lifetime_ms = 8u * 3600 * 1000;
    cfg->session_idle_ms = 3600u * 1000;
    cfg->totp_window = 1;
    cfg->webauthn_uv = 1;
    cfg->lockout_threshold = 5;
    cfg->lockout_time_ms = 15u * 60 * 1000;
    cfg->source_limit = 20;
    cfg->assertion_ttl_ms = 60u * 1000;
    cfg->posture_max_age_ms = 24u * 3600 * 1000;
    score_weights_default(&cfg->trust);
    cfg->behaviour_window_ms = 600u * 1000;
    cfg->journal_flush_ms = JOURNAL_DEFAULT_FLUSH_MS;
    cfg->journal_queue = JOURNAL_DEFAULT_QUEUE;
    cfg->journal_retention_ms = JOURNAL_DEFAULT_RETENTION;
    cfg->journal_fail_open = 0;
    cfg->device_cache = CONFIG_DEVICE_CACHE;
    cfg->cluster_max_staleness_ms = CONFIG_CLUSTER_STALENESS_MS;
    cfg->cluster_poll_ms = 1000;
    cfg->cluster_timeout_ms = 5000;
    cfg->cluster_retention_ms = 7u * 86400 * 1000;
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

    if (cfg->cluster && cfg->cluster_database[0] == '\0') {
        snprintf(err->msg, sizeof(err->msg), "%s: cluster on needs "
                 "cluster_database (a PostgreSQL connection string)", path);
        goto done;
    }

    if (cfg->cluster_node[0] == '\0'
        && (gethostname(cfg->cluster_node, sizeof(cfg->cluster_node)) != 0
            || cfg->cluster_node[0] == '\0'))
    {
        snprintf(cfg->cluster_node, sizeof(cfg->cluster_node), "node");
    }
    cfg->cluster_node[sizeof(cfg->cluster_node) - 1] = '\0';

    ret = 0;

done:

    fclose(f);

    return ret;
}


/* A line of trustd.conf: config_split_line() with its error reported. */
static int
config_parse_line(config_parse_t *cp, char *line, char **kw, char **value)
{
    char  msg[300];
    int   rc;

    rc = config_split_line(line, config_multiword, kw, value, msg,
                           sizeof(msg));
    if (rc < 0) {
        config_error(cp, "%s", msg);
    }

    return rc;
}


int
config_split_line(char *line, int (*multiword)(const char *kw), char **kw,
    char **value, char *msg, size_t size)
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
        snprintf(msg, size, "keyword \"%.64s\" needs a value", *kw);
        return -1;
    }

    *p++ = '\0';

    while (*p == ' ' || *p == '\t') {
        p++;
    }

    if (*p == '\0' || *p == '#' || *p == '\r') {
        snprintf(msg, size, "keyword \"%.64s\" needs a value", *kw);
        return -1;
    }

    /* keywords whose value is several words: the rest of the line */
    if (multiword != NULL && multiword(*kw)) {
        *value = p;
        q = p + strcspn(p, "#");
        while (q > p && isspace((unsigned char) q[-1])) {
            q--;
        }
        *q = '\0';
        return 1;
    }

    if (*p == '"') {
        *value = ++p;
        q = strchr(p, '"');
        if (q == NULL) {
            snprintf(msg, size, "unterminated quoted value for \"%.64s\"",
                     *kw);
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
        snprintf(msg, size, "\"%.64s\" takes one value; unexpected \"%.64s\" "
                 "after it (quote a value with spaces)", *kw, p);
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
config_parse_uid(config_parse_t *cp, const char *value, uid_t *uids,
    size_t *n)
{
    struct passwd   *pw;
    unsigned long    uid;
    char            *end;

    if (*n == CONFIG_MAX_PEERS) {
        config_error(cp, "too many %s lines (at most %d)", cp->keyword,
                     CONFIG_MAX_PEERS);
        return -1;
    }

    if (value[0] >= '0' && value[0] <= '9') {
        errno = 0;
        uid = strtoul(value, &end, 10);
        if (errno != 0 || *end != '\0' || uid >= (uid_t) -1) {
            config_error(cp, "%s \"%s\": invalid uid", cp->keyword, value);
            return -1;
        }

        uids[(*n)++] = (uid_t) uid;

        return 0;
    }

    errno = 0;
    pw = getpwnam(value);
    if (pw == NULL) {
        config_error(cp, "%s \"%s\": unknown user", cp->keyword, value);
        return -1;
    }

    uids[(*n)++] = pw->pw_uid;

    return 0;
}


static int
config_set_peer_user(config_parse_t *cp, const char *value)
{
    return config_parse_uid(cp, value, cp->cfg->peer_uids,
                            &cp->cfg->npeers);
}


static int
config_set_admin_user(config_parse_t *cp, const char *value)
{
    return config_parse_uid(cp, value, cp->cfg->admin_uids,
                            &cp->cfg->nadmins);
}


static int
config_set_policy(config_parse_t *cp, const char *value)
{
    return config_abs_path(cp, value, cp->cfg->policy,
                           sizeof(cp->cfg->policy));
}


static int
config_set_admin_listen(config_parse_t *cp, const char *value)
{
    return config_abs_path(cp, value, cp->cfg->admin_listen,
                           sizeof(cp->cfg->admin_listen));
}


/*
 * The sign-in portal that login and step-up decisions redirect to.  Only
 * an https URL or a local absolute path: the target is ours, never taken
 * from a request.
 */
static int
config_set_portal_url(config_parse_t *cp, const char *value)
{
    size_t  i, len;

    len = strlen(value);

    if (len >= sizeof(cp->cfg->portal_url)) {
        config_error(cp, "portal_url: too long (at most %zu bytes)",
                     sizeof(cp->cfg->portal_url) - 1);
        return -1;
    }

    if (!(strncmp(value, "https://", 8) == 0 && len > 8)
        && !(value[0] == '/' && value[1] != '/' && value[1] != '\\'))
    {
        config_error(cp, "portal_url \"%s\": expected an https:// URL or "
                     "a path starting with a single /", value);
        return -1;
    }

    for (i = 0; i < len; i++) {
        if ((unsigned char) value[i] <= 0x20 || value[i] == 0x7f
            || value[i] == '?' || value[i] == '#')
        {
            config_error(cp, "portal_url \"%s\": no spaces, control "
                         "characters, query or fragment allowed", value);
            return -1;
        }
    }

    memcpy(cp->cfg->portal_url, value, len + 1);

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
config_set_log_format(config_parse_t *cp, const char *value)
{
    int  format;

    format = log_format_parse(value);
    if (format < 0) {
        config_error(cp, "log_format \"%s\": expected text, kv or json",
                     value);
        return -1;
    }

    cp->cfg->log_format = format;

    return 0;
}


/*
 * Where trustd serves its metrics: a Unix socket path, or a loopback
 * address and port.  Nothing authenticates a scrape, so no other address
 * is accepted (put a proxy in front to publish them further).
 */
static int
config_set_metrics_listen(config_parse_t *cp, const char *value)
{
    struct sockaddr_storage  ss;
    socklen_t                len;

    if (value[0] == '/') {
        return config_abs_path(cp, value, cp->cfg->metrics_listen,
                               sizeof(cp->cfg->metrics_listen));
    }

    if (strlen(value) >= sizeof(cp->cfg->metrics_listen)
        || config_parse_loopback(value, &ss, &len) != 0)
    {
        config_error(cp, "metrics_listen \"%s\": expected a Unix socket "
                     "path or a loopback ADDRESS:PORT such as "
                     "127.0.0.1:9464 or [::1]:9464", value);
        return -1;
    }

    memcpy(cp->cfg->metrics_listen, value, strlen(value) + 1);

    return 0;
}


/* From 1 s (tests) to 5 minutes. */
static int
config_set_metrics_interval(config_parse_t *cp, const char *value)
{
    return config_duration(cp, value, 1000, 300u * 1000,
                           &cp->cfg->metrics_interval_ms);
}


int
config_parse_loopback(const char *s, struct sockaddr_storage *addr,
    socklen_t *len)
{
    struct sockaddr_in   *sin;
    struct sockaddr_in6  *sin6;
    const char           *colon;
    char                  host[64], *end;
    unsigned long         port;
    size_t                hlen;

    colon = strrchr(s, ':');
    if (colon == NULL || colon == s) {
        return -1;
    }

    /* an IPv6 address only in brackets, so that the port is never taken */
    hlen = (size_t) (colon - s);
    if (s[0] == '[') {
        if (hlen < 3 || s[hlen - 1] != ']') {
            return -1;
        }
        s++;
        hlen -= 2;

    } else if (memchr(s, ':', hlen) != NULL) {
        return -1;
    }

    if (hlen >= sizeof(host)) {
        return -1;
    }

    memcpy(host, s, hlen);
    host[hlen] = '\0';

    errno = 0;
    port = strtoul(colon + 1, &end, 10);
    if (colon[1] < '0' || colon[1] > '9' || errno != 0 || *end != '\0'
        || port == 0 || port > 65535)
    {
        return -1;
    }

    memset(addr, 0, sizeof(*addr));

    if (strcmp(host, "localhost") == 0) {
        memcpy(host, "127.0.0.1", sizeof("127.0.0.1"));
    }

    sin = (struct sockaddr_in *) addr;
    if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
        if ((ntohl(sin->sin_addr.s_addr) >> 24) != 127) {
            return -1;
        }
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t) port);
        *len = sizeof(*sin);
        return 0;
    }

    sin6 = (struct sockaddr_in6 *) addr;
    if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1
        && IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr))
    {
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t) port);
        *len = sizeof(*sin6);
        return 0;
    }

    return -1;
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

    } else if (strcmp(end, "m") == 0) {
        n *= 60 * 1000;

    } else if (strcmp(end, "h") == 0) {
        n *= 3600 * 1000;

    } else if (strcmp(end, "d") == 0) {
        n *= 86400 * 1000;

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


int
config_admin_allowed(const config_t *cfg, uid_t uid)
{
    size_t  i;

    if (uid == 0 || uid == geteuid()) {
        return 1;
    }

    for (i = 0; i < cfg->nadmins; i++) {
        if (cfg->admin_uids[i] == uid) {
            return 1;
        }
    }

    return 0;
}


static int
config_duration(config_parse_t *cp, const char *value, uint32_t min_ms,
    uint32_t max_ms, uint32_t *dst)
{
    uint32_t  ms;

    if (config_parse_duration(value, max_ms, &ms) != 0 || ms < min_ms) {
        config_error(cp, "%s \"%s\": expected a duration (ms, s, m, h or d "
                     "suffix) from %ums to %ums", cp->keyword, value,
                     min_ms, max_ms);
        return -1;
    }

    *dst = ms;

    return 0;
}


static int
config_number(config_parse_t *cp, const char *value, unsigned min,
    unsigned max, unsigned *dst)
{
    unsigned long   n;
    char           *end;

    errno = 0;
    n = strtoul(value, &end, 10);

    if (value[0] < '0' || value[0] > '9' || errno != 0 || *end != '\0'
        || n < min || n > max)
    {
        config_error(cp, "%s \"%s\": expected a number from %u to %u",
                     cp->keyword, value, min, max);
        return -1;
    }

    *dst = (unsigned) n;

    return 0;
}


static int
config_set_identity_keys(config_parse_t *cp, const char *value)
{
    return config_abs_path(cp, value, cp->cfg->identity_keys,
                           sizeof(cp->cfg->identity_keys));
}


static int
config_set_token_alg(config_parse_t *cp, const char *value)
{
    if (strcmp(value, "HS256") == 0) {
        cp->cfg->token_alg = 0;

    } else if (strcmp(value, "ES256") == 0) {
        cp->cfg->token_alg = 1;

    } else {
        config_error(cp, "token_alg \"%s\": expected HS256 or ES256",
                     value);
        return -1;
    }

    return 0;
}


static int
config_set_key_grace(config_parse_t *cp, const char *value)
{
    return config_duration(cp, value, 0, 30u * 86400 * 1000,
                           &cp->cfg->key_grace_ms);
}


static int
config_set_session_lifetime(config_parse_t *cp, const char *value)
{
    return config_duration(cp, value, 60 * 1000, 30u * 86400 * 1000,
                           &cp->cfg->session_lifetime_ms);
}


static int
config_set_session_idle(config_parse_t *cp, const char *value)
{
    return config_duration(cp, value, 60 * 1000, 30u * 86400 * 1000,
                           &cp->cfg->session_idle_ms);
}


static int
config_set_totp_window(config_parse_t *cp, const char *value)
{
    return config_number(cp, value, 0, 10, &cp->cfg->totp_window);
}


static int
config_set_lockout_threshold(config_parse_t *cp, const char *value)
{
    return config_number(cp, value, 1, 1000, &cp->cfg->lockout_threshold);
}


static int
config_set_lockout_time(config_parse_t *cp, const char *value)
{
    return config_duration(cp, value, 1000, 30u * 86400 * 1000,
                           &cp->cfg->lockout_time_ms);
}


static int
config_set_source_limit(config_parse_t *cp, const char *value)
{
    return config_number(cp, value, 1, 100000, &cp->cfg->source_limit);
}


static int
config_set_portal_listen(config_parse_t *cp, const char *value)
{
    return config_abs_path(cp, value, cp->cfg->portal_listen,
                           sizeof(cp->cfg->portal_listen));
}


/*
 * A host the portal may send a browser back to after sign-in (the
 * redirect allow-list): a DNS name or address, optionally with :port,
 * lowercase, no scheme, path or wildcard.
 */
static int
config_set_portal_host(config_parse_t *cp, const char *value)
{
    config_t  *cfg = cp->cfg;
    size_t     i, len;

    len = strlen(value);

    if (cfg->nportal_hosts == CONFIG_MAX_HOSTS) {
        config_error(cp, "too many portal_host lines (at most %d)",
                     CONFIG_MAX_HOSTS);
        return -1;
    }

    if (len == 0 || len >= sizeof(cfg->portal_hosts[0])) {
        goto invalid;
    }

    for (i = 0; i < len; i++) {
        if (!((value[i] >= 'a' && value[i] <= 'z')
              || (value[i] >= '0' && value[i] <= '9')
              || value[i] == '.' || value[i] == '-' || value[i] == ':'
              || value[i] == '[' || value[i] == ']'))
        {
            goto invalid;
        }
    }

    memcpy(cfg->portal_hosts[cfg->nportal_hosts++], value, len + 1);

    return 0;

invalid:

    config_error(cp, "portal_host \"%s\": expected a lowercase host name "
                 "or address, optionally with :port", value);

    return -1;
}


/* A registrable domain or "localhost": lowercase letters, digits, . and -. */
static int
config_set_webauthn_rp_id(config_parse_t *cp, const char *value)
{
    size_t  i, len;

    len = strlen(value);

    if (len == 0 || len >= sizeof(cp->cfg->webauthn_rp_id)
        || value[0] == '.' || value[len - 1] == '.')
    {
        goto invalid;
    }

    for (i = 0; i < len; i++) {
        if (!((value[i] >= 'a' && value[i] <= 'z')
              || (value[i] >= '0' && value[i] <= '9')
              || value[i] == '.' || value[i] == '-'))
        {
            goto invalid;
        }
    }

    memcpy(cp->cfg->webauthn_rp_id, value, len + 1);

    return 0;

invalid:

    config_error(cp, "webauthn_rp_id \"%s\": expected a lowercase domain "
                 "name such as login.example.gov", value);

    return -1;
}


/* An origin exactly as browsers write it: https://host[:port], no path. */
static int
config_set_webauthn_origin(config_parse_t *cp, const char *value)
{
    config_t  *cfg = cp->cfg;
    size_t     i, len;

    len = strlen(value);

    if (cfg->nwebauthn_origins == CONFIG_MAX_WA_ORIGINS) {
        config_error(cp, "too many webauthn_origin lines (at most %d)",
                     CONFIG_MAX_WA_ORIGINS);
        return -1;
    }

    if (len <= 8 || len >= sizeof(cfg->webauthn_origins[0])
        || strncmp(value, "https://", 8) != 0)
    {
        goto invalid;
    }

    for (i = 8; i < len; i++) {
        if (!((value[i] >= 'a' && value[i] <= 'z')
              || (value[i] >= '0' && value[i] <= '9')
              || value[i] == '.' || value[i] == '-' || value[i] == ':'
              || value[i] == '[' || value[i] == ']'))
        {
            goto invalid;
        }
    }

    memcpy(cfg->webauthn_origins[cfg->nwebauthn_origins++], value, len + 1);

    return 0;

invalid:

    config_error(cp, "webauthn_origin \"%s\": expected https://host or "
                 "https://host:port in lowercase, without a path", value);

    return -1;
}


static int
config_set_webauthn_uv(config_parse_t *cp, const char *value)
{
    if (strcmp(value, "required") == 0) {
        cp->cfg->webauthn_uv = 1;

    } else if (strcmp(value, "preferred") == 0) {
        cp->cfg->webauthn_uv = 0;

    } else {
        config_error(cp, "webauthn_user_verification \"%s\": expected "
                     "required or preferred", value);
        return -1;
    }

    return 0;
}


static int
config_set_assertion_ttl(config_parse_t *cp, const char *value)
{
    return config_duration(cp, value, 5000, 3600u * 1000,
                           &cp->cfg->assertion_ttl_ms);
}


/* From 1 s (tests) to 30 days: agents report at least monthly. */
static int
config_set_posture_max_age(config_parse_t *cp, const char *value)
{
    return config_duration(cp, value, 1000, 30u * 86400 * 1000,
                           &cp->cfg->posture_max_age_ms);
}


static int
config_multiword(const char *kw)
{
    return strcmp(kw, "trust_weight") == 0 || strcmp(kw, "blocklist") == 0;
}


static int
config_set_trust_base(config_parse_t *cp, const char *value)
{
    unsigned  n;

    if (config_number(cp, value, 0, 100, &n) != 0) {
        return -1;
    }

    cp->cfg->trust.base = (int) n;

    return 0;
}


/* "trust_weight SIGNAL N": N from 0 (signal off) to SCORE_WEIGHT_MAX. */
static int
config_set_trust_weight(config_parse_t *cp, const char *value)
{
    score_signal_t  sig;
    char            name[64], *end;
    unsigned long   n;
    size_t          len;

    len = strcspn(value, " \t");
    if (len == 0 || len >= sizeof(name) || value[len] == '\0') {
        config_error(cp, "trust_weight \"%s\": expected a signal name and "
                     "a weight", value);
        return -1;
    }

    memcpy(name, value, len);
    name[len] = '\0';
    value += len + strspn(value + len, " \t");

    if (score_signal_parse(name, &sig) != 0) {
        config_error(cp, "trust_weight: unknown signal \"%s\" (see "
                     "docs/trust.md)", name);
        return -1;
    }

    errno = 0;
    n = strtoul(value, &end, 10);
    if (!isdigit((unsigned char) *value) || errno != 0 || *end != '\0'
        || n > SCORE_WEIGHT_MAX)
    {
        config_error(cp, "trust_weight %s \"%s\": expected a number 0..%d",
                     name, value, SCORE_WEIGHT_MAX);
        return -1;
    }

    cp->cfg->trust.weight[sig] = (int) n;

    return 0;
}


static int
config_set_behaviour_window(config_parse_t *cp, const char *value)
{
    return config_duration(cp, value, 10u * 1000, 86400u * 1000,
                           &cp->cfg->behaviour_window_ms);
}


static int
config_set_trusted_network(config_parse_t *cp, const char *value)
{
    blocklist_err_t  berr;
    uint8_t          lo[16], hi[16];
    config_t        *cfg = cp->cfg;

    if (cfg->ntrusted_networks == CONFIG_MAX_NETWORKS) {
        config_error(cp, "too many trusted_network lines (at most %d)",
                     CONFIG_MAX_NETWORKS);
        return -1;
    }

    if (blocklist_parse_cidr(value, lo, hi, &berr) != 0) {
        config_error(cp, "trusted_network %s", berr.msg);
        return -1;
    }

    snprintf(cfg->trusted_networks[cfg->ntrusted_networks++], 64, "%s",
             value);

    return 0;
}


/* "blocklist NAME PATH [expires YYYY-MM-DD]" */
static int
config_set_blocklist(config_parse_t *cp, const char *value)
{
    config_t  *cfg = cp->cfg;
    char       buf[CONFIG_PATH_MAX + 128], *words[5], *p;
    size_t     n, i;
    int64_t    expires;

    if (cfg->nblocklists == CONFIG_MAX_BLOCKLISTS) {
        config_error(cp, "too many blocklist lines (at most %d)",
                     CONFIG_MAX_BLOCKLISTS);
        return -1;
    }

    if (strlen(value) >= sizeof(buf)) {
        config_error(cp, "blocklist: line too long");
        return -1;
    }

    memcpy(buf, value, strlen(value) + 1);

    n = 0;
    for (p = strtok(buf, " \t"); p != NULL; p = strtok(NULL, " \t")) {
        if (n == 5) {
            break;
        }
        words[n++] = p;
    }

    if ((n != 2 && n != 4) || (n == 4 && strcmp(words[2], "expires") != 0)) {
        config_error(cp, "blocklist \"%s\": expected NAME PATH "
                     "[expires YYYY-MM-DD]", value);
        return -1;
    }

    if (!blocklist_feed_name_ok(words[0])) {
        config_error(cp, "blocklist \"%s\": invalid feed name (use "
                     "[a-z0-9._-])", words[0]);
        return -1;
    }

    for (i = 0; i < cfg->nblocklists; i++) {
        if (strcmp(cfg->blocklists[i].name, words[0]) == 0) {
            config_error(cp, "blocklist \"%s\" given twice", words[0]);
            return -1;
        }
    }

    expires = 0;
    if (n == 4 && blocklist_parse_date(words[3], &expires) != 0) {
        config_error(cp, "blocklist %s: invalid date \"%s\" (expected "
                     "YYYY-MM-DD)", words[0], words[3]);
        return -1;
    }

    if (config_abs_path(cp, words[1], cfg->blocklists[cfg->nblocklists].path,
                        CONFIG_PATH_MAX)
        != 0)
    {
        return -1;
    }

    snprintf(cfg->blocklists[cfg->nblocklists].name, 64, "%s", words[0]);
    cfg->blocklists[cfg->nblocklists].expires = expires;
    cfg->nblocklists++;

    return 0;
}


/* From 10 ms (tests) to 1 minute. */
static int
config_set_journal_flush(config_parse_t *cp, const char *value)
{
    return config_duration(cp, value, 10, 60u * 1000,
                           &cp->cfg->journal_flush_ms);
}


static int
config_set_journal_queue(config_parse_t *cp, const char *value)
{
    return config_number(cp, value, 16, 1u << 20, &cp->cfg->journal_queue);
}


/*
 * "0" keeps every record; otherwise a number with an s, m, h or d suffix,
 * from 1 second (tests) to 100 years.
 */
static int
config_set_journal_retention(config_parse_t *cp, const char *value)
{
    unsigned long long   n, mult;
    char                *end;

    errno = 0;
    n = strtoull(value, &end, 10);

    if (value[0] >= '0' && value[0] <= '9' && errno == 0 && n == 0
        && *end == '\0')
    {
        cp->cfg->journal_retention_ms = 0;
        return 0;
    }

    mult = strcmp(end, "s") == 0 ? 1000
           : strcmp(end, "m") == 0 ? 60 * 1000
           : strcmp(end, "h") == 0 ? 3600 * 1000
           : strcmp(end, "d") == 0 ? 86400ull * 1000 : 0;

    if (value[0] < '0' || value[0] > '9' || errno != 0 || mult == 0
        || n == 0 || n > 36500ull * 86400 * 1000 / mult)
    {
        config_error(cp, "journal_retention \"%s\": expected 0 (keep "
                     "everything) or a duration with an s, m, h or d "
                     "suffix, up to 36500d", value);
        return -1;
    }

    cp->cfg->journal_retention_ms = (int64_t) (n * mult);

    return 0;
}


static int
config_set_journal_failure(config_parse_t *cp, const char *value)
{
    if (strcmp(value, "closed") == 0) {
        cp->cfg->journal_fail_open = 0;
    } else if (strcmp(value, "open") == 0) {
        cp->cfg->journal_fail_open = 1;
    } else {
        config_error(cp, "journal_failure \"%s\": expected closed or open",
                     value);
        return -1;
    }

    return 0;
}


/* Devices the decision thread caches: 0 (off) to 16 million. */
static int
config_set_device_cache(config_parse_t *cp, const char *value)
{
    return config_number(cp, value, 0, 1u << 24, &cp->cfg->device_cache);
}


/* Cluster mode: on or off (the default: this node's LMDB alone). */
static int
config_set_cluster(config_parse_t *cp, const char *value)
{
    if (strcmp(value, "on") == 0) {
        cp->cfg->cluster = 1;
    } else if (strcmp(value, "off") == 0) {
        cp->cfg->cluster = 0;
    } else {
        config_error(cp, "cluster \"%s\": expected on or off", value);
        return -1;
    }

    return 0;
}


static int
config_set_cluster_database(config_parse_t *cp, const char *value)
{
    if (strlen(value) >= sizeof(cp->cfg->cluster_database)
        || value[0] == '\0')
    {
        config_error(cp, "cluster_database: expected a PostgreSQL "
                     "connection string of at most %zu bytes",
                     sizeof(cp->cfg->cluster_database) - 1);
        return -1;
    }

    memcpy(cp->cfg->cluster_database, value, strlen(value) + 1);

    return 0;
}


/* A node name: letters, digits, '.', '-', '_' (it names the node in the
 * change log and in status). */
static int
config_set_cluster_node(config_parse_t *cp, const char *value)
{
    size_t  i, len;

    len = strlen(value);

    for (i = 0; i < len; i++) {
        if (!((value[i] >= 'a' && value[i] <= 'z')
              || (value[i] >= 'A' && value[i] <= 'Z')
              || (value[i] >= '0' && value[i] <= '9')
              || value[i] == '.' || value[i] == '-' || value[i] == '_'))
        {
            break;
        }
    }

    if (len == 0 || len >= sizeof(cp->cfg->cluster_node) || i != len) {
        config_error(cp, "cluster_node \"%s\": expected up to %zu letters, "
                     "digits, '.', '-' or '_'", value,
                     sizeof(cp->cfg->cluster_node) - 1);
        return -1;
    }

    memcpy(cp->cfg->cluster_node, value, len + 1);

    return 0;
}


/* From 1 s to a day. */
static int
config_set_cluster_staleness(config_parse_t *cp, const char *value)
{
    return config_duration(cp, value, 1000, 86400u * 1000,
                           &cp->cfg->cluster_max_staleness_ms);
}


static int
config_set_cluster_poll(config_parse_t *cp, const char *value)
{
    return config_duration(cp, value, 100, 60u * 1000,
                           &cp->cfg->cluster_poll_ms);
}


static int
config_set_cluster_timeout(config_parse_t *cp, const char *value)
{
    return config_duration(cp, value, 500, 120u * 1000,
                           &cp->cfg->cluster_timeout_ms);
}


/* From an hour to 30 days. */
static int
config_set_cluster_retention(config_parse_t *cp, const char *value)
{
    return config_duration(cp, value, 3600u * 1000, 30u * 86400 * 1000,
                           &cp->cfg->cluster_retention_ms);
}
