/*
 * Cluster mode (docs/cluster.md): PostgreSQL is the system of record and
 * each node's LMDB store its local, read-optimized copy.
 *
 * cluster_attach() connects, creates or migrates the database schema,
 * makes the store follow the cluster (a new or wiped node loads the
 * cluster's state; the first node of an empty cluster seeds it) and
 * installs the replicator on the store (store.h): from then on every
 * write through that store is decided and recorded in PostgreSQL first.
 * trustd, ztctl and ztconsole all attach; only trustd starts the
 * follower (cluster_start()), which applies the change log to LMDB in
 * order, woken by LISTEN/NOTIFY and polling as a fallback, and carries
 * the writes the decision thread must not wait for (session activity,
 * user history, session purges).
 *
 * Reads never wait for the database.  While the change feed is out of
 * reach the node goes on deciding from LMDB until cluster_max_staleness,
 * then fails closed (cluster_stale()).
 */

#ifndef ZT_CLUSTER_H
#define ZT_CLUSTER_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "store.h"

typedef struct cluster_s  cluster_t;

typedef struct {
    const char  *conninfo;          /* libpq connection string */
    const char  *node;              /* this node's name */
    const char  *program;           /* "trustd", "ztctl", "ztconsole" */
    uint32_t     max_stale_ms;
    uint32_t     poll_ms;
    uint32_t     timeout_ms;
    uint32_t     retention_ms;
    int          may_start_offline; /* a joined store may start with the
                                       database out of reach */
} cluster_conf_t;

typedef struct {
    char        cluster_id[STORE_CLUSTER_ID_LEN];
    uint64_t    position;           /* last change applied here */
    uint64_t    head;               /* last change known in the database */
    int         connected;          /* the change feed */
    int64_t     feed_age_ms;        /* since the feed last answered; -1:
                                       never */
    int         stale;              /* past cluster_max_staleness */
    uint64_t    applied;            /* changes applied by the follower */
    uint64_t    commits;            /* writes this process committed */
    uint64_t    refused;            /* writes refused (database errors) */
    uint64_t    bootstraps;
    uint64_t    deferred_dropped;   /* session activity/history dropped */
    uint64_t    lat_count;          /* propagation samples */
    double      lat_p50_ms;         /* commit elsewhere -> applied here */
    double      lat_p99_ms;
} cluster_stats_t;

/* The cluster settings of trustd.conf, for program ("trustd", "ztctl",
 * "ztconsole"); may_start_offline is left 0. */
void cluster_conf_init(cluster_conf_t *cc, const config_t *cfg,
    const char *program);

int cluster_attach(cluster_t **c, const cluster_conf_t *conf, store_t *st,
    char *err, size_t errlen);

/* trustd: start the follower thread. */
int cluster_start(cluster_t *c, char *err, size_t errlen);

/* Stop the follower (if started), detach from the store, disconnect. */
void cluster_free(cluster_t *c);

/* The decision thread: whether to fail closed (lock-free). */
int cluster_stale(const cluster_t *c);

void cluster_stats(cluster_t *c, cluster_stats_t *s);

/* What the follower's changes touched since the last call
 * (STORE_TOUCHED_* bits). */
unsigned cluster_take_touched(cluster_t *c);

/* This node's policy version, published with its heartbeat. */
void cluster_set_policy(cluster_t *c, const char *version);

/*
 * Writes the decision thread hands to the follower: recorded in the
 * cluster from there, in order, never blocking the caller; dropped (and
 * counted) when the queue is full.
 */
void cluster_defer_touch(cluster_t *c, const char *const *sids, size_t n);
void cluster_defer_history(cluster_t *c, const store_history_t *rows,
    size_t n);
void cluster_defer_purge(cluster_t *c, int64_t before);

/* One node's heartbeat row (zt_nodes). */
typedef struct {
    char        node[64];
    char        program[32];
    uint64_t    position;
    char        policy[64];
    int64_t     seen_age_ms;        /* since its last heartbeat */
} cluster_node_t;

typedef struct {
    char        cluster_id[STORE_CLUSTER_ID_LEN];
    uint64_t    head;
    unsigned    store_schema;
    unsigned    migrations;         /* schema migrations applied */
    uint64_t    changes;            /* change-log entries kept */
} cluster_info_t;

/*
 * Ask the database about the cluster (ztctl cluster nodes): *info, then
 * cb for each node in name order.  Connects and disconnects; changes
 * nothing.  0 or -1 with a message in err.
 */
int cluster_describe(const cluster_conf_t *conf, cluster_info_t *info,
    int (*cb)(void *arg, const cluster_node_t *node), void *arg, char *err,
    size_t errlen);

#endif /* ZT_CLUSTER_H */
