/*
 * Pure helpers of the sign-in portal: next-URL validation, form and
 * cookie parsing, the per-source attempt limiter, posture report
 * checking.  No I/O, no locks, no allocation (but the JSON parser's own,
 * inside portal_posture_parse()).  See portal.h.
 */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "portal.h"


static int portal_hexval(int c);
static int portal_bad_byte(unsigned char c);
static int portal_path_ok(const char *next, size_t len);
static int portal_https_ok(const char *next, size_t len,
    const char (*hosts)[256], size_t nhosts);
static int portal_decode(const char *s, size_t len, int plus, char *out,
    size_t size);
static uint32_t portal_hash(const char *s);
static void portal_fmt(char *err, size_t errsize, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void portal_field_name(const char *key, char *out, size_t size);
static int portal_posture_text(json_t *v, const char *name, char *out,
    size_t size, char *err, size_t errsize);
static int portal_posture_flag(json_t *v, const char *name,
    store_flag_t *out, char *err, size_t errsize);
static int portal_posture_time(json_t *v, const char *name, int64_t min,
    int64_t *out, char *err, size_t errsize);


static int
portal_hexval(int c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }

    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }

    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }

    return -1;
}


/* Bytes never accepted in a redirect target: controls, space, backslash. */
static int
portal_bad_byte(unsigned char c)
{
    return c <= 0x20 || c == 0x7f || c == '\\';
}


int
portal_next_ok(const char *next, size_t len, const char (*hosts)[256],
    size_t nhosts)
{
    size_t  i;

    if (next == NULL || len == 0 || len > PORTAL_NEXT_MAX) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        if (portal_bad_byte((unsigned char) next[i])) {
            return 0;
        }
    }

    if (next[0] == '/') {
        return portal_path_ok(next, len);
    }

    return portal_https_ok(next, len, hosts, nhosts);
}


/*
 * A local path.  The path part (up to "?" or "#") is percent-decoded once
 * and checked again, so that "/%2F%2Fevil" or "/%5Cevil" cannot become a
 * protocol-relative URL in a component that decodes before redirecting.
 * Malformed escapes refuse it.
 */
static int
portal_path_ok(const char *next, size_t len)
{
    size_t  i, plen, n;
    int     hi, lo;
    char    c, prev;

    if (len >= 2 && next[1] == '/') {
        return 0;
    }

    for (plen = 0; plen < len; plen++) {
        if (next[plen] == '?' || next[plen] == '#') {
            break;
        }
    }

    prev = 0;
    n = 0;

    for (i = 0; i < plen; i++) {
        c = next[i];

        if (c == '%') {
            if (plen - i < 3) {
                return 0;
            }

            hi = portal_hexval((unsigned char) next[i + 1]);
            lo = portal_hexval((unsigned char) next[i + 2]);

            if (hi < 0 || lo < 0) {
                return 0;
            }

            c = (char) (hi * 16 + lo);
            i += 2;

            if (portal_bad_byte((unsigned char) c)) {
                return 0;
            }
        }

        /* decoded: the second character may not be "/" */
        if (n == 1 && prev == '/' && c == '/') {
            return 0;
        }

        prev = c;
        n++;
    }

    return 1;
}


/*
 * "https://" host[:port] then end, "/", "?" or "#".  The authority is
 * compared with the configured hosts as a whole, so userinfo ("@"), a
 * different port or a longer name all fail.
 */
static int
portal_https_ok(const char *next, size_t len, const char (*hosts)[256],
    size_t nhosts)
{
    const char  *auth;
    size_t       alen, i;

    if (len < 9 || strncasecmp(next, "https://", 8) != 0) {
        return 0;
    }

    auth = next + 8;

    for (alen = 0; 8 + alen < len; alen++) {
        if (auth[alen] == '/' || auth[alen] == '?' || auth[alen] == '#') {
            break;
        }

        if (auth[alen] == '@' || auth[alen] == '%') {
            return 0;
        }
    }

    if (alen == 0) {
        return 0;
    }

    for (i = 0; i < nhosts; i++) {
        if (strlen(hosts[i]) == alen
            && strncasecmp(hosts[i], auth, alen) == 0)
        {
            return 1;
        }
    }

    return 0;
}


/*
 * Decode len bytes of s (%XX, and "+" as a space when plus is set) into
 * out.  Returns the decoded length, or -1 for a malformed escape, a NUL,
 * or output that does not fit with its terminating NUL.
 */
static int
portal_decode(const char *s, size_t len, int plus, char *out, size_t size)
{
    size_t  i, n;
    int     hi, lo;
    char    c;

    n = 0;

    for (i = 0; i < len; i++) {
        c = s[i];

        if (c == '%') {
            if (len - i < 3) {
                return -1;
            }

            hi = portal_hexval((unsigned char) s[i + 1]);
            lo = portal_hexval((unsigned char) s[i + 2]);

            if (hi < 0 || lo < 0) {
                return -1;
            }

            c = (char) (hi * 16 + lo);
            i += 2;

        } else if (c == '+' && plus) {
            c = ' ';
        }

        if (c == '\0' || n + 1 >= size) {
            return -1;
        }

        out[n++] = c;
    }

    if (size == 0) {
        return -1;
    }

    out[n] = '\0';

    return (int) n;
}


int
portal_form_get(const char *body, size_t len, const char *name, char *out,
    size_t size)
{
    const char  *p, *end, *amp, *eq;
    char         key[64];
    int          found, klen;

    found = 0;
    p = body;
    end = body + len;

    if (size > 0) {
        out[0] = '\0';
    }

    while (p < end) {
        amp = memchr(p, '&', (size_t) (end - p));
        if (amp == NULL) {
            amp = end;
        }

        eq = memchr(p, '=', (size_t) (amp - p));
        if (eq == NULL) {
            eq = amp;
        }

        klen = portal_decode(p, (size_t) (eq - p), 1, key, sizeof(key));

        if (klen > 0 && strcmp(key, name) == 0) {
            if (found) {
                out[0] = '\0';
                return PORTAL_INVALID;
            }

            found = 1;

            if (eq == amp) {
                if (size == 0) {
                    return PORTAL_INVALID;
                }
                out[0] = '\0';

            } else if (portal_decode(eq + 1, (size_t) (amp - eq - 1), 1,
                                     out, size)
                       < 0)
            {
                if (size > 0) {
                    out[0] = '\0';
                }
                return PORTAL_INVALID;
            }
        }

        p = amp + 1;
    }

    return found ? PORTAL_FOUND : PORTAL_MISSING;
}


int
portal_cookie_get(const char *header, const char *name, char *out,
    size_t size, unsigned *count)
{
    const char  *p, *semi, *eq, *v, *vend;
    size_t       nlen, vlen;
    int          rc;

    rc = PORTAL_MISSING;
    nlen = strlen(name);
    p = header;

    while (p != NULL && *p != '\0') {
        while (*p == ' ' || *p == '\t' || *p == ';') {
            p++;
        }

        semi = strchr(p, ';');
        if (semi == NULL) {
            semi = p + strlen(p);
        }

        eq = memchr(p, '=', (size_t) (semi - p));

        if (eq != NULL && (size_t) (eq - p) == nlen
            && memcmp(p, name, nlen) == 0)
        {
            if (count != NULL) {
                (*count)++;
            }

            if (rc != PORTAL_MISSING) {
                rc = PORTAL_INVALID;

            } else {
                v = eq + 1;
                vend = semi;

                while (vend > v && (vend[-1] == ' ' || vend[-1] == '\t')) {
                    vend--;
                }

                if (vend - v >= 2 && v[0] == '"' && vend[-1] == '"') {
                    v++;
                    vend--;
                }

                vlen = (size_t) (vend - v);

                if (vlen + 1 > size) {
                    rc = PORTAL_INVALID;

                } else {
                    memcpy(out, v, vlen);
                    out[vlen] = '\0';
                    rc = PORTAL_FOUND;
                }
            }
        }

        p = semi;
    }

    if (rc != PORTAL_FOUND && size > 0) {
        out[0] = '\0';
    }

    return rc;
}


int
portal_url_encode(const char *s, char *out, size_t size)
{
    static const char  hex[] = "0123456789ABCDEF";
    size_t             n;
    unsigned char      c;

    n = 0;

    for (; *s != '\0'; s++) {
        c = (unsigned char) *s;

        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
            || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_'
            || c == '~')
        {
            if (n + 1 >= size) {
                return -1;
            }
            out[n++] = (char) c;

        } else {
            if (n + 3 >= size) {
                return -1;
            }
            out[n++] = '%';
            out[n++] = hex[c >> 4];
            out[n++] = hex[c & 0x0f];
        }
    }

    if (size == 0) {
        return -1;
    }

    out[n] = '\0';

    return 0;
}


int
portal_is_hex(const char *s, size_t n)
{
    size_t  i;

    for (i = 0; i < n; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) {
            return 0;
        }
    }

    return s[n] == '\0';
}


int
portal_hex_decode(const char *s, uint8_t *out, size_t n)
{
    size_t  i;
    int     hi, lo;

    for (i = 0; i < n; i++) {
        hi = portal_hexval((unsigned char) s[2 * i]);
        if (hi < 0) {
            return -1;
        }

        lo = portal_hexval((unsigned char) s[2 * i + 1]);
        if (lo < 0) {
            return -1;
        }

        out[i] = (uint8_t) (hi * 16 + lo);
    }

    return 0;
}


int
portal_ct_equal(const void *a, const void *b, size_t len)
{
    const volatile uint8_t  *pa = a;
    const volatile uint8_t  *pb = b;
    uint8_t                  d;
    size_t                   i;

    d = 0;

    for (i = 0; i < len; i++) {
        d |= pa[i] ^ pb[i];
    }

    return d == 0;
}


/* FNV-1a: the table only spreads addresses, it is not a security boundary. */
static uint32_t
portal_hash(const char *s)
{
    uint32_t  h;

    h = 2166136261u;

    for (; *s != '\0'; s++) {
        h ^= (unsigned char) *s;
        h *= 16777619u;
    }

    return h;
}


void
portal_rate_init(portal_rate_t *r)
{
    memset(r, 0, sizeof(*r));
}


int
portal_rate_hit(portal_rate_t *r, const char *source, int64_t now,
    unsigned limit)
{
    portal_rate_slot_t  *s, *free_slot, *oldest;
    uint32_t             h;
    int64_t              window;
    size_t               i;
    char                 key[PORTAL_SOURCE_MAX];

    /* long keys are cut: they still land in a bucket of their own prefix */
    strncpy(key, source, sizeof(key) - 1);
    key[sizeof(key) - 1] = '\0';

    window = now - now % PORTAL_RATE_WINDOW;
    h = portal_hash(key);
    free_slot = NULL;
    oldest = NULL;
    s = NULL;

    for (i = 0; i < PORTAL_RATE_PROBES; i++) {
        s = &r->slots[(h + i) % PORTAL_RATE_SLOTS];

        if (s->key[0] != '\0' && strcmp(s->key, key) == 0) {
            break;
        }

        if (free_slot == NULL
            && (s->key[0] == '\0' || s->window != window))
        {
            free_slot = s;
        }

        if (oldest == NULL || s->window < oldest->window) {
            oldest = s;
        }

        s = NULL;
    }

    if (s == NULL) {
        s = (free_slot != NULL) ? free_slot : oldest;
        memcpy(s->key, key, sizeof(key));
        s->window = window;
        s->count = 0;
    }

    if (s->window != window) {
        s->window = window;
        s->count = 0;
    }

    if (s->count >= limit) {
        return 0;
    }

    s->count++;

    return 1;
}


/* ---- posture reports ------------------------------------------------ */


static void
portal_fmt(char *err, size_t errsize, const char *fmt, ...)
{
    va_list  ap;

    if (err == NULL || errsize == 0) {
        return;
    }

    va_start(ap, fmt);
    vsnprintf(err, errsize, fmt, ap);
    va_end(ap);
}


/* A member name from the network, safe to quote: printable, short. */
static void
portal_field_name(const char *key, char *out, size_t size)
{
    size_t  i;

    for (i = 0; key[i] != '\0' && i + 1 < size; i++) {
        out[i] = ((unsigned char) key[i] < 0x20
                  || (unsigned char) key[i] > 0x7e
                  || key[i] == '"' || key[i] == '\\')
                 ? '?' : key[i];
    }

    out[i] = '\0';
}


static int
portal_posture_text(json_t *v, const char *name, char *out, size_t size,
    char *err, size_t errsize)
{
    const char  *s;
    size_t       i, len;

    if (!json_is_string(v)) {
        portal_fmt(err, errsize, "field \"%s\" must be a string", name);
        return -1;
    }

    s = json_string_value(v);
    len = json_string_length(v);

    if (len >= size) {
        portal_fmt(err, errsize, "field \"%s\" is longer than %zu bytes",
                   name, size - 1);
        return -1;
    }

    for (i = 0; i < len; i++) {
        if ((unsigned char) s[i] < 0x20 || (unsigned char) s[i] > 0x7e) {
            portal_fmt(err, errsize, "field \"%s\" must be printable "
                       "ASCII", name);
            return -1;
        }
    }

    memcpy(out, s, len);
    out[len] = '\0';

    return 0;
}


static int
portal_posture_flag(json_t *v, const char *name, store_flag_t *out,
    char *err, size_t errsize)
{
    if (json_is_null(v)) {
        *out = STORE_FLAG_UNREPORTED;
        return 0;
    }

    if (!json_is_boolean(v)) {
        portal_fmt(err, errsize, "field \"%s\" must be true, false or "
                   "null", name);
        return -1;
    }

    *out = json_is_true(v) ? STORE_FLAG_TRUE : STORE_FLAG_FALSE;

    return 0;
}


static int
portal_posture_time(json_t *v, const char *name, int64_t min, int64_t *out,
    char *err, size_t errsize)
{
    json_int_t  t;

    if (min == 0 && json_is_null(v)) {
        *out = 0;
        return 0;
    }

    if (!json_is_integer(v)) {
        portal_fmt(err, errsize, "field \"%s\" must be an integer (unix "
                   "seconds)", name);
        return -1;
    }

    t = json_integer_value(v);

    if (t < min || t > PORTAL_TIME_MAX) {
        portal_fmt(err, errsize, "field \"%s\" is out of range (%lld to "
                   "%lld)", name, (long long) min,
                   (long long) PORTAL_TIME_MAX);
        return -1;
    }

    *out = (int64_t) t;

    return 0;
}


int
portal_posture_parse(const char *json, size_t len, store_posture_t *out,
    char *err, size_t errsize)
{
    json_t        *root, *v;
    json_error_t   jerr;
    const char    *key;
    char           name[40];
    int            rc, have_reported;

    memset(out, 0, sizeof(*out));

    if (len > PORTAL_POSTURE_MAX) {
        portal_fmt(err, errsize, "report larger than %d bytes",
                   PORTAL_POSTURE_MAX);
        return -1;
    }

    /* no NUL inside strings (jansson's default), no duplicate members */
    root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        portal_fmt(err, errsize, "malformed JSON at line %d column %d: "
                   "%.120s", jerr.line, jerr.column, jerr.text);
        return -1;
    }

    rc = -1;
    have_reported = 0;

    if (!json_is_object(root)) {
        portal_fmt(err, errsize, "a report must be a JSON object");
        goto done;
    }

    json_object_foreach(root, key, v) {
        portal_field_name(key, name, sizeof(name));

        if (strcmp(key, "os") == 0) {
            if (portal_posture_text(v, name, out->os, sizeof(out->os), err,
                                    errsize) != 0)
            {
                goto done;
            }

        } else if (strcmp(key, "os_version") == 0) {
            if (portal_posture_text(v, name, out->os_version,
                                    sizeof(out->os_version), err, errsize)
                != 0)
            {
                goto done;
            }

        } else if (strcmp(key, "patch_time") == 0) {
            if (portal_posture_time(v, name, 0, &out->patch_time, err,
                                    errsize) != 0)
            {
                goto done;
            }

        } else if (strcmp(key, "reported_at") == 0) {
            if (portal_posture_time(v, name, 1, &out->reported_at, err,
                                    errsize) != 0)
            {
                goto done;
            }
            have_reported = 1;

        } else if (strcmp(key, "disk_encrypted") == 0) {
            if (portal_posture_flag(v, name, &out->disk_encrypted, err,
                                    errsize) != 0)
            {
                goto done;
            }

        } else if (strcmp(key, "firewall") == 0) {
            if (portal_posture_flag(v, name, &out->firewall, err, errsize)
                != 0)
            {
                goto done;
            }

        } else if (strcmp(key, "screen_lock") == 0) {
            if (portal_posture_flag(v, name, &out->screen_lock, err,
                                    errsize) != 0)
            {
                goto done;
            }

        } else if (strcmp(key, "endpoint_protection") == 0) {
            if (portal_posture_flag(v, name, &out->endpoint_protection, err,
                                    errsize) != 0)
            {
                goto done;
            }

        } else {
            /* a device or fingerprint member is refused like any other */
            portal_fmt(err, errsize, "unknown field \"%s\"", name);
            goto done;
        }
    }

    if (!have_reported) {
        portal_fmt(err, errsize, "field \"reported_at\" is required");
        goto done;
    }

    snprintf(out->source, sizeof(out->source), "agent");
    rc = 0;

done:

    json_decref(root);

    if (rc != 0) {
        memset(out, 0, sizeof(*out));
    }

    return rc;
}
