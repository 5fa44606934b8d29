/*
 * ztgate device CA: the facts ztgate keys a device by, read from a
 * certificate: SHA-256 fingerprint of the DER, device id (URI SAN
 * urn:ztgate:device:<id>), subject CN, serial and validity.
 */

#include <limits.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "certs/ca_local.h"

static int ca_info_device_id(X509 *x, char *out, size_t size,
    ca_err_t *err);
static int ca_info_cn(X509 *x, char *out, size_t size, ca_err_t *err);


/*
 * The id of the first URI SAN that starts with urn:ztgate:device:, or ""
 * when there is none.  An id that is not one we could have issued (bad
 * characters, too long) is also "": the certificate names no device.
 */
static int
ca_info_device_id(X509 *x, char *out, size_t size, ca_err_t *err)
{
    GENERAL_NAMES            *gens;
    const GENERAL_NAME       *gen;
    const unsigned char      *data;
    const char               *id;
    char                      buf[sizeof(CA_DEVICE_URN) + CA_ID_MAX];
    int                       i, crit, len;
    size_t                    plen;

    out[0] = '\0';
    plen = sizeof(CA_DEVICE_URN) - 1;

    gens = X509_get_ext_d2i(x, NID_subject_alt_name, &crit, NULL);
    if (gens == NULL) {
        if (crit == -1) {
            return 0;
        }
        if (crit == -2) {
            ca_err_set(err, "more than one subjectAltName extension");
        } else {
            ca_err_ssl(err, "malformed subjectAltName extension");
        }
        return -1;
    }

    for (i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
        gen = sk_GENERAL_NAME_value(gens, i);
        if (gen->type != GEN_URI) {
            continue;
        }

        data = ASN1_STRING_get0_data(gen->d.uniformResourceIdentifier);
        len = ASN1_STRING_length(gen->d.uniformResourceIdentifier);

        if (len < 0 || (size_t) len <= plen
            || memcmp(data, CA_DEVICE_URN, plen) != 0)
        {
            continue;
        }

        if ((size_t) len >= sizeof(buf)
            || memchr(data, '\0', (size_t) len) != NULL)
        {
            break;
        }

        memcpy(buf, data, (size_t) len);
        buf[len] = '\0';
        id = buf + plen;

        if (ca_device_id_valid(id) && strlen(id) < size) {
            memcpy(out, id, strlen(id) + 1);
        }

        break;
    }

    GENERAL_NAMES_free(gens);

    return 0;
}


/*
 * The first subject CN as UTF-8, truncated to fit and with control
 * characters replaced, so that it is safe in the index and on a terminal.
 */
static int
ca_info_cn(X509 *x, char *out, size_t size, ca_err_t *err)
{
    const X509_NAME  *name;
    X509_NAME_ENTRY  *ne;
    unsigned char    *utf8;
    int               i, len;
    size_t            n;

    out[0] = '\0';

    name = X509_get_subject_name(x);
    i = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
    if (i < 0) {
        return 0;
    }

    ne = X509_NAME_get_entry(name, i);
    if (ne == NULL) {
        ca_err_ssl(err, "cannot read the subject common name");
        return -1;
    }

    len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(ne));
    if (len < 0) {
        ca_err_ssl(err, "cannot convert the subject common name");
        return -1;
    }

    n = (size_t) len < size - 1 ? (size_t) len : size - 1;

    /* Do not cut a multi-byte sequence in half. */
    while (n > 0 && n < (size_t) len && (utf8[n] & 0xc0) == 0x80) {
        n--;
    }

    for (i = 0; (size_t) i < n; i++) {
        out[i] = (utf8[i] < 0x20 || utf8[i] == 0x7f) ? '?' : (char) utf8[i];
    }
    out[n] = '\0';

    OPENSSL_free(utf8);

    return 0;
}


int
ca_cert_info_x509(X509 *x, ca_cert_info_t *info, ca_err_t *err)
{
    unsigned int  mdlen;
    size_t        i;

    static const char  hex[] = "0123456789abcdef";

    memset(info, 0, sizeof(*info));

    mdlen = 0;
    if (X509_digest(x, EVP_sha256(), info->fp, &mdlen) != 1
        || mdlen != CA_FP_LEN)
    {
        ca_err_ssl(err, "cannot compute the certificate fingerprint");
        return -1;
    }

    for (i = 0; i < CA_FP_LEN; i++) {
        info->fp_hex[2 * i] = hex[info->fp[i] >> 4];
        info->fp_hex[2 * i + 1] = hex[info->fp[i] & 0x0f];
    }
    info->fp_hex[2 * CA_FP_LEN] = '\0';

    if (ca_info_device_id(x, info->device_id, sizeof(info->device_id), err)
        == -1)
    {
        return -1;
    }

    if (ca_info_cn(x, info->subject_cn, sizeof(info->subject_cn), err)
        == -1)
    {
        return -1;
    }

    if (ca_serial_from_asn1(X509_get0_serialNumber(x), info->serial_hex,
                            sizeof(info->serial_hex))
        == -1)
    {
        ca_err_ssl(err, "cannot read the serial number");
        return -1;
    }

    if (ca_time_to_unix(X509_get0_notBefore(x), &info->not_before) == -1
        || ca_time_to_unix(X509_get0_notAfter(x), &info->not_after) == -1)
    {
        ca_err_ssl(err, "cannot read the validity period");
        return -1;
    }

    return 0;
}


int
ca_cert_info_file(const char *path, ca_cert_info_t *info, ca_err_t *err)
{
    X509      *x;
    ca_err_t   inner;
    int        rc;

    x = ca_cert_read(path, err);
    if (x == NULL) {
        return -1;
    }

    /* Prefix the file name to the message of ca_cert_info_x509(). */
    rc = ca_cert_info_x509(x, info, &inner);
    if (rc == -1) {
        ca_err_set(err, "%s: %s", path, inner.msg);
    }

    X509_free(x);

    return rc;
}


int
ca_cert_info_der(const uint8_t *der, size_t len, ca_cert_info_t *info,
    ca_err_t *err)
{
    const unsigned char  *p;
    X509                 *x;
    int                   rc;

    if (len == 0 || len > LONG_MAX) {
        ca_err_set(err, "certificate DER: bad length %zu", len);
        return -1;
    }

    p = der;
    x = d2i_X509(NULL, &p, (long) len);
    if (x == NULL) {
        ca_err_ssl(err, "certificate DER: cannot decode");
        return -1;
    }

    /* The fingerprint must cover exactly the bytes we were given. */
    if (p != der + len) {
        ca_err_set(err, "certificate DER: %zu trailing bytes",
                   (size_t) (der + len - p));
        X509_free(x);
        return -1;
    }

    rc = ca_cert_info_x509(x, info, err);

    X509_free(x);

    return rc;
}
