/*
 * The decision: given a request from the module, answer allow, deny, login
 * or step-up.  Device facts come from the store; with a policy configured
 * the policy decides, otherwise the built-in rule does: with identity on, a
 * signed-in user is required (login otherwise); without it, an active
 * enrolled device whose certificate nginx verified.
 * A revoked or expired device is denied before any policy is consulted.
 */

#ifndef ZT_DECIDE_H
#define ZT_DECIDE_H

#include <stdint.h>

#include "zt_wire.h"
#include "policy/policy.h"
#include "identity.h"
#include "store.h"
#include "score.h"
#include "behaviour.h"
#include "blocklist.h"

#define DECIDE_ASSERTIONS   64      /* remembered upstream assertions */
#define DECIDE_TOUCH_MAX    256     /* sessions seen, pending a touch */
#define DECIDE_TOUCH_EVERY  60      /* seconds between last_seen updates */

/*
 * Per-caller decision state, reused for every decision so that the hot
 * path does not allocate: the read view, and the storage the answer's
 * strings point into.  Zero it before the first use; one context per
 * thread.  Release it with decide_ctx_free().
 */
typedef struct {
    char             key[STORE_SID_LEN + 1 + 256];  /* sid + ' ' + host */
    int64_t          fresh_until;
    char             jwt[ID_TOKEN_MAX];
} decide_assertion_t;

typedef struct {
    store_view_t       *view;
    store_device_t      device;
    store_posture_t     posture;        /* valid when has_posture */
    int                 has_posture;
    int                 posture_stale;
    char                fp_hex[2 * STORE_FP_LEN + 1];
    pol_input_t         in;
    pol_decision_t      pd;
    char                reason[512];
    char                redirect[2048];

    /* identity: the session behind a token, checked in the same view */
    id_token_cache_t   *tokens;         /* created on first use */
    id_claims_t         claims;
    store_session_t     session;
    store_user_t        user;
    int                 authenticated;
    char                groups[STORE_MAX_GROUPS * STORE_NAME_MAX];
    decide_assertion_t  assertions[DECIDE_ASSERTIONS];

    /* trust inference: the signals and score of the last decision */
    store_history_t     history;        /* valid when has_history */
    int                 has_history;
    uint8_t             addr16[16];     /* source, IPv4 mapped */
    int                 has_addr;
    score_signals_t     signals;
    score_result_t      score;
    const char         *blocklist_feed; /* when blocklisted */
    char                score_text[8];
    const char         *explain_user;   /* decide_explain() only */
    int                 has_device;     /* ctx->device was found */
    store_devcache_t   *devices;        /* created on first use */
    int                 policy_used;    /* ctx->pd is this decision's */
    int                 explaining;

    /* sessions whose last_seen should move forward (see decide_touch) */
    char                touch[DECIDE_TOUCH_MAX][STORE_SID_LEN + 1];
    unsigned            ntouch;
} decide_ctx_t;

/* What the decision needs from the configuration. */
typedef struct {
    uint32_t          allow_ttl_ms; /* default, and cap for rule TTLs */
    const pol_t      *policy;       /* NULL: the built-in rule */
    const char       *portal_url;   /* "" or NULL: no sign-in portal */
    const id_keys_t  *keys;         /* NULL: identity (stage one) off */
    uint32_t          session_idle_ms;
    uint32_t          assertion_ttl_ms;
    uint32_t          posture_max_age_ms;   /* 0: posture never stale */
    size_t            device_cache;     /* devices cached, 0: none */

    /* trust inference; all may be NULL (no score, nothing listed) */
    const score_weights_t  *trust;      /* NULL: trust.score stays -1 */
    behaviour_t            *behaviour;  /* NULL: no behaviour signals */
    const blocklist_t      *blocklist;
    const blocklist_t      *trusted;    /* the trusted_network list */
} decide_conf_t;

/*
 * Decide req into *resp, within one read view of st.  Never fails: a
 * store error gives DENY 503 (fail closed) and an error-level log line.
 * Strings in *resp point into ctx and into req, and are valid until the
 * next decide() with the same ctx.  Returns resp->decision.
 */
int decide(store_t *st, const decide_conf_t *conf, const wire_req_t *req,
    wire_resp_t *resp, decide_ctx_t *ctx);

/*
 * Explain a hypothetical request with the same code as decide(): req as
 * if user (NULL: nobody) had just signed in with password and TOTP in a
 * new session bound to req's device certificate (if any).  Nothing is
 * recorded (no behaviour counters, no history).  Writes the decision,
 * the rule, the score and each signal's value, weight and contribution
 * as text lines into out (at most size bytes, NUL-terminated).  Use a
 * context of its own, not the one of live decisions.  Returns
 * resp->decision.
 */
int decide_explain(store_t *st, const decide_conf_t *conf,
    const wire_req_t *req, const char *user, wire_resp_t *resp,
    decide_ctx_t *ctx, char *out, size_t size);

/*
 * The journal record (kind STORE_AUDIT_DECISION, time now_ms) of the
 * decision decide() just made with ctx for req, answered with *resp (after
 * any change the caller made to it): the request without its query
 * string, the user and session (audit form), the device, the rule and
 * where it is, the policy version, the score and each signal's value and
 * points.  No allocation; only rec's decision part is written.
 */
void decide_journal_record(const decide_conf_t *conf, const wire_req_t *req,
    const wire_resp_t *resp, const decide_ctx_t *ctx, int64_t now_ms,
    store_audit_t *rec);

/* Release the context's view and caches.  It may be used again after. */
void decide_ctx_free(decide_ctx_t *ctx);

/*
 * Write the last_seen times of the sessions decisions have seen since the
 * previous call, in one store transaction (the idle timeout's clock: it
 * moves forward at most every DECIDE_TOUCH_EVERY seconds, and is written
 * in batches, never per request).
 */
void decide_touch(store_t *st, decide_ctx_t *ctx);

/* The same, handing the session ids to write(arg, sids, n) instead (cluster
 * mode: the follower thread records them). */
void decide_touch_with(decide_ctx_t *ctx,
    void (*write)(void *arg, const char *const *sids, size_t n), void *arg);

#endif /* ZT_DECIDE_H */
