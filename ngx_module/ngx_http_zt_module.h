/*
 * ngx_http_zt_module: the ztgate policy enforcement point.
 *
 * The access-phase handler (ngx_http_zt_module.c) asks trustd for a
 * decision over a per-worker channel (ngx_http_zt_channel.c): one kept-
 * alive, non-blocking Unix-socket connection driven by nginx's event loop
 * that carries many requests at once, matched to answers by request id.
 * Decisions trustd allows to be cached are kept in a shared-memory zone
 * (ngx_http_zt_cache.c); counters for Prometheus are kept in another
 * (ngx_http_zt_metrics.c).
 */

#ifndef NGX_HTTP_ZT_MODULE_H
#define NGX_HTTP_ZT_MODULE_H

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "zt_wire.h"


extern ngx_module_t  ngx_http_zt_module;

typedef struct ngx_http_zt_channel_s  ngx_http_zt_channel_t;
typedef struct ngx_http_zt_cache_s    ngx_http_zt_cache_t;


/*
 * Counters in the shared "zt_metrics" zone, added to by every worker with
 * ngx_atomic_fetch_add (no lock).  Gauges that belong to one worker's
 * channel (connected, requests in flight) live in a per-worker slot of the
 * same zone, written only by that worker, and are summed when read.
 * Changing this list changes the zone's layout: bump
 * NGX_HTTP_ZT_METRICS_VERSION (ngx_http_zt_metrics.c) and add the metric
 * to its table there.
 */
typedef enum {
    NGX_HTTP_ZT_M_ALLOW = 0,
    NGX_HTTP_ZT_M_DENY,
    NGX_HTTP_ZT_M_LOGIN,
    NGX_HTTP_ZT_M_STEP_UP,
    NGX_HTTP_ZT_M_ERROR,                /* no decision: failure mode */
    NGX_HTTP_ZT_M_FAIL_CLOSED,
    NGX_HTTP_ZT_M_FAIL_OPEN,
    NGX_HTTP_ZT_M_AMBIGUOUS_PATH,       /* refused by zt_strict_paths */
    NGX_HTTP_ZT_M_CACHE_HIT,
    NGX_HTTP_ZT_M_CACHE_MISS,
    NGX_HTTP_ZT_M_CACHE_EXPIRED,
    NGX_HTTP_ZT_M_CACHE_EVICTED,
    NGX_HTTP_ZT_M_CACHE_STORED,
    NGX_HTTP_ZT_M_TRUSTD_REQUEST,       /* queued on the channel */
    NGX_HTTP_ZT_M_TRUSTD_CONNECT,
    NGX_HTTP_ZT_M_TRUSTD_CONNECT_ERROR,
    NGX_HTTP_ZT_M_TRUSTD_RECONNECT,
    NGX_HTTP_ZT_M_TRUSTD_DISCONNECT,    /* closed on an error */
    NGX_HTTP_ZT_M_TRUSTD_TIMEOUT,
    NGX_HTTP_ZT_M_TRUSTD_STALL,
    NGX_HTTP_ZT_M_TRUSTD_PROTOCOL_ERROR,
    NGX_HTTP_ZT_M_NCOUNTERS
} ngx_http_zt_metric_e;


/* One worker's gauges; pid 0: a free slot. */
typedef struct {
    ngx_atomic_t                pid;
    ngx_atomic_t                connected;      /* 0 or 1 */
    ngx_atomic_t                in_flight;      /* waiting for trustd */
} ngx_http_zt_worker_metrics_t;


typedef struct ngx_http_zt_metrics_sh_s  ngx_http_zt_metrics_sh_t;

typedef struct {
    ngx_shm_zone_t             *zone;
    ngx_slab_pool_t            *shpool;
    ngx_http_zt_metrics_sh_t   *sh;
    ngx_atomic_t               *counter;        /* NGX_HTTP_ZT_M_NCOUNTERS */
    ngx_http_zt_worker_metrics_t  *worker;      /* this worker's, or NULL */
} ngx_http_zt_metrics_t;


/*
 * Count one event.  m->counter is set by the zone's init, which runs
 * before any worker starts, so it is never NULL on the request path.
 */
#define ngx_http_zt_metric_inc(m, i)                                        \
    (void) ngx_atomic_fetch_add(&(m)->counter[i], 1)

/* Set one of this worker's gauges (only this worker writes its slot). */
#define ngx_http_zt_worker_gauge(m, field, v)                               \
    do {                                                                    \
        if ((m)->worker) {                                                  \
            (m)->worker->field = (ngx_atomic_uint_t) (v);                   \
        }                                                                   \
    } while (0)


typedef struct {
    ngx_addr_t                 *trustd;         /* zt_trustd */
    size_t                      send_buffer;    /* zt_send_buffer */
    ngx_msec_t                  backoff_max;    /* zt_reconnect_backoff */
    ngx_array_t                *identity_headers; /* ngx_str_t, lowercase */
    ngx_str_t                   session_cookie; /* zt_session_cookie */
    ngx_http_zt_cache_t        *cache;          /* zt_cache_zone */
    ngx_http_zt_channel_t      *channel;        /* this worker's, lazily */
    ngx_http_zt_metrics_t      *metrics;        /* once the module is used */
} ngx_http_zt_main_conf_t;


typedef struct {
    ngx_flag_t                  enable;         /* zt */
    ngx_msec_t                  timeout;        /* zt_timeout */
    ngx_flag_t                  fail_open;      /* zt_failure_mode */
    ngx_uint_t                  fail_status;    /* zt_failure_status */
    ngx_flag_t                  cache;          /* zt_cache */
    ngx_flag_t                  pass_cookie;    /* zt_pass_session_cookie */
    ngx_flag_t                  strict_paths;   /* zt_strict_paths */
} ngx_http_zt_loc_conf_t;


typedef enum {
    NGX_HTTP_ZT_NEW = 0,
    NGX_HTTP_ZT_WAITING,        /* queued on the channel, timer armed */
    NGX_HTTP_ZT_DONE,           /* answer copied into the ctx */
    NGX_HTTP_ZT_FAILED          /* no usable answer: fail closed (or open) */
} ngx_http_zt_state_e;


typedef struct {
    /* first member: the channel's pending tree keys on the request id */
    ngx_rbtree_node_t           node;
    ngx_http_request_t         *request;
    ngx_http_zt_channel_t      *channel;
    ngx_event_t                 event;          /* timeout, then wake-up */
    ngx_http_zt_state_e         state;
    ngx_msec_t                  timeout;
    const char                 *failure;        /* why, when FAILED */

    /* the answer, copied into r->pool */
    ngx_uint_t                  decision;       /* enum wire_decision */
    ngx_uint_t                  status;
    ngx_msec_t                  ttl;
    ngx_uint_t                  reason_code;
    ngx_str_t                   reason;
    ngx_str_t                   redirect;
    ngx_array_t                 headers;        /* ngx_keyval_t */

    ngx_str_t                   cache_key;      /* empty: not cacheable */

    unsigned                    pending:1;      /* in the pending tree */
    unsigned                    from_cache:1;
    unsigned                    counted:1;      /* in the metrics once */
    unsigned                    cache_status:2; /* NGX_HTTP_ZT_CACHE_* */
} ngx_http_zt_ctx_t;

#define NGX_HTTP_ZT_CACHE_BYPASS    0
#define NGX_HTTP_ZT_CACHE_MISS      1
#define NGX_HTTP_ZT_CACHE_HIT       2


/*
 * Queue a decision request for ctx->request on this worker's channel,
 * connecting first if needed.  Returns NGX_OK when the request is in
 * flight: the ctx becomes DONE or FAILED later and the request is woken
 * through r->write_event_handler.  Returns NGX_ERROR when it could not be
 * sent (trustd unreachable, in reconnect back-off, queue full); then
 * ctx->state is FAILED and ctx->failure says why.
 */
ngx_int_t ngx_http_zt_channel_send(ngx_http_zt_main_conf_t *zmcf,
    ngx_http_zt_ctx_t *ctx, const wire_req_t *req, ngx_msec_t timeout);

/* Close this worker's channel (worker exit). */
void ngx_http_zt_channel_shutdown(ngx_http_zt_main_conf_t *zmcf);

/*
 * Forget a request that is going away (pool cleanup): removes it from the
 * pending tree and disarms its event.  Its answer, if one still comes, is
 * dropped.
 */
void ngx_http_zt_channel_cancel(ngx_http_zt_ctx_t *ctx);

/* zt_cache_zone SIZE [max_ttl=TIME]: the directive handler. */
char *ngx_http_zt_cache_zone(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);

/*
 * The cache key of a request (in r->pool).  NGX_OK, NGX_DECLINED when the
 * request is not cacheable, NGX_ERROR.
 */
ngx_int_t ngx_http_zt_cache_key(ngx_http_request_t *r, const wire_req_t *req,
    ngx_str_t *key);

/*
 * Look ctx->cache_key up.  NGX_OK: the decision is copied into ctx (state
 * DONE); NGX_DECLINED: not cached or expired; NGX_ERROR.
 */
ngx_int_t ngx_http_zt_cache_lookup(ngx_http_request_t *r,
    ngx_http_zt_cache_t *cache, ngx_http_zt_ctx_t *ctx);

/* Remember trustd's answer in ctx for min(its TTL, max_ttl); 0: never. */
void ngx_http_zt_cache_store(ngx_http_request_t *r, ngx_http_zt_cache_t *cache,
    ngx_http_zt_ctx_t *ctx);

/* Entries in the cache now (read without the zone's lock: a gauge). */
ngx_uint_t ngx_http_zt_cache_entries(ngx_http_zt_cache_t *cache);

/*
 * Declare the shared "zt_metrics" zone for this http block if it is not
 * declared yet, and set zmcf->metrics.  Called by every directive that
 * puts the module to use (zt_trustd, zt_cache_zone, zt_metrics), so the
 * zone exists exactly when it can count something.  NGX_OK or NGX_ERROR.
 */
ngx_int_t ngx_http_zt_metrics_zone(ngx_conf_t *cf,
    ngx_http_zt_main_conf_t *zmcf);

/* zt_metrics: the directive handler (a content handler for the location). */
char *ngx_http_zt_metrics(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);

/*
 * Claim (at worker start) and release (at worker exit) this process's
 * slot for its gauges.  Without a free slot the worker's gauges are not
 * reported; its counters still are.
 */
void ngx_http_zt_metrics_init_worker(ngx_http_zt_metrics_t *m,
    ngx_log_t *log);
void ngx_http_zt_metrics_exit_worker(ngx_http_zt_metrics_t *m);

#endif /* NGX_HTTP_ZT_MODULE_H */
