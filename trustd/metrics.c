/*
 * trustd metrics: counters, the Prometheus text renderer and the HTTP
 * endpoint.  See metrics.h.
 */

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <microhttpd.h>

#include "zt_wire.h"
#include "config.h"
#include "log.h"
#include "mhd_util.h"
#include "metrics.h"
#include "sock.h"


#define METRICS_SOCKET_MODE     0660
#define METRICS_CONN_LIMIT      32
#define METRICS_CONN_TIMEOUT    10          /* seconds */
#define METRICS_BUF_MIN         16384
#define METRICS_CONTENT_TYPE    "text/plain; version=0.0.4; charset=utf-8"

struct metrics_s {
    struct MHD_Daemon  *daemon;
    pthread_mutex_t     lock;               /* text and len */
    char               *text;               /* NULL: nothing published */
    size_t              len;
    char                path[CONFIG_LISTEN_MAX];    /* "" unless a socket */
    dev_t               sock_dev;
    ino_t               sock_ino;
};

/* The text being rendered. */
typedef struct {
    char       *p;
    size_t      len;
    size_t      cap;
    int         failed;                     /* out of memory */
} metrics_buf_t;


static unsigned metrics_rule_find(metrics_decisions_t *md,
    const pol_decision_t *pd);
static void metrics_copy(char *dst, const pol_str_t *s);
static void metrics_printf(metrics_buf_t *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void metrics_family(metrics_buf_t *b, const char *name,
    const char *type, const char *help);
static void metrics_label_value(metrics_buf_t *b, const char *s);
static void metrics_rule_sample(metrics_buf_t *b, const char *app,
    const char *rule, uint64_t n);
static void metrics_render_decisions(metrics_buf_t *b,
    const metrics_decisions_t *md);
static void metrics_render_cluster(metrics_buf_t *b,
    const cluster_stats_t *cs);
static void metrics_render_journal(metrics_buf_t *b,
    const journal_stats_t *js);
static int metrics_listen_inet(const char *where, int *fdp, char *err,
    size_t errsize);
static enum MHD_Result metrics_access(void *cls, struct MHD_Connection *c,
    const char *url, const char *method, const char *version,
    const char *upload_data, size_t *upload_data_size, void **con_cls);
static enum MHD_Result metrics_refuse(struct MHD_Connection *c,
    unsigned status);


/* Upper bounds of the finite buckets, and the same as le label values. */
static const uint64_t  metrics_lat_ns[METRICS_LAT_BUCKETS] = {
    1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000,
    1000000, 2500000, 5000000, 10000000, 25000000
};

static const char  *metrics_lat_le[METRICS_LAT_BUCKETS] = {
    "1e-06", "2.5e-06", "5e-06", "1e-05", "2.5e-05", "5e-05", "0.0001",
    "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025"
};

static uint64_t  metrics_portal[METRICS_PORTAL_EVENTS];


/* ---- counters ------------------------------------------------------- */


void
metrics_portal_count(metrics_portal_event_t ev)
{
    __atomic_fetch_add(&metrics_portal[ev], 1, __ATOMIC_RELAXED);
}


void
metrics_portal_read(uint64_t *out)
{
    unsigned  i;

    for (i = 0; i < METRICS_PORTAL_EVENTS; i++) {
        out[i] = __atomic_load_n(&metrics_portal[i], __ATOMIC_RELAXED);
    }
}


void
metrics_decision(metrics_decisions_t *md, unsigned outcome, uint64_t ns,
    const pol_decision_t *pd)
{
    const void  *key;
    uint64_t     h;
    unsigned     i, n, idx;

    md->outcome[outcome < METRICS_OUTCOMES ? outcome : 0]++;
    md->lat_sum_ns += ns;

    for (i = 0; i < METRICS_LAT_BUCKETS && ns > metrics_lat_ns[i]; i++) {
        /* the first bucket whose bound holds ns */
    }
    md->lat[i]++;

    if (pd == NULL) {
        md->builtin++;
        return;
    }

    if (pd->rule.len == 0) {
        md->default_deny++;
        return;
    }

    /* the rule's name is its identity while this policy runs */
    key = pd->rule.data;
    h = (uint64_t) (uintptr_t) key * 0x9e3779b97f4a7c15ull;
    i = (unsigned) (h >> 32) & (METRICS_RULE_SLOTS - 1);

    for (n = 0; n < METRICS_RULE_SLOTS; n++) {
        if (md->slots[i].key == key) {
            idx = md->slots[i].idx;
            goto found;
        }

        if (md->slots[i].key == NULL) {
            break;
        }

        i = (i + 1) & (METRICS_RULE_SLOTS - 1);
    }

    /* first time with this policy: by name (a few times per reload) */
    idx = metrics_rule_find(md, pd);

    if (n < METRICS_RULE_SLOTS && md->slots[i].key == NULL
        && md->nslots < METRICS_RULE_SLOTS / 4 * 3)
    {
        md->slots[i].key = key;
        md->slots[i].idx = idx;
        md->nslots++;
    }

found:

    if (idx < METRICS_RULES) {
        md->rules[idx].decisions++;
    } else {
        md->other++;
    }
}


/* Copy a policy string into a label buffer, cut to fit. */
static void
metrics_copy(char *dst, const pol_str_t *s)
{
    size_t  n;

    n = s->len < METRICS_LABEL_MAX - 1 ? s->len : METRICS_LABEL_MAX - 1;
    if (n > 0) {
        memcpy(dst, s->data, n);
    }
    dst[n] = '\0';
}


/*
 * The label pair of pd's rule: an existing one with the same names, a
 * new one, the place of one the running policy has not used, or
 * METRICS_RULES ("other") when all are taken.  A label pair given up
 * loses its count; its series ends, as a removed rule's does.
 */
static unsigned
metrics_rule_find(metrics_decisions_t *md, const pol_decision_t *pd)
{
    char             app[METRICS_LABEL_MAX], rule[METRICS_LABEL_MAX];
    metrics_rule_t  *r;
    unsigned         i;

    metrics_copy(app, &pd->app);
    metrics_copy(rule, &pd->rule);

    for (i = 0; i < md->nrules; i++) {
        r = &md->rules[i];
        if (strcmp(r->app, app) == 0 && strcmp(r->rule, rule) == 0) {
            r->current = 1;
            return i;
        }
    }

    if (md->nrules < METRICS_RULES) {
        i = md->nrules++;

    } else {
        /* no slot refers to a label pair not current: safe to reuse */
        for (i = 0; i < METRICS_RULES && md->rules[i].current; i++) {
            /* the first one the running policy has not used */
        }

        if (i == METRICS_RULES) {
            return METRICS_RULES;
        }
    }

    r = &md->rules[i];
    memcpy(r->app, app, sizeof(app));
    memcpy(r->rule, rule, sizeof(rule));
    r->decisions = 0;
    r->current = 1;

    return i;
}


void
metrics_policy_changed(metrics_decisions_t *md)
{
    unsigned  i;

    memset(md->slots, 0, sizeof(md->slots));
    md->nslots = 0;

    for (i = 0; i < md->nrules; i++) {
        md->rules[i].current = 0;
    }
}


/* ---- rendering ------------------------------------------------------ */


static void
metrics_printf(metrics_buf_t *b, const char *fmt, ...)
{
    va_list   ap;
    size_t    cap;
    char     *p;
    int       n;

    if (b->failed) {
        return;
    }

    for ( ;; ) {
        va_start(ap, fmt);
        n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);

        if (n < 0) {
            b->failed = 1;
            return;
        }

        if ((size_t) n < b->cap - b->len) {
            b->len += (size_t) n;
            return;
        }

        cap = b->cap * 2 + (size_t) n;
        p = realloc(b->p, cap);
        if (p == NULL) {
            b->failed = 1;
            return;
        }

        b->p = p;
        b->cap = cap;
    }
}


static void
metrics_family(metrics_buf_t *b, const char *name, const char *type,
    const char *help)
{
    metrics_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name,
                   type);
}


/* A label value: backslash, double quote and newline escaped. */
static void
metrics_label_value(metrics_buf_t *b, const char *s)
{
    char    out[2 * METRICS_LABEL_MAX + 1];
    size_t  n;

    for (n = 0; *s != '\0' && n < sizeof(out) - 2; s++) {
        if (*s == '\\' || *s == '"') {
            out[n++] = '\\';
            out[n++] = *s;

        } else if (*s == '\n') {
            out[n++] = '\\';
            out[n++] = 'n';

        } else if ((unsigned char) *s < 0x20 || *s == 0x7f) {
            out[n++] = '?';

        } else {
            out[n++] = *s;
        }
    }

    out[n] = '\0';

    metrics_printf(b, "\"%s\"", out);
}


static void
metrics_rule_sample(metrics_buf_t *b, const char *app, const char *rule,
    uint64_t n)
{
    metrics_printf(b, "ztgate_rule_decisions_total{app=");
    metrics_label_value(b, app);
    metrics_printf(b, ",rule=");
    metrics_label_value(b, rule);
    metrics_printf(b, "} %llu\n", (unsigned long long) n);
}


static void
metrics_render_decisions(metrics_buf_t *b, const metrics_decisions_t *md)
{
    static const struct {
        unsigned     outcome;
        const char  *name;
    } outcomes[] = {
        { WIRE_ALLOW, "allow" }, { WIRE_DENY, "deny" },
        { WIRE_LOGIN, "login" }, { WIRE_STEP_UP, "step_up" }
    };
    uint64_t  cum;
    unsigned  i;

    metrics_family(b, "ztgate_decisions_total", "counter",
                   "Decisions trustd made, by outcome.");
    for (i = 0; i < sizeof(outcomes) / sizeof(outcomes[0]); i++) {
        metrics_printf(b, "ztgate_decisions_total{outcome=\"%s\"} %llu\n",
                       outcomes[i].name,
                       (unsigned long long) md->outcome[outcomes[i].outcome]);
    }

    metrics_family(b, "ztgate_rule_decisions_total", "counter",
                   "Decisions by the policy rule that made them (app \"\": "
                   "rule builtin = no policy rule consulted, default = the "
                   "default deny, other = rules past the first 64).");
    metrics_rule_sample(b, "", "builtin", md->builtin);
    metrics_rule_sample(b, "", "default", md->default_deny);
    for (i = 0; i < md->nrules; i++) {
        metrics_rule_sample(b, md->rules[i].app, md->rules[i].rule,
                            md->rules[i].decisions);
    }
    metrics_rule_sample(b, "", "other", md->other);

    metrics_family(b, "ztgate_decision_duration_seconds", "histogram",
                   "Time to decide one request: store read, session "
                   "check, policy, score and journal queueing.");
    cum = 0;
    for (i = 0; i < METRICS_LAT_BUCKETS; i++) {
        cum += md->lat[i];
        metrics_printf(b, "ztgate_decision_duration_seconds_bucket"
                       "{le=\"%s\"} %llu\n", metrics_lat_le[i],
                       (unsigned long long) cum);
    }
    cum += md->lat[METRICS_LAT_BUCKETS];
    metrics_printf(b, "ztgate_decision_duration_seconds_bucket{le=\"+Inf\"} "
                   "%llu\n"
                   "ztgate_decision_duration_seconds_sum %.9f\n"
                   "ztgate_decision_duration_seconds_count %llu\n",
                   (unsigned long long) cum,
                   (double) md->lat_sum_ns / 1e9, (unsigned long long) cum);
}


/* Cluster mode: how far behind this node is, and the writes it made. */
static void
metrics_render_cluster(metrics_buf_t *b, const cluster_stats_t *cs)
{
    metrics_family(b, "ztgate_cluster_position", "gauge",
                   "The last change-log entry applied to this node's store.");
    metrics_printf(b, "ztgate_cluster_position %llu\n",
                   (unsigned long long) cs->position);

    metrics_family(b, "ztgate_cluster_lag_changes", "gauge",
                   "Changes in the cluster database not yet applied here.");
    metrics_printf(b, "ztgate_cluster_lag_changes %llu\n",
                   (unsigned long long) (cs->head - cs->position));

    metrics_family(b, "ztgate_cluster_feed_connected", "gauge",
                   "1 while the change feed from PostgreSQL is connected.");
    metrics_printf(b, "ztgate_cluster_feed_connected %d\n", cs->connected);

    metrics_family(b, "ztgate_cluster_feed_age_seconds", "gauge",
                   "Since the change feed last answered (-1: never).");
    metrics_printf(b, "ztgate_cluster_feed_age_seconds %.3f\n",
                   cs->feed_age_ms < 0 ? -1.0
                   : (double) cs->feed_age_ms / 1000.0);

    metrics_family(b, "ztgate_cluster_stale", "gauge",
                   "1 while decisions fail closed: the feed has been away "
                   "longer than cluster_max_staleness.");
    metrics_printf(b, "ztgate_cluster_stale %d\n", cs->stale);

    metrics_family(b, "ztgate_cluster_changes_applied_total", "counter",
                   "Change-log entries the follower read and applied here "
                   "(entries this node wrote itself included).");
    metrics_printf(b, "ztgate_cluster_changes_applied_total %llu\n",
                   (unsigned long long) cs->applied);

    metrics_family(b, "ztgate_cluster_writes_total", "counter",
                   "Writes by this trustd, by result.");
    metrics_printf(b, "ztgate_cluster_writes_total{result=\"committed\"} "
                   "%llu\n", (unsigned long long) cs->commits);
    metrics_printf(b, "ztgate_cluster_writes_total{result=\"refused\"} "
                   "%llu\n", (unsigned long long) cs->refused);

    metrics_family(b, "ztgate_cluster_deferred_dropped_total", "counter",
                   "Session-activity and user-history updates dropped "
                   "because the follower's queue was full.");
    metrics_printf(b, "ztgate_cluster_deferred_dropped_total %llu\n",
                   (unsigned long long) cs->deferred_dropped);

    metrics_family(b, "ztgate_cluster_bootstraps_total", "counter",
                   "Times this node loaded the whole state from PostgreSQL.");
    metrics_printf(b, "ztgate_cluster_bootstraps_total %llu\n",
                   (unsigned long long) cs->bootstraps);

    metrics_family(b, "ztgate_cluster_propagation_seconds", "summary",
                   "From a change's commit elsewhere to its application "
                   "here (last 1024 changes).");
    metrics_printf(b, "ztgate_cluster_propagation_seconds{quantile=\"0.5\"}"
                   " %.4f\n", cs->lat_p50_ms / 1000.0);
    metrics_printf(b, "ztgate_cluster_propagation_seconds{quantile=\"0.99\"}"
                   " %.4f\n", cs->lat_p99_ms / 1000.0);
    metrics_printf(b, "ztgate_cluster_propagation_seconds_count %llu\n",
                   (unsigned long long) cs->lat_count);
}


static void
metrics_render_journal(metrics_buf_t *b, const journal_stats_t *js)
{
    const struct {
        const char  *name;
        const char  *help;
        uint64_t     value;
    } counters[] = {
        { "ztgate_journal_records_queued_total",
          "Decision records queued for the journal.", js->queued },
        { "ztgate_journal_decisions_folded_total",
          "Decisions folded into an identical queued record.", js->folded },
        { "ztgate_journal_records_written_total",
          "Decision records appended to the store's journal.", js->written },
        { "ztgate_journal_decisions_dropped_total",
          "Decisions that could not be queued (queue full).", js->dropped },
        { "ztgate_journal_append_failures_total",
          "Journal appends that failed (disk or store full, I/O error).",
          js->failures },
        { "ztgate_journal_records_purged_total",
          "Journal records removed by journal_retention.", js->purged }
    };
    unsigned  i;

    for (i = 0; i < sizeof(counters) / sizeof(counters[0]); i++) {
        metrics_family(b, counters[i].name, "counter", counters[i].help);
        metrics_printf(b, "%s %llu\n", counters[i].name,
                       (unsigned long long) counters[i].value);
    }

    metrics_family(b, "ztgate_journal_pending_records", "gauge",
                   "Decision records waiting to be written.");
    metrics_printf(b, "ztgate_journal_pending_records %u\n", js->pending);

    metrics_family(b, "ztgate_journal_failing", "gauge",
                   "1 while the last journal append failed.");
    metrics_printf(b, "ztgate_journal_failing %d\n", js->failing ? 1 : 0);
}


char *
metrics_render(const metrics_snapshot_t *s, size_t *len)
{
    static const char  *posture[METRICS_POSTURE_STATES] = {
        "fresh", "stale", "missing"
    };
    metrics_buf_t  b;
    unsigned       i;

    b.cap = METRICS_BUF_MIN;
    b.len = 0;
    b.failed = 0;
    b.p = malloc(b.cap);
    if (b.p == NULL) {
        return NULL;
    }
    b.p[0] = '\0';

    if (s->decisions != NULL) {
        metrics_render_decisions(&b, s->decisions);
    }

    metrics_family(&b, "ztgate_logins_total", "counter",
                   "Sign-in and step-up attempts checked by the portal, by "
                   "outcome (audit login.success, login.failure).");
    metrics_printf(&b, "ztgate_logins_total{outcome=\"success\"} %llu\n"
                   "ztgate_logins_total{outcome=\"failure\"} %llu\n",
                   (unsigned long long) s->portal[METRICS_LOGIN_SUCCESS],
                   (unsigned long long) s->portal[METRICS_LOGIN_FAILURE]);

    metrics_family(&b, "ztgate_lockouts_total", "counter",
                   "Users locked after lockout_threshold failures (audit "
                   "user.locked).");
    metrics_printf(&b, "ztgate_lockouts_total %llu\n",
                   (unsigned long long) s->portal[METRICS_LOCKOUT]);

    metrics_family(&b, "ztgate_policy_reloads_total", "counter",
                   "Configuration and policy reloads (SIGHUP, admin "
                   "reload), by result.");
    metrics_printf(&b, "ztgate_policy_reloads_total{result=\"ok\"} %llu\n"
                   "ztgate_policy_reloads_total{result=\"failed\"} %llu\n",
                   (unsigned long long) s->reloads_ok,
                   (unsigned long long) s->reloads_failed);

    metrics_family(&b, "ztgate_policy_info", "gauge",
                   "The running policy's version (built-in: no policy "
                   "file).");
    metrics_printf(&b, "ztgate_policy_info{version=");
    metrics_label_value(&b, s->policy_version != NULL ? s->policy_version
                                                      : "built-in");
    metrics_printf(&b, "} 1\n");

    metrics_family(&b, "ztgate_policy_rules", "gauge",
                   "Rules in the running policy.");
    metrics_printf(&b, "ztgate_policy_rules %u\n", s->policy_rules);

    if (s->store_file_bytes >= 0) {
        metrics_family(&b, "ztgate_store_file_bytes", "gauge",
                       "Size of the store's data.mdb on disk.");
        metrics_printf(&b, "ztgate_store_file_bytes %lld\n",
                       (long long) s->store_file_bytes);
    }

    metrics_family(&b, "ztgate_store_map_bytes", "gauge",
                   "The store's map size: the most it may grow to.");
    metrics_printf(&b, "ztgate_store_map_bytes %llu\n",
                   (unsigned long long) s->store_map_bytes);

    if (s->posture_known) {
        metrics_family(&b, "ztgate_devices", "gauge",
                       "Active and quarantined devices by posture: fresh, "
                       "stale (older than posture_max_age) or missing "
                       "(never reported).");
        for (i = 0; i < METRICS_POSTURE_STATES; i++) {
            metrics_printf(&b, "ztgate_devices{posture=\"%s\"} %llu\n",
                           posture[i], (unsigned long long) s->posture[i]);
        }

        metrics_family(&b, "ztgate_devices_timestamp_seconds", "gauge",
                       "When ztgate_devices was counted (at most every "
                       "60 s).");
        metrics_printf(&b, "ztgate_devices_timestamp_seconds %.3f\n",
                       s->posture_time);
    }

    if (s->has_journal) {
        metrics_render_journal(&b, &s->journal);
    }

    if (s->has_cluster) {
        metrics_render_cluster(&b, &s->cluster);
    }

    metrics_family(&b, "ztgate_nginx_connections", "gauge",
                   "Decision connections open from nginx workers.");
    metrics_printf(&b, "ztgate_nginx_connections %u\n", s->connections);

    metrics_family(&b, "ztgate_process_start_time_seconds", "gauge",
                   "When trustd started, in unix seconds.");
    metrics_printf(&b, "ztgate_process_start_time_seconds %.3f\n",
                   s->start_time);

    metrics_family(&b, "ztgate_metrics_snapshot_timestamp_seconds", "gauge",
                   "When trustd rendered these metrics, in unix seconds.");
    metrics_printf(&b, "ztgate_metrics_snapshot_timestamp_seconds %.3f\n",
                   s->time);

    if (b.failed) {
        free(b.p);
        return NULL;
    }

    *len = b.len;

    return b.p;
}


/* ---- the HTTP endpoint ---------------------------------------------- */



/* A listening TCP socket on a loopback ADDR:PORT. */
static int
metrics_listen_inet(const char *where, int *fdp, char *err,
    size_t errsize)
{
    struct sockaddr_storage  ss;
    socklen_t                len;
    int                      fd, one;

    *fdp = -1;

    if (config_parse_loopback(where, &ss, &len) != 0) {
        snprintf(err, errsize, "\"%s\" is not a loopback ADDRESS:PORT",
                 where);
        return -1;
    }

    fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                0);
    if (fd == -1) {
        snprintf(err, errsize, "socket: %s", strerror(errno));
        return -1;
    }

    one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1
        || bind(fd, (struct sockaddr *) &ss, len) == -1
        || listen(fd, SOMAXCONN) == -1)
    {
        snprintf(err, errsize, "%s: %s", where, strerror(errno));
        close(fd);
        return -1;
    }

    *fdp = fd;

    return 0;
}


int
metrics_start(metrics_t **out, const char *where, char *err,
    size_t errsize)
{
    metrics_t  *m;
    int         fd;

    *out = NULL;

    m = calloc(1, sizeof(*m));
    if (m == NULL) {
        snprintf(err, errsize, "out of memory");
        return -1;
    }

    if (pthread_mutex_init(&m->lock, NULL) != 0) {
        snprintf(err, errsize, "pthread_mutex_init failed");
        free(m);
        return -1;
    }

    if (where[0] == '/') {
        if (sock_listen(where, METRICS_SOCKET_MODE, &fd, &m->sock_dev,
                        &m->sock_ino, err, errsize)
            != 0)
        {
            goto failed;
        }
        snprintf(m->path, sizeof(m->path), "%s", where);

    } else if (metrics_listen_inet(where, &fd, err, errsize) != 0) {
        goto failed;
    }

    m->daemon = zt_mhd_start(fd, &(zt_mhd_conf_t) {
        .name = "metrics", .access = metrics_access, .cls = m,
        .conn_limit = METRICS_CONN_LIMIT,
        .conn_timeout = METRICS_CONN_TIMEOUT });

    if (m->daemon == NULL) {
        snprintf(err, errsize, "cannot start libmicrohttpd on %s", where);
        close(fd);
        if (m->path[0] != '\0') {
            sock_unlink(m->path, m->sock_dev, m->sock_ino);
        }
        goto failed;
    }

    *out = m;

    return 0;

failed:

    pthread_mutex_destroy(&m->lock);
    free(m);

    return -1;
}


int
metrics_publish(metrics_t *m, char *text, size_t len)
{
    char  *old;

    if (m == NULL) {
        free(text);
        return 0;
    }

    /* the decision thread never waits for a scrape */
    if (pthread_mutex_trylock(&m->lock) != 0) {
        free(text);
        return -1;
    }

    old = m->text;
    m->text = text;
    m->len = len;

    pthread_mutex_unlock(&m->lock);

    free(old);

    return 0;
}


void
metrics_stop(metrics_t *m)
{
    if (m == NULL) {
        return;
    }

    /* joins the thread and closes the listening socket */
    if (m->daemon != NULL) {
        MHD_stop_daemon(m->daemon);
    }

    if (m->path[0] != '\0') {
        sock_unlink(m->path, m->sock_dev, m->sock_ino);
    }

    pthread_mutex_destroy(&m->lock);
    free(m->text);
    free(m);
}


/* A short plain-text answer for a request that gets no metrics. */
static enum MHD_Result
metrics_refuse(struct MHD_Connection *c, unsigned status)
{
    static char           method[] = "only GET and HEAD\n";
    static char           path[] = "metrics are at /metrics\n";
    static char           none[] = "no metrics yet\n";    /* never written */
    struct MHD_Response  *resp;
    enum MHD_Result       ret;
    char                 *body;

    body = status == MHD_HTTP_METHOD_NOT_ALLOWED ? method
           : status == MHD_HTTP_NOT_FOUND ? path : none;

    resp = MHD_create_response_from_buffer(strlen(body), body,
                                           MHD_RESPMEM_PERSISTENT);
    if (resp == NULL) {
        return MHD_NO;
    }

    MHD_add_response_header(resp, "Content-Type",
                            "text/plain; charset=utf-8");
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED) {
        MHD_add_response_header(resp, "Allow", "GET, HEAD");
    }

    ret = MHD_queue_response(c, status, resp);
    MHD_destroy_response(resp);

    return ret;
}


static enum MHD_Result
metrics_access(void *cls, struct MHD_Connection *c, const char *url,
    const char *method, const char *version, const char *upload_data,
    size_t *upload_data_size, void **con_cls)
{
    metrics_t            *m = cls;
    struct MHD_Response  *resp;
    enum MHD_Result       ret;

    (void) version;
    (void) upload_data;
    (void) upload_data_size;
    (void) con_cls;

    /* answered on the first call, with the headers: a body is not read */
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0
        && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
    {
        return metrics_refuse(c, MHD_HTTP_METHOD_NOT_ALLOWED);
    }

    if (strcmp(url, "/metrics") != 0 && strcmp(url, "/") != 0) {
        return metrics_refuse(c, MHD_HTTP_NOT_FOUND);
    }

    /* a copy, under the lock that publishing only ever try-locks */
    pthread_mutex_lock(&m->lock);

    resp = NULL;
    if (m->text != NULL) {
        resp = MHD_create_response_from_buffer(m->len, m->text,
                                                MHD_RESPMEM_MUST_COPY);
    }

    pthread_mutex_unlock(&m->lock);

    if (resp == NULL) {
        return metrics_refuse(c, MHD_HTTP_SERVICE_UNAVAILABLE);
    }

    MHD_add_response_header(resp, "Content-Type", METRICS_CONTENT_TYPE);
    MHD_add_response_header(resp, "Cache-Control", "no-store");

    ret = MHD_queue_response(c, MHD_HTTP_OK, resp);
    MHD_destroy_response(resp);

    return ret;
}
