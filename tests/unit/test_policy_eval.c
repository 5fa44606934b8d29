/*
 * Unit tests for policy evaluation (policy/eval.c and the compiler behind
 * it): host selection, path matching, methods, every attribute type and
 * its absent value, boolean operators, sets, CIDRs, time with a timezone,
 * which rule decides, report-only rules, headers, cache lifetime, and the
 * explain trace.
 */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "policy.h"

#define T_NOW   1795996800      /* 2026-11-30T00:00:00Z, a Monday */

static pol_t *test_load(const char *text);
static void test_input(pol_input_t *in, const char *method,
    const char *host, const char *path);
static pol_str_t test_s(const char *s);
static void test_expect(const pol_t *pol, const pol_input_t *in,
    pol_outcome_t outcome, const char *rule);
static int test_when(const char *cond, const pol_input_t *in);
static void test_host_selection(void **state);
static void test_paths(void **state);
static void test_methods(void **state);
static void test_user_attributes(void **state);
static void test_device_attributes(void **state);
static void test_posture_attributes(void **state);
static void test_request_attributes(void **state);
static void test_context_attributes(void **state);
static void test_boolean_operators(void **state);
static void test_sets(void **state);
static void test_cidrs(void **state);
static void test_durations(void **state);
static void test_time(void **state);
static void test_deny_wins(void **state);
static void test_first_match(void **state);
static void test_default_deny(void **state);
static void test_report_only(void **state);
static void test_headers_and_cache(void **state);
static void test_explain(void **state);
static void test_index_many_rules(void **state);
static void test_glob_edge_cases(void **state);
static int test_model(int i, const char *path, const char *method);


static pol_t *
test_load(const char *text)
{
    pol_diags_t   d;
    pol_t        *pol;
    char          line[700];
    unsigned      i;

    if (pol_load_string("t.policy", text, strlen(text), &pol, &d) != 0) {
        for (i = 0; i < d.ndiags; i++) {
            pol_diag_format(&d.diags[i], line, sizeof(line));
            print_error("%s\n", line);
        }
        fail_msg("policy did not load");
    }
    return pol;
}


static pol_str_t
test_s(const char *s)
{
    pol_str_t  r;

    r.data = s;
    r.len = strlen(s);
    return r;
}


static void
test_input(pol_input_t *in, const char *method, const char *host,
    const char *path)
{
    pol_input_init(in);
    in->method = test_s(method);
    in->host = test_s(host);
    in->path = test_s(path);
    in->now = T_NOW;
}


static void
test_expect(const pol_t *pol, const pol_input_t *in, pol_outcome_t outcome,
    const char *rule)
{
    pol_decision_t  d;

    pol_eval(pol, in, &d);
    if (d.outcome != outcome || d.rule.len != strlen(rule)
        || memcmp(d.rule.data, rule, d.rule.len) != 0)
    {
        print_error("host %.*s path %.*s: got %s by \"%.*s\", expected %s "
                    "by \"%s\"\n", (int) in->host.len, in->host.data,
                    (int) in->path.len, in->path.data,
                    pol_outcome_name(d.outcome), (int) d.rule.len,
                    d.rule.data, pol_outcome_name(outcome), rule);
        fail();
    }
}


/* Does condition cond hold for in?  (in's host and path are replaced.) */
static int
test_when(const char *cond, const pol_input_t *in)
{
    char            text[2048];
    pol_t          *pol;
    pol_input_t     copy;
    pol_decision_t  d;

    snprintf(text, sizeof(text),
             "timezone \"+08:00\"\n"
             "network office = 10.20.0.0/16, 2001:db8:20::/48\n"
             "network any4 = 0.0.0.0/0\n"
             "group admins = \"hr-admins\", \"it-security\"\n"
             "condition yes = true\n"
             "app \"a\" { host \"t.example\" rule \"r\" { when %s allow } }\n"
             "condition use = yes or source in office or source in any4 "
             "or user.groups in admins\n", cond);
    pol = test_load(text);
    copy = *in;
    copy.host = test_s("t.example");
    pol_eval(pol, &copy, &d);
    pol_free(pol);
    return d.outcome == POL_ALLOW;
}


static void
test_host_selection(void **state)
{
    pol_t       *pol;
    pol_input_t  in;

    (void) state;
    pol = test_load(
        "app \"exact\" { host \"a.b.example\" rule \"e\" { allow } }\n"
        "app \"wild\" { host \"*.b.example\" rule \"w\" { allow } }\n"
        "app \"wild2\" { host \"*.example\" rule \"w2\" { allow } }\n"
        "app \"Other\" { host \"Mixed.Example.ORG\" rule \"m\" { allow } }\n"
        "app \"any\" { host \"*\" rule \"f\" { allow } }\n");

    test_input(&in, "GET", "a.b.example", "/");
    test_expect(pol, &in, POL_ALLOW, "e");
    in.host = test_s("A.B.EXAMPLE:8443");
    test_expect(pol, &in, POL_ALLOW, "e");
    in.host = test_s("a.b.example.");
    test_expect(pol, &in, POL_ALLOW, "e");
    in.host = test_s("a.b.example.:443");
    test_expect(pol, &in, POL_ALLOW, "e");
    in.host = test_s("x.b.example");
    test_expect(pol, &in, POL_ALLOW, "w");
    in.host = test_s("y.x.b.example");
    test_expect(pol, &in, POL_ALLOW, "w");
    in.host = test_s("b.example");          /* not *.b.example */
    test_expect(pol, &in, POL_ALLOW, "w2");
    in.host = test_s("example");
    test_expect(pol, &in, POL_ALLOW, "f");
    in.host = test_s("mixed.example.org");
    test_expect(pol, &in, POL_ALLOW, "m");
    in.host = test_s("elsewhere.org");
    test_expect(pol, &in, POL_ALLOW, "f");
    in.host = test_s("");
    test_expect(pol, &in, POL_ALLOW, "f");
    pol_free(pol);

    /* without a "*" app: no app, default deny with an empty app name */
    pol = test_load("app \"x\" { host \"x.example\" rule \"r\" { allow } }");
    test_input(&in, "GET", "y.example", "/");
    test_expect(pol, &in, POL_DENY, "");
    pol_free(pol);
}


static void
test_paths(void **state)
{
    pol_t       *pol;
    pol_input_t  in;
    static const struct {
        const char  *path;
        const char  *rule;
    } cases[] = {
        { "/exact", "exact" },
        { "/exact/", "" },
        { "/exactly", "" },
        { "/admin", "prefix" },
        { "/admin/", "prefix" },
        { "/admin/users/1", "prefix" },
        { "/administrator", "" },
        { "/docs/a.pdf", "star" },
        { "/docs/sub/a.pdf", "dstar" },
        { "/docs/.pdf", "star" },
        { "/docs/a.pdfx", "" },
        { "/api/", "api" },
        { "/api/v1/x", "api" },
        { "/api", "" },
        { "/f/a1", "qmark" },
        { "/f/a12", "" },
        { "/f/a/", "" },
        { "/x/y/z/deep.txt", "anywhere" },
        { "/case/ABC", "" },
        { "/case/abc", "case" },
        { "/", "root" },
    };
    size_t  i;

    (void) state;
    pol = test_load(
        "app \"a\" { host \"a.example\"\n"
        "rule \"exact\" { path \"/exact\" allow }\n"
        "rule \"prefix\" { path prefix \"/admin/\" allow }\n"
        "rule \"star\" { path \"/docs/*.pdf\" allow }\n"
        "rule \"dstar\" { path \"/docs/**.pdf\" allow }\n"
        "rule \"api\" { path \"/api/**\" allow }\n"
        "rule \"qmark\" { path \"/f/a?\" allow }\n"
        "rule \"anywhere\" { path \"/**/deep.txt\" allow }\n"
        "rule \"case\" { path \"/case/abc\" allow }\n"
        "rule \"root\" { path \"/\" allow }\n"
        "}\n");

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        test_input(&in, "GET", "a.example", cases[i].path);
        test_expect(pol, &in, cases[i].rule[0] ? POL_ALLOW : POL_DENY,
                    cases[i].rule);
    }
    pol_free(pol);

    pol = test_load("app \"a\" { host \"a.example\" rule \"all\" "
                    "{ path prefix \"/\" allow } }");
    test_input(&in, "GET", "a.example", "/anything/at/all");
    test_expect(pol, &in, POL_ALLOW, "all");
    pol_free(pol);
}


static void
test_glob_edge_cases(void **state)
{
    pol_t       *pol;
    pol_input_t  in;

    (void) state;
    pol = test_load(
        "app \"a\" { host \"a.example\"\n"
        "rule \"many\" { path \"/**a**a**a**a**a**b\" allow }\n"
        "rule \"stars\" { path \"/s/***\" allow }\n"
        "}\n");
    test_input(&in, "GET", "a.example",
               "/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
               "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaac");
    test_expect(pol, &in, POL_DENY, "");
    in.path = test_s("/xaxaxaxayyyyyya/b");
    test_expect(pol, &in, POL_ALLOW, "many");
    in.path = test_s("/s/x/y");
    test_expect(pol, &in, POL_ALLOW, "stars");
    pol_free(pol);
}


static void
test_methods(void **state)
{
    pol_t       *pol;
    pol_input_t  in;

    (void) state;
    pol = test_load(
        "app \"a\" { host \"a.example\"\n"
        "rule \"read\" { method GET, head allow }\n"
        "rule \"dav\" { method PROPFIND step-up }\n"
        "rule \"write\" { method POST, \"PUT\" login }\n"
        "}\n");
    test_input(&in, "GET", "a.example", "/");
    test_expect(pol, &in, POL_ALLOW, "read");
    in.method = test_s("head");
    test_expect(pol, &in, POL_ALLOW, "read");
    in.method = test_s("propfind");
    test_expect(pol, &in, POL_STEP_UP, "dav");
    in.method = test_s("put");
    test_expect(pol, &in, POL_LOGIN, "write");
    in.method = test_s("DELETE");
    test_expect(pol, &in, POL_DENY, "");
    in.method = test_s("MKCOL");
    test_expect(pol, &in, POL_DENY, "");
    pol_free(pol);
}


static void
test_user_attributes(void **state)
{
    pol_input_t  in;

    (void) state;
    test_input(&in, "GET", "t.example", "/");

    /* absent values */
    assert_false(test_when("user.authenticated", &in));
    assert_true(test_when("user.name == \"\"", &in));
    assert_false(test_when("user.groups contains \"staff\"", &in));
    assert_false(test_when("auth.methods contains \"password\"", &in));
    assert_false(test_when("auth.mfa_age < 3650d", &in));
    assert_true(test_when("auth.mfa_age > 3650d", &in));

    in.authenticated = 1;
    in.user = test_s("alice");
    in.groups[0] = test_s("staff");
    in.groups[1] = test_s("hr-admins");
    in.ngroups = 2;
    in.auth_methods = POL_AUTH_PASSWORD | POL_AUTH_TOTP;
    in.mfa_time = T_NOW - 300;

    assert_true(test_when("user.authenticated", &in));
    assert_true(test_when("user.name == \"alice\"", &in));
    assert_false(test_when("user.name == \"Alice\"", &in));
    assert_true(test_when("user.name != \"bob\"", &in));
    assert_true(test_when("user.groups contains \"staff\"", &in));
    assert_false(test_when("user.groups contains \"Staff\"", &in));
    assert_true(test_when("user.groups in admins", &in));
    assert_true(test_when("user.groups in group admins", &in));
    assert_false(test_when("user.groups not in admins", &in));
    assert_true(test_when("\"staff\" in user.groups", &in));
    assert_true(test_when("user.name in (\"bob\", \"alice\")", &in));
    assert_true(test_when("auth.methods contains \"totp\"", &in));
    assert_false(test_when("auth.methods contains \"webauthn\"", &in));
    assert_true(test_when("auth.methods in (\"webauthn\", \"totp\")", &in));
    assert_false(test_when("auth.methods in (\"webauthn\", \"cert\")", &in));
    assert_true(test_when("\"password\" in auth.methods", &in));
    assert_true(test_when("auth.mfa_age < 15m", &in));
    assert_true(test_when("auth.mfa_age == 5m", &in));
    assert_false(test_when("auth.mfa_age < 5m", &in));

    /* groups of a user who is not authenticated are not considered */
    in.authenticated = 0;
    assert_false(test_when("user.groups contains \"staff\"", &in));
    assert_true(test_when("user.name == \"\"", &in));
}


static void
test_device_attributes(void **state)
{
    pol_input_t  in;

    (void) state;
    test_input(&in, "GET", "t.example", "/");

    assert_false(test_when("device.known", &in));
    assert_true(test_when("device.status == none", &in));
    assert_true(test_when("device.id == \"\" and device.owner == \"\"", &in));
    assert_false(test_when("device.bound", &in));

    in.device_status = POL_DEVICE_UNKNOWN;
    assert_false(test_when("device.known", &in));
    assert_true(test_when("device.status == unknown", &in));
    in.device_status = POL_DEVICE_QUARANTINED;
    assert_true(test_when("device.known", &in));
    assert_true(test_when("device.status in (quarantined, revoked)", &in));
    in.device_status = POL_DEVICE_REVOKED;
    assert_false(test_when("device.known", &in));
    in.device_status = POL_DEVICE_ACTIVE;
    assert_true(test_when("device.known and device.status == active", &in));
    assert_true(test_when("active == device.status", &in));
    assert_true(test_when("device.status != revoked", &in));

    in.device_id = test_s("urn:d:1");
    in.device_owner = test_s("alice");
    assert_true(test_when("device.id == \"urn:d:1\"", &in));
    assert_false(test_when("device.bound", &in));
    in.authenticated = 1;
    in.user = test_s("alice");
    assert_true(test_when("device.bound", &in));
    assert_true(test_when("device.owner == user.name", &in));
    in.user = test_s("bob");
    assert_false(test_when("device.bound", &in));
}


static void
test_posture_attributes(void **state)
{
    pol_input_t  in;

    (void) state;
    test_input(&in, "GET", "t.example", "/");

    assert_false(test_when("device.posture.disk_encrypted", &in));
    assert_true(test_when("not device.posture.firewall", &in));
    assert_false(test_when("device.posture.screen_lock", &in));
    assert_false(test_when("device.posture.endpoint_protection", &in));
    assert_false(test_when("device.posture.reported", &in));
    assert_false(test_when("device.posture.age < 3650d", &in));
    assert_false(test_when("device.posture.patch_age < 3650d", &in));
    assert_true(test_when("device.posture.os == \"\"", &in));

    in.posture_time = T_NOW - 7980;     /* 2h13m */
    in.disk_encrypted = POL_TRUE;
    in.firewall = POL_FALSE;
    in.screen_lock = POL_TRUE;
    in.endpoint_protection = POL_TRUE;
    in.os = test_s("debian");
    in.os_version = test_s("12");
    in.patch_time = T_NOW - 3 * 86400;

    assert_true(test_when("device.posture.disk_encrypted", &in));
    assert_false(test_when("device.posture.firewall", &in));
    assert_true(test_when("device.posture.screen_lock and "
                          "device.posture.endpoint_protection", &in));
    assert_true(test_when("device.posture.reported", &in));
    assert_true(test_when("device.posture.age < 24h", &in));
    assert_true(test_when("device.posture.age == 2h13m", &in));
    assert_true(test_when("device.posture.age >= 2h", &in));
    assert_false(test_when("device.posture.age <= 2h", &in));
    assert_true(test_when("device.posture.patch_age < 7d", &in));
    assert_true(test_when("device.posture.os == \"debian\" and "
                          "device.posture.os_version in (\"11\", \"12\")",
                          &in));
}


static void
test_request_attributes(void **state)
{
    pol_input_t  in;

    (void) state;
    test_input(&in, "post", "t.example", "/Reports/x");
    assert_true(test_when("request.method == \"POST\"", &in));
    assert_true(test_when("request.method in (\"get\", \"Post\")", &in));
    assert_false(test_when("request.method != \"POST\"", &in));
    assert_true(test_when("request.host == \"T.EXAMPLE\"", &in));
    assert_true(test_when("request.host in (\"T.Example\")", &in));
    assert_true(test_when("request.path == \"/Reports/x\"", &in));
    assert_false(test_when("request.path == \"/reports/x\"", &in));
}


static void
test_context_attributes(void **state)
{
    pol_input_t  in;

    (void) state;
    test_input(&in, "GET", "t.example", "/");
    assert_false(test_when("context.blocklisted", &in));
    assert_false(test_when("context.new_address", &in));
    assert_false(test_when("trust.score >= 70", &in));
    assert_true(test_when("trust.score < 0", &in));
    in.blocklisted = 1;
    in.new_address = 1;
    in.trust_score = 85;
    assert_true(test_when("context.blocklisted and context.new_address",
                          &in));
    assert_true(test_when("trust.score >= 70 and trust.score <= 85", &in));
    assert_false(test_when("trust.score > 85", &in));
    assert_true(test_when("trust.score in (84, 85)", &in));
}


static void
test_boolean_operators(void **state)
{
    pol_input_t  in;

    (void) state;
    test_input(&in, "GET", "t.example", "/");
    assert_true(test_when("true", &in));
    assert_false(test_when("false", &in));
    assert_true(test_when("true and true", &in));
    assert_false(test_when("true and false", &in));
    assert_true(test_when("false or true", &in));
    assert_false(test_when("false or false", &in));
    assert_true(test_when("not false", &in));
    assert_false(test_when("not true", &in));
    assert_true(test_when("not not true", &in));
    assert_true(test_when("false or true and true", &in));
    assert_false(test_when("(false or true) and false", &in));
    assert_true(test_when("false or not (true and false)", &in));
    assert_true(test_when("yes", &in));
    assert_false(test_when("not yes", &in));
    assert_true(test_when("yes == true", &in));
    assert_true(test_when("device.known == false", &in));
}


static void
test_sets(void **state)
{
    pol_input_t  in;

    (void) state;
    test_input(&in, "GET", "t.example", "/");
    in.authenticated = 1;
    in.user = test_s("m");
    assert_true(test_when("user.name in (\"z\", \"a\", \"m\", \"b\")", &in));
    assert_false(test_when("user.name in (\"z\", \"a\", \"M\", \"b\")", &in));
    assert_true(test_when("user.name not in (\"z\", \"a\")", &in));
    assert_false(test_when("user.name not in (\"m\")", &in));
    assert_true(test_when("user.name in admins or user.name == \"m\"", &in));
    assert_true(test_when("time.weekday in (mon, tue)", &in));
    assert_true(test_when("time.weekday not in (sat, sun)", &in));
    assert_true(test_when("auth.mfa_age not in (5m)", &in));
}


static void
test_cidrs(void **state)
{
    pol_input_t  in;
    static const uint8_t  v6[16] = {
        0x20, 0x01, 0x0d, 0xb8, 0x00, 0x20, 0x00, 0x00,
        0, 0, 0, 0, 0, 0, 0, 5
    };
    static const uint8_t  v6out[16] = { 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x21 };
    static const uint8_t  mapped[16] = {
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 20, 1, 5
    };

    (void) state;
    test_input(&in, "GET", "t.example", "/");

    /* unknown: every address test is false, even not in */
    assert_false(test_when("source in office", &in));
    assert_false(test_when("source not in office", &in));
    assert_false(test_when("source == 10.20.1.5", &in));
    assert_false(test_when("source != 10.20.1.5", &in));
    assert_true(test_when("not source in office", &in));

    in.addr_family = 4;
    in.addr[0] = 10;
    in.addr[1] = 20;
    in.addr[2] = 1;
    in.addr[3] = 5;
    assert_true(test_when("source in office", &in));
    assert_true(test_when("source.address in network office", &in));
    assert_false(test_when("source not in office", &in));
    assert_true(test_when("source == 10.20.1.5", &in));
    assert_true(test_when("source in (192.168.0.0/16, 10.20.1.0/24)", &in));
    assert_false(test_when("source in (10.20.1.6/31)", &in));
    assert_true(test_when("source in (10.20.1.5)", &in));
    assert_true(test_when("source in any4", &in));
    assert_false(test_when("source in (::/0)", &in));
    in.addr[1] = 21;
    assert_false(test_when("source in office", &in));

    in.addr_family = 6;
    memcpy(in.addr, v6, 16);
    assert_true(test_when("source in office", &in));
    assert_true(test_when("source == 2001:db8:20::5", &in));
    assert_false(test_when("source in any4", &in));
    memcpy(in.addr, v6out, 16);
    assert_false(test_when("source in office", &in));

    /* IPv4-mapped IPv6 matches IPv4 networks */
    memcpy(in.addr, mapped, 16);
    assert_true(test_when("source in office", &in));
    assert_true(test_when("source == 10.20.1.5", &in));
}


static void
test_durations(void **state)
{
    pol_input_t  in;

    (void) state;
    test_input(&in, "GET", "t.example", "/");
    in.mfa_time = T_NOW - 5400;
    assert_true(test_when("auth.mfa_age == 1h30m", &in));
    assert_true(test_when("auth.mfa_age == 90m", &in));
    assert_true(test_when("auth.mfa_age > 1h and auth.mfa_age < 2h", &in));
    /* a factor "in the future" (clock skew) counts as just now */
    in.mfa_time = T_NOW + 100;
    assert_true(test_when("auth.mfa_age == 0s", &in));
}


static void
test_time(void **state)
{
    pol_input_t  in;

    (void) state;
    test_input(&in, "GET", "t.example", "/");

    /* 2026-11-30T00:00:00Z is Monday 08:00 at +08:00 */
    assert_true(test_when("time.hour == 8 and time.minute == 0", &in));
    assert_true(test_when("time.weekday == mon", &in));
    in.now = T_NOW - 1;         /* Monday 07:59:59 */
    assert_true(test_when("time.hour == 7 and time.minute == 59", &in));
    assert_true(test_when("time.hour < 8", &in));
    in.now = T_NOW - 8 * 3600 - 1;  /* Sunday 23:59:59 local */
    assert_true(test_when("time.weekday == sun and time.hour == 23", &in));
    assert_true(test_when("time.weekday > sat", &in));
    assert_true(test_when("time.weekday >= mon", &in));
    in.now = T_NOW + 4 * 86400 + 9 * 3600 + 30 * 60;   /* Fri 17:30 */
    assert_true(test_when("time.weekday == fri and time.hour == 17 and "
                          "time.minute == 30", &in));
    assert_true(test_when("time.weekday in (mon, tue, wed, thu, fri) and "
                          "time.hour >= 8 and time.hour < 18", &in));
    in.now = -1;                /* 1969-12-31T23:59:59Z = Thu 07:59 local */
    assert_true(test_when("time.weekday == thu and time.hour == 7", &in));
}


static void
test_deny_wins(void **state)
{
    pol_t          *pol;
    pol_input_t     in;
    pol_decision_t  d;

    (void) state;
    pol = test_load(
        "app \"a\" { host \"a.example\"\n"
        "rule \"open\" { allow }\n"
        "rule \"first deny\" { path prefix \"/admin\" deny 451 \"Keep out\" }\n"
        "rule \"second deny\" { path prefix \"/admin\" deny }\n"
        "rule \"login\" { path \"/admin/x\" login }\n"
        "}\n");
    test_input(&in, "GET", "a.example", "/admin/x");
    pol_eval(pol, &in, &d);
    assert_int_equal(d.outcome, POL_DENY);
    assert_int_equal(d.status, 451);
    assert_int_equal(d.reason.len, 8);
    assert_memory_equal(d.reason.data, "Keep out", 8);
    assert_int_equal(d.rule.len, 10);
    assert_memory_equal(d.rule.data, "first deny", 10);
    assert_int_equal(d.line, 3);
    assert_int_equal(d.file.len, 8);
    assert_memory_equal(d.app.data, "a", 1);
    assert_int_equal(d.nheaders, 0);

    in.path = test_s("/public");
    test_expect(pol, &in, POL_ALLOW, "open");
    pol_free(pol);

    /* default reason and status */
    pol = test_load("app \"a\" { host \"a.example\" rule \"r\" { allow } "
                    "rule \"no\" { when true deny } }");
    test_input(&in, "GET", "a.example", "/");
    pol_eval(pol, &in, &d);
    assert_int_equal(d.outcome, POL_DENY);
    assert_int_equal(d.status, 403);
    assert_string_equal(d.reason.data, "denied by rule no");
    pol_free(pol);
}


static void
test_first_match(void **state)
{
    pol_t       *pol;
    pol_input_t  in;

    (void) state;
    pol = test_load(
        "app \"a\" { host \"a.example\"\n"
        "rule \"needs login\" { when not user.authenticated login }\n"
        "rule \"step\" { path prefix \"/hr\" when auth.mfa_age > 15m "
        "step-up }\n"
        "rule \"hr\" { path prefix \"/hr\" allow }\n"
        "rule \"all\" { allow }\n"
        "}\n");
    test_input(&in, "GET", "a.example", "/hr/x");
    test_expect(pol, &in, POL_LOGIN, "needs login");
    in.authenticated = 1;
    test_expect(pol, &in, POL_STEP_UP, "step");
    in.mfa_time = T_NOW - 60;
    test_expect(pol, &in, POL_ALLOW, "hr");
    in.path = test_s("/other");
    test_expect(pol, &in, POL_ALLOW, "all");
    pol_free(pol);
}


static void
test_default_deny(void **state)
{
    pol_t          *pol;
    pol_input_t     in;
    pol_decision_t  d;

    (void) state;
    pol = test_load("app \"a\" { host \"a.example\" rule \"r\" { path \"/x\" "
                    "allow } }");
    test_input(&in, "GET", "a.example", "/y");
    pol_eval(pol, &in, &d);
    assert_int_equal(d.outcome, POL_DENY);
    assert_int_equal(d.status, 403);
    assert_string_equal(d.reason.data, "no rule allows this request");
    assert_int_equal(d.rule.len, 0);
    assert_int_equal(d.file.len, 0);
    assert_int_equal(d.line, 0);
    assert_int_equal(d.ttl_ms, -1);
    assert_int_equal(d.app.len, 1);

    in.host = test_s("b.example");
    pol_eval(pol, &in, &d);
    assert_int_equal(d.outcome, POL_DENY);
    assert_int_equal(d.app.len, 0);
    assert_int_equal(d.nreports, 0);
    pol_free(pol);
}


static void
test_report_only(void **state)
{
    pol_t          *pol;
    pol_input_t     in;
    pol_decision_t  d;

    (void) state;
    pol = test_load(
        "app \"a\" { host \"a.example\"\n"
        "rule \"try deny\" { path prefix \"/x\" deny report-only }\n"
        "rule \"try allow\" { path prefix \"/x\" allow report-only }\n"
        "rule \"try login\" { when not user.authenticated login "
        "report-only }\n"
        "rule \"x\" { path prefix \"/x\" allow }\n"
        "}\n");
    test_input(&in, "GET", "a.example", "/x/1");
    pol_eval(pol, &in, &d);
    assert_int_equal(d.outcome, POL_ALLOW);
    assert_memory_equal(d.rule.data, "x", 1);
    assert_int_equal(d.nreports, 2);
    assert_string_equal(d.reports[0].rule.data, "try deny");
    assert_int_equal(d.reports[0].outcome, POL_DENY);
    assert_string_equal(d.reports[1].rule.data, "try login");
    assert_int_equal(d.reports[1].outcome, POL_LOGIN);

    in.path = test_s("/y");
    pol_eval(pol, &in, &d);
    assert_int_equal(d.outcome, POL_DENY);
    assert_int_equal(d.rule.len, 0);
    assert_int_equal(d.nreports, 1);
    assert_string_equal(d.reports[0].rule.data, "try login");
    pol_free(pol);
}


static void
test_headers_and_cache(void **state)
{
    pol_t          *pol;
    pol_input_t     in;
    pol_decision_t  d;

    (void) state;
    pol = test_load(
        "app \"a\" { host \"a.example\"\n"
        "rule \"h\" { path \"/h\" allow header \"X-Role\" = \"admin\" "
        "header \"X-User\" = user.name header \"X-OS\" = device.posture.os "
        "cache 5s }\n"
        "rule \"zero\" { path \"/z\" allow cache 0s }\n"
        "rule \"none\" { allow }\n"
        "}\n");
    test_input(&in, "GET", "a.example", "/h");
    in.authenticated = 1;
    in.user = test_s("alice");
    pol_eval(pol, &in, &d);
    assert_int_equal(d.outcome, POL_ALLOW);
    assert_int_equal(d.status, 0);
    assert_int_equal(d.ttl_ms, 5000);
    assert_int_equal(d.nheaders, 3);
    assert_string_equal(d.headers[0].name.data, "X-Role");
    assert_string_equal(d.headers[0].value.data, "admin");
    assert_int_equal(d.headers[1].value.len, 5);
    assert_ptr_equal(d.headers[1].value.data, in.user.data);
    assert_int_equal(d.headers[2].value.len, 0);

    in.path = test_s("/z");
    pol_eval(pol, &in, &d);
    assert_int_equal(d.ttl_ms, 0);
    assert_int_equal(d.nheaders, 0);
    in.path = test_s("/other");
    pol_eval(pol, &in, &d);
    assert_int_equal(d.ttl_ms, -1);
    pol_free(pol);
}


static void
test_explain(void **state)
{
    pol_t          *pol;
    pol_input_t     in;
    pol_decision_t  d, e;
    pol_trace_t     tr[32];
    size_t          n;

    (void) state;
    pol = test_load(
        "group hr_admins = \"hr-admins\"\n"
        "condition managed_device = device.status == active and "
        "device.posture.disk_encrypted\n"
        "app \"hr\" { host \"hr.example\"\n"
        "rule \"public\" { path \"/public/**\" allow }\n"
        "rule \"admin area\" { path prefix \"/admin\"\n"
        "  when user.groups in hr_admins and managed_device and "
        "source in (10.0.0.0/8) and device.posture.age < 1h\n"
        "  allow }\n"
        "rule \"fallback\" { method POST deny }\n"
        "}\n");
    test_input(&in, "GET", "hr.example", "/admin/users");
    in.authenticated = 1;
    in.groups[0] = test_s("hr-admins");
    in.groups[1] = test_s("staff");
    in.ngroups = 2;
    in.addr_family = 4;
    in.addr[0] = 10;
    in.addr[1] = 20;
    in.addr[2] = 1;
    in.addr[3] = 5;
    in.posture_time = T_NOW - 7980;

    n = pol_explain(pol, &in, &d, tr, 32);
    pol_eval(pol, &in, &e);
    assert_int_equal(d.outcome, e.outcome);
    assert_int_equal(d.outcome, POL_DENY);
    assert_ptr_equal(d.rule.data, e.rule.data);

    assert_int_equal(n, 11);
    assert_string_equal(tr[0].text, "rule \"public\" (t.policy:4)");
    assert_string_equal(tr[0].seen, "path did not match (/admin/users vs "
                        "\"/public/**\")");
    assert_int_equal(tr[0].result, 0);
    assert_string_equal(tr[1].text, "rule \"admin area\" (t.policy:5)");
    assert_string_equal(tr[1].seen, "condition did not hold");
    assert_string_equal(tr[2].text, "and");
    assert_int_equal(tr[2].depth, 1);
    assert_string_equal(tr[3].text, "user.groups in hr_admins");
    assert_int_equal(tr[3].depth, 2);
    assert_int_equal(tr[3].result, 1);
    assert_string_equal(tr[3].seen, "[\"hr-admins\",\"staff\"]");
    assert_string_equal(tr[4].text, "managed_device");
    assert_int_equal(tr[4].result, 0);
    assert_string_equal(tr[5].text, "and");
    assert_int_equal(tr[5].depth, 3);
    assert_string_equal(tr[6].text, "device.status == active");
    assert_string_equal(tr[6].seen, "none");
    assert_string_equal(tr[7].text, "device.posture.disk_encrypted");
    assert_string_equal(tr[7].seen, "unreported");
    assert_int_equal(tr[7].depth, 4);
    assert_string_equal(tr[8].text, "source in (10.0.0.0/8)");
    assert_string_equal(tr[8].seen, "10.20.1.5");
    assert_int_equal(tr[8].result, 1);
    assert_string_equal(tr[9].text, "device.posture.age < 1h");
    assert_string_equal(tr[9].seen, "2h13m");
    assert_string_equal(tr[10].text, "rule \"fallback\" (t.policy:8)");
    assert_string_equal(tr[10].seen, "method did not match (GET)");

    /* a short trace buffer is filled and not overrun */
    assert_int_equal(pol_explain(pol, &in, &d, tr, 3), 3);
    pol_free(pol);
}


/* The reference answer for test_index_many_rules: a plain linear scan. */
static int
test_model(int i, const char *path, const char *method)
{
    char    pre[64];
    size_t  n;

    if (i == 200) {
        return strcmp(path, "/s5/x/late") == 0;
    }
    if (i % 10 == 9) {
        n = (size_t) snprintf(pre, sizeof(pre), "/s%d/deny", i % 20);
        return strncmp(path, pre, n) == 0
               && (path[n] == '\0' || path[n] == '/');
    }
    if (i % 7 == 3) {
        const char  *slash;

        n = (size_t) snprintf(pre, sizeof(pre), "/w%d", i);
        if (path[0] != '/') {
            return 0;
        }
        slash = strchr(path + 1, '/');
        return slash != NULL && strcmp(slash, pre) == 0;
    }
    n = (size_t) snprintf(pre, sizeof(pre), "/s%d/", i % 20);
    return strcmp(method, "GET") == 0 && strncmp(path, pre, n) == 0;
}


/* The first-segment index gives the same answers as a linear scan. */
static void
test_index_many_rules(void **state)
{
    static const char  *paths[] = {
        "/s3/x", "/s9/deny/x", "/s9/deny", "/s19/deny", "/s5/x/late",
        "/zz/w10", "/s0/w10", "/s3/w3", "/s1", "/", "", "/s7/deny/",
        "/s17/a/b/c", "/q/w199", "//w10", "/s5/x/late/"
    };
    static const char  *methods[] = { "GET", "POST" };
    char            text[65536], want[32];
    size_t          n, p, m;
    int             i, deny, first;
    pol_t          *pol;
    pol_input_t     in;
    pol_decision_t  d;

    (void) state;
    n = (size_t) snprintf(text, sizeof(text),
                          "app \"a\" { host \"a.example\"\n");
    for (i = 0; i < 200; i++) {
        if (i % 10 == 9) {
            n += (size_t) snprintf(text + n, sizeof(text) - n,
                                   "rule \"r%d\" { path prefix \"/s%d/deny\" "
                                   "deny }\n", i, i % 20);
        } else if (i % 7 == 3) {
            n += (size_t) snprintf(text + n, sizeof(text) - n,
                                   "rule \"r%d\" { path \"/*/w%d\" allow }\n",
                                   i, i);
        } else {
            n += (size_t) snprintf(text + n, sizeof(text) - n,
                                   "rule \"r%d\" { path \"/s%d/**\" method "
                                   "GET allow }\n", i, i % 20);
        }
    }
    snprintf(text + n, sizeof(text) - n,
             "rule \"r200\" { path \"/s5/x/late\" deny }\n}\n");
    pol = test_load(text);

    for (p = 0; p < sizeof(paths) / sizeof(paths[0]); p++) {
        for (m = 0; m < 2; m++) {
            deny = -1;
            first = -1;
            for (i = 0; i <= 200; i++) {
                if (!test_model(i, paths[p], methods[m])) {
                    continue;
                }
                if (first < 0) {
                    first = i;
                }
                if (i == 200 || i % 10 == 9) {
                    deny = i;
                    break;
                }
            }
            if (deny >= 0) {
                first = deny;
            }
            if (first >= 0) {
                snprintf(want, sizeof(want), "r%d", first);
            } else {
                want[0] = '\0';
            }

            test_input(&in, methods[m], "a.example", paths[p]);
            pol_eval(pol, &in, &d);
            if (d.rule.len != strlen(want)
                || memcmp(d.rule.data, want, d.rule.len) != 0)
            {
                print_error("%s %s: got \"%.*s\", want \"%s\"\n", methods[m],
                            paths[p], (int) d.rule.len, d.rule.data, want);
                fail();
            }
            assert_int_equal(d.outcome, (first >= 0 && deny < 0) ? POL_ALLOW
                                                                 : POL_DENY);
        }
    }
    pol_free(pol);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_host_selection),
        cmocka_unit_test(test_paths),
        cmocka_unit_test(test_glob_edge_cases),
        cmocka_unit_test(test_methods),
        cmocka_unit_test(test_user_attributes),
        cmocka_unit_test(test_device_attributes),
        cmocka_unit_test(test_posture_attributes),
        cmocka_unit_test(test_request_attributes),
        cmocka_unit_test(test_context_attributes),
        cmocka_unit_test(test_boolean_operators),
        cmocka_unit_test(test_sets),
        cmocka_unit_test(test_cidrs),
        cmocka_unit_test(test_durations),
        cmocka_unit_test(test_time),
        cmocka_unit_test(test_deny_wins),
        cmocka_unit_test(test_first_match),
        cmocka_unit_test(test_default_deny),
        cmocka_unit_test(test_report_only),
        cmocka_unit_test(test_headers_and_cache),
        cmocka_unit_test(test_explain),
        cmocka_unit_test(test_index_many_rules),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
