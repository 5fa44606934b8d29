/*
 * Blocklists.  See blocklist.h.
 *
 * The sealed table is an array of ranges sorted by their first address,
 * with, for each position, the largest last address of all ranges up to
 * it.  A lookup binary-searches the last range starting at or below the
 * address, then walks back only while that running maximum still covers
 * the address: O(log n) plus the ranges that overlap it.
 */

#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "blocklist.h"
#include "log.h"


typedef struct {
    uint8_t     lo[16];
    uint8_t     hi[16];
    uint8_t     maxhi[16];      /* max hi over entries [0..i] */
    int64_t     expires;        /* 0: never */
    unsigned    feed;
} blocklist_entry_t;

struct blocklist_s {
    blocklist_entry_t  *e;
    size_t              n;
    size_t              cap;
    char                feeds[BLOCKLIST_FEEDS_MAX][BLOCKLIST_NAME_MAX];
    unsigned            nfeeds;
    int                 sealed;
};


static void blocklist_seterr(blocklist_err_t *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int blocklist_feed(blocklist_t *bl, const char *feed,
    blocklist_err_t *err);
static int blocklist_cmp(const void *a, const void *b);
static int blocklist_load_file(blocklist_t *bl, const char *feed,
    const char *path, int64_t expires, unsigned *bad, blocklist_err_t *err);
static int blocklist_name_cmp(const void *a, const void *b);


static void
blocklist_seterr(blocklist_err_t *err, const char *fmt, ...)
{
    va_list  ap;

    if (err == NULL) {
        return;
    }

    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
}


int
blocklist_parse_cidr(const char *s, uint8_t lo[16], uint8_t hi[16],
    blocklist_err_t *err)
{
    char           buf[64], *slash, *end;
    uint8_t        a[16];
    unsigned long  plen;
    unsigned       max, i, bits, off;

    if (strlen(s) >= sizeof(buf)) {
        blocklist_seterr(err, "\"%.64s...\": too long for an address", s);
        return -1;
    }

    memcpy(buf, s, strlen(s) + 1);

    slash = strchr(buf, '/');
    if (slash != NULL) {
        *slash++ = '\0';
    }

    memset(a, 0, sizeof(a));

    if (inet_pton(AF_INET, buf, a + 12) == 1) {
        a[10] = 0xff;
        a[11] = 0xff;
        max = 32;
        off = 96;

    } else if (strchr(buf, ':') != NULL && inet_pton(AF_INET6, buf, a) == 1)
    {
        max = 128;
        off = 0;

    } else {
        blocklist_seterr(err, "\"%s\": not an IPv4 or IPv6 address", s);
        return -1;
    }

    plen = max;

    if (slash != NULL) {
        if (!isdigit((unsigned char) *slash)) {
            blocklist_seterr(err, "\"%s\": invalid prefix length", s);
            return -1;
        }

        errno = 0;
        plen = strtoul(slash, &end, 10);
        if (errno != 0 || *end != '\0' || plen > max) {
            blocklist_seterr(err, "\"%s\": prefix length must be 0..%u", s,
                             max);
            return -1;
        }
    }

    bits = off + (unsigned) plen;

    memcpy(lo, a, 16);
    memcpy(hi, a, 16);

    for (i = bits; i < 128; i++) {
        if (lo[i / 8] & (0x80 >> (i % 8))) {
            blocklist_seterr(err, "\"%s\": host bits set below the /%lu "
                             "prefix", s, plen);
            return -1;
        }
        hi[i / 8] |= (uint8_t) (0x80 >> (i % 8));
    }

    return 0;
}


int
blocklist_feed_name_ok(const char *name)
{
    size_t  i;

    for (i = 0; name[i]; i++) {
        if (!((name[i] >= 'a' && name[i] <= 'z')
              || (name[i] >= '0' && name[i] <= '9')
              || name[i] == '.' || name[i] == '_' || name[i] == '-'))
        {
            return 0;
        }
    }

    return i > 0 && i < BLOCKLIST_NAME_MAX;
}


int
blocklist_parse_date(const char *s, int64_t *t)
{
    struct tm  tm;
    char      *end;

    memset(&tm, 0, sizeof(tm));

    end = strptime(s, "%Y-%m-%d", &tm);
    if (end == NULL || *end != '\0' || strlen(s) != 10) {
        return -1;
    }

    tm.tm_hour = 23;
    tm.tm_min = 59;
    tm.tm_sec = 59;

    *t = (int64_t) timegm(&tm);

    return 0;
}


blocklist_t *
blocklist_new(void)
{
    return calloc(1, sizeof(blocklist_t));
}


static int
blocklist_feed(blocklist_t *bl, const char *feed, blocklist_err_t *err)
{
    unsigned  i;

    for (i = 0; i < bl->nfeeds; i++) {
        if (strcmp(bl->feeds[i], feed) == 0) {
            return (int) i;
        }
    }

    if (bl->nfeeds == BLOCKLIST_FEEDS_MAX) {
        blocklist_seterr(err, "too many blocklist feeds (at most %d)",
                         BLOCKLIST_FEEDS_MAX);
        return -1;
    }

    snprintf(bl->feeds[bl->nfeeds], BLOCKLIST_NAME_MAX, "%s", feed);

    return (int) bl->nfeeds++;
}


int
blocklist_add(blocklist_t *bl, const char *feed, const char *cidr,
    int64_t expires, blocklist_err_t *err)
{
    blocklist_entry_t  *e;
    size_t              cap;
    int                 f;

    if (bl->sealed) {
        blocklist_seterr(err, "blocklist already sealed");
        return -1;
    }

    if (bl->n == bl->cap) {
        cap = bl->cap ? bl->cap * 2 : 256;
        e = realloc(bl->e, cap * sizeof(*e));
        if (e == NULL) {
            blocklist_seterr(err, "out of memory");
            return -1;
        }
        bl->e = e;
        bl->cap = cap;
    }

    e = &bl->e[bl->n];

    if (blocklist_parse_cidr(cidr, e->lo, e->hi, err) != 0) {
        return -1;
    }

    f = blocklist_feed(bl, feed, err);
    if (f < 0) {
        return -1;
    }

    e->feed = (unsigned) f;
    e->expires = expires;
    bl->n++;

    return 0;
}


static int
blocklist_load_file(blocklist_t *bl, const char *feed, const char *path,
    int64_t expires, unsigned *bad, blocklist_err_t *err)
{
    FILE      *f;
    char       line[1024], *p, *q;
    unsigned   lineno;
    int        ret;

    f = fopen(path, "r");
    if (f == NULL) {
        blocklist_seterr(err, "%s: %s", path, strerror(errno));
        return -1;
    }

    lineno = 0;
    ret = 0;

    while (fgets(line, sizeof(line), f) != NULL) {
        lineno++;

        if (strchr(line, '\n') == NULL && !feof(f)) {
            log_warn("%s:%u: line too long, skipped", path, lineno);
            (*bad)++;
            while (fgets(line, sizeof(line), f) != NULL
                   && strchr(line, '\n') == NULL)
            {
                /* skip the rest of the line */
            }
            continue;
        }

        p = line;
        while (isspace((unsigned char) *p)) {
            p++;
        }

        q = p + strcspn(p, "#;");
        while (q > p && isspace((unsigned char) q[-1])) {
            q--;
        }
        *q = '\0';

        if (*p == '\0') {
            continue;
        }

        if (blocklist_add(bl, feed, p, expires, err) != 0) {
            if (bl->n == bl->cap || bl->nfeeds == BLOCKLIST_FEEDS_MAX) {
                /* out of memory or feeds: not the line's fault */
                ret = -1;
                break;
            }
            log_warn("%s:%u: %s, skipped", path, lineno, err->msg);
            (*bad)++;
        }
    }

    if (ret == 0 && ferror(f)) {
        blocklist_seterr(err, "%s: read error", path);
        ret = -1;
    }

    fclose(f);

    return ret;
}


static int
blocklist_name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *) a, *(char *const *) b);
}


int
blocklist_load(blocklist_t *bl, const char *feed, const char *path,
    int64_t expires, unsigned *bad, blocklist_err_t *err)
{
    struct stat     sb;
    struct dirent  *de;
    DIR            *d;
    char          **names, **nn, file[4096];
    size_t          n, cap, i;
    unsigned        dummy;
    int             ret;

    if (bad == NULL) {
        bad = &dummy;
    }
    *bad = 0;

    if (stat(path, &sb) != 0) {
        blocklist_seterr(err, "%s: %s", path, strerror(errno));
        return -1;
    }

    if (!S_ISDIR(sb.st_mode)) {
        return blocklist_load_file(bl, feed, path, expires, bad, err);
    }

    d = opendir(path);
    if (d == NULL) {
        blocklist_seterr(err, "%s: %s", path, strerror(errno));
        return -1;
    }

    names = NULL;
    n = 0;
    cap = 0;
    ret = 0;

    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.') {
            continue;
        }

        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            nn = realloc(names, cap * sizeof(*names));
            if (nn == NULL) {
                blocklist_seterr(err, "out of memory");
                ret = -1;
                goto done;
            }
            names = nn;
        }

        names[n] = strdup(de->d_name);
        if (names[n] == NULL) {
            blocklist_seterr(err, "out of memory");
            ret = -1;
            goto done;
        }
        n++;
    }

    if (n > 0) {
        qsort(names, n, sizeof(*names), blocklist_name_cmp);
    }

    for (i = 0; i < n; i++) {
        snprintf(file, sizeof(file), "%s/%s", path, names[i]);

        if (stat(file, &sb) != 0 || !S_ISREG(sb.st_mode)) {
            continue;
        }

        if (blocklist_load_file(bl, feed, file, expires, bad, err) != 0) {
            ret = -1;
            goto done;
        }
    }

done:

    for (i = 0; i < n; i++) {
        free(names[i]);
    }
    free(names);
    closedir(d);

    return ret;
}


static int
blocklist_cmp(const void *a, const void *b)
{
    const blocklist_entry_t  *x = a, *y = b;

    return memcmp(x->lo, y->lo, 16);
}


void
blocklist_seal(blocklist_t *bl)
{
    size_t  i;

    if (bl->n > 0) {
        qsort(bl->e, bl->n, sizeof(*bl->e), blocklist_cmp);
    }

    for (i = 0; i < bl->n; i++) {
        if (i == 0 || memcmp(bl->e[i].hi, bl->e[i - 1].maxhi, 16) > 0) {
            memcpy(bl->e[i].maxhi, bl->e[i].hi, 16);
        } else {
            memcpy(bl->e[i].maxhi, bl->e[i - 1].maxhi, 16);
        }
    }

    bl->sealed = 1;
}


int
blocklist_lookup(const blocklist_t *bl, int family, const uint8_t *addr,
    int64_t now, const char **feed)
{
    const blocklist_entry_t  *e;
    uint8_t                   a[16];
    size_t                    lo, hi, mid, i;

    if (bl == NULL || !bl->sealed || bl->n == 0) {
        return 0;
    }

    if (family == 4) {
        memset(a, 0, 10);
        a[10] = 0xff;
        a[11] = 0xff;
        memcpy(a + 12, addr, 4);

    } else if (family == 6) {
        memcpy(a, addr, 16);

    } else {
        return 0;
    }

    /* the number of entries whose lo <= a */
    lo = 0;
    hi = bl->n;
    while (lo < hi) {
        mid = lo + (hi - lo) / 2;
        if (memcmp(bl->e[mid].lo, a, 16) <= 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }

    for (i = lo; i > 0; i--) {
        e = &bl->e[i - 1];

        if (memcmp(e->maxhi, a, 16) < 0) {
            break;
        }

        if (memcmp(e->hi, a, 16) >= 0
            && (e->expires == 0 || e->expires > now))
        {
            if (feed != NULL) {
                *feed = bl->feeds[e->feed];
            }
            return 1;
        }
    }

    return 0;
}


size_t
blocklist_count(const blocklist_t *bl)
{
    return bl ? bl->n : 0;
}


void
blocklist_free(blocklist_t *bl)
{
    if (bl == NULL) {
        return;
    }

    free(bl->e);
    free(bl);
}
