/*
 * Staff enrollment: the steps that ztctl (the command line) and ztconsole
 * (the web console) share between what a staff member asks for and the
 * store.  A password is checked and hashed; a TOTP authenticator is
 * enrolled pending, confirmed active with a code from the new
 * authenticator, or reset; a device certificate becomes an enrollment
 * record.  Each change is one store call, one write transaction with its
 * audit record and the staff member as its actor, so both tools leave the
 * same journal ("user.password", "user.totp.enroll", "user.totp.confirm",
 * "user.totp.reset" with the same details).
 *
 * Nothing here prints, prompts or reads a file.  Results: ENROLL_OK, -1
 * for a failure (store, keys, crypto), or one of the named outcomes below;
 * every result but ENROLL_OK leaves a message for the staff member in
 * *err.
 */

#ifndef ZT_ENROLL_H
#define ZT_ENROLL_H

#include <stddef.h>
#include <stdint.h>

#include "identity.h"
#include "store.h"

#define ENROLL_OK               0
#define ENROLL_NOTFOUND         1   /* no such user */
#define ENROLL_REFUSED          2   /* not in this state, or a bad value */
#define ENROLL_BAD_CODE         3   /* the code is wrong: still pending */
#define ENROLL_CHANGED          4   /* the record changed meanwhile */

#define ENROLL_PASSWORD_MIN     12      /* characters */
#define ENROLL_PASSWORD_MAX     1024    /* bytes */
#define ENROLL_TOTP_ISSUER      "ztgate"
#define ENROLL_TOTP_PERIOD      30      /* seconds, what id_totp_new() makes */
#define ENROLL_TOTP_URI_MAX     1024

/*
 * A generated password: 20 characters of 31 that cannot be mistaken for
 * one another (about 99 bits), in four groups of five joined by '-'.
 */
#define ENROLL_GEN_PASSWORD_SIZE    (20 + 3 + 1)

typedef struct {
    char    msg[256];
} enroll_err_t;

/*
 * An authenticator being enrolled: the user record as stored with it
 * pending, and the secret in the clear.  Wipe it with enroll_totp_wipe()
 * as soon as the secret has been shown or checked.
 */
typedef struct {
    store_user_t    pending;
    id_totp_t       totp;
    char            uri[ENROLL_TOTP_URI_MAX];   /* otpauth:// */
} enroll_totp_t;

/* Characters (UTF-8 code points) of s, not bytes. */
size_t enroll_utf8_len(const char *s);

/*
 * ENROLL_OK if password is acceptable: at least ENROLL_PASSWORD_MIN
 * characters, at most ENROLL_PASSWORD_MAX bytes, no control characters;
 * else ENROLL_REFUSED with the rule in err.
 */
int enroll_password_check(const char *password, enroll_err_t *err);

/*
 * A fresh random password (see ENROLL_GEN_PASSWORD_SIZE) into out, which
 * holds at least ENROLL_GEN_PASSWORD_SIZE bytes; the caller shows it once
 * and wipes it.  0 or -1.
 */
int enroll_password_generate(char *out, size_t size, enroll_err_t *err);

/*
 * Check password (enroll_password_check()), hash it and make it user's
 * password: audit "user.password", detail "password set".  Returns
 * ENROLL_OK, ENROLL_NOTFOUND, ENROLL_REFUSED or -1.  The caller wipes
 * password; no copy of it or of its hash is left behind.
 */
int enroll_password_set(store_t *st, const char *user, const char *password,
    const char *actor, enroll_err_t *err);

/*
 * Enroll a new authenticator for user: a fresh secret (algo, digits 6 or
 * 8), sealed with keys' secret key and stored pending in place of any
 * earlier pending one (audit "user.totp.enroll", detail "pending (sha1, 6
 * digits)"), and its otpauth:// URI for issuer.  Refused while the user
 * has an active authenticator (reset it first).  On ENROLL_OK *out holds
 * the pending record, the secret and the URI (the caller's, to wipe).
 * Returns ENROLL_OK, ENROLL_NOTFOUND, ENROLL_REFUSED or -1.
 */
int enroll_totp_start(store_t *st, const id_keys_t *keys, const char *user,
    id_totp_algo_t algo, unsigned digits, const char *issuer,
    const char *actor, enroll_totp_t *out, enroll_err_t *err);

/*
 * Read user's pending authenticator back from the store for a
 * confirmation: the record, and the secret unsealed with keys (out->uri
 * stays empty).  Returns ENROLL_OK, ENROLL_NOTFOUND, ENROLL_REFUSED (no
 * pending authenticator) or -1.
 */
int enroll_totp_open(store_t *st, const id_keys_t *keys, const char *user,
    enroll_totp_t *out, enroll_err_t *err);

/*
 * Confirm e (from enroll_totp_start() or enroll_totp_open()) with code, as
 * the authenticator shows it (spaces and '-' are ignored), at time now
 * within window steps: the pending authenticator becomes active with the
 * matched counter, so that the code cannot be used again to sign in
 * (audit "user.totp.confirm", detail "active (sha1, 6 digits)").  Only if
 * the stored enrollment is still the one e holds.  Returns ENROLL_OK,
 * ENROLL_BAD_CODE (wrong, malformed or outside the window: it stays
 * pending), ENROLL_CHANGED, ENROLL_NOTFOUND or -1.
 */
int enroll_totp_confirm(store_t *st, const enroll_totp_t *e,
    const char *code, int64_t now, unsigned window, const char *actor,
    enroll_err_t *err);

/*
 * Remove user's authenticator (any state) and, in the same transaction,
 * revoke all their sessions (audit "user.totp.reset", detail "was
 * active").  *was (may be NULL) receives the state it had, *revoked (may
 * be NULL) how many sessions ended.  Returns ENROLL_OK, ENROLL_NOTFOUND or
 * -1.
 */
int enroll_totp_reset(store_t *st, const char *user, const char *actor,
    store_totp_state_t *was, unsigned *revoked, enroll_err_t *err);

/* Wipe the secret, the URI and the sealed secret of e. */
void enroll_totp_wipe(enroll_totp_t *e);

/*
 * A code as authenticators show it ("123 456", "123-456") reduced to its
 * digits in out.  0 for 6 to 8 digits, else -1.
 */
int enroll_code_normalize(const char *in, char *out, size_t size);

/* "sha1", "sha256" or "sha512" for an id_totp_algo_t. */
const char *enroll_totp_algo_name(unsigned algo);

/*
 * 1 if owner may own a device: 1 to 63 letters, digits and . _ @ -.
 * 1 if text is printable text (UTF-8 allowed) of fewer than max bytes,
 * possibly empty.
 */
int enroll_owner_ok(const char *owner);
int enroll_text_ok(const char *text, size_t max);

/*
 * The enrollment record of a device certificate of the ztgate CA: its
 * fingerprint, its device id (the URI SAN, with or without its
 * STORE_DEVICE_URN prefix) and its expiry (0: none), for owner with name
 * and platform (both may be empty), active, expiring with the
 * certificate.  A certificate without a device id, or expired at now, is
 * refused, as are an owner or texts that are not acceptable.  Returns
 * ENROLL_OK with *dev filled (ready for store_device_enroll()) or
 * ENROLL_REFUSED.
 */
int enroll_device_record(const uint8_t fp[STORE_FP_LEN],
    const char *device_id, int64_t not_after, const char *owner,
    const char *name, const char *platform, int64_t now,
    store_device_t *dev, enroll_err_t *err);

#endif /* ZT_ENROLL_H */
