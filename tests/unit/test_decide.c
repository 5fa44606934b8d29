/*
 * Unit tests for trustd/decide.c: every decision branch against a real
 * store in a temporary directory, and every answer must encode.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ftw.h>
#include <time.h>
#include <cmocka.h>

#include "tests/unit/tmpdir.h"

#include "trustd/decide.h"
#include "trustd/log.h"
#include "trustd/store.h"


typedef struct {
    char             dir[256];
    store_t         *st;
    decide_ctx_t     ctx;
    decide_conf_t    conf;
    store_device_t   active, quarantined, revoked, expired, forever;
} test_env_t;


static int test_setup(void **state);
static int test_teardown(void **state);
static void test_device(test_env_t *env, store_device_t *dev, unsigned i,
    store_device_status_t status, int64_t expires);
static void test_req(wire_req_t *req, uint8_t verify, const uint8_t *fp);
static void test_expect_deny(test_env_t *env, const wire_req_t *req,
    uint16_t status, uint16_t code, const char *reason);
static const char *test_header(const wire_resp_t *resp, const char *name,
    char *buf, size_t size);
static void test_no_cert(void **state);
static void test_cert_unverified(void **state);
static void test_unknown_device(void **state);
static void test_revoked(void **state);
static void test_quarantined(void **state);
static void test_expired(void **state);
static void test_allow(void **state);
static void test_allow_without_expiry(void **state);
static void test_store_error(void **state);
static void test_revocation_seen_next_decision(void **state);



static void
test_device(test_env_t *env, store_device_t *dev, unsigned i,
    store_device_status_t status, int64_t expires)
{
    store_err_t  err;
    unsigned     k;

    memset(dev, 0, sizeof(*dev));

    for (k = 0; k < STORE_FP_LEN; k++) {
        dev->fp[k] = (uint8_t) (i * 17 + k);
    }

    snprintf(dev->id, sizeof(dev->id),
             STORE_DEVICE_URN "%08x-1111-4111-8111-111111111111", i);
    snprintf(dev->owner, sizeof(dev->owner), "owner%u", i);
    dev->expires_at = expires;
    dev->status = STORE_DEVICE_ACTIVE;

    assert_int_equal(store_device_enroll(env->st, dev, "test", &err), 0);

    if (status != STORE_DEVICE_ACTIVE) {
        assert_int_equal(store_device_set_status(env->st, dev->fp, status,
                                                 "test", NULL, &err), 0);
        dev->status = status;
    }
}


static int
test_setup(void **state)
{
    test_env_t   *env;
    store_err_t   err;
    char          path[300];
    int64_t       now;

    env = calloc(1, sizeof(*env));
    if (env == NULL) {
        return -1;
    }

    if (test_tmpdir_make(env->dir, sizeof(env->dir), "ztdecide") != 0) {
        free(env);
        return -1;
    }

    snprintf(path, sizeof(path), "%s/store", env->dir);

    if (store_open(&env->st, path, 0, 0, &err) != 0) {
        fprintf(stderr, "%s\n", err.msg);
        free(env);
        return -1;
    }

    env->conf.allow_ttl_ms = 1500;
    now = (int64_t) time(NULL);

    test_device(env, &env->active, 1, STORE_DEVICE_ACTIVE, now + 3600);
    test_device(env, &env->quarantined, 2, STORE_DEVICE_QUARANTINED,
                now + 3600);
    test_device(env, &env->revoked, 3, STORE_DEVICE_REVOKED, now + 3600);
    test_device(env, &env->expired, 4, STORE_DEVICE_ACTIVE, now - 10);
    test_device(env, &env->forever, 5, STORE_DEVICE_ACTIVE, 0);

    *state = env;

    return 0;
}


static int
test_teardown(void **state)
{
    test_env_t  *env = *state;

    decide_ctx_free(&env->ctx);
    store_close(env->st);
    test_tmpdir_remove(env->dir);
    free(env);

    return 0;
}


static void
test_req(wire_req_t *req, uint8_t verify, const uint8_t *fp)
{
    memset(req, 0, sizeof(*req));

    req->method.data = "GET";
    req->method.len = 3;
    req->scheme.data = "https";
    req->scheme.len = 5;
    req->host.data = "app.example.gov";
    req->host.len = strlen(req->host.data);
    req->path.data = "/index.html";
    req->path.len = strlen(req->path.data);
    req->client_addr.data = "192.0.2.7";
    req->client_addr.len = strlen(req->client_addr.data);
    req->cert_verify = verify;

    if (fp != NULL) {
        memcpy(req->cert_fp, fp, WIRE_FP_LEN);
        req->has_cert_fp = 1;
    }
}


/* Decide, check a deny, and check that the answer encodes. */
static void
test_expect_deny(test_env_t *env, const wire_req_t *req, uint16_t status,
    uint16_t code, const char *reason)
{
    wire_resp_t  resp;
    uint8_t      buf[WIRE_MAX_FRAME];

    assert_int_equal(decide(env->st, &env->conf, req, &resp, &env->ctx),
                     WIRE_DENY);
    assert_int_equal(resp.decision, WIRE_DENY);
    assert_int_equal(resp.status, status);
    assert_int_equal(resp.reason_code, code);
    assert_int_equal(resp.ttl_ms, 0);
    assert_int_equal(resp.nheaders, 0);
    assert_int_equal(resp.reason.len, strlen(reason));
    assert_memory_equal(resp.reason.data, reason, resp.reason.len);
    assert_true(wire_encode_resp(buf, buf + sizeof(buf), 7, &resp) > 0);
}


static const char *
test_header(const wire_resp_t *resp, const char *name, char *buf,
    size_t size)
{
    unsigned  i;

    for (i = 0; i < resp->nheaders; i++) {
        if (resp->headers[i].name.len == strlen(name)
            && memcmp(resp->headers[i].name.data, name,
                      resp->headers[i].name.len) == 0)
        {
            snprintf(buf, size, "%.*s", (int) resp->headers[i].value.len,
                     resp->headers[i].value.data);
            return buf;
        }
    }

    return NULL;
}


static void
test_no_cert(void **state)
{
    test_env_t  *env = *state;
    wire_req_t   req;

    test_req(&req, WIRE_CERT_NONE, NULL);
    test_expect_deny(env, &req, 403, WIRE_R_NO_CERT,
                     "no device certificate");

    /* a fingerprint without a certificate is still no certificate */
    test_req(&req, WIRE_CERT_NONE, env->active.fp);
    test_expect_deny(env, &req, 403, WIRE_R_NO_CERT,
                     "no device certificate");
}


static void
test_cert_unverified(void **state)
{
    test_env_t  *env = *state;
    wire_req_t   req;

    /* an enrolled fingerprint is worthless if nginx did not verify it */
    test_req(&req, WIRE_CERT_FAILED, env->active.fp);
    test_expect_deny(env, &req, 403, WIRE_R_CERT_UNVERIFIED,
                     "device certificate not verified");

    test_req(&req, WIRE_CERT_SUCCESS, NULL);
    test_expect_deny(env, &req, 403, WIRE_R_CERT_UNVERIFIED,
                     "device certificate not verified");

    test_req(&req, 77, env->active.fp);
    test_expect_deny(env, &req, 403, WIRE_R_CERT_UNVERIFIED,
                     "device certificate not verified");
}


static void
test_unknown_device(void **state)
{
    test_env_t  *env = *state;
    wire_req_t   req;
    uint8_t      fp[WIRE_FP_LEN];

    memset(fp, 0x5a, sizeof(fp));
    test_req(&req, WIRE_CERT_SUCCESS, fp);
    test_expect_deny(env, &req, 403, WIRE_R_DEVICE_UNKNOWN,
                     "device not enrolled");
}


static void
test_revoked(void **state)
{
    test_env_t  *env = *state;
    wire_req_t   req;

    test_req(&req, WIRE_CERT_SUCCESS, env->revoked.fp);
    test_expect_deny(env, &req, 403, WIRE_R_DEVICE_REVOKED,
                     "device revoked");
}


static void
test_quarantined(void **state)
{
    test_env_t  *env = *state;
    wire_req_t   req;

    test_req(&req, WIRE_CERT_SUCCESS, env->quarantined.fp);
    test_expect_deny(env, &req, 403, WIRE_R_DEVICE_QUARANTINED,
                     "device quarantined");
}


static void
test_expired(void **state)
{
    test_env_t  *env = *state;
    wire_req_t   req;

    test_req(&req, WIRE_CERT_SUCCESS, env->expired.fp);
    test_expect_deny(env, &req, 403, WIRE_R_DEVICE_EXPIRED,
                     "device enrollment expired");
}


static void
test_allow(void **state)
{
    test_env_t    *env = *state;
    wire_req_t     req;
    wire_resp_t    resp, back;
    wire_frame_t   f;
    uint8_t        buf[WIRE_MAX_FRAME];
    char           hex[2 * STORE_FP_LEN + 1], v[256];
    int            n;

    test_req(&req, WIRE_CERT_SUCCESS, env->active.fp);

    assert_int_equal(decide(env->st, &env->conf, &req, &resp, &env->ctx),
                     WIRE_ALLOW);
    assert_int_equal(resp.status, 200);
    assert_int_equal(resp.reason_code, WIRE_R_DEVICE_OK);
    assert_int_equal(resp.ttl_ms, 1500);
    assert_int_equal(resp.nheaders, 4);

    store_fp_hex(env->active.fp, hex);
    assert_non_null(test_header(&resp, "X-ZT-Device-Id", v, sizeof(v)));
    assert_string_equal(v, env->active.id);
    assert_non_null(test_header(&resp, "X-ZT-Device-Fingerprint", v,
                                sizeof(v)));
    assert_string_equal(v, hex);
    assert_non_null(test_header(&resp, "X-ZT-Device-Owner", v, sizeof(v)));
    assert_string_equal(v, "owner1");
    assert_non_null(test_header(&resp, "X-ZT-Decision", v, sizeof(v)));
    assert_string_equal(v, "allow");

    /* the answer survives the codec intact */
    n = wire_encode_resp(buf, buf + sizeof(buf), 42, &resp);
    assert_true(n > 0);
    assert_int_equal(wire_frame_peek(buf, buf + n, &f), WIRE_OK);
    assert_int_equal(f.id, 42);
    assert_int_equal(wire_decode_resp(&f, &back), WIRE_OK);
    assert_int_equal(back.decision, WIRE_ALLOW);
    assert_int_equal(back.ttl_ms, 1500);
    assert_int_equal(back.nheaders, 4);
}


static void
test_allow_without_expiry(void **state)
{
    test_env_t   *env = *state;
    wire_req_t    req;
    wire_resp_t   resp;
    int           i;

    test_req(&req, WIRE_CERT_SUCCESS, env->forever.fp);

    /* many decisions on one context: the view is reused */
    for (i = 0; i < 1000; i++) {
        assert_int_equal(decide(env->st, &env->conf, &req, &resp,
                                &env->ctx), WIRE_ALLOW);
    }
}


static void
test_store_error(void **state)
{
    test_env_t  *env = *state;
    wire_req_t   req;
    store_err_t  err;
    uint8_t      fp[WIRE_FP_LEN];
    uint8_t      garbage[3] = { 1, 2, 3 };

    memset(fp, 0xc3, sizeof(fp));
    assert_int_equal(store_test_put_raw(env->st, "devices", fp, sizeof(fp),
                                        garbage, sizeof(garbage), &err), 0);

    /* fail closed */
    test_req(&req, WIRE_CERT_SUCCESS, fp);
    test_expect_deny(env, &req, 503, WIRE_R_INTERNAL,
                     "decision store unavailable");

    /* and the next request is decided normally */
    test_req(&req, WIRE_CERT_SUCCESS, env->revoked.fp);
    test_expect_deny(env, &req, 403, WIRE_R_DEVICE_REVOKED,
                     "device revoked");
}


static void
test_revocation_seen_next_decision(void **state)
{
    test_env_t   *env = *state;
    wire_req_t    req;
    wire_resp_t   resp;
    store_err_t   err;

    test_req(&req, WIRE_CERT_SUCCESS, env->active.fp);
    assert_int_equal(decide(env->st, &env->conf, &req, &resp, &env->ctx),
                     WIRE_ALLOW);

    assert_int_equal(store_device_set_status(env->st, env->active.fp,
                                             STORE_DEVICE_REVOKED, "test",
                                             "stolen", &err), 0);

    test_expect_deny(env, &req, 403, WIRE_R_DEVICE_REVOKED,
                     "device revoked");
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test_setup_teardown(test_no_cert,
                                        test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_cert_unverified,
                                        test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_unknown_device,
                                        test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_revoked,
                                        test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_quarantined,
                                        test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_expired,
                                        test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_allow,
                                        test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_allow_without_expiry,
                                        test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_store_error,
                                        test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_revocation_seen_next_decision,
                                        test_setup, test_teardown),
    };

    /* the 503 path logs an error on purpose: keep the output readable */
    log_init("test_decide", 0, LOG_LEVEL_ERROR + 1);

    return cmocka_run_group_tests_name("decide", tests, NULL, NULL);
}
