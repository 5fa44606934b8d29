/*
 * Policy library support: the arena every policy lives in, diagnostics,
 * the attribute table and value formatting, and reading policy files
 * (the only I/O in the library, done at load time).
 */

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "policy_int.h"

#define POL_CHUNK_SIZE  (64 * 1024)

struct pol_chunk_s {
    pol_chunk_t     *next;
    size_t           size;
    size_t           used;
    max_align_t      data[];
};

const pol_attr_info_t  pol_attrs[POL_A_COUNT] = {
    { "user.authenticated", POL_T_BOOL },
    { "user.name", POL_T_STRING },
    { "user.groups", POL_T_SET },
    { "auth.methods", POL_T_SET },
    { "auth.mfa_age", POL_T_DURATION },
    { "device.known", POL_T_BOOL },
    { "device.status", POL_T_STATUS },
    { "device.id", POL_T_STRING },
    { "device.owner", POL_T_STRING },
    { "device.bound", POL_T_BOOL },
    { "device.posture.disk_encrypted", POL_T_BOOL },
    { "device.posture.firewall", POL_T_BOOL },
    { "device.posture.screen_lock", POL_T_BOOL },
    { "device.posture.endpoint_protection", POL_T_BOOL },
    { "device.posture.reported", POL_T_BOOL },
    { "device.posture.stale", POL_T_BOOL },
    { "device.posture.age", POL_T_DURATION },
    { "device.posture.os", POL_T_STRING },
    { "device.posture.os_version", POL_T_STRING },
    { "device.posture.patch_age", POL_T_DURATION },
    { "request.method", POL_T_STRING },
    { "request.host", POL_T_STRING },
    { "request.path", POL_T_STRING },
    { "source.address", POL_T_ADDRESS },
    { "time.hour", POL_T_NUMBER },
    { "time.minute", POL_T_NUMBER },
    { "time.weekday", POL_T_WEEKDAY },
    { "context.blocklisted", POL_T_BOOL },
    { "context.new_address", POL_T_BOOL },
    { "trust.score", POL_T_NUMBER },
    { "auth.aal", POL_T_NUMBER }
};

static const char  *pol_weekdays[] = {
    "mon", "tue", "wed", "thu", "fri", "sat", "sun"
};

static const char  *pol_statuses[] = {
    "none", "unknown", "active", "quarantined", "revoked"
};

static const char  *pol_auth_methods[] = {
    "password", "totp", "webauthn", "cert", "uv"
};


unsigned
pol_aal(unsigned methods)
{
    if ((methods & POL_AUTH_WEBAUTHN) && (methods & POL_AUTH_UV)) {
        return 3;
    }

    if (methods & (POL_AUTH_WEBAUTHN | POL_AUTH_TOTP)) {
        return 2;
    }

    return (methods & POL_AUTH_PASSWORD) ? 1 : 0;
}


void *
pol_alloc(pol_arena_t *a, size_t size)
{
    pol_chunk_t  *c;
    size_t        csize;
    void         *p;

    size = (size + 15) & ~(size_t) 15;
    if (size == 0) {
        size = 16;
    }

    c = a->head;
    if (c == NULL || c->size - c->used < size) {
        csize = (size > POL_CHUNK_SIZE / 4) ? size : POL_CHUNK_SIZE;
        c = malloc(sizeof(pol_chunk_t) + csize);
        if (c == NULL) {
            return NULL;
        }
        c->size = csize;
        c->used = 0;
        if (size > POL_CHUNK_SIZE / 4 && a->head != NULL) {
            /* a big block: keep filling the current chunk afterwards */
            c->next = a->head->next;
            a->head->next = c;
        } else {
            c->next = a->head;
            a->head = c;
        }
    }

    p = (char *) c->data + c->used;
    c->used += size;
    memset(p, 0, size);

    return p;
}


char *
pol_strndup(pol_arena_t *a, const char *s, size_t len)
{
    char  *p;

    p = pol_alloc(a, len + 1);
    if (p == NULL) {
        return NULL;
    }
    if (len) {
        memcpy(p, s, len);
    }
    p[len] = '\0';
    return p;
}


void
pol_arena_free(pol_arena_t *a)
{
    pol_chunk_t  *c, *next;

    for (c = a->head; c != NULL; c = next) {
        next = c->next;
        free(c);
    }
    a->head = NULL;
}


void
pol_diag_vadd(pol_diags_t *d, int warning, const char *file, unsigned line,
    unsigned col, const char *fmt, va_list ap)
{
    pol_diag_t  *g;

    if (warning) {
        d->nwarnings++;
    } else {
        d->nerrors++;
    }

    if (d->ndiags >= POL_MAX_DIAGS) {
        return;
    }

    g = &d->diags[d->ndiags++];
    snprintf(g->file, sizeof(g->file), "%s", file ? file : "");
    g->line = line;
    g->col = col;
    g->warning = warning;
    vsnprintf(g->msg, sizeof(g->msg), fmt, ap);
}


void
pol_diag_add(pol_diags_t *d, int warning, const char *file, unsigned line,
    unsigned col, const char *fmt, ...)
{
    va_list  ap;

    va_start(ap, fmt);
    pol_diag_vadd(d, warning, file, line, col, fmt, ap);
    va_end(ap);
}


void
pol_diag_format(const pol_diag_t *d, char *buf, size_t size)
{
    const char  *kind;

    kind = d->warning ? "warning" : "error";

    if (d->line == 0) {
        snprintf(buf, size, "%s: %s: %s", d->file, kind, d->msg);
    } else {
        snprintf(buf, size, "%s:%u:%u: %s: %s", d->file, d->line, d->col,
                 kind, d->msg);
    }
}


/* Levenshtein distance, for "did you mean" suggestions; short words only. */
unsigned
pol_edit_distance(const char *a, size_t alen, const char *b, size_t blen)
{
    unsigned  row[65], prev, tmp, best;
    size_t    i, j;

    if (alen > 64 || blen > 64) {
        return 1000;
    }

    for (j = 0; j <= blen; j++) {
        row[j] = (unsigned) j;
    }

    for (i = 1; i <= alen; i++) {
        prev = row[0];
        row[0] = (unsigned) i;
        for (j = 1; j <= blen; j++) {
            tmp = row[j];
            best = prev + (a[i - 1] != b[j - 1]);
            if (row[j] + 1 < best) {
                best = row[j] + 1;
            }
            if (row[j - 1] + 1 < best) {
                best = row[j - 1] + 1;
            }
            row[j] = best;
            prev = tmp;
        }
    }

    return row[blen];
}


int
pol_attr_lookup(const char *name, size_t len)
{
    int  i;

    for (i = 0; i < POL_A_COUNT; i++) {
        if (strlen(pol_attrs[i].name) == len
            && memcmp(pol_attrs[i].name, name, len) == 0)
        {
            return i;
        }
    }
    return -1;
}


const char *
pol_type_name(pol_type_t t)
{
    switch (t) {
    case POL_T_BOOL:
        return "bool";
    case POL_T_STRING:
        return "string";
    case POL_T_NUMBER:
        return "number";
    case POL_T_DURATION:
        return "duration";
    case POL_T_ADDRESS:
        return "address";
    case POL_T_WEEKDAY:
        return "weekday";
    case POL_T_STATUS:
        return "device status";
    case POL_T_SET:
        return "set";
    default:
        return "value";
    }
}


/* The value of a weekday (mon = 0) or device status keyword, or -1. */
int
pol_keyword_value(pol_type_t t, const char *s, size_t len)
{
    const char  **names;
    int           i, n;

    if (t == POL_T_WEEKDAY) {
        names = pol_weekdays;
        n = 7;
    } else if (t == POL_T_STATUS) {
        names = pol_statuses;
        n = 5;
    } else {
        return -1;
    }

    for (i = 0; i < n; i++) {
        if (strlen(names[i]) == len && memcmp(names[i], s, len) == 0) {
            return i;
        }
    }
    return -1;
}


const char *
pol_keyword_name(pol_type_t t, int64_t v)
{
    if (t == POL_T_WEEKDAY && v >= 0 && v < 7) {
        return pol_weekdays[v];
    }
    if (t == POL_T_STATUS && v >= 0 && v < 5) {
        return pol_statuses[v];
    }
    return "?";
}


int
pol_auth_method_bit(const char *s, size_t len)
{
    int  i;

    for (i = 0; i < 4; i++) {
        if (strlen(pol_auth_methods[i]) == len
            && memcmp(pol_auth_methods[i], s, len) == 0)
        {
            return 1 << i;
        }
    }
    return 0;
}


size_t
pol_fmt_duration(char *buf, size_t size, int64_t secs)
{
    static const int64_t  units[] = { 86400, 3600, 60, 1 };
    static const char     names[] = "dhms";
    size_t                n;
    int                   i, r;

    if (size == 0) {
        return 0;
    }
    buf[0] = '\0';

    if (secs == 0) {
        snprintf(buf, size, "0s");
        return 2;
    }

    n = 0;
    for (i = 0; i < 4; i++) {
        if (secs >= units[i]) {
            r = snprintf(buf + n, size - n, "%lld%c",
                         (long long) (secs / units[i]), names[i]);
            if (r < 0 || (size_t) r >= size - n) {
                return strlen(buf);
            }
            n += (size_t) r;
            secs %= units[i];
        }
    }
    return n;
}


size_t
pol_fmt_addr(char *buf, size_t size, int family, const uint8_t *addr,
    unsigned prefix)
{
    char      tmp[INET6_ADDRSTRLEN];
    unsigned  full;

    full = (family == 4) ? 32 : 128;

    if (inet_ntop(family == 4 ? AF_INET : AF_INET6, addr, tmp, sizeof(tmp))
        == NULL)
    {
        snprintf(tmp, sizeof(tmp), "?");
    }

    if (prefix == full) {
        snprintf(buf, size, "%s", tmp);
    } else {
        snprintf(buf, size, "%s/%u", tmp, prefix);
    }
    return strlen(buf);
}


/*
 * Reads a whole policy file into a malloc'd, NUL-terminated buffer that
 * the caller frees; refuses files over POL_MAX_FILE_SIZE.
 */
int
pol_read_file(const char *path, char **text, size_t *len, pol_diags_t *diags)
{
    struct stat   st;
    char         *buf;
    size_t        n;
    ssize_t       r;
    int           fd;

    *text = NULL;
    *len = 0;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        pol_diag_add(diags, 0, path, 0, 0, "cannot open: %s",
                     strerror(errno));
        return -1;
    }

    if (fstat(fd, &st) != 0) {
        pol_diag_add(diags, 0, path, 0, 0, "cannot stat: %s",
                     strerror(errno));
        close(fd);
        return -1;
    }

    if (!S_ISREG(st.st_mode)) {
        pol_diag_add(diags, 0, path, 0, 0, "not a regular file");
        close(fd);
        return -1;
    }

    if (st.st_size > (off_t) POL_MAX_FILE_SIZE) {
        pol_diag_add(diags, 0, path, 0, 0,
                     "file is larger than 4 MiB; refusing to load it");
        close(fd);
        return -1;
    }

    buf = malloc(POL_MAX_FILE_SIZE + 1);
    if (buf == NULL) {
        pol_diag_add(diags, 0, path, 0, 0, "out of memory");
        close(fd);
        return -1;
    }

    n = 0;
    for ( ;; ) {
        r = read(fd, buf + n, POL_MAX_FILE_SIZE + 1 - n);
        if (r < 0) {
            if (errno == EINTR) {
                continue;
            }
            pol_diag_add(diags, 0, path, 0, 0, "cannot read: %s",
                         strerror(errno));
            free(buf);
            close(fd);
            return -1;
        }
        if (r == 0) {
            break;
        }
        n += (size_t) r;
        if (n > POL_MAX_FILE_SIZE) {
            /* the file grew since fstat */
            pol_diag_add(diags, 0, path, 0, 0,
                         "file is larger than 4 MiB; refusing to load it");
            free(buf);
            close(fd);
            return -1;
        }
    }

    close(fd);
    buf[n] = '\0';
    *text = buf;
    *len = n;
    return 0;
}


static int pol_name_cmp(const void *a, const void *b);


static int
pol_name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *) a, *(char *const *) b);
}


/*
 * Lists "path/name" for every regular entry of directory path whose name
 * ends in ext, sorted byte-wise.  The caller frees with pol_free_list().
 */
int
pol_list_dir(const char *path, const char *ext, char ***names, size_t *n,
    pol_diags_t *diags)
{
    DIR             *dir;
    struct dirent   *de;
    char           **list, **nl, *full;
    size_t           cnt, cap, nlen, elen, plen;

    *names = NULL;
    *n = 0;

    dir = opendir(path);
    if (dir == NULL) {
        pol_diag_add(diags, 0, path, 0, 0, "cannot open directory: %s",
                     strerror(errno));
        return -1;
    }

    list = NULL;
    cnt = 0;
    cap = 0;
    elen = strlen(ext);
    plen = strlen(path);

    while ((de = readdir(dir)) != NULL) {
        nlen = strlen(de->d_name);
        if (de->d_name[0] == '.' || nlen <= elen
            || strcmp(de->d_name + nlen - elen, ext) != 0)
        {
            continue;
        }

        if (cnt == cap) {
            cap = cap ? cap * 2 : 16;
            nl = realloc(list, cap * sizeof(char *));
            if (nl == NULL) {
                goto nomem;
            }
            list = nl;
        }

        full = malloc(plen + nlen + 2);
        if (full == NULL) {
            goto nomem;
        }
        memcpy(full, path, plen);
        if (plen > 0 && path[plen - 1] == '/') {
            memcpy(full + plen, de->d_name, nlen + 1);
        } else {
            full[plen] = '/';
            memcpy(full + plen + 1, de->d_name, nlen + 1);
        }
        list[cnt++] = full;
    }

    closedir(dir);

    if (cnt > 1) {
        qsort(list, cnt, sizeof(char *), pol_name_cmp);
    }

    *names = list;
    *n = cnt;
    return 0;

nomem:

    closedir(dir);
    pol_free_list(list, cnt);
    pol_diag_add(diags, 0, path, 0, 0, "out of memory");
    return -1;
}


void
pol_free_list(char **names, size_t n)
{
    size_t  i;

    for (i = 0; i < n; i++) {
        free(names[i]);
    }
    free(names);
}


const char *
pol_outcome_name(pol_outcome_t o)
{
    switch (o) {
    case POL_ALLOW:
        return "allow";
    case POL_DENY:
        return "deny";
    case POL_LOGIN:
        return "login";
    case POL_STEP_UP:
        return "step-up";
    default:
        return "unknown";
    }
}
