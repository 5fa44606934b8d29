/*
 * Unit tests for the pure parts of the sign-in portal: next-URL
 * validation (the open-redirect guard), form and cookie parsing, the
 * per-source limiter, Accept-Language selection, the string tables and
 * HTML escaping.  The daemon itself (portal.c) is tested end to end
 * through nginx by the integration suite.
 */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "trustd/portal.h"

typedef struct {
    const char  *next;
    int          ok;
} test_next_case_t;

static void test_next_table(void **state);
static void test_next_nul_and_length(void **state);
static void test_next_no_hosts(void **state);
static void test_form_basic(void **state);
static void test_form_decoding(void **state);
static void test_form_duplicates(void **state);
static void test_form_missing_and_empty(void **state);
static void test_form_overlong(void **state);
static void test_form_bad_escapes(void **state);
static void test_cookie_basic(void **state);
static void test_cookie_duplicates(void **state);
static void test_cookie_edge(void **state);
static void test_url_encode(void **state);
static void test_hex(void **state);
static void test_ct_equal(void **state);
static void test_rate_window(void **state);
static void test_posture_good(void **state);
static void test_posture_optional(void **state);
static void test_posture_refused(void **state);
static void test_posture_size(void **state);
static void test_rate_sources(void **state);
static void test_rate_full_table(void **state);
static void test_lang_pick(void **state);
static void test_strings_complete(void **state);
static void test_html_escape(void **state);
static void test_html_pages(void **state);
static void test_html_overflow(void **state);
static int test_next(const char *s);
static char *test_render(const portal_page_t *pg);

static const char  test_hosts[][256] = {
    "good.example",
    "app.agency.example:8443",
    "[2001:db8::1]"
};

static const test_next_case_t  test_next_cases[] = {
    /* local paths */
    { "/", 1 },
    { "/app", 1 },
    { "/app/page?x=1&y=%2F%2F#frag", 1 },
    { "/a/%2F%2Fb", 1 },                    /* not at the start */
    { "/caf%C3%A9", 1 },
    { "/?next=//evil.example", 1 },         /* in the query: harmless */
    { "//evil.example", 0 },
    { "//evil.example/path", 0 },
    { "///evil.example", 0 },
    { "/\\evil.example", 0 },
    { "\\\\evil.example", 0 },
    { "/path\\x", 0 },                      /* backslash anywhere */
    { "%2F%2Fevil.example", 0 },
    { "%2f%2fevil.example", 0 },
    { "/%2F%2Fevil.example", 0 },           /* decided: refused */
    { "/%2f/evil.example", 0 },
    { "/%5Cevil.example", 0 },
    { "/%5cevil.example", 0 },
    { "/ok/%5C", 0 },                       /* encoded backslash in path */
    { "/%0d%0aSet-Cookie:x=1", 0 },
    { "/\r\nLocation: x", 0 },
    { "/a b", 0 },
    { "/a\tb", 0 },
    { "/%zz", 0 },                          /* malformed escape */
    { "/%2", 0 },
    { "/%", 0 },
    { "", 0 },
    { "relative/path", 0 },
    { "evil.example", 0 },
    /* absolute URLs */
    { "https://good.example", 1 },
    { "https://good.example/", 1 },
    { "https://good.example/x?y=1#z", 1 },
    { "https://good.example?x", 1 },
    { "HTTPS://GOOD.EXAMPLE/x", 1 },
    { "https://Good.Example/x", 1 },
    { "https://app.agency.example:8443/x", 1 },
    { "https://[2001:db8::1]/x", 1 },
    { "https://app.agency.example/x", 0 },  /* port not configured */
    { "https://good.example:443/", 0 },     /* ports compare exactly */
    { "https://evil.example", 0 },
    { "https://evil.example/good.example", 0 },
    { "https://good@evil.example", 0 },
    { "https://good.example@evil.example/", 0 },
    { "https://user:pw@good.example/", 0 },
    { "https://good.example.evil.example", 0 },
    { "https://good.example.", 0 },
    { "https://evil.example#@good.example", 0 },
    { "https://good.example\\@evil.example", 0 },
    { "https://good.example\\evil.example", 0 },
    { "https://good%2Eexample/", 0 },
    { "https:///good.example", 0 },
    { "https://", 0 },
    { "https:good.example", 0 },
    { "http://good.example/", 0 },
    { "ftp://good.example/", 0 },
    { "javascript:alert(1)", 0 },
    { "JavaScript://good.example/%0aalert(1)", 0 },
    { "data:text/html,<script>", 0 },
    { " https://good.example/", 0 },
    { "https://good.example /", 0 },
};


static int
test_next(const char *s)
{
    return portal_next_ok(s, strlen(s), test_hosts,
                          sizeof(test_hosts) / sizeof(test_hosts[0]));
}


static void
test_next_table(void **state)
{
    size_t  i;
    int     got;

    (void) state;

    for (i = 0; i < sizeof(test_next_cases) / sizeof(test_next_cases[0]);
         i++)
    {
        got = test_next(test_next_cases[i].next);
        if (got != test_next_cases[i].ok) {
            print_error("next \"%s\": expected %d, got %d\n",
                        test_next_cases[i].next, test_next_cases[i].ok, got);
        }
        assert_int_equal(got, test_next_cases[i].ok);
    }
}


static void
test_next_nul_and_length(void **state)
{
    char   *big;
    size_t  n;

    (void) state;

    /* an embedded NUL refuses, even after a good prefix */
    assert_int_equal(portal_next_ok("/ok\0//evil", 10, test_hosts, 3), 0);
    assert_int_equal(portal_next_ok(NULL, 0, test_hosts, 3), 0);

    n = PORTAL_NEXT_MAX + 1;
    big = malloc(n + 1);
    assert_non_null(big);
    memset(big, 'a', n);
    big[0] = '/';
    big[n] = '\0';
    assert_int_equal(portal_next_ok(big, n, test_hosts, 3), 0);
    assert_int_equal(portal_next_ok(big, n - 1, test_hosts, 3), 1);
    free(big);
}


static void
test_next_no_hosts(void **state)
{
    (void) state;

    assert_int_equal(portal_next_ok("https://good.example/", 21, NULL, 0),
                     0);
    assert_int_equal(portal_next_ok("/x", 2, NULL, 0), 1);
}


static void
test_form_basic(void **state)
{
    const char  *body = "user=alice&password=s3cret&code=123456&csrf=ab";
    char         out[64];

    (void) state;

    assert_int_equal(portal_form_get(body, strlen(body), "user", out,
                                     sizeof(out)), PORTAL_FOUND);
    assert_string_equal(out, "alice");
    assert_int_equal(portal_form_get(body, strlen(body), "code", out,
                                     sizeof(out)), PORTAL_FOUND);
    assert_string_equal(out, "123456");
    assert_int_equal(portal_form_get(body, strlen(body), "csrf", out,
                                     sizeof(out)), PORTAL_FOUND);
    assert_string_equal(out, "ab");

    /* a prefix of a name is not the name */
    assert_int_equal(portal_form_get(body, strlen(body), "pass", out,
                                     sizeof(out)), PORTAL_MISSING);
    assert_int_equal(portal_form_get(body, strlen(body), "use", out,
                                     sizeof(out)), PORTAL_MISSING);

    /* the length bounds the parse, not a NUL */
    assert_int_equal(portal_form_get(body, 10, "user", out, sizeof(out)),
                     PORTAL_FOUND);
    assert_string_equal(out, "alice");
    assert_int_equal(portal_form_get(body, 10, "password", out,
                                     sizeof(out)), PORTAL_MISSING);
}


static void
test_form_decoding(void **state)
{
    const char  *body = "p=a+b%20c%26d%3De%2b&n=%2Fapp%3Fx%3D1&%75ser=x"
                        "&u8=%E5%B8%B3%E8%99%9F";
    char         out[64];

    (void) state;

    assert_int_equal(portal_form_get(body, strlen(body), "p", out,
                                     sizeof(out)), PORTAL_FOUND);
    assert_string_equal(out, "a b c&d=e+");
    assert_int_equal(portal_form_get(body, strlen(body), "n", out,
                                     sizeof(out)), PORTAL_FOUND);
    assert_string_equal(out, "/app?x=1");
    /* names are decoded too */
    assert_int_equal(portal_form_get(body, strlen(body), "user", out,
                                     sizeof(out)), PORTAL_FOUND);
    assert_string_equal(out, "x");
    assert_int_equal(portal_form_get(body, strlen(body), "u8", out,
                                     sizeof(out)), PORTAL_FOUND);
    assert_string_equal(out, "帳號");
}


static void
test_form_duplicates(void **state)
{
    const char  *body = "csrf=aa&user=x&csrf=bb";
    const char  *same = "next=%2F&next=%2F";
    const char  *enc = "user=a&%75ser=b";
    char         out[64];

    (void) state;

    assert_int_equal(portal_form_get(body, strlen(body), "csrf", out,
                                     sizeof(out)), PORTAL_INVALID);
    assert_string_equal(out, "");
    assert_int_equal(portal_form_get(same, strlen(same), "next", out,
                                     sizeof(out)), PORTAL_INVALID);
    assert_int_equal(portal_form_get(enc, strlen(enc), "user", out,
                                     sizeof(out)), PORTAL_INVALID);
    assert_int_equal(portal_form_get(body, strlen(body), "user", out,
                                     sizeof(out)), PORTAL_FOUND);
}


static void
test_form_missing_and_empty(void **state)
{
    const char  *body = "a=&b&&=x&c=1";
    char         out[8];

    (void) state;

    assert_int_equal(portal_form_get("", 0, "a", out, sizeof(out)),
                     PORTAL_MISSING);
    assert_int_equal(portal_form_get(body, strlen(body), "a", out,
                                     sizeof(out)), PORTAL_FOUND);
    assert_string_equal(out, "");
    assert_int_equal(portal_form_get(body, strlen(body), "b", out,
                                     sizeof(out)), PORTAL_FOUND);
    assert_string_equal(out, "");
    assert_int_equal(portal_form_get(body, strlen(body), "c", out,
                                     sizeof(out)), PORTAL_FOUND);
    assert_string_equal(out, "1");
    assert_int_equal(portal_form_get(body, strlen(body), "x", out,
                                     sizeof(out)), PORTAL_MISSING);
}


static void
test_form_overlong(void **state)
{
    char  out[8];

    (void) state;

    assert_int_equal(portal_form_get("a=1234567", 9, "a", out, sizeof(out)),
                     PORTAL_FOUND);
    assert_string_equal(out, "1234567");
    assert_int_equal(portal_form_get("a=12345678", 10, "a", out,
                                     sizeof(out)), PORTAL_INVALID);
    assert_string_equal(out, "");
    /* escapes count decoded: 7 bytes fit */
    assert_int_equal(portal_form_get("a=%41%41%41%41%41%41%41", 23, "a", out,
                                     sizeof(out)), PORTAL_FOUND);
    assert_string_equal(out, "AAAAAAA");
}


static void
test_form_bad_escapes(void **state)
{
    char  out[16];

    (void) state;

    assert_int_equal(portal_form_get("a=%zz", 5, "a", out, sizeof(out)),
                     PORTAL_INVALID);
    assert_int_equal(portal_form_get("a=%4", 4, "a", out, sizeof(out)),
                     PORTAL_INVALID);
    assert_int_equal(portal_form_get("a=%", 3, "a", out, sizeof(out)),
                     PORTAL_INVALID);
    assert_int_equal(portal_form_get("a=x%00y", 7, "a", out, sizeof(out)),
                     PORTAL_INVALID);
    /* another field's bad escape does not matter */
    assert_int_equal(portal_form_get("b=%zz&a=1", 9, "a", out, sizeof(out)),
                     PORTAL_FOUND);
    assert_string_equal(out, "1");
}


static void
test_cookie_basic(void **state)
{
    const char  *h = "theme=dark; __Host-zt_csrf=abc123; "
                     "__Host-zt_session=eyJ.x.y";
    char         out[64];
    unsigned     count;

    (void) state;

    count = 0;
    assert_int_equal(portal_cookie_get(h, "__Host-zt_csrf", out, sizeof(out),
                                       &count), PORTAL_FOUND);
    assert_string_equal(out, "abc123");
    assert_int_equal(count, 1);
    assert_int_equal(portal_cookie_get(h, "__Host-zt_session", out,
                                       sizeof(out), NULL), PORTAL_FOUND);
    assert_string_equal(out, "eyJ.x.y");
    assert_int_equal(portal_cookie_get(h, "theme", out, sizeof(out), NULL),
                     PORTAL_FOUND);
    assert_string_equal(out, "dark");
    assert_int_equal(portal_cookie_get(h, "zt_csrf", out, sizeof(out),
                                       NULL), PORTAL_MISSING);
    assert_int_equal(portal_cookie_get(h, "__Host-zt", out, sizeof(out),
                                       NULL), PORTAL_MISSING);
    /* names are case-sensitive */
    assert_int_equal(portal_cookie_get(h, "__host-zt_csrf", out,
                                       sizeof(out), NULL), PORTAL_MISSING);
}


static void
test_cookie_duplicates(void **state)
{
    const char  *h = "__Host-zt_csrf=aaa; x=1; __Host-zt_csrf=bbb";
    char         out[64];
    unsigned     count;

    (void) state;

    count = 0;
    assert_int_equal(portal_cookie_get(h, "__Host-zt_csrf", out, sizeof(out),
                                       &count), PORTAL_INVALID);
    assert_string_equal(out, "");
    assert_int_equal(count, 2);

    /* across two Cookie headers the caller sums the counts */
    count = 0;
    assert_int_equal(portal_cookie_get("a=1", "a", out, sizeof(out),
                                       &count), PORTAL_FOUND);
    assert_int_equal(portal_cookie_get("b=2; a=3", "a", out, sizeof(out),
                                       &count), PORTAL_FOUND);
    assert_int_equal(count, 2);
}


static void
test_cookie_edge(void **state)
{
    char      out[8];
    unsigned  count;

    (void) state;

    assert_int_equal(portal_cookie_get("", "a", out, sizeof(out), NULL),
                     PORTAL_MISSING);
    assert_int_equal(portal_cookie_get(";;  ;", "a", out, sizeof(out),
                                       NULL), PORTAL_MISSING);
    assert_int_equal(portal_cookie_get("a", "a", out, sizeof(out), NULL),
                     PORTAL_MISSING);
    assert_int_equal(portal_cookie_get("a=", "a", out, sizeof(out), NULL),
                     PORTAL_FOUND);
    assert_string_equal(out, "");
    assert_int_equal(portal_cookie_get("a=\"q v\"", "a", out, sizeof(out),
                                       NULL), PORTAL_FOUND);
    assert_string_equal(out, "q v");
    assert_int_equal(portal_cookie_get("a=x=y;b=2", "a", out, sizeof(out),
                                       NULL), PORTAL_FOUND);
    assert_string_equal(out, "x=y");
    assert_int_equal(portal_cookie_get("  a=1  ;b=2", "a", out, sizeof(out),
                                       NULL), PORTAL_FOUND);
    assert_string_equal(out, "1");
    /* 7 bytes fit in 8, 8 do not */
    assert_int_equal(portal_cookie_get("a=1234567", "a", out, sizeof(out),
                                       NULL), PORTAL_FOUND);
    count = 0;
    assert_int_equal(portal_cookie_get("a=12345678", "a", out, sizeof(out),
                                       &count), PORTAL_INVALID);
    assert_string_equal(out, "");
    assert_int_equal(count, 1);
}


static void
test_url_encode(void **state)
{
    char  out[64];

    (void) state;

    assert_int_equal(portal_url_encode("https://a.example/x?y=1&z=é", out,
                                       sizeof(out)), 0);
    assert_string_equal(out,
        "https%3A%2F%2Fa.example%2Fx%3Fy%3D1%26z%3D%C3%A9");
    assert_int_equal(portal_url_encode("abc", out, 4), 0);
    assert_int_equal(portal_url_encode("abc", out, 3), -1);
    assert_int_equal(portal_url_encode("/", out, 3), -1);
    assert_int_equal(portal_url_encode("/", out, 4), 0);
    assert_string_equal(out, "%2F");
}


static void
test_hex(void **state)
{
    uint8_t  b[2];

    (void) state;

    assert_int_equal(portal_is_hex("00ff", 4), 1);
    assert_int_equal(portal_is_hex("00FF", 4), 0);
    assert_int_equal(portal_is_hex("00f", 4), 0);
    assert_int_equal(portal_is_hex("00fff", 4), 0);
    assert_int_equal(portal_is_hex("00fg", 4), 0);
    assert_int_equal(portal_hex_decode("a0ff", b, 2), 0);
    assert_int_equal(b[0], 0xa0);
    assert_int_equal(b[1], 0xff);
    assert_int_equal(portal_hex_decode("zz00", b, 2), -1);
}


static void
test_ct_equal(void **state)
{
    (void) state;

    assert_int_equal(portal_ct_equal("abcd", "abcd", 4), 1);
    assert_int_equal(portal_ct_equal("abcd", "abce", 4), 0);
    assert_int_equal(portal_ct_equal("xbcd", "abcd", 4), 0);
    assert_int_equal(portal_ct_equal("", "", 0), 1);
}


static void
test_rate_window(void **state)
{
    portal_rate_t  *r;
    int64_t         t0;
    unsigned        i;

    (void) state;

    r = malloc(sizeof(*r));
    assert_non_null(r);
    portal_rate_init(r);

    t0 = 1800000000;                    /* a window start: 60 divides it */

    for (i = 0; i < 5; i++) {
        assert_int_equal(portal_rate_hit(r, "192.0.2.1", t0 + i, 5), 1);
    }
    assert_int_equal(portal_rate_hit(r, "192.0.2.1", t0 + 10, 5), 0);
    assert_int_equal(portal_rate_hit(r, "192.0.2.1", t0 + 59, 5), 0);

    /* a new window starts afresh */
    assert_int_equal(portal_rate_hit(r, "192.0.2.1", t0 + 60, 5), 1);
    for (i = 1; i < 5; i++) {
        assert_int_equal(portal_rate_hit(r, "192.0.2.1", t0 + 61, 5), 1);
    }
    assert_int_equal(portal_rate_hit(r, "192.0.2.1", t0 + 119, 5), 0);
    assert_int_equal(portal_rate_hit(r, "192.0.2.1", t0 + 600, 5), 1);

    free(r);
}


static void
test_rate_sources(void **state)
{
    portal_rate_t  *r;
    int64_t         t0;

    (void) state;

    r = malloc(sizeof(*r));
    assert_non_null(r);
    portal_rate_init(r);

    t0 = 1800000000;

    assert_int_equal(portal_rate_hit(r, "192.0.2.1", t0, 1), 1);
    assert_int_equal(portal_rate_hit(r, "192.0.2.1", t0, 1), 0);
    /* another source has its own bucket */
    assert_int_equal(portal_rate_hit(r, "192.0.2.2", t0, 1), 1);
    assert_int_equal(portal_rate_hit(r, "2001:db8::1", t0, 1), 1);
    assert_int_equal(portal_rate_hit(r, "2001:db8::1", t0, 1), 0);
    assert_int_equal(portal_rate_hit(r, "192.0.2.1", t0, 1), 0);

    free(r);
}


static void
test_rate_full_table(void **state)
{
    portal_rate_t  *r;
    int64_t         t0;
    unsigned        i, ok;
    char            src[32];

    (void) state;

    r = malloc(sizeof(*r));
    assert_non_null(r);
    portal_rate_init(r);

    t0 = 1800000000;

    /* far more sources than slots: never crashes, always answers */
    for (i = 0; i < 3 * PORTAL_RATE_SLOTS; i++) {
        snprintf(src, sizeof(src), "10.%u.%u.%u", i >> 16, (i >> 8) & 255,
                 i & 255);
        assert_int_equal(portal_rate_hit(r, src, t0, 2), 1);
    }

    /* a recent source is still counted */
    ok = portal_rate_hit(r, src, t0, 2);
    assert_int_equal(ok, 1);
    assert_int_equal(portal_rate_hit(r, src, t0, 2), 0);

    free(r);
}


static void
test_lang_pick(void **state)
{
    (void) state;

    assert_int_equal(portal_lang_pick(NULL), PORTAL_LANG_EN);
    assert_int_equal(portal_lang_pick(""), PORTAL_LANG_EN);
    assert_int_equal(portal_lang_pick("en-US,en;q=0.9"), PORTAL_LANG_EN);
    assert_int_equal(portal_lang_pick("zh-TW"), PORTAL_LANG_ZH_TW);
    assert_int_equal(portal_lang_pick("zh-tw"), PORTAL_LANG_ZH_TW);
    assert_int_equal(portal_lang_pick("zh-Hant"), PORTAL_LANG_ZH_TW);
    assert_int_equal(portal_lang_pick("zh-Hant-TW"), PORTAL_LANG_ZH_TW);
    assert_int_equal(portal_lang_pick("zh-HK"), PORTAL_LANG_ZH_TW);
    assert_int_equal(portal_lang_pick("zh"), PORTAL_LANG_ZH_TW);
    assert_int_equal(portal_lang_pick("zh-TW,zh;q=0.9,en-US;q=0.8,en;q=0.7"),
                     PORTAL_LANG_ZH_TW);
    assert_int_equal(portal_lang_pick("en;q=0.5, zh-TW;q=0.8"),
                     PORTAL_LANG_ZH_TW);
    assert_int_equal(portal_lang_pick("zh-TW;q=0.5, en;q=0.8"),
                     PORTAL_LANG_EN);
    assert_int_equal(portal_lang_pick("zh-TW;q=0, en;q=0.1"),
                     PORTAL_LANG_EN);
    assert_int_equal(portal_lang_pick("zh-TW;q=0"), PORTAL_LANG_EN);
    /* ties: the first listed */
    assert_int_equal(portal_lang_pick("zh-TW;q=0.8, en;q=0.8"),
                     PORTAL_LANG_ZH_TW);
    assert_int_equal(portal_lang_pick("en;q=0.8,zh-TW;q=0.8"),
                     PORTAL_LANG_EN);
    /* Simplified is not Traditional */
    assert_int_equal(portal_lang_pick("zh-CN"), PORTAL_LANG_EN);
    assert_int_equal(portal_lang_pick("zh-Hans-CN"), PORTAL_LANG_EN);
    assert_int_equal(portal_lang_pick("zh-CN,zh-TW;q=0.5"),
                     PORTAL_LANG_ZH_TW);
    /* unsupported languages are skipped, not fatal */
    assert_int_equal(portal_lang_pick("fr-FR,fr;q=0.9,zh-TW;q=0.3"),
                     PORTAL_LANG_ZH_TW);
    assert_int_equal(portal_lang_pick("ja"), PORTAL_LANG_EN);
    assert_int_equal(portal_lang_pick("*"), PORTAL_LANG_EN);
    /* "zhx" is not "zh" */
    assert_int_equal(portal_lang_pick("zhx"), PORTAL_LANG_EN);
    assert_int_equal(portal_lang_pick("zh-TWX"), PORTAL_LANG_EN);
    /* malformed q: the range is ignored */
    assert_int_equal(portal_lang_pick("zh-TW;q=abc"), PORTAL_LANG_EN);
    assert_int_equal(portal_lang_pick("zh-TW;q=1.5,en;q=0.1"),
                     PORTAL_LANG_EN);
    assert_int_equal(portal_lang_pick("zh-TW ; q=0.9"), PORTAL_LANG_ZH_TW);
    assert_int_equal(portal_lang_pick(",,, ;;"), PORTAL_LANG_EN);
    assert_int_equal(portal_lang_pick("zh-TW;Q=1.000"), PORTAL_LANG_ZH_TW);

    assert_string_equal(portal_lang_tag(PORTAL_LANG_EN), "en");
    assert_string_equal(portal_lang_tag(PORTAL_LANG_ZH_TW), "zh-TW");
}


static void
test_strings_complete(void **state)
{
    unsigned     id, lang;
    const char  *s, *en;

    (void) state;

    for (id = 0; id < PORTAL_NSTRINGS; id++) {
        en = portal_str(PORTAL_LANG_EN, (portal_str_t) id);

        for (lang = 0; lang < PORTAL_NLANGS; lang++) {
            s = portal_str((portal_lang_t) lang, (portal_str_t) id);
            assert_non_null(s);
            if (s[0] == '\0') {
                print_error("string %u empty in language %u\n", id, lang);
            }
            assert_true(s[0] != '\0');

            /* a translation must really be one, not an English fallback */
            if (lang != PORTAL_LANG_EN) {
                assert_true(strcmp(s, en) != 0);
            }
        }
    }

    assert_string_equal(portal_str(PORTAL_LANG_ZH_TW, PORTAL_S_TITLE_LOGIN),
                        "登入");
    assert_string_equal(portal_str(PORTAL_LANG_ZH_TW, PORTAL_S_LABEL_USER),
                        "帳號");
    assert_string_equal(portal_str(PORTAL_LANG_ZH_TW,
                                   PORTAL_S_LABEL_PASSWORD), "密碼");
    assert_string_equal(portal_str(PORTAL_LANG_ZH_TW, PORTAL_S_LABEL_CODE),
                        "驗證碼");
    /* the lock message takes exactly one number in both */
    assert_non_null(strstr(portal_str(PORTAL_LANG_EN,
                                      PORTAL_S_ERR_LOCKED_MANY), "%u"));
    assert_non_null(strstr(portal_str(PORTAL_LANG_ZH_TW,
                                      PORTAL_S_ERR_LOCKED_MANY), "%u"));
    assert_string_equal(portal_str(PORTAL_NLANGS, PORTAL_S_TITLE_LOGIN),
                        "Sign in");
    assert_string_equal(portal_str(PORTAL_LANG_EN, PORTAL_NSTRINGS), "");
}


static void
test_html_escape(void **state)
{
    portal_buf_t  b;
    char          mem[128];

    (void) state;

    b.p = mem;
    b.cap = sizeof(mem);
    b.len = 0;
    b.overflow = 0;
    mem[0] = '\0';

    portal_html_escape(&b, "<script>alert('x\")&</script>");
    assert_int_equal(b.overflow, 0);
    assert_string_equal(mem, "&lt;script&gt;alert(&#39;x&quot;)&amp;"
                        "&lt;/script&gt;");

    b.len = 0;
    mem[0] = '\0';
    portal_html_escape(&b, "plain 帳號");
    assert_string_equal(mem, "plain 帳號");

    b.len = 0;
    mem[0] = '\0';
    portal_html_escape(&b, NULL);
    portal_html_escape(&b, "");
    assert_int_equal(b.len, 0);
}


static char *
test_render(const portal_page_t *pg)
{
    portal_buf_t  b;

    b.cap = 16384;
    b.p = malloc(b.cap);
    assert_non_null(b.p);
    portal_html_page(&b, pg);
    assert_int_equal(b.overflow, 0);
    assert_int_equal(strlen(b.p), b.len);

    return b.p;
}


static void
test_html_pages(void **state)
{
    portal_page_t  pg;
    char          *html;

    (void) state;

    memset(&pg, 0, sizeof(pg));
    pg.kind = PORTAL_PAGE_LOGIN;
    pg.lang = PORTAL_LANG_ZH_TW;
    pg.csrf = "c\"><x>";
    pg.next = "/app?a=1&b=\"><script>";
    pg.user = "a<b";
    pg.error = "bad & <worse>";

    html = test_render(&pg);
    assert_non_null(strstr(html, "<!DOCTYPE html>"));
    assert_non_null(strstr(html, "<html lang=\"zh-TW\">"));
    assert_non_null(strstr(html, "登入"));
    assert_non_null(strstr(html, "for=\"zt-user\""));
    assert_non_null(strstr(html, "id=\"zt-user\""));
    assert_non_null(strstr(html, "autocomplete=\"username\""));
    assert_non_null(strstr(html, "autocomplete=\"current-password\""));
    assert_non_null(strstr(html, "autocomplete=\"one-time-code\""));
    assert_non_null(strstr(html, "inputmode=\"numeric\""));
    assert_non_null(strstr(html, "role=\"alert\""));
    assert_non_null(strstr(html, "aria-describedby=\"zt-error\""));
    assert_non_null(strstr(html, "value=\"/app?a=1&amp;b=&quot;&gt;"
                                 "&lt;script&gt;\""));
    assert_non_null(strstr(html, "value=\"c&quot;&gt;&lt;x&gt;\""));
    assert_non_null(strstr(html, "value=\"a&lt;b\""));
    assert_non_null(strstr(html, "bad &amp; &lt;worse&gt;"));
    assert_null(strstr(html, "<script"));
    assert_null(strstr(html, "<x>"));
    assert_null(strstr(html, "http://"));
    assert_null(strstr(html, "https://"));
    assert_null(strstr(html, "src="));
    free(html);

    memset(&pg, 0, sizeof(pg));
    pg.kind = PORTAL_PAGE_STEPUP;
    pg.lang = PORTAL_LANG_EN;
    pg.csrf = "00";
    pg.next = "/";
    pg.user = "alice";
    html = test_render(&pg);
    assert_non_null(strstr(html, "<html lang=\"en\">"));
    assert_non_null(strstr(html, "action=\"/zt/step-up\""));
    assert_non_null(strstr(html, "<strong>alice</strong>"));
    assert_null(strstr(html, "name=\"password\""));
    assert_null(strstr(html, "role=\"alert\""));
    free(html);

    memset(&pg, 0, sizeof(pg));
    pg.kind = PORTAL_PAGE_LOGOUT;
    pg.lang = PORTAL_LANG_EN;
    pg.csrf = "00";
    html = test_render(&pg);
    assert_non_null(strstr(html, "action=\"/zt/logout\""));
    assert_null(strstr(html, "name=\"next\""));
    free(html);

    memset(&pg, 0, sizeof(pg));
    pg.kind = PORTAL_PAGE_MESSAGE;
    pg.lang = PORTAL_LANG_ZH_TW;
    pg.title = PORTAL_S_TITLE_SIGNED_OUT;
    pg.message = portal_str(PORTAL_LANG_ZH_TW, PORTAL_S_SIGNED_OUT);
    pg.link_login = 1;
    html = test_render(&pg);
    assert_non_null(strstr(html, "已登出"));
    assert_non_null(strstr(html, "role=\"status\""));
    assert_non_null(strstr(html, "href=\"/zt/login\""));
    free(html);
}


static void
test_html_overflow(void **state)
{
    portal_page_t  pg;
    portal_buf_t   b;
    char           mem[64];

    (void) state;

    memset(&pg, 0, sizeof(pg));
    pg.kind = PORTAL_PAGE_LOGIN;
    pg.csrf = "00";
    pg.next = "/";

    b.p = mem;
    b.cap = sizeof(mem);
    portal_html_page(&b, &pg);
    assert_int_equal(b.overflow, 1);
    assert_true(b.len < sizeof(mem));
    assert_int_equal(strlen(mem), b.len);
}


/* ---- posture reports ------------------------------------------------ */


static void
test_posture_good(void **state)
{
    static const char  json[] =
        "{\"os\":\"debian\",\"os_version\":\"12.8\","
        "\"patch_time\":1732400000,\"disk_encrypted\":true,"
        "\"firewall\":true,\"screen_lock\":false,"
        "\"endpoint_protection\":null,\"reported_at\":1732450000}";
    store_posture_t    p;
    char               err[256];

    (void) state;

    memset(&p, 0xa5, sizeof(p));
    assert_int_equal(portal_posture_parse(json, strlen(json), &p, err,
                                          sizeof(err)), 0);
    assert_string_equal(p.os, "debian");
    assert_string_equal(p.os_version, "12.8");
    assert_true(p.patch_time == 1732400000);
    assert_true(p.reported_at == 1732450000);
    assert_int_equal(p.disk_encrypted, STORE_FLAG_TRUE);
    assert_int_equal(p.firewall, STORE_FLAG_TRUE);
    assert_int_equal(p.screen_lock, STORE_FLAG_FALSE);
    assert_int_equal(p.endpoint_protection, STORE_FLAG_UNREPORTED);
    assert_string_equal(p.source, "agent");
    /* the caller names the device and the receive time, never the body */
    assert_true(p.received_at == 0);
    assert_int_equal(p.fp[0], 0);
    assert_int_equal(p.fp[STORE_FP_LEN - 1], 0);
}


static void
test_posture_optional(void **state)
{
    static const char  json[] = " { \"reported_at\" : 1 } ";
    static const char  os64[] =
        "{\"os\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
        "aaaaaaaaa\",\"patch_time\":null,\"reported_at\":5}";
    store_posture_t    p;
    char               err[256];

    (void) state;

    assert_int_equal(portal_posture_parse(json, strlen(json), &p, err,
                                          sizeof(err)), 0);
    assert_string_equal(p.os, "");
    assert_true(p.patch_time == 0);
    assert_int_equal(p.firewall, STORE_FLAG_UNREPORTED);

    assert_int_equal(portal_posture_parse(os64, strlen(os64), &p, err,
                                          sizeof(err)), 0);
    assert_int_equal(strlen(p.os), 64);
}


typedef struct {
    const char  *json;
    const char  *says;
} test_posture_bad_t;


static void
test_posture_refused(void **state)
{
    static const test_posture_bad_t  bad[] = {
        { "", "malformed JSON" },
        { "{", "malformed JSON" },
        { "[]", "object" },
        { "\"x\"", "malformed JSON" },
        { "{}", "\"reported_at\" is required" },
        { "{\"reported_at\":0}", "\"reported_at\" is out of range" },
        { "{\"reported_at\":253402300800}", "out of range" },
        { "{\"reported_at\":\"1\"}", "\"reported_at\" must be an integer" },
        { "{\"reported_at\":1.5}", "\"reported_at\" must be an integer" },
        { "{\"reported_at\":1,\"device\":\"ab\"}", "unknown field \"device\"" },
        { "{\"reported_at\":1,\"fp\":\"ab\"}", "unknown field \"fp\"" },
        { "{\"reported_at\":1,\"Os\":\"x\"}", "unknown field \"Os\"" },
        { "{\"reported_at\":1,\"a\\\"b\":1}", "unknown field \"a?b\"" },
        { "{\"reported_at\":1,\"os\":1}", "\"os\" must be a string" },
        { "{\"reported_at\":1,\"os\":null}", "\"os\" must be a string" },
        { "{\"reported_at\":1,\"os\":\"a\\nb\"}", "\"os\" must be printable" },
        { "{\"reported_at\":1,\"os\":\"\\u00e9\"}", "printable ASCII" },
        { "{\"reported_at\":1,\"os\":\"a\\u0000b\"}", "malformed JSON" },
        { "{\"reported_at\":1,\"firewall\":\"yes\"}",
          "\"firewall\" must be true, false or null" },
        { "{\"reported_at\":1,\"firewall\":1}", "\"firewall\"" },
        { "{\"reported_at\":1,\"patch_time\":-1}",
          "\"patch_time\" is out of range" },
        { "{\"reported_at\":1,\"os\":\"a\",\"os\":\"b\"}", "duplicate" },
        { "{\"reported_at\":1} x", "malformed JSON" },
    };
    store_posture_t  p;
    char             err[256];
    size_t           i;

    (void) state;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memset(&p, 0xa5, sizeof(p));
        err[0] = '\0';

        if (portal_posture_parse(bad[i].json, strlen(bad[i].json), &p, err,
                                 sizeof(err)) != -1
            || strstr(err, bad[i].says) == NULL)
        {
            print_error("case %zu: %s -> \"%s\"\n", i, bad[i].json, err);
            fail();
        }

        /* nothing half-filled is left behind */
        assert_string_equal(p.os, "");
        assert_string_equal(p.source, "");
    }

    /* 65 bytes of os */
    {
        static const char  os65[] =
            "{\"os\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
            "aaaaaaaaaaaaa\",\"reported_at\":5}";

        assert_int_equal(portal_posture_parse(os65, strlen(os65), &p, err,
                                              sizeof(err)), -1);
        assert_non_null(strstr(err, "\"os\" is longer than 64"));
    }
}


static void
test_posture_size(void **state)
{
    char             *json;
    store_posture_t   p;
    char              err[256];
    size_t            len;

    (void) state;

    len = PORTAL_POSTURE_MAX + 1;
    json = malloc(len + 1);
    assert_non_null(json);
    memset(json, ' ', len);
    memcpy(json, "{\"reported_at\":1}", 17);
    json[len] = '\0';

    assert_int_equal(portal_posture_parse(json, len, &p, err, sizeof(err)),
                     -1);
    assert_non_null(strstr(err, "larger than"));

    /* exactly at the limit is fine */
    assert_int_equal(portal_posture_parse(json, len - 1, &p, err,
                                          sizeof(err)), 0);

    /* the length is what counts, not a NUL */
    assert_int_equal(portal_posture_parse("{\"reported_at\":1}xyz", 17, &p,
                                          err, sizeof(err)), 0);

    free(json);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_next_table),
        cmocka_unit_test(test_next_nul_and_length),
        cmocka_unit_test(test_next_no_hosts),
        cmocka_unit_test(test_form_basic),
        cmocka_unit_test(test_form_decoding),
        cmocka_unit_test(test_form_duplicates),
        cmocka_unit_test(test_form_missing_and_empty),
        cmocka_unit_test(test_form_overlong),
        cmocka_unit_test(test_form_bad_escapes),
        cmocka_unit_test(test_cookie_basic),
        cmocka_unit_test(test_cookie_duplicates),
        cmocka_unit_test(test_cookie_edge),
        cmocka_unit_test(test_url_encode),
        cmocka_unit_test(test_hex),
        cmocka_unit_test(test_ct_equal),
        cmocka_unit_test(test_rate_window),
        cmocka_unit_test(test_rate_sources),
        cmocka_unit_test(test_rate_full_table),
        cmocka_unit_test(test_lang_pick),
        cmocka_unit_test(test_strings_complete),
        cmocka_unit_test(test_html_escape),
        cmocka_unit_test(test_html_pages),
        cmocka_unit_test(test_html_overflow),
        cmocka_unit_test(test_posture_good),
        cmocka_unit_test(test_posture_optional),
        cmocka_unit_test(test_posture_refused),
        cmocka_unit_test(test_posture_size),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
