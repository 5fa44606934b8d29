/*
 * ztgate device CA: create the CA, issue the gateway's server certificate
 * and device client certificates, renew them, revoke, publish the CRL.
 *
 * Serial numbers are 127 random bits (positive, unique in the index), so
 * there is no serial counter to keep.  Every certificate issued is written
 * to the index before the certificate file itself: a certificate that
 * exists is always one that can be revoked.  Everything that rewrites the
 * index or the crlnumber holds the CA lock (ca_lock()).
 */

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "certs/ca_local.h"

#define CA_DEFAULT_CN           "ztgate device CA"
#define CA_DEFAULT_CA_DAYS      3650
#define CA_DEFAULT_DEVICE_DAYS  365
#define CA_DEFAULT_CRL_DAYS     7
#define CA_MAX_DAYS             36500
#define CA_CN_MAX               64      /* ub-common-name, RFC 5280 */
#define CA_DNS_MAX              253
#define CA_BACKDATE             300     /* seconds, for device clock skew */
#define CA_SERIAL_BYTES         16
#define CA_CSR_MAX              (64 * 1024)
#define CA_CRLNUM_MAX           256

typedef struct {
    const char  *dir;
    X509        *cert;
    EVP_PKEY    *key;
    int          lock;
} ca_t;

typedef enum {
    CA_LEAF_SERVER = 0,
    CA_LEAF_DEVICE
} ca_leaf_t;

/*
 * Where a new leaf certificate goes.  A generated key goes to key_out, or
 * with the certificate and the CA's into a PKCS#12 file p12_out under a
 * fresh passphrase written to p12_pass.  With renew set, the certificate
 * replaces that one, which must be a valid entry of the index.
 */
typedef struct {
    const char  *crt_out;           /* NULL only with p12_out */
    const char  *key_out;
    const char  *p12_out;
    char        *p12_pass;          /* out, p12_pass_size bytes */
    size_t       p12_pass_size;
    X509        *renew;
    const char  *renew_path;        /* for messages */
} ca_leaf_out_t;

static int ca_days(int days, int dflt, const char *what, int *out,
    ca_err_t *err);
static int ca_cn_valid(const char *cn);
static int ca_dns_valid(const char *name);
static int ca_open(ca_t *ca, const char *dir, const char *passphrase,
    ca_err_t *err);
static void ca_clear(ca_t *ca);
static void ca_close(ca_t *ca);
static ca_key_type_t ca_key_type_of(EVP_PKEY *pkey);
static int ca_pubkey_acceptable(EVP_PKEY *pkey, const char *what,
    ca_err_t *err);
static int ca_add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value,
    ca_err_t *err);
static int ca_set_cn(X509 *x, const char *cn, ca_err_t *err);
static int ca_serial_new(X509 *x, const ca_index_t *idx, ca_err_t *err);
static int ca_san_push(GENERAL_NAMES *gens, int type, ASN1_STRING *value,
    const char *what, ca_err_t *err);
static int ca_san_add_str(GENERAL_NAMES *gens, int type, const char *value,
    ca_err_t *err);
static int ca_san_add_ip(GENERAL_NAMES *gens, const char *ip, ca_err_t *err);
static X509 *ca_cert_new(const ca_index_t *idx, X509 *issuer, EVP_PKEY *pub,
    const char *cn, int days, ca_err_t *err);
static X509 *ca_self_sign(EVP_PKEY *key, const char *cn, int days,
    ca_err_t *err);
static X509 *ca_leaf_sign(ca_t *ca, const ca_index_t *idx, EVP_PKEY *pub,
    const char *cn, GENERAL_NAMES *san, ca_leaf_t kind, int days,
    ca_err_t *err);
static int ca_record(ca_index_t *idx, X509 *x, ca_cert_info_t *info,
    ca_err_t *err);
static int ca_renew_check(ca_t *ca, const ca_index_t *idx, X509 *old,
    const char *path, ca_err_t *err);
static int ca_issue_leaf(const char *dir, const char *passphrase,
    EVP_PKEY *pub, const char *cn, GENERAL_NAMES *san, ca_leaf_t kind,
    int days, ca_leaf_out_t *out, ca_cert_info_t *info, ca_err_t *err);
static int ca_device_issue(const char *dir, const char *passphrase,
    const char *device_id, const char *common_name, const char *csr_path,
    int days, ca_leaf_out_t *out, ca_cert_info_t *info, ca_err_t *err);
static int ca_renew_any(const char *dir, const char *passphrase,
    const char *old_crt, const char *csr_path, int days, ca_leaf_out_t *out,
    ca_cert_info_t *info, ca_err_t *err);
static X509_REQ *ca_csr_read(const char *path, ca_err_t *err);
static void ca_uuid(char out[37], const unsigned char b[16]);
static int ca_crlnumber_next(const char *dir, BIGNUM **num, ca_err_t *err);
static int ca_crl_add_revoked(X509_CRL *crl, const ca_index_entry_t *e,
    ca_err_t *err);


static int
ca_days(int days, int dflt, const char *what, int *out, ca_err_t *err)
{
    if (days == 0) {
        days = dflt;
    }

    if (days < 0 || days > CA_MAX_DAYS) {
        ca_err_set(err, "%s: validity must be 1 to %d days, not %d", what,
                   CA_MAX_DAYS, days);
        return -1;
    }

    *out = days;

    return 0;
}


/* 1 to 64 bytes, no control characters (UTF-8 is checked by OpenSSL). */
static int
ca_cn_valid(const char *cn)
{
    const unsigned char  *p;

    for (p = (const unsigned char *) cn; *p != '\0'; p++) {
        if (*p < 0x20 || *p == 0x7f) {
            return 0;
        }
    }

    return p != (const unsigned char *) cn
           && (size_t) (p - (const unsigned char *) cn) <= CA_CN_MAX;
}


/*
 * A host name of letters, digits and inner hyphens, labels of 1 to 63
 * characters; "*." may lead.  Anything else is refused before it can reach
 * a certificate.
 */
static int
ca_dns_valid(const char *name)
{
    size_t  len, label;

    len = strlen(name);
    if (len == 0 || len > CA_DNS_MAX) {
        return 0;
    }

    if (name[0] == '*' && name[1] == '.') {
        name += 2;
    }

    label = 0;

    for ( /* void */ ; *name != '\0'; name++) {
        if (*name == '.') {
            if (label == 0 || name[-1] == '-') {
                return 0;
            }
            label = 0;
            continue;
        }

        if (!((*name >= 'a' && *name <= 'z') || (*name >= 'A' && *name <= 'Z')
              || (*name >= '0' && *name <= '9') || *name == '-'))
        {
            return 0;
        }

        if (*name == '-' && label == 0) {
            return 0;
        }

        if (++label > 63) {
            return 0;
        }
    }

    return label > 0 && name[-1] != '-';
}


/*
 * Load the CA certificate and key and lock the CA directory.  After the
 * call, ca owns the lock and both objects; release them with ca_close(),
 * also on failure.
 */
static int
ca_open(ca_t *ca, const char *dir, const char *passphrase, ca_err_t *err)
{
    char  path[CA_PATH_MAX];

    ca_clear(ca);
    ca->dir = dir;

    if (ca_path(path, sizeof(path), dir, CA_CRT_FILE, err) == -1) {
        return -1;
    }

    ca->cert = ca_cert_read(path, err);
    if (ca->cert == NULL) {
        return -1;
    }

    if (ca_path(path, sizeof(path), dir, CA_KEY_FILE, err) == -1) {
        return -1;
    }

    ca->key = ca_key_read(path, passphrase, err);
    if (ca->key == NULL) {
        return -1;
    }

    if (X509_check_private_key(ca->cert, ca->key) != 1) {
        ca_err_ssl(err, "%s: does not match %s/%s", path, dir, CA_CRT_FILE);
        return -1;
    }

    /* Taken last, so that a directory that is no CA gets no lock file. */
    ca->lock = ca_lock(dir, err);
    if (ca->lock == -1) {
        return -1;
    }

    return 0;
}


/* An empty ca: ca_close() may be called on it. */
static void
ca_clear(ca_t *ca)
{
    ca->dir = NULL;
    ca->key = NULL;
    ca->cert = NULL;
    ca->lock = -1;
}


static void
ca_close(ca_t *ca)
{
    EVP_PKEY_free(ca->key);
    X509_free(ca->cert);
    ca_unlock(ca->lock);

    ca_clear(ca);
}


static ca_key_type_t
ca_key_type_of(EVP_PKEY *pkey)
{
    return EVP_PKEY_is_a(pkey, "RSA") ? CA_KEY_RSA_3072 : CA_KEY_EC_P256;
}


/*
 * A key from a CSR is the device's choice; refuse the weak and the
 * unusual: RSA of at least 2048 bits, the NIST P curves or Ed25519.
 */
static int
ca_pubkey_acceptable(EVP_PKEY *pkey, const char *what, ca_err_t *err)
{
    char    group[64];
    size_t  len;
    int     bits;

    if (EVP_PKEY_is_a(pkey, "RSA")) {
        bits = EVP_PKEY_get_bits(pkey);
        if (bits < 2048 || bits > 16384) {
            ca_err_set(err, "%s: RSA key of %d bits refused (2048 to "
                       "16384)", what, bits);
            return -1;
        }
        return 0;
    }

    if (EVP_PKEY_is_a(pkey, "EC")) {
        if (EVP_PKEY_get_group_name(pkey, group, sizeof(group), &len) != 1) {
            ca_err_ssl(err, "%s: cannot read the curve of the EC key",
                       what);
            return -1;
        }

        if (strcmp(group, "prime256v1") == 0
            || strcmp(group, "secp384r1") == 0
            || strcmp(group, "secp521r1") == 0)
        {
            return 0;
        }

        ca_err_set(err, "%s: EC key on curve %s refused (P-256, P-384, "
                   "P-521)", what, group);
        return -1;
    }

    if (EVP_PKEY_is_a(pkey, "ED25519")) {
        return 0;
    }

    ca_err_set(err, "%s: key type %s refused (RSA, EC or Ed25519)", what,
               EVP_PKEY_get0_type_name(pkey) != NULL
               ? EVP_PKEY_get0_type_name(pkey) : "unknown");

    return -1;
}


static int
ca_add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value,
    ca_err_t *err)
{
    X509_EXTENSION  *ext;
    int              rc;

    ext = X509V3_EXT_nconf_nid(NULL, ctx, nid, value);
    if (ext == NULL) {
        ca_err_ssl(err, "cannot build extension %s = %s", OBJ_nid2sn(nid),
                   value);
        return -1;
    }

    rc = 0;
    if (X509_add_ext(x, ext, -1) != 1) {
        ca_err_ssl(err, "cannot add extension %s", OBJ_nid2sn(nid));
        rc = -1;
    }

    X509_EXTENSION_free(ext);

    return rc;
}


/* The subject is only CN: whatever else a CSR asked for is ignored. */
static int
ca_set_cn(X509 *x, const char *cn, ca_err_t *err)
{
    X509_NAME  *name;
    int         rc;

    rc = -1;

    name = X509_NAME_new();
    if (name == NULL) {
        ca_err_ssl(err, "cannot allocate a name");
        return -1;
    }

    if (X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_UTF8,
                                   (const unsigned char *) cn, -1, -1, 0)
        != 1)
    {
        ca_err_ssl(err, "bad common name \"%s\"", cn);
        goto cleanup;
    }

    if (X509_set_subject_name(x, name) != 1) {
        ca_err_ssl(err, "cannot set the subject name");
        goto cleanup;
    }

    rc = 0;

cleanup:

    X509_NAME_free(name);

    return rc;
}


/*
 * 127 random bits: positive, and unpredictable so that no one can make a
 * colliding certificate.  A serial already in the index (vanishingly
 * unlikely) is drawn again.
 */
static int
ca_serial_new(X509 *x, const ca_index_t *idx, ca_err_t *err)
{
    unsigned char   buf[CA_SERIAL_BYTES];
    char            hex[CA_SERIAL_HEX_MAX];
    BIGNUM         *bn;
    ASN1_INTEGER   *ai;
    int             tries, rc;

    rc = -1;
    bn = NULL;
    ai = NULL;

    for (tries = 0; tries < 16; tries++) {
        if (RAND_bytes(buf, sizeof(buf)) != 1) {
            ca_err_ssl(err, "cannot generate a serial number");
            goto cleanup;
        }

        buf[0] &= 0x7f;

        BN_free(bn);
        bn = BN_bin2bn(buf, sizeof(buf), NULL);
        if (bn == NULL) {
            ca_err_ssl(err, "cannot convert the serial number");
            goto cleanup;
        }

        if (BN_is_zero(bn)) {
            continue;
        }

        ASN1_INTEGER_free(ai);
        ai = BN_to_ASN1_INTEGER(bn, NULL);
        if (ai == NULL) {
            ca_err_ssl(err, "cannot convert the serial number");
            goto cleanup;
        }

        if (ca_serial_from_asn1(ai, hex, sizeof(hex)) == -1) {
            ca_err_ssl(err, "cannot convert the serial number");
            goto cleanup;
        }

        if (idx == NULL || ca_index_find(idx, hex) == NULL) {
            if (X509_set_serialNumber(x, ai) != 1) {
                ca_err_ssl(err, "cannot set the serial number");
                goto cleanup;
            }
            rc = 0;
            goto cleanup;
        }
    }

    ca_err_set(err, "cannot find an unused serial number");

cleanup:

    ASN1_INTEGER_free(ai);
    BN_free(bn);
    OPENSSL_cleanse(buf, sizeof(buf));

    return rc;
}


/*
 * Append value, a subjectAltName of the given GEN_* type, to gens; what
 * names it in errors.  value is owned by gens after the call, and freed on
 * failure.
 */
static int
ca_san_push(GENERAL_NAMES *gens, int type, ASN1_STRING *value,
    const char *what, ca_err_t *err)
{
    GENERAL_NAME  *gen;

    gen = GENERAL_NAME_new();
    if (gen == NULL) {
        ca_err_ssl(err, "cannot allocate subjectAltName %s", what);
        ASN1_STRING_free(value);
        return -1;
    }

    GENERAL_NAME_set0_value(gen, type, value);

    if (sk_GENERAL_NAME_push(gens, gen) <= 0) {
        ca_err_ssl(err, "cannot add subjectAltName %s", what);
        GENERAL_NAME_free(gen);
        return -1;
    }

    return 0;
}


/* Append a DNS name or a URI to gens. */
static int
ca_san_add_str(GENERAL_NAMES *gens, int type, const char *value,
    ca_err_t *err)
{
    ASN1_IA5STRING  *s;

    s = ASN1_IA5STRING_new();
    if (s == NULL || ASN1_STRING_set(s, value, -1) != 1) {
        ca_err_ssl(err, "cannot allocate subjectAltName %s", value);
        ASN1_IA5STRING_free(s);
        return -1;
    }

    return ca_san_push(gens, type, s, value, err);
}


static int
ca_san_add_ip(GENERAL_NAMES *gens, const char *ip, ca_err_t *err)
{
    ASN1_OCTET_STRING  *os;

    os = a2i_IPADDRESS(ip);
    if (os == NULL) {
        ERR_clear_error();
        ca_err_set(err, "bad IP address \"%s\"", ip);
        return -1;
    }

    return ca_san_push(gens, GEN_IPADD, os, ip, err);
}


/*
 * A version 3 certificate for pub with a fresh serial (unique in idx, if
 * given), subject CN cn, issued by issuer (NULL: by itself), valid from
 * now (backdated) for days, not yet signed and without extensions.  A
 * leaf's lifetime never runs past its issuer's.  The caller frees it.
 */
static X509 *
ca_cert_new(const ca_index_t *idx, X509 *issuer, EVP_PKEY *pub,
    const char *cn, int days, ca_err_t *err)
{
    X509  *x;

    x = X509_new();
    if (x == NULL) {
        ca_err_ssl(err, "cannot allocate a certificate");
        return NULL;
    }

    if (X509_set_version(x, X509_VERSION_3) != 1) {
        ca_err_ssl(err, "cannot set the certificate version");
        goto failed;
    }

    if (ca_serial_new(x, idx, err) == -1 || ca_set_cn(x, cn, err) == -1) {
        goto failed;
    }

    if (X509_set_issuer_name(x, X509_get_subject_name(issuer != NULL
                                                      ? issuer : x))
        != 1)
    {
        ca_err_ssl(err, "cannot set the issuer name");
        goto failed;
    }

    if (X509_gmtime_adj(X509_getm_notBefore(x), -CA_BACKDATE) == NULL
        || X509_time_adj_ex(X509_getm_notAfter(x), days, 0, NULL) == NULL)
    {
        ca_err_ssl(err, "cannot set the validity period");
        goto failed;
    }

    if (issuer != NULL
        && ASN1_TIME_compare(X509_get0_notAfter(x),
                             X509_get0_notAfter(issuer)) > 0
        && X509_set1_notAfter(x, X509_get0_notAfter(issuer)) != 1)
    {
        ca_err_ssl(err, "cannot limit the validity to the CA's");
        goto failed;
    }

    if (X509_set_pubkey(x, pub) != 1) {
        ca_err_ssl(err, "cannot set the public key");
        goto failed;
    }

    return x;

failed:

    X509_free(x);

    return NULL;
}


/* The CA certificate; the caller frees it. */
static X509 *
ca_self_sign(EVP_PKEY *key, const char *cn, int days, ca_err_t *err)
{
    X509        *x;
    X509V3_CTX   ctx;

    x = ca_cert_new(NULL, NULL, key, cn, days, err);
    if (x == NULL) {
        return NULL;
    }

    X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);

    /* The subject key identifier first: the AKI is derived from it. */
    if (ca_add_ext(x, &ctx, NID_basic_constraints,
                   "critical,CA:TRUE,pathlen:0", err) == -1
        || ca_add_ext(x, &ctx, NID_key_usage,
                      "critical,keyCertSign,cRLSign", err) == -1
        || ca_add_ext(x, &ctx, NID_subject_key_identifier, "hash", err) == -1
        || ca_add_ext(x, &ctx, NID_authority_key_identifier, "keyid:always",
                      err) == -1)
    {
        goto failed;
    }

    if (X509_sign(x, key, EVP_sha256()) <= 0) {
        ca_err_ssl(err, "cannot sign the CA certificate");
        goto failed;
    }

    return x;

failed:

    X509_free(x);

    return NULL;
}


/*
 * Build and sign an end-entity certificate for pub.  Its lifetime never
 * runs past the CA's own.  The caller frees the result.
 */
static X509 *
ca_leaf_sign(ca_t *ca, const ca_index_t *idx, EVP_PKEY *pub,
    const char *cn, GENERAL_NAMES *san, ca_leaf_t kind, int days,
    ca_err_t *err)
{
    X509        *x;
    X509V3_CTX   ctx;
    const char  *ku, *eku;

    x = ca_cert_new(idx, ca->cert, pub, cn, days, err);
    if (x == NULL) {
        return NULL;
    }

    if (kind == CA_LEAF_SERVER) {
        ku = EVP_PKEY_is_a(pub, "RSA")
             ? "critical,digitalSignature,keyEncipherment"
             : "critical,digitalSignature";
        eku = "serverAuth";

    } else {
        ku = "critical,digitalSignature";
        eku = "clientAuth";
    }

    X509V3_set_ctx(&ctx, ca->cert, x, NULL, NULL, 0);

    if (ca_add_ext(x, &ctx, NID_basic_constraints, "critical,CA:FALSE", err)
        == -1
        || ca_add_ext(x, &ctx, NID_key_usage, ku, err) == -1
        || ca_add_ext(x, &ctx, NID_ext_key_usage, eku, err) == -1
        || ca_add_ext(x, &ctx, NID_subject_key_identifier, "hash", err) == -1
        || ca_add_ext(x, &ctx, NID_authority_key_identifier, "keyid:always",
                      err) == -1)
    {
        goto failed;
    }

    if (X509_add1_ext_i2d(x, NID_subject_alt_name, san, 0, 0) != 1) {
        ca_err_ssl(err, "cannot add the subjectAltName extension");
        goto failed;
    }

    if (X509_sign(x, ca->key, EVP_sha256()) <= 0) {
        ca_err_ssl(err, "cannot sign the certificate");
        goto failed;
    }

    return x;

failed:

    X509_free(x);

    return NULL;
}


/* Add x to idx (not yet saved) and describe it in *info. */
static int
ca_record(ca_index_t *idx, X509 *x, ca_cert_info_t *info, ca_err_t *err)
{
    ca_index_entry_t  e;

    if (ca_cert_info_x509(x, info, err) == -1) {
        return -1;
    }

    memset(&e, 0, sizeof(e));
    e.status = 'V';
    e.not_after = info->not_after;
    e.revoked_at = 0;
    memcpy(e.fp_hex, info->fp_hex, sizeof(e.fp_hex));
    memcpy(e.serial_hex, info->serial_hex, sizeof(e.serial_hex));
    memcpy(e.subject_cn, info->subject_cn, sizeof(e.subject_cn));
    memcpy(e.device_id, info->device_id, sizeof(e.device_id));

    return ca_index_add(idx, &e, err);
}


/*
 * The certificate at path, old, may be renewed: this CA signed it, the
 * index knows it by serial and fingerprint, and it is not revoked.  An
 * expired one may be: the device record is what lets a device in.
 */
static int
ca_renew_check(ca_t *ca, const ca_index_t *idx, X509 *old, const char *path,
    ca_err_t *err)
{
    ca_cert_info_t     oi;
    ca_index_entry_t  *e;
    EVP_PKEY          *cakey;
    int                rc;

    cakey = X509_get0_pubkey(ca->cert);
    if (cakey == NULL) {
        ca_err_ssl(err, "%s/%s: cannot read the CA public key", ca->dir,
                   CA_CRT_FILE);
        return -1;
    }

    rc = X509_check_issued(ca->cert, old);
    if (rc != X509_V_OK || X509_verify(old, cakey) != 1) {
        ERR_clear_error();
        ca_err_set(err, "%s: not issued by the CA in %s, refusing to renew",
                   path, ca->dir);
        return -1;
    }

    if (ca_cert_info_x509(old, &oi, err) == -1) {
        return -1;
    }

    e = ca_index_find(idx, oi.serial_hex);
    if (e == NULL || strcmp(e->fp_hex, oi.fp_hex) != 0) {
        ca_err_set(err, "%s: serial %s is not in %s/%s, refusing to renew",
                   path, oi.serial_hex, ca->dir, CA_INDEX_FILE);
        return -1;
    }

    if (e->status != 'V') {
        ca_err_set(err, "%s: certificate %s is revoked, refusing to renew; "
                   "issue a new certificate instead", path, oi.serial_hex);
        return -1;
    }

    return 0;
}


/*
 * Open the CA and issue a leaf certificate for pub (NULL: a new key of the
 * CA's type, written where out says) with the given CN and
 * subjectAltNames: the index is saved before the certificate is written.
 * On success *info describes the certificate.  On failure a key or
 * PKCS#12 file written here is removed again and out->p12_pass wiped.
 * The caller keeps pub, san and out.
 */
static int
ca_issue_leaf(const char *dir, const char *passphrase, EVP_PKEY *pub,
    const char *cn, GENERAL_NAMES *san, ca_leaf_t kind, int days,
    ca_leaf_out_t *out, ca_cert_info_t *info, ca_err_t *err)
{
    ca_t         ca;
    ca_index_t   idx;
    EVP_PKEY    *key;
    X509        *x;
    const char  *secret;
    int          rc;

    rc = -1;
    secret = NULL;
    key = NULL;
    x = NULL;
    ca_clear(&ca);
    memset(&idx, 0, sizeof(idx));

    if (ca_open(&ca, dir, passphrase, err) == -1
        || ca_index_load(dir, &idx, err) == -1)
    {
        goto cleanup;
    }

    if (out->renew != NULL
        && ca_renew_check(&ca, &idx, out->renew, out->renew_path, err) == -1)
    {
        goto cleanup;
    }

    if (pub == NULL) {
        key = ca_key_generate(ca_key_type_of(ca.key), err);
        if (key == NULL) {
            goto cleanup;
        }
        pub = key;
    }

    x = ca_leaf_sign(&ca, &idx, pub, cn, san, kind, days, err);
    if (x == NULL || ca_record(&idx, x, info, err) == -1) {
        goto cleanup;
    }

    if (key != NULL && out->p12_out != NULL) {
        if (ca_p12_passphrase(out->p12_pass, out->p12_pass_size, err) == -1
            || ca_p12_write(out->p12_out, out->p12_pass,
                            info->device_id[0] != '\0' ? info->device_id
                                                       : cn,
                            key, x, ca.cert, err) == -1)
        {
            goto cleanup;
        }
        secret = out->p12_out;

    } else if (key != NULL) {
        if (ca_key_write(out->key_out, key, NULL, err) == -1) {
            goto cleanup;
        }
        secret = out->key_out;
    }

    if (ca_index_save(dir, &idx, err) == -1
        || (out->crt_out != NULL && ca_cert_write(out->crt_out, x, err) == -1))
    {
        goto cleanup;
    }

    rc = 0;

cleanup:

    if (rc != 0 && secret != NULL) {
        (void) unlink(secret);
    }

    if (rc != 0 && out->p12_pass != NULL) {
        OPENSSL_cleanse(out->p12_pass, out->p12_pass_size);
    }

    X509_free(x);
    EVP_PKEY_free(key);
    ca_index_free(&idx);
    ca_close(&ca);

    return rc;
}


/* Read a PEM or DER certificate request; the caller frees it. */
static X509_REQ *
ca_csr_read(const char *path, ca_err_t *err)
{
    char                 *data;
    const unsigned char  *p;
    size_t                len;
    BIO                  *bio;
    X509_REQ             *req;

    if (ca_read_file(path, CA_CSR_MAX, &data, &len, err) == -1) {
        return NULL;
    }

    req = NULL;

    bio = BIO_new_mem_buf(data, (int) len);
    if (bio == NULL) {
        ca_err_ssl(err, "%s: cannot allocate a BIO", path);
        goto cleanup;
    }

    req = PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL);
    if (req == NULL) {
        ERR_clear_error();
        p = (const unsigned char *) data;
        req = d2i_X509_REQ(NULL, &p, (long) len);
        if (req == NULL) {
            ca_err_ssl(err, "%s: not a PEM or DER certificate request",
                       path);
        }
    }

cleanup:

    BIO_free(bio);
    free(data);

    return req;
}


/* An RFC 9562 version 4 UUID, lower case. */
static void
ca_uuid(char out[37], const unsigned char b[16])
{
    unsigned char  u[16];

    memcpy(u, b, sizeof(u));
    u[6] = (unsigned char) ((u[6] & 0x0f) | 0x40);
    u[8] = (unsigned char) ((u[8] & 0x3f) | 0x80);

    snprintf(out, 37,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
             "%02x%02x%02x%02x%02x%02x",
             u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7],
             u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]);
}


int
ca_init(const char *dir, const ca_init_opts_t *opts, ca_err_t *err)
{
    char             key_path[CA_PATH_MAX], crt_path[CA_PATH_MAX];
    char             path[CA_PATH_MAX];
    struct stat      st;
    const char      *cn, *passphrase;
    ca_key_type_t    type;
    EVP_PKEY        *key;
    X509            *x;
    int              days, lock, rc, key_created, crt_created;

    static const char  crlnumber[] = "01\n";

    rc = -1;
    key = NULL;
    x = NULL;
    lock = -1;
    key_created = 0;
    crt_created = 0;

    cn = CA_DEFAULT_CN;
    type = CA_KEY_EC_P256;
    days = 0;
    passphrase = NULL;

    if (opts != NULL) {
        if (opts->common_name != NULL) {
            cn = opts->common_name;
        }
        type = opts->key_type;
        days = opts->days;
        passphrase = opts->passphrase;
    }

    if (ca_days(days, CA_DEFAULT_CA_DAYS, dir, &days, err) == -1) {
        return -1;
    }

    if (!ca_cn_valid(cn)) {
        ca_err_set(err, "%s: bad CA common name (1 to %d characters, no "
                   "control characters)", dir, CA_CN_MAX);
        return -1;
    }

    if (type != CA_KEY_EC_P256 && type != CA_KEY_RSA_3072) {
        ca_err_set(err, "%s: unknown key type %d", dir, (int) type);
        return -1;
    }

    if (passphrase != NULL && passphrase[0] == '\0') {
        ca_err_set(err, "%s: empty passphrase", dir);
        return -1;
    }

    if (mkdir(dir, 0700) == -1) {
        if (errno != EEXIST) {
            ca_err_sys(err, "%s: cannot create directory", dir);
            return -1;
        }

        if (stat(dir, &st) == -1) {
            ca_err_sys(err, "%s: cannot stat", dir);
            return -1;
        }

        if (!S_ISDIR(st.st_mode)) {
            ca_err_set(err, "%s: not a directory", dir);
            return -1;
        }
    }

    if (ca_path(key_path, sizeof(key_path), dir, CA_KEY_FILE, err) == -1
        || ca_path(crt_path, sizeof(crt_path), dir, CA_CRT_FILE, err) == -1)
    {
        return -1;
    }

    lock = ca_lock(dir, err);
    if (lock == -1) {
        return -1;
    }

    /* Checked before the slow key generation; O_EXCL is the real guard. */
    if (lstat(key_path, &st) == 0) {
        ca_err_set(err, "%s: already exists, refusing to overwrite a CA",
                   key_path);
        goto cleanup;
    }

    key = ca_key_generate(type, err);
    if (key == NULL) {
        goto cleanup;
    }

    x = ca_self_sign(key, cn, days, err);
    if (x == NULL) {
        goto cleanup;
    }

    if (ca_key_write(key_path, key, passphrase, err) == -1) {
        goto cleanup;
    }
    key_created = 1;

    if (ca_cert_write(crt_path, x, err) == -1) {
        goto cleanup;
    }
    crt_created = 1;

    if (ca_path(path, sizeof(path), dir, CA_INDEX_FILE, err) == -1
        || ca_write_atomic(path, "", 0, 0600, err) == -1)
    {
        goto cleanup;
    }

    if (ca_path(path, sizeof(path), dir, CA_CRLNUM_FILE, err) == -1
        || ca_write_atomic(path, crlnumber, sizeof(crlnumber) - 1, 0600,
                           err) == -1)
    {
        goto cleanup;
    }

    rc = 0;

cleanup:

    if (rc != 0 && crt_created) {
        (void) unlink(crt_path);
    }

    if (rc != 0 && key_created) {
        (void) unlink(key_path);
    }

    X509_free(x);
    EVP_PKEY_free(key);
    ca_unlock(lock);

    return rc;
}


int
ca_issue_server(const char *dir, const char *passphrase,
    const char *const *dns, size_t ndns, const char *const *ips, size_t nips,
    int days, const char *key_out, const char *crt_out, ca_err_t *err)
{
    ca_cert_info_t  info;
    ca_leaf_out_t   out;
    GENERAL_NAMES  *san;
    const char     *cn;
    size_t          i;
    int             rc;

    rc = -1;
    memset(&out, 0, sizeof(out));
    out.key_out = key_out;
    out.crt_out = crt_out;

    if (key_out == NULL || crt_out == NULL) {
        ca_err_set(err, "server certificate: key and certificate output "
                   "files are required");
        return -1;
    }

    if (ndns + nips == 0) {
        ca_err_set(err, "%s: at least one DNS name or IP address is "
                   "required", crt_out);
        return -1;
    }

    if (ca_days(days, CA_DEFAULT_DEVICE_DAYS, crt_out, &days, err) == -1) {
        return -1;
    }

    san = GENERAL_NAMES_new();
    if (san == NULL) {
        ca_err_ssl(err, "%s: cannot allocate subjectAltNames", crt_out);
        return -1;
    }

    for (i = 0; i < ndns; i++) {
        if (!ca_dns_valid(dns[i])) {
            ca_err_set(err, "bad DNS name \"%s\"", dns[i]);
            goto cleanup;
        }

        if (ca_san_add_str(san, GEN_DNS, dns[i], err) == -1) {
            goto cleanup;
        }
    }

    for (i = 0; i < nips; i++) {
        if (ca_san_add_ip(san, ips[i], err) == -1) {
            goto cleanup;
        }
    }

    cn = ndns > 0 ? dns[0] : ips[0];
    if (strlen(cn) > CA_CN_MAX) {
        ca_err_set(err, "\"%s\": too long for a common name (%d)", cn,
                   CA_CN_MAX);
        goto cleanup;
    }

    rc = ca_issue_leaf(dir, passphrase, NULL, cn, san, CA_LEAF_SERVER, days,
                       &out, &info, err);

cleanup:

    GENERAL_NAMES_free(san);

    return rc;
}


/*
 * Issue a device certificate for device_id (NULL: a new UUID) with the key
 * of the CSR at csr_path, or a generated one delivered as out says.
 */
static int
ca_device_issue(const char *dir, const char *passphrase,
    const char *device_id, const char *common_name, const char *csr_path,
    int days, ca_leaf_out_t *out, ca_cert_info_t *info, ca_err_t *err)
{
    char             id[CA_ID_MAX + 1];
    char             uri[sizeof(CA_DEVICE_URN) + CA_ID_MAX];
    unsigned char    rnd[16];
    ca_cert_info_t   ci;
    GENERAL_NAMES   *san;
    X509_REQ        *req;
    EVP_PKEY        *pub;
    const char      *cn, *what;
    int              rc;

    rc = -1;
    san = NULL;
    req = NULL;
    pub = NULL;
    what = out->crt_out != NULL ? out->crt_out : out->p12_out;

    if (ca_days(days, CA_DEFAULT_DEVICE_DAYS, what, &days, err) == -1) {
        return -1;
    }

    if (device_id != NULL) {
        if (!ca_device_id_valid(device_id)) {
            ca_err_set(err, "bad device id \"%.64s\": 1 to %d letters, "
                       "digits or '-'", device_id, CA_ID_MAX);
            return -1;
        }
        memcpy(id, device_id, strlen(device_id) + 1);

    } else {
        if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
            ca_err_ssl(err, "cannot generate a device id");
            return -1;
        }
        ca_uuid(id, rnd);
    }

    cn = common_name != NULL ? common_name : id;
    if (!ca_cn_valid(cn)) {
        ca_err_set(err, "bad common name: 1 to %d characters, no control "
                   "characters", CA_CN_MAX);
        return -1;
    }

    snprintf(uri, sizeof(uri), "%s%s", CA_DEVICE_URN, id);

    san = GENERAL_NAMES_new();
    if (san == NULL) {
        ca_err_ssl(err, "%s: cannot allocate subjectAltNames", what);
        return -1;
    }

    if (ca_san_add_str(san, GEN_URI, uri, err) == -1) {
        goto cleanup;
    }

    /* The CSR is checked before the CA key is even decrypted. */
    if (csr_path != NULL) {
        req = ca_csr_read(csr_path, err);
        if (req == NULL) {
            goto cleanup;
        }

        pub = X509_REQ_get0_pubkey(req);
        if (pub == NULL) {
            ca_err_ssl(err, "%s: cannot read the public key", csr_path);
            goto cleanup;
        }

        if (X509_REQ_verify(req, pub) != 1) {
            ca_err_ssl(err, "%s: bad signature on the certificate request",
                       csr_path);
            goto cleanup;
        }

        if (ca_pubkey_acceptable(pub, csr_path, err) == -1) {
            goto cleanup;
        }
    }

    if (ca_issue_leaf(dir, passphrase, pub, cn, san, CA_LEAF_DEVICE, days,
                      out, &ci, err) == -1)
    {
        goto cleanup;
    }

    if (info != NULL) {
        *info = ci;
    }

    rc = 0;

cleanup:

    X509_REQ_free(req);
    GENERAL_NAMES_free(san);

    return rc;
}


int
ca_issue_device(const char *dir, const char *passphrase,
    const char *device_id, const char *common_name, const char *csr_path,
    int days, const char *key_out, const char *crt_out,
    ca_cert_info_t *info, ca_err_t *err)
{
    ca_leaf_out_t  out;

    if (crt_out == NULL) {
        ca_err_set(err, "device certificate: no output file");
        return -1;
    }

    if (csr_path == NULL && key_out == NULL) {
        ca_err_set(err, "%s: either a CSR or a key output file is required",
                   crt_out);
        return -1;
    }

    memset(&out, 0, sizeof(out));
    out.crt_out = crt_out;
    out.key_out = key_out;

    return ca_device_issue(dir, passphrase, device_id, common_name, csr_path,
                           days, &out, info, err);
}


int
ca_issue_device_p12(const char *dir, const char *ca_passphrase,
    const char *device_id, const char *common_name, int days,
    const char *p12_out, char *passphrase_out, size_t size,
    ca_cert_info_t *info, ca_err_t *err)
{
    ca_leaf_out_t  out;

    if (p12_out == NULL || passphrase_out == NULL) {
        ca_err_set(err, "device certificate: no PKCS#12 output file");
        return -1;
    }

    memset(&out, 0, sizeof(out));
    out.p12_out = p12_out;
    out.p12_pass = passphrase_out;
    out.p12_pass_size = size;

    return ca_device_issue(dir, ca_passphrase, device_id, common_name, NULL,
                           days, &out, info, err);
}


/*
 * Renew old_crt: the same device id and common name, the key and output
 * as out and csr_path say.  Whether this CA issued it and has not revoked
 * it is checked under the CA lock, in ca_issue_leaf().
 */
static int
ca_renew_any(const char *dir, const char *passphrase, const char *old_crt,
    const char *csr_path, int days, ca_leaf_out_t *out, ca_cert_info_t *info,
    ca_err_t *err)
{
    ca_cert_info_t   oi;
    X509            *old;
    ca_err_t         inner;
    int              rc;

    if (old_crt == NULL) {
        ca_err_set(err, "renew: no certificate to renew");
        return -1;
    }

    old = ca_cert_read(old_crt, err);
    if (old == NULL) {
        return -1;
    }

    rc = -1;

    if (ca_cert_info_x509(old, &oi, &inner) == -1) {
        ca_err_set(err, "%s: %s", old_crt, inner.msg);
        goto cleanup;
    }

    if (oi.device_id[0] == '\0') {
        ca_err_set(err, "%s: no %s URI subjectAltName: not a device "
                   "certificate, refusing to renew", old_crt, CA_DEVICE_URN);
        goto cleanup;
    }

    out->renew = old;
    out->renew_path = old_crt;

    rc = ca_device_issue(dir, passphrase, oi.device_id,
                         oi.subject_cn[0] != '\0' ? oi.subject_cn : NULL,
                         csr_path, days, out, info, err);

cleanup:

    out->renew = NULL;
    X509_free(old);

    return rc;
}


int
ca_renew(const char *dir, const char *passphrase, const char *old_crt,
    const char *csr_path, int days, const char *key_out, const char *crt_out,
    ca_cert_info_t *info, ca_err_t *err)
{
    ca_leaf_out_t  out;

    if (crt_out == NULL) {
        ca_err_set(err, "renew: no certificate output file");
        return -1;
    }

    if ((csr_path == NULL) == (key_out == NULL)) {
        ca_err_set(err, "%s: either a CSR or a key output file is required",
                   crt_out);
        return -1;
    }

    memset(&out, 0, sizeof(out));
    out.crt_out = crt_out;
    out.key_out = key_out;

    return ca_renew_any(dir, passphrase, old_crt, csr_path, days, &out, info,
                        err);
}


int
ca_renew_p12(const char *dir, const char *ca_passphrase,
    const char *old_crt, int days, const char *p12_out,
    char *passphrase_out, size_t size, const char *crt_out,
    ca_cert_info_t *info, ca_err_t *err)
{
    ca_leaf_out_t  out;

    if (p12_out == NULL || passphrase_out == NULL) {
        ca_err_set(err, "renew: no PKCS#12 output file");
        return -1;
    }

    memset(&out, 0, sizeof(out));
    out.p12_out = p12_out;
    out.p12_pass = passphrase_out;
    out.p12_pass_size = size;
    out.crt_out = crt_out;

    return ca_renew_any(dir, ca_passphrase, old_crt, NULL, days, &out, info,
                        err);
}


int
ca_revoke(const char *dir, const char *serial_hex, ca_err_t *err)
{
    char               serial[CA_SERIAL_HEX_MAX];
    char               path[CA_PATH_MAX];
    char               when[32];
    struct tm          tm;
    time_t             t;
    ca_index_t         idx;
    ca_index_entry_t  *e;
    int                lock, rc;

    if (serial_hex == NULL
        || ca_serial_normalize(serial_hex, serial, sizeof(serial)) == -1)
    {
        ca_err_set(err, "bad serial number \"%.64s\"",
                   serial_hex != NULL ? serial_hex : "");
        return -1;
    }

    rc = -1;
    memset(&idx, 0, sizeof(idx));

    if (ca_path(path, sizeof(path), dir, CA_INDEX_FILE, err) == -1) {
        return -1;
    }

    if (access(path, F_OK) == -1) {
        ca_err_sys(err, "%s: cannot access", path);
        return -1;
    }

    lock = ca_lock(dir, err);
    if (lock == -1) {
        return -1;
    }

    if (ca_index_load(dir, &idx, err) == -1) {
        goto cleanup;
    }

    e = ca_index_find(&idx, serial);
    if (e == NULL) {
        ca_err_set(err, "%s/%s: no certificate with serial %s", dir,
                   CA_INDEX_FILE, serial);
        goto cleanup;
    }

    if (e->status == 'R') {
        t = (time_t) e->revoked_at;
        if (gmtime_r(&t, &tm) == NULL
            || strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        {
            snprintf(when, sizeof(when), "%" PRId64, e->revoked_at);
        }

        ca_err_set(err, "certificate %s is already revoked (since %s)",
                   serial, when);
        goto cleanup;
    }

    e->status = 'R';
    e->revoked_at = (int64_t) time(NULL);

    rc = ca_index_save(dir, &idx, err);

cleanup:

    ca_index_free(&idx);
    ca_unlock(lock);

    return rc;
}


/*
 * Take the CRL number from the crlnumber file (1 if missing) and store its
 * successor before the CRL is written: a failure then wastes a number but
 * never publishes two CRLs with the same one.
 */
static int
ca_crlnumber_next(const char *dir, BIGNUM **num, ca_err_t *err)
{
    char     path[CA_PATH_MAX];
    char     hex[CA_SERIAL_HEX_MAX];
    char    *data, *nl, *next;
    size_t   len;
    BIGNUM  *bn;
    int      rc;

    rc = -1;
    data = NULL;
    next = NULL;
    bn = NULL;

    if (ca_path(path, sizeof(path), dir, CA_CRLNUM_FILE, err) == -1) {
        return -1;
    }

    errno = 0;
    if (ca_read_file(path, CA_CRLNUM_MAX, &data, &len, err) == -1) {
        if (errno != ENOENT) {
            return -1;
        }
        strcpy(hex, "1");

    } else {
        nl = strchr(data, '\n');
        if (nl != NULL) {
            *nl = '\0';
        }

        if (ca_serial_normalize(data, hex, sizeof(hex)) == -1) {
            ca_err_set(err, "%s: not a hex number", path);
            goto cleanup;
        }
    }

    if (BN_hex2bn(&bn, hex) == 0) {
        ca_err_ssl(err, "%s: cannot convert the CRL number", path);
        goto cleanup;
    }

    if (BN_add_word(bn, 1) != 1) {
        ca_err_ssl(err, "%s: cannot increment the CRL number", path);
        goto cleanup;
    }

    next = BN_bn2hex(bn);
    if (next == NULL) {
        ca_err_ssl(err, "%s: cannot convert the CRL number", path);
        goto cleanup;
    }

    if (BN_sub_word(bn, 1) != 1) {
        ca_err_ssl(err, "%s: cannot convert the CRL number", path);
        goto cleanup;
    }

    free(data);
    data = NULL;

    len = strlen(next);
    data = malloc(len + 2);
    if (data == NULL) {
        ca_err_sys(err, "%s: cannot allocate", path);
        goto cleanup;
    }
    memcpy(data, next, len);
    data[len] = '\n';

    if (ca_write_atomic(path, data, len + 1, 0600, err) == -1) {
        goto cleanup;
    }

    *num = bn;
    bn = NULL;
    rc = 0;

cleanup:

    OPENSSL_free(next);
    free(data);
    BN_free(bn);

    return rc;
}


static int
ca_crl_add_revoked(X509_CRL *crl, const ca_index_entry_t *e, ca_err_t *err)
{
    X509_REVOKED  *rev;
    BIGNUM        *bn;
    ASN1_INTEGER  *serial;
    ASN1_TIME     *when;
    int            rc;

    rc = -1;
    bn = NULL;
    serial = NULL;
    when = NULL;

    rev = X509_REVOKED_new();
    if (rev == NULL) {
        ca_err_ssl(err, "cannot allocate a CRL entry");
        return -1;
    }

    if (BN_hex2bn(&bn, e->serial_hex) == 0) {
        ca_err_ssl(err, "index: bad serial %s", e->serial_hex);
        goto cleanup;
    }

    serial = BN_to_ASN1_INTEGER(bn, NULL);
    when = ASN1_TIME_set(NULL, (time_t) e->revoked_at);
    if (serial == NULL || when == NULL) {
        ca_err_ssl(err, "cannot build the CRL entry for %s", e->serial_hex);
        goto cleanup;
    }

    if (X509_REVOKED_set_serialNumber(rev, serial) != 1
        || X509_REVOKED_set_revocationDate(rev, when) != 1)
    {
        ca_err_ssl(err, "cannot build the CRL entry for %s", e->serial_hex);
        goto cleanup;
    }

    if (X509_CRL_add0_revoked(crl, rev) != 1) {
        ca_err_ssl(err, "cannot add %s to the CRL", e->serial_hex);
        goto cleanup;
    }

    rev = NULL;
    rc = 0;

cleanup:

    X509_REVOKED_free(rev);
    ASN1_TIME_free(when);
    ASN1_INTEGER_free(serial);
    BN_free(bn);

    return rc;
}


int
ca_publish_crl(const char *dir, const char *passphrase, int days,
    const char *out, ca_err_t *err)
{
    char               path[CA_PATH_MAX];
    ca_t               ca;
    ca_index_t         idx;
    X509_CRL          *crl;
    X509_EXTENSION    *ext;
    X509V3_CTX         ctx;
    BIGNUM            *num;
    ASN1_INTEGER      *crlnum;
    ASN1_TIME         *t;
    BIO               *mem;
    time_t             now;
    size_t             i;
    int                rc;

    rc = -1;
    crl = NULL;
    ext = NULL;
    num = NULL;
    crlnum = NULL;
    t = NULL;
    mem = NULL;
    ca_clear(&ca);
    memset(&idx, 0, sizeof(idx));

    if (ca_days(days, CA_DEFAULT_CRL_DAYS, "CRL", &days, err) == -1) {
        return -1;
    }

    if (ca_path(path, sizeof(path), dir, CA_CRL_FILE, err) == -1) {
        return -1;
    }

    if (ca_open(&ca, dir, passphrase, err) == -1
        || ca_index_load(dir, &idx, err) == -1
        || ca_crlnumber_next(dir, &num, err) == -1)
    {
        goto cleanup;
    }

    crl = X509_CRL_new();
    if (crl == NULL) {
        ca_err_ssl(err, "cannot allocate a CRL");
        goto cleanup;
    }

    if (X509_CRL_set_version(crl, X509_CRL_VERSION_2) != 1
        || X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca.cert))
           != 1)
    {
        ca_err_ssl(err, "cannot set the CRL issuer");
        goto cleanup;
    }

    now = time(NULL);

    t = ASN1_TIME_set(NULL, now);
    if (t == NULL || X509_CRL_set1_lastUpdate(crl, t) != 1) {
        ca_err_ssl(err, "cannot set the CRL lastUpdate");
        goto cleanup;
    }

    if (X509_time_adj_ex(t, days, 0, &now) == NULL
        || X509_CRL_set1_nextUpdate(crl, t) != 1)
    {
        ca_err_ssl(err, "cannot set the CRL nextUpdate");
        goto cleanup;
    }

    for (i = 0; i < idx.n; i++) {
        if (idx.entries[i].status == 'R'
            && ca_crl_add_revoked(crl, &idx.entries[i], err) == -1)
        {
            goto cleanup;
        }
    }

    if (X509_CRL_sort(crl) != 1) {
        ca_err_ssl(err, "cannot sort the CRL");
        goto cleanup;
    }

    X509V3_set_ctx(&ctx, ca.cert, NULL, NULL, crl, 0);

    ext = X509V3_EXT_nconf_nid(NULL, &ctx, NID_authority_key_identifier,
                               "keyid:always");
    if (ext == NULL || X509_CRL_add_ext(crl, ext, -1) != 1) {
        ca_err_ssl(err, "cannot add the CRL authorityKeyIdentifier");
        goto cleanup;
    }

    crlnum = BN_to_ASN1_INTEGER(num, NULL);
    if (crlnum == NULL
        || X509_CRL_add1_ext_i2d(crl, NID_crl_number, crlnum, 0, 0) != 1)
    {
        ca_err_ssl(err, "cannot add the CRL number");
        goto cleanup;
    }

    if (X509_CRL_sign(crl, ca.key, EVP_sha256()) <= 0) {
        ca_err_ssl(err, "cannot sign the CRL");
        goto cleanup;
    }

    mem = BIO_new(BIO_s_mem());
    if (mem == NULL || PEM_write_bio_X509_CRL(mem, crl) != 1) {
        ca_err_ssl(err, "cannot encode the CRL");
        goto cleanup;
    }

    if (ca_write_bio_atomic(path, mem, 0644, err) == -1) {
        goto cleanup;
    }

    if (out != NULL && ca_write_bio_atomic(out, mem, 0644, err) == -1) {
        goto cleanup;
    }

    rc = 0;

cleanup:

    BIO_free(mem);
    ASN1_INTEGER_free(crlnum);
    ASN1_TIME_free(t);
    X509_EXTENSION_free(ext);
    X509_CRL_free(crl);
    BN_free(num);
    ca_index_free(&idx);
    ca_close(&ca);

    return rc;
}
