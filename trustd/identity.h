/*
 * Identity credentials and tokens: password hashing, TOTP (RFC 6238),
 * secrets sealed at rest, session tokens (JWT, algorithm pinned), the
 * verified-token cache, and the signed assertion handed to upstream
 * applications with its JWKS document.
 *
 * No store access and no I/O except reading and creating key files in
 * id_keys_load().  Conventions: 0 on success, -1 on failure with a message
 * in *err; where a function has more outcomes they are named constants.
 */

#ifndef ZT_IDENTITY_H
#define ZT_IDENTITY_H

#include <stddef.h>
#include <stdint.h>

#define ID_PWHASH_MAX       160     /* encoded password hash, with NUL */
#define ID_SECRET_MAX       64      /* TOTP secret bytes */
#define ID_SEALED_MAX       (ID_SECRET_MAX + 64)
#define ID_SID_LEN          32      /* session id: 32 lowercase hex chars */
#define ID_FP_LEN           32      /* device certificate SHA-256 */
#define ID_TOKEN_MAX        2048
#define ID_NAME_MAX         64

typedef struct {
    char    msg[256];
} id_err_t;

/* ---- passwords ------------------------------------------------------ */

/*
 * Hash a password with scrypt (OpenSSL's KDF; N=2^15, r=8, p=1, 16-byte
 * random salt) into a self-describing string
 * "$scrypt$ln=15,r=8,p=1$<salt b64>$<hash b64>" in out.
 */
int id_password_hash(const char *password, char *out, size_t size,
    id_err_t *err);

/*
 * Check a password against a string from id_password_hash() (the
 * parameters are read from it).  Returns 1 for a match, 0 for none, -1 on
 * a malformed hash or internal error.  The comparison is constant-time.
 */
int id_password_verify(const char *password, const char *encoded,
    id_err_t *err);

/* ---- TOTP (RFC 6238, via liboath) ----------------------------------- */

typedef enum {
    ID_TOTP_SHA1 = 0,           /* default; what every authenticator does */
    ID_TOTP_SHA256,
    ID_TOTP_SHA512
} id_totp_algo_t;

typedef struct {
    uint8_t         secret[ID_SECRET_MAX];
    size_t          secret_len;
    id_totp_algo_t  algo;
    unsigned        digits;     /* 6 or 8 */
    unsigned        period;     /* seconds, 30 */
} id_totp_t;

#define ID_TOTP_OK          0
#define ID_TOTP_BAD         1   /* wrong code, or outside the window */
#define ID_TOTP_REPLAY      2   /* right code, already used */

/* A fresh random secret (20 bytes for SHA-1, 32 SHA-256, 64 SHA-512). */
int id_totp_new(id_totp_t *t, id_totp_algo_t algo, unsigned digits,
    id_err_t *err);

/*
 * The otpauth:// URI for authenticator apps (issuer and account are
 * percent-encoded; secret in base32).
 */
int id_totp_uri(const id_totp_t *t, const char *issuer, const char *account,
    char *out, size_t size, id_err_t *err);

/*
 * Render uri as a QR code for a terminal (UTF-8 half blocks, with quiet
 * zone) into out, NUL-terminated.
 */
int id_totp_qr(const char *uri, char *out, size_t size, id_err_t *err);

/*
 * The same QR code as an SVG element for inline HTML: a light square
 * with a quiet zone of four modules and one path of the dark modules,
 * scale pixels per module (1 to 16), shape-rendering crispEdges.  The
 * element carries no text: the page that shows it labels it.
 */
int id_totp_qr_svg(const char *uri, unsigned scale, char *out, size_t size,
    id_err_t *err);

/*
 * The secret in base32 (RFC 4648 alphabet, no padding) in groups of four
 * characters separated by spaces, for typing into an authenticator by
 * hand.  The caller wipes out.
 */
int id_totp_secret_text(const id_totp_t *t, char *out, size_t size,
    id_err_t *err);

/* The code for time now (for tests and tools). */
int id_totp_code(const id_totp_t *t, int64_t now, char *out, size_t size,
    id_err_t *err);

/*
 * Check code at time now within +-window steps.  A code whose time-step
 * counter is not greater than last_counter is ID_TOTP_REPLAY.  On
 * ID_TOTP_OK *counter is the matched counter, which the caller must store
 * as the new last_counter in the same store transaction that accepts it.
 * Returns ID_TOTP_OK, ID_TOTP_BAD, ID_TOTP_REPLAY or -1.
 */
int id_totp_verify(const id_totp_t *t, const char *code, int64_t now,
    unsigned window, uint64_t last_counter, uint64_t *counter, id_err_t *err);

/* ---- keys ----------------------------------------------------------- */

typedef struct id_keys_s  id_keys_t;

typedef enum {
    ID_ALG_HS256 = 0,           /* default: trustd issues and verifies */
    ID_ALG_ES256
} id_alg_t;

/*
 * Load the keys from dir, creating missing ones when create is set (files
 * 0600, created with O_EXCL, directory 0700):
 *     secret.key          32 random bytes: seals TOTP secrets at rest
 *     session.key         the current session-token key (HS256: 32 random
 *                         bytes; ES256: PEM EC P-256)
 *     session.key.prev    the previous one, accepted until
 *                         grace_seconds after session.key's mtime
 *     assertion.key       PEM EC P-256: signs upstream assertions
 * Each key's id (kid) is the first 16 hex chars of the SHA-256 of its
 * public part (HS256: of the key).  On success *keys is the caller's (free
 * with id_keys_free()).
 */
int id_keys_load(const char *dir, id_alg_t alg, int64_t grace_seconds,
    int create, id_keys_t **keys, id_err_t *err);

void id_keys_free(id_keys_t *keys);

/*
 * Rotate: move session.key to session.key.prev and create a new
 * session.key (files only; running daemons pick it up on reload).
 */
int id_keys_rotate(const char *dir, id_alg_t alg, id_err_t *err);

/* ---- secrets at rest ------------------------------------------------ */

/*
 * Seal plain with AES-256-GCM under secret.key, binding aad (e.g. the
 * user name) so a sealed value cannot be moved to another record.  out
 * receives version byte, nonce, ciphertext and tag; *outlen its length.
 */
int id_seal(const id_keys_t *keys, const uint8_t *plain, size_t len,
    const char *aad, uint8_t *out, size_t size, size_t *outlen,
    id_err_t *err);

/*
 * Open what id_seal() made; fails on any tampering or a wrong key.  While
 * secret.key.prev exists (a rotation of secret.key in progress) a value
 * sealed under either key opens.
 */
int id_unseal(const id_keys_t *keys, const uint8_t *sealed, size_t len,
    const char *aad, uint8_t *out, size_t size, size_t *outlen,
    id_err_t *err);

/* Open a sealed value (either key) and seal it again under secret.key. */
int id_reseal(const id_keys_t *keys, const uint8_t *sealed, size_t len,
    const char *aad, uint8_t *out, size_t size, size_t *outlen,
    id_err_t *err);

/*
 * Rotating secret.key (the key that seals TOTP secrets), in three steps
 * that can each be repeated after a crash:
 *   1. id_keys_rotate_secret(): secret.key becomes secret.key.prev and a
 *      new secret.key is written (refused while secret.key.prev exists);
 *      loaders now open values sealed under either;
 *   2. every sealed value is re-sealed (store_user_reseal() + id_reseal()),
 *      in one store transaction;
 *   3. id_keys_drop_prev_secret() removes secret.key.prev.
 * A running trustd must reload its keys between 1 and 2.
 */
int id_keys_rotate_secret(const char *dir, id_err_t *err);
int id_keys_drop_prev_secret(const char *dir, id_err_t *err);

/* 1 while the loaded keys include secret.key.prev. */
int id_keys_has_prev_secret(const id_keys_t *keys);

/* ---- session tokens ------------------------------------------------- */

typedef struct {
    char        sid[ID_SID_LEN + 1];
    char        user[ID_NAME_MAX];
    int64_t     iat;
    int64_t     nbf;
    int64_t     exp;
    uint8_t     cnf_fp[ID_FP_LEN];  /* device binding (x5t#S256) */
    int         has_cnf;
} id_claims_t;

#define ID_TOKEN_OK         0
#define ID_TOKEN_INVALID    1   /* refused; err->msg says why */

/* A new random session id: ID_SID_LEN lowercase hex characters. */
int id_new_sid(char *out, size_t size, id_err_t *err);

/*
 * Issue a session token for *claims with the current session key:
 * header {"alg": pinned, "typ": "JWT", "kid": ...}; claims sid, sub, iat,
 * nbf, exp, and cnf {"x5t#S256": base64url(fp)} when has_cnf.
 */
int id_token_issue(const id_keys_t *keys, const id_claims_t *claims,
    char *out, size_t size, id_err_t *err);

/*
 * Verify a session token at time now.  The header is parsed first and a
 * token whose alg is not exactly the pinned algorithm (including "none")
 * is refused before any signature work; kid selects the current or, within
 * its grace period, the previous key; the signature is checked with
 * libjwt; exp, nbf and iat are checked (60 s leeway for nbf/iat, none for
 * exp); sid and sub must be well-formed.  Returns ID_TOKEN_OK with *claims
 * filled, ID_TOKEN_INVALID with the reason in err, or -1.
 */
int id_token_verify(const id_keys_t *keys, const char *token, size_t len,
    int64_t now, id_claims_t *claims, id_err_t *err);

/* ---- verified-token cache ------------------------------------------- */

/*
 * A fixed-size, allocation-free (after creation) table remembering tokens
 * that verified, keyed by the SHA-256 of the token, until their exp: the
 * hot path does no repeated signature work.  Revocation is checked by the
 * caller in the store on every decision, not here.  Not thread-safe: one
 * cache per thread.
 */
typedef struct id_token_cache_s  id_token_cache_t;

int id_token_cache_create(size_t slots, id_token_cache_t **out,
    id_err_t *err);
void id_token_cache_free(id_token_cache_t *c);

/* 1 and *claims if token is remembered and not expired at now, else 0. */
int id_token_cache_get(id_token_cache_t *c, const char *token, size_t len,
    int64_t now, id_claims_t *claims);

void id_token_cache_put(id_token_cache_t *c, const char *token, size_t len,
    const id_claims_t *claims);

/* Verify through the cache: the same results as id_token_verify(). */
int id_token_check(const id_keys_t *keys, id_token_cache_t *c,
    const char *token, size_t len, int64_t now, id_claims_t *claims,
    id_err_t *err);

/* ---- upstream assertion --------------------------------------------- */

/*
 * A short-lived ES256 JWT for the upstream application, signed with
 * assertion.key: iss "ztgate", aud, sub (user), groups, sid, device (id or
 * absent), amr (methods), acr (the NIST SP 800-63 authenticator assurance
 * level aal 1..3 as "http://idmanagement.gov/ns/assurance/aal/N"; absent
 * for 0), iat, exp = now + ttl.
 */
int id_assertion_issue(const id_keys_t *keys, const char *aud,
    const char *user, const char *const *groups, size_t ngroups,
    const char *sid, const char *device_id, const char *const *amr,
    size_t namr, int aal, int64_t now, int ttl, char *out, size_t size,
    id_err_t *err);

/* What a verified assertion says (id_assertion_verify()). */
#define ID_ASSERTION_GROUPS_MAX     16
#define ID_ASSERTION_AMR_MAX        8

typedef struct {
    char        sub[ID_NAME_MAX];
    char        sid[ID_SID_LEN + 1];
    char        groups[ID_ASSERTION_GROUPS_MAX][ID_NAME_MAX];
    size_t      ngroups;
    char        amr[ID_ASSERTION_AMR_MAX][16];
    size_t      namr;
    char        device[160];            /* "" when not device-bound */
    int64_t     iat;
    int64_t     exp;
} id_assertion_t;

#define ID_ASSERTION_OK         0
#define ID_ASSERTION_INVALID    1   /* refused; err->msg says why */

/*
 * Verify an assertion made by id_assertion_issue() (what an upstream
 * application behind the gateway does) at time now for the audience aud
 * (compared without regard to case).  The compact form is checked
 * strictly and the header parsed first: alg must be exactly ES256 (any
 * other, "none" included, is refused before any signature work), typ
 * "JWT" if present, no crit, and kid the kid of keys' assertion key; the
 * ES256 signature must have its exact length and verify with that key's
 * public half.  Then the claims: iss "ztgate", aud, exp with now < exp +
 * leeway, iat <= now + leeway, sub and sid well-formed, groups and amr
 * arrays of at most ID_ASSERTION_GROUPS_MAX / ID_ASSERTION_AMR_MAX short
 * printable strings, device a string if present.  Returns
 * ID_ASSERTION_OK with *out filled, ID_ASSERTION_INVALID with the reason
 * in err, or -1.
 */
int id_assertion_verify(const id_keys_t *keys, const char *token,
    size_t len, const char *aud, int64_t now, int leeway,
    id_assertion_t *out, id_err_t *err);

/* The JWKS document (JSON) with the assertion public key. */
int id_jwks(const id_keys_t *keys, char *out, size_t size, id_err_t *err);

/* The pinned session-token algorithm's name ("HS256" or "ES256"). */
const char *id_alg_name(id_alg_t alg);

#endif /* ZT_IDENTITY_H */
