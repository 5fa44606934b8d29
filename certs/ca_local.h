/*
 * ztgate device CA: declarations shared by the files of certs/ and not
 * part of the public API in ca.h.
 */

#ifndef ZT_CA_LOCAL_H
#define ZT_CA_LOCAL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "certs/ca.h"

#define CA_KEY_FILE         "ca.key"
#define CA_CRT_FILE         "ca.crt"
#define CA_INDEX_FILE       "index"
#define CA_CRLNUM_FILE      "crlnumber"
#define CA_CRL_FILE         "crl.pem"
#define CA_LOCK_FILE        "lock"

#define CA_PATH_MAX         4096
#define CA_SERIAL_HEX_MAX   64
#define CA_ID_MAX           64          /* longest device id accepted */

/* One line of the index; see ca_index.c for the file format. */
typedef ca_entry_t ca_index_entry_t;

typedef struct {
    ca_index_entry_t  *entries;
    size_t             n;
    size_t             cap;
} ca_index_t;

/* ca_util.c */
void ca_err_set(ca_err_t *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void ca_err_ssl(ca_err_t *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void ca_err_sys(ca_err_t *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int ca_path(char *buf, size_t size, const char *dir, const char *name,
    ca_err_t *err);
int ca_write_atomic(const char *path, const void *data, size_t len,
    mode_t mode, ca_err_t *err);
int ca_write_bio_atomic(const char *path, BIO *mem, mode_t mode,
    ca_err_t *err);
int ca_read_file(const char *path, size_t max, char **data, size_t *len,
    ca_err_t *err);
int ca_write_secret(const char *path, const void *data, size_t len,
    ca_err_t *err);
int ca_key_write(const char *path, EVP_PKEY *pkey, const char *passphrase,
    ca_err_t *err);
EVP_PKEY *ca_key_read(const char *path, const char *passphrase,
    ca_err_t *err);
EVP_PKEY *ca_key_generate(ca_key_type_t type, ca_err_t *err);
X509 *ca_cert_read(const char *path, ca_err_t *err);
int ca_cert_write(const char *path, X509 *x, ca_err_t *err);
int ca_lock(const char *dir, ca_err_t *err);
void ca_unlock(int fd);
int ca_serial_normalize(const char *in, char *out, size_t size);
int ca_serial_from_asn1(const ASN1_INTEGER *ai, char *out, size_t size);
int ca_device_id_valid(const char *id);
int ca_time_to_unix(const ASN1_TIME *t, int64_t *out);

/* ca_index.c */
int ca_index_load(const char *dir, ca_index_t *idx, ca_err_t *err);
int ca_index_save(const char *dir, const ca_index_t *idx, ca_err_t *err);
int ca_index_add(ca_index_t *idx, const ca_index_entry_t *e, ca_err_t *err);
ca_index_entry_t *ca_index_find(const ca_index_t *idx,
    const char *serial_hex);
void ca_index_free(ca_index_t *idx);

/* ca_p12.c */
int ca_p12_passphrase(char *out, size_t size, ca_err_t *err);
int ca_p12_write(const char *path, const char *passphrase, const char *name,
    EVP_PKEY *key, X509 *cert, X509 *ca_cert, ca_err_t *err);

/* ca_info.c */
int ca_cert_info_x509(X509 *x, ca_cert_info_t *info, ca_err_t *err);

#endif /* ZT_CA_LOCAL_H */
