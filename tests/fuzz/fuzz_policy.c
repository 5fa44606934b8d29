/*
 * Fuzz target for the policy language: arbitrary bytes go to
 * pol_load_string().  When they load, a few fixed requests are evaluated
 * and explained, and the canonical form must load again, decide the same
 * way and format to itself.  The same bytes also go to the .cases reader.
 * Any broken invariant aborts.
 */

#include <stdlib.h>
#include <string.h>

#include "policy.h"
#include "cases.h"
#include "fuzz.h"

#define FUZZ_NINPUTS    4

static void fuzz_inputs(pol_input_t *in);
static void fuzz_check_decision(const pol_decision_t *d);
static int fuzz_same(const pol_decision_t *a, const pol_decision_t *b);


static void
fuzz_inputs(pol_input_t *in)
{
    static const char  *hosts[FUZZ_NINPUTS] = {
        "hr.agency.example", "A.HR.agency.example:443", "x.example.", ""
    };
    static const char  *paths[FUZZ_NINPUTS] = {
        "/admin/users", "/public/a.pdf", "/", "/api/v1/x/y"
    };
    static const char  *groups[2] = { "hr-admins", "staff" };
    int                 i;

    for (i = 0; i < FUZZ_NINPUTS; i++) {
        pol_input_init(&in[i]);
        in[i].method.data = (i & 1) ? "POST" : "get";
        in[i].method.len = strlen(in[i].method.data);
        in[i].host.data = hosts[i];
        in[i].host.len = strlen(hosts[i]);
        in[i].path.data = paths[i];
        in[i].path.len = strlen(paths[i]);
        in[i].now = 1795485600 + i * 40000;
    }

    in[0].authenticated = 1;
    in[0].user.data = "alice";
    in[0].user.len = 5;
    in[0].groups[0].data = groups[0];
    in[0].groups[0].len = strlen(groups[0]);
    in[0].groups[1].data = groups[1];
    in[0].groups[1].len = strlen(groups[1]);
    in[0].ngroups = 2;
    in[0].auth_methods = POL_AUTH_PASSWORD | POL_AUTH_TOTP;
    in[0].mfa_time = in[0].now - 300;
    in[0].device_status = POL_DEVICE_ACTIVE;
    in[0].device_owner = in[0].user;
    in[0].posture_time = in[0].now - 7200;
    in[0].disk_encrypted = POL_TRUE;
    in[0].firewall = POL_FALSE;
    in[0].addr_family = 4;
    in[0].addr[0] = 10;
    in[0].addr[1] = 20;
    in[0].addr[3] = 5;
    in[0].trust_score = 85;

    in[1].addr_family = 6;
    in[1].addr[10] = 0xff;
    in[1].addr[11] = 0xff;
    in[1].addr[12] = 192;
    in[1].addr[13] = 168;
    in[1].blocklisted = 1;

    in[2].addr_family = 6;
    in[2].addr[0] = 0x20;
    in[2].addr[1] = 0x01;
    in[2].addr[2] = 0x0d;
    in[2].addr[3] = 0xb8;
}


static void
fuzz_check_decision(const pol_decision_t *d)
{
    if (d->outcome < POL_ALLOW || d->outcome > POL_STEP_UP
        || d->nheaders > POL_MAX_HEADERS || d->nreports > POL_MAX_REPORTS
        || (d->outcome == POL_DENY && (d->status < 400 || d->status > 599))
        || (d->outcome != POL_ALLOW && d->nheaders != 0)
        || d->reason.data == NULL || d->rule.data == NULL
        || d->app.data == NULL)
    {
        abort();
    }
}


static int
fuzz_same(const pol_decision_t *a, const pol_decision_t *b)
{
    return a->outcome == b->outcome && a->status == b->status
           && a->ttl_ms == b->ttl_ms && a->nheaders == b->nheaders
           && a->nreports == b->nreports && a->rule.len == b->rule.len
           && memcmp(a->rule.data, b->rule.data, a->rule.len) == 0;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pol_diags_t     diags;
    pol_decision_t  d, e;
    pol_input_t     in[FUZZ_NINPUTS];
    pol_trace_t     trace[16];
    pol_t          *pol, *again;
    pol_cases_t    *cs;
    char           *buf, *text, *text2;
    size_t          len, len2, n;
    int             i;

    /* an exactly sized heap copy: ASan flags any read past the end */
    buf = malloc(size ? size : 1);
    if (buf == NULL) {
        return 0;
    }
    if (size) {
        memcpy(buf, data, size);
    }

    fuzz_inputs(in);

    if (pol_load_string("fuzz.policy", buf, size, &pol, &diags) == 0) {
        if (pol == NULL || diags.nerrors != 0) {
            abort();
        }

        for (i = 0; i < FUZZ_NINPUTS; i++) {
            pol_eval(pol, &in[i], &d);
            fuzz_check_decision(&d);
            n = pol_explain(pol, &in[i], &e, trace, 16);
            if (n > 16 || !fuzz_same(&d, &e)) {
                abort();
            }
        }

        /* the canonical form loads, decides the same and is stable */
        if (pol_fmt_string("fuzz.policy", buf, size, &text, &len, &diags)
            != 0)
        {
            abort();
        }
        if (pol_load_string("fmt.policy", text, len, &again, &diags) != 0) {
            abort();
        }
        for (i = 0; i < FUZZ_NINPUTS; i++) {
            pol_eval(pol, &in[i], &d);
            pol_eval(again, &in[i], &e);
            if (!fuzz_same(&d, &e)) {
                abort();
            }
        }
        if (pol_fmt_string("fmt.policy", text, len, &text2, &len2, &diags)
            != 0 || len2 != len || memcmp(text, text2, len) != 0)
        {
            abort();
        }
        free(text);
        free(text2);
        pol_free(again);
        pol_free(pol);

    } else if (pol != NULL || diags.nerrors == 0) {
        abort();
    }

    if (pol_cases_load_string("fuzz.cases", buf, size, &cs, &diags) == 0) {
        for (n = 0; n < pol_cases_count(cs); n++) {
            if (pol_cases_get(cs, n) == NULL) {
                abort();
            }
        }
        pol_cases_free(cs);
    }

    free(buf);
    return 0;
}
