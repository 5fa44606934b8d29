/*
 * The assertion handed to upstream applications (an ES256 JWT signed with
 * assertion.key) and the JWKS document they verify it with.  See
 * identity.h for the contract.
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <jwt.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include "id_internal.h"


#define ID_ASSERTION_TTL_MAX    3600
#define ID_EC_COORD_LEN         32


static json_t *id_json_strings(const char *const *v, size_t n);
static int id_json_out(json_t *obj, char *out, size_t size,
    const char *what, id_err_t *err);
static int id_ec_coord(EVP_PKEY *pk, const char *param, char *out,
    size_t size, id_err_t *err);


/* A JSON array of strings, or NULL when one is not valid UTF-8. */
static json_t *
id_json_strings(const char *const *v, size_t n)
{
    size_t   i;
    json_t  *a;

    a = json_array();
    if (a == NULL) {
        return NULL;
    }

    for (i = 0; i < n; i++) {
        if (v[i] == NULL || json_array_append_new(a, json_string(v[i])) != 0)
        {
            json_decref(a);
            return NULL;
        }
    }

    return a;
}


static int
id_json_out(json_t *obj, char *out, size_t size, const char *what,
    id_err_t *err)
{
    int     rc;
    char   *s;
    size_t  len;

    s = json_dumps(obj, JSON_COMPACT);
    if (s == NULL) {
        id_seterr(err, "%s: json_dumps failed", what);
        return -1;
    }

    len = strlen(s);
    rc = -1;

    if (len >= size) {
        id_seterr(err, "%s needs %zu bytes, buffer has %zu", what, len + 1,
                  size);
    } else {
        memcpy(out, s, len + 1);
        rc = 0;
    }

    free(s);

    return rc;
}


int
id_assertion_issue(const id_keys_t *keys, const char *aud,
    const char *user, const char *const *groups, size_t ngroups,
    const char *sid, const char *device_id, const char *const *amr,
    size_t namr, int64_t now, int ttl, char *out, size_t size,
    id_err_t *err)
{
    int      rc, jrc;
    char    *tok, *grants;
    size_t   len;
    jwt_t   *jwt;
    json_t  *obj, *ga, *aa;

    rc = -1;
    tok = NULL;
    grants = NULL;
    jwt = NULL;
    obj = NULL;
    ga = NULL;
    aa = NULL;

    if (keys == NULL || aud == NULL || user == NULL || sid == NULL
        || out == NULL || (groups == NULL && ngroups > 0)
        || (amr == NULL && namr > 0))
    {
        id_seterr(err, "id_assertion_issue: NULL argument");
        return -1;
    }

    if (aud[0] == '\0' || !id_sub_ok(user) || !id_sid_ok(sid)) {
        id_seterr(err, "assertion: malformed aud, user or sid");
        return -1;
    }

    if (ttl <= 0 || ttl > ID_ASSERTION_TTL_MAX || now < 0) {
        id_seterr(err, "assertion: ttl %d s out of range (1 to %d)", ttl,
                  ID_ASSERTION_TTL_MAX);
        return -1;
    }

    ga = id_json_strings(groups, ngroups);
    aa = id_json_strings(amr, namr);

    if (ga == NULL || aa == NULL) {
        id_seterr(err, "assertion: groups and amr must be UTF-8 strings");
        goto done;
    }

    obj = json_pack("{s:s, s:s, s:s, s:O, s:s, s:O, s:I, s:I}",
                    "iss", "ztgate", "aud", aud, "sub", user, "groups", ga,
                    "sid", sid, "amr", aa, "iat", (json_int_t) now,
                    "exp", (json_int_t) (now + ttl));
    if (obj == NULL) {
        id_seterr(err, "assertion: aud must be a UTF-8 string");
        goto done;
    }

    if (device_id != NULL && device_id[0] != '\0'
        && json_object_set_new(obj, "device", json_string(device_id)) != 0)
    {
        id_seterr(err, "assertion: device must be a UTF-8 string");
        goto done;
    }

    grants = json_dumps(obj, JSON_COMPACT);
    if (grants == NULL) {
        id_seterr(err, "assertion: json_dumps failed");
        goto done;
    }

    jrc = jwt_new(&jwt);
    if (jrc != 0) {
        id_seterr(err, "jwt_new: %s", strerror(jrc));
        goto done;
    }

    jrc = jwt_add_grants_json(jwt, grants);

    if (jrc == 0) {
        jrc = jwt_add_header(jwt, "kid", keys->assertion.kid);
    }

    if (jrc == 0) {
        jrc = jwt_set_alg(jwt, JWT_ALG_ES256, keys->assertion.sign,
                          (int) keys->assertion.sign_len);
    }

    if (jrc != 0) {
        id_seterr(err, "building the assertion: %s", strerror(jrc));
        goto done;
    }

    tok = jwt_encode_str(jwt);
    if (tok == NULL) {
        ERR_clear_error();
        id_seterr(err, "jwt_encode_str failed");
        goto done;
    }

    len = strlen(tok);

    if (len >= size) {
        id_seterr(err, "assertion needs %zu bytes, buffer has %zu", len + 1,
                  size);
        goto done;
    }

    memcpy(out, tok, len + 1);
    rc = 0;

done:

    free(tok);
    free(grants);
    jwt_free(jwt);
    json_decref(obj);
    json_decref(aa);
    json_decref(ga);

    return rc;
}


/* One public-key coordinate as 32 big-endian bytes in base64url. */
static int
id_ec_coord(EVP_PKEY *pk, const char *param, char *out, size_t size,
    id_err_t *err)
{
    int            rc;
    BIGNUM        *bn;
    unsigned char  buf[ID_EC_COORD_LEN];

    rc = -1;
    bn = NULL;

    if (EVP_PKEY_get_bn_param(pk, param, &bn) != 1) {
        id_ssl_err(err, "EVP_PKEY_get_bn_param");
        goto done;
    }

    if (BN_bn2binpad(bn, buf, sizeof(buf)) != (int) sizeof(buf)) {
        id_ssl_err(err, "BN_bn2binpad");
        goto done;
    }

    if (id_b64_encode(buf, sizeof(buf), ID_B64_URL, out, size) < 0) {
        id_seterr(err, "JWKS: encoding failed");
        goto done;
    }

    rc = 0;

done:

    BN_free(bn);

    return rc;
}


int
id_jwks(const id_keys_t *keys, char *out, size_t size, id_err_t *err)
{
    int      rc;
    char     x[64], y[64];
    json_t  *doc;

    rc = -1;
    doc = NULL;

    if (keys == NULL || out == NULL || keys->assertion_pkey == NULL) {
        id_seterr(err, "id_jwks: NULL argument");
        return -1;
    }

    if (id_ec_coord(keys->assertion_pkey, OSSL_PKEY_PARAM_EC_PUB_X, x,
                    sizeof(x), err)
        != 0
        || id_ec_coord(keys->assertion_pkey, OSSL_PKEY_PARAM_EC_PUB_Y, y,
                       sizeof(y), err)
           != 0)
    {
        goto done;
    }

    doc = json_pack("{s:[{s:s, s:s, s:s, s:s, s:s, s:s, s:s}]}", "keys",
                    "kty", "EC", "crv", "P-256", "x", x, "y", y,
                    "use", "sig", "alg", "ES256",
                    "kid", keys->assertion.kid);
    if (doc == NULL) {
        id_seterr(err, "JWKS: json_pack failed");
        goto done;
    }

    rc = id_json_out(doc, out, size, "JWKS", err);

done:

    json_decref(doc);

    return rc;
}
