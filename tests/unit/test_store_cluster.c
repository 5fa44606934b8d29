/*
 * Unit tests for cluster mode in trustd/store.c: the store's side of the
 * replication contract (store.h, "Cluster mode") against real LMDB files
 * in a temporary directory.  The replicator is implemented here and keeps
 * its "cluster database" in memory: a head counter and a change log
 * holding copies of the ops each commit sent.  Several stores (nodes)
 * may share it, as the gateways of a cluster share PostgreSQL.
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
#include "zt_wire.h"


#define TEST_NODES          3
#define FAKE_MAX_CHANGES    64
#define FAKE_MAX_CALLS      64
#define TEST_MAX_ROWS       64


/* One change of the in-memory change log. */
typedef struct {
    uint64_t              seq;
    store_op_t           *ops;          /* db, key and val are copies */
    size_t                nops;
    store_change_info_t   info;
} fake_change_t;

/* The in-memory cluster database. */
typedef struct {
    uint64_t        head;
    fake_change_t   log[FAKE_MAX_CHANGES];
    size_t          nlog;

    int             locked;
    unsigned        violations;         /* calls out of order */
    char            calls[FAKE_MAX_CALLS + 1];  /* L F C U, in order */
    size_t          ncalls;
    unsigned        nfetch;
    uint64_t        fetch_after;
    uint64_t        fetch_upto;

    const char     *refuse_lock;        /* lock() fails with this */
    const char     *refuse_commit;      /* commit() fails with this */
    uint64_t        hide_seq;           /* fetch() leaves this one out */
} fake_db_t;

typedef struct {
    char        dir[256];
    char        path[TEST_NODES][300];
    store_t    *st[TEST_NODES];
    fake_db_t   db;
} test_env_t;

/* Rows copied out of store_export(), replayed by test_rows_next(). */
typedef struct {
    size_t      n;
    size_t      next;
    store_op_t  rows[TEST_MAX_ROWS];
    unsigned    devices;
    unsigned    users;
    unsigned    sessions;
    unsigned    blocklist;
    unsigned    other;              /* replicated, none of the above */
    unsigned    foreign;            /* not a replicated database */
    unsigned    nullval;
    int         fail_at;            /* > 0: the n-th row fails */
} test_rows_t;

/* store_export() callback looking for one key's value. */
typedef struct {
    const char     *db;
    const void     *key;
    size_t          klen;
    const void     *want;
    size_t          wlen;
    int             found;
    int             same;
} test_find_t;


static int fake_lock(void *ctx, uint64_t *head, store_err_t *err);
static int fake_fetch(void *ctx, uint64_t after, uint64_t upto,
    store_apply_fn apply, void *arg, store_err_t *err);
static int fake_commit(void *ctx, const store_op_t *ops, size_t nops,
    const store_change_info_t *info, uint64_t *seq, store_err_t *err);
static void fake_unlock(void *ctx);
static uint64_t fake_last_tag(void *ctx);
static void fake_call(fake_db_t *db, char c);
static void fake_reset_calls(fake_db_t *db);
static void fake_free(fake_db_t *db);
static const fake_change_t *fake_last(const fake_db_t *db);
static store_change_t fake_change(const fake_db_t *db, uint64_t seq);
static void *test_dup(const void *p, size_t len);
static int test_setup(void **state);
static int test_teardown(void **state);
static store_t *test_open(test_env_t *env, unsigned i);
static store_t *test_node(test_env_t *env, unsigned i);
static void test_make_device(store_device_t *dev, unsigned i);
static void test_make_user(store_user_t *u, const char *name);
static void test_make_session(store_session_t *s, const char *user,
    unsigned i);
static void test_make_block(store_blocklist_t *e, const char *cidr);
static int test_device_get(store_t *st, const uint8_t fp[STORE_FP_LEN],
    store_device_t *out);
static uint64_t test_pos(store_t *st);
static uint64_t test_audit_seq(store_t *st);
static void test_idle(const fake_db_t *db);
static int test_count_cb(const store_blocklist_t *e, void *arg);
static unsigned test_blocklist_count(store_t *st);
static int test_rows_cb(void *arg, const store_op_t *op, store_err_t *err);
static int test_rows_next(void *arg, store_op_t *op, store_err_t *err);
static void test_rows_free(test_rows_t *r);
static int test_find_cb(void *arg, const store_op_t *op, store_err_t *err);
static int test_stored_value(store_t *st, const store_op_t *op);
static void test_write_commits_changes(void **state);
static void test_write_deletions(void **state);
static void test_write_key_twice(void **state);
static void test_write_refused(void **state);
static void test_catch_up(void **state);
static void test_catch_up_refused(void **state);
static void test_apply(void **state);
static void test_apply_ops_in_order(void **state);
static void test_bootstrap(void **state);
static void test_bootstrap_refused(void **state);
static void test_export(void **state);
static void test_guard(void **state);
static void test_db_replicated(void **state);


static const store_repl_t  fake_repl = {
    fake_lock,
    fake_fetch,
    fake_commit,
    fake_unlock,
    fake_last_tag
};


/* ---- the in-memory replicator ---------------------------------------- */

static void
fake_call(fake_db_t *db, char c)
{
    if (db->ncalls < FAKE_MAX_CALLS) {
        db->calls[db->ncalls++] = c;
        db->calls[db->ncalls] = '\0';
    }
}


static void
fake_reset_calls(fake_db_t *db)
{
    db->ncalls = 0;
    db->calls[0] = '\0';
    db->nfetch = 0;
    db->fetch_after = 0;
    db->fetch_upto = 0;
}


static int
fake_lock(void *ctx, uint64_t *head, store_err_t *err)
{
    fake_db_t  *db = ctx;

    fake_call(db, 'L');

    if (db->locked) {
        db->violations++;
    }

    if (db->refuse_lock != NULL) {
        snprintf(err->msg, sizeof(err->msg), "%s", db->refuse_lock);
        return -1;
    }

    db->locked = 1;
    *head = db->head;

    return 0;
}


static int
fake_fetch(void *ctx, uint64_t after, uint64_t upto, store_apply_fn apply,
    void *arg, store_err_t *err)
{
    fake_db_t       *db = ctx;
    store_change_t   chg;
    size_t           i;

    fake_call(db, 'F');

    if (!db->locked) {
        db->violations++;
    }

    db->nfetch++;
    db->fetch_after = after;
    db->fetch_upto = upto;

    for (i = 0; i < db->nlog; i++) {
        if (db->log[i].seq <= after || db->log[i].seq > upto
            || db->log[i].seq == db->hide_seq)
        {
            continue;
        }

        chg.seq = db->log[i].seq;
        chg.ops = db->log[i].ops;
        chg.nops = db->log[i].nops;

        if (apply(arg, &chg, err) != 0) {
            return -1;
        }
    }

    return 0;
}


static int
fake_commit(void *ctx, const store_op_t *ops, size_t nops,
    const store_change_info_t *info, uint64_t *seq, store_err_t *err)
{
    fake_db_t      *db = ctx;
    fake_change_t  *c;
    store_op_t     *copy;
    size_t          i;

    fake_call(db, 'C');

    if (!db->locked) {
        db->violations++;
    }

    /* the lock is released, committed or not */
    db->locked = 0;

    if (db->refuse_commit != NULL) {
        snprintf(err->msg, sizeof(err->msg), "%s", db->refuse_commit);
        return -1;
    }

    if (db->nlog == FAKE_MAX_CHANGES) {
        snprintf(err->msg, sizeof(err->msg), "fake change log full");
        return -1;
    }

    copy = calloc(nops ? nops : 1, sizeof(*copy));
    if (copy == NULL) {
        snprintf(err->msg, sizeof(err->msg), "out of memory");
        return -1;
    }

    for (i = 0; i < nops; i++) {
        copy[i].db = ops[i].db != NULL
                     ? test_dup(ops[i].db, strlen(ops[i].db) + 1) : NULL;
        copy[i].key = test_dup(ops[i].key, ops[i].klen);
        copy[i].klen = ops[i].klen;
        copy[i].val = ops[i].val != NULL
                      ? test_dup(ops[i].val, ops[i].vlen) : NULL;
        copy[i].vlen = ops[i].vlen;
    }

    c = &db->log[db->nlog++];
    c->seq = ++db->head;
    c->ops = copy;
    c->nops = nops;
    c->info = *info;

    *seq = c->seq;

    return 0;
}


/* The tag of the change just committed: a function of its position. */
static uint64_t
fake_last_tag(void *ctx)
{
    fake_db_t  *db = ctx;

    return db->head * 1000003u + 17;
}


static void
fake_unlock(void *ctx)
{
    fake_db_t  *db = ctx;

    fake_call(db, 'U');

    if (!db->locked) {
        db->violations++;
    }

    db->locked = 0;
}


static void
fake_free(fake_db_t *db)
{
    size_t  i, k;

    for (i = 0; i < db->nlog; i++) {
        for (k = 0; k < db->log[i].nops; k++) {
            free((void *) (uintptr_t) db->log[i].ops[k].db);
            free((void *) (uintptr_t) db->log[i].ops[k].key);
            free((void *) (uintptr_t) db->log[i].ops[k].val);
        }
        free(db->log[i].ops);
    }

    db->nlog = 0;
}


static const fake_change_t *
fake_last(const fake_db_t *db)
{
    assert_true(db->nlog > 0);

    return &db->log[db->nlog - 1];
}


/* The logged change seq as store_apply() takes it. */
static store_change_t
fake_change(const fake_db_t *db, uint64_t seq)
{
    store_change_t  chg;
    size_t          i;

    for (i = 0; i < db->nlog; i++) {
        if (db->log[i].seq == seq) {
            chg.seq = seq;
            chg.ops = db->log[i].ops;
            chg.nops = db->log[i].nops;
            return chg;
        }
    }

    fail_msg("no change %llu in the fake log", (unsigned long long) seq);

    /* not reached */
    memset(&chg, 0, sizeof(chg));

    return chg;
}


static void *
test_dup(const void *p, size_t len)
{
    void  *q;

    q = malloc(len ? len : 1);
    if (q != NULL && len > 0) {
        memcpy(q, p, len);
    }

    return q;
}


/* ---- fixtures and helpers -------------------------------------------- */

static int
test_setup(void **state)
{
    test_env_t  *env;
    unsigned     i;

    env = calloc(1, sizeof(*env));
    if (env == NULL) {
        return -1;
    }

    if (test_tmpdir_make(env->dir, sizeof(env->dir), "ztcluster") != 0) {
        free(env);
        return -1;
    }

    for (i = 0; i < TEST_NODES; i++) {
        snprintf(env->path[i], sizeof(env->path[i]), "%s/node%u", env->dir,
                 i);
    }

    *state = env;

    return 0;
}


static int
test_teardown(void **state)
{
    test_env_t  *env = *state;
    unsigned     i;

    for (i = 0; i < TEST_NODES; i++) {
        store_close(env->st[i]);
    }

    fake_free(&env->db);
    test_tmpdir_remove(env->dir);
    free(env);

    return 0;
}


static store_t *
test_open(test_env_t *env, unsigned i)
{
    store_err_t  err;

    if (store_open(&env->st[i], env->path[i], 0, 0, &err) != 0) {
        fail_msg("store_open: %s", err.msg);
    }

    return env->st[i];
}


/* A cluster node: joined at 0, writing through the shared fake. */
static store_t *
test_node(test_env_t *env, unsigned i)
{
    store_err_t   err;
    store_t      *st;

    st = test_open(env, i);

    if (store_cluster_join(st, "c1", 0, &err) != 0) {
        fail_msg("store_cluster_join: %s", err.msg);
    }

    store_set_repl(st, &fake_repl, &env->db);

    return st;
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


static void
test_make_user(store_user_t *u, const char *name)
{
    memset(u, 0, sizeof(*u));
    snprintf(u->name, sizeof(u->name), "%s", name);
    snprintf(u->display, sizeof(u->display), "User %s", name);
    snprintf(u->groups[0], sizeof(u->groups[0]), "staff");
    u->ngroups = 1;
}


static void
test_make_session(store_session_t *s, const char *user, unsigned i)
{
    memset(s, 0, sizeof(*s));
    snprintf(s->sid, sizeof(s->sid), "%08x%024x", i, 0xabcu);
    snprintf(s->user, sizeof(s->user), "%s", user);
    snprintf(s->source, sizeof(s->source), "192.0.2.%u", i % 250);
    s->methods = 0x03;
    s->created_at = (int64_t) time(NULL);
    s->mfa_at = s->created_at;
    s->expires_at = s->created_at + 3600;
}


static void
test_make_block(store_blocklist_t *e, const char *cidr)
{
    memset(e, 0, sizeof(*e));
    snprintf(e->feed, sizeof(e->feed), "staff");
    snprintf(e->cidr, sizeof(e->cidr), "%s", cidr);
    snprintf(e->reason, sizeof(e->reason), "scanner");
}


/* store_device_get() in a view of its own: 0, STORE_NOTFOUND or -1. */
static int
test_device_get(store_t *st, const uint8_t fp[STORE_FP_LEN],
    store_device_t *out)
{
    store_view_t  *view = NULL;
    store_err_t    err;
    int            rc;

    if (store_view_begin(st, &view, &err) != 0) {
        fail_msg("store_view_begin: %s", err.msg);
    }

    rc = store_device_get(view, fp, out, &err);
    store_view_end(view);
    store_view_free(view);

    return rc;
}


static uint64_t
test_pos(store_t *st)
{
    store_err_t  err;
    uint64_t     pos;
    char         id[STORE_CLUSTER_ID_LEN];

    if (store_cluster_state(st, id, &pos, &err) != 0) {
        fail_msg("store_cluster_state: not joined or %s", err.msg);
    }

    return pos;
}


static uint64_t
test_audit_seq(store_t *st)
{
    store_err_t  err;
    uint64_t     seq;

    if (store_audit_last_seq(st, &seq, &err) != 0) {
        fail_msg("store_audit_last_seq: %s", err.msg);
    }

    return seq;
}


/* The replicator's lock is free and was never misused. */
static void
test_idle(const fake_db_t *db)
{
    assert_false(db->locked);
    assert_int_equal(db->violations, 0);
}


static int
test_count_cb(const store_blocklist_t *e, void *arg)
{
    unsigned  *n = arg;

    (void) e;
    (*n)++;

    return 0;
}


static unsigned
test_blocklist_count(store_t *st)
{
    store_err_t  err;
    unsigned     n;

    n = 0;
    if (store_blocklist_list(st, test_count_cb, &n, &err) != 0) {
        fail_msg("store_blocklist_list: %s", err.msg);
    }

    return n;
}


static int
test_rows_cb(void *arg, const store_op_t *op, store_err_t *err)
{
    test_rows_t  *r = arg;
    store_op_t   *row;

    if (r->fail_at > 0 && r->n + 1 == (size_t) r->fail_at) {
        snprintf(err->msg, sizeof(err->msg), "export stopped by the test");
        return -1;
    }

    if (op->db == NULL || !store_db_replicated(op->db)) {
        r->foreign++;
    } else if (strcmp(op->db, "devices") == 0) {
        r->devices++;
    } else if (strcmp(op->db, "users") == 0) {
        r->users++;
    } else if (strcmp(op->db, "sessions") == 0) {
        r->sessions++;
    } else if (strcmp(op->db, "blocklist") == 0) {
        r->blocklist++;
    } else {
        r->other++;
    }

    if (op->val == NULL) {
        r->nullval++;
    }

    if (r->n == TEST_MAX_ROWS) {
        snprintf(err->msg, sizeof(err->msg), "too many rows");
        return -1;
    }

    row = &r->rows[r->n++];
    row->db = op->db != NULL ? test_dup(op->db, strlen(op->db) + 1) : NULL;
    row->key = test_dup(op->key, op->klen);
    row->klen = op->klen;
    row->val = op->val != NULL ? test_dup(op->val, op->vlen) : NULL;
    row->vlen = op->vlen;

    return 0;
}


static int
test_rows_next(void *arg, store_op_t *op, store_err_t *err)
{
    test_rows_t  *r = arg;

    if (r->fail_at > 0 && r->next + 1 == (size_t) r->fail_at) {
        snprintf(err->msg, sizeof(err->msg), "the cluster database went "
                 "away");
        return -1;
    }

    if (r->next == r->n) {
        return 0;
    }

    *op = r->rows[r->next++];

    return 1;
}


static void
test_rows_free(test_rows_t *r)
{
    size_t  i;

    for (i = 0; i < r->n; i++) {
        free((void *) (uintptr_t) r->rows[i].db);
        free((void *) (uintptr_t) r->rows[i].key);
        free((void *) (uintptr_t) r->rows[i].val);
    }

    memset(r, 0, sizeof(*r));
}


static int
test_find_cb(void *arg, const store_op_t *op, store_err_t *err)
{
    test_find_t  *f = arg;

    (void) err;

    if (strcmp(op->db, f->db) == 0 && op->klen == f->klen
        && memcmp(op->key, f->key, f->klen) == 0)
    {
        f->found++;
        f->same = op->val != NULL && f->want != NULL && op->vlen == f->wlen
                  && memcmp(op->val, f->want, f->wlen) == 0;
    }

    return 0;
}


/*
 * Whether the store holds exactly op's value under op's key (for a
 * deletion: holds no such key): the op carried the key's final value.
 */
static int
test_stored_value(store_t *st, const store_op_t *op)
{
    test_find_t  f;
    store_err_t  err;

    memset(&f, 0, sizeof(f));
    f.db = op->db;
    f.key = op->key;
    f.klen = op->klen;
    f.want = op->val;
    f.wlen = op->vlen;

    if (store_export(st, test_find_cb, &f, &err) != 0) {
        fail_msg("store_export: %s", err.msg);
    }

    if (op->val == NULL) {
        return f.found == 0;
    }

    return f.found == 1 && f.same;
}


/* ---- 1. replicated writes --------------------------------------------- */

/*
 * A write takes the lock, then commits once with exactly the keys it
 * changed and their final values, named by its audit action; the store
 * then records the position the cluster gave it.
 */
static void
test_write_commits_changes(void **state)
{
    test_env_t           *env = *state;
    fake_db_t            *db = &env->db;
    const fake_change_t  *c;
    store_device_t        dev, ghost, out;
    store_change_t        chg[2];
    store_err_t           err;
    store_t              *st, *other;
    uint64_t              pos;
    char                  id[STORE_CLUSTER_ID_LEN];

    st = test_node(env, 0);
    test_make_device(&dev, 1);
    test_make_device(&ghost, 2);

    assert_int_equal(store_device_enroll(st, &dev, "admin", &err), 0);
    assert_string_equal(db->calls, "LC");
    test_idle(db);
    assert_int_equal(db->nlog, 1);

    c = fake_last(db);
    assert_int_equal(c->seq, 1);
    assert_int_equal(c->nops, 1);
    assert_string_equal(c->ops[0].db, "devices");
    assert_int_equal(c->ops[0].klen, STORE_FP_LEN);
    assert_memory_equal(c->ops[0].key, dev.fp, STORE_FP_LEN);
    assert_non_null(c->ops[0].val);
    assert_true(c->ops[0].vlen > 0);
    assert_true(test_stored_value(st, &c->ops[0]));
    assert_string_equal(c->info.action, "device.enroll");
    assert_string_equal(c->info.actor, "admin");
    assert_string_equal(c->info.subject, dev.id);

    assert_int_equal(store_cluster_state(st, id, &pos, &err), 0);
    assert_string_equal(id, "c1");
    assert_int_equal(pos, c->seq);

    /* a change to the same key: its new final value */
    fake_reset_calls(db);
    assert_int_equal(store_device_set_status(st, dev.fp,
                                             STORE_DEVICE_REVOKED, "admin",
                                             "lost", &err), 0);
    assert_string_equal(db->calls, "LC");
    test_idle(db);
    assert_int_equal(db->nlog, 2);

    c = fake_last(db);
    assert_int_equal(c->seq, 2);
    assert_int_equal(c->nops, 1);
    assert_string_equal(c->ops[0].db, "devices");
    assert_int_equal(c->ops[0].klen, STORE_FP_LEN);
    assert_memory_equal(c->ops[0].key, dev.fp, STORE_FP_LEN);
    assert_non_null(c->ops[0].val);
    assert_false(c->ops[0].vlen == db->log[0].ops[0].vlen
                 && memcmp(c->ops[0].val, db->log[0].ops[0].val,
                           c->ops[0].vlen) == 0);
    assert_true(test_stored_value(st, &c->ops[0]));
    assert_string_equal(c->info.action, "device.revoke");
    assert_string_equal(c->info.subject, dev.id);
    assert_int_equal(test_pos(st), 2);

    /* the values are whole records: another node gets the same device */
    other = test_open(env, 1);
    assert_int_equal(store_cluster_join(other, "c1", 0, &err), 0);
    chg[0] = fake_change(db, 1);
    chg[1] = fake_change(db, 2);
    assert_int_equal(store_apply(other, chg, 2, NULL, &err), 0);
    assert_int_equal(test_device_get(other, dev.fp, &out), 0);
    assert_string_equal(out.id, dev.id);
    assert_string_equal(out.owner, dev.owner);
    assert_int_equal(out.status, STORE_DEVICE_REVOKED);

    /* a write that changes nothing releases the lock without a change */
    fake_reset_calls(db);
    assert_int_equal(store_device_set_status(st, ghost.fp,
                                             STORE_DEVICE_REVOKED, "admin",
                                             NULL, &err), STORE_NOTFOUND);
    assert_string_equal(db->calls, "LU");
    test_idle(db);
    assert_int_equal(db->nlog, 2);
    assert_int_equal(test_pos(st), 2);
}


/* A deleted key arrives as an op with val NULL, next to other changes. */
static void
test_write_deletions(void **state)
{
    test_env_t           *env = *state;
    fake_db_t            *db = &env->db;
    const fake_change_t  *c;
    const store_op_t     *uop, *sop;
    store_blocklist_t     e;
    store_session_t       s, sout;
    store_user_t          u, uout;
    store_err_t           err;
    store_t              *st;
    size_t                i;
    uint8_t               bkey[64];
    size_t                bklen;
    const char           *sids[1];

    st = test_node(env, 0);

    test_make_block(&e, "198.51.100.0/24");
    assert_int_equal(store_blocklist_add(st, &e, "admin", &err), 0);
    c = fake_last(db);
    assert_int_equal(c->nops, 1);
    assert_string_equal(c->ops[0].db, "blocklist");
    assert_non_null(c->ops[0].val);
    assert_string_equal(c->info.action, "blocklist.add");
    assert_true(test_stored_value(st, &c->ops[0]));

    bklen = c->ops[0].klen;
    assert_true(bklen <= sizeof(bkey));
    memcpy(bkey, c->ops[0].key, bklen);

    assert_int_equal(store_blocklist_remove(st, "staff", "198.51.100.0/24",
                                            "admin", &err), 0);
    c = fake_last(db);
    assert_int_equal(c->seq, 2);
    assert_int_equal(c->nops, 1);
    assert_string_equal(c->ops[0].db, "blocklist");
    assert_int_equal(c->ops[0].klen, bklen);
    assert_memory_equal(c->ops[0].key, bkey, bklen);
    assert_null(c->ops[0].val);
    assert_string_equal(c->info.action, "blocklist.remove");
    assert_int_equal(test_blocklist_count(st), 0);
    assert_int_equal(test_pos(st), 2);
    test_idle(db);

    /* a user deleted and their session revoked: one change, two keys */
    test_make_user(&u, "alice");
    assert_int_equal(store_user_create(st, &u, "admin", &err), 0);
    test_make_session(&s, "alice", 1);
    assert_int_equal(store_session_create(st, &s, &err), 0);
    assert_int_equal(db->nlog, 4);

    /* bookkeeping without an audit record: a change with no action */
    sids[0] = s.sid;
    assert_int_equal(store_session_touch(st, sids, 1, s.created_at + 60,
                                         &err), 0);
    c = fake_last(db);
    assert_int_equal(c->seq, 5);
    assert_int_equal(c->nops, 1);
    assert_string_equal(c->ops[0].db, "sessions");
    assert_memory_equal(c->ops[0].key, s.sid, STORE_SID_LEN);
    assert_true(test_stored_value(st, &c->ops[0]));
    assert_string_equal(c->info.action, "");

    assert_int_equal(store_user_delete(st, "alice", "admin", &err), 0);
    c = fake_last(db);
    assert_int_equal(c->seq, 6);
    assert_string_equal(c->info.action, "user.delete");
    assert_int_equal(c->nops, 2);

    uop = NULL;
    sop = NULL;
    for (i = 0; i < c->nops; i++) {
        if (strcmp(c->ops[i].db, "users") == 0) {
            uop = &c->ops[i];
        } else if (strcmp(c->ops[i].db, "sessions") == 0) {
            sop = &c->ops[i];
        }
    }

    assert_non_null(uop);
    assert_int_equal(uop->klen, strlen("alice"));
    assert_memory_equal(uop->key, "alice", uop->klen);
    assert_null(uop->val);

    assert_non_null(sop);
    assert_int_equal(sop->klen, STORE_SID_LEN);
    assert_memory_equal(sop->key, s.sid, STORE_SID_LEN);
    assert_non_null(sop->val);
    assert_true(test_stored_value(st, sop));

    assert_int_equal(store_user_find(st, "alice", &uout, &err),
                     STORE_NOTFOUND);
    assert_int_equal(store_session_find(st, s.sid, &sout, &err), 0);
    assert_true(sout.revoked);
    assert_int_equal(sout.last_seen, s.created_at + 60);
    assert_int_equal(test_pos(st), 6);
    test_idle(db);
}


/*
 * One change per write however many times it touched a key: each key
 * once, with its final value.
 */
static void
test_write_key_twice(void **state)
{
    test_env_t           *env = *state;
    fake_db_t            *db = &env->db;
    const fake_change_t  *c;
    store_posture_t       rows[2], p;
    store_device_t        devs[3];
    store_err_t           err;
    store_t              *st;
    size_t                i, k;

    st = test_node(env, 0);

    for (i = 0; i < 3; i++) {
        test_make_device(&devs[i], (unsigned) i + 1);
    }

    assert_int_equal(store_device_enroll_batch(st, devs, 3, "admin", NULL,
                                               &err), 0);
    c = fake_last(db);
    assert_int_equal(c->seq, 1);
    assert_int_equal(c->nops, 3);
    assert_string_equal(c->info.action, "device.import");

    for (i = 0; i < 3; i++) {
        for (k = 0; k < c->nops; k++) {
            if (memcmp(c->ops[k].key, devs[i].fp, STORE_FP_LEN) == 0) {
                break;
            }
        }
        assert_true(k < c->nops);
        assert_string_equal(c->ops[k].db, "devices");
        assert_true(test_stored_value(st, &c->ops[k]));
    }

    /* two reports for one device in one import: the second one stays */
    memset(rows, 0, sizeof(rows));
    for (i = 0; i < 2; i++) {
        memcpy(rows[i].fp, devs[0].fp, STORE_FP_LEN);
        snprintf(rows[i].os, sizeof(rows[i].os), "%s",
                 i == 0 ? "debian" : "fedora");
        snprintf(rows[i].os_version, sizeof(rows[i].os_version), "4%zu", i);
        rows[i].disk_encrypted = STORE_FLAG_TRUE;
        snprintf(rows[i].source, sizeof(rows[i].source), "agent");
    }

    assert_int_equal(store_posture_import(st, rows, 2, "admin", &err), 0);
    c = fake_last(db);
    assert_int_equal(c->seq, 2);
    assert_int_equal(c->nops, 1);
    assert_string_equal(c->ops[0].db, "posture");
    assert_int_equal(c->ops[0].klen, STORE_FP_LEN);
    assert_memory_equal(c->ops[0].key, devs[0].fp, STORE_FP_LEN);
    assert_non_null(c->ops[0].val);
    assert_true(test_stored_value(st, &c->ops[0]));
    assert_string_equal(c->info.action, "device.posture");

    assert_int_equal(store_posture_find(st, devs[0].fp, &p, &err), 0);
    assert_string_equal(p.os, "fedora");
    assert_int_equal(test_pos(st), 2);
    test_idle(db);
}


/* ---- 2. the cluster refuses ------------------------------------------ */

static void
test_write_refused(void **state)
{
    test_env_t      *env = *state;
    fake_db_t       *db = &env->db;
    store_device_t   dev, dev2, out;
    store_err_t      err;
    store_t         *st;
    uint64_t         audit;

    st = test_node(env, 0);
    test_make_device(&dev, 1);
    test_make_device(&dev2, 2);

    assert_int_equal(store_device_enroll(st, &dev, "admin", &err), 0);
    assert_int_equal(test_pos(st), 1);
    audit = test_audit_seq(st);

    /* commit refused: nothing anywhere, the replicator's reason in err */
    db->refuse_commit = "the cluster database is read-only";
    fake_reset_calls(db);
    memset(&err, 0, sizeof(err));
    assert_int_equal(store_device_enroll(st, &dev2, "admin", &err), -1);
    assert_non_null(strstr(err.msg, "the cluster database is read-only"));
    assert_string_equal(db->calls, "LC");
    test_idle(db);
    assert_int_equal(db->nlog, 1);
    assert_int_equal(db->head, 1);
    assert_int_equal(test_device_get(st, dev2.fp, &out), STORE_NOTFOUND);
    assert_int_equal(test_pos(st), 1);
    assert_int_equal(test_audit_seq(st), audit);

    fake_reset_calls(db);
    memset(&err, 0, sizeof(err));
    assert_int_equal(store_device_set_status(st, dev.fp,
                                             STORE_DEVICE_REVOKED, "admin",
                                             NULL, &err), -1);
    assert_non_null(strstr(err.msg, "the cluster database is read-only"));
    assert_string_equal(db->calls, "LC");
    assert_int_equal(test_device_get(st, dev.fp, &out), 0);
    assert_int_equal(out.status, STORE_DEVICE_ACTIVE);
    assert_int_equal(test_pos(st), 1);
    assert_int_equal(test_audit_seq(st), audit);
    test_idle(db);

    /* lock refused: commit never called */
    db->refuse_commit = NULL;
    db->refuse_lock = "cannot reach the cluster database";
    fake_reset_calls(db);
    memset(&err, 0, sizeof(err));
    assert_int_equal(store_device_enroll(st, &dev2, "admin", &err), -1);
    assert_non_null(strstr(err.msg, "cannot reach the cluster database"));
    assert_string_equal(db->calls, "L");
    test_idle(db);
    assert_int_equal(db->nlog, 1);
    assert_int_equal(test_device_get(st, dev2.fp, &out), STORE_NOTFOUND);
    assert_int_equal(test_pos(st), 1);
    assert_int_equal(test_audit_seq(st), audit);

    /* and once the cluster answers again, the same write goes through */
    db->refuse_lock = NULL;
    fake_reset_calls(db);
    assert_int_equal(store_device_enroll(st, &dev2, "admin", &err), 0);
    assert_string_equal(db->calls, "LC");
    assert_int_equal(test_device_get(st, dev2.fp, &out), 0);
    assert_int_equal(test_pos(st), 2);
    assert_int_equal(test_audit_seq(st), audit + 1);
    test_idle(db);
}


/* ---- 3. catching up inside the write --------------------------------- */

static void
test_catch_up(void **state)
{
    test_env_t           *env = *state;
    fake_db_t            *db = &env->db;
    const fake_change_t  *c;
    store_devcache_t     *cache;
    store_view_t         *view = NULL;
    store_device_t        x, w, y, z, out;
    store_err_t           err;
    store_t              *a, *b;

    a = test_node(env, 0);
    b = test_node(env, 1);

    test_make_device(&x, 1);
    test_make_device(&w, 2);
    test_make_device(&y, 3);
    test_make_device(&z, 4);

    /* node a's decision thread has looked x up: not enrolled */
    cache = store_devcache_new(16);
    assert_non_null(cache);
    assert_int_equal(store_view_begin(a, &view, &err), 0);
    assert_int_equal(store_device_get_cached(view, cache, x.fp, &out, &err),
                     STORE_NOTFOUND);
    store_view_end(view);

    /* node b enrolls x and w */
    assert_int_equal(store_device_enroll(b, &x, "admin", &err), 0);
    assert_int_equal(store_device_enroll(b, &w, "admin", &err), 0);
    assert_int_equal(db->head, 2);
    assert_int_equal(test_pos(b), 2);
    assert_int_equal(test_device_get(a, x.fp, &out), STORE_NOTFOUND);

    /* enrolling x on node a is a duplicate: it read the cluster's state */
    fake_reset_calls(db);
    memset(&err, 0, sizeof(err));
    assert_int_equal(store_device_enroll(a, &x, "admin", &err), -1);
    assert_non_null(strstr(err.msg, "already enrolled"));
    assert_string_equal(db->calls, "LFU");
    assert_int_equal(db->fetch_after, 0);
    assert_int_equal(db->fetch_upto, 2);
    test_idle(db);
    assert_int_equal(db->head, 2);
    /* the refused write took the catch-up with it */
    assert_int_equal(test_pos(a), 0);
    assert_int_equal(test_device_get(a, x.fp, &out), STORE_NOTFOUND);

    /* so is x's id for another owner */
    y.fp[5] ^= 0xff;
    snprintf(y.id, sizeof(y.id), "%s", x.id);
    memset(&err, 0, sizeof(err));
    assert_int_equal(store_device_enroll(a, &y, "admin", &err), -1);
    assert_non_null(strstr(err.msg, "another owner"));
    test_idle(db);
    test_make_device(&y, 3);

    /* node b revokes w; node a's next write catches up on all three */
    assert_int_equal(store_device_set_status(b, w.fp, STORE_DEVICE_REVOKED,
                                             "admin", "stolen", &err), 0);
    assert_int_equal(db->head, 3);

    fake_reset_calls(db);
    assert_int_equal(store_device_enroll(a, &y, "admin", &err), 0);
    assert_string_equal(db->calls, "LFC");
    assert_int_equal(db->fetch_after, 0);
    assert_int_equal(db->fetch_upto, 3);
    test_idle(db);
    assert_int_equal(test_pos(a), 4);

    /* only a's own change went to the cluster */
    c = fake_last(db);
    assert_int_equal(c->seq, 4);
    assert_int_equal(c->nops, 1);
    assert_memory_equal(c->ops[0].key, y.fp, STORE_FP_LEN);

    assert_int_equal(test_device_get(a, x.fp, &out), 0);
    assert_string_equal(out.id, x.id);
    assert_int_equal(out.status, STORE_DEVICE_ACTIVE);
    assert_int_equal(test_device_get(a, w.fp, &out), 0);
    assert_int_equal(out.status, STORE_DEVICE_REVOKED);
    assert_int_equal(test_device_get(a, y.fp, &out), 0);

    /* the caught-up devices are not hidden by a's cache */
    assert_int_equal(store_view_begin(a, &view, &err), 0);
    assert_int_equal(store_device_get_cached(view, cache, x.fp, &out, &err),
                     0);
    assert_string_equal(out.id, x.id);
    store_view_end(view);
    store_view_free(view);
    store_devcache_free(cache);

    /* and node b catches up on a's change the same way */
    fake_reset_calls(db);
    assert_int_equal(store_device_enroll(b, &z, "admin", &err), 0);
    assert_string_equal(db->calls, "LFC");
    assert_int_equal(db->fetch_after, 3);
    assert_int_equal(db->fetch_upto, 4);
    assert_int_equal(test_pos(b), 5);
    assert_int_equal(test_device_get(b, y.fp, &out), 0);
    test_idle(db);
}


/* The node's copy and the change log disagree: the write is refused. */
static void
test_catch_up_refused(void **state)
{
    test_env_t      *env = *state;
    fake_db_t       *db = &env->db;
    store_device_t   x, y, out;
    store_err_t      err;
    store_t         *a, *b;

    a = test_node(env, 0);
    b = test_node(env, 1);
    test_make_device(&x, 1);
    test_make_device(&y, 2);

    assert_int_equal(store_device_enroll(b, &x, "admin", &err), 0);
    assert_int_equal(store_device_enroll(b, &y, "admin", &err), 0);

    /* change 1 is missing from what fetch() delivers */
    db->hide_seq = 1;
    fake_reset_calls(db);
    memset(&err, 0, sizeof(err));
    assert_int_equal(store_device_set_status(a, y.fp, STORE_DEVICE_REVOKED,
                                             "admin", NULL, &err), -1);
    assert_non_null(strstr(err.msg, "missing"));
    assert_string_equal(db->calls, "LFU");
    test_idle(db);
    assert_int_equal(db->head, 2);
    assert_int_equal(test_pos(a), 0);
    assert_int_equal(test_device_get(a, y.fp, &out), STORE_NOTFOUND);

    /* the log ends before the head */
    db->hide_seq = 2;
    fake_reset_calls(db);
    memset(&err, 0, sizeof(err));
    assert_int_equal(store_device_set_status(a, x.fp, STORE_DEVICE_REVOKED,
                                             "admin", NULL, &err), -1);
    assert_non_null(strstr(err.msg, "ends at 1"));
    assert_string_equal(db->calls, "LFU");
    test_idle(db);
    assert_int_equal(test_pos(a), 0);
    assert_int_equal(test_device_get(a, x.fp, &out), STORE_NOTFOUND);

    /* the node is ahead of the cluster database */
    db->hide_seq = 0;
    assert_int_equal(store_cluster_join(a, "c1", 7, &err), 0);
    fake_reset_calls(db);
    memset(&err, 0, sizeof(err));
    assert_int_equal(store_device_set_status(a, x.fp, STORE_DEVICE_REVOKED,
                                             "admin", NULL, &err), -1);
    assert_non_null(strstr(err.msg, "bootstrap this node again"));
    assert_string_equal(db->calls, "LU");
    test_idle(db);
    assert_int_equal(db->head, 2);
    assert_int_equal(test_pos(a), 7);

    /* with the change log whole again, it goes through */
    assert_int_equal(store_cluster_join(a, "c1", 0, &err), 0);
    fake_reset_calls(db);
    assert_int_equal(store_device_set_status(a, x.fp, STORE_DEVICE_REVOKED,
                                             "admin", NULL, &err), 0);
    assert_string_equal(db->calls, "LFC");
    assert_int_equal(test_pos(a), 3);
    assert_int_equal(test_device_get(a, x.fp, &out), 0);
    assert_int_equal(out.status, STORE_DEVICE_REVOKED);
    test_idle(db);
}


/* ---- 4. store_apply() ------------------------------------------------- */

static void
test_apply(void **state)
{
    test_env_t         *env = *state;
    fake_db_t          *db = &env->db;
    store_devcache_t   *cache;
    store_view_t       *view = NULL;
    store_blocklist_t   e;
    store_session_t     s, sout;
    store_user_t        u, uout;
    store_device_t      x, y, nine, out;
    store_change_t      chg[3];
    store_op_t          bad[2];
    store_err_t         err;
    store_t            *a, *b;
    unsigned            touched;

    b = test_node(env, 1);
    test_make_device(&x, 1);
    test_make_device(&y, 2);
    test_make_block(&e, "203.0.113.7/32");
    test_make_user(&u, "bob");
    test_make_session(&s, "bob", 3);

    /* node b's changes: 1 x enrolled, 2 y enrolled, 3 x revoked,
     * 4 a blocklist entry, 5 user bob, 6 bob's session */
    assert_int_equal(store_device_enroll(b, &x, "admin", &err), 0);
    assert_int_equal(store_device_enroll(b, &y, "admin", &err), 0);
    assert_int_equal(store_device_set_status(b, x.fp,
                                             STORE_DEVICE_REVOKED, "admin",
                                             NULL, &err), 0);
    assert_int_equal(store_blocklist_add(b, &e, "admin", &err), 0);
    assert_int_equal(store_user_create(b, &u, "admin", &err), 0);
    assert_int_equal(store_session_create(b, &s, &err), 0);
    assert_int_equal(db->head, 6);

    /* node a follows without a replicator, as trustd's follower does */
    a = test_open(env, 0);
    assert_int_equal(store_cluster_join(a, "c1", 0, &err), 0);

    chg[0] = fake_change(db, 1);
    chg[1] = fake_change(db, 2);
    touched = 0xff;
    assert_int_equal(store_apply(a, chg, 2, &touched, &err), 0);
    assert_int_equal(touched, STORE_TOUCHED_DEVICES);
    assert_int_equal(test_pos(a), 2);
    assert_int_equal(test_device_get(a, x.fp, &out), 0);
    assert_int_equal(out.status, STORE_DEVICE_ACTIVE);
    assert_int_equal(test_device_get(a, y.fp, &out), 0);

    /* the decision thread has x cached as active */
    cache = store_devcache_new(16);
    assert_non_null(cache);
    assert_int_equal(store_view_begin(a, &view, &err), 0);
    assert_int_equal(store_device_get_cached(view, cache, x.fp, &out, &err),
                     0);
    assert_int_equal(out.status, STORE_DEVICE_ACTIVE);
    store_view_end(view);

    /* 1 and 2 again are skipped, 3 applied */
    chg[2] = fake_change(db, 3);
    assert_int_equal(store_apply(a, chg, 3, &touched, &err), 0);
    assert_int_equal(touched, STORE_TOUCHED_DEVICES);
    assert_int_equal(test_pos(a), 3);
    assert_int_equal(test_device_get(a, x.fp, &out), 0);
    assert_int_equal(out.status, STORE_DEVICE_REVOKED);

    assert_int_equal(store_view_begin(a, &view, &err), 0);
    assert_int_equal(store_device_get_cached(view, cache, x.fp, &out, &err),
                     0);
    assert_int_equal(out.status, STORE_DEVICE_REVOKED);
    store_view_end(view);
    store_view_free(view);
    store_devcache_free(cache);

    /* only already applied ones: none applied again (1 would make x
     * active again) */
    assert_int_equal(store_apply(a, chg, 3, &touched, &err), 0);
    assert_int_equal(test_pos(a), 3);
    assert_int_equal(test_device_get(a, x.fp, &out), 0);
    assert_int_equal(out.status, STORE_DEVICE_REVOKED);

    /* a gap: nothing applied, not even the change before it */
    chg[0] = fake_change(db, 5);
    touched = 0xff;
    memset(&err, 0, sizeof(err));
    assert_int_equal(store_apply(a, chg, 1, &touched, &err), STORE_GAP);
    assert_non_null(strstr(err.msg, "missing"));
    assert_int_equal(touched, 0);
    assert_int_equal(test_pos(a), 3);
    assert_int_equal(store_user_find(a, "bob", &uout, &err), STORE_NOTFOUND);

    chg[0] = fake_change(db, 4);
    chg[1] = fake_change(db, 6);
    assert_int_equal(store_apply(a, chg, 2, &touched, &err), STORE_GAP);
    assert_int_equal(test_pos(a), 3);
    assert_int_equal(test_blocklist_count(a), 0);

    /* out of order is a gap too */
    chg[0] = fake_change(db, 5);
    chg[1] = fake_change(db, 4);
    assert_int_equal(store_apply(a, chg, 2, &touched, &err), STORE_GAP);
    assert_int_equal(test_pos(a), 3);
    assert_int_equal(test_blocklist_count(a), 0);

    chg[0] = fake_change(db, 4);
    assert_int_equal(store_apply(a, chg, 1, &touched, &err), 0);
    assert_int_equal(touched, STORE_TOUCHED_BLOCKLIST);
    assert_int_equal(test_pos(a), 4);
    assert_int_equal(test_blocklist_count(a), 1);

    chg[0] = fake_change(db, 5);
    chg[1] = fake_change(db, 6);
    assert_int_equal(store_apply(a, chg, 2, &touched, &err), 0);
    assert_int_equal(touched, STORE_TOUCHED_USERS | STORE_TOUCHED_SESSIONS);
    assert_int_equal(test_pos(a), 6);
    assert_int_equal(store_user_find(a, "bob", &uout, &err), 0);
    assert_int_equal(store_session_find(a, s.sid, &sout, &err), 0);
    assert_string_equal(sout.user, "bob");

    /* an unknown database: refused as a whole */
    test_make_device(&nine, 9);
    bad[0] = db->log[0].ops[0];
    bad[0].key = nine.fp;
    bad[1].db = "meta";
    bad[1].key = "schema_version";
    bad[1].klen = strlen("schema_version");
    bad[1].val = "x";
    bad[1].vlen = 1;
    chg[0].seq = 7;
    chg[0].ops = bad;
    chg[0].nops = 2;
    memset(&err, 0, sizeof(err));
    assert_int_equal(store_apply(a, chg, 1, &touched, &err), -1);
    assert_non_null(strstr(err.msg, "unknown database"));
    assert_int_equal(test_pos(a), 6);
    assert_int_equal(test_device_get(a, nine.fp, &out), STORE_NOTFOUND);

    bad[1].db = "audit";
    assert_int_equal(store_apply(a, chg, 1, &touched, &err), -1);
    bad[1].db = "nosuch";
    assert_int_equal(store_apply(a, chg, 1, &touched, &err), -1);
    bad[1].db = NULL;
    assert_int_equal(store_apply(a, chg, 1, &touched, &err), -1);
    assert_int_equal(test_pos(a), 6);

    /* the store still opens and reads: meta was not overwritten */
    store_close(a);
    env->st[0] = NULL;
    a = test_open(env, 0);
    assert_int_equal(test_pos(a), 6);
    assert_int_equal(test_device_get(a, y.fp, &out), 0);
}


/* Within a change, the ops are applied in their order. */
static void
test_apply_ops_in_order(void **state)
{
    test_env_t      *env = *state;
    fake_db_t       *db = &env->db;
    store_device_t   x, z, out;
    store_change_t   chg[2];
    store_op_t       ops1[2], ops2[2];
    store_err_t      err;
    store_t         *a, *b;
    unsigned         touched;

    b = test_node(env, 1);
    test_make_device(&x, 1);
    test_make_device(&z, 2);
    assert_int_equal(store_device_enroll(b, &x, "admin", &err), 0);
    assert_int_equal(store_device_enroll(b, &z, "admin", &err), 0);

    a = test_open(env, 0);
    assert_int_equal(store_cluster_join(a, "c1", 0, &err), 0);

    /* 1: x put; then z put and deleted: z absent */
    ops1[0] = db->log[0].ops[0];
    ops1[1] = db->log[1].ops[0];
    chg[0].seq = 1;
    chg[0].ops = ops1;
    chg[0].nops = 1;
    chg[1].seq = 2;
    chg[1].ops = ops2;
    chg[1].nops = 2;
    ops2[0] = ops1[1];
    ops2[1] = ops1[1];
    ops2[1].val = NULL;
    ops2[1].vlen = 0;

    assert_int_equal(store_apply(a, chg, 2, &touched, &err), 0);
    assert_int_equal(touched, STORE_TOUCHED_DEVICES);
    assert_int_equal(test_pos(a), 2);
    assert_int_equal(test_device_get(a, x.fp, &out), 0);
    assert_int_equal(test_device_get(a, z.fp, &out), STORE_NOTFOUND);

    /* 3: x deleted, then put again: x present */
    ops2[0] = ops1[0];
    ops2[0].val = NULL;
    ops2[0].vlen = 0;
    ops2[1] = ops1[0];
    chg[0].seq = 3;
    chg[0].ops = ops2;
    chg[0].nops = 2;

    assert_int_equal(store_apply(a, chg, 1, &touched, &err), 0);
    assert_int_equal(test_pos(a), 3);
    assert_int_equal(test_device_get(a, x.fp, &out), 0);
    assert_string_equal(out.id, x.id);

    /* deleting a key that is not there is not an error */
    chg[0].seq = 4;
    chg[0].ops = &ops2[0];
    chg[0].nops = 1;
    ops2[0] = ops1[1];
    ops2[0].val = NULL;
    ops2[0].vlen = 0;
    assert_int_equal(store_apply(a, chg, 1, &touched, &err), 0);
    assert_int_equal(test_pos(a), 4);
}


/* ---- 5. store_bootstrap() -------------------------------------------- */

static void
test_bootstrap(void **state)
{
    test_env_t         *env = *state;
    store_devcache_t   *cache;
    store_view_t       *view = NULL;
    test_rows_t         rows, after;
    store_device_t      d1, d2, d3, out;
    store_user_t        u, uout;
    store_err_t         err;
    store_t            *a, *src;
    uint64_t            pos, audit;
    char                id[STORE_CLUSTER_ID_LEN];

    test_make_device(&d1, 1);
    test_make_device(&d2, 2);
    test_make_device(&d3, 3);

    /* the cluster's state, as a seeded database would hold it */
    src = test_open(env, 1);
    assert_int_equal(store_device_enroll(src, &d3, "admin", &err), 0);
    test_make_user(&u, "carol");
    assert_int_equal(store_user_create(src, &u, "admin", &err), 0);
    memset(&rows, 0, sizeof(rows));
    assert_int_equal(store_export(src, test_rows_cb, &rows, &err), 0);
    assert_int_equal(rows.devices, 1);
    assert_int_equal(rows.users, 1);

    /* a node with a past of its own */
    a = test_open(env, 0);
    assert_int_equal(store_device_enroll(a, &d1, "admin", &err), 0);
    assert_int_equal(store_device_enroll(a, &d2, "admin", &err), 0);
    test_make_user(&u, "dave");
    assert_int_equal(store_user_create(a, &u, "admin", &err), 0);
    audit = test_audit_seq(a);
    assert_int_equal(store_cluster_state(a, id, &pos, &err),
                     STORE_NOTFOUND);

    cache = store_devcache_new(16);
    assert_non_null(cache);
    assert_int_equal(store_view_begin(a, &view, &err), 0);
    assert_int_equal(store_device_get_cached(view, cache, d1.fp, &out, &err),
                     0);
    assert_int_equal(store_device_get_cached(view, cache, d3.fp, &out, &err),
                     STORE_NOTFOUND);
    store_view_end(view);

    assert_int_equal(store_bootstrap(a, "c-boot", 42, test_rows_next, &rows,
                                     &err), 0);

    assert_int_equal(store_cluster_state(a, id, &pos, &err), 0);
    assert_string_equal(id, "c-boot");
    assert_int_equal(pos, 42);

    /* the cache answers from the new content, not from before */
    assert_int_equal(store_view_begin(a, &view, &err), 0);
    assert_int_equal(store_device_get_cached(view, cache, d1.fp, &out, &err),
                     STORE_NOTFOUND);
    assert_int_equal(store_device_get_cached(view, cache, d3.fp, &out, &err),
                     0);
    assert_string_equal(out.id, d3.id);
    store_view_end(view);
    store_view_free(view);
    store_devcache_free(cache);

    assert_int_equal(test_device_get(a, d1.fp, &out), STORE_NOTFOUND);
    assert_int_equal(test_device_get(a, d2.fp, &out), STORE_NOTFOUND);
    assert_int_equal(test_device_get(a, d3.fp, &out), 0);
    assert_int_equal(store_user_find(a, "dave", &uout, &err),
                     STORE_NOTFOUND);
    assert_int_equal(store_user_find(a, "carol", &uout, &err), 0);

    /* the journal stays the node's own */
    assert_int_equal(test_audit_seq(a), audit);

    /* the node now holds exactly the cluster's rows */
    memset(&after, 0, sizeof(after));
    assert_int_equal(store_export(a, test_rows_cb, &after, &err), 0);
    assert_int_equal(after.n, rows.n);
    assert_int_equal(after.devices, 1);
    assert_int_equal(after.users, 1);

    test_rows_free(&after);
    test_rows_free(&rows);
}


/* A bootstrap that fails leaves the store as it was. */
static void
test_bootstrap_refused(void **state)
{
    test_env_t      *env = *state;
    test_rows_t      rows;
    store_device_t   d1, d2, out;
    store_err_t      err;
    store_t         *a, *src;
    uint64_t         pos;
    char             id[STORE_CLUSTER_ID_LEN];

    test_make_device(&d1, 1);
    test_make_device(&d2, 2);

    src = test_open(env, 1);
    assert_int_equal(store_device_enroll(src, &d2, "admin", &err), 0);
    memset(&rows, 0, sizeof(rows));
    assert_int_equal(store_export(src, test_rows_cb, &rows, &err), 0);
    assert_int_equal(rows.n, 1);

    a = test_open(env, 0);
    assert_int_equal(store_device_enroll(a, &d1, "admin", &err), 0);
    assert_int_equal(store_cluster_join(a, "c-old", 5, &err), 0);

    /* next() fails after the first row */
    rows.fail_at = 2;
    memset(&err, 0, sizeof(err));
    assert_int_equal(store_bootstrap(a, "c-new", 9, test_rows_next, &rows,
                                     &err), -1);
    assert_non_null(strstr(err.msg, "went away"));
    rows.fail_at = 0;

    /* a row naming a database that is not replicated */
    rows.next = 0;
    free((void *) (uintptr_t) rows.rows[0].db);
    rows.rows[0].db = test_dup("meta", sizeof("meta"));
    assert_int_equal(store_bootstrap(a, "c-new", 9, test_rows_next, &rows,
                                     &err), -1);
    assert_non_null(strstr(err.msg, "invalid row"));

    /* a row without a value */
    rows.next = 0;
    free((void *) (uintptr_t) rows.rows[0].db);
    rows.rows[0].db = test_dup("devices", sizeof("devices"));
    free((void *) (uintptr_t) rows.rows[0].val);
    rows.rows[0].val = NULL;
    assert_int_equal(store_bootstrap(a, "c-new", 9, test_rows_next, &rows,
                                     &err), -1);

    /* an invalid cluster id */
    rows.next = 0;
    assert_int_equal(store_bootstrap(a, "", 9, test_rows_next, &rows, &err),
                     -1);

    assert_int_equal(store_cluster_state(a, id, &pos, &err), 0);
    assert_string_equal(id, "c-old");
    assert_int_equal(pos, 5);
    assert_int_equal(test_device_get(a, d1.fp, &out), 0);
    assert_int_equal(test_device_get(a, d2.fp, &out), STORE_NOTFOUND);

    test_rows_free(&rows);
}


/* ---- 6. store_export() ----------------------------------------------- */

static void
test_export(void **state)
{
    test_env_t         *env = *state;
    test_rows_t         rows;
    store_blocklist_t   e;
    store_session_t     s;
    store_device_t      dev;
    store_user_t        u;
    store_err_t         err;
    store_t            *st;
    unsigned            i;

    st = test_open(env, 0);

    for (i = 1; i <= 3; i++) {
        test_make_device(&dev, i);
        assert_int_equal(store_device_enroll(st, &dev, "admin", &err), 0);
    }
    test_make_user(&u, "erin");
    assert_int_equal(store_user_create(st, &u, "admin", &err), 0);
    test_make_user(&u, "frank");
    assert_int_equal(store_user_create(st, &u, "admin", &err), 0);
    test_make_session(&s, "erin", 1);
    assert_int_equal(store_session_create(st, &s, &err), 0);
    test_make_block(&e, "192.0.2.0/24");
    assert_int_equal(store_blocklist_add(st, &e, "admin", &err), 0);
    assert_true(test_audit_seq(st) >= 7);

    memset(&rows, 0, sizeof(rows));
    assert_int_equal(store_export(st, test_rows_cb, &rows, &err), 0);
    assert_int_equal(rows.devices, 3);
    assert_int_equal(rows.users, 2);
    assert_int_equal(rows.sessions, 1);
    assert_int_equal(rows.blocklist, 1);
    assert_int_equal(rows.other, 0);
    assert_int_equal(rows.foreign, 0);
    assert_int_equal(rows.nullval, 0);
    assert_int_equal(rows.n, 7);
    for (i = 0; i < rows.n; i++) {
        assert_true(store_db_replicated(rows.rows[i].db));
        assert_string_not_equal(rows.rows[i].db, "meta");
        assert_string_not_equal(rows.rows[i].db, "audit");
    }
    test_rows_free(&rows);

    /* a callback that fails stops the export */
    rows.fail_at = 2;
    memset(&err, 0, sizeof(err));
    assert_int_equal(store_export(st, test_rows_cb, &rows, &err), -1);
    assert_non_null(strstr(err.msg, "stopped by the test"));
    assert_int_equal(rows.n, 1);
    test_rows_free(&rows);
}


/* ---- 7. a node's copy refuses writes that bypass the cluster --------- */

static void
test_guard(void **state)
{
    test_env_t         *env = *state;
    fake_db_t          *db = &env->db;
    store_blocklist_t   e;
    store_device_t      dev, out;
    store_audit_t       rec;
    store_user_t        u;
    store_err_t         err;
    store_t            *st;
    uint64_t            pos, audit;
    char                id[STORE_CLUSTER_ID_LEN];

    st = test_open(env, 0);
    test_make_device(&dev, 1);

    assert_int_equal(store_cluster_join(st, "", 0, &err), -1);
    assert_int_equal(store_cluster_join(st, "some-id", 0, &err), 0);
    assert_int_equal(store_cluster_state(st, id, &pos, &err), 0);
    assert_string_equal(id, "some-id");
    assert_int_equal(pos, 0);

    memset(&err, 0, sizeof(err));
    assert_int_equal(store_device_enroll(st, &dev, "admin", &err), -1);
    assert_non_null(strstr(err.msg, "cluster node's copy"));
    assert_non_null(strstr(err.msg, "some-id"));
    assert_int_equal(test_device_get(st, dev.fp, &out), STORE_NOTFOUND);

    test_make_user(&u, "gina");
    memset(&err, 0, sizeof(err));
    assert_int_equal(store_user_create(st, &u, "admin", &err), -1);
    assert_non_null(strstr(err.msg, "cluster node's copy"));

    test_make_block(&e, "192.0.2.1/32");
    memset(&err, 0, sizeof(err));
    assert_int_equal(store_blocklist_add(st, &e, "admin", &err), -1);
    assert_non_null(strstr(err.msg, "cluster node's copy"));

    /* the journal is the node's own: decisions are still recorded */
    audit = test_audit_seq(st);
    memset(&rec, 0, sizeof(rec));
    rec.kind = STORE_AUDIT_DECISION;
    rec.time_ms = (int64_t) time(NULL) * 1000;
    rec.d.outcome = WIRE_ALLOW;
    rec.d.status = 200;
    rec.d.count = 1;
    rec.d.score = -1;
    snprintf(rec.d.method, sizeof(rec.d.method), "GET");
    snprintf(rec.d.host, sizeof(rec.d.host), "app.example.org");
    snprintf(rec.d.path, sizeof(rec.d.path), "/");
    snprintf(rec.d.source, sizeof(rec.d.source), "192.0.2.10");
    assert_int_equal(store_journal_append(st, &rec, 1, &err), 0);
    assert_int_equal(test_audit_seq(st), audit + 1);

    /* with a replicator the same write goes through the cluster */
    store_set_repl(st, &fake_repl, db);
    assert_int_equal(store_device_enroll(st, &dev, "admin", &err), 0);
    assert_int_equal(db->nlog, 1);
    test_idle(db);

    /* without one again, refused again */
    store_set_repl(st, NULL, NULL);
    memset(&err, 0, sizeof(err));
    assert_int_equal(store_device_set_status(st, dev.fp,
                                             STORE_DEVICE_REVOKED, "admin",
                                             NULL, &err), -1);
    assert_non_null(strstr(err.msg, "cluster node's copy"));
    assert_int_equal(test_device_get(st, dev.fp, &out), 0);
    assert_int_equal(out.status, STORE_DEVICE_ACTIVE);

    /* leaving the cluster: a single-node store again */
    assert_int_equal(store_cluster_join(st, NULL, 0, &err), 0);
    assert_int_equal(store_cluster_state(st, id, &pos, &err),
                     STORE_NOTFOUND);
    assert_int_equal(store_device_set_status(st, dev.fp,
                                             STORE_DEVICE_REVOKED, "admin",
                                             NULL, &err), 0);
    assert_int_equal(store_user_create(st, &u, "admin", &err), 0);
    assert_int_equal(store_blocklist_add(st, &e, "admin", &err), 0);
    assert_int_equal(db->nlog, 1);

    /* leaving twice is harmless */
    assert_int_equal(store_cluster_join(st, NULL, 0, &err), 0);
}


/* ---- 8. store_db_replicated() ---------------------------------------- */

static void
test_db_replicated(void **state)
{
    static const char  *yes[] = {
        "devices", "users", "sessions", "posture", "history", "blocklist",
        "webauthn", "wa_codes"
    };
    static const char  *no[] = {
        "meta", "audit", "", "device", "Devices", "devices ", "journal"
    };
    size_t  i;

    (void) state;

    for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        if (!store_db_replicated(yes[i])) {
            fail_msg("%s should be replicated", yes[i]);
        }
    }

    for (i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
        if (store_db_replicated(no[i])) {
            fail_msg("\"%s\" should not be replicated", no[i]);
        }
    }

    assert_false(store_db_replicated(NULL));
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test_setup_teardown(test_write_commits_changes,
                                        test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_write_deletions,
                                        test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_write_key_twice,
                                        test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_write_refused,
                                        test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_catch_up,
                                        test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_catch_up_refused,
                                        test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_apply,
                                        test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_apply_ops_in_order,
                                        test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_bootstrap,
                                        test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_bootstrap_refused,
                                        test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_export,
                                        test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_guard,
                                        test_setup, test_teardown),
        cmocka_unit_test(test_db_replicated),
    };

    return cmocka_run_group_tests_name("store_cluster", tests, NULL, NULL);
}
