/*
 * Unit tests for the decision protocol codec (wire/zt_wire.c).
 *
 * Frames under test are built byte by byte here from the layout in
 * zt_wire.h, not by the encoder, so that the decoder is checked against
 * the documented format and not against the encoder's reading of it.
 * Every frame handed to the codec sits in an exactly sized heap buffer,
 * so an overread or overwrite shows up under SANITIZE=address.
 */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "zt_wire.h"

#define TEST_FIELD_HDR  3
#define TEST_BUF_SIZE   (4 * WIRE_MAX_FRAME)
#define TEST_NO_TAG     0

static const uint8_t  test_fp[WIRE_FP_LEN] = {
    0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7,
    0xa8, 0xa9, 0xaa, 0xab, 0xac, 0xad, 0xae, 0xaf,
    0xb0, 0xb1, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7,
    0xb8, 0xb9, 0xba, 0xbb, 0xbc, 0xbd, 0xbe, 0xbf
};

/* frame builders */
static void test_put16(uint8_t *p, uint16_t v);
static void test_put32(uint8_t *p, uint32_t v);
static size_t test_field(uint8_t *p, uint8_t tag, const void *v, size_t len);
static size_t test_field_str(uint8_t *p, uint8_t tag, const char *s);
static size_t test_header(uint8_t *p, const char *name, size_t nlen,
    const char *value, size_t vlen);
static size_t test_frame(uint8_t *out, uint8_t type, uint32_t id,
    const uint8_t *body, size_t body_len);
typedef size_t (*test_field_pt)(uint8_t *p, uint8_t tag);

static size_t test_body(uint8_t *p, test_field_pt field, uint8_t first,
    uint8_t last, uint8_t skip, uint8_t dup);
static size_t test_req_field(uint8_t *p, uint8_t tag);
static size_t test_req_body(uint8_t *p, uint8_t skip, uint8_t dup);
static size_t test_resp_field(uint8_t *p, uint8_t tag);
static size_t test_resp_body(uint8_t *p, uint8_t skip, uint8_t dup);
static uint8_t *test_copy(const uint8_t *p, size_t len);
static int test_peek(const uint8_t *frame, size_t len);
static uint8_t *test_copy_frame(const uint8_t *frame, size_t len,
    wire_frame_t *f);
static uint8_t *test_body_frame(uint8_t type, const uint8_t *body,
    size_t len, size_t *n);
static int test_decode_req(const uint8_t *frame, size_t len);
static int test_decode_resp(const uint8_t *frame, size_t len);
static int test_decode_resp_body(const uint8_t *body, size_t len);
static int test_decode_req_body(const uint8_t *body, size_t len);

/* values */
static wire_str_t test_str(const char *s);
static void test_full_req(wire_req_t *req);
static void test_full_resp(wire_resp_t *resp);
static void test_assert_str(const wire_str_t *s, const char *expect);
static void test_assert_str_eq(const wire_str_t *a, const wire_str_t *b);
static void test_assert_req_eq(const wire_req_t *a, const wire_req_t *b);
static void test_assert_resp_eq(const wire_resp_t *a, const wire_resp_t *b);
static int test_encode_resp(const wire_resp_t *resp);
static int test_encode_req(const wire_req_t *req);

/* tests */
static void test_req_roundtrip(void **state);
static void test_resp_roundtrip(void **state);
static void test_req_missing_field(void **state);
static void test_resp_missing_field(void **state);
static void test_req_duplicate_field(void **state);
static void test_resp_duplicate_field(void **state);
static void test_unknown_tag(void **state);
static void test_field_past_frame(void **state);
static void test_wrong_type(void **state);
static void test_peek_every_prefix(void **state);
static void test_peek_back_to_back(void **state);
static void test_peek_too_big(void **state);
static void test_peek_too_small(void **state);
static void test_peek_wrong_version(void **state);
static void test_peek_flags(void **state);
static void test_cert_fp_length(void **state);
static void test_cert_fp_without_verify(void **state);
static void test_cert_verify_range(void **state);
static void test_header_name(void **state);
static void test_header_value(void **state);
static void test_reason_redirect_text(void **state);
static void test_too_many_headers(void **state);
static void test_status_range(void **state);
static void test_decision_range(void **state);
typedef int (*test_encode_pt)(uint8_t *p, uint8_t *end, const void *msg);

static int test_encode_req_at(uint8_t *p, uint8_t *end, const void *msg);
static int test_encode_resp_at(uint8_t *p, uint8_t *end, const void *msg);
static void test_assert_enospc(test_encode_pt encode, const void *msg,
    int need);
static void test_req_enospc(void **state);
static void test_resp_enospc(void **state);
static void test_id_preserved(void **state);
static void test_req_max_frame(void **state);
static void test_resp_max_frame(void **state);


static void
test_put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t) (v >> 8);
    p[1] = (uint8_t) v;
}


static void
test_put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t) (v >> 24);
    p[1] = (uint8_t) (v >> 16);
    p[2] = (uint8_t) (v >> 8);
    p[3] = (uint8_t) v;
}


static size_t
test_field(uint8_t *p, uint8_t tag, const void *v, size_t len)
{
    p[0] = tag;
    test_put16(p + 1, (uint16_t) len);
    if (len) {
        memcpy(p + TEST_FIELD_HDR, v, len);
    }

    return TEST_FIELD_HDR + len;
}


static size_t
test_field_str(uint8_t *p, uint8_t tag, const char *s)
{
    return test_field(p, tag, s, strlen(s));
}


static size_t
test_header(uint8_t *p, const char *name, size_t nlen, const char *value,
    size_t vlen)
{
    p[0] = WIRE_F_HEADER;
    test_put16(p + 1, (uint16_t) (2 + nlen + vlen));
    test_put16(p + 3, (uint16_t) nlen);
    memcpy(p + 5, name, nlen);
    memcpy(p + 5 + nlen, value, vlen);

    return 5 + nlen + vlen;
}


static size_t
test_frame(uint8_t *out, uint8_t type, uint32_t id, const uint8_t *body,
    size_t body_len)
{
    test_put32(out, (uint32_t) (8 + body_len));
    out[4] = WIRE_VERSION;
    out[5] = type;
    out[6] = 0;
    out[7] = 0;
    test_put32(out + 8, id);
    if (body_len) {
        memcpy(out + WIRE_HDR_LEN, body, body_len);
    }

    return WIRE_HDR_LEN + body_len;
}


/* One valid request field of each kind. */
static size_t
test_req_field(uint8_t *p, uint8_t tag)
{
    uint8_t  verify = WIRE_CERT_SUCCESS;

    switch (tag) {
    case WIRE_F_METHOD:
        return test_field_str(p, tag, "GET");
    case WIRE_F_SCHEME:
        return test_field_str(p, tag, "https");
    case WIRE_F_HOST:
        return test_field_str(p, tag, "app.example.internal");
    case WIRE_F_PATH:
        return test_field_str(p, tag, "/dashboard");
    case WIRE_F_QUERY:
        return test_field_str(p, tag, "tab=1");
    case WIRE_F_CLIENT_ADDR:
        return test_field_str(p, tag, "192.0.2.10");
    case WIRE_F_CERT_FP:
        return test_field(p, tag, test_fp, WIRE_FP_LEN);
    case WIRE_F_CERT_VERIFY:
        return test_field(p, tag, &verify, 1);
    case WIRE_F_TOKEN:
        return test_field_str(p, tag, "zt1.token");
    case WIRE_F_USER_AGENT:
        return test_field_str(p, tag, "curl/7.88");
    default:
        fail_msg("no request field %u", tag);
        return 0;
    }
}


/* Every field from first to last once, except skip, and dup twice. */
static size_t
test_body(uint8_t *p, test_field_pt field, uint8_t first, uint8_t last,
    uint8_t skip, uint8_t dup)
{
    uint8_t  tag;
    size_t   n;

    n = 0;

    for (tag = first; tag <= last; tag++) {
        if (tag != skip) {
            n += field(p + n, tag);
        }
        if (tag == dup) {
            n += field(p + n, tag);
        }
    }

    return n;
}


/* Every request field once, except skip, and dup twice. */
static size_t
test_req_body(uint8_t *p, uint8_t skip, uint8_t dup)
{
    return test_body(p, test_req_field, WIRE_F_METHOD, WIRE_F_USER_AGENT,
                     skip, dup);
}


/* One valid answer field of each kind. */
static size_t
test_resp_field(uint8_t *p, uint8_t tag)
{
    uint8_t  b[4];

    switch (tag) {
    case WIRE_F_DECISION:
        b[0] = WIRE_DENY;
        return test_field(p, tag, b, 1);
    case WIRE_F_STATUS:
        test_put16(b, 403);
        return test_field(p, tag, b, 2);
    case WIRE_F_TTL:
        test_put32(b, 5000);
        return test_field(p, tag, b, 4);
    case WIRE_F_HEADER:
        return test_header(p, "X-ZT-User", 9, "alice", 5);
    case WIRE_F_REDIRECT:
        return test_field_str(p, tag, "https://login.example/");
    case WIRE_F_REASON_CODE:
        test_put16(b, WIRE_R_DEVICE_REVOKED);
        return test_field(p, tag, b, 2);
    case WIRE_F_REASON:
        return test_field_str(p, tag, "device revoked");
    default:
        fail_msg("no answer field %u", tag);
        return 0;
    }
}


/* Every answer field once, except skip, and dup twice. */
static size_t
test_resp_body(uint8_t *p, uint8_t skip, uint8_t dup)
{
    return test_body(p, test_resp_field, WIRE_F_DECISION, WIRE_F_REASON,
                     skip, dup);
}


/* An exactly sized heap copy, so that ASan sees a read one past the end. */
static uint8_t *
test_copy(const uint8_t *p, size_t len)
{
    uint8_t  *c;

    c = malloc(len ? len : 1);
    assert_non_null(c);
    if (len) {
        memcpy(c, p, len);
    }

    return c;
}


static int
test_peek(const uint8_t *frame, size_t len)
{
    uint8_t       *c;
    wire_frame_t   f;
    int            rc;

    c = test_copy(frame, len);
    rc = wire_frame_peek(c, c + len, &f);
    free(c);

    return rc;
}


/*
 * An exact copy of frame, peeked into *f: the peek must succeed and take
 * all of len.  The caller frees the copy.
 */
static uint8_t *
test_copy_frame(const uint8_t *frame, size_t len, wire_frame_t *f)
{
    uint8_t  *c;

    c = test_copy(frame, len);
    assert_int_equal(wire_frame_peek(c, c + len, f), WIRE_OK);
    assert_int_equal(f->frame_len, len);

    return c;
}


/* Peeks (which must succeed and take all of len) and decodes. */
static int
test_decode_req(const uint8_t *frame, size_t len)
{
    uint8_t       *c;
    wire_frame_t   f;
    wire_req_t     req;
    int            rc;

    c = test_copy_frame(frame, len, &f);
    rc = wire_decode_req(&f, &req);
    free(c);

    return rc;
}


static int
test_decode_resp(const uint8_t *frame, size_t len)
{
    uint8_t       *c;
    wire_frame_t   f;
    wire_resp_t    resp;
    int            rc;

    c = test_copy_frame(frame, len, &f);
    rc = wire_decode_resp(&f, &resp);
    free(c);

    return rc;
}


/* body framed as type with id 7, *n bytes; the caller frees it. */
static uint8_t *
test_body_frame(uint8_t type, const uint8_t *body, size_t len, size_t *n)
{
    uint8_t  *frame;

    frame = malloc(WIRE_HDR_LEN + len);
    assert_non_null(frame);
    *n = test_frame(frame, type, 7, body, len);

    return frame;
}


static int
test_decode_req_body(const uint8_t *body, size_t len)
{
    uint8_t  *frame;
    size_t    n;
    int       rc;

    frame = test_body_frame(WIRE_DECIDE_REQ, body, len, &n);
    rc = test_decode_req(frame, n);
    free(frame);

    return rc;
}


static int
test_decode_resp_body(const uint8_t *body, size_t len)
{
    uint8_t  *frame;
    size_t    n;
    int       rc;

    frame = test_body_frame(WIRE_DECIDE_RESP, body, len, &n);
    rc = test_decode_resp(frame, n);
    free(frame);

    return rc;
}


static wire_str_t
test_str(const char *s)
{
    wire_str_t  r;

    r.data = s;
    r.len = strlen(s);

    return r;
}


static void
test_full_req(wire_req_t *req)
{
    memset(req, 0, sizeof(*req));
    req->method = test_str("POST");
    req->scheme = test_str("https");
    req->host = test_str("app.example.internal");
    req->path = test_str("/api/v1/items");
    req->query = test_str("page=2&sort=desc");
    req->client_addr = test_str("2001:db8::7");
    req->token = test_str("zt1.eyJzdWIiOiJhbGljZSJ9.c2ln");
    req->user_agent = test_str("Mozilla/5.0 (X11; Linux x86_64)");
    memcpy(req->cert_fp, test_fp, WIRE_FP_LEN);
    req->has_cert_fp = 1;
    req->cert_verify = WIRE_CERT_SUCCESS;
}


static void
test_full_resp(wire_resp_t *resp)
{
    memset(resp, 0, sizeof(*resp));
    resp->decision = WIRE_STEP_UP;
    resp->status = 302;
    resp->ttl_ms = 0xfedcba98;
    resp->reason_code = WIRE_R_POLICY;
    resp->reason = test_str("rule admin-mfa:\tneeds a fresh second factor");
    resp->redirect = test_str("https://login.example.internal/step-up?r=%2F");
    resp->nheaders = 3;
    resp->headers[0].name = test_str("X-ZT-User");
    resp->headers[0].value = test_str("alice@example.com");
    resp->headers[1].name = test_str("X-ZT-Device");
    resp->headers[1].value = test_str("");
    resp->headers[2].name = test_str("!#$%&'*+-.^_`|~09azAZ");
    resp->headers[2].value = test_str("eng, ops");
}


static void
test_assert_str(const wire_str_t *s, const char *expect)
{
    assert_int_equal(s->len, strlen(expect));
    if (s->len) {
        assert_memory_equal(s->data, expect, s->len);
    }
}


static void
test_assert_str_eq(const wire_str_t *a, const wire_str_t *b)
{
    assert_int_equal(a->len, b->len);
    if (a->len) {
        assert_memory_equal(a->data, b->data, a->len);
    }
}


static void
test_assert_req_eq(const wire_req_t *a, const wire_req_t *b)
{
    test_assert_str_eq(&a->method, &b->method);
    test_assert_str_eq(&a->scheme, &b->scheme);
    test_assert_str_eq(&a->host, &b->host);
    test_assert_str_eq(&a->path, &b->path);
    test_assert_str_eq(&a->query, &b->query);
    test_assert_str_eq(&a->client_addr, &b->client_addr);
    test_assert_str_eq(&a->token, &b->token);
    test_assert_str_eq(&a->user_agent, &b->user_agent);
    assert_int_equal(a->has_cert_fp, b->has_cert_fp);
    assert_memory_equal(a->cert_fp, b->cert_fp, WIRE_FP_LEN);
    assert_int_equal(a->cert_verify, b->cert_verify);
}


static void
test_assert_resp_eq(const wire_resp_t *a, const wire_resp_t *b)
{
    unsigned  i;

    assert_int_equal(a->decision, b->decision);
    assert_int_equal(a->status, b->status);
    assert_int_equal(a->ttl_ms, b->ttl_ms);
    assert_int_equal(a->reason_code, b->reason_code);
    test_assert_str_eq(&a->reason, &b->reason);
    test_assert_str_eq(&a->redirect, &b->redirect);
    assert_int_equal(a->nheaders, b->nheaders);

    for (i = 0; i < a->nheaders; i++) {
        test_assert_str_eq(&a->headers[i].name, &b->headers[i].name);
        test_assert_str_eq(&a->headers[i].value, &b->headers[i].value);
    }
}


/* Encodes into a roomy buffer; returns the length or the error. */
static int
test_encode_req(const wire_req_t *req)
{
    uint8_t  *buf;
    int       rc;

    buf = malloc(TEST_BUF_SIZE);
    assert_non_null(buf);
    rc = wire_encode_req(buf, buf + TEST_BUF_SIZE, 1, req);
    free(buf);

    return rc;
}


static int
test_encode_resp(const wire_resp_t *resp)
{
    uint8_t  *buf;
    int       rc;

    buf = malloc(TEST_BUF_SIZE);
    assert_non_null(buf);
    rc = wire_encode_resp(buf, buf + TEST_BUF_SIZE, 1, resp);
    free(buf);

    return rc;
}


static void
test_req_roundtrip(void **state)
{
    uint8_t       buf[1024], *c;
    wire_req_t    req, out;
    wire_frame_t  f;
    int           n;

    (void) state;

    test_full_req(&req);

    n = wire_encode_req(buf, buf + sizeof(buf), 0x01020304, &req);
    assert_true(n > WIRE_HDR_LEN);

    /* the header as zt_wire.h lays it out */
    assert_int_equal(buf[0] << 24 | buf[1] << 16 | buf[2] << 8 | buf[3],
                     n - 4);
    assert_int_equal(buf[4], WIRE_VERSION);
    assert_int_equal(buf[5], WIRE_DECIDE_REQ);
    assert_int_equal(buf[6] | buf[7], 0);
    assert_int_equal(buf[8], 1);
    assert_int_equal(buf[11], 4);

    c = test_copy(buf, (size_t) n);
    assert_int_equal(wire_frame_peek(c, c + n, &f), WIRE_OK);
    assert_int_equal(f.frame_len, n);
    assert_int_equal(f.type, WIRE_DECIDE_REQ);
    assert_int_equal(f.id, 0x01020304);
    assert_ptr_equal(f.body, c + WIRE_HDR_LEN);
    assert_ptr_equal(f.body_end, c + n);

    assert_int_equal(wire_decode_req(&f, &out), WIRE_OK);
    test_assert_req_eq(&req, &out);
    test_assert_str(&out.method, "POST");
    test_assert_str(&out.user_agent, "Mozilla/5.0 (X11; Linux x86_64)");
    assert_memory_equal(out.cert_fp, test_fp, WIRE_FP_LEN);

    /* decoded strings point into the frame, not into a copy */
    assert_true((const uint8_t *) out.host.data >= f.body);
    assert_true((const uint8_t *) out.host.data + out.host.len
                <= f.body_end);

    free(c);

    /* optional fields absent: they come back empty, not as garbage */
    memset(&req, 0, sizeof(req));
    req.method = test_str("GET");
    req.scheme = test_str("http");
    req.host = test_str("h");
    req.path = test_str("/");
    req.client_addr = test_str("10.0.0.1");

    n = wire_encode_req(buf, buf + sizeof(buf), 9, &req);
    assert_true(n > 0);
    c = test_copy(buf, (size_t) n);
    assert_int_equal(wire_frame_peek(c, c + n, &f), WIRE_OK);
    assert_int_equal(wire_decode_req(&f, &out), WIRE_OK);
    test_assert_req_eq(&req, &out);
    assert_int_equal(out.has_cert_fp, 0);
    assert_int_equal(out.cert_verify, WIRE_CERT_NONE);
    free(c);
}


static void
test_resp_roundtrip(void **state)
{
    uint8_t       buf[1024], *c;
    wire_resp_t   resp, out;
    wire_frame_t  f;
    int           n;

    (void) state;

    test_full_resp(&resp);

    n = wire_encode_resp(buf, buf + sizeof(buf), 0xa1b2c3d4, &resp);
    assert_true(n > WIRE_HDR_LEN);
    assert_int_equal(buf[5], WIRE_DECIDE_RESP);

    c = test_copy(buf, (size_t) n);
    assert_int_equal(wire_frame_peek(c, c + n, &f), WIRE_OK);
    assert_int_equal(f.frame_len, n);
    assert_int_equal(f.type, WIRE_DECIDE_RESP);
    assert_int_equal(f.id, 0xa1b2c3d4);

    assert_int_equal(wire_decode_resp(&f, &out), WIRE_OK);
    test_assert_resp_eq(&resp, &out);
    test_assert_str(&out.headers[0].name, "X-ZT-User");
    test_assert_str(&out.headers[1].value, "");
    assert_int_equal(out.ttl_ms, 0xfedcba98);
    free(c);

    /* only the required fields */
    memset(&resp, 0, sizeof(resp));
    resp.decision = WIRE_ALLOW;
    resp.status = 200;

    n = wire_encode_resp(buf, buf + sizeof(buf), 3, &resp);
    assert_true(n > 0);
    c = test_copy(buf, (size_t) n);
    assert_int_equal(wire_frame_peek(c, c + n, &f), WIRE_OK);
    assert_int_equal(wire_decode_resp(&f, &out), WIRE_OK);
    test_assert_resp_eq(&resp, &out);
    free(c);
}


static void
test_req_missing_field(void **state)
{
    static const uint8_t  required[] = {
        WIRE_F_METHOD, WIRE_F_SCHEME, WIRE_F_HOST, WIRE_F_PATH,
        WIRE_F_CLIENT_ADDR
    };
    static const uint8_t  optional[] = {
        WIRE_F_QUERY, WIRE_F_CERT_FP, WIRE_F_TOKEN, WIRE_F_USER_AGENT
    };
    uint8_t               body[1024];
    size_t                i, n;

    (void) state;

    n = test_req_body(body, TEST_NO_TAG, TEST_NO_TAG);
    assert_int_equal(test_decode_req_body(body, n), WIRE_OK);

    for (i = 0; i < sizeof(required); i++) {
        n = test_req_body(body, required[i], TEST_NO_TAG);
        assert_int_equal(test_decode_req_body(body, n), WIRE_EMISSING);
    }

    for (i = 0; i < sizeof(optional); i++) {
        n = test_req_body(body, optional[i], TEST_NO_TAG);
        assert_int_equal(test_decode_req_body(body, n), WIRE_OK);
    }

    /* an empty body lacks everything */
    assert_int_equal(test_decode_req_body(body, 0), WIRE_EMISSING);
}


static void
test_resp_missing_field(void **state)
{
    uint8_t  body[1024], tag;
    size_t   n;
    int      expect;

    (void) state;

    for (tag = WIRE_F_DECISION; tag <= WIRE_F_REASON; tag++) {
        expect = (tag == WIRE_F_DECISION || tag == WIRE_F_STATUS)
                 ? WIRE_EMISSING : WIRE_OK;
        n = test_resp_body(body, tag, TEST_NO_TAG);
        assert_int_equal(test_decode_resp_body(body, n), expect);
    }

    assert_int_equal(test_decode_resp_body(body, 0), WIRE_EMISSING);
}


static void
test_req_duplicate_field(void **state)
{
    uint8_t  body[1024], tag;
    size_t   n;

    (void) state;

    for (tag = WIRE_F_METHOD; tag <= WIRE_F_USER_AGENT; tag++) {
        n = test_req_body(body, TEST_NO_TAG, tag);
        assert_int_equal(test_decode_req_body(body, n), WIRE_EFIELD);
    }
}


static void
test_resp_duplicate_field(void **state)
{
    uint8_t  body[1024], tag;
    size_t   n;
    int      expect;

    (void) state;

    for (tag = WIRE_F_DECISION; tag <= WIRE_F_REASON; tag++) {
        /* headers are the one field that may repeat */
        expect = (tag == WIRE_F_HEADER) ? WIRE_OK : WIRE_EFIELD;
        n = test_resp_body(body, TEST_NO_TAG, tag);
        assert_int_equal(test_decode_resp_body(body, n), expect);
    }
}


static void
test_unknown_tag(void **state)
{
    static const uint8_t  req_bad[] = {
        0, 11, 31, WIRE_F_DECISION, WIRE_F_STATUS, WIRE_F_HEADER, 255
    };
    static const uint8_t  resp_bad[] = {
        0, WIRE_F_METHOD, WIRE_F_HOST, 31, 39, 64, 255
    };
    uint8_t               body[1024];
    size_t                i, n;

    (void) state;

    for (i = 0; i < sizeof(req_bad); i++) {
        n = test_req_body(body, TEST_NO_TAG, TEST_NO_TAG);
        n += test_field_str(body + n, req_bad[i], "x");
        assert_int_equal(test_decode_req_body(body, n), WIRE_EFIELD);

        /* first in the body too, before any known field */
        n = test_field_str(body, req_bad[i], "x");
        n += test_req_body(body + n, TEST_NO_TAG, TEST_NO_TAG);
        assert_int_equal(test_decode_req_body(body, n), WIRE_EFIELD);
    }

    for (i = 0; i < sizeof(resp_bad); i++) {
        n = test_resp_body(body, TEST_NO_TAG, TEST_NO_TAG);
        n += test_field_str(body + n, resp_bad[i], "x");
        assert_int_equal(test_decode_resp_body(body, n), WIRE_EFIELD);
    }
}


static void
test_field_past_frame(void **state)
{
    uint8_t  body[1024];
    size_t   n, cut;

    (void) state;

    /* the last field claims one byte more than the frame holds */
    n = test_req_body(body, TEST_NO_TAG, TEST_NO_TAG);
    n += test_field_str(body + n, WIRE_F_QUERY, "abc");
    test_put16(body + n - 3 - 2, 4);
    assert_int_equal(test_decode_req_body(body, n), WIRE_EMALFORMED);

    /* ... or far more */
    test_put16(body + n - 3 - 2, 0xffff);
    assert_int_equal(test_decode_req_body(body, n), WIRE_EMALFORMED);

    /* a field header cut after its tag or after one length byte */
    n = test_req_body(body, TEST_NO_TAG, TEST_NO_TAG);
    for (cut = 1; cut < TEST_FIELD_HDR; cut++) {
        body[n] = WIRE_F_QUERY;
        body[n + 1] = 0;
        assert_int_equal(test_decode_req_body(body, n + cut),
                         WIRE_EMALFORMED);
    }

    n = test_resp_body(body, TEST_NO_TAG, TEST_NO_TAG);
    n += test_field_str(body + n, WIRE_F_REASON, "abc");
    test_put16(body + n - 3 - 2, 4);
    assert_int_equal(test_decode_resp_body(body, n), WIRE_EMALFORMED);

    n = test_resp_body(body, TEST_NO_TAG, TEST_NO_TAG);
    for (cut = 1; cut < TEST_FIELD_HDR; cut++) {
        body[n] = WIRE_F_REASON;
        body[n + 1] = 0;
        assert_int_equal(test_decode_resp_body(body, n + cut),
                         WIRE_EMALFORMED);
    }
}


static void
test_wrong_type(void **state)
{
    uint8_t  body[1024], frame[1100];
    size_t   n;

    (void) state;

    n = test_req_body(body, TEST_NO_TAG, TEST_NO_TAG);
    n = test_frame(frame, WIRE_DECIDE_REQ, 1, body, n);
    assert_int_equal(test_decode_resp(frame, n), WIRE_ETYPE);
    frame[5] = 0;
    assert_int_equal(test_decode_req(frame, n), WIRE_ETYPE);

    n = test_resp_body(body, TEST_NO_TAG, TEST_NO_TAG);
    n = test_frame(frame, WIRE_DECIDE_RESP, 1, body, n);
    assert_int_equal(test_decode_req(frame, n), WIRE_ETYPE);
    frame[5] = 3;
    assert_int_equal(test_decode_resp(frame, n), WIRE_ETYPE);
}


static void
test_peek_every_prefix(void **state)
{
    uint8_t       buf[1024], *c;
    wire_req_t    req;
    wire_frame_t  f;
    size_t        k;
    int           n;

    (void) state;

    test_full_req(&req);
    n = wire_encode_req(buf, buf + sizeof(buf), 42, &req);
    assert_true(n > 0);

    for (k = 0; k < (size_t) n; k++) {
        c = test_copy(buf, k);
        assert_int_equal(wire_frame_peek(c, c + k, &f), WIRE_AGAIN);
        free(c);
    }

    c = test_copy(buf, (size_t) n);
    assert_int_equal(wire_frame_peek(c, c + n, &f), WIRE_OK);
    assert_int_equal(f.frame_len, n);
    assert_int_equal(f.id, 42);
    free(c);

    /* the smallest frame: a header and an empty body */
    test_frame(buf, WIRE_DECIDE_RESP, 5, NULL, 0);
    for (k = 0; k < WIRE_HDR_LEN; k++) {
        assert_int_equal(test_peek(buf, k), WIRE_AGAIN);
    }
    c = test_copy(buf, WIRE_HDR_LEN);
    assert_int_equal(wire_frame_peek(c, c + WIRE_HDR_LEN, &f), WIRE_OK);
    assert_int_equal(f.frame_len, WIRE_HDR_LEN);
    assert_ptr_equal(f.body, f.body_end);
    free(c);
}


static void
test_peek_back_to_back(void **state)
{
    uint8_t         buf[2048], *c;
    const uint8_t  *p, *end;
    wire_req_t      req;
    wire_resp_t     resp;
    wire_frame_t    f;
    int             n1, n2;

    (void) state;

    test_full_req(&req);
    test_full_resp(&resp);

    n1 = wire_encode_req(buf, buf + sizeof(buf), 100, &req);
    assert_true(n1 > 0);
    n2 = wire_encode_req(buf + n1, buf + sizeof(buf), 101, &req);
    assert_true(n2 > 0);

    c = test_copy(buf, (size_t) (n1 + n2));
    p = c;
    end = c + n1 + n2;

    assert_int_equal(wire_frame_peek(p, end, &f), WIRE_OK);
    assert_int_equal(f.id, 100);
    assert_int_equal(f.frame_len, n1);
    assert_int_equal(wire_decode_req(&f, &req), WIRE_OK);
    p += f.frame_len;

    assert_int_equal(wire_frame_peek(p, end, &f), WIRE_OK);
    assert_int_equal(f.id, 101);
    assert_int_equal(f.frame_len, n2);
    assert_int_equal(wire_decode_req(&f, &req), WIRE_OK);
    p += f.frame_len;

    assert_ptr_equal(p, end);
    assert_int_equal(wire_frame_peek(p, end, &f), WIRE_AGAIN);
    free(c);

    /* a whole frame followed by part of the next */
    test_full_resp(&resp);
    n1 = wire_encode_resp(buf, buf + sizeof(buf), 200, &resp);
    assert_true(n1 > 0);
    n2 = wire_encode_resp(buf + n1, buf + sizeof(buf), 201, &resp);
    assert_true(n2 > 0);

    c = test_copy(buf, (size_t) (n1 + n2 - 1));
    end = c + n1 + n2 - 1;

    assert_int_equal(wire_frame_peek(c, end, &f), WIRE_OK);
    assert_int_equal(f.id, 200);
    assert_int_equal(wire_decode_resp(&f, &resp), WIRE_OK);
    assert_int_equal(wire_frame_peek(c + f.frame_len, end, &f), WIRE_AGAIN);
    free(c);
}


static void
test_peek_too_big(void **state)
{
    uint8_t  hdr[4];

    (void) state;

    /* refused from the length alone: no waiting for 64 KiB to arrive */
    test_put32(hdr, WIRE_MAX_FRAME - 3);
    assert_int_equal(test_peek(hdr, 4), WIRE_ETOOBIG);

    test_put32(hdr, 0xffffffff);
    assert_int_equal(test_peek(hdr, 4), WIRE_ETOOBIG);

    test_put32(hdr, 0x80000000);
    assert_int_equal(test_peek(hdr, 4), WIRE_ETOOBIG);

    /* the largest allowed length is merely incomplete */
    test_put32(hdr, WIRE_MAX_FRAME - 4);
    assert_int_equal(test_peek(hdr, 4), WIRE_AGAIN);
}


static void
test_peek_too_small(void **state)
{
    uint8_t   frame[WIRE_HDR_LEN];
    uint32_t  len;

    (void) state;

    /* a length that cannot even hold version, type, flags and id */
    for (len = 0; len < WIRE_HDR_LEN - 4; len++) {
        test_frame(frame, WIRE_DECIDE_REQ, 1, NULL, 0);
        test_put32(frame, len);
        assert_int_equal(test_peek(frame, sizeof(frame)), WIRE_EMALFORMED);
        assert_int_equal(test_peek(frame, 4), WIRE_EMALFORMED);
    }
}


static void
test_peek_wrong_version(void **state)
{
    static const uint8_t  bad[] = { 0, WIRE_VERSION + 1, 0x80, 0xff };
    uint8_t               body[1024], frame[1100];
    size_t                i, n;

    (void) state;

    n = test_req_body(body, TEST_NO_TAG, TEST_NO_TAG);
    n = test_frame(frame, WIRE_DECIDE_REQ, 1, body, n);

    for (i = 0; i < sizeof(bad); i++) {
        frame[4] = bad[i];
        /* known wrong as soon as the version byte is in */
        assert_int_equal(test_peek(frame, 5), WIRE_EVERSION);
        assert_int_equal(test_peek(frame, n), WIRE_EVERSION);
    }
}


static void
test_peek_flags(void **state)
{
    uint8_t  body[1024], frame[1100];
    size_t   n;

    (void) state;

    n = test_req_body(body, TEST_NO_TAG, TEST_NO_TAG);
    n = test_frame(frame, WIRE_DECIDE_REQ, 1, body, n);

    frame[6] = 0x80;
    assert_int_equal(test_peek(frame, n), WIRE_EMALFORMED);
    frame[6] = 0;
    frame[7] = 0x01;
    assert_int_equal(test_peek(frame, n), WIRE_EMALFORMED);
    frame[7] = 0;
    assert_int_equal(test_peek(frame, n), WIRE_OK);
}


static void
test_cert_fp_length(void **state)
{
    static const size_t  lens[] = { 0, 1, WIRE_FP_LEN - 1, WIRE_FP_LEN + 1 };
    uint8_t              body[1024], fp[WIRE_FP_LEN + 1];
    size_t               i, n;

    (void) state;

    memset(fp, 0x5a, sizeof(fp));

    for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        n = test_req_body(body, WIRE_F_CERT_FP, TEST_NO_TAG);
        n += test_field(body + n, WIRE_F_CERT_FP, fp, lens[i]);
        assert_int_equal(test_decode_req_body(body, n), WIRE_EMALFORMED);
    }

    n = test_req_body(body, WIRE_F_CERT_FP, TEST_NO_TAG);
    n += test_field(body + n, WIRE_F_CERT_FP, fp, WIRE_FP_LEN);
    assert_int_equal(test_decode_req_body(body, n), WIRE_OK);
}


static void
test_cert_fp_without_verify(void **state)
{
    uint8_t     body[1024], none;
    size_t      n;
    wire_req_t  req;

    (void) state;

    /* no verify field at all */
    n = test_req_body(body, WIRE_F_CERT_VERIFY, TEST_NO_TAG);
    assert_int_equal(test_decode_req_body(body, n), WIRE_EMALFORMED);

    /* a verify field saying no certificate was presented */
    none = WIRE_CERT_NONE;
    n = test_req_body(body, WIRE_F_CERT_VERIFY, TEST_NO_TAG);
    n += test_field(body + n, WIRE_F_CERT_VERIFY, &none, 1);
    assert_int_equal(test_decode_req_body(body, n), WIRE_EMALFORMED);

    /* the encoder refuses to produce either */
    test_full_req(&req);
    req.cert_verify = WIRE_CERT_NONE;
    assert_int_equal(test_encode_req(&req), WIRE_EMALFORMED);

    /* a verify result without a fingerprint is fine */
    n = test_req_body(body, WIRE_F_CERT_FP, TEST_NO_TAG);
    assert_int_equal(test_decode_req_body(body, n), WIRE_OK);
    req.has_cert_fp = 0;
    req.cert_verify = WIRE_CERT_FAILED;
    assert_true(test_encode_req(&req) > 0);
}


static void
test_cert_verify_range(void **state)
{
    uint8_t     body[1024], v[2];
    size_t      n;
    wire_req_t  req;

    (void) state;

    v[0] = WIRE_CERT_FAILED + 1;
    n = test_req_body(body, WIRE_F_CERT_VERIFY, TEST_NO_TAG);
    n += test_field(body + n, WIRE_F_CERT_VERIFY, v, 1);
    assert_int_equal(test_decode_req_body(body, n), WIRE_EMALFORMED);

    v[0] = WIRE_CERT_SUCCESS;
    v[1] = 0;
    n = test_req_body(body, WIRE_F_CERT_VERIFY, TEST_NO_TAG);
    n += test_field(body + n, WIRE_F_CERT_VERIFY, v, 2);
    assert_int_equal(test_decode_req_body(body, n), WIRE_EMALFORMED);

    n = test_req_body(body, WIRE_F_CERT_VERIFY, TEST_NO_TAG);
    n += test_field(body + n, WIRE_F_CERT_VERIFY, v, 0);
    assert_int_equal(test_decode_req_body(body, n), WIRE_EMALFORMED);

    test_full_req(&req);
    req.cert_verify = WIRE_CERT_FAILED + 1;
    assert_int_equal(test_encode_req(&req), WIRE_EMALFORMED);
}


static void
test_header_name(void **state)
{
    static const char  *bad[] = {
        "X Bad", "X-Bad\r", "\rX", "X-Bad\n", "X-A:", "X(A)", "X\"A",
        "X\x7f", "X\x80", "X/A", "X@A", "X\tA"
    };
    uint8_t             body[1024];
    size_t              i, n;
    wire_resp_t         resp;

    (void) state;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        n = test_resp_body(body, TEST_NO_TAG, TEST_NO_TAG);
        n += test_header(body + n, bad[i], strlen(bad[i]), "v", 1);
        assert_int_equal(test_decode_resp_body(body, n), WIRE_EMALFORMED);

        test_full_resp(&resp);
        resp.headers[1].name = test_str(bad[i]);
        assert_int_equal(test_encode_resp(&resp), WIRE_EMALFORMED);
    }

    /* a NUL inside the name, which strlen-based code would miss */
    n = test_resp_body(body, TEST_NO_TAG, TEST_NO_TAG);
    n += test_header(body + n, "X\0A", 3, "v", 1);
    assert_int_equal(test_decode_resp_body(body, n), WIRE_EMALFORMED);

    test_full_resp(&resp);
    resp.headers[0].name.data = "X\0A";
    resp.headers[0].name.len = 3;
    assert_int_equal(test_encode_resp(&resp), WIRE_EMALFORMED);

    /* an empty name */
    n = test_resp_body(body, TEST_NO_TAG, TEST_NO_TAG);
    n += test_header(body + n, "", 0, "v", 1);
    assert_int_equal(test_decode_resp_body(body, n), WIRE_EMALFORMED);

    test_full_resp(&resp);
    resp.headers[0].name = test_str("");
    assert_int_equal(test_encode_resp(&resp), WIRE_EMALFORMED);

    /* a name length that runs past the header field */
    n = test_resp_body(body, TEST_NO_TAG, TEST_NO_TAG);
    n += test_header(body + n, "X-A", 3, "", 0);
    test_put16(body + n - 3 - 2, 4);
    assert_int_equal(test_decode_resp_body(body, n), WIRE_EMALFORMED);

    /* a header field too short to hold the name length */
    n = test_resp_body(body, TEST_NO_TAG, TEST_NO_TAG);
    n += test_field(body + n, WIRE_F_HEADER, "\0", 1);
    assert_int_equal(test_decode_resp_body(body, n), WIRE_EMALFORMED);
}


static void
test_header_value(void **state)
{
    static const char  *bad[] = {
        "a\rb", "a\nb", "a\r\nSet-Cookie: s=1", "\r", "\n", "a\x7f",
        "a\x01"
    };
    uint8_t             body[1024];
    size_t              i, n;
    wire_resp_t         resp;

    (void) state;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        n = test_resp_body(body, TEST_NO_TAG, TEST_NO_TAG);
        n += test_header(body + n, "X-A", 3, bad[i], strlen(bad[i]));
        assert_int_equal(test_decode_resp_body(body, n), WIRE_EMALFORMED);

        test_full_resp(&resp);
        resp.headers[2].value = test_str(bad[i]);
        assert_int_equal(test_encode_resp(&resp), WIRE_EMALFORMED);
    }

    n = test_resp_body(body, TEST_NO_TAG, TEST_NO_TAG);
    n += test_header(body + n, "X-A", 3, "a\0b", 3);
    assert_int_equal(test_decode_resp_body(body, n), WIRE_EMALFORMED);

    test_full_resp(&resp);
    resp.headers[0].value.data = "a\0b";
    resp.headers[0].value.len = 3;
    assert_int_equal(test_encode_resp(&resp), WIRE_EMALFORMED);

    /* a tab and bytes above 0x7f are allowed */
    n = test_resp_body(body, TEST_NO_TAG, TEST_NO_TAG);
    n += test_header(body + n, "X-A", 3, "a\tb\xc3\xa9", 5);
    assert_int_equal(test_decode_resp_body(body, n), WIRE_OK);
}


static void
test_reason_redirect_text(void **state)
{
    static const char  *bad[] = { "a\rb", "a\nb", "\r\n", "a\x7f" };
    static const uint8_t  tags[] = { WIRE_F_REASON, WIRE_F_REDIRECT };
    uint8_t             body[1024];
    size_t              i, t, n;
    wire_resp_t         resp;

    (void) state;

    for (t = 0; t < sizeof(tags); t++) {
        for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
            n = test_resp_body(body, tags[t], TEST_NO_TAG);
            n += test_field_str(body + n, tags[t], bad[i]);
            assert_int_equal(test_decode_resp_body(body, n),
                             WIRE_EMALFORMED);
        }

        n = test_resp_body(body, tags[t], TEST_NO_TAG);
        n += test_field(body + n, tags[t], "a\0b", 3);
        assert_int_equal(test_decode_resp_body(body, n), WIRE_EMALFORMED);
    }

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        test_full_resp(&resp);
        resp.reason = test_str(bad[i]);
        assert_int_equal(test_encode_resp(&resp), WIRE_EMALFORMED);

        test_full_resp(&resp);
        resp.redirect = test_str(bad[i]);
        assert_int_equal(test_encode_resp(&resp), WIRE_EMALFORMED);
    }

    test_full_resp(&resp);
    resp.redirect.data = "/a\0b";
    resp.redirect.len = 4;
    assert_int_equal(test_encode_resp(&resp), WIRE_EMALFORMED);
}


static void
test_too_many_headers(void **state)
{
    uint8_t      body[2048];
    size_t       n;
    unsigned     i;
    wire_resp_t  resp;

    (void) state;

    n = test_resp_body(body, WIRE_F_HEADER, TEST_NO_TAG);
    for (i = 0; i < WIRE_MAX_HEADERS; i++) {
        n += test_header(body + n, "X-H", 3, "v", 1);
    }
    assert_int_equal(test_decode_resp_body(body, n), WIRE_OK);

    n += test_header(body + n, "X-H", 3, "v", 1);
    assert_int_equal(test_decode_resp_body(body, n), WIRE_EMALFORMED);

    test_full_resp(&resp);
    for (i = 0; i < WIRE_MAX_HEADERS; i++) {
        resp.headers[i].name = test_str("X-H");
        resp.headers[i].value = test_str("v");
    }
    resp.nheaders = WIRE_MAX_HEADERS;
    assert_true(test_encode_resp(&resp) > 0);

    resp.nheaders = WIRE_MAX_HEADERS + 1;
    assert_int_equal(test_encode_resp(&resp), WIRE_EMALFORMED);
}


static void
test_status_range(void **state)
{
    static const uint16_t  bad[] = { 0, 1, 99, 600, 999, 0xffff };
    static const uint16_t  good[] = { 100, 200, 599 };
    uint8_t                body[1024], b[2];
    size_t                 i, n;
    wire_resp_t            resp;

    (void) state;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        test_put16(b, bad[i]);
        n = test_resp_body(body, WIRE_F_STATUS, TEST_NO_TAG);
        n += test_field(body + n, WIRE_F_STATUS, b, 2);
        assert_int_equal(test_decode_resp_body(body, n), WIRE_EMALFORMED);

        test_full_resp(&resp);
        resp.status = bad[i];
        assert_int_equal(test_encode_resp(&resp), WIRE_EMALFORMED);
    }

    for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        test_put16(b, good[i]);
        n = test_resp_body(body, WIRE_F_STATUS, TEST_NO_TAG);
        n += test_field(body + n, WIRE_F_STATUS, b, 2);
        assert_int_equal(test_decode_resp_body(body, n), WIRE_OK);

        test_full_resp(&resp);
        resp.status = good[i];
        assert_true(test_encode_resp(&resp) > 0);
    }

    /* the wrong width */
    n = test_resp_body(body, WIRE_F_STATUS, TEST_NO_TAG);
    n += test_field(body + n, WIRE_F_STATUS, "\xc8", 1);
    assert_int_equal(test_decode_resp_body(body, n), WIRE_EMALFORMED);
}


static void
test_decision_range(void **state)
{
    static const uint8_t  bad[] = { 0, WIRE_STEP_UP + 1, 0x80, 0xff };
    uint8_t               body[1024], b[2];
    size_t                i, n;
    unsigned              d;
    wire_resp_t           resp;

    (void) state;

    for (i = 0; i < sizeof(bad); i++) {
        n = test_resp_body(body, WIRE_F_DECISION, TEST_NO_TAG);
        n += test_field(body + n, WIRE_F_DECISION, &bad[i], 1);
        assert_int_equal(test_decode_resp_body(body, n), WIRE_EMALFORMED);

        test_full_resp(&resp);
        resp.decision = bad[i];
        assert_int_equal(test_encode_resp(&resp), WIRE_EMALFORMED);
    }

    for (d = WIRE_ALLOW; d <= WIRE_STEP_UP; d++) {
        b[0] = (uint8_t) d;
        n = test_resp_body(body, WIRE_F_DECISION, TEST_NO_TAG);
        n += test_field(body + n, WIRE_F_DECISION, b, 1);
        assert_int_equal(test_decode_resp_body(body, n), WIRE_OK);
    }

    /* the wrong width */
    b[0] = WIRE_ALLOW;
    b[1] = 0;
    n = test_resp_body(body, WIRE_F_DECISION, TEST_NO_TAG);
    n += test_field(body + n, WIRE_F_DECISION, b, 2);
    assert_int_equal(test_decode_resp_body(body, n), WIRE_EMALFORMED);
}


static int
test_encode_req_at(uint8_t *p, uint8_t *end, const void *msg)
{
    return wire_encode_req(p, end, 1, msg);
}


static int
test_encode_resp_at(uint8_t *p, uint8_t *end, const void *msg)
{
    return wire_encode_resp(p, end, 1, msg);
}


/*
 * Every buffer shorter than need gives WIRE_ENOSPC, one of need bytes
 * takes all of it.  The buffers are exactly sized: ASan catches a write
 * past the end.
 */
static void
test_assert_enospc(test_encode_pt encode, const void *msg, int need)
{
    uint8_t  *buf;
    size_t    size;

    for (size = 0; size < (size_t) need; size++) {
        buf = malloc(size ? size : 1);
        assert_non_null(buf);
        assert_int_equal(encode(buf, buf + size, msg), WIRE_ENOSPC);
        free(buf);
    }

    buf = malloc((size_t) need);
    assert_non_null(buf);
    assert_int_equal(encode(buf, buf + need, msg), need);
    free(buf);
}


static void
test_req_enospc(void **state)
{
    wire_req_t  req;
    int         need;

    (void) state;

    test_full_req(&req);
    need = test_encode_req(&req);
    assert_true(need > 0);

    test_assert_enospc(test_encode_req_at, &req, need);
}


static void
test_resp_enospc(void **state)
{
    wire_resp_t  resp;
    int          need;

    (void) state;

    test_full_resp(&resp);
    need = test_encode_resp(&resp);
    assert_true(need > 0);

    test_assert_enospc(test_encode_resp_at, &resp, need);
}


static void
test_id_preserved(void **state)
{
    static const uint32_t  ids[] = { 0, 1, 0x7fffffff, 0x80000000,
                                     0xffffffff };
    uint8_t                buf[1024];
    size_t                 i;
    int                    n;
    wire_req_t             req;
    wire_resp_t            resp;
    wire_frame_t           f;

    (void) state;

    test_full_req(&req);
    test_full_resp(&resp);

    for (i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
        n = wire_encode_req(buf, buf + sizeof(buf), ids[i], &req);
        assert_true(n > 0);
        assert_int_equal(wire_frame_peek(buf, buf + n, &f), WIRE_OK);
        assert_int_equal(f.id, ids[i]);

        n = wire_encode_resp(buf, buf + sizeof(buf), ids[i], &resp);
        assert_true(n > 0);
        assert_int_equal(wire_frame_peek(buf, buf + n, &f), WIRE_OK);
        assert_int_equal(f.id, ids[i]);
    }
}


static void
test_req_max_frame(void **state)
{
    char          *token;
    uint8_t       *buf;
    wire_req_t     req;
    wire_frame_t   f;
    size_t         base;
    int            n;

    (void) state;

    token = malloc(WIRE_MAX_FRAME);
    buf = malloc(TEST_BUF_SIZE);
    assert_non_null(token);
    assert_non_null(buf);
    memset(token, 't', WIRE_MAX_FRAME);

    test_full_req(&req);
    req.token.len = 0;
    n = test_encode_req(&req);
    assert_true(n > 0);
    base = (size_t) n;

    /* a token that makes the frame exactly WIRE_MAX_FRAME bytes */
    req.token.data = token;
    req.token.len = WIRE_MAX_FRAME - base - TEST_FIELD_HDR;
    n = wire_encode_req(buf, buf + TEST_BUF_SIZE, 1, &req);
    assert_int_equal(n, WIRE_MAX_FRAME);
    assert_int_equal(wire_frame_peek(buf, buf + n, &f), WIRE_OK);
    assert_int_equal(f.frame_len, WIRE_MAX_FRAME);
    assert_int_equal(wire_decode_req(&f, &req), WIRE_OK);
    assert_int_equal(req.token.len, WIRE_MAX_FRAME - base - TEST_FIELD_HDR);

    /* one byte more is refused, even with room in the buffer */
    test_full_req(&req);
    req.token.data = token;
    req.token.len = WIRE_MAX_FRAME - base - TEST_FIELD_HDR + 1;
    assert_int_equal(wire_encode_req(buf, buf + TEST_BUF_SIZE, 1, &req),
                     WIRE_EMALFORMED);

    /*
     * In a buffer of WIRE_MAX_FRAME bytes the encoder runs out of room
     * before it can tell that the frame is too big: either way it fails.
     */
    assert_true(wire_encode_req(buf, buf + WIRE_MAX_FRAME, 1, &req) < 0);

    /* two fields each within their u16 but too big together */
    test_full_req(&req);
    req.token.data = token;
    req.token.len = 0xffff;
    req.user_agent.data = token;
    req.user_agent.len = 0xffff;
    assert_int_equal(wire_encode_req(buf, buf + TEST_BUF_SIZE, 1, &req),
                     WIRE_EMALFORMED);

    /* one field too long for its length prefix */
    test_full_req(&req);
    req.path.data = token;
    req.path.len = 0x10000;
    assert_int_equal(wire_encode_req(buf, buf + TEST_BUF_SIZE, 1, &req),
                     WIRE_EMALFORMED);

    free(buf);
    free(token);
}


static void
test_resp_max_frame(void **state)
{
    char          *text;
    uint8_t       *buf;
    wire_resp_t    resp;
    wire_frame_t   f;
    size_t         base;
    int            n;

    (void) state;

    text = malloc(WIRE_MAX_FRAME);
    buf = malloc(TEST_BUF_SIZE);
    assert_non_null(text);
    assert_non_null(buf);
    memset(text, 'r', WIRE_MAX_FRAME);

    test_full_resp(&resp);
    resp.reason.len = 0;
    n = test_encode_resp(&resp);
    assert_true(n > 0);
    base = (size_t) n;

    resp.reason.data = text;
    resp.reason.len = WIRE_MAX_FRAME - base - TEST_FIELD_HDR;
    n = wire_encode_resp(buf, buf + TEST_BUF_SIZE, 1, &resp);
    assert_int_equal(n, WIRE_MAX_FRAME);
    assert_int_equal(wire_frame_peek(buf, buf + n, &f), WIRE_OK);
    assert_int_equal(wire_decode_resp(&f, &resp), WIRE_OK);

    test_full_resp(&resp);
    resp.reason.data = text;
    resp.reason.len = WIRE_MAX_FRAME - base - TEST_FIELD_HDR + 1;
    assert_int_equal(wire_encode_resp(buf, buf + TEST_BUF_SIZE, 1, &resp),
                     WIRE_EMALFORMED);

    /* a header whose name and value overflow the field's u16 together */
    test_full_resp(&resp);
    resp.headers[2].value.data = text;
    resp.headers[2].value.len = 0xffff - 2 - resp.headers[2].name.len + 1;
    assert_int_equal(wire_encode_resp(buf, buf + TEST_BUF_SIZE, 1, &resp),
                     WIRE_EMALFORMED);

    free(buf);
    free(text);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_req_roundtrip),
        cmocka_unit_test(test_resp_roundtrip),
        cmocka_unit_test(test_req_missing_field),
        cmocka_unit_test(test_resp_missing_field),
        cmocka_unit_test(test_req_duplicate_field),
        cmocka_unit_test(test_resp_duplicate_field),
        cmocka_unit_test(test_unknown_tag),
        cmocka_unit_test(test_field_past_frame),
        cmocka_unit_test(test_wrong_type),
        cmocka_unit_test(test_peek_every_prefix),
        cmocka_unit_test(test_peek_back_to_back),
        cmocka_unit_test(test_peek_too_big),
        cmocka_unit_test(test_peek_too_small),
        cmocka_unit_test(test_peek_wrong_version),
        cmocka_unit_test(test_peek_flags),
        cmocka_unit_test(test_cert_fp_length),
        cmocka_unit_test(test_cert_fp_without_verify),
        cmocka_unit_test(test_cert_verify_range),
        cmocka_unit_test(test_header_name),
        cmocka_unit_test(test_header_value),
        cmocka_unit_test(test_reason_redirect_text),
        cmocka_unit_test(test_too_many_headers),
        cmocka_unit_test(test_status_range),
        cmocka_unit_test(test_decision_range),
        cmocka_unit_test(test_req_enospc),
        cmocka_unit_test(test_resp_enospc),
        cmocka_unit_test(test_id_preserved),
        cmocka_unit_test(test_req_max_frame),
        cmocka_unit_test(test_resp_max_frame),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
