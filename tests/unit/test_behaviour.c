/*
 * Unit tests for the behaviour state (trustd/behaviour.c): the denial
 * window, the request-rate signal, per-user history (new addresses,
 * bounded size, expiry, usual hours) and the batched flush to the store.
 */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "trustd/behaviour.h"


#define T0  ((int64_t) 1800000000)     /* a multiple of 600 and of 10 */

static void test_denials(void **state);
static void test_rate(void **state);
static void test_history(void **state);
static void test_unusual_time(void **state);
static void test_flush(void **state);
static void test_addr(uint8_t a[16], unsigned last);


static void
test_addr(uint8_t a[16], unsigned last)
{
    memset(a, 0, 16);
    a[10] = 0xff;
    a[11] = 0xff;
    a[12] = 192;
    a[13] = 0;
    a[14] = 2;
    a[15] = (uint8_t) last;
}


static void
test_denials(void **state)
{
    behaviour_t  *b;
    uint8_t       a[16];
    int           i;

    (void) state;

    b = behaviour_create(600 * 1000);
    assert_non_null(b);
    test_addr(a, 1);

    for (i = 0; i < 4; i++) {
        behaviour_denied(b, "sid1", NULL, a, T0 + 10);
    }

    assert_true(behaviour_denials(b, "sid1", NULL, NULL, T0 + 20) == 4.0);
    assert_true(behaviour_denials(b, NULL, NULL, a, T0 + 20) == 4.0);
    assert_true(behaviour_denials(b, "sid2", "ab", NULL, T0 + 20) == 0.0);

    /* half-way through the next window, half of the previous one counts */
    assert_true(behaviour_denials(b, "sid1", NULL, NULL, T0 + 900) == 2.0);

    /* two windows later, nothing */
    assert_true(behaviour_denials(b, "sid1", NULL, NULL, T0 + 1300) == 0.0);

    behaviour_free(b);
}


static void
test_rate(void **state)
{
    behaviour_t  *b;
    double        v;
    int           i, t;

    (void) state;

    b = behaviour_create(0);

    /* a steady 5 requests per bucket is normal */
    for (t = 0; t < 20; t++) {
        for (i = 0; i < 5; i++) {
            v = behaviour_rate(b, "s", T0 + t * BEHAVIOUR_RATE_BUCKET);
            assert_true(v == 0.0);
        }
    }

    /* a burst far above its own rate and the floor is not */
    for (i = 0; i < 60; i++) {
        v = behaviour_rate(b, "s", T0 + 20 * BEHAVIOUR_RATE_BUCKET);
    }
    assert_true(v == 1.0);

    /* another session is unaffected */
    assert_true(behaviour_rate(b, "other", T0) == 0.0);

    behaviour_free(b);
}


static void
test_history(void **state)
{
    behaviour_t            *b;
    const store_history_t  *h;
    uint8_t                 a[16];
    unsigned                i;

    (void) state;

    b = behaviour_create(0);
    test_addr(a, 1);

    assert_null(behaviour_history(b, "alice", NULL));
    assert_true(behaviour_new_address(NULL, a, T0));

    behaviour_seen(b, "alice", NULL, a, T0);
    h = behaviour_history(b, "alice", NULL);
    assert_non_null(h);
    assert_false(behaviour_new_address(h, a, T0 + 1));

    /* bounded: the oldest address makes room */
    for (i = 2; i < 2 + STORE_HISTORY_ADDRS; i++) {
        test_addr(a, i);
        behaviour_seen(b, "alice", h, a, T0 + i);
    }
    h = behaviour_history(b, "alice", NULL);
    assert_int_equal(h->naddrs, STORE_HISTORY_ADDRS);
    test_addr(a, 1);
    assert_true(behaviour_new_address(h, a, T0 + 100));
    test_addr(a, 5);
    assert_false(behaviour_new_address(h, a, T0 + 100));

    /* expiry */
    assert_true(behaviour_new_address(h, a, T0 + BEHAVIOUR_HISTORY_TTL
                                            + 100));

    behaviour_free(b);
}


static void
test_unusual_time(void **state)
{
    store_history_t  h;
    int64_t          day_start;

    (void) state;

    memset(&h, 0, sizeof(h));
    day_start = T0 - T0 % 86400;

    /* too few observations: nothing is unusual */
    h.hours[9] = 10;
    h.days[0] = 10;
    assert_true(behaviour_unusual_time(&h, day_start + 3 * 3600) == 0.0);

    h.hours[9] = 100;
    h.days[(day_start / 86400 + 4) % 7] = 100;     /* this weekday */
    assert_true(behaviour_unusual_time(&h, day_start + 9 * 3600) == 0.0);
    assert_true(behaviour_unusual_time(&h, day_start + 3 * 3600) == 0.5);
    assert_true(behaviour_unusual_time(&h, day_start + 86400 + 3 * 3600)
                == 1.0);
}


static void
test_flush(void **state)
{
    behaviour_t       *b;
    store_t           *st;
    store_view_t      *v;
    store_user_t       u;
    store_history_t    out;
    store_err_t        err;
    uint8_t            a[16];
    char               dir[] = "/tmp/zt-behaviour-XXXXXX";
    char               cmd[64];

    (void) state;

    assert_non_null(mkdtemp(dir));
    assert_int_equal(store_open(&st, dir, 0, 0, &err), 0);

    memset(&u, 0, sizeof(u));
    snprintf(u.name, sizeof(u.name), "alice");
    assert_int_equal(store_user_create(st, &u, "test", &err), 0);

    b = behaviour_create(0);
    test_addr(a, 7);
    behaviour_seen(b, "alice", NULL, a, T0);
    behaviour_seen(b, "ghost", NULL, a, T0);      /* no such user: skipped */
    assert_int_equal(behaviour_flush(b, st), 0);
    assert_null(behaviour_history(b, "alice", NULL));

    v = NULL;
    assert_int_equal(store_view_begin(st, &v, &err), 0);
    assert_int_equal(store_history_get(v, "alice", &out, &err), 0);
    assert_int_equal(out.naddrs, 1);
    assert_memory_equal(out.addrs[0].addr, a, 16);
    assert_true(out.addrs[0].last_seen == T0);
    assert_int_equal(store_history_get(v, "ghost", &out, &err),
                     STORE_NOTFOUND);
    store_view_end(v);
    store_view_free(v);

    behaviour_free(b);
    store_close(st);

    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_denials),
        cmocka_unit_test(test_rate),
        cmocka_unit_test(test_history),
        cmocka_unit_test(test_unusual_time),
        cmocka_unit_test(test_flush),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
