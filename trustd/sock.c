/*
 * Listening Unix stream sockets.  See sock.h.
 */

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"
#include "sock.h"


static void sock_seterr(char *err, size_t errsize, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int sock_clear_stale(const struct sockaddr_un *sun, char *err,
    size_t errsize);


static void
sock_seterr(char *err, size_t errsize, const char *fmt, ...)
{
    va_list  ap;

    va_start(ap, fmt);
    vsnprintf(err, errsize, fmt, ap);
    va_end(ap);
}


/* Remove a stale socket file at sun's path; 0, or -1 with the reason. */
static int
sock_clear_stale(const struct sockaddr_un *sun, char *err, size_t errsize)
{
    struct stat   sb;
    const char   *path = sun->sun_path;
    int           fd, rc, e;

    if (lstat(path, &sb) == -1) {
        if (errno == ENOENT) {
            return 0;
        }

        sock_seterr(err, errsize, "%s: %s", path, strerror(errno));
        return -1;
    }

    if (!S_ISSOCK(sb.st_mode)) {
        sock_seterr(err, errsize, "%s exists and is not a socket; refusing "
                    "to remove it", path);
        return -1;
    }

    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd == -1) {
        sock_seterr(err, errsize, "socket: %s", strerror(errno));
        return -1;
    }

    rc = connect(fd, (const struct sockaddr *) sun, sizeof(*sun));
    e = errno;
    close(fd);

    if (rc == 0 || e == EAGAIN || e == EINPROGRESS) {
        sock_seterr(err, errsize, "another process is already listening on "
                    "%s", path);
        return -1;
    }

    if (e == ENOENT) {
        return 0;
    }

    if (e != ECONNREFUSED) {
        sock_seterr(err, errsize, "cannot check socket %s: %s", path,
                    strerror(e));
        return -1;
    }

    if (unlink(path) == -1 && errno != ENOENT) {
        sock_seterr(err, errsize, "cannot remove stale socket %s: %s", path,
                    strerror(errno));
        return -1;
    }

    log_info("removed stale socket %s", path);

    return 0;
}


int
sock_listen(const char *path, mode_t mode, int *fdp, dev_t *dev,
    ino_t *ino, char *err, size_t errsize)
{
    struct sockaddr_un   sun;
    struct stat          sb;
    mode_t               old;
    int                  fd, rc, e;

    *fdp = -1;

    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;

    if (path[0] == '\0' || strlen(path) >= sizeof(sun.sun_path)) {
        sock_seterr(err, errsize, "socket path \"%s\" is empty or too long",
                    path);
        return -1;
    }

    memcpy(sun.sun_path, path, strlen(path) + 1);

    if (sock_clear_stale(&sun, err, errsize) != 0) {
        return -1;
    }

    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd == -1) {
        sock_seterr(err, errsize, "socket: %s", strerror(errno));
        return -1;
    }

    old = umask(~mode & 0777);
    rc = bind(fd, (struct sockaddr *) &sun, sizeof(sun));
    e = errno;
    umask(old);

    if (rc == -1) {
        sock_seterr(err, errsize, "bind %s: %s", path, strerror(e));
        close(fd);
        return -1;
    }

    if (chmod(path, mode) == -1 || lstat(path, &sb) == -1) {
        sock_seterr(err, errsize, "chmod %s: %s", path, strerror(errno));
        goto failed;
    }

    if (listen(fd, SOMAXCONN) == -1) {
        sock_seterr(err, errsize, "listen %s: %s", path, strerror(errno));
        goto failed;
    }

    *dev = sb.st_dev;
    *ino = sb.st_ino;
    *fdp = fd;

    log_info("listening on %s (mode %04o)", path, (unsigned) mode);

    return 0;

failed:

    unlink(path);
    close(fd);

    return -1;
}


void
sock_unlink(const char *path, dev_t dev, ino_t ino)
{
    struct stat  sb;

    if (path[0] != '\0' && lstat(path, &sb) == 0 && sb.st_dev == dev
        && sb.st_ino == ino)
    {
        unlink(path);
    }
}
