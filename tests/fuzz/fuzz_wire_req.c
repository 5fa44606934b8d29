/*
 * Fuzz target for decision requests: reads frames out of the input as
 * trustd's receiver does (peek, decode, consume, repeat), then re-encodes
 * every request that decoded and checks that decoding the result gives
 * the same request back, field by field.  Any broken invariant aborts.
 */

#include <stdlib.h>
#include <string.h>

#include "zt_wire.h"
#include "fuzz.h"
#include "fuzz_wire_common.h"

static void fuzz_req_frame(const wire_frame_t *f);
static void fuzz_check_req(const wire_frame_t *f, const wire_req_t *req);
static size_t fuzz_req_size(const wire_req_t *req);
static int fuzz_req_eq(const wire_req_t *a, const wire_req_t *b);
static int fuzz_req_encode(uint8_t *p, uint8_t *end, uint32_t id,
    const void *msg);
static void fuzz_req_redecode(const wire_frame_t *f, const void *msg);


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_wire_frames(data, size, fuzz_req_frame);

    return 0;
}


static void
fuzz_req_frame(const wire_frame_t *f)
{
    wire_req_t  req;
    int         rc;

    rc = wire_decode_req(f, &req);

    if (rc == WIRE_OK) {
        fuzz_check_req(f, &req);
        fuzz_wire_roundtrip(f->id, WIRE_DECIDE_REQ, &req,
                            fuzz_req_size(&req), fuzz_req_encode,
                            fuzz_req_redecode);

    } else {
        fuzz_wire_decode_failed(rc);
    }
}


static void
fuzz_check_req(const wire_frame_t *f, const wire_req_t *req)
{
    fuzz_check_str(f, &req->method);
    fuzz_check_str(f, &req->scheme);
    fuzz_check_str(f, &req->host);
    fuzz_check_str(f, &req->path);
    fuzz_check_str(f, &req->query);
    fuzz_check_str(f, &req->client_addr);
    fuzz_check_str(f, &req->token);
    fuzz_check_str(f, &req->user_agent);

    if (req->cert_verify > WIRE_CERT_FAILED || req->has_cert_fp > 1
        || (req->has_cert_fp && req->cert_verify == WIRE_CERT_NONE))
    {
        abort();
    }
}


/*
 * The size wire_encode_req() must produce, computed independently: the
 * required strings always, the optional ones only when not empty, the
 * verify result always, the fingerprint when present.
 */
static size_t
fuzz_req_size(const wire_req_t *req)
{
    size_t  n;

    n = WIRE_HDR_LEN;
    n += FUZZ_FIELD_HDR + req->method.len;
    n += FUZZ_FIELD_HDR + req->scheme.len;
    n += FUZZ_FIELD_HDR + req->host.len;
    n += FUZZ_FIELD_HDR + req->path.len;
    n += FUZZ_FIELD_HDR + req->client_addr.len;
    n += req->query.len ? FUZZ_FIELD_HDR + req->query.len : 0;
    n += req->token.len ? FUZZ_FIELD_HDR + req->token.len : 0;
    n += req->user_agent.len ? FUZZ_FIELD_HDR + req->user_agent.len : 0;
    n += FUZZ_FIELD_HDR + 1;
    n += req->has_cert_fp ? FUZZ_FIELD_HDR + WIRE_FP_LEN : 0;

    return n;
}


static int
fuzz_req_eq(const wire_req_t *a, const wire_req_t *b)
{
    return fuzz_str_eq(&a->method, &b->method)
           && fuzz_str_eq(&a->scheme, &b->scheme)
           && fuzz_str_eq(&a->host, &b->host)
           && fuzz_str_eq(&a->path, &b->path)
           && fuzz_str_eq(&a->query, &b->query)
           && fuzz_str_eq(&a->client_addr, &b->client_addr)
           && fuzz_str_eq(&a->token, &b->token)
           && fuzz_str_eq(&a->user_agent, &b->user_agent)
           && a->has_cert_fp == b->has_cert_fp
           && (!a->has_cert_fp
               || memcmp(a->cert_fp, b->cert_fp, WIRE_FP_LEN) == 0)
           && a->cert_verify == b->cert_verify;
}


static int
fuzz_req_encode(uint8_t *p, uint8_t *end, uint32_t id, const void *msg)
{
    return wire_encode_req(p, end, id, msg);
}


/* decode(encode(req)) must equal req. */
static void
fuzz_req_redecode(const wire_frame_t *f, const void *msg)
{
    wire_req_t  again;

    if (wire_decode_req(f, &again) != WIRE_OK) {
        abort();
    }

    fuzz_check_req(f, &again);

    if (!fuzz_req_eq(msg, &again)) {
        abort();
    }
}
