/*
 * Unit tests for the identity library (trustd/id_*.c): passwords, TOTP
 * against RFC 6238's vectors, sealing, key files, session tokens and
 * their attacks, the verified-token cache, the upstream assertion and its
 * JWKS.  Key files live in a temporary directory per test.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "tests/unit/tmpdir.h"

#include <jansson.h>
#include <jwt.h>
#include <liboath/oath.h>
#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <qrencode.h>

#include "trustd/identity.h"


#define TEST_SID    "0123456789abcdef0123456789abcdef"

typedef struct {
    char        dir[256];
    char        hs_dir[300];
    char        es_dir[300];
    char        other_dir[300];
    id_keys_t  *hs;
    id_keys_t  *es;
    int64_t     now;
} test_env_t;

typedef struct {
    int64_t      t;
    const char  *code[3];       /* SHA-1, SHA-256, SHA-512 */
} test_vector_t;


static int test_setup(void **state);
static int test_teardown(void **state);
static void test_b64url(const void *in, size_t len, char *out, size_t size);
static void test_make_jws(const char *header, const char *payload,
    const char *sig, char *out, size_t size);
static void test_hs256(const char *header, const char *payload,
    const unsigned char *key, size_t keylen, char *out, size_t size);
static void test_payload(char *out, size_t size, int64_t iat, int64_t nbf,
    int64_t exp, const char *sid, const char *sub);
static void test_kid(const char *token, char *kid, size_t size);
static void test_claims(id_claims_t *c, int64_t now, int cnf);
static void test_read_file(const char *path, unsigned char *buf,
    size_t size, size_t *len);
static char *test_pubkey_pem(const char *keyfile, size_t *len);
static void test_totp_rfc(id_totp_t *t, id_totp_algo_t algo);
static void test_expect_invalid(const id_keys_t *keys, const char *tok,
    int64_t now, const char *why);

static void test_totp_vectors(void **state);
static void test_totp_window(void **state);
static void test_totp_replay(void **state);
static void test_totp_bad_code(void **state);
static void test_totp_new_uri(void **state);
static void test_totp_qr(void **state);
static void test_password_roundtrip(void **state);
static void test_password_tampered(void **state);
static void test_seal_roundtrip(void **state);
static void test_seal_tamper(void **state);
static void test_keys_files(void **state);
static void test_keys_too_open(void **state);
static void test_keys_reload_same_kid(void **state);
static void test_keys_rotate_grace(void **state);
static void test_secret_rotate(void **state);
static void test_keys_alg_switch(void **state);
static void test_token_roundtrip(void **state);
static void test_token_roundtrip_es256(void **state);
static void test_token_issue_refuses(void **state);
static void test_token_alg_none(void **state);
static void test_token_hs256_with_public_key(void **state);
static void test_token_es256_when_hs256(void **state);
static void test_token_times(void **state);
static void test_token_tampered(void **state);
static void test_token_stripped_signature(void **state);
static void test_token_kid(void **state);
static void test_token_other_deployment(void **state);
static void test_token_oversized(void **state);
static void test_token_malformed(void **state);
static void test_token_bad_claims(void **state);
static void test_cache_put_get(void **state);
static void test_cache_check(void **state);
static void test_cache_key_generation(void **state);
static void test_cache_grace_bound(void **state);
static void test_cache_eviction(void **state);
static void test_assertion_jwks(void **state);
static void test_new_sid(void **state);
static void test_assertion_es256(const char *keyfile, const char *kid,
    const char *payload, char *out, size_t size);
static void test_assertion_verify(void **state);
static void test_assertion_verify_claims(void **state);
static void test_totp_qr_svg(void **state);
static void test_totp_secret_text(void **state);


/* RFC 6238 appendix B, 8 digits, T0 = 0, X = 30. */
static const test_vector_t  test_vectors[] = {
    { 59LL,          { "94287082", "46119246", "90693936" } },
    { 1111111109LL,  { "07081804", "68084774", "25091201" } },
    { 1111111111LL,  { "14050471", "67062674", "99943326" } },
    { 1234567890LL,  { "89005924", "91819424", "93441116" } },
    { 2000000000LL,  { "69279037", "90698825", "38618901" } },
    { 20000000000LL, { "65353130", "77737706", "47863826" } },
};



static int
test_setup(void **state)
{
    test_env_t  *env;
    id_err_t     err;

    env = calloc(1, sizeof(*env));
    if (env == NULL) {
        return -1;
    }

    if (test_tmpdir_make(env->dir, sizeof(env->dir), "ztid") != 0) {
        free(env);
        return -1;
    }

    /* subdirectories: id_keys_load() must create them */
    snprintf(env->hs_dir, sizeof(env->hs_dir), "%s/hs", env->dir);
    snprintf(env->es_dir, sizeof(env->es_dir), "%s/es", env->dir);
    snprintf(env->other_dir, sizeof(env->other_dir), "%s/other", env->dir);

    env->now = (int64_t) time(NULL);
    *state = env;

    if (id_keys_load(env->hs_dir, ID_ALG_HS256, 3600, 1, &env->hs, &err)
        != 0
        || id_keys_load(env->es_dir, ID_ALG_ES256, 3600, 1, &env->es, &err)
           != 0)
    {
        fprintf(stderr, "setup: %s\n", err.msg);
        return -1;
    }

    return 0;
}


static int
test_teardown(void **state)
{
    test_env_t  *env = *state;

    id_keys_free(env->hs);
    id_keys_free(env->es);
    test_tmpdir_remove(env->dir);
    free(env);

    return 0;
}


/* An independent base64url: OpenSSL's base64, translated and unpadded. */
static void
test_b64url(const void *in, size_t len, char *out, size_t size)
{
    int     n, i;
    char   *buf;

    buf = malloc(4 * (len / 3 + 2) + 1);
    assert_non_null(buf);

    n = EVP_EncodeBlock((unsigned char *) buf, in, (int) len);
    assert_true(n >= 0);

    while (n > 0 && buf[n - 1] == '=') {
        n--;
    }

    for (i = 0; i < n; i++) {
        if (buf[i] == '+') {
            buf[i] = '-';
        } else if (buf[i] == '/') {
            buf[i] = '_';
        }
    }

    assert_true((size_t) n < size);
    memcpy(out, buf, (size_t) n);
    out[n] = '\0';
    free(buf);
}


static void
test_make_jws(const char *header, const char *payload, const char *sig,
    char *out, size_t size)
{
    char  h[4096], p[4096];

    test_b64url(header, strlen(header), h, sizeof(h));
    test_b64url(payload, strlen(payload), p, sizeof(p));
    assert_true((size_t) snprintf(out, size, "%s.%s.%s", h, p, sig) < size);
}


/* Hand-signed HS256 JWS over exactly these header and payload bytes. */
static void
test_hs256(const char *header, const char *payload, const unsigned char *key,
    size_t keylen, char *out, size_t size)
{
    char           input[8192], sig[128], h[4096], p[4096];
    size_t         maclen;
    unsigned char  mac[64];

    test_b64url(header, strlen(header), h, sizeof(h));
    test_b64url(payload, strlen(payload), p, sizeof(p));
    snprintf(input, sizeof(input), "%s.%s", h, p);

    assert_non_null(EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, key,
                              keylen, (unsigned char *) input,
                              strlen(input), mac, sizeof(mac), &maclen));
    test_b64url(mac, maclen, sig, sizeof(sig));

    assert_true((size_t) snprintf(out, size, "%s.%s", input, sig) < size);
}


static void
test_payload(char *out, size_t size, int64_t iat, int64_t nbf, int64_t exp,
    const char *sid, const char *sub)
{
    snprintf(out, size,
             "{\"sid\":\"%s\",\"sub\":\"%s\",\"iat\":%lld,\"nbf\":%lld,"
             "\"exp\":%lld}",
             sid, sub, (long long) iat, (long long) nbf, (long long) exp);
}


/* The kid in a token's header, read with libjwt (no key: no checks). */
static void
test_kid(const char *token, char *kid, size_t size)
{
    jwt_t       *jwt;
    const char  *k;

    assert_int_equal(jwt_decode(&jwt, token, NULL, 0), 0);
    k = jwt_get_header(jwt, "kid");
    assert_non_null(k);
    assert_true(strlen(k) < size);
    strcpy(kid, k);
    jwt_free(jwt);
}


static void
test_claims(id_claims_t *c, int64_t now, int cnf)
{
    unsigned  i;

    memset(c, 0, sizeof(*c));
    strcpy(c->sid, TEST_SID);
    strcpy(c->user, "alice");
    c->iat = now;
    c->nbf = now;
    c->exp = now + 3600;

    if (cnf) {
        for (i = 0; i < ID_FP_LEN; i++) {
            c->cnf_fp[i] = (uint8_t) (i * 7 + 1);
        }

        c->has_cnf = 1;
    }
}


static void
test_read_file(const char *path, unsigned char *buf, size_t size,
    size_t *len)
{
    FILE  *f;

    f = fopen(path, "rb");
    assert_non_null(f);
    *len = fread(buf, 1, size, f);
    fclose(f);
}


/* The public key PEM of a private key file (malloc()ed, NUL-terminated). */
static char *
test_pubkey_pem(const char *keyfile, size_t *len)
{
    BIO       *in, *out;
    char      *p, *pem;
    long       n;
    EVP_PKEY  *pk;
    size_t     flen;
    unsigned char  buf[4096];

    test_read_file(keyfile, buf, sizeof(buf), &flen);

    in = BIO_new_mem_buf(buf, (int) flen);
    assert_non_null(in);
    pk = PEM_read_bio_PrivateKey(in, NULL, NULL, NULL);
    assert_non_null(pk);
    out = BIO_new(BIO_s_mem());
    assert_non_null(out);
    assert_int_equal(PEM_write_bio_PUBKEY(out, pk), 1);

    n = BIO_get_mem_data(out, &p);
    assert_true(n > 0);
    pem = malloc((size_t) n + 1);
    assert_non_null(pem);
    memcpy(pem, p, (size_t) n);
    pem[n] = '\0';
    *len = (size_t) n;

    BIO_free(out);
    BIO_free(in);
    EVP_PKEY_free(pk);

    return pem;
}


static void
test_expect_invalid(const id_keys_t *keys, const char *tok, int64_t now,
    const char *why)
{
    id_err_t     err;
    id_claims_t  c;

    memset(&err, 0, sizeof(err));
    assert_int_equal(id_token_verify(keys, tok, strlen(tok), now, &c, &err),
                     ID_TOKEN_INVALID);

    if (why != NULL && strstr(err.msg, why) == NULL) {
        fail_msg("expected \"%s\" in \"%s\"", why, err.msg);
    }
}


/* ---- TOTP ------------------------------------------------------------ */


static void
test_totp_rfc(id_totp_t *t, id_totp_algo_t algo)
{
    static const char  seed[] =
        "1234567890123456789012345678901234567890123456789012345678901234";

    memset(t, 0, sizeof(*t));
    t->secret_len = (algo == ID_TOTP_SHA1) ? 20
                    : (algo == ID_TOTP_SHA256) ? 32 : 64;
    memcpy(t->secret, seed, t->secret_len);
    t->algo = algo;
    t->digits = 8;
    t->period = 30;
}


static void
test_totp_vectors(void **state)
{
    size_t     i, a;
    char       code[16];
    uint64_t   counter;
    id_err_t   err;
    id_totp_t  t;

    (void) state;

    for (a = 0; a < 3; a++) {
        test_totp_rfc(&t, (id_totp_algo_t) a);

        for (i = 0; i < sizeof(test_vectors) / sizeof(test_vectors[0]); i++)
        {
            assert_int_equal(id_totp_code(&t, test_vectors[i].t, code,
                                          sizeof(code), &err),
                             0);
            assert_string_equal(code, test_vectors[i].code[a]);

            counter = 0;
            assert_int_equal(id_totp_verify(&t, test_vectors[i].code[a],
                                            test_vectors[i].t, 0, 0,
                                            &counter, &err),
                             ID_TOTP_OK);
            assert_int_equal(counter, (uint64_t) test_vectors[i].t / 30);
        }
    }
}


static void
test_totp_window(void **state)
{
    int64_t    now;
    char       prev[16], next[16], prev2[16], next2[16];
    uint64_t   counter;
    id_err_t   err;
    id_totp_t  t;

    (void) state;

    test_totp_rfc(&t, ID_TOTP_SHA1);
    t.digits = 6;
    now = 1111111111;

    assert_int_equal(id_totp_code(&t, now - 30, prev, sizeof(prev), &err), 0);
    assert_int_equal(id_totp_code(&t, now + 30, next, sizeof(next), &err), 0);
    assert_int_equal(id_totp_code(&t, now - 60, prev2, sizeof(prev2), &err),
                     0);
    assert_int_equal(id_totp_code(&t, now + 60, next2, sizeof(next2), &err),
                     0);

    assert_int_equal(id_totp_verify(&t, prev, now, 1, 0, &counter, &err),
                     ID_TOTP_OK);
    assert_int_equal(counter, (uint64_t) now / 30 - 1);

    assert_int_equal(id_totp_verify(&t, next, now, 1, 0, &counter, &err),
                     ID_TOTP_OK);
    assert_int_equal(counter, (uint64_t) now / 30 + 1);

    assert_int_equal(id_totp_verify(&t, prev2, now, 1, 0, &counter, &err),
                     ID_TOTP_BAD);
    assert_int_equal(id_totp_verify(&t, next2, now, 1, 0, &counter, &err),
                     ID_TOTP_BAD);

    /* window 0: only the current step */
    assert_int_equal(id_totp_verify(&t, prev, now, 0, 0, &counter, &err),
                     ID_TOTP_BAD);

    /* window 2 reaches two steps */
    assert_int_equal(id_totp_verify(&t, prev2, now, 2, 0, &counter, &err),
                     ID_TOTP_OK);
    assert_int_equal(counter, (uint64_t) now / 30 - 2);

    /* absurd windows are an error, not a wide acceptance */
    assert_int_equal(id_totp_verify(&t, prev, now, 1000, 0, &counter, &err),
                     -1);
}


static void
test_totp_replay(void **state)
{
    int64_t    now;
    char       code[16], prev[16];
    uint64_t   counter, last;
    id_err_t   err;
    id_totp_t  t;

    (void) state;

    test_totp_rfc(&t, ID_TOTP_SHA256);
    t.digits = 6;
    now = 1234567890;

    assert_int_equal(id_totp_code(&t, now, code, sizeof(code), &err), 0);
    assert_int_equal(id_totp_code(&t, now - 30, prev, sizeof(prev), &err), 0);

    assert_int_equal(id_totp_verify(&t, code, now, 1, 0, &last, &err),
                     ID_TOTP_OK);
    assert_int_equal(last, (uint64_t) now / 30);

    /* the same code again, a few seconds later */
    counter = 12345;
    assert_int_equal(id_totp_verify(&t, code, now + 5, 1, last, &counter,
                                    &err),
                     ID_TOTP_REPLAY);
    assert_non_null(strstr(err.msg, "already used"));
    assert_int_equal(counter, 12345);

    /* an older step's code, still inside the window */
    assert_int_equal(id_totp_verify(&t, prev, now, 1, last, &counter, &err),
                     ID_TOTP_REPLAY);

    /* the next step's code is fresh */
    assert_int_equal(id_totp_code(&t, now + 30, code, sizeof(code), &err), 0);
    assert_int_equal(id_totp_verify(&t, code, now + 30, 1, last, &counter,
                                    &err),
                     ID_TOTP_OK);
    assert_int_equal(counter, last + 1);
}


static void
test_totp_bad_code(void **state)
{
    size_t       i;
    char         code[16], longcode[4096];
    uint64_t     counter;
    id_err_t     err;
    id_totp_t    t;
    const char  *bad[] = {
        "", "12345", "1234567", "12345a", " 12345", "12345 ", "-12345",
        "+12345", "12 345", "１２３４５６", "123456\n", "0x1234",
    };

    (void) state;

    test_totp_rfc(&t, ID_TOTP_SHA1);
    t.digits = 6;

    assert_int_equal(id_totp_verify(&t, NULL, 59, 1, 0, &counter, &err),
                     ID_TOTP_BAD);

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(id_totp_verify(&t, bad[i], 59, 1, 0, &counter,
                                        &err),
                         ID_TOTP_BAD);
    }

    memset(longcode, '1', sizeof(longcode) - 1);
    longcode[sizeof(longcode) - 1] = '\0';
    assert_int_equal(id_totp_verify(&t, longcode, 59, 1, 0, &counter, &err),
                     ID_TOTP_BAD);

    /* the right 8-digit code for a 6-digit configuration */
    t.digits = 8;
    assert_int_equal(id_totp_code(&t, 59, code, sizeof(code), &err), 0);
    t.digits = 6;
    assert_int_equal(id_totp_verify(&t, code, 59, 1, 0, &counter, &err),
                     ID_TOTP_BAD);

    /* a wrong code of the right shape */
    assert_int_equal(id_totp_code(&t, 59, code, sizeof(code), &err), 0);
    code[0] = (char) (code[0] == '9' ? '0' : code[0] + 1);
    assert_int_equal(id_totp_verify(&t, code, 59, 1, 0, &counter, &err),
                     ID_TOTP_BAD);

    /* parameters */
    assert_int_equal(id_totp_verify(&t, "123456", 59, 1, 0, NULL, &err), -1);
    t.secret_len = 0;
    assert_int_equal(id_totp_verify(&t, "123456", 59, 1, 0, &counter, &err),
                     -1);
    assert_int_equal(id_totp_code(&t, 59, code, 4, &err), -1);
}


static void
test_totp_new_uri(void **state)
{
    int          a;
    char         uri[512], *p, *end, *dec;
    size_t       declen;
    id_err_t     err;
    id_totp_t    t, u;
    const size_t want[] = { 20, 32, 64 };

    (void) state;

    for (a = 0; a < 3; a++) {
        assert_int_equal(id_totp_new(&t, (id_totp_algo_t) a, 6, &err), 0);
        assert_int_equal(t.secret_len, want[a]);
        assert_int_equal(t.period, 30);
        assert_int_equal(t.digits, 6);
    }

    assert_int_equal(id_totp_new(&u, ID_TOTP_SHA1, 8, &err), 0);
    assert_memory_not_equal(t.secret, u.secret, 20);
    assert_int_equal(id_totp_new(&u, ID_TOTP_SHA1, 7, &err), -1);
    assert_int_equal(id_totp_new(&u, (id_totp_algo_t) 9, 6, &err), -1);

    assert_int_equal(id_totp_new(&t, ID_TOTP_SHA256, 8, &err), 0);
    assert_int_equal(id_totp_uri(&t, "Acme Corp", "alice@example.com", uri,
                                 sizeof(uri), &err),
                     0);

    assert_true(strncmp(uri, "otpauth://totp/Acme%20Corp:alice%40example.com"
                        "?secret=", 54)
                == 0);
    assert_non_null(strstr(uri, "&issuer=Acme%20Corp"));
    assert_non_null(strstr(uri, "&algorithm=SHA256"));
    assert_non_null(strstr(uri, "&digits=8"));
    assert_non_null(strstr(uri, "&period=30"));

    /* the secret round-trips through base32, unpadded */
    p = strstr(uri, "secret=") + 7;
    end = strchr(p, '&');
    assert_non_null(end);
    assert_null(memchr(p, '=', (size_t) (end - p)));
    *end = '\0';
    assert_int_equal(oath_base32_decode(p, strlen(p), &dec, &declen),
                     OATH_OK);
    assert_int_equal(declen, t.secret_len);
    assert_memory_equal(dec, t.secret, declen);
    free(dec);

    /* too small a buffer fails cleanly */
    assert_int_equal(id_totp_uri(&t, "Acme", "alice", uri, 20, &err), -1);
    assert_int_equal(id_totp_uri(&t, "", "alice", uri, sizeof(uri), &err),
                     -1);
}


/*
 * Read the half-block rendering back into modules and compare it with
 * libqrencode's own matrix for the same input: light modules are drawn,
 * with a two-module light quiet zone.
 */
static void
test_totp_qr(void **state)
{
    int          x, y, top, bot, light_top, light_bot, size;
    char        *out;
    QRcode      *qr;
    id_err_t     err;
    const char  *p, *uri;

    (void) state;

    uri = "otpauth://totp/Acme:alice?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
          "&issuer=Acme&algorithm=SHA1&digits=6&period=30";

    out = malloc(65536);
    assert_non_null(out);
    assert_int_equal(id_totp_qr(uri, out, 65536, &err), 0);

    qr = QRcode_encodeString(uri, 0, QR_ECLEVEL_M, QR_MODE_8, 1);
    assert_non_null(qr);
    size = qr->width + 4;

    p = out;

    for (y = -2; y < size - 2; y += 2) {
        for (x = -2; x < size - 2; x++) {
            if (*p == ' ') {
                top = 0;
                bot = 0;
                p++;
            } else if (strncmp(p, "\xe2\x96\x88", 3) == 0) {
                top = 1;
                bot = 1;
                p += 3;
            } else if (strncmp(p, "\xe2\x96\x80", 3) == 0) {
                top = 1;
                bot = 0;
                p += 3;
            } else if (strncmp(p, "\xe2\x96\x84", 3) == 0) {
                top = 0;
                bot = 1;
                p += 3;
            } else {
                fail_msg("unexpected byte 0x%02x at row %d col %d",
                         (unsigned char) *p, y, x);
                return;
            }

            light_top = !(x >= 0 && y >= 0 && x < qr->width && y < qr->width
                          && (qr->data[y * qr->width + x] & 1));
            light_bot = (y + 1 >= size - 2) ? 0
                        : !(x >= 0 && y + 1 >= 0 && x < qr->width
                            && y + 1 < qr->width
                            && (qr->data[(y + 1) * qr->width + x] & 1));

            assert_int_equal(top, light_top);
            assert_int_equal(bot, light_bot);
        }

        assert_int_equal(*p, '\n');
        p++;
    }

    assert_int_equal(*p, '\0');

    /* too small a buffer fails cleanly, saying what it needs */
    assert_int_equal(id_totp_qr(uri, out, 100, &err), -1);
    assert_non_null(strstr(err.msg, "QR code needs"));
    assert_int_equal(id_totp_qr(uri, out, strlen(out), &err), -1);
    assert_int_equal(id_totp_qr(uri, out, strlen(out) + 1, &err), 0);
    assert_int_equal(id_totp_qr("", out, 65536, &err), -1);

    QRcode_free(qr);
    free(out);
}


/* ---- passwords ------------------------------------------------------- */


static void
test_password_roundtrip(void **state)
{
    char      h1[ID_PWHASH_MAX], h2[ID_PWHASH_MAX], small[40];
    id_err_t  err;

    (void) state;

    assert_int_equal(id_password_hash("correct horse", h1, sizeof(h1), &err),
                     0);
    assert_true(strncmp(h1, "$scrypt$ln=15,r=8,p=1$", 22) == 0);
    /* 16-byte salt: 22 chars; 32-byte hash: 43 chars; unpadded */
    assert_int_equal(strlen(h1), 22 + 22 + 1 + 43);
    assert_null(strchr(h1 + 22, '='));

    assert_int_equal(id_password_verify("correct horse", h1, &err), 1);
    assert_int_equal(id_password_verify("correct horsE", h1, &err), 0);
    assert_int_equal(id_password_verify("", h1, &err), 0);

    assert_int_equal(id_password_hash("correct horse", h2, sizeof(h2), &err),
                     0);
    assert_string_not_equal(h1, h2);
    assert_int_equal(id_password_verify("correct horse", h2, &err), 1);

    assert_int_equal(id_password_hash("x", small, sizeof(small), &err), -1);
    assert_int_equal(id_password_hash("", h1, sizeof(h1), &err), -1);
    assert_int_equal(id_password_hash(NULL, h1, sizeof(h1), &err), -1);
}


static void
test_password_tampered(void **state)
{
    size_t       i;
    char         h[ID_PWHASH_MAX], t[ID_PWHASH_MAX + 64], *salt, *hash;
    id_err_t     err;
    const char  *bad[] = {
        "",
        "$scrypt$",
        "$2b$12$abcdefghijklmnopqrstuv",
        "$scrypt$ln=9,r=8,p=1$",
        "$scrypt$ln=21,r=8,p=1$",
        "$scrypt$ln=15,r=0,p=1$",
        "$scrypt$ln=15,r=33,p=1$",
        "$scrypt$ln=15,r=8,p=17$",
        "$scrypt$ln=015,r=8,p=1$",
        "$scrypt$ln=15,p=1,r=8$",
        "$scrypt$ln=15,r=8,p=1,x=1$",
    };

    (void) state;

    assert_int_equal(id_password_hash("hunter2", h, sizeof(h), &err), 0);

    salt = strchr(h + 8, '$') + 1;
    hash = strchr(salt, '$') + 1;

    /* a changed hash byte: well-formed, no match */
    strcpy(t, h);
    t[hash - h + 5] = (char) (t[hash - h + 5] == 'A' ? 'B' : 'A');
    assert_int_equal(id_password_verify("hunter2", t, &err), 0);

    /* a changed salt byte: well-formed, no match */
    strcpy(t, h);
    t[salt - h + 3] = (char) (t[salt - h + 3] == 'A' ? 'B' : 'A');
    assert_int_equal(id_password_verify("hunter2", t, &err), 0);

    /* cheaper parameters than those the hash was made with */
    snprintf(t, sizeof(t), "$scrypt$ln=14,r=8,p=1$%s", salt);
    assert_int_equal(id_password_verify("hunter2", t, &err), 0);

    /* malformed: -1, no KDF run */
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(t, sizeof(t), "%s%s", bad[i],
                 bad[i][0] != '\0' && bad[i][strlen(bad[i]) - 1] == '$'
                 ? salt : "");
        assert_int_equal(id_password_verify("hunter2", t, &err), -1);
        assert_non_null(strstr(err.msg, "malformed"));
    }

    /* a non-base64 character, padding, truncation, a short salt */
    strcpy(t, h);
    t[hash - h + 2] = '!';
    assert_int_equal(id_password_verify("hunter2", t, &err), -1);

    snprintf(t, sizeof(t), "%s=", h);
    assert_int_equal(id_password_verify("hunter2", t, &err), -1);

    strcpy(t, h);
    t[hash - h + 20] = '\0';
    assert_int_equal(id_password_verify("hunter2", t, &err), -1);

    snprintf(t, sizeof(t), "$scrypt$ln=15,r=8,p=1$AAAA%s", strchr(salt, '$'));
    assert_int_equal(id_password_verify("hunter2", t, &err), -1);

    strcpy(t, h);
    *strchr(salt, '$') = '\0';      /* h now ends after the salt */
    assert_int_equal(id_password_verify("hunter2", h, &err), -1);

    assert_int_equal(id_password_verify("hunter2", NULL, &err), -1);
}


/* ---- sealing --------------------------------------------------------- */


static void
test_seal_roundtrip(void **state)
{
    test_env_t  *env = *state;
    size_t       len, plen;
    uint8_t      sealed[ID_SEALED_MAX], plain[ID_SECRET_MAX];
    uint8_t      secret[ID_SECRET_MAX];
    id_err_t     err;

    memset(secret, 0x5a, sizeof(secret));

    assert_int_equal(id_seal(env->hs, secret, 20, "alice", sealed,
                             sizeof(sealed), &len, &err),
                     0);
    assert_int_equal(len, 1 + 12 + 20 + 16);
    assert_int_equal(sealed[0], 1);

    assert_int_equal(id_unseal(env->hs, sealed, len, "alice", plain,
                               sizeof(plain), &plen, &err),
                     0);
    assert_int_equal(plen, 20);
    assert_memory_equal(plain, secret, 20);

    /* the largest secret fits ID_SEALED_MAX */
    assert_int_equal(id_seal(env->hs, secret, ID_SECRET_MAX, "alice", sealed,
                             sizeof(sealed), &len, &err),
                     0);
    assert_int_equal(id_unseal(env->hs, sealed, len, "alice", plain,
                               sizeof(plain), &plen, &err),
                     0);
    assert_int_equal(plen, ID_SECRET_MAX);
    assert_memory_equal(plain, secret, ID_SECRET_MAX);

    /* too small an output */
    assert_int_equal(id_seal(env->hs, secret, 20, "alice", sealed, 40, &len,
                             &err),
                     -1);
    assert_int_equal(id_seal(env->hs, secret, 20, "alice", sealed,
                             sizeof(sealed), &len, &err),
                     0);
    assert_int_equal(id_unseal(env->hs, sealed, len, "alice", plain, 19,
                               &plen, &err),
                     -1);
}


static void
test_seal_tamper(void **state)
{
    test_env_t  *env = *state;
    size_t       len, plen, i;
    uint8_t      sealed[ID_SEALED_MAX], t[ID_SEALED_MAX];
    uint8_t      plain[ID_SECRET_MAX], secret[20];
    id_err_t     err;
    const size_t at[] = { 1, 12, 13, 20, 32, 33, 48 };  /* nonce ct tag */

    memset(secret, 0xa5, sizeof(secret));

    assert_int_equal(id_seal(env->hs, secret, sizeof(secret), "alice",
                             sealed, sizeof(sealed), &len, &err),
                     0);
    assert_int_equal(len, 49);

    for (i = 0; i < sizeof(at) / sizeof(at[0]); i++) {
        memcpy(t, sealed, len);
        t[at[i]] ^= 0x01;
        assert_int_equal(id_unseal(env->hs, t, len, "alice", plain,
                                   sizeof(plain), &plen, &err),
                         -1);
        assert_string_equal(err.msg, "sealed value does not authenticate");
    }

    /* version byte */
    memcpy(t, sealed, len);
    t[0] = 2;
    assert_int_equal(id_unseal(env->hs, t, len, "alice", plain,
                               sizeof(plain), &plen, &err),
                     -1);

    /* truncated, extended */
    assert_int_equal(id_unseal(env->hs, sealed, len - 1, "alice", plain,
                               sizeof(plain), &plen, &err),
                     -1);
    assert_int_equal(id_unseal(env->hs, sealed, 28, "alice", plain,
                               sizeof(plain), &plen, &err),
                     -1);
    memcpy(t, sealed, len);
    t[len] = 0;
    assert_int_equal(id_unseal(env->hs, t, len + 1, "alice", plain,
                               sizeof(plain), &plen, &err),
                     -1);

    /* moved to another record */
    assert_int_equal(id_unseal(env->hs, sealed, len, "bob", plain,
                               sizeof(plain), &plen, &err),
                     -1);
    assert_string_equal(err.msg, "sealed value does not authenticate");
    assert_int_equal(id_unseal(env->hs, sealed, len, "alic", plain,
                               sizeof(plain), &plen, &err),
                     -1);

    /* another deployment's secret.key */
    assert_int_equal(id_unseal(env->es, sealed, len, "alice", plain,
                               sizeof(plain), &plen, &err),
                     -1);
    assert_string_equal(err.msg, "sealed value does not authenticate");

    /* and untouched, it still opens */
    assert_int_equal(id_unseal(env->hs, sealed, len, "alice", plain,
                               sizeof(plain), &plen, &err),
                     0);
    assert_memory_equal(plain, secret, sizeof(secret));
}


/* ---- keys ------------------------------------------------------------ */


static void
test_keys_files(void **state)
{
    test_env_t     *env = *state;
    size_t          i, len, n;
    char            path[400];
    DIR            *d;
    struct dirent  *de;
    struct stat     st;
    unsigned char   buf[4096];
    const char     *names[] = {
        "secret.key", "session.key", "assertion.key"
    };

    assert_int_equal(stat(env->hs_dir, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0700);

    for (i = 0; i < 3; i++) {
        snprintf(path, sizeof(path), "%s/%s", env->hs_dir, names[i]);
        assert_int_equal(stat(path, &st), 0);
        assert_true(S_ISREG(st.st_mode));
        assert_int_equal(st.st_mode & 07777, 0600);

        snprintf(path, sizeof(path), "%s/%s", env->es_dir, names[i]);
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0600);
    }

    snprintf(path, sizeof(path), "%s/session.key", env->hs_dir);
    test_read_file(path, buf, sizeof(buf), &len);
    assert_int_equal(len, 32);

    snprintf(path, sizeof(path), "%s/secret.key", env->es_dir);
    test_read_file(path, buf, sizeof(buf), &len);
    assert_int_equal(len, 32);

    snprintf(path, sizeof(path), "%s/session.key", env->es_dir);
    test_read_file(path, buf, sizeof(buf), &len);
    assert_true(strncmp((char *) buf, "-----BEGIN PRIVATE KEY-----", 27)
                == 0);

    snprintf(path, sizeof(path), "%s/assertion.key", env->hs_dir);
    test_read_file(path, buf, sizeof(buf), &len);
    assert_true(strncmp((char *) buf, "-----BEGIN PRIVATE KEY-----", 27)
                == 0);

    /* nothing else: no previous key yet, no temporary files left */
    for (i = 0; i < 2; i++) {
        d = opendir(i == 0 ? env->hs_dir : env->es_dir);
        assert_non_null(d);
        n = 0;

        while ((de = readdir(d)) != NULL) {
            if (strcmp(de->d_name, ".") != 0
                && strcmp(de->d_name, "..") != 0)
            {
                n++;
            }
        }

        closedir(d);
        assert_int_equal(n, 3);
    }
}


static void
test_keys_too_open(void **state)
{
    test_env_t  *env = *state;
    char         path[400];
    id_err_t     err;
    id_keys_t   *k;

    k = NULL;

    snprintf(path, sizeof(path), "%s/session.key", env->hs_dir);
    assert_int_equal(chmod(path, 0644), 0);

    assert_int_equal(id_keys_load(env->hs_dir, ID_ALG_HS256, 0, 1, &k, &err),
                     -1);
    assert_null(k);
    assert_non_null(strstr(err.msg, "mode 0644 is too open; chmod 600"));

    assert_int_equal(chmod(path, 0640), 0);
    assert_int_equal(id_keys_load(env->hs_dir, ID_ALG_HS256, 0, 0, &k, &err),
                     -1);
    assert_non_null(strstr(err.msg, "mode 0640 is too open"));

    assert_int_equal(chmod(path, 0600), 0);

    /* a previous key readable by others is refused too */
    snprintf(path, sizeof(path), "%s/session.key.prev", env->hs_dir);
    assert_int_equal(id_keys_rotate(env->hs_dir, ID_ALG_HS256, &err), 0);
    assert_int_equal(chmod(path, 0604), 0);
    assert_int_equal(id_keys_load(env->hs_dir, ID_ALG_HS256, 0, 0, &k, &err),
                     -1);
    assert_non_null(strstr(err.msg, "mode 0604 is too open"));
    assert_int_equal(chmod(path, 0600), 0);

    /* a directory others may write to */
    assert_int_equal(chmod(env->hs_dir, 0777), 0);
    assert_int_equal(id_keys_load(env->hs_dir, ID_ALG_HS256, 0, 0, &k, &err),
                     -1);
    assert_non_null(strstr(err.msg, "too open; chmod 700"));
    assert_int_equal(chmod(env->hs_dir, 0700), 0);

    /* a symlink is not followed */
    snprintf(path, sizeof(path), "%s/secret.key", env->hs_dir);
    assert_int_equal(unlink(path), 0);
    assert_int_equal(symlink("/dev/null", path), 0);
    assert_int_equal(id_keys_load(env->hs_dir, ID_ALG_HS256, 0, 1, &k, &err),
                     -1);

    /* missing without create */
    assert_int_equal(id_keys_load(env->other_dir, ID_ALG_HS256, 0, 0, &k,
                                  &err),
                     -1);
    assert_null(k);

    assert_int_equal(id_keys_load(env->hs_dir, (id_alg_t) 7, 0, 1, &k, &err),
                     -1);

    /* and when all is in order, it loads */
    assert_int_equal(unlink(path), 0);
    assert_int_equal(id_keys_load(env->hs_dir, ID_ALG_HS256, 0, 1, &k, &err),
                     0);
    id_keys_free(k);
}


static void
test_keys_reload_same_kid(void **state)
{
    test_env_t   *env = *state;
    char          tok[ID_TOKEN_MAX + 1], tok2[ID_TOKEN_MAX + 1];
    char          kid1[64], kid2[64];
    id_err_t      err;
    id_keys_t    *k;
    id_claims_t   c, got;

    test_claims(&c, env->now, 0);

    assert_int_equal(id_token_issue(env->es, &c, tok, sizeof(tok), &err), 0);
    assert_int_equal(id_keys_load(env->es_dir, ID_ALG_ES256, 0, 0, &k, &err),
                     0);
    assert_int_equal(id_token_verify(k, tok, strlen(tok), env->now, &got,
                                     &err),
                     ID_TOKEN_OK);
    assert_int_equal(id_token_issue(k, &c, tok2, sizeof(tok2), &err), 0);

    test_kid(tok, kid1, sizeof(kid1));
    test_kid(tok2, kid2, sizeof(kid2));
    assert_string_equal(kid1, kid2);
    assert_int_equal(strlen(kid1), 16);

    id_keys_free(k);
}


static void
test_keys_rotate_grace(void **state)
{
    test_env_t       *env = *state;
    int               a;
    char              old[ID_TOKEN_MAX + 1], cur[ID_TOKEN_MAX + 1];
    char              path[400], kid_old[64], kid_new[64];
    const char       *dir;
    id_err_t          err;
    id_keys_t        *k, *k0;
    id_claims_t       c, got;
    struct stat       st;
    struct timespec   ts[2];

    test_claims(&c, env->now, 0);
    /* the token outlives the grace checks below, however long the set-up
     * took (the grace is counted from the rotation, not from env->now) */
    c.exp = env->now + 86400;

    for (a = 0; a < 2; a++) {
        dir = (a == 0) ? env->hs_dir : env->es_dir;
        k0 = (a == 0) ? env->hs : env->es;

        assert_int_equal(id_token_issue(k0, &c, old, sizeof(old), &err), 0);
        assert_int_equal(id_keys_rotate(dir, (id_alg_t) a, &err), 0);

        snprintf(path, sizeof(path), "%s/session.key.prev", dir);
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0600);
        assert_int_equal(st.st_nlink, 1);
        snprintf(path, sizeof(path), "%s/session.key", dir);
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0600);

        /* within the grace period: the old token still verifies */
        assert_int_equal(id_keys_load(dir, (id_alg_t) a, 3600, 0, &k, &err),
                         0);
        assert_int_equal(id_token_verify(k, old, strlen(old), env->now, &got,
                                         &err),
                         ID_TOKEN_OK);
        assert_int_equal(id_token_issue(k, &c, cur, sizeof(cur), &err), 0);
        test_kid(old, kid_old, sizeof(kid_old));
        test_kid(cur, kid_new, sizeof(kid_new));
        assert_string_not_equal(kid_old, kid_new);

        /* the grace is counted from session.key's mtime */
        assert_int_equal(id_token_verify(k, old, strlen(old),
                                         (int64_t) st.st_mtim.tv_sec + 3599,
                                         &got, &err),
                         ID_TOKEN_OK);
        assert_int_equal(id_token_verify(k, old, strlen(old),
                                         (int64_t) st.st_mtim.tv_sec + 3600,
                                         &got, &err),
                         ID_TOKEN_INVALID);
        assert_non_null(strstr(err.msg, "grace"));
        id_keys_free(k);

        /* rotated two hours ago: grace over at any now */
        ts[0].tv_sec = (time_t) env->now - 7200;
        ts[0].tv_nsec = 0;
        ts[1] = ts[0];
        assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);

        assert_int_equal(id_keys_load(dir, (id_alg_t) a, 3600, 0, &k, &err),
                         0);
        test_expect_invalid(k, old, env->now, "grace");
        assert_int_equal(id_token_verify(k, cur, strlen(cur), env->now, &got,
                                         &err),
                         ID_TOKEN_OK);
        id_keys_free(k);

        /* no grace at all */
        assert_int_equal(id_keys_load(dir, (id_alg_t) a, 0, 0, &k, &err), 0);
        test_expect_invalid(k, old, env->now, "grace");
        id_keys_free(k);

        /* rotated again: the first key is gone for good */
        assert_int_equal(id_keys_rotate(dir, (id_alg_t) a, &err), 0);
        assert_int_equal(id_keys_load(dir, (id_alg_t) a, 3600, 0, &k, &err),
                         0);
        test_expect_invalid(k, old, env->now, "kid");
        assert_int_equal(id_token_verify(k, cur, strlen(cur), env->now, &got,
                                         &err),
                         ID_TOKEN_OK);
        id_keys_free(k);
    }
}


static void
test_keys_alg_switch(void **state)
{
    test_env_t   *env = *state;
    char          tok[ID_TOKEN_MAX + 1];
    id_err_t      err;
    id_keys_t    *k;
    id_claims_t   c, got;

    k = NULL;

    /* the key on disk is HS256: pinning ES256 must not reuse it */
    assert_int_equal(id_keys_load(env->hs_dir, ID_ALG_ES256, 3600, 1, &k,
                                  &err),
                     -1);
    assert_non_null(strstr(err.msg, "session.key"));

    assert_int_equal(id_keys_load(env->es_dir, ID_ALG_HS256, 3600, 1, &k,
                                  &err),
                     -1);

    /* switching is a rotation; the HS256 key then goes unused */
    assert_int_equal(id_keys_rotate(env->hs_dir, ID_ALG_ES256, &err), 0);
    assert_int_equal(id_keys_load(env->hs_dir, ID_ALG_ES256, 3600, 0, &k,
                                  &err),
                     0);

    test_claims(&c, env->now, 1);
    assert_int_equal(id_token_issue(k, &c, tok, sizeof(tok), &err), 0);
    assert_int_equal(id_token_verify(k, tok, strlen(tok), env->now, &got,
                                     &err),
                     ID_TOKEN_OK);
    id_keys_free(k);
}


/* ---- tokens ---------------------------------------------------------- */


static void
test_token_roundtrip(void **state)
{
    test_env_t   *env = *state;
    int           cnf;
    char          tok[ID_TOKEN_MAX + 1];
    char         *s;
    jwt_t        *jwt;
    id_err_t      err;
    id_claims_t   c, got;

    for (cnf = 0; cnf < 2; cnf++) {
        test_claims(&c, env->now, cnf);

        assert_int_equal(id_token_issue(env->hs, &c, tok, sizeof(tok), &err),
                         0);
        assert_int_equal(id_token_verify(env->hs, tok, strlen(tok), env->now,
                                         &got, &err),
                         ID_TOKEN_OK);
        assert_memory_equal(&got, &c, sizeof(c));

        /* header as documented */
        assert_int_equal(jwt_decode(&jwt, tok, NULL, 0), 0);
        assert_string_equal(jwt_get_header(jwt, "alg"), "HS256");
        assert_string_equal(jwt_get_header(jwt, "typ"), "JWT");
        assert_non_null(jwt_get_header(jwt, "kid"));
        assert_string_equal(jwt_get_grant(jwt, "sid"), TEST_SID);
        assert_string_equal(jwt_get_grant(jwt, "sub"), "alice");

        if (cnf) {
            s = jwt_get_grants_json(jwt, "cnf");
            assert_non_null(s);
            assert_non_null(strstr(s, "x5t#S256"));
            free(s);
        }

        jwt_free(jwt);

        /* an HS256 signature: 32 bytes, 43 base64url characters */
        assert_int_equal(strlen(tok) - (size_t) (strrchr(tok, '.') - tok),
                         1 + 43);
    }

    /* the last second before exp; and at exp */
    assert_int_equal(id_token_verify(env->hs, tok, strlen(tok), c.exp - 1,
                                     &got, &err),
                     ID_TOKEN_OK);
    test_expect_invalid(env->hs, tok, c.exp, "expired");

    /* too small a buffer */
    assert_int_equal(id_token_issue(env->hs, &c, tok, 50, &err), -1);

    /* NULLs */
    assert_int_equal(id_token_verify(env->hs, NULL, 0, env->now, &got, &err),
                     -1);
    assert_int_equal(id_token_verify(NULL, tok, strlen(tok), env->now, &got,
                                     &err),
                     -1);
}


static void
test_token_roundtrip_es256(void **state)
{
    test_env_t   *env = *state;
    int           cnf;
    char          tok[ID_TOKEN_MAX + 1], path[400], *pem;
    size_t        pemlen;
    jwt_t        *jwt;
    id_err_t      err;
    id_claims_t   c, got;

    snprintf(path, sizeof(path), "%s/session.key", env->es_dir);
    pem = test_pubkey_pem(path, &pemlen);

    for (cnf = 0; cnf < 2; cnf++) {
        test_claims(&c, env->now, cnf);

        assert_int_equal(id_token_issue(env->es, &c, tok, sizeof(tok), &err),
                         0);
        assert_int_equal(id_token_verify(env->es, tok, strlen(tok), env->now,
                                         &got, &err),
                         ID_TOKEN_OK);
        assert_memory_equal(&got, &c, sizeof(c));

        /* anyone with the public key can verify it */
        assert_int_equal(jwt_decode(&jwt, tok, (unsigned char *) pem,
                                    (int) pemlen),
                         0);
        assert_int_equal(jwt_get_alg(jwt), JWT_ALG_ES256);
        jwt_free(jwt);
    }

    /* an HS256-pinned deployment refuses it */
    test_expect_invalid(env->hs, tok, env->now, "pinned HS256");

    free(pem);
}


static void
test_token_issue_refuses(void **state)
{
    test_env_t   *env = *state;
    char          tok[ID_TOKEN_MAX + 1];
    id_err_t      err;
    id_claims_t   c;

    test_claims(&c, env->now, 0);
    c.sid[0] = 'A';
    assert_int_equal(id_token_issue(env->hs, &c, tok, sizeof(tok), &err), -1);

    test_claims(&c, env->now, 0);
    c.user[0] = '\0';
    assert_int_equal(id_token_issue(env->hs, &c, tok, sizeof(tok), &err), -1);

    test_claims(&c, env->now, 0);
    c.user[0] = '\n';
    assert_int_equal(id_token_issue(env->hs, &c, tok, sizeof(tok), &err), -1);

    test_claims(&c, env->now, 0);
    memset(c.user, 'u', sizeof(c.user));
    assert_int_equal(id_token_issue(env->hs, &c, tok, sizeof(tok), &err), -1);

    test_claims(&c, env->now, 0);
    c.exp = c.iat;
    assert_int_equal(id_token_issue(env->hs, &c, tok, sizeof(tok), &err), -1);
}


static void
test_token_alg_none(void **state)
{
    test_env_t  *env = *state;
    int          i;
    char         tok[ID_TOKEN_MAX + 1], hdr[256], pl[512], good[512];
    char         kid[64];
    id_err_t     err;
    id_claims_t  c;
    id_keys_t   *keys;
    const char  *algs[] = { "none", "None", "NONE", "", "HS512", "RS256" };

    test_claims(&c, env->now, 0);

    for (i = 0; i < 2; i++) {
        keys = (i == 0) ? env->hs : env->es;

        assert_int_equal(id_token_issue(keys, &c, good, sizeof(good), &err),
                         0);
        test_kid(good, kid, sizeof(kid));
        test_payload(pl, sizeof(pl), env->now, env->now, env->now + 600,
                     TEST_SID, "mallory");

        /* the classic: no signature at all */
        snprintf(hdr, sizeof(hdr),
                 "{\"alg\":\"none\",\"typ\":\"JWT\",\"kid\":\"%s\"}", kid);
        test_make_jws(hdr, pl, "", tok, sizeof(tok));
        test_expect_invalid(keys, tok, env->now, NULL);

        /* and with some signature bytes, of the right length even */
        test_make_jws(hdr, pl, (i == 0)
                      ? "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
                      : "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
                        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                      tok, sizeof(tok));
        test_expect_invalid(keys, tok, env->now, "pinned");
    }

    for (i = 0; i < (int) (sizeof(algs) / sizeof(algs[0])); i++) {
        snprintf(hdr, sizeof(hdr),
                 "{\"alg\":\"%s\",\"typ\":\"JWT\",\"kid\":\"%s\"}", algs[i],
                 kid);
        test_make_jws(hdr, pl, "AAAA", tok, sizeof(tok));
        test_expect_invalid(env->hs, tok, env->now, "pinned");
    }

    /* alg missing, or not a string */
    test_make_jws("{\"typ\":\"JWT\"}", pl, "AAAA", tok, sizeof(tok));
    test_expect_invalid(env->hs, tok, env->now, "pinned");
    test_make_jws("{\"alg\":[\"HS256\"]}", pl, "AAAA", tok, sizeof(tok));
    test_expect_invalid(env->hs, tok, env->now, "pinned");
    test_make_jws("{\"alg\":null}", pl, "AAAA", tok, sizeof(tok));
    test_expect_invalid(env->hs, tok, env->now, "pinned");
}


static void
test_token_hs256_with_public_key(void **state)
{
    test_env_t  *env = *state;
    char         tok[ID_TOKEN_MAX + 1], good[ID_TOKEN_MAX + 1];
    char         path[400], hdr[256], pl[512], kid[64], *pem, *lj;
    size_t       pemlen;
    jwt_t       *jwt;
    id_err_t     err;
    id_claims_t  c;

    test_claims(&c, env->now, 0);
    assert_int_equal(id_token_issue(env->es, &c, good, sizeof(good), &err),
                     0);
    test_kid(good, kid, sizeof(kid));

    snprintf(path, sizeof(path), "%s/session.key", env->es_dir);
    pem = test_pubkey_pem(path, &pemlen);

    /* by hand: HMAC-SHA256 keyed with the public key PEM */
    snprintf(hdr, sizeof(hdr),
             "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"%s\"}", kid);
    test_payload(pl, sizeof(pl), env->now, env->now, env->now + 600,
                 TEST_SID, "admin");
    test_hs256(hdr, pl, (unsigned char *) pem, pemlen, tok, sizeof(tok));

    /* libjwt, handed the verify key and the token, would accept it ... */
    assert_int_equal(jwt_decode(&jwt, tok, (unsigned char *) pem,
                                (int) pemlen),
                     0);
    jwt_free(jwt);

    /* ... which is why the pin comes first */
    test_expect_invalid(env->es, tok, env->now, "pinned ES256");

    /* the same forgery built by libjwt */
    assert_int_equal(jwt_new(&jwt), 0);
    assert_int_equal(jwt_add_header(jwt, "kid", kid), 0);
    assert_int_equal(jwt_add_grants_json(jwt, pl), 0);
    assert_int_equal(jwt_set_alg(jwt, JWT_ALG_HS256, (unsigned char *) pem,
                                 (int) pemlen),
                     0);
    lj = jwt_encode_str(jwt);
    assert_non_null(lj);
    test_expect_invalid(env->es, lj, env->now, "pinned ES256");
    free(lj);
    jwt_free(jwt);

    free(pem);
}


static void
test_token_es256_when_hs256(void **state)
{
    test_env_t  *env = *state;
    char         good[ID_TOKEN_MAX + 1], path[400], kid[64], *lj;
    char         pl[512];
    size_t       len;
    jwt_t       *jwt;
    id_err_t     err;
    id_claims_t  c;
    unsigned char  pem[4096];

    test_claims(&c, env->now, 0);
    assert_int_equal(id_token_issue(env->hs, &c, good, sizeof(good), &err),
                     0);
    test_kid(good, kid, sizeof(kid));

    /* a valid ES256 token (with our kid) from a key the attacker holds */
    snprintf(path, sizeof(path), "%s/assertion.key", env->es_dir);
    test_read_file(path, pem, sizeof(pem), &len);
    test_payload(pl, sizeof(pl), env->now, env->now, env->now + 600,
                 TEST_SID, "admin");

    assert_int_equal(jwt_new(&jwt), 0);
    assert_int_equal(jwt_add_header(jwt, "kid", kid), 0);
    assert_int_equal(jwt_add_grants_json(jwt, pl), 0);
    assert_int_equal(jwt_set_alg(jwt, JWT_ALG_ES256, pem, (int) len), 0);
    lj = jwt_encode_str(jwt);
    assert_non_null(lj);

    test_expect_invalid(env->hs, lj, env->now, "pinned HS256");

    free(lj);
    jwt_free(jwt);
}


static void
test_token_times(void **state)
{
    test_env_t     *env = *state;
    char            tok[ID_TOKEN_MAX + 1], good[ID_TOKEN_MAX + 1];
    char            hdr[256], pl[512], kid[64], path[400];
    size_t          klen;
    int64_t         now;
    id_err_t        err;
    id_claims_t     c, got;
    unsigned char   key[64];

    now = env->now;

    test_claims(&c, now, 0);
    assert_int_equal(id_token_issue(env->hs, &c, good, sizeof(good), &err),
                     0);
    test_kid(good, kid, sizeof(kid));

    snprintf(path, sizeof(path), "%s/session.key", env->hs_dir);
    test_read_file(path, key, sizeof(key), &klen);
    assert_int_equal(klen, 32);

    snprintf(hdr, sizeof(hdr),
             "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"%s\"}", kid);

    /* the hand-built path is sound: a good token verifies */
    test_payload(pl, sizeof(pl), now, now, now + 60, TEST_SID, "bob");
    test_hs256(hdr, pl, key, klen, tok, sizeof(tok));
    assert_int_equal(id_token_verify(env->hs, tok, strlen(tok), now, &got,
                                     &err),
                     ID_TOKEN_OK);
    assert_string_equal(got.user, "bob");
    assert_int_equal(got.has_cnf, 0);

    /* expired */
    test_payload(pl, sizeof(pl), now - 100, now - 100, now - 1, TEST_SID,
                 "bob");
    test_hs256(hdr, pl, key, klen, tok, sizeof(tok));
    test_expect_invalid(env->hs, tok, now, "expired");

    /* not before: 60 s of leeway, no more */
    test_payload(pl, sizeof(pl), now, now + 60, now + 600, TEST_SID, "bob");
    test_hs256(hdr, pl, key, klen, tok, sizeof(tok));
    assert_int_equal(id_token_verify(env->hs, tok, strlen(tok), now, &got,
                                     &err),
                     ID_TOKEN_OK);

    test_payload(pl, sizeof(pl), now, now + 61, now + 600, TEST_SID, "bob");
    test_hs256(hdr, pl, key, klen, tok, sizeof(tok));
    test_expect_invalid(env->hs, tok, now, "nbf");

    /* issued in the future */
    test_payload(pl, sizeof(pl), now + 61, now, now + 600, TEST_SID, "bob");
    test_hs256(hdr, pl, key, klen, tok, sizeof(tok));
    test_expect_invalid(env->hs, tok, now, "future");

    /* exp missing, or not an integer */
    snprintf(pl, sizeof(pl),
             "{\"sid\":\"%s\",\"sub\":\"bob\",\"iat\":%lld,\"nbf\":%lld}",
             TEST_SID, (long long) now, (long long) now);
    test_hs256(hdr, pl, key, klen, tok, sizeof(tok));
    test_expect_invalid(env->hs, tok, now, "exp");

    snprintf(pl, sizeof(pl),
             "{\"sid\":\"%s\",\"sub\":\"bob\",\"iat\":%lld,\"nbf\":%lld,"
             "\"exp\":\"%lld\"}",
             TEST_SID, (long long) now, (long long) now,
             (long long) now + 600);
    test_hs256(hdr, pl, key, klen, tok, sizeof(tok));
    test_expect_invalid(env->hs, tok, now, "exp");

    snprintf(pl, sizeof(pl),
             "{\"sid\":\"%s\",\"sub\":\"bob\",\"iat\":%lld,\"nbf\":%lld,"
             "\"exp\":%lld.5}",
             TEST_SID, (long long) now, (long long) now,
             (long long) now + 600);
    test_hs256(hdr, pl, key, klen, tok, sizeof(tok));
    test_expect_invalid(env->hs, tok, now, "exp");
}


static void
test_token_tampered(void **state)
{
    test_env_t   *env = *state;
    size_t        i, dot1, dot2, len;
    char          tok[ID_TOKEN_MAX + 1], t[ID_TOKEN_MAX + 1];
    id_err_t      err;
    id_claims_t   c;
    id_keys_t    *keys;
    int           k;

    for (k = 0; k < 2; k++) {
        keys = (k == 0) ? env->hs : env->es;
        test_claims(&c, env->now, 1);
        assert_int_equal(id_token_issue(keys, &c, tok, sizeof(tok), &err),
                         0);

        len = strlen(tok);
        dot1 = (size_t) (strchr(tok, '.') - tok);
        dot2 = (size_t) (strrchr(tok, '.') - tok);

        /* every character of the payload, flipped to another valid one */
        for (i = dot1 + 1; i < dot2; i++) {
            strcpy(t, tok);
            t[i] = (char) (t[i] == 'A' ? 'B' : 'A');
            test_expect_invalid(keys, t, env->now, NULL);
        }

        /* a few in the header and the signature */
        for (i = 0; i < len; i += (i < dot1 || i > dot2) ? 7 : len) {
            if (i == dot1 || i == dot2) {
                continue;
            }

            strcpy(t, tok);
            t[i] = (char) (t[i] == 'A' ? 'B' : 'A');
            test_expect_invalid(keys, t, env->now, NULL);
        }

        /* the untouched token is fine */
        assert_int_equal(id_token_verify(keys, tok, len, env->now, &c, &err),
                         ID_TOKEN_OK);
    }
}


static void
test_token_stripped_signature(void **state)
{
    test_env_t   *env = *state;
    char          tok[ID_TOKEN_MAX + 1];
    id_err_t      err;
    id_claims_t   c;
    int           k;
    id_keys_t    *keys;

    for (k = 0; k < 2; k++) {
        keys = (k == 0) ? env->hs : env->es;
        test_claims(&c, env->now, 0);
        assert_int_equal(id_token_issue(keys, &c, tok, sizeof(tok), &err),
                         0);

        /* "header.payload." */
        strrchr(tok, '.')[1] = '\0';
        test_expect_invalid(keys, tok, env->now, NULL);

        /* "header.payload" */
        strrchr(tok, '.')[0] = '\0';
        test_expect_invalid(keys, tok, env->now, NULL);

        /* a truncated signature */
        assert_int_equal(id_token_issue(keys, &c, tok, sizeof(tok), &err),
                         0);
        tok[strlen(tok) - 2] = '\0';
        test_expect_invalid(keys, tok, env->now, NULL);
    }
}


static void
test_token_kid(void **state)
{
    test_env_t     *env = *state;
    char            tok[ID_TOKEN_MAX + 1], hdr[256], pl[512], path[400];
    size_t          klen;
    unsigned char   key[64];

    snprintf(path, sizeof(path), "%s/session.key", env->hs_dir);
    test_read_file(path, key, sizeof(key), &klen);
    test_payload(pl, sizeof(pl), env->now, env->now, env->now + 600,
                 TEST_SID, "bob");

    /* signed with the right key, but under a kid we do not know */
    test_hs256("{\"alg\":\"HS256\",\"typ\":\"JWT\","
               "\"kid\":\"0000000000000000\"}",
               pl, key, klen, tok, sizeof(tok));
    test_expect_invalid(env->hs, tok, env->now, "kid");

    /* no kid, or not a string */
    test_hs256("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", pl, key, klen, tok,
               sizeof(tok));
    test_expect_invalid(env->hs, tok, env->now, "kid");

    test_hs256("{\"alg\":\"HS256\",\"kid\":7}", pl, key, klen, tok,
               sizeof(tok));
    test_expect_invalid(env->hs, tok, env->now, "kid");

    /* typ other than JWT, crit */
    snprintf(hdr, sizeof(hdr), "{\"alg\":\"HS256\",\"typ\":\"JWE\"}");
    test_hs256(hdr, pl, key, klen, tok, sizeof(tok));
    test_expect_invalid(env->hs, tok, env->now, "typ");

    snprintf(hdr, sizeof(hdr), "{\"alg\":\"HS256\",\"crit\":[\"exp\"]}");
    test_hs256(hdr, pl, key, klen, tok, sizeof(tok));
    test_expect_invalid(env->hs, tok, env->now, "crit");
}


static void
test_token_other_deployment(void **state)
{
    test_env_t     *env = *state;
    char            tok[ID_TOKEN_MAX + 1], good[ID_TOKEN_MAX + 1];
    char            hdr[256], pl[512], kid[64], path[400];
    size_t          klen;
    id_err_t        err;
    id_keys_t      *other;
    id_claims_t     c;
    unsigned char   key[64];

    assert_int_equal(id_keys_load(env->other_dir, ID_ALG_HS256, 3600, 1,
                                  &other, &err),
                     0);

    /* theirs, as issued: an unknown kid */
    test_claims(&c, env->now, 0);
    assert_int_equal(id_token_issue(other, &c, tok, sizeof(tok), &err), 0);
    test_expect_invalid(env->hs, tok, env->now, "kid");

    /* theirs, relabelled with our kid: the signature fails */
    assert_int_equal(id_token_issue(env->hs, &c, good, sizeof(good), &err),
                     0);
    test_kid(good, kid, sizeof(kid));

    snprintf(path, sizeof(path), "%s/session.key", env->other_dir);
    test_read_file(path, key, sizeof(key), &klen);
    snprintf(hdr, sizeof(hdr),
             "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"%s\"}", kid);
    test_payload(pl, sizeof(pl), env->now, env->now, env->now + 600,
                 TEST_SID, "alice");
    test_hs256(hdr, pl, key, klen, tok, sizeof(tok));
    test_expect_invalid(env->hs, tok, env->now, "signature does not verify");

    id_keys_free(other);
}


static void
test_token_oversized(void **state)
{
    test_env_t     *env = *state;
    char           *tok, hdr[256], pl[ID_TOKEN_MAX * 2], kid[64];
    char            good[ID_TOKEN_MAX + 1], path[400], pad[ID_TOKEN_MAX];
    size_t          klen;
    id_err_t        err;
    id_claims_t     c, got;
    unsigned char   key[64];

    tok = malloc(ID_TOKEN_MAX * 4);
    assert_non_null(tok);

    /* a long run of valid characters */
    memset(tok, 'A', ID_TOKEN_MAX + 1);
    tok[10] = '.';
    tok[20] = '.';
    tok[ID_TOKEN_MAX + 1] = '\0';
    test_expect_invalid(env->hs, tok, env->now, "longer");

    /* a properly signed one that is too long */
    test_claims(&c, env->now, 0);
    assert_int_equal(id_token_issue(env->hs, &c, good, sizeof(good), &err),
                     0);
    test_kid(good, kid, sizeof(kid));
    snprintf(path, sizeof(path), "%s/session.key", env->hs_dir);
    test_read_file(path, key, sizeof(key), &klen);
    snprintf(hdr, sizeof(hdr),
             "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"%s\"}", kid);

    memset(pad, 'p', sizeof(pad) - 1);
    pad[sizeof(pad) - 1] = '\0';
    snprintf(pl, sizeof(pl),
             "{\"sid\":\"%s\",\"sub\":\"bob\",\"iat\":%lld,\"nbf\":%lld,"
             "\"exp\":%lld,\"pad\":\"%s\"}",
             TEST_SID, (long long) env->now, (long long) env->now,
             (long long) env->now + 600, pad);
    test_hs256(hdr, pl, key, klen, tok, ID_TOKEN_MAX * 4);
    assert_true(strlen(tok) > ID_TOKEN_MAX);
    test_expect_invalid(env->hs, tok, env->now, "longer");

    /* the same but shorter fits and verifies */
    pad[1000] = '\0';
    snprintf(pl, sizeof(pl),
             "{\"sid\":\"%s\",\"sub\":\"bob\",\"iat\":%lld,\"nbf\":%lld,"
             "\"exp\":%lld,\"pad\":\"%s\"}",
             TEST_SID, (long long) env->now, (long long) env->now,
             (long long) env->now + 600, pad);
    test_hs256(hdr, pl, key, klen, tok, ID_TOKEN_MAX * 4);
    assert_int_equal(id_token_verify(env->hs, tok, strlen(tok), env->now,
                                     &got, &err),
                     ID_TOKEN_OK);

    /* a length that stops short of the NUL is honoured */
    assert_int_equal(id_token_verify(env->hs, tok, strlen(tok) - 1, env->now,
                                     &got, &err),
                     ID_TOKEN_INVALID);

    free(tok);
}


static void
test_token_malformed(void **state)
{
    test_env_t     *env = *state;
    size_t          i, klen, dot;
    char            tok[ID_TOKEN_MAX + 1], good[ID_TOKEN_MAX + 1];
    char            t[ID_TOKEN_MAX + 8], pl[512], kid[64], path[400];
    char            hdr[256];
    id_err_t        err;
    id_claims_t     c;
    unsigned char   key[64];
    const char     *junk[] = {
        "", ".", "..", "...", "a.b", "a.b.c.d", "abc", "a..c", ".b.c",
        "eyJhbGciOiJIUzI1NiJ9",
    };

    for (i = 0; i < sizeof(junk) / sizeof(junk[0]); i++) {
        test_expect_invalid(env->hs, junk[i], env->now, NULL);
    }

    test_claims(&c, env->now, 0);
    assert_int_equal(id_token_issue(env->hs, &c, good, sizeof(good), &err),
                     0);
    test_kid(good, kid, sizeof(kid));
    dot = (size_t) (strchr(good, '.') - good);

    /* characters libjwt's decoder would skip: '!', '=', '+', '/', ' ' */
    for (i = 0; i < 6; i++) {
        strcpy(t, good);
        memmove(t + dot + 4, t + dot + 3, strlen(t + dot + 3) + 1);
        t[dot + 3] = "!=+/ \n"[i];
        test_expect_invalid(env->hs, t, env->now, "base64url");
    }

    /* padding on the header */
    snprintf(t, sizeof(t), "%.*s=%s", (int) dot, good, good + dot);
    test_expect_invalid(env->hs, t, env->now, "base64url");

    /* an embedded NUL within len */
    strcpy(t, good);
    t[dot + 5] = '\0';
    assert_int_equal(id_token_verify(env->hs, t, strlen(good), env->now, &c,
                                     &err),
                     ID_TOKEN_INVALID);

    /* an impossible base64 length (4n + 1) in the header */
    assert_int_not_equal(dot % 4, 1);
    snprintf(t, sizeof(t), "%.*s%.*s%s", (int) dot, good,
             (int) ((5 - dot % 4) % 4), "AAA", good + dot);
    test_expect_invalid(env->hs, t, env->now, "base64url");

    /* headers that are not JSON objects, correctly signed */
    snprintf(path, sizeof(path), "%s/session.key", env->hs_dir);
    test_read_file(path, key, sizeof(key), &klen);
    test_payload(pl, sizeof(pl), env->now, env->now, env->now + 600,
                 TEST_SID, "bob");

    test_hs256("hello", pl, key, klen, tok, sizeof(tok));
    test_expect_invalid(env->hs, tok, env->now, "not a JSON object");
    test_hs256("[\"HS256\"]", pl, key, klen, tok, sizeof(tok));
    test_expect_invalid(env->hs, tok, env->now, "not a JSON object");
    test_hs256("\"HS256\"", pl, key, klen, tok, sizeof(tok));
    test_expect_invalid(env->hs, tok, env->now, "not a JSON object");

    /* duplicate members: which alg would libjwt believe? neither */
    snprintf(hdr, sizeof(hdr),
             "{\"alg\":\"none\",\"kid\":\"%s\",\"alg\":\"HS256\"}", kid);
    test_hs256(hdr, pl, key, klen, tok, sizeof(tok));
    test_expect_invalid(env->hs, tok, env->now, "not a JSON object");

    /* a payload that is not a JSON object, correctly signed */
    snprintf(hdr, sizeof(hdr),
             "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"%s\"}", kid);
    test_hs256(hdr, "[1,2,3]", key, klen, tok, sizeof(tok));
    test_expect_invalid(env->hs, tok, env->now, NULL);
    test_hs256(hdr, "{\"sub\":\"a\",\"sub\":\"b\"}", key, klen, tok,
               sizeof(tok));
    test_expect_invalid(env->hs, tok, env->now, NULL);
}


static void
test_token_bad_claims(void **state)
{
    test_env_t     *env = *state;
    size_t          i, klen;
    char            tok[ID_TOKEN_MAX + 1], good[ID_TOKEN_MAX + 1];
    char            hdr[256], pl[1024], kid[64], path[400], longsub[100];
    int64_t         now;
    id_err_t        err;
    id_claims_t     c;
    unsigned char   key[64];
    const char     *sids[] = {
        "0123456789ABCDEF0123456789abcdef", "0123456789abcdef0123456789abcde",
        "0123456789abcdef0123456789abcdef0",
        "0123456789abcdeg0123456789abcdef", "",
    };
    const char     *cnfs[] = {
        "\"x\"", "{}", "{\"x5t#S256\":5}", "{\"x5t#S256\":\"AAAA\"}",
        "{\"x5t#S256\":\"!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\"}",
    };

    now = env->now;
    test_claims(&c, now, 0);
    assert_int_equal(id_token_issue(env->hs, &c, good, sizeof(good), &err),
                     0);
    test_kid(good, kid, sizeof(kid));
    snprintf(path, sizeof(path), "%s/session.key", env->hs_dir);
    test_read_file(path, key, sizeof(key), &klen);
    snprintf(hdr, sizeof(hdr),
             "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"%s\"}", kid);

    for (i = 0; i < sizeof(sids) / sizeof(sids[0]); i++) {
        test_payload(pl, sizeof(pl), now, now, now + 600, sids[i], "bob");
        test_hs256(hdr, pl, key, klen, tok, sizeof(tok));
        test_expect_invalid(env->hs, tok, now, "sid");
    }

    test_payload(pl, sizeof(pl), now, now, now + 600, TEST_SID, "");
    test_hs256(hdr, pl, key, klen, tok, sizeof(tok));
    test_expect_invalid(env->hs, tok, now, "sub");

    test_payload(pl, sizeof(pl), now, now, now + 600, TEST_SID, "bo\\nb");
    test_hs256(hdr, pl, key, klen, tok, sizeof(tok));
    test_expect_invalid(env->hs, tok, now, "sub");

    memset(longsub, 'x', 64);
    longsub[64] = '\0';
    test_payload(pl, sizeof(pl), now, now, now + 600, TEST_SID, longsub);
    test_hs256(hdr, pl, key, klen, tok, sizeof(tok));
    test_expect_invalid(env->hs, tok, now, "sub");

    longsub[63] = '\0';
    test_payload(pl, sizeof(pl), now, now, now + 600, TEST_SID, longsub);
    test_hs256(hdr, pl, key, klen, tok, sizeof(tok));
    assert_int_equal(id_token_verify(env->hs, tok, strlen(tok), now, &c,
                                     &err),
                     ID_TOKEN_OK);
    assert_string_equal(c.user, longsub);

    for (i = 0; i < sizeof(cnfs) / sizeof(cnfs[0]); i++) {
        snprintf(pl, sizeof(pl),
                 "{\"sid\":\"%s\",\"sub\":\"bob\",\"iat\":%lld,\"nbf\":%lld,"
                 "\"exp\":%lld,\"cnf\":%s}",
                 TEST_SID, (long long) now, (long long) now,
                 (long long) now + 600, cnfs[i]);
        test_hs256(hdr, pl, key, klen, tok, sizeof(tok));
        test_expect_invalid(env->hs, tok, now, "cnf");
    }
}


/* ---- cache ----------------------------------------------------------- */


static void
test_cache_put_get(void **state)
{
    test_env_t        *env = *state;
    char               tok[ID_TOKEN_MAX + 1];
    id_err_t           err;
    id_claims_t        c, got;
    id_token_cache_t  *cache;

    assert_int_equal(id_token_cache_create(0, &cache, &err), -1);
    assert_int_equal(id_token_cache_create(64, &cache, &err), 0);

    test_claims(&c, env->now, 1);
    assert_int_equal(id_token_issue(env->hs, &c, tok, sizeof(tok), &err), 0);

    assert_int_equal(id_token_cache_get(cache, tok, strlen(tok), env->now,
                                        &got),
                     0);

    id_token_cache_put(cache, tok, strlen(tok), &c);

    memset(&got, 0, sizeof(got));
    assert_int_equal(id_token_cache_get(cache, tok, strlen(tok), env->now,
                                        &got),
                     1);
    assert_memory_equal(&got, &c, sizeof(c));

    /* until exp, not at it */
    assert_int_equal(id_token_cache_get(cache, tok, strlen(tok), c.exp - 1,
                                        &got),
                     1);
    assert_int_equal(id_token_cache_get(cache, tok, strlen(tok), c.exp,
                                        &got),
                     0);

    /* another token, or a prefix of this one, misses */
    assert_int_equal(id_token_cache_get(cache, tok, strlen(tok) - 1,
                                        env->now, &got),
                     0);
    tok[5] ^= 1;
    assert_int_equal(id_token_cache_get(cache, tok, strlen(tok), env->now,
                                        &got),
                     0);

    id_token_cache_free(cache);
}


static void
test_cache_check(void **state)
{
    test_env_t        *env = *state;
    char               tok[ID_TOKEN_MAX + 1];
    const char        *bogus;
    id_err_t           err;
    id_claims_t        c, got;
    id_token_cache_t  *cache;

    assert_int_equal(id_token_cache_create(100, &cache, &err), 0);

    test_claims(&c, env->now, 0);
    assert_int_equal(id_token_issue(env->es, &c, tok, sizeof(tok), &err), 0);

    /* a miss verifies and remembers */
    assert_int_equal(id_token_check(env->es, cache, tok, strlen(tok),
                                    env->now, &got, &err),
                     ID_TOKEN_OK);
    assert_memory_equal(&got, &c, sizeof(c));
    assert_int_equal(id_token_cache_get(cache, tok, strlen(tok), env->now,
                                        &got),
                     1);
    assert_int_equal(id_token_check(env->es, cache, tok, strlen(tok),
                                    env->now + 10, &got, &err),
                     ID_TOKEN_OK);
    assert_memory_equal(&got, &c, sizeof(c));

    /* an expired entry is verified again, and refused */
    test_expect_invalid(env->es, tok, c.exp, "expired");
    assert_int_equal(id_token_check(env->es, cache, tok, strlen(tok), c.exp,
                                    &got, &err),
                     ID_TOKEN_INVALID);

    /*
     * A hit does no signature work: a string that is no token at all,
     * vouched for with id_token_cache_put(), passes.
     */
    bogus = "not.a.token";
    id_token_cache_put(cache, bogus, strlen(bogus), &c);
    assert_int_equal(id_token_check(env->es, cache, bogus, strlen(bogus),
                                    env->now, &got, &err),
                     ID_TOKEN_OK);
    assert_string_equal(got.sid, TEST_SID);
    assert_int_equal(id_token_verify(env->es, bogus, strlen(bogus), env->now,
                                     &got, &err),
                     ID_TOKEN_INVALID);

    /* failures are not remembered */
    tok[strlen(tok) - 3] ^= 1;
    assert_int_equal(id_token_check(env->es, cache, tok, strlen(tok),
                                    env->now, &got, &err),
                     ID_TOKEN_INVALID);
    assert_int_equal(id_token_cache_get(cache, tok, strlen(tok), env->now,
                                        &got),
                     0);

    id_token_cache_free(cache);
}


static void
test_cache_key_generation(void **state)
{
    test_env_t        *env = *state;
    char               tok[ID_TOKEN_MAX + 1];
    id_err_t           err;
    id_keys_t         *same, *other;
    id_claims_t        c, got;
    id_token_cache_t  *cache;

    assert_int_equal(id_token_cache_create(16, &cache, &err), 0);
    assert_int_equal(id_keys_load(env->hs_dir, ID_ALG_HS256, 3600, 0, &same,
                                  &err),
                     0);
    assert_int_equal(id_keys_load(env->other_dir, ID_ALG_HS256, 3600, 1,
                                  &other, &err),
                     0);

    test_claims(&c, env->now, 0);
    assert_int_equal(id_token_issue(env->hs, &c, tok, sizeof(tok), &err), 0);
    assert_int_equal(id_token_check(env->hs, cache, tok, strlen(tok),
                                    env->now, &got, &err),
                     ID_TOKEN_OK);

    /*
     * A reloaded key set does not trust what its predecessor cached: it
     * verifies again (and, holding the same key, accepts) ...
     */
    assert_int_equal(id_token_check(same, cache, tok, strlen(tok), env->now,
                                    &got, &err),
                     ID_TOKEN_OK);

    /* ... and one without the key refuses, cache or not */
    assert_int_equal(id_token_check(other, cache, tok, strlen(tok), env->now,
                                    &got, &err),
                     ID_TOKEN_INVALID);
    assert_non_null(strstr(err.msg, "kid"));

    id_keys_free(same);
    id_keys_free(other);
    id_token_cache_free(cache);
}


static void
test_cache_grace_bound(void **state)
{
    test_env_t        *env = *state;
    char               tok[ID_TOKEN_MAX + 1], path[400];
    id_err_t           err;
    id_keys_t         *k;
    id_claims_t        c, got;
    struct stat        st;
    id_token_cache_t  *cache;

    assert_int_equal(id_token_cache_create(16, &cache, &err), 0);

    test_claims(&c, env->now, 0);
    c.exp = env->now + 7200;
    assert_int_equal(id_token_issue(env->hs, &c, tok, sizeof(tok), &err), 0);

    assert_int_equal(id_keys_rotate(env->hs_dir, ID_ALG_HS256, &err), 0);
    assert_int_equal(id_keys_load(env->hs_dir, ID_ALG_HS256, 600, 0, &k,
                                  &err),
                     0);
    snprintf(path, sizeof(path), "%s/session.key", env->hs_dir);
    assert_int_equal(stat(path, &st), 0);

    assert_int_equal(id_token_check(k, cache, tok, strlen(tok), env->now,
                                    &got, &err),
                     ID_TOKEN_OK);

    /* the cached verdict ends with the grace period, not at exp */
    assert_int_equal(id_token_check(k, cache, tok, strlen(tok),
                                    (int64_t) st.st_mtim.tv_sec + 599, &got,
                                    &err),
                     ID_TOKEN_OK);
    assert_int_equal(id_token_check(k, cache, tok, strlen(tok),
                                    (int64_t) st.st_mtim.tv_sec + 600, &got,
                                    &err),
                     ID_TOKEN_INVALID);
    assert_non_null(strstr(err.msg, "grace"));

    id_keys_free(k);
    id_token_cache_free(cache);
}


static void
test_cache_eviction(void **state)
{
    test_env_t        *env = *state;
    int                i, hits;
    char               tok[64];
    id_err_t           err;
    id_claims_t        c, got;
    id_token_cache_t  *cache;

    assert_int_equal(id_token_cache_create(3, &cache, &err), 0);

    test_claims(&c, env->now, 0);

    for (i = 0; i < 1000; i++) {
        snprintf(tok, sizeof(tok), "token-%d", i);
        c.exp = env->now + 100 + i;
        id_token_cache_put(cache, tok, strlen(tok), &c);

        /* what was just put is always there */
        assert_int_equal(id_token_cache_get(cache, tok, strlen(tok), env->now,
                                            &got),
                         1);
        assert_int_equal(got.exp, c.exp);
    }

    hits = 0;

    for (i = 0; i < 1000; i++) {
        snprintf(tok, sizeof(tok), "token-%d", i);
        hits += id_token_cache_get(cache, tok, strlen(tok), env->now, &got);
    }

    /* four slots (rounded up), never more entries than that */
    assert_true(hits >= 1 && hits <= 4);

    id_token_cache_free(cache);

    assert_int_equal(id_token_cache_create((size_t) 1 << 30, &cache, &err),
                     -1);
}


/* ---- assertion and JWKS ---------------------------------------------- */


static void
test_assertion_jwks(void **state)
{
    test_env_t      *env = *state;
    int              dev, k;
    char             jwks[1024], tok[4096], b64[64], *pem, *pj;
    long             n;
    const char      *s;
    unsigned char    raw[48];
    BIO             *bio;
    jwt_t           *jwt;
    json_t          *doc, *key;
    id_err_t         err;
    EVP_PKEY        *pk;
    EVP_PKEY_CTX    *pctx;
    OSSL_PARAM      *params;
    OSSL_PARAM_BLD  *bld;
    unsigned char    pub[65];
    const char      *groups[] = { "staff", "ops" };
    const char      *amr[] = { "pwd", "otp" };

    assert_int_equal(id_jwks(env->hs, jwks, sizeof(jwks), &err), 0);

    doc = json_loads(jwks, 0, NULL);
    assert_non_null(doc);
    assert_int_equal(json_array_size(json_object_get(doc, "keys")), 1);
    key = json_array_get(json_object_get(doc, "keys"), 0);
    assert_string_equal(json_string_value(json_object_get(key, "kty")), "EC");
    assert_string_equal(json_string_value(json_object_get(key, "crv")),
                        "P-256");
    assert_string_equal(json_string_value(json_object_get(key, "use")), "sig");
    assert_string_equal(json_string_value(json_object_get(key, "alg")),
                        "ES256");
    assert_int_equal(strlen(json_string_value(json_object_get(key, "kid"))),
                     16);

    /* rebuild the public key from x and y alone */
    pub[0] = 0x04;

    for (k = 0; k < 2; k++) {
        s = json_string_value(json_object_get(key, k ? "y" : "x"));
        assert_non_null(s);
        assert_int_equal(strlen(s), 43);
        snprintf(b64, sizeof(b64), "%s=", s);

        for (n = 0; b64[n] != '\0'; n++) {
            if (b64[n] == '-') {
                b64[n] = '+';
            } else if (b64[n] == '_') {
                b64[n] = '/';
            }
        }

        /* 44 characters with one '=' decode to 33 bytes, the last 0 */
        assert_int_equal(EVP_DecodeBlock(raw, (unsigned char *) b64, 44),
                         33);
        memcpy(pub + 1 + 32 * k, raw, 32);
    }

    bld = OSSL_PARAM_BLD_new();
    assert_non_null(bld);
    assert_int_equal(OSSL_PARAM_BLD_push_utf8_string(bld,
                         OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0),
                     1);
    assert_int_equal(OSSL_PARAM_BLD_push_octet_string(bld,
                         OSSL_PKEY_PARAM_PUB_KEY, pub, sizeof(pub)),
                     1);
    params = OSSL_PARAM_BLD_to_param(bld);
    assert_non_null(params);

    pctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    assert_non_null(pctx);
    assert_int_equal(EVP_PKEY_fromdata_init(pctx), 1);
    pk = NULL;
    assert_int_equal(EVP_PKEY_fromdata(pctx, &pk, EVP_PKEY_PUBLIC_KEY,
                                       params),
                     1);

    bio = BIO_new(BIO_s_mem());
    assert_non_null(bio);
    assert_int_equal(PEM_write_bio_PUBKEY(bio, pk), 1);
    n = BIO_get_mem_data(bio, &pem);
    assert_true(n > 0);

    for (dev = 0; dev < 2; dev++) {
        assert_int_equal(id_assertion_issue(env->hs, "app.example.com",
                                            "alice", groups, 2, TEST_SID,
                                            dev ? "urn:dev:1" : NULL, amr, 2,
                                            0, env->now, 60, tok,
                                            sizeof(tok),
                                            &err),
                         0);

        assert_int_equal(jwt_decode(&jwt, tok, (unsigned char *) pem,
                                    (int) n),
                         0);
        assert_int_equal(jwt_get_alg(jwt), JWT_ALG_ES256);
        assert_string_equal(jwt_get_header(jwt, "kid"),
                            json_string_value(json_object_get(key, "kid")));
        assert_string_equal(jwt_get_grant(jwt, "iss"), "ztgate");
        assert_string_equal(jwt_get_grant(jwt, "aud"), "app.example.com");
        assert_string_equal(jwt_get_grant(jwt, "sub"), "alice");
        assert_string_equal(jwt_get_grant(jwt, "sid"), TEST_SID);
        assert_int_equal(jwt_get_grant_int(jwt, "iat"), env->now);
        assert_int_equal(jwt_get_grant_int(jwt, "exp"), env->now + 60);

        if (dev) {
            assert_string_equal(jwt_get_grant(jwt, "device"), "urn:dev:1");
        } else {
            assert_null(jwt_get_grant(jwt, "device"));
        }

        pj = jwt_get_grants_json(jwt, "groups");
        assert_non_null(pj);
        assert_string_equal(pj, "[\"staff\",\"ops\"]");
        free(pj);
        pj = jwt_get_grants_json(jwt, "amr");
        assert_non_null(pj);
        assert_string_equal(pj, "[\"pwd\",\"otp\"]");
        free(pj);

        jwt_free(jwt);
    }

    /* it does not verify under another key (the session one, say) */
    {
        char    path[400], *other;
        size_t  olen;

        snprintf(path, sizeof(path), "%s/assertion.key", env->es_dir);
        other = test_pubkey_pem(path, &olen);
        assert_int_not_equal(jwt_decode(&jwt, tok, (unsigned char *) other,
                                        (int) olen),
                             0);
        free(other);
    }

    /* empty lists are empty arrays */
    assert_int_equal(id_assertion_issue(env->hs, "app", "alice", NULL, 0,
                                        TEST_SID, NULL, NULL, 0, 3,
                                        env->now, 60, tok, sizeof(tok),
                                        &err),
                     0);
    assert_int_equal(jwt_decode(&jwt, tok, (unsigned char *) pem, (int) n),
                     0);
    pj = jwt_get_grants_json(jwt, "groups");
    assert_string_equal(pj, "[]");
    assert_string_equal(jwt_get_grant(jwt, "acr"),
                        "http://idmanagement.gov/ns/assurance/aal/3");
    free(pj);
    jwt_free(jwt);

    /* refusals */
    assert_int_equal(id_assertion_issue(env->hs, "app", "alice", groups, 2,
                                        TEST_SID, NULL, amr, 2, 0, env->now,
                                        60, tok, 100, &err),
                     -1);
    assert_int_equal(id_assertion_issue(env->hs, "app", "alice", groups, 2,
                                        TEST_SID, NULL, amr, 2, 0, env->now,
                                        0, tok, sizeof(tok), &err),
                     -1);
    assert_int_equal(id_assertion_issue(env->hs, "", "alice", groups, 2,
                                        TEST_SID, NULL, amr, 2, 0, env->now,
                                        60, tok, sizeof(tok), &err),
                     -1);
    assert_int_equal(id_jwks(env->hs, jwks, 20, &err), -1);

    BIO_free(bio);
    EVP_PKEY_free(pk);
    EVP_PKEY_CTX_free(pctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    json_decref(doc);
}


static void
test_new_sid(void **state)
{
    char      a[ID_SID_LEN + 1], b[ID_SID_LEN + 1];
    size_t    i;
    id_err_t  err;

    (void) state;

    assert_int_equal(id_new_sid(a, sizeof(a), &err), 0);
    assert_int_equal(id_new_sid(b, sizeof(b), &err), 0);
    assert_int_equal(strlen(a), ID_SID_LEN);

    for (i = 0; i < ID_SID_LEN; i++) {
        assert_non_null(strchr("0123456789abcdef", a[i]));
    }

    assert_string_not_equal(a, b);
    assert_int_equal(id_new_sid(a, ID_SID_LEN, &err), -1);

    assert_string_equal(id_alg_name(ID_ALG_HS256), "HS256");
    assert_string_equal(id_alg_name(ID_ALG_ES256), "ES256");
}


/* Rotating secret.key: values sealed under the old key open during the
 * rotation, re-seal under the new one, and the old key is then gone. */
static void
test_secret_rotate(void **state)
{
    test_env_t  *env = *state;
    id_keys_t   *k = NULL, *k2 = NULL, *k3 = NULL;
    id_err_t     err;
    uint8_t      sealed[128], resealed[128], plain[64];
    size_t       slen, rlen, plen;
    char         path[400];

    assert_int_equal(id_keys_load(env->hs_dir, ID_ALG_HS256, 0, 0, &k, &err),
                     0);
    assert_int_equal(id_keys_has_prev_secret(k), 0);
    assert_int_equal(id_seal(k, (const uint8_t *) "JBSWY3DPEHPK3PXP", 16,
                             "alice", sealed, sizeof(sealed), &slen, &err),
                     0);

    /* step 1 */
    assert_int_equal(id_keys_rotate_secret(env->hs_dir, &err), 0);
    snprintf(path, sizeof(path), "%s/secret.key.prev", env->hs_dir);
    assert_int_equal(access(path, F_OK), 0);
    /* not twice before it is finished */
    assert_int_equal(id_keys_rotate_secret(env->hs_dir, &err), -1);
    assert_non_null(strstr(err.msg, "not finished"));

    assert_int_equal(id_keys_load(env->hs_dir, ID_ALG_HS256, 0, 0, &k2,
                                  &err), 0);
    assert_int_equal(id_keys_has_prev_secret(k2), 1);
    assert_int_equal(id_unseal(k2, sealed, slen, "alice", plain,
                               sizeof(plain), &plen, &err), 0);
    assert_memory_equal(plain, "JBSWY3DPEHPK3PXP", 16);

    /* step 2: re-sealed under the new key; the aad still binds it */
    assert_int_equal(id_reseal(k2, sealed, slen, "alice", resealed,
                               sizeof(resealed), &rlen, &err), 0);
    assert_int_equal(id_unseal(k, resealed, rlen, "alice", plain,
                               sizeof(plain), &plen, &err), -1);
    assert_int_equal(id_unseal(k2, resealed, rlen, "bob", plain,
                               sizeof(plain), &plen, &err), -1);

    /* step 3: the old key is gone; only the re-sealed value opens */
    assert_int_equal(id_keys_drop_prev_secret(env->hs_dir, &err), 0);
    assert_int_equal(access(path, F_OK), -1);
    assert_int_equal(id_keys_load(env->hs_dir, ID_ALG_HS256, 0, 0, &k3,
                                  &err), 0);
    assert_int_equal(id_keys_has_prev_secret(k3), 0);
    assert_int_equal(id_unseal(k3, resealed, rlen, "alice", plain,
                               sizeof(plain), &plen, &err), 0);
    assert_int_equal(id_unseal(k3, sealed, slen, "alice", plain,
                               sizeof(plain), &plen, &err), -1);

    id_keys_free(k);
    id_keys_free(k2);
    id_keys_free(k3);
}


/* ---- verifying assertions (ztconsole, applications) -------------- */


/* An ES256 JWS over payload, signed by hand with the key in keyfile. */
static void
test_assertion_es256(const char *keyfile, const char *kid,
    const char *payload, char *out, size_t size)
{
    jwt_t          *jwt;
    char           *tok;
    size_t          len;
    unsigned char   key[4096];

    test_read_file(keyfile, key, sizeof(key), &len);

    assert_int_equal(jwt_new(&jwt), 0);
    assert_int_equal(jwt_add_grants_json(jwt, payload), 0);
    assert_int_equal(jwt_add_header(jwt, "kid", kid), 0);
    assert_int_equal(jwt_set_alg(jwt, JWT_ALG_ES256, key, (int) len), 0);

    tok = jwt_encode_str(jwt);
    assert_non_null(tok);
    assert_true(strlen(tok) < size);
    strcpy(out, tok);

    free(tok);
    jwt_free(jwt);
}


static void
test_assertion_verify(void **state)
{
    test_env_t      *env = *state;
    id_assertion_t   a;
    id_err_t         err;
    char             tok[4096], bad[4096], kid[64], head[256], *sig, *pay;
    const char      *groups[] = { "staff", "ops" };
    const char      *amr[] = { "pwd", "otp", "mtls" };
    int64_t          now;

    now = env->now;

    assert_int_equal(id_assertion_issue(env->hs, "console.example", "sam",
                                        groups, 2, TEST_SID,
                                        "urn:ztgate:device:1", amr, 3, 2,
                                        now, 60, tok, sizeof(tok), &err),
                     0);

    /* what it says; the audience is a host name: case does not matter */
    assert_int_equal(id_assertion_verify(env->hs, tok, strlen(tok),
                                         "Console.Example", now, 5, &a,
                                         &err), ID_ASSERTION_OK);
    assert_string_equal(a.sub, "sam");
    assert_string_equal(a.sid, TEST_SID);
    assert_int_equal(a.ngroups, 2);
    assert_string_equal(a.groups[1], "ops");
    assert_int_equal(a.namr, 3);
    assert_string_equal(a.amr[1], "otp");
    assert_string_equal(a.device, "urn:ztgate:device:1");
    assert_int_equal(a.exp, now + 60);

    /* another host, another deployment's key */
    assert_int_equal(id_assertion_verify(env->hs, tok, strlen(tok),
                                         "app.example", now, 5, &a, &err),
                     ID_ASSERTION_INVALID);
    assert_non_null(strstr(err.msg, "audience"));
    assert_int_equal(id_assertion_verify(env->es, tok, strlen(tok),
                                         "console.example", now, 5, &a,
                                         &err), ID_ASSERTION_INVALID);
    assert_non_null(strstr(err.msg, "kid"));

    /* expiry with and without leeway; issued in the future */
    assert_int_equal(id_assertion_verify(env->hs, tok, strlen(tok),
                                         "console.example", now + 60, 0, &a,
                                         &err), ID_ASSERTION_INVALID);
    assert_int_equal(id_assertion_verify(env->hs, tok, strlen(tok),
                                         "console.example", now + 64, 5, &a,
                                         &err), ID_ASSERTION_OK);
    assert_int_equal(id_assertion_verify(env->hs, tok, strlen(tok),
                                         "console.example", now + 65, 5, &a,
                                         &err), ID_ASSERTION_INVALID);
    assert_int_equal(id_assertion_verify(env->hs, tok, strlen(tok),
                                         "console.example", now - 10, 5, &a,
                                         &err), ID_ASSERTION_INVALID);

    /* the pin: alg none and HS256 are refused before any signature work */
    test_kid(tok, kid, sizeof(kid));
    pay = strchr(tok, '.') + 1;
    sig = strrchr(tok, '.') + 1;

    snprintf(head, sizeof(head), "{\"alg\":\"none\",\"typ\":\"JWT\","
             "\"kid\":\"%s\"}", kid);
    test_b64url(head, strlen(head), bad, sizeof(bad));
    snprintf(bad + strlen(bad), sizeof(bad) - strlen(bad), ".%.*s.%s",
             (int) (sig - pay - 1), pay, sig);
    assert_int_equal(id_assertion_verify(env->hs, bad, strlen(bad),
                                         "console.example", now, 5, &a,
                                         &err), ID_ASSERTION_INVALID);
    assert_non_null(strstr(err.msg, "ES256"));

    snprintf(head, sizeof(head), "{\"alg\":\"HS256\",\"typ\":\"JWT\","
             "\"kid\":\"%s\"}", kid);
    test_b64url(head, strlen(head), bad, sizeof(bad));
    snprintf(bad + strlen(bad), sizeof(bad) - strlen(bad), ".%.*s.%.43s",
             (int) (sig - pay - 1), pay, sig);
    assert_int_equal(id_assertion_verify(env->hs, bad, strlen(bad),
                                         "console.example", now, 5, &a,
                                         &err), ID_ASSERTION_INVALID);
    assert_non_null(strstr(err.msg, "ES256"));

    /* a payload changed under the signature; a signature cut short */
    strcpy(bad, tok);
    bad[pay - tok + 10] = (bad[pay - tok + 10] == 'A') ? 'B' : 'A';
    assert_int_equal(id_assertion_verify(env->hs, bad, strlen(bad),
                                         "console.example", now, 5, &a,
                                         &err), ID_ASSERTION_INVALID);
    strcpy(bad, tok);
    bad[strlen(bad) - 2] = '\0';
    assert_int_equal(id_assertion_verify(env->hs, bad, strlen(bad),
                                         "console.example", now, 5, &a,
                                         &err), ID_ASSERTION_INVALID);

    /* nothing is left from a refused one */
    assert_string_equal(a.sub, "");
}


/* Well signed, but not what trustd makes: refused claim by claim. */
static void
test_assertion_verify_claims(void **state)
{
    test_env_t      *env = *state;
    id_assertion_t   a;
    id_err_t         err;
    size_t           i;
    char             tok[4096], kid[64], key[400], payload[1024];
    const char      *groups[] = { "staff" };

    static const char  *bad[] = {
        "\"iss\":\"elsewhere\",\"aud\":\"c.example\",\"sub\":\"sam\","
        "\"groups\":[],\"amr\":[],\"sid\":\"" TEST_SID "\"",
        "\"iss\":\"ztgate\",\"aud\":\"c.example\",\"sub\":\"sam\","
        "\"groups\":\"staff\",\"amr\":[],\"sid\":\"" TEST_SID "\"",
        "\"iss\":\"ztgate\",\"aud\":\"c.example\",\"sub\":\"sam\","
        "\"groups\":[1],\"amr\":[],\"sid\":\"" TEST_SID "\"",
        "\"iss\":\"ztgate\",\"aud\":\"c.example\",\"sub\":\"\","
        "\"groups\":[],\"amr\":[],\"sid\":\"" TEST_SID "\"",
        "\"iss\":\"ztgate\",\"aud\":\"c.example\",\"sub\":\"sam\","
        "\"groups\":[],\"amr\":[],\"sid\":\"xyz\"",
        "\"iss\":\"ztgate\",\"aud\":\"c.example\",\"sub\":\"sam\","
        "\"groups\":[],\"sid\":\"" TEST_SID "\"",
        "\"iss\":\"ztgate\",\"aud\":\"c.example\",\"sub\":\"sam\","
        "\"groups\":[],\"amr\":[\"a\",\"b\",\"c\",\"d\",\"e\",\"f\",\"g\","
        "\"h\",\"i\"],\"sid\":\"" TEST_SID "\"",
        "\"iss\":\"ztgate\",\"aud\":\"c.example\",\"sub\":\"sam\","
        "\"groups\":[],\"amr\":[],\"sid\":\"" TEST_SID "\",\"device\":7",
        "\"iss\":\"ztgate\",\"aud\":[\"c.example\"],\"sub\":\"sam\","
        "\"groups\":[],\"amr\":[],\"sid\":\"" TEST_SID "\"",
    };

    assert_int_equal(id_assertion_issue(env->hs, "c.example", "sam", groups,
                                        1, TEST_SID, NULL, NULL, 0, 0,
                                        env->now, 60, tok, sizeof(tok),
                                        &err), 0);
    test_kid(tok, kid, sizeof(kid));
    snprintf(key, sizeof(key), "%s/assertion.key", env->hs_dir);

    /* the hand-made signature itself is good */
    snprintf(payload, sizeof(payload), "{\"iss\":\"ztgate\",\"aud\":"
             "\"c.example\",\"sub\":\"sam\",\"groups\":[\"staff\"],"
             "\"amr\":[\"otp\"],\"sid\":\"%s\",\"iat\":%lld,"
             "\"exp\":%lld}", TEST_SID, (long long) env->now,
             (long long) env->now + 60);
    test_assertion_es256(key, kid, payload, tok, sizeof(tok));
    assert_int_equal(id_assertion_verify(env->hs, tok, strlen(tok),
                                         "c.example", env->now, 0, &a, &err),
                     ID_ASSERTION_OK);
    assert_string_equal(a.device, "");

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(payload, sizeof(payload), "{%s,\"iat\":%lld,\"exp\":%lld}",
                 bad[i], (long long) env->now, (long long) env->now + 60);
        test_assertion_es256(key, kid, payload, tok, sizeof(tok));
        assert_int_equal(id_assertion_verify(env->hs, tok, strlen(tok),
                                             "c.example", env->now, 0, &a,
                                             &err), ID_ASSERTION_INVALID);
    }
}


static void
test_totp_qr_svg(void **state)
{
    int          x, y, n, run, dark, drawn, dim;
    char        *out, view[64];
    const char  *p, *uri;
    QRcode      *qr;
    id_err_t     err;

    (void) state;

    uri = "otpauth://totp/ztgate:carol?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
          "&issuer=ztgate&algorithm=SHA1&digits=6&period=30";

    out = malloc(65536);
    assert_non_null(out);
    assert_int_equal(id_totp_qr_svg(uri, 4, out, 65536, &err), 0);

    qr = QRcode_encodeString(uri, 0, QR_ECLEVEL_M, QR_MODE_8, 1);
    assert_non_null(qr);
    dim = qr->width + 8;

    assert_true(strncmp(out, "<svg ", 5) == 0);
    assert_non_null(strstr(out, "</svg>"));
    snprintf(view, sizeof(view), "viewBox=\"0 0 %d %d\"", dim, dim);
    assert_non_null(strstr(out, view));
    /* no script, no style, no text: nothing but geometry */
    assert_null(strstr(out, "<script"));
    assert_null(strstr(out, "style"));

    /* the path's rectangles cover exactly the dark modules */
    dark = 0;
    for (y = 0; y < qr->width; y++) {
        for (x = 0; x < qr->width; x++) {
            dark += qr->data[y * qr->width + x] & 1;
        }
    }

    drawn = 0;
    p = strstr(out, " d=\"");
    assert_non_null(p);
    p += 4;

    while (sscanf(p, "M%d %dh%dv1h-%dz%n", &x, &y, &run, &run, &n) == 4) {
        assert_true(x >= 4 && y >= 4 && x + run <= qr->width + 4);
        assert_int_equal(qr->data[(y - 4) * qr->width + (x - 4)] & 1, 1);
        drawn += run;
        p += n;
    }

    assert_int_equal(drawn, dark);
    assert_true(strncmp(p, "\"/></svg>", 9) == 0);

    /* too small a buffer, a bad scale: refused, nothing half-written */
    assert_int_equal(id_totp_qr_svg(uri, 4, out, 512, &err), -1);
    assert_string_equal(out, "");
    assert_int_equal(id_totp_qr_svg(uri, 0, out, 65536, &err), -1);
    assert_int_equal(id_totp_qr_svg(uri, 17, out, 65536, &err), -1);

    QRcode_free(qr);
    free(out);
}


static void
test_totp_secret_text(void **state)
{
    id_totp_t  t;
    id_err_t   err;
    char       out[128];

    (void) state;

    memset(&t, 0, sizeof(t));
    memcpy(t.secret, "12345678901234567890", 20);
    t.secret_len = 20;
    t.algo = ID_TOTP_SHA1;
    t.digits = 6;
    t.period = 30;

    assert_int_equal(id_totp_secret_text(&t, out, sizeof(out), &err), 0);
    assert_string_equal(out, "GEZD GNBV GY3T QOJQ GEZD GNBV GY3T QOJQ");

    assert_int_equal(id_totp_secret_text(&t, out, 20, &err), -1);
    assert_string_equal(out, "");
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_totp_vectors),
        cmocka_unit_test(test_totp_window),
        cmocka_unit_test(test_totp_replay),
        cmocka_unit_test(test_totp_bad_code),
        cmocka_unit_test(test_totp_new_uri),
        cmocka_unit_test(test_totp_qr),
        cmocka_unit_test(test_password_roundtrip),
        cmocka_unit_test(test_password_tampered),
        cmocka_unit_test_setup_teardown(test_seal_roundtrip,
                                        test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_seal_tamper,
                                        test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_keys_files,
                                        test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_keys_too_open,
                                        test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_keys_reload_same_kid,
                                        test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_keys_rotate_grace,
                                        test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_secret_rotate,
                                        test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_keys_alg_switch,
                                        test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_token_roundtrip,
                                        test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_token_roundtrip_es256,
                                        test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_token_issue_refuses,
                                        test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_token_alg_none,
                                        test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_token_hs256_with_public_key,
                                        test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_token_es256_when_hs256,
                                        test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_token_times,
                                        test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_token_tampered,
                                        test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_token_stripped_signature,
                                        test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_token_kid,
                                        test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_token_other_deployment,
                                        test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_token_oversized,
                                        test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_token_malformed,
                                        test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_token_bad_claims,
                                        test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_cache_put_get,
                                        test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_cache_check,
                                        test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_cache_key_generation,
                                        test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_cache_grace_bound,
                                        test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_cache_eviction,
                                        test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_assertion_jwks,
                                        test_setup, test_teardown),
        cmocka_unit_test(test_new_sid),
        cmocka_unit_test_setup_teardown(test_assertion_verify,
                                        test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_assertion_verify_claims,
                                        test_setup, test_teardown),
        cmocka_unit_test(test_totp_qr_svg),
        cmocka_unit_test(test_totp_secret_text),
    };

    return cmocka_run_group_tests_name("identity", tests, NULL, NULL);
}
