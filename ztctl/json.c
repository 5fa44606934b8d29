/*
 * The JSON forms of the store's records, for --json (ztctl(8), "JSON
 * OUTPUT").  Members are set in the documented order and printed in it,
 * and they are the same for a record in a list and shown alone.  Nothing
 * secret goes in: a user's password hash, sealed TOTP secret and TOTP
 * counter are left out, and a session is named by the first
 * STORE_SID_AUDIT_LEN digits of its id, as in the audit journal.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ztctl.h"


static json_t *ztctl_json_flag(store_flag_t flag);
static json_t *ztctl_json_date(int64_t t);


json_t *
ztctl_json_text(const char *s)
{
    json_t          *v;
    const uint8_t   *p;
    char            *buf, *o;
    size_t           len;

    v = json_string(s);
    if (v != NULL) {
        return v;
    }

    /*
     * Not UTF-8 (a device name typed in another encoding): each byte of
     * 0x80 and above becomes U+FFFD, so that the rest still reads.
     */
    len = strlen(s);
    buf = malloc(3 * len + 1);
    if (buf == NULL) {
        return NULL;
    }

    for (p = (const uint8_t *) s, o = buf; *p != '\0'; p++) {
        if (*p < 0x80) {
            *o++ = (char) *p;
        } else {
            memcpy(o, "\xef\xbf\xbd", 3);
            o += 3;
        }
    }

    *o = '\0';

    v = json_string(buf);
    free(buf);

    return v;
}


json_t *
ztctl_json_time(int64_t t)
{
    char  buf[32];

    if (t == 0) {
        return json_null();
    }

    ztctl_time(t, buf, sizeof(buf));

    return json_string(buf);
}


/* "2026-11-25", or null for 0 (unknown). */
static json_t *
ztctl_json_date(int64_t t)
{
    char  buf[16];

    if (t == 0) {
        return json_null();
    }

    ztctl_date(t, buf, sizeof(buf));

    return json_string(buf);
}


/* true, false, or null when unreported. */
static json_t *
ztctl_json_flag(store_flag_t flag)
{
    switch (flag) {
    case STORE_FLAG_TRUE:  return json_true();
    case STORE_FLAG_FALSE: return json_false();
    default:               return json_null();
    }
}


json_t *
ztctl_json_device(const store_device_t *dev, int64_t now)
{
    char  hex[2 * STORE_FP_LEN + 1];

    store_fp_hex(dev->fp, hex);

    return json_pack("{s:s, s:o, s:o, s:o, s:o, s:s, s:o, s:o, s:o, s:b,"
                     " s:o}",
                     "fingerprint", hex,
                     "id", ztctl_json_text(dev->id),
                     "owner", ztctl_json_text(dev->owner),
                     "name", ztctl_json_text(dev->name),
                     "platform", ztctl_json_text(dev->platform),
                     "status", store_device_status_name(dev->status),
                     "enrolled_at", ztctl_json_time(dev->enrolled_at),
                     "enrolled_by", ztctl_json_text(dev->enrolled_by),
                     "expires_at", ztctl_json_time(dev->expires_at),
                     "expired", dev->expires_at != 0
                                && dev->expires_at < now,
                     "updated_at", ztctl_json_time(dev->updated_at));
}


json_t *
ztctl_json_user(const store_user_t *u, int64_t now)
{
    json_t      *groups;
    const char  *status;
    unsigned     i;

    groups = json_array();
    if (groups == NULL) {
        return NULL;
    }

    for (i = 0; i < u->ngroups && i < STORE_MAX_GROUPS; i++) {
        if (json_array_append_new(groups, ztctl_json_text(u->groups[i]))
            != 0)
        {
            json_decref(groups);
            return NULL;
        }
    }

    status = u->disabled ? "disabled"
             : u->locked_until > now ? "locked" : "active";

    return json_pack("{s:o, s:o, s:o, s:b, s:s, s:o, s:o, s:i, s:o, s:o,"
                     " s:b, s:s, s:o, s:o, s:o}",
                     "name", ztctl_json_text(u->name),
                     "display", ztctl_json_text(u->display),
                     "groups", groups,
                     "password_set", u->pwhash[0] != '\0',
                     "totp", store_totp_state_name(u->totp_state),
                     "totp_algo", u->totp_state != STORE_TOTP_NONE
                                  ? json_string(ztctl_algo_name(u->totp_algo))
                                  : json_null(),
                     "totp_digits", u->totp_state != STORE_TOTP_NONE
                                    ? json_integer(u->totp_digits)
                                    : json_null(),
                     "failures", (int) u->failures,
                     "last_failure", ztctl_json_time(u->last_failure),
                     "locked_until", ztctl_json_time(u->locked_until),
                     "disabled", u->disabled != 0,
                     "status", status,
                     "created_at", ztctl_json_time(u->created_at),
                     "created_by", ztctl_json_text(u->created_by),
                     "updated_at", ztctl_json_time(u->updated_at));
}


json_t *
ztctl_json_session(const store_session_t *s, int64_t now)
{
    char  sid[STORE_SID_AUDIT_LEN + 1], hex[2 * STORE_FP_LEN + 1];

    snprintf(sid, sizeof(sid), "%.*s", STORE_SID_AUDIT_LEN, s->sid);

    if (s->has_device) {
        store_fp_hex(s->device_fp, hex);
    }

    return json_pack("{s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:b, s:b, s:o,"
                     " s:o}",
                     "sid", sid,
                     "user", ztctl_json_text(s->user),
                     "device_fp", s->has_device ? json_string(hex)
                                                : json_null(),
                     "created_at", ztctl_json_time(s->created_at),
                     "mfa_at", ztctl_json_time(s->mfa_at),
                     "last_seen", ztctl_json_time(s->last_seen),
                     "expires_at", ztctl_json_time(s->expires_at),
                     "expired", s->expires_at != 0 && s->expires_at <= now,
                     "revoked", s->revoked != 0,
                     "revoked_at", s->revoked
                                   ? ztctl_json_time(s->revoked_at)
                                   : json_null(),
                     "source", ztctl_json_text(s->source));
}


json_t *
ztctl_json_blocklist(const store_blocklist_t *e)
{
    return json_pack("{s:o, s:o, s:o, s:o, s:o, s:o}",
                     "feed", ztctl_json_text(e->feed),
                     "entry", ztctl_json_text(e->cidr),
                     "expires_at", ztctl_json_time(e->expires),
                     "added_at", ztctl_json_time(e->added_at),
                     "added_by", ztctl_json_text(e->added_by),
                     "reason", ztctl_json_text(e->reason));
}


json_t *
ztctl_json_posture(const store_device_t *dev, const store_posture_t *p,
    int64_t now, int64_t max_age)
{
    char     hex[2 * STORE_FP_LEN + 1];
    int64_t  age;

    store_fp_hex(dev->fp, hex);

    if (p == NULL) {
        return json_pack("{s:o, s:s, s:b, s:n, s:n, s:n, s:n, s:n, s:n,"
                         " s:n, s:n, s:n, s:n, s:b, s:n, s:I}",
                         "device", ztctl_json_text(dev->id),
                         "fingerprint", hex,
                         "reported", 0,
                         "os", "os_version", "patch_date",
                         "disk_encrypted", "firewall", "screen_lock",
                         "endpoint_protection", "reported_at",
                         "received_at", "source",
                         "stale", 1,
                         "age_seconds",
                         "max_age_seconds", (json_int_t) max_age);
    }

    age = now - p->received_at;
    if (age < 0) {
        age = 0;
    }

    return json_pack("{s:o, s:s, s:b, s:o, s:o, s:o, s:o, s:o, s:o, s:o,"
                     " s:o, s:o, s:o, s:b, s:I, s:I}",
                     "device", ztctl_json_text(dev->id),
                     "fingerprint", hex,
                     "reported", 1,
                     "os", p->os[0] != '\0' ? ztctl_json_text(p->os)
                                            : json_null(),
                     "os_version", p->os_version[0] != '\0'
                                   ? ztctl_json_text(p->os_version)
                                   : json_null(),
                     "patch_date", ztctl_json_date(p->patch_time),
                     "disk_encrypted", ztctl_json_flag(p->disk_encrypted),
                     "firewall", ztctl_json_flag(p->firewall),
                     "screen_lock", ztctl_json_flag(p->screen_lock),
                     "endpoint_protection",
                     ztctl_json_flag(p->endpoint_protection),
                     "reported_at", ztctl_json_time(p->reported_at),
                     "received_at", ztctl_json_time(p->received_at),
                     "source", ztctl_json_text(p->source),
                     "stale", age > max_age,
                     "age_seconds", (json_int_t) age,
                     "max_age_seconds", (json_int_t) max_age);
}


int
ztctl_json_print(json_t *root)
{
    int  rc;

    if (root == NULL) {
        fprintf(stderr, "ztctl: out of memory for the JSON output\n");
        return ZTCTL_FAILED;
    }

    rc = json_dumpf(root, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(root);

    if (rc != 0 || fputc('\n', stdout) == EOF) {
        fprintf(stderr, "ztctl: cannot write the JSON output\n");
        return ZTCTL_FAILED;
    }

    return ZTCTL_OK;
}
