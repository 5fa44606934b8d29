/*
 * Private to the identity library (trustd/id_*.c): the key set and the
 * helpers the sources share.  Nothing outside trustd/id_*.c includes it.
 */

#ifndef ZT_ID_INTERNAL_H
#define ZT_ID_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "identity.h"

#define ID_KID_LEN          16      /* hex chars of SHA-256 */
#define ID_HMAC_KEY_LEN     32
#define ID_SECRET_KEY_LEN   32
#define ID_KEYFILE_MAX      16384   /* no key file is larger */

#define ID_B64_STD          0       /* RFC 4648 section 4, no padding */
#define ID_B64_URL          1       /* RFC 4648 section 5, no padding */

/*
 * A session-token key.  HS256: sign and verify are the same 32 raw
 * bytes.  ES256: sign is the private key PEM and verify the public key
 * PEM, the forms libjwt 1.10 takes.  Both buffers are OPENSSL_malloc()ed
 * and cleansed when freed.
 */
typedef struct {
    char            kid[ID_KID_LEN + 1];
    unsigned char  *sign;
    size_t          sign_len;
    unsigned char  *verify;
    size_t          verify_len;
} id_session_key_t;

struct id_keys_s {
    id_alg_t            alg;
    uint64_t            gen;            /* unique per id_keys_load() */
    uint8_t             secret[ID_SECRET_KEY_LEN];
    uint8_t             secret_prev[ID_SECRET_KEY_LEN];
    int                 has_secret_prev;    /* a rotation in progress */

    id_session_key_t    cur;
    id_session_key_t    prev;
    int                 has_prev;
    int64_t             prev_until;     /* prev accepted while now < this */

    id_session_key_t    assertion;      /* always ES256 */
    EVP_PKEY           *assertion_pkey; /* for the JWKS */
};

void id_seterr(id_err_t *err, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* As id_seterr(), appending OpenSSL's last error; clears OpenSSL's queue. */
void id_ssl_err(id_err_t *err, const char *what);

/*
 * Unpadded base64 (standard or URL alphabet).  Encode returns the length
 * written (out NUL-terminated) or -1 when out is too small.  Decode is
 * strict: only the alphabet's characters, no padding, no whitespace, and
 * the unused low bits of the last character must be zero, so each value
 * has exactly one encoding; returns the decoded length or -1.
 */
int id_b64_encode(const uint8_t *in, size_t len, int alphabet, char *out,
    size_t size);
int id_b64_decode(const char *in, size_t len, int alphabet, uint8_t *out,
    size_t size);

/* Lowercase hex of in into out (2 * len + 1 bytes). */
void id_hex(const uint8_t *in, size_t len, char *out);

/* A compact JWS, split into header, payload and signature (id_token.c). */
typedef struct {
    const char  *part[3];
    size_t       len[3];
} id_jws_t;

/*
 * Split header.payload.signature of token (len bytes): every part
 * non-empty strict base64url, which also excludes NUL, whitespace and
 * further dots.  The parts point into token.  0 or -1.
 */
int id_jws_split(const char *token, size_t len, id_jws_t *jws);

/*
 * Decode a base64url part that must be a JSON object (duplicate members
 * refused).  Returns a new reference, or NULL.
 */
json_t *id_json_part(const char *p, size_t len);

/*
 * The first steps of reading a JWS named what ("token", "assertion"): at
 * most ID_TOKEN_MAX bytes, split (id_jws_split()), and its header decoded
 * (id_json_part()).  Returns the header (a new reference) with *jws set,
 * or NULL with the reason in err.
 */
json_t *id_jws_open(const char *token, size_t len, const char *what,
    id_jws_t *jws, id_err_t *err);

/* Claim syntax shared by issue and verify. */
int id_sid_ok(const char *sid);
int id_sub_ok(const char *sub);

/*
 * id_token_verify() that also reports until when the verdict may be
 * cached (the token's exp, or earlier when the previous key's grace ends
 * first).
 */
int id_token_verify_until(const id_keys_t *keys, const char *token,
    size_t len, int64_t now, id_claims_t *claims, int64_t *until,
    id_err_t *err);

#endif /* ZT_ID_INTERNAL_H */
