/*
 * The verified-token cache.  See identity.h for the contract.
 *
 * A power-of-two table of slots keyed by SHA-256(token); a token may live
 * in any of ID_CACHE_WAYS consecutive slots from the one its digest
 * selects, and a new entry takes an empty slot there or else the one that
 * expires first.  Besides the claims a slot keeps until when it may be
 * used (exp, or the end of the previous key's grace period when that key
 * verified it) and which id_keys_load() generation verified it:
 * id_token_check() only trusts entries its own key set verified, so a
 * reload that drops a key also drops, in effect, the tokens it signed.
 * Entries stored with id_token_cache_put() carry generation 0 and are the
 * caller's word; every key set accepts them.
 */

#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include "id_internal.h"


#define ID_CACHE_WAYS       4
#define ID_CACHE_MIN        ID_CACHE_WAYS
#define ID_CACHE_MAX        ((size_t) 1 << 20)
#define ID_DIGEST_LEN       32


typedef struct {
    uint8_t      digest[ID_DIGEST_LEN];
    int64_t      until;
    uint64_t     gen;
    int          used;
    id_claims_t  claims;
} id_cache_slot_t;

struct id_token_cache_s {
    size_t            mask;
    EVP_MD           *md;
    EVP_MD_CTX       *ctx;
    id_cache_slot_t  *slots;
};


static int id_cache_digest(id_token_cache_t *c, const char *token,
    size_t len, uint8_t *digest);
static id_cache_slot_t *id_cache_find(id_token_cache_t *c,
    const uint8_t *digest, int64_t now, int any_gen, uint64_t gen);
static void id_cache_store(id_token_cache_t *c, const uint8_t *digest,
    const id_claims_t *claims, int64_t until, uint64_t gen);


int
id_token_cache_create(size_t slots, id_token_cache_t **out, id_err_t *err)
{
    int                rc;
    size_t             n;
    id_token_cache_t  *c;

    rc = -1;
    c = NULL;

    if (out == NULL) {
        id_seterr(err, "id_token_cache_create: NULL argument");
        return -1;
    }

    *out = NULL;

    if (slots == 0 || slots > ID_CACHE_MAX) {
        id_seterr(err, "token cache: %zu slots (1 to %zu allowed)", slots,
                  ID_CACHE_MAX);
        return -1;
    }

    for (n = ID_CACHE_MIN; n < slots; n <<= 1) {
        /* void */
    }

    c = OPENSSL_zalloc(sizeof(*c));
    if (c == NULL) {
        id_ssl_err(err, "OPENSSL_zalloc");
        goto done;
    }

    c->mask = n - 1;

    c->slots = OPENSSL_zalloc(n * sizeof(id_cache_slot_t));
    if (c->slots == NULL) {
        id_ssl_err(err, "OPENSSL_zalloc(token cache)");
        goto done;
    }

    /* Fetched once: an implicit fetch per token would cost a lock. */
    c->md = EVP_MD_fetch(NULL, "SHA256", NULL);
    if (c->md == NULL) {
        id_ssl_err(err, "EVP_MD_fetch(SHA256)");
        goto done;
    }

    c->ctx = EVP_MD_CTX_new();
    if (c->ctx == NULL) {
        id_ssl_err(err, "EVP_MD_CTX_new");
        goto done;
    }

    *out = c;
    c = NULL;
    rc = 0;

done:

    id_token_cache_free(c);

    return rc;
}


void
id_token_cache_free(id_token_cache_t *c)
{
    if (c == NULL) {
        return;
    }

    if (c->slots != NULL) {
        OPENSSL_clear_free(c->slots, (c->mask + 1) * sizeof(id_cache_slot_t));
    }

    EVP_MD_CTX_free(c->ctx);
    EVP_MD_free(c->md);
    OPENSSL_free(c);
}


static int
id_cache_digest(id_token_cache_t *c, const char *token, size_t len,
    uint8_t *digest)
{
    unsigned int  n;

    if (EVP_DigestInit_ex2(c->ctx, c->md, NULL) != 1
        || EVP_DigestUpdate(c->ctx, token, len) != 1
        || EVP_DigestFinal_ex(c->ctx, digest, &n) != 1
        || n != ID_DIGEST_LEN)
    {
        ERR_clear_error();
        return -1;
    }

    return 0;
}


static id_cache_slot_t *
id_cache_find(id_token_cache_t *c, const uint8_t *digest, int64_t now,
    int any_gen, uint64_t gen)
{
    size_t            i, w;
    uint64_t          h;
    id_cache_slot_t  *s;

    memcpy(&h, digest, sizeof(h));
    i = (size_t) h;

    for (w = 0; w < ID_CACHE_WAYS; w++) {
        s = &c->slots[(i + w) & c->mask];

        if (!s->used
            || CRYPTO_memcmp(s->digest, digest, ID_DIGEST_LEN) != 0)
        {
            continue;
        }

        if (now >= s->until) {
            return NULL;
        }

        if (!any_gen && s->gen != 0 && s->gen != gen) {
            return NULL;
        }

        return s;
    }

    return NULL;
}


static void
id_cache_store(id_token_cache_t *c, const uint8_t *digest,
    const id_claims_t *claims, int64_t until, uint64_t gen)
{
    size_t            i, w;
    uint64_t          h;
    id_cache_slot_t  *s, *victim;

    memcpy(&h, digest, sizeof(h));
    i = (size_t) h;
    victim = NULL;

    for (w = 0; w < ID_CACHE_WAYS; w++) {
        s = &c->slots[(i + w) & c->mask];

        if (s->used
            && CRYPTO_memcmp(s->digest, digest, ID_DIGEST_LEN) == 0)
        {
            victim = s;
            break;
        }

        if (victim == NULL || (victim->used && !s->used)
            || (victim->used && s->used && s->until < victim->until))
        {
            victim = s;
        }
    }

    memcpy(victim->digest, digest, ID_DIGEST_LEN);
    victim->until = until;
    victim->gen = gen;
    victim->used = 1;
    victim->claims = *claims;
}


int
id_token_cache_get(id_token_cache_t *c, const char *token, size_t len,
    int64_t now, id_claims_t *claims)
{
    uint8_t           digest[ID_DIGEST_LEN];
    id_cache_slot_t  *s;

    if (c == NULL || token == NULL || claims == NULL || len > ID_TOKEN_MAX
        || id_cache_digest(c, token, len, digest) != 0)
    {
        return 0;
    }

    s = id_cache_find(c, digest, now, 1, 0);
    if (s == NULL) {
        return 0;
    }

    *claims = s->claims;

    return 1;
}


void
id_token_cache_put(id_token_cache_t *c, const char *token, size_t len,
    const id_claims_t *claims)
{
    uint8_t  digest[ID_DIGEST_LEN];

    if (c == NULL || token == NULL || claims == NULL || len > ID_TOKEN_MAX
        || id_cache_digest(c, token, len, digest) != 0)
    {
        return;
    }

    id_cache_store(c, digest, claims, claims->exp, 0);
}


int
id_token_check(const id_keys_t *keys, id_token_cache_t *c,
    const char *token, size_t len, int64_t now, id_claims_t *claims,
    id_err_t *err)
{
    int               rc, have;
    int64_t           until;
    uint8_t           digest[ID_DIGEST_LEN];
    id_cache_slot_t  *s;

    if (keys == NULL || c == NULL || token == NULL || claims == NULL) {
        id_seterr(err, "id_token_check: NULL argument");
        return -1;
    }

    have = (len <= ID_TOKEN_MAX
            && id_cache_digest(c, token, len, digest) == 0);

    if (have) {
        s = id_cache_find(c, digest, now, 0, keys->gen);

        if (s != NULL) {
            *claims = s->claims;
            return ID_TOKEN_OK;
        }
    }

    rc = id_token_verify_until(keys, token, len, now, claims, &until, err);

    if (rc == ID_TOKEN_OK && have) {
        id_cache_store(c, digest, claims, until, keys->gen);
    }

    return rc;
}
