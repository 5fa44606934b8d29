/*
 * ngx_http_zt_module: the ztgate policy enforcement point.
 *
 * The access-phase handler (ngx_http_zt_module.c) asks trustd for a
 * decision over a per-worker channel (ngx_http_zt_channel.c): one kept-
 * alive, non-blocking Unix-socket connection driven by nginx's event loop
 * that carries many requests at once, matched to answers by request id.
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


typedef struct {
    ngx_addr_t                 *trustd;         /* zt_trustd */
    size_t                      send_buffer;    /* zt_send_buffer */
    ngx_msec_t                  backoff_max;    /* zt_reconnect_backoff */
    ngx_array_t                *identity_headers; /* ngx_str_t, lowercase */
    ngx_str_t                   session_cookie; /* zt_session_cookie */
    ngx_http_zt_cache_t        *cache;          /* zt_cache_zone */
    ngx_http_zt_channel_t      *channel;        /* this worker's, lazily */
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

#endif /* NGX_HTTP_ZT_MODULE_H */
