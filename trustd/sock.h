/*
 * Listening Unix stream sockets for trustd's decision, admin and portal
 * sockets (and bench/authz): one place for the stale-socket rule and the
 * file mode.
 */

#ifndef ZT_SOCK_H
#define ZT_SOCK_H

#include <stddef.h>
#include <sys/types.h>

/*
 * Bind and listen on a non-blocking Unix stream socket at path with the
 * given file mode.  A socket file that still answers belongs to a running
 * process and is an error; one that refuses connections is stale and
 * removed; anything that is not a socket is never removed.  The file never
 * exists with a wider mode, even briefly (umask is process-wide: call from
 * the main thread at start-up).  On success *fdp is the socket and *dev,
 * *ino identify the file for sock_unlink(); on failure *fdp is -1 and err
 * holds the reason.
 */
int sock_listen(const char *path, mode_t mode, int *fdp, dev_t *dev,
    ino_t *ino, char *err, size_t errsize);

/* Remove the socket file at path unless another process replaced it. */
void sock_unlink(const char *path, dev_t dev, ino_t ino);

#endif /* ZT_SOCK_H */
