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


static int test_setup(void **state);
static int test_teardown(void **state);
static int test_rm(const char *path, const struct stat *sb, int flag,
    struct FTW *ftw);
static void test_make_device(store_device_t *dev, unsigned i);
static int test_list_cb(const store_device_t *dev, void *arg);
static int test_audit_cb(const store_audit_t *rec, void *arg);
static void test_open_close_reopen(void **state);
static void test_schema_version(void **state);
static void test_rdonly(void **state);
static void test_enroll_get(void **state);
static void test_enroll_duplicate(void **state);
static void test_enroll_invalid(void **state);
static void test_set_status(void **state);
static void test_not_found(void **state);
static void test_find_id(void **state);
static void test_list(void **state);
static void test_audit(void **state);
static void test_view_reuse(void **state);
static void test_map_full(void **state);
static void test_corrupt_record(void **state);


static int
test_rm(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void) sb;
    (void) flag;
    (void) ftw;

    return remove(path);
}


static int
test_setup(void **state)
{
    test_env_t  *env;
    const char  *tmp;

    env = calloc(1, sizeof(*env));
    if (env == NULL) {
        return -1;
    }

    tmp = getenv("TMPDIR");
    snprintf(env->dir, sizeof(env->dir), "%s/ztstore.XXXXXX",
             tmp != NULL ? tmp : "/tmp");

    if (mkdtemp(env->dir) == NULL) {
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
    nftw(env->dir, test_rm, 16, FTW_DEPTH | FTW_PHYS);
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
    uint8_t       v2[4] = { 0, 0, 0, 2 };
    uint8_t       bad[3] = { 0, 0, 1 };

    assert_int_equal(store_open(&env->st, env->path, 0, 0, &err), 0);

    /* a store from a future ztgate */
    assert_int_equal(store_test_put_raw(env->st, "meta", "schema_version",
                                        14, v2, sizeof(v2), &err), 0);
    store_close(env->st);
    env->st = NULL;

    assert_int_equal(store_open(&env->st, env->path, 0, 0, &err), -1);
    assert_null(env->st);
    assert_non_null(strstr(err.msg, "schema version 2 is newer"));

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
    store_device_t   dev, other;
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

    /* refused enrollments left no audit record */
    assert_int_equal(store_audit_last_seq(env->st, &seq, &err), 0);
    assert_true(seq == 3);
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
    };

    return cmocka_run_group_tests_name("store", tests, NULL, NULL);
}
