/*
 * Cluster mode on PostgreSQL (cluster.h, docs/cluster.md).
 *
 * The database holds, besides its migrations:
 *     zt_cluster   one row: the cluster id, the change-log head, the
 *                  store schema every node must run
 *     zt_kv        the current value of every key of every replicated
 *                  database (what a new node loads)
 *     zt_changes   the ordered change log: per change the keys written
 *                  (a NULL value: deleted), the node, and the audit
 *                  action it came with
 *     zt_nodes     each node's heartbeat: position, policy, last seen
 * A write locks the zt_cluster row (SELECT ... FOR UPDATE), so changes
 * are numbered and committed in one order, without gaps; zt_commit()
 * writes zt_kv and zt_changes in the same transaction and notifies
 * "ztgate_changes".
 *
 * Two connections per process at most: the writer's (the replicator,
 * under a mutex: store.h's lock/fetch/commit/unlock) and the follower's
 * (trustd only: LISTEN, reading the change log, heartbeats).
 */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <postgresql/libpq-fe.h>

#include "clock.h"
#include "cluster.h"
#include "log.h"

#define CLUSTER_FETCH_MAX       500     /* changes per follower query */
#define CLUSTER_BOOT_FETCH      2000    /* rows per bootstrap FETCH */
#define CLUSTER_SEED_BATCH      1000    /* rows per seeding INSERT */
#define CLUSTER_HEARTBEAT_MS    5000
#define CLUSTER_PRUNE_MS        (10 * 60 * 1000)
#define CLUSTER_LAT_RING        1024
#define CLUSTER_TOUCH_MAX       1024    /* deferred session ids */
#define CLUSTER_HISTORY_MAX     1024    /* deferred history rows */
#define CLUSTER_OID_TEXT        25
#define CLUSTER_OID_BYTEA       17


/* Versioned schema migrations, applied in order, each once. */
static const char  *cluster_migrations[] = {
    /* 1: the change log, the current state, the nodes */
    "CREATE TABLE zt_cluster ("
    "  id int PRIMARY KEY CHECK (id = 1),"
    "  cluster_id text NOT NULL,"
    "  head bigint NOT NULL DEFAULT 0,"
    "  store_schema int NOT NULL,"
    "  created_at timestamptz NOT NULL DEFAULT now());"
    "INSERT INTO zt_cluster (id, cluster_id, store_schema)"
    "  VALUES (1, gen_random_uuid()::text, %u);"
    "CREATE TABLE zt_kv ("
    "  db text NOT NULL,"
    "  k bytea NOT NULL,"
    "  v bytea NOT NULL,"
    "  seq bigint NOT NULL,"
    "  PRIMARY KEY (db, k));"
    "CREATE TABLE zt_changes ("
    "  seq bigint PRIMARY KEY,"
    "  at timestamptz NOT NULL DEFAULT clock_timestamp(),"
    "  node text NOT NULL,"
    "  actor text NOT NULL DEFAULT '',"
    "  action text NOT NULL DEFAULT '',"
    "  subject text NOT NULL DEFAULT '',"
    "  tag bigint NOT NULL,"
    "  dbs text[] NOT NULL,"
    "  keys bytea[] NOT NULL,"
    "  vals bytea[] NOT NULL);"
    "CREATE INDEX zt_changes_at ON zt_changes (at);"
    "CREATE TABLE zt_nodes ("
    "  node text PRIMARY KEY,"
    "  program text NOT NULL DEFAULT 'trustd',"
    "  position bigint NOT NULL,"
    "  policy text NOT NULL DEFAULT '',"
    "  started_at timestamptz NOT NULL,"
    "  seen_at timestamptz NOT NULL);"
    "CREATE FUNCTION zt_commit(p_node text, p_actor text, p_action text,"
    "    p_subject text, p_dbs text[], p_keys bytea[], p_vals bytea[],"
    "    OUT s bigint, OUT t bigint)"
    "  LANGUAGE plpgsql AS $f$"
    "BEGIN"
    "  UPDATE zt_cluster SET head = head + 1 WHERE id = 1"
    "    RETURNING head INTO s;"
    "  t := 1 + floor(random() * 9007199254740990)::bigint;"
    "  FOR i IN 1 .. coalesce(array_length(p_dbs, 1), 0) LOOP"
    "    IF p_vals[i] IS NULL THEN"
    "      DELETE FROM zt_kv WHERE db = p_dbs[i] AND k = p_keys[i];"
    "    ELSE"
    "      INSERT INTO zt_kv (db, k, v, seq)"
    "        VALUES (p_dbs[i], p_keys[i], p_vals[i], s)"
    "        ON CONFLICT (db, k) DO UPDATE SET v = EXCLUDED.v,"
    "          seq = EXCLUDED.seq;"
    "    END IF;"
    "  END LOOP;"
    "  INSERT INTO zt_changes (seq, node, actor, action, subject, tag, dbs,"
    "      keys, vals)"
    "    VALUES (s, p_node, p_actor, p_action, p_subject, t, p_dbs, p_keys,"
    "      p_vals);"
    "  PERFORM pg_notify('ztgate_changes', s::text);"
    "END $f$;",
};

#define CLUSTER_NMIGRATIONS \
    (sizeof(cluster_migrations) / sizeof(cluster_migrations[0]))


typedef struct {
    char        sid[STORE_SID_LEN + 1];
} cluster_sid_t;

struct cluster_s {
    cluster_conf_t   conf;
    char             conninfo[1024];
    char             node[64];
    char             program[32];
    store_t         *st;
    char             id[STORE_CLUSTER_ID_LEN];

    /* the writer (store.h's replicator) */
    pthread_mutex_t  wmu;
    PGconn          *wconn;
    int              in_txn;
    uint64_t         last_tag;          /* of the change just committed */

    /* the follower */
    pthread_t        thread;
    int              started;
    int              stop;
    int              wake[2];
    PGconn          *fconn;
    int64_t          last_beat_ms;
    int              beat_now;          /* the policy changed */
    char             last_drop[300];    /* why the feed was lost last */
    int64_t          last_prune_ms;
    int64_t          backoff_ms;

    /* published to other threads (atomics) */
    int64_t          feed_ok_ms;        /* monotonic; 0: never */
    uint64_t         pos;
    uint64_t         head;
    int              connected;
    unsigned         touched;
    uint64_t         applied;
    uint64_t         commits;
    uint64_t         refused;
    uint64_t         bootstraps;
    uint64_t         dropped;

    /* under mu: deferred writes, propagation samples, the policy */
    pthread_mutex_t  mu;
    cluster_sid_t    touch[CLUSTER_TOUCH_MAX];
    size_t           ntouch;
    store_history_t *history;
    size_t           nhistory;
    int64_t          purge_before;
    double           lat[CLUSTER_LAT_RING];
    uint64_t         nlat;
    char             policy[64];
};


static int cluster_lock(void *ctx, uint64_t *head, store_err_t *err);
static int cluster_fetch(void *ctx, uint64_t after, uint64_t upto,
    store_apply_fn apply, void *arg, store_err_t *err);
static int cluster_commit(void *ctx, const store_op_t *ops, size_t nops,
    const store_change_info_t *info, uint64_t *seq, store_err_t *err);
static void cluster_unlock(void *ctx);
static void cluster_wake(cluster_t *c);

static uint64_t cluster_last_tag(void *ctx);
static int64_t cluster_be64(const char *p);
static int cluster_check_history(cluster_t *c, PGconn *conn, char *err,
    size_t errlen);

static const store_repl_t  cluster_repl = {
    cluster_lock, cluster_fetch, cluster_commit, cluster_unlock,
    cluster_last_tag
};




/* The first line of libpq's message, without its trailing newline. */
static void
cluster_pqmsg(const char *msg, char *out, size_t size)
{
    size_t  n;

    if (msg == NULL || msg[0] == '\0') {
        msg = "unknown error";
    }

    n = strcspn(msg, "\n");
    if (n >= size) {
        n = size - 1;
    }

    memcpy(out, msg, n);
    out[n] = '\0';
}


static void
cluster_seterr(store_err_t *err, const char *what, const char *pqmsg,
    int nothing)
{
    char  m[100];

    cluster_pqmsg(pqmsg, m, sizeof(m));
    snprintf(err->msg, sizeof(err->msg), "%.120s: %.99s%s", what, m,
             nothing ? "; nothing was changed" : "");
}


static void
cluster_notice(void *arg, const char *msg)
{
    (void) arg;
    (void) msg;
}


static PGconn *
cluster_connect(cluster_t *c, char *err, size_t errlen)
{
    const char  *kw[8], *val[8];
    char         ct[16], tut[16], opts[160], app[96];
    PGconn      *conn;
    PGresult    *res;
    int          n;

    snprintf(ct, sizeof(ct), "%u", (c->conf.timeout_ms + 999) / 1000);
    snprintf(tut, sizeof(tut), "%u", c->conf.timeout_ms);
    snprintf(opts, sizeof(opts), "-c statement_timeout=%u "
             "-c lock_timeout=%u -c idle_in_transaction_session_timeout=%u",
             c->conf.timeout_ms, c->conf.timeout_ms,
             4 * c->conf.timeout_ms);
    snprintf(app, sizeof(app), "ztgate %.20s %.63s", c->program, c->node);

    /* the operator's connection string comes last: it wins */
    n = 0;
    kw[n] = "connect_timeout";  val[n++] = ct;
    kw[n] = "tcp_user_timeout"; val[n++] = tut;
    kw[n] = "keepalives_idle";  val[n++] = "10";
    kw[n] = "options";          val[n++] = opts;
    kw[n] = "application_name"; val[n++] = app;
    kw[n] = "dbname";           val[n++] = c->conninfo;
    kw[n] = NULL;               val[n] = NULL;

    conn = PQconnectdbParams(kw, val, 1);
    if (conn == NULL) {
        snprintf(err, errlen, "cannot connect to the cluster database: "
                 "out of memory");
        return NULL;
    }

    if (PQstatus(conn) != CONNECTION_OK) {
        char  m[200];

        cluster_pqmsg(PQerrorMessage(conn), m, sizeof(m));
        snprintf(err, errlen, "cannot connect to the cluster database: %s",
                 m);
        PQfinish(conn);
        return NULL;
    }

    /* the server's notices (a shutdown's FATAL among them) would go to
     * stderr: every failure is reported where it is handled instead */
    PQsetNoticeProcessor(conn, cluster_notice, NULL);

    res = PQexec(conn, "SET client_min_messages = warning");
    PQclear(res);

    return conn;
}


/* The server's message about res if it has one, else the connection's. */
static const char *
cluster_errmsg(const PGresult *res, const PGconn *conn)
{
    return res != NULL && PQresultErrorMessage(res)[0] != '\0'
           ? PQresultErrorMessage(res) : PQerrorMessage(conn);
}


/* Run sql (no parameters), expecting status; the result or NULL. */
static PGresult *
cluster_exec(PGconn *conn, const char *sql, ExecStatusType status,
    char *err, size_t errlen, const char *what)
{
    PGresult  *res;
    char       m[200];

    res = PQexec(conn, sql);
    if (res != NULL && PQresultStatus(res) == status) {
        return res;
    }

    cluster_pqmsg(cluster_errmsg(res, conn), m, sizeof(m));
    snprintf(err, errlen, "%s: %s", what, m);
    PQclear(res);

    return NULL;
}


static uint64_t
cluster_u64(const PGresult *res, int row, int col)
{
    return (uint64_t) strtoull(PQgetvalue(res, row, col), NULL, 10);
}


/* Create or bring the schema up to date; 0 or -1. */
static int
cluster_migrate(PGconn *conn, char *err, size_t errlen)
{
    PGresult  *res;
    char       sql[8192], what[64];
    unsigned   have, i;

    res = cluster_exec(conn,
        "BEGIN;"
        "SELECT pg_advisory_xact_lock(7262010);"
        "CREATE TABLE IF NOT EXISTS zt_migrations ("
        "  version int PRIMARY KEY,"
        "  applied_at timestamptz NOT NULL DEFAULT now());"
        "SELECT coalesce(max(version), 0) FROM zt_migrations",
        PGRES_TUPLES_OK, err, errlen, "cannot read the database schema");
    if (res == NULL) {
        PQclear(PQexec(conn, "ROLLBACK"));
        return -1;
    }

    have = (unsigned) cluster_u64(res, 0, 0);
    PQclear(res);

    if (have > CLUSTER_NMIGRATIONS) {
        snprintf(err, errlen, "the cluster database has schema version %u, "
                 "newer than this ztgate knows (%zu): upgrade ztgate",
                 have, CLUSTER_NMIGRATIONS);
        PQclear(PQexec(conn, "ROLLBACK"));
        return -1;
    }

    for (i = have; i < CLUSTER_NMIGRATIONS; i++) {
        snprintf(sql, sizeof(sql), cluster_migrations[i],
                 STORE_SCHEMA_VERSION);
        snprintf(what, sizeof(what), "database migration %u failed", i + 1);

        res = cluster_exec(conn, sql, PGRES_COMMAND_OK, err, errlen, what);
        if (res == NULL) {
            PQclear(PQexec(conn, "ROLLBACK"));
            return -1;
        }
        PQclear(res);

        snprintf(sql, sizeof(sql),
                 "INSERT INTO zt_migrations (version) VALUES (%u)", i + 1);
        res = cluster_exec(conn, sql, PGRES_COMMAND_OK, err, errlen, what);
        if (res == NULL) {
            PQclear(PQexec(conn, "ROLLBACK"));
            return -1;
        }
        PQclear(res);

        log_info("cluster database: applied schema migration %u", i + 1);
    }

    res = cluster_exec(conn, "COMMIT", PGRES_COMMAND_OK, err, errlen,
                       "cannot commit the database schema");
    if (res == NULL) {
        return -1;
    }

    PQclear(res);

    return 0;
}


/* ---- PostgreSQL binary arrays (text[] and bytea[] results) ---- */

typedef struct {
    const uint8_t  *p;
    const uint8_t  *end;
} cluster_rd_t;


static int
cluster_get32(cluster_rd_t *r, int32_t *v)
{
    uint32_t  u;

    if (r->end - r->p < 4) {
        return -1;
    }

    u = (uint32_t) r->p[0] << 24 | (uint32_t) r->p[1] << 16
        | (uint32_t) r->p[2] << 8 | r->p[3];
    r->p += 4;
    *v = (int32_t) u;

    return 0;
}


/*
 * Open a one-dimensional binary array of elements of type oid: *n
 * elements follow at r.  0 or -1.
 */
static int
cluster_array_open(const char *data, int len, uint32_t oid, cluster_rd_t *r,
    size_t *n)
{
    int32_t  ndim, flags, elem, dim, lb;

    r->p = (const uint8_t *) data;
    r->end = r->p + len;

    if (cluster_get32(r, &ndim) != 0 || cluster_get32(r, &flags) != 0
        || cluster_get32(r, &elem) != 0 || (uint32_t) elem != oid)
    {
        return -1;
    }

    if (ndim == 0) {
        *n = 0;
        return 0;
    }

    if (ndim != 1 || cluster_get32(r, &dim) != 0 || cluster_get32(r, &lb)
        != 0 || dim < 0)
    {
        return -1;
    }

    *n = (size_t) dim;

    return 0;
}


/* The next element: 0 with *p and *len (p NULL for SQL NULL), or -1. */
static int
cluster_array_next(cluster_rd_t *r, const void **p, size_t *len)
{
    int32_t  l;

    if (cluster_get32(r, &l) != 0) {
        return -1;
    }

    if (l == -1) {
        *p = NULL;
        *len = 0;
        return 0;
    }

    if (l < 0 || r->end - r->p < l) {
        return -1;
    }

    *p = r->p;
    *len = (size_t) l;
    r->p += l;

    return 0;
}


/*
 * Decode row of a binary (seq, dbs, keys, vals) result into chg; ops and
 * names (the db names, NUL-terminated) are the caller's, sized by
 * cluster_ops_size().  0 or -1.
 */
static int
cluster_change_decode(const PGresult *res, int row, store_change_t *chg,
    store_op_t **ops, size_t *opsize, char **names, size_t *namesize)
{
    cluster_rd_t   dr, kr, vr;
    const void    *d, *k, *v;
    size_t         nd, nk, nv, dl, kl, vl, i, used;
    uint64_t       seq;
    const uint8_t *s;
    void          *tmp;

    if (PQgetlength(res, row, 0) != 8) {
        return -1;
    }

    s = (const uint8_t *) PQgetvalue(res, row, 0);
    seq = 0;
    for (i = 0; i < 8; i++) {
        seq = seq << 8 | s[i];
    }

    if (cluster_array_open(PQgetvalue(res, row, 1), PQgetlength(res, row, 1),
                           CLUSTER_OID_TEXT, &dr, &nd) != 0
        || cluster_array_open(PQgetvalue(res, row, 2),
                              PQgetlength(res, row, 2), CLUSTER_OID_BYTEA,
                              &kr, &nk) != 0
        || cluster_array_open(PQgetvalue(res, row, 3),
                              PQgetlength(res, row, 3), CLUSTER_OID_BYTEA,
                              &vr, &nv) != 0
        || nd != nk || nd != nv)
    {
        return -1;
    }

    if (nd > *opsize) {
        tmp = realloc(*ops, nd * sizeof(store_op_t));
        if (tmp == NULL) {
            return -1;
        }
        *ops = tmp;
        *opsize = nd;
    }

    /* db names: at most 16 bytes each, kept NUL-terminated */
    if (nd * 16 > *namesize) {
        tmp = realloc(*names, nd * 16);
        if (tmp == NULL) {
            return -1;
        }
        *names = tmp;
        *namesize = nd * 16;
    }

    used = 0;

    for (i = 0; i < nd; i++) {
        if (cluster_array_next(&dr, &d, &dl) != 0 || d == NULL || dl >= 16
            || cluster_array_next(&kr, &k, &kl) != 0 || k == NULL
            || cluster_array_next(&vr, &v, &vl) != 0)
        {
            return -1;
        }

        memcpy(*names + used, d, dl);
        (*names)[used + dl] = '\0';

        (*ops)[i].db = *names + used;
        (*ops)[i].key = k;
        (*ops)[i].klen = kl;
        (*ops)[i].val = v;
        (*ops)[i].vlen = vl;

        used += 16;
    }

    chg->seq = seq;
    chg->ops = *ops;
    chg->nops = nd;
    chg->tag = PQnfields(res) > 5 && PQgetlength(res, row, 5) == 8
               ? (uint64_t) cluster_be64(PQgetvalue(res, row, 5)) : 0;

    return 0;
}


/* Read changes after `after` (and at most upto, 0: no bound) in order. */
static PGresult *
cluster_changes_query(PGconn *conn, uint64_t after, uint64_t upto,
    int limit, char *err, size_t errlen)
{
    const char  *params[3];
    char         a[24], u[24], l[16];
    PGresult    *res;
    char         m[200];

    snprintf(a, sizeof(a), "%" PRIu64, after);
    snprintf(u, sizeof(u), "%" PRIu64, upto ? upto : (uint64_t) INT64_MAX);
    snprintf(l, sizeof(l), "%d", limit);
    params[0] = a;
    params[1] = u;
    params[2] = l;

    res = PQexecParams(conn,
        "SELECT seq, dbs, keys, vals,"
        " (extract(epoch FROM at) * 1000)::bigint, tag"
        " FROM zt_changes WHERE seq > $1::bigint AND seq <= $2::bigint"
        " ORDER BY seq LIMIT $3::int",
        3, NULL, params, NULL, NULL, 1);

    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
        cluster_pqmsg(cluster_errmsg(res, conn), m, sizeof(m));
        snprintf(err, errlen, "cannot read the change log: %s", m);
        PQclear(res);
        return NULL;
    }

    return res;
}


static int64_t
cluster_be64(const char *p)
{
    uint64_t  v;
    int       i;

    v = 0;
    for (i = 0; i < 8; i++) {
        v = v << 8 | (uint8_t) p[i];
    }

    return (int64_t) v;
}


/* ---- the replicator (store.h), on the writer's connection ---- */

static int
cluster_writer_ready(cluster_t *c, store_err_t *err)
{
    char  msg[256];

    if (c->wconn != NULL && PQstatus(c->wconn) == CONNECTION_OK) {
        return 0;
    }

    if (c->wconn != NULL) {
        PQfinish(c->wconn);
        c->wconn = NULL;
    }

    c->wconn = cluster_connect(c, msg, sizeof(msg));
    if (c->wconn == NULL) {
        snprintf(err->msg, sizeof(err->msg), "%.200s; nothing was changed",
                 msg);
        return -1;
    }

    return 0;
}


static void
cluster_writer_drop(cluster_t *c)
{
    if (c->wconn != NULL && PQstatus(c->wconn) != CONNECTION_OK) {
        PQfinish(c->wconn);
        c->wconn = NULL;
    }
}


static int
cluster_lock(void *ctx, uint64_t *head, store_err_t *err)
{
    cluster_t  *c = ctx;
    PGresult   *res;
    char        msg[300];

    pthread_mutex_lock(&c->wmu);

    if (cluster_writer_ready(c, err) != 0) {
        goto refused;
    }

    res = PQexec(c->wconn, "BEGIN; SELECT head, cluster_id FROM zt_cluster "
                 "WHERE id = 1 FOR UPDATE");
    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK
        || PQntuples(res) != 1)
    {
        cluster_seterr(err, "the cluster database refused the write lock",
                       cluster_errmsg(res, c->wconn), 1);
        PQclear(res);
        PQclear(PQexec(c->wconn, "ROLLBACK"));
        cluster_writer_drop(c);
        goto refused;
    }

    if (strcmp(PQgetvalue(res, 0, 1), c->id) != 0) {
        snprintf(err->msg, sizeof(err->msg), "the cluster database now "
                 "belongs to cluster %.40s, not %.40s; nothing was changed",
                 PQgetvalue(res, 0, 1), c->id);
        PQclear(res);
        PQclear(PQexec(c->wconn, "ROLLBACK"));
        goto refused;
    }

    *head = cluster_u64(res, 0, 0);
    PQclear(res);

    /* never decide on a copy of a history the database no longer has */
    if (cluster_check_history(c, c->wconn, msg, sizeof(msg)) != 0) {
        snprintf(err->msg, sizeof(err->msg), "%.200s; nothing was changed",
                 msg);
        PQclear(PQexec(c->wconn, "ROLLBACK"));
        goto refused;
    }

    c->in_txn = 1;

    return 0;

refused:

    __atomic_add_fetch(&c->refused, 1, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&c->wmu);

    return -1;
}


static int
cluster_fetch(void *ctx, uint64_t after, uint64_t upto,
    store_apply_fn apply, void *arg, store_err_t *err)
{
    cluster_t       *c = ctx;
    PGresult        *res;
    store_change_t   chg;
    store_op_t      *ops;
    char            *names;
    size_t           opsize, namesize;
    int              i, n, rc;

    ops = NULL;
    names = NULL;
    opsize = 0;
    namesize = 0;
    rc = 0;

    while (after < upto && rc == 0) {
        res = cluster_changes_query(c->wconn, after, upto, CLUSTER_FETCH_MAX,
                                    err->msg, sizeof(err->msg));
        if (res == NULL) {
            rc = -1;
            break;
        }

        n = PQntuples(res);
        if (n == 0) {
            snprintf(err->msg, sizeof(err->msg), "change %" PRIu64 " is "
                     "missing from the change log", after + 1);
            PQclear(res);
            rc = -1;
            break;
        }

        for (i = 0; i < n; i++) {
            if (cluster_change_decode(res, i, &chg, &ops, &opsize, &names,
                                      &namesize)
                != 0)
            {
                snprintf(err->msg, sizeof(err->msg), "change log entry "
                         "unreadable");
                rc = -1;
                break;
            }

            if (apply(arg, &chg, err) != 0) {
                rc = -1;
                break;
            }

            after = chg.seq;
        }

        PQclear(res);
    }

    free(ops);
    free(names);

    return rc;
}


/* Append the elements as a text-format array literal; 0 or -1. */
typedef struct {
    char    *p;
    size_t   len;
    size_t   size;
} cluster_buf_t;


static int
cluster_buf_add(cluster_buf_t *b, const char *s, size_t n)
{
    char    *p;
    size_t   size;

    if (b->len + n + 1 > b->size) {
        size = b->size ? b->size : 4096;
        while (size < b->len + n + 1) {
            size *= 2;
        }
        p = realloc(b->p, size);
        if (p == NULL) {
            return -1;
        }
        b->p = p;
        b->size = size;
    }

    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';

    return 0;
}


/* "\\x<hex>" inside double quotes: a bytea element. */
static int
cluster_buf_bytea(cluster_buf_t *b, const void *data, size_t len)
{
    static const char  hex[] = "0123456789abcdef";
    const uint8_t     *p = data;
    char               two[2];
    size_t             i;

    if (cluster_buf_add(b, "\"\\\\x", 4) != 0) {
        return -1;
    }

    for (i = 0; i < len; i++) {
        two[0] = hex[p[i] >> 4];
        two[1] = hex[p[i] & 15];
        if (cluster_buf_add(b, two, 2) != 0) {
            return -1;
        }
    }

    return cluster_buf_add(b, "\"", 1);
}


/*
 * Rows as three parallel text-format arrays (text[], bytea[], bytea[]):
 * one change's keys for zt_commit(), or a batch of rows for seeding.
 */
typedef struct {
    cluster_buf_t   dbs, keys, vals;
    size_t          n;
} cluster_arrays_t;


/* Append op (a NULL value: SQL NULL, a deleted key); 0 or -1. */
static int
cluster_arrays_add(cluster_arrays_t *a, const store_op_t *op)
{
    const char  *sep;

    sep = a->n > 0 ? "," : "{";

    if (cluster_buf_add(&a->dbs, sep, 1) != 0
        || cluster_buf_add(&a->keys, sep, 1) != 0
        || cluster_buf_add(&a->vals, sep, 1) != 0
        || cluster_buf_add(&a->dbs, op->db, strlen(op->db)) != 0
        || cluster_buf_bytea(&a->keys, op->key, op->klen) != 0
        || (op->val == NULL
            ? cluster_buf_add(&a->vals, "NULL", 4)
            : cluster_buf_bytea(&a->vals, op->val, op->vlen)) != 0)
    {
        return -1;
    }

    a->n++;

    return 0;
}


/* End the three arrays ("{}" when empty); 0 or -1. */
static int
cluster_arrays_close(cluster_arrays_t *a)
{
    const char  *end;
    size_t       len;

    end = a->n > 0 ? "}" : "{}";
    len = strlen(end);

    return cluster_buf_add(&a->dbs, end, len) != 0
           || cluster_buf_add(&a->keys, end, len) != 0
           || cluster_buf_add(&a->vals, end, len) != 0 ? -1 : 0;
}


/* Start again, keeping the memory. */
static void
cluster_arrays_reset(cluster_arrays_t *a)
{
    a->dbs.len = a->keys.len = a->vals.len = 0;
    a->n = 0;
}


static void
cluster_arrays_free(cluster_arrays_t *a)
{
    free(a->dbs.p);
    free(a->keys.p);
    free(a->vals.p);
}


static int
cluster_commit(void *ctx, const store_op_t *ops, size_t nops,
    const store_change_info_t *info, uint64_t *seq, store_err_t *err)
{
    cluster_t         *c = ctx;
    cluster_arrays_t   arr;
    const char        *params[7];
    PGresult          *res;
    size_t             i;
    int                ok;

    memset(&arr, 0, sizeof(arr));

    ok = 1;
    for (i = 0; ok && i < nops; i++) {
        ok = cluster_arrays_add(&arr, &ops[i]) == 0;
    }

    if (!ok || cluster_arrays_close(&arr) != 0) {
        snprintf(err->msg, sizeof(err->msg), "out of memory; nothing was "
                 "changed");
        res = NULL;
        goto rollback;
    }

    params[0] = c->node;
    params[1] = info->actor;
    params[2] = info->action;
    params[3] = info->subject;
    params[4] = arr.dbs.p;
    params[5] = arr.keys.p;
    params[6] = arr.vals.p;

    res = PQexecParams(c->wconn,
                       "SELECT s, t FROM zt_commit($1, $2, $3, $4, "
                       "$5::text[], $6::bytea[], $7::bytea[])",
                       7, NULL, params, NULL, NULL, 0);
    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK
        || PQntuples(res) != 1)
    {
        cluster_seterr(err, "the cluster database refused the change",
                       cluster_errmsg(res, c->wconn), 1);
        goto rollback;
    }

    *seq = cluster_u64(res, 0, 0);
    c->last_tag = cluster_u64(res, 0, 1);
    PQclear(res);

    res = PQexec(c->wconn, "COMMIT");
    if (res == NULL || PQresultStatus(res) != PGRES_COMMAND_OK) {
        cluster_seterr(err, "the cluster database failed while committing "
                       "(its change log tells whether the change was made)",
                       cluster_errmsg(res, c->wconn), 0);
        PQclear(res);
        cluster_writer_drop(c);
        __atomic_add_fetch(&c->refused, 1, __ATOMIC_RELAXED);
        c->in_txn = 0;
        pthread_mutex_unlock(&c->wmu);
        cluster_arrays_free(&arr);
        return -1;
    }

    PQclear(res);
    cluster_arrays_free(&arr);

    __atomic_add_fetch(&c->commits, 1, __ATOMIC_RELAXED);
    c->in_txn = 0;
    pthread_mutex_unlock(&c->wmu);

    return 0;

rollback:

    PQclear(res);
    cluster_arrays_free(&arr);
    __atomic_add_fetch(&c->refused, 1, __ATOMIC_RELAXED);
    cluster_unlock(c);

    return -1;
}


static uint64_t
cluster_last_tag(void *ctx)
{
    cluster_t  *c = ctx;

    return c->last_tag;
}


static void
cluster_unlock(void *ctx)
{
    cluster_t  *c = ctx;

    if (c->in_txn) {
        PQclear(PQexec(c->wconn, "ROLLBACK"));
        cluster_writer_drop(c);
        c->in_txn = 0;
    }

    pthread_mutex_unlock(&c->wmu);
}


/* ---- joining: seeding an empty cluster, bootstrapping a node ---- */

typedef struct {
    PGconn      *conn;
    PGresult    *res;
    int          row;
    char        *err;
    size_t       errlen;
    char         db[16];
    uint64_t     rows;
} cluster_boot_t;


static int
cluster_boot_next(void *arg, store_op_t *op, store_err_t *err)
{
    cluster_boot_t  *b = arg;
    char             sql[64];
    int              len;

    if (b->res == NULL || b->row >= PQntuples(b->res)) {
        PQclear(b->res);
        b->row = 0;

        snprintf(sql, sizeof(sql), "FETCH %d FROM zt_boot",
                 CLUSTER_BOOT_FETCH);
        b->res = cluster_exec(b->conn, sql, PGRES_TUPLES_OK, err->msg,
                              sizeof(err->msg),
                              "cannot read the cluster's state");
        if (b->res == NULL) {
            return -1;
        }

        if (PQntuples(b->res) == 0) {
            return 0;
        }
    }

    len = PQgetlength(b->res, b->row, 0);
    if (len <= 0 || len >= (int) sizeof(b->db)) {
        snprintf(err->msg, sizeof(err->msg), "the cluster database has an "
                 "invalid row");
        return -1;
    }

    memcpy(b->db, PQgetvalue(b->res, b->row, 0), (size_t) len);
    b->db[len] = '\0';

    op->db = b->db;
    op->key = PQgetvalue(b->res, b->row, 1);
    op->klen = (size_t) PQgetlength(b->res, b->row, 1);
    op->val = PQgetvalue(b->res, b->row, 2);
    op->vlen = (size_t) PQgetlength(b->res, b->row, 2);

    b->row++;
    b->rows++;

    return 1;
}


/* Load the cluster's state into the store, from one snapshot. */
static int
cluster_bootstrap(cluster_t *c, PGconn *conn, char *err, size_t errlen)
{
    cluster_boot_t   b;
    store_err_t      se;
    PGresult        *res;
    uint64_t         head, tag;
    char             id[STORE_CLUSTER_ID_LEN];

    res = cluster_exec(conn,
        "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;"
        "SELECT head, cluster_id, coalesce((SELECT tag FROM zt_changes"
        " WHERE seq = head), 0) FROM zt_cluster WHERE id = 1",
        PGRES_TUPLES_OK, err, errlen, "cannot read the cluster's state");
    if (res == NULL) {
        PQclear(PQexec(conn, "ROLLBACK"));
        return -1;
    }

    head = cluster_u64(res, 0, 0);
    snprintf(id, sizeof(id), "%s", PQgetvalue(res, 0, 1));
    tag = cluster_u64(res, 0, 2);
    PQclear(res);

    res = cluster_exec(conn, "DECLARE zt_boot BINARY NO SCROLL CURSOR FOR "
                       "SELECT db, k, v FROM zt_kv", PGRES_COMMAND_OK, err,
                       errlen, "cannot read the cluster's state");
    if (res == NULL) {
        PQclear(PQexec(conn, "ROLLBACK"));
        return -1;
    }
    PQclear(res);

    memset(&b, 0, sizeof(b));
    b.conn = conn;

    if (store_bootstrap(c->st, id, head, cluster_boot_next, &b, &se) != 0) {
        PQclear(b.res);
        PQclear(PQexec(conn, "ROLLBACK"));
        snprintf(err, errlen, "cannot bootstrap this node: %s", se.msg);
        return -1;
    }

    PQclear(b.res);
    PQclear(PQexec(conn, "COMMIT"));

    if (tag != 0 && store_cluster_set_tag(c->st, head, tag, &se) != 0) {
        log_warn("cluster: %s", se.msg);
    }

    snprintf(c->id, sizeof(c->id), "%s", id);
    __atomic_store_n(&c->pos, head, __ATOMIC_RELAXED);
    __atomic_store_n(&c->head, head, __ATOMIC_RELAXED);
    __atomic_add_fetch(&c->bootstraps, 1, __ATOMIC_RELAXED);
    __atomic_or_fetch(&c->touched, STORE_TOUCHED_DEVICES
                      | STORE_TOUCHED_BLOCKLIST | STORE_TOUCHED_USERS
                      | STORE_TOUCHED_SESSIONS, __ATOMIC_RELAXED);

    log_info("cluster %s: bootstrapped this node from the database: "
             "%" PRIu64 " records at change %" PRIu64, id, b.rows, head);

    return 0;
}


typedef struct {
    PGconn            *conn;
    cluster_arrays_t   arr;
    uint64_t           rows;
    char           *err;
    size_t          errlen;
} cluster_seed_t;


static int
cluster_seed_flush(cluster_seed_t *s)
{
    const char  *params[3];
    PGresult    *res;
    char         m[200];

    if (s->arr.n == 0) {
        return 0;
    }

    if (cluster_arrays_close(&s->arr) != 0) {
        snprintf(s->err, s->errlen, "out of memory");
        return -1;
    }

    params[0] = s->arr.dbs.p;
    params[1] = s->arr.keys.p;
    params[2] = s->arr.vals.p;

    res = PQexecParams(s->conn,
                       "INSERT INTO zt_kv (db, k, v, seq) SELECT d, k, v, 0 "
                       "FROM unnest($1::text[], $2::bytea[], $3::bytea[]) "
                       "AS t(d, k, v)", 3, NULL, params, NULL, NULL, 0);
    if (res == NULL || PQresultStatus(res) != PGRES_COMMAND_OK) {
        cluster_pqmsg(cluster_errmsg(res, s->conn), m, sizeof(m));
        snprintf(s->err, s->errlen, "cannot seed the cluster database: %s",
                 m);
        PQclear(res);
        return -1;
    }

    PQclear(res);
    cluster_arrays_reset(&s->arr);

    return 0;
}


static int
cluster_seed_row(void *arg, const store_op_t *op, store_err_t *err)
{
    cluster_seed_t  *s = arg;

    if (cluster_arrays_add(&s->arr, op) != 0) {
        snprintf(err->msg, sizeof(err->msg), "out of memory");
        return -1;
    }

    s->rows++;

    if (s->arr.n == CLUSTER_SEED_BATCH && cluster_seed_flush(s) != 0) {
        snprintf(err->msg, sizeof(err->msg), "%s", s->err);
        return -1;
    }

    return 0;
}


/*
 * The first node of an empty cluster: its store's records become the
 * cluster's state at change 0, under the cluster lock.  1 if seeded, 0
 * if the cluster was not empty after all, -1 on error.
 */
static int
cluster_seed(cluster_t *c, PGconn *conn, char *err, size_t errlen)
{
    cluster_seed_t   s;
    store_err_t      se;
    PGresult        *res;
    char             id[STORE_CLUSTER_ID_LEN];

    res = cluster_exec(conn,
        "BEGIN;"
        "SELECT cluster_id, head = 0 AND NOT EXISTS (SELECT 1 FROM zt_kv)"
        " FROM zt_cluster WHERE id = 1 FOR UPDATE",
        PGRES_TUPLES_OK, err, errlen, "cannot lock the cluster database");
    if (res == NULL) {
        PQclear(PQexec(conn, "ROLLBACK"));
        return -1;
    }

    snprintf(id, sizeof(id), "%s", PQgetvalue(res, 0, 0));

    if (strcmp(PQgetvalue(res, 0, 1), "t") != 0) {
        PQclear(res);
        PQclear(PQexec(conn, "ROLLBACK"));
        return 0;
    }

    PQclear(res);

    memset(&s, 0, sizeof(s));
    s.conn = conn;
    s.err = err;
    s.errlen = errlen;

    if (store_export(c->st, cluster_seed_row, &s, &se) != 0) {
        if (err[0] == '\0') {
            snprintf(err, errlen, "cannot seed the cluster: %s", se.msg);
        }
        goto failed;
    }

    if (cluster_seed_flush(&s) != 0) {
        goto failed;
    }

    res = cluster_exec(conn, "COMMIT", PGRES_COMMAND_OK, err, errlen,
                       "cannot seed the cluster database");
    if (res == NULL) {
        goto failed;
    }
    PQclear(res);

    cluster_arrays_free(&s.arr);

    if (store_cluster_join(c->st, id, 0, &se) != 0) {
        snprintf(err, errlen, "cannot join the cluster: %s", se.msg);
        return -1;
    }

    snprintf(c->id, sizeof(c->id), "%s", id);

    log_info("cluster %s: seeded the empty cluster database with this "
             "node's %" PRIu64 " records", id, s.rows);

    return 1;

failed:

    PQclear(PQexec(conn, "ROLLBACK"));
    cluster_arrays_free(&s.arr);

    return -1;
}


/*
 * Whether the database's change at the store's position is the one the
 * store applied (same tag): if not, the database was restored from a
 * backup and written again, and this copy follows a history that no
 * longer exists.  0 (same, or nothing to compare) or -1 with err.
 */
static int
cluster_check_history(cluster_t *c, PGconn *conn, char *err, size_t errlen)
{
    const char  *params[1];
    store_err_t  se;
    PGresult    *res;
    uint64_t     pos, tag, dbtag;
    char         p[24], m[200];
    int          rc;

    rc = store_cluster_tag(c->st, &pos, &tag, &se);
    if (rc != 0 || pos == 0 || tag == 0) {
        return 0;
    }

    snprintf(p, sizeof(p), "%" PRIu64, pos);
    params[0] = p;

    res = PQexecParams(conn, "SELECT tag FROM zt_changes WHERE seq = "
                       "$1::bigint", 1, NULL, params, NULL, NULL, 0);
    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
        cluster_pqmsg(cluster_errmsg(res, conn), m, sizeof(m));
        snprintf(err, errlen, "cannot read the change log: %s", m);
        PQclear(res);
        return -1;
    }

    /* pruned: nothing to compare */
    dbtag = PQntuples(res) == 1 ? cluster_u64(res, 0, 0) : tag;
    PQclear(res);

    if (dbtag != tag) {
        snprintf(err, errlen, "the cluster database's change %" PRIu64
                 " is not the one this node applied: the database was "
                 "restored from a backup and written again; move this "
                 "node's store aside to bootstrap it (docs/cluster.md)",
                 pos);
        return -1;
    }

    return 0;
}


/*
 * Make the store follow the database's cluster: check the store schema,
 * seed an empty cluster or bootstrap a new node, refuse a store of
 * another cluster or one ahead of the database.
 */
static int
cluster_join(cluster_t *c, PGconn *conn, char *err, size_t errlen)
{
    store_err_t  se;
    PGresult    *res;
    uint64_t     pos, head;
    unsigned     schema;
    char         dbid[STORE_CLUSTER_ID_LEN];
    int          rc;

    res = cluster_exec(conn, "SELECT cluster_id, head, store_schema, "
                       "EXISTS (SELECT 1 FROM zt_kv) FROM zt_cluster "
                       "WHERE id = 1", PGRES_TUPLES_OK, err, errlen,
                       "cannot read the cluster database");
    if (res == NULL) {
        return -1;
    }

    snprintf(dbid, sizeof(dbid), "%s", PQgetvalue(res, 0, 0));
    head = cluster_u64(res, 0, 1);
    schema = (unsigned) cluster_u64(res, 0, 2);
    PQclear(res);

    if (schema != STORE_SCHEMA_VERSION) {
        snprintf(err, errlen, "the cluster runs store schema %u and this "
                 "ztgate schema %u: every node must run the same release",
                 schema, STORE_SCHEMA_VERSION);
        return -1;
    }

    rc = store_cluster_state(c->st, c->id, &pos, &se);
    if (rc < 0) {
        snprintf(err, errlen, "%s", se.msg);
        return -1;
    }

    if (rc == STORE_NOTFOUND) {
        if (head == 0) {
            rc = cluster_seed(c, conn, err, errlen);
            if (rc != 0) {
                return rc < 0 ? -1 : 0;
            }
        }

        return cluster_bootstrap(c, conn, err, errlen);
    }

    if (strcmp(c->id, dbid) != 0) {
        snprintf(err, errlen, "this node's store belongs to cluster %s but "
                 "the database is cluster %s: move the store aside to "
                 "bootstrap this node from the database", c->id, dbid);
        return -1;
    }

    if (pos > head) {
        snprintf(err, errlen, "this node's store has applied change "
                 "%" PRIu64 " but the cluster database ends at %" PRIu64
                 " (was the database restored from a backup?): move the "
                 "store aside to bootstrap this node", pos, head);
        return -1;
    }

    if (cluster_check_history(c, conn, err, errlen) != 0) {
        return -1;
    }

    __atomic_store_n(&c->pos, pos, __ATOMIC_RELAXED);
    __atomic_store_n(&c->head, head, __ATOMIC_RELAXED);

    return 0;
}


void
cluster_conf_init(cluster_conf_t *cc, const config_t *cfg,
    const char *program)
{
    memset(cc, 0, sizeof(*cc));
    cc->conninfo = cfg->cluster_database;
    cc->node = cfg->cluster_node;
    cc->program = program;
    cc->max_stale_ms = cfg->cluster_max_staleness_ms;
    cc->poll_ms = cfg->cluster_poll_ms;
    cc->timeout_ms = cfg->cluster_timeout_ms;
    cc->retention_ms = cfg->cluster_retention_ms;
}


int
cluster_attach(cluster_t **cp, const cluster_conf_t *conf, store_t *st,
    char *err, size_t errlen)
{
    store_err_t  se;
    cluster_t   *c;
    PGconn      *conn;
    uint64_t     pos;
    int          rc;

    *cp = NULL;

    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }

    c->conf = *conf;
    snprintf(c->conninfo, sizeof(c->conninfo), "%s", conf->conninfo);
    snprintf(c->node, sizeof(c->node), "%s", conf->node);
    snprintf(c->program, sizeof(c->program), "%s",
             conf->program ? conf->program : "trustd");
    c->conf.conninfo = c->conninfo;
    c->conf.node = c->node;
    c->conf.program = c->program;
    c->st = st;
    c->wake[0] = c->wake[1] = -1;
    pthread_mutex_init(&c->wmu, NULL);
    pthread_mutex_init(&c->mu, NULL);

    conn = cluster_connect(c, err, errlen);
    if (conn == NULL) {
        /* a node that has joined may start offline (and fail closed
         * until the feed answers); a new one cannot */
        rc = store_cluster_state(st, c->id, &pos, &se);
        if (conf->may_start_offline && rc == 0) {
            log_warn("%s; starting from this node's store at change "
                     "%" PRIu64 ", failing closed until the database "
                     "answers", err, pos);
            __atomic_store_n(&c->pos, pos, __ATOMIC_RELAXED);
            __atomic_store_n(&c->head, pos, __ATOMIC_RELAXED);
            store_set_repl(st, &cluster_repl, c);
            *cp = c;
            return 0;
        }

        goto failed;
    }

    if (cluster_migrate(conn, err, errlen) != 0
        || cluster_join(c, conn, err, errlen) != 0)
    {
        PQfinish(conn);
        goto failed;
    }

    c->wconn = conn;
    __atomic_store_n(&c->feed_ok_ms, zt_clock_ms(CLOCK_MONOTONIC), __ATOMIC_RELEASE);
    store_set_repl(st, &cluster_repl, c);
    *cp = c;

    return 0;

failed:

    pthread_mutex_destroy(&c->wmu);
    pthread_mutex_destroy(&c->mu);
    free(c);

    return -1;
}


/* ---- the follower (trustd) ---- */

static void
cluster_lat_add(cluster_t *c, double ms)
{
    pthread_mutex_lock(&c->mu);
    c->lat[c->nlat % CLUSTER_LAT_RING] = ms < 0 ? 0 : ms;
    c->nlat++;
    pthread_mutex_unlock(&c->mu);
}


static void
cluster_feed_drop(cluster_t *c, const char *why)
{
    if (c->fconn != NULL) {
        PQfinish(c->fconn);
        c->fconn = NULL;
    }

    if (__atomic_exchange_n(&c->connected, 0, __ATOMIC_RELAXED)
        || strcmp(why, c->last_drop) != 0)
    {
        log_error("cluster change feed lost: %s; deciding from this "
                  "node's store (failing closed after %u ms without the "
                  "feed)", why, c->conf.max_stale_ms);
        snprintf(c->last_drop, sizeof(c->last_drop), "%s", why);
    }
}


static int
cluster_feed_connect(cluster_t *c)
{
    PGresult  *res;
    char       err[300];

    c->fconn = cluster_connect(c, err, sizeof(err));
    if (c->fconn == NULL) {
        if (c->backoff_ms == 0 || c->backoff_ms >= 2000) {
            log_warn("%s; retrying", err);
        }
        return -1;
    }

    res = cluster_exec(c->fconn, "LISTEN ztgate_changes", PGRES_COMMAND_OK,
                       err, sizeof(err), "cannot listen for changes");
    if (res == NULL) {
        cluster_feed_drop(c, err);
        return -1;
    }
    PQclear(res);

    if (PQsetnonblocking(c->fconn, 0) != 0) {
        cluster_feed_drop(c, "cannot set up the connection");
        return -1;
    }

    c->last_beat_ms = 0;

    return 0;
}


/* Read and apply what the change log has after this node's position. */
static int
cluster_follow(cluster_t *c, int *more)
{
    store_change_t  *chgs;
    store_op_t     **ops;
    char           **names;
    size_t          *opsizes, *namesizes;
    store_err_t      se;
    PGresult        *res, *hres;
    uint64_t         pos, head;
    unsigned         touched;
    int64_t          now;
    char             err[300];
    int              i, n, rc;

    *more = 0;

    hres = cluster_exec(c->fconn, "SELECT head, cluster_id FROM zt_cluster "
                        "WHERE id = 1", PGRES_TUPLES_OK, err, sizeof(err),
                        "cannot read the change-log head");
    if (hres == NULL) {
        cluster_feed_drop(c, err);
        return -1;
    }

    if (PQntuples(hres) != 1 || strcmp(PQgetvalue(hres, 0, 1), c->id) != 0) {
        snprintf(err, sizeof(err), "the database is not cluster %s", c->id);
        PQclear(hres);
        cluster_feed_drop(c, err);
        return -1;
    }

    head = cluster_u64(hres, 0, 0);
    __atomic_store_n(&c->head, head, __ATOMIC_RELAXED);
    PQclear(hres);

    pos = __atomic_load_n(&c->pos, __ATOMIC_RELAXED);

    if (head < pos) {
        /* restored from an older backup, or a failover lost changes:
         * this copy is ahead of the record; never follow it blindly */
        snprintf(err, sizeof(err), "the cluster database ends at change "
                 "%" PRIu64 " but this node has applied %" PRIu64 ": it "
                 "was restored or lost changes; move this node's store "
                 "aside to bootstrap it again (docs/cluster.md)", head, pos);
        cluster_feed_drop(c, err);
        return -1;
    }

    if (cluster_check_history(c, c->fconn, err, sizeof(err)) != 0) {
        cluster_feed_drop(c, err);
        return -1;
    }

    res = cluster_changes_query(c->fconn, pos, 0, CLUSTER_FETCH_MAX, err,
                                sizeof(err));
    if (res == NULL) {
        cluster_feed_drop(c, err);
        return -1;
    }

    n = PQntuples(res);
    rc = 0;

    if (n > 0) {
        chgs = calloc((size_t) n, sizeof(*chgs));
        ops = calloc((size_t) n, sizeof(*ops));
        names = calloc((size_t) n, sizeof(*names));
        opsizes = calloc((size_t) n, sizeof(*opsizes));
        namesizes = calloc((size_t) n, sizeof(*namesizes));

        if (chgs == NULL || ops == NULL || names == NULL || opsizes == NULL
            || namesizes == NULL)
        {
            log_error("cluster: out of memory applying changes");
            rc = -1;
        }

        for (i = 0; rc == 0 && i < n; i++) {
            if (cluster_change_decode(res, i, &chgs[i], &ops[i], &opsizes[i],
                                      &names[i], &namesizes[i])
                != 0)
            {
                log_error("cluster: change log entry %d unreadable", i);
                rc = -1;
            }
        }

        if (rc == 0) {
            rc = store_apply(c->st, chgs, (size_t) n, &touched, &se);

            if (rc == STORE_GAP) {
                log_warn("cluster: %s (pruned from the change log); "
                         "bootstrapping this node again", se.msg);
                PQclear(res);
                res = NULL;
                if (cluster_bootstrap(c, c->fconn, err, sizeof(err)) != 0) {
                    log_error("%s", err);
                    rc = -1;
                } else {
                    rc = 0;
                    *more = 1;
                }

            } else if (rc != 0) {
                log_error("cluster: cannot apply changes: %s", se.msg);

            } else {
                now = zt_clock_ms(CLOCK_REALTIME);
                for (i = 0; i < n; i++) {
                    if (chgs[i].seq > pos) {
                        cluster_lat_add(c, (double) (now - cluster_be64(
                                        PQgetvalue(res, i, 4))));
                    }
                }

                __atomic_store_n(&c->pos, chgs[n - 1].seq, __ATOMIC_RELAXED);
                __atomic_add_fetch(&c->applied, (uint64_t) n,
                                   __ATOMIC_RELAXED);
                __atomic_or_fetch(&c->touched, touched, __ATOMIC_RELAXED);
                *more = n == CLUSTER_FETCH_MAX;
            }
        }

        for (i = 0; i < n; i++) {
            if (ops != NULL) {
                free(ops[i]);
            }
            if (names != NULL) {
                free(names[i]);
            }
        }

        free(chgs);
        free(ops);
        free(names);
        free(opsizes);
        free(namesizes);
    }

    PQclear(res);

    if (rc != 0) {
        return -1;
    }

    __atomic_store_n(&c->feed_ok_ms, zt_clock_ms(CLOCK_MONOTONIC), __ATOMIC_RELEASE);

    /* connected: once the feed has been read, not merely reached */
    if (!__atomic_exchange_n(&c->connected, 1, __ATOMIC_RELAXED)) {
        log_info("cluster change feed connected (node %s, at change "
                 "%" PRIu64 ")", c->node,
                 __atomic_load_n(&c->pos, __ATOMIC_RELAXED));
    }

    return 0;
}


static void
cluster_heartbeat(cluster_t *c, int64_t now)
{
    const char  *params[4];
    PGresult    *res;
    char         pos[24], pol[64], ret[24];

    if (now - c->last_beat_ms < CLUSTER_HEARTBEAT_MS
        && !__atomic_exchange_n(&c->beat_now, 0, __ATOMIC_RELAXED))
    {
        return;
    }

    c->last_beat_ms = now;

    snprintf(pos, sizeof(pos), "%" PRIu64,
             __atomic_load_n(&c->pos, __ATOMIC_RELAXED));
    pthread_mutex_lock(&c->mu);
    snprintf(pol, sizeof(pol), "%s", c->policy);
    pthread_mutex_unlock(&c->mu);

    params[0] = c->node;
    params[1] = pos;
    params[2] = pol;
    params[3] = c->program;

    res = PQexecParams(c->fconn,
        "INSERT INTO zt_nodes (node, program, position, policy, started_at,"
        " seen_at) VALUES ($1, $4, $2::bigint, $3, now(), now())"
        " ON CONFLICT (node) DO UPDATE SET position = EXCLUDED.position,"
        " policy = EXCLUDED.policy, seen_at = now(),"
        " program = EXCLUDED.program",
        4, NULL, params, NULL, NULL, 0);
    PQclear(res);

    if (now - c->last_prune_ms < CLUSTER_PRUNE_MS) {
        return;
    }

    c->last_prune_ms = now;

    snprintf(ret, sizeof(ret), "%u", c->conf.retention_ms);
    params[0] = ret;

    res = PQexecParams(c->fconn,
        "DELETE FROM zt_changes WHERE at < now() - $1::bigint"
        " * interval '1 millisecond'", 1, NULL, params, NULL, NULL, 0);
    if (res != NULL && PQresultStatus(res) == PGRES_COMMAND_OK
        && strcmp(PQcmdTuples(res), "0") != 0)
    {
        log_info("cluster: pruned %s change-log entries older than the "
                 "retention", PQcmdTuples(res));
    }
    PQclear(res);
}


/* Carry out the writes the decision thread handed over. */
static void
cluster_deferred(cluster_t *c)
{
    cluster_sid_t    touch[CLUSTER_TOUCH_MAX];
    const char      *sids[CLUSTER_TOUCH_MAX];
    store_history_t *hist;
    store_err_t      se;
    size_t           ntouch, nhist, i;
    int64_t          before;
    unsigned         purged;

    pthread_mutex_lock(&c->mu);
    ntouch = c->ntouch;
    memcpy(touch, c->touch, ntouch * sizeof(touch[0]));
    c->ntouch = 0;
    hist = c->history;
    nhist = c->nhistory;
    c->history = NULL;
    c->nhistory = 0;
    before = c->purge_before;
    c->purge_before = 0;
    pthread_mutex_unlock(&c->mu);

    if (ntouch > 0) {
        for (i = 0; i < ntouch; i++) {
            sids[i] = touch[i].sid;
        }

        if (store_session_touch(c->st, sids, ntouch, (int64_t) time(NULL),
                                &se)
            != 0)
        {
            log_error("cannot record session activity: %s", se.msg);
        }
    }

    if (nhist > 0) {
        if (store_history_put_batch(c->st, hist, nhist, &se) != 0) {
            log_error("cannot record user history: %s", se.msg);
        }
    }

    free(hist);

    if (before > 0) {
        if (store_session_purge(c->st, before, &purged, &se) != 0) {
            log_error("session purge: %s", se.msg);
        } else if (purged > 0) {
            log_info("purged %u ended session%s", purged,
                     purged == 1 ? "" : "s");
        }
    }
}


static int
cluster_has_deferred(cluster_t *c)
{
    int  has;

    pthread_mutex_lock(&c->mu);
    has = c->ntouch > 0 || c->nhistory > 0 || c->purge_before > 0;
    pthread_mutex_unlock(&c->mu);

    return has;
}


static void *
cluster_main(void *arg)
{
    cluster_t      *c = arg;
    struct pollfd   pfd[2];
    PGnotify       *nt;
    int64_t         now;
    char            buf[64];
    int             more, nfds, timeout;

    while (!__atomic_load_n(&c->stop, __ATOMIC_ACQUIRE)) {
        more = 0;

        if (c->fconn == NULL) {
            if (cluster_feed_connect(c) != 0) {
                c->backoff_ms = c->backoff_ms ? c->backoff_ms * 2 : 250;
                if (c->backoff_ms > 2000) {
                    c->backoff_ms = 2000;
                }
            } else {
                c->backoff_ms = 0;
            }
        }

        if (c->fconn != NULL) {
            (void) cluster_follow(c, &more);
        }

        if (c->fconn != NULL) {
            now = zt_clock_ms(CLOCK_MONOTONIC);
            cluster_heartbeat(c, now);
        }

        if (cluster_has_deferred(c)) {
            cluster_deferred(c);
        }

        if (more) {
            continue;
        }

        nfds = 0;
        pfd[nfds].fd = c->wake[0];
        pfd[nfds].events = POLLIN;
        nfds++;

        if (c->fconn != NULL) {
            pfd[nfds].fd = PQsocket(c->fconn);
            pfd[nfds].events = POLLIN;
            nfds++;
        }

        timeout = c->fconn != NULL ? (int) c->conf.poll_ms
                  : (int) (c->backoff_ms ? c->backoff_ms : 250);

        if (poll(pfd, (nfds_t) nfds, timeout) < 0 && errno != EINTR) {
            log_error("cluster: poll: %s", strerror(errno));
            usleep(100000);
        }

        if (pfd[0].revents & POLLIN) {
            while (read(c->wake[0], buf, sizeof(buf)) > 0) {
                /* drained */
            }
        }

        if (nfds > 1 && pfd[1].revents != 0 && c->fconn != NULL) {
            if (PQconsumeInput(c->fconn) == 0) {
                char  m[200];

                cluster_pqmsg(PQerrorMessage(c->fconn), m, sizeof(m));
                cluster_feed_drop(c, m);
                continue;
            }

            while ((nt = PQnotifies(c->fconn)) != NULL) {
                PQfreemem(nt);
            }
        }
    }

    return NULL;
}


static void
cluster_wake(cluster_t *c)
{
    if (c->wake[1] != -1) {
        (void) !write(c->wake[1], "w", 1);
    }
}


int
cluster_start(cluster_t *c, char *err, size_t errlen)
{
    int  rc;

    if (pipe2(c->wake, O_CLOEXEC | O_NONBLOCK) != 0) {
        snprintf(err, errlen, "cluster: pipe: %s", strerror(errno));
        return -1;
    }

    rc = pthread_create(&c->thread, NULL, cluster_main, c);
    if (rc != 0) {
        snprintf(err, errlen, "cluster: cannot start the follower: %s",
                 strerror(rc));
        return -1;
    }

    c->started = 1;

    return 0;
}


void
cluster_free(cluster_t *c)
{
    if (c == NULL) {
        return;
    }

    if (c->started) {
        __atomic_store_n(&c->stop, 1, __ATOMIC_RELEASE);
        cluster_wake(c);
        pthread_join(c->thread, NULL);
        /* what the decision thread handed over last */
        if (c->fconn != NULL && cluster_has_deferred(c)) {
            cluster_deferred(c);
        }
    }

    store_set_repl(c->st, NULL, NULL);

    if (c->fconn != NULL) {
        PQfinish(c->fconn);
    }

    if (c->wconn != NULL) {
        PQfinish(c->wconn);
    }

    if (c->wake[0] != -1) {
        close(c->wake[0]);
        close(c->wake[1]);
    }

    free(c->history);
    pthread_mutex_destroy(&c->wmu);
    pthread_mutex_destroy(&c->mu);
    free(c);
}


int
cluster_stale(const cluster_t *c)
{
    int64_t  ok;

    ok = __atomic_load_n(&c->feed_ok_ms, __ATOMIC_ACQUIRE);

    return ok == 0 || zt_clock_ms(CLOCK_MONOTONIC) - ok > (int64_t) c->conf.max_stale_ms;
}


static int
cluster_dbl_cmp(const void *a, const void *b)
{
    double  x = *(const double *) a, y = *(const double *) b;

    return x < y ? -1 : x > y;
}


void
cluster_stats(cluster_t *c, cluster_stats_t *s)
{
    double    lat[CLUSTER_LAT_RING];
    size_t    n;
    int64_t   ok;

    memset(s, 0, sizeof(*s));
    snprintf(s->cluster_id, sizeof(s->cluster_id), "%s", c->id);
    s->position = __atomic_load_n(&c->pos, __ATOMIC_RELAXED);
    s->head = __atomic_load_n(&c->head, __ATOMIC_RELAXED);
    if (s->head < s->position) {
        s->head = s->position;
    }
    s->connected = __atomic_load_n(&c->connected, __ATOMIC_RELAXED);
    ok = __atomic_load_n(&c->feed_ok_ms, __ATOMIC_ACQUIRE);
    s->feed_age_ms = ok == 0 ? -1 : zt_clock_ms(CLOCK_MONOTONIC) - ok;
    s->stale = cluster_stale(c);
    s->applied = __atomic_load_n(&c->applied, __ATOMIC_RELAXED);
    s->commits = __atomic_load_n(&c->commits, __ATOMIC_RELAXED);
    s->refused = __atomic_load_n(&c->refused, __ATOMIC_RELAXED);
    s->bootstraps = __atomic_load_n(&c->bootstraps, __ATOMIC_RELAXED);
    s->deferred_dropped = __atomic_load_n(&c->dropped, __ATOMIC_RELAXED);

    pthread_mutex_lock(&c->mu);
    n = c->nlat < CLUSTER_LAT_RING ? (size_t) c->nlat : CLUSTER_LAT_RING;
    memcpy(lat, c->lat, n * sizeof(double));
    s->lat_count = c->nlat;
    pthread_mutex_unlock(&c->mu);

    if (n > 0) {
        qsort(lat, n, sizeof(double), cluster_dbl_cmp);
        s->lat_p50_ms = lat[(n - 1) / 2];
        s->lat_p99_ms = lat[(n - 1) * 99 / 100];
    }
}


unsigned
cluster_take_touched(cluster_t *c)
{
    return __atomic_exchange_n(&c->touched, 0, __ATOMIC_RELAXED);
}


void
cluster_set_policy(cluster_t *c, const char *version)
{
    pthread_mutex_lock(&c->mu);
    snprintf(c->policy, sizeof(c->policy), "%s", version ? version : "");
    pthread_mutex_unlock(&c->mu);

    /* tell the cluster now, not at the next heartbeat */
    __atomic_store_n(&c->beat_now, 1, __ATOMIC_RELAXED);
    cluster_wake(c);
}


void
cluster_defer_touch(cluster_t *c, const char *const *sids, size_t n)
{
    size_t  i, j;

    pthread_mutex_lock(&c->mu);

    for (i = 0; i < n; i++) {
        for (j = 0; j < c->ntouch; j++) {
            if (strcmp(c->touch[j].sid, sids[i]) == 0) {
                break;
            }
        }

        if (j < c->ntouch) {
            continue;
        }

        if (c->ntouch == CLUSTER_TOUCH_MAX) {
            __atomic_add_fetch(&c->dropped, 1, __ATOMIC_RELAXED);
            continue;
        }

        snprintf(c->touch[c->ntouch].sid, sizeof(c->touch[0].sid), "%s",
                 sids[i]);
        c->ntouch++;
    }

    pthread_mutex_unlock(&c->mu);

    cluster_wake(c);
}


void
cluster_defer_history(cluster_t *c, const store_history_t *rows, size_t n)
{
    store_history_t  *h;
    size_t            room;

    pthread_mutex_lock(&c->mu);

    if (c->history == NULL) {
        c->history = malloc(CLUSTER_HISTORY_MAX * sizeof(*c->history));
    }

    h = c->history;
    room = h != NULL ? CLUSTER_HISTORY_MAX - c->nhistory : 0;

    if (n > room) {
        __atomic_add_fetch(&c->dropped, n - room, __ATOMIC_RELAXED);
        n = room;
    }

    if (n > 0) {
        memcpy(h + c->nhistory, rows, n * sizeof(*rows));
        c->nhistory += n;
    }

    pthread_mutex_unlock(&c->mu);

    cluster_wake(c);
}


void
cluster_defer_purge(cluster_t *c, int64_t before)
{
    pthread_mutex_lock(&c->mu);
    c->purge_before = before;
    pthread_mutex_unlock(&c->mu);

    cluster_wake(c);
}


int
cluster_describe(const cluster_conf_t *conf, cluster_info_t *info,
    int (*cb)(void *arg, const cluster_node_t *node), void *arg, char *err,
    size_t errlen)
{
    cluster_node_t   n;
    cluster_t        c;
    PGconn          *conn;
    PGresult        *res;
    int              i, rc;

    memset(&c, 0, sizeof(c));
    c.conf = *conf;
    snprintf(c.conninfo, sizeof(c.conninfo), "%s", conf->conninfo);
    snprintf(c.node, sizeof(c.node), "%s", conf->node);
    snprintf(c.program, sizeof(c.program), "%s",
             conf->program ? conf->program : "ztctl");

    conn = cluster_connect(&c, err, errlen);
    if (conn == NULL) {
        return -1;
    }

    memset(info, 0, sizeof(*info));
    rc = -1;

    res = cluster_exec(conn, "SELECT c.cluster_id, c.head, c.store_schema,"
                       " (SELECT max(version) FROM zt_migrations),"
                       " (SELECT count(*) FROM zt_changes)"
                       " FROM zt_cluster c WHERE c.id = 1", PGRES_TUPLES_OK,
                       err, errlen, "cannot read the cluster database");
    if (res == NULL || PQntuples(res) != 1) {
        if (res != NULL) {
            snprintf(err, errlen, "the cluster database has no cluster yet "
                     "(no trustd has started on it)");
        }
        PQclear(res);
        goto done;
    }

    snprintf(info->cluster_id, sizeof(info->cluster_id), "%s",
             PQgetvalue(res, 0, 0));
    info->head = cluster_u64(res, 0, 1);
    info->store_schema = (unsigned) cluster_u64(res, 0, 2);
    info->migrations = (unsigned) cluster_u64(res, 0, 3);
    info->changes = cluster_u64(res, 0, 4);
    PQclear(res);

    res = cluster_exec(conn, "SELECT node, program, position, policy,"
                       " (extract(epoch FROM now() - seen_at) * 1000)::bigint"
                       " FROM zt_nodes ORDER BY node", PGRES_TUPLES_OK, err,
                       errlen, "cannot read the cluster's nodes");
    if (res == NULL) {
        goto done;
    }

    for (i = 0; i < PQntuples(res); i++) {
        memset(&n, 0, sizeof(n));
        snprintf(n.node, sizeof(n.node), "%s", PQgetvalue(res, i, 0));
        snprintf(n.program, sizeof(n.program), "%s", PQgetvalue(res, i, 1));
        n.position = cluster_u64(res, i, 2);
        snprintf(n.policy, sizeof(n.policy), "%s", PQgetvalue(res, i, 3));
        n.seen_age_ms = strtoll(PQgetvalue(res, i, 4), NULL, 10);

        if (cb(arg, &n) != 0) {
            break;
        }
    }

    PQclear(res);
    rc = 0;

done:

    PQfinish(conn);

    return rc;
}
