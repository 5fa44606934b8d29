/*
 * trustd state store on LMDB.  See store.h for the contract.
 *
 * Layout (named databases, opened once at store_open()):
 *     meta      "schema_version" -> u32 big-endian
 *     devices   32-byte certificate fingerprint -> device record
 *     audit     u64 big-endian sequence number -> audit record
 *     users     user name (no NUL) -> user record          (schema 2)
 *     sessions  32-character session id -> session record  (schema 2)
 *     posture   32-byte certificate fingerprint -> posture record (schema 3)
 *     history   user name (no NUL) -> history record          (schema 4)
 *     blocklist feed, NUL, CIDR text -> blocklist record       (schema 4)
 *
 * Records are serialized explicitly, big-endian, starting with a record
 * version byte, so that the on-disk format does not depend on the
 * compiler's struct layout and can evolve:
 *
 *     device v1: u8 version, u8 status, i64 enrolled_at, i64 expires_at,
 *                i64 updated_at, then id, owner, name, platform,
 *                enrolled_by, each as u16 length + bytes
 *     audit v1:  u8 version, i64 time, then actor, action, subject,
 *                detail, each as u16 length + bytes (schema < 5)
 *     audit v2:  u8 version, u8 kind, i64 time in ms, prev and hash as
 *                u16 length + 32 bytes; an action then has actor,
 *                action, subject, detail; a decision u8 outcome,
 *                u16 status, u32 ttl_ms, u32 count, i16 score,
 *                u8 nsignals and that many (u8 value, i16 tenths), then
 *                method, host, path, source, user, session, device,
 *                device_fp, app, rule, where, reason, policy; strings as
 *                u16 length + bytes.  hash: journal_fmt.h.
 *     user v1:   u8 version, u8 totp_state, u8 totp_algo, u8 totp_digits,
 *                u8 disabled, u32 failures, u64 totp_last_counter,
 *                i64 last_failure, i64 locked_until, i64 created_at,
 *                i64 updated_at, then display, pwhash, created_by as
 *                u16 length + bytes, totp_sealed as u16 length + bytes,
 *                u8 ngroups and that many groups as u16 length + bytes
 *     session v1: u8 version, u8 flags (1 has_device, 2 revoked),
 *                u32 methods, i64 created_at, i64 mfa_at, i64 last_seen,
 *                i64 expires_at, i64 revoked_at, 32-byte device
 *                fingerprint (zero without a device), then user, source
 *                as u16 length + bytes
 *     posture v1: u8 version, u8 disk_encrypted, u8 firewall,
 *                u8 screen_lock, u8 endpoint_protection (store_flag_t),
 *                i64 patch_time, i64 reported_at, i64 received_at, then
 *                os, os_version, source as u16 length + bytes
 *     history v1: u8 version, i64 updated_at, 24 x u32 hours, 7 x u32
 *                days, u8 naddrs, then naddrs x (16-byte address,
 *                i64 last_seen)
 *     blocklist v1: u8 version, i64 expires, i64 added_at, then
 *                added_by, reason as u16 length + bytes
 *
 * Schema history: 1 meta, devices, audit; 2 adds users and sessions;
 * 3 adds posture; 4 adds history and blocklist; 5 turns the audit log
 * into the hash-chained journal (every record rewritten as v2, chained,
 * in order; "journal_anchor" in meta once retention removes records).
 * store_open() with write access migrates an older store in the same
 * write transaction that opens it.
 */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <lmdb.h>

#include "store.h"
#include "journal_fmt.h"
#include "zt_wire.h"


#define STORE_MAX_DBS           16
#define STORE_DEVICE_REC_V1     1
#define STORE_AUDIT_REC_V1      1
#define STORE_AUDIT_REC_V2      2
#define STORE_AUDIT_REC_MAX     2048
#define STORE_ANCHOR_KEY        "journal_anchor"
#define STORE_DEVGEN_KEY        "devices_gen"
#define STORE_USER_REC_V1       1
#define STORE_SESSION_REC_V1    1
#define STORE_POSTURE_REC_V1    1
#define STORE_REC_MAX           1024
#define STORE_USER_REC_MAX      2048
#define STORE_SCHEMA_KEY        "schema_version"
#define STORE_TOTP_ALGO_MAX     2       /* id_totp_algo_t: SHA-1/256/512 */
#define STORE_SESSION_HAS_DEVICE  0x01
#define STORE_SESSION_REVOKED     0x02
#define STORE_LOGIN_ACTOR       "portal"
#define STORE_SYSTEM_ACTOR      "system"
#define STORE_CLUSTER_ID_KEY    "cluster_id"
#define STORE_CLUSTER_POS_KEY   "cluster_pos"
#define STORE_CLUSTER_TAG_KEY   "cluster_tag"
#define STORE_RC_REPL           (-31000)    /* the replicator failed */


/* A key changed by the replicated write transaction (store_cap()). */
typedef struct {
    MDB_dbi     dbi;
    uint32_t    len;
    size_t      off;                /* into the capture arena */
} store_cap_t;


struct store_s {
    MDB_env     *env;
    MDB_dbi      meta;
    MDB_dbi      devices;
    MDB_dbi      audit;
    MDB_dbi      users;
    MDB_dbi      sessions;
    MDB_dbi      posture;
    MDB_dbi      history;
    MDB_dbi      blocklist;
    MDB_dbi      webauthn;      /* credential id -> credential */
    MDB_dbi      wa_codes;      /* SHA-256 of a code -> enrollment */
    int          has_webauthn;  /* webauthn and wa_codes are open */
    int          has_trust;     /* history and blocklist are open */
    int          identity;      /* users and sessions are open */
    int          has_posture;   /* the posture database is open */
    unsigned     flags;

    /* cluster mode: see store.h */
    const store_repl_t  *repl;
    void                *repl_ctx;
    MDB_txn             *wtxn;      /* the replicated write, if any */
    store_cap_t         *cap;       /* keys it changed */
    size_t               ncap;
    size_t               capsize;
    uint8_t             *capbuf;    /* their bytes */
    size_t               caplen;
    size_t               capbufsize;
    store_change_info_t  cinfo;
    char                 repl_msg[256];
};

struct store_view_s {
    store_t     *st;
    MDB_txn     *txn;
    int          active;
};

/*
 * Visit one record of a cursor walk: 0 goes on, 1 stops the walk, -1
 * fails it (*err says why).
 */
typedef int (*store_visit_pt)(const MDB_val *key, const MDB_val *val,
    void *arg, store_err_t *err);

/* The caller's callback for a walk that decodes each record. */
typedef struct {
    store_device_cb    device;
    store_user_cb      user;
    store_session_cb   session;
    const char        *owner;     /* sessions of this user only, or NULL */
    void              *arg;
} store_walk_t;

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

/*
 * The decision thread's device cache (store_device_get_cached()): a small
 * index of 8-byte slots (a tag from the fingerprint and where the entry
 * is) over an arena of entries, each the fingerprint, the record's length
 * and the record's stored bytes, 8-byte aligned.  A lookup reads one slot
 * (the index is small enough to stay in cache) and one entry.
 */
typedef struct {
    uint32_t    tag;                /* fp bytes 4..7, low bit set; 0 free */
    uint32_t    at;                 /* the entry's offset / 8 */
} store_dc_slot_t;

typedef struct {
    uint8_t     fp[STORE_FP_LEN];
    uint16_t    len;                /* the record's bytes that follow */
    uint8_t     absent;             /* not enrolled */
    uint8_t     pad[5];
} store_dc_entry_t;

struct store_devcache_s {
    store_dc_slot_t  *slots;        /* open addressing, linear probing */
    uint32_t          mask;
    size_t            used;
    size_t            max;
    uint8_t          *arena;        /* entries */
    size_t            arena_len;
    size_t            arena_cap;
    uint64_t          gen;          /* the devices generation cached */
    uint64_t          hits;
    uint64_t          misses;
};

/* What store_session_revoke_where() revokes: the sessions of one user,
 * or those bound to one device of users other than keep_user. */
typedef struct {
    const char      *user;          /* NULL: any user ... */
    const uint8_t   *fp;            /* ... bound to this device ... */
    const char      *keep_user;     /* ... except this one's */
} store_revoke_match_t;

/* The end of the journal's hash chain. */
typedef struct {
    uint64_t    seq;
    uint8_t     hash[STORE_HASH_LEN];
} store_chain_t;


static void store_seterr(store_err_t *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void store_mdb_err(store_t *st, store_err_t *err, int rc,
    const char *what);
static int store_txn_begin(store_t *st, unsigned flags, MDB_txn **txn,
    store_err_t *err);
static int store_open_dbs(store_t *st, store_err_t *err);
static int store_schema_read(store_t *st, MDB_txn *txn, uint32_t *version,
    store_err_t *err);
static int store_schema_write(store_t *st, MDB_txn *txn, uint32_t version,
    store_err_t *err);
static int store_open_identity_dbs(store_t *st, MDB_txn *txn,
    unsigned dbflags, store_err_t *err);
static int store_migrate(store_t *st, MDB_txn *txn, uint32_t from,
    store_err_t *err);
static int store_open_webauthn_dbs(store_t *st, MDB_txn *txn,
    unsigned dbflags, store_err_t *err);
static int store_open_trust_dbs(store_t *st, MDB_txn *txn, unsigned dbflags,
    store_err_t *err);
static void store_put_u8(store_wr_t *w, uint8_t v);
static void store_put_u16(store_wr_t *w, uint16_t v);
static void store_put_u32(store_wr_t *w, uint32_t v);
static void store_put_bytes(store_wr_t *w, const uint8_t *p, size_t len);
static int store_get_u32(store_rd_t *r, uint32_t *v);
static int store_get_bytes(store_rd_t *r, uint8_t *dst, size_t size,
    size_t *len);
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
static int store_chain_tail(store_t *st, MDB_txn *txn, store_chain_t *tail,
    store_err_t *err);
static int store_chain_anchor(store_t *st, MDB_txn *txn,
    store_chain_t *anchor, store_err_t *err);
static int store_chain_put(store_t *st, MDB_txn *txn, store_chain_t *tail,
    store_audit_t *rec, store_err_t *err);
static int store_journal_rechain(store_t *st, MDB_txn *txn,
    store_err_t *err);
static int store_devices_bump(store_t *st, MDB_txn *txn, store_err_t *err);
static void store_devcache_clear(store_devcache_t *c, uint64_t gen);
static store_dc_slot_t *store_devcache_slot(store_devcache_t *c,
    const uint8_t fp[STORE_FP_LEN]);
static int store_devcache_room(store_devcache_t *c, size_t len);
static void *store_dc_map(size_t size);
static void store_dc_unmap(void *p, size_t size);
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
    const char *id, const char *owner, store_err_t *err);
static int store_id_owner_cb(const store_device_t *dev, void *arg);
static uint64_t store_hash64(const char *s);
static int store_idset_cb(const store_device_t *dev, void *arg);
static int store_find_id_cb(const store_device_t *dev, void *arg);
static int store_device_iterate(store_t *st, MDB_txn *txn,
    store_device_cb cb, void *arg, store_err_t *err);
static int store_rec_get(store_t *st, MDB_txn *txn, MDB_dbi dbi,
    MDB_val *key, MDB_val *val, const char *what, store_err_t *err);
static int store_walk(store_t *st, MDB_txn *txn, MDB_dbi dbi,
    const char *what, store_visit_pt visit, void *arg, store_err_t *err);
static int store_read_walk(store_t *st, MDB_dbi dbi, const char *what,
    store_visit_pt visit, void *arg, store_err_t *err);
static int store_device_visit(const MDB_val *key, const MDB_val *val,
    void *arg, store_err_t *err);
static int store_user_visit(const MDB_val *key, const MDB_val *val,
    void *arg, store_err_t *err);
static int store_session_visit(const MDB_val *key, const MDB_val *val,
    void *arg, store_err_t *err);
static int store_device_read(store_t *st, MDB_txn *txn,
    const uint8_t fp[STORE_FP_LEN], store_device_t *dev, store_err_t *err);
static int store_device_rewrite(store_t *st, MDB_txn *txn,
    const store_device_t *dev, store_err_t *err);
static void store_be64(uint8_t *p, uint64_t v);
static uint64_t store_get_be64(const uint8_t *p);
static void store_clean(char *dst, size_t size, const char *src);
static int store_identity_ready(const store_t *st, store_err_t *err);
static int store_user_check(const store_user_t *u, store_err_t *err);
static size_t store_user_encode(const store_user_t *u, uint8_t *buf,
    size_t size);
static int store_user_decode(const MDB_val *key, const MDB_val *val,
    store_user_t *u, store_err_t *err);
static int store_user_read(store_t *st, MDB_txn *txn, const char *name,
    store_user_t *u, store_err_t *err);
static int store_user_put(store_t *st, MDB_txn *txn, const store_user_t *u,
    unsigned flags, const char *what, store_err_t *err);
static int store_user_write(store_t *st, const store_user_t *u,
    const char *actor, const char *action, const char *detail, int revoke,
    unsigned *revoked, store_err_t *err);
static int store_session_check(const store_session_t *s, store_err_t *err);
static size_t store_session_encode(const store_session_t *s, uint8_t *buf,
    size_t size);
static int store_session_decode(const MDB_val *key, const MDB_val *val,
    store_session_t *s, store_err_t *err);
static int store_session_read(store_t *st, MDB_txn *txn, const char *sid,
    store_session_t *s, store_err_t *err);
static int store_session_put(store_t *st, MDB_txn *txn,
    const store_session_t *s, unsigned flags, const char *what,
    store_err_t *err);
static int store_revoke_matches(const store_revoke_match_t *m,
    const store_session_t *s);
static int store_session_revoke_where(store_t *st, MDB_txn *txn,
    const store_revoke_match_t *m, int64_t now, unsigned *count,
    store_err_t *err);
static int store_session_revoke_all(store_t *st, MDB_txn *txn,
    const char *user, int64_t now, unsigned *count, store_err_t *err);
static int store_open_posture_db(store_t *st, MDB_txn *txn,
    unsigned dbflags, store_err_t *err);
static int store_posture_ready(const store_t *st, store_err_t *err);
static int store_flag_ok(store_flag_t flag);
static int store_posture_check(const store_posture_t *p, store_err_t *err);
static size_t store_posture_encode(const store_posture_t *p, uint8_t *buf,
    size_t size);
static int store_posture_decode(const MDB_val *key, const MDB_val *val,
    store_posture_t *p, store_err_t *err);
static int store_posture_read(store_t *st, MDB_txn *txn,
    const uint8_t fp[STORE_FP_LEN], store_posture_t *out, store_err_t *err);
static int store_posture_write(store_t *st, MDB_txn *txn,
    const store_posture_t *p, const char *actor, int64_t now,
    store_device_t *dev, store_err_t *err);
static int store_session_revoke_device(store_t *st, MDB_txn *txn,
    const uint8_t fp[STORE_FP_LEN], const char *keep_user, int64_t now,
    unsigned *count, store_err_t *err);


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

    if (rc == STORE_RC_REPL) {
        store_seterr(err, "%s: %s", what,
                     st != NULL ? st->repl_msg : "cluster write failed");
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


/* ---- the replicated write transaction (cluster mode, store.h) ---- */

static MDB_dbi
store_db_dbi(store_t *st, const char *db, int *ok)
{
    static const struct { const char *name; size_t off; } dbs[] = {
        { "devices", offsetof(store_t, devices) },
        { "users", offsetof(store_t, users) },
        { "sessions", offsetof(store_t, sessions) },
        { "posture", offsetof(store_t, posture) },
        { "history", offsetof(store_t, history) },
        { "blocklist", offsetof(store_t, blocklist) },
        { "webauthn", offsetof(store_t, webauthn) },
        { "wa_codes", offsetof(store_t, wa_codes) },
    };
    size_t  i;

    *ok = 0;

    for (i = 0; i < sizeof(dbs) / sizeof(dbs[0]); i++) {
        if (db != NULL && strcmp(db, dbs[i].name) == 0) {
            if (st == NULL) {
                *ok = 1;
                return 0;
            }

            *ok = st->identity && st->has_posture && st->has_trust
                  && st->has_webauthn;
            return *(MDB_dbi *) ((char *) st + dbs[i].off);
        }
    }

    return 0;
}


static const char *
store_dbi_name(const store_t *st, MDB_dbi dbi)
{
    if (dbi == st->devices) {
        return "devices";
    }
    if (dbi == st->users) {
        return "users";
    }
    if (dbi == st->sessions) {
        return "sessions";
    }
    if (dbi == st->posture) {
        return "posture";
    }
    if (dbi == st->history) {
        return "history";
    }
    if (dbi == st->blocklist) {
        return "blocklist";
    }
    if (dbi == st->webauthn) {
        return "webauthn";
    }
    if (dbi == st->wa_codes) {
        return "wa_codes";
    }

    return NULL;
}


int
store_db_replicated(const char *db)
{
    int  ok;

    (void) store_db_dbi(NULL, db, &ok);

    return ok;
}


void
store_set_repl(store_t *st, const store_repl_t *repl, void *ctx)
{
    st->repl = repl;
    st->repl_ctx = ctx;
}


static int
store_meta_u64(store_t *st, MDB_txn *txn, const char *name, uint64_t *v)
{
    MDB_val  key, val;
    int      rc;

    key.mv_data = (void *) (uintptr_t) name;
    key.mv_size = strlen(name);

    rc = mdb_get(txn, st->meta, &key, &val);
    if (rc == MDB_NOTFOUND) {
        *v = 0;
        return MDB_SUCCESS;
    }

    if (rc == MDB_SUCCESS) {
        *v = val.mv_size == 8 ? store_get_be64(val.mv_data) : 0;
    }

    return rc;
}


static int
store_meta_put(store_t *st, MDB_txn *txn, const char *name,
    const void *data, size_t len)
{
    MDB_val  key, val;

    key.mv_data = (void *) (uintptr_t) name;
    key.mv_size = strlen(name);
    val.mv_data = (void *) (uintptr_t) data;
    val.mv_size = len;

    return mdb_put(txn, st->meta, &key, &val, 0);
}


/* The position, and the tag of the change at it (0: unknown, removed). */
static int
store_pos_put(store_t *st, MDB_txn *txn, uint64_t pos, uint64_t tag)
{
    MDB_val  key;
    uint8_t  buf[8];
    int      rc;

    store_be64(buf, pos);

    rc = store_meta_put(st, txn, STORE_CLUSTER_POS_KEY, buf, sizeof(buf));
    if (rc != MDB_SUCCESS) {
        return rc;
    }

    if (tag != 0) {
        store_be64(buf, tag);
        return store_meta_put(st, txn, STORE_CLUSTER_TAG_KEY, buf,
                              sizeof(buf));
    }

    key.mv_data = (void *) STORE_CLUSTER_TAG_KEY;
    key.mv_size = sizeof(STORE_CLUSTER_TAG_KEY) - 1;
    rc = mdb_del(txn, st->meta, &key, NULL);

    return rc == MDB_NOTFOUND ? MDB_SUCCESS : rc;
}


/* Record that the replicated write changed key of dbi. */
static int
store_cap(store_t *st, MDB_txn *txn, MDB_dbi dbi, const MDB_val *key)
{
    store_cap_t  *cap;
    uint8_t      *buf;
    size_t        size;

    if (st->wtxn != txn || st->repl == NULL) {
        return MDB_SUCCESS;
    }

    if (st->ncap == st->capsize) {
        size = st->capsize ? 2 * st->capsize : 16;
        cap = realloc(st->cap, size * sizeof(*cap));
        if (cap == NULL) {
            return ENOMEM;
        }
        st->cap = cap;
        st->capsize = size;
    }

    if (st->caplen + key->mv_size > st->capbufsize) {
        size = st->capbufsize ? 2 * st->capbufsize : 1024;
        while (size < st->caplen + key->mv_size) {
            size *= 2;
        }
        buf = realloc(st->capbuf, size);
        if (buf == NULL) {
            return ENOMEM;
        }
        st->capbuf = buf;
        st->capbufsize = size;
    }

    memcpy(st->capbuf + st->caplen, key->mv_data, key->mv_size);
    st->cap[st->ncap].dbi = dbi;
    st->cap[st->ncap].len = (uint32_t) key->mv_size;
    st->cap[st->ncap].off = st->caplen;
    st->ncap++;
    st->caplen += key->mv_size;

    return MDB_SUCCESS;
}


static int
store_put(store_t *st, MDB_txn *txn, MDB_dbi dbi, MDB_val *key,
    MDB_val *val, unsigned flags)
{
    int  rc;

    rc = mdb_put(txn, dbi, key, val, flags);

    return rc == MDB_SUCCESS ? store_cap(st, txn, dbi, key) : rc;
}


static int
store_del(store_t *st, MDB_txn *txn, MDB_dbi dbi, MDB_val *key,
    MDB_val *val)
{
    int  rc;

    rc = mdb_del(txn, dbi, key, val);

    return rc == MDB_SUCCESS ? store_cap(st, txn, dbi, key) : rc;
}


/* Where store_apply_one() applies changes. */
typedef struct {
    store_t     *st;
    MDB_txn     *txn;
    uint64_t     pos;
    unsigned     touched;
} store_applying_t;


static unsigned
store_touched_bit(const store_t *st, MDB_dbi dbi)
{
    return dbi == st->devices ? STORE_TOUCHED_DEVICES
           : dbi == st->blocklist ? STORE_TOUCHED_BLOCKLIST
           : dbi == st->users ? STORE_TOUCHED_USERS
           : dbi == st->sessions ? STORE_TOUCHED_SESSIONS : 0;
}


static int
store_apply_one(void *arg, const store_change_t *chg, store_err_t *err)
{
    store_applying_t  *a = arg;
    store_t           *st = a->st;
    MDB_val            key, val;
    MDB_dbi            dbi;
    unsigned           touched;
    size_t             i;
    int                rc, ok;

    if (chg->seq <= a->pos) {
        /* applied already (a write on this node caught it up), but
         * what it touched is still news to the follower's caller */
        for (i = 0; i < chg->nops; i++) {
            dbi = store_db_dbi(st, chg->ops[i].db, &ok);
            if (ok) {
                a->touched |= store_touched_bit(st, dbi);
            }
        }
        return 0;
    }

    if (chg->seq != a->pos + 1) {
        store_seterr(err, "change %llu is missing from the change log "
                     "(next available: %llu)",
                     (unsigned long long) a->pos + 1,
                     (unsigned long long) chg->seq);
        return STORE_GAP;
    }

    touched = 0;

    for (i = 0; i < chg->nops; i++) {
        dbi = store_db_dbi(st, chg->ops[i].db, &ok);
        if (!ok) {
            store_seterr(err, "change %llu names an unknown database",
                         (unsigned long long) chg->seq);
            return -1;
        }

        key.mv_data = (void *) (uintptr_t) chg->ops[i].key;
        key.mv_size = chg->ops[i].klen;

        if (key.mv_size == 0 || key.mv_size > 511) {
            store_seterr(err, "change %llu has an invalid key",
                         (unsigned long long) chg->seq);
            return -1;
        }

        if (chg->ops[i].val != NULL) {
            val.mv_data = (void *) (uintptr_t) chg->ops[i].val;
            val.mv_size = chg->ops[i].vlen;
            rc = mdb_put(a->txn, dbi, &key, &val, 0);

        } else {
            rc = mdb_del(a->txn, dbi, &key, NULL);
            if (rc == MDB_NOTFOUND) {
                rc = MDB_SUCCESS;
            }
        }

        if (rc != MDB_SUCCESS) {
            store_mdb_err(st, err, rc, "cannot apply a cluster change");
            return -1;
        }

        touched |= store_touched_bit(st, dbi);
    }

    if ((touched & STORE_TOUCHED_DEVICES)
        && store_devices_bump(st, a->txn, err) != 0)
    {
        return -1;
    }

    rc = store_pos_put(st, a->txn, chg->seq, chg->tag);
    if (rc != MDB_SUCCESS) {
        store_mdb_err(st, err, rc, "cannot record the cluster position");
        return -1;
    }

    a->pos = chg->seq;
    a->touched |= touched;

    return 0;
}


/*
 * A write without a replicator: refused on a store that is a cluster
 * node's copy, where it would reach neither the database nor the other
 * nodes, and be overwritten by the next change to the same record.
 */
static int
store_local_wbegin(store_t *st, MDB_txn **txn, store_err_t *err)
{
    MDB_val  key, val;
    int      rc;

    if (store_txn_begin(st, 0, txn, err) != 0) {
        return -1;
    }

    key.mv_data = (void *) STORE_CLUSTER_ID_KEY;
    key.mv_size = sizeof(STORE_CLUSTER_ID_KEY) - 1;

    rc = mdb_get(*txn, st->meta, &key, &val);
    if (rc == MDB_NOTFOUND) {
        return 0;
    }

    mdb_txn_abort(*txn);

    if (rc == MDB_SUCCESS) {
        store_seterr(err, "this store is a cluster node's copy (cluster "
                     "%.*s): changes go through the cluster database; use "
                     "the node's trustd.conf (ztctl -c) rather than the "
                     "store directory", (int) (val.mv_size < 64
                                               ? val.mv_size : 64),
                     (const char *) val.mv_data);
    } else {
        store_mdb_err(st, err, rc, "cannot read the cluster state");
    }

    return -1;
}


/*
 * Begin a write transaction that changes replicated databases.  Without
 * a replicator, a plain write transaction.  With one: the cluster lock,
 * then the LMDB write lock, then the changes this node has not applied
 * yet, so that what the caller reads is the cluster's current state.
 */
static int
store_wbegin(store_t *st, MDB_txn **txn, store_err_t *err)
{
    store_applying_t  a;
    uint64_t          head, pos;
    int               rc;

    if (st->repl == NULL) {
        return store_local_wbegin(st, txn, err);
    }

    if (st->repl->lock(st->repl_ctx, &head, err) != 0) {
        return -1;
    }

    if (store_txn_begin(st, 0, txn, err) != 0) {
        st->repl->unlock(st->repl_ctx);
        return -1;
    }

    rc = store_meta_u64(st, *txn, STORE_CLUSTER_POS_KEY, &pos);
    if (rc != MDB_SUCCESS) {
        store_mdb_err(st, err, rc, "cannot read the cluster position");
        goto failed;
    }

    if (pos > head) {
        store_seterr(err, "this node's store has applied change %llu but "
                     "the cluster database ends at %llu (was the database "
                     "restored?): bootstrap this node again "
                     "(docs/cluster.md)", (unsigned long long) pos,
                     (unsigned long long) head);
        goto failed;
    }

    if (pos < head) {
        a.st = st;
        a.txn = *txn;
        a.pos = pos;
        a.touched = 0;

        if (st->repl->fetch(st->repl_ctx, pos, head, store_apply_one, &a,
                            err)
            != 0)
        {
            goto failed;
        }

        if (a.pos != head) {
            store_seterr(err, "the change log ends at %llu, not at %llu",
                         (unsigned long long) a.pos,
                         (unsigned long long) head);
            goto failed;
        }
    }

    __atomic_store_n(&st->wtxn, *txn, __ATOMIC_RELAXED);
    st->ncap = 0;
    st->caplen = 0;
    memset(&st->cinfo, 0, sizeof(st->cinfo));

    return 0;

failed:

    mdb_txn_abort(*txn);
    st->repl->unlock(st->repl_ctx);

    return -1;
}


static int
store_cap_cmp(const void *a, const void *b, void *arg)
{
    const store_cap_t  *x = a, *y = b;
    const uint8_t      *buf = arg;
    int                 c;

    if (x->dbi != y->dbi) {
        return x->dbi < y->dbi ? -1 : 1;
    }

    if (x->len != y->len) {
        return x->len < y->len ? -1 : 1;
    }

    c = memcmp(buf + x->off, buf + y->off, x->len);

    return c != 0 ? c : (x->off < y->off ? -1 : x->off > y->off);
}


/*
 * Commit a transaction.  A replicated write sends the final value of
 * every key it changed to the cluster first and commits locally only if
 * the cluster took it.  Returns an LMDB code, or STORE_RC_REPL with the
 * reason in st->repl_msg.
 */
static int
store_commit(store_t *st, MDB_txn *txn)
{
    store_op_t  *ops;
    store_err_t  e;
    MDB_val      key, val;
    uint64_t     seq;
    size_t       i, n;
    int          rc;

    if (st->repl == NULL
        || __atomic_load_n(&st->wtxn, __ATOMIC_RELAXED) != txn)
    {
        return mdb_txn_commit(txn);
    }

    __atomic_store_n(&st->wtxn, NULL, __ATOMIC_RELAXED);

    if (st->ncap == 0) {
        st->repl->unlock(st->repl_ctx);
        return mdb_txn_commit(txn);
    }

    qsort_r(st->cap, st->ncap, sizeof(store_cap_t), store_cap_cmp,
            st->capbuf);

    ops = calloc(st->ncap, sizeof(*ops));
    if (ops == NULL) {
        mdb_txn_abort(txn);
        st->repl->unlock(st->repl_ctx);
        return ENOMEM;
    }

    n = 0;

    for (i = 0; i < st->ncap; i++) {
        if (i > 0 && st->cap[i].dbi == st->cap[i - 1].dbi
            && st->cap[i].len == st->cap[i - 1].len
            && memcmp(st->capbuf + st->cap[i].off,
                      st->capbuf + st->cap[i - 1].off, st->cap[i].len) == 0)
        {
            continue;
        }

        key.mv_data = st->capbuf + st->cap[i].off;
        key.mv_size = st->cap[i].len;

        rc = mdb_get(txn, st->cap[i].dbi, &key, &val);
        if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND) {
            free(ops);
            mdb_txn_abort(txn);
            st->repl->unlock(st->repl_ctx);
            return rc;
        }

        ops[n].db = store_dbi_name(st, st->cap[i].dbi);
        ops[n].key = key.mv_data;
        ops[n].klen = key.mv_size;
        ops[n].val = rc == MDB_SUCCESS ? val.mv_data : NULL;
        ops[n].vlen = rc == MDB_SUCCESS ? val.mv_size : 0;
        n++;
    }

    /* the replicator releases the cluster lock, committed or not */
    if (st->repl->commit(st->repl_ctx, ops, n, &st->cinfo, &seq, &e) != 0) {
        free(ops);
        mdb_txn_abort(txn);
        snprintf(st->repl_msg, sizeof(st->repl_msg), "%s", e.msg);
        return STORE_RC_REPL;
    }

    free(ops);

    rc = store_pos_put(st, txn, seq, st->repl->last_tag != NULL
                                     ? st->repl->last_tag(st->repl_ctx) : 0);
    if (rc != MDB_SUCCESS) {
        mdb_txn_abort(txn);
        return rc;
    }

    /* if this fails, the change is in the cluster and arrives by the
     * change log like any other */
    return mdb_txn_commit(txn);
}


static void
store_abort(store_t *st, MDB_txn *txn)
{
    if (st->repl != NULL && __atomic_load_n(&st->wtxn, __ATOMIC_RELAXED)
                            == txn)
    {
        __atomic_store_n(&st->wtxn, NULL, __ATOMIC_RELAXED);
        mdb_txn_abort(txn);
        st->repl->unlock(st->repl_ctx);
        return;
    }

    mdb_txn_abort(txn);
}


int
store_open(store_t **stp, const char *path, size_t map_size,
    unsigned flags, store_err_t *err)
{
    store_t      *st;
    struct stat   sb;
    MDB_envinfo   info;
    MDB_stat      ms;
    char          file[PATH_MAX];
    int           rc, dead, exists, grow;
    unsigned      envflags;

    *stp = NULL;

    /*
     * Only an explicit size grows an existing store.  Growing the map of
     * a store a running trustd has open makes trustd resize its own map,
     * which LMDB allows only while none of its threads holds a
     * transaction; a tool that names no size (ztctl -s) must not do it.
     */
    grow = map_size != 0;

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
    if (flags & STORE_NOSYNC) {
        envflags |= MDB_NOSYNC;
    }
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

    /*
     * A data file shorter than the pages its meta page says are in use
     * (cut short by a full disk or an interrupted copy) would fault on
     * the first read of a missing page: refuse it here instead.
     */
    if (exists && mdb_env_info(st->env, &info) == MDB_SUCCESS
        && mdb_env_stat(st->env, &ms) == MDB_SUCCESS
        && stat(file, &sb) == 0
        && ((uint64_t) info.me_last_pgno + 1) * ms.ms_psize
           > (uint64_t) sb.st_size)
    {
        store_seterr(err, "store \"%s\" is truncated: its data file has "
                     "%lld bytes, its pages need %llu", path,
                     (long long) sb.st_size,
                     (unsigned long long) (info.me_last_pgno + 1)
                     * ms.ms_psize);
        goto failed;
    }

    if (grow && exists && mdb_env_info(st->env, &info) == MDB_SUCCESS
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


/*
 * Open the named databases once; the handles live as long as the env.
 * With write access this is one write transaction that also creates a
 * new store or migrates an older one, so a crash leaves the store either
 * as it was or fully upgraded.
 */
static int
store_open_dbs(store_t *st, store_err_t *err)
{
    MDB_txn   *txn;
    uint32_t   version;
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

    rc = store_schema_read(st, txn, &version, err);
    if (rc == -1) {
        goto failed;
    }

    if (rc == STORE_NOTFOUND) {
        if (!create) {
            store_seterr(err, "store has not been initialized (no schema)");
            goto failed;
        }

        /* a new store */
        if (store_open_identity_dbs(st, txn, MDB_CREATE, err) != 0
            || store_open_posture_db(st, txn, MDB_CREATE, err) != 0
            || store_open_trust_dbs(st, txn, MDB_CREATE, err) != 0
            || store_open_webauthn_dbs(st, txn, MDB_CREATE, err) != 0
            || store_schema_write(st, txn, STORE_SCHEMA_VERSION, err) != 0)
        {
            goto failed;
        }

    } else if (version > STORE_SCHEMA_VERSION) {
        store_seterr(err, "store schema version %u is newer than this "
                     "program supports (%u); upgrade ztgate",
                     version, STORE_SCHEMA_VERSION);
        goto failed;

    } else if (version == 0) {
        store_seterr(err, "store schema version %u is invalid", version);
        goto failed;

    } else if (version < STORE_SCHEMA_VERSION) {
        /*
         * A read-only opener cannot migrate: it sees what the old
         * schema has (no users and sessions before 2, no posture before
         * 3) until a writer opens it.
         */
        if (create) {
            if (store_migrate(st, txn, version, err) != 0) {
                goto failed;
            }

        } else if ((version >= 2
                    && store_open_identity_dbs(st, txn, 0, err) != 0)
                   || (version >= 3
                       && store_open_posture_db(st, txn, 0, err) != 0)
                   || (version >= 4
                       && store_open_trust_dbs(st, txn, 0, err) != 0)
                   || (version >= 6
                       && store_open_webauthn_dbs(st, txn, 0, err) != 0))
        {
            goto failed;
        }

    } else if (store_open_identity_dbs(st, txn, 0, err) != 0
               || store_open_posture_db(st, txn, 0, err) != 0
               || store_open_trust_dbs(st, txn, 0, err) != 0
               || store_open_webauthn_dbs(st, txn, 0, err) != 0)
    {
        goto failed;
    }

    /* committing (even a read-only txn) keeps the dbi handles open */
    rc = store_commit(st, txn);
    if (rc != MDB_SUCCESS) {
        st->identity = 0;
        st->has_posture = 0;
        st->has_trust = 0;
        st->has_webauthn = 0;
        store_mdb_err(st, err, rc, "cannot initialize store");
        return -1;
    }

    return 0;

failed:

    st->identity = 0;
    st->has_posture = 0;
    st->has_trust = 0;
    st->has_webauthn = 0;
    store_abort(st, txn);

    return -1;
}


/* 0 and *version, STORE_NOTFOUND for a store without one, or -1. */
static int
store_schema_read(store_t *st, MDB_txn *txn, uint32_t *version,
    store_err_t *err)
{
    MDB_val   key, val;
    uint8_t  *p;
    int       rc;

    key.mv_data = (void *) STORE_SCHEMA_KEY;
    key.mv_size = sizeof(STORE_SCHEMA_KEY) - 1;

    rc = mdb_get(txn, st->meta, &key, &val);
    if (rc == MDB_NOTFOUND) {
        return STORE_NOTFOUND;
    }

    if (rc != MDB_SUCCESS) {
        store_mdb_err(st, err, rc, "cannot read store schema version");
        return -1;
    }

    if (val.mv_size != 4) {
        store_seterr(err, "store schema version record is corrupt");
        return -1;
    }

    p = val.mv_data;
    *version = ((uint32_t) p[0] << 24) | ((uint32_t) p[1] << 16)
               | ((uint32_t) p[2] << 8) | (uint32_t) p[3];

    return 0;
}


static int
store_schema_write(store_t *st, MDB_txn *txn, uint32_t version,
    store_err_t *err)
{
    MDB_val  key, val;
    uint8_t  buf[4];
    int      rc;

    buf[0] = (uint8_t) (version >> 24);
    buf[1] = (uint8_t) (version >> 16);
    buf[2] = (uint8_t) (version >> 8);
    buf[3] = (uint8_t) version;

    key.mv_data = (void *) STORE_SCHEMA_KEY;
    key.mv_size = sizeof(STORE_SCHEMA_KEY) - 1;
    val.mv_data = buf;
    val.mv_size = sizeof(buf);

    rc = mdb_put(txn, st->meta, &key, &val, 0);
    if (rc != MDB_SUCCESS) {
        store_mdb_err(st, err, rc, "cannot write store schema version");
        return -1;
    }

    return 0;
}


/* The databases of schema 2.  Without MDB_CREATE a missing one is damage. */
static int
store_open_identity_dbs(store_t *st, MDB_txn *txn, unsigned dbflags,
    store_err_t *err)
{
    int  rc;

    rc = mdb_dbi_open(txn, "users", dbflags, &st->users);
    if (rc == MDB_SUCCESS) {
        rc = mdb_dbi_open(txn, "sessions", dbflags, &st->sessions);
    }

    if (rc == MDB_NOTFOUND) {
        store_seterr(err, "store is damaged: schema version %u without "
                     "its users and sessions databases",
                     STORE_SCHEMA_VERSION);
        return -1;
    }

    if (rc != MDB_SUCCESS) {
        store_mdb_err(st, err, rc, "cannot open store databases");
        return -1;
    }

    st->identity = 1;

    return 0;
}


/*
 * Bring a store of schema version from up to STORE_SCHEMA_VERSION inside
 * txn, one step per version, and record it in the audit log.
 */
static int
store_migrate(store_t *st, MDB_txn *txn, uint32_t from, store_err_t *err)
{
    uint32_t  v;
    char      detail[64];

    for (v = from; v < STORE_SCHEMA_VERSION; v++) {
        switch (v) {

        case 1:
            /* 1 -> 2: users and sessions, both empty */
            if (store_open_identity_dbs(st, txn, MDB_CREATE, err) != 0) {
                return -1;
            }
            break;

        case 2:
            /* 2 -> 3: posture, empty; devices keep their records */
            if ((!st->identity
                 && store_open_identity_dbs(st, txn, 0, err) != 0)
                || store_open_posture_db(st, txn, MDB_CREATE, err) != 0)
            {
                return -1;
            }
            break;

        case 3:
            /* 3 -> 4: history and blocklist, both empty */
            if ((!st->identity
                 && store_open_identity_dbs(st, txn, 0, err) != 0)
                || (!st->has_posture
                    && store_open_posture_db(st, txn, 0, err) != 0)
                || store_open_trust_dbs(st, txn, MDB_CREATE, err) != 0)
            {
                return -1;
            }
            break;

        case 4:
            /* 4 -> 5: chain the audit records (v1 -> v2) in order */
            if ((!st->identity
                 && store_open_identity_dbs(st, txn, 0, err) != 0)
                || (!st->has_posture
                    && store_open_posture_db(st, txn, 0, err) != 0)
                || (!st->has_trust
                    && store_open_trust_dbs(st, txn, 0, err) != 0)
                || store_journal_rechain(st, txn, err) != 0)
            {
                return -1;
            }
            break;

        case 5:
            /* 5 -> 6: WebAuthn credentials and enrollment codes, empty */
            if ((!st->identity
                 && store_open_identity_dbs(st, txn, 0, err) != 0)
                || (!st->has_posture
                    && store_open_posture_db(st, txn, 0, err) != 0)
                || (!st->has_trust
                    && store_open_trust_dbs(st, txn, 0, err) != 0)
                || store_open_webauthn_dbs(st, txn, MDB_CREATE, err) != 0)
            {
                return -1;
            }
            break;

        default:
            store_seterr(err, "no migration from store schema version %u",
                         v);
            return -1;
        }
    }

    if (store_schema_write(st, txn, STORE_SCHEMA_VERSION, err) != 0) {
        return -1;
    }

    snprintf(detail, sizeof(detail), "schema %u -> %u", from,
             STORE_SCHEMA_VERSION);

    if (store_audit_append(st, txn, STORE_SYSTEM_ACTOR, "store.migrate",
                           "store", detail, (int64_t) time(NULL), err)
        != 0)
    {
        return -1;
    }

    return 0;
}


int
store_backup(store_t *st, const char *dir, store_err_t *err)
{
    struct stat  sb;
    char         tmp[PATH_MAX], final[PATH_MAX];
    int          fd, rc;

    if (snprintf(final, sizeof(final), "%s/data.mdb", dir)
        >= (int) sizeof(final)
        || snprintf(tmp, sizeof(tmp), "%s/.data.mdb.partial", dir)
           >= (int) sizeof(tmp))
    {
        store_seterr(err, "backup path \"%s\" is too long", dir);
        return -1;
    }

    if (stat(dir, &sb) == -1) {
        store_seterr(err, "backup directory \"%s\": %s", dir,
                     strerror(errno));
        return -1;
    }

    if (!S_ISDIR(sb.st_mode)) {
        store_seterr(err, "backup directory \"%s\" is not a directory",
                     dir);
        return -1;
    }

    if (stat(final, &sb) == 0) {
        store_seterr(err, "%s already exists; back up into an empty "
                     "directory", final);
        return -1;
    }

    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd == -1) {
        store_seterr(err, "cannot create %s: %s", tmp, strerror(errno));
        return -1;
    }

    /* one read transaction: a snapshot, whatever writers do meanwhile */
    rc = mdb_env_copyfd2(st->env, fd, MDB_CP_COMPACT);
    if (rc != MDB_SUCCESS) {
        store_mdb_err(st, err, rc, "cannot copy the store");
        goto failed;
    }

    if (fsync(fd) == -1) {
        store_seterr(err, "cannot sync %s: %s", tmp, strerror(errno));
        goto failed;
    }

    if (close(fd) == -1) {
        fd = -1;
        store_seterr(err, "cannot write %s: %s", tmp, strerror(errno));
        goto failed;
    }

    fd = -1;

    if (rename(tmp, final) == -1) {
        store_seterr(err, "cannot rename %s to %s: %s", tmp, final,
                     strerror(errno));
        goto failed;
    }

    /* the rename itself is durable once the directory is synced */
    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd != -1) {
        (void) fsync(fd);
        close(fd);
    }

    return 0;

failed:

    if (fd != -1) {
        close(fd);
    }
    unlink(tmp);

    return -1;
}


void
store_close(store_t *st)
{
    if (st == NULL) {
        return;
    }

    mdb_env_close(st->env);
    free(st->cap);
    free(st->capbuf);
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
store_put_u8(store_wr_t *w, uint8_t v)
{
    if (w->end - w->p < 1) {
        w->overflow = 1;
        return;
    }

    *w->p++ = v;
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
store_put_u32(store_wr_t *w, uint32_t v)
{
    if (w->end - w->p < 4) {
        w->overflow = 1;
        return;
    }

    w->p[0] = (uint8_t) (v >> 24);
    w->p[1] = (uint8_t) (v >> 16);
    w->p[2] = (uint8_t) (v >> 8);
    w->p[3] = (uint8_t) v;
    w->p += 4;
}


/* Opaque bytes: u16 length + bytes. */
static void
store_put_bytes(store_wr_t *w, const uint8_t *p, size_t len)
{
    if (len > UINT16_MAX) {
        w->overflow = 1;
        return;
    }

    store_put_u16(w, (uint16_t) len);

    if (w->overflow || (size_t) (w->end - w->p) < len) {
        w->overflow = 1;
        return;
    }

    if (len > 0) {
        memcpy(w->p, p, len);
        w->p += len;
    }
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


static int
store_get_u32(store_rd_t *r, uint32_t *v)
{
    if (r->end - r->p < 4) {
        return -1;
    }

    *v = ((uint32_t) r->p[0] << 24) | ((uint32_t) r->p[1] << 16)
         | ((uint32_t) r->p[2] << 8) | (uint32_t) r->p[3];
    r->p += 4;

    return 0;
}


/* Opaque bytes written by store_put_bytes(); at most size of them. */
static int
store_get_bytes(store_rd_t *r, uint8_t *dst, size_t size, size_t *len)
{
    uint16_t  n;

    if (store_get_u16(r, &n) != 0
        || (size_t) (r->end - r->p) < n
        || (size_t) n > size)
    {
        return -1;
    }

    if (n > 0) {
        memcpy(dst, r->p, n);
        r->p += n;
    }

    *len = n;

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
    store_wr_t              w;
    const store_decision_t *d;
    unsigned                i, n;

    w.p = buf;
    w.end = buf + size;
    w.overflow = 0;

    store_put_u8(&w, STORE_AUDIT_REC_V2);
    store_put_u8(&w, (uint8_t) rec->kind);
    store_put_u64(&w, (uint64_t) rec->time_ms);
    store_put_bytes(&w, rec->prev, STORE_HASH_LEN);
    store_put_bytes(&w, rec->hash, STORE_HASH_LEN);

    if (rec->kind == STORE_AUDIT_DECISION) {
        d = &rec->d;
        n = d->nsignals <= STORE_DECISION_SIGNALS ? d->nsignals
                                                  : STORE_DECISION_SIGNALS;
        store_put_u8(&w, d->outcome);
        store_put_u16(&w, d->status);
        store_put_u32(&w, d->ttl_ms);
        store_put_u32(&w, d->count);
        store_put_u16(&w, (uint16_t) d->score);
        store_put_u8(&w, (uint8_t) n);

        for (i = 0; i < n; i++) {
            store_put_u8(&w, d->value[i]);
            store_put_u16(&w, (uint16_t) d->points[i]);
        }

        store_put_str(&w, d->method);
        store_put_str(&w, d->host);
        store_put_str(&w, d->path);
        store_put_str(&w, d->source);
        store_put_str(&w, d->user);
        store_put_str(&w, d->session);
        store_put_str(&w, d->device);
        store_put_str(&w, d->device_fp);
        store_put_str(&w, d->app);
        store_put_str(&w, d->rule);
        store_put_str(&w, d->where);
        store_put_str(&w, d->reason);
        store_put_str(&w, d->policy);

    } else {
        store_put_str(&w, rec->actor);
        store_put_str(&w, rec->action);
        store_put_str(&w, rec->subject);
        store_put_str(&w, rec->detail);
    }

    if (w.overflow) {
        return 0;
    }

    return (size_t) (w.p - buf);
}


/*
 * Decode an audit record: version 2 (schema 5 on), or version 1, which
 * only the migration to schema 5 reads (no kind, seconds, no hashes).
 */
static int
store_audit_decode(const MDB_val *key, const MDB_val *val,
    store_audit_t *rec, store_err_t *err)
{
    store_rd_t         r;
    store_decision_t  *d;
    uint8_t            version, kind, n;
    uint16_t           u16;
    uint64_t           t;
    size_t             len;
    unsigned           i;

    memset(rec, 0, sizeof(*rec));

    if (key->mv_size != 8) {
        store_seterr(err, "corrupt audit record: key of %zu bytes",
                     key->mv_size);
        return -1;
    }

    rec->seq = store_get_be64(key->mv_data);

    r.p = val->mv_data;
    r.end = r.p + val->mv_size;

    if (store_get_u8(&r, &version) != 0) {
        goto corrupt;
    }

    if (version == STORE_AUDIT_REC_V1) {
        if (store_get_u64(&r, &t) != 0) {
            goto corrupt;
        }
        rec->kind = STORE_AUDIT_ACTION;
        rec->time_ms = (int64_t) t * 1000;

    } else if (version == STORE_AUDIT_REC_V2) {
        if (store_get_u8(&r, &kind) != 0
            || (kind != STORE_AUDIT_ACTION && kind != STORE_AUDIT_DECISION)
            || store_get_u64(&r, &t) != 0
            || store_get_bytes(&r, rec->prev, STORE_HASH_LEN, &len) != 0
            || len != STORE_HASH_LEN
            || store_get_bytes(&r, rec->hash, STORE_HASH_LEN, &len) != 0
            || len != STORE_HASH_LEN)
        {
            goto corrupt;
        }
        rec->kind = kind;
        rec->time_ms = (int64_t) t;

    } else {
        store_seterr(err, "audit record %llu: version %u not supported",
                     (unsigned long long) rec->seq, version);
        return -1;
    }

    rec->time = rec->time_ms / 1000;

    if (rec->kind == STORE_AUDIT_DECISION) {
        d = &rec->d;

        if (store_get_u8(&r, &d->outcome) != 0
            || store_get_u16(&r, &d->status) != 0
            || store_get_u32(&r, &d->ttl_ms) != 0
            || store_get_u32(&r, &d->count) != 0
            || store_get_u16(&r, &u16) != 0
            || store_get_u8(&r, &n) != 0
            || n > STORE_DECISION_SIGNALS)
        {
            goto corrupt;
        }

        d->score = (int16_t) u16;
        d->nsignals = n;

        for (i = 0; i < n; i++) {
            if (store_get_u8(&r, &d->value[i]) != 0
                || store_get_u16(&r, &u16) != 0)
            {
                goto corrupt;
            }
            d->points[i] = (int16_t) u16;
        }

        if (store_get_str(&r, d->method, sizeof(d->method)) != 0
            || store_get_str(&r, d->host, sizeof(d->host)) != 0
            || store_get_str(&r, d->path, sizeof(d->path)) != 0
            || store_get_str(&r, d->source, sizeof(d->source)) != 0
            || store_get_str(&r, d->user, sizeof(d->user)) != 0
            || store_get_str(&r, d->session, sizeof(d->session)) != 0
            || store_get_str(&r, d->device, sizeof(d->device)) != 0
            || store_get_str(&r, d->device_fp, sizeof(d->device_fp)) != 0
            || store_get_str(&r, d->app, sizeof(d->app)) != 0
            || store_get_str(&r, d->rule, sizeof(d->rule)) != 0
            || store_get_str(&r, d->where, sizeof(d->where)) != 0
            || store_get_str(&r, d->reason, sizeof(d->reason)) != 0
            || store_get_str(&r, d->policy, sizeof(d->policy)) != 0)
        {
            goto corrupt;
        }

        snprintf(rec->actor, sizeof(rec->actor), "%s",
                 d->user[0] != '\0' ? d->user : "-");
        snprintf(rec->action, sizeof(rec->action), "decision.%s",
                 wire_decision_name(d->outcome));
        snprintf(rec->subject, sizeof(rec->subject), "%.15s %.63s%.79s", d->method,
                 d->host, d->path);

    } else if (store_get_str(&r, rec->actor, sizeof(rec->actor)) != 0
               || store_get_str(&r, rec->action, sizeof(rec->action)) != 0
               || store_get_str(&r, rec->subject, sizeof(rec->subject))
                  != 0
               || store_get_str(&r, rec->detail, sizeof(rec->detail)) != 0)
    {
        goto corrupt;
    }

    if (r.p != r.end) {
        goto corrupt;
    }

    return 0;

corrupt:

    store_seterr(err, "audit record %llu is corrupt",
                 (unsigned long long) rec->seq);

    return -1;
}


/*
 * The end of the hash chain in txn: the last record's sequence number and
 * hash, or, with no record, the anchor retention left (or 0 and zeros).
 */
static int
store_chain_tail(store_t *st, MDB_txn *txn, store_chain_t *tail,
    store_err_t *err)
{
    MDB_cursor     *cur;
    MDB_val         key, val;
    store_audit_t   last;
    int             rc;

    rc = mdb_cursor_open(txn, st->audit, &cur);
    if (rc != MDB_SUCCESS) {
        store_mdb_err(st, err, rc, "cannot read the audit journal");
        return -1;
    }

    rc = mdb_cursor_get(cur, &key, &val, MDB_LAST);
    if (rc == MDB_SUCCESS) {
        rc = store_audit_decode(&key, &val, &last, err);
        mdb_cursor_close(cur);
        if (rc != 0) {
            return -1;
        }
        tail->seq = last.seq;
        memcpy(tail->hash, last.hash, STORE_HASH_LEN);
        return 0;
    }

    mdb_cursor_close(cur);

    if (rc != MDB_NOTFOUND) {
        store_mdb_err(st, err, rc, "cannot read the audit journal");
        return -1;
    }

    return store_chain_anchor(st, txn, tail, err);
}


/* The anchor retention left in meta, or 0 and zeros.  0 or -1. */
static int
store_chain_anchor(store_t *st, MDB_txn *txn, store_chain_t *anchor,
    store_err_t *err)
{
    MDB_val  key, val;
    int      rc;

    memset(anchor, 0, sizeof(*anchor));

    key.mv_data = (void *) STORE_ANCHOR_KEY;
    key.mv_size = sizeof(STORE_ANCHOR_KEY) - 1;

    rc = store_rec_get(st, txn, st->meta, &key, &val, "journal anchor", err);
    if (rc == STORE_NOTFOUND) {
        return 0;
    }

    if (rc != 0) {
        return -1;
    }

    if (val.mv_size != 8 + STORE_HASH_LEN) {
        store_seterr(err, "the journal anchor is corrupt");
        return -1;
    }

    anchor->seq = store_get_be64(val.mv_data);
    memcpy(anchor->hash, (const uint8_t *) val.mv_data + 8, STORE_HASH_LEN);

    return 0;
}


/*
 * Append *rec after tail in txn: the next sequence number, prev = the
 * tail's hash, hash of the canonical form.  Moves tail on.
 */
static int
store_chain_put(store_t *st, MDB_txn *txn, store_chain_t *tail,
    store_audit_t *rec, store_err_t *err)
{
    MDB_val   key, val;
    uint8_t   kbuf[8], vbuf[STORE_AUDIT_REC_MAX];
    size_t    len;
    int       rc;

    rec->seq = tail->seq + 1;
    rec->time = rec->time_ms / 1000;
    memcpy(rec->prev, tail->hash, STORE_HASH_LEN);

    if (journal_hash(rec, rec->hash) != 0) {
        store_seterr(err, "cannot hash audit record %llu",
                     (unsigned long long) rec->seq);
        return -1;
    }

    len = store_audit_encode(rec, vbuf, sizeof(vbuf));
    if (len == 0) {
        store_seterr(err, "audit record too large");
        return -1;
    }

    store_be64(kbuf, rec->seq);
    key.mv_data = kbuf;
    key.mv_size = sizeof(kbuf);
    val.mv_data = vbuf;
    val.mv_size = len;

    rc = mdb_put(txn, st->audit, &key, &val, MDB_APPEND);
    if (rc != MDB_SUCCESS) {
        store_mdb_err(st, err, rc, "cannot append audit record");
        return -1;
    }

    tail->seq = rec->seq;
    memcpy(tail->hash, rec->hash, STORE_HASH_LEN);

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
    store_chain_t   tail;

    memset(&rec, 0, sizeof(rec));
    rec.kind = STORE_AUDIT_ACTION;
    rec.time_ms = now * 1000;
    snprintf(rec.actor, sizeof(rec.actor), "%s",
             actor != NULL && actor[0] != '\0' ? actor : "unknown");
    snprintf(rec.action, sizeof(rec.action), "%s", action);
    snprintf(rec.subject, sizeof(rec.subject), "%s", subject);
    snprintf(rec.detail, sizeof(rec.detail), "%s",
             detail != NULL ? detail : "");

    if (st->wtxn == txn) {
        memcpy(st->cinfo.actor, rec.actor, sizeof(st->cinfo.actor));
        memcpy(st->cinfo.action, rec.action, sizeof(st->cinfo.action));
        snprintf(st->cinfo.subject, sizeof(st->cinfo.subject), "%s",
                 rec.subject);
    }

    if (store_chain_tail(st, txn, &tail, err) != 0) {
        return -1;
    }

    return store_chain_put(st, txn, &tail, &rec, err);
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
        store_abort(st, txn);
        return -1;
    }

    rc = store_commit(st, txn);
    if (rc != MDB_SUCCESS) {
        store_mdb_err(st, err, rc, what);
        return -1;
    }

    return 0;
}


/*
 * Look key up in dbi: 0 with *val set, STORE_NOTFOUND (*err untouched)
 * or -1 with what in *err.
 */
static int
store_rec_get(store_t *st, MDB_txn *txn, MDB_dbi dbi, MDB_val *key,
    MDB_val *val, const char *what, store_err_t *err)
{
    int  rc;

    rc = mdb_get(txn, dbi, key, val);
    if (rc == MDB_NOTFOUND) {
        return STORE_NOTFOUND;
    }

    if (rc != MDB_SUCCESS) {
        store_mdb_err(st, err, rc, what);
        return -1;
    }

    return 0;
}


/*
 * Call visit for every record of dbi in key order, inside txn; what says
 * what failed if LMDB does.  Returns 0 or -1.
 */
static int
store_walk(store_t *st, MDB_txn *txn, MDB_dbi dbi, const char *what,
    store_visit_pt visit, void *arg, store_err_t *err)
{
    MDB_cursor     *cur;
    MDB_val         key, val;
    int             rc, ret;
    MDB_cursor_op   op;

    rc = mdb_cursor_open(txn, dbi, &cur);
    if (rc != MDB_SUCCESS) {
        store_mdb_err(st, err, rc, what);
        return -1;
    }

    ret = 0;

    for (op = MDB_FIRST; ; op = MDB_NEXT) {
        rc = mdb_cursor_get(cur, &key, &val, op);
        if (rc == MDB_NOTFOUND) {
            break;
        }

        if (rc != MDB_SUCCESS) {
            store_mdb_err(st, err, rc, what);
            ret = -1;
            break;
        }

        rc = visit(&key, &val, arg, err);
        if (rc != 0) {
            ret = rc < 0 ? -1 : 0;
            break;
        }
    }

    mdb_cursor_close(cur);

    return ret;
}


/* store_walk() in a read-only transaction of its own. */
static int
store_read_walk(store_t *st, MDB_dbi dbi, const char *what,
    store_visit_pt visit, void *arg, store_err_t *err)
{
    MDB_txn  *txn;
    int       rc;

    if (store_txn_begin(st, MDB_RDONLY, &txn, err) != 0) {
        return -1;
    }

    rc = store_walk(st, txn, dbi, what, visit, arg, err);

    store_abort(st, txn);

    return rc;
}


static int
store_device_visit(const MDB_val *key, const MDB_val *val, void *arg,
    store_err_t *err)
{
    store_walk_t    *w = arg;
    store_device_t   dev;

    if (store_device_decode(key, val, &dev, err) != 0) {
        return -1;
    }

    return w->device(&dev, w->arg) != 0 ? 1 : 0;
}


static int
store_user_visit(const MDB_val *key, const MDB_val *val, void *arg,
    store_err_t *err)
{
    store_walk_t  *w = arg;
    store_user_t   u;

    if (store_user_decode(key, val, &u, err) != 0) {
        return -1;
    }

    return w->user(&u, w->arg) != 0 ? 1 : 0;
}


static int
store_session_visit(const MDB_val *key, const MDB_val *val, void *arg,
    store_err_t *err)
{
    store_walk_t     *w = arg;
    store_session_t   s;

    if (store_session_decode(key, val, &s, err) != 0) {
        return -1;
    }

    if (w->owner != NULL && strcmp(s.user, w->owner) != 0) {
        return 0;
    }

    return w->session(&s, w->arg) != 0 ? 1 : 0;
}


/* Read the device fp in txn: 0, STORE_NOTFOUND (*err untouched) or -1. */
static int
store_device_read(store_t *st, MDB_txn *txn, const uint8_t fp[STORE_FP_LEN],
    store_device_t *dev, store_err_t *err)
{
    MDB_val  key, val;
    uint8_t  kbuf[STORE_FP_LEN];
    int      rc;

    memcpy(kbuf, fp, STORE_FP_LEN);
    key.mv_data = kbuf;
    key.mv_size = STORE_FP_LEN;

    rc = store_rec_get(st, txn, st->devices, &key, &val,
                       "cannot read device", err);
    if (rc != 0) {
        return rc;
    }

    return store_device_decode(&key, &val, dev, err);
}


/* Overwrite the record of an enrolled device inside txn: 0 or -1. */
static int
store_device_rewrite(store_t *st, MDB_txn *txn, const store_device_t *dev,
    store_err_t *err)
{
    MDB_val  key, val;
    uint8_t  buf[STORE_REC_MAX], kbuf[STORE_FP_LEN];
    size_t   len;
    int      rc;

    len = store_device_encode(dev, buf, sizeof(buf));
    if (len == 0) {
        store_seterr(err, "device record too large");
        return -1;
    }

    memcpy(kbuf, dev->fp, STORE_FP_LEN);
    key.mv_data = kbuf;
    key.mv_size = STORE_FP_LEN;
    val.mv_data = buf;
    val.mv_size = len;

    rc = store_put(st, txn, st->devices, &key, &val, 0);
    if (rc != MDB_SUCCESS) {
        store_mdb_err(st, err, rc, "cannot update device");
        return -1;
    }

    return store_devices_bump(st, txn, err);
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


typedef struct {
    const char  *id;
    const char  *owner;
    int          conflict;
} store_id_owner_t;


static int
store_id_owner_cb(const store_device_t *dev, void *arg)
{
    store_id_owner_t  *f = arg;

    if (strcmp(dev->id, f->id) == 0 && dev->status != STORE_DEVICE_REVOKED
        && strcmp(dev->owner, f->owner) != 0)
    {
        f->conflict = 1;
        return 1;
    }

    return 0;
}


/*
 * 1 if a device that is not revoked uses id for another owner, 0 if not,
 * -1 on error.  The same owner may hold two certificates for one device
 * id: a renewal overlaps the old certificate until staff revoke it.
 */
static int
store_device_id_in_use(store_t *st, MDB_txn *txn, const char *id,
    const char *owner, store_err_t *err)
{
    store_id_owner_t  f;

    f.id = id;
    f.owner = owner;
    f.conflict = 0;

    if (store_device_iterate(st, txn, store_id_owner_cb, &f, err) != 0) {
        return -1;
    }

    return f.conflict;
}


static int
store_device_iterate(store_t *st, MDB_txn *txn, store_device_cb cb,
    void *arg, store_err_t *err)
{
    store_walk_t  w;

    memset(&w, 0, sizeof(w));
    w.device = cb;
    w.arg = arg;

    return store_walk(st, txn, st->devices, "cannot read devices",
                      store_device_visit, &w, err);
}


int
store_device_get(store_view_t *v, const uint8_t fp[STORE_FP_LEN],
    store_device_t *out, store_err_t *err)
{
    if (v == NULL || !v->active) {
        store_seterr(err, "device lookup outside a read view");
        return -1;
    }

    return store_device_read(v->st, v->txn, fp, out, err);
}


/* ---- the decision thread's device cache ------------------------------ */

/*
 * Bump the devices generation in meta, inside the write transaction that
 * changes the devices database: every cached device record of an older
 * generation is then stale for every reader whose snapshot sees it.
 */
static int
store_devices_bump(store_t *st, MDB_txn *txn, store_err_t *err)
{
    MDB_val   key, val;
    uint8_t   buf[8];
    uint64_t  gen;
    int       rc;

    key.mv_data = (void *) STORE_DEVGEN_KEY;
    key.mv_size = sizeof(STORE_DEVGEN_KEY) - 1;

    rc = mdb_get(txn, st->meta, &key, &val);
    gen = rc == MDB_SUCCESS && val.mv_size == 8
          ? store_get_be64(val.mv_data) : 0;

    if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND) {
        store_mdb_err(st, err, rc, "cannot read the devices generation");
        return -1;
    }

    store_be64(buf, gen + 1);
    val.mv_data = buf;
    val.mv_size = sizeof(buf);

    rc = mdb_put(txn, st->meta, &key, &val, 0);
    if (rc != MDB_SUCCESS) {
        store_mdb_err(st, err, rc, "cannot write the devices generation");
        return -1;
    }

    return 0;
}


store_devcache_t *
store_devcache_new(size_t max_entries)
{
    store_devcache_t  *c;

    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        return NULL;
    }

    c->max = max_entries;
    c->gen = UINT64_MAX;

    return c;
}


void
store_devcache_free(store_devcache_t *c)
{
    if (c == NULL) {
        return;
    }

    store_dc_unmap(c->slots, ((size_t) c->mask + 1) * sizeof(*c->slots));
    store_dc_unmap(c->arena, c->arena_cap);
    free(c);
}


/*
 * The cache's memory comes from anonymous maps marked for transparent
 * huge pages: at a million devices its lookups are random over a couple
 * of hundred MiB, where 4 KiB pages would cost a TLB miss per lookup.
 * Zero-filled, like calloc().
 */
static void *
store_dc_map(size_t size)
{
    void  *p;

    p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
             -1, 0);
    if (p == MAP_FAILED) {
        return NULL;
    }

    (void) madvise(p, size, MADV_HUGEPAGE);

    return p;
}


static void
store_dc_unmap(void *p, size_t size)
{
    if (p != NULL) {
        (void) munmap(p, size);
    }
}


/* Empty the cache (a new generation). */
static void
store_devcache_clear(store_devcache_t *c, uint64_t gen)
{
    if (c->slots != NULL) {
        memset(c->slots, 0, ((size_t) c->mask + 1) * sizeof(*c->slots));
    }

    c->used = 0;
    c->arena_len = 0;
    c->gen = gen;
}


/* The slot of fp, or the free slot where it would go. */
static store_dc_slot_t *
store_devcache_slot(store_devcache_t *c, const uint8_t fp[STORE_FP_LEN])
{
    store_dc_slot_t   *s;
    store_dc_entry_t  *e;
    uint32_t           i, tag;

    /* a fingerprint is a SHA-256: any 4 of its bytes hash well */
    memcpy(&i, fp, sizeof(i));
    memcpy(&tag, fp + 4, sizeof(tag));
    tag |= 1;

    for (i &= c->mask; ; i = (i + 1) & c->mask) {
        s = &c->slots[i];

        if (s->tag == 0) {
            return s;
        }

        if (s->tag == tag) {
            e = (store_dc_entry_t *) (c->arena + (size_t) s->at * 8);
            if (memcmp(e->fp, fp, STORE_FP_LEN) == 0) {
                return s;
            }
        }
    }
}


/* Room for one more entry of len record bytes: 0, or -1 (full). */
static int
store_devcache_room(store_devcache_t *c, size_t len)
{
    store_dc_slot_t   *old;
    store_dc_entry_t  *e;
    uint8_t           *arena;
    size_t             n, cap, i, need;
    uint32_t           omask;

    need = (sizeof(store_dc_entry_t) + len + 7) & ~(size_t) 7;

    if (c->used >= c->max
        || (c->arena_len + need) / 8 > UINT32_MAX)
    {
        return -1;
    }

    /* the entries first: rehashing reads their fingerprints */
    if (c->arena_len + need > c->arena_cap) {
        cap = c->arena_cap ? c->arena_cap * 2 : (size_t) 2 * 1024 * 1024;
        while (cap < c->arena_len + need) {
            cap *= 2;
        }
        arena = store_dc_map(cap);
        if (arena == NULL) {
            return -1;
        }
        if (c->arena != NULL) {
            memcpy(arena, c->arena, c->arena_len);
            store_dc_unmap(c->arena, c->arena_cap);
        }
        c->arena = arena;
        c->arena_cap = cap;
    }

    if (c->slots == NULL || (c->used + 1) * 4 > ((size_t) c->mask + 1) * 3)
    {
        n = c->slots == NULL ? 4096 : ((size_t) c->mask + 1) * 2;
        old = c->slots;
        omask = c->mask;

        c->slots = store_dc_map(n * sizeof(*c->slots));
        if (c->slots == NULL) {
            c->slots = old;
            return -1;
        }
        c->mask = (uint32_t) (n - 1);

        if (old != NULL) {
            for (i = 0; i <= omask; i++) {
                if (old[i].tag != 0) {
                    e = (store_dc_entry_t *) (c->arena
                                              + (size_t) old[i].at * 8);
                    *store_devcache_slot(c, e->fp) = old[i];
                }
            }
            store_dc_unmap(old, ((size_t) omask + 1) * sizeof(*old));
        }
    }

    return 0;
}


int
store_device_get_cached(store_view_t *v, store_devcache_t *c,
    const uint8_t fp[STORE_FP_LEN], store_device_t *out, store_err_t *err)
{
    store_dc_slot_t   *s;
    store_dc_entry_t  *e;
    MDB_val            key, val;
    uint8_t            kbuf[STORE_FP_LEN];
    uint64_t           gen;
    uint32_t           tag;
    int                rc;

    if (c == NULL || c->max == 0) {
        return store_device_get(v, fp, out, err);
    }

    if (v == NULL || !v->active) {
        store_seterr(err, "device lookup outside a read view");
        return -1;
    }

    /* the generation this snapshot sees: one lookup in the small meta */
    key.mv_data = (void *) STORE_DEVGEN_KEY;
    key.mv_size = sizeof(STORE_DEVGEN_KEY) - 1;
    rc = mdb_get(v->txn, v->st->meta, &key, &val);
    if (rc == MDB_SUCCESS && val.mv_size == 8) {
        gen = store_get_be64(val.mv_data);
    } else if (rc == MDB_NOTFOUND) {
        gen = 0;
    } else {
        return store_device_get(v, fp, out, err);
    }

    if (gen != c->gen) {
        store_devcache_clear(c, gen);
    }

    memcpy(kbuf, fp, STORE_FP_LEN);
    key.mv_data = kbuf;
    key.mv_size = STORE_FP_LEN;

    if (c->slots != NULL) {
        s = store_devcache_slot(c, fp);
        if (s->tag != 0) {
            c->hits++;
            e = (store_dc_entry_t *) (c->arena + (size_t) s->at * 8);
            if (e->absent) {
                return STORE_NOTFOUND;
            }
            val.mv_data = e + 1;
            val.mv_size = e->len;
            return store_device_decode(&key, &val, out, err);
        }
    }

    c->misses++;

    rc = store_rec_get(v->st, v->txn, v->st->devices, &key, &val,
                       "cannot read device", err);
    if (rc < 0) {
        return rc;
    }

    if ((rc != 0 || val.mv_size <= UINT16_MAX)
        && store_devcache_room(c, rc == 0 ? val.mv_size : 0) == 0)
    {
        s = store_devcache_slot(c, fp);
        e = (store_dc_entry_t *) (c->arena + c->arena_len);
        memcpy(e->fp, fp, STORE_FP_LEN);
        e->absent = (rc == STORE_NOTFOUND);
        e->len = rc == 0 ? (uint16_t) val.mv_size : 0;
        if (rc == 0) {
            memcpy(e + 1, val.mv_data, val.mv_size);
        }
        memcpy(&tag, fp + 4, sizeof(tag));
        s->tag = tag | 1;
        s->at = (uint32_t) (c->arena_len / 8);
        c->arena_len += (sizeof(*e) + e->len + 7) & ~(size_t) 7;
        c->used++;
    }

    if (rc == STORE_NOTFOUND) {
        return rc;
    }

    return store_device_decode(&key, &val, out, err);
}


void
store_devcache_prefetch(const store_devcache_t *c,
    const uint8_t fp[STORE_FP_LEN])
{
    uint32_t  i;

    if (c != NULL && c->slots != NULL) {
        memcpy(&i, fp, sizeof(i));
        __builtin_prefetch(&c->slots[i & c->mask]);
    }
}


void
store_devcache_stats(const store_devcache_t *c, uint64_t *hits,
    uint64_t *misses, size_t *entries)
{
    *hits = c != NULL ? c->hits : 0;
    *misses = c != NULL ? c->misses : 0;
    *entries = c != NULL ? c->used : 0;
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

    if (store_wbegin(st, &txn, err) != 0) {
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

    rc = store_device_id_in_use(st, txn, rec.id, rec.owner, err);
    if (rc < 0) {
        goto failed;
    }

    if (rc > 0) {
        store_seterr(err, "device id %s is enrolled for another owner; "
                     "revoke that certificate first", rec.id);
        goto failed;
    }

    val.mv_data = buf;
    val.mv_size = len;

    rc = store_put(st, txn, st->devices, &key, &val, MDB_NOOVERWRITE);
    if (rc == MDB_KEYEXIST) {
        store_seterr(err, "a device with fingerprint %s is already "
                     "enrolled", hex);
        goto failed;
    }

    if (rc != MDB_SUCCESS) {
        store_mdb_err(st, err, rc, "cannot enroll device");
        goto failed;
    }

    if (store_devices_bump(st, txn, err) != 0) {
        goto failed;
    }

    snprintf(detail, sizeof(detail), "fingerprint %s owner %s", hex,
             rec.owner);

    return store_audit_commit(st, txn, rec.enrolled_by, "device.enroll",
                              rec.id, detail, now, "cannot enroll device",
                              err);

failed:

    store_abort(st, txn);

    return -1;
}


/* The id set of a batch enrollment: 64-bit hashes of id and owner. */
typedef struct {
    uint64_t    id;
    uint64_t    owner;
} store_idset_slot_t;

typedef struct {
    store_idset_slot_t  *slots;
    size_t               mask;
} store_idset_t;


static uint64_t
store_hash64(const char *s)
{
    uint64_t  h = 14695981039346656037ull;

    while (*s) {
        h = (h ^ (unsigned char) *s++) * 1099511628211ull;
    }

    return h | 1;       /* 0 marks an empty slot */
}


/*
 * Find or add id with owner.  Returns 1 when id is present with another
 * owner (a conflict), 0 otherwise (found with the same owner, or added).
 */
static int
store_idset_add(store_idset_t *set, const char *id, const char *owner)
{
    uint64_t  h, o;
    size_t    i;

    h = store_hash64(id);
    o = store_hash64(owner);

    for (i = h & set->mask; set->slots[i].id != 0; i = (i + 1) & set->mask) {
        if (set->slots[i].id == h) {
            return set->slots[i].owner != o;
        }
    }

    set->slots[i].id = h;
    set->slots[i].owner = o;

    return 0;
}


static int
store_idset_cb(const store_device_t *dev, void *arg)
{
    if (dev->status != STORE_DEVICE_REVOKED) {
        (void) store_idset_add(arg, dev->id, dev->owner);
    }

    return 0;
}


int
store_device_enroll_batch(store_t *st, const store_device_t *devs,
    size_t n, const char *actor, size_t *bad, store_err_t *err)
{
    store_device_t   rec;
    store_idset_t    set;
    MDB_txn         *txn;
    MDB_stat         ms;
    MDB_val          key, val;
    uint8_t          buf[STORE_REC_MAX];
    char             hex[2 * STORE_FP_LEN + 1], detail[64];
    const char      *who;
    size_t           i, len, size;
    int64_t          now;
    int              rc;

    if (bad != NULL) {
        *bad = 0;
    }

    if (store_writable(st, err) != 0) {
        return -1;
    }

    for (i = 0; i < n; i++) {
        if (store_device_check(&devs[i], err) != 0) {
            if (bad != NULL) {
                *bad = i;
            }
            return -1;
        }
    }

    now = (int64_t) time(NULL);
    who = actor != NULL && actor[0] != '\0' ? actor : "unknown";
    set.slots = NULL;

    if (store_wbegin(st, &txn, err) != 0) {
        return -1;
    }

    rc = mdb_stat(txn, st->devices, &ms);
    if (rc != MDB_SUCCESS) {
        store_mdb_err(st, err, rc, "cannot read devices");
        goto failed;
    }

    for (size = 1024; size < 2 * (ms.ms_entries + n); size <<= 1) {
        /* void */
    }

    set.slots = calloc(size, sizeof(store_idset_slot_t));
    if (set.slots == NULL) {
        store_seterr(err, "out of memory for %zu device ids", size);
        goto failed;
    }

    set.mask = size - 1;

    if (store_device_iterate(st, txn, store_idset_cb, &set, err) != 0) {
        goto failed;
    }

    for (i = 0; i < n; i++) {
        if (bad != NULL) {
            *bad = i;
        }

        rec = devs[i];
        rec.updated_at = now;
        if (rec.enrolled_at == 0) {
            rec.enrolled_at = now;
        }
        snprintf(rec.enrolled_by, sizeof(rec.enrolled_by), "%s", who);

        len = store_device_encode(&rec, buf, sizeof(buf));
        if (len == 0) {
            store_seterr(err, "device %zu: record too large", i);
            goto failed;
        }

        if (store_idset_add(&set, rec.id, rec.owner)) {
            store_seterr(err, "device %zu: device id %s is enrolled for "
                         "another owner", i, rec.id);
            goto failed;
        }

        key.mv_data = rec.fp;
        key.mv_size = STORE_FP_LEN;
        val.mv_data = buf;
        val.mv_size = len;

        rc = store_put(st, txn, st->devices, &key, &val, MDB_NOOVERWRITE);
        if (rc == MDB_KEYEXIST) {
            store_fp_hex(rec.fp, hex);
            store_seterr(err, "device %zu: a device with fingerprint %s is "
                         "already enrolled", i, hex);
            goto failed;
        }

        if (rc != MDB_SUCCESS) {
            store_mdb_err(st, err, rc, "cannot enroll devices");
            goto failed;
        }
    }

    if (store_devices_bump(st, txn, err) != 0) {
        goto failed;
    }

    free(set.slots);
    snprintf(detail, sizeof(detail), "%zu devices", n);

    return store_audit_commit(st, txn, who, "device.import", detail, detail,
                              now, "cannot enroll devices", err);

failed:

    free(set.slots);
    store_abort(st, txn);

    return -1;
}


int
store_device_set_status(store_t *st, const uint8_t fp[STORE_FP_LEN],
    store_device_status_t status, const char *actor, const char *reason,
    store_err_t *err)
{
    store_device_t   dev;
    MDB_txn         *txn;
    char             action[32], detail[256];
    const char      *old;
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

    if (store_wbegin(st, &txn, err) != 0) {
        return -1;
    }

    rc = store_device_read(st, txn, fp, &dev, err);
    if (rc == STORE_NOTFOUND) {
        store_abort(st, txn);
        return STORE_NOTFOUND;
    }

    if (rc != 0) {
        goto failed;
    }

    old = store_device_status_name(dev.status);
    dev.status = status;
    dev.updated_at = now;

    if (store_device_rewrite(st, txn, &dev, err) != 0) {
        goto failed;
    }

    snprintf(detail, sizeof(detail), "%s -> %s%s%s", old,
             store_device_status_name(status),
             reason != NULL && reason[0] != '\0' ? ": " : "",
             reason != NULL ? reason : "");

    return store_audit_commit(st, txn, actor, action, dev.id, detail, now,
                              "cannot update device", err);

failed:

    store_abort(st, txn);

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

    store_abort(st, txn);

    if (rc != 0) {
        return -1;
    }

    return f.found ? 0 : STORE_NOTFOUND;
}


int
store_device_list(store_t *st, store_device_cb cb, void *arg,
    store_err_t *err)
{
    store_walk_t  w;

    memset(&w, 0, sizeof(w));
    w.device = cb;
    w.arg = arg;

    return store_read_walk(st, st->devices, "cannot read devices",
                           store_device_visit, &w, err);
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

    store_abort(st, txn);

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

    store_abort(st, txn);

    return ret;
}

int
store_audit_get(store_t *st, uint64_t seq, store_audit_t *rec,
    store_err_t *err)
{
    MDB_txn  *txn;
    MDB_val   key, val;
    uint8_t   kbuf[8];
    int       rc;

    if (store_txn_begin(st, MDB_RDONLY, &txn, err) != 0) {
        return -1;
    }

    store_be64(kbuf, seq);
    key.mv_data = kbuf;
    key.mv_size = sizeof(kbuf);

    rc = store_rec_get(st, txn, st->audit, &key, &val, "audit record", err);
    if (rc == 0) {
        rc = store_audit_decode(&key, &val, rec, err);
    }

    store_abort(st, txn);

    return rc;
}


int
store_journal_append(store_t *st, const store_audit_t *recs, size_t n,
    store_err_t *err)
{
    MDB_txn        *txn;
    store_chain_t   tail;
    store_audit_t   rec;
    size_t          i;
    int             rc;

    if (n == 0) {
        return 0;
    }

    if (store_writable(st, err) != 0
        || store_txn_begin(st, 0, &txn, err) != 0)
    {
        return -1;
    }

    if (store_chain_tail(st, txn, &tail, err) != 0) {
        goto failed;
    }

    for (i = 0; i < n; i++) {
        rec = recs[i];
        rec.kind = STORE_AUDIT_DECISION;

        if (store_chain_put(st, txn, &tail, &rec, err) != 0) {
            goto failed;
        }
    }

    rc = store_commit(st, txn);
    if (rc != MDB_SUCCESS) {
        store_mdb_err(st, err, rc, "cannot write the decision journal");
        return -1;
    }

    return 0;

failed:

    store_abort(st, txn);

    return -1;
}


int
store_journal_purge(store_t *st, int64_t before_ms, size_t max,
    size_t *purged, store_err_t *err)
{
    MDB_txn        *txn;
    MDB_cursor     *cur;
    MDB_val         key, val;
    store_audit_t   rec;
    store_chain_t   anchor;
    uint8_t         abuf[8 + STORE_HASH_LEN];
    char            detail[160], when[32];
    size_t          n;
    int             rc;

    *purged = 0;

    if (store_writable(st, err) != 0
        || store_txn_begin(st, 0, &txn, err) != 0)
    {
        return -1;
    }

    rc = mdb_cursor_open(txn, st->audit, &cur);
    if (rc != MDB_SUCCESS) {
        store_mdb_err(st, err, rc, "cannot purge the audit journal");
        goto failed;
    }

    n = 0;

    while (n < max) {
        rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST);
        if (rc == MDB_NOTFOUND) {
            break;
        }

        if (rc != MDB_SUCCESS) {
            store_mdb_err(st, err, rc, "cannot purge the audit journal");
            mdb_cursor_close(cur);
            goto failed;
        }

        if (store_audit_decode(&key, &val, &rec, err) != 0) {
            mdb_cursor_close(cur);
            goto failed;
        }

        if (rec.time_ms >= before_ms) {
            break;
        }

        rc = mdb_cursor_del(cur, 0);
        if (rc != MDB_SUCCESS) {
            store_mdb_err(st, err, rc, "cannot purge the audit journal");
            mdb_cursor_close(cur);
            goto failed;
        }

        anchor.seq = rec.seq;
        memcpy(anchor.hash, rec.hash, STORE_HASH_LEN);
        n++;
    }

    mdb_cursor_close(cur);

    if (n == 0) {
        store_abort(st, txn);
        return 0;
    }

    store_be64(abuf, anchor.seq);
    memcpy(abuf + 8, anchor.hash, STORE_HASH_LEN);
    key.mv_data = (void *) STORE_ANCHOR_KEY;
    key.mv_size = sizeof(STORE_ANCHOR_KEY) - 1;
    val.mv_data = abuf;
    val.mv_size = sizeof(abuf);

    rc = mdb_put(txn, st->meta, &key, &val, 0);
    if (rc != MDB_SUCCESS) {
        store_mdb_err(st, err, rc, "cannot move the journal anchor");
        goto failed;
    }

    journal_time(before_ms, when, sizeof(when));
    snprintf(detail, sizeof(detail), "%zu records through seq %llu, "
             "older than %s", n, (unsigned long long) anchor.seq, when);

    if (store_audit_commit(st, txn, STORE_SYSTEM_ACTOR, "journal.purge",
                           "journal", detail, (int64_t) time(NULL),
                           "cannot purge the audit journal", err)
        != 0)
    {
        return -1;
    }

    *purged = n;

    return 0;

failed:

    store_abort(st, txn);

    return -1;
}


int
store_journal_verify(store_t *st, store_journal_check_t *out,
    store_err_t *err)
{
    MDB_txn        *txn;
    MDB_cursor     *cur;
    MDB_val         key, val;
    store_audit_t   rec;
    store_chain_t   anchor;
    uint8_t         prev[STORE_HASH_LEN], hash[STORE_HASH_LEN];
    uint64_t        expect;
    int             rc, ret;

    memset(out, 0, sizeof(*out));

    if (store_txn_begin(st, MDB_RDONLY, &txn, err) != 0) {
        return -1;
    }

    ret = -1;

    if (store_chain_anchor(st, txn, &anchor, err) != 0) {
        goto done;
    }

    out->anchor_seq = anchor.seq;
    memcpy(out->anchor, anchor.hash, STORE_HASH_LEN);
    memcpy(out->head, anchor.hash, STORE_HASH_LEN);
    memcpy(prev, anchor.hash, STORE_HASH_LEN);
    expect = anchor.seq + 1;

    rc = mdb_cursor_open(txn, st->audit, &cur);
    if (rc != MDB_SUCCESS) {
        store_mdb_err(st, err, rc, "cannot read the audit journal");
        goto done;
    }

    for (rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST);
         rc == MDB_SUCCESS;
         rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT))
    {
        if (store_audit_decode(&key, &val, &rec, err) != 0) {
            out->bad_seq = key.mv_size == 8 ? store_get_be64(key.mv_data)
                                            : expect;
            snprintf(out->problem, sizeof(out->problem), "%s", err->msg);
            ret = 1;
            goto close;
        }

        if (rec.seq != expect) {
            out->bad_seq = expect;
            if (rec.seq > expect) {
                snprintf(out->problem, sizeof(out->problem),
                         "records %llu to %llu are missing",
                         (unsigned long long) expect,
                         (unsigned long long) rec.seq - 1);
            } else {
                snprintf(out->problem, sizeof(out->problem),
                         "record %llu precedes the anchor at %llu",
                         (unsigned long long) rec.seq,
                         (unsigned long long) anchor.seq);
            }
            ret = 1;
            goto close;
        }

        if (memcmp(rec.prev, prev, STORE_HASH_LEN) != 0) {
            out->bad_seq = rec.seq;
            snprintf(out->problem, sizeof(out->problem),
                     "record %llu does not link to the record before it "
                     "(removed or replaced)", (unsigned long long) rec.seq);
            ret = 1;
            goto close;
        }

        if (journal_hash(&rec, hash) != 0
            || memcmp(hash, rec.hash, STORE_HASH_LEN) != 0)
        {
            out->bad_seq = rec.seq;
            snprintf(out->problem, sizeof(out->problem),
                     "record %llu was altered (its hash does not match "
                     "its content)", (unsigned long long) rec.seq);
            ret = 1;
            goto close;
        }

        if (out->first == 0) {
            out->first = rec.seq;
        }
        out->last = rec.seq;
        out->checked++;
        memcpy(prev, rec.hash, STORE_HASH_LEN);
        memcpy(out->head, rec.hash, STORE_HASH_LEN);
        expect = rec.seq + 1;
    }

    if (rc != MDB_NOTFOUND) {
        store_mdb_err(st, err, rc, "cannot read the audit journal");
        goto close;
    }

    ret = 0;

close:

    mdb_cursor_close(cur);

done:

    store_abort(st, txn);

    return ret;
}


/*
 * Migration to schema 5: rewrite every audit record as v2, chained in
 * sequence order from the start (no anchor: nothing was purged before).
 */
static int
store_journal_rechain(store_t *st, MDB_txn *txn, store_err_t *err)
{
    MDB_cursor     *cur;
    MDB_val         key, val;
    store_audit_t   rec;
    store_chain_t   tail;
    uint8_t         kbuf[8], vbuf[STORE_AUDIT_REC_MAX];
    uint64_t        seq, first, last;
    size_t          len;
    int             rc;

    memset(&tail, 0, sizeof(tail));
    first = 0;

    /* the range first, then record by record: no cursor across writes */
    rc = mdb_cursor_open(txn, st->audit, &cur);
    if (rc != MDB_SUCCESS) {
        store_mdb_err(st, err, rc, "cannot migrate the audit log");
        return -1;
    }

    rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST);
    if (rc == MDB_SUCCESS && key.mv_size == 8) {
        first = store_get_be64(key.mv_data);
        rc = mdb_cursor_get(cur, &key, &val, MDB_LAST);
    }
    last = rc == MDB_SUCCESS && key.mv_size == 8
           ? store_get_be64(key.mv_data) : 0;
    mdb_cursor_close(cur);

    if (rc == MDB_NOTFOUND) {
        return 0;
    }

    if (rc != MDB_SUCCESS || last == 0) {
        store_mdb_err(st, err, rc, "cannot migrate the audit log");
        return -1;
    }

    for (seq = first; seq <= last; seq++) {
        store_be64(kbuf, seq);
        key.mv_data = kbuf;
        key.mv_size = sizeof(kbuf);

        rc = store_rec_get(st, txn, st->audit, &key, &val, "audit record",
                           err);
        if (rc == STORE_NOTFOUND) {
            continue;
        }

        if (rc != 0 || store_audit_decode(&key, &val, &rec, err) != 0) {
            return -1;
        }

        memcpy(rec.prev, tail.hash, STORE_HASH_LEN);

        if (journal_hash(&rec, rec.hash) != 0) {
            store_seterr(err, "cannot hash audit record %llu",
                         (unsigned long long) rec.seq);
            return -1;
        }

        len = store_audit_encode(&rec, vbuf, sizeof(vbuf));
        if (len == 0) {
            store_seterr(err, "audit record %llu too large",
                         (unsigned long long) rec.seq);
            return -1;
        }

        val.mv_data = vbuf;
        val.mv_size = len;

        rc = mdb_put(txn, st->audit, &key, &val, 0);
        if (rc != MDB_SUCCESS) {
            store_mdb_err(st, err, rc, "cannot migrate the audit log");
            return -1;
        }

        tail.seq = rec.seq;
        memcpy(tail.hash, rec.hash, STORE_HASH_LEN);
    }

    return 0;
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


/* ---- identity: users and sessions ------------------------------------ */

/* A user or group name: a lowercase letter or digit, then chars. */
static int
store_name_ok(const char *name, const char *chars)
{
    size_t  len;

    len = strlen(name);

    if (len == 0 || len >= STORE_NAME_MAX) {
        return 0;
    }

    if (!((name[0] >= 'a' && name[0] <= 'z')
          || (name[0] >= '0' && name[0] <= '9')))
    {
        return 0;
    }

    return strspn(name, chars) == len;
}


int
store_user_name_ok(const char *name)
{
    return store_name_ok(name, "abcdefghijklmnopqrstuvwxyz0123456789._-");
}


int
store_group_name_ok(const char *name)
{
    return store_name_ok(name, "abcdefghijklmnopqrstuvwxyz0123456789._-@");
}


int
store_sid_ok(const char *sid)
{
    size_t  len;

    len = strlen(sid);

    return len == STORE_SID_LEN
           && strspn(sid, "0123456789abcdef") == STORE_SID_LEN;
}


const char *
store_totp_state_name(store_totp_state_t state)
{
    switch (state) {
    case STORE_TOTP_NONE:    return "none";
    case STORE_TOTP_PENDING: return "pending";
    case STORE_TOTP_ACTIVE:  return "active";
    default:                 return "invalid";
    }
}


/*
 * Copy text that comes from the network (a source address, a reason) into
 * an audit field: control characters become '?', too long is truncated.
 */
static void
store_clean(char *dst, size_t size, const char *src)
{
    size_t  i;

    if (src == NULL) {
        src = "";
    }

    for (i = 0; i + 1 < size && src[i] != '\0'; i++) {
        dst[i] = ((unsigned char) src[i] < 0x20 || src[i] == 0x7f)
                 ? '?' : src[i];
    }

    dst[i] = '\0';
}


/* A read-only opener of a schema 1 store has no users and sessions. */
static int
store_identity_ready(const store_t *st, store_err_t *err)
{
    if (!st->identity) {
        store_seterr(err, "store schema version 1 has no users or sessions "
                     "yet; open it once with write access to upgrade it");
        return 0;
    }

    return 1;
}


static int
store_user_check(const store_user_t *u, store_err_t *err)
{
    unsigned  i, j;

    if (!store_text_ok(u->name, sizeof(u->name), 0)
        || !store_user_name_ok(u->name))
    {
        store_seterr(err, "invalid user name \"%.*s\": use a-z, 0-9 and "
                     ". _ - (1 to %d characters, starting with a letter "
                     "or a digit)", (int) (STORE_NAME_MAX - 1),
                     store_text_ok(u->name, sizeof(u->name), 1)
                     ? u->name : "?", STORE_NAME_MAX - 1);
        return -1;
    }

    if (!store_text_ok(u->display, sizeof(u->display), 1)) {
        store_seterr(err, "user %s: the display name must be text of at "
                     "most %zu bytes without control characters", u->name,
                     sizeof(u->display) - 1);
        return -1;
    }

    if (u->ngroups > STORE_MAX_GROUPS) {
        store_seterr(err, "user %s: at most %d groups", u->name,
                     STORE_MAX_GROUPS);
        return -1;
    }

    for (i = 0; i < u->ngroups; i++) {
        if (!store_text_ok(u->groups[i], sizeof(u->groups[i]), 0)
            || !store_group_name_ok(u->groups[i]))
        {
            store_seterr(err, "user %s: invalid group name \"%.*s\": use "
                         "a-z, 0-9 and . _ - @ (1 to %d characters, "
                         "starting with a letter or a digit)", u->name,
                         (int) (STORE_NAME_MAX - 1),
                         store_text_ok(u->groups[i], sizeof(u->groups[i]),
                                       1)
                         ? u->groups[i] : "?", STORE_NAME_MAX - 1);
            return -1;
        }

        for (j = 0; j < i; j++) {
            if (strcmp(u->groups[i], u->groups[j]) == 0) {
                store_seterr(err, "user %s: group \"%s\" given twice",
                             u->name, u->groups[i]);
                return -1;
            }
        }
    }

    if (!store_text_ok(u->pwhash, sizeof(u->pwhash), 1)) {
        store_seterr(err, "user %s: malformed password hash", u->name);
        return -1;
    }

    if (u->totp_state != STORE_TOTP_NONE
        && u->totp_state != STORE_TOTP_PENDING
        && u->totp_state != STORE_TOTP_ACTIVE)
    {
        store_seterr(err, "user %s: invalid TOTP state %d", u->name,
                     (int) u->totp_state);
        return -1;
    }

    if (u->totp_sealed_len > sizeof(u->totp_sealed)) {
        store_seterr(err, "user %s: sealed TOTP secret too long", u->name);
        return -1;
    }

    if (u->totp_state != STORE_TOTP_NONE
        && (u->totp_sealed_len == 0
            || u->totp_algo > STORE_TOTP_ALGO_MAX
            || u->totp_digits < 6 || u->totp_digits > 8))
    {
        store_seterr(err, "user %s: an enrolled authenticator needs a "
                     "sealed secret, a known algorithm and 6 to 8 digits",
                     u->name);
        return -1;
    }

    if (u->totp_algo > 255 || u->totp_digits > 255) {
        store_seterr(err, "user %s: invalid TOTP parameters", u->name);
        return -1;
    }

    if (!store_text_ok(u->created_by, sizeof(u->created_by), 1)) {
        store_seterr(err, "user %s: invalid created_by", u->name);
        return -1;
    }

    return 0;
}


static size_t
store_user_encode(const store_user_t *u, uint8_t *buf, size_t size)
{
    store_wr_t  w;
    unsigned    i;

    w.p = buf;
    w.end = buf + size;
    w.overflow = 0;

    store_put_u8(&w, STORE_USER_REC_V1);
    store_put_u8(&w, (uint8_t) u->totp_state);
    store_put_u8(&w, (uint8_t) u->totp_algo);
    store_put_u8(&w, (uint8_t) u->totp_digits);
    store_put_u8(&w, u->disabled ? 1 : 0);
    store_put_u32(&w, (uint32_t) u->failures);
    store_put_u64(&w, u->totp_last_counter);
    store_put_u64(&w, (uint64_t) u->last_failure);
    store_put_u64(&w, (uint64_t) u->locked_until);
    store_put_u64(&w, (uint64_t) u->created_at);
    store_put_u64(&w, (uint64_t) u->updated_at);
    store_put_str(&w, u->display);
    store_put_str(&w, u->pwhash);
    store_put_str(&w, u->created_by);
    store_put_bytes(&w, u->totp_sealed, u->totp_sealed_len);
    store_put_u8(&w, (uint8_t) u->ngroups);

    for (i = 0; i < u->ngroups && i < STORE_MAX_GROUPS; i++) {
        store_put_str(&w, u->groups[i]);
    }

    if (w.overflow) {
        return 0;
    }

    return (size_t) (w.p - buf);
}


static int
store_user_decode(const MDB_val *key, const MDB_val *val, store_user_t *u,
    store_err_t *err)
{
    store_rd_t  r;
    uint8_t     version, state, algo, digits, disabled, ngroups;
    uint32_t    failures;
    uint64_t    last_failure, locked_until, created, updated;
    unsigned    i;

    memset(u, 0, sizeof(*u));

    if (key->mv_size == 0 || key->mv_size >= sizeof(u->name)) {
        store_seterr(err, "corrupt user record: key of %zu bytes",
                     key->mv_size);
        return -1;
    }

    memcpy(u->name, key->mv_data, key->mv_size);
    u->name[key->mv_size] = '\0';

    if (!store_user_name_ok(u->name)) {
        memset(u, 0, sizeof(*u));
        store_seterr(err, "corrupt user record: invalid key");
        return -1;
    }

    r.p = val->mv_data;
    r.end = r.p + val->mv_size;

    if (store_get_u8(&r, &version) != 0) {
        goto corrupt;
    }

    if (version != STORE_USER_REC_V1) {
        store_seterr(err, "user %s: record version %u not supported",
                     u->name, version);
        memset(u, 0, sizeof(*u));
        return -1;
    }

    if (store_get_u8(&r, &state) != 0
        || state > STORE_TOTP_ACTIVE
        || store_get_u8(&r, &algo) != 0
        || store_get_u8(&r, &digits) != 0
        || store_get_u8(&r, &disabled) != 0
        || disabled > 1
        || store_get_u32(&r, &failures) != 0
        || store_get_u64(&r, &u->totp_last_counter) != 0
        || store_get_u64(&r, &last_failure) != 0
        || store_get_u64(&r, &locked_until) != 0
        || store_get_u64(&r, &created) != 0
        || store_get_u64(&r, &updated) != 0
        || store_get_str(&r, u->display, sizeof(u->display)) != 0
        || store_get_str(&r, u->pwhash, sizeof(u->pwhash)) != 0
        || store_get_str(&r, u->created_by, sizeof(u->created_by)) != 0
        || store_get_bytes(&r, u->totp_sealed, sizeof(u->totp_sealed),
                           &u->totp_sealed_len) != 0
        || store_get_u8(&r, &ngroups) != 0
        || ngroups > STORE_MAX_GROUPS)
    {
        goto corrupt;
    }

    for (i = 0; i < ngroups; i++) {
        if (store_get_str(&r, u->groups[i], sizeof(u->groups[i])) != 0) {
            goto corrupt;
        }
    }

    if (r.p != r.end) {
        goto corrupt;
    }

    u->totp_state = (store_totp_state_t) state;
    u->totp_algo = algo;
    u->totp_digits = digits;
    u->disabled = disabled;
    u->failures = failures;
    u->last_failure = (int64_t) last_failure;
    u->locked_until = (int64_t) locked_until;
    u->created_at = (int64_t) created;
    u->updated_at = (int64_t) updated;
    u->ngroups = ngroups;

    return 0;

corrupt:

    store_seterr(err, "user %s: corrupt record (%zu bytes)", u->name,
                 val->mv_size);
    memset(u, 0, sizeof(*u));

    return -1;
}


/* Read user name in txn: 0, STORE_NOTFOUND (also for an invalid name), -1. */
static int
store_user_read(store_t *st, MDB_txn *txn, const char *name,
    store_user_t *u, store_err_t *err)
{
    MDB_val  key, val;
    int      rc;

    if (!store_user_name_ok(name)) {
        store_seterr(err, "no such user (not a valid user name)");
        return STORE_NOTFOUND;
    }

    key.mv_data = (void *) (uintptr_t) name;
    key.mv_size = strlen(name);

    rc = store_rec_get(st, txn, st->users, &key, &val, "cannot read user",
                       err);
    if (rc == STORE_NOTFOUND) {
        store_seterr(err, "no user \"%s\"", name);
    }

    if (rc != 0) {
        return rc;
    }

    return store_user_decode(&key, &val, u, err);
}


static int
store_user_put(store_t *st, MDB_txn *txn, const store_user_t *u,
    unsigned flags, const char *what, store_err_t *err)
{
    MDB_val  key, val;
    uint8_t  buf[STORE_USER_REC_MAX];
    size_t   len;
    int      rc;

    len = store_user_encode(u, buf, sizeof(buf));
    if (len == 0) {
        store_seterr(err, "user %s: record too large", u->name);
        return -1;
    }

    key.mv_data = (void *) (uintptr_t) u->name;
    key.mv_size = strlen(u->name);
    val.mv_data = buf;
    val.mv_size = len;

    rc = store_put(st, txn, st->users, &key, &val, flags);
    if (rc == MDB_KEYEXIST) {
        store_seterr(err, "user %s already exists", u->name);
        return -1;
    }

    if (rc != MDB_SUCCESS) {
        store_mdb_err(st, err, rc, what);
        return -1;
    }

    return 0;
}


int
store_user_get(store_view_t *v, const char *name, store_user_t *out,
    store_err_t *err)
{
    if (v == NULL || !v->active) {
        store_seterr(err, "user lookup outside a read view");
        return -1;
    }

    if (!store_identity_ready(v->st, err)) {
        return STORE_NOTFOUND;
    }

    return store_user_read(v->st, v->txn, name, out, err);
}


int
store_user_find(store_t *st, const char *name, store_user_t *out,
    store_err_t *err)
{
    MDB_txn  *txn;
    int       rc;

    if (!store_identity_ready(st, err)) {
        return STORE_NOTFOUND;
    }

    if (store_txn_begin(st, MDB_RDONLY, &txn, err) != 0) {
        return -1;
    }

    rc = store_user_read(st, txn, name, out, err);

    store_abort(st, txn);

    return rc;
}


int
store_user_create(store_t *st, const store_user_t *u, const char *actor,
    store_err_t *err)
{
    store_user_t   rec;
    MDB_txn       *txn;
    char           detail[256];
    size_t         len;
    unsigned       i;
    int64_t        now;

    if (store_writable(st, err) != 0) {
        return -1;
    }

    rec = *u;
    snprintf(rec.created_by, sizeof(rec.created_by), "%s",
             actor != NULL && actor[0] != '\0' ? actor : "unknown");

    if (store_user_check(&rec, err) != 0) {
        return -1;
    }

    now = (int64_t) time(NULL);
    rec.created_at = now;
    rec.updated_at = now;

    len = (size_t) snprintf(detail, sizeof(detail), "groups ");
    for (i = 0; i < rec.ngroups && len < sizeof(detail); i++) {
        len += (size_t) snprintf(detail + len, sizeof(detail) - len, "%s%s",
                                 i > 0 ? "," : "", rec.groups[i]);
    }

    if (rec.ngroups == 0) {
        snprintf(detail, sizeof(detail), "no groups");
    }

    if (store_wbegin(st, &txn, err) != 0) {
        return -1;
    }

    if (store_user_put(st, txn, &rec, MDB_NOOVERWRITE, "cannot create user",
                       err)
        != 0)
    {
        store_abort(st, txn);
        return -1;
    }

    return store_audit_commit(st, txn, rec.created_by, "user.create",
                              rec.name, detail, now, "cannot create user",
                              err);
}


static int
store_user_write(store_t *st, const store_user_t *u, const char *actor,
    const char *action, const char *detail, int revoke, unsigned *revoked,
    store_err_t *err)
{
    store_user_t   old, rec;
    MDB_txn       *txn;
    char           text[256];
    unsigned       n;
    int64_t        now;
    int            rc;

    if (revoked != NULL) {
        *revoked = 0;
    }

    if (store_writable(st, err) != 0) {
        return -1;
    }

    if (action == NULL || action[0] == '\0') {
        store_seterr(err, "user update without an audit action");
        return -1;
    }

    rec = *u;

    if (store_user_check(&rec, err) != 0) {
        return -1;
    }

    now = (int64_t) time(NULL);

    if (store_wbegin(st, &txn, err) != 0) {
        return -1;
    }

    rc = store_user_read(st, txn, rec.name, &old, err);
    if (rc != 0) {
        store_abort(st, txn);
        return rc;
    }

    memcpy(rec.created_by, old.created_by, sizeof(rec.created_by));
    rec.created_at = old.created_at;
    rec.updated_at = now;

    /* a copy read before a sign-in must not reopen the code it used */
    if (rec.totp_sealed_len == old.totp_sealed_len
        && memcmp(rec.totp_sealed, old.totp_sealed, rec.totp_sealed_len)
           == 0
        && rec.totp_last_counter < old.totp_last_counter)
    {
        rec.totp_last_counter = old.totp_last_counter;
    }

    if (store_user_put(st, txn, &rec, 0, "cannot update user", err) != 0) {
        goto failed;
    }

    store_clean(text, sizeof(text), detail);

    if (revoke) {
        if (store_session_revoke_all(st, txn, rec.name, now, &n, err) != 0)
        {
            goto failed;
        }

        if (revoked != NULL) {
            *revoked = n;
        }

        store_clean(text, sizeof(text) - 32, detail);
        snprintf(text + strlen(text), sizeof(text) - strlen(text),
                 "%s%u sessions revoked", text[0] != '\0' ? "; " : "", n);
    }

    return store_audit_commit(st, txn, actor, action, rec.name, text, now,
                              "cannot update user", err);

failed:

    store_abort(st, txn);

    return -1;
}


int
store_user_update(store_t *st, const store_user_t *u, const char *actor,
    const char *action, const char *detail, store_err_t *err)
{
    return store_user_write(st, u, actor, action, detail, 0, NULL, err);
}


int
store_user_update_revoke(store_t *st, const store_user_t *u,
    const char *actor, const char *action, const char *detail,
    unsigned *revoked, store_err_t *err)
{
    return store_user_write(st, u, actor, action, detail, 1, revoked, err);
}


int
store_user_delete(store_t *st, const char *name, const char *actor,
    store_err_t *err)
{
    store_user_t   u;
    MDB_txn       *txn;
    MDB_val        key;
    char           detail[64];
    unsigned       n;
    int64_t        now;
    int            rc;

    if (store_writable(st, err) != 0) {
        return -1;
    }

    now = (int64_t) time(NULL);

    if (store_wbegin(st, &txn, err) != 0) {
        return -1;
    }

    rc = store_user_read(st, txn, name, &u, err);
    if (rc != 0) {
        store_abort(st, txn);
        return rc;
    }

    key.mv_data = u.name;
    key.mv_size = strlen(u.name);

    rc = store_del(st, txn, st->users, &key, NULL);
    if (rc != MDB_SUCCESS) {
        store_mdb_err(st, err, rc, "cannot delete user");
        goto failed;
    }

    if (store_session_revoke_all(st, txn, u.name, now, &n, err) != 0) {
        goto failed;
    }

    snprintf(detail, sizeof(detail), "%u sessions revoked", n);

    return store_audit_commit(st, txn, actor, "user.delete", u.name, detail,
                              now, "cannot delete user", err);

failed:

    store_abort(st, txn);

    return -1;
}


int
store_user_list(store_t *st, store_user_cb cb, void *arg, store_err_t *err)
{
    store_walk_t  w;

    if (!st->identity) {
        return 0;
    }

    memset(&w, 0, sizeof(w));
    w.user = cb;
    w.arg = arg;

    return store_read_walk(st, st->users, "cannot read users",
                           store_user_visit, &w, err);
}


/* Collects user names for store_user_reseal(). */
typedef struct {
    char      (*names)[STORE_NAME_MAX];
    size_t      n;
    size_t      cap;
} store_names_t;


static int
store_names_visit(const MDB_val *key, const MDB_val *val, void *arg,
    store_err_t *err)
{
    store_names_t   *nl = arg;
    char           (*names)[STORE_NAME_MAX];
    size_t           cap;

    (void) val;

    if (key->mv_size >= STORE_NAME_MAX) {
        store_seterr(err, "corrupt user key (%zu bytes)", key->mv_size);
        return -1;
    }

    if (nl->n == nl->cap) {
        cap = nl->cap ? nl->cap * 2 : 256;
        names = realloc(nl->names, cap * sizeof(*names));
        if (names == NULL) {
            store_seterr(err, "out of memory");
            return -1;
        }
        nl->names = names;
        nl->cap = cap;
    }

    memcpy(nl->names[nl->n], key->mv_data, key->mv_size);
    nl->names[nl->n][key->mv_size] = '\0';
    nl->n++;

    return 0;
}


int
store_user_reseal(store_t *st, store_reseal_cb cb, void *arg,
    const char *actor, unsigned *count, store_err_t *err)
{
    store_names_t   nl;
    store_user_t    u;
    MDB_txn        *txn;
    uint8_t         out[sizeof(u.totp_sealed)];
    size_t          i, outlen;
    unsigned        n;
    char            msg[200], detail[64];

    if (store_writable(st, err) != 0 || !store_identity_ready(st, err)
        || store_wbegin(st, &txn, err) != 0)
    {
        return -1;
    }

    memset(&nl, 0, sizeof(nl));
    n = 0;

    /* the names first: no cursor is open while records are rewritten */
    if (store_walk(st, txn, st->users, "cannot read users",
                   store_names_visit, &nl, err) != 0)
    {
        goto failed;
    }

    for (i = 0; i < nl.n; i++) {
        if (store_user_read(st, txn, nl.names[i], &u, err) != 0) {
            goto failed;
        }

        if (u.totp_sealed_len == 0) {
            continue;
        }

        msg[0] = '\0';
        if (cb(u.name, u.totp_sealed, u.totp_sealed_len, out, sizeof(out),
               &outlen, msg, sizeof(msg), arg) != 0)
        {
            store_seterr(err, "user %s: %s", u.name, msg);
            goto failed;
        }

        memcpy(u.totp_sealed, out, outlen);
        u.totp_sealed_len = outlen;

        if (store_user_put(st, txn, &u, 0, "cannot re-seal a TOTP secret",
                           err) != 0)
        {
            goto failed;
        }

        n++;
    }

    free(nl.names);

    snprintf(detail, sizeof(detail), "%u TOTP secrets re-sealed", n);

    if (store_audit_commit(st, txn, actor, "keys.reseal", "secret.key",
                           detail, (int64_t) time(NULL),
                           "cannot re-seal the TOTP secrets", err)
        != 0)
    {
        return -1;
    }

    if (count != NULL) {
        *count = n;
    }

    return 0;

failed:

    free(nl.names);
    store_abort(st, txn);

    return -1;
}


int
store_login_failed(store_t *st, const char *name, int64_t now,
    unsigned threshold, int64_t lock_seconds, const char *source,
    const char *why, store_err_t *err)
{
    store_user_t   u;
    MDB_txn       *txn;
    const char    *subject;
    char           src[64], reason[128], detail[256];
    int            rc, locked;

    if (store_writable(st, err) != 0) {
        return -1;
    }

    if (!store_identity_ready(st, err)) {
        return -1;
    }

    store_clean(src, sizeof(src), source);
    store_clean(reason, sizeof(reason), why);

    if (store_wbegin(st, &txn, err) != 0) {
        return -1;
    }

    rc = store_user_read(st, txn, name, &u, err);
    if (rc == -1) {
        goto failed;
    }

    if (rc == STORE_NOTFOUND) {
        /* attempts on names that do not exist are worth seeing too */
        subject = store_user_name_ok(name) ? name : "-";
        snprintf(detail, sizeof(detail), "from %s: %s (unknown user)",
                 src[0] != '\0' ? src : "-", reason);

        if (store_audit_commit(st, txn, STORE_LOGIN_ACTOR, "login.failure",
                               subject, detail, now,
                               "cannot record a failed sign-in", err)
            != 0)
        {
            return -1;
        }

        store_seterr(err, "no user \"%s\"", subject);

        return STORE_NOTFOUND;
    }

    if (u.failures < UINT32_MAX) {
        u.failures++;
    }

    u.last_failure = now;
    locked = 0;

    if (threshold > 0 && lock_seconds > 0 && u.failures >= threshold
        && u.locked_until <= now)
    {
        u.locked_until = now > INT64_MAX - lock_seconds
                         ? INT64_MAX : now + lock_seconds;
        locked = 1;
    }

    if (store_user_put(st, txn, &u, 0, "cannot record a failed sign-in",
                       err)
        != 0)
    {
        goto failed;
    }

    snprintf(detail, sizeof(detail), "from %s: %s (failure %u)",
             src[0] != '\0' ? src : "-", reason, u.failures);

    if (!locked) {
        return store_audit_commit(st, txn, STORE_LOGIN_ACTOR,
                                  "login.failure", u.name, detail, now,
                                  "cannot record a failed sign-in", err);
    }

    if (store_audit_append(st, txn, STORE_LOGIN_ACTOR, "login.failure",
                           u.name, detail, now, err)
        != 0)
    {
        goto failed;
    }

    snprintf(detail, sizeof(detail), "%u failures: locked for %lld s",
             u.failures, (long long) lock_seconds);

    return store_audit_commit(st, txn, STORE_LOGIN_ACTOR, "user.locked",
                              u.name, detail, now,
                              "cannot record a failed sign-in", err);

failed:

    store_abort(st, txn);

    return -1;
}


int
store_login_succeeded(store_t *st, const char *name, uint64_t counter,
    int64_t now, const char *source, store_err_t *err)
{
    store_user_t   u;
    MDB_txn       *txn;
    char           src[64], detail[256];
    int            rc, unlocked;

    if (store_writable(st, err) != 0) {
        return -1;
    }

    if (!store_identity_ready(st, err)) {
        return -1;
    }

    store_clean(src, sizeof(src), source);

    if (store_wbegin(st, &txn, err) != 0) {
        return -1;
    }

    rc = store_user_read(st, txn, name, &u, err);
    if (rc != 0) {
        store_abort(st, txn);
        return rc;
    }

    if (u.disabled) {
        store_seterr(err, "user %s is disabled", u.name);
        goto failed;
    }

    if (u.locked_until > now) {
        store_seterr(err, "user %s is locked", u.name);
        goto failed;
    }

    /* the check that makes one code good for one sign-in only */
    if (counter != 0 && counter <= u.totp_last_counter) {
        store_abort(st, txn);
        store_seterr(err, "user %s: TOTP code already used", u.name);
        return STORE_REPLAY;
    }

    if (counter != 0) {
        u.totp_last_counter = counter;
    }

    unlocked = u.locked_until != 0;
    u.failures = 0;
    u.locked_until = 0;

    if (store_user_put(st, txn, &u, 0, "cannot record a sign-in", err) != 0)
    {
        goto failed;
    }

    snprintf(detail, sizeof(detail), "from %s%s%s",
             src[0] != '\0' ? src : "-", counter != 0 ? " with TOTP" : "",
             unlocked ? "; lock had expired: unlocked" : "");

    return store_audit_commit(st, txn, STORE_LOGIN_ACTOR, "login.success",
                              u.name, detail, now,
                              "cannot record a sign-in", err);

failed:

    store_abort(st, txn);

    return -1;
}


static int
store_session_check(const store_session_t *s, store_err_t *err)
{
    if (!store_text_ok(s->sid, sizeof(s->sid), 0) || !store_sid_ok(s->sid))
    {
        store_seterr(err, "invalid session id: %d lowercase hex digits "
                     "expected", STORE_SID_LEN);
        return -1;
    }

    if (!store_text_ok(s->user, sizeof(s->user), 0)
        || !store_user_name_ok(s->user))
    {
        store_seterr(err, "session: invalid user name");
        return -1;
    }

    if (!store_text_ok(s->source, sizeof(s->source), 1)) {
        store_seterr(err, "session: the source must be text without "
                     "control characters");
        return -1;
    }

    if (s->expires_at <= 0) {
        store_seterr(err, "session: an expiry time is required");
        return -1;
    }

    return 0;
}


static size_t
store_session_encode(const store_session_t *s, uint8_t *buf, size_t size)
{
    store_wr_t  w;
    uint8_t     flags, fp[STORE_FP_LEN];

    w.p = buf;
    w.end = buf + size;
    w.overflow = 0;

    flags = (s->has_device ? STORE_SESSION_HAS_DEVICE : 0)
            | (s->revoked ? STORE_SESSION_REVOKED : 0);

    if (s->has_device) {
        memcpy(fp, s->device_fp, sizeof(fp));
    } else {
        memset(fp, 0, sizeof(fp));
    }

    store_put_u8(&w, STORE_SESSION_REC_V1);
    store_put_u8(&w, flags);
    store_put_u32(&w, (uint32_t) s->methods);
    store_put_u64(&w, (uint64_t) s->created_at);
    store_put_u64(&w, (uint64_t) s->mfa_at);
    store_put_u64(&w, (uint64_t) s->last_seen);
    store_put_u64(&w, (uint64_t) s->expires_at);
    store_put_u64(&w, (uint64_t) s->revoked_at);

    if (w.overflow || (size_t) (w.end - w.p) < sizeof(fp)) {
        return 0;
    }

    memcpy(w.p, fp, sizeof(fp));
    w.p += sizeof(fp);

    store_put_str(&w, s->user);
    store_put_str(&w, s->source);

    if (w.overflow) {
        return 0;
    }

    return (size_t) (w.p - buf);
}


static int
store_session_decode(const MDB_val *key, const MDB_val *val,
    store_session_t *s, store_err_t *err)
{
    store_rd_t  r;
    uint8_t     version, flags;
    uint32_t    methods;
    uint64_t    created, mfa, seen, expires, revoked;

    memset(s, 0, sizeof(*s));

    if (key->mv_size != STORE_SID_LEN) {
        store_seterr(err, "corrupt session record: key of %zu bytes",
                     key->mv_size);
        return -1;
    }

    memcpy(s->sid, key->mv_data, STORE_SID_LEN);
    s->sid[STORE_SID_LEN] = '\0';

    if (!store_sid_ok(s->sid)) {
        memset(s, 0, sizeof(*s));
        store_seterr(err, "corrupt session record: invalid key");
        return -1;
    }

    r.p = val->mv_data;
    r.end = r.p + val->mv_size;

    if (store_get_u8(&r, &version) != 0) {
        goto corrupt;
    }

    if (version != STORE_SESSION_REC_V1) {
        store_seterr(err, "session %.*s: record version %u not supported",
                     STORE_SID_AUDIT_LEN, s->sid, version);
        memset(s, 0, sizeof(*s));
        return -1;
    }

    if (store_get_u8(&r, &flags) != 0
        || (flags & ~(STORE_SESSION_HAS_DEVICE | STORE_SESSION_REVOKED))
        || store_get_u32(&r, &methods) != 0
        || store_get_u64(&r, &created) != 0
        || store_get_u64(&r, &mfa) != 0
        || store_get_u64(&r, &seen) != 0
        || store_get_u64(&r, &expires) != 0
        || store_get_u64(&r, &revoked) != 0
        || (size_t) (r.end - r.p) < STORE_FP_LEN)
    {
        goto corrupt;
    }

    memcpy(s->device_fp, r.p, STORE_FP_LEN);
    r.p += STORE_FP_LEN;

    if (store_get_str(&r, s->user, sizeof(s->user)) != 0
        || store_get_str(&r, s->source, sizeof(s->source)) != 0
        || r.p != r.end
        || !store_user_name_ok(s->user))
    {
        goto corrupt;
    }

    s->has_device = (flags & STORE_SESSION_HAS_DEVICE) != 0;
    s->revoked = (flags & STORE_SESSION_REVOKED) != 0;
    s->methods = methods;
    s->created_at = (int64_t) created;
    s->mfa_at = (int64_t) mfa;
    s->last_seen = (int64_t) seen;
    s->expires_at = (int64_t) expires;
    s->revoked_at = (int64_t) revoked;

    return 0;

corrupt:

    store_seterr(err, "session %.*s: corrupt record (%zu bytes)",
                 STORE_SID_AUDIT_LEN, s->sid, val->mv_size);
    memset(s, 0, sizeof(*s));

    return -1;
}


/* Read session sid in txn: 0, STORE_NOTFOUND (also invalid sid), -1. */
static int
store_session_read(store_t *st, MDB_txn *txn, const char *sid,
    store_session_t *s, store_err_t *err)
{
    MDB_val  key, val;
    int      rc;

    if (!store_sid_ok(sid)) {
        store_seterr(err, "no such session");
        return STORE_NOTFOUND;
    }

    key.mv_data = (void *) (uintptr_t) sid;
    key.mv_size = STORE_SID_LEN;

    rc = store_rec_get(st, txn, st->sessions, &key, &val,
                       "cannot read session", err);
    if (rc == STORE_NOTFOUND) {
        store_seterr(err, "no session %.*s", STORE_SID_AUDIT_LEN, sid);
    }

    if (rc != 0) {
        return rc;
    }

    return store_session_decode(&key, &val, s, err);
}


static int
store_session_put(store_t *st, MDB_txn *txn, const store_session_t *s,
    unsigned flags, const char *what, store_err_t *err)
{
    MDB_val  key, val;
    uint8_t  buf[STORE_REC_MAX];
    size_t   len;
    int      rc;

    len = store_session_encode(s, buf, sizeof(buf));
    if (len == 0) {
        store_seterr(err, "session record too large");
        return -1;
    }

    key.mv_data = (void *) (uintptr_t) s->sid;
    key.mv_size = STORE_SID_LEN;
    val.mv_data = buf;
    val.mv_size = len;

    rc = store_put(st, txn, st->sessions, &key, &val, flags);
    if (rc == MDB_KEYEXIST) {
        store_seterr(err, "session %.*s already exists",
                     STORE_SID_AUDIT_LEN, s->sid);
        return -1;
    }

    if (rc != MDB_SUCCESS) {
        store_mdb_err(st, err, rc, what);
        return -1;
    }

    return 0;
}


static int
store_revoke_matches(const store_revoke_match_t *m, const store_session_t *s)
{
    if (s->revoked) {
        return 0;
    }

    if (m->user != NULL) {
        return strcmp(s->user, m->user) == 0;
    }

    return s->has_device && memcmp(s->device_fp, m->fp, STORE_FP_LEN) == 0
           && strcmp(s->user, m->keep_user) != 0;
}


/*
 * Revoke inside txn every session m matches (a scan: sessions are keyed
 * by sid).  *count receives how many were revoked.
 */
static int
store_session_revoke_where(store_t *st, MDB_txn *txn,
    const store_revoke_match_t *m, int64_t now, unsigned *count,
    store_err_t *err)
{
    store_session_t   s;
    MDB_cursor       *cur;
    MDB_val           key, val;
    uint8_t           buf[STORE_REC_MAX];
    size_t            len;
    int               rc;
    MDB_cursor_op     op;

    *count = 0;

    if (!st->identity) {
        return 0;
    }

    rc = mdb_cursor_open(txn, st->sessions, &cur);
    if (rc != MDB_SUCCESS) {
        store_mdb_err(st, err, rc, "cannot read sessions");
        return -1;
    }

    for (op = MDB_FIRST; ; op = MDB_NEXT) {
        rc = mdb_cursor_get(cur, &key, &val, op);
        if (rc == MDB_NOTFOUND) {
            break;
        }

        if (rc != MDB_SUCCESS) {
            store_mdb_err(st, err, rc, "cannot read sessions");
            goto failed;
        }

        if (store_session_decode(&key, &val, &s, err) != 0) {
            goto failed;
        }

        if (!store_revoke_matches(m, &s)) {
            continue;
        }

        s.revoked = 1;
        s.revoked_at = now;

        len = store_session_encode(&s, buf, sizeof(buf));
        if (len == 0) {
            store_seterr(err, "session record too large");
            goto failed;
        }

        val.mv_data = buf;
        val.mv_size = len;

        rc = store_cap(st, txn, st->sessions, &key);
        if (rc == MDB_SUCCESS) {
            rc = mdb_cursor_put(cur, &key, &val, MDB_CURRENT);
        }
        if (rc != MDB_SUCCESS) {
            store_mdb_err(st, err, rc, "cannot revoke session");
            goto failed;
        }

        (*count)++;
    }

    mdb_cursor_close(cur);

    return 0;

failed:

    mdb_cursor_close(cur);

    return -1;
}


/* Revoke every session of user inside txn. */
static int
store_session_revoke_all(store_t *st, MDB_txn *txn, const char *user,
    int64_t now, unsigned *count, store_err_t *err)
{
    store_revoke_match_t  m = { user, NULL, NULL };

    return store_session_revoke_where(st, txn, &m, now, count, err);
}


int
store_session_create(store_t *st, const store_session_t *s,
    store_err_t *err)
{
    store_session_t   rec;
    store_user_t      u;
    MDB_txn          *txn;
    char              detail[256], fp[2 * STORE_FP_LEN + 1];
    int               rc;

    if (store_writable(st, err) != 0) {
        return -1;
    }

    if (!store_identity_ready(st, err)) {
        return -1;
    }

    if (store_session_check(s, err) != 0) {
        return -1;
    }

    rec = *s;
    rec.revoked = 0;
    rec.revoked_at = 0;

    if (rec.created_at == 0) {
        rec.created_at = (int64_t) time(NULL);
    }

    if (rec.last_seen == 0) {
        rec.last_seen = rec.created_at;
    }

    if (!rec.has_device) {
        memset(rec.device_fp, 0, sizeof(rec.device_fp));
    }

    if (store_wbegin(st, &txn, err) != 0) {
        return -1;
    }

    /* in the transaction: a user deleted or disabled meanwhile gets none */
    rc = store_user_read(st, txn, rec.user, &u, err);
    if (rc == STORE_NOTFOUND) {
        store_seterr(err, "cannot create session: no user \"%s\"",
                     rec.user);
        goto failed;
    }

    if (rc != 0) {
        goto failed;
    }

    if (u.disabled) {
        store_seterr(err, "cannot create session: user %s is disabled",
                     rec.user);
        goto failed;
    }

    if (store_session_put(st, txn, &rec, MDB_NOOVERWRITE,
                          "cannot create session", err)
        != 0)
    {
        goto failed;
    }

    if (rec.has_device) {
        store_fp_hex(rec.device_fp, fp);
        fp[16] = '\0';
    }

    snprintf(detail, sizeof(detail), "session %.*s from %s%s%s",
             STORE_SID_AUDIT_LEN, rec.sid,
             rec.source[0] != '\0' ? rec.source : "-",
             rec.has_device ? " device " : "", rec.has_device ? fp : "");

    return store_audit_commit(st, txn, rec.user, "session.create", rec.user,
                              detail, rec.created_at,
                              "cannot create session", err);

failed:

    store_abort(st, txn);

    return -1;
}


int
store_session_get(store_view_t *v, const char *sid, store_session_t *out,
    store_err_t *err)
{
    if (v == NULL || !v->active) {
        store_seterr(err, "session lookup outside a read view");
        return -1;
    }

    if (!store_identity_ready(v->st, err)) {
        return STORE_NOTFOUND;
    }

    return store_session_read(v->st, v->txn, sid, out, err);
}


int
store_session_find(store_t *st, const char *sid, store_session_t *out,
    store_err_t *err)
{
    MDB_txn  *txn;
    int       rc;

    if (!store_identity_ready(st, err)) {
        return STORE_NOTFOUND;
    }

    if (store_txn_begin(st, MDB_RDONLY, &txn, err) != 0) {
        return -1;
    }

    rc = store_session_read(st, txn, sid, out, err);

    store_abort(st, txn);

    return rc;
}


int
store_session_mfa(store_t *st, const char *sid, unsigned methods,
    int64_t now, store_err_t *err)
{
    store_session_t   s;
    MDB_txn          *txn;
    char              detail[128];
    int               rc;

    if (store_writable(st, err) != 0) {
        return -1;
    }

    if (!store_identity_ready(st, err)) {
        return -1;
    }

    if (store_wbegin(st, &txn, err) != 0) {
        return -1;
    }

    rc = store_session_read(st, txn, sid, &s, err);
    if (rc != 0) {
        store_abort(st, txn);
        return rc;
    }

    if (s.revoked) {
        store_seterr(err, "session %.*s is revoked", STORE_SID_AUDIT_LEN,
                     s.sid);
        goto failed;
    }

    s.mfa_at = now;
    s.methods |= methods;

    if (store_session_put(st, txn, &s, 0, "cannot update session", err)
        != 0)
    {
        goto failed;
    }

    snprintf(detail, sizeof(detail), "session %.*s methods 0x%x",
             STORE_SID_AUDIT_LEN, s.sid, s.methods);

    return store_audit_commit(st, txn, s.user, "session.mfa", s.user, detail,
                              now, "cannot update session", err);

failed:

    store_abort(st, txn);

    return -1;
}


int
store_session_touch(store_t *st, const char *const *sids, size_t n,
    int64_t now, store_err_t *err)
{
    store_session_t   s;
    MDB_txn          *txn;
    size_t            i;
    unsigned          changed;
    int               rc;

    if (store_writable(st, err) != 0) {
        return -1;
    }

    if (n == 0 || !st->identity) {
        return 0;
    }

    if (store_wbegin(st, &txn, err) != 0) {
        return -1;
    }

    changed = 0;

    for (i = 0; i < n; i++) {
        if (sids[i] == NULL) {
            continue;
        }

        rc = store_session_read(st, txn, sids[i], &s, err);
        if (rc == STORE_NOTFOUND) {
            continue;
        }

        if (rc != 0) {
            goto failed;
        }

        if (s.revoked || s.last_seen >= now) {
            continue;
        }

        s.last_seen = now;

        if (store_session_put(st, txn, &s, 0, "cannot update sessions", err)
            != 0)
        {
            goto failed;
        }

        changed++;
    }

    if (changed == 0) {
        store_abort(st, txn);
        return 0;
    }

    rc = store_commit(st, txn);
    if (rc != MDB_SUCCESS) {
        store_mdb_err(st, err, rc, "cannot update sessions");
        return -1;
    }

    return 0;

failed:

    store_abort(st, txn);

    return -1;
}


int
store_session_revoke(store_t *st, const char *sid, const char *actor,
    store_err_t *err)
{
    store_session_t   s;
    MDB_txn          *txn;
    char              detail[64];
    int64_t           now;
    int               rc;

    if (store_writable(st, err) != 0) {
        return -1;
    }

    if (!store_identity_ready(st, err)) {
        return STORE_NOTFOUND;
    }

    now = (int64_t) time(NULL);

    if (store_wbegin(st, &txn, err) != 0) {
        return -1;
    }

    rc = store_session_read(st, txn, sid, &s, err);
    if (rc != 0 || s.revoked) {
        store_abort(st, txn);
        return rc;
    }

    s.revoked = 1;
    s.revoked_at = now;

    if (store_session_put(st, txn, &s, 0, "cannot revoke session", err)
        != 0)
    {
        store_abort(st, txn);
        return -1;
    }

    snprintf(detail, sizeof(detail), "session %.*s", STORE_SID_AUDIT_LEN,
             s.sid);

    return store_audit_commit(st, txn, actor, "session.revoke", s.user,
                              detail, now, "cannot revoke session", err);
}


int
store_session_revoke_user(store_t *st, const char *user, const char *actor,
    unsigned *count, store_err_t *err)
{
    MDB_txn   *txn;
    char       detail[64];
    unsigned   n;
    int64_t    now;

    if (count != NULL) {
        *count = 0;
    }

    if (store_writable(st, err) != 0) {
        return -1;
    }

    if (!st->identity || !store_user_name_ok(user)) {
        return 0;
    }

    now = (int64_t) time(NULL);

    if (store_wbegin(st, &txn, err) != 0) {
        return -1;
    }

    if (store_session_revoke_all(st, txn, user, now, &n, err) != 0) {
        store_abort(st, txn);
        return -1;
    }

    if (n == 0) {
        store_abort(st, txn);
        return 0;
    }

    snprintf(detail, sizeof(detail), "all %u sessions", n);

    if (store_audit_commit(st, txn, actor, "session.revoke", user, detail,
                           now, "cannot revoke sessions", err)
        != 0)
    {
        return -1;
    }

    if (count != NULL) {
        *count = n;
    }

    return 0;
}


int
store_session_list(store_t *st, const char *user, store_session_cb cb,
    void *arg, store_err_t *err)
{
    store_walk_t  w;

    if (!st->identity) {
        return 0;
    }

    memset(&w, 0, sizeof(w));
    w.session = cb;
    w.owner = user;
    w.arg = arg;

    return store_read_walk(st, st->sessions, "cannot read sessions",
                           store_session_visit, &w, err);
}


int
store_session_purge(store_t *st, int64_t before, unsigned *count,
    store_err_t *err)
{
    store_session_t   s;
    MDB_txn          *txn;
    MDB_cursor       *cur;
    MDB_val           key, val;
    char              detail[64];
    unsigned          n;
    int               rc;
    MDB_cursor_op     op;

    if (count != NULL) {
        *count = 0;
    }

    if (store_writable(st, err) != 0) {
        return -1;
    }

    if (!st->identity) {
        return 0;
    }

    if (store_wbegin(st, &txn, err) != 0) {
        return -1;
    }

    rc = mdb_cursor_open(txn, st->sessions, &cur);
    if (rc != MDB_SUCCESS) {
        store_mdb_err(st, err, rc, "cannot read sessions");
        goto failed;
    }

    n = 0;

    /* after mdb_cursor_del() the cursor's MDB_NEXT is the following key */
    for (op = MDB_FIRST; ; op = MDB_NEXT) {
        rc = mdb_cursor_get(cur, &key, &val, op);
        if (rc == MDB_NOTFOUND) {
            break;
        }

        if (rc != MDB_SUCCESS) {
            store_mdb_err(st, err, rc, "cannot read sessions");
            goto close;
        }

        if (store_session_decode(&key, &val, &s, err) != 0) {
            goto close;
        }

        if (s.expires_at >= before && !(s.revoked && s.revoked_at < before))
        {
            continue;
        }

        rc = store_cap(st, txn, st->sessions, &key);
        if (rc == MDB_SUCCESS) {
            rc = mdb_cursor_del(cur, 0);
        }
        if (rc != MDB_SUCCESS) {
            store_mdb_err(st, err, rc, "cannot purge sessions");
            goto close;
        }

        n++;
    }

    mdb_cursor_close(cur);

    if (n == 0) {
        store_abort(st, txn);
        return 0;
    }

    snprintf(detail, sizeof(detail), "%u expired or revoked sessions", n);

    if (store_audit_commit(st, txn, STORE_SYSTEM_ACTOR, "session.purge",
                           "sessions", detail, (int64_t) time(NULL),
                           "cannot purge sessions", err)
        != 0)
    {
        return -1;
    }

    if (count != NULL) {
        *count = n;
    }

    return 0;

close:

    mdb_cursor_close(cur);

failed:

    store_abort(st, txn);

    return -1;
}


/* ---- device posture --------------------------------------------------- */

/* The database of schema 3.  Without MDB_CREATE a missing one is damage. */
static int
store_open_posture_db(store_t *st, MDB_txn *txn, unsigned dbflags,
    store_err_t *err)
{
    int  rc;

    rc = mdb_dbi_open(txn, "posture", dbflags, &st->posture);

    if (rc == MDB_NOTFOUND) {
        store_seterr(err, "store is damaged: schema version %u without "
                     "its posture database", STORE_SCHEMA_VERSION);
        return -1;
    }

    if (rc != MDB_SUCCESS) {
        store_mdb_err(st, err, rc, "cannot open store databases");
        return -1;
    }

    st->has_posture = 1;

    return 0;
}


/* A read-only opener of a schema 1 or 2 store has no posture yet. */
static int
store_posture_ready(const store_t *st, store_err_t *err)
{
    if (!st->has_posture) {
        store_seterr(err, "this store has no posture yet (schema older "
                     "than 3); open it once with write access to upgrade "
                     "it");
        return 0;
    }

    return 1;
}


static int
store_flag_ok(store_flag_t flag)
{
    return flag == STORE_FLAG_UNREPORTED || flag == STORE_FLAG_FALSE
           || flag == STORE_FLAG_TRUE;
}


const char *
store_flag_name(store_flag_t flag)
{
    switch (flag) {
    case STORE_FLAG_UNREPORTED: return "unreported";
    case STORE_FLAG_FALSE:      return "false";
    case STORE_FLAG_TRUE:       return "true";
    default:                    return "invalid";
    }
}


int
store_posture_text_ok(const char *s)
{
    size_t  i;

    for (i = 0; s[i] != '\0'; i++) {
        if (i == STORE_POSTURE_TEXT_MAX - 1
            || (unsigned char) s[i] < 0x20 || (unsigned char) s[i] > 0x7e)
        {
            return 0;
        }
    }

    return 1;
}


static int
store_posture_check(const store_posture_t *p, store_err_t *err)
{
    if (memchr(p->os, '\0', sizeof(p->os)) == NULL
        || !store_posture_text_ok(p->os))
    {
        store_seterr(err, "os must be printable text of at most %d bytes",
                     STORE_POSTURE_TEXT_MAX - 1);
        return -1;
    }

    if (memchr(p->os_version, '\0', sizeof(p->os_version)) == NULL
        || !store_posture_text_ok(p->os_version))
    {
        store_seterr(err, "os_version must be printable text of at most "
                     "%d bytes", STORE_POSTURE_TEXT_MAX - 1);
        return -1;
    }

    if (!store_flag_ok(p->disk_encrypted) || !store_flag_ok(p->firewall)
        || !store_flag_ok(p->screen_lock)
        || !store_flag_ok(p->endpoint_protection))
    {
        store_seterr(err, "invalid posture flag");
        return -1;
    }

    if (p->patch_time < 0 || p->reported_at < 0 || p->received_at < 0) {
        store_seterr(err, "posture times must not be negative");
        return -1;
    }

    if (!store_text_ok(p->source, sizeof(p->source), 0)) {
        store_seterr(err, "posture source must be non-empty text without "
                     "control characters");
        return -1;
    }

    return 0;
}


static size_t
store_posture_encode(const store_posture_t *p, uint8_t *buf, size_t size)
{
    store_wr_t  w;

    w.p = buf;
    w.end = buf + size;
    w.overflow = 0;

    store_put_u8(&w, STORE_POSTURE_REC_V1);
    store_put_u8(&w, (uint8_t) p->disk_encrypted);
    store_put_u8(&w, (uint8_t) p->firewall);
    store_put_u8(&w, (uint8_t) p->screen_lock);
    store_put_u8(&w, (uint8_t) p->endpoint_protection);
    store_put_u64(&w, (uint64_t) p->patch_time);
    store_put_u64(&w, (uint64_t) p->reported_at);
    store_put_u64(&w, (uint64_t) p->received_at);
    store_put_str(&w, p->os);
    store_put_str(&w, p->os_version);
    store_put_str(&w, p->source);

    if (w.overflow) {
        return 0;
    }

    return (size_t) (w.p - buf);
}


static int
store_posture_decode(const MDB_val *key, const MDB_val *val,
    store_posture_t *p, store_err_t *err)
{
    store_rd_t  r;
    uint8_t     version, flags[4];
    uint64_t    patch, reported, received;
    char        hex[2 * STORE_FP_LEN + 1];
    unsigned    i;

    memset(p, 0, sizeof(*p));

    if (key->mv_size != STORE_FP_LEN) {
        store_seterr(err, "corrupt posture record: key of %zu bytes",
                     key->mv_size);
        return -1;
    }

    memcpy(p->fp, key->mv_data, STORE_FP_LEN);
    store_fp_hex(p->fp, hex);

    r.p = val->mv_data;
    r.end = r.p + val->mv_size;

    if (store_get_u8(&r, &version) != 0) {
        goto corrupt;
    }

    if (version != STORE_POSTURE_REC_V1) {
        memset(p, 0, sizeof(*p));
        store_seterr(err, "posture of %s: record version %u not supported",
                     hex, version);
        return -1;
    }

    for (i = 0; i < 4; i++) {
        if (store_get_u8(&r, &flags[i]) != 0
            || !store_flag_ok((store_flag_t) flags[i]))
        {
            goto corrupt;
        }
    }

    if (store_get_u64(&r, &patch) != 0
        || store_get_u64(&r, &reported) != 0
        || store_get_u64(&r, &received) != 0
        || patch > INT64_MAX || reported > INT64_MAX || received > INT64_MAX
        || store_get_str(&r, p->os, sizeof(p->os)) != 0
        || store_get_str(&r, p->os_version, sizeof(p->os_version)) != 0
        || store_get_str(&r, p->source, sizeof(p->source)) != 0
        || r.p != r.end)
    {
        goto corrupt;
    }

    p->disk_encrypted = (store_flag_t) flags[0];
    p->firewall = (store_flag_t) flags[1];
    p->screen_lock = (store_flag_t) flags[2];
    p->endpoint_protection = (store_flag_t) flags[3];
    p->patch_time = (int64_t) patch;
    p->reported_at = (int64_t) reported;
    p->received_at = (int64_t) received;

    return 0;

corrupt:

    memset(p, 0, sizeof(*p));
    store_seterr(err, "posture of %s: corrupt record (%zu bytes)", hex,
                 val->mv_size);

    return -1;
}


static int
store_posture_read(store_t *st, MDB_txn *txn, const uint8_t fp[STORE_FP_LEN],
    store_posture_t *out, store_err_t *err)
{
    MDB_val  key, val;
    uint8_t  kbuf[STORE_FP_LEN];
    int      rc;

    if (!store_posture_ready(st, err)) {
        return STORE_NOTFOUND;
    }

    memcpy(kbuf, fp, STORE_FP_LEN);
    key.mv_data = kbuf;
    key.mv_size = STORE_FP_LEN;

    rc = store_rec_get(st, txn, st->posture, &key, &val,
                       "cannot read posture", err);
    if (rc != 0) {
        return rc;
    }

    return store_posture_decode(&key, &val, out, err);
}


int
store_posture_get(store_view_t *v, const uint8_t fp[STORE_FP_LEN],
    store_posture_t *out, store_err_t *err)
{
    if (v == NULL || !v->active) {
        store_seterr(err, "posture lookup outside a read view");
        return -1;
    }

    return store_posture_read(v->st, v->txn, fp, out, err);
}


int
store_posture_find(store_t *st, const uint8_t fp[STORE_FP_LEN],
    store_posture_t *out, store_err_t *err)
{
    MDB_txn  *txn;
    int       rc;

    if (!store_posture_ready(st, err)) {
        return STORE_NOTFOUND;
    }

    if (store_txn_begin(st, MDB_RDONLY, &txn, err) != 0) {
        return -1;
    }

    rc = store_posture_read(st, txn, fp, out, err);

    store_abort(st, txn);

    return rc;
}


/*
 * Check and write one posture (p->fp names the device) inside txn, with
 * its audit record; *dev receives the device.  Returns 0, STORE_NOTFOUND
 * (device not enrolled, *err says so) or -1.  The caller aborts txn on
 * anything but 0.
 */
static int
store_posture_write(store_t *st, MDB_txn *txn, const store_posture_t *p,
    const char *actor, int64_t now, store_device_t *dev, store_err_t *err)
{
    store_posture_t   rec;
    MDB_val           key, val;
    uint8_t           buf[STORE_REC_MAX], kbuf[STORE_FP_LEN];
    char              hex[2 * STORE_FP_LEN + 1], detail[256];
    size_t            len;
    int               rc;

    store_fp_hex(p->fp, hex);

    if (store_posture_check(p, err) != 0) {
        return -1;
    }

    rc = store_device_read(st, txn, p->fp, dev, err);
    if (rc == STORE_NOTFOUND) {
        store_seterr(err, "no device with fingerprint %s is enrolled", hex);
        return STORE_NOTFOUND;
    }

    if (rc != 0) {
        return -1;
    }

    if (dev->status == STORE_DEVICE_REVOKED) {
        store_seterr(err, "device %s (fingerprint %s) is revoked", dev->id,
                     hex);
        return -1;
    }

    rec = *p;
    if (rec.received_at == 0) {
        rec.received_at = now;
    }

    len = store_posture_encode(&rec, buf, sizeof(buf));
    if (len == 0) {
        store_seterr(err, "posture record too large");
        return -1;
    }

    memcpy(kbuf, p->fp, STORE_FP_LEN);
    key.mv_data = kbuf;
    key.mv_size = STORE_FP_LEN;
    val.mv_data = buf;
    val.mv_size = len;

    rc = store_put(st, txn, st->posture, &key, &val, 0);
    if (rc != MDB_SUCCESS) {
        store_mdb_err(st, err, rc, "cannot store posture");
        return -1;
    }

    snprintf(detail, sizeof(detail), "%.40s: os %.32s %.32s, disk "
             "encrypted %s, firewall %s, screen lock %s, endpoint "
             "protection %s",
             rec.source, rec.os[0] != '\0' ? rec.os : "-",
             rec.os_version[0] != '\0' ? rec.os_version : "-",
             store_flag_name(rec.disk_encrypted),
             store_flag_name(rec.firewall),
             store_flag_name(rec.screen_lock),
             store_flag_name(rec.endpoint_protection));

    return store_audit_append(st, txn, actor, "device.posture", dev->id,
                              detail, now, err);
}


int
store_posture_put(store_t *st, const uint8_t fp[STORE_FP_LEN],
    const store_posture_t *p, const char *actor, store_err_t *err)
{
    store_posture_t   rec;
    store_device_t    dev;
    MDB_txn          *txn;
    int64_t           now;
    int               rc;

    if (store_writable(st, err) != 0 || !store_posture_ready(st, err)) {
        return -1;
    }

    rec = *p;
    memcpy(rec.fp, fp, STORE_FP_LEN);
    now = (int64_t) time(NULL);

    if (store_wbegin(st, &txn, err) != 0) {
        return -1;
    }

    rc = store_posture_write(st, txn, &rec, actor, now, &dev, err);
    if (rc != 0) {
        store_abort(st, txn);
        return rc;
    }

    rc = store_commit(st, txn);
    if (rc != MDB_SUCCESS) {
        store_mdb_err(st, err, rc, "cannot store posture");
        return -1;
    }

    return 0;
}


int
store_posture_import(store_t *st, const store_posture_t *rows, size_t n,
    const char *actor, store_err_t *err)
{
    store_device_t   dev;
    store_err_t      rerr;
    MDB_txn         *txn;
    int64_t          now;
    size_t           i;
    int              rc;

    if (store_writable(st, err) != 0 || !store_posture_ready(st, err)) {
        return -1;
    }

    if (n == 0) {
        return 0;
    }

    now = (int64_t) time(NULL);

    if (store_wbegin(st, &txn, err) != 0) {
        return -1;
    }

    for (i = 0; i < n; i++) {
        rc = store_posture_write(st, txn, &rows[i], actor, now, &dev, &rerr);
        if (rc != 0) {
            store_abort(st, txn);
            store_seterr(err, "row %zu: %s", i + 1, rerr.msg);
            return -1;
        }
    }

    rc = store_commit(st, txn);
    if (rc != MDB_SUCCESS) {
        store_mdb_err(st, err, rc, "cannot import posture");
        return -1;
    }

    return 0;
}


/*
 * Revoke inside txn every session bound to device fp whose user is not
 * keep_user.  *count receives how many.
 */
static int
store_session_revoke_device(store_t *st, MDB_txn *txn,
    const uint8_t fp[STORE_FP_LEN], const char *keep_user, int64_t now,
    unsigned *count, store_err_t *err)
{
    store_revoke_match_t  m = { NULL, fp, keep_user };

    return store_session_revoke_where(st, txn, &m, now, count, err);
}


int
store_device_set_owner(store_t *st, const uint8_t fp[STORE_FP_LEN],
    const char *owner, const char *actor, store_err_t *err)
{
    store_device_t   dev;
    MDB_txn         *txn;
    char             old[sizeof(dev.owner)], detail[256];
    unsigned         revoked;
    int64_t          now;
    int              rc;

    if (store_writable(st, err) != 0) {
        return -1;
    }

    if (strlen(owner) >= sizeof(dev.owner)
        || !store_text_ok(owner, sizeof(dev.owner), 0))
    {
        store_seterr(err, "device owner must be a non-empty name of at "
                     "most %zu bytes without control characters",
                     sizeof(dev.owner) - 1);
        return -1;
    }

    now = (int64_t) time(NULL);

    if (store_wbegin(st, &txn, err) != 0) {
        return -1;
    }

    rc = store_device_read(st, txn, fp, &dev, err);
    if (rc == STORE_NOTFOUND) {
        store_abort(st, txn);
        return STORE_NOTFOUND;
    }

    if (rc != 0) {
        goto failed;
    }

    memcpy(old, dev.owner, sizeof(old));
    snprintf(dev.owner, sizeof(dev.owner), "%s", owner);
    dev.updated_at = now;

    if (store_device_rewrite(st, txn, &dev, err) != 0) {
        goto failed;
    }

    if (store_session_revoke_device(st, txn, fp, owner, now, &revoked, err)
        != 0)
    {
        goto failed;
    }

    snprintf(detail, sizeof(detail), "owner %s -> %s; %u session%s of "
             "this device revoked", old, dev.owner, revoked,
             revoked == 1 ? "" : "s");

    return store_audit_commit(st, txn, actor, "device.reassign", dev.id,
                              detail, now, "cannot update device", err);

failed:

    store_abort(st, txn);

    return -1;
}


/* ---- trust inference: history and blocklist (schema 4) ---------------- */

#define STORE_HISTORY_REC_V1    1
#define STORE_BLOCKLIST_REC_V1  1
#define STORE_HISTORY_REC_MAX   (1 + 8 + 31 * 4 + 1 \
                                 + STORE_HISTORY_ADDRS * 24)

static int store_history_decode(const MDB_val *val, store_history_t *h,
    store_err_t *err);
static int store_blocklist_key(const char *feed, const char *cidr,
    char *buf, size_t size, MDB_val *key, store_err_t *err);
static int store_trust_ready(const store_t *st, store_err_t *err);


/* The databases of schema 4.  Without MDB_CREATE a missing one is damage. */
static int
store_open_trust_dbs(store_t *st, MDB_txn *txn, unsigned dbflags,
    store_err_t *err)
{
    int  rc;

    rc = mdb_dbi_open(txn, "history", dbflags, &st->history);
    if (rc == MDB_SUCCESS) {
        rc = mdb_dbi_open(txn, "blocklist", dbflags, &st->blocklist);
    }

    if (rc == MDB_NOTFOUND) {
        store_seterr(err, "store is damaged: schema version %u without "
                     "its history and blocklist databases",
                     STORE_SCHEMA_VERSION);
        return -1;
    }

    if (rc != MDB_SUCCESS) {
        store_mdb_err(st, err, rc, "cannot open store databases");
        return -1;
    }

    st->has_trust = 1;

    return 0;
}


static int
store_trust_ready(const store_t *st, store_err_t *err)
{
    if (!st->has_trust) {
        store_seterr(err, "this store has no history or blocklist yet "
                     "(schema older than 4); open it once with write "
                     "access to upgrade it");
        return 0;
    }

    return 1;
}


static int
store_history_decode(const MDB_val *val, store_history_t *h,
    store_err_t *err)
{
    store_rd_t  r;
    uint64_t    u64;
    uint8_t     ver, n;
    size_t      len;
    unsigned    i;

    r.p = val->mv_data;
    r.end = r.p + val->mv_size;

    if (store_get_u8(&r, &ver) != 0 || ver != STORE_HISTORY_REC_V1
        || store_get_u64(&r, &u64) != 0)
    {
        goto corrupt;
    }

    h->updated_at = (int64_t) u64;

    for (i = 0; i < 24; i++) {
        if (store_get_u32(&r, &h->hours[i]) != 0) {
            goto corrupt;
        }
    }

    for (i = 0; i < 7; i++) {
        if (store_get_u32(&r, &h->days[i]) != 0) {
            goto corrupt;
        }
    }

    if (store_get_u8(&r, &n) != 0 || n > STORE_HISTORY_ADDRS) {
        goto corrupt;
    }

    h->naddrs = n;

    for (i = 0; i < n; i++) {
        if (store_get_bytes(&r, h->addrs[i].addr, 16, &len) != 0
            || len != 16 || store_get_u64(&r, &u64) != 0)
        {
            goto corrupt;
        }
        h->addrs[i].last_seen = (int64_t) u64;
    }

    if (r.p != r.end) {
        goto corrupt;
    }

    return 0;

corrupt:

    store_seterr(err, "history record of \"%s\" is corrupt", h->user);
    return -1;
}


int
store_history_get(store_view_t *v, const char *user, store_history_t *out,
    store_err_t *err)
{
    MDB_val  key, val;
    int      rc;

    if (v == NULL || !v->active) {
        store_seterr(err, "history lookup outside a read view");
        return -1;
    }

    if (!v->st->has_trust || !store_user_name_ok(user)) {
        return STORE_NOTFOUND;
    }

    key.mv_data = (void *) (uintptr_t) user;
    key.mv_size = strlen(user);

    rc = mdb_get(v->txn, v->st->history, &key, &val);
    if (rc == MDB_NOTFOUND) {
        return STORE_NOTFOUND;
    }

    if (rc != MDB_SUCCESS) {
        store_mdb_err(v->st, err, rc, "cannot read history");
        return -1;
    }

    memset(out, 0, sizeof(*out));
    snprintf(out->user, sizeof(out->user), "%s", user);

    return store_history_decode(&val, out, err);
}


int
store_history_put_batch(store_t *st, const store_history_t *rows, size_t n,
    store_err_t *err)
{
    MDB_txn     *txn;
    MDB_val      key, val;
    store_wr_t   w;
    uint8_t      buf[STORE_HISTORY_REC_MAX];
    size_t       i;
    unsigned     j, na;
    int          rc;

    if (store_writable(st, err) != 0) {
        return -1;
    }

    if (n == 0) {
        return 0;
    }

    if (!store_trust_ready(st, err) || !st->identity) {
        return -1;
    }

    if (store_wbegin(st, &txn, err) != 0) {
        return -1;
    }

    for (i = 0; i < n; i++) {
        if (!store_user_name_ok(rows[i].user)) {
            continue;
        }

        key.mv_data = (void *) (uintptr_t) rows[i].user;
        key.mv_size = strlen(rows[i].user);

        rc = mdb_get(txn, st->users, &key, &val);
        if (rc == MDB_NOTFOUND) {
            continue;
        }
        if (rc != MDB_SUCCESS) {
            store_mdb_err(st, err, rc, "cannot read user");
            goto failed;
        }

        w.p = buf;
        w.end = buf + sizeof(buf);
        w.overflow = 0;

        na = rows[i].naddrs;
        if (na > STORE_HISTORY_ADDRS) {
            na = STORE_HISTORY_ADDRS;
        }

        store_put_u8(&w, STORE_HISTORY_REC_V1);
        store_put_u64(&w, (uint64_t) rows[i].updated_at);
        for (j = 0; j < 24; j++) {
            store_put_u32(&w, rows[i].hours[j]);
        }
        for (j = 0; j < 7; j++) {
            store_put_u32(&w, rows[i].days[j]);
        }
        store_put_u8(&w, (uint8_t) na);
        for (j = 0; j < na; j++) {
            store_put_bytes(&w, rows[i].addrs[j].addr, 16);
            store_put_u64(&w, (uint64_t) rows[i].addrs[j].last_seen);
        }

        if (w.overflow) {
            store_seterr(err, "history record too large");
            goto failed;
        }

        val.mv_data = buf;
        val.mv_size = (size_t) (w.p - buf);

        rc = store_put(st, txn, st->history, &key, &val, 0);
        if (rc != MDB_SUCCESS) {
            store_mdb_err(st, err, rc, "cannot write history");
            goto failed;
        }
    }

    rc = store_commit(st, txn);
    if (rc != MDB_SUCCESS) {
        store_mdb_err(st, err, rc, "cannot write history");
        return -1;
    }

    return 0;

failed:

    store_abort(st, txn);

    return -1;
}


static int
store_blocklist_key(const char *feed, const char *cidr, char *buf,
    size_t size, MDB_val *key, store_err_t *err)
{
    size_t  fl, cl;

    fl = strlen(feed);
    cl = strlen(cidr);

    if (fl == 0 || fl >= 64 || cl == 0 || cl >= 64 || fl + cl + 1 > size
        || !store_text_ok(feed, 64, 0) || !store_text_ok(cidr, 64, 0))
    {
        store_seterr(err, "invalid blocklist feed or entry");
        return -1;
    }

    memcpy(buf, feed, fl);
    buf[fl] = '\0';
    memcpy(buf + fl + 1, cidr, cl);

    key->mv_data = buf;
    key->mv_size = fl + 1 + cl;

    return 0;
}


int
store_blocklist_add(store_t *st, const store_blocklist_t *e,
    const char *actor, store_err_t *err)
{
    MDB_txn     *txn;
    MDB_val      key, val;
    store_wr_t   w;
    uint8_t      buf[STORE_REC_MAX];
    char         kbuf[128], subject[160], detail[256];
    int64_t      now;
    int          rc;

    if (store_writable(st, err) != 0 || !store_trust_ready(st, err)
        || store_blocklist_key(e->feed, e->cidr, kbuf, sizeof(kbuf), &key,
                               err) != 0)
    {
        return -1;
    }

    now = (int64_t) time(NULL);

    w.p = buf;
    w.end = buf + sizeof(buf);
    w.overflow = 0;
    store_put_u8(&w, STORE_BLOCKLIST_REC_V1);
    store_put_u64(&w, (uint64_t) e->expires);
    store_put_u64(&w, (uint64_t) now);
    store_put_str(&w, actor);
    store_put_str(&w, e->reason);

    if (w.overflow) {
        store_seterr(err, "blocklist entry too large");
        return -1;
    }

    val.mv_data = buf;
    val.mv_size = (size_t) (w.p - buf);

    if (store_wbegin(st, &txn, err) != 0) {
        return -1;
    }

    rc = store_put(st, txn, st->blocklist, &key, &val, 0);
    if (rc != MDB_SUCCESS) {
        store_abort(st, txn);
        store_mdb_err(st, err, rc, "cannot write blocklist");
        return -1;
    }

    snprintf(subject, sizeof(subject), "%s %s", e->feed, e->cidr);
    store_clean(detail, sizeof(detail), e->reason);

    return store_audit_commit(st, txn, actor, "blocklist.add", subject,
                              detail, now, "cannot write blocklist", err);
}


int
store_blocklist_remove(store_t *st, const char *feed, const char *cidr,
    const char *actor, store_err_t *err)
{
    MDB_txn  *txn;
    MDB_val   key;
    char      kbuf[128], subject[160];
    int       rc;

    if (store_writable(st, err) != 0 || !store_trust_ready(st, err)
        || store_blocklist_key(feed, cidr, kbuf, sizeof(kbuf), &key, err)
           != 0)
    {
        return -1;
    }

    if (store_wbegin(st, &txn, err) != 0) {
        return -1;
    }

    rc = store_del(st, txn, st->blocklist, &key, NULL);
    if (rc == MDB_NOTFOUND) {
        store_abort(st, txn);
        store_seterr(err, "no entry %s in blocklist %s", cidr, feed);
        return STORE_NOTFOUND;
    }

    if (rc != MDB_SUCCESS) {
        store_abort(st, txn);
        store_mdb_err(st, err, rc, "cannot write blocklist");
        return -1;
    }

    snprintf(subject, sizeof(subject), "%s %s", feed, cidr);

    return store_audit_commit(st, txn, actor, "blocklist.remove", subject,
                              "", (int64_t) time(NULL),
                              "cannot write blocklist", err);
}


int
store_blocklist_list(store_t *st, store_blocklist_cb cb, void *arg,
    store_err_t *err)
{
    store_blocklist_t   e;
    store_rd_t          r;
    MDB_cursor         *cur;
    MDB_txn            *txn;
    MDB_val             key, val;
    const char         *k;
    uint64_t            u64;
    uint8_t             ver;
    size_t              fl;
    int                 rc, ret;

    if (!st->has_trust) {
        return 0;
    }

    if (store_txn_begin(st, MDB_RDONLY, &txn, err) != 0) {
        return -1;
    }

    rc = mdb_cursor_open(txn, st->blocklist, &cur);
    if (rc != MDB_SUCCESS) {
        store_abort(st, txn);
        store_mdb_err(st, err, rc, "cannot read blocklist");
        return -1;
    }

    ret = 0;

    for (rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST);
         rc == MDB_SUCCESS;
         rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT))
    {
        memset(&e, 0, sizeof(e));
        k = key.mv_data;
        fl = strnlen(k, key.mv_size);

        r.p = val.mv_data;
        r.end = r.p + val.mv_size;

        if (fl == key.mv_size || fl >= sizeof(e.feed)
            || key.mv_size - fl - 1 >= sizeof(e.cidr)
            || store_get_u8(&r, &ver) != 0 || ver != STORE_BLOCKLIST_REC_V1
            || store_get_u64(&r, &u64) != 0)
        {
            goto corrupt;
        }
        e.expires = (int64_t) u64;

        if (store_get_u64(&r, &u64) != 0
            || store_get_str(&r, e.added_by, sizeof(e.added_by)) != 0
            || store_get_str(&r, e.reason, sizeof(e.reason)) != 0)
        {
            goto corrupt;
        }
        e.added_at = (int64_t) u64;

        memcpy(e.feed, k, fl);
        memcpy(e.cidr, k + fl + 1, key.mv_size - fl - 1);

        if (cb(&e, arg) != 0) {
            break;
        }
    }

    if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND) {
        store_mdb_err(st, err, rc, "cannot read blocklist");
        ret = -1;
    }

    mdb_cursor_close(cur);
    store_abort(st, txn);

    return ret;

corrupt:

    store_seterr(err, "blocklist record is corrupt");
    mdb_cursor_close(cur);
    store_abort(st, txn);

    return -1;
}


/* ---- WebAuthn credentials (schema 6) -------------------------------- */

#define STORE_WA_REC_V1         1
#define STORE_WA_CODE_REC_V1    1
#define STORE_WA_FLAG_SUSPENDED 0x01

typedef struct {
    const char         *user;
    store_webauthn_cb   cb;
    void               *arg;
} store_wa_walk_t;

static int store_wa_ready(const store_t *st, store_err_t *err);
static size_t store_wa_encode(const store_webauthn_t *c, uint8_t *buf,
    size_t size);
static int store_wa_decode(const MDB_val *key, const MDB_val *val,
    store_webauthn_t *c, store_err_t *err);
static int store_wa_read(store_t *st, MDB_txn *txn, const uint8_t *id,
    size_t len, store_webauthn_t *c, store_err_t *err);
static int store_wa_put(store_t *st, MDB_txn *txn, const store_webauthn_t *c,
    unsigned flags, store_err_t *err);
static int store_wa_visit(const MDB_val *key, const MDB_val *val,
    void *arg, store_err_t *err);
static int store_wa_code_read(store_t *st, MDB_txn *txn,
    const uint8_t hash[STORE_WA_TOKEN_LEN], int64_t now, char *user,
    size_t size, store_err_t *err);
static void store_wa_subject(const store_webauthn_t *c, char *out,
    size_t size);


/* The databases of schema 6.  Without MDB_CREATE a missing one is damage. */
static int
store_open_webauthn_dbs(store_t *st, MDB_txn *txn, unsigned dbflags,
    store_err_t *err)
{
    int  rc;

    rc = mdb_dbi_open(txn, "webauthn", dbflags, &st->webauthn);
    if (rc == MDB_SUCCESS) {
        rc = mdb_dbi_open(txn, "wa_codes", dbflags, &st->wa_codes);
    }

    if (rc == MDB_NOTFOUND) {
        store_seterr(err, "store is damaged: schema version %u without its "
                     "webauthn databases", STORE_SCHEMA_VERSION);
        return -1;
    }

    if (rc != MDB_SUCCESS) {
        store_mdb_err(st, err, rc, "cannot open store databases");
        return -1;
    }

    st->has_webauthn = 1;

    return 0;
}


static int
store_wa_ready(const store_t *st, store_err_t *err)
{
    if (!st->has_webauthn || !st->identity) {
        store_seterr(err, "store schema has no WebAuthn credentials yet; "
                     "open it once with write access to upgrade it");
        return 0;
    }

    return 1;
}


/* "user/<first 8 bytes of the credential id in hex>" for the journal. */
static void
store_wa_subject(const store_webauthn_t *c, char *out, size_t size)
{
    char    hex[17];
    size_t  i, n;

    n = c->id_len < 8 ? c->id_len : 8;

    for (i = 0; i < n; i++) {
        snprintf(hex + 2 * i, 3, "%02x", c->id[i]);
    }

    hex[2 * n] = '\0';
    snprintf(out, size, "%s/%s", c->user, hex);
}


static size_t
store_wa_encode(const store_webauthn_t *c, uint8_t *buf, size_t size)
{
    store_wr_t  w;

    w.p = buf;
    w.end = buf + size;
    w.overflow = 0;

    store_put_u8(&w, STORE_WA_REC_V1);
    store_put_u8(&w, c->suspended ? STORE_WA_FLAG_SUSPENDED : 0);
    store_put_u32(&w, (uint32_t) c->alg);
    store_put_u32(&w, c->sign_count);
    store_put_u64(&w, (uint64_t) c->created_at);
    store_put_u64(&w, (uint64_t) c->last_used);
    store_put_str(&w, c->user);
    store_put_str(&w, c->name);
    store_put_bytes(&w, c->cose, c->cose_len);

    if (w.overflow) {
        return 0;
    }

    return (size_t) (w.p - buf);
}


static int
store_wa_decode(const MDB_val *key, const MDB_val *val, store_webauthn_t *c,
    store_err_t *err)
{
    store_rd_t  r;
    uint8_t     version, flags;
    uint32_t    alg;
    uint64_t    created, used;

    memset(c, 0, sizeof(*c));

    if (key->mv_size == 0 || key->mv_size > sizeof(c->id)) {
        store_seterr(err, "corrupt webauthn record: key of %zu bytes",
                     key->mv_size);
        return -1;
    }

    memcpy(c->id, key->mv_data, key->mv_size);
    c->id_len = key->mv_size;

    r.p = val->mv_data;
    r.end = r.p + val->mv_size;

    if (store_get_u8(&r, &version) != 0 || version != STORE_WA_REC_V1
        || store_get_u8(&r, &flags) != 0
        || store_get_u32(&r, &alg) != 0
        || store_get_u32(&r, &c->sign_count) != 0
        || store_get_u64(&r, &created) != 0
        || store_get_u64(&r, &used) != 0
        || store_get_str(&r, c->user, sizeof(c->user)) != 0
        || store_get_str(&r, c->name, sizeof(c->name)) != 0
        || store_get_bytes(&r, c->cose, sizeof(c->cose), &c->cose_len) != 0
        || r.p != r.end || !store_user_name_ok(c->user) || c->cose_len == 0)
    {
        memset(c, 0, sizeof(*c));
        store_seterr(err, "corrupt webauthn record");
        return -1;
    }

    c->alg = (int32_t) alg;
    c->suspended = (flags & STORE_WA_FLAG_SUSPENDED) != 0;
    c->created_at = (int64_t) created;
    c->last_used = (int64_t) used;

    return 0;
}


static int
store_wa_read(store_t *st, MDB_txn *txn, const uint8_t *id, size_t len,
    store_webauthn_t *c, store_err_t *err)
{
    MDB_val  key, val;
    int      rc;

    if (len == 0 || len > STORE_WA_ID_MAX) {
        store_seterr(err, "no such credential");
        return STORE_NOTFOUND;
    }

    key.mv_data = (void *) (uintptr_t) id;
    key.mv_size = len;

    rc = store_rec_get(st, txn, st->webauthn, &key, &val,
                       "cannot read credential", err);
    if (rc == STORE_NOTFOUND) {
        store_seterr(err, "no such credential");
    }

    if (rc != 0) {
        return rc;
    }

    return store_wa_decode(&key, &val, c, err);
}


static int
store_wa_put(store_t *st, MDB_txn *txn, const store_webauthn_t *c,
    unsigned flags, store_err_t *err)
{
    uint8_t  buf[STORE_REC_MAX];
    MDB_val  key, val;
    size_t   n;
    int      rc;

    n = store_wa_encode(c, buf, sizeof(buf));
    if (n == 0) {
        store_seterr(err, "credential record too large");
        return -1;
    }

    key.mv_data = (void *) (uintptr_t) c->id;
    key.mv_size = c->id_len;
    val.mv_data = buf;
    val.mv_size = n;

    rc = store_put(st, txn, st->webauthn, &key, &val, flags);
    if (rc == MDB_KEYEXIST) {
        store_seterr(err, "credential already registered");
        return -1;
    }

    if (rc != MDB_SUCCESS) {
        store_mdb_err(st, err, rc, "cannot write credential");
        return -1;
    }

    return 0;
}


int
store_webauthn_code_add(store_t *st, const char *user,
    const uint8_t hash[STORE_WA_TOKEN_LEN], int64_t expires_at,
    const char *actor, store_err_t *err)
{
    store_user_t   u;
    store_wr_t     w;
    MDB_txn       *txn;
    MDB_val        key, val;
    uint8_t        buf[256];
    char           detail[64];
    int64_t        now;
    int            rc;

    if (store_writable(st, err) != 0 || !store_wa_ready(st, err)) {
        return -1;
    }

    now = (int64_t) time(NULL);

    if (store_wbegin(st, &txn, err) != 0) {
        return -1;
    }

    rc = store_user_read(st, txn, user, &u, err);
    if (rc != 0) {
        store_abort(st, txn);
        return rc;
    }

    w.p = buf;
    w.end = buf + sizeof(buf);
    w.overflow = 0;
    store_put_u8(&w, STORE_WA_CODE_REC_V1);
    store_put_u64(&w, (uint64_t) expires_at);
    store_put_u64(&w, (uint64_t) now);
    store_put_str(&w, u.name);
    store_put_str(&w, actor != NULL ? actor : "");

    if (w.overflow) {
        store_seterr(err, "enrollment record too large");
        goto failed;
    }

    key.mv_data = (void *) (uintptr_t) hash;
    key.mv_size = STORE_WA_TOKEN_LEN;
    val.mv_data = buf;
    val.mv_size = (size_t) (w.p - buf);

    rc = store_put(st, txn, st->wa_codes, &key, &val, 0);
    if (rc != MDB_SUCCESS) {
        store_mdb_err(st, err, rc, "cannot write enrollment code");
        goto failed;
    }

    snprintf(detail, sizeof(detail), "valid for %lld s",
             (long long) (expires_at - now));

    return store_audit_commit(st, txn, actor, "webauthn.enroll_code",
                              u.name, detail, now,
                              "cannot write enrollment code", err);

failed:

    store_abort(st, txn);

    return -1;
}


/* Read the code record under hash in txn: 0, STORE_NOTFOUND or -1. */
static int
store_wa_code_read(store_t *st, MDB_txn *txn,
    const uint8_t hash[STORE_WA_TOKEN_LEN], int64_t now, char *user,
    size_t size, store_err_t *err)
{
    MDB_val     key, val;
    store_rd_t  r;
    uint8_t     version;
    uint64_t    expires, created;
    char        name[STORE_NAME_MAX];
    int         rc;

    key.mv_data = (void *) (uintptr_t) hash;
    key.mv_size = STORE_WA_TOKEN_LEN;

    rc = store_rec_get(st, txn, st->wa_codes, &key, &val,
                       "cannot read enrollment code", err);
    if (rc != 0) {
        if (rc == STORE_NOTFOUND) {
            store_seterr(err, "no such enrollment code (or already used)");
        }
        return rc;
    }

    r.p = val.mv_data;
    r.end = r.p + val.mv_size;

    if (store_get_u8(&r, &version) != 0 || version != STORE_WA_CODE_REC_V1
        || store_get_u64(&r, &expires) != 0
        || store_get_u64(&r, &created) != 0
        || store_get_str(&r, name, sizeof(name)) != 0)
    {
        store_seterr(err, "corrupt enrollment code record");
        return -1;
    }

    if ((int64_t) expires <= now) {
        store_seterr(err, "enrollment code expired");
        return STORE_NOTFOUND;
    }

    if (strlen(name) >= size) {
        store_seterr(err, "user name too long");
        return -1;
    }

    memcpy(user, name, strlen(name) + 1);

    return 0;
}


int
store_webauthn_code_user(store_t *st, const uint8_t hash[STORE_WA_TOKEN_LEN],
    int64_t now, char *user, size_t size, store_err_t *err)
{
    MDB_txn  *txn;
    int       rc;

    if (!store_wa_ready(st, err)) {
        return -1;
    }

    if (store_txn_begin(st, MDB_RDONLY, &txn, err) != 0) {
        return -1;
    }

    rc = store_wa_code_read(st, txn, hash, now, user, size, err);
    store_abort(st, txn);

    return rc;
}


int
store_webauthn_add(store_t *st, const store_webauthn_t *c,
    const uint8_t hash[STORE_WA_TOKEN_LEN], const char *actor,
    store_err_t *err)
{
    store_webauthn_t   rec;
    store_user_t       u;
    MDB_txn           *txn;
    MDB_val            key;
    char               who[STORE_NAME_MAX], subject[96], detail[128];
    int64_t            now;
    int                rc;

    if (store_writable(st, err) != 0 || !store_wa_ready(st, err)) {
        return -1;
    }

    if (c->id_len == 0 || c->id_len > STORE_WA_ID_MAX || c->cose_len == 0
        || c->cose_len > STORE_WA_COSE_MAX
        || !store_text_ok(c->name, sizeof(c->name), 1))
    {
        store_seterr(err, "invalid credential");
        return -1;
    }

    now = (int64_t) time(NULL);

    if (store_wbegin(st, &txn, err) != 0) {
        return -1;
    }

    rc = store_wa_code_read(st, txn, hash, now, who, sizeof(who), err);
    if (rc != 0) {
        store_abort(st, txn);
        return rc;
    }

    if (strcmp(who, c->user) != 0) {
        store_seterr(err, "enrollment code was issued for another user");
        store_abort(st, txn);
        return STORE_NOTFOUND;
    }

    rc = store_user_read(st, txn, c->user, &u, err);
    if (rc != 0) {
        store_abort(st, txn);
        return rc;
    }

    rec = *c;
    rec.created_at = c->created_at != 0 ? c->created_at : now;
    rec.suspended = 0;

    if (store_wa_put(st, txn, &rec, MDB_NOOVERWRITE, err) != 0) {
        goto failed;
    }

    /* the code is good for one registration */
    key.mv_data = (void *) (uintptr_t) hash;
    key.mv_size = STORE_WA_TOKEN_LEN;

    rc = store_del(st, txn, st->wa_codes, &key, NULL);
    if (rc != MDB_SUCCESS) {
        store_mdb_err(st, err, rc, "cannot consume enrollment code");
        goto failed;
    }

    store_wa_subject(&rec, subject, sizeof(subject));
    snprintf(detail, sizeof(detail), "name \"%.64s\", alg %d", rec.name,
             (int) rec.alg);

    return store_audit_commit(st, txn, actor, "webauthn.register", subject,
                              detail, now, "cannot register credential",
                              err);

failed:

    store_abort(st, txn);

    return -1;
}


int
store_webauthn_get(store_t *st, const uint8_t *id, size_t len,
    store_webauthn_t *out, store_err_t *err)
{
    MDB_txn  *txn;
    int       rc;

    if (!store_wa_ready(st, err)) {
        return -1;
    }

    if (store_txn_begin(st, MDB_RDONLY, &txn, err) != 0) {
        return -1;
    }

    rc = store_wa_read(st, txn, id, len, out, err);
    store_abort(st, txn);

    return rc;
}


static int
store_wa_visit(const MDB_val *key, const MDB_val *val, void *arg,
    store_err_t *err)
{
    store_wa_walk_t   *w = arg;
    store_webauthn_t   c;

    if (store_wa_decode(key, val, &c, err) != 0) {
        return -1;
    }

    if (w->user != NULL && strcmp(w->user, c.user) != 0) {
        return 0;
    }

    return w->cb(&c, w->arg) != 0 ? 1 : 0;
}


int
store_webauthn_list(store_t *st, const char *user, store_webauthn_cb cb,
    void *arg, store_err_t *err)
{
    store_wa_walk_t  w;

    if (!st->has_webauthn) {
        return 0;
    }

    w.user = user;
    w.cb = cb;
    w.arg = arg;

    return store_read_walk(st, st->webauthn, "cannot list credentials",
                           store_wa_visit, &w, err);
}


int
store_webauthn_remove(store_t *st, const char *user, const uint8_t *id,
    size_t len, const char *actor, store_err_t *err)
{
    store_webauthn_t   c;
    MDB_txn           *txn;
    MDB_val            key;
    char               subject[96];
    int64_t            now;
    int                rc;

    if (store_writable(st, err) != 0 || !store_wa_ready(st, err)) {
        return -1;
    }

    now = (int64_t) time(NULL);

    if (store_wbegin(st, &txn, err) != 0) {
        return -1;
    }

    rc = store_wa_read(st, txn, id, len, &c, err);
    if (rc == 0 && strcmp(c.user, user) != 0) {
        store_seterr(err, "no such credential for %s", user);
        rc = STORE_NOTFOUND;
    }

    if (rc != 0) {
        store_abort(st, txn);
        return rc;
    }

    key.mv_data = c.id;
    key.mv_size = c.id_len;

    rc = store_del(st, txn, st->webauthn, &key, NULL);
    if (rc != MDB_SUCCESS) {
        store_mdb_err(st, err, rc, "cannot remove credential");
        store_abort(st, txn);
        return -1;
    }

    store_wa_subject(&c, subject, sizeof(subject));

    return store_audit_commit(st, txn, actor, "webauthn.remove", subject,
                              c.name, now, "cannot remove credential", err);
}


int
store_webauthn_suspend(store_t *st, const uint8_t *id, size_t len,
    uint32_t seen, const char *source, store_err_t *err)
{
    store_webauthn_t   c;
    MDB_txn           *txn;
    char               subject[96], detail[160], src[64];
    int64_t            now;
    int                rc;

    if (store_writable(st, err) != 0 || !store_wa_ready(st, err)) {
        return -1;
    }

    store_clean(src, sizeof(src), source);
    now = (int64_t) time(NULL);

    if (store_wbegin(st, &txn, err) != 0) {
        return -1;
    }

    rc = store_wa_read(st, txn, id, len, &c, err);
    if (rc != 0) {
        store_abort(st, txn);
        return rc;
    }

    c.suspended = 1;

    if (store_wa_put(st, txn, &c, 0, err) != 0) {
        store_abort(st, txn);
        return -1;
    }

    store_wa_subject(&c, subject, sizeof(subject));
    snprintf(detail, sizeof(detail), "sign count %u after %u from %s: "
             "possible cloned authenticator; credential suspended", seen,
             c.sign_count, src[0] != '\0' ? src : "-");

    return store_audit_commit(st, txn, STORE_LOGIN_ACTOR,
                              "webauthn.counter_regression", subject, detail,
                              now, "cannot suspend credential", err);
}


int
store_webauthn_used(store_t *st, const uint8_t *id, size_t len,
    uint32_t count, int64_t now, const char *source, store_err_t *err)
{
    store_webauthn_t   c;
    MDB_txn           *txn;
    char               subject[96], detail[128], src[64];
    int                rc;

    if (store_writable(st, err) != 0 || !store_wa_ready(st, err)) {
        return -1;
    }

    store_clean(src, sizeof(src), source);

    if (store_wbegin(st, &txn, err) != 0) {
        return -1;
    }

    rc = store_wa_read(st, txn, id, len, &c, err);
    if (rc != 0) {
        store_abort(st, txn);
        return rc;
    }

    if (c.suspended) {
        store_seterr(err, "credential is suspended");
        store_abort(st, txn);
        return STORE_REPLAY;
    }

    if ((count != 0 || c.sign_count != 0) && count <= c.sign_count) {
        store_seterr(err, "sign count %u not greater than %u", count,
                     c.sign_count);
        store_abort(st, txn);
        return STORE_REPLAY;
    }

    c.sign_count = count;
    c.last_used = now;

    if (store_wa_put(st, txn, &c, 0, err) != 0) {
        store_abort(st, txn);
        return -1;
    }

    store_wa_subject(&c, subject, sizeof(subject));
    snprintf(detail, sizeof(detail), "sign count %u from %s", count,
             src[0] != '\0' ? src : "-");

    return store_audit_commit(st, txn, STORE_LOGIN_ACTOR, "webauthn.use",
                              subject, detail, now,
                              "cannot record credential use", err);
}


/* ---- cluster mode: following the change log (store.h) ---- */

static const char  *store_repl_dbs[] = {
    "devices", "users", "sessions", "posture", "history", "blocklist",
    "webauthn", "wa_codes"
};

#define STORE_NREPL_DBS  (sizeof(store_repl_dbs) / sizeof(store_repl_dbs[0]))


static int
store_cluster_ready(store_t *st, store_err_t *err)
{
    int  ok;

    if (store_writable(st, err) != 0) {
        return -1;
    }

    (void) store_db_dbi(st, "devices", &ok);
    if (!ok) {
        store_seterr(err, "cluster mode needs a store of schema %u",
                     STORE_SCHEMA_VERSION);
        return -1;
    }

    return 0;
}


/*
 * The cluster meta of one read view: id (may be NULL), position and tag
 * (may be NULL).  0, STORE_NOTFOUND (not joined) or -1.
 */
static int
store_cluster_read(store_t *st, char *id, uint64_t *pos, uint64_t *tag,
    store_err_t *err)
{
    MDB_txn  *txn;
    MDB_val   key, val;
    int       rc;

    if (store_txn_begin(st, MDB_RDONLY, &txn, err) != 0) {
        return -1;
    }

    key.mv_data = (void *) STORE_CLUSTER_ID_KEY;
    key.mv_size = sizeof(STORE_CLUSTER_ID_KEY) - 1;

    rc = mdb_get(txn, st->meta, &key, &val);
    if (rc == MDB_SUCCESS && id != NULL) {
        if (val.mv_size == 0 || val.mv_size >= STORE_CLUSTER_ID_LEN) {
            mdb_txn_abort(txn);
            store_seterr(err, "the store's cluster id is invalid");
            return -1;
        }

        memcpy(id, val.mv_data, val.mv_size);
        id[val.mv_size] = '\0';
    }
    if (rc == MDB_SUCCESS) {
        rc = store_meta_u64(st, txn, STORE_CLUSTER_POS_KEY, pos);
    }
    if (rc == MDB_SUCCESS && tag != NULL) {
        rc = store_meta_u64(st, txn, STORE_CLUSTER_TAG_KEY, tag);
    }

    mdb_txn_abort(txn);

    if (rc == MDB_NOTFOUND) {
        if (id != NULL) {
            id[0] = '\0';
        }
        *pos = 0;
        return STORE_NOTFOUND;
    }

    if (rc != MDB_SUCCESS) {
        store_mdb_err(st, err, rc, "cannot read the cluster state");
        return -1;
    }

    return 0;
}


int
store_cluster_state(store_t *st, char id[STORE_CLUSTER_ID_LEN],
    uint64_t *pos, store_err_t *err)
{
    return store_cluster_read(st, id, pos, NULL, err);
}


int
store_cluster_join(store_t *st, const char *id, uint64_t pos,
    store_err_t *err)
{
    MDB_txn  *txn;
    MDB_val   key;
    int       rc;

    if (store_cluster_ready(st, err) != 0) {
        return -1;
    }

    if (id != NULL && (strlen(id) == 0 || strlen(id) >= STORE_CLUSTER_ID_LEN))
    {
        store_seterr(err, "invalid cluster id");
        return -1;
    }

    if (store_txn_begin(st, 0, &txn, err) != 0) {
        return -1;
    }

    if (id == NULL) {
        /* leave: a single-node store again */
        key.mv_data = (void *) STORE_CLUSTER_ID_KEY;
        key.mv_size = sizeof(STORE_CLUSTER_ID_KEY) - 1;
        rc = mdb_del(txn, st->meta, &key, NULL);
        if (rc == MDB_SUCCESS || rc == MDB_NOTFOUND) {
            key.mv_data = (void *) STORE_CLUSTER_POS_KEY;
            key.mv_size = sizeof(STORE_CLUSTER_POS_KEY) - 1;
            rc = mdb_del(txn, st->meta, &key, NULL);
            rc = rc == MDB_NOTFOUND ? MDB_SUCCESS : rc;
        }

    } else {
        rc = store_meta_put(st, txn, STORE_CLUSTER_ID_KEY, id, strlen(id));
        if (rc == MDB_SUCCESS) {
            rc = store_pos_put(st, txn, pos, 0);
        }
    }

    if (rc != MDB_SUCCESS) {
        mdb_txn_abort(txn);
        store_mdb_err(st, err, rc, "cannot record the cluster state");
        return -1;
    }

    rc = mdb_txn_commit(txn);
    if (rc != MDB_SUCCESS) {
        store_mdb_err(st, err, rc, "cannot record the cluster state");
        return -1;
    }

    return 0;
}


int
store_cluster_tag(store_t *st, uint64_t *pos, uint64_t *tag,
    store_err_t *err)
{
    return store_cluster_read(st, NULL, pos, tag, err);
}


int
store_cluster_set_tag(store_t *st, uint64_t pos, uint64_t tag,
    store_err_t *err)
{
    MDB_txn   *txn;
    uint64_t   cur;
    int        rc;

    if (store_txn_begin(st, 0, &txn, err) != 0) {
        return -1;
    }

    rc = store_meta_u64(st, txn, STORE_CLUSTER_POS_KEY, &cur);
    if (rc == MDB_SUCCESS && cur != pos) {
        mdb_txn_abort(txn);
        return 0;
    }

    if (rc == MDB_SUCCESS) {
        rc = store_pos_put(st, txn, pos, tag);
    }

    if (rc != MDB_SUCCESS) {
        mdb_txn_abort(txn);
        store_mdb_err(st, err, rc, "cannot record the cluster position");
        return -1;
    }

    rc = mdb_txn_commit(txn);
    if (rc != MDB_SUCCESS) {
        store_mdb_err(st, err, rc, "cannot record the cluster position");
        return -1;
    }

    return 0;
}


int
store_apply(store_t *st, const store_change_t *chg, size_t n,
    unsigned *touched, store_err_t *err)
{
    store_applying_t  a;
    size_t            i;
    int               rc;

    if (touched != NULL) {
        *touched = 0;
    }

    if (store_cluster_ready(st, err) != 0) {
        return -1;
    }

    a.st = st;
    a.touched = 0;

    if (store_txn_begin(st, 0, &a.txn, err) != 0) {
        return -1;
    }

    rc = store_meta_u64(st, a.txn, STORE_CLUSTER_POS_KEY, &a.pos);
    if (rc != MDB_SUCCESS) {
        mdb_txn_abort(a.txn);
        store_mdb_err(st, err, rc, "cannot read the cluster position");
        return -1;
    }

    for (i = 0; i < n; i++) {
        rc = store_apply_one(&a, &chg[i], err);
        if (rc != 0) {
            mdb_txn_abort(a.txn);
            return rc;
        }
    }

    rc = mdb_txn_commit(a.txn);
    if (rc != MDB_SUCCESS) {
        store_mdb_err(st, err, rc, "cannot apply cluster changes");
        return -1;
    }

    if (touched != NULL) {
        *touched = a.touched;
    }

    return 0;
}


int
store_bootstrap(store_t *st, const char *id, uint64_t pos,
    int (*next)(void *arg, store_op_t *op, store_err_t *err), void *arg,
    store_err_t *err)
{
    store_op_t  op;
    MDB_txn    *txn;
    MDB_val     key, val;
    MDB_dbi     dbi;
    size_t      i;
    int         rc, ok;

    if (store_cluster_ready(st, err) != 0) {
        return -1;
    }

    if (strlen(id) == 0 || strlen(id) >= STORE_CLUSTER_ID_LEN) {
        store_seterr(err, "invalid cluster id");
        return -1;
    }

    if (store_txn_begin(st, 0, &txn, err) != 0) {
        return -1;
    }

    for (i = 0; i < STORE_NREPL_DBS; i++) {
        dbi = store_db_dbi(st, store_repl_dbs[i], &ok);
        rc = mdb_drop(txn, dbi, 0);
        if (rc != MDB_SUCCESS) {
            store_mdb_err(st, err, rc, "cannot empty the store");
            goto failed;
        }
    }

    for ( ;; ) {
        rc = next(arg, &op, err);
        if (rc == 0) {
            break;
        }

        if (rc < 0) {
            goto failed;
        }

        dbi = store_db_dbi(st, op.db, &ok);
        if (!ok || op.val == NULL || op.klen == 0 || op.klen > 511) {
            store_seterr(err, "the cluster database has an invalid row");
            goto failed;
        }

        key.mv_data = (void *) (uintptr_t) op.key;
        key.mv_size = op.klen;
        val.mv_data = (void *) (uintptr_t) op.val;
        val.mv_size = op.vlen;

        rc = mdb_put(txn, dbi, &key, &val, 0);
        if (rc != MDB_SUCCESS) {
            store_mdb_err(st, err, rc, "cannot load the cluster's state");
            goto failed;
        }
    }

    rc = store_meta_put(st, txn, STORE_CLUSTER_ID_KEY, id, strlen(id));
    if (rc == MDB_SUCCESS) {
        rc = store_pos_put(st, txn, pos, 0);
    }

    if (rc != MDB_SUCCESS) {
        store_mdb_err(st, err, rc, "cannot record the cluster state");
        goto failed;
    }

    if (store_devices_bump(st, txn, err) != 0) {
        goto failed;
    }

    rc = mdb_txn_commit(txn);
    if (rc != MDB_SUCCESS) {
        store_mdb_err(st, err, rc, "cannot load the cluster's state");
        return -1;
    }

    return 0;

failed:

    mdb_txn_abort(txn);

    return -1;
}


int
store_export(store_t *st,
    int (*cb)(void *arg, const store_op_t *op, store_err_t *err), void *arg,
    store_err_t *err)
{
    store_op_t   op;
    MDB_cursor  *cur;
    MDB_txn     *txn;
    MDB_val      key, val;
    MDB_dbi      dbi;
    size_t       i;
    int          rc, ok;

    (void) store_db_dbi(st, "devices", &ok);
    if (!ok) {
        store_seterr(err, "cluster mode needs a store of schema %u",
                     STORE_SCHEMA_VERSION);
        return -1;
    }

    if (store_txn_begin(st, MDB_RDONLY, &txn, err) != 0) {
        return -1;
    }

    for (i = 0; i < STORE_NREPL_DBS; i++) {
        dbi = store_db_dbi(st, store_repl_dbs[i], &ok);

        rc = mdb_cursor_open(txn, dbi, &cur);
        if (rc != MDB_SUCCESS) {
            store_mdb_err(st, err, rc, "cannot read the store");
            goto failed;
        }

        for (rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST);
             rc == MDB_SUCCESS;
             rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT))
        {
            op.db = store_repl_dbs[i];
            op.key = key.mv_data;
            op.klen = key.mv_size;
            op.val = val.mv_data;
            op.vlen = val.mv_size;

            if (cb(arg, &op, err) != 0) {
                mdb_cursor_close(cur);
                goto failed;
            }
        }

        mdb_cursor_close(cur);

        if (rc != MDB_NOTFOUND) {
            store_mdb_err(st, err, rc, "cannot read the store");
            goto failed;
        }
    }

    mdb_txn_abort(txn);

    return 0;

failed:

    mdb_txn_abort(txn);

    return -1;
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
    } else if (strcmp(db, "users") == 0 && st->identity) {
        dbi = st->users;
    } else if (strcmp(db, "sessions") == 0 && st->identity) {
        dbi = st->sessions;
    } else if (strcmp(db, "posture") == 0 && st->has_posture) {
        dbi = st->posture;
    } else if (strcmp(db, "history") == 0 && st->has_trust) {
        dbi = st->history;
    } else if (strcmp(db, "blocklist") == 0 && st->has_trust) {
        dbi = st->blocklist;
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

    rc = val != NULL ? mdb_put(txn, dbi, &k, &v, 0)
                     : mdb_del(txn, dbi, &k, NULL);
    if (rc == MDB_SUCCESS && dbi == st->devices
        && store_devices_bump(st, txn, err) != 0)
    {
        store_abort(st, txn);
        return -1;
    }
    if (rc != MDB_SUCCESS) {
        store_abort(st, txn);
        store_mdb_err(st, err, rc, "test put");
        return -1;
    }

    rc = store_commit(st, txn);
    if (rc != MDB_SUCCESS) {
        store_mdb_err(st, err, rc, "test put");
        return -1;
    }

    return 0;
}

int
store_test_audit_rewrite(store_t *st, const store_audit_t *rec,
    store_err_t *err)
{
    uint8_t   kbuf[8], vbuf[STORE_AUDIT_REC_MAX];
    size_t    len;

    len = store_audit_encode(rec, vbuf, sizeof(vbuf));
    if (len == 0) {
        store_seterr(err, "audit record too large");
        return -1;
    }

    store_be64(kbuf, rec->seq);

    return store_test_put_raw(st, "audit", kbuf, sizeof(kbuf), vbuf, len,
                              err);
}


int
store_test_make_v1(store_t *st, store_err_t *err)
{
    MDB_txn  *txn;
    int       rc;

    if (!st->identity) {
        store_seterr(err, "not a schema 2 store");
        return -1;
    }

    if (store_txn_begin(st, 0, &txn, err) != 0) {
        return -1;
    }

    rc = mdb_drop(txn, st->users, 1);
    if (rc == MDB_SUCCESS) {
        rc = mdb_drop(txn, st->sessions, 1);
    }
    if (rc == MDB_SUCCESS && st->has_posture) {
        rc = mdb_drop(txn, st->posture, 1);
    }

    if (rc != MDB_SUCCESS) {
        store_abort(st, txn);
        store_mdb_err(st, err, rc, "test make v1");
        return -1;
    }

    st->identity = 0;
    st->has_posture = 0;

    if (store_schema_write(st, txn, 1, err) != 0) {
        store_abort(st, txn);
        return -1;
    }

    rc = store_commit(st, txn);
    if (rc != MDB_SUCCESS) {
        store_mdb_err(st, err, rc, "test make v1");
        return -1;
    }

    return 0;
}

int
store_test_make_v2(store_t *st, store_err_t *err)
{
    MDB_txn  *txn;
    int       rc;

    if (!st->has_posture) {
        store_seterr(err, "not a schema 3 store");
        return -1;
    }

    if (store_txn_begin(st, 0, &txn, err) != 0) {
        return -1;
    }

    rc = mdb_drop(txn, st->posture, 1);
    if (rc != MDB_SUCCESS) {
        store_abort(st, txn);
        store_mdb_err(st, err, rc, "test make v2");
        return -1;
    }

    st->has_posture = 0;

    if (store_schema_write(st, txn, 2, err) != 0) {
        store_abort(st, txn);
        return -1;
    }

    rc = store_commit(st, txn);
    if (rc != MDB_SUCCESS) {
        store_mdb_err(st, err, rc, "test make v2");
        return -1;
    }

    return 0;
}

#endif /* STORE_TESTING */
