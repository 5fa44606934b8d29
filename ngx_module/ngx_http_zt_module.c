/*
 * ngx_http_zt_module: directives, the access-phase handler and the
 * identity headers.
 *
 * For every main request in a location with "zt on" the handler builds a
 * decision request from what nginx itself established (the normalized
 * URI, the client address, the TLS client certificate and nginx's verify
 * result), queues it on the worker's trustd channel and returns NGX_AGAIN;
 * the channel wakes the request when the answer, a timeout or a failure
 * arrives, and the handler runs again to apply it.
 *
 * Identity never comes from the client: wherever the module is active in
 * an http block, every client-sent header in the X-ZT-* namespace, and
 * every name given with zt_identity_header, is removed before the request
 * can reach an upstream - also in locations with "zt off" and when
 * failing open.
 *
 * A deny is final even under "satisfy any": the handler finalizes the
 * request itself instead of returning 403 for the access phase to weigh
 * against other access modules.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_zt_module.h"


#define NGX_HTTP_ZT_PREFIX      "x-zt-"


/*
 * Headers some application frameworks let override the request's path;
 * a client must never choose the path an application routes on behind
 * the gateway's back.  Removed like identity headers.
 */
static ngx_str_t  ngx_http_zt_path_headers[] = {
    ngx_string("x-original-url"),
    ngx_string("x-rewrite-url"),
    ngx_string("x-original-uri"),
    ngx_null_string
};


static ngx_int_t ngx_http_zt_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_zt_ask(ngx_http_request_t *r,
    ngx_http_zt_main_conf_t *zmcf, ngx_http_zt_loc_conf_t *zlcf,
    ngx_http_zt_ctx_t *ctx);
static ngx_int_t ngx_http_zt_apply(ngx_http_request_t *r,
    ngx_http_zt_main_conf_t *zmcf, ngx_http_zt_loc_conf_t *zlcf,
    ngx_http_zt_ctx_t *ctx);
static ngx_int_t ngx_http_zt_fail(ngx_http_request_t *r,
    ngx_http_zt_main_conf_t *zmcf, ngx_http_zt_loc_conf_t *zlcf,
    ngx_http_zt_ctx_t *ctx);
static ngx_int_t ngx_http_zt_final(ngx_http_request_t *r, ngx_uint_t status);
static void ngx_http_zt_cert(ngx_http_request_t *r, wire_req_t *req);
static ngx_int_t ngx_http_zt_is_identity(ngx_http_zt_main_conf_t *zmcf,
    ngx_http_zt_ctx_t *ctx, ngx_table_elt_t *h);
static ngx_int_t ngx_http_zt_name_eq(ngx_str_t *a, ngx_str_t *b);
static ngx_int_t ngx_http_zt_set_headers(ngx_http_request_t *r,
    ngx_http_zt_main_conf_t *zmcf, ngx_http_zt_ctx_t *ctx);
static ngx_int_t ngx_http_zt_has_session_cookie(ngx_http_request_t *r,
    ngx_http_zt_main_conf_t *zmcf, ngx_table_elt_t *h);
static ngx_int_t ngx_http_zt_strip_cookie(ngx_http_request_t *r,
    ngx_http_zt_main_conf_t *zmcf, ngx_str_t *value);
static void ngx_http_zt_cleanup(void *data);
static ngx_int_t ngx_http_zt_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_zt_device_fp_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_zt_uri_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static const char *ngx_http_zt_ambiguous_path(ngx_str_t *uri);
static ngx_int_t ngx_http_zt_add_variables(ngx_conf_t *cf);
static void *ngx_http_zt_create_main_conf(ngx_conf_t *cf);
static char *ngx_http_zt_init_main_conf(ngx_conf_t *cf, void *conf);
static void *ngx_http_zt_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_zt_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static char *ngx_http_zt_trustd(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_zt_identity_header(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_zt_failure_status(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static ngx_int_t ngx_http_zt_init(ngx_conf_t *cf);
static ngx_int_t ngx_http_zt_init_process(ngx_cycle_t *cycle);
static void ngx_http_zt_exit_process(ngx_cycle_t *cycle);
static void ngx_http_zt_count(ngx_http_zt_main_conf_t *zmcf,
    ngx_http_zt_ctx_t *ctx, ngx_uint_t metric);


static ngx_conf_enum_t  ngx_http_zt_failure_modes[] = {
    { ngx_string("closed"), 0 },
    { ngx_string("open"), 1 },
    { ngx_null_string, 0 }
};


static ngx_command_t  ngx_http_zt_commands[] = {

    { ngx_string("zt"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_zt_loc_conf_t, enable),
      NULL },

    { ngx_string("zt_trustd"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_zt_trustd,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("zt_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_zt_loc_conf_t, timeout),
      NULL },

    { ngx_string("zt_failure_mode"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_enum_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_zt_loc_conf_t, fail_open),
      &ngx_http_zt_failure_modes },

    { ngx_string("zt_failure_status"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_zt_failure_status,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("zt_identity_header"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_zt_identity_header,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("zt_cache_zone"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE12,
      ngx_http_zt_cache_zone,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("zt_cache"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_zt_loc_conf_t, cache),
      NULL },

    { ngx_string("zt_strict_paths"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_zt_loc_conf_t, strict_paths),
      NULL },

    { ngx_string("zt_pass_session_cookie"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_zt_loc_conf_t, pass_cookie),
      NULL },

    { ngx_string("zt_session_cookie"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_zt_main_conf_t, session_cookie),
      NULL },

    { ngx_string("zt_send_buffer"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_zt_main_conf_t, send_buffer),
      NULL },

    { ngx_string("zt_reconnect_backoff"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_zt_main_conf_t, backoff_max),
      NULL },

    { ngx_string("zt_metrics"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_zt_metrics,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_zt_module_ctx = {
    ngx_http_zt_add_variables,             /* preconfiguration */
    ngx_http_zt_init,                      /* postconfiguration */

    ngx_http_zt_create_main_conf,          /* create main configuration */
    ngx_http_zt_init_main_conf,            /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_zt_create_loc_conf,           /* create location configuration */
    ngx_http_zt_merge_loc_conf             /* merge location configuration */
};


ngx_module_t  ngx_http_zt_module = {
    NGX_MODULE_V1,
    &ngx_http_zt_module_ctx,               /* module context */
    ngx_http_zt_commands,                  /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_http_zt_init_process,              /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_zt_exit_process,              /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


enum {
    NGX_HTTP_ZT_VAR_DECISION = 0,
    NGX_HTTP_ZT_VAR_REASON,
    NGX_HTTP_ZT_VAR_STATUS,
    NGX_HTTP_ZT_VAR_CACHE
};

#define NGX_HTTP_ZT_DEFAULT_COOKIE  "__Host-zt_session"


static ngx_http_variable_t  ngx_http_zt_vars[] = {

    { ngx_string("zt_decision"), NULL, ngx_http_zt_variable,
      NGX_HTTP_ZT_VAR_DECISION, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("zt_reason"), NULL, ngx_http_zt_variable,
      NGX_HTTP_ZT_VAR_REASON, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("zt_status"), NULL, ngx_http_zt_variable,
      NGX_HTTP_ZT_VAR_STATUS, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("zt_cache_status"), NULL, ngx_http_zt_variable,
      NGX_HTTP_ZT_VAR_CACHE, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("zt_device_fp"), NULL, ngx_http_zt_device_fp_variable,
      0, 0, 0 },

    { ngx_string("zt_uri"), NULL, ngx_http_zt_uri_variable,
      0, NGX_HTTP_VAR_NOCACHEABLE, 0 },

      ngx_http_null_variable
};


static ngx_int_t
ngx_http_zt_handler(ngx_http_request_t *r)
{
    ngx_http_zt_ctx_t        *ctx;
    ngx_pool_cleanup_t       *cln;
    ngx_http_zt_loc_conf_t   *zlcf;
    ngx_http_zt_main_conf_t  *zmcf;

    zmcf = ngx_http_get_module_main_conf(r, ngx_http_zt_module);

    if (zmcf->trustd == NULL) {
        /* the module is not configured in this http block */
        return NGX_DECLINED;
    }

    zlcf = ngx_http_get_module_loc_conf(r, ngx_http_zt_module);
    ctx = ngx_http_get_module_ctx(r, ngx_http_zt_module);

    if (ctx == NULL) {

        if (!zlcf->enable) {
            /* no decision here, but identity still cannot be forged */
            if (ngx_http_zt_set_headers(r, zmcf, NULL) != NGX_OK) {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            return NGX_DECLINED;
        }

        if (zlcf->strict_paths) {
            const char  *why = ngx_http_zt_ambiguous_path(&r->uri);

            if (why != NULL) {
                ngx_http_zt_metric_inc(zmcf->metrics,
                                       NGX_HTTP_ZT_M_AMBIGUOUS_PATH);
                ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                              "zt: refused an ambiguous path with 400 "
                              "(%s; see zt_strict_paths)", why);
                return ngx_http_zt_final(r, NGX_HTTP_BAD_REQUEST);
            }
        }

        ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_zt_ctx_t));
        if (ctx == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ctx->request = r;

        cln = ngx_pool_cleanup_add(r->pool, 0);
        if (cln == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        cln->handler = ngx_http_zt_cleanup;
        cln->data = ctx;

        ngx_http_set_ctx(r, ctx, ngx_http_zt_module);

        switch (ngx_http_zt_ask(r, zmcf, zlcf, ctx)) {
        case NGX_OK:
            return NGX_AGAIN;
        case NGX_DONE:
            return ngx_http_zt_apply(r, zmcf, zlcf, ctx);
        default:
            return ngx_http_zt_fail(r, zmcf, zlcf, ctx);
        }
    }

    switch (ctx->state) {

    case NGX_HTTP_ZT_WAITING:
        /* woken by something else: keep waiting */
        return NGX_AGAIN;

    case NGX_HTTP_ZT_DONE:
        return ngx_http_zt_apply(r, zmcf, zlcf, ctx);

    default:
        return ngx_http_zt_fail(r, zmcf, zlcf, ctx);
    }
}


static ngx_int_t
ngx_http_zt_ask(ngx_http_request_t *r, ngx_http_zt_main_conf_t *zmcf,
    ngx_http_zt_loc_conf_t *zlcf, ngx_http_zt_ctx_t *ctx)
{
    ngx_int_t                  rc;
    ngx_str_t                  token;
    wire_req_t                 req;
    ngx_http_core_srv_conf_t  *cscf;

    ngx_memzero(&req, sizeof(wire_req_t));

    req.method.data = (const char *) r->method_name.data;
    req.method.len = r->method_name.len;

#if (NGX_HTTP_SSL)
    if (r->connection->ssl) {
        req.scheme.data = "https";
        req.scheme.len = 5;
        ngx_http_zt_cert(r, &req);

    } else
#endif
    {
        req.scheme.data = "http";
        req.scheme.len = 4;
    }

    if (r->headers_in.server.len) {
        req.host.data = (const char *) r->headers_in.server.data;
        req.host.len = r->headers_in.server.len;

    } else {
        cscf = ngx_http_get_module_srv_conf(r, ngx_http_core_module);
        req.host.data = (const char *) cscf->server_name.data;
        req.host.len = cscf->server_name.len;
    }

    /* r->uri is nginx's normalized path: decoded, dot segments resolved */
    req.path.data = (const char *) r->uri.data;
    req.path.len = r->uri.len;
    req.query.data = (const char *) r->args.data;
    req.query.len = r->args.len;
    req.client_addr.data = (const char *) r->connection->addr_text.data;
    req.client_addr.len = r->connection->addr_text.len;

    if (r->headers_in.user_agent) {
        req.user_agent.data = (const char *) r->headers_in.user_agent->value.data;
        req.user_agent.len = r->headers_in.user_agent->value.len;
    }

    if (ngx_http_parse_multi_header_lines(&r->headers_in.cookies,
                                          &zmcf->session_cookie, &token)
        != NGX_DECLINED)
    {
        req.token.data = (const char *) token.data;
        req.token.len = token.len;
    }

    if (zmcf->cache && zlcf->cache) {
        rc = ngx_http_zt_cache_key(r, &req, &ctx->cache_key);
        if (rc == NGX_ERROR) {
            ctx->failure = "no memory for the cache key";
            return NGX_ERROR;
        }

        if (rc == NGX_OK) {
            rc = ngx_http_zt_cache_lookup(r, zmcf->cache, ctx);
            if (rc == NGX_OK) {
                ctx->cache_status = NGX_HTTP_ZT_CACHE_HIT;
                return NGX_DONE;
            }

            if (rc == NGX_ERROR) {
                ctx->failure = "decision cache error";
                return NGX_ERROR;
            }

            ctx->cache_status = NGX_HTTP_ZT_CACHE_MISS;
        }
    }

    return ngx_http_zt_channel_send(zmcf, ctx, &req, zlcf->timeout);
}


#if (NGX_HTTP_SSL)

/*
 * The device identity: the SHA-256 of the client certificate that the TLS
 * layer received, and whether nginx verified it against its CA (the same
 * test as $ssl_client_verify = SUCCESS).  Nothing here comes from headers.
 */
static void
ngx_http_zt_cert(ngx_http_request_t *r, wire_req_t *req)
{
    X509          *cert;
    unsigned int   len;

    cert = SSL_get1_peer_certificate(r->connection->ssl->connection);
    if (cert == NULL) {
        req->cert_verify = WIRE_CERT_NONE;
        return;
    }

    len = 0;

    if (X509_digest(cert, EVP_sha256(), req->cert_fp, &len) == 1
        && len == WIRE_FP_LEN)
    {
        req->has_cert_fp = 1;
    }

    if (req->has_cert_fp
        && SSL_get_verify_result(r->connection->ssl->connection)
           == X509_V_OK)
    {
        req->cert_verify = WIRE_CERT_SUCCESS;

    } else {
        req->cert_verify = WIRE_CERT_FAILED;
    }

    X509_free(cert);
}

#endif


static ngx_int_t
ngx_http_zt_apply(ngx_http_request_t *r, ngx_http_zt_main_conf_t *zmcf,
    ngx_http_zt_loc_conf_t *zlcf, ngx_http_zt_ctx_t *ctx)
{
    ngx_table_elt_t  *location;

    if (!ctx->from_cache && zmcf->cache && ctx->cache_key.len) {
        ngx_http_zt_cache_store(r, zmcf->cache, ctx);
        ctx->from_cache = 1;    /* store once, even if applied again */
    }

    switch (ctx->decision) {

    case WIRE_ALLOW:
        ngx_http_zt_count(zmcf, ctx, NGX_HTTP_ZT_M_ALLOW);

        if (ngx_http_zt_set_headers(r, zmcf, ctx) != NGX_OK) {
            return ngx_http_zt_final(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        }

        ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "zt: allow");
        return NGX_OK;

    case WIRE_LOGIN:
    case WIRE_STEP_UP:
        if (ctx->redirect.len == 0 || ctx->status < 300
            || ctx->status > 399)
        {
            ctx->failure = "trustd sent a redirect decision without target";
            return ngx_http_zt_fail(r, zmcf, zlcf, ctx);
        }

        ngx_http_zt_count(zmcf, ctx, ctx->decision == WIRE_LOGIN
                                     ? NGX_HTTP_ZT_M_LOGIN
                                     : NGX_HTTP_ZT_M_STEP_UP);

        ngx_http_clear_location(r);

        location = ngx_list_push(&r->headers_out.headers);
        if (location == NULL) {
            return ngx_http_zt_final(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        }

        location->hash = 1;
        ngx_str_set(&location->key, "Location");
        location->value = ctx->redirect;
        r->headers_out.location = location;

        return ngx_http_zt_final(r, ctx->status);

    default: /* WIRE_DENY */
        ngx_http_zt_count(zmcf, ctx, NGX_HTTP_ZT_M_DENY);

        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "zt: access denied: %V", &ctx->reason);

        return ngx_http_zt_final(r, ctx->status >= 400 ? ctx->status
                                                       : NGX_HTTP_FORBIDDEN);
    }
}


static ngx_int_t
ngx_http_zt_fail(ngx_http_request_t *r, ngx_http_zt_main_conf_t *zmcf,
    ngx_http_zt_loc_conf_t *zlcf, ngx_http_zt_ctx_t *ctx)
{
    ctx->state = NGX_HTTP_ZT_FAILED;

    if (!ctx->counted) {
        ngx_http_zt_metric_inc(zmcf->metrics, zlcf->fail_open
                                              ? NGX_HTTP_ZT_M_FAIL_OPEN
                                              : NGX_HTTP_ZT_M_FAIL_CLOSED);
    }

    ngx_http_zt_count(zmcf, ctx, NGX_HTTP_ZT_M_ERROR);

    if (zlcf->fail_open) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "zt: no decision (%s), failing OPEN as configured by "
                      "\"zt_failure_mode open\" (trustd at \"%V\")",
                      ctx->failure, &zmcf->trustd->name);

        if (ngx_http_zt_set_headers(r, zmcf, NULL) != NGX_OK) {
            return ngx_http_zt_final(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        }

        return NGX_DECLINED;
    }

    ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                  "zt: no decision (%s), failing closed with %ui "
                  "(trustd at \"%V\")", ctx->failure, zlcf->fail_status,
                  &zmcf->trustd->name);

    return ngx_http_zt_final(r, zlcf->fail_status);
}


/* Count a request's outcome in the metrics, once whatever runs again. */
static void
ngx_http_zt_count(ngx_http_zt_main_conf_t *zmcf, ngx_http_zt_ctx_t *ctx,
    ngx_uint_t metric)
{
    if (ctx->counted) {
        return;
    }

    ctx->counted = 1;
    ngx_http_zt_metric_inc(zmcf->metrics, metric);
}


/*
 * End the request here with this status, whatever other access modules
 * say (see "satisfy any" in the file comment).
 */
static ngx_int_t
ngx_http_zt_final(ngx_http_request_t *r, ngx_uint_t status)
{
    ngx_http_finalize_request(r, status);
    return NGX_DONE;
}


static ngx_int_t
ngx_http_zt_name_eq(ngx_str_t *a, ngx_str_t *b)
{
    size_t  i;
    u_char  ca, cb;

    if (a->len != b->len) {
        return 0;
    }

    /* '_' and '-' are the same to CGI-style upstreams: treat them alike */
    for (i = 0; i < a->len; i++) {
        ca = ngx_tolower(a->data[i]);
        cb = ngx_tolower(b->data[i]);
        ca = (ca == '_') ? '-' : ca;
        cb = (cb == '_') ? '-' : cb;

        if (ca != cb) {
            return 0;
        }
    }

    return 1;
}


static ngx_int_t
ngx_http_zt_is_identity(ngx_http_zt_main_conf_t *zmcf, ngx_http_zt_ctx_t *ctx,
    ngx_table_elt_t *h)
{
    size_t         i;
    u_char         c;
    ngx_str_t     *names, prefix;
    ngx_keyval_t  *kv;

    ngx_str_set(&prefix, NGX_HTTP_ZT_PREFIX);

    if (h->key.len >= prefix.len) {
        for (i = 0; i < prefix.len; i++) {
            c = ngx_tolower(h->key.data[i]);
            c = (c == '_') ? '-' : c;

            if (c != prefix.data[i]) {
                break;
            }
        }

        if (i == prefix.len) {
            return 1;
        }
    }

    for (names = ngx_http_zt_path_headers; names->len; names++) {
        if (ngx_http_zt_name_eq(&h->key, names)) {
            return 1;
        }
    }

    if (zmcf->identity_headers) {
        names = zmcf->identity_headers->elts;

        for (i = 0; i < zmcf->identity_headers->nelts; i++) {
            if (ngx_http_zt_name_eq(&h->key, &names[i])) {
                return 1;
            }
        }
    }

    if (ctx && ctx->headers.nelts) {
        kv = ctx->headers.elts;

        for (i = 0; i < ctx->headers.nelts; i++) {
            if (ngx_http_zt_name_eq(&h->key, &kv[i].key)) {
                return 1;
            }
        }
    }

    return 0;
}


/*
 * Rebuild the request's header list without any client-sent identity
 * header, then add the headers trustd returned (ctx may be NULL: strip
 * only).  nginx's list has no removal, and upstream modules walk the whole
 * list, so a copy is the only reliable way to make a header disappear.
 */
static ngx_int_t
ngx_http_zt_set_headers(ngx_http_request_t *r, ngx_http_zt_main_conf_t *zmcf,
    ngx_http_zt_ctx_t *ctx)
{
    ngx_uint_t        i, j, found;
    ngx_list_t        headers;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h, *nh;
    ngx_keyval_t     *kv;

    found = 0;
    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */; i++) {
        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }
            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (ngx_http_zt_is_identity(zmcf, ctx, &h[i])) {
            ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                          "zt: removed client-sent identity header \"%V\"",
                          &h[i].key);
            found = 1;

        } else if (ngx_http_zt_has_session_cookie(r, zmcf, &h[i])) {
            found = 1;
        }
    }

    if (found) {
        if (ngx_list_init(&headers, r->pool, 20, sizeof(ngx_table_elt_t))
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        part = &r->headers_in.headers.part;
        h = part->elts;

        for (i = 0; /* void */; i++) {
            if (i >= part->nelts) {
                if (part->next == NULL) {
                    break;
                }
                part = part->next;
                h = part->elts;
                i = 0;
            }

            if (ngx_http_zt_is_identity(zmcf, ctx, &h[i])) {
                continue;
            }

            nh = ngx_list_push(&headers);
            if (nh == NULL) {
                return NGX_ERROR;
            }

            *nh = h[i];

            /* the gateway's session is not the application's business */
            if (ngx_http_zt_has_session_cookie(r, zmcf, nh)) {
                if (ngx_http_zt_strip_cookie(r, zmcf, &nh->value)
                    != NGX_OK)
                {
                    return NGX_ERROR;
                }

                if (nh->value.len == 0) {
                    /* nothing left: take back the element just pushed */
                    headers.last->nelts--;
                }
            }
        }

        /* a list's "last" may point at its own first part: re-aim it */
        r->headers_in.headers = headers;

        if (headers.last == &headers.part) {
            r->headers_in.headers.last = &r->headers_in.headers.part;
        }
    }

    if (ctx == NULL) {
        return NGX_OK;
    }

    kv = ctx->headers.elts;

    for (j = 0; j < ctx->headers.nelts; j++) {
        nh = ngx_list_push(&r->headers_in.headers);
        if (nh == NULL) {
            return NGX_ERROR;
        }

        nh->key = kv[j].key;
        nh->value = kv[j].value;
        nh->lowcase_key = ngx_pnalloc(r->pool, kv[j].key.len);
        if (nh->lowcase_key == NULL) {
            return NGX_ERROR;
        }

        nh->hash = ngx_hash_strlow(nh->lowcase_key, kv[j].key.data,
                                   kv[j].key.len);
    }

    return NGX_OK;
}


/*
 * Whether h is a Cookie header carrying ztgate's session cookie that must
 * not reach this location's upstream (only the sign-in portal's location
 * passes it, with zt_pass_session_cookie on).
 */
static ngx_int_t
ngx_http_zt_has_session_cookie(ngx_http_request_t *r,
    ngx_http_zt_main_conf_t *zmcf, ngx_table_elt_t *h)
{
    ngx_http_zt_loc_conf_t  *zlcf;

    zlcf = ngx_http_get_module_loc_conf(r, ngx_http_zt_module);

    if (zlcf->pass_cookie) {
        return 0;
    }

    if (h->key.len != sizeof("Cookie") - 1
        || ngx_strncasecmp(h->key.data, (u_char *) "Cookie", 6) != 0)
    {
        return 0;
    }

    return ngx_strlcasestrn(h->value.data, h->value.data + h->value.len,
                            zmcf->session_cookie.data,
                            zmcf->session_cookie.len - 1)
           != NULL;
}


/*
 * Remove every "name=value" pair of the session cookie from a Cookie
 * header value, keeping the others in order.  The result may be empty.
 */
static ngx_int_t
ngx_http_zt_strip_cookie(ngx_http_request_t *r, ngx_http_zt_main_conf_t *zmcf,
    ngx_str_t *value)
{
    u_char     *p, *end, *start, *eq, *out, *o;
    ngx_str_t  *name;

    name = &zmcf->session_cookie;

    /* "a=1;b=2" becomes "a=1; b=2": at most one byte more per pair */
    out = ngx_pnalloc(r->pool, 2 * value->len + 2);
    if (out == NULL) {
        return NGX_ERROR;
    }

    o = out;
    p = value->data;
    end = value->data + value->len;

    while (p < end) {
        while (p < end && (*p == ' ' || *p == ';')) {
            p++;
        }

        start = p;

        while (p < end && *p != ';') {
            p++;
        }

        if (p == start) {
            break;
        }

        eq = ngx_strlchr(start, p, '=');

        if (eq != NULL && (size_t) (eq - start) == name->len
            && ngx_strncmp(start, name->data, name->len) == 0)
        {
            continue;
        }

        if (o != out) {
            *o++ = ';';
            *o++ = ' ';
        }

        o = ngx_cpymem(o, start, p - start);
    }

    value->data = out;
    value->len = o - out;

    return NGX_OK;
}


static void
ngx_http_zt_cleanup(void *data)
{
    ngx_http_zt_ctx_t  *ctx = data;

    ngx_http_zt_channel_cancel(ctx);
}


static ngx_int_t
ngx_http_zt_variable(ngx_http_request_t *r, ngx_http_variable_value_t *v,
    uintptr_t data)
{
    u_char             *p;
    const char         *s;
    ngx_http_zt_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_zt_module);

    if (ctx == NULL || ctx->state == NGX_HTTP_ZT_NEW
        || ctx->state == NGX_HTTP_ZT_WAITING)
    {
        v->not_found = 1;
        return NGX_OK;
    }

    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;

    switch (data) {

    case NGX_HTTP_ZT_VAR_DECISION:
        s = (ctx->state == NGX_HTTP_ZT_FAILED)
            ? "error" : wire_decision_name(ctx->decision);
        v->data = (u_char *) s;
        v->len = ngx_strlen(s);
        break;

    case NGX_HTTP_ZT_VAR_REASON:
        if (ctx->state == NGX_HTTP_ZT_FAILED) {
            s = ctx->failure ? ctx->failure : "error";
            v->data = (u_char *) s;
            v->len = ngx_strlen(s);

        } else {
            v->data = ctx->reason.data;
            v->len = ctx->reason.len;
        }
        break;

    case NGX_HTTP_ZT_VAR_CACHE:
        s = ctx->cache_status == NGX_HTTP_ZT_CACHE_HIT ? "HIT"
            : ctx->cache_status == NGX_HTTP_ZT_CACHE_MISS ? "MISS"
            : "BYPASS";
        v->data = (u_char *) s;
        v->len = ngx_strlen(s);
        break;

    default: /* NGX_HTTP_ZT_VAR_STATUS */
        p = ngx_pnalloc(r->pool, NGX_INT_T_LEN);
        if (p == NULL) {
            return NGX_ERROR;
        }
        v->data = p;
        v->len = ngx_sprintf(p, "%ui", ctx->status) - p;
        break;
    }

    return NGX_OK;
}


/*
 * $zt_device_fp: the lowercase hex SHA-256 of the client certificate, only
 * when nginx verified it; empty otherwise.  For the sign-in portal's
 * location, so that a session can be bound to the device that signed in.
 */
static ngx_int_t
ngx_http_zt_device_fp_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    u_char      *p;
    wire_req_t   req;

    ngx_memzero(&req, sizeof(wire_req_t));

#if (NGX_HTTP_SSL)
    if (r->connection->ssl) {
        ngx_http_zt_cert(r, &req);
    }
#endif

    if (req.cert_verify != WIRE_CERT_SUCCESS) {
        v->len = 0;
        v->data = (u_char *) "";
        v->valid = 1;
        v->no_cacheable = 0;
        v->not_found = 0;
        return NGX_OK;
    }

    p = ngx_pnalloc(r->pool, 2 * WIRE_FP_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    ngx_hex_dump(p, req.cert_fp, WIRE_FP_LEN);

    v->len = 2 * WIRE_FP_LEN;
    v->data = p;
    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;

    return NGX_OK;
}


/*
 * A normalized path that application servers may read differently from
 * nginx, so that the path the policy judged is not the one served:
 * path parameters (';', which servlet containers strip: /admin;x/..),
 * backslashes (a separator to IIS), a segment ending in a dot or space
 * (Windows drops them: /admin./), and bytes that are not shortest-form
 * UTF-8 (overlong encodings of '/' or '.').  Returns why, or NULL.
 */
static const char *
ngx_http_zt_ambiguous_path(ngx_str_t *uri)
{
    u_char  *p, *end, *seg;
    size_t   n, k;
    u_char   c;

    p = uri->data;
    end = uri->data + uri->len;
    seg = p;

    while (p < end) {
        c = *p;

        if (c == ';') {
            return "path parameter";
        }

        if (c == '\\') {
            return "backslash";
        }

        if (c == '/' || p + 1 == end) {
            /* the segment [seg, last) just ended */
            u_char  *last = (c == '/') ? p : p + 1;

            if (last > seg && (last[-1] == '.' || last[-1] == ' ')
                && !(last - seg == 1 && seg[0] == '/')
                && !(last - seg == 2 && seg[0] == '/' && seg[1] == '.')
                && !(last - seg == 3 && seg[0] == '/' && seg[1] == '.'
                     && seg[2] == '.'))
            {
                return "segment ending in a dot or space";
            }

            if (c == '/') {
                seg = p;
            }
        }

        if (c < 0x80) {
            p++;
            continue;
        }

        /* strict UTF-8: shortest form, no surrogates, at most U+10FFFF */
        if (c >= 0xc2 && c <= 0xdf) {
            n = 1;
        } else if (c >= 0xe0 && c <= 0xef) {
            n = 2;
        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 3;
        } else {
            return "invalid or overlong UTF-8";
        }

        if ((size_t) (end - p) <= n) {
            return "invalid or overlong UTF-8";
        }

        for (k = 1; k <= n; k++) {
            if ((p[k] & 0xc0) != 0x80) {
                return "invalid or overlong UTF-8";
            }
        }

        if ((c == 0xe0 && p[1] < 0xa0) || (c == 0xed && p[1] > 0x9f)
            || (c == 0xf0 && p[1] < 0x90) || (c == 0xf4 && p[1] > 0x8f))
        {
            return "invalid or overlong UTF-8";
        }

        p += n + 1;
    }

    return NULL;
}


/*
 * $zt_uri: the path trustd decided on (nginx's normalized $uri: decoded,
 * dot segments resolved, slashes merged), percent-encoded again for a
 * request line.  proxy_pass http://app$zt_uri$is_args$args; makes the
 * application see exactly the path the policy judged, whatever encoding
 * tricks the client used - without it, proxy_pass with no URI part
 * forwards the client's original request line.
 */
static ngx_int_t
ngx_http_zt_uri_variable(ngx_http_request_t *r, ngx_http_variable_value_t *v,
    uintptr_t data)
{
    u_char     *p;
    uintptr_t   n;

    n = ngx_escape_uri(NULL, r->uri.data, r->uri.len, NGX_ESCAPE_URI);

    p = ngx_pnalloc(r->pool, r->uri.len + 2 * n);
    if (p == NULL) {
        return NGX_ERROR;
    }

    if (n) {
        ngx_escape_uri(p, r->uri.data, r->uri.len, NGX_ESCAPE_URI);
    } else {
        ngx_memcpy(p, r->uri.data, r->uri.len);
    }

    v->len = r->uri.len + 2 * n;
    v->data = p;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;

    return NGX_OK;
}


static ngx_int_t
ngx_http_zt_add_variables(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var, *v;

    for (v = ngx_http_zt_vars; v->name.len; v++) {
        var = ngx_http_add_variable(cf, &v->name, v->flags);
        if (var == NULL) {
            return NGX_ERROR;
        }

        var->get_handler = v->get_handler;
        var->data = v->data;
    }

    return NGX_OK;
}


static void *
ngx_http_zt_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_zt_main_conf_t  *zmcf;

    zmcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_zt_main_conf_t));
    if (zmcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     zmcf->trustd = NULL;
     *     zmcf->identity_headers = NULL;
     *     zmcf->channel = NULL;
     */

    zmcf->send_buffer = NGX_CONF_UNSET_SIZE;
    zmcf->backoff_max = NGX_CONF_UNSET_MSEC;

    return zmcf;
}


static char *
ngx_http_zt_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_zt_main_conf_t  *zmcf = conf;

    if (zmcf->session_cookie.data == NULL) {
        ngx_str_set(&zmcf->session_cookie, NGX_HTTP_ZT_DEFAULT_COOKIE);
    }

    ngx_conf_init_size_value(zmcf->send_buffer, 256 * 1024);
    ngx_conf_init_msec_value(zmcf->backoff_max, 1000);

    if (zmcf->send_buffer < WIRE_MAX_FRAME) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"zt_send_buffer\" must be at least %d",
                           WIRE_MAX_FRAME);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static void *
ngx_http_zt_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_zt_loc_conf_t  *zlcf;

    zlcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_zt_loc_conf_t));
    if (zlcf == NULL) {
        return NULL;
    }

    zlcf->enable = NGX_CONF_UNSET;
    zlcf->timeout = NGX_CONF_UNSET_MSEC;
    zlcf->fail_open = NGX_CONF_UNSET;
    zlcf->fail_status = NGX_CONF_UNSET_UINT;
    zlcf->cache = NGX_CONF_UNSET;
    zlcf->pass_cookie = NGX_CONF_UNSET;
    zlcf->strict_paths = NGX_CONF_UNSET;

    return zlcf;
}


static char *
ngx_http_zt_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_zt_loc_conf_t  *prev = parent;
    ngx_http_zt_loc_conf_t  *conf = child;

    ngx_http_zt_main_conf_t  *zmcf;

    ngx_conf_merge_value(conf->enable, prev->enable, 0);
    ngx_conf_merge_msec_value(conf->timeout, prev->timeout, 1000);
    ngx_conf_merge_value(conf->fail_open, prev->fail_open, 0);
    ngx_conf_merge_uint_value(conf->fail_status, prev->fail_status,
                              NGX_HTTP_SERVICE_UNAVAILABLE);
    ngx_conf_merge_value(conf->cache, prev->cache, 1);
    ngx_conf_merge_value(conf->pass_cookie, prev->pass_cookie, 0);
    ngx_conf_merge_value(conf->strict_paths, prev->strict_paths, 1);

    if (conf->enable) {
        zmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_zt_module);

        if (zmcf->trustd == NULL) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"zt on\" needs \"zt_trustd\" in the http "
                               "block");
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_zt_trustd(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_zt_main_conf_t  *zmcf = conf;

    ngx_str_t  *value;
    ngx_url_t   u;

    if (zmcf->trustd) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strncmp(value[1].data, "unix:", 5) != 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"zt_trustd\" must be a Unix socket "
                           "(\"unix:/path\"), not \"%V\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    ngx_memzero(&u, sizeof(ngx_url_t));
    u.url = value[1];
    u.no_resolve = 1;

    if (ngx_parse_url(cf->pool, &u) != NGX_OK) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid \"zt_trustd\" address \"%V\": %s",
                           &value[1], u.err ? u.err : "parse error");
        return NGX_CONF_ERROR;
    }

    zmcf->trustd = &u.addrs[0];

    if (ngx_http_zt_metrics_zone(cf, zmcf) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_zt_identity_header(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_zt_main_conf_t  *zmcf = conf;

    ngx_str_t   *value, *name;
    ngx_uint_t   i;

    if (zmcf->identity_headers == NULL) {
        zmcf->identity_headers = ngx_array_create(cf->pool, 4,
                                                  sizeof(ngx_str_t));
        if (zmcf->identity_headers == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {
        name = ngx_array_push(zmcf->identity_headers);
        if (name == NULL) {
            return NGX_CONF_ERROR;
        }

        *name = value[i];
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_zt_failure_status(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_zt_loc_conf_t  *zlcf = conf;

    ngx_int_t   n;
    ngx_str_t  *value;

    if (zlcf->fail_status != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;
    n = ngx_atoi(value[1].data, value[1].len);

    if (n < 400 || n > 599) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"zt_failure_status\" must be between 400 and "
                           "599, not \"%V\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    zlcf->fail_status = (ngx_uint_t) n;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_zt_init_process(ngx_cycle_t *cycle)
{
    ngx_http_zt_main_conf_t  *zmcf;

    zmcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_zt_module);

    if (zmcf != NULL) {
        ngx_http_zt_metrics_init_worker(zmcf->metrics, cycle->log);
    }

    return NGX_OK;
}


static void
ngx_http_zt_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_zt_main_conf_t  *zmcf;

    zmcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_zt_module);

    if (zmcf != NULL) {
        ngx_http_zt_channel_shutdown(zmcf);
        ngx_http_zt_metrics_exit_worker(zmcf->metrics);
    }
}


static ngx_int_t
ngx_http_zt_init(ngx_conf_t *cf)
{
    ngx_http_handler_pt        *h;
    ngx_http_core_main_conf_t  *cmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_ACCESS_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_zt_handler;

    return NGX_OK;
}
