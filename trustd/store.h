/*
 * trustd state store: every piece of persistent state (devices, users,
 * sessions, audit, schema metadata; later blocklists) goes through this
 * interface.  The implementation is LMDB; store.c is the only file that
 * includes lmdb.h, and LMDB error codes never leave it.
 *
 * Results: 0 on success, -1 on failure with a message in *err, and
 * STORE_NOTFOUND for a lookup that found nothing (not an error).
 *
 * Every change is one write transaction that also appends its audit
 * record, so a crash leaves either both or neither.
 *
 * Concurrency: several processes may open the same store (trustd reads,
 * ztctl writes).  Within one process a store_t may be used by one thread
 * at a time; read views are not shared between threads at the same time.
 */

#ifndef ZT_STORE_H
#define ZT_STORE_H

#include <stddef.h>
#include <stdint.h>

#define STORE_NOTFOUND          1

#define STORE_RDONLY            0x01    /* store_open(): no writes */
#define STORE_NOSYNC            0x02    /* store_open(): no fsync per commit;
                                           bulk-loading tools only: a crash
                                           may lose the last commits */

#define STORE_SCHEMA_VERSION    6       /* 2: users, sessions; 3: posture;
                                           4: history, blocklist;
                                           5: hash-chained journal;
                                           6: WebAuthn credentials */
#define STORE_FP_LEN            32
#define STORE_DEVICE_URN        "urn:ztgate:device:"
#define STORE_DEFAULT_MAP_SIZE  ((size_t) 256 * 1024 * 1024)

typedef struct {
    char    msg[256];
} store_err_t;

typedef struct store_s       store_t;
typedef struct store_view_s  store_view_t;

typedef enum {
    STORE_DEVICE_ACTIVE = 1,
    STORE_DEVICE_QUARANTINED = 2,
    STORE_DEVICE_REVOKED = 3
} store_device_status_t;

typedef struct {
    uint8_t                 fp[STORE_FP_LEN];   /* SHA-256 of cert DER */
    char                    id[128];        /* urn:ztgate:device:<uuid> */
    char                    owner[64];
    char                    name[128];
    char                    platform[64];
    char                    enrolled_by[64];
    int64_t                 enrolled_at;    /* unix seconds */
    int64_t                 expires_at;     /* 0: never */
    int64_t                 updated_at;
    store_device_status_t   status;
} store_device_t;

/*
 * The audit journal (docs/journal.md).  Two kinds of record share one
 * sequence: staff and system actions ("device.revoke"), appended in the
 * write transaction of the change they describe, and decisions, which
 * trustd queues and appends in batches (store_journal_append()).  Every
 * record carries the SHA-256 of its canonical JSON form, which includes
 * the previous record's hash (journal_fmt.h): removing or altering a
 * record breaks the chain, and store_journal_verify() finds where.
 */
#define STORE_AUDIT_ACTION      0
#define STORE_AUDIT_DECISION    1
#define STORE_HASH_LEN          32
#define STORE_DECISION_SIGNALS  16      /* >= SCORE_NSIGNALS */

typedef struct {
    uint8_t     outcome;                /* enum wire_decision */
    uint16_t    status;                 /* HTTP status (deny) or 0 */
    uint32_t    ttl_ms;                 /* cache lifetime granted */
    uint32_t    count;                  /* identical decisions folded (>=1) */
    int16_t     score;                  /* 0..100, -1: no score */
    uint8_t     nsignals;               /* signals recorded (0 if none) */
    uint8_t     value[STORE_DECISION_SIGNALS];          /* percent */
    int16_t     points[STORE_DECISION_SIGNALS];         /* tenths, signed */
    char        method[16];
    char        host[128];
    char        path[256];              /* no query string */
    char        source[48];             /* client address */
    char        user[64];               /* "" when nobody signed in */
    char        session[16];            /* audit form of the session id */
    char        device[128];            /* device id (urn) or "" */
    char        device_fp[2 * STORE_FP_LEN + 1];     /* "" without cert */
    char        app[64];
    char        rule[64];               /* "" for a built-in rule */
    char        where[96];              /* policy file:line or "" */
    char        reason[128];
    char        policy[48];             /* policy version, "" built-in */
} store_decision_t;

typedef struct {
    uint64_t    seq;
    int64_t     time;                       /* unix seconds */
    int64_t     time_ms;                    /* unix milliseconds */
    int         kind;                       /* STORE_AUDIT_* */
    char        actor[64];
    char        action[32];                 /* e.g. "device.revoke" */
    char        subject[160];               /* e.g. a device id */
    char        detail[256];
    store_decision_t  d;                    /* kind DECISION only */
    uint8_t     prev[STORE_HASH_LEN];       /* the previous record's hash */
    uint8_t     hash[STORE_HASH_LEN];       /* this record's */
} store_audit_t;

/*
 * Callbacks for the list functions.  Return 0 to continue, non-zero to
 * stop the iteration (the list function then returns 0).  The record is
 * only valid during the call.  A callback must not call a store write
 * function.
 */
typedef int (*store_device_cb)(const store_device_t *dev, void *arg);
typedef int (*store_audit_cb)(const store_audit_t *rec, void *arg);


/*
 * Open (and with write access, create) the store in directory path.  The
 * directory is created with mode 0700 if missing.  map_size is the
 * largest size the store may reach (0: STORE_DEFAULT_MAP_SIZE); an
 * existing store whose recorded size is larger keeps it (the map never
 * shrinks because one opener asks for less).  flags:
 * STORE_RDONLY opens an existing store without write access.  Writes the
 * schema version on a new store and refuses a store written by a newer
 * schema.  Clears reader slots left by dead processes.  On success *st is
 * owned by the caller and released with store_close().  Never carry an
 * open store across fork().
 */
int store_open(store_t **st, const char *path, size_t map_size,
    unsigned flags, store_err_t *err);

/* Close the store.  All views must have been freed.  st may be NULL. */
void store_close(store_t *st);

/*
 * Periodic housekeeping: clears reader slots of dead processes.  *cleared
 * (may be NULL) receives how many were cleared.
 */
int store_maintain(store_t *st, int *cleared, store_err_t *err);

/*
 * A consistent copy of the whole store, made while others (trustd) go on
 * reading and writing: one read transaction's snapshot, compacted, into
 * dir/data.mdb.  dir must exist and hold no data.mdb (nothing is
 * overwritten); the copy is written to a temporary name, synced and then
 * renamed, so a data.mdb in dir is always whole.  0 or -1.
 */
int store_backup(store_t *st, const char *dir, store_err_t *err);

/* The map size in bytes the store is currently using. */
size_t store_map_size(const store_t *st);

/*
 * Begin a read view: a consistent snapshot for a few lookups.  With *v
 * NULL a view is allocated (owned by the caller, released with
 * store_view_free()); a view passed back in is reused without allocation.
 * Keep views short: end each one with store_view_end() as soon as the
 * lookups are done, or the store cannot reuse freed pages.
 */
int store_view_begin(store_t *st, store_view_t **v, store_err_t *err);

/* End a view begun by store_view_begin(); it stays allocated for reuse. */
void store_view_end(store_view_t *v);

/* Release a view (ended or not).  v may be NULL. */
void store_view_free(store_view_t *v);

/*
 * Look up the device with fingerprint fp in an active view.  Returns 0
 * and copies the record to *out, STORE_NOTFOUND, or -1 (including a
 * record that fails to decode).
 */
int store_device_get(store_view_t *v, const uint8_t fp[STORE_FP_LEN],
    store_device_t *out, store_err_t *err);

/*
 * Enroll a device.  dev->fp, id (must start with STORE_DEVICE_URN), owner
 * and status are required; name and platform may be empty.  enrolled_at
 * 0 means now; updated_at is set to now and enrolled_by to actor.
 * Refuses a fingerprint that is already enrolled and a device id that a
 * device not revoked already uses.  Appends a "device.enroll" audit
 * record in the same transaction.
 */
int store_device_enroll(store_t *st, const store_device_t *dev,
    const char *actor, store_err_t *err);

/*
 * Enroll n devices in ONE write transaction with one audit record
 * ("device.import"), for bulk enrollment from an inventory.  The same
 * rules as store_device_enroll() hold (a fingerprint only once; a device
 * id not enrolled for another owner), checked against the store and
 * within the batch in O(n) time: the existing ids are read once.  On any
 * refusal nothing is enrolled and *bad (if not NULL) is the index of the
 * offending device.
 */
int store_device_enroll_batch(store_t *st, const store_device_t *devs,
    size_t n, const char *actor, size_t *bad, store_err_t *err);

/*
 * Set the status of the device with fingerprint fp; reason (may be NULL)
 * goes into the audit record ("device.activate", "device.quarantine" or
 * "device.revoke"), written in the same transaction.  Returns 0,
 * STORE_NOTFOUND or -1.
 */
int store_device_set_status(store_t *st, const uint8_t fp[STORE_FP_LEN],
    store_device_status_t status, const char *actor, const char *reason,
    store_err_t *err);

/*
 * Find a device by its id (the urn).  When several certificates carry the
 * same id, a device that is not revoked is preferred, then the most
 * recently updated.  Returns 0, STORE_NOTFOUND or -1.
 */
int store_device_find_id(store_t *st, const char *id, store_device_t *out,
    store_err_t *err);

/*
 * A cache of device records for one thread's decisions (not shared):
 * store_device_get_cached() answers from it while the store's devices
 * generation (bumped in every transaction that changes a device) is the
 * one the cache was filled under, as seen in the caller's view; any
 * change to any device empties it.  It holds the records' stored bytes
 * (about 130 bytes each, plus 48 for the index) and at most max_entries
 * devices, enrolled or not; 0 turns it off.  NULL when out of memory.
 */
typedef struct store_devcache_s store_devcache_t;

store_devcache_t *store_devcache_new(size_t max_entries);
void store_devcache_free(store_devcache_t *c);

/* store_device_get(), through the cache c (NULL: no cache). */
int store_device_get_cached(store_view_t *v, store_devcache_t *c,
    const uint8_t fp[STORE_FP_LEN], store_device_t *out, store_err_t *err);

/*
 * Start fetching fp's place in the cache into the CPU cache, so that the
 * lookup a little later (after the view is opened) finds it there.
 */
void store_devcache_prefetch(const store_devcache_t *c,
    const uint8_t fp[STORE_FP_LEN]);

/* Lookups answered from the cache, from the store, and entries held. */
void store_devcache_stats(const store_devcache_t *c, uint64_t *hits,
    uint64_t *misses, size_t *entries);

/* Call cb for every device in fingerprint order.  Returns 0 or -1. */
int store_device_list(store_t *st, store_device_cb cb, void *arg,
    store_err_t *err);

/*
 * Call cb for audit records with seq >= from_seq in order, at most max of
 * them (0: no limit).  Returns 0 or -1.
 */
int store_audit_list(store_t *st, uint64_t from_seq, size_t max,
    store_audit_cb cb, void *arg, store_err_t *err);

/* The sequence number of the last audit record (0: none).  0 or -1. */
int store_audit_last_seq(store_t *st, uint64_t *seq, store_err_t *err);

/* The record with sequence number seq.  0, STORE_NOTFOUND or -1. */
int store_audit_get(store_t *st, uint64_t seq, store_audit_t *rec,
    store_err_t *err);

/*
 * Append n decision records (kind STORE_AUDIT_DECISION, time_ms set) in
 * ONE write transaction: each gets the next sequence number and its link
 * in the hash chain.  On failure nothing is appended and the caller keeps
 * the records to try again.  0 or -1.
 */
int store_journal_append(store_t *st, const store_audit_t *recs, size_t n,
    store_err_t *err);

/*
 * Retention: remove at most max records (oldest first) whose time is
 * before before_ms, in one write transaction that also moves the chain's
 * anchor (the last removed record's sequence number and hash, kept in
 * meta) and appends a "journal.purge" action saying how many records went.
 * *purged says how many were removed.  0 or -1.
 */
int store_journal_purge(store_t *st, int64_t before_ms, size_t max,
    size_t *purged, store_err_t *err);

typedef struct {
    uint64_t    anchor_seq;             /* records up to here were purged */
    uint8_t     anchor[STORE_HASH_LEN]; /* the last purged record's hash */
    uint64_t    first;                  /* first record checked, 0: none */
    uint64_t    last;                   /* last record checked */
    uint64_t    checked;                /* how many */
    uint8_t     head[STORE_HASH_LEN];   /* the last record's hash */
    uint64_t    bad_seq;                /* where the chain broke, 0: intact */
    char        problem[256];           /* what is wrong there */
} store_journal_check_t;

/*
 * Walk the whole journal in one read view and check every link: numbers
 * without gaps from the anchor on, each record's prev equal to the hash
 * before it, and each hash equal to the hash of the record's canonical
 * form.  Returns 0 with the chain intact, 1 with out->bad_seq and
 * out->problem saying where and how it broke, or -1 (cannot read).
 */
int store_journal_verify(store_t *st, store_journal_check_t *out,
    store_err_t *err);

/* "active", "quarantined", "revoked" or "invalid". */
const char *store_device_status_name(store_device_status_t status);

/* Parse a status name; returns 0 and sets *status, or -1. */
int store_device_status_parse(const char *name,
    store_device_status_t *status);

/* Write 2 * STORE_FP_LEN lowercase hex digits and a NUL to hex. */
void store_fp_hex(const uint8_t fp[STORE_FP_LEN],
    char hex[2 * STORE_FP_LEN + 1]);

/* ---- users (to be added to trustd/store.h) -------------------------- */

#define STORE_MAX_GROUPS    16
#define STORE_NAME_MAX      64      /* user and group names, with NUL */

typedef enum {
    STORE_TOTP_NONE = 0,            /* no authenticator enrolled */
    STORE_TOTP_PENDING,             /* enrolled, not yet proven by a code */
    STORE_TOTP_ACTIVE
} store_totp_state_t;

typedef struct {
    char                name[STORE_NAME_MAX];       /* [a-z0-9._-], 1..63 */
    char                display[128];
    char                groups[STORE_MAX_GROUPS][STORE_NAME_MAX];
    unsigned            ngroups;
    char                pwhash[160];                /* "" = no password */
    store_totp_state_t  totp_state;
    uint8_t             totp_sealed[160];           /* id_seal() output */
    size_t              totp_sealed_len;
    unsigned            totp_algo;                  /* id_totp_algo_t */
    unsigned            totp_digits;
    uint64_t            totp_last_counter;          /* replay refusal */
    unsigned            failures;                   /* consecutive */
    int64_t             last_failure;
    int64_t             locked_until;               /* 0 = not locked */
    int                 disabled;
    int64_t             created_at;
    int64_t             updated_at;
    char                created_by[64];
} store_user_t;

/* Read a user in a view (copied out).  0, STORE_NOTFOUND or -1. */
int store_user_get(store_view_t *v, const char *name, store_user_t *out,
    store_err_t *err);

/* Same, in its own short read transaction (tools, portal). */
int store_user_find(store_t *st, const char *name, store_user_t *out,
    store_err_t *err);

/* Create; refuses an existing name.  One write txn with its audit record. */
int store_user_create(store_t *st, const store_user_t *u, const char *actor,
    store_err_t *err);

/*
 * Replace the record of an existing user (groups, password, TOTP, disabled,
 * lockout lifted...) with *u; action and detail go to the audit record of
 * the same transaction ("user.groups", "user.password", "user.totp.reset",
 * "user.unlock", "user.disable" ...).  STORE_NOTFOUND if it vanished.
 */
int store_user_update(store_t *st, const store_user_t *u, const char *actor,
    const char *action, const char *detail, store_err_t *err);

/* Delete a user and revoke all their sessions, in one transaction. */
int store_user_delete(store_t *st, const char *name, const char *actor,
    store_err_t *err);

typedef int (*store_user_cb)(const store_user_t *u, void *arg);

/*
 * Transform one user's sealed TOTP secret (re-seal it under a new key):
 * write the new sealed bytes to out (size bytes) and *outlen; 0, or -1
 * with the reason in msg (which fails the whole re-seal).
 */
typedef int (*store_reseal_cb)(const char *user, const uint8_t *sealed,
    size_t len, uint8_t *out, size_t size, size_t *outlen, char *msg,
    size_t msglen, void *arg);

/*
 * Re-seal every user's TOTP secret with cb in ONE write transaction, with
 * one audit record "keys.reseal" (actor) saying how many: all of them
 * change, or none.  *count (may be NULL) says how many.  0 or -1.
 */
int store_user_reseal(store_t *st, store_reseal_cb cb, void *arg,
    const char *actor, unsigned *count, store_err_t *err);
int store_user_list(store_t *st, store_user_cb cb, void *arg,
    store_err_t *err);

/*
 * The outcome of a sign-in attempt, recorded atomically (one write txn that
 * re-reads the user): on failure, failures++ and, at `threshold`, locked
 * until now + lock_seconds; audit "login.failure" / "user.locked".  On
 * success with a TOTP counter, the counter must be greater than the stored
 * totp_last_counter (checked again INSIDE the transaction, so two
 * concurrent uses of one code cannot both pass; returns STORE_REPLAY = 2
 * then), it is stored, failures reset; audit "login.success".
 * counter 0 means "no TOTP in this attempt".
 */
#define STORE_REPLAY        2
int store_login_failed(store_t *st, const char *name, int64_t now,
    unsigned threshold, int64_t lock_seconds, const char *source,
    const char *why, store_err_t *err);
int store_login_succeeded(store_t *st, const char *name, uint64_t counter,
    int64_t now, const char *source, store_err_t *err);

/* ---- sessions ------------------------------------------------------- */

#define STORE_SID_LEN       32

typedef struct {
    char        sid[STORE_SID_LEN + 1];
    char        user[STORE_NAME_MAX];
    uint8_t     device_fp[STORE_FP_LEN];
    int         has_device;
    unsigned    methods;            /* POL_AUTH_* bits */
    int64_t     created_at;
    int64_t     mfa_at;             /* last second factor */
    int64_t     last_seen;          /* for the idle timeout */
    int64_t     expires_at;         /* absolute */
    char        source[64];         /* address it was created from */
    int         revoked;
    int64_t     revoked_at;
} store_session_t;

int store_session_create(store_t *st, const store_session_t *s,
    store_err_t *err);
/* In a view (hot path; copied out).  0, STORE_NOTFOUND or -1. */
int store_session_get(store_view_t *v, const char *sid, store_session_t *out,
    store_err_t *err);
int store_session_find(store_t *st, const char *sid, store_session_t *out,
    store_err_t *err);
/* New second factor now (step-up): mfa_at = now, methods |= methods. */
int store_session_mfa(store_t *st, const char *sid, unsigned methods,
    int64_t now, store_err_t *err);
/*
 * Mark last_seen = now for many sessions in ONE write transaction (trustd
 * batches idle-timeout updates instead of writing per request).
 */
int store_session_touch(store_t *st, const char *const *sids, size_t n,
    int64_t now, store_err_t *err);
int store_session_revoke(store_t *st, const char *sid, const char *actor,
    store_err_t *err);
/* Revoke every session of a user; *count how many. */
int store_session_revoke_user(store_t *st, const char *user,
    const char *actor, unsigned *count, store_err_t *err);
typedef int (*store_session_cb)(const store_session_t *s, void *arg);
int store_session_list(store_t *st, const char *user /* NULL = all */,
    store_session_cb cb, void *arg, store_err_t *err);
/* Delete sessions expired (or revoked) before `before`; *count removed. */
int store_session_purge(store_t *st, int64_t before, unsigned *count,
    store_err_t *err);

/*
 * Further details of the identity functions above:
 *
 * store_user_get(), store_user_find(): a name that is not a valid user
 * name is simply STORE_NOTFOUND.  A store of schema version 1 opened
 * read-only (not migrated yet) has no users or sessions: lookups are
 * STORE_NOTFOUND and lists are empty.
 *
 * store_user_create(): the name, display text, groups (valid, distinct,
 * at most STORE_MAX_GROUPS), password hash and TOTP fields are checked;
 * created_at and updated_at are set to now and created_by to actor.
 * Audit "user.create".
 *
 * store_user_update(): created_at and created_by are kept from the stored
 * record and updated_at is set to now.  While the sealed TOTP secret is
 * unchanged, totp_last_counter never goes down: an update built from an
 * older copy of the record cannot reopen a used code.
 *
 * store_user_delete(): audit "user.delete" with how many sessions were
 * revoked.  0, STORE_NOTFOUND or -1.
 *
 * store_user_list(), store_session_list(): cb is called in key order
 * (user name, session id) inside one read transaction; see the callback
 * rules above store_device_cb.  0 or -1.
 *
 * store_login_failed(): threshold 0 or lock_seconds <= 0 never locks.  A
 * user is locked when failures reach threshold while not locked; failures
 * go on counting during a lock without extending it, so after the lock
 * has passed the next failure locks again (only a success resets them).
 * For an unknown (or invalid) name, "login.failure" is still recorded and
 * STORE_NOTFOUND returned.  source and why are sanitized for the audit
 * log.  0, STORE_NOTFOUND or -1.
 *
 * store_login_succeeded(): on STORE_REPLAY nothing is written (the caller
 * records the failure with store_login_failed()).  A disabled user, or one
 * still locked at now, is refused with -1 inside the transaction, so a
 * disable or a lock that commits first always wins.  Returns 0,
 * STORE_REPLAY, STORE_NOTFOUND or -1.
 *
 * store_session_create(): sid must pass store_sid_ok(); the user must
 * exist and not be disabled (checked in the transaction); an existing sid
 * is refused; expires_at is required; created_at 0 means now, last_seen 0
 * means created_at; revoked is cleared.  Audit "session.create" (actor:
 * the user).  0 or -1.
 *
 * store_session_find(): store_session_get() in its own short read
 * transaction.  An invalid sid is STORE_NOTFOUND.
 *
 * store_session_mfa(): refuses a revoked session (-1).  Audit
 * "session.mfa".  0, STORE_NOTFOUND or -1.
 *
 * store_session_touch(): unknown, invalid and revoked sids are skipped;
 * last_seen never goes backwards.  Bookkeeping only: no audit record.
 * n == 0 writes nothing.  0 or -1.
 *
 * store_session_revoke(): revoking a revoked session changes nothing and
 * returns 0.  0, STORE_NOTFOUND or -1.
 *
 * store_session_revoke_user(): one audit record "session.revoke" for all
 * of them (none when there was nothing to revoke).  0 or -1.
 *
 * store_session_purge(): removes sessions with expires_at < before and
 * revoked ones with revoked_at < before; audit "session.purge" (actor
 * "system") when it removed any.  count may be NULL.  0 or -1.
 *
 * Audit records name a session by its first STORE_SID_AUDIT_LEN
 * characters only: a sid is half of what a forged token would need.
 */
#define STORE_SID_AUDIT_LEN 12


/*
 * Additions to the identity API above (same conventions).
 */

/*
 * 1 if name is a valid user name: [a-z0-9._-], 1..63 characters, starting
 * with a letter or a digit.  Group names may also hold '@'.
 */
int store_user_name_ok(const char *name);
int store_group_name_ok(const char *name);

/*
 * store_user_update() that also revokes every session of the user in the
 * same transaction (disabling a user, removing their authenticator);
 * *revoked (may be NULL) receives how many sessions it revoked.  The
 * audit record of the update says how many.  0, STORE_NOTFOUND or -1.
 */
int store_user_update_revoke(store_t *st, const store_user_t *u,
    const char *actor, const char *action, const char *detail,
    unsigned *revoked, store_err_t *err);

/* "none", "pending", "active" or "invalid". */
const char *store_totp_state_name(store_totp_state_t state);

/* 1 if sid is STORE_SID_LEN lowercase hex digits. */
int store_sid_ok(const char *sid);


/* ---- device posture (schema 3) --------------------------------------- */

/*
 * The last posture known for a device, kept apart from the device record
 * (keyed by the same certificate fingerprint) so that a report never
 * rewrites enrollment data.  A zeroed record means "nothing reported".
 */

#define STORE_POSTURE_TEXT_MAX  65      /* os, os_version: 64 bytes + NUL */
#define STORE_POSTURE_SOURCE_MAX 80     /* "agent", "staff:<actor>", ... */

typedef enum {
    STORE_FLAG_UNREPORTED = 0,
    STORE_FLAG_FALSE = 1,
    STORE_FLAG_TRUE = 2
} store_flag_t;

typedef struct {
    uint8_t         fp[STORE_FP_LEN];       /* the device */
    char            os[STORE_POSTURE_TEXT_MAX];         /* "debian" */
    char            os_version[STORE_POSTURE_TEXT_MAX]; /* "12.8" */
    int64_t         patch_time;     /* last OS update, unix; 0 = unknown */
    store_flag_t    disk_encrypted;
    store_flag_t    firewall;
    store_flag_t    screen_lock;
    store_flag_t    endpoint_protection;
    int64_t         reported_at;    /* the reporter's clock; 0 = unknown */
    int64_t         received_at;    /* trustd's (or ztctl's) clock */
    char            source[STORE_POSTURE_SOURCE_MAX];
} store_posture_t;

/*
 * 1 if s is acceptable posture text (os, os_version): at most
 * STORE_POSTURE_TEXT_MAX - 1 bytes of printable ASCII, possibly empty.
 */
int store_posture_text_ok(const char *s);

/*
 * Record p as the posture of the device with fingerprint fp (p->fp is
 * ignored).  The device must be enrolled and not revoked (checked in the
 * transaction).  p->source is required ("agent", "staff:<actor>",
 * "mdm:<actor>"); received_at 0 means now.  The previous posture is
 * replaced as a whole.  Appends a "device.posture" audit record in the
 * same transaction.  Returns 0, STORE_NOTFOUND (no such device) or -1
 * (also for a revoked device).
 */
int store_posture_put(store_t *st, const uint8_t fp[STORE_FP_LEN],
    const store_posture_t *p, const char *actor, store_err_t *err);

/*
 * The posture of the device fp in an active view (hot path: no
 * allocation), copied to *out.  Returns 0, STORE_NOTFOUND (never
 * reported, or a schema 2 store opened read-only) or -1.
 */
int store_posture_get(store_view_t *v, const uint8_t fp[STORE_FP_LEN],
    store_posture_t *out, store_err_t *err);

/* store_posture_get() in its own short read transaction (tools). */
int store_posture_find(store_t *st, const uint8_t fp[STORE_FP_LEN],
    store_posture_t *out, store_err_t *err);

/*
 * Record n postures (rows[i].fp names each device) in ONE write
 * transaction: either all of them are stored or none.  Every row is
 * checked as store_posture_put() would; the first bad row aborts the
 * whole import with "row N: ..." (N counted from 1) in *err.  One
 * "device.posture" audit record per row, in the same transaction.
 * n == 0 writes nothing.  Returns 0 or -1.
 */
int store_posture_import(store_t *st, const store_posture_t *rows,
    size_t n, const char *actor, store_err_t *err);

/*
 * Give the device fp to another owner (a name as store_device_enroll()
 * accepts).  In the same transaction, every session bound to this device
 * whose user is not the new owner is revoked (the device changed hands),
 * and a "device.reassign" audit record says from whom to whom and how
 * many sessions ended.  Returns 0, STORE_NOTFOUND or -1.
 */
int store_device_set_owner(store_t *st, const uint8_t fp[STORE_FP_LEN],
    const char *owner, const char *actor, store_err_t *err);

/* "unreported", "false", "true". */
const char *store_flag_name(store_flag_t flag);

/* ---- trust inference (schema 4) -------------------------------------- */

/*
 * Per-user history for trust inference: the last STORE_HISTORY_ADDRS
 * source addresses (16 bytes, IPv4 mapped) with when each was last seen,
 * and how many allowed requests fell in each hour of day (UTC) and
 * weekday.  Written by trustd in batches (bookkeeping: no audit record).
 */
#define STORE_HISTORY_ADDRS     16

typedef struct {
    uint8_t     addr[16];
    int64_t     last_seen;
} store_history_addr_t;

typedef struct {
    char                    user[STORE_NAME_MAX];
    unsigned                naddrs;
    store_history_addr_t    addrs[STORE_HISTORY_ADDRS];
    uint32_t                hours[24];
    uint32_t                days[7];
    int64_t                 updated_at;
} store_history_t;

/* In a view (hot path, copied out).  0, STORE_NOTFOUND or -1. */
int store_history_get(store_view_t *v, const char *user,
    store_history_t *out, store_err_t *err);

/*
 * Replace the histories of n users in ONE write transaction (users that
 * no longer exist are skipped).  n == 0 writes nothing.  0 or -1.
 */
int store_history_put_batch(store_t *st, const store_history_t *rows,
    size_t n, store_err_t *err);

/*
 * Staff blocklist entries, by feed and CIDR text (validated by the
 * caller; trustd compiles them with the configured feeds).
 */
typedef struct {
    char        feed[64];
    char        cidr[64];
    int64_t     expires;            /* 0: never */
    int64_t     added_at;
    char        added_by[64];
    char        reason[256];
} store_blocklist_t;

typedef int (*store_blocklist_cb)(const store_blocklist_t *e, void *arg);

/*
 * Add (or replace) the entry e->feed, e->cidr; added_at and added_by are
 * set here.  Audit "blocklist.add" in the same transaction.  0 or -1.
 */
int store_blocklist_add(store_t *st, const store_blocklist_t *e,
    const char *actor, store_err_t *err);

/* Remove an entry; audit "blocklist.remove".  0, STORE_NOTFOUND or -1. */
int store_blocklist_remove(store_t *st, const char *feed, const char *cidr,
    const char *actor, store_err_t *err);

/* Call cb for every staff entry in (feed, cidr) order.  0 or -1. */
int store_blocklist_list(store_t *st, store_blocklist_cb cb, void *arg,
    store_err_t *err);


#ifdef STORE_TESTING
/*
 * Tests only: put raw bytes under a key of the named database ("meta",
 * "devices", "audit", "users", "sessions", "posture") in a write
 * transaction of its own, bypassing every check.  val NULL deletes the
 * key.
 */
int store_test_put_raw(store_t *st, const char *db, const void *key,
    size_t klen, const void *val, size_t vlen, store_err_t *err);

/*
 * Tests only: write *rec under rec->seq as it is (its prev and hash not
 * recomputed), as someone editing the database would.
 */
int store_test_audit_rewrite(store_t *st, const store_audit_t *rec,
    store_err_t *err);

/*
 * Tests only: turn the store into a schema version 1 store (drop the
 * users and sessions databases, write version 1).  Only store_close() may
 * follow.
 */
int store_test_make_v1(store_t *st, store_err_t *err);

/*
 * Tests only: turn the store into a schema version 2 store (drop the
 * posture database, write version 2).  Only store_close() may follow.
 */
int store_test_make_v2(store_t *st, store_err_t *err);
#endif

/* ---- WebAuthn credentials (schema 6; docs/webauthn.md) -------------- */

#define STORE_WA_ID_MAX         256     /* credential id bytes */
#define STORE_WA_COSE_MAX       600     /* COSE public key bytes */
#define STORE_WA_NAME_MAX       64      /* the key's name, with NUL */
#define STORE_WA_TOKEN_LEN      32      /* SHA-256 of an enrollment code */

typedef struct {
    uint8_t     id[STORE_WA_ID_MAX];
    size_t      id_len;
    char        user[STORE_NAME_MAX];
    char        name[STORE_WA_NAME_MAX];    /* printable, may be empty */
    int32_t     alg;                        /* COSE algorithm */
    uint32_t    sign_count;
    int64_t     created_at;
    int64_t     last_used;                  /* 0: never */
    int         suspended;                  /* refused until removed */
    uint8_t     cose[STORE_WA_COSE_MAX];
    size_t      cose_len;
} store_webauthn_t;

typedef int (*store_webauthn_cb)(const store_webauthn_t *c, void *arg);

/*
 * Record a one-time enrollment code for user: only its SHA-256 (hash) is
 * kept, until expires_at (unix seconds).  The user must exist.  Appends
 * "webauthn.enroll_code".  0, STORE_NOTFOUND (no such user) or -1.
 */
int store_webauthn_code_add(store_t *st, const char *user,
    const uint8_t hash[STORE_WA_TOKEN_LEN], int64_t expires_at,
    const char *actor, store_err_t *err);

/*
 * The user an enrollment code (by hash) was issued for, if it is still
 * unused and not expired at now.  0 with user filled, STORE_NOTFOUND or
 * -1.
 */
int store_webauthn_code_user(store_t *st,
    const uint8_t hash[STORE_WA_TOKEN_LEN], int64_t now, char *user,
    size_t size, store_err_t *err);

/*
 * Register credential c for c->user, consuming the enrollment code hash
 * in the same transaction (refused when the code is gone, expired or for
 * another user).  A credential id already registered is refused.
 * created_at 0 means now.  Appends "webauthn.register".  0,
 * STORE_NOTFOUND (no such code or user) or -1.
 */
int store_webauthn_add(store_t *st, const store_webauthn_t *c,
    const uint8_t hash[STORE_WA_TOKEN_LEN], const char *actor,
    store_err_t *err);

/* The credential with this id: 0, STORE_NOTFOUND or -1. */
int store_webauthn_get(store_t *st, const uint8_t *id, size_t len,
    store_webauthn_t *out, store_err_t *err);

/* Call cb for each credential of user (all users when user is NULL). */
int store_webauthn_list(store_t *st, const char *user, store_webauthn_cb cb,
    void *arg, store_err_t *err);

/*
 * Remove user's credential id.  Appends "webauthn.remove".  0,
 * STORE_NOTFOUND (no such credential of that user) or -1.
 */
int store_webauthn_remove(store_t *st, const char *user, const uint8_t *id,
    size_t len, const char *actor, store_err_t *err);

/*
 * A sign count that did not increase (a possibly cloned authenticator):
 * suspend the credential and append "webauthn.counter_regression" with
 * the stored and the seen count, in one transaction.  0, STORE_NOTFOUND
 * or -1.
 */
int store_webauthn_suspend(store_t *st, const uint8_t *id, size_t len,
    uint32_t seen, const char *source, store_err_t *err);

/*
 * A verified sign-in with credential id: store the new sign count and
 * the time, re-checking in the transaction that the credential is not
 * suspended and that a non-zero count still increases (two concurrent
 * uses of one assertion cannot both pass: the second gets STORE_REPLAY
 * and nothing is written).  Appends "webauthn.use".  0, STORE_REPLAY,
 * STORE_NOTFOUND or -1.
 */
int store_webauthn_used(store_t *st, const uint8_t *id, size_t len,
    uint32_t count, int64_t now, const char *source, store_err_t *err);

/*
 * Cluster mode (docs/cluster.md).  PostgreSQL is the system of record and
 * this store the node's local copy.  The replicated databases are
 * devices, users, sessions, posture, history, blocklist, webauthn and
 * wa_codes; meta and the journal stay the node's own.
 *
 * With a replicator installed (store_set_repl()), every write function
 * that changes a replicated database runs as:
 *   lock()    take the cluster's write lock and learn the change-log head;
 *   fetch()   apply, inside the same write transaction, the changes this
 *             node has not applied yet (so it decides on the cluster's
 *             current state, never on a stale copy);
 *   ...       the function's own reads and writes, recorded by key;
 *   commit()  write the changed keys' final values, as one change-log
 *             entry, to PostgreSQL in one transaction, and release the
 *             lock; only then does the LMDB transaction commit, with the
 *             entry's position in meta.
 * If any step fails, nothing is written anywhere and the function fails
 * with the replicator's message: a write is never applied to one node
 * only.  The lock serializes writers across the cluster, so replay
 * refusal, lockout counters, WebAuthn sign counts and single-use codes
 * are decided once for the whole cluster.
 *
 * Changes made elsewhere arrive through store_apply(), in order.
 */
#define STORE_GAP               3       /* store_apply(): a change missing */
#define STORE_CLUSTER_ID_LEN    64

typedef struct {
    const char  *db;                    /* a replicated database's name */
    const void  *key;
    size_t       klen;
    const void  *val;                   /* NULL: the key was deleted */
    size_t       vlen;
} store_op_t;

typedef struct {
    uint64_t           seq;             /* change-log position, from 1 */
    const store_op_t  *ops;
    size_t             nops;
    uint64_t           tag;             /* the change's random tag, 0:
                                           unknown (store_cluster_tag()) */
} store_change_t;

/* What the change was, from its audit record ("" when it has none). */
typedef struct {
    char    actor[64];
    char    action[32];
    char    subject[160];
} store_change_info_t;

/* Apply one change; 0 or -1. */
typedef int (*store_apply_fn)(void *arg, const store_change_t *chg,
    store_err_t *err);

typedef struct {
    int   (*lock)(void *ctx, uint64_t *head, store_err_t *err);
    /* feed apply() every change after `after` up to `upto`, in order */
    int   (*fetch)(void *ctx, uint64_t after, uint64_t upto,
              store_apply_fn apply, void *arg, store_err_t *err);
    /* write ops as the next change and release the lock: *seq */
    int   (*commit)(void *ctx, const store_op_t *ops, size_t nops,
              const store_change_info_t *info, uint64_t *seq,
              store_err_t *err);
    /* release the lock without a change */
    void  (*unlock)(void *ctx);
    /* optional: the tag of the change commit() just made */
    uint64_t  (*last_tag)(void *ctx);
} store_repl_t;

/* Bits of store_apply()'s *touched: what the applied changes touched. */
#define STORE_TOUCHED_DEVICES   0x01
#define STORE_TOUCHED_BLOCKLIST 0x02
#define STORE_TOUCHED_USERS     0x04
#define STORE_TOUCHED_SESSIONS  0x08

/* Install (or with NULL remove) the replicator; before any write. */
void store_set_repl(store_t *st, const store_repl_t *repl, void *ctx);

/* Whether db names a replicated database. */
int store_db_replicated(const char *db);

/*
 * The cluster this store follows and the last change applied: 0,
 * STORE_NOTFOUND (the store has never joined a cluster) or -1.
 */
int store_cluster_state(store_t *st, char id[STORE_CLUSTER_ID_LEN],
    uint64_t *pos, store_err_t *err);

/*
 * Apply changes made elsewhere, in one write transaction that also
 * records the new position.  Changes at or before the position are
 * skipped (already applied); a change after position + 1 is a gap:
 * STORE_GAP, nothing applied.  *touched (may be NULL) gets the
 * STORE_TOUCHED_* bits of every change passed, skipped ones included (a
 * write on this node may have caught them up).  0, STORE_GAP or -1.
 */
int store_apply(store_t *st, const store_change_t *chg, size_t n,
    unsigned *touched, store_err_t *err);

/*
 * Replace every replicated database with the rows next() yields (1 and
 * *op, 0 at the end, -1 on error) and record cluster id at position pos,
 * in one write transaction: a new or wiped node, or one too far behind
 * for the change log.  0 or -1.
 */
int store_bootstrap(store_t *st, const char *id, uint64_t pos,
    int (*next)(void *arg, store_op_t *op, store_err_t *err), void *arg,
    store_err_t *err);

/*
 * Call cb for every row of every replicated database (one read view):
 * seeding an empty cluster from a single-node store.  cb returns 0 to go
 * on, -1 to fail.  0 or -1.
 */
int store_export(store_t *st,
    int (*cb)(void *arg, const store_op_t *op, store_err_t *err), void *arg,
    store_err_t *err);

/*
 * The position and the tag of the change applied last (0: unknown).  A
 * database whose change at that position carries another tag is not the
 * history this store followed (restored from a backup, then written
 * again): the caller must stop following it.  0, STORE_NOTFOUND (not
 * joined) or -1.
 */
int store_cluster_tag(store_t *st, uint64_t *pos, uint64_t *tag,
    store_err_t *err);

/* Record tag for position pos, if pos is still the store's position. */
int store_cluster_set_tag(store_t *st, uint64_t pos, uint64_t tag,
    store_err_t *err);

/*
 * Record that this store follows cluster id from position pos; with id
 * NULL, that it follows none any more (a single-node store again).
 * Writes without a replicator are refused while a store follows a
 * cluster: they would reach neither the database nor the other nodes.
 */
int store_cluster_join(store_t *st, const char *id, uint64_t pos,
    store_err_t *err);

#endif /* ZT_STORE_H */
