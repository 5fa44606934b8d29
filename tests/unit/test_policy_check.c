/*
 * Unit tests for the policy checker (policy/check.c): name resolution,
 * typing, cycles, apps, hosts, rules, paths and headers.  Every error and
 * warning the checker can give is asserted with its exact file:line:col
 * and message; a valid policy must give none.
 */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "policy.h"

/* one app, one rule; the rule body starts at line 3, column 16 */
#define R(body)  "app \"a\" {\n    host \"a.example\"\n    rule \"r\" { " \
                 body " }\n}\n"

typedef struct {
    const char  *text;
    const char  *diag;
} test_diag_case_t;

static const test_diag_case_t  test_errors[] = {
    /* attributes and names */
    { R("when device.posture.firewal allow"),
      "t.policy:3:21: error: unknown attribute \"device.posture.firewal\"; "
      "did you mean \"device.posture.firewall\"?" },
    { R("when device.nothing_like_it allow"),
      "t.policy:3:21: error: unknown attribute \"device.nothing_like_it\"" },
    { "condition managed = true\n" R("when managd allow"),
      "t.policy:4:21: error: unknown name \"managd\"; did you mean "
      "\"managed\"?" },
    { R("when managed allow"),
      "t.policy:3:21: error: unknown name \"managed\"" },
    { R("when request.method == GET allow"),
      "t.policy:3:39: error: unknown name \"GET\"; a string value is written "
      "in quotes: \"GET\"" },
    { R("when request.method == \"G E\" allow"),
      "t.policy:3:39: error: \"G E\" is not a valid HTTP method" },
    { "network office = 10.0.0.0/8\n" R("when office allow"),
      "t.policy:4:21: error: network \"office\" is a set, not a condition or "
      "a value; test membership with in, e.g. source in office" },
    { R("when user.name allow"),
      "t.policy:3:21: error: string user.name is not a condition; compare it "
      "with a value, e.g. with == or in" },
    /* comparisons */
    { R("when auth.mfa_age < 15 allow"),
      "t.policy:3:21: error: cannot compare duration auth.mfa_age with "
      "number 15; write a duration such as 15m" },
    { R("when trust.score > 1h allow"),
      "t.policy:3:21: error: cannot compare number trust.score with "
      "duration 1h; write a plain number" },
    { R("when user.name == 3 allow"),
      "t.policy:3:21: error: cannot compare string user.name with number 3; "
      "write the value in quotes" },
    { R("when user.name < \"x\" allow"),
      "t.policy:3:21: error: cannot use < on string user.name; only "
      "numbers, durations and weekdays are ordered" },
    { R("when device.status > active allow"),
      "t.policy:3:21: error: cannot use > on device status device.status; "
      "only numbers, durations and weekdays are ordered" },
    { R("when user.groups == \"x\" allow"),
      "t.policy:3:21: error: cannot compare set user.groups with string "
      "\"x\"; a set is tested with contains or in" },
    { R("when device.status == actve allow"),
      "t.policy:3:38: error: unknown device status \"actve\"; expected none, "
      "unknown, active, quarantined or revoked" },
    { R("when time.weekday == sunday allow"),
      "t.policy:3:37: error: unknown weekday \"sunday\"; expected mon, tue, "
      "wed, thu, fri, sat or sun" },
    { R("when source == 10.0.0.0/8 allow"),
      "t.policy:3:31: error: an address is compared with a network using "
      "in, e.g. source in (10.0.0.0/8)" },
    /* membership */
    { R("when source in grp allow"),
      "t.policy:3:31: error: unknown network or group \"grp\"" },
    { "group g = \"x\"\n" R("when source in g allow"),
      "t.policy:4:21: error: cannot test whether address source is in group "
      "\"g\"" },
    { "group g = \"x\"\n" R("when source in network g allow"),
      "t.policy:4:39: error: \"g\" is a group, not a network" },
    { R("when user.name in group nope allow"),
      "t.policy:3:40: error: unknown group \"nope\"" },
    { "condition c = true\n" R("when user.name in c allow"),
      "t.policy:4:34: error: condition \"c\" is not a set; in takes a "
      "network, a group, a list or a set attribute" },
    { R("when user.name in user.nme allow"),
      "t.policy:3:34: error: unknown attribute \"user.nme\"; did you mean "
      "\"user.name\"?" },
    { R("when user.name in user.name allow"),
      "t.policy:3:34: error: user.name is a string, not a set" },
    { R("when user.name in (\"a\", 3) allow"),
      "t.policy:3:40: error: a list holds values of one type: number 3 in a "
      "list of strings" },
    { R("when user.name in (user.id) allow"),
      "t.policy:3:35: error: unknown attribute \"user.id\"" },
    { R("when user.name in (device.id) allow"),
      "t.policy:3:35: error: a list holds values, not attributes or "
      "conditions" },
    { R("when user.name in (true) allow"),
      "t.policy:3:35: error: a list cannot hold true or false" },
    { R("when source in (\"a\") allow"),
      "t.policy:3:21: error: cannot test whether address source is in a "
      "list of strings" },
    { R("when user.authenticated in (\"a\") allow"),
      "t.policy:3:21: error: cannot test whether bool "
      "user.authenticated is in a set; it is true or false" },
    { R("when auth.methods in (\"password\", \"otp\") allow"),
      "t.policy:3:50: error: unknown authentication method \"otp\"; "
      "expected password, totp, webauthn or cert" },
    { R("when request.method in (\"GET\", \"a b\") allow"),
      "t.policy:3:47: error: \"a b\" is not a valid HTTP method" },
    { R("when user.name contains \"x\" allow"),
      "t.policy:3:21: error: contains needs a set on its left, such as "
      "user.groups or auth.methods; string user.name is not a set" },
    { R("when user.groups contains 3 allow"),
      "t.policy:3:42: error: user.groups holds strings; cannot look for "
      "number 3 in it" },
    { R("when auth.methods contains \"otp\" allow"),
      "t.policy:3:43: error: unknown authentication method \"otp\"; "
      "expected password, totp, webauthn or cert" },
    /* definitions */
    { "network n = 10.0.0.0/8\ngroup n = \"x\"\n" R("when source in n allow"),
      "t.policy:2:1: error: duplicate definition of \"n\"; first defined at "
      "t.policy:1" },
    { "condition a = b\ncondition b = a\n" R("when a allow"),
      "t.policy:2:15: error: condition \"a\" depends on itself "
      "(a -> b -> a); conditions cannot be recursive" },
    { "condition a = a\n" R("when a allow"),
      "t.policy:1:15: error: condition \"a\" depends on itself (a -> a); "
      "conditions cannot be recursive" },
    /* apps and hosts */
    { "app \"a\" { rule \"r\" { allow } }",
      "t.policy:1:1: error: app \"a\" has no host line; add host \"name\"" },
    { "app \"a\" { host \"a.example\" }",
      "t.policy:1:1: error: app \"a\" has no rules" },
    { "app \"a\" { host \"a.example\" rule \"r\" { allow } }\n"
      "app \"a\" { host \"b.example\" rule \"r\" { allow } }",
      "t.policy:2:1: error: duplicate app \"a\"; first defined at "
      "t.policy:1" },
    { "app \"a\" { host \"a.example\" rule \"r\" { allow } }\n"
      "app \"b\" { host \"A.Example\" rule \"r\" { allow } }",
      "t.policy:2:16: error: host \"A.Example\" is already used at "
      "t.policy:1" },
    { "app \"a\" { host \"a..b\" rule \"r\" { allow } }",
      "t.policy:1:16: error: invalid host pattern \"a..b\"; expected a host "
      "name, \"*.\" and a domain, or \"*\"" },
    { "app \"a\" { host \"a.b:443\" rule \"r\" { allow } }",
      "t.policy:1:16: error: invalid host pattern \"a.b:443\"; expected a "
      "host name, \"*.\" and a domain, or \"*\"" },
    { "app \"a\" { host \"x.*.b\" rule \"r\" { allow } }",
      "t.policy:1:16: error: invalid host pattern \"x.*.b\"; expected a "
      "host name, \"*.\" and a domain, or \"*\"" },
    /* rules */
    { "app \"a\" { host \"a.example\" rule \"r\" { allow } "
      "rule \"r\" { deny } }",
      "t.policy:1:47: error: duplicate rule \"r\" in app \"a\"; first defined "
      "at t.policy:1" },
    { R("path \"admin\" allow"),
      "t.policy:3:21: error: path pattern \"admin\" must start with \"/\"" },
    { R("path prefix \"/a*\" allow"),
      "t.policy:3:28: error: path prefix \"/a*\" cannot contain wildcards; "
      "write path \"/a*\" for a pattern" },
    { R("path \"/a\\nb\" allow"),
      "t.policy:3:21: error: path pattern contains a control character" },
    { R("method \"G E\" allow"),
      "t.policy:3:23: error: \"G E\" is not a valid HTTP method" },
    { R("allow cache 2h"),
      "t.policy:3:28: error: cache lifetime must be from 0s to 1h" },
    /* headers */
    { R("deny header \"X\" = \"x\""),
      "t.policy:3:28: error: header lines are only allowed in a rule that "
      "allows; rule \"r\" ends in deny" },
    { R("allow header \"X-ZT-User\" = \"x\""),
      "t.policy:3:29: error: header \"X-ZT-User\" cannot be set by a policy: "
      "X-ZT-* belongs to ztgate" },
    { R("allow header \"x-zt-id\" = \"x\""),
      "t.policy:3:29: error: header \"x-zt-id\" cannot be set by a policy: "
      "X-ZT-* belongs to ztgate" },
    { R("allow header \"Host\" = \"x\""),
      "t.policy:3:29: error: header \"Host\" cannot be set by a policy" },
    { R("allow header \"content-length\" = \"x\""),
      "t.policy:3:29: error: header \"content-length\" cannot be set by a "
      "policy" },
    { R("allow header \"Transfer-Encoding\" = \"x\""),
      "t.policy:3:29: error: header \"Transfer-Encoding\" cannot be set by a "
      "policy" },
    { R("allow header \"Connection\" = \"x\""),
      "t.policy:3:29: error: header \"Connection\" cannot be set by a "
      "policy" },
    { R("allow header \"Cookie\" = \"x\""),
      "t.policy:3:29: error: header \"Cookie\" cannot be set by a policy" },
    { R("allow header \"Authorization\" = \"x\""),
      "t.policy:3:29: error: header \"Authorization\" cannot be set by a "
      "policy" },
    { R("allow header \"X Y\" = \"x\""),
      "t.policy:3:29: error: \"X Y\" is not a valid header name" },
    { R("allow header \"X\" = \"a\\nb\""),
      "t.policy:3:35: error: header value contains a control character" },
    { R("allow header \"X\" = user.nam"),
      "t.policy:3:35: error: unknown attribute \"user.nam\"; did you mean "
      "\"user.name\"?" },
    { R("allow header \"X\" = device.posture.age"),
      "t.policy:3:35: error: a header value must be a string or a string "
      "attribute; device.posture.age is a duration" },
    { R("allow header \"A\" = \"1\" header \"B\" = \"2\" header \"C\" = \"3\" "
        "header \"D\" = \"4\" header \"E\" = \"5\" header \"F\" = \"6\" "
        "header \"G\" = \"7\" header \"H\" = \"8\" header \"I\" = \"9\""),
      "t.policy:3:165: error: rule \"r\" sets more than 8 headers" },
};

static const test_diag_case_t  test_warnings[] = {
    { "app \"a\" {\n    host \"a.example\"\n"
      "    rule \"catch-all\" { allow }\n"
      "    rule \"x\" { path \"/x\" allow }\n}\n",
      "t.policy:4:5: warning: rule \"x\" can never decide: rule \"catch-all\" "
      "(t.policy:3) matches every request it matches" },
    { "app \"a\" {\n    host \"a.example\"\n"
      "    rule \"all\" { path prefix \"/\" method GET, POST allow }\n"
      "    rule \"x\" { path \"/x\" method post step-up }\n}\n",
      "t.policy:4:5: warning: rule \"x\" can never decide: rule \"all\" "
      "(t.policy:3) matches every request it matches" },
    { "app \"a\" {\n    host \"a.example\"\n"
      "    rule \"docs\" { path \"/d/*\" allow }\n"
      "    rule \"x\" { path \"/d/*\" when user.authenticated login }\n}\n",
      "t.policy:4:5: warning: rule \"x\" can never decide: rule \"docs\" "
      "(t.policy:3) matches every request it matches" },
    { "app \"a\" {\n    host \"a.example\"\n"
      "    rule \"d\" { deny }\n}\n",
      "t.policy:1:1: warning: app \"a\" has no allow rule; every request to it "
      "is denied" },
    { "network vpn = 10.99.0.0/16\n"
      "app \"a\" { host \"a.example\" rule \"r\" { allow } }\n",
      "t.policy:1:1: warning: network \"vpn\" is defined but never used" },
    { "group g = \"x\"\n"
      "app \"a\" { host \"a.example\" rule \"r\" { allow } }\n",
      "t.policy:1:1: warning: group \"g\" is defined but never used" },
    { "condition c = false\n"
      "app \"a\" { host \"a.example\" rule \"r\" { allow } }\n",
      "t.policy:1:1: warning: condition \"c\" is defined but never used" },
};

static void test_check_errors(void **state);
static void test_check_warnings(void **state);
static void test_no_shadow_warning(void **state);
static void test_all_errors_reported(void **state);
static void test_valid_policy(void **state);
static void test_definitions_anywhere(void **state);
static void test_keyword_on_left(void **state);


static void
test_check_errors(void **state)
{
    pol_diags_t   d;
    pol_t        *pol;
    char          line[700];
    size_t        i;
    int           bad;

    (void) state;
    bad = 0;
    for (i = 0; i < sizeof(test_errors) / sizeof(test_errors[0]); i++) {
        assert_int_equal(pol_load_string("t.policy", test_errors[i].text,
                                         strlen(test_errors[i].text), &pol,
                                         &d), -1);
        assert_null(pol);
        assert_true(d.nerrors >= 1);
        pol_diag_format(&d.diags[0], line, sizeof(line));
        if (strcmp(line, test_errors[i].diag) != 0) {
            print_error("case %zu:\n  got    %s\n  wanted %s\n", i, line,
                        test_errors[i].diag);
            bad++;
        }
    }
    assert_int_equal(bad, 0);
}


static void
test_check_warnings(void **state)
{
    pol_diags_t   d;
    pol_t        *pol;
    char          line[700];
    size_t        i;
    int           bad;

    (void) state;
    bad = 0;
    for (i = 0; i < sizeof(test_warnings) / sizeof(test_warnings[0]); i++) {
        assert_int_equal(pol_load_string("t.policy", test_warnings[i].text,
                                         strlen(test_warnings[i].text), &pol,
                                         &d), 0);
        assert_non_null(pol);
        assert_int_equal(d.nerrors, 0);
        assert_int_equal(d.nwarnings, 1);
        pol_diag_format(&d.diags[0], line, sizeof(line));
        if (strcmp(line, test_warnings[i].diag) != 0) {
            print_error("case %zu:\n  got    %s\n  wanted %s\n", i, line,
                        test_warnings[i].diag);
            bad++;
        }
        pol_free(pol);
    }
    assert_int_equal(bad, 0);
}


/* A deny, a report-only rule or one behind a when is never "shadowed". */
static void
test_no_shadow_warning(void **state)
{
    static const char  text[] =
        "app \"a\" {\n    host \"a.example\"\n"
        "    rule \"all\" { allow }\n"
        "    rule \"d\" { path \"/x\" deny }\n"
        "    rule \"ro\" { path \"/x\" step-up report-only }\n"
        "    rule \"w\" { when user.authenticated allow }\n"
        "    rule \"after-w\" { allow }\n"
        "}\n";
    pol_diags_t   d;
    pol_t        *pol;
    char          line[700];

    (void) state;
    assert_int_equal(pol_load_string("t.policy", text, strlen(text), &pol,
                                     &d), 0);
    /* only "after-w", shadowed by "all" */
    assert_int_equal(d.nwarnings, 2);
    pol_diag_format(&d.diags[0], line, sizeof(line));
    assert_string_equal(line, "t.policy:6:5: warning: rule \"w\" can never "
                        "decide: rule \"all\" (t.policy:3) matches every "
                        "request it matches");
    pol_diag_format(&d.diags[1], line, sizeof(line));
    assert_string_equal(line, "t.policy:7:5: warning: rule \"after-w\" can "
                        "never decide: rule \"all\" (t.policy:3) matches "
                        "every request it matches");
    pol_free(pol);
}


/* Every independent error is reported, not just the first. */
static void
test_all_errors_reported(void **state)
{
    static const char  text[] =
        "app \"a\" {\n    host \"a.example\"\n"
        "    rule \"r1\" { when device.posture.firewal allow }\n"
        "    rule \"r2\" { when auth.mfa_age < 15 allow }\n"
        "    rule \"r3\" { path \"x\" allow header \"Cookie\" = \"c\" }\n"
        "}\n";
    pol_diags_t   d;
    pol_t        *pol;

    (void) state;
    assert_int_equal(pol_load_string("t.policy", text, strlen(text), &pol,
                                     &d), -1);
    assert_int_equal(d.nerrors, 4);
    assert_int_equal(d.diags[0].line, 3);
    assert_int_equal(d.diags[1].line, 4);
    assert_int_equal(d.diags[2].line, 5);
    assert_int_equal(d.diags[2].col, 22);
    assert_int_equal(d.diags[3].col, 39);
}


static void
test_valid_policy(void **state)
{
    static const char  text[] =
        "timezone \"+08:00\"\n"
        "network office = 10.20.0.0/16, 2001:db8:20::/48\n"
        "group hr_admins = \"hr-admins\", \"it-security\"\n"
        "condition managed_device =\n"
        "    device.status == active\n"
        "    and device.posture.disk_encrypted\n"
        "    and device.posture.firewall\n"
        "    and device.posture.age < 24h\n"
        "condition fresh_mfa = auth.mfa_age < 15m\n"
        "app \"hr\" {\n"
        "    host \"hr.agency.example\", \"*.hr.agency.example\"\n"
        "    rule \"admin area\" {\n"
        "        path prefix \"/admin\"\n"
        "        method GET, POST\n"
        "        when user.groups in hr_admins and managed_device\n"
        "            and fresh_mfa and source in office\n"
        "            and time.weekday in (mon, tue) and time.hour >= 8\n"
        "            and trust.score >= 70 and device.owner == user.name\n"
        "            and auth.methods contains \"totp\"\n"
        "            and request.method in (\"GET\", \"post\")\n"
        "            and not context.blocklisted\n"
        "        allow\n"
        "        header \"X-HR-Role\" = \"admin\"\n"
        "        header \"X-User\" = user.name\n"
        "        cache 5s\n"
        "    }\n"
        "    rule \"deny\" { path \"/secret/**\" deny 451 \"Not here\" }\n"
        "}\n";
    pol_diags_t   d;
    pol_t        *pol;

    (void) state;
    assert_int_equal(pol_load_string("hr.policy", text, strlen(text), &pol,
                                     &d), 0);
    assert_int_equal(d.nerrors, 0);
    assert_int_equal(d.nwarnings, 0);
    assert_int_equal(pol_napps(pol), 1);
    assert_int_equal(pol_nrules(pol), 2);
    assert_int_equal(strlen(pol_version(pol)), 16);
    pol_free(pol);
}


static void
test_definitions_anywhere(void **state)
{
    static const char  text[] =
        "app \"a\" { host \"a.example\" rule \"r\" { when c allow } }\n"
        "condition c = source in n\n"
        "network n = 10.0.0.0/8\n";
    pol_diags_t   d;
    pol_t        *pol;

    (void) state;
    assert_int_equal(pol_load_string("t.policy", text, strlen(text), &pol,
                                     &d), 0);
    assert_int_equal(d.nwarnings, 0);
    pol_free(pol);
}


static void
test_keyword_on_left(void **state)
{
    static const char  text[] =
        "app \"a\" { host \"a.example\" rule \"r\" { when active == "
        "device.status and sat != time.weekday allow } }\n";
    pol_diags_t   d;
    pol_t        *pol;

    (void) state;
    assert_int_equal(pol_load_string("t.policy", text, strlen(text), &pol,
                                     &d), 0);
    pol_free(pol);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_check_errors),
        cmocka_unit_test(test_check_warnings),
        cmocka_unit_test(test_no_shadow_warning),
        cmocka_unit_test(test_all_errors_reported),
        cmocka_unit_test(test_valid_policy),
        cmocka_unit_test(test_definitions_anywhere),
        cmocka_unit_test(test_keyword_on_left),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
