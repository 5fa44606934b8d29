/*
 * ztctl user webauthn-enroll / webauthn-list / webauthn-remove: staff
 * side of WebAuthn security keys (docs/webauthn.md).  The registration
 * itself happens in the user's browser on the portal; staff hand out a
 * one-time enrollment code, of which the store keeps only a hash.
 */

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "trustd/config.h"
#include "trustd/id_webauthn.h"
#include "trustd/store.h"
#include "ztctl.h"


#define ZTCTL_WA_CODE_BYTES     32
#define ZTCTL_WA_CODE_TTL       (15 * 60)

typedef struct {
    json_t     *json;
    int         count;
} ztctl_wa_list_t;

static int ztctl_wa_list_cb(const store_webauthn_t *c, void *arg);
static void ztctl_wa_origin(ztctl_t *ctl, char *out, size_t size);


/* The first webauthn_origin of the configuration, or "". */
static void
ztctl_wa_origin(ztctl_t *ctl, char *out, size_t size)
{
    config_t      *cfg;
    config_err_t   cerr;

    out[0] = '\0';

    cfg = malloc(sizeof(*cfg));
    if (cfg == NULL) {
        return;
    }

    if (config_load(ctl->config_path, cfg, &cerr) == 0
        && cfg->nwebauthn_origins > 0)
    {
        snprintf(out, size, "%s", cfg->webauthn_origins[0]);
    }

    free(cfg);
}


int
ztctl_user_webauthn_enroll(ztctl_t *ctl, const ztctl_cmd_t *cmd, int argc,
    char **argv)
{
    store_err_t  se;
    uint8_t      rnd[ZTCTL_WA_CODE_BYTES], hash[STORE_WA_TOKEN_LEN];
    char         code[2 * ZTCTL_WA_CODE_BYTES + 1], origin[256];
    char         expires[32];
    int64_t      until;
    size_t       i;
    int          json, rc;

    if (ztctl_simple_opts(ctl, cmd, argc, argv, &json, &rc)) {
        return rc;
    }

    if (argc - optind != 1) {
        return ztctl_usage_error(ctl, cmd, "expected NAME");
    }

    rc = ztctl_open(ctl, 1);
    if (rc != ZTCTL_OK) {
        return rc;
    }

    if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
        fprintf(stderr, "ztctl: no randomness for the enrollment code\n");
        return ZTCTL_FAILED;
    }

    for (i = 0; i < sizeof(rnd); i++) {
        snprintf(code + 2 * i, 3, "%02x", rnd[i]);
    }

    OPENSSL_cleanse(rnd, sizeof(rnd));

    /* the portal hashes the code as typed: its hex text */
    if (EVP_Digest(code, strlen(code), hash, NULL, EVP_sha256(), NULL) != 1)
    {
        fprintf(stderr, "ztctl: SHA-256 failed\n");
        return ZTCTL_FAILED;
    }

    until = (int64_t) time(NULL) + ZTCTL_WA_CODE_TTL;

    rc = store_webauthn_code_add(ctl->store, argv[optind], hash, until,
                                 ctl->actor, &se);
    if (rc == STORE_NOTFOUND) {
        fprintf(stderr, "ztctl: %s\n", se.msg);
        return ZTCTL_NOTFOUND;
    }

    if (rc != 0) {
        return ztctl_store_failed(&se);
    }

    ztctl_wa_origin(ctl, origin, sizeof(origin));
    ztctl_time(until, expires, sizeof(expires));

    if (json) {
        json_t  *j;
        char     url[512];

        snprintf(url, sizeof(url), "%s/zt/webauthn/register?token=%s",
                 origin, code);
        j = json_pack("{s:s,s:s,s:s,s:I}", "user", argv[optind], "code",
                      code, "url", url, "expires", (json_int_t) until);
        return ztctl_json_print(j);
    }

    printf("Security key enrollment for %s (single use, valid until %s):\n"
           "  %s/zt/webauthn/register?token=%s\n"
           "Give this link to the user over a trusted channel; they sign in\n"
           "with their password and register the key in the browser.\n",
           argv[optind], expires, origin, code);

    return ZTCTL_OK;
}


static int
ztctl_wa_list_cb(const store_webauthn_t *c, void *arg)
{
    ztctl_wa_list_t  *l = arg;
    char              id[2 * STORE_WA_ID_MAX], created[32], used[32];

    if (id_webauthn_b64_encode(c->id, c->id_len, id, sizeof(id)) < 0) {
        snprintf(id, sizeof(id), "?");
    }

    l->count++;

    if (l->json != NULL) {
        return json_array_append_new(l->json,
                   json_pack("{s:s,s:s,s:s,s:s,s:I,s:I,s:I,s:b}", "id", id,
                             "user", c->user, "name", c->name, "alg",
                             id_webauthn_alg_name(c->alg), "sign_count",
                             (json_int_t) c->sign_count, "created",
                             (json_int_t) c->created_at, "last_used",
                             (json_int_t) c->last_used, "suspended",
                             c->suspended)) != 0;
    }

    ztctl_time(c->created_at, created, sizeof(created));
    ztctl_time(c->last_used, used, sizeof(used));

    printf("%-24.24s %-20.20s %-6s %10u %-20s %-20s %s\n", id, c->name,
           id_webauthn_alg_name(c->alg), c->sign_count, created,
           c->last_used != 0 ? used : "never",
           c->suspended ? "SUSPENDED" : "active");

    return 0;
}


int
ztctl_user_webauthn_list(ztctl_t *ctl, const ztctl_cmd_t *cmd, int argc,
    char **argv)
{
    ztctl_wa_list_t  l;
    store_err_t      se;
    int              json, rc;

    if (ztctl_simple_opts(ctl, cmd, argc, argv, &json, &rc)) {
        return rc;
    }

    if (argc - optind != 1) {
        return ztctl_usage_error(ctl, cmd, "expected NAME");
    }

    rc = ztctl_open(ctl, 0);
    if (rc != ZTCTL_OK) {
        return rc;
    }

    l.json = json ? json_array() : NULL;
    l.count = 0;

    if (!json) {
        printf("%-24s %-20s %-6s %10s %-20s %-20s %s\n", "CREDENTIAL",
               "NAME", "ALG", "COUNT", "CREATED", "LAST USED", "STATE");
    }

    if (store_webauthn_list(ctl->store, argv[optind], ztctl_wa_list_cb, &l,
                            &se) != 0)
    {
        json_decref(l.json);
        return ztctl_store_failed(&se);
    }

    if (json) {
        return ztctl_json_print(l.json);
    }

    return ZTCTL_OK;
}


int
ztctl_user_webauthn_remove(ztctl_t *ctl, const ztctl_cmd_t *cmd, int argc,
    char **argv)
{
    store_err_t  se;
    uint8_t      id[STORE_WA_ID_MAX];
    int          json, n, rc;

    if (ztctl_simple_opts(ctl, cmd, argc, argv, &json, &rc)) {
        return rc;
    }

    if (argc - optind != 2) {
        return ztctl_usage_error(ctl, cmd, "expected NAME CREDENTIAL");
    }

    n = id_webauthn_b64_decode(argv[optind + 1], id, sizeof(id));
    if (n <= 0) {
        return ztctl_usage_error(ctl, cmd, "CREDENTIAL: expected the id "
                                 "that webauthn-list shows");
    }

    rc = ztctl_open(ctl, 1);
    if (rc != ZTCTL_OK) {
        return rc;
    }

    rc = store_webauthn_remove(ctl->store, argv[optind], id, (size_t) n,
                               ctl->actor, &se);
    if (rc == STORE_NOTFOUND) {
        fprintf(stderr, "ztctl: %s\n", se.msg);
        return ZTCTL_NOTFOUND;
    }

    if (rc != 0) {
        return ztctl_store_failed(&se);
    }

    printf("security key %s of %s removed\n", argv[optind + 1],
           argv[optind]);

    return ZTCTL_OK;
}
