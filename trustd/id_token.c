/*
 * Session tokens: JWTs issued and verified with libjwt 1.10, the
 * algorithm pinned.  See identity.h for the contract.
 *
 * libjwt 1.10 verifies with whatever algorithm the token's own header
 * names and decodes base64 leniently (invalid characters are skipped), so
 * before libjwt sees a token it is checked here: three parts in strict
 * unpadded base64url, a signature of the pinned algorithm's exact length,
 * a header that is a JSON object whose alg is the pinned one, whose typ
 * (if any) is "JWT", which has no crit, and whose kid names a key we hold.
 * The claims are read from the authenticated payload with jansson, types
 * checked.
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <jwt.h>
#include <openssl/err.h>
#include <openssl/rand.h>

#include "id_internal.h"


#define ID_LEEWAY           60      /* seconds, for nbf and iat */
#define ID_SIG_HS256        43      /* base64url chars of 32 bytes */
#define ID_SIG_ES256        86      /* base64url chars of R || S */


static int id_json_int(json_t *obj, const char *name, int64_t *val);
static int id_claims_read(json_t *payload, int64_t now, id_claims_t *claims,
    id_err_t *err);
static jwt_alg_t id_jwt_alg(id_alg_t alg);


_Static_assert(sizeof(long) >= sizeof(int64_t),
               "jwt_add_grant_int() must take a 64-bit time");


static jwt_alg_t
id_jwt_alg(id_alg_t alg)
{
    return (alg == ID_ALG_ES256) ? JWT_ALG_ES256 : JWT_ALG_HS256;
}


int
id_new_sid(char *out, size_t size, id_err_t *err)
{
    uint8_t  raw[ID_SID_LEN / 2];

    if (out == NULL || size < ID_SID_LEN + 1) {
        id_seterr(err, "session id needs %d bytes", ID_SID_LEN + 1);
        return -1;
    }

    if (RAND_bytes(raw, sizeof(raw)) != 1) {
        id_ssl_err(err, "RAND_bytes");
        return -1;
    }

    id_hex(raw, sizeof(raw), out);

    return 0;
}


int
id_token_issue(const id_keys_t *keys, const id_claims_t *claims,
    char *out, size_t size, id_err_t *err)
{
    int      rc, jrc;
    char     fp64[64], *tok, *cnf;
    size_t   len;
    jwt_t   *jwt;
    json_t  *obj;

    rc = -1;
    jwt = NULL;
    tok = NULL;
    cnf = NULL;
    obj = NULL;

    if (keys == NULL || claims == NULL || out == NULL) {
        id_seterr(err, "id_token_issue: NULL argument");
        return -1;
    }

    if (!id_sid_ok(claims->sid)) {
        id_seterr(err, "token: malformed session id");
        return -1;
    }

    if (!id_sub_ok(claims->user)) {
        id_seterr(err, "token: malformed user name");
        return -1;
    }

    if (claims->exp <= claims->iat || claims->nbf > claims->exp) {
        id_seterr(err, "token: exp must follow iat and nbf");
        return -1;
    }

    jrc = jwt_new(&jwt);
    if (jrc != 0) {
        id_seterr(err, "jwt_new: %s", strerror(jrc));
        goto done;
    }

    jrc = jwt_add_header(jwt, "kid", keys->cur.kid);

    if (jrc == 0) {
        jrc = jwt_add_grant(jwt, "sid", claims->sid);
    }

    if (jrc == 0) {
        jrc = jwt_add_grant(jwt, "sub", claims->user);
    }

    if (jrc == 0) {
        jrc = jwt_add_grant_int(jwt, "iat", (long) claims->iat);
    }

    if (jrc == 0) {
        jrc = jwt_add_grant_int(jwt, "nbf", (long) claims->nbf);
    }

    if (jrc == 0) {
        jrc = jwt_add_grant_int(jwt, "exp", (long) claims->exp);
    }

    if (jrc != 0) {
        id_seterr(err, "building the token: %s", strerror(jrc));
        goto done;
    }

    if (claims->has_cnf) {
        if (id_b64_encode(claims->cnf_fp, ID_FP_LEN, ID_B64_URL, fp64,
                          sizeof(fp64))
            < 0)
        {
            id_seterr(err, "token: encoding cnf failed");
            goto done;
        }

        obj = json_pack("{s:{s:s}}", "cnf", "x5t#S256", fp64);
        if (obj == NULL) {
            id_seterr(err, "token: json_pack(cnf) failed");
            goto done;
        }

        cnf = json_dumps(obj, JSON_COMPACT);
        if (cnf == NULL) {
            id_seterr(err, "token: json_dumps(cnf) failed");
            goto done;
        }

        jrc = jwt_add_grants_json(jwt, cnf);
        if (jrc != 0) {
            id_seterr(err, "jwt_add_grants_json: %s", strerror(jrc));
            goto done;
        }
    }

    jrc = jwt_set_alg(jwt, id_jwt_alg(keys->alg), keys->cur.sign,
                      (int) keys->cur.sign_len);
    if (jrc != 0) {
        id_seterr(err, "jwt_set_alg: %s", strerror(jrc));
        goto done;
    }

    tok = jwt_encode_str(jwt);
    if (tok == NULL) {
        ERR_clear_error();
        id_seterr(err, "jwt_encode_str failed");
        goto done;
    }

    len = strlen(tok);

    if (len > ID_TOKEN_MAX || len >= size) {
        id_seterr(err, "token needs %zu bytes, buffer has %zu (max %d)",
                  len + 1, size, ID_TOKEN_MAX);
        goto done;
    }

    memcpy(out, tok, len + 1);
    rc = 0;

done:

    free(tok);
    free(cnf);
    json_decref(obj);
    jwt_free(jwt);

    return rc;
}


/* Also used by the assertion verifier (id_assertion.c). */
int
id_jws_split(const char *token, size_t len, id_jws_t *jws)
{
    size_t  i, k, start;
    int     c;

    k = 0;
    start = 0;

    for (i = 0; i <= len; i++) {
        if (i == len || token[i] == '.') {
            if (k == 3) {
                return -1;
            }

            jws->part[k] = token + start;
            jws->len[k] = i - start;
            k++;
            start = i + 1;
            continue;
        }

        c = (unsigned char) token[i];

        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
              || (c >= '0' && c <= '9') || c == '-' || c == '_'))
        {
            return -1;
        }
    }

    if (k != 3) {
        return -1;
    }

    for (k = 0; k < 3; k++) {
        if (jws->len[k] == 0 || jws->len[k] % 4 == 1) {
            return -1;
        }
    }

    return 0;
}


json_t *
id_json_part(const char *p, size_t len)
{
    int       n;
    json_t   *j;
    uint8_t   buf[ID_TOKEN_MAX];

    n = id_b64_decode(p, len, ID_B64_URL, buf, sizeof(buf));
    if (n <= 0) {
        return NULL;
    }

    j = json_loadb((const char *) buf, (size_t) n, JSON_REJECT_DUPLICATES,
                   NULL);

    if (j != NULL && !json_is_object(j)) {
        json_decref(j);
        return NULL;
    }

    return j;
}


/* 0 and *val for an integer member, -1 when missing or not an integer. */
static int
id_json_int(json_t *obj, const char *name, int64_t *val)
{
    json_t  *v;

    v = json_object_get(obj, name);

    if (!json_is_integer(v)) {
        return -1;
    }

    *val = (int64_t) json_integer_value(v);

    return 0;
}


static int
id_claims_read(json_t *payload, int64_t now, id_claims_t *claims,
    id_err_t *err)
{
    int          n;
    json_t      *v, *cnf;
    const char  *s;

    if (id_json_int(payload, "exp", &claims->exp) != 0
        || id_json_int(payload, "nbf", &claims->nbf) != 0
        || id_json_int(payload, "iat", &claims->iat) != 0)
    {
        id_seterr(err, "token lacks an integer exp, nbf or iat");
        return -1;
    }

    if (claims->exp <= now) {
        id_seterr(err, "token expired");
        return -1;
    }

    if (claims->nbf > now && claims->nbf - now > ID_LEEWAY) {
        id_seterr(err, "token not yet valid (nbf in the future)");
        return -1;
    }

    if (claims->iat > now && claims->iat - now > ID_LEEWAY) {
        id_seterr(err, "token issued in the future");
        return -1;
    }

    s = json_string_value(json_object_get(payload, "sid"));
    if (!id_sid_ok(s)) {
        id_seterr(err, "token has a malformed sid");
        return -1;
    }

    memcpy(claims->sid, s, ID_SID_LEN + 1);

    s = json_string_value(json_object_get(payload, "sub"));
    if (!id_sub_ok(s)) {
        id_seterr(err, "token has a malformed sub");
        return -1;
    }

    memcpy(claims->user, s, strlen(s) + 1);

    cnf = json_object_get(payload, "cnf");

    if (cnf != NULL) {
        v = json_is_object(cnf) ? json_object_get(cnf, "x5t#S256") : NULL;
        s = json_string_value(v);

        n = (s == NULL) ? -1 : id_b64_decode(s, json_string_length(v),
                                             ID_B64_URL, claims->cnf_fp,
                                             ID_FP_LEN);

        if (n != ID_FP_LEN) {
            id_seterr(err, "token has a malformed cnf");
            return -1;
        }

        claims->has_cnf = 1;
    }

    return 0;
}


int
id_token_verify_until(const id_keys_t *keys, const char *token,
    size_t len, int64_t now, id_claims_t *claims, int64_t *until,
    id_err_t *err)
{
    int                      rc, jrc;
    size_t                   siglen;
    jwt_t                   *jwt;
    json_t                  *head, *payload, *v;
    id_jws_t                 jws;
    const char              *alg, *kid;
    id_claims_t              c;
    const id_session_key_t  *key;
    char                     buf[ID_TOKEN_MAX + 1];

    rc = ID_TOKEN_INVALID;
    jwt = NULL;
    head = NULL;
    payload = NULL;

    if (keys == NULL || token == NULL || claims == NULL || until == NULL) {
        id_seterr(err, "id_token_verify: NULL argument");
        return -1;
    }

    memset(&c, 0, sizeof(c));
    memset(claims, 0, sizeof(*claims));

    head = id_jws_open(token, len, "token", &jws, err);
    if (head == NULL) {
        goto done;
    }

    /* The pin: nothing about the signature is trusted before this. */
    alg = json_string_value(json_object_get(head, "alg"));
    if (alg == NULL || strcmp(alg, id_alg_name(keys->alg)) != 0) {
        id_seterr(err, "token algorithm is not the pinned %s",
                  id_alg_name(keys->alg));
        goto done;
    }

    v = json_object_get(head, "typ");
    if (v != NULL && (!json_is_string(v)
                      || strcmp(json_string_value(v), "JWT") != 0))
    {
        id_seterr(err, "token typ is not JWT");
        goto done;
    }

    if (json_object_get(head, "crit") != NULL) {
        id_seterr(err, "token has critical header extensions");
        goto done;
    }

    kid = json_string_value(json_object_get(head, "kid"));

    if (kid == NULL) {
        id_seterr(err, "token has no kid");
        goto done;
    }

    *until = INT64_MAX;

    if (strcmp(kid, keys->cur.kid) == 0) {
        key = &keys->cur;

    } else if (keys->has_prev && strcmp(kid, keys->prev.kid) == 0) {
        if (now >= keys->prev_until) {
            id_seterr(err, "token signed with the previous key, whose grace"
                      " period is over");
            goto done;
        }

        key = &keys->prev;
        *until = keys->prev_until;

    } else {
        id_seterr(err, "token kid names no key of ours");
        goto done;
    }

    siglen = (keys->alg == ID_ALG_ES256) ? ID_SIG_ES256 : ID_SIG_HS256;

    if (jws.len[2] != siglen) {
        id_seterr(err, "token signature has the wrong length");
        goto done;
    }

    if (key->verify == NULL || key->verify_len == 0) {
        /* Never let libjwt decode without a key: it would verify nothing. */
        id_seterr(err, "token: no verification key");
        rc = -1;
        goto done;
    }

    memcpy(buf, token, len);
    buf[len] = '\0';

    jrc = jwt_decode(&jwt, buf, key->verify, (int) key->verify_len);
    if (jrc != 0) {
        jwt = NULL;
        ERR_clear_error();

        if (jrc == ENOMEM) {
            id_seterr(err, "jwt_decode: out of memory");
            rc = -1;
        } else {
            id_seterr(err, "token signature does not verify");
        }

        goto done;
    }

    if (jwt_get_alg(jwt) != id_jwt_alg(keys->alg)) {
        id_seterr(err, "token algorithm is not the pinned %s",
                  id_alg_name(keys->alg));
        goto done;
    }

    payload = id_json_part(jws.part[1], jws.len[1]);
    if (payload == NULL) {
        id_seterr(err, "token payload is not a JSON object");
        goto done;
    }

    if (id_claims_read(payload, now, &c, err) != 0) {
        goto done;
    }

    if (c.exp < *until) {
        *until = c.exp;
    }

    *claims = c;
    rc = ID_TOKEN_OK;

done:

    json_decref(payload);
    json_decref(head);
    jwt_free(jwt);

    return rc;
}


int
id_token_verify(const id_keys_t *keys, const char *token, size_t len,
    int64_t now, id_claims_t *claims, id_err_t *err)
{
    int64_t  until;

    return id_token_verify_until(keys, token, len, now, claims, &until,
                                 err);
}


json_t *
id_jws_open(const char *token, size_t len, const char *what, id_jws_t *jws,
    id_err_t *err)
{
    json_t  *head;

    if (len > ID_TOKEN_MAX) {
        id_seterr(err, "%s longer than %d bytes", what, ID_TOKEN_MAX);
        return NULL;
    }

    if (id_jws_split(token, len, jws) != 0) {
        id_seterr(err, "%s is not three base64url parts", what);
        return NULL;
    }

    head = id_json_part(jws->part[0], jws->len[0]);
    if (head == NULL) {
        id_seterr(err, "%s header is not a JSON object", what);
        return NULL;
    }

    return head;
}
