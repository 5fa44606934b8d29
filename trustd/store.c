/*
 * trustd state store on LMDB.  See store.h for the contract.
 *
 * Layout (named databases, opened once at store_open()):
 *     meta      "schema_version" -> u32 big-endian
 *     devices   32-byte certificate fingerprint -> device record
 *     audit     u64 big-endian sequence number -> audit record
 *
 * Records are serialized explicitly, big-endian, starting with a record
 * version byte, so that the on-disk format does not depend on the
 * compiler's struct layout and can evolve:
 *
 *     device v1: u8 version, u8 status, i64 enrolled_at, i64 expires_at,
 *                i64 updated_at, then id, owner, name, platform,
 *                enrolled_by, each as u16 length + bytes
 *     audit v1:  u8 version, i64 time, then actor, action, subject,
 *                detail, each as u16 length + bytes
 */

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <lmdb.h>

#include "store.h"


#define STORE_MAX_DBS           16
#define STORE_DEVICE_REC_V1     1
#define STORE_AUDIT_REC_V1      1
#define STORE_REC_MAX           1024
#define STORE_SCHEMA_KEY        "schema_version"


struct store_s {
    MDB_env     *env;
    MDB_dbi      meta;
    MDB_dbi      devices;
    MDB_dbi      audit;
    unsigned     flags;
};

struct store_view_s {
    store_t     *st;
    MDB_txn     *txn;
    int          active;
};

/* A bounds-checked cursor over a record being decoded. */
typedef struct {
    const uint8_t  *p;
    const uint8_t  *end;
} store_rd_t;

/* An output buffer for a record being encoded. */
typedef struct {
    uint8_t    *p;
    uint8_t    *end;
    int         overflow;
} store_wr_t;

typedef struct {
    const char      *id;
    store_device_t  *out;
    int              found;
} store_find_id_t;


static void store_seterr(store_err_t *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void store_mdb_err(store_t *st, store_err_t *err, int rc,
    const char *what);
static int store_txn_begin(store_t *st, unsigned flags, MDB_txn **txn,
    store_err_t *err);
static int store_open_dbs(store_t *st, store_err_t *err);
static int store_check_schema(store_t *st, MDB_txn *txn, int create,
    store_err_t *err);
static void store_put_u16(store_wr_t *w, uint16_t v);
static void store_put_u64(store_wr_t *w, uint64_t v);
static void store_put_str(store_wr_t *w, const char *s);
static int store_get_u8(store_rd_t *r, uint8_t *v);
static int store_get_u16(store_rd_t *r, uint16_t *v);
static int store_get_u64(store_rd_t *r, uint64_t *v);
static int store_get_str(store_rd_t *r, char *dst, size_t size);
static size_t store_device_encode(const store_device_t *dev, uint8_t *buf,
    size_t size);
static int store_device_decode(const MDB_val *key, const MDB_val *val,
    store_device_t *dev, store_err_t *err);
static size_t store_audit_encode(const store_audit_t *rec, uint8_t *buf,
    size_t size);
static int store_audit_decode(const MDB_val *key, const MDB_val *val,
    store_audit_t *rec, store_err_t *err);
static int store_audit_append(store_t *st, MDB_txn *txn, const char *actor,
    const char *action, const char *subject, const char *detail,
    int64_t now, store_err_t *err);
static int store_audit_commit(store_t *st, MDB_txn *txn, const char *actor,
    const char *action, const char *subject, const char *detail,
    int64_t now, const char *what, store_err_t *err);
static int store_writable(const store_t *st, store_err_t *err);
static int store_text_ok(const char *s, size_t size, int allow_empty);
static int store_device_check(const store_device_t *dev, store_err_t *err);
static int store_device_id_in_use(store_t *st, MDB_txn *txn,
    const char *id, store_err_t *err);
static int store_find_id_cb(const store_device_t *dev, void *arg);
static int store_device_iterate(store_t *st, MDB_txn *txn,
    store_device_cb cb, void *arg, store_err_t *err);
static void store_be64(uint8_t *p, uint64_t v);
static uint64_t store_get_be64(const uint8_t *p);


static void
store_seterr(store_err_t *err, const char *fmt, ...)
{
    va_list  ap;

    if (err == NULL) {
        return;
    }

    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
}


/* Translate an LMDB result into a message; the code itself stays here. */
static void
store_mdb_err(store_t *st, store_err_t *err, int rc, const char *what)
{
    MDB_envinfo  info;

    if (rc == MDB_MAP_FULL) {
        if (st != NULL && mdb_env_info(st->env, &info) == MDB_SUCCESS) {
            if (info.me_mapsize % (1024 * 1024) == 0) {
                store_seterr(err, "%s: store is full (map size %zu MiB); "
                             "raise store_map_size", what,
                             info.me_mapsize / (1024 * 1024));
            } else {
                store_seterr(err, "%s: store is full (map size %zu KiB); "
                             "raise store_map_size", what,
                             info.me_mapsize / 1024);
            }
        } else {
            store_seterr(err, "%s: store is full; raise store_map_size",
                         what);
        }
        return;
    }

    if (rc == MDB_READERS_FULL) {
        store_seterr(err, "%s: too many readers of the store", what);
        return;
    }

    store_seterr(err, "%s: %s", what, mdb_strerror(rc));
}


/*
 * Begin a transaction.  Another process (ztctl with a larger
 * store_map_size) may have grown the map; adopt the new size and retry
 * once.  Only this process's own transactions block a resize, and the
 * callers never hold another one at this point.
 */
static int
store_txn_begin(store_t *st, unsigned flags, MDB_txn **txn,
    store_err_t *err)
{
    int  rc;

    rc = mdb_txn_begin(st->env, NULL, flags, txn);

    if (rc == MDB_MAP_RESIZED) {
        rc = mdb_env_set_mapsize(st->env, 0);
        if (rc == MDB_SUCCESS) {
            rc = mdb_txn_begin(st->env, NULL, flags, txn);
        }
    }

    if (rc != MDB_SUCCESS) {
        store_mdb_err(st, err, rc, "cannot begin store transaction");
        return -1;
    }

    return 0;
}


int
store_open(store_t **stp, const char *path, size_t map_size,
    unsigned flags, store_err_t *err)
{
    store_t      *st;
    struct stat   sb;
    MDB_envinfo   info;
    char          file[PATH_MAX];
    int           rc, dead, exists;
    unsigned      envflags;

    *stp = NULL;

    if (map_size == 0) {
        map_size = STORE_DEFAULT_MAP_SIZE;
    }

    if (stat(path, &sb) == -1) {
        if (errno != ENOENT || (flags & STORE_RDONLY)) {
            store_seterr(err, "store \"%s\": %s", path, strerror(errno));
            return -1;
        }

        if (mkdir(path, 0700) == -1) {
            store_seterr(err, "cannot create store directory \"%s\": %s",
                         path, strerror(errno));
            return -1;
        }

    } else if (!S_ISDIR(sb.st_mode)) {
        store_seterr(err, "store \"%s\" is not a directory", path);
        return -1;
    }

    st = calloc(1, sizeof(*st));
    if (st == NULL) {
        store_seterr(err, "out of memory");
        return -1;
    }

    st->flags = flags;

    rc = mdb_env_create(&st->env);
    if (rc != MDB_SUCCESS) {
        store_mdb_err(NULL, err, rc, "cannot create store environment");
        free(st);
        return -1;
    }

    rc = mdb_env_set_maxdbs(st->env, STORE_MAX_DBS);
    if (rc != MDB_SUCCESS) {
        store_mdb_err(NULL, err, rc, "cannot configure store");
        goto failed;
    }

    /*
     * A new store gets exactly map_size.  An existing one keeps the size
     * recorded in it and only grows to map_size (below): a process with
     * a smaller setting (ztctl -s) must not shrink the map under trustd.
     */
    if (snprintf(file, sizeof(file), "%s/data.mdb", path)
        >= (int) sizeof(file))
    {
        store_seterr(err, "store path \"%s\" is too long", path);
        goto failed;
    }

    exists = stat(file, &sb) == 0;

    if (!exists) {
        rc = mdb_env_set_mapsize(st->env, map_size);
        if (rc != MDB_SUCCESS) {
            store_mdb_err(NULL, err, rc, "cannot configure store");
            goto failed;
        }
    }

    /*
     * MDB_NOTLS: read transactions belong to their view, not to a
     * thread, so a view can be reset and renewed on the hot path.  No
     * MDB_WRITEMAP (a full disk would be SIGBUS) and no MDB_NOSYNC (a
     * committed change must survive power loss).
     */
    envflags = MDB_NOTLS;
    if (flags & STORE_RDONLY) {
        envflags |= MDB_RDONLY;
    }

    rc = mdb_env_open(st->env, path, envflags, 0600);
    if (rc != MDB_SUCCESS) {
        if (rc == ENOENT && (flags & STORE_RDONLY)) {
            store_seterr(err, "store \"%s\" has not been created yet",
                         path);
        } else {
            store_seterr(err, "cannot open store \"%s\": %s", path,
                         mdb_strerror(rc));
        }
        goto failed;
    }

    rc = mdb_reader_check(st->env, &dead);
    if (rc != MDB_SUCCESS) {
        store_mdb_err(NULL, err, rc, "store reader check");
        goto failed;
    }

    if (exists && mdb_env_info(st->env, &info) == MDB_SUCCESS
        && info.me_mapsize < map_size)
    {
        /* no transaction of this process is active yet: allowed */
        rc = mdb_env_set_mapsize(st->env, map_size);
        if (rc != MDB_SUCCESS) {
            store_mdb_err(NULL, err, rc, "cannot grow the store map");
            goto failed;
        }
    }

    if (store_open_dbs(st, err) != 0) {
        goto failed;
    }

    *stp = st;

    return 0;

failed:

    mdb_env_close(st->env);
    free(st);

    return -1;
}


/* Open the named databases once; the handles live as long as the env. */
static int
store_open_dbs(store_t *st, store_err_t *err)
{
    MDB_txn   *txn;
    unsigned   dbflags, txnflags;
    int        rc, create;

    create = !(st->flags & STORE_RDONLY);
    dbflags = create ? MDB_CREATE : 0;
    txnflags = create ? 0 : MDB_RDONLY;

    if (store_txn_begin(st, txnflags, &txn, err) != 0) {
        return -1;
    }

    rc = mdb_dbi_open(txn, "meta", dbflags, &st->meta);
    if (rc == MDB_NOTFOUND) {
        store_seterr(err, "store has not been initialized (no schema)");
        goto failed;
    }

    if (rc != MDB_SUCCESS
        || (rc = mdb_dbi_open(txn, "devices", dbflags, &st->devices))
           != MDB_SUCCESS
        || (rc = mdb_dbi_open(txn, "audit", dbflags, &st->audit))
           != MDB_SUCCESS)
    {
        store_mdb_err(st, err, rc, "cannot open store databases");
        goto failed;
    }

    if (store_check_schema(st, txn, create, err) != 0) {
        goto failed;
    }

    /* committing (even a read-only txn) keeps the dbi handles open */
    rc = mdb_txn_commit(txn);
    if (rc != MDB_SUCCESS) {
        store_mdb_err(st, err, rc, "cannot initialize store");
        return -1;
    }

    return 0;

failed:

    mdb_txn_abort(txn);

    return -1;
}


static int
store_check_schema(store_t *st, MDB_txn *txn, int create, store_err_t *err)
{
    MDB_val    key, val;
    uint8_t    buf[4];
    uint32_t   version;
    int        rc;

    key.mv_data = (void *) STORE_SCHEMA_KEY;
    key.mv_size = sizeof(STORE_SCHEMA_KEY) - 1;

    rc = mdb_get(txn, st->meta, &key, &val);

    if (rc == MDB_NOTFOUND) {
        if (!create) {
            store_seterr(err, "store has not been initialized (no schema)");
            return -1;
        }

        buf[0] = (uint8_t) (STORE_SCHEMA_VERSION >> 24);
        buf[1] = (uint8_t) (STORE_SCHEMA_VERSION >> 16);
        buf[2] = (uint8_t) (STORE_SCHEMA_VERSION >> 8);
        buf[3] = (uint8_t) STORE_SCHEMA_VERSION;
        val.mv_data = buf;
        val.mv_size = sizeof(buf);

        rc = mdb_put(txn, st->meta, &key, &val, 0);
        if (rc != MDB_SUCCESS) {
            store_mdb_err(st, err, rc, "cannot write store schema version");
            return -1;
        }

        return 0;
    }

    if (rc != MDB_SUCCESS) {
        store_mdb_err(st, err, rc, "cannot read store schema version");
        return -1;
    }

    if (val.mv_size != 4) {
        store_seterr(err, "store schema version record is corrupt");
        return -1;
    }

    version = ((uint32_t) ((uint8_t *) val.mv_data)[0] << 24)
              | ((uint32_t) ((uint8_t *) val.mv_data)[1] << 16)
              | ((uint32_t) ((uint8_t *) val.mv_data)[2] << 8)
              | (uint32_t) ((uint8_t *) val.mv_data)[3];

    if (version > STORE_SCHEMA_VERSION) {
        store_seterr(err, "store schema version %u is newer than this "
                     "program supports (%u); upgrade ztgate",
                     version, STORE_SCHEMA_VERSION);
        return -1;
    }

    if (version < STORE_SCHEMA_VERSION) {
        /* version 1 is the first; there is nothing to migrate from yet */
        store_seterr(err, "store schema version %u is invalid", version);
        return -1;
    }

    return 0;
}


void
store_close(store_t *st)
{
    if (st == NULL) {
        return;
    }

    mdb_env_close(st->env);
    free(st);
}


int
store_maintain(store_t *st, int *cleared, store_err_t *err)
{
    int  rc, dead;

    dead = 0;

    rc = mdb_reader_check(st->env, &dead);
    if (rc != MDB_SUCCESS) {
        store_mdb_err(st, err, rc, "store reader check");
        return -1;
    }

    if (cleared != NULL) {
        *cleared = dead;
    }

    return 0;
}


size_t
store_map_size(const store_t *st)
{
    MDB_envinfo  info;

    if (mdb_env_info(st->env, &info) != MDB_SUCCESS) {
        return 0;
    }

    return info.me_mapsize;
}


int
store_view_begin(store_t *st, store_view_t **vp, store_err_t *err)
{
    store_view_t  *v;
    int            rc;

    v = *vp;

    if (v == NULL) {
        v = calloc(1, sizeof(*v));
        if (v == NULL) {
            store_seterr(err, "out of memory");
            return -1;
        }

        v->st = st;
        *vp = v;
    }

    if (v->active) {
        return 0;
    }

    if (v->txn != NULL) {
        rc = mdb_txn_renew(v->txn);
        if (rc == MDB_SUCCESS) {
            v->active = 1;
            return 0;
        }

        /* e.g. MDB_MAP_RESIZED: start over with a fresh transaction */
        mdb_txn_abort(v->txn);
        v->txn = NULL;
    }

    if (store_txn_begin(st, MDB_RDONLY, &v->txn, err) != 0) {
        return -1;
    }

    v->active = 1;

    return 0;
}


void
store_view_end(store_view_t *v)
{
    if (v == NULL || !v->active) {
        return;
    }

    mdb_txn_reset(v->txn);
    v->active = 0;
}


void
store_view_free(store_view_t *v)
{
    if (v == NULL) {
        return;
    }

    if (v->txn != NULL) {
        mdb_txn_abort(v->txn);
    }

    free(v);
}


/* Serialization helpers. */

static void
store_be64(uint8_t *p, uint64_t v)
{
    int  i;

    for (i = 7; i >= 0; i--) {
        p[i] = (uint8_t) v;
        v >>= 8;
    }
}


static uint64_t
store_get_be64(const uint8_t *p)
{
    uint64_t  v;
    int       i;

    v = 0;
    for (i = 0; i < 8; i++) {
        v = (v << 8) | p[i];
    }

    return v;
}


static void
store_put_u16(store_wr_t *w, uint16_t v)
{
    if (w->end - w->p < 2) {
        w->overflow = 1;
        return;
    }

    w->p[0] = (uint8_t) (v >> 8);
    w->p[1] = (uint8_t) v;
    w->p += 2;
}


static void
store_put_u64(store_wr_t *w, uint64_t v)
{
    if (w->end - w->p < 8) {
        w->overflow = 1;
        return;
    }

    store_be64(w->p, v);
    w->p += 8;
}


static void
store_put_str(store_wr_t *w, const char *s)
{
    size_t  len;

    len = strlen(s);

    if (len > UINT16_MAX) {
        w->overflow = 1;
        return;
    }

    store_put_u16(w, (uint16_t) len);

    if (w->overflow || (size_t) (w->end - w->p) < len) {
        w->overflow = 1;
        return;
    }

    memcpy(w->p, s, len);
    w->p += len;
}


static int
store_get_u8(store_rd_t *r, uint8_t *v)
{
    if (r->end - r->p < 1) {
        return -1;
    }

    *v = r->p[0];
    r->p++;

    return 0;
}


static int
store_get_u16(store_rd_t *r, uint16_t *v)
{
    if (r->end - r->p < 2) {
        return -1;
    }

    *v = (uint16_t) ((r->p[0] << 8) | r->p[1]);
    r->p += 2;

    return 0;
}


static int
store_get_u64(store_rd_t *r, uint64_t *v)
{
    if (r->end - r->p < 8) {
        return -1;
    }

    *v = store_get_be64(r->p);
    r->p += 8;

    return 0;
}


/* A string must fit dst with its NUL and hold no NUL byte itself. */
static int
store_get_str(store_rd_t *r, char *dst, size_t size)
{
    uint16_t  len;

    if (store_get_u16(r, &len) != 0
        || (size_t) (r->end - r->p) < len
        || (size_t) len >= size
        || memchr(r->p, '\0', len) != NULL)
    {
        return -1;
    }

    memcpy(dst, r->p, len);
    dst[len] = '\0';
    r->p += len;

    return 0;
}


static size_t
store_device_encode(const store_device_t *dev, uint8_t *buf, size_t size)
{
    store_wr_t  w;

    w.p = buf;
    w.end = buf + size;
    w.overflow = 0;

    if (size < 2) {
        return 0;
    }

    *w.p++ = STORE_DEVICE_REC_V1;
    *w.p++ = (uint8_t) dev->status;
    store_put_u64(&w, (uint64_t) dev->enrolled_at);
    store_put_u64(&w, (uint64_t) dev->expires_at);
    store_put_u64(&w, (uint64_t) dev->updated_at);
    store_put_str(&w, dev->id);
    store_put_str(&w, dev->owner);
    store_put_str(&w, dev->name);
    store_put_str(&w, dev->platform);
    store_put_str(&w, dev->enrolled_by);

    if (w.overflow) {
        return 0;
    }

    return (size_t) (w.p - buf);
}


static int
store_device_decode(const MDB_val *key, const MDB_val *val,
    store_device_t *dev, store_err_t *err)
{
    store_rd_t  r;
    uint8_t     version, status;
    uint64_t    enrolled, expires, updated;
    char        hex[2 * STORE_FP_LEN + 1];

    memset(dev, 0, sizeof(*dev));

    if (key->mv_size != STORE_FP_LEN) {
        store_seterr(err, "corrupt device record: key of %zu bytes",
                     key->mv_size);
        return -1;
    }

    memcpy(dev->fp, key->mv_data, STORE_FP_LEN);

    r.p = val->mv_data;
    r.end = r.p + val->mv_size;

    if (store_get_u8(&r, &version) != 0) {
        goto corrupt;
    }

    if (version != STORE_DEVICE_REC_V1) {
        store_fp_hex(dev->fp, hex);
        store_seterr(err, "device %s: record version %u not supported",
                     hex, version);
        return -1;
    }

    if (store_get_u8(&r, &status) != 0
        || status < STORE_DEVICE_ACTIVE || status > STORE_DEVICE_REVOKED
        || store_get_u64(&r, &enrolled) != 0
        || store_get_u64(&r, &expires) != 0
        || store_get_u64(&r, &updated) != 0
        || store_get_str(&r, dev->id, sizeof(dev->id)) != 0
        || store_get_str(&r, dev->owner, sizeof(dev->owner)) != 0
        || store_get_str(&r, dev->name, sizeof(dev->name)) != 0
        || store_get_str(&r, dev->platform, sizeof(dev->platform)) != 0
        || store_get_str(&r, dev->enrolled_by, sizeof(dev->enrolled_by))
           != 0
        || r.p != r.end)
    {
        goto corrupt;
    }

    dev->status = (store_device_status_t) status;
    dev->enrolled_at = (int64_t) enrolled;
    dev->expires_at = (int64_t) expires;
    dev->updated_at = (int64_t) updated;

    return 0;

corrupt:

    store_fp_hex(dev->fp, hex);
    memset(dev, 0, sizeof(*dev));
    store_seterr(err, "device %s: corrupt record (%zu bytes)", hex,
                 val->mv_size);

    return -1;
}


static size_t
store_audit_encode(const store_audit_t *rec, uint8_t *buf, size_t size)
{
    store_wr_t  w;

    w.p = buf;
    w.end = buf + size;
    w.overflow = 0;

    if (size < 1) {
        return 0;
    }

    *w.p++ = STORE_AUDIT_REC_V1;
    store_put_u64(&w, (uint64_t) rec->time);
    store_put_str(&w, rec->actor);
    store_put_str(&w, rec->action);
    store_put_str(&w, rec->subject);
    store_put_str(&w, rec->detail);

    if (w.overflow) {
        return 0;
    }

    return (size_t) (w.p - buf);
}


static int
store_audit_decode(const MDB_val *key, const MDB_val *val,
    store_audit_t *rec, store_err_t *err)
{
    store_rd_t  r;
    uint8_t     version;
    uint64_t    t;

    memset(rec, 0, sizeof(*rec));

    if (key->mv_size != 8) {
        store_seterr(err, "corrupt audit record: key of %zu bytes",
                     key->mv_size);
        return -1;
    }

    rec->seq = store_get_be64(key->mv_data);

    r.p = val->mv_data;
    r.end = r.p + val->mv_size;

    if (store_get_u8(&r, &version) != 0
        || version != STORE_AUDIT_REC_V1
        || store_get_u64(&r, &t) != 0
        || store_get_str(&r, rec->actor, sizeof(rec->actor)) != 0
        || store_get_str(&r, rec->action, sizeof(rec->action)) != 0
        || store_get_str(&r, rec->subject, sizeof(rec->subject)) != 0
        || store_get_str(&r, rec->detail, sizeof(rec->detail)) != 0
        || r.p != r.end)
    {
        store_seterr(err, "audit record %llu is corrupt",
                     (unsigned long long) rec->seq);
        return -1;
    }

    rec->time = (int64_t) t;

    return 0;
}


/*
 * Append an audit record inside the caller's write transaction: the
 * record commits or aborts together with the change it describes.
 * Strings longer than their field are truncated.
 */
static int
store_audit_append(store_t *st, MDB_txn *txn, const char *actor,
    const char *action, const char *subject, const char *detail,
    int64_t now, store_err_t *err)
{
    store_audit_t   rec;
    MDB_cursor     *cur;
    MDB_val         key, val;
    uint8_t         kbuf[8], vbuf[STORE_REC_MAX];
    uint64_t        seq;
    size_t          len;
    int             rc;

    memset(&rec, 0, sizeof(rec));
    rec.time = now;
    snprintf(rec.actor, sizeof(rec.actor), "%s",
             actor != NULL && actor[0] != '\0' ? actor : "unknown");
    snprintf(rec.action, sizeof(rec.action), "%s", action);
    snprintf(rec.subject, sizeof(rec.subject), "%s", subject);
    snprintf(rec.detail, sizeof(rec.detail), "%s",
             detail != NULL ? detail : "");

    rc = mdb_cursor_open(txn, st->audit, &cur);
    if (rc != MDB_SUCCESS) {
        store_mdb_err(st, err, rc, "cannot append audit record");
        return -1;
    }

    rc = mdb_cursor_get(cur, &key, &val, MDB_LAST);
    if (rc == MDB_NOTFOUND) {
        seq = 1;

    } else if (rc == MDB_SUCCESS && key.mv_size == 8) {
        seq = store_get_be64(key.mv_data) + 1;

    } else {
        mdb_cursor_close(cur);
        if (rc == MDB_SUCCESS) {
            store_seterr(err, "audit log is corrupt (bad key)");
        } else {
            store_mdb_err(st, err, rc, "cannot append audit record");
        }
        return -1;
    }

    mdb_cursor_close(cur);

    len = store_audit_encode(&rec, vbuf, sizeof(vbuf));
    if (len == 0) {
        store_seterr(err, "audit record too large");
        return -1;
    }

    store_be64(kbuf, seq);
    key.mv_data = kbuf;
    key.mv_size = sizeof(kbuf);
    val.mv_data = vbuf;
    val.mv_size = len;

    rc = mdb_put(txn, st->audit, &key, &val, MDB_APPEND);
    if (rc != MDB_SUCCESS) {
        store_mdb_err(st, err, rc, "cannot append audit record");
        return -1;
    }

    return 0;
}


/*
 * Append the audit record for the change made in txn and commit both;
 * what says what failed if the commit does.  txn is ended after the call,
 * committed or aborted.
 */
static int
store_audit_commit(store_t *st, MDB_txn *txn, const char *actor,
    const char *action, const char *subject, const char *detail,
    int64_t now, const char *what, store_err_t *err)
{
    int  rc;

    if (store_audit_append(st, txn, actor, action, subject, detail, now, err)
        != 0)
    {
        mdb_txn_abort(txn);
        return -1;
    }

    rc = mdb_txn_commit(txn);
    if (rc != MDB_SUCCESS) {
        store_mdb_err(st, err, rc, what);
        return -1;
    }

    return 0;
}


static int
store_writable(const store_t *st, store_err_t *err)
{
    if (st->flags & STORE_RDONLY) {
        store_seterr(err, "store is open read-only");
        return -1;
    }

    return 0;
}


/*
 * Text stored in a device record ends up in HTTP headers and terminal
 * tables: NUL-terminated within its field, no control characters.
 */
static int
store_text_ok(const char *s, size_t size, int allow_empty)
{
    size_t  i;

    for (i = 0; i < size && s[i] != '\0'; i++) {
        if ((unsigned char) s[i] < 0x20 || s[i] == 0x7f) {
            return 0;
        }
    }

    if (i == size) {
        return 0;
    }

    return allow_empty || i > 0;
}


static int
store_device_check(const store_device_t *dev, store_err_t *err)
{
    size_t  n;

    n = sizeof(STORE_DEVICE_URN) - 1;

    if (!store_text_ok(dev->id, sizeof(dev->id), 0)
        || strncmp(dev->id, STORE_DEVICE_URN, n) != 0
        || dev->id[n] == '\0')
    {
        store_seterr(err, "device id must be \"%s<id>\" without control "
                     "characters", STORE_DEVICE_URN);
        return -1;
    }

    if (!store_text_ok(dev->owner, sizeof(dev->owner), 0)) {
        store_seterr(err, "device owner must be a non-empty name without "
                     "control characters");
        return -1;
    }

    if (!store_text_ok(dev->name, sizeof(dev->name), 1)
        || !store_text_ok(dev->platform, sizeof(dev->platform), 1))
    {
        store_seterr(err, "device name and platform must not contain "
                     "control characters");
        return -1;
    }

    if (dev->status < STORE_DEVICE_ACTIVE
        || dev->status > STORE_DEVICE_REVOKED)
    {
        store_seterr(err, "invalid device status %d", (int) dev->status);
        return -1;
    }

    return 0;
}


static int
store_find_id_cb(const store_device_t *dev, void *arg)
{
    store_find_id_t  *f = arg;
    int               better;

    if (strcmp(dev->id, f->id) != 0) {
        return 0;
    }

    if (!f->found) {
        better = 1;

    } else if ((dev->status == STORE_DEVICE_REVOKED)
               != (f->out->status == STORE_DEVICE_REVOKED))
    {
        better = dev->status != STORE_DEVICE_REVOKED;

    } else {
        better = dev->updated_at > f->out->updated_at;
    }

    if (better) {
        *f->out = *dev;
        f->found = 1;
    }

    return 0;
}


/* 1 if a device that is not revoked uses id, 0 if none, -1 on error. */
static int
store_device_id_in_use(store_t *st, MDB_txn *txn, const char *id,
    store_err_t *err)
{
    store_device_t   dev;
    store_find_id_t  f;

    f.id = id;
    f.out = &dev;
    f.found = 0;

    if (store_device_iterate(st, txn, store_find_id_cb, &f, err) != 0) {
        return -1;
    }

    return f.found && dev.status != STORE_DEVICE_REVOKED;
}


static int
store_device_iterate(store_t *st, MDB_txn *txn, store_device_cb cb,
    void *arg, store_err_t *err)
{
    MDB_cursor      *cur;
    MDB_val          key, val;
    store_device_t   dev;
    int              rc;
    MDB_cursor_op    op;

    rc = mdb_cursor_open(txn, st->devices, &cur);
    if (rc != MDB_SUCCESS) {
        store_mdb_err(st, err, rc, "cannot read devices");
        return -1;
    }

    for (op = MDB_FIRST; ; op = MDB_NEXT) {
        rc = mdb_cursor_get(cur, &key, &val, op);
        if (rc == MDB_NOTFOUND) {
            break;
        }

        if (rc != MDB_SUCCESS) {
            store_mdb_err(st, err, rc, "cannot read devices");
            goto failed;
        }

        if (store_device_decode(&key, &val, &dev, err) != 0) {
            goto failed;
        }

        if (cb(&dev, arg) != 0) {
            break;
        }
    }

    mdb_cursor_close(cur);

    return 0;

failed:

    mdb_cursor_close(cur);

    return -1;
}


int
store_device_get(store_view_t *v, const uint8_t fp[STORE_FP_LEN],
    store_device_t *out, store_err_t *err)
{
    MDB_val  key, val;
    uint8_t  kbuf[STORE_FP_LEN];
    int      rc;

    if (v == NULL || !v->active) {
        store_seterr(err, "device lookup outside a read view");
        return -1;
    }

    memcpy(kbuf, fp, STORE_FP_LEN);
    key.mv_data = kbuf;
    key.mv_size = STORE_FP_LEN;

    rc = mdb_get(v->txn, v->st->devices, &key, &val);
    if (rc == MDB_NOTFOUND) {
        return STORE_NOTFOUND;
    }

    if (rc != MDB_SUCCESS) {
        store_mdb_err(v->st, err, rc, "cannot read device");
        return -1;
    }

    return store_device_decode(&key, &val, out, err);
}


int
store_device_enroll(store_t *st, const store_device_t *dev,
    const char *actor, store_err_t *err)
{
    store_device_t   rec;
    MDB_txn         *txn;
    MDB_val          key, val;
    uint8_t          buf[STORE_REC_MAX];
    char             hex[2 * STORE_FP_LEN + 1], detail[256];
    size_t           len;
    int64_t          now;
    int              rc;

    if (store_writable(st, err) != 0) {
        return -1;
    }

    if (store_device_check(dev, err) != 0) {
        return -1;
    }

    now = (int64_t) time(NULL);

    rec = *dev;
    rec.updated_at = now;
    if (rec.enrolled_at == 0) {
        rec.enrolled_at = now;
    }
    snprintf(rec.enrolled_by, sizeof(rec.enrolled_by), "%s",
             actor != NULL && actor[0] != '\0' ? actor : "unknown");

    len = store_device_encode(&rec, buf, sizeof(buf));
    if (len == 0) {
        store_seterr(err, "device record too large");
        return -1;
    }

    store_fp_hex(rec.fp, hex);

    if (store_txn_begin(st, 0, &txn, err) != 0) {
        return -1;
    }

    key.mv_data = rec.fp;
    key.mv_size = STORE_FP_LEN;

    /* the fingerprint first: it is the more precise complaint */
    rc = mdb_get(txn, st->devices, &key, &val);
    if (rc == MDB_SUCCESS) {
        store_seterr(err, "a device with fingerprint %s is already "
                     "enrolled", hex);
        goto failed;
    }

    if (rc != MDB_NOTFOUND) {
        store_mdb_err(st, err, rc, "cannot read device");
        goto failed;
    }

    rc = store_device_id_in_use(st, txn, rec.id, err);
    if (rc < 0) {
        goto failed;
    }

    if (rc > 0) {
        store_seterr(err, "device id %s is already enrolled with another "
                     "certificate; revoke that one first", rec.id);
        goto failed;
    }

    val.mv_data = buf;
    val.mv_size = len;

    rc = mdb_put(txn, st->devices, &key, &val, MDB_NOOVERWRITE);
    if (rc == MDB_KEYEXIST) {
        store_seterr(err, "a device with fingerprint %s is already "
                     "enrolled", hex);
        goto failed;
    }

    if (rc != MDB_SUCCESS) {
        store_mdb_err(st, err, rc, "cannot enroll device");
        goto failed;
    }

    snprintf(detail, sizeof(detail), "fingerprint %s owner %s", hex,
             rec.owner);

    return store_audit_commit(st, txn, rec.enrolled_by, "device.enroll",
                              rec.id, detail, now, "cannot enroll device",
                              err);

failed:

    mdb_txn_abort(txn);

    return -1;
}


int
store_device_set_status(store_t *st, const uint8_t fp[STORE_FP_LEN],
    store_device_status_t status, const char *actor, const char *reason,
    store_err_t *err)
{
    store_device_t   dev;
    MDB_txn         *txn;
    MDB_val          key, val;
    uint8_t          buf[STORE_REC_MAX], kbuf[STORE_FP_LEN];
    char             action[32], detail[256];
    const char      *old;
    size_t           len;
    int64_t          now;
    int              rc;

    if (store_writable(st, err) != 0) {
        return -1;
    }

    switch (status) {
    case STORE_DEVICE_ACTIVE:
        snprintf(action, sizeof(action), "device.activate");
        break;
    case STORE_DEVICE_QUARANTINED:
        snprintf(action, sizeof(action), "device.quarantine");
        break;
    case STORE_DEVICE_REVOKED:
        snprintf(action, sizeof(action), "device.revoke");
        break;
    default:
        store_seterr(err, "invalid device status %d", (int) status);
        return -1;
    }

    now = (int64_t) time(NULL);

    if (store_txn_begin(st, 0, &txn, err) != 0) {
        return -1;
    }

    memcpy(kbuf, fp, STORE_FP_LEN);
    key.mv_data = kbuf;
    key.mv_size = STORE_FP_LEN;

    rc = mdb_get(txn, st->devices, &key, &val);
    if (rc == MDB_NOTFOUND) {
        mdb_txn_abort(txn);
        return STORE_NOTFOUND;
    }

    if (rc != MDB_SUCCESS) {
        store_mdb_err(st, err, rc, "cannot read device");
        goto failed;
    }

    if (store_device_decode(&key, &val, &dev, err) != 0) {
        goto failed;
    }

    old = store_device_status_name(dev.status);
    dev.status = status;
    dev.updated_at = now;

    len = store_device_encode(&dev, buf, sizeof(buf));
    if (len == 0) {
        store_seterr(err, "device record too large");
        goto failed;
    }

    val.mv_data = buf;
    val.mv_size = len;

    rc = mdb_put(txn, st->devices, &key, &val, 0);
    if (rc != MDB_SUCCESS) {
        store_mdb_err(st, err, rc, "cannot update device");
        goto failed;
    }

    snprintf(detail, sizeof(detail), "%s -> %s%s%s", old,
             store_device_status_name(status),
             reason != NULL && reason[0] != '\0' ? ": " : "",
             reason != NULL ? reason : "");

    return store_audit_commit(st, txn, actor, action, dev.id, detail, now,
                              "cannot update device", err);

failed:

    mdb_txn_abort(txn);

    return -1;
}


int
store_device_find_id(store_t *st, const char *id, store_device_t *out,
    store_err_t *err)
{
    store_find_id_t   f;
    MDB_txn          *txn;
    int               rc;

    if (store_txn_begin(st, MDB_RDONLY, &txn, err) != 0) {
        return -1;
    }

    f.id = id;
    f.out = out;
    f.found = 0;

    rc = store_device_iterate(st, txn, store_find_id_cb, &f, err);

    mdb_txn_abort(txn);

    if (rc != 0) {
        return -1;
    }

    return f.found ? 0 : STORE_NOTFOUND;
}


int
store_device_list(store_t *st, store_device_cb cb, void *arg,
    store_err_t *err)
{
    MDB_txn  *txn;
    int       rc;

    if (store_txn_begin(st, MDB_RDONLY, &txn, err) != 0) {
        return -1;
    }

    rc = store_device_iterate(st, txn, cb, arg, err);

    mdb_txn_abort(txn);

    return rc;
}


int
store_audit_list(store_t *st, uint64_t from_seq, size_t max,
    store_audit_cb cb, void *arg, store_err_t *err)
{
    MDB_txn        *txn;
    MDB_cursor     *cur;
    MDB_val         key, val;
    store_audit_t   rec;
    uint8_t         kbuf[8];
    size_t          n;
    int             rc, ret;
    MDB_cursor_op   op;

    if (store_txn_begin(st, MDB_RDONLY, &txn, err) != 0) {
        return -1;
    }

    ret = -1;

    rc = mdb_cursor_open(txn, st->audit, &cur);
    if (rc != MDB_SUCCESS) {
        store_mdb_err(st, err, rc, "cannot read audit log");
        goto done;
    }

    store_be64(kbuf, from_seq);
    key.mv_data = kbuf;
    key.mv_size = sizeof(kbuf);

    for (n = 0, op = MDB_SET_RANGE; max == 0 || n < max; n++, op = MDB_NEXT)
    {
        rc = mdb_cursor_get(cur, &key, &val, op);
        if (rc == MDB_NOTFOUND) {
            break;
        }

        if (rc != MDB_SUCCESS) {
            store_mdb_err(st, err, rc, "cannot read audit log");
            goto close;
        }

        if (store_audit_decode(&key, &val, &rec, err) != 0) {
            goto close;
        }

        if (cb(&rec, arg) != 0) {
            break;
        }
    }

    ret = 0;

close:

    mdb_cursor_close(cur);

done:

    mdb_txn_abort(txn);

    return ret;
}


int
store_audit_last_seq(store_t *st, uint64_t *seq, store_err_t *err)
{
    MDB_txn     *txn;
    MDB_cursor  *cur;
    MDB_val      key, val;
    int          rc, ret;

    if (store_txn_begin(st, MDB_RDONLY, &txn, err) != 0) {
        return -1;
    }

    ret = -1;

    rc = mdb_cursor_open(txn, st->audit, &cur);
    if (rc != MDB_SUCCESS) {
        store_mdb_err(st, err, rc, "cannot read audit log");
        goto done;
    }

    rc = mdb_cursor_get(cur, &key, &val, MDB_LAST);
    if (rc == MDB_NOTFOUND) {
        *seq = 0;
        ret = 0;

    } else if (rc != MDB_SUCCESS) {
        store_mdb_err(st, err, rc, "cannot read audit log");

    } else if (key.mv_size != 8) {
        store_seterr(err, "audit log is corrupt (bad key)");

    } else {
        *seq = store_get_be64(key.mv_data);
        ret = 0;
    }

    mdb_cursor_close(cur);

done:

    mdb_txn_abort(txn);

    return ret;
}


const char *
store_device_status_name(store_device_status_t status)
{
    switch (status) {
    case STORE_DEVICE_ACTIVE:      return "active";
    case STORE_DEVICE_QUARANTINED: return "quarantined";
    case STORE_DEVICE_REVOKED:     return "revoked";
    default:                       return "invalid";
    }
}


int
store_device_status_parse(const char *name, store_device_status_t *status)
{
    if (strcmp(name, "active") == 0) {
        *status = STORE_DEVICE_ACTIVE;

    } else if (strcmp(name, "quarantined") == 0) {
        *status = STORE_DEVICE_QUARANTINED;

    } else if (strcmp(name, "revoked") == 0) {
        *status = STORE_DEVICE_REVOKED;

    } else {
        return -1;
    }

    return 0;
}


void
store_fp_hex(const uint8_t fp[STORE_FP_LEN], char hex[2 * STORE_FP_LEN + 1])
{
    static const char  digits[] = "0123456789abcdef";
    size_t             i;

    for (i = 0; i < STORE_FP_LEN; i++) {
        hex[2 * i] = digits[fp[i] >> 4];
        hex[2 * i + 1] = digits[fp[i] & 0x0f];
    }

    hex[2 * STORE_FP_LEN] = '\0';
}


#ifdef STORE_TESTING

int
store_test_put_raw(store_t *st, const char *db, const void *key,
    size_t klen, const void *val, size_t vlen, store_err_t *err)
{
    MDB_txn  *txn;
    MDB_val   k, v;
    MDB_dbi   dbi;
    int       rc;

    if (strcmp(db, "meta") == 0) {
        dbi = st->meta;
    } else if (strcmp(db, "devices") == 0) {
        dbi = st->devices;
    } else if (strcmp(db, "audit") == 0) {
        dbi = st->audit;
    } else {
        store_seterr(err, "unknown database \"%s\"", db);
        return -1;
    }

    if (store_txn_begin(st, 0, &txn, err) != 0) {
        return -1;
    }

    k.mv_data = (void *) (uintptr_t) key;
    k.mv_size = klen;
    v.mv_data = (void *) (uintptr_t) val;
    v.mv_size = vlen;

    rc = mdb_put(txn, dbi, &k, &v, 0);
    if (rc != MDB_SUCCESS) {
        mdb_txn_abort(txn);
        store_mdb_err(st, err, rc, "test put");
        return -1;
    }

    rc = mdb_txn_commit(txn);
    if (rc != MDB_SUCCESS) {
        store_mdb_err(st, err, rc, "test put");
        return -1;
    }

    return 0;
}

#endif /* STORE_TESTING */
