/*
 * The assertion handed to upstream applications (an ES256 JWT signed with
 * assertion.key) and the JWKS document they verify it with.  See
 * identity.h for the contract.
 */

#include <errno.h>
#include <strings.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <jwt.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include "id_internal.h"


#define ID_ASSERTION_ACR_AAL    "http://idmanagement.gov/ns/assurance/aal/"
#define ID_ASSERTION_TTL_MAX    3600
#define ID_EC_COORD_LEN         32
#define ID_ASSERTION_SIG_LEN    86      /* base64url chars of R || S */
#define ID_ASSERTION_LEEWAY_MAX 300


static json_t *id_json_strings(const char *const *v, size_t n);
static int id_json_out(json_t *obj, char *out, size_t size,
    const char *what, id_err_t *err);
static int id_ec_coord(EVP_PKEY *pk, const char *param, char *out,
    size_t size, id_err_t *err);
static int id_assertion_header(json_t *head, const id_keys_t *keys,
    id_err_t *err);
static int id_assertion_strings(json_t *v, char *out, size_t width,
    size_t max, size_t *n);
static int id_assertion_claims(json_t *payload, const char *aud,
    int64_t now, int leeway, id_assertion_t *a, id_err_t *err);


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
    size_t namr, int aal, int64_t now, int ttl, char *out, size_t size,
    id_err_t *err)
{
    int      rc, jrc;
    char    *tok, *grants, acr[64];
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

    if (aal >= 1 && aal <= 3) {
        snprintf(acr, sizeof(acr), "%s%d", ID_ASSERTION_ACR_AAL, aal);
        if (json_object_set_new(obj, "acr", json_string(acr)) != 0) {
            id_seterr(err, "assertion: out of memory");
            goto done;
        }
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


/* The pin: alg, typ, crit and kid, before any signature work. */
static int
id_assertion_header(json_t *head, const id_keys_t *keys, id_err_t *err)
{
    json_t      *v;
    const char  *alg, *kid;

    alg = json_string_value(json_object_get(head, "alg"));
    if (alg == NULL || strcmp(alg, "ES256") != 0) {
        id_seterr(err, "assertion algorithm is not the pinned ES256");
        return -1;
    }

    v = json_object_get(head, "typ");
    if (v != NULL && (!json_is_string(v)
                      || strcmp(json_string_value(v), "JWT") != 0))
    {
        id_seterr(err, "assertion typ is not JWT");
        return -1;
    }

    if (json_object_get(head, "crit") != NULL) {
        id_seterr(err, "assertion has critical header extensions");
        return -1;
    }

    kid = json_string_value(json_object_get(head, "kid"));
    if (kid == NULL || strcmp(kid, keys->assertion.kid) != 0) {
        id_seterr(err, "assertion kid names no key of ours");
        return -1;
    }

    return 0;
}


/*
 * An array of at most max printable ASCII strings shorter than width into
 * out (rows of width bytes).  0 with *n, or -1.
 */
static int
id_assertion_strings(json_t *v, char *out, size_t width, size_t max,
    size_t *n)
{
    size_t       i, j, len;
    json_t      *e;
    const char  *s;

    if (!json_is_array(v) || json_array_size(v) > max) {
        return -1;
    }

    json_array_foreach(v, i, e) {
        s = json_string_value(e);
        if (s == NULL) {
            return -1;
        }

        len = json_string_length(e);
        if (len == 0 || len >= width) {
            return -1;
        }

        for (j = 0; j < len; j++) {
            if ((unsigned char) s[j] < 0x20 || (unsigned char) s[j] > 0x7e) {
                return -1;
            }
        }

        memcpy(out + i * width, s, len + 1);
    }

    *n = json_array_size(v);

    return 0;
}


static int
id_assertion_claims(json_t *payload, const char *aud, int64_t now,
    int leeway, id_assertion_t *a, id_err_t *err)
{
    json_t      *v;
    const char  *s;

    s = json_string_value(json_object_get(payload, "iss"));
    if (s == NULL || strcmp(s, "ztgate") != 0) {
        id_seterr(err, "assertion issuer is not ztgate");
        return -1;
    }

    s = json_string_value(json_object_get(payload, "aud"));
    if (s == NULL || strcasecmp(s, aud) != 0) {
        id_seterr(err, "assertion is for another audience");
        return -1;
    }

    v = json_object_get(payload, "exp");
    if (!json_is_integer(v)) {
        id_seterr(err, "assertion lacks an integer exp");
        return -1;
    }
    a->exp = (int64_t) json_integer_value(v);

    v = json_object_get(payload, "iat");
    if (!json_is_integer(v)) {
        id_seterr(err, "assertion lacks an integer iat");
        return -1;
    }
    a->iat = (int64_t) json_integer_value(v);

    if (a->exp <= now - leeway) {
        id_seterr(err, "assertion expired");
        return -1;
    }

    if (a->iat > now + leeway) {
        id_seterr(err, "assertion issued in the future");
        return -1;
    }

    s = json_string_value(json_object_get(payload, "sub"));
    if (!id_sub_ok(s)) {
        id_seterr(err, "assertion has a malformed sub");
        return -1;
    }
    memcpy(a->sub, s, strlen(s) + 1);

    s = json_string_value(json_object_get(payload, "sid"));
    if (!id_sid_ok(s)) {
        id_seterr(err, "assertion has a malformed sid");
        return -1;
    }
    memcpy(a->sid, s, ID_SID_LEN + 1);

    if (id_assertion_strings(json_object_get(payload, "groups"),
                             &a->groups[0][0], sizeof(a->groups[0]),
                             ID_ASSERTION_GROUPS_MAX, &a->ngroups)
        != 0)
    {
        id_seterr(err, "assertion has malformed groups");
        return -1;
    }

    if (id_assertion_strings(json_object_get(payload, "amr"),
                             &a->amr[0][0], sizeof(a->amr[0]),
                             ID_ASSERTION_AMR_MAX, &a->namr)
        != 0)
    {
        id_seterr(err, "assertion has a malformed amr");
        return -1;
    }

    v = json_object_get(payload, "device");
    if (v != NULL) {
        s = json_string_value(v);
        if (s == NULL || json_string_length(v) == 0
            || json_string_length(v) >= sizeof(a->device)
            || strlen(s) != json_string_length(v))
        {
            id_seterr(err, "assertion has a malformed device");
            return -1;
        }
        memcpy(a->device, s, json_string_length(v) + 1);
    }

    return 0;
}


int
id_assertion_verify(const id_keys_t *keys, const char *token, size_t len,
    const char *aud, int64_t now, int leeway, id_assertion_t *out,
    id_err_t *err)
{
    int              rc, jrc;
    jwt_t           *jwt;
    json_t          *head, *payload;
    id_jws_t         jws;
    id_assertion_t  *a;
    char            *buf;

    rc = ID_ASSERTION_INVALID;
    jwt = NULL;
    head = NULL;
    payload = NULL;
    buf = NULL;
    a = NULL;

    if (keys == NULL || token == NULL || aud == NULL || out == NULL) {
        id_seterr(err, "id_assertion_verify: NULL argument");
        return -1;
    }

    memset(out, 0, sizeof(*out));

    if (leeway < 0 || leeway > ID_ASSERTION_LEEWAY_MAX || aud[0] == '\0') {
        id_seterr(err, "id_assertion_verify: bad leeway or empty audience");
        return -1;
    }

    head = id_jws_open(token, len, "assertion", &jws, err);
    if (head == NULL) {
        goto done;
    }

    if (id_assertion_header(head, keys, err) != 0) {
        goto done;
    }

    if (jws.len[2] != ID_ASSERTION_SIG_LEN) {
        id_seterr(err, "assertion signature has the wrong length");
        goto done;
    }

    if (keys->assertion.verify == NULL || keys->assertion.verify_len == 0) {
        /* never let libjwt decode without a key: it would verify nothing */
        id_seterr(err, "assertion: no verification key");
        rc = -1;
        goto done;
    }

    buf = malloc(len + 1);
    a = calloc(1, sizeof(*a));
    if (buf == NULL || a == NULL) {
        id_seterr(err, "assertion: out of memory");
        rc = -1;
        goto done;
    }

    memcpy(buf, token, len);
    buf[len] = '\0';

    jrc = jwt_decode(&jwt, buf, keys->assertion.verify,
                     (int) keys->assertion.verify_len);
    if (jrc != 0) {
        jwt = NULL;
        ERR_clear_error();

        if (jrc == ENOMEM) {
            id_seterr(err, "jwt_decode: out of memory");
            rc = -1;
        } else {
            id_seterr(err, "assertion signature does not verify");
        }

        goto done;
    }

    if (jwt_get_alg(jwt) != JWT_ALG_ES256) {
        id_seterr(err, "assertion algorithm is not the pinned ES256");
        goto done;
    }

    payload = id_json_part(jws.part[1], jws.len[1]);
    if (payload == NULL) {
        id_seterr(err, "assertion payload is not a JSON object");
        goto done;
    }

    if (id_assertion_claims(payload, aud, now, leeway, a, err) != 0) {
        goto done;
    }

    *out = *a;
    rc = ID_ASSERTION_OK;

done:

    free(a);
    free(buf);
    json_decref(payload);
    json_decref(head);
    jwt_free(jwt);

    return rc;
}
