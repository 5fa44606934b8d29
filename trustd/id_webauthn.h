/*
 * WebAuthn / FIDO2 verification (W3C Web Authentication level 2, sections
 * 7.1 and 7.2): registration (attestation "none" and "packed") and
 * authentication ceremonies, COSE public keys ES256, EdDSA and RS256, and
 * the single-use challenges both ceremonies need.
 *
 * CBOR is decoded with libcbor, JSON with jansson, keys and signatures are
 * OpenSSL's: nothing here is hand-written cryptography.  No store access
 * and no I/O: the caller keeps credentials (store_webauthn_*) and applies
 * what a verification reports (a new sign count, a counter regression).
 *
 * Conventions as identity.h: 0 (ID_WA_OK) on success, ID_WA_INVALID with
 * the reason in err->msg for a ceremony refused, -1 for an internal error.
 */

#ifndef ZT_ID_WEBAUTHN_H
#define ZT_ID_WEBAUTHN_H

#include <stddef.h>
#include <stdint.h>

#include "identity.h"

#define ID_WA_OK                0
#define ID_WA_INVALID           1   /* refused; err->msg says why */
#define ID_WA_COUNTER           2   /* signature good, sign count did not
                                       increase: a possible clone */

#define ID_WA_CHALLENGE_LEN     32
#define ID_WA_CHALLENGE_B64     44  /* base64url + NUL */
#define ID_WA_CRED_MAX          256 /* credential id bytes */
#define ID_WA_COSE_MAX          600 /* COSE_Key bytes (RSA up to 4096) */
#define ID_WA_ORIGINS_MAX       8

/* COSE algorithm identifiers (IANA COSE registry). */
#define ID_WA_ALG_ES256         (-7)
#define ID_WA_ALG_EDDSA         (-8)
#define ID_WA_ALG_RS256         (-257)

/* authenticatorData flags */
#define ID_WA_FLAG_UP           0x01
#define ID_WA_FLAG_UV           0x04
#define ID_WA_FLAG_AT           0x40
#define ID_WA_FLAG_ED           0x80

/* What the relying party expects of a ceremony. */
typedef struct {
    const char         *rp_id;              /* e.g. "login.example.gov" */
    const char *const  *origins;            /* exact, e.g. "https://..." */
    size_t              norigins;
    const uint8_t      *challenge;          /* what the server issued */
    size_t              challenge_len;
    int                 require_uv;         /* UV flag required */
} id_wa_expect_t;

/* A verified registration: what to keep for the credential. */
typedef struct {
    uint8_t     cred_id[ID_WA_CRED_MAX];
    size_t      cred_id_len;
    uint8_t     cose[ID_WA_COSE_MAX];       /* credentialPublicKey as sent */
    size_t      cose_len;
    int         alg;                        /* ID_WA_ALG_* */
    uint32_t    sign_count;
    uint8_t     flags;
    uint8_t     aaguid[16];
    char        fmt[16];                    /* "none" or "packed" */
} id_wa_reg_t;

/* A verified assertion. */
typedef struct {
    uint32_t    sign_count;                 /* the authenticator's new one */
    uint8_t     flags;                      /* ID_WA_FLAG_* */
} id_wa_auth_t;

/*
 * Verify a registration: clientDataJSON (type "webauthn.create", the
 * challenge, an origin that is exactly one of exp->origins, crossOrigin
 * not true) and attestationObject (CBOR map of fmt, attStmt, authData;
 * rpIdHash is SHA-256 of exp->rp_id; UP set, UV when exp->require_uv;
 * attested credential data present with a supported COSE key; fmt "none"
 * with an empty attStmt, or "packed": self attestation verified with the
 * credential key, or x5c whose leaf certificate's key verifies the
 * signature; the leaf is not chained to a trust anchor).  Returns
 * ID_WA_OK with *out filled, ID_WA_INVALID or -1.
 */
int id_webauthn_register(const id_wa_expect_t *exp,
    const uint8_t *client_data, size_t client_data_len,
    const uint8_t *att_obj, size_t att_obj_len, id_wa_reg_t *out,
    id_err_t *err);

/*
 * Verify an assertion by the credential whose COSE key is cose (as stored
 * at registration) and whose last sign count is stored_count:
 * clientDataJSON (type "webauthn.get", challenge, origin), authenticator
 * data (rpIdHash, UP, UV when required) and the signature over authData
 * || SHA-256(clientDataJSON).  When the signature verifies but either
 * count is non-zero and the new count is not greater than stored_count,
 * the result is ID_WA_COUNTER (out filled): the caller refuses the
 * sign-in, audits it and suspends the credential.  Returns ID_WA_OK,
 * ID_WA_COUNTER, ID_WA_INVALID or -1.
 */
int id_webauthn_assert(const id_wa_expect_t *exp, const uint8_t *cose,
    size_t cose_len, uint32_t stored_count,
    const uint8_t *client_data, size_t client_data_len,
    const uint8_t *auth_data, size_t auth_data_len,
    const uint8_t *sig, size_t sig_len, id_wa_auth_t *out, id_err_t *err);

/*
 * Check that cose is a supported COSE public key; *alg receives its
 * algorithm.  ID_WA_OK, ID_WA_INVALID or -1.
 */
int id_webauthn_cose_check(const uint8_t *cose, size_t len, int *alg,
    id_err_t *err);

/* The name of a COSE algorithm ("ES256", "EdDSA", "RS256", "?"). */
const char *id_webauthn_alg_name(int alg);

/*
 * Unpadded base64url, the form browsers' ArrayBuffers travel in: encode
 * returns the length written (NUL-terminated) or -1; decode is strict and
 * returns the decoded length or -1.
 */
int id_webauthn_b64_encode(const uint8_t *in, size_t len, char *out,
    size_t size);
int id_webauthn_b64_decode(const char *in, uint8_t *out, size_t size);

/* ---- challenges ----------------------------------------------------- */

typedef enum {
    ID_WA_CEREMONY_REGISTER = 1,
    ID_WA_CEREMONY_LOGIN,
    ID_WA_CEREMONY_STEPUP
} id_wa_ceremony_t;

/*
 * Outstanding challenges: a fixed table guarded by its own mutex, safe to
 * share between the portal's threads.  Each challenge is bound to a user,
 * a ceremony and a binding string (a session id, an enrollment token
 * hash: whatever ties it to the request that asked for it), expires ttl
 * seconds after issue and is consumed by the first id_wa_challenge_take()
 * that names it, whether or not the rest matches.
 */
typedef struct id_wa_challenges_s  id_wa_challenges_t;

int id_wa_challenges_create(size_t slots, id_wa_challenges_t **out,
    id_err_t *err);
void id_wa_challenges_free(id_wa_challenges_t *c);

/*
 * Issue a fresh random challenge: its bytes in out (ID_WA_CHALLENGE_LEN)
 * and its base64url form in b64 (ID_WA_CHALLENGE_B64).  When the table is
 * full the entry closest to expiry is replaced.  0 or -1.
 */
int id_wa_challenge_new(id_wa_challenges_t *c, const char *user,
    id_wa_ceremony_t kind, const char *bind, int64_t now, int ttl,
    uint8_t out[ID_WA_CHALLENGE_LEN], char b64[ID_WA_CHALLENGE_B64],
    id_err_t *err);

/*
 * Consume the challenge whose base64url form is b64.  ID_WA_OK with its
 * bytes in out when it was outstanding, not expired at now, and issued
 * for this user, ceremony and binding; ID_WA_INVALID otherwise (unknown,
 * already used, expired, or bound to something else).
 */
int id_wa_challenge_take(id_wa_challenges_t *c, const char *b64,
    const char *user, id_wa_ceremony_t kind, const char *bind, int64_t now,
    uint8_t out[ID_WA_CHALLENGE_LEN], id_err_t *err);

#endif /* ZT_ID_WEBAUTHN_H */
