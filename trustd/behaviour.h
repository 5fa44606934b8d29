/*
 * Behaviour state for trust inference.
 *
 * In memory (lost on restart, by design: they describe the last minutes):
 * denial counters per session, device and source address over a sliding
 * window, and each session's request rate against its own recent
 * average.  Fixed-size tables allocated once by behaviour_create(): the
 * decision path never allocates; a full table forgets its oldest slot.
 *
 * Per-user history (source addresses seen, usual hours and weekdays)
 * lives in the store's "history" database, bounded per user
 * (STORE_HISTORY_ADDRS addresses) and expiring (BEHAVIOUR_HISTORY_TTL).
 * The decision reads it in its own read view; changes are kept here and
 * written by behaviour_flush() in one write transaction from trustd's
 * timer, never on the decision path.  Single-threaded use only.
 */

#ifndef ZT_BEHAVIOUR_H
#define ZT_BEHAVIOUR_H

#include <stdint.h>

#include "store.h"

#define BEHAVIOUR_SLOTS         4096    /* denial and rate counters */
#define BEHAVIOUR_PENDING       256     /* users with unwritten history */
#define BEHAVIOUR_HISTORY_TTL   (90 * 86400)    /* forget older entries */
#define BEHAVIOUR_RATE_BUCKET   10      /* seconds */
#define BEHAVIOUR_RATE_FLOOR    20      /* requests per bucket always ok */
#define BEHAVIOUR_TIME_MIN      20      /* observations before "unusual" */

typedef struct behaviour_s  behaviour_t;

/* Allocate the tables.  NULL when out of memory. */
behaviour_t *behaviour_create(uint32_t window_ms);

/* The denial window (e.g. after a reload).  0 keeps the default 10 min. */
void behaviour_set_window(behaviour_t *b, uint32_t window_ms);

void behaviour_free(behaviour_t *b);

/*
 * The largest number of denials within the window for the session sid,
 * the device fp (hex) or the source address (16 bytes, IPv4 mapped); each
 * may be NULL.  Returns a count (fractional: the sliding window weighs
 * the previous window by how much of it still overlaps).
 */
double behaviour_denials(behaviour_t *b, const char *sid, const char *fp,
    const uint8_t *addr, int64_t now);

/* Count one denial for each key given (NULL: none). */
void behaviour_denied(behaviour_t *b, const char *sid, const char *fp,
    const uint8_t *addr, int64_t now);

/*
 * Count a request of session sid and return how far its rate in the
 * current BEHAVIOUR_RATE_BUCKET exceeds its own average: 0 at or below
 * max(3 x average, BEHAVIOUR_RATE_FLOOR), rising linearly to 1 at twice
 * that.
 */
double behaviour_rate(behaviour_t *b, const char *sid, int64_t now);

/*
 * The history of user to decide with: the unwritten copy when there is
 * one, else *stored (read in the decision's view; NULL when none).
 * Returns NULL when neither exists.  Valid until the next call.
 */
const store_history_t *behaviour_history(behaviour_t *b, const char *user,
    const store_history_t *stored);

/* 1 if addr is not among the (unexpired) addresses of h (h may be NULL). */
int behaviour_new_address(const store_history_t *h, const uint8_t *addr,
    int64_t now);

/*
 * How unusual now is for h: 0.5 for an hour of day (UTC) and 0.5 for a
 * weekday each seen in less than 5% of the user's requests, once the
 * user has BEHAVIOUR_TIME_MIN observations; 0 otherwise.
 */
double behaviour_unusual_time(const store_history_t *h, int64_t now);

/*
 * Record that user was allowed from addr at now: update (a copy of) the
 * history, kept for the next flush.  base is behaviour_history()'s
 * answer.  When BEHAVIOUR_PENDING users are waiting the update is
 * dropped (history is advisory).
 */
void behaviour_seen(behaviour_t *b, const char *user,
    const store_history_t *base, const uint8_t *addr, int64_t now);

/* Write the pending histories in one transaction.  0 or -1 (logged). */
int behaviour_flush(behaviour_t *b, store_t *st);

/* The same, handing the rows to write(arg, rows, n) instead (cluster
 * mode: the follower thread records them). */
void behaviour_flush_with(behaviour_t *b,
    void (*write)(void *arg, const store_history_t *rows, size_t n),
    void *arg);

#endif /* ZT_BEHAVIOUR_H */
