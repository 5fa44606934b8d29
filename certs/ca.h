/*
 * ztgate device CA: create a CA, issue the gateway's server certificate
 * and device client certificates, revoke, publish a CRL, and read the
 * facts ztgate keys devices by (fingerprint, device id, validity).
 *
 * A CA directory holds:
 *     ca.key      CA private key, PEM, mode 0600, created with O_EXCL
 *     ca.crt      CA certificate, PEM
 *     index       one line per issued certificate (see ca_index.c)
 *     crlnumber   number of the next CRL, hex text
 *     crl.pem     last published CRL (ca_publish_crl)
 *     lock        flock()ed while the index or crlnumber is rewritten
 *
 * A device certificate is delivered either from a CSR the device made (its
 * key never leaves the device: preferred) or with a generated key in a
 * PKCS#12 file protected by a one-time passphrase; a certificate of this
 * CA is renewed under the same device id with a new serial and validity.
 *
 * Serial numbers are 127 random bits, so there is no serial counter.
 * Serials are written as upper-case hex without leading zeros.
 *
 * All functions return 0 on success and -1 on failure with a message in
 * *err; none of them calls exit() or prints.  Key files are created under a
 * temporarily tightened umask, so do not call these from several threads.
 */

#ifndef ZT_CA_H
#define ZT_CA_H

#include <stddef.h>
#include <stdint.h>

#define CA_FP_LEN           32
#define CA_DEVICE_URN       "urn:ztgate:device:"

/*
 * A PKCS#12 passphrase: 25 characters drawn from 31 that cannot be
 * mistaken for one another (no 0/o, 1/l/i, no upper case), about 124
 * bits, written in five groups of five joined by '-'.
 */
#define CA_P12_PASS_ALPHABET    "23456789abcdefghjkmnpqrstuvwxyz"
#define CA_P12_PASS_CHARS       25
#define CA_P12_PASS_GROUP       5
/* The buffer it needs: characters, separators and the NUL. */
#define CA_P12_PASS_SIZE        (CA_P12_PASS_CHARS                        \
                                 + CA_P12_PASS_CHARS / CA_P12_PASS_GROUP)

typedef struct {
    char    msg[256];
} ca_err_t;

typedef enum {
    CA_KEY_EC_P256 = 0,             /* default */
    CA_KEY_RSA_3072 = 1
} ca_key_type_t;

typedef struct {
    uint8_t  fp[CA_FP_LEN];         /* SHA-256 of the certificate DER */
    char     fp_hex[2 * CA_FP_LEN + 1];
    char     device_id[128];        /* URI SAN urn:ztgate:device:..., or "" */
    char     subject_cn[128];
    char     serial_hex[64];
    int64_t  not_before;            /* unix seconds */
    int64_t  not_after;
} ca_cert_info_t;

/* One certificate of the index, as ca_list() reports it. */
typedef struct {
    char     status;                /* 'V' valid, 'R' revoked */
    char     serial_hex[64];
    int64_t  not_after;             /* unix seconds */
    int64_t  revoked_at;            /* unix seconds, 0 while valid */
    char     fp_hex[2 * CA_FP_LEN + 1];
    char     subject_cn[128];       /* "" if none */
    char     device_id[128];        /* "" if none (a server certificate) */
} ca_entry_t;

/* Called by ca_list() once per entry; non-zero stops the walk. */
typedef int (*ca_list_cb)(const ca_entry_t *e, void *arg);

typedef struct {
    const char     *common_name;    /* NULL: "ztgate device CA" */
    ca_key_type_t   key_type;
    int             days;           /* 0: 3650 */
    const char     *passphrase;     /* NULL: key stored unencrypted */
} ca_init_opts_t;

/*
 * Create a new CA in dir (created with mode 0700 if missing).  Refuses to
 * overwrite an existing ca.key.
 */
int ca_init(const char *dir, const ca_init_opts_t *opts, ca_err_t *err);

/*
 * Issue the gateway's TLS server certificate with the given DNS names and
 * IP addresses as subjectAltNames (serverAuth EKU), writing a new key to
 * key_out (mode 0600) and the certificate to crt_out.
 */
int ca_issue_server(const char *dir, const char *passphrase,
    const char *const *dns, size_t ndns, const char *const *ips, size_t nips,
    int days, const char *key_out, const char *crt_out, ca_err_t *err);

/*
 * Issue a device client certificate (clientAuth EKU, URI SAN
 * urn:ztgate:device:<device_id>).  device_id NULL means a fresh random
 * UUID.  With csr_path set, the public key comes from that CSR (whose
 * signature is verified) and key_out is ignored: the key never leaves the
 * device.  Otherwise a new key is generated and written to key_out (mode
 * 0600).  days 0 means 365.  On success *info describes the certificate.
 */
int ca_issue_device(const char *dir, const char *passphrase,
    const char *device_id, const char *common_name, const char *csr_path,
    int days, const char *key_out, const char *crt_out,
    ca_cert_info_t *info, ca_err_t *err);

/*
 * Like ca_issue_device() with a generated key, delivered as a PKCS#12 file
 * p12_out (created with O_EXCL, mode 0600) holding the key, the
 * certificate and the CA certificate, with the device id as friendly name.
 * The file is encrypted and MACed (AES-256-CBC with PBKDF2-HMAC-SHA256,
 * HMAC-SHA256 MAC) under a fresh one-time passphrase written to
 * passphrase_out, which must hold CA_P12_PASS_SIZE bytes; the caller
 * shows it once and wipes it.  The key is written nowhere else.  On
 * failure no file is left and passphrase_out is wiped.
 */
int ca_issue_device_p12(const char *dir, const char *ca_passphrase,
    const char *device_id, const char *common_name, int days,
    const char *p12_out, char *passphrase_out, size_t size,
    ca_cert_info_t *info, ca_err_t *err);

/*
 * Renew old_crt, a device certificate this CA issued and has not revoked
 * (it may have expired): issue a new certificate with the same device id
 * and common name, a new serial and a validity of days (0: 365) from now.
 * The key comes from csr_path, or is generated and written to key_out, as
 * with ca_issue_device().  The old certificate is left as it is: it stays
 * valid until it expires or is revoked.
 */
int ca_renew(const char *dir, const char *passphrase, const char *old_crt,
    const char *csr_path, int days, const char *key_out, const char *crt_out,
    ca_cert_info_t *info, ca_err_t *err);

/*
 * ca_renew() with a generated key delivered as with ca_issue_device_p12();
 * crt_out may be NULL (the certificate is in the PKCS#12 file too).
 */
int ca_renew_p12(const char *dir, const char *ca_passphrase,
    const char *old_crt, int days, const char *p12_out,
    char *passphrase_out, size_t size, const char *crt_out,
    ca_cert_info_t *info, ca_err_t *err);

/*
 * Call cb for every certificate in the index, in the order issued.  Reads
 * without the CA key or lock: the index is only ever replaced whole.  A
 * non-zero return from cb ends the walk early; ca_list() still returns 0.
 */
int ca_list(const char *dir, ca_list_cb cb, void *arg, ca_err_t *err);

/* Mark the certificate with this serial (hex) revoked in the index. */
int ca_revoke(const char *dir, const char *serial_hex, ca_err_t *err);

/* Write a CRL of all revoked certificates to out (PEM), valid `days`. */
int ca_publish_crl(const char *dir, const char *passphrase, int days,
    const char *out, ca_err_t *err);

/* Read a PEM certificate file (first certificate) and describe it. */
int ca_cert_info_file(const char *path, ca_cert_info_t *info, ca_err_t *err);

/* Describe a DER-encoded certificate. */
int ca_cert_info_der(const uint8_t *der, size_t len, ca_cert_info_t *info,
    ca_err_t *err);

#endif /* ZT_CA_H */
