/*
 * Unit tests for the policy parser (policy/parser.c): the structure it
 * builds (seen through the canonical formatter, which prints exactly the
 * tree), operator precedence, recovery after an error, and every syntax
 * error with its exact file:line:col and message.
 */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "policy.h"

#define R(body)  "app \"a\" {\n    host \"a.example\"\n    rule \"r\" { " \
                 body " }\n}\n"

typedef struct {
    const char  *text;
    const char  *diag;
} test_diag_case_t;

static const test_diag_case_t  test_syntax[] = {
    { R("when user.authenticated alow"),
      "t.policy:3:40: error: expected an outcome (allow, deny, step-up or "
      "login) after the rule's conditions, found \"alow\"" },
    { R("path \"/x\" alow"),
      "t.policy:3:26: error: expected path, method, when or an outcome "
      "(allow, deny, step-up or login) in rule \"r\", found \"alow\"" },
    { R("allow bogus"),
      "t.policy:3:22: error: expected path, method, when, header, cache, "
      "report-only or \"}\" in rule \"r\", found \"bogus\"" },
    { R("path \"/\""),
      "t.policy:3:5: error: rule \"r\" has no outcome; add allow, deny, "
      "step-up or login" },
    { R("allow allow"),
      "t.policy:3:22: error: rule \"r\" has a second outcome; a rule has "
      "exactly one of allow, deny, step-up or login" },
    { R("when true when false allow"),
      "t.policy:3:26: error: rule \"r\" has a second when line; combine the "
      "conditions with and" },
    { R("deny 200"),
      "t.policy:3:21: error: deny status must be from 400 to 599, not 200" },
    { R("when (user.authenticated allow"),
      "t.policy:3:41: error: expected \")\" to close the parenthesis, or "
      "and/or, found \"allow\"" },
    { R("when x = 1 allow"),
      "t.policy:3:23: error: \"=\" is not a comparison; write ==" },
    { R("when allow"),
      "t.policy:3:21: error: expected a condition (an attribute, a named "
      "condition, true, false, not or \"(\"), found \"allow\"" },
    { R("when x not y allow"),
      "t.policy:3:27: error: expected \"in\" after \"not\" (not in), found "
      "\"y\"" },
    { R("when x in allow"),
      "t.policy:3:26: error: expected a set: a list such as (\"a\", \"b\"), a "
      "network or group name, or a set attribute, found \"allow\"" },
    { R("when x in (\"a\" \"b\") allow"),
      "t.policy:3:31: error: expected \",\" or \")\" in the list, found "
      "string \"b\"" },
    { R("when x contains allow"),
      "t.policy:3:32: error: expected a value after contains, found "
      "\"allow\"" },
    { R("when x == allow"),
      "t.policy:3:26: error: expected a value to compare with, found "
      "\"allow\"" },
    { R("path allow"),
      "t.policy:3:21: error: expected a quoted path pattern such as "
      "\"/docs/*.pdf\" or prefix \"/admin\", found \"allow\"" },
    { R("path prefix allow"),
      "t.policy:3:28: error: expected a quoted path after prefix, found "
      "\"allow\"" },
    { R("method 1 allow"),
      "t.policy:3:23: error: expected an HTTP method such as GET or POST, "
      "found number 1" },
    { R("allow header X = \"v\""),
      "t.policy:3:29: error: expected a quoted header name after header, "
      "found \"X\"" },
    { R("allow header \"X\" \"v\""),
      "t.policy:3:33: error: expected \"=\" after the header name, found "
      "string \"v\"" },
    { R("allow header \"X\" = 3"),
      "t.policy:3:35: error: expected a quoted header value or a string "
      "attribute such as user.name, found number 3" },
    { R("allow cache 5"),
      "t.policy:3:28: error: expected a duration such as 5s or 1m after "
      "cache, found number 5" },
    { "app \"a\" { host \"a.example\" rule \"r\" { allow",
      "t.policy:1:44: error: unexpected end of file; expected \"}\" to close "
      "rule \"r\" opened at line 1" },
    { "app \"a\" { host \"a.example\"",
      "t.policy:1:27: error: unexpected end of file; expected \"}\" to close "
      "app \"a\" opened at line 1" },
    { "app \"a\" { host \"a.example\" bogus }",
      "t.policy:1:28: error: expected host, rule or \"}\" in app \"a\", found "
      "\"bogus\"" },
    { "app \"a\" { host 3 }",
      "t.policy:1:16: error: expected a quoted host pattern such as "
      "\"hr.example.com\", \"*.example.com\" or \"*\", found number 3" },
    { "app a { }",
      "t.policy:1:5: error: expected a quoted app name after app, found "
      "\"a\"" },
    { "app \"a\" host",
      "t.policy:1:9: error: expected \"{\" to open the app, found \"host\"" },
    { "app \"a\" { host \"a.example\" rule r { allow } }",
      "t.policy:1:33: error: expected a quoted rule name after rule, found "
      "\"r\"" },
    { "app \"a\" { host \"a.example\" rule \"r\" allow }",
      "t.policy:1:37: error: expected \"{\" to open the rule, found "
      "\"allow\"" },
    { "rule \"x\" { allow }",
      "t.policy:1:1: error: \"rule\" is only allowed inside an app block: "
      "app \"name\" { ... }" },
    { "}", "t.policy:1:1: error: unexpected \"}\" with no block open" },
    { "bogus", "t.policy:1:1: error: expected timezone, network, group, "
      "condition or app, found \"bogus\"" },
    { "timezone 8", "t.policy:1:10: error: expected a quoted UTC offset "
      "such as \"+08:00\" after timezone, found number 8" },
    { "timezone \"+8\"", "t.policy:1:10: error: invalid timezone \"+8\"; "
      "expected a UTC offset from \"-14:00\" to \"+14:00\" such as "
      "\"+08:00\"" },
    { "timezone \"+15:00\"", "t.policy:1:10: error: invalid timezone "
      "\"+15:00\"; expected a UTC offset from \"-14:00\" to \"+14:00\" such "
      "as \"+08:00\"" },
    { "timezone \"+08:00\"\ntimezone \"+01:00\"",
      "t.policy:2:1: error: timezone is set twice; first set at t.policy:1" },
    { "network 3 = 10.0.0.0/8",
      "t.policy:1:9: error: expected a name, found number 3" },
    { "network a.b = 10.0.0.0/8",
      "t.policy:1:9: error: a name cannot contain \".\": \"a.b\"" },
    { "network and = 10.0.0.0/8",
      "t.policy:1:9: error: \"and\" is a reserved word; choose another name" },
    { "condition active = true",
      "t.policy:1:11: error: \"active\" is a reserved word; choose another "
      "name" },
    { "network n 10.0.0.0/8",
      "t.policy:1:11: error: expected \"=\" after the name, found address "
      "10.0.0.0/8" },
    { "network n = \"x\"",
      "t.policy:1:13: error: expected a network such as 10.0.0.0/8 or "
      "2001:db8::/32, found string \"x\"" },
    { "group g = 10.0.0.0/8",
      "t.policy:1:11: error: expected a quoted group name, found address "
      "10.0.0.0/8" },
    { "condition c =",
      "t.policy:1:14: error: expected a condition (an attribute, a named "
      "condition, true, false, not or \"(\"), found end of file" },
};

static void test_syntax_errors(void **state);
static void test_recovery(void **state);
static void test_nesting_limit(void **state);
static void test_fmt_structure(void **state);
static void test_fmt_precedence(void **state);
static void test_fmt_idempotent(void **state);
static void test_free_form(void **state);
static char *test_fmt(const char *text);


static void
test_syntax_errors(void **state)
{
    pol_diags_t   d;
    pol_t        *pol;
    char          line[700];
    size_t        i;
    int           bad;

    (void) state;
    bad = 0;
    for (i = 0; i < sizeof(test_syntax) / sizeof(test_syntax[0]); i++) {
        assert_int_equal(pol_load_string("t.policy", test_syntax[i].text,
                                         strlen(test_syntax[i].text), &pol,
                                         &d), -1);
        assert_null(pol);
        assert_true(d.nerrors >= 1);
        pol_diag_format(&d.diags[0], line, sizeof(line));
        if (strcmp(line, test_syntax[i].diag) != 0) {
            print_error("case %zu:\n  got    %s\n  wanted %s\n", i, line,
                        test_syntax[i].diag);
            bad++;
        }
    }
    assert_int_equal(bad, 0);
}


/* One error per broken statement: the parser resumes at the next one. */
static void
test_recovery(void **state)
{
    static const char  text[] =
        "app \"a\" {\n"
        "    host \"a.example\"\n"
        "    rule \"one\" {\n"
        "        path \"/x\" bogus\n"
        "        allow\n"
        "    }\n"
        "    rule \"two\" {\n"
        "        when user.authenticated alow\n"
        "    }\n"
        "    rule \"three\" { allow }\n"
        "}\n"
        "bogus 1 2 3\n"
        "network n = 10.0.0.0/8\n";
    pol_diags_t   d;
    pol_t        *pol;
    char          line[700];

    (void) state;
    assert_int_equal(pol_load_string("t.policy", text, strlen(text), &pol,
                                     &d), -1);
    assert_int_equal(d.nerrors, 3);
    pol_diag_format(&d.diags[0], line, sizeof(line));
    assert_string_equal(line, "t.policy:4:19: error: expected path, method, "
                        "when or an outcome (allow, deny, step-up or login) "
                        "in rule \"one\", found \"bogus\"");
    pol_diag_format(&d.diags[1], line, sizeof(line));
    assert_string_equal(line, "t.policy:8:33: error: expected an outcome "
                        "(allow, deny, step-up or login) after the rule's "
                        "conditions, found \"alow\"");
    pol_diag_format(&d.diags[2], line, sizeof(line));
    assert_string_equal(line, "t.policy:12:1: error: expected timezone, "
                        "network, group, condition or app, found \"bogus\"");
}


static void
test_nesting_limit(void **state)
{
    char          text[1024];
    size_t        n, i;
    pol_diags_t   d;
    pol_t        *pol;
    char          line[700];

    (void) state;
    n = (size_t) snprintf(text, sizeof(text), "condition c = ");
    for (i = 0; i < 70; i++) {
        n += (size_t) snprintf(text + n, sizeof(text) - n, "not ");
    }
    snprintf(text + n, sizeof(text) - n, "true");

    assert_int_equal(pol_load_string("t.policy", text, strlen(text), &pol,
                                     &d), -1);
    pol_diag_format(&d.diags[0], line, sizeof(line));
    assert_string_equal(line, "t.policy:1:271: error: condition is nested "
                        "too deeply (at most 64 levels of not and "
                        "parentheses)");
}


static char *
test_fmt(const char *text)
{
    pol_diags_t   d;
    char         *out;
    size_t        len;

    assert_int_equal(pol_fmt_string("t.policy", text, strlen(text), &out,
                                     &len, &d), 0);
    assert_int_equal(strlen(out), len);
    return out;
}


static void
test_fmt_structure(void **state)
{
    static const char  text[] =
        "# comment\n"
        "app \"hr\" { host \"hr.example\" host \"*.hr.example\"\n"
        "rule \"admin\" { path prefix \"/admin\" path \"/r/*.pdf\" "
        "method get, \"POST\" when source in (10.0.0.0/8, ::1) "
        "deny 451 \"No \\\"way\\\"\" }\n"
        "rule \"a\" { allow header \"X-U\" = user.name cache 90s "
        "report-only } }\n"
        "network office = 10.20.0.0/16\n"
        "timezone \"-05:30\"\n";
    static const char  expect[] =
        "timezone \"-05:30\"\n"
        "\n"
        "network office = 10.20.0.0/16\n"
        "\n"
        "app \"hr\" {\n"
        "    host \"hr.example\", \"*.hr.example\"\n"
        "\n"
        "    rule \"admin\" {\n"
        "        path prefix \"/admin\"\n"
        "        path \"/r/*.pdf\"\n"
        "        method get, POST\n"
        "        when source in (10.0.0.0/8, ::1)\n"
        "        deny 451 \"No \\\"way\\\"\"\n"
        "    }\n"
        "\n"
        "    rule \"a\" {\n"
        "        allow\n"
        "        header \"X-U\" = user.name\n"
        "        cache 1m30s\n"
        "        report-only\n"
        "    }\n"
        "}\n";
    char  *out;

    (void) state;
    out = test_fmt(text);
    assert_string_equal(out, expect);
    free(out);
}


static void
test_fmt_precedence(void **state)
{
    static const struct {
        const char  *in;
        const char  *out;
    } cases[] = {
        { "condition c = a or b and c", "condition c = a or (b and c)\n" },
        { "condition c = (a or b) and c", "condition c = (a or b) and c\n" },
        { "condition c = not a and b", "condition c = not a and b\n" },
        { "condition c = not (a and b)", "condition c = not (a and b)\n" },
        { "condition c = ((a))", "condition c = a\n" },
        { "condition c = a and (b and c)",
          "condition c = a and (b and c)\n" },
        { "condition c = x not in (1, 2) or y contains \"z\"",
          "condition c = x not in (1, 2) or y contains \"z\"\n" },
        { "condition c = not x == 3", "condition c = not x == 3\n" },
        { "condition c = x in network n or y in group g",
          "condition c = x in network n or y in group g\n" },
        { "condition c = auth.mfa_age < 3600s",
          "condition c = auth.mfa_age < 1h\n" },
    };
    size_t  i;
    char   *out;

    (void) state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        out = test_fmt(cases[i].in);
        assert_string_equal(out, cases[i].out);
        free(out);
    }
}


static void
test_fmt_idempotent(void **state)
{
    static const char  text[] =
        "group g = \"a\\tb\", \"c\"\n"
        "condition m = device.status == active and not (x or y)\n"
        "app \"x\" { host \"*\" rule \"r\" { method PROPFIND when m and "
        "user.groups in g and time.weekday in (sat, sun) step-up } }\n";
    char  *a, *b;

    (void) state;
    a = test_fmt(text);
    b = test_fmt(a);
    assert_string_equal(a, b);
    free(a);
    free(b);
}


static void
test_free_form(void **state)
{
    static const char  one[] =
        "app \"a\" { host \"a.example\" rule \"r\" { path \"/\" method GET "
        "when true allow } }";
    static const char  many[] =
        "app\n\"a\"\n{\nhost\n\"a.example\"\nrule\n\"r\"\n{\npath\n\"/\"\n"
        "method\nGET\nwhen\ntrue\nallow\n}\n}\n";
    char  *a, *b;

    (void) state;
    a = test_fmt(one);
    b = test_fmt(many);
    assert_string_equal(a, b);
    free(a);
    free(b);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_syntax_errors),
        cmocka_unit_test(test_recovery),
        cmocka_unit_test(test_nesting_limit),
        cmocka_unit_test(test_fmt_structure),
        cmocka_unit_test(test_fmt_precedence),
        cmocka_unit_test(test_fmt_idempotent),
        cmocka_unit_test(test_free_form),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
