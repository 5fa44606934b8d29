/*
 * Unit tests for the audit journal: the hash chain in trustd/store.c, its
 * canonical form (trustd/journal_fmt.c) and the writer (trustd/journal.c),
 * against real LMDB files in a temporary directory.  Built with
 * STORE_TESTING for the raw-write hooks that play the attacker.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ftw.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "tests/unit/tmpdir.h"

#include "trustd/store.h"
#include "trustd/journal.h"
#include "trustd/journal_fmt.h"
#include "trustd/score.h"
#include "zt_wire.h"


typedef struct {
    char        dir[256];
    char        path[300];
    store_t    *st;
} test_env_t;

typedef struct {
    unsigned        n;
    store_audit_t   recs[32];
} test_recs_t;


static int test_setup(void **state);
static int test_teardown(void **state);
static void test_decision(store_audit_t *rec, unsigned i, int64_t ms);
static void test_actions(store_t *st, unsigned n);
static int test_collect(const store_audit_t *rec, void *arg);
static void test_wait_written(journal_t *j, uint64_t n);


static int
test_setup(void **state)
{
    test_env_t  *env;

    env = calloc(1, sizeof(*env));
    if (env == NULL) {
        return -1;
    }

    if (test_tmpdir_make(env->dir, sizeof(env->dir), "ztjournal") != 0) {
        free(env);
        return -1;
    }

    snprintf(env->path, sizeof(env->path), "%s/store", env->dir);

    *state = env;

    return 0;
}


static int
test_teardown(void **state)
{
    test_env_t  *env = *state;

    store_close(env->st);
    test_tmpdir_remove(env->dir);
    free(env);

    return 0;
}



static void
test_decision(store_audit_t *rec, unsigned i, int64_t ms)
{
    store_decision_t  *d = &rec->d;
    unsigned           k;

    memset(rec, 0, sizeof(*rec));
    rec->kind = STORE_AUDIT_DECISION;
    rec->time_ms = ms;
    d->outcome = i % 2 ? WIRE_DENY : WIRE_ALLOW;
    d->status = i % 2 ? 403 : 200;
    d->ttl_ms = i % 2 ? 0 : 2000;
    d->count = 1;
    d->score = (int16_t) (50 + i % 40);
    d->nsignals = SCORE_NSIGNALS;
    for (k = 0; k < SCORE_NSIGNALS; k++) {
        d->value[k] = (uint8_t) (k * 7 % 101);
        d->points[k] = (int16_t) ((int) k * 13 - 60);
    }
    snprintf(d->method, sizeof(d->method), "GET");
    snprintf(d->host, sizeof(d->host), "hr.example.gov.tw");
    snprintf(d->path, sizeof(d->path), "/records/%u", i);
    snprintf(d->source, sizeof(d->source), "192.0.2.%u", i % 250);
    snprintf(d->user, sizeof(d->user), "alice");
    snprintf(d->session, sizeof(d->session), "AbCdEfGhIjKl");
    snprintf(d->device, sizeof(d->device), STORE_DEVICE_URN "x-%u", i);
    snprintf(d->device_fp, sizeof(d->device_fp), "%064x", i);
    snprintf(d->rule, sizeof(d->rule), "hr-read");
    snprintf(d->where, sizeof(d->where), "hr.policy:12");
    snprintf(d->reason, sizeof(d->reason), "rule \"hr-read\" \xe5\x8f\xb0");
    snprintf(d->policy, sizeof(d->policy), "hr.policy@3f2a");
}


/* n staff actions, each in its own write transaction with its record. */
static void
test_actions(store_t *st, unsigned n)
{
    static unsigned  next;
    store_device_t   dev;
    store_err_t      err;
    unsigned         i, k;

    for (i = next; i < next + n; i++) {
        memset(&dev, 0, sizeof(dev));
        for (k = 0; k < STORE_FP_LEN; k++) {
            dev.fp[k] = (uint8_t) (i * 31 + k * 7 + 1);
        }
        snprintf(dev.id, sizeof(dev.id),
                 STORE_DEVICE_URN "%08x-0000-4000-8000-000000000000", i);
        snprintf(dev.owner, sizeof(dev.owner), "user%u", i);
        snprintf(dev.name, sizeof(dev.name), "laptop");
        snprintf(dev.platform, sizeof(dev.platform), "linux");
        dev.status = STORE_DEVICE_ACTIVE;
        if (store_device_enroll(st, &dev, "staff1", &err) != 0) {
            fail_msg("enroll: %s", err.msg);
        }
    }

    next += n;
}


static int
test_collect(const store_audit_t *rec, void *arg)
{
    test_recs_t  *r = arg;

    if (r->n < 32) {
        r->recs[r->n++] = *rec;
    }

    return 0;
}


/* Actions and decisions share one chain; it verifies, and the canonical
 * line is what the hash covers. */
static void
test_chain(void **state)
{
    test_env_t            *env = *state;
    store_audit_t          batch[5];
    store_journal_check_t  chk;
    store_err_t            err;
    test_recs_t            r;
    uint8_t                h[STORE_HASH_LEN];
    char                   line[JOURNAL_JSON_MAX], body[JOURNAL_JSON_MAX];
    char                   hex[2 * STORE_HASH_LEN + 1];
    size_t                 len;
    unsigned               i;

    assert_int_equal(store_open(&env->st, env->path, 0, 0, &err), 0);
    test_actions(env->st, 2);

    for (i = 0; i < 5; i++) {
        test_decision(&batch[i], i, 1795000000000 + i);
    }
    assert_int_equal(store_journal_append(env->st, batch, 5, &err), 0);
    test_actions(env->st, 1);

    assert_int_equal(store_journal_verify(env->st, &chk, &err), 0);
    assert_int_equal(chk.checked, 8);
    assert_int_equal(chk.first, 1);
    assert_int_equal(chk.last, 8);
    assert_int_equal(chk.bad_seq, 0);

    memset(&r, 0, sizeof(r));
    assert_int_equal(store_audit_list(env->st, 1, 0, test_collect, &r, &err),
                     0);
    assert_int_equal(r.n, 8);
    assert_int_equal(r.recs[0].kind, STORE_AUDIT_ACTION);
    assert_string_equal(r.recs[0].action, "device.enroll");
    assert_int_equal(r.recs[2].kind, STORE_AUDIT_DECISION);
    assert_string_equal(r.recs[2].d.rule, "hr-read");
    assert_string_equal(r.recs[2].action, "decision.allow");
    assert_string_equal(r.recs[3].action, "decision.deny");
    assert_int_equal(r.recs[2].d.score, 50);
    assert_int_equal(r.recs[2].d.points[0], -60);
    assert_int_equal(r.recs[2].time_ms, 1795000000000);

    /* each record links to the one before; the first to zeros */
    for (i = 0; i < STORE_HASH_LEN; i++) {
        assert_int_equal(r.recs[0].prev[i], 0);
    }
    for (i = 1; i < r.n; i++) {
        assert_memory_equal(r.recs[i].prev, r.recs[i - 1].hash,
                            STORE_HASH_LEN);
    }
    assert_memory_equal(chk.head, r.recs[7].hash, STORE_HASH_LEN);

    /* the exported line: the body plus "hash", and the hash is its SHA-256 */
    len = journal_json(&r.recs[2], 1, line, sizeof(line));
    assert_true(len > 0);
    assert_non_null(strstr(line, "\"kind\":\"decision\""));
    assert_non_null(strstr(line, "\"outcome\":\"allow\""));
    assert_non_null(strstr(line, "\"time\":\"2026-11-18T"));
    assert_non_null(strstr(line, "\"factors\":{\"value\":0,\"points\":-6.0}"));
    assert_non_null(strstr(line, "\"reason\":\"rule \\\"hr-read\\\" \xe5\x8f\xb0\""));
    len = journal_json(&r.recs[2], 0, body, sizeof(body));
    assert_true(len > 0);
    assert_int_equal(journal_sha256(body, len, h), 0);
    assert_memory_equal(h, r.recs[2].hash, STORE_HASH_LEN);
    journal_hex(h, STORE_HASH_LEN, hex);
    assert_int_equal(memcmp(line, body, len - 1), 0);
    assert_non_null(strstr(line + len - 1, hex));
}


/* An edited record, a re-hashed edit and a removed record: each found. */
static void
test_tamper(void **state)
{
    test_env_t            *env = *state;
    store_audit_t          batch[4], rec;
    store_journal_check_t  chk;
    store_err_t            err;
    uint8_t                key[8] = { 0, 0, 0, 0, 0, 0, 0, 5 };
    unsigned               i;

    assert_int_equal(store_open(&env->st, env->path, 0, 0, &err), 0);
    test_actions(env->st, 2);
    for (i = 0; i < 4; i++) {
        test_decision(&batch[i], i, 1795000000000 + i);
    }
    assert_int_equal(store_journal_append(env->st, batch, 4, &err), 0);
    assert_int_equal(store_journal_verify(env->st, &chk, &err), 0);

    /* a deny turned into an allow, hash left alone */
    assert_int_equal(store_audit_get(env->st, 4, &rec, &err), 0);
    assert_int_equal(rec.d.outcome, WIRE_DENY);
    rec.d.outcome = WIRE_ALLOW;
    assert_int_equal(store_test_audit_rewrite(env->st, &rec, &err), 0);
    assert_int_equal(store_journal_verify(env->st, &chk, &err), 1);
    assert_int_equal(chk.bad_seq, 4);
    assert_non_null(strstr(chk.problem, "altered"));

    /* the same edit with its hash recomputed: the next link breaks */
    assert_int_equal(journal_hash(&rec, rec.hash), 0);
    assert_int_equal(store_test_audit_rewrite(env->st, &rec, &err), 0);
    assert_int_equal(store_journal_verify(env->st, &chk, &err), 1);
    assert_int_equal(chk.bad_seq, 5);
    assert_non_null(strstr(chk.problem, "does not link"));

    /* a record removed */
    assert_int_equal(store_test_put_raw(env->st, "audit", key, sizeof(key),
                                        NULL, 0, &err), 0);
    assert_int_equal(store_journal_verify(env->st, &chk, &err), 1);
    assert_int_equal(chk.bad_seq, 5);
    assert_non_null(strstr(chk.problem, "missing"));
    assert_int_equal(store_audit_get(env->st, 5, &rec, &err),
                     STORE_NOTFOUND);
}


/* The first records removed (not by retention): the anchor says so. */
static void
test_remove_head(void **state)
{
    test_env_t            *env = *state;
    store_journal_check_t  chk;
    store_err_t            err;
    uint8_t                key[8] = { 0, 0, 0, 0, 0, 0, 0, 1 };

    assert_int_equal(store_open(&env->st, env->path, 0, 0, &err), 0);
    test_actions(env->st, 3);
    assert_int_equal(store_test_put_raw(env->st, "audit", key, sizeof(key),
                                        NULL, 0, &err), 0);
    assert_int_equal(store_journal_verify(env->st, &chk, &err), 1);
    assert_int_equal(chk.bad_seq, 1);
    assert_non_null(strstr(chk.problem, "missing"));
}


/* Retention removes old records, moves the anchor, records itself. */
static void
test_purge(void **state)
{
    test_env_t            *env = *state;
    store_audit_t          batch[6];
    store_journal_check_t  chk;
    store_err_t            err;
    test_recs_t            r;
    int64_t                now;
    size_t                 n;
    unsigned               i;

    now = (int64_t) time(NULL) * 1000;

    assert_int_equal(store_open(&env->st, env->path, 0, 0, &err), 0);
    for (i = 0; i < 6; i++) {
        test_decision(&batch[i], i, now - 10 * 86400000LL + i);
    }
    batch[5].time_ms = now;
    assert_int_equal(store_journal_append(env->st, batch, 6, &err), 0);

    /* at most 3 at a time */
    assert_int_equal(store_journal_purge(env->st, now - 86400000LL, 3, &n,
                                         &err), 0);
    assert_int_equal(n, 3);
    assert_int_equal(store_journal_purge(env->st, now - 86400000LL, 100,
                                         &n, &err), 0);
    assert_int_equal(n, 2);
    assert_int_equal(store_journal_purge(env->st, now - 86400000LL, 100,
                                         &n, &err), 0);
    assert_int_equal(n, 0);

    assert_int_equal(store_journal_verify(env->st, &chk, &err), 0);
    assert_int_equal(chk.anchor_seq, 5);
    assert_int_equal(chk.first, 6);
    assert_int_equal(chk.checked, 3);   /* the decision, two purge records */

    memset(&r, 0, sizeof(r));
    assert_int_equal(store_audit_list(env->st, 0, 0, test_collect, &r, &err),
                     0);
    assert_int_equal(r.n, 3);
    assert_string_equal(r.recs[1].action, "journal.purge");
    assert_non_null(strstr(r.recs[1].detail, "3 records through seq 3"));
    assert_non_null(strstr(r.recs[2].detail, "2 records through seq 5"));

    /* new records go on from the chain, after a reopen too */
    store_close(env->st);
    env->st = NULL;
    assert_int_equal(store_open(&env->st, env->path, 0, 0, &err), 0);
    test_actions(env->st, 1);
    assert_int_equal(store_journal_verify(env->st, &chk, &err), 0);
    assert_int_equal(chk.last, 9);
}


/* A schema 4 store with version 1 records is chained on open. */
static void
test_migrate(void **state)
{
    test_env_t            *env = *state;
    store_journal_check_t  chk;
    store_err_t            err;
    test_recs_t            r;
    uint8_t                v4[4] = { 0, 0, 0, 4 };
    uint8_t                key[8] = { 0, 0, 0, 0, 0, 0, 0, 1 };
    uint8_t                v1[64];
    size_t                 len;
    unsigned               i;

    assert_int_equal(store_open(&env->st, env->path, 0, 0, &err), 0);

    /* v1: version, i64 time, then 4 x (u16 length + bytes) */
    len = 0;
    v1[len++] = 1;
    for (i = 0; i < 8; i++) {
        v1[len++] = i == 7 ? 100 : 0;
    }
    v1[len++] = 0; v1[len++] = 4; memcpy(v1 + len, "root", 4); len += 4;
    v1[len++] = 0; v1[len++] = 13; memcpy(v1 + len, "device.revoke", 13);
    len += 13;
    v1[len++] = 0; v1[len++] = 3; memcpy(v1 + len, "urn", 3); len += 3;
    v1[len++] = 0; v1[len++] = 0;

    for (i = 1; i <= 3; i++) {
        key[7] = (uint8_t) i;
        assert_int_equal(store_test_put_raw(env->st, "audit", key,
                                            sizeof(key), v1, len, &err), 0);
    }
    assert_int_equal(store_test_put_raw(env->st, "meta", "schema_version",
                                        14, v4, sizeof(v4), &err), 0);
    store_close(env->st);
    env->st = NULL;

    assert_int_equal(store_open(&env->st, env->path, 0, 0, &err), 0);
    if (store_journal_verify(env->st, &chk, &err) != 0) {
        fail_msg("verify: %llu %s", (unsigned long long) chk.bad_seq,
                 chk.problem);
    }
    assert_int_equal(chk.checked, 4);   /* three old, store.migrate */

    memset(&r, 0, sizeof(r));
    assert_int_equal(store_audit_list(env->st, 0, 0, test_collect, &r, &err),
                     0);
    assert_int_equal(r.n, 4);
    assert_string_equal(r.recs[0].action, "device.revoke");
    assert_int_equal(r.recs[0].time, 100);
    assert_int_equal(r.recs[0].time_ms, 100000);
    assert_string_equal(r.recs[3].action, "store.migrate");
    assert_non_null(strstr(r.recs[3].detail, "schema 4 -> 6"));
}


static void
test_wait_written(journal_t *j, uint64_t n)
{
    journal_stats_t  js;
    int              i;

    for (i = 0; i < 500; i++) {
        journal_stats(j, &js);
        if (js.written >= n) {
            return;
        }
        usleep(10000);
    }

    fail_msg("journal wrote %llu of %llu records",
             (unsigned long long) js.written, (unsigned long long) n);
}


/* The writer: identical decisions folded with a count, order kept. */
static void
test_writer(void **state)
{
    test_env_t            *env = *state;
    journal_t             *j;
    journal_conf_t         jc;
    journal_stats_t        js;
    store_journal_check_t  chk;
    store_audit_t          rec;
    store_err_t            err;
    test_recs_t            r;
    char                   msg[256];
    unsigned               i;

    assert_int_equal(store_open(&env->st, env->path, 0, 0, &err), 0);

    journal_conf_default(&jc);
    jc.flush_ms = 20;
    jc.queue = 64;
    assert_int_equal(journal_start(&j, env->st, &jc, msg, sizeof(msg)), 0);

    test_decision(&rec, 0, 1795000000000);
    for (i = 0; i < 100; i++) {
        assert_int_equal(journal_add(j, &rec), 0);
    }
    test_decision(&rec, 1, 1795000000001);
    assert_int_equal(journal_add(j, &rec), 0);
    assert_int_equal(journal_blocked(j), 0);

    test_wait_written(j, 2);
    journal_stats(j, &js);
    assert_int_equal(js.queued, 2);
    assert_int_equal(js.folded, 99);
    assert_int_equal(js.dropped, 0);

    /* more than the queue holds in one go: written in turns, none lost */
    for (i = 0; i < 200; i++) {
        test_decision(&rec, 10 + i, 1795000001000 + i);
        while (journal_add(j, &rec) != 0) {
            usleep(1000);
        }
    }
    journal_stop(j);

    memset(&r, 0, sizeof(r));
    assert_int_equal(store_audit_list(env->st, 1, 2, test_collect, &r, &err),
                     0);
    assert_int_equal(r.recs[0].d.count, 100);
    assert_int_equal(r.recs[1].d.count, 1);
    assert_int_equal(store_journal_verify(env->st, &chk, &err), 0);
    assert_int_equal(chk.checked, 202);

    memset(&r, 0, sizeof(r));
    assert_int_equal(store_audit_list(env->st, 202, 1, test_collect, &r,
                                      &err), 0);
    assert_string_equal(r.recs[0].d.path, "/records/209");
}


/* A journal that cannot be written blocks decisions unless fail-open. */
static void
test_writer_failing(void **state)
{
    test_env_t       *env = *state;
    journal_t        *j;
    journal_conf_t    jc;
    journal_stats_t   js;
    store_audit_t     rec;
    store_err_t       err;
    char              msg[256];
    int               i, open_mode;

    assert_int_equal(store_open(&env->st, env->path, 0, 0, &err), 0);
    store_close(env->st);
    env->st = NULL;

    for (open_mode = 0; open_mode <= 1; open_mode++) {
        /* read-only: every append fails */
        assert_int_equal(store_open(&env->st, env->path, 0, STORE_RDONLY,
                                    &err), 0);

        journal_conf_default(&jc);
        jc.flush_ms = 10;
        jc.queue = 16;
        jc.fail_open = open_mode;
        assert_int_equal(journal_start(&j, env->st, &jc, msg, sizeof(msg)),
                         0);

        test_decision(&rec, 0, 1795000000000);
        assert_int_equal(journal_add(j, &rec), 0);

        for (i = 0; i < 300; i++) {
            journal_stats(j, &js);
            if (js.failing) {
                break;
            }
            usleep(10000);
        }

        assert_int_equal(js.failing, 1);
        assert_non_null(strstr(js.error, "read-only"));
        assert_int_equal(journal_blocked(j), !open_mode);
        assert_int_equal(js.written, 0);
        assert_int_equal(js.pending, 1);

        journal_stop(j);
        store_close(env->st);
        env->st = NULL;
    }
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test_setup_teardown(test_chain, test_setup,
                                        test_teardown),
        cmocka_unit_test_setup_teardown(test_tamper, test_setup,
                                        test_teardown),
        cmocka_unit_test_setup_teardown(test_remove_head, test_setup,
                                        test_teardown),
        cmocka_unit_test_setup_teardown(test_purge, test_setup,
                                        test_teardown),
        cmocka_unit_test_setup_teardown(test_migrate, test_setup,
                                        test_teardown),
        cmocka_unit_test_setup_teardown(test_writer, test_setup,
                                        test_teardown),
        cmocka_unit_test_setup_teardown(test_writer_failing, test_setup,
                                        test_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
