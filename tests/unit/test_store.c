/*
 * Unit tests for trustd/store.c against real LMDB files in a temporary
 * directory.  Built with STORE_TESTING for store_test_put_raw().
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


typedef struct {
    char        dir[256];
    char        path[300];
    store_t    *st;
} test_env_t;

typedef struct {
    unsigned    n;
    uint8_t     last_fp[STORE_FP_LEN];
    int         ordered;
} test_list_t;

typedef struct {
    unsigned    n;
    uint64_t    seqs[64];
    char        actions[64][32];
} test_audit_t;

typedef struct {
    unsigned    n;
    unsigned    revoked;
    char        names[16][STORE_NAME_MAX];
} test_names_t;


static int test_setup(void **state);
static int test_teardown(void **state);
static void test_make_device(store_device_t *dev, unsigned i);
static int test_list_cb(const store_device_t *dev, void *arg);
static int test_audit_cb(const store_audit_t *rec, void *arg);
static void test_open_close_reopen(void **state);
static void test_schema_version(void **state);
static void test_rdonly(void **state);
static void test_enroll_get(void **state);
static void test_enroll_duplicate(void **state);
static void test_enroll_invalid(void **state);
static void test_enroll_batch(void **state);
static void test_set_status(void **state);
static void test_not_found(void **state);
static void test_find_id(void **state);
static void test_list(void **state);
static void test_audit(void **state);
static void test_view_reuse(void **state);
static void test_map_full(void **state);
static void test_corrupt_record(void **state);
static void test_make_user(store_user_t *u, const char *name);
static void test_make_session(store_session_t *s, const char *user,
    unsigned i, int64_t expires);
static void test_audit_since(store_t *st, uint64_t from, test_audit_t *a);
static uint64_t test_last_seq(store_t *st);
static int test_user_list_cb(const store_user_t *u, void *arg);
static int test_session_list_cb(const store_session_t *s, void *arg);
static void test_user_crud(void **state);
static void test_user_names(void **state);
static void test_login_lockout(void **state);
static void test_login_replay(void **state);
static void test_sessions(void **state);
static void test_user_delete_sessions(void **state);
static void test_migrate_v1(void **state);
static void test_device_cache(void **state);
static void test_identity_map_full(void **state);
static void test_corrupt_identity(void **state);
static void test_make_posture(store_posture_t *p, const char *os);
static void test_posture_put_get(void **state);
static void test_posture_refused(void **state);
static void test_posture_import_atomic(void **state);
static void test_posture_migrate_v2(void **state);
static void test_posture_corrupt(void **state);
static void test_device_set_owner(void **state);



static int
test_setup(void **state)
{
    test_env_t  *env;

    env = calloc(1, sizeof(*env));
    if (env == NULL) {
        return -1;
    }

    if (test_tmpdir_make(env->dir, sizeof(env->dir), "ztstore") != 0) {
        free(env);
        return -1;
    }

    /* a subdirectory: store_open() must create it */
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
test_make_device(store_device_t *dev, unsigned i)
{
    unsigned  k;

    memset(dev, 0, sizeof(*dev));

    for (k = 0; k < STORE_FP_LEN; k++) {
        dev->fp[k] = (uint8_t) (i * 31 + k * 7);
    }
    dev->fp[0] = (uint8_t) (i >> 8);
    dev->fp[1] = (uint8_t) i;

    snprintf(dev->id, sizeof(dev->id),
             STORE_DEVICE_URN "%08x-0000-4000-8000-000000000000", i);
    snprintf(dev->owner, sizeof(dev->owner), "user%u", i);
    snprintf(dev->name, sizeof(dev->name), "laptop %u", i);
    snprintf(dev->platform, sizeof(dev->platform), "linux");
    dev->expires_at = (int64_t) time(NULL) + 86400;
    dev->status = STORE_DEVICE_ACTIVE;
}


static int
test_list_cb(const store_device_t *dev, void *arg)
{
    test_list_t  *l = arg;

    if (l->n > 0 && memcmp(l->last_fp, dev->fp, STORE_FP_LEN) >= 0) {
        l->ordered = 0;
    }

    memcpy(l->last_fp, dev->fp, STORE_FP_LEN);
    l->n++;

    return 0;
}


static int
test_audit_cb(const store_audit_t *rec, void *arg)
{
    test_audit_t  *a = arg;

    if (a->n < 64) {
        a->seqs[a->n] = rec->seq;
        snprintf(a->actions[a->n], sizeof(a->actions[0]), "%s",
                 rec->action);
    }

    a->n++;

    return 0;
}


static void
test_open_close_reopen(void **state)
{
    test_env_t      *env = *state;
    store_device_t   dev, out;
    store_view_t    *view = NULL;
    store_err_t      err;

    assert_int_equal(store_open(&env->st, env->path, 0, 0, &err), 0);
    assert_true(store_map_size(env->st) >= STORE_DEFAULT_MAP_SIZE);

    test_make_device(&dev, 1);
    assert_int_equal(store_device_enroll(env->st, &dev, "admin", &err), 0);

    store_close(env->st);
    env->st = NULL;

    assert_int_equal(store_open(&env->st, env->path, 0, 0, &err), 0);
    assert_int_equal(store_view_begin(env->st, &view, &err), 0);
    assert_int_equal(store_device_get(view, dev.fp, &out, &err), 0);
    store_view_end(view);
    store_view_free(view);

    assert_string_equal(out.id, dev.id);
    assert_string_equal(out.owner, "user1");
}


static void
test_schema_version(void **state)
{
    test_env_t   *env = *state;
    store_err_t   err;
    uint8_t       v4[4] = { 0, 0, 0, STORE_SCHEMA_VERSION + 1 };
    uint8_t       bad[3] = { 0, 0, 1 };

    assert_int_equal(store_open(&env->st, env->path, 0, 0, &err), 0);

    /* a store from a future ztgate */
    assert_int_equal(store_test_put_raw(env->st, "meta", "schema_version",
                                        14, v4, sizeof(v4), &err), 0);
    store_close(env->st);
    env->st = NULL;

    assert_int_equal(store_open(&env->st, env->path, 0, 0, &err), -1);
    assert_null(env->st);
    assert_non_null(strstr(err.msg, "is newer"));

    assert_int_equal(store_open(&env->st, env->path, 0, STORE_RDONLY,
                                &err), -1);
    assert_non_null(strstr(err.msg, "newer"));

    /* the version record itself damaged */
    env->st = NULL;
    snprintf(env->path + strlen(env->path),
             sizeof(env->path) - strlen(env->path), "2");
    assert_int_equal(store_open(&env->st, env->path, 0, 0, &err), 0);
    assert_int_equal(store_test_put_raw(env->st, "meta", "schema_version",
                                        14, bad, sizeof(bad), &err), 0);
    store_close(env->st);
    env->st = NULL;
    assert_int_equal(store_open(&env->st, env->path, 0, 0, &err), -1);
    assert_non_null(strstr(err.msg, "corrupt"));
}


static void
test_rdonly(void **state)
{
    test_env_t      *env = *state;
    store_device_t   dev;
    store_err_t      err;
    uint8_t          fp[STORE_FP_LEN];

    /* read-only never creates */
    assert_int_equal(store_open(&env->st, env->path, 0, STORE_RDONLY,
                                &err), -1);
    assert_int_equal(access(env->path, F_OK), -1);

    assert_int_equal(store_open(&env->st, env->path, 0, 0, &err), 0);
    test_make_device(&dev, 3);
    assert_int_equal(store_device_enroll(env->st, &dev, "admin", &err), 0);
    store_close(env->st);
    env->st = NULL;

    assert_int_equal(store_open(&env->st, env->path, 0, STORE_RDONLY,
                                &err), 0);
    memcpy(fp, dev.fp, sizeof(fp));
    assert_int_equal(store_device_set_status(env->st, fp,
                                             STORE_DEVICE_REVOKED, "a",
                                             NULL, &err), -1);
    assert_non_null(strstr(err.msg, "read-only"));
    test_make_device(&dev, 4);
    assert_int_equal(store_device_enroll(env->st, &dev, "admin", &err), -1);
}


static void
test_enroll_get(void **state)
{
    test_env_t      *env = *state;
    store_device_t   dev, out;
    store_view_t    *view = NULL;
    store_err_t      err;
    int64_t          before;

    assert_int_equal(store_open(&env->st, env->path, 0, 0, &err), 0);

    before = (int64_t) time(NULL);
    test_make_device(&dev, 7);
    assert_int_equal(store_device_enroll(env->st, &dev, "root", &err), 0);

    assert_int_equal(store_view_begin(env->st, &view, &err), 0);
    assert_int_equal(store_device_get(view, dev.fp, &out, &err), 0);
    store_view_free(view);

    assert_memory_equal(out.fp, dev.fp, STORE_FP_LEN);
    assert_string_equal(out.id, dev.id);
    assert_string_equal(out.owner, dev.owner);
    assert_string_equal(out.name, dev.name);
    assert_string_equal(out.platform, dev.platform);
    assert_string_equal(out.enrolled_by, "root");
    assert_int_equal(out.status, STORE_DEVICE_ACTIVE);
    assert_true(out.expires_at == dev.expires_at);
    assert_true(out.enrolled_at >= before);
    assert_true(out.updated_at >= before);
}


static void
test_enroll_duplicate(void **state)
{
    test_env_t      *env = *state;
    store_device_t   dev, other, renewed;
    store_err_t      err;
    uint64_t         seq;

    assert_int_equal(store_open(&env->st, env->path, 0, 0, &err), 0);

    test_make_device(&dev, 1);
    assert_int_equal(store_device_enroll(env->st, &dev, "root", &err), 0);

    /* same certificate again */
    assert_int_equal(store_device_enroll(env->st, &dev, "root", &err), -1);
    assert_non_null(strstr(err.msg, "already enrolled"));

    /* same device id, new certificate: only after revoking the old one */
    test_make_device(&other, 2);
    memcpy(other.id, dev.id, sizeof(dev.id));
    assert_int_equal(store_device_enroll(env->st, &other, "root", &err), -1);
    assert_non_null(strstr(err.msg, "revoke"));

    assert_int_equal(store_device_set_status(env->st, dev.fp,
                                             STORE_DEVICE_REVOKED, "root",
                                             "renewed", &err), 0);
    assert_int_equal(store_device_enroll(env->st, &other, "root", &err), 0);

    /* a renewal: the same owner may overlap two certificates of one id */
    test_make_device(&renewed, 3);
    memcpy(renewed.id, other.id, sizeof(other.id));
    memcpy(renewed.owner, other.owner, sizeof(other.owner));
    assert_int_equal(store_device_enroll(env->st, &renewed, "root", &err),
                     0);

    /* refused enrollments left no audit record */
    assert_int_equal(store_audit_last_seq(env->st, &seq, &err), 0);
    assert_true(seq == 4);
}


static void
test_enroll_batch(void **state)
{
    test_env_t      *env = *state;
    store_device_t   devs[4], got;
    store_view_t    *v;
    store_err_t      err;
    uint64_t         seq;
    size_t           bad;
    unsigned         i;

    assert_int_equal(store_open(&env->st, env->path, 0, 0, &err), 0);

    for (i = 0; i < 4; i++) {
        test_make_device(&devs[i], 10 + i);
    }

    /* a fingerprint twice in one batch: nothing enrolled, index named */
    devs[3] = devs[1];
    assert_int_equal(store_device_enroll_batch(env->st, devs, 4, "staff",
                                               &bad, &err), -1);
    assert_int_equal(bad, 3);
    assert_non_null(strstr(err.msg, "already enrolled"));

    v = NULL;
    assert_int_equal(store_view_begin(env->st, &v, &err), 0);
    assert_int_equal(store_device_get(v, devs[0].fp, &got, &err),
                     STORE_NOTFOUND);
    store_view_end(v);

    /* three distinct devices: one transaction, one audit record */
    assert_int_equal(store_device_enroll_batch(env->st, devs, 3, "staff",
                                               &bad, &err), 0);
    assert_int_equal(store_view_begin(env->st, &v, &err), 0);
    for (i = 0; i < 3; i++) {
        assert_int_equal(store_device_get(v, devs[i].fp, &got, &err), 0);
        assert_string_equal(got.enrolled_by, "staff");
    }
    store_view_end(v);
    store_view_free(v);
    assert_int_equal(store_audit_last_seq(env->st, &seq, &err), 0);
    assert_true(seq == 1);

    /* a device id enrolled for another owner is refused, as one by one */
    test_make_device(&devs[3], 20);
    memcpy(devs[3].id, devs[0].id, sizeof(devs[0].id));
    assert_int_equal(store_device_enroll_batch(env->st, &devs[3], 1,
                                               "staff", &bad, &err), -1);
    assert_non_null(strstr(err.msg, "another owner"));

    /* the same owner (a renewal) is not */
    memcpy(devs[3].owner, devs[0].owner, sizeof(devs[0].owner));
    assert_int_equal(store_device_enroll_batch(env->st, &devs[3], 1,
                                               "staff", &bad, &err), 0);
}


static void
test_enroll_invalid(void **state)
{
    test_env_t      *env = *state;
    store_device_t   dev;
    store_err_t      err;

    assert_int_equal(store_open(&env->st, env->path, 0, 0, &err), 0);

    test_make_device(&dev, 1);
    snprintf(dev.id, sizeof(dev.id), "laptop-1");
    assert_int_equal(store_device_enroll(env->st, &dev, "root", &err), -1);

    test_make_device(&dev, 1);
    snprintf(dev.id, sizeof(dev.id), STORE_DEVICE_URN);
    assert_int_equal(store_device_enroll(env->st, &dev, "root", &err), -1);

    test_make_device(&dev, 1);
    dev.owner[0] = '\0';
    assert_int_equal(store_device_enroll(env->st, &dev, "root", &err), -1);

    test_make_device(&dev, 1);
    snprintf(dev.owner, sizeof(dev.owner), "alice\r\nX-ZT-Evil: 1");
    assert_int_equal(store_device_enroll(env->st, &dev, "root", &err), -1);

    test_make_device(&dev, 1);
    memset(dev.name, 'a', sizeof(dev.name));   /* not NUL-terminated */
    assert_int_equal(store_device_enroll(env->st, &dev, "root", &err), -1);

    test_make_device(&dev, 1);
    dev.status = (store_device_status_t) 0;
    assert_int_equal(store_device_enroll(env->st, &dev, "root", &err), -1);
}


static void
test_set_status(void **state)
{
    test_env_t      *env = *state;
    store_device_t   dev, out;
    store_view_t    *view = NULL;
    store_err_t      err;
    uint8_t          unknown[STORE_FP_LEN];

    assert_int_equal(store_open(&env->st, env->path, 0, 0, &err), 0);

    test_make_device(&dev, 9);
    assert_int_equal(store_device_enroll(env->st, &dev, "root", &err), 0);

    assert_int_equal(store_device_set_status(env->st, dev.fp,
                                             STORE_DEVICE_QUARANTINED,
                                             "sec", "malware", &err), 0);
    assert_int_equal(store_view_begin(env->st, &view, &err), 0);
    assert_int_equal(store_device_get(view, dev.fp, &out, &err), 0);
    store_view_end(view);
    assert_int_equal(out.status, STORE_DEVICE_QUARANTINED);
    assert_string_equal(out.owner, dev.owner);

    assert_int_equal(store_device_set_status(env->st, dev.fp,
                                             STORE_DEVICE_REVOKED,
                                             "sec", NULL, &err), 0);
    assert_int_equal(store_view_begin(env->st, &view, &err), 0);
    assert_int_equal(store_device_get(view, dev.fp, &out, &err), 0);
    store_view_end(view);
    assert_int_equal(out.status, STORE_DEVICE_REVOKED);

    memset(unknown, 0xee, sizeof(unknown));
    assert_int_equal(store_device_set_status(env->st, unknown,
                                             STORE_DEVICE_REVOKED,
                                             "sec", NULL, &err),
                     STORE_NOTFOUND);

    assert_int_equal(store_device_set_status(env->st, dev.fp,
                                             (store_device_status_t) 42,
                                             "sec", NULL, &err), -1);

    store_view_free(view);
}


static void
test_not_found(void **state)
{
    test_env_t      *env = *state;
    store_device_t   out;
    store_view_t    *view = NULL;
    store_err_t      err;
    uint8_t          fp[STORE_FP_LEN];

    assert_int_equal(store_open(&env->st, env->path, 0, 0, &err), 0);

    memset(fp, 0x42, sizeof(fp));
    assert_int_equal(store_view_begin(env->st, &view, &err), 0);
    assert_int_equal(store_device_get(view, fp, &out, &err),
                     STORE_NOTFOUND);
    store_view_end(view);

    /* a lookup outside a view is an error, not a crash */
    assert_int_equal(store_device_get(view, fp, &out, &err), -1);
    store_view_free(view);

    assert_int_equal(store_device_find_id(env->st,
                                          STORE_DEVICE_URN "nope", &out,
                                          &err), STORE_NOTFOUND);
}


static void
test_find_id(void **state)
{
    test_env_t      *env = *state;
    store_device_t   a, b, out;
    store_err_t      err;

    assert_int_equal(store_open(&env->st, env->path, 0, 0, &err), 0);

    test_make_device(&a, 1);
    test_make_device(&b, 2);
    assert_int_equal(store_device_enroll(env->st, &a, "root", &err), 0);
    assert_int_equal(store_device_enroll(env->st, &b, "root", &err), 0);

    assert_int_equal(store_device_find_id(env->st, b.id, &out, &err), 0);
    assert_memory_equal(out.fp, b.fp, STORE_FP_LEN);

    /* a renewed certificate for device a: the live one is found */
    assert_int_equal(store_device_set_status(env->st, a.fp,
                                             STORE_DEVICE_REVOKED, "root",
                                             NULL, &err), 0);
    test_make_device(&b, 3);
    memcpy(b.id, a.id, sizeof(a.id));
    assert_int_equal(store_device_enroll(env->st, &b, "root", &err), 0);
    assert_int_equal(store_device_find_id(env->st, a.id, &out, &err), 0);
    assert_memory_equal(out.fp, b.fp, STORE_FP_LEN);
    assert_int_equal(out.status, STORE_DEVICE_ACTIVE);
}


static void
test_list(void **state)
{
    test_env_t      *env = *state;
    store_device_t   dev;
    store_err_t      err;
    test_list_t      l;
    unsigned         i;

    assert_int_equal(store_open(&env->st, env->path, 0, 0, &err), 0);

    memset(&l, 0, sizeof(l));
    l.ordered = 1;
    assert_int_equal(store_device_list(env->st, test_list_cb, &l, &err), 0);
    assert_int_equal(l.n, 0);

    for (i = 10; i > 0; i--) {
        test_make_device(&dev, i);
        assert_int_equal(store_device_enroll(env->st, &dev, "root", &err),
                         0);
    }

    memset(&l, 0, sizeof(l));
    l.ordered = 1;
    assert_int_equal(store_device_list(env->st, test_list_cb, &l, &err), 0);
    assert_int_equal(l.n, 10);
    assert_true(l.ordered);
}


static void
test_audit(void **state)
{
    test_env_t      *env = *state;
    store_device_t   dev;
    store_err_t      err;
    test_audit_t     a;
    uint64_t         seq;
    unsigned         i;

    assert_int_equal(store_open(&env->st, env->path, 0, 0, &err), 0);

    assert_int_equal(store_audit_last_seq(env->st, &seq, &err), 0);
    assert_true(seq == 0);

    test_make_device(&dev, 5);
    assert_int_equal(store_device_enroll(env->st, &dev, "alice", &err), 0);
    assert_int_equal(store_audit_last_seq(env->st, &seq, &err), 0);
    assert_true(seq == 1);

    assert_int_equal(store_device_set_status(env->st, dev.fp,
                                             STORE_DEVICE_QUARANTINED,
                                             "bob", "lost", &err), 0);
    assert_int_equal(store_audit_last_seq(env->st, &seq, &err), 0);
    assert_true(seq == 2);

    assert_int_equal(store_device_set_status(env->st, dev.fp,
                                             STORE_DEVICE_ACTIVE,
                                             "bob", "found", &err), 0);

    /* persists across reopen and keeps counting */
    store_close(env->st);
    assert_int_equal(store_open(&env->st, env->path, 0, 0, &err), 0);
    assert_int_equal(store_device_set_status(env->st, dev.fp,
                                             STORE_DEVICE_REVOKED,
                                             "bob", NULL, &err), 0);

    memset(&a, 0, sizeof(a));
    assert_int_equal(store_audit_list(env->st, 1, 0, test_audit_cb, &a,
                                      &err), 0);
    assert_int_equal(a.n, 4);

    for (i = 0; i < 4; i++) {
        assert_true(a.seqs[i] == i + 1);
    }

    assert_string_equal(a.actions[0], "device.enroll");
    assert_string_equal(a.actions[1], "device.quarantine");
    assert_string_equal(a.actions[2], "device.activate");
    assert_string_equal(a.actions[3], "device.revoke");

    /* a window */
    memset(&a, 0, sizeof(a));
    assert_int_equal(store_audit_list(env->st, 2, 2, test_audit_cb, &a,
                                      &err), 0);
    assert_int_equal(a.n, 2);
    assert_true(a.seqs[0] == 2 && a.seqs[1] == 3);

    memset(&a, 0, sizeof(a));
    assert_int_equal(store_audit_list(env->st, 100, 0, test_audit_cb, &a,
                                      &err), 0);
    assert_int_equal(a.n, 0);
}


static void
test_view_reuse(void **state)
{
    test_env_t      *env = *state;
    store_device_t   dev, out;
    store_view_t    *view = NULL, *first;
    store_err_t      err;
    unsigned         i;

    assert_int_equal(store_open(&env->st, env->path, 0, 0, &err), 0);

    test_make_device(&dev, 1);
    assert_int_equal(store_device_enroll(env->st, &dev, "root", &err), 0);

    assert_int_equal(store_view_begin(env->st, &view, &err), 0);
    first = view;
    store_view_end(view);

    for (i = 0; i < 20000; i++) {
        assert_int_equal(store_view_begin(env->st, &view, &err), 0);
        assert_ptr_equal(view, first);
        assert_int_equal(store_device_get(view, dev.fp, &out, &err), 0);
        store_view_end(view);

        /* a change made meanwhile is seen by the next view */
        if (i == 10000) {
            assert_int_equal(store_device_set_status(env->st, dev.fp,
                                                     STORE_DEVICE_REVOKED,
                                                     "root", NULL, &err),
                             0);
        }

        assert_int_equal(out.status, i <= 10000 ? STORE_DEVICE_ACTIVE
                                                : STORE_DEVICE_REVOKED);
    }

    /* begin twice is harmless; end twice too */
    assert_int_equal(store_view_begin(env->st, &view, &err), 0);
    assert_int_equal(store_view_begin(env->st, &view, &err), 0);
    store_view_end(view);
    store_view_end(view);
    store_view_free(view);
}


static void
test_map_full(void **state)
{
    test_env_t      *env = *state;
    store_device_t   dev, out;
    store_view_t    *view = NULL;
    store_err_t      err;
    test_list_t      l;
    uint64_t         seq;
    unsigned         i, ok;
    int              rc;

    assert_int_equal(store_open(&env->st, env->path, 128 * 1024, 0, &err),
                     0);

    ok = 0;
    rc = 0;

    for (i = 1; i < 100000; i++) {
        test_make_device(&dev, i);
        memset(dev.name, 'n', sizeof(dev.name) - 1);
        memset(dev.platform, 'p', sizeof(dev.platform) - 1);

        rc = store_device_enroll(env->st, &dev, "root", &err);
        if (rc != 0) {
            break;
        }

        ok++;
    }

    assert_int_equal(rc, -1);
    assert_true(ok > 10);
    assert_non_null(strstr(err.msg, "store is full (map size 128 KiB); "
                           "raise store_map_size"));

    /* every committed change is intact, with its audit record */
    memset(&l, 0, sizeof(l));
    l.ordered = 1;
    assert_int_equal(store_device_list(env->st, test_list_cb, &l, &err), 0);
    assert_int_equal(l.n, ok);
    assert_int_equal(store_audit_last_seq(env->st, &seq, &err), 0);
    assert_true(seq == ok);

    test_make_device(&dev, 1);
    assert_int_equal(store_view_begin(env->st, &view, &err), 0);
    assert_int_equal(store_device_get(view, dev.fp, &out, &err), 0);
    store_view_free(view);

    /* reopened with a larger map, the store takes more */
    store_close(env->st);
    assert_int_equal(store_open(&env->st, env->path, 4 * 1024 * 1024, 0,
                                &err), 0);
    test_make_device(&dev, ok + 1);
    assert_int_equal(store_device_enroll(env->st, &dev, "root", &err), 0);

    /* and a smaller setting does not shrink it again */
    store_close(env->st);
    assert_int_equal(store_open(&env->st, env->path, 128 * 1024, 0, &err),
                     0);
    assert_true(store_map_size(env->st) >= 4 * 1024 * 1024);
}


static void
test_corrupt_record(void **state)
{
    test_env_t      *env = *state;
    store_device_t   dev, out;
    store_view_t    *view = NULL;
    store_err_t      err;
    test_list_t      l;
    uint8_t          fp[STORE_FP_LEN];
    uint8_t          garbage[7] = { 1, 1, 0xff, 0xff, 0xff, 0xff, 0xff };
    uint8_t          future[40] = { 9 };
    uint8_t          longstr[40] = { 1, 1 };
    uint8_t          empty[1];

    assert_int_equal(store_open(&env->st, env->path, 0, 0, &err), 0);

    test_make_device(&dev, 1);
    assert_int_equal(store_device_enroll(env->st, &dev, "root", &err), 0);

    memset(fp, 0xab, sizeof(fp));
    assert_int_equal(store_view_begin(env->st, &view, &err), 0);
    store_view_end(view);

    /* truncated */
    assert_int_equal(store_test_put_raw(env->st, "devices", fp, sizeof(fp),
                                        garbage, sizeof(garbage), &err), 0);
    assert_int_equal(store_view_begin(env->st, &view, &err), 0);
    assert_int_equal(store_device_get(view, fp, &out, &err), -1);
    store_view_end(view);
    assert_non_null(strstr(err.msg, "corrupt"));

    /* a string length running past the record */
    longstr[26] = 0x7f;
    longstr[27] = 0xff;
    assert_int_equal(store_test_put_raw(env->st, "devices", fp, sizeof(fp),
                                        longstr, sizeof(longstr), &err), 0);
    assert_int_equal(store_view_begin(env->st, &view, &err), 0);
    assert_int_equal(store_device_get(view, fp, &out, &err), -1);
    store_view_end(view);

    /* a record version this build does not know */
    assert_int_equal(store_test_put_raw(env->st, "devices", fp, sizeof(fp),
                                        future, sizeof(future), &err), 0);
    assert_int_equal(store_view_begin(env->st, &view, &err), 0);
    assert_int_equal(store_device_get(view, fp, &out, &err), -1);
    store_view_end(view);
    assert_non_null(strstr(err.msg, "version 9"));

    /* empty value */
    assert_int_equal(store_test_put_raw(env->st, "devices", fp, sizeof(fp),
                                        empty, 0, &err), 0);
    assert_int_equal(store_view_begin(env->st, &view, &err), 0);
    assert_int_equal(store_device_get(view, fp, &out, &err), -1);
    store_view_end(view);

    /* the sound record next to it still reads */
    assert_int_equal(store_view_begin(env->st, &view, &err), 0);
    assert_int_equal(store_device_get(view, dev.fp, &out, &err), 0);
    store_view_end(view);
    store_view_free(view);

    /* listing reports the damage instead of printing garbage */
    memset(&l, 0, sizeof(l));
    assert_int_equal(store_device_list(env->st, test_list_cb, &l, &err),
                     -1);

    /* a key of the wrong size */
    assert_int_equal(store_test_put_raw(env->st, "devices", "short", 5,
                                        garbage, sizeof(garbage), &err), 0);
    assert_int_equal(store_device_find_id(env->st, dev.id, &out, &err), -1);

    /* a damaged audit record */
    assert_int_equal(store_test_put_raw(env->st, "audit",
                                        "\0\0\0\0\0\0\0\x02", 8, garbage,
                                        sizeof(garbage), &err), 0);
    assert_int_equal(store_audit_list(env->st, 1, 0,
                                      test_audit_cb, &(test_audit_t) { 0 },
                                      &err), -1);
    assert_non_null(strstr(err.msg, "audit record 2"));
}


static void
test_make_user(store_user_t *u, const char *name)
{
    memset(u, 0, sizeof(*u));
    snprintf(u->name, sizeof(u->name), "%s", name);
    snprintf(u->display, sizeof(u->display), "User %s", name);
    snprintf(u->groups[0], sizeof(u->groups[0]), "staff");
    snprintf(u->groups[1], sizeof(u->groups[1]), "ops@eu");
    u->ngroups = 2;
}


static void
test_make_session(store_session_t *s, const char *user, unsigned i,
    int64_t expires)
{
    memset(s, 0, sizeof(*s));
    snprintf(s->sid, sizeof(s->sid), "%08x%024x", i, 0xabcu);
    snprintf(s->user, sizeof(s->user), "%s", user);
    snprintf(s->source, sizeof(s->source), "192.0.2.%u", i % 250);
    s->methods = 0x03;
    s->created_at = (int64_t) time(NULL);
    s->mfa_at = s->created_at;
    s->expires_at = expires;

    if (i % 2) {
        memset(s->device_fp, (int) i, sizeof(s->device_fp));
        s->has_device = 1;
    }
}


/* The audit records after seq from, their actions in a. */
static void
test_audit_since(store_t *st, uint64_t from, test_audit_t *a)
{
    store_err_t  err;

    memset(a, 0, sizeof(*a));
    assert_int_equal(store_audit_list(st, from + 1, 0, test_audit_cb, a,
                                      &err), 0);
}


static uint64_t
test_last_seq(store_t *st)
{
    store_err_t  err;
    uint64_t     seq;

    assert_int_equal(store_audit_last_seq(st, &seq, &err), 0);

    return seq;
}


static int
test_user_list_cb(const store_user_t *u, void *arg)
{
    test_names_t  *l = arg;

    if (l->n < 16) {
        snprintf(l->names[l->n], sizeof(l->names[0]), "%s", u->name);
    }

    l->n++;

    return 0;
}


static int
test_session_list_cb(const store_session_t *s, void *arg)
{
    test_names_t  *l = arg;

    if (l->n < 16) {
        snprintf(l->names[l->n], sizeof(l->names[0]), "%s", s->sid);
    }

    l->revoked += s->revoked != 0;
    l->n++;

    return 0;
}


static void
test_user_crud(void **state)
{
    test_env_t     *env = *state;
    store_user_t    u, out;
    store_view_t   *view = NULL;
    store_err_t     err;
    test_names_t    l;
    test_audit_t    a;
    uint64_t        seq;

    assert_int_equal(store_open(&env->st, env->path, 0, 0, &err), 0);

    test_make_user(&u, "alice");
    u.created_at = 12345;   /* ignored: the store sets it */
    assert_int_equal(store_user_create(env->st, &u, "root", &err), 0);

    assert_int_equal(store_user_create(env->st, &u, "root", &err), -1);
    assert_non_null(strstr(err.msg, "already exists"));

    assert_int_equal(store_view_begin(env->st, &view, &err), 0);
    assert_int_equal(store_user_get(view, "alice", &out, &err), 0);
    assert_int_equal(store_user_get(view, "bob", &out, &err),
                     STORE_NOTFOUND);
    assert_int_equal(store_user_get(view, "Bad Name", &out, &err),
                     STORE_NOTFOUND);
    store_view_end(view);
    store_view_free(view);

    assert_string_equal(out.name, "alice");
    assert_string_equal(out.display, "User alice");
    assert_int_equal(out.ngroups, 2);
    assert_string_equal(out.groups[1], "ops@eu");
    assert_string_equal(out.created_by, "root");
    assert_string_equal(out.pwhash, "");
    assert_int_equal(out.totp_state, STORE_TOTP_NONE);
    assert_true(out.created_at > 12345);
    assert_int_equal(out.created_at, out.updated_at);

    /* update: password, TOTP, groups; created_* stay */
    snprintf(out.pwhash, sizeof(out.pwhash), "$scrypt$ln=15,r=8,p=1$x$y");
    out.totp_state = STORE_TOTP_PENDING;
    memset(out.totp_sealed, 0xee, 60);
    out.totp_sealed_len = 60;
    out.totp_algo = 1;
    out.totp_digits = 8;
    out.ngroups = 1;
    out.created_at = 1;
    snprintf(out.created_by, sizeof(out.created_by), "mallory");

    seq = test_last_seq(env->st);
    assert_int_equal(store_user_update(env->st, &out, "admin",
                                       "user.password", "password set",
                                       &err), 0);
    test_audit_since(env->st, seq, &a);
    assert_int_equal(a.n, 1);
    assert_string_equal(a.actions[0], "user.password");

    assert_int_equal(store_user_find(env->st, "alice", &u, &err), 0);
    assert_string_equal(u.pwhash, "$scrypt$ln=15,r=8,p=1$x$y");
    assert_int_equal(u.totp_state, STORE_TOTP_PENDING);
    assert_int_equal(u.totp_sealed_len, 60);
    assert_memory_equal(u.totp_sealed, out.totp_sealed, 60);
    assert_int_equal(u.totp_algo, 1);
    assert_int_equal(u.totp_digits, 8);
    assert_int_equal(u.ngroups, 1);
    assert_string_equal(u.created_by, "root");
    assert_true(u.created_at > 1);

    /* an enrolled authenticator must be complete */
    u.totp_digits = 0;
    assert_int_equal(store_user_update(env->st, &u, "admin", "user.totp",
                                       NULL, &err), -1);

    /* update of a user that does not exist */
    test_make_user(&u, "ghost");
    assert_int_equal(store_user_update(env->st, &u, "admin", "user.groups",
                                       NULL, &err), STORE_NOTFOUND);

    test_make_user(&u, "bob");
    assert_int_equal(store_user_create(env->st, &u, "root", &err), 0);
    test_make_user(&u, "0carol");
    assert_int_equal(store_user_create(env->st, &u, "root", &err), 0);

    memset(&l, 0, sizeof(l));
    assert_int_equal(store_user_list(env->st, test_user_list_cb, &l, &err),
                     0);
    assert_int_equal(l.n, 3);
    assert_string_equal(l.names[0], "0carol");
    assert_string_equal(l.names[1], "alice");
    assert_string_equal(l.names[2], "bob");

    seq = test_last_seq(env->st);
    assert_int_equal(store_user_delete(env->st, "bob", "root", &err), 0);
    assert_int_equal(store_user_delete(env->st, "bob", "root", &err),
                     STORE_NOTFOUND);
    assert_int_equal(store_user_find(env->st, "bob", &u, &err),
                     STORE_NOTFOUND);
    test_audit_since(env->st, seq, &a);
    assert_int_equal(a.n, 1);
    assert_string_equal(a.actions[0], "user.delete");
}


static void
test_user_names(void **state)
{
    test_env_t     *env = *state;
    store_user_t    u;
    store_err_t     err;
    unsigned        i;
    char            name[80];

    static const char  *good[] = { "a", "alice", "a.b-c_d", "9lives",
        "x123456789012345678901234567890123456789012345678901234567890ab" };
    static const char  *bad[] = { "", "Alice", ".alice", "-a", "_a",
        "al ice", "al@ice", "al/ice", "al\nice", "älice", "a\x7f" };

    assert_int_equal(store_open(&env->st, env->path, 0, 0, &err), 0);

    for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        assert_true(store_user_name_ok(good[i]));
        test_make_user(&u, good[i]);
        assert_int_equal(store_user_create(env->st, &u, "root", &err), 0);
    }

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_false(store_user_name_ok(bad[i]));
        test_make_user(&u, bad[i]);
        assert_string_equal(u.name, bad[i]);
        assert_int_equal(store_user_create(env->st, &u, "root", &err), -1);
        assert_non_null(strstr(err.msg, "invalid user name"));
    }

    /* a name filling its field without a NUL */
    test_make_user(&u, "x");
    memset(u.name, 'x', sizeof(u.name));
    assert_int_equal(store_user_create(env->st, &u, "root", &err), -1);
    assert_non_null(strstr(err.msg, "invalid user name"));

    /* groups: '@' allowed, the rest as names */
    assert_false(store_user_name_ok(
        "x1234567890123456789012345678901234567890123456789012345678901ab"));
    assert_true(store_group_name_ok("ops@example.org"));
    assert_false(store_group_name_ok("@ops"));
    assert_false(store_group_name_ok("Ops"));

    test_make_user(&u, "dave");
    snprintf(u.groups[1], sizeof(u.groups[1]), "Bad Group");
    assert_int_equal(store_user_create(env->st, &u, "root", &err), -1);
    assert_non_null(strstr(err.msg, "invalid group name"));

    test_make_user(&u, "dave");
    snprintf(u.groups[1], sizeof(u.groups[1]), "staff");
    assert_int_equal(store_user_create(env->st, &u, "root", &err), -1);
    assert_non_null(strstr(err.msg, "twice"));

    test_make_user(&u, "dave");
    u.ngroups = STORE_MAX_GROUPS + 1;
    assert_int_equal(store_user_create(env->st, &u, "root", &err), -1);

    /* the most groups, all long: the record still fits */
    test_make_user(&u, "dave");
    memset(u.display, 'd', sizeof(u.display) - 1);
    memset(u.pwhash, 'p', sizeof(u.pwhash) - 1);
    u.totp_state = STORE_TOTP_ACTIVE;
    u.totp_sealed_len = sizeof(u.totp_sealed);
    u.totp_digits = 6;
    for (i = 0; i < STORE_MAX_GROUPS; i++) {
        snprintf(name, sizeof(name), "g%02u", i);
        memset(u.groups[i], 'g', STORE_NAME_MAX - 1);
        memcpy(u.groups[i], name, 3);
    }
    u.ngroups = STORE_MAX_GROUPS;
    assert_int_equal(store_user_create(env->st, &u, "root", &err), 0);

    /* control characters in the display name */
    test_make_user(&u, "erin");
    snprintf(u.display, sizeof(u.display), "Erin\x1b[31m");
    assert_int_equal(store_user_create(env->st, &u, "root", &err), -1);
}


static void
test_login_lockout(void **state)
{
    test_env_t     *env = *state;
    store_user_t    u;
    store_err_t     err;
    test_audit_t    a;
    uint64_t        seq;
    int64_t         now;

    assert_int_equal(store_open(&env->st, env->path, 0, 0, &err), 0);
    test_make_user(&u, "alice");
    assert_int_equal(store_user_create(env->st, &u, "root", &err), 0);

    now = 1000000;
    seq = test_last_seq(env->st);

    assert_int_equal(store_login_failed(env->st, "alice", now, 3, 300,
                                        "198.51.100.7", "bad password",
                                        &err), 0);
    assert_int_equal(store_login_failed(env->st, "alice", now + 1, 3, 300,
                                        "198.51.100.7", "bad code", &err),
                     0);
    assert_int_equal(store_user_find(env->st, "alice", &u, &err), 0);
    assert_int_equal(u.failures, 2);
    assert_int_equal(u.locked_until, 0);
    assert_int_equal(u.last_failure, now + 1);

    /* the third reaches the threshold: locked in the same transaction */
    assert_int_equal(store_login_failed(env->st, "alice", now + 2, 3, 300,
                                        "198.51.100.7\n", "bad\x1b code",
                                        &err), 0);
    assert_int_equal(store_user_find(env->st, "alice", &u, &err), 0);
    assert_int_equal(u.failures, 3);
    assert_int_equal(u.locked_until, now + 2 + 300);

    test_audit_since(env->st, seq, &a);
    assert_int_equal(a.n, 4);
    assert_string_equal(a.actions[0], "login.failure");
    assert_string_equal(a.actions[1], "login.failure");
    assert_string_equal(a.actions[2], "login.failure");
    assert_string_equal(a.actions[3], "user.locked");
    assert_true(a.seqs[3] == a.seqs[2] + 1);

    /* failures while locked count but do not extend the lock */
    assert_int_equal(store_login_failed(env->st, "alice", now + 100, 3, 300,
                                        "198.51.100.7", "locked", &err), 0);
    assert_int_equal(store_user_find(env->st, "alice", &u, &err), 0);
    assert_int_equal(u.failures, 4);
    assert_int_equal(u.locked_until, now + 2 + 300);

    /* no success while locked */
    assert_int_equal(store_login_succeeded(env->st, "alice", 0, now + 200,
                                           "198.51.100.7", &err), -1);
    assert_non_null(strstr(err.msg, "locked"));

    /* the lock has passed: the next success unlocks and resets */
    seq = test_last_seq(env->st);
    assert_int_equal(store_login_succeeded(env->st, "alice", 0, now + 400,
                                           "198.51.100.7", &err), 0);
    assert_int_equal(store_user_find(env->st, "alice", &u, &err), 0);
    assert_int_equal(u.failures, 0);
    assert_int_equal(u.locked_until, 0);
    test_audit_since(env->st, seq, &a);
    assert_int_equal(a.n, 1);
    assert_string_equal(a.actions[0], "login.success");

    /* threshold 0 never locks */
    assert_int_equal(store_login_failed(env->st, "alice", now + 500, 0, 300,
                                        "x", "y", &err), 0);
    assert_int_equal(store_user_find(env->st, "alice", &u, &err), 0);
    assert_int_equal(u.locked_until, 0);

    /* unknown and invalid names: recorded, STORE_NOTFOUND */
    seq = test_last_seq(env->st);
    assert_int_equal(store_login_failed(env->st, "mallory", now, 3, 300,
                                        "203.0.113.1", "bad password",
                                        &err), STORE_NOTFOUND);
    assert_int_equal(store_login_failed(env->st, "Robert'); DROP", now, 3,
                                        300, "203.0.113.1", "bad password",
                                        &err), STORE_NOTFOUND);
    test_audit_since(env->st, seq, &a);
    assert_int_equal(a.n, 2);
    assert_string_equal(a.actions[0], "login.failure");
    assert_int_equal(store_user_find(env->st, "mallory", &u, &err),
                     STORE_NOTFOUND);

    /* a disabled user cannot sign in */
    assert_int_equal(store_user_find(env->st, "alice", &u, &err), 0);
    u.disabled = 1;
    assert_int_equal(store_user_update(env->st, &u, "root", "user.disable",
                                       NULL, &err), 0);
    assert_int_equal(store_login_succeeded(env->st, "alice", 0, now + 600,
                                           "x", &err), -1);
    assert_non_null(strstr(err.msg, "disabled"));
    assert_int_equal(store_login_succeeded(env->st, "nobody", 0, now, "x",
                                           &err), STORE_NOTFOUND);
}


static void
test_login_replay(void **state)
{
    test_env_t     *env = *state;
    store_user_t    u, stale;
    store_err_t     err;
    uint64_t        seq;
    int64_t         now;

    assert_int_equal(store_open(&env->st, env->path, 0, 0, &err), 0);
    test_make_user(&u, "alice");
    u.totp_state = STORE_TOTP_ACTIVE;
    memset(u.totp_sealed, 0x55, 50);
    u.totp_sealed_len = 50;
    u.totp_digits = 6;
    assert_int_equal(store_user_create(env->st, &u, "root", &err), 0);

    now = (int64_t) time(NULL);

    assert_int_equal(store_user_find(env->st, "alice", &stale, &err), 0);

    assert_int_equal(store_login_failed(env->st, "alice", now, 5, 300, "x",
                                        "bad code", &err), 0);
    assert_int_equal(store_login_succeeded(env->st, "alice", 1000, now, "x",
                                           &err), 0);
    assert_int_equal(store_user_find(env->st, "alice", &u, &err), 0);
    assert_true(u.totp_last_counter == 1000);
    assert_int_equal(u.failures, 0);

    /* the same counter again, and an older one: refused, nothing written */
    seq = test_last_seq(env->st);
    assert_int_equal(store_login_succeeded(env->st, "alice", 1000, now, "x",
                                           &err), STORE_REPLAY);
    assert_non_null(strstr(err.msg, "already used"));
    assert_int_equal(store_login_succeeded(env->st, "alice", 999, now, "x",
                                           &err), STORE_REPLAY);
    assert_true(test_last_seq(env->st) == seq);

    /* a later one passes; no TOTP (counter 0) leaves the counter alone */
    assert_int_equal(store_login_succeeded(env->st, "alice", 1001, now, "x",
                                           &err), 0);
    assert_int_equal(store_login_succeeded(env->st, "alice", 0, now, "x",
                                           &err), 0);
    assert_int_equal(store_user_find(env->st, "alice", &u, &err), 0);
    assert_true(u.totp_last_counter == 1001);

    /* an update from a copy read before the sign-in keeps the counter */
    snprintf(stale.groups[0], sizeof(stale.groups[0]), "admins");
    assert_int_equal(store_user_update(env->st, &stale, "root",
                                       "user.groups", "admins,ops@eu",
                                       &err), 0);
    assert_int_equal(store_user_find(env->st, "alice", &u, &err), 0);
    assert_true(u.totp_last_counter == 1001);
    assert_string_equal(u.groups[0], "admins");
    assert_int_equal(store_login_succeeded(env->st, "alice", 1001, now, "x",
                                           &err), STORE_REPLAY);

    /* a new secret starts over */
    memset(u.totp_sealed, 0x66, 50);
    u.totp_last_counter = 7;
    assert_int_equal(store_user_update(env->st, &u, "root", "user.totp",
                                       NULL, &err), 0);
    assert_int_equal(store_user_find(env->st, "alice", &u, &err), 0);
    assert_true(u.totp_last_counter == 7);
}


static void
test_sessions(void **state)
{
    test_env_t        *env = *state;
    store_user_t       u;
    store_session_t    s, out;
    store_view_t      *view = NULL;
    store_err_t        err;
    test_names_t       l;
    test_audit_t       a;
    const char        *sids[6];
    char               sidbuf[4][STORE_SID_LEN + 1];
    uint64_t           seq;
    unsigned           i, n;
    int64_t            now;

    assert_int_equal(store_open(&env->st, env->path, 0, 0, &err), 0);
    test_make_user(&u, "alice");
    assert_int_equal(store_user_create(env->st, &u, "root", &err), 0);
    test_make_user(&u, "bob");
    assert_int_equal(store_user_create(env->st, &u, "root", &err), 0);

    now = (int64_t) time(NULL);

    for (i = 1; i <= 4; i++) {
        test_make_session(&s, i <= 3 ? "alice" : "bob", i, now + 3600);
        snprintf(sidbuf[i - 1], sizeof(sidbuf[0]), "%s", s.sid);
        assert_int_equal(store_session_create(env->st, &s, &err), 0);
    }

    /* refused: existing sid, unknown user, bad sid, no expiry */
    test_make_session(&s, "alice", 1, now + 3600);
    assert_int_equal(store_session_create(env->st, &s, &err), -1);
    assert_non_null(strstr(err.msg, "already exists"));
    test_make_session(&s, "nobody", 9, now + 3600);
    assert_int_equal(store_session_create(env->st, &s, &err), -1);
    assert_non_null(strstr(err.msg, "no user"));
    test_make_session(&s, "alice", 9, now + 3600);
    s.sid[0] = 'X';
    assert_int_equal(store_session_create(env->st, &s, &err), -1);
    test_make_session(&s, "alice", 9, 0);
    assert_int_equal(store_session_create(env->st, &s, &err), -1);

    /* hot-path read in a view */
    assert_int_equal(store_view_begin(env->st, &view, &err), 0);
    assert_int_equal(store_session_get(view, sidbuf[0], &out, &err), 0);
    assert_int_equal(store_session_get(view, "00000000000000000000000000000000",
                                       &s, &err), STORE_NOTFOUND);
    assert_int_equal(store_session_get(view, "short", &s, &err),
                     STORE_NOTFOUND);
    store_view_end(view);
    store_view_free(view);

    test_make_session(&s, "alice", 1, now + 3600);
    assert_string_equal(out.sid, sidbuf[0]);
    assert_string_equal(out.user, "alice");
    assert_int_equal(out.has_device, 1);
    assert_memory_equal(out.device_fp, s.device_fp, STORE_FP_LEN);
    assert_int_equal(out.methods, 0x03);
    assert_true(out.expires_at == now + 3600);
    assert_true(out.last_seen == out.created_at);
    assert_string_equal(out.source, "192.0.2.1");
    assert_int_equal(out.revoked, 0);

    assert_int_equal(store_session_find(env->st, sidbuf[1], &out, &err), 0);
    assert_int_equal(out.has_device, 0);

    /* touch: one transaction for many; unknown and bad sids skipped */
    seq = test_last_seq(env->st);
    sids[0] = sidbuf[0];
    sids[1] = "ffffffffffffffffffffffffffffffff";
    sids[2] = sidbuf[1];
    sids[3] = "not a sid";
    sids[4] = NULL;
    sids[5] = sidbuf[3];
    assert_int_equal(store_session_touch(env->st, sids, 6, now + 60, &err),
                     0);
    assert_int_equal(store_session_touch(env->st, sids, 0, now + 60, &err),
                     0);
    assert_true(test_last_seq(env->st) == seq);

    for (i = 0; i < 4; i++) {
        assert_int_equal(store_session_find(env->st, sidbuf[i], &out, &err),
                         0);
        assert_true(out.last_seen == (i == 2 ? out.created_at : now + 60));
    }

    /* last_seen never goes back */
    assert_int_equal(store_session_touch(env->st, sids, 1, now + 30, &err),
                     0);
    assert_int_equal(store_session_find(env->st, sidbuf[0], &out, &err), 0);
    assert_true(out.last_seen == now + 60);

    /* step-up */
    assert_int_equal(store_session_mfa(env->st, sidbuf[1], 0x04, now + 90,
                                       &err), 0);
    assert_int_equal(store_session_find(env->st, sidbuf[1], &out, &err), 0);
    assert_int_equal(out.methods, 0x07);
    assert_true(out.mfa_at == now + 90);
    assert_int_equal(store_session_mfa(env->st,
                                       "ffffffffffffffffffffffffffffffff",
                                       0x04, now, &err), STORE_NOTFOUND);

    /* revoke one */
    seq = test_last_seq(env->st);
    assert_int_equal(store_session_revoke(env->st, sidbuf[0], "root", &err),
                     0);
    test_audit_since(env->st, seq, &a);
    assert_int_equal(a.n, 1);
    assert_string_equal(a.actions[0], "session.revoke");
    assert_int_equal(store_session_find(env->st, sidbuf[0], &out, &err), 0);
    assert_int_equal(out.revoked, 1);
    assert_true(out.revoked_at > 0);

    /* again: nothing to do */
    seq = test_last_seq(env->st);
    assert_int_equal(store_session_revoke(env->st, sidbuf[0], "root", &err),
                     0);
    assert_true(test_last_seq(env->st) == seq);
    assert_int_equal(store_session_revoke(env->st,
                                          "ffffffffffffffffffffffffffffffff",
                                          "root", &err), STORE_NOTFOUND);

    /* touching and step-up skip/refuse a revoked session */
    assert_int_equal(store_session_touch(env->st, sids, 1, now + 120, &err),
                     0);
    assert_int_equal(store_session_find(env->st, sidbuf[0], &out, &err), 0);
    assert_true(out.last_seen == now + 60);
    assert_int_equal(store_session_mfa(env->st, sidbuf[0], 0x04, now, &err),
                     -1);

    /* list, all and per user */
    memset(&l, 0, sizeof(l));
    assert_int_equal(store_session_list(env->st, NULL, test_session_list_cb,
                                        &l, &err), 0);
    assert_int_equal(l.n, 4);
    assert_int_equal(l.revoked, 1);
    assert_string_equal(l.names[0], sidbuf[0]);
    memset(&l, 0, sizeof(l));
    assert_int_equal(store_session_list(env->st, "bob", test_session_list_cb,
                                        &l, &err), 0);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.names[0], sidbuf[3]);

    /* revoke all of alice's: the two still live, one audit record */
    seq = test_last_seq(env->st);
    assert_int_equal(store_session_revoke_user(env->st, "alice", "root", &n,
                                               &err), 0);
    assert_int_equal(n, 2);
    test_audit_since(env->st, seq, &a);
    assert_int_equal(a.n, 1);
    assert_string_equal(a.actions[0], "session.revoke");
    assert_int_equal(store_session_revoke_user(env->st, "alice", "root", &n,
                                               &err), 0);
    assert_int_equal(n, 0);
    assert_int_equal(store_session_find(env->st, sidbuf[3], &out, &err), 0);
    assert_int_equal(out.revoked, 0);

    /* purge: the revoked ones (revoked before now + 10); bob's stays */
    assert_int_equal(store_session_purge(env->st, now - 10, &n, &err), 0);
    assert_int_equal(n, 0);
    seq = test_last_seq(env->st);
    assert_int_equal(store_session_purge(env->st, now + 10, &n, &err), 0);
    assert_int_equal(n, 3);
    test_audit_since(env->st, seq, &a);
    assert_int_equal(a.n, 1);
    assert_string_equal(a.actions[0], "session.purge");
    memset(&l, 0, sizeof(l));
    assert_int_equal(store_session_list(env->st, NULL, test_session_list_cb,
                                        &l, &err), 0);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.names[0], sidbuf[3]);

    /* and expired ones, several in a row */
    for (i = 10; i < 20; i++) {
        test_make_session(&s, "bob", i, now + (i % 3 == 0 ? 7200 : 100));
        assert_int_equal(store_session_create(env->st, &s, &err), 0);
    }
    assert_int_equal(store_session_purge(env->st, now + 1000, &n, &err), 0);
    assert_int_equal(n, 7);
    memset(&l, 0, sizeof(l));
    assert_int_equal(store_session_list(env->st, NULL, test_session_list_cb,
                                        &l, &err), 0);
    assert_int_equal(l.n, 4);

    /* a disabled user gets no new session */
    assert_int_equal(store_user_find(env->st, "bob", &u, &err), 0);
    u.disabled = 1;
    assert_int_equal(store_user_update_revoke(env->st, &u, "root",
                                              "user.disable", NULL, &n,
                                              &err), 0);
    assert_int_equal(n, 4);
    test_make_session(&s, "bob", 30, now + 3600);
    assert_int_equal(store_session_create(env->st, &s, &err), -1);
    assert_non_null(strstr(err.msg, "disabled"));
}


static void
test_user_delete_sessions(void **state)
{
    test_env_t        *env = *state;
    store_user_t       u;
    store_session_t    s, out;
    store_err_t        err;
    test_audit_t       a;
    uint64_t           seq;
    unsigned           i;
    int64_t            now;

    assert_int_equal(store_open(&env->st, env->path, 0, 0, &err), 0);
    test_make_user(&u, "alice");
    assert_int_equal(store_user_create(env->st, &u, "root", &err), 0);
    test_make_user(&u, "bob");
    assert_int_equal(store_user_create(env->st, &u, "root", &err), 0);

    now = (int64_t) time(NULL);

    for (i = 1; i <= 5; i++) {
        test_make_session(&s, i == 3 ? "bob" : "alice", i, now + 3600);
        assert_int_equal(store_session_create(env->st, &s, &err), 0);
    }

    seq = test_last_seq(env->st);
    assert_int_equal(store_user_delete(env->st, "alice", "root", &err), 0);

    /* one transaction: one audit record for the user and the sessions */
    test_audit_since(env->st, seq, &a);
    assert_int_equal(a.n, 1);
    assert_string_equal(a.actions[0], "user.delete");

    for (i = 1; i <= 5; i++) {
        test_make_session(&s, "x", i, 0);
        assert_int_equal(store_session_find(env->st, s.sid, &out, &err), 0);
        assert_int_equal(out.revoked, i != 3);
    }

    /* no new session for the deleted user */
    test_make_session(&s, "alice", 8, now + 3600);
    assert_int_equal(store_session_create(env->st, &s, &err), -1);
}


static void
test_migrate_v1(void **state)
{
    test_env_t      *env = *state;
    store_device_t   dev, out;
    store_user_t     u;
    store_view_t    *view = NULL;
    store_err_t      err;
    test_names_t     l;
    test_audit_t     a;
    uint64_t         seq;
    uint8_t          v2[4] = { 0, 0, 0, 2 };

    assert_int_equal(store_open(&env->st, env->path, 0, 0, &err), 0);
    test_make_device(&dev, 1);
    assert_int_equal(store_device_enroll(env->st, &dev, "root", &err), 0);
    assert_int_equal(store_test_make_v1(env->st, &err), 0);
    store_close(env->st);
    env->st = NULL;

    /* read-only: the old schema's view (devices, no users) */
    assert_int_equal(store_open(&env->st, env->path, 0, STORE_RDONLY,
                                &err), 0);
    assert_int_equal(store_user_find(env->st, "alice", &u, &err),
                     STORE_NOTFOUND);
    memset(&l, 0, sizeof(l));
    assert_int_equal(store_user_list(env->st, test_user_list_cb, &l, &err),
                     0);
    assert_int_equal(l.n, 0);
    assert_int_equal(store_session_list(env->st, NULL, test_session_list_cb,
                                        &l, &err), 0);
    assert_int_equal(store_view_begin(env->st, &view, &err), 0);
    assert_int_equal(store_user_get(view, "alice", &u, &err),
                     STORE_NOTFOUND);
    assert_int_equal(store_device_get(view, dev.fp, &out, &err), 0);
    store_view_free(view);
    view = NULL;
    seq = test_last_seq(env->st);
    store_close(env->st);
    env->st = NULL;

    /* with write access it migrates, in one transaction with its audit */
    assert_int_equal(store_open(&env->st, env->path, 0, 0, &err), 0);
    test_audit_since(env->st, seq, &a);
    assert_int_equal(a.n, 1);
    assert_string_equal(a.actions[0], "store.migrate");

    test_make_user(&u, "alice");
    assert_int_equal(store_user_create(env->st, &u, "root", &err), 0);
    assert_int_equal(store_device_find_id(env->st, dev.id, &out, &err), 0);
    store_close(env->st);
    env->st = NULL;

    /* opened again: no second migration */
    assert_int_equal(store_open(&env->st, env->path, 0, 0, &err), 0);
    seq = test_last_seq(env->st);
    store_close(env->st);
    env->st = NULL;
    assert_int_equal(store_open(&env->st, env->path, 0, STORE_RDONLY, &err),
                     0);
    assert_true(test_last_seq(env->st) == seq);
    assert_int_equal(store_user_find(env->st, "alice", &u, &err), 0);
    store_close(env->st);
    env->st = NULL;

    /* version 2 recorded but its databases missing: damage, not a fresh db */
    assert_int_equal(store_open(&env->st, env->path, 0, 0, &err), 0);
    assert_int_equal(store_test_make_v1(env->st, &err), 0);
    assert_int_equal(store_test_put_raw(env->st, "meta", "schema_version",
                                        14, v2, sizeof(v2), &err), 0);
    store_close(env->st);
    env->st = NULL;
    assert_int_equal(store_open(&env->st, env->path, 0, 0, &err), -1);
    assert_non_null(strstr(err.msg, "damaged"));
    assert_int_equal(store_open(&env->st, env->path, 0, STORE_RDONLY, &err),
                     -1);
}


static void
test_identity_map_full(void **state)
{
    test_env_t        *env = *state;
    store_user_t       u;
    store_session_t    s;
    store_err_t        err;
    test_names_t       l;
    char               name[32];
    unsigned           i, ok;
    int                rc;

    assert_int_equal(store_open(&env->st, env->path, 128 * 1024, 0, &err),
                     0);

    ok = 0;
    rc = 0;

    for (i = 0; i < 100000; i++) {
        snprintf(name, sizeof(name), "user%05u", i);
        test_make_user(&u, name);
        memset(u.display, 'd', sizeof(u.display) - 1);
        memset(u.pwhash, 'p', sizeof(u.pwhash) - 1);

        rc = store_user_create(env->st, &u, "root", &err);
        if (rc != 0) {
            break;
        }

        ok++;
    }

    assert_int_equal(rc, -1);
    assert_true(ok > 5);
    assert_non_null(strstr(err.msg, "store is full (map size 128 KiB); "
                           "raise store_map_size"));

    memset(&l, 0, sizeof(l));
    assert_int_equal(store_user_list(env->st, test_user_list_cb, &l, &err),
                     0);
    assert_int_equal(l.n, ok);
    assert_int_equal(store_user_find(env->st, "user00000", &u, &err), 0);
    assert_int_equal(strlen(u.pwhash), sizeof(u.pwhash) - 1);

    /* sessions fail the same way, and touch/revoke leave no half-state */
    test_make_session(&s, "user00000", 1, (int64_t) time(NULL) + 60);
    rc = store_session_create(env->st, &s, &err);
    if (rc != 0) {
        assert_non_null(strstr(err.msg, "store is full"));
    }

    assert_int_equal(store_user_find(env->st, "user00001", &u, &err), 0);
}


static void
test_corrupt_identity(void **state)
{
    test_env_t        *env = *state;
    store_user_t       u;
    store_session_t    s;
    store_err_t        err;
    test_names_t       l;
    uint8_t            garbage[9] = { 1, 0, 0, 6, 0, 0xff, 0xff, 0xff, 0 };
    uint8_t            future[60] = { 7 };

    assert_int_equal(store_open(&env->st, env->path, 0, 0, &err), 0);
    test_make_user(&u, "alice");
    assert_int_equal(store_user_create(env->st, &u, "root", &err), 0);

    assert_int_equal(store_test_put_raw(env->st, "users", "bob", 3, garbage,
                                        sizeof(garbage), &err), 0);
    assert_int_equal(store_user_find(env->st, "bob", &u, &err), -1);
    assert_non_null(strstr(err.msg, "corrupt"));

    assert_int_equal(store_test_put_raw(env->st, "users", "carol", 5, future,
                                        sizeof(future), &err), 0);
    assert_int_equal(store_user_find(env->st, "carol", &u, &err), -1);
    assert_non_null(strstr(err.msg, "version 7"));

    memset(&l, 0, sizeof(l));
    assert_int_equal(store_user_list(env->st, test_user_list_cb, &l, &err),
                     -1);

    assert_int_equal(store_test_put_raw(env->st, "sessions",
                                        "0123456789abcdef0123456789abcdef",
                                        STORE_SID_LEN, garbage,
                                        sizeof(garbage), &err), 0);
    assert_int_equal(store_session_find(env->st,
                                        "0123456789abcdef0123456789abcdef",
                                        &s, &err), -1);
    assert_non_null(strstr(err.msg, "corrupt"));

    /* the sound record still reads */
    assert_int_equal(store_user_find(env->st, "alice", &u, &err), 0);
}


/* ---- device posture ------------------------------------------------- */


static void
test_make_posture(store_posture_t *p, const char *os)
{
    memset(p, 0, sizeof(*p));
    snprintf(p->os, sizeof(p->os), "%s", os);
    snprintf(p->os_version, sizeof(p->os_version), "12.8");
    p->patch_time = 1732400000;
    p->disk_encrypted = STORE_FLAG_TRUE;
    p->firewall = STORE_FLAG_FALSE;
    p->screen_lock = STORE_FLAG_UNREPORTED;
    p->endpoint_protection = STORE_FLAG_TRUE;
    p->reported_at = 1732450000;
    snprintf(p->source, sizeof(p->source), "agent");
}


static void
test_posture_put_get(void **state)
{
    test_env_t       *env = *state;
    store_device_t    a, b;
    store_posture_t   p, out;
    store_view_t     *view = NULL;
    store_err_t       err;
    test_audit_t      au;
    uint64_t          seq;
    int64_t           before;

    assert_int_equal(store_open(&env->st, env->path, 0, 0, &err), 0);
    test_make_device(&a, 1);
    test_make_device(&b, 2);
    assert_int_equal(store_device_enroll(env->st, &a, "root", &err), 0);
    assert_int_equal(store_device_enroll(env->st, &b, "root", &err), 0);

    /* nothing reported yet */
    assert_int_equal(store_posture_find(env->st, a.fp, &out, &err),
                     STORE_NOTFOUND);

    seq = test_last_seq(env->st);
    before = (int64_t) time(NULL);
    test_make_posture(&p, "debian");
    memcpy(p.fp, b.fp, STORE_FP_LEN);   /* ignored: the fp argument rules */
    assert_int_equal(store_posture_put(env->st, a.fp, &p, "agent", &err),
                     0);

    assert_int_equal(store_view_begin(env->st, &view, &err), 0);
    assert_int_equal(store_posture_get(view, a.fp, &out, &err), 0);
    assert_int_equal(store_posture_get(view, b.fp, &out, &err),
                     STORE_NOTFOUND);
    store_view_end(view);

    assert_int_equal(store_posture_find(env->st, a.fp, &out, &err), 0);
    assert_memory_equal(out.fp, a.fp, STORE_FP_LEN);
    assert_string_equal(out.os, "debian");
    assert_string_equal(out.os_version, "12.8");
    assert_true(out.patch_time == 1732400000);
    assert_true(out.reported_at == 1732450000);
    assert_true(out.received_at >= before);
    assert_int_equal(out.disk_encrypted, STORE_FLAG_TRUE);
    assert_int_equal(out.firewall, STORE_FLAG_FALSE);
    assert_int_equal(out.screen_lock, STORE_FLAG_UNREPORTED);
    assert_int_equal(out.endpoint_protection, STORE_FLAG_TRUE);
    assert_string_equal(out.source, "agent");

    test_audit_since(env->st, seq, &au);
    assert_int_equal(au.n, 1);
    assert_string_equal(au.actions[0], "device.posture");

    /* a later report replaces the whole record */
    test_make_posture(&p, "fedora");
    p.disk_encrypted = STORE_FLAG_UNREPORTED;
    p.received_at = 1800000000;
    assert_int_equal(store_posture_put(env->st, a.fp, &p, "agent", &err),
                     0);
    assert_int_equal(store_posture_find(env->st, a.fp, &out, &err), 0);
    assert_string_equal(out.os, "fedora");
    assert_int_equal(out.disk_encrypted, STORE_FLAG_UNREPORTED);
    assert_true(out.received_at == 1800000000);

    /* the device record is untouched by posture */
    assert_int_equal(store_view_begin(env->st, &view, &err), 0);
    {
        store_device_t  d;

        assert_int_equal(store_device_get(view, a.fp, &d, &err), 0);
        assert_true(d.updated_at == a.updated_at || d.updated_at >= before);
        assert_string_equal(d.owner, a.owner);
    }
    store_view_free(view);
}


static void
test_posture_refused(void **state)
{
    test_env_t       *env = *state;
    store_device_t    a, ghost;
    store_posture_t   p, out;
    store_err_t       err;
    uint64_t          seq;

    assert_int_equal(store_open(&env->st, env->path, 0, 0, &err), 0);
    test_make_device(&a, 1);
    test_make_device(&ghost, 9);
    assert_int_equal(store_device_enroll(env->st, &a, "root", &err), 0);
    seq = test_last_seq(env->st);

    test_make_posture(&p, "debian");
    assert_int_equal(store_posture_put(env->st, ghost.fp, &p, "agent",
                                       &err), STORE_NOTFOUND);

    /* bad text, flags, source, times */
    snprintf(p.os, sizeof(p.os), "deb\nian");
    assert_int_equal(store_posture_put(env->st, a.fp, &p, "agent", &err),
                     -1);
    assert_non_null(strstr(err.msg, "os"));

    /* not NUL-terminated within its field */
    test_make_posture(&p, "debian");
    memset(p.os_version, 'x', sizeof(p.os_version));
    assert_int_equal(store_posture_put(env->st, a.fp, &p, "agent", &err),
                     -1);

    test_make_posture(&p, "debian");
    p.firewall = (store_flag_t) 7;
    assert_int_equal(store_posture_put(env->st, a.fp, &p, "agent", &err),
                     -1);

    test_make_posture(&p, "debian");
    p.source[0] = '\0';
    assert_int_equal(store_posture_put(env->st, a.fp, &p, "agent", &err),
                     -1);

    test_make_posture(&p, "debian");
    p.patch_time = -5;
    assert_int_equal(store_posture_put(env->st, a.fp, &p, "agent", &err),
                     -1);

    /* a revoked device reports nothing */
    assert_int_equal(store_device_set_status(env->st, a.fp,
                                             STORE_DEVICE_REVOKED, "root",
                                             NULL, &err), 0);
    seq = test_last_seq(env->st);
    test_make_posture(&p, "debian");
    assert_int_equal(store_posture_put(env->st, a.fp, &p, "agent", &err),
                     -1);
    assert_non_null(strstr(err.msg, "revoked"));

    assert_int_equal(store_posture_find(env->st, a.fp, &out, &err),
                     STORE_NOTFOUND);
    assert_true(test_last_seq(env->st) == seq);

    /* read-only stores refuse writes */
    store_close(env->st);
    env->st = NULL;
    assert_int_equal(store_open(&env->st, env->path, 0, STORE_RDONLY,
                                &err), 0);
    assert_int_equal(store_posture_put(env->st, a.fp, &p, "agent", &err),
                     -1);
    assert_int_equal(store_posture_import(env->st, &p, 1, "root", &err),
                     -1);
}


static void
test_posture_import_atomic(void **state)
{
    test_env_t       *env = *state;
    store_device_t    d[3], ghost;
    store_posture_t   rows[3], out;
    store_err_t       err;
    test_audit_t      au;
    uint64_t          seq;
    unsigned          i;

    assert_int_equal(store_open(&env->st, env->path, 0, 0, &err), 0);

    for (i = 0; i < 3; i++) {
        test_make_device(&d[i], i + 1);
        assert_int_equal(store_device_enroll(env->st, &d[i], "root", &err),
                         0);
        test_make_posture(&rows[i], "windows");
        memcpy(rows[i].fp, d[i].fp, STORE_FP_LEN);
        snprintf(rows[i].source, sizeof(rows[i].source), "mdm:root");
    }

    /* the last row names a device that is not enrolled: nothing at all */
    test_make_device(&ghost, 77);
    memcpy(rows[2].fp, ghost.fp, STORE_FP_LEN);
    seq = test_last_seq(env->st);

    assert_int_equal(store_posture_import(env->st, rows, 3, "root", &err),
                     -1);
    assert_non_null(strstr(err.msg, "row 3:"));
    assert_true(test_last_seq(env->st) == seq);

    for (i = 0; i < 3; i++) {
        assert_int_equal(store_posture_find(env->st, d[i].fp, &out, &err),
                         STORE_NOTFOUND);
    }

    /* a bad value in the middle row: also nothing */
    memcpy(rows[2].fp, d[2].fp, STORE_FP_LEN);
    rows[1].screen_lock = (store_flag_t) 9;
    assert_int_equal(store_posture_import(env->st, rows, 3, "root", &err),
                     -1);
    assert_non_null(strstr(err.msg, "row 2:"));
    assert_int_equal(store_posture_find(env->st, d[0].fp, &out, &err),
                     STORE_NOTFOUND);

    /* all good: all in, one audit record per row */
    rows[1].screen_lock = STORE_FLAG_TRUE;
    assert_int_equal(store_posture_import(env->st, rows, 3, "root", &err),
                     0);
    test_audit_since(env->st, seq, &au);
    assert_int_equal(au.n, 3);

    for (i = 0; i < 3; i++) {
        assert_string_equal(au.actions[i], "device.posture");
        assert_int_equal(store_posture_find(env->st, d[i].fp, &out, &err),
                         0);
        assert_string_equal(out.os, "windows");
        assert_string_equal(out.source, "mdm:root");
    }

    /* nothing to import writes nothing */
    seq = test_last_seq(env->st);
    assert_int_equal(store_posture_import(env->st, rows, 0, "root", &err),
                     0);
    assert_true(test_last_seq(env->st) == seq);
}


static void
test_posture_migrate_v2(void **state)
{
    test_env_t       *env = *state;
    store_device_t   dev;
    store_posture_t  p, out;
    store_user_t     u;
    store_view_t    *view = NULL;
    store_err_t      err;
    test_audit_t     a;
    uint64_t         seq;
    uint8_t          v3[4] = { 0, 0, 0, 3 };

    assert_int_equal(store_open(&env->st, env->path, 0, 0, &err), 0);
    test_make_device(&dev, 1);
    assert_int_equal(store_device_enroll(env->st, &dev, "root", &err), 0);
    test_make_user(&u, "alice");
    assert_int_equal(store_user_create(env->st, &u, "root", &err), 0);
    assert_int_equal(store_test_make_v2(env->st, &err), 0);
    store_close(env->st);
    env->st = NULL;

    /* read-only: users are there, posture is not (yet) */
    assert_int_equal(store_open(&env->st, env->path, 0, STORE_RDONLY,
                                &err), 0);
    assert_int_equal(store_user_find(env->st, "alice", &u, &err), 0);
    assert_int_equal(store_posture_find(env->st, dev.fp, &out, &err),
                     STORE_NOTFOUND);
    assert_int_equal(store_view_begin(env->st, &view, &err), 0);
    assert_int_equal(store_posture_get(view, dev.fp, &out, &err),
                     STORE_NOTFOUND);
    store_view_free(view);
    seq = test_last_seq(env->st);
    store_close(env->st);
    env->st = NULL;

    /* a writer migrates 2 -> 3 with its audit record */
    assert_int_equal(store_open(&env->st, env->path, 0, 0, &err), 0);
    test_audit_since(env->st, seq, &a);
    assert_int_equal(a.n, 1);
    assert_string_equal(a.actions[0], "store.migrate");
    assert_int_equal(store_user_find(env->st, "alice", &u, &err), 0);
    test_make_posture(&p, "debian");
    assert_int_equal(store_posture_put(env->st, dev.fp, &p, "agent", &err),
                     0);
    store_close(env->st);
    env->st = NULL;

    /* 1 -> 3 in one step too */
    assert_int_equal(store_open(&env->st, env->path, 0, 0, &err), 0);
    assert_int_equal(store_test_make_v1(env->st, &err), 0);
    store_close(env->st);
    env->st = NULL;
    assert_int_equal(store_open(&env->st, env->path, 0, 0, &err), 0);
    assert_int_equal(store_posture_find(env->st, dev.fp, &out, &err),
                     STORE_NOTFOUND);
    assert_int_equal(store_posture_put(env->st, dev.fp, &p, "agent", &err),
                     0);
    store_close(env->st);
    env->st = NULL;

    /* version 3 recorded without its posture database: damage */
    assert_int_equal(store_open(&env->st, env->path, 0, 0, &err), 0);
    assert_int_equal(store_test_make_v2(env->st, &err), 0);
    assert_int_equal(store_test_put_raw(env->st, "meta", "schema_version",
                                        14, v3, sizeof(v3), &err), 0);
    store_close(env->st);
    env->st = NULL;
    assert_int_equal(store_open(&env->st, env->path, 0, 0, &err), -1);
    assert_non_null(strstr(err.msg, "damaged"));
}


static void
test_posture_corrupt(void **state)
{
    test_env_t       *env = *state;
    store_device_t    dev;
    store_posture_t   out;
    store_err_t       err;
    uint8_t           bad_flag[] = { 1, 3, 0, 0, 0 };
    uint8_t           bad_version[] = { 9 };

    assert_int_equal(store_open(&env->st, env->path, 0, 0, &err), 0);
    test_make_device(&dev, 1);
    assert_int_equal(store_device_enroll(env->st, &dev, "root", &err), 0);

    assert_int_equal(store_test_put_raw(env->st, "posture", dev.fp,
                                        STORE_FP_LEN, bad_flag,
                                        sizeof(bad_flag), &err), 0);
    assert_int_equal(store_posture_find(env->st, dev.fp, &out, &err), -1);
    assert_non_null(strstr(err.msg, "corrupt"));

    assert_int_equal(store_test_put_raw(env->st, "posture", dev.fp,
                                        STORE_FP_LEN, bad_version,
                                        sizeof(bad_version), &err), 0);
    assert_int_equal(store_posture_find(env->st, dev.fp, &out, &err), -1);
    assert_non_null(strstr(err.msg, "version 9"));
}


static void
test_device_set_owner(void **state)
{
    test_env_t       *env = *state;
    store_device_t    dev, other, out;
    store_session_t   s1, s2, s3, got;
    store_user_t      u;
    store_err_t       err;
    test_audit_t      au;
    uint64_t          seq;

    assert_int_equal(store_open(&env->st, env->path, 0, 0, &err), 0);
    test_make_device(&dev, 1);
    test_make_device(&other, 2);
    assert_int_equal(store_device_enroll(env->st, &dev, "root", &err), 0);
    assert_int_equal(store_device_enroll(env->st, &other, "root", &err), 0);
    test_make_user(&u, "alice");
    assert_int_equal(store_user_create(env->st, &u, "root", &err), 0);
    test_make_user(&u, "bob");
    assert_int_equal(store_user_create(env->st, &u, "root", &err), 0);

    /* alice on the device, bob on it too, alice on another device */
    test_make_session(&s1, "alice", 1, (int64_t) time(NULL) + 3600);
    memcpy(s1.device_fp, dev.fp, STORE_FP_LEN);
    test_make_session(&s2, "bob", 2, (int64_t) time(NULL) + 3600);
    memcpy(s2.device_fp, dev.fp, STORE_FP_LEN);
    s2.has_device = 1;
    test_make_session(&s3, "alice", 3, (int64_t) time(NULL) + 3600);
    memcpy(s3.device_fp, other.fp, STORE_FP_LEN);
    assert_int_equal(store_session_create(env->st, &s1, &err), 0);
    assert_int_equal(store_session_create(env->st, &s2, &err), 0);
    assert_int_equal(store_session_create(env->st, &s3, &err), 0);
    seq = test_last_seq(env->st);

    assert_int_equal(store_device_set_owner(env->st, dev.fp, "bob", "root",
                                            &err), 0);
    assert_int_equal(store_device_find_id(env->st, dev.id, &out, &err), 0);
    assert_string_equal(out.owner, "bob");
    assert_int_equal(out.status, STORE_DEVICE_ACTIVE);

    /* alice's session on the device ends; bob's and the other stay */
    assert_int_equal(store_session_find(env->st, s1.sid, &got, &err), 0);
    assert_int_equal(got.revoked, 1);
    assert_int_equal(store_session_find(env->st, s2.sid, &got, &err), 0);
    assert_int_equal(got.revoked, 0);
    assert_int_equal(store_session_find(env->st, s3.sid, &got, &err), 0);
    assert_int_equal(got.revoked, 0);

    test_audit_since(env->st, seq, &au);
    assert_int_equal(au.n, 1);
    assert_string_equal(au.actions[0], "device.reassign");

    assert_int_equal(store_device_set_owner(env->st, (uint8_t [32]) { 0 },
                                            "bob", "root", &err),
                     STORE_NOTFOUND);
    assert_int_equal(store_device_set_owner(env->st, dev.fp, "", "root",
                                            &err), -1);
    assert_int_equal(store_device_set_owner(env->st, dev.fp, "b\tob",
                                            "root", &err), -1);
}


/* The decision thread's device cache answers as the store does, and any
 * change to a device (here, in another handle as ztctl would) is seen. */
static void
test_device_cache(void **state)
{
    test_env_t        *env = *state;
    store_t           *other = NULL;
    store_view_t      *view = NULL;
    store_devcache_t  *c;
    store_device_t     dev, ghost, out;
    store_err_t        err;
    uint64_t           hits, misses;
    size_t             entries;
    unsigned           i;

    assert_int_equal(store_open(&env->st, env->path, 0, 0, &err), 0);
    assert_int_equal(store_open(&other, env->path, 0, 0, &err), 0);
    c = store_devcache_new(16);
    assert_non_null(c);

    test_make_device(&dev, 1);
    test_make_device(&ghost, 2);
    assert_int_equal(store_device_enroll(env->st, &dev, "root", &err), 0);

    for (i = 0; i < 3; i++) {
        assert_int_equal(store_view_begin(env->st, &view, &err), 0);
        store_devcache_prefetch(c, dev.fp);
        assert_int_equal(store_device_get_cached(view, c, dev.fp, &out,
                                                 &err), 0);
        assert_string_equal(out.id, dev.id);
        assert_int_equal(out.status, STORE_DEVICE_ACTIVE);
        assert_int_equal(store_device_get_cached(view, c, ghost.fp, &out,
                                                 &err), STORE_NOTFOUND);
        store_view_end(view);
    }

    store_devcache_stats(c, &hits, &misses, &entries);
    assert_int_equal(misses, 2);
    assert_int_equal(hits, 4);
    assert_int_equal(entries, 2);

    /* another process revokes it and enrolls the unknown one */
    assert_int_equal(store_device_set_status(other, dev.fp,
                                             STORE_DEVICE_REVOKED, "root",
                                             "lost", &err), 0);
    assert_int_equal(store_device_enroll(other, &ghost, "root", &err), 0);

    assert_int_equal(store_view_begin(env->st, &view, &err), 0);
    assert_int_equal(store_device_get_cached(view, c, dev.fp, &out, &err),
                     0);
    assert_int_equal(out.status, STORE_DEVICE_REVOKED);
    assert_int_equal(store_device_get_cached(view, c, ghost.fp, &out, &err),
                     0);
    assert_string_equal(out.id, ghost.id);
    store_view_end(view);

    /* bounded: past max_entries lookups still answer, from the store */
    for (i = 10; i < 60; i++) {
        test_make_device(&dev, i);
        assert_int_equal(store_device_enroll(env->st, &dev, "root", &err),
                         0);
    }
    assert_int_equal(store_view_begin(env->st, &view, &err), 0);
    for (i = 10; i < 60; i++) {
        test_make_device(&dev, i);
        assert_int_equal(store_device_get_cached(view, c, dev.fp, &out,
                                                 &err), 0);
        assert_string_equal(out.id, dev.id);
    }
    store_view_end(view);
    store_devcache_stats(c, &hits, &misses, &entries);
    assert_int_equal(entries, 16);

    store_view_free(view);
    store_devcache_free(c);
    store_close(other);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test_setup_teardown(test_open_close_reopen,
                                        test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_schema_version,
                                        test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_rdonly,
                                        test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_enroll_get,
                                        test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_enroll_batch, test_setup,
                                        test_teardown),
        cmocka_unit_test_setup_teardown(test_enroll_duplicate,
                                        test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_enroll_invalid,
                                        test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_set_status,
                                        test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_not_found,
                                        test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_find_id,
                                        test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_list,
                                        test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_audit,
                                        test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_view_reuse,
                                        test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_map_full,
                                        test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_record,
                                        test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_user_crud,
                                        test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_user_names,
                                        test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_login_lockout,
                                        test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_login_replay,
                                        test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_sessions,
                                        test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_user_delete_sessions,
                                        test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_device_cache,
                                        test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_migrate_v1,
                                        test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_identity_map_full,
                                        test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_identity,
                                        test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_posture_put_get,
                                        test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_posture_refused,
                                        test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_posture_import_atomic,
                                        test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_posture_migrate_v2,
                                        test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_posture_corrupt,
                                        test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_device_set_owner,
                                        test_setup, test_teardown),
    };

    return cmocka_run_group_tests_name("store", tests, NULL, NULL);
}
