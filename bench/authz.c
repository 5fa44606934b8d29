/*
 * authz: the HTTP authorizer of the gateway benchmark's auth_request
 * variant.  It makes trustd's decision with trustd's own code (config,
 * store, policy, identity keys, decide()), so that the benchmark compares
 * the transports and nothing else: nginx's auth_request subrequest over a
 * kept-alive HTTP/1.1 Unix-socket connection here, against the module's
 * pipelined binary frames to trustd.
 *
 *     authz -c trustd.conf -l /path/authz.sock [-n connections]
 *           [-k session-cookie-name]
 *
 * One thread, one level-triggered epoll set, a fixed pool of connections
 * with fixed buffers allocated at start: nothing is allocated per request.
 * Requests are HTTP/1.1 heads without a body; pipelined requests are
 * answered in order.  The request that nginx's auth_request location
 * sends carries:
 *
 *     X-Original-Method   the client's method (required)
 *     X-Original-URI      the client's request target (required); the
 *                         path is percent-decoded and normalized as nginx
 *                         does for $uri, the query is kept apart
 *     Host                the host the client asked for (required)
 *     X-ZT-Client-Addr    the client address nginx saw (required)
 *     X-ZT-Device-Fp      64 hex digits: the client certificate nginx
 *                         verified ($zt_device_fp); absent: no device
 *     X-ZT-Scheme         "http" or "https" (default "https")
 *     User-Agent, Cookie  as the client sent them (the session token is
 *                         the cookie named by -k)
 *
 * Answers (Content-Length: 0): 200 allow (with the headers the decision
 * returned), 403 deny, 401 login or step-up (auth_request can only say
 * "unauthorized"), 503 when the decision store failed (auth_request turns
 * it into 500: closed).  A malformed request gets 400 and the connection
 * is closed.  Only peers listed by peer_user in trustd.conf may connect.
 *
 * SIGUSR1 writes one stats line to stderr (counters since start, and the
 * decide() latency percentiles since the previous SIGUSR1); SIGTERM and
 * SIGINT stop it.
 */

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "zt_wire.h"
#include "config.h"
#include "decide.h"
#include "identity.h"
#include "sock.h"
#include "log.h"
#include "store.h"


#define AUTHZ_IN_SIZE           8192    /* one request head at most */
#define AUTHZ_OUT_SIZE          16384
#define AUTHZ_RESP_MAX          8192    /* one answer at most */
#define AUTHZ_PATH_MAX          4096    /* a normalized path */
#define AUTHZ_CONNS_DEFAULT     256
#define AUTHZ_CONNS_MAX         65536
#define AUTHZ_EVENTS            64
#define AUTHZ_COOKIES           8       /* Cookie header lines looked at */
#define AUTHZ_HIST_STEP_NS      10
#define AUTHZ_HIST_BUCKETS      20000   /* 10 ns steps up to 200 us */
#define AUTHZ_MAINTAIN_SEC      10
#define AUTHZ_SOCKET_MODE       0660
#define AUTHZ_DEFAULT_COOKIE    "__Host-zt_session"

typedef enum {
    AUTHZ_EV_LISTEN = 1,
    AUTHZ_EV_SIGNAL,
    AUTHZ_EV_TIMER,
    AUTHZ_EV_CONN
} authz_ev_type_t;

/* The first member of everything registered with epoll. */
typedef struct {
    authz_ev_type_t     type;
    int                 fd;
} authz_ev_t;

typedef struct {
    authz_ev_t      ev;             /* first; fd -1 when the slot is free */
    uint32_t        events;         /* registered with epoll */
    unsigned        eof:1;          /* the peer will send nothing more */
    unsigned        closing:1;      /* close once out is written */
    size_t          in_len;
    size_t          out_pos;
    size_t          out_len;
    uint8_t         in[AUTHZ_IN_SIZE];
    char            out[AUTHZ_OUT_SIZE];
} authz_conn_t;

/* One parsed request head; strings point into the connection's buffer. */
typedef struct {
    wire_str_t      method;
    wire_str_t      uri;
    wire_str_t      host;
    wire_str_t      client_addr;
    wire_str_t      device_fp;
    wire_str_t      scheme;
    wire_str_t      user_agent;
    wire_str_t      cookies[AUTHZ_COOKIES];
    unsigned        ncookies;
    unsigned        keepalive:1;
    unsigned        seen;           /* AUTHZ_H_* bits: no duplicates */
} authz_http_t;

#define AUTHZ_H_METHOD      0x01u
#define AUTHZ_H_URI         0x02u
#define AUTHZ_H_HOST        0x04u
#define AUTHZ_H_ADDR        0x08u
#define AUTHZ_H_FP          0x10u
#define AUTHZ_H_SCHEME      0x20u
#define AUTHZ_H_UA          0x40u
#define AUTHZ_H_LENGTH      0x80u

typedef struct {
    uint64_t        requests;
    uint64_t        allow;
    uint64_t        deny;
    uint64_t        login;
    uint64_t        error;          /* 503: the store failed */
    uint64_t        bad;            /* malformed: 400, closed */
    uint64_t        accepted;
    uint64_t        refused;        /* peer not allowed, or pool full */
} authz_stats_t;

typedef struct {
    config_t         cfg;
    store_t         *store;
    pol_t           *policy;
    id_keys_t       *keys;
    decide_conf_t    dconf;
    decide_ctx_t     dctx;
    const char      *path;          /* the listening socket */
    const char      *cookie;        /* session cookie name */
    size_t           cookie_len;
    int              epfd;
    authz_ev_t       listen;
    authz_ev_t       sig;
    authz_ev_t       timer;
    int              bound;
    dev_t            sock_dev;
    ino_t            sock_ino;
    int              stop;
    authz_conn_t    *conns;
    unsigned         nconns;
    unsigned        *free_conns;    /* a stack of free slot indexes */
    unsigned         nfree;
    authz_stats_t    stats;
    uint64_t         hist_n;
    uint32_t         hist[AUTHZ_HIST_BUCKETS + 1];  /* last: overflow */
    char             path_buf[AUTHZ_PATH_MAX];
} authz_t;


static void authz_usage(void) __attribute__((noreturn));
static int authz_load_policy(authz_t *az);
static int authz_setup(authz_t *az);
static void authz_run(authz_t *az);
static void authz_cleanup(authz_t *az);
static int authz_epoll(authz_t *az, int op, authz_ev_t *ev,
    uint32_t events);
static void authz_accept(authz_t *az);
static void authz_signal(authz_t *az);
static void authz_timer(authz_t *az);
static void authz_report(authz_t *az);
static double authz_percentile(const authz_t *az, double q);
static void authz_conn_event(authz_t *az, authz_conn_t *c,
    uint32_t events);
static int authz_conn_read(authz_conn_t *c);
static int authz_conn_process(authz_t *az, authz_conn_t *c);
static int authz_conn_flush(authz_conn_t *c);
static int authz_conn_want(authz_t *az, authz_conn_t *c, uint32_t events);
static void authz_conn_close(authz_t *az, authz_conn_t *c);
static ssize_t authz_parse(const char *p, size_t len, authz_http_t *h);
static int authz_parse_request_line(const char *p, const char *end,
    authz_http_t *h);
static int authz_parse_header(const char *p, const char *end,
    authz_http_t *h);
static int authz_header_set(authz_http_t *h, unsigned bit, wire_str_t *dst,
    const char *v, size_t n);
static int authz_is_tchar(unsigned char c);
static int authz_has_token(const char *v, size_t n, const char *token);
static int authz_hex(unsigned char c);
static int authz_normalize(const char *p, size_t n, char *out, size_t size,
    size_t *len);
static void authz_token(const authz_t *az, const authz_http_t *h,
    wire_req_t *req);
static int authz_request(authz_t *az, const authz_http_t *h,
    wire_req_t *req);
static void authz_answer(authz_t *az, authz_conn_t *c, const wire_req_t *req,
    int keepalive);
static void authz_answer_bad(authz_t *az, authz_conn_t *c);
static int authz_header_safe(const wire_str_t *s);
static int64_t authz_now_ns(void);


static void
authz_usage(void)
{
    fprintf(stderr, "usage: authz -c trustd.conf -l socket [-n connections] "
            "[-k session-cookie]\n");
    exit(2);
}


static int64_t
authz_now_ns(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);

    return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}


int
main(int argc, char **argv)
{
    static authz_t   az;    /* large: keep it off the stack */
    config_err_t     cerr;
    store_err_t      serr;
    id_err_t         ierr;
    const char      *conf;
    long             n;
    char            *end;
    int              ch, rc;

    conf = NULL;
    az.path = NULL;
    az.cookie = AUTHZ_DEFAULT_COOKIE;
    az.nconns = AUTHZ_CONNS_DEFAULT;
    az.epfd = -1;
    az.listen.type = AUTHZ_EV_LISTEN;
    az.listen.fd = -1;
    az.sig.type = AUTHZ_EV_SIGNAL;
    az.sig.fd = -1;
    az.timer.type = AUTHZ_EV_TIMER;
    az.timer.fd = -1;

    while ((ch = getopt(argc, argv, "c:l:n:k:")) != -1) {
        switch (ch) {
        case 'c':
            conf = optarg;
            break;
        case 'l':
            az.path = optarg;
            break;
        case 'n':
            errno = 0;
            n = strtol(optarg, &end, 10);
            if (errno || *end || n < 1 || n > AUTHZ_CONNS_MAX) {
                authz_usage();
            }
            az.nconns = (unsigned) n;
            break;
        case 'k':
            az.cookie = optarg;
            break;
        default:
            authz_usage();
        }
    }

    if (conf == NULL || az.path == NULL || optind != argc) {
        authz_usage();
    }

    az.cookie_len = strlen(az.cookie);

    if (strlen(az.path) >= sizeof(((struct sockaddr_un *) 0)->sun_path)) {
        fprintf(stderr, "authz: socket path too long: %s\n", az.path);
        return 1;
    }

    if (config_load(conf, &az.cfg, &cerr) != 0) {
        fprintf(stderr, "authz: %s\n", cerr.msg);
        return 1;
    }

    log_init("authz", 0, az.cfg.log_level);
    signal(SIGPIPE, SIG_IGN);

    rc = 1;

    if (authz_load_policy(&az) != 0) {
        goto done;
    }

    if (az.cfg.identity_keys[0] != '\0') {
        if (id_keys_load(az.cfg.identity_keys, (id_alg_t) az.cfg.token_alg,
                         (int64_t) (az.cfg.key_grace_ms / 1000), 0,
                         &az.keys, &ierr)
            != 0)
        {
            log_error("identity keys: %s", ierr.msg);
            goto done;
        }
    }

    /* the same decision settings as trustd's server_init() */
    az.dconf.allow_ttl_ms = az.cfg.allow_ttl_ms;
    az.dconf.policy = az.policy;
    az.dconf.portal_url = az.cfg.portal_url;
    az.dconf.keys = az.keys;
    az.dconf.session_idle_ms = az.cfg.session_idle_ms;
    az.dconf.assertion_ttl_ms = az.cfg.assertion_ttl_ms;
    az.dconf.posture_max_age_ms = az.cfg.posture_max_age_ms;

    if (store_open(&az.store, az.cfg.store, az.cfg.store_map_size, 0, &serr)
        != 0)
    {
        log_error("%s", serr.msg);
        goto done;
    }

    if (authz_setup(&az) != 0) {
        goto done;
    }

    log_info("authz on %s: policy %s, %u connections", az.path,
             az.policy ? pol_version(az.policy) : "built-in", az.nconns);

    authz_run(&az);

    rc = 0;

done:

    authz_cleanup(&az);

    return rc;
}


/* Load the policy trustd.conf names, as trustd does; none: built-in. */
static int
authz_load_policy(authz_t *az)
{
    pol_diags_t  *diags;
    char          line[600];
    unsigned      i;
    int           rc;

    if (az->cfg.policy[0] == '\0') {
        return 0;
    }

    diags = calloc(1, sizeof(*diags));
    if (diags == NULL) {
        log_error("out of memory loading the policy");
        return -1;
    }

    rc = pol_load(az->cfg.policy, &az->policy, diags);

    for (i = 0; i < diags->ndiags; i++) {
        pol_diag_format(&diags->diags[i], line, sizeof(line));
        if (diags->diags[i].warning) {
            log_warn("policy: %s", line);
        } else {
            log_error("policy: %s", line);
        }
    }

    free(diags);

    if (rc != 0) {
        log_error("policy %s did not load", az->cfg.policy);
        return -1;
    }

    return 0;
}


static int
authz_setup(authz_t *az)
{
    struct itimerspec  its;
    sigset_t           mask;
    unsigned           i;
    char               msg[512];

    az->conns = calloc(az->nconns, sizeof(authz_conn_t));
    az->free_conns = calloc(az->nconns, sizeof(unsigned));
    if (az->conns == NULL || az->free_conns == NULL) {
        log_error("out of memory for %u connections", az->nconns);
        return -1;
    }

    for (i = 0; i < az->nconns; i++) {
        az->conns[i].ev.type = AUTHZ_EV_CONN;
        az->conns[i].ev.fd = -1;
        az->free_conns[i] = az->nconns - 1 - i;
    }

    az->nfree = az->nconns;

    az->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (az->epfd == -1) {
        log_error("epoll_create1: %s", strerror(errno));
        return -1;
    }

    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGUSR1);

    if (sigprocmask(SIG_BLOCK, &mask, NULL) == -1) {
        log_error("sigprocmask: %s", strerror(errno));
        return -1;
    }

    az->sig.fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    if (az->sig.fd == -1) {
        log_error("signalfd: %s", strerror(errno));
        return -1;
    }

    az->timer.fd = timerfd_create(CLOCK_MONOTONIC,
                                  TFD_NONBLOCK | TFD_CLOEXEC);
    if (az->timer.fd == -1) {
        log_error("timerfd_create: %s", strerror(errno));
        return -1;
    }

    memset(&its, 0, sizeof(its));
    its.it_value.tv_sec = AUTHZ_MAINTAIN_SEC;
    its.it_interval.tv_sec = AUTHZ_MAINTAIN_SEC;

    if (timerfd_settime(az->timer.fd, 0, &its, NULL) == -1) {
        log_error("timerfd_settime: %s", strerror(errno));
        return -1;
    }

    if (sock_listen(az->path, AUTHZ_SOCKET_MODE, &az->listen.fd,
                    &az->sock_dev, &az->sock_ino, msg, sizeof(msg))
        != 0)
    {
        log_error("%s", msg);
        return -1;
    }

    az->bound = 1;

    if (authz_epoll(az, EPOLL_CTL_ADD, &az->sig, EPOLLIN) != 0
        || authz_epoll(az, EPOLL_CTL_ADD, &az->timer, EPOLLIN) != 0
        || authz_epoll(az, EPOLL_CTL_ADD, &az->listen, EPOLLIN) != 0)
    {
        log_error("epoll_ctl: %s", strerror(errno));
        return -1;
    }

    return 0;
}


static void
authz_cleanup(authz_t *az)
{
    unsigned  i;

    if (az->conns != NULL) {
        for (i = 0; i < az->nconns; i++) {
            if (az->conns[i].ev.fd != -1) {
                close(az->conns[i].ev.fd);
            }
        }
    }

    free(az->conns);
    free(az->free_conns);

    if (az->listen.fd != -1) {
        close(az->listen.fd);
    }

    if (az->bound) {
        sock_unlink(az->path, az->sock_dev, az->sock_ino);
    }

    if (az->sig.fd != -1) {
        close(az->sig.fd);
    }

    if (az->timer.fd != -1) {
        close(az->timer.fd);
    }

    if (az->epfd != -1) {
        close(az->epfd);
    }

    decide_ctx_free(&az->dctx);
    store_close(az->store);
    pol_free(az->policy);
    id_keys_free(az->keys);
}


static int
authz_epoll(authz_t *az, int op, authz_ev_t *ev, uint32_t events)
{
    struct epoll_event  ee;

    memset(&ee, 0, sizeof(ee));
    ee.events = events;
    ee.data.ptr = ev;

    return epoll_ctl(az->epfd, op, ev->fd, &ee);
}


static void
authz_run(authz_t *az)
{
    struct epoll_event   events[AUTHZ_EVENTS];
    authz_ev_t          *ev;
    int                  n, i;

    while (!az->stop) {
        n = epoll_wait(az->epfd, events, AUTHZ_EVENTS, -1);
        if (n == -1) {
            if (errno == EINTR) {
                continue;
            }
            log_error("epoll_wait: %s", strerror(errno));
            return;
        }

        for (i = 0; i < n; i++) {
            ev = events[i].data.ptr;

            switch (ev->type) {
            case AUTHZ_EV_LISTEN:
                authz_accept(az);
                break;
            case AUTHZ_EV_SIGNAL:
                authz_signal(az);
                break;
            case AUTHZ_EV_TIMER:
                authz_timer(az);
                break;
            case AUTHZ_EV_CONN:
                /* a connection closed earlier in this batch has fd -1 */
                if (ev->fd != -1) {
                    authz_conn_event(az, (authz_conn_t *) ev,
                                     events[i].events);
                }
                break;
            }
        }
    }
}


static void
authz_accept(authz_t *az)
{
    struct ucred     cred;
    socklen_t        len;
    authz_conn_t    *c;
    int              fd, i;

    for (i = 0; i < AUTHZ_EVENTS; i++) {
        fd = accept4(az->listen.fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd == -1) {
            if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED) {
                log_warn("accept: %s", strerror(errno));
            }
            return;
        }

        memset(&cred, 0, sizeof(cred));
        cred.uid = (uid_t) -1;
        len = sizeof(cred);

        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == -1
            || !config_peer_allowed(&az->cfg, cred.uid))
        {
            log_warn("refused peer uid %ld (not a peer_user)",
                     (long) cred.uid);
            az->stats.refused++;
            close(fd);
            continue;
        }

        if (az->nfree == 0) {
            log_warn("all %u connections in use: refused one", az->nconns);
            az->stats.refused++;
            close(fd);
            continue;
        }

        c = &az->conns[az->free_conns[--az->nfree]];
        c->ev.fd = fd;
        c->eof = 0;
        c->closing = 0;
        c->in_len = 0;
        c->out_pos = 0;
        c->out_len = 0;
        c->events = EPOLLIN;

        if (authz_epoll(az, EPOLL_CTL_ADD, &c->ev, EPOLLIN) != 0) {
            log_warn("epoll_ctl: %s", strerror(errno));
            authz_conn_close(az, c);
            continue;
        }

        az->stats.accepted++;
    }
}


static void
authz_signal(authz_t *az)
{
    struct signalfd_siginfo  si;

    while (read(az->sig.fd, &si, sizeof(si)) == (ssize_t) sizeof(si)) {
        switch (si.ssi_signo) {
        case SIGUSR1:
            authz_report(az);
            break;
        default:
            log_info("received signal %u, stopping", si.ssi_signo);
            az->stop = 1;
            break;
        }
    }
}


/* trustd's periodic work that concerns decisions: session activity. */
static void
authz_timer(authz_t *az)
{
    store_err_t  err;
    uint64_t     ticks;
    int          cleared;

    if (read(az->timer.fd, &ticks, sizeof(ticks)) != sizeof(ticks)) {
        return;
    }

    decide_touch(az->store, &az->dctx);

    if (store_maintain(az->store, &cleared, &err) != 0) {
        log_error("store maintenance: %s", err.msg);
    }
}


/* The q-quantile of decide() times since the last report, in us. */
static double
authz_percentile(const authz_t *az, double q)
{
    uint64_t  want, sum;
    unsigned  i;

    if (az->hist_n == 0) {
        return 0.0;
    }

    want = (uint64_t) (q * (double) az->hist_n);
    if (want >= az->hist_n) {
        want = az->hist_n - 1;
    }

    sum = 0;
    for (i = 0; i <= AUTHZ_HIST_BUCKETS; i++) {
        sum += az->hist[i];
        if (sum > want) {
            break;
        }
    }

    /* the bucket's upper edge: never flatters */
    return (double) (i + 1) * AUTHZ_HIST_STEP_NS / 1000.0;
}


static void
authz_report(authz_t *az)
{
    authz_stats_t  *s = &az->stats;

    fprintf(stderr, "authz stats: requests %llu allow %llu deny %llu "
            "login %llu error %llu bad %llu accepted %llu refused %llu "
            "open %u decide_n %llu decide_p50_us %.2f decide_p99_us %.2f\n",
            (unsigned long long) s->requests, (unsigned long long) s->allow,
            (unsigned long long) s->deny, (unsigned long long) s->login,
            (unsigned long long) s->error, (unsigned long long) s->bad,
            (unsigned long long) s->accepted,
            (unsigned long long) s->refused, az->nconns - az->nfree,
            (unsigned long long) az->hist_n, authz_percentile(az, 0.50),
            authz_percentile(az, 0.99));
    fflush(stderr);

    memset(az->hist, 0, sizeof(az->hist));
    az->hist_n = 0;
}


static void
authz_conn_event(authz_t *az, authz_conn_t *c, uint32_t events)
{
    int  rc;

    if (events & (EPOLLERR | EPOLLHUP)) {
        /* a hang-up may still leave requests to read and answer */
        if (!(events & EPOLLIN) || (c->events & EPOLLOUT)) {
            authz_conn_close(az, c);
            return;
        }
    }

    if ((events & EPOLLIN) && (c->events & EPOLLIN)) {
        rc = authz_conn_read(c);
        if (rc != 0) {
            authz_conn_close(az, c);
            return;
        }
    }

    if (authz_conn_process(az, c) != 0) {
        authz_conn_close(az, c);
    }
}


/* Read what fits.  Returns 0, or -1 on an error. */
static int
authz_conn_read(authz_conn_t *c)
{
    ssize_t  n;

    if (c->in_len == AUTHZ_IN_SIZE) {
        return 0;           /* the parser decides: a head too large */
    }

    n = recv(c->ev.fd, c->in + c->in_len, AUTHZ_IN_SIZE - c->in_len, 0);

    if (n > 0) {
        c->in_len += (size_t) n;
        return 0;
    }

    if (n == 0) {
        c->eof = 1;
        return 0;
    }

    if (errno == EAGAIN || errno == EINTR) {
        return 0;
    }

    return -1;
}


/*
 * Answer every whole request in the input buffer while the output buffer
 * has room for one more answer, write, and choose what to wait for next.
 * Returns 0, or -1 when the connection should be closed now.
 */
static int
authz_conn_process(authz_t *az, authz_conn_t *c)
{
    authz_http_t   h;
    wire_req_t     req;
    size_t         used;
    ssize_t        head;

    for ( ;; ) {
        used = 0;

        while (!c->closing
               && AUTHZ_OUT_SIZE - c->out_len >= AUTHZ_RESP_MAX)
        {
            head = authz_parse((const char *) c->in + used,
                               c->in_len - used, &h);

            if (head == 0) {
                if (c->in_len - used == AUTHZ_IN_SIZE) {
                    authz_answer_bad(az, c);    /* head too large */
                }
                break;
            }

            if (head < 0 || authz_request(az, &h, &req) != 0) {
                authz_answer_bad(az, c);
                break;
            }

            az->stats.requests++;
            authz_answer(az, c, &req, h.keepalive);
            used += (size_t) head;
        }

        if (used > 0) {
            memmove(c->in, c->in + used, c->in_len - used);
            c->in_len -= used;
        }

        if (authz_conn_flush(c) != 0) {
            return -1;
        }

        if (c->out_len > 0) {
            /* the peer is not reading: stop reading until it does */
            return authz_conn_want(az, c, EPOLLOUT);
        }

        if (c->closing) {
            return -1;
        }

        if (used == 0 || c->in_len == 0) {
            break;
        }

        /* output was full; more requests may be waiting */
    }

    if (c->eof) {
        /* a partial request can never be completed */
        return -1;
    }

    return authz_conn_want(az, c, EPOLLIN);
}


static int
authz_conn_flush(authz_conn_t *c)
{
    ssize_t  n;

    while (c->out_pos < c->out_len) {
        n = send(c->ev.fd, c->out + c->out_pos, c->out_len - c->out_pos,
                 MSG_NOSIGNAL);
        if (n > 0) {
            c->out_pos += (size_t) n;
            continue;
        }

        if (n == -1 && errno == EINTR) {
            continue;
        }

        if (n == -1 && errno == EAGAIN) {
            break;
        }

        return -1;
    }

    if (c->out_pos == c->out_len) {
        c->out_pos = 0;
        c->out_len = 0;

    } else if (c->out_pos > 0) {
        memmove(c->out, c->out + c->out_pos, c->out_len - c->out_pos);
        c->out_len -= c->out_pos;
        c->out_pos = 0;
    }

    return 0;
}


static int
authz_conn_want(authz_t *az, authz_conn_t *c, uint32_t events)
{
    if (c->events == events) {
        return 0;
    }

    if (authz_epoll(az, EPOLL_CTL_MOD, &c->ev, events) != 0) {
        log_warn("epoll_ctl: %s", strerror(errno));
        return -1;
    }

    c->events = events;

    return 0;
}


static void
authz_conn_close(authz_t *az, authz_conn_t *c)
{
    (void) epoll_ctl(az->epfd, EPOLL_CTL_DEL, c->ev.fd, NULL);
    close(c->ev.fd);
    c->ev.fd = -1;
    az->free_conns[az->nfree++] = (unsigned) (c - az->conns);
}


/*
 * Parse one request head at the start of [p, p + len).  Returns its
 * length (through the empty line) with *h filled, 0 when the head is not
 * complete yet, or -1 when it is malformed.  Lines end with CRLF; a bare
 * CR or LF, a NUL, a folded line, or a request with a body is malformed.
 */
static ssize_t
authz_parse(const char *p, size_t len, authz_http_t *h)
{
    const char  *end, *line, *eol;

    end = memmem(p, len, "\r\n\r\n", 4);
    if (end == NULL) {
        return 0;
    }

    end += 2;       /* the last header line's CRLF; then the empty line */

    memset(h, 0, sizeof(*h));

    line = p;
    eol = memmem(line, (size_t) (end - line), "\r\n", 2);

    if (eol == NULL || authz_parse_request_line(line, eol, h) != 0) {
        return -1;
    }

    for (line = eol + 2; line < end; line = eol + 2) {
        eol = memmem(line, (size_t) (end - line), "\r\n", 2);
        if (eol == NULL || authz_parse_header(line, eol, h) != 0) {
            return -1;
        }
    }

    return (end + 2) - p;
}


/* "METHOD SP target SP HTTP/1.x"; only the version is kept. */
static int
authz_parse_request_line(const char *p, const char *end, authz_http_t *h)
{
    const char  *q;

    for (q = p; q < end && authz_is_tchar((unsigned char) *q); q++) {
        /* the method: a token */
    }

    if (q == p || q == end || *q != ' ') {
        return -1;
    }

    for (p = ++q; q < end && (unsigned char) *q > 0x20 && *q != 0x7f; q++) {
        /* the target: visible ASCII */
    }

    if (q == p || q == end || *q != ' ') {
        return -1;
    }

    q++;

    if (end - q != 8 || memcmp(q, "HTTP/1.", 7) != 0) {
        return -1;
    }

    if (q[7] == '1') {
        h->keepalive = 1;

    } else if (q[7] != '0') {
        return -1;
    }

    return 0;
}


/* "name: value"; the headers the decision needs are kept. */
static int
authz_parse_header(const char *p, const char *end, authz_http_t *h)
{
    const char  *q, *v, *ve;
    size_t       n, vn;

    for (q = p; q < end && authz_is_tchar((unsigned char) *q); q++) {
        /* the name: a token (no space before the colon) */
    }

    if (q == p || q == end || *q != ':') {
        return -1;
    }

    n = (size_t) (q - p);

    for (v = q + 1; v < end && (*v == ' ' || *v == '\t'); v++) {
        /* leading OWS */
    }

    for (ve = end; ve > v && (ve[-1] == ' ' || ve[-1] == '\t'); ve--) {
        /* trailing OWS */
    }

    for (q = v; q < ve; q++) {
        if ((unsigned char) *q < 0x20 && *q != '\t') {
            return -1;      /* CR, LF, NUL and other controls */
        }
        if (*q == 0x7f) {
            return -1;
        }
    }

    vn = (size_t) (ve - v);

#define AUTHZ_IS(name)                                                        \
    (n == sizeof(name) - 1 && strncasecmp(p, name, n) == 0)

    if (AUTHZ_IS("X-Original-Method")) {
        return authz_header_set(h, AUTHZ_H_METHOD, &h->method, v, vn);
    }

    if (AUTHZ_IS("X-Original-URI")) {
        return authz_header_set(h, AUTHZ_H_URI, &h->uri, v, vn);
    }

    if (AUTHZ_IS("Host")) {
        return authz_header_set(h, AUTHZ_H_HOST, &h->host, v, vn);
    }

    if (AUTHZ_IS("X-ZT-Client-Addr")) {
        return authz_header_set(h, AUTHZ_H_ADDR, &h->client_addr, v, vn);
    }

    if (AUTHZ_IS("X-ZT-Device-Fp")) {
        return authz_header_set(h, AUTHZ_H_FP, &h->device_fp, v, vn);
    }

    if (AUTHZ_IS("X-ZT-Scheme")) {
        return authz_header_set(h, AUTHZ_H_SCHEME, &h->scheme, v, vn);
    }

    if (AUTHZ_IS("User-Agent")) {
        return authz_header_set(h, AUTHZ_H_UA, &h->user_agent, v, vn);
    }

    if (AUTHZ_IS("Cookie")) {
        if (h->ncookies < AUTHZ_COOKIES) {
            h->cookies[h->ncookies].data = v;
            h->cookies[h->ncookies].len = vn;
            h->ncookies++;
        }
        return 0;
    }

    if (AUTHZ_IS("Connection")) {
        if (authz_has_token(v, vn, "close")) {
            h->keepalive = 0;
        }
        return 0;
    }

    if (AUTHZ_IS("Content-Length")) {
        /* no body is taken: only a single "0" */
        if (h->seen & AUTHZ_H_LENGTH) {
            return -1;
        }
        h->seen |= AUTHZ_H_LENGTH;
        return (vn == 1 && v[0] == '0') ? 0 : -1;
    }

    if (AUTHZ_IS("Transfer-Encoding")) {
        return -1;
    }

#undef AUTHZ_IS

    return 0;
}


/* A header the decision depends on may appear once, and not empty. */
static int
authz_header_set(authz_http_t *h, unsigned bit, wire_str_t *dst,
    const char *v, size_t n)
{
    if ((h->seen & bit) || n == 0) {
        return -1;
    }

    h->seen |= bit;
    dst->data = v;
    dst->len = n;

    return 0;
}


static int
authz_is_tchar(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
        || (c >= '0' && c <= '9'))
    {
        return 1;
    }

    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}


/* 1 if the comma-separated list v holds token (case-insensitive). */
static int
authz_has_token(const char *v, size_t n, const char *token)
{
    size_t  i, j, tl;

    tl = strlen(token);

    for (i = 0; i < n; i = j + 1) {
        while (i < n && (v[i] == ' ' || v[i] == '\t')) {
            i++;
        }

        for (j = i; j < n && v[j] != ','; j++) {
            /* one element */
        }

        if (j - i >= tl && strncasecmp(v + i, token, tl) == 0) {
            size_t  k;

            for (k = i + tl; k < j && (v[k] == ' ' || v[k] == '\t'); k++) {
                /* trailing OWS */
            }

            if (k == j) {
                return 1;
            }
        }
    }

    return 0;
}


static int
authz_hex(unsigned char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }

    c |= 0x20;

    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }

    return -1;
}


/*
 * The path as nginx's $uri has it: percent-decoded, duplicate slashes
 * merged, "." and ".." segments resolved.  A %00, a bad escape or ".."
 * above the root is refused (nginx answers 400 to those).  Returns 0 with
 * out[0..*len) filled, or -1.
 */
static int
authz_normalize(const char *p, size_t n, char *out, size_t size,
    size_t *len)
{
    size_t   i, o, seg;
    int      hi, lo;
    char     c;

    if (n == 0 || p[0] != '/') {
        return -1;
    }

    o = 0;

    for (i = 0; i < n; i++) {
        c = p[i];

        if (c == '%') {
            if (i + 2 >= n) {
                return -1;
            }

            hi = authz_hex((unsigned char) p[i + 1]);
            lo = authz_hex((unsigned char) p[i + 2]);
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
                return -1;
            }

            c = (char) (hi << 4 | lo);
            i += 2;
        }

        if (o == size) {
            return -1;
        }

        if (c == '/' && o > 0 && out[o - 1] == '/') {
            continue;       /* merge slashes */
        }

        out[o++] = c;

        if (c != '/') {
            continue;
        }

        /* a segment just ended at out[o - 1]: resolve "." and ".." */
        for (seg = o - 1; seg > 0 && out[seg - 1] != '/'; seg--) {
            /* seg: start of the last segment */
        }

        if (o - 1 - seg == 1 && out[seg] == '.') {
            o = seg;

        } else if (o - 1 - seg == 2 && out[seg] == '.' && out[seg + 1] == '.')
        {
            if (seg < 2) {
                return -1;  /* above the root */
            }
            for (o = seg - 1; o > 0 && out[o - 1] != '/'; o--) {
                /* drop the previous segment */
            }
        }
    }

    /* a final "." or ".." without a slash after it */
    for (seg = o; seg > 0 && out[seg - 1] != '/'; seg--) {
        /* start of the last segment */
    }

    if (o - seg == 1 && out[seg] == '.') {
        o = seg;

    } else if (o - seg == 2 && out[seg] == '.' && out[seg + 1] == '.') {
        if (seg < 2) {
            return -1;
        }
        for (o = seg - 1; o > 0 && out[o - 1] != '/'; o--) {
            /* drop the previous segment */
        }
    }

    *len = o;

    return 0;
}


/* The session token: the first cookie named az->cookie. */
static void
authz_token(const authz_t *az, const authz_http_t *h, wire_req_t *req)
{
    const char  *p, *end, *e, *v;
    unsigned     i;

    for (i = 0; i < h->ncookies; i++) {
        p = h->cookies[i].data;
        end = p + h->cookies[i].len;

        while (p < end) {
            while (p < end && (*p == ' ' || *p == '\t' || *p == ';')) {
                p++;
            }

            for (e = p; e < end && *e != ';'; e++) {
                /* one "name=value" */
            }

            v = memchr(p, '=', (size_t) (e - p));

            if (v != NULL && (size_t) (v - p) == az->cookie_len
                && memcmp(p, az->cookie, az->cookie_len) == 0)
            {
                v++;
                while (e > v && (e[-1] == ' ' || e[-1] == '\t')) {
                    e--;
                }
                req->token.data = v;
                req->token.len = (size_t) (e - v);
                return;
            }

            p = e;
        }
    }
}


/*
 * The decision request from the head, as the module would have sent it.
 * Returns 0, or -1 when a required header is missing or invalid.
 */
static int
authz_request(authz_t *az, const authz_http_t *h, wire_req_t *req)
{
    const char  *q;
    size_t       plen, i;
    int          hi, lo;

    if ((h->seen & (AUTHZ_H_METHOD | AUTHZ_H_URI | AUTHZ_H_HOST
                    | AUTHZ_H_ADDR))
        != (AUTHZ_H_METHOD | AUTHZ_H_URI | AUTHZ_H_HOST | AUTHZ_H_ADDR))
    {
        return -1;
    }

    memset(req, 0, sizeof(*req));

    req->method = h->method;
    req->host = h->host;
    req->client_addr = h->client_addr;
    req->user_agent = h->user_agent;

    if (h->seen & AUTHZ_H_SCHEME) {
        req->scheme = h->scheme;

    } else {
        req->scheme.data = "https";
        req->scheme.len = 5;
    }

    q = memchr(h->uri.data, '?', h->uri.len);
    plen = q ? (size_t) (q - h->uri.data) : h->uri.len;

    if (authz_normalize(h->uri.data, plen, az->path_buf,
                        sizeof(az->path_buf), &req->path.len)
        != 0)
    {
        return -1;
    }

    req->path.data = az->path_buf;

    if (q != NULL) {
        req->query.data = q + 1;
        req->query.len = h->uri.len - plen - 1;
    }

    if (h->seen & AUTHZ_H_FP) {
        /* nginx sets it only for a certificate it verified */
        if (h->device_fp.len != 2 * WIRE_FP_LEN) {
            return -1;
        }

        for (i = 0; i < WIRE_FP_LEN; i++) {
            hi = authz_hex((unsigned char) h->device_fp.data[2 * i]);
            lo = authz_hex((unsigned char) h->device_fp.data[2 * i + 1]);
            if (hi < 0 || lo < 0) {
                return -1;
            }
            req->cert_fp[i] = (uint8_t) (hi << 4 | lo);
        }

        req->has_cert_fp = 1;
        req->cert_verify = WIRE_CERT_SUCCESS;

    } else {
        req->cert_verify = WIRE_CERT_NONE;
    }

    authz_token(az, h, req);

    return 0;
}


/* 1 if a decision string can go into a header line as it is. */
static int
authz_header_safe(const wire_str_t *s)
{
    size_t  i;

    for (i = 0; i < s->len; i++) {
        if ((unsigned char) s->data[i] < 0x20 || s->data[i] == 0x7f) {
            return 0;
        }
    }

    return 1;
}


/*
 * Decide and append the answer.  The caller made sure AUTHZ_RESP_MAX
 * bytes are free in c->out.
 */
static void
authz_answer(authz_t *az, authz_conn_t *c, const wire_req_t *req,
    int keepalive)
{
    wire_resp_t   resp;
    const char   *status;
    char         *p, *end;
    int64_t       t0, dt;
    uint64_t      b;
    unsigned      i;
    size_t        need;
    int           n;

    t0 = authz_now_ns();
    (void) decide(az->store, &az->dconf, req, &resp, &az->dctx);
    dt = authz_now_ns() - t0;

    b = dt > 0 ? (uint64_t) dt / AUTHZ_HIST_STEP_NS : 0;
    az->hist[b < AUTHZ_HIST_BUCKETS ? b : AUTHZ_HIST_BUCKETS]++;
    az->hist_n++;

    switch (resp.decision) {
    case WIRE_ALLOW:
        status = "200 OK";
        az->stats.allow++;
        break;
    case WIRE_LOGIN:
    case WIRE_STEP_UP:
        status = "401 Unauthorized";
        az->stats.login++;
        break;
    default:
        if (resp.status >= 500) {
            status = "503 Service Unavailable";
            az->stats.error++;
        } else {
            status = "403 Forbidden";
            az->stats.deny++;
        }
        break;
    }

    p = c->out + c->out_len;
    end = p + AUTHZ_RESP_MAX;

    n = snprintf(p, (size_t) (end - p), "HTTP/1.1 %s\r\n", status);
    p += n;

    /* the decision's headers, for auth_request_set; whatever fits */
    for (i = 0; resp.decision == WIRE_ALLOW && i < resp.nheaders; i++) {
        need = resp.headers[i].name.len + 2 + resp.headers[i].value.len + 2;

        if (need > (size_t) (end - p) - 64
            || !authz_header_safe(&resp.headers[i].name)
            || !authz_header_safe(&resp.headers[i].value))
        {
            continue;
        }

        memcpy(p, resp.headers[i].name.data, resp.headers[i].name.len);
        p += resp.headers[i].name.len;
        *p++ = ':';
        *p++ = ' ';
        memcpy(p, resp.headers[i].value.data, resp.headers[i].value.len);
        p += resp.headers[i].value.len;
        *p++ = '\r';
        *p++ = '\n';
    }

    n = snprintf(p, (size_t) (end - p), "Content-Length: 0\r\n%s\r\n",
                 keepalive ? "" : "Connection: close\r\n");
    p += n;

    c->out_len = (size_t) (p - c->out);

    if (!keepalive) {
        c->closing = 1;
    }
}


static void
authz_answer_bad(authz_t *az, authz_conn_t *c)
{
    static const char  bad[] = "HTTP/1.1 400 Bad Request\r\n"
                               "Content-Length: 0\r\n"
                               "Connection: close\r\n\r\n";

    az->stats.bad++;

    memcpy(c->out + c->out_len, bad, sizeof(bad) - 1);
    c->out_len += sizeof(bad) - 1;
    c->closing = 1;
}
