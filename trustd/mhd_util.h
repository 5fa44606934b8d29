/*
 * What the three libmicrohttpd servers (the sign-in portal, the metrics
 * endpoint, ztconsole) share: their messages in trustd's log, and who is
 * at the other end of a Unix-socket connection.
 */

#ifndef ZT_MHD_UTIL_H
#define ZT_MHD_UTIL_H

#include <stdarg.h>
#include <sys/socket.h>

#include <microhttpd.h>

/*
 * MHD_OPTION_EXTERNAL_LOGGER: a libmicrohttpd message as a warning in
 * trustd's log, cls being the server's name ("portal"), without the
 * message's trailing newline.
 */
void zt_mhd_log(void *cls, const char *fmt, va_list ap);

/*
 * The credentials (SO_PEERCRED) of the process at the other end of c, a
 * Unix-socket connection.  0, or -1 (logged, prefixed with who).
 */
int zt_mhd_peer(struct MHD_Connection *c, const char *who,
    struct ucred *uc);

/* How zt_mhd_start() runs a server; 0 in a field: libmicrohttpd's
 * default (one thread; no memory limit of ours; no completion callback). */
typedef struct {
    const char                     *name;       /* for the log */
    MHD_AccessHandlerCallback       access;
    void                           *cls;
    MHD_RequestCompletedCallback    completed;
    unsigned                        threads;
    unsigned                        conn_limit;
    unsigned                        conn_timeout;   /* seconds */
    size_t                          conn_memory;
} zt_mhd_conf_t;

/*
 * Serve on the listening socket fd with libmicrohttpd's own epoll thread
 * (or thread pool), logging through zt_mhd_log().  The threads start
 * with every signal blocked, so that signals stay with the main thread.
 * The daemon, or NULL (fd is still the caller's).
 */
struct MHD_Daemon *zt_mhd_start(int fd, const zt_mhd_conf_t *conf);

#endif /* ZT_MHD_UTIL_H */
