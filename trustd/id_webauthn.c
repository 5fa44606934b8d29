/*
 * WebAuthn ceremony verification (id_webauthn.h).  The order of checks
 * follows the specification's numbered steps: client data first (type,
 * challenge, origin), then authenticator data (rpIdHash, flags), then the
 * signature, then the counter.  Every length read from the input is
 * checked against what remains before it is used.
 */

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cbor.h>
#include <jansson.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "id_internal.h"
#include "id_webauthn.h"


#define ID_WA_AUTHDATA_MIN      37      /* rpIdHash, flags, signCount */
#define ID_WA_CLIENT_DATA_MAX   4096
#define ID_WA_RSA_MIN_BITS      2048

/* COSE key parameters (RFC 8152, 9053) */
#define ID_COSE_KTY             1
#define ID_COSE_ALG             3
#define ID_COSE_CRV             (-1)
#define ID_COSE_X               (-2)
#define ID_COSE_Y               (-3)
#define ID_COSE_N               (-1)
#define ID_COSE_E               (-2)
#define ID_COSE_KTY_OKP         1
#define ID_COSE_KTY_EC2         2
#define ID_COSE_KTY_RSA         3
#define ID_COSE_CRV_P256        1
#define ID_COSE_CRV_ED25519     6

typedef struct {
    const uint8_t  *rp_id_hash;
    uint8_t         flags;
    uint32_t        sign_count;
    const uint8_t  *aaguid;
    const uint8_t  *cred_id;
    size_t          cred_id_len;
    const uint8_t  *cose;
    size_t          cose_len;
} id_wa_authdata_t;

typedef struct {
    uint8_t     challenge[ID_WA_CHALLENGE_LEN];
    char        user[ID_NAME_MAX];
    char        bind[80];
    int         kind;
    int64_t     expires;
    int         used;
} id_wa_slot_t;

struct id_wa_challenges_s {
    pthread_mutex_t  lock;
    size_t           nslots;
    id_wa_slot_t    *slots;
};


static cbor_item_t *id_wa_cbor_load(const uint8_t *p, size_t len,
    struct cbor_load_result *res);
static int id_wa_client_data(const id_wa_expect_t *exp, const char *type,
    const uint8_t *cd, size_t len, id_err_t *err);
static int id_wa_authdata(const id_wa_expect_t *exp, const uint8_t *p,
    size_t len, int attested, id_wa_authdata_t *ad, id_err_t *err);
static const cbor_item_t *id_cbor_int_key(const cbor_item_t *map,
    int64_t key, int *dup);
static const cbor_item_t *id_cbor_text_key(const cbor_item_t *map,
    const char *key, int *dup);
static int id_cbor_int(const cbor_item_t *item, int64_t *v);
static int id_cbor_bytes(const cbor_item_t *item, const uint8_t **p,
    size_t *len);
static int id_wa_cose_pkey(const uint8_t *cose, size_t len, int *alg,
    EVP_PKEY **pkey, id_err_t *err);
static int id_wa_verify(EVP_PKEY *pkey, int alg, const uint8_t *auth_data,
    size_t ad_len, const uint8_t *cd, size_t cd_len, const uint8_t *sig,
    size_t sig_len, id_err_t *err);
static int id_wa_packed(const cbor_item_t *stmt, int cred_alg,
    EVP_PKEY *cred_key, const uint8_t *auth_data, size_t ad_len,
    const uint8_t *cd, size_t cd_len, id_err_t *err);


const char *
id_webauthn_alg_name(int alg)
{
    switch (alg) {
    case ID_WA_ALG_ES256:
        return "ES256";
    case ID_WA_ALG_EDDSA:
        return "EdDSA";
    case ID_WA_ALG_RS256:
        return "RS256";
    default:
        return "?";
    }
}


/* ---- CBOR helpers --------------------------------------------------- */


static int
id_cbor_int(const cbor_item_t *item, int64_t *v)
{
    uint64_t  u;

    if (item == NULL) {
        return -1;
    }

    if (cbor_isa_uint(item)) {
        u = cbor_get_int(item);
        if (u > INT64_MAX) {
            return -1;
        }
        *v = (int64_t) u;
        return 0;
    }

    if (cbor_isa_negint(item)) {
        u = cbor_get_int(item);
        if (u > INT64_MAX) {
            return -1;
        }
        *v = -1 - (int64_t) u;
        return 0;
    }

    return -1;
}


static int
id_cbor_bytes(const cbor_item_t *item, const uint8_t **p, size_t *len)
{
    if (item == NULL || !cbor_isa_bytestring(item)
        || !cbor_bytestring_is_definite(item))
    {
        return -1;
    }

    *p = cbor_bytestring_handle(item);
    *len = cbor_bytestring_length(item);

    return (*p == NULL && *len != 0) ? -1 : 0;
}


/* The value of integer key in map, or NULL; *dup set when it repeats. */
static const cbor_item_t *
id_cbor_int_key(const cbor_item_t *map, int64_t key, int *dup)
{
    struct cbor_pair    *pairs;
    const cbor_item_t   *found;
    size_t               i, n;
    int64_t              k;

    found = NULL;
    n = cbor_map_size(map);
    pairs = cbor_map_handle(map);

    for (i = 0; i < n; i++) {
        if (id_cbor_int(pairs[i].key, &k) == 0 && k == key) {
            if (found != NULL) {
                *dup = 1;
            }
            found = pairs[i].value;
        }
    }

    return found;
}


static const cbor_item_t *
id_cbor_text_key(const cbor_item_t *map, const char *key, int *dup)
{
    struct cbor_pair    *pairs;
    const cbor_item_t   *found;
    size_t               i, n, klen;

    found = NULL;
    klen = strlen(key);
    n = cbor_map_size(map);
    pairs = cbor_map_handle(map);

    for (i = 0; i < n; i++) {
        if (cbor_isa_string(pairs[i].key)
            && cbor_string_is_definite(pairs[i].key)
            && cbor_string_length(pairs[i].key) == klen
            && memcmp(cbor_string_handle(pairs[i].key), key, klen) == 0)
        {
            if (found != NULL) {
                *dup = 1;
            }
            found = pairs[i].value;
        }
    }

    return found;
}


/* ---- client data and authenticator data ----------------------------- */


static int
id_wa_client_data(const id_wa_expect_t *exp, const char *type,
    const uint8_t *cd, size_t len, id_err_t *err)
{
    json_t        *root, *co;
    json_error_t   je;
    const char    *t, *ch, *origin;
    uint8_t        got[ID_WA_CHALLENGE_LEN + 4];
    size_t         i;
    int            n, rc;

    if (len == 0 || len > ID_WA_CLIENT_DATA_MAX) {
        id_seterr(err, "clientDataJSON: missing or too long");
        return ID_WA_INVALID;
    }

    root = json_loadb((const char *) cd, len,
                      JSON_REJECT_DUPLICATES, &je);
    if (root == NULL || !json_is_object(root)) {
        id_seterr(err, "clientDataJSON: not a JSON object");
        json_decref(root);
        return ID_WA_INVALID;
    }

    rc = ID_WA_INVALID;

    t = json_string_value(json_object_get(root, "type"));
    if (t == NULL || strcmp(t, type) != 0) {
        id_seterr(err, "clientDataJSON: type is not %s", type);
        goto done;
    }

    ch = json_string_value(json_object_get(root, "challenge"));
    n = (ch == NULL) ? -1 : id_b64_decode(ch, strlen(ch), ID_B64_URL, got,
                                          sizeof(got));
    if (n < 0 || (size_t) n != exp->challenge_len
        || CRYPTO_memcmp(got, exp->challenge, exp->challenge_len) != 0)
    {
        id_seterr(err, "clientDataJSON: challenge does not match");
        goto done;
    }

    origin = json_string_value(json_object_get(root, "origin"));
    if (origin == NULL) {
        id_seterr(err, "clientDataJSON: no origin");
        goto done;
    }

    for (i = 0; i < exp->norigins; i++) {
        if (strcmp(origin, exp->origins[i]) == 0) {
            break;
        }
    }

    if (i == exp->norigins) {
        id_seterr(err, "clientDataJSON: origin %.80s is not allowed",
                  origin);
        goto done;
    }

    co = json_object_get(root, "crossOrigin");
    if (co != NULL && !json_is_false(co)) {
        id_seterr(err, "clientDataJSON: cross-origin ceremony");
        goto done;
    }

    rc = ID_WA_OK;

done:

    json_decref(root);

    return rc;
}


/*
 * Bounds for the one CBOR item at the start of a buffer, checked with
 * libcbor's streaming decoder before cbor_load() builds it: cbor_load()
 * allocates what a definite-length array or map declares before it reads
 * the elements, so a few bytes declaring four billion pairs would ask for
 * tens of gigabytes.  Refused here: a container declaring more elements
 * than bytes remain, and indefinite-length items (WebAuthn's CBOR is
 * CTAP2 canonical: definite lengths only).
 */
typedef struct {
    size_t      remaining;      /* bytes from this head to the end */
    uint64_t    pending;        /* items still to come in the first one */
    int         bad;
} id_wa_cbor_bounds_t;


static void
id_wa_cbor_array(void *ctx, size_t n)
{
    id_wa_cbor_bounds_t  *b = ctx;

    if (n > b->remaining) {
        b->bad = 1;
        return;
    }

    b->pending += n;
}


static void
id_wa_cbor_map(void *ctx, size_t n)
{
    id_wa_cbor_bounds_t  *b = ctx;

    if (n > b->remaining / 2) {
        b->bad = 1;
        return;
    }

    b->pending += 2 * (uint64_t) n;
}


static void
id_wa_cbor_tag(void *ctx, uint64_t tag)
{
    id_wa_cbor_bounds_t  *b = ctx;

    (void) tag;
    b->pending++;
}


static void
id_wa_cbor_indefinite(void *ctx)
{
    id_wa_cbor_bounds_t  *b = ctx;

    b->bad = 1;
}


static cbor_item_t *
id_wa_cbor_load(const uint8_t *p, size_t len, struct cbor_load_result *res)
{
    struct cbor_callbacks       cb;
    struct cbor_decoder_result  d;
    id_wa_cbor_bounds_t         b;
    size_t                      off;

    cb = cbor_empty_callbacks;
    cb.array_start = id_wa_cbor_array;
    cb.map_start = id_wa_cbor_map;
    cb.tag = id_wa_cbor_tag;
    cb.indef_array_start = id_wa_cbor_indefinite;
    cb.indef_map_start = id_wa_cbor_indefinite;
    cb.byte_string_start = id_wa_cbor_indefinite;
    cb.string_start = id_wa_cbor_indefinite;

    memset(&b, 0, sizeof(b));
    b.pending = 1;

    for (off = 0; b.pending > 0; b.pending--) {
        if (off >= len) {
            goto refused;
        }

        b.remaining = len - off;
        d = cbor_stream_decode(p + off, len - off, &cb, &b);

        if (d.status != CBOR_DECODER_FINISHED || d.read == 0 || b.bad) {
            goto refused;
        }

        off += d.read;
    }

    return cbor_load(p, len, res);

refused:

    memset(res, 0, sizeof(*res));
    res->error.code = CBOR_ERR_MALFORMATED;
    res->error.position = off;

    return NULL;
}


static int
id_wa_authdata(const id_wa_expect_t *exp, const uint8_t *p, size_t len,
    int attested, id_wa_authdata_t *ad, id_err_t *err)
{
    struct cbor_load_result  res;
    cbor_item_t             *key;
    uint8_t                  hash[32];
    size_t                   off;

    memset(ad, 0, sizeof(*ad));

    if (len < ID_WA_AUTHDATA_MIN) {
        id_seterr(err, "authenticator data too short");
        return ID_WA_INVALID;
    }

    if (EVP_Digest(exp->rp_id, strlen(exp->rp_id), hash, NULL, EVP_sha256(),
                   NULL)
        != 1)
    {
        id_ssl_err(err, "SHA-256");
        return -1;
    }

    ad->rp_id_hash = p;
    ad->flags = p[32];
    ad->sign_count = ((uint32_t) p[33] << 24) | ((uint32_t) p[34] << 16)
                     | ((uint32_t) p[35] << 8) | p[36];

    if (CRYPTO_memcmp(hash, p, 32) != 0) {
        id_seterr(err, "rpIdHash is not the hash of %s", exp->rp_id);
        return ID_WA_INVALID;
    }

    if (!(ad->flags & ID_WA_FLAG_UP)) {
        id_seterr(err, "user presence flag not set");
        return ID_WA_INVALID;
    }

    if (exp->require_uv && !(ad->flags & ID_WA_FLAG_UV)) {
        id_seterr(err, "user verification required but not performed");
        return ID_WA_INVALID;
    }

    off = ID_WA_AUTHDATA_MIN;

    if (attested) {
        if (!(ad->flags & ID_WA_FLAG_AT) || len - off < 18) {
            id_seterr(err, "no attested credential data");
            return ID_WA_INVALID;
        }

        ad->aaguid = p + off;
        off += 16;
        ad->cred_id_len = ((size_t) p[off] << 8) | p[off + 1];
        off += 2;

        if (ad->cred_id_len == 0 || ad->cred_id_len > ID_WA_CRED_MAX
            || ad->cred_id_len > len - off)
        {
            id_seterr(err, "credential id length %zu out of range",
                      ad->cred_id_len);
            return ID_WA_INVALID;
        }

        ad->cred_id = p + off;
        off += ad->cred_id_len;

        if (off >= len) {
            id_seterr(err, "no credential public key");
            return ID_WA_INVALID;
        }

        key = id_wa_cbor_load(p + off, len - off, &res);
        if (key == NULL || res.error.code != CBOR_ERR_NONE) {
            if (key != NULL) {
                cbor_decref(&key);
            }
            id_seterr(err, "credential public key is not CBOR");
            return ID_WA_INVALID;
        }

        cbor_decref(&key);

        if (res.read > ID_WA_COSE_MAX) {
            id_seterr(err, "credential public key too long");
            return ID_WA_INVALID;
        }

        ad->cose = p + off;
        ad->cose_len = res.read;
        off += res.read;

    } else if (ad->flags & ID_WA_FLAG_AT) {
        id_seterr(err, "unexpected attested credential data");
        return ID_WA_INVALID;
    }

    if (ad->flags & ID_WA_FLAG_ED) {
        /* extensions: one CBOR map, nothing after it */
        if (off >= len) {
            id_seterr(err, "extensions flag set without extensions");
            return ID_WA_INVALID;
        }

        key = id_wa_cbor_load(p + off, len - off, &res);
        if (key == NULL || res.error.code != CBOR_ERR_NONE
            || !cbor_isa_map(key))
        {
            if (key != NULL) {
                cbor_decref(&key);
            }
            id_seterr(err, "extensions are not a CBOR map");
            return ID_WA_INVALID;
        }

        cbor_decref(&key);
        off += res.read;
    }

    if (off != len) {
        id_seterr(err, "trailing bytes after authenticator data");
        return ID_WA_INVALID;
    }

    return ID_WA_OK;
}


/* ---- COSE keys ------------------------------------------------------ */


static int
id_wa_cose_pkey(const uint8_t *cose, size_t len, int *alg, EVP_PKEY **pkey,
    id_err_t *err)
{
    struct cbor_load_result  res;
    cbor_item_t             *map;
    const uint8_t           *x, *y, *n, *e;
    size_t                   xlen, ylen, nlen, elen;
    int64_t                  kty, a, crv;
    OSSL_PARAM_BLD          *bld;
    OSSL_PARAM              *params;
    EVP_PKEY_CTX            *ctx;
    BIGNUM                  *bn, *be;
    uint8_t                  pt[65];
    int                      dup, rc;

    *pkey = NULL;
    map = NULL;
    bld = NULL;
    params = NULL;
    ctx = NULL;
    bn = NULL;
    be = NULL;
    dup = 0;
    rc = ID_WA_INVALID;

    if (len == 0 || len > ID_WA_COSE_MAX) {
        id_seterr(err, "COSE key: bad length");
        return ID_WA_INVALID;
    }

    map = id_wa_cbor_load(cose, len, &res);
    if (map == NULL || res.error.code != CBOR_ERR_NONE || res.read != len
        || !cbor_isa_map(map) || !cbor_map_is_definite(map))
    {
        id_seterr(err, "COSE key: not one CBOR map");
        goto done;
    }

    if (id_cbor_int(id_cbor_int_key(map, ID_COSE_KTY, &dup), &kty) != 0
        || id_cbor_int(id_cbor_int_key(map, ID_COSE_ALG, &dup), &a) != 0
        || dup)
    {
        id_seterr(err, "COSE key: kty or alg missing");
        goto done;
    }

    if (a == ID_WA_ALG_ES256) {
        if (kty != ID_COSE_KTY_EC2
            || id_cbor_int(id_cbor_int_key(map, ID_COSE_CRV, &dup), &crv)
               != 0
            || crv != ID_COSE_CRV_P256
            || id_cbor_bytes(id_cbor_int_key(map, ID_COSE_X, &dup), &x,
                             &xlen) != 0
            || id_cbor_bytes(id_cbor_int_key(map, ID_COSE_Y, &dup), &y,
                             &ylen) != 0
            || xlen != 32 || ylen != 32 || dup)
        {
            id_seterr(err, "COSE key: not an EC2 P-256 key");
            goto done;
        }

        pt[0] = 0x04;
        memcpy(pt + 1, x, 32);
        memcpy(pt + 33, y, 32);

        bld = OSSL_PARAM_BLD_new();
        if (bld == NULL
            || !OSSL_PARAM_BLD_push_utf8_string(bld,
                   OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0)
            || !OSSL_PARAM_BLD_push_octet_string(bld,
                   OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof(pt))
            || (params = OSSL_PARAM_BLD_to_param(bld)) == NULL
            || (ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL)) == NULL
            || EVP_PKEY_fromdata_init(ctx) != 1)
        {
            id_ssl_err(err, "COSE key: EC parameters");
            rc = -1;
            goto done;
        }

        if (EVP_PKEY_fromdata(ctx, pkey, EVP_PKEY_PUBLIC_KEY, params) != 1) {
            id_ssl_err(err, "COSE key: EC point");
            goto done;
        }

        EVP_PKEY_CTX_free(ctx);
        ctx = EVP_PKEY_CTX_new_from_pkey(NULL, *pkey, NULL);
        if (ctx == NULL || EVP_PKEY_public_check(ctx) != 1) {
            id_ssl_err(err, "COSE key: EC point not on the curve");
            goto done;
        }

    } else if (a == ID_WA_ALG_EDDSA) {
        if (kty != ID_COSE_KTY_OKP
            || id_cbor_int(id_cbor_int_key(map, ID_COSE_CRV, &dup), &crv)
               != 0
            || crv != ID_COSE_CRV_ED25519
            || id_cbor_bytes(id_cbor_int_key(map, ID_COSE_X, &dup), &x,
                             &xlen) != 0
            || xlen != 32 || dup)
        {
            id_seterr(err, "COSE key: not an OKP Ed25519 key");
            goto done;
        }

        *pkey = EVP_PKEY_new_raw_public_key_ex(NULL, "ED25519", NULL, x,
                                               xlen);
        if (*pkey == NULL) {
            id_ssl_err(err, "COSE key: Ed25519");
            goto done;
        }

    } else if (a == ID_WA_ALG_RS256) {
        if (kty != ID_COSE_KTY_RSA
            || id_cbor_bytes(id_cbor_int_key(map, ID_COSE_N, &dup), &n,
                             &nlen) != 0
            || id_cbor_bytes(id_cbor_int_key(map, ID_COSE_E, &dup), &e,
                             &elen) != 0
            || nlen * 8 < ID_WA_RSA_MIN_BITS || nlen > 512
            || elen == 0 || elen > 8 || dup)
        {
            id_seterr(err, "COSE key: not an RSA key of 2048 bits or more");
            goto done;
        }

        bn = BN_bin2bn(n, (int) nlen, NULL);
        be = BN_bin2bn(e, (int) elen, NULL);
        bld = OSSL_PARAM_BLD_new();

        if (bn == NULL || be == NULL || bld == NULL
            || !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn)
            || !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be)
            || (params = OSSL_PARAM_BLD_to_param(bld)) == NULL
            || (ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL)) == NULL
            || EVP_PKEY_fromdata_init(ctx) != 1)
        {
            id_ssl_err(err, "COSE key: RSA parameters");
            rc = -1;
            goto done;
        }

        if (EVP_PKEY_fromdata(ctx, pkey, EVP_PKEY_PUBLIC_KEY, params) != 1) {
            id_ssl_err(err, "COSE key: RSA");
            goto done;
        }

        if (EVP_PKEY_get_bits(*pkey) < ID_WA_RSA_MIN_BITS) {
            id_seterr(err, "COSE key: RSA modulus under 2048 bits");
            goto done;
        }

    } else {
        id_seterr(err, "COSE key: algorithm %lld is not supported",
                  (long long) a);
        goto done;
    }

    *alg = (int) a;
    rc = ID_WA_OK;

done:

    if (rc != ID_WA_OK) {
        EVP_PKEY_free(*pkey);
        *pkey = NULL;
    }

    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_free(bn);
    BN_free(be);

    if (map != NULL) {
        cbor_decref(&map);
    }

    return rc;
}


int
id_webauthn_cose_check(const uint8_t *cose, size_t len, int *alg,
    id_err_t *err)
{
    EVP_PKEY  *pkey;
    int        rc;

    rc = id_wa_cose_pkey(cose, len, alg, &pkey, err);
    EVP_PKEY_free(pkey);

    return rc;
}


/*
 * Verify sig over auth_data || SHA-256(client data) with pkey for the
 * COSE algorithm alg.
 */
static int
id_wa_verify(EVP_PKEY *pkey, int alg, const uint8_t *auth_data,
    size_t ad_len, const uint8_t *cd, size_t cd_len, const uint8_t *sig,
    size_t sig_len, id_err_t *err)
{
    EVP_MD_CTX    *mctx;
    const EVP_MD  *md;
    uint8_t       *msg;
    int            rc, v;

    msg = malloc(ad_len + 32);
    mctx = EVP_MD_CTX_new();
    rc = -1;

    if (msg == NULL || mctx == NULL) {
        id_seterr(err, "out of memory");
        goto done;
    }

    memcpy(msg, auth_data, ad_len);

    if (EVP_Digest(cd, cd_len, msg + ad_len, NULL, EVP_sha256(), NULL) != 1)
    {
        id_ssl_err(err, "SHA-256");
        goto done;
    }

    md = (alg == ID_WA_ALG_EDDSA) ? NULL : EVP_sha256();

    if (EVP_DigestVerifyInit_ex(mctx, NULL,
                                md == NULL ? NULL : EVP_MD_get0_name(md),
                                NULL, NULL, pkey, NULL) != 1)
    {
        id_ssl_err(err, "signature verification setup");
        goto done;
    }

    v = EVP_DigestVerify(mctx, sig, sig_len, msg, ad_len + 32);

    if (v != 1) {
        ERR_clear_error();
        id_seterr(err, "signature does not verify");
        rc = ID_WA_INVALID;
        goto done;
    }

    rc = ID_WA_OK;

done:

    EVP_MD_CTX_free(mctx);
    free(msg);

    return rc;
}


/* ---- registration --------------------------------------------------- */


static int
id_wa_packed(const cbor_item_t *stmt, int cred_alg, EVP_PKEY *cred_key,
    const uint8_t *auth_data, size_t ad_len, const uint8_t *cd,
    size_t cd_len, id_err_t *err)
{
    const cbor_item_t  *x5c;
    cbor_item_t        *leaf;
    const uint8_t      *sig, *der;
    size_t              sig_len, der_len;
    int64_t             alg;
    X509               *cert;
    EVP_PKEY           *ckey;
    int                 dup, rc;

    dup = 0;
    leaf = NULL;

    if (id_cbor_int(id_cbor_text_key(stmt, "alg", &dup), &alg) != 0
        || id_cbor_bytes(id_cbor_text_key(stmt, "sig", &dup), &sig,
                         &sig_len) != 0
        || dup)
    {
        id_seterr(err, "packed attestation: alg or sig missing");
        return ID_WA_INVALID;
    }

    x5c = id_cbor_text_key(stmt, "x5c", &dup);

    if (x5c == NULL) {
        /* self attestation: the credential signs its own registration */
        if (cbor_map_size(stmt) != 2 || alg != cred_alg) {
            id_seterr(err, "packed self attestation: alg differs from the "
                      "credential's");
            return ID_WA_INVALID;
        }

        return id_wa_verify(cred_key, cred_alg, auth_data, ad_len, cd,
                            cd_len, sig, sig_len, err);
    }

    if (!cbor_isa_array(x5c) || cbor_array_size(x5c) == 0
        || (leaf = cbor_array_get(x5c, 0)) == NULL)
    {
        id_seterr(err, "packed attestation: x5c is not a certificate list");
        return ID_WA_INVALID;
    }

    rc = ID_WA_INVALID;
    cert = NULL;

    if (id_cbor_bytes(leaf, &der, &der_len) != 0
        || (cert = d2i_X509(NULL, &der, (long) der_len)) == NULL
        || (ckey = X509_get0_pubkey(cert)) == NULL)
    {
        ERR_clear_error();
        id_seterr(err, "packed attestation: bad attestation certificate");
        goto done;
    }

    if (alg != ID_WA_ALG_ES256 && alg != ID_WA_ALG_RS256
        && alg != ID_WA_ALG_EDDSA)
    {
        id_seterr(err, "packed attestation: unsupported alg");
        goto done;
    }

    rc = id_wa_verify(ckey, (int) alg, auth_data, ad_len, cd, cd_len, sig,
                      sig_len, err);

done:

    if (leaf != NULL) {
        cbor_decref(&leaf);
    }

    X509_free(cert);

    return rc;
}


int
id_webauthn_register(const id_wa_expect_t *exp, const uint8_t *client_data,
    size_t client_data_len, const uint8_t *att_obj, size_t att_obj_len,
    id_wa_reg_t *out, id_err_t *err)
{
    struct cbor_load_result  res;
    cbor_item_t             *root;
    const cbor_item_t       *fmt, *stmt, *ad_item;
    const uint8_t           *ad;
    size_t                   ad_len, flen;
    id_wa_authdata_t         a;
    EVP_PKEY                *pkey;
    int                      rc, alg, dup;

    memset(out, 0, sizeof(*out));
    pkey = NULL;
    root = NULL;
    dup = 0;

    rc = id_wa_client_data(exp, "webauthn.create", client_data,
                           client_data_len, err);
    if (rc != ID_WA_OK) {
        return rc;
    }

    rc = ID_WA_INVALID;

    if (att_obj_len == 0 || att_obj_len > 16384) {
        id_seterr(err, "attestationObject: missing or too long");
        return rc;
    }

    root = id_wa_cbor_load(att_obj, att_obj_len, &res);
    if (root == NULL || res.error.code != CBOR_ERR_NONE
        || res.read != att_obj_len || !cbor_isa_map(root)
        || !cbor_map_is_definite(root))
    {
        id_seterr(err, "attestationObject: not one CBOR map");
        goto done;
    }

    fmt = id_cbor_text_key(root, "fmt", &dup);
    stmt = id_cbor_text_key(root, "attStmt", &dup);
    ad_item = id_cbor_text_key(root, "authData", &dup);

    if (fmt == NULL || !cbor_isa_string(fmt)
        || !cbor_string_is_definite(fmt) || stmt == NULL
        || !cbor_isa_map(stmt) || !cbor_map_is_definite(stmt)
        || id_cbor_bytes(ad_item, &ad, &ad_len) != 0 || dup)
    {
        id_seterr(err, "attestationObject: fmt, attStmt or authData "
                  "missing");
        goto done;
    }

    flen = cbor_string_length(fmt);
    if (flen == 0 || flen >= sizeof(out->fmt)) {
        id_seterr(err, "attestationObject: bad fmt");
        goto done;
    }

    memcpy(out->fmt, cbor_string_handle(fmt), flen);
    out->fmt[flen] = '\0';

    rc = id_wa_authdata(exp, ad, ad_len, 1, &a, err);
    if (rc != ID_WA_OK) {
        goto done;
    }

    rc = id_wa_cose_pkey(a.cose, a.cose_len, &alg, &pkey, err);
    if (rc != ID_WA_OK) {
        goto done;
    }

    if (strcmp(out->fmt, "none") == 0) {
        if (cbor_map_size(stmt) != 0) {
            id_seterr(err, "attestation none with a statement");
            rc = ID_WA_INVALID;
            goto done;
        }

    } else if (strcmp(out->fmt, "packed") == 0) {
        rc = id_wa_packed(stmt, alg, pkey, ad, ad_len, client_data,
                          client_data_len, err);
        if (rc != ID_WA_OK) {
            goto done;
        }

    } else {
        id_seterr(err, "attestation format %s is not supported", out->fmt);
        rc = ID_WA_INVALID;
        goto done;
    }

    memcpy(out->cred_id, a.cred_id, a.cred_id_len);
    out->cred_id_len = a.cred_id_len;
    memcpy(out->cose, a.cose, a.cose_len);
    out->cose_len = a.cose_len;
    memcpy(out->aaguid, a.aaguid, sizeof(out->aaguid));
    out->alg = alg;
    out->sign_count = a.sign_count;
    out->flags = a.flags;
    rc = ID_WA_OK;

done:

    EVP_PKEY_free(pkey);

    if (root != NULL) {
        cbor_decref(&root);
    }

    return rc;
}


/* ---- authentication ------------------------------------------------- */


int
id_webauthn_assert(const id_wa_expect_t *exp, const uint8_t *cose,
    size_t cose_len, uint32_t stored_count, const uint8_t *client_data,
    size_t client_data_len, const uint8_t *auth_data, size_t auth_data_len,
    const uint8_t *sig, size_t sig_len, id_wa_auth_t *out, id_err_t *err)
{
    id_wa_authdata_t  a;
    EVP_PKEY         *pkey;
    int               rc, alg;

    memset(out, 0, sizeof(*out));

    rc = id_wa_client_data(exp, "webauthn.get", client_data,
                           client_data_len, err);
    if (rc != ID_WA_OK) {
        return rc;
    }

    rc = id_wa_authdata(exp, auth_data, auth_data_len, 0, &a, err);
    if (rc != ID_WA_OK) {
        return rc;
    }

    rc = id_wa_cose_pkey(cose, cose_len, &alg, &pkey, err);
    if (rc != ID_WA_OK) {
        /* the stored key is ours: failing to load it is not the user's */
        return -1;
    }

    if (sig_len == 0 || sig_len > 1024) {
        id_seterr(err, "signature missing or too long");
        EVP_PKEY_free(pkey);
        return ID_WA_INVALID;
    }

    rc = id_wa_verify(pkey, alg, auth_data, auth_data_len, client_data,
                      client_data_len, sig, sig_len, err);
    EVP_PKEY_free(pkey);

    if (rc != ID_WA_OK) {
        return rc;
    }

    out->sign_count = a.sign_count;
    out->flags = a.flags;

    if ((a.sign_count != 0 || stored_count != 0)
        && a.sign_count <= stored_count)
    {
        id_seterr(err, "sign count %u not greater than %u: possible cloned "
                  "authenticator", a.sign_count, stored_count);
        return ID_WA_COUNTER;
    }

    return ID_WA_OK;
}


int
id_webauthn_b64_encode(const uint8_t *in, size_t len, char *out,
    size_t size)
{
    return id_b64_encode(in, len, ID_B64_URL, out, size);
}


int
id_webauthn_b64_decode(const char *in, uint8_t *out, size_t size)
{
    return id_b64_decode(in, strlen(in), ID_B64_URL, out, size);
}


/* ---- challenges ----------------------------------------------------- */


int
id_wa_challenges_create(size_t slots, id_wa_challenges_t **out,
    id_err_t *err)
{
    id_wa_challenges_t  *c;

    c = calloc(1, sizeof(*c));
    if (c == NULL || slots == 0
        || (c->slots = calloc(slots, sizeof(id_wa_slot_t))) == NULL)
    {
        free(c);
        id_seterr(err, "out of memory");
        return -1;
    }

    if (pthread_mutex_init(&c->lock, NULL) != 0) {
        free(c->slots);
        free(c);
        id_seterr(err, "mutex");
        return -1;
    }

    c->nslots = slots;
    *out = c;

    return 0;
}


void
id_wa_challenges_free(id_wa_challenges_t *c)
{
    if (c == NULL) {
        return;
    }

    pthread_mutex_destroy(&c->lock);
    OPENSSL_cleanse(c->slots, c->nslots * sizeof(id_wa_slot_t));
    free(c->slots);
    free(c);
}


int
id_wa_challenge_new(id_wa_challenges_t *c, const char *user,
    id_wa_ceremony_t kind, const char *bind, int64_t now, int ttl,
    uint8_t out[ID_WA_CHALLENGE_LEN], char b64[ID_WA_CHALLENGE_B64],
    id_err_t *err)
{
    id_wa_slot_t  *s, *pick;
    size_t         i;

    if (strlen(user) >= sizeof(pick->user)
        || strlen(bind) >= sizeof(pick->bind) || ttl <= 0)
    {
        id_seterr(err, "challenge: bad arguments");
        return -1;
    }

    if (RAND_bytes(out, ID_WA_CHALLENGE_LEN) != 1) {
        id_ssl_err(err, "challenge: RAND_bytes");
        return -1;
    }

    if (id_b64_encode(out, ID_WA_CHALLENGE_LEN, ID_B64_URL, b64,
                      ID_WA_CHALLENGE_B64) < 0)
    {
        id_seterr(err, "challenge: encoding");
        return -1;
    }

    pthread_mutex_lock(&c->lock);

    pick = &c->slots[0];

    for (i = 0; i < c->nslots; i++) {
        s = &c->slots[i];

        if (s->used || s->expires <= now) {
            pick = s;
            break;
        }

        if (s->expires < pick->expires) {
            pick = s;
        }
    }

    memset(pick, 0, sizeof(*pick));
    memcpy(pick->challenge, out, ID_WA_CHALLENGE_LEN);
    snprintf(pick->user, sizeof(pick->user), "%s", user);
    snprintf(pick->bind, sizeof(pick->bind), "%s", bind);
    pick->kind = (int) kind;
    pick->expires = now + ttl;

    pthread_mutex_unlock(&c->lock);

    return 0;
}


int
id_wa_challenge_take(id_wa_challenges_t *c, const char *b64,
    const char *user, id_wa_ceremony_t kind, const char *bind, int64_t now,
    uint8_t out[ID_WA_CHALLENGE_LEN], id_err_t *err)
{
    id_wa_slot_t  *s;
    uint8_t        want[ID_WA_CHALLENGE_LEN + 4];
    size_t         i;
    int            n, rc;

    n = (b64 == NULL) ? -1 : id_b64_decode(b64, strlen(b64), ID_B64_URL,
                                           want, sizeof(want));
    if (n != ID_WA_CHALLENGE_LEN) {
        id_seterr(err, "challenge: malformed");
        return ID_WA_INVALID;
    }

    rc = ID_WA_INVALID;
    id_seterr(err, "challenge: unknown or already used");

    pthread_mutex_lock(&c->lock);

    for (i = 0; i < c->nslots; i++) {
        s = &c->slots[i];

        if (s->used || s->expires == 0
            || CRYPTO_memcmp(s->challenge, want, ID_WA_CHALLENGE_LEN) != 0)
        {
            continue;
        }

        /* single use: consumed whatever the outcome */
        s->used = 1;

        if (s->expires <= now) {
            id_seterr(err, "challenge: expired");

        } else if (s->kind != (int) kind || strcmp(s->user, user) != 0
                   || strcmp(s->bind, bind) != 0)
        {
            id_seterr(err, "challenge: issued for another user or "
                      "ceremony");

        } else {
            memcpy(out, s->challenge, ID_WA_CHALLENGE_LEN);
            rc = ID_WA_OK;
        }

        break;
    }

    pthread_mutex_unlock(&c->lock);

    return rc;
}
