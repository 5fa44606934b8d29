/*
 * trustd state store: every piece of persistent state (devices, audit,
 * schema metadata; later users, sessions, blocklists) goes through this
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

#define STORE_SCHEMA_VERSION    1
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

typedef struct {
    uint64_t    seq;
    int64_t     time;                       /* unix seconds */
    char        actor[64];
    char        action[32];                 /* e.g. "device.revoke" */
    char        subject[160];               /* e.g. a device id */
    char        detail[256];
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

/* "active", "quarantined", "revoked" or "invalid". */
const char *store_device_status_name(store_device_status_t status);

/* Parse a status name; returns 0 and sets *status, or -1. */
int store_device_status_parse(const char *name,
    store_device_status_t *status);

/* Write 2 * STORE_FP_LEN lowercase hex digits and a NUL to hex. */
void store_fp_hex(const uint8_t fp[STORE_FP_LEN],
    char hex[2 * STORE_FP_LEN + 1]);

#ifdef STORE_TESTING
/*
 * Tests only: put raw bytes under a key of the named database ("meta",
 * "devices", "audit") in a write transaction of its own, bypassing every
 * check.
 */
int store_test_put_raw(store_t *st, const char *db, const void *key,
    size_t klen, const void *val, size_t vlen, store_err_t *err);
#endif

#endif /* ZT_STORE_H */
