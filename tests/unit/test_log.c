/*
 * Unit tests for trustd's log line formats (trustd/log.c): the text line
 * as it always was, the kv and json frames, their escaping, fields, and
 * truncation that never breaks a frame.
 */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "trustd/log.h"


static size_t fmt(char *buf, size_t size, int format, const char *msg,
    const log_field_t *fields, size_t n);
static void test_text_is_unchanged(void **state);
static void test_kv_shape(void **state);
static void test_kv_escapes_quotes_and_backslashes(void **state);
static void test_kv_fields(void **state);
static void test_json_shape_and_escapes(void **state);
static void test_json_replaces_bad_utf8(void **state);
static void test_control_characters_are_escaped(void **state);
static void test_truncation_keeps_the_frame(void **state);
static void test_format_names(void **state);


/* 2026-11-25T01:02:03.456Z */
static const struct timespec  when = { 1795568523, 456000000 };


static size_t
fmt(char *buf, size_t size, int format, const char *msg,
    const log_field_t *fields, size_t n)
{
    return log_format_line(buf, size, format, LOG_LEVEL_WARN, &when, 123,
                           "trustd", msg, fields, n);
}


static void
test_text_is_unchanged(void **state)
{
    char    buf[256];
    size_t  n;

    (void) state;

    n = fmt(buf, sizeof(buf), LOG_FORMAT_TEXT, "store \"x\" \\ ok", NULL,
            0);

    assert_string_equal(buf, "2026-11-25T01:02:03Z trustd[123]: warn: "
                        "store \"x\" \\ ok\n");
    assert_int_equal(n, strlen(buf));
}


static void
test_kv_shape(void **state)
{
    char  buf[256];

    (void) state;

    fmt(buf, sizeof(buf), LOG_FORMAT_KV, "started", NULL, 0);

    assert_string_equal(buf, "ts=2026-11-25T01:02:03.456Z level=warn "
                        "pid=123 msg=\"started\"\n");
}


static void
test_kv_escapes_quotes_and_backslashes(void **state)
{
    char  buf[256];

    (void) state;

    fmt(buf, sizeof(buf), LOG_FORMAT_KV, "rule \"a\\b\" would deny", NULL,
        0);

    assert_string_equal(buf, "ts=2026-11-25T01:02:03.456Z level=warn "
                        "pid=123 msg=\"rule \\\"a\\\\b\\\" would deny\"\n");
}


static void
test_kv_fields(void **state)
{
    log_field_t  f[3] = {
        { "policy", "3f2a9c" }, { "path", "/a b" }, { "empty", "" }
    };
    char         buf[256];

    (void) state;

    fmt(buf, sizeof(buf), LOG_FORMAT_KV, "reloaded", f, 3);

    assert_string_equal(buf, "ts=2026-11-25T01:02:03.456Z level=warn "
                        "pid=123 msg=\"reloaded\" policy=3f2a9c "
                        "path=\"/a b\" empty=\"\"\n");

    fmt(buf, sizeof(buf), LOG_FORMAT_TEXT, "reloaded", f, 1);

    assert_string_equal(buf, "2026-11-25T01:02:03Z trustd[123]: warn: "
                        "reloaded policy=3f2a9c\n");
}


static void
test_json_shape_and_escapes(void **state)
{
    log_field_t  f[1] = { { "rule", "say \"hi\"" } };
    char         buf[256];

    (void) state;

    fmt(buf, sizeof(buf), LOG_FORMAT_JSON, "a \"b\" \\ c", f, 1);

    assert_string_equal(buf, "{\"ts\":\"2026-11-25T01:02:03.456Z\","
                        "\"level\":\"warn\",\"pid\":123,"
                        "\"msg\":\"a \\\"b\\\" \\\\ c\","
                        "\"rule\":\"say \\\"hi\\\"\"}\n");
}


static void
test_json_replaces_bad_utf8(void **state)
{
    char  buf[256];

    (void) state;

    /* é (valid), a lone continuation byte, an overlong '/', a surrogate */
    fmt(buf, sizeof(buf), LOG_FORMAT_JSON,
        "caf\xc3\xa9 \x80 \xc0\xaf \xed\xa0\x80 \xe4\xb8\xad", NULL, 0);

    assert_non_null(strstr(buf, "\"msg\":\"caf\xc3\xa9 ? ?? ??? "
                            "\xe4\xb8\xad\"}\n"));

    /* kv keeps bytes as they are, like text */
    fmt(buf, sizeof(buf), LOG_FORMAT_KV, "x \x80 y", NULL, 0);

    assert_non_null(strstr(buf, "msg=\"x \x80 y\"\n"));
}


static void
test_control_characters_are_escaped(void **state)
{
    char  buf[256];

    (void) state;

    /* log_vwrite() turns them into '?' first; the formatter is safe too */
    fmt(buf, sizeof(buf), LOG_FORMAT_KV, "a\r\nFORGED\x01\t", NULL, 0);

    assert_non_null(strstr(buf, "msg=\"a\\r\\nFORGED\\u0001\\t\"\n"));
    assert_null(strchr(buf, '\r'));
    assert_ptr_equal(strchr(buf, '\n'), buf + strlen(buf) - 1);

    fmt(buf, sizeof(buf), LOG_FORMAT_JSON, "a\nb\x7f", NULL, 0);

    assert_non_null(strstr(buf, "\"msg\":\"a\\nb\\u007f\"}\n"));
}


static void
test_truncation_keeps_the_frame(void **state)
{
    log_field_t  f[1] = { { "k", "v" } };
    char         msg[2048], buf[200];
    size_t       n;
    int          format;

    (void) state;

    memset(msg, '"', sizeof(msg) - 1);
    msg[sizeof(msg) - 1] = '\0';

    for (format = LOG_FORMAT_TEXT; format <= LOG_FORMAT_JSON; format++) {
        n = fmt(buf, sizeof(buf), format, msg, f, 1);

        assert_true(n < sizeof(buf));
        assert_int_equal(n, strlen(buf));
        assert_int_equal(buf[n - 1], '\n');

        if (format == LOG_FORMAT_KV) {
            /* whole escapes only: \" pairs, then the closing quote */
            assert_non_null(strstr(buf, "\\\"\" k=v\n"));
        } else if (format == LOG_FORMAT_JSON) {
            assert_non_null(strstr(buf, "\\\"\",\"k\":\"v\"}\n"));
        } else {
            assert_non_null(strstr(buf, "\"\" k=v\n"));
        }
    }

    /* fields that do not fit give way before the message */
    n = fmt(buf, 128, LOG_FORMAT_JSON, "hello",
            (log_field_t[]) { { "k", msg } }, 1);

    assert_true(n < 128);
    assert_non_null(strstr(buf, "\"msg\":\"hello\"}\n"));
}


static void
test_format_names(void **state)
{
    (void) state;

    assert_int_equal(log_format_parse("text"), LOG_FORMAT_TEXT);
    assert_int_equal(log_format_parse("kv"), LOG_FORMAT_KV);
    assert_int_equal(log_format_parse("json"), LOG_FORMAT_JSON);
    assert_int_equal(log_format_parse("JSON"), -1);
    assert_int_equal(log_format_parse(""), -1);
    assert_string_equal(log_format_name(LOG_FORMAT_KV), "kv");
    assert_string_equal(log_format_name(LOG_FORMAT_JSON), "json");
    assert_string_equal(log_format_name(LOG_FORMAT_TEXT), "text");
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_text_is_unchanged),
        cmocka_unit_test(test_kv_shape),
        cmocka_unit_test(test_kv_escapes_quotes_and_backslashes),
        cmocka_unit_test(test_kv_fields),
        cmocka_unit_test(test_json_shape_and_escapes),
        cmocka_unit_test(test_json_replaces_bad_utf8),
        cmocka_unit_test(test_control_characters_are_escaped),
        cmocka_unit_test(test_truncation_keeps_the_frame),
        cmocka_unit_test(test_format_names),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
