/*
 * Secrets at rest: AES-256-GCM under secret.key.  See identity.h for the
 * contract.
 *
 * Format: version (1) | nonce (12) | ciphertext | tag (16).  The
 * additional authenticated data is the version byte followed by the
 * caller's aad string, so neither can be changed without the tag failing.
 * Nonces are random: with one key sealing a few values per enrolment, the
 * 2^32-message bound for random GCM nonces is far away.
 */

#include <limits.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "id_internal.h"


#define ID_SEAL_VERSION     1
#define ID_SEAL_NONCE_LEN   12
#define ID_SEAL_TAG_LEN     16
#define ID_SEAL_OVERHEAD    (1 + ID_SEAL_NONCE_LEN + ID_SEAL_TAG_LEN)
#define ID_SEAL_AAD_MAX     1024
#define ID_SEAL_PLAIN_MAX   1024    /* what id_reseal() can carry */


static int id_unseal_key(const uint8_t *key, const uint8_t *sealed,
    size_t len, const char *aad, uint8_t *out, size_t size, size_t *outlen,
    id_err_t *err);
static int id_gcm_init(EVP_CIPHER_CTX **ctx, const uint8_t *key,
    const uint8_t *nonce, const char *aad, uint8_t version, int enc,
    id_err_t *err);


static int
id_gcm_init(EVP_CIPHER_CTX **ctx, const uint8_t *key,
    const uint8_t *nonce, const char *aad, uint8_t version, int enc,
    id_err_t *err)
{
    int     outl;
    size_t  alen;

    alen = strlen(aad);

    if (alen > ID_SEAL_AAD_MAX) {
        id_seterr(err, "seal: aad longer than %d bytes", ID_SEAL_AAD_MAX);
        return -1;
    }

    *ctx = EVP_CIPHER_CTX_new();
    if (*ctx == NULL) {
        id_ssl_err(err, "EVP_CIPHER_CTX_new");
        return -1;
    }

    if (EVP_CipherInit_ex(*ctx, EVP_aes_256_gcm(), NULL, key, nonce, enc)
        != 1)
    {
        id_ssl_err(err, "EVP_CipherInit_ex(AES-256-GCM)");
        return -1;
    }

    if (EVP_CipherUpdate(*ctx, NULL, &outl, &version, 1) != 1
        || EVP_CipherUpdate(*ctx, NULL, &outl, (const uint8_t *) aad,
                            (int) alen)
           != 1)
    {
        id_ssl_err(err, "EVP_CipherUpdate(aad)");
        return -1;
    }

    return 0;
}


int
id_seal(const id_keys_t *keys, const uint8_t *plain, size_t len,
    const char *aad, uint8_t *out, size_t size, size_t *outlen,
    id_err_t *err)
{
    int              rc, n, fin;
    uint8_t         *nonce, *ct;
    EVP_CIPHER_CTX  *ctx;

    rc = -1;
    ctx = NULL;

    if (keys == NULL || (plain == NULL && len > 0) || out == NULL
        || outlen == NULL)
    {
        id_seterr(err, "id_seal: NULL argument");
        return -1;
    }

    if (len > INT_MAX - ID_SEAL_OVERHEAD
        || size < len + ID_SEAL_OVERHEAD)
    {
        id_seterr(err, "sealed value needs %zu bytes, buffer has %zu",
                  len + ID_SEAL_OVERHEAD, size);
        return -1;
    }

    if (aad == NULL) {
        aad = "";
    }

    out[0] = ID_SEAL_VERSION;
    nonce = out + 1;
    ct = nonce + ID_SEAL_NONCE_LEN;

    if (RAND_bytes(nonce, ID_SEAL_NONCE_LEN) != 1) {
        id_ssl_err(err, "RAND_bytes");
        goto done;
    }

    if (id_gcm_init(&ctx, keys->secret, nonce, aad, ID_SEAL_VERSION, 1, err)
        != 0)
    {
        goto done;
    }

    n = 0;

    if (len > 0 && EVP_EncryptUpdate(ctx, ct, &n, plain, (int) len) != 1) {
        id_ssl_err(err, "EVP_EncryptUpdate");
        goto done;
    }

    if (EVP_EncryptFinal_ex(ctx, ct + n, &fin) != 1) {
        id_ssl_err(err, "EVP_EncryptFinal_ex");
        goto done;
    }

    if ((size_t) n + (size_t) fin != len) {
        id_seterr(err, "seal: unexpected ciphertext length");
        goto done;
    }

    if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, ID_SEAL_TAG_LEN,
                            ct + len)
        != 1)
    {
        id_ssl_err(err, "EVP_CTRL_GCM_GET_TAG");
        goto done;
    }

    *outlen = len + ID_SEAL_OVERHEAD;
    rc = 0;

done:

    if (rc != 0) {
        OPENSSL_cleanse(out, size);
    }

    EVP_CIPHER_CTX_free(ctx);

    return rc;
}


/*
 * Open a sealed value with the current secret key or, during a rotation
 * of it (secret.key.prev present), with the previous one.
 */
int
id_unseal(const id_keys_t *keys, const uint8_t *sealed, size_t len,
    const char *aad, uint8_t *out, size_t size, size_t *outlen,
    id_err_t *err)
{
    if (keys == NULL) {
        id_seterr(err, "id_unseal: NULL argument");
        return -1;
    }

    if (id_unseal_key(keys->secret, sealed, len, aad, out, size, outlen,
                      err) == 0)
    {
        return 0;
    }

    if (!keys->has_secret_prev) {
        return -1;
    }

    return id_unseal_key(keys->secret_prev, sealed, len, aad, out, size,
                         outlen, err);
}


int
id_reseal(const id_keys_t *keys, const uint8_t *sealed, size_t len,
    const char *aad, uint8_t *out, size_t size, size_t *outlen,
    id_err_t *err)
{
    uint8_t  plain[ID_SEAL_PLAIN_MAX];
    size_t   plen;
    int      rc;

    if (id_unseal(keys, sealed, len, aad, plain, sizeof(plain), &plen, err)
        != 0)
    {
        return -1;
    }

    rc = id_seal(keys, plain, plen, aad, out, size, outlen, err);
    OPENSSL_cleanse(plain, sizeof(plain));

    return rc;
}


static int
id_unseal_key(const uint8_t *key, const uint8_t *sealed, size_t len,
    const char *aad, uint8_t *out, size_t size, size_t *outlen,
    id_err_t *err)
{
    int              rc, n, fin;
    size_t           ctlen;
    uint8_t          tag[ID_SEAL_TAG_LEN];
    const uint8_t   *nonce, *ct;
    EVP_CIPHER_CTX  *ctx;

    rc = -1;
    ctx = NULL;

    if (sealed == NULL || out == NULL || outlen == NULL) {
        id_seterr(err, "id_unseal: NULL argument");
        return -1;
    }

    if (len < ID_SEAL_OVERHEAD || len > INT_MAX) {
        id_seterr(err, "sealed value has a bad length (%zu)", len);
        return -1;
    }

    if (sealed[0] != ID_SEAL_VERSION) {
        id_seterr(err, "sealed value has unknown version %u",
                  (unsigned) sealed[0]);
        return -1;
    }

    ctlen = len - ID_SEAL_OVERHEAD;

    if (size < ctlen) {
        id_seterr(err, "unsealed value needs %zu bytes, buffer has %zu",
                  ctlen, size);
        return -1;
    }

    if (aad == NULL) {
        aad = "";
    }

    nonce = sealed + 1;
    ct = nonce + ID_SEAL_NONCE_LEN;

    /* The tag ctrl takes a non-const pointer. */
    memcpy(tag, ct + ctlen, ID_SEAL_TAG_LEN);

    if (id_gcm_init(&ctx, key, nonce, aad, sealed[0], 0, err) != 0) {
        goto done;
    }

    n = 0;

    if (ctlen > 0 && EVP_DecryptUpdate(ctx, out, &n, ct, (int) ctlen) != 1) {
        id_ssl_err(err, "EVP_DecryptUpdate");
        goto done;
    }

    if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, ID_SEAL_TAG_LEN, tag)
        != 1)
    {
        id_ssl_err(err, "EVP_CTRL_GCM_SET_TAG");
        goto done;
    }

    if (EVP_DecryptFinal_ex(ctx, out + n, &fin) != 1) {
        ERR_clear_error();
        id_seterr(err, "sealed value does not authenticate");
        goto done;
    }

    *outlen = (size_t) n + (size_t) fin;
    rc = 0;

done:

    if (rc != 0) {
        OPENSSL_cleanse(out, size);
    }

    EVP_CIPHER_CTX_free(ctx);

    return rc;
}
