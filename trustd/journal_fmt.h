/*
 * The journal's canonical form: one JSON object per record, on one line,
 * with the members in a fixed order and nothing left to the renderer's
 * taste (integers only, "points" as a fixed one-decimal number, strings
 * escaped the same way every time).  A record's hash is the SHA-256 of
 * this line without its "hash" member, and the line includes the
 * previous record's hash as "prev", so the chain can be checked on the
 * store (ztctl audit verify) and on an export (ztctl audit verify --file,
 * or the few lines of Python in docs/journal.md) with the same rule.
 *
 * Pure functions, no allocation: the store, trustd and ztctl share them.
 */

#ifndef ZT_JOURNAL_FMT_H
#define ZT_JOURNAL_FMT_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

#define JOURNAL_JSON_MAX    8192    /* longest canonical line, with hash */
#define JOURNAL_FORMAT      1       /* the "v" member */

/*
 * Render rec as its canonical JSON line (no newline, NUL-terminated) into
 * buf.  with_hash appends the "hash" member (the exported form); without
 * it the line is what the hash covers.  Returns the length, or 0 when buf
 * is too small.
 */
size_t journal_json(const store_audit_t *rec, int with_hash, char *buf,
    size_t size);

/*
 * The hash of rec (rec->prev must be set): SHA-256 of its canonical line
 * without "hash".  0, or -1 when the line cannot be rendered or hashed.
 */
int journal_hash(const store_audit_t *rec, uint8_t out[STORE_HASH_LEN]);

/* SHA-256 of len bytes. 0 or -1. */
int journal_sha256(const void *data, size_t len,
    uint8_t out[STORE_HASH_LEN]);

/* Lowercase hex of n bytes into out (2n + 1 bytes). */
void journal_hex(const uint8_t *p, size_t n, char *out);

/* Parse 2 * STORE_HASH_LEN hex digits.  0 or -1. */
int journal_unhex(const char *s, size_t len, uint8_t out[STORE_HASH_LEN]);

/* "2026-11-25T09:30:01.250Z" for unix milliseconds (32 bytes suffice). */
void journal_time(int64_t ms, char *out, size_t size);

/* "action" or "decision". */
const char *journal_kind_name(int kind);

#endif /* ZT_JOURNAL_FMT_H */
