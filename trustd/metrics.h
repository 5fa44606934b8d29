/*
 * trustd's metrics in the Prometheus text exposition format (0.0.4),
 * served over HTTP by libmicrohttpd in a thread of its own
 * (metrics_listen) and returned by the admin socket's "metrics" command.
 *
 * Nothing here makes the decision thread wait:
 * - metrics_decisions_t holds the decision counters; only the decision
 *   thread touches it (no lock, no atomic);
 * - the portal's sign-in counters are process-wide atomics that the
 *   portal's threads bump with metrics_portal_count();
 * - on its own timer the decision thread fills a metrics_snapshot_t,
 *   renders it with metrics_render() and hands the text to the HTTP
 *   thread with metrics_publish(), which only try-locks: when a scrape is
 *   copying the previous text at that instant, the new one is dropped and
 *   the next tick publishes again.
 * A scrape therefore reads a text up to an interval old (two if a publish
 * was dropped); ztgate_metrics_snapshot_timestamp_seconds says when it was
 * made.  docs/operations.md lists every metric.
 */

#ifndef ZT_METRICS_H
#define ZT_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "journal.h"
#include "cluster.h"
#include "policy/policy.h"

#define METRICS_OUTCOMES        5   /* index: enum wire_decision; 0 unused */
#define METRICS_LAT_BUCKETS     14  /* finite histogram buckets */
#define METRICS_RULES           64  /* (app, rule) label pairs kept */
#define METRICS_RULE_SLOTS      256 /* rule identities looked up; power of 2 */
#define METRICS_LABEL_MAX       64
#define METRICS_POSTURE_EVERY_MS    60000   /* device posture census */

typedef enum {
    METRICS_LOGIN_SUCCESS = 0,      /* audit "login.success" */
    METRICS_LOGIN_FAILURE,          /* audit "login.failure" */
    METRICS_LOCKOUT,                /* audit "user.locked" */
    METRICS_PORTAL_EVENTS
} metrics_portal_event_t;

typedef enum {
    METRICS_POSTURE_FRESH = 0,
    METRICS_POSTURE_STALE,
    METRICS_POSTURE_MISSING,        /* never reported */
    METRICS_POSTURE_STATES
} metrics_posture_t;

typedef struct metrics_s  metrics_t;

/* One (app, rule) label pair and its decisions. */
typedef struct {
    char        app[METRICS_LABEL_MAX];
    char        rule[METRICS_LABEL_MAX];
    uint64_t    decisions;
    int         current;            /* has decided since the policy load */
} metrics_rule_t;

typedef struct {
    const void  *key;               /* rule name in the running policy */
    unsigned     idx;               /* into rules[]; METRICS_RULES: other */
} metrics_rule_slot_t;

/*
 * The decision counters, owned by the decision thread.  Counters only go
 * up (the admin "stats-reset" does not touch them).  Zero it before use.
 */
typedef struct {
    uint64_t             outcome[METRICS_OUTCOMES];
    uint64_t             lat[METRICS_LAT_BUCKETS + 1];  /* last: +Inf */
    uint64_t             lat_sum_ns;
    uint64_t             builtin;       /* decided by no policy rule */
    uint64_t             default_deny;  /* the policy's default deny */
    uint64_t             other;         /* rules past METRICS_RULES */
    metrics_rule_t       rules[METRICS_RULES];
    unsigned             nrules;
    metrics_rule_slot_t  slots[METRICS_RULE_SLOTS];
    unsigned             nslots;
} metrics_decisions_t;

/* What the decision thread renders; pointers are borrowed for the call. */
typedef struct {
    double                      time;           /* unix seconds, now */
    double                      start_time;     /* of the process */
    const metrics_decisions_t  *decisions;
    unsigned                    connections;    /* from nginx workers */
    uint64_t                    portal[METRICS_PORTAL_EVENTS];
    uint64_t                    reloads_ok;
    uint64_t                    reloads_failed;
    int                         has_cluster;
    cluster_stats_t             cluster;
    const char                 *policy_version; /* "built-in": none */
    unsigned                    policy_rules;
    int64_t                     store_file_bytes;   /* -1: unknown */
    uint64_t                    store_map_bytes;
    int                         posture_known;  /* a census was made */
    uint64_t                    posture[METRICS_POSTURE_STATES];
    double                      posture_time;   /* of the census */
    int                         has_journal;
    journal_stats_t             journal;
} metrics_snapshot_t;

/*
 * Count one decision: its outcome (enum wire_decision), how long it took
 * and the policy decision behind it (NULL when no policy rule was
 * consulted: the built-in rule, a revoked device, a store error).  The
 * rule is recognised by the address of its name in the compiled policy;
 * the first METRICS_RULES distinct (app, rule) pairs get a label pair of
 * their own, later ones count as "other".  Decision thread only; no
 * allocation, no lock.
 */
void metrics_decision(metrics_decisions_t *md, unsigned outcome,
    uint64_t ns, const pol_decision_t *pd);

/*
 * The policy is being replaced: forget the rule addresses (the old policy
 * is freed next), keep the counts.  Label pairs that the new policy does
 * not use make room for new ones when the table is full.
 */
void metrics_policy_changed(metrics_decisions_t *md);

/* Count a sign-in event; any thread (a relaxed atomic add). */
void metrics_portal_count(metrics_portal_event_t ev);

/* Read the sign-in counters into out[METRICS_PORTAL_EVENTS]. */
void metrics_portal_read(uint64_t *out);

/*
 * Render s as Prometheus text.  Returns a NUL-terminated buffer owned by
 * the caller (free()), with its length in *len, or NULL when out of
 * memory.
 */
char *metrics_render(const metrics_snapshot_t *s, size_t *len);

/*
 * Serve metrics on where: a Unix socket path (mode 0660; a stale socket
 * file is removed only if nothing answers on it) or a loopback
 * "ADDR:PORT" (config_parse_loopback()).  GET or HEAD of /metrics (or /)
 * answers the last published text, 503 before the first one.  Call from
 * the main thread (umask), after any fork.  Returns 0 with *out owned by
 * the caller (metrics_stop()), or -1 with the reason in err.
 */
int metrics_start(metrics_t **out, const char *where, char *err,
    size_t errsize);

/*
 * Hand text (len bytes, from metrics_render()) to the HTTP thread; the
 * call owns text from now on, whatever it returns.  Never waits: returns
 * 0 when published, -1 when a scrape held the lock (text is dropped).
 * m may be NULL (text is freed).
 */
int metrics_publish(metrics_t *m, char *text, size_t len);

/* Stop serving, join the thread, unlink a socket file, free.  NULL ok. */
void metrics_stop(metrics_t *m);

#endif /* ZT_METRICS_H */
