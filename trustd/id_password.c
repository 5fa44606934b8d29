/*
 * Password hashing with scrypt through OpenSSL 3's EVP_KDF.  See
 * identity.h for the contract.
 *
 * Encoding: "$scrypt$ln=15,r=8,p=1$<salt>$<hash>", salt and hash in
 * unpadded standard base64 (the PHC string format's convention).  The
 * password is only ever in the caller's buffer and OpenSSL's KDF context,
 * which OpenSSL cleanses when it frees it; derived bytes are cleansed
 * here.
 */

#include <limits.h>
#include <stdio.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include "id_internal.h"


#define ID_PW_LN            15
#define ID_PW_R             8
#define ID_PW_P             1
#define ID_PW_SALT_LEN      16
#define ID_PW_HASH_LEN      32
#define ID_PW_SALT_MAX      64
#define ID_PW_HASH_MAX      64
#define ID_PW_INPUT_MAX     4096
#define ID_PW_PREFIX        "$scrypt$"


static int id_scrypt(const char *password, const uint8_t *salt,
    size_t salt_len, unsigned ln, unsigned r, unsigned p, uint8_t *out,
    size_t out_len, id_err_t *err);
static const char *id_parse_uint(const char *s, const char *key,
    unsigned min, unsigned max, unsigned *val);
static int id_pw_parse(const char *encoded, unsigned *ln, unsigned *r,
    unsigned *p, uint8_t *salt, int *salt_len, uint8_t *hash, int *hash_len);


static int
id_scrypt(const char *password, const uint8_t *salt, size_t salt_len,
    unsigned ln, unsigned r, unsigned p, uint8_t *out, size_t out_len,
    id_err_t *err)
{
    int            rc;
    size_t         pwlen;
    uint64_t       n;
    uint32_t       r32, p32;
    EVP_KDF       *kdf;
    EVP_KDF_CTX   *kctx;
    OSSL_PARAM     params[6];

    rc = -1;
    kdf = NULL;
    kctx = NULL;

    pwlen = strlen(password);

    if (pwlen > ID_PW_INPUT_MAX) {
        id_seterr(err, "password longer than %d bytes", ID_PW_INPUT_MAX);
        goto done;
    }

    n = (uint64_t) 1 << ln;
    r32 = r;
    p32 = p;

    kdf = EVP_KDF_fetch(NULL, OSSL_KDF_NAME_SCRYPT, NULL);
    if (kdf == NULL) {
        id_ssl_err(err, "EVP_KDF_fetch(SCRYPT)");
        goto done;
    }

    kctx = EVP_KDF_CTX_new(kdf);
    if (kctx == NULL) {
        id_ssl_err(err, "EVP_KDF_CTX_new");
        goto done;
    }

    /* OSSL_PARAM takes non-const pointers; the KDF only reads them. */
    params[0] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PASSWORD,
                    (void *) (uintptr_t) password, pwlen);
    params[1] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT,
                    (void *) (uintptr_t) salt, salt_len);
    params[2] = OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_N, &n);
    params[3] = OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_R, &r32);
    params[4] = OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_P, &p32);
    params[5] = OSSL_PARAM_construct_end();

    if (EVP_KDF_derive(kctx, out, out_len, params) != 1) {
        id_ssl_err(err, "scrypt");
        OPENSSL_cleanse(out, out_len);
        goto done;
    }

    rc = 0;

done:

    EVP_KDF_CTX_free(kctx);
    EVP_KDF_free(kdf);

    return rc;
}


int
id_password_hash(const char *password, char *out, size_t size,
    id_err_t *err)
{
    int      rc, n;
    char     salt64[ID_PW_SALT_LEN * 2], hash64[ID_PW_HASH_LEN * 2];
    uint8_t  salt[ID_PW_SALT_LEN], hash[ID_PW_HASH_LEN];

    rc = -1;

    if (password == NULL || out == NULL) {
        id_seterr(err, "id_password_hash: NULL argument");
        return -1;
    }

    if (password[0] == '\0') {
        id_seterr(err, "empty password");
        return -1;
    }

    if (RAND_bytes(salt, sizeof(salt)) != 1) {
        id_ssl_err(err, "RAND_bytes");
        goto done;
    }

    if (id_scrypt(password, salt, sizeof(salt), ID_PW_LN, ID_PW_R, ID_PW_P,
                  hash, sizeof(hash), err)
        != 0)
    {
        goto done;
    }

    if (id_b64_encode(salt, sizeof(salt), ID_B64_STD, salt64, sizeof(salt64))
        < 0
        || id_b64_encode(hash, sizeof(hash), ID_B64_STD, hash64,
                         sizeof(hash64))
           < 0)
    {
        id_seterr(err, "password hash: encoding failed");
        goto done;
    }

    n = snprintf(out, size, ID_PW_PREFIX "ln=%u,r=%u,p=%u$%s$%s",
                 ID_PW_LN, ID_PW_R, ID_PW_P, salt64, hash64);

    if (n < 0 || (size_t) n >= size) {
        id_seterr(err, "password hash needs %d bytes, buffer has %zu",
                  n + 1, size);
        if (size > 0) {
            out[0] = '\0';
        }
        goto done;
    }

    rc = 0;

done:

    OPENSSL_cleanse(hash, sizeof(hash));
    OPENSSL_cleanse(hash64, sizeof(hash64));

    return rc;
}


/*
 * Parse "<key>=<decimal>" at s; returns the character after the number or
 * NULL.  No sign, no leading zeros, within [min, max].
 */
static const char *
id_parse_uint(const char *s, const char *key, unsigned min, unsigned max,
    unsigned *val)
{
    size_t    klen;
    unsigned  v;

    klen = strlen(key);

    if (strncmp(s, key, klen) != 0 || s[klen] != '=') {
        return NULL;
    }

    s += klen + 1;

    if (*s < '0' || *s > '9' || (s[0] == '0' && s[1] >= '0' && s[1] <= '9'))
    {
        return NULL;
    }

    v = 0;

    while (*s >= '0' && *s <= '9') {
        v = v * 10 + (unsigned) (*s - '0');

        if (v > max) {
            return NULL;
        }

        s++;
    }

    if (v < min) {
        return NULL;
    }

    *val = v;

    return s;
}


/*
 * Split an encoded hash into its parameters, salt and hash.  Refuses
 * parameters no hash of ours has before anything is spent on them.
 */
static int
id_pw_parse(const char *encoded, unsigned *ln, unsigned *r, unsigned *p,
    uint8_t *salt, int *salt_len, uint8_t *hash, int *hash_len)
{
    const char  *s, *salt64, *hash64;

    if (strnlen(encoded, ID_PWHASH_MAX) >= ID_PWHASH_MAX
        || strncmp(encoded, ID_PW_PREFIX, sizeof(ID_PW_PREFIX) - 1) != 0)
    {
        return -1;
    }

    s = encoded + sizeof(ID_PW_PREFIX) - 1;

    s = id_parse_uint(s, "ln", 10, 20, ln);
    if (s == NULL || *s++ != ',') {
        return -1;
    }

    s = id_parse_uint(s, "r", 1, 32, r);
    if (s == NULL || *s++ != ',') {
        return -1;
    }

    s = id_parse_uint(s, "p", 1, 16, p);
    if (s == NULL || *s++ != '$') {
        return -1;
    }

    salt64 = s;
    s = strchr(salt64, '$');
    if (s == NULL) {
        return -1;
    }

    hash64 = s + 1;

    *salt_len = id_b64_decode(salt64, (size_t) (s - salt64), ID_B64_STD,
                              salt, ID_PW_SALT_MAX);
    *hash_len = id_b64_decode(hash64, strlen(hash64), ID_B64_STD, hash,
                              ID_PW_HASH_MAX);

    if (*salt_len < ID_PW_SALT_LEN || *hash_len < ID_PW_HASH_LEN) {
        return -1;
    }

    return 0;
}


int
id_password_verify(const char *password, const char *encoded,
    id_err_t *err)
{
    int       rc, salt_len, hash_len;
    unsigned  ln, r, p;
    uint8_t   salt[ID_PW_SALT_MAX], want[ID_PW_HASH_MAX];
    uint8_t   got[ID_PW_HASH_MAX];

    rc = -1;

    if (password == NULL || encoded == NULL) {
        id_seterr(err, "id_password_verify: NULL argument");
        return -1;
    }

    if (id_pw_parse(encoded, &ln, &r, &p, salt, &salt_len, want, &hash_len)
        != 0)
    {
        id_seterr(err, "malformed password hash");
        goto done;
    }

    if (id_scrypt(password, salt, (size_t) salt_len, ln, r, p, got,
                  (size_t) hash_len, err)
        != 0)
    {
        goto done;
    }

    rc = (CRYPTO_memcmp(got, want, (size_t) hash_len) == 0) ? 1 : 0;

done:

    OPENSSL_cleanse(got, sizeof(got));
    OPENSSL_cleanse(want, sizeof(want));

    return rc;
}
