/*
 * Blocklists: named feeds of IPv4/IPv6 addresses and CIDR ranges (plain
 * files, one entry per line, '#' comments), each with an optional expiry,
 * plus staff entries kept in the store (ztctl blocklist).  They are
 * compiled into one immutable sorted table; trustd builds a new table on
 * start, on SIGHUP and on "ztctl policy reload", and swaps it between
 * event batches, so a lookup never sees a half-built table.
 *
 * Addresses are kept as 16 bytes: IPv4 as ::ffff:a.b.c.d, so one table
 * answers both families.
 */

#ifndef ZT_BLOCKLIST_H
#define ZT_BLOCKLIST_H

#include <stddef.h>
#include <stdint.h>

#define BLOCKLIST_NAME_MAX  64          /* feed names, with NUL */
#define BLOCKLIST_FEEDS_MAX 64

typedef struct blocklist_s  blocklist_t;

typedef struct {
    char    msg[512];
} blocklist_err_t;

/*
 * Parse "a.b.c.d", "a.b.c.d/n", an IPv6 address or "x::/n" into the
 * first and last address of the range (16 bytes each, IPv4 mapped).
 * Host bits set below the prefix are refused (a likely typo).  Returns 0,
 * or -1 with a message in *err.
 */
int blocklist_parse_cidr(const char *s, uint8_t lo[16], uint8_t hi[16],
    blocklist_err_t *err);

/* 1 if name is a valid feed name: [a-z0-9._-], 1..63 characters. */
int blocklist_feed_name_ok(const char *name);

/* Parse "YYYY-MM-DD" as the end of that day (UTC); 0 and *t, or -1. */
int blocklist_parse_date(const char *s, int64_t *t);

/* A new, empty table under construction (owned by the caller). */
blocklist_t *blocklist_new(void);

/*
 * Add one entry (text as blocklist_parse_cidr() takes) to feed, expiring
 * at expires (0: never).  Only before blocklist_seal().  Returns 0 or -1.
 */
int blocklist_add(blocklist_t *bl, const char *feed, const char *cidr,
    int64_t expires, blocklist_err_t *err);

/*
 * Add every entry of the file (or, for a directory, of every regular
 * file in it not starting with '.', in name order) to feed.  A malformed
 * line is logged as "file:line: ..." at warn level and skipped; *bad
 * (may be NULL) receives how many were.  Returns 0, or -1 if the file
 * cannot be read.
 */
int blocklist_load(blocklist_t *bl, const char *feed, const char *path,
    int64_t expires, unsigned *bad, blocklist_err_t *err);

/* Sort the table for lookups; no entry may be added after. */
void blocklist_seal(blocklist_t *bl);

/*
 * 1 if the address (family 4 or 6, 4 or 16 bytes) is on an entry of a
 * sealed table that has not expired at now, with *feed (may be NULL) set
 * to its feed's name (owned by the table); 0 otherwise.  bl may be NULL.
 * No allocation.
 */
int blocklist_lookup(const blocklist_t *bl, int family, const uint8_t *addr,
    int64_t now, const char **feed);

/* How many entries the table holds. */
size_t blocklist_count(const blocklist_t *bl);

/* Release a table.  bl may be NULL. */
void blocklist_free(blocklist_t *bl);

#endif /* ZT_BLOCKLIST_H */
