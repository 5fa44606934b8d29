/*
 * trustd server loop.  See server.h.
 *
 * One epoll set, level-triggered.  Each connection has a fixed input
 * buffer of two maximum frames and an output buffer that grows up to
 * SERVER_OUT_CAP (plus one answer); past the cap the connection is not
 * read until its peer has taken some answers, so a peer that does not
 * read cannot make trustd buffer without bound.
 */

#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "zt_wire.h"
#include "decide.h"
#include "journal.h"
#include "cluster.h"
#include "identity.h"
#include "log.h"
#include "metrics.h"
#include "portal.h"
#include "server.h"
#include "sock.h"


#define SERVER_IN_SIZE          (2 * WIRE_MAX_FRAME)
#define SERVER_OUT_MIN          4096
#define SERVER_OUT_MAX          (SERVER_OUT_CAP + WIRE_MAX_FRAME)
#define SERVER_EVENTS           64
#define SERVER_ACCEPT_BATCH     64
#define SERVER_OUT_KEEP         65536   /* drained buffers above: freed */
#define SERVER_CONN_FAILED      (-100)  /* not a wire_rc: local failure */
#define SERVER_ADMIN_MODE       0660
#define SERVER_ADMIN_LINE       1024    /* "explain" carries a URL */
#define SERVER_ADMIN_CONNS      4
#define SERVER_REPLY_SIZE       8192
#define SERVER_LAT_BUCKETS      2000    /* 50 ns each: 0..100 us */
#define SERVER_LAT_STEP_NS      50

typedef enum {
    SERVER_EV_LISTEN = 1,
    SERVER_EV_SIGNAL,
    SERVER_EV_TIMER,
    SERVER_EV_CONN,
    SERVER_EV_ADMIN_LISTEN,
    SERVER_EV_ADMIN,
    SERVER_EV_METRICS
} server_ev_type_t;

/* The first member of everything registered with epoll. */
typedef struct {
    server_ev_type_t    type;
    int                 fd;
} server_ev_t;

typedef struct server_conn_s  server_conn_t;

/* A connection on the admin socket: one command line, one reply. */
typedef struct {
    server_ev_t      ev;            /* first; fd -1 when the slot is free */
    uid_t            uid;
    pid_t            pid;
    size_t           len;
    char             buf[SERVER_ADMIN_LINE];
} server_admin_t;

/* A count of devices by posture freshness (server_posture_census()). */
typedef struct {
    store_view_t    *view;
    int64_t          now;
    int64_t          max_age;       /* seconds; 0: never stale */
    uint64_t         n[METRICS_POSTURE_STATES];
    int              failed;
    store_err_t      err;
} server_census_t;

struct server_conn_s {
    server_ev_t      ev;            /* first: epoll data points here */
    server_conn_t   *prev;
    server_conn_t   *next;
    pid_t            pid;
    uid_t            uid;
    uint32_t         events;        /* registered with epoll */
    unsigned         eof:1;         /* peer shut its sending side */
    uint8_t         *in;
    size_t           in_len;
    uint8_t         *out;
    size_t           out_pos;
    size_t           out_len;
    size_t           out_cap;
};

struct server_s {
    config_t         cfg;
    server_opts_t    opts;
    store_t         *store;
    int              epfd;
    server_ev_t      listen;
    server_ev_t      sig;
    server_ev_t      timer;
    int              spare_fd;      /* released to shed load at EMFILE */
    dev_t            sock_dev;      /* identity of the socket file */
    ino_t            sock_ino;
    int              sock_bound;
    server_conn_t   *conns;
    unsigned         nconns;
    int              stop;
    int              reload;
    int              draining;      /* shutdown: ignore the output cap */
    time_t           last_full_warn;
    decide_ctx_t     dctx;
    decide_conf_t    dconf;
    pol_t           *policy;        /* NULL: the built-in device rule */
    id_keys_t       *keys;          /* NULL: identity off */
    portal_t        *portal;        /* NULL: no sign-in portal here */
    behaviour_t     *behaviour;     /* trust inference state */
    journal_t       *journal;       /* the decision journal's writer */
    cluster_t       *cluster;       /* cluster mode, or NULL */
    store_audit_t    jrec;          /* the journal record being built */
    blocklist_t     *blocklist;     /* feeds and staff entries */
    blocklist_t     *trusted;       /* trusted_network */
    server_ev_t      admin;         /* admin listening socket */
    dev_t            admin_dev;
    ino_t            admin_ino;
    int              admin_bound;
    server_admin_t   admins[SERVER_ADMIN_CONNS];
    char             reply[SERVER_REPLY_SIZE];

    /* decision statistics (admin "stats"), since start or "stats-reset" */
    uint64_t         decisions;
    uint64_t         by_outcome[5];         /* index: enum wire_decision */
    uint64_t         lat_hist[SERVER_LAT_BUCKETS + 1];  /* last: beyond */
    uint64_t         lat_max_ns;
    int64_t          stats_since_ms;
    unsigned         ticks;         /* maintenance timer expirations */

    /* metrics (metrics.h): counted here, rendered on their own timer */
    metrics_t       *metrics;       /* NULL: no metrics_listen */
    server_ev_t      mtimer;        /* every metrics_interval */
    metrics_decisions_t  mdec;
    uint64_t         reloads_ok;
    uint64_t         reloads_failed;
    double           start_time;    /* unix seconds */
    int64_t          census_ms;     /* last posture census; 0: none yet */
    double           census_time;   /* the same, unix seconds */
    uint64_t         census[METRICS_POSTURE_STATES];
    /* the census walks the devices on a thread of its own (a million
     * devices take a second: never on the decision thread) */
    pthread_t        census_thread;
    pthread_mutex_t  census_mu;     /* guards the three above, and: */
    pthread_cond_t   census_cv;
    int              census_started;
    int              census_stop;
    uint32_t         census_max_age_ms;
    uint8_t          frame[WIRE_MAX_FRAME];     /* one encoded answer */
};


static void server_seterr(server_err_t *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int server_listen(server_t *srv, server_err_t *err);
static int server_load_policy(const config_t *cfg, pol_t **pol, char *msg,
    size_t size);
static void server_identity_conf(server_t *srv);
static void server_reload_keys(server_t *srv);
static void server_count(server_t *srv, unsigned decision, uint64_t ns);
static double server_percentile(const server_t *srv, double q);
static void server_stats(server_t *srv);
static int server_journal_start(server_t *srv);
static void server_journal_conf(const config_t *cfg, journal_conf_t *jc);
static void server_journal_decision(server_t *srv, const wire_req_t *req,
    wire_resp_t *resp);
static void server_journal_status(server_t *srv);
static int server_metrics_arm(server_t *srv);
static void server_metrics_timer(server_t *srv);
static char *server_metrics_text(server_t *srv, size_t *len);
static void server_metrics_publish(server_t *srv);
static void server_admin_metrics(server_t *srv, server_admin_t *a);
static void server_posture_census(server_t *srv);
static void *server_census_main(void *arg);
static void server_census_start(server_t *srv);
static void server_census_stop(server_t *srv);
static int server_census_cb(const store_device_t *dev, void *arg);
static void server_admin_accept(server_t *srv);
static void server_admin_read(server_t *srv, server_admin_t *a);
static void server_admin_close(server_t *srv, server_admin_t *a);
static void server_admin_command(server_t *srv, server_admin_t *a,
    const char *cmd);
static int server_epoll_add(server_t *srv, server_ev_t *ev, uint32_t events);
static void server_unlink_socket(server_t *srv);
static void server_accept(server_t *srv);
static void server_accept_one(server_t *srv, int fd);
static void server_shed(server_t *srv);
static void server_conn_event(server_t *srv, server_conn_t *c,
    uint32_t events);
static int server_conn_read(server_t *srv, server_conn_t *c);
static int server_conn_process(server_t *srv, server_conn_t *c);
static int server_conn_answer(server_t *srv, server_conn_t *c,
    const wire_frame_t *f);
static int server_conn_append(server_conn_t *c, const uint8_t *p,
    size_t n);
static int server_conn_flush(server_t *srv, server_conn_t *c);
static int server_conn_service(server_t *srv, server_conn_t *c);
static int server_conn_update(server_t *srv, server_conn_t *c);
static void server_conn_close(server_t *srv, server_conn_t *c);
static size_t server_conn_pending(const server_conn_t *c);
static void server_signal(server_t *srv);
static void server_timer(server_t *srv);
static void server_load_trust(server_t *srv, const config_t *cfg);
static int server_blocklist_cb(const store_blocklist_t *e, void *arg);
static void server_fail_closed(wire_resp_t *resp, const char *why);
static int server_cluster_attach(server_t *srv, store_t *st,
    server_err_t *err);
static void server_cluster_touch(void *arg, const char *const *sids,
    size_t n);
static void server_cluster_history(void *arg, const store_history_t *rows,
    size_t n);
static void server_cluster_status(server_t *srv);
static void server_explain(server_t *srv, const char *command);
static int server_reload(server_t *srv);
static void server_shutdown(server_t *srv);


static void
server_seterr(server_err_t *err, const char *fmt, ...)
{
    va_list  ap;

    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
}



int
server_init(server_t **srvp, const config_t *cfg, const server_opts_t *opts,
    server_err_t *err)
{
    server_t            *srv;
    sigset_t             mask;
    struct itimerspec    its;
    struct timespec      now;
    unsigned             i;

    *srvp = NULL;

    srv = calloc(1, sizeof(*srv));
    if (srv == NULL) {
        server_seterr(err, "out of memory");
        return -1;
    }

    srv->cfg = *cfg;
    srv->opts = *opts;
    srv->epfd = -1;
    srv->listen.type = SERVER_EV_LISTEN;
    srv->listen.fd = -1;
    srv->sig.type = SERVER_EV_SIGNAL;
    srv->sig.fd = -1;
    srv->timer.type = SERVER_EV_TIMER;
    srv->timer.fd = -1;
    srv->admin.type = SERVER_EV_ADMIN_LISTEN;
    srv->admin.fd = -1;
    srv->mtimer.type = SERVER_EV_METRICS;
    srv->mtimer.fd = -1;
    srv->dconf.allow_ttl_ms = cfg->allow_ttl_ms;
    srv->dconf.portal_url = srv->cfg.portal_url;
    srv->stats_since_ms = zt_clock_ms(CLOCK_MONOTONIC);
    clock_gettime(CLOCK_REALTIME, &now);
    srv->start_time = (double) now.tv_sec + (double) now.tv_nsec / 1e9;
    srv->dconf.posture_max_age_ms = cfg->posture_max_age_ms;
    srv->dconf.device_cache = cfg->device_cache;

    for (i = 0; i < SERVER_ADMIN_CONNS; i++) {
        srv->admins[i].ev.type = SERVER_EV_ADMIN;
        srv->admins[i].ev.fd = -1;
    }

    /* a policy that does not load is a start-up error, before listening */
    if (server_load_policy(&srv->cfg, &srv->policy, srv->reply,
                           sizeof(srv->reply)) != 0)
    {
        server_seterr(err, "%s", srv->reply);
        goto failed;
    }

    srv->dconf.policy = srv->policy;

    if (srv->cfg.identity_keys[0] != '\0') {
        id_err_t  ierr;

        if (id_keys_load(srv->cfg.identity_keys, (id_alg_t) srv->cfg.token_alg,
                         (int64_t) (srv->cfg.key_grace_ms / 1000), 1,
                         &srv->keys, &ierr)
            != 0)
        {
            server_seterr(err, "identity keys: %s", ierr.msg);
            goto failed;
        }

        log_info("identity on: session tokens %s, keys in %s",
                 id_alg_name((id_alg_t) srv->cfg.token_alg),
                 srv->cfg.identity_keys);
    }

    server_identity_conf(srv);

    srv->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (srv->spare_fd == -1) {
        server_seterr(err, "open /dev/null: %s", strerror(errno));
        goto failed;
    }

    srv->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (srv->epfd == -1) {
        server_seterr(err, "epoll_create1: %s", strerror(errno));
        goto failed;
    }

    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);

    srv->sig.fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    if (srv->sig.fd == -1) {
        server_seterr(err, "signalfd: %s", strerror(errno));
        goto failed;
    }

    srv->timer.fd = timerfd_create(CLOCK_MONOTONIC,
                                   TFD_NONBLOCK | TFD_CLOEXEC);
    if (srv->timer.fd == -1) {
        server_seterr(err, "timerfd_create: %s", strerror(errno));
        goto failed;
    }

    memset(&its, 0, sizeof(its));
    its.it_value.tv_sec = SERVER_MAINTAIN_SEC;
    its.it_interval.tv_sec = SERVER_MAINTAIN_SEC;

    if (timerfd_settime(srv->timer.fd, 0, &its, NULL) == -1) {
        server_seterr(err, "timerfd_settime: %s", strerror(errno));
        goto failed;
    }

    if (srv->cfg.metrics_listen[0] != '\0' && server_metrics_arm(srv) != 0) {
        server_seterr(err, "metrics timer: %s", strerror(errno));
        goto failed;
    }

    if (server_listen(srv, err) != 0) {
        goto failed;
    }

    if (server_epoll_add(srv, &srv->sig, EPOLLIN) != 0
        || server_epoll_add(srv, &srv->timer, EPOLLIN) != 0
        || server_epoll_add(srv, &srv->listen, EPOLLIN) != 0
        || (srv->admin.fd != -1
            && server_epoll_add(srv, &srv->admin, EPOLLIN) != 0)
        || (srv->mtimer.fd != -1
            && server_epoll_add(srv, &srv->mtimer, EPOLLIN) != 0))
    {
        server_seterr(err, "epoll_ctl: %s", strerror(errno));
        goto failed;
    }

    *srvp = srv;

    return 0;

failed:

    server_free(srv);

    return -1;
}


static int
server_epoll_add(server_t *srv, server_ev_t *ev, uint32_t events)
{
    struct epoll_event  ee;

    memset(&ee, 0, sizeof(ee));
    ee.events = events;
    ee.data.ptr = ev;

    return epoll_ctl(srv->epfd, EPOLL_CTL_ADD, ev->fd, &ee);
}


/*
 * Bind the listening socket.  A socket file left by a dead trustd is
 * removed, but only after a connect shows that nothing listens on it:
 * two daemons must never serve the same socket.
 */
static int
server_listen(server_t *srv, server_err_t *err)
{
    if (sock_listen(srv->cfg.listen, srv->cfg.listen_mode, &srv->listen.fd,
                    &srv->sock_dev, &srv->sock_ino, err->msg,
                    sizeof(err->msg))
        != 0)
    {
        return -1;
    }

    srv->sock_bound = 1;

    if (srv->cfg.admin_listen[0] == '\0') {
        return 0;
    }

    if (sock_listen(srv->cfg.admin_listen, SERVER_ADMIN_MODE,
                    &srv->admin.fd, &srv->admin_dev, &srv->admin_ino,
                    err->msg, sizeof(err->msg))
        != 0)
    {
        return -1;
    }

    srv->admin_bound = 1;

    return 0;
}


/* Remove our socket files, unless another process has replaced them. */
static void
server_unlink_socket(server_t *srv)
{
    if (srv->sock_bound) {
        srv->sock_bound = 0;
        sock_unlink(srv->cfg.listen, srv->sock_dev, srv->sock_ino);
    }

    if (srv->admin_bound) {
        srv->admin_bound = 0;
        sock_unlink(srv->cfg.admin_listen, srv->admin_dev, srv->admin_ino);
    }
}


int
server_run(server_t *srv, store_t *st)
{
    struct epoll_event   events[SERVER_EVENTS];
    server_ev_t         *ev;
    int                  n, i;

    srv->store = st;

    if (server_journal_start(srv) != 0) {
        return -1;
    }

    /* the staff blocklist entries are in the store: load them now */
    server_load_trust(srv, &srv->cfg);

    /* a first snapshot, so that no scrape finds nothing */
    if (srv->metrics != NULL) {
        server_census_start(srv);
        server_metrics_publish(srv);
    }

    log_info("started");

    while (!srv->stop) {
        n = epoll_wait(srv->epfd, events, SERVER_EVENTS, -1);
        if (n == -1) {
            if (errno == EINTR) {
                continue;
            }

            log_error("epoll_wait: %s", strerror(errno));
            server_shutdown(srv);
            return -1;
        }

        for (i = 0; i < n; i++) {
            ev = events[i].data.ptr;

            switch (ev->type) {
            case SERVER_EV_LISTEN:
                server_accept(srv);
                break;

            case SERVER_EV_SIGNAL:
                /* acted on after the batch: events below may be stale */
                server_signal(srv);
                break;

            case SERVER_EV_TIMER:
                server_timer(srv);
                break;

            case SERVER_EV_CONN:
                server_conn_event(srv, (server_conn_t *) ev,
                                  events[i].events);
                break;

            case SERVER_EV_ADMIN_LISTEN:
                server_admin_accept(srv);
                break;

            case SERVER_EV_ADMIN:
                server_admin_read(srv, (server_admin_t *) ev);
                break;

            case SERVER_EV_METRICS:
                server_metrics_timer(srv);
                break;
            }
        }

        if (srv->reload) {
            srv->reload = 0;
            (void) server_reload(srv);
        }
    }

    server_shutdown(srv);

    return 0;
}


static void
server_signal(server_t *srv)
{
    struct signalfd_siginfo  si;
    ssize_t                  n;

    for (;;) {
        n = read(srv->sig.fd, &si, sizeof(si));
        if (n != (ssize_t) sizeof(si)) {
            return;
        }

        switch (si.ssi_signo) {
        case SIGTERM:
        case SIGINT:
            log_info("received %s, stopping",
                     si.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
            srv->stop = 1;
            break;

        case SIGHUP:
            log_info("received SIGHUP, reloading configuration");
            srv->reload = 1;
            break;
        }
    }
}


static void
server_timer(server_t *srv)
{
    store_err_t  err;
    uint64_t     ticks;
    unsigned     purged;
    int          cleared;

    if (read(srv->timer.fd, &ticks, sizeof(ticks)) != sizeof(ticks)) {
        return;
    }

    if (srv->store == NULL) {
        return;
    }

    if (srv->cluster != NULL) {
        /* writes go to the cluster from the follower's thread: this one
         * never waits for the database */
        decide_touch_with(&srv->dctx, server_cluster_touch, srv->cluster);
        behaviour_flush_with(srv->behaviour, server_cluster_history,
                             srv->cluster);

        if (cluster_take_touched(srv->cluster) & STORE_TOUCHED_BLOCKLIST) {
            log_info("cluster: staff blocklist entries changed; reloading "
                     "them");
            server_load_trust(srv, &srv->cfg);
        }

    } else {
        decide_touch(srv->store, &srv->dctx);
        (void) behaviour_flush(srv->behaviour, srv->store);
    }

    /* the posture census runs on its own thread (server_census_main()) */
    if (srv->census_started) {
        __atomic_store_n(&srv->census_max_age_ms,
                         srv->cfg.posture_max_age_ms, __ATOMIC_RELAXED);
    }

    /*
     * Every tenth tick: drop sessions that ended (expired or revoked)
     * more than a day ago; until then staff can still see them.
     */
    if (srv->keys != NULL && ++srv->ticks % 10 == 0 && srv->cluster != NULL)
    {
        cluster_defer_purge(srv->cluster, (int64_t) time(NULL) - 86400);

    } else if (srv->keys != NULL && srv->ticks % 10 == 0) {
        if (store_session_purge(srv->store, (int64_t) time(NULL) - 86400,
                                &purged, &err)
            != 0)
        {
            log_error("session purge: %s", err.msg);

        } else if (purged > 0) {
            log_info("purged %u ended session%s", purged,
                     purged == 1 ? "" : "s");
        }
    }

    if (store_maintain(srv->store, &cleared, &err) != 0) {
        log_error("store maintenance: %s", err.msg);
        return;
    }

    if (cleared > 0) {
        log_info("store maintenance: cleared %d stale reader slot%s",
                 cleared, cleared == 1 ? "" : "s");
    }
}


/*
 * Re-read the configuration and the policy, and switch to both only if
 * both load: a failed reload changes nothing.  The switch happens between
 * event batches of this single thread, so no decision ever sees a half-
 * loaded policy.  Returns 0 or -1; srv->reply says what happened.
 */
static int
server_reload(server_t *srv)
{
    config_t         cfg;
    config_err_t     err;
    server_conn_t   *c, *next;
    config_t        *cur = &srv->cfg;
    pol_t           *pol, *old;

    if (config_load(srv->opts.config_path, &cfg, &err) != 0) {
        srv->reloads_failed++;
        log_error("reload failed, keeping the running configuration: %s",
                  err.msg);
        snprintf(srv->reply, sizeof(srv->reply), "error %s\n", err.msg);
        return -1;
    }

    if (server_load_policy(&cfg, &pol, srv->reply, sizeof(srv->reply))
        != 0)
    {
        srv->reloads_failed++;
        log_error("reload failed, keeping the running configuration and "
                  "policy %s", srv->policy ? pol_version(srv->policy)
                                           : "(built-in)");
        return -1;
    }

    old = srv->policy;
    srv->policy = pol;
    srv->dconf.policy = pol;
    metrics_policy_changed(&srv->mdec);
    pol_free(old);
    srv->reloads_ok++;

    memcpy(cur->policy, cfg.policy, sizeof(cfg.policy));
    memcpy(cur->portal_url, cfg.portal_url, sizeof(cfg.portal_url));
    memcpy(cur->admin_uids, cfg.admin_uids, sizeof(cfg.admin_uids));
    cur->nadmins = cfg.nadmins;

    if (strcmp(cfg.listen, cur->listen) != 0
        || cfg.listen_mode != cur->listen_mode)
    {
        log_warn("reload: a change of listen or listen_mode needs a "
                 "restart; still listening on %s", cur->listen);
    }

    if (strcmp(cfg.store, cur->store) != 0
        || cfg.store_map_size != cur->store_map_size)
    {
        log_warn("reload: a change of store or store_map_size needs a "
                 "restart; still using %s", cur->store);
    }

    if (strcmp(cfg.pid_file, cur->pid_file) != 0
        || cfg.log_target != cur->log_target)
    {
        log_warn("reload: a change of pid_file or log_target needs a "
                 "restart");
    }

    cur->log_level = cfg.log_level;
    if (!srv->opts.verbose) {
        log_set_level(cfg.log_level);
    }

    cur->log_format = cfg.log_format;
    log_set_format(cfg.log_format);

    if (strcmp(cfg.metrics_listen, cur->metrics_listen) != 0) {
        log_warn("reload: a change of metrics_listen needs a restart");
    }

    if (cfg.metrics_interval_ms != cur->metrics_interval_ms) {
        cur->metrics_interval_ms = cfg.metrics_interval_ms;
        if (srv->mtimer.fd != -1 && server_metrics_arm(srv) != 0) {
            log_error("reload: metrics_interval: %s", strerror(errno));
        }
    }

    memcpy(cur->peer_uids, cfg.peer_uids, sizeof(cfg.peer_uids));
    cur->npeers = cfg.npeers;
    cur->allow_ttl_ms = cfg.allow_ttl_ms;
    cur->max_clients = cfg.max_clients;
    cur->shutdown_timeout_ms = cfg.shutdown_timeout_ms;
    srv->dconf.allow_ttl_ms = cfg.allow_ttl_ms;
    cur->posture_max_age_ms = cfg.posture_max_age_ms;
    srv->dconf.posture_max_age_ms = cfg.posture_max_age_ms;
    if (cfg.device_cache != cur->device_cache) {
        log_warn("reload: a change of device_cache needs a restart");
    }
    server_load_trust(srv, &cfg);

    if (cfg.journal_queue != cur->journal_queue) {
        log_warn("reload: a change of journal_queue needs a restart");
    }
    cur->journal_flush_ms = cfg.journal_flush_ms;
    cur->journal_retention_ms = cfg.journal_retention_ms;
    cur->journal_fail_open = cfg.journal_fail_open;
    if (srv->journal != NULL) {
        journal_conf_t  jc;

        server_journal_conf(cur, &jc);
        journal_reconf(srv->journal, &jc);
    }

    /* a peer that is no longer allowed loses its connections now */
    for (c = srv->conns; c != NULL; c = next) {
        next = c->next;

        if (!config_peer_allowed(cur, c->uid)) {
            log_warn("peer uid %ld pid %ld is no longer allowed; closing "
                     "its connection", (long) c->uid, (long) c->pid);
            server_conn_close(srv, c);
        }
    }

    if (strcmp(cfg.admin_listen, cur->admin_listen) != 0
        || strcmp(cfg.portal_listen, cur->portal_listen) != 0
        || strcmp(cfg.identity_keys, cur->identity_keys) != 0
        || cfg.token_alg != cur->token_alg)
    {
        log_warn("reload: a change of admin_listen, portal_listen, "
                 "identity_keys or token_alg needs a restart");
    }

    cur->key_grace_ms = cfg.key_grace_ms;
    cur->session_lifetime_ms = cfg.session_lifetime_ms;
    cur->session_idle_ms = cfg.session_idle_ms;
    cur->totp_window = cfg.totp_window;
    cur->lockout_threshold = cfg.lockout_threshold;
    cur->lockout_time_ms = cfg.lockout_time_ms;
    cur->source_limit = cfg.source_limit;
    cur->assertion_ttl_ms = cfg.assertion_ttl_ms;
    memcpy(cur->portal_hosts, cfg.portal_hosts, sizeof(cfg.portal_hosts));
    cur->nportal_hosts = cfg.nportal_hosts;
    memcpy(cur->webauthn_rp_id, cfg.webauthn_rp_id,
           sizeof(cfg.webauthn_rp_id));
    memcpy(cur->webauthn_origins, cfg.webauthn_origins,
           sizeof(cfg.webauthn_origins));
    cur->nwebauthn_origins = cfg.nwebauthn_origins;
    cur->webauthn_uv = cfg.webauthn_uv;

    server_reload_keys(srv);
    server_identity_conf(srv);
    portal_reconfigure(srv->portal, cur);

    if (srv->cluster != NULL) {
        cluster_set_policy(srv->cluster, srv->policy
                                         ? pol_version(srv->policy)
                                         : "built-in");
    }

    /* the policy version as a field, for log pipelines to follow */
    log_fields(LOG_LEVEL_INFO,
               &(log_field_t) { "policy", srv->policy
                                          ? pol_version(srv->policy)
                                          : "built-in" }, 1,
               "configuration reloaded (log_level %s, allow_ttl %ums, "
               "max_clients %u, %zu peer user%s)",
               log_level_name(cur->log_level), cur->allow_ttl_ms,
               cur->max_clients, cur->npeers, cur->npeers == 1 ? "" : "s");

    if (srv->policy) {
        snprintf(srv->reply, sizeof(srv->reply),
                 "ok policy %s (%u apps, %u rules)\n",
                 pol_version(srv->policy), pol_napps(srv->policy),
                 pol_nrules(srv->policy));
    } else {
        snprintf(srv->reply, sizeof(srv->reply),
                 "ok built-in device rule (no policy configured)\n");
    }

    return 0;
}


static void
server_accept(server_t *srv)
{
    int  i, fd;

    for (i = 0; i < SERVER_ACCEPT_BATCH; i++) {
        fd = accept4(srv->listen.fd, NULL, NULL,
                     SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd == -1) {
            switch (errno) {
            case EAGAIN:
            case EINTR:
            case ECONNABORTED:
                return;

            case EMFILE:
            case ENFILE:
                server_shed(srv);
                return;

            default:
                log_error("accept: %s", strerror(errno));
                return;
            }
        }

        server_accept_one(srv, fd);
    }
}


/*
 * Out of descriptors: accept and close one pending connection with the
 * spare descriptor so that the level-triggered listener does not spin,
 * and so that the peer sees a close instead of a hang.
 */
static void
server_shed(server_t *srv)
{
    int  fd;

    log_error("accept: out of file descriptors; refusing a connection");

    if (srv->spare_fd != -1) {
        close(srv->spare_fd);
        srv->spare_fd = -1;
    }

    fd = accept4(srv->listen.fd, NULL, NULL, SOCK_CLOEXEC);
    if (fd != -1) {
        close(fd);
    }

    srv->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
}


static void
server_accept_one(server_t *srv, int fd)
{
    server_conn_t   *c;
    struct ucred     cred;
    socklen_t        len;
    time_t           now;

    len = sizeof(cred);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == -1) {
        log_warn("SO_PEERCRED: %s; closing the connection",
                 strerror(errno));
        close(fd);
        return;
    }

    if (!config_peer_allowed(&srv->cfg, cred.uid)) {
        log_warn("refused connection from uid %ld pid %ld: not a "
                 "configured peer_user", (long) cred.uid, (long) cred.pid);
        close(fd);
        return;
    }

    if (srv->nconns >= srv->cfg.max_clients) {
        now = time(NULL);
        if (now != srv->last_full_warn) {
            srv->last_full_warn = now;
            log_warn("refused connection from pid %ld: max_clients (%u) "
                     "reached", (long) cred.pid, srv->cfg.max_clients);
        }

        close(fd);
        return;
    }

    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        log_error("out of memory for a connection from pid %ld",
                  (long) cred.pid);
        close(fd);
        return;
    }

    c->in = malloc(SERVER_IN_SIZE);
    if (c->in == NULL) {
        log_error("out of memory for a connection from pid %ld",
                  (long) cred.pid);
        free(c);
        close(fd);
        return;
    }

    c->ev.type = SERVER_EV_CONN;
    c->ev.fd = fd;
    c->pid = cred.pid;
    c->uid = cred.uid;
    c->events = EPOLLIN;

    if (server_epoll_add(srv, &c->ev, c->events) != 0) {
        log_error("epoll_ctl: %s", strerror(errno));
        free(c->in);
        free(c);
        close(fd);
        return;
    }

    c->next = srv->conns;
    if (srv->conns != NULL) {
        srv->conns->prev = c;
    }
    srv->conns = c;
    srv->nconns++;

    log_debug("connection from uid %ld pid %ld (%u open)", (long) c->uid,
              (long) c->pid, srv->nconns);
}


static void
server_conn_event(server_t *srv, server_conn_t *c, uint32_t events)
{
    if (events & EPOLLERR) {
        log_debug("connection from pid %ld: socket error", (long) c->pid);
        server_conn_close(srv, c);
        return;
    }

    if ((events & (EPOLLIN | EPOLLHUP)) && !c->eof
        && (c->events & EPOLLIN))
    {
        if (server_conn_read(srv, c) != 0) {
            return;
        }

    } else if ((events & EPOLLHUP) && !(c->events & EPOLLIN)) {
        /* both directions gone: nobody is left to read the answers */
        log_debug("connection from pid %ld: hang-up", (long) c->pid);
        server_conn_close(srv, c);
        return;
    }

    (void) server_conn_service(srv, c);
}


/*
 * Read what is available into the input buffer.  Returns 0, or -1 if the
 * connection was closed.
 */
static int
server_conn_read(server_t *srv, server_conn_t *c)
{
    ssize_t  n;

    while (c->in_len < SERVER_IN_SIZE) {
        n = recv(c->ev.fd, c->in + c->in_len, SERVER_IN_SIZE - c->in_len,
                 0);

        if (n > 0) {
            c->in_len += (size_t) n;
            continue;
        }

        if (n == 0) {
            c->eof = 1;
            break;
        }

        if (errno == EINTR) {
            continue;
        }

        if (errno == EAGAIN) {
            break;
        }

        log_debug("connection from pid %ld: recv: %s", (long) c->pid,
                  strerror(errno));
        server_conn_close(srv, c);
        return -1;
    }

    return 0;
}


/*
 * Process, write, and re-arm.  Returns 0, or -1 if the connection was
 * closed.
 */
static int
server_conn_service(server_t *srv, server_conn_t *c)
{
    size_t  before;
    int     round;

    for (round = 0; round < 4; round++) {
        before = c->in_len;

        if (server_conn_process(srv, c) != 0) {
            return -1;
        }

        if (server_conn_flush(srv, c) != 0) {
            return -1;
        }

        /* again only if the cap held frames back and now has room */
        if (c->in_len == 0 || c->in_len == before
            || server_conn_pending(c) >= SERVER_OUT_CAP)
        {
            break;
        }
    }

    if (c->eof && c->in_len > 0
        && server_conn_pending(c) < SERVER_OUT_CAP)
    {
        log_warn("peer pid %ld: %s at end of stream; closing the "
                 "connection", (long) c->pid, wire_strerror(WIRE_AGAIN));
        server_conn_close(srv, c);
        return -1;
    }

    if (c->eof && server_conn_pending(c) == 0 && c->in_len == 0) {
        log_debug("connection from pid %ld closed by the peer",
                  (long) c->pid);
        server_conn_close(srv, c);
        return -1;
    }

    return server_conn_update(srv, c);
}


static size_t
server_conn_pending(const server_conn_t *c)
{
    return c->out_len - c->out_pos;
}


/*
 * Decide every complete frame in the input buffer, as long as the output
 * is under the cap.  Returns 0, or -1 if the connection was closed
 * (protocol error).
 */
static int
server_conn_process(server_t *srv, server_conn_t *c)
{
    wire_frame_t    f;
    const uint8_t  *p, *end;
    int             rc;

    p = c->in;
    end = c->in + c->in_len;

    while (p < end
           && (srv->draining || server_conn_pending(c) < SERVER_OUT_CAP))
    {
        rc = wire_frame_peek(p, end, &f);
        if (rc == WIRE_AGAIN) {
            break;
        }

        if (rc != WIRE_OK) {
            goto protocol_error;
        }

        rc = server_conn_answer(srv, c, &f);

        if (rc == SERVER_CONN_FAILED) {
            server_conn_close(srv, c);
            return -1;
        }

        if (rc != WIRE_OK) {
            goto protocol_error;
        }

        p += f.frame_len;
    }

    if (p != c->in) {
        c->in_len = (size_t) (end - p);
        if (c->in_len > 0) {
            memmove(c->in, p, c->in_len);
        }
    }

    return 0;

protocol_error:

    log_warn("peer pid %ld: %s; closing the connection", (long) c->pid,
             wire_strerror(rc));

    /* answers to the requests before the bad frame still go out */
    c->in_len = 0;

    if (server_conn_flush(srv, c) == 0) {
        server_conn_close(srv, c);
    }

    return -1;
}


/*
 * Decode one request, decide it and queue the answer.  Returns 0, a
 * negative wire_rc for a bad request, or SERVER_CONN_FAILED for a local
 * failure that closes the connection (logged).
 */
static int
server_conn_answer(server_t *srv, server_conn_t *c, const wire_frame_t *f)
{
    wire_req_t       req;
    wire_resp_t      resp;
    struct timespec  t0, t1;
    int              rc, n;

    rc = wire_decode_req(f, &req);
    if (rc != WIRE_OK) {
        return rc;
    }

    clock_gettime(CLOCK_MONOTONIC, &t0);
    decide(srv->store, &srv->dconf, &req, &resp, &srv->dctx);
    if (srv->cluster != NULL && cluster_stale(srv->cluster)) {
        server_fail_closed(&resp, "cluster state stale");
    }
    server_journal_decision(srv, &req, &resp);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    server_count(srv, resp.decision,
                 (uint64_t) (t1.tv_sec - t0.tv_sec) * 1000000000u
                 + (uint64_t) (t1.tv_nsec - t0.tv_nsec));

    n = wire_encode_resp(srv->frame, srv->frame + sizeof(srv->frame), f->id,
                         &resp);
    if (n < 0) {
        /* store data the codec refuses: answer, but fail closed */
        log_error("cannot encode the answer to request %u: %s; denying",
                  f->id, wire_strerror(n));

        memset(&resp, 0, sizeof(resp));
        resp.decision = WIRE_DENY;
        resp.status = 503;
        resp.reason_code = WIRE_R_INTERNAL;
        resp.reason.data = "internal error";
        resp.reason.len = sizeof("internal error") - 1;

        n = wire_encode_resp(srv->frame, srv->frame + sizeof(srv->frame),
                             f->id, &resp);
        if (n < 0) {
            log_error("cannot encode a deny answer: %s", wire_strerror(n));
            return SERVER_CONN_FAILED;
        }
    }

    if (server_conn_append(c, srv->frame, (size_t) n) != 0) {
        log_error("out of memory for answers to pid %ld", (long) c->pid);
        return SERVER_CONN_FAILED;
    }

    return 0;
}


static int
server_conn_append(server_conn_t *c, const uint8_t *p, size_t n)
{
    uint8_t  *buf;
    size_t    cap, need;

    if (c->out_pos > 0 && c->out_len + n > c->out_cap) {
        memmove(c->out, c->out + c->out_pos, c->out_len - c->out_pos);
        c->out_len -= c->out_pos;
        c->out_pos = 0;
    }

    need = c->out_len + n;

    if (need > c->out_cap) {
        cap = c->out_cap ? c->out_cap : SERVER_OUT_MIN;
        while (cap < need) {
            cap *= 2;
        }

        /* only reachable while draining, when every answer must fit */
        if (cap > SERVER_OUT_MAX && need <= SERVER_OUT_MAX) {
            cap = SERVER_OUT_MAX;
        }

        buf = realloc(c->out, cap);
        if (buf == NULL) {
            return -1;
        }

        c->out = buf;
        c->out_cap = cap;
    }

    memcpy(c->out + c->out_len, p, n);
    c->out_len += n;

    return 0;
}


/*
 * Write pending answers with one send() when the socket takes them all.
 * Returns 0, or -1 if the connection was closed.
 */
static int
server_conn_flush(server_t *srv, server_conn_t *c)
{
    ssize_t  n;

    while (c->out_pos < c->out_len) {
        n = send(c->ev.fd, c->out + c->out_pos, c->out_len - c->out_pos,
                 MSG_NOSIGNAL | MSG_DONTWAIT);

        if (n >= 0) {
            c->out_pos += (size_t) n;
            continue;
        }

        if (errno == EINTR) {
            continue;
        }

        if (errno == EAGAIN) {
            return 0;
        }

        log_debug("connection from pid %ld: send: %s", (long) c->pid,
                  strerror(errno));
        server_conn_close(srv, c);
        return -1;
    }

    c->out_pos = 0;
    c->out_len = 0;

    /* give back the memory of a burst */
    if (c->out_cap > SERVER_OUT_KEEP) {
        free(c->out);
        c->out = NULL;
        c->out_cap = 0;
    }

    return 0;
}


/* Read only while under the cap; wait for EPOLLOUT only with output. */
static int
server_conn_update(server_t *srv, server_conn_t *c)
{
    struct epoll_event  ee;
    uint32_t            want;

    want = 0;

    if (!c->eof && !srv->draining
        && server_conn_pending(c) < SERVER_OUT_CAP
        && c->in_len < SERVER_IN_SIZE)
    {
        want |= EPOLLIN;
    }

    if (server_conn_pending(c) > 0) {
        want |= EPOLLOUT;
    }

    if (want == c->events) {
        return 0;
    }

    memset(&ee, 0, sizeof(ee));
    ee.events = want;
    ee.data.ptr = &c->ev;

    if (epoll_ctl(srv->epfd, EPOLL_CTL_MOD, c->ev.fd, &ee) == -1) {
        log_error("epoll_ctl: %s", strerror(errno));
        server_conn_close(srv, c);
        return -1;
    }

    c->events = want;

    return 0;
}


static void
server_conn_close(server_t *srv, server_conn_t *c)
{
    if (c->prev != NULL) {
        c->prev->next = c->next;
    } else {
        srv->conns = c->next;
    }

    if (c->next != NULL) {
        c->next->prev = c->prev;
    }

    srv->nconns--;

    /* close() also removes the descriptor from the epoll set */
    close(c->ev.fd);
    c->ev.fd = -1;

    free(c->in);
    free(c->out);
    free(c);
}


/*
 * Stop: no new connections, answer what has been received, give the
 * answers up to shutdown_timeout to leave, then close everything.
 */
static void
server_shutdown(server_t *srv)
{
    struct epoll_event   events[SERVER_EVENTS];
    server_conn_t       *c, *next;
    server_ev_t         *ev;
    int64_t              deadline, left;
    int                  n, i;

    if (srv->listen.fd != -1) {
        close(srv->listen.fd);
        srv->listen.fd = -1;
    }

    server_unlink_socket(srv);

    /* the drain loop below reads no metrics timer: stop it */
    if (srv->mtimer.fd != -1) {
        close(srv->mtimer.fd);
        srv->mtimer.fd = -1;
    }

    srv->draining = 1;

    for (c = srv->conns; c != NULL; c = next) {
        next = c->next;

        if (!c->eof && server_conn_read(srv, c) != 0) {
            continue;
        }

        (void) server_conn_service(srv, c);
    }

    deadline = zt_clock_ms(CLOCK_MONOTONIC) + srv->cfg.shutdown_timeout_ms;

    for (;;) {
        /* connections with nothing left to send are done */
        for (c = srv->conns; c != NULL; c = next) {
            next = c->next;

            if (server_conn_pending(c) == 0) {
                server_conn_close(srv, c);
            }
        }

        if (srv->conns == NULL) {
            break;
        }

        left = deadline - zt_clock_ms(CLOCK_MONOTONIC);
        if (left <= 0) {
            log_warn("shutdown_timeout reached; dropping unsent answers "
                     "on %u connection%s", srv->nconns,
                     srv->nconns == 1 ? "" : "s");
            break;
        }

        n = epoll_wait(srv->epfd, events, SERVER_EVENTS, (int) left);
        if (n == -1 && errno != EINTR) {
            log_error("epoll_wait: %s", strerror(errno));
            break;
        }

        for (i = 0; i < n; i++) {
            ev = events[i].data.ptr;

            if (ev->type == SERVER_EV_CONN) {
                c = (server_conn_t *) ev;

                if (events[i].events & (EPOLLERR | EPOLLHUP)) {
                    server_conn_close(srv, c);

                } else if (server_conn_flush(srv, c) == 0) {
                    (void) server_conn_update(srv, c);
                }

            } else if (ev->type == SERVER_EV_SIGNAL) {
                server_signal(srv);

            } else if (ev->type == SERVER_EV_TIMER) {
                server_timer(srv);
            }
        }
    }

    while (srv->conns != NULL) {
        server_conn_close(srv, srv->conns);
    }

    /* the store may be closed once server_run() has returned */
    if (srv->cluster != NULL) {
        decide_touch_with(&srv->dctx, server_cluster_touch, srv->cluster);
        behaviour_flush_with(srv->behaviour, server_cluster_history,
                             srv->cluster);
    } else {
        (void) behaviour_flush(srv->behaviour, srv->store);
    }
    server_census_stop(srv);
    journal_stop(srv->journal);
    srv->journal = NULL;
    decide_ctx_free(&srv->dctx);
}


void
server_free(server_t *srv)
{
    unsigned  i;

    if (srv == NULL) {
        return;
    }

    while (srv->conns != NULL) {
        server_conn_close(srv, srv->conns);
    }

    portal_stop(srv->portal);
    srv->portal = NULL;
    cluster_free(srv->cluster);
    srv->cluster = NULL;
    metrics_stop(srv->metrics);
    srv->metrics = NULL;
    decide_ctx_free(&srv->dctx);
    pol_free(srv->policy);
    id_keys_free(srv->keys);
    behaviour_free(srv->behaviour);
    blocklist_free(srv->blocklist);
    blocklist_free(srv->trusted);

    for (i = 0; i < SERVER_ADMIN_CONNS; i++) {
        if (srv->admins[i].ev.fd != -1) {
            close(srv->admins[i].ev.fd);
        }
    }

    if (srv->admin.fd != -1) {
        close(srv->admin.fd);
    }

    if (srv->listen.fd != -1) {
        close(srv->listen.fd);
    }

    server_unlink_socket(srv);

    if (srv->sig.fd != -1) {
        close(srv->sig.fd);
    }

    if (srv->timer.fd != -1) {
        close(srv->timer.fd);
    }

    if (srv->mtimer.fd != -1) {
        close(srv->mtimer.fd);
    }

    if (srv->epfd != -1) {
        close(srv->epfd);
    }

    if (srv->spare_fd != -1) {
        close(srv->spare_fd);
    }

    free(srv);
}


/*
 * Load the policy named by cfg (none: *pol = NULL, the built-in rule).
 * Every diagnostic is logged; on failure msg holds "error ..." lines for
 * the admin socket.  On success *pol is owned by the caller.
 */
static int
server_load_policy(const config_t *cfg, pol_t **pol, char *msg, size_t size)
{
    pol_diags_t  *diags;
    char          line[600];
    size_t        len;
    unsigned      i;
    int           rc, n;

    *pol = NULL;

    if (cfg->policy[0] == '\0') {
        return 0;
    }

    diags = calloc(1, sizeof(*diags));
    if (diags == NULL) {
        snprintf(msg, size, "error out of memory loading the policy\n");
        return -1;
    }

    rc = pol_load(cfg->policy, pol, diags);

    n = snprintf(msg, size, rc == 0 ? "" : "error policy %s did not load "
                 "(%u error%s):\n", cfg->policy, diags->nerrors,
                 diags->nerrors == 1 ? "" : "s");
    len = (n > 0 && (size_t) n < size) ? (size_t) n : 0;

    for (i = 0; i < diags->ndiags; i++) {
        pol_diag_format(&diags->diags[i], line, sizeof(line));

        if (diags->diags[i].warning) {
            log_warn("policy: %s", line);
        } else {
            log_error("policy: %s", line);
        }

        if (rc != 0) {
            n = snprintf(msg + len, size - len, "%s\n", line);
            if (n > 0 && (size_t) n < size - len) {
                len += (size_t) n;
            }
        }
    }

    if (rc != 0) {
        free(diags);
        return -1;
    }

    log_info("policy %s loaded: version %s, %u apps, %u rules, %u warning%s",
             cfg->policy, pol_version(*pol), pol_napps(*pol),
             pol_nrules(*pol), diags->nwarnings,
             diags->nwarnings == 1 ? "" : "s");

    free(diags);

    return 0;
}


static void
server_admin_accept(server_t *srv)
{
    struct ucred     cred;
    socklen_t        len;
    server_admin_t  *a;
    unsigned         i;
    int              fd;

    for (;;) {
        fd = accept4(srv->admin.fd, NULL, NULL,
                     SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd == -1) {
            if (errno != EAGAIN && errno != EINTR) {
                log_warn("admin accept: %s", strerror(errno));
            }
            return;
        }

        len = sizeof(cred);
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == -1
            || !config_admin_allowed(&srv->cfg, cred.uid))
        {
            log_warn("admin socket: refused peer uid %ld pid %ld",
                     (long) cred.uid, (long) cred.pid);
            close(fd);
            continue;
        }

        a = NULL;
        for (i = 0; i < SERVER_ADMIN_CONNS; i++) {
            if (srv->admins[i].ev.fd == -1) {
                a = &srv->admins[i];
                break;
            }
        }

        if (a == NULL) {
            (void) send(fd, "error busy\n", 11, MSG_NOSIGNAL | MSG_DONTWAIT);
            close(fd);
            continue;
        }

        a->ev.fd = fd;
        a->uid = cred.uid;
        a->pid = cred.pid;
        a->len = 0;

        if (server_epoll_add(srv, &a->ev, EPOLLIN) != 0) {
            log_warn("admin socket: epoll_ctl: %s", strerror(errno));
            server_admin_close(srv, a);
        }
    }
}


static void
server_admin_read(server_t *srv, server_admin_t *a)
{
    char     *nl;
    ssize_t   n;

    for (;;) {
        n = read(a->ev.fd, a->buf + a->len, sizeof(a->buf) - 1 - a->len);

        if (n == -1 && (errno == EAGAIN || errno == EINTR)) {
            return;
        }

        if (n <= 0) {
            server_admin_close(srv, a);
            return;
        }

        a->len += (size_t) n;
        a->buf[a->len] = '\0';

        nl = strchr(a->buf, '\n');
        if (nl != NULL) {
            *nl = '\0';
            server_admin_command(srv, a, a->buf);
            return;
        }

        if (a->len == sizeof(a->buf) - 1) {
            snprintf(srv->reply, sizeof(srv->reply),
                     "error command line too long\n");
            server_admin_command(srv, a, NULL);
            return;
        }
    }
}


/*
 * Run one admin command and answer it.  The reply is a few KiB at most
 * and the socket is fresh, so one non-blocking send() takes it whole.
 */
static void
server_admin_command(server_t *srv, server_admin_t *a, const char *cmd)
{
    size_t  len;

    if (cmd == NULL) {
        /* srv->reply already holds the error */

    } else if (strcmp(cmd, "reload") == 0) {
        log_info("reload requested on the admin socket by uid %ld pid %ld",
                 (long) a->uid, (long) a->pid);
        (void) server_reload(srv);

    } else if (strncmp(cmd, "explain ", 8) == 0) {
        server_explain(srv, cmd + 8);

    } else if (strcmp(cmd, "stats") == 0) {
        server_stats(srv);

    } else if (strcmp(cmd, "stats-reset") == 0) {
        server_stats(srv);
        srv->decisions = 0;
        memset(srv->by_outcome, 0, sizeof(srv->by_outcome));
        memset(srv->lat_hist, 0, sizeof(srv->lat_hist));
        srv->lat_max_ns = 0;
        srv->stats_since_ms = zt_clock_ms(CLOCK_MONOTONIC);

    } else if (strcmp(cmd, "status") == 0) {
        snprintf(srv->reply, sizeof(srv->reply),
                 "ok pid %ld policy %s connections %u\n", (long) getpid(),
                 srv->policy ? pol_version(srv->policy) : "built-in",
                 srv->nconns);

    } else if (strcmp(cmd, "journal") == 0) {
        server_journal_status(srv);

    } else if (strcmp(cmd, "cluster") == 0) {
        server_cluster_status(srv);

    } else if (strcmp(cmd, "journal-flush") == 0) {
        journal_kick(srv->journal);
        snprintf(srv->reply, sizeof(srv->reply), "ok journal-flush\n");

    } else if (strcmp(cmd, "metrics") == 0) {
        server_admin_metrics(srv, a);
        return;

    } else {
        snprintf(srv->reply, sizeof(srv->reply),
                 "error unknown command (expected reload, status, stats, "
                 "stats-reset, journal, journal-flush, cluster, metrics "
                 "or explain)\n");
    }

    len = strlen(srv->reply);
    if (send(a->ev.fd, srv->reply, len, MSG_NOSIGNAL | MSG_DONTWAIT)
        != (ssize_t) len)
    {
        log_warn("admin socket: could not send the whole reply");
    }

    server_admin_close(srv, a);
}


static void
server_admin_close(server_t *srv, server_admin_t *a)
{
    (void) epoll_ctl(srv->epfd, EPOLL_CTL_DEL, a->ev.fd, NULL);
    close(a->ev.fd);
    a->ev.fd = -1;
    a->len = 0;
}


/* The decision's view of the identity settings. */
static void
server_identity_conf(server_t *srv)
{
    srv->dconf.keys = srv->keys;
    srv->dconf.session_idle_ms = srv->cfg.session_idle_ms;
    srv->dconf.assertion_ttl_ms = srv->cfg.assertion_ttl_ms;
}


int
server_attach_store(server_t *srv, store_t *st, server_err_t *err)
{
    store_err_t  serr;
    uint64_t     pos;
    char         msg[512], id[STORE_CLUSTER_ID_LEN];

    srv->store = st;

    if (srv->cfg.cluster) {
        if (server_cluster_attach(srv, st, err) != 0) {
            return -1;
        }

    } else if (store_cluster_state(st, id, &pos, &serr) == 0) {
        /* every write would be refused: say so now, not at sign-in */
        server_seterr(err, "the store follows cluster %s but cluster mode "
                      "is off: set \"cluster on\" (docs/cluster.md), or make "
                      "it a single-node store with \"ztctl cluster leave\"",
                      id);
        return -1;
    }

    if (srv->cfg.metrics_listen[0] != '\0') {
        if (metrics_start(&srv->metrics, srv->cfg.metrics_listen, msg,
                          sizeof(msg))
            != 0)
        {
            server_seterr(err, "metrics_listen: %s", msg);
            return -1;
        }

        log_info("metrics on %s", srv->cfg.metrics_listen);
    }

    if (srv->cfg.portal_listen[0] == '\0') {
        return 0;
    }

    if (srv->keys == NULL) {
        server_seterr(err, "portal_listen needs identity_keys");
        return -1;
    }

    if (portal_start(&srv->portal, &srv->cfg, st, srv->keys, msg,
                     sizeof(msg))
        != 0)
    {
        server_seterr(err, "portal: %s", msg);
        return -1;
    }

    log_info("sign-in portal on %s", srv->cfg.portal_listen);

    return 0;
}


/*
 * Pick up rotated identity keys (ztctl keys rotate): load the key files
 * again and, if they load, switch to them.  The portal's threads hold the
 * keys, so the portal is restarted around the switch (a few milliseconds
 * in which nginx answers /zt/ with 502); decisions never see a half-
 * switched state because they run on this thread.  A failure keeps the
 * running keys.
 */
static void
server_reload_keys(server_t *srv)
{
    id_keys_t  *keys, *old;
    id_err_t    ierr;
    char        msg[512];

    if (srv->keys == NULL || srv->cfg.identity_keys[0] == '\0') {
        return;
    }

    if (id_keys_load(srv->cfg.identity_keys, (id_alg_t) srv->cfg.token_alg,
                     (int64_t) (srv->cfg.key_grace_ms / 1000), 0, &keys,
                     &ierr)
        != 0)
    {
        log_error("reload: identity keys not reloaded, keeping the "
                  "running ones: %s", ierr.msg);
        return;
    }

    portal_stop(srv->portal);
    srv->portal = NULL;

    old = srv->keys;
    srv->keys = keys;
    srv->dconf.keys = keys;
    id_keys_free(old);

    if (srv->store != NULL && srv->cfg.portal_listen[0] != '\0') {
        if (portal_start(&srv->portal, &srv->cfg, srv->store, srv->keys,
                         msg, sizeof(msg))
            != 0)
        {
            log_error("reload: the sign-in portal did not restart: %s",
                      msg);
            return;
        }
    }

    log_info("identity keys reloaded from %s", srv->cfg.identity_keys);
}


/* Count one decision and how long decide() took. */
static void
server_count(server_t *srv, unsigned decision, uint64_t ns)
{
    uint64_t  b;

    srv->decisions++;
    srv->by_outcome[decision < 5 ? decision : 0]++;

    b = ns / SERVER_LAT_STEP_NS;
    srv->lat_hist[b < SERVER_LAT_BUCKETS ? b : SERVER_LAT_BUCKETS]++;

    if (ns > srv->lat_max_ns) {
        srv->lat_max_ns = ns;
    }

    metrics_decision(&srv->mdec, decision, ns,
                     srv->dctx.policy_used && srv->policy != NULL
                     ? &srv->dctx.pd : NULL);
}


/* The q-quantile of decision time in microseconds (bucket upper edge). */
static double
server_percentile(const server_t *srv, double q)
{
    uint64_t  want, seen;
    unsigned  i;

    if (srv->decisions == 0) {
        return 0.0;
    }

    want = (uint64_t) (q * (double) srv->decisions);
    if (want == 0) {
        want = 1;
    }

    seen = 0;

    for (i = 0; i <= SERVER_LAT_BUCKETS; i++) {
        seen += srv->lat_hist[i];
        if (seen >= want) {
            if (i == SERVER_LAT_BUCKETS) {
                return (double) srv->lat_max_ns / 1000.0;
            }
            return (double) ((i + 1) * SERVER_LAT_STEP_NS) / 1000.0;
        }
    }

    return (double) srv->lat_max_ns / 1000.0;
}


/*
 * "ok decisions N allow A deny D login L step_up S p50_us X p99_us Y
 * max_us Z seconds T connections C": decision time measured around
 * decide() alone (store read, token check, policy), not the transport.
 */
static void
server_stats(server_t *srv)
{
    double  secs;

    secs = (double) (zt_clock_ms(CLOCK_MONOTONIC) - srv->stats_since_ms) / 1000.0;

    snprintf(srv->reply, sizeof(srv->reply),
             "ok decisions %llu allow %llu deny %llu login %llu step_up %llu "
             "p50_us %.2f p99_us %.2f max_us %.2f seconds %.1f "
             "connections %u\n",
             (unsigned long long) srv->decisions,
             (unsigned long long) srv->by_outcome[WIRE_ALLOW],
             (unsigned long long) srv->by_outcome[WIRE_DENY],
             (unsigned long long) srv->by_outcome[WIRE_LOGIN],
             (unsigned long long) srv->by_outcome[WIRE_STEP_UP],
             server_percentile(srv, 0.50), server_percentile(srv, 0.99),
             (double) srv->lat_max_ns / 1000.0, secs, srv->nconns);
}


static int
server_blocklist_cb(const store_blocklist_t *e, void *arg)
{
    blocklist_err_t  err;

    if (blocklist_add(arg, e->feed, e->cidr, e->expires, &err) != 0) {
        log_warn("blocklist entry %s %s skipped: %s", e->feed, e->cidr,
                 err.msg);
    }

    return 0;
}


/*
 * Trust inference from cfg: weights, the behaviour window, the trusted
 * networks and the blocklists (feeds from files, staff entries from the
 * store), each built aside and swapped in whole.  A feed that cannot be
 * read is logged and left out; the rest still apply.
 */
static void
server_load_trust(server_t *srv, const config_t *cfg)
{
    blocklist_t      *bl, *tn;
    blocklist_err_t   err;
    store_err_t       serr;
    unsigned          bad;
    size_t            i;

    if (cfg != &srv->cfg) {
        srv->cfg.trust = cfg->trust;
        srv->cfg.behaviour_window_ms = cfg->behaviour_window_ms;
        memcpy(srv->cfg.trusted_networks, cfg->trusted_networks,
               sizeof(cfg->trusted_networks));
        srv->cfg.ntrusted_networks = cfg->ntrusted_networks;
        memcpy(srv->cfg.blocklists, cfg->blocklists,
               sizeof(cfg->blocklists));
        srv->cfg.nblocklists = cfg->nblocklists;
    }

    srv->dconf.trust = &srv->cfg.trust;

    if (srv->behaviour == NULL) {
        srv->behaviour = behaviour_create(cfg->behaviour_window_ms);
        if (srv->behaviour == NULL) {
            log_error("trust inference: out of memory for behaviour state");
        }
    } else {
        behaviour_set_window(srv->behaviour, cfg->behaviour_window_ms);
    }
    srv->dconf.behaviour = srv->behaviour;

    bl = blocklist_new();
    tn = blocklist_new();
    if (bl == NULL || tn == NULL) {
        log_error("blocklists not reloaded: out of memory");
        blocklist_free(bl);
        blocklist_free(tn);
        return;
    }

    for (i = 0; i < cfg->ntrusted_networks; i++) {
        (void) blocklist_add(tn, "trusted", cfg->trusted_networks[i], 0,
                             &err);
    }

    for (i = 0; i < cfg->nblocklists; i++) {
        if (blocklist_load(bl, cfg->blocklists[i].name,
                           cfg->blocklists[i].path,
                           cfg->blocklists[i].expires, &bad, &err)
            != 0)
        {
            log_error("blocklist %s: %s", cfg->blocklists[i].name, err.msg);
            continue;
        }

        if (bad > 0) {
            log_warn("blocklist %s: %u malformed line%s skipped",
                     cfg->blocklists[i].name, bad, bad == 1 ? "" : "s");
        }
    }

    if (srv->store != NULL
        && store_blocklist_list(srv->store, server_blocklist_cb, bl, &serr)
           != 0)
    {
        log_error("staff blocklist entries not loaded: %s", serr.msg);
    }

    blocklist_seal(bl);
    blocklist_seal(tn);

    blocklist_free(srv->blocklist);
    blocklist_free(srv->trusted);
    srv->blocklist = bl;
    srv->trusted = tn;
    srv->dconf.blocklist = bl;
    srv->dconf.trusted = tn;

    log_info("trust inference: %zu blocklist entr%s, %zu trusted "
             "network%s", blocklist_count(bl),
             blocklist_count(bl) == 1 ? "y" : "ies", blocklist_count(tn),
             blocklist_count(tn) == 1 ? "" : "s");
}


/*
 * Admin "explain METHOD URL [user=NAME] [device=FP] [source=ADDR]": decide
 * that hypothetical request with the running policy, weights, blocklists
 * and behaviour state (decide_explain(); nothing is recorded) and reply
 * "ok explain" and the explanation.
 */
static void
server_explain(server_t *srv, const char *command)
{
    char           args[SERVER_ADMIN_LINE];
    decide_ctx_t  *ctx;
    wire_resp_t    resp;
    wire_req_t     req;
    const char    *user;
    char          *w, *save, *url, *p, *q;
    size_t         len, i;
    unsigned       byte;

    snprintf(args, sizeof(args), "%s", command);
    memset(&req, 0, sizeof(req));
    user = NULL;
    url = NULL;
    req.cert_verify = WIRE_CERT_NONE;
    req.client_addr.data = "127.0.0.1";
    req.client_addr.len = 9;

    for (w = strtok_r(args, " ", &save); w != NULL;
         w = strtok_r(NULL, " ", &save))
    {
        if (req.method.data == NULL) {
            req.method.data = w;
            req.method.len = strlen(w);

        } else if (url == NULL) {
            url = w;

        } else if (strncmp(w, "user=", 5) == 0) {
            user = w + 5;

        } else if (strncmp(w, "source=", 7) == 0) {
            req.client_addr.data = w + 7;
            req.client_addr.len = strlen(w + 7);

        } else if (strncmp(w, "device=", 7) == 0
                   && strlen(w + 7) == 2 * WIRE_FP_LEN)
        {
            for (i = 0; i < WIRE_FP_LEN; i++) {
                if (sscanf(w + 7 + 2 * i, "%2x", &byte) != 1) {
                    goto invalid;
                }
                req.cert_fp[i] = (uint8_t) byte;
            }
            req.has_cert_fp = 1;
            req.cert_verify = WIRE_CERT_SUCCESS;

        } else {
            goto invalid;
        }
    }

    /* URL: scheme://host[:port]/path[?query] */
    if (url == NULL || (p = strstr(url, "://")) == NULL) {
        goto invalid;
    }

    req.scheme.data = url;
    req.scheme.len = (size_t) (p - url);
    p += 3;
    len = strcspn(p, ":/?");
    req.host.data = p;
    req.host.len = len;
    p += len;
    if (*p == ':') {
        p += strcspn(p, "/?");
    }

    q = strchr(p, '?');
    if (q != NULL) {
        *q++ = '\0';
        req.query.data = q;
        req.query.len = strlen(q);
    }

    req.path.data = *p ? p : "/";
    req.path.len = *p ? strlen(p) : 1;

    if (req.host.len == 0) {
        goto invalid;
    }

    ctx = calloc(1, sizeof(*ctx));
    if (ctx == NULL) {
        snprintf(srv->reply, sizeof(srv->reply), "error out of memory\n");
        return;
    }

    len = (size_t) snprintf(srv->reply, sizeof(srv->reply), "ok explain\n");

    (void) decide_explain(srv->store, &srv->dconf, &req, user, &resp, ctx,
                          srv->reply + len, sizeof(srv->reply) - len);

    decide_ctx_free(ctx);
    free(ctx);

    return;

invalid:

    snprintf(srv->reply, sizeof(srv->reply),
             "error explain: expected METHOD SCHEME://HOST/PATH "
             "[user=NAME] [device=FP] [source=ADDR]\n");
}


static void
server_journal_conf(const config_t *cfg, journal_conf_t *jc)
{
    jc->flush_ms = cfg->journal_flush_ms;
    jc->queue = cfg->journal_queue;
    jc->retention_ms = cfg->journal_retention_ms;
    jc->fail_open = cfg->journal_fail_open;
}


/* Start the journal's writer on the store server_run() was given. */
static int
server_journal_start(server_t *srv)
{
    journal_conf_t  jc;
    char            err[256];

    server_journal_conf(&srv->cfg, &jc);

    if (journal_start(&srv->journal, srv->store, &jc, err, sizeof(err))
        != 0)
    {
        log_error("cannot start the decision journal: %s", err);
        return -1;
    }

    return 0;
}


/*
 * Record the decision just made in the journal.  While the journal cannot
 * record (journal_failure closed), the answer becomes the fail-closed
 * deny first, and that is what is queued if there is room.
 */
static void
server_journal_decision(server_t *srv, const wire_req_t *req,
    wire_resp_t *resp)
{
    static const char  why[] = "decision journal unavailable";

    if (srv->journal == NULL) {
        return;
    }

    if (journal_blocked(srv->journal)) {
        server_fail_closed(resp, why);
    }

    decide_journal_record(&srv->dconf, req, resp, &srv->dctx,
                          zt_clock_ms(CLOCK_REALTIME), &srv->jrec);
    (void) journal_add(srv->journal, &srv->jrec);
}


/* Admin "journal": the writer's counters. */
static void
server_journal_status(server_t *srv)
{
    journal_stats_t  js;

    journal_stats(srv->journal, &js);

    snprintf(srv->reply, sizeof(srv->reply),
             "ok journal queued %llu folded %llu written %llu dropped %llu "
             "failures %llu purged %llu pending %u failing %d%s%s\n",
             (unsigned long long) js.queued, (unsigned long long) js.folded,
             (unsigned long long) js.written,
             (unsigned long long) js.dropped,
             (unsigned long long) js.failures,
             (unsigned long long) js.purged, js.pending, js.failing,
             js.failing ? " error " : "", js.failing ? js.error : "");
}


/* (Re)start the metrics timer at metrics_interval.  0, or -1 (errno). */
static int
server_metrics_arm(server_t *srv)
{
    struct itimerspec  its;
    uint32_t           ms;

    if (srv->mtimer.fd == -1) {
        srv->mtimer.fd = timerfd_create(CLOCK_MONOTONIC,
                                        TFD_NONBLOCK | TFD_CLOEXEC);
        if (srv->mtimer.fd == -1) {
            return -1;
        }
    }

    ms = srv->cfg.metrics_interval_ms;

    memset(&its, 0, sizeof(its));
    its.it_value.tv_sec = ms / 1000;
    its.it_value.tv_nsec = (long) (ms % 1000) * 1000000;
    its.it_interval = its.it_value;

    return timerfd_settime(srv->mtimer.fd, 0, &its, NULL);
}


static void
server_metrics_timer(server_t *srv)
{
    uint64_t  ticks;

    if (read(srv->mtimer.fd, &ticks, sizeof(ticks)) != sizeof(ticks)) {
        return;
    }

    server_metrics_publish(srv);
}


/*
 * Render the metrics now (on this thread: every counter is read where it
 * is written, or through its own lock or atomic).  A buffer owned by the
 * caller, or NULL when out of memory.
 */
static char *
server_metrics_text(server_t *srv, size_t *len)
{
    metrics_snapshot_t  s;
    struct timespec     now;
    struct stat         sb;
    char                path[CONFIG_PATH_MAX + 16];

    memset(&s, 0, sizeof(s));

    clock_gettime(CLOCK_REALTIME, &now);
    s.time = (double) now.tv_sec + (double) now.tv_nsec / 1e9;
    s.start_time = srv->start_time;
    s.decisions = &srv->mdec;
    s.connections = srv->nconns;
    metrics_portal_read(s.portal);
    s.reloads_ok = srv->reloads_ok;
    s.reloads_failed = srv->reloads_failed;
    s.policy_version = srv->policy ? pol_version(srv->policy) : "built-in";
    s.policy_rules = srv->policy ? pol_nrules(srv->policy) : 0;

    snprintf(path, sizeof(path), "%s/data.mdb", srv->cfg.store);
    s.store_file_bytes = stat(path, &sb) == 0 ? (int64_t) sb.st_size : -1;
    s.store_map_bytes = srv->store ? store_map_size(srv->store) : 0;

    if (srv->census_started) {
        pthread_mutex_lock(&srv->census_mu);
    }
    s.posture_known = srv->census_time != 0;     /* one census worked */
    memcpy(s.posture, srv->census, sizeof(s.posture));
    s.posture_time = srv->census_time;
    if (srv->census_started) {
        pthread_mutex_unlock(&srv->census_mu);
    }

    if (srv->journal != NULL) {
        s.has_journal = 1;
        journal_stats(srv->journal, &s.journal);
    }

    if (srv->cluster != NULL) {
        s.has_cluster = 1;
        cluster_stats(srv->cluster, &s.cluster);
    }

    return metrics_render(&s, len);
}


/* Render and hand over to the HTTP thread, which never makes us wait. */
static void
server_metrics_publish(server_t *srv)
{
    char    *text;
    size_t   len;

    text = server_metrics_text(srv, &len);
    if (text == NULL) {
        log_error("metrics: out of memory rendering a snapshot");
        return;
    }

    if (metrics_publish(srv->metrics, text, len) != 0) {
        log_debug("metrics: a scrape was being served; publishing at the "
                  "next tick");
    }
}


/*
 * Admin "metrics": "ok metrics" and the metrics text, rendered now (the
 * device posture counts are at most a minute old), then close.
 */
static void
server_admin_metrics(server_t *srv, server_admin_t *a)
{
    static const char   head[] = "ok metrics\n";
    char               *text, *out;
    size_t              len;

    out = NULL;
    text = server_metrics_text(srv, &len);
    if (text != NULL) {
        out = malloc(sizeof(head) - 1 + len);
    }

    if (out == NULL) {
        snprintf(srv->reply, sizeof(srv->reply), "error out of memory\n");
        (void) send(a->ev.fd, srv->reply, strlen(srv->reply),
                    MSG_NOSIGNAL | MSG_DONTWAIT);
        free(text);
        server_admin_close(srv, a);
        return;
    }

    memcpy(out, head, sizeof(head) - 1);
    memcpy(out + sizeof(head) - 1, text, len);
    len += sizeof(head) - 1;

    /* tens of KiB: a fresh Unix socket's buffer takes them whole */
    if (send(a->ev.fd, out, len, MSG_NOSIGNAL | MSG_DONTWAIT)
        != (ssize_t) len)
    {
        log_warn("admin socket: could not send the whole metrics reply");
    }

    free(out);
    free(text);
    server_admin_close(srv, a);
}


/*
 * Count the devices that can be allowed (active or quarantined, not
 * expired) by posture freshness, by the rule decisions use.  One walk of
 * the devices and a posture read each, in read transactions of their own;
 * on failure the previous counts stay (logged).
 */
static void
server_posture_census(server_t *srv)
{
    server_census_t  c;
    struct timespec  now;
    int              rc;

    if (srv->store == NULL) {
        return;
    }

    memset(&c, 0, sizeof(c));
    c.now = (int64_t) time(NULL);
    c.max_age = (int64_t) (__atomic_load_n(&srv->census_max_age_ms,
                                           __ATOMIC_RELAXED) / 1000);

    if (store_view_begin(srv->store, &c.view, &c.err) != 0) {
        log_error("metrics: device posture census: %s", c.err.msg);
        return;
    }

    rc = store_device_list(srv->store, server_census_cb, &c, &c.err);
    store_view_free(c.view);

    if (rc != 0 || c.failed) {
        log_error("metrics: device posture census: %s", c.err.msg);
        return;
    }

    clock_gettime(CLOCK_REALTIME, &now);
    pthread_mutex_lock(&srv->census_mu);
    memcpy(srv->census, c.n, sizeof(srv->census));
    srv->census_ms = zt_clock_ms(CLOCK_MONOTONIC);
    srv->census_time = (double) now.tv_sec + (double) now.tv_nsec / 1e9;
    pthread_mutex_unlock(&srv->census_mu);
}


/* Start the census thread: a walk now, then every minute. */
static void
server_census_start(server_t *srv)
{
    int  rc;

    srv->census_max_age_ms = srv->cfg.posture_max_age_ms;
    srv->census_stop = 0;

    if (pthread_mutex_init(&srv->census_mu, NULL) != 0
        || pthread_cond_init(&srv->census_cv, NULL) != 0)
    {
        log_error("metrics: cannot start the posture census");
        return;
    }

    rc = pthread_create(&srv->census_thread, NULL, server_census_main, srv);
    if (rc != 0) {
        log_error("metrics: cannot start the posture census: %s",
                  strerror(rc));
        return;
    }

    srv->census_started = 1;
}


static void
server_census_stop(server_t *srv)
{
    if (!srv->census_started) {
        return;
    }

    pthread_mutex_lock(&srv->census_mu);
    srv->census_stop = 1;
    pthread_cond_signal(&srv->census_cv);
    pthread_mutex_unlock(&srv->census_mu);

    pthread_join(srv->census_thread, NULL);
    srv->census_started = 0;
}


static void *
server_census_main(void *arg)
{
    server_t         *srv = arg;
    struct timespec   deadline;
    int               stop;

    for ( ;; ) {
        server_posture_census(srv);

        clock_gettime(CLOCK_REALTIME, &deadline);
        deadline.tv_sec += METRICS_POSTURE_EVERY_MS / 1000;

        pthread_mutex_lock(&srv->census_mu);
        while (!srv->census_stop
               && pthread_cond_timedwait(&srv->census_cv, &srv->census_mu,
                                         &deadline) == 0)
        {
            /* woken without a stop: wait out the minute */
        }
        stop = srv->census_stop;
        pthread_mutex_unlock(&srv->census_mu);

        if (stop) {
            return NULL;
        }
    }
}


static int
server_census_cb(const store_device_t *dev, void *arg)
{
    server_census_t  *c = arg;
    store_posture_t   p;
    int               rc;

    if ((dev->status != STORE_DEVICE_ACTIVE
         && dev->status != STORE_DEVICE_QUARANTINED)
        || (dev->expires_at != 0 && dev->expires_at <= c->now))
    {
        return 0;
    }

    rc = store_posture_get(c->view, dev->fp, &p, &c->err);

    if (rc == STORE_NOTFOUND) {
        c->n[METRICS_POSTURE_MISSING]++;

    } else if (rc != 0) {
        c->failed = 1;
        return 1;

    } else if (c->max_age != 0 && p.received_at + c->max_age < c->now) {
        c->n[METRICS_POSTURE_STALE]++;

    } else {
        c->n[METRICS_POSTURE_FRESH]++;
    }

    return 0;
}


/* The fail-closed answer: deny with 503 and why. */
static void
server_fail_closed(wire_resp_t *resp, const char *why)
{
    memset(resp, 0, sizeof(*resp));
    resp->decision = WIRE_DENY;
    resp->status = 503;
    resp->reason_code = WIRE_R_INTERNAL;
    resp->reason.data = why;
    resp->reason.len = strlen(why);
}


/*
 * Cluster mode: attach the store to the cluster database (bootstrapping
 * or seeding as needed) and start the follower, before the portal starts
 * writing.
 */
static int
server_cluster_attach(server_t *srv, store_t *st, server_err_t *err)
{
    cluster_conf_t  cc;
    char            msg[512];

    cluster_conf_init(&cc, &srv->cfg, "trustd");
    cc.may_start_offline = 1;

    if (cluster_attach(&srv->cluster, &cc, st, msg, sizeof(msg)) != 0) {
        server_seterr(err, "cluster: %s", msg);
        return -1;
    }

    cluster_set_policy(srv->cluster, srv->policy ? pol_version(srv->policy)
                                                 : "built-in");

    if (cluster_start(srv->cluster, msg, sizeof(msg)) != 0) {
        server_seterr(err, "%s", msg);
        return -1;
    }

    log_info("cluster mode: node %s, store follows the cluster database "
             "(fail closed after %u ms without the change feed)",
             srv->cfg.cluster_node, srv->cfg.cluster_max_staleness_ms);

    return 0;
}


static void
server_cluster_touch(void *arg, const char *const *sids, size_t n)
{
    cluster_defer_touch(arg, sids, n);
}


static void
server_cluster_history(void *arg, const store_history_t *rows, size_t n)
{
    cluster_defer_history(arg, rows, n);
}


/* Admin "cluster": where this node stands. */
static void
server_cluster_status(server_t *srv)
{
    cluster_stats_t  cs;

    if (srv->cluster == NULL) {
        snprintf(srv->reply, sizeof(srv->reply), "ok cluster mode off\n");
        return;
    }

    cluster_stats(srv->cluster, &cs);

    snprintf(srv->reply, sizeof(srv->reply),
             "ok cluster mode on id %s node %s position %llu head %llu lag %llu "
             "connected %d feed_age_ms %lld stale %d max_staleness_ms %u "
             "applied %llu commits %llu refused %llu bootstraps %llu "
             "dropped %llu propagation_samples %llu propagation_p50_ms %.1f "
             "propagation_p99_ms %.1f\n",
             cs.cluster_id, srv->cfg.cluster_node,
             (unsigned long long) cs.position, (unsigned long long) cs.head,
             (unsigned long long) (cs.head - cs.position), cs.connected,
             (long long) cs.feed_age_ms, cs.stale,
             srv->cfg.cluster_max_staleness_ms,
             (unsigned long long) cs.applied, (unsigned long long) cs.commits,
             (unsigned long long) cs.refused,
             (unsigned long long) cs.bootstraps,
             (unsigned long long) cs.deferred_dropped,
             (unsigned long long) cs.lat_count, cs.lat_p50_ms,
             cs.lat_p99_ms);
}
