/*
 * Unit tests for the pure parts of ztconsole: the string tables (both
 * languages complete, the same printf conversions in each), the page
 * frame (escaping, the language switch, landmarks) and the configuration
 * file.  The daemon itself is tested end to end, through nginx and a real
 * browser, by tests/integration/test_console.py.
 */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "console/console.h"


static void test_strings_complete(void **state);
static void test_strings_formats(void **state);
static void test_frame_escapes(void **state);
static void test_frame_switch(void **state);
static void test_frame_helpers(void **state);
static void test_conf_good(void **state);
static void test_conf_defaults(void **state);
static void test_conf_errors(void **state);
static void test_conversions(const char *s, char *out, size_t size);
static int test_conf(const char *text, console_conf_t *cf, char *err,
    size_t errsize);
static char *test_page(const console_page_t *pg, const char *heading);


static void
test_strings_complete(void **state)
{
    int  id, lang;

    (void) state;

    for (id = 0; id < CONSOLE_NSTRINGS; id++) {
        for (lang = 0; lang < PORTAL_NLANGS; lang++) {
            /* console_str() falls back to English: compare the pointers */
            if (lang != PORTAL_LANG_EN) {
                assert_true(console_str((portal_lang_t) lang,
                                        (console_str_t) id)
                            != console_str(PORTAL_LANG_EN,
                                           (console_str_t) id));
            }

            assert_true(console_str((portal_lang_t) lang,
                                    (console_str_t) id)[0] != '\0');
        }
    }

    assert_string_equal(console_str(PORTAL_LANG_EN, CONSOLE_NSTRINGS), "");
}


/* The conversions of a format ("%s", "%u"), in order, as one string. */
static void
test_conversions(const char *s, char *out, size_t size)
{
    size_t  n;

    n = 0;

    for (; *s != '\0'; s++) {
        if (*s != '%') {
            continue;
        }

        s++;
        assert_true(*s == 's' || *s == 'u');
        assert_true(n + 1 < size);
        out[n++] = *s;
    }

    out[n] = '\0';
}


static void
test_strings_formats(void **state)
{
    char  en[8], zh[8];
    int   id;

    (void) state;

    for (id = 0; id < CONSOLE_NSTRINGS; id++) {
        test_conversions(console_str(PORTAL_LANG_EN, (console_str_t) id), en,
                         sizeof(en));
        test_conversions(console_str(PORTAL_LANG_ZH_TW, (console_str_t) id),
                         zh, sizeof(zh));
        assert_string_equal(en, zh);
    }
}


static char *
test_page(const console_page_t *pg, const char *heading)
{
    portal_buf_t  b;

    b.p = malloc(65536);
    assert_non_null(b.p);
    b.cap = 65536;
    b.len = 0;
    b.overflow = 0;

    console_html_begin(&b, pg, heading);
    console_html_end(&b);
    assert_false(b.overflow);

    return b.p;
}


static void
test_frame_escapes(void **state)
{
    console_page_t   pg;
    char            *page;

    (void) state;

    memset(&pg, 0, sizeof(pg));
    pg.lang = PORTAL_LANG_EN;
    pg.base = "/console";
    pg.staff = "sam<b>";
    pg.csrf = "00";

    page = test_page(&pg, "User <script>alert(1)</script>");

    assert_non_null(strstr(page, "<html lang=\"en\">"));
    assert_non_null(strstr(page, "<h1>User &lt;script&gt;alert(1)&lt;"
                                 "/script&gt;</h1>"));
    assert_null(strstr(page, "<script>"));
    assert_non_null(strstr(page, "<strong id=\"staff\">sam&lt;b&gt;"
                                 "</strong>"));
    /* landmarks: a skip link to main, navigation, one h1 */
    assert_non_null(strstr(page, "href=\"#main\""));
    assert_non_null(strstr(page, "<main id=\"main\""));
    assert_non_null(strstr(page, "<nav aria-label=\"Console\">"));
    assert_non_null(strstr(page, "href=\"/console/users/new\""));
    assert_non_null(strstr(page, "<h1>"));
    assert_null(strstr(strstr(page, "<h1>") + 1, "<h1>"));
    free(page);

    /* without a staff member (an error before sign-in): no navigation */
    pg.staff = NULL;
    pg.lang = PORTAL_LANG_ZH_TW;
    page = test_page(&pg, "錯誤");
    assert_non_null(strstr(page, "<html lang=\"zh-TW\">"));
    assert_null(strstr(page, "users/new"));
    assert_null(strstr(page, "id=\"staff\""));
    free(page);
}


static void
test_frame_switch(void **state)
{
    console_page_t   pg;
    char            *page;

    (void) state;

    memset(&pg, 0, sizeof(pg));
    pg.lang = PORTAL_LANG_ZH_TW;
    pg.base = "/console";
    pg.staff = "sam";
    pg.self = "/console/user?name=a&b=\"x\"";

    page = test_page(&pg, "x");

    /* back to this page, percent-encoded, in a lang-tagged link */
    assert_non_null(strstr(page, "href=\"/console/lang?to=en&amp;back="
                                 "%2Fconsole%2Fuser%3Fname%3Da%26b%3D%22x"
                                 "%22\" lang=\"en\" hreflang=\"en\">"));
    assert_non_null(strstr(page, "lang=\"zh-TW\" hreflang=\"zh-TW\" "
                                 "aria-current=\"true\">"));
    free(page);
}


static void
test_frame_helpers(void **state)
{
    console_page_t  pg;
    portal_buf_t    b;
    char            buf[2048];

    (void) state;

    memset(&pg, 0, sizeof(pg));
    pg.lang = PORTAL_LANG_EN;
    pg.base = "/c";
    pg.csrf = "ab\"cd";

    b.p = buf;
    b.cap = sizeof(buf);
    b.len = 0;
    b.overflow = 0;
    buf[0] = '\0';

    console_html_form(&b, &pg, "user/totp/start", 0);
    assert_string_equal(buf, "<form method=\"post\" action=\"/c/user/totp/"
                             "start\">\n<input type=\"hidden\" name=\"csrf\" "
                             "value=\"ab&quot;cd\">\n");

    b.len = 0;
    console_html_message(&b, "done <now>", 0);
    assert_string_equal(buf, "<p class=\"status\" role=\"status\">done "
                             "&lt;now&gt;</p>\n");

    b.len = 0;
    buf[0] = '\0';
    console_html_message(&b, "", 1);
    assert_string_equal(buf, "");

    b.len = 0;
    console_html_time(&b, &pg, 0);
    assert_string_equal(buf, "never");

    b.len = 0;
    console_html_time(&b, &pg, 1764064800);
    assert_string_equal(buf, "<time datetime=\"1764064800\">2025-11-25 "
                             "10:00 UTC</time>");

    /* a full buffer says so, and holds no half-written markup */
    b.cap = 8;
    b.len = 0;
    b.overflow = 0;
    console_html_message(&b, "long enough", 1);
    assert_true(b.overflow);
}


/* Write text to a temporary file and load it. */
static int
test_conf(const char *text, console_conf_t *cf, char *err, size_t errsize)
{
    char   path[] = "/tmp/ztconsole-test.XXXXXX";
    FILE  *f;
    int    fd, rc;

    fd = mkstemp(path);
    assert_true(fd >= 0);
    f = fdopen(fd, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);

    err[0] = '\0';
    rc = console_conf_load(path, cf, err, errsize);
    unlink(path);

    return rc;
}


static void
test_conf_good(void **state)
{
    console_conf_t  cf;
    char            err[1024];

    (void) state;

    assert_int_equal(test_conf(
        "# the console\n"
        "trustd_config /etc/ztgate/trustd.conf\n"
        "listen /run/ztgate/console.sock   # nginx's\n"
        "listen_mode 0660\n"
        "peer_user 0\n"
        "peer_user root\n"
        "origin https://console.agency.example\n"
        "origin https://localhost:8443\n"
        "base_path /staff/console\n"
        "staff_group help-desk\n"
        "mfa_max_age 10m\n"
        "require_device no\n"
        "ca_dir /etc/ztgate/ca\n"
        "cert_days 90\n"
        "totp_issuer \"Agency staff\"\n"
        "log_level debug\n"
        "log_target syslog\n", &cf, err, sizeof(err)), 0);

    assert_string_equal(cf.listen, "/run/ztgate/console.sock");
    assert_int_equal(cf.npeers, 2);
    assert_int_equal(cf.norigins, 2);
    assert_string_equal(cf.origins[1], "https://localhost:8443");
    assert_string_equal(cf.hosts[0], "console.agency.example");
    assert_string_equal(cf.hosts[1], "localhost");
    assert_string_equal(cf.base_path, "/staff/console");
    assert_string_equal(cf.staff_group, "help-desk");
    assert_int_equal(cf.mfa_max_age_ms, 600000);
    assert_int_equal(cf.require_device, 0);
    assert_int_equal(cf.cert_days, 90);
    assert_string_equal(cf.totp_issuer, "Agency staff");
    assert_int_equal(cf.log_target, CONFIG_LOG_TARGET_SYSLOG);
}


static void
test_conf_defaults(void **state)
{
    console_conf_t  cf;
    char            err[1024];

    (void) state;

    assert_int_equal(test_conf("listen /run/c.sock\npeer_user 0\n"
                               "origin https://c.example\n", &cf, err,
                               sizeof(err)), 0);

    assert_string_equal(cf.trustd_config, CONFIG_DEFAULT_PATH);
    assert_string_equal(cf.base_path, "/console");
    assert_string_equal(cf.staff_group, "staff");
    assert_int_equal(cf.mfa_max_age_ms, 15 * 60 * 1000);
    assert_int_equal(cf.require_device, 1);
    assert_string_equal(cf.ca_dir, "");
    assert_int_equal(cf.cert_days, 365);
    assert_int_equal(cf.listen_mode, 0660);
}


static void
test_conf_errors(void **state)
{
    console_conf_t  cf;
    char            err[1024];
    size_t          i;

    static const struct {
        const char  *text;
        const char  *msg;
    } cases[] = {
        { "listen relative.sock\n", ":1: listen \"relative.sock\": must be "
                                    "an absolute path" },
        { "bogus 1\n", ":1: unknown keyword \"bogus\"" },
        { "listen /a\nlisten /b\n", ":2: \"listen\" given twice" },
        { "origin http://c.example\n", ":1: origin \"http://c.example\"" },
        { "origin https://c.example/\n", ":1: origin" },
        { "origin https://C.example\n", ":1: origin" },
        { "origin https://c.example:0\n", ":1: origin" },
        { "origin https://c.example:99999\n", ":1: origin" },
        { "base_path /console/\n", ":1: base_path" },
        { "base_path console\n", ":1: base_path" },
        { "staff_group Bad Group\n", ":1: \"staff_group\" takes one value" },
        { "mfa_max_age 2d\n", ":1: mfa_max_age" },
        { "require_device maybe\n", ":1: require_device" },
        { "cert_days 0\n", ":1: cert_days" },
        { "peer_user no-such-user-here\n", ":1: peer_user" },
        { "totp_issuer\n", ":1: keyword \"totp_issuer\" needs a value" },
        { "listen /a\norigin https://c.example\n",
          "\"peer_user\" is required" },
        { "listen /a\npeer_user 0\n", "\"origin\" is required" },
        { "peer_user 0\norigin https://c.example\n",
          "\"listen\" is required" },
        { "listen /a\npeer_user 0\norigin https://c.example\n"
          "ca_passphrase_file /p\n", "needs \"ca_dir\"" },
    };

    (void) state;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(test_conf(cases[i].text, &cf, err, sizeof(err)),
                         -1);
        if (strstr(err, cases[i].msg) == NULL) {
            fail_msg("case %zu: \"%s\" does not contain \"%s\"", i, err,
                     cases[i].msg);
        }
    }

    assert_int_equal(console_conf_load("/nonexistent/console.conf", &cf, err,
                                       sizeof(err)), -1);
    assert_non_null(strstr(err, "/nonexistent/console.conf: "));
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_strings_complete),
        cmocka_unit_test(test_strings_formats),
        cmocka_unit_test(test_frame_escapes),
        cmocka_unit_test(test_frame_switch),
        cmocka_unit_test(test_frame_helpers),
        cmocka_unit_test(test_conf_good),
        cmocka_unit_test(test_conf_defaults),
        cmocka_unit_test(test_conf_errors),
    };

    return cmocka_run_group_tests_name("console", tests, NULL, NULL);
}
