/*
 * Unit tests for the trust score (trustd/score.c): the formula, clamping,
 * and the direction of every signal.
 */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "trustd/score.h"


static void test_base_alone(void **state);
static void test_formula(void **state);
static void test_clamping(void **state);
static void test_directions(void **state);
static void test_names(void **state);


static void
test_base_alone(void **state)
{
    score_weights_t  w;
    score_signals_t  s;
    score_result_t   r;

    (void) state;

    score_weights_default(&w);
    memset(&s, 0, sizeof(s));

    assert_int_equal(score_compute(&w, &s, &r), SCORE_DEFAULT_BASE);
}


static void
test_formula(void **state)
{
    score_weights_t  w;
    score_signals_t  s;
    score_result_t   r;

    (void) state;

    score_weights_default(&w);
    memset(&s, 0, sizeof(s));

    /* 20 + 15 x 1 + 15 x 0.5 - 15 x 1 = 27.5 -> 28 */
    s.value[SCORE_FACTORS] = 1.0;
    s.value[SCORE_POSTURE_FRESH] = 0.5;
    s.value[SCORE_NEW_ADDRESS] = 1.0;

    assert_int_equal(score_compute(&w, &s, &r), 28);
    assert_true(r.contribution[SCORE_FACTORS] == 15.0);
    assert_true(r.contribution[SCORE_POSTURE_FRESH] == 7.5);
    assert_true(r.contribution[SCORE_NEW_ADDRESS] == -15.0);

    /* a weight of 0 turns a signal off */
    w.weight[SCORE_NEW_ADDRESS] = 0;
    assert_int_equal(score_compute(&w, &s, &r), 43);
}


static void
test_clamping(void **state)
{
    score_weights_t  w;
    score_signals_t  s;
    score_result_t   r;
    int              i;

    (void) state;

    score_weights_default(&w);

    for (i = 0; i < SCORE_NSIGNALS; i++) {
        s.value[i] = score_signal_direction((score_signal_t) i) > 0
                     ? 5.0 : -3.0;
    }

    /* out-of-range values are clamped to [0, 1]: every raiser at 1 */
    assert_int_equal(score_compute(&w, &s, &r), 100);
    assert_true(r.value[SCORE_FACTORS] == 1.0);
    assert_true(r.value[SCORE_DENIALS] == 0.0);

    for (i = 0; i < SCORE_NSIGNALS; i++) {
        s.value[i] = score_signal_direction((score_signal_t) i) < 0
                     ? 1.0 : 0.0;
    }

    assert_int_equal(score_compute(&w, &s, &r), 0);
    assert_true(r.raw < 0.0);
}


static void
test_directions(void **state)
{
    score_weights_t  w;
    score_signals_t  s;
    score_result_t   r;
    int              i, base, moved;

    (void) state;

    score_weights_default(&w);
    w.base = 50;

    for (i = 0; i < SCORE_NSIGNALS; i++) {
        memset(&s, 0, sizeof(s));
        base = score_compute(&w, &s, &r);

        s.value[i] = 1.0;
        moved = score_compute(&w, &s, &r);

        if (score_signal_direction((score_signal_t) i) > 0) {
            assert_true(moved > base);
        } else {
            assert_true(moved < base);
        }
    }
}


static void
test_names(void **state)
{
    score_signal_t  sig;
    int             i;

    (void) state;

    for (i = 0; i < SCORE_NSIGNALS; i++) {
        assert_int_equal(score_signal_parse(
                             score_signal_name((score_signal_t) i), &sig), 0);
        assert_int_equal(sig, i);
    }

    assert_int_equal(score_signal_parse("nope", &sig), -1);
    assert_string_equal(score_signal_name(SCORE_NSIGNALS), "invalid");
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_base_alone),
        cmocka_unit_test(test_formula),
        cmocka_unit_test(test_clamping),
        cmocka_unit_test(test_directions),
        cmocka_unit_test(test_names),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
