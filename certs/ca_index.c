/*
 * ztgate device CA: the index of issued certificates.
 *
 * One line per certificate, seven fields separated by one tab:
 *
 *     status      V (valid) or R (revoked)
 *     serial      upper-case hex, no leading zeros
 *     not_after   unix seconds
 *     revoked_at  unix seconds, or "-" while valid
 *     fingerprint SHA-256 of the certificate DER, lower-case hex
 *     subject_cn  the subject common name, or "-" if none
 *     device_id   the id of urn:ztgate:device:<id>, or "-" if none
 *
 * Fields never contain a tab or a newline: control characters of a common
 * name are replaced before they get here.  The file is always rewritten
 * whole through a temporary file and rename(), under the CA lock.
 */

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "certs/ca_local.h"

#define CA_INDEX_FIELDS     7
#define CA_INDEX_LINE_MAX   2048

static int ca_index_parse(char *line, ca_index_entry_t *e);
static int ca_index_int(const char *s, int64_t *out);
static int ca_index_copy(char *dst, size_t size, const char *src);
static int ca_index_is_fp(const char *s);


static int
ca_index_int(const char *s, int64_t *out)
{
    char       *end;
    long long   v;

    if (*s == '\0' || *s == '-' || *s == '+') {
        return -1;
    }

    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno != 0 || *end != '\0') {
        return -1;
    }

    *out = (int64_t) v;

    return 0;
}


/* Copy a field; "-" stands for an empty one. */
static int
ca_index_copy(char *dst, size_t size, const char *src)
{
    size_t  len;

    if (strcmp(src, "-") == 0) {
        src = "";
    }

    len = strlen(src);
    if (len >= size) {
        return -1;
    }

    memcpy(dst, src, len + 1);

    return 0;
}


static int
ca_index_is_fp(const char *s)
{
    size_t  i;

    for (i = 0; i < 2 * CA_FP_LEN; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
        {
            return 0;
        }
    }

    return s[i] == '\0';
}


static int
ca_index_parse(char *line, ca_index_entry_t *e)
{
    char    *field[CA_INDEX_FIELDS];
    char    *p, *tab;
    size_t   i;

    memset(e, 0, sizeof(*e));

    p = line;
    for (i = 0; i < CA_INDEX_FIELDS; i++) {
        field[i] = p;
        tab = strchr(p, '\t');

        if (i == CA_INDEX_FIELDS - 1) {
            if (tab != NULL) {
                return -1;
            }
            break;
        }

        if (tab == NULL) {
            return -1;
        }

        *tab = '\0';
        p = tab + 1;
    }

    if ((strcmp(field[0], "V") != 0 && strcmp(field[0], "R") != 0)) {
        return -1;
    }
    e->status = field[0][0];

    if (ca_serial_normalize(field[1], e->serial_hex, sizeof(e->serial_hex))
        == -1)
    {
        return -1;
    }

    if (ca_index_int(field[2], &e->not_after) == -1) {
        return -1;
    }

    if (e->status == 'V') {
        if (strcmp(field[3], "-") != 0) {
            return -1;
        }
        e->revoked_at = 0;

    } else if (ca_index_int(field[3], &e->revoked_at) == -1) {
        return -1;
    }

    if (!ca_index_is_fp(field[4])) {
        return -1;
    }
    memcpy(e->fp_hex, field[4], sizeof(e->fp_hex));

    if (ca_index_copy(e->subject_cn, sizeof(e->subject_cn), field[5]) == -1
        || ca_index_copy(e->device_id, sizeof(e->device_id), field[6]) == -1)
    {
        return -1;
    }

    return 0;
}


/*
 * Load the whole index into idx (which the caller releases with
 * ca_index_free(), also on failure).  A malformed line is an error naming
 * the file and the line: the index is never silently truncated.
 */
int
ca_index_load(const char *dir, ca_index_t *idx, ca_err_t *err)
{
    char              path[CA_PATH_MAX];
    char             *line;
    size_t            lsize, lineno;
    ssize_t           len;
    FILE             *fp;
    ca_index_entry_t  e;
    int               rc;

    memset(idx, 0, sizeof(*idx));

    if (ca_path(path, sizeof(path), dir, CA_INDEX_FILE, err) == -1) {
        return -1;
    }

    fp = fopen(path, "re");
    if (fp == NULL) {
        ca_err_sys(err, "%s: cannot open", path);
        return -1;
    }

    rc = -1;
    line = NULL;
    lsize = 0;
    lineno = 0;

    for ( ;; ) {
        errno = 0;
        len = getline(&line, &lsize, fp);
        if (len == -1) {
            if (ferror(fp)) {
                ca_err_sys(err, "%s: read failed", path);
                goto cleanup;
            }
            break;
        }

        lineno++;

        if (len > CA_INDEX_LINE_MAX) {
            ca_err_set(err, "%s:%zu: line too long", path, lineno);
            goto cleanup;
        }

        if (len == 0 || line[len - 1] != '\n') {
            ca_err_set(err, "%s:%zu: truncated line", path, lineno);
            goto cleanup;
        }
        line[len - 1] = '\0';

        if (ca_index_parse(line, &e) == -1) {
            ca_err_set(err, "%s:%zu: malformed entry", path, lineno);
            goto cleanup;
        }

        if (ca_index_find(idx, e.serial_hex) != NULL) {
            ca_err_set(err, "%s:%zu: duplicate serial %s", path, lineno,
                       e.serial_hex);
            goto cleanup;
        }

        if (ca_index_add(idx, &e, err) == -1) {
            goto cleanup;
        }
    }

    rc = 0;

cleanup:

    free(line);
    (void) fclose(fp);

    return rc;
}


/* Replace the index with the contents of idx, atomically. */
int
ca_index_save(const char *dir, const ca_index_t *idx, ca_err_t *err)
{
    char                    path[CA_PATH_MAX];
    char                    revoked[24];
    char                   *buf;
    size_t                  i, size, off;
    int                     n, rc;
    const ca_index_entry_t *e;

    if (ca_path(path, sizeof(path), dir, CA_INDEX_FILE, err) == -1) {
        return -1;
    }

    /* Every field is bounded, so a line fits in CA_INDEX_LINE_MAX. */
    size = (idx->n + 1) * CA_INDEX_LINE_MAX;
    buf = malloc(size);
    if (buf == NULL) {
        ca_err_sys(err, "%s: cannot allocate", path);
        return -1;
    }

    off = 0;
    buf[0] = '\0';

    for (i = 0; i < idx->n; i++) {
        e = &idx->entries[i];

        if (e->status == 'R') {
            snprintf(revoked, sizeof(revoked), "%" PRId64, e->revoked_at);
        } else {
            strcpy(revoked, "-");
        }

        n = snprintf(buf + off, size - off,
                     "%c\t%s\t%" PRId64 "\t%s\t%s\t%s\t%s\n",
                     e->status, e->serial_hex, e->not_after, revoked,
                     e->fp_hex,
                     e->subject_cn[0] != '\0' ? e->subject_cn : "-",
                     e->device_id[0] != '\0' ? e->device_id : "-");

        if (n < 0 || (size_t) n >= size - off) {
            ca_err_set(err, "%s: entry %s too long", path, e->serial_hex);
            free(buf);
            return -1;
        }

        off += (size_t) n;
    }

    rc = ca_write_atomic(path, buf, off, 0600, err);

    free(buf);

    return rc;
}


int
ca_index_add(ca_index_t *idx, const ca_index_entry_t *e, ca_err_t *err)
{
    ca_index_entry_t  *p;
    size_t             cap;

    if (idx->n == idx->cap) {
        cap = idx->cap != 0 ? 2 * idx->cap : 16;
        p = realloc(idx->entries, cap * sizeof(*p));
        if (p == NULL) {
            ca_err_sys(err, "index: cannot allocate");
            return -1;
        }
        idx->entries = p;
        idx->cap = cap;
    }

    idx->entries[idx->n++] = *e;

    return 0;
}


/* The entry with this (normalized) serial, or NULL: not an error. */
ca_index_entry_t *
ca_index_find(const ca_index_t *idx, const char *serial_hex)
{
    size_t  i;

    for (i = 0; i < idx->n; i++) {
        if (strcmp(idx->entries[i].serial_hex, serial_hex) == 0) {
            return &idx->entries[i];
        }
    }

    return NULL;
}


void
ca_index_free(ca_index_t *idx)
{
    free(idx->entries);
    memset(idx, 0, sizeof(*idx));
}


int
ca_list(const char *dir, ca_list_cb cb, void *arg, ca_err_t *err)
{
    ca_index_t  idx;
    size_t      i;
    int         rc;

    rc = -1;

    if (ca_index_load(dir, &idx, err) == -1) {
        goto cleanup;
    }

    for (i = 0; i < idx.n; i++) {
        if (cb(&idx.entries[i], arg) != 0) {
            break;
        }
    }

    rc = 0;

cleanup:

    ca_index_free(&idx);

    return rc;
}
