/*
 * The decision.  See decide.h.
 */

#include <string.h>
#include <time.h>

#include "decide.h"
#include "log.h"


static void decide_set(wire_resp_t *resp, uint8_t decision, uint16_t status,
    uint16_t reason_code, const char *reason);
static void decide_header(wire_resp_t *resp, const char *name,
    const char *value);
static void decide_log(const wire_req_t *req, const wire_resp_t *resp);


static void
decide_set(wire_resp_t *resp, uint8_t decision, uint16_t status,
    uint16_t reason_code, const char *reason)
{
    memset(resp, 0, sizeof(*resp));
    resp->decision = decision;
    resp->status = status;
    resp->ttl_ms = 0;
    resp->reason_code = reason_code;
    resp->reason.data = reason;
    resp->reason.len = strlen(reason);
}


static void
decide_header(wire_resp_t *resp, const char *name, const char *value)
{
    wire_hdr_t  *h;

    if (resp->nheaders == WIRE_MAX_HEADERS) {
        return;
    }

    h = &resp->headers[resp->nheaders++];
    h->name.data = name;
    h->name.len = strlen(name);
    h->value.data = value;
    h->value.len = strlen(value);
}


static void
decide_log(const wire_req_t *req, const wire_resp_t *resp)
{
    if (log_get_level() > LOG_LEVEL_DEBUG) {
        return;
    }

    log_debug("decision: %.*s %.*s %.*s client %.*s: %s %u (%.*s)",
              (int) req->method.len, req->method.data,
              (int) req->host.len, req->host.data,
              (int) req->path.len, req->path.data,
              (int) req->client_addr.len, req->client_addr.data,
              wire_decision_name(resp->decision), resp->status,
              (int) resp->reason.len, resp->reason.data);
}


int
decide(store_t *st, const decide_conf_t *conf, const wire_req_t *req,
    wire_resp_t *resp, decide_ctx_t *ctx)
{
    store_device_t  *dev = &ctx->device;
    store_err_t      err;
    int              rc;

    if (req->cert_verify == WIRE_CERT_NONE) {
        decide_set(resp, WIRE_DENY, 403, WIRE_R_NO_CERT,
                   "no device certificate");
        goto done;
    }

    if (req->cert_verify != WIRE_CERT_SUCCESS || !req->has_cert_fp) {
        decide_set(resp, WIRE_DENY, 403, WIRE_R_CERT_UNVERIFIED,
                   "device certificate not verified");
        goto done;
    }

    if (store_view_begin(st, &ctx->view, &err) != 0) {
        goto store_failed;
    }

    rc = store_device_get(ctx->view, req->cert_fp, dev, &err);

    /* the record is copied out: end the snapshot before anything else */
    store_view_end(ctx->view);

    if (rc < 0) {
        goto store_failed;
    }

    if (rc == STORE_NOTFOUND) {
        decide_set(resp, WIRE_DENY, 403, WIRE_R_DEVICE_UNKNOWN,
                   "device not enrolled");
        goto done;
    }

    switch (dev->status) {
    case STORE_DEVICE_ACTIVE:
        break;

    case STORE_DEVICE_QUARANTINED:
        decide_set(resp, WIRE_DENY, 403, WIRE_R_DEVICE_QUARANTINED,
                   "device quarantined");
        goto done;

    case STORE_DEVICE_REVOKED:
    default:
        decide_set(resp, WIRE_DENY, 403, WIRE_R_DEVICE_REVOKED,
                   "device revoked");
        goto done;
    }

    if (dev->expires_at != 0 && dev->expires_at < (int64_t) time(NULL)) {
        decide_set(resp, WIRE_DENY, 403, WIRE_R_DEVICE_EXPIRED,
                   "device enrollment expired");
        goto done;
    }

    decide_set(resp, WIRE_ALLOW, 200, WIRE_R_DEVICE_OK, "enrolled device");
    resp->ttl_ms = conf->allow_ttl_ms;

    store_fp_hex(dev->fp, ctx->fp_hex);
    decide_header(resp, "X-ZT-Device-Id", dev->id);
    decide_header(resp, "X-ZT-Device-Fingerprint", ctx->fp_hex);
    decide_header(resp, "X-ZT-Device-Owner", dev->owner);
    decide_header(resp, "X-ZT-Decision", "allow");

    goto done;

store_failed:

    log_error("decision store unavailable: %s", err.msg);
    decide_set(resp, WIRE_DENY, 503, WIRE_R_INTERNAL,
               "decision store unavailable");

done:

    decide_log(req, resp);

    return resp->decision;
}


void
decide_ctx_free(decide_ctx_t *ctx)
{
    store_view_free(ctx->view);
    ctx->view = NULL;
}
