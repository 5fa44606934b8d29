/*
 * The per-worker decision channel to trustd.
 *
 * One Unix-socket connection per worker, opened on first use and kept
 * alive across requests.  Requests are encoded into a send buffer and
 * written as the socket allows; answers are read into a receive buffer,
 * split into frames and matched to waiting requests by id through an
 * rbtree, so many requests are in flight at once and answers may arrive
 * in any order.  Nothing here blocks: connect, send and receive are all
 * non-blocking and driven by nginx's event loop, in the shape of nginx's
 * OCSP stapling client.
 *
 * Failure handling, all fail-closed by the caller:
 *   - connect refused / socket missing: the request fails at once; the
 *     next attempt waits an exponential back-off (25 ms doubling up to
 *     zt_reconnect_backoff), so a dead trustd costs one connect() per
 *     back-off period, not one per request;
 *   - trustd closes, resets, or sends a malformed frame: the connection
 *     is closed and every request waiting on it fails at once;
 *   - no answer within zt_timeout: that request fails; if the connection
 *     has received nothing for that long it is presumed stalled and
 *     closed, so the next request reconnects.
 */

#include "ngx_http_zt_module.h"


#define NGX_HTTP_ZT_BACKOFF_MIN  25


struct ngx_http_zt_channel_s {
    ngx_peer_connection_t       peer;
    ngx_log_t                  *log;
    ngx_str_t                  *name;           /* "unix:/path", for logs */
    ngx_http_zt_metrics_t      *metrics;

    ngx_rbtree_t                pending;
    ngx_rbtree_node_t           sentinel;
    ngx_uint_t                  npending;
    uint32_t                    next_id;

    u_char                     *out;            /* send buffer */
    u_char                     *out_pos;        /* first unsent byte */
    u_char                     *out_last;
    u_char                     *out_end;

    u_char                     *in;             /* receive buffer */
    u_char                     *in_last;
    u_char                     *in_end;

    ngx_msec_t                  backoff;
    ngx_msec_t                  retry_at;
    ngx_msec_t                  last_recv;
    size_t                      received;       /* on this connection */

    unsigned                    reconnect:1;    /* lost or failed since */
};


static ngx_http_zt_channel_t *ngx_http_zt_channel_get(
    ngx_http_zt_main_conf_t *zmcf);
static ngx_int_t ngx_http_zt_channel_connect(ngx_http_zt_channel_t *ch,
    ngx_http_zt_main_conf_t *zmcf);
static void ngx_http_zt_channel_close(ngx_http_zt_channel_t *ch,
    const char *why);
static void ngx_http_zt_channel_refused(ngx_http_zt_channel_t *ch);
static ngx_int_t ngx_http_zt_channel_flush(ngx_http_zt_channel_t *ch);
static void ngx_http_zt_channel_read_handler(ngx_event_t *rev);
static void ngx_http_zt_channel_write_handler(ngx_event_t *wev);
static ngx_int_t ngx_http_zt_channel_process(ngx_http_zt_channel_t *ch);
static ngx_int_t ngx_http_zt_channel_complete(ngx_http_zt_channel_t *ch,
    ngx_http_zt_ctx_t *ctx, const wire_resp_t *resp);
static ngx_http_zt_ctx_t *ngx_http_zt_channel_lookup(
    ngx_http_zt_channel_t *ch, uint32_t id);
static void ngx_http_zt_channel_unlink(ngx_http_zt_ctx_t *ctx);
static void ngx_http_zt_channel_finish(ngx_http_zt_ctx_t *ctx,
    ngx_http_zt_state_e state, const char *failure);
static void ngx_http_zt_timeout_handler(ngx_event_t *ev);
static void ngx_http_zt_wake_handler(ngx_event_t *ev);
static ngx_int_t ngx_http_zt_copy_str(ngx_pool_t *pool, ngx_str_t *dst,
    const wire_str_t *src);


static ngx_http_zt_channel_t *
ngx_http_zt_channel_get(ngx_http_zt_main_conf_t *zmcf)
{
    ngx_http_zt_channel_t  *ch;

    if (zmcf->channel) {
        return zmcf->channel;
    }

    /*
     * Allocated once per worker from the cycle pool and reused across
     * reconnects, so the request path never allocates channel memory.
     */
    ch = ngx_pcalloc(ngx_cycle->pool, sizeof(ngx_http_zt_channel_t));
    if (ch == NULL) {
        return NULL;
    }

    ch->out = ngx_palloc(ngx_cycle->pool, zmcf->send_buffer);
    ch->in = ngx_palloc(ngx_cycle->pool, 2 * WIRE_MAX_FRAME);
    if (ch->out == NULL || ch->in == NULL) {
        return NULL;
    }

    ch->out_pos = ch->out;
    ch->out_last = ch->out;
    ch->out_end = ch->out + zmcf->send_buffer;
    ch->in_last = ch->in;
    ch->in_end = ch->in + 2 * WIRE_MAX_FRAME;
    ch->log = ngx_cycle->log;
    ch->name = &zmcf->trustd->name;
    ch->metrics = zmcf->metrics;
    ch->next_id = (uint32_t) ngx_random();

    ngx_rbtree_init(&ch->pending, &ch->sentinel, ngx_rbtree_insert_value);

    zmcf->channel = ch;

    return ch;
}


static ngx_int_t
ngx_http_zt_channel_connect(ngx_http_zt_channel_t *ch,
    ngx_http_zt_main_conf_t *zmcf)
{
    ngx_int_t          rc;
    ngx_connection_t  *c;

    ngx_memzero(&ch->peer, sizeof(ngx_peer_connection_t));

    ch->peer.sockaddr = zmcf->trustd->sockaddr;
    ch->peer.socklen = zmcf->trustd->socklen;
    ch->peer.name = &zmcf->trustd->name;
    ch->peer.get = ngx_event_get_peer;
    ch->peer.log = ch->log;
    ch->peer.log_error = NGX_ERROR_ERR;

    rc = ngx_event_connect_peer(&ch->peer);

    if (rc == NGX_ERROR || rc == NGX_BUSY || rc == NGX_DECLINED) {
        if (ch->peer.connection) {
            ngx_close_connection(ch->peer.connection);
            ch->peer.connection = NULL;
        }

        ch->backoff = ch->backoff ? ngx_min(ch->backoff * 2, zmcf->backoff_max)
                                  : NGX_HTTP_ZT_BACKOFF_MIN;
        ch->retry_at = ngx_current_msec + ch->backoff;
        ch->reconnect = 1;

        ngx_http_zt_metric_inc(ch->metrics,
                               NGX_HTTP_ZT_M_TRUSTD_CONNECT_ERROR);

        /* nginx logged connect()'s errno on the line before */
        ngx_log_error(NGX_LOG_ERR, ch->log, 0,
                      "zt: cannot connect to trustd at \"%V\" (%s); "
                      "requests fail at once until the next attempt in "
                      "%M ms", ch->name,
                      rc == NGX_DECLINED
                      ? "connect() failed, see above: is trustd running "
                        "and listening on this path?"
                      : "no free socket or connection in this worker, "
                        "see above",
                      ch->backoff);
        return NGX_ERROR;
    }

    /* NGX_OK or NGX_AGAIN: queued bytes go out when the socket is ready */

    c = ch->peer.connection;
    c->data = ch;
    c->read->handler = ngx_http_zt_channel_read_handler;
    c->write->handler = ngx_http_zt_channel_write_handler;
    c->log = ch->log;
    c->read->log = ch->log;
    c->write->log = ch->log;

    ch->last_recv = ngx_current_msec;
    ch->received = 0;
    ch->in_last = ch->in;
    ch->out_pos = ch->out;
    ch->out_last = ch->out;

    ngx_http_zt_metric_inc(ch->metrics, NGX_HTTP_ZT_M_TRUSTD_CONNECT);

    if (ch->reconnect) {
        ch->reconnect = 0;
        ngx_http_zt_metric_inc(ch->metrics, NGX_HTTP_ZT_M_TRUSTD_RECONNECT);
    }

    ngx_http_zt_worker_gauge(ch->metrics, connected, 1);

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, ch->log, 0,
                   "zt: connected to trustd at \"%V\", rc:%i", ch->name, rc);

    return NGX_OK;
}


ngx_int_t
ngx_http_zt_channel_send(ngx_http_zt_main_conf_t *zmcf,
    ngx_http_zt_ctx_t *ctx, const wire_req_t *req, ngx_msec_t timeout)
{
    int                     n;
    uint32_t                id;
    ngx_http_zt_channel_t  *ch;

    ch = ngx_http_zt_channel_get(zmcf);
    if (ch == NULL) {
        ctx->state = NGX_HTTP_ZT_FAILED;
        ctx->failure = "no memory for the trustd channel";
        return NGX_ERROR;
    }

    if (ch->peer.connection == NULL) {

        if (ch->retry_at && (ngx_msec_int_t) (ch->retry_at
                                              - ngx_current_msec) > 0)
        {
            ctx->state = NGX_HTTP_ZT_FAILED;
            ctx->failure = "trustd unreachable (waiting to reconnect)";
            return NGX_ERROR;
        }

        if (ngx_http_zt_channel_connect(ch, zmcf) != NGX_OK) {
            ctx->state = NGX_HTTP_ZT_FAILED;
            ctx->failure = "trustd unreachable";
            return NGX_ERROR;
        }
    }

    /* an id not in flight; with 2^32 ids a collision is only theoretical */
    do {
        id = ch->next_id++;
    } while (ngx_http_zt_channel_lookup(ch, id) != NULL);

    n = wire_encode_req(ch->out_last, ch->out_end, id, req);

    if (n == WIRE_ENOSPC && ch->out_pos != ch->out) {
        ch->out_last = ngx_movemem(ch->out, ch->out_pos,
                                   ch->out_last - ch->out_pos);
        ch->out_pos = ch->out;
        n = wire_encode_req(ch->out_last, ch->out_end, id, req);
    }

    if (n < 0) {
        ctx->state = NGX_HTTP_ZT_FAILED;
        ctx->failure = (n == WIRE_ENOSPC)
                       ? "trustd send queue full"
                       : "request too large for the decision protocol";
        return NGX_ERROR;
    }

    ch->out_last += n;

    ctx->node.key = id;
    ctx->channel = ch;
    ngx_rbtree_insert(&ch->pending, &ctx->node);
    ctx->pending = 1;
    ch->npending++;

    ngx_http_zt_metric_inc(ch->metrics, NGX_HTTP_ZT_M_TRUSTD_REQUEST);
    ngx_http_zt_worker_gauge(ch->metrics, in_flight, ch->npending);

    ctx->state = NGX_HTTP_ZT_WAITING;
    ctx->timeout = timeout;
    ctx->event.handler = ngx_http_zt_timeout_handler;
    ctx->event.data = ctx;
    ctx->event.log = ctx->request->connection->log;
    ngx_add_timer(&ctx->event, timeout);

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, ctx->request->connection->log, 0,
                   "zt: decision request id:%uD queued, in flight:%ui",
                   id, ch->npending);

    if (!ch->peer.connection->write->ready) {
        return NGX_OK;
    }

    if (ngx_http_zt_channel_flush(ch) != NGX_OK) {
        /* close() failed every pending request, this one included */
        return NGX_OK;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_zt_channel_flush(ngx_http_zt_channel_t *ch)
{
    ssize_t            n;
    ngx_connection_t  *c;

    c = ch->peer.connection;

    while (ch->out_pos < ch->out_last) {
        n = c->send(c, ch->out_pos, ch->out_last - ch->out_pos);

        if (n == NGX_AGAIN) {
            break;
        }

        if (n == NGX_ERROR) {
            ngx_http_zt_channel_refused(ch);
            ngx_http_zt_channel_close(ch, "send to trustd failed");
            return NGX_ERROR;
        }

        ch->out_pos += n;
    }

    if (ch->out_pos == ch->out_last) {
        ch->out_pos = ch->out;
        ch->out_last = ch->out;
    }

    if (ngx_handle_write_event(c->write, 0) != NGX_OK) {
        ngx_http_zt_channel_close(ch, "cannot arm write event");
        return NGX_ERROR;
    }

    return NGX_OK;
}


static void
ngx_http_zt_channel_write_handler(ngx_event_t *wev)
{
    ngx_connection_t       *c;
    ngx_http_zt_channel_t  *ch;

    c = wev->data;
    ch = c->data;

    ngx_log_debug0(NGX_LOG_DEBUG_HTTP, ch->log, 0, "zt: channel writable");

    (void) ngx_http_zt_channel_flush(ch);
}


static void
ngx_http_zt_channel_read_handler(ngx_event_t *rev)
{
    ssize_t                 n;
    ngx_connection_t       *c;
    ngx_http_zt_channel_t  *ch;

    c = rev->data;
    ch = c->data;

    for ( ;; ) {

        if (ch->in_last == ch->in_end) {
            /* cannot happen: a whole frame always fits, and process()
             * consumes every complete frame before we read again */
            ngx_http_zt_channel_close(ch, "receive buffer overflow");
            return;
        }

        n = c->recv(c, ch->in_last, ch->in_end - ch->in_last);

        if (n == NGX_AGAIN) {
            break;
        }

        if (n == 0) {
            ngx_http_zt_channel_refused(ch);
            ngx_http_zt_channel_close(ch, "trustd closed the connection");
            return;
        }

        if (n == NGX_ERROR) {
            ngx_http_zt_channel_refused(ch);
            ngx_http_zt_channel_close(ch, "receive from trustd failed");
            return;
        }

        ch->in_last += n;
        ch->received += n;
        ch->last_recv = ngx_current_msec;
        ch->backoff = 0;

        if (ngx_http_zt_channel_process(ch) != NGX_OK) {
            return;
        }
    }

    if (ngx_handle_read_event(rev, 0) != NGX_OK) {
        ngx_http_zt_channel_close(ch, "cannot arm read event");
    }
}


static ngx_int_t
ngx_http_zt_channel_process(ngx_http_zt_channel_t *ch)
{
    int                 rc;
    u_char             *p;
    wire_frame_t        frame;
    wire_resp_t         resp;
    ngx_http_zt_ctx_t  *ctx;

    p = ch->in;

    for ( ;; ) {
        rc = wire_frame_peek(p, ch->in_last, &frame);

        if (rc == WIRE_AGAIN) {
            break;
        }

        if (rc == WIRE_OK) {
            rc = wire_decode_resp(&frame, &resp);
        }

        if (rc != WIRE_OK) {
            ngx_http_zt_metric_inc(ch->metrics,
                                   NGX_HTTP_ZT_M_TRUSTD_PROTOCOL_ERROR);
            ngx_log_error(NGX_LOG_ERR, ch->log, 0,
                          "zt: invalid answer from trustd at \"%V\": %s "
                          "(are the module and trustd the same version?)",
                          ch->name, wire_strerror(rc));
            ngx_http_zt_channel_close(ch, "protocol error");
            return NGX_ERROR;
        }

        p += frame.frame_len;

        ctx = ngx_http_zt_channel_lookup(ch, frame.id);

        if (ctx == NULL) {
            /* the request timed out or went away; its answer is moot */
            ngx_log_debug1(NGX_LOG_DEBUG_HTTP, ch->log, 0,
                           "zt: answer for unknown id:%uD dropped", frame.id);
            continue;
        }

        if (ngx_http_zt_channel_complete(ch, ctx, &resp) != NGX_OK) {
            ngx_http_zt_channel_finish(ctx, NGX_HTTP_ZT_FAILED,
                                       "no memory for the answer");
        }
    }

    if (p != ch->in) {
        ch->in_last = ngx_movemem(ch->in, p, ch->in_last - p);
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_zt_channel_complete(ngx_http_zt_channel_t *ch,
    ngx_http_zt_ctx_t *ctx, const wire_resp_t *resp)
{
    unsigned     i;
    ngx_pool_t  *pool;
    ngx_keyval_t *kv;

    pool = ctx->request->pool;

    ctx->decision = resp->decision;
    ctx->status = resp->status;
    ctx->ttl = resp->ttl_ms;
    ctx->reason_code = resp->reason_code;

    if (ngx_http_zt_copy_str(pool, &ctx->reason, &resp->reason) != NGX_OK
        || ngx_http_zt_copy_str(pool, &ctx->redirect, &resp->redirect)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (ngx_array_init(&ctx->headers, pool, resp->nheaders ? resp->nheaders
                                                           : 1,
                       sizeof(ngx_keyval_t))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    for (i = 0; i < resp->nheaders; i++) {
        kv = ngx_array_push(&ctx->headers);
        if (kv == NULL
            || ngx_http_zt_copy_str(pool, &kv->key, &resp->headers[i].name)
               != NGX_OK
            || ngx_http_zt_copy_str(pool, &kv->value,
                                    &resp->headers[i].value)
               != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, ch->log, 0,
                   "zt: answer id:%uD decision:%s status:%ui",
                   (uint32_t) ctx->node.key,
                   wire_decision_name(resp->decision), ctx->status);

    ngx_http_zt_channel_finish(ctx, NGX_HTTP_ZT_DONE, NULL);

    return NGX_OK;
}


static ngx_int_t
ngx_http_zt_copy_str(ngx_pool_t *pool, ngx_str_t *dst, const wire_str_t *src)
{
    dst->len = src->len;

    if (src->len == 0) {
        dst->data = NULL;
        return NGX_OK;
    }

    dst->data = ngx_pnalloc(pool, src->len);
    if (dst->data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(dst->data, src->data, src->len);

    return NGX_OK;
}


static ngx_http_zt_ctx_t *
ngx_http_zt_channel_lookup(ngx_http_zt_channel_t *ch, uint32_t id)
{
    ngx_rbtree_node_t  *node, *sentinel;

    node = ch->pending.root;
    sentinel = ch->pending.sentinel;

    while (node != sentinel) {
        if (id < node->key) {
            node = node->left;
            continue;
        }

        if (id > node->key) {
            node = node->right;
            continue;
        }

        /* node is the first member of the ctx */
        return (ngx_http_zt_ctx_t *) node;
    }

    return NULL;
}


static void
ngx_http_zt_channel_unlink(ngx_http_zt_ctx_t *ctx)
{
    if (ctx->pending) {
        ngx_rbtree_delete(&ctx->channel->pending, &ctx->node);
        ctx->channel->npending--;
        ctx->pending = 0;

        ngx_http_zt_worker_gauge(ctx->channel->metrics, in_flight,
                                 ctx->channel->npending);
    }

    if (ctx->event.timer_set) {
        ngx_del_timer(&ctx->event);
    }
}


/*
 * Settle a waiting request and wake it.  The wake-up is a posted event,
 * not a direct call: the request may finalize and free its pool, and the
 * channel must not be re-entered while it is walking its own buffers.
 */
static void
ngx_http_zt_channel_finish(ngx_http_zt_ctx_t *ctx, ngx_http_zt_state_e state,
    const char *failure)
{
    ngx_http_zt_channel_unlink(ctx);

    ctx->state = state;
    ctx->failure = failure;

    ctx->event.handler = ngx_http_zt_wake_handler;
    ngx_post_event(&ctx->event, &ngx_posted_events);
}


/*
 * A connection that trustd drops before it answered anything: what trustd
 * does to a peer whose uid is not in its peer_user (the close resets the
 * connection when our request is still unread, so send and receive errors
 * count too).  Say so, with the uid to add.
 */
static void
ngx_http_zt_channel_refused(ngx_http_zt_channel_t *ch)
{
    if (ch->received != 0) {
        return;
    }

    ngx_log_error(NGX_LOG_ERR, ch->log, 0,
                  "zt: trustd at \"%V\" closed a new connection before "
                  "answering; if this repeats, check that nginx's worker "
                  "user (uid %d) is in trustd's peer_user",
                  ch->name, (int) geteuid());
}


static void
ngx_http_zt_channel_close(ngx_http_zt_channel_t *ch, const char *why)
{
    ngx_rbtree_node_t  *node;
    ngx_http_zt_ctx_t  *ctx;

    ngx_http_zt_metric_inc(ch->metrics, NGX_HTTP_ZT_M_TRUSTD_DISCONNECT);
    ngx_http_zt_worker_gauge(ch->metrics, connected, 0);
    ch->reconnect = 1;

    ngx_log_error(NGX_LOG_ERR, ch->log, 0,
                  "zt: connection to trustd at \"%V\" lost (%s); %ui "
                  "request(s) in flight fail, the next request reconnects",
                  ch->name, why, ch->npending);

    if (ch->peer.connection) {
        ngx_close_connection(ch->peer.connection);
        ch->peer.connection = NULL;
    }

    ch->in_last = ch->in;
    ch->out_pos = ch->out;
    ch->out_last = ch->out;

    while (ch->pending.root != ch->pending.sentinel) {
        node = ngx_rbtree_min(ch->pending.root, ch->pending.sentinel);
        ctx = (ngx_http_zt_ctx_t *) node;
        ngx_http_zt_channel_finish(ctx, NGX_HTTP_ZT_FAILED, why);
    }
}


static void
ngx_http_zt_timeout_handler(ngx_event_t *ev)
{
    ngx_http_zt_ctx_t      *ctx;
    ngx_http_zt_channel_t  *ch;
    ngx_http_request_t     *r;

    ctx = ev->data;
    ch = ctx->channel;
    r = ctx->request;

    ngx_http_zt_metric_inc(ch->metrics, NGX_HTTP_ZT_M_TRUSTD_TIMEOUT);

    ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                  "zt: trustd did not answer in time: no answer from "
                  "\"%V\" within zt_timeout %M ms", ch->name, ctx->timeout);

    ctx->event.timedout = 0;
    ngx_http_zt_channel_finish(ctx, NGX_HTTP_ZT_FAILED,
                               "trustd timed out");

    /*
     * Nothing received for a whole timeout while requests wait: trustd is
     * stalled.  Drop the connection so that every other waiting request
     * fails now instead of one timeout at a time, and the next request
     * starts afresh.
     */
    if (ch->peer.connection
        && ch->npending > 0
        && ngx_current_msec - ch->last_recv >= ctx->timeout)
    {
        ngx_http_zt_metric_inc(ch->metrics, NGX_HTTP_ZT_M_TRUSTD_STALL);
        ngx_http_zt_channel_close(ch, "trustd stalled");
    }
}


static void
ngx_http_zt_wake_handler(ngx_event_t *ev)
{
    ngx_connection_t    *c;
    ngx_http_request_t  *r;
    ngx_http_zt_ctx_t   *ctx;

    ctx = ev->data;
    r = ctx->request;
    c = r->connection;

    ngx_http_set_log_request(c->log, r);

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, c->log, 0,
                   "zt: wake request, state:%d", (int) ctx->state);

    r->write_event_handler(r);
    ngx_http_run_posted_requests(c);
}


void
ngx_http_zt_channel_cancel(ngx_http_zt_ctx_t *ctx)
{
    ngx_http_zt_channel_unlink(ctx);

    if (ctx->event.posted) {
        ngx_delete_posted_event(&ctx->event);
    }
}


void
ngx_http_zt_channel_shutdown(ngx_http_zt_main_conf_t *zmcf)
{
    ngx_http_zt_channel_t  *ch;

    ch = zmcf->channel;

    if (ch == NULL || ch->peer.connection == NULL) {
        return;
    }

    /* nothing can wait on it now: the worker has no requests left */
    ngx_close_connection(ch->peer.connection);
    ch->peer.connection = NULL;

    ngx_http_zt_worker_gauge(ch->metrics, connected, 0);
}
