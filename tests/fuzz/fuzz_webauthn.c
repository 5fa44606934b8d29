/*
 * Fuzz target for WebAuthn verification (trustd/id_webauthn.c): the
 * clientDataJSON, CBOR attestation objects, authenticator data, COSE keys
 * and signatures a browser posts to the portal.
 *
 * Input: one byte of mode (low bits: 0 register, 1 assert, 2 COSE key,
 * 3 base64url; bit 0x80: user verification required), then the parts,
 * each as a big-endian u16 length and its bytes:
 *     register: clientDataJSON, attestationObject
 *     assert:   COSE key, clientDataJSON, authenticatorData, signature,
 *               and 4 bytes of the stored sign count
 * The relying party expects RP ID "localhost", origin "https://localhost"
 * and the challenge 00 01 .. 1f.  Seeds are real ceremonies
 * (gen_webauthn_corpus.py).  Invariants: only the documented results,
 * and what a success fills is within its bounds and self-consistent.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "id_internal.h"
#include "id_webauthn.h"
#include "fuzz.h"

typedef struct {
    const uint8_t  *p;
    const uint8_t  *end;
} fuzz_rd_t;

static int fuzz_part(fuzz_rd_t *r, const uint8_t **part, size_t *len);
static void fuzz_say(const char *what, int rc, const id_err_t *err);


/* ZT_FUZZ_VERBOSE=1: say how each input ended (for writing seeds). */
static void
fuzz_say(const char *what, int rc, const id_err_t *err)
{
    if (getenv("ZT_FUZZ_VERBOSE") != NULL) {
        fprintf(stderr, "%s: %d %s\n", what, rc,
                rc == ID_WA_OK ? "ok" : err->msg);
    }
}


static int
fuzz_part(fuzz_rd_t *r, const uint8_t **part, size_t *len)
{
    size_t  n;

    if (r->end - r->p < 2) {
        return -1;
    }

    n = (size_t) r->p[0] << 8 | r->p[1];
    r->p += 2;

    if ((size_t) (r->end - r->p) < n) {
        return -1;
    }

    *part = r->p;
    *len = n;
    r->p += n;

    return 0;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const  origins[] = { "https://localhost" };
    id_wa_expect_t            exp;
    id_wa_reg_t               reg;
    id_wa_auth_t              auth;
    id_err_t                  err;
    fuzz_rd_t                 r;
    const uint8_t            *cd, *ao, *cose, *ad, *sig, *cnt;
    size_t                    cd_len, ao_len, cose_len, ad_len, sig_len;
    size_t                    cnt_len;
    uint8_t                   challenge[32], out[512];
    char                      text[1024];
    uint32_t                  stored;
    unsigned                  i;
    int                       rc, alg;

    if (size < 1) {
        return 0;
    }

    for (i = 0; i < sizeof(challenge); i++) {
        challenge[i] = (uint8_t) i;
    }

    memset(&exp, 0, sizeof(exp));
    exp.rp_id = "localhost";
    exp.origins = origins;
    exp.norigins = 1;
    exp.challenge = challenge;
    exp.challenge_len = sizeof(challenge);
    exp.require_uv = (data[0] & 0x80) != 0;

    r.p = data + 1;
    r.end = data + size;
    err.msg[0] = '\0';

    switch (data[0] & 0x03) {

    case 0:
        if (fuzz_part(&r, &cd, &cd_len) != 0
            || fuzz_part(&r, &ao, &ao_len) != 0)
        {
            return 0;
        }

        rc = id_webauthn_register(&exp, cd, cd_len, ao, ao_len, &reg, &err);
        fuzz_say("register", rc, &err);

        if (rc == ID_WA_OK) {
            if (reg.cred_id_len == 0 || reg.cred_id_len > ID_WA_CRED_MAX
                || reg.cose_len == 0 || reg.cose_len > ID_WA_COSE_MAX
                || memchr(reg.fmt, '\0', sizeof(reg.fmt)) == NULL
                || !(reg.flags & ID_WA_FLAG_UP)
                || (exp.require_uv && !(reg.flags & ID_WA_FLAG_UV))
                || id_webauthn_cose_check(reg.cose, reg.cose_len, &alg,
                                          &err) != ID_WA_OK
                || alg != reg.alg)
            {
                abort();
            }

        } else if (rc != ID_WA_INVALID && rc != -1) {
            abort();
        }
        break;

    case 1:
        if (fuzz_part(&r, &cose, &cose_len) != 0
            || fuzz_part(&r, &cd, &cd_len) != 0
            || fuzz_part(&r, &ad, &ad_len) != 0
            || fuzz_part(&r, &sig, &sig_len) != 0
            || fuzz_part(&r, &cnt, &cnt_len) != 0 || cnt_len != 4)
        {
            return 0;
        }

        stored = (uint32_t) cnt[0] << 24 | (uint32_t) cnt[1] << 16
                 | (uint32_t) cnt[2] << 8 | cnt[3];

        rc = id_webauthn_assert(&exp, cose, cose_len, stored, cd, cd_len,
                                ad, ad_len, sig, sig_len, &auth, &err);
        fuzz_say("assert", rc, &err);

        if (rc == ID_WA_OK) {
            if (!(auth.flags & ID_WA_FLAG_UP)
                || (exp.require_uv && !(auth.flags & ID_WA_FLAG_UV))
                || ((auth.sign_count != 0 || stored != 0)
                    && auth.sign_count <= stored))
            {
                abort();
            }

        } else if (rc == ID_WA_COUNTER) {
            if (auth.sign_count > stored) {
                abort();
            }

        } else if (rc != ID_WA_INVALID && rc != -1) {
            abort();
        }
        break;

    case 2:
        rc = id_webauthn_cose_check(data + 1, size - 1, &alg, &err);
        if (rc == ID_WA_OK) {
            if (strcmp(id_webauthn_alg_name(alg), "?") == 0) {
                abort();
            }
        } else if (rc != ID_WA_INVALID && rc != -1) {
            abort();
        }
        break;

    default:
        /* decode, and what decodes encodes back to the same text */
        if (size - 1 >= sizeof(text)) {
            return 0;
        }
        memcpy(text, data + 1, size - 1);
        text[size - 1] = '\0';
        if (strlen(text) != size - 1) {
            return 0;
        }

        rc = id_webauthn_b64_decode(text, out, sizeof(out));
        if (rc >= 0) {
            char  back[1024];

            if (id_webauthn_b64_encode(out, (size_t) rc, back, sizeof(back))
                < 0 || strcmp(back, text) != 0)
            {
                abort();
            }
        }
        break;
    }

    return 0;
}
