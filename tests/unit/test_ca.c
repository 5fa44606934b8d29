/*
 * Unit tests of the device CA (certs/ca.h).  Every test works in its own
 * directory under one mkdtemp() tree and checks the results with OpenSSL
 * itself: chain verification with an X509_STORE, extensions, CRL contents.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include <openssl/bio.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "certs/ca.h"

typedef struct {
    char      base[256];
    unsigned  seq;
} test_env_t;

static int setup_group(void **state);
static int teardown_group(void **state);
static int rm_entry(const char *path, const struct stat *st, int flag,
    struct FTW *ftw);
static const char *new_dir(void **state, char *buf, size_t size);
static const char *join(char *buf, size_t size, const char *dir,
    const char *name);
static X509 *load_cert(const char *path);
static X509_CRL *load_crl(const char *path);
static int verify(X509 *ca, X509 *leaf, X509_CRL *crl, int purpose);
static int has_uri(X509 *x, const char *uri);
static size_t count_lines(const char *path);
static void make_ca(const char *dir, ca_key_type_t type,
    const char *passphrase);
static void write_csr(const char *path, EVP_PKEY **key, int der,
    int corrupt);

static void test_init_creates_files(void **state);
static void test_init_refuses_second(void **state);
static void test_server_cert(void **state);
static void test_server_rejects_bad_names(void **state);
static void test_device_generated_key(void **state);
static void test_device_from_csr(void **state);
static void test_device_csr_bad_signature(void **state);
static void test_device_id_validation(void **state);
static void test_device_key_exclusive(void **state);
static void test_fingerprint(void **state);
static void test_info_der(void **state);
static void test_revoke_and_crl(void **state);
static void test_revoke_unknown(void **state);
static void test_rsa_ca(void **state);
static void test_other_ca_does_not_verify(void **state);
static void test_passphrase(void **state);
static void test_index_format(void **state);
static void test_device_p12(void **state);
static void test_p12_passphrase(void **state);
static void test_p12_refuses_existing(void **state);
static void test_renew(void **state);
static void test_renew_p12(void **state);
static void test_renew_refuses(void **state);
static void test_list(void **state);
static PKCS12 *load_p12(const char *path);
static int list_collect(const ca_entry_t *e, void *arg);

typedef struct {
    ca_entry_t  e[8];
    int         n;
    int         stop_after;
} test_list_t;


static int
setup_group(void **state)
{
    test_env_t  *env;

    env = calloc(1, sizeof(*env));
    if (env == NULL) {
        return -1;
    }

    snprintf(env->base, sizeof(env->base), "%s/test_ca.XXXXXX",
             getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp");

    if (mkdtemp(env->base) == NULL) {
        free(env);
        return -1;
    }

    *state = env;

    return 0;
}


static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void) st;
    (void) flag;
    (void) ftw;

    return remove(path);
}


static int
teardown_group(void **state)
{
    test_env_t  *env;
    int          rc;

    env = *state;
    rc = nftw(env->base, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(env);

    return rc;
}


/* A fresh, not yet existing directory name under the test tree. */
static const char *
new_dir(void **state, char *buf, size_t size)
{
    test_env_t  *env;

    env = *state;
    snprintf(buf, size, "%s/t%u", env->base, env->seq++);

    return buf;
}


static const char *
join(char *buf, size_t size, const char *dir, const char *name)
{
    snprintf(buf, size, "%s/%s", dir, name);

    return buf;
}


static X509 *
load_cert(const char *path)
{
    BIO   *bio;
    X509  *x;

    bio = BIO_new_file(path, "r");
    assert_non_null(bio);
    x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
    BIO_free(bio);
    assert_non_null(x);

    return x;
}


static X509_CRL *
load_crl(const char *path)
{
    BIO       *bio;
    X509_CRL  *crl;

    bio = BIO_new_file(path, "r");
    assert_non_null(bio);
    crl = PEM_read_bio_X509_CRL(bio, NULL, NULL, NULL);
    BIO_free(bio);
    assert_non_null(crl);

    return crl;
}


/* The X509_V_* result of verifying leaf against ca (and crl, if any). */
static int
verify(X509 *ca, X509 *leaf, X509_CRL *crl, int purpose)
{
    X509_STORE      *store;
    X509_STORE_CTX  *ctx;
    int              rc;

    store = X509_STORE_new();
    assert_non_null(store);
    assert_int_equal(X509_STORE_add_cert(store, ca), 1);

    if (crl != NULL) {
        assert_int_equal(X509_STORE_add_crl(store, crl), 1);
        X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK);
    }

    ctx = X509_STORE_CTX_new();
    assert_non_null(ctx);
    assert_int_equal(X509_STORE_CTX_init(ctx, store, leaf, NULL), 1);
    assert_int_equal(X509_STORE_CTX_set_purpose(ctx, purpose), 1);

    if (X509_verify_cert(ctx) == 1) {
        rc = X509_V_OK;
    } else {
        rc = X509_STORE_CTX_get_error(ctx);
        assert_int_not_equal(rc, X509_V_OK);
    }

    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);

    return rc;
}


static int
has_uri(X509 *x, const char *uri)
{
    GENERAL_NAMES       *gens;
    const GENERAL_NAME  *gen;
    int                  i, found;

    gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    if (gens == NULL) {
        return 0;
    }

    found = 0;
    for (i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
        gen = sk_GENERAL_NAME_value(gens, i);
        if (gen->type == GEN_URI
            && (size_t) ASN1_STRING_length(gen->d.uniformResourceIdentifier)
               == strlen(uri)
            && memcmp(ASN1_STRING_get0_data(gen->d.uniformResourceIdentifier),
                      uri, strlen(uri)) == 0)
        {
            found = 1;
        }
    }

    GENERAL_NAMES_free(gens);

    return found;
}


static size_t
count_lines(const char *path)
{
    FILE    *fp;
    size_t   n;
    int      c;

    fp = fopen(path, "r");
    assert_non_null(fp);

    n = 0;
    while ((c = fgetc(fp)) != EOF) {
        if (c == '\n') {
            n++;
        }
    }

    fclose(fp);

    return n;
}


static void
make_ca(const char *dir, ca_key_type_t type, const char *passphrase)
{
    ca_init_opts_t  opts;
    ca_err_t        err;

    memset(&opts, 0, sizeof(opts));
    opts.key_type = type;
    opts.passphrase = passphrase;

    if (ca_init(dir, &opts, &err) != 0) {
        fail_msg("ca_init: %s", err.msg);
    }
}


/*
 * A P-256 CSR with a subject the CA must ignore.  With corrupt set, the
 * last byte of the DER (inside the signature) is flipped.  *key receives
 * the device key unless key is NULL.
 */
static void
write_csr(const char *path, EVP_PKEY **key, int der, int corrupt)
{
    EVP_PKEY       *pkey;
    X509_REQ       *req;
    X509_NAME      *name;
    unsigned char  *buf;
    BIO            *bio;
    FILE           *fp;
    int             len;

    pkey = EVP_EC_gen("P-256");
    assert_non_null(pkey);

    req = X509_REQ_new();
    assert_non_null(req);
    assert_int_equal(X509_REQ_set_version(req, X509_REQ_VERSION_1), 1);

    name = X509_REQ_get_subject_name(req);
    assert_int_equal(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                         (const unsigned char *) "admin", -1, -1, 0), 1);
    assert_int_equal(X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                         (const unsigned char *) "evil", -1, -1, 0), 1);
    assert_int_equal(X509_REQ_set_pubkey(req, pkey), 1);
    assert_true(X509_REQ_sign(req, pkey, EVP_sha256()) > 0);

    if (der || corrupt) {
        buf = NULL;
        len = i2d_X509_REQ(req, &buf);
        assert_true(len > 0);

        if (corrupt) {
            buf[len - 1] ^= 0x01;
        }

        fp = fopen(path, "w");
        assert_non_null(fp);
        assert_int_equal(fwrite(buf, 1, (size_t) len, fp), (size_t) len);
        assert_int_equal(fclose(fp), 0);
        OPENSSL_free(buf);

    } else {
        bio = BIO_new_file(path, "w");
        assert_non_null(bio);
        assert_int_equal(PEM_write_bio_X509_REQ(bio, req), 1);
        BIO_free(bio);
    }

    X509_REQ_free(req);

    if (key != NULL) {
        *key = pkey;
    } else {
        EVP_PKEY_free(pkey);
    }
}


static void
test_init_creates_files(void **state)
{
    char         dir[512], path[600];
    struct stat  st;
    X509        *ca;

    new_dir(state, dir, sizeof(dir));
    make_ca(dir, CA_KEY_EC_P256, NULL);

    assert_int_equal(stat(dir, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);

    assert_int_equal(stat(join(path, sizeof(path), dir, "ca.key"), &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0600);

    assert_int_equal(stat(join(path, sizeof(path), dir, "index"), &st), 0);
    assert_int_equal(st.st_size, 0);

    ca = load_cert(join(path, sizeof(path), dir, "ca.crt"));

    /* A CA that signs certificates and CRLs and nothing else. */
    assert_int_equal(X509_check_ca(ca), 1);
    assert_true(X509_get_extension_flags(ca) & EXFLAG_SS);
    assert_true(X509_get_key_usage(ca) & KU_KEY_CERT_SIGN);
    assert_true(X509_get_key_usage(ca) & KU_CRL_SIGN);
    assert_false(X509_get_key_usage(ca) & KU_DIGITAL_SIGNATURE);
    assert_int_equal(X509_get_pathlen(ca), 0);
    assert_non_null(X509_get0_subject_key_id(ca));
    assert_int_equal(X509_get_signature_nid(ca), NID_ecdsa_with_SHA256);
    assert_int_equal(ASN1_STRING_type(X509_get0_serialNumber(ca)),
                     V_ASN1_INTEGER);
    assert_int_equal(verify(ca, ca, NULL, X509_PURPOSE_ANY), X509_V_OK);

    X509_free(ca);
}


static void
test_init_refuses_second(void **state)
{
    char            dir[512], path[600];
    unsigned char   before[64], after[64];
    FILE           *fp;
    size_t          n1, n2;
    ca_err_t        err;

    new_dir(state, dir, sizeof(dir));
    make_ca(dir, CA_KEY_EC_P256, NULL);

    fp = fopen(join(path, sizeof(path), dir, "ca.key"), "r");
    assert_non_null(fp);
    n1 = fread(before, 1, sizeof(before), fp);
    fclose(fp);

    assert_int_equal(ca_init(dir, NULL, &err), -1);
    assert_non_null(strstr(err.msg, "ca.key"));
    assert_non_null(strstr(err.msg, "exists"));

    fp = fopen(path, "r");
    assert_non_null(fp);
    n2 = fread(after, 1, sizeof(after), fp);
    fclose(fp);

    assert_int_equal(n1, n2);
    assert_memory_equal(before, after, n1);
}


static void
test_server_cert(void **state)
{
    char                 dir[512], key[600], crt[600], path[600];
    struct stat          st;
    X509                *ca, *x;
    ca_err_t             err;
    ca_cert_info_t       info;
    const char *const    dns[] = { "gw.example.com", "localhost" };
    const char *const    ips[] = { "127.0.0.1", "::1" };

    new_dir(state, dir, sizeof(dir));
    make_ca(dir, CA_KEY_EC_P256, NULL);
    join(key, sizeof(key), dir, "server.key");
    join(crt, sizeof(crt), dir, "server.crt");

    if (ca_issue_server(dir, NULL, dns, 2, ips, 2, 30, key, crt, &err)
        != 0)
    {
        fail_msg("ca_issue_server: %s", err.msg);
    }

    assert_int_equal(stat(key, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);

    ca = load_cert(join(path, sizeof(path), dir, "ca.crt"));
    x = load_cert(crt);

    assert_int_equal(verify(ca, x, NULL, X509_PURPOSE_SSL_SERVER),
                     X509_V_OK);
    assert_int_equal(X509_check_host(x, "gw.example.com", 0, 0, NULL), 1);
    assert_int_equal(X509_check_host(x, "localhost", 0, 0, NULL), 1);
    assert_int_equal(X509_check_host(x, "other.example.com", 0, 0, NULL),
                     0);
    assert_int_equal(X509_check_ip_asc(x, "127.0.0.1", 0), 1);
    assert_int_equal(X509_check_ip_asc(x, "::1", 0), 1);
    assert_int_equal(X509_check_ip_asc(x, "10.0.0.1", 0), 0);

    assert_true(X509_get_extended_key_usage(x) & XKU_SSL_SERVER);
    assert_false(X509_get_extended_key_usage(x) & XKU_SSL_CLIENT);
    assert_true(X509_get_key_usage(x) & KU_DIGITAL_SIGNATURE);
    assert_int_equal(X509_check_ca(x), 0);

    assert_int_equal(ca_cert_info_file(crt, &info, &err), 0);
    assert_string_equal(info.subject_cn, "gw.example.com");
    assert_string_equal(info.device_id, "");
    assert_true(info.not_after - info.not_before <= 30 * 86400 + 600);

    X509_free(x);
    X509_free(ca);
}


static void
test_server_rejects_bad_names(void **state)
{
    char               dir[512], key[600], crt[600];
    ca_err_t           err;
    const char *const  bad_dns[] = { "a,IP:1.2.3.4" };
    const char *const  bad_ip[] = { "999.1.1.1" };

    new_dir(state, dir, sizeof(dir));
    make_ca(dir, CA_KEY_EC_P256, NULL);
    join(key, sizeof(key), dir, "server.key");
    join(crt, sizeof(crt), dir, "server.crt");

    assert_int_equal(ca_issue_server(dir, NULL, bad_dns, 1, NULL, 0, 0, key,
                                     crt, &err), -1);
    assert_non_null(strstr(err.msg, "DNS"));

    assert_int_equal(ca_issue_server(dir, NULL, NULL, 0, bad_ip, 1, 0, key,
                                     crt, &err), -1);
    assert_non_null(strstr(err.msg, "IP"));

    assert_int_equal(ca_issue_server(dir, NULL, NULL, 0, NULL, 0, 0, key,
                                     crt, &err), -1);

    assert_int_equal(access(key, F_OK), -1);
    assert_int_equal(access(crt, F_OK), -1);
}


static void
test_device_generated_key(void **state)
{
    char            dir[512], key[600], crt[600], path[600], uri[200];
    struct stat     st;
    X509           *ca, *x;
    EVP_PKEY       *pkey;
    BIO            *bio;
    ca_err_t        err;
    ca_cert_info_t  info, info2;

    new_dir(state, dir, sizeof(dir));
    make_ca(dir, CA_KEY_EC_P256, NULL);
    join(key, sizeof(key), dir, "dev.key");
    join(crt, sizeof(crt), dir, "dev.crt");

    if (ca_issue_device(dir, NULL, NULL, NULL, NULL, 0, key, crt, &info,
                        &err) != 0)
    {
        fail_msg("ca_issue_device: %s", err.msg);
    }

    /* A random version 4 UUID. */
    assert_int_equal(strlen(info.device_id), 36);
    assert_int_equal(info.device_id[8], '-');
    assert_int_equal(info.device_id[14], '4');
    assert_non_null(strchr("89ab", info.device_id[19]));
    assert_string_equal(info.subject_cn, info.device_id);

    assert_int_equal(stat(key, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);

    ca = load_cert(join(path, sizeof(path), dir, "ca.crt"));
    x = load_cert(crt);

    snprintf(uri, sizeof(uri), "%s%s", CA_DEVICE_URN, info.device_id);
    assert_true(has_uri(x, uri));

    assert_int_equal(verify(ca, x, NULL, X509_PURPOSE_SSL_CLIENT),
                     X509_V_OK);
    assert_int_not_equal(verify(ca, x, NULL, X509_PURPOSE_SSL_SERVER),
                         X509_V_OK);
    assert_true(X509_get_extended_key_usage(x) & XKU_SSL_CLIENT);
    assert_false(X509_get_extended_key_usage(x) & XKU_SSL_SERVER);
    assert_int_equal(X509_get_key_usage(x), KU_DIGITAL_SIGNATURE);

    /* About 365 days, backdated a little for clock skew. */
    assert_true(info.not_after - info.not_before >= 365 * 86400);
    assert_true(info.not_after - info.not_before <= 365 * 86400 + 600);

    /* The key written matches the certificate. */
    bio = BIO_new_file(key, "r");
    assert_non_null(bio);
    pkey = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    BIO_free(bio);
    assert_non_null(pkey);
    assert_int_equal(X509_check_private_key(x, pkey), 1);
    EVP_PKEY_free(pkey);

    assert_int_equal(ca_cert_info_file(crt, &info2, &err), 0);
    assert_memory_equal(&info, &info2, sizeof(info));

    X509_free(x);
    X509_free(ca);
}


static void
test_device_from_csr(void **state)
{
    char            dir[512], csr[600], crt[600], crt2[600], path[600];
    X509           *ca, *x;
    EVP_PKEY       *key;
    ca_err_t        err;
    ca_cert_info_t  info;
    int             i;

    new_dir(state, dir, sizeof(dir));
    make_ca(dir, CA_KEY_EC_P256, NULL);
    join(csr, sizeof(csr), dir, "dev.csr");
    join(crt, sizeof(crt), dir, "dev.crt");
    join(crt2, sizeof(crt2), dir, "dev2.crt");

    write_csr(csr, &key, 0, 0);

    if (ca_issue_device(dir, NULL, "laptop-7", "Alice's laptop", csr, 10,
                        NULL, crt, &info, &err) != 0)
    {
        fail_msg("ca_issue_device: %s", err.msg);
    }

    assert_string_equal(info.device_id, "laptop-7");
    assert_string_equal(info.subject_cn, "Alice's laptop");

    ca = load_cert(join(path, sizeof(path), dir, "ca.crt"));
    x = load_cert(crt);

    /* The device's own key, and none of the CSR's subject. */
    assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(x), key), 1);
    assert_int_equal(X509_check_private_key(x, key), 1);
    assert_int_equal(X509_NAME_entry_count(X509_get_subject_name(x)), 1);
    i = X509_NAME_get_index_by_NID(X509_get_subject_name(x),
                                   NID_organizationName, -1);
    assert_true(i < 0);

    assert_true(has_uri(x, CA_DEVICE_URN "laptop-7"));
    assert_int_equal(verify(ca, x, NULL, X509_PURPOSE_SSL_CLIENT),
                     X509_V_OK);

    X509_free(x);
    EVP_PKEY_free(key);

    /* A DER CSR works too; without a common name the CN is the id. */
    write_csr(csr, NULL, 1, 0);
    if (ca_issue_device(dir, NULL, "laptop-8", NULL, csr, 0, NULL, crt2,
                        &info, &err) != 0)
    {
        fail_msg("ca_issue_device (DER CSR): %s", err.msg);
    }
    assert_string_equal(info.subject_cn, "laptop-8");

    X509_free(ca);
}


static void
test_device_csr_bad_signature(void **state)
{
    char            dir[512], csr[600], crt[600], path[600];
    ca_err_t        err;
    ca_cert_info_t  info;

    new_dir(state, dir, sizeof(dir));
    make_ca(dir, CA_KEY_EC_P256, NULL);
    join(csr, sizeof(csr), dir, "bad.csr");
    join(crt, sizeof(crt), dir, "bad.crt");

    write_csr(csr, NULL, 1, 1);

    assert_int_equal(ca_issue_device(dir, NULL, "dev-1", NULL, csr, 0, NULL,
                                     crt, &info, &err), -1);
    assert_non_null(strstr(err.msg, "signature"));
    assert_non_null(strstr(err.msg, "bad.csr"));

    /* Nothing issued, nothing recorded. */
    assert_int_equal(access(crt, F_OK), -1);
    assert_int_equal(count_lines(join(path, sizeof(path), dir, "index")),
                     0);

    /* Not a CSR at all. */
    assert_int_equal(ca_issue_device(dir, NULL, "dev-1", NULL,
                                     join(path, sizeof(path), dir, "ca.key"),
                                     0, NULL, crt, &info, &err), -1);
    assert_int_equal(access(crt, F_OK), -1);
}


static void
test_device_id_validation(void **state)
{
    char            dir[512], key[600], crt[600], id[80];
    ca_err_t        err;
    ca_cert_info_t  info;

    new_dir(state, dir, sizeof(dir));
    make_ca(dir, CA_KEY_EC_P256, NULL);
    join(key, sizeof(key), dir, "dev.key");
    join(crt, sizeof(crt), dir, "dev.crt");

    assert_int_equal(ca_issue_device(dir, NULL, "bad id", NULL, NULL, 0, key,
                                     crt, &info, &err), -1);
    assert_non_null(strstr(err.msg, "device id"));

    assert_int_equal(ca_issue_device(dir, NULL, "a/b", NULL, NULL, 0, key,
                                     crt, &info, &err), -1);
    assert_int_equal(ca_issue_device(dir, NULL, "", NULL, NULL, 0, key,
                                     crt, &info, &err), -1);
    assert_int_equal(ca_issue_device(dir, NULL, "x\ny", NULL, NULL, 0, key,
                                     crt, &info, &err), -1);

    memset(id, 'a', 65);
    id[65] = '\0';
    assert_int_equal(ca_issue_device(dir, NULL, id, NULL, NULL, 0, key, crt,
                                     &info, &err), -1);

    assert_int_equal(access(key, F_OK), -1);

    id[64] = '\0';
    if (ca_issue_device(dir, NULL, id, NULL, NULL, 0, key, crt, &info, &err)
        != 0)
    {
        fail_msg("64-character id: %s", err.msg);
    }
    assert_string_equal(info.device_id, id);

    /* A common name with a newline would corrupt the index. */
    assert_int_equal(ca_issue_device(dir, NULL, "dev-2", "a\tb", NULL, 0,
                                     key, crt, &info, &err), -1);
}


static void
test_device_key_exclusive(void **state)
{
    char            dir[512], key[600], crt[600], path[600];
    FILE           *fp;
    ca_err_t        err;
    ca_cert_info_t  info;

    new_dir(state, dir, sizeof(dir));
    make_ca(dir, CA_KEY_EC_P256, NULL);
    join(key, sizeof(key), dir, "dev.key");
    join(crt, sizeof(crt), dir, "dev.crt");

    fp = fopen(key, "w");
    assert_non_null(fp);
    fputs("precious\n", fp);
    fclose(fp);

    assert_int_equal(ca_issue_device(dir, NULL, "dev-1", NULL, NULL, 0, key,
                                     crt, &info, &err), -1);
    assert_non_null(strstr(err.msg, "dev.key"));
    assert_non_null(strstr(err.msg, "exists"));

    assert_int_equal(access(crt, F_OK), -1);
    assert_int_equal(count_lines(join(path, sizeof(path), dir, "index")),
                     0);
}


static void
test_fingerprint(void **state)
{
    char            dir[512], key[600], crt[600], hex[2 * CA_FP_LEN + 1];
    unsigned char  *der, md[EVP_MAX_MD_SIZE];
    unsigned int    mdlen;
    X509           *x;
    ca_err_t        err;
    ca_cert_info_t  info;
    int             len, i;

    new_dir(state, dir, sizeof(dir));
    make_ca(dir, CA_KEY_EC_P256, NULL);
    join(key, sizeof(key), dir, "dev.key");
    join(crt, sizeof(crt), dir, "dev.crt");

    assert_int_equal(ca_issue_device(dir, NULL, "fp-1", NULL, NULL, 0, key,
                                     crt, NULL, &err), 0);
    assert_int_equal(ca_cert_info_file(crt, &info, &err), 0);

    x = load_cert(crt);
    der = NULL;
    len = i2d_X509(x, &der);
    assert_true(len > 0);
    assert_int_equal(EVP_Digest(der, (size_t) len, md, &mdlen, EVP_sha256(),
                                NULL), 1);
    assert_int_equal(mdlen, CA_FP_LEN);
    assert_memory_equal(info.fp, md, CA_FP_LEN);

    for (i = 0; i < CA_FP_LEN; i++) {
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    }
    assert_string_equal(info.fp_hex, hex);
    assert_string_equal(info.device_id, "fp-1");

    OPENSSL_free(der);
    X509_free(x);

    /* A missing file is an error naming it. */
    assert_int_equal(ca_cert_info_file("/nonexistent/x.crt", &info, &err),
                     -1);
    assert_non_null(strstr(err.msg, "/nonexistent/x.crt"));
}


static void
test_info_der(void **state)
{
    char            dir[512], key[600], crt[600];
    unsigned char  *der, *buf;
    X509           *x;
    ca_err_t        err;
    ca_cert_info_t  a, b;
    int             len;

    new_dir(state, dir, sizeof(dir));
    make_ca(dir, CA_KEY_EC_P256, NULL);
    join(key, sizeof(key), dir, "dev.key");
    join(crt, sizeof(crt), dir, "dev.crt");

    assert_int_equal(ca_issue_device(dir, NULL, "der-1", "Der One", NULL, 0,
                                     key, crt, &a, &err), 0);

    x = load_cert(crt);
    der = NULL;
    len = i2d_X509(x, &der);
    assert_true(len > 0);

    assert_int_equal(ca_cert_info_der(der, (size_t) len, &b, &err), 0);
    assert_memory_equal(&a, &b, sizeof(a));

    /* Truncated, trailing garbage, empty: all refused. */
    assert_int_equal(ca_cert_info_der(der, (size_t) len - 1, &b, &err), -1);
    assert_int_equal(ca_cert_info_der(der, 0, &b, &err), -1);

    buf = malloc((size_t) len + 1);
    assert_non_null(buf);
    memcpy(buf, der, (size_t) len);
    buf[len] = 0;
    assert_int_equal(ca_cert_info_der(buf, (size_t) len + 1, &b, &err), -1);
    assert_non_null(strstr(err.msg, "trailing"));

    free(buf);
    OPENSSL_free(der);
    X509_free(x);
}


static void
test_revoke_and_crl(void **state)
{
    char            dir[512], key[600], crt[600], key2[600], crt2[600];
    char            path[600], crlpath[600];
    X509           *ca, *x, *y;
    X509_CRL       *crl;
    X509_REVOKED   *rev;
    ASN1_INTEGER   *num;
    ca_err_t        err;
    ca_cert_info_t  info, info2;
    int             day, sec;

    new_dir(state, dir, sizeof(dir));
    make_ca(dir, CA_KEY_EC_P256, NULL);
    join(key, sizeof(key), dir, "dev.key");
    join(crt, sizeof(crt), dir, "dev.crt");
    join(key2, sizeof(key2), dir, "dev2.key");
    join(crt2, sizeof(crt2), dir, "dev2.crt");
    join(crlpath, sizeof(crlpath), dir, "out.crl");

    assert_int_equal(ca_issue_device(dir, NULL, "lost-1", NULL, NULL, 0, key,
                                     crt, &info, &err), 0);
    assert_int_equal(ca_issue_device(dir, NULL, "kept-1", NULL, NULL, 0,
                                     key2, crt2, &info2, &err), 0);

    if (ca_revoke(dir, info.serial_hex, &err) != 0) {
        fail_msg("ca_revoke: %s", err.msg);
    }

    assert_int_equal(ca_revoke(dir, info.serial_hex, &err), -1);
    assert_non_null(strstr(err.msg, "already revoked"));

    if (ca_publish_crl(dir, NULL, 0, crlpath, &err) != 0) {
        fail_msg("ca_publish_crl: %s", err.msg);
    }

    ca = load_cert(join(path, sizeof(path), dir, "ca.crt"));
    x = load_cert(crt);
    y = load_cert(crt2);
    crl = load_crl(crlpath);

    assert_int_equal(X509_CRL_get_version(crl), X509_CRL_VERSION_2);
    assert_int_equal(X509_CRL_verify(crl, X509_get0_pubkey(ca)), 1);
    assert_int_equal(X509_NAME_cmp(X509_CRL_get_issuer(crl),
                                   X509_get_subject_name(ca)), 0);
    assert_int_equal(sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl)), 1);

    rev = NULL;
    assert_int_equal(X509_CRL_get0_by_cert(crl, &rev, x), 1);
    assert_non_null(rev);
    assert_int_equal(X509_CRL_get0_by_cert(crl, &rev, y), 0);

    /* Next update 7 days after last update. */
    assert_int_equal(ASN1_TIME_diff(&day, &sec,
                                    X509_CRL_get0_lastUpdate(crl),
                                    X509_CRL_get0_nextUpdate(crl)), 1);
    assert_int_equal(day, 7);
    assert_int_equal(sec, 0);

    num = X509_CRL_get_ext_d2i(crl, NID_crl_number, NULL, NULL);
    assert_non_null(num);
    assert_int_equal(ASN1_INTEGER_get(num), 1);
    ASN1_INTEGER_free(num);

    /* What nginx would decide with ssl_crl. */
    assert_int_equal(verify(ca, x, crl, X509_PURPOSE_SSL_CLIENT),
                     X509_V_ERR_CERT_REVOKED);
    assert_int_equal(verify(ca, y, crl, X509_PURPOSE_SSL_CLIENT),
                     X509_V_OK);

    X509_CRL_free(crl);

    /* The copy in the CA directory; the next CRL has the next number. */
    crl = load_crl(join(path, sizeof(path), dir, "crl.pem"));
    X509_CRL_free(crl);

    assert_int_equal(ca_revoke(dir, info2.serial_hex, &err), 0);
    assert_int_equal(ca_publish_crl(dir, NULL, 2, crlpath, &err), 0);
    crl = load_crl(crlpath);
    assert_int_equal(sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl)), 2);
    num = X509_CRL_get_ext_d2i(crl, NID_crl_number, NULL, NULL);
    assert_non_null(num);
    assert_int_equal(ASN1_INTEGER_get(num), 2);
    ASN1_INTEGER_free(num);
    assert_int_equal(verify(ca, y, crl, X509_PURPOSE_SSL_CLIENT),
                     X509_V_ERR_CERT_REVOKED);

    X509_CRL_free(crl);
    X509_free(y);
    X509_free(x);
    X509_free(ca);
}


static void
test_revoke_unknown(void **state)
{
    char      dir[512];
    ca_err_t  err;

    new_dir(state, dir, sizeof(dir));
    make_ca(dir, CA_KEY_EC_P256, NULL);

    assert_int_equal(ca_revoke(dir, "0123456789ABCDEF", &err), -1);
    assert_non_null(strstr(err.msg, "123456789ABCDEF"));

    assert_int_equal(ca_revoke(dir, "not-hex", &err), -1);
    assert_non_null(strstr(err.msg, "serial"));

    assert_int_equal(ca_revoke("/nonexistent-ca", "01", &err), -1);
    assert_non_null(strstr(err.msg, "/nonexistent-ca"));
}


static void
test_rsa_ca(void **state)
{
    char               dir[512], key[600], crt[600], path[600];
    X509              *ca, *x;
    ca_err_t           err;
    ca_cert_info_t     info;
    const char *const  dns[] = { "rsa.example.com" };

    new_dir(state, dir, sizeof(dir));
    make_ca(dir, CA_KEY_RSA_3072, NULL);

    ca = load_cert(join(path, sizeof(path), dir, "ca.crt"));
    assert_true(EVP_PKEY_is_a(X509_get0_pubkey(ca), "RSA"));
    assert_int_equal(EVP_PKEY_get_bits(X509_get0_pubkey(ca)), 3072);
    assert_int_equal(X509_get_signature_nid(ca), NID_sha256WithRSAEncryption);

    join(key, sizeof(key), dir, "server.key");
    join(crt, sizeof(crt), dir, "server.crt");
    assert_int_equal(ca_issue_server(dir, NULL, dns, 1, NULL, 0, 0, key, crt,
                                     &err), 0);
    x = load_cert(crt);
    assert_int_equal(verify(ca, x, NULL, X509_PURPOSE_SSL_SERVER),
                     X509_V_OK);
    assert_true(X509_get_key_usage(x) & KU_KEY_ENCIPHERMENT);
    X509_free(x);

    join(key, sizeof(key), dir, "dev.key");
    join(crt, sizeof(crt), dir, "dev.crt");
    assert_int_equal(ca_issue_device(dir, NULL, NULL, NULL, NULL, 0, key, crt,
                                     &info, &err), 0);
    x = load_cert(crt);
    assert_int_equal(verify(ca, x, NULL, X509_PURPOSE_SSL_CLIENT),
                     X509_V_OK);
    assert_int_equal(X509_get_key_usage(x), KU_DIGITAL_SIGNATURE);

    assert_int_equal(ca_revoke(dir, info.serial_hex, &err), 0);
    join(path, sizeof(path), dir, "out.crl");
    assert_int_equal(ca_publish_crl(dir, NULL, 1, path, &err), 0);

    X509_free(x);
    X509_free(ca);
}


static void
test_other_ca_does_not_verify(void **state)
{
    char            dir_a[512], dir_b[512], key[600], crt[600], path[600];
    X509           *ca_a, *ca_b, *x;
    ca_err_t        err;
    ca_cert_info_t  info;

    new_dir(state, dir_a, sizeof(dir_a));
    new_dir(state, dir_b, sizeof(dir_b));
    make_ca(dir_a, CA_KEY_EC_P256, NULL);
    make_ca(dir_b, CA_KEY_EC_P256, NULL);    /* same default name */

    join(key, sizeof(key), dir_b, "dev.key");
    join(crt, sizeof(crt), dir_b, "dev.crt");
    assert_int_equal(ca_issue_device(dir_b, NULL, "dev-b", NULL, NULL, 0,
                                     key, crt, &info, &err), 0);

    ca_a = load_cert(join(path, sizeof(path), dir_a, "ca.crt"));
    ca_b = load_cert(join(path, sizeof(path), dir_b, "ca.crt"));
    x = load_cert(crt);

    assert_int_equal(verify(ca_b, x, NULL, X509_PURPOSE_SSL_CLIENT),
                     X509_V_OK);
    assert_int_not_equal(verify(ca_a, x, NULL, X509_PURPOSE_SSL_CLIENT),
                         X509_V_OK);

    /* Nor can CA A revoke what B issued. */
    assert_int_equal(ca_revoke(dir_a, info.serial_hex, &err), -1);

    X509_free(x);
    X509_free(ca_b);
    X509_free(ca_a);
}


static void
test_passphrase(void **state)
{
    char            dir[512], key[600], crt[600], path[600], line[64];
    FILE           *fp;
    ca_err_t        err;
    ca_cert_info_t  info;

    new_dir(state, dir, sizeof(dir));
    make_ca(dir, CA_KEY_EC_P256, "correct horse");

    fp = fopen(join(path, sizeof(path), dir, "ca.key"), "r");
    assert_non_null(fp);
    assert_non_null(fgets(line, sizeof(line), fp));
    fclose(fp);
    assert_string_equal(line, "-----BEGIN ENCRYPTED PRIVATE KEY-----\n");

    join(key, sizeof(key), dir, "dev.key");
    join(crt, sizeof(crt), dir, "dev.crt");

    assert_int_equal(ca_issue_device(dir, NULL, "p-1", NULL, NULL, 0, key,
                                     crt, &info, &err), -1);
    assert_non_null(strstr(err.msg, "passphrase"));

    assert_int_equal(ca_issue_device(dir, "wrong", "p-1", NULL, NULL, 0, key,
                                     crt, &info, &err), -1);
    assert_non_null(strstr(err.msg, "ca.key"));

    assert_int_equal(access(key, F_OK), -1);

    if (ca_issue_device(dir, "correct horse", "p-1", NULL, NULL, 0, key, crt,
                        &info, &err) != 0)
    {
        fail_msg("ca_issue_device with passphrase: %s", err.msg);
    }

    join(path, sizeof(path), dir, "out.crl");
    assert_int_equal(ca_publish_crl(dir, NULL, 0, path, &err), -1);
    assert_int_equal(ca_publish_crl(dir, "correct horse", 0, path, &err), 0);
}


static void
test_index_format(void **state)
{
    char            dir[512], key[600], crt[600], path[600], line[1024];
    char           *field[8], *p;
    FILE           *fp;
    ca_err_t        err;
    ca_cert_info_t  info;
    int             n;

    new_dir(state, dir, sizeof(dir));
    make_ca(dir, CA_KEY_EC_P256, NULL);
    join(key, sizeof(key), dir, "dev.key");
    join(crt, sizeof(crt), dir, "dev.crt");

    assert_int_equal(ca_issue_device(dir, NULL, "idx-1", "Index One", NULL,
                                     0, key, crt, &info, &err), 0);
    assert_int_equal(ca_revoke(dir, info.serial_hex, &err), 0);

    fp = fopen(join(path, sizeof(path), dir, "index"), "r");
    assert_non_null(fp);
    assert_non_null(fgets(line, sizeof(line), fp));
    assert_null(fgets(path, sizeof(path), fp));
    fclose(fp);

    line[strcspn(line, "\n")] = '\0';

    n = 0;
    for (p = strtok(line, "\t"); p != NULL && n < 8; p = strtok(NULL, "\t")) {
        field[n++] = p;
    }

    assert_int_equal(n, 7);
    assert_string_equal(field[0], "R");
    assert_string_equal(field[1], info.serial_hex);
    assert_int_equal(strtoll(field[2], NULL, 10), info.not_after);
    assert_true(strtoll(field[3], NULL, 10) > 0);
    assert_string_equal(field[4], info.fp_hex);
    assert_string_equal(field[5], "Index One");
    assert_string_equal(field[6], "idx-1");

    /* Revocation accepts other spellings of the serial. */
    assert_int_equal(ca_issue_device(dir, NULL, "idx-2", NULL, NULL, 0,
                                     join(key, sizeof(key), dir, "d2.key"),
                                     join(crt, sizeof(crt), dir, "d2.crt"),
                                     &info, &err), 0);
    snprintf(line, sizeof(line), "0x000%s", info.serial_hex);
    for (p = line; *p != '\0'; p++) {
        if (*p >= 'A' && *p <= 'F') {
            *p = (char) (*p - 'A' + 'a');
        }
    }
    assert_int_equal(ca_revoke(dir, line, &err), 0);
}


static PKCS12 *
load_p12(const char *path)
{
    BIO     *bio;
    PKCS12  *p12;

    bio = BIO_new_file(path, "rb");
    assert_non_null(bio);
    p12 = d2i_PKCS12_bio(bio, NULL);
    BIO_free(bio);
    assert_non_null(p12);

    return p12;
}


static void
test_device_p12(void **state)
{
    char             dir[512], p12path[600], path[600], uri[200];
    char             pass[CA_P12_PASS_SIZE];
    unsigned char   *alias, *der;
    struct stat      st;
    STACK_OF(X509)  *chain;
    EVP_PKEY        *pkey;
    PKCS12          *p12;
    X509            *ca, *x;
    ca_err_t         err;
    ca_cert_info_t   info, info2;
    int              len;

    new_dir(state, dir, sizeof(dir));
    make_ca(dir, CA_KEY_EC_P256, NULL);
    join(p12path, sizeof(p12path), dir, "dev.p12");

    if (ca_issue_device_p12(dir, NULL, "phone-1", "Bob's phone", 30, p12path,
                            pass, sizeof(pass), &info, &err) != 0)
    {
        fail_msg("ca_issue_device_p12: %s", err.msg);
    }

    assert_string_equal(info.device_id, "phone-1");
    assert_string_equal(info.subject_cn, "Bob's phone");
    assert_true(info.not_after - info.not_before <= 30 * 86400 + 600);

    assert_int_equal(stat(p12path, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0600);

    /* The key is delivered in the file and written nowhere else. */
    assert_int_equal(count_lines(join(path, sizeof(path), dir, "index")),
                     1);

    p12 = load_p12(p12path);

    /* Not without the passphrase, nor with a wrong one. */
    pkey = NULL;
    x = NULL;
    chain = NULL;
    assert_int_equal(PKCS12_parse(p12, NULL, &pkey, &x, &chain), 0);
    assert_int_equal(PKCS12_parse(p12, "", &pkey, &x, &chain), 0);
    assert_int_equal(PKCS12_parse(p12, "wrong-passphrase", &pkey, &x,
                                  &chain), 0);
    assert_int_equal(PKCS12_verify_mac(p12, "wrong-passphrase", -1), 0);
    assert_null(pkey);
    assert_null(x);

    assert_int_equal(PKCS12_verify_mac(p12, pass, -1), 1);
    if (PKCS12_parse(p12, pass, &pkey, &x, &chain) != 1) {
        fail_msg("PKCS12_parse with the passphrase failed");
    }

    assert_non_null(pkey);
    assert_non_null(x);
    assert_int_equal(X509_check_private_key(x, pkey), 1);
    assert_true(EVP_PKEY_is_a(pkey, "EC"));

    /* The certificate is the one described, for the device id. */
    der = NULL;
    len = i2d_X509(x, &der);
    assert_true(len > 0);
    assert_int_equal(ca_cert_info_der(der, (size_t) len, &info2, &err), 0);
    OPENSSL_free(der);
    assert_memory_equal(&info, &info2, sizeof(info));

    snprintf(uri, sizeof(uri), "%s%s", CA_DEVICE_URN, "phone-1");
    assert_true(has_uri(x, uri));
    assert_true(X509_get_extended_key_usage(x) & XKU_SSL_CLIENT);

    alias = X509_alias_get0(x, &len);
    assert_non_null(alias);
    assert_int_equal(len, strlen("phone-1"));
    assert_memory_equal(alias, "phone-1", len);

    /* And the CA certificate travels with it. */
    ca = load_cert(join(path, sizeof(path), dir, "ca.crt"));
    assert_non_null(chain);
    assert_int_equal(sk_X509_num(chain), 1);
    assert_int_equal(X509_cmp(sk_X509_value(chain, 0), ca), 0);
    assert_int_equal(verify(ca, x, NULL, X509_PURPOSE_SSL_CLIENT),
                     X509_V_OK);

    sk_X509_pop_free(chain, X509_free);
    EVP_PKEY_free(pkey);
    X509_free(x);
    X509_free(ca);
    PKCS12_free(p12);
}


static void
test_p12_passphrase(void **state)
{
    char            dir[512], p12path[600];
    char            pass[CA_P12_PASS_SIZE], prev[CA_P12_PASS_SIZE];
    char            small[CA_P12_PASS_SIZE - 1];
    ca_err_t        err;
    ca_cert_info_t  info;
    size_t          i, n;
    int             round;

    new_dir(state, dir, sizeof(dir));
    make_ca(dir, CA_KEY_EC_P256, NULL);
    prev[0] = '\0';

    for (round = 0; round < 8; round++) {
        snprintf(p12path, sizeof(p12path), "%s/d%d.p12", dir, round);

        if (ca_issue_device_p12(dir, NULL, NULL, NULL, 0, p12path, pass,
                                sizeof(pass), &info, &err) != 0)
        {
            fail_msg("ca_issue_device_p12: %s", err.msg);
        }

        /* 25 characters of the alphabet in five groups of five. */
        assert_int_equal(strlen(pass), CA_P12_PASS_SIZE - 1);
        n = 0;
        for (i = 0; pass[i] != '\0'; i++) {
            if (i % (CA_P12_PASS_GROUP + 1) == CA_P12_PASS_GROUP) {
                assert_int_equal(pass[i], '-');
                continue;
            }
            assert_non_null(strchr(CA_P12_PASS_ALPHABET, pass[i]));
            assert_null(strchr("01ilo", pass[i]));
            n++;
        }
        assert_int_equal(n, CA_P12_PASS_CHARS);
        assert_true(n >= 20);

        /* One-time: never the same twice. */
        assert_string_not_equal(pass, prev);
        memcpy(prev, pass, sizeof(pass));

        /* A random UUID when no id is given; the CN is the id. */
        assert_int_equal(strlen(info.device_id), 36);
        assert_string_equal(info.subject_cn, info.device_id);
    }

    /* A buffer too small for the passphrase: nothing is issued. */
    join(p12path, sizeof(p12path), dir, "small.p12");
    assert_int_equal(ca_issue_device_p12(dir, NULL, "s-1", NULL, 0, p12path,
                                         small, sizeof(small), &info, &err),
                     -1);
    assert_non_null(strstr(err.msg, "passphrase"));
    assert_int_equal(access(p12path, F_OK), -1);
    assert_int_equal(count_lines(join(p12path, sizeof(p12path), dir,
                                      "index")), 8);
}


static void
test_p12_refuses_existing(void **state)
{
    char            dir[512], p12path[600], path[600];
    char            pass[CA_P12_PASS_SIZE];
    FILE           *fp;
    ca_err_t        err;
    ca_cert_info_t  info;
    size_t          i;

    new_dir(state, dir, sizeof(dir));
    make_ca(dir, CA_KEY_EC_P256, NULL);
    join(p12path, sizeof(p12path), dir, "dev.p12");

    fp = fopen(p12path, "w");
    assert_non_null(fp);
    fputs("precious\n", fp);
    fclose(fp);

    memset(pass, 'x', sizeof(pass));
    assert_int_equal(ca_issue_device_p12(dir, NULL, "dev-1", NULL, 0,
                                         p12path, pass, sizeof(pass), &info,
                                         &err), -1);
    assert_non_null(strstr(err.msg, "dev.p12"));
    assert_non_null(strstr(err.msg, "exists"));

    /* No passphrase left behind, nothing recorded, the file untouched. */
    for (i = 0; i < sizeof(pass); i++) {
        assert_int_equal(pass[i], 0);
    }
    assert_int_equal(count_lines(join(path, sizeof(path), dir, "index")),
                     0);
    fp = fopen(p12path, "r");
    assert_non_null(fp);
    assert_non_null(fgets(path, sizeof(path), fp));
    fclose(fp);
    assert_string_equal(path, "precious\n");

    /* No CA: no file. */
    assert_int_equal(ca_issue_device_p12("/nonexistent-ca", NULL, "dev-1",
                                         NULL, 0,
                                         join(path, sizeof(path), dir,
                                              "dev3.p12"),
                                         pass, sizeof(pass), &info, &err),
                     -1);
    assert_int_equal(access(path, F_OK), -1);
}


static void
test_renew(void **state)
{
    char            dir[512], csr[600], crt[600], crt2[600], crt3[600];
    char            key3[600], path[600];
    X509           *ca, *x, *y;
    EVP_PKEY       *key, *key2;
    ca_err_t        err;
    ca_cert_info_t  old, info, info3;

    new_dir(state, dir, sizeof(dir));
    make_ca(dir, CA_KEY_EC_P256, NULL);
    join(csr, sizeof(csr), dir, "dev.csr");
    join(crt, sizeof(crt), dir, "dev.crt");
    join(crt2, sizeof(crt2), dir, "dev2.crt");
    join(crt3, sizeof(crt3), dir, "dev3.crt");
    join(key3, sizeof(key3), dir, "dev3.key");

    write_csr(csr, &key, 0, 0);
    assert_int_equal(ca_issue_device(dir, NULL, "laptop-9", "Carol", csr, 20,
                                     NULL, crt, &old, &err), 0);

    /* The device made a new key for its renewal. */
    write_csr(csr, &key2, 0, 0);
    if (ca_renew(dir, NULL, crt, csr, 90, NULL, crt2, &info, &err) != 0) {
        fail_msg("ca_renew: %s", err.msg);
    }

    /* Same device, new certificate. */
    assert_string_equal(info.device_id, "laptop-9");
    assert_string_equal(info.subject_cn, "Carol");
    assert_string_not_equal(info.serial_hex, old.serial_hex);
    assert_string_not_equal(info.fp_hex, old.fp_hex);
    assert_true(info.not_after > old.not_after);
    assert_true(info.not_after - info.not_before >= 90 * 86400);
    assert_true(info.not_after - info.not_before <= 90 * 86400 + 600);

    ca = load_cert(join(path, sizeof(path), dir, "ca.crt"));
    x = load_cert(crt);
    y = load_cert(crt2);
    assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(y), key2), 1);
    assert_true(has_uri(y, CA_DEVICE_URN "laptop-9"));
    assert_int_equal(verify(ca, y, NULL, X509_PURPOSE_SSL_CLIENT),
                     X509_V_OK);

    /* The old one stays valid until it expires or is revoked. */
    assert_int_equal(verify(ca, x, NULL, X509_PURPOSE_SSL_CLIENT),
                     X509_V_OK);
    assert_int_equal(count_lines(join(path, sizeof(path), dir, "index")),
                     2);

    /* Renewing the renewed one, with a generated key, works as well. */
    if (ca_renew(dir, NULL, crt2, NULL, 0, key3, crt3, &info3, &err) != 0) {
        fail_msg("ca_renew --key: %s", err.msg);
    }
    assert_string_equal(info3.device_id, "laptop-9");
    assert_true(info3.not_after - info3.not_before >= 365 * 86400);
    assert_int_equal(access(key3, F_OK), 0);

    /* Exactly one of CSR and key. */
    assert_int_equal(ca_renew(dir, NULL, crt, csr, 0, key3, crt3, &info3,
                              &err), -1);
    assert_int_equal(ca_renew(dir, NULL, crt, NULL, 0, NULL, crt3, &info3,
                              &err), -1);

    X509_free(y);
    X509_free(x);
    X509_free(ca);
    EVP_PKEY_free(key2);
    EVP_PKEY_free(key);
}


static void
test_renew_p12(void **state)
{
    char             dir[512], key[600], crt[600], crt2[600], p12path[600];
    char             pass[CA_P12_PASS_SIZE];
    STACK_OF(X509)  *chain;
    EVP_PKEY        *pkey;
    PKCS12          *p12;
    X509            *x, *y;
    ca_err_t         err;
    ca_cert_info_t   old, info;

    new_dir(state, dir, sizeof(dir));
    make_ca(dir, CA_KEY_EC_P256, NULL);
    join(key, sizeof(key), dir, "dev.key");
    join(crt, sizeof(crt), dir, "dev.crt");
    join(crt2, sizeof(crt2), dir, "dev2.crt");
    join(p12path, sizeof(p12path), dir, "dev2.p12");

    assert_int_equal(ca_issue_device(dir, NULL, "tab-3", NULL, NULL, 0, key,
                                     crt, &old, &err), 0);

    if (ca_renew_p12(dir, NULL, crt, 0, p12path, pass, sizeof(pass), crt2,
                     &info, &err) != 0)
    {
        fail_msg("ca_renew_p12: %s", err.msg);
    }
    assert_string_equal(info.device_id, "tab-3");
    assert_string_not_equal(info.serial_hex, old.serial_hex);

    p12 = load_p12(p12path);
    pkey = NULL;
    x = NULL;
    chain = NULL;
    assert_int_equal(PKCS12_parse(p12, pass, &pkey, &x, &chain), 1);
    assert_int_equal(X509_check_private_key(x, pkey), 1);

    /* The certificate file is the one in the PKCS#12 file. */
    y = load_cert(crt2);
    assert_int_equal(X509_cmp(x, y), 0);

    X509_free(y);
    sk_X509_pop_free(chain, X509_free);
    EVP_PKEY_free(pkey);
    X509_free(x);
    PKCS12_free(p12);
}


static void
test_renew_refuses(void **state)
{
    char               dir[512], other[512], key[600], crt[600], okey[600];
    char               ocrt[600], nkey[600], ncrt[600], path[600];
    char               pass[CA_P12_PASS_SIZE];
    ca_err_t           err;
    ca_cert_info_t     info;
    const char *const  dns[] = { "gw.example.com" };

    new_dir(state, dir, sizeof(dir));
    new_dir(state, other, sizeof(other));
    make_ca(dir, CA_KEY_EC_P256, NULL);
    make_ca(other, CA_KEY_EC_P256, NULL);    /* same default name */
    join(key, sizeof(key), dir, "dev.key");
    join(crt, sizeof(crt), dir, "dev.crt");
    join(okey, sizeof(okey), other, "dev.key");
    join(ocrt, sizeof(ocrt), other, "dev.crt");
    join(nkey, sizeof(nkey), dir, "new.key");
    join(ncrt, sizeof(ncrt), dir, "new.crt");

    /* A certificate of another CA, even with the same CA name. */
    assert_int_equal(ca_issue_device(other, NULL, "stranger", NULL, NULL, 0,
                                     okey, ocrt, &info, &err), 0);
    assert_int_equal(ca_renew(dir, NULL, ocrt, NULL, 0, nkey, ncrt, &info,
                              &err), -1);
    assert_non_null(strstr(err.msg, "not issued by"));
    assert_int_equal(ca_renew_p12(dir, NULL, ocrt, 0,
                                  join(path, sizeof(path), dir, "n.p12"),
                                  pass, sizeof(pass), NULL, &info, &err), -1);
    assert_int_equal(access(path, F_OK), -1);

    /* A server certificate names no device. */
    assert_int_equal(ca_issue_server(dir, NULL, dns, 1, NULL, 0, 0, key, crt,
                                     &err), 0);
    assert_int_equal(ca_renew(dir, NULL, crt, NULL, 0, nkey, ncrt, &info,
                              &err), -1);
    assert_non_null(strstr(err.msg, "not a device certificate"));

    /* A revoked certificate. */
    join(key, sizeof(key), dir, "dev2.key");
    join(crt, sizeof(crt), dir, "dev2.crt");
    assert_int_equal(ca_issue_device(dir, NULL, "lost-2", NULL, NULL, 0, key,
                                     crt, &info, &err), 0);
    assert_int_equal(ca_revoke(dir, info.serial_hex, &err), 0);
    assert_int_equal(ca_renew(dir, NULL, crt, NULL, 0, nkey, ncrt, &info,
                              &err), -1);
    assert_non_null(strstr(err.msg, "revoked"));

    /* A certificate this CA signed but whose index lost it. */
    join(path, sizeof(path), dir, "index");
    assert_int_equal(truncate(path, 0), 0);
    assert_int_equal(ca_issue_device(dir, NULL, "gone-1", NULL, NULL, 0,
                                     join(key, sizeof(key), dir, "d3.key"),
                                     join(crt, sizeof(crt), dir, "d3.crt"),
                                     &info, &err), 0);
    assert_int_equal(truncate(path, 0), 0);
    assert_int_equal(ca_renew(dir, NULL, crt, NULL, 0, nkey, ncrt, &info,
                              &err), -1);
    assert_non_null(strstr(err.msg, "not in"));

    /* A file that is no certificate. */
    assert_int_equal(ca_renew(dir, NULL, key, NULL, 0, nkey, ncrt, &info,
                              &err), -1);

    /* Nothing issued by any of the refusals. */
    assert_int_equal(access(nkey, F_OK), -1);
    assert_int_equal(access(ncrt, F_OK), -1);
    assert_int_equal(count_lines(path), 0);
}


static int
list_collect(const ca_entry_t *e, void *arg)
{
    test_list_t  *l;

    l = arg;
    assert_true(l->n < 8);
    l->e[l->n++] = *e;

    return l->stop_after != 0 && l->n == l->stop_after;
}


static void
test_list(void **state)
{
    char             dir[512], key[600], crt[600];
    ca_err_t         err;
    ca_cert_info_t   a, b, c;
    test_list_t      l;

    new_dir(state, dir, sizeof(dir));
    make_ca(dir, CA_KEY_EC_P256, NULL);

    memset(&l, 0, sizeof(l));
    assert_int_equal(ca_list(dir, list_collect, &l, &err), 0);
    assert_int_equal(l.n, 0);

    assert_int_equal(ca_issue_device(dir, NULL, "soon-1", "Soon", NULL, 10,
                                     join(key, sizeof(key), dir, "a.key"),
                                     join(crt, sizeof(crt), dir, "a.crt"),
                                     &a, &err), 0);
    assert_int_equal(ca_issue_device(dir, NULL, "later-1", NULL, NULL, 400,
                                     join(key, sizeof(key), dir, "b.key"),
                                     join(crt, sizeof(crt), dir, "b.crt"),
                                     &b, &err), 0);
    assert_int_equal(ca_issue_device(dir, NULL, "lost-1", NULL, NULL, 5,
                                     join(key, sizeof(key), dir, "c.key"),
                                     join(crt, sizeof(crt), dir, "c.crt"),
                                     &c, &err), 0);
    assert_int_equal(ca_revoke(dir, c.serial_hex, &err), 0);

    /* In the order issued, with what the CLI prints. */
    assert_int_equal(ca_list(dir, list_collect, &l, &err), 0);
    assert_int_equal(l.n, 3);
    assert_int_equal(l.e[0].status, 'V');
    assert_string_equal(l.e[0].serial_hex, a.serial_hex);
    assert_string_equal(l.e[0].device_id, "soon-1");
    assert_string_equal(l.e[0].subject_cn, "Soon");
    assert_string_equal(l.e[0].fp_hex, a.fp_hex);
    assert_int_equal(l.e[0].not_after, a.not_after);
    assert_int_equal(l.e[0].revoked_at, 0);
    assert_string_equal(l.e[1].device_id, "later-1");
    assert_int_equal(l.e[1].not_after, b.not_after);
    assert_int_equal(l.e[2].status, 'R');
    assert_true(l.e[2].revoked_at > 0);

    /* The callback ends the walk. */
    memset(&l, 0, sizeof(l));
    l.stop_after = 1;
    assert_int_equal(ca_list(dir, list_collect, &l, &err), 0);
    assert_int_equal(l.n, 1);

    assert_int_equal(ca_list("/nonexistent-ca", list_collect, &l, &err), -1);
    assert_non_null(strstr(err.msg, "/nonexistent-ca"));
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_init_creates_files),
        cmocka_unit_test(test_init_refuses_second),
        cmocka_unit_test(test_server_cert),
        cmocka_unit_test(test_server_rejects_bad_names),
        cmocka_unit_test(test_device_generated_key),
        cmocka_unit_test(test_device_from_csr),
        cmocka_unit_test(test_device_csr_bad_signature),
        cmocka_unit_test(test_device_id_validation),
        cmocka_unit_test(test_device_key_exclusive),
        cmocka_unit_test(test_fingerprint),
        cmocka_unit_test(test_info_der),
        cmocka_unit_test(test_revoke_and_crl),
        cmocka_unit_test(test_revoke_unknown),
        cmocka_unit_test(test_rsa_ca),
        cmocka_unit_test(test_other_ca_does_not_verify),
        cmocka_unit_test(test_passphrase),
        cmocka_unit_test(test_index_format),
        cmocka_unit_test(test_device_p12),
        cmocka_unit_test(test_p12_passphrase),
        cmocka_unit_test(test_p12_refuses_existing),
        cmocka_unit_test(test_renew),
        cmocka_unit_test(test_renew_p12),
        cmocka_unit_test(test_renew_refuses),
        cmocka_unit_test(test_list),
    };

    return cmocka_run_group_tests(tests, setup_group, teardown_group);
}
