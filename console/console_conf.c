/*
 * ztconsole's configuration file: "keyword value" lines as in trustd.conf
 * ('#' comments, blank lines, a value may be double-quoted), errors as
 * "file:line: message" quoting the offending keyword or value.  What the
 * console shares with trustd (the store, the identity keys, the TOTP
 * window) is not repeated here: trustd_config names trustd's own file.
 * See console.h and docs/console.md.
 */

#include <ctype.h>
#include <errno.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "console.h"
#include "trustd/log.h"


#define CONSOLE_LINE_MAX        4096
#define CONSOLE_MFA_MAX_MS      (24u * 3600 * 1000)
#define CONSOLE_DAYS_MAX        3650

typedef struct {
    const char      *file;
    unsigned         line;
    const char      *keyword;
    console_conf_t  *cf;
    char            *err;
    size_t           errsize;
} console_parse_t;

typedef struct {
    const char  *name;
    int        (*set)(console_parse_t *cp, const char *value);
    int          repeat;            /* may appear more than once */
} console_keyword_t;


static void console_conf_error(console_parse_t *cp, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int console_conf_line(console_parse_t *cp, char *line, char **kw,
    char **value);
static int console_conf_path(console_parse_t *cp, const char *value,
    char *dst, size_t size);
static int console_set_trustd_config(console_parse_t *cp,
    const char *value);
static int console_set_listen(console_parse_t *cp, const char *value);
static int console_set_listen_mode(console_parse_t *cp, const char *value);
static int console_set_peer_user(console_parse_t *cp, const char *value);
static int console_set_origin(console_parse_t *cp, const char *value);
static int console_set_base_path(console_parse_t *cp, const char *value);
static int console_set_staff_group(console_parse_t *cp, const char *value);
static int console_set_mfa_max_age(console_parse_t *cp, const char *value);
static int console_set_require_device(console_parse_t *cp,
    const char *value);
static int console_set_ca_dir(console_parse_t *cp, const char *value);
static int console_set_ca_passphrase_file(console_parse_t *cp,
    const char *value);
static int console_set_cert_days(console_parse_t *cp, const char *value);
static int console_set_totp_issuer(console_parse_t *cp, const char *value);
static int console_set_log_level(console_parse_t *cp, const char *value);
static int console_set_log_target(console_parse_t *cp, const char *value);


static const console_keyword_t  console_keywords[] = {
    { "trustd_config", console_set_trustd_config, 0 },
    { "listen", console_set_listen, 0 },
    { "listen_mode", console_set_listen_mode, 0 },
    { "peer_user", console_set_peer_user, 1 },
    { "origin", console_set_origin, 1 },
    { "base_path", console_set_base_path, 0 },
    { "staff_group", console_set_staff_group, 0 },
    { "mfa_max_age", console_set_mfa_max_age, 0 },
    { "require_device", console_set_require_device, 0 },
    { "ca_dir", console_set_ca_dir, 0 },
    { "ca_passphrase_file", console_set_ca_passphrase_file, 0 },
    { "cert_days", console_set_cert_days, 0 },
    { "totp_issuer", console_set_totp_issuer, 0 },
    { "log_level", console_set_log_level, 0 },
    { "log_target", console_set_log_target, 0 },
};

#define CONSOLE_NKEYWORDS                                                   \
    (sizeof(console_keywords) / sizeof(console_keywords[0]))


static void
console_conf_error(console_parse_t *cp, const char *fmt, ...)
{
    va_list  ap;
    char     msg[512];

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);

    if (cp->line > 0) {
        snprintf(cp->err, cp->errsize, "%s:%u: %s", cp->file, cp->line, msg);
    } else {
        snprintf(cp->err, cp->errsize, "%s: %s", cp->file, msg);
    }
}


int
console_conf_load(const char *path, console_conf_t *cf, char *err,
    size_t errsize)
{
    console_parse_t  cp;
    FILE            *f;
    char             buf[CONSOLE_LINE_MAX], *kw, *value;
    unsigned         seen[CONSOLE_NKEYWORDS];
    size_t           i, len;
    int              rc, ret;

    memset(cf, 0, sizeof(*cf));
    memset(seen, 0, sizeof(seen));
    snprintf(cf->trustd_config, sizeof(cf->trustd_config), "%s",
             CONFIG_DEFAULT_PATH);
    cf->listen_mode = 0660;
    snprintf(cf->base_path, sizeof(cf->base_path), "/console");
    snprintf(cf->staff_group, sizeof(cf->staff_group), "staff");
    cf->mfa_max_age_ms = 15u * 60 * 1000;
    cf->require_device = 1;
    cf->cert_days = 365;
    snprintf(cf->totp_issuer, sizeof(cf->totp_issuer), "ztgate");
    cf->log_level = LOG_LEVEL_INFO;
    cf->log_target = CONFIG_LOG_TARGET_DEFAULT;

    cp.file = path;
    cp.line = 0;
    cp.keyword = NULL;
    cp.cf = cf;
    cp.err = err;
    cp.errsize = errsize;

    f = fopen(path, "re");
    if (f == NULL) {
        console_conf_error(&cp, "%s", strerror(errno));
        return -1;
    }

    ret = -1;

    while (fgets(buf, sizeof(buf), f) != NULL) {
        cp.line++;

        len = strlen(buf);
        if (len > 0 && buf[len - 1] == '\n') {
            buf[--len] = '\0';

        } else if (!feof(f)) {
            console_conf_error(&cp, "line longer than %d bytes",
                               CONSOLE_LINE_MAX - 2);
            goto done;
        }

        rc = console_conf_line(&cp, buf, &kw, &value);
        if (rc < 0) {
            goto done;
        }

        if (rc == 0) {
            continue;
        }

        for (i = 0; i < CONSOLE_NKEYWORDS; i++) {
            if (strcmp(kw, console_keywords[i].name) == 0) {
                break;
            }
        }

        if (i == CONSOLE_NKEYWORDS) {
            console_conf_error(&cp, "unknown keyword \"%s\"", kw);
            goto done;
        }

        if (seen[i]++ && !console_keywords[i].repeat) {
            console_conf_error(&cp, "\"%s\" given twice", kw);
            goto done;
        }

        cp.keyword = kw;

        if (console_keywords[i].set(&cp, value) != 0) {
            goto done;
        }
    }

    if (ferror(f)) {
        cp.line = 0;
        console_conf_error(&cp, "read error");
        goto done;
    }

    cp.line = 0;

    if (cf->listen[0] == '\0') {
        console_conf_error(&cp, "\"listen\" is required");
        goto done;
    }

    if (cf->npeers == 0) {
        console_conf_error(&cp, "\"peer_user\" is required: only nginx may "
                           "connect");
        goto done;
    }

    if (cf->norigins == 0) {
        console_conf_error(&cp, "\"origin\" is required: the console's "
                           "address as the browser sees it");
        goto done;
    }

    if (cf->ca_passphrase_file[0] != '\0' && cf->ca_dir[0] == '\0') {
        console_conf_error(&cp, "\"ca_passphrase_file\" needs \"ca_dir\"");
        goto done;
    }

    ret = 0;

done:

    fclose(f);

    return ret;
}


/* A line of console.conf: config_split_line() with its error reported. */
static int
console_conf_line(console_parse_t *cp, char *line, char **kw, char **value)
{
    char  msg[300];
    int   rc;

    rc = config_split_line(line, NULL, kw, value, msg, sizeof(msg));
    if (rc < 0) {
        console_conf_error(cp, "%s", msg);
    }

    return rc;
}


static int
console_conf_path(console_parse_t *cp, const char *value, char *dst,
    size_t size)
{
    if (value[0] != '/') {
        console_conf_error(cp, "%s \"%s\": must be an absolute path",
                           cp->keyword, value);
        return -1;
    }

    if (strlen(value) >= size) {
        console_conf_error(cp, "%s \"%s\": path too long (at most %zu "
                           "bytes)", cp->keyword, value, size - 1);
        return -1;
    }

    memcpy(dst, value, strlen(value) + 1);

    return 0;
}


static int
console_set_trustd_config(console_parse_t *cp, const char *value)
{
    return console_conf_path(cp, value, cp->cf->trustd_config,
                             sizeof(cp->cf->trustd_config));
}


static int
console_set_listen(console_parse_t *cp, const char *value)
{
    return console_conf_path(cp, value, cp->cf->listen,
                             sizeof(cp->cf->listen));
}


static int
console_set_listen_mode(console_parse_t *cp, const char *value)
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

    cp->cf->listen_mode = (mode_t) mode;

    return 0;

invalid:

    console_conf_error(cp, "listen_mode \"%s\": expected an octal mode such "
                       "as 0660", value);

    return -1;
}


static int
console_set_peer_user(console_parse_t *cp, const char *value)
{
    struct passwd   *pw;
    unsigned long    uid;
    char            *end;

    if (cp->cf->npeers == CONFIG_MAX_PEERS) {
        console_conf_error(cp, "too many peer_user lines (at most %d)",
                           CONFIG_MAX_PEERS);
        return -1;
    }

    if (value[0] >= '0' && value[0] <= '9') {
        errno = 0;
        uid = strtoul(value, &end, 10);
        if (errno != 0 || *end != '\0' || uid >= (uid_t) -1) {
            console_conf_error(cp, "peer_user \"%s\": invalid uid", value);
            return -1;
        }

        cp->cf->peer_uids[cp->cf->npeers++] = (uid_t) uid;
        return 0;
    }

    pw = getpwnam(value);
    if (pw == NULL) {
        console_conf_error(cp, "peer_user \"%s\": unknown user", value);
        return -1;
    }

    cp->cf->peer_uids[cp->cf->npeers++] = pw->pw_uid;

    return 0;
}


/*
 * "https://host" or "https://host:port", exactly as browsers send it in
 * Origin: lower case, no path, no trailing slash.  The host alone is what
 * the assertion's aud (nginx's $host) is compared with.
 */
static int
console_set_origin(console_parse_t *cp, const char *value)
{
    const char  *host, *colon;
    size_t       i, hlen;
    char         c;

    if (cp->cf->norigins == CONSOLE_MAX_ORIGINS) {
        console_conf_error(cp, "too many origin lines (at most %d)",
                           CONSOLE_MAX_ORIGINS);
        return -1;
    }

    if (strncmp(value, "https://", 8) != 0
        || strlen(value) >= CONSOLE_ORIGIN_MAX)
    {
        goto invalid;
    }

    host = value + 8;
    colon = strchr(host, ':');
    hlen = (colon != NULL) ? (size_t) (colon - host) : strlen(host);

    if (hlen == 0) {
        goto invalid;
    }

    for (i = 0; host[i] != '\0'; i++) {
        c = host[i];

        if (i < hlen) {
            if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
                  || c == '.' || c == '-'))
            {
                goto invalid;
            }

        } else if (i > hlen && !(c >= '0' && c <= '9')) {
            goto invalid;
        }
    }

    if (colon != NULL && (colon[1] == '\0' || strlen(colon + 1) > 5
                          || atoi(colon + 1) < 1 || atoi(colon + 1) > 65535))
    {
        goto invalid;
    }

    memcpy(cp->cf->origins[cp->cf->norigins], value, strlen(value) + 1);
    memcpy(cp->cf->hosts[cp->cf->norigins], host, hlen);
    cp->cf->hosts[cp->cf->norigins][hlen] = '\0';
    cp->cf->norigins++;

    return 0;

invalid:

    console_conf_error(cp, "origin \"%s\": expected https://HOST or "
                       "https://HOST:PORT (lower case, nothing after)",
                       value);

    return -1;
}


static int
console_set_base_path(console_parse_t *cp, const char *value)
{
    size_t  len;

    len = strlen(value);

    if (value[0] != '/' || len < 2 || len >= sizeof(cp->cf->base_path)
        || value[len - 1] == '/'
        || value[strspn(value, "abcdefghijklmnopqrstuvwxyz0123456789/-_")]
           != '\0'
        || strstr(value, "//") != NULL)
    {
        console_conf_error(cp, "base_path \"%s\": a path such as /console "
                           "(a-z, 0-9, - and _, no trailing slash)", value);
        return -1;
    }

    memcpy(cp->cf->base_path, value, len + 1);

    return 0;
}


static int
console_set_staff_group(console_parse_t *cp, const char *value)
{
    if (!store_group_name_ok(value)) {
        console_conf_error(cp, "staff_group \"%s\": not a valid group name",
                           value);
        return -1;
    }

    snprintf(cp->cf->staff_group, sizeof(cp->cf->staff_group), "%s", value);

    return 0;
}


static int
console_set_mfa_max_age(console_parse_t *cp, const char *value)
{
    if (config_parse_duration(value, CONSOLE_MFA_MAX_MS,
                              &cp->cf->mfa_max_age_ms)
        != 0)
    {
        console_conf_error(cp, "mfa_max_age \"%s\": expected a duration "
                           "such as 15m (at most 24h; 0 turns the check "
                           "off)", value);
        return -1;
    }

    return 0;
}


static int
console_set_require_device(console_parse_t *cp, const char *value)
{
    if (strcmp(value, "yes") == 0) {
        cp->cf->require_device = 1;

    } else if (strcmp(value, "no") == 0) {
        cp->cf->require_device = 0;

    } else {
        console_conf_error(cp, "require_device \"%s\": yes or no", value);
        return -1;
    }

    return 0;
}


static int
console_set_ca_dir(console_parse_t *cp, const char *value)
{
    return console_conf_path(cp, value, cp->cf->ca_dir,
                             sizeof(cp->cf->ca_dir));
}


static int
console_set_ca_passphrase_file(console_parse_t *cp, const char *value)
{
    return console_conf_path(cp, value, cp->cf->ca_passphrase_file,
                             sizeof(cp->cf->ca_passphrase_file));
}


static int
console_set_cert_days(console_parse_t *cp, const char *value)
{
    long   n;
    char  *end;

    errno = 0;
    n = strtol(value, &end, 10);

    if (errno != 0 || *end != '\0' || n < 1 || n > CONSOLE_DAYS_MAX) {
        console_conf_error(cp, "cert_days \"%s\": a number of days from 1 "
                           "to %d", value, CONSOLE_DAYS_MAX);
        return -1;
    }

    cp->cf->cert_days = (int) n;

    return 0;
}


static int
console_set_totp_issuer(console_parse_t *cp, const char *value)
{
    size_t  i;

    for (i = 0; value[i] != '\0'; i++) {
        if ((unsigned char) value[i] < 0x20 || value[i] == 0x7f) {
            break;
        }
    }

    if (value[i] != '\0' || i == 0 || i >= sizeof(cp->cf->totp_issuer)) {
        console_conf_error(cp, "totp_issuer \"%s\": printable text of 1 to "
                           "%zu bytes", value,
                           sizeof(cp->cf->totp_issuer) - 1);
        return -1;
    }

    memcpy(cp->cf->totp_issuer, value, i + 1);

    return 0;
}


static int
console_set_log_level(console_parse_t *cp, const char *value)
{
    int  level;

    level = log_level_parse(value);
    if (level < 0) {
        console_conf_error(cp, "log_level \"%s\": debug, info, warn or "
                           "error", value);
        return -1;
    }

    cp->cf->log_level = level;

    return 0;
}


static int
console_set_log_target(console_parse_t *cp, const char *value)
{
    if (strcmp(value, "stderr") == 0) {
        cp->cf->log_target = CONFIG_LOG_TARGET_STDERR;

    } else if (strcmp(value, "syslog") == 0) {
        cp->cf->log_target = CONFIG_LOG_TARGET_SYSLOG;

    } else {
        console_conf_error(cp, "log_target \"%s\": stderr or syslog", value);
        return -1;
    }

    return 0;
}
