/*
 * The journal's canonical JSON form and its hash.  See journal_fmt.h.
 */

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "journal_fmt.h"
#include "score.h"
#include "zt_wire.h"


typedef struct {
    char    *p;
    char    *end;
    int      overflow;
} journal_buf_t;


static void journal_put(journal_buf_t *b, const char *s, size_t len);
static void journal_puts(journal_buf_t *b, const char *s);
static void journal_putf(journal_buf_t *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void journal_put_str(journal_buf_t *b, const char *name,
    const char *value);
static size_t journal_utf8_len(const unsigned char *s);
static void journal_put_points(journal_buf_t *b, int tenths);


size_t
journal_json(const store_audit_t *rec, int with_hash, char *buf,
    size_t size)
{
    journal_buf_t           b;
    const store_decision_t *d;
    char                    when[32], hex[2 * STORE_HASH_LEN + 1];
    unsigned                i;
    int                     first;

    if (size == 0) {
        return 0;
    }

    b.p = buf;
    b.end = buf + size - 1;         /* room for the NUL */
    b.overflow = 0;

    journal_time(rec->time_ms, when, sizeof(when));
    journal_putf(&b, "{\"v\":%d,\"seq\":%llu", JOURNAL_FORMAT,
                 (unsigned long long) rec->seq);
    journal_put_str(&b, "time", when);
    journal_put_str(&b, "kind", journal_kind_name(rec->kind));

    if (rec->kind == STORE_AUDIT_DECISION) {
        d = &rec->d;
        journal_put_str(&b, "outcome", wire_decision_name(d->outcome));
        journal_putf(&b, ",\"status\":%u,\"ttl_ms\":%u,\"count\":%u",
                     (unsigned) d->status, (unsigned) d->ttl_ms,
                     (unsigned) d->count);
        journal_put_str(&b, "method", d->method);
        journal_put_str(&b, "host", d->host);
        journal_put_str(&b, "path", d->path);
        journal_put_str(&b, "source", d->source);
        journal_put_str(&b, "user", d->user);
        journal_put_str(&b, "session", d->session);
        journal_put_str(&b, "device", d->device);
        journal_put_str(&b, "device_fp", d->device_fp);
        journal_put_str(&b, "app", d->app);
        journal_put_str(&b, "rule", d->rule);
        journal_put_str(&b, "where", d->where);
        journal_put_str(&b, "reason", d->reason);
        journal_put_str(&b, "policy", d->policy);

        if (d->score < 0) {
            journal_puts(&b, ",\"score\":null");
        } else {
            journal_putf(&b, ",\"score\":%d", (int) d->score);
        }

        journal_puts(&b, ",\"signals\":{");
        first = 1;

        for (i = 0; i < d->nsignals && i < STORE_DECISION_SIGNALS
                    && i < SCORE_NSIGNALS; i++)
        {
            journal_putf(&b, "%s\"%s\":{\"value\":%u,\"points\":",
                         first ? "" : ",",
                         score_signal_name((score_signal_t) i),
                         (unsigned) d->value[i]);
            journal_put_points(&b, d->points[i]);
            journal_puts(&b, "}");
            first = 0;
        }

        journal_puts(&b, "}");

    } else {
        journal_put_str(&b, "actor", rec->actor);
        journal_put_str(&b, "action", rec->action);
        journal_put_str(&b, "subject", rec->subject);
        journal_put_str(&b, "detail", rec->detail);
    }

    journal_hex(rec->prev, STORE_HASH_LEN, hex);
    journal_put_str(&b, "prev", hex);

    if (with_hash) {
        journal_hex(rec->hash, STORE_HASH_LEN, hex);
        journal_put_str(&b, "hash", hex);
    }

    journal_puts(&b, "}");

    if (b.overflow) {
        buf[0] = '\0';
        return 0;
    }

    *b.p = '\0';

    return (size_t) (b.p - buf);
}


int
journal_hash(const store_audit_t *rec, uint8_t out[STORE_HASH_LEN])
{
    char    line[JOURNAL_JSON_MAX];
    size_t  len;

    len = journal_json(rec, 0, line, sizeof(line));
    if (len == 0) {
        return -1;
    }

    return journal_sha256(line, len, out);
}


int
journal_sha256(const void *data, size_t len, uint8_t out[STORE_HASH_LEN])
{
    unsigned int  n;

    n = 0;

    if (EVP_Digest(data, len, out, &n, EVP_sha256(), NULL) != 1
        || n != STORE_HASH_LEN)
    {
        return -1;
    }

    return 0;
}


void
journal_hex(const uint8_t *p, size_t n, char *out)
{
    static const char  digits[] = "0123456789abcdef";
    size_t             i;

    for (i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 0x0f];
    }

    out[2 * n] = '\0';
}


int
journal_unhex(const char *s, size_t len, uint8_t out[STORE_HASH_LEN])
{
    size_t  i;
    int     hi, lo;

    if (len != 2 * STORE_HASH_LEN) {
        return -1;
    }

    for (i = 0; i < STORE_HASH_LEN; i++) {
        hi = s[2 * i];
        lo = s[2 * i + 1];

        hi = hi >= '0' && hi <= '9' ? hi - '0'
             : hi >= 'a' && hi <= 'f' ? hi - 'a' + 10 : -1;
        lo = lo >= '0' && lo <= '9' ? lo - '0'
             : lo >= 'a' && lo <= 'f' ? lo - 'a' + 10 : -1;

        if (hi < 0 || lo < 0) {
            return -1;
        }

        out[i] = (uint8_t) (hi << 4 | lo);
    }

    return 0;
}


void
journal_time(int64_t ms, char *out, size_t size)
{
    struct tm  tm;
    time_t     t;
    int64_t    frac;

    t = (time_t) (ms / 1000);
    frac = ms % 1000;
    if (frac < 0) {
        frac += 1000;
        t--;
    }

    if (gmtime_r(&t, &tm) == NULL) {
        snprintf(out, size, "invalid");
        return;
    }

    snprintf(out, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
             tm.tm_min, tm.tm_sec, (int) frac);
}


const char *
journal_kind_name(int kind)
{
    return kind == STORE_AUDIT_DECISION ? "decision" : "action";
}


static void
journal_put(journal_buf_t *b, const char *s, size_t len)
{
    if (b->overflow || (size_t) (b->end - b->p) < len) {
        b->overflow = 1;
        return;
    }

    memcpy(b->p, s, len);
    b->p += len;
}


static void
journal_puts(journal_buf_t *b, const char *s)
{
    journal_put(b, s, strlen(s));
}


static void
journal_putf(journal_buf_t *b, const char *fmt, ...)
{
    va_list  ap;
    char     tmp[256];
    int      n;

    va_start(ap, fmt);
    n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);

    if (n < 0 || (size_t) n >= sizeof(tmp)) {
        b->overflow = 1;
        return;
    }

    journal_put(b, tmp, (size_t) n);
}


/*
 * ,"name":"value" -- quotes, backslashes and control characters escaped,
 * valid UTF-8 kept, and every byte of an invalid sequence written as
 * \ufffd, so that the line is always valid JSON and renders the same.
 */
static void
journal_put_str(journal_buf_t *b, const char *name, const char *value)
{
    const unsigned char  *s;
    char                  esc[8];
    size_t                n;

    journal_puts(b, ",\"");
    journal_puts(b, name);
    journal_puts(b, "\":\"");

    for (s = (const unsigned char *) value; *s != '\0'; ) {
        if (*s == '"' || *s == '\\') {
            esc[0] = '\\';
            esc[1] = (char) *s;
            journal_put(b, esc, 2);
            s++;

        } else if (*s < 0x20 || *s == 0x7f) {
            snprintf(esc, sizeof(esc), "\\u%04x", *s);
            journal_put(b, esc, 6);
            s++;

        } else if (*s < 0x80) {
            journal_put(b, (const char *) s, 1);
            s++;

        } else {
            n = journal_utf8_len(s);
            if (n == 0) {
                journal_puts(b, "\\ufffd");
                s++;
            } else {
                journal_put(b, (const char *) s, n);
                s += n;
            }
        }
    }

    journal_puts(b, "\"");
}


/* The length of the valid UTF-8 sequence at s (lead byte >= 0x80), or 0. */
static size_t
journal_utf8_len(const unsigned char *s)
{
    size_t    n, i;
    unsigned  cp, min;

    if (s[0] >= 0xc2 && s[0] <= 0xdf) {
        n = 2; cp = s[0] & 0x1f; min = 0x80;
    } else if (s[0] >= 0xe0 && s[0] <= 0xef) {
        n = 3; cp = s[0] & 0x0f; min = 0x800;
    } else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
        n = 4; cp = s[0] & 0x07; min = 0x10000;
    } else {
        return 0;
    }

    for (i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80) {
            return 0;
        }
        cp = cp << 6 | (s[i] & 0x3f);
    }

    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
        return 0;
    }

    return n;
}


/* A signed number of tenths as "-1.5", "0.0", "12.0". */
static void
journal_put_points(journal_buf_t *b, int tenths)
{
    int  a;

    a = tenths < 0 ? -tenths : tenths;
    journal_putf(b, "%s%d.%d", tenths < 0 ? "-" : "", a / 10, a % 10);
}
