/*
 * Unit tests for the enrollment steps ztctl and ztconsole share
 * (trustd/enroll.c), against a real store and real identity keys in a
 * temporary directory: passwords, an authenticator from start to active
 * (and every way a confirmation is refused), its reset, device records,
 * and the audit records each step leaves with its actor.
 */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ftw.h>
#include <time.h>
#include <cmocka.h>

#include "tests/unit/tmpdir.h"

#include "trustd/enroll.h"


typedef struct {
    char         dir[256];
    store_t     *st;
    id_keys_t   *keys;
    int64_t      now;
} test_env_t;

typedef struct {
    char         actions[32][512];
    size_t       n;
} test_audit_t;


static int test_setup(void **state);
static int test_teardown(void **state);
static void test_user(test_env_t *env, const char *name);
static int test_audit_cb(const store_audit_t *rec, void *arg);
static void test_audit(test_env_t *env, test_audit_t *a);
static void test_password_rules(void **state);
static void test_password_generate(void **state);
static void test_password_set(void **state);
static void test_totp_flow(void **state);
static void test_totp_refusals(void **state);
static void test_totp_changed(void **state);
static void test_totp_reset(void **state);
static void test_code_normalize(void **state);
static void test_device_record(void **state);



static int
test_setup(void **state)
{
    test_env_t   *env;
    store_err_t   se;
    id_err_t      ie;
    char          path[300];

    env = calloc(1, sizeof(*env));
    if (env == NULL) {
        return -1;
    }

    if (test_tmpdir_make(env->dir, sizeof(env->dir), "ztenroll") != 0) {
        free(env);
        return -1;
    }

    snprintf(path, sizeof(path), "%s/store", env->dir);
    if (store_open(&env->st, path, 16 * 1024 * 1024, 0, &se) != 0) {
        fprintf(stderr, "setup: %s\n", se.msg);
        return -1;
    }

    snprintf(path, sizeof(path), "%s/keys", env->dir);
    if (id_keys_load(path, ID_ALG_HS256, 0, 1, &env->keys, &ie) != 0) {
        fprintf(stderr, "setup: %s\n", ie.msg);
        return -1;
    }

    env->now = (int64_t) time(NULL);
    *state = env;

    return 0;
}


static int
test_teardown(void **state)
{
    test_env_t  *env = *state;

    store_close(env->st);
    id_keys_free(env->keys);
    test_tmpdir_remove(env->dir);
    free(env);

    return 0;
}


static void
test_user(test_env_t *env, const char *name)
{
    store_user_t  u;
    store_err_t   se;

    memset(&u, 0, sizeof(u));
    snprintf(u.name, sizeof(u.name), "%s", name);
    snprintf(u.groups[0], sizeof(u.groups[0]), "staff");
    u.ngroups = 1;

    assert_int_equal(store_user_create(env->st, &u, "setup", &se), 0);
}


static int
test_audit_cb(const store_audit_t *rec, void *arg)
{
    test_audit_t  *a = arg;

    if (rec->kind == STORE_AUDIT_ACTION && a->n < 32) {
        snprintf(a->actions[a->n++], sizeof(a->actions[0]), "%s %s %s",
                 rec->actor, rec->action, rec->detail);
    }

    return 0;
}


/* "actor action detail" of every action record, oldest first. */
static void
test_audit(test_env_t *env, test_audit_t *a)
{
    store_err_t  se;

    memset(a, 0, sizeof(*a));
    assert_int_equal(store_audit_list(env->st, 1, 0, test_audit_cb, a, &se),
                     0);
}


static void
test_password_rules(void **state)
{
    enroll_err_t  ee;
    char          big[ENROLL_PASSWORD_MAX + 2];

    (void) state;

    assert_int_equal(enroll_password_check("correct horse battery",
                                           &ee), ENROLL_OK);
    assert_int_equal(enroll_password_check("short", &ee), ENROLL_REFUSED);
    assert_non_null(strstr(ee.msg, "at least 12"));
    /* characters, not bytes: 11 CJK characters are 33 bytes, too few */
    assert_int_equal(enroll_password_check("一二三四五六七八九十壹", &ee),
                     ENROLL_REFUSED);
    assert_int_equal(enroll_password_check("一二三四五六七八九十壹貳",
                                           &ee), ENROLL_OK);
    assert_int_equal(enroll_password_check("tab\tinside the password",
                                           &ee), ENROLL_REFUSED);

    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(enroll_password_check(big, &ee), ENROLL_REFUSED);
    assert_int_equal(enroll_utf8_len("a一b"), 3);
}


static void
test_password_generate(void **state)
{
    enroll_err_t  ee;
    char          a[ENROLL_GEN_PASSWORD_SIZE], b[ENROLL_GEN_PASSWORD_SIZE];
    size_t        i;

    (void) state;

    assert_int_equal(enroll_password_generate(a, sizeof(a), &ee), 0);
    assert_int_equal(enroll_password_generate(b, sizeof(b), &ee), 0);
    assert_int_equal(strlen(a), ENROLL_GEN_PASSWORD_SIZE - 1);
    assert_string_not_equal(a, b);

    for (i = 0; a[i] != '\0'; i++) {
        if (i % 6 == 5) {
            assert_int_equal(a[i], '-');
        } else {
            assert_non_null(strchr("23456789abcdefghjkmnpqrstuvwxyz", a[i]));
        }
    }

    assert_int_equal(enroll_password_check(a, &ee), ENROLL_OK);
    assert_int_equal(enroll_password_generate(a, sizeof(a) - 1, &ee), -1);
}


static void
test_password_set(void **state)
{
    test_env_t    *env = *state;
    store_user_t   u;
    store_err_t    se;
    enroll_err_t   ee;
    id_err_t       ie;
    test_audit_t   a;

    test_user(env, "carol");

    assert_int_equal(enroll_password_set(env->st, "carol", "short", "sam",
                                         &ee), ENROLL_REFUSED);
    assert_int_equal(enroll_password_set(env->st, "nobody",
                                         "correct horse battery", "sam",
                                         &ee), ENROLL_NOTFOUND);
    assert_int_equal(enroll_password_set(env->st, "carol",
                                         "correct horse battery", "sam",
                                         &ee), ENROLL_OK);

    assert_int_equal(store_user_find(env->st, "carol", &u, &se), 0);
    assert_int_equal(id_password_verify("correct horse battery", u.pwhash,
                                        &ie), 1);
    assert_int_equal(u.ngroups, 1);

    test_audit(env, &a);
    assert_string_equal(a.actions[a.n - 1], "sam user.password password set");
}


static void
test_totp_flow(void **state)
{
    test_env_t     *env = *state;
    enroll_totp_t   e, o;
    enroll_err_t    ee;
    store_user_t    u;
    store_err_t     se;
    id_err_t        ie;
    test_audit_t    a;
    char            code[16], spaced[32];

    test_user(env, "carol");

    assert_int_equal(enroll_totp_start(env->st, env->keys, "carol",
                                       ID_TOTP_SHA1, 6, "ztgate", "sam", &e,
                                       &ee), ENROLL_OK);
    assert_non_null(strstr(e.uri, "otpauth://totp/ztgate:carol?secret="));
    assert_int_equal(e.pending.totp_state, STORE_TOTP_PENDING);

    /* read back for a later confirmation: the same secret */
    assert_int_equal(enroll_totp_open(env->st, env->keys, "carol", &o, &ee),
                     ENROLL_OK);
    assert_int_equal(o.totp.secret_len, e.totp.secret_len);
    assert_memory_equal(o.totp.secret, e.totp.secret, e.totp.secret_len);
    assert_string_equal(o.uri, "");

    /* the code as an authenticator shows it, with a space */
    assert_int_equal(id_totp_code(&o.totp, env->now, code, sizeof(code),
                                  &ie), 0);
    snprintf(spaced, sizeof(spaced), "%.3s %s", code, code + 3);
    assert_int_equal(enroll_totp_confirm(env->st, &o, spaced, env->now, 1,
                                         "sam", &ee), ENROLL_OK);

    assert_int_equal(store_user_find(env->st, "carol", &u, &se), 0);
    assert_int_equal(u.totp_state, STORE_TOTP_ACTIVE);
    assert_true(u.totp_last_counter > 0);

    /* active: no second enrollment, no second confirmation */
    assert_int_equal(enroll_totp_start(env->st, env->keys, "carol",
                                       ID_TOTP_SHA1, 6, "ztgate", "sam", &e,
                                       &ee), ENROLL_REFUSED);
    assert_int_equal(enroll_totp_open(env->st, env->keys, "carol", &o, &ee),
                     ENROLL_REFUSED);

    test_audit(env, &a);
    assert_string_equal(a.actions[a.n - 2],
                        "sam user.totp.enroll pending (sha1, 6 digits)");
    assert_string_equal(a.actions[a.n - 1],
                        "sam user.totp.confirm active (sha1, 6 digits)");

    enroll_totp_wipe(&e);
    enroll_totp_wipe(&o);
}


static void
test_totp_refusals(void **state)
{
    test_env_t     *env = *state;
    enroll_totp_t   e;
    enroll_err_t    ee;
    id_err_t        ie;
    store_user_t    u;
    store_err_t     se;
    char            code[16];

    test_user(env, "dave");

    assert_int_equal(enroll_totp_start(env->st, env->keys, "nobody",
                                       ID_TOTP_SHA1, 6, "ztgate", "sam", &e,
                                       &ee), ENROLL_NOTFOUND);
    assert_int_equal(enroll_totp_open(env->st, env->keys, "dave", &e, &ee),
                     ENROLL_REFUSED);
    assert_int_equal(enroll_totp_start(env->st, env->keys, "dave",
                                       ID_TOTP_SHA1, 6, "ztgate", "sam", &e,
                                       &ee), ENROLL_OK);

    /* malformed, wrong, too far off: still pending */
    assert_int_equal(enroll_totp_confirm(env->st, &e, "12a456", env->now, 1,
                                         "sam", &ee), ENROLL_BAD_CODE);
    assert_int_equal(enroll_totp_confirm(env->st, &e, "12345", env->now, 1,
                                         "sam", &ee), ENROLL_BAD_CODE);
    assert_non_null(strstr(ee.msg, "expected 6 digits"));
    assert_int_equal(id_totp_code(&e.totp, env->now - 300, code,
                                  sizeof(code), &ie), 0);
    assert_int_equal(enroll_totp_confirm(env->st, &e, code, env->now, 1,
                                         "sam", &ee), ENROLL_BAD_CODE);
    assert_non_null(strstr(ee.msg, "stays pending"));

    assert_int_equal(store_user_find(env->st, "dave", &u, &se), 0);
    assert_int_equal(u.totp_state, STORE_TOTP_PENDING);

    enroll_totp_wipe(&e);
}


/* Two staff members start over at once: the older start cannot win. */
static void
test_totp_changed(void **state)
{
    test_env_t     *env = *state;
    enroll_totp_t   first, second;
    enroll_err_t    ee;
    id_err_t        ie;
    char            code[16];

    test_user(env, "erin");

    assert_int_equal(enroll_totp_start(env->st, env->keys, "erin",
                                       ID_TOTP_SHA1, 6, "ztgate", "sam",
                                       &first, &ee), ENROLL_OK);
    assert_int_equal(enroll_totp_start(env->st, env->keys, "erin",
                                       ID_TOTP_SHA1, 6, "ztgate", "tom",
                                       &second, &ee), ENROLL_OK);

    assert_int_equal(id_totp_code(&first.totp, env->now, code, sizeof(code),
                                  &ie), 0);
    assert_int_equal(enroll_totp_confirm(env->st, &first, code, env->now, 1,
                                         "sam", &ee), ENROLL_CHANGED);

    assert_int_equal(id_totp_code(&second.totp, env->now, code,
                                  sizeof(code), &ie), 0);
    assert_int_equal(enroll_totp_confirm(env->st, &second, code, env->now, 1,
                                         "tom", &ee), ENROLL_OK);

    enroll_totp_wipe(&first);
    enroll_totp_wipe(&second);
}


static void
test_totp_reset(void **state)
{
    test_env_t          *env = *state;
    enroll_totp_t        e;
    enroll_err_t         ee;
    store_session_t      s, after;
    store_err_t          se;
    store_user_t         u;
    store_totp_state_t   was;
    test_audit_t         a;
    unsigned             revoked;

    test_user(env, "fay");

    assert_int_equal(enroll_totp_start(env->st, env->keys, "fay",
                                       ID_TOTP_SHA256, 8, "ztgate", "sam",
                                       &e, &ee), ENROLL_OK);
    enroll_totp_wipe(&e);

    memset(&s, 0, sizeof(s));
    snprintf(s.sid, sizeof(s.sid), "0123456789abcdef0123456789abcdef");
    snprintf(s.user, sizeof(s.user), "fay");
    s.expires_at = env->now + 3600;
    if (store_session_create(env->st, &s, &se) != 0) {
        fail_msg("session: %s", se.msg);
    }

    assert_int_equal(enroll_totp_reset(env->st, "fay", "sam", &was, &revoked,
                                       &ee), ENROLL_OK);
    assert_int_equal(was, STORE_TOTP_PENDING);
    assert_int_equal(revoked, 1);

    assert_int_equal(store_user_find(env->st, "fay", &u, &se), 0);
    assert_int_equal(u.totp_state, STORE_TOTP_NONE);
    assert_int_equal(u.totp_sealed_len, 0);
    assert_int_equal(store_session_find(env->st, s.sid, &after, &se), 0);
    assert_true(after.revoked);

    assert_int_equal(enroll_totp_reset(env->st, "nobody", "sam", NULL, NULL,
                                       &ee), ENROLL_NOTFOUND);

    test_audit(env, &a);
    assert_non_null(strstr(a.actions[a.n - 1],
                           "sam user.totp.reset was pending"));
}


static void
test_code_normalize(void **state)
{
    char  out[16];

    (void) state;

    assert_int_equal(enroll_code_normalize("123 456", out, sizeof(out)), 0);
    assert_string_equal(out, "123456");
    assert_int_equal(enroll_code_normalize("1234-5678", out, sizeof(out)),
                     0);
    assert_string_equal(out, "12345678");
    assert_int_equal(enroll_code_normalize("12345", out, sizeof(out)), -1);
    assert_int_equal(enroll_code_normalize("123456789", out, sizeof(out)),
                     -1);
    assert_int_equal(enroll_code_normalize("12345x", out, sizeof(out)), -1);
    assert_int_equal(enroll_code_normalize("123456", out, 4), -1);
    assert_string_equal(enroll_totp_algo_name(ID_TOTP_SHA512), "sha512");
    assert_string_equal(enroll_totp_algo_name(99), "sha1");
}


static void
test_device_record(void **state)
{
    store_device_t  dev;
    enroll_err_t    ee;
    uint8_t         fp[STORE_FP_LEN];
    int64_t         now;

    (void) state;

    memset(fp, 0xab, sizeof(fp));
    now = 1764064800;

    /* the id with or without its urn */
    assert_int_equal(enroll_device_record(fp, "d462d5ce", now + 86400,
                                          "alice", "Alice's laptop", "linux",
                                          now, &dev, &ee), ENROLL_OK);
    assert_string_equal(dev.id, "urn:ztgate:device:d462d5ce");
    assert_string_equal(dev.owner, "alice");
    assert_int_equal(dev.status, STORE_DEVICE_ACTIVE);
    assert_int_equal(dev.expires_at, now + 86400);
    assert_memory_equal(dev.fp, fp, sizeof(fp));

    assert_int_equal(enroll_device_record(fp, "urn:ztgate:device:x", 0,
                                          "a@b.example", "", "", now, &dev,
                                          &ee), ENROLL_OK);
    assert_string_equal(dev.id, "urn:ztgate:device:x");

    /* not a device certificate, expired, a bad owner or name */
    assert_int_equal(enroll_device_record(fp, "", 0, "alice", "", "", now,
                                          &dev, &ee), ENROLL_REFUSED);
    assert_non_null(strstr(ee.msg, "not a ztgate device certificate"));
    assert_int_equal(enroll_device_record(fp, "x", now - 1, "alice", "", "",
                                          now, &dev, &ee), ENROLL_REFUSED);
    assert_non_null(strstr(ee.msg, "expired"));
    assert_int_equal(enroll_device_record(fp, "x", 0, "al ice", "", "", now,
                                          &dev, &ee), ENROLL_REFUSED);
    assert_int_equal(enroll_device_record(fp, "x", 0, "", "", "", now, &dev,
                                          &ee), ENROLL_REFUSED);
    assert_int_equal(enroll_device_record(fp, "x", 0, "alice", "a\nb", "",
                                          now, &dev, &ee), ENROLL_REFUSED);
    assert_string_equal(dev.id, "");
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_password_rules),
        cmocka_unit_test(test_password_generate),
        cmocka_unit_test_setup_teardown(test_password_set, test_setup,
                                        test_teardown),
        cmocka_unit_test_setup_teardown(test_totp_flow, test_setup,
                                        test_teardown),
        cmocka_unit_test_setup_teardown(test_totp_refusals, test_setup,
                                        test_teardown),
        cmocka_unit_test_setup_teardown(test_totp_changed, test_setup,
                                        test_teardown),
        cmocka_unit_test_setup_teardown(test_totp_reset, test_setup,
                                        test_teardown),
        cmocka_unit_test(test_code_normalize),
        cmocka_unit_test(test_device_record),
    };

    return cmocka_run_group_tests_name("enroll", tests, NULL, NULL);
}
