/*
 * The unit tests' scratch directories: a fresh one under $TMPDIR (or
 * /tmp) per test, removed with everything in it afterwards.  Header-only
 * so that every test binary gets it without another object to link.
 */

#ifndef ZT_TEST_TMPDIR_H
#define ZT_TEST_TMPDIR_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>

static inline int
test_tmpdir_rm1(const char *path, const struct stat *sb, int flag,
    struct FTW *ftw)
{
    (void) sb;
    (void) flag;
    (void) ftw;

    return remove(path);
}


/* Make DIR = $TMPDIR/NAME.XXXXXX, created 0700.  0 or -1. */
static inline int
test_tmpdir_make(char *dir, size_t size, const char *name)
{
    const char  *tmp;
    int          n;

    tmp = getenv("TMPDIR");
    n = snprintf(dir, size, "%s/%s.XXXXXX", tmp != NULL ? tmp : "/tmp",
                 name);
    if (n < 0 || (size_t) n >= size) {
        return -1;
    }

    return mkdtemp(dir) != NULL ? 0 : -1;
}


/* Remove dir and everything below it (best effort). */
static inline void
test_tmpdir_remove(const char *dir)
{
    (void) nftw(dir, test_tmpdir_rm1, 16, FTW_DEPTH | FTW_PHYS);
}

#endif /* ZT_TEST_TMPDIR_H */
