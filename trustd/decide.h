/*
 * The decision: given a request from the module, answer allow or deny.
 * In this version the answer depends on the device certificate only.
 */

#ifndef ZT_DECIDE_H
#define ZT_DECIDE_H

#include <stdint.h>

#include "zt_wire.h"
#include "store.h"

/*
 * Per-caller decision state, reused for every decision so that the hot
 * path does not allocate: the read view, and the storage the answer's
 * strings point into.  Zero it before the first use; one context per
 * thread.  Release it with decide_ctx_free().
 */
typedef struct {
    store_view_t    *view;
    store_device_t   device;
    char             fp_hex[2 * STORE_FP_LEN + 1];
} decide_ctx_t;

/* What the decision needs from the configuration. */
typedef struct {
    uint32_t    allow_ttl_ms;
} decide_conf_t;

/*
 * Decide req into *resp, within one read view of st.  Never fails: a
 * store error gives DENY 503 (fail closed) and an error-level log line.
 * Strings in *resp point into ctx and into req, and are valid until the
 * next decide() with the same ctx.  Returns resp->decision.
 */
int decide(store_t *st, const decide_conf_t *conf, const wire_req_t *req,
    wire_resp_t *resp, decide_ctx_t *ctx);

/* Release the context's view.  The context may be used again after. */
void decide_ctx_free(decide_ctx_t *ctx);

#endif /* ZT_DECIDE_H */
