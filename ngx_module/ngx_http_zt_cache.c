/*
 * The decision cache: decisions trustd allowed to be cached, shared by all
 * workers in a shared-memory zone (slab + rbtree + LRU queue, in the
 * shape of ngx_http_limit_req_module).
 *
 * Key: the device certificate fingerprint, the client address, host,
 * method, path and session token - everything a decision may depend on
 * that varies between requests within a TTL.  (The client address is in
 * the key so that a rule about source networks can never be answered from
 * another client's entry.)  Value: the decision, its status, reason and
 * upstream headers.  Lifetime: the TTL trustd returned, capped by
 * zt_cache_zone's max_ttl (default 2 s), which is therefore the longest a
 * revoked device or session can keep working.  A zero TTL is never stored.
 *
 * The zone's mutex is held only for lookups, copies and inserts, never
 * across I/O.  A full zone evicts the least recently used entries.
 */

#include "ngx_http_zt_module.h"


#define NGX_HTTP_ZT_CACHE_KEY_MAX   4096


typedef struct {
    ngx_rbtree_t                rbtree;
    ngx_rbtree_node_t           sentinel;
    ngx_queue_t                 lru;        /* most recently used first */
    ngx_atomic_uint_t           entries;
} ngx_http_zt_cache_sh_t;


struct ngx_http_zt_cache_s {
    ngx_http_zt_cache_sh_t     *sh;
    ngx_slab_pool_t            *shpool;
    ngx_msec_t                  max_ttl;
    ngx_http_zt_metrics_t      *metrics;
};


typedef struct {
    ngx_rbtree_node_t           node;       /* key: hash of the key */
    ngx_queue_t                 queue;
    ngx_msec_t                  expires;
    uint16_t                    key_len;
    uint32_t                    value_len;
    u_char                      data[1];    /* key, then value */
} ngx_http_zt_cache_node_t;


static ngx_int_t ngx_http_zt_cache_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static void ngx_http_zt_cache_rbtree_insert(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel);
static ngx_http_zt_cache_node_t *ngx_http_zt_cache_find(
    ngx_http_zt_cache_t *cache, ngx_str_t *key, uint32_t hash);
static void ngx_http_zt_cache_free_node(ngx_http_zt_cache_t *cache,
    ngx_http_zt_cache_node_t *cn);
static void ngx_http_zt_cache_expire(ngx_http_zt_cache_t *cache,
    ngx_uint_t n);
static size_t ngx_http_zt_cache_value_size(ngx_http_zt_ctx_t *ctx);
static u_char *ngx_http_zt_cache_put_str(u_char *p, ngx_str_t *s);
static u_char *ngx_http_zt_cache_get_str(u_char *p, u_char *end,
    ngx_str_t *s);
static void ngx_http_zt_cache_encode(ngx_http_zt_ctx_t *ctx, u_char *p);
static ngx_int_t ngx_http_zt_cache_decode(ngx_http_request_t *r,
    ngx_http_zt_ctx_t *ctx, u_char *p, u_char *end);


char *
ngx_http_zt_cache_zone(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_zt_main_conf_t  *zmcf = conf;

    ssize_t               size;
    ngx_str_t            *value, name, s;
    ngx_msec_t            max_ttl;
    ngx_uint_t            i;
    ngx_shm_zone_t       *shm_zone;
    ngx_http_zt_cache_t  *cache;

    if (zmcf->cache) {
        return "is duplicate";
    }

    value = cf->args->elts;

    size = ngx_parse_size(&value[1]);
    if (size == NGX_ERROR || size < (ssize_t) (8 * ngx_pagesize)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid zt_cache_zone size \"%V\" (at least "
                           "%uz)", &value[1], 8 * ngx_pagesize);
        return NGX_CONF_ERROR;
    }

    max_ttl = 2000;

    for (i = 2; i < cf->args->nelts; i++) {
        if (ngx_strncmp(value[i].data, "max_ttl=", 8) == 0) {
            s.data = value[i].data + 8;
            s.len = value[i].len - 8;
            max_ttl = ngx_parse_time(&s, 0);
            if (max_ttl == (ngx_msec_t) NGX_ERROR) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid max_ttl \"%V\"", &value[i]);
                return NGX_CONF_ERROR;
            }
            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\"", &value[i]);
        return NGX_CONF_ERROR;
    }

    cache = ngx_pcalloc(cf->pool, sizeof(ngx_http_zt_cache_t));
    if (cache == NULL) {
        return NGX_CONF_ERROR;
    }

    cache->max_ttl = max_ttl;

    if (ngx_http_zt_metrics_zone(cf, zmcf) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    cache->metrics = zmcf->metrics;

    ngx_str_set(&name, "zt_decisions");

    shm_zone = ngx_shared_memory_add(cf, &name, size, &ngx_http_zt_module);
    if (shm_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    shm_zone->init = ngx_http_zt_cache_init_zone;
    shm_zone->data = cache;

    zmcf->cache = cache;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_zt_cache_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_zt_cache_t  *ocache = data;

    size_t                len;
    ngx_http_zt_cache_t  *cache;

    cache = shm_zone->data;

    if (ocache) {
        /* reload: keep the entries of the running zone */
        cache->sh = ocache->sh;
        cache->shpool = ocache->shpool;
        return NGX_OK;
    }

    cache->shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shm_zone->shm.exists) {
        cache->sh = cache->shpool->data;
        return NGX_OK;
    }

    cache->sh = ngx_slab_alloc(cache->shpool,
                               sizeof(ngx_http_zt_cache_sh_t));
    if (cache->sh == NULL) {
        return NGX_ERROR;
    }

    cache->shpool->data = cache->sh;

    ngx_rbtree_init(&cache->sh->rbtree, &cache->sh->sentinel,
                    ngx_http_zt_cache_rbtree_insert);
    ngx_queue_init(&cache->sh->lru);

    len = sizeof(" in zt_cache_zone \"\"") + shm_zone->shm.name.len;

    cache->shpool->log_ctx = ngx_slab_alloc(cache->shpool, len);
    if (cache->shpool->log_ctx == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(cache->shpool->log_ctx, " in zt_cache_zone \"%V\"%Z",
                &shm_zone->shm.name);

    /* a full zone is normal here: entries are evicted, not an error */
    cache->shpool->log_nomem = 0;

    return NGX_OK;
}


static void
ngx_http_zt_cache_rbtree_insert(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel)
{
    ngx_rbtree_node_t  **p;

    for ( ;; ) {
        /* equal hashes go right; the key comparison is in find() */
        p = (node->key < temp->key) ? &temp->left : &temp->right;

        if (*p == sentinel) {
            break;
        }

        temp = *p;
    }

    *p = node;
    node->parent = temp;
    node->left = sentinel;
    node->right = sentinel;
    ngx_rbt_red(node);
}


/*
 * The cache key for this request, built in r->pool.  Returns NGX_DECLINED
 * when the request cannot be cached (key too long).
 */
ngx_int_t
ngx_http_zt_cache_key(ngx_http_request_t *r, const wire_req_t *req,
    ngx_str_t *key)
{
    u_char  *p;
    size_t   len;

    len = WIRE_FP_LEN + 1 + req->client_addr.len + 1 + req->host.len + 1
          + req->method.len + 1 + req->path.len + 1 + req->token.len;

    if (len > NGX_HTTP_ZT_CACHE_KEY_MAX) {
        return NGX_DECLINED;
    }

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    key->data = p;
    key->len = len;

    /* only a fingerprint nginx verified identifies a device */
    if (req->has_cert_fp && req->cert_verify == WIRE_CERT_SUCCESS) {
        p = ngx_cpymem(p, req->cert_fp, WIRE_FP_LEN);
    } else {
        ngx_memzero(p, WIRE_FP_LEN);
        p += WIRE_FP_LEN;
    }

    *p++ = '\0';
    p = ngx_cpymem(p, req->client_addr.data, req->client_addr.len);
    *p++ = '\0';
    p = ngx_cpymem(p, req->host.data, req->host.len);
    *p++ = '\0';
    p = ngx_cpymem(p, req->method.data, req->method.len);
    *p++ = '\0';
    p = ngx_cpymem(p, req->path.data, req->path.len);
    *p++ = '\0';
    ngx_memcpy(p, req->token.data, req->token.len);

    return NGX_OK;
}


static ngx_http_zt_cache_node_t *
ngx_http_zt_cache_find(ngx_http_zt_cache_t *cache, ngx_str_t *key,
    uint32_t hash)
{
    ngx_rbtree_node_t         *node, *sentinel;
    ngx_http_zt_cache_node_t  *cn;

    node = cache->sh->rbtree.root;
    sentinel = cache->sh->rbtree.sentinel;

    while (node != sentinel) {
        if (hash < node->key) {
            node = node->left;
            continue;
        }

        if (hash > node->key) {
            node = node->right;
            continue;
        }

        cn = (ngx_http_zt_cache_node_t *) node;

        if (cn->key_len == key->len
            && ngx_memcmp(cn->data, key->data, key->len) == 0)
        {
            return cn;
        }

        /* same hash, other key: equal hashes were inserted to the right */
        node = node->right;
    }

    return NULL;
}


static void
ngx_http_zt_cache_free_node(ngx_http_zt_cache_t *cache,
    ngx_http_zt_cache_node_t *cn)
{
    ngx_queue_remove(&cn->queue);
    ngx_rbtree_delete(&cache->sh->rbtree, &cn->node);
    ngx_slab_free_locked(cache->shpool, cn);
    cache->sh->entries--;
}


/* Drop up to n expired entries from the old end of the LRU queue. */
static void
ngx_http_zt_cache_expire(ngx_http_zt_cache_t *cache, ngx_uint_t n)
{
    ngx_queue_t               *q;
    ngx_http_zt_cache_node_t  *cn;

    while (n-- && !ngx_queue_empty(&cache->sh->lru)) {
        q = ngx_queue_last(&cache->sh->lru);
        cn = ngx_queue_data(q, ngx_http_zt_cache_node_t, queue);

        if ((ngx_msec_int_t) (cn->expires - ngx_current_msec) > 0) {
            return;
        }

        ngx_http_zt_cache_free_node(cache, cn);
        ngx_http_zt_metric_inc(cache->metrics, NGX_HTTP_ZT_M_CACHE_EXPIRED);
    }
}


ngx_int_t
ngx_http_zt_cache_lookup(ngx_http_request_t *r, ngx_http_zt_cache_t *cache,
    ngx_http_zt_ctx_t *ctx)
{
    size_t                     vlen;
    u_char                    *value;
    uint32_t                   hash;
    ngx_int_t                  rc;
    ngx_http_zt_cache_node_t  *cn;

    hash = ngx_murmur_hash2(ctx->cache_key.data, ctx->cache_key.len);

    ngx_shmtx_lock(&cache->shpool->mutex);

    cn = ngx_http_zt_cache_find(cache, &ctx->cache_key, hash);

    if (cn == NULL) {
        ngx_shmtx_unlock(&cache->shpool->mutex);
        ngx_http_zt_metric_inc(cache->metrics, NGX_HTTP_ZT_M_CACHE_MISS);
        return NGX_DECLINED;
    }

    if ((ngx_msec_int_t) (cn->expires - ngx_current_msec) <= 0) {
        ngx_http_zt_cache_free_node(cache, cn);
        ngx_shmtx_unlock(&cache->shpool->mutex);
        ngx_http_zt_metric_inc(cache->metrics, NGX_HTTP_ZT_M_CACHE_EXPIRED);
        ngx_http_zt_metric_inc(cache->metrics, NGX_HTTP_ZT_M_CACHE_MISS);
        return NGX_DECLINED;
    }

    ngx_queue_remove(&cn->queue);
    ngx_queue_insert_head(&cache->sh->lru, &cn->queue);

    /*
     * Copy out under the lock: the entry may go once it is released, so
     * nothing of it, its length included, is read afterwards.
     */
    vlen = cn->value_len;

    value = ngx_pnalloc(r->pool, vlen);
    if (value == NULL) {
        ngx_shmtx_unlock(&cache->shpool->mutex);
        return NGX_ERROR;
    }

    ngx_memcpy(value, cn->data + cn->key_len, vlen);

    ngx_shmtx_unlock(&cache->shpool->mutex);

    rc = ngx_http_zt_cache_decode(r, ctx, value, value + vlen);
    if (rc != NGX_OK) {
        return rc;
    }

    ngx_http_zt_metric_inc(cache->metrics, NGX_HTTP_ZT_M_CACHE_HIT);

    ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "zt: decision from the cache");

    return NGX_OK;
}


void
ngx_http_zt_cache_store(ngx_http_request_t *r, ngx_http_zt_cache_t *cache,
    ngx_http_zt_ctx_t *ctx)
{
    size_t                     vlen, size;
    uint32_t                   hash;
    ngx_msec_t                 ttl;
    ngx_http_zt_cache_node_t  *cn, *old;

    ttl = ngx_min(ctx->ttl, cache->max_ttl);

    if (ttl == 0 || ctx->cache_key.len == 0
        || (ctx->decision != WIRE_ALLOW && ctx->decision != WIRE_DENY))
    {
        return;
    }

    vlen = ngx_http_zt_cache_value_size(ctx);
    size = offsetof(ngx_http_zt_cache_node_t, data) + ctx->cache_key.len
           + vlen;
    hash = ngx_murmur_hash2(ctx->cache_key.data, ctx->cache_key.len);

    ngx_shmtx_lock(&cache->shpool->mutex);

    ngx_http_zt_cache_expire(cache, 2);

    cn = ngx_http_zt_cache_find(cache, &ctx->cache_key, hash);
    if (cn != NULL) {
        ngx_http_zt_cache_free_node(cache, cn);
    }

    cn = ngx_slab_alloc_locked(cache->shpool, size);

    /* full: evict the least recently used until it fits */
    while (cn == NULL && !ngx_queue_empty(&cache->sh->lru)) {
        old = ngx_queue_data(ngx_queue_last(&cache->sh->lru),
                             ngx_http_zt_cache_node_t, queue);

        ngx_http_zt_metric_inc(cache->metrics,
                               (ngx_msec_int_t) (old->expires
                                                 - ngx_current_msec) > 0
                               ? NGX_HTTP_ZT_M_CACHE_EVICTED
                               : NGX_HTTP_ZT_M_CACHE_EXPIRED);

        ngx_http_zt_cache_free_node(cache, old);
        cn = ngx_slab_alloc_locked(cache->shpool, size);
    }

    if (cn == NULL) {
        ngx_shmtx_unlock(&cache->shpool->mutex);
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "zt: a decision of %uz bytes does not fit in "
                      "zt_cache_zone even when emptied; not cached (raise "
                      "the zone's size)", size);
        return;
    }

    cn->node.key = hash;
    cn->expires = ngx_current_msec + ttl;
    cn->key_len = (uint16_t) ctx->cache_key.len;
    cn->value_len = (uint32_t) vlen;
    ngx_memcpy(cn->data, ctx->cache_key.data, ctx->cache_key.len);
    ngx_http_zt_cache_encode(ctx, cn->data + ctx->cache_key.len);

    ngx_rbtree_insert(&cache->sh->rbtree, &cn->node);
    ngx_queue_insert_head(&cache->sh->lru, &cn->queue);
    cache->sh->entries++;

    ngx_shmtx_unlock(&cache->shpool->mutex);

    ngx_http_zt_metric_inc(cache->metrics, NGX_HTTP_ZT_M_CACHE_STORED);
}


ngx_uint_t
ngx_http_zt_cache_entries(ngx_http_zt_cache_t *cache)
{
    /* one aligned word, written under the lock: a consistent read */
    return cache->sh->entries;
}


/*
 * The value: decision (1), status (2), reason (2 + n), header count (2),
 * then per header name (2 + n) and value (2 + n).  Lengths are bounded
 * by the wire protocol's frame size, so 16 bits hold them.
 */
static size_t
ngx_http_zt_cache_value_size(ngx_http_zt_ctx_t *ctx)
{
    size_t         len;
    ngx_uint_t     i;
    ngx_keyval_t  *kv;

    len = 1 + 2 + 2 + ctx->reason.len + 2;
    kv = ctx->headers.elts;

    for (i = 0; i < ctx->headers.nelts; i++) {
        len += 2 + kv[i].key.len + 2 + kv[i].value.len;
    }

    return len;
}


static u_char *
ngx_http_zt_cache_put_str(u_char *p, ngx_str_t *s)
{
    *p++ = (u_char) (s->len >> 8);
    *p++ = (u_char) s->len;
    return ngx_cpymem(p, s->data, s->len);
}


static void
ngx_http_zt_cache_encode(ngx_http_zt_ctx_t *ctx, u_char *p)
{
    ngx_uint_t     i;
    ngx_keyval_t  *kv;

    *p++ = (u_char) ctx->decision;
    *p++ = (u_char) (ctx->status >> 8);
    *p++ = (u_char) ctx->status;
    p = ngx_http_zt_cache_put_str(p, &ctx->reason);
    *p++ = (u_char) (ctx->headers.nelts >> 8);
    *p++ = (u_char) ctx->headers.nelts;

    kv = ctx->headers.elts;

    for (i = 0; i < ctx->headers.nelts; i++) {
        p = ngx_http_zt_cache_put_str(p, &kv[i].key);
        p = ngx_http_zt_cache_put_str(p, &kv[i].value);
    }
}


static u_char *
ngx_http_zt_cache_get_str(u_char *p, u_char *end, ngx_str_t *s)
{
    if (end - p < 2) {
        return NULL;
    }

    s->len = ((size_t) p[0] << 8) | p[1];
    p += 2;

    if ((size_t) (end - p) < s->len) {
        return NULL;
    }

    s->data = p;

    return p + s->len;
}


static ngx_int_t
ngx_http_zt_cache_decode(ngx_http_request_t *r, ngx_http_zt_ctx_t *ctx,
    u_char *p, u_char *end)
{
    ngx_uint_t     n, i;
    ngx_keyval_t  *kv;

    if (end - p < 3) {
        return NGX_ERROR;
    }

    ctx->decision = p[0];
    ctx->status = ((ngx_uint_t) p[1] << 8) | p[2];
    p += 3;

    p = ngx_http_zt_cache_get_str(p, end, &ctx->reason);
    if (p == NULL || end - p < 2) {
        return NGX_ERROR;
    }

    n = ((ngx_uint_t) p[0] << 8) | p[1];
    p += 2;

    if (ngx_array_init(&ctx->headers, r->pool, n ? n : 1,
                       sizeof(ngx_keyval_t))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    for (i = 0; i < n; i++) {
        kv = ngx_array_push(&ctx->headers);
        if (kv == NULL) {
            return NGX_ERROR;
        }

        p = ngx_http_zt_cache_get_str(p, end, &kv->key);
        if (p == NULL) {
            return NGX_ERROR;
        }

        p = ngx_http_zt_cache_get_str(p, end, &kv->value);
        if (p == NULL) {
            return NGX_ERROR;
        }
    }

    ctx->ttl = 0;
    ctx->state = NGX_HTTP_ZT_DONE;
    ctx->from_cache = 1;

    return NGX_OK;
}
