/*
 * The sign-in portal daemon: libmicrohttpd on a Unix socket, routing and
 * the login, step-up, logout and JWKS handlers.  See portal.h.
 *
 * Threads: libmicrohttpd runs PORTAL_THREADS worker threads (epoll, one
 * listening socket shared), so one slow password hash does not stall
 * every browser.  Handlers share only what struct portal_s holds: the
 * configuration snapshot and the per-source limiter, both under p->lock,
 * and the store and keys, which are safe to use from several threads
 * (each store call is its own LMDB transaction; the keys are read-only).
 * No token cache and no long-lived store view are used here (a posture
 * report takes a view for one lookup and frees it).
 *
 * Trust: only nginx may connect (SO_PEERCRED against peer uids), which is
 * what makes its X-ZT-Client-Addr and X-ZT-Device-Fp headers believable.
 */

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <microhttpd.h>
#include <openssl/evp.h>

#include "policy/policy.h"
#include "log.h"
#include "mhd_util.h"
#include "metrics.h"
#include "portal.h"
#include "sock.h"
#include "id_webauthn.h"


#define PORTAL_THREADS          4
#define PORTAL_CONN_LIMIT       256
#define PORTAL_CONN_TIMEOUT     30          /* seconds */
#define PORTAL_CONN_MEMORY      (64 * 1024)
#define PORTAL_SOCKET_MODE      0660
#define PORTAL_PAGE_SIZE        16384
#define PORTAL_JWKS_SIZE        8192
#define PORTAL_DRAIN_MAX        (1024 * 1024)   /* read and dropped */
#define PORTAL_CSRF_BYTES       32
#define PORTAL_CSRF_LEN         (2 * PORTAL_CSRF_BYTES)
#define PORTAL_FP_HEX_LEN       (2 * ID_FP_LEN)
#define PORTAL_PASSWORD_MAX     1024
#define PORTAL_CODE_MAX         16
#define PORTAL_COOKIE_MAX       (ID_TOKEN_MAX + 160)
#define PORTAL_MSG_MAX          256
#define PORTAL_TOTP_PERIOD      30
#define PORTAL_WA_SLOTS         1024        /* outstanding challenges */
#define PORTAL_WA_CHALLENGE_TTL 300         /* seconds */

#define PORTAL_SESSION_COOKIE   "__Host-zt_session"
#define PORTAL_CSRF_COOKIE      "__Host-zt_csrf"

#define PORTAL_CSP  "default-src 'none'; style-src 'unsafe-inline'; " \
                    "form-action 'self'; frame-ancestors 'none'; "     \
                    "base-uri 'none'"

/* What the handlers need from config_t, copied under p->lock. */
typedef struct {
    char        hosts[CONFIG_MAX_HOSTS][256];
    size_t      nhosts;
    uid_t       peers[CONFIG_MAX_PEERS];
    size_t      npeers;
    int64_t     lifetime;                   /* seconds */
    int64_t     idle;                       /* seconds; 0: none */
    unsigned    totp_window;
    unsigned    threshold;
    int64_t     lock_seconds;
    unsigned    source_limit;
    char        wa_rp_id[256];              /* "": no WebAuthn */
    char        wa_origins[CONFIG_MAX_WA_ORIGINS][256];
    size_t      wa_norigins;
    int         wa_uv;
} portal_conf_t;

struct portal_s {
    struct MHD_Daemon  *daemon;
    char                path[CONFIG_LISTEN_MAX];
    dev_t               sock_dev;
    ino_t               sock_ino;
    store_t            *st;
    const id_keys_t    *keys;
    pthread_mutex_t     lock;               /* conf and rate */
    portal_conf_t       conf;
    portal_rate_t       rate;
    char                dummy_hash[ID_PWHASH_MAX];
    id_wa_challenges_t *wa;                 /* WebAuthn challenges */
};

/* One request, from its headers to its completion. */
typedef struct {
    portal_t       *p;
    portal_conf_t   conf;
    int64_t         now;
    portal_lang_t   lang;
    int             too_large;
    size_t          len;
    char            body[PORTAL_FORM_MAX + 1];
    char            source[PORTAL_SOURCE_MAX];
    uint8_t         fp[ID_FP_LEN];
    int             has_fp;
    char            csrf[PORTAL_CSRF_LEN + 1];
    int             csrf_new;               /* set its cookie */
    char            next[PORTAL_NEXT_MAX + 1];
    char            cookie[PORTAL_COOKIE_MAX];  /* extra Set-Cookie */
    char            msg[PORTAL_MSG_MAX];
} portal_req_t;

/* A lookup over several headers or arguments of one kind. */
typedef struct {
    const char     *name;
    char           *out;
    size_t          size;
    unsigned        count;
    int             rc;
} portal_lookup_t;


static void portal_seterr(char *err, size_t errsize, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void portal_conf_copy(portal_conf_t *pc, const config_t *cfg);
static enum MHD_Result portal_access(void *cls, struct MHD_Connection *c,
    const char *url, const char *method, const char *version,
    const char *upload_data, size_t *upload_data_size, void **con_cls);
static void portal_completed(void *cls, struct MHD_Connection *c,
    void **con_cls, enum MHD_RequestTerminationCode toe);
static int portal_peer_ok(portal_t *p, struct MHD_Connection *c);
static enum MHD_Result portal_refuse(struct MHD_Connection *c);
static portal_req_t *portal_req_new(portal_t *p, struct MHD_Connection *c);
static enum MHD_Result portal_dispatch(portal_req_t *rq,
    struct MHD_Connection *c, const char *url, const char *method);
static enum MHD_Result portal_login_get(portal_req_t *rq,
    struct MHD_Connection *c);
static enum MHD_Result portal_login_post(portal_req_t *rq,
    struct MHD_Connection *c);
static enum MHD_Result portal_login_fail(portal_req_t *rq,
    struct MHD_Connection *c, const store_user_t *u, const char *user,
    const char *why);
static enum MHD_Result portal_wa_dispatch(portal_req_t *rq,
    struct MHD_Connection *c, const char *url, int get, int post);
static int portal_form_type_ok(struct MHD_Connection *c);
static enum MHD_Result portal_login_ok(portal_req_t *rq,
    struct MHD_Connection *c, const store_user_t *u, unsigned methods);
static enum MHD_Result portal_stepup_get(portal_req_t *rq,
    struct MHD_Connection *c);
static enum MHD_Result portal_stepup_post(portal_req_t *rq,
    struct MHD_Connection *c);
static enum MHD_Result portal_logout_get(portal_req_t *rq,
    struct MHD_Connection *c);
static enum MHD_Result portal_logout_post(portal_req_t *rq,
    struct MHD_Connection *c);
static enum MHD_Result portal_jwks(portal_req_t *rq,
    struct MHD_Connection *c, int head);
static enum MHD_Result portal_page(portal_req_t *rq,
    struct MHD_Connection *c, unsigned status, const portal_page_t *pg);
static int portal_wa_enabled(const portal_req_t *rq);
static enum MHD_Result portal_wa_keys_page(portal_req_t *rq,
    struct MHD_Connection *c);
static enum MHD_Result portal_wa_keys_remove(portal_req_t *rq,
    struct MHD_Connection *c);
static int portal_wa_keys_cb(const store_webauthn_t *cr, void *arg);
static enum MHD_Result portal_form_page(portal_req_t *rq,
    struct MHD_Connection *c, unsigned status, portal_page_kind_t kind,
    const char *user, const char *error);
static enum MHD_Result portal_message(portal_req_t *rq,
    struct MHD_Connection *c, unsigned status, portal_str_t title,
    portal_str_t text, int link_login);
static enum MHD_Result portal_redirect(portal_req_t *rq,
    struct MHD_Connection *c, const char *location);
static enum MHD_Result portal_to_login(portal_req_t *rq,
    struct MHD_Connection *c);
static void portal_headers(struct MHD_Response *resp, portal_lang_t lang,
    const char *cache);
static int portal_add_cookie(portal_req_t *rq, struct MHD_Response *resp);
static enum MHD_Result portal_cookie_iter(void *cls,
    enum MHD_ValueKind kind, const char *key, size_t key_size,
    const char *value, size_t value_size);
static int portal_cookie(struct MHD_Connection *c, const char *name,
    char *out, size_t size);
static enum MHD_Result portal_arg_iter(void *cls, enum MHD_ValueKind kind,
    const char *key, size_t key_size, const char *value,
    size_t value_size);
static void portal_next_from_query(portal_req_t *rq,
    struct MHD_Connection *c);
static void portal_next_from_form(portal_req_t *rq);
static void portal_csrf_prepare(portal_req_t *rq, struct MHD_Connection *c);
static int portal_csrf_check(portal_req_t *rq, struct MHD_Connection *c);
static int portal_rate_ok(portal_req_t *rq);
static int portal_session(portal_req_t *rq, struct MHD_Connection *c,
    id_claims_t *cl, store_session_t *s);
static int portal_user_name(const char *in, char *out, size_t size);
static int portal_code_ok(const char *code, unsigned digits);
static int portal_totp_check(portal_req_t *rq, const store_user_t *u,
    const char *code, uint64_t *counter);
static const char *portal_lock_message(portal_req_t *rq,
    const store_user_t *u);
static int portal_record_failure(portal_req_t *rq, const store_user_t *u,
    const char *why, store_err_t *se);
static void portal_clean_source(const char *in, char *out, size_t size);
static enum MHD_Result portal_json_error(struct MHD_Connection *c,
    unsigned status, const char *msg);
static enum MHD_Result portal_posture_post(portal_req_t *rq,
    struct MHD_Connection *c);


static void
portal_seterr(char *err, size_t errsize, const char *fmt, ...)
{
    va_list  ap;

    if (err == NULL || errsize == 0) {
        return;
    }

    va_start(ap, fmt);
    vsnprintf(err, errsize, fmt, ap);
    va_end(ap);
}


static void
portal_conf_copy(portal_conf_t *pc, const config_t *cfg)
{
    size_t  i;

    memset(pc, 0, sizeof(*pc));

    for (i = 0; i < cfg->nportal_hosts && i < CONFIG_MAX_HOSTS; i++) {
        memcpy(pc->hosts[i], cfg->portal_hosts[i], sizeof(pc->hosts[i]));
        pc->hosts[i][sizeof(pc->hosts[i]) - 1] = '\0';
    }
    pc->nhosts = i;

    for (i = 0; i < cfg->npeers && i < CONFIG_MAX_PEERS; i++) {
        pc->peers[i] = cfg->peer_uids[i];
    }
    pc->npeers = i;

    pc->lifetime = cfg->session_lifetime_ms / 1000;
    pc->idle = cfg->session_idle_ms / 1000;
    pc->totp_window = cfg->totp_window;
    pc->threshold = cfg->lockout_threshold;
    pc->lock_seconds = cfg->lockout_time_ms / 1000;
    pc->source_limit = cfg->source_limit;

    memcpy(pc->wa_rp_id, cfg->webauthn_rp_id, sizeof(pc->wa_rp_id));
    pc->wa_rp_id[sizeof(pc->wa_rp_id) - 1] = '\0';

    for (i = 0; i < cfg->nwebauthn_origins && i < CONFIG_MAX_WA_ORIGINS;
         i++)
    {
        memcpy(pc->wa_origins[i], cfg->webauthn_origins[i],
               sizeof(pc->wa_origins[i]));
        pc->wa_origins[i][sizeof(pc->wa_origins[i]) - 1] = '\0';
    }
    pc->wa_norigins = i;
    pc->wa_uv = cfg->webauthn_uv;
}



int
portal_start(portal_t **out, const config_t *cfg, store_t *st,
    const id_keys_t *keys, char *err, size_t errsize)
{
    portal_t   *p;
    id_err_t    ie;
    uint8_t     rnd[24];
    char        dummy[2 * sizeof(rnd) + 1];
    size_t      i;
    int         fd;

    *out = NULL;
    fd = -1;

    p = calloc(1, sizeof(*p));
    if (p == NULL) {
        portal_seterr(err, errsize, "out of memory");
        return -1;
    }

    if (pthread_mutex_init(&p->lock, NULL) != 0) {
        free(p);
        portal_seterr(err, errsize, "pthread_mutex_init failed");
        return -1;
    }

    p->st = st;
    p->keys = keys;
    portal_conf_copy(&p->conf, cfg);
    portal_rate_init(&p->rate);

    if (id_wa_challenges_create(PORTAL_WA_SLOTS, &p->wa, &ie) != 0) {
        pthread_mutex_destroy(&p->lock);
        free(p);
        portal_seterr(err, errsize, "%s", ie.msg);
        return -1;
    }

    memcpy(p->path, cfg->portal_listen, sizeof(p->path));
    p->path[sizeof(p->path) - 1] = '\0';

    /*
     * A hash of a random password nobody knows: unknown users are checked
     * against it so that they take as long as known ones.
     */
    if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t) sizeof(rnd)) {
        portal_seterr(err, errsize, "getrandom: %s", strerror(errno));
        goto failed;
    }

    for (i = 0; i < sizeof(rnd); i++) {
        snprintf(dummy + 2 * i, 3, "%02x", rnd[i]);
    }

    if (id_password_hash(dummy, p->dummy_hash, sizeof(p->dummy_hash), &ie)
        != 0)
    {
        portal_seterr(err, errsize, "portal: %s", ie.msg);
        goto failed;
    }

    explicit_bzero(dummy, sizeof(dummy));

    /* like the decision socket; umask is process-wide: main thread only */
    if (sock_listen(p->path, PORTAL_SOCKET_MODE, &fd, &p->sock_dev,
                    &p->sock_ino, err, errsize)
        != 0)
    {
        goto failed;
    }

    p->daemon = zt_mhd_start(fd, &(zt_mhd_conf_t) {
        .name = "portal", .access = portal_access, .cls = p,
        .completed = portal_completed, .threads = PORTAL_THREADS,
        .conn_limit = PORTAL_CONN_LIMIT, .conn_timeout = PORTAL_CONN_TIMEOUT,
        .conn_memory = PORTAL_CONN_MEMORY });

    if (p->daemon == NULL) {
        portal_seterr(err, errsize, "portal: cannot start libmicrohttpd "
                      "on %s", p->path);
        close(fd);
        unlink(p->path);
        goto failed;
    }

    *out = p;

    return 0;

failed:

    explicit_bzero(dummy, sizeof(dummy));
    pthread_mutex_destroy(&p->lock);
    free(p);

    return -1;
}


void
portal_reconfigure(portal_t *p, const config_t *cfg)
{
    portal_conf_t  *pc;

    if (p == NULL) {
        return;
    }

    pc = malloc(sizeof(*pc));
    if (pc == NULL) {
        log_warn("portal: out of memory; keeping the old configuration");
        return;
    }

    portal_conf_copy(pc, cfg);

    pthread_mutex_lock(&p->lock);
    p->conf = *pc;
    pthread_mutex_unlock(&p->lock);

    free(pc);

    if (strcmp(cfg->portal_listen, p->path) != 0) {
        log_warn("portal: portal_listen changes take effect at restart");
    }
}


void
portal_stop(portal_t *p)
{
    if (p == NULL) {
        return;
    }

    /* joins the workers and closes the listening socket */
    if (p->daemon != NULL) {
        MHD_stop_daemon(p->daemon);
    }

    /* only our own socket file: a newer trustd may have replaced it */
    sock_unlink(p->path, p->sock_dev, p->sock_ino);

    pthread_mutex_destroy(&p->lock);
    id_wa_challenges_free(p->wa);
    explicit_bzero(p, sizeof(*p));
    free(p);
}


/* ---- requests ------------------------------------------------------- */


static int
portal_peer_ok(portal_t *p, struct MHD_Connection *c)
{
    struct ucred  uc;
    size_t  i;
    int     ok;

    if (zt_mhd_peer(c, "portal", &uc) != 0) {
        return 0;
    }

    ok = 0;

    pthread_mutex_lock(&p->lock);
    for (i = 0; i < p->conf.npeers; i++) {
        if (p->conf.peers[i] == uc.uid) {
            ok = 1;
            break;
        }
    }
    pthread_mutex_unlock(&p->lock);

    if (!ok) {
        log_warn("portal: refused a connection from uid %u pid %d (not a "
                 "peer)", (unsigned) uc.uid, (int) uc.pid);
    }

    return ok;
}


/* A plain 403 for a peer that is not nginx, then the connection closes. */
static enum MHD_Result
portal_refuse(struct MHD_Connection *c)
{
    static char           body[] = "forbidden\n";   /* never written */
    struct MHD_Response  *resp;
    enum MHD_Result       ret;

    resp = MHD_create_response_from_buffer(sizeof(body) - 1, body,
                                           MHD_RESPMEM_PERSISTENT);
    if (resp == NULL) {
        return MHD_NO;
    }

    MHD_add_response_header(resp, "Content-Type", "text/plain");
    MHD_add_response_header(resp, "Connection", "close");

    ret = MHD_queue_response(c, MHD_HTTP_FORBIDDEN, resp);
    MHD_destroy_response(resp);

    return ret;
}


static void
portal_clean_source(const char *in, char *out, size_t size)
{
    size_t  i;

    if (in == NULL || in[0] == '\0') {
        snprintf(out, size, "unknown");
        return;
    }

    for (i = 0; in[i] != '\0' && i + 1 < size; i++) {
        if (!((in[i] >= '0' && in[i] <= '9') || (in[i] >= 'a' && in[i] <= 'f')
              || (in[i] >= 'A' && in[i] <= 'F') || in[i] == '.'
              || in[i] == ':'))
        {
            snprintf(out, size, "invalid");
            return;
        }

        out[i] = in[i];
    }

    out[i] = '\0';
}


static portal_req_t *
portal_req_new(portal_t *p, struct MHD_Connection *c)
{
    portal_req_t  *rq;
    const char    *v;

    rq = calloc(1, sizeof(*rq));
    if (rq == NULL) {
        return NULL;
    }

    rq->p = p;
    rq->now = (int64_t) time(NULL);

    pthread_mutex_lock(&p->lock);
    rq->conf = p->conf;
    pthread_mutex_unlock(&p->lock);

    rq->lang = portal_lang_pick(MHD_lookup_connection_value(c,
                                    MHD_HEADER_KIND, "Accept-Language"));

    portal_clean_source(MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                    "X-ZT-Client-Addr"),
                        rq->source, sizeof(rq->source));

    v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-ZT-Device-Fp");
    if (v != NULL && portal_is_hex(v, PORTAL_FP_HEX_LEN)
        && portal_hex_decode(v, rq->fp, ID_FP_LEN) == 0)
    {
        rq->has_fp = 1;
    }

    memcpy(rq->next, "/", 2);

    return rq;
}


static enum MHD_Result
portal_access(void *cls, struct MHD_Connection *c, const char *url,
    const char *method, const char *version, const char *upload_data,
    size_t *upload_data_size, void **con_cls)
{
    portal_t      *p = cls;
    portal_req_t  *rq;
    const char    *cl;
    char          *end;
    unsigned long  n;

    (void) version;

    rq = *con_cls;

    if (rq == NULL) {
        if (!portal_peer_ok(p, c)) {
            return portal_refuse(c);
        }

        rq = portal_req_new(p, c);
        if (rq == NULL) {
            log_warn("portal: out of memory");
            return MHD_NO;
        }

        *con_cls = rq;

        /*
         * A body over the limit is read and dropped, then refused: nginx
         * (which bounds it with client_max_body_size) gets a clean
         * answer instead of a connection closed while it sends.  Only an
         * absurd length is refused at once.
         */
        cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                         "Content-Length");
        if (cl != NULL) {
            errno = 0;
            n = strtoul(cl, &end, 10);
            if (errno != 0 || *end != '\0' || n > PORTAL_FORM_MAX) {
                rq->too_large = 1;
            }
            if (errno != 0 || *end != '\0' || n > PORTAL_DRAIN_MAX) {
                if (strcmp(url, "/zt/posture") == 0) {
                    return portal_json_error(c, MHD_HTTP_CONTENT_TOO_LARGE,
                                             "report too large");
                }
                return portal_message(rq, c, MHD_HTTP_CONTENT_TOO_LARGE,
                                      PORTAL_S_TITLE_ERROR,
                                      PORTAL_S_ERR_TOO_LARGE, 0);
            }
        }

        return MHD_YES;
    }

    if (*upload_data_size > 0) {
        if (!rq->too_large && *upload_data_size <= PORTAL_FORM_MAX - rq->len) {
            memcpy(rq->body + rq->len, upload_data, *upload_data_size);
            rq->len += *upload_data_size;

        } else {
            rq->too_large = 1;
        }

        *upload_data_size = 0;

        return MHD_YES;
    }

    if (rq->too_large) {
        if (strcmp(url, "/zt/posture") == 0) {
            return portal_json_error(c, MHD_HTTP_CONTENT_TOO_LARGE,
                                     "report too large");
        }
        return portal_message(rq, c, MHD_HTTP_CONTENT_TOO_LARGE,
                              PORTAL_S_TITLE_ERROR,
                              PORTAL_S_ERR_TOO_LARGE, 0);
    }

    rq->body[rq->len] = '\0';

    return portal_dispatch(rq, c, url, method);
}


static void
portal_completed(void *cls, struct MHD_Connection *c, void **con_cls,
    enum MHD_RequestTerminationCode toe)
{
    portal_req_t  *rq;

    (void) cls;
    (void) c;
    (void) toe;

    rq = *con_cls;
    if (rq == NULL) {
        return;
    }

    /* the body held a password */
    explicit_bzero(rq, sizeof(*rq));
    free(rq);
    *con_cls = NULL;
}


static enum MHD_Result
portal_dispatch(portal_req_t *rq, struct MHD_Connection *c, const char *url,
    const char *method)
{
    int          get, head, post;
    const char  *ct;
    size_t       n;

    head = strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
    get = head || strcmp(method, MHD_HTTP_METHOD_GET) == 0;
    post = strcmp(method, MHD_HTTP_METHOD_POST) == 0;

    if (strcmp(url, "/zt/jwks.json") == 0) {
        if (get) {
            return portal_jwks(rq, c, head);
        }
        goto method;
    }

    if (strcmp(url, "/zt/posture") == 0) {
        if (post) {
            return portal_posture_post(rq, c);
        }
        goto method;
    }

    if (strncmp(url, "/zt/webauthn", sizeof("/zt/webauthn") - 1) == 0) {
        if (post && !portal_form_type_ok(c)) {
            return portal_message(rq, c, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE,
                                  PORTAL_S_TITLE_ERROR,
                                  PORTAL_S_ERR_BAD_REQUEST, 1);
        }
        return portal_wa_dispatch(rq, c, url, get, post);
    }

    if (strcmp(url, "/zt/login") != 0 && strcmp(url, "/zt/step-up") != 0
        && strcmp(url, "/zt/logout") != 0)
    {
        return portal_message(rq, c, MHD_HTTP_NOT_FOUND,
                              PORTAL_S_TITLE_ERROR,
                              PORTAL_S_ERR_NOT_FOUND, 0);
    }

    if (post) {
        ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                         "Content-Type");
        n = strlen("application/x-www-form-urlencoded");

        if (ct == NULL
            || strncasecmp(ct, "application/x-www-form-urlencoded", n) != 0
            || (ct[n] != '\0' && ct[n] != ';' && ct[n] != ' '))
        {
            return portal_message(rq, c, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE,
                                  PORTAL_S_TITLE_ERROR,
                                  PORTAL_S_ERR_BAD_REQUEST, 1);
        }
    }

    if (strcmp(url, "/zt/login") == 0) {
        if (get) {
            return portal_login_get(rq, c);
        }
        if (post) {
            return portal_login_post(rq, c);
        }

    } else if (strcmp(url, "/zt/step-up") == 0) {
        if (get) {
            return portal_stepup_get(rq, c);
        }
        if (post) {
            return portal_stepup_post(rq, c);
        }

    } else {
        if (get) {
            return portal_logout_get(rq, c);
        }
        if (post) {
            return portal_logout_post(rq, c);
        }
    }

method:

    return portal_message(rq, c, MHD_HTTP_METHOD_NOT_ALLOWED,
                          PORTAL_S_TITLE_ERROR, PORTAL_S_ERR_METHOD, 0);
}


/* ---- request values ------------------------------------------------- */


static enum MHD_Result
portal_cookie_iter(void *cls, enum MHD_ValueKind kind, const char *key,
    size_t key_size, const char *value, size_t value_size)
{
    portal_lookup_t  *lk = cls;
    char              scratch[1];
    unsigned          before;
    int               rc;

    (void) kind;
    (void) key_size;

    if (strcasecmp(key, "Cookie") != 0 || value == NULL) {
        return MHD_YES;
    }

    if (strlen(value) != value_size) {
        lk->rc = PORTAL_INVALID;
        return MHD_YES;
    }

    before = lk->count;

    if (before == 0) {
        rc = portal_cookie_get(value, lk->name, lk->out, lk->size,
                               &lk->count);
        if (lk->count > 0) {
            lk->rc = rc;
        }

    } else {
        (void) portal_cookie_get(value, lk->name, scratch, sizeof(scratch),
                                 &lk->count);
    }

    return MHD_YES;
}


/* A cookie from all Cookie headers: PORTAL_FOUND, _MISSING or _INVALID. */
static int
portal_cookie(struct MHD_Connection *c, const char *name, char *out,
    size_t size)
{
    portal_lookup_t  lk;

    memset(&lk, 0, sizeof(lk));
    lk.name = name;
    lk.out = out;
    lk.size = size;
    lk.rc = PORTAL_MISSING;
    out[0] = '\0';

    MHD_get_connection_values_n(c, MHD_HEADER_KIND, portal_cookie_iter, &lk);

    if (lk.count > 1) {
        lk.rc = PORTAL_INVALID;
    }

    if (lk.rc != PORTAL_FOUND) {
        out[0] = '\0';
    }

    return lk.rc;
}


static enum MHD_Result
portal_arg_iter(void *cls, enum MHD_ValueKind kind, const char *key,
    size_t key_size, const char *value, size_t value_size)
{
    portal_lookup_t  *lk = cls;

    (void) kind;

    if (key == NULL || key_size != strlen(lk->name)
        || memcmp(key, lk->name, key_size) != 0)
    {
        return MHD_YES;
    }

    lk->count++;

    if (value == NULL || value_size >= lk->size
        || strlen(value) != value_size)
    {
        lk->rc = PORTAL_INVALID;
        return MHD_YES;
    }

    memcpy(lk->out, value, value_size + 1);
    lk->rc = PORTAL_FOUND;

    return MHD_YES;
}


/* rq->next from ?next= (decoded once by libmicrohttpd), else "/". */
static void
portal_next_from_query(portal_req_t *rq, struct MHD_Connection *c)
{
    portal_lookup_t  lk;
    char             buf[PORTAL_NEXT_MAX + 1];

    memset(&lk, 0, sizeof(lk));
    lk.name = "next";
    lk.out = buf;
    lk.size = sizeof(buf);
    lk.rc = PORTAL_MISSING;

    MHD_get_connection_values_n(c, MHD_GET_ARGUMENT_KIND, portal_arg_iter,
                                &lk);

    if (lk.count == 1 && lk.rc == PORTAL_FOUND
        && portal_next_ok(buf, strlen(buf), rq->conf.hosts, rq->conf.nhosts))
    {
        memcpy(rq->next, buf, strlen(buf) + 1);

    } else {
        memcpy(rq->next, "/", 2);
    }
}


static void
portal_next_from_form(portal_req_t *rq)
{
    char  buf[PORTAL_NEXT_MAX + 1];

    if (portal_form_get(rq->body, rq->len, "next", buf, sizeof(buf))
        == PORTAL_FOUND
        && portal_next_ok(buf, strlen(buf), rq->conf.hosts, rq->conf.nhosts))
    {
        memcpy(rq->next, buf, strlen(buf) + 1);

    } else {
        memcpy(rq->next, "/", 2);
    }
}


/*
 * The CSRF token for a form being shown: the browser's existing one if
 * well-formed (several open tabs keep working), else a new one whose
 * cookie goes out with the page.
 */
static void
portal_csrf_prepare(portal_req_t *rq, struct MHD_Connection *c)
{
    uint8_t  rnd[PORTAL_CSRF_BYTES];
    size_t   i;

    if (portal_cookie(c, PORTAL_CSRF_COOKIE, rq->csrf, sizeof(rq->csrf))
        == PORTAL_FOUND
        && portal_is_hex(rq->csrf, PORTAL_CSRF_LEN))
    {
        rq->csrf_new = 0;
        return;
    }

    if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t) sizeof(rnd)) {
        /* no token: the form will fail its check, which is safe */
        log_warn("portal: getrandom: %s", strerror(errno));
        rq->csrf[0] = '\0';
        return;
    }

    for (i = 0; i < sizeof(rnd); i++) {
        snprintf(rq->csrf + 2 * i, 3, "%02x", rnd[i]);
    }

    rq->csrf_new = 1;
}


/* 1 if the form's csrf field equals the csrf cookie (double submit). */
static int
portal_csrf_check(portal_req_t *rq, struct MHD_Connection *c)
{
    char  cookie[PORTAL_CSRF_LEN + 1];
    char  field[PORTAL_CSRF_LEN + 1];

    if (portal_cookie(c, PORTAL_CSRF_COOKIE, cookie, sizeof(cookie))
        != PORTAL_FOUND
        || !portal_is_hex(cookie, PORTAL_CSRF_LEN))
    {
        return 0;
    }

    if (portal_form_get(rq->body, rq->len, "csrf", field, sizeof(field))
        != PORTAL_FOUND
        || !portal_is_hex(field, PORTAL_CSRF_LEN))
    {
        return 0;
    }

    if (!portal_ct_equal(cookie, field, PORTAL_CSRF_LEN)) {
        return 0;
    }

    memcpy(rq->csrf, cookie, sizeof(rq->csrf));

    return 1;
}


static int
portal_rate_ok(portal_req_t *rq)
{
    int  ok;

    pthread_mutex_lock(&rq->p->lock);
    ok = portal_rate_hit(&rq->p->rate, rq->source, rq->now,
                         rq->conf.source_limit);
    pthread_mutex_unlock(&rq->p->lock);

    if (!ok) {
        log_warn("portal: too many attempts from source %s", rq->source);
    }

    return ok;
}


/*
 * A user name as typed, folded to lower case; 1 if it is a well-formed
 * name ([a-z0-9._-], 1..63), else 0 and out is "".
 */
static int
portal_user_name(const char *in, char *out, size_t size)
{
    size_t  i;
    char    ch;

    for (i = 0; in[i] != '\0'; i++) {
        ch = in[i];

        if (ch >= 'A' && ch <= 'Z') {
            ch = (char) (ch - 'A' + 'a');
        }

        if (i + 1 >= size || i >= STORE_NAME_MAX - 1
            || !((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9')
                 || ch == '.' || ch == '_' || ch == '-'))
        {
            out[0] = '\0';
            return 0;
        }

        out[i] = ch;
    }

    out[i] = '\0';

    return i > 0;
}


static int
portal_code_ok(const char *code, unsigned digits)
{
    size_t  i;

    for (i = 0; code[i] != '\0'; i++) {
        if (code[i] < '0' || code[i] > '9') {
            return 0;
        }
    }

    return i == digits;
}


/*
 * Check a TOTP code for u.  Returns ID_TOTP_OK with *counter,
 * ID_TOTP_BAD, ID_TOTP_REPLAY or -1 (logged).
 */
static int
portal_totp_check(portal_req_t *rq, const store_user_t *u,
    const char *code, uint64_t *counter)
{
    id_totp_t  t;
    id_err_t   ie;
    size_t     len;
    int        rc;

    if (!portal_code_ok(code, u->totp_digits)) {
        return ID_TOTP_BAD;
    }

    memset(&t, 0, sizeof(t));

    if (id_unseal(rq->p->keys, u->totp_sealed, u->totp_sealed_len, u->name,
                  t.secret, sizeof(t.secret), &len, &ie)
        != 0)
    {
        log_error("portal: cannot unseal the TOTP secret of %s: %s",
                  u->name, ie.msg);
        return -1;
    }

    t.secret_len = len;
    t.algo = (id_totp_algo_t) u->totp_algo;
    t.digits = u->totp_digits;
    t.period = PORTAL_TOTP_PERIOD;

    rc = id_totp_verify(&t, code, rq->now, rq->conf.totp_window,
                        u->totp_last_counter, counter, &ie);

    explicit_bzero(&t, sizeof(t));

    if (rc == -1) {
        log_error("portal: TOTP check for %s: %s", u->name, ie.msg);
    }

    return rc;
}


/*
 * Record a failed attempt of the known user u (read before the attempt)
 * with store_login_failed(), and count it for the metrics, with the
 * lockout it caused: the store does not say, so the user is read again,
 * and a lock that ends exactly lock_seconds from this attempt, on a user
 * who was not locked before it, is this attempt's (two failures of one
 * user in the same second may both count it).  Returns what
 * store_login_failed() returned.
 */
static int
portal_record_failure(portal_req_t *rq, const store_user_t *u,
    const char *why, store_err_t *se)
{
    store_user_t  *after;
    store_err_t    e;
    int64_t        until;
    int            rc;

    metrics_portal_count(METRICS_LOGIN_FAILURE);

    rc = store_login_failed(rq->p->st, u->name, rq->now, rq->conf.threshold,
                            rq->conf.lock_seconds, rq->source, why, se);

    if (rc != 0 || rq->conf.threshold == 0 || rq->conf.lock_seconds <= 0
        || u->locked_until > rq->now)
    {
        return rc;
    }

    after = calloc(1, sizeof(*after));
    if (after == NULL) {
        return rc;
    }

    until = rq->now > INT64_MAX - rq->conf.lock_seconds
            ? INT64_MAX : rq->now + rq->conf.lock_seconds;

    if (store_user_find(rq->p->st, u->name, after, &e) == 0
        && after->locked_until == until)
    {
        metrics_portal_count(METRICS_LOCKOUT);
    }

    explicit_bzero(after, sizeof(*after));
    free(after);

    return rc;
}


static const char *
portal_lock_message(portal_req_t *rq, const store_user_t *u)
{
    int64_t  minutes;

    minutes = (u->locked_until - rq->now + 59) / 60;

    if (minutes <= 1) {
        return portal_str(rq->lang, PORTAL_S_ERR_LOCKED_ONE);
    }

    if (minutes > 100000) {
        minutes = 100000;
    }

    /* the format is one of ours, with a single %u */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
    snprintf(rq->msg, sizeof(rq->msg),
             portal_str(rq->lang, PORTAL_S_ERR_LOCKED_MANY),
             (unsigned) minutes);
#pragma GCC diagnostic pop

    return rq->msg;
}


/*
 * The browser's session: 0 with the claims and record if its cookie
 * holds a valid token for a live session (not revoked, not expired, not
 * idle, on the device it is bound to), 1 if not, -1 on a store error.
 */
static int
portal_session(portal_req_t *rq, struct MHD_Connection *c, id_claims_t *cl,
    store_session_t *s)
{
    char         *token;
    id_err_t      ie;
    store_err_t   se;
    int           rc;

    token = malloc(ID_TOKEN_MAX + 1);
    if (token == NULL) {
        return -1;
    }

    rc = portal_cookie(c, PORTAL_SESSION_COOKIE, token, ID_TOKEN_MAX + 1);
    if (rc != PORTAL_FOUND) {
        free(token);
        return 1;
    }

    rc = id_token_verify(rq->p->keys, token, strlen(token), rq->now, cl,
                         &ie);
    free(token);

    if (rc != ID_TOKEN_OK) {
        if (rc == ID_TOKEN_INVALID) {
            log_debug("portal: session token refused: %s", ie.msg);
        } else {
            log_warn("portal: session token check failed: %s", ie.msg);
        }
        return 1;
    }

    rc = store_session_find(rq->p->st, cl->sid, s, &se);
    if (rc == STORE_NOTFOUND) {
        return 1;
    }

    if (rc != 0) {
        log_error("portal: session lookup: %s", se.msg);
        return -1;
    }

    if (strcmp(s->user, cl->user) != 0 || s->revoked
        || s->expires_at <= rq->now
        || (rq->conf.idle > 0 && s->last_seen + rq->conf.idle <= rq->now))
    {
        return 1;
    }

    if (cl->has_cnf || s->has_device) {
        if (!cl->has_cnf || !s->has_device || !rq->has_fp
            || memcmp(cl->cnf_fp, rq->fp, ID_FP_LEN) != 0
            || memcmp(s->device_fp, rq->fp, ID_FP_LEN) != 0)
        {
            log_warn("portal: session of %s presented without its device "
                     "(source %s)", s->user, rq->source);
            return 1;
        }
    }

    return 0;
}


/* ---- responses ------------------------------------------------------ */


static void
portal_headers(struct MHD_Response *resp, portal_lang_t lang,
    const char *cache)
{
    MHD_add_response_header(resp, "Content-Security-Policy", PORTAL_CSP);
    MHD_add_response_header(resp, "Cache-Control", cache);
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(resp, "X-Frame-Options", "DENY");
    MHD_add_response_header(resp, "Content-Language",
                            portal_lang_tag(lang));
}


/* The CSRF cookie of a new form and the extra cookie of this response. */
static int
portal_add_cookie(portal_req_t *rq, struct MHD_Response *resp)
{
    char  buf[160];

    if (rq->csrf_new && rq->csrf[0] != '\0') {
        snprintf(buf, sizeof(buf), "%s=%s; Path=/; Secure; HttpOnly; "
                 "SameSite=Strict", PORTAL_CSRF_COOKIE, rq->csrf);
        if (MHD_add_response_header(resp, "Set-Cookie", buf) != MHD_YES) {
            return -1;
        }
    }

    if (rq->cookie[0] != '\0') {
        if (MHD_add_response_header(resp, "Set-Cookie", rq->cookie)
            != MHD_YES)
        {
            return -1;
        }
    }

    return 0;
}


static enum MHD_Result
portal_page(portal_req_t *rq, struct MHD_Connection *c, unsigned status,
    const portal_page_t *pg)
{
    struct MHD_Response  *resp;
    portal_buf_t          b;
    enum MHD_Result       ret;

    b.p = malloc(PORTAL_PAGE_SIZE);
    if (b.p == NULL) {
        return MHD_NO;
    }

    b.cap = PORTAL_PAGE_SIZE;
    portal_html_page(&b, pg);

    if (b.overflow) {
        /* a broken invariant (the pages are small): say so, serve nothing */
        log_error("portal: page does not fit in %d bytes", PORTAL_PAGE_SIZE);
        free(b.p);
        return MHD_NO;
    }

    resp = MHD_create_response_from_buffer(b.len, b.p, MHD_RESPMEM_MUST_FREE);
    if (resp == NULL) {
        free(b.p);
        return MHD_NO;
    }

    portal_headers(resp, rq->lang, "no-store");
    MHD_add_response_header(resp, "Content-Type",
                            "text/html; charset=utf-8");

    if (portal_add_cookie(rq, resp) != 0) {
        MHD_destroy_response(resp);
        return MHD_NO;
    }

    ret = MHD_queue_response(c, status, resp);
    MHD_destroy_response(resp);

    return ret;
}


static enum MHD_Result
portal_form_page(portal_req_t *rq, struct MHD_Connection *c,
    unsigned status, portal_page_kind_t kind, const char *user,
    const char *error)
{
    portal_page_t  pg;

    memset(&pg, 0, sizeof(pg));
    pg.kind = kind;
    pg.lang = rq->lang;
    pg.csrf = rq->csrf;
    pg.next = (kind == PORTAL_PAGE_LOGOUT) ? NULL : rq->next;
    pg.user = user;
    pg.error = error;
    pg.link_key = (kind == PORTAL_PAGE_LOGIN || kind == PORTAL_PAGE_STEPUP)
                  && portal_wa_enabled(rq);

    return portal_page(rq, c, status, &pg);
}


static enum MHD_Result
portal_message(portal_req_t *rq, struct MHD_Connection *c, unsigned status,
    portal_str_t title, portal_str_t text, int link_login)
{
    portal_page_t  pg;

    memset(&pg, 0, sizeof(pg));
    pg.kind = PORTAL_PAGE_MESSAGE;
    pg.lang = rq->lang;
    pg.title = title;
    pg.message = portal_str(rq->lang, text);
    pg.link_login = link_login;

    return portal_page(rq, c, status, &pg);
}


/* 303 See Other to location (already validated or built here). */
static enum MHD_Result
portal_redirect(portal_req_t *rq, struct MHD_Connection *c,
    const char *location)
{
    struct MHD_Response  *resp;
    enum MHD_Result       ret;

    resp = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
    if (resp == NULL) {
        return MHD_NO;
    }

    portal_headers(resp, rq->lang, "no-store");

    if (MHD_add_response_header(resp, "Location", location) != MHD_YES
        || portal_add_cookie(rq, resp) != 0)
    {
        MHD_destroy_response(resp);
        return MHD_NO;
    }

    ret = MHD_queue_response(c, MHD_HTTP_SEE_OTHER, resp);
    MHD_destroy_response(resp);

    return ret;
}


/* No usable session: off to sign in, coming back to rq->next. */
static enum MHD_Result
portal_to_login(portal_req_t *rq, struct MHD_Connection *c)
{
    char  loc[3 * PORTAL_NEXT_MAX + 32];
    char  enc[3 * PORTAL_NEXT_MAX + 1];

    if (strcmp(rq->next, "/") == 0
        || portal_url_encode(rq->next, enc, sizeof(enc)) != 0)
    {
        return portal_redirect(rq, c, "/zt/login");
    }

    snprintf(loc, sizeof(loc), "/zt/login?next=%s", enc);

    return portal_redirect(rq, c, loc);
}


static enum MHD_Result
portal_jwks(portal_req_t *rq, struct MHD_Connection *c, int head)
{
    struct MHD_Response  *resp;
    enum MHD_Result       ret;
    id_err_t              ie;
    char                 *buf;

    (void) head;

    buf = malloc(PORTAL_JWKS_SIZE);
    if (buf == NULL) {
        return MHD_NO;
    }

    if (id_jwks(rq->p->keys, buf, PORTAL_JWKS_SIZE, &ie) != 0) {
        log_error("portal: JWKS: %s", ie.msg);
        free(buf);
        return portal_message(rq, c, MHD_HTTP_INTERNAL_SERVER_ERROR,
                              PORTAL_S_TITLE_ERROR, PORTAL_S_ERR_INTERNAL,
                              0);
    }

    resp = MHD_create_response_from_buffer(strlen(buf), buf,
                                           MHD_RESPMEM_MUST_FREE);
    if (resp == NULL) {
        free(buf);
        return MHD_NO;
    }

    /* public keys: caching is fine, and short enough for rotation */
    portal_headers(resp, rq->lang, "public, max-age=300");
    MHD_add_response_header(resp, "Content-Type", "application/json");

    ret = MHD_queue_response(c, MHD_HTTP_OK, resp);
    MHD_destroy_response(resp);

    return ret;
}


/* ---- login ---------------------------------------------------------- */


static enum MHD_Result
portal_login_get(portal_req_t *rq, struct MHD_Connection *c)
{
    portal_next_from_query(rq, c);
    portal_csrf_prepare(rq, c);

    return portal_form_page(rq, c, MHD_HTTP_OK, PORTAL_PAGE_LOGIN, NULL,
                            NULL);
}


static enum MHD_Result
portal_login_post(portal_req_t *rq, struct MHD_Connection *c)
{
    store_user_t   *u;
    store_err_t     se;
    id_err_t        ie;
    enum MHD_Result ret;
    uint64_t        counter;
    char            typed[STORE_NAME_MAX + 1];
    char            name[STORE_NAME_MAX];
    char            password[PORTAL_PASSWORD_MAX + 1];
    char            code[PORTAL_CODE_MAX + 1];
    const char     *hash;
    int             rc, known, pw, valid;

    portal_next_from_form(rq);

    if (!portal_csrf_check(rq, c)) {
        log_warn("portal: sign-in refused: bad CSRF token (source %s)",
                 rq->source);
        portal_csrf_prepare(rq, c);
        return portal_message(rq, c, MHD_HTTP_FORBIDDEN,
                              PORTAL_S_TITLE_ERROR, PORTAL_S_ERR_CSRF, 1);
    }

    if (!portal_rate_ok(rq)) {
        return portal_message(rq, c, MHD_HTTP_TOO_MANY_REQUESTS,
                              PORTAL_S_TITLE_ERROR, PORTAL_S_ERR_RATE, 1);
    }

    u = calloc(1, sizeof(*u));
    if (u == NULL) {
        return MHD_NO;
    }

    valid = 1;

    if (portal_form_get(rq->body, rq->len, "user", typed, sizeof(typed))
        != PORTAL_FOUND)
    {
        typed[0] = '\0';
        valid = 0;
    }

    if (portal_form_get(rq->body, rq->len, "password", password,
                        sizeof(password))
        != PORTAL_FOUND)
    {
        password[0] = '\0';
        valid = 0;
    }

    if (portal_form_get(rq->body, rq->len, "code", code, sizeof(code))
        != PORTAL_FOUND)
    {
        code[0] = '\0';
        valid = 0;
    }

    if (!portal_user_name(typed, name, sizeof(name))) {
        valid = 0;
    }

    known = 0;

    if (valid) {
        rc = store_user_find(rq->p->st, name, u, &se);

        if (rc == 0) {
            known = 1;

        } else if (rc != STORE_NOTFOUND) {
            log_error("portal: user lookup: %s", se.msg);
            ret = portal_message(rq, c, MHD_HTTP_INTERNAL_SERVER_ERROR,
                                 PORTAL_S_TITLE_ERROR,
                                 PORTAL_S_ERR_INTERNAL, 1);
            goto done;
        }
    }

    if (known && u->locked_until > rq->now) {
        log_warn("portal: sign-in refused for %s from %s: account locked",
                 name, rq->source);
        ret = portal_form_page(rq, c, MHD_HTTP_FORBIDDEN, PORTAL_PAGE_LOGIN,
                               name, portal_lock_message(rq, u));
        goto done;
    }

    /* the same work whether or not the user exists */
    hash = (known && u->pwhash[0] != '\0') ? u->pwhash : rq->p->dummy_hash;
    pw = id_password_verify(password, hash, &ie);
    explicit_bzero(password, sizeof(password));

    if (pw == -1) {
        log_warn("portal: password check for %s: %s",
                 known ? name : "(unknown)", ie.msg);
    }

    if (!known) {
        ret = portal_login_fail(rq, c, NULL, valid ? name : NULL,
                                valid ? "unknown user" : "incomplete form");
        goto done;
    }

    if (pw != 1 || u->pwhash[0] == '\0') {
        ret = portal_login_fail(rq, c, u, name, "wrong password");
        goto done;
    }

    if (u->disabled) {
        ret = portal_login_fail(rq, c, u, name, "account disabled");
        goto done;
    }

    if (u->totp_state != STORE_TOTP_ACTIVE) {
        /* the password was right: not an attack, not counted */
        log_warn("portal: sign-in refused for %s from %s: no authenticator "
                 "enrolled", name, rq->source);
        ret = portal_form_page(rq, c, MHD_HTTP_FORBIDDEN, PORTAL_PAGE_LOGIN,
                               name, portal_str(rq->lang,
                                                PORTAL_S_ERR_NO_TOTP));
        goto done;
    }

    rc = portal_totp_check(rq, u, code, &counter);

    if (rc == -1) {
        ret = portal_message(rq, c, MHD_HTTP_INTERNAL_SERVER_ERROR,
                             PORTAL_S_TITLE_ERROR, PORTAL_S_ERR_INTERNAL, 1);
        goto done;
    }

    if (rc != ID_TOTP_OK) {
        ret = portal_login_fail(rq, c, u, name,
                                rc == ID_TOTP_REPLAY ? "code already used"
                                                     : "wrong code");
        goto done;
    }

    rc = store_login_succeeded(rq->p->st, name, counter, rq->now,
                               rq->source, &se);

    if (rc == STORE_REPLAY) {
        ret = portal_login_fail(rq, c, u, name, "code already used");
        goto done;
    }

    if (rc != 0) {
        log_error("portal: recording the sign-in of %s: %s", name,
                  rc == STORE_NOTFOUND ? "user vanished" : se.msg);
        ret = portal_message(rq, c, MHD_HTTP_INTERNAL_SERVER_ERROR,
                             PORTAL_S_TITLE_ERROR, PORTAL_S_ERR_INTERNAL, 1);
        goto done;
    }

    metrics_portal_count(METRICS_LOGIN_SUCCESS);

    ret = portal_login_ok(rq, c, u, POL_AUTH_PASSWORD | POL_AUTH_TOTP);

done:

    explicit_bzero(password, sizeof(password));
    explicit_bzero(code, sizeof(code));
    explicit_bzero(u, sizeof(*u));
    free(u);

    return ret;
}


/*
 * A failed attempt: counted against a known user (which may lock the
 * account), logged with its reason, answered with the one generic page.
 */
static enum MHD_Result
portal_login_fail(portal_req_t *rq, struct MHD_Connection *c,
    const store_user_t *u, const char *user, const char *why)
{
    store_err_t  se;

    if (u == NULL) {
        metrics_portal_count(METRICS_LOGIN_FAILURE);

    } else if (portal_record_failure(rq, u, why, &se) == -1) {
        log_error("portal: recording a failed sign-in of %s: %s", u->name,
                  se.msg);
    }

    log_warn("portal: sign-in failed for %s from %s: %s",
             user != NULL ? user : "(invalid name)", rq->source, why);

    return portal_form_page(rq, c, MHD_HTTP_FORBIDDEN, PORTAL_PAGE_LOGIN,
                            user, portal_str(rq->lang,
                                             PORTAL_S_ERR_FAILED));
}


static enum MHD_Result
portal_login_ok(portal_req_t *rq, struct MHD_Connection *c,
    const store_user_t *u, unsigned methods)
{
    store_session_t  s;
    store_err_t      se;
    id_claims_t      cl;
    id_err_t         ie;
    char            *token;
    enum MHD_Result  ret;
    int              n;

    memset(&s, 0, sizeof(s));
    memset(&cl, 0, sizeof(cl));

    if (id_new_sid(s.sid, sizeof(s.sid), &ie) != 0) {
        log_error("portal: session id: %s", ie.msg);
        goto failed;
    }

    memcpy(s.user, u->name, sizeof(s.user));
    s.methods = methods;

    if (rq->has_fp) {
        memcpy(s.device_fp, rq->fp, STORE_FP_LEN);
        s.has_device = 1;
        s.methods |= POL_AUTH_CERT;
    }

    s.created_at = rq->now;
    s.mfa_at = rq->now;
    s.last_seen = rq->now;
    s.expires_at = rq->now + rq->conf.lifetime;
    snprintf(s.source, sizeof(s.source), "%s", rq->source);

    if (store_session_create(rq->p->st, &s, &se) != 0) {
        log_error("portal: creating the session of %s: %s", u->name,
                  se.msg);
        goto failed;
    }

    memcpy(cl.sid, s.sid, sizeof(cl.sid));
    snprintf(cl.user, sizeof(cl.user), "%s", u->name);
    cl.iat = rq->now;
    cl.nbf = rq->now;
    cl.exp = s.expires_at;

    if (s.has_device) {
        memcpy(cl.cnf_fp, s.device_fp, ID_FP_LEN);
        cl.has_cnf = 1;
    }

    token = malloc(ID_TOKEN_MAX);
    if (token == NULL) {
        goto revoke;
    }

    if (id_token_issue(rq->p->keys, &cl, token, ID_TOKEN_MAX, &ie) != 0) {
        log_error("portal: issuing the session token of %s: %s", u->name,
                  ie.msg);
        free(token);
        goto revoke;
    }

    n = snprintf(rq->cookie, sizeof(rq->cookie), "%s=%s; Path=/; Secure; "
                 "HttpOnly; SameSite=Lax; Max-Age=%lld",
                 PORTAL_SESSION_COOKIE, token,
                 (long long) rq->conf.lifetime);
    explicit_bzero(token, ID_TOKEN_MAX);
    free(token);

    if (n < 0 || (size_t) n >= sizeof(rq->cookie)) {
        log_error("portal: session cookie too long");
        rq->cookie[0] = '\0';
        goto revoke;
    }

    log_info("portal: signed in %s from %s (device: %s)", u->name,
             rq->source, s.has_device ? "yes" : "no");

    ret = portal_redirect(rq, c, rq->next);
    explicit_bzero(rq->cookie, sizeof(rq->cookie));

    return ret;

revoke:

    /* a session nobody holds a token for must not stay valid */
    if (store_session_revoke(rq->p->st, s.sid, "portal", &se) == -1) {
        log_error("portal: revoking an unfinished session: %s", se.msg);
    }

failed:

    return portal_message(rq, c, MHD_HTTP_INTERNAL_SERVER_ERROR,
                          PORTAL_S_TITLE_ERROR, PORTAL_S_ERR_INTERNAL, 1);
}


/* ---- step-up -------------------------------------------------------- */


static enum MHD_Result
portal_stepup_get(portal_req_t *rq, struct MHD_Connection *c)
{
    id_claims_t      cl;
    store_session_t  s;
    int              rc;

    portal_next_from_query(rq, c);

    rc = portal_session(rq, c, &cl, &s);
    if (rc == -1) {
        return portal_message(rq, c, MHD_HTTP_INTERNAL_SERVER_ERROR,
                              PORTAL_S_TITLE_ERROR, PORTAL_S_ERR_INTERNAL,
                              0);
    }

    if (rc != 0) {
        return portal_to_login(rq, c);
    }

    portal_csrf_prepare(rq, c);

    return portal_form_page(rq, c, MHD_HTTP_OK, PORTAL_PAGE_STEPUP, s.user,
                            NULL);
}


static enum MHD_Result
portal_stepup_post(portal_req_t *rq, struct MHD_Connection *c)
{
    id_claims_t      cl;
    store_session_t  s;
    store_user_t    *u;
    store_err_t      se;
    enum MHD_Result  ret;
    uint64_t         counter;
    char             code[PORTAL_CODE_MAX + 1];
    const char      *why;
    int              rc;

    portal_next_from_form(rq);

    if (!portal_csrf_check(rq, c)) {
        log_warn("portal: step-up refused: bad CSRF token (source %s)",
                 rq->source);
        portal_csrf_prepare(rq, c);
        return portal_message(rq, c, MHD_HTTP_FORBIDDEN,
                              PORTAL_S_TITLE_ERROR, PORTAL_S_ERR_CSRF, 0);
    }

    rc = portal_session(rq, c, &cl, &s);
    if (rc == -1) {
        return portal_message(rq, c, MHD_HTTP_INTERNAL_SERVER_ERROR,
                              PORTAL_S_TITLE_ERROR, PORTAL_S_ERR_INTERNAL,
                              0);
    }

    if (rc != 0) {
        return portal_to_login(rq, c);
    }

    if (!portal_rate_ok(rq)) {
        return portal_message(rq, c, MHD_HTTP_TOO_MANY_REQUESTS,
                              PORTAL_S_TITLE_ERROR, PORTAL_S_ERR_RATE, 0);
    }

    u = calloc(1, sizeof(*u));
    if (u == NULL) {
        return MHD_NO;
    }

    if (portal_form_get(rq->body, rq->len, "code", code, sizeof(code))
        != PORTAL_FOUND)
    {
        code[0] = '\0';
    }

    rc = store_user_find(rq->p->st, s.user, u, &se);

    if (rc == -1) {
        log_error("portal: user lookup: %s", se.msg);
        ret = portal_message(rq, c, MHD_HTTP_INTERNAL_SERVER_ERROR,
                             PORTAL_S_TITLE_ERROR, PORTAL_S_ERR_INTERNAL, 0);
        goto done;
    }

    if (rc == STORE_NOTFOUND || u->disabled) {
        /* the account is gone: so is the session */
        log_warn("portal: step-up refused for %s: account %s; session "
                 "revoked", s.user, rc == STORE_NOTFOUND ? "deleted"
                                                         : "disabled");
        if (store_session_revoke(rq->p->st, s.sid, "portal", &se) == -1) {
            log_error("portal: revoking %s: %s", s.sid, se.msg);
        }
        ret = portal_to_login(rq, c);
        goto done;
    }

    if (u->locked_until > rq->now) {
        log_warn("portal: step-up refused for %s from %s: account locked",
                 u->name, rq->source);
        ret = portal_form_page(rq, c, MHD_HTTP_FORBIDDEN,
                               PORTAL_PAGE_STEPUP, u->name,
                               portal_lock_message(rq, u));
        goto done;
    }

    if (u->totp_state != STORE_TOTP_ACTIVE) {
        log_warn("portal: step-up refused for %s: no authenticator "
                 "enrolled", u->name);
        ret = portal_form_page(rq, c, MHD_HTTP_FORBIDDEN,
                               PORTAL_PAGE_STEPUP, u->name,
                               portal_str(rq->lang, PORTAL_S_ERR_NO_TOTP));
        goto done;
    }

    rc = portal_totp_check(rq, u, code, &counter);

    if (rc == -1) {
        ret = portal_message(rq, c, MHD_HTTP_INTERNAL_SERVER_ERROR,
                             PORTAL_S_TITLE_ERROR, PORTAL_S_ERR_INTERNAL, 0);
        goto done;
    }

    why = NULL;

    if (rc == ID_TOTP_OK) {
        rc = store_login_succeeded(rq->p->st, u->name, counter, rq->now,
                                   rq->source, &se);
        if (rc == STORE_REPLAY) {
            why = "step-up: code already used";

        } else if (rc != 0) {
            log_error("portal: recording the step-up of %s: %s", u->name,
                      rc == STORE_NOTFOUND ? "user vanished" : se.msg);
            ret = portal_message(rq, c, MHD_HTTP_INTERNAL_SERVER_ERROR,
                                 PORTAL_S_TITLE_ERROR,
                                 PORTAL_S_ERR_INTERNAL, 0);
            goto done;
        }

    } else {
        why = (rc == ID_TOTP_REPLAY) ? "step-up: code already used"
                                     : "step-up: wrong code";
    }

    if (why != NULL) {
        if (portal_record_failure(rq, u, why, &se) == -1) {
            log_error("portal: recording a failed step-up of %s: %s",
                      u->name, se.msg);
        }

        log_warn("portal: step-up failed for %s from %s: %s", u->name,
                 rq->source, why + strlen("step-up: "));
        ret = portal_form_page(rq, c, MHD_HTTP_FORBIDDEN,
                               PORTAL_PAGE_STEPUP, u->name,
                               portal_str(rq->lang, PORTAL_S_ERR_CODE));
        goto done;
    }

    metrics_portal_count(METRICS_LOGIN_SUCCESS);

    rc = store_session_mfa(rq->p->st, s.sid, POL_AUTH_TOTP, rq->now, &se);
    if (rc != 0) {
        log_error("portal: recording the step-up of session %s: %s", s.sid,
                  rc == STORE_NOTFOUND ? "session vanished" : se.msg);
        ret = portal_message(rq, c, MHD_HTTP_INTERNAL_SERVER_ERROR,
                             PORTAL_S_TITLE_ERROR, PORTAL_S_ERR_INTERNAL, 0);
        goto done;
    }

    log_info("portal: step-up for %s from %s (device: %s)", u->name,
             rq->source, s.has_device ? "yes" : "no");

    ret = portal_redirect(rq, c, rq->next);

done:

    explicit_bzero(code, sizeof(code));
    explicit_bzero(u, sizeof(*u));
    free(u);

    return ret;
}


/* ---- logout --------------------------------------------------------- */


static enum MHD_Result
portal_logout_get(portal_req_t *rq, struct MHD_Connection *c)
{
    portal_csrf_prepare(rq, c);

    return portal_form_page(rq, c, MHD_HTTP_OK, PORTAL_PAGE_LOGOUT, NULL,
                            NULL);
}


static enum MHD_Result
portal_logout_post(portal_req_t *rq, struct MHD_Connection *c)
{
    id_claims_t   cl;
    id_err_t      ie;
    store_err_t   se;
    char         *token;
    int           rc;

    if (!portal_csrf_check(rq, c)) {
        log_warn("portal: sign-out refused: bad CSRF token (source %s)",
                 rq->source);
        portal_csrf_prepare(rq, c);
        return portal_message(rq, c, MHD_HTTP_FORBIDDEN,
                              PORTAL_S_TITLE_ERROR, PORTAL_S_ERR_CSRF, 0);
    }

    token = malloc(ID_TOKEN_MAX + 1);
    if (token == NULL) {
        return MHD_NO;
    }

    /*
     * Any token that verifies is revoked, whatever its session's state:
     * revoking is always safe, and the CSRF check stands in front.
     */
    if (portal_cookie(c, PORTAL_SESSION_COOKIE, token, ID_TOKEN_MAX + 1)
        == PORTAL_FOUND
        && id_token_verify(rq->p->keys, token, strlen(token), rq->now, &cl,
                           &ie)
           == ID_TOKEN_OK)
    {
        rc = store_session_revoke(rq->p->st, cl.sid, cl.user, &se);

        if (rc == -1) {
            log_error("portal: revoking session of %s: %s", cl.user,
                      se.msg);
            explicit_bzero(token, ID_TOKEN_MAX + 1);
            free(token);
            return portal_message(rq, c, MHD_HTTP_INTERNAL_SERVER_ERROR,
                                  PORTAL_S_TITLE_ERROR,
                                  PORTAL_S_ERR_INTERNAL, 0);
        }

        log_info("portal: signed out %s from %s", cl.user, rq->source);
    }

    explicit_bzero(token, ID_TOKEN_MAX + 1);
    free(token);

    snprintf(rq->cookie, sizeof(rq->cookie), "%s=; Path=/; Secure; "
             "HttpOnly; SameSite=Lax; Max-Age=0", PORTAL_SESSION_COOKIE);

    return portal_message(rq, c, MHD_HTTP_OK, PORTAL_S_TITLE_SIGNED_OUT,
                          PORTAL_S_SIGNED_OUT, 1);
}


/* ---- posture reports ------------------------------------------------ */


/* {"error": msg} with status, for the agents (they read JSON, not HTML). */
static enum MHD_Result
portal_json_error(struct MHD_Connection *c, unsigned status, const char *msg)
{
    struct MHD_Response  *resp;
    enum MHD_Result       ret;
    json_t               *o;
    char                 *body;

    o = json_pack("{s:s}", "error", msg);
    body = (o != NULL) ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);

    if (body == NULL) {
        return MHD_NO;
    }

    resp = MHD_create_response_from_buffer(strlen(body), body,
                                           MHD_RESPMEM_MUST_FREE);
    if (resp == NULL) {
        free(body);
        return MHD_NO;
    }

    MHD_add_response_header(resp, "Content-Type", "application/json");
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");

    ret = MHD_queue_response(c, status, resp);
    MHD_destroy_response(resp);

    return ret;
}


/*
 * POST /zt/posture: a device agent's report over its mTLS connection.
 * The device is the certificate nginx verified (X-ZT-Device-Fp, set by
 * nginx, believable because only nginx may connect); nothing in the body
 * can name another device.  401 without a verified certificate, 403 for
 * one not enrolled or revoked, 429 over the per-device limit, 415 for a
 * body that is not JSON, 413 over PORTAL_POSTURE_MAX, 400 for a report
 * that fails portal_posture_parse(), 204 once stored.  A quarantined
 * device may report: that is how it shows it has been fixed.
 */
static enum MHD_Result
portal_posture_post(portal_req_t *rq, struct MHD_Connection *c)
{
    struct MHD_Response  *resp;
    enum MHD_Result       ret;
    store_posture_t       rep;
    store_device_t        dev;
    store_view_t         *view;
    store_err_t           serr;
    const char           *ct;
    char                  msg[PORTAL_MSG_MAX], hex[PORTAL_FP_HEX_LEN + 1];
    char                  key[PORTAL_SOURCE_MAX];
    size_t                n;
    int                   rc, ok;

    if (!rq->has_fp) {
        return portal_json_error(c, MHD_HTTP_UNAUTHORIZED,
                                 "a posture report needs the device's "
                                 "certificate");
    }

    store_fp_hex(rq->fp, hex);

    view = NULL;
    rc = store_view_begin(rq->p->st, &view, &serr);
    if (rc == 0) {
        rc = store_device_get(view, rq->fp, &dev, &serr);
    }
    store_view_free(view);

    if (rc < 0) {
        log_error("portal: posture report from %s: %s", hex, serr.msg);
        return portal_json_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR,
                                 "internal error");
    }

    if (rc == STORE_NOTFOUND || dev.status == STORE_DEVICE_REVOKED) {
        log_info("portal: posture report refused from certificate %s: %s",
                 hex, rc == STORE_NOTFOUND ? "not enrolled" : "revoked");
        return portal_json_error(c, MHD_HTTP_FORBIDDEN,
                                 rc == STORE_NOTFOUND
                                 ? "device not enrolled" : "device revoked");
    }

    /* one device may not flood the store with writes and audit records */
    snprintf(key, sizeof(key), "posture %.48s", hex);

    pthread_mutex_lock(&rq->p->lock);
    ok = portal_rate_hit(&rq->p->rate, key, rq->now,
                         rq->conf.source_limit);
    pthread_mutex_unlock(&rq->p->lock);

    if (!ok) {
        log_warn("portal: too many posture reports from device %s", dev.id);
        return portal_json_error(c, MHD_HTTP_TOO_MANY_REQUESTS,
                                 "too many reports; try again later");
    }

    ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
    n = strlen("application/json");

    if (ct == NULL || strncasecmp(ct, "application/json", n) != 0
        || (ct[n] != '\0' && ct[n] != ';' && ct[n] != ' '))
    {
        return portal_json_error(c, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE,
                                 "a report must be application/json");
    }

    if (rq->len > PORTAL_POSTURE_MAX) {
        return portal_json_error(c, MHD_HTTP_CONTENT_TOO_LARGE,
                                 "report too large");
    }

    if (portal_posture_parse(rq->body, rq->len, &rep, msg, sizeof(msg))
        != 0)
    {
        log_info("portal: posture report from device %s refused: %s",
                 dev.id, msg);
        return portal_json_error(c, MHD_HTTP_BAD_REQUEST, msg);
    }

    rc = store_posture_put(rq->p->st, rq->fp, &rep, "agent", &serr);
    if (rc == STORE_NOTFOUND) {
        return portal_json_error(c, MHD_HTTP_FORBIDDEN,
                                 "device not enrolled");
    }

    if (rc != 0) {
        log_error("portal: cannot store the posture of device %s: %s",
                  dev.id, serr.msg);
        return portal_json_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR,
                                 "internal error");
    }

    log_info("portal: posture of device %s recorded (from %s)", dev.id,
             rq->source);

    resp = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
    if (resp == NULL) {
        return MHD_NO;
    }

    MHD_add_response_header(resp, "Cache-Control", "no-store");

    ret = MHD_queue_response(c, MHD_HTTP_NO_CONTENT, resp);
    MHD_destroy_response(resp);

    return ret;
}


/* ---- WebAuthn (docs/webauthn.md) ------------------------------------ */

/*
 * Pages under /zt/webauthn/ run a small same-origin script
 * (/zt/webauthn.js): "begin" calls answer JSON with a fresh challenge
 * (after the password, or for the signed-in session at step-up); the
 * browser's navigator.credentials result is then posted as an ordinary
 * form to "finish", which answers like the other portal forms.
 */

#define PORTAL_WA_CSP   "default-src 'none'; script-src 'self'; "          \
                        "connect-src 'self'; style-src 'unsafe-inline'; "  \
                        "form-action 'self'; frame-ancestors 'none'; "     \
                        "base-uri 'none'"
#define PORTAL_WA_FIELD_MAX     4096    /* one base64url form field */
#define PORTAL_WA_TOKEN_LEN     64      /* enrollment code: hex chars */

typedef enum {
    PORTAL_WA_REGISTER = 0,
    PORTAL_WA_LOGIN,
    PORTAL_WA_STEPUP
} portal_wa_mode_t;

typedef struct {
    json_t     *allow;
    int         count;
} portal_wa_list_t;

static int portal_lookup_arg(struct MHD_Connection *c, const char *name,
    char *out, size_t size);
static void portal_wa_hidden(portal_buf_t *b, const char *name,
    const char *id, const char *value);
static void portal_wa_add_headers(portal_req_t *rq,
    struct MHD_Response *resp, const char *type);
static enum MHD_Result portal_wa_send(portal_req_t *rq,
    struct MHD_Connection *c, unsigned status, char *body, size_t len,
    const char *type);
static enum MHD_Result portal_wa_json(portal_req_t *rq,
    struct MHD_Connection *c, unsigned status, json_t *j);
static enum MHD_Result portal_wa_refuse(portal_req_t *rq,
    struct MHD_Connection *c, unsigned status, const char *msg);
static enum MHD_Result portal_wa_page(portal_req_t *rq,
    struct MHD_Connection *c, portal_wa_mode_t mode, const char *user,
    const char *token);
static int portal_wa_token_hash(const char *token,
    uint8_t hash[STORE_WA_TOKEN_LEN], char *hex, size_t hexsize);
static void portal_wa_expect(const portal_req_t *rq, id_wa_expect_t *e,
    const char **origins, const uint8_t *challenge);
static int portal_wa_password(portal_req_t *rq, const char *name,
    store_user_t *u);
static int portal_wa_list_cb(const store_webauthn_t *cr, void *arg);
static int portal_wa_exclude_cb(const store_webauthn_t *cr, void *arg);
static enum MHD_Result portal_wa_options(portal_req_t *rq,
    struct MHD_Connection *c, const char *user, id_wa_ceremony_t kind,
    const char *bind);
static enum MHD_Result portal_wa_register_begin(portal_req_t *rq,
    struct MHD_Connection *c);
static int portal_wa_field(portal_req_t *rq, const char *name, uint8_t *out,
    size_t size);
static enum MHD_Result portal_wa_register_finish(portal_req_t *rq,
    struct MHD_Connection *c);
static int portal_wa_check_assertion(portal_req_t *rq, const char *user,
    id_wa_ceremony_t kind, const char *bind, uint8_t *flags);
static enum MHD_Result portal_wa_login_finish(portal_req_t *rq,
    struct MHD_Connection *c);
static enum MHD_Result portal_wa_stepup_finish(portal_req_t *rq,
    struct MHD_Connection *c);


static const char  portal_wa_js[] =
    "(function () {\n"
    "'use strict';\n"
    "function b64u(buf) {\n"
    "  var b = new Uint8Array(buf), s = '', i;\n"
    "  for (i = 0; i < b.length; i++) { s += String.fromCharCode(b[i]); }\n"
    "  return btoa(s).replace(/\\+/g, '-').replace(/\\//g, '_')"
    ".replace(/=+$/, '');\n"
    "}\n"
    "function unb64u(s) {\n"
    "  var r, b, i;\n"
    "  s = s.replace(/-/g, '+').replace(/_/g, '/');\n"
    "  while (s.length % 4) { s += '='; }\n"
    "  r = atob(s); b = new Uint8Array(r.length);\n"
    "  for (i = 0; i < r.length; i++) { b[i] = r.charCodeAt(i); }\n"
    "  return b;\n"
    "}\n"
    "function val(n) { var e = document.getElementById(n);"
    " return e ? e.value : ''; }\n"
    "function set(n, v) { document.getElementById('f-' + n).value = v; }\n"
    "function say(m) { document.getElementById('zt-status').textContent"
    " = m; }\n"
    "function post(url, p) {\n"
    "  return fetch(url, { method: 'POST', credentials: 'same-origin',\n"
    "    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },\n"
    "    body: new URLSearchParams(p).toString() }).then(function (r) {\n"
    "      return r.json().then(function (j) {\n"
    "        if (!r.ok) { throw new Error(j.error || ('HTTP ' + r.status)); }\n"
    "        return j; }); });\n"
    "}\n"
    "var form = document.getElementById('zt-wa');\n"
    "var mode = form.getAttribute('data-mode');\n"
    "function run() {\n"
    "  var p = { csrf: val('csrf') };\n"
    "  if (mode === 'register') {\n"
    "    p.token = val('token'); p.password = val('password');\n"
    "    return post('/zt/webauthn/register/begin', p).then(function (o) {\n"
    "      return navigator.credentials.create({ publicKey: {\n"
    "        challenge: unb64u(o.challenge),\n"
    "        rp: { id: o.rpId, name: 'ztgate' },\n"
    "        user: { id: unb64u(o.userId), name: o.user,"
    " displayName: o.user },\n"
    "        pubKeyCredParams: [{ type: 'public-key', alg: -7 },\n"
    "          { type: 'public-key', alg: -8 },"
    " { type: 'public-key', alg: -257 }],\n"
    "        excludeCredentials: o.exclude.map(function (id) {\n"
    "          return { type: 'public-key', id: unb64u(id) }; }),\n"
    "        authenticatorSelection: { userVerification:\n"
    "          o.uv ? 'required' : 'preferred' },\n"
    "        attestation: 'none', timeout: 120000 } })"
    ".then(function (c) {\n"
    "        set('challenge', o.challenge); set('name', val('keyname'));\n"
    "        set('client_data', b64u(c.response.clientDataJSON));\n"
    "        set('attestation', b64u(c.response.attestationObject));\n"
    "        document.getElementById('zt-fin').submit(); });\n"
    "    });\n"
    "  }\n"
    "  if (mode === 'login') { p.user = val('user');"
    " p.password = val('password'); }\n"
    "  return post('/zt/webauthn/' + mode + '/begin', p)"
    ".then(function (o) {\n"
    "    return navigator.credentials.get({ publicKey: {\n"
    "      challenge: unb64u(o.challenge), rpId: o.rpId,\n"
    "      allowCredentials: o.allow.map(function (id) {\n"
    "        return { type: 'public-key', id: unb64u(id) }; }),\n"
    "      userVerification: o.uv ? 'required' : 'preferred',\n"
    "      timeout: 120000 } }).then(function (c) {\n"
    "      set('user', o.user); set('challenge', o.challenge);\n"
    "      set('id', b64u(c.rawId));\n"
    "      set('client_data', b64u(c.response.clientDataJSON));\n"
    "      set('auth_data', b64u(c.response.authenticatorData));\n"
    "      set('signature', b64u(c.response.signature));\n"
    "      document.getElementById('zt-fin').submit(); });\n"
    "  });\n"
    "}\n"
    "form.addEventListener('submit', function (ev) {\n"
    "  ev.preventDefault(); say('');\n"
    "  run().catch(function (e) { say(e.message || String(e)); });\n"
    "});\n"
    "document.body.setAttribute('data-zt-ready', '1');\n"
    "})();\n";


/* A query argument given exactly once: 0, else -1. */
/* 1 if the request body is an urlencoded form. */
static int
portal_form_type_ok(struct MHD_Connection *c)
{
    const char  *ct;
    size_t       n;

    ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
    n = strlen("application/x-www-form-urlencoded");

    return ct != NULL
           && strncasecmp(ct, "application/x-www-form-urlencoded", n) == 0
           && (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}


static int
portal_lookup_arg(struct MHD_Connection *c, const char *name, char *out,
    size_t size)
{
    portal_lookup_t  lk;

    memset(&lk, 0, sizeof(lk));
    lk.name = name;
    lk.out = out;
    lk.size = size;
    lk.rc = PORTAL_MISSING;

    MHD_get_connection_values_n(c, MHD_GET_ARGUMENT_KIND, portal_arg_iter,
                                &lk);

    return (lk.count == 1 && lk.rc == PORTAL_FOUND) ? 0 : -1;
}


static int
portal_wa_enabled(const portal_req_t *rq)
{
    return rq->conf.wa_rp_id[0] != '\0' && rq->conf.wa_norigins > 0;
}


static void
portal_wa_hidden(portal_buf_t *b, const char *name, const char *id,
    const char *value)
{
    portal_buf_add(b, "<input type=\"hidden\" name=\"");
    portal_buf_add(b, name);
    portal_buf_add(b, "\" id=\"");
    portal_buf_add(b, id);
    portal_buf_add(b, "\" value=\"");
    portal_html_escape(b, value != NULL ? value : "");
    portal_buf_add(b, "\">");
}


static void
portal_wa_add_headers(portal_req_t *rq, struct MHD_Response *resp,
    const char *type)
{
    MHD_add_response_header(resp, "Content-Security-Policy", PORTAL_WA_CSP);
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(resp, "X-Frame-Options", "DENY");
    MHD_add_response_header(resp, "Content-Language",
                            portal_lang_tag(rq->lang));
    MHD_add_response_header(resp, "Content-Type", type);
}


static enum MHD_Result
portal_wa_send(portal_req_t *rq, struct MHD_Connection *c, unsigned status,
    char *body, size_t len, const char *type)
{
    struct MHD_Response  *resp;
    enum MHD_Result       ret;

    resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (resp == NULL) {
        free(body);
        return MHD_NO;
    }

    portal_wa_add_headers(rq, resp, type);

    if (portal_add_cookie(rq, resp) != 0) {
        MHD_destroy_response(resp);
        return MHD_NO;
    }

    ret = MHD_queue_response(c, status, resp);
    MHD_destroy_response(resp);

    return ret;
}


/* A JSON answer for a begin call; takes the reference to j. */
static enum MHD_Result
portal_wa_json(portal_req_t *rq, struct MHD_Connection *c, unsigned status,
    json_t *j)
{
    char  *s;

    s = (j != NULL) ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);

    if (s == NULL) {
        return MHD_NO;
    }

    return portal_wa_send(rq, c, status, s, strlen(s),
                          "application/json");
}


static enum MHD_Result
portal_wa_refuse(portal_req_t *rq, struct MHD_Connection *c,
    unsigned status, const char *msg)
{
    return portal_wa_json(rq, c, status, json_pack("{s:s}", "error", msg));
}


static enum MHD_Result
portal_wa_page(portal_req_t *rq, struct MHD_Connection *c,
    portal_wa_mode_t mode, const char *user, const char *token)
{
    static const char         *modes[] = { "register", "login", "step-up" };
    static const portal_str_t  titles[] = { PORTAL_S_WA_TITLE_REGISTER,
                                            PORTAL_S_WA_TITLE_LOGIN,
                                            PORTAL_S_WA_TITLE_STEPUP };
    portal_buf_t  b;
    const char   *m, *title;

    b.p = malloc(PORTAL_PAGE_SIZE);
    if (b.p == NULL) {
        return MHD_NO;
    }

    b.cap = PORTAL_PAGE_SIZE;
    b.len = 0;
    b.overflow = 0;
    m = modes[mode];
    title = portal_str(rq->lang, titles[mode]);

    portal_buf_add(&b, "<!DOCTYPE html>\n<html lang=\"");
    portal_buf_add(&b, portal_lang_tag(rq->lang));
    portal_buf_add(&b, "\"><head><meta charset=\"utf-8\"><meta name=\""
                   "viewport\" content=\"width=device-width\"><title>");
    portal_html_escape(&b, title);
    portal_buf_add(&b, "</title><style>body{font-family:sans-serif;"
                   "max-width:28em;margin:3em auto}label{display:block;"
                   "margin:.8em 0}input{width:100%}</style></head><body>"
                   "<h1>");
    portal_html_escape(&b, title);
    portal_buf_add(&b, "</h1><form id=\"zt-wa\" data-mode=\"");
    portal_buf_add(&b, m);
    portal_buf_add(&b, "\">");
    portal_wa_hidden(&b, "csrf", "csrf", rq->csrf);

    if (mode == PORTAL_WA_REGISTER) {
        portal_wa_hidden(&b, "token", "token", token);
        portal_buf_add(&b, "<p>");
        portal_html_escape(&b, portal_str(rq->lang, PORTAL_S_WA_ACCOUNT));
        portal_buf_add(&b, " <b>");
        portal_html_escape(&b, user);
        portal_buf_add(&b, "</b></p><label>");
        portal_html_escape(&b, portal_str(rq->lang,
                                          PORTAL_S_LABEL_PASSWORD));
        portal_buf_add(&b, " <input type=\"password\" id=\"password\" "
                       "autocomplete=\"current-password\" required></label>"
                       "<label>");
        portal_html_escape(&b, portal_str(rq->lang, PORTAL_S_WA_KEY_NAME));
        portal_buf_add(&b, " <input id=\"keyname\" maxlength=\"63\" "
                       "value=\"");
        portal_html_escape(&b, portal_str(rq->lang,
                                          PORTAL_S_WA_DEFAULT_NAME));
        portal_buf_add(&b, "\"></label>");

    } else if (mode == PORTAL_WA_LOGIN) {
        portal_buf_add(&b, "<label>");
        portal_html_escape(&b, portal_str(rq->lang, PORTAL_S_LABEL_USER));
        portal_buf_add(&b, " <input id=\"user\" autocomplete=\"username\" "
                       "required value=\"");
        portal_html_escape(&b, user != NULL ? user : "");
        portal_buf_add(&b, "\"></label><label>");
        portal_html_escape(&b, portal_str(rq->lang,
                                          PORTAL_S_LABEL_PASSWORD));
        portal_buf_add(&b, " <input type=\"password\" id=\"password\" "
                       "autocomplete=\"current-password\" required>"
                       "</label>");

    } else {
        portal_buf_add(&b, "<p>");
        portal_html_escape(&b, portal_str(rq->lang, PORTAL_S_SIGNED_IN_AS));
        portal_buf_add(&b, " <b>");
        portal_html_escape(&b, user);
        portal_buf_add(&b, "</b></p>");
    }

    portal_buf_add(&b, "<button type=\"submit\" id=\"zt-go\">");
    portal_html_escape(&b, portal_str(rq->lang, PORTAL_S_WA_BUTTON));
    portal_buf_add(&b, "</button></form><p id=\"zt-status\" role=\"alert\">"
                   "</p><form id=\"zt-fin\" method=\"post\" action=\""
                   "/zt/webauthn/");
    portal_buf_add(&b, m);
    portal_buf_add(&b, "/finish\">");
    portal_wa_hidden(&b, "csrf", "f-csrf", rq->csrf);
    portal_wa_hidden(&b, "next", "f-next", rq->next);
    portal_wa_hidden(&b, "token", "f-token", token);
    portal_wa_hidden(&b, "user", "f-user", "");
    portal_wa_hidden(&b, "name", "f-name", "");
    portal_wa_hidden(&b, "challenge", "f-challenge", "");
    portal_wa_hidden(&b, "id", "f-id", "");
    portal_wa_hidden(&b, "client_data", "f-client_data", "");
    portal_wa_hidden(&b, "auth_data", "f-auth_data", "");
    portal_wa_hidden(&b, "signature", "f-signature", "");
    portal_wa_hidden(&b, "attestation", "f-attestation", "");
    portal_buf_add(&b, "</form>");

    if (mode == PORTAL_WA_LOGIN) {
        portal_buf_add(&b, "<p><a href=\"/zt/login\">");
        portal_html_escape(&b, portal_str(rq->lang, PORTAL_S_WA_USE_CODE));
        portal_buf_add(&b, "</a></p>");
    }

    portal_buf_add(&b, "<script src=\"/zt/webauthn.js\"></script>"
                   "</body></html>\n");

    if (b.overflow) {
        log_error("portal: webauthn page does not fit");
        free(b.p);
        return MHD_NO;
    }

    return portal_wa_send(rq, c, MHD_HTTP_OK, b.p, b.len,
                          "text/html; charset=utf-8");
}


/* SHA-256 of the enrollment code as typed (its hex text). */
static int
portal_wa_token_hash(const char *token, uint8_t hash[STORE_WA_TOKEN_LEN],
    char *hex, size_t hexsize)
{
    size_t  i;

    if (strlen(token) != PORTAL_WA_TOKEN_LEN
        || !portal_is_hex(token, PORTAL_WA_TOKEN_LEN)
        || EVP_Digest(token, PORTAL_WA_TOKEN_LEN, hash, NULL, EVP_sha256(),
                      NULL) != 1
        || hexsize < 2 * STORE_WA_TOKEN_LEN + 1)
    {
        return -1;
    }

    for (i = 0; i < STORE_WA_TOKEN_LEN; i++) {
        snprintf(hex + 2 * i, 3, "%02x", hash[i]);
    }

    return 0;
}


static void
portal_wa_expect(const portal_req_t *rq, id_wa_expect_t *e,
    const char **origins, const uint8_t *challenge)
{
    size_t  i;

    for (i = 0; i < rq->conf.wa_norigins; i++) {
        origins[i] = rq->conf.wa_origins[i];
    }

    memset(e, 0, sizeof(*e));
    e->rp_id = rq->conf.wa_rp_id;
    e->origins = origins;
    e->norigins = rq->conf.wa_norigins;
    e->challenge = challenge;
    e->challenge_len = ID_WA_CHALLENGE_LEN;
    e->require_uv = rq->conf.wa_uv;
}


/*
 * The password step shared by registration and sign-in: the same work
 * for unknown users, lockout honoured, failures counted.  0 with *u
 * filled, 1 refused (logged and counted), -1 internal error.
 */
static int
portal_wa_password(portal_req_t *rq, const char *name, store_user_t *u)
{
    store_err_t  se;
    id_err_t     ie;
    char         password[PORTAL_PASSWORD_MAX + 1];
    const char  *hash;
    int          rc, known, pw;

    if (portal_form_get(rq->body, rq->len, "password", password,
                        sizeof(password))
        != PORTAL_FOUND)
    {
        password[0] = '\0';
    }

    known = 0;
    rc = (name[0] != '\0') ? store_user_find(rq->p->st, name, u, &se)
                           : STORE_NOTFOUND;

    if (rc == 0) {
        known = 1;

    } else if (rc != STORE_NOTFOUND) {
        explicit_bzero(password, sizeof(password));
        log_error("portal: user lookup: %s", se.msg);
        return -1;
    }

    hash = (known && u->pwhash[0] != '\0') ? u->pwhash : rq->p->dummy_hash;
    pw = id_password_verify(password, hash, &ie);
    explicit_bzero(password, sizeof(password));

    if (!known) {
        metrics_portal_count(METRICS_LOGIN_FAILURE);
        log_warn("portal: security key sign-in failed for %s from %s: "
                 "unknown user", name[0] ? name : "(invalid name)",
                 rq->source);
        return 1;
    }

    if (u->locked_until > rq->now || u->disabled) {
        log_warn("portal: security key sign-in refused for %s from %s: "
                 "account %s", name, rq->source,
                 u->disabled ? "disabled" : "locked");
        return 1;
    }

    if (pw != 1 || u->pwhash[0] == '\0') {
        if (portal_record_failure(rq, u, "wrong password", &se) == -1) {
            log_error("portal: recording a failed sign-in of %s: %s", name,
                      se.msg);
        }
        log_warn("portal: security key sign-in failed for %s from %s: "
                 "wrong password", name, rq->source);
        return 1;
    }

    return 0;
}


static int
portal_wa_list_cb(const store_webauthn_t *cr, void *arg)
{
    portal_wa_list_t  *l = arg;
    char               b64[2 * STORE_WA_ID_MAX];

    if (cr->suspended) {
        return 0;
    }

    if (id_webauthn_b64_encode(cr->id, cr->id_len, b64, sizeof(b64)) < 0
        || json_array_append_new(l->allow, json_string(b64)) != 0)
    {
        return 1;
    }

    l->count++;

    return 0;
}


/* The challenge answer for a sign-in or step-up of user. */
static enum MHD_Result
portal_wa_options(portal_req_t *rq, struct MHD_Connection *c,
    const char *user, id_wa_ceremony_t kind, const char *bind)
{
    portal_wa_list_t  l;
    store_err_t       se;
    id_err_t          ie;
    uint8_t           ch[ID_WA_CHALLENGE_LEN];
    char              b64[ID_WA_CHALLENGE_B64];

    l.allow = json_array();
    l.count = 0;

    if (l.allow == NULL
        || store_webauthn_list(rq->p->st, user, portal_wa_list_cb, &l, &se)
           != 0)
    {
        json_decref(l.allow);
        log_error("portal: listing the keys of %s: %s", user, se.msg);
        return portal_wa_refuse(rq, c, MHD_HTTP_INTERNAL_SERVER_ERROR,
                                "internal error");
    }

    if (l.count == 0) {
        json_decref(l.allow);
        log_warn("portal: security key sign-in for %s from %s: no usable "
                 "key registered", user, rq->source);
        return portal_wa_refuse(rq, c, MHD_HTTP_FORBIDDEN,
                                "no security key is registered for this "
                                "account");
    }

    if (id_wa_challenge_new(rq->p->wa, user, kind, bind, rq->now,
                            PORTAL_WA_CHALLENGE_TTL, ch, b64, &ie) != 0)
    {
        json_decref(l.allow);
        log_error("portal: webauthn challenge: %s", ie.msg);
        return portal_wa_refuse(rq, c, MHD_HTTP_INTERNAL_SERVER_ERROR,
                                "internal error");
    }

    return portal_wa_json(rq, c, MHD_HTTP_OK,
                          json_pack("{s:s,s:s,s:s,s:o,s:b}", "challenge", b64,
                                    "rpId", rq->conf.wa_rp_id, "user", user,
                                    "allow", l.allow, "uv",
                                    rq->conf.wa_uv));
}


static int
portal_wa_exclude_cb(const store_webauthn_t *cr, void *arg)
{
    portal_wa_list_t  *l = arg;
    char               b64[2 * STORE_WA_ID_MAX];

    if (id_webauthn_b64_encode(cr->id, cr->id_len, b64, sizeof(b64)) < 0
        || json_array_append_new(l->allow, json_string(b64)) != 0)
    {
        return 1;
    }

    return 0;
}


static enum MHD_Result
portal_wa_register_begin(portal_req_t *rq, struct MHD_Connection *c)
{
    store_user_t     *u;
    store_err_t       se;
    id_err_t          ie;
    portal_wa_list_t  l;
    enum MHD_Result   ret;
    uint8_t           hash[STORE_WA_TOKEN_LEN], ch[ID_WA_CHALLENGE_LEN];
    uint8_t           uid[32];
    char              token[PORTAL_WA_TOKEN_LEN + 2], hex[80];
    char              name[STORE_NAME_MAX], b64[ID_WA_CHALLENGE_B64];
    char              uidb64[64];
    int               rc;

    if (portal_form_get(rq->body, rq->len, "token", token, sizeof(token))
        != PORTAL_FOUND
        || portal_wa_token_hash(token, hash, hex, sizeof(hex)) != 0)
    {
        return portal_wa_refuse(rq, c, MHD_HTTP_BAD_REQUEST,
                                "malformed enrollment code");
    }

    rc = store_webauthn_code_user(rq->p->st, hash, rq->now, name,
                                  sizeof(name), &se);
    if (rc != 0) {
        log_warn("portal: security key registration from %s: %s",
                 rq->source, se.msg);
        return portal_wa_refuse(rq, c, MHD_HTTP_FORBIDDEN,
                                "this enrollment link is not valid (used "
                                "or expired): ask staff for a new one");
    }

    u = calloc(1, sizeof(*u));
    if (u == NULL) {
        return MHD_NO;
    }

    rc = portal_wa_password(rq, name, u);

    if (rc != 0) {
        ret = portal_wa_refuse(rq, c, rc == 1 ? MHD_HTTP_FORBIDDEN
                                              : MHD_HTTP_INTERNAL_SERVER_ERROR,
                               rc == 1 ? "sign-in failed" : "internal error");
        goto done;
    }

    l.allow = json_array();
    if (l.allow == NULL
        || store_webauthn_list(rq->p->st, name, portal_wa_exclude_cb, &l,
                               &se) != 0
        || EVP_Digest(name, strlen(name), uid, NULL, EVP_sha256(), NULL) != 1
        || id_webauthn_b64_encode(uid, sizeof(uid), uidb64, sizeof(uidb64))
           < 0
        || id_wa_challenge_new(rq->p->wa, name, ID_WA_CEREMONY_REGISTER, hex,
                               rq->now, PORTAL_WA_CHALLENGE_TTL, ch, b64,
                               &ie) != 0)
    {
        json_decref(l.allow);
        log_error("portal: starting a key registration for %s", name);
        ret = portal_wa_refuse(rq, c, MHD_HTTP_INTERNAL_SERVER_ERROR,
                               "internal error");
        goto done;
    }

    ret = portal_wa_json(rq, c, MHD_HTTP_OK,
                         json_pack("{s:s,s:s,s:s,s:s,s:o,s:b}", "challenge",
                                   b64, "rpId", rq->conf.wa_rp_id, "user",
                                   name, "userId", uidb64, "exclude",
                                   l.allow, "uv", rq->conf.wa_uv));

done:

    explicit_bzero(u, sizeof(*u));
    free(u);

    return ret;
}


/* A base64url form field, decoded into out: its length or -1. */
static int
portal_wa_field(portal_req_t *rq, const char *name, uint8_t *out,
    size_t size)
{
    char  *buf;
    int    n;

    buf = malloc(PORTAL_WA_FIELD_MAX + 1);
    if (buf == NULL) {
        return -1;
    }

    n = -1;

    if (portal_form_get(rq->body, rq->len, name, buf,
                        PORTAL_WA_FIELD_MAX + 1) == PORTAL_FOUND)
    {
        n = id_webauthn_b64_decode(buf, out, size);
    }

    free(buf);

    return n;
}


static enum MHD_Result
portal_wa_register_finish(portal_req_t *rq, struct MHD_Connection *c)
{
    store_webauthn_t  *cr;
    id_wa_reg_t       *reg;
    id_wa_expect_t     e;
    store_err_t        se;
    id_err_t           ie;
    enum MHD_Result    ret;
    const char        *origins[CONFIG_MAX_WA_ORIGINS];
    uint8_t            hash[STORE_WA_TOKEN_LEN], ch[ID_WA_CHALLENGE_LEN];
    uint8_t            cd[2048], *att;
    char               token[PORTAL_WA_TOKEN_LEN + 2], hex[80];
    char               name[STORE_NAME_MAX], chb64[ID_WA_CHALLENGE_B64 + 2];
    int                cd_len, att_len, rc;

    cr = calloc(1, sizeof(*cr));
    reg = calloc(1, sizeof(*reg));
    att = malloc(PORTAL_WA_FIELD_MAX);

    if (cr == NULL || reg == NULL || att == NULL) {
        ret = MHD_NO;
        goto done;
    }

    if (portal_form_get(rq->body, rq->len, "token", token, sizeof(token))
        != PORTAL_FOUND
        || portal_wa_token_hash(token, hash, hex, sizeof(hex)) != 0
        || portal_form_get(rq->body, rq->len, "challenge", chb64,
                           sizeof(chb64)) != PORTAL_FOUND
        || (cd_len = portal_wa_field(rq, "client_data", cd, sizeof(cd))) < 0
        || (att_len = portal_wa_field(rq, "attestation", att,
                                      PORTAL_WA_FIELD_MAX)) < 0)
    {
        ret = portal_message(rq, c, MHD_HTTP_BAD_REQUEST,
                             PORTAL_S_TITLE_ERROR, PORTAL_S_ERR_BAD_REQUEST,
                             0);
        goto done;
    }

    if (store_webauthn_code_user(rq->p->st, hash, rq->now, name,
                                 sizeof(name), &se) != 0
        || id_wa_challenge_take(rq->p->wa, chb64, name,
                                ID_WA_CEREMONY_REGISTER, hex, rq->now, ch,
                                &ie) != ID_WA_OK)
    {
        log_warn("portal: security key registration refused from %s: "
                 "enrollment code or challenge not valid", rq->source);
        ret = portal_message(rq, c, MHD_HTTP_FORBIDDEN, PORTAL_S_TITLE_ERROR,
                             PORTAL_S_ERR_FAILED, 0);
        goto done;
    }

    portal_wa_expect(rq, &e, origins, ch);

    rc = id_webauthn_register(&e, cd, (size_t) cd_len, att,
                              (size_t) att_len, reg, &ie);
    if (rc != ID_WA_OK) {
        log_warn("portal: security key registration for %s refused from "
                 "%s: %s", name, rq->source, ie.msg);
        ret = portal_message(rq, c, MHD_HTTP_FORBIDDEN, PORTAL_S_TITLE_ERROR,
                             PORTAL_S_ERR_FAILED, 0);
        goto done;
    }

    memcpy(cr->id, reg->cred_id, reg->cred_id_len);
    cr->id_len = reg->cred_id_len;
    memcpy(cr->cose, reg->cose, reg->cose_len);
    cr->cose_len = reg->cose_len;
    cr->alg = reg->alg;
    cr->sign_count = reg->sign_count;
    memcpy(cr->user, name, sizeof(cr->user));

    if (portal_form_get(rq->body, rq->len, "name", cr->name,
                        sizeof(cr->name)) != PORTAL_FOUND)
    {
        cr->name[0] = '\0';
    }

    for (rc = 0; cr->name[rc] != '\0'; rc++) {
        if ((unsigned char) cr->name[rc] < 0x20 || cr->name[rc] == 0x7f) {
            cr->name[rc] = ' ';
        }
    }

    rc = store_webauthn_add(rq->p->st, cr, hash, name, &se);
    if (rc != 0) {
        log_warn("portal: storing the security key of %s: %s", name,
                 se.msg);
        ret = portal_message(rq, c, MHD_HTTP_FORBIDDEN, PORTAL_S_TITLE_ERROR,
                             PORTAL_S_ERR_FAILED, 0);
        goto done;
    }

    log_info("portal: security key \"%s\" (%s) registered for %s from %s",
             cr->name, id_webauthn_alg_name(cr->alg), name, rq->source);

    {
        portal_buf_t  b;
        const char   *t;

        t = portal_str(rq->lang, PORTAL_S_WA_REGISTERED);
        b.p = malloc(PORTAL_PAGE_SIZE);
        b.cap = b.p != NULL ? PORTAL_PAGE_SIZE : 0;
        b.len = 0;
        b.overflow = 0;

        portal_buf_add(&b, "<!DOCTYPE html>\n<html lang=\"");
        portal_buf_add(&b, portal_lang_tag(rq->lang));
        portal_buf_add(&b, "\"><head><meta charset=\"utf-8\"><title>");
        portal_html_escape(&b, t);
        portal_buf_add(&b, "</title></head><body><h1 id=\"zt-done\">");
        portal_html_escape(&b, t);
        portal_buf_add(&b, "</h1><p><a href=\"/zt/webauthn/login\">");
        portal_html_escape(&b, portal_str(rq->lang,
                                          PORTAL_S_WA_SIGN_IN_WITH_IT));
        portal_buf_add(&b, "</a></p></body></html>\n");

        if (b.p == NULL || b.overflow) {
            free(b.p);
            ret = MHD_NO;
        } else {
            ret = portal_wa_send(rq, c, MHD_HTTP_OK, b.p, b.len,
                                 "text/html; charset=utf-8");
        }
    }

done:

    free(cr);
    free(reg);
    free(att);

    return ret;
}


/*
 * Verify the posted assertion for user against the challenge it names.
 * 0 with *flags (the authenticator's), 1 refused (logged), -1 error.
 */
static int
portal_wa_check_assertion(portal_req_t *rq, const char *user,
    id_wa_ceremony_t kind, const char *bind, uint8_t *flags)
{
    store_webauthn_t  *cr;
    id_wa_expect_t     e;
    id_wa_auth_t       out;
    store_err_t        se;
    id_err_t           ie;
    const char        *origins[CONFIG_MAX_WA_ORIGINS];
    uint8_t            ch[ID_WA_CHALLENGE_LEN], id[STORE_WA_ID_MAX];
    uint8_t            cd[2048], ad[1024], sig[1024];
    char               chb64[ID_WA_CHALLENGE_B64 + 2];
    int                id_len, cd_len, ad_len, sig_len, rc;

    cr = calloc(1, sizeof(*cr));
    if (cr == NULL) {
        return -1;
    }

    rc = 1;

    if (portal_form_get(rq->body, rq->len, "challenge", chb64, sizeof(chb64))
        != PORTAL_FOUND
        || (id_len = portal_wa_field(rq, "id", id, sizeof(id))) <= 0
        || (cd_len = portal_wa_field(rq, "client_data", cd, sizeof(cd))) < 0
        || (ad_len = portal_wa_field(rq, "auth_data", ad, sizeof(ad))) < 0
        || (sig_len = portal_wa_field(rq, "signature", sig, sizeof(sig)))
           < 0)
    {
        log_warn("portal: security key assertion from %s: malformed form",
                 rq->source);
        goto done;
    }

    if (id_wa_challenge_take(rq->p->wa, chb64, user, kind, bind, rq->now, ch,
                             &ie) != ID_WA_OK)
    {
        log_warn("portal: security key assertion for %s refused from %s: "
                 "%s", user, rq->source, ie.msg);
        goto done;
    }

    rc = store_webauthn_get(rq->p->st, id, (size_t) id_len, cr, &se);
    if (rc == -1) {
        log_error("portal: credential lookup: %s", se.msg);
        goto done;
    }

    if (rc != 0 || strcmp(cr->user, user) != 0) {
        log_warn("portal: security key assertion for %s refused from %s: "
                 "not a credential of this user", user, rq->source);
        rc = 1;
        goto done;
    }

    if (cr->suspended) {
        log_warn("portal: security key assertion for %s refused from %s: "
                 "credential suspended", user, rq->source);
        rc = 1;
        goto done;
    }

    portal_wa_expect(rq, &e, origins, ch);

    rc = id_webauthn_assert(&e, cr->cose, cr->cose_len, cr->sign_count, cd,
                            (size_t) cd_len, ad, (size_t) ad_len, sig,
                            (size_t) sig_len, &out, &ie);

    if (rc == ID_WA_COUNTER) {
        log_warn("portal: webauthn.counter_regression for %s from %s: %s",
                 user, rq->source, ie.msg);
        if (store_webauthn_suspend(rq->p->st, cr->id, cr->id_len,
                                   out.sign_count, rq->source, &se) != 0)
        {
            log_error("portal: suspending a credential of %s: %s", user,
                      se.msg);
        }
        rc = 1;
        goto done;
    }

    if (rc != ID_WA_OK) {
        log_warn("portal: security key assertion for %s refused from %s: "
                 "%s", user, rq->source, ie.msg);
        rc = rc == -1 ? -1 : 1;
        goto done;
    }

    rc = store_webauthn_used(rq->p->st, cr->id, cr->id_len, out.sign_count,
                             rq->now, rq->source, &se);
    if (rc != 0) {
        log_warn("portal: security key assertion for %s refused from %s: "
                 "%s", user, rq->source, se.msg);
        rc = rc == -1 ? -1 : 1;
        goto done;
    }

    *flags = out.flags;
    rc = 0;

done:

    free(cr);

    return rc;
}


static enum MHD_Result
portal_wa_login_finish(portal_req_t *rq, struct MHD_Connection *c)
{
    store_user_t     *u;
    store_err_t       se;
    enum MHD_Result   ret;
    char              typed[STORE_NAME_MAX + 1], name[STORE_NAME_MAX];
    unsigned          methods;
    uint8_t           flags;
    int               rc;

    portal_next_from_form(rq);

    if (portal_form_get(rq->body, rq->len, "user", typed, sizeof(typed))
        != PORTAL_FOUND || !portal_user_name(typed, name, sizeof(name)))
    {
        return portal_message(rq, c, MHD_HTTP_BAD_REQUEST,
                              PORTAL_S_TITLE_ERROR, PORTAL_S_ERR_BAD_REQUEST,
                              1);
    }

    u = calloc(1, sizeof(*u));
    if (u == NULL) {
        return MHD_NO;
    }

    flags = 0;
    rc = portal_wa_check_assertion(rq, name, ID_WA_CEREMONY_LOGIN, "",
                                   &flags);
    if (rc != 0) {
        metrics_portal_count(METRICS_LOGIN_FAILURE);
        ret = portal_message(rq, c, rc == 1 ? MHD_HTTP_FORBIDDEN
                                            : MHD_HTTP_INTERNAL_SERVER_ERROR,
                             PORTAL_S_TITLE_ERROR,
                             rc == 1 ? PORTAL_S_ERR_FAILED
                                     : PORTAL_S_ERR_INTERNAL, 1);
        goto done;
    }

    rc = store_user_find(rq->p->st, name, u, &se);
    if (rc == 0) {
        rc = store_login_succeeded(rq->p->st, name, 0, rq->now, rq->source,
                                   &se);
    }

    if (rc != 0) {
        log_warn("portal: recording the sign-in of %s: %s", name, se.msg);
        ret = portal_message(rq, c, MHD_HTTP_FORBIDDEN, PORTAL_S_TITLE_ERROR,
                             PORTAL_S_ERR_FAILED, 1);
        goto done;
    }

    metrics_portal_count(METRICS_LOGIN_SUCCESS);

    methods = POL_AUTH_PASSWORD | POL_AUTH_WEBAUTHN;
    if (flags & ID_WA_FLAG_UV) {
        methods |= POL_AUTH_UV;
    }

    log_info("portal: %s signed in with a security key (AAL%u)", name,
             pol_aal(methods));

    ret = portal_login_ok(rq, c, u, methods);

done:

    explicit_bzero(u, sizeof(*u));
    free(u);

    return ret;
}


static enum MHD_Result
portal_wa_stepup_finish(portal_req_t *rq, struct MHD_Connection *c)
{
    id_claims_t      cl;
    store_session_t  s;
    store_err_t      se;
    unsigned         methods;
    uint8_t          flags;
    int              rc;

    portal_next_from_form(rq);

    rc = portal_session(rq, c, &cl, &s);
    if (rc != 0) {
        return rc == -1 ? portal_message(rq, c,
                                         MHD_HTTP_INTERNAL_SERVER_ERROR,
                                         PORTAL_S_TITLE_ERROR,
                                         PORTAL_S_ERR_INTERNAL, 0)
                        : portal_to_login(rq, c);
    }

    flags = 0;
    rc = portal_wa_check_assertion(rq, s.user, ID_WA_CEREMONY_STEPUP, s.sid,
                                   &flags);
    if (rc != 0) {
        return portal_message(rq, c, rc == 1 ? MHD_HTTP_FORBIDDEN
                                             : MHD_HTTP_INTERNAL_SERVER_ERROR,
                              PORTAL_S_TITLE_ERROR,
                              rc == 1 ? PORTAL_S_ERR_FAILED
                                      : PORTAL_S_ERR_INTERNAL, 0);
    }

    methods = POL_AUTH_WEBAUTHN;
    if (flags & ID_WA_FLAG_UV) {
        methods |= POL_AUTH_UV;
    }

    if (store_session_mfa(rq->p->st, s.sid, methods, rq->now, &se) != 0) {
        log_error("portal: recording the step-up of %s: %s", s.user, se.msg);
        return portal_message(rq, c, MHD_HTTP_INTERNAL_SERVER_ERROR,
                              PORTAL_S_TITLE_ERROR, PORTAL_S_ERR_INTERNAL, 0);
    }

    log_info("portal: %s stepped up with a security key from %s", s.user,
             rq->source);

    return portal_redirect(rq, c, rq->next);
}


static enum MHD_Result
portal_wa_dispatch(portal_req_t *rq, struct MHD_Connection *c,
    const char *url, int get, int post)
{
    struct MHD_Response  *resp;
    enum MHD_Result       ret;
    store_user_t         *u;
    id_claims_t           cl;
    store_session_t       s;
    store_err_t           se;
    uint8_t               hash[STORE_WA_TOKEN_LEN];
    char                  token[PORTAL_WA_TOKEN_LEN + 2], hex[80];
    char                  typed[STORE_NAME_MAX + 1], name[STORE_NAME_MAX];
    int                   rc;

    if (strcmp(url, "/zt/webauthn.js") == 0 && get) {
        resp = MHD_create_response_from_buffer(sizeof(portal_wa_js) - 1,
                                               (void *) (uintptr_t)
                                               portal_wa_js,
                                               MHD_RESPMEM_PERSISTENT);
        if (resp == NULL) {
            return MHD_NO;
        }
        portal_wa_add_headers(rq, resp, "text/javascript; charset=utf-8");
        ret = MHD_queue_response(c, MHD_HTTP_OK, resp);
        MHD_destroy_response(resp);
        return ret;
    }

    if (!portal_wa_enabled(rq)) {
        return portal_message(rq, c, MHD_HTTP_NOT_FOUND,
                              PORTAL_S_TITLE_ERROR, PORTAL_S_ERR_NOT_FOUND,
                              0);
    }

    if (get) {
        portal_next_from_query(rq, c);
        portal_csrf_prepare(rq, c);

        if (strcmp(url, "/zt/webauthn/login") == 0) {
            return portal_wa_page(rq, c, PORTAL_WA_LOGIN, NULL, NULL);
        }

        if (strcmp(url, "/zt/webauthn/step-up") == 0) {
            rc = portal_session(rq, c, &cl, &s);
            if (rc != 0) {
                return portal_to_login(rq, c);
            }
            return portal_wa_page(rq, c, PORTAL_WA_STEPUP, s.user, NULL);
        }

        if (strcmp(url, "/zt/webauthn/keys") == 0) {
            return portal_wa_keys_page(rq, c);
        }

        if (strcmp(url, "/zt/webauthn/register") == 0) {
            if (portal_lookup_arg(c, "token", token, sizeof(token)) != 0
                || portal_wa_token_hash(token, hash, hex, sizeof(hex)) != 0
                || store_webauthn_code_user(rq->p->st, hash, rq->now, name,
                                            sizeof(name), &se) != 0)
            {
                return portal_message(rq, c, MHD_HTTP_FORBIDDEN,
                                      PORTAL_S_TITLE_ERROR,
                                      PORTAL_S_ERR_FAILED, 0);
            }
            return portal_wa_page(rq, c, PORTAL_WA_REGISTER, name, token);
        }

        return portal_message(rq, c, MHD_HTTP_NOT_FOUND,
                              PORTAL_S_TITLE_ERROR, PORTAL_S_ERR_NOT_FOUND,
                              0);
    }

    if (!post) {
        return portal_message(rq, c, MHD_HTTP_METHOD_NOT_ALLOWED,
                              PORTAL_S_TITLE_ERROR, PORTAL_S_ERR_METHOD, 0);
    }

    if (!portal_csrf_check(rq, c)) {
        log_warn("portal: security key request refused: bad CSRF token "
                 "(source %s)", rq->source);
        return portal_wa_refuse(rq, c, MHD_HTTP_FORBIDDEN, "bad CSRF token");
    }

    if (!portal_rate_ok(rq)) {
        return portal_wa_refuse(rq, c, MHD_HTTP_TOO_MANY_REQUESTS,
                                "too many attempts");
    }

    if (strcmp(url, "/zt/webauthn/keys/remove") == 0) {
        return portal_wa_keys_remove(rq, c);
    }

    if (strcmp(url, "/zt/webauthn/register/begin") == 0) {
        return portal_wa_register_begin(rq, c);
    }

    if (strcmp(url, "/zt/webauthn/register/finish") == 0) {
        return portal_wa_register_finish(rq, c);
    }

    if (strcmp(url, "/zt/webauthn/login/begin") == 0) {
        if (portal_form_get(rq->body, rq->len, "user", typed, sizeof(typed))
            != PORTAL_FOUND || !portal_user_name(typed, name, sizeof(name)))
        {
            name[0] = '\0';
        }

        u = calloc(1, sizeof(*u));
        if (u == NULL) {
            return MHD_NO;
        }

        rc = portal_wa_password(rq, name, u);
        explicit_bzero(u, sizeof(*u));
        free(u);

        if (rc != 0) {
            return portal_wa_refuse(rq, c, rc == 1
                                    ? MHD_HTTP_FORBIDDEN
                                    : MHD_HTTP_INTERNAL_SERVER_ERROR,
                                    rc == 1 ? "sign-in failed"
                                            : "internal error");
        }

        return portal_wa_options(rq, c, name, ID_WA_CEREMONY_LOGIN, "");
    }

    if (strcmp(url, "/zt/webauthn/login/finish") == 0) {
        return portal_wa_login_finish(rq, c);
    }

    if (strcmp(url, "/zt/webauthn/step-up/begin") == 0) {
        rc = portal_session(rq, c, &cl, &s);
        if (rc != 0) {
            return portal_wa_refuse(rq, c, MHD_HTTP_UNAUTHORIZED,
                                    "not signed in");
        }
        return portal_wa_options(rq, c, s.user, ID_WA_CEREMONY_STEPUP,
                                 s.sid);
    }

    if (strcmp(url, "/zt/webauthn/step-up/finish") == 0) {
        return portal_wa_stepup_finish(rq, c);
    }

    return portal_message(rq, c, MHD_HTTP_NOT_FOUND, PORTAL_S_TITLE_ERROR,
                          PORTAL_S_ERR_NOT_FOUND, 0);
}


/* ---- the user's own security keys ------------------------------------ */

#define PORTAL_WA_KEYS_MFA_AGE  (15 * 60)   /* removal needs a fresh 2FA */

typedef struct {
    portal_buf_t    *b;
    portal_req_t    *rq;
    unsigned         n;
} portal_wa_keys_t;


/*
 * GET /zt/webauthn/keys: the signed-in user's keys, each with a form to
 * remove it.  Without a session: to the sign-in page and back.
 */
static enum MHD_Result
portal_wa_keys_page(portal_req_t *rq, struct MHD_Connection *c)
{
    portal_wa_keys_t   k;
    portal_buf_t       b;
    store_session_t    s;
    store_err_t        se;
    id_claims_t        cl;
    const char        *title;

    snprintf(rq->next, sizeof(rq->next), "/zt/webauthn/keys");

    if (portal_session(rq, c, &cl, &s) != 0) {
        return portal_to_login(rq, c);
    }

    b.p = malloc(PORTAL_PAGE_SIZE);
    if (b.p == NULL) {
        return MHD_NO;
    }
    b.cap = PORTAL_PAGE_SIZE;
    b.len = 0;
    b.overflow = 0;

    title = portal_str(rq->lang, PORTAL_S_WA_KEYS_TITLE);
    portal_buf_add(&b, "<!DOCTYPE html>\n<html lang=\"");
    portal_buf_add(&b, portal_lang_tag(rq->lang));
    portal_buf_add(&b, "\"><head><meta charset=\"utf-8\"><meta name=\""
                   "viewport\" content=\"width=device-width\"><title>");
    portal_html_escape(&b, title);
    portal_buf_add(&b, "</title></head><body><h1>");
    portal_html_escape(&b, title);
    portal_buf_add(&b, "</h1><p>");
    portal_html_escape(&b, portal_str(rq->lang, PORTAL_S_SIGNED_IN_AS));
    portal_buf_add(&b, " <b>");
    portal_html_escape(&b, s.user);
    portal_buf_add(&b, "</b></p><ul id=\"zt-keys\">");

    k.b = &b;
    k.rq = rq;
    k.n = 0;

    if (store_webauthn_list(rq->p->st, s.user, portal_wa_keys_cb, &k, &se)
        != 0)
    {
        log_error("portal: security keys of %s: %s", s.user, se.msg);
        free(b.p);
        return portal_message(rq, c, MHD_HTTP_INTERNAL_SERVER_ERROR,
                              PORTAL_S_TITLE_ERROR, PORTAL_S_ERR_INTERNAL,
                              0);
    }

    portal_buf_add(&b, "</ul>");

    if (k.n == 0) {
        portal_buf_add(&b, "<p id=\"zt-no-keys\">");
        portal_html_escape(&b, portal_str(rq->lang, PORTAL_S_WA_KEYS_NONE));
        portal_buf_add(&b, "</p>");
    }

    portal_buf_add(&b, "</body></html>\n");

    if (b.overflow) {
        log_error("portal: the security keys page does not fit");
        free(b.p);
        return MHD_NO;
    }

    return portal_wa_send(rq, c, MHD_HTTP_OK, b.p, b.len,
                          "text/html; charset=utf-8");
}


static int
portal_wa_keys_cb(const store_webauthn_t *cr, void *arg)
{
    portal_wa_keys_t  *k = arg;
    portal_buf_t      *b = k->b;
    char               id[2 * STORE_WA_ID_MAX], when[32];
    struct tm          tm;
    time_t             t;

    if (id_webauthn_b64_encode(cr->id, cr->id_len, id, sizeof(id)) < 0) {
        return 0;
    }

    portal_buf_add(b, "<li><form method=\"post\" action=\""
                   "/zt/webauthn/keys/remove\"><b>");
    portal_html_escape(b, cr->name[0] != '\0' ? cr->name : "-");
    portal_buf_add(b, "</b> (");
    portal_buf_add(b, id_webauthn_alg_name(cr->alg));
    portal_buf_add(b, ", ");

    if (cr->last_used == 0) {
        portal_html_escape(b, portal_str(k->rq->lang, PORTAL_S_WA_KEYS_NEVER));
    } else {
        t = (time_t) cr->last_used;
        if (gmtime_r(&t, &tm) != NULL
            && strftime(when, sizeof(when), "%Y-%m-%d %H:%M UTC", &tm) > 0)
        {
            portal_html_escape(b, portal_str(k->rq->lang,
                                             PORTAL_S_WA_KEYS_LAST_USED));
            portal_buf_add(b, " ");
            portal_buf_add(b, when);
        }
    }

    portal_buf_add(b, ")");

    if (cr->suspended) {
        portal_buf_add(b, " <strong class=\"suspended\">");
        portal_html_escape(b, portal_str(k->rq->lang,
                                         PORTAL_S_WA_KEYS_SUSPENDED));
        portal_buf_add(b, "</strong>");
    }

    portal_buf_add(b, "<input type=\"hidden\" name=\"csrf\" value=\"");
    portal_html_escape(b, k->rq->csrf);
    portal_buf_add(b, "\"><input type=\"hidden\" name=\"id\" value=\"");
    portal_html_escape(b, id);
    portal_buf_add(b, "\">");
    portal_buf_add(b, " <button type=\"submit\">");
    portal_html_escape(b, portal_str(k->rq->lang, PORTAL_S_WA_KEYS_REMOVE));
    portal_buf_add(b, "</button></form></li>");

    k->n++;

    return 0;
}


/*
 * POST /zt/webauthn/keys/remove: the signed-in user removes one of their
 * own keys.  A second factor proved in the last 15 minutes is required
 * (else to step-up and back), and the removal is audited with the user
 * as actor.
 */
static enum MHD_Result
portal_wa_keys_remove(portal_req_t *rq, struct MHD_Connection *c)
{
    store_session_t   s;
    store_err_t       se;
    id_claims_t       cl;
    uint8_t           id[STORE_WA_ID_MAX];
    char              b64[2 * STORE_WA_ID_MAX];
    int               n, rc;

    snprintf(rq->next, sizeof(rq->next), "/zt/webauthn/keys");

    if (portal_session(rq, c, &cl, &s) != 0) {
        return portal_to_login(rq, c);
    }

    if (s.mfa_at + PORTAL_WA_KEYS_MFA_AGE < rq->now) {
        return portal_redirect(rq, c, "/zt/step-up?next=%2Fzt%2Fwebauthn"
                               "%2Fkeys");
    }

    if (portal_form_get(rq->body, rq->len, "id", b64, sizeof(b64))
        != PORTAL_FOUND
        || (n = id_webauthn_b64_decode(b64, id, sizeof(id))) <= 0)
    {
        return portal_message(rq, c, MHD_HTTP_BAD_REQUEST,
                              PORTAL_S_TITLE_ERROR, PORTAL_S_ERR_BAD_REQUEST,
                              0);
    }

    rc = store_webauthn_remove(rq->p->st, s.user, id, (size_t) n, s.user,
                               &se);
    if (rc == STORE_NOTFOUND) {
        log_warn("portal: %s tried to remove a security key that is not "
                 "theirs (source %s)", s.user, rq->source);
        return portal_message(rq, c, MHD_HTTP_NOT_FOUND,
                              PORTAL_S_TITLE_ERROR, PORTAL_S_ERR_NOT_FOUND,
                              0);
    }

    if (rc != 0) {
        log_error("portal: removing a security key of %s: %s", s.user,
                  se.msg);
        return portal_message(rq, c, MHD_HTTP_INTERNAL_SERVER_ERROR,
                              PORTAL_S_TITLE_ERROR, PORTAL_S_ERR_INTERNAL,
                              0);
    }

    log_info("portal: %s removed a security key (source %s)", s.user,
             rq->source);

    return portal_redirect(rq, c, "/zt/webauthn/keys");
}
