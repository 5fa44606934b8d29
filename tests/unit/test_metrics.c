/*
 * Unit tests for trustd's metrics (trustd/metrics.c): decision counting
 * by outcome, latency bucket and rule (the label cap, a policy change),
 * the sign-in counters, and the Prometheus text the renderer writes.
 */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "zt_wire.h"
#include "trustd/metrics.h"


static void decision(pol_decision_t *pd, const char *app, const char *rule);
static char *render(const metrics_decisions_t *md);
static void test_outcomes_and_histogram(void **state);
static void test_rules_by_name_with_a_cap(void **state);
static void test_policy_change_reuses_unused_labels(void **state);
static void test_text_format(void **state);
static void test_portal_counters(void **state);


static void
decision(pol_decision_t *pd, const char *app, const char *rule)
{
    memset(pd, 0, sizeof(*pd));
    pd->outcome = POL_ALLOW;
    pd->app.data = app;
    pd->app.len = strlen(app);
    pd->rule.data = rule;
    pd->rule.len = strlen(rule);
}


static char *
render(const metrics_decisions_t *md)
{
    metrics_snapshot_t  s;
    size_t              len;
    char               *text;

    memset(&s, 0, sizeof(s));
    s.time = 1795568523.5;
    s.start_time = 1795568000.25;
    s.decisions = md;
    s.policy_version = "ab\"c";
    s.store_file_bytes = -1;

    text = metrics_render(&s, &len);
    assert_non_null(text);
    assert_int_equal(len, strlen(text));

    return text;
}


static void
test_outcomes_and_histogram(void **state)
{
    metrics_decisions_t  *md;
    char                 *text;

    (void) state;

    md = calloc(1, sizeof(*md));
    assert_non_null(md);

    metrics_decision(md, WIRE_ALLOW, 800, NULL);          /* <= 1 us */
    metrics_decision(md, WIRE_ALLOW, 1000, NULL);         /* <= 1 us */
    metrics_decision(md, WIRE_DENY, 30000, NULL);         /* <= 50 us */
    metrics_decision(md, WIRE_STEP_UP, 2000000000, NULL); /* +Inf */

    assert_int_equal(md->outcome[WIRE_ALLOW], 2);
    assert_int_equal(md->outcome[WIRE_DENY], 1);
    assert_int_equal(md->outcome[WIRE_STEP_UP], 1);
    assert_int_equal(md->builtin, 4);

    text = render(md);

    assert_non_null(strstr(text,
        "ztgate_decisions_total{outcome=\"allow\"} 2\n"));
    assert_non_null(strstr(text,
        "ztgate_decisions_total{outcome=\"login\"} 0\n"));
    assert_non_null(strstr(text,
        "ztgate_decision_duration_seconds_bucket{le=\"1e-06\"} 2\n"));
    assert_non_null(strstr(text,
        "ztgate_decision_duration_seconds_bucket{le=\"2.5e-05\"} 2\n"));
    assert_non_null(strstr(text,
        "ztgate_decision_duration_seconds_bucket{le=\"5e-05\"} 3\n"));
    assert_non_null(strstr(text,
        "ztgate_decision_duration_seconds_bucket{le=\"0.025\"} 3\n"));
    assert_non_null(strstr(text,
        "ztgate_decision_duration_seconds_bucket{le=\"+Inf\"} 4\n"));
    assert_non_null(strstr(text,
        "ztgate_decision_duration_seconds_count 4\n"));
    assert_non_null(strstr(text,
        "ztgate_decision_duration_seconds_sum 2.000031800\n"));

    free(text);
    free(md);
}


static void
test_rules_by_name_with_a_cap(void **state)
{
    metrics_decisions_t  *md;
    pol_decision_t        pd;
    char                  names[METRICS_RULES + 2][16], *text;
    char                  copy[] = "open";
    unsigned              i;

    (void) state;

    md = calloc(1, sizeof(*md));
    assert_non_null(md);

    for (i = 0; i < METRICS_RULES + 2; i++) {
        snprintf(names[i], sizeof(names[i]), "r%u", i);
        decision(&pd, "app", names[i]);
        metrics_decision(md, WIRE_ALLOW, 100, &pd);
    }

    /* the same rule again, by address and by name */
    decision(&pd, "app", names[0]);
    metrics_decision(md, WIRE_ALLOW, 100, &pd);
    decision(&pd, "gateway", copy);
    metrics_decision(md, WIRE_DENY, 100, &pd);

    /* the default deny */
    decision(&pd, "gateway", "");
    metrics_decision(md, WIRE_DENY, 100, &pd);

    assert_int_equal(md->nrules, METRICS_RULES);
    assert_int_equal(md->rules[0].decisions, 2);
    assert_int_equal(md->other, 3);     /* r64, r65, gateway/open */
    assert_int_equal(md->default_deny, 1);

    text = render(md);

    assert_non_null(strstr(text, "ztgate_rule_decisions_total{app=\"app\","
                           "rule=\"r0\"} 2\n"));
    assert_non_null(strstr(text, "ztgate_rule_decisions_total{app=\"\","
                           "rule=\"other\"} 3\n"));
    assert_non_null(strstr(text, "ztgate_rule_decisions_total{app=\"\","
                           "rule=\"default\"} 1\n"));
    assert_null(strstr(text, "rule=\"r64\""));

    free(text);
    free(md);
}


static void
test_policy_change_reuses_unused_labels(void **state)
{
    metrics_decisions_t  *md;
    pol_decision_t        pd;
    char                  names[METRICS_RULES][16];
    char                  again[] = "r1", fresh[] = "new \"one\"\\";
    char                 *text;
    unsigned              i;

    (void) state;

    md = calloc(1, sizeof(*md));
    assert_non_null(md);

    for (i = 0; i < METRICS_RULES; i++) {
        snprintf(names[i], sizeof(names[i]), "r%u", i);
        decision(&pd, "app", names[i]);
        metrics_decision(md, WIRE_ALLOW, 100, &pd);
    }

    metrics_policy_changed(md);

    /* r1 of the new policy (another address) keeps its count */
    decision(&pd, "app", again);
    metrics_decision(md, WIRE_ALLOW, 100, &pd);
    assert_int_equal(md->rules[1].decisions, 2);

    /* a new rule takes the place of one the new policy has not used */
    decision(&pd, "app", fresh);
    metrics_decision(md, WIRE_ALLOW, 100, &pd);
    assert_int_equal(md->other, 0);
    assert_string_equal(md->rules[0].rule, fresh);
    assert_int_equal(md->rules[0].decisions, 1);

    text = render(md);
    assert_non_null(strstr(text, "rule=\"new \\\"one\\\"\\\\\"} 1\n"));
    free(text);
    free(md);
}


static void
test_text_format(void **state)
{
    metrics_snapshot_t   s;
    metrics_decisions_t *md;
    char                *text, *line, *save, *name;
    char                 typed[64][96];
    size_t               len, ntyped, i;
    int                  found;

    (void) state;

    md = calloc(1, sizeof(*md));
    assert_non_null(md);

    memset(&s, 0, sizeof(s));
    s.time = 1795568523.5;
    s.start_time = 1795568000.25;
    s.decisions = md;
    s.policy_version = "ab\"c";
    s.store_file_bytes = 4096;
    s.store_map_bytes = 67108864;
    s.posture_known = 1;
    s.posture[METRICS_POSTURE_STALE] = 2;
    s.has_journal = 1;
    s.journal.written = 7;
    s.journal.failing = 1;
    s.connections = 3;

    text = metrics_render(&s, &len);
    assert_non_null(text);

    assert_non_null(strstr(text,
        "ztgate_policy_info{version=\"ab\\\"c\"} 1\n"));
    assert_non_null(strstr(text, "ztgate_store_file_bytes 4096\n"));
    assert_non_null(strstr(text, "ztgate_store_map_bytes 67108864\n"));
    assert_non_null(strstr(text, "ztgate_devices{posture=\"stale\"} 2\n"));
    assert_non_null(strstr(text, "ztgate_journal_records_written_total 7\n"));
    assert_non_null(strstr(text, "ztgate_journal_failing 1\n"));
    assert_non_null(strstr(text, "ztgate_nginx_connections 3\n"));
    assert_non_null(strstr(text,
        "ztgate_process_start_time_seconds 1795568000.250\n"));
    assert_non_null(strstr(text,
        "ztgate_metrics_snapshot_timestamp_seconds 1795568523.500\n"));
    assert_int_equal(text[len - 1], '\n');

    /* every sample's family has a TYPE line before it */
    ntyped = 0;
    for (line = strtok_r(text, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save))
    {
        if (strncmp(line, "# TYPE ", 7) == 0) {
            assert_true(ntyped < 64);
            name = line + 7;
            snprintf(typed[ntyped++], sizeof(typed[0]), "%.*s",
                     (int) strcspn(name, " "), name);
            continue;
        }

        if (line[0] == '#') {
            continue;
        }

        found = 0;
        for (i = 0; i < ntyped; i++) {
            len = strlen(typed[i]);
            if (strncmp(line, typed[i], len) == 0
                && (line[len] == ' ' || line[len] == '{'
                    || strncmp(line + len, "_bucket{", 8) == 0
                    || strncmp(line + len, "_sum ", 5) == 0
                    || strncmp(line + len, "_count ", 7) == 0))
            {
                found = 1;
            }
        }
        assert_true(found);
    }

    free(text);
    free(md);
}


static void
test_portal_counters(void **state)
{
    uint64_t  n[METRICS_PORTAL_EVENTS];

    (void) state;

    metrics_portal_count(METRICS_LOGIN_FAILURE);
    metrics_portal_count(METRICS_LOGIN_FAILURE);
    metrics_portal_count(METRICS_LOCKOUT);
    metrics_portal_read(n);

    assert_int_equal(n[METRICS_LOGIN_SUCCESS], 0);
    assert_int_equal(n[METRICS_LOGIN_FAILURE], 2);
    assert_int_equal(n[METRICS_LOCKOUT], 1);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_outcomes_and_histogram),
        cmocka_unit_test(test_rules_by_name_with_a_cap),
        cmocka_unit_test(test_policy_change_reuses_unused_labels),
        cmocka_unit_test(test_text_format),
        cmocka_unit_test(test_portal_counters),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
