/*
 * Unit tests for blocklists (trustd/blocklist.c): CIDR parsing, feed
 * files with comments and malformed lines, lookups, expiry.
 */

#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "trustd/blocklist.h"


static void test_parse(void **state);
static void test_file(void **state);
static void test_expiry(void **state);
static int test_listed(const blocklist_t *bl, const char *addr,
    const char **feed);


static int
test_listed(const blocklist_t *bl, const char *addr, const char **feed)
{
    uint8_t  a[16];

    if (inet_pton(AF_INET, addr, a) == 1) {
        return blocklist_lookup(bl, 4, a, 1000, feed);
    }

    assert_int_equal(inet_pton(AF_INET6, addr, a), 1);

    return blocklist_lookup(bl, 6, a, 1000, feed);
}


static void
test_parse(void **state)
{
    blocklist_err_t  err;
    uint8_t          lo[16], hi[16];

    (void) state;

    assert_int_equal(blocklist_parse_cidr("10.0.0.0/8", lo, hi, &err), 0);
    assert_int_equal(lo[12], 10);
    assert_int_equal(hi[13], 255);
    assert_int_equal(blocklist_parse_cidr("192.0.2.1", lo, hi, &err), 0);
    assert_memory_equal(lo, hi, 16);
    assert_int_equal(blocklist_parse_cidr("2001:db8::/32", lo, hi, &err), 0);
    assert_int_equal(blocklist_parse_cidr("::1", lo, hi, &err), 0);

    assert_int_equal(blocklist_parse_cidr("10.0.0.1/8", lo, hi, &err), -1);
    assert_non_null(strstr(err.msg, "host bits"));
    assert_int_equal(blocklist_parse_cidr("10.0.0.0/33", lo, hi, &err), -1);
    assert_int_equal(blocklist_parse_cidr("10.0.0/8", lo, hi, &err), -1);
    assert_int_equal(blocklist_parse_cidr("example.com", lo, hi, &err), -1);
    assert_int_equal(blocklist_parse_cidr("10.0.0.0/", lo, hi, &err), -1);
    assert_int_equal(blocklist_parse_cidr("10.0.0.0/-1", lo, hi, &err), -1);

    assert_true(blocklist_feed_name_ok("tor-exits"));
    assert_false(blocklist_feed_name_ok("Tor Exits"));
    assert_false(blocklist_feed_name_ok(""));
}


static void
test_file(void **state)
{
    blocklist_t      *bl;
    blocklist_err_t   err;
    const char       *feed;
    char              path[] = "/tmp/zt-blocklist-XXXXXX";
    unsigned          bad;
    FILE             *f;
    int               fd;

    (void) state;

    fd = mkstemp(path);
    assert_true(fd >= 0);
    f = fdopen(fd, "w");
    fputs("# a feed\n"
          "192.0.2.0/24   # documentation range\n"
          "\n"
          "not-an-address\n"
          "  198.51.100.7\n"
          "10.0.0.1/8\n"
          "2001:db8::/32\n", f);
    fclose(f);

    bl = blocklist_new();
    assert_non_null(bl);
    assert_int_equal(blocklist_load(bl, "test", path, 0, &bad, &err), 0);
    assert_int_equal(bad, 2);
    assert_int_equal(blocklist_add(bl, "staff", "203.0.113.0/24", 0, &err),
                     0);
    blocklist_seal(bl);
    assert_int_equal(blocklist_count(bl), 4);

    assert_true(test_listed(bl, "192.0.2.200", &feed));
    assert_string_equal(feed, "test");
    assert_true(test_listed(bl, "198.51.100.7", NULL));
    assert_false(test_listed(bl, "198.51.100.8", NULL));
    assert_true(test_listed(bl, "203.0.113.9", &feed));
    assert_string_equal(feed, "staff");
    assert_true(test_listed(bl, "2001:db8:1::5", NULL));
    assert_false(test_listed(bl, "2001:db9::1", NULL));
    assert_false(test_listed(bl, "10.1.2.3", NULL));
    assert_false(blocklist_lookup(NULL, 4, (const uint8_t *) "\1\2\3\4",
                                  0, NULL));

    blocklist_free(bl);
    unlink(path);

    bl = blocklist_new();
    assert_int_equal(blocklist_load(bl, "x", "/nonexistent/feed", 0, &bad,
                                    &err), -1);
    blocklist_free(bl);
}


static void
test_expiry(void **state)
{
    blocklist_t      *bl;
    blocklist_err_t   err;
    int64_t           t;

    (void) state;

    bl = blocklist_new();
    assert_int_equal(blocklist_add(bl, "old", "192.0.2.0/24", 500, &err), 0);
    assert_int_equal(blocklist_add(bl, "wide", "192.0.0.0/8", 2000, &err),
                     0);
    blocklist_seal(bl);

    /* the expired /24 does not hide the overlapping /8 */
    assert_true(test_listed(bl, "192.0.2.1", NULL));
    blocklist_free(bl);

    assert_int_equal(blocklist_parse_date("2027-01-31", &t), 0);
    assert_true(t == 1801439999);
    assert_int_equal(blocklist_parse_date("2027-1-31x", &t), -1);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_file),
        cmocka_unit_test(test_expiry),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
