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

#define FUZZ_FIELD_HDR  3               /* u8 tag + u16 len */

static void fuzz_check_frame(const uint8_t *p, const uint8_t *end,
    const wire_frame_t *f);
static void fuzz_check_str(const wire_frame_t *f, const wire_str_t *s);
static void fuzz_check_req(const wire_frame_t *f, const wire_req_t *req);
static size_t fuzz_req_size(const wire_req_t *req);
static int fuzz_str_eq(const wire_str_t *a, const wire_str_t *b);
static int fuzz_req_eq(const wire_req_t *a, const wire_req_t *b);
static void fuzz_roundtrip(uint32_t id, const wire_req_t *req);


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t        *buf;
    const uint8_t  *p, *end;
    wire_frame_t    f;
    wire_req_t      req;
    int             rc;

    /* an exactly sized heap copy: ASan flags any read past the end */
    buf = malloc(size ? size : 1);
    if (buf == NULL) {
        return 0;
    }

    if (size) {
        memcpy(buf, data, size);
    }

    p = buf;
    end = buf + size;

    for ( ;; ) {
        rc = wire_frame_peek(p, end, &f);

        if (rc == WIRE_AGAIN) {
            /* more bytes could complete it: none may be a whole frame */
            if (end - p >= 4
                && (size_t) (end - p) >= ((size_t) p[0] << 24
                                          | (size_t) p[1] << 16
                                          | (size_t) p[2] << 8
                                          | (size_t) p[3]) + 4)
            {
                abort();
            }
            break;
        }

        if (rc != WIRE_OK) {
            if (rc != WIRE_ETOOBIG && rc != WIRE_EVERSION
                && rc != WIRE_EMALFORMED)
            {
                abort();
            }
            /* the receiver closes the connection: nothing to resync on */
            break;
        }

        fuzz_check_frame(p, end, &f);

        rc = wire_decode_req(&f, &req);

        if (rc == WIRE_OK) {
            fuzz_check_req(&f, &req);
            fuzz_roundtrip(f.id, &req);

        } else if (rc != WIRE_ETYPE && rc != WIRE_EMALFORMED
                   && rc != WIRE_EFIELD && rc != WIRE_EMISSING)
        {
            abort();
        }

        /* keep going after a bad body: the framing is still known */
        p += f.frame_len;
    }

    free(buf);

    return 0;
}


/* The frame peek found must lie inside the buffer it was given. */
static void
fuzz_check_frame(const uint8_t *p, const uint8_t *end, const wire_frame_t *f)
{
    if (f->frame_len < WIRE_HDR_LEN || f->frame_len > WIRE_MAX_FRAME
        || f->frame_len > (size_t) (end - p)
        || f->body != p + WIRE_HDR_LEN
        || f->body_end != p + f->frame_len
        || p[4] != WIRE_VERSION || p[6] != 0 || p[7] != 0
        || f->type != p[5])
    {
        abort();
    }
}


/* A decoded string points into the body of its frame, or is empty. */
static void
fuzz_check_str(const wire_frame_t *f, const wire_str_t *s)
{
    if (s->len == 0) {
        return;
    }

    if ((const uint8_t *) s->data < f->body
        || (const uint8_t *) s->data > f->body_end
        || s->len > (size_t) (f->body_end - (const uint8_t *) s->data))
    {
        abort();
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
fuzz_str_eq(const wire_str_t *a, const wire_str_t *b)
{
    return a->len == b->len
           && (a->len == 0 || memcmp(a->data, b->data, a->len) == 0);
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


/*
 * decode(encode(req)) must equal req.  The output buffer is exactly the
 * expected size, so an encoder writing past it is caught by ASan, and one
 * byte less must give WIRE_ENOSPC.
 */
static void
fuzz_roundtrip(uint32_t id, const wire_req_t *req)
{
    uint8_t       *out;
    size_t         need;
    wire_frame_t   f;
    wire_req_t     again;
    int            n;

    need = fuzz_req_size(req);

    out = malloc(need);
    if (out == NULL) {
        return;
    }

    n = wire_encode_req(out, out + need, id, req);

    if (need > WIRE_MAX_FRAME) {
        /*
         * The encoder always writes the verify result, so a request that
         * came in near the size limit without one can grow past it.
         */
        if (n != WIRE_EMALFORMED) {
            abort();
        }
        free(out);
        return;
    }

    if (n < 0 || (size_t) n != need) {
        abort();
    }

    if (wire_frame_peek(out, out + need, &f) != WIRE_OK
        || f.frame_len != need || f.id != id || f.type != WIRE_DECIDE_REQ)
    {
        abort();
    }

    if (wire_decode_req(&f, &again) != WIRE_OK) {
        abort();
    }

    fuzz_check_req(&f, &again);

    if (!fuzz_req_eq(req, &again)) {
        abort();
    }

    if (wire_encode_req(out, out + need - 1, id, req) != WIRE_ENOSPC) {
        abort();
    }

    free(out);
}
