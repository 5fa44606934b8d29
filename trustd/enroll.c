/*
 * Staff enrollment steps shared by ztctl and ztconsole.  See enroll.h.
 *
 * Every write re-reads the user in its own store call and changes only
 * what the step is about, so a step never undoes a change another staff
 * member made meanwhile (a group change, a lock); a confirmation checks
 * that the sealed secret it verified against is still the one stored.
 */

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "enroll.h"


#define ENROLL_GEN_ALPHABET     "23456789abcdefghjkmnpqrstuvwxyz"
#define ENROLL_GEN_CHARS        20
#define ENROLL_GEN_GROUP        5


static void enroll_seterr(enroll_err_t *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int enroll_find(store_t *st, const char *user, store_user_t *u,
    enroll_err_t *err);
static int enroll_update(store_t *st, const store_user_t *u,
    const char *actor, const char *action, const char *detail, int revoke,
    unsigned *revoked, enroll_err_t *err);


static void
enroll_seterr(enroll_err_t *err, const char *fmt, ...)
{
    va_list  ap;

    if (err == NULL) {
        return;
    }

    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
}


/* Read user: ENROLL_OK, ENROLL_NOTFOUND or -1. */
static int
enroll_find(store_t *st, const char *user, store_user_t *u,
    enroll_err_t *err)
{
    store_err_t  se;
    int          rc;

    rc = store_user_find(st, user, u, &se);

    if (rc == STORE_NOTFOUND) {
        enroll_seterr(err, "no user \"%.64s\"", user);
        return ENROLL_NOTFOUND;
    }

    if (rc != 0) {
        enroll_seterr(err, "%s", se.msg);
        return -1;
    }

    return ENROLL_OK;
}


/* store_user_update() or _update_revoke(): ENROLL_OK, _NOTFOUND or -1. */
static int
enroll_update(store_t *st, const store_user_t *u, const char *actor,
    const char *action, const char *detail, int revoke, unsigned *revoked,
    enroll_err_t *err)
{
    store_err_t  se;
    int          rc;

    if (revoke) {
        rc = store_user_update_revoke(st, u, actor, action, detail, revoked,
                                      &se);
    } else {
        rc = store_user_update(st, u, actor, action, detail, &se);
    }

    if (rc == STORE_NOTFOUND) {
        enroll_seterr(err, "user %s disappeared", u->name);
        return ENROLL_NOTFOUND;
    }

    if (rc != 0) {
        enroll_seterr(err, "%s", se.msg);
        return -1;
    }

    return ENROLL_OK;
}


size_t
enroll_utf8_len(const char *s)
{
    size_t  n;

    for (n = 0; *s != '\0'; s++) {
        if (((unsigned char) *s & 0xc0) != 0x80) {
            n++;
        }
    }

    return n;
}


int
enroll_password_check(const char *password, enroll_err_t *err)
{
    const unsigned char  *p;

    if (strlen(password) > ENROLL_PASSWORD_MAX) {
        enroll_seterr(err, "the password must have at most %d bytes",
                      ENROLL_PASSWORD_MAX);
        return ENROLL_REFUSED;
    }

    for (p = (const unsigned char *) password; *p != '\0'; p++) {
        if (*p < 0x20 || *p == 0x7f) {
            enroll_seterr(err, "the password must not hold control "
                          "characters");
            return ENROLL_REFUSED;
        }
    }

    if (enroll_utf8_len(password) < ENROLL_PASSWORD_MIN) {
        enroll_seterr(err, "the password must have at least %d characters",
                      ENROLL_PASSWORD_MIN);
        return ENROLL_REFUSED;
    }

    return ENROLL_OK;
}


int
enroll_password_generate(char *out, size_t size, enroll_err_t *err)
{
    static const char  alphabet[] = ENROLL_GEN_ALPHABET;
    unsigned char      rnd[64];
    size_t             i, n, k;

    if (out == NULL || size < ENROLL_GEN_PASSWORD_SIZE) {
        enroll_seterr(err, "a generated password needs %d bytes",
                      ENROLL_GEN_PASSWORD_SIZE);
        return -1;
    }

    n = 0;
    k = 0;

    /* rejection sampling: 31 of 32 values of 5 random bits are used */
    while (k < ENROLL_GEN_CHARS) {
        if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
            enroll_seterr(err, "RAND_bytes failed");
            OPENSSL_cleanse(out, size);
            return -1;
        }

        for (i = 0; i < sizeof(rnd) && k < ENROLL_GEN_CHARS; i++) {
            if ((rnd[i] & 0x1f) >= sizeof(alphabet) - 1) {
                continue;
            }

            if (k > 0 && k % ENROLL_GEN_GROUP == 0) {
                out[n++] = '-';
            }

            out[n++] = alphabet[rnd[i] & 0x1f];
            k++;
        }
    }

    out[n] = '\0';
    OPENSSL_cleanse(rnd, sizeof(rnd));

    return 0;
}


int
enroll_password_set(store_t *st, const char *user, const char *password,
    const char *actor, enroll_err_t *err)
{
    store_user_t  *u;
    id_err_t       ie;
    char           hash[ID_PWHASH_MAX];
    int            rc;

    rc = enroll_password_check(password, err);
    if (rc != ENROLL_OK) {
        return rc;
    }

    u = calloc(1, sizeof(*u));
    if (u == NULL) {
        enroll_seterr(err, "out of memory");
        return -1;
    }

    rc = enroll_find(st, user, u, err);
    if (rc != ENROLL_OK) {
        goto done;
    }

    if (id_password_hash(password, hash, sizeof(hash), &ie) != 0) {
        enroll_seterr(err, "%s", ie.msg);
        rc = -1;
        goto done;
    }

    snprintf(u->pwhash, sizeof(u->pwhash), "%s", hash);

    rc = enroll_update(st, u, actor, "user.password", "password set", 0,
                       NULL, err);

done:

    OPENSSL_cleanse(hash, sizeof(hash));
    OPENSSL_cleanse(u, sizeof(*u));
    free(u);

    return rc;
}


const char *
enroll_totp_algo_name(unsigned algo)
{
    switch (algo) {
    case ID_TOTP_SHA256:
        return "sha256";
    case ID_TOTP_SHA512:
        return "sha512";
    default:
        return "sha1";
    }
}


int
enroll_totp_start(store_t *st, const id_keys_t *keys, const char *user,
    id_totp_algo_t algo, unsigned digits, const char *issuer,
    const char *actor, enroll_totp_t *out, enroll_err_t *err)
{
    store_user_t  *u;
    id_err_t       ie;
    size_t         len;
    char           detail[64];
    int            rc;

    memset(out, 0, sizeof(*out));
    u = &out->pending;

    rc = enroll_find(st, user, u, err);
    if (rc != ENROLL_OK) {
        return rc;
    }

    if (u->totp_state == STORE_TOTP_ACTIVE) {
        enroll_seterr(err, "%s already has an active authenticator; reset "
                      "it first", u->name);
        rc = ENROLL_REFUSED;
        goto failed;
    }

    if (id_totp_new(&out->totp, algo, digits, &ie) != 0
        || id_seal(keys, out->totp.secret, out->totp.secret_len, u->name,
                   u->totp_sealed, sizeof(u->totp_sealed), &len, &ie) != 0
        || id_totp_uri(&out->totp, issuer, u->name, out->uri,
                       sizeof(out->uri), &ie) != 0)
    {
        enroll_seterr(err, "%s", ie.msg);
        rc = -1;
        goto failed;
    }

    u->totp_sealed_len = len;
    u->totp_state = STORE_TOTP_PENDING;
    u->totp_algo = (unsigned) algo;
    u->totp_digits = digits;
    u->totp_last_counter = 0;

    snprintf(detail, sizeof(detail), "pending (%s, %u digits)",
             enroll_totp_algo_name(u->totp_algo), digits);

    rc = enroll_update(st, u, actor, "user.totp.enroll", detail, 0, NULL,
                       err);
    if (rc != ENROLL_OK) {
        goto failed;
    }

    return ENROLL_OK;

failed:

    enroll_totp_wipe(out);

    return rc;
}


int
enroll_totp_open(store_t *st, const id_keys_t *keys, const char *user,
    enroll_totp_t *out, enroll_err_t *err)
{
    store_user_t  *u;
    id_err_t       ie;
    int            rc;

    memset(out, 0, sizeof(*out));
    u = &out->pending;

    rc = enroll_find(st, user, u, err);
    if (rc != ENROLL_OK) {
        return rc;
    }

    if (u->totp_state != STORE_TOTP_PENDING) {
        enroll_seterr(err, "%s has no pending authenticator (TOTP state "
                      "%s)", u->name, store_totp_state_name(u->totp_state));
        enroll_totp_wipe(out);
        return ENROLL_REFUSED;
    }

    out->totp.algo = (id_totp_algo_t) u->totp_algo;
    out->totp.digits = u->totp_digits;
    out->totp.period = ENROLL_TOTP_PERIOD;

    if (id_unseal(keys, u->totp_sealed, u->totp_sealed_len, u->name,
                  out->totp.secret, sizeof(out->totp.secret),
                  &out->totp.secret_len, &ie)
        != 0)
    {
        enroll_seterr(err, "cannot open the TOTP secret of %s: %s", u->name,
                      ie.msg);
        enroll_totp_wipe(out);
        return -1;
    }

    return ENROLL_OK;
}


int
enroll_totp_confirm(store_t *st, const enroll_totp_t *e, const char *code,
    int64_t now, unsigned window, const char *actor, enroll_err_t *err)
{
    store_user_t  *u;
    id_err_t       ie;
    uint64_t       counter;
    char           digits[16], detail[64];
    int            rc;

    if (enroll_code_normalize(code, digits, sizeof(digits)) != 0
        || strlen(digits) != e->totp.digits)
    {
        enroll_seterr(err, "wrong code (expected %u digits): the "
                      "authenticator of %s stays pending; try again",
                      e->totp.digits, e->pending.name);
        return ENROLL_BAD_CODE;
    }

    rc = id_totp_verify(&e->totp, digits, now, window,
                        e->pending.totp_last_counter, &counter, &ie);
    if (rc == -1) {
        enroll_seterr(err, "%s", ie.msg);
        return -1;
    }

    if (rc != ID_TOTP_OK) {
        enroll_seterr(err, "wrong code: the authenticator of %s stays "
                      "pending; check the device's clock and try again",
                      e->pending.name);
        return ENROLL_BAD_CODE;
    }

    u = calloc(1, sizeof(*u));
    if (u == NULL) {
        enroll_seterr(err, "out of memory");
        return -1;
    }

    rc = enroll_find(st, e->pending.name, u, err);
    if (rc != ENROLL_OK) {
        goto done;
    }

    if (u->totp_state != STORE_TOTP_PENDING
        || u->totp_sealed_len != e->pending.totp_sealed_len
        || CRYPTO_memcmp(u->totp_sealed, e->pending.totp_sealed,
                         u->totp_sealed_len) != 0)
    {
        enroll_seterr(err, "the enrollment of %s changed meanwhile; "
                      "nothing done", u->name);
        rc = ENROLL_CHANGED;
        goto done;
    }

    u->totp_state = STORE_TOTP_ACTIVE;
    u->totp_last_counter = counter;

    snprintf(detail, sizeof(detail), "active (%s, %u digits)",
             enroll_totp_algo_name(u->totp_algo), u->totp_digits);

    rc = enroll_update(st, u, actor, "user.totp.confirm", detail, 0, NULL,
                       err);

done:

    OPENSSL_cleanse(digits, sizeof(digits));
    OPENSSL_cleanse(u, sizeof(*u));
    free(u);

    return rc;
}


int
enroll_totp_reset(store_t *st, const char *user, const char *actor,
    store_totp_state_t *was, unsigned *revoked, enroll_err_t *err)
{
    store_user_t  *u;
    char           detail[64];
    int            rc;

    u = calloc(1, sizeof(*u));
    if (u == NULL) {
        enroll_seterr(err, "out of memory");
        return -1;
    }

    rc = enroll_find(st, user, u, err);
    if (rc != ENROLL_OK) {
        goto done;
    }

    if (was != NULL) {
        *was = u->totp_state;
    }

    snprintf(detail, sizeof(detail), "was %s",
             store_totp_state_name(u->totp_state));

    u->totp_state = STORE_TOTP_NONE;
    OPENSSL_cleanse(u->totp_sealed, sizeof(u->totp_sealed));
    u->totp_sealed_len = 0;
    u->totp_algo = 0;
    u->totp_digits = 0;
    u->totp_last_counter = 0;

    rc = enroll_update(st, u, actor, "user.totp.reset", detail, 1, revoked,
                       err);

done:

    OPENSSL_cleanse(u, sizeof(*u));
    free(u);

    return rc;
}


void
enroll_totp_wipe(enroll_totp_t *e)
{
    OPENSSL_cleanse(&e->totp, sizeof(e->totp));
    OPENSSL_cleanse(e->uri, sizeof(e->uri));
    OPENSSL_cleanse(e->pending.totp_sealed, sizeof(e->pending.totp_sealed));
    OPENSSL_cleanse(e->pending.pwhash, sizeof(e->pending.pwhash));
}


int
enroll_code_normalize(const char *in, char *out, size_t size)
{
    size_t  n;

    for (n = 0; *in != '\0'; in++) {
        if (*in == ' ' || *in == '-' || *in == '\t') {
            continue;
        }

        if (*in < '0' || *in > '9' || n + 1 >= size) {
            if (size > 0) {
                out[0] = '\0';
            }
            return -1;
        }

        out[n++] = *in;
    }

    if (size == 0) {
        return -1;
    }

    out[n] = '\0';

    return (n >= 6 && n <= 8) ? 0 : -1;
}


int
enroll_owner_ok(const char *owner)
{
    size_t  len;

    len = strlen(owner);

    if (len == 0 || len >= STORE_NAME_MAX) {
        return 0;
    }

    return strspn(owner, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                         "0123456789._@-") == len;
}


int
enroll_text_ok(const char *text, size_t max)
{
    const unsigned char  *p;

    if (strlen(text) >= max) {
        return 0;
    }

    for (p = (const unsigned char *) text; *p != '\0'; p++) {
        if (*p < 0x20 || *p == 0x7f) {
            return 0;
        }
    }

    return 1;
}


int
enroll_device_record(const uint8_t fp[STORE_FP_LEN], const char *device_id,
    int64_t not_after, const char *owner, const char *name,
    const char *platform, int64_t now, store_device_t *dev,
    enroll_err_t *err)
{
    int  n;

    memset(dev, 0, sizeof(*dev));

    if (!enroll_owner_ok(owner)) {
        enroll_seterr(err, "the owner must be a user name of letters, "
                      "digits and . _ @ - (at most %d)", STORE_NAME_MAX - 1);
        return ENROLL_REFUSED;
    }

    if (!enroll_text_ok(name, sizeof(dev->name))
        || !enroll_text_ok(platform, sizeof(dev->platform)))
    {
        enroll_seterr(err, "the device name (at most %zu bytes) and the "
                      "platform (at most %zu) must be printable text",
                      sizeof(dev->name) - 1, sizeof(dev->platform) - 1);
        return ENROLL_REFUSED;
    }

    if (device_id == NULL || device_id[0] == '\0') {
        enroll_seterr(err, "the certificate has no %s URI SAN; it is not a "
                      "ztgate device certificate", STORE_DEVICE_URN);
        return ENROLL_REFUSED;
    }

    /* the id with or without its urn prefix */
    if (strncmp(device_id, STORE_DEVICE_URN, sizeof(STORE_DEVICE_URN) - 1)
        == 0)
    {
        n = snprintf(dev->id, sizeof(dev->id), "%s", device_id);
    } else {
        n = snprintf(dev->id, sizeof(dev->id), "%s%s", STORE_DEVICE_URN,
                     device_id);
    }

    if (n < 0 || (size_t) n >= sizeof(dev->id)) {
        enroll_seterr(err, "the certificate's device id is too long");
        memset(dev, 0, sizeof(*dev));
        return ENROLL_REFUSED;
    }

    if (not_after != 0 && not_after < now) {
        enroll_seterr(err, "the certificate has expired");
        memset(dev, 0, sizeof(*dev));
        return ENROLL_REFUSED;
    }

    memcpy(dev->fp, fp, STORE_FP_LEN);
    snprintf(dev->owner, sizeof(dev->owner), "%s", owner);
    snprintf(dev->name, sizeof(dev->name), "%s", name);
    snprintf(dev->platform, sizeof(dev->platform), "%s", platform);
    dev->expires_at = not_after;
    dev->status = STORE_DEVICE_ACTIVE;

    return ENROLL_OK;
}
