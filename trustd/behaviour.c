/*
 * Behaviour state for trust inference.  See behaviour.h.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "behaviour.h"
#include "log.h"


#define BEHAVIOUR_PROBE     8

typedef struct {
    uint64_t    key;            /* 0: free */
    int64_t     bucket;         /* window number of cur */
    double      cur;
    double      prev;
    int64_t     used;           /* for replacement */
} behaviour_slot_t;

typedef struct {
    uint64_t    key;
    int64_t     bucket;         /* rate bucket number of count */
    double      count;
    double      avg;            /* EWMA of past buckets' counts */
    int64_t     used;
} behaviour_rate_t;

struct behaviour_s {
    int64_t             window;         /* seconds */
    behaviour_slot_t    denials[BEHAVIOUR_SLOTS];
    behaviour_rate_t    rates[BEHAVIOUR_SLOTS];
    store_history_t     pending[BEHAVIOUR_PENDING];
    unsigned            npending;
};


static uint64_t behaviour_key(char type, const void *p, size_t n);
static behaviour_slot_t *behaviour_slot(behaviour_t *b, uint64_t key,
    int create, int64_t now);
static double behaviour_count(behaviour_t *b, uint64_t key, int64_t now);
static void behaviour_add(behaviour_t *b, uint64_t key, int64_t now);
static store_history_t *behaviour_pending(behaviour_t *b, const char *user);


static uint64_t
behaviour_key(char type, const void *p, size_t n)
{
    const uint8_t  *s = p;
    uint64_t        h;
    size_t          i;

    h = 14695981039346656037ull;
    h = (h ^ (uint8_t) type) * 1099511628211ull;

    for (i = 0; i < n; i++) {
        h = (h ^ s[i]) * 1099511628211ull;
    }

    return h ? h : 1;
}


behaviour_t *
behaviour_create(uint32_t window_ms)
{
    behaviour_t  *b;

    b = calloc(1, sizeof(*b));
    if (b == NULL) {
        return NULL;
    }

    behaviour_set_window(b, window_ms);

    return b;
}


void
behaviour_set_window(behaviour_t *b, uint32_t window_ms)
{
    b->window = window_ms >= 1000 ? (int64_t) (window_ms / 1000) : 600;
}


void
behaviour_free(behaviour_t *b)
{
    free(b);
}


/* The slot of key; with create, a new or the least recently used one. */
static behaviour_slot_t *
behaviour_slot(behaviour_t *b, uint64_t key, int create, int64_t now)
{
    behaviour_slot_t  *s, *victim;
    unsigned           i;

    victim = NULL;

    for (i = 0; i < BEHAVIOUR_PROBE; i++) {
        s = &b->denials[(key + i) % BEHAVIOUR_SLOTS];

        if (s->key == key) {
            return s;
        }

        if (victim == NULL || s->key == 0 || s->used < victim->used) {
            if (victim == NULL || victim->key != 0) {
                victim = s;
            }
        }
    }

    if (!create) {
        return NULL;
    }

    memset(victim, 0, sizeof(*victim));
    victim->key = key;
    victim->bucket = now / b->window;
    victim->used = now;

    return victim;
}


/* Sliding window: this window's count plus the overlapping share of the
 * previous one. */
static double
behaviour_count(behaviour_t *b, uint64_t key, int64_t now)
{
    behaviour_slot_t  *s;
    int64_t            w;
    double             frac;

    s = behaviour_slot(b, key, 0, now);
    if (s == NULL) {
        return 0.0;
    }

    w = now / b->window;
    frac = 1.0 - (double) (now % b->window) / (double) b->window;

    if (s->bucket == w) {
        return s->cur + s->prev * frac;
    }

    if (s->bucket == w - 1) {
        return s->cur * frac;
    }

    return 0.0;
}


static void
behaviour_add(behaviour_t *b, uint64_t key, int64_t now)
{
    behaviour_slot_t  *s;
    int64_t            w;

    s = behaviour_slot(b, key, 1, now);
    w = now / b->window;

    if (s->bucket != w) {
        s->prev = (s->bucket == w - 1) ? s->cur : 0.0;
        s->cur = 0.0;
        s->bucket = w;
    }

    s->cur += 1.0;
    s->used = now;
}


double
behaviour_denials(behaviour_t *b, const char *sid, const char *fp,
    const uint8_t *addr, int64_t now)
{
    double  n, m;

    m = 0.0;

    if (sid != NULL) {
        n = behaviour_count(b, behaviour_key('s', sid, strlen(sid)), now);
        m = n > m ? n : m;
    }

    if (fp != NULL) {
        n = behaviour_count(b, behaviour_key('d', fp, strlen(fp)), now);
        m = n > m ? n : m;
    }

    if (addr != NULL) {
        n = behaviour_count(b, behaviour_key('a', addr, 16), now);
        m = n > m ? n : m;
    }

    return m;
}


void
behaviour_denied(behaviour_t *b, const char *sid, const char *fp,
    const uint8_t *addr, int64_t now)
{
    if (sid != NULL) {
        behaviour_add(b, behaviour_key('s', sid, strlen(sid)), now);
    }

    if (fp != NULL) {
        behaviour_add(b, behaviour_key('d', fp, strlen(fp)), now);
    }

    if (addr != NULL) {
        behaviour_add(b, behaviour_key('a', addr, 16), now);
    }
}


double
behaviour_rate(behaviour_t *b, const char *sid, int64_t now)
{
    behaviour_rate_t  *r, *victim;
    uint64_t           key;
    int64_t            bucket, gap;
    double             limit;
    unsigned           i;

    key = behaviour_key('r', sid, strlen(sid));
    bucket = now / BEHAVIOUR_RATE_BUCKET;
    r = NULL;
    victim = NULL;

    for (i = 0; i < BEHAVIOUR_PROBE; i++) {
        r = &b->rates[(key + i) % BEHAVIOUR_SLOTS];
        if (r->key == key) {
            break;
        }
        if (victim == NULL || r->key == 0 || r->used < victim->used) {
            if (victim == NULL || victim->key != 0) {
                victim = r;
            }
        }
        r = NULL;
    }

    if (r == NULL) {
        r = victim;
        memset(r, 0, sizeof(*r));
        r->key = key;
        r->bucket = bucket;
    }

    if (r->bucket != bucket) {
        /* fold the finished bucket, then the empty ones since */
        r->avg = 0.8 * r->avg + 0.2 * r->count;
        gap = bucket - r->bucket - 1;
        for (; gap > 0 && r->avg > 0.01; gap--) {
            r->avg *= 0.8;
        }
        r->count = 0.0;
        r->bucket = bucket;
    }

    r->count += 1.0;
    r->used = now;

    limit = 3.0 * r->avg;
    if (limit < BEHAVIOUR_RATE_FLOOR) {
        limit = BEHAVIOUR_RATE_FLOOR;
    }

    if (r->count <= limit) {
        return 0.0;
    }

    return r->count >= 2.0 * limit ? 1.0 : (r->count - limit) / limit;
}


static store_history_t *
behaviour_pending(behaviour_t *b, const char *user)
{
    unsigned  i;

    for (i = 0; i < b->npending; i++) {
        if (strcmp(b->pending[i].user, user) == 0) {
            return &b->pending[i];
        }
    }

    return NULL;
}


const store_history_t *
behaviour_history(behaviour_t *b, const char *user,
    const store_history_t *stored)
{
    const store_history_t  *h;

    h = behaviour_pending(b, user);

    return h != NULL ? h : stored;
}


int
behaviour_new_address(const store_history_t *h, const uint8_t *addr,
    int64_t now)
{
    unsigned  i;

    if (h == NULL) {
        return 1;
    }

    for (i = 0; i < h->naddrs && i < STORE_HISTORY_ADDRS; i++) {
        if (memcmp(h->addrs[i].addr, addr, 16) == 0
            && h->addrs[i].last_seen + BEHAVIOUR_HISTORY_TTL > now)
        {
            return 0;
        }
    }

    return 1;
}


double
behaviour_unusual_time(const store_history_t *h, int64_t now)
{
    struct tm  tm;
    time_t     t;
    uint64_t   total;
    double     v;
    unsigned   i;

    if (h == NULL) {
        return 0.0;
    }

    total = 0;
    for (i = 0; i < 24; i++) {
        total += h->hours[i];
    }

    if (total < BEHAVIOUR_TIME_MIN) {
        return 0.0;
    }

    t = (time_t) now;
    gmtime_r(&t, &tm);

    v = 0.0;

    if ((double) h->hours[tm.tm_hour] < 0.05 * (double) total) {
        v += 0.5;
    }

    if ((double) h->days[tm.tm_wday] < 0.05 * (double) total) {
        v += 0.5;
    }

    return v;
}


void
behaviour_seen(behaviour_t *b, const char *user, const store_history_t *base,
    const uint8_t *addr, int64_t now)
{
    store_history_t       *h;
    store_history_addr_t  *a;
    struct tm              tm;
    time_t                 t;
    unsigned               i, j, oldest;

    h = behaviour_pending(b, user);

    if (h == NULL) {
        if (b->npending == BEHAVIOUR_PENDING) {
            log_debug("history of %s not recorded: %u users pending", user,
                      BEHAVIOUR_PENDING);
            return;
        }

        h = &b->pending[b->npending++];

        if (base != NULL && base->updated_at + BEHAVIOUR_HISTORY_TTL > now) {
            *h = *base;
        } else {
            memset(h, 0, sizeof(*h));
        }

        snprintf(h->user, sizeof(h->user), "%s", user);
    }

    /* drop expired addresses, then refresh or add this one */
    for (i = 0, j = 0; i < h->naddrs && i < STORE_HISTORY_ADDRS; i++) {
        if (h->addrs[i].last_seen + BEHAVIOUR_HISTORY_TTL > now) {
            h->addrs[j++] = h->addrs[i];
        }
    }
    h->naddrs = j;

    a = NULL;
    for (i = 0; i < h->naddrs; i++) {
        if (memcmp(h->addrs[i].addr, addr, 16) == 0) {
            a = &h->addrs[i];
            break;
        }
    }

    if (a == NULL) {
        if (h->naddrs < STORE_HISTORY_ADDRS) {
            a = &h->addrs[h->naddrs++];
        } else {
            oldest = 0;
            for (i = 1; i < h->naddrs; i++) {
                if (h->addrs[i].last_seen < h->addrs[oldest].last_seen) {
                    oldest = i;
                }
            }
            a = &h->addrs[oldest];
        }
        memcpy(a->addr, addr, 16);
    }

    a->last_seen = now;

    /* count each hour of activity once per minute at most */
    if (h->updated_at / 60 != now / 60) {
        t = (time_t) now;
        gmtime_r(&t, &tm);
        h->hours[tm.tm_hour]++;
        h->days[tm.tm_wday]++;
    }

    h->updated_at = now;
}


int
behaviour_flush(behaviour_t *b, store_t *st)
{
    store_err_t  err;
    int          rc;

    if (b == NULL || b->npending == 0) {
        return 0;
    }

    rc = store_history_put_batch(st, b->pending, b->npending, &err);
    if (rc != 0) {
        log_error("cannot record user history: %s", err.msg);
    }

    /* written or not, start again from the store: history is advisory */
    b->npending = 0;

    return rc;
}


void
behaviour_flush_with(behaviour_t *b,
    void (*write)(void *arg, const store_history_t *rows, size_t n),
    void *arg)
{
    if (b == NULL || b->npending == 0) {
        return;
    }

    write(arg, b->pending, b->npending);
    b->npending = 0;
}
