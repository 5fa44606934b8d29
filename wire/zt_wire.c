/*
 * ztgate decision protocol codec.  See zt_wire.h for the frame layout.
 *
 * Every decoder takes (p, end) and never reads at or past end; every
 * length is checked before it is used.  No allocation, libc only.
 */

#include <string.h>

#include "zt_wire.h"

#define WIRE_FIELD_HDR  3               /* u8 tag + u16 len */
#define WIRE_MAX_FIELD  0xffff

static uint16_t wire_get16(const uint8_t *p);
static uint32_t wire_get32(const uint8_t *p);
static void wire_put16(uint8_t *p, uint16_t v);
static void wire_put32(uint8_t *p, uint32_t v);
static int wire_is_tchar(unsigned char c);
static int wire_is_safe_text(const char *s, size_t len);
static int wire_put_field(uint8_t **pp, uint8_t *end, uint8_t tag,
    const void *v, size_t len);
static int wire_put_str(uint8_t **pp, uint8_t *end, uint8_t tag,
    const wire_str_t *s, int always);
static int wire_put_header(uint8_t **pp, uint8_t *end, const wire_hdr_t *h);
static int wire_begin(uint8_t *p, uint8_t *end, uint8_t type, uint32_t id);
static int wire_finish(uint8_t *start, uint8_t *p);
static int wire_take_str(wire_str_t *s, const uint8_t *v, size_t len,
    uint32_t *seen, unsigned bit);
static int wire_next_field(const uint8_t **pp, const uint8_t *end,
    uint8_t *tag, const uint8_t **v, size_t *len);


static uint16_t
wire_get16(const uint8_t *p)
{
    return (uint16_t) ((p[0] << 8) | p[1]);
}


static uint32_t
wire_get32(const uint8_t *p)
{
    return ((uint32_t) p[0] << 24) | ((uint32_t) p[1] << 16)
           | ((uint32_t) p[2] << 8) | (uint32_t) p[3];
}


static void
wire_put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t) (v >> 8);
    p[1] = (uint8_t) v;
}


static void
wire_put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t) (v >> 24);
    p[1] = (uint8_t) (v >> 16);
    p[2] = (uint8_t) (v >> 8);
    p[3] = (uint8_t) v;
}


/* RFC 9110 token characters, for header names. */
static int
wire_is_tchar(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
        || (c >= '0' && c <= '9'))
    {
        return 1;
    }

    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}


/* Text that may be placed in an HTTP header: no CR, LF, NUL or DEL. */
static int
wire_is_safe_text(const char *s, size_t len)
{
    size_t  i;

    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char) s[i];

        if ((c < 0x20 && c != '\t') || c == 0x7f) {
            return 0;
        }
    }

    return 1;
}


int
wire_frame_peek(const uint8_t *p, const uint8_t *end, wire_frame_t *f)
{
    uint32_t  len;
    size_t    avail;

    avail = (size_t) (end - p);

    if (avail < 4) {
        return WIRE_AGAIN;
    }

    len = wire_get32(p);

    /* size first: a peer must never make us wait for a huge frame */
    if (len > WIRE_MAX_FRAME - 4) {
        return WIRE_ETOOBIG;
    }

    if (len < WIRE_HDR_LEN - 4) {
        return WIRE_EMALFORMED;
    }

    if (avail >= 5 && p[4] != WIRE_VERSION) {
        return WIRE_EVERSION;
    }

    if (avail < (size_t) len + 4) {
        return WIRE_AGAIN;
    }

    if (p[6] != 0 || p[7] != 0) {
        return WIRE_EMALFORMED;
    }

    f->type = p[5];
    f->id = wire_get32(p + 8);
    f->body = p + WIRE_HDR_LEN;
    f->body_end = p + 4 + len;
    f->frame_len = (size_t) len + 4;

    return WIRE_OK;
}


/*
 * The field at *pp in a body ending at end: its tag, value and length;
 * *pp moves past it.  WIRE_EMALFORMED if the header or the value would
 * run past end.
 */
static int
wire_next_field(const uint8_t **pp, const uint8_t *end, uint8_t *tag,
    const uint8_t **v, size_t *len)
{
    const uint8_t  *p = *pp;

    if (end - p < WIRE_FIELD_HDR) {
        return WIRE_EMALFORMED;
    }

    *tag = p[0];
    *len = wire_get16(p + 1);
    *v = p + WIRE_FIELD_HDR;

    if ((size_t) (end - *v) < *len) {
        return WIRE_EMALFORMED;
    }

    *pp = *v + *len;

    return WIRE_OK;
}


static int
wire_take_str(wire_str_t *s, const uint8_t *v, size_t len, uint32_t *seen,
    unsigned bit)
{
    if (*seen & (1u << bit)) {
        return WIRE_EFIELD;
    }

    *seen |= 1u << bit;
    s->data = (const char *) v;
    s->len = len;

    return WIRE_OK;
}


int
wire_decode_req(const wire_frame_t *f, wire_req_t *req)
{
    const uint8_t  *p, *end, *v;
    uint8_t         tag;
    size_t          len;
    uint32_t        seen;
    int             rc;

    if (f->type != WIRE_DECIDE_REQ) {
        return WIRE_ETYPE;
    }

    memset(req, 0, sizeof(*req));
    seen = 0;
    p = f->body;
    end = f->body_end;

    while (p < end) {
        if (wire_next_field(&p, end, &tag, &v, &len) != WIRE_OK) {
            return WIRE_EMALFORMED;
        }

        switch (tag) {

        case WIRE_F_METHOD:
            rc = wire_take_str(&req->method, v, len, &seen, tag);
            break;

        case WIRE_F_SCHEME:
            rc = wire_take_str(&req->scheme, v, len, &seen, tag);
            break;

        case WIRE_F_HOST:
            rc = wire_take_str(&req->host, v, len, &seen, tag);
            break;

        case WIRE_F_PATH:
            rc = wire_take_str(&req->path, v, len, &seen, tag);
            break;

        case WIRE_F_QUERY:
            rc = wire_take_str(&req->query, v, len, &seen, tag);
            break;

        case WIRE_F_CLIENT_ADDR:
            rc = wire_take_str(&req->client_addr, v, len, &seen, tag);
            break;

        case WIRE_F_TOKEN:
            rc = wire_take_str(&req->token, v, len, &seen, tag);
            break;

        case WIRE_F_USER_AGENT:
            rc = wire_take_str(&req->user_agent, v, len, &seen, tag);
            break;

        case WIRE_F_CERT_FP:
            if (seen & (1u << tag)) {
                return WIRE_EFIELD;
            }
            if (len != WIRE_FP_LEN) {
                return WIRE_EMALFORMED;
            }
            seen |= 1u << tag;
            memcpy(req->cert_fp, v, WIRE_FP_LEN);
            req->has_cert_fp = 1;
            rc = WIRE_OK;
            break;

        case WIRE_F_CERT_VERIFY:
            if (seen & (1u << tag)) {
                return WIRE_EFIELD;
            }
            if (len != 1 || v[0] > WIRE_CERT_FAILED) {
                return WIRE_EMALFORMED;
            }
            seen |= 1u << tag;
            req->cert_verify = v[0];
            rc = WIRE_OK;
            break;

        default:
            return WIRE_EFIELD;
        }

        if (rc != WIRE_OK) {
            return rc;
        }
    }

    if (!(seen & (1u << WIRE_F_METHOD)) || !(seen & (1u << WIRE_F_SCHEME))
        || !(seen & (1u << WIRE_F_HOST)) || !(seen & (1u << WIRE_F_PATH))
        || !(seen & (1u << WIRE_F_CLIENT_ADDR)))
    {
        return WIRE_EMISSING;
    }

    /* a fingerprint is only meaningful together with a verify result */
    if (req->has_cert_fp && req->cert_verify == WIRE_CERT_NONE) {
        return WIRE_EMALFORMED;
    }

    return WIRE_OK;
}


int
wire_decode_resp(const wire_frame_t *f, wire_resp_t *resp)
{
    const uint8_t  *p, *end, *v;
    uint8_t         tag;
    size_t          len, nlen;
    uint64_t        seen;
    wire_hdr_t     *h;

    if (f->type != WIRE_DECIDE_RESP) {
        return WIRE_ETYPE;
    }

    memset(resp, 0, sizeof(*resp));
    seen = 0;
    p = f->body;
    end = f->body_end;

    while (p < end) {
        if (wire_next_field(&p, end, &tag, &v, &len) != WIRE_OK) {
            return WIRE_EMALFORMED;
        }

        if (tag < WIRE_F_DECISION || tag > WIRE_F_REASON) {
            return WIRE_EFIELD;
        }

        if (tag != WIRE_F_HEADER && (seen & (1ull << (tag - 32)))) {
            return WIRE_EFIELD;
        }

        seen |= 1ull << (tag - 32);

        switch (tag) {

        case WIRE_F_DECISION:
            if (len != 1 || v[0] < WIRE_ALLOW || v[0] > WIRE_STEP_UP) {
                return WIRE_EMALFORMED;
            }
            resp->decision = v[0];
            break;

        case WIRE_F_STATUS:
            if (len != 2) {
                return WIRE_EMALFORMED;
            }
            resp->status = wire_get16(v);
            if (resp->status < 100 || resp->status > 599) {
                return WIRE_EMALFORMED;
            }
            break;

        case WIRE_F_TTL:
            if (len != 4) {
                return WIRE_EMALFORMED;
            }
            resp->ttl_ms = wire_get32(v);
            break;

        case WIRE_F_REASON_CODE:
            if (len != 2) {
                return WIRE_EMALFORMED;
            }
            resp->reason_code = wire_get16(v);
            break;

        case WIRE_F_REASON:
        case WIRE_F_REDIRECT:
            if (!wire_is_safe_text((const char *) v, len)) {
                return WIRE_EMALFORMED;
            }
            if (tag == WIRE_F_REASON) {
                resp->reason.data = (const char *) v;
                resp->reason.len = len;
            } else {
                resp->redirect.data = (const char *) v;
                resp->redirect.len = len;
            }
            break;

        default: /* WIRE_F_HEADER */
            if (resp->nheaders == WIRE_MAX_HEADERS || len < 2) {
                return WIRE_EMALFORMED;
            }
            nlen = wire_get16(v);
            if (nlen == 0 || nlen > len - 2) {
                return WIRE_EMALFORMED;
            }
            h = &resp->headers[resp->nheaders];
            h->name.data = (const char *) v + 2;
            h->name.len = nlen;
            h->value.data = (const char *) v + 2 + nlen;
            h->value.len = len - 2 - nlen;
            {
                size_t  i;

                for (i = 0; i < nlen; i++) {
                    if (!wire_is_tchar((unsigned char) h->name.data[i])) {
                        return WIRE_EMALFORMED;
                    }
                }
            }
            if (!wire_is_safe_text(h->value.data, h->value.len)) {
                return WIRE_EMALFORMED;
            }
            resp->nheaders++;
            break;
        }
    }

    if (!(seen & (1ull << (WIRE_F_DECISION - 32)))
        || !(seen & (1ull << (WIRE_F_STATUS - 32))))
    {
        return WIRE_EMISSING;
    }

    return WIRE_OK;
}


static int
wire_put_field(uint8_t **pp, uint8_t *end, uint8_t tag, const void *v,
    size_t len)
{
    uint8_t  *p = *pp;

    if (len > WIRE_MAX_FIELD) {
        return WIRE_EMALFORMED;
    }

    if ((size_t) (end - p) < WIRE_FIELD_HDR + len) {
        return WIRE_ENOSPC;
    }

    p[0] = tag;
    wire_put16(p + 1, (uint16_t) len);
    if (len) {
        memcpy(p + WIRE_FIELD_HDR, v, len);
    }

    *pp = p + WIRE_FIELD_HDR + len;

    return WIRE_OK;
}


static int
wire_put_str(uint8_t **pp, uint8_t *end, uint8_t tag, const wire_str_t *s,
    int always)
{
    if (s->len == 0 && !always) {
        return WIRE_OK;
    }

    return wire_put_field(pp, end, tag, s->data, s->len);
}


static int
wire_put_header(uint8_t **pp, uint8_t *end, const wire_hdr_t *h)
{
    uint8_t  *p = *pp;
    size_t    len, i;

    if (h->name.len == 0) {
        return WIRE_EMALFORMED;
    }

    for (i = 0; i < h->name.len; i++) {
        if (!wire_is_tchar((unsigned char) h->name.data[i])) {
            return WIRE_EMALFORMED;
        }
    }

    if (!wire_is_safe_text(h->value.data, h->value.len)) {
        return WIRE_EMALFORMED;
    }

    len = 2 + h->name.len + h->value.len;

    if (len > WIRE_MAX_FIELD) {
        return WIRE_EMALFORMED;
    }

    if ((size_t) (end - p) < WIRE_FIELD_HDR + len) {
        return WIRE_ENOSPC;
    }

    p[0] = WIRE_F_HEADER;
    wire_put16(p + 1, (uint16_t) len);
    wire_put16(p + 3, (uint16_t) h->name.len);
    memcpy(p + 5, h->name.data, h->name.len);
    if (h->value.len) {
        memcpy(p + 5 + h->name.len, h->value.data, h->value.len);
    }

    *pp = p + WIRE_FIELD_HDR + len;

    return WIRE_OK;
}


static int
wire_begin(uint8_t *p, uint8_t *end, uint8_t type, uint32_t id)
{
    if (end - p < WIRE_HDR_LEN) {
        return WIRE_ENOSPC;
    }

    p[4] = WIRE_VERSION;
    p[5] = type;
    p[6] = 0;
    p[7] = 0;
    wire_put32(p + 8, id);

    return WIRE_OK;
}


static int
wire_finish(uint8_t *start, uint8_t *p)
{
    size_t  total = (size_t) (p - start);

    if (total > WIRE_MAX_FRAME) {
        return WIRE_EMALFORMED;
    }

    wire_put32(start, (uint32_t) (total - 4));

    return (int) total;
}


int
wire_encode_req(uint8_t *p, uint8_t *end, uint32_t id, const wire_req_t *req)
{
    uint8_t  *start = p;
    uint8_t   verify;
    int       rc;

    rc = wire_begin(p, end, WIRE_DECIDE_REQ, id);
    if (rc != WIRE_OK) {
        return rc;
    }

    p += WIRE_HDR_LEN;

    if (req->cert_verify > WIRE_CERT_FAILED
        || (req->has_cert_fp && req->cert_verify == WIRE_CERT_NONE))
    {
        return WIRE_EMALFORMED;
    }

    verify = req->cert_verify;

    if ((rc = wire_put_str(&p, end, WIRE_F_METHOD, &req->method, 1))
        || (rc = wire_put_str(&p, end, WIRE_F_SCHEME, &req->scheme, 1))
        || (rc = wire_put_str(&p, end, WIRE_F_HOST, &req->host, 1))
        || (rc = wire_put_str(&p, end, WIRE_F_PATH, &req->path, 1))
        || (rc = wire_put_str(&p, end, WIRE_F_QUERY, &req->query, 0))
        || (rc = wire_put_str(&p, end, WIRE_F_CLIENT_ADDR,
                              &req->client_addr, 1))
        || (rc = wire_put_str(&p, end, WIRE_F_TOKEN, &req->token, 0))
        || (rc = wire_put_str(&p, end, WIRE_F_USER_AGENT,
                              &req->user_agent, 0))
        || (rc = wire_put_field(&p, end, WIRE_F_CERT_VERIFY, &verify, 1)))
    {
        return rc;
    }

    if (req->has_cert_fp) {
        rc = wire_put_field(&p, end, WIRE_F_CERT_FP, req->cert_fp,
                            WIRE_FP_LEN);
        if (rc != WIRE_OK) {
            return rc;
        }
    }

    return wire_finish(start, p);
}


int
wire_encode_resp(uint8_t *p, uint8_t *end, uint32_t id,
    const wire_resp_t *resp)
{
    uint8_t   *start = p;
    uint8_t    b[4];
    unsigned   i;
    int        rc;

    if (resp->decision < WIRE_ALLOW || resp->decision > WIRE_STEP_UP
        || resp->status < 100 || resp->status > 599
        || resp->nheaders > WIRE_MAX_HEADERS
        || !wire_is_safe_text(resp->reason.data, resp->reason.len)
        || !wire_is_safe_text(resp->redirect.data, resp->redirect.len))
    {
        return WIRE_EMALFORMED;
    }

    rc = wire_begin(p, end, WIRE_DECIDE_RESP, id);
    if (rc != WIRE_OK) {
        return rc;
    }

    p += WIRE_HDR_LEN;

    b[0] = resp->decision;
    if ((rc = wire_put_field(&p, end, WIRE_F_DECISION, b, 1))) {
        return rc;
    }

    wire_put16(b, resp->status);
    if ((rc = wire_put_field(&p, end, WIRE_F_STATUS, b, 2))) {
        return rc;
    }

    wire_put32(b, resp->ttl_ms);
    if ((rc = wire_put_field(&p, end, WIRE_F_TTL, b, 4))) {
        return rc;
    }

    wire_put16(b, resp->reason_code);
    if ((rc = wire_put_field(&p, end, WIRE_F_REASON_CODE, b, 2))
        || (rc = wire_put_str(&p, end, WIRE_F_REASON, &resp->reason, 0))
        || (rc = wire_put_str(&p, end, WIRE_F_REDIRECT, &resp->redirect, 0)))
    {
        return rc;
    }

    for (i = 0; i < resp->nheaders; i++) {
        rc = wire_put_header(&p, end, &resp->headers[i]);
        if (rc != WIRE_OK) {
            return rc;
        }
    }

    return wire_finish(start, p);
}


const char *
wire_strerror(int rc)
{
    switch (rc) {
    case WIRE_OK:         return "ok";
    case WIRE_AGAIN:      return "incomplete frame";
    case WIRE_ETOOBIG:    return "frame exceeds maximum size";
    case WIRE_EVERSION:   return "unsupported protocol version";
    case WIRE_ETYPE:      return "unexpected frame type";
    case WIRE_EMALFORMED: return "malformed frame";
    case WIRE_EFIELD:     return "unknown or duplicate field";
    case WIRE_EMISSING:   return "required field missing";
    case WIRE_ENOSPC:     return "output buffer too small";
    default:              return "unknown error";
    }
}


const char *
wire_decision_name(unsigned decision)
{
    switch (decision) {
    case WIRE_ALLOW:   return "allow";
    case WIRE_DENY:    return "deny";
    case WIRE_LOGIN:   return "login";
    case WIRE_STEP_UP: return "step-up";
    default:           return "invalid";
    }
}
