/*
 * Unit tests for what reads files: pol_load() on a file and on a
 * directory (only *.policy, in name order, one namespace, errors naming
 * the file), the 4 MiB limit, and the .cases reader with its expectation
 * check.  Files live in a fresh temporary directory per test.
 */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "policy.h"
#include "cases.h"

typedef struct {
    char  dir[64];
} test_tmp_t;

static int test_setup(void **state);
static int test_teardown(void **state);
static void test_write(const test_tmp_t *t, const char *name,
    const char *text);
static void test_first_diag(const pol_diags_t *d, const char *expect);
static void test_load_file(void **state);
static void test_load_dir(void **state);
static void test_load_dir_empty(void **state);
static void test_load_errors(void **state);
static void test_load_too_big(void **state);
static void test_cases_parse(void **state);
static void test_cases_check(void **state);
static void test_cases_errors(void **state);
static void test_cases_dir(void **state);


static int
test_setup(void **state)
{
    test_tmp_t  *t;

    t = calloc(1, sizeof(*t));
    if (t == NULL) {
        return -1;
    }
    snprintf(t->dir, sizeof(t->dir), "/tmp/ztpol-test.XXXXXX");
    if (mkdtemp(t->dir) == NULL) {
        free(t);
        return -1;
    }
    *state = t;
    return 0;
}


static int
test_teardown(void **state)
{
    test_tmp_t  *t;
    char         cmd[128];

    t = *state;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", t->dir);
    if (system(cmd) != 0) {
        return -1;
    }
    free(t);
    return 0;
}


static void
test_write(const test_tmp_t *t, const char *name, const char *text)
{
    char   path[256];
    FILE  *f;

    snprintf(path, sizeof(path), "%s/%s", t->dir, name);
    f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
    assert_int_equal(fclose(f), 0);
}


static void
test_first_diag(const pol_diags_t *d, const char *expect)
{
    char  line[700];

    assert_true(d->ndiags >= 1);
    pol_diag_format(&d->diags[0], line, sizeof(line));
    assert_string_equal(line, expect);
}


static void
test_load_file(void **state)
{
    test_tmp_t   *t = *state;
    pol_diags_t   d;
    pol_t        *pol, *pol2;
    char          path[256];
    char          expect[400];

    test_write(t, "one.policy",
               "app \"a\" { host \"a.example\" rule \"r\" { allow } }\n");
    snprintf(path, sizeof(path), "%s/one.policy", t->dir);
    assert_int_equal(pol_load(path, &pol, &d), 0);
    assert_int_equal(pol_napps(pol), 1);
    assert_int_equal(pol_load(path, &pol2, &d), 0);
    assert_string_equal(pol_version(pol), pol_version(pol2));
    pol_free(pol2);

    test_write(t, "one.policy",
               "app \"a\" { host \"a.example\" rule \"r\" { alow } }\n");
    assert_int_equal(pol_load(path, &pol2, &d), -1);
    assert_null(pol2);
    snprintf(expect, sizeof(expect), "%s:1:39: error: expected path, "
             "method, when or an outcome (allow, deny, step-up or login) in "
             "rule \"r\", found \"alow\"", path);
    test_first_diag(&d, expect);
    pol_free(pol);
}


static void
test_load_dir(void **state)
{
    test_tmp_t   *t = *state;
    pol_diags_t   d;
    pol_t        *pol;
    char          expect[400];

    /* definitions are global: b uses what a and c define */
    test_write(t, "b.policy", "app \"hr\" { host \"hr.example\" rule \"r\" "
               "{ when managed and source in office allow } }\n");
    test_write(t, "a.policy", "condition managed = device.known\n");
    test_write(t, "c.policy", "network office = 10.0.0.0/8\n");
    test_write(t, "notes.txt", "this is not a policy\n");
    test_write(t, "x.policy.bak", "garbage {\n");
    assert_int_equal(pol_load(t->dir, &pol, &d), 0);
    assert_int_equal(d.nwarnings, 0);
    assert_int_equal(pol_nrules(pol), 1);
    pol_free(pol);

    /* diagnostics name the file; files are read in name order */
    test_write(t, "d.policy", "network office = 10.1.0.0/16\n");
    assert_int_equal(pol_load(t->dir, &pol, &d), -1);
    snprintf(expect, sizeof(expect), "%s/d.policy:1:1: error: duplicate "
             "definition of \"office\"; first defined at %s/c.policy:1",
             t->dir, t->dir);
    test_first_diag(&d, expect);
}


static void
test_load_dir_empty(void **state)
{
    test_tmp_t   *t = *state;
    pol_diags_t   d;
    pol_t        *pol;
    char          expect[400];

    test_write(t, "readme.txt", "nothing\n");
    assert_int_equal(pol_load(t->dir, &pol, &d), -1);
    assert_null(pol);
    snprintf(expect, sizeof(expect), "%s: error: no *.policy files in this "
             "directory", t->dir);
    test_first_diag(&d, expect);
}


static void
test_load_errors(void **state)
{
    test_tmp_t   *t = *state;
    pol_diags_t   d;
    pol_t        *pol;
    char          path[256], expect[400];

    snprintf(path, sizeof(path), "%s/missing.policy", t->dir);
    assert_int_equal(pol_load(path, &pol, &d), -1);
    snprintf(expect, sizeof(expect), "%s: error: cannot open: No such file "
             "or directory", path);
    test_first_diag(&d, expect);

    if (geteuid() != 0) {
        test_write(t, "locked.policy", "network n = 10.0.0.0/8\n");
        snprintf(path, sizeof(path), "%s/locked.policy", t->dir);
        assert_int_equal(chmod(path, 0), 0);
        assert_int_equal(pol_load(t->dir, &pol, &d), -1);
        snprintf(expect, sizeof(expect), "%s: error: cannot open: "
                 "Permission denied", path);
        test_first_diag(&d, expect);
    }

    /* a directory named *.policy is not a regular file */
    snprintf(path, sizeof(path), "%s/sub.policy", t->dir);
    assert_int_equal(mkdir(path, 0700), 0);
    assert_int_equal(pol_load(path, &pol, &d), -1);
    snprintf(expect, sizeof(expect), "%s: error: no *.policy files in this "
             "directory", path);
    test_first_diag(&d, expect);

    /* the NULL diags pointer is allowed */
    assert_int_equal(pol_load_string("x", "}", 1, &pol, NULL), -1);
}


static void
test_load_too_big(void **state)
{
    test_tmp_t   *t = *state;
    pol_diags_t   d;
    pol_t        *pol;
    char          path[256], expect[400], *big;
    size_t        size;
    FILE         *f;

    size = 4u * 1024 * 1024 + 1;
    big = malloc(size);
    assert_non_null(big);
    memset(big, '#', size);

    snprintf(path, sizeof(path), "%s/big.policy", t->dir);
    f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(big, 1, size, f), size);
    assert_int_equal(fclose(f), 0);

    assert_int_equal(pol_load(path, &pol, &d), -1);
    snprintf(expect, sizeof(expect), "%s: error: file is larger than 4 MiB; "
             "refusing to load it", path);
    test_first_diag(&d, expect);

    assert_int_equal(pol_load_string("big.policy", big, size, &pol, &d), -1);
    test_first_diag(&d, "big.policy: error: file is larger than 4 MiB; "
                    "refusing to load it");

    /* exactly 4 MiB of comments is fine (but has no app: still loads) */
    assert_int_equal(pol_load_string("ok.policy", big, size - 1, &pol, &d),
                     0);
    pol_free(pol);
    free(big);
}


static void
test_cases_parse(void **state)
{
    static const char  text[] =
        "case \"hr admin on a managed laptop\" {\n"
        "    request GET \"https://hr.agency.example:8443/admin/users?x=1\"\n"
        "    source 10.20.1.5\n"
        "    time \"2026-11-24T10:00:00+08:00\"\n"
        "    user \"alice\" groups \"hr-admins\", \"staff\"\n"
        "    auth password, totp mfa_age 5m\n"
        "    device active owner \"alice\" id \"urn:ztgate:device:1\"\n"
        "    posture disk_encrypted, firewall, screen_lock age 2h "
        "os \"debian\" os_version \"12\" patch_age 3d\n"
        "    blocklisted\n"
        "    new_address\n"
        "    trust 85\n"
        "    expect allow rule \"admin area\"\n"
        "}\n"
        "case \"minimal\" { request POST \"hr.example\" expect deny status 403 "
        "rule none }\n";
    pol_diags_t        d;
    pol_cases_t       *cs;
    const pol_case_t  *c;
    int64_t            now;

    (void) state;
    assert_int_equal(pol_cases_load_string("t.cases", text, strlen(text),
                                           &cs, &d), 0);
    assert_int_equal(pol_cases_count(cs), 2);
    c = pol_cases_get(cs, 0);
    assert_int_equal(c->line, 1);
    assert_string_equal(c->file, "t.cases");
    assert_memory_equal(c->input.method.data, "GET", 3);
    assert_int_equal(c->input.host.len, strlen("hr.agency.example:8443"));
    assert_memory_equal(c->input.host.data, "hr.agency.example:8443",
                        c->input.host.len);
    assert_int_equal(c->input.path.len, strlen("/admin/users"));
    assert_memory_equal(c->input.path.data, "/admin/users",
                        c->input.path.len);
    assert_int_equal(c->input.addr_family, 4);
    assert_int_equal(c->input.addr[3], 5);
    now = 1795485600;               /* 2026-11-24T02:00:00Z */
    assert_int_equal(c->input.now, now);
    assert_int_equal(c->input.authenticated, 1);
    assert_int_equal(c->input.ngroups, 2);
    assert_int_equal(c->input.auth_methods,
                     POL_AUTH_PASSWORD | POL_AUTH_TOTP);
    assert_int_equal(c->input.mfa_time, now - 300);
    assert_int_equal(c->input.device_status, POL_DEVICE_ACTIVE);
    assert_int_equal(c->input.device_owner.len, 5);
    assert_int_equal(c->input.device_id.len, 19);
    assert_int_equal(c->input.disk_encrypted, POL_TRUE);
    assert_int_equal(c->input.firewall, POL_TRUE);
    assert_int_equal(c->input.screen_lock, POL_TRUE);
    assert_int_equal(c->input.endpoint_protection, POL_FALSE);
    assert_int_equal(c->input.posture_time, now - 7200);
    assert_int_equal(c->input.patch_time, now - 3 * 86400);
    assert_int_equal(c->input.os.len, 6);
    assert_int_equal(c->input.os_version.len, 2);
    assert_int_equal(c->input.blocklisted, 1);
    assert_int_equal(c->input.new_address, 1);
    assert_int_equal(c->input.trust_score, 85);
    assert_int_equal(c->expect, POL_ALLOW);
    assert_int_equal(c->expect_rule_kind, POL_EXPECT_RULE_NAMED);

    c = pol_cases_find(cs, "minimal");
    assert_non_null(c);
    assert_null(pol_cases_find(cs, "nope"));
    assert_null(pol_cases_get(cs, 2));
    assert_int_equal(c->input.now, POL_CASE_DEFAULT_NOW);
    assert_int_equal(c->input.path.len, 1);
    assert_int_equal(c->input.authenticated, 0);
    assert_int_equal(c->input.disk_encrypted, POL_UNREPORTED);
    assert_int_equal(c->input.trust_score, -1);
    assert_int_equal(c->expect, POL_DENY);
    assert_int_equal(c->expect_status, 403);
    assert_int_equal(c->expect_rule_kind, POL_EXPECT_RULE_NONE);
    pol_cases_free(cs);
}


static void
test_cases_check(void **state)
{
    static const char  policy[] =
        "app \"hr\" { host \"hr.example\"\n"
        "rule \"admin\" { path prefix \"/admin\" when user.authenticated "
        "allow }\n"
        "rule \"no\" { path prefix \"/x\" deny 451 }\n"
        "}\n";
    static const char  cases[] =
        "case \"a\" { request GET \"https://hr.example/admin\" user \"x\" "
        "expect allow rule \"admin\" }\n"
        "case \"b\" { request GET \"https://hr.example/admin\" "
        "expect allow rule \"admin\" }\n"
        "case \"c\" { request GET \"https://hr.example/y\" "
        "expect deny status 451 }\n"
        "case \"d\" { request GET \"https://hr.example/y\" "
        "expect deny rule \"no\" }\n"
        "case \"e\" { request GET \"https://hr.example/x\" "
        "expect deny rule none }\n"
        "case \"f\" { request GET \"https://other.example/\" "
        "expect deny rule none }\n";
    static const char  *why[] = {
        "",
        "expected allow by \"admin\", got deny by no rule (default deny)",
        "expected deny 451, got deny 403 by no rule (default deny)",
        "expected deny by \"no\", got deny by no rule (default deny)",
        "expected deny by no rule (default deny), got deny by \"no\" "
        "(t.policy:3)",
        ""
    };
    pol_diags_t     d;
    pol_t          *pol;
    pol_cases_t    *cs;
    pol_decision_t  dec;
    char            buf[600];
    size_t          i;

    (void) state;
    assert_int_equal(pol_load_string("t.policy", policy, strlen(policy),
                                     &pol, &d), 0);
    assert_int_equal(pol_cases_load_string("t.cases", cases, strlen(cases),
                                           &cs, &d), 0);
    assert_int_equal(pol_cases_count(cs), 6);
    for (i = 0; i < 6; i++) {
        pol_eval(pol, &pol_cases_get(cs, i)->input, &dec);
        if (pol_case_check(pol_cases_get(cs, i), &dec, buf, sizeof(buf))
            != (why[i][0] == '\0') || strcmp(buf, why[i]) != 0)
        {
            print_error("case %zu: %s\n", i, buf);
            fail();
        }
    }
    pol_cases_free(cs);
    pol_free(pol);
}


static void
test_cases_errors(void **state)
{
    static const struct {
        const char  *text;
        const char  *diag;
    } cases[] = {
        { "case \"x\" { expect allow }",
          "t.cases:1:1: error: case \"x\" needs a request line and an expect "
          "line" },
        { "case \"x\" { request GET \"h/\" }",
          "t.cases:1:1: error: case \"x\" needs a request line and an expect "
          "line" },
        { "case \"x\" { request GET \"/path\" expect allow }",
          "t.cases:1:24: error: invalid URL \"/path\"; expected "
          "\"https://host/path\"" },
        { "case \"x\" { request 1 \"h\" expect allow }",
          "t.cases:1:20: error: expected an HTTP method such as GET, found "
          "number 1" },
        { "case \"x\" { request GET h expect allow }",
          "t.cases:1:24: error: expected a quoted URL such as "
          "\"https://host/path\", found \"h\"" },
        { "case \"x\" { request GET \"h\" request GET \"h\" expect allow }",
          "t.cases:1:28: error: case has a second request line" },
        { "case \"x\" { request GET \"h\" expect allow expect deny }",
          "t.cases:1:41: error: case has a second expect line" },
        { "case \"x\" { request GET \"h\" expect alow }",
          "t.cases:1:35: error: expected an outcome (allow, deny, step-up or "
          "login), found \"alow\"" },
        { "case \"x\" { request GET \"h\" expect deny status 9 }",
          "t.cases:1:47: error: expected an HTTP status such as 403, found "
          "number 9" },
        { "case \"x\" { request GET \"h\" expect deny rule 3 }",
          "t.cases:1:45: error: expected a quoted rule name or none, found "
          "number 3" },
        { "case \"x\" { request GET \"h\" source 10.0.0.0/8 expect allow }",
          "t.cases:1:35: error: expected an IPv4 or IPv6 address, found "
          "address 10.0.0.0/8" },
        { "case \"x\" { request GET \"h\" time \"2026-13-01T00:00:00Z\" "
          "expect allow }",
          "t.cases:1:33: error: expected an RFC 3339 time such as "
          "\"2026-11-24T10:00:00+08:00\", found string "
          "\"2026-13-01T00:00:00Z\"" },
        { "case \"x\" { request GET \"h\" user bob expect allow }",
          "t.cases:1:33: error: expected a quoted user name, found \"bob\"" },
        { "case \"x\" { request GET \"h\" user \"b\" groups a expect allow }",
          "t.cases:1:44: error: expected a quoted group name, found \"a\"" },
        { "case \"x\" { request GET \"h\" auth otp expect allow }",
          "t.cases:1:33: error: expected an authentication method (password, "
          "totp, webauthn or cert), found \"otp\"" },
        { "case \"x\" { request GET \"h\" auth totp mfa_age 5 expect allow }",
          "t.cases:1:46: error: expected a duration such as 5m after "
          "mfa_age, found number 5" },
        { "case \"x\" { request GET \"h\" device actve expect allow }",
          "t.cases:1:35: error: expected a device status (none, unknown, "
          "active, quarantined or revoked), found \"actve\"" },
        { "case \"x\" { request GET \"h\" device active owner 1 expect "
          "allow }",
          "t.cases:1:48: error: expected a quoted string, found number 1" },
        { "case \"x\" { request GET \"h\" posture firewal expect allow }",
          "t.cases:1:36: error: expected a posture flag (disk_encrypted, "
          "firewall, screen_lock, endpoint_protection, stale) or age, "
          "patch_age, "
          "os, os_version, found \"firewal\"" },
        { "case \"x\" { request GET \"h\" posture age 2 expect allow }",
          "t.cases:1:40: error: expected a duration such as 2h, found "
          "number 2" },
        { "case \"x\" { request GET \"h\" trust 101 expect allow }",
          "t.cases:1:34: error: expected a trust score from 0 to 100, found "
          "number 101" },
        { "case \"x\" { request GET \"h\" bogus expect allow }",
          "t.cases:1:28: error: expected a case line (request, source, time, "
          "user, auth, device, posture, blocklisted, new_address, trust or "
          "expect) or \"}\", found \"bogus\"" },
        { "case x { }",
          "t.cases:1:6: error: expected a quoted case name after case, found "
          "\"x\"" },
        { "case \"x\" request",
          "t.cases:1:10: error: expected \"{\" to open the case, found "
          "\"request\"" },
        { "case \"x\" { request GET \"h\"",
          "t.cases:1:27: error: unexpected end of file; expected \"}\" to "
          "close case \"x\" opened at line 1" },
        { "bogus",
          "t.cases:1:1: error: expected case \"name\" { ... }, found "
          "\"bogus\"" },
    };
    pol_diags_t   d;
    pol_cases_t  *cs;
    char          line[700];
    size_t        i;
    int           bad;

    (void) state;
    bad = 0;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(pol_cases_load_string("t.cases", cases[i].text,
                                               strlen(cases[i].text), &cs,
                                               &d), -1);
        assert_null(cs);
        pol_diag_format(&d.diags[0], line, sizeof(line));
        if (strcmp(line, cases[i].diag) != 0) {
            print_error("case %zu:\n  got    %s\n  wanted %s\n", i, line,
                        cases[i].diag);
            bad++;
        }
    }
    assert_int_equal(bad, 0);
}


static void
test_cases_dir(void **state)
{
    test_tmp_t   *t = *state;
    pol_diags_t   d;
    pol_cases_t  *cs;
    char          expect[400];

    assert_int_equal(pol_cases_load(t->dir, &cs, &d), -1);
    snprintf(expect, sizeof(expect), "%s: error: no *.cases files in this "
             "directory", t->dir);
    test_first_diag(&d, expect);

    test_write(t, "b.cases", "case \"b\" { request GET \"h\" expect allow }");
    test_write(t, "a.cases", "case \"a\" { request GET \"h\" expect allow }");
    test_write(t, "c.txt", "junk");
    assert_int_equal(pol_cases_load(t->dir, &cs, &d), 0);
    assert_int_equal(pol_cases_count(cs), 2);
    assert_memory_equal(pol_cases_get(cs, 0)->name.data, "a", 1);
    assert_memory_equal(pol_cases_get(cs, 1)->name.data, "b", 1);
    pol_cases_free(cs);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_load_file, test_setup,
                                        test_teardown),
        cmocka_unit_test_setup_teardown(test_load_dir, test_setup,
                                        test_teardown),
        cmocka_unit_test_setup_teardown(test_load_dir_empty, test_setup,
                                        test_teardown),
        cmocka_unit_test_setup_teardown(test_load_errors, test_setup,
                                        test_teardown),
        cmocka_unit_test_setup_teardown(test_load_too_big, test_setup,
                                        test_teardown),
        cmocka_unit_test(test_cases_parse),
        cmocka_unit_test(test_cases_check),
        cmocka_unit_test(test_cases_errors),
        cmocka_unit_test_setup_teardown(test_cases_dir, test_setup,
                                        test_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
