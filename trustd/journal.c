/*
 * The decision journal's queue and writer thread.  See journal.h.
 *
 * Two buffers: the decision thread appends to the active one under the
 * mutex (a copy and a fold-table probe); the writer swaps them when the
 * one it holds is empty, and appends that one outside the mutex.  A batch
 * that fails stays with the writer and is retried before anything newer,
 * so the chain keeps the order decisions were queued in.
 */

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "journal.h"
#include "log.h"


#define JOURNAL_LOG_EVERY_MS    60000   /* repeat a failure message */

typedef struct {
    uint64_t    hash;
    uint32_t    idx;                    /* index + 1; 0: empty slot */
} journal_slot_t;

struct journal_s {
    store_t            *st;
    pthread_t           thread;
    pthread_mutex_t     mu;
    pthread_cond_t      cv;
    journal_conf_t      conf;

    store_audit_t      *buf[2];
    uint32_t            len[2];
    uint32_t            cap;
    int                 active;         /* the decision thread's buffer */

    journal_slot_t     *fold;           /* for the active buffer */
    uint32_t            fold_mask;

    int                 stop;
    int                 kicked;
    int                 blocked;        /* read with __atomic_load_n */

    int64_t             next_purge;
    int64_t             failing_since;
    int64_t             last_log;
    int64_t             last_drop_log;

    journal_stats_t     stats;
};


static void *journal_main(void *arg);
static int journal_write(journal_t *j, int w);
static void journal_purge(journal_t *j, int64_t now);
static void journal_update_blocked(journal_t *j);
static uint64_t journal_key(const store_decision_t *d);
static int journal_same(const store_decision_t *a,
    const store_decision_t *b);
static uint64_t journal_fnv(uint64_t h, const char *s);
static int64_t journal_purge_every(const journal_conf_t *conf);


void
journal_conf_default(journal_conf_t *conf)
{
    conf->flush_ms = JOURNAL_DEFAULT_FLUSH_MS;
    conf->queue = JOURNAL_DEFAULT_QUEUE;
    conf->retention_ms = JOURNAL_DEFAULT_RETENTION;
    conf->fail_open = 0;
}


int
journal_start(journal_t **jp, store_t *st, const journal_conf_t *conf,
    char *err, size_t errlen)
{
    journal_t  *j;
    uint32_t    slots;
    int         rc;

    *jp = NULL;

    if (conf->queue == 0 || conf->queue > (1u << 24)) {
        snprintf(err, errlen, "journal queue of %u records is out of range",
                 conf->queue);
        return -1;
    }

    j = calloc(1, sizeof(*j));
    if (j == NULL) {
        snprintf(err, errlen, "out of memory for the decision journal");
        return -1;
    }

    for (slots = 1; slots < 2 * conf->queue; slots <<= 1) {
        /* a power of two at least twice the queue: probes stay short */
    }

    j->st = st;
    j->conf = *conf;
    j->cap = conf->queue;
    j->buf[0] = calloc(j->cap, sizeof(store_audit_t));
    j->buf[1] = calloc(j->cap, sizeof(store_audit_t));
    j->fold = calloc(slots, sizeof(journal_slot_t));
    j->fold_mask = slots - 1;

    if (j->buf[0] == NULL || j->buf[1] == NULL || j->fold == NULL) {
        snprintf(err, errlen, "out of memory for a journal queue of %u "
                 "records", j->cap);
        goto failed;
    }

    j->next_purge = zt_clock_ms(CLOCK_REALTIME) + 1000;

    if (pthread_mutex_init(&j->mu, NULL) != 0) {
        snprintf(err, errlen, "cannot create the journal's mutex");
        goto failed;
    }

    if (pthread_cond_init(&j->cv, NULL) != 0) {
        snprintf(err, errlen, "cannot create the journal's condition");
        pthread_mutex_destroy(&j->mu);
        goto failed;
    }

    rc = pthread_create(&j->thread, NULL, journal_main, j);
    if (rc != 0) {
        snprintf(err, errlen, "cannot start the journal thread: %s",
                 strerror(rc));
        pthread_cond_destroy(&j->cv);
        pthread_mutex_destroy(&j->mu);
        goto failed;
    }

    *jp = j;

    return 0;

failed:

    free(j->buf[0]);
    free(j->buf[1]);
    free(j->fold);
    free(j);

    return -1;
}


void
journal_stop(journal_t *j)
{
    if (j == NULL) {
        return;
    }

    pthread_mutex_lock(&j->mu);
    j->stop = 1;
    pthread_cond_signal(&j->cv);
    pthread_mutex_unlock(&j->mu);

    pthread_join(j->thread, NULL);

    pthread_cond_destroy(&j->cv);
    pthread_mutex_destroy(&j->mu);
    free(j->buf[0]);
    free(j->buf[1]);
    free(j->fold);
    free(j);
}


void
journal_reconf(journal_t *j, const journal_conf_t *conf)
{
    pthread_mutex_lock(&j->mu);
    j->conf.flush_ms = conf->flush_ms;
    j->conf.retention_ms = conf->retention_ms;
    j->conf.fail_open = conf->fail_open;
    j->next_purge = zt_clock_ms(CLOCK_REALTIME);
    journal_update_blocked(j);
    pthread_cond_signal(&j->cv);
    pthread_mutex_unlock(&j->mu);
}


int
journal_add(journal_t *j, const store_audit_t *rec)
{
    journal_slot_t  *slot;
    store_audit_t   *buf;
    uint64_t         h;
    uint32_t         i, n;
    int              a;

    h = journal_key(&rec->d);

    pthread_mutex_lock(&j->mu);

    a = j->active;
    buf = j->buf[a];

    for (i = (uint32_t) h & j->fold_mask; ; i = (i + 1) & j->fold_mask) {
        slot = &j->fold[i];

        if (slot->idx == 0) {
            break;
        }

        if (slot->hash == h && journal_same(&buf[slot->idx - 1].d, &rec->d))
        {
            if (buf[slot->idx - 1].d.count < UINT32_MAX) {
                buf[slot->idx - 1].d.count++;
                j->stats.folded++;
                pthread_mutex_unlock(&j->mu);
                return 0;
            }
            break;
        }
    }

    n = j->len[a];

    if (n >= j->cap) {
        j->stats.dropped++;
        journal_update_blocked(j);
        pthread_cond_signal(&j->cv);
        pthread_mutex_unlock(&j->mu);
        return -1;
    }

    buf[n] = *rec;
    buf[n].d.count = 1;
    j->len[a] = n + 1;
    j->stats.queued++;

    if (slot->idx == 0) {
        slot->hash = h;
        slot->idx = n + 1;
    }

    if (n + 1 == j->cap / 2 || n + 1 == j->cap) {
        j->kicked = 1;
        pthread_cond_signal(&j->cv);
    }

    if (n + 1 == j->cap) {
        journal_update_blocked(j);
    }

    pthread_mutex_unlock(&j->mu);

    return 0;
}


int
journal_blocked(journal_t *j)
{
    return __atomic_load_n(&j->blocked, __ATOMIC_RELAXED);
}


void
journal_kick(journal_t *j)
{
    pthread_mutex_lock(&j->mu);
    j->kicked = 1;
    pthread_cond_signal(&j->cv);
    pthread_mutex_unlock(&j->mu);
}


void
journal_stats(journal_t *j, journal_stats_t *out)
{
    pthread_mutex_lock(&j->mu);
    *out = j->stats;
    out->pending = j->len[0] + j->len[1];
    pthread_mutex_unlock(&j->mu);
}


static void *
journal_main(void *arg)
{
    journal_t        *j = arg;
    struct timespec   deadline;
    int64_t           now;
    int               w, stopping, rc;

    pthread_mutex_lock(&j->mu);

    for ( ;; ) {
        if (!j->stop && !j->kicked) {
            clock_gettime(CLOCK_REALTIME, &deadline);
            deadline.tv_sec += j->conf.flush_ms / 1000;
            deadline.tv_nsec += (long) (j->conf.flush_ms % 1000) * 1000000;
            if (deadline.tv_nsec >= 1000000000) {
                deadline.tv_sec++;
                deadline.tv_nsec -= 1000000000;
            }

            do {
                rc = pthread_cond_timedwait(&j->cv, &j->mu, &deadline);
            } while (rc == 0 && !j->stop && !j->kicked);
        }

        j->kicked = 0;
        stopping = j->stop;
        w = 1 - j->active;

        /* take the active buffer only once the writer's own is written */
        if (j->len[w] == 0 && j->len[j->active] > 0) {
            j->active = w;
            w = 1 - w;
            memset(j->fold, 0, (j->fold_mask + 1) * sizeof(journal_slot_t));
        }

        pthread_mutex_unlock(&j->mu);

        if (j->len[w] > 0) {
            (void) journal_write(j, w);
        }

        now = zt_clock_ms(CLOCK_REALTIME);
        if (!stopping && j->conf.retention_ms > 0 && now >= j->next_purge) {
            journal_purge(j, now);
            j->next_purge = now + journal_purge_every(&j->conf);
        }

        pthread_mutex_lock(&j->mu);
        journal_update_blocked(j);

        if (stopping) {
            break;
        }
    }

    /* last attempt: what the decision thread queued since */
    w = j->active;
    pthread_mutex_unlock(&j->mu);

    if (j->len[1 - w] == 0 || journal_write(j, 1 - w) == 0) {
        if (j->len[w] > 0) {
            (void) journal_write(j, w);
        }
    }

    if (j->len[0] + j->len[1] > 0) {
        log_error("decision journal: %u records could not be written "
                  "before shutdown and are lost: %s",
                  j->len[0] + j->len[1], j->stats.error);
        j->stats.dropped += j->len[0] + j->len[1];
    }

    return NULL;
}


/* Append buffer w (the writer's) to the store.  0 or -1 (kept). */
static int
journal_write(journal_t *j, int w)
{
    store_err_t  err;
    int64_t      now;
    uint32_t     n;

    n = j->len[w];

    if (store_journal_append(j->st, j->buf[w], n, &err) == 0) {
        now = zt_clock_ms(CLOCK_REALTIME);

        pthread_mutex_lock(&j->mu);
        j->len[w] = 0;
        j->stats.written += n;

        if (j->stats.failing) {
            log_warn("decision journal: writing again after %lld ms; "
                     "%u records written", (long long) (now - j->failing_since),
                     n);
            j->stats.failing = 0;
            j->stats.error[0] = '\0';
        }

        journal_update_blocked(j);
        pthread_mutex_unlock(&j->mu);

        return 0;
    }

    now = zt_clock_ms(CLOCK_REALTIME);

    pthread_mutex_lock(&j->mu);
    j->stats.failures++;

    if (!j->stats.failing || now - j->last_log >= JOURNAL_LOG_EVERY_MS) {
        log_error("decision journal: cannot write %u records: %s; %s", n,
                  err.msg,
                  j->conf.fail_open
                  ? "decisions continue unrecorded (journal_failure open)"
                  : "every decision is denied until it can "
                    "(journal_failure closed)");
        j->last_log = now;
    }

    if (!j->stats.failing) {
        j->failing_since = now;
    }

    j->stats.failing = 1;
    snprintf(j->stats.error, sizeof(j->stats.error), "%s", err.msg);
    journal_update_blocked(j);
    pthread_mutex_unlock(&j->mu);

    return -1;
}


/* Retention: remove what is older than retention_ms, in batches. */
static void
journal_purge(journal_t *j, int64_t now)
{
    store_err_t  err;
    size_t       n, total;

    total = 0;

    do {
        if (store_journal_purge(j->st, now - j->conf.retention_ms,
                                JOURNAL_PURGE_BATCH, &n, &err)
            != 0)
        {
            log_error("decision journal: retention: %s", err.msg);
            break;
        }
        total += n;
    } while (n == JOURNAL_PURGE_BATCH);

    if (total > 0) {
        log_info("decision journal: retention removed %zu records", total);
        pthread_mutex_lock(&j->mu);
        j->stats.purged += total;
        pthread_mutex_unlock(&j->mu);
    }
}


/* Called with the mutex held. */
static void
journal_update_blocked(journal_t *j)
{
    int      blocked, full;
    int64_t  now;

    full = j->len[j->active] >= j->cap;
    blocked = !j->conf.fail_open && (j->stats.failing || full);

    if (full && j->stats.dropped > 0) {
        now = zt_clock_ms(CLOCK_REALTIME);
        if (now - j->last_drop_log >= JOURNAL_LOG_EVERY_MS) {
            log_error("decision journal: queue of %u records full; %llu "
                      "decisions not recorded so far", j->cap,
                      (unsigned long long) j->stats.dropped);
            j->last_drop_log = now;
        }
    }

    __atomic_store_n(&j->blocked, blocked, __ATOMIC_RELAXED);
}



/* Purge often enough for short retention (tests), at most every minute. */
static int64_t
journal_purge_every(const journal_conf_t *conf)
{
    int64_t  every;

    every = conf->retention_ms / 2;

    if (every > JOURNAL_PURGE_EVERY_MS) {
        every = JOURNAL_PURGE_EVERY_MS;
    }

    if (every < conf->flush_ms) {
        every = conf->flush_ms;
    }

    return every;
}


/* What makes two decisions the same for folding. */
static uint64_t
journal_key(const store_decision_t *d)
{
    uint64_t  h;

    h = 1469598103934665603ull;
    h ^= (uint64_t) d->outcome << 32 | (uint64_t) d->status << 16
         | (uint16_t) d->score;
    h *= 1099511628211ull;
    h = journal_fnv(h, d->method);
    h = journal_fnv(h, d->host);
    h = journal_fnv(h, d->path);
    h = journal_fnv(h, d->source);
    h = journal_fnv(h, d->user);
    h = journal_fnv(h, d->session);
    h = journal_fnv(h, d->device_fp);
    h = journal_fnv(h, d->rule);

    return h;
}


static int
journal_same(const store_decision_t *a, const store_decision_t *b)
{
    return a->outcome == b->outcome && a->status == b->status
           && a->ttl_ms == b->ttl_ms && a->score == b->score
           && a->nsignals == b->nsignals
           && memcmp(a->value, b->value, a->nsignals) == 0
           && memcmp(a->points, b->points, a->nsignals * sizeof(int16_t))
              == 0
           && strcmp(a->method, b->method) == 0
           && strcmp(a->host, b->host) == 0
           && strcmp(a->path, b->path) == 0
           && strcmp(a->source, b->source) == 0
           && strcmp(a->user, b->user) == 0
           && strcmp(a->session, b->session) == 0
           && strcmp(a->device, b->device) == 0
           && strcmp(a->device_fp, b->device_fp) == 0
           && strcmp(a->app, b->app) == 0
           && strcmp(a->rule, b->rule) == 0
           && strcmp(a->where, b->where) == 0
           && strcmp(a->reason, b->reason) == 0
           && strcmp(a->policy, b->policy) == 0;
}


static uint64_t
journal_fnv(uint64_t h, const char *s)
{
    while (*s != '\0') {
        h ^= (unsigned char) *s++;
        h *= 1099511628211ull;
    }

    h ^= 0xff;      /* field separator */
    h *= 1099511628211ull;

    return h;
}
