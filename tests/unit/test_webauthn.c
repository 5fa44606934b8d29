/*
 * Unit tests for WebAuthn verification (trustd/id_webauthn.c).  The
 * ceremonies are made here by a software authenticator built on OpenSSL
 * and libcbor (keys ES256, EdDSA and RS256; attestation "none" and
 * "packed" self attestation), then tampered with one field at a time.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <cbor.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

#include "trustd/id_internal.h"
#include "trustd/id_webauthn.h"


#define RP_ID       "localhost"
#define ORIGIN      "https://localhost:8443"

/* The software authenticator. */
typedef struct {
    EVP_PKEY   *key;
    int         alg;
    uint8_t     cose[ID_WA_COSE_MAX];
    size_t      cose_len;
    uint8_t     cred_id[16];
    uint32_t    count;
} sw_auth_t;

/* What a ceremony should say, and how to spoil it. */
typedef struct {
    const char *type;
    const char *origin;
    const char *rp_id;
    uint8_t     flags;
    const char *fmt;                /* "none", "packed" */
    int         packed_alg;         /* 0: the key's */
    int         cross_origin;
    int         bad_sig;
    int         trailing;
    uint32_t    count;
    uint8_t     challenge[ID_WA_CHALLENGE_LEN];
} ceremony_t;

typedef struct {
    char        cd[1024];
    size_t      cd_len;
    uint8_t     ad[1024];
    size_t      ad_len;
    uint8_t    *att;
    size_t      att_len;
    uint8_t     sig[1024];
    size_t      sig_len;
} made_t;

static const char *const  origins[] = { "https://other.example", ORIGIN };

static void sw_new(sw_auth_t *a, int alg);
static void sw_free(sw_auth_t *a);
static void sw_sign(const sw_auth_t *a, const uint8_t *msg, size_t len,
    uint8_t *sig, size_t *sig_len);
static void ceremony_init(ceremony_t *c, const char *type);
static void make_client_data(const ceremony_t *c, made_t *m);
static void make_auth_data(const sw_auth_t *a, const ceremony_t *c,
    int attested, made_t *m);
static void make_signature(const sw_auth_t *a, const ceremony_t *c,
    made_t *m);
static void make_registration(const sw_auth_t *a, const ceremony_t *c,
    made_t *m);
static void make_assertion(const sw_auth_t *a, const ceremony_t *c,
    made_t *m);
static void expect_init(id_wa_expect_t *e, const ceremony_t *c);
static int do_register(const sw_auth_t *a, const ceremony_t *c,
    id_wa_reg_t *reg, id_err_t *err);
static int do_assert(const sw_auth_t *a, const ceremony_t *c,
    uint32_t stored, id_wa_auth_t *out, id_err_t *err);


static void
sw_add(cbor_item_t *map, cbor_item_t *k, cbor_item_t *v)
{
    assert_true(cbor_map_add(map, (struct cbor_pair) {
        .key = cbor_move(k), .value = cbor_move(v) }));
}


static void
sw_new(sw_auth_t *a, int alg)
{
    cbor_item_t    *map;
    unsigned char  *buf;
    size_t          bsize, len;
    uint8_t         pub[600];
    BIGNUM         *n, *e;

    memset(a, 0, sizeof(*a));
    a->alg = alg;
    assert_int_equal(RAND_bytes(a->cred_id, sizeof(a->cred_id)), 1);

    map = cbor_new_definite_map(5);
    assert_non_null(map);

    if (alg == ID_WA_ALG_ES256) {
        a->key = EVP_EC_gen("P-256");
        assert_non_null(a->key);
        assert_int_equal(EVP_PKEY_get_octet_string_param(a->key,
                             OSSL_PKEY_PARAM_PUB_KEY, pub, sizeof(pub),
                             &len), 1);
        assert_int_equal(len, 65);
        sw_add(map, cbor_build_uint8(1), cbor_build_uint8(2));
        sw_add(map, cbor_build_uint8(3), cbor_build_negint8(6));
        sw_add(map, cbor_build_negint8(0), cbor_build_uint8(1));
        sw_add(map, cbor_build_negint8(1), cbor_build_bytestring(pub + 1,
                                                                 32));
        sw_add(map, cbor_build_negint8(2), cbor_build_bytestring(pub + 33,
                                                                 32));

    } else if (alg == ID_WA_ALG_EDDSA) {
        a->key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
        assert_non_null(a->key);
        len = sizeof(pub);
        assert_int_equal(EVP_PKEY_get_raw_public_key(a->key, pub, &len), 1);
        sw_add(map, cbor_build_uint8(1), cbor_build_uint8(1));
        sw_add(map, cbor_build_uint8(3), cbor_build_negint8(7));
        sw_add(map, cbor_build_negint8(0), cbor_build_uint8(6));
        sw_add(map, cbor_build_negint8(1), cbor_build_bytestring(pub, len));

    } else {
        a->key = EVP_RSA_gen(2048);
        assert_non_null(a->key);
        n = NULL;
        e = NULL;
        assert_int_equal(EVP_PKEY_get_bn_param(a->key, OSSL_PKEY_PARAM_RSA_N,
                                               &n), 1);
        assert_int_equal(EVP_PKEY_get_bn_param(a->key, OSSL_PKEY_PARAM_RSA_E,
                                               &e), 1);
        sw_add(map, cbor_build_uint8(1), cbor_build_uint8(3));
        sw_add(map, cbor_build_uint8(3), cbor_build_negint16(256));
        len = (size_t) BN_bn2bin(n, pub);
        sw_add(map, cbor_build_negint8(0), cbor_build_bytestring(pub, len));
        len = (size_t) BN_bn2bin(e, pub);
        sw_add(map, cbor_build_negint8(1), cbor_build_bytestring(pub, len));
        BN_free(n);
        BN_free(e);
    }

    buf = NULL;
    bsize = 0;
    len = cbor_serialize_alloc(map, &buf, &bsize);
    assert_true(len > 0 && len <= sizeof(a->cose));
    memcpy(a->cose, buf, len);
    a->cose_len = len;
    free(buf);
    cbor_decref(&map);
}


static void
sw_free(sw_auth_t *a)
{
    EVP_PKEY_free(a->key);
}


static void
sw_sign(const sw_auth_t *a, const uint8_t *msg, size_t len, uint8_t *sig,
    size_t *sig_len)
{
    EVP_MD_CTX  *m;

    m = EVP_MD_CTX_new();
    assert_non_null(m);
    assert_int_equal(EVP_DigestSignInit_ex(m, NULL,
                         a->alg == ID_WA_ALG_EDDSA ? NULL : "SHA256", NULL,
                         NULL, a->key, NULL), 1);
    *sig_len = 1024;
    assert_int_equal(EVP_DigestSign(m, sig, sig_len, msg, len), 1);
    EVP_MD_CTX_free(m);
}


static void
ceremony_init(ceremony_t *c, const char *type)
{
    memset(c, 0, sizeof(*c));
    c->type = type;
    c->origin = ORIGIN;
    c->rp_id = RP_ID;
    c->flags = ID_WA_FLAG_UP | ID_WA_FLAG_UV;
    c->fmt = "none";
    c->count = 1;
    assert_int_equal(RAND_bytes(c->challenge, sizeof(c->challenge)), 1);
}


static void
make_client_data(const ceremony_t *c, made_t *m)
{
    char  ch[ID_WA_CHALLENGE_B64];
    int   n;

    assert_true(id_b64_encode(c->challenge, sizeof(c->challenge), ID_B64_URL,
                              ch, sizeof(ch)) > 0);
    n = snprintf(m->cd, sizeof(m->cd), "{\"type\":\"%s\",\"challenge\":\"%s\","
                 "\"origin\":\"%s\",\"crossOrigin\":%s}", c->type, ch,
                 c->origin, c->cross_origin ? "true" : "false");
    m->cd_len = (size_t) n;
}


static void
make_auth_data(const sw_auth_t *a, const ceremony_t *c, int attested,
    made_t *m)
{
    uint8_t  *p;

    p = m->ad;
    assert_int_equal(EVP_Digest(c->rp_id, strlen(c->rp_id), p, NULL,
                                EVP_sha256(), NULL), 1);
    p += 32;
    *p++ = c->flags | (attested ? ID_WA_FLAG_AT : 0);
    *p++ = (uint8_t) (c->count >> 24);
    *p++ = (uint8_t) (c->count >> 16);
    *p++ = (uint8_t) (c->count >> 8);
    *p++ = (uint8_t) c->count;

    if (attested) {
        memset(p, 0, 16);
        p += 16;
        *p++ = 0;
        *p++ = sizeof(a->cred_id);
        memcpy(p, a->cred_id, sizeof(a->cred_id));
        p += sizeof(a->cred_id);
        memcpy(p, a->cose, a->cose_len);
        p += a->cose_len;
    }

    if (c->trailing) {
        *p++ = 0x00;
    }

    m->ad_len = (size_t) (p - m->ad);
}


static void
make_signature(const sw_auth_t *a, const ceremony_t *c, made_t *m)
{
    uint8_t  msg[1100];

    memcpy(msg, m->ad, m->ad_len);
    assert_int_equal(EVP_Digest(m->cd, m->cd_len, msg + m->ad_len, NULL,
                                EVP_sha256(), NULL), 1);
    sw_sign(a, msg, m->ad_len + 32, m->sig, &m->sig_len);

    if (c->bad_sig) {
        m->sig[m->sig_len / 2] ^= 0x01;
    }
}


static void
make_registration(const sw_auth_t *a, const ceremony_t *c, made_t *m)
{
    cbor_item_t  *root, *stmt;
    size_t        bsize;
    int           alg;

    memset(m, 0, sizeof(*m));
    make_client_data(c, m);
    make_auth_data(a, c, 1, m);

    if (strcmp(c->fmt, "packed") == 0) {
        make_signature(a, c, m);
        alg = c->packed_alg != 0 ? c->packed_alg : a->alg;
        stmt = cbor_new_definite_map(2);
        sw_add(stmt, cbor_build_string("alg"),
               alg == ID_WA_ALG_RS256 ? cbor_build_negint16(256)
                                      : cbor_build_negint8((uint8_t)
                                                           (-1 - alg)));
        sw_add(stmt, cbor_build_string("sig"),
               cbor_build_bytestring(m->sig, m->sig_len));
    } else {
        stmt = cbor_new_definite_map(0);
    }

    root = cbor_new_definite_map(3);
    sw_add(root, cbor_build_string("fmt"), cbor_build_string(c->fmt));
    sw_add(root, cbor_build_string("attStmt"), stmt);
    sw_add(root, cbor_build_string("authData"),
           cbor_build_bytestring(m->ad, m->ad_len));

    m->att = NULL;
    bsize = 0;
    m->att_len = cbor_serialize_alloc(root, &m->att, &bsize);
    assert_true(m->att_len > 0);
    cbor_decref(&root);
}


static void
make_assertion(const sw_auth_t *a, const ceremony_t *c, made_t *m)
{
    memset(m, 0, sizeof(*m));
    make_client_data(c, m);
    make_auth_data(a, c, 0, m);
    make_signature(a, c, m);
}


static void
expect_init(id_wa_expect_t *e, const ceremony_t *c)
{
    memset(e, 0, sizeof(*e));
    e->rp_id = RP_ID;
    e->origins = origins;
    e->norigins = 2;
    e->challenge = c->challenge;
    e->challenge_len = sizeof(c->challenge);
}


static int
do_register(const sw_auth_t *a, const ceremony_t *c, id_wa_reg_t *reg,
    id_err_t *err)
{
    id_wa_expect_t  e;
    made_t          m;
    int             rc;

    expect_init(&e, c);
    e.require_uv = 1;
    make_registration(a, c, &m);
    rc = id_webauthn_register(&e, (const uint8_t *) m.cd, m.cd_len, m.att,
                              m.att_len, reg, err);
    free(m.att);

    return rc;
}


static int
do_assert(const sw_auth_t *a, const ceremony_t *c, uint32_t stored,
    id_wa_auth_t *out, id_err_t *err)
{
    id_wa_expect_t  e;
    made_t          m;

    expect_init(&e, c);
    e.require_uv = 1;
    make_assertion(a, c, &m);

    return id_webauthn_assert(&e, a->cose, a->cose_len, stored,
                              (const uint8_t *) m.cd, m.cd_len, m.ad,
                              m.ad_len, m.sig, m.sig_len, out, err);
}


/* ---- registration --------------------------------------------------- */


static void
register_alg(int alg, const char *fmt)
{
    sw_auth_t    a;
    ceremony_t   c;
    id_wa_reg_t  reg;
    id_err_t     err;
    int          got;

    sw_new(&a, alg);
    ceremony_init(&c, "webauthn.create");
    c.fmt = fmt;
    c.count = 0;

    assert_int_equal(do_register(&a, &c, &reg, &err), ID_WA_OK);
    assert_int_equal(reg.alg, alg);
    assert_int_equal(reg.cred_id_len, sizeof(a.cred_id));
    assert_memory_equal(reg.cred_id, a.cred_id, sizeof(a.cred_id));
    assert_int_equal(reg.cose_len, a.cose_len);
    assert_memory_equal(reg.cose, a.cose, a.cose_len);
    assert_string_equal(reg.fmt, fmt);
    assert_int_equal(reg.sign_count, 0);
    assert_int_equal(id_webauthn_cose_check(reg.cose, reg.cose_len, &got,
                                            &err), ID_WA_OK);
    assert_int_equal(got, alg);

    sw_free(&a);
}


static void
test_register_es256_none(void **state)
{
    (void) state;
    register_alg(ID_WA_ALG_ES256, "none");
}


static void
test_register_packed_self(void **state)
{
    (void) state;
    register_alg(ID_WA_ALG_ES256, "packed");
    register_alg(ID_WA_ALG_EDDSA, "packed");
    register_alg(ID_WA_ALG_RS256, "packed");
}


/* One field spoiled at a time: every variant is refused. */
static void
test_register_tampered(void **state)
{
    sw_auth_t    a;
    ceremony_t   c;
    id_wa_reg_t  reg;
    id_err_t     err;
    int          i;

    (void) state;
    sw_new(&a, ID_WA_ALG_ES256);

    for (i = 0; i < 9; i++) {
        ceremony_init(&c, "webauthn.create");
        c.fmt = "packed";

        switch (i) {
        case 0: c.type = "webauthn.get"; break;
        case 1: c.origin = "https://evil.example"; break;
        case 2: c.rp_id = "evil.example"; break;
        case 3: c.flags = ID_WA_FLAG_UV; break;                 /* no UP */
        case 4: c.flags = ID_WA_FLAG_UP; break;                 /* no UV */
        case 5: c.bad_sig = 1; break;
        case 6: c.packed_alg = ID_WA_ALG_RS256; break;
        case 7: c.cross_origin = 1; break;
        case 8: c.trailing = 1; break;
        }

        assert_int_equal(do_register(&a, &c, &reg, &err), ID_WA_INVALID);
        assert_true(err.msg[0] != '\0');
    }

    /* a challenge other than the one issued */
    {
        id_wa_expect_t  e;
        made_t          m;
        uint8_t         other[ID_WA_CHALLENGE_LEN];

        ceremony_init(&c, "webauthn.create");
        make_registration(&a, &c, &m);
        expect_init(&e, &c);
        memcpy(other, c.challenge, sizeof(other));
        other[0] ^= 1;
        e.challenge = other;
        assert_int_equal(id_webauthn_register(&e, (const uint8_t *) m.cd,
                                              m.cd_len, m.att, m.att_len,
                                              &reg, &err), ID_WA_INVALID);
        assert_non_null(strstr(err.msg, "challenge"));

        /* truncated attestation object */
        e.challenge = c.challenge;
        assert_int_equal(id_webauthn_register(&e, (const uint8_t *) m.cd,
                                              m.cd_len, m.att,
                                              m.att_len - 1, &reg, &err),
                         ID_WA_INVALID);
        free(m.att);
    }

    sw_free(&a);
}


/* ---- authentication ------------------------------------------------- */


static void
test_assert_algs(void **state)
{
    static const int  algs[] = { ID_WA_ALG_ES256, ID_WA_ALG_EDDSA,
                                 ID_WA_ALG_RS256 };
    sw_auth_t     a;
    ceremony_t    c;
    id_wa_auth_t  out;
    id_err_t      err;
    size_t        i;

    (void) state;

    for (i = 0; i < sizeof(algs) / sizeof(algs[0]); i++) {
        sw_new(&a, algs[i]);
        ceremony_init(&c, "webauthn.get");
        c.count = 7;
        assert_int_equal(do_assert(&a, &c, 6, &out, &err), ID_WA_OK);
        assert_int_equal(out.sign_count, 7);
        assert_true(out.flags & ID_WA_FLAG_UV);
        sw_free(&a);
    }
}


static void
test_assert_tampered(void **state)
{
    sw_auth_t     a, b;
    ceremony_t    c;
    id_wa_auth_t  out;
    id_err_t      err;
    id_wa_expect_t e;
    made_t        m;
    int           i;

    (void) state;
    sw_new(&a, ID_WA_ALG_ES256);

    for (i = 0; i < 8; i++) {
        ceremony_init(&c, "webauthn.get");
        c.count = 5;

        switch (i) {
        case 0: c.type = "webauthn.create"; break;
        case 1: c.origin = "https://localhost:9443"; break;
        case 2: c.rp_id = "example.com"; break;
        case 3: c.flags = ID_WA_FLAG_UV; break;
        case 4: c.flags = ID_WA_FLAG_UP; break;
        case 5: c.bad_sig = 1; break;
        case 6: c.cross_origin = 1; break;
        case 7: c.trailing = 1; break;
        }

        assert_int_equal(do_assert(&a, &c, 1, &out, &err), ID_WA_INVALID);
    }

    /* UV is only demanded when asked for */
    ceremony_init(&c, "webauthn.get");
    c.flags = ID_WA_FLAG_UP;
    c.count = 2;
    expect_init(&e, &c);
    make_assertion(&a, &c, &m);
    assert_int_equal(id_webauthn_assert(&e, a.cose, a.cose_len, 1,
                                        (const uint8_t *) m.cd, m.cd_len,
                                        m.ad, m.ad_len, m.sig, m.sig_len,
                                        &out, &err), ID_WA_OK);

    /* the client data altered after signing: the origin check answers */
    ceremony_init(&c, "webauthn.get");
    c.count = 3;
    expect_init(&e, &c);
    make_assertion(&a, &c, &m);
    {
        char  *o = strstr(m.cd, "localhost:8443");

        assert_non_null(o);
        memcpy(o, "localhost:8444", 14);
    }
    assert_int_equal(id_webauthn_assert(&e, a.cose, a.cose_len, 1,
                                        (const uint8_t *) m.cd, m.cd_len,
                                        m.ad, m.ad_len, m.sig, m.sig_len,
                                        &out, &err), ID_WA_INVALID);
    assert_non_null(strstr(err.msg, "origin"));

    /* signed by another credential: the wrong key */
    sw_new(&b, ID_WA_ALG_ES256);
    ceremony_init(&c, "webauthn.get");
    c.count = 9;
    expect_init(&e, &c);
    make_assertion(&b, &c, &m);
    assert_int_equal(id_webauthn_assert(&e, a.cose, a.cose_len, 1,
                                        (const uint8_t *) m.cd, m.cd_len,
                                        m.ad, m.ad_len, m.sig, m.sig_len,
                                        &out, &err), ID_WA_INVALID);
    assert_non_null(strstr(err.msg, "signature"));

    sw_free(&a);
    sw_free(&b);
}


static void
test_assert_counter(void **state)
{
    sw_auth_t     a;
    ceremony_t    c;
    id_wa_auth_t  out;
    id_err_t      err;

    (void) state;
    sw_new(&a, ID_WA_ALG_EDDSA);

    /* an authenticator without a counter (always 0) is fine */
    ceremony_init(&c, "webauthn.get");
    c.count = 0;
    assert_int_equal(do_assert(&a, &c, 0, &out, &err), ID_WA_OK);

    /* equal, lower, and zero after non-zero: regressions */
    ceremony_init(&c, "webauthn.get");
    c.count = 10;
    assert_int_equal(do_assert(&a, &c, 10, &out, &err), ID_WA_COUNTER);
    assert_int_equal(out.sign_count, 10);
    assert_non_null(strstr(err.msg, "clone"));

    ceremony_init(&c, "webauthn.get");
    c.count = 3;
    assert_int_equal(do_assert(&a, &c, 10, &out, &err), ID_WA_COUNTER);

    ceremony_init(&c, "webauthn.get");
    c.count = 0;
    assert_int_equal(do_assert(&a, &c, 10, &out, &err), ID_WA_COUNTER);

    ceremony_init(&c, "webauthn.get");
    c.count = 11;
    assert_int_equal(do_assert(&a, &c, 10, &out, &err), ID_WA_OK);

    /* a bad signature is INVALID, never reported as a counter issue */
    ceremony_init(&c, "webauthn.get");
    c.count = 1;
    c.bad_sig = 1;
    assert_int_equal(do_assert(&a, &c, 10, &out, &err), ID_WA_INVALID);

    sw_free(&a);
}


static void
test_cose_refused(void **state)
{
    static const uint8_t  garbage[] = { 0xa1, 0x01 };
    cbor_item_t          *map;
    unsigned char        *buf;
    size_t                bsize, len;
    id_err_t              err;
    int                   alg;
    uint8_t               x[32];

    (void) state;

    assert_int_equal(id_webauthn_cose_check(garbage, sizeof(garbage), &alg,
                                            &err), ID_WA_INVALID);

    /* an EC2 key whose point is not on the curve */
    memset(x, 0x11, sizeof(x));
    map = cbor_new_definite_map(5);
    sw_add(map, cbor_build_uint8(1), cbor_build_uint8(2));
    sw_add(map, cbor_build_uint8(3), cbor_build_negint8(6));
    sw_add(map, cbor_build_negint8(0), cbor_build_uint8(1));
    sw_add(map, cbor_build_negint8(1), cbor_build_bytestring(x, 32));
    sw_add(map, cbor_build_negint8(2), cbor_build_bytestring(x, 32));
    buf = NULL;
    bsize = 0;
    len = cbor_serialize_alloc(map, &buf, &bsize);
    assert_int_equal(id_webauthn_cose_check(buf, len, &alg, &err),
                     ID_WA_INVALID);
    free(buf);
    cbor_decref(&map);

    /* an unsupported algorithm (ES384) */
    map = cbor_new_definite_map(2);
    sw_add(map, cbor_build_uint8(1), cbor_build_uint8(2));
    sw_add(map, cbor_build_uint8(3), cbor_build_negint8(34));
    buf = NULL;
    len = cbor_serialize_alloc(map, &buf, &bsize);
    assert_int_equal(id_webauthn_cose_check(buf, len, &alg, &err),
                     ID_WA_INVALID);
    free(buf);
    cbor_decref(&map);
}


/* ---- challenges ----------------------------------------------------- */


static void
test_challenges(void **state)
{
    id_wa_challenges_t  *t;
    id_err_t             err;
    uint8_t              bytes[ID_WA_CHALLENGE_LEN], got[ID_WA_CHALLENGE_LEN];
    char                 b64[ID_WA_CHALLENGE_B64], b2[ID_WA_CHALLENGE_B64];
    int                  i;

    (void) state;
    assert_int_equal(id_wa_challenges_create(4, &t, &err), 0);

    /* single use */
    assert_int_equal(id_wa_challenge_new(t, "alice", ID_WA_CEREMONY_LOGIN,
                                         "", 1000, 60, bytes, b64, &err), 0);
    assert_int_equal(id_wa_challenge_take(t, b64, "alice",
                                          ID_WA_CEREMONY_LOGIN, "", 1010,
                                          got, &err), ID_WA_OK);
    assert_memory_equal(got, bytes, sizeof(got));
    assert_int_equal(id_wa_challenge_take(t, b64, "alice",
                                          ID_WA_CEREMONY_LOGIN, "", 1011,
                                          got, &err), ID_WA_INVALID);

    /* expiring */
    assert_int_equal(id_wa_challenge_new(t, "alice", ID_WA_CEREMONY_LOGIN,
                                         "", 1000, 60, bytes, b64, &err), 0);
    assert_int_equal(id_wa_challenge_take(t, b64, "alice",
                                          ID_WA_CEREMONY_LOGIN, "", 1060,
                                          got, &err), ID_WA_INVALID);
    assert_non_null(strstr(err.msg, "expired"));

    /* bound to user, ceremony and binding; consumed by a wrong attempt */
    assert_int_equal(id_wa_challenge_new(t, "alice", ID_WA_CEREMONY_STEPUP,
                                         "sid1", 1000, 60, bytes, b64,
                                         &err), 0);
    assert_int_equal(id_wa_challenge_take(t, b64, "bob",
                                          ID_WA_CEREMONY_STEPUP, "sid1", 1001,
                                          got, &err), ID_WA_INVALID);
    assert_int_equal(id_wa_challenge_take(t, b64, "alice",
                                          ID_WA_CEREMONY_STEPUP, "sid1", 1001,
                                          got, &err), ID_WA_INVALID);

    assert_int_equal(id_wa_challenge_new(t, "alice", ID_WA_CEREMONY_STEPUP,
                                         "sid1", 1000, 60, bytes, b64,
                                         &err), 0);
    assert_int_equal(id_wa_challenge_take(t, b64, "alice",
                                          ID_WA_CEREMONY_LOGIN, "sid1", 1001,
                                          got, &err), ID_WA_INVALID);

    assert_int_equal(id_wa_challenge_new(t, "alice", ID_WA_CEREMONY_STEPUP,
                                         "sid1", 1000, 60, bytes, b64,
                                         &err), 0);
    assert_int_equal(id_wa_challenge_take(t, b64, "alice",
                                          ID_WA_CEREMONY_STEPUP, "sid2", 1001,
                                          got, &err), ID_WA_INVALID);

    /* a full table replaces the oldest, never fails */
    assert_int_equal(id_wa_challenge_new(t, "x", ID_WA_CEREMONY_LOGIN, "",
                                         2000, 60, bytes, b2, &err), 0);
    for (i = 0; i < 8; i++) {
        assert_int_equal(id_wa_challenge_new(t, "y", ID_WA_CEREMONY_LOGIN,
                                             "", 2001 + i, 60, bytes, b64,
                                             &err), 0);
    }
    assert_int_equal(id_wa_challenge_take(t, b64, "y", ID_WA_CEREMONY_LOGIN,
                                          "", 2010, got, &err), ID_WA_OK);

    /* garbage */
    assert_int_equal(id_wa_challenge_take(t, "not base64!", "y",
                                          ID_WA_CEREMONY_LOGIN, "", 2010,
                                          got, &err), ID_WA_INVALID);

    id_wa_challenges_free(t);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_register_es256_none),
        cmocka_unit_test(test_register_packed_self),
        cmocka_unit_test(test_register_tampered),
        cmocka_unit_test(test_assert_algs),
        cmocka_unit_test(test_assert_tampered),
        cmocka_unit_test(test_assert_counter),
        cmocka_unit_test(test_cose_refused),
        cmocka_unit_test(test_challenges),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
