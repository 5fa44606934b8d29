/*
 * The decision journal's writer: decisions are queued in memory by the
 * decision thread (no I/O, no allocation after start) and appended to the
 * store's hash-chained journal by a thread of its own, in one write
 * transaction per flush interval (store_journal_append()).  The same
 * thread applies retention.
 *
 * Identical decisions queued within one interval (same outcome, rule,
 * score, request, source, user, session and device) are folded into one
 * record with a count, so that a client repeating a request does not
 * write a record per repetition; every decision is still counted.
 *
 * When the journal cannot be written (disk full, store full, I/O error)
 * the queued records are kept and retried every interval; while that
 * lasts, or while the queue is full, journal_blocked() says so and trustd
 * answers every decision with the fail-closed deny (journal_failure
 * closed, the default) or goes on deciding and counts what it could not
 * record (journal_failure open).  Both are logged.
 */

#ifndef ZT_JOURNAL_H
#define ZT_JOURNAL_H

#include <stdint.h>

#include "store.h"

#define JOURNAL_DEFAULT_FLUSH_MS    500
#define JOURNAL_DEFAULT_QUEUE       8192
#define JOURNAL_DEFAULT_RETENTION   ((int64_t) 365 * 86400 * 1000)
#define JOURNAL_PURGE_EVERY_MS      60000
#define JOURNAL_PURGE_BATCH         10000

typedef struct journal_s journal_t;

typedef struct {
    uint32_t    flush_ms;       /* the interval between appends */
    uint32_t    queue;          /* records the queue holds */
    int64_t     retention_ms;   /* 0: keep every record */
    int         fail_open;      /* 1: decide on when it cannot record */
} journal_conf_t;

typedef struct {
    uint64_t    queued;         /* records queued */
    uint64_t    folded;         /* decisions folded into a queued record */
    uint64_t    written;        /* records appended to the store */
    uint64_t    dropped;        /* decisions that could not be queued */
    uint64_t    failures;       /* appends that failed */
    uint64_t    purged;         /* records removed by retention */
    uint32_t    pending;        /* records waiting now */
    int         failing;        /* the last append failed */
    char        error[256];     /* why, while failing */
} journal_stats_t;

/* Fill *conf with the defaults. */
void journal_conf_default(journal_conf_t *conf);

/*
 * Start the writer thread for st (which must outlive it).  0, or -1 with
 * the reason in err.
 */
int journal_start(journal_t **j, store_t *st, const journal_conf_t *conf,
    char *err, size_t errlen);

/*
 * Write what is queued (one last attempt) and stop the thread.  Records
 * that cannot be written are counted as dropped and logged.
 */
void journal_stop(journal_t *j);

/*
 * Apply a reloaded configuration; the queue's size is kept (it changes at
 * restart only).
 */
void journal_reconf(journal_t *j, const journal_conf_t *conf);

/*
 * Queue a copy of *rec (a STORE_AUDIT_DECISION).  Returns 0, or -1 when
 * the queue is full (the decision is counted as dropped).
 */
int journal_add(journal_t *j, const store_audit_t *rec);

/*
 * 1 when decisions must fail closed because the journal cannot record
 * them (failing or full, and journal_failure is closed), else 0.  Cheap:
 * called for every decision.
 */
int journal_blocked(journal_t *j);

/* Wake the writer now (tests, shutdown, the admin socket's "flush"). */
void journal_kick(journal_t *j);

/* A snapshot of the counters. */
void journal_stats(journal_t *j, journal_stats_t *out);

#endif /* ZT_JOURNAL_H */
