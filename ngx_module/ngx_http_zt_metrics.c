/*
 * The module's metrics, in Prometheus' text format (version 0.0.4).
 *
 * Counters live in one shared-memory zone, "zt_metrics", declared by the
 * first directive that puts the module to use, so that every worker's
 * counts add up and survive "nginx -s reload" (the zone is reused when its
 * layout is unchanged).  The request path only ever does an atomic add on
 * a counter - no lock, no allocation.
 *
 * Gauges that describe one worker's channel (connected to trustd or not,
 * requests waiting for an answer) would drift in a shared counter if a
 * worker died with requests in flight, so each worker owns a slot in the
 * zone instead: it claims one at start, writes only its own, releases it
 * at exit; the reader sums the slots and frees those of processes that no
 * longer exist.
 *
 * "zt_metrics;" makes a location print them.  It is an ordinary content
 * handler: whether zt checks the location is the administrator's choice
 * ("zt off" plus allow/deny, or zt policy), like any other location.
 */

#include "ngx_http_zt_module.h"


/* bump when the counters or the slot layout change */
#define NGX_HTTP_ZT_METRICS_VERSION     1
#define NGX_HTTP_ZT_METRICS_LAYOUT                                          \
    ((NGX_HTTP_ZT_METRICS_VERSION << 24)                                    \
     ^ (ngx_uint_t) sizeof(ngx_http_zt_metrics_sh_t))

/* worker processes that can report gauges at once (old ones included) */
#define NGX_HTTP_ZT_METRICS_WORKERS     256

/* gauges, after the counters */
#define NGX_HTTP_ZT_G_CACHE_ENTRIES     (NGX_HTTP_ZT_M_NCOUNTERS + 0)
#define NGX_HTTP_ZT_G_CONNECTIONS       (NGX_HTTP_ZT_M_NCOUNTERS + 1)
#define NGX_HTTP_ZT_G_IN_FLIGHT         (NGX_HTTP_ZT_M_NCOUNTERS + 2)
#define NGX_HTTP_ZT_G_N                 (NGX_HTTP_ZT_M_NCOUNTERS + 3)


struct ngx_http_zt_metrics_sh_s {
    ngx_uint_t                      layout;     /* stays the first field */
    ngx_atomic_t                    counter[NGX_HTTP_ZT_M_NCOUNTERS];
    ngx_http_zt_worker_metrics_t    worker[NGX_HTTP_ZT_METRICS_WORKERS];
};


/*
 * One sample.  The first sample of a family carries its HELP and TYPE;
 * the samples of a family follow each other.
 */
typedef struct {
    const char                     *name;
    const char                     *labels;
    ngx_uint_t                      value;      /* NGX_HTTP_ZT_M_* or _G_* */
    const char                     *type;       /* NULL: not the first */
    const char                     *help;
} ngx_http_zt_metric_def_t;


static ngx_int_t ngx_http_zt_metrics_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static ngx_int_t ngx_http_zt_metrics_handler(ngx_http_request_t *r);
static void ngx_http_zt_metrics_gauges(ngx_http_zt_main_conf_t *zmcf,
    ngx_atomic_uint_t *values);
static ngx_int_t ngx_http_zt_metrics_gone(ngx_atomic_uint_t pid);


static ngx_http_zt_metric_def_t  ngx_http_zt_metric_defs[] = {

    { "ztgate_module_requests_total", "{decision=\"allow\"}",
      NGX_HTTP_ZT_M_ALLOW, "counter",
      "Requests the module checked, by decision (error: no decision from "
      "trustd, answered by zt_failure_mode)." },
    { "ztgate_module_requests_total", "{decision=\"deny\"}",
      NGX_HTTP_ZT_M_DENY, NULL, NULL },
    { "ztgate_module_requests_total", "{decision=\"login\"}",
      NGX_HTTP_ZT_M_LOGIN, NULL, NULL },
    { "ztgate_module_requests_total", "{decision=\"stepup\"}",
      NGX_HTTP_ZT_M_STEP_UP, NULL, NULL },
    { "ztgate_module_requests_total", "{decision=\"error\"}",
      NGX_HTTP_ZT_M_ERROR, NULL, NULL },

    { "ztgate_module_failure_mode_total", "{mode=\"closed\"}",
      NGX_HTTP_ZT_M_FAIL_CLOSED, "counter",
      "Requests answered by zt_failure_mode because no decision could be "
      "had from trustd, by mode." },
    { "ztgate_module_failure_mode_total", "{mode=\"open\"}",
      NGX_HTTP_ZT_M_FAIL_OPEN, NULL, NULL },

    { "ztgate_module_ambiguous_paths_total", "",
      NGX_HTTP_ZT_M_AMBIGUOUS_PATH, "counter",
      "Requests refused with 400 by zt_strict_paths before asking trustd." },

    { "ztgate_module_cache_hits_total", "",
      NGX_HTTP_ZT_M_CACHE_HIT, "counter",
      "Decisions served from the decision cache." },

    { "ztgate_module_cache_misses_total", "",
      NGX_HTTP_ZT_M_CACHE_MISS, "counter",
      "Decision cache lookups that found no live entry (expired entries "
      "included)." },

    { "ztgate_module_cache_expired_total", "",
      NGX_HTTP_ZT_M_CACHE_EXPIRED, "counter",
      "Decision cache entries dropped because their TTL had run out." },

    { "ztgate_module_cache_evictions_total", "",
      NGX_HTTP_ZT_M_CACHE_EVICTED, "counter",
      "Live decision cache entries evicted, least recently used first, to "
      "make room in a full zone." },

    { "ztgate_module_cache_stores_total", "",
      NGX_HTTP_ZT_M_CACHE_STORED, "counter",
      "Decisions stored in the decision cache." },

    { "ztgate_module_cache_entries", "",
      NGX_HTTP_ZT_G_CACHE_ENTRIES, "gauge",
      "Decisions in the decision cache now." },

    { "ztgate_module_trustd_requests_total", "",
      NGX_HTTP_ZT_M_TRUSTD_REQUEST, "counter",
      "Decision requests sent to trustd." },

    { "ztgate_module_trustd_requests_in_flight", "",
      NGX_HTTP_ZT_G_IN_FLIGHT, "gauge",
      "Decision requests waiting for trustd's answer now." },

    { "ztgate_module_trustd_connections", "",
      NGX_HTTP_ZT_G_CONNECTIONS, "gauge",
      "Worker connections to trustd open now." },

    { "ztgate_module_trustd_connects_total", "",
      NGX_HTTP_ZT_M_TRUSTD_CONNECT, "counter",
      "Connections to trustd opened." },

    { "ztgate_module_trustd_connect_errors_total", "",
      NGX_HTTP_ZT_M_TRUSTD_CONNECT_ERROR, "counter",
      "Connection attempts to trustd that failed (socket missing, "
      "connection refused)." },

    { "ztgate_module_trustd_reconnects_total", "",
      NGX_HTTP_ZT_M_TRUSTD_RECONNECT, "counter",
      "Connections to trustd opened again after a lost connection or a "
      "failed attempt." },

    { "ztgate_module_trustd_disconnects_total", "",
      NGX_HTTP_ZT_M_TRUSTD_DISCONNECT, "counter",
      "Connections to trustd closed on an error (closed by trustd, I/O "
      "error, protocol error, stall)." },

    { "ztgate_module_trustd_timeouts_total", "",
      NGX_HTTP_ZT_M_TRUSTD_TIMEOUT, "counter",
      "Decision requests trustd did not answer within zt_timeout." },

    { "ztgate_module_trustd_stalls_total", "",
      NGX_HTTP_ZT_M_TRUSTD_STALL, "counter",
      "Connections to trustd closed because nothing arrived for a whole "
      "zt_timeout while requests waited." },

    { "ztgate_module_trustd_protocol_errors_total", "",
      NGX_HTTP_ZT_M_TRUSTD_PROTOCOL_ERROR, "counter",
      "Malformed answers from trustd (each closes the connection)." },

    { NULL, NULL, 0, NULL, NULL }
};


ngx_int_t
ngx_http_zt_metrics_zone(ngx_conf_t *cf, ngx_http_zt_main_conf_t *zmcf)
{
    size_t                  size;
    ngx_str_t               name;
    ngx_shm_zone_t         *shm_zone;
    ngx_http_zt_metrics_t  *m;

    if (zmcf->metrics) {
        return NGX_OK;
    }

    ngx_str_set(&name, "zt_metrics");

    /*
     * A fixed size, so that a reload finds and reuses the zone; room for
     * the slab allocator's own pages and for a second block of counters
     * (see init_zone).
     */
    size = 8 * ngx_pagesize
           + 2 * ngx_align(sizeof(ngx_http_zt_metrics_sh_t), ngx_pagesize);

    shm_zone = ngx_shared_memory_add(cf, &name, size, &ngx_http_zt_module);
    if (shm_zone == NULL) {
        return NGX_ERROR;
    }

    if (shm_zone->data == NULL) {
        m = ngx_pcalloc(cf->pool, sizeof(ngx_http_zt_metrics_t));
        if (m == NULL) {
            return NGX_ERROR;
        }

        m->zone = shm_zone;
        shm_zone->init = ngx_http_zt_metrics_init_zone;
        shm_zone->data = m;
    }

    /* another http block declared it first: share its counters */
    zmcf->metrics = shm_zone->data;

    return NGX_OK;
}


static ngx_int_t
ngx_http_zt_metrics_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    size_t                     len;
    ngx_slab_pool_t           *shpool;
    ngx_http_zt_metrics_t     *m;
    ngx_http_zt_metrics_sh_t  *sh;

    m = shm_zone->data;
    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;
    m->shpool = shpool;

    if (data || shm_zone->shm.exists) {
        /*
         * Reload: keep counting where the running workers are.  The old
         * cycle's structures may come from another build of the module,
         * so look only at the zone itself.
         */
        sh = shpool->data;

        if (sh != NULL && sh->layout == NGX_HTTP_ZT_METRICS_LAYOUT) {
            m->sh = sh;
            m->counter = sh->counter;
            return NGX_OK;
        }

        /*
         * Another layout (a module built from other sources under a new
         * path): start again from zero in a new block.  The old one is
         * left alone, as old workers still write to it until they exit.
         */
    }

    sh = ngx_slab_calloc(shpool, sizeof(ngx_http_zt_metrics_sh_t));
    if (sh == NULL) {
        return NGX_ERROR;
    }

    sh->layout = NGX_HTTP_ZT_METRICS_LAYOUT;
    shpool->data = sh;

    m->sh = sh;
    m->counter = sh->counter;

    /* ngx_slab_init() points log_ctx at an empty string */
    if (shpool->log_ctx == &shpool->zero) {
        len = sizeof(" in zt_metrics zone \"\"") + shm_zone->shm.name.len;

        shpool->log_ctx = ngx_slab_alloc(shpool, len);
        /* ngx_slab_init() points log_ctx at an empty string */
    if (shpool->log_ctx == &shpool->zero) {
            return NGX_ERROR;
        }

        ngx_sprintf(shpool->log_ctx, " in zt_metrics zone \"%V\"%Z",
                    &shm_zone->shm.name);
    }

    return NGX_OK;
}


void
ngx_http_zt_metrics_init_worker(ngx_http_zt_metrics_t *m, ngx_log_t *log)
{
    ngx_uint_t                     i, pass;
    ngx_atomic_uint_t              pid;
    ngx_http_zt_worker_metrics_t  *w;

    if (m == NULL || m->sh == NULL
        || (ngx_process != NGX_PROCESS_WORKER
            && ngx_process != NGX_PROCESS_SINGLE))
    {
        return;
    }

    /* first a free slot, then one of a process that died without exiting */
    for (pass = 0; pass < 2; pass++) {
        for (i = 0; i < NGX_HTTP_ZT_METRICS_WORKERS; i++) {
            w = &m->sh->worker[i];
            pid = w->pid;

            if (pass == 0 ? pid != 0 : !ngx_http_zt_metrics_gone(pid)) {
                continue;
            }

            if (ngx_atomic_cmp_set(&w->pid, pid, (ngx_atomic_uint_t) ngx_pid))
            {
                w->connected = 0;
                w->in_flight = 0;
                m->worker = w;
                return;
            }
        }
    }

    ngx_log_error(NGX_LOG_WARN, log, 0,
                  "zt: the zt_metrics zone has no free worker slot (%d "
                  "processes at most): this worker's trustd connection and "
                  "in-flight gauges are not reported; its counters are",
                  NGX_HTTP_ZT_METRICS_WORKERS);
}


void
ngx_http_zt_metrics_exit_worker(ngx_http_zt_metrics_t *m)
{
    ngx_http_zt_worker_metrics_t  *w;

    if (m == NULL || m->worker == NULL) {
        return;
    }

    w = m->worker;
    m->worker = NULL;

    w->connected = 0;
    w->in_flight = 0;
    (void) ngx_atomic_cmp_set(&w->pid, (ngx_atomic_uint_t) ngx_pid, 0);
}


/* Whether the process that claimed a slot no longer exists. */
static ngx_int_t
ngx_http_zt_metrics_gone(ngx_atomic_uint_t pid)
{
    if (pid == 0 || pid == (ngx_atomic_uint_t) ngx_pid) {
        return 0;
    }

    return kill((ngx_pid_t) pid, 0) == -1 && ngx_errno == NGX_ESRCH;
}


static void
ngx_http_zt_metrics_gauges(ngx_http_zt_main_conf_t *zmcf,
    ngx_atomic_uint_t *values)
{
    ngx_uint_t                     i;
    ngx_atomic_uint_t              pid;
    ngx_http_zt_metrics_t         *m;
    ngx_http_zt_worker_metrics_t  *w;

    m = zmcf->metrics;

    values[NGX_HTTP_ZT_G_CACHE_ENTRIES] = zmcf->cache
        ? ngx_http_zt_cache_entries(zmcf->cache) : 0;
    values[NGX_HTTP_ZT_G_CONNECTIONS] = 0;
    values[NGX_HTTP_ZT_G_IN_FLIGHT] = 0;

    for (i = 0; i < NGX_HTTP_ZT_METRICS_WORKERS; i++) {
        w = &m->sh->worker[i];
        pid = w->pid;

        if (pid == 0) {
            continue;
        }

        if (ngx_http_zt_metrics_gone(pid)) {
            /* a worker that crashed: its gauges mean nothing now */
            (void) ngx_atomic_cmp_set(&w->pid, pid, 0);
            continue;
        }

        values[NGX_HTTP_ZT_G_CONNECTIONS] += w->connected;
        values[NGX_HTTP_ZT_G_IN_FLIGHT] += w->in_flight;
    }
}


char *
ngx_http_zt_metrics(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_core_loc_conf_t  *clcf;
    ngx_http_zt_main_conf_t   *zmcf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    if (clcf->handler != NULL) {
        return "is duplicate or conflicts with another content handler";
    }

    clcf->handler = ngx_http_zt_metrics_handler;

    zmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_zt_module);

    if (ngx_http_zt_metrics_zone(cf, zmcf) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_zt_metrics_handler(ngx_http_request_t *r)
{
    size_t                     len;
    ngx_int_t                  rc;
    ngx_uint_t                 i;
    ngx_buf_t                 *b;
    ngx_chain_t                out;
    ngx_atomic_uint_t          values[NGX_HTTP_ZT_G_N];
    ngx_http_zt_metrics_t     *m;
    ngx_http_zt_main_conf_t   *zmcf;
    ngx_http_zt_metric_def_t  *d;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    zmcf = ngx_http_get_module_main_conf(r, ngx_http_zt_module);
    m = zmcf->metrics;

    if (m == NULL || m->sh == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* each counter read once: the length below does not depend on them */
    for (i = 0; i < NGX_HTTP_ZT_M_NCOUNTERS; i++) {
        values[i] = m->counter[i];
    }

    ngx_http_zt_metrics_gauges(zmcf, values);

    len = 0;

    for (d = ngx_http_zt_metric_defs; d->name; d++) {
        if (d->type) {
            len += sizeof("# HELP  \n# TYPE  \n") - 1
                   + 2 * ngx_strlen(d->name) + ngx_strlen(d->help)
                   + ngx_strlen(d->type);
        }

        len += ngx_strlen(d->name) + ngx_strlen(d->labels)
               + sizeof(" \n") - 1 + NGX_ATOMIC_T_LEN;
    }

    b = ngx_create_temp_buf(r->pool, len);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    for (d = ngx_http_zt_metric_defs; d->name; d++) {
        if (d->type) {
            b->last = ngx_sprintf(b->last, "# HELP %s %s\n# TYPE %s %s\n",
                                  d->name, d->help, d->name, d->type);
        }

        b->last = ngx_sprintf(b->last, "%s%s %uA\n",
                              d->name, d->labels, values[d->value]);
    }

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_length_n = b->last - b->pos;
    ngx_str_set(&r->headers_out.content_type, "text/plain; version=0.0.4");
    r->headers_out.content_type_len = sizeof("text/plain") - 1;
    r->headers_out.content_type_lowcase = NULL;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}
