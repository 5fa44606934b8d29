/*
 * Unit tests for the policy lexer (policy/lexer.c): token kinds, values,
 * line and column of every token, and each lexical error with its exact
 * position and message.
 */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "policy_int.h"

typedef struct {
    pol_arena_t   arena;
    pol_diags_t   diags;
    pol_lexer_t   lx;
} test_lex_t;

static void test_lex_open(test_lex_t *t, const char *text);
static void test_lex_close(test_lex_t *t);
static void test_expect(test_lex_t *t, pol_tok_kind_t kind, unsigned line,
    unsigned col, const char *text);
static void test_lex_error(const char *text, const char *expect);
static void test_punctuation(void **state);
static void test_positions(void **state);
static void test_identifiers(void **state);
static void test_strings(void **state);
static void test_numbers_durations(void **state);
static void test_addresses(void **state);
static void test_comments(void **state);
static void test_errors(void **state);
static void test_utf8_columns(void **state);


static void
test_lex_open(test_lex_t *t, const char *text)
{
    memset(t, 0, sizeof(*t));
    pol_lexer_init(&t->lx, "t.policy", text, strlen(text), &t->arena,
                   &t->diags);
}


static void
test_lex_close(test_lex_t *t)
{
    pol_arena_free(&t->arena);
}


static void
test_expect(test_lex_t *t, pol_tok_kind_t kind, unsigned line, unsigned col,
    const char *text)
{
    pol_tok_t  tok;

    pol_lexer_next(&t->lx, &tok);
    assert_int_equal(tok.kind, kind);
    assert_int_equal(tok.line, line);
    assert_int_equal(tok.col, col);
    if (text != NULL) {
        assert_int_equal(tok.len, strlen(text));
        assert_memory_equal(tok.text, text, tok.len);
    }
}


static void
test_lex_error(const char *text, const char *expect)
{
    test_lex_t  t;
    pol_tok_t   tok;
    char        line[700];
    int         guard;

    test_lex_open(&t, text);
    guard = 0;
    do {
        pol_lexer_next(&t.lx, &tok);
    } while (tok.kind != POL_TOK_EOF && ++guard < 100);

    assert_true(t.diags.nerrors >= 1);
    pol_diag_format(&t.diags.diags[0], line, sizeof(line));
    assert_string_equal(line, expect);
    test_lex_close(&t);
}


static void
test_punctuation(void **state)
{
    test_lex_t  t;

    (void) state;
    test_lex_open(&t, "{ } ( ) , = == != < <= > >=");
    test_expect(&t, POL_TOK_LBRACE, 1, 1, "{");
    test_expect(&t, POL_TOK_RBRACE, 1, 3, "}");
    test_expect(&t, POL_TOK_LPAREN, 1, 5, "(");
    test_expect(&t, POL_TOK_RPAREN, 1, 7, ")");
    test_expect(&t, POL_TOK_COMMA, 1, 9, ",");
    test_expect(&t, POL_TOK_ASSIGN, 1, 11, "=");
    test_expect(&t, POL_TOK_EQ, 1, 13, "==");
    test_expect(&t, POL_TOK_NE, 1, 16, "!=");
    test_expect(&t, POL_TOK_LT, 1, 19, "<");
    test_expect(&t, POL_TOK_LE, 1, 21, "<=");
    test_expect(&t, POL_TOK_GT, 1, 24, ">");
    test_expect(&t, POL_TOK_GE, 1, 26, ">=");
    test_expect(&t, POL_TOK_EOF, 1, 28, NULL);
    assert_int_equal(t.diags.nerrors, 0);
    test_lex_close(&t);
}


static void
test_positions(void **state)
{
    test_lex_t  t;

    (void) state;
    test_lex_open(&t, "app \"hr\" {\n    rule \"x\" {\n\tallow\n}}\n");
    test_expect(&t, POL_TOK_IDENT, 1, 1, "app");
    test_expect(&t, POL_TOK_STRING, 1, 5, "\"hr\"");
    test_expect(&t, POL_TOK_LBRACE, 1, 10, "{");
    test_expect(&t, POL_TOK_IDENT, 2, 5, "rule");
    test_expect(&t, POL_TOK_STRING, 2, 10, "\"x\"");
    test_expect(&t, POL_TOK_LBRACE, 2, 14, "{");
    test_expect(&t, POL_TOK_IDENT, 3, 2, "allow");
    test_expect(&t, POL_TOK_RBRACE, 4, 1, "}");
    test_expect(&t, POL_TOK_RBRACE, 4, 2, "}");
    test_expect(&t, POL_TOK_EOF, 5, 1, NULL);
    test_lex_close(&t);
}


static void
test_identifiers(void **state)
{
    test_lex_t  t;

    (void) state;
    test_lex_open(&t, "device.posture.firewall step-up report-only _x a.b. "
                  "deny");
    test_expect(&t, POL_TOK_IDENT, 1, 1, "device.posture.firewall");
    test_expect(&t, POL_TOK_IDENT, 1, 25, "step-up");
    test_expect(&t, POL_TOK_IDENT, 1, 33, "report-only");
    test_expect(&t, POL_TOK_IDENT, 1, 45, "_x");
    test_expect(&t, POL_TOK_IDENT, 1, 48, "a.b");
    test_expect(&t, POL_TOK_IDENT, 1, 53, "deny");
    assert_int_equal(t.diags.nerrors, 1);      /* the stray "." */
    test_lex_close(&t);
}


static void
test_strings(void **state)
{
    test_lex_t  t;
    pol_tok_t   tok;

    (void) state;
    test_lex_open(&t, "\"a\\\"b\\\\c\\n\\t\" \"\" \"h\xc3\xa9\"");
    pol_lexer_next(&t.lx, &tok);
    assert_int_equal(tok.kind, POL_TOK_STRING);
    assert_int_equal(tok.str.len, 7);
    assert_memory_equal(tok.str.data, "a\"b\\c\n\t", 7);
    pol_lexer_next(&t.lx, &tok);
    assert_int_equal(tok.kind, POL_TOK_STRING);
    assert_int_equal(tok.str.len, 0);
    pol_lexer_next(&t.lx, &tok);
    assert_int_equal(tok.str.len, 3);
    assert_int_equal(t.diags.nerrors, 0);
    test_lex_close(&t);
}


static void
test_numbers_durations(void **state)
{
    test_lex_t  t;
    pol_tok_t   tok;
    static const struct {
        const char      *text;
        pol_tok_kind_t   kind;
        int64_t          value;
    } cases[] = {
        { "0", POL_TOK_NUMBER, 0 },
        { "451", POL_TOK_NUMBER, 451 },
        { "90s", POL_TOK_DURATION, 90 },
        { "15m", POL_TOK_DURATION, 900 },
        { "8h", POL_TOK_DURATION, 28800 },
        { "30d", POL_TOK_DURATION, 2592000 },
        { "1h30m", POL_TOK_DURATION, 5400 },
        { "1d2h3m4s", POL_TOK_DURATION, 93784 },
        { "0s", POL_TOK_DURATION, 0 }
    };
    size_t      i;

    (void) state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        test_lex_open(&t, cases[i].text);
        pol_lexer_next(&t.lx, &tok);
        assert_int_equal(tok.kind, cases[i].kind);
        assert_int_equal(tok.num, cases[i].value);
        assert_int_equal(t.diags.nerrors, 0);
        test_lex_close(&t);
    }
}


static void
test_addresses(void **state)
{
    test_lex_t  t;
    pol_tok_t   tok;
    static const uint8_t  v4[4] = { 10, 20, 0, 0 };
    static const uint8_t  v6[16] = { 0x20, 0x01, 0x0d, 0xb8 };

    (void) state;
    test_lex_open(&t, "10.20.0.0/16 192.168.1.7 2001:db8::/32 ::1 "
                  "fe80::/10 ::ffff:10.0.0.1");
    pol_lexer_next(&t.lx, &tok);
    assert_int_equal(tok.kind, POL_TOK_ADDR);
    assert_int_equal(tok.family, 4);
    assert_int_equal(tok.prefix, 16);
    assert_memory_equal(tok.addr, v4, 4);
    pol_lexer_next(&t.lx, &tok);
    assert_int_equal(tok.kind, POL_TOK_ADDR);
    assert_int_equal(tok.prefix, 32);
    pol_lexer_next(&t.lx, &tok);
    assert_int_equal(tok.family, 6);
    assert_int_equal(tok.prefix, 32);
    assert_memory_equal(tok.addr, v6, 16);
    pol_lexer_next(&t.lx, &tok);
    assert_int_equal(tok.family, 6);
    assert_int_equal(tok.prefix, 128);
    assert_int_equal(tok.addr[15], 1);
    pol_lexer_next(&t.lx, &tok);
    assert_int_equal(tok.kind, POL_TOK_ADDR);
    assert_int_equal(tok.col, 44);
    assert_int_equal(tok.prefix, 10);
    pol_lexer_next(&t.lx, &tok);
    assert_int_equal(tok.kind, POL_TOK_ADDR);
    assert_int_equal(tok.family, 6);
    assert_int_equal(t.diags.nerrors, 0);
    test_lex_close(&t);
}


static void
test_comments(void **state)
{
    test_lex_t  t;

    (void) state;
    test_lex_open(&t, "# a comment \"x\n  allow # trailing\n# last");
    test_expect(&t, POL_TOK_IDENT, 2, 3, "allow");
    test_expect(&t, POL_TOK_EOF, 3, 7, NULL);
    assert_int_equal(t.diags.nerrors, 0);
    test_lex_close(&t);
}


static void
test_utf8_columns(void **state)
{
    test_lex_t  t;

    (void) state;
    test_lex_open(&t, "\"\xc3\xa9t\xc3\xa9\" allow");
    test_expect(&t, POL_TOK_STRING, 1, 1, NULL);
    test_expect(&t, POL_TOK_IDENT, 1, 7, "allow");
    test_lex_close(&t);
}


static void
test_errors(void **state)
{
    (void) state;
    test_lex_error("  @", "t.policy:1:3: error: unexpected character \"@\"");
    test_lex_error("\x01", "t.policy:1:1: error: unexpected byte 0x01");
    test_lex_error("a ! b", "t.policy:1:3: error: unexpected \"!\"; write != "
                   "or not");
    test_lex_error("x \"abc\ny\"", "t.policy:1:3: error: unterminated "
                   "string; add the closing \"");
    test_lex_error("\"abc", "t.policy:1:1: error: unterminated string; add "
                   "the closing \"");
    test_lex_error("\"a\\qb\"", "t.policy:1:3: error: invalid escape in "
                   "string; only \\\", \\\\, \\n and \\t are allowed");
    test_lex_error("\"a\tb\"", "t.policy:1:3: error: control character in "
                   "string; write \\t or \\n");
    test_lex_error("\"a\xff\"", "t.policy:1:3: error: invalid UTF-8 in "
                   "string");
    test_lex_error("\n 10.1.2.3/8", "t.policy:2:2: error: 10.1.2.3/8 has "
                   "host bits set; did you mean 10.0.0.0/8?");
    test_lex_error("2001:db8::1/32", "t.policy:1:1: error: 2001:db8::1/32 "
                   "has host bits set; did you mean 2001:db8::/32?");
    test_lex_error("10.0.0.0/33", "t.policy:1:1: error: invalid prefix "
                   "length in \"10.0.0.0/33\"; IPv4 takes /0 to /32, IPv6 "
                   "/0 to /128");
    test_lex_error("10.0.0.256", "t.policy:1:1: error: invalid address "
                   "\"10.0.0.256\"; expected an IPv4 or IPv6 address or "
                   "network such as 10.0.0.0/8");
    test_lex_error("1h30", "t.policy:1:1: error: invalid number or duration "
                   "\"1h30\"; write a number such as 15 or a duration such "
                   "as 90s, 15m, 8h, 30d or 1h30m");
    test_lex_error("30m1h", "t.policy:1:1: error: invalid number or duration "
                   "\"30m1h\"; write a number such as 15 or a duration such "
                   "as 90s, 15m, 8h, 30d or 1h30m");
    test_lex_error("12ab", "t.policy:1:1: error: invalid number or duration "
                   "\"12ab\"; write a number such as 15 or a duration such "
                   "as 90s, 15m, 8h, 30d or 1h30m");
    test_lex_error("99999999999999999", "t.policy:1:1: error: number "
                   "\"99999999999999999\" is too large");
    test_lex_error(":x", "t.policy:1:1: error: invalid address \":x\"; "
                   "expected an IPv4 or IPv6 address or network such as "
                   "10.0.0.0/8");
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_punctuation),
        cmocka_unit_test(test_positions),
        cmocka_unit_test(test_identifiers),
        cmocka_unit_test(test_strings),
        cmocka_unit_test(test_numbers_durations),
        cmocka_unit_test(test_addresses),
        cmocka_unit_test(test_comments),
        cmocka_unit_test(test_utf8_columns),
        cmocka_unit_test(test_errors),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
