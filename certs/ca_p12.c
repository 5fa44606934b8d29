/*
 * ztgate device CA: delivery of a generated device key as a PKCS#12 file
 * under a one-time passphrase.
 *
 * The file uses what OpenSSL 3 reads without its legacy provider (RC2 and
 * 3DES, PKCS12_create()'s old defaults, need it): PBES2 with AES-256-CBC
 * and PBKDF2-HMAC-SHA256 for both the key and the certificate bags, and an
 * HMAC-SHA256 MAC.  The passphrase is random, about 124 bits, so the
 * iteration count guards nothing and stays at OpenSSL's default of 2048,
 * which every importer accepts.
 */

#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pkcs12.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "certs/ca_local.h"

#define CA_P12_ITER         2048
#define CA_P12_ALPHABET_N   (sizeof(CA_P12_PASS_ALPHABET) - 1)
/* The largest multiple of the alphabet size below 256: no modulo bias. */
#define CA_P12_BYTE_LIMIT   (256 - 256 % CA_P12_ALPHABET_N)


/*
 * A fresh passphrase from RAND_bytes() into out (at least
 * CA_P12_PASS_SIZE bytes): CA_P12_PASS_CHARS characters of
 * CA_P12_PASS_ALPHABET in groups of CA_P12_PASS_GROUP joined by '-'.
 * Bytes at or above CA_P12_BYTE_LIMIT are drawn again, so every character
 * is equally likely.
 */
int
ca_p12_passphrase(char *out, size_t size, ca_err_t *err)
{
    unsigned char  buf[64];
    size_t         i, n, o;
    int            rc;

    static const char  alphabet[] = CA_P12_PASS_ALPHABET;

    if (size < CA_P12_PASS_SIZE) {
        ca_err_set(err, "passphrase buffer of %zu bytes is too small (%d)",
                   size, CA_P12_PASS_SIZE);
        return -1;
    }

    rc = -1;
    n = 0;
    o = 0;

    while (n < CA_P12_PASS_CHARS) {
        if (RAND_bytes(buf, sizeof(buf)) != 1) {
            ca_err_ssl(err, "cannot generate a passphrase");
            goto cleanup;
        }

        for (i = 0; i < sizeof(buf) && n < CA_P12_PASS_CHARS; i++) {
            if (buf[i] >= CA_P12_BYTE_LIMIT) {
                continue;
            }

            if (n > 0 && n % CA_P12_PASS_GROUP == 0) {
                out[o++] = '-';
            }

            out[o++] = alphabet[buf[i] % CA_P12_ALPHABET_N];
            n++;
        }
    }

    out[o] = '\0';
    rc = 0;

cleanup:

    OPENSSL_cleanse(buf, sizeof(buf));

    if (rc != 0) {
        OPENSSL_cleanse(out, size);
    }

    return rc;
}


/*
 * Write key, cert and the CA certificate ca_cert as a new PKCS#12 file
 * (O_EXCL, mode 0600) under passphrase, with friendly name name on the key
 * and certificate.  The caller keeps every argument.
 */
int
ca_p12_write(const char *path, const char *passphrase, const char *name,
    EVP_PKEY *key, X509 *cert, X509 *ca_cert, ca_err_t *err)
{
    STACK_OF(X509)  *chain;
    PKCS12          *p12;
    BIO             *mem;
    char            *data;
    long             len;
    int              rc;

    rc = -1;
    p12 = NULL;
    mem = NULL;

    chain = sk_X509_new_null();
    if (chain == NULL || sk_X509_push(chain, ca_cert) <= 0) {
        ca_err_ssl(err, "%s: cannot build the certificate chain", path);
        goto cleanup;
    }

    /* mac_iter -1: no MAC here; the SHA-256 one is added below. */
    p12 = PKCS12_create_ex(passphrase, name, key, cert, chain,
                           NID_aes_256_cbc, NID_aes_256_cbc, CA_P12_ITER, -1,
                           0, NULL, NULL);
    if (p12 == NULL) {
        ca_err_ssl(err, "%s: cannot build the PKCS#12 structure", path);
        goto cleanup;
    }

    if (PKCS12_set_mac(p12, passphrase, -1, NULL, 0, CA_P12_ITER,
                       EVP_sha256()) != 1)
    {
        ca_err_ssl(err, "%s: cannot add the PKCS#12 MAC", path);
        goto cleanup;
    }

    mem = BIO_new(BIO_s_secmem());
    if (mem == NULL || i2d_PKCS12_bio(mem, p12) != 1) {
        ca_err_ssl(err, "%s: cannot encode the PKCS#12 file", path);
        goto cleanup;
    }

    len = BIO_get_mem_data(mem, &data);
    if (len <= 0) {
        ca_err_set(err, "%s: empty PKCS#12 encoding", path);
        goto cleanup;
    }

    rc = ca_write_secret(path, data, (size_t) len, err);

cleanup:

    BIO_free(mem);
    PKCS12_free(p12);
    sk_X509_free(chain);

    return rc;
}
