/*
 * The decision.  See decide.h.
 */

#include <arpa/inet.h>
#include <stdio.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "decide.h"
#include "log.h"


/* auth.aal as the X-ZT-AAL header value */
static const char  *const decide_aal_text[4] = { "0", "1", "2", "3" };

static void decide_set(wire_resp_t *resp, uint8_t decision, uint16_t status,
    uint16_t reason_code, const char *reason);
static void decide_header(wire_resp_t *resp, const char *name,
    const char *value);
static void decide_log(const wire_req_t *req, const wire_resp_t *resp);
static void decide_copy(char *dst, size_t size, const char *src,
    size_t len);
static int decide_device(const decide_conf_t *conf, const wire_req_t *req,
    decide_ctx_t *ctx,
    pol_device_status_t *status, store_err_t *err);
static int decide_identity(const decide_conf_t *conf, const wire_req_t *req,
    decide_ctx_t *ctx, int64_t now, store_err_t *err);
static int decide_posture(const decide_conf_t *conf,
    pol_device_status_t status, decide_ctx_t *ctx, int64_t now,
    store_err_t *err);
static pol_flag_t decide_flag(store_flag_t flag);
static const char *decide_assertion(const decide_conf_t *conf,
    const wire_req_t *req, decide_ctx_t *ctx, int64_t now);
static void decide_identity_headers(const decide_conf_t *conf,
    const wire_req_t *req, wire_resp_t *resp, decide_ctx_t *ctx,
    int64_t now);
static void decide_seen(decide_ctx_t *ctx, int64_t now);
static void decide_signin(const decide_conf_t *conf, const wire_req_t *req,
    int step_up, const char *why, wire_resp_t *resp, decide_ctx_t *ctx);
static void decide_device_headers(wire_resp_t *resp, decide_ctx_t *ctx);
static void decide_builtin(const decide_conf_t *conf, const wire_req_t *req,
    pol_device_status_t status, wire_resp_t *resp, decide_ctx_t *ctx,
    int64_t now);
static void decide_input(const wire_req_t *req, pol_device_status_t status,
    decide_ctx_t *ctx);
static int decide_urlencode(char *buf, size_t size, size_t *len,
    const char *s, size_t n);
static int decide_redirect(const decide_conf_t *conf, const wire_req_t *req,
    int step_up, decide_ctx_t *ctx);
static void decide_policy(const decide_conf_t *conf, const wire_req_t *req,
    pol_device_status_t status, wire_resp_t *resp, decide_ctx_t *ctx,
    int64_t now);
static void decide_trust(const decide_conf_t *conf,
    pol_device_status_t status, decide_ctx_t *ctx, int64_t now);
static int decide_identity_as(const decide_conf_t *conf,
    const wire_req_t *req, decide_ctx_t *ctx, int64_t now,
    store_err_t *err);
static void decide_record(const decide_conf_t *conf,
    pol_device_status_t status, const wire_resp_t *resp, decide_ctx_t *ctx,
    int64_t now);


static void
decide_set(wire_resp_t *resp, uint8_t decision, uint16_t status,
    uint16_t reason_code, const char *reason)
{
    memset(resp, 0, sizeof(*resp));
    resp->decision = decision;
    resp->status = status;
    resp->ttl_ms = 0;
    resp->reason_code = reason_code;
    resp->reason.data = reason;
    resp->reason.len = strlen(reason);
}


static void
decide_header(wire_resp_t *resp, const char *name, const char *value)
{
    wire_hdr_t  *h;

    if (resp->nheaders == WIRE_MAX_HEADERS) {
        return;
    }

    h = &resp->headers[resp->nheaders++];
    h->name.data = name;
    h->name.len = strlen(name);
    h->value.data = value;
    h->value.len = strlen(value);
}


static void
decide_log(const wire_req_t *req, const wire_resp_t *resp)
{
    if (log_get_level() > LOG_LEVEL_DEBUG) {
        return;
    }

    log_debug("decision: %.*s %.*s %.*s client %.*s: %s %u (%.*s)",
              (int) req->method.len, req->method.data,
              (int) req->host.len, req->host.data,
              (int) req->path.len, req->path.data,
              (int) req->client_addr.len, req->client_addr.data,
              wire_decision_name(resp->decision), resp->status,
              (int) resp->reason.len, resp->reason.data);
}


/*
 * Look up the device behind a verified certificate in the decision's view.
 * Returns 0 with *status set (NONE when there is no verified certificate,
 * UNKNOWN when it is not enrolled), or -1 on a store error.
 */
static int
decide_device(const decide_conf_t *conf, const wire_req_t *req,
    decide_ctx_t *ctx, pol_device_status_t *status, store_err_t *err)
{
    int  rc;

    *status = POL_DEVICE_NONE;

    if (req->cert_verify != WIRE_CERT_SUCCESS || !req->has_cert_fp) {
        return 0;
    }

    if (ctx->devices == NULL && conf->device_cache > 0) {
        /* without memory for it, decisions simply read the store */
        ctx->devices = store_devcache_new(conf->device_cache);
    }

    rc = store_device_get_cached(ctx->view, ctx->devices, req->cert_fp,
                                 &ctx->device, err);

    if (rc < 0) {
        return -1;
    }

    if (rc == STORE_NOTFOUND) {
        *status = POL_DEVICE_UNKNOWN;
        return 0;
    }

    ctx->has_device = 1;

    switch (ctx->device.status) {
    case STORE_DEVICE_ACTIVE:
        *status = POL_DEVICE_ACTIVE;
        break;
    case STORE_DEVICE_QUARANTINED:
        *status = POL_DEVICE_QUARANTINED;
        break;
    default:
        *status = POL_DEVICE_REVOKED;
        break;
    }

    return 0;
}


/*
 * The posture of a known device, read in the decision's view (the same
 * snapshot as the device).  A stale report (none received within
 * posture_max_age) keeps its values; the policy sees device.posture.stale
 * and device.posture.age and decides.  Returns -1 on a store error.
 */
static int
decide_posture(const decide_conf_t *conf, pol_device_status_t status,
    decide_ctx_t *ctx, int64_t now, store_err_t *err)
{
    int  rc;

    ctx->has_posture = 0;
    ctx->posture_stale = 0;

    if (status != POL_DEVICE_ACTIVE && status != POL_DEVICE_QUARANTINED) {
        return 0;
    }

    rc = store_posture_get(ctx->view, ctx->device.fp, &ctx->posture, err);
    if (rc < 0) {
        return -1;
    }

    if (rc == STORE_NOTFOUND) {
        ctx->posture_stale = 1;
        return 0;
    }

    ctx->has_posture = 1;

    if (conf->posture_max_age_ms != 0
        && ctx->posture.received_at
           + (int64_t) (conf->posture_max_age_ms / 1000) < now)
    {
        ctx->posture_stale = 1;
        log_debug("device %s: posture is stale (received %llds ago, "
                  "posture_max_age %us)", ctx->device.id,
                  (long long) (now - ctx->posture.received_at),
                  conf->posture_max_age_ms / 1000);
    }

    return 0;
}


static pol_flag_t
decide_flag(store_flag_t flag)
{
    switch (flag) {
    case STORE_FLAG_TRUE:
        return POL_TRUE;
    case STORE_FLAG_FALSE:
        return POL_FALSE;
    default:
        return POL_UNREPORTED;
    }
}


/*
 * The signed-in user behind the request's session token, if any, checked
 * in the decision's view: the token (pinned algorithm, signature verified
 * once and then remembered), the session (exists, not revoked, not expired,
 * not idle too long), its device binding (the token's cnf and the session's
 * device must be the certificate nginx verified now), and the user (exists,
 * not disabled).  Sets ctx->authenticated.  A refused token is not an
 * error: the request is simply not signed in.  Returns -1 on a store
 * error.
 */
static int
decide_identity(const decide_conf_t *conf, const wire_req_t *req,
    decide_ctx_t *ctx, int64_t now, store_err_t *err)
{
    id_err_t     ierr;
    const char  *why;
    int          rc;

    ctx->authenticated = 0;

    if (ctx->explaining) {
        return decide_identity_as(conf, req, ctx, now, err);
    }

    if (conf->keys == NULL || req->token.len == 0) {
        return 0;
    }

    if (ctx->tokens == NULL
        && id_token_cache_create(4096, &ctx->tokens, &ierr) != 0)
    {
        log_error("token cache: %s", ierr.msg);
        return 0;
    }

    rc = id_token_check(conf->keys, ctx->tokens, req->token.data,
                        req->token.len, now, &ctx->claims, &ierr);
    if (rc != ID_TOKEN_OK) {
        log_info("session token refused from %.*s: %s",
                 (int) req->client_addr.len, req->client_addr.data,
                 rc == ID_TOKEN_INVALID ? ierr.msg : "internal error");
        return 0;
    }

    rc = store_session_get(ctx->view, ctx->claims.sid, &ctx->session, err);
    if (rc < 0) {
        return -1;
    }

    why = NULL;

    if (rc == STORE_NOTFOUND) {
        why = "unknown session";

    } else if (ctx->session.revoked) {
        why = "session revoked";

    } else if (ctx->session.expires_at <= now) {
        why = "session expired";

    } else if (conf->session_idle_ms
               && ctx->session.last_seen
                  + (int64_t) (conf->session_idle_ms / 1000) < now)
    {
        why = "session idle too long";

    } else if (strcmp(ctx->session.user, ctx->claims.user) != 0) {
        why = "token and session name different users";

    } else if (ctx->claims.has_cnf || ctx->session.has_device) {
        if (req->cert_verify != WIRE_CERT_SUCCESS || !req->has_cert_fp
            || !ctx->claims.has_cnf || !ctx->session.has_device
            || memcmp(ctx->claims.cnf_fp, req->cert_fp, STORE_FP_LEN) != 0
            || memcmp(ctx->session.device_fp, req->cert_fp, STORE_FP_LEN)
               != 0)
        {
            why = "session is bound to another device";
        }
    }

    if (why == NULL) {
        rc = store_user_get(ctx->view, ctx->session.user, &ctx->user, err);
        if (rc < 0) {
            return -1;
        }

        if (rc == STORE_NOTFOUND) {
            why = "user no longer exists";

        } else if (ctx->user.disabled) {
            why = "user disabled";
        }
    }

    if (why != NULL) {
        log_info("session %.8s... of %s refused: %s", ctx->claims.sid,
                 ctx->claims.user, why);
        return 0;
    }

    ctx->authenticated = 1;

    return 0;
}


/* The device identity headers every allow carries when a device is known. */
static void
decide_device_headers(wire_resp_t *resp, decide_ctx_t *ctx)
{
    store_fp_hex(ctx->device.fp, ctx->fp_hex);
    decide_header(resp, "X-ZT-Device-Id", ctx->device.id);
    decide_header(resp, "X-ZT-Device-Fingerprint", ctx->fp_hex);
    decide_header(resp, "X-ZT-Device-Owner", ctx->device.owner);
}


/*
 * The upstream assertion for this session and host: an ES256 JWT signed
 * by trustd, remembered per (session, host) for half its lifetime so that
 * the hot path signs rarely.  Returns NULL if none could be made.
 */
static const char *
decide_assertion(const decide_conf_t *conf, const wire_req_t *req,
    decide_ctx_t *ctx, int64_t now)
{
    decide_assertion_t  *a;
    const char          *groups[STORE_MAX_GROUPS], *amr[4];
    char                 key[sizeof(a->key)];
    uint32_t             h;
    size_t               i, namr;
    id_err_t             ierr;
    int                  ttl, n;

    n = snprintf(key, sizeof(key), "%s %.*s", ctx->session.sid,
                 (int) req->host.len, req->host.data);
    if (n < 0 || (size_t) n >= sizeof(key)) {
        return NULL;
    }

    h = 2166136261u;
    for (i = 0; key[i]; i++) {
        h = (h ^ (unsigned char) key[i]) * 16777619u;
    }

    a = &ctx->assertions[h % DECIDE_ASSERTIONS];

    if (a->fresh_until > now && strcmp(a->key, key) == 0) {
        return a->jwt;
    }

    for (i = 0; i < ctx->user.ngroups; i++) {
        groups[i] = ctx->user.groups[i];
    }

    namr = 0;
    if (ctx->session.methods & POL_AUTH_PASSWORD) {
        amr[namr++] = "pwd";
    }
    if (ctx->session.methods & POL_AUTH_TOTP) {
        amr[namr++] = "otp";
    }
    if (ctx->session.methods & POL_AUTH_WEBAUTHN) {
        amr[namr++] = "hwk";
    }
    if (ctx->session.methods & POL_AUTH_CERT) {
        amr[namr++] = "mtls";
    }

    ttl = (int) (conf->assertion_ttl_ms / 1000);

    a->key[0] = '\0';
    a->fresh_until = 0;

    if (id_assertion_issue(conf->keys, key + STORE_SID_LEN + 1,
                           ctx->session.user, groups, ctx->user.ngroups,
                           ctx->session.sid,
                           ctx->session.has_device ? ctx->device.id : NULL,
                           amr, namr, pol_aal(ctx->session.methods), now,
                           ttl, a->jwt, sizeof(a->jwt),
                           &ierr)
        != 0)
    {
        log_error("cannot sign the upstream assertion: %s", ierr.msg);
        return NULL;
    }

    memcpy(a->key, key, (size_t) n + 1);
    a->fresh_until = now + ttl / 2;

    return a->jwt;
}


/* Headers naming the signed-in user for the upstream application. */
static void
decide_identity_headers(const decide_conf_t *conf, const wire_req_t *req,
    wire_resp_t *resp, decide_ctx_t *ctx, int64_t now)
{
    const char  *jwt;
    size_t       len, i, n;

    if (!ctx->authenticated) {
        return;
    }

    len = 0;
    ctx->groups[0] = '\0';

    for (i = 0; i < ctx->user.ngroups; i++) {
        n = strlen(ctx->user.groups[i]);
        if (len + n + 2 > sizeof(ctx->groups)) {
            break;
        }
        if (len) {
            ctx->groups[len++] = ',';
        }
        memcpy(ctx->groups + len, ctx->user.groups[i], n + 1);
        len += n;
    }

    decide_header(resp, "X-ZT-User", ctx->session.user);
    decide_header(resp, "X-ZT-Groups", ctx->groups);
    decide_header(resp, "X-ZT-Session", ctx->session.sid);
    decide_header(resp, "X-ZT-AAL",
                  decide_aal_text[pol_aal(ctx->session.methods) & 3]);

    jwt = decide_assertion(conf, req, ctx, now);
    if (jwt != NULL) {
        decide_header(resp, "X-ZT-Assertion", jwt);
    }
}


/* Remember that this session was used now, for the batched touch. */
static void
decide_seen(decide_ctx_t *ctx, int64_t now)
{
    unsigned  i;

    if (ctx->session.last_seen + DECIDE_TOUCH_EVERY > now
        || ctx->ntouch == DECIDE_TOUCH_MAX)
    {
        return;
    }

    for (i = 0; i < ctx->ntouch; i++) {
        if (strcmp(ctx->touch[i], ctx->session.sid) == 0) {
            return;
        }
    }

    memcpy(ctx->touch[ctx->ntouch++], ctx->session.sid, STORE_SID_LEN + 1);
}


static void
decide_touch_store(void *arg, const char *const *sids, size_t n)
{
    store_err_t  err;

    if (store_session_touch(arg, sids, n, (int64_t) time(NULL), &err) != 0) {
        log_error("cannot record session activity: %s", err.msg);
    }
}


void
decide_touch(store_t *st, decide_ctx_t *ctx)
{
    decide_touch_with(ctx, decide_touch_store, st);
}


void
decide_touch_with(decide_ctx_t *ctx,
    void (*write)(void *arg, const char *const *sids, size_t n), void *arg)
{
    const char   *sids[DECIDE_TOUCH_MAX];
    unsigned      i;

    if (ctx->ntouch == 0) {
        return;
    }

    for (i = 0; i < ctx->ntouch; i++) {
        sids[i] = ctx->touch[i];
    }

    write(arg, sids, ctx->ntouch);

    ctx->ntouch = 0;
}


/*
 * Without a policy.  With identity on: a signed-in user is allowed (and
 * sent to sign in otherwise).  Without it: an active enrolled device is
 * allowed, nothing else.
 */
static void
decide_builtin(const decide_conf_t *conf, const wire_req_t *req,
    pol_device_status_t status, wire_resp_t *resp, decide_ctx_t *ctx,
    int64_t now)
{
    if (conf->keys != NULL) {
        if (!ctx->authenticated) {
            decide_signin(conf, req, 0, "built-in rule", resp, ctx);
            return;
        }

        decide_set(resp, WIRE_ALLOW, 200, WIRE_R_POLICY,
                   "built-in rule: signed-in user");
        resp->ttl_ms = conf->allow_ttl_ms;
        if (status == POL_DEVICE_ACTIVE) {
            decide_device_headers(resp, ctx);
        }
        decide_identity_headers(conf, req, resp, ctx, now);
        decide_header(resp, "X-ZT-Decision", "allow");
        return;
    }

    switch (status) {
    case POL_DEVICE_NONE:
        if (req->cert_verify == WIRE_CERT_NONE) {
            decide_set(resp, WIRE_DENY, 403, WIRE_R_NO_CERT,
                       "no device certificate");
        } else {
            decide_set(resp, WIRE_DENY, 403, WIRE_R_CERT_UNVERIFIED,
                       "device certificate not verified");
        }
        return;

    case POL_DEVICE_UNKNOWN:
        decide_set(resp, WIRE_DENY, 403, WIRE_R_DEVICE_UNKNOWN,
                   "device not enrolled");
        return;

    case POL_DEVICE_QUARANTINED:
        decide_set(resp, WIRE_DENY, 403, WIRE_R_DEVICE_QUARANTINED,
                   "device quarantined");
        return;

    case POL_DEVICE_REVOKED:
        /* decide() handled it; kept for completeness */
        decide_set(resp, WIRE_DENY, 403, WIRE_R_DEVICE_REVOKED,
                   "device revoked");
        return;

    case POL_DEVICE_ACTIVE:
        break;
    }

    decide_set(resp, WIRE_ALLOW, 200, WIRE_R_DEVICE_OK, "enrolled device");
    resp->ttl_ms = conf->allow_ttl_ms;
    decide_device_headers(resp, ctx);
    decide_header(resp, "X-ZT-Decision", "allow");
}


static void
decide_input(const wire_req_t *req, pol_device_status_t status,
    decide_ctx_t *ctx)
{
    pol_input_t  *in = &ctx->in;
    char          addr[64];
    unsigned      i;

    pol_input_init(in);

    in->method.data = req->method.data;
    in->method.len = req->method.len;
    in->host.data = req->host.data;
    in->host.len = req->host.len;
    in->path.data = req->path.data;
    in->path.len = req->path.len;
    in->now = (int64_t) time(NULL);

    if (req->client_addr.len < sizeof(addr)) {
        memcpy(addr, req->client_addr.data, req->client_addr.len);
        addr[req->client_addr.len] = '\0';

        if (inet_pton(AF_INET, addr, in->addr) == 1) {
            in->addr_family = 4;

        } else if (inet_pton(AF_INET6, addr, in->addr) == 1) {
            in->addr_family = 6;
        }
    }

    in->device_status = status;

    if (status != POL_DEVICE_NONE) {
        in->auth_methods |= POL_AUTH_CERT;
    }

    if (ctx->authenticated) {
        in->authenticated = 1;
        in->user.data = ctx->session.user;
        in->user.len = strlen(ctx->session.user);
        in->auth_methods |= ctx->session.methods;
        in->mfa_time = ctx->session.mfa_at;

        for (i = 0; i < ctx->user.ngroups && i < POL_MAX_GROUPS; i++) {
            in->groups[i].data = ctx->user.groups[i];
            in->groups[i].len = strlen(ctx->user.groups[i]);
        }

        in->ngroups = i;
    }

    if (status == POL_DEVICE_ACTIVE || status == POL_DEVICE_QUARANTINED) {
        in->device_id.data = ctx->device.id;
        in->device_id.len = strlen(ctx->device.id);
        in->device_owner.data = ctx->device.owner;
        in->device_owner.len = strlen(ctx->device.owner);
    }

    if (ctx->has_posture
        && (status == POL_DEVICE_ACTIVE || status == POL_DEVICE_QUARANTINED))
    {
        /* trustd's receive time: an agent's clock cannot make it fresh */
        in->posture_time = ctx->posture.received_at;
        in->posture_stale = ctx->posture_stale;
        in->disk_encrypted = decide_flag(ctx->posture.disk_encrypted);
        in->firewall = decide_flag(ctx->posture.firewall);
        in->screen_lock = decide_flag(ctx->posture.screen_lock);
        in->endpoint_protection =
            decide_flag(ctx->posture.endpoint_protection);
        in->os.data = ctx->posture.os;
        in->os.len = strlen(ctx->posture.os);
        in->os_version.data = ctx->posture.os_version;
        in->os_version.len = strlen(ctx->posture.os_version);
        in->patch_time = ctx->posture.patch_time;
    }
}


/* Append s to buf[*len..size) percent-encoding all but unreserved bytes. */
static int
decide_urlencode(char *buf, size_t size, size_t *len, const char *s,
    size_t n)
{
    static const char  hex[] = "0123456789ABCDEF";
    unsigned char      c;
    size_t             i;

    for (i = 0; i < n; i++) {
        c = (unsigned char) s[i];

        if (*len + 4 > size) {
            return -1;
        }

        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
            || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_'
            || c == '~' || c == '/')
        {
            buf[(*len)++] = (char) c;

        } else {
            buf[(*len)++] = '%';
            buf[(*len)++] = hex[c >> 4];
            buf[(*len)++] = hex[c & 0xf];
        }
    }

    buf[*len] = '\0';

    return 0;
}


/*
 * The portal URL for a login or step-up, carrying where to return: built
 * only from the configured portal and the request nginx decided on, so it
 * can never be made to point elsewhere.
 */
static int
decide_redirect(const decide_conf_t *conf, const wire_req_t *req,
    int step_up, decide_ctx_t *ctx)
{
    char    *b = ctx->redirect;
    size_t   size = sizeof(ctx->redirect), len, path_len, base;
    int      n;

    base = strlen(conf->portal_url);
    while (base > 0 && conf->portal_url[base - 1] == '/') {
        base--;
    }

    n = snprintf(b, size, "%.*s/%s?next=", (int) base, conf->portal_url,
                 step_up ? "step-up" : "login");
    if (n < 0 || (size_t) n >= size) {
        return -1;
    }

    len = (size_t) n;

    /*
     * A portal on this gateway (a path) gets a path back: same scheme,
     * host and port as the request.  A portal elsewhere gets the full URL.
     */
    if (conf->portal_url[0] != '/'
        && (decide_urlencode(b, size, &len, req->scheme.data,
                             req->scheme.len)
            || decide_urlencode(b, size, &len, "://", 3)
            || decide_urlencode(b, size, &len, req->host.data,
                                req->host.len)))
    {
        return -1;
    }

    if (decide_urlencode(b, size, &len, req->path.data, req->path.len)) {
        return -1;
    }

    path_len = len;

    if (req->query.len
        && (decide_urlencode(b, size, &len, "?", 1)
            || decide_urlencode(b, size, &len, req->query.data,
                                req->query.len)))
    {
        /* too long to return to exactly: return to the path alone */
        b[path_len] = '\0';
    }

    return 0;
}


/*
 * Send the browser to sign in (or to step up) at the portal; without a
 * portal, a deny that says so.  why names what asked for it.
 */
static void
decide_signin(const decide_conf_t *conf, const wire_req_t *req, int step_up,
    const char *why, wire_resp_t *resp, decide_ctx_t *ctx)
{
    char  what[256];

    snprintf(what, sizeof(what), "%s", why);

    if (conf->portal_url == NULL || conf->portal_url[0] == '\0'
        || decide_redirect(conf, req, step_up, ctx) != 0)
    {
        snprintf(ctx->reason, sizeof(ctx->reason),
                 "%s requires %s, but no sign-in portal is configured "
                 "(portal_url)", what, step_up ? "a step-up" : "sign-in");
        decide_set(resp, WIRE_DENY, 403, WIRE_R_POLICY, ctx->reason);
        return;
    }

    snprintf(ctx->reason, sizeof(ctx->reason), "%s", what);
    decide_set(resp, step_up ? WIRE_STEP_UP : WIRE_LOGIN, 302,
               WIRE_R_POLICY, ctx->reason);
    resp->redirect.data = ctx->redirect;
    resp->redirect.len = strlen(ctx->redirect);
}


static void
decide_policy(const decide_conf_t *conf, const wire_req_t *req,
    pol_device_status_t status, wire_resp_t *resp, decide_ctx_t *ctx,
    int64_t now)
{
    pol_decision_t  *pd = &ctx->pd;
    unsigned         i;

    decide_input(req, status, ctx);
    decide_trust(conf, status, ctx, now);
    pol_eval(conf->policy, &ctx->in, pd);
    ctx->policy_used = 1;

    for (i = 0; i < pd->nreports; i++) {
        log_info("report-only: rule \"%.*s\" would %s %.*s %.*s%.*s "
                 "(enforced: %s by rule \"%.*s\")",
                 (int) pd->reports[i].rule.len, pd->reports[i].rule.data,
                 pol_outcome_name(pd->reports[i].outcome),
                 (int) req->method.len, req->method.data,
                 (int) req->host.len, req->host.data,
                 (int) req->path.len, req->path.data,
                 pol_outcome_name(pd->outcome),
                 (int) pd->rule.len, pd->rule.data);
    }

    switch (pd->outcome) {

    case POL_ALLOW:
        snprintf(ctx->reason, sizeof(ctx->reason), "rule \"%.*s\"",
                 (int) pd->rule.len, pd->rule.data);
        decide_set(resp, WIRE_ALLOW, 200, WIRE_R_POLICY, ctx->reason);

        resp->ttl_ms = conf->allow_ttl_ms;
        if (pd->ttl_ms >= 0 && pd->ttl_ms < (int64_t) conf->allow_ttl_ms) {
            resp->ttl_ms = (uint32_t) pd->ttl_ms;
        }

        if (status == POL_DEVICE_ACTIVE || status == POL_DEVICE_QUARANTINED) {
            decide_device_headers(resp, ctx);
        }

        decide_identity_headers(conf, req, resp, ctx, now);

        if (ctx->in.trust_score >= 0) {
            decide_header(resp, "X-ZT-Trust-Score", ctx->score_text);
        }

        for (i = 0; i < pd->nheaders && resp->nheaders < WIRE_MAX_HEADERS - 1;
             i++)
        {
            resp->headers[resp->nheaders].name.data = pd->headers[i].name.data;
            resp->headers[resp->nheaders].name.len = pd->headers[i].name.len;
            resp->headers[resp->nheaders].value.data =
                pd->headers[i].value.data;
            resp->headers[resp->nheaders].value.len =
                pd->headers[i].value.len;
            resp->nheaders++;
        }

        decide_header(resp, "X-ZT-Decision", "allow");
        return;

    case POL_LOGIN:
    case POL_STEP_UP:
        snprintf(ctx->reason, sizeof(ctx->reason), "rule \"%.*s\"",
                 (int) pd->rule.len, pd->rule.data);
        decide_signin(conf, req, pd->outcome == POL_STEP_UP, ctx->reason,
                      resp, ctx);
        return;

    default: /* POL_DENY */
        if (pd->rule.len) {
            snprintf(ctx->reason, sizeof(ctx->reason), "rule \"%.*s\": %.*s",
                     (int) pd->rule.len, pd->rule.data,
                     (int) pd->reason.len, pd->reason.data);
            decide_set(resp, WIRE_DENY, (uint16_t) pd->status, WIRE_R_POLICY,
                       ctx->reason);

        } else {
            snprintf(ctx->reason, sizeof(ctx->reason), "%.*s",
                     (int) pd->reason.len, pd->reason.data);
            decide_set(resp, WIRE_DENY, (uint16_t) pd->status, WIRE_R_NO_RULE,
                       ctx->reason);
        }
        return;
    }
}


int
decide(store_t *st, const decide_conf_t *conf, const wire_req_t *req,
    wire_resp_t *resp, decide_ctx_t *ctx)
{
    pol_device_status_t  status;
    store_err_t          err;
    int64_t              now;
    int                  rc;

    now = (int64_t) time(NULL);
    ctx->authenticated = 0;
    ctx->has_device = 0;
    ctx->policy_used = 0;
    ctx->in.trust_score = -1;

    /* the device's cache slot travels in while the view opens */
    if (req->has_cert_fp) {
        store_devcache_prefetch(ctx->devices, req->cert_fp);
    }

    /* one read view for every fact this decision needs */
    if (store_view_begin(st, &ctx->view, &err) != 0) {
        goto store_failed;
    }

    rc = decide_device(conf, req, ctx, &status, &err);
    if (rc == 0) {
        rc = decide_posture(conf, status, ctx, now, &err);
    }
    if (rc == 0) {
        rc = decide_identity(conf, req, ctx, now, &err);
    }

    ctx->has_history = 0;
    if (rc == 0 && ctx->authenticated && conf->behaviour != NULL) {
        /* advisory: a history that cannot be read is simply not used */
        rc = store_history_get(ctx->view, ctx->session.user, &ctx->history,
                               &err);
        if (rc < 0) {
            log_warn("history of %s not used: %s", ctx->session.user,
                     err.msg);
        }
        ctx->has_history = (rc == 0);
        rc = 0;
    }

    /* records are copied out: end the snapshot before deciding */
    store_view_end(ctx->view);

    if (rc != 0) {
        goto store_failed;
    }

    /* no policy can readmit a revoked or expired device */
    if (status == POL_DEVICE_REVOKED) {
        decide_set(resp, WIRE_DENY, 403, WIRE_R_DEVICE_REVOKED,
                   "device revoked");
        goto done;
    }

    if (status != POL_DEVICE_NONE && status != POL_DEVICE_UNKNOWN
        && ctx->device.expires_at != 0 && ctx->device.expires_at < now)
    {
        decide_set(resp, WIRE_DENY, 403, WIRE_R_DEVICE_EXPIRED,
                   "device enrollment expired");
        goto done;
    }

    if (ctx->authenticated) {
        decide_seen(ctx, now);
    }

    if (conf->policy == NULL) {
        decide_input(req, status, ctx);
        decide_trust(conf, status, ctx, now);

        if (ctx->in.blocklisted) {
            snprintf(ctx->reason, sizeof(ctx->reason),
                     "source address on blocklist \"%s\"",
                     ctx->blocklist_feed);
            decide_set(resp, WIRE_DENY, 403, WIRE_R_POLICY, ctx->reason);

        } else {
            decide_builtin(conf, req, status, resp, ctx, now);
        }

    } else {
        decide_policy(conf, req, status, resp, ctx, now);
    }

    if (!ctx->explaining) {
        decide_record(conf, status, resp, ctx, now);
    }

    goto done;

store_failed:

    log_error("decision store unavailable: %s", err.msg);
    decide_set(resp, WIRE_DENY, 503, WIRE_R_INTERNAL,
               "decision store unavailable");

done:

    decide_log(req, resp);

    return resp->decision;
}


void
decide_ctx_free(decide_ctx_t *ctx)
{
    store_view_free(ctx->view);
    ctx->view = NULL;
    id_token_cache_free(ctx->tokens);
    ctx->tokens = NULL;
    store_devcache_free(ctx->devices);
    ctx->devices = NULL;
}


/*
 * The trust signals of this request, and its score (docs/trust.md has the
 * formula and every signal's range).  Fills ctx->in's blocklisted,
 * new_address and trust_score.  Needs decide_input() first.  No
 * allocation, no store access: the history was read in the view.
 */
static void
decide_trust(const decide_conf_t *conf, pol_device_status_t status,
    decide_ctx_t *ctx, int64_t now)
{
    pol_input_t            *in = &ctx->in;
    score_signals_t        *sg = &ctx->signals;
    const store_history_t  *hist;
    unsigned                m, n;
    double                  age, v;
    int                     known;

    memset(sg, 0, sizeof(*sg));
    ctx->blocklist_feed = NULL;
    ctx->has_addr = 0;

    if (in->addr_family == 4) {
        memset(ctx->addr16, 0, 10);
        ctx->addr16[10] = 0xff;
        ctx->addr16[11] = 0xff;
        memcpy(ctx->addr16 + 12, in->addr, 4);
        ctx->has_addr = 1;

    } else if (in->addr_family == 6) {
        memcpy(ctx->addr16, in->addr, 16);
        ctx->has_addr = 1;
    }

    /* membership is visible to the policy even without a score */
    if (ctx->has_addr
        && blocklist_lookup(conf->blocklist, in->addr_family, in->addr, now,
                            &ctx->blocklist_feed))
    {
        in->blocklisted = 1;
        sg->value[SCORE_BLOCKLISTED] = 1.0;
    }

    if (ctx->has_addr
        && blocklist_lookup(conf->trusted, in->addr_family, in->addr, now,
                            NULL))
    {
        sg->value[SCORE_TRUSTED_NETWORK] = 1.0;
    }

    /* identity */
    n = 0;
    for (m = in->auth_methods; m; m &= m - 1) {
        n++;
    }
    sg->value[SCORE_FACTORS] = n >= 3 ? 1.0 : (double) n / 3.0;

    if (in->mfa_time > 0) {
        age = (double) (now - in->mfa_time);
        sg->value[SCORE_MFA_RECENT] = age <= 3600.0 ? 1.0
                                      : 1.0 - (age - 3600.0) / 82800.0;
    }

    if (ctx->authenticated && ctx->user.failures > 0
        && ctx->user.last_failure + 86400 > now)
    {
        sg->value[SCORE_LOGIN_FAILURES] = ctx->user.failures >= 5 ? 1.0
                                  : (double) ctx->user.failures / 5.0;
    }

    /* device */
    known = (status == POL_DEVICE_ACTIVE || status == POL_DEVICE_QUARANTINED);
    sg->value[SCORE_DEVICE_ENROLLED] = status == POL_DEVICE_ACTIVE;
    sg->value[SCORE_DEVICE_QUARANTINED] = status == POL_DEVICE_QUARANTINED;

    if (known && ctx->authenticated
        && (ctx->session.has_device
            || strcmp(ctx->device.owner, ctx->session.user) == 0))
    {
        sg->value[SCORE_DEVICE_BOUND] = 1.0;
    }

    if (known && ctx->has_posture) {
        v = (ctx->posture.disk_encrypted == STORE_FLAG_TRUE)
            + (ctx->posture.firewall == STORE_FLAG_TRUE)
            + (ctx->posture.screen_lock == STORE_FLAG_TRUE)
            + (ctx->posture.endpoint_protection == STORE_FLAG_TRUE);
        sg->value[SCORE_POSTURE] = v / 4.0;

        if (conf->posture_max_age_ms == 0) {
            sg->value[SCORE_POSTURE_FRESH] = 1.0;

        } else if (!ctx->posture_stale) {
            age = (double) (now - ctx->posture.received_at);
            sg->value[SCORE_POSTURE_FRESH] =
                1.0 - age / ((double) conf->posture_max_age_ms / 1000.0);
        }
    }

    /* context and behaviour */
    hist = NULL;

    if (conf->behaviour != NULL && ctx->authenticated) {
        hist = behaviour_history(conf->behaviour, ctx->session.user,
                                 ctx->has_history ? &ctx->history : NULL);

        if (ctx->has_addr) {
            in->new_address = behaviour_new_address(hist, ctx->addr16, now);
            sg->value[SCORE_NEW_ADDRESS] = in->new_address;
        }

        sg->value[SCORE_UNUSUAL_TIME] = behaviour_unusual_time(hist, now);

        /* an explained session is new: it has no rate of its own */
        if (!ctx->explaining) {
            sg->value[SCORE_RATE] = behaviour_rate(conf->behaviour,
                                                   ctx->session.sid, now);
        }
    }

    if (conf->behaviour != NULL) {
        if (known) {
            store_fp_hex(ctx->device.fp, ctx->fp_hex);
        }

        sg->value[SCORE_DENIALS] = behaviour_denials(conf->behaviour,
                         ctx->authenticated ? ctx->session.sid : NULL,
                         known ? ctx->fp_hex : NULL,
                         ctx->has_addr ? ctx->addr16 : NULL, now) / 10.0;
    }

    if (conf->trust == NULL) {
        in->trust_score = -1;
        return;
    }

    in->trust_score = score_compute(conf->trust, sg, &ctx->score);
    snprintf(ctx->score_text, sizeof(ctx->score_text), "%d",
             in->trust_score);

    if (log_get_level() <= LOG_LEVEL_DEBUG) {
        log_debug("trust score %d: identity %+.1f %+.1f %+.1f, device "
                  "%+.1f %+.1f %+.1f %+.1f %+.1f, context %+.1f %+.1f "
                  "%+.1f %+.1f, behaviour %+.1f %+.1f",
                  in->trust_score,
                  ctx->score.contribution[SCORE_FACTORS],
                  ctx->score.contribution[SCORE_MFA_RECENT],
                  ctx->score.contribution[SCORE_LOGIN_FAILURES],
                  ctx->score.contribution[SCORE_DEVICE_ENROLLED],
                  ctx->score.contribution[SCORE_DEVICE_BOUND],
                  ctx->score.contribution[SCORE_DEVICE_QUARANTINED],
                  ctx->score.contribution[SCORE_POSTURE],
                  ctx->score.contribution[SCORE_POSTURE_FRESH],
                  ctx->score.contribution[SCORE_TRUSTED_NETWORK],
                  ctx->score.contribution[SCORE_BLOCKLISTED],
                  ctx->score.contribution[SCORE_NEW_ADDRESS],
                  ctx->score.contribution[SCORE_UNUSUAL_TIME],
                  ctx->score.contribution[SCORE_DENIALS],
                  ctx->score.contribution[SCORE_RATE]);
    }
}


/*
 * After the decision: a deny counts against the session, the device and
 * the source address; an allow of a signed-in user adds the address and
 * the hour to the user's history (written later, in a batch).
 */
static void
decide_record(const decide_conf_t *conf, pol_device_status_t status,
    const wire_resp_t *resp, decide_ctx_t *ctx, int64_t now)
{
    int  known;

    if (conf->behaviour == NULL) {
        return;
    }

    known = (status == POL_DEVICE_ACTIVE || status == POL_DEVICE_QUARANTINED);

    if (resp->decision == WIRE_DENY) {
        behaviour_denied(conf->behaviour,
                         ctx->authenticated ? ctx->session.sid : NULL,
                         known ? ctx->fp_hex : NULL,
                         ctx->has_addr ? ctx->addr16 : NULL, now);

    } else if (resp->decision == WIRE_ALLOW && ctx->authenticated
               && ctx->has_addr)
    {
        behaviour_seen(conf->behaviour, ctx->session.user,
                       behaviour_history(conf->behaviour, ctx->session.user,
                           ctx->has_history ? &ctx->history : NULL),
                       ctx->addr16, now);
    }
}


/*
 * decide_identity() for decide_explain(): the named user, if they exist
 * and are not disabled (and identity is on), in a hypothetical session
 * that has just proven password and TOTP.
 */
static int
decide_identity_as(const decide_conf_t *conf, const wire_req_t *req,
    decide_ctx_t *ctx, int64_t now, store_err_t *err)
{
    int  rc;

    if (conf->keys == NULL || ctx->explain_user == NULL) {
        return 0;
    }

    rc = store_user_get(ctx->view, ctx->explain_user, &ctx->user, err);
    if (rc < 0) {
        return -1;
    }

    if (rc == STORE_NOTFOUND || ctx->user.disabled) {
        return 0;
    }

    memset(&ctx->session, 0, sizeof(ctx->session));
    memset(ctx->session.sid, '0', STORE_SID_LEN);
    snprintf(ctx->session.user, sizeof(ctx->session.user), "%s",
             ctx->user.name);
    ctx->session.methods = POL_AUTH_PASSWORD | POL_AUTH_TOTP;
    ctx->session.created_at = now;
    ctx->session.mfa_at = now;
    ctx->session.last_seen = now;
    ctx->session.expires_at = now + 3600;

    if (req->cert_verify == WIRE_CERT_SUCCESS && req->has_cert_fp) {
        ctx->session.has_device = 1;
        memcpy(ctx->session.device_fp, req->cert_fp, STORE_FP_LEN);
    }

    ctx->authenticated = 1;

    return 0;
}


int
decide_explain(store_t *st, const decide_conf_t *conf, const wire_req_t *req,
    const char *user, wire_resp_t *resp, decide_ctx_t *ctx, char *out,
    size_t size)
{
    size_t  len;
    int     i, n;

    memset(&ctx->pd, 0, sizeof(ctx->pd));
    ctx->in.trust_score = -1;
    ctx->explaining = 1;
    ctx->explain_user = user;

    (void) decide(st, conf, req, resp, ctx);

    ctx->explaining = 0;
    ctx->explain_user = NULL;

    len = 0;

    n = snprintf(out, size,
                 "decision  %s %u\n"
                 "reason    %.*s\n"
                 "rule      %.*s\n"
                 "user      %s\n"
                 "source    %.*s%s%s\n",
                 wire_decision_name(resp->decision), resp->status,
                 (int) resp->reason.len, resp->reason.data,
                 conf->policy == NULL ? (int) sizeof("(built-in rule)") - 1
                 : ctx->pd.rule.len ? (int) ctx->pd.rule.len : 6,
                 conf->policy == NULL ? "(built-in rule)"
                 : ctx->pd.rule.len ? ctx->pd.rule.data : "(none)",
                 ctx->authenticated ? ctx->session.user : "(not signed in)",
                 (int) req->client_addr.len, req->client_addr.data,
                 ctx->in.blocklisted ? ", on blocklist " : "",
                 ctx->in.blocklisted && ctx->blocklist_feed
                 ? ctx->blocklist_feed : "");
    if (n < 0 || (size_t) n >= size) {
        return resp->decision;
    }
    len = (size_t) n;

    if (conf->trust == NULL || ctx->in.trust_score < 0) {
        snprintf(out + len, size - len, "score     not computed\n");
        return resp->decision;
    }

    n = snprintf(out + len, size - len,
                 "score     %d (base %d, sum %.1f, clamped to 0..100)\n"
                 "%-20s %7s %7s %13s\n",
                 ctx->in.trust_score, conf->trust->base, ctx->score.raw,
                 "signal", "value", "weight", "contribution");
    if (n < 0 || (size_t) n >= size - len) {
        return resp->decision;
    }
    len += (size_t) n;

    for (i = 0; i < SCORE_NSIGNALS; i++) {
        n = snprintf(out + len, size - len, "%-20s %7.3f %6s%d %+13.1f\n",
                     score_signal_name((score_signal_t) i),
                     ctx->score.value[i],
                     score_signal_direction((score_signal_t) i) > 0
                     ? "+" : "-",
                     conf->trust->weight[i], ctx->score.contribution[i]);
        if (n < 0 || (size_t) n >= size - len) {
            break;
        }
        len += (size_t) n;
    }

    return resp->decision;
}


void
decide_journal_record(const decide_conf_t *conf, const wire_req_t *req,
    const wire_resp_t *resp, const decide_ctx_t *ctx, int64_t now_ms,
    store_audit_t *rec)
{
    store_decision_t  *d = &rec->d;
    const pol_t       *pol;
    double             pts;
    unsigned           i;

    memset(rec, 0, offsetof(store_audit_t, d));
    rec->kind = STORE_AUDIT_DECISION;
    rec->time_ms = now_ms;

    d->outcome = resp->decision;
    d->status = resp->status;
    d->ttl_ms = resp->ttl_ms;
    d->count = 1;

    decide_copy(d->method, sizeof(d->method), req->method.data,
                req->method.len);
    decide_copy(d->host, sizeof(d->host), req->host.data, req->host.len);
    decide_copy(d->path, sizeof(d->path), req->path.data, req->path.len);
    decide_copy(d->source, sizeof(d->source), req->client_addr.data,
                req->client_addr.len);
    decide_copy(d->reason, sizeof(d->reason), resp->reason.data,
                resp->reason.len);

    if (ctx->authenticated) {
        decide_copy(d->user, sizeof(d->user), ctx->session.user,
                    strlen(ctx->session.user));
        decide_copy(d->session, sizeof(d->session), ctx->session.sid,
                    STORE_SID_AUDIT_LEN);
    } else {
        d->user[0] = '\0';
        d->session[0] = '\0';
    }

    if (ctx->has_device) {
        decide_copy(d->device, sizeof(d->device), ctx->device.id,
                    strlen(ctx->device.id));
    } else {
        d->device[0] = '\0';
    }

    if (req->has_cert_fp) {
        store_fp_hex(req->cert_fp, d->device_fp);
    } else {
        d->device_fp[0] = '\0';
    }

    pol = conf->policy;

    if (ctx->policy_used && pol != NULL) {
        decide_copy(d->app, sizeof(d->app), ctx->pd.app.data,
                    ctx->pd.app.len);
        decide_copy(d->rule, sizeof(d->rule), ctx->pd.rule.data,
                    ctx->pd.rule.len);
        if (ctx->pd.file.len > 0) {
            snprintf(d->where, sizeof(d->where), "%.*s:%u",
                     (int) (ctx->pd.file.len < 80 ? ctx->pd.file.len : 80),
                     ctx->pd.file.data, ctx->pd.line);
        } else {
            d->where[0] = '\0';
        }
        decide_copy(d->policy, sizeof(d->policy), pol_version(pol),
                    strlen(pol_version(pol)));
    } else {
        d->app[0] = '\0';
        d->rule[0] = '\0';
        d->where[0] = '\0';
        d->policy[0] = '\0';
    }

    d->score = -1;
    d->nsignals = 0;

    if (conf->trust != NULL && ctx->in.trust_score >= 0) {
        d->score = (int16_t) ctx->in.trust_score;
        d->nsignals = SCORE_NSIGNALS;

        for (i = 0; i < SCORE_NSIGNALS; i++) {
            d->value[i] = (uint8_t) (ctx->score.value[i] * 100.0 + 0.5);
            pts = ctx->score.contribution[i] * 10.0;
            d->points[i] = (int16_t) (pts < 0 ? pts - 0.5 : pts + 0.5);
        }
    }
}


/* Copy len bytes of src into dst as a string, truncated to fit. */
static void
decide_copy(char *dst, size_t size, const char *src, size_t len)
{
    if (len >= size) {
        len = size - 1;
    }

    if (len > 0) {
        memcpy(dst, src, len);
    }

    dst[len] = '\0';
}
